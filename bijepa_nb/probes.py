"""Evaluation probes (§4.1): Protocol A (encoder), Protocol B (forward predictor), a
backward protocol, closed-form least squares, and the MNIST classification probe and
generative decoder.

The paper scores each probe on the data it was trained on (the probe set). Every function
here also scores on a held-out test set, which is the number the book trusts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import check_float, check_int
from .data import Split, first_target_step, last_context_step, make_generator
from .models import JEPA, eval_mode, seeded


@dataclass
class LinearProbe:
    """y_hat = features @ weight.T + bias; weight [D_out, D_in], bias [D_out]."""

    weight: torch.Tensor
    bias: torch.Tensor

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.weight.T + self.bias

    def mse(self, features: torch.Tensor, targets: torch.Tensor) -> float:
        return float(F.mse_loss(self(features), targets))


def adam_probe(
    features: torch.Tensor,
    targets: torch.Tensor,
    epochs: int = 100,
    lr: float = 0.01,
    seed: int = 0,
) -> LinearProbe:
    """The paper's probe: nn.Linear trained full-batch with Adam (lr 0.01) for ``epochs`` epochs.

    features [N, D_in], targets [N, D_out]. Initialisation is seeded (``seed``).
    """
    check_int("epochs", epochs, 1)
    check_float("lr", lr, 0.0, None, low_open=True)
    features, targets = features.detach(), targets.detach()
    with seeded(seed):
        lin = nn.Linear(features.shape[1], targets.shape[1]).to(features)
    opt = torch.optim.Adam(lin.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(epochs):
            loss = F.mse_loss(lin(features), targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return LinearProbe(lin.weight.detach().clone(), lin.bias.detach().clone())


def lstsq_probe(
    features: torch.Tensor, targets: torch.Tensor, ridge: float = 0.0
) -> LinearProbe:
    """Closed-form (optionally ridge) least squares with a bias, solved in float64.

    features [N, D_in], targets [N, D_out]. ``ridge`` penalises the weights, not the bias.
    """
    check_float("ridge", ridge, 0.0)
    x = features.detach().double()
    y = targets.detach().double()
    xm, ym = x.mean(0), y.mean(0)
    xc, yc = x - xm, y - ym
    gram = xc.T @ xc + ridge * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    w = torch.linalg.lstsq(
        gram, xc.T @ yc
    ).solution  # [D_in, D_out]; lstsq handles rank deficiency
    b = ym - xm @ w
    return LinearProbe(w.T.to(features.dtype), b.to(features.dtype))


def protocol_features(
    model: JEPA, split: Split, protocol: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, targets) of a split for a protocol.

    "A": f(x) -> first target step.   "B": P_fwd(f(x)) -> first target step.
    "A_bwd": f(y) -> last context step.   "B_bwd": P_bwd(f(y)) -> last context step.
    """
    if protocol == "A":
        return model.encode(split.context), first_target_step(split.target)
    if protocol == "B":
        return model.predict_forward(split.context), first_target_step(split.target)
    if protocol == "A_bwd":
        return model.encode(split.target), last_context_step(split.context)
    if protocol == "B_bwd":
        return model.predict_backward(split.target), last_context_step(split.context)
    raise ValueError(
        f"protocol must be one of 'A', 'B', 'A_bwd', 'B_bwd', got {protocol!r}"
    )


def protocol_scores(
    model: JEPA,
    probe_set: Split,
    test_set: Split,
    protocol: str,
    epochs: int = 100,
    lr: float = 0.01,
    seed: int = 0,
) -> dict[str, float]:
    """MSE of one protocol, in the data's (normalised) units.

    Keys: ``probe`` (paper-style Adam probe, scored on its own training data, as the paper
    reports), ``test`` (the same probe on the held-out test set), ``lstsq_test``
    (closed-form least squares fitted on the probe set, scored on the test set).
    """
    device = next(model.parameters()).device
    f_tr, t_tr = protocol_features(model, probe_set.to(device), protocol)
    f_te, t_te = protocol_features(model, test_set.to(device), protocol)
    adam = adam_probe(f_tr, t_tr, epochs, lr, seed)
    ls = lstsq_probe(f_tr, t_tr)
    return {
        "probe": adam.mse(f_tr, t_tr),
        "test": adam.mse(f_te, t_te),
        "lstsq_test": ls.mse(f_te, t_te),
    }


def evaluate(
    model: JEPA, probe_set: Split, test_set: Split, epochs: int = 100, seed: int = 0
) -> dict[str, dict[str, float]]:
    """All protocols of a model: A, B, A_bwd, and B_bwd when the model is bidirectional."""
    protos = ["A", "B", "A_bwd"] + (["B_bwd"] if model.bidirectional else [])
    return {
        p: protocol_scores(model, probe_set, test_set, p, epochs=epochs, seed=seed)
        for p in protos
    }


# ------------------------------------------------------------------------- MNIST
@torch.no_grad()
def batched_encode(
    model: JEPA, images: torch.Tensor, batch_size: int = 2048
) -> torch.Tensor:
    """Frozen online-encoder features of many half images [N, 1, 28, 14] -> [N, embed]."""
    device = next(model.parameters()).device
    return torch.cat(
        [model.encode(chunk.to(device)) for chunk in images.split(batch_size)]
    )


