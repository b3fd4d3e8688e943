"""Reading a peers study (``experiments.peers``): per-objective scores, the family of
comparisons judged together (``verdicts.family_verdicts``), health and speed tables."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..experiments import mnist_peers as mp
from ..experiments import peers as pe
from . import ledger
from .stats import fmt, fmt_interval, geometric_mean_ci, mean_ci
from .verdicts import FamilyComparison, family_verdicts

#: The main score of every comparison: held-out Protocol B, least-squares probe.
MAIN = "B_lstsq_heldout"
#: The raw-data forecasters a learned representation must beat (not the noise floor,
#: which is the error of an oracle that knows each wave's frequency and phase).
TRIVIAL = ("persistence", "linear_extrapolation", "lstsq_context", "sinusoid_fit")


def load_or_run(
    path: str | Path,
    experiment: str,
    recompute: bool = False,
    quick: bool = False,
    device: str = "cpu",
) -> dict[str, Any]:
    """The saved study at ``path`` (validated), or a fresh ``peers.peers`` run of
    ``experiment`` when ``recompute`` or the file is missing (``quick``: the smoke
    settings of ``peers.QUICK``, never the saved file)."""
    p = Path(path)
    if p.exists() and not (recompute or quick):
        res = json.loads(p.read_text())
        pe.validate(res)
        return res
    n = pe.QUICK["seeds"] if quick else 10
    nv = pe.QUICK["validation_seeds"] if quick else len(pe.VALIDATION_SEEDS)
    spec = pe.PeersSpec(
        experiment,
        seeds=tuple(range(n)),
        validation_seeds=pe.VALIDATION_SEEDS[:nv],
        quick=quick,
        device=device,
    )
    return pe.peers(spec, log=lambda line: None)


def per_seed(res: Mapping[str, Any], name: str, metric: str = MAIN) -> np.ndarray:
    """One value per seed of ``metric`` for objective (or baseline) ``name``; NaN where a
    seed diverged. An unknown name or metric is an error listing the known ones."""
    if name in res["results"]:
        if metric not in res["metrics"]:
            raise ValueError(
                f"metric must be one of {sorted(res['metrics'])}, got {metric!r}"
            )
        v = res["results"][name]["per_seed"][metric]
    elif name in res["baselines"]:
        v = res["baselines"][name]["per_seed"]
    else:
        known = sorted(res["results"]) + sorted(res["baselines"])
        raise ValueError(f"name must be one of {known}, got {name!r}")
    return np.asarray([np.nan if x is None else x for x in v], dtype=float)


def best_trivial(res: Mapping[str, Any]) -> str:
    """The raw-data forecaster of ``TRIVIAL`` with the lowest geometric-mean error."""
    names = trivial(res)
    return min(names, key=lambda n: float(np.exp(np.log(per_seed(res, n)).mean())))


def claims(
    studies: Mapping[str, Mapping[str, Any]], reference: str = "bijepa"
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The chapter's family of claims, on ``MAIN``, for each study (task name -> JSON):
    "``reference`` beats X" for every other objective X, and "X beats B" for every
    objective X and every trivial baseline B of ``TRIVIAL`` in the study. Each claim
    -> (errors of the claimed winner, errors of the other), paired by seed."""
    out = {}
    for task, res in studies.items():
        ref = per_seed(res, reference)
        for name in res["results"]:
            if name != reference:
                out[f"{task}: {reference} beats {name}"] = (ref, per_seed(res, name))
        for base in trivial(res):
            for name in res["results"]:
                out[f"{task}: {name} beats {base}"] = (
                    per_seed(res, name),
                    per_seed(res, base),
                )
    return out


def trivial(res: Mapping[str, Any]) -> list[str]:
    """The baselines of ``TRIVIAL`` that a study holds, in that order."""
    return [n for n in TRIVIAL if n in res["baselines"]]


def baseline_rows(
    res: Mapping[str, Any], task: str, judged: Mapping[str, FamilyComparison]
) -> list[list[str]]:
    """One row per objective: for each trivial baseline B the family's word on "the
    objective beats B" and the ratio B / objective (geometric mean over seeds)."""
    rows = []
    for name in res["results"]:
        cells = [res["objectives"][name]["label"]]
        for base in trivial(res):
            f = judged[f"{task}: {name} beats {base}"]
            cells.append(f"{f.word} (x{f.comparison.interval.mean:.3g})")
        rows.append(cells)
    return rows


def judge(
    studies: Mapping[str, Mapping[str, Any]], level: float = 0.95
) -> dict[str, FamilyComparison]:
    """Every claim of ``claims`` judged as one family (Holm, ``verdicts.family_verdicts``).
    A seed that diverged in either member of a pair leaves that claim (the chapter prints
    how many did)."""
    pairs = {}
    for claim, (a, b) in claims(studies).items():
        ok = np.isfinite(a) & np.isfinite(b)
        pairs[claim] = (a[ok], b[ok])
    return family_verdicts(pairs, level)


#: What every claim of the family measures (``claims``, ``judge``).
MEASURE = (
    "held-out Protocol B error (least-squares probe): paired geometric-mean ratio "
    "loser / winner over seeds, against 1"
)


