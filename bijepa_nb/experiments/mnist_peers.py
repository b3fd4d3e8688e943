"""BiJEPA among its peers on MNIST halves: the objectives of ``peers`` on the conv JEPA.

(command line: ``python -m bijepa_nb.peers mnist``)

The sine and Lorenz studies (``peers``) train every objective as one batched ensemble;
the MNIST conv encoder is trained one seed at a time (``conv_ensemble`` shows that
batching convolutions does not pay on a CPU), so here one chunk is one (objective,
seed): ``PeerJEPA`` is the paper's conv JEPA whose step is ``peers.peer_loss``, the
same loss the ensembles use, on the left half (context) and right half (target) of
each digit. Every run is scored like chapter 6's: the linear probe's held-out accuracy
(``probe_epochs`` of the registry), the generative decoder's held-out MSE of the right
half, and the health of the frozen encoder (effective rank, per-dimension std, norm
growth). Baselines of the same seeds: the probe on the raw left-half pixels and on
the untrained encoder (every JEPA's step 0).

Budget: ``MNIST_STEPS`` (700) optimiser steps, as chapter 12's MNIST study (the
paper's 2,350 cost 3.4 times as much; chapter 6 shows what the longer budget does to
classic JEPA and BiJEPA). Chunks are cached like the sweep's, so a rerun after Ctrl-C
computes only what is missing; ``--ray`` runs them on both cores.

JSON schema (``SCHEMA_VERSION``; ``validate``): ``schema``, ``experiment`` ("mnist"),
``quick``, ``command``, ``seconds``, ``environment``, ``execution``, ``settings``,
``seeds``, ``objectives`` ({name: {label, family, equation, citation, ema_target}}),
``metrics`` ({key: {unit, split, description}}), ``results`` ({objective:
{"diverged_at": [...], "per_seed": {metric: [...]}, "seconds": [...]}}) and
``baselines`` ({name: {unit, split, description, per_seed}}).
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.config import (
    ModelConfig,
    TrainConfig,
    check_choice,
    check_int,
    resolve_device,
)
from ..core.data import EpochStream, stream_seed
from ..core.models import JEPA, build_model, seeded
from ..core.training import TrainingDiverged, train
from .chunks import Chunk, ChunkCache, Cluster, code_version, run_chunks
from .mnist import MnistData, batched_encode, classification_probe, load_mnist
from .mnist_runs import MnistSets, feature_scores
from .peers import OBJECTIVES, objective, peer_loss
from .pipeline import history_metrics
from .regimes import MNIST_SETS, MNIST_STEPS, cut_mnist, mnist_sets_for
from .registry import EXPERIMENTS

SCHEMA_VERSION = "bijepa-peers-mnist/1"
IDENTITY = ("schema", "experiment", "quick", "seeds")
#: The objectives trained on MNIST: every one of ``peers.OBJECTIVES`` but the two
#: controls that need the batched sine/Lorenz machinery (the 2x batch and the
#: lr x tau search), which cost more conv runs than this machine has time for.
MNIST_OBJECTIVES = (
    "classic",
    "bijepa",
    "vicreg",
    "sigreg",
    "pixel",
    "autoencoder",
    "infonce",
    "swapped",
)
QUICK = {"num_steps": 6, "seeds": 2, "n_train": 1500, "n_eval": 256, "probe_epochs": 5}
#: Per-seed metrics of every run (``metrics`` in the JSON).
METRICS = {
    "probe_acc_heldout": (
        "accuracy (fraction)",
        "held-out",
        "linear probe on the frozen f(x) (chapter 6's probe)",
    ),
    "probe_err_heldout": (
        "error rate (fraction)",
        "held-out",
        "1 - probe_acc_heldout: the quantity the comparisons are judged on",
    ),
    "decoder_mse_heldout": (
        "MSE of right-half pixels in [0, 1]",
        "held-out",
        "the generative decoder from f(x) to the right half (chapter 6's)",
    ),
    "effective_rank_heldout": (
        "effective rank (1 to embed_dim)",
        "held-out",
        "exp of the entropy of the normalised singular values of centred f(x)",
    ),
    "embed_std_mean_heldout": (
        "std of one embedding dimension",
        "held-out",
        "per-dimension std of f(x), mean over dimensions",
    ),
    "embed_std_min_heldout": (
        "std of one embedding dimension",
        "held-out",
        "the least-varying dimension's std",
    ),
    "norm_growth_second_half": (
        "ratio",
        "train",
        "mean norm of f(x) at the end / at mid-training",
    ),
    "loss_last100_fwd": (
        "the objective's own unit",
        "train",
        "main term, mean of the last 100 steps",
    ),
}


class PeerJEPA(JEPA):
    """The paper's JEPA (one model, the MNIST conv encoder) trained with one objective
    of ``peers.OBJECTIVES``: its step is ``peers.peer_loss`` (the batched ensembles'
    loss, lifted to one member). ``seed`` seeds the objective's own randomness and
    the linear head of the generative objectives; ``out_dim`` is the flattened half
    image that head predicts."""

    size = 1

    def __init__(
        self,
        cfg: ModelConfig,
        alpha: float,
        objective_name: str = "classic",
        seed: int = 0,
        out_dim: int | None = None,
    ):
        super().__init__(cfg, alpha)
        obj = objective(objective_name)
        if obj.alpha != self.alpha:
            raise ValueError(f"objective {obj.name!r} needs alpha = {obj.alpha}")
        self.objective = obj
        self.generator = torch.Generator().manual_seed(stream_seed(seed, "extra"))
        self.head: nn.Module | None = None
        if obj.head is not None:
            check_int("out_dim", out_dim, 1)
            with seeded(stream_seed(seed, "model")):
                self.head = nn.Linear(cfg.embed_dim, out_dim)

    def trainable_parameters(self) -> list[nn.Parameter]:
        extra = [] if self.head is None else list(self.head.parameters())
        return super().trainable_parameters() + extra

    @torch.no_grad()
    def ema_update(self, ema_momentum: float | torch.Tensor) -> None:
        if self.objective.ema_target:  # no target encoder in the other objectives
            super().ema_update(ema_momentum)

    def _draw(self, *shape: int) -> torch.Tensor:
        # drawn on the CPU (one stream everywhere), then in the parameters' dtype and device
        return torch.randn(*shape, generator=self.generator).to(next(self.parameters()))

    def _loss(self, context, target, return_embeddings=False):
        return peer_loss(self, context, target, return_embeddings, batched=False)


@dataclass(frozen=True)
class MnistPeersSpec:
    """An MNIST peers study: objectives, seeds, budget, and how it runs. ``None``
    fields take ``MNIST_STEPS`` and the registry's probe epochs (``QUICK`` with
    ``quick``)."""

    objectives: Sequence[str] = MNIST_OBJECTIVES
    seeds: Sequence[int] = tuple(range(5))
    num_steps: int | None = None
    probe_epochs: int | None = None
    quick: bool = False
    device: str = "auto"
    threads: int = 1

    def resolved(self) -> MnistPeersSpec:
        """This spec checked (ValueError naming the parameter and the allowed values)
        with every default filled in."""
        if not self.objectives:
            raise ValueError(f"objectives must name at least one of {MNIST_OBJECTIVES}")
        for name in self.objectives:
            check_choice("objective", name, MNIST_OBJECTIVES)
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(
                f"seeds must be >= 2 distinct seeds (intervals need two), got {list(self.seeds)}"
            )
        for s in self.seeds:
            check_int("seeds[...]", s, 0)
        steps = self.num_steps
        if steps is None:
            steps = QUICK["num_steps"] if self.quick else MNIST_STEPS
        epochs = self.probe_epochs
        if epochs is None:
            epochs = (
                QUICK["probe_epochs"]
                if self.quick
                else EXPERIMENTS["mnist"].probe_epochs
            )
        check_int("num_steps", steps, 1, 100_000)
        check_int("probe_epochs", epochs, 1, 10_000)
        check_int("threads", self.threads, 1, 64)
        resolve_device(self.device)
        return MnistPeersSpec(
            tuple(dict.fromkeys(self.objectives)),
            tuple(self.seeds),
            steps,
            epochs,
            self.quick,
            self.device,
            self.threads,
        )

    def identity(self) -> dict[str, Any]:
        """What an existing output file must share with this study's results."""
        return {
            "schema": SCHEMA_VERSION,
            "experiment": "mnist",
            "quick": self.quick,
            "seeds": [int(s) for s in self.seeds],
        }


