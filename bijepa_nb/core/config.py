"""Frozen, validated configuration dataclasses: one per concern.

Every field is checked on construction; a bad value raises ``ValueError`` (or
``TypeError`` for a wrong type) whose message names the field and its allowed range.
Nothing is clamped silently.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

NORM_MODES = ("none", "layernorm", "sphere")
ARCHS = ("mlp", "conv")
DEVICES = ("auto", "cpu", "cuda", "mps")

#: The paper's three stability configurations (§3.3, §4.2.2, Appendix A):
#: name -> (norm mode, weight decay).
STABILITY_MODES: dict[str, tuple[str, float]] = {
    "unconstrained": ("none", 0.0),  # no LayerNorm, no weight decay ("Explosion")
    "expressive": ("layernorm", 1e-4),  # LayerNorm + weight decay (soft constraint)
    "restrictive": (
        "sphere",
        1e-4,
    ),  # LayerNorm + decay + unit-sphere embeddings (hard)
}


def _check_type(name: str, value: Any, kind: type | tuple[type, ...]) -> None:
    # bool is a subclass of int: refuse it where a number is expected.
    if (
        isinstance(value, bool)
        and kind is not bool
        and bool not in (kind if isinstance(kind, tuple) else (kind,))
    ):
        raise TypeError(f"{name} must be {_kind_name(kind)}, got bool {value!r}")
    if not isinstance(value, kind):
        raise TypeError(
            f"{name} must be {_kind_name(kind)}, got {type(value).__name__} {value!r}"
        )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__


def check_int(
    name: str, value: Any, low: int | None = None, high: int | None = None
) -> None:
    """Raise unless ``value`` is an int in ``[low, high]`` (either bound optional)."""
    _check_type(name, value, int)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(
            f"{name} must be an integer in {_range(low, high)}, got {value}"
        )


def check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    """Raise unless ``value`` is a finite real in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    _check_type(name, value, (int, float))
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        raise ValueError(
            f"{name} must be in {_range(low, high, low_open)}, got {value}"
        )


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )


def _range(low: float | None, high: float | None, low_open: bool = False) -> str:
    left = "(" if (low_open or low is None) else "["
    right = "]" if high is not None else ")"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


class _Printable:
    def describe(self) -> str:
        """One line per field, for printing at the start of a run."""
        name = type(self).__name__
        body = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))  # type: ignore[arg-type]
        return f"{name}({body})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class ModelConfig(_Printable):
    """Encoder + predictor architecture (Appendix B.3).

    arch: "mlp" (sine, Lorenz: input is flattened) or "conv" (MNIST half images [B, 1, 28, 14]).
    norm: "none" (no LayerNorm), "layernorm", or "sphere" (LayerNorm + L2-normalised
    encoder output, Eq. 9).
    """

    arch: str = "mlp"
    input_dim: int = 10  # flattened context size for the MLP (sine: 10, Lorenz: 20*3)
    hidden_dim: int = 64  # encoder hidden width
    embed_dim: int = 16  # embedding size s = f(x)
    pred_hidden_dim: int = 64  # predictor hidden width
    norm: str = "layernorm"

    def __post_init__(self) -> None:
        check_choice("arch", self.arch, ARCHS)
        check_int("input_dim", self.input_dim, 1)
        check_int("hidden_dim", self.hidden_dim, 1)
        check_int("embed_dim", self.embed_dim, 1)
        check_int("pred_hidden_dim", self.pred_hidden_dim, 1)
        check_choice("norm", self.norm, NORM_MODES)


@dataclass(frozen=True)
class TrainConfig(_Printable):
    """Optimisation of one JEPA / BiJEPA run.

    alpha = 1 is classic JEPA (no backward predictor is built); alpha < 1 is BiJEPA with
    loss alpha * fwd + (1 - alpha) * bwd (Eq. 8).
    """

    num_steps: int = 2000  # optimiser steps (paper, sine: 2000)
    batch_size: int = 64  # sequences per step (paper, sine: 64)
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = (
        1e-4  # AdamW decoupled weight decay (0 in the unconstrained mode)
    )
    ema_momentum: float = 0.995  # tau in Eq. 5
    alpha: float = 0.5  # forward weight in Eq. 8
    seed: int = 0  # model init and data stream seed
    device: str = "auto"  # "auto" -> cuda if available else cpu
    log_every: int = 10  # embedding norms and the finiteness check every k steps
    num_threads: int = 1  # CPU threads (1 is fastest for these tiny models here)
    progress: bool = True  # show a tqdm progress bar

    def __post_init__(self) -> None:
        check_int("num_steps", self.num_steps, 1)
        check_int("batch_size", self.batch_size, 1)
        check_float("lr", self.lr, 0.0, None, low_open=True)
        check_float("weight_decay", self.weight_decay, 0.0)
        check_float("ema_momentum", self.ema_momentum, 0.0, 1.0)
        check_float("alpha", self.alpha, 0.0, 1.0)
        check_int("seed", self.seed, 0)
        check_choice("device", self.device, DEVICES)
        check_int("log_every", self.log_every, 1)
        check_int("num_threads", self.num_threads, 1)
        _check_type("progress", self.progress, bool)

    @property
    def bidirectional(self) -> bool:
        """True when a backward predictor is trained (alpha < 1)."""
        return self.alpha < 1.0