def ledger_claims(
    studies: Mapping[str, Mapping[str, Any]],
    judged: Mapping[str, FamilyComparison],
    level: float = 0.95,
) -> dict[str, Any]:
    """The chapter's claims in the ledger's schema (``ledger.check_claims``), one entry
    per claim of ``judge``: its interval, its word alone (direction), the family's word
    after Holm, which is also its conclusion (the study has no rerun on other seeds)."""
    seeds = {tuple(r["seeds"]) for r in studies.values()}
    if len(seeds) != 1:
        raise ValueError(f"studies must share their seeds, got {sorted(seeds)}")
    entries = [
        ledger.claim_record(
            claim,
            MEASURE,
            [("Protocol B", f.comparison.interval)],
            f.comparison.verdict,
            f.word,
            f.word,
        )
        for claim, f in judged.items()
    ]
    family = (
        f"Holm's correction over all {len(judged)} claims (`verdicts.family_verdicts`)"
    )
    return ledger.claims_file("11_peers", seeds.pop(), family, entries, level=level)


def family_rows(judged: Mapping[str, FamilyComparison]) -> list[list[str]]:
    """Table rows: claim, ratio loser / winner [interval], p, Holm p, word alone, word."""
    return [
        [
            claim,
            str(f.comparison.interval),
            f"{f.p:.2g}",
            f"{f.p_holm:.2g}",
            f.comparison.verdict,
            f.word,
        ]
        for claim, f in judged.items()
    ]


def score_rows(res: Mapping[str, Any], level: float = 0.95) -> list[list[str]]:
    """One row per objective, then per trivial baseline: label, geometric mean of held-out
    Protocol A and B (least squares) with their ``level`` intervals, diverged seeds."""
    rows = []
    for name, r in res["results"].items():
        cells = []
        for metric in ("A_lstsq_heldout", MAIN):
            v = per_seed(res, name, metric)
            v = v[np.isfinite(v)]
            cells.append(str(geometric_mean_ci(v, level)) if len(v) > 1 else "–")
        div = sum(d is not None for d in r["diverged_at"])
        rows.append([res["objectives"][name]["label"], *cells, str(div)])
    for name in TRIVIAL:
        if name in res["baselines"]:
            iv = geometric_mean_ci(per_seed(res, name), level)
            rows.append([f"*{name.replace('_', ' ')}* (raw data)", "", str(iv), ""])
    return rows


HEALTH = {
    "effective rank": "effective_rank",
    "dim. std (mean)": "embed_std_mean",
    "dim. std (min)": "embed_std_min",
    "norm growth, 2nd half": "norm_growth_second_half",
    "online/target cosine": "target_cosine",
}


def health_rows(res: Mapping[str, Any], level: float = 0.95) -> list[list[str]]:
    """One row per objective: mean [interval] over seeds of each ``HEALTH`` metric
    ("–" where it does not apply, e.g. the cosine of an objective without a target)."""
    rows = []
    for name in res["results"]:
        cells = [res["objectives"][name]["label"]]
        for key in HEALTH.values():
            v = per_seed(res, name, key)
            v = v[np.isfinite(v)]
            if len(v) < 2:
                cells.append("–")
                continue
            iv = mean_ci(v, level)
            cells.append(f"{fmt(iv.mean, 3)} [{fmt(iv.low, 3)}, {fmt(iv.high, 3)}]")
        rows.append(cells)
    return rows


