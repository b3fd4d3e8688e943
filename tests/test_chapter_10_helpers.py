"""Chapter 10's machinery: geometric means over seeds, the best cell, the near-best rule,
the verdict words and their check on subsets of the seeds, and the chapter's figures
and tables (bijepa_nb.analysis.maps, plotting/report "chapter 10" sections)."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from bijepa_nb.analysis import maps, plotting, report, verdicts
from bijepa_nb.analysis.stats import geometric_mean_ci, paired_ratio_ci

ALPHAS = [0.0, 0.5, 1.0]
TAUS = [0.9, 0.995]
PAPER = (0.5, 0.995)


def grid(seed: int = 0, seeds: int = 5) -> np.ndarray:
    """[mode=2, alpha=3, tau=2, seeds]: alpha = 0.5 clearly best in both modes, alpha = 1
    twice as bad, alpha = 0 ten times; tau = 0.995 30% worse; 5% seed noise on log MSE."""
    rng = np.random.default_rng(seed)
    base = np.array([10.0, 1.0, 2.0])[None, :, None, None] * 1e-3
    tau = np.array([1.0, 1.3])[None, None, :, None]
    noise = np.exp(0.05 * rng.standard_normal((2, 3, 2, seeds)))
    return base * tau * noise


def test_geometric_means_drop_diverged_seeds_and_refuse_non_positive():
    v = np.array([[1.0, 4.0, np.nan], [np.nan, np.nan, np.nan]])
    out = maps.geometric_means(v)
    assert out[0] == pytest.approx(2.0) and np.isnan(out[1])
    with pytest.raises(ValueError, match="positive"):
        maps.geometric_means(np.array([1.0, -1.0]))


def test_best_cell_is_the_lowest_geometric_not_arithmetic_mean():
    # cell (0, 0): one bad seed -> arithmetic 25.75, geometric 3.16; cell (1, 0): 5, 5
    v = np.full((2, 2, 4), 50.0)
    v[0, 0] = [1.0, 1.0, 1.0, 100.0]
    v[1, 0] = 5.0
    assert maps.best_cell(v, [0.0, 1.0], [0.9, 1.0]) == (0.0, 0.9)
    v[0, 0, 1] = np.nan  # a cell with a diverged seed is never the best
    assert maps.best_cell(v, [0.0, 1.0], [0.9, 1.0]) == (1.0, 0.9)
    with pytest.raises(ValueError, match="alpha, tau"):
        maps.best_cell(v, [0.0], [0.9, 1.0])


def test_near_best_overlaps_the_log_scale_interval_of_the_best():
    rows = np.array(
        [
            [1.0, 1.1, 0.9, 1.05],  # best
            [1.1, 1.2, 1.0, 1.15],  # overlaps
            [5.0, 5.1, 4.9, 5.2],  # far above
            [1.0, np.nan, np.nan, np.nan],  # one seed: no interval, never near
        ]
    )
    assert maps.near_best(rows) == [0, 1]
    best, far = geometric_mean_ci(rows[0]), geometric_mean_ci(rows[2])
    assert far.low > best.high


def test_paper_against_best_words_and_intervals():
    v = grid()[0]
    c = maps.paper_against_best(v, ALPHAS, TAUS, PAPER)
    assert c.best == (0.5, 0.9) and c.word == "beaten"  # 30% on 5% noise: above 1
    assert c.ratio.mean == pytest.approx(
        paired_ratio_ci(v[1, 1], v[1, 0]).mean, rel=1e-12
    )
    assert c.paper_interval.mean == pytest.approx(maps.geometric_means(v[1, 1]))
    v[1, 1] = v[1, 0] * np.exp([0.3, -0.3, 0.2, -0.2, 0.01])  # noisy and not worse
    assert maps.paper_against_best(v, ALPHAS, TAUS, PAPER).word == "on par"


def test_map_verdicts_names_every_claim():
    words = maps.map_verdicts(grid(), ALPHAS, TAUS, ["m1", "m2"], PAPER)
    assert len(words) == 2 * (2 + len(ALPHAS) + len(TAUS))
    assert words["m1: α=0.5 beats classic α=1 at τ=0.995"] == "holds"
    assert words["m2: α=0 at τ=0.995"] == "worse than the best"
    assert words["m2: α=0.5 at τ=0.995"] == "near the best"
    assert words["m1: τ=0.9 at α=0.5"] == "near the best"
    assert words["m1: τ=0.995 at α=0.5"] == "worse than the best"
    assert set(words.values()) <= set(verdicts.WEAKER)


def test_seed_splits_and_split_verdicts():
    splits = verdicts.seed_splits(5)
    assert splits["without seed 2"] == [0, 1, 3, 4]
    assert splits["seeds 0-2"] == [0, 1, 2] and splits["seeds 2-4"] == [2, 3, 4]
    assert len(splits) == 7
    with pytest.raises(ValueError, match="num_seeds"):
        verdicts.seed_splits(2)
    v = grid()
    kw = dict(alphas=ALPHAS, taus=TAUS, modes=["m1", "m2"], paper=PAPER)
    by_split = maps.split_verdicts([(v, kw)], {"odd": [1, 3, 4]})
    assert by_split["odd"] == maps.map_verdicts(v[..., [1, 3, 4]], **kw)


def test_robust_words_keep_agreement_and_weaken_a_flip():
    full = {"a": "beaten", "b": "holds", "c": "on par", "d": "worse than the best"}
    splits = {
        "s1": {"a": "beaten", "b": "holds", "c": "beaten", "d": "near the best"},
        "s2": {
            "a": "beaten",
            "b": "does not hold",
            "c": "on par",
            "d": "near the best",
        },
    }
    rows = {r[0]: r for r in verdicts.robust_words(full, splits)}
    assert rows["a"] == ["a", "beaten", "2 of 2", "", "beaten"]
    assert rows["b"][3:] == ["s2", "not resolved"]
    assert rows["c"][3:] == ["s1", "on par"]  # a split that finds more changes nothing
    assert rows["d"][2:] == ["0 of 2", "s1, s2", "near the best"]


def test_seed_spread():
    v = np.array([[1.0, 3.0, np.nan], [np.nan, np.nan, np.nan]])
    out = maps.seed_spread(v)
    assert out[0] == 3.0 and np.isnan(out[1])


def test_load_or_sweep_reads_and_validates(tmp_path):
    from test_widgets import fake_sweep

    f = tmp_path / "maps.json"
    res = fake_sweep()
    f.write_text(json.dumps(res))
    loaded = maps.load_or_sweep(f, "sine")
    assert loaded == json.loads(f.read_text())
    assert maps.describe(loaded).startswith(f"{res['experiment']} sweep: ")
    res["grid"]["alpha"] = res["grid"]["alpha"][:-1]  # no longer matches the points
    f.write_text(json.dumps(res))
    with pytest.raises(ValueError):
        maps.load_or_sweep(f, "sine")


def test_figures_have_one_panel_per_map():
    v = grid()
    means = maps.geometric_means(v)
    fig = plotting.map_row(
        {"m1": means[0], "m2": means[1]},
        ALPHAS,
        TAUS,
        marks={"m1": {"paper": PAPER, "best": (0.5, 0.9)}},
        hatch={"m2": np.zeros((3, 2), bool)},
    )
    titles = [a.get_title() for a in fig.axes]  # the maps, then their colour bars
    assert titles[:2] == ["m1", "m2"] and len(fig.axes) == 4
    fig = plotting.profile_row(ALPHAS, {"B": {"m1": v[0, :, 1]}, "A": {}}, "α")
    assert [a.get_title() for a in fig.axes] == ["B", "A"]
    band = fig.axes[0].collections[0].get_paths()[0].vertices[:, 1]
    ci = geometric_mean_ci(v[0, 1, 1])  # alpha = 0.5: the band is log-scale
    assert band.min() <= ci.low * (1 + 1e-9) and ci.high <= band.max() * (1 + 1e-9)
    fig = plotting.explosion_maps(
        np.zeros((3, 2)), means[0], means[1], ALPHAS, TAUS, 5, "m1", PAPER
    )
    assert fig.axes[0].get_title() == "m1: seeds diverged (of 5)"
    plt.close("all")


def test_tables():
    v = grid()
    comps = {"m1": maps.paper_against_best(v[0], ALPHAS, TAUS, PAPER)}
    text = report.paper_vs_best_table(comps)
    text = text.data if hasattr(text, "data") else text
    row = text.splitlines()[2]
    assert "α=0.5, τ=0.9" in row and row.rstrip(" |").endswith("beaten")
    assert "geometric mean [95% CI]" in text.splitlines()[0]
    rows = [["a", "holds", "7 of 7", "", "holds"], ["b", "holds", "6 of 7", "x", "no"]]
    text = report.robustness_table(rows)
    text = text.data if hasattr(text, "data") else text
    assert len(text.splitlines()) == 3 and text.splitlines()[2].startswith("| b |")


def test_conclusions_table_marks_the_claims_that_moved():
    rows = [
        ["m1: x", "holds", "5 of 7", "s1, s2", "does not hold"],
        ["m1: y", "on par", "7 of 7", "", "on par"],
        ["m2: x", "holds", "7 of 7", "", "holds"],
    ]
    text = report.conclusions_table(rows, ["m1", "m2"], ["x", "y"])
    text = text.data if hasattr(text, "data") else text
    lines = text.splitlines()
    assert lines[0] == "| map | x | y |"
    assert lines[2] == (
        "| m1 | does not hold (all seeds: holds; same on 5 of 7) | on par |"
    )
    assert lines[3] == "| m2 | holds | – |"


def test_paired_tests_are_the_family_holm_corrects():
    v = grid()
    fam = maps.paired_tests(v, ALPHAS, TAUS, ["m1", "m2"], PAPER)
    assert len(fam) == 4 and all(c.null == 1.0 for c in fam.values())
    beats = fam["m1: α=0.5 beats classic α=1 at τ=0.995"]
    assert beats.verdict == "holds" and beats.interval.log
    words = maps.map_verdicts(v, ALPHAS, TAUS, ["m1", "m2"], PAPER)
    assert words["m1: α=0.5 beats classic α=1 at τ=0.995"] == beats.verdict
    fixed = verdicts.holm_family(fam)
    assert set(fixed) == set(fam)
    assert fixed["m1: α=0.5 beats classic α=1 at τ=0.995"].verdict == "holds"


def test_cell_values_fresh_scores_and_explosion_at():
    from test_widgets import fake_sweep

    res = fake_sweep()
    g = res["grid"]
    mode = "expressive"  # no seed diverges there
    cell = (g["alpha"][0], g["ema_momentum"][-1])
    v = maps.cell_values(res, "B_lstsq_heldout", mode, cell)
    assert v.shape == (len(g["seeds"]),)
    with pytest.raises(ValueError, match="alpha"):
        maps.cell_values(res, "B_lstsq_heldout", mode, (0.123, cell[1]))
    with pytest.raises(ValueError, match="mode"):
        maps.cell_values(res, "B_lstsq_heldout", "nope", cell)
    other = (g["alpha"][-1], g["ema_momentum"][-2])
    c = maps.fresh_scores(res, mode, other, cell)
    assert c.null == 1.0 and c.verdict in {"holds", "reversed", "does not hold"}
    res["metrics"]["norm_growth_from_quarter"] = {
        "unit": "ratio",
        "split": "train",
        "description": "made up",
    }
    for p in res["points"]:
        p["per_seed"]["norm_growth_from_quarter"] = [
            None if d is not None else 2.0 + 0.1 * i
            for i, d in enumerate(p["diverged_at"])
        ]
    assert maps.explosion_at(res, mode, cell).verdict == "reversed"  # ~2x < 10x
    boom = maps.explosion_at(res, "unconstrained", (g["alpha"][0], 0.9))
    assert boom.verdict == "holds", "every seed diverged there"


def test_interval_on_the_log_scale_stays_positive():
    v = [0.001, 0.002, 0.05, 0.003, 0.0015]
    raw, log = report.interval(v), report.interval(v, log=True)
    assert raw.split("[")[1].startswith("-")  # the raw interval reaches below 0
    low = float(log.split("[")[1].split(",")[0])
    assert low > 0 and log == (
        f"{geometric_mean_ci(v).mean:.3g} [{low:.3g}, {geometric_mean_ci(v).high:.3g}]"
    )
