"""One training entry point, ``train``, for classic JEPA and BiJEPA.

``train_step`` is the method and nothing else: encode target (no grad) -> encode
context -> predict -> loss (Eq. 8) -> backward -> AdamW -> EMA update (Eq. 5).
``run_steps`` calls it ``num_steps`` times beside a ``RunLog``, the bookkeeping: losses
stay on the device as tensors (no ``.item()`` per step), embedding norms and the
finiteness check come every ``log_every`` steps, and a non-finite loss or embedding
stops training with ``TrainingDiverged`` naming the first bad step and carrying the
history up to it.
"""

from __future__ import annotations

import contextlib
import functools
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

    def norm_growth(self, start: float = 0.25) -> float:
        """How much the mean online embedding norm grew from fraction ``start`` of the
        logged steps to the last: norm at the end / norm at ``start`` (1 when flat)."""
        if not 0.0 <= start <= 1.0:
            raise ValueError(f"start must be in [0, 1], got {start!r}")
        norms = np.asarray(self.online_norm, dtype=float)
        if len(norms) < 2:
            raise ValueError("history must hold at least two logged norms")
        return float(norms[-1] / norms[min(int(start * len(norms)), len(norms) - 1)])


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


def train_step(
    model,
    opt: FlatAdamW,
    context: torch.Tensor,
    target: torch.Tensor,
    ema_momentum: float | torch.Tensor,
    return_embeddings: bool = False,
    fault: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
    """One step of the method, nothing else: batch -> loss -> backward -> AdamW -> EMA.

    context, target: [B, ...] for one model, [K, B, ...] for an ensemble. ``model.loss``
    encodes the target (no grad), encodes the context and predicts (Eq. 8); an ensemble's
    K losses are summed for the backward pass, so each member's gradient is its own.
    ``ema_momentum``: a float, or [K] (one per member). ``fault(total)`` may replace the
    total before the backward pass (tests inject NaNs). Returns the detached losses
    [3, *M] (total, fwd, bwd; M is () or (K,)) and, with ``return_embeddings``, the
    step's embeddings (else None).
    """
    total, fwd, bwd, *emb = model.loss(
        context, target, return_embeddings=return_embeddings
    )
    if fault is not None:
        total = fault(total)
    opt.zero_grad()
    (total if total.dim() == 0 else total.sum()).backward()
    opt.step()
    model.ema_update(ema_momentum)
    return torch.stack((total, fwd, bwd)).detach(), (emb[0] if emb else None)


class RunLog:
    """The bookkeeping of a run, kept apart from the step: losses of every step and
    embedding norms every ``cfg.log_every`` steps, all on the device (no sync per step);
    ``check()`` verifies finiteness; ``histories()`` turns the records into Histories.

    Records: ``losses`` [num_steps, 3, *M] and ``norms`` [logs, 2, *M] (mean L2 norm of
    the online context embedding and of the target embedding), each allocated once at
    its first record and filled in place: a small tensor kept per step would pin freed
    memory between the steps' temporaries (RSS grew ~3 MB per step at K = 88). With ``keep_going`` a non-finite member is recorded in ``dead`` (member ->
    first bad step) instead of raising NonFiniteStep.
    """

    def __init__(self, cfg: TrainConfig, keep_going: bool = False):
        self.cfg, self.keep_going = cfg, keep_going
        self.norm_steps = list(range(0, cfg.num_steps, cfg.log_every))
        self.losses: torch.Tensor | None = None
        self.steps = 0  # rows of ``losses`` filled
        self.norms: torch.Tensor | None = None
        self.logged = 0  # rows of ``norms`` filled
        self.checked = 0  # steps already verified finite
        self.dead: dict[int, int] = {}

    def is_log_step(self, step: int) -> bool:
        return step % self.cfg.log_every == 0

    def add_losses(self, losses: torch.Tensor) -> None:
        if self.losses is None:
            shape = (self.cfg.num_steps, *losses.shape)
            self.losses = torch.empty(shape, dtype=losses.dtype, device=losses.device)
        self.losses[self.steps] = losses
        self.steps += 1

    def add_norms(self, emb: dict[str, torch.Tensor]) -> None:
        """Store the mean norms of ``emb["online_x"]`` and ``emb["target_y"]`` ([*M, B, D])."""
        row = torch.stack(
            (
                emb["online_x"].detach().norm(dim=-1).mean(-1),
                emb["target_y"].norm(dim=-1).mean(-1),
            )
        )
        if self.norms is None:
            shape = (len(self.norm_steps), *row.shape)
            self.norms = torch.zeros(shape, device=row.device)
        self.norms[self.logged] = row
        self.logged += 1

    def check(self) -> None:
        """Verify the steps recorded since the last check and every logged norm; raise
        NonFiniteStep at the first non-finite one (or, with ``keep_going``, record it)."""
        upto, logs = self.steps, self.logged
        bad_loss = (
            (~torch.isfinite(self.losses[self.checked : upto]).all(dim=1)).reshape(
                upto - self.checked, -1
            )
            if upto > self.checked
            else torch.zeros(0, 1, dtype=torch.bool)
        )  # [steps, M]
        norms = self.norms[:logs]  # type: ignore[index]
        bad_norm = (~torch.isfinite(norms).all(dim=1)).reshape(logs, -1)  # [logs, M]
        if self.dead:  # members already recorded stay out of the check
            alive = torch.ones(bad_loss.shape[1], dtype=torch.bool)
            alive[list(self.dead)] = False
            bad_loss = bad_loss & alive.to(bad_loss.device)
            bad_norm = bad_norm & alive.to(bad_norm.device)
        if bool(bad_loss.any()) or bool(bad_norm.any()):
            if not self.keep_going:
                self._raise(bad_loss, bad_norm)
            for m in range(bad_loss.shape[1]):
                hit = []
                if bad_loss[:, m].any():
                    hit.append(self.checked + int(bad_loss[:, m].nonzero()[0]))
                if bad_norm[:, m].any():
                    hit.append(self.norm_steps[int(bad_norm[:, m].nonzero()[0])])
                if hit:
                    self.dead[m] = min(hit)
        self.checked = upto

    def _raise(self, bad_loss: torch.Tensor, bad_norm: torch.Tensor) -> None:
        n = self.cfg.num_steps
        first_loss = (
            self.checked + int(bad_loss.any(1).nonzero()[0]) if bad_loss.any() else n
        )
        first_norm = (
            self.norm_steps[int(bad_norm.any(1).nonzero()[0])] if bad_norm.any() else n
        )
        step = min(first_loss, first_norm)
        if first_loss <= first_norm:
            what, bad = "the loss", bad_loss[first_loss - self.checked]
        else:
            what, bad = "an embedding", bad_norm[self.norm_steps.index(first_norm)]
        logs = sum(s < step for s in self.norm_steps)
        raise NonFiniteStep(
            step, what, bad.nonzero().flatten().tolist(), self.histories(step, logs)
        )

    def histories(self, upto: int | None = None, logs: int | None = None):
        """One History per model from the first ``upto`` steps (default: all recorded)
        and first ``logs`` norm rows; a member in ``dead`` is cut before its bad step."""
        upto = self.steps if upto is None else upto
        logs = self.logged if logs is None else logs
        size = self.losses[0][0].numel()  # type: ignore[index] # 1 model, or K
        l = self.losses[:upto].double().cpu().reshape(upto, 3, size).numpy()  # type: ignore[index]
        nm = self.norms[:logs].double().cpu().reshape(logs, 2, size).numpy()  # type: ignore[index]
        steps = np.asarray(self.norm_steps[:logs])
        out = []
        for i in range(size):
            cut, kept = self.dead.get(i, upto), logs
            if i in self.dead:
                kept = sum(s < cut for s in self.norm_steps[:logs])
            out.append(
                History(
                    l[:cut, 0, i],
                    l[:cut, 1, i],
                    l[:cut, 2, i],
                    steps[:kept],
                    nm[:kept, 0, i],
                    nm[:kept, 1, i],
                    self.cfg.to_dict(),
                    self.dead.get(i),
                )
            )
        return out


def run_steps(
    model,
    stream: BatchStream,
    cfg: TrainConfig,
    fault: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
    ema_momentum: float | torch.Tensor | None = None,
    keep_going: bool = False,
) -> list[History]:
    """The training loop shared by ``train`` (one JEPA) and ``ensemble.train_ensemble`` (K at once).

    ``cfg.num_steps`` times :func:`train_step` (batch -> loss (Eq. 8) -> backward ->
    AdamW -> EMA with ``ema_momentum``, default ``cfg.ema_momentum``; a [K] tensor gives
    each member its own), with a :class:`RunLog` beside it that records the losses, the
    embedding norms every ``cfg.log_every`` steps and checks finiteness there.
    ``model.loss(context, target, return_embeddings)`` returns (total, fwd, bwd[, emb])
    as scalars for one model or [K] tensors for an ensemble. ``fault(step, total)`` may
    replace the total (tests inject NaNs). Returns one History per model; raises
    NonFiniteStep, unless ``keep_going``: then a non-finite member is recorded
    (``History.diverged_at``) and the rest go on.
    """
    device = next(model.parameters()).device
    if ema_momentum is None:
        ema_momentum = cfg.ema_momentum
    opt = make_optimizer(model, cfg)
    log = RunLog(cfg, keep_going)
    model.train()
    with (
        torch_threads(cfg.num_threads, device),
        _progress(cfg.num_steps, cfg.progress) as bar,
    ):
        for step in range(cfg.num_steps):
            context, target = stream.next()
            log_now = log.is_log_step(step)
            hook = None if fault is None else functools.partial(fault, step)
            losses, emb = train_step(
                model, opt, context, target, ema_momentum, log_now, hook
            )
            log.add_losses(losses)
            if log_now:
                log.add_norms(emb)  # type: ignore[arg-type]
                log.check()
                if bar is not None:
                    bar.update(min(cfg.log_every, cfg.num_steps - step))
        log.check()
    return log.histories()


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
