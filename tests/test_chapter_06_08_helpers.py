"""Tests of the helpers behind chapters 6 and 8: reading the saved reproductions
(``bijepa_nb.analysis.results``), the claims and their rules, Holm's check, the seed split, and
the tables and figures built from them (``report``/``plotting``, chapters 06 and 08)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from bijepa_nb.analysis import plotting, report, stats, verdicts
from bijepa_nb.analysis import results as R
from bijepa_nb.analysis.stats import Interval, mean_ci

matplotlib.use("Agg")

RESULTS = Path(__file__).resolve().parents[1] / "book" / "results"
LABELS = {"classic": "Classic JEPA", "expressive": "BiJEPA"}


@pytest.fixture(scope="module")
def saved() -> dict:
    return {e: json.loads((RESULTS / f"{e}.json").read_text()) for e in R_EXPS}


R_EXPS = ("sine", "lorenz", "mnist")


def tiny(seeds=(3, 5, 7, 9)) -> dict:
    """A results file with two configs, one baseline and checkpoints, whose per-seed
    values name their seed (value = 10 * seed + config index)."""
    n = len(seeds)
    cfg = {
        c: {
            "label": c,
            "diverged_at": [None] * (n - 1) + [120],
            "per_seed": {"m": [10 * s + k for s in seeds[:-1]] + [None]},
        }
        for k, c in enumerate(("classic", "expressive"))
    }
    return {
        "seeds": list(seeds),
        "configs": cfg,
        "baselines": {"b": {"per_seed": [float(s) for s in seeds]}},
        "checkpoints": {
            "steps": [0, 10],
            "metrics": ["m"],
            "configs": {c: {"m": [[s, s + 1] for s in seeds]} for c in cfg},
        },
    }


# ------------------------------------------------------------------- reading the files
def test_values_drop_diverged_seeds_and_baseline_reads_all() -> None:
    res = tiny()
    assert R.values(res, "expressive", "m").tolist() == [31, 51, 71]
    assert R.baseline(res, "b").tolist() == [3, 5, 7, 9]


def test_subset_keeps_the_named_seeds_in_order_everywhere() -> None:
    res = tiny()
    sub = R.subset(res, [9, 3])
    assert sub["seeds"] == [9, 3]
    assert sub["configs"]["classic"]["per_seed"]["m"] == [None, 30]
    assert sub["configs"]["classic"]["diverged_at"] == [120, None]
    assert sub["baselines"]["b"]["per_seed"] == [9.0, 3.0]
    assert sub["checkpoints"]["configs"]["expressive"]["m"] == [[9, 10], [3, 4]]
    assert res["seeds"] == [3, 5, 7, 9], "the original is left alone"
    with pytest.raises(ValueError, match="subset"):
        R.subset(res, [4])
    with pytest.raises(ValueError, match="subset"):
        R.subset(res, [])


def test_checkpoint_curves_are_seeds_by_checkpoints() -> None:
    res = tiny()
    res["checkpoints"]["configs"]["classic"]["m"][1] = None  # a diverged seed
    c = R.checkpoint_curves(res, ["classic"])["classic"]["m"]
    assert c.shape == (3, 2) and c[:, 0].tolist() == [3, 7, 9]


# --------------------------------------------------------------------- chapter 6 rules
def _iv(low: float, high: float) -> Interval:
    return Interval((low + high) / 2, 1.0, low, high, 5)


def test_better_or_worse_and_its_reverse_for_errors() -> None:
    assert verdicts.better_or_worse(_iv(0.1, 2)) == "better"
    assert verdicts.better_or_worse(_iv(-2, -0.1)) == "worse"
    assert verdicts.better_or_worse(_iv(-1, 1)) == "no difference"
    assert verdicts.lower_or_higher(_iv(-2, -0.1)) == "better"
    assert verdicts.lower_or_higher(_iv(0.1, 2)) == "worse"
    assert verdicts.lower_or_higher(_iv(-1, 1)) == "no difference"


def test_paired_points_is_a_paired_interval_in_points() -> None:
    a = np.array([0.80, 0.82, 0.79, 0.81])
    iv = R.paired_points(a, a - 0.01)
    assert iv.mean == pytest.approx(1.0) and iv.std == pytest.approx(0.0, abs=1e-9)
    iv = R.paired_points(np.append(a, np.nan), np.append(a - 0.02, 0.5))
    assert iv.n == 4 and iv.mean == pytest.approx(2.0)


def test_step_budgets_read_the_curve_in_steps_with_the_stated_rule() -> None:
    # 6,400 examples at batch 256: 25 steps per epoch
    assert R.steps_to_epochs(2350, 6400) == 94 and R.steps_to_epochs(320, 6400) == 13
    assert R.steps_to_epochs(1, 6400) == 1 and R.steps_to_epochs(320, 8000) == 10
    curve = {13: 0.70, 26: 0.80, 94: 0.850, 188: 0.855}
    short, paper = R.step_budgets(curve, 6400, {"short": 320, "paper": 2350})
    assert (short.steps, paper.steps) == (325, 2350)
    assert short.gain == pytest.approx(10.0) and not short.converged
    assert paper.gain == pytest.approx(0.5) and paper.converged
    assert "2,350 steps 85.00%" in paper.line("x") and "(+0.50 points: converged)" in (
        paper.line("x")
    )
    with pytest.raises(ValueError, match="no value at epochs"):
        R.step_budgets(curve, 6400, {"long": 3200})


def test_checkpoint_gaps_are_paired_differences_after_step_zero(saved) -> None:
    res = saved["mnist"]
    gaps = R.checkpoint_gaps(res, LABELS)
    assert list(gaps) == res["checkpoints"]["steps"][1:]
    final = R.mnist_comparisons(res, LABELS)["BiJEPA - Classic JEPA"]
    assert gaps[res["checkpoints"]["steps"][-1]].mean == pytest.approx(final.mean)
    words = R.mnist_verdicts(res, LABELS)
    assert words["BiJEPA - Classic JEPA at step 700"] == "no difference"
    assert words["BiJEPA - Classic JEPA at step 1400"] == "better"
    assert "BiJEPA - Classic JEPA at step 2350" not in words


def test_mnist_verdicts_of_the_saved_run_and_of_its_halves(saved) -> None:
    res = saved["mnist"]
    words = R.mnist_verdicts(res, LABELS)
    assert words["BiJEPA - Classic JEPA"] == "better"
    assert words["BiJEPA - Classic JEPA, decoder MSE"] == "better"
    assert words["Classic JEPA - supervised encoder"] == "worse"
    first = R.mnist_verdicts(R.subset(res, res["seeds"][:5]), LABELS)
    assert set(first) == set(words)
    late = "BiJEPA from step 1400 to 2350"
    assert words[late] == "better" and first[late] == "no difference"


def test_mnist_holm_corrects_every_difference_and_only_weakens(saved) -> None:
    res = saved["mnist"]
    words = R.mnist_verdicts(res, LABELS)
    judged = R.mnist_holm(res, LABELS)
    # every difference of the chapter, not the derived "first beats" lines
    assert set(judged) == {k for k in words if "first beats" not in k}
    assert all(alone == words[k] for k, (alone, _) in judged.items())
    assert all(after in (alone, "no difference") for alone, after in judged.values())
    ivs = R.mnist_intervals(res, LABELS)
    p = {k: stats.interval_pvalue(iv, 0.0) for k, (iv, _) in ivs.items()}
    adj = dict(zip(p, stats.holm(list(p.values()))))
    for k, (alone, after) in judged.items():
        assert (after == alone) == (alone == "no difference" or adj[k] < 0.05), k
    assert judged["BiJEPA - Classic JEPA"] == ("better", "better")
    assert any(after != alone for alone, after in judged.values()), "it corrects"


def test_mnist_checkpoints_compare_with_step_zero(saved) -> None:
    res = saved["mnist"]
    points = R.mnist_checkpoints(res, ["classic"])
    assert [p.step for p in points] == res["checkpoints"]["steps"][1:]
    a = 100 * R.checkpoint_curves(res, ["classic"])["classic"]["probe_acc_heldout"]
    assert points[0].vs_random.mean == pytest.approx((a[:, 1] - a[:, 0]).mean())
    assert R.first_better_step(points, "classic") == 700
    assert R.first_better_step(points, "expressive") is None  # not in the list


# --------------------------------------------------------------------- chapter 8 rules
def test_paper_claims_reproduce_the_committed_verdicts(saved) -> None:
    claims = R.paper_claims(saved)
    assert [c.verdict for c in claims] == [
        "holds",
        "holds",
        "holds",
        "reversed",  # the explosion rule: the embeddings stay bounded
        "holds",  # the loss rebounds
        "depends",  # the sphere: the Adam probe only
        "holds",
        "holds",
    ]
    assert "0 of 10 seeds diverged" in claims[3].evidence
    assert "from 1/4 of training" in claims[3].evidence


def test_a_claim_turns_when_the_data_do(saved) -> None:
    flipped = copy.deepcopy(saved)
    cfg = flipped["sine"]["configs"]
    cfg["classic"], cfg["expressive"] = cfg["expressive"], cfg["classic"]
    assert R.paper_claims(flipped)[0].verdict == "reversed"
    flipped["sine"]["configs"]["unconstrained"]["diverged_at"][0] = 500
    assert R.paper_claims(flipped)[3].verdict == "holds", "a diverged seed explodes"
    assert R.holm_check(R.paper_claims(flipped)).verdicts[3] == "holds"


def test_interval_rule_equals_the_t_test_at_the_same_level(saved) -> None:
    """Without adjustment, Holm's table passes exactly the tests whose interval does:
    each claim's rule then gives its unadjusted verdict."""
    from bijepa_nb.analysis.stats import t_pvalue

    for level in (0.9, 0.95, 0.99):
        for c in R.paper_claims(saved, level):
            raw = {
                k: ("above" if np.mean(v) > null else "below")
                if t_pvalue(v, null) < 1 - level
                else "includes"
                for k, (v, null) in c.tests.items()
            }
            assert raw == R.passes(c.tests, level)
            assert c.rule(raw) == c.verdict


