"""Unit tests of the "beyond the paper" modules: beyond, invertible, stochastic."""

import json
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch

import bijepa_nb as bj
from bijepa_nb.analysis import beyond, plotting, stats, verdicts
from bijepa_nb.core import data, probes, training
from bijepa_nb.core.config import LorenzConfig, SineConfig
from bijepa_nb.experiments import registry
from bijepa_nb.experiments.ensemble import Ensemble, train_ensemble
from bijepa_nb.experiments.invertible import (
    AffineCoupling,
    InverseView,
    InvertiblePredictor,
    build_shared,
    hidden_for_budget,
    num_parameters,
    share_invertible_predictor,
)
from bijepa_nb.experiments.pipeline import seed_runs, train_runs
from bijepa_nb.experiments.stochastic import (
    FORECASTERS,
    StochasticJEPA,
    build_stochastic,
    energy_score,
    horizon_forecasts,
    point_score,
)


# ------------------------------------------------------------------ invertible predictor
def test_invertible_predictor_round_trip_is_exact_in_float64():
    torch.manual_seed(0)
    p = InvertiblePredictor(16, 20, num_layers=4, seed=3).double()
    for layer in (
        p.couplings
    ):  # leave the identity init: random weights make the test meaningful
        torch.nn.init.normal_(layer.net[-1].weight, std=0.5)
        torch.nn.init.normal_(layer.net[-1].bias, std=0.5)
    s = 3 * torch.randn(256, 16, dtype=torch.float64)
    y = p(s)
    assert (y - s).abs().max() > 0.1, "the map is not the identity"
    assert torch.allclose(p.inverse(y), s, atol=1e-12, rtol=0)
    assert torch.allclose(p(p.inverse(s)), s, atol=1e-12, rtol=0)


def test_coupling_starts_as_identity_and_odd_dims_work():
    c = AffineCoupling(7, 5)
    s = torch.randn(4, 7)
    assert torch.equal(c(s), s)
    with pytest.raises(ValueError, match="dim"):
        AffineCoupling(1, 5)


def test_shared_predictor_halves_parameters_and_trains():
    mc, tc = bj.paper_config("sine", "expressive", 0.5, num_steps=30, progress=False)
    model = bj.build_model(mc, bj.TrainConfig(alpha=0.5, seed=0))
    two = num_parameters(model.fwd_predictor) + num_parameters(model.bwd_predictor)
    share_invertible_predictor(model, seed=0)
    one = num_parameters(model.fwd_predictor)
    assert num_parameters(model.bwd_predictor) == 0
    assert two / 2 - 100 < one <= two / 2
    assert hidden_for_budget(mc, 4) == 20 and hidden_for_budget(mc, 2) == 41
    ids = [id(p) for p in model.trainable_parameters()]
    assert len(ids) == len(set(ids)), "every parameter is optimised once"
    before = model.fwd_predictor.couplings[0].net[-1].weight.clone()
    h = bj.train(model, data.SineStream(SineConfig(), 0, 64), tc)
    assert np.isfinite(h.total).all()
    assert not torch.equal(before, model.fwd_predictor.couplings[0].net[-1].weight), (
        "the shared predictor is trained"
    )
    s = model.predict_forward(torch.randn(5, 10))
    assert torch.allclose(model.bwd_predictor(model.fwd_predictor(s)), s, atol=1e-4)


def test_shared_predictor_refuses_classic_jepa():
    mc, _ = bj.paper_config("sine", "expressive", 1.0)
    with pytest.raises(ValueError, match="backward predictor"):
        share_invertible_predictor(
            bj.build_model(mc, bj.TrainConfig(alpha=1.0, seed=0))
        )


# ------------------------------------------------------------------ adaptive alpha
def _sine(n=500):
    return data.sine_split(SineConfig(n_probe=n), 0, "probe")


