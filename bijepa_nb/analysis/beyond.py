"""Beyond the paper (§5): adaptive alpha, anomaly scores, explosion mechanics, and data for them.

- ``information`` / ``adaptive_alpha``: Eq. 13, alpha = I(x) / (I(x) + I(y)), with I()
  estimated from the data of each view.
- ``CorruptedTargetStream`` / ``corrupt``: a target view that is much noisier and has
  missing (zeroed) steps, the setting where Eq. 13 should matter.
- ``roc_auc``, ``inconsistency_scores``, ``one_step_residual_scores`` and the Lorenz
  violations ``rho_jump``, ``reverse_target``, ``spike``: anomaly detection by
  forward-backward inconsistency.
- ``MonitoredEnsemble``: an ``Ensemble`` that records the spectral radius of the
  linearised predictors while it trains (the §5.3 mechanism).
- ``lorenz_horizon_data``: Lorenz windows whose target lies further ahead, for the
  stochastic predictor (``bijepa_nb.experiments.stochastic``).
- Chapter 9's machinery, one function per section: ``beats`` (the verdict of "A beats
  B" on paired seeds), ``backward_inference`` and ``raw_backward`` (Section 1),
  ``known_noise_views``, ``degraded_data`` and ``alpha_scores`` (2), ``anomaly_aucs``
  (5), ``monitor_records``, ``explosion_window`` and ``loop_readings`` (6). Models are
  trained by ``pipeline.train_runs``; these functions only score them.
- The chapter's family of verdicts, saved per idea by its section pages:
  ``verdict_record`` / ``save_idea_verdicts`` (one JSON file per seed set) and
  ``family_rows`` (Holm's correction over the family, raw and corrected words).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..core.config import LorenzConfig, check_float, check_int
from ..core.data import (
    LorenzData,
    Split,
    last_context_step,
    lorenz_step,
    lorenz_trajectories,
    make_generator,
)
from ..core.models import JEPA
from ..core.probes import lstsq_probe
from ..core.training import History
from ..experiments.ensemble import Ensemble
from ..experiments.pipeline import Trained, forecast_scores
from ..experiments.registry import SeedData
from . import stats, verdicts

# ------------------------------------------------------------------ Eq. 13: adaptive alpha


#: Difference orders tried by ``noise_variance`` (order="auto"), highest first.
NOISE_ORDERS = (6, 4, 2)


def difference_noise_variance(
    view: torch.Tensor, mask: torch.Tensor, order: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel noise variance from differences of ``order`` k, and how many were used: ([C], [C]).

    The k-th difference d[t] = sum_j (-1)^j C(k, j) x[t + j] of white noise of variance v
    has variance C(2k, k) v (6 v for k = 2, Gasser et al. 1986; 70 v for k = 4; 924 v for
    k = 6). A smooth signal adds its own k-th difference, which shrinks like
    (omega dt)^(2k): the higher the order, the smaller this curvature bias, but the fewer
    runs of k + 1 consecutive observed steps there are. view, mask: [N, T, C].
    """
    check_int("order", order, 1)
    t = view.shape[1]
    if t < order + 1:
        raise ValueError(
            f"difference order {order} needs windows of at least {order + 1} steps, got {t}"
        )
    d = sum(
        (-1) ** j * math.comb(order, j) * view[:, j : t - order + j]
        for j in range(order + 1)
    )
    ok = mask[:, : t - order]
    for j in range(1, order + 1):
        ok = ok * mask[:, j : t - order + j]
    n = ok.sum((0, 1))
    var = (d.square() * ok).sum((0, 1)) / (math.comb(2 * order, order) * n.clamp(min=1))
    return var, n


def noise_variance(
    view: torch.Tensor,
    mask: torch.Tensor,
    order: int | str = "auto",
    min_runs: int = 500,
) -> torch.Tensor:
    """Per-channel noise variance of a view: [C]. view, mask: [N, T, C].

    order="auto" (the default) uses, per channel, the highest difference order in
    ``NOISE_ORDERS`` with at least ``min_runs`` complete runs of observed steps, and order
    2 where none has that many: high orders remove the signal's curvature, which
    dominates second differences on a coarsely sampled sine (chapter 9 validates both on
    views of known noise). An integer order forces that order
    (``difference_noise_variance``). Order 2 needs three consecutive observed steps.
    """
    if order != "auto":
        var, n = difference_noise_variance(view, mask, int(order))  # type: ignore[arg-type]
        if bool((n == 0).any()):
            raise ValueError(
                f"information: a channel has no {int(order) + 1} consecutive observed steps, so its noise level cannot be estimated"
            )  # type: ignore[arg-type]
        return var
    check_int("min_runs", min_runs, 1)
    var2, n2 = difference_noise_variance(view, mask, 2)
    if bool((n2 == 0).any()):
        raise ValueError(
            "information: a channel has no three consecutive observed steps, so its noise level cannot be estimated"
        )
    out, chosen = var2.clone(), torch.zeros_like(n2, dtype=torch.bool)
    for k in NOISE_ORDERS:
        if k == 2 or view.shape[1] < k + 1:
            continue
        var, n = difference_noise_variance(view, mask, k)
        use = (n >= min_runs) & ~chosen
        out, chosen = torch.where(use, var, out), chosen | use
    return out


