"""One call per paper run: data -> model -> train -> probes.

``run_experiment("sine", "expressive", seed=0)`` trains one configuration of the
paper's tables, on its own, through the shared pipeline (``pipeline.train_runs`` with
``batched=False``) and scores it; the chapters and the command line share it:

    python -m bijepa_nb.run sine --configs classic expressive --seeds 0 1 2
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..core.config import MnistConfig, check_int, resolve_device
from ..core.data import EpochStream, Split
from ..core.models import JEPA
from ..core.probes import evaluate
from ..core.training import History
from . import registry
from .mnist import (
    batched_encode,
    classification_probe,
    decoder_probe,
    load_mnist,
    mnist_num_steps,
    mnist_split,
    right_half_pixels,
)
from .pipeline import Run, train_runs
from .registry import EXPERIMENTS, VARIANTS, SeedData, lorenz_seed_data, variant

#: The configurations of the paper's tables, name -> (stability mode, alpha), and the
#: variants each experiment's table reports: views of the registry (``bijepa_nb.experiments.registry``).
CONFIGS: dict[str, tuple[str, float]] = {
    name: (v.mode, v.alpha) for name, v in VARIANTS.items()
}
PAPER_TABLES = {name: exp.table for name, exp in EXPERIMENTS.items()}


@dataclass
class RunResult:
    """A trained model, its history and its scores (``scores[protocol][key]`` MSE, or MNIST metrics)."""

    experiment: str
    config: str
    seed: int
    model: JEPA
    history: History
    scores: dict[str, Any]
    probe_set: Split | None = None
    test_set: Split | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """The run's numbers under the keys of the results files: ``train_loss`` (the
        last batch's forward loss, the paper's "train loss"), ``loss_last100_total``
        (mean total loss of the last 100 steps) and ``{A,B}_{key}`` for every key of
        ``probes.protocol_scores`` (``B_adam_probeset`` is the paper's Protocol B
        measurement; ``B_lstsq_heldout`` the exact probe on held-out data)."""
        if "A" not in self.scores:
            raise ValueError(
                "metrics: only forecasting runs (sine, lorenz) have Protocol A/B scores"
            )
        out = {
            "train_loss": float(self.history.fwd[-1]),
            "loss_last100_total": self.history.tail_mean(100)["total"],
        }
        for p in ("A", "B"):
            out.update({f"{p}_{k}": v for k, v in self.scores[p].items()})
        return out


def run_experiment(
    experiment: str,
    config: str = "expressive",
    seed: int = 0,
    data: Any = None,
    **train_overrides: Any,
) -> RunResult:
    """Train and score one configuration of ``experiment`` (sine, lorenz, mnist) with ``seed``.

    ``data`` may pass pre-built data (LorenzData or MnistData) to share between runs.
    ``train_overrides`` go to TrainConfig (e.g. num_steps=200, alpha=0.8, progress=False).
    For MNIST, num_steps defaults to the registry's: the paper's optimisation budget
    (2,350 steps at batch 256, i.e. 10 epochs of 60k images) whatever the training-set
    size; ``epochs`` (optional) instead sets it to that many passes over the training set
    (the other reading of "10 epochs": 320 steps on the offline 8,000 images).

    Why so long: the three experiments' data preparation and scoring side by side, so
    one call reads as one paper run.
    """
    exp = registry.experiment(experiment)
    v = variant(config)
    alpha = train_overrides.pop("alpha", v.alpha)
    epochs = train_overrides.pop("epochs", None)
    probe_epochs = train_overrides.pop("probe_epochs", exp.probe_epochs)
    t0 = time.perf_counter()
    if exp.kind == "halves":
        mnist = data if data is not None else load_mnist(MnistConfig())
        train_split = mnist_split(mnist.train_images, mnist.train_labels)
        if epochs is not None:
            check_int("epochs", epochs, 1)
            if "num_steps" in train_overrides:
                raise ValueError("give either epochs or num_steps for MNIST, not both")
            train_overrides["num_steps"] = mnist_num_steps(
                len(train_split), exp.train["batch_size"], epochs
            )
        train_overrides.setdefault(
            "num_threads", 2
        )  # the conv encoder likes 2 threads (measured)
    mc, tc = exp.configs(v, alpha=alpha, seed=seed, **train_overrides)
    if exp.kind == "forecast":
        if data is None:
            sd = exp.seed_data(seed)
        else:
            sd = data if isinstance(data, SeedData) else lorenz_seed_data(data, seed)
    else:
        sd = SeedData(lambda b, dev: EpochStream(train_split, seed, b, dev))
    # the one training path (bijepa_nb.experiments.pipeline), here one run on its own
    trained = train_runs(
        exp, [Run(v.mode, tc, config)], {seed: sd}, batched=False, keep_going=False
    )[0]
    model, hist = trained.model, trained.history
    if exp.kind == "forecast":
        scores = evaluate(model, sd.probe, sd.test, epochs=probe_epochs, seed=seed)
        return RunResult(
            experiment,
            config,
            seed,
            model,
            hist,
            scores,
            sd.probe,
            sd.test,
            time.perf_counter() - t0,
            dict(sd.extra),
        )
    device = resolve_device(tc.device)
    eval_split = mnist_split(mnist.eval_images, mnist.eval_labels)
    f_tr = batched_encode(model, train_split.context)
    f_ev = batched_encode(model, eval_split.context)
    acc = classification_probe(
        f_tr,
        train_split.labels.to(device),
        f_ev,
        eval_split.labels.to(device),
        epochs=probe_epochs,
        seed=seed,
    )
    dec, mse = decoder_probe(
        f_tr,
        right_half_pixels(mnist.train_images).to(device),
        f_ev,
        right_half_pixels(mnist.eval_images).to(device),
        epochs=probe_epochs,
        seed=seed,
    )
    scores = {"linear_probe": acc, "decoder": mse, "source": mnist.source}
    return RunResult(
        experiment,
        config,
        seed,
        model,
        hist,
        scores,
        None,
        None,
        time.perf_counter() - t0,
        {"decoder": dec, "mnist": mnist},
    )
