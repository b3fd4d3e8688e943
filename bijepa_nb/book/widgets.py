"""The playground: sliders over precomputed sweep runs, and live retraining in a kernel.

``sweep_explorer`` shows one grid point of a sweep (``bijepa_nb.experiments.sweep``'s JSON) at a time:
a mode menu and alpha / EMA-momentum sliders whose ``index`` is ``jslink``ed to nested
``Stack`` widgets of precomputed ``HTML`` leaves, so the sliders work on a static page
(the saved widget state, no kernel). Each slider's readout is a read-only ``Stack`` of
labels linked the same way; book/_static/playground.css and playground-aria.js make the
rows fit a phone, outline the focused handle and give it an ``aria-valuetext``. In a live kernel each change also retrains one model
(``retrain``) into an ``Output`` below. ``playground`` is the live-only panel.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.gridspec import GridSpec

from ..analysis.plotting import (
    batch_forecast,
    loss_curves,
    norm_curves,
    panel_size,
    sweep_point_svg,
)
from ..analysis.stats import geometric_mean_ci
from ..core.config import (
    STABILITY_MODES,
    SineConfig,
    check_choice,
    check_float,
    check_int,
    resolve_device,
)
from ..core.data import SineStream, Split, sine_split
from ..core.models import build_model
from ..core.probes import lstsq_probe, protocol_features
from ..core.training import TrainingDiverged, train
from ..experiments.registry import paper_config
from ..experiments.sweep import validate


def retrain(
    alpha: float = 0.5,
    ema_momentum: float = 0.995,
    mode: str = "expressive",
    num_steps: int = 600,
    seed: int = 0,
    device: str = "auto",
    n_probe: int = 500,
    n_show: int = 20,
) -> dict:
    """Train one sine model with these settings and draw loss, norms and forecasts.

    Returns the held-out least-squares Protocol A/B errors and the seconds it took.
    """
    check_float("alpha", alpha, 0.0, 1.0)
    check_float("ema_momentum", ema_momentum, 0.0, 1.0)
    check_choice("mode", mode, tuple(STABILITY_MODES))
    check_int("num_steps", num_steps, 10, 20000)
    t0 = time.perf_counter()
    dev = resolve_device(device)
    mc, tc = paper_config(
        "sine",
        mode,
        alpha,
        num_steps=num_steps,
        ema_momentum=ema_momentum,
        seed=seed,
        device=dev.type,
        progress=False,
    )
    model = build_model(mc, tc, dev)
    scfg = SineConfig(n_probe=n_probe, n_test=n_probe)
    title = f"alpha={alpha:g}, tau={ema_momentum:g}, {mode}, {num_steps} steps"
    try:
        hist = train(model, SineStream(scfg, seed, tc.batch_size, dev), tc)
    except (
        TrainingDiverged
    ) as err:  # show what happened up to the failure, never a NaN plot
        hist = err.history
        title += f" — diverged at step {err.step}"
    probe_set, test_set = (
        sine_split(scfg, seed, "probe").to(dev),
        sine_split(scfg, seed, "test").to(dev),
    )
    # loss and norms side by side, the forecast below them at the column's width
    fig = plt.figure(figsize=panel_size(2, 2))
    grid = GridSpec(2, 2, figure=fig)
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
    axes.append(fig.add_subplot(grid[1, :]))
    parts = ("total",) if alpha == 1.0 else ("fwd", "bwd")
    loss_curves({"model": hist}, ax=axes[0], parts=parts, title="training loss")
    norm_curves({"model": hist}, ax=axes[1], title="embedding norms")
    scores = {}
    if len(hist) == num_steps:
        sub = Split(test_set.context[:n_show], test_set.target[:n_show])
        preds = {}
        for p in ("A", "B"):
            f_tr, t_tr = protocol_features(model, probe_set, p)
            ls = lstsq_probe(f_tr, t_tr)
            f_te, t_te = protocol_features(model, test_set, p)
            scores[p] = ls.mse(f_te, t_te)
            preds[p] = ls(protocol_features(model, sub, p)[0]).cpu()
        truth = protocol_features(model, sub, "A")[1].cpu()
        batch_forecast(
            truth,
            preds["A"],
            preds["B"],
            ax=axes[2],
            title=f"held-out MSE: A {scores['A']:.4f}, B {scores['B']:.4f}",
        )
        axes[2].set_ylim(-1.3, 1.3)
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()
    scores["seconds"] = time.perf_counter() - t0
    return scores


def _into_output(out, fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)`` and make what it printed and displayed (figures) the
    contents of the ``ipywidgets.Output`` ``out``, by setting ``out.outputs``; returns
    what ``fn`` returned.

    Not ``with out:``: that asks the frontend to route the cell's outputs into the
    widget, and a headless executor (nbclient, so papermill and ``python -m
    bijepa_nb.book``) answers each routed output by sending a comm message on the
    shell channel while it waits on that channel for the cell's ``execute_reply``.
    On a busy machine that wait missed the reply and never woke up (chapter 7, no
    precomputed runs: cell 6 sat idle until the cell timeout; jupyter/nbclient#312).
    Setting ``outputs`` only sends widget state from the kernel, which every
    frontend renders.
    """
    from IPython.utils.capture import capture_output

    with capture_output(stdout=True, stderr=True, display=True) as cap:
        result = fn(*args, **kwargs)
    outputs = [
        {"output_type": "stream", "name": name, "text": text}
        for name, text in (("stdout", cap.stdout), ("stderr", cap.stderr))
        if text
    ]
    for shown in cap.outputs:
        data = {
            k: base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v
            for k, v in shown.data.items()
        }
        outputs.append(
            {"output_type": "display_data", "data": data, "metadata": shown.metadata}
        )
    out.outputs = tuple(outputs)
    return result