def speed_rows(studies: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """Member-steps per second per objective and study, as measured by the run."""
    names = list(next(iter(studies.values()))["results"])
    return [
        [name]
        + [
            f"{r['results'][name]['member_steps_per_second']:,.0f}"
            if name in r["results"]
            else "–"
            for r in studies.values()
        ]
        for name in names
    ]


def describe(res: Mapping[str, Any]) -> str:
    """One line: what the study holds and how long it took."""
    s = res["search"]
    chosen = (
        ""
        if s is None
        else (
            f"; tuned classic: lr {s['chosen']['lr']:g}, tau {s['chosen']['ema_momentum']:g}"
            f" (validation seeds {s['validation_seeds']})"
        )
    )
    return (
        f"{res['experiment']}: {len(res['results'])} objectives x {len(res['seeds'])} seeds, "
        f"{res['settings']['train']['num_steps']} steps, {res['seconds']:.0f} s on "
        f"{res['environment']['device']}{' (quick)' if res['quick'] else ''}{chosen}"
    )


def ranked(res: Mapping[str, Any], names: Sequence[str] | None = None) -> list[str]:
    """Objectives by geometric-mean held-out Protocol B, best first (diverged seeds left
    out of each mean)."""
    names = list(res["results"]) if names is None else list(names)

    def gm(n: str) -> float:
        v = per_seed(res, n)
        v = v[np.isfinite(v)]
        return float(np.exp(np.log(v).mean())) if len(v) else np.inf

    return sorted(names, key=gm)


# --------------------------------------------------------------------------- MNIST
#: The MNIST comparisons' score: the linear probe's held-out error rate (1 - accuracy).
MNIST_MAIN = "probe_err_heldout"
MNIST_TRIVIAL = ("raw_pixels", "random_encoder")


def load_or_run_mnist(
    path: str | Path,
    recompute: bool = False,
    quick: bool = False,
    device: str = "cpu",
) -> dict[str, Any]:
    """The saved MNIST study at ``path`` (validated), or a fresh ``mnist_peers`` run
    when ``recompute`` or the file is missing (``quick``: four objectives at
    ``mnist_peers.QUICK``'s sizes, never the saved file). Recomputing needs the digits
    (``experiments.mnist.load_mnist``: an offline folder or a download)."""
    p = Path(path)
    if p.exists() and not (recompute or quick):
        res = json.loads(p.read_text())
        mp.validate(res)
        return res
    spec = mp.MnistPeersSpec(
        objectives=("classic", "bijepa", "pixel", "vicreg")
        if quick
        else mp.MNIST_OBJECTIVES,
        seeds=tuple(range(mp.QUICK["seeds"] if quick else 5)),
        quick=quick,
        device=device,
    )
    return mp.mnist_peers(spec, log=lambda line: None)


def mnist_per_seed(
    res: Mapping[str, Any], name: str, metric: str = MNIST_MAIN
) -> np.ndarray:
    """One value per seed of ``metric`` for objective (or baseline) ``name`` of an MNIST
    study; NaN where a seed diverged."""
    if name in res["results"]:
        v = res["results"][name]["per_seed"][metric]
    elif name in res["baselines"]:
        if metric != MNIST_MAIN:
            raise ValueError(f"baselines have only {MNIST_MAIN!r}, got {metric!r}")
        v = res["baselines"][name]["per_seed"]
    else:
        known = sorted(res["results"]) + sorted(res["baselines"])
        raise ValueError(f"name must be one of {known}, got {name!r}")
    return np.asarray([np.nan if x is None else x for x in v], dtype=float)


def judge_mnist(
    res: Mapping[str, Any], level: float = 0.95, reference: str = "bijepa"
) -> dict[str, FamilyComparison]:
    """The MNIST family, judged together (Holm, ``verdicts.family_verdicts``) on the
    probe's held-out error rate: "``reference`` beats X" for every other objective X,
    and "X beats B" for every objective X and baseline B of ``MNIST_TRIVIAL``."""
    pairs = {}
    ref = mnist_per_seed(res, reference)
    for name in res["results"]:
        if name != reference:
            pairs[f"MNIST: {reference} beats {name}"] = (ref, mnist_per_seed(res, name))
    for base in MNIST_TRIVIAL:
        for name in res["results"]:
            pairs[f"MNIST: {name} beats {base}"] = (
                mnist_per_seed(res, name),
                mnist_per_seed(res, base),
            )
    for claim, (a, b) in pairs.items():
        ok = np.isfinite(a) & np.isfinite(b)
        pairs[claim] = (a[ok], b[ok])
    return family_verdicts(pairs, level)


def mnist_score_rows(res: Mapping[str, Any], level: float = 0.95) -> list[list[str]]:
    """One row per objective, then per baseline: probe accuracy in % (mean [interval]),
    decoder MSE of the right half (geometric mean [interval]), effective rank, norm
    growth over the second half, diverged seeds."""
    rows = []

    def pct(v: np.ndarray) -> str:
        iv = mean_ci(100 * v, level)
        return f"{iv.mean:.1f} [{iv.low:.1f}, {iv.high:.1f}]"

    for name, r in res["results"].items():
        acc = mnist_per_seed(res, name, "probe_acc_heldout")
        ok = np.isfinite(acc)
        cells = [
            res["objectives"][name]["label"],
            pct(acc[ok]) if ok.sum() > 1 else "–",
        ]
        dec = mnist_per_seed(res, name, "decoder_mse_heldout")[ok]
        cells.append(
            fmt_interval(geometric_mean_ci(dec, level)) if len(dec) > 1 else "–"
        )
        for key in ("effective_rank_heldout", "norm_growth_second_half"):
            v = mnist_per_seed(res, name, key)[ok]
            v = v[np.isfinite(v)]  # a quick run logs one norm: no growth to report
            iv = mean_ci(v, level) if len(v) > 1 else None
            cells.append("–" if iv is None else fmt_interval(iv))
        cells.append(str(sum(d is not None for d in r["diverged_at"])))
        rows.append(cells)
    for name in MNIST_TRIVIAL:
        acc = 1 - mnist_per_seed(res, name)
        rows.append(
            [f"*{name.replace('_', ' ')}* (no training)", pct(acc), "", "", "", ""]
        )
    return rows


def describe_mnist(res: Mapping[str, Any]) -> str:
    """One line: what the MNIST study holds and how long it took."""
    s = res["settings"]
    return (
        f"mnist: {len(res['results'])} objectives x {len(res['seeds'])} seeds, "
        f"{s['train']['num_steps']} steps at batch {s['train']['batch_size']}, "
        f"{s['n_train']} training / {s['n_eval']} held-out digits "
        f"({res['environment']['mnist_source']}), {res['seconds']:.0f} s on "
        f"{res['environment']['device']}{' (quick)' if res['quick'] else ''}"
    )
