"""Tests of the measurements behind issue 14's corrected claims: the RK4 Lorenz option, the
validated noise estimator of Eq. 13, the fair baselines (quadratic one-step residual,
point forecast plus calibrated noise), the drift operator of §5.3 reading (b), and the
statistics (p-values, Holm, the verdict rule)."""

import math

import numpy as np
import pytest
import torch

import bijepa_nb as bj
from bijepa_nb.analysis import beyond, stats, verdicts
from bijepa_nb.core import data
from bijepa_nb.core.config import LorenzConfig, SineConfig
from bijepa_nb.experiments.ensemble import Ensemble, train_ensemble
from bijepa_nb.experiments.stochastic import (
    energy_score,
    gaussian_samples,
    residual_covariance,
)


# ------------------------------------------------------------------ Lorenz integrators
def _reference(starts: torch.Tensor, cfg: LorenzConfig) -> np.ndarray:
    from scipy.integrate import solve_ivp

    times = cfg.dt * np.arange(1, cfg.seq_len + 1)

    def field(_, s):
        return data.lorenz_derivative(torch.from_numpy(s)[None], cfg)[0].numpy()

    return np.stack(
        [
            solve_ivp(
                field,
                (0, times[-1]),
                s,
                method="DOP853",
                rtol=1e-10,
                atol=1e-10,
                t_eval=times,
            ).y.T
            for s in starts.numpy()
        ]
    )


def test_rk4_follows_the_flow_and_euler_stays_the_default():
    cfg = LorenzConfig()
    g = torch.Generator().manual_seed(5)
    starts = (
        torch.rand(20, 3, generator=g, dtype=torch.float64) * 2 - 1
    ) * cfg.init_range
    ref = _reference(starts, cfg)
    paths = {}
    for name in ("euler", "rk4"):
        gen = torch.Generator().manual_seed(5)
        paths[name] = data.lorenz_trajectories(20, gen, cfg, name).numpy()
    rel = {
        k: np.median(np.linalg.norm(v - ref, axis=-1) / np.linalg.norm(ref, axis=-1), 0)
        for k, v in paths.items()
    }
    assert rel["rk4"][-1] < 1e-4, "RK4 at dt = 0.01 is accurate"
    assert rel["euler"][-1] > 0.05, "Euler at dt = 0.01 is not the Lorenz flow"
    # the default (and the explicit "euler") is the paper's integrator, unchanged
    default = data.lorenz_trajectories(
        20, torch.Generator().manual_seed(5), cfg
    ).numpy()
    assert np.array_equal(default, paths["euler"])
    one = data.lorenz_step(starts, cfg)
    assert torch.equal(one, starts + cfg.dt * data.lorenz_derivative(starts, cfg))
    small = LorenzConfig(n_train=10, n_probe=5, n_test=5)
    assert torch.equal(
        data.lorenz_data(small, 0).train.context,
        data.lorenz_data(small, 0, "euler").train.context,
    )
    assert not torch.equal(
        data.lorenz_data(small, 0).train.context,
        data.lorenz_data(small, 0, "rk4").train.context,
    )
    with pytest.raises(ValueError, match="integrator"):
        data.lorenz_trajectories(2, torch.Generator(), cfg, "midpoint")


# ------------------------------------------------------------------ noise estimator
def test_difference_noise_variance_is_unbiased_on_white_noise():
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(4000, 12, 1, generator=g, dtype=torch.float64)
    m = torch.ones_like(x)
    for k in (1, 2, 4, 6):
        var, n = beyond.difference_noise_variance(x, m, k)
        assert float(var) == pytest.approx(0.09, rel=0.05), k
        assert int(n) == 4000 * (12 - k)
    with pytest.raises(ValueError, match="at least 7 steps"):
        beyond.difference_noise_variance(x[:, :6], m[:, :6], 6)


def test_auto_order_removes_the_curvature_bias_of_second_differences():
    clean = data.sine_split(SineConfig(noise_std=0.0), 0, "probe").context.double()
    g = torch.Generator().manual_seed(1)
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=g, dtype=clean.dtype)
    v, m = noisy.unsqueeze(-1), torch.ones_like(noisy).unsqueeze(-1)
    old = float(beyond.noise_variance(v, m, 2))
    new = float(beyond.noise_variance(v, m))
    assert old / 0.0025 > 5, "second differences mistake the sine's curvature for noise"
    assert new / 0.0025 == pytest.approx(1.0, abs=0.1)
    # with half the steps missing, long runs are rare: auto falls back to order 2
    y, mask = beyond.corrupt(clean, 0.5, 0.5, g)
    y, mask = y.unsqueeze(-1), mask.unsqueeze(-1)
    assert torch.equal(
        beyond.noise_variance(y, mask), beyond.noise_variance(y, mask, 2)
    )
    # information() takes the order; auto gives the clean context more bits
    assert beyond.information(noisy) > beyond.information(noisy, order=2)


