"""Many seeds at the cost of few: K JEPA / BiJEPA models trained as one batched model.

``Ensemble`` stacks the parameters of K independently initialised MLP models (one per
seed, built by ``build_model``) along a leading model dimension and runs every layer for
all K at once (``torch.baddbmm``). Each model keeps its own initialisation and its own
data stream; the per-model losses are *summed* before ``backward``, so every model's
gradient is exactly the gradient it would get alone. AdamW and the EMA are element-wise,
so the whole run is the same arithmetic as K separate runs of ``training.train``
(tested: float64 per-step losses agree to 1e-10 over 200 steps).

    models = [build_model(mc, replace(tc, seed=s)) for s in seeds]
    ens = Ensemble(models)
    histories = train_ensemble(ens, [SineStream(SineConfig(), s, 64) for s in seeds], tc)
    trained = ens.unstack()          # K ordinary JEPA models, for the probes

Only the MLP models (sine, Lorenz) are batched; the MNIST conv encoder with BatchNorm is
trained one seed at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import TrainConfig, check_int
from ..core.models import JEPA, Encoder, JEPAStep, Predictor, seeded
from ..core.training import (
    BatchStream,
    History,
    NonFiniteStep,
    TrainingDiverged,
    run_steps,
)


class BatchedLinear(nn.Module):
    """K linear layers at once: x [K, N, in] -> [K, N, out]; weight [K, in, out], bias [K, 1, out]."""

    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(
            torch.stack([l.weight.detach().T for l in layers]).contiguous()
        )
        self.bias = nn.Parameter(
            torch.stack([l.bias.detach() for l in layers]).unsqueeze(1).contiguous()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def member(self, k: int, layer: nn.Linear) -> None:
        layer.weight.copy_(self.weight[k].T)
        layer.bias.copy_(self.bias[k, 0])


class BatchedLayerNorm(nn.Module):
    """K LayerNorms at once over the last dim: x [K, N, H]; weight and bias [K, 1, H]."""

    def __init__(self, layers: Sequence[nn.LayerNorm]):
        super().__init__()
        self.shape, self.eps = layers[0].normalized_shape, layers[0].eps
        self.weight = nn.Parameter(
            torch.stack([l.weight.detach() for l in layers]).unsqueeze(1).contiguous()
        )
        self.bias = nn.Parameter(
            torch.stack([l.bias.detach() for l in layers]).unsqueeze(1).contiguous()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(
            self.bias, F.layer_norm(x, self.shape, eps=self.eps), self.weight
        )

    def member(self, k: int, layer: nn.LayerNorm) -> None:
        layer.weight.copy_(self.weight[k, 0])
        layer.bias.copy_(self.bias[k, 0])


class BatchedReLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    def member(self, k: int, layer: nn.Module) -> None:
        pass


def _batched(layer: nn.Module, copies: Sequence[nn.Module]) -> nn.Module:
    if isinstance(layer, nn.Linear):
        return BatchedLinear(copies)  # type: ignore[arg-type]
    if isinstance(layer, nn.LayerNorm):
        return BatchedLayerNorm(copies)  # type: ignore[arg-type]
    if isinstance(layer, nn.ReLU):
        return BatchedReLU()
    raise ValueError(
        f"Ensemble supports MLP models only (Linear, LayerNorm, ReLU), got a {type(layer).__name__} layer"
    )


class BatchedNet(nn.Module):
    """The layers of K ``nn.Sequential`` nets of one architecture, batched: [K, N, in] -> [K, N, out]."""

    def __init__(self, nets: Sequence[nn.Sequential]):
        super().__init__()
        self.layers = nn.ModuleList(
            _batched(layer, [n[i] for n in nets]) for i, layer in enumerate(nets[0])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def member(self, k: int, net: nn.Sequential) -> None:
        for layer, target in zip(self.layers, net):
            layer.member(k, target)


class BatchedEncoder(BatchedNet):
    """K encoders: sequences [K, N, T, ...] -> embeddings [K, N, embed] (unit norm in "sphere" mode)."""

    def __init__(self, encoders: Sequence[Encoder]):
        super().__init__([e.net for e in encoders])
        self.sphere = encoders[0].sphere

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = super().forward(x.flatten(2))
        return F.normalize(s, dim=-1) if self.sphere else s


class Ensemble(JEPAStep):
    """K MLP JEPA / BiJEPA models of one architecture, trained as one batched model.

    Built from K ``JEPA`` models with the same ``cfg`` (their parameters are copied).
    Members may differ in seed and in ``alpha`` (each model's own, Eq. 8); the EMA
    momentum of each member comes from its TrainConfig at training time
    (``train_ensemble``). Attributes mirror ``JEPA``: online_encoder, target_encoder,
    fwd_predictor, bwd_predictor (None when every member has alpha = 1), each batched
    over the leading model dimension; ``alphas`` [K].

    A member with alpha = 1 inside a mixed ensemble gets a backward predictor whose loss
    is weighted by exactly 0: its encoder and forward predictor see the same gradients
    as in a classic JEPA run, and ``unstack`` returns it without that predictor.
    """

    def __init__(self, models: Sequence[JEPA]):
        super().__init__()
        if not models:
            raise ValueError("models must hold at least one JEPA model")
        first = models[0]
        if first.cfg.arch != "mlp":
            raise ValueError(
                f"Ensemble supports arch='mlp' only (sine, Lorenz), got arch={first.cfg.arch!r}"
            )
        for i, m in enumerate(models):
            if m.cfg != first.cfg:
                raise ValueError(
                    f"models[{i}] differs from models[0] in its ModelConfig; an ensemble "
                    "holds one architecture (members may differ in seed, alpha, ema_momentum)"
                )
        self.cfg, self.size = first.cfg, len(models)
        self.member_alphas = [m.alpha for m in models]
        dev = next(first.parameters()).device
        dtype = next(first.parameters()).dtype
        self.register_buffer("alphas", torch.tensor(self.member_alphas, dtype=dtype))
        self.online_encoder = BatchedEncoder([m.online_encoder for m in models])
        self.target_encoder = BatchedEncoder([m.target_encoder for m in models])
        for p in self.target_encoder.parameters():
            p.requires_grad_(False)
        self.fwd_predictor = BatchedNet([m.fwd_predictor.net for m in models])
        self.bwd_predictor = None
        if any(m.bidirectional for m in models):
            stand_in = _zero_predictor(first.cfg).to(device=dev, dtype=dtype)
            nets = [(m.bwd_predictor or stand_in).net for m in models]
            self.bwd_predictor = BatchedNet(nets)
            self.register_buffer(
                "has_bwd", torch.tensor([m.bidirectional for m in models])
            )
        self.to(dev)

    @property
    def alpha(self) -> float:
        """The members' common alpha; an error for a mixed ensemble."""
        if len(set(self.member_alphas)) != 1:
            raise ValueError(f"the members differ in alpha: {self.member_alphas}")
        return self.member_alphas[0]

    @property
    def _alpha(self) -> torch.Tensor:
        return self.alphas

    @property
    def _bwd_mask(self) -> torch.Tensor | None:
        return self.has_bwd if self.bidirectional else None

    @staticmethod
    def _member_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-model ``embedding_loss``: mean squared error over batch and embedding dims, [K, N, D] -> [K]."""
        return (pred - target).square().mean(dim=(1, 2))

    @staticmethod
    def _encode_both(
        encoder: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both views through one call: x, y [K, B, ...] -> ([K, B, D], [K, B, D])."""
        s = encoder(torch.cat((x, y), 1))
        return s[:, : x.shape[1]], s[:, x.shape[1] :]

    @torch.no_grad()
    def unstack(self) -> list[JEPA]:
        """K ordinary ``JEPA`` models holding the ensemble's current weights (same device and dtype)."""
        ref = next(self.parameters())
        out = []
        for k in range(self.size):
            m = JEPA(self.cfg, self.member_alphas[k]).to(
                device=ref.device, dtype=ref.dtype
            )
            self.online_encoder.member(k, m.online_encoder.net)
            self.target_encoder.member(k, m.target_encoder.net)
            self.fwd_predictor.member(k, m.fwd_predictor.net)
            if m.bwd_predictor is not None:
                self.bwd_predictor.member(k, m.bwd_predictor.net)  # type: ignore[union-attr]
            out.append(m)
        return out


def _zero_predictor(cfg) -> Predictor:
    """A backward predictor with all-zero weights, for alpha = 1 members of a mixed ensemble
    (its loss is weighted by 0); built without touching the global random stream."""
    with seeded(0):
        p = Predictor(cfg)
    with torch.no_grad():
        for t in p.parameters():
            t.zero_()
    return p


class EnsembleDiverged(TrainingDiverged):
    """A member of an ensemble became non-finite: ``.step``, ``.members`` (indices that failed),
    ``.histories`` (every member's history before the step) and ``.history`` (the first failing member's)."""

    def __init__(
        self, step: int, histories: list[History], members: list[int], what: str
    ):
        self.histories, self.members = histories, members
        super().__init__(step, histories[members[0]], what)
        self.args = (
            f"training diverged at step {step}: {what} of ensemble member(s) {members} became non-finite; "
            f"the {step} steps before it are in .histories",
        )


class StackedStream:
    """One batch from each of K streams per step, stacked: context [K, B, ...], target [K, B, ...].

    ``members`` (optional) maps ensemble members to streams: member k gets the batch of
    ``streams[members[k]]``, so members that share a data seed share one stream.

    Batches are fetched ``chunk_steps`` steps at a time and stacked in one call, so a step
    costs one indexing instead of K small copies; the order of batches is unchanged.
    """

    def __init__(
        self,
        streams: Sequence[BatchStream],
        chunk_steps: int = 50,
        members: Sequence[int] | None = None,
    ):
        if not streams:
            raise ValueError("streams must hold one stream per ensemble member")
        check_int("chunk_steps", chunk_steps, 1)
        self.streams, self.chunk_steps = list(streams), chunk_steps
        self.members: torch.Tensor | None = None
        if members is not None:
            for i in members:
                check_int("members[...]", i, 0, len(self.streams) - 1)
            self.members = torch.as_tensor(list(members), dtype=torch.long)
        self._ctx: torch.Tensor | None = None  # [chunk, K, B, ...]
        self._tgt: torch.Tensor | None = None
        self._i = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._ctx is None or self._i == len(self._ctx):
            steps = [[s.next() for s in self.streams] for _ in range(self.chunk_steps)]
            self._ctx = torch.stack([torch.stack([c for c, _ in row]) for row in steps])
            self._tgt = torch.stack([torch.stack([t for _, t in row]) for row in steps])
            self._i = 0
        self._i += 1
        ctx, tgt = self._ctx[self._i - 1], self._tgt[self._i - 1]  # type: ignore[index]
        if self.members is not None:
            idx = self.members.to(ctx.device)
            return ctx.index_select(0, idx), tgt.index_select(0, idx)
        return ctx, tgt


def member_configs(
    ens: Ensemble, cfg: TrainConfig | Sequence[TrainConfig]
) -> tuple[TrainConfig, torch.Tensor | float]:
    """Check one TrainConfig per member (or one for all) against ``ens``; returns the shared
    config and the EMA momentum (a float, or a [K] tensor when the members differ).

    Members may differ in ``alpha``, ``ema_momentum`` and ``seed`` only; every other field
    (steps, batch size, learning rate, weight decay, device, ...) is shared by the batch.
    """
    cfgs = [cfg] * ens.size if isinstance(cfg, TrainConfig) else list(cfg)
    if len(cfgs) != ens.size:
        raise ValueError(
            f"cfg must hold one TrainConfig per member: {ens.size} members, got {len(cfgs)}"
        )
    free = ("alpha", "ema_momentum", "seed")
    shared = {k: v for k, v in cfgs[0].to_dict().items() if k not in free}
    for i, c in enumerate(cfgs):
        if c.alpha != ens.member_alphas[i]:
            raise ValueError(
                f"alpha of member {i}: the model has {ens.member_alphas[i]}, its TrainConfig {c.alpha}"
            )
        other = {k: v for k, v in c.to_dict().items() if k not in free}
        if other != shared:
            diff = sorted(k for k in shared if shared[k] != other[k])
            raise ValueError(
                f"TrainConfig of member {i} differs from member 0 in {diff}; members may differ only in {free}"
            )
    taus = [c.ema_momentum for c in cfgs]
    if len(set(taus)) == 1:
        return cfgs[0], taus[0]
    ref = next(ens.parameters())
    return cfgs[0], torch.tensor(taus, dtype=ref.dtype, device=ref.device)


def train_ensemble(
    ens: Ensemble,
    streams: Sequence[BatchStream] | BatchStream,
    cfg: TrainConfig | Sequence[TrainConfig],
    fault: tuple[int, int] | None = None,
    keep_going: bool = False,
) -> list[History]:
    """Train the K members of ``ens`` for ``num_steps`` steps, member k on ``streams[k]``.

    ``cfg``: one TrainConfig for every member, or one per member (members may differ in
    alpha, ema_momentum and seed). ``streams`` may also be one stream already yielding
    stacked [K, B, ...] batches (e.g. ``StackedStream(..., members=...)``).
    The same step as ``training.train`` (encode target without grad -> encode context ->
    predict -> Eq. 8 per member -> backward of the *sum* -> AdamW -> EMA), with
    the same logging: returns one History per member. ``fault = (step, member)`` injects a
    NaN into that member's loss (tests). A non-finite member stops the run with
    ``EnsembleDiverged`` (checked every ``log_every`` steps, no per-step sync); with
    ``keep_going`` it is recorded instead (``History.diverged_at``, its history cut
    before that step) and the other members train on: members never mix, so a member's
    NaNs stay in its own slice of every tensor.
    """
    shared, momentum = member_configs(ens, cfg)
    if isinstance(streams, (list, tuple)):
        if len(streams) != ens.size:
            raise ValueError(
                f"streams must hold one stream per member: {ens.size} members, got {len(streams)} streams"
            )
        stream: BatchStream = StackedStream(streams)
    else:
        stream = streams
    inject = None
    if fault is not None:
        check_int("fault[1]", fault[1], 0, ens.size - 1)
        member = torch.tensor([fault[1]], device=next(ens.parameters()).device)
        inject = lambda step, total: (
            total.index_fill(0, member, float("nan")) if step == fault[0] else total
        )
    try:
        return run_steps(
            ens, stream, shared, inject, ema_momentum=momentum, keep_going=keep_going
        )
    except NonFiniteStep as err:
        raise EnsembleDiverged(err.step, err.histories, err.members, err.what) from None
