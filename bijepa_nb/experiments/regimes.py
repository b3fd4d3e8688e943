"""Harder regimes: where trivial baselines should fail, as one JSON file.

(command line: ``python -m bijepa_nb.reproduce regimes``)

The book's three tasks are nearly solved by models of the raw data. This study moves each
task to settings where those models should struggle and asks again whether a JEPA's
read-out beats them, on held-out data and over seeds:

- **sine**, observation noise sigma in ``NOISE_LEVELS`` (0.05 is the paper's) and
  read-outs ``SINE_HORIZONS`` steps ahead (1 is the paper's); scored against the
  noise-free signal (the part of the future that can be forecast).
- **Lorenz**, started on the attractor (``LORENZ_BURN_IN`` Euler steps of dt = 0.01
  run and discarded) and read out ``LORENZ_HORIZONS`` steps ahead, the longest beyond
  one Lyapunov time (about 1.1 time units; the Euler map's exponent is measured here).
- **MNIST**, the linear probe trained on ``LABEL_BUDGETS`` labels per class.

Models: classic JEPA and BiJEPA (expressive) at the paper's settings (registry). Sine
and Lorenz train all seeds of both variants as one batched ensemble per chunk; MNIST
one chunk per (variant, seed) at ``MNIST_STEPS`` steps. Chunks are cached like the
sweep's (``chunks.run_chunks``), so a rerun computes only what is missing.

JSON schema (``SCHEMA_VERSION``; ``validate`` checks it):

- ``schema``, ``quick``, ``command``, ``seconds`` (wall time), ``environment``,
  ``seeds`` ({"sine": [...], "lorenz": [...], "mnist": [...]}), ``regimes`` (the
  values studied), ``settings`` (data sizes, step budgets, the measured Lyapunov
  exponent), ``execution`` (chunks computed and taken from the cache).
- ``points``: one per regime point: ``experiment``, ``regime`` ({"noise_std",
  "horizon"} / {"horizon", "time"} / {"labels_per_class"}), ``label``, ``unit``,
  ``higher_is_better``, ``models`` ({variant: {read-out: [value or null per seed]}}),
  ``diverged_at`` ({variant: [step or null per seed]}), ``baselines`` ({name: [value
  per seed]}); every list has one entry per seed of the experiment.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.config import (
    LorenzConfig,
    MnistConfig,
    SineConfig,
    TrainConfig,
    check_choice,
    check_int,
    resolve_device,
)
from ..core.data import (
    EpochStream,
    PoolStream,
    SineStream,
    Split,
    first_target_step,
    lorenz_step,
    lorenz_trajectories,
    make_generator,
    sine_sequences,
    sine_time_grid,
    split_context_target,
)
from ..core.models import build_model
from ..core.probes import lstsq_probe, protocol_features
from ..core.training import TrainingDiverged, train
from .baselines import forecast_baselines
from .chunks import Chunk, ChunkCache, Cluster, code_version, run_chunks
from .mnist import MnistData, batched_encode, classification_probe, load_mnist
from .mnist_runs import MnistSets
from .pipeline import Run, train_runs
from .registry import EXPERIMENTS, VARIANTS, SeedData

SCHEMA_VERSION = "bijepa-regimes/1"
#: The keys an existing output file must share with a study's results to be replaced.
IDENTITY = ("schema", "seeds", "quick", "regimes")
#: The two JEPAs of every point: classic JEPA and BiJEPA (expressive), paper settings.
MODELS = ("classic", "expressive")
NOISE_LEVELS = (0.05, 0.2, 0.5)
SINE_HORIZONS = (1, 5, 10)
#: Lorenz read-out horizons in Euler steps of dt = 0.01 (0.01 to 2.2 time units).
LORENZ_HORIZONS = (1, 10, 50, 110, 220)
LORENZ_BURN_IN = 1000  # 10 time units: far onto the attractor from U(-15, 15)^3
LABEL_BUDGETS = (1, 10, 100)
#: MNIST training steps: the registry's 700-step checkpoint (the paper's 2,350 cost
#: about 3.4 times as much; the chapter says what that means).
MNIST_STEPS = 700
LABEL_DRAWS = (
    5  # labelled subsets per seed and budget; the probe's accuracy is averaged
)
#: Sine and Lorenz read-outs: least squares on f(x) (Protocol A) and P_fwd(f(x)) (B).
READOUTS = ("A", "B")
QUICK = {
    "seeds": 3,
    "num_steps": 100,
    "n_probe": 200,
    "n_test": 200,
    "n_train": 200,
    "mnist_steps": 6,
    "mnist_train": 1500,
    "mnist_eval": 256,
    "probe_epochs": 5,
    "draws": 2,
}
SINE_UNIT = "MSE against the noise-free signal (signal units)"
LORENZ_UNIT = "MSE, normalised units (training-pool mean/std)"
MNIST_UNIT = "held-out accuracy (fraction)"
BASELINE_TEXT = {
    "mean": "the probe set's mean of the target step",
    "persistence": "the last context value",
    "linear_extrapolation": "last + k * (last - second to last): constant velocity",
    "lstsq_context": "least squares from the raw context, fitted on the probe set",
    "ridge_context": "ridge regression (lambda = 1) from the raw context",
    "sinusoid_fit": "a sinusoid fitted to each context, extrapolated k steps",
    "raw_pixels": "the same probe, with the same labels, on raw left-half pixels",
    "random_encoder": "the same probe on an untrained conv encoder of the same seed",
}


# ------------------------------------------------------------------------ the spec
@dataclasses.dataclass(frozen=True)
class RegimesSpec:
    """A regimes study: seeds per experiment, the regime values, and how it runs.

    ``quick``: a smoke run (``QUICK``: tiny data and run lengths). Every regime value
    is checked by ``check``, which names the parameter and the allowed values.
    """

    sine_seeds: Sequence[int] = tuple(range(10))
    lorenz_seeds: Sequence[int] = tuple(range(10))
    mnist_seeds: Sequence[int] = tuple(range(5))
    noise_levels: Sequence[float] = NOISE_LEVELS
    sine_horizons: Sequence[int] = SINE_HORIZONS
    lorenz_horizons: Sequence[int] = LORENZ_HORIZONS
    label_budgets: Sequence[int] = LABEL_BUDGETS
    quick: bool = False
    device: str = "auto"
    threads: int = 1

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))

    def check(self) -> None:
        """Raise ValueError naming the first parameter out of range."""
        for name in ("sine_seeds", "lorenz_seeds", "mnist_seeds"):
            seeds = getattr(self, name)
            if name == "mnist_seeds" and seeds == ():
                continue  # no MNIST part
            _check_values(name, seeds, lambda n, s: check_int(n, s, 0))
        for sigma in _listed("noise_levels", self.noise_levels):
            if sigma not in NOISE_LEVELS:
                raise ValueError(
                    f"noise_levels must hold values of {NOISE_LEVELS} (the observation "
                    f"noise sigma of the sine regimes), got {sigma!r}"
                )
        window = SineConfig().seq_len - SineConfig().context_len
        _check_values(
            "sine_horizons", self.sine_horizons, lambda n, k: check_int(n, k, 1, window)
        )
        _check_values(
            "lorenz_horizons",
            self.lorenz_horizons,
            lambda n, k: check_int(n, k, 1, 1000),
        )
        _check_values(
            "label_budgets", self.label_budgets, lambda n, k: check_int(n, k, 1)
        )
        check_choice("device", self.device, ("auto", "cpu", "cuda", "mps"))
        check_int("threads", self.threads, 1)

    def seeds(self) -> dict[str, list[int]]:
        return {
            "sine": list(self.sine_seeds),
            "lorenz": list(self.lorenz_seeds),
            "mnist": list(self.mnist_seeds),
        }

    def regimes(self) -> dict[str, Any]:
        return {
            "noise_levels": [float(s) for s in self.noise_levels],
            "sine_horizons": list(self.sine_horizons),
            "lorenz_horizons": list(self.lorenz_horizons),
            "label_budgets": list(self.label_budgets),
        }

    def identity(self) -> dict[str, Any]:
        """What an existing output file must share with these results (``IDENTITY``)."""
        return {
            "schema": SCHEMA_VERSION,
            "seeds": self.seeds(),
            "quick": self.quick,
            "regimes": self.regimes(),
        }


def _listed(name: str, values: Any) -> tuple:
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{name} must be a non-empty list, got {values!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a value, got {list(values)}")
    return tuple(values)


def _check_values(name: str, values: Any, check: Callable[[str, Any], None]) -> None:
    for v in _listed(name, values):
        check(f"{name}[...]", v)


# --------------------------------------------------------------------- sine data
def sine_regime_data(cfg: SineConfig, seed: int) -> tuple[SeedData, torch.Tensor]:
    """One seed's sine data at ``cfg.noise_std``: the training stream, probe and test
    sets (noisy, as the models and probes see them) and the test set's noise-free
    target window [n_test, T - C] (what the forecasts are scored against)."""
    t = sine_time_grid(cfg)
    sets, clean = {}, None
    for stream, n in (("probe", cfg.n_probe), ("test", cfg.n_test)):
        seq, w, phi = sine_sequences(
            n, make_generator(seed, stream), cfg, return_params=True
        )
        sets[stream] = Split(*split_context_target(seq, cfg.context_len))
        if stream == "test":
            signal = torch.sin(w[:, None] * t + phi[:, None]).float()
            clean = signal[:, cfg.context_len :]
    data = SeedData(
        lambda b, dev: SineStream(cfg, seed, b, dev), sets["probe"], sets["test"]
    )
    return data, clean  # type: ignore[return-value]


# ------------------------------------------------------------------- Lorenz data
def lorenz_regime_data(cfg: LorenzConfig, seed: int, max_horizon: int) -> SeedData:
    """One seed's Lorenz data on the attractor (``cfg.burn_in`` steps discarded): the
    training pool of ``cfg.seq_len`` steps, and probe and test sets whose target runs
    ``max_horizon`` steps past the context; all normalised by the training pool's
    scalar mean and std."""
    check_int("max_horizon", max_horizon, 1, 1000)
    long = replace(cfg, seq_len=cfg.context_len + max_horizon)
    raw = {
        "train": lorenz_trajectories(cfg.n_train, make_generator(seed, "train"), cfg),
        "probe": lorenz_trajectories(cfg.n_probe, make_generator(seed, "probe"), long),
        "test": lorenz_trajectories(cfg.n_test, make_generator(seed, "test"), long),
    }
    mean, std = raw["train"].mean().item(), raw["train"].std().item()
    sp = {
        s: Split(*split_context_target(((r - mean) / std).float(), cfg.context_len))
        for s, r in raw.items()
    }
    return SeedData(
        lambda b, dev: PoolStream(sp["train"], seed, b, dev), sp["probe"], sp["test"]
    )


def lyapunov_exponent(
    cfg: LorenzConfig = LorenzConfig(),
    n: int = 64,
    steps: int = 5000,
    seed: int = 0,
    eps: float = 1e-8,
) -> float:
    """The largest Lyapunov exponent (per time unit) of the Euler map of ``cfg``
    (Benettin's method): ``n`` trajectories started on the attractor (``cfg.burn_in``
    or 1000 steps), each with a neighbour ``eps`` away, renormalised every step; the
    mean log growth per step over ``steps`` steps and over trajectories, divided by dt."""
    check_int("n", n, 1)
    check_int("steps", steps, 1)
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 3, generator=gen, dtype=torch.float64) * 2 - 1) * cfg.init_range
    for _ in range(max(cfg.burn_in, 1000)):
        x = lorenz_step(x, cfg)
    d = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    y = x + eps * d / d.norm(dim=1, keepdim=True)
    total = torch.zeros(n, dtype=torch.float64)
    for _ in range(steps):
        x, y = lorenz_step(x, cfg), lorenz_step(y, cfg)
        dist = (y - x).norm(dim=1)
        total += torch.log(dist / eps)
        y = x + (y - x) * (eps / dist)[:, None]
    return float(total.mean() / (steps * cfg.dt))


# -------------------------------------------------------------- forecast chunks
def _train_pair(
    experiment: str, fields: dict[str, Any], data: dict[int, SeedData]
) -> dict[str, list]:
    """Classic JEPA and BiJEPA for every seed of ``fields``, as one batched ensemble
    (``pipeline.train_runs``); returns {variant: [Trained per seed]}."""
    exp = EXPERIMENTS[experiment]
    runs = [
        Run(
            VARIANTS[v].mode,
            exp.configs(
                v,
                seed=s,
                num_steps=fields["num_steps"],
                device=fields["device"],
                num_threads=fields["threads"],
                progress=False,
            )[1],
            v,
        )
        for v in MODELS
        for s in fields["seeds"]
    ]
    trained = train_runs(exp, runs, data)
    n = len(fields["seeds"])
    return {v: trained[i * n : (i + 1) * n] for i, v in enumerate(MODELS)}


def _readout_scores(
    trained: dict[str, list],
    data: dict[int, SeedData],
    seeds: Sequence[int],
    horizons: Sequence[int],
    truth: Callable[[int, int], torch.Tensor],
) -> dict[str, Any]:
    """Held-out MSE of least-squares Protocols A and B at every horizon: fitted on the
    probe set's target step, scored against ``truth(seed, horizon)`` [N_test, D]."""
    out: dict[str, Any] = {}
    for v, runs in trained.items():
        per: dict[str, dict[str, list]] = {
            p: {str(h): [] for h in horizons} for p in READOUTS
        }
        for s, t in zip(seeds, runs):
            for p in READOUTS:
                for h in horizons:
                    if t.model is None:
                        per[p][str(h)].append(None)
                        continue
                    dev = next(t.model.parameters()).device
                    f_tr, y_tr = protocol_features(t.model, data[s].probe.to(dev), p, h)
                    f_te, _ = protocol_features(t.model, data[s].test.to(dev), p, h)
                    probe = lstsq_probe(f_tr, y_tr)
                    y = truth(s, h).to(dev)
                    per[p][str(h)].append(
                        float(((probe(f_te).double() - y.double()) ** 2).mean())
                    )
        out[v] = {
            "readouts": per,
            "diverged_at": [t.diverged_at for t in runs],
        }
    return out


