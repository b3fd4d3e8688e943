"""BiJEPA among its peers: other self-supervised objectives and controls, one harness.

(command line: ``python -m bijepa_nb.peers``)

Every objective is a different loss in the one training step (``core.models.JEPAStep``
through ``core.training.train_step``): ``PeerEnsemble`` subclasses the batched
``ensemble.Ensemble`` and replaces only its ``_loss`` (and, for objectives without a
target encoder, its EMA update), so all objectives share the encoders, predictors,
data streams, optimiser, budgets, probes and seeds of the paper's experiments. The
objectives live here, not in ``core``: they are this study's foils, not the method, and
``core`` is kept below 1,600 lines (``tests/test_layers.py``).

``OBJECTIVES`` (stable names; other studies import them):

- ``classic`` / ``bijepa``: Eq. 4 and Eq. 8 of the paper, unchanged.
- ``vicreg``: JEPA with VICReg variance and covariance terms and no EMA target.
- ``sigreg``: LeJEPA's SIGReg (sliced Epps-Pulley test of isotropic Gaussianity), no EMA.
- ``pixel``: the same encoder and predictor regress the raw target window (generative).
- ``autoencoder``: the same encoder and predictor reconstruct the raw context.
- ``infonce``: contrastive InfoNCE between predicted and target embeddings, no EMA.
- ``swapped``: control; classic JEPA whose (x, y) views are swapped at random per
  sequence, one predictor: the encoder sees both views, no backward objective.
- ``compute_matched``: control; classic JEPA with twice the batch, as many encoder passes
  per step as BiJEPA (online and target encoders each see 2B windows).
- ``tuned_classic``: control; classic JEPA at the learning rate x EMA momentum chosen
  on validation seeds (``SEARCH``), never on the scored seeds.

JSON schema (``SCHEMA_VERSION``; ``validate`` checks it): ``schema``, ``experiment``,
``quick``, ``command``, ``seconds``, ``environment``, ``execution``, ``settings``
(ModelConfig, TrainConfig, probe epochs, objective hyper-parameters), ``seeds``,
``validation_seeds``, ``objectives`` ({name: {label, family, equation, citation,
ema_target}}), ``metrics`` ({key: {unit, split, description}}), ``results``
({objective: {"diverged_at": [step or null per seed], "per_seed": {metric: [value or
null per seed]}, "member_steps_per_second": float}}), ``search`` ({"lr": [...],
"ema_momentum": [...], "scores": [[geometric mean of held-out Protocol B over the
validation seeds, per lr, per ema_momentum]], "chosen": {"lr", "ema_momentum"}}) and
``baselines`` ({name: {unit, split, description, per_seed}}, the raw-data forecasters of
``baselines.forecast_baselines`` on the scored seeds).
"""

from __future__ import annotations

import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import check_choice, check_int, resolve_device
from ..core.data import stream_seed
from ..core.models import JEPA, JEPAStep, seeded
from . import registry
from .chunks import Chunk, ChunkCache, Cluster, code_version, run_chunks
from .ensemble import BatchedLinear, Ensemble
from .mnist_runs import embedding_diagnostics
from .pipeline import Run, forecast_scores, history_metrics, train_runs
from .reproduce import _clean, _forecast_baselines, check_metrics

SCHEMA_VERSION = "bijepa-peers/1"
#: The experiments this study runs (batched MLPs; MNIST peers are not measured here).
PEER_EXPERIMENTS = ("sine", "lorenz")
IDENTITY = ("schema", "experiment", "quick", "seeds")

#: Objective hyper-parameters (the cited papers' defaults where they fit the task).
VICREG_WEIGHTS = (
    1.0,
    1.0,
    0.04,
)  # invariance, variance, covariance: Bardes' 25, 25, 1 / 25
SIGREG_LAMBDA = 0.05  # LeJEPA's weight of SIGReg against the prediction loss
SIGREG_SLICES = 64  # random directions per step
SIGREG_KNOTS = 17  # Epps-Pulley integration points on t in [-5, 5] (LeJEPA's)
INFONCE_TEMPERATURE = 0.1
SEARCH = {"lr_factors": (0.5, 1.0, 2.0), "ema_momentum": (0.99, 0.995, 0.999)}
VALIDATION_SEEDS = (100, 101, 102, 103, 104)
QUICK = {"num_steps": 100, "probe_epochs": 10, "seeds": 3, "validation_seeds": 2}