def test_alpha_formula_and_bounds():
    assert beyond.adaptive_alpha(3.0, 1.0) == 0.75
    assert beyond.adaptive_alpha(2.0, 2.0) == 0.5
    assert beyond.adaptive_alpha(5.0, 0.0) == 1.0  # empty target view: classic JEPA
    assert beyond.adaptive_alpha(0.0, 5.0) == 0.0
    for a, b in [(0.1, 7.0), (1e-9, 1e9), (4.0, 4.0)]:
        assert 0.0 <= beyond.adaptive_alpha(a, b) <= 1.0
    with pytest.raises(ValueError, match="both views"):
        beyond.adaptive_alpha(0.0, 0.0)
    with pytest.raises(ValueError, match="info_x"):
        beyond.adaptive_alpha(-1.0, 1.0)
    with pytest.raises(ValueError, match="info_y"):
        beyond.adaptive_alpha(1.0, float("nan"))
    with pytest.raises(TypeError, match="info_x"):
        beyond.adaptive_alpha("1", 1.0)


def test_information_of_views():
    sp = _sine()
    ix = beyond.information(sp.context)
    assert ix > 0
    a, ix2, iy = beyond.alpha_from_views(sp.context, sp.context.clone())
    assert a == 0.5 and ix2 == iy  # symmetric views
    g = torch.Generator().manual_seed(0)
    noisy, mask = beyond.corrupt(sp.target, 0.5, 0.0, g)
    very_noisy, _ = beyond.corrupt(sp.target, 2.0, 0.0, g)
    holey, hmask = beyond.corrupt(sp.target, 0.0, 0.5, g)
    iy = beyond.information(sp.target)
    assert beyond.information(very_noisy, mask) < beyond.information(noisy, mask) < iy
    assert beyond.information(holey, hmask) < iy
    assert beyond.information(holey) == beyond.information(
        holey, hmask
    )  # zeros are read as missing
    empty = torch.zeros_like(sp.target)
    assert beyond.information(empty) == 0.0
    assert beyond.alpha_from_views(sp.context, empty)[0] == 1.0
    assert beyond.alpha_from_views(empty, sp.target)[0] == 0.0
    assert 0.5 < beyond.alpha_from_views(sp.context, noisy, None, mask)[0] < 1.0
    # 3-D views (Lorenz) work too
    ld = data.lorenz_data(LorenzConfig(n_train=50, n_probe=10, n_test=10), 0)
    assert beyond.information(ld.train.context) > 0


def test_information_rejects_bad_input():
    sp = _sine(20)
    with pytest.raises(ValueError, match="view must be"):
        beyond.information(sp.context[0])
    with pytest.raises(ValueError, match="at least 3 steps"):
        beyond.information(sp.context[:, :2])
    bad = sp.context.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        beyond.information(bad)
    with pytest.raises(ValueError, match="mask must have the shape"):
        beyond.information(sp.context, torch.ones(3, 3))
    with pytest.raises(ValueError, match="only 0"):
        beyond.information(sp.context, torch.full_like(sp.context, 0.5))
    sparse = torch.zeros_like(sp.context)
    sparse[:, ::2] = 1.0  # observed steps, but never three in a row
    with pytest.raises(ValueError, match="three consecutive"):
        beyond.information(sparse)
    with pytest.raises(ValueError, match="missing"):
        beyond.corrupt(sp.context, 0.1, 1.5, torch.Generator())


def test_corrupted_stream_leaves_context_alone():
    base = data.SineStream(SineConfig(), 0, 64)
    clean = data.SineStream(SineConfig(), 0, 64)
    st = beyond.CorruptedTargetStream(base, 0.5, 0.5, seed=0)
    c, t = st.next()
    c0, t0 = clean.next()
    assert torch.equal(c, c0) and not torch.equal(t, t0)
    assert 0.3 < float((t == 0).float().mean()) < 0.7


