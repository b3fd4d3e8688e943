"""Maps of what alpha and the EMA momentum do: one batched sweep over a grid, as JSON.

(command line: ``python -m bijepa_nb.sweep``)

Every grid point (mode, alpha, ema_momentum) is trained for every seed; all members of
one stability mode train together as one batched ensemble (``bijepa_nb.experiments.ensemble``, with
per-member alpha and ema_momentum), through the shared pipeline ``bijepa_nb.experiments.pipeline``.

JSON schema (``SCHEMA_VERSION``; ``validate`` checks it):

- ``schema``, ``experiment`` ("sine" or "lorenz"), ``quick`` (bool), ``command``,
  ``seconds`` (wall time), ``environment`` (torch, python, device, threads),
  ``settings`` (ModelConfig and TrainConfig per mode, probe epochs, data sizes, n_show).
- ``execution``: ``{"backend": "in-process" or "ray", "chunks", "from_cache",
  "computed"}``: how the chunks (``plan``) were obtained.
- ``grid``: ``{"modes": [str], "alpha": [float], "ema_momentum": [float],
  "seeds": [int]}``, each list sorted ascending (modes in STABILITY_MODES order),
  without repeats.
- ``metrics``: ``{key: {"unit", "split", "description"}}`` for every per-seed key.
- ``points``: one entry per (mode, alpha, ema_momentum), in the order
  ``for mode: for alpha: for ema_momentum`` (so point ``i`` of mode ``m`` is
  ``alpha[i // n_tau], ema_momentum[i % n_tau]``). Each entry:
  ``{"mode", "alpha", "ema_momentum", "diverged_at": [step or null per seed],
  "per_seed": {metric: [value or null per seed]}, "show": {...}}``.
- ``show`` (the first seed of the point, what a page needs to draw it):
  ``{"seed": int, "diverged_at": step or null, "steps": [int], "loss_total": [float],
  "loss_fwd": [float], "loss_bwd": [float], "norm_steps": [int], "online_norm": [float],
  "target_norm": [float], "forecast": null or {"truth": [float], "pred_A": [float],
  "pred_B": [float]}}``: loss curves down-sampled to at most ``CURVE_POINTS`` points
  (means over windows, so spikes survive as raised means), the held-out first target
  step of ``n_show`` test sequences and its least-squares Protocol A/B predictions
  (null when the seed diverged).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.config import (
    STABILITY_MODES,
    check_choice,
    check_float,
    check_int,
    resolve_device,
)
from ..core.models import JEPA
from . import registry
from .chunks import (
    Chunk,
    ChunkCache,
    Cluster,
    code_version,
    run_chunks,
)
from .pipeline import (
    Run,
    batch_sizes,
    downsample,
    forecast_scores,
    history_metrics,
    train_runs,
)
from .registry import EXPERIMENTS
from .reproduce import _clean, check_metrics

SCHEMA_VERSION = "bijepa-sweep/1"
#: The registry's experiments a sweep can run: batched, with per-seed data.
SWEPT = tuple(n for n, e in EXPERIMENTS.items() if e.batched and e.data is not None)
CURVE_POINTS = 100
ALPHAS = tuple(round(0.1 * i, 1) for i in range(11))
EMA_MOMENTA = (0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0)
QUICK = {
    "alpha": (0.0, 0.5, 1.0),
    "ema_momentum": (0.9, 0.995),
    "seeds": 2,
    "num_steps": 100,
    "probe_epochs": 10,
}


def metric_spec(experiment: str) -> dict[str, dict[str, str]]:
    """Unit, split and description of every per-seed metric of a sweep."""
    unit = registry.experiment(experiment).unit
    loss = "embedding MSE (mean over batch and embedding dims)"
    spec = {
        "A_lstsq_heldout": (
            unit,
            "held-out",
            "Protocol A: least squares on f(x) -> first target step, fitted on the probe set",
        ),
        "B_lstsq_heldout": (
            unit,
            "held-out",
            "Protocol B: least squares on P_fwd(f(x)) -> first target step, fitted on the probe set",
        ),
        "B_adam_probeset": (
            unit,
            "probe set",
            "Protocol B with the paper's Adam probe, scored on its own training data",
        ),
        "B_adam_heldout": (
            unit,
            "held-out",
            "Protocol B with the paper's Adam probe, scored on the held-out test set",
        ),
        "loss_final_total": (loss, "train", "total loss (Eq. 8) at the last step"),
        "loss_last100_total": (
            loss,
            "train",
            "mean total loss over the last 100 steps",
        ),
        "loss_last100_fwd": (
            loss,
            "train",
            "mean forward loss over the last 100 steps",
        ),
        "loss_last100_bwd": (
            loss,
            "train",
            "mean backward loss over the last 100 steps (0 for alpha = 1)",
        ),
        "norm_final": (
            "L2 norm",
            "train",
            "mean norm of the online context embedding f(x) at the last logged step",
        ),
        "norm_growth_first_half": (
            "ratio",
            "train",
            "online embedding norm at mid-training / at the start",
        ),
        "norm_growth_second_half": (
            "ratio",
            "train",
            "online embedding norm at the end / at mid-training",
        ),
        "norm_growth_from_quarter": (
            "ratio",
            "train",
            "online embedding norm at the end / at a quarter of training",
        ),
    }
    return {
        k: {"unit": u, "split": s, "description": d} for k, (u, s, d) in spec.items()
    }


def check_grid(
    modes: Sequence[str],
    alphas: Sequence[float],
    taus: Sequence[float],
    seeds: Sequence[int],
) -> None:
    """Raise ValueError naming the parameter when a grid axis is empty, repeats, is unsorted or out of range."""
    for name, values in (
        ("modes", modes),
        ("alpha", alphas),
        ("ema_momentum", taus),
        ("seeds", seeds),
    ):
        if not isinstance(values, (list, tuple)) or len(values) == 0:
            raise ValueError(f"{name} must be a non-empty list, got {values!r}")
        if len(set(values)) != len(values):
            raise ValueError(f"{name} must not repeat a value, got {list(values)}")
    for m in modes:
        check_choice("modes[...]", m, tuple(STABILITY_MODES))
    for a in alphas:
        check_float("alpha[...]", a, 0.0, 1.0)
    for t in taus:
        check_float("ema_momentum[...]", t, 0.0, 1.0)
    for s in seeds:
        check_int("seeds[...]", s, 0)


def grid_of(
    modes: Sequence[str],
    alphas: Sequence[float],
    taus: Sequence[float],
    seeds: Sequence[int],
) -> dict[str, list]:
    """The ``grid`` of a sweep over these axes, as its JSON holds it (modes in
    STABILITY_MODES order, the other axes sorted); ValueError from ``check_grid``."""
    modes = (
        [m for m in STABILITY_MODES if m in modes]
        if set(modes) <= set(STABILITY_MODES)
        else list(modes)
    )
    check_grid(modes, list(alphas), list(taus), list(seeds))
    return {
        "modes": list(modes),
        "alpha": [float(a) for a in sorted(alphas)],
        "ema_momentum": [float(t) for t in sorted(taus)],
        "seeds": list(sorted(seeds)),
    }


#: The keys an existing output file must share with a sweep's results to be replaced.
IDENTITY = ("schema", "experiment", "quick", "grid")


def identity(experiment: str, quick: bool, grid: dict[str, list]) -> dict[str, Any]:
    """The ``IDENTITY`` keys of the results of a sweep of ``grid`` (from ``grid_of``), known
    before any training: an output file is checked against them first."""
    out = {"schema": SCHEMA_VERSION, "experiment": experiment, "quick": quick}
    return _clean({**out, "grid": grid}, digits=5)


#: Memory a process needs to train and score a batch at all, above what it held before,
#: whatever the batch size: autograd's and the allocator's working memory and the
#: probes' workspace (eager), and torch.compile's compiler on top of that. Measured with
#: ``python -m bijepa_nb.bench --only memory --sweep-steps 300`` (fresh processes, sine,
#: 16/77/128 runs): eager 725/762/781 MB and compiled 858/895/859 MB against a 540 MB
#: process that only imported the package and built the data.
TRAIN_OVERHEAD_BYTES = 180 * 10**6
COMPILE_OVERHEAD_BYTES = 130 * 10**6


def batch_bytes(
    experiment: str, members: int, num_steps: int, compile: bool = False
) -> int:
    """The memory training and scoring one batch of ``members`` runs adds to a process:
    the fixed overheads above, and per member its parameters (with their gradients, two
    Adam moments and the EMA target: five copies), the activations of one step kept for
    backward (two views through encoders and predictors) and its loss histories."""
    exp = registry.experiment(experiment)
    mc, tc = exp.mode_configs("expressive")
    n_params = sum(p.numel() for p in JEPA(mc, 0.5).parameters())
    width = max(mc.hidden_dim, mc.pred_hidden_dim)
    acts = 2 * tc.batch_size * (mc.input_dim + 6 * width + 4 * mc.embed_dim)
    per_member = 4 * (5 * n_params + acts) + 8 * 3 * num_steps
    fixed = TRAIN_OVERHEAD_BYTES + (COMPILE_OVERHEAD_BYTES if compile else 0)
    return fixed + members * per_member


def resident_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``; elsewhere its peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb if sys.platform == "darwin" else kb * 1024


def estimate_bytes(
    experiment: str,
    members: int,
    num_steps: int,
    compile: bool = False,
    base: int | None = None,
) -> int:
    """The peak resident memory of a process that trains one batch of ``members`` runs:
    ``base`` (default: this process's resident memory now) plus ``batch_bytes``. Within
    25% of the measured peak for sine batches of 16 to 128 runs, eager and compiled
    (``python -m bijepa_nb.bench --only memory``)."""
    base = resident_bytes() if base is None else base
    return base + batch_bytes(experiment, members, num_steps, compile)


def available_bytes() -> int:
    """Memory the system can give a process now without swapping: ``MemAvailable``
    (free plus reclaimable caches) on Linux, else the free pages, else 8 GiB."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def _seed_show(
    h: Any, diverged_at: int | None, seed: int, forecast: dict | None
) -> dict[str, Any]:
    steps = np.arange(len(h))
    return {
        "seed": seed,
        "diverged_at": diverged_at,
        "steps": downsample(steps, CURVE_POINTS).round().astype(int).tolist(),
        "loss_total": downsample(h.total, CURVE_POINTS),
        "loss_fwd": downsample(h.fwd, CURVE_POINTS),
        "loss_bwd": downsample(h.bwd, CURVE_POINTS),
        "norm_steps": downsample(h.norm_steps, CURVE_POINTS)
        .round()
        .astype(int)
        .tolist(),
        "online_norm": downsample(h.online_norm, CURVE_POINTS),
        "target_norm": downsample(h.target_norm, CURVE_POINTS),
        "forecast": forecast,
    }


