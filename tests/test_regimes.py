"""The harder regimes (chapter 12): regime options of the data, probes and baselines,
their range checks, the study's chunks and JSON, the command line and the verdicts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from bijepa_nb import reproduce as cli
from bijepa_nb.analysis import regimes as ar
from bijepa_nb.core.config import LorenzConfig, SineConfig
from bijepa_nb.core.data import (
    first_target_step,
    lorenz_trajectories,
    make_generator,
    sine_sequences,
    split_context_target,
)
from bijepa_nb.experiments import regimes as rg
from bijepa_nb.experiments.baselines import (
    forecast_baselines,
    linear_extrapolation,
    sinusoid_fit,
)

SAVED = Path(__file__).resolve().parents[1] / "book" / "results" / "regimes.json"


# ------------------------------------------------------------------ range checks
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("noise_levels", [0.3], r"noise_levels must hold values of \(0.05, 0.2, 0.5\)"),
        (
            "sine_horizons",
            [11],
            r"sine_horizons\[...\] must be an integer in \[1, 10\]",
        ),
        ("sine_horizons", [0], r"sine_horizons\[...\] must be an integer in \[1, 10\]"),
        ("lorenz_horizons", [5000], r"lorenz_horizons\[...\] must be .* \[1, 1000\]"),
        (
            "label_budgets",
            [0],
            r"label_budgets\[...\] must be an integer in \[1, inf\)",
        ),
        ("noise_levels", [], r"noise_levels must be a non-empty list"),
        ("sine_horizons", [5, 5], r"sine_horizons must not repeat"),
    ],
)
def test_a_regime_value_out_of_range_names_the_parameter(field, value, message):
    with pytest.raises(ValueError, match=message):
        rg.RegimesSpec(**{field: value}).check()


def test_the_default_study_passes_its_checks():
    spec = rg.RegimesSpec()
    spec.check()
    assert spec.identity()["regimes"]["noise_levels"] == [0.05, 0.2, 0.5]


def test_a_label_budget_larger_than_the_split_is_refused():
    labels = torch.arange(10).repeat(7)  # 7 images of every class
    gen = torch.Generator().manual_seed(0)
    assert len(rg.label_subset(labels, 7, gen)) == 70
    with pytest.raises(
        ValueError, match=r"labels_per_class must be in \[1, 7\] .* got 8"
    ):
        rg.label_subset(labels, 8, gen)
    with pytest.raises(ValueError, match="labels_per_class"):
        rg.check_label_budgets([1, 10], labels)


def test_label_subsets_are_balanced_distinct_and_seeded():
    labels = torch.randint(0, 10, (2000,), generator=torch.Generator().manual_seed(1))
    a = rg.label_subset(labels, 10, make_generator(3, "probe"))
    b = rg.label_subset(labels, 10, make_generator(3, "probe"))
    c = rg.label_subset(labels, 10, make_generator(4, "probe"))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len(set(a.tolist())) == 100
    assert torch.bincount(labels[a], minlength=10).tolist() == [10] * 10


def test_lorenz_burn_in_is_checked_and_skips_the_first_steps():
    with pytest.raises(
        ValueError, match=r"burn_in must be an integer in \[0, 100000\]"
    ):
        LorenzConfig(burn_in=-1)
    cfg = LorenzConfig(seq_len=30)
    plain = lorenz_trajectories(4, torch.Generator().manual_seed(0), cfg)
    burnt = lorenz_trajectories(
        4, torch.Generator().manual_seed(0), LorenzConfig(seq_len=25, burn_in=5)
    )
    assert torch.equal(burnt, plain[:, 5:])


# --------------------------------------------------------------- horizon options
def test_the_target_step_at_a_horizon_and_its_range():
    y = torch.arange(24.0).reshape(2, 4, 3)
    assert torch.equal(first_target_step(y, 3), y[:, 2])
    assert torch.equal(first_target_step(y), y[:, 0])
    with pytest.raises(ValueError, match=r"horizon must be an integer in \[1, 4\]"):
        first_target_step(y, 5)


def test_baselines_forecast_k_steps_ahead():
    t = torch.arange(12.0)
    ramp = (3 * t - 1).repeat(5, 1)  # constant velocity: extrapolation is exact
    assert torch.allclose(linear_extrapolation(ramp[:, :6], 4)[:, 0], ramp[:, 9])
    cfg = SineConfig(noise_std=0.0)
    seq = sine_sequences(50, torch.Generator().manual_seed(0), cfg)
    ctx, tgt = split_context_target(seq, cfg.context_len)
    for k in (1, 5, 10):  # a noise-free sine: the fit on a fine grid is near exact
        err = (sinusoid_fit(ctx, cfg, horizon=k)[:, 0] - tgt[:, k - 1]).abs().max()
        assert err < 0.05, (k, float(err))
    with pytest.raises(ValueError, match="horizon"):
        sinusoid_fit(ctx, cfg, horizon=11)


def test_forecast_baselines_score_against_a_given_truth():
    cfg = SineConfig(noise_std=0.5, n_probe=300, n_test=300)
    data, clean = rg.sine_regime_data(cfg, 0)
    noisy = forecast_baselines(data.probe, data.test, "sine", cfg=cfg, horizon=5)
    vs_signal = forecast_baselines(
        data.probe, data.test, "sine", cfg=cfg, horizon=5, truth=clean[:, 4:5]
    )
    # against the signal every error is smaller by about sigma^2 = 0.25
    for k in ("lstsq_context", "sinusoid_fit", "mean"):
        assert abs((noisy[k] - vs_signal[k]) - 0.25) < 0.06, (k, noisy[k], vs_signal[k])


def test_the_clean_targets_are_the_noisy_ones_without_noise():
    cfg = SineConfig(noise_std=0.2, n_probe=50, n_test=400)
    data, clean = rg.sine_regime_data(cfg, 1)
    resid = data.test.target - clean
    assert abs(float(resid.std()) - 0.2) < 0.01 and abs(float(resid.mean())) < 0.01


def test_the_lyapunov_exponent_of_the_euler_map_is_near_the_flows():
    lam = rg.lyapunov_exponent(n=16, steps=3000)
    assert 0.75 < lam < 1.2, lam  # the Lorenz flow: 0.906 per time unit


def test_lorenz_probe_and_test_sets_reach_the_longest_horizon():
    cfg = LorenzConfig(burn_in=100, n_train=20, n_probe=10, n_test=10)
    d = rg.lorenz_regime_data(cfg, 0, 220)
    assert d.test.target.shape == (10, 220, 3) and d.test.context.shape == (10, 20, 3)
    assert d.probe.context.shape[1] == cfg.context_len


# ------------------------------------------------------------- study and command
def tiny_spec(**kw) -> rg.RegimesSpec:
    base = dict(
        sine_seeds=[0, 1],
        lorenz_seeds=[0, 1],
        mnist_seeds=[],
        noise_levels=[0.2],
        sine_horizons=[1, 10],
        lorenz_horizons=[1, 50],
        quick=True,
        device="cpu",
    )
    return rg.RegimesSpec(**{**base, **kw})


def test_a_tiny_study_runs_validates_and_comes_back_from_the_cache(tmp_path):
    out = rg.regimes(tiny_spec(), log=lambda s: None, cache_dir=tmp_path)
    assert out["execution"]["computed"] == 2
    assert [p["label"] for p in out["points"]] == [
        "σ = 0.2, k = 1",
        "σ = 0.2, k = 10",
        "k = 1 (0.01 time units)",
        "k = 50 (0.5 time units)",
    ]
    for p in out["points"]:
        assert set(p["baselines"]) >= {"persistence", "linear_extrapolation"}
        assert all(len(v) == 2 for r in p["models"].values() for v in r.values())
    again = rg.regimes(tiny_spec(), log=lambda s: None, cache_dir=tmp_path)
    assert again["execution"]["from_cache"] == 2
    assert again["points"] == out["points"]


def test_validate_refuses_a_broken_file(tmp_path):
    out = rg.regimes(tiny_spec(lorenz_horizons=[1]), log=lambda s: None)
    rg.validate(out)
    bad = json.loads(json.dumps(out))
    bad["points"][0]["models"]["classic"]["A"].pop()
    with pytest.raises(ValueError, match=r"points\[0\].models\['classic'\]\['A'\]"):
        rg.validate(bad)
    bad = json.loads(json.dumps(out))
    bad["points"][1]["baselines"]["mean"][0] = None
    with pytest.raises(ValueError, match=r"baselines\['mean'\] needs one number"):
        rg.validate(bad)


def test_the_command_refuses_a_bad_output_and_a_bad_regime_before_training(
    tmp_path, capsys
):
    with pytest.raises(SystemExit) as err:
        cli.main(["regimes", "--out", str(tmp_path / "missing" / "r.json")])
    assert err.value.code == 2 and "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        cli.main(
            ["regimes", "--out", str(tmp_path / "r.json"), "--noise-levels", "0.3"]
        )
    assert err.value.code == 2 and "noise_levels must hold" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


# ---------------------------------------------------------------------- verdicts
def synthetic(jepa: list[float], base: dict[str, list[float]], hib=False) -> dict:
    n = len(jepa)
    return {
        "experiment": "sine",
        "regime": {},
        "label": "p",
        "unit": "MSE",
        "higher_is_better": hib,
        "models": {"classic": {"A": jepa}, "expressive": {"A": jepa}},
        "diverged_at": {"classic": [None] * n, "expressive": [None] * n},
        "baselines": base,
    }


def test_a_jepa_clearly_better_wins_and_a_worse_one_is_reversed():
    rng = np.random.default_rng(0)
    jepa = list(0.1 * np.exp(0.05 * rng.standard_normal(10)))
    good = synthetic(jepa, {"x": [0.2] * 10, "y": [0.3] * 10})
    tests = ar.all_tests({"points": [good]})
    assert sorted(ar.winners(tests)) == [
        ("sine", "p", "classic", "A"),
        ("sine", "p", "expressive", "A"),
    ]
    bad = synthetic(jepa, {"x": [0.05] * 10, "y": [0.3] * 10})
    tests = ar.all_tests({"points": [bad]})
    assert ar.winners(tests) == []
    words = {(v.model, v.baseline): v.holm_word for v in ar.verdict_table(tests)}
    assert words[("classic", "x")] == "reversed" and words[("classic", "y")] == "holds"


def test_holm_removes_a_marginal_win_in_a_large_family():
    rng = np.random.default_rng(1)
    base = list(np.exp(0.1 * rng.standard_normal(10)))
    marginal = [
        b / math.exp(0.08 + 0.1 * e) for b, e in zip(base, rng.standard_normal(10))
    ]
    alone = ar.all_tests({"points": [synthetic(marginal, {"x": base})]})
    assert alone[0].side == "above" and alone[0].p < 0.05
    family = [synthetic(marginal, {"x": base})] + [
        synthetic(
            list(rng.uniform(0.9, 1.1, 10)), {"x": list(rng.uniform(0.9, 1.1, 10))}
        )
        for _ in range(30)
    ]
    tests = ar.all_tests({"points": family})
    assert tests[0].side == "above" and tests[0].holm_side() == "includes"


def test_accuracies_compare_by_paired_points():
    p = synthetic([0.9] * 5, {"raw_pixels": [0.8] * 5}, hib=True)
    p["models"] = {"classic": {"probe": [0.9, 0.91, 0.9, 0.92, 0.9]}}
    t = ar.point_tests(p)[0]
    assert t.null == 0.0 and 9 < t.interval.mean < 11 and t.side == "above"


@pytest.mark.skipif(not SAVED.exists(), reason="the study is not saved yet")
def test_the_saved_study_is_valid_and_at_full_size():
    res = json.loads(SAVED.read_text())
    rg.validate(res)
    assert not res["quick"]
    assert len(res["seeds"]["sine"]) >= 10 and len(res["seeds"]["lorenz"]) >= 10
    assert len(res["seeds"]["mnist"]) >= 5
    assert len(res["points"]) == 3 * 3 + 5 + 3
    assert res["seconds"] <= 30 * 60