@dataclass(frozen=True)
class Objective:
    """One self-supervised objective: its name, label, family, equation and source.

    alpha: 0.5 builds a backward predictor (BiJEPA), 1.0 does not; ema_target: whether
    a target encoder is EMA-updated and used; head: "target" or "context" adds a linear
    read-out from the predictor's output to that raw window (generative objectives);
    batch_factor: sequences per step as a multiple of the paper's batch.
    """

    name: str
    label: str
    family: str
    equation: str
    citation: str
    alpha: float = 1.0
    ema_target: bool = False
    head: str | None = None
    batch_factor: int = 1


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective(
            "classic",
            "Classic JEPA",
            "latent",
            r"\|P_f(f(x)) - \mathrm{sg}\,\bar f(y)\|^2",
            "Assran et al. 2023 (I-JEPA); the paper's Eq. 4",
            ema_target=True,
        ),
        Objective(
            "bijepa",
            "BiJEPA",
            "latent",
            r"\alpha\|P_f(f(x)) - \bar f(y)\|^2 + (1-\alpha)\|P_b(f(y)) - \bar f(x)\|^2",
            "Huang 2026, Eq. 8 (alpha = 0.5)",
            alpha=0.5,
            ema_target=True,
        ),
        Objective(
            "vicreg",
            "JEPA + VICReg",
            "latent, no EMA",
            r"\|P_f(f(x)) - f(y)\|^2 + \sum_{z} [v(z) + 0.04\, c(z)]",
            "Bardes, Ponce & LeCun 2022 (VICReg), weights 25/25/1 scaled by 1/25",
        ),
        Objective(
            "sigreg",
            "JEPA + SIGReg",
            "latent, no EMA",
            r"(1-\lambda)\|P_f(f(x)) - f(y)\|^2 + \lambda\,\mathrm{EP}(z)",
            "Balestriero & LeCun 2025 (LeJEPA): sliced Epps-Pulley, lambda = 0.05",
        ),
        Objective(
            "pixel",
            "pixel-space predictor",
            "generative",
            r"\|W P_f(f(x)) - y\|^2",
            "the generative foil: regress the raw target",
            head="target",
        ),
        Objective(
            "autoencoder",
            "autoencoder",
            "generative",
            r"\|W P_f(f(x)) - x\|^2",
            "Hinton & Salakhutdinov 2006",
            head="context",
        ),
        Objective(
            "infonce",
            "InfoNCE",
            "contrastive",
            r"-\log \frac{e^{\langle p_i, z_i\rangle/T}}{\sum_j e^{\langle p_i, z_j\rangle/T}}",
            "van den Oord, Li & Vinyals 2018 (CPC), T = 0.1",
        ),
        Objective(
            "swapped",
            "classic, swapped views",
            "control",
            r"(x, y) \to (y, x) \text{ w.p. } 1/2;\ \text{Eq. 4}",
            "control: the encoder sees both views, one predictor",
            ema_target=True,
        ),
        Objective(
            "compute_matched",
            "classic, 2x batch",
            "control",
            "Eq. 4 on 2B windows",
            "control: BiJEPA's encoder passes per step",
            ema_target=True,
            batch_factor=2,
        ),
        Objective(
            "tuned_classic",
            "classic, tuned lr x tau",
            "control",
            "Eq. 4",
            "control: lr x tau chosen on validation seeds",
            ema_target=True,
        ),
    )
}


def objective(name: str) -> Objective:
    """The entry of ``name``; an error names the parameter and lists the objectives."""
    check_choice("objective", name, tuple(OBJECTIVES))
    return OBJECTIVES[name]