def sine_chunk(fields: dict[str, Any]) -> dict[str, Any]:
    """One noise level: classic JEPA and BiJEPA over the seeds (one ensemble), their
    read-outs and the baselines at every horizon. Runs here or in a Ray worker."""
    torch.set_num_threads(fields["threads"])
    t0 = time.perf_counter()
    cfg = SineConfig(
        noise_std=fields["noise_std"],
        n_probe=fields["n_probe"],
        n_test=fields["n_test"],
    )
    seeds, horizons = fields["seeds"], fields["horizons"]
    data, clean = {}, {}
    for s in seeds:
        data[s], clean[s] = sine_regime_data(cfg, s)
    trained = _train_pair("sine", fields, data)
    truth = lambda s, h: clean[s][:, h - 1 : h]
    models = _readout_scores(trained, data, seeds, horizons, truth)
    baselines: dict[str, dict[str, list]] = {}
    for h in horizons:
        rows = [
            forecast_baselines(
                data[s].probe,
                data[s].test,
                "sine",
                cfg=cfg,
                horizon=h,
                truth=truth(s, h),
            )
            for s in seeds
        ]
        names = [k for k in rows[0] if k != "noise_floor"]  # 0 against the signal
        baselines[str(h)] = {k: [r[k] for r in rows] for k in names}
    return {
        "models": models,
        "baselines": baselines,
        "seconds": time.perf_counter() - t0,
    }