def fit_minibatch(
    params: Iterable[nn.Parameter],
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    epochs: int,
    batch_size: int,
    lr: float,
    gen: torch.Generator,
    device: torch.device | str,
    min_batch: int = 1,
    after_epoch: Callable[[int], None] | None = None,
) -> None:
    """The mini-batch Adam loop of every MNIST read-out (probe, decoder, supervised).

    Each epoch draws a permutation of ``n`` indices from ``gen`` and splits it into
    batches of ``batch_size``: ``batch_loss(idx)`` (idx [b] on ``device``) -> scalar loss
    -> backward -> Adam step. Batches smaller than ``min_batch`` are skipped (BatchNorm
    needs two samples); ``after_epoch(epoch)`` (1-based) runs after each epoch.
    """
    check_int("epochs", epochs, 1)
    check_int("batch_size", batch_size, 1)
    opt = torch.optim.Adam(params, lr=lr)
    with torch.enable_grad():
        for epoch in range(1, epochs + 1):
            for idx in torch.randperm(n, generator=gen).to(device).split(batch_size):
                if len(idx) < min_batch:
                    continue
                loss = batch_loss(idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if after_epoch is not None:
                after_epoch(epoch)


def classification_probe(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    eval_feats: torch.Tensor,
    eval_labels: torch.Tensor,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 0.01,
    seed: int = 0,
    record: Sequence[int] = (),
) -> dict[str, Any]:
    """Linear classifier on frozen features (Adam, mini-batches, as the paper's code).

    Returns train accuracy and held-out accuracy (fractions in [0, 1]). ``record``: epochs
    after which both are also measured, returned as ``curve`` {epoch: (train, held-out)};
    the value at epoch e equals that of a run with ``epochs=e`` (same random stream).
    """
    check_int("epochs", epochs, 1)
    n_cls = int(max(train_labels.max(), eval_labels.max())) + 1
    gen = make_generator(seed, "extra")
    with seeded(seed):
        lin = nn.Linear(train_feats.shape[1], n_cls).to(train_feats.device)
    acc = lambda f, y: float((lin(f).argmax(1) == y).float().mean())
    curve: dict[int, tuple[float, float]] = {}

    def measure(epoch: int) -> None:
        if epoch in record:
            with torch.no_grad():
                curve[epoch] = (
                    acc(train_feats, train_labels),
                    acc(eval_feats, eval_labels),
                )

    fit_minibatch(
        lin.parameters(),
        lambda idx: F.cross_entropy(lin(train_feats[idx]), train_labels[idx]),
        len(train_labels),
        epochs,
        batch_size,
        lr,
        gen,
        train_feats.device,
        after_epoch=measure,
    )
    with torch.no_grad():
        out: dict[str, Any] = {
            "train_acc": acc(train_feats, train_labels),
            "eval_acc": acc(eval_feats, eval_labels),
        }
    if record:
        out["curve"] = curve
    return out


class GenerativeDecoder(nn.Module):
    """Embedding [B, D] -> right half in [0, 1] pixel units [B, 1, 28, 14] (the paper's decoder)."""

    def __init__(self, embed_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embed_dim, 256),
            nn.BatchNorm1d(256),
            nn.ReLU(),
            nn.Linear(256, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(),
            nn.Linear(512, 28 * 14),
            nn.Sigmoid(),
        )

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.net(s).view(-1, 1, 28, 14)


def decoder_probe(
    train_feats: torch.Tensor,
    train_right: torch.Tensor,
    eval_feats: torch.Tensor,
    eval_right: torch.Tensor,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    record: Sequence[int] = (),
) -> tuple[GenerativeDecoder, dict[str, Any]]:
    """Train the generative decoder on frozen left-half features to output the right half.

    *_right: right halves in [0, 1] pixel units [N, 1, 28, 14]. Returns the decoder (eval
    mode) and train / held-out pixel MSE; ``record`` as in ``classification_probe``
    (``curve`` {epoch: (train MSE, held-out MSE)}).
    """
    check_int("epochs", epochs, 1)
    gen = make_generator(seed, "extra")
    with seeded(seed):
        dec = GenerativeDecoder(train_feats.shape[1]).to(train_feats.device)
    mse = lambda f, y: float(F.mse_loss(dec(f), y))
    curve: dict[int, tuple[float, float]] = {}

    def measure(epoch: int) -> None:
        if epoch in record:
            with eval_mode(dec), torch.no_grad():
                curve[epoch] = (
                    mse(train_feats, train_right),
                    mse(eval_feats, eval_right),
                )

    dec.train()
    fit_minibatch(
        dec.parameters(),
        lambda idx: F.mse_loss(dec(train_feats[idx]), train_right[idx]),
        len(train_feats),
        epochs,
        batch_size,
        lr,
        gen,
        train_feats.device,
        min_batch=2,  # BatchNorm1d needs two samples
        after_epoch=measure,
    )
    dec.eval()
    with torch.no_grad():
        out: dict[str, Any] = {
            "train_mse": mse(train_feats, train_right),
            "eval_mse": mse(eval_feats, eval_right),
        }
    if record:
        out["curve"] = curve
    return dec, out


def right_half_pixels(images: torch.Tensor, split_col: int = 14) -> torch.Tensor:
    """uint8 [N, 28, 28] -> right halves in [0, 1]: [N, 1, 28, 14]."""
    return (images.float() / 255.0).unsqueeze(1)[..., split_col:].contiguous()
