"""Peak memory of a sweep batch, measured in a fresh process, against ``estimate_bytes``.

``sweep.estimate_bytes`` predicts the peak resident memory of the process that trains one
batch of a maps sweep; ``SweepSpec.resolved`` refuses a sweep whose estimate is over the
memory allowed. This module measures what it predicts: each measurement spawns a new
Python process (nothing of this one's memory is in it), which imports the package,
builds the first chunk of a sine sweep of ``members`` runs and trains and scores it
exactly as ``python -m bijepa_nb.sweep`` does (``sweep.sweep_chunk``), then reports its
peak resident set size (``ru_maxrss``). A process that only imports and builds the data
is measured the same way: the baseline every batch pays before training.

    python -m bijepa_nb.bench --only memory      # the table below, about 4 minutes here
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from .sweep import SweepSpec, estimate_bytes, plan, sweep_chunk


@dataclass(frozen=True)
class Peak:
    """One measurement: a batch of ``members`` runs (0: imports and data only)."""

    members: int
    num_steps: int
    compile: bool
    measured: int  # bytes, peak resident set size of the process
    estimate: int  # bytes, estimate_bytes for the same batch (0 for the baseline)

    @property
    def ratio(self) -> float:
        """estimate / measured: 1 is exact; above 1 the estimate is generous."""
        return self.estimate / self.measured


def _peak_rss() -> int:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb if sys.platform == "darwin" else kb * 1024  # Linux reports KiB


def _first_chunk(members: int, num_steps: int, compile: bool, threads: int) -> dict:
    spec = SweepSpec(
        "sine",
        modes=("expressive",),
        num_steps=num_steps,
        threads=threads,
        max_batch=members,
        compile=compile,
        device="cpu",
        max_bytes=2**50,  # measure, never refuse
    ).resolved()
    return plan(spec, "cpu")[0].fields


def _child(members: int, num_steps: int, compile: bool, threads: int, q) -> None:
    fields = _first_chunk(max(members, 1), num_steps, compile, threads)
    if members:
        sweep_chunk(fields)
    q.put(_peak_rss())


def measure(
    members: int,
    num_steps: int,
    compile: bool,
    base: int | None = None,
    threads: int = 1,
    timeout: float = 900,
) -> Peak:
    """The peak memory of one fresh process training ``members`` runs (0: none), and
    ``estimate_bytes`` for it on ``base`` (the baseline's peak; default: this
    process's resident memory)."""
    if members < 0 or members > 385:
        raise ValueError(f"members must be in 0..385 (one mode's grid), got {members}")
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(members, num_steps, compile, threads, q))
    p.start()
    try:
        peak = q.get(timeout=timeout)
    finally:
        p.join(timeout=60)
        if p.is_alive():
            p.kill()
    if p.exitcode != 0:
        raise RuntimeError(f"the measuring process exited with {p.exitcode}")
    est = estimate_bytes("sine", members, num_steps, compile, base) if members else 0
    return Peak(members, num_steps, compile, peak, est)


def table(peaks: Sequence[Peak]) -> str:
    """One line per measurement, in MB (10^6 bytes)."""
    lines = ["members  steps  compiled  measured MB  estimate MB  estimate / measured"]
    for p in peaks:
        est = (
            f"{p.estimate / 1e6:11.0f}  {p.ratio:19.2f}"
            if p.members
            else (f"{'(baseline)':>11}  {'':>19}")
        )
        lines.append(
            f"{p.members:7d}  {p.num_steps:5d}  {str(p.compile):>8}  "
            f"{p.measured / 1e6:11.0f}  {est}"
        )
    return "\n".join(lines)
