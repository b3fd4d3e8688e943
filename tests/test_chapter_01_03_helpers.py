"""Helpers that chapters 1-3 call: probe and interval tables, verdicts of claims over
seeds, and their figures (bijepa_nb.analysis.report and bijepa_nb.analysis.plotting, sections 01-03)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from bijepa_nb.analysis import plotting, report, stats, verdicts
from bijepa_nb.analysis.verdicts import verdict_words
from bijepa_nb.core.training import History


def text(md) -> str:
    return getattr(md, "data", md)


def test_probe_table_rows_and_baselines() -> None:
    scores = {
        "A": {"adam_probeset": 0.02, "adam_heldout": 0.03, "lstsq_heldout": 0.01},
        "B": {"adam_probeset": 0.05, "adam_heldout": 0.06, "lstsq_heldout": 0.015},
    }
    lines = text(report.probe_table(scores, {"mean": 0.5})).splitlines()
    assert lines[2] == "| Protocol A | 0.0200 | 0.0300 | 0.0100 |"
    assert lines[3] == "| Protocol B | 0.0500 | 0.0600 | 0.0150 |"
    assert lines[4] == "| mean |  | 0.5000 |  |"


def test_interval_table_cells_are_mean_and_interval() -> None:
    results = {"a": [{"x": 1.0}, {"x": 3.0}], "b": [{"x": 2.0}, {"x": 2.0}]}
    lines = text(report.interval_table(results, {"X": "x"}, label="who")).splitlines()
    assert lines[0] == "| who | X |"
    iv = stats.mean_ci([1.0, 3.0])
    assert lines[2] == f"| a | 2.0000 [{iv.low:.4f}, {iv.high:.4f}] |"
    assert lines[3] == "| b | 2.0000 [2.0000, 2.0000] |"
    with pytest.raises(ValueError):
        report.interval_table({}, {"X": "x"})


def test_a_log_interval_table_never_reaches_below_zero() -> None:
    # a spread-out positive quantity: its raw t-interval crosses zero, its log one not
    results = {"a": [{"x": v} for v in (0.001, 0.002, 0.05)]}
    assert stats.mean_ci([0.001, 0.002, 0.05]).low < 0
    line = text(report.interval_table(results, {"X": "x"}, log=True)).splitlines()[2]
    g = stats.geometric_mean_ci([0.001, 0.002, 0.05])
    assert line == f"| a | {stats.fmt_interval(g)} |"
    assert g.low > 0


def test_claims_by_metric_verdicts() -> None:
    rng = np.random.default_rng(0)
    good = [{"e": 0.01 * (1 + 0.05 * r), "f": 0.02} for r in rng.normal(size=5)]
    bad = [
        {"e": 0.05 * (1 + 0.05 * r), "f": 0.02 + 1e-4 * r} for r in rng.normal(size=5)
    ]
    claims = verdicts.claims_by_metric(
        {"good": good, "bad": bad}, "good", ["bad"], {"E": "e", "F": "f"}
    )
    assert claims["E"]["bad"].claim == "bad / good"
    assert claims["E"]["bad"].verdict == "holds"
    assert 4.5 < claims["E"]["bad"].interval.mean < 5.5
    assert claims["F"]["bad"].verdict == "does not hold"
    reverse = verdicts.claims_by_metric(
        {"good": good, "bad": bad}, "bad", ["good"], {"E": "e"}
    )
    assert reverse["E"]["good"].verdict == "reversed"
    words = verdict_words(claims)
    assert words == {"E: bad / good": "holds", "F: bad / good": "does not hold"}
    table = text(report.comparison_table(claims)).splitlines()
    assert table[2].startswith("| E | bad / good | ") and table[2].endswith("| holds |")


def test_ratio_claim_against_null() -> None:
    assert verdicts.ratio_claim("r", [2.0, 2.2, 1.9]).verdict == "holds"
    assert verdicts.ratio_claim("r", [0.5, 0.45, 0.55]).verdict == "reversed"
    assert verdicts.ratio_claim("r", [0.5, 2.0, 1.0]).verdict == "does not hold"
    c = verdicts.ratio_claim("r", [5.0, 6.0, 5.5], null=10.0)
    assert c.verdict == "reversed" and c.interval.high < 10
    with pytest.raises(ValueError):
        verdicts.ratio_claim("r", [1.0, -1.0])


def _history(n: int = 100) -> History:
    steps = np.arange(0, n, 10)
    return History(
        np.linspace(1, 0.1, n),
        np.linspace(1, 0.1, n),
        np.linspace(1, 0.2, n),
        steps,
        np.linspace(1, 3, len(steps)),
        np.linspace(1, 2.5, len(steps)),
    )


def test_figures_have_their_axes() -> None:
    fig = plotting.architectures()
    assert [ax.get_title() for ax in fig.axes] == ["(A) classic JEPA", "(B) BiJEPA"]
    results = {"a": [{"x": 1.0}, {"x": 2.0}], "b": [{"x": 3.0}, {"x": 4.0}]}
    fig = plotting.seed_dot_panels(results, {"first": "x", "second": "x"})
    assert [ax.get_title() for ax in fig.axes] == ["first", "second"]
    dots = fig.axes[0].lines[0].get_ydata()
    assert list(dots) == [1.0, 2.0]
    fig = plotting.loss_and_norms({"expressive": _history()}, window=5, title="t")
    assert [ax.get_title() for ax in fig.axes] == ["t", "embedding norms"]
    assert fig.axes[1].get_yscale() == "log"
    plt.close("all")


def test_norm_growth_and_bounded_claim() -> None:
    h = _history()  # online norm 1 -> 3 over 10 logged steps
    assert verdicts.norm_growth(h, 0.5) == pytest.approx(3 / h.online_norm[5])
    assert verdicts.norm_growth(h, 0.0) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        verdicts.norm_growth(h, 1.5)
    flat = [_history() for _ in range(3)]
    claim = verdicts.bounded_claim("b", flat)
    assert claim.verdict == "holds"
    assert claim.interval.mean == pytest.approx(verdicts.norm_growth(flat[0], 0.25))
    assert verdicts.bounded_claim("b", flat[:1]).verdict == "too few seeds"
    steep = []
    for k in (20.0, 30.0, 25.0):
        g = _history()
        g.online_norm = np.geomspace(1, k, len(g.online_norm))
        steep.append(g)
    assert verdicts.bounded_claim("b", steep, start=0.0).verdict == "reversed"
    flat[1].diverged_at = 50
    assert verdicts.bounded_claim("b", flat).verdict == "reversed", "it exploded"


def test_one_explosion_rule() -> None:
    """``explodes`` and ``bounded_claim`` are one rule seen from two sides: growth from
    a quarter of training to the end against tenfold, a diverged run explodes."""
    assert verdicts.EXPLOSION_LIMIT == 10.0 and verdicts.EXPLOSION_START == 0.25
    calm, wild = [1.8, 2.0, 2.1, 1.9], [40.0, 60.0, 55.0, 80.0]
    assert verdicts.explodes("e", calm).verdict == "reversed"
    assert verdicts.explodes("e", wild).verdict == "holds"
    assert verdicts.explodes("e", [2.0, 50.0, 9.0]).verdict == "does not hold"
    assert verdicts.explodes("e", calm, diverged=1).verdict == "holds"
    assert verdicts.explodes("e", calm, diverged=1).null is None  # not a test
    steep = []
    for k in (20.0, 30.0, 25.0, 40.0):
        g = _history()
        g.online_norm = np.geomspace(1, k, len(g.online_norm))
        steep.append(g)
    growth = [verdicts.norm_growth(h, verdicts.EXPLOSION_START) for h in steep]
    assert verdicts.explodes("e", growth).verdict == "does not hold"
    assert verdicts.bounded_claim("b", steep).verdict == "does not hold"
    with pytest.raises(ValueError, match="limit"):
        verdicts.explodes("e", calm, limit=1.0)
    with pytest.raises(ValueError, match="diverged"):
        verdicts.explodes("e", calm, diverged=-1)


def test_replication_table(tmp_path) -> None:
    path = tmp_path / "rerun.json"
    words = {"a": "holds", "b": "holds"}
    first = text(report.replication_table(words, [5, 6], path, save=path))
    assert first.startswith("No rerun on other seeds")
    again = {"a": "holds", "b": "reversed"}
    lines = text(report.replication_table(again, [0, 1], path)).splitlines()
    assert lines[0] == "1 of 2 verdicts agree."
    assert lines[2] == "| claim | seeds [0, 1] | seeds [5, 6] | conclusion |"
    assert lines[4] == "| a | holds | holds | holds |"
    assert lines[5] == "| b | reversed | holds | not resolved |"


def test_environment_note_is_printed_outside_a_notebook(capsys) -> None:
    from bijepa_nb.book import chapter

    line = chapter.environment_line(torch.device("cpu"))
    assert line.startswith("device: cpu (CPU), torch ")
    chapter.show_environment(line)
    assert capsys.readouterr().out == line + "\n"


def test_environment_note_is_collapsed_in_a_notebook(monkeypatch, capsys) -> None:
    from bijepa_nb.book import chapter

    shown = []
    monkeypatch.setattr(chapter, "get_ipython", lambda: object())
    monkeypatch.setattr(chapter, "display", lambda obj, raw: shown.append((obj, raw)))
    chapter.show_environment("device: cpu (CPU), torch 9 <x>")
    ((obj, raw),) = shown
    assert raw and obj["text/plain"] == "device: cpu (CPU), torch 9 <x>"
    html = obj["text/html"]
    assert html.startswith('<details class="bijepa-env"><summary>Run environment')
    assert "torch 9 &lt;x&gt;" in html and "<details open" not in html
    assert capsys.readouterr().out == ""