def lorenz_chunk(fields: dict[str, Any]) -> dict[str, Any]:
    """Lorenz on the attractor: classic JEPA and BiJEPA over the seeds (one ensemble),
    their read-outs and the baselines at every horizon, and the measured Lyapunov
    exponent of the Euler map."""
    torch.set_num_threads(fields["threads"])
    t0 = time.perf_counter()
    cfg = LorenzConfig(
        burn_in=fields["burn_in"],
        n_train=fields["n_train"],
        n_probe=fields["n_probe"],
        n_test=fields["n_test"],
    )
    seeds, horizons = fields["seeds"], fields["horizons"]
    data = {s: lorenz_regime_data(cfg, s, max(horizons)) for s in seeds}
    trained = _train_pair("lorenz", fields, data)
    truth = lambda s, h: first_target_step(data[s].test.target, h)
    models = _readout_scores(trained, data, seeds, horizons, truth)
    baselines: dict[str, dict[str, list]] = {}
    for h in horizons:
        rows = [
            forecast_baselines(data[s].probe, data[s].test, "lorenz", horizon=h)
            for s in seeds
        ]
        baselines[str(h)] = {k: [r[k] for r in rows] for k in rows[0]}
    return {
        "models": models,
        "baselines": baselines,
        "lyapunov_exponent": lyapunov_exponent(cfg),
        "seconds": time.perf_counter() - t0,
    }


