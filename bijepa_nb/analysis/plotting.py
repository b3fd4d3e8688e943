"""Figures of the book: one function per kind of figure, each returning the Figure.

Every figure is drawn for the book's text column (``style``): 7 inches wide at 96 CSS
pixels per inch, at most two panels side by side, 9-10 pt text, shown at its designed
size so that text reads at 12-13 px on a laptop.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython import get_ipython
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.patches import FancyBboxPatch
from matplotlib.text import Text

from ..core.data import Split, first_target_step
from ..core.probes import adam_probe, protocol_features
from ..core.training import History
from .results import baseline, values
from .stats import geometric_mean_ci, mean_ci

COLORS = {
    "truth": "0.55",
    "A": "tab:red",
    "B": "tab:green",
    "fwd": "tab:blue",
    "bwd": "tab:orange",
    "total": "black",
    "classic": "tab:purple",
    "expressive": "tab:blue",
    "unconstrained": "tab:red",
    "restrictive": "tab:olive",
}


# ---------------------------------------------------------------- the book's figure style
#: Width of the rendered text column in inches, at 96 CSS pixels per inch: the column of
#: the built book measured 672 px in chromium at a 1,280 px window (tests/test_figures.py
#: measures it again on every page).
COLUMN_IN = 7.0
#: CSS pixels per inch: browsers draw 1 in = 96 px, so a figure COLUMN_IN wide fills the
#: column when shown at its designed size.
CSS_PX_PER_IN = 96
#: Pixels per inch of the PNG files: 1.5 image pixels per CSS pixel (sharp on most
#: laptop and phone screens at about 60-120 KB a figure). Each PNG carries its size in
#: CSS pixels (``figure_output``), so it is shown at 96 px per inch, not stretched.
DPI = 144
#: Text sizes in points: labels and titles FONT_PT, ticks and legends SMALL_FONT_PT.
#: At the designed size 1 pt is 96 / 72 px: 10 pt shows at 13.3 px, 9 pt at 12 px.
FONT_PT = 10.0
SMALL_FONT_PT = 9.0
#: The smallest text, in CSS px, a reader must see at a 1,280 px window.
MIN_TEXT_PX = 9.0
#: Height of one row of panels, inches.
ROW_IN = 3.2
#: Height of one row of heat maps (one map to a row), inches.
MAP_ROW_IN = 3.6
#: A figure whose SVG is at most this many bytes is shown as SVG (sharp at any zoom);
#: larger ones (many points, heat maps, 3-D plots) as PNG.
SVG_MAX_BYTES = 60_000
#: Key of the text record each figure file carries: its smallest font size in points
#: (PNG: a tEXt chunk; SVG: the description). tests/test_figures.py reads it back.
FONT_RECORD = "bijepa-min-font-pt"

RC = {
    "figure.figsize": (COLUMN_IN, ROW_IN),
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": FONT_PT,
    "axes.titlesize": FONT_PT,
    "axes.labelsize": FONT_PT,
    "figure.titlesize": FONT_PT + 1,
    "xtick.labelsize": SMALL_FONT_PT,
    "ytick.labelsize": SMALL_FONT_PT,
    "legend.fontsize": SMALL_FONT_PT,
    "legend.title_fontsize": SMALL_FONT_PT,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "svg.fonttype": "none",
    "figure.autolayout": True,
}


def panel_size(ncols: int = 1, nrows: int = 1) -> tuple[float, float]:
    """figsize of ``nrows`` rows of panels in the column; at most two side by side."""
    if ncols not in (1, 2):
        raise ValueError(f"ncols must be 1 or 2 panels side by side, got {ncols}")
    if not isinstance(nrows, int) or nrows < 1:
        raise ValueError(f"nrows must be an integer >= 1, got {nrows!r}")
    return COLUMN_IN, ROW_IN * nrows


def min_font_pt(fig: Figure) -> float:
    """The smallest font size (points) of the visible, non-empty text of ``fig``
    (labels, ticks, legends, titles, annotations), after drawing it."""
    fig.canvas.draw()
    sizes = [
        t.get_fontsize()
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip()
    ]
    return float(min(sizes)) if sizes else FONT_PT


def figure_output(fig: Figure) -> tuple[str, str, dict[str, Any] | None]:
    """(mime type, data, metadata) of ``fig`` as the book shows it: SVG when the SVG
    stays within SVG_MAX_BYTES, else a PNG at DPI (base64) whose metadata gives its
    size in CSS pixels (96 per inch). Both files record ``min_font_pt`` under
    FONT_RECORD, and the PNG its DPI (pHYs), for tests/test_figures.py."""
    record = f"{min_font_pt(fig):g}"
    kw = dict(bbox_inches="tight", facecolor=fig.get_facecolor())
    buf = io.BytesIO()
    fig.savefig(
        buf, format="svg", metadata={"Description": f"{FONT_RECORD}={record}"}, **kw
    )
    if buf.tell() <= SVG_MAX_BYTES:
        return "image/svg+xml", buf.getvalue().decode("utf-8"), None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={FONT_RECORD: record}, **kw)
    png = buf.getvalue()
    w, h = (int.from_bytes(png[i : i + 4], "big") for i in (16, 20))  # IHDR
    css = {
        "width": round(w * CSS_PX_PER_IN / DPI),
        "height": round(h * CSS_PX_PER_IN / DPI),
    }
    return "image/png", base64.b64encode(png).decode("ascii"), css


class _Formatters:
    """IPython display formatters for Figures: ``figure_output`` once per display,
    answered to the SVG and the PNG formatter (the one that does not apply gets None)."""

    def __init__(self) -> None:
        self._last: (
            tuple[int, tuple[str, str, dict[str, Any] | None], set[str]] | None
        ) = None

    def _output(self, fig: Figure, mime: str):
        if not fig.axes:
            return None
        if self._last is None or self._last[0] != id(fig) or mime in self._last[2]:
            self._last = (id(fig), figure_output(fig), set())
        self._last[2].add(mime)
        kind, data, meta = self._last[1]
        return (data, meta) if kind == mime else None

    def svg(self, fig: Figure):
        return self._output(fig, "image/svg+xml")

    def png(self, fig: Figure):
        return self._output(fig, "image/png")


def style() -> None:
    """Apply the book's figure style: ``RC`` to matplotlib and, in an IPython kernel,
    ``figure_output`` as the way figures are displayed. ``chapter.setup`` calls it."""
    # Load the inline backend first: matplotlib imports it at the first figure, and
    # on import it installs its own rcParams and figure formatters over these.
    backend = mpl.get_backend()
    if "inline" in backend:
        plt.switch_backend(backend)
    mpl.rcParams.update(RC)
    shell = get_ipython()
    if shell is None:
        return
    formatters = shell.display_formatter.formatters
    for f in formatters.values():
        f.pop(Figure, None)
    show = _Formatters()
    formatters["image/svg+xml"].for_type(Figure, show.svg)
    formatters["image/png"].for_type(Figure, show.png)


def smooth(x: np.ndarray, window: int = 25) -> np.ndarray:
    """Moving average (valid part) for readable loss curves."""
    if window <= 1 or len(x) < window:
        return np.asarray(x)
    return np.convolve(x, np.ones(window) / window, mode="valid")


def loss_curves(
    histories: dict[str, History],
    ax=None,
    parts: Sequence[str] = ("fwd", "bwd"),
    log: bool = True,
    window: int = 1,
    title: str | None = None,
):
    """Training loss per step for one or more runs; BiJEPA runs show forward and backward losses."""
    ax = ax or plt.subplots(figsize=panel_size())[1]
    for name, h in histories.items():
        for part in parts:
            y = getattr(h, part)
            if part == "bwd" and not np.any(y):
                continue  # classic JEPA has no backward loss
            label = f"{name} ({part})" if len(histories) > 1 else part
            style = "-" if part != "bwd" else "--"
            ax.plot(
                np.arange(len(smooth(y, window))) + (window - 1 if window > 1 else 0),
                smooth(y, window),
                style,
                lw=1.2,
                label=label,
                color=COLORS.get(name) if len(histories) > 1 else COLORS.get(part),
            )
    ax.set_xlabel("training step")
    ax.set_ylabel("embedding MSE")
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def norm_curves(histories: dict[str, History], ax=None, title: str | None = None):
    """Mean L2 norm of the online context embedding f(x) over training."""
    ax = ax or plt.subplots(figsize=panel_size())[1]
    for name, h in histories.items():
        ax.plot(
            h.norm_steps,
            h.online_norm,
            lw=1.4,
            label=f"{name}: online ‖f(x)‖",
            color=COLORS.get(name),
        )
        ax.plot(
            h.norm_steps,
            h.target_norm,
            ":",
            lw=1.4,
            label=f"{name}: target ‖f̄(y)‖",
            color=COLORS.get(name),
        )
    ax.set_xlabel("training step")
    ax.set_ylabel("mean embedding norm")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def batch_forecast(
    truth: torch.Tensor,
    pred_a: torch.Tensor,
    pred_b: torch.Tensor,
    ax=None,
    title: str | None = None,
    ylabel: str = "amplitude at $t_{10}$",
):
    """Forecast of one value per sample (sample index on x): truth, Protocol A and Protocol B."""
    ax = ax or plt.subplots(figsize=panel_size())[1]
    idx = np.arange(len(truth))
    t, a, b = (np.asarray(v, dtype=float).ravel() for v in (truth, pred_a, pred_b))
    ax.plot(idx, t, "o", color=COLORS["truth"], ms=8, alpha=0.5, label="truth")
    ax.plot(idx, a, "x", color=COLORS["A"], ms=7, mew=2, label="Protocol A (encoder)")
    ax.plot(idx, b, "^", color=COLORS["B"], ms=6, label="Protocol B (predictor)")
    ax.vlines(idx, t, b, colors=COLORS["B"], linestyles="dotted", alpha=0.6)
    ax.set_xlabel("test sample")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def single_forecast(
    context: torch.Tensor,
    target: torch.Tensor,
    pred_a: float,
    pred_b: float,
    ax=None,
    title: str | None = None,
):
    """One sine sequence: the context, the true future and the 1-step forecasts at t_C."""
    ax = ax or plt.subplots(figsize=panel_size())[1]
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
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def forecast_panel(
    model,
    probe_set,
    test_set,
    n_show: int = 20,
    epochs: int = 100,
    seed: int = 0,
    history: dict[str, History] | None = None,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """The forecast figure of the sine chapters (the paper's Figures 2 and 6).

    The paper's Adam probes (``epochs``, initialised by ``seed``) of Protocol A (on the
    encoder) and Protocol B (on the forward predictor), fitted on ``probe_set``, forecast
    the first target step of the first ``n_show`` sequences of ``test_set`` (a
    ``data.Split``): all of them and the first one in full, side by side. With
    ``history`` ({label: History}) the training loss (forward and backward losses for
    BiJEPA, the total for classic JEPA) and the one sequence share the top row and the
    batch forecast spans the bottom row. Axes in order: loss, batch, one sequence.
    """

    dev = next(model.parameters()).device
    sub = Split(test_set.context[:n_show], test_set.target[:n_show]).to(dev)
    fa, truth = protocol_features(model, sub, "A")
    fb, _ = protocol_features(model, sub, "B")
    fit = probe_set.to(dev)
    pa = adam_probe(*protocol_features(model, fit, "A"), epochs=epochs, seed=seed)
    pb = adam_probe(*protocol_features(model, fit, "B"), epochs=epochs, seed=seed)
    if history:
        fig = plt.figure(figsize=panel_size(2, 2))
        gs = GridSpec(2, 2, figure=fig)
        axes = [fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[1, :])]
        axes.append(fig.add_subplot(gs[0, 1]))
    else:
        fig, axes = plt.subplots(1, 2, figsize=panel_size(2))
    if history:
        parts = ("fwd", "bwd") if model.bidirectional else ("total",)
        loss_curves(history, ax=axes[0], parts=parts, title="training loss")
    batch_forecast(
        truth.cpu(),
        pa(fa).cpu(),
        pb(fb).cpu(),
        ax=axes[1],
        title="batch forecast (held-out)",
    )
    single_forecast(
        sub.context[0].cpu(),
        sub.target[0].cpu(),
        pa(fa)[0].item(),
        pb(fb)[0].item(),
        ax=axes[-1],
        title="one held-out sequence",
    )
    if ylim is not None:
        axes[1].set_ylim(*ylim)
    fig.tight_layout()
    return fig


def _mean_band(ax, x, rows, color: str, label: str) -> None:
    """Mean over seeds with its 95% t-interval as a band; rows [seeds, points]."""

    cis = [mean_ci(col) for col in np.asarray(rows, dtype=float).T]
    mean = np.array([c.mean for c in cis])
    ax.plot(x, mean, "o-", color=color, lw=1.6, ms=4, label=label)
    if len(rows) > 1:
        ax.fill_between(
            x, [c.low for c in cis], [c.high for c in cis], color=color, alpha=0.2, lw=0
        )


def steps_figure(
    steps: Sequence[int],
    curves: dict[str, dict[str, Any]],
    lines: dict[str, dict[str, float]],
    panels: Sequence[tuple[str, str]],
    labels: dict[str, str],
    ncols: int = 2,
):
    """One panel per (metric key, y label): each variant's mean over seeds (band: 95%
    interval) against training steps; ``lines[key]`` draws horizontal reference lines
    {label: value} (random encoder, raw pixels, ...). curves[variant][key]: [seeds, steps].
    ``ncols``: 1 or 2 panels side by side."""
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=panel_size(ncols, nrows), squeeze=False
    )
    styles = iter([":", "--", "-.", (0, (1, 3))] * 3)
    ref_style = {}
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (key, ylabel) in zip(axes.flat, panels):
        for v, c in curves.items():
            _mean_band(ax, steps, c[key], COLORS.get(v, "k"), labels.get(v, v))
        for name, value in lines.get(key, {}).items():
            ref_style.setdefault(name, next(styles))
            ax.axhline(value, color="0.35", ls=ref_style[name], lw=1.1, label=name)
        ax.set_xlabel("training steps (batch 256)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def probe_budget_figure(
    curves: dict[str, dict[str, dict[int, float]]],
    labels: dict[str, str],
    marks: dict[str, dict[str, int]],
):
    """Held-out probe accuracy and decoder MSE against probe epochs (log axis), one line
    per model; ``marks[key]`` {label: epochs} draws vertical lines (the paper's, ours)."""
    fig, axes = plt.subplots(1, 2, figsize=panel_size(2))
    for ax, (key, ylabel) in zip(
        axes,
        (
            ("probe_acc_heldout", "held-out probe accuracy"),
            ("decoder_mse_heldout", "held-out decoder MSE"),
        ),
    ):
        for v, c in curves.items():
            e = sorted(c[key])
            ax.plot(
                e,
                [c[key][i] for i in e],
                "o-",
                ms=3,
                color=COLORS.get(v, "k"),
                label=labels.get(v, v),
            )
        for name, x in marks.get(key, {}).items():
            ax.axvline(x, color="0.5", ls=":", lw=1)
            ax.text(
                x,
                ax.get_ylim()[0],
                f" {name}",
                fontsize=SMALL_FONT_PT,
                va="bottom",
                color="0.3",
            )
        ax.set_xscale("log")
        ax.set_xlabel("probe epochs")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def sequences(seqs: torch.Tensor, context_len: int, ax=None, title: str | None = None):
    """A few raw sequences with the context/target split marked."""
    ax = ax or plt.subplots(figsize=panel_size())[1]
    for i, s in enumerate(np.asarray(seqs)):
        ax.plot(np.arange(len(s)), s, "-o", ms=3, lw=1.2, label=f"sample {i}")
    ax.axvspan(-0.5, context_len - 0.5, color="tab:blue", alpha=0.06, label="context")
    ax.axvspan(
        context_len - 0.5,
        seqs.shape[1] - 0.5,
        color="tab:green",
        alpha=0.06,
        label="target",
    )
    ax.set_xlabel("time step")
    ax.set_ylabel("amplitude")
    ax.grid(alpha=0.3)
    ax.legend(ncol=2)
    if title:
        ax.set_title(title)
    return ax


def phase_space(
    context: torch.Tensor,
    target: torch.Tensor,
    predictions: dict[str, torch.Tensor],
    ax=None,
    title: str | None = None,
):
    """3-D Lorenz plot: one context trajectory, its true next state and predicted next states."""
    if ax is None:
        fig = plt.figure(figsize=(5.5, 4.5))
        ax = fig.add_subplot(111, projection="3d")
    c, y = np.asarray(context), np.asarray(target)
    ax.plot(c[:, 0], c[:, 1], c[:, 2], "-", color="tab:blue", lw=1.5, label="context")
    ax.plot(
        y[:, 0],
        y[:, 1],
        y[:, 2],
        "-",
        color=COLORS["truth"],
        lw=1,
        alpha=0.6,
        label="true future",
    )
    ax.scatter(*y[0], color="k", s=40, label="true next state")
    markers = {"classic": "x", "bijepa": "^"}
    for name, p in predictions.items():
        p = np.asarray(p).ravel()
        ax.scatter(
            *p,
            s=50,
            marker=markers.get(name, "^"),
            label=f"{name} (Protocol B)",
            color=COLORS.get(name, None),
        )
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("z")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def hallucinations(
    left: torch.Tensor,
    right: torch.Tensor,
    generated: dict[str, torch.Tensor],
    n: int = 6,
) -> Figure:
    """Rows: digits. Columns: left half (input), true right half, each model's generated right half.

    Images in [0, 1] pixel units, [N, 1, 28, 14].
    """
    cols = 2 + len(generated)
    fig, axes = plt.subplots(n, cols, figsize=(min(COLUMN_IN, 1.6 * cols), 1.7 * n))
    titles = ["input (left)", "true right"] + [f"{k}" for k in generated]
    for i in range(n):
        imgs = [left[i, 0], right[i, 0]] + [g[i, 0] for g in generated.values()]
        for j, img in enumerate(imgs):
            ax = axes[i, j]
            ax.imshow(np.asarray(img), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j])
    fig.tight_layout()
    return fig


