"""The paper's tables over many seeds, with held-out scores and baselines, as one JSON file.

(command line: ``python -m bijepa_nb.reproduce``)

Sine and Lorenz train all seeds of a configuration at once (``bijepa_nb.experiments.ensemble``); MNIST
trains each (variant, seed) separately, two one-thread worker processes at a time
(``bijepa_nb.experiments.mnist_runs``; grouped-convolution batching does not pay on a CPU, see
``bijepa_nb.experiments.conv_ensemble``), at the paper's 2,350 steps whatever the data size.
Paper settings (Appendix B) unless ``--quick``. Sine and Lorenz run one chunk per table
variant, MNIST one chunk per (variant, seed) task; ``--ray [ADDRESS]`` runs the chunks as
Ray tasks. Finished chunks are cached (``--cache-dir``) as they finish, with or without Ray,
so a rerun after Ctrl-C computes only what is missing (``bijepa_nb.experiments.chunks``).

JSON schema (``SCHEMA_VERSION``; ``validate`` checks it):

- ``schema``, ``experiment``, ``seeds`` (list of int), ``quick`` (bool), ``command``,
  ``seconds`` (wall time of the whole reproduction), ``environment`` (torch version,
  device, threads; MNIST: ``mnist_source``, "full" or "offline-10k"), ``settings`` (the
  ModelConfig and TrainConfig of each configuration, probe epochs, data sizes).
- ``metrics``: ``{key: {"unit": str, "split": str, "description": str}}`` for every key
  of the per-seed results below; ``split`` is "train" (training loss/embeddings),
  "probe set" (the probe scored on its own training data, as the paper reports) or
  "held-out" (data never used for training or probe fitting).
- ``configs``: ``{name: {"label", "mode", "alpha", "diverged_at": [step or null per
  seed], "per_seed": {metric key: [value or null per seed]}}}``; a metric is null where it
  does not exist (classic JEPA has no backward predictor) or the seed diverged.
- ``baselines``: ``{name: {"unit", "split", "description", "per_seed": [value per seed]}}``
  on the same held-out data as the configurations (each seed has its own data).
- ``execution``: ``{"backend": "in-process" or "ray", "chunks",
  "from_cache", "computed"}``.
- ``paper``: the paper's own numbers for the same table (one run, scored on the probe set).
- MNIST only: ``checkpoints``: ``{"steps": [0, 320, 700, 1400, 2350], "metrics": [...],
  "configs": {name: {metric: [[value per step] per seed]}}}``, held-out probe accuracy,
  decoder MSE and embedding diagnostics along training (step 0: the untrained encoder,
  the random-encoder baseline of the same seed); ``settings.budget`` states the budget.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.config import (
    MnistConfig,
    check_choice,
    check_float,
    check_int,
    resolve_device,
)
from ..core.models import JEPA
from ..core.probes import evaluate
from ..core.training import History
from .baselines import chance_accuracy, forecast_baselines
from .chunks import (
    Chunk,
    ChunkCache,
    Cluster,
    code_version,
    run_chunks,
)
from .mnist import MnistData, load_mnist, right_half_pixels
from .mnist_runs import (
    BASELINES,
    CHECKPOINTS,
    DECODER_EPOCHS,
    MnistSets,
    MnistTask,
    run_task,
    run_tasks,
)
from .pipeline import Run, history_metrics, train_runs
from .registry import EXPERIMENTS, VARIANTS, SeedData

SCHEMA_VERSION = "bijepa-reproduce/1"
SPLITS = ("train", "probe set", "held-out")
LABELS = {name: v.label for name, v in VARIANTS.items()}
#: The paper's tables (one run each; probes scored on the probe set), from the registry.
PAPER: dict[str, dict[str, dict[str, float]]] = {
    name: exp.paper for name, exp in EXPERIMENTS.items()
}
QUICK = {
    "num_steps": 100,
    "probe_epochs": 10,
    "mnist_train": 512,
    "mnist_eval": 256,
    "epochs": 1,
}
PROTOCOLS = {
    "A": "Protocol A: linear probe on the context embedding f(x) -> first target step",
    "B": "Protocol B: linear probe on the forward prediction P_fwd(f(x)) -> first target step",
    "A_bwd": "backward Protocol A: linear probe on f(y) -> last context step",
    "B_bwd": "backward Protocol B: linear probe on P_bwd(f(y)) -> last context step (BiJEPA only)",
}


#: The keys an existing output file must share with a reproduction's results to be replaced.
IDENTITY = ("schema", "experiment", "seeds", "quick")


def identity(experiment: str, seeds: list[int], quick: bool) -> dict[str, Any]:
    """The ``IDENTITY`` keys of a reproduction's results, known before any training."""
    return {
        "schema": SCHEMA_VERSION,
        "experiment": experiment,
        "seeds": list(seeds),
        "quick": quick,
    }


def metric_spec(experiment: str) -> dict[str, dict[str, str]]:
    """Unit, split and description of every per-seed metric key of ``experiment``."""
    spec = _training_metrics()
    if EXPERIMENTS[experiment].kind == "halves":
        return {**spec, **_mnist_metrics()}
    return {**spec, **_forecast_metrics(experiment)}