# --------------------------------------------------------------------- MNIST
def label_subset(
    labels: torch.Tensor, per_class: int, generator: torch.Generator
) -> torch.Tensor:
    """Indices of ``per_class`` labelled images of every class, drawn without
    replacement by ``generator``: [10 * per_class]. An error when a class of the split
    has fewer images than ``per_class``, naming the largest budget the split allows."""
    counts = torch.bincount(labels, minlength=10)
    check_int("labels_per_class", per_class, 1)
    if per_class > int(counts.min()):
        raise ValueError(
            f"labels_per_class must be in [1, {int(counts.min())}] (the smallest class "
            f"of the training split has {int(counts.min())} images), got {per_class}"
        )
    perm = torch.randperm(len(labels), generator=generator)
    picked = [perm[labels[perm] == c][:per_class] for c in range(len(counts))]
    return torch.cat(picked)


def check_label_budgets(budgets: Sequence[int], labels: torch.Tensor) -> None:
    """``label_subset``'s check for every budget, before any training."""
    gen = torch.Generator().manual_seed(0)
    for b in budgets:
        label_subset(labels, b, gen)


MNIST_SETS: dict[str, MnistSets] = {}


def mnist_sets_for(key: dict[str, Any]) -> MnistSets:
    """The data of ``key`` (the first ``n_train`` / ``n_eval`` images of ``load_mnist``,
    as the quick mode cuts them), loaded once per process and checked by its hash."""
    if key["sha256"] not in MNIST_SETS:
        full = load_mnist(MnistConfig())
        mnist = cut_mnist(full, key["n_train"], key["n_eval"])
        got = mnist.key()
        if got != key:
            raise ValueError(
                f"this process's MNIST ({got}) differs from the driver's ({key}): use "
                "the same BIJEPA_DATA_DIR folder or download everywhere"
            )
        MNIST_SETS[key["sha256"]] = MnistSets.of(mnist)
    return MNIST_SETS[key["sha256"]]


