"""Reading the α × τ sweep (chapter 10): geometric means over seeds, the best cell, the
"indistinguishable from the best" sets, and every verdict word of the chapter computed
from any subset of the seeds, so that the conclusions can be checked on splits of them.

Arrays follow ``sweep.grid_values``: a score per seed, seeds on the last axis, NaN where
a seed diverged. Every mean here is a geometric mean (the mean of log MSE,
exponentiated), the same scale as the intervals (``stats.geometric_mean_ci``) and the
paired ratios (``stats.paired_ratio_ci``), so a map, its best cell and the verdicts
drawn from it never disagree about which cell is lower.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..experiments import sweep as sw
from . import ledger
from .stats import Interval, geometric_mean_ci, paired_ratio_ci
from .verdicts import Comparison, explodes, verdict


def geometric_means(values: np.ndarray) -> np.ndarray:
    """values [..., seeds] (positive, NaN for a diverged seed) -> [...]: the geometric
    mean over the seeds that finished, NaN where none did."""
    v = np.asarray(values, dtype=float)
    if np.any(v[np.isfinite(v)] <= 0):
        raise ValueError("values must be positive (an MSE or a norm ratio)")
    logs = np.log(v)
    finished = np.isfinite(v).sum(-1)
    with np.errstate(all="ignore"):
        total = np.where(np.isfinite(logs), logs, 0.0).sum(-1)
        return np.where(finished > 0, np.exp(total / np.maximum(finished, 1)), np.nan)


def best_cell(
    values: np.ndarray, alphas: Sequence[float], taus: Sequence[float]
) -> tuple[float, float]:
    """(alpha, tau) of the lowest geometric mean among the cells of ``values``
    [alpha, tau, seeds] where every seed finished."""
    v = np.asarray(values, dtype=float)
    if v.shape[:2] != (len(alphas), len(taus)):
        raise ValueError(
            f"values must be [alpha, tau, seeds] = [{len(alphas)}, {len(taus)}, .], "
            f"got {v.shape}"
        )
    complete = np.isfinite(v).all(-1)
    if not complete.any():
        raise ValueError("no cell where every seed finished")
    means = np.where(complete, geometric_means(v), np.inf)
    i, j = np.unravel_index(np.argmin(means), means.shape)
    return float(alphas[i]), float(taus[j])


def near_best(values: np.ndarray, level: float = 0.95) -> list[int]:
    """Rows of ``values`` [n, seeds] that are *indistinguishable from the best*: whose
    log-scale interval (``geometric_mean_ci``) overlaps the interval of the row with the
    lowest geometric mean. Seeds that diverged are dropped; a row with fewer than two
    finished seeds has no interval and is never near."""
    cis = [
        geometric_mean_ci(v[np.isfinite(v)], level)
        if np.isfinite(v).sum() >= 2
        else None
        for v in np.asarray(values, dtype=float)
    ]
    if all(c is None for c in cis):
        raise ValueError("no row has two finished seeds")
    best = min((c for c in cis if c is not None), key=lambda c: c.mean)
    return [i for i, c in enumerate(cis) if c is not None and c.low <= best.high]


def paired_ratio(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> Interval:
    """Paired geometric-mean ratio a / b (``stats.paired_ratio_ci``) over the seeds
    where both finished; a, b: [seeds]."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2:
        raise ValueError(f"a and b share {ok.sum()} finished seeds; 2 are needed")
    return paired_ratio_ci(a[ok], b[ok], level)


@dataclass(frozen=True)
class CellComparison:
    """The paper's cell against the best cell of one map, on paired seeds."""

    best: tuple[float, float]
    best_interval: Interval
    paper_interval: Interval
    ratio: Interval
    word: str


