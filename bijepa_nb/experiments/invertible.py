"""A shared, invertible predictor (§5.2): one bijection P with s_y = P(s_x), s_x = P^{-1}(s_y).

The paper suggests replacing the two predictors of BiJEPA by one invertible network, to
halve the predictor parameters and make forward and backward prediction exact inverses by
construction. ``InvertiblePredictor`` is a stack of affine coupling layers (RealNVP,
Dinh et al. 2017) with fixed permutations of the embedding between layers:

    coupling:  a, b = split(s);   b' = b * exp(scale(a)) + shift(a);   out = cat(a, b')
    inverse:   a, b' = split(out); b = (b' - shift(a)) * exp(-scale(a))

``scale`` is bounded (``max_log_scale * tanh``) so no layer can blow an embedding up in one
step. The last linear layer of every conditioner starts at zero: the predictor starts as
the identity map (as in Glow), which is a valid bijection from step 0.

``share_invertible_predictor(model)`` turns a BiJEPA ``JEPA`` into the shared variant in
place: ``fwd_predictor`` becomes the coupling stack and ``bwd_predictor`` an
``InverseView`` of the same object, which owns no parameters of its own (so the optimiser,
``trainable_parameters`` and ``.to(device)`` see every weight exactly once).
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.config import ModelConfig, TrainConfig, check_float, check_int
from ..core.models import JEPA, Predictor, build_model, seeded


def _conditioner(d_in: int, d_out: int, hidden: int, layernorm: bool) -> nn.Sequential:
    """a [B, d_in] -> (raw scale, shift) [B, 2 * d_out]; the last layer is zero-initialised."""
    layers: list[nn.Module] = [nn.Linear(d_in, hidden)]
    layers += [nn.LayerNorm(hidden)] if layernorm else []
    layers += [nn.ReLU(), nn.Linear(hidden, 2 * d_out)]
    nn.init.zeros_(layers[-1].weight)
    nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)


class AffineCoupling(nn.Module):
    """One affine coupling layer on s [B, D]: the first D // 2 coordinates condition the rest."""

    def __init__(
        self, dim: int, hidden: int, layernorm: bool = True, max_log_scale: float = 2.0
    ):
        super().__init__()
        check_int("dim", dim, 2)
        check_int("hidden", hidden, 1)
        check_float("max_log_scale", max_log_scale, 0.0, None, low_open=True)
        self.d1 = dim // 2
        self.net = _conditioner(self.d1, dim - self.d1, hidden, layernorm)
        self.max_log_scale = max_log_scale

    def _scale_shift(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_scale, shift = self.net(a).chunk(2, dim=-1)
        return self.max_log_scale * torch.tanh(raw_scale), shift

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        a, b = s[..., : self.d1], s[..., self.d1 :]
        log_scale, shift = self._scale_shift(a)
        return torch.cat((a, b * torch.exp(log_scale) + shift), dim=-1)

    def inverse(self, s: torch.Tensor) -> torch.Tensor:
        a, b = s[..., : self.d1], s[..., self.d1 :]
        log_scale, shift = self._scale_shift(a)
        return torch.cat((a, (b - shift) * torch.exp(-log_scale)), dim=-1)


class InvertiblePredictor(nn.Module):
    """P: [B, D] -> [B, D], a bijection: couplings interleaved with fixed permutations.

    Layers come in pairs: a random permutation before layer 2k, a swap of the two halves
    before layer 2k + 1, so each pair transforms every coordinate once.

    ``forward(s)`` is P(s) (the forward predictor), ``inverse(s)`` is P^{-1}(s) (the backward
    predictor). ``seed`` fixes the permutations (not the weights: those follow torch's RNG,
    like every other module of the book).
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        num_layers: int = 4,
        layernorm: bool = True,
        seed: int = 0,
        max_log_scale: float = 2.0,
    ):
        super().__init__()
        check_int("num_layers", num_layers, 1)
        check_int("seed", seed, 0)
        gen = torch.Generator().manual_seed(seed)
        self.couplings = nn.ModuleList(
            AffineCoupling(dim, hidden, layernorm, max_log_scale)
            for _ in range(num_layers)
        )
        d1 = dim // 2
        swap = torch.cat(
            (torch.arange(d1, dim), torch.arange(d1))
        )  # the half just transformed now conditions
        perms = torch.stack(
            [
                torch.randperm(dim, generator=gen) if l % 2 == 0 else swap
                for l in range(num_layers)
            ]
        )
        self.register_buffer("perms", perms)  # [L, D]: applied before coupling l
        self.register_buffer("inv_perms", perms.argsort(dim=1))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        for layer, perm in zip(self.couplings, self.perms):
            s = layer(s[..., perm])
        return s

    def inverse(self, s: torch.Tensor) -> torch.Tensor:
        for layer, inv in zip(reversed(self.couplings), reversed(self.inv_perms)):
            s = layer.inverse(s)[..., inv]
        return s


class InverseView(nn.Module):
    """Calls ``base.inverse``; holds ``base`` without registering it (it owns no parameters)."""

    def __init__(self, base: InvertiblePredictor):
        super().__init__()
        object.__setattr__(
            self, "_base", base
        )  # not a submodule: base is registered elsewhere

    @property
    def base(self) -> InvertiblePredictor:
        return self._base  # type: ignore[attr-defined]

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.base.inverse(s)


def num_parameters(module: nn.Module | None) -> int:
    """Number of scalar parameters (0 for None)."""
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def hidden_for_budget(
    cfg: ModelConfig, num_layers: int, budget: int | None = None
) -> int:
    """Largest conditioner width whose coupling stack has at most ``budget`` parameters.

    The default budget is one ordinary ``Predictor`` of ``cfg``: the shared predictor then
    has (at most) half the parameters of BiJEPA's two predictors.
    """
    check_int("num_layers", num_layers, 1)
    if budget is None:
        budget = num_parameters(Predictor(cfg))
    d = cfg.embed_dim
    d1, d2 = d // 2, d - d // 2
    ln = 2 if cfg.norm != "none" else 0
    per_hidden = num_layers * (
        d1 + 1 + ln + 2 * d2
    )  # weights and biases that scale with the width
    fixed = num_layers * 2 * d2  # biases of the output layers
    hidden = (budget - fixed) // per_hidden
    if hidden < 1:
        raise ValueError(
            f"budget={budget} parameters is too small for {num_layers} coupling layers on embed_dim={d}"
        )
    return int(hidden)


def share_invertible_predictor(
    model: JEPA, num_layers: int = 4, hidden: int | None = None, seed: int = 0
) -> JEPA:
    """Replace BiJEPA's two predictors by one invertible predictor, in place; returns ``model``.

    Must be called before training (the optimiser is built from the parameters at the start
    of ``train``). ``hidden`` defaults to ``hidden_for_budget`` (half of the two predictors).
    The new predictor's weights are drawn from torch's RNG seeded with ``seed``, without
    disturbing the global RNG state.
    """
    if not model.bidirectional:
        raise ValueError(
            "share_invertible_predictor needs a BiJEPA model (alpha < 1): classic JEPA has no backward predictor"
        )
    hidden = hidden_for_budget(model.cfg, num_layers) if hidden is None else hidden
    device = next(model.parameters()).device
    with seeded(seed):
        inv = InvertiblePredictor(
            model.cfg.embed_dim, hidden, num_layers, model.cfg.norm != "none", seed
        )
    model.fwd_predictor = inv.to(device)
    model.bwd_predictor = InverseView(inv)
    return model


def build_shared(
    cfg: ModelConfig,
    train_cfg: TrainConfig,
    device: torch.device | str | None = None,
    num_layers: int = 4,
) -> JEPA:
    """A BiJEPA model (``build_model(cfg, train_cfg)``) with one shared invertible
    predictor of ``num_layers`` couplings (``share_invertible_predictor``, permutations
    and weights from ``train_cfg.seed``). Fits ``pipeline.train_runs(..., build=...)``."""
    return share_invertible_predictor(
        build_model(cfg, train_cfg, device), num_layers, seed=train_cfg.seed
    )