# ------------------------------------------------------------------ ROC AUC
def test_roc_auc_hand_computed():
    # negatives 1, 2, 3; positives 2, 4: pairs (pos > neg) = 4 of 6, one tie (2 vs 2) counts 1/2
    assert beyond.roc_auc([1, 2, 3], [2, 4]) == pytest.approx(4.5 / 6)
    assert beyond.roc_auc([0, 1], [2, 3]) == 1.0
    assert beyond.roc_auc([2, 3], [0, 1]) == 0.0
    assert beyond.roc_auc([1, 1, 1], [1, 1]) == 0.5
    rng = np.random.default_rng(0)
    neg, pos = rng.normal(size=200), rng.normal(0.7, 1, size=150)
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert beyond.roc_auc(neg, pos) == pytest.approx(brute, abs=1e-12)
    with pytest.raises(ValueError, match="at least one"):
        beyond.roc_auc([], [1.0])
    with pytest.raises(ValueError, match="finite"):
        beyond.roc_auc([np.nan], [1.0])


# ------------------------------------------------------------------ stochastic predictor
def test_energy_score_properties():
    torch.manual_seed(0)
    truth = torch.zeros(3, 2)
    point = torch.ones(2, 3, 2)  # two identical samples = a point forecast
    assert torch.allclose(
        energy_score(point, truth), point_score(point[0], truth), atol=1e-5
    )
    # 1-D: CRPS of N(0,1) at 0 is (sqrt(2) - 1) / sqrt(pi)
    s = torch.randn(4000, 1, 1)
    assert float(energy_score(s, torch.zeros(1, 1))) == pytest.approx(
        (2**0.5 - 1) / np.pi**0.5, abs=0.02
    )
    # proper: the right spread scores better than a too narrow or too wide one
    y = torch.randn(2000, 1)
    es = lambda sd: float(energy_score(sd * torch.randn(64, 2000, 1), y).mean())
    assert es(1.0) < es(0.2) and es(1.0) < es(3.0)
    with pytest.raises(ValueError, match="at least 2"):
        energy_score(torch.zeros(1, 3, 2), truth)
    with pytest.raises(ValueError, match="samples must be"):
        energy_score(torch.zeros(4, 3), truth)


TC1 = bj.TrainConfig(alpha=0.5, seed=1)


def test_stochastic_jepa_shapes_init_and_training():
    mc, tc = bj.paper_config("sine", "expressive", 0.5, num_steps=20, progress=False)
    ref = bj.build_model(mc, bj.TrainConfig(alpha=0.5, seed=1))
    model = build_stochastic(mc, TC1, noise_dim=3, num_samples=5)
    assert isinstance(model, StochasticJEPA)
    for a, b in zip(ref.online_encoder.parameters(), model.online_encoder.parameters()):
        assert torch.equal(a, b), "the encoder starts as build_model's"
    x = torch.randn(7, 10)
    samples = model.sample_forward(x, 11, torch.Generator().manual_seed(0))
    assert samples.shape == (11, 7, 16)
    assert samples.std(0).mean() > 0, "different z give different futures"
    assert model.predict_forward(x).shape == (7, 16)
    total, fwd, bwd = model.loss(x, torch.randn(7, 10))
    assert total.shape == () and float(fwd.detach()) > 0 and float(bwd.detach()) > 0
    h = bj.train(
        build_stochastic(mc, TC1, noise_dim=3, num_samples=5),
        data.SineStream(SineConfig(), 1, 64),
        tc,
    )
    assert np.isfinite(h.total).all()
    h2 = bj.train(
        build_stochastic(mc, TC1, noise_dim=3, num_samples=5),
        data.SineStream(SineConfig(), 1, 64),
        tc,
    )
    assert np.array_equal(h.total, h2.total), "a run is a pure function of its seeds"


# ------------------------------------------------------------------ anomalies and monitoring
def test_violations_change_only_the_target():
    ld = data.lorenz_data(LorenzConfig(n_train=20, n_probe=10, n_test=30), 0)
    same = beyond.rho_jump(ld.test, ld, 28.0)
    assert torch.allclose(same.target, ld.test.target, atol=1e-5), (
        "rho unchanged reproduces the data"
    )
    for bad in (
        beyond.rho_jump(ld.test, ld, 45.0),
        beyond.reverse_target(ld.test),
        beyond.spike(ld.test, 1.0, torch.Generator().manual_seed(0)),
    ):
        assert torch.equal(bad.context, ld.test.context)
        assert bad.target.shape == ld.test.target.shape and not torch.allclose(
            bad.target, ld.test.target
        )
    sp = beyond.spike(ld.test, 2.0, torch.Generator().manual_seed(0))
    assert torch.allclose(
        (sp.target - ld.test.target).abs().reshape(30, -1).sum(1),
        torch.full((30,), 2.0),
        atol=1e-5,
    )