# ------------------------------------------------------------------ loss terms
def member_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per member: [K, N, D] -> [K]."""
    return (pred - target).square().mean(dim=(1, 2))


def variance_term(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """VICReg's hinge on each dimension's std (Bardes et al. 2022, Eq. 1):
    mean_d max(0, 1 - sqrt(Var(z_d) + eps)); z [K, N, D] -> [K]."""
    return F.relu(1.0 - (z.var(dim=1) + eps).sqrt()).mean(-1)


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """VICReg's covariance term (Eq. 4): sum of squared off-diagonal covariances / D;
    z [K, N, D] -> [K]."""
    zc = z - z.mean(1, keepdim=True)
    cov = zc.transpose(1, 2) @ zc / (z.shape[1] - 1)  # [K, D, D]
    off = cov - torch.diag_embed(torch.diagonal(cov, dim1=1, dim2=2))
    return off.square().sum(dim=(1, 2)) / z.shape[2]


def epps_pulley(z: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """SIGReg (Balestriero & LeCun 2025): the Epps-Pulley statistic of each 1-D
    projection of z against N(0, 1), averaged over directions.

    N * integral over t in [-5, 5] of |ecf(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt (trapezoid
    rule, ``SIGREG_KNOTS`` points), ecf the empirical characteristic function of the
    projections. z [K, N, D], directions [K, D, M] unit columns -> [K].
    """
    t = torch.linspace(-5.0, 5.0, SIGREG_KNOTS, device=z.device, dtype=z.dtype)
    phi = torch.exp(-0.5 * t.square())  # the characteristic function of N(0, 1)
    xt = (z @ directions).unsqueeze(-1) * t  # [K, N, M, T]
    re, im = torch.cos(xt).mean(1), torch.sin(xt).mean(1)  # [K, M, T]
    err = ((re - phi).square() + im.square()) * phi
    return torch.trapezoid(err, t, dim=-1).mean(-1) * z.shape[1]


def infonce(pred: torch.Tensor, z: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE (van den Oord et al. 2018): cross-entropy of each prediction against its
    own target among the batch's targets, cosine similarities / ``temperature``;
    pred, z [K, B, D] -> [K]."""
    logits = F.normalize(pred, dim=-1) @ F.normalize(z, dim=-1).transpose(1, 2)
    labels = torch.arange(pred.shape[1], device=pred.device)
    ce = F.cross_entropy(
        logits.flatten(0, 1) / temperature,
        labels.repeat(pred.shape[0]),
        reduction="none",
    )
    return ce.view(pred.shape[0], -1).mean(-1)


class PeerEnsemble(Ensemble):
    """K MLP models trained with one objective of ``OBJECTIVES`` (the same seeds, data and
    optimiser as ``Ensemble``). ``seed`` seeds the objective's own randomness (SIGReg's
    directions, the swapped views) and the linear heads of the generative objectives;
    ``out_dim`` is the flattened raw window those heads predict."""

    def __init__(
        self,
        models: Sequence[JEPA],
        objective_name: str,
        seed: int = 0,
        out_dim: int | None = None,
    ):
        obj = objective(objective_name)
        check_int("seed", seed, 0)
        super().__init__(models)
        if any(m.alpha != obj.alpha for m in models):
            raise ValueError(
                f"objective {obj.name!r} needs members with alpha = {obj.alpha}"
            )
        self.objective = obj
        self.generator = torch.Generator().manual_seed(stream_seed(seed, "extra"))
        self.head: nn.Module | None = None
        if obj.head is not None:
            check_int("out_dim", out_dim, 1)
            with seeded(stream_seed(seed, "model")):
                lin = [nn.Linear(self.cfg.embed_dim, out_dim) for _ in range(self.size)]
            self.head = BatchedLinear(lin).to(next(self.parameters()))

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
        """(total, main term, regulariser or 0[, embeddings]) per member, each [K]."""
        return peer_loss(self, context, target, return_embeddings, batched=True)


def peer_loss(model, context, target, return_embeddings=False, batched=True):
    """The step's loss under ``model.objective``: (total, main, regulariser or 0[,
    embeddings]), each [K] for K batched members (``batched``, tensors [K, B, ...]) or
    a scalar for one model (tensors [B, ...]; ``mnist_peers.PeerJEPA``).

    ``model`` provides the ``JEPAStep`` parts, ``objective``, ``head`` (or None),
    ``size`` (K, or 1) and ``_draw(*shape)`` (its own random stream). The loss terms
    are written for [K, N, D]; one model's embeddings are lifted to K = 1 and the
    terms dropped back to scalars.
    """
    name = model.objective.name
    lead = context.shape[:2] if batched else context.shape[:1]
    if name == "swapped":  # swap (x, y) of each sequence with probability 1/2
        coin = model._draw(*lead) > 0
        swap = coin.view(*lead, *[1] * (context.dim() - len(lead)))
        context, target = (
            torch.where(swap, target, context),
            torch.where(swap, context, target),
        )
    if model.objective.ema_target:
        return JEPAStep._loss(model, context, target, return_embeddings)
    lift = (lambda t: t) if batched else (lambda t: t.unsqueeze(0))
    enc, pred = model.online_encoder, model.fwd_predictor
    if model.head is not None:
        sx = enc(context)
        raw = target if model.objective.head == "target" else context
        raw = lift(raw.flatten(len(lead)))
        out = lift(model.head(pred(sx)))
        if out.shape[-1] != raw.shape[-1]:
            raise ValueError(f"out_dim must be {raw.shape[-1]}, got {out.shape[-1]}")
        main, reg = member_mse(out, raw), None
        sy = enc(target).detach() if return_embeddings else None
    else:
        sx, sy = model._encode_both(enc, context, target)
        p, zx, zy = lift(pred(sx)), lift(sx), lift(sy)
        if name == "vicreg":
            wi, wv, wc = VICREG_WEIGHTS
            main = wi * member_mse(p, zy)
            reg = sum(wv * variance_term(z) + wc * covariance_term(z) for z in (zx, zy))
        elif name == "sigreg":
            d = model._draw(model.size, sx.shape[-1], SIGREG_SLICES)
            d = d / d.norm(dim=1, keepdim=True)
            main = (1 - SIGREG_LAMBDA) * member_mse(p, zy)
            reg = SIGREG_LAMBDA * (epps_pulley(zx, d) + epps_pulley(zy, d)) / 2
        else:  # infonce
            main, reg = infonce(p, zy, INFONCE_TEMPERATURE), None
    reg = torch.zeros_like(main) if reg is None else reg
    total = main + reg
    if not batched:
        total, main, reg = total[0], main[0], reg[0]
    if not return_embeddings:
        return total, main, reg
    # target_y: the online embedding of y (no target encoder here), for the logs
    return total, main, reg, {"online_x": sx, "target_y": sy.detach()}


# ----------------------------------------------------------------- the study
def metric_spec() -> dict[str, dict[str, str]]:
    """Unit, split and description of every per-seed metric of a peers study."""
    mse = "MSE, the experiment's units"
    rows = {
        "A_lstsq_heldout": (
            mse,
            "held-out",
            "Protocol A: least squares from f(x) to the first target step",
        ),
        "B_lstsq_heldout": (
            mse,
            "held-out",
            "Protocol B: least squares from P_fwd(f(x)) to the first target step",
        ),
        "B_adam_heldout": (mse, "held-out", "Protocol B with the paper's Adam probe"),
        "loss_last100_fwd": (
            "the objective's own unit",
            "train",
            "main term, mean of the last 100 steps",
        ),
        "loss_last100_bwd": (
            "the objective's own unit",
            "train",
            "backward or regulariser term, mean of the last 100 steps (0: none)",
        ),
        "effective_rank": (
            "effective rank (1 to embed_dim)",
            "held-out",
            "exp of the entropy of the normalised singular values of centred f(x) (Roy & Vetterli 2007)",
        ),
        "embed_std_mean": (
            "std of one embedding dimension",
            "held-out",
            "per-dimension std of f(x), mean over dimensions",
        ),
        "embed_std_min": (
            "std of one embedding dimension",
            "held-out",
            "the least-varying dimension's std",
        ),
        "norm_final": ("L2 norm", "train", "mean norm of f(x) at the last logged step"),
        "norm_growth_first_half": (
            "ratio",
            "train",
            "mean norm of f(x) at mid-training / at the start",
        ),
        "norm_growth_second_half": (
            "ratio",
            "train",
            "mean norm of f(x) at the end / at mid-training",
        ),
        "target_cosine": (
            "cosine similarity",
            "held-out",
            "mean cosine of online f(y) and target f_bar(y) (null: no target encoder)",
        ),
    }
    return {
        k: {"unit": u, "split": s, "description": d} for k, (u, s, d) in rows.items()
    }


def _health(model: JEPA, split: Any, ema_target: bool) -> dict[str, float]:
    dev = next(model.parameters()).device
    feats = model.encode(split.context.to(dev))
    out = {
        k: v for k, v in embedding_diagnostics(feats).items() if k != "dead_dim_frac"
    }
    out["target_cosine"] = float("nan")
    if ema_target:
        y = split.target.to(dev)
        with torch.no_grad():
            tgt = model.target_encoder(y)
        out["target_cosine"] = float(
            F.cosine_similarity(model.encode(y), tgt, dim=-1).mean()
        )
    return out


def peers_chunk(fields: dict[str, Any]) -> dict[str, Any]:
    """Train and score one chunk (one objective, one learning rate, runs [[tau, seed]])
    as one batched ensemble; returns one record per run and the training speed. Runs in
    this process or in a Ray worker; depends only on ``fields`` and the hardware."""
    torch.set_num_threads(fields["threads"])
    exp = registry.experiment(fields["experiment"])
    obj = objective(fields["objective"])
    seeds = sorted({s for _, s in fields["runs"]})
    data = {s: exp.seed_data(s) for s in seeds}
    runs = []
    for tau, s in fields["runs"]:
        _, tc = exp.mode_configs(
            "expressive",
            alpha=obj.alpha,
            ema_momentum=float(tau),
            seed=int(s),
            num_steps=fields["num_steps"],
            lr=fields["lr"],
            device=fields["device"],
            batch_size=exp.train["batch_size"] * obj.batch_factor,
            num_threads=fields["threads"],
            progress=False,
        )
        runs.append(Run("expressive", tc, obj.name))
    out_dim = exp.model_config("expressive").input_dim
    build = lambda models: PeerEnsemble(models, obj.name, seeds[0], out_dim)
    t0 = time.perf_counter()
    trained = train_runs(exp, runs, data, max_batch=len(runs), ensemble=build)
    t_train = time.perf_counter() - t0
    scores = forecast_scores(trained, data, ("A", "B"), ("B",), fields["probe_epochs"])
    spec = metric_spec()
    records = []
    for i, tr in enumerate(trained):
        metrics = {k: float("nan") for k in spec}
        if tr.model is not None:
            hm = history_metrics(tr.history)
            hm |= _health(tr.model, data[tr.run.train.seed].test, obj.ema_target)
            metrics = {
                k: float(scores.scores[k][i] if k in scores.scores else hm[k])
                for k in spec
            }
        records.append({"diverged_at": tr.diverged_at, "metrics": metrics})
    steps = len(runs) * fields["num_steps"]
    return _clean(
        {
            "records": records,
            "seconds_train": t_train,
            "member_steps_per_second": steps / max(t_train, 1e-9),
        },
        digits=5,
    )


@dataclass(frozen=True)
class PeersSpec:
    """A peers study: its experiment, objectives, scored and validation seeds, and how
    it runs. ``None`` fields take the paper's settings (or ``QUICK`` with ``quick``)."""

    experiment: str
    objectives: Sequence[str] = tuple(OBJECTIVES)
    seeds: Sequence[int] = tuple(range(10))
    validation_seeds: Sequence[int] = VALIDATION_SEEDS
    num_steps: int | None = None
    probe_epochs: int | None = None
    quick: bool = False
    device: str = "auto"
    threads: int = 1

    def resolved(self) -> PeersSpec:
        """This spec checked (ValueError naming the parameter and the allowed values)
        with every default filled in."""
        check_choice("experiment", self.experiment, PEER_EXPERIMENTS)
        if not self.objectives:
            raise ValueError(
                f"objectives must name at least one of {tuple(OBJECTIVES)}"
            )
        for name in self.objectives:
            objective(name)
        for field, seeds in (
            ("seeds", self.seeds),
            ("validation_seeds", self.validation_seeds),
        ):
            if not seeds or len(set(seeds)) != len(seeds):
                raise ValueError(
                    f"{field} must be a non-empty list without repeats, got {list(seeds)}"
                )
            for s in seeds:
                check_int(f"{field}[...]", s, 0)
        if set(self.seeds) & set(self.validation_seeds):
            raise ValueError(
                "validation_seeds must not share a seed with seeds (the search must not "
                f"see the scored seeds), both hold {sorted(set(self.seeds) & set(self.validation_seeds))}"
            )
        exp = registry.experiment(self.experiment)
        steps, epochs = self.num_steps, self.probe_epochs
        if steps is None:
            steps = QUICK["num_steps"] if self.quick else exp.train["num_steps"]
        if epochs is None:
            epochs = QUICK["probe_epochs"] if self.quick else exp.probe_epochs
        check_int("num_steps", steps, 1, 100_000)
        check_int("probe_epochs", epochs, 1, 10_000)
        check_int("threads", self.threads, 1, 64)
        resolve_device(self.device)
        return PeersSpec(
            self.experiment,
            tuple(dict.fromkeys(self.objectives)),
            tuple(self.seeds),
            tuple(self.validation_seeds),
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
            "experiment": self.experiment,
            "quick": self.quick,
            "seeds": [int(s) for s in self.seeds],
        }


def _chunk(spec: PeersSpec, name: str, lr: float, runs: list, device: str) -> Chunk:
    fields = {
        "kind": "peers",
        "experiment": spec.experiment,
        "objective": name,
        "lr": lr,
        "runs": runs,
        "num_steps": spec.num_steps,
        "probe_epochs": spec.probe_epochs,
        "device": device,
        "threads": spec.threads,
        "code": code_version(),
        "torch": torch.__version__,
    }
    return Chunk(fields, f"{spec.experiment} {name} lr={lr:g} ({len(runs)} runs)")


def _search_lrs(spec: PeersSpec) -> list[float]:
    base = registry.experiment(spec.experiment).train["lr"]
    return [float(f"{base * f:.6g}") for f in SEARCH["lr_factors"]]


def peers(
    spec: PeersSpec,
    log: Callable[[str], None] = print,
    cache_dir: Path | str | None = None,
    cluster: Cluster | None = None,
) -> dict[str, Any]:
    """Train and score every objective of ``spec`` on its seeds (one batched ensemble
    per objective), the classic lr x tau search on the validation seeds, then classic
    JEPA at the chosen pair on the scored seeds; returns the JSON-ready dict.

    Why so long: the two rounds of chunks (objectives and search, then the tuned
    control that needs the search's choice) and the assembly of the JSON, in order.
    """
    spec = spec.resolved()
    dev = resolve_device(spec.device).type
    exp = registry.experiment(spec.experiment)
    tau0, lr0 = exp.train["ema_momentum"], exp.train["lr"]
    t0 = time.perf_counter()
    cache = ChunkCache(cache_dir, log)
    plain = [n for n in spec.objectives if n != "tuned_classic"]
    chunks = [_chunk(spec, n, lr0, [[tau0, s] for s in spec.seeds], dev) for n in plain]
    lrs, taus = _search_lrs(spec), list(SEARCH["ema_momentum"])
    want_search = "tuned_classic" in spec.objectives
    if want_search:
        for lr in lrs:
            runs = [[t, s] for t in taus for s in spec.validation_seeds]
            chunks.append(_chunk(spec, "classic", lr, runs, dev))
    results, info = run_chunks(
        peers_chunk, chunks, cache, cluster, spec.threads, log=log
    )
    by_name = dict(zip(plain, results[: len(plain)]))
    search = None
    if want_search:
        nv = len(spec.validation_seeds)
        grid = []
        for r in results[len(plain) :]:
            b = [rec["metrics"]["B_lstsq_heldout"] for rec in r["records"]]
            grid.append([_geomean(b[j * nv : (j + 1) * nv]) for j in range(len(taus))])
        i, j = np.unravel_index(
            np.nanargmin(np.asarray(grid, float)), (len(lrs), len(taus))
        )
        chosen = {"lr": lrs[i], "ema_momentum": taus[j]}
        search = {
            "lr": lrs,
            "ema_momentum": taus,
            "scores": grid,
            "chosen": chosen,
            "validation_seeds": list(spec.validation_seeds),
        }
        tuned = _chunk(
            spec,
            "tuned_classic",
            chosen["lr"],
            [[chosen["ema_momentum"], s] for s in spec.seeds],
            dev,
        )
        more, info2 = run_chunks(
            peers_chunk, [tuned], cache, cluster, spec.threads, log=log
        )
        by_name["tuned_classic"] = more[0]
        for k in ("chunks", "from_cache", "computed"):
            info[k] += info2[k]
    results_json = {}
    for name in spec.objectives:
        r = by_name[name]
        recs = r["records"]
        results_json[name] = {
            "diverged_at": [x["diverged_at"] for x in recs],
            "per_seed": {k: [x["metrics"][k] for x in recs] for k in metric_spec()},
            "member_steps_per_second": r["member_steps_per_second"],
        }
        log(
            f"{spec.experiment} {name:16s}: {r['member_steps_per_second']:,.0f} member-steps/s"
        )
    seconds = time.perf_counter() - t0
    mc, tc = exp.mode_configs(
        "expressive",
        num_steps=spec.num_steps,
        device=dev,
        num_threads=spec.threads,
        progress=False,
    )
    out = {
        "schema": SCHEMA_VERSION,
        "experiment": spec.experiment,
        "quick": spec.quick,
        "command": "python -m bijepa_nb.peers " + " ".join(sys.argv[1:])
        if sys.argv and sys.argv[0].endswith("peers.py")
        else "bijepa_nb.experiments.peers.peers()",
        "seconds": round(seconds, 1),
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": dev,
            "threads": spec.threads,
        },
        "execution": info,
        "settings": {
            "model": mc.to_dict(),
            "train": {
                k: v for k, v in tc.to_dict().items() if k not in ("alpha", "seed")
            },
            "probe_epochs": spec.probe_epochs,
            "vicreg_weights": list(VICREG_WEIGHTS),
            "sigreg_lambda": SIGREG_LAMBDA,
            "sigreg_slices": SIGREG_SLICES,
            "sigreg_knots": SIGREG_KNOTS,
            "infonce_temperature": INFONCE_TEMPERATURE,
        },
        "seeds": list(spec.seeds),
        "validation_seeds": list(spec.validation_seeds),
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
        "metrics": metric_spec(),
        "results": results_json,
        "search": search,
        "baselines": _forecast_baselines(spec.experiment, list(spec.seeds)),
    }
    out = _clean(out, digits=5)
    validate(out)
    return out


