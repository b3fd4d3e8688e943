"""One results pipeline: train a set of runs (variant or grid point x seed), batched.

``train_runs`` takes any number of ``Run`` specs of one experiment: each a stability
mode and a TrainConfig (which carries alpha, ema_momentum and seed, the only fields in
which runs of one batch may differ). Runs that share an architecture and the rest of
their TrainConfig train together as one ``Ensemble`` where the experiment allows it
(MLP models), each on its own seed's data; members that share a seed share one stream.
A member that diverges is recorded (its step and history) and never stops the others.

    runs = [Run("expressive", tc) for tc in ...]
    trained = train_runs("sine", runs)           # list[Trained], same order as runs
    scores = forecast_scores(trained, ...)       # batched probes, one dict per run

The reproduction (``reproduce``) and the maps sweep (``sweep``) are built on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from ..core.config import (
    ModelConfig,
    TrainConfig,
    check_float,
    check_int,
    resolve_device,
)
from ..core.models import JEPA, build_model, seeded
from ..core.probes import protocol_features
from ..core.training import History, TrainingDiverged, train
from . import registry
from .ensemble import Ensemble, StackedStream, train_ensemble
from .registry import Experiment, SeedData


@dataclass(frozen=True)
class Run:
    """One training run: a stability mode and its TrainConfig (alpha, ema_momentum, seed, ...)."""

    mode: str
    train: TrainConfig
    name: str = ""  # a label for the caller (e.g. the table variant)


@dataclass
class Trained:
    """The outcome of one ``Run``: the trained model (None if it diverged) and its history."""

    run: Run
    model: JEPA | None
    history: History
    model_config: ModelConfig
    seconds: float = 0.0  # wall time of its batch divided by the batch size
    batch: Ensemble | None = None  # the ensemble it trained in (None: trained alone)
    member: int = 0  # its index in ``batch``

    @property
    def diverged_at(self) -> int | None:
        return self.history.diverged_at


def _batch_key(run: Run, mc: ModelConfig) -> tuple:
    shared = {
        k: v
        for k, v in run.train.to_dict().items()
        if k not in ("alpha", "ema_momentum", "seed")
    }
    return (mc, tuple(sorted(shared.items())))


def train_runs(
    experiment: str | Experiment,
    runs: Sequence[Run],
    data: Callable[[int], SeedData] | dict[int, SeedData] | None = None,
    max_batch: int = 512,
    log: Callable[[str], None] | None = None,
    compile: bool = False,
    build: Callable[[ModelConfig, TrainConfig, torch.device], JEPA] | None = None,
    ensemble: Callable[[list[JEPA]], Ensemble] = Ensemble,
    batched: bool | None = None,
    keep_going: bool = True,
) -> list[Trained]:
    """Train every run of ``experiment``; returns one ``Trained`` per run, in order.

    ``data``: per-seed data (a dict or a function of the seed); default the registry's
    ``seed_data``. Runs that can share a batch are split into equal batches of at most
    ``max_batch`` members (``batch_sizes``). ``compile``: ``torch.compile`` each batch's
    loss and backward (faster for long runs; float rounding then differs from eager).
    ``build(model_config, train_config, device)``: a model other than ``build_model``'s
    (e.g. a shared invertible or a stochastic predictor); such models train one at a
    time. ``ensemble(models)``: the batch class, e.g. a ``beyond.MonitoredEnsemble`` that
    records while it trains (``Trained.batch`` and ``.member`` lead back to it).
    ``batched``: False trains every run on its own through ``training.train`` (the same
    arithmetic as the ensemble; float32 rounding then differs by about 1% per run after
    training); default: batched wherever the experiment and ``build`` allow it.
    ``keep_going``: a diverged run is recorded (default) or, with False, its
    ``TrainingDiverged`` (``EnsembleDiverged`` in a batch) is raised.

    Why so many parameters: the runs and their data plus the options of the one
    training path (batching, building, divergence), each with a default.
    Why so long: the batched and the one-by-one path of that one training loop side by
    side, so that both visibly do the same thing.
    """
    exp = registry.experiment(experiment) if isinstance(experiment, str) else experiment
    if not runs:
        raise ValueError("runs must hold at least one Run")
    check_int("max_batch", max_batch, 1)
    if batched and not (exp.batched and build is None):
        raise ValueError(
            f"batched=True: experiment {exp.name!r} (or a custom build) cannot train "
            "as an ensemble; use batched=False or leave it None"
        )
    batched = exp.batched and build is None and batched is not False
    cache: dict[int, SeedData] = {}

    def seed_data(seed: int) -> SeedData:
        if seed not in cache:
            cache[seed] = (
                data[seed] if isinstance(data, dict) else (data or exp.seed_data)(seed)
            )
        return cache[seed]

    groups: dict[tuple, list[int]] = {}
    mcs = [exp.model_config(r.mode) for r in runs]
    for i, (r, mc) in enumerate(zip(runs, mcs)):
        groups.setdefault(_batch_key(r, mc), []).append(i)
    out: list[Trained | None] = [None] * len(runs)
    for idx_all in groups.values():
        sizes = batch_sizes(len(idx_all), max_batch if batched else 1)
        for start, size in zip(np.cumsum([0] + sizes[:-1]), sizes):
            idx = idx_all[start : start + size]
            t0 = time.perf_counter()
            cfgs = [runs[i].train for i in idx]
            mc = mcs[idx[0]]
            dev = resolve_device(cfgs[0].device)
            ens = None
            if batched:
                seeds = sorted({c.seed for c in cfgs})
                ens = ensemble([build_model(mc, c, dev) for c in cfgs])
                if compile:
                    ens.compile()
                streams = [seed_data(s).stream(cfgs[0].batch_size, dev) for s in seeds]
                stacked = StackedStream(
                    streams, members=[seeds.index(c.seed) for c in cfgs]
                )
                hists = train_ensemble(ens, stacked, cfgs, keep_going=keep_going)
                models: list[JEPA | None] = list(ens.unstack())
            else:
                c = cfgs[0]
                m = (build or build_model)(mc, c, dev)
                try:
                    hists = [train(m, seed_data(c.seed).stream(c.batch_size, dev), c)]
                    models = [m]
                except TrainingDiverged as err:
                    if not keep_going:
                        raise
                    hists, models = [replace(err.history, diverged_at=err.step)], [None]
            per = (time.perf_counter() - t0) / len(idx)
            for j, (i, h, m) in enumerate(zip(idx, hists, models)):
                alive = None if h.diverged_at is not None else m
                out[i] = Trained(runs[i], alive, h, mc, per, ens, j)
            if log is not None:
                log(f"{exp.name}: trained {len(idx)} runs in {per * len(idx):.1f} s")
    return out  # type: ignore[return-value]


def seed_runs(
    experiment: str | Experiment,
    seeds: Sequence[int],
    mode: str = "expressive",
    name: str = "",
    **overrides,
) -> list[Run]:
    """One ``Run`` per seed with the registry's settings of ``experiment`` in ``mode``;
    ``overrides`` go to the TrainConfig (``alpha``, ``num_steps``, ``device``, ...)."""
    exp = registry.experiment(experiment) if isinstance(experiment, str) else experiment
    return [
        Run(mode, exp.mode_configs(mode, **overrides, seed=s)[1], name) for s in seeds
    ]


def batch_sizes(n: int, max_batch: int) -> list[int]:
    """Split ``n`` runs into batches of at most ``max_batch``: equal sizes where a divisor
    of ``n`` allows it without more than one extra batch (one shape, one compile), else
    sizes that differ by at most one."""
    check_int("n", n, 1)
    check_int("max_batch", max_batch, 1)
    least = -(-n // max_batch)
    for count in range(least, least + 2):
        if n % count == 0:
            return [n // count] * count
    return [n // least + (1 if i < n % least else 0) for i in range(least)]


# ---------------------------------------------------------------------- batched probes
def batched_lstsq(
    x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """K least-squares fits with a bias, in float64: x [K, N, D], y [K, N, E] -> (w [K, D, E], b [K, E]).

    The same solve as ``probes.lstsq_probe`` for every k.
    """
    x, y = x.double(), y.double()
    xm, ym = x.mean(1, keepdim=True), y.mean(1, keepdim=True)
    xc, yc = x - xm, y - ym
    w = torch.linalg.lstsq(xc.transpose(1, 2) @ xc, xc.transpose(1, 2) @ yc).solution
    return w, (ym - xm @ w).squeeze(1)


def batched_adam_probe(
    x: torch.Tensor,
    y: torch.Tensor,
    seeds: Sequence[int],
    epochs: int,
    lr: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """K paper-style probes at once: nn.Linear per member (init seeded by ``seeds[k]``, as
    ``probes.adam_probe``), full-batch Adam for ``epochs``. x [K, N, D], y [K, N, E] ->
    (w [K, D, E], b [K, 1, E]). Adam is element-wise and the losses are summed, so each
    member follows its own ``adam_probe`` trajectory."""
    check_int("epochs", epochs, 1)
    d, e = x.shape[2], y.shape[2]
    ws, bs = [], []
    for s in seeds:
        with seeded(s):
            lin = nn.Linear(d, e)
        ws.append(lin.weight.detach().T)
        bs.append(lin.bias.detach())
    w = nn.Parameter(torch.stack(ws).to(x))
    b = nn.Parameter(torch.stack(bs).unsqueeze(1).to(x))
    opt = torch.optim.Adam([w, b], lr=lr)
    n_el = x.shape[1] * e
    with torch.enable_grad():
        for _ in range(epochs):
            loss = (torch.baddbmm(b, x, w) - y).square().sum() / n_el
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return w.detach(), b.detach()


def _mse(pred: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    return (pred.double() - y.double()).square().mean(dim=(1, 2)).cpu().numpy()


@dataclass
class ProbeScores:
    """Held-out scores of many runs: ``scores[key]`` [K] arrays (NaN for diverged runs) and,
    where asked for, the least-squares predictions of the first ``n_show`` test sequences."""

    scores: dict[str, np.ndarray]
    show: dict[str, np.ndarray] = field(default_factory=dict)


def forecast_scores(
    trained: Sequence[Trained],
    data: Callable[[int], SeedData] | dict[int, SeedData],
    protocols: Sequence[str] = ("A", "B"),
    adam: Sequence[str] = ("B",),
    adam_epochs: int = 100,
    n_show: int = 0,
    chunk: int = 128,
) -> ProbeScores:
    """Probes of many trained runs at once, each on its own seed's probe and test sets.

    For each protocol: ``{p}_lstsq_heldout`` (closed-form least squares fitted on the probe
    set, scored on the test set); for those in ``adam`` also the paper's Adam probe
    (``{p}_adam_probeset``, ``{p}_adam_heldout``). ``n_show`` keeps ``truth`` and
    ``{p}_pred`` of the first ``n_show`` test sequences ([K, n_show]).
    """
    get = data.__getitem__ if isinstance(data, dict) else data
    k = len(trained)
    keys = [f"{p}_lstsq_heldout" for p in protocols] + [
        f"{p}_adam_{s}" for p in adam for s in ("probeset", "heldout")
    ]
    scores = {key: np.full(k, np.nan) for key in keys}
    show: dict[str, np.ndarray] = {}
    alive = [i for i, t in enumerate(trained) if t.model is not None]
    for start in range(0, len(alive), chunk):
        idx = alive[start : start + chunk]
        for p in protocols:
            if p == "B_bwd":
                idx_p = [i for i in idx if trained[i].model.bidirectional]  # type: ignore[union-attr]
            else:
                idx_p = idx
            if not idx_p:
                continue
            f_tr, y_tr, f_te, y_te = [], [], [], []
            for i in idx_p:
                sd = get(trained[i].run.train.seed)
                m = trained[i].model
                dev = next(m.parameters()).device  # type: ignore[union-attr]
                a, b = protocol_features(m, sd.probe.to(dev), p)  # type: ignore[arg-type]
                c, d = protocol_features(m, sd.test.to(dev), p)  # type: ignore[arg-type]
                f_tr.append(a), y_tr.append(b), f_te.append(c), y_te.append(d)
            xtr, ytr, xte, yte = map(torch.stack, (f_tr, y_tr, f_te, y_te))
            w, bias = batched_lstsq(xtr, ytr)
            pred = xte.double() @ w + bias.unsqueeze(1)
            scores[f"{p}_lstsq_heldout"][idx_p] = _mse(pred, yte)
            if n_show:
                show.setdefault(f"{p}_pred", np.full((k, n_show), np.nan))[idx_p] = (
                    pred[:, :n_show, 0].cpu().numpy()
                )
                show.setdefault("truth", np.full((k, n_show), np.nan))[idx_p] = (
                    yte[:, :n_show, 0].double().cpu().numpy()
                )
            if p in adam:
                seeds = [trained[i].run.train.seed for i in idx_p]
                w, bias = batched_adam_probe(xtr, ytr, seeds, adam_epochs)
                scores[f"{p}_adam_probeset"][idx_p] = _mse(
                    torch.baddbmm(bias, xtr, w), ytr
                )
                scores[f"{p}_adam_heldout"][idx_p] = _mse(
                    torch.baddbmm(bias, xte, w), yte
                )
    return ProbeScores(scores, show)


def history_metrics(h: History) -> dict[str, float]:
    """Loss and embedding-norm summaries of one run (NaN where a run is too short)."""

    nan = float("nan")
    out: dict[str, float] = {}
    n = len(h)
    tail = h.tail_mean(100) if n else {"total": nan, "fwd": nan, "bwd": nan}
    for part in ("total", "fwd", "bwd"):
        out[f"loss_final_{part}"] = float(getattr(h, part)[-1]) if n else nan
        out[f"loss_last100_{part}"] = tail[part]
    out["roughness_fwd"] = roughness(h.fwd) if n > 60 else nan
    out["roughness_total"] = roughness(h.total) if n > 60 else nan
    norms = h.online_norm
    out["norm_final"] = float(norms[-1]) if len(norms) else nan
    mid = len(norms) // 2
    out["norm_growth_first_half"] = (
        float(norms[mid] / norms[0]) if len(norms) > 1 else nan
    )
    out["norm_growth_second_half"] = (
        float(norms[-1] / norms[mid]) if len(norms) > 1 else nan
    )
    # the window of the explosion rule (analysis.verdicts.explodes)
    out["norm_growth_from_quarter"] = h.norm_growth(0.25) if len(norms) > 1 else nan
    return out


def downsample(x: np.ndarray, points: int) -> np.ndarray:
    """Means over ``points`` consecutive windows of ``x`` (all of ``x`` if it is shorter)."""
    x = np.asarray(x, dtype=float)
    if len(x) <= points:
        return x
    edges = np.linspace(0, len(x), points + 1).astype(int)
    return np.array([x[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])


__all__ = [
    "Run",
    "Trained",
    "train_runs",
    "seed_runs",
    "forecast_scores",
    "ProbeScores",
    "batched_lstsq",
    "batched_adam_probe",
    "history_metrics",
    "downsample",
]


#: Window (steps) of the moving average that ``roughness`` measures fluctuation around.
ROUGHNESS_WINDOW = 51


def roughness(
    loss: np.ndarray, window: int = ROUGHNESS_WINDOW, start: float = 0.5
) -> float:
    """Step-to-step fluctuation of a training loss: the std of log(loss) around its centred
    moving average (``window`` steps), over the part of training after fraction ``start``.

    Dimensionless; 0 for a smooth curve. Used to test "BiJEPA's loss is smoother".
    """
    check_int("window", window, 3)
    check_float("start", start, 0.0, 1.0)
    y = np.log(np.asarray(loss, dtype=float))
    if len(y) < window + 2:
        raise ValueError(
            f"loss must have more than window + 1 = {window + 1} steps, got {len(y)}"
        )
    trend = np.convolve(
        y, np.ones(window) / window, mode="valid"
    )  # aligned with y[window//2 : -window//2]
    h = window // 2
    resid = y[h : len(y) - h] - trend
    return float(resid[int(start * len(resid)) :].std())
