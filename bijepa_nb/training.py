"""One training entry point, ``train``, for classic JEPA and BiJEPA.

The step reads as the method: encode target (no grad) -> encode context -> predict ->
loss (Eq. 8) -> optimiser step -> EMA update (Eq. 5). Losses stay on the device as
tensors (no ``.item()`` per step); finiteness is checked every ``log_every``
steps, and a non-finite loss or embedding stops training with ``TrainingDiverged``
naming the first bad step and carrying the history up to it.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from .config import TrainConfig, resolve_device
from .models import JEPA
from .optim import FlatAdamW


class BatchStream(Protocol):
    def next(self) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class History:
    """Per-step losses and periodic embedding norms of one run.

    total, fwd, bwd: [num_steps] float arrays (bwd is 0 for classic JEPA).
    norm_steps: steps at which norms were logged; online_norm / target_norm: mean L2 norm
    of the online context embedding f(x) and of the target embedding f_bar(y) there.
    """

    total: np.ndarray
    fwd: np.ndarray
    bwd: np.ndarray
    norm_steps: np.ndarray
    online_norm: np.ndarray
    target_norm: np.ndarray
    config: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.total)

    def tail_mean(self, n: int = 100) -> dict[str, float]:
        """Mean of the last ``n`` steps of each loss."""
        return {k: float(np.mean(getattr(self, k)[-n:])) for k in ("total", "fwd", "bwd")}


class TrainingDiverged(RuntimeError):
    """Raised when a loss or embedding becomes non-finite; ``.step`` and ``.history`` (steps before it)."""

    def __init__(self, step: int, history: History, what: str):
        self.step, self.history = step, history
        super().__init__(f"training diverged at step {step}: {what} became non-finite; the {step} steps before it are in .history")


def _progress(total: int, enabled: bool):
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm.auto import tqdm

    return tqdm(total=total, leave=False, mininterval=0.5)


@contextlib.contextmanager
def torch_threads(n: int, device: torch.device):
    """Temporarily use ``n`` intra-op CPU threads (only on the CPU)."""
    if device.type != "cpu":
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def make_optimizer(model: JEPA, cfg: TrainConfig) -> FlatAdamW:
    """AdamW over the online encoder and predictors (not the target encoder), as one flat buffer."""
    return FlatAdamW(model.trainable_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def train(model: JEPA, stream: BatchStream, cfg: TrainConfig, fault_step: int | None = None) -> History:
    """Train ``model`` for ``cfg.num_steps`` steps on batches from ``stream``; returns the History.

    The model must have been built with ``alpha == cfg.alpha``. ``fault_step`` (for tests
    and the stability chapter) injects a NaN into the loss at that step.
    Raises TrainingDiverged when the loss or an embedding becomes non-finite.
    """
    if abs(model.alpha - cfg.alpha) > 0:
        raise ValueError(f"alpha of the model ({model.alpha}) and of the TrainConfig ({cfg.alpha}) differ")
    device = next(model.parameters()).device
    requested = resolve_device(cfg.device)
    if requested.type != device.type:
        raise ValueError(f"device: the model is on {device} but TrainConfig.device resolves to {requested}")
    n, k = cfg.num_steps, cfg.log_every
    step_losses: list[torch.Tensor] = []  # one [3] tensor per step, stacked when read
    norm_steps = list(range(0, n, k))
    norms = torch.zeros(len(norm_steps), 2, device=device)
    opt = make_optimizer(model, cfg)
    model.train()

    def history(upto: int, norms_upto: int) -> History:
        l = (torch.stack(step_losses[:upto]) if upto else torch.zeros(0, 3)).double().cpu().numpy()
        nm = norms[:norms_upto].double().cpu().numpy()
        return History(l[:, 0], l[:, 1], l[:, 2], np.asarray(norm_steps[:norms_upto]), nm[:, 0], nm[:, 1], cfg.to_dict())

    checked = [0]  # steps already verified finite

    def check(upto: int, norms_upto: int) -> None:
        new = step_losses[checked[0] : upto]
        bad_loss = ~torch.isfinite(torch.stack(new)).all(dim=1) if new else torch.zeros(0, dtype=torch.bool)
        bad_norm = ~torch.isfinite(norms[:norms_upto]).all(dim=1)
        if bool(bad_loss.any()) or bool(bad_norm.any()):
            first_loss = checked[0] + int(bad_loss.nonzero()[0]) if bad_loss.any() else n
            first_norm = norm_steps[int(bad_norm.nonzero()[0])] if bad_norm.any() else n
            step = min(first_loss, first_norm)
            what = "the loss" if first_loss <= first_norm else "an embedding"
            raise TrainingDiverged(step, history(step, sum(s < step for s in norm_steps)), what)
        checked[0] = upto

    with torch_threads(cfg.num_threads, device), _progress(n, cfg.progress) as bar:
        j = 0
        for step in range(n):
            context, target = stream.next()
            log_norms = step % k == 0
            total, fwd, bwd, *emb = model.loss(context, target, return_embeddings=log_norms)
            if fault_step is not None and step == fault_step:
                total = total * float("nan")
            opt.zero_grad()
            total.backward()
            opt.step()
            model.ema_update(cfg.ema_momentum)
            step_losses.append(torch.stack((total, fwd, bwd)).detach())
            if log_norms:
                e = emb[0]
                norms[j] = torch.stack((e["online_x"].detach().norm(dim=-1).mean(), e["target_y"].norm(dim=-1).mean()))
                j += 1
                check(step + 1, j)
                if bar is not None:
                    bar.update(k if step + k <= n else n - step)
        check(n, j)
    return history(n, j)
