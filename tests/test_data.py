import math

import pytest
import torch

from bijepa_nb.core.config import LorenzConfig, SineConfig
from bijepa_nb.core.data import (
    EpochStream,
    PoolStream,
    SineStream,
    Split,
    first_target_step,
    last_context_step,
    lorenz_data,
    lorenz_step,
    lorenz_trajectories,
    make_generator,
    sine_sequences,
    sine_split,
    stream_seed,
)


def test_sine_shapes_and_parameter_ranges():
    seq, w, phi = sine_sequences(
        5000, make_generator(0, "train"), SineConfig(), return_params=True
    )
    assert seq.shape == (5000, 20) and seq.dtype == torch.float32
    assert (
        0.8 <= w.min()
        and w.max() <= 1.2
        and 0 <= phi.min()
        and phi.max() <= 2 * math.pi
    )
    # the residual around the clean wave is the N(0, 0.05^2) noise
    t = torch.linspace(0, 4 * math.pi, 20, dtype=torch.float64)
    resid = seq.double() - torch.sin(w[:, None] * t + phi[:, None])
    assert abs(resid.std().item() - 0.05) < 0.002 and abs(resid.mean().item()) < 0.002


def test_sine_noise_free_is_exact_sine():
    cfg = SineConfig(noise_std=0.0)
    seq, w, phi = sine_sequences(
        10, make_generator(1, "train"), cfg, return_params=True
    )
    t = torch.linspace(0, 4 * math.pi, 20, dtype=torch.float64)
    torch.testing.assert_close(seq, torch.sin(w[:, None] * t + phi[:, None]).float())


def test_same_seed_same_data_other_seed_other_data():
    a = SineStream(SineConfig(), 3, 64).next()[0]
    b = SineStream(SineConfig(), 3, 64).next()[0]
    c = SineStream(SineConfig(), 4, 64).next()[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(
        lorenz_data(LorenzConfig(n_train=10, n_probe=5, n_test=5), 2).probe.context,
        lorenz_data(LorenzConfig(n_train=10, n_probe=5, n_test=5), 2).probe.context,
    )


def test_sine_stream_gives_fresh_batches():
    s = SineStream(SineConfig(), 0, 8, chunk_steps=3)
    batches = [s.next()[0] for _ in range(7)]
    flat = torch.cat(batches)
    assert len(torch.unique(flat, dim=0)) == len(flat)  # no sequence is ever repeated


def test_streams_are_disjoint():
    seeds = {stream_seed(0, s) for s in ("train", "probe", "test", "model", "extra")}
    assert len(seeds) == 5
    cfg = SineConfig(n_probe=500, n_test=500)
    s = SineStream(cfg, 0, 64, chunk_steps=10)
    train = torch.cat([torch.cat(s.next(), 1) for _ in range(20)])
    probe, test = sine_split(cfg, 0, "probe"), sine_split(cfg, 0, "test")
    probe, test = (
        torch.cat((probe.context, probe.target), 1),
        torch.cat((test.context, test.target), 1),
    )
    for a, b in ((train, probe), (train, test), (probe, test)):
        d = torch.cdist(a.double(), b.double())
        assert d.min() > 1e-3  # no shared sequence between the streams


def test_lorenz_step_is_euler():
    cfg = LorenzConfig()
    s = torch.tensor([[1.0, 2.0, 3.0], [-5.0, 7.0, 20.0]], dtype=torch.float64)
    x, y, z = s[:, 0], s[:, 1], s[:, 2]
    expected = torch.stack(
        [
            x + 0.01 * 10 * (y - x),
            y + 0.01 * (x * (28 - z) - y),
            z + 0.01 * (x * y - 8 / 3 * z),
        ],
        1,
    )
    torch.testing.assert_close(lorenz_step(s, cfg), expected, rtol=0, atol=1e-12)


def test_lorenz_trajectory_recurrence_and_start_range():
    cfg = LorenzConfig()
    traj = lorenz_trajectories(50, make_generator(0, "train"), cfg)
    assert traj.shape == (50, 40, 3)
    torch.testing.assert_close(
        traj[:, 1:], lorenz_step(traj[:, :-1].reshape(-1, 3), cfg).reshape(50, 39, 3)
    )
    # the first recorded state is one Euler step from a start in [-15, 15]^3
    gen = make_generator(0, "train")
    start = (torch.rand(50, 3, generator=gen, dtype=torch.float64) * 2 - 1) * 15
    torch.testing.assert_close(traj[:, 0], lorenz_step(start, cfg))


def test_lorenz_normalised_with_training_statistics():
    data = lorenz_data(LorenzConfig(n_train=300, n_probe=100, n_test=100), 0)
    train = torch.cat((data.train.context, data.train.target), 1).double()
    assert abs(train.mean()) < 1e-5 and abs(train.std() - 1) < 1e-4
    assert data.train.context.shape == (300, 20, 3) and data.test.target.shape == (
        100,
        20,
        3,
    )
    test = torch.cat((data.test.context, data.test.target), 1).double()
    assert (
        abs(test.mean()) > 1e-4
    )  # the test set is NOT renormalised with its own statistics
    raw_test = lorenz_trajectories(
        100,
        make_generator(0, "test"),
        LorenzConfig(n_train=300, n_probe=100, n_test=100),
    )
    torch.testing.assert_close(data.denormalise(test), raw_test, rtol=1e-5, atol=1e-4)


def test_pool_and_epoch_streams():
    ctx, tgt = torch.arange(10.0)[:, None], -torch.arange(10.0)[:, None]
    split = Split(ctx, tgt)
    p = PoolStream(split, 0, 4)
    x, y = p.next()
    assert x.shape == (4, 1) and torch.equal(x, -y)
    e = EpochStream(split, 0, 4)
    assert e.steps_per_epoch == 3
    seen = torch.cat([e.next()[0] for _ in range(3)])
    assert sorted(seen[:, 0].tolist()) == list(
        range(10)
    )  # one epoch covers every item once


def test_probe_targets():
    x, y = torch.randn(5, 20, 3), torch.randn(5, 20, 3)
    assert torch.equal(first_target_step(y), y[:, 0]) and torch.equal(
        last_context_step(x), x[:, -1]
    )
    x2, y2 = torch.randn(5, 10), torch.randn(5, 10)
    assert first_target_step(y2).shape == (5, 1) and torch.equal(
        last_context_step(x2)[:, 0], x2[:, -1]
    )


def test_bad_stream_name():
    with pytest.raises(ValueError, match="stream must be one of"):
        stream_seed(0, "validation")
    with pytest.raises(ValueError, match="stream must be 'probe' or 'test'"):
        sine_split(SineConfig(), 0, "train")
