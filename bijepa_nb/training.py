"""One training entry point, ``train``, for classic JEPA and BiJEPA.

The step reads as the method: encode target (no grad) -> encode context -> predict ->
loss (Eq. 8) -> optimiser step -> EMA update (Eq. 5). Losses stay on the device as
tensors (no ``.item()`` per step); finiteness is checked every ``log_every``
steps, and a non-finite loss or embedding stops training with ``TrainingDiverged``
naming the first bad step and carrying the history up to it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
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
    diverged_at: set (and the arrays cut before it) when an ensemble member became
    non-finite and the others trained on (``train_ensemble(..., keep_going=True)``).
    """

    total: np.ndarray
    fwd: np.ndarray
    bwd: np.ndarray
    norm_steps: np.ndarray
    online_norm: np.ndarray
    target_norm: np.ndarray
    config: dict = field(default_factory=dict)
    diverged_at: int | None = (
        None  # first non-finite step of an ensemble member trained on
    )

    def __len__(self) -> int:
        return len(self.total)

    def tail_mean(self, n: int = 100) -> dict[str, float]:
        """Mean of the last ``n`` steps of each loss."""
        return {
            k: float(np.mean(getattr(self, k)[-n:])) for k in ("total", "fwd", "bwd")
        }


class TrainingDiverged(RuntimeError):
    """Raised when a loss or embedding becomes non-finite; ``.step`` and ``.history`` (steps before it)."""

    def __init__(self, step: int, history: History, what: str):
        self.step, self.history = step, history
        super().__init__(
            f"training diverged at step {step}: {what} became non-finite; the {step} steps before it are in .history"
        )


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
    return FlatAdamW(
        model.trainable_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
    )


class NonFiniteStep(Exception):
    """Raised by ``run_steps``: ``step`` (first bad step), ``what`` ("the loss" or "an
    embedding"), ``members`` (indices of the bad models, [0] for one model) and
    ``histories`` (every model's history before ``step``)."""

    def __init__(
        self, step: int, what: str, members: list[int], histories: list[History]
    ):
        super().__init__(
            f"step {step}: {what} of member(s) {members} became non-finite"
        )
        self.step, self.what, self.members, self.histories = (
            step,
            what,
            members,
            histories,
        )


