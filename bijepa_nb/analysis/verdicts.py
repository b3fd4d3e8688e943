"""The book's verdict rules, stated once: how an interval over seeds becomes a word.

- ``side``: where an interval lies against a null value.
- ``verdict``: a claim measured several ways (e.g. two probes) "holds" when every
  interval lies above the null, is "reversed" when every one lies below, "depends" when
  some lie above and none below, and "does not hold" otherwise.
- ``beats`` / ``claims_by_metric`` / ``ratio_claim``: "X beats Y" on paired seeds, by
  the paired geometric-mean ratio of errors (or the difference of scores).
- ``explodes`` / ``bounded_claim``: the one explosion rule. Per run, the growth of the
  embedding norm ‖f(x)‖ from a quarter of training to its end (``EXPLOSION_START``),
  against tenfold (``EXPLOSION_LIMIT``); a run that diverged exploded. "The loss
  rebounds" and "the norms are still growing" are other claims with their own rules
  (``ratio_claim`` against 1), never parts of this one.
- ``holm_family``: Holm's correction of one chapter's family of claims.
- ``better_or_worse`` / ``lower_or_higher``: a paired difference against 0.
- ``replicate`` and ``robust_words``: a word survives only if other seeds give it too;
  a direction that other seeds do not reproduce is "not resolved" (``UNRESOLVED``),
  which is not "does not hold" (an interval that includes no difference).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.config import check_float
from . import stats
from .stats import Interval, geometric_mean_ci

#: The conclusion where seed sets (halves, subsets, a rerun) disagree on a direction:
#: the book's one word for it, in every chapter and in the ledger.
UNRESOLVED = "not resolved"


def side(iv: Interval, null: float) -> str:
    """Where an interval lies against ``null``: "above", "below", "includes", or "n < 2"."""
    if iv.n < 2 or not np.isfinite(iv.low):
        return "n < 2"
    return "above" if iv.low > null else "below" if iv.high < null else "includes"


def verdict(intervals: Sequence[Interval], null: float = 1.0) -> str:
    """The book's rule for a claim "X beats Y" measured in several ways (e.g. two probes).

    Each interval is of a quantity that exceeds ``null`` when the claim is right (an
    error ratio worse / better, an AUC difference). "holds" when every interval lies
    above ``null``; "depends" when some do and none lies below; "reversed" when every
    one lies below; "does not hold" otherwise; "too few seeds" when an interval has n < 2.
    """
    return verdict_of_sides([side(iv, null) for iv in intervals])


def verdict_of_sides(sides: Sequence[str]) -> str:
    """``verdict``'s rule on the sides ("above", "below", "includes", "n < 2") of the
    intervals, or of tests that decided a side (e.g. after Holm's correction)."""
    if not sides:
        raise ValueError("verdict needs at least one interval")
    if "n < 2" in sides:
        return "too few seeds"
    if all(s == "above" for s in sides):
        return "holds"
    if all(s == "below" for s in sides):
        return "reversed"
    if "above" in sides and "below" not in sides:
        return "depends"
    return "does not hold"


@dataclass(frozen=True)
class Comparison:
    """A claim, the interval over seeds it is judged by, and the verdict.

    null: the value the interval is tested against (None: the word does not rest on
    that one test, e.g. a run diverged; ``holm_family`` then leaves it alone);
    upward: the claim says "above ``null``" (False: "below", as "stays bounded")."""

    claim: str
    interval: Interval
    verdict: str
    null: float | None = None
    upward: bool = True

    def __str__(self) -> str:
        return f"{self.claim}: {self.interval} -> {self.verdict}"


def beats(
    scores: Mapping[str, Sequence[float]],
    winner: str,
    others: Sequence[str],
    higher_is_better: bool = False,
    level: float = 0.95,
) -> dict[str, Comparison]:
    """ "``winner`` beats X" for every X in ``others``, by the book's rule (verdicts.verdict),
    with intervals at ``level``.

    scores: name -> one value per seed (the same seeds, in the same order, for every
    name). Errors (``higher_is_better=False``): the interval of the paired geometric-mean
    ratio X / winner against 1. Scores such as an AUC: the interval of the paired
    difference winner - X against 0.
    """
    if winner not in scores:
        raise ValueError(f"winner must be one of {sorted(scores)}, got {winner!r}")
    out = {}
    for other in others:
        if other not in scores:
            raise ValueError(f"others must be in {sorted(scores)}, got {other!r}")
        a, b = np.asarray(scores[winner], float), np.asarray(scores[other], float)
        if higher_is_better:
            iv, null, what = stats.mean_ci(a - b, level), 0.0, f"{winner} - {other}"
        else:
            iv = stats.paired_ratio_ci(b, a, level)
            null, what = 1.0, f"{other} / {winner}"
        out[other] = Comparison(what, iv, verdict([iv], null), null)
    return out


def verdict_words(
    groups: Mapping[str, Mapping[str, Comparison | str]],
) -> dict[str, str]:
    """Flatten named groups of comparisons (or plain verdict words) into
    ``{"group: claim": word}``, the form in which a run's verdicts are saved and compared."""
    out = {}
    for group, comps in groups.items():
        for key, c in comps.items():
            claim = c.claim if isinstance(c, Comparison) else key
            out[f"{group}: {claim}"] = (
                c.verdict if isinstance(c, Comparison) else str(c)
            )
    return out


def replicate(
    verdicts: Mapping[str, str],
    seeds: Sequence[int],
    path: str | Path,
    save: str | Path | None = None,
) -> list[list[str]] | None:
    """Compare this run's verdicts with a saved run on other seeds; optionally save this one.

    ``path``: a JSON file ``{"seeds": [...], "verdicts": {claim: word}}`` written by
    ``save`` in an earlier run. Returns one row per claim (claim, this run, saved run,
    conclusion), or None when the file is missing or holds the same seeds. The
    conclusion keeps a word both runs agree on; where they differ, a claim ("holds",
    "reversed", "consistent") is not robust and the conclusion is ``UNRESOLVED`` ("not
    supported" for the §5.3 readings). Claims missing from either run are left out.
    """
    seeds = [int(s) for s in seeds]
    rows = None
    saved = rerun(path, seeds)
    if saved is not None:
        rows = []
        for claim, word in verdicts.items():
            other = saved[1].get(claim)
            if other is None:
                continue
            fallback = "not supported" if word in READINGS else UNRESOLVED
            both = word if word == other else fallback
            rows.append([claim, word, other, both])
    if save:
        Path(save).write_text(
            json.dumps({"seeds": seeds, "verdicts": dict(verdicts)}, indent=1) + "\n"
        )
    return rows


def rerun(
    path: str | Path, seeds: Sequence[int]
) -> tuple[list[int], dict[str, str]] | None:
    """The saved run on other seeds at ``path`` (written by ``replicate``'s ``save``):
    (its seeds, its words by claim), or None when there is no file or it holds the
    same seeds as ``seeds``."""
    path = Path(path)
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    if sorted(saved["seeds"]) == sorted(int(s) for s in seeds):
        return None
    return [int(s) for s in saved["seeds"]], dict(saved["verdicts"])


#: The verdict words of a reading of §5.3 (``loop_readings``).
READINGS = ("consistent", "not supported")


def claims_by_metric(
    results: Mapping[str, Sequence[Mapping[str, float]]],
    winner: str,
    others: Sequence[str],
    metrics: Mapping[str, str],
) -> dict[str, dict]:
    """ "``winner`` beats X" for every X in ``others``, measured by each error metric.

    results: name -> one dict of metrics per seed (the same seeds in the same order);
    metrics: label -> metric key (lower is better). Returns label -> X -> a
    ``verdicts.Comparison``: the 95% interval of the paired geometric-mean ratio X / winner
    and its verdict by the book's rule (``verdicts.verdict`` against 1) — the nested form
    that ``comparison_table`` shows and ``verdicts.verdict_words`` saves.
    """

    return {
        label: beats(
            {n: [m[key] for m in results[n]] for n in (winner, *others)}, winner, others
        )
        for label, key in metrics.items()
    }


def ratio_claim(claim: str, ratios: Sequence[float], null: float = 1.0):
    """A claim "this ratio exceeds ``null``", one ratio per seed: a ``verdicts.Comparison``
    holding the geometric mean's 95% interval (``stats.geometric_mean_ci``) and the
    book's verdict on it (``verdicts.verdict``: "holds" when the interval lies above
    ``null``, "reversed" when below, "does not hold" when it includes it)."""

    iv = geometric_mean_ci(ratios)
    return Comparison(claim, iv, verdict([iv], null), null)


#: The explosion rule's window: growth of ‖f(x)‖ from this fraction of training to its
#: end. A quarter in, the first rise of the norms is over, and a runaway feedback loop
#: has three quarters of the run to show.
EXPLOSION_START = 0.25
#: ... and its threshold: a run whose norm grows more than tenfold over that window
#: explodes. A loop that multiplies the norm by a fixed factor per step crosses it by
#: orders of magnitude; a norm that creeps up slowly stays under it.
EXPLOSION_LIMIT = 10.0

#: The word for where an interval lies, for a claim "above null" (upward) or "below".
_WORDS = {
    True: {"above": "holds", "below": "reversed", "includes": "does not hold"},
    False: {"below": "holds", "above": "reversed", "includes": "does not hold"},
}


def word(side_: str, upward: bool = True) -> str:
    """The verdict word for a claim "above the null" (``upward``) or "below" it, from
    where its interval lies (``side``): "holds", "reversed", "does not hold", or "too
    few seeds"."""
    return "too few seeds" if side_ == "n < 2" else _WORDS[upward][side_]


def explodes(
    claim: str,
    growths: Sequence[float],
    diverged: int = 0,
    limit: float = EXPLOSION_LIMIT,
) -> Comparison:
    """The book's explosion rule, the one every chapter applies: "the embeddings explode".

    growths: one per run that finished, its norm growth over the window of the rule
    (end / ``EXPLOSION_START`` of training, ``norm_growth``); diverged: how many runs
    became non-finite. A diverged run exploded, so the claim then "holds" whatever the
    others do. Otherwise the 95% interval of the geometric-mean growth decides:
    "holds" above ``limit``, "reversed" below it (the embeddings stay bounded), "does not
    hold" when it contains ``limit``.
    """
    check_float("limit", limit, 1.0, float("inf"), low_open=True)
    if diverged < 0:
        raise ValueError(f"diverged must be a count >= 0, got {diverged}")
    if diverged:  # the finite runs' growth, printed beside the word, if any finished
        nan = float("nan")
        none = Interval(nan, nan, nan, nan, 0, log=True)
        iv = geometric_mean_ci(growths) if len(growths) else none
        return Comparison(claim, iv, "holds", None)
    iv = geometric_mean_ci(growths)
    return Comparison(claim, iv, word(side(iv, limit)), limit)


def norm_growth(history, start: float = 0.5) -> float:
    """How much the mean online embedding norm ‖f(x)‖ of one run (a ``History``) grew
    from fraction ``start`` of its logged steps to the last: a ratio, 1 when flat."""

    check_float("start", start, 0.0, 1.0)
    return history.norm_growth(start)


def bounded_claim(
    claim: str,
    histories: Sequence,
    limit: float = EXPLOSION_LIMIT,
    start=EXPLOSION_START,
):
    """The claim "the embeddings stay bounded" over seeds, one ``History`` per seed:
    the explosion rule (``explodes``) read from the other side.

    Per run, the growth g of ‖f(x)‖ from fraction ``start`` of training to its end
    (``norm_growth``). Returns a ``verdicts.Comparison`` holding the 95% interval of the
    geometric mean of g (``stats.geometric_mean_ci``) and the verdict: "holds" when the
    interval lies below ``limit`` (the runs grow less than that), "reversed" when it
    lies above, "does not hold" when it contains ``limit`` ("too few seeds" for one
    run). A run that diverged (``History.diverged_at`` set) exploded: the verdict is
    then "reversed" whatever the interval of the runs' finite part says.
    """

    diverged = sum(h.diverged_at is not None for h in histories)
    boom = explodes(claim, [norm_growth(h, start) for h in histories], diverged, limit)
    flipped = {"holds": "reversed", "reversed": "holds"}
    return Comparison(
        claim,
        boom.interval,
        flipped.get(boom.verdict, boom.verdict),
        boom.null,
        upward=False,
    )


def holm_family(
    family: Mapping[str, Comparison], level: float = 0.95
) -> dict[str, Comparison]:
    """One chapter's family of claims, corrected together by Holm's step-down method
    (``stats.holm``): the chance of any false "holds" or "reversed" in the family stays
    below 1 - ``level``, whatever the dependence between the tests.

    Each claim's interval gives its two-sided t-test against its ``null``
    (``stats.interval_pvalue``); a claim keeps a word that claims a difference only
    when its adjusted p-value is below 1 - level, and otherwise becomes "does not
    hold". Claims without a test (``null`` None, or n < 2) keep their word and do not
    enter the family. Returns the same keys, each with the corrected verdict.
    """
    check_float("level", level, 0.0, 1.0, low_open=True)
    tested = [k for k, c in family.items() if c.null is not None and c.interval.n >= 2]
    out = dict(family)
    if not tested:
        return out
    p = stats.holm(
        [stats.interval_pvalue(family[k].interval, family[k].null) for k in tested]
    )
    for k, p_adj in zip(tested, p):
        c = family[k]
        where = side(c.interval, c.null) if p_adj < 1 - level else "includes"
        out[k] = Comparison(
            c.claim, c.interval, word(where, c.upward), c.null, c.upward
        )
    return out


def size_word(ours: Interval, paper: float) -> str:
    """The book's rule for a size the paper states: "as the paper" when the paper's
    number lies inside our interval of the mean, "larger" or "smaller" when our whole
    interval lies above or below it."""
    if ours.low <= paper <= ours.high:
        return "as the paper"
    return "larger" if ours.low > paper else "smaller"


#: Where a test's interval lies, read back from its word (``_WORDS`` of an upward claim).
_SIDE_OF = {
    "holds": "above",
    "reversed": "below",
    "does not hold": "includes",
    "too few seeds": "n < 2",
}


def combine(words: Sequence[str]) -> str:
    """One claim's word from the words of its tests (one per probe or measure):
    ``verdict_of_sides`` on the sides those words stand for."""
    if not words:
        raise ValueError("words must hold at least one word")
    return verdict_of_sides([_SIDE_OF[w] for w in words])


def holm_claims(
    claims: Mapping[str, Mapping[str, Comparison]], level: float = 0.95
) -> dict[str, tuple[str, str, int]]:
    """A chapter's claims, each measured by one or more tests (claim -> {measure:
    Comparison}), corrected as one family: Holm over every test of every claim
    (``holm_family``), then each claim's tests recombined by ``combine``. Returns claim
    -> (its word alone, its word after Holm, how many tests it made)."""
    flat = {(c, m): comp for c, tests in claims.items() for m, comp in tests.items()}
    if not flat:
        raise ValueError("claims must hold at least one test")
    fixed = holm_family(flat, level)
    return {
        c: (
            combine([t.verdict for t in tests.values()]),
            combine([fixed[(c, m)].verdict for m in tests]),
            len(tests),
        )
        for c, tests in claims.items()
    }


def holm_groups(
    groups: Mapping[str, Mapping[str, Comparison]], level: float = 0.95
) -> dict[str, dict[str, Comparison]]:
    """``holm_family`` over every comparison of named groups at once (the nested form
    of ``claims_by_metric`` and ``report.comparison_table``), returned in that form."""
    flat = {(g, k): c for g, cs in groups.items() for k, c in cs.items()}
    fixed = holm_family(flat, level)
    return {g: {k: fixed[(g, k)] for k in cs} for g, cs in groups.items()}


def better_or_worse(iv: Interval) -> str:
    """Chapter 6's rule on a paired difference A - B: "better" when its interval lies
    above 0, "worse" when below, "no difference" otherwise."""
    return "better" if iv.low > 0 else "worse" if iv.high < 0 else "no difference"


def lower_or_higher(iv: Interval) -> str:
    """The rule of ``better_or_worse`` for an error (lower is better): "better" when
    the interval of A - B lies below 0, "worse" when above, else "no difference"."""
    return "better" if iv.high < 0 else "worse" if iv.low > 0 else "no difference"


#: The verdict words of the chapter, each with the weaker word that replaces it when
#: the seeds disagree (a claim that needs evidence survives only where every split
#: gives it; a direction the splits do not reproduce is left open, ``UNRESOLVED``).
WEAKER = {
    "beaten": "on par",
    "on par": "on par",
    "worse than the best": "near the best",
    "near the best": "near the best",
    "holds": UNRESOLVED,
    "reversed": UNRESOLVED,
    "depends": UNRESOLVED,
    "does not hold": "does not hold",
}


def seed_splits(num_seeds: int) -> dict[str, list[int]]:
    """Subsets of the seeds on which to redraw the verdicts: every leave-one-seed-out
    subset and the two overlapping halves (first and last ceil(n/2) seeds; seeds 0-2
    and 2-4 for five)."""
    if num_seeds < 3:
        raise ValueError(f"num_seeds must be >= 3 to split, got {num_seeds}")
    seeds = list(range(num_seeds))
    half = (num_seeds + 1) // 2
    out = {f"without seed {s}": [t for t in seeds if t != s] for s in seeds}
    out[f"seeds 0-{half - 1}"] = seeds[:half]
    out[f"seeds {num_seeds - half}-{num_seeds - 1}"] = seeds[num_seeds - half :]
    return out


def robust_words(
    full: Mapping[str, str], splits: Mapping[str, Mapping[str, str]]
) -> list[list[str]]:
    """One row per claim: claim, word on all seeds, how many splits give the same word,
    the splits that differ, and the conclusion: the word where every split agrees,
    else its weaker form (``WEAKER``)."""
    rows = []
    for claim, word in full.items():
        differ = [name for name, w in splits.items() if w.get(claim, word) != word]
        agree = len(splits) - len(differ)
        conclusion = word if not differ else WEAKER.get(word, UNRESOLVED)
        rows.append(
            [claim, word, f"{agree} of {len(splits)}", ", ".join(differ), conclusion]
        )
    return rows


@dataclass(frozen=True)
class FamilyComparison:
    """One claim of a family judged together: its ``Comparison`` (interval and the word
    of ``verdict``), its p-value, Holm's adjusted p-value and the family's word."""

    comparison: Comparison
    p: float
    p_holm: float
    word: str


def family_verdicts(
    claims: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    level: float = 0.95,
) -> dict[str, FamilyComparison]:
    """Claims "A beats B" on paired errors (lower is better), judged as one family.

    claims: claim -> (errors of A, errors of B), one per seed, paired. Each claim gets
    the book's rule for "beats" (the ``level`` interval of the paired geometric-mean
    ratio B / A against 1, ``verdict``), and the two-sided p-value of the same test
    (``stats.paired_ratio_pvalue``). The family's word is that verdict where Holm's
    adjusted p (``stats.holm`` over every claim of the family) is below 1 - level, and
    "does not hold" where it is not: a word that claims a difference must survive the
    correction for the number of claims made.
    """
    check_float("level", level, 0.0, 1.0, low_open=True)
    if not claims:
        raise ValueError("claims must hold at least one claim")
    comps, ps = {}, []
    for claim, (a, b) in claims.items():
        iv = stats.paired_ratio_ci(b, a, level)
        comps[claim] = Comparison(claim, iv, verdict([iv], 1.0))
        ps.append(stats.paired_ratio_pvalue(b, a))
    adj = stats.holm(ps)
    out = {}
    for (claim, c), p, q in zip(comps.items(), ps, adj):
        word = c.verdict if q < 1 - level else "does not hold"
        out[claim] = FamilyComparison(c, p, q, word)
    return out
