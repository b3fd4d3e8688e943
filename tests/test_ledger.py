"""The claim ledger (``bijepa_nb.analysis.ledger``): its pages follow the saved results,
its verdicts agree with chapter 8's, and its rules do what they say."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bijepa_nb.analysis import ledger, results, stats, verdicts
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
    page = ledger.ledger_page(entries, ledger.own_claims_page(BOOK))
    assert (BOOK / "ledger.md").read_text() == page, stale
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
    """Chapter 8 judges "X beats Y" by both held-out probes, explosion by the one rule
    (``verdicts.explodes``), the loss rebound apart, smoothness on sine and Lorenz together:
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
    explosion = _entry(entries, "Unconstrained BiJEPA's embeddings explode", "rule")
    (word,) = [
        w for k, w in ch8.items() if k.startswith("Unconstrained BiJEPA explodes")
    ]
    assert explosion.direction == word == "reversed", "one explosion rule"
    rebound = _entry(entries, "Unconstrained BiJEPA's loss", "rebound").direction
    (word,) = [w for k, w in ch8.items() if k.startswith("Unconstrained BiJEPA's loss")]
    assert rebound == word
    smooth = [
        e.direction for e in entries if e.claim.startswith("BiJEPA's training loss")
    ]
    (word,) = [w for k, w in ch8.items() if k.startswith("BiJEPA's training loss")]
    assert two(*smooth) == word
    mnist = _entry(entries, "On MNIST", "accuracy").direction
    (word,) = [w for k, w in ch8.items() if k.startswith("MNIST")]
    assert mnist == word


def test_chapter_8s_direction_claims_state_no_size(saved):
    # a direction verdict beside a stated size reads as if the size held: sizes are
    # judged in the ledger's size column (ledger.size_table), never in these labels
    for c in results.paper_claims(saved):
        assert not re.search(r"nearly|\d+(\.\d+)? ?(points|x\b|×)", c.text), c.text


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


def test_interval_pvalue_matches_the_t_test_and_the_interval():
    rng = np.random.default_rng(1)
    for _ in range(50):
        x = rng.lognormal(0.2, 0.4, 6)
        g = stats.geometric_mean_ci(x)
        assert g.log and not stats.mean_ci(x).log
        p = stats.interval_pvalue(g, 1.0)
        assert p == pytest.approx(stats.t_pvalue(np.log(x), 0.0))
        assert (p < 0.05) == g.excludes(1.0)
        d = stats.mean_ci(x - 1.0)
        assert stats.interval_pvalue(d, 0.0) == pytest.approx(stats.t_pvalue(x - 1))
    one = stats.mean_ci([1.0])
    assert np.isnan(stats.interval_pvalue(one, 0.0))
    with pytest.raises(ValueError, match="null must be positive"):
        stats.interval_pvalue(g, 0.0)


def test_holm_family_corrects_a_family_and_leaves_untested_words():
    from bijepa_nb.analysis import verdicts

    rng = np.random.default_rng(2)
    edge1, edge2 = (
        [1.05, 1.10, 1.0, 1.08, 1.0, 1.09],
        [1.06, 1.09, 1.0, 1.08, 1.0, 1.07],
    )
    family = {
        "big": verdicts.ratio_claim("big", rng.lognormal(1.0, 0.2, 10)),
        "small": verdicts.ratio_claim("small", rng.lognormal(-1.0, 0.2, 10)),
        "edge1": verdicts.ratio_claim("edge1", edge1),  # p between 0.025 and 0.05
        "edge2": verdicts.ratio_claim("edge2", edge2),
        "boom": verdicts.explodes("boom", [2.0, 2.1], diverged=1),
    }
    for k in ("edge1", "edge2"):
        assert 0.025 < stats.interval_pvalue(family[k].interval, 1.0) < 0.05
    raw = {k: c.verdict for k, c in family.items()}
    assert raw == dict(
        big="holds", small="reversed", edge1="holds", edge2="holds", boom="holds"
    )
    fixed = verdicts.holm_family(family)
    want = dict(raw, edge1="does not hold", edge2="does not hold")
    assert {k: c.verdict for k, c in fixed.items()} == want
    assert fixed["edge1"].interval == family["edge1"].interval
    # alone, or after only far smaller p-values, an edge claim keeps its word
    assert verdicts.holm_family({"e": family["edge1"]})["e"].verdict == "holds"
    grouped = verdicts.holm_groups({"g": {"a": family["big"], "b": family["edge1"]}})
    assert grouped["g"]["b"].verdict == "holds"
    # a claim "below" (stays bounded) keeps its side through the correction
    bounded = verdicts.Comparison("b", family["small"].interval, "holds", 1.0, False)
    assert verdicts.holm_family({"b": bounded})["b"].verdict == "holds"
    with pytest.raises(ValueError, match="level"):
        verdicts.holm_family(family, level=1.5)


