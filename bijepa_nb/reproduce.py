"""The paper's tables over many seeds, with held-out scores and baselines, as one JSON file.

    python -m bijepa_nb.reproduce sine   --seeds 10 --out book/results/sine.json
    python -m bijepa_nb.reproduce lorenz --seeds 10 --out book/results/lorenz.json
    python -m bijepa_nb.reproduce mnist  --seeds 10 --out book/results/mnist.json
    python -m bijepa_nb.reproduce sine --seeds 2 --quick --out /tmp/sine.json   # smoke run

Sine and Lorenz train all seeds of a configuration at once (``bijepa_nb.ensemble``); MNIST
trains one seed at a time. Paper settings (Appendix B) unless ``--quick``.

JSON schema (``SCHEMA_VERSION``; ``validate`` checks it):

- ``schema``, ``experiment``, ``seeds`` (list of int), ``quick`` (bool), ``command``,
  ``seconds`` (wall time of the whole reproduction), ``environment`` (torch version,
  device, threads; MNIST: ``mnist_source``, "full" or "offline-10k"), ``settings`` (the
  ModelConfig and TrainConfig of each configuration, probe epochs, data sizes).
- ``metrics``: ``{key: {"unit": str, "split": str, "description": str}}`` for every key
  of the per-seed results below; ``split`` is "train" (training loss/embeddings),
  "probe set" (the probe scored on its own training data, as the paper reports) or
  "held-out" (data never used for training or probe fitting).
- ``configs``: ``{name: {"label", "mode", "alpha", "diverged_at": [step or null per
  seed], "per_seed": {metric key: [value or null per seed]}}}``; a metric is null where it
  does not exist (classic JEPA has no backward predictor) or the seed diverged.
- ``baselines``: ``{name: {"unit", "split", "description", "per_seed": [value per seed]}}``
  on the same held-out data as the configurations (each seed has its own data).
- ``paper``: the paper's own numbers for the same table (one run, scored on the probe set).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from typing import Any, Callable

import numpy as np
import torch

from .baselines import chance_accuracy, forecast_baselines, raw_pixel_baseline, supervised_baseline
from .config import MnistConfig, check_choice, check_float, check_int, resolve_device
from .data import MnistData, load_mnist, mnist_split
from .experiments import run_experiment
from .models import JEPA, build_model
from .paper import EXPERIMENTS, VARIANTS, SeedData
from .pipeline import Run, history_metrics, train_runs
from .probes import batched_encode, classification_probe, decoder_probe, evaluate, right_half_pixels
from .training import History, TrainingDiverged

SCHEMA_VERSION = "bijepa-reproduce/1"
SPLITS = ("train", "probe set", "held-out")
LABELS = {name: v.label for name, v in VARIANTS.items()}
#: The paper's tables (one run each; probes scored on the probe set), from the registry.
PAPER: dict[str, dict[str, dict[str, float]]] = {name: exp.paper for name, exp in EXPERIMENTS.items()}
QUICK = {"num_steps": 100, "probe_epochs": 10, "mnist_train": 512, "mnist_eval": 256, "epochs": 1}
PROTOCOLS = {
    "A": "Protocol A: linear probe on the context embedding f(x) -> first target step",
    "B": "Protocol B: linear probe on the forward prediction P_fwd(f(x)) -> first target step",
    "A_bwd": "backward Protocol A: linear probe on f(y) -> last context step",
    "B_bwd": "backward Protocol B: linear probe on P_bwd(f(y)) -> last context step (BiJEPA only)",
}


def metric_spec(experiment: str) -> dict[str, dict[str, str]]:
    """Unit, split and description of every per-seed metric key of ``experiment``."""
    spec: dict[str, dict[str, str]] = {}
    loss_unit = "embedding MSE (mean over batch and embedding dims)"
    for part in ("total", "fwd", "bwd"):
        spec[f"loss_final_{part}"] = {"unit": loss_unit, "split": "train", "description": f"{part} training loss at the last step (Eq. 8 for total; bwd is 0 for classic JEPA)"}
        spec[f"loss_last100_{part}"] = {"unit": loss_unit, "split": "train", "description": f"mean {part} training loss over the last 100 steps"}
    spec["roughness_fwd"] = {"unit": "std of log-loss residual (dimensionless)", "split": "train",
                             "description": "fluctuation of the forward loss around its 51-step moving average, second half of training (stats.roughness)"}
    spec["roughness_total"] = {"unit": "std of log-loss residual (dimensionless)", "split": "train", "description": "the same for the total loss"}
    spec["norm_final"] = {"unit": "L2 norm", "split": "train", "description": "mean norm of the online context embedding f(x) at the last logged step"}
    spec["norm_growth_second_half"] = {"unit": "ratio", "split": "train", "description": "online embedding norm at the end / at mid-training"}
    if EXPERIMENTS[experiment].kind == "halves":
        spec["probe_acc_train"] = {"unit": "accuracy (fraction)", "split": "train", "description": "linear probe on the left-half embedding, scored on its training images"}
        spec["probe_acc_heldout"] = {"unit": "accuracy (fraction)", "split": "held-out", "description": "the same probe on held-out images"}
        spec["decoder_mse_train"] = {"unit": "MSE of right-half pixels in [0, 1]", "split": "train", "description": "generative decoder from the left-half embedding, training images"}
        spec["decoder_mse_heldout"] = {"unit": "MSE of right-half pixels in [0, 1]", "split": "held-out", "description": "the same decoder on held-out images"}
        return spec
    spec["loss_early_total"] = {"unit": loss_unit, "split": "train",
                                "description": "mean total loss over 20%-30% of training: steps 400-600 of the paper's 2000, its 'step 500' reading"}
    unit = EXPERIMENTS[experiment].unit
    for proto, text in PROTOCOLS.items():
        spec[f"{proto}_adam_probeset"] = {"unit": unit, "split": "probe set", "description": f"{text}; the paper's Adam probe scored on its own training data"}
        spec[f"{proto}_adam_heldout"] = {"unit": unit, "split": "held-out", "description": f"{text}; the paper's Adam probe scored on the held-out test set"}
        spec[f"{proto}_lstsq_heldout"] = {"unit": unit, "split": "held-out", "description": f"{text}; closed-form least squares fitted on the probe set, scored held-out"}
    return spec


BASELINE_TEXT = {
    "mean": "predict the probe set's mean of the first target step",
    "persistence": "next value = last context value",
    "linear_extrapolation": "next value = 2 * last - second to last context value",
    "lstsq_context": "least squares from the raw flattened context, fitted on the probe set",
    "ridge_context": "ridge regression (lambda = 1) from the raw flattened context, fitted on the probe set",
    "sinusoid_fit": "per-sequence least-squares fit of a sinusoid (w on a grid over [0.8, 1.2]) to the context, extrapolated",
    "noise_floor": "noise variance 0.05^2: the error of a forecaster that knows w and phi exactly",
    "raw_pixels_acc": "logistic regression (the same probe) on the raw left-half pixels",
    "raw_pixels_decoder_mse": "the same generative decoder on the raw left-half pixels",
    "random_encoder_acc": "the same probe on an untrained (random-init) conv encoder",
    "random_encoder_decoder_mse": "the same decoder on an untrained conv encoder",
    "supervised_acc": "the conv encoder + a linear head trained end to end on labelled left halves",
    "mean_right_half_mse": "predict the mean training right half for every image",
    "chance_acc": "always predict the most frequent training class",
}


def _history_metrics(h: History) -> dict[str, float]:
    """The loss and norm summaries of ``pipeline.history_metrics`` that this schema records."""
    keep = ("loss_final_", "loss_last100_", "roughness_", "norm_final", "norm_growth_second_half")
    return {k: v for k, v in history_metrics(h).items() if k.startswith(keep)}


def _overrides(config: str, hyper: dict[str, float]) -> dict[str, float]:
    """``hyper`` (alpha, ema_momentum) for a table variant: classic JEPA keeps alpha = 1."""
    return {k: v for k, v in hyper.items() if not (k == "alpha" and VARIANTS[config].alpha == 1.0)}


def _train_seeds(experiment: str, config: str, seeds: list[int], num_steps: int, device: str, threads: int,
                 data: dict[int, SeedData], hyper: dict[str, float] | None = None
                 ) -> tuple[list[JEPA | None], list[History | None], list[int | None]]:
    """Train table variant ``config`` for every seed as one batch (``pipeline.train_runs``);
    a diverging seed is recorded and the others finish. Returns models, histories and the
    divergence step per seed."""
    exp = EXPERIMENTS[experiment]
    over = _overrides(config, hyper or {})
    runs = [Run(VARIANTS[config].mode, exp.configs(config, num_steps=num_steps, device=device, num_threads=threads,
                                                    progress=False, seed=s, **over)[1], config) for s in seeds]
    trained = train_runs(exp, runs, data)
    return [t.model for t in trained], [t.history for t in trained], [t.diverged_at for t in trained]


def _forecast_experiment(experiment: str, seeds: list[int], quick: bool, device: str, threads: int, log: Callable[[str], None],
                         hyper: dict[str, float] | None = None) -> dict[str, Any]:
    exp = EXPERIMENTS[experiment]
    probe_epochs = QUICK["probe_epochs"] if quick else exp.probe_epochs
    data = {s: exp.seed_data(s) for s in seeds}
    sets = {s: (data[s].probe, data[s].test) for s in seeds}
    data_settings = exp.data_config.to_dict()
    spec = metric_spec(experiment)
    configs: dict[str, Any] = {}
    settings: dict[str, Any] = {"probe_epochs": probe_epochs, "data": data_settings, "configs": {}}
    for config in exp.table:
        mode, alpha = VARIANTS[config].mode, VARIANTS[config].alpha
        mc, tc = exp.configs(config, device=device, num_threads=threads, progress=False,
                             **({"num_steps": QUICK["num_steps"]} if quick else {}), **_overrides(config, hyper or {}))
        alpha = tc.alpha
        settings["configs"][config] = {"model": mc.to_dict(), "train": tc.to_dict()}
        t0 = time.perf_counter()
        models, hists, div = _train_seeds(experiment, config, seeds, tc.num_steps, device, threads, data, hyper)
        per_seed: dict[str, list[float | None]] = {k: [] for k in spec}
        for s, m, h, d in zip(seeds, models, hists, div):
            row: dict[str, float | None] = {k: None for k in spec}
            if m is not None and h is not None and d is None:
                row.update(_history_metrics(h))
                row["loss_early_total"] = float(h.total[len(h) // 5 : 3 * len(h) // 10].mean())
                probe, test = sets[s]
                for proto, sc in evaluate(m, probe, test, epochs=probe_epochs, seed=s).items():
                    row[f"{proto}_adam_probeset"], row[f"{proto}_adam_heldout"], row[f"{proto}_lstsq_heldout"] = sc["probe"], sc["test"], sc["lstsq_test"]
            for k in spec:
                per_seed[k].append(row[k])
        configs[config] = {"label": LABELS[config], "mode": mode, "alpha": alpha, "diverged_at": div, "per_seed": per_seed}
        b = [v for v in per_seed["B_adam_heldout"] if v is not None]
        log(f"{experiment} {config:14s}: {len(seeds)} seeds in {time.perf_counter() - t0:.1f} s; held-out Protocol B (Adam) mean {np.mean(b) if b else float('nan'):.4f}")
    unit = spec["B_adam_heldout"]["unit"]
    base_rows = [forecast_baselines(*sets[s], experiment) for s in seeds]
    baselines = {name: {"unit": unit, "split": "held-out" if name != "noise_floor" else "held-out (analytic)", "description": BASELINE_TEXT[name],
                        "per_seed": [r[name] for r in base_rows]} for name in base_rows[0]}
    return {"metrics": spec, "configs": configs, "baselines": baselines, "settings": settings}


def _mnist_experiment(seeds: list[int], quick: bool, device: str, log: Callable[[str], None], mnist: MnistData | None = None,
                      hyper: dict[str, float] | None = None) -> dict[str, Any]:
    mnist = mnist if mnist is not None else load_mnist(MnistConfig())
    if quick:
        mnist = MnistData(mnist.train_images[: QUICK["mnist_train"]], mnist.train_labels[: QUICK["mnist_train"]],
                          mnist.eval_images[: QUICK["mnist_eval"]], mnist.eval_labels[: QUICK["mnist_eval"]], mnist.source)
    epochs, probe_epochs = (QUICK["epochs"], 2) if quick else (10, 10)
    dev = resolve_device(device)
    spec = metric_spec("mnist")
    configs: dict[str, Any] = {}
    settings: dict[str, Any] = {"epochs": epochs, "probe_epochs": probe_epochs, "n_train": len(mnist.train_labels), "n_eval": len(mnist.eval_labels), "configs": {}}
    for config in EXPERIMENTS["mnist"].table:
        mode, alpha = VARIANTS[config].mode, VARIANTS[config].alpha
        t0 = time.perf_counter()
        per_seed: dict[str, list[float | None]] = {k: [] for k in spec}
        div: list[int | None] = []
        for s in seeds:
            row: dict[str, float | None] = {k: None for k in spec}
            try:
                r = run_experiment("mnist", config, s, data=mnist, epochs=epochs, probe_epochs=probe_epochs, device=dev.type, progress=False,
                                   **_overrides(config, hyper or {}))
                alpha = r.model.alpha
                row.update(_history_metrics(r.history))
                row["probe_acc_train"], row["probe_acc_heldout"] = r.scores["linear_probe"]["train_acc"], r.scores["linear_probe"]["eval_acc"]
                row["decoder_mse_train"], row["decoder_mse_heldout"] = r.scores["decoder"]["train_mse"], r.scores["decoder"]["eval_mse"]
                settings["configs"][config] = {"model": r.model.cfg.to_dict(), "train": r.history.config}
                div.append(None)
            except TrainingDiverged as err:
                div.append(err.step)
            for k in spec:
                per_seed[k].append(row[k])
        configs[config] = {"label": LABELS[config], "mode": mode, "alpha": alpha, "diverged_at": div, "per_seed": per_seed}
        acc = [v for v in per_seed["probe_acc_heldout"] if v is not None]
        log(f"mnist {config:14s}: {len(seeds)} seeds in {time.perf_counter() - t0:.1f} s; held-out probe accuracy mean {np.mean(acc) if acc else float('nan'):.4f}")
    t0 = time.perf_counter()
    tr, ev = mnist_split(mnist.train_images, mnist.train_labels), mnist_split(mnist.eval_images, mnist.eval_labels)
    right_tr, right_ev = right_half_pixels(mnist.train_images).to(dev), right_half_pixels(mnist.eval_images).to(dev)
    y_tr, y_ev = tr.labels.to(dev), ev.labels.to(dev)  # type: ignore[union-attr]
    mc = EXPERIMENTS["mnist"].model_config("expressive")
    rows: dict[str, list[float]] = {k: [] for k in ("raw_pixels_acc", "raw_pixels_decoder_mse", "random_encoder_acc", "random_encoder_decoder_mse",
                                                     "supervised_acc", "mean_right_half_mse", "chance_acc")}
    threads = torch.get_num_threads()
    torch.set_num_threads(max(threads, 2) if dev.type == "cpu" else threads)  # the conv encoder likes two threads
    try:
        tr_d, ev_d = tr.to(dev), ev.to(dev)
        raw_tr, raw_ev = tr_d.context.flatten(1), ev_d.context.flatten(1)
        mean_mse = float(torch.mean((right_ev - right_tr.mean(0)) ** 2))  # the same for every seed
        chance = chance_accuracy(tr.labels, ev.labels)  # type: ignore[arg-type]
        for s in seeds:
            rows["raw_pixels_acc"].append(raw_pixel_baseline(tr_d, ev_d, epochs=probe_epochs, seed=s)["eval_acc"])
            rows["raw_pixels_decoder_mse"].append(decoder_probe(raw_tr, right_tr, raw_ev, right_ev, epochs=probe_epochs, seed=s)[1]["eval_mse"])
            rand = build_model(mc, 0.5, s, dev)
            f_tr, f_ev = batched_encode(rand, tr.context), batched_encode(rand, ev.context)
            rows["random_encoder_acc"].append(classification_probe(f_tr, y_tr, f_ev, y_ev, epochs=probe_epochs, seed=s)["eval_acc"])
            rows["random_encoder_decoder_mse"].append(decoder_probe(f_tr, right_tr, f_ev, right_ev, epochs=probe_epochs, seed=s)[1]["eval_mse"])
            fresh = build_model(mc, 0.5, s, dev).online_encoder
            rows["supervised_acc"].append(supervised_baseline(fresh, mc.embed_dim, tr, ev, epochs=epochs, seed=s)["eval_acc"])
            rows["mean_right_half_mse"].append(mean_mse)
            rows["chance_acc"].append(chance)
    finally:
        torch.set_num_threads(threads)
    log(f"mnist baselines: {len(seeds)} seeds in {time.perf_counter() - t0:.1f} s")
    units = {"acc": ("accuracy (fraction)", "held-out"), "mse": ("MSE of right-half pixels in [0, 1]", "held-out")}
    baselines = {k: {"unit": units["acc" if k.endswith("acc") else "mse"][0], "split": "held-out", "description": BASELINE_TEXT[k], "per_seed": v} for k, v in rows.items()}
    return {"metrics": spec, "configs": configs, "baselines": baselines, "settings": settings, "mnist_source": mnist.source}


def _clean(x: Any) -> Any:
    """NaN -> None (strict JSON), numpy scalars -> Python."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def reproduce(experiment: str, seeds: list[int], quick: bool = False, device: str = "auto", threads: int = 2,
              log: Callable[[str], None] = print, mnist: MnistData | None = None, alpha: float | None = None,
              ema_momentum: float | None = None) -> dict[str, Any]:
    """Run the reproduction of ``experiment`` for ``seeds``; returns the JSON-ready dict (see the module docstring).

    ``alpha`` replaces the paper's 0.5 of the BiJEPA variants (classic JEPA keeps 1);
    ``ema_momentum`` replaces the paper's EMA momentum of every variant.
    """
    hyper: dict[str, float] = {}
    if alpha is not None:
        check_float("alpha", alpha, 0.0, 1.0)
        hyper["alpha"] = float(alpha)
    if ema_momentum is not None:
        check_float("ema_momentum", ema_momentum, 0.0, 1.0)
        hyper["ema_momentum"] = float(ema_momentum)
    check_choice("experiment", experiment, tuple(EXPERIMENTS))
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    for s in seeds:
        check_int("seeds[...]", s, 0)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must not repeat, got {list(seeds)}")
    check_int("threads", threads, 1)
    dev = resolve_device(device)
    t0 = time.perf_counter()
    if EXPERIMENTS[experiment].kind == "halves":
        body = _mnist_experiment(list(seeds), quick, device, log, mnist, hyper)
    else:
        body = _forecast_experiment(experiment, list(seeds), quick, device, threads, log, hyper)
    env = {"torch": torch.__version__, "python": platform.python_version(), "device": str(dev), "threads": threads}
    if "mnist_source" in body:
        env["mnist_source"] = body.pop("mnist_source")
    out = {"schema": SCHEMA_VERSION, "experiment": experiment, "seeds": list(seeds), "quick": quick,
           "command": "python -m bijepa_nb.reproduce " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("reproduce.py") else "bijepa_nb.reproduce.reproduce()",
           "seconds": round(time.perf_counter() - t0, 1), "environment": env, "paper": PAPER[experiment], **body}
    out = _clean(out)
    validate(out)
    return out