def _configs(
    name: str, seed: int, fields: dict[str, Any]
) -> tuple[ModelConfig, TrainConfig]:
    exp = EXPERIMENTS["mnist"]
    return exp.configs(
        "expressive",
        alpha=objective(name).alpha,
        seed=seed,
        num_steps=fields["num_steps"],
        device=fields["device"],
        num_threads=fields["threads"],
        progress=False,
    )


def mnist_peer_chunk(fields: dict[str, Any]) -> dict[str, Any]:
    """Train one (objective, seed) and score its frozen encoder, or (objective
    "baselines") score the raw pixels and the untrained encoder of that seed. Runs in
    this process or in a Ray worker; depends only on ``fields`` and the hardware."""
    torch.set_num_threads(fields["threads"])
    t0 = time.perf_counter()
    sets = mnist_sets_for(fields["data"])
    dev = resolve_device(fields["device"])
    if dev.type != "cpu":
        sets = sets.to(dev)
    name, seed = fields["objective"], fields["seed"]
    epochs = fields["probe_epochs"]
    if name == "baselines":
        mc, tc = _configs("classic", seed, fields)
        rand = build_model(mc, tc, dev)  # every JEPA's step 0
        raw = classification_probe(
            sets.train.context.flatten(1),
            sets.train.labels,
            sets.eval.context.flatten(1),
            sets.eval.labels,
            epochs=epochs,
            seed=seed,
        )
        untrained = classification_probe(
            batched_encode(rand, sets.train.context),
            sets.train.labels,
            batched_encode(rand, sets.eval.context),
            sets.eval.labels,
            epochs=epochs,
            seed=seed,
        )
        return {
            "raw_pixels": 1.0 - raw["eval_acc"],
            "random_encoder": 1.0 - untrained["eval_acc"],
            "seconds": time.perf_counter() - t0,
        }
    mc, tc = _configs(name, seed, fields)
    out_dim = mc.input_dim
    model = build_model(
        mc, tc, dev, cls=PeerJEPA, objective_name=name, seed=seed, out_dim=out_dim
    )
    try:
        hist = train(model, EpochStream(sets.train, seed, tc.batch_size, dev), tc)
    except TrainingDiverged as err:
        return {
            "diverged_at": err.step,
            "metrics": None,
            "seconds": time.perf_counter() - t0,
        }
    scores = feature_scores(
        batched_encode(model, sets.train.context),
        batched_encode(model, sets.eval.context),
        sets,
        epochs,
        seed,
    )
    scores["probe_err_heldout"] = 1.0 - scores["probe_acc_heldout"]
    hm = history_metrics(hist)
    metrics = {k: float(scores[k] if k in scores else hm[k]) for k in METRICS}
    return {
        "diverged_at": None,
        "metrics": metrics,
        "seconds": time.perf_counter() - t0,
    }