def cut_mnist(mnist: MnistData, n_train: int, n_eval: int) -> MnistData:
    return MnistData(
        mnist.train_images[:n_train],
        mnist.train_labels[:n_train],
        mnist.eval_images[:n_eval],
        mnist.eval_labels[:n_eval],
        mnist.source,
    )


def budget_accuracies(
    f_tr: torch.Tensor,
    f_ev: torch.Tensor,
    sets: MnistSets,
    fields: dict[str, Any],
) -> dict[str, float]:
    """Held-out accuracy of the linear probe on features f_tr [N_train, D] for every
    label budget: the mean over ``fields["draws"]`` labelled subsets, drawn from the
    seed's "probe" stream (the same subsets for every model of that seed)."""
    gen = make_generator(fields["seed"], "probe")
    labels = sets.train.labels
    out = {}
    for b in fields["budgets"]:
        accs = []
        for _ in range(fields["draws"]):
            idx = label_subset(labels, b, gen)  # type: ignore[arg-type]
            accs.append(
                classification_probe(
                    f_tr[idx],
                    labels[idx],  # type: ignore[index]
                    f_ev,
                    sets.eval.labels,  # type: ignore[arg-type]
                    epochs=fields["probe_epochs"],
                    seed=fields["seed"],
                )["eval_acc"]
            )
        out[str(b)] = float(np.mean(accs))
    return out