@dataclass(frozen=True)
class SineConfig(_Printable):
    """Noisy sine waves, exactly Appendix B.2: S(t) = sin(w t + phi) + eps on linspace(0, 4 pi, T)."""

    seq_len: int = 20  # T
    context_len: int = 10  # context t_0..t_9, target t_10..t_19
    freq_low: float = 0.8  # w ~ U(freq_low, freq_high)
    freq_high: float = 1.2
    noise_std: float = 0.05  # eps ~ N(0, noise_std^2) on every point
    t_max: float = 4 * math.pi  # time grid linspace(0, t_max, seq_len)
    n_probe: int = 1000  # probe-training set (paper: 1000)
    n_test: int = 1000  # held-out test set (paper: 20, for plots only)

    def __post_init__(self) -> None:
        check_int("seq_len", self.seq_len, 2)
        check_int("context_len", self.context_len, 1, self.seq_len - 1)
        check_float("freq_low", self.freq_low, 0.0, None, low_open=True)
        check_float("freq_high", self.freq_high, self.freq_low)
        check_float("noise_std", self.noise_std, 0.0)
        check_float("t_max", self.t_max, 0.0, None, low_open=True)
        check_int("n_probe", self.n_probe, 1)
        check_int("n_test", self.n_test, 1)


@dataclass(frozen=True)
class LorenzConfig(_Printable):
    """Lorenz trajectories, Appendix B.2: Euler steps of size dt from U(-init_range, init_range)^3.

    ``burn_in`` > 0 starts the recording after that many steps, on the attractor.
    """

    sigma: float = 10.0
    rho: float = 28.0
    beta: float = 8.0 / 3.0
    dt: float = 0.01  # Euler step
    seq_len: int = 40  # recorded states per trajectory (after each step)
    context_len: int = 20  # context t_0..t_19, target t_20..t_39
    init_range: float = 15.0  # start ~ U(-init_range, init_range)^3
    n_train: int = 2000  # fixed training pool (paper: 2000)
    n_probe: int = 1000  # probe-training set (paper: 1000)
    n_test: int = 1000  # held-out test set (paper: 20, for plots only)
    burn_in: int = 0  # Euler steps run and discarded before recording (0: the paper's)

    def __post_init__(self) -> None:
        check_float("sigma", self.sigma, 0.0, None, low_open=True)
        check_float("rho", self.rho, 0.0, None, low_open=True)
        check_float("beta", self.beta, 0.0, None, low_open=True)
        check_float("dt", self.dt, 0.0, 0.1, low_open=True)
        check_int("seq_len", self.seq_len, 2)
        check_int("context_len", self.context_len, 1, self.seq_len - 1)
        check_float("init_range", self.init_range, 0.0, None, low_open=True)
        check_int("n_train", self.n_train, 2)
        check_int("n_probe", self.n_probe, 1)
        check_int("n_test", self.n_test, 1)
        check_int("burn_in", self.burn_in, 0, 100_000)


@dataclass(frozen=True)
class MnistConfig(_Printable):
    """MNIST left/right halves (Appendix B.2)."""

    split_col: int = 14  # left = columns [0, 14), right = [14, 28)
    mean: float = 0.1307
    std: float = 0.3081
    offline_eval: int = 2000  # offline 10k split: images held out for evaluation

    def __post_init__(self) -> None:
        if self.split_col != 14:
            # The conv encoder's Linear(1792, 128) is sized for 28x14 halves.
            raise ValueError(
                f"split_col must be 14 (the conv encoder expects 28x14 halves), got {self.split_col}"
            )
        check_float("mean", self.mean, 0.0, 1.0)
        check_float("std", self.std, 0.0, None, low_open=True)
        check_int("offline_eval", self.offline_eval, 1, 9999)


def resolve_device(name: str) -> torch.device:  # noqa: F821
    """Map a device name to a torch.device; "auto" picks CUDA when present."""
    import torch

    check_choice("device", name, DEVICES)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but torch.cuda.is_available() is False"
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' was requested but MPS is not available")
    return torch.device(name)