def information(
    view: torch.Tensor,
    mask: torch.Tensor | None = None,
    max_snr: float = 1e6,
    order: int | str = "auto",
) -> float:
    """Estimated information content of one view, in bits per window (the I() of Eq. 13).

    view: [N, T] or [N, T, C] windows (N windows of T steps, C channels); mask: same shape,
    1 where a step was observed, 0 where it is missing. Without a mask, exact zeros are
    taken as missing steps (how ``corrupt`` marks them).

        I(view) = T * rho * sum_c 1/2 log2(1 + SNR_c)

    rho: the fraction of observed steps; SNR_c = signal variance / noise variance of channel
    c, the noise variance from differences of the data (``noise_variance``; ``order``
    "auto" by default; 2 gives plain second differences, which overestimate the noise of
    smooth views) and the signal variance as the observed
    variance minus it. 1/2 log2(1 + SNR) is the capacity of a
    Gaussian channel: the bits one observed step can carry. A view with nothing observed
    has I = 0. SNR is capped at ``max_snr`` (a noise-free view would have infinite I).
    """
    if not isinstance(view, torch.Tensor) or view.dim() not in (2, 3):
        raise ValueError(
            f"view must be a tensor [N, T] or [N, T, C], got {getattr(view, 'shape', type(view).__name__)}"
        )
    check_float("max_snr", max_snr, 0.0, None, low_open=True)
    v = view.detach().double()
    v = v.unsqueeze(-1) if v.dim() == 2 else v
    if mask is None:
        m = (v != 0).double()
    else:
        if mask.shape != view.shape:
            raise ValueError(
                f"mask must have the shape of view {tuple(view.shape)}, got {tuple(mask.shape)}"
            )
        m = mask.detach().double()
        m = m.unsqueeze(-1) if m.dim() == 2 else m
        if bool(((m != 0) & (m != 1)).any()):
            raise ValueError("mask must hold only 0 (missing) and 1 (observed)")
    if v.shape[0] < 1 or v.shape[1] < 3:
        raise ValueError(
            f"view needs at least one window of at least 3 steps, got shape {tuple(view.shape)}"
        )
    if not bool(torch.isfinite(v).all()):
        raise ValueError("view must be finite (no NaN or inf)")
    rho = float(m.mean())
    if rho == 0.0:
        return 0.0
    noise = noise_variance(v * m, m, order)  # [C]
    n_obs = m.sum((0, 1))
    mean = (v * m).sum((0, 1)) / n_obs
    total = ((v - mean).square() * m).sum((0, 1)) / n_obs
    signal = (total - noise).clamp(min=0.0)
    snr = torch.where(
        noise > 0, signal / noise.clamp(min=1e-300), torch.full_like(signal, max_snr)
    ).clamp(max=max_snr)
    bits = 0.5 * torch.log2(1.0 + snr)
    return float(v.shape[1] * rho * bits.sum())


def adaptive_alpha(info_x: float, info_y: float) -> float:
    """Eq. 13: alpha = I(x) / (I(x) + I(y)), the forward weight of Eq. 8.

    A view with no information gets no weight on the side where it is the *input*: I(y) = 0
    gives alpha = 1 (classic JEPA, no backward loss), I(x) = 0 gives alpha = 0.
    """
    check_float("info_x", info_x, 0.0)
    check_float("info_y", info_y, 0.0)
    if info_x + info_y == 0:
        raise ValueError(
            "adaptive_alpha: both views carry no information (I(x) = I(y) = 0): alpha is undefined"
        )
    return float(info_x / (info_x + info_y))


def alpha_from_views(
    context: torch.Tensor,
    target: torch.Tensor,
    context_mask: torch.Tensor | None = None,
    target_mask: torch.Tensor | None = None,
    order: int | str = "auto",
) -> tuple[float, float, float]:
    """(alpha, I(x), I(y)) of Eq. 13 from samples of the two views (see ``information``;
    ``order``: the difference order of the noise estimate)."""
    ix = information(context, context_mask, order=order)
    iy = information(target, target_mask, order=order)
    return adaptive_alpha(ix, iy), ix, iy


