"""The claim ledger (``bijepa_nb.analysis.ledger``): its pages follow the saved results,
its verdicts agree with chapter 8's, and its rules do what they say."""

from pathlib import Path

import numpy as np
import pytest

from bijepa_nb.analysis import ledger, results, stats
from bijepa_nb.analysis.stats import Interval

BOOK = Path(__file__).resolve().parents[1] / "book"


@pytest.fixture(scope="module")
def saved():
    return ledger.load_results(BOOK / "results")


@pytest.fixture(scope="module")
def entries(saved):
    return ledger.findings(saved)


def test_the_committed_pages_follow_the_saved_results(entries):
    stale = "stale: run python -m bijepa_nb.book --ledger"
    assert (BOOK / "ledger.md").read_text() == ledger.ledger_page(entries), stale
    assert (BOOK / "_findings.md").read_text() == ledger.findings_table(entries), stale


def test_the_introduction_shows_the_findings_and_links_the_ledger():
    intro = (BOOK / "intro.md").read_text()
    assert "```{include} _findings.md" in intro
    assert "(ledger.md)" in intro


def test_every_chapter_the_findings_cite_exists(entries):
    for e in entries:
        assert (BOOK / f"{e.chapter}.ipynb").is_file(), e.chapter


def _entry(entries, claim_start, *measure_parts):
    (e,) = [
        x
        for x in entries
        if x.claim.startswith(claim_start)
        and all(m in x.measure for m in measure_parts)
    ]
    return e


def test_ledger_and_chapter_8_agree_on_ten_seeds(saved, entries):
    """Chapter 8 judges "X beats Y" by both held-out probes, explosion by the norm
    growth (above 2) or else the loss rebound, smoothness on sine and Lorenz together:
    the ledger's separate measures, combined by those rules, give the same words."""
    ch8 = {
        c.text.split(" (")[0].split(":")[0]: c.verdict
        for c in results.paper_claims(saved)
    }

    def two(a, b):
        ok = [a == "holds", b == "holds"]
        return "holds" if all(ok) else "depends" if any(ok) else "does not hold"

    for claim in (
        "BiJEPA beats classic JEPA on sine",
        "BiJEPA beats classic JEPA on Lorenz",
        "Without constraints",
        "The unit sphere hurts",
    ):
        adam = _entry(entries, claim, "B error ratio", "Adam probe, held-out").direction
        exact = _entry(entries, claim, "B error ratio", "least squares").direction
        (word,) = [
            w
            for k, w in ch8.items()
            if k.startswith(claim.split(" on ")[0])
            and (" on " not in claim or claim.split(" on ")[1][:4] in k)
        ]
        assert two(adam, exact) == word, claim
    growth = _entry(entries, "Unconstrained BiJEPA's embedding", "norm").direction
    rebound = _entry(entries, "Unconstrained BiJEPA's loss", "rebound").direction
    explosion = (
        "holds"
        if growth == "holds"
        else "depends"
        if rebound == "holds"
        else ("does not hold")
    )
    (word,) = [
        w for k, w in ch8.items() if k.startswith("Unconstrained BiJEPA explodes")
    ]
    assert explosion == word
    smooth = [
        e.direction for e in entries if e.claim.startswith("BiJEPA's training loss")
    ]
    (word,) = [w for k, w in ch8.items() if k.startswith("BiJEPA's training loss")]
    assert two(*smooth) == word
    mnist = _entry(entries, "On MNIST", "accuracy").direction
    (word,) = [w for k, w in ch8.items() if k.startswith("MNIST")]
    assert mnist == word


def _e(ours, paper=None, one_run=None):
    return ledger.Entry(
        "c", "08_verdict", "m", paper, ours, one_run or ours, True, 1.0, ("holds",)
    )


def test_size_and_direction_words():
    iv = Interval(2.0, 0.1, 1.5, 2.5, 10)
    assert _e(iv).direction == "holds" and _e(iv).size == "–"
    assert _e(iv, paper=2.2).size == "as the paper"
    assert _e(iv, paper=1.2).size == "larger"
    assert _e(iv, paper=3.0).size == "smaller"
    below = Interval(0.5, 0.1, 0.4, 0.6, 10)
    assert _e(below).direction == "reversed"
    assert _e(below).conclusion == "not resolved"  # a half said "holds"
    wide = Interval(1.0, 0.1, 0.5, 4.0, 10)
    assert _e(iv, paper=3.0, one_run=wide).paper_run == "a plausible run"
    assert _e(iv, paper=5.0, one_run=wide).paper_run == "outside"


def test_prediction_interval_covers_one_new_run():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        x = rng.lognormal(0.0, 0.5, 6)
        pi = stats.prediction_interval(x, log=True)
        hits += pi.low <= rng.lognormal(0.0, 0.5) <= pi.high
    assert 0.93 < hits / 2000 < 0.97
    ci = stats.geometric_mean_ci(x)
    assert pi.low < ci.low and pi.high > ci.high  # wider than the mean's interval


def test_prediction_interval_refuses_bad_input():
    with pytest.raises(ValueError, match="positive"):
        stats.prediction_interval([1.0, -1.0], log=True)
    with pytest.raises(ValueError, match=">= 2"):
        stats.prediction_interval([1.0])
    with pytest.raises(ValueError, match="level"):
        stats.prediction_interval([1.0, 2.0], level=1.5)


def test_missing_results_name_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="bijepa_nb.reproduce"):
        ledger.load_results(tmp_path)
