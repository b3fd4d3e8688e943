"""The harder regimes judged (chapter 12): every JEPA read-out against every baseline at
every regime point, by the book's rule, with Holm's correction over the whole family.

One elementary test per (point, JEPA, read-out, baseline), on the seeds where the JEPA
finished: for errors the paired geometric-mean ratio baseline / JEPA (above 1: the
JEPA is better; ``stats.paired_ratio_ci``, ``stats.paired_ratio_pvalue``), for
accuracies the paired difference JEPA - baseline in points (above 0: the JEPA is
better; ``stats.mean_ci``, ``stats.t_pvalue``). A test's p-value is that of its
interval (p < 1 - level exactly when the interval excludes the null).

- The word per (point, JEPA, baseline) over its read-outs is ``verdicts.verdict``:
  "holds" when every read-out beats the baseline, "depends" when some do and none
  loses, "reversed" when every one loses.
- After Holm (``stats.holm`` over every test of the file), a test keeps its side
  only when its adjusted p is below 1 - level; the same rule then gives the Holm word.
- A JEPA read-out *beats every trivial baseline* at a point when, after Holm, it beats
  each baseline of that point.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..experiments import regimes as rg
from ..experiments.registry import EXPERIMENTS
from . import ledger
from .stats import (
    Interval,
    geometric_mean_ci,
    holm,
    mean_ci,
    paired_ratio_ci,
    paired_ratio_pvalue,
    t_pvalue,
)
from .verdicts import side, verdict, verdict_of_sides

Results = Mapping[
    str, Any
]  # one regimes file, as ``experiments.regimes.regimes`` returns

#: Printed names of the baselines.
BASELINE_NAMES = {
    "mean": "mean",
    "persistence": "persistence",
    "linear_extrapolation": "linear extrapolation",
    "lstsq_context": "least squares (raw)",
    "ridge_context": "ridge (raw)",
    "sinusoid_fit": "sinusoid fit",
    "raw_pixels": "raw pixels",
    "random_encoder": "random encoder",
}
READOUT_NAMES = {"A": "Protocol A", "B": "Protocol B", "probe": "linear probe"}


@dataclass(frozen=True)
class Test:
    """One elementary comparison: a JEPA read-out against a baseline at a point."""

    experiment: str
    point: str
    model: str
    readout: str
    baseline: str
    interval: Interval  # ratio baseline / JEPA (errors) or JEPA - baseline in points
    null: float
    p: float
    p_holm: float = float("nan")

    @property
    def side(self) -> str:
        """ "above" (the JEPA is better), "below" or "includes", by the interval."""
        return side(self.interval, self.null)

    def holm_side(self, level: float = 0.95) -> str:
        """The side after Holm: kept only when the adjusted p is below 1 - level."""
        if self.interval.n < 2:
            return "n < 2"
        if self.p_holm < 1 - level:
            return "above" if self.interval.mean > self.null else "below"
        return "includes"


def _paired(a: Sequence[Any], b: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The seeds where both a and b have a finite value (a diverged seed is null)."""
    x = np.array([np.nan if v is None else v for v in a], dtype=float)
    y = np.array([np.nan if v is None else v for v in b], dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def point_tests(point: Mapping[str, Any], level: float = 0.95) -> list[Test]:
    """Every (JEPA, read-out, baseline) test of one point (without Holm)."""
    out = []
    for model, reads in point["models"].items():
        for readout, vals in reads.items():
            for name, base in point["baselines"].items():
                jepa, b = _paired(vals, base)
                if point["higher_is_better"]:
                    iv, null = mean_ci(100 * (jepa - b), level), 0.0
                    p = t_pvalue(jepa - b)
                else:
                    iv, null = paired_ratio_ci(b, jepa, level), 1.0
                    p = paired_ratio_pvalue(b, jepa)
                p = 1.0 if not np.isfinite(p) else p
                out.append(
                    Test(
                        point["experiment"],
                        point["label"],
                        model,
                        readout,
                        name,
                        iv,
                        null,
                        p,
                    )
                )
    return out


def all_tests(res: Results, level: float = 0.95) -> list[Test]:
    """Every test of the file, with Holm-adjusted p-values over the whole family."""
    tests = [t for p in res["points"] for t in point_tests(p, level)]
    adj = holm([t.p for t in tests])
    return [Test(**{**t.__dict__, "p_holm": float(a)}) for t, a in zip(tests, adj)]


@dataclass(frozen=True)
class Verdict:
    """The word for "JEPA beats baseline" at a point over its read-outs, before and
    after Holm, and the tests behind it (one per read-out)."""

    experiment: str
    point: str
    model: str
    baseline: str
    tests: tuple[Test, ...]
    word: str
    holm_word: str


def verdict_table(tests: Sequence[Test], level: float = 0.95) -> list[Verdict]:
    """One ``Verdict`` per (point, JEPA, baseline), in the order of ``tests``."""
    groups: dict[tuple, list[Test]] = {}
    for t in tests:
        groups.setdefault((t.experiment, t.point, t.model, t.baseline), []).append(t)
    out = []
    for (exp, point, model, base), ts in groups.items():
        word = verdict([t.interval for t in ts], ts[0].null)
        holm_word = verdict_of_sides([t.holm_side(level) for t in ts])
        out.append(Verdict(exp, point, model, base, tuple(ts), word, holm_word))
    return out


#: What a verdict measures, by its null: errors (1) or accuracies (0).
MEASURES = {
    1.0: "held-out error (least-squares read-out): paired geometric-mean ratio "
    "baseline / JEPA over seeds, against 1",
    0.0: "held-out accuracy of the linear probe: paired difference JEPA - baseline "
    "over seeds, points, against 0",
}


def ledger_claims(
    res: Results, verdicts: Sequence[Verdict], level: float = 0.95
) -> dict[str, Any]:
    """The chapter's claims in the ledger's schema (``ledger.check_claims``), one entry
    per ``Verdict`` of ``verdict_table``: "JEPA beats baseline" at a point, an interval
    per read-out, the word before and after Holm; the conclusion is the word after Holm
    (the study has no rerun on other seeds)."""
    labels = res["settings"]["models"]
    entries = [
        ledger.claim_record(
            f"{v.experiment}: {v.point}: {labels[v.model]} beats "
            f"{BASELINE_NAMES[v.baseline]}",
            MEASURES[v.tests[0].null],
            [(READOUT_NAMES[t.readout], t.interval) for t in v.tests],
            v.word,
            v.holm_word,
            v.holm_word,
        )
        for v in verdicts
    ]
    n = sum(len(v.tests) for v in verdicts)
    seeds = sorted({s for ss in res["seeds"].values() for s in ss})
    per = "; ".join(
        f"{e} seeds {ledger.seed_range(ss)}" for e, ss in res["seeds"].items()
    )
    family = f"Holm's correction over all {n} tests (`stats.holm`); {per}"
    return ledger.claims_file("12_regimes", seeds, family, entries, level=level)


def winners(
    tests: Sequence[Test], level: float = 0.95
) -> list[tuple[str, str, str, str]]:
    """(experiment, point, JEPA, read-out) that beat every baseline of their point
    after Holm's correction."""
    groups: dict[tuple, list[Test]] = {}
    for t in tests:
        groups.setdefault((t.experiment, t.point, t.model, t.readout), []).append(t)
    return [
        key
        for key, ts in groups.items()
        if all(t.holm_side(level) == "above" for t in ts)
    ]


def best_baseline(point: Mapping[str, Any]) -> str:
    """The baseline with the best geometric mean (errors) or mean (accuracies)."""
    base = {k: np.asarray(v, dtype=float) for k, v in point["baselines"].items()}
    if point["higher_is_better"]:
        return max(base, key=lambda k: base[k].mean())
    return min(base, key=lambda k: geometric_mean_ci(base[k]).mean)


def summary_rows(
    res: Results, tests: Sequence[Test], labels: Mapping[str, str], level: float = 0.95
) -> list[list[str]]:
    """One row per (point, JEPA): the point, the JEPA, its best read-out's score, the
    best baseline's score, the interval against that baseline, and how many of the
    point's baselines it beats after Holm (by the read-out that beats most, ties
    going to the lower error)."""
    rows = []
    for point in res["points"]:
        best = best_baseline(point)
        hib = point["higher_is_better"]
        base = np.asarray(point["baselines"][best], dtype=float)
        for model, reads in point["models"].items():
            mine = [t for t in tests if t.point == point["label"] and t.model == model]
            by_read = {
                r: [t for t in mine if t.readout == r] for r in reads
            }  # read-out -> its tests
            beaten = {
                r: sum(t.holm_side(level) == "above" for t in ts)
                for r, ts in by_read.items()
            }
            r = max(beaten, key=lambda r: (beaten[r], _center(reads[r], hib)))
            t = next(t for t in by_read[r] if t.baseline == best)
            vals, _ = _paired(reads[r], point["baselines"][best])
            score = _score(vals, hib)
            rows.append(
                [
                    point["experiment"],
                    point["label"],
                    labels.get(model, model),
                    f"{READOUT_NAMES[r]}: {score}",
                    f"{BASELINE_NAMES[best]}: {_score(base, hib)}",
                    str(t.interval),
                    f"{beaten[r]} of {len(by_read[r])}",
                ]
            )
    return rows


def _center(values: Sequence[Any], higher_is_better: bool) -> float:
    """Mean (accuracies) or geometric mean (errors) of the finite values, signed so
    that larger is better."""
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if higher_is_better else -float(np.exp(np.log(v).mean()))


def _score(values: np.ndarray, higher_is_better: bool) -> str:
    if higher_is_better:
        return f"{100 * values.mean():.1f}%"
    return f"{geometric_mean_ci(values).mean:.4g}"


def curves(points: Sequence[Mapping[str, Any]], readout: str) -> dict[str, np.ndarray]:
    """Per-seed values along a row of points: {JEPA or baseline: [points, seeds]}
    (a JEPA's diverged seeds as NaN), for a figure of scores against the regime."""
    out: dict[str, list] = {}
    for p in points:
        for model, reads in p["models"].items():
            out.setdefault(model, []).append(
                [np.nan if v is None else v for v in reads[readout]]
            )
        for name, vals in p["baselines"].items():
            out.setdefault(name, []).append(vals)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def load_or_run(
    path: str | Path,
    recompute: bool = False,
    quick: bool = False,
    num_seeds: int = 10,
    mnist_seeds: int = 5,
    device: str = "cpu",
) -> dict[str, Any]:
    """The saved study at ``path`` (validated), or a fresh ``experiments.regimes``
    study when ``recompute`` or the file is missing: seeds 0 .. num_seeds - 1 for sine
    and Lorenz, 0 .. mnist_seeds - 1 for MNIST; ``quick`` at ``rg.QUICK``'s sizes."""
    p = Path(path)
    if p.exists() and not recompute:
        res = json.loads(p.read_text())
    else:
        spec = rg.RegimesSpec(
            sine_seeds=list(range(num_seeds)),
            lorenz_seeds=list(range(num_seeds)),
            mnist_seeds=list(range(mnist_seeds)),
            quick=quick,
            device=device,
        )
        res = rg.regimes(spec, log=lambda line: None)
    rg.validate(res)
    return res


def describe(res: Mapping[str, Any]) -> str:
    """One line saying what a regimes file holds and where it ran."""
    seeds = res["seeds"]
    env = res["environment"]
    return (
        f"{len(res['points'])} regime points; seeds: sine {len(seeds['sine'])}, "
        f"Lorenz {len(seeds['lorenz'])}, MNIST {len(seeds['mnist'])} "
        f"({env.get('mnist_source', 'no MNIST')}); {'quick' if res['quick'] else 'paper-scale'} "
        f"run of {res['seconds'] / 60:.1f} min on {env['device']}, torch {env['torch']}"
        f"\n{budgets(res)}"
    )


def budgets(res: Mapping[str, Any]) -> str:
    """One line with the training budget of each experiment of a regimes file: steps,
    and for sine the number of training waves they draw (steps x batch)."""
    s = res["settings"]
    batch = EXPERIMENTS["sine"].train["batch_size"]
    paper_mnist = EXPERIMENTS["mnist"].train["num_steps"]
    return (
        f"training: sine {s['sine_steps']} steps x batch {batch} = "
        f"{s['sine_steps'] * batch:,} waves; Lorenz {s['lorenz_steps']} steps; "
        f"MNIST {s['mnist_steps']} steps (the paper's: {paper_mnist:,})"
    )
