"""MNIST runs at the paper's step budget: checkpoints, diagnostics, seeds in parallel.

The paper trains its conv encoder for 10 epochs of 60,000 images at batch 256: 2,350
optimiser steps. Offline, with 8,000 training images, "10 epochs" would be 320 steps;
the registry (``paper.EXPERIMENTS["mnist"].train["num_steps"]``) keeps the paper's
*step* budget instead, whatever the data size.

One task trains one (variant, seed) and scores it at checkpoints along the way:

    task = MnistTask("expressive", seed=0, num_steps=2350, probe_epochs=100, checkpoints=(320, 700, 1400))
    out = run_tasks([task], mnist, workers=2)[0]
    out["final"]["probe_acc_heldout"], out["checkpoints"]["effective_rank_heldout"]

``run_tasks`` spreads tasks over worker processes, each at one CPU thread (on this
2-core machine two one-thread processes beat one two-thread process, and results do
not depend on the number of workers). Baseline tasks (``variant="baselines"``) score
raw pixels, a random encoder and the supervised encoder for one seed.
"""

from __future__ import annotations

import copy
import math
import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from ..core.config import TrainConfig, check_int
from ..core.data import EpochStream, Split
from ..core.models import JEPA, build_model
from ..core.training import TrainingDiverged, train
from .baselines import supervised_baseline
from .mnist import (
    MnistData,
    batched_encode,
    classification_probe,
    decoder_probe,
    mnist_split,
    right_half_pixels,
)
from .registry import EXPERIMENTS

#: Steps at which an MNIST run is scored besides its last step. Step 0 (the random init)
#: is the random-encoder baseline of the same seed: identical encoder and probes, so the
#: reproduction takes it from the baseline task instead of computing it twice.
CHECKPOINTS = (320, 700, 1400)
#: Epochs of the generative decoder: near the lowest validation MSE of chapter 6 (it
#: overfits 8,000 images at longer budgets); the classification probe uses the
#: registry's probe_epochs.
DECODER_EPOCHS = 10
BASELINES = "baselines"


# ------------------------------------------------------------------ diagnostics
def effective_rank(features: torch.Tensor) -> float:
    """Effective rank of embeddings [N, D] (Roy & Vetterli 2007): exp of the entropy of the
    normalised singular values of the centred features; between 1 and D."""
    x = features.detach().double()
    s = torch.linalg.svdvals(x - x.mean(0))
    if float(s.sum()) == 0.0:
        return 1.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def embedding_diagnostics(features: torch.Tensor) -> dict[str, float]:
    """Per-dimension standard deviation (mean and minimum over the D dimensions), the share
    of near-constant dimensions (std below 1% of the largest) and the effective rank of
    embeddings [N, D]."""
    std = features.detach().double().std(0)
    return {
        "embed_std_mean": float(std.mean()),
        "embed_std_min": float(std.min()),
        "dead_dim_frac": float((std < 0.01 * std.max()).double().mean()),
        "effective_rank": effective_rank(features),
    }


# --------------------------------------------------------------------- data sets
@dataclass
class MnistSets:
    """Normalised halves, labels and right-half pixels of one MnistData, built once."""

    train: Split
    eval: Split
    right_train: torch.Tensor  # [N, 1, 28, 14] in [0, 1]
    right_eval: torch.Tensor

    def to(self, device: torch.device | str) -> MnistSets:
        return MnistSets(
            self.train.to(device),
            self.eval.to(device),
            self.right_train.to(device),
            self.right_eval.to(device),
        )

    @classmethod
    def of(cls, mnist: MnistData) -> MnistSets:
        return cls(
            mnist_split(mnist.train_images, mnist.train_labels),
            mnist_split(mnist.eval_images, mnist.eval_labels),
            right_half_pixels(mnist.train_images),
            right_half_pixels(mnist.eval_images),
        )