def seed_dots(
    values: dict[str, Sequence[float]],
    ax=None,
    ylabel: str = "held-out MSE",
    title: str | None = None,
    log: bool = False,
    lines: dict[str, float] | None = None,
):
    """Per-seed dots and the mean ± std for each named group; ``lines``: labelled reference
    values (baselines, the paper's number) drawn as horizontal dashed lines."""
    ax = ax or plt.subplots(figsize=panel_size())[1]
    for j, (name, y) in enumerate((lines or {}).items()):
        ax.axhline(y, ls="--", lw=1, color=f"C{(j + 5) % 10}", label=name)
    for i, (name, v) in enumerate(values.items()):
        v = np.asarray(v, dtype=float)
        jitter = np.linspace(-0.12, 0.12, len(v)) if len(v) > 1 else np.zeros(1)
        ax.plot(i + jitter, v, "o", alpha=0.7, color=COLORS.get(name, f"C{i}"))
        ax.errorbar(
            i + 0.25,
            v.mean(),
            yerr=v.std(ddof=1) if len(v) > 1 else 0,
            fmt="s",
            color="k",
            capsize=4,
        )
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(list(values), rotation=15)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if lines:
        ax.legend()
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title)
    return ax


def architecture(bidirectional: bool, ax=None, title: str | None = None):
    """Figure 1 of the paper as a diagram: classic JEPA (one direction) or BiJEPA (forward and
    backward directions sharing the online encoder f_θ and the EMA target encoder f̄).

    Why so long: one diagram drawn box by box and arrow by arrow, in reading order;
    split, its coordinates would be scattered over helpers.
    """
    ax = ax or plt.subplots(figsize=(COLUMN_IN, 2.4 if not bidirectional else 4.3))[1]
    colors = {
        "input": "#eeeeee",
        "online": "#cfe2f3",
        "target": "#f4cccc",
        "pred": "#d9ead3",
        "loss": "#fff2cc",
    }

    def box(
        x: float, y: float, text: str, kind: str, w: float = 1.5
    ) -> tuple[float, float, float]:
        ax.add_patch(
            FancyBboxPatch(
                (x, y - 0.28),
                w,
                0.56,
                boxstyle="round,pad=0.04",
                fc=colors[kind],
                ec="0.3",
                lw=1,
            )
        )
        ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=FONT_PT)
        return x, x + w, y

    def arrow(
        x0: float, y0: float, x1: float, y1: float, text: str = "", dashed: bool = False
    ) -> None:
        ax.annotate(
            "",
            (x1, y1),
            (x0, y0),
            arrowprops=dict(
                arrowstyle="->", lw=1.1, color="0.25", ls="--" if dashed else "-"
            ),
        )
        if text:
            ax.text(
                (x0 + x1) / 2,
                (y0 + y1) / 2 + 0.14,
                text,
                ha="center",
                va="bottom",
                fontsize=SMALL_FONT_PT,
            )

    def direction(
        y: float,
        src: str,
        dst: str,
        pred: str,
        s_src: str,
        s_hat: str,
        s_dst: str,
        loss: str,
    ) -> None:
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

    direction(
        1.4,
        "$x$",
        "$y$",
        "$P_{fwd}$" if bidirectional else "$P$",
        "$s_x$",
        "$\\hat s_y$",
        "$s_y$",
        "$L_{fwd}$" if bidirectional else "$L$",
    )
    top = 1.9
    if bidirectional:
        direction(
            -1.0,
            "$y$",
            "$x$",
            "$P_{bwd}$",
            "$s_y$",
            "$\\hat s_x$",
            "$s_x$",
            "$L_{bwd}$",
        )
        ax.text(
            7.1,
            0.2,
            "$L = \\alpha L_{fwd} + (1-\\alpha) L_{bwd}$  (Eq. 8)",
            ha="center",
            va="center",
            fontsize=FONT_PT,
        )
        ax.text(
            0.0,
            -2.65,
            "both directions share the online encoder $f_\\theta$ and the target encoder $\\bar f$ (EMA of $f_\\theta$)",
            fontsize=SMALL_FONT_PT,
            color="0.3",
        )
    ax.set_xlim(-0.2, 8.9)
    ax.set_ylim(-2.9 if bidirectional else -0.2, top)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