def sweep_chunk(fields: dict[str, Any]) -> dict[str, Any]:
    """Train and score one chunk of a sweep (one batched ensemble): ``fields`` as made by
    ``plan``; returns one record per run (its metrics, divergence step, and the curves and
    forecast to show when the run has the grid's first seed). Runs in this process or in
    a Ray worker; the result depends only on ``fields`` and the hardware."""
    torch.set_num_threads(fields["threads"])
    exp = registry.experiment(fields["experiment"])
    mode = fields["mode"]
    seeds = sorted({s for _, _, s in fields["runs"]})
    data = {s: exp.seed_data(s) for s in seeds}
    runs = []
    for a, t, s in fields["runs"]:
        _, tc = exp.mode_configs(
            mode,
            alpha=float(a),
            ema_momentum=float(t),
            seed=s,
            num_steps=fields["num_steps"],
            device=fields["device"],
            num_threads=fields["threads"],
            progress=False,
            **fields["overrides"],
        )
        runs.append(Run(mode, tc))
    t0 = time.perf_counter()
    trained = train_runs(
        exp, runs, data, max_batch=len(runs), compile=fields["compile"]
    )
    t_train = time.perf_counter() - t0
    scores = forecast_scores(
        trained,
        data,
        protocols=("A", "B"),
        adam=("B",),
        adam_epochs=fields["probe_epochs"],
        n_show=fields["n_show"],
    )
    spec = metric_spec(fields["experiment"])
    records = []
    for i, tr in enumerate(trained):
        hm = history_metrics(tr.history)
        ok = tr.diverged_at is None
        metrics = {
            k: float(scores.scores[k][i] if k in scores.scores else hm[k])
            if ok
            else float("nan")
            for k in spec
        }
        show = None
        if tr.run.train.seed == fields["show_seed"]:
            forecast = None
            if tr.model is not None:
                forecast = {
                    "truth": scores.show["truth"][i],
                    "pred_A": scores.show["A_pred"][i],
                    "pred_B": scores.show["B_pred"][i],
                }
            show = _seed_show(tr.history, tr.diverged_at, tr.run.train.seed, forecast)
        records.append(
            {"diverged_at": tr.diverged_at, "metrics": metrics, "show": show}
        )
    return _clean(
        {
            "records": records,
            "seconds_train": t_train,
            "seconds_score": time.perf_counter() - t0 - t_train,
        },
        digits=5,
    )


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: its grid (modes, alphas, taus, seeds) and how it is trained and run.

    ``None`` fields take the experiment's defaults in ``resolved``: ``num_steps`` and
    ``probe_epochs`` the paper's, ``chunk_size`` ``max_batch``, ``compile`` True for runs
    of 1,000 steps or more (where ``torch.compile``'s one-off ~15 s per batch shape pays
    back). ``max_bytes``: the memory one batch may take (default 3/4 of what is free).
    ``overrides``: further TrainConfig fields for every run (e.g. ``{"lr": 0.1}``), kept
    as (key, value) pairs. Sequences are kept as tuples, so a spec never changes.
    """

    experiment: str
    modes: Sequence[str] = tuple(STABILITY_MODES)
    alphas: Sequence[float] = ALPHAS
    taus: Sequence[float] = EMA_MOMENTA
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    num_steps: int | None = None
    probe_epochs: int | None = None
    n_show: int = 20
    quick: bool = False
    device: str = "auto"
    threads: int = 2
    max_batch: int = 128
    max_bytes: int | None = None
    compile: bool | None = None
    chunk_size: int | None = None
    overrides: Any = ()

    def __post_init__(self) -> None:
        for name in ("modes", "alphas", "taus", "seeds"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):  # other types: check_grid names them
                object.__setattr__(self, name, tuple(value))
        over = self.overrides
        items = over.items() if isinstance(over, dict) else over or ()
        object.__setattr__(self, "overrides", tuple(items))

    def grid(self) -> dict[str, list]:
        """The JSON's ``grid`` (``grid_of``): modes in STABILITY_MODES order, axes sorted."""
        return grid_of(self.modes, self.alphas, self.taus, self.seeds)

    def identity(self) -> dict[str, Any]:
        """What an existing output file must share with this sweep's results (``IDENTITY``)."""
        return identity(self.experiment, self.quick, self.grid())

    def resolved(self) -> SweepSpec:
        """This spec checked (ValueError naming the parameter, MemoryError for a batch
        too large) with its grid sorted and every default filled in."""
        exp = registry.experiment(self.experiment)
        if exp.data is None or not exp.batched:
            raise ValueError(
                f"experiment must be one with batched per-seed data (sine, lorenz), got {self.experiment!r}"
            )
        g = self.grid()
        check_int("n_show", self.n_show, 1, 1000)
        check_int("threads", self.threads, 1)
        check_int("max_batch", self.max_batch, 1)
        chunk_size = self.max_batch if self.chunk_size is None else self.chunk_size
        check_int("chunk_size", chunk_size, 1, self.max_batch)
        num_steps = self.num_steps
        num_steps = num_steps if num_steps is not None else exp.train["num_steps"]
        check_int("num_steps", num_steps, 1, 100_000)
        probe_epochs = self.probe_epochs
        probe_epochs = probe_epochs if probe_epochs is not None else exp.probe_epochs
        check_int("probe_epochs", probe_epochs, 1, 10_000)
        for key in (
            "alpha",
            "ema_momentum",
            "seed",
            "num_steps",
            "device",
            "num_threads",
        ):
            if key in dict(self.overrides):
                raise ValueError(
                    f"overrides must not set {key!r}: it is a sweep argument"
                )
        exp.mode_configs(g["modes"][0], **dict(self.overrides))  # a bad one fails here
        spec = replace(
            self,
            modes=g["modes"],
            alphas=g["alpha"],
            taus=g["ema_momentum"],
            seeds=g["seeds"],
            num_steps=num_steps,
            probe_epochs=probe_epochs,
            chunk_size=chunk_size,
            compile=num_steps >= 1000 if self.compile is None else self.compile,
        )
        spec.check_memory()
        return spec

    def runs_per_mode(self) -> int:
        return len(self.alphas) * len(self.taus) * len(self.seeds)

    def check_memory(self) -> None:
        """MemoryError when one batch of a resolved spec would not fit: ``batch_bytes``
        (what training it adds to this process) over ``max_bytes``."""
        members = min(self.runs_per_mode(), self.chunk_size)
        need = batch_bytes(self.experiment, members, self.num_steps, self.compile)
        limit = self.max_bytes
        limit = limit if limit is not None else int(0.75 * available_bytes())
        if need > limit:
            raise MemoryError(
                f"the grid needs about {need / 2**30:.1f} GiB per batch of {members} runs, "
                f"more than the {limit / 2**30:.1f} GiB allowed; lower max_batch (--max-batch) or the grid"
            )