def test_anomaly_scores_flag_injected_violations_in_a_tiny_run():
    ld = data.lorenz_data(LorenzConfig(n_train=500, n_probe=10, n_test=200), 0)
    mc, tc = bj.paper_config(
        "lorenz", "expressive", 0.5, num_steps=300, lr=2e-3, progress=False
    )
    model = bj.build_model(mc, bj.TrainConfig(alpha=0.5, seed=0))
    bj.train(model, data.PoolStream(ld.train, 0, 64), tc)
    normal = beyond.inconsistency_scores(model, ld.test)
    assert set(normal) == {"fwd", "bwd", "total"} and normal["total"].shape == (200,)
    rev = beyond.inconsistency_scores(model, beyond.reverse_target(ld.test))
    assert beyond.roc_auc(normal["total"], rev["total"]) > 0.8
    raw = beyond.OneStepLinear(ld.train)
    assert (
        beyond.roc_auc(
            raw.scores(ld.test),
            raw.scores(beyond.spike(ld.test, 1.0, torch.Generator().manual_seed(0))),
        )
        > 0.8
    )


def test_monitored_ensemble_records_without_changing_training():
    mc, tc = bj.paper_config("sine", "unconstrained", 0.5, num_steps=40, progress=False)
    seeds = [0, 1]
    plain = Ensemble(
        [bj.build_model(mc, bj.TrainConfig(alpha=0.5, seed=s)) for s in seeds]
    )
    mon = beyond.MonitoredEnsemble(
        [bj.build_model(mc, bj.TrainConfig(alpha=0.5, seed=s)) for s in seeds], every=10
    )
    h1 = train_ensemble(
        plain, [data.SineStream(SineConfig(), s, 64) for s in seeds], tc
    )
    h2 = train_ensemble(mon, [data.SineStream(SineConfig(), s, 64) for s in seeds], tc)
    assert all(np.array_equal(a.total, b.total) for a, b in zip(h1, h2)), (
        "monitoring leaves the arithmetic alone"
    )
    rec = mon.record_arrays()
    assert list(rec["step"]) == [0, 10, 20, 30]
    assert rec["rho_fwd"].shape == rec["rho_loop"].shape == (4, 2)
    assert np.all(rec["rho_loop"] > 0)
    # the Jacobian of a linear map is the map: its spectral radius is the largest |eigenvalue|
    assert float(
        beyond.spectral_radius(torch.diag(torch.tensor([0.5, -2.0])))
    ) == pytest.approx(2.0)


def test_horizon_data_extends_the_standard_contexts():
    cfg = LorenzConfig(n_train=20, n_probe=5, n_test=5)
    std, far = data.lorenz_data(cfg, 0), beyond.lorenz_horizon_data(0, 30, cfg)
    raw_std, raw_far = (
        std.denormalise(std.test.context.double()),
        far.denormalise(far.test.context.double()),
    )
    assert torch.allclose(raw_std, raw_far, atol=1e-4)
    assert far.test.target.shape == std.test.target.shape
    assert beyond.horizon_time(30, cfg) == pytest.approx(0.5)


# ------------------------------------------------ chapter 9's helpers and the pipeline
def _tiny_sine(steps=20, seeds=(0, 1), **kw):
    """Runs of the registry's sine settings, ``steps`` long."""
    return seed_runs("sine", list(seeds), num_steps=steps, progress=False, **kw)