def paper_against_best(
    values: np.ndarray,
    alphas: Sequence[float],
    taus: Sequence[float],
    paper: tuple[float, float],
    level: float = 0.95,
) -> CellComparison:
    """values [alpha, tau, seeds]: the best cell (``best_cell``), both cells' geometric
    means with log-scale intervals, and the paired ratio paper / best over the seeds
    where both finished. Word: "beaten" when the ratio's interval lies above 1
    (``verdicts.verdict`` says "holds"), "on par" otherwise."""
    best = best_cell(values, alphas, taus)
    v = np.asarray(values, dtype=float)
    p = v[list(alphas).index(paper[0]), list(taus).index(paper[1])]
    b = v[list(alphas).index(best[0]), list(taus).index(best[1])]
    ratio = paired_ratio(p, b, level)
    ok = np.isfinite(p) & np.isfinite(b)
    word = "beaten" if verdict([ratio], 1.0) == "holds" else "on par"
    return CellComparison(
        best,
        geometric_mean_ci(b[ok], level),
        geometric_mean_ci(p[ok], level),
        ratio,
        word,
    )


def map_verdicts(
    values: np.ndarray,
    alphas: Sequence[float],
    taus: Sequence[float],
    modes: Sequence[str],
    paper: tuple[float, float],
    level: float = 0.95,
    prefix: str = "",
) -> dict[str, str]:
    """Every verdict word the chapter draws from ``values`` [mode, alpha, tau, seeds]:

    - ``"{mode}: paper's cell vs the best"``: "beaten" / "on par" (``paper_against_best``);
    - ``"{mode}: classic α=1 vs α=0.5 at τ=…"``: the paired ratio classic / paper
      against 1 by ``verdicts.verdict`` ("holds": the paper's α beats classic JEPA);
    - ``"{mode}: α=a at τ=…"`` for every α, and ``"{mode}: τ=t at α=…"`` for every τ:
      "near the best" / "worse than the best" (``near_best`` along that line).
    """
    v = np.asarray(values, dtype=float)
    pa, pt = paper
    i, j = list(alphas).index(pa), list(taus).index(pt)
    out = {}
    for m, mode in enumerate(modes):
        out[f"{prefix}{mode}: paper's cell vs the best"] = paper_against_best(
            v[m], alphas, taus, paper, level
        ).word
        if 1.0 in alphas:
            classic = v[m, list(alphas).index(1.0), j]
            word = verdict([paired_ratio(classic, v[m, i, j], level)], 1.0)
            out[f"{prefix}{mode}: α={pa:g} beats classic α=1 at τ={pt:g}"] = word
        near = near_best(v[m, :, j], level)
        for k, a in enumerate(alphas):
            word = "near the best" if k in near else "worse than the best"
            out[f"{prefix}{mode}: α={a:g} at τ={pt:g}"] = word
        near = near_best(v[m, i, :], level)
        for k, t in enumerate(taus):
            word = "near the best" if k in near else "worse than the best"
            out[f"{prefix}{mode}: τ={t:g} at α={pa:g}"] = word
    return out


def paired_tests(
    values: np.ndarray,
    alphas: Sequence[float],
    taus: Sequence[float],
    modes: Sequence[str],
    paper: tuple[float, float],
    level: float = 0.95,
    prefix: str = "",
) -> dict[str, Comparison]:
    """The chapter's paired tests on ``values`` [mode, alpha, tau, seeds], as
    ``verdicts.Comparison`` (null 1) for ``verdicts.holm_family``: per mode, "the
    best cell beats the paper's" (ratio paper / best) and "the paper's α beats classic
    α=1 at the paper's τ" (ratio classic / paper). The overlap rule of ``near_best``
    is not a test and has no p-value; it is not part of this family."""
    v = np.asarray(values, dtype=float)
    pa, pt = paper
    i, j = list(alphas).index(pa), list(taus).index(pt)
    out = {}
    for m, mode in enumerate(modes):
        cell = paper_against_best(v[m], alphas, taus, paper, level)
        key = f"{prefix}{mode}: best cell beats the paper's (paper / best)"
        out[key] = Comparison(key, cell.ratio, verdict([cell.ratio], 1.0), 1.0)
        if 1.0 in alphas:
            iv = paired_ratio(v[m, list(alphas).index(1.0), j], v[m, i, j], level)
            key = f"{prefix}{mode}: α={pa:g} beats classic α=1 at τ={pt:g}"
            out[key] = Comparison(key, iv, verdict([iv], 1.0), 1.0)
    return out


