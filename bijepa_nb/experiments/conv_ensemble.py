"""K MNIST conv encoders as one module (grouped convolutions), and why it does not pay here.

The MLP ensemble (``bijepa_nb.experiments.ensemble``) trains K seeds as one model and gains ~10x on
the sine task, where a step is dominated by per-call overhead on tiny tensors. The MNIST
conv encoder can be batched the same way: K encoders become one ``Conv2d(K, 32K,
groups=K)``, one ``Conv2d(32K, 64K, groups=K)``, BatchNorm over 32K and 64K channels
(per-channel statistics, so per member: exact) and batched linear layers. This module
builds that encoder (``GroupedConvEncoders``, exact against K separate encoders in
float64: ``tests/test_mnist_conv_ensemble.py``) and measures it:

    python -m bijepa_nb.bench --only conv          # per-member ms of an encoder step, K = 1..8

On the 2-core CPU machine the per-member cost does not fall with K (it rises: grouped
convolutions run slower per FLOP than dense ones, and the work per step is already
compute-bound at batch 256), so MNIST seeds are trained as separate one-thread
processes instead (``bijepa_nb.experiments.mnist_runs.run_tasks``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import TrainConfig
from ..core.models import Encoder, build_model
from .registry import EXPERIMENTS


class GroupedConvEncoders(nn.Module):
    """K conv encoders (``models.conv_encoder``, one ModelConfig) as one module.

    x [K, B, 1, 28, 14] (member k's batch in row k) -> embeddings [K, B, embed].
    Parameters are copied from ``encoders``; ``member(k, encoder)`` copies them back.
    """

    def __init__(self, encoders: Sequence[Encoder]):
        super().__init__()
        if not encoders:
            raise ValueError("encoders must hold at least one conv Encoder")
        nets = [e.net for e in encoders]
        if any(not isinstance(n[0], nn.Conv2d) for n in nets):
            raise ValueError("GroupedConvEncoders needs conv encoders (arch='conv')")
        if any(e.sphere for e in encoders) or any(len(n) != 11 for n in nets):
            raise ValueError(
                "GroupedConvEncoders supports the LayerNorm (expressive) conv encoders only"
            )
        self.k = len(nets)
        c1, b1, c2, b2, lin1, ln, lin2 = (nets[0][i] for i in (0, 1, 3, 4, 7, 8, 10))
        self.conv1 = nn.Conv2d(self.k, c1.out_channels * self.k, 3, 2, 1, groups=self.k)
        self.bn1 = nn.BatchNorm2d(
            b1.num_features * self.k, eps=b1.eps, momentum=b1.momentum
        )
        self.conv2 = nn.Conv2d(
            c2.in_channels * self.k, c2.out_channels * self.k, 3, 2, 1, groups=self.k
        )
        self.bn2 = nn.BatchNorm2d(
            b2.num_features * self.k, eps=b2.eps, momentum=b2.momentum
        )
        self.ln_shape, self.ln_eps = ln.normalized_shape, ln.eps
        with torch.no_grad():
            for grouped, i in (
                (self.conv1, 0),
                (self.bn1, 1),
                (self.conv2, 3),
                (self.bn2, 4),
            ):
                for name, t in list(grouped.named_parameters()) + list(
                    grouped.named_buffers()
                ):
                    if name != "num_batches_tracked":
                        t.copy_(torch.cat([getattr(n[i], name) for n in nets]))
        stack = lambda i, name, f=lambda t: t: torch.stack(
            [f(getattr(n[i], name).detach()) for n in nets]
        )
        self.w1 = nn.Parameter(
            stack(7, "weight", lambda t: t.T).contiguous()
        )  # [K, 1792, H]
        self.b1 = nn.Parameter(stack(7, "bias").unsqueeze(1).contiguous())  # [K, 1, H]
        self.ln_w = nn.Parameter(stack(8, "weight").unsqueeze(1).contiguous())
        self.ln_b = nn.Parameter(stack(8, "bias").unsqueeze(1).contiguous())
        self.w2 = nn.Parameter(
            stack(10, "weight", lambda t: t.T).contiguous()
        )  # [K, H, E]
        self.b2 = nn.Parameter(stack(10, "bias").unsqueeze(1).contiguous())
        self.to(next(encoders[0].parameters()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, b = x.shape[:2]
        h = x.reshape(k, b, *x.shape[-2:]).transpose(
            0, 1
        )  # [B, K, 28, 14]: member k is channel k
        h = F.relu(self.bn1(self.conv1(h)))  # [B, 32K, 14, 7]
        h = F.relu(self.bn2(self.conv2(h)))  # [B, 64K, 7, 4]
        h = h.reshape(b, k, -1).transpose(
            0, 1
        )  # [K, B, 1792], each member's (c, h, w) order
        h = torch.baddbmm(self.b1, h, self.w1)
        h = torch.addcmul(
            self.ln_b, F.layer_norm(h, self.ln_shape, eps=self.ln_eps), self.ln_w
        )
        return torch.baddbmm(self.b2, F.relu(h), self.w2)

    @torch.no_grad()
    def member(self, k: int, encoder: Encoder) -> None:
        """Copy member ``k``'s parameters and BatchNorm statistics into ``encoder``."""
        n = encoder.net
        for grouped, i in (
            (self.conv1, 0),
            (self.bn1, 1),
            (self.conv2, 3),
            (self.bn2, 4),
        ):
            for name, t in list(grouped.named_parameters()) + list(
                grouped.named_buffers()
            ):
                if name != "num_batches_tracked":
                    getattr(n[i], name).copy_(t.chunk(self.k)[k])
        n[7].weight.copy_(self.w1[k].T), n[7].bias.copy_(self.b1[k, 0])
        n[8].weight.copy_(self.ln_w[k, 0]), n[8].bias.copy_(self.ln_b[k, 0])
        n[10].weight.copy_(self.w2[k].T), n[10].bias.copy_(self.b2[k, 0])


def _encoder_step(enc, x: torch.Tensor, batched: bool) -> None:
    """The encoder work of one BiJEPA step: online on both views (with backward), target
    on both views (no grad). x: [K, 2B, 1, 28, 14] (batched) or [2B, 1, 28, 14]."""
    half = x.shape[-4] // 2
    views = (x[:, :half], x[:, half:]) if batched else (x[:half], x[half:])
    out = sum(enc(v).square().mean() for v in views)
    out.backward()  # type: ignore[union-attr]
    with torch.no_grad():
        for v in views:
            enc(v)


def bench(
    ks: Sequence[int] = (1, 2, 4, 8),
    batch: int = 256,
    steps: int = 8,
    repeats: int = 3,
    threads: int = 1,
) -> dict[int, dict[str, float]]:
    """Per-member milliseconds of the encoder work of a BiJEPA step (``_encoder_step``):
    K grouped encoders vs K separate encoders run one after the other, interleaved,
    median of ``repeats``. Returns {K: {"grouped_ms", "separate_ms", "ratio"}}."""

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    mc = EXPERIMENTS["mnist"].model_config("expressive")
    out: dict[int, dict[str, float]] = {}
    try:
        for k in ks:
            encs = [
                build_model(mc, TrainConfig(seed=s), "cpu").online_encoder
                for s in range(k)
            ]
            grouped = GroupedConvEncoders(encs)
            x = torch.randn(k, 2 * batch, 1, 28, 14)
            times: dict[str, list[float]] = {"grouped_ms": [], "separate_ms": []}
            for _ in range(repeats):
                for name in times:
                    _encoder_step(
                        grouped, x, True
                    ) if name == "grouped_ms" else _encoder_step(
                        encs[0], x[0], False
                    )  # warm-up
                    t0 = time.perf_counter()
                    for _ in range(steps):
                        if name == "grouped_ms":
                            _encoder_step(grouped, x, True)
                        else:
                            for i, e in enumerate(encs):
                                _encoder_step(e, x[i], False)
                    times[name].append((time.perf_counter() - t0) / steps / k * 1000)
            g, s = (
                float(np.median(times["grouped_ms"])),
                float(np.median(times["separate_ms"])),
            )
            out[k] = {"grouped_ms": g, "separate_ms": s, "ratio": s / g}
    finally:
        torch.set_num_threads(old)
    return out
