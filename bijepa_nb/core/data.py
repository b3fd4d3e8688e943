"""Data: noisy sine waves, Lorenz trajectories, MNIST left/right halves.

All generators are vectorised (no per-sample Python loop) and seeded through explicit
``torch.Generator`` objects, so the same seed always gives the same data. Data are
generated on the CPU (identical on every device) and moved to the training device.

Streams never overlap: every experiment seed is split with ``numpy.random.SeedSequence``
into independent child seeds for the training stream, the probe set and the test set.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .config import LorenzConfig, SineConfig, check_choice, check_int

#: Streams of one experiment seed; each gets its own child of SeedSequence(seed).
STREAMS = ("train", "probe", "test", "model", "extra")


def stream_seed(seed: int, stream: str) -> int:
    """Independent 63-bit seed for ``stream`` (one of STREAMS) of experiment ``seed``."""
    check_int("seed", seed, 0)
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
    child = np.random.SeedSequence(seed).spawn(len(STREAMS))[STREAMS.index(stream)]
    return int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def make_generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for ``stream`` of experiment ``seed``."""
    return torch.Generator().manual_seed(stream_seed(seed, stream))


# --------------------------------------------------------------------------- sine
def sine_time_grid(cfg: SineConfig) -> torch.Tensor:
    """The time grid linspace(0, t_max, seq_len): [T]."""
    return torch.linspace(0.0, cfg.t_max, cfg.seq_len, dtype=torch.float64)


def sine_sequences(
    n: int,
    generator: torch.Generator,
    cfg: SineConfig = SineConfig(),
    return_params: bool = False,
):
    """``n`` noisy sine waves sin(w t + phi) + eps: [n, T] float32.

    w ~ U(freq_low, freq_high), phi ~ U(0, 2 pi), eps ~ N(0, noise_std^2) on every point.
    With ``return_params`` also returns (w [n], phi [n]).
    """
    check_int("n", n, 1)
    t = sine_time_grid(cfg)
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    freq = cfg.freq_low + (cfg.freq_high - cfg.freq_low) * u[:, :1]
    phase = 2 * math.pi * u[:, 1:]
    noise = cfg.noise_std * torch.randn(
        n, cfg.seq_len, generator=generator, dtype=torch.float64
    )
    seq = (torch.sin(freq * t + phase) + noise).float()
    if return_params:
        return seq, freq[:, 0], phase[:, 0]
    return seq