def test_beats_follows_the_rule_on_errors_and_scores():
    g = np.random.default_rng(0)
    good = np.exp(g.normal(0, 0.05, 6))
    scores = {"a": good, "b": 2 * good * np.exp(g.normal(0, 0.05, 6)), "c": good * 0.3}
    out = verdicts.beats(scores, "a", ["b", "c"])
    assert out["b"].verdict == "holds" and out["c"].verdict == "reversed"
    assert out["b"].interval.mean == pytest.approx(2, rel=0.1)
    assert "b / a" in str(out["b"]) and str(out["b"]).endswith("holds")
    aucs = {"x": [0.9, 0.91, 0.92], "y": [0.7, 0.72, 0.69], "z": [0.9, 0.93, 0.89]}
    got = verdicts.beats(aucs, "x", ["y", "z"], higher_is_better=True)
    assert got["y"].verdict == "holds" and got["z"].verdict == "does not hold"
    assert got["y"].interval.mean == pytest.approx(0.2067, abs=1e-3)
    with pytest.raises(ValueError, match="winner must be one of"):
        verdicts.beats(scores, "q", ["a"])
    with pytest.raises(ValueError, match="others must be in"):
        verdicts.beats(scores, "a", ["q"])


def test_seed_runs_carry_the_registry_and_the_overrides():
    runs = seed_runs("lorenz", [3, 4], "restrictive", "x", alpha=0.7, num_steps=9)
    assert [r.train.seed for r in runs] == [3, 4] and {r.name for r in runs} == {"x"}
    assert all(r.mode == "restrictive" and r.train.alpha == 0.7 for r in runs)
    assert runs[0].train.num_steps == 9 and runs[0].train.lr == 5e-4


def test_train_runs_with_a_monitor_trains_exactly_as_without():
    plain = train_runs("sine", _tiny_sine(mode="unconstrained"))
    monitor = partial(beyond.MonitoredEnsemble, every=5)
    seen = train_runs("sine", _tiny_sine(mode="unconstrained"), ensemble=monitor)
    for a, b in zip(plain, seen):
        assert np.array_equal(a.history.total, b.history.total)
        for p, q in zip(a.model.parameters(), b.model.parameters()):
            assert torch.equal(p, q)
    rec = beyond.monitor_records(seen[::-1])
    assert list(rec["step"]) == [0, 5, 10, 15] and rec["rho_loop"].shape == (4, 2)
    full = seen[0].batch.record_arrays()
    assert np.array_equal(rec["rho_loop"][:, 0], full["rho_loop"][:, 1]), "order kept"
    with pytest.raises(ValueError, match="one MonitoredEnsemble"):
        beyond.monitor_records(plain)


def test_train_runs_builds_shared_and_stochastic_models_one_at_a_time():
    shared = train_runs("sine", _tiny_sine(), build=build_shared)
    for t in shared:
        assert isinstance(t.model.bwd_predictor, InverseView) and t.batch is None
        assert np.isfinite(t.history.total).all()
    ref = share_invertible_predictor(
        bj.build_model(bj.paper_config("sine")[0], shared[1].run.train), seed=1
    )
    bj.train(ref, data.SineStream(SineConfig(), 1, 64), shared[1].run.train)
    for p, q in zip(ref.parameters(), shared[1].model.parameters()):
        assert torch.equal(p, q), "train_runs(build=...) is the plain training loop"
    sto = train_runs("sine", _tiny_sine(seeds=(2,)), build=build_stochastic)
    assert isinstance(sto[0].model, StochasticJEPA)


def test_backward_inference_scores_the_read_outs():
    runs = _tiny_sine(50) + _tiny_sine(50, alpha=1.0)
    trained = train_runs("sine", runs)
    sd = {s: registry.experiment("sine").seed_data(s) for s in (0, 1)}
    out = beyond.backward_inference(trained[:2], trained[2:], sd)
    assert list(out) == list(beyond.BACKWARD.values())
    m, p, t = trained[1].model, sd[1].probe, sd[1].test
    fit = probes.lstsq_probe(
        m.predict_backward(p.target), data.last_context_step(p.context)
    )
    want = fit.mse(m.predict_backward(t.target), data.last_context_step(t.context))
    assert out[beyond.BACKWARD["bijepa"]][1] == pytest.approx(want, rel=1e-3)
    raw = out[beyond.BACKWARD["raw"]]
    assert raw[0] == pytest.approx(beyond.raw_backward(sd[0].probe, sd[0].test))
    one = beyond.raw_backward(sd[0].probe, sd[0].test, states=1)
    assert one > raw[0], "fewer raw target states fit worse"