def feature_scores(
    f_tr: torch.Tensor,
    f_ev: torch.Tensor,
    sets: MnistSets,
    probe_epochs: int,
    seed: int,
    decoder: bool = True,
    decoder_epochs: int = DECODER_EPOCHS,
    keep: dict | None = None,
) -> dict[str, float]:
    """Linear-probe accuracy (``probe_epochs``), decoder MSE (``decoder``, ``decoder_epochs``)
    and diagnostics of frozen features f_tr [N_train, D], f_ev [N_eval, D]; keys
    ``*_train`` / ``*_heldout``. ``keep`` (a dict) receives the trained decoder."""
    acc = classification_probe(
        f_tr, sets.train.labels, f_ev, sets.eval.labels, epochs=probe_epochs, seed=seed
    )  # type: ignore[arg-type]
    out = {"probe_acc_train": acc["train_acc"], "probe_acc_heldout": acc["eval_acc"]}
    if decoder:
        dec, mse = decoder_probe(
            f_tr,
            sets.right_train,
            f_ev,
            sets.right_eval,
            epochs=decoder_epochs,
            seed=seed,
        )
        if keep is not None:
            keep["decoder"] = dec
        out.update(
            decoder_mse_train=mse["train_mse"], decoder_mse_heldout=mse["eval_mse"]
        )
    out.update({f"{k}_heldout": v for k, v in embedding_diagnostics(f_ev).items()})
    return out


def encoder_scores(
    model: JEPA,
    sets: MnistSets,
    probe_epochs: int,
    seed: int,
    decoder: bool = True,
    decoder_epochs: int = DECODER_EPOCHS,
) -> dict[str, float]:
    """``feature_scores`` of the frozen online encoder of ``model`` (eval mode)."""
    return feature_scores(
        batched_encode(model, sets.train.context),
        batched_encode(model, sets.eval.context),
        sets,
        probe_epochs,
        seed,
        decoder,
        decoder_epochs,
    )


class CheckpointStream:
    """Wraps a batch stream and snapshots ``model``'s online encoder (weights and BatchNorm
    statistics) just before the batches of the given steps: the snapshot for step s holds
    the encoder after s optimiser steps (s = 0: the random init)."""

    def __init__(self, stream: Any, model: JEPA, steps: Sequence[int]):
        self.stream, self.model, self.steps = stream, model, set(steps)
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        self._n = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._n in self.steps:
            self.snapshots[self._n] = copy.deepcopy(
                self.model.online_encoder.state_dict()
            )
        self._n += 1
        return self.stream.next()


# -------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class MnistTask:
    """One unit of work: a table variant trained for ``num_steps`` (scored at
    ``checkpoints`` < num_steps and at the end), or ``variant="baselines"`` for one seed."""

    variant: str
    seed: int
    num_steps: int
    probe_epochs: int
    checkpoints: tuple[int, ...] = CHECKPOINTS
    checkpoint_decoder: bool = (
        True  # decoder MSE at checkpoints too (the costliest probe)
    )
    decoder_epochs: int = DECODER_EPOCHS
    hyper: tuple[
        tuple[str, float], ...
    ] = ()  # TrainConfig overrides (alpha, ema_momentum)
    device: str = "cpu"
    threads: int = 1
    keep_model: bool = (
        False  # return the trained model and decoder (the chapter's figure)
    )
    probe_curve: tuple[
        int, ...
    ] = ()  # probe epochs at which to record the final model's probes