LOSS_UNIT = "embedding MSE (mean over batch and embedding dims)"


def _training_metrics() -> dict[str, dict[str, str]]:
    """The metrics of every experiment: training losses, their roughness, embedding norms."""
    spec: dict[str, dict[str, str]] = {}
    for part in ("total", "fwd", "bwd"):
        spec[f"loss_final_{part}"] = {
            "unit": LOSS_UNIT,
            "split": "train",
            "description": f"{part} training loss at the last step (Eq. 8 for total; bwd is 0 for classic JEPA)",
        }
        spec[f"loss_last100_{part}"] = {
            "unit": LOSS_UNIT,
            "split": "train",
            "description": f"mean {part} training loss over the last 100 steps",
        }
    spec["roughness_fwd"] = {
        "unit": "std of log-loss residual (dimensionless)",
        "split": "train",
        "description": "fluctuation of the forward loss around its 51-step moving average, second half of training (stats.roughness)",
    }
    spec["roughness_total"] = {
        "unit": "std of log-loss residual (dimensionless)",
        "split": "train",
        "description": "the same for the total loss",
    }
    spec["norm_final"] = {
        "unit": "L2 norm",
        "split": "train",
        "description": "mean norm of the online context embedding f(x) at the last logged step",
    }
    spec["norm_growth_second_half"] = {
        "unit": "ratio",
        "split": "train",
        "description": "online embedding norm at the end / at mid-training",
    }
    spec["norm_growth_from_quarter"] = {
        "unit": "ratio",
        "split": "train",
        "description": "online embedding norm at the end / at a quarter of training "
        "(the window of the explosion rule, analysis.verdicts.explodes)",
    }
    return spec


def _mnist_metrics() -> dict[str, dict[str, str]]:
    """MNIST's own metrics: the probe and decoder scores and the embedding diagnostics."""
    spec: dict[str, dict[str, str]] = {}
    spec["probe_acc_train"] = {
        "unit": "accuracy (fraction)",
        "split": "train",
        "description": "linear probe on the left-half embedding, scored on its training images",
    }
    spec["probe_acc_heldout"] = {
        "unit": "accuracy (fraction)",
        "split": "held-out",
        "description": "the same probe on held-out images",
    }
    spec["decoder_mse_train"] = {
        "unit": "MSE of right-half pixels in [0, 1]",
        "split": "train",
        "description": "generative decoder from the left-half embedding, training images",
    }
    spec["decoder_mse_heldout"] = {
        "unit": "MSE of right-half pixels in [0, 1]",
        "split": "held-out",
        "description": "the same decoder on held-out images",
    }
    for k, (unit, split, text) in MNIST_DIAGNOSTICS.items():
        spec[k] = {"unit": unit, "split": split, "description": text}
    return spec


def _forecast_metrics(experiment: str) -> dict[str, dict[str, str]]:
    """A forecasting experiment's own metrics: the early loss and every probe protocol."""
    spec: dict[str, dict[str, str]] = {}
    spec["loss_early_total"] = {
        "unit": LOSS_UNIT,
        "split": "train",
        "description": "mean total loss over 20%-30% of training: steps 400-600 of the paper's 2000, its 'step 500' reading",
    }
    unit = EXPERIMENTS[experiment].unit
    for proto, text in PROTOCOLS.items():
        spec[f"{proto}_adam_probeset"] = {
            "unit": unit,
            "split": "probe set",
            "description": f"{text}; the paper's Adam probe scored on its own training data",
        }
        spec[f"{proto}_adam_heldout"] = {
            "unit": unit,
            "split": "held-out",
            "description": f"{text}; the paper's Adam probe scored on the held-out test set",
        }
        spec[f"{proto}_lstsq_heldout"] = {
            "unit": unit,
            "split": "held-out",
            "description": f"{text}; closed-form least squares fitted on the probe set, scored held-out",
        }
    return spec


BASELINE_TEXT = {
    "mean": "predict the probe set's mean of the first target step",
    "persistence": "next value = last context value",
    "linear_extrapolation": "next value = 2 * last - second to last context value",
    "lstsq_context": "least squares from the raw flattened context, fitted on the probe set",
    "ridge_context": "ridge regression (lambda = 1) from the raw flattened context, fitted on the probe set",
    "sinusoid_fit": "per-sequence least-squares fit of a sinusoid (w on a grid over [0.8, 1.2]) to the context, extrapolated",
    "noise_floor": "noise variance 0.05^2: the error of a forecaster that knows w and phi exactly",
    "raw_pixels_acc": "logistic regression (the same probe) on the raw left-half pixels",
    "raw_pixels_decoder_mse": "the same generative decoder on the raw left-half pixels",
    "random_encoder_acc": "the same probe on an untrained (random-init) conv encoder",
    "random_encoder_decoder_mse": "the same decoder on an untrained conv encoder",
    "supervised_acc": "the conv encoder + a linear head trained end to end on labelled left halves, for the JEPAs' number of steps",
    "mean_right_half_mse": "predict the mean training right half for every image",
    "chance_acc": "always predict the most frequent training class",
    "random_encoder_effective_rank": "effective rank of the untrained conv encoder's held-out embeddings",
    "random_encoder_embed_std_mean": "per-dimension std of the untrained conv encoder's held-out embeddings, mean over dimensions",
}