def _chunks(spec: MnistPeersSpec, key: dict[str, Any]) -> list[Chunk]:
    common = {
        "kind": "peers-mnist",
        "num_steps": spec.num_steps,
        "probe_epochs": spec.probe_epochs,
        "data": key,
        "device": spec.device,
        "threads": spec.threads,
        "code": code_version(),
        "torch": torch.__version__,
    }
    out = []
    for name in (*spec.objectives, "baselines"):
        for s in spec.seeds:
            out.append(
                Chunk(
                    {**common, "objective": name, "seed": s}, f"mnist {name} seed {s}"
                )
            )
    return out


def mnist_peers(
    spec: MnistPeersSpec,
    log: Callable[[str], None] = print,
    cache_dir: Path | str | None = None,
    cluster: Cluster | None = None,
    mnist: MnistData | None = None,
) -> dict[str, Any]:
    """Run the study ``spec`` (``mnist``: the digits, default ``load_mnist``; cut to
    ``QUICK``'s sizes in quick mode); returns the JSON-ready dict.

    Why so long: the chunks, then the assembly of the JSON (results, baselines,
    settings), in the order of the schema.
    """
    spec = spec.resolved()
    t0 = time.perf_counter()
    mnist = mnist if mnist is not None else load_mnist()
    if spec.quick:
        mnist = cut_mnist(mnist, QUICK["n_train"], QUICK["n_eval"])
    key = mnist.key()
    MNIST_SETS.setdefault(key["sha256"], MnistSets.of(mnist))
    chunks = _chunks(spec, key)
    results, info = run_chunks(
        mnist_peer_chunk,
        chunks,
        ChunkCache(cache_dir, log),
        cluster,
        spec.threads,
        log=log,
    )
    n = len(spec.seeds)
    by = [results[i * n : (i + 1) * n] for i in range(len(spec.objectives) + 1)]
    res_json = {}
    for name, runs in zip(spec.objectives, by):
        res_json[name] = {
            "diverged_at": [r["diverged_at"] for r in runs],
            "per_seed": {
                k: [None if r["metrics"] is None else r["metrics"][k] for r in runs]
                for k in METRICS
            },
            "seconds": [round(r["seconds"], 1) for r in runs],
        }
    unit, split = "error rate (fraction)", "held-out"
    baselines = {
        "raw_pixels": {
            "unit": unit,
            "split": split,
            "description": "the same linear probe on the raw left-half pixels",
            "per_seed": [r["raw_pixels"] for r in by[-1]],
        },
        "random_encoder": {
            "unit": unit,
            "split": split,
            "description": "the same probe on the untrained conv encoder of the seed",
            "per_seed": [r["random_encoder"] for r in by[-1]],
        },
    }
    mc, tc = _configs("classic", spec.seeds[0], {**chunks[0].fields})
    out = {
        "schema": SCHEMA_VERSION,
        "experiment": "mnist",
        "quick": spec.quick,
        "command": "python -m bijepa_nb.peers " + " ".join(sys.argv[1:])
        if sys.argv and sys.argv[0].endswith("peers.py")
        else "bijepa_nb.experiments.mnist_peers.mnist_peers()",
        "seconds": round(time.perf_counter() - t0, 1),
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": resolve_device(spec.device).type,
            "threads": spec.threads,
            "mnist_source": key["source"],
        },
        "execution": info,
        "settings": {
            "model": mc.to_dict(),
            "train": {
                k: v for k, v in tc.to_dict().items() if k not in ("alpha", "seed")
            },
            "probe_epochs": spec.probe_epochs,
            "n_train": int(mnist.train_images.shape[0]),
            "n_eval": int(mnist.eval_images.shape[0]),
        },
        "seeds": list(spec.seeds),
        "objectives": {
            n: {
                "label": OBJECTIVES[n].label,
                "family": OBJECTIVES[n].family,
                "equation": OBJECTIVES[n].equation,
                "citation": OBJECTIVES[n].citation,
                "ema_target": OBJECTIVES[n].ema_target,
            }
            for n in spec.objectives
        },
        "metrics": {
            k: {"unit": u, "split": s, "description": d}
            for k, (u, s, d) in METRICS.items()
        },
        "results": res_json,
        "baselines": baselines,
    }
    validate(out)
    return out