def playground(
    device: str = "auto",
    alpha: float = 0.5,
    ema_momentum: float = 0.995,
    mode: str = "expressive",
    num_steps: int = 600,
    seed: int = 0,
):
    """The live-only panel: sliders for alpha, EMA momentum, steps, seed and a stability-mode
    menu that retrain on every change (a kernel is needed; on a static page they do nothing).
    The keyword arguments are the initial slider values.

    Why so long: one panel, its controls, layout and the callback that retrains, kept
    together so the widget wiring reads in one place.
    """
    import ipywidgets as W
    from IPython.display import display

    style = {"description_width": "140px"}
    layout = W.Layout(width="460px")
    alpha = W.FloatSlider(
        value=alpha,
        min=0.0,
        max=1.0,
        step=0.05,
        description="alpha (1 = classic)",
        continuous_update=False,
        style=style,
        layout=layout,
    )
    ema = W.FloatSlider(
        value=ema_momentum,
        min=min(0.9, ema_momentum),
        max=1.0,
        step=0.001,
        readout_format=".3f",
        description="EMA momentum τ",
        continuous_update=False,
        style=style,
        layout=layout,
    )
    steps = W.IntSlider(
        value=num_steps,
        min=min(100, num_steps),
        max=max(3000, num_steps),
        step=100,
        description="training steps",
        continuous_update=False,
        style=style,
        layout=layout,
    )
    mode = W.Dropdown(
        options=list(STABILITY_MODES),
        value=mode,
        description="stability mode",
        style=style,
        layout=layout,
    )
    seed = W.IntSlider(
        value=seed,
        min=0,
        max=max(9, seed),
        description="seed",
        continuous_update=False,
        style=style,
        layout=layout,
    )
    status = W.HTML()
    out = W.Output()
    controls = {
        "alpha": alpha,
        "ema_momentum": ema,
        "mode": mode,
        "num_steps": steps,
        "seed": seed,
    }

    def draw() -> None:
        values = {name: w.value for name, w in controls.items()}
        status.value = "<i>training…</i>"
        scores = _into_output(out, retrain, device=device, **values)
        status.value = f"retrained in {scores['seconds']:.1f} s"

    def on_change(_change: dict) -> None:
        try:
            draw()
        except Exception as err:
            status.value = html.escape(f"retrain failed: {type(err).__name__}: {err}")

    for w in controls.values():
        w.observe(on_change, names="value")
    draw()  # the first figure, for the initial values (an error here fails the cell)
    panel = W.VBox(
        [W.HBox([W.VBox([alpha, ema, steps]), W.VBox([mode, seed, status])]), out]
    )
    display(panel)
    return panel