def _history_metrics(h: History) -> dict[str, float]:
    """The loss and norm summaries of ``pipeline.history_metrics`` that this schema records."""
    keep = (
        "loss_final_",
        "loss_last100_",
        "roughness_",
        "norm_final",
        "norm_growth_second_half",
        "norm_growth_from_quarter",
    )
    return {k: v for k, v in history_metrics(h).items() if k.startswith(keep)}


def _overrides(config: str, hyper: dict[str, float]) -> dict[str, float]:
    """``hyper`` (alpha, ema_momentum) for a table variant: classic JEPA keeps alpha = 1."""
    return {
        k: v
        for k, v in hyper.items()
        if not (k == "alpha" and VARIANTS[config].alpha == 1.0)
    }


def _train_seeds(
    experiment: str,
    config: str,
    seeds: list[int],
    num_steps: int,
    device: str,
    threads: int,
    data: dict[int, SeedData],
    hyper: dict[str, float] | None = None,
) -> tuple[list[JEPA | None], list[History | None], list[int | None]]:
    """Train table variant ``config`` for every seed as one batch (``pipeline.train_runs``);
    a diverging seed is recorded and the others finish. Returns models, histories and the
    divergence step per seed."""
    exp = EXPERIMENTS[experiment]
    over = _overrides(config, hyper or {})
    runs = [
        Run(
            VARIANTS[config].mode,
            exp.configs(
                config,
                num_steps=num_steps,
                device=device,
                num_threads=threads,
                progress=False,
                seed=s,
                **over,
            )[1],
            config,
        )
        for s in seeds
    ]
    trained = train_runs(exp, runs, data)
    return (
        [t.model for t in trained],
        [t.history for t in trained],
        [t.diverged_at for t in trained],
    )