def mnist_chunk(fields: dict[str, Any]) -> dict[str, Any]:
    """One MNIST (variant, seed): train it for ``num_steps`` and probe its frozen
    encoder at every label budget; ``variant="baselines"``: raw pixels and the
    untrained encoder of that seed at every budget."""
    torch.set_num_threads(fields["threads"])
    t0 = time.perf_counter()
    sets = mnist_sets_for(fields["data"])
    dev = resolve_device(fields["device"])
    if dev.type != "cpu":
        sets = sets.to(dev)
    exp, seed = EXPERIMENTS["mnist"], fields["seed"]
    if fields["variant"] == "baselines":
        mc = exp.model_config("expressive")
        rand = build_model(mc, TrainConfig(seed=seed), dev)  # every JEPA's step 0
        feats = {
            "raw_pixels": (sets.train.context.flatten(1), sets.eval.context.flatten(1)),
            "random_encoder": (
                batched_encode(rand, sets.train.context),
                batched_encode(rand, sets.eval.context),
            ),
        }
        acc = {k: budget_accuracies(*f, sets, fields) for k, f in feats.items()}
        return {"baselines": acc, "seconds": time.perf_counter() - t0}
    mc, tc = exp.configs(
        fields["variant"],
        seed=seed,
        num_steps=fields["num_steps"],
        device=fields["device"],
        num_threads=fields["threads"],
        progress=False,
    )
    model = build_model(mc, tc, dev)
    try:
        train(model, EpochStream(sets.train, seed, tc.batch_size, dev), tc)
    except TrainingDiverged as err:
        return {
            "diverged_at": err.step,
            "probe": None,
            "seconds": time.perf_counter() - t0,
        }
    f_tr = batched_encode(model, sets.train.context)
    f_ev = batched_encode(model, sets.eval.context)
    return {
        "diverged_at": None,
        "probe": budget_accuracies(f_tr, f_ev, sets, fields),
        "seconds": time.perf_counter() - t0,
    }


# ---------------------------------------------------------------------- the study
def _sizes(quick: bool) -> dict[str, int]:
    """Run lengths and data sizes: the paper's, or ``QUICK``'s."""
    sine, lorenz = EXPERIMENTS["sine"], EXPERIMENTS["lorenz"]
    q = QUICK
    return {
        "sine_steps": q["num_steps"] if quick else sine.train["num_steps"],
        "lorenz_steps": q["num_steps"] if quick else lorenz.train["num_steps"],
        "n_probe": q["n_probe"] if quick else SineConfig().n_probe,
        "n_test": q["n_test"] if quick else SineConfig().n_test,
        "n_train": q["n_train"] if quick else LorenzConfig().n_train,
        "mnist_steps": q["mnist_steps"] if quick else MNIST_STEPS,
        "probe_epochs": q["probe_epochs"]
        if quick
        else EXPERIMENTS["mnist"].probe_epochs,
        "draws": q["draws"] if quick else LABEL_DRAWS,
    }


def _chunks(
    spec: RegimesSpec, sizes: dict[str, int], mnist_key: dict[str, Any] | None
) -> list[tuple[Callable, Chunk]]:
    """Every chunk of the study with the function that computes it."""
    common = {
        "device": spec.device,
        "threads": spec.threads,
        "code": code_version(),
        "torch": torch.__version__,
    }
    forecast = {"n_probe": sizes["n_probe"], "n_test": sizes["n_test"]}
    out: list[tuple[Callable, Chunk]] = []
    for sigma in spec.noise_levels:
        f = {
            "kind": "regimes-sine",
            "noise_std": float(sigma),
            "seeds": list(spec.sine_seeds),
            "horizons": list(spec.sine_horizons),
            "num_steps": sizes["sine_steps"],
            **forecast,
            **common,
        }
        out.append((sine_chunk, Chunk(f, f"sine sigma={sigma:g}")))
    f = {
        "kind": "regimes-lorenz",
        "burn_in": LORENZ_BURN_IN,
        "seeds": list(spec.lorenz_seeds),
        "horizons": list(spec.lorenz_horizons),
        "num_steps": sizes["lorenz_steps"],
        "n_train": sizes["n_train"],
        **forecast,
        **common,
    }
    out.append((lorenz_chunk, Chunk(f, "lorenz on the attractor")))
    if mnist_key is not None:
        for v in (*MODELS, "baselines"):
            for s in spec.mnist_seeds:
                f = {
                    "kind": "regimes-mnist",
                    "variant": v,
                    "seed": s,
                    "num_steps": sizes["mnist_steps"],
                    "probe_epochs": sizes["probe_epochs"],
                    "budgets": list(spec.label_budgets),
                    "draws": sizes["draws"],
                    "data": mnist_key,
                    **common,
                }
                out.append((mnist_chunk, Chunk(f, f"mnist {v} seed {s}")))
    return out