def validate(result: dict[str, Any]) -> None:
    """Raise ValueError naming the first field that does not follow the schema."""

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(f"MNIST peers JSON: {what}")

    need(result.get("schema") == SCHEMA_VERSION, f"schema must be {SCHEMA_VERSION!r}")
    need(result.get("experiment") == "mnist", "experiment must be 'mnist'")
    need(isinstance(result.get("quick"), bool), "quick must be a bool")
    seeds = result.get("seeds")
    need(isinstance(seeds, list) and len(seeds) >= 2, "seeds must list >= 2 seeds")
    n = len(seeds)
    need(
        set(result.get("metrics", {})) == set(METRICS),
        f"metrics must be {sorted(METRICS)}",
    )
    res = result.get("results", {})
    need(
        bool(res) and set(res) <= set(MNIST_OBJECTIVES),
        f"results must hold objectives among {MNIST_OBJECTIVES}",
    )
    need(
        set(result.get("objectives", {})) == set(res),
        "objectives must describe the results",
    )
    for name, r in res.items():
        need(
            len(r.get("diverged_at", [])) == n,
            f"results[{name!r}].diverged_at: one per seed",
        )
        need(
            set(r.get("per_seed", {})) == set(METRICS),
            f"results[{name!r}].per_seed: every metric",
        )
        for k, v in r["per_seed"].items():
            need(
                len(v) == n
                and all(x is None or isinstance(x, (int, float)) for x in v),
                f"results[{name!r}].per_seed[{k!r}] needs one number or null per seed",
            )
    for name in ("raw_pixels", "random_encoder"):
        b = result.get("baselines", {}).get(name, {})
        need(
            len(b.get("per_seed", [])) == n,
            f"baselines[{name!r}].per_seed: one per seed",
        )