def variant_chunk(fields: dict[str, Any]) -> dict[str, Any]:
    """Train one table variant over its seeds (one batch) and score every seed: the
    per-seed metrics and divergence steps. ``fields`` as made by ``_forecast_experiment``;
    runs in this process or in a Ray worker (``bijepa_nb.experiments.chunks``)."""
    torch.set_num_threads(fields["threads"])
    experiment, config, seeds = fields["experiment"], fields["config"], fields["seeds"]
    exp = EXPERIMENTS[experiment]
    data = {s: exp.seed_data(s) for s in seeds}
    spec = metric_spec(experiment)
    t0 = time.perf_counter()
    models, hists, div = _train_seeds(
        experiment,
        config,
        seeds,
        fields["num_steps"],
        fields["device"],
        fields["threads"],
        data,
        fields["hyper"],
    )
    per_seed: dict[str, list[float | None]] = {k: [] for k in spec}
    for s, m, h, d in zip(seeds, models, hists, div):
        row: dict[str, float | None] = {k: None for k in spec}
        if m is not None and h is not None and d is None:
            row.update(_history_metrics(h))
            row["loss_early_total"] = float(
                h.total[len(h) // 5 : 3 * len(h) // 10].mean()
            )
            for proto, sc in evaluate(
                m,
                data[s].probe,
                data[s].test,
                epochs=fields["probe_epochs"],
                seed=s,
            ).items():
                row.update({f"{proto}_{k}": v for k, v in sc.items()})
        for k in spec:
            per_seed[k].append(row[k])
    return _clean(
        {
            "diverged_at": div,
            "per_seed": per_seed,
            "seconds": time.perf_counter() - t0,
        }
    )


def _forecast_experiment(
    spec: ReproduceSpec,
    log: Callable[[str], None],
    cache_dir: Path | str | None = None,
    cluster: Cluster | None = None,
) -> dict[str, Any]:
    """Sine or Lorenz: one chunk per table variant (``variant_chunk``), then baselines."""
    chunks, settings = _variant_chunks(spec)
    results, info = run_chunks(
        variant_chunk,
        chunks,
        ChunkCache(cache_dir, log),
        cluster,
        cpus_per_chunk=spec.threads,
        gpus_per_chunk=1 if spec.device == "cuda" and cluster is not None else 0,
        log=log,
    )
    configs = _variant_configs(spec, chunks, results, settings, log)
    return {
        "metrics": metric_spec(spec.experiment),
        "configs": configs,
        "baselines": _forecast_baselines(spec.experiment, list(spec.seeds)),
        "settings": settings,
        "execution": info,
    }


def _variant_chunks(spec: ReproduceSpec) -> tuple[list[Chunk], dict[str, Any]]:
    """The chunks of a forecasting reproduction, one per table variant, and the JSON's
    ``settings`` (probe epochs, data, each variant's ModelConfig and TrainConfig)."""
    exp = EXPERIMENTS[spec.experiment]
    hyper = spec.hyper()
    probe_epochs = QUICK["probe_epochs"] if spec.quick else exp.probe_epochs
    settings: dict[str, Any] = {
        "probe_epochs": probe_epochs,
        "data": exp.data_config.to_dict(),
        "configs": {},
    }
    chunks = []
    for config in exp.table:
        mc, tc = exp.configs(
            config,
            device=spec.device,
            num_threads=spec.threads,
            progress=False,
            **({"num_steps": QUICK["num_steps"]} if spec.quick else {}),
            **_overrides(config, hyper),
        )
        settings["configs"][config] = {"model": mc.to_dict(), "train": tc.to_dict()}
        fields = {
            "kind": "reproduce",
            "experiment": spec.experiment,
            "config": config,
            "seeds": list(spec.seeds),
            "num_steps": tc.num_steps,
            "probe_epochs": probe_epochs,
            "device": spec.device,
            "threads": spec.threads,
            "hyper": dict(hyper),
            "code": code_version(),
            "torch": torch.__version__,
        }
        chunks.append(Chunk(fields, f"{spec.experiment} {config}"))
    return chunks, settings


def _variant_configs(
    spec: ReproduceSpec,
    chunks: list[Chunk],
    results: list[dict[str, Any]],
    settings: dict[str, Any],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The JSON's ``configs`` from the variants' chunk results; logs each variant."""
    configs: dict[str, Any] = {}
    for chunk, r in zip(chunks, results):
        config = chunk.fields["config"]
        configs[config] = {
            "label": LABELS[config],
            "mode": VARIANTS[config].mode,
            "alpha": settings["configs"][config]["train"]["alpha"],
            "diverged_at": r["diverged_at"],
            "per_seed": r["per_seed"],
        }
        b = [v for v in r["per_seed"]["B_adam_heldout"] if v is not None]
        log(
            f"{spec.experiment} {config:14s}: {len(spec.seeds)} seeds in {r['seconds']:.1f} s; held-out Protocol B (Adam) mean {np.mean(b) if b else float('nan'):.4f}"
        )
    return configs


def _forecast_baselines(experiment: str, seeds: list[int]) -> dict[str, Any]:
    """The JSON's ``baselines`` of a forecasting experiment, on each seed's held-out data."""
    exp = EXPERIMENTS[experiment]
    unit = metric_spec(experiment)["B_adam_heldout"]["unit"]
    sets = {s: (d.probe, d.test) for s, d in ((s, exp.seed_data(s)) for s in seeds)}
    base_rows = [forecast_baselines(*sets[s], experiment) for s in seeds]
    return {
        name: {
            "unit": unit,
            "split": "held-out" if name != "noise_floor" else "held-out (analytic)",
            "description": BASELINE_TEXT[name],
            "per_seed": [r[name] for r in base_rows],
        }
        for name in base_rows[0]
    }


#: MNIST settings. Tasks (one variant and seed, or one seed's baselines) run in
#: ``MNIST_WORKERS`` one-thread processes (``mnist_runs.run_tasks``); the step budget and
#: probe epochs come from the registry; ``MNIST_QUICK`` shrinks everything for smoke runs.
MNIST_WORKERS = 2
MNIST_QUICK = {
    "num_steps": 6,
    "probe_epochs": 2,
    "decoder_epochs": 2,
    "mnist_train": 512,
    "mnist_eval": 256,
    "checkpoints": (3,),
}
MNIST_DIAGNOSTICS = {
    "embed_std_mean_heldout": (
        "std of one embedding dimension, mean over the 64",
        "held-out",
        "per-dimension standard deviation of the left-half embeddings, averaged over dimensions",
    ),
    "embed_std_min_heldout": (
        "std of one embedding dimension, min over the 64",
        "held-out",
        "the least-varying dimension's standard deviation",
    ),
    "dead_dim_frac_heldout": (
        "fraction of dimensions",
        "held-out",
        "dimensions whose std is below 1% of the largest",
    ),
    "effective_rank_heldout": (
        "effective rank (1 to 64)",
        "held-out",
        "exp of the entropy of the normalised singular values of the centred embeddings (Roy & Vetterli 2007)",
    ),
}


_WORKER_MNIST: dict[str, MnistData] = {}


def _worker_mnist(key: dict[str, Any]) -> MnistData:
    """The driver's MNIST, loaded again on a Ray worker (its first ``n_train`` and
    ``n_eval`` images, as the quick mode cuts them) and checked against the driver's hash."""
    if key["sha256"] not in _WORKER_MNIST:
        full = load_mnist(MnistConfig())
        n, m = key["n_train"], key["n_eval"]
        mnist = MnistData(
            full.train_images[:n],
            full.train_labels[:n],
            full.eval_images[:m],
            full.eval_labels[:m],
            full.source,
        )
        got = mnist.key()
        if got != key:
            raise ValueError(
                f"the worker's MNIST ({got}) differs from the driver's ({key}): give "
                "every worker the same data (the same BIJEPA_DATA_DIR folder, or full "
                "MNIST in its download cache)"
            )
        _WORKER_MNIST[key["sha256"]] = mnist
    return _WORKER_MNIST[key["sha256"]]


def mnist_chunk(fields: dict[str, Any]) -> dict[str, Any]:
    """One MNIST task (a variant and seed, or a seed's baselines) on a Ray worker: the
    result of ``mnist_runs.run_task``, its History as plain lists (``_history_of``)."""

    torch.set_num_threads(fields["task"]["threads"])
    mnist = _worker_mnist(fields["data"])
    t = dict(fields["task"])
    for k in ("checkpoints", "probe_curve"):
        t[k] = tuple(t[k])
    t["hyper"] = tuple((str(a), float(b)) for a, b in t["hyper"])
    return _plain_result(run_task(MnistTask(**t), MnistSets.of(mnist)))


def _plain_result(r: dict[str, Any]) -> dict[str, Any]:
    """A task's result as JSON (its History as plain lists), as the cache stores it."""
    if "history" in r:
        h = r["history"]
        r["history"] = {k: getattr(h, k).tolist() for k in _HISTORY_ARRAYS}
        r["history"]["diverged_at"] = h.diverged_at
    return r


_HISTORY_ARRAYS = {
    "total": np.float64,
    "fwd": np.float64,
    "bwd": np.float64,
    "norm_steps": np.int64,
    "online_norm": np.float64,
    "target_norm": np.float64,
}


def _history_of(plain: dict[str, Any]) -> History:
    arrays = {k: np.asarray(plain[k], dtype=d) for k, d in _HISTORY_ARRAYS.items()}
    return History(**arrays, diverged_at=plain["diverged_at"])


@dataclasses.dataclass(frozen=True)
class _MnistBudget:
    """The run length of an MNIST reproduction (paper or quick) on one device type."""

    num_steps: int
    probe_epochs: int
    decoder_epochs: int
    checkpoints: tuple[int, ...]
    device: str
    workers: int

    @classmethod
    def of(cls, quick: bool, device: str) -> _MnistBudget:
        exp, q = EXPERIMENTS["mnist"], MNIST_QUICK
        num_steps = q["num_steps"] if quick else exp.train["num_steps"]
        every = q["checkpoints"] if quick else CHECKPOINTS
        dev = resolve_device(device)
        return cls(
            num_steps,
            q["probe_epochs"] if quick else exp.probe_epochs,
            q["decoder_epochs"] if quick else DECODER_EPOCHS,
            tuple(c for c in every if 0 < c < num_steps),
            dev.type,
            1 if dev.type != "cpu" else MNIST_WORKERS,
        )


def _mnist_experiment(
    spec: ReproduceSpec,
    log: Callable[[str], None],
    mnist: MnistData | None = None,
    cache_dir: Path | str | None = None,
    cluster: Cluster | None = None,
) -> dict[str, Any]:
    """MNIST: every (variant, seed) task and each seed's baselines task, in worker
    processes or as Ray tasks, then the configs, checkpoints and baselines."""
    mnist = _mnist_data(mnist, spec.quick)
    budget = _MnistBudget.of(spec.quick, spec.device)
    settings = _mnist_settings(budget, mnist, cluster)
    tasks = _mnist_tasks(budget, list(spec.seeds), spec.hyper())
    t0 = time.perf_counter()
    results, execution_info = _run_mnist_tasks(
        tasks, mnist, budget, log, cache_dir, cluster
    )
    by = {(r["variant"], r["seed"]): r for r in results}
    configs, checkpoint_block = _mnist_configs(by, list(spec.seeds), settings, log)
    settings["task_seconds"] = {
        f"{r['variant']}/{r['seed']}": round(
            r.get("seconds_train", r.get("seconds", 0.0))
            + r.get("seconds_probes", 0.0),
            1,
        )
        for r in results
    }
    settings["supervised_epochs"] = by[(BASELINES, spec.seeds[0])]["supervised_epochs"]
    baselines = _mnist_baselines(by, list(spec.seeds), mnist)
    log(
        f"mnist: {len(tasks)} tasks on "
        f"{f'{budget.workers} worker(s)' if cluster is None else 'Ray'} in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return {
        "metrics": metric_spec("mnist"),
        "configs": configs,
        "baselines": baselines,
        "settings": settings,
        "checkpoints": checkpoint_block,
        "mnist_source": mnist.source,
        "execution": execution_info,
    }


def _mnist_data(mnist: MnistData | None, quick: bool) -> MnistData:
    """The digits (``load_mnist`` by default), cut to ``MNIST_QUICK``'s sizes if ``quick``."""
    mnist = mnist if mnist is not None else load_mnist(MnistConfig())
    if not quick:
        return mnist
    n, m = MNIST_QUICK["mnist_train"], MNIST_QUICK["mnist_eval"]
    return MnistData(
        mnist.train_images[:n],
        mnist.train_labels[:n],
        mnist.eval_images[:m],
        mnist.eval_labels[:m],
        mnist.source,
    )


def _mnist_settings(
    budget: _MnistBudget, mnist: MnistData, cluster: Cluster | None
) -> dict[str, Any]:
    """The JSON's ``settings`` before any task ran (``configs`` filled in later)."""
    exp = EXPERIMENTS["mnist"]
    num_steps = budget.num_steps
    n_train, batch = len(mnist.train_labels), exp.train["batch_size"]
    steps_per_epoch = math.ceil(n_train / batch)
    return {
        "num_steps": num_steps,
        "batch_size": batch,
        "epochs_equivalent": round(num_steps / steps_per_epoch, 2),
        "budget": (
            f"the paper's optimisation budget: {num_steps} steps at batch {batch} (10 epochs of 60,000 images), "
            if num_steps == exp.train["num_steps"]
            else f"{num_steps} steps at batch {batch} (quick), "
        )
        + f"whatever the training-set size; here {n_train} training images, {num_steps / steps_per_epoch:.1f} epochs",
        "probe_epochs": budget.probe_epochs,
        "decoder_epochs": budget.decoder_epochs,
        "n_train": n_train,
        "n_eval": len(mnist.eval_labels),
        "checkpoints": [0, *budget.checkpoints, num_steps],
        "workers": budget.workers if cluster is None else "one Ray task per task",
        "threads_per_worker": 1,
        "configs": {},
    }


def _mnist_tasks(
    budget: _MnistBudget, seeds: list[int], hyper: dict[str, float]
) -> list[MnistTask]:
    """Every (table variant, seed) task, then one baselines task per seed."""
    table = EXPERIMENTS["mnist"].table
    hyper_items = {c: tuple(sorted(_overrides(c, hyper).items())) for c in table}
    b = budget
    tasks = [
        MnistTask(
            c,
            s,
            b.num_steps,
            b.probe_epochs,
            b.checkpoints,
            decoder_epochs=b.decoder_epochs,
            hyper=hyper_items[c],
            device=b.device,
        )
        for c in table
        for s in seeds
    ]
    tasks += [
        MnistTask(
            BASELINES,
            s,
            b.num_steps,
            b.probe_epochs,
            decoder_epochs=b.decoder_epochs,
            device=b.device,
        )
        for s in seeds
    ]
    return tasks


def _run_mnist_tasks(
    tasks: list[MnistTask],
    mnist: MnistData,
    budget: _MnistBudget,
    log: Callable[[str], None],
    cache_dir: Path | str | None,
    cluster: Cluster | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The tasks' results, in order, and the ``execution`` block: one cached chunk per
    task, run in local worker processes (``_run_mnist_here``) or with ``cluster`` as Ray
    tasks, each loading the same data on its worker."""
    data_key = mnist.key()
    chunks = [
        Chunk(
            {
                "kind": "mnist",
                "task": dataclasses.asdict(t),
                "data": data_key,
                "code": code_version(),
                "torch": torch.__version__,
            },
            f"mnist {t.variant} seed {t.seed}",
        )
        for t in tasks
    ]
    cache = ChunkCache(cache_dir, log)
    if cluster is None:
        results, execution_info = _run_mnist_here(
            tasks, chunks, mnist, budget.workers, cache, log
        )
    else:
        results, execution_info = run_chunks(
            mnist_chunk,
            chunks,
            cache,
            cluster,
            cpus_per_chunk=1,
            gpus_per_chunk=1 if budget.device == "cuda" else 0,
            log=log,
        )
    for r in results:
        if "history" in r:
            r["history"] = _history_of(r["history"])
    return results, execution_info


def _run_mnist_here(
    tasks: list[MnistTask],
    chunks: list[Chunk],
    mnist: MnistData,
    workers: int,
    cache: ChunkCache,
    log: Callable[[str], None],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The tasks on local worker processes (``run_tasks``), each result cached under its
    chunk's fields as soon as it finishes; tasks found in ``cache`` are not run again,
    so a rerun after Ctrl-C computes only the missing ones. Results are plain JSON."""
    results: list[dict[str, Any] | None] = [cache.get(c.fields) for c in chunks]
    todo = [i for i, r in enumerate(results) if r is None]
    where = f" ({cache.root})" if cache.root else ""
    log(
        f"{len(chunks)} MNIST tasks: {len(chunks) - len(todo)} from the cache{where}, "
        f"{len(todo)} to compute (in-process, {workers} worker(s))"
    )

    def done(j: int, r: dict[str, Any]) -> None:
        i = todo[j]
        results[i] = _plain_result(r)
        cache.put(chunks[i].fields, results[i])

    run_tasks([tasks[i] for i in todo], mnist, workers=workers, log=log, on_done=done)
    info = {
        "backend": "in-process",
        "chunks": len(chunks),
        "from_cache": len(chunks) - len(todo),
        "computed": len(todo),
    }
    return results, info  # type: ignore[return-value]


def _mnist_configs(
    by: dict[tuple[str, int], dict[str, Any]],
    seeds: list[int],
    settings: dict[str, Any],
    log: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON's ``configs`` and ``checkpoints`` from the tasks' results ``by`` (variant,
    seed); fills ``settings["configs"]`` and logs each variant's held-out accuracy."""
    spec = metric_spec("mnist")
    configs: dict[str, Any] = {}
    ck_out: dict[str, Any] = {}
    ck_keys = [k for k in spec if k.endswith("_heldout") or k.endswith("_train")]
    ck_keys = [k for k in ck_keys if not k.startswith(("loss_", "norm_"))]
    for config in EXPERIMENTS["mnist"].table:
        per_seed: dict[str, list[float | None]] = {k: [] for k in spec}
        ck: dict[str, list[list[float] | None]] = {k: [] for k in ck_keys}
        div: list[int | None] = []
        alpha = VARIANTS[config].alpha
        for s in seeds:
            r = by[(config, s)]
            row: dict[str, float | None] = {k: None for k in spec}
            div.append(r["diverged_at"])
            alpha = r["train_config"]["alpha"]
            settings["configs"][config] = {
                "model": r["model_config"],
                "train": r["train_config"],
            }
            if r["diverged_at"] is None:
                row.update(_history_metrics(r["history"]))
                row.update({k: v for k, v in r["final"].items() if k in spec})
            for k in spec:
                per_seed[k].append(row[k])
            step0 = by[(BASELINES, s)]["random_encoder"]  # step 0: this seed's init
            for k in ck_keys:
                ck[k].append(
                    [step0[k]] + r["checkpoints"][k]
                    if r["diverged_at"] is None
                    else None
                )
        configs[config] = {
            "label": LABELS[config],
            "mode": VARIANTS[config].mode,
            "alpha": alpha,
            "diverged_at": div,
            "per_seed": per_seed,
        }
        ck_out[config] = ck
        acc = [v for v in per_seed["probe_acc_heldout"] if v is not None]
        log(
            f"mnist {config:14s}: held-out probe accuracy mean {np.mean(acc) if acc else float('nan'):.4f} over {len(acc)} seeds"
        )
    checkpoint_block = {
        "steps": settings["checkpoints"],
        "metrics": ck_keys,
        "description": "per config, per metric: one list per seed of the value at each checkpoint step "
        "(step 0 is the random init; the last is the final model); null where a seed diverged",
        "configs": ck_out,
    }
    return configs, checkpoint_block


def _mnist_baselines(
    by: dict[tuple[str, int], dict[str, Any]], seeds: list[int], mnist: MnistData
) -> dict[str, Any]:
    """The JSON's ``baselines``: each seed's baselines task, the mean right half and chance."""
    right_tr, right_ev = (
        right_half_pixels(mnist.train_images),
        right_half_pixels(mnist.eval_images),
    )
    mean_mse = float(
        torch.mean((right_ev - right_tr.mean(0)) ** 2)
    )  # the same for every seed
    chance = chance_accuracy(mnist.train_labels, mnist.eval_labels)
    rows: dict[str, list[float]] = {}
    for s in seeds:
        vals = {
            **by[(BASELINES, s)]["values"],
            "mean_right_half_mse": mean_mse,
            "chance_acc": chance,
        }
        for k, v in vals.items():
            rows.setdefault(k, []).append(v)
    return {
        k: {
            "unit": _baseline_unit(k),
            "split": "held-out",
            "description": BASELINE_TEXT[k],
            "per_seed": v,
        }
        for k, v in rows.items()
    }


def _baseline_unit(k: str) -> str:
    if k.endswith("acc"):
        return "accuracy (fraction)"
    if k.endswith("mse"):
        return "MSE of right-half pixels in [0, 1]"
    return MNIST_DIAGNOSTICS[k.replace("random_encoder_", "") + "_heldout"][0]


def _clean(x: Any, digits: int | None = None) -> Any:
    """NaN -> None (strict JSON), numpy scalars and arrays -> Python; floats rounded to
    ``digits`` significant digits when given (for compact files)."""
    if isinstance(x, dict):
        return {k: _clean(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v, digits) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist(), digits)
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(float(x)):
            return None
        return float(f"{float(x):.{digits}g}") if digits else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def check_metrics(metrics: dict[str, Any], need: Callable[[bool, str], None]) -> None:
    """Every described metric has a unit and one of SPLITS (shared by the reproduce and sweep schemas)."""
    need(bool(metrics), "metrics must describe at least one key")
    for k, m in metrics.items():
        need(
            isinstance(m.get("unit"), str) and m["unit"] != "",
            f"metrics[{k!r}] needs a unit",
        )
        need(m.get("split") in SPLITS, f"metrics[{k!r}].split must be one of {SPLITS}")


@dataclasses.dataclass(frozen=True)
class ReproduceSpec:
    """A reproduction: the experiment's paper table over ``seeds``, how it runs, and
    the hyper-parameters it changes. ``quick``: a smoke run (``QUICK``, ``MNIST_QUICK``);
    ``alpha`` replaces the paper's 0.5 of the BiJEPA variants (classic JEPA keeps 1);
    ``ema_momentum`` replaces the paper's EMA momentum of every variant."""

    experiment: str
    seeds: Sequence[int]
    quick: bool = False
    device: str = "auto"
    threads: int = 2
    alpha: float | None = None
    ema_momentum: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seeds, (list, tuple)):  # other types: ``check`` names them
            object.__setattr__(self, "seeds", tuple(self.seeds))

    def hyper(self) -> dict[str, float]:
        """The hyper-parameters that replace the paper's (checked)."""
        hyper: dict[str, float] = {}
        if self.alpha is not None:
            check_float("alpha", self.alpha, 0.0, 1.0)
            hyper["alpha"] = float(self.alpha)
        if self.ema_momentum is not None:
            check_float("ema_momentum", self.ema_momentum, 0.0, 1.0)
            hyper["ema_momentum"] = float(self.ema_momentum)
        return hyper

    def check(self) -> None:
        """Raise ValueError naming the first field out of range."""
        self.hyper()
        check_choice("experiment", self.experiment, tuple(EXPERIMENTS))
        seeds = self.seeds
        if not isinstance(seeds, (list, tuple)) or not seeds:
            raise ValueError(
                f"seeds must be a non-empty list of integers, got {seeds!r}"
            )
        for s in seeds:
            check_int("seeds[...]", s, 0)
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must not repeat, got {list(seeds)}")
        check_int("threads", self.threads, 1)

    def identity(self) -> dict[str, Any]:
        """What an existing output file must share with these results (``IDENTITY``)."""
        return identity(self.experiment, list(self.seeds), self.quick)


def reproduce(
    spec: ReproduceSpec,
    log: Callable[[str], None] = print,
    mnist: MnistData | None = None,
    cache_dir: Path | str | None = None,
    cluster: Cluster | None = None,
) -> dict[str, Any]:
    """Run the reproduction ``spec``; returns the JSON-ready dict (see the module docstring).

    Sine and Lorenz run one chunk per table variant (``variant_chunk``): ``cache_dir``
    keeps finished chunks and reuses them, ``cluster`` (``chunks.connect``) runs them as
    Ray tasks. MNIST runs its (variant, seed) tasks in local worker processes
    (``mnist_runs``), or with ``cluster`` one Ray task (and cached chunk) per task, each
    worker loading the same data (checked by a hash); ``mnist``: the digits to use
    (default ``load_mnist``).
    """
    spec.check()
    dev = resolve_device(spec.device)
    t0 = time.perf_counter()
    if EXPERIMENTS[spec.experiment].kind == "halves":
        body = _mnist_experiment(spec, log, mnist, cache_dir, cluster)
    else:
        body = _forecast_experiment(spec, log, cache_dir, cluster)
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(dev),
        "threads": spec.threads,
    }
    if "mnist_source" in body:
        env["mnist_source"] = body.pop("mnist_source")
    out = {
        "schema": SCHEMA_VERSION,
        "experiment": spec.experiment,
        "seeds": list(spec.seeds),
        "quick": spec.quick,
        "command": "python -m bijepa_nb.reproduce " + " ".join(sys.argv[1:])
        if sys.argv and sys.argv[0].endswith("reproduce.py")
        else "bijepa_nb.experiments.reproduce.reproduce()",
        "seconds": round(time.perf_counter() - t0, 1),
        "environment": env,
        "paper": PAPER[spec.experiment],
        **body,
    }
    out = _clean(out)
    validate(out)
    return out


def validate(result: dict[str, Any]) -> None:
    """Raise ValueError naming the first field that does not follow the schema."""

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(f"reproduce JSON: {what}")

    need(result.get("schema") == SCHEMA_VERSION, f"schema must be {SCHEMA_VERSION!r}")
    need(
        result.get("experiment") in EXPERIMENTS,
        f"experiment must be one of {tuple(EXPERIMENTS)}",
    )
    seeds = result.get("seeds")
    need(isinstance(seeds, list) and len(seeds) > 0, "seeds must be a non-empty list")
    n = len(seeds)  # type: ignore[arg-type]
    metrics = result.get("metrics", {})
    check_metrics(metrics, need)
    need(
        set(result.get("configs", {})) == set(EXPERIMENTS[result["experiment"]].table),
        "configs must hold exactly the paper table's configurations",
    )
    for name, c in result["configs"].items():
        need(
            len(c.get("diverged_at", [])) == n,
            f"configs[{name!r}].diverged_at needs one entry per seed",
        )
        need(
            set(c.get("per_seed", {})) == set(metrics),
            f"configs[{name!r}].per_seed must hold exactly the described metrics",
        )
        for k, v in c["per_seed"].items():
            need(
                isinstance(v, list) and len(v) == n,
                f"configs[{name!r}].per_seed[{k!r}] needs one value per seed",
            )
            need(
                all(x is None or isinstance(x, (int, float)) for x in v),
                f"configs[{name!r}].per_seed[{k!r}] holds numbers or null",
            )
    for name, b in result.get("baselines", {}).items():
        need(
            isinstance(b.get("unit"), str) and b["unit"] != "",
            f"baselines[{name!r}] needs a unit",
        )
        need(
            str(b.get("split", "")).startswith("held-out"),
            f"baselines[{name!r}] must be scored held-out",
        )
        need(
            isinstance(b.get("per_seed"), list) and len(b["per_seed"]) == n,
            f"baselines[{name!r}].per_seed needs one value per seed",
        )