# ---------------------------------------------------------------- inline SVG (static pages)
#: Hex versions of ``COLORS`` for hand-written SVG.
SVG_COLORS = {
    "truth": "#8c8c8c",
    "A": "#d62728",
    "B": "#2ca02c",
    "fwd": "#1f77b4",
    "bwd": "#ff7f0e",
    "total": "#000000",
    "online": "#9467bd",
    "target": "#7f7f7f",
    "diverged": "#d62728",
    "grid": "#e0e0e0",
    "axis": "#555555",
}
_SVG_W, _SVG_H, _PANEL_W = 720, 200, 240
_TOP, _BOTTOM, _LEFT, _RIGHT = 30, 34, 44, 10


def _resample(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n`` points: means over contiguous windows (a spike survives as a raised mean)."""
    if len(x) <= n:
        return x, y
    parts = np.array_split(np.arange(len(x)), n)
    return np.array([x[p].mean() for p in parts]), np.array(
        [y[p].mean() for p in parts]
    )


def _nice_ticks(hi: float, max_ticks: int = 5) -> list[float]:
    """0, s, 2s, ... up to ``hi`` with s in {1, 2, 5} x 10^k (at most ``max_ticks`` + 1)."""
    if hi <= 0:
        return [0.0]
    base = 10 ** math.floor(math.log10(hi / max_ticks))
    step = next(m * base for m in (1, 2, 5, 10) if hi / (m * base) <= max_ticks)
    return [i * step for i in range(int(hi / step + 1e-9) + 1)]


def _tick_label(v: float) -> str:
    return (
        f"{v:g}"
        if 1e-3 <= v < 1e5
        else f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")
    )


class _SvgPanel:
    """One panel of the figure: maps data to pixels and writes SVG elements as strings."""

    def __init__(
        self,
        index: int,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        log_y: bool,
    ):
        self.x0 = index * _PANEL_W + _LEFT
        self.w = _PANEL_W - _LEFT - _RIGHT
        self.y0, self.h = _TOP, _SVG_H - _TOP - _BOTTOM
        self.xr, self.log = x_range, log_y
        self.yr = tuple(math.log10(v) for v in y_range) if log_y else y_range
        self.parts: list[str] = []

    def px(self, x: float) -> float:
        lo, hi = self.xr
        return self.x0 + (x - lo) / ((hi - lo) or 1.0) * self.w

    def py(self, y: float) -> float:
        lo, hi = self.yr
        v = math.log10(y) if self.log else y
        v = min(max(v, lo), hi)  # clamp: nothing is drawn outside the plot area
        return self.y0 + self.h - (v - lo) / ((hi - lo) or 1.0) * self.h

    def frame(
        self,
        title: str,
        xlabel: str,
        xticks: Sequence[float],
        yticks: Sequence[tuple[float, str]],
        legend: Sequence[tuple[str, str]],
    ) -> None:
        p, b = self.parts, self.y0 + self.h
        grid = "".join(f"M{self.x0} {self.py(v):.0f}h{self.w}" for v, _ in yticks)
        p.append(f'<path d="{grid}" stroke="{SVG_COLORS["grid"]}"/>')
        p.append(
            f'<rect x="{self.x0}" y="{self.y0}" width="{self.w}" height="{self.h}" '
            f'fill="none" stroke="{SVG_COLORS["axis"]}"/>'
        )
        p.append(f'<text x="{self.x0}" y="12" font-weight="bold">{title}</text>')
        lx = self.x0
        for text, color in legend:
            p.append(f'<text x="{lx}" y="25" fill="{color}">{text}</text>')
            lx += 7 * len(text) + 12
        p.append(
            '<g text-anchor="end">'
            + "".join(
                f'<text x="{self.x0 - 3}" y="{self.py(v) + 3:.0f}">{label}</text>'
                for v, label in yticks
            )
            + "</g>"
        )
        p.append(
            '<g text-anchor="middle">'
            + "".join(
                f'<text x="{self.px(v):.0f}" y="{b + 12}">{v:g}</text>' for v in xticks
            )
            + f'<text x="{self.x0 + self.w / 2:.0f}" y="{b + 27}">{xlabel}</text></g>'
        )

    def line(
        self,
        x: Sequence[float],
        y: Sequence[float],
        color: str,
        dash: str | None = None,
    ) -> None:
        pts = " ".join(f"{self.px(a):.0f},{self.py(c):.0f}" for a, c in zip(x, y))
        if pts:
            d = f' stroke-dasharray="{dash}"' if dash else ""
            self.parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{color}" '
                f'stroke-width="1.5"{d}/>'
            )


def _finite_curve(
    steps, values, until: int | None, positive: bool
) -> tuple[np.ndarray, ...]:
    x = np.asarray([np.nan if v is None else v for v in steps], dtype=float)
    y = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    keep = np.isfinite(x) & np.isfinite(y) & ((y > 0) if positive else True)
    if until is not None:
        keep &= x <= until
    return x[keep], y[keep]


def _log_axis(curves: Sequence[np.ndarray]) -> tuple[tuple[float, float], list]:
    """Range and (value, label) ticks of a log axis for positive data: whole decades when
    the data span one or more, else a padded range with ticks at 1-2-5 (or finer) steps."""
    vals = np.concatenate([c for c in curves if len(c)] or [np.array([1.0])])
    vmin, vmax = float(vals.min()), float(vals.max())
    lo, hi = math.floor(math.log10(vmin)), math.ceil(math.log10(vmax))
    if vmax / vmin >= 10:
        every = 1 if hi - lo <= 5 else 2
        ticks = [10.0**k for k in range(lo, hi + 1) if (k - lo) % every == 0]
        return (10.0**lo, 10.0**hi), [(v, _tick_label(v)) for v in ticks]
    a, b = vmin / 1.15, vmax * 1.15
    for mantissas in (
        (1, 2, 5),
        (1, 1.5, 2, 3, 5, 7),
        tuple(range(1, 10)),
        tuple(x / 10 for x in range(10, 100)),
    ):
        ticks = [
            m * 10.0**k
            for k in range(lo - 1, hi + 1)
            for m in mantissas
            if a <= m * 10.0**k <= b
        ]
        if len(ticks) >= 2:
            break
    if len(ticks) > 5:
        ticks = ticks[:: math.ceil(len(ticks) / 5)]
    if len(ticks) < 2:
        ticks = [vmin, vmax]
    return (a, b), [(v, _tick_label(float(f"{v:.3g}"))) for v in ticks]


def sweep_point_svg(
    show: dict, alpha: float, num_steps: int | None = None, max_points: int = 50
) -> str:
    """One grid point of a sweep (``bijepa_nb.experiments.sweep``'s ``show`` entry) as inline SVG.

    Three panels, hand-written SVG (no matplotlib, no ids, no scripts), about 4-5 KB:
    training losses (fwd and bwd, or total for ``alpha`` = 1) on a log axis, the mean
    online/target embedding norms on a log axis, and the held-out first target step of
    the ``n_show`` test waves with its Protocol A/B least-squares predictions. A diverged
    point shows its curves up to the divergence step and says "diverged at step N" in
    place of the forecast. ``num_steps`` sets the step axis (default: the last step
    logged); curves are drawn with at most ``max_points`` points (window means).

    Why so long: one self-contained SVG written element by element (axes, curves,
    forecasts, labels) so the static page needs no plotting library.
    """
    for key in (
        "steps",
        "loss_total",
        "loss_fwd",
        "loss_bwd",
        "norm_steps",
        "online_norm",
        "target_norm",
        "forecast",
        "diverged_at",
    ):
        if key not in show:
            raise KeyError(
                f"show entry lacks {key!r} (see the schema in bijepa_nb.experiments.sweep)"
            )
    div = show["diverged_at"]
    parts = ("total",) if alpha == 1.0 else ("fwd", "bwd")
    losses = {
        p: _finite_curve(show["steps"], show[f"loss_{p}"], div, True) for p in parts
    }
    norms = {
        k: _finite_curve(show["norm_steps"], show[f"{k}_norm"], div, True)
        for k in ("online", "target")
    }
    last = max(
        [float(c[0][-1]) for c in (*losses.values(), *norms.values()) if len(c[0])]
        + [float(div or 0), 1.0]
    )
    x_hi = float(num_steps) if num_steps else last
    xticks = _nice_ticks(x_hi, 4)
    svg = []

    # 1) training losses, log y
    y_range, yticks = _log_axis([c[1] for c in losses.values()])
    loss = _SvgPanel(0, (0.0, x_hi), y_range, log_y=True)
    legend = [(f"— {p}" if p != "bwd" else "-- bwd", SVG_COLORS[p]) for p in parts]
    loss.frame("training loss", "training step", xticks, yticks, legend)
    for p, (x, y) in losses.items():
        loss.line(
            *_resample(x, y, max_points), SVG_COLORS[p], "4 2" if p == "bwd" else None
        )
    if div is not None:
        loss.parts.append(
            f'<path d="M{loss.px(div):.0f} {loss.y0}v{loss.h}" '
            f'stroke="{SVG_COLORS["diverged"]}" stroke-dasharray="3 2"/>'
        )
    svg += loss.parts

    # 2) embedding norms, log y
    y_range, yticks = _log_axis([c[1] for c in norms.values()])
    norm = _SvgPanel(1, (0.0, x_hi), y_range, log_y=True)
    norm.frame(
        "embedding norms",
        "training step",
        xticks,
        yticks,
        [("— online", SVG_COLORS["online"]), ("-- target", SVG_COLORS["target"])],
    )
    for k, (x, y) in norms.items():
        norm.line(
            *_resample(x, y, max_points),
            SVG_COLORS[k],
            "4 2" if k == "target" else None,
        )
    svg += norm.parts

    # 3) held-out forecast (or the divergence)
    fc = show["forecast"]
    n = len(fc["truth"]) if fc else 0
    fore = _SvgPanel(2, (-0.5, max(n, 1) - 0.5), (-1.3, 1.3), log_y=False)
    fore.frame(
        "held-out forecast" if fc else "held-out forecast: none",
        "test wave",
        _nice_ticks(max(n - 1, 1), 4) if fc else [],
        [(-1.0, "-1"), (0.0, "0"), (1.0, "1")],
        [
            ("● truth", SVG_COLORS["truth"]),
            ("× A", SVG_COLORS["A"]),
            ("▲ B", SVG_COLORS["B"]),
        ]
        if fc
        else [],
    )
    if fc:
        t, a, b = ([float(v) for v in fc[k]] for k in ("truth", "pred_A", "pred_B"))
        xs = [fore.px(i) for i in range(n)]
        miss = "".join(
            f"M{x:.0f} {fore.py(ti):.0f}V{fore.py(bi):.0f}"
            for x, ti, bi in zip(xs, t, b)
        )
        dots = "".join(f"M{x:.0f} {fore.py(v):.0f}h0" for x, v in zip(xs, t))
        cross = "".join(
            f"M{x - 3:.0f} {fore.py(v) - 3:.0f}l6 6m0-6l-6 6" for x, v in zip(xs, a)
        )
        tri = "".join(f"M{x:.0f} {fore.py(v) - 4:.0f}l4 7h-8z" for x, v in zip(xs, b))
        fore.parts += [
            f'<path d="{miss}" stroke="{SVG_COLORS["B"]}" stroke-dasharray="1 2"/>',
            (
                f'<path d="{dots}" stroke="{SVG_COLORS["truth"]}" stroke-width="7" '
                f'stroke-linecap="round" opacity="0.6"/>'
            ),
            f'<path d="{cross}" stroke="{SVG_COLORS["A"]}" stroke-width="1.8"/>',
            f'<path d="{tri}" fill="{SVG_COLORS["B"]}"/>',
        ]
    else:
        text = f"diverged at step {div}" if div is not None else "no forecast saved"
        fore.parts.append(
            f'<text x="{fore.x0 + fore.w / 2:.0f}" y="{fore.y0 + fore.h / 2:.0f}" '
            f'text-anchor="middle" font-size="13" font-weight="bold" '
            f'fill="{SVG_COLORS["diverged"]}">{text}</text>'
        )
    svg += fore.parts
    label = f"training loss, embedding norms and held-out forecast (seed {show.get('seed')})"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_SVG_W} {_SVG_H}" '
        f'width="100%" style="max-width:{_SVG_W}px;background:#fff" role="img" '
        f'aria-label="{label}" font-family="sans-serif" font-size="11">'
        + "".join(svg)
        + "</svg>"
    )


def heat_map(
    values: np.ndarray,
    alphas: Sequence[float],
    taus: Sequence[float],
    ax=None,
    title: str | None = None,
    label: str = "held-out MSE",
    marks: dict[str, tuple[float, float]] | None = None,
    hatch: np.ndarray | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = True,
):
    """A map of ``values`` [alpha, ema_momentum] (seed means) with alpha on the y-axis and the EMA
    momentum on the x-axis (one column per grid value, evenly spaced). NaN cells (no seed
    finished) are grey; ``hatch`` [alpha, ema_momentum] (bool) crosses cells where some seed
    diverged; ``marks``: labelled (alpha, ema_momentum) points, e.g. the paper's and the best.

    Why so many parameters: the map and its axes plus drawing options,
    each with a default.
    """
    ax = ax or plt.subplots(figsize=(COLUMN_IN, 3.6))[1]
    v = np.ma.masked_invalid(np.asarray(values, dtype=float))
    norm = (LogNorm if log else Normalize)(
        vmin=vmin if vmin is not None else v.min(),
        vmax=vmax if vmax is not None else v.max(),
    )
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.8")
    im = ax.imshow(v, origin="lower", aspect="auto", cmap=cmap, norm=norm)
    ax.set_xticks(range(len(taus)))
    ax.set_xticklabels([f"{t:g}" for t in taus], rotation=45)
    ax.set_yticks(range(len(alphas)))
    ax.set_yticklabels([f"{a:g}" for a in alphas])
    ax.set_xlabel("EMA momentum τ")
    ax.set_ylabel("α (forward weight; 1 = classic)")
    if hatch is not None:
        for i, j in zip(*np.nonzero(np.asarray(hatch))):
            ax.plot(j, i, "x", color="red", ms=7, mew=1.5)
    for k, (name, (a, t)) in enumerate((marks or {}).items()):
        ax.plot(
            list(taus).index(t),
            list(alphas).index(a),
            ["o", "s", "D", "^"][k % 4],
            mfc="none",
            mec=["white", "magenta", "orange", "cyan"][k % 4],
            ms=13,
            mew=2,
            label=name,
        )
    if marks:
        ax.legend(loc="upper left", framealpha=0.8)
    plt.colorbar(im, ax=ax, label=label, fraction=0.046)
    if title:
        ax.set_title(title)
    return ax


def profile(
    x: Sequence[float],
    groups: dict[str, np.ndarray],
    ax=None,
    xlabel: str = "",
    ylabel: str = "held-out MSE",
    title: str | None = None,
    level: float = 0.95,
    log: bool = True,
    categorical: bool = False,
    interval=None,
):
    """Seed means with ``level`` t-intervals along one grid axis, one line per group;
    ``groups[name]``: [len(x), seeds] arrays (NaN seeds are dropped). ``categorical`` spaces
    the x values evenly (for the EMA momentum, whose interesting values crowd near 1).
    ``interval(values, level)`` gives each point and band (default ``stats.mean_ci``;
    ``stats.geometric_mean_ci`` for geometric means with log-scale intervals).

    Why so many parameters: the values and their axis plus drawing options, each
    with a default.
    """

    interval = interval or mean_ci

    ax = ax or plt.subplots(figsize=panel_size())[1]
    pos = np.arange(len(x)) if categorical else np.asarray(x, dtype=float)
    for i, (name, v) in enumerate(groups.items()):
        mean, lo, hi = [], [], []
        for row in np.asarray(v, dtype=float):
            row = row[np.isfinite(row)]
            if len(row) >= 2:
                c = interval(row, level)
                mean.append(c.mean), lo.append(c.low), hi.append(c.high)
            else:
                mean.append(np.nan), lo.append(np.nan), hi.append(np.nan)
        color = COLORS.get(name, f"C{i}")
        ax.plot(pos, mean, "o-", color=color, label=name, ms=4)
        ax.fill_between(
            pos, np.maximum(lo, 1e-12) if log else lo, hi, color=color, alpha=0.2
        )
    if categorical:
        ax.set_xticks(pos)
        ax.set_xticklabels([f"{t:g}" for t in x])
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def grouped_bars(
    values: dict[tuple[str, str], Sequence[float]],
    groups: Sequence[str],
    series: Sequence[str],
    ax=None,
    ylabel: str = "",
    chance: float | None = None,
    ylim: tuple[float, float] | None = None,
):
    """Bars of the mean over seeds (± sample std) of ``values[group, series]``: one group
    of bars per ``groups`` entry, one bar per ``series`` entry; ``chance``: a dashed
    reference line (e.g. 0.5 for a ROC AUC)."""
    ax = ax or plt.subplots(figsize=panel_size())[1]
    width = 0.8 / len(series)
    for k, name in enumerate(series):
        v = [np.asarray(values[g, name], dtype=float) for g in groups]
        x = np.arange(len(groups)) + (k - (len(series) - 1) / 2) * width
        std = [a.std(ddof=1) if len(a) > 1 else 0.0 for a in v]
        ax.bar(x, [a.mean() for a in v], width, yerr=std, capsize=3, label=name)
    if chance is not None:
        ax.axhline(chance, color="k", lw=0.8, ls="--")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(list(groups))
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.legend(ncol=2)
    ax.grid(alpha=0.3, axis="y")
    return ax


def sample_clouds(
    samples: np.ndarray,
    point: np.ndarray,
    truth: np.ndarray,
    ax=None,
    xlabel: str = "sequence",
    ylabel: str = "value",
):
    """Forecast samples of a few items beside a point forecast and the truth.

    samples [M, n] (M samples of n items), point [n], truth [n]: one column per item.
    """
    ax = ax or plt.subplots(figsize=panel_size())[1]
    m, n = samples.shape
    for j in range(n):
        jitter = np.random.default_rng(j).uniform(-0.15, 0.15, m)
        first = j == 0
        ax.plot(j + jitter, samples[:, j], ".", color="tab:green", alpha=0.5,
                label="stochastic: samples" if first else None)  # fmt: skip
        ax.plot(j, point[j], "x", color="tab:red", ms=9, mew=2,
                label="deterministic forecast" if first else None)  # fmt: skip
        ax.plot(j, truth[j], "o", color="0.4", ms=9, alpha=0.6,
                label="truth" if first else None)  # fmt: skip
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def seed_bands(
    panels: Sequence[dict[str, tuple[np.ndarray, np.ndarray]]],
    ylabels: Sequence[str],
    log: Sequence[bool] = (),
    reference: float | None = 1.0,
    xlabel: str = "training step",
) -> Figure:
    """One axis per panel; panel: name -> (x [R], values [R, K] over K seeds), drawn as
    the mean over seeds with a min-max band. ``log``: per panel, a log y axis;
    ``reference``: a dashed line on the linear panels (e.g. a gain of 1). Panels run
    two to a row, in reading order."""
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, grid = plt.subplots(
        nrows, ncols, figsize=panel_size(ncols, nrows), squeeze=False
    )
    axes = grid.flat[: len(panels)]
    for ax in grid.flat[len(panels) :]:
        ax.axis("off")
    for i, (ax, panel, ylabel) in enumerate(zip(axes, panels, ylabels)):
        for j, (name, (x, v)) in enumerate(panel.items()):
            v = np.asarray(v, dtype=float).reshape(len(x), -1)
            color = COLORS.get(name, f"C{j}")
            ax.plot(x, v.mean(1), color=color, label=name)
            ax.fill_between(x, v.min(1), v.max(1), color=color, alpha=0.2)
        if i < len(log) and log[i]:
            ax.set_yscale("log")
        elif reference is not None:
            ax.axhline(reference, color="k", lw=0.6, ls="--")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


# --- chapters 01-03


def architectures() -> Figure:
    """Figure 1 of the paper: classic JEPA (A) above BiJEPA (B), each the column's width."""
    fig, axes = plt.subplots(
        2, 1, figsize=(COLUMN_IN, 6.6), gridspec_kw=dict(height_ratios=(2.2, 4.4))
    )
    architecture(False, ax=axes[0], title="(A) classic JEPA")
    architecture(True, ax=axes[1], title="(B) BiJEPA")
    return fig


def seed_dot_panels(
    results: dict[str, Sequence[dict[str, float]]],
    panels: dict[str, str],
    ylabel: str = "held-out MSE",
) -> Figure:
    """One ``seed_dots`` axis per panel: results: name -> one dict of metrics per seed;
    panels: axis title -> metric key. Each axis shows every name's seeds and mean ± std;
    two axes to a row."""
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, grid = plt.subplots(
        nrows, ncols, figsize=panel_size(ncols, nrows), squeeze=False
    )
    for ax in grid.flat[len(panels) :]:
        ax.axis("off")
    for ax, (title, key) in zip(grid.flat, panels.items()):
        seed_dots(
            {n: [m[key] for m in per_seed] for n, per_seed in results.items()},
            ax=ax,
            ylabel=ylabel,
            title=title,
        )
    fig.tight_layout()
    return fig


def loss_and_norms(
    histories: dict[str, History], window: int = 50, title: str = "training loss"
) -> Figure:
    """Two axes for runs named by ``histories``: the total training loss (moving average
    over ``window`` steps, log scale) above the online and target embedding norms."""
    fig, axes = plt.subplots(2, 1, figsize=panel_size(1, 2), sharex=True)
    loss_curves(histories, ax=axes[0], parts=("total",), window=window, title=title)
    norm_curves(histories, ax=axes[1], title="embedding norms")
    axes[0].set_xlabel("")  # the shared step axis is labelled once, below
    fig.tight_layout()
    return fig


# --- chapter 10


def map_row(
    panels: dict[str, np.ndarray],
    alphas: Sequence[float],
    taus: Sequence[float],
    marks: dict[str, dict[str, tuple[float, float]]] | None = None,
    hatch: dict[str, np.ndarray] | None = None,
    label: str = "held-out MSE",
    saturate: float = 90.0,
) -> Figure:
    """One ``heat_map`` per panel, one map to a row (each the column's width) on one
    log colour scale.

    panels: title -> values [alpha, ema_momentum] (e.g. geometric means over seeds);
    marks / hatch: title -> that panel's ``marks`` / ``hatch``. The scale runs from the
    lowest value of all panels to their ``saturate`` percentile: the worst cells share
    the brightest colour, so that a few very bad cells do not flatten the rest."""
    values = np.stack([np.asarray(v, dtype=float) for v in panels.values()])
    lo, hi = np.nanmin(values), np.nanpercentile(values, saturate)
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(COLUMN_IN, MAP_ROW_IN * len(panels)), squeeze=False
    )
    for ax, (title, v) in zip(axes[:, 0], panels.items()):
        heat_map(
            v,
            alphas,
            taus,
            ax=ax,
            title=title,
            marks=(marks or {}).get(title),
            hatch=(hatch or {}).get(title),
            vmin=lo,
            vmax=hi,
            label=label,
        )
    fig.tight_layout()
    return fig


def profile_row(
    x: Sequence[float],
    panels: dict[str, dict[str, np.ndarray]],
    xlabel: str,
    level: float = 0.95,
    categorical: bool = False,
) -> Figure:
    """One ``profile`` per panel, two to a row: panels: title -> {line name: [len(x),
    seeds]}. Points are geometric means over seeds, bands their ``level`` t-intervals on
    the log scale (``stats.geometric_mean_ci``)."""

    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, grid = plt.subplots(
        nrows, ncols, figsize=panel_size(ncols, nrows), squeeze=False
    )
    for ax in grid.flat[len(panels) :]:
        ax.axis("off")
    for ax, (title, lines) in zip(grid.flat, panels.items()):
        profile(
            x,
            lines,
            ax=ax,
            xlabel=xlabel,
            title=title,
            level=level,
            categorical=categorical,
            interval=geometric_mean_ci,
        )
    fig.tight_layout()
    return fig


def explosion_maps(
    diverged: np.ndarray,
    growth_first: np.ndarray,
    growth_second: np.ndarray,
    alphas: Sequence[float],
    taus: Sequence[float],
    num_seeds: int,
    mode: str,
    paper: tuple[float, float],
) -> Figure:
    """Three maps of one stability mode over [alpha, ema_momentum]: how many of
    ``num_seeds`` seeds diverged (linear scale), and the growth of the online embedding
    norm in the first half (middle / start) and second half (end / middle) of training;
    one map to a row, each the column's width."""
    fig, axes = plt.subplots(3, 1, figsize=(COLUMN_IN, 3 * MAP_ROW_IN))
    heat_map(
        np.asarray(diverged, dtype=float),
        alphas,
        taus,
        ax=axes[0],
        log=False,
        title=f"{mode}: seeds diverged (of {num_seeds})",
        label="seeds",
        vmin=0,
        vmax=num_seeds,
    )
    for ax, growth, half, ratio in (
        (axes[1], growth_first, "first", "middle / start"),
        (axes[2], growth_second, "second", "end / middle"),
    ):
        heat_map(
            growth,
            alphas,
            taus,
            ax=ax,
            title=f"norm growth, {half} half",
            label=ratio,
            marks={"paper": paper},
        )
    fig.tight_layout()
    return fig


# --- chapters 04 and 05
def integrator_errors(
    rel: dict[str, np.ndarray], context_len: int, dt: float = 0.01, ax=None
):
    """Relative error of integrated states against an accurate solver, per step.

    rel: {integrator: [starts, steps]} (``baselines.lorenz_integrator_errors``); each drawn
    as its median over starts with a 10-90% band, on a log axis, with the end of the
    context marked."""
    ax = ax or plt.subplots(figsize=panel_size())[1]
    colors = {"euler": "tab:red", "rk4": "tab:blue"}
    for i, (name, r) in enumerate(rel.items()):
        steps = np.arange(1, r.shape[1] + 1)
        q10, q50, q90 = np.percentile(r, [10, 50, 90], axis=0)
        color = colors.get(name, f"C{i}")
        ax.plot(steps, q50, color=color, label=f"{name}, median")
        ax.fill_between(steps, q10, q90, color=color, alpha=0.2)
    ax.axvline(context_len, color="k", lw=0.6, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel(f"step (dt = {dt:g})")
    ax.set_ylabel("relative error vs DOP853")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def lorenz_samples(context: torch.Tensor, target: torch.Tensor, ax=None):
    """A few Lorenz trajectories in 3-D: context [N, C, 3] in blue, target [N, T, 3] in
    grey (all N drawn)."""
    if ax is None:
        ax = plt.figure(figsize=(6, 4.5)).add_subplot(111, projection="3d")
    for c, t in zip(np.asarray(context), np.asarray(target)):
        ax.plot(*c.T, color="tab:blue", lw=1.5)
        ax.plot(*t.T, color="0.5", lw=1.2)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("z")
    return ax


#: Marker and colour of each variant's Protocol B forecasts in the Lorenz panel.
LORENZ_STYLE = {"classic": ("x", "tab:red"), "expressive": ("^", "tab:green")}


def lorenz_forecast_panel(
    runs: dict[str, Any],
    labels: dict[str, str],
    n_show: int = 20,
    epochs: int = 200,
    seed: int = 0,
    window: int = 50,
) -> Figure:
    """The Lorenz forecast figure (the paper's Figure 3), one run per variant.

    runs: variant -> an ``experiments.RunResult`` (model, history, probe_set, test_set;
    the test set of the first run is used for all); labels: variant -> legend label.
    Each model's Adam probe of Protocol B (``epochs``, initialised by ``seed``), fitted
    on its probe set, forecasts the first target state of the first ``n_show`` held-out
    trajectories. Top left: total training losses (``window``-step moving average). Top
    right: the first trajectory in phase space with every model's predicted next state.
    Bottom (full width): the x coordinate of the forecasts against the truth. Axes in
    order: loss, forecasts, phase space.
    """

    first = next(iter(runs.values()))
    test = first.test_set
    fig = plt.figure(figsize=(COLUMN_IN, 2 * ROW_IN + 0.6))
    gs = GridSpec(2, 2, figure=fig, height_ratios=(ROW_IN + 0.6, ROW_IN))
    loss_curves(
        {labels[m]: r.history for m, r in runs.items()},
        ax=fig.add_subplot(gs[0, 0]),
        parts=("total",),
        window=window,
        title="training loss",
    )
    preds = {}
    for m, r in runs.items():
        dev = next(r.model.parameters()).device
        sub = Split(test.context[:n_show], test.target[:n_show]).to(dev)
        fit = r.probe_set.to(dev)
        pb = adam_probe(*protocol_features(r.model, fit, "B"), epochs=epochs, seed=seed)
        preds[m] = pb(protocol_features(r.model, sub, "B")[0]).cpu()
    truth = first_target_step(test.target[:n_show]).cpu()
    ax = fig.add_subplot(gs[1, :])
    idx = np.arange(len(truth))
    ax.plot(idx, truth[:, 0], "o", color="0.55", ms=8, alpha=0.5, label="truth")
    for i, (m, p) in enumerate(preds.items()):
        marker, color = LORENZ_STYLE.get(m, ("^", f"C{i}"))
        ax.plot(idx, p[:, 0], marker, color=color, ms=7, mew=2, label=labels[m])
    ax.set_xlabel("test trajectory")
    ax.set_ylabel("x at $t_{20}$ (normalised)")
    ax.grid(alpha=0.3)
    ax.legend()
    phase_space(
        test.context[0].cpu(),
        test.target[0].cpu(),
        {("classic" if m == "classic" else "bijepa"): p[0] for m, p in preds.items()},
        ax=fig.add_subplot(gs[0, 1], projection="3d"),
        title="trajectory 0",
    )
    fig.tight_layout()
    return fig


# --- chapters 06 and 08
def digit_halves(left: torch.Tensor, right: torch.Tensor) -> Figure:
    """The context and the target of the MNIST experiment side by side: left halves on
    the top row, the same digits' right halves below. left, right: [N, 1, 28, 14]."""
    n = len(left)
    fig, axes = plt.subplots(
        2, n, figsize=(min(COLUMN_IN, COLUMN_IN / 8 * n), 3.4), squeeze=False
    )
    for i in range(n):
        axes[0, i].imshow(np.asarray(left[i, 0]), cmap="gray")
        axes[1, i].imshow(np.asarray(right[i, 0]), cmap="gray")
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].set_title("left", loc="left")
    axes[1, 0].set_title("right", loc="left")
    return fig


def reproduction_seed_panels(
    res: dict[str, Any],
    panels: Sequence[dict[str, Any]],
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """One ``seed_dots`` panel per entry of ``panels``, from a reproduction file ``res``
    (``bijepa_nb.experiments.reproduce``): every config's per-seed values of ``panel["key"]``,
    the baselines named in ``panel["baselines"]`` as dashed lines at their means, and
    the paper's single run of ``panel["paper"]`` (a key of ``res["paper"]``) as a red
    star. Other entries: ``title``, ``log`` (default True). One panel to a row, each the
    column's width (``figsize`` by default ``panel_size(1, len(panels))``), so that the
    configs' names and the baselines' legend stay readable."""

    figsize = figsize or panel_size(1, len(panels))
    fig, axes = plt.subplots(len(panels), 1, figsize=figsize, squeeze=False)
    configs = list(res["configs"])
    for ax, p in zip(axes[:, 0], panels):
        seed_dots(
            {res["configs"][c]["label"]: values(res, c, p["key"]) for c in configs},
            ax=ax,
            log=p.get("log", True),
            title=p.get("title"),
            ylabel=res["metrics"][p["key"]]["unit"],
            lines={b: float(np.mean(baseline(res, b))) for b in p.get("baselines", ())},
        )
        if p.get("paper"):
            paper = [res["paper"][c][p["paper"]] for c in configs]
            ax.plot(range(len(configs)), paper, "*", color="red", ms=12,
                    label="paper (one run)")  # fmt: skip
            ax.legend()
    fig.tight_layout()
    return fig


def interval_panels(
    panels: dict[str, dict[str, Sequence[float]]],
    lines: dict[str, dict[str, float]] | None = None,
    xlabel: str = "held-out MSE (log scale)",
    level: float = 0.95,
) -> Figure:
    """One panel per entry of ``panels`` (at most two side by side): for each named group
    its per-seed values as dots and its geometric mean with the ``level`` interval
    (``stats.geometric_mean_ci``) as a bar, one row per group, on a log axis; ``lines``:
    per panel, labelled reference values (baselines) as vertical dashed lines."""
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(7, 0.32 * max(map(len, panels.values())) + 1.4),
        sharey=True,
        squeeze=False,
    )
    for ax, (title, groups) in zip(axes[0], panels.items()):
        names = list(groups)
        for j, (name, x) in enumerate((lines or {}).get(title, {}).items()):
            ax.axvline(x, ls="--", lw=1, color=f"C{(j + 6) % 10}", label=name)
        for i, name in enumerate(names):
            v = np.asarray(groups[name], dtype=float)
            v = v[np.isfinite(v)]
            ax.plot(v, np.full(len(v), i) + 0.18, ".", color="0.6", ms=3)
            if len(v) > 1:
                iv = geometric_mean_ci(v, level)
                ax.errorbar(
                    iv.mean,
                    i,
                    xerr=[[iv.mean - iv.low], [iv.high - iv.mean]],
                    fmt="o",
                    color="k",
                    ms=4,
                    capsize=3,
                )
        ax.set_xscale("log")
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names, fontsize=9)
        if ax is axes[0, 0]:  # the rows top-down, once: the panels share the y axis
            ax.invert_yaxis()
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="x")
        if (lines or {}).get(title):
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