def run_steps(
    model,
    stream: BatchStream,
    cfg: TrainConfig,
    fault: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
    ema_momentum: float | torch.Tensor | None = None,
    keep_going: bool = False,
) -> list[History]:
    """The training loop shared by ``train`` (one JEPA) and ``ensemble.train_ensemble`` (K at once).

    ``model.loss(context, target, return_embeddings)`` returns (total, fwd, bwd[, emb]) as
    scalars for one model or [K] tensors for an ensemble; embeddings are [B, D] or
    [K, B, D]. Each step: batch -> loss (Eq. 8) -> backward of the (summed) total ->
    AdamW -> EMA with ``ema_momentum`` (default ``cfg.ema_momentum``; a [K] tensor gives
    each member its own). Losses stay on the device; finiteness is checked every
    ``cfg.log_every`` steps. ``fault(step, total)`` may replace the total (tests inject
    NaNs). Returns one History per model; raises NonFiniteStep, unless ``keep_going``:
    then a non-finite member is recorded (``History.diverged_at``) and the rest go on.
    """
    device = next(model.parameters()).device
    n, k = cfg.num_steps, cfg.log_every
    momentum = cfg.ema_momentum if ema_momentum is None else ema_momentum
    step_losses: list[torch.Tensor] = []  # one [3, *M] tensor per step (M: () or (K,))
    norm_steps = list(range(0, n, k))
    norms: torch.Tensor | None = None  # [logs, 2, *M], allocated at the first log
    opt = make_optimizer(model, cfg)
    model.train()
    dead: dict[int, int] = {}  # member -> first non-finite step (keep_going)

    def histories(upto: int, norms_upto: int) -> list[History]:
        size = step_losses[0][0].numel()  # 1 model, or K
        l = (
            (torch.stack(step_losses[:upto]) if upto else torch.zeros(0, 3, size))
            .double()
            .cpu()
            .reshape(upto, 3, size)
            .numpy()
        )
        nm = norms[:norms_upto].double().cpu().reshape(norms_upto, 2, size).numpy()  # type: ignore[index]
        steps = np.asarray(norm_steps[:norms_upto])
        out = []
        for i in range(size):
            cut, logs = dead.get(i, upto), norms_upto
            if i in dead:
                logs = sum(s < cut for s in norm_steps[:norms_upto])
            out.append(
                History(
                    l[:cut, 0, i],
                    l[:cut, 1, i],
                    l[:cut, 2, i],
                    steps[:logs],
                    nm[:logs, 0, i],
                    nm[:logs, 1, i],
                    cfg.to_dict(),
                    dead.get(i),
                )
            )
        return out

    checked = [0]  # steps already verified finite

    def check(upto: int, norms_upto: int) -> None:
        new = step_losses[checked[0] : upto]
        bad_loss = (
            (~torch.isfinite(torch.stack(new)).all(dim=1)).reshape(len(new), -1)
            if new
            else torch.zeros(0, 1, dtype=torch.bool)
        )  # [steps, M]
        bad_norm = (~torch.isfinite(norms[:norms_upto]).all(dim=1)).reshape(
            norms_upto, -1
        )  # type: ignore[index]  # [logs, M]
        if dead:  # members already recorded stay out of the check
            alive = torch.ones(bad_loss.shape[1], dtype=torch.bool)
            alive[list(dead)] = False
            bad_loss, bad_norm = (
                bad_loss & alive.to(bad_loss.device),
                bad_norm & alive.to(bad_norm.device),
            )
        if bool(bad_loss.any()) or bool(bad_norm.any()):
            if keep_going:
                for m in range(bad_loss.shape[1]):
                    hit = (
                        [checked[0] + int(bad_loss[:, m].nonzero()[0])]
                        if bad_loss[:, m].any()
                        else []
                    )
                    hit += (
                        [norm_steps[int(bad_norm[:, m].nonzero()[0])]]
                        if bad_norm[:, m].any()
                        else []
                    )
                    if hit:
                        dead[m] = min(hit)
                checked[0] = upto
                return
            first_loss = (
                checked[0] + int(bad_loss.any(1).nonzero()[0]) if bad_loss.any() else n
            )
            first_norm = (
                norm_steps[int(bad_norm.any(1).nonzero()[0])] if bad_norm.any() else n
            )
            step = min(first_loss, first_norm)
            if first_loss <= first_norm:
                what, bad = "the loss", bad_loss[first_loss - checked[0]]
            else:
                what, bad = "an embedding", bad_norm[norm_steps.index(first_norm)]
            raise NonFiniteStep(
                step,
                what,
                bad.nonzero().flatten().tolist(),
                histories(step, sum(s < step for s in norm_steps)),
            )
        checked[0] = upto

    with torch_threads(cfg.num_threads, device), _progress(n, cfg.progress) as bar:
        j = 0
        for step in range(n):
            context, target = stream.next()
            log_norms = step % k == 0
            total, fwd, bwd, *emb = model.loss(
                context, target, return_embeddings=log_norms
            )
            if fault is not None:
                total = fault(step, total)
            opt.zero_grad()
            (
                total if total.dim() == 0 else total.sum()
            ).backward()  # an ensemble sums its members: each gradient is its own
            opt.step()
            model.ema_update(momentum)
            step_losses.append(torch.stack((total, fwd, bwd)).detach())
            if log_norms:
                e = emb[0]
                row = torch.stack(
                    (
                        e["online_x"].detach().norm(dim=-1).mean(-1),
                        e["target_y"].norm(dim=-1).mean(-1),
                    )
                )
                if norms is None:
                    norms = torch.zeros(len(norm_steps), *row.shape, device=device)
                norms[j] = row
                j += 1
                check(step + 1, j)
                if bar is not None:
                    bar.update(k if step + k <= n else n - step)
        check(n, j)
    return histories(n, j)


def train(
    model: JEPA, stream: BatchStream, cfg: TrainConfig, fault_step: int | None = None
) -> History:
    """Train ``model`` for ``cfg.num_steps`` steps on batches from ``stream``; returns the History.

    The model must have been built with ``alpha == cfg.alpha``. ``fault_step`` (for tests
    and the stability chapter) injects a NaN into the loss at that step.
    Raises TrainingDiverged when the loss or an embedding becomes non-finite.
    """
    if abs(model.alpha - cfg.alpha) > 0:
        raise ValueError(
            f"alpha of the model ({model.alpha}) and of the TrainConfig ({cfg.alpha}) differ"
        )
    device = next(model.parameters()).device
    requested = resolve_device(cfg.device)
    if requested.type != device.type:
        raise ValueError(
            f"device: the model is on {device} but TrainConfig.device resolves to {requested}"
        )
    fault = (
        None
        if fault_step is None
        else (lambda step, total: total * float("nan") if step == fault_step else total)
    )
    try:
        return run_steps(model, stream, cfg, fault)[0]
    except NonFiniteStep as err:
        raise TrainingDiverged(err.step, err.histories[0], err.what) from None
