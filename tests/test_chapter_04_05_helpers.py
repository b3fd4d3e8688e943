"""Helpers of chapters 4 (sine) and 5 (Lorenz): integrator errors, raw Lorenz baselines,
the Lorenz figures, the claim table and the comparison with a rerun on other seeds."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from bijepa_nb import LorenzConfig
from bijepa_nb.analysis import plotting, report, stats, verdicts
from bijepa_nb.core import data
from bijepa_nb.experiments import baselines
from bijepa_nb.experiments.paper_runs import run_experiment

SMALL = LorenzConfig(n_train=64, n_probe=64, n_test=32)


def test_integrator_errors_rk4_far_closer_than_euler():
    rel = baselines.lorenz_integrator_errors(8, SMALL, seed=1)
    assert set(rel) == set(data.LORENZ_INTEGRATORS)
    for r in rel.values():
        assert r.shape == (8, SMALL.seq_len) and np.isfinite(r).all()
    # Euler's local error is O(dt^2) per step, RK4's O(dt^5): orders of magnitude apart
    assert np.median(rel["euler"][:, -1]) > 1e3 * np.median(rel["rk4"][:, -1])
    # the error grows along the trajectory
    assert np.median(rel["euler"][:, -1]) > np.median(rel["euler"][:, 0])
    with pytest.raises(ValueError, match="n must"):
        baselines.lorenz_integrator_errors(0, SMALL)


def test_quadratic_features_are_the_last_state_and_its_products():
    states = torch.tensor([[[9.0, 9.0, 9.0], [1.0, 2.0, 3.0]]])
    got = baselines.quadratic_features(states)
    want = torch.tensor([[1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0, 6.0, 9.0]])
    assert got.dtype == torch.float64 and torch.equal(got, want.double())


def test_lorenz_raw_baselines_quadratic_exact_on_euler_only():
    scores = {
        name: baselines.lorenz_raw_baselines(ld.probe, ld.test)
        for name, ld in ((i, data.lorenz_data(SMALL, 0, i)) for i in ("euler", "rk4"))
    }
    for s in scores.values():
        assert s["linear extrapolation"] < s["persistence"]
        assert s["least squares on the raw context"] < s["linear extrapolation"]
    assert scores["euler"]["quadratic map of the last state"] < 1e-10
    assert scores["rk4"]["quadratic map of the last state"] > 1e-9


def test_lorenz_figures():
    ld = data.lorenz_data(SMALL, 0)
    rel = baselines.lorenz_integrator_errors(4, SMALL)
    ax = plotting.integrator_errors(rel, SMALL.context_len)
    assert len(ax.lines) == len(rel) + 1  # one median per integrator + the context end
    ax = plotting.lorenz_samples(ld.train.context[:3], ld.train.target[:3])
    assert len(ax.lines) == 6
    runs = {
        m: run_experiment(
            "lorenz", m, 0, data=ld, num_steps=20, probe_epochs=2, progress=False
        )
        for m in ("classic", "expressive")
    }
    fig = plotting.lorenz_forecast_panel(
        runs, {"classic": "C", "expressive": "B"}, n_show=5, epochs=2
    )
    middle = fig.axes[1]
    assert [line.get_label() for line in middle.lines] == ["truth", "C", "B"]
    assert all(len(line.get_xdata()) == 5 for line in middle.lines)
    matplotlib.pyplot.close("all")


def test_ratio_verdicts_rule():
    good, bad = [1.0, 1.1, 0.9, 1.0, 1.05], [3.0, 3.2, 2.9, 3.1, 3.0]
    noisy = [1.0, 3.0, 0.5, 2.0, 0.7]
    table, words = report.ratio_verdicts(
        {
            "W beats L": {"a": (bad, good), "b": (bad, good)},
            "unresolved on b": {"a": (bad, good), "b": (noisy, good)},
            "L beats W": {"a": (good, bad)},
        },
        ["a", "b"],
    )
    assert words == {
        "W beats L": "holds",
        "unresolved on b": "depends",
        "L beats W": "reversed",
    }
    assert "| L beats W |" in table.data and "| – |" in table.data
    with pytest.raises(ValueError, match="measures"):
        report.ratio_verdicts({"x": {"c": (bad, good)}}, ["a"])


def test_replication_report(tmp_path):
    path = tmp_path / "rerun.json"
    words = {"claim 1": "holds", "claim 2": "holds"}
    summary, table = report.replication_report(words, [0, 1], str(path))
    assert table is None and "no rerun" in summary
    report.replication_report(
        {"claim 1": "holds", "claim 2": "does not hold"}, [5, 6], str(path), save=path
    )
    assert json.loads(path.read_text())["seeds"] == [5, 6]
    summary, table = report.replication_report(words, [0, 1], str(path))
    assert summary.startswith("1 of 2 verdicts agree")
    assert "| claim 2 | holds | does not hold | not resolved |" in table.data
    assert report.replication_report(words, [0, 1], str(path), quick=True)[1] is None
    # the same seeds as the saved run: nothing to compare
    assert report.replication_report(words, [6, 5], str(path))[1] is None


def test_agreement_table():
    first, second = [1.0, 2.0, 4.0], [1.0, 2.2, 4.0]
    table, out = report.agreement_table({"m": (first, second)}, ("new", "old"))
    rel, iv = out["m"]
    np.testing.assert_allclose(rel, [0.0, 0.2 / 2.2, 0.0])
    assert iv.n == 3 and iv.mean < 1  # the geometric-mean ratio new / old
    assert "| m | 0.0% | 9.1% |" in table.data and "new / old" in table.data
    with pytest.raises(ValueError, match="equally long"):
        report.agreement_table({"m": ([1.0, 2.0], [1.0])})


def test_combine_is_the_verdict_rule_on_words() -> None:
    assert verdicts.combine(["holds", "holds"]) == "holds"
    assert verdicts.combine(["reversed"]) == "reversed"
    assert verdicts.combine(["holds", "does not hold"]) == "depends"
    assert verdicts.combine(["holds", "reversed"]) == "does not hold"
    assert verdicts.combine(["does not hold", "does not hold"]) == "does not hold"
    with pytest.raises(ValueError, match="words"):
        verdicts.combine([])


def test_holm_over_a_chapter_weakens_only_what_the_family_cannot_carry() -> None:
    weak = np.exp([0.10, 0.02, 0.15, 0.05, 0.08])  # holds alone, p about 0.02
    strong = [2.0, 2.1, 1.9, 2.05, 1.95]
    c = verdicts.ratio_claim
    claims = {
        "strong on both": {"a": c("s1", strong), "b": c("s2", strong)},
        "weak on one": {"a": c("w", weak), "b": c("s3", strong)},
        "weak alone": {"a": c("w2", weak)},
        "weak too": {"a": c("w3", weak)},
    }
    p = stats.interval_pvalue(claims["weak alone"]["a"].interval, 1.0)
    # below the level alone, above it times the three weak tests
    assert 0.017 < p < 0.05
    judged = verdicts.holm_claims(claims)
    assert judged["strong on both"] == ("holds", "holds", 2)
    assert judged["weak on one"] == ("holds", "depends", 2)
    assert judged["weak alone"] == ("holds", "does not hold", 1)
    line, table, words = report.holm_table(claims)
    assert line == (
        "Holm's correction over 6 tests of 4 claims: 1 of 4 claims keep their word"
    )
    assert "| weak on one | 2 | holds | depends |" in table.data
    assert words["weak alone"] == "does not hold"
    with pytest.raises(ValueError, match="at least one test"):
        verdicts.holm_claims({"empty": {}})


def test_ratio_verdicts_words_are_their_comparisons() -> None:
    lo, win = [2.0, 2.2, 1.8, 2.1], [1.0, 1.0, 1.0, 1.0]
    claims = {"w beats l": {"a": (lo, win), "b": (win, win)}}
    comps = report.ratio_comparisons(claims, ("a", "b"))
    _, words = report.ratio_verdicts(claims, ("a", "b"))
    assert words["w beats l"] == verdicts.combine(
        [t.verdict for t in comps["w beats l"].values()]
    )
    with pytest.raises(ValueError, match="must hold some of the measures"):
        report.ratio_comparisons({"x": {"c": (lo, win)}}, ("a",))