def run_chunk(fields: dict[str, Any]) -> dict[str, Any]:
    """Compute one chunk of any kind (the one function ``chunks.run_chunks`` calls)."""
    fn = {
        "regimes-sine": sine_chunk,
        "regimes-lorenz": lorenz_chunk,
        "regimes-mnist": mnist_chunk,
    }[fields["kind"]]
    return fn(fields)


def regimes(
    spec: RegimesSpec,
    log: Callable[[str], None] = print,
    cache_dir: Path | str | None = None,
    cluster: Cluster | None = None,
    mnist: MnistData | None = None,
) -> dict[str, Any]:
    """Run the study ``spec``; returns the JSON-ready dict (see the module docstring).

    ``mnist``: the digits (default ``load_mnist``, cut to ``QUICK``'s sizes in quick
    mode); the label budgets are checked against its training split before any
    training. ``cache_dir`` and ``cluster`` as in ``chunks.run_chunks``.
    """
    spec.check()
    t0 = time.perf_counter()
    sizes = _sizes(spec.quick)
    if spec.mnist_seeds:
        mnist = mnist if mnist is not None else load_mnist(MnistConfig())
        if spec.quick:
            mnist = cut_mnist(mnist, QUICK["mnist_train"], QUICK["mnist_eval"])
        check_label_budgets(spec.label_budgets, mnist.train_labels)
        key = mnist.key()
        MNIST_SETS.setdefault(key["sha256"], MnistSets.of(mnist))
    else:
        key = None
    jobs = _chunks(spec, sizes, key)
    results, info = run_chunks(
        run_chunk,
        [c for _, c in jobs],
        ChunkCache(cache_dir, log),
        cluster,
        cpus_per_chunk=spec.threads,
        log=log,
    )
    by_kind: dict[str, list] = {}
    for (_, c), r in zip(jobs, results):
        by_kind.setdefault(c.fields["kind"], []).append((c.fields, r))
    points = _sine_points(spec, by_kind.get("regimes-sine", []))
    lorenz = by_kind["regimes-lorenz"][0][1]
    points += _lorenz_points(spec, lorenz)
    points += _mnist_points(spec, by_kind.get("regimes-mnist", []))
    lam = lorenz["lyapunov_exponent"]
    dev = resolve_device(spec.device)
    out = {
        "schema": SCHEMA_VERSION,
        "quick": spec.quick,
        "seeds": spec.seeds(),
        "regimes": spec.regimes(),
        "command": "python -m bijepa_nb.reproduce " + " ".join(sys.argv[1:])
        if sys.argv and sys.argv[0].endswith("reproduce.py")
        else "bijepa_nb.experiments.regimes.regimes()",
        "seconds": round(time.perf_counter() - t0, 1),
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(dev),
            "threads": spec.threads,
            **({"mnist_source": key["source"]} if key else {}),
        },
        "settings": {
            **sizes,
            "models": {v: VARIANTS[v].label for v in MODELS},
            "lorenz_burn_in": LORENZ_BURN_IN,
            "lorenz_dt": LorenzConfig().dt,
            "lyapunov_exponent": lam,
            "lyapunov_time": 1 / lam,
            "chunk_seconds": {
                c.label: r["seconds"] for (_, c), r in zip(jobs, results)
            },
        },
        "execution": info,
        "points": points,
    }
    out = _clean(out)
    validate(out)
    return out


def _sine_points(spec: RegimesSpec, done: list) -> list[dict[str, Any]]:
    points = []
    for fields, r in done:
        sigma = fields["noise_std"]
        for h in fields["horizons"]:
            points.append(
                _forecast_point(
                    "sine",
                    {"noise_std": sigma, "horizon": h},
                    f"σ = {sigma:g}, k = {h}",
                    SINE_UNIT,
                    r,
                    h,
                )
            )
    return points


def _lorenz_points(spec: RegimesSpec, r: dict[str, Any]) -> list[dict[str, Any]]:
    dt = LorenzConfig().dt
    return [
        _forecast_point(
            "lorenz",
            {"horizon": h, "time": round(h * dt, 6)},
            f"k = {h} ({h * dt:g} time units)",
            LORENZ_UNIT,
            r,
            h,
        )
        for h in spec.lorenz_horizons
    ]