# ------------------------------------------------------------------ fair baselines
def test_quadratic_one_step_residual_is_exact_on_euler_data_only():
    cfg = LorenzConfig(n_train=200, n_probe=10, n_test=50)
    euler, rk4 = data.lorenz_data(cfg, 0), data.lorenz_data(cfg, 0, "rk4")
    quad = beyond.OneStepQuadratic(euler.train).scores(euler.test)
    lin = beyond.OneStepLinear(euler.train).scores(euler.test)
    assert float(quad.max()) < 1e-9 < float(lin.min()), "an Euler step is quadratic"
    assert float(beyond.OneStepQuadratic(rk4.train).scores(rk4.test).mean()) > 1e-8
    assert beyond.OneStepQuadratic.features(torch.ones(4, 3)).shape == (4, 9)


def test_calibrated_gaussian_samples():
    g = torch.Generator().manual_seed(0)
    mix = torch.tensor([[1.0, 0.0], [0.5, 0.2]], dtype=torch.float64)
    resid = torch.randn(5000, 2, generator=g, dtype=torch.float64) @ mix
    cov = residual_covariance(resid)
    assert torch.allclose(cov, mix.T @ mix, atol=0.05)
    assert torch.allclose(residual_covariance(resid, 10), cov * 4999 / 4989)
    point = torch.zeros(3000, 2, dtype=torch.float64)
    s = gaussian_samples(point, cov, 64, g)  # [M, N, D]
    assert s.shape == (64, 3000, 2)
    assert torch.allclose(torch.cov(s.reshape(-1, 2).T), cov, atol=0.03)
    per_item = cov.expand(3000, 2, 2)
    s2 = gaussian_samples(point, per_item, 16, g)
    assert torch.allclose(torch.cov(s2.reshape(-1, 2).T), cov, atol=0.05)
    # a calibrated spread scores better than no spread when the truth is noisy
    truth = resid[:3000]
    spread = energy_score(gaussian_samples(point, cov, 32, g), truth).mean()
    assert float(spread) < float(truth.norm(dim=-1).mean())


# ------------------------------------------------------------------ §5.3 reading (b)
def test_drift_operators_recover_a_known_linear_update():
    g = torch.Generator().manual_seed(0)
    w = torch.tensor([[1.1, 0.2], [0.0, 0.9]], dtype=torch.float64)
    s0 = torch.randn(50, 2, generator=g, dtype=torch.float64)
    snaps = torch.stack(
        [s0 @ torch.linalg.matrix_power(w, r) for r in range(4)]
    )  # [R, n, D]
    d = beyond.drift_operators(snaps[:, None].numpy())  # K = 1
    assert d["rho"].shape == (3, 1)
    assert np.allclose(d["rho"], 1.1) and np.allclose(d["r2"], 1.0)
    with pytest.raises(ValueError, match="snapshots"):
        beyond.drift_operators(snaps[:1, None].numpy())


def test_monitored_snapshots_leave_training_alone():
    mc, tc = bj.paper_config("sine", "unconstrained", 0.5, num_steps=30, progress=False)
    fixed = data.sine_split(SineConfig(), 0, "test").context[:32]
    plain = Ensemble(
        [bj.build_model(mc, bj.TrainConfig(alpha=0.5, seed=s)) for s in (0, 1)]
    )
    mon = beyond.MonitoredEnsemble(
        [bj.build_model(mc, bj.TrainConfig(alpha=0.5, seed=s)) for s in (0, 1)],
        every=10,
        fixed_context=fixed,
    )
    h1 = train_ensemble(
        plain, [data.SineStream(SineConfig(), s, 64) for s in (0, 1)], tc
    )
    h2 = train_ensemble(mon, [data.SineStream(SineConfig(), s, 64) for s in (0, 1)], tc)
    assert all(np.array_equal(a.total, b.total) for a, b in zip(h1, h2))
    rec = mon.record_arrays()
    assert rec["snapshot"].shape == (3, 2, 32, mc.embed_dim)


# ------------------------------------------------------------------ statistics
def test_pvalues_match_the_intervals():
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = rng.normal(0.3, 1.0, size=6)
        iv, p = stats.mean_ci(v), stats.t_pvalue(v)
        assert iv.excludes(0.0) == (p < 0.05)
    a, b = rng.uniform(1, 2, 8), rng.uniform(1, 2, 8)
    assert stats.paired_ratio_pvalue(a, b) == pytest.approx(
        stats.t_pvalue(np.log(a / b))
    )
    assert math.isnan(stats.t_pvalue([1.0]))


def test_holm_against_hand_computed_values():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone
    assert np.allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    assert np.allclose(stats.holm([0.5, 0.9]), [1.0, 1.0])
    with pytest.raises(ValueError):
        stats.holm([0.1, 1.5])


def test_verdict_rule():
    above = stats.Interval(2.0, 0.1, 1.5, 2.5, 5)
    below = stats.Interval(0.5, 0.1, 0.3, 0.8, 5)
    spans = stats.Interval(1.0, 0.1, 0.8, 1.2, 5)
    single = stats.Interval(1.0, float("nan"), float("nan"), float("nan"), 1)
    assert verdicts.verdict([above, above]) == "holds"
    assert verdicts.verdict([above, spans]) == "depends"
    assert verdicts.verdict([spans]) == "does not hold"
    assert verdicts.verdict([above, below]) == "does not hold"
    assert verdicts.verdict([below, below]) == "reversed"
    assert verdicts.verdict([single]) == "too few seeds"
    assert verdicts.verdict([above], null=3.0) == "reversed"
    assert verdicts.side(spans, 1.0) == "includes"