def validate(result: dict[str, Any]) -> None:
    """Raise ValueError naming the first field that does not follow the schema."""
    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(f"reproduce JSON: {what}")

    need(result.get("schema") == SCHEMA_VERSION, f"schema must be {SCHEMA_VERSION!r}")
    need(result.get("experiment") in EXPERIMENTS, f"experiment must be one of {tuple(EXPERIMENTS)}")
    seeds = result.get("seeds")
    need(isinstance(seeds, list) and len(seeds) > 0, "seeds must be a non-empty list")
    n = len(seeds)  # type: ignore[arg-type]
    metrics = result.get("metrics", {})
    need(bool(metrics), "metrics must describe at least one key")
    for k, m in metrics.items():
        need(isinstance(m.get("unit"), str) and m["unit"] != "", f"metrics[{k!r}] needs a unit")
        need(m.get("split") in SPLITS, f"metrics[{k!r}].split must be one of {SPLITS}")
    need(set(result.get("configs", {})) == set(EXPERIMENTS[result["experiment"]].table), "configs must hold exactly the paper table's configurations")
    for name, c in result["configs"].items():
        need(len(c.get("diverged_at", [])) == n, f"configs[{name!r}].diverged_at needs one entry per seed")
        need(set(c.get("per_seed", {})) == set(metrics), f"configs[{name!r}].per_seed must hold exactly the described metrics")
        for k, v in c["per_seed"].items():
            need(isinstance(v, list) and len(v) == n, f"configs[{name!r}].per_seed[{k!r}] needs one value per seed")
            need(all(x is None or isinstance(x, (int, float)) for x in v), f"configs[{name!r}].per_seed[{k!r}] holds numbers or null")
    for name, b in result.get("baselines", {}).items():
        need(isinstance(b.get("unit"), str) and b["unit"] != "", f"baselines[{name!r}] needs a unit")
        need(str(b.get("split", "")).startswith("held-out"), f"baselines[{name!r}] must be scored held-out")
        need(isinstance(b.get("per_seed"), list) and len(b["per_seed"]) == n, f"baselines[{name!r}].per_seed needs one value per seed")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=tuple(EXPERIMENTS))
    ap.add_argument("--seeds", type=int, default=10, help="number of seeds, first-seed .. first-seed + seeds - 1 (default 10)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="the JSON file to write")
    ap.add_argument("--quick", action="store_true", help="a fast smoke run (few steps, small probes)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of the batched runs (default 2)")
    ap.add_argument("--alpha", type=float, default=None, help="alpha of the BiJEPA variants (default: the paper's 0.5)")
    ap.add_argument("--ema-momentum", type=float, default=None, help="EMA momentum of every variant (default: the paper's)")
    args = ap.parse_args(argv)
    if args.seeds < 1 or args.first_seed < 0:
        raise SystemExit(f"--seeds must be >= 1 and --first-seed >= 0, got {args.seeds} and {args.first_seed}")
    try:
        out = reproduce(args.experiment, list(range(args.first_seed, args.first_seed + args.seeds)), args.quick, args.device,
                        args.threads, alpha=args.alpha, ema_momentum=args.ema_momentum)
    except ValueError as err:
        ap.error(str(err))
    from pathlib import Path

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out} ({out['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