def _geomean(values: Sequence[float | None]) -> float:
    v = np.asarray([np.nan if x is None else x for x in values], float)
    return (
        float(np.exp(np.mean(np.log(v))))
        if np.all(np.isfinite(v) & (v > 0))
        else math.inf
    )


def validate(result: dict[str, Any]) -> None:
    """Raise ValueError naming the first field that does not follow the schema."""

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(f"peers JSON: {what}")

    need(result.get("schema") == SCHEMA_VERSION, f"schema must be {SCHEMA_VERSION!r}")
    need(
        result.get("experiment") in PEER_EXPERIMENTS,
        f"experiment must be one of {PEER_EXPERIMENTS}",
    )
    need(isinstance(result.get("quick"), bool), "quick must be a bool")
    seeds = result.get("seeds")
    need(isinstance(seeds, list) and len(seeds) > 0, "seeds must be a non-empty list")
    n = len(seeds)
    metrics = result.get("metrics", {})
    check_metrics(metrics, need)
    objs, res = result.get("objectives", {}), result.get("results", {})
    need(
        bool(objs) and set(objs) <= set(OBJECTIVES),
        f"objectives must be among {tuple(OBJECTIVES)}",
    )
    need(set(res) == set(objs), "results must hold exactly the listed objectives")
    for name, r in res.items():
        need(
            isinstance(r.get("diverged_at"), list) and len(r["diverged_at"]) == n,
            f"results[{name!r}].diverged_at needs one entry per seed",
        )
        need(
            set(r.get("per_seed", {})) == set(metrics),
            f"results[{name!r}].per_seed must hold exactly the described metrics",
        )
        for k, v in r["per_seed"].items():
            need(
                isinstance(v, list)
                and len(v) == n
                and all(x is None or isinstance(x, (int, float)) for x in v),
                f"results[{name!r}].per_seed[{k!r}] needs one number or null per seed",
            )
        need(
            isinstance(r.get("member_steps_per_second"), (int, float)),
            f"results[{name!r}].member_steps_per_second must be a number",
        )
    s = result.get("search")
    need(
        (s is None) == ("tuned_classic" not in objs),
        "search is null exactly when tuned_classic is not run",
    )
    if s is not None:
        need(
            s["chosen"]["lr"] in s["lr"]
            and s["chosen"]["ema_momentum"] in s["ema_momentum"],
            "search.chosen must be a point of the search grid",
        )
        need(
            len(s["scores"]) == len(s["lr"])
            and all(len(row) == len(s["ema_momentum"]) for row in s["scores"]),
            "search.scores must be [lr][ema_momentum]",
        )
        need(
            not set(s["validation_seeds"]) & set(seeds),
            "search.validation_seeds must not overlap seeds",
        )
    for name, b in result.get("baselines", {}).items():
        need(
            isinstance(b.get("per_seed"), list) and len(b["per_seed"]) == n,
            f"baselines[{name!r}].per_seed needs one value per seed",
        )