def test_holm_check_adjusts_and_reapplies_the_rules(saved) -> None:
    claims = R.paper_claims(saved)
    h = R.holm_check(claims)
    assert len(h.rows) == sum(len(c.tests) for c in claims) == 13
    assert h.verdicts[3] == "reversed", "Holm keeps a firm 'below' reversed"
    assert h.verdicts == [c.verdict for c in claims]
    # a strict enough level fails every test but those with p below 1e-9
    strict = R.holm_check(claims, level=0.999999999)
    assert strict.verdicts[2] == "does not hold"
    assert all(float(r[3]) >= float(r[2]) for r in h.rows), "adjusted p >= raw p"


def test_raw_data_comparison_and_its_rows(saved) -> None:
    rows = R.raw_data_comparison(saved)
    words = [r.word for r in rows]
    assert words == ["holds", "reversed", "reversed", "reversed", "holds", "holds"]
    cells = rows[4].cells()
    assert cells[0] == "mnist" and cells[-1] == "holds" and " ± " in cells[2]
    assert float(cells[2].split(" ± ")[0]) > 50, "accuracy in %"
    assert cells[-2].startswith("JEPA - baseline, points: ")
    # errors by the ratio on the log scale: the interval of baseline / JEPA
    ratio = rows[1].test.interval
    assert ratio.log and ratio.high < 1, "the sinusoid fit forecasts better"
    a, b = rows[1].jepa, rows[1].base
    assert np.isclose(ratio.mean, np.exp(np.mean(np.log(b) - np.log(a))))
    # the words are the ledger family's
    family = R.raw_data_family(saved)
    assert [t.verdict for f in family.values() for t in f.values()] == words