def test_degraded_data_corrupts_only_the_targets():
    sd = registry.experiment("sine").seed_data(0)
    deg = beyond.degraded_data(sd, 0.5, 0.5, 0)
    assert torch.equal(deg.probe.context, sd.probe.context)
    assert torch.equal(deg.test.context, sd.test.context)
    mask = deg.extra["test_mask"]
    assert 0.45 < float(mask.float().mean()) < 0.55
    assert torch.all(deg.test.target[mask == 0] == 0)
    assert not torch.allclose(deg.test.target, sd.test.target)
    clean, dirty = sd.stream(64, "cpu"), deg.stream(64, "cpu")
    (cx, cy), (dx, dy) = clean.next(), dirty.next()
    assert torch.equal(cx, dx) and not torch.equal(cy, dy)
    alpha, ix, iy = beyond.alpha_from_views(
        deg.probe.context, deg.probe.target, None, deg.extra["probe_mask"]
    )
    assert ix > iy and alpha > 0.5


def test_alpha_scores_group_runs_by_name():
    sd = {s: registry.experiment("sine").seed_data(s) for s in (0, 1)}
    deg = {s: beyond.degraded_data(sd[s], 0.5, 0.5, s) for s in sd}
    runs = _tiny_sine(name="half") + _tiny_sine(name="one", alpha=1.0)
    out = beyond.alpha_scores(train_runs("sine", runs, deg), sd, deg)
    assert list(out) == ["half", "one"]
    assert all(v[k].shape == (2,) for v in out.values() for k in ("B", "A", "bwd"))
    assert all(np.isfinite(v["bwd"]).all() for v in out.values())


def test_anomaly_aucs_cover_every_detector_and_violation():
    cfg = LorenzConfig(n_train=200, n_probe=10, n_test=40)
    ld = data.lorenz_data(cfg, 0)
    mc, tc = bj.paper_config("lorenz", "expressive", 0.5, num_steps=20, progress=False)
    bi = bj.build_model(mc, tc)
    cl = bj.build_model(mc, bj.TrainConfig(alpha=1.0, seed=0))
    aucs = beyond.anomaly_aucs(bi, cl, ld, 0, 40.0, 1.0, cfg)
    assert set(aucs) == {(v, d) for v in beyond.VIOLATIONS for d in beyond.DETECTORS}
    assert all(0 <= a <= 1 for a in aucs.values())
    assert aucs["spike", beyond.DETECTORS[4]] > 0.99, "the quadratic residual is exact"


def test_explosion_window_and_the_loop_readings():
    hist = lambda norms: training.History(
        *(np.zeros(3),) * 3, np.arange(len(norms)), np.array(norms), np.array(norms)
    )
    # grows early, then stays flat: bounded by the book's rule (1/4 to end, 10x)
    early = [hist([1.0, 9.0, 9.5, 9.6, 9.7]), hist([1.0, 8.0, 8.1, 8.2, 8.4])]
    g = np.random.default_rng(0)
    s0 = g.normal(size=(2, 30, 4))
    snaps = np.stack([s0 * 1.5**r for r in range(5)])  # S_{r+1} = 1.5 S_r exactly
    rec = {"step": np.arange(5), "snapshot": snaps, "rho_loop": np.full((5, 2), 0.5)}
    window, drift = beyond.explosion_window(early, rec)
    assert np.allclose(drift["rho"], 1.5) and np.allclose(drift["r2"], 1.0)
    assert np.allclose(window["growth"], [9.7 / 9.0, 8.4 / 8.0])
    assert np.allclose(window["drift"], 1.5) and np.allclose(window["loop"], 0.5)
    bounded = {"m": verdicts.bounded_claim("m", early)}
    assert bounded["m"].verdict == "holds"
    test = beyond.loop_readings(bounded, {"m": window})
    # does not explode; (a) predicts no explosion, (b) predicts one
    assert test["cells"]["m"] == (False, False, True)
    assert test["wrong"] == {"a": 0, "b": 1}
    assert test["reading"] == {"a": "consistent", "b": "not supported"}
    # a diverged run explodes, whatever its finite part did
    broken = [early[0], replace(early[1], diverged_at=3)]
    exploded = {"m": verdicts.bounded_claim("m", broken)}
    assert beyond.loop_readings(exploded, {"m": window})["cells"]["m"][0]
    with pytest.raises(ValueError, match="same modes"):
        beyond.loop_readings(bounded, {"n": window})
    with pytest.raises(ValueError, match="start"):
        beyond.explosion_window(early, rec, start=1.0)


