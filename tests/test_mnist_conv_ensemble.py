"""K MNIST conv encoders as one grouped-convolution module: the same arithmetic as K
separate encoders (float64), in train mode with BatchNorm, over AdamW steps."""

import copy

import pytest
import torch

from bijepa_nb.core.config import TrainConfig
from bijepa_nb.core.models import build_model
from bijepa_nb.experiments.conv_ensemble import GroupedConvEncoders, bench
from bijepa_nb.experiments.registry import EXPERIMENTS


def encoders(k, dtype=torch.float64):
    mc = EXPERIMENTS["mnist"].model_config("expressive")
    return [
        build_model(mc, TrainConfig(alpha=0.5, seed=s)).online_encoder.to(dtype)
        for s in range(k)
    ]


def test_grouped_encoders_train_like_separate_ones_in_float64():
    k, b = 3, 16
    sep = encoders(k)
    grouped = GroupedConvEncoders(copy.deepcopy(sep))
    gen = torch.Generator().manual_seed(0)
    opt_g = torch.optim.AdamW(grouped.parameters(), lr=1e-3, weight_decay=1e-4)
    opts = [torch.optim.AdamW(e.parameters(), lr=1e-3, weight_decay=1e-4) for e in sep]
    for step in range(15):
        x = torch.randn(
            k, b, 1, 28, 14, generator=gen, dtype=torch.float64
        )  # each member its own batch
        y = torch.randn(k, b, 64, generator=gen, dtype=torch.float64)
        out_g = grouped(x)
        loss_g = (out_g - y).square().mean(dim=(1, 2))  # [K]
        opt_g.zero_grad()
        loss_g.sum().backward()
        opt_g.step()
        for i, (e, o) in enumerate(zip(sep, opts)):
            loss = (e(x[i]) - y[i]).square().mean()
            o.zero_grad()
            loss.backward()
            o.step()
            assert abs(float(loss) - float(loss_g[i])) < 1e-10, (
                f"step {step}, member {i}"
            )
    back = encoders(k)
    for i in range(k):
        grouped.member(i, back[i])
        for (name, a), bb in zip(
            sep[i].state_dict().items(), back[i].state_dict().values()
        ):
            if name.endswith("num_batches_tracked"):
                continue
            # 1e-10, not 1e-16: a conv bias before BatchNorm gets a gradient of rounding noise
            # (~1e-17) that Adam normalises, so its tiny drift differs at the 1e-12 level
            torch.testing.assert_close(
                a, bb, rtol=0, atol=1e-10, msg=f"member {i} {name}"
            )
    # eval mode (running statistics) agrees too
    grouped.eval()
    x = torch.randn(k, 5, 1, 28, 14, dtype=torch.float64)
    for i, e in enumerate(sep):
        torch.testing.assert_close(grouped(x)[i], e.eval()(x[i]), rtol=0, atol=1e-10)


def test_grouped_encoders_refuse_other_encoders():
    mc = EXPERIMENTS["sine"].model_config("expressive")
    with pytest.raises(ValueError, match="conv"):
        GroupedConvEncoders(
            [build_model(mc, TrainConfig(alpha=0.5, seed=0)).online_encoder]
        )
    mc = EXPERIMENTS["mnist"].model_config("restrictive")
    with pytest.raises(ValueError, match="LayerNorm"):
        GroupedConvEncoders(
            [build_model(mc, TrainConfig(alpha=0.5, seed=0)).online_encoder]
        )


def test_bench_reports_both_timings():
    r = bench(ks=(2,), batch=8, steps=1, repeats=1)
    assert (
        set(r[2]) == {"grouped_ms", "separate_ms", "ratio"} and r[2]["grouped_ms"] > 0
    )