def plan(spec: SweepSpec, device: str) -> list[Chunk]:
    """The chunks of a sweep (``spec`` resolved, ``SweepSpec.resolved``) on ``device``
    (a device type): per mode, its runs (alpha, then ema_momentum, then seed) cut into
    equal batches of at most ``chunk_size`` (``pipeline.batch_sizes``), each chunk one
    batched ensemble. Its fields hold everything its result depends on."""
    chunks = []
    for mode in spec.modes:
        runs = [
            [float(a), float(t), int(s)]
            for a in spec.alphas
            for t in spec.taus
            for s in spec.seeds
        ]
        sizes = batch_sizes(len(runs), spec.chunk_size)
        for start, size in zip(np.cumsum([0] + sizes[:-1]).tolist(), sizes):
            fields = {
                "kind": "sweep",
                "experiment": spec.experiment,
                "mode": mode,
                "runs": runs[start : start + size],
                "show_seed": int(spec.seeds[0]),
                "num_steps": spec.num_steps,
                "probe_epochs": spec.probe_epochs,
                "n_show": spec.n_show,
                "device": device,
                "threads": spec.threads,
                "compile": spec.compile,
                "overrides": dict(spec.overrides),
                "code": code_version(),
                "torch": torch.__version__,
            }
            label = f"{spec.experiment} {mode} runs {start + 1}-{start + size}"
            chunks.append(Chunk(fields, label))
    return chunks