def test_pvalues_match_the_intervals_and_holm_corrects_the_family():
    errs = {
        "a": [1.0, 1.1, 0.9, 1.05],
        "b": [1.3, 1.5, 1.1, 1.3],
        "c": [1.0, 1.2, 0.85, 1.1],
    }
    comps = verdicts.beats(errs, "a", ["b", "c"])
    for c in comps.values():
        p = beyond.comparison_pvalue(c, 1.0)
        assert (p < 0.05) == (c.verdict != "does not hold"), (c, p)
    b_over_a = np.log(errs["b"]) - np.log(errs["a"])
    assert beyond.comparison_pvalue(comps["b"], 1.0) == pytest.approx(
        stats.t_pvalue(b_over_a), rel=1e-9
    )
    auc = verdicts.beats(
        {"x": [0.9, 0.92, 0.91], "y": [0.8, 0.83, 0.8]}, "x", ["y"], True
    )
    diff = np.array([0.1, 0.09, 0.11])
    assert beyond.comparison_pvalue(auc["y"], 0.0) == pytest.approx(
        stats.t_pvalue(diff), rel=1e-6
    )
    rec = beyond.verdict_record(
        {"1 e": comps, "1 s": auc, "6": {"(a) reading": "consistent"}}, {"1 s": 0.0}
    )
    assert rec["6: (a) reading"] == {"word": "consistent"}
    assert rec["1 s: x - y"]["null"] == 0.0 and rec["1 e: b / a"]["null"] == 1.0
    tests = {c: r for c, r in rec.items() if "p" in r}
    rows = beyond.family_rows(tests)
    adjusted = stats.holm([tests[c]["p"] for c in tests])
    assert [float(r[3]) for r in rows] == pytest.approx(adjusted, rel=0.05)
    for r in rows:  # a word survives only with an adjusted p below 0.05
        assert r[4] == (r[1] if float(r[3]) < 0.05 else "does not hold") or r[1] == r[4]
    # a "holds" whose raw p clears 0.05 but whose adjusted p does not is dropped
    made = {f"1 {i}: c": {"word": "holds", "p": 0.02} for i in range(5)}
    assert {r[4] for r in beyond.family_rows(made)} == {"does not hold"}
    with pytest.raises(ValueError, match="at least one"):
        beyond.family_rows({})


def test_ideas_merge_into_one_verdict_file_per_seed_set(tmp_path):
    comps = verdicts.beats({"a": [1.0, 1.1, 0.9], "b": [3.0, 3.3, 2.7]}, "a", ["b"])
    path = tmp_path / "v.json"
    one = beyond.verdict_record({"1 sine": comps})
    six = beyond.verdict_record({"6": {"(a) reading": "not supported"}})
    beyond.save_idea_verdicts(path, [0, 1, 2], "6", six)
    beyond.save_idea_verdicts(path, [0, 1, 2], "1", one)
    beyond.save_idea_verdicts(path, [0, 1, 2], "1", one)  # a rerun replaces, not adds
    saved = json.loads(path.read_text())
    assert saved["verdicts"] == {
        "1 sine: b / a": "holds",
        "6: (a) reading": "not supported",
    }
    assert list(saved["tests"]) == ["1 sine: b / a"]
    with pytest.raises(ValueError, match="seeds"):
        beyond.save_idea_verdicts(path, [5, 6, 7], "1", one)
    with pytest.raises(ValueError, match="only claims of idea 2"):
        beyond.save_idea_verdicts(path, [0, 1, 2], "2", one)
    with pytest.raises(ValueError, match="idea"):
        beyond.save_idea_verdicts(path, [0, 1, 2], "x", one)
    # the table of a page: this run alone, then beside a rerun on other seeds
    header, rows = beyond.verdict_rows(one, [5, 6, 7], None)
    assert header == ["claim", "seeds [5, 6, 7]"] and rows[0][1].endswith(": holds")
    header, rows = beyond.verdict_rows(one, [5, 6, 7], path)
    assert header == ["claim", "seeds [5, 6, 7]", "seeds [0, 1, 2]", "conclusion"]
    assert rows == [["1 sine: b / a", rows[0][1], rows[0][1], "holds"]]
    assert beyond.verdict_rows(one, [0, 1, 2], path)[0] == ["claim", "seeds [0, 1, 2]"]


