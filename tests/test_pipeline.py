"""The shared pipeline: registry, batched training of many runs, batched probes."""

import numpy as np
import pytest
import torch

from bijepa_nb.core.models import build_model
from bijepa_nb.core.probes import adam_probe, evaluate, lstsq_probe
from bijepa_nb.core.training import train
from bijepa_nb.experiments.pipeline import (
    Run,
    batched_adam_probe,
    batched_lstsq,
    downsample,
    forecast_scores,
    history_metrics,
    train_runs,
)
from bijepa_nb.experiments.registry import (
    EXPERIMENTS,
    VARIANTS,
    experiment,
    paper_config,
)


def test_registry_holds_the_papers_settings_and_numbers():
    sine = experiment("sine")
    mc, tc = sine.configs("classic", seed=3)
    assert (
        mc.norm,
        tc.alpha,
        tc.weight_decay,
        tc.num_steps,
        tc.ema_momentum,
        tc.seed,
    ) == ("layernorm", 1.0, 1e-4, 2000, 0.995, 3)
    mc, tc = sine.configs("unconstrained")
    assert (mc.norm, tc.weight_decay, tc.alpha) == ("none", 0.0, 0.5)
    assert experiment("lorenz").configs("expressive")[0].input_dim == 60
    assert EXPERIMENTS["sine"].paper["classic"]["B"] == 0.0517  # Table 3
    for exp in EXPERIMENTS.values():
        assert set(exp.paper) == set(exp.table) and all(
            v in VARIANTS for v in exp.table
        )
    assert paper_config("lorenz", "expressive", 1.0) == experiment("lorenz").configs(
        "classic"
    )
    with pytest.raises(ValueError, match="experiment must be one of"):
        experiment("cifar")
    with pytest.raises(ValueError, match="variant must be one of"):
        sine.configs("explosive")
    with pytest.raises(ValueError, match="no per-seed data"):
        experiment("mnist").seed_data(0)


def test_batched_probes_equal_the_single_probes_in_float64():
    g = torch.Generator().manual_seed(0)
    x, y = (
        torch.randn(3, 200, 16, generator=g, dtype=torch.float64),
        torch.randn(3, 200, 1, generator=g, dtype=torch.float64),
    )
    w, b = batched_lstsq(x, y)
    wa, ba = batched_adam_probe(x, y, [0, 1, 2], epochs=50)
    for k in range(3):
        ls = lstsq_probe(x[k], y[k])
        torch.testing.assert_close(w[k].T, ls.weight, rtol=0, atol=1e-12)
        torch.testing.assert_close(b[k], ls.bias, rtol=0, atol=1e-12)
        ad = adam_probe(x[k], y[k], epochs=50, seed=k)
        torch.testing.assert_close(wa[k].T, ad.weight, rtol=0, atol=1e-10)
        torch.testing.assert_close(ba[k, 0], ad.bias, rtol=0, atol=1e-10)


def test_train_runs_batches_a_grid_and_scores_it_like_single_runs():
    sine = experiment("sine")
    runs = [
        Run(
            mode,
            sine.mode_configs(
                mode,
                alpha=a,
                ema_momentum=t,
                seed=s,
                num_steps=60,
                progress=False,
                device="cpu",
            )[1],
        )
        for mode in ("expressive", "restrictive")
        for a, t in ((1.0, 0.995), (0.3, 0.9))
        for s in (0, 1)
    ]
    data = {s: sine.seed_data(s) for s in (0, 1)}
    trained = train_runs("sine", runs, data)
    assert [t.run for t in trained] == runs and all(
        t.diverged_at is None for t in trained
    )
    scores = forecast_scores(
        trained, data, protocols=("A", "B"), adam=("B",), adam_epochs=100, n_show=5
    )
    for i in (
        0,
        3,
        6,
    ):  # single runs of the same settings agree (float32: batched vs separate matmuls)
        tc, mc = runs[i].train, trained[i].model_config
        ref = build_model(mc, tc)
        h = train(ref, data[tc.seed].stream(tc.batch_size, "cpu"), tc)
        np.testing.assert_allclose(
            trained[i].history.total, h.total, rtol=1e-4, atol=1e-6
        )
        ev = evaluate(
            ref, data[tc.seed].probe, data[tc.seed].test, epochs=100, seed=tc.seed
        )
        np.testing.assert_allclose(
            scores.scores["B_lstsq_heldout"][i], ev["B"]["lstsq_heldout"], rtol=1e-3
        )
        np.testing.assert_allclose(
            scores.scores["B_adam_heldout"][i], ev["B"]["adam_heldout"], rtol=1e-3
        )
        np.testing.assert_allclose(
            scores.scores["A_lstsq_heldout"][i], ev["A"]["lstsq_heldout"], rtol=1e-3
        )
    assert (
        scores.show["B_pred"].shape == (8, 5)
        and np.isfinite(scores.show["truth"]).all()
    )


def test_a_diverging_batch_is_recorded_and_scored_as_missing():
    sine = experiment("sine")
    ok = Run(
        "expressive",
        sine.mode_configs("expressive", num_steps=30, progress=False, device="cpu")[1],
    )
    bad = Run(
        "unconstrained",
        sine.mode_configs(
            "unconstrained", num_steps=60, lr=1e30, progress=False, device="cpu"
        )[1],
    )
    data = {0: sine.seed_data(0)}
    trained = train_runs("sine", [ok, bad], data)
    assert (
        trained[0].diverged_at is None
        and trained[1].diverged_at is not None
        and trained[1].model is None
    )
    assert len(trained[1].history) == trained[1].diverged_at
    scores = forecast_scores(trained, data)
    assert np.isfinite(scores.scores["B_lstsq_heldout"][0]) and np.isnan(
        scores.scores["B_lstsq_heldout"][1]
    )
    m = history_metrics(trained[1].history)
    assert set(m) >= {"loss_last100_total", "norm_growth_second_half"}


def test_downsample_keeps_window_means():
    x = np.arange(10.0)
    np.testing.assert_allclose(downsample(x, 5), [0.5, 2.5, 4.5, 6.5, 8.5])
    np.testing.assert_array_equal(downsample(x, 20), x)


def test_batch_sizes_are_equal_where_possible():
    from bijepa_nb.experiments.pipeline import batch_sizes

    assert batch_sizes(385, 128) == [77] * 5
    assert batch_sizes(10, 4) == [4, 3, 3]
    assert batch_sizes(8, 8) == [8] and batch_sizes(3, 1) == [1, 1, 1]
    for n in range(1, 60):
        for m in range(1, 20):
            b = batch_sizes(n, m)
            assert sum(b) == n and max(b) <= m and max(b) - min(b) <= 1
