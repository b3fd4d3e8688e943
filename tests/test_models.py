import copy

import pytest
import torch
from torch import nn

from bijepa_nb.core.config import ModelConfig, TrainConfig
from bijepa_nb.core.models import JEPA, build_model, embedding_loss
from bijepa_nb.core.optim import FlatAdamW
from bijepa_nb.experiments.registry import paper_config

SINE, _ = paper_config("sine", "expressive")


def batch(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 10, generator=g), torch.randn(n, 10, generator=g)


def test_alpha_one_is_classic_jepa():
    model = build_model(SINE, TrainConfig(alpha=1.0, seed=0))
    assert model.bwd_predictor is None and not model.bidirectional
    x, y = batch()
    total, fwd, bwd = model.loss(x, y)
    # Eq. 4 written out by hand
    classic = (
        (
            model.fwd_predictor(model.online_encoder(x))
            - model.target_encoder(y).detach()
        )
        ** 2
    ).mean()
    torch.testing.assert_close(total, classic)
    assert float(bwd) == 0.0 and torch.equal(total, fwd)


def test_bijepa_loss_is_eq8():
    model = build_model(SINE, TrainConfig(alpha=0.3, seed=0))
    x, y = batch()
    total, fwd, bwd = model.loss(x, y)
    f = (
        (model.fwd_predictor(model.online_encoder(x)) - model.target_encoder(y)) ** 2
    ).mean()
    b = (
        (model.bwd_predictor(model.online_encoder(y)) - model.target_encoder(x)) ** 2
    ).mean()
    torch.testing.assert_close(fwd, f)
    torch.testing.assert_close(bwd, b)
    torch.testing.assert_close(total, 0.3 * f + 0.7 * b)


def test_same_seed_same_init_and_classic_shares_the_forward_part():
    a, b = (
        build_model(SINE, TrainConfig(alpha=0.5, seed=7)),
        build_model(SINE, TrainConfig(alpha=0.5, seed=7)),
    )
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    c = build_model(SINE, TrainConfig(alpha=1.0, seed=7))
    assert torch.equal(c.online_encoder.net[0].weight, a.online_encoder.net[0].weight)
    assert torch.equal(c.fwd_predictor.net[0].weight, a.fwd_predictor.net[0].weight)
    assert not torch.equal(
        build_model(SINE, TrainConfig(alpha=0.5, seed=8)).online_encoder.net[0].weight,
        a.online_encoder.net[0].weight,
    )


def test_target_is_a_copy_and_gets_no_gradient():
    model = build_model(SINE, TrainConfig(alpha=0.5, seed=0))
    for po, pt in zip(
        model.online_encoder.parameters(), model.target_encoder.parameters()
    ):
        assert torch.equal(po, pt) and po.data_ptr() != pt.data_ptr()
        assert not pt.requires_grad
    x, y = batch()
    total, _, _ = model.loss(x, y)
    total.backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert all(p.grad is not None for p in model.online_encoder.parameters())
    ids = {id(p) for p in model.trainable_parameters()}
    assert not ids & {id(p) for p in model.target_encoder.parameters()}


def test_ema_formula():
    model = build_model(SINE, TrainConfig(alpha=0.5, seed=0))
    with torch.no_grad():
        for p in model.online_encoder.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in model.target_encoder.parameters()]
    online = [p.clone() for p in model.online_encoder.parameters()]
    model.ema_update(0.9)
    for t0, o, t1 in zip(before, online, model.target_encoder.parameters()):
        torch.testing.assert_close(t1, 0.9 * t0 + 0.1 * o)
    model.ema_update(1.0)  # momentum 1 freezes the target
    for t1, t2 in zip(
        [p.clone() for p in model.target_encoder.parameters()],
        model.target_encoder.parameters(),
    ):
        assert torch.equal(t1, t2)
    model.ema_update(0.0)  # momentum 0 copies the online encoder
    for o, t in zip(
        model.online_encoder.parameters(), model.target_encoder.parameters()
    ):
        assert torch.equal(o, t)


def test_ema_after_optimiser_rehoming_still_tracks_online():
    model = build_model(SINE, TrainConfig(alpha=0.5, seed=0))
    opt = FlatAdamW(model.trainable_parameters(), lr=0.1)
    x, y = batch()
    model.loss(x, y)[0].backward()
    opt.step()
    model.ema_update(0.0)
    for o, t in zip(
        model.online_encoder.parameters(), model.target_encoder.parameters()
    ):
        assert torch.equal(o, t)