# ------------------------------------------------------------ precomputed sweep explorer
#: Per-seed metrics of the sweep that a leaf's numbers line reports, with their labels.
POINT_METRICS: dict[str, str] = {
    "B_lstsq_heldout": "Protocol B",
    "A_lstsq_heldout": "Protocol A",
    "B_adam_heldout": "paper-style Adam probe, Protocol B",
}
_SHOW_KEYS = (
    "seed",
    "diverged_at",
    "steps",
    "loss_total",
    "loss_fwd",
    "loss_bwd",
    "norm_steps",
    "online_norm",
    "target_norm",
    "forecast",
)
_TEXT_STYLE = "font-size:0.85em;line-height:1.4;margin:0.2em 0"
MAKE_MAPS = "python -m bijepa_nb.sweep sine --out book/results/maps_sine.json"


@dataclass(frozen=True)
class LiveRetrain:
    """How a live kernel retrains on a slider change: ``retrain(..., num_steps, seed, device)``."""

    num_steps: int = 600
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_int("num_steps", self.num_steps, 10, 20000)
        check_int("seed", self.seed, 0)
        check_choice("device", self.device, ("auto", "cpu", "cuda", "mps"))


def sweep_digest(sweep: dict) -> str:
    """A short content hash of a sweep dict (the same for the dict and its JSON file)."""
    text = json.dumps(sweep, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_sweep(sweep: Any) -> None:
    """Raise ``ValueError`` naming the first thing a sweep dict lacks for ``sweep_explorer``.

    First the parts of ``bijepa_nb.experiments.sweep``'s schema the explorer reads (``grid``,
    ``metrics`` with ``POINT_METRICS``, every point in grid order with its per-seed values
    and its ``show`` entry), with messages that say what is missing; then the whole
    schema (``bijepa_nb.experiments.sweep.validate``).
    """

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ValueError(
                f"sweep: {msg} (schema: bijepa_nb.experiments.sweep docstring)"
            )

    need(isinstance(sweep, dict), f"must be a dict, got {type(sweep).__name__}")
    for key in ("grid", "metrics", "points"):
        need(key in sweep, f"missing key {key!r}")
    grid = sweep["grid"]
    need(isinstance(grid, dict), "'grid' must be a dict")
    for key in ("modes", "alpha", "ema_momentum", "seeds"):
        need(
            isinstance(grid.get(key), list) and len(grid[key]) > 0,
            f"grid[{key!r}] must be a non-empty list",
        )
    for key in POINT_METRICS:
        need(key in sweep["metrics"], f"metrics lacks {key!r}")
    modes, alphas, taus = grid["modes"], grid["alpha"], grid["ema_momentum"]
    n_seeds, points = len(grid["seeds"]), sweep["points"]
    n = len(modes) * len(alphas) * len(taus)
    need(
        isinstance(points, list) and len(points) == n,
        f"'points' must list {n} points (modes x alpha x ema_momentum), got "
        f"{len(points) if isinstance(points, list) else type(points).__name__}",
    )
    for i, p in enumerate(points):
        m, rest = divmod(i, len(alphas) * len(taus))
        a, t = divmod(rest, len(taus))
        for key in ("mode", "alpha", "ema_momentum", "diverged_at", "per_seed", "show"):
            need(isinstance(p, dict) and key in p, f"points[{i}] lacks {key!r}")
        need(
            (p["mode"], p["alpha"], p["ema_momentum"])
            == (modes[m], alphas[a], taus[t]),
            f"points[{i}] is ({p['mode']}, {p['alpha']}, {p['ema_momentum']}), expected "
            f"({modes[m]}, {alphas[a]}, {taus[t]}) in the order modes > alpha > ema_momentum",
        )
        need(
            len(p["diverged_at"]) == n_seeds,
            f"points[{i}].diverged_at needs {n_seeds} values",
        )
        for key in POINT_METRICS:
            need(
                len(p["per_seed"].get(key, ())) == n_seeds,
                f"points[{i}].per_seed[{key!r}] needs {n_seeds} values",
            )
        need(isinstance(p["show"], dict), f"points[{i}].show must be a dict")
        for key in _SHOW_KEYS:
            need(key in p["show"], f"points[{i}].show lacks {key!r}")

    validate(sweep)


def load_sweep(path: str | Path) -> dict | None:
    """The sweep JSON at ``path``, checked (``check_sweep``); None when the file is missing."""
    path = Path(path)
    if not path.is_file():
        return None
    sweep = json.loads(path.read_text())
    check_sweep(sweep)
    return sweep


def missing_maps_message(path: str | Path) -> str:
    return (
        f"No precomputed runs: {path} does not exist, so the panel below is the "
        f"live-only one (on a static web page its sliders do nothing). Make the file "
        f"with `{MAKE_MAPS}` and run this chapter again."
    )


def _grid_index(name: str, value: Any, options: Sequence) -> int:
    for i, option in enumerate(options):
        if isinstance(option, str) or isinstance(value, str):
            if option == value:
                return i
        elif (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isclose(float(value), float(option), rel_tol=0.0, abs_tol=1e-9)
        ):
            return i
    allowed = ", ".join(repr(o) if isinstance(o, str) else f"{o:g}" for o in options)
    raise ValueError(
        f"{name} must be one of the sweep's grid values {allowed}; got {value!r}"
    )


def _num_steps(sweep: dict) -> int | None:
    """The training steps of the sweep's runs (one value found under ``settings``), or None."""
    found: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "num_steps" and isinstance(v, int) and not isinstance(v, bool):
                    found.add(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(sweep.get("settings", {}))
    return found.pop() if len(found) == 1 else None


def _span(key: str, text: str) -> str:
    return f'<span class="bijepa-num" data-key="{key}">{text}</span>'


def point_numbers(point: dict) -> dict[str, str]:
    """What a leaf prints for one grid point: per metric of ``POINT_METRICS`` the geometric
    mean over the seeds that did not diverge with its 95% interval on the log scale
    (``stats.geometric_mean_ci``, as chapter 10 uses; ``str`` of the Interval), the Adam
    probe's geometric mean alone, and ``diverged`` as "k of n"."""
    out = {}
    for key in POINT_METRICS:
        vals = [
            float(v)
            for v in point["per_seed"][key]
            if v is not None and math.isfinite(v)
        ]
        if not vals:
            out[key] = "n/a (no seed finished)"
            continue
        ci = geometric_mean_ci(vals)
        if key.startswith("B_adam"):
            out[key] = f"{ci.mean:.4g}"
        elif ci.n == 1:
            out[key] = f"{ci.mean:.4g} (one seed, no interval)"
        else:
            out[key] = str(ci)
    div = point["diverged_at"]
    out["diverged"] = f"{sum(d is not None for d in div)} of {len(div)}"
    return out


def _leaf_html(point: dict, num_steps: int | None) -> str:
    nums = point_numbers(point)
    n_ok = sum(d is None for d in point["diverged_at"])
    m, a, t = point["mode"], point["alpha"], point["ema_momentum"]
    svg = sweep_point_svg(point["show"], a, num_steps)
    b, aa, adam = (_span(k, nums[k]) for k in POINT_METRICS)
    over = (
        f"geometric mean over the {n_ok} seeds that trained, 95% interval"
        if n_ok
        else "every seed diverged"
    )
    numbers = (
        f"<b>{html.escape(m)}, α = {a:g}, τ = {t:g}</b> · held-out MSE, least-squares "
        f"probes ({over}): Protocol B {b}, "
        f"Protocol A {aa} · {POINT_METRICS['B_adam_heldout']}: {adam} (geometric mean) · "
        f"diverged: {_span('diverged', nums['diverged'])} seeds"
    )
    return (
        f'<div class="bijepa-point" data-mode="{html.escape(m)}" data-alpha="{a:g}" '
        f'data-tau="{t:g}">{svg}<div class="bijepa-numbers" '
        f'style="{_TEXT_STYLE}">{numbers}</div></div>'
    )


def _precomputed_note(sweep: dict, source: str | None, digest: str, live: bool) -> str:
    g = sweep["grid"]
    steps = _num_steps(sweep)
    seeds = ", ".join(str(s) for s in g["seeds"])
    first = sweep["points"][0]["show"]["seed"]
    src = f" from <code>{html.escape(str(source))}</code>" if source else ""
    quick = " (a quick smoke run, not paper scale)" if sweep.get("quick") else ""
    return (
        f'<div class="bijepa-note" data-view="precomputed" data-digest="{digest}" '
        f'data-maps="{html.escape(str(source or ""))}" style="{_TEXT_STYLE}">'
        f"<b>Precomputed runs</b>{src}{quick}: grid of {len(g['modes'])} stability modes × "
        f"{len(g['alpha'])} alpha values × {len(g['ema_momentum'])} EMA momenta τ, "
        f"{len(g['seeds'])} seeds each (seeds {seeds})"
        + (f", {steps} training steps" if steps else "")
        + f". Curves and forecast show seed {first}; the numbers are over all seeds. "
        "Moving a control switches the view to another saved run, without a kernel."
        + (
            " Only a live kernel (Jupyter, Colab) also retrains one model, below the view; "
            "then this note says so."
            if live
            else ""
        )
        + "</div>"
    )


def _live_note(
    mode: str,
    alpha: float,
    tau: float,
    live: LiveRetrain,
    seconds: float | None,
    error: str | None = None,
) -> str:
    what = (
        f"mode {html.escape(mode)}, α = {alpha:g}, τ = {tau:g}, {live.num_steps} steps, "
        f"seed {live.seed}"
    )
    if error:
        text = f"<b>Live kernel</b>: retraining {what} failed: {html.escape(error)}"
    elif seconds is None:
        text = f"<b>Live kernel</b>: retraining {what} …"
    else:
        text = (
            f"<b>Retrained live</b> in this kernel ({what}) in {seconds:.1f} s: the "
            "figure below the precomputed view. The precomputed view shows the same "
            "setting from the saved sweep."
        )
    return (
        f'<div class="bijepa-live" data-view="live" style="{_TEXT_STYLE}">{text}</div>'
    )


def _slider_row(description: str, symbol: str, options: Sequence[float], index: int):
    """A ``SelectionSlider`` over ``options`` and its read-only readout, in one row.

    Returns ``(slider, row)``. The slider has no readout of its own (ipywidgets' readout
    is an editable box, and a typed value did nothing on a static page); the readout is a
    ``Stack`` of one ``HTML`` label per option ("α = 0.5"), its ``selected_index``
    ``jslink``ed to the slider's ``index``. The row (``HBox.bijepa-slider-row``) is as wide
    as the column up to 560 px and the slider takes what the readout leaves, so both fit
    a phone's column; book/_static/playground.css lays the row out there, and
    book/_static/playground-aria.js copies the readout to the handle's ``aria-valuetext``.
    """
    import ipywidgets as W
    from ipywidgets.widgets.widget_string import HTMLStyle

    slider = W.SelectionSlider(
        options=[(f"{v:g}", v) for v in options],
        index=index,
        description=description,
        readout=False,
        continuous_update=False,
        style={"description_width": "150px"},
        layout=W.Layout(flex="1 1 auto", width="auto", min_width="0"),
    )
    label_layout, label_style = W.Layout(), HTMLStyle()
    labels = [
        W.HTML(html.escape(f"{symbol} = {v:g}"), layout=label_layout, style=label_style)
        for v in options
    ]
    readout = W.Stack(
        labels, selected_index=index, layout=W.Layout(flex="0 0 auto", width="5.5em")
    )
    readout.add_class("bijepa-readout")
    W.jslink((slider, "index"), (readout, "selected_index"))
    row = W.HBox(
        [slider, readout],
        layout=W.Layout(width="100%", max_width="560px", align_items="center"),
    )
    row.add_class("bijepa-slider-row")
    return slider, row


def sweep_explorer(
    sweep: dict,
    alpha: float,
    ema_momentum: float,
    mode: str,
    live: LiveRetrain | None = None,
    source: str | None = None,
):
    """The playground panel over a precomputed sweep; returns an ``ipywidgets.VBox``.

    A ``Dropdown`` (stability mode) and two ``SelectionSlider``s (alpha, EMA momentum τ)
    whose ``index`` is ``jslink``ed to the ``selected_index`` of nested ``Stack``s: modes >
    alpha > τ, the leaves being ``HTML`` widgets with one point's SVG figure and numbers,
    each inside ``<div class="bijepa-point" data-mode data-alpha data-tau>``. Each slider
    sits in a row with its read-only readout (``_slider_row``); the panel is
    ``VBox.bijepa-playground``, children ``[menu, alpha row, tau row, note, view]``. Works
    on a static page (saved widget state). ``alpha``, ``ema_momentum`` and ``mode`` are the
    initial values and must be grid values. With ``live``, a change in a live kernel also
    retrains one model (``retrain``) into an ``Output`` below and updates the note.
    ``source`` (the file the sweep came from) is named in the note.

    Why so long: one panel whose nested Stack/jslink wiring must be read as a whole for
    the sliders to work without a kernel.
    """
    import ipywidgets as W
    from ipywidgets.widgets.widget_string import HTMLStyle

    check_sweep(sweep)
    if live is not None and not isinstance(live, LiveRetrain):
        raise TypeError(
            f"live must be a LiveRetrain or None, got {type(live).__name__}"
        )
    g = sweep["grid"]
    modes, alphas, taus = g["modes"], g["alpha"], g["ema_momentum"]
    i_mode = _grid_index("mode", mode, modes)
    i_alpha = _grid_index("alpha", alpha, alphas)
    i_tau = _grid_index("ema_momentum", ema_momentum, taus)
    steps = _num_steps(sweep)

    # Shared layout and style: one model each instead of one per leaf (page weight).
    leaf_layout, leaf_style, box_layout = W.Layout(), HTMLStyle(), W.Layout()
    points = iter(sweep["points"])
    mode_stacks = []
    for _ in modes:
        alpha_stacks = []
        for _ in alphas:
            leaves = [
                W.HTML(
                    _leaf_html(next(points), steps),
                    layout=leaf_layout,
                    style=leaf_style,
                )
                for _ in taus
            ]
            alpha_stacks.append(
                W.Stack(leaves, selected_index=i_tau, layout=box_layout)
            )
        mode_stacks.append(
            W.Stack(alpha_stacks, selected_index=i_alpha, layout=box_layout)
        )
    view = W.Stack(mode_stacks, selected_index=i_mode, layout=box_layout)

    style = {"description_width": "150px"}
    mode_menu = W.Dropdown(
        options=list(modes),
        index=i_mode,
        description="stability mode",
        style=style,
        layout=W.Layout(width="100%", max_width="330px"),
    )
    alpha_slider, alpha_row = _slider_row("alpha (1 = classic)", "α", alphas, i_alpha)
    tau_slider, tau_row = _slider_row("EMA momentum τ", "τ", taus, i_tau)
    W.jslink((mode_menu, "index"), (view, "selected_index"))
    for ms in mode_stacks:
        W.jslink((alpha_slider, "index"), (ms, "selected_index"))
        for a_stack in ms.children:
            W.jslink((tau_slider, "index"), (a_stack, "selected_index"))

    digest = sweep_digest(sweep)
    saved = _precomputed_note(sweep, source, digest, live is not None)
    note = W.HTML(saved)
    children = [mode_menu, alpha_row, tau_row, note, view]
    if live is not None:
        out = W.Output()
        children.append(out)

        def on_change(_change: dict) -> None:
            m, a, t = mode_menu.value, alpha_slider.value, tau_slider.value
            note.value = _live_note(m, a, t, live, None) + saved
            try:
                with out:
                    out.clear_output(wait=True)
                    scores = retrain(a, t, m, live.num_steps, live.seed, live.device)
            except Exception as err:
                error = f"{type(err).__name__}: {err}"
                note.value = _live_note(m, a, t, live, None, error) + saved
                return
            note.value = _live_note(m, a, t, live, scores["seconds"]) + saved

        for w in (mode_menu, alpha_slider, tau_slider):
            w.observe(on_change, names="value")
    panel = W.VBox(children)
    panel.add_class("bijepa-playground")
    return panel
