"""Honest baselines: what the JEPA read-outs must beat, on the same held-out data.

Sine and Lorenz baselines forecast the first target step from the raw context (no
representation learning); they return the held-out MSE in the same units as Protocols A
and B (sine: signal units; Lorenz: the training pool's normalised units). MNIST baselines
return held-out accuracy of classifiers on the left half.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import LorenzConfig, SineConfig, check_float, check_int
from ..core.data import (
    LORENZ_INTEGRATORS,
    Split,
    first_target_step,
    lorenz_derivative,
    make_generator,
    sine_time_grid,
)
from ..core.models import seeded
from ..core.probes import lstsq_probe
from . import registry
from .mnist import classification_probe, fit_minibatch


def _mse(pred: torch.Tensor, truth: torch.Tensor) -> float:
    return float(F.mse_loss(pred.double(), truth.double()))


def persistence(context: torch.Tensor) -> torch.Tensor:
    """Next value = last context value: [N, C, ...] -> [N, D]."""
    return context[:, -1].reshape(context.shape[0], -1)


def linear_extrapolation(context: torch.Tensor, horizon: int = 1) -> torch.Tensor:
    """Next value = 2 * last - second to last (constant velocity): [N, C, ...] -> [N, D];
    ``horizon`` k steps ahead: last + k * (last - second to last)."""
    check_int("horizon", horizon, 1)
    c = context.reshape(context.shape[0], context.shape[1], -1)
    return c[:, -1] + horizon * (c[:, -1] - c[:, -2])


def sinusoid_fit(
    context: torch.Tensor,
    cfg: SineConfig = SineConfig(),
    num_freqs: int = 401,
    horizon: int = 1,
) -> torch.Tensor:
    """Per-sequence fit of a sin(w t) + b cos(w t) on the context, w on a grid over
    [freq_low, freq_high]; returns the fit's value at the first target time (``horizon``:
    that many steps ahead, in [1, seq_len - context_len]): [N, C] -> [N, 1].

    For each w the amplitudes are least squares; the w with the smallest residual wins.
    This knows the family of the data (not its noise), so it is the strongest
    hand-made forecaster here.
    """
    check_int("num_freqs", num_freqs, 2)
    check_int("horizon", horizon, 1, cfg.seq_len - cfg.context_len)
    t = sine_time_grid(cfg)
    tc, t_next = t[: cfg.context_len], t[cfg.context_len + horizon - 1]
    w = torch.linspace(cfg.freq_low, cfg.freq_high, num_freqs, dtype=torch.float64)
    design = torch.stack(
        (torch.sin(w[:, None] * tc), torch.cos(w[:, None] * tc)), -1
    )  # [G, C, 2]
    pinv = torch.linalg.pinv(design)  # [G, 2, C]
    x = context.double()
    coef = torch.einsum("gkc,nc->ngk", pinv, x)  # [N, G, 2]
    resid = (
        (torch.einsum("gck,ngk->ngc", design, coef) - x[:, None]).square().sum(-1)
    )  # [N, G]
    best = resid.argmin(1)
    c = coef[torch.arange(len(x)), best]  # [N, 2]
    wb = w[best]
    return (
        (c[:, 0] * torch.sin(wb * t_next) + c[:, 1] * torch.cos(wb * t_next))
        .unsqueeze(1)
        .to(context.dtype)
    )


def forecast_baselines(
    probe: Split,
    test: Split,
    experiment: str,
    ridge: float = 1.0,
    cfg: SineConfig = SineConfig(),
    horizon: int = 1,
    truth: torch.Tensor | None = None,
) -> dict[str, float]:
    """Held-out MSE of the first target step for every raw-context baseline of ``experiment``.

    ``horizon``: forecast the target step that many steps ahead instead (every
    forecaster, and the probe-set targets of the fitted ones). ``truth`` [N_test, D]:
    score against these values instead of the test set's target step (e.g. the
    noise-free signal); the fitted baselines still learn from the probe set's targets.

    Keys: mean (the probe set's mean), persistence, linear_extrapolation, lstsq_context
    (least squares from the flattened raw context, fitted on the probe set), and for sine
    sinusoid_fit and noise_floor (noise_std^2, the error of a forecaster that knows w and
    phi exactly); for Lorenz ridge_context (least squares with an L2 penalty ``ridge``).
    """
    check_float("ridge", ridge, 0.0)
    if truth is None:
        truth = first_target_step(test.target, horizon)
    y_probe = first_target_step(probe.target, horizon)
    flat = lambda s: s.context.reshape(len(s), -1)
    out = {
        "mean": _mse(y_probe.mean(0, keepdim=True).expand_as(truth), truth),
        "persistence": _mse(persistence(test.context), truth),
        "linear_extrapolation": _mse(
            linear_extrapolation(test.context, horizon), truth
        ),
        "lstsq_context": lstsq_probe(flat(probe), y_probe).mse(flat(test), truth),
    }

    extras = {
        "sinusoid_fit": lambda: _mse(
            sinusoid_fit(test.context, cfg, horizon=horizon), truth
        ),
        "noise_floor": lambda: cfg.noise_std**2,
        "ridge_context": lambda: lstsq_probe(flat(probe), y_probe, ridge=ridge).mse(
            flat(test), truth
        ),
    }
    exp = registry.experiment(experiment)
    if exp.kind != "forecast":
        raise ValueError(
            f"experiment must be a forecasting experiment, got {experiment!r}"
        )
    for name in exp.baselines:
        out[name] = extras[name]()
    return out


class SupervisedClassifier(nn.Module):
    """The conv encoder of the MNIST experiment with a linear head: [B, 1, 28, 14] -> 10 logits."""

    def __init__(self, encoder: nn.Module, embed_dim: int, num_classes: int = 10):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(embed_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def supervised_baseline(
    encoder: nn.Module,
    embed_dim: int,
    train: Split,
    eval_: Split,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[str, float]:
    """Train ``encoder`` + a linear head end to end on labelled left halves (cross-entropy, Adam).

    The ceiling for any frozen-encoder probe with this architecture and data. Returns
    train and held-out accuracy (fractions).
    """
    check_int("epochs", epochs, 1)
    check_float("lr", lr, 0.0, None, low_open=True)
    if train.labels is None or eval_.labels is None:
        raise ValueError("train and eval_ must carry labels")
    device = next(encoder.parameters()).device
    with seeded(seed):
        model = SupervisedClassifier(encoder, embed_dim).to(device)
    gen = make_generator(seed, "extra")
    x, y = train.context.to(device), train.labels.to(device)
    model.train()
    fit_minibatch(
        model.parameters(),
        lambda idx: F.cross_entropy(model(x[idx]), y[idx]),
        len(y),
        epochs,
        batch_size,
        lr,
        gen,
        device,
        min_batch=2,  # BatchNorm needs two samples
    )
    model.eval()
    with torch.no_grad():

        def acc(s: Split) -> float:
            hits = sum(
                int((model(c.to(device)).argmax(1) == l.to(device)).sum())
                for c, l in zip(s.context.split(2048), s.labels.split(2048))
            )  # type: ignore[union-attr]
            return hits / len(s)

        return {"train_acc": acc(train), "eval_acc": acc(eval_)}


def raw_pixel_baseline(
    train: Split, eval_: Split, epochs: int = 10, seed: int = 0
) -> dict[str, float]:
    """Logistic regression (the paper's linear probe) on the raw normalised left-half pixels."""
    if train.labels is None or eval_.labels is None:
        raise ValueError("train and eval_ must carry labels")
    return classification_probe(
        train.context.flatten(1),
        train.labels,
        eval_.context.flatten(1),
        eval_.labels,
        epochs=epochs,
        seed=seed,
    )


def chance_accuracy(train_labels: torch.Tensor, eval_labels: torch.Tensor) -> float:
    """Held-out accuracy of always predicting the most frequent training class."""
    if len(train_labels) == 0 or len(eval_labels) == 0:
        raise ValueError("train_labels and eval_labels must not be empty")
    return float((eval_labels == torch.bincount(train_labels).argmax()).float().mean())


# --- chapter 05
def quadratic_features(states: torch.Tensor) -> torch.Tensor:
    """The last state and the products of its coordinates, in float64:
    states [N, T, 3] -> [N, 9] (x, y, z, xx, xy, xz, yy, yz, zz)."""
    last = states[:, -1].double()
    i, j = torch.triu_indices(3, 3)
    return torch.cat((last, last[:, i] * last[:, j]), dim=1)


def lorenz_raw_baselines(probe: Split, test: Split) -> dict[str, float]:
    """Held-out MSE of four raw forecasters of the first target state, in float64.

    persistence (the last context state), linear extrapolation (2 * last - previous),
    least squares on the raw context (a linear map of the flattened context, fitted on
    ``probe``) and the quadratic map of the last state (least squares on
    ``quadratic_features``: the form of one Euler step, exact on Euler data).
    """
    y = first_target_step(test.target).double()
    y_probe = first_target_step(probe.target).double()
    last, prev = test.context[:, -1].double(), test.context[:, -2].double()
    raw = lstsq_probe(probe.context.flatten(1).double(), y_probe)
    quad = lstsq_probe(quadratic_features(probe.context), y_probe)
    return {
        "persistence": torch.mean((last - y) ** 2).item(),
        "linear extrapolation": torch.mean((2 * last - prev - y) ** 2).item(),
        "least squares on the raw context": raw.mse(
            test.context.flatten(1).double(), y
        ),
        "quadratic map of the last state": quad.mse(
            quadratic_features(test.context), y
        ),
    }


# --- chapter 05: integrator errors
def lorenz_integrator_errors(
    n: int, cfg: LorenzConfig = LorenzConfig(), seed: int = 0
) -> dict[str, np.ndarray]:
    """How far each of ``LORENZ_INTEGRATORS`` strays from the Lorenz flow.

    From ``n`` starts drawn like the data's (uniform in [-init_range, init_range]^3,
    float64, from ``seed``), integrates cfg.seq_len steps of cfg.dt with every integrator
    and with scipy's DOP853 at rtol = atol = 1e-10 (the reference). Returns
    {integrator: [n, seq_len]}: the relative error ||s - s_true|| / ||s_true|| of the
    state after each step.
    """
    from scipy.integrate import solve_ivp

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    gen = torch.Generator().manual_seed(seed)
    starts = (
        torch.rand(n, 3, generator=gen, dtype=torch.float64) * 2 - 1
    ) * cfg.init_range
    times = cfg.dt * np.arange(1, cfg.seq_len + 1)

    def field(_, s):
        return lorenz_derivative(torch.from_numpy(s)[None], cfg)[0].numpy()

    true = np.stack(
        [
            solve_ivp(
                field,
                (0, times[-1]),
                s0,
                method="DOP853",
                rtol=1e-10,
                atol=1e-10,
                t_eval=times,
            ).y.T
            for s0 in starts.numpy()
        ]
    )
    out = {}
    for name, step in LORENZ_INTEGRATORS.items():
        state, path = starts.clone(), []
        for _ in range(cfg.seq_len):
            state = step(state, cfg)
            path.append(state)
        path = torch.stack(path, 1).numpy()
        out[name] = np.linalg.norm(path - true, axis=-1) / np.linalg.norm(true, axis=-1)
    return out