def sweep(
    spec: SweepSpec,
    log: Callable[[str], None] = print,
    cache_dir: Path | str | None = None,
    cluster: Cluster | None = None,
) -> dict[str, Any]:
    """Train and score every (mode, alpha, ema_momentum, seed) of ``spec``'s grid; returns
    the JSON-ready dict.

    The grid is cut into chunks of at most ``spec.chunk_size`` runs (default
    ``max_batch``), each trained as one batched ensemble (``plan``, ``sweep_chunk``).
    ``cache_dir``: keep finished chunks there and reuse them (``chunks.ChunkCache``);
    ``cluster``: compute the missing chunks as Ray tasks (``chunks.connect``), each with
    ``spec.threads`` CPUs.
    """
    spec = spec.resolved()
    if cluster is not None and spec.device == "cuda":
        dev = torch.device("cuda")  # the workers' GPUs, whatever the driver has
    else:
        dev = resolve_device(spec.device)
    t0 = time.perf_counter()
    settings = _settings(spec, dev.type)
    chunks = plan(spec, dev.type)
    results, info = run_chunks(
        sweep_chunk,
        chunks,
        ChunkCache(cache_dir, log),
        cluster,
        cpus_per_chunk=spec.threads,
        gpus_per_chunk=1 if dev.type == "cuda" and cluster is not None else 0,
        log=log,
    )
    points = _points(spec, chunks, results, log)
    seconds = time.perf_counter() - t0
    out = _result(spec, str(dev), settings, info, points, seconds)
    validate(out)
    return out


