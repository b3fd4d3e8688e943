"""The batched ensemble is the same arithmetic as K separate runs."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from bijepa_nb.core.config import LorenzConfig, SineConfig, TrainConfig
from bijepa_nb.core.data import PoolStream, SineStream, lorenz_data
from bijepa_nb.core.models import build_model
from bijepa_nb.core.training import train
from bijepa_nb.experiments.ensemble import (
    Ensemble,
    EnsembleDiverged,
    StackedStream,
    train_ensemble,
)
from bijepa_nb.experiments.registry import paper_config

SEEDS = [0, 1, 2]


class Cast:
    """A stream whose batches are cast to ``dtype``."""

    def __init__(self, stream, dtype):
        self.stream, self.dtype = stream, dtype

    def next(self):
        c, t = self.stream.next()
        return c.to(self.dtype), t.to(self.dtype)


def separate_and_batched(mode, alpha, steps, dtype, experiment="sine"):
    mc, tc = paper_config(
        experiment, mode, alpha, num_steps=steps, progress=False, device="cpu"
    )
    if experiment == "sine":
        make = lambda s: Cast(SineStream(SineConfig(), s, tc.batch_size), dtype)
    else:
        pools = {
            s: lorenz_data(LorenzConfig(n_train=200, n_probe=2, n_test=2), s).train
            for s in SEEDS
        }
        make = lambda s: Cast(PoolStream(pools[s], s, tc.batch_size), dtype)
    separate = [
        train(build_model(mc, TrainConfig(alpha=alpha, seed=s)).to(dtype), make(s), tc)
        for s in SEEDS
    ]
    ens = Ensemble(
        [build_model(mc, TrainConfig(alpha=alpha, seed=s)).to(dtype) for s in SEEDS]
    )
    batched = train_ensemble(ens, [make(s) for s in SEEDS], tc)
    return separate, batched, ens


@pytest.mark.parametrize(
    "mode,alpha",
    [
        ("expressive", 0.5),
        ("unconstrained", 0.5),
        ("restrictive", 0.5),
        ("expressive", 1.0),
        ("expressive", 0.2),
    ],
)
def test_batched_equals_separate_in_float64(mode, alpha):
    separate, batched, _ = separate_and_batched(mode, alpha, 200, torch.float64)
    for a, b in zip(separate, batched):
        for part in ("total", "fwd", "bwd"):
            np.testing.assert_allclose(
                getattr(b, part), getattr(a, part), rtol=0, atol=1e-10
            )
        np.testing.assert_allclose(b.online_norm, a.online_norm, rtol=1e-10)
        np.testing.assert_allclose(b.target_norm, a.target_norm, rtol=1e-10)


def test_batched_equals_separate_on_lorenz_in_float64():
    separate, batched, _ = separate_and_batched(
        "expressive", 0.5, 200, torch.float64, "lorenz"
    )
    for a, b in zip(separate, batched):
        np.testing.assert_allclose(b.total, a.total, rtol=0, atol=1e-10)


def test_batched_equals_separate_in_float32_for_50_steps():
    separate, batched, _ = separate_and_batched("expressive", 0.5, 50, torch.float32)
    for a, b in zip(separate, batched):
        np.testing.assert_allclose(b.total, a.total, rtol=0, atol=1e-5)


def test_members_differ_and_unstack_gives_the_trained_models():
    mc, tc = paper_config(
        "sine", "expressive", 0.5, num_steps=40, progress=False, device="cpu"
    )
    models = [build_model(mc, TrainConfig(alpha=0.5, seed=s)).double() for s in SEEDS]
    ens = Ensemble(models)
    hs = train_ensemble(
        ens, [Cast(SineStream(SineConfig(), s, 64), torch.float64) for s in SEEDS], tc
    )
    assert not np.array_equal(hs[0].total, hs[1].total)  # own init, own data
    x = torch.randn(len(SEEDS), 5, 10, dtype=torch.float64)
    with torch.no_grad():
        fwd, bwd = (
            ens.fwd_predictor(ens.online_encoder(x)),
            ens.bwd_predictor(ens.online_encoder(x)),
        )
    for k, m in enumerate(ens.unstack()):
        torch.testing.assert_close(m.predict_forward(x[k]), fwd[k])
        torch.testing.assert_close(m.predict_backward(x[k]), bwd[k])
        for pt, po in zip(m.target_encoder.parameters(), m.online_encoder.parameters()):
            assert not torch.equal(
                pt, po
            )  # the EMA target was carried over, not re-copied from the online encoder


def test_a_diverging_member_stops_the_run_with_every_history():
    mc, tc = paper_config(
        "sine", "expressive", 0.5, num_steps=100, progress=False, device="cpu"
    )
    ens = Ensemble([build_model(mc, TrainConfig(alpha=0.5, seed=s)) for s in SEEDS])
    with pytest.raises(
        EnsembleDiverged, match=r"step 23: the loss of ensemble member\(s\) \[1\]"
    ) as err:
        train_ensemble(
            ens, [SineStream(SineConfig(), s, 64) for s in SEEDS], tc, fault=(23, 1)
        )
    assert err.value.step == 23 and err.value.members == [1]
    assert len(err.value.histories) == 3 and all(
        len(h) == 23 and np.isfinite(h.total).all() for h in err.value.histories
    )


def test_bad_ensembles_are_refused():
    mc, tc = paper_config(
        "sine", "expressive", 0.5, num_steps=5, progress=False, device="cpu"
    )
    mc1, _ = paper_config("sine", "unconstrained", 0.5)
    with pytest.raises(ValueError, match="models\\[1\\] differs"):
        Ensemble(
            [
                build_model(mc, TrainConfig(alpha=0.5, seed=0)),
                build_model(mc1, TrainConfig(alpha=0.5, seed=1)),
            ]
        )
    mixed = Ensemble(
        [
            build_model(mc, TrainConfig(alpha=0.5, seed=0)),
            build_model(mc, TrainConfig(alpha=1.0, seed=1)),
        ]
    )  # alpha may differ ...
    with pytest.raises(
        ValueError, match="alpha of member 1"
    ):  # ... but must match its TrainConfig
        train_ensemble(mixed, [SineStream(SineConfig(), s, 64) for s in (0, 1)], tc)
    with pytest.raises(ValueError, match=r"differs from member 0 in \['lr'\]"):
        train_ensemble(
            mixed,
            [SineStream(SineConfig(), s, 64) for s in (0, 1)],
            [tc, replace(tc, alpha=1.0, lr=0.1)],
        )
    with pytest.raises(ValueError, match="arch='mlp' only"):
        Ensemble(
            [build_model(paper_config("mnist")[0], TrainConfig(alpha=0.5, seed=0))]
        )
    with pytest.raises(ValueError, match="one stream per member"):
        train_ensemble(
            Ensemble([build_model(mc, TrainConfig(alpha=0.5, seed=0))]),
            [SineStream(SineConfig(), 0, 64)] * 2,
            tc,
        )
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])


def test_stacked_stream_keeps_each_streams_order():
    a, b = SineStream(SineConfig(), 0, 8), SineStream(SineConfig(), 1, 8)
    ref = [(SineStream(SineConfig(), s, 8)) for s in (0, 1)]
    st = StackedStream([a, b], chunk_steps=3)
    for _ in range(7):
        c, t = st.next()
        for k in range(2):
            rc, rt = ref[k].next()
            assert torch.equal(c[k], rc) and torch.equal(t[k], rt)


def test_divergence_at_the_first_step_keeps_empty_histories():
    mc, tc = paper_config(
        "sine", "expressive", 0.5, num_steps=30, progress=False, device="cpu"
    )
    ens = Ensemble([build_model(mc, TrainConfig(alpha=0.5, seed=s)) for s in SEEDS])
    with pytest.raises(EnsembleDiverged, match="step 0") as err:
        train_ensemble(
            ens, [SineStream(SineConfig(), s, 64) for s in SEEDS], tc, fault=(0, 2)
        )
    assert err.value.members == [2] and [len(h) for h in err.value.histories] == [
        0,
        0,
        0,
    ]


MIXED = [(0.0, 0.9), (0.5, 0.995), (1.0, 1.0), (1.0, 0.9), (0.5, 1.0), (0.0, 0.995)]


@pytest.mark.parametrize("mode", ["expressive", "unconstrained", "restrictive"])
def test_mixed_alpha_and_ema_momentum_equal_separate_runs_in_float64(mode):
    """Members that differ in alpha (0, 0.5, 1) and tau (0.9, 0.995, 1) train as one batch,
    each exactly as its own ``train`` run."""
    steps = 150
    cfgs = []
    for i, (alpha, tau) in enumerate(MIXED):
        mc, tc = paper_config(
            "sine",
            mode,
            alpha,
            num_steps=steps,
            ema_momentum=tau,
            seed=i % 2,
            progress=False,
            device="cpu",
        )
        cfgs.append(tc)
    make = lambda s: Cast(SineStream(SineConfig(), s, 64), torch.float64)
    separate = [train(build_model(mc, tc).double(), make(tc.seed), tc) for tc in cfgs]
    ens = Ensemble([build_model(mc, tc).double() for tc in cfgs])
    batched = train_ensemble(ens, [make(tc.seed) for tc in cfgs], cfgs)
    for a, b in zip(separate, batched):
        for part in ("total", "fwd", "bwd"):
            np.testing.assert_allclose(
                getattr(b, part), getattr(a, part), rtol=0, atol=1e-10
            )
        np.testing.assert_allclose(b.target_norm, a.target_norm, rtol=1e-10)
    assert not np.allclose(
        batched[0].total, batched[1].total
    )  # the members really differ
    frozen = ens.unstack()[2]  # tau = 1: the target encoder never moved from its init
    init = build_model(mc, TrainConfig(alpha=1.0, seed=0)).double()
    for p, q in zip(
        frozen.target_encoder.parameters(), init.target_encoder.parameters()
    ):
        assert torch.equal(p, q)
    assert frozen.bwd_predictor is None and ens.unstack()[1].bwd_predictor is not None


def test_keep_going_records_a_diverged_member_and_trains_the_others():
    mc, tc = paper_config(
        "sine", "expressive", 0.5, num_steps=60, progress=False, device="cpu"
    )
    streams = lambda: [
        Cast(SineStream(SineConfig(), s, 64), torch.float64) for s in SEEDS
    ]
    ref = train_ensemble(
        Ensemble(
            [build_model(mc, TrainConfig(alpha=0.5, seed=s)).double() for s in SEEDS]
        ),
        streams(),
        tc,
    )
    ens = Ensemble(
        [build_model(mc, TrainConfig(alpha=0.5, seed=s)).double() for s in SEEDS]
    )
    hs = train_ensemble(ens, streams(), tc, fault=(23, 1), keep_going=True)
    assert (
        hs[1].diverged_at == 23 and len(hs[1]) == 23 and np.isfinite(hs[1].total).all()
    )
    assert list(hs[1].norm_steps) == [0, 10, 20]
    for k in (0, 2):  # untouched by member 1's NaNs, bit for bit
        assert hs[k].diverged_at is None and np.array_equal(hs[k].total, ref[k].total)
    np.testing.assert_array_equal(hs[1].total, ref[1].total[:23])


def test_stacked_stream_maps_members_to_shared_streams():
    ref = [SineStream(SineConfig(), s, 8) for s in (0, 1)]
    st = StackedStream(
        [SineStream(SineConfig(), s, 8) for s in (0, 1)],
        chunk_steps=3,
        members=[1, 0, 1],
    )
    for _ in range(4):
        c, _t = st.next()
        r0, r1 = ref[0].next()[0], ref[1].next()[0]
        assert (
            c.shape[0] == 3
            and torch.equal(c[0], r1)
            and torch.equal(c[1], r0)
            and torch.equal(c[2], r1)
        )
    with pytest.raises(ValueError, match="members"):
        StackedStream([SineStream(SineConfig(), 0, 8)], members=[1])