#: The words of the overlap rule for "the paper's cell vs the best" (``paper_against_best``)
#: as the words of its paired test "the best cell beats the paper's".
AS_TEST = {"beaten": "holds", "on par": "does not hold"}


def ledger_claims(
    family: Mapping[str, Comparison],
    corrected: Mapping[str, Comparison],
    robust: Mapping[str, str],
    fresh: Mapping[str, Comparison],
    seeds: Sequence[int],
    level: float = 0.95,
) -> dict[str, Any]:
    """The chapter's family of paired tests (``paired_tests``) in the ledger's schema
    (``ledger.check_claims``): per test its interval, its word (direction), its word
    after Holm (``corrected``, ``verdicts.holm_family``), and the chapter's other
    checks: the conclusion over seed subsets (``robust``: claim -> the last column of
    ``verdicts.robust_words``) and, where run, the word on fresh seeds (``fresh``:
    mode -> ``fresh_scores``). The conclusion is the word after Holm where every
    check gives it too, else "not resolved" (``verdicts.UNRESOLVED``: what the
    chapter's summary keeps)."""
    entries = []
    for key, c in family.items():
        mode = key.split(":")[0]
        checks = {}
        if "best cell beats the paper's" in key:
            checks["seed subsets"] = AS_TEST[
                robust[f"{mode}: paper's cell vs the best"]
            ]
            if mode in fresh:
                checks["fresh seeds"] = fresh[mode].verdict
        else:
            checks["seed subsets"] = robust[key]
        word = corrected[key].verdict
        end = ledger.conclude(word, checks)
        entries.append(
            ledger.claim_record(
                key,
                "held-out Protocol B error (least squares): paired geometric-mean "
                "ratio over seeds, against 1",
                [("Protocol B", c.interval)],
                c.verdict,
                word,
                end,
                checks=checks,
            )
        )
    text = f"Holm's correction over its {len(family)} paired tests (`verdicts.holm_family`)"
    return ledger.claims_file("10_maps", seeds, text, entries, level=level)


def cell_values(res: Mapping[str, Any], key: str, mode: str, cell: tuple) -> np.ndarray:
    """Per-seed values of metric ``key`` at one (alpha, tau) cell of one mode of a
    sweep result: [seeds], NaN where a seed diverged."""
    g = res["grid"]
    for name, axis, x in (
        ("alpha", "alpha", cell[0]),
        ("tau", "ema_momentum", cell[1]),
    ):
        if x not in g[axis]:
            raise ValueError(f"cell {name} must be one of {g[axis]}, got {x}")
    if mode not in g["modes"]:
        raise ValueError(f"mode must be one of {g['modes']}, got {mode!r}")
    v = sw.grid_values(res, key)
    m = g["modes"].index(mode)
    return v[m, g["alpha"].index(cell[0]), g["ema_momentum"].index(cell[1])]


def fresh_scores(
    fresh: Mapping[str, Any],
    mode: str,
    best: tuple[float, float],
    paper: tuple[float, float],
    level: float = 0.95,
    label: str | None = None,
) -> Comparison:
    """The best cell chosen on one set of seeds, scored on ``fresh`` ones (a sweep of
    those cells on other seeds): "the best cell beats the paper's" by the paired ratio
    paper / best of held-out Protocol B, least squares, with ``verdicts.verdict``.
    ``label`` names the map in the claim (default: ``mode``; "Lorenz" for its map)."""
    p = cell_values(fresh, "B_lstsq_heldout", mode, paper)
    b = cell_values(fresh, "B_lstsq_heldout", mode, best)
    iv = paired_ratio(p, b, level)
    seeds = fresh["grid"]["seeds"]
    claim = (
        f"{label or mode}: best cell {best} beats the paper's, "
        f"on seeds {seeds[0]}-{seeds[-1]}"
    )
    return Comparison(claim, iv, verdict([iv], 1.0), 1.0)


