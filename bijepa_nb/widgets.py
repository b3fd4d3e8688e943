"""The playground: sliders that retrain a small sine model and redraw its loss and forecast."""
from __future__ import annotations

import time

import matplotlib.pyplot as plt
import torch

from .config import STABILITY_MODES, SineConfig, check_choice, check_float, check_int, paper_config, resolve_device
from .data import Split, SineStream, sine_split
from .models import build_model
from .plotting import batch_forecast, loss_curves, norm_curves
from .probes import adam_probe, lstsq_probe, protocol_features
from .training import TrainingDiverged, train


def retrain(alpha: float = 0.5, ema_momentum: float = 0.995, mode: str = "expressive", num_steps: int = 600,
            seed: int = 0, device: str = "auto", n_probe: int = 500, n_show: int = 20) -> dict:
    """Train one sine model with these settings and draw loss, norms and forecasts.

    Returns the held-out least-squares Protocol A/B errors and the seconds it took.
    """
    check_float("alpha", alpha, 0.0, 1.0)
    check_float("ema_momentum", ema_momentum, 0.0, 1.0)
    check_choice("mode", mode, tuple(STABILITY_MODES))
    check_int("num_steps", num_steps, 10, 20000)
    t0 = time.perf_counter()
    dev = resolve_device(device)
    mc, tc = paper_config("sine", mode, alpha, num_steps=num_steps, ema_momentum=ema_momentum, seed=seed, device=dev.type, progress=False)
    model = build_model(mc, alpha, seed, dev)
    scfg = SineConfig(n_probe=n_probe, n_test=n_probe)
    title = f"alpha={alpha:g}, tau={ema_momentum:g}, {mode}, {num_steps} steps"
    try:
        hist = train(model, SineStream(scfg, seed, tc.batch_size, dev), tc)
    except TrainingDiverged as err:  # show what happened up to the failure, never a NaN plot
        hist = err.history
        title += f" — diverged at step {err.step}"
    probe_set, test_set = sine_split(scfg, seed, "probe").to(dev), sine_split(scfg, seed, "test").to(dev)
    fig, axes = plt.subplots(1, 3, figsize=(16, 3.8))
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
        batch_forecast(truth, preds["A"], preds["B"], ax=axes[2], title=f"held-out MSE: A {scores['A']:.4f}, B {scores['B']:.4f}")
        axes[2].set_ylim(-1.3, 1.3)
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()
    scores["seconds"] = time.perf_counter() - t0
    return scores


def playground(device: str = "auto"):
    """The widget panel: sliders for alpha, EMA momentum, steps and a stability-mode menu."""
    import ipywidgets as W
    from IPython.display import display

    style = {"description_width": "140px"}
    layout = W.Layout(width="460px")
    alpha = W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="alpha (1 = classic)", continuous_update=False, style=style, layout=layout)
    ema = W.FloatSlider(value=0.995, min=0.9, max=1.0, step=0.001, readout_format=".3f", description="EMA momentum τ", continuous_update=False, style=style, layout=layout)
    steps = W.IntSlider(value=600, min=100, max=3000, step=100, description="training steps", continuous_update=False, style=style, layout=layout)
    mode = W.Dropdown(options=list(STABILITY_MODES), value="expressive", description="stability mode", style=style, layout=layout)
    seed = W.IntSlider(value=0, min=0, max=9, description="seed", continuous_update=False, style=style, layout=layout)
    status = W.HTML()

    def run(alpha, ema_momentum, mode, num_steps, seed):
        status.value = "<i>training…</i>"
        scores = retrain(alpha, ema_momentum, mode, num_steps, seed, device)
        status.value = f"retrained in {scores['seconds']:.1f} s"

    out = W.interactive_output(run, {"alpha": alpha, "ema_momentum": ema, "mode": mode, "num_steps": steps, "seed": seed})
    panel = W.VBox([W.HBox([W.VBox([alpha, ema, steps]), W.VBox([mode, seed, status])]), out])
    display(panel)
    return panel
