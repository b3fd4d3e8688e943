import numpy as np
import pytest
import torch

from bijepa_nb.core.config import SineConfig, TrainConfig
from bijepa_nb.core.data import SineStream
from bijepa_nb.core.models import build_model
from bijepa_nb.core.training import (
    TrainingDiverged,
    make_optimizer,
    torch_threads,
    train,
    train_step,
)
from bijepa_nb.experiments.registry import paper_config


def run(steps=150, alpha=0.5, mode="expressive", seed=0, fault_step=None, **kw):
    m, t = paper_config(
        "sine",
        mode,
        alpha,
        num_steps=steps,
        progress=False,
        device="cpu",
        seed=seed,
        **kw,
    )
    model = build_model(m, t)
    return model, train(
        model, SineStream(SineConfig(), seed, t.batch_size), t, fault_step=fault_step
    )


def test_short_sine_run_lowers_the_loss():
    _, h = run(300)
    assert len(h) == 300 and h.total.shape == h.fwd.shape == h.bwd.shape == (300,)
    assert h.total[-50:].mean() < 0.2 * h.total[:10].mean()
    np.testing.assert_allclose(h.total, 0.5 * h.fwd + 0.5 * h.bwd, rtol=1e-5)
    assert list(h.norm_steps[:3]) == [0, 10, 20] and np.all(h.online_norm > 0)


def test_classic_history_has_zero_backward_loss():
    _, h = run(30, alpha=1.0)
    assert np.all(h.bwd == 0) and np.array_equal(h.total, h.fwd)


def test_seeded_runs_are_identical():
    _, a = run(120, seed=3)
    _, b = run(120, seed=3)
    _, c = run(120, seed=4)
    assert np.array_equal(a.total, b.total) and np.array_equal(
        a.online_norm, b.online_norm
    )
    assert not np.array_equal(a.total, c.total)


def test_injected_nan_stops_training_with_the_step():
    with pytest.raises(TrainingDiverged, match="diverged at step 37") as err:
        run(100, fault_step=37)
    h = err.value.history
    assert err.value.step == 37 and len(h) == 37 and np.all(np.isfinite(h.total))
    assert np.all(h.norm_steps < 37)


def test_model_and_config_alpha_must_agree():
    m, t = paper_config(
        "sine", "expressive", 0.5, num_steps=5, progress=False, device="cpu"
    )
    with pytest.raises(ValueError, match="alpha"):
        train(
            build_model(m, TrainConfig(alpha=1.0, seed=0)),
            SineStream(SineConfig(), 0, 64),
            t,
        )


def test_training_restores_thread_count():
    before = torch.get_num_threads()
    run(5, num_threads=1)
    assert torch.get_num_threads() == before


def test_target_encoder_moves_only_by_ema():
    m, t = paper_config(
        "sine",
        "expressive",
        0.5,
        num_steps=20,
        progress=False,
        device="cpu",
        ema_momentum=1.0,
    )
    model = build_model(m, TrainConfig(alpha=0.5, seed=0))
    before = [p.clone() for p in model.target_encoder.parameters()]
    train(model, SineStream(SineConfig(), 0, 64), t)
    for b, p in zip(before, model.target_encoder.parameters()):
        assert torch.equal(
            b, p
        )  # momentum 1: the target never changes, gradients never reach it


def test_nan_at_the_first_step_gives_an_empty_history():
    with pytest.raises(TrainingDiverged, match="diverged at step 0") as err:
        run(20, fault_step=0)
    assert len(err.value.history) == 0 and len(err.value.history.norm_steps) == 0


def test_run_steps_is_train_step_plus_bookkeeping():
    """The loop only adds logging and finiteness checks to the step: train_step called by
    hand, with a per-step log, gives the same float64 history bit for bit."""

    class Float64Stream:
        def __init__(self, seed):
            self.stream = SineStream(SineConfig(), seed, 64)

        def next(self):
            return tuple(v.double() for v in self.stream.next())

    m, t = paper_config(
        "sine", "expressive", 0.5, num_steps=57, progress=False, device="cpu"
    )
    h = train(build_model(m, t).double(), Float64Stream(t.seed), t)
    model, stream = build_model(m, t).double(), Float64Stream(t.seed)
    opt, rows, norms = make_optimizer(model, t), [], []
    model.train()
    with torch_threads(t.num_threads, torch.device("cpu")):
        for step in range(t.num_steps):
            context, target = stream.next()
            log_now = step % t.log_every == 0
            losses, emb = train_step(
                model, opt, context, target, t.ema_momentum, log_now
            )
            rows.append(losses.tolist())
            if log_now:
                norms.append(
                    [
                        emb["online_x"].norm(dim=-1).mean().item(),
                        emb["target_y"].norm(dim=-1).mean().item(),
                    ]
                )
    rows, norms = np.array(rows), np.array(norms, dtype=np.float32)  # norms: float32
    for i, name in enumerate(("total", "fwd", "bwd")):
        assert np.array_equal(getattr(h, name), rows[:, i]), name
    assert list(h.norm_steps) == list(range(0, 57, 10))
    assert np.array_equal(h.online_norm, norms[:, 0]) and np.array_equal(
        h.target_norm, norms[:, 1]
    )