def _settings(spec: SweepSpec, device: str) -> dict[str, Any]:
    """The JSON's ``settings`` (without ``overrides``): probe and curve sizes, and the
    ModelConfig and TrainConfig of every mode."""
    exp = registry.experiment(spec.experiment)
    settings: dict[str, Any] = {
        "probe_epochs": spec.probe_epochs,
        "n_show": spec.n_show,
        "curve_points": CURVE_POINTS,
        "max_batch": spec.chunk_size,
        "compiled": spec.compile,
        "modes": {},
    }
    for mode in spec.modes:
        mc, tc0 = exp.mode_configs(
            mode,
            num_steps=spec.num_steps,
            device=device,
            num_threads=spec.threads,
            progress=False,
            **dict(spec.overrides),
        )
        settings["modes"][mode] = {
            "model": mc.to_dict(),
            "train": {
                k: v
                for k, v in tc0.to_dict().items()
                if k not in ("alpha", "ema_momentum", "seed")
            },
        }
    return settings


def _points(
    spec: SweepSpec,
    chunks: Sequence[Chunk],
    results: Sequence[dict[str, Any]],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """The JSON's ``points`` from the chunks' records, in grid order; logs each mode's
    training and scoring speed."""
    metrics = metric_spec(spec.experiment)
    records: dict[str, list[dict[str, Any]]] = {m: [] for m in spec.modes}
    for c, r in zip(chunks, results):
        records[c.fields["mode"]].extend(r["records"])
    points: list[dict[str, Any]] = []
    ns, nt = len(spec.seeds), len(spec.taus)
    for mode in spec.modes:
        recs = records[mode]
        for p in range(len(spec.alphas) * nt):
            rows = recs[p * ns : (p + 1) * ns]
            points.append(
                {
                    "mode": mode,
                    "alpha": float(spec.alphas[p // nt]),
                    "ema_momentum": float(spec.taus[p % nt]),
                    "diverged_at": [r["diverged_at"] for r in rows],
                    "per_seed": {k: [r["metrics"][k] for r in rows] for k in metrics},
                    "show": rows[0]["show"],
                }
            )
        mode_res = [r for c, r in zip(chunks, results) if c.fields["mode"] == mode]
        t_train = sum(r["seconds_train"] for r in mode_res)
        t_score = sum(r["seconds_score"] for r in mode_res)
        n_div = sum(r["diverged_at"] is not None for r in recs)
        steps = spec.num_steps
        log(
            f"{spec.experiment} {mode}: {len(recs)} runs x {steps} steps trained in {t_train:.1f} s "
            f"({len(recs) * steps / max(t_train, 1e-9):,.0f} member-steps/s), scored in "
            f"{t_score:.1f} s; {n_div} diverged"
        )
    return points


def _result(
    spec: SweepSpec,
    device: str,
    settings: dict[str, Any],
    info: dict[str, Any],
    points: list[dict[str, Any]],
    seconds: float,
) -> dict[str, Any]:
    """The sweep's JSON (module docstring), strict JSON with 5 significant digits."""
    member_steps = len(spec.modes) * spec.runs_per_mode() * spec.num_steps
    out = {
        "schema": SCHEMA_VERSION,
        "experiment": spec.experiment,
        "quick": spec.quick,
        "command": "python -m bijepa_nb.sweep " + " ".join(sys.argv[1:])
        if sys.argv and sys.argv[0].endswith("sweep.py")
        else "bijepa_nb.experiments.sweep.sweep()",
        "seconds": round(seconds, 1),
        "member_steps_per_second": round(member_steps / seconds),
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": device,
            "threads": spec.threads,
        },
        "execution": info,
        "settings": settings,
        "grid": {
            "modes": list(spec.modes),
            "alpha": [float(a) for a in spec.alphas],
            "ema_momentum": [float(t) for t in spec.taus],
            "seeds": list(spec.seeds),
        },
        "metrics": metric_spec(spec.experiment),
        "points": points,
    }
    if spec.overrides:
        settings["overrides"] = dict(spec.overrides)
    return _clean(out, digits=5)


def validate(result: dict[str, Any]) -> None:
    """Raise ValueError naming the first field that does not follow the schema."""

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(f"sweep JSON: {what}")

    need(result.get("schema") == SCHEMA_VERSION, f"schema must be {SCHEMA_VERSION!r}")
    need(result.get("experiment") in SWEPT, f"experiment must be one of {SWEPT}")
    grid = result.get("grid", {})
    for key in ("modes", "alpha", "ema_momentum", "seeds"):
        v = grid.get(key)
        need(
            isinstance(v, list) and len(v) > 0 and len(set(v)) == len(v),
            f"grid.{key} must be a non-empty list without repeats",
        )
    need(
        grid["alpha"] == sorted(grid["alpha"])
        and grid["ema_momentum"] == sorted(grid["ema_momentum"]),
        "grid axes must be sorted",
    )
    metrics = result.get("metrics", {})
    check_metrics(metrics, need)
    points = result.get("points", [])
    expected = [
        (m, a, t)
        for m in grid["modes"]
        for a in grid["alpha"]
        for t in grid["ema_momentum"]
    ]
    need(
        len(points) == len(expected),
        f"points must hold one entry per grid point ({len(expected)}), got {len(points)}",
    )
    for i, (p, (m, a, t)) in enumerate(zip(points, expected)):
        need(
            (p.get("mode"), p.get("alpha"), p.get("ema_momentum")) == (m, a, t),
            f"points[{i}] must be ({m}, {a}, {t})",
        )
        _validate_point(f"points[{i}]", p, len(grid["seeds"]), metrics, need)


def _validate_point(
    where: str,
    p: dict[str, Any],
    n: int,
    metrics: dict[str, Any],
    need: Callable[[bool, str], None],
) -> None:
    """The checks of one point of ``validate``: per-seed lists, its ``show`` curves."""
    need(
        isinstance(p.get("diverged_at"), list) and len(p["diverged_at"]) == n,
        f"{where}.diverged_at needs one entry per seed",
    )
    need(
        set(p.get("per_seed", {})) == set(metrics),
        f"{where}.per_seed must hold exactly the described metrics",
    )
    for k, v in p["per_seed"].items():
        need(
            isinstance(v, list)
            and len(v) == n
            and all(x is None or isinstance(x, (int, float)) for x in v),
            f"{where}.per_seed[{k!r}] needs one number or null per seed",
        )
    show = p.get("show", {})
    for k in (
        "steps",
        "loss_total",
        "loss_fwd",
        "loss_bwd",
        "norm_steps",
        "online_norm",
        "target_norm",
    ):
        need(
            isinstance(show.get(k), list) and len(show[k]) <= CURVE_POINTS,
            f"{where}.show.{k} must be a list of <= {CURVE_POINTS}",
        )
    need(
        len(show["steps"]) == len(show["loss_total"])
        and len(show["norm_steps"]) == len(show["online_norm"]),
        f"{where}.show curves and their steps must have equal lengths",
    )
    fc = show.get("forecast")
    need(
        fc is None
        or all(isinstance(fc.get(k), list) for k in ("truth", "pred_A", "pred_B")),
        f"{where}.show.forecast must be null or hold truth, pred_A, pred_B",
    )
    need(
        (fc is None) == (show.get("diverged_at") is not None),
        f"{where}.show.forecast is null exactly when its seed diverged",
    )


def point(
    result: dict[str, Any], mode: str, alpha: float, ema_momentum: float
) -> dict[str, Any]:
    """The entry of one grid point; an error names the parameter and the grid's values."""
    g = result["grid"]
    for name, v, axis in (
        ("mode", mode, g["modes"]),
        ("alpha", alpha, g["alpha"]),
        ("ema_momentum", ema_momentum, g["ema_momentum"]),
    ):
        if v not in axis:
            raise ValueError(
                f"{name} must be one of the grid's values {axis}, got {v!r}"
            )
    i = (g["modes"].index(mode) * len(g["alpha"]) + g["alpha"].index(alpha)) * len(
        g["ema_momentum"]
    ) + g["ema_momentum"].index(ema_momentum)
    return result["points"][i]


def merge(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One sweep from sweeps of the same experiment, alpha, ema_momentum and seeds that
    cover different stability modes (e.g. one process per mode); modes in
    STABILITY_MODES order, ``seconds`` the sum of the parts' times."""
    if not parts:
        raise ValueError("parts must hold at least one sweep")
    for r in parts:
        validate(r)
    first = parts[0]
    for i, r in enumerate(parts):
        for key in ("experiment", "quick"):
            if r[key] != first[key]:
                raise ValueError(
                    f"parts[{i}].{key} is {r[key]!r}, parts[0] has {first[key]!r}"
                )
        for key in ("alpha", "ema_momentum", "seeds"):
            if r["grid"][key] != first["grid"][key]:
                raise ValueError(
                    f"parts[{i}].grid.{key} differs from parts[0]: merge needs one grid"
                )
    modes = [m for r in parts for m in r["grid"]["modes"]]
    if len(set(modes)) != len(modes):
        raise ValueError(f"the parts repeat a stability mode: {modes}")
    order = [m for m in STABILITY_MODES if m in modes]
    by_mode = {m: r for r in parts for m in r["grid"]["modes"]}
    out = json.loads(json.dumps(first))
    out["grid"]["modes"] = order
    out["points"] = [p for m in order for p in by_mode[m]["points"] if p["mode"] == m]
    out["settings"]["modes"] = {m: by_mode[m]["settings"]["modes"][m] for m in order}
    out["seconds"] = round(sum(r["seconds"] for r in parts), 1)
    steps = sum(
        len(r["points"])
        * len(r["grid"]["seeds"])
        * next(iter(r["settings"]["modes"].values()))["train"]["num_steps"]
        for r in parts
    )
    out["member_steps_per_second"] = (
        round(steps / out["seconds"]) if out["seconds"] else None
    )
    out["command"] = "; ".join(r["command"] for r in parts)
    validate(out)
    return out


def grid_values(result: dict[str, Any], metric: str) -> np.ndarray:
    """Per-seed values of ``metric`` as an array [modes, alpha, ema_momentum, seeds]; NaN where
    a seed diverged (or the metric does not exist)."""
    if metric not in result["metrics"]:
        raise ValueError(
            f"metric must be one of {sorted(result['metrics'])}, got {metric!r}"
        )
    g = result["grid"]
    shape = (len(g["modes"]), len(g["alpha"]), len(g["ema_momentum"]), len(g["seeds"]))
    flat = [
        [np.nan if v is None else v for v in p["per_seed"][metric]]
        for p in result["points"]
    ]
    return np.asarray(flat, dtype=float).reshape(shape)


def diverged_counts(result: dict[str, Any]) -> np.ndarray:
    """How many seeds of each grid point diverged: [modes, alpha, ema_momentum] integers."""
    g = result["grid"]
    counts = [sum(d is not None for d in p["diverged_at"]) for p in result["points"]]
    return np.asarray(counts).reshape(
        len(g["modes"]), len(g["alpha"]), len(g["ema_momentum"])
    )