def split_context_target(
    seq: torch.Tensor, context_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, T, ...] -> context [N, C, ...], target [N, T - C, ...]."""
    return seq[:, :context_len], seq[:, context_len:]


@dataclass
class Split:
    """A fixed set of (context, target) pairs: context [N, C, ...], target [N, T - C, ...]."""

    context: torch.Tensor
    target: torch.Tensor
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.context.shape[0]

    def to(self, device: torch.device | str) -> Split:
        lab = None if self.labels is None else self.labels.to(device)
        return Split(self.context.to(device), self.target.to(device), lab)


class SineStream:
    """A fresh batch of sine waves at every step (Appendix B.2).

    Waves are generated ``chunk_steps`` batches at a time (one vectorised call) and handed
    out one batch per step: every step still sees new, never-repeated sequences, and the
    stream is a pure function of (seed, batch_size, chunk_steps).
    """

    def __init__(
        self,
        cfg: SineConfig,
        seed: int,
        batch_size: int,
        device: torch.device | str = "cpu",
        chunk_steps: int = 50,
    ):
        check_int("batch_size", batch_size, 1)
        check_int("chunk_steps", chunk_steps, 1)
        self.cfg, self.batch_size, self.device, self.chunk_steps = (
            cfg,
            batch_size,
            torch.device(device),
            chunk_steps,
        )
        self.generator = make_generator(seed, "train")
        self._chunk: list[tuple[torch.Tensor, torch.Tensor]] = []

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """context [B, C], target [B, T - C] on the device."""
        if not self._chunk:
            seq = sine_sequences(
                self.batch_size * self.chunk_steps, self.generator, self.cfg
            ).to(self.device, non_blocking=True)
            ctx, tgt = split_context_target(seq, self.cfg.context_len)
            self._chunk = list(
                zip(ctx.split(self.batch_size), tgt.split(self.batch_size))
            )[::-1]
        return self._chunk.pop()


def sine_split(cfg: SineConfig, seed: int, stream: str) -> Split:
    """The probe ("probe", cfg.n_probe waves) or held-out ("test", cfg.n_test) set of ``seed``."""
    if stream not in ("probe", "test"):
        raise ValueError(f"stream must be 'probe' or 'test', got {stream!r}")
    n = cfg.n_probe if stream == "probe" else cfg.n_test
    return Split(
        *split_context_target(
            sine_sequences(n, make_generator(seed, stream), cfg), cfg.context_len
        )
    )


# -------------------------------------------------------------------------- lorenz
def lorenz_step(
    state: torch.Tensor, cfg: LorenzConfig = LorenzConfig()
) -> torch.Tensor:
    """One explicit Euler step of the Lorenz system: state [N, 3] -> [N, 3]."""
    x, y, z = state.unbind(-1)
    deriv = torch.stack(
        (cfg.sigma * (y - x), x * (cfg.rho - z) - y, x * y - cfg.beta * z), dim=-1
    )
    return state + cfg.dt * deriv


def lorenz_derivative(
    state: torch.Tensor, cfg: LorenzConfig = LorenzConfig()
) -> torch.Tensor:
    """The Lorenz vector field (dx/dt, dy/dt, dz/dt) at ``state``: [N, 3] -> [N, 3]."""
    x, y, z = state.unbind(-1)
    return torch.stack(
        (cfg.sigma * (y - x), x * (cfg.rho - z) - y, x * y - cfg.beta * z), dim=-1
    )


def lorenz_step_rk4(
    state: torch.Tensor, cfg: LorenzConfig = LorenzConfig()
) -> torch.Tensor:
    """One classical fourth-order Runge-Kutta step of size cfg.dt: state [N, 3] -> [N, 3].

    Not what the paper integrates (it uses ``lorenz_step``, explicit Euler); its local
    error is O(dt^5) instead of O(dt^2), so at dt = 0.01 it follows the true flow closely.
    """
    h = cfg.dt
    k1 = lorenz_derivative(state, cfg)
    k2 = lorenz_derivative(state + 0.5 * h * k1, cfg)
    k3 = lorenz_derivative(state + 0.5 * h * k2, cfg)
    k4 = lorenz_derivative(state + h * k3, cfg)
    return state + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


#: Integrators of ``lorenz_trajectories``: "euler" (the paper's) or "rk4" (accurate).
LORENZ_INTEGRATORS = {"euler": lorenz_step, "rk4": lorenz_step_rk4}


def lorenz_trajectories(
    n: int,
    generator: torch.Generator,
    cfg: LorenzConfig = LorenzConfig(),
    integrator: str = "euler",
) -> torch.Tensor:
    """``n`` raw (unnormalised) trajectories [n, T, 3] float64.

    Starts ~ U(-init_range, init_range)^3; the state is recorded after each step of
    ``integrator`` ("euler", as the paper, or "rk4"), so the start itself is not part of
    the trajectory (as in the paper's code). Both integrators draw the same starts.
    With ``cfg.burn_in`` > 0 the first ``burn_in`` steps are run and not recorded.
    """
    check_int("n", n, 1)
    check_choice("integrator", integrator, tuple(LORENZ_INTEGRATORS))
    step = LORENZ_INTEGRATORS[integrator]
    state = (
        torch.rand(n, 3, generator=generator, dtype=torch.float64) * 2 - 1
    ) * cfg.init_range
    for _ in range(cfg.burn_in):  # onto the attractor; these states are not recorded
        state = step(state, cfg)
    out = torch.empty(n, cfg.seq_len, 3, dtype=torch.float64)
    for t in range(cfg.seq_len):  # loop over time, vectorised over trajectories
        state = step(state, cfg)
        out[:, t] = state
    return out


@dataclass
class LorenzData:
    """Normalised Lorenz sets; ``mean``/``std`` are the training pool's (one scalar each)."""

    train: Split
    probe: Split
    test: Split
    mean: float
    std: float

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


def lorenz_data(cfg: LorenzConfig, seed: int, integrator: str = "euler") -> LorenzData:
    """Training pool, probe set and held-out test set for ``seed``.

    Normalisation: one scalar mean and std over all coordinates and steps of the *training
    pool*, reused for the probe and test sets. (The paper's code normalises every set with
    its own statistics; reusing the training statistics keeps the held-out sets honest and
    the three sets on one scale.) ``integrator``: see ``lorenz_trajectories`` (default
    "euler", the paper's; "rk4" gives the same starts integrated accurately).
    """
    raw = {
        s: lorenz_trajectories(n, make_generator(seed, s), cfg, integrator)
        for s, n in (
            ("train", cfg.n_train),
            ("probe", cfg.n_probe),
            ("test", cfg.n_test),
        )
    }
    mean, std = raw["train"].mean().item(), raw["train"].std().item()
    splits = {
        s: Split(*split_context_target(((r - mean) / std).float(), cfg.context_len))
        for s, r in raw.items()
    }
    return LorenzData(splits["train"], splits["probe"], splits["test"], mean, std)


class PoolStream:
    """Batches drawn with replacement from a fixed pool (Lorenz), like the paper's randint."""

    def __init__(
        self,
        pool: Split,
        seed: int,
        batch_size: int,
        device: torch.device | str = "cpu",
    ):
        check_int("batch_size", batch_size, 1)
        self.device = torch.device(device)
        self.pool = pool.to(self.device)
        self.batch_size = batch_size
        self.generator = make_generator(seed, "train")

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(
            0, len(self.pool), (self.batch_size,), generator=self.generator
        ).to(self.device, non_blocking=True)
        return self.pool.context[idx], self.pool.target[idx]


class EpochStream:
    """Shuffled epochs over a fixed set (MNIST); the last batch of an epoch may be smaller."""

    def __init__(
        self,
        data: Split,
        seed: int,
        batch_size: int,
        device: torch.device | str = "cpu",
    ):
        check_int("batch_size", batch_size, 1)
        self.device = torch.device(device)
        self.data = data.to(self.device)
        self.batch_size = batch_size
        self.generator = make_generator(seed, "train")
        self._batches: Iterator[torch.Tensor] = iter(())

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = next(self._batches, None)
        if idx is None:
            perm = torch.randperm(len(self.data), generator=self.generator).to(
                self.device
            )
            self._batches = iter(perm.split(self.batch_size))
            idx = next(self._batches)
        return self.data.context[idx], self.data.target[idx]


# ------------------------------------------------------------------ probe targets
def first_target_step(target: torch.Tensor, horizon: int = 1) -> torch.Tensor:
    """The ``horizon``-step forecast target (default the first target step):
    [N, T', ...] -> [N, D] (sine: D=1, Lorenz: D=3); horizon in [1, T']."""
    check_int("horizon", horizon, 1, target.shape[1])
    return target[:, horizon - 1].reshape(target.shape[0], -1)


def last_context_step(context: torch.Tensor) -> torch.Tensor:
    """The backward-inference target, the last context step: [N, C, ...] -> [N, D]."""
    return context[:, -1].reshape(context.shape[0], -1)
