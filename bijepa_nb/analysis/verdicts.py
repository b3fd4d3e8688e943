"""The book's verdict rules, stated once: how an interval over seeds becomes a word.

- ``side``: where an interval lies against a null value.
- ``verdict``: a claim measured several ways (e.g. two probes) "holds" when every
  interval lies above the null, is "reversed" when every one lies below, "depends" when
  some lie above and none below, and "does not hold" otherwise.
- ``beats`` / ``claims_by_metric`` / ``ratio_claim``: "X beats Y" on paired seeds, by
  the paired geometric-mean ratio of errors (or the difference of scores).
- ``bounded_claim``: "the embeddings stay bounded", by the growth of the embedding norm.
- ``better_or_worse`` / ``lower_or_higher``: a paired difference against 0.
- ``replicate`` and ``robust_words``: a word survives only if other seeds give it too.
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
    """A claim "winner beats other", its interval over paired seeds and the verdict."""

    claim: str
    interval: Interval
    verdict: str

    def __str__(self) -> str:
        return f"{self.claim}: {self.interval} -> {self.verdict}"


def beats(
    scores: Mapping[str, Sequence[float]],
    winner: str,
    others: Sequence[str],
    higher_is_better: bool = False,
) -> dict[str, Comparison]:
    """ "``winner`` beats X" for every X in ``others``, by the book's rule (verdicts.verdict).

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
            iv, null, what = stats.mean_ci(a - b), 0.0, f"{winner} - {other}"
        else:
            iv, null, what = stats.paired_ratio_ci(b, a), 1.0, f"{other} / {winner}"
        out[other] = Comparison(what, iv, verdict([iv], null))
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
    "reversed", "consistent") is not robust and the conclusion is "does not hold" ("not
    supported" for the §5.3 readings). Claims missing from either run are left out.
    """
    seeds = [int(s) for s in seeds]
    rows = None
    path = Path(path)
    if path.is_file():
        saved = json.loads(path.read_text())
        if sorted(saved["seeds"]) != sorted(seeds):
            rows = []
            for claim, word in verdicts.items():
                other = saved["verdicts"].get(claim)
                if other is None:
                    continue
                fallback = "not supported" if word in READINGS else "does not hold"
                both = word if word == other else fallback
                rows.append([claim, word, other, both])
    if save:
        Path(save).write_text(
            json.dumps({"seeds": seeds, "verdicts": dict(verdicts)}, indent=1) + "\n"
        )
    return rows


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
    return Comparison(claim, iv, verdict([iv], null))


def norm_growth(history, start: float = 0.5) -> float:
    """How much the mean online embedding norm ‖f(x)‖ of one run (a ``History``) grew
    from fraction ``start`` of its logged steps to the last: a ratio, 1 when flat."""

    check_float("start", start, 0.0, 1.0)
    norms = np.asarray(history.online_norm, dtype=float)
    if len(norms) < 2:
        raise ValueError("history must hold at least two logged norms")
    return float(norms[-1] / norms[min(int(start * len(norms)), len(norms) - 1)])


def bounded_claim(claim: str, histories: Sequence, limit: float = 10.0, start=0.25):
    """The claim "the embeddings stay bounded" over seeds, one ``History`` per seed.

    Per run, the growth g of ‖f(x)‖ from fraction ``start`` of training to its end
    (``norm_growth``). Returns a ``verdicts.Comparison`` holding the 95% interval of the
    geometric mean of g (``stats.geometric_mean_ci``) and the verdict: "holds" when the
    interval lies below ``limit`` (the runs grow less than that), "reversed" when it
    lies above, "does not hold" when it contains ``limit`` ("too few seeds" for one
    run). A run that diverged (``History.diverged_at`` set) exploded: the verdict is
    then "does not hold" whatever the interval of the runs' finite part says.
    """

    iv = geometric_mean_ci([norm_growth(h, start) for h in histories])
    word = {
        "below": "holds",
        "above": "reversed",
        "includes": "does not hold",
        "n < 2": "too few seeds",
    }[side(iv, limit)]
    if any(h.diverged_at is not None for h in histories):
        word = "does not hold"
    return Comparison(claim, iv, word)


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
#: gives it; absence of evidence is what remains otherwise).
WEAKER = {
    "beaten": "on par",
    "on par": "on par",
    "worse than the best": "near the best",
    "near the best": "near the best",
    "holds": "does not hold",
    "reversed": "does not hold",
    "depends": "does not hold",
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
        conclusion = word if not differ else WEAKER.get(word, "does not hold")
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
