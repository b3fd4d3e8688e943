"""Encoders, predictors and the JEPA / BiJEPA model (§3, Appendix B.3).

One class, ``JEPA``, covers both methods: ``alpha = 1`` is classic JEPA (no backward
predictor is built, the loss is Eq. 4); ``alpha < 1`` is BiJEPA with the loss of Eq. 8.
The target encoder is an EMA copy of the online encoder (Eq. 5) that never receives
gradients.

Conv encoder and BatchNorm (a deliberate choice): the target encoder runs its BatchNorm
layers with *batch statistics* during training, like the online encoder (and like the
paper's code, where the deep-copied target shares the model's train mode). Its running
statistics are never updated by its own forward passes (BatchNorm momentum 0) and are
instead EMA-copied from the online encoder's buffers with the same momentum as the
weights, so the target in eval mode is usable too. A target in eval mode whose running
statistics were never updated gives outputs far from train mode (76% off, measured on this book's
build machine): this choice avoids that trap.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig, TrainConfig, check_float, resolve_device
from .data import stream_seed


def hidden_layer(d_in: int, d_out: int, layernorm: bool) -> list[nn.Module]:
    """Linear(d_in, d_out) -> [LayerNorm] -> ReLU: the block every MLP here is made of."""
    return (
        [nn.Linear(d_in, d_out)]
        + ([nn.LayerNorm(d_out)] if layernorm else [])
        + [nn.ReLU()]
    )


def mlp_encoder(cfg: ModelConfig) -> nn.Sequential:
    """Flattened input (input_dim) -> Linear(hidden) -> [LN] -> ReLU -> Linear(hidden) -> [LN] -> ReLU -> Linear(embed)."""
    ln, h = cfg.norm != "none", cfg.hidden_dim
    return nn.Sequential(
        *hidden_layer(cfg.input_dim, h, ln),
        *hidden_layer(h, h, ln),
        nn.Linear(h, cfg.embed_dim),
    )


def conv_encoder(cfg: ModelConfig) -> nn.Sequential:
    """Half image [B, 1, 28, 14] -> Conv(32, s2) BN ReLU -> Conv(64, s2) BN ReLU -> Linear(1792, hidden) [LN] ReLU -> Linear(embed)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 2, 1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, 2, 1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.Flatten(1),
        *hidden_layer(64 * 7 * 4, cfg.hidden_dim, cfg.norm != "none"),
        nn.Linear(cfg.hidden_dim, cfg.embed_dim),
    )


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global CPU generator seeded by ``seed``; its state before
    the block is restored after it (so seeded inits never disturb the caller's stream)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode for the block and restore each one's mode after it."""
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, w in zip(modules, was):
            m.train(w)


def run_sequential(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Apply the layers of ``seq`` by calling ``forward`` directly.

    Same result as ``seq(x)`` but skips the per-module hook machinery, which is a large
    share of a step for these tiny models (the book's models register no hooks).
    """
    for layer in seq:
        x = layer.forward(x)
    return x


class Encoder(nn.Module):
    """f(x): [B, ...] -> [B, embed_dim]; unit L2 norm in "sphere" mode (Eq. 9)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = mlp_encoder(cfg) if cfg.arch == "mlp" else conv_encoder(cfg)
        self.sphere = cfg.norm == "sphere"
        self.flatten = (
            cfg.arch == "mlp"
        )  # sequences [B, T] or [B, T, 3] -> [B, input_dim]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = run_sequential(self.net, x.flatten(1) if self.flatten else x)
        return F.normalize(s, dim=-1) if self.sphere else s


class Predictor(nn.Module):
    """P(s): [B, embed] -> Linear(pred_hidden) -> [LN] -> ReLU -> Linear(embed)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h = cfg.pred_hidden_dim
        self.net = nn.Sequential(
            *hidden_layer(cfg.embed_dim, h, cfg.norm != "none"),
            nn.Linear(h, cfg.embed_dim),
        )

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return run_sequential(self.net, s)


def embedding_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||pred - target||^2 averaged over batch and embedding dims (the paper's F.mse_loss): scalar."""
    return F.mse_loss(pred, target)


class JEPAStep(nn.Module):
    """The JEPA / BiJEPA training step, written once for one model (``JEPA``) and for K
    models batched along a leading dimension (``ensemble.Ensemble``).

    A subclass provides online_encoder, target_encoder, fwd_predictor, bwd_predictor (or
    None), ``_encode_both(encoder, x, y)`` (both views through one encoder),
    ``_member_loss(pred, target)`` (a scalar, or [K] per model), ``_alpha`` (a float, or
    [K]) and ``_bwd_mask`` (None, or [K] bool: members whose backward term counts).
    """

    _bwd_mask: torch.Tensor | None = None

    @property
    def bidirectional(self) -> bool:
        return self.bwd_predictor is not None

    def _encodings(
        self, context: torch.Tensor, target: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Everything of one step but the forward prediction: target_y, online_x (+ target_x, online_y, pred_x)."""
        out: dict[str, torch.Tensor] = {}
        with torch.no_grad():  # stop-gradient: the target encoder is never trained
            if self.bidirectional:
                out["target_x"], out["target_y"] = self._encode_both(
                    self.target_encoder, context, target
                )
            else:
                out["target_y"] = self.target_encoder(target)
        if self.bidirectional:
            out["online_x"], out["online_y"] = self._encode_both(
                self.online_encoder, context, target
            )
            out["pred_x"] = self.bwd_predictor(out["online_y"])  # type: ignore[misc]
        else:
            out["online_x"] = self.online_encoder(context)
        return out

    def forward_loss(self, emb: dict[str, torch.Tensor]) -> torch.Tensor:
        """The forward term of Eq. 8: predicts ``emb["pred_y"]`` from ``emb["online_x"]`` and scores it
        against ``emb["target_y"]``. Subclasses with another forward predictor override this."""
        emb["pred_y"] = self.fwd_predictor(emb["online_x"])
        return self._member_loss(emb["pred_y"], emb["target_y"])

    def embeddings(
        self, context: torch.Tensor, target: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """All embeddings of one step; keys online_x, target_y, pred_y (+ online_y, target_x, pred_x)."""
        out = self._encodings(context, target)
        out["pred_y"] = self.fwd_predictor(out["online_x"])
        return out

    def loss(
        self,
        context: torch.Tensor,
        target: torch.Tensor,
        return_embeddings: bool = False,
    ):
        """(total, fwd, bwd[, embeddings]): encode target (no grad) -> encode context -> predict
        -> Eq. 8, total = alpha * fwd + (1 - alpha) * bwd; bwd is 0 where there is no
        backward term. Uses the compiled step after ``compile()``."""
        fn = self.__dict__.get("_compiled") or self._loss
        return fn(context, target, return_embeddings)

    def _loss(
        self,
        context: torch.Tensor,
        target: torch.Tensor,
        return_embeddings: bool = False,
    ):
        emb = self._encodings(context, target)
        fwd = self.forward_loss(emb)
        if self.bidirectional:
            bwd = self._member_loss(emb["pred_x"], emb["target_x"])
            total = self._alpha * fwd + (1.0 - self._alpha) * bwd
            if self._bwd_mask is not None:
                bwd = torch.where(self._bwd_mask, bwd, torch.zeros_like(bwd))
        else:
            bwd = torch.zeros_like(fwd)
            total = fwd
        return (total, fwd, bwd, emb) if return_embeddings else (total, fwd, bwd)

    def compile(self, **kwargs) -> JEPAStep:
        """Use ``torch.compile`` for the loss and its backward (the optimiser and EMA stay eager).

        Pays a compile of tens of seconds once per architecture and batch shape; the
        arithmetic is fused, so losses agree with the eager step only to float rounding.
        """
        self.__dict__["_compiled"] = torch.compile(self._loss, dynamic=False, **kwargs)
        return self

    def _ema_pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(target tensors, online tensors) that the EMA averages: parameters and float buffers."""
        tp = list(self.target_encoder.parameters()) + [
            b for b in self.target_encoder.buffers() if b.is_floating_point()
        ]
        op = list(self.online_encoder.parameters()) + [
            b for b in self.online_encoder.buffers() if b.is_floating_point()
        ]
        return tp, op

    @torch.no_grad()
    def ema_update(self, ema_momentum: float | torch.Tensor) -> None:
        """target <- m * target + (1 - m) * online with m = ``ema_momentum`` (Eq. 5, τ in
        the paper), one foreach call.

        ema_momentum: a float, or a [K] tensor giving each of K batched models its own.
        """
        tp, op = self._ema_pairs()
        if isinstance(ema_momentum, torch.Tensor):
            w = (1.0 - ema_momentum).to(tp[0])
            torch._foreach_lerp_(
                tp, op, [w.view(-1, *[1] * (t.dim() - 1)).expand_as(t) for t in tp]
            )
        else:
            torch._foreach_lerp_(tp, op, 1.0 - ema_momentum)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Online encoder and predictor parameters (the target encoder is excluded)."""
        mods = [self.online_encoder, self.fwd_predictor] + (
            [self.bwd_predictor] if self.bwd_predictor is not None else []
        )
        return [p for m in mods for p in m.parameters()]


class JEPA(JEPAStep):
    """Classic JEPA (alpha = 1) or BiJEPA (alpha < 1) with shared online/target encoders.

    Attributes: online_encoder, target_encoder (EMA, no grad), fwd_predictor (x -> y),
    bwd_predictor (y -> x; None when alpha = 1). The step itself is ``JEPAStep``'s.
    """

    def __init__(self, cfg: ModelConfig, alpha: float = 0.5):
        super().__init__()
        check_float("alpha", alpha, 0.0, 1.0)
        self.cfg, self.alpha = cfg, float(alpha)
        self.online_encoder = Encoder(cfg)
        self.fwd_predictor = Predictor(cfg)
        self.bwd_predictor = Predictor(cfg) if self.alpha < 1.0 else None
        self.target_encoder = copy.deepcopy(self.online_encoder)
        for p in self.target_encoder.parameters():
            p.requires_grad_(False)
        for m in self.target_encoder.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = (
                    0.0  # running stats come from the EMA, not from target forwards
                )
        # One encoder call on cat([x, y]) is exact (and faster) unless BatchNorm mixes the batch.
        self._concat_views = cfg.arch == "mlp"
        self._ema_cache: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None

    @property
    def _alpha(self) -> float:
        return self.alpha

    @staticmethod
    def _member_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return embedding_loss(pred, target)

    def _encode_both(
        self, encoder: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self._concat_views:
            s = encoder(torch.cat((x, y)))
            return s[: x.shape[0]], s[x.shape[0] :]
        return encoder(x), encoder(y)

    def _ema_pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if self._ema_cache is None:
            self._ema_cache = super()._ema_pairs()
        return self._ema_cache

    def _apply(
        self, fn, recurse=True
    ):  # .to(device) etc. replace tensors: drop the cache
        self._ema_cache = None
        return super()._apply(fn, recurse)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen online-encoder features s_x = f(x) in eval mode: [N, embed]."""
        with eval_mode(self):
            return self.online_encoder(x)

    @torch.no_grad()
    def predict_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted target embedding P_fwd(f(x)) in eval mode: [N, embed]."""
        return self._frozen(lambda: self.fwd_predictor(self.online_encoder(x)))

    @torch.no_grad()
    def predict_backward(self, y: torch.Tensor) -> torch.Tensor:
        """Predicted context embedding P_bwd(f(y)) in eval mode: [N, embed] (BiJEPA only)."""
        if self.bwd_predictor is None:
            raise ValueError(
                "predict_backward needs a backward predictor: this model has alpha = 1 (classic JEPA)"
            )
        return self._frozen(lambda: self.bwd_predictor(self.online_encoder(y)))  # type: ignore[misc]

    def _frozen(self, fn):
        with eval_mode(self):
            return fn()


def build_model(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    device: torch.device | str | None = None,
    cls: type[JEPA] | None = None,
    **kwargs,
) -> JEPA:
    """A freshly initialised JEPA for ``train_cfg``: its alpha and seed come from the
    TrainConfig (the one place they are declared); the init depends only on the seed (and
    the model config). ``device`` defaults to ``train_cfg.device`` ("auto": CUDA if present).

    ``cls`` (default ``JEPA``) and ``kwargs`` build a subclass instead, e.g. the
    stochastic model of ``bijepa_nb.experiments.stochastic``, from the same random stream, so the
    parts it shares with a plain JEPA start with the same weights.
    """

    if not isinstance(train_cfg, TrainConfig):
        raise TypeError(
            "train_cfg must be a TrainConfig (it carries alpha and seed), "
            f"got {type(train_cfg).__name__} {train_cfg!r}"
        )
    dev = resolve_device(train_cfg.device) if device is None else device
    with seeded(stream_seed(train_cfg.seed, "model")):
        model = (cls or JEPA)(model_cfg, train_cfg.alpha, **kwargs)
    return model.to(dev)
