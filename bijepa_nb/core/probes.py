"""Evaluation probes (§4.1): Protocol A (encoder), Protocol B (forward predictor), a
backward protocol and closed-form least squares (the MNIST classification probe and
generative decoder are in ``bijepa_nb.experiments.mnist``).

The paper scores each probe on the data it was trained on (the probe set). Every function
here also scores on a held-out test set, which is the number the book trusts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import check_float, check_int
from .data import Split, first_target_step, last_context_step
from .models import JEPA, seeded


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
    model: JEPA, split: Split, protocol: str, horizon: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, targets) of a split for a protocol.

    "A": f(x) -> first target step.   "B": P_fwd(f(x)) -> first target step.
    "A_bwd": f(y) -> last context step.   "B_bwd": P_bwd(f(y)) -> last context step.
    ``horizon`` (A and B): read out the target step ``horizon`` steps ahead instead.
    """
    if protocol == "A":
        return model.encode(split.context), first_target_step(split.target, horizon)
    if protocol == "B":
        return model.predict_forward(split.context), first_target_step(
            split.target, horizon
        )
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

    Keys, the book's names everywhere (``f"{protocol}_{key}"`` in results files):
    ``adam_probeset`` (paper-style Adam probe, scored on its own training data, as the
    paper reports), ``adam_heldout`` (the same probe on the held-out test set),
    ``lstsq_heldout`` (closed-form least squares fitted on the probe set, scored on the
    test set).
    """
    device = next(model.parameters()).device
    f_tr, t_tr = protocol_features(model, probe_set.to(device), protocol)
    f_te, t_te = protocol_features(model, test_set.to(device), protocol)
    adam = adam_probe(f_tr, t_tr, epochs, lr, seed)
    ls = lstsq_probe(f_tr, t_tr)
    return {
        "adam_probeset": adam.mse(f_tr, t_tr),
        "adam_heldout": adam.mse(f_te, t_te),
        "lstsq_heldout": ls.mse(f_te, t_te),
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