def test_horizon_forecasts_score_five_forecasters():
    cfg = LorenzConfig(n_train=300, n_probe=200, n_test=100)
    far = registry.lorenz_seed_data(beyond.lorenz_horizon_data(0, 10, cfg), 0)
    runs = seed_runs("lorenz", [0], num_steps=20, progress=False)
    det = train_runs("lorenz", runs, {0: far})[0].model
    sto = train_runs("lorenz", runs, {0: far}, build=build_stochastic)[0].model
    scores, ex = horizon_forecasts(det, sto, far.extra["lorenz"], 6, 0)
    assert list(scores) == list(FORECASTERS)
    assert scores[FORECASTERS[0]]["spread_near"] == 0.0
    assert scores[FORECASTERS[1]]["spread_near"] > 0
    assert ex["samples"].shape == (6, 100, 3) and int(ex["near"].sum()) == 20
    point = (ex["point"] - ex["truth"]).norm(dim=-1).mean()
    assert scores[FORECASTERS[0]]["all"] == pytest.approx(float(point), rel=1e-5)


def test_chapter_figures_draw_what_they_are_given():
    import matplotlib

    matplotlib.use("Agg")
    vals = {(g, s): [0.5, 0.6] for g in ("u", "v") for s in ("p", "q", "r")}
    ax = plotting.grouped_bars(vals, ["u", "v"], ["p", "q", "r"], chance=0.5)
    assert len(ax.patches) == 6
    ax = plotting.sample_clouds(np.zeros((4, 3)), np.ones(3), np.ones(3))
    assert len(ax.lines) == 3 * 3 + 1
    panel = {"a": (np.arange(4), np.ones((4, 2))), "b": (np.arange(4), np.ones((4, 2)))}
    fig = plotting.seed_bands([panel, panel], ["x", "y"], log=(True,))
    assert len(fig.axes) == 2 and fig.axes[0].get_yscale() == "log"
    assert len(fig.axes[1].lines) == 3, "two means and the reference line"


def test_verdicts_are_saved_and_compared_across_seed_sets(tmp_path):
    scores = {"a": [1.0, 1.1, 0.9], "b": [3.0, 3.3, 2.7]}
    comps = verdicts.beats(scores, "a", ["b"])
    words = verdicts.verdict_words({"1": comps, "6": {"(a) loop": "not supported"}})
    assert words == {"1: b / a": "holds", "6: (a) loop": "not supported"}
    path = tmp_path / "v.json"
    assert verdicts.replicate(words, [0, 1], path, save=path) is None, "no file yet"
    assert verdicts.replicate(words, [1, 0], path) is None, "the same seeds: no rerun"
    other = {"1: b / a": "does not hold", "6: (a) loop": "consistent", "x": "holds"}
    verdicts.replicate(other, [5, 6], path, save=tmp_path / "w.json")
    rows = verdicts.replicate(other, [5, 6], path)
    assert rows == [
        ["1: b / a", "does not hold", "holds", "not resolved"],
        ["6: (a) loop", "consistent", "not supported", "not supported"],
    ]
    same = verdicts.replicate(words, [5, 6], path)
    assert all(r[1] == r[3] for r in same)