def test_three_significant_digits():
    assert stats.sig(0.051734) == "0.0517"
    assert stats.sig(6.2149) == "6.21"
    assert stats.sig(1.234e-5) == "1.23e-05"
    assert stats.sig(float("nan")) == "–"
    iv = stats.Interval(0.0667, 0.1, 0.0549, 0.0797, 5)
    assert stats.fmt_interval(iv) == "0.0667 [0.0549, 0.0797]"


def test_every_ledger_entry_has_a_corrected_verdict(entries):
    words = {"holds", "reversed", "does not hold", "too few seeds"}
    for e in entries:
        assert e.holm in words, e
        if e.holm != e.direction:  # Holm only ever withdraws a word
            assert e.holm == "does not hold", e


#: Chapters' saved verdicts (their rerun on seeds 5-9, ``*_replication.json``) and the
#: ledger entries that measure the same claim: (file, chapter's claim, ledger claim
#: start, ledger measure parts per probe). The chapter's rule over probes is
#: ``verdicts.verdict`` ("depends": one probe yes, the other no).
CHAPTER_ROWS = [
    (
        "sine",
        "BiJEPA expressive beats classic JEPA",
        "BiJEPA beats classic JEPA on sine",
    ),
    ("sine", "unconstrained beats expressive", "Without constraints"),
    ("sine", "expressive beats restrictive (the sphere costs)", "The unit sphere"),
    (
        "lorenz",
        "euler: BiJEPA beats classic JEPA",
        "BiJEPA beats classic JEPA on Lorenz",
    ),
]
STABILITY_ROWS = [
    ("loss rebounds: unconstrained: last 100 / steps 400\u2013600", "Unconstrained BiJEPA's loss"),
    ("norms still grow: unconstrained: end / halfway", "Unconstrained BiJEPA's embedding norms"),
]  # fmt: skip


def test_chapter_verdicts_and_the_ledger_agree_on_the_same_seeds(entries):
    """Chapters 3, 4 and 5 saved their verdicts on seeds 5-9; the ledger's second half
    is seeds 5-9 of the reproductions. The same claim must get the same word (a
    chapter that changes its rule, or a ledger entry that measures something else,
    fails here)."""
    for name, chapter_claim, ledger_claim in CHAPTER_ROWS:
        saved = json.loads((BOOK / "results" / f"{name}_replication.json").read_text())
        assert saved["seeds"] == [5, 6, 7, 8, 9]
        words = [
            _entry(entries, ledger_claim, "B error ratio", probe).halves[1]
            for probe in ("Adam probe, held-out", "least squares")
        ]
        assert saved["verdicts"][chapter_claim] == verdicts.combine(words), (
            chapter_claim
        )
    saved = json.loads((BOOK / "results" / "stability_replication.json").read_text())
    for chapter_claim, ledger_claim in STABILITY_ROWS:
        (e,) = [x for x in entries if x.claim.startswith(ledger_claim)]
        assert saved["verdicts"][chapter_claim] == e.halves[1], chapter_claim
    mnist = _entry(entries, "On MNIST", "accuracy")
    assert mnist.direction == mnist.halves[0] == mnist.halves[1] == "holds"


def test_paper_run_table_words():
    ours = {"a": [0.055, 0.06, 0.08, 0.07, 0.065], "b": [0.011, 0.012, 0.013, 0.0125]}
    text = ledger.paper_run_table({"a": 0.0517, "b": 0.0122}, ours)
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()[2:]}
    assert rows["a"].endswith("| larger | a plausible run |")  # ours lie above it
    assert rows["b"].endswith("| as the paper | a plausible run |")
    assert "0.055 – 0.08" in rows["a"]
    sizes = ledger.size_table(ledger.findings(ledger.load_results(BOOK / "results")))
    assert "| larger | outside |" in sizes  # MNIST: 2.7 points, ours larger