def explosion_at(
    res: Mapping[str, Any],
    mode: str,
    cell: tuple[float, float],
    label: str | None = None,
) -> Comparison:
    """The book's explosion rule (``verdicts.explodes``) at one cell of a sweep that
    records ``norm_growth_from_quarter``: its seeds' growth from a quarter of training
    to the end, and how many diverged. ``label`` names the map (default ``mode``)."""
    g = cell_values(res, "norm_growth_from_quarter", mode, cell)
    ok = np.isfinite(g)
    name = f"{label or mode} at α={cell[0]:g}, τ={cell[1]:g}"
    return explodes(name, g[ok], int((~ok).sum()))


def split_verdicts(
    grids: Sequence[tuple[np.ndarray, Mapping[str, Any]]],
    splits: Mapping[str, Sequence[int]],
) -> dict[str, dict[str, str]]:
    """The verdict words of several maps on each subset of their seeds: grids is a
    list of (values [mode, alpha, tau, seeds], ``map_verdicts`` keyword arguments);
    splits: name -> seed indices into the last axis (``seed_splits``)."""
    out = {}
    for name, seeds in splits.items():
        out[name] = {}
        for values, kwargs in grids:
            v = np.asarray(values, dtype=float)[..., list(seeds)]
            out[name].update(map_verdicts(v, **kwargs))
    return out


def load_or_sweep(
    path: str | Path,
    experiment: str,
    recompute: bool = False,
    quick: bool = False,
    num_seeds: int = 5,
    device: str = "cpu",
    **grid: Any,
) -> dict[str, Any]:
    """The saved sweep at ``path`` (validated), or a fresh ``sweep.sweep`` of
    ``experiment`` over seeds 0 .. num_seeds - 1 when ``recompute`` or the file is
    missing; ``quick`` shrinks the grid and the run length to ``sweep.QUICK``'s
    smoke settings. ``grid``: further ``sweep.SweepSpec`` fields (e.g. ``modes``)."""

    p = Path(path)
    if p.exists() and not recompute:
        res = json.loads(p.read_text())
    else:
        if quick:
            q = sw.QUICK
            grid.update(
                alphas=q["alpha"],
                taus=q["ema_momentum"],
                num_steps=q["num_steps"],
                probe_epochs=q["probe_epochs"],
            )
        spec = sw.SweepSpec(
            experiment,
            seeds=list(range(num_seeds)),
            device=device,
            quick=quick,
            **grid,
        )
        res = sw.sweep(spec, log=lambda line: None)
    sw.validate(res)
    return res


def describe(res: Mapping[str, Any]) -> str:
    """One line saying what a sweep result holds and where it ran."""
    g = res["grid"]
    steps = res["settings"]["modes"][g["modes"][0]]["train"]["num_steps"]
    return (
        f"{res['experiment']} sweep: {len(res['points'])} points x "
        f"{len(g['seeds'])} seeds, {steps} steps each, "
        f"{'quick smoke settings' if res['quick'] else 'paper settings'}, "
        f"{res['seconds'] / 60:.0f} min of sweep processes on "
        f"{res['environment']['device']}"
    )


def seed_spread(values: np.ndarray) -> np.ndarray:
    """values [..., seeds] -> [...]: largest / smallest finished seed of each cell."""
    import warnings

    v = np.asarray(values, dtype=float)
    with warnings.catch_warnings():  # a cell where no seed finished stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(v, -1) / np.nanmin(v, -1)