def test_sphere_mode_unit_norm_and_norm_modes():
    m, _ = paper_config("sine", "restrictive")
    model = build_model(m, TrainConfig(alpha=0.5, seed=0))
    x, y = batch()
    emb = model.loss(x, y, return_embeddings=True)[3]
    for k in ("online_x", "online_y", "target_x", "target_y"):
        torch.testing.assert_close(emb[k].norm(dim=-1), torch.ones(len(x)))
    none, _ = paper_config("sine", "unconstrained")
    assert not any(
        isinstance(mod, nn.LayerNorm)
        for mod in build_model(none, TrainConfig(alpha=0.5, seed=0)).modules()
    )
    assert (
        sum(
            isinstance(mod, nn.LayerNorm)
            for mod in build_model(SINE, TrainConfig(alpha=0.5, seed=0)).modules()
        )
        == 2 * 2 + 1 + 1
    )


def test_swapping_views_swaps_the_directions():
    """Swapping x and y, alpha <-> 1 - alpha and the two predictors gives the same loss."""
    a = build_model(SINE, TrainConfig(alpha=0.3, seed=0))
    b = copy.deepcopy(a)
    b.alpha = 0.7
    b.fwd_predictor, b.bwd_predictor = a.bwd_predictor, a.fwd_predictor
    x, y = batch()
    ta, fa, ba = a.loss(x, y)
    tb, fb, bb = b.loss(y, x)
    torch.testing.assert_close(ta, tb)
    torch.testing.assert_close(fa, bb)
    torch.testing.assert_close(ba, fb)


def test_concat_encoding_equals_separate_calls():
    model = build_model(SINE, TrainConfig(alpha=0.5, seed=0))
    x, y = batch()
    emb = model.embeddings(x, y)
    torch.testing.assert_close(emb["online_x"], model.online_encoder(x))
    torch.testing.assert_close(emb["online_y"], model.online_encoder(y))


def test_conv_encoder_shapes_and_batchnorm_choice():
    m, _ = paper_config("mnist")
    model = build_model(m, TrainConfig(alpha=0.5, seed=0))
    left, right = torch.randn(16, 1, 28, 14), torch.randn(16, 1, 28, 14)
    total, fwd, bwd, emb = model.loss(left, right, return_embeddings=True)
    assert emb["online_x"].shape == (16, 64) and total.ndim == 0
    # the target's BatchNorm does not update its running stats from its own forward passes ...
    bn_t = model.target_encoder.net[1]
    assert bn_t.momentum == 0.0 and torch.equal(bn_t.running_mean, torch.zeros(32))
    # ... the online one does, and the EMA carries its statistics to the target
    bn_o = model.online_encoder.net[1]
    assert not torch.equal(bn_o.running_mean, torch.zeros(32))
    model.ema_update(0.0)
    assert torch.equal(bn_t.running_mean, bn_o.running_mean) and torch.equal(
        bn_t.running_var, bn_o.running_var
    )


def test_embedding_loss_is_mean_squared_error():
    a, b = torch.randn(4, 8), torch.randn(4, 8)
    torch.testing.assert_close(embedding_loss(a, b), ((a - b) ** 2).sum(-1).mean() / 8)


def test_jepa_rejects_bad_alpha():
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        JEPA(ModelConfig(), alpha=1.2)


def test_predict_backward_needs_bijepa():
    with pytest.raises(ValueError, match="alpha = 1"):
        build_model(SINE, TrainConfig(alpha=1.0, seed=0)).predict_backward(
            torch.randn(3, 10)
        )


def test_flat_adamw_equals_torch_adamw():
    torch.manual_seed(0)
    net_a = nn.Sequential(
        nn.Linear(5, 7), nn.LayerNorm(7), nn.ReLU(), nn.Linear(7, 3)
    ).double()
    net_b = copy.deepcopy(net_a)
    opt_a = torch.optim.AdamW(
        net_a.parameters(), lr=1e-2, weight_decay=0.1, foreach=False
    )
    opt_b = FlatAdamW(net_b.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(30):
        x = torch.randn(16, 5, dtype=torch.float64)
        for net, opt in ((net_a, opt_a), (net_b, opt_b)):
            opt.zero_grad()
            (net(x) ** 2).mean().backward()
            opt.step()
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-12)
    # parameters really live in the flat buffer
    assert sum(p.numel() for p in net_b.parameters()) == opt_b.flat.numel()
    assert all(
        p.grad.data_ptr() >= opt_b.flat_grad.data_ptr() for p in net_b.parameters()
    )


def test_flat_adamw_rejects_bad_input():
    p = [nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="lr"):
        FlatAdamW(p, lr=0.0)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        FlatAdamW(p, betas=(0.9, 1.0))