def _forecast_point(
    experiment: str,
    regime: dict[str, Any],
    label: str,
    unit: str,
    r: dict[str, Any],
    h: int,
) -> dict[str, Any]:
    return {
        "experiment": experiment,
        "regime": regime,
        "label": label,
        "unit": unit,
        "higher_is_better": False,
        "models": {
            v: {p: m["readouts"][p][str(h)] for p in READOUTS}
            for v, m in r["models"].items()
        },
        "diverged_at": {v: m["diverged_at"] for v, m in r["models"].items()},
        "baselines": r["baselines"][str(h)],
    }


def _mnist_points(spec: RegimesSpec, done: list) -> list[dict[str, Any]]:
    if not done:
        return []
    by = {(f["variant"], f["seed"]): r for f, r in done}
    seeds = list(spec.mnist_seeds)
    points = []
    for b in spec.label_budgets:
        k = str(b)
        base = [by[("baselines", s)]["baselines"] for s in seeds]
        points.append(
            {
                "experiment": "mnist",
                "regime": {"labels_per_class": b},
                "label": f"{b} label{'s' if b > 1 else ''} per class",
                "unit": MNIST_UNIT,
                "higher_is_better": True,
                "models": {
                    v: {
                        "probe": [
                            None
                            if by[(v, s)]["probe"] is None
                            else by[(v, s)]["probe"][k]
                            for s in seeds
                        ]
                    }
                    for v in MODELS
                },
                "diverged_at": {
                    v: [by[(v, s)]["diverged_at"] for s in seeds] for v in MODELS
                },
                "baselines": {
                    name: [row[name][k] for row in base]
                    for name in ("raw_pixels", "random_encoder")
                },
            }
        )
    return points


def _clean(x: Any) -> Any:
    """NaN -> None (strict JSON), numpy scalars -> Python."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def validate(result: dict[str, Any]) -> None:
    """Raise ValueError naming the first field that does not follow the schema."""

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(f"regimes JSON: {what}")

    need(result.get("schema") == SCHEMA_VERSION, f"schema must be {SCHEMA_VERSION!r}")
    need(isinstance(result.get("quick"), bool), "quick must be true or false")
    seeds = result.get("seeds")
    need(
        isinstance(seeds, dict) and set(seeds) == {"sine", "lorenz", "mnist"},
        "seeds must map sine, lorenz and mnist to lists of seeds",
    )
    need(isinstance(result.get("seconds"), (int, float)), "seconds must be a number")
    points = result.get("points")
    need(
        isinstance(points, list) and len(points) > 0, "points must be a non-empty list"
    )
    for i, p in enumerate(points):  # type: ignore[arg-type]
        where = f"points[{i}]"
        exp = p.get("experiment")
        need(exp in seeds, f"{where}.experiment must be one of {sorted(seeds)}")
        n = len(seeds[exp])  # type: ignore[index]
        need(isinstance(p.get("regime"), dict), f"{where}.regime must be a dict")
        need(isinstance(p.get("label"), str), f"{where}.label must be a str")
        need(isinstance(p.get("unit"), str) and p["unit"], f"{where} needs a unit")
        need(
            isinstance(p.get("higher_is_better"), bool),
            f"{where}.higher_is_better must be true or false",
        )
        need(
            set(p.get("models", {})) == set(MODELS),
            f"{where}.models must hold exactly {MODELS}",
        )
        for v, reads in p["models"].items():
            need(bool(reads), f"{where}.models[{v!r}] needs a read-out")
            for name, vals in reads.items():
                need(
                    isinstance(vals, list) and len(vals) == n,
                    f"{where}.models[{v!r}][{name!r}] needs one value per seed",
                )
                need(
                    all(x is None or isinstance(x, (int, float)) for x in vals),
                    f"{where}.models[{v!r}][{name!r}] holds numbers or null",
                )
            need(
                len(p.get("diverged_at", {}).get(v, [])) == n,
                f"{where}.diverged_at[{v!r}] needs one entry per seed",
            )
        need(bool(p.get("baselines")), f"{where}.baselines must not be empty")
        for name, vals in p["baselines"].items():
            need(
                isinstance(vals, list)
                and len(vals) == n
                and all(isinstance(x, (int, float)) for x in vals),
                f"{where}.baselines[{name!r}] needs one number per seed",
            )