def corrupt(
    view: torch.Tensor, noise_std: float, missing: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Extra Gaussian noise and missing steps: view [N, T, ...] -> (corrupted, mask [N, T, ...]).

    Every step is dropped (set to 0, mask 0) independently with probability ``missing``;
    the kept steps get N(0, noise_std^2) noise. The random draws are made on the CPU.
    """
    check_float("noise_std", noise_std, 0.0)
    check_float("missing", missing, 0.0, 1.0)
    cpu = view.detach().cpu()
    noise = noise_std * torch.randn(cpu.shape, generator=generator, dtype=cpu.dtype)
    keep = (torch.rand(cpu.shape[:2], generator=generator) >= missing).to(cpu.dtype)
    keep = keep.reshape(keep.shape + (1,) * (cpu.dim() - 2)).expand_as(cpu)
    out = (cpu + noise) * keep
    return out.to(view.device), keep.contiguous().to(view.device)


class CorruptedTargetStream:
    """Wraps a batch stream: every target window is corrupted by ``corrupt``; the context is untouched."""

    def __init__(self, stream, noise_std: float, missing: float, seed: int):
        check_float("noise_std", noise_std, 0.0)
        check_float("missing", missing, 0.0, 1.0)
        self.stream, self.noise_std, self.missing = stream, noise_std, missing
        self.generator = make_generator(seed, "extra")

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        context, target = self.stream.next()
        return context, corrupt(target, self.noise_std, self.missing, self.generator)[0]


# ----------------------------------------------------------------------- ROC AUC


def roc_auc(
    negatives: torch.Tensor | np.ndarray, positives: torch.Tensor | np.ndarray
) -> float:
    """Area under the ROC curve for "higher score = anomaly", by ranks (Mann-Whitney U).

    AUC = P(score of a positive > score of a negative) + 1/2 P(tie): tied scores share
    their average rank. negatives, positives: 1-D arrays of scores (each non-empty, finite).
    """
    neg = np.asarray(negatives, dtype=float).ravel()
    pos = np.asarray(positives, dtype=float).ravel()
    if neg.size == 0 or pos.size == 0:
        raise ValueError(
            f"roc_auc needs at least one negative and one positive score, got {neg.size} and {pos.size}"
        )
    if not (np.isfinite(neg).all() and np.isfinite(pos).all()):
        raise ValueError("roc_auc: scores must be finite")
    scores = np.concatenate([neg, pos])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks (1-based) over runs of ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[len(neg) :].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(neg) * len(pos)))


# ------------------------------------------------------------- anomaly detection


@torch.no_grad()
def inconsistency_scores(model: JEPA, split: Split) -> dict[str, torch.Tensor]:
    """Per-sequence prediction errors in embedding space, each [N] (eval mode, no grad).

    fwd = ||P_fwd(f(x)) - f_bar(y)||^2 and, for BiJEPA, bwd = ||P_bwd(f(y)) - f_bar(x)||^2;
    total = fwd + bwd (BiJEPA) or fwd (classic JEPA: its only consistency check).
    """
    device = next(model.parameters()).device
    x, y = split.context.to(device), split.target.to(device)
    was = model.training
    model.eval()
    try:
        fwd = (
            (model.fwd_predictor(model.online_encoder(x)) - model.target_encoder(y))
            .square()
            .sum(-1)
        )
        out = {"fwd": fwd.cpu(), "total": fwd.cpu()}
        if model.bidirectional:
            bwd = (
                (model.bwd_predictor(model.online_encoder(y)) - model.target_encoder(x))
                .square()
                .sum(-1)
            )  # type: ignore[misc]
            out["bwd"], out["total"] = bwd.cpu(), (fwd + bwd).cpu()
        return out
    finally:
        model.train(was)


def _states(split: Split) -> torch.Tensor:
    """Context and target joined in time: [N, C + T', D]."""
    n = len(split)
    return torch.cat(
        (
            split.context.reshape(n, split.context.shape[1], -1),
            split.target.reshape(n, split.target.shape[1], -1),
        ),
        1,
    )


class OneStepLinear:
    """Raw-state baseline: s[t+1] ~ A phi(s[t]) + b fitted by least squares on the transitions of a pool.

    phi is the identity here (a linear one-step map); ``OneStepQuadratic`` adds the
    products of state coordinates.
    """

    def __init__(self, pool: Split):
        s = _states(pool).double()
        x = self.features(s[:, :-1].reshape(-1, s.shape[-1]))
        self.probe = lstsq_probe(x, s[:, 1:].reshape(-1, s.shape[-1]))

    @staticmethod
    def features(states: torch.Tensor) -> torch.Tensor:
        """phi(s): [M, D] -> [M, F]."""
        return states

    def scores(self, split: Split) -> torch.Tensor:
        """Mean squared one-step residual over every transition of each sequence: [N]."""
        s = _states(split).double().cpu()
        pred = self.probe(self.features(s[:, :-1].reshape(-1, s.shape[-1]))).reshape(
            s[:, 1:].shape
        )
        return (pred - s[:, 1:]).square().sum(-1).mean(-1).float()


class OneStepQuadratic(OneStepLinear):
    """Raw-state baseline with phi(s) = (s, s_i s_j for i <= j): [M, D] -> [M, D + D(D+1)/2].

    An explicit Euler step of the Lorenz system is exactly quadratic in the state (also
    after the affine normalisation), so on Euler data this fit is exact up to float
    rounding: the fair raw baseline for the paper's data.
    """

    @staticmethod
    def features(states: torch.Tensor) -> torch.Tensor:
        i, j = torch.triu_indices(states.shape[-1], states.shape[-1])
        return torch.cat((states, states[:, i] * states[:, j]), dim=-1)


def rho_jump(
    split: Split, data: LorenzData, rho: float, cfg: LorenzConfig = LorenzConfig()
) -> Split:
    """A physics violation: the target window re-simulated from the last context state with a different rho.

    The first target state is one Euler step after the last context state, as in the data;
    from there the system follows ``rho`` instead of cfg.rho. Same normalisation as ``data``.
    """
    check_float("rho", rho, 0.0, None, low_open=True)
    jump = replace(cfg, rho=rho)
    state = data.denormalise(split.context[:, -1].double())
    out = []
    for _ in range(split.target.shape[1]):
        state = lorenz_step(state, jump)
        out.append(state)
    target = ((torch.stack(out, 1) - data.mean) / data.std).to(split.target.dtype)
    return Split(split.context, target, split.labels)


def reverse_target(split: Split) -> Split:
    """A physics violation: the target window played backwards in time."""
    return Split(split.context, split.target.flip(1), split.labels)


def spike(split: Split, magnitude: float, generator: torch.Generator) -> Split:
    """A sensor glitch: one coordinate of one random target step of each sequence moved by +-magnitude."""
    check_float("magnitude", magnitude, 0.0, None, low_open=True)
    n, t = split.target.shape[:2]
    tgt = split.target.clone().reshape(n, t, -1)
    step = torch.randint(0, t, (n,), generator=generator)
    coord = torch.randint(0, tgt.shape[-1], (n,), generator=generator)
    sign = torch.randint(0, 2, (n,), generator=generator).to(tgt.dtype) * 2 - 1
    tgt[torch.arange(n), step, coord] += magnitude * sign.to(tgt.device)
    return Split(split.context, tgt.reshape(split.target.shape), split.labels)


# --------------------------------------------------------- explosion mechanics (§5.3)


def spectral_radius(jac: torch.Tensor) -> torch.Tensor:
    """Largest |eigenvalue| of square matrices: [..., D, D] -> [...]."""
    return torch.linalg.eigvals(jac.double()).abs().amax(-1)


class MonitoredEnsemble(Ensemble):
    """An ``Ensemble`` that, every ``every`` training steps, records the two loops of §5.3.

    1. The predictor loop. At the batch's mean online context embedding m_k of each
       member k it records rho(J_fwd) = spectral radius of dP_fwd/ds at m_k and, for
       BiJEPA, rho(J_loop) of d(P_bwd o P_fwd)/ds at m_k: the loop s_x -> s_y -> s_x.
       The Jacobians come from ``torch.func.jacrev`` on detached inputs.
    2. The encoder-EMA loop over training time. With ``fixed_context`` ([n, ...] context
       windows, the same for every member) it also stores the online embeddings of those fixed
       inputs ([K, n, D]) at every record; ``drift_operators`` fits the linear update
       S_{r+1} ~ S_r M between consecutive records (the h_{t+1} ~ W h_t of §5.3).

    Recording runs without gradients and leaves the training arithmetic unchanged.
    ``records``: dict of lists (one entry per record).
    """

    def __init__(
        self, models, every: int = 50, fixed_context: torch.Tensor | None = None
    ):
        super().__init__(models)
        check_int("every", every, 1)
        self.every, self._calls = every, 0
        self.fixed_context = fixed_context
        self.records: dict[str, list] = {
            "step": [],
            "rho_fwd": [],
            "rho_loop": [],
            "gain_loop": [],
            "snapshot": [],
        }

    def loss(
        self,
        context: torch.Tensor,
        target: torch.Tensor,
        return_embeddings: bool = False,
    ):
        out = super().loss(context, target, return_embeddings=True)
        if self.training:
            if self._calls % self.every == 0:
                self._record(self._calls, out[3]["online_x"].detach())
            self._calls += 1
        return out if return_embeddings else out[:3]

    def _jac(self, fn, mean: torch.Tensor) -> torch.Tensor:
        """Per-member Jacobians of fn at mean [K, D]: [K, D, D]."""
        full = torch.func.jacrev(lambda s: fn(s.unsqueeze(1)).squeeze(1))(
            mean
        )  # [K, D, K, D]
        k = torch.arange(mean.shape[0], device=mean.device)
        return full[k, :, k, :].detach()

    def _record(self, step: int, online_x: torch.Tensor) -> None:
        mean = online_x.mean(1)  # [K, D]
        self.records["step"].append(step)
        self.records["rho_fwd"].append(
            spectral_radius(self._jac(self.fwd_predictor, mean))
        )
        if self.bidirectional:
            loop = lambda s: self.bwd_predictor(self.fwd_predictor(s))
            self.records["rho_loop"].append(spectral_radius(self._jac(loop, mean)))
            with torch.no_grad():  # how much the loop scales the embeddings themselves
                back = loop(online_x)
                self.records["gain_loop"].append(
                    (back.norm(dim=-1).mean(1) / online_x.norm(dim=-1).mean(1)).double()
                )
        if self.fixed_context is not None:
            x = self.fixed_context.to(online_x.device)
            x = x.unsqueeze(0).expand(
                self.size, *x.shape
            )  # the same inputs for every member
            with torch.no_grad():
                self.records["snapshot"].append(
                    self.online_encoder(x).detach().double()
                )

    def record_arrays(self) -> dict[str, np.ndarray]:
        """steps [R] and the recorded quantities [R, K] (snapshots [R, K, n, D]) as numpy arrays."""
        out = {"step": np.asarray(self.records["step"])}
        for key in ("rho_fwd", "rho_loop", "gain_loop", "snapshot"):
            if self.records[key]:
                out[key] = torch.stack(self.records[key]).cpu().numpy()
        return out


def drift_operators(snapshots: np.ndarray) -> dict[str, np.ndarray]:
    """The linearised update of the embeddings over training time, between consecutive records.

    snapshots: [R, K, n, D], the online embeddings of n fixed inputs at R records of K
    members. For every interval r -> r + 1 and member k, least squares fits
    S_{r+1} ~ S_r M (no bias: the h_{t+1} ~ W h_t of §5.3) and returns, each [R - 1, K]:
    ``rho`` = spectral radius of M; ``r2`` = the fraction of the variance of S_{r+1} the
    fit explains; ``growth`` = mean ||S_{r+1}|| / mean ||S_r|| (row norms), the growth
    of the embeddings it should explain.
    """
    s = torch.as_tensor(np.asarray(snapshots), dtype=torch.float64)
    if s.dim() != 4 or s.shape[0] < 2:
        raise ValueError(
            f"snapshots must be [R >= 2, K, n, D], got shape {tuple(s.shape)}"
        )
    a, b = s[:-1], s[1:]  # [R-1, K, n, D]
    m = torch.linalg.lstsq(a, b).solution  # [R-1, K, D, D]
    resid = b - a @ m
    total = (b - b.mean(-2, keepdim=True)).square().sum((-2, -1))
    r2 = 1.0 - resid.square().sum((-2, -1)) / total
    growth = b.norm(dim=-1).mean(-1) / a.norm(dim=-1).mean(-1)
    return {
        "rho": spectral_radius(m).numpy(),
        "r2": r2.numpy(),
        "growth": growth.numpy(),
    }


# ------------------------------------------------------------ Lorenz, far horizon


def lorenz_horizon_data(
    seed: int, gap: int, cfg: LorenzConfig = LorenzConfig()
) -> LorenzData:
    """Lorenz windows whose target starts ``gap`` steps after the context ends.

    Trajectories of context_len + gap + (seq_len - context_len) states; context = the first
    context_len states, target = the last seq_len - context_len. The same generators as
    ``lorenz_data(cfg, seed)``, so the contexts are exactly that function's; normalised with
    the training pool's statistics (of the full trajectories).
    """
    check_int("gap", gap, 0)
    tgt_len = cfg.seq_len - cfg.context_len
    long_cfg = replace(cfg, seq_len=cfg.context_len + gap + tgt_len)
    raw = {
        s: lorenz_trajectories(n, make_generator(seed, s), long_cfg)
        for s, n in (
            ("train", cfg.n_train),
            ("probe", cfg.n_probe),
            ("test", cfg.n_test),
        )
    }
    mean, std = raw["train"].mean().item(), raw["train"].std().item()
    splits = {
        s: Split(
            ((r[:, : cfg.context_len] - mean) / std).float(),
            ((r[:, -tgt_len:] - mean) / std).float(),
        )
        for s, r in raw.items()
    }
    return LorenzData(splits["train"], splits["probe"], splits["test"], mean, std)


def horizon_time(gap: int, cfg: LorenzConfig = LorenzConfig()) -> float:
    """Time from the last context state to the last target state, in Lorenz time units."""
    return (gap + cfg.seq_len - cfg.context_len) * cfg.dt


# ------------------------------------------------------- verdicts of the chapter


# ----------------------------------------------------------- 1. inferring the past


def raw_backward(probe: Split, test: Split, states: int | None = None) -> float:
    """Held-out MSE of least squares from the raw target window (its first ``states``
    steps; all by default) to the last context step: one linear map for all sequences."""

    def feats(split: Split) -> torch.Tensor:
        return split.target[:, :states].flatten(1).double()

    def last(split: Split) -> torch.Tensor:
        return last_context_step(split.context).double()

    fit = lstsq_probe(feats(probe), last(probe))
    return fit.mse(feats(test), last(test))


#: The ways of inferring the last context step from the target window (Section 1).
BACKWARD = {
    "bijepa": "BiJEPA, P_bwd(f(y))",
    "encoder": "BiJEPA, f(y) alone",
    "classic": "classic JEPA, f(y)",
    "raw": "raw target window",
}


def backward_inference(
    bijepa: Sequence[Trained], classic: Sequence[Trained], data: Mapping[int, SeedData]
) -> dict[str, np.ndarray]:
    """Held-out MSE of the last context step inferred from the target window, per seed.

    Keys: the labels of ``BACKWARD``. BiJEPA reads it through its backward predictor
    (Protocol "B_bwd") or from its encoder alone ("A_bwd"); classic JEPA has only its
    encoder; the raw baseline fits least squares on the raw window. Every read-out is a
    least-squares probe fitted on the probe set and scored on the test set.
    """
    bi = forecast_scores(bijepa, dict(data), ("B_bwd", "A_bwd"), adam=())
    cl = forecast_scores(classic, dict(data), ("A_bwd",), adam=())
    seeds = [t.run.train.seed for t in bijepa]
    return {
        BACKWARD["bijepa"]: bi.scores["B_bwd_lstsq_heldout"],
        BACKWARD["encoder"]: bi.scores["A_bwd_lstsq_heldout"],
        BACKWARD["classic"]: cl.scores["A_bwd_lstsq_heldout"],
        BACKWARD["raw"]: np.array(
            [raw_backward(data[s].probe, data[s].test) for s in seeds]
        ),
    }


# ------------------------------------------------------------------ 2. adaptive alpha


def known_noise_views(
    sine: Split, lorenz: torch.Tensor, target_noise: float, target_missing: float
) -> list[tuple[str, torch.Tensor, torch.Tensor | None, float]]:
    """Views whose noise we know: (name, view, mask or None, true noise variance).

    sine: a split of noise-free sine waves; lorenz: noise-free Lorenz windows [N, T, 3].
    White noise of several levels is added to each; the last two views are the sine
    target degraded as in Section 2 (noise and ``target_missing`` of the steps dropped).
    """
    gen = torch.Generator().manual_seed(0)
    noisy = lambda x, std: x + std * torch.randn(x.shape, generator=gen, dtype=x.dtype)
    x, lor = sine.context.double(), lorenz.double()
    views: list[tuple[str, torch.Tensor, torch.Tensor | None, float]] = [
        (f"sine context, noise std {std}", noisy(x, std), None, std**2)
        for std in (0.01, 0.05, 0.2, 0.5)
    ]
    views += [
        (f"Lorenz context (3 channels), noise std {std}", noisy(lor, std), None, std**2)
        for std in (0.01, 0.05, 0.2)
    ]
    for std in (0.05, target_noise):
        y, mask = corrupt(sine.target.double(), std, target_missing, gen)
        name = f"sine target, noise std {std}, {target_missing:.0%} missing"
        views.append((name, y, mask, std**2))
    return views


def estimated_noise(view: torch.Tensor, mask: torch.Tensor | None, order) -> float:
    """``noise_variance`` of a view [N, T] or [N, T, C], mean over channels."""
    v = view.unsqueeze(-1) if view.dim() == 2 else view
    m = torch.ones_like(v) if mask is None else mask.reshape(v.shape).to(v)
    return float(noise_variance(v * m, m, order).mean())


def degraded_data(
    data: SeedData, noise_std: float, missing: float, seed: int
) -> SeedData:
    """The setting of Section 2: ``data`` with every target window degraded (``corrupt``).

    The training stream corrupts each batch's targets (``CorruptedTargetStream``); the
    probe and test sets get degraded targets once, drawn in that order from ``seed``'s
    "extra" stream, with their masks of observed steps in ``extra["probe_mask"]`` and
    ``extra["test_mask"]``. Contexts stay clean.
    """
    gen = make_generator(seed, "extra")
    sets, masks = {}, {}
    for name in ("probe", "test"):
        split = getattr(data, name)
        target, masks[name] = corrupt(split.target, noise_std, missing, gen)
        sets[name] = Split(split.context, target, split.labels)
    return SeedData(
        lambda b, dev: CorruptedTargetStream(
            data.stream(b, dev), noise_std, missing, seed
        ),
        sets["probe"],
        sets["test"],
        {**data.extra, "probe_mask": masks["probe"], "test_mask": masks["test"]},
    )


def alpha_scores(
    trained: Sequence[Trained],
    clean: Mapping[int, SeedData],
    degraded: Mapping[int, SeedData],
) -> dict[str, dict[str, np.ndarray]]:
    """Scores per run name (one value per seed): "B" and "A", the held-out MSE of the
    clean first target step from the clean context; "bwd", of the last context step read
    from the *degraded* target window (P_bwd for BiJEPA, the encoder for alpha = 1)."""
    fwd = forecast_scores(trained, dict(clean), ("B", "A"), adam=()).scores
    back = forecast_scores(trained, dict(degraded), ("B_bwd", "A_bwd"), adam=()).scores
    out: dict[str, dict[str, list]] = {}
    for i, t in enumerate(trained):
        key = "B_bwd" if t.model is not None and t.model.bidirectional else "A_bwd"
        row = out.setdefault(t.run.name, {"B": [], "A": [], "bwd": []})
        row["B"].append(fwd["B_lstsq_heldout"][i])
        row["A"].append(fwd["A_lstsq_heldout"][i])
        row["bwd"].append(back[f"{key}_lstsq_heldout"][i])
    return {n: {k: np.array(v) for k, v in r.items()} for n, r in out.items()}


# ------------------------------------------------------- 5. flagging violations


#: The injected violations and the anomaly scores compared in Section 5.
VIOLATIONS = ("parameter jump", "time reversal", "spike")
DETECTORS = (
    "BiJEPA fwd + bwd",
    "BiJEPA fwd only",
    "classic JEPA fwd",
    "raw one-step residual, linear",
    "raw one-step residual, quadratic",
)


def anomaly_aucs(
    bijepa: JEPA,
    classic: JEPA,
    data: LorenzData,
    seed: int,
    rho_after: float,
    spike_size: float,
    cfg: LorenzConfig = LorenzConfig(),
) -> dict[tuple[str, str], float]:
    """ROC AUC of every detector of ``DETECTORS`` for every violation of ``VIOLATIONS``.

    The first half of ``data.test`` stays normal; the second half gets each violation in
    turn (``rho_jump`` to ``rho_after``, ``reverse_target``, ``spike`` of ``spike_size``
    drawn from ``seed``'s "extra" stream). The raw one-step residuals are fitted on the
    transitions of ``data.train``.
    """
    half = len(data.test) // 2
    normal = Split(data.test.context[:half], data.test.target[:half])
    rest = Split(data.test.context[half:], data.test.target[half:])
    bad = {
        "parameter jump": rho_jump(rest, data, rho_after, cfg),
        "time reversal": reverse_target(rest),
        "spike": spike(rest, spike_size, make_generator(seed, "extra")),
    }
    score = {
        DETECTORS[0]: lambda sp: inconsistency_scores(bijepa, sp)["total"],
        DETECTORS[1]: lambda sp: inconsistency_scores(bijepa, sp)["fwd"],
        DETECTORS[2]: lambda sp: inconsistency_scores(classic, sp)["total"],
        DETECTORS[3]: OneStepLinear(data.train).scores,
        DETECTORS[4]: OneStepQuadratic(data.train).scores,
    }
    out = {}
    for name, fn in score.items():
        ref = fn(normal)
        for v in VIOLATIONS:
            out[v, name] = roc_auc(ref, fn(bad[v]))
    return out


# --------------------------------------------------------- 6. explosion mechanics


def monitor_records(trained: Sequence[Trained]) -> dict[str, np.ndarray]:
    """The records of ``MonitoredEnsemble`` for these runs, members in the given order:
    steps [R] and the recorded quantities [R, K] (snapshots [R, K, n, D]).

    Every run must have trained in one and the same ``MonitoredEnsemble``
    (``train_runs(..., ensemble=MonitoredEnsemble)``).
    """
    batches = {id(t.batch) for t in trained}
    batch = trained[0].batch
    if len(batches) != 1 or not isinstance(batch, MonitoredEnsemble):
        raise ValueError(
            "trained must come from one MonitoredEnsemble batch "
            "(train_runs(..., ensemble=MonitoredEnsemble))"
        )
    rec = batch.record_arrays()
    members = [t.member for t in trained]
    return {k: v if k == "step" else v[:, members] for k, v in rec.items()}


#: Where the window of the explosion rule starts: chapter 3's, ``verdicts.bounded_claim``.
WINDOW_START = 0.25


def explosion_window(
    histories: Sequence[History],
    records: Mapping[str, np.ndarray],
    start: float = WINDOW_START,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The loop gains of §5.3 over the window of the book's explosion rule, one per run.

    The window runs from fraction ``start`` of training to its end, the window in which
    ``verdicts.bounded_claim`` measures the growth of ||f(x)||. Returns ("growth",
    ``verdicts.norm_growth`` of each history; "loop", the mean rho(J_loop) of the
    predictor round trip over the window's records, reading (a); "drift", the geometric
    mean of rho(M) of the fitted update over its record intervals, reading (b)), each
    [K], and ``drift_operators``'s output over all records.
    """
    check_float("start", start, 0.0, 1.0)
    if start == 1.0:
        raise ValueError("start must be below 1 (a window needs two records), got 1.0")
    drift = drift_operators(records["snapshot"])
    first_rec = int(start * len(records["step"]))
    first_drift = int(start * len(drift["rho"]))
    window = {
        "growth": np.array([verdicts.norm_growth(h, start) for h in histories]),
        "loop": records["rho_loop"][first_rec:].mean(0),
        "drift": np.exp(np.log(drift["rho"][first_drift:]).mean(0)),
    }
    return window, drift


def loop_readings(
    bounded: Mapping[str, verdicts.Comparison],
    windows: Mapping[str, Mapping[str, np.ndarray]],
) -> dict[str, object]:
    """The §5.3 test: does a loop gain above 1 mark the modes whose embeddings explode?

    bounded: mode -> ``verdicts.bounded_claim`` of its runs (the book's one explosion
    rule); windows: mode -> ``explosion_window(...)[0]``. A mode *explodes* unless its
    "stays bounded" verdict holds; reading (a) (b) *predicts* explosion when the 95%
    interval of the geometric mean over seeds of its gain ("loop", "drift"; positive,
    so on a log scale, ``stats.geometric_mean_ci``) over the same window lies above 1. Returns
    "cells" (mode -> (explodes, (a) predicts, (b) predicts)), "wrong" (reading -> modes
    it gets wrong) and "reading" (reading -> "consistent" if none, else "not
    supported").
    """
    if set(bounded) != set(windows):
        raise ValueError(
            f"bounded and windows must name the same modes, got {sorted(bounded)} "
            f"and {sorted(windows)}"
        )
    above = lambda v: verdicts.side(stats.geometric_mean_ci(v), 1.0) == "above"
    cells = {
        mode: (
            bounded[mode].verdict != "holds",
            above(windows[mode]["loop"]),
            above(windows[mode]["drift"]),
        )
        for mode in bounded
    }
    wrong = {
        r: sum(c[0] != c[1 + i] for c in cells.values()) for i, r in enumerate("ab")
    }
    reading = {r: "consistent" if n == 0 else "not supported" for r, n in wrong.items()}
    return {"cells": cells, "wrong": wrong, "reading": reading}


# ------------------------------------------------------ the chapter's family of verdicts


def comparison_pvalue(c: verdicts.Comparison, null: float) -> float:
    """Two-sided p-value of the t-test behind a ``Comparison``'s interval, against ``null``.

    The interval is a Student-t interval: of a mean (``null`` = 0, a difference of
    scores) or, for any other ``null``, of a mean of logs, exponentiated (ratios of
    errors against 1, ``bounded_claim``'s growth against its limit), whose ``std`` is
    that of the logs. The test is the interval's own: p < 1 - level exactly when the
    interval excludes ``null``. NaN for fewer than two seeds.
    """
    from scipy import stats as st

    iv = c.interval
    if iv.n < 2 or not np.isfinite(iv.std):
        return float("nan")
    if null == 0.0:
        centre, ref = iv.mean, 0.0
    else:
        if null < 0 or iv.mean <= 0:
            raise ValueError(f"null must be 0 or positive, got {null!r}")
        centre, ref = math.log(iv.mean), math.log(null)
    if iv.std == 0:
        return 0.0 if centre != ref else 1.0
    t = (centre - ref) / (iv.std / math.sqrt(iv.n))
    return float(2 * st.t.sf(abs(t), iv.n - 1))


def verdict_record(
    groups: Mapping[str, Mapping[str, verdicts.Comparison | str]],
    nulls: Mapping[str, float] | None = None,
) -> dict[str, dict]:
    """Claim -> {"word", and for a ``Comparison`` "mean", "low", "high", "n", "null",
    "p"}: the verdicts of ``groups`` (as ``verdicts.verdict_words`` names them) with what
    the family correction and the replication need. ``nulls``: group -> null value of its
    comparisons (default 1, a ratio; 0 for differences of scores)."""
    words = verdicts.verdict_words(groups)
    out: dict[str, dict] = {}
    for group, comps in groups.items():
        for key, c in comps.items():
            claim = c.claim if isinstance(c, verdicts.Comparison) else key
            name = f"{group}: {claim}"
            rec: dict = {"word": words[name]}
            if isinstance(c, verdicts.Comparison):
                null = float((nulls or {}).get(group, 1.0))
                iv = c.interval
                rec.update(mean=iv.mean, low=iv.low, high=iv.high, n=iv.n, null=null)
                rec["p"] = comparison_pvalue(c, null)
            out[name] = rec
    return out


def save_idea_verdicts(
    path: str | Path, seeds: Sequence[int], idea: str, record: Mapping[str, dict]
) -> None:
    """Merge one idea's verdicts (``verdict_record``) into the JSON file at ``path``.

    The file holds ``{"seeds": [...], "verdicts": {claim: word}, "tests": {claim:
    record}}`` for all six ideas of one seed set (the form ``verdicts.replicate``
    reads). Every claim of ``idea`` (its group names start with ``idea`` and a space or
    a colon) is replaced by ``record``; the other ideas' claims are kept. A file that
    holds other seeds is refused: each seed set has its own file.
    """
    if not isinstance(idea, str) or not idea.isdigit():
        raise ValueError(f"idea must be a section number such as '1', got {idea!r}")
    bad = [c for c in record if _idea_of(c) != idea]
    if bad:
        raise ValueError(f"record must hold only claims of idea {idea}, got {bad}")
    seeds = [int(s) for s in seeds]
    path = Path(path)
    saved = {"seeds": seeds, "verdicts": {}, "tests": {}}
    if path.is_file():
        saved = json.loads(path.read_text())
        if sorted(saved["seeds"]) != sorted(seeds):
            raise ValueError(
                f"{path} holds the verdicts of seeds {saved['seeds']}, this run has "
                f"seeds {seeds}: save them to a file of their own"
            )
    for key in ("verdicts", "tests"):
        kept = {c: v for c, v in saved.get(key, {}).items() if _idea_of(c) != idea}
        saved[key] = kept
    saved["verdicts"].update({c: r["word"] for c, r in record.items()})
    saved["tests"].update({c: dict(r) for c, r in record.items() if "p" in r})
    order = lambda d: dict(sorted(d.items(), key=lambda kv: _idea_of(kv[0])))
    saved = {"seeds": seeds, **{k: order(saved[k]) for k in ("verdicts", "tests")}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=1) + "\n")


def gm_text(values: Sequence[float], digits: int = 3) -> str:
    """ "geometric mean [95% interval]" over seeds of a positive score (an MSE, a ratio):
    ``stats.geometric_mean_ci``, ``digits`` significant digits."""
    iv = stats.geometric_mean_ci(values)
    g = lambda v: f"{v:.{digits}g}"
    return f"{g(iv.mean)} [{g(iv.low)}, {g(iv.high)}]"


def _cell(rec: Mapping | None, word: str, digits: int = 3) -> str:
    """ "mean [low, high]: word" for a saved comparison, the word alone otherwise."""
    if not rec or "mean" not in rec:
        return word
    g = lambda v: f"{v:.{digits}g}"
    return f"{g(rec['mean'])} [{g(rec['low'])}, {g(rec['high'])}]: {word}"


def verdict_rows(
    record: Mapping[str, Mapping], seeds: Sequence[int], path: str | Path | None
) -> tuple[list[str], list[list[str]]]:
    """A page's verdicts as a table: header and rows (claim, this run's interval and
    word, and where ``path`` holds a rerun on other seeds, its interval and word and the
    conclusion both support, by ``verdicts.replicate``'s rule). Without such a rerun
    (no file, the same seeds, or ``path`` None), only this run's column."""
    words = {c: r["word"] for c, r in record.items()}
    rows = verdicts.replicate(words, seeds, path) if path else None
    mine = f"seeds {list(seeds)}"
    if rows is None:
        return ["claim", mine], [[c, _cell(r, r["word"])] for c, r in record.items()]
    saved = json.loads(Path(path).read_text())
    tests = saved.get("tests", {})
    header = ["claim", mine, f"seeds {saved['seeds']}", "conclusion"]
    out = [
        [c, _cell(record[c], w), _cell(tests.get(c), other), both]
        for c, w, other, both in rows
    ]
    return header, out


def _idea_of(claim: str) -> str:
    """The section number a claim's name starts with ("4 near: ..." -> "4")."""
    return claim.split(":")[0].split(" ")[0]


def family_rows(
    tests: Mapping[str, Mapping[str, float]], level: float = 0.95
) -> list[list[str]]:
    """Holm's correction (``stats.holm``) over a family of verdicts: one row per claim
    (claim, raw word, p, Holm-adjusted p, corrected word). ``tests``: claim -> a
    ``verdict_record`` entry with a p-value. A "holds" or "reversed" survives when its
    adjusted p is below 1 - level; otherwise the corrected word is "does not hold"."""
    check_float("level", level, 0.0, 1.0, low_open=True)
    claims = list(tests)
    if not claims:
        raise ValueError("tests must hold at least one claim")
    p = np.array([tests[c]["p"] for c in claims], dtype=float)
    adjusted = stats.holm(p)
    rows = []
    for c, raw, adj in zip(claims, p, adjusted):
        word = tests[c]["word"]
        kept = word if word not in ("holds", "reversed") or adj < 1 - level else None
        rows.append([c, word, f"{raw:.2g}", f"{adj:.2g}", kept or "does not hold"])
    return rows


#: The words that claim something; a conclusion keeps one only where it survives.
RESOLVED = ("holds", "reversed", "consistent")


def conclusions(
    verdicts_path: str | Path, replication_path: str | Path, level: float = 0.95
) -> list[list[str]]:
    """The chapter's conclusion per claim from its two saved runs (``save_idea_verdicts``
    files of seeds 0-4 and 5-9): one row per claim, (claim, word on the first run, word
    on the rerun, Holm's word on each run or "" for a claim without a test, conclusion).

    A claim counts only where both runs give the same word (``verdicts.replicate``) and
    Holm's correction over each run's whole family (``family_rows``) keeps it; a
    resolved word (``RESOLVED``) that fails either check concludes "does not hold"."""
    run, rerun = (
        json.loads(Path(p).read_text()) for p in (verdicts_path, replication_path)
    )
    rows = verdicts.replicate(run["verdicts"], run["seeds"], replication_path)
    if rows is None:
        raise ValueError(
            f"replication_path must hold other seeds than {run['seeds']}, got "
            f"{replication_path}"
        )
    holm = [{r[0]: r[4] for r in family_rows(x["tests"], level)} for x in (run, rerun)]
    out = []
    for claim, word, other, both in rows:
        kept = all(c.get(claim, both) == both for c in holm)
        end = both if kept or both not in RESOLVED else "does not hold"
        out.append([claim, word, other, *(c.get(claim, "") for c in holm), end])
    return out


__all__ = [
    "NOISE_ORDERS",
    "difference_noise_variance",
    "noise_variance",
    "information",
    "adaptive_alpha",
    "alpha_from_views",
    "corrupt",
    "CorruptedTargetStream",
    "roc_auc",
    "inconsistency_scores",
    "OneStepLinear",
    "OneStepQuadratic",
    "rho_jump",
    "reverse_target",
    "spike",
    "spectral_radius",
    "MonitoredEnsemble",
    "drift_operators",
    "lorenz_horizon_data",
    "horizon_time",
    "raw_backward",
    "BACKWARD",
    "backward_inference",
    "known_noise_views",
    "estimated_noise",
    "degraded_data",
    "alpha_scores",
    "VIOLATIONS",
    "DETECTORS",
    "anomaly_aucs",
    "monitor_records",
    "WINDOW_START",
    "explosion_window",
    "loop_readings",
    "comparison_pvalue",
    "verdict_record",
    "save_idea_verdicts",
    "family_rows",
    "RESOLVED",
    "conclusions",
    "verdict_rows",
    "gm_text",
]
