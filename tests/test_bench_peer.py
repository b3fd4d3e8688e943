"""The JAX peer of ``python -m bijepa_nb.bench --peer jax``: it computes what the library
computes (one step's loss and update on the same weights and batch), and the command
without jax says how to install it instead of failing.

jax is optional (the ``bench`` extra, not in requirements.txt): without it the equivalence
test is skipped, in CI too.
"""

import os

import numpy as np
import pytest
import torch

from bijepa_nb import bench
from bijepa_nb.core.config import SineConfig
from bijepa_nb.core.data import SineStream
from bijepa_nb.core.models import build_model
from bijepa_nb.core.training import make_optimizer, train_step
from bijepa_nb.experiments import jax_peer


def test_without_jax_the_command_prints_the_install_line(monkeypatch, capsys):
    monkeypatch.setattr(jax_peer, "jax", None)
    bench.main(["--peer", "jax"])  # returns: exit status 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and 'pip install -e ".[bench]"' in out[0], out


def _flat(tree) -> np.ndarray:
    jax = pytest.importorskip("jax")
    return np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree.leaves(tree)])


def test_one_jax_step_matches_the_library():
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    jnp = pytest.importorskip("jax.numpy")
    mc, tc = jax_peer.sine_configs()
    model = build_model(mc, tc)
    online, target = jax_peer.params_from_torch(model)
    ctx, tgt = SineStream(SineConfig(), 0, tc.batch_size).next()
    batch = (jnp.asarray(ctx.numpy()), jnp.asarray(tgt.numpy()))

    want = torch.stack(model.loss(ctx, tgt)).detach().numpy()
    total, (fwd, bwd) = jax_peer.loss(online, target, *batch, tc.alpha)
    np.testing.assert_allclose(np.array([total, fwd, bwd]), want, rtol=1e-5, atol=1e-6)

    # One whole step (grad -> AdamW -> EMA) from the same start, then the weights.
    train_step(model, make_optimizer(model, tc), ctx, tgt, tc.ema_momentum)
    opt, step = jax_peer.make_step(tc)
    (online, target, _), losses = step((online, target, opt.init(online)), batch)
    np.testing.assert_allclose(np.asarray(losses), want, rtol=1e-5, atol=1e-6)
    torch_online, torch_target = jax_peer.params_from_torch(model)
    np.testing.assert_allclose(_flat(online), _flat(torch_online), atol=1e-5)
    np.testing.assert_allclose(_flat(target), _flat(torch_target), atol=1e-5)


def test_pinned_runs_on_that_many_cores_and_restores_the_set():
    before = os.sched_getaffinity(0)
    with bench.pinned(1):
        assert len(os.sched_getaffinity(0)) == 1
    assert os.sched_getaffinity(0) == before
    with pytest.raises(ValueError, match="cores"):
        with bench.pinned(len(before) + 1):
            pass
    assert os.sched_getaffinity(0) == before


def test_the_profile_times_every_phase_of_the_step():
    ms = bench.profile_step(2, steps=3, warm=1)
    assert list(ms) == list(bench.PHASES) and all(v > 0 for v in ms.values())
    assert "K=2, one core, compiled" in bench._profile_line(2, ms)
