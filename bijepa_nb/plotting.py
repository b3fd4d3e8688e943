"""Figures of the book: one function per kind of figure, each returning the Figure."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .training import History

COLORS = {"truth": "0.55", "A": "tab:red", "B": "tab:green", "fwd": "tab:blue", "bwd": "tab:orange", "total": "black",
          "classic": "tab:purple", "expressive": "tab:blue", "unconstrained": "tab:red", "restrictive": "tab:olive"}


def smooth(x: np.ndarray, window: int = 25) -> np.ndarray:
    """Moving average (valid part) for readable loss curves."""
    if window <= 1 or len(x) < window:
        return np.asarray(x)
    return np.convolve(x, np.ones(window) / window, mode="valid")


def loss_curves(histories: dict[str, History], ax=None, parts: Sequence[str] = ("fwd", "bwd"), log: bool = True, window: int = 1, title: str | None = None):
    """Training loss per step for one or more runs; BiJEPA runs show forward and backward losses."""
    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    for name, h in histories.items():
        for part in parts:
            y = getattr(h, part)
            if part == "bwd" and not np.any(y):
                continue  # classic JEPA has no backward loss
            label = f"{name} ({part})" if len(histories) > 1 else part
            style = "-" if part != "bwd" else "--"
            ax.plot(np.arange(len(smooth(y, window))) + (window - 1 if window > 1 else 0), smooth(y, window), style, lw=1.2, label=label,
                    color=COLORS.get(name) if len(histories) > 1 else COLORS.get(part))
    ax.set_xlabel("training step")
    ax.set_ylabel("embedding MSE")
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def norm_curves(histories: dict[str, History], ax=None, title: str | None = None):
    """Mean L2 norm of the online context embedding f(x) over training."""
    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    for name, h in histories.items():
        ax.plot(h.norm_steps, h.online_norm, lw=1.4, label=f"{name}: online ‖f(x)‖", color=COLORS.get(name))
        ax.plot(h.norm_steps, h.target_norm, ":", lw=1.4, label=f"{name}: target ‖f̄(y)‖", color=COLORS.get(name))
    ax.set_xlabel("training step")
    ax.set_ylabel("mean embedding norm")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    return ax


def batch_forecast(truth: torch.Tensor, pred_a: torch.Tensor, pred_b: torch.Tensor, ax=None, title: str | None = None, ylabel: str = "amplitude at $t_{10}$"):
    """Forecast of one value per sample (sample index on x): truth, Protocol A and Protocol B."""
    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    idx = np.arange(len(truth))
    t, a, b = (np.asarray(v, dtype=float).ravel() for v in (truth, pred_a, pred_b))
    ax.plot(idx, t, "o", color=COLORS["truth"], ms=8, alpha=0.5, label="truth")
    ax.plot(idx, a, "x", color=COLORS["A"], ms=7, mew=2, label="Protocol A (encoder)")
    ax.plot(idx, b, "^", color=COLORS["B"], ms=6, label="Protocol B (predictor)")
    ax.vlines(idx, t, b, colors=COLORS["B"], linestyles="dotted", alpha=0.6)
    ax.set_xlabel("test sample")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def single_forecast(context: torch.Tensor, target: torch.Tensor, pred_a: float, pred_b: float, ax=None, title: str | None = None):
    """One sine sequence: the context, the true future and the 1-step forecasts at t_C."""
    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    c, y = np.asarray(context).ravel(), np.asarray(target).ravel()
    tc, ty = np.arange(len(c)), len(c) + np.arange(len(y))
    ax.plot(tc, c, "-o", color="tab:blue", ms=4, label="context")
    ax.plot(ty, y, "-o", color=COLORS["truth"], ms=4, alpha=0.6, label="true future")
    ax.plot(len(c), pred_a, "x", color=COLORS["A"], ms=10, mew=2, label="Protocol A")
    ax.plot(len(c), pred_b, "^", color=COLORS["B"], ms=9, label="Protocol B")
    ax.axvline(len(c) - 0.5, color="0.7", lw=1)
    ax.set_xlabel("time step")
    ax.set_ylabel("amplitude")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def sequences(seqs: torch.Tensor, context_len: int, ax=None, title: str | None = None):
    """A few raw sequences with the context/target split marked."""
    ax = ax or plt.subplots(figsize=(7, 3.4))[1]
    for i, s in enumerate(np.asarray(seqs)):
        ax.plot(np.arange(len(s)), s, "-o", ms=3, lw=1.2, label=f"sample {i}")
    ax.axvspan(-0.5, context_len - 0.5, color="tab:blue", alpha=0.06, label="context")
    ax.axvspan(context_len - 0.5, seqs.shape[1] - 0.5, color="tab:green", alpha=0.06, label="target")
    ax.set_xlabel("time step")
    ax.set_ylabel("amplitude")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    if title:
        ax.set_title(title)
    return ax


def phase_space(context: torch.Tensor, target: torch.Tensor, predictions: dict[str, torch.Tensor], ax=None, title: str | None = None):
    """3-D Lorenz plot: one context trajectory, its true next state and predicted next states."""
    if ax is None:
        fig = plt.figure(figsize=(5.5, 4.5))
        ax = fig.add_subplot(111, projection="3d")
    c, y = np.asarray(context), np.asarray(target)
    ax.plot(c[:, 0], c[:, 1], c[:, 2], "-", color="tab:blue", lw=1.5, label="context")
    ax.plot(y[:, 0], y[:, 1], y[:, 2], "-", color=COLORS["truth"], lw=1, alpha=0.6, label="true future")
    ax.scatter(*y[0], color="k", s=40, label="true next state")
    markers = {"classic": "x", "bijepa": "^"}
    for name, p in predictions.items():
        p = np.asarray(p).ravel()
        ax.scatter(*p, s=50, marker=markers.get(name, "^"), label=f"{name} (Protocol B)", color=COLORS.get(name, None))
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("z")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    return ax


def hallucinations(left: torch.Tensor, right: torch.Tensor, generated: dict[str, torch.Tensor], n: int = 6) -> Figure:
    """Rows: digits. Columns: left half (input), true right half, each model's generated right half.

    Images in [0, 1] pixel units, [N, 1, 28, 14].
    """
    cols = 2 + len(generated)
    fig, axes = plt.subplots(n, cols, figsize=(1.6 * cols, 1.7 * n))
    titles = ["input (left)", "true right"] + [f"{k}" for k in generated]
    for i in range(n):
        imgs = [left[i, 0], right[i, 0]] + [g[i, 0] for g in generated.values()]
        for j, img in enumerate(imgs):
            ax = axes[i, j]
            ax.imshow(np.asarray(img), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=9)
    fig.tight_layout()
    return fig


def seed_dots(values: dict[str, Sequence[float]], ax=None, ylabel: str = "held-out MSE", title: str | None = None, log: bool = False,
              lines: dict[str, float] | None = None):
    """Per-seed dots and the mean ± std for each named group; ``lines``: labelled reference
    values (baselines, the paper's number) drawn as horizontal dashed lines."""
    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    for j, (name, y) in enumerate((lines or {}).items()):
        ax.axhline(y, ls="--", lw=1, color=f"C{(j + 5) % 10}", label=name)
    for i, (name, v) in enumerate(values.items()):
        v = np.asarray(v, dtype=float)
        jitter = np.linspace(-0.12, 0.12, len(v)) if len(v) > 1 else np.zeros(1)
        ax.plot(i + jitter, v, "o", alpha=0.7, color=COLORS.get(name, f"C{i}"))
        ax.errorbar(i + 0.25, v.mean(), yerr=v.std(ddof=1) if len(v) > 1 else 0, fmt="s", color="k", capsize=4)
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(list(values), rotation=15)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if lines:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title)
    return ax