def _run_variant(task: MnistTask, sets: MnistSets) -> dict[str, Any]:
    exp = EXPERIMENTS["mnist"]
    mc, tc = exp.configs(
        task.variant,
        seed=task.seed,
        num_steps=task.num_steps,
        device=task.device,
        num_threads=task.threads,
        progress=False,
        **dict(task.hyper),
    )
    dev = torch.device(task.device)
    model = build_model(mc, tc, dev)
    steps = [s for s in task.checkpoints if s < task.num_steps]
    stream = CheckpointStream(
        EpochStream(sets.train, task.seed, tc.batch_size, dev), model, steps
    )
    out: dict[str, Any] = {
        "variant": task.variant,
        "seed": task.seed,
        "model_config": mc.to_dict(),
        "train_config": tc.to_dict(),
        "diverged_at": None,
        "checkpoint_steps": steps + [task.num_steps],
    }
    t0 = time.perf_counter()
    try:
        hist = train(model, stream, tc)
    except TrainingDiverged as err:
        out.update(
            diverged_at=err.step,
            history=err.history,
            seconds_train=time.perf_counter() - t0,
        )
        return out
    out["seconds_train"] = time.perf_counter() - t0
    out["history"] = hist
    t0 = time.perf_counter()
    final = copy.deepcopy(model.online_encoder.state_dict())
    ck: dict[str, list[float]] = {}
    for s in steps:
        model.online_encoder.load_state_dict(stream.snapshots[s])
        for k, v in encoder_scores(
            model,
            sets,
            task.probe_epochs,
            task.seed,
            task.checkpoint_decoder,
            task.decoder_epochs,
        ).items():
            ck.setdefault(k, []).append(v)
    model.online_encoder.load_state_dict(final)
    f_tr, f_ev = (
        batched_encode(model, sets.train.context),
        batched_encode(model, sets.eval.context),
    )
    kept: dict[str, Any] = {}
    scores = feature_scores(
        f_tr, f_ev, sets, task.probe_epochs, task.seed, True, task.decoder_epochs, kept
    )
    for k, v in scores.items():
        ck.setdefault(k, []).append(v)
    out.update(final=scores, checkpoints=ck, seconds_probes=time.perf_counter() - t0)
    if task.keep_model:
        out.update(model=model, decoder=kept["decoder"])
    if task.probe_curve:
        out["probe_curve"] = probe_curves(f_tr, f_ev, sets, task.probe_curve, task.seed)
    return out


def probe_curves(
    f_tr: torch.Tensor,
    f_ev: torch.Tensor,
    sets: MnistSets,
    epochs: Sequence[int],
    seed: int,
    decoder_max: int = 3 * DECODER_EPOCHS,
) -> dict[str, dict[int, float]]:
    """Held-out probe accuracy and decoder MSE after each of ``epochs`` probe epochs (one
    training run each, recorded on the way: the value at e equals a run of e epochs).
    The decoder, ~20x costlier per epoch, stops at ``decoder_max`` epochs."""
    acc = classification_probe(
        f_tr,
        sets.train.labels,
        f_ev,
        sets.eval.labels,
        epochs=max(epochs),
        seed=seed,
        record=epochs,
    )  # type: ignore[arg-type]
    dec_epochs = [e for e in epochs if e <= decoder_max] or [min(epochs)]
    dec = decoder_probe(
        f_tr,
        sets.right_train,
        f_ev,
        sets.right_eval,
        epochs=max(dec_epochs),
        seed=seed,
        record=dec_epochs,
    )[1]
    return {
        "probe_acc_heldout": {e: v[1] for e, v in acc["curve"].items()},
        "decoder_mse_heldout": {e: v[1] for e, v in dec["curve"].items()},
    }


def _run_baselines(task: MnistTask, sets: MnistSets) -> dict[str, Any]:
    """Raw pixels, a random encoder and the supervised encoder (trained for the same
    number of steps as the JEPAs) for one seed; held-out scores."""

    exp = EXPERIMENTS["mnist"]
    mc = exp.model_config("expressive")
    dev = torch.device(task.device)
    t0 = time.perf_counter()
    out: dict[str, Any] = {"variant": BASELINES, "seed": task.seed}
    raw = feature_scores(
        sets.train.context.flatten(1),
        sets.eval.context.flatten(1),
        sets,
        task.probe_epochs,
        task.seed,
        True,
        task.decoder_epochs,
    )
    # the random encoder is every JEPA's step 0: build_model gives the same online encoder
    init = TrainConfig(seed=task.seed)  # only the seed matters for the encoder's init
    rand = encoder_scores(
        build_model(mc, init, dev),
        sets,
        task.probe_epochs,
        task.seed,
        True,
        task.decoder_epochs,
    )
    steps_per_epoch = math.ceil(len(sets.train) / exp.train["batch_size"])
    sup_epochs = max(1, round(task.num_steps / steps_per_epoch))
    fresh = build_model(mc, init, dev).online_encoder
    sup = supervised_baseline(
        fresh, mc.embed_dim, sets.train, sets.eval, epochs=sup_epochs, seed=task.seed
    )
    out["values"] = {
        "raw_pixels_acc": raw["probe_acc_heldout"],
        "raw_pixels_decoder_mse": raw["decoder_mse_heldout"],
        "random_encoder_acc": rand["probe_acc_heldout"],
        "random_encoder_decoder_mse": rand["decoder_mse_heldout"],
        "random_encoder_effective_rank": rand["effective_rank_heldout"],
        "random_encoder_embed_std_mean": rand["embed_std_mean_heldout"],
        "supervised_acc": sup["eval_acc"],
    }
    out["supervised_epochs"] = sup_epochs
    out["random_encoder"] = rand
    out["seconds"] = time.perf_counter() - t0
    return out


