"""The playground's precomputed panel: inline SVG per grid point and the widget structure.

``fake_sweep`` builds a schema-valid SYNTHETIC sweep dict (``bijepa_nb.experiments.sweep``'s schema) for
tests and development; never commit its output under book/results/. To write a dev file:

    python tests/test_widgets.py _build/dev/maps_sine_fake.json
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from bijepa_nb.analysis.plotting import sweep_point_svg
from bijepa_nb.analysis.stats import geometric_mean_ci
from bijepa_nb.book.widgets import (
    POINT_METRICS,
    LiveRetrain,
    check_sweep,
    load_sweep,
    point_numbers,
    sweep_digest,
    sweep_explorer,
)
from bijepa_nb.experiments.sweep import CURVE_POINTS, SCHEMA_VERSION

MODES = ["unconstrained", "expressive", "restrictive"]
ALPHAS = [round(0.1 * i, 1) for i in range(11)]
TAUS = [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0]
N_SHOW = 20


def _curve(rng, n_steps: int, start: float, end: float, spike: bool) -> list[float]:
    t = np.linspace(0, 1, n_steps)
    y = end + (start - end) * np.exp(-6 * t)
    y = y * np.exp(rng.normal(0, 0.08, n_steps))
    if spike:
        y[n_steps // 2 :] *= np.linspace(1, 30, n_steps - n_steps // 2)
    return [float(v) for v in y]


def fake_sweep(
    modes=MODES,
    alphas=ALPHAS,
    taus=TAUS,
    seeds=(0, 1, 2, 3, 4),
    num_steps=2000,
    n_show=N_SHOW,
    curve_points=CURVE_POINTS,
    seed=0,
) -> dict:
    """A SYNTHETIC sweep in ``bijepa_nb.experiments.sweep``'s schema (made-up numbers, not results).

    Divergences, deterministic in ``seed``: unconstrained with tau = 0.9 diverges in every
    seed; unconstrained with tau = 0.95 diverges in the first seed only (its ``show`` has no
    forecast); restrictive at alpha = 0 diverges in the last seed.
    """
    rng = np.random.default_rng(seed)
    seeds = list(seeds)
    metric_keys = list(POINT_METRICS) + ["loss_final_total"]
    points = []
    for mode in modes:
        for a in alphas:
            for t in taus:
                div = [None] * len(seeds)
                if mode == "unconstrained" and t == 0.9:
                    div = [300 + 50 * i for i in range(len(seeds))]
                elif mode == "unconstrained" and t == 0.95:
                    div[0] = 1230
                elif mode == "restrictive" and a == 0.0:
                    div[-1] = 1500
                base = (
                    0.005
                    + 0.03 * abs(a - 0.5)
                    + 0.02 * (1 - t)
                    + 0.01 * MODES.index(mode)
                )
                per_seed = {}
                for k in metric_keys:
                    scale = {"A": 1.3, "B": 1.0, "l": 0.5}[k[0]] * (
                        2.0 if "adam" in k else 1.0
                    )
                    per_seed[k] = [
                        None
                        if d is not None
                        else float(base * scale * math.exp(rng.normal(0, 0.15)))
                        for d in div
                    ]
                steps = np.linspace(0, num_steps - 1, curve_points).round().astype(int)
                d0 = div[0]
                keep = (
                    steps <= d0 if d0 is not None else np.ones_like(steps, dtype=bool)
                )
                steps = steps[keep]
                n = len(steps)
                spike = mode == "unconstrained"
                fwd = _curve(rng, n, 0.5, base, spike)
                bwd = [0.0] * n if a == 1.0 else _curve(rng, n, 0.4, base * 1.2, spike)
                total = [a * f + (1 - a) * b for f, b in zip(fwd, bwd)]
                norm_steps = [
                    int(s) for s in steps
                ]  # logged every 10 steps, down-sampled
                grow = 50.0 if spike else 1.0
                online = [float(4 * (1 + grow * s / num_steps)) for s in norm_steps]
                target = [float(v * 0.97) for v in online]
                forecast = None
                if d0 is None:
                    truth = np.sin(rng.uniform(0, 2 * math.pi, n_show))
                    forecast = {
                        "truth": [float(v) for v in truth],
                        "pred_A": [
                            float(v + rng.normal(0, math.sqrt(base) * 1.2))
                            for v in truth
                        ],
                        "pred_B": [
                            float(v + rng.normal(0, math.sqrt(base))) for v in truth
                        ],
                    }
                show = {
                    "seed": seeds[0],
                    "diverged_at": d0,
                    "steps": [int(s) for s in steps],
                    "loss_total": total,
                    "loss_fwd": fwd,
                    "loss_bwd": bwd,
                    "norm_steps": norm_steps,
                    "online_norm": online,
                    "target_norm": target,
                    "forecast": forecast,
                }
                points.append(
                    {
                        "mode": mode,
                        "alpha": a,
                        "ema_momentum": t,
                        "diverged_at": div,
                        "per_seed": per_seed,
                        "show": show,
                    }
                )
    metric = {
        "unit": "MSE, signal units",
        "split": "held-out",
        "description": "SYNTHETIC",
    }
    return {
        "schema": SCHEMA_VERSION,
        "experiment": "sine",
        "quick": False,
        "command": "SYNTHETIC: tests/test_widgets.py fake_sweep",
        "seconds": 0.0,
        "environment": {
            "torch": "none",
            "python": sys.version.split()[0],
            "device": "cpu",
            "threads": 1,
        },
        "settings": {
            "probe_epochs": 100,
            "n_show": n_show,
            "curve_points": curve_points,
            "max_batch": 128,
            "compiled": False,
            "modes": {
                m: {"model": {}, "train": {"num_steps": num_steps}} for m in modes
            },
        },
        "grid": {
            "modes": list(modes),
            "alpha": list(alphas),
            "ema_momentum": list(taus),
            "seeds": seeds,
        },
        "metrics": {k: dict(metric) for k in metric_keys},
        "points": points,
    }


@pytest.fixture(scope="module")
def sweep() -> dict:
    return fake_sweep()


def _point(sweep: dict, mode: str, alpha: float, tau: float) -> dict:
    return next(
        p
        for p in sweep["points"]
        if (p["mode"], p["alpha"], p["ema_momentum"]) == (mode, alpha, tau)
    )


# ------------------------------------------------------------------------------ the SVG
def test_svg_is_small_self_contained_and_readable(sweep):
    sizes = []
    for p in sweep["points"]:
        svg = sweep_point_svg(p["show"], p["alpha"], 2000)
        assert svg.startswith("<svg ") and svg.endswith("</svg>")
        for bad in ("<script", " id=", "href", "<image", "url("):
            assert bad not in svg, f"SVG must be self-contained, found {bad!r}"
        sizes.append(len(svg.encode()))
    assert max(sizes) <= 6000, f"largest point SVG {max(sizes)} bytes > 6 KB"
    svg = sweep_point_svg(_point(sweep, "expressive", 0.5, 0.995)["show"], 0.5, 2000)
    for text in (
        "training loss",
        "embedding norms",
        "held-out forecast",
        "training step",
        "fwd",
        "bwd",
        "online",
        "target",
        "truth",
        "× A",
        "▲ B",
        "2000",
    ):
        assert text in svg, f"SVG lacks {text!r}"
    # the SVG parses as XML
    import xml.etree.ElementTree as ET

    ET.fromstring(svg)


def test_svg_classic_shows_total_loss(sweep):
    svg = sweep_point_svg(_point(sweep, "expressive", 1.0, 0.995)["show"], 1.0, 2000)
    assert "total" in svg and "bwd" not in svg


def test_svg_diverged_point_says_so_instead_of_forecast(sweep):
    show = _point(sweep, "unconstrained", 0.5, 0.95)["show"]
    assert show["forecast"] is None
    show = dict(show, loss_fwd=show["loss_fwd"][:-1] + [float("nan")])  # NaN at the end
    svg = sweep_point_svg(show, 0.5, 2000)
    assert "diverged at step 1230" in svg and "truth" not in svg
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
    # curves stop at the divergence step: no x coordinate right of it in the loss panel
    import re

    xs = [
        float(x)
        for pts in re.findall(r'points="([^"]+)"', svg)
        for x in re.findall(r"(-?[\d.]+),", pts)
    ]
    assert xs and max(xs) < 240 + 44 + 186 * 1231 / 2000 + 2


def test_svg_requires_the_show_keys(sweep):
    show = dict(_point(sweep, "expressive", 0.5, 0.995)["show"])
    del show["norm_steps"]
    with pytest.raises(KeyError, match="norm_steps"):
        sweep_point_svg(show, 0.5)


# --------------------------------------------------------------------------- the panel
def test_panel_structure_links_and_markers(sweep):
    import ipywidgets as W

    panel = sweep_explorer(sweep, 0.3, 0.99, "restrictive", live=None, source="x.json")
    assert "bijepa-playground" in panel._dom_classes
    menu, a_row, t_row, note, view = panel.children
    (a_slider, a_readout), (t_slider, t_readout) = a_row.children, t_row.children
    assert isinstance(menu, W.Dropdown) and isinstance(view, W.Stack)
    assert isinstance(a_slider, W.SelectionSlider) and isinstance(
        t_slider, W.SelectionSlider
    )
    assert t_slider.description == "EMA momentum τ"
    # read-only readouts: the sliders' own (editable) readout is off; a Stack of labels
    # per slider, its selected_index linked to the slider's index
    assert not a_slider.readout and not t_slider.readout
    for row, readout, symbol, values in (
        (a_row, a_readout, "α", ALPHAS),
        (t_row, t_readout, "τ", TAUS),
    ):
        assert "bijepa-slider-row" in row._dom_classes
        assert "bijepa-readout" in readout._dom_classes
        assert isinstance(readout, W.Stack)
        assert [c.value for c in readout.children] == [
            f"{symbol} = {v:g}" for v in values
        ]
    assert (a_readout.selected_index, t_readout.selected_index) == (3, 3)
    # no fixed pixel widths wider than a phone's column (358 px at 390 px)
    for w in (menu, a_row, t_row, a_slider, t_slider):
        assert "px" not in (w.layout.width or ""), (w.description, w.layout.width)
    assert (menu.value, a_slider.value, t_slider.value) == ("restrictive", 0.3, 0.99)
    assert view.selected_index == MODES.index("restrictive")
    leaves = [
        leaf for ms in view.children for st in ms.children for leaf in st.children
    ]
    assert len(view.children) == 3 and all(
        len(ms.children) == 11 for ms in view.children
    )
    assert len(leaves) == 3 * 11 * 7 == len(sweep["points"])
    for leaf, p in zip(leaves, sweep["points"]):
        marker = (
            f'<div class="bijepa-point" data-mode="{p["mode"]}" '
            f'data-alpha="{p["alpha"]:g}" data-tau="{p["ema_momentum"]:g}">'
        )
        assert leaf.value.startswith(marker)
    # initial selection everywhere is the arguments' grid point
    assert all(ms.selected_index == 3 for ms in view.children)
    assert all(st.selected_index == 3 for ms in view.children for st in ms.children)
    shown = view.children[view.selected_index].children[3].children[3].value
    assert 'data-mode="restrictive" data-alpha="0.3" data-tau="0.99"' in shown
    # jslinks: menu -> outer stack, alpha -> 3 stacks, tau -> 33 stacks
    state = W.Widget.get_manager_state()["state"]
    ids = {w: "IPY_MODEL_" + w.model_id for w in (menu, a_slider, t_slider)}
    links = [s["state"] for s in state.values() if s["model_name"] == "LinkModel"]

    def linked(w, attr="index"):
        return [lk["target"][0] for lk in links if lk["source"] == [ids[w], attr]]

    assert linked(menu) == ["IPY_MODEL_" + view.model_id]
    assert sorted(linked(a_slider)) == sorted(
        "IPY_MODEL_" + m.model_id for m in [*view.children, a_readout]
    )
    assert len(set(linked(t_slider))) == 33 + 1
    assert "IPY_MODEL_" + t_readout.model_id in linked(t_slider)
    assert all(
        lk["target"][1] == "selected_index"
        for lk in links
        if lk["source"][0] in ids.values()
    )
    # the note: precomputed, names the grid, seeds, steps and the file
    assert 'data-view="precomputed"' in note.value and "x.json" in note.value
    for text in (
        "3 stability modes",
        "11 alpha values",
        "7 EMA momenta",
        "5 seeds",
        "seeds 0, 1, 2, 3, 4",
        "2000 training steps",
        sweep_digest(sweep),
    ):
        assert text in note.value, text


def test_leaf_numbers_match_geometric_mean_ci(sweep):
    p = _point(sweep, "restrictive", 0.0, 0.995)  # last seed diverged
    nums = point_numbers(p)
    b = [v for v in p["per_seed"]["B_lstsq_heldout"] if v is not None]
    assert len(b) == 4 and nums["B_lstsq_heldout"] == str(geometric_mean_ci(b))
    adam = [v for v in p["per_seed"]["B_adam_heldout"] if v is not None]
    assert nums["B_adam_heldout"] == f"{np.exp(np.mean(np.log(adam))):.4g}"
    assert nums["diverged"] == "1 of 5"
    all_div = point_numbers(_point(sweep, "unconstrained", 0.5, 0.9))
    assert all_div["diverged"] == "5 of 5" and "n/a" in all_div["B_lstsq_heldout"]


def test_widget_count_is_bounded(sweep):
    from ipywidgets.widgets.widget import _instances

    before = len(_instances)
    sweep_explorer(sweep, 0.5, 0.995, "expressive")
    created = len(_instances) - before
    # 231 leaves + 37 stacks + 37 links + controls and their readouts (11 + 7 labels,
    # 2 stacks, 2 links), shared layouts/styles: not one per leaf
    assert created < 231 + 37 + 37 + 30 + 22, created


@pytest.mark.parametrize(
    "name, kwargs, allowed",
    [
        ("alpha", {"alpha": 0.55}, "0, 0.1, 0.2"),
        ("ema_momentum", {"ema_momentum": 0.97}, "0.9, 0.95, 0.98"),
        ("mode", {"mode": "classic"}, "'unconstrained', 'expressive', 'restrictive'"),
    ],
)
def test_off_grid_value_names_parameter_and_allowed_values(
    sweep, name, kwargs, allowed
):
    args = {"alpha": 0.5, "ema_momentum": 0.995, "mode": "expressive", **kwargs}
    with pytest.raises(ValueError, match=name) as err:
        sweep_explorer(sweep, **args)
    assert allowed in str(err.value)


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda s: s.pop("grid"), "missing key 'grid'"),
        (lambda s: s["grid"].pop("seeds"), "grid\\['seeds'\\]"),
        (
            lambda s: s["metrics"].pop("B_adam_heldout"),
            "metrics lacks 'B_adam_heldout'",
        ),
        (lambda s: s["points"].pop(), "must list 231 points"),
        (
            lambda s: s["points"][5]["show"].pop("forecast"),
            "points\\[5\\].show lacks 'forecast'",
        ),
        (lambda s: s["points"][7].pop("per_seed"), "points\\[7\\] lacks 'per_seed'"),
        (lambda s: s["points"].reverse(), "points\\[0\\] is"),
        (
            lambda s: s.update(schema="bijepa-sweep/0"),
            "schema must be",
        ),  # sweep.validate
    ],
)
def test_broken_sweep_gives_clear_error(breakage, message):
    s = fake_sweep()
    breakage(s)
    with pytest.raises(ValueError, match=message):
        sweep_explorer(s, 0.5, 0.995, "expressive")


def test_load_sweep_missing_file_and_digest(tmp_path, sweep):
    assert load_sweep(tmp_path / "nope.json") is None
    f = tmp_path / "maps.json"
    f.write_text(json.dumps(sweep))
    loaded = load_sweep(f)
    assert sweep_digest(loaded) == sweep_digest(sweep)
    check_sweep(loaded)


def test_live_settings_are_checked():
    with pytest.raises(ValueError, match="num_steps"):
        LiveRetrain(num_steps=5)
    with pytest.raises(TypeError, match="live"):
        sweep_explorer(fake_sweep(), 0.5, 0.995, "expressive", live={"num_steps": 600})


def test_live_change_retrains_and_updates_note(sweep, monkeypatch):
    """In a kernel a value change calls ``retrain`` with the panel's values and ``live``."""
    from bijepa_nb.book import widgets

    calls = []

    def fake_retrain(alpha, ema_momentum, mode, num_steps, seed, device):
        calls.append((alpha, ema_momentum, mode, num_steps, seed, device))
        return {"seconds": 1.25}

    monkeypatch.setattr(widgets, "retrain", fake_retrain)
    panel = sweep_explorer(
        sweep,
        0.5,
        0.995,
        "expressive",
        live=LiveRetrain(num_steps=120, seed=3, device="cpu"),
    )
    menu, a_row, _, note = panel.children[:4]
    a_slider = a_row.children[0]
    assert 'data-view="live"' not in note.value
    a_slider.value = 0.7
    assert calls == [(0.7, 0.995, "expressive", 120, 3, "cpu")]
    assert 'data-view="live"' in note.value and "1.2 s" in note.value
    assert "Retrained live" in note.value and 'data-view="precomputed"' in note.value
    menu.value = "unconstrained"
    assert calls[-1][2] == "unconstrained"


def test_page_weight_estimate(sweep):
    """The widget state of the whole panel (what the page embeds) stays far below 8 MB."""
    import ipywidgets as W

    W.Widget.close_all()
    sweep_explorer(sweep, 0.5, 0.995, "expressive")
    size = len(json.dumps(W.Widget.get_manager_state()).encode())
    assert size < 4_000_000, size


if __name__ == "__main__":  # write a SYNTHETIC dev file (never under book/results/)
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "_build/dev/maps_sine_fake.json")
    if "results" in out.parts:
        raise SystemExit("refusing to write a synthetic sweep under results/")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fake_sweep()))
    print(f"wrote SYNTHETIC sweep {out} ({out.stat().st_size} bytes)")