def architecture(bidirectional: bool, ax=None, title: str | None = None):
    """Figure 1 of the paper as a diagram: classic JEPA (one direction) or BiJEPA (forward and
    backward directions sharing the online encoder f_θ and the EMA target encoder f̄)."""
    from matplotlib.patches import FancyBboxPatch

    ax = ax or plt.subplots(figsize=(7.5, 2.6 if not bidirectional else 4.6))[1]
    colors = {"input": "#eeeeee", "online": "#cfe2f3", "target": "#f4cccc", "pred": "#d9ead3", "loss": "#fff2cc"}

    def box(x: float, y: float, text: str, kind: str, w: float = 1.5) -> tuple[float, float, float]:
        ax.add_patch(FancyBboxPatch((x, y - 0.28), w, 0.56, boxstyle="round,pad=0.04", fc=colors[kind], ec="0.3", lw=1))
        ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=8.5)
        return x, x + w, y

    def arrow(x0: float, y0: float, x1: float, y1: float, text: str = "", dashed: bool = False) -> None:
        ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", lw=1.1, color="0.25", ls="--" if dashed else "-"))
        if text:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.14, text, ha="center", va="bottom", fontsize=8)

    def direction(y: float, src: str, dst: str, pred: str, s_src: str, s_hat: str, s_dst: str, loss: str) -> None:
        _, a1, _ = box(0.0, y, f"input {src}", "input", 1.1)
        b0, b1, _ = box(1.7, y, "online $f_\\theta$", "online", 1.8)
        arrow(a1, y, b0, y)
        c0, c1, _ = box(4.2, y, pred, "pred", 1.1)
        arrow(b1, y, c0, y, s_src)
        l0, _, _ = box(6.6, y - 0.5, loss, "loss", 1.0)
        arrow(c1, y, l0, y - 0.4, s_hat)
        _, d1, _ = box(0.0, y - 1.0, f"target {dst}", "input", 1.1)
        e0, e1, _ = box(1.7, y - 1.0, "target $\\bar f$ (EMA)", "target", 1.8)
        arrow(d1, y - 1.0, e0, y - 1.0)
        arrow(e1, y - 1.0, l0, y - 0.6, f"{s_dst}  (stop-grad)", dashed=True)

    direction(1.4, "$x$", "$y$", "$P_{fwd}$" if bidirectional else "$P$", "$s_x$", "$\\hat s_y$", "$s_y$", "$L_{fwd}$" if bidirectional else "$L$")
    top = 1.9
    if bidirectional:
        direction(-1.0, "$y$", "$x$", "$P_{bwd}$", "$s_y$", "$\\hat s_x$", "$s_x$", "$L_{bwd}$")
        ax.text(7.1, 0.2, "$L = \\alpha L_{fwd} + (1-\\alpha) L_{bwd}$  (Eq. 8)", ha="center", va="center", fontsize=9)
        ax.text(0.0, -2.65, "both directions share the online encoder $f_\\theta$ and the target encoder $\\bar f$ (EMA of $f_\\theta$)", fontsize=8, color="0.3")
    ax.set_xlim(-0.2, 8.9)
    ax.set_ylim(-2.9 if bidirectional else -0.2, top)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return ax