_SETS: MnistSets | None = None  # one copy per worker process


def _init_worker(mnist: MnistData) -> None:
    global _SETS
    torch.set_num_threads(1)
    _SETS = MnistSets.of(mnist)


def run_task(task: MnistTask, sets: MnistSets | None = None) -> dict[str, Any]:
    """Run one task in this process (``sets`` default: the worker's data)."""
    sets = sets if sets is not None else _SETS
    if sets is None:
        raise RuntimeError("run_task needs sets (or a worker started by run_tasks)")
    if task.device != "cpu":
        sets = sets.to(task.device)
    old = torch.get_num_threads()
    if task.device == "cpu":
        torch.set_num_threads(task.threads)
    try:
        return (
            _run_baselines(task, sets)
            if task.variant == BASELINES
            else _run_variant(task, sets)
        )
    finally:
        torch.set_num_threads(old)


def run_tasks(
    tasks: Sequence[MnistTask],
    mnist: MnistData,
    workers: int = 2,
    log: Callable[[str], None] | None = None,
    on_done: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``tasks`` on ``workers`` processes (1: in this process); results in task order.

    Longest tasks first (BiJEPA, then classic JEPA, then baselines), so the workers
    finish together. Workers start with the "spawn" method (safe with OpenMP).
    ``on_done(i, result)`` is called as each task ``i`` finishes (the reproduction
    caches it there, so an interrupted run keeps its finished tasks).
    """
    check_int("workers", workers, 1)
    for t in tasks:
        if t.variant != BASELINES and t.variant not in EXPERIMENTS["mnist"].table:
            raise ValueError(
                f"task variant must be one of {EXPERIMENTS['mnist'].table + (BASELINES,)}, got {t.variant!r}"
            )
    order = sorted(
        range(len(tasks)),
        key=lambda i: {"expressive": 0, "classic": 1}.get(tasks[i].variant, 2),
    )
    results: list[dict[str, Any] | None] = [None] * len(tasks)
    t0 = time.perf_counter()

    def done(i: int, r: dict[str, Any]) -> None:
        results[i] = r
        if on_done is not None:
            on_done(i, r)
        if log is not None:
            what = (
                r.get("final", {}).get("probe_acc_heldout")
                if r["variant"] != BASELINES
                else r["values"]["supervised_acc"]
            )
            log(
                f"mnist {r['variant']:10s} seed {r['seed']}: held-out accuracy {what if what is None else round(what, 4)} "
                f"({time.perf_counter() - t0:.0f} s since start)"
            )

    if workers == 1 or len(tasks) == 1:
        sets = MnistSets.of(mnist)
        for i in order:
            done(i, run_task(tasks[i], sets))
    else:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(
            min(workers, len(tasks)),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(mnist,),
        ) as pool:
            futures = {i: pool.submit(run_task, tasks[i]) for i in order}
            for i in order:
                done(i, futures[i].result())
    return results  # type: ignore[return-value]


__all__ = [
    "CHECKPOINTS",
    "BASELINES",
    "MnistTask",
    "MnistSets",
    "CheckpointStream",
    "effective_rank",
    "embedding_diagnostics",
    "feature_scores",
    "encoder_scores",
    "run_task",
    "run_tasks",
    "probe_curves",
    "DECODER_EPOCHS",
]