#: Line styles of chapter 12's regime figures: the JEPAs solid, baselines dashed.
REGIME_STYLES = {
    "classic": ("tab:purple", "-"),
    "expressive": ("tab:blue", "-"),
    "mean": ("0.6", ":"),
    "persistence": ("tab:brown", "--"),
    "linear_extrapolation": ("tab:pink", "--"),
    "lstsq_context": ("tab:orange", "--"),
    "ridge_context": ("tab:olive", "--"),
    "sinusoid_fit": ("tab:green", "--"),
    "raw_pixels": ("tab:orange", "--"),
    "random_encoder": ("0.5", ":"),
}


def regime_panels(
    panels: dict[str, tuple[Sequence[float], dict[str, np.ndarray]]],
    labels: dict[str, str],
    xlabel: str,
    ylabel: str,
    higher_is_better: bool = False,
    ncols: int = 2,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """Scores against a regime parameter, one panel per title: panels[title] = (x
    [P], {series: values [P, seeds]}). Each line is the geometric mean over seeds
    (errors, log axis) or the mean (accuracies, in %), its band the 95% interval;
    ``labels`` names the series (those missing from it are not drawn)."""
    n = len(panels)
    rows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        rows, min(ncols, n), figsize=(7, 2.9 * rows), squeeze=False
    )
    for ax, (title, (x, series)) in zip(axes.flat, panels.items()):
        for name, vals in series.items():
            if name not in labels:
                continue
            color, style = REGIME_STYLES.get(name, ("black", "-"))
            ivs = [
                mean_ci(100 * v[np.isfinite(v)])
                if higher_is_better
                else geometric_mean_ci(v[np.isfinite(v)])
                for v in vals
            ]
            mid = [iv.mean for iv in ivs]
            ax.plot(x, mid, style, color=color, marker="o", ms=3, label=labels[name])
            ax.fill_between(
                x,
                [iv.low for iv in ivs],
                [iv.high for iv in ivs],
                color=color,
                alpha=0.15,
                lw=0,
            )
        if not higher_is_better:
            ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_xticks(list(x), [f"{v:g}" for v in x])
        ax.minorticks_off()
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.04 / rows, 1, 1))
    return fig