def test_claim_verdicts_cover_claims_holm_and_raw_data(saved) -> None:
    words = R.claim_verdicts(saved)
    assert len(words) == 8 + 8 + 6
    assert words["sine: JEPA beats sinusoid fit"] == "reversed"


def test_seed_split_table_keeps_agreement_only() -> None:
    runs = {
        "all": {"a": "holds", "b": "holds"},
        "h1": {"a": "holds", "b": "depends"},
        "h2": {"a": "holds", "b": "holds"},
    }
    rows = R.seed_split_table(runs, "not resolved")
    assert rows == [
        ["a", "holds", "holds", "holds", "holds"],
        ["b", "holds", "depends", "holds", "not resolved"],
    ]
    with pytest.raises(ValueError, match="two runs"):
        R.seed_split_table({"all": {}}, "x")


# --------------------------------------------------------------- tables and figures
def _text(md) -> str:
    return getattr(md, "data", md)


def test_mnist_table_rows_and_level(saved) -> None:
    res = saved["mnist"]
    text = _text(report.mnist_table(res))
    acc = 100 * R.values(res, "classic", "probe_acc_heldout")
    iv = mean_ci(acc)
    assert (
        f"| Classic JEPA | 89.14 | {iv.mean:.2f} [{iv.low:.2f}, {iv.high:.2f}]" in text
    )
    assert "[95% CI]" in text and len(text.splitlines()) == 2 + 2 + 4
    assert "[90% CI]" in _text(report.mnist_table(res, level=0.9))


def test_forecast_table_puts_baselines_in_the_held_out_columns(saved) -> None:
    text = _text(report.forecast_table(saved["lorenz"], ("persistence",), 0.9))
    lines = text.splitlines()
    assert "B held-out 90% CI" in lines[0]
    base = lines[-1].split(" | ")
    v = R.baseline(saved["lorenz"], "persistence")
    assert base[0] == "| baseline: persistence"
    assert base[-3] == report.mean_std(v) and base[-1] == " |"
    assert len(base) == len(lines[0].split(" | "))


def test_reproduction_seed_panels_draw_seeds_baselines_and_stars(saved) -> None:
    fig = plotting.reproduction_seed_panels(
        saved["sine"],
        [
            {"key": "B_adam_heldout", "baselines": ("noise_floor",), "paper": "B"},
            {"key": "B_lstsq_heldout", "log": False},
        ],
    )
    a, b = fig.axes
    assert a.get_yscale() == "log" and b.get_yscale() == "linear"
    stars = [ln for ln in a.lines if ln.get_marker() == "*"]
    assert len(stars) == 1 and len(stars[0].get_xdata()) == 4
    assert not [ln for ln in b.lines if ln.get_marker() == "*"]
    matplotlib.pyplot.close(fig)


def test_digit_halves_two_rows() -> None:
    import torch

    left, right = torch.rand(3, 1, 28, 14), torch.rand(3, 1, 28, 14)
    fig = plotting.digit_halves(left, right)
    assert len(fig.axes) == 6 and len(fig.axes[0].images) == 1
    matplotlib.pyplot.close(fig)
