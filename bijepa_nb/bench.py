"""Speed benchmark: ``python -m bijepa_nb.bench``.

Two ratios, each against a baseline run in the same process:

- ``speedup``: a paper-scale sine BiJEPA run (expressive, alpha = 0.5, 2000 steps, batch 64)
  of the library against a straightforward reference-style loop written here
  (per-sequence Python data generation with numpy, a per-parameter EMA loop, plain
  non-fused AdamW, separate encoder calls per view, ``.item()`` per step), both at one CPU
  thread.
- ``ensemble_speedup``: ``--seeds`` (16) seeds of the same configuration trained at once
  through ``bijepa_nb.experiments.ensemble`` against that many sequential reference-style runs; and
  ``ensemble_speedup_compiled``, the same with the batched loss compiled
  (``Ensemble.compile``; the one-off compile is timed and printed separately).
- ``sweep``: the maps sweep's real job, one batch of ``--sweep-members`` (77) runs with
  mixed alpha and EMA momentum, eager and compiled: member-steps per second of each and
  their ratio.

    python -m bijepa_nb.bench                    # everything (about 5 minutes here)
    python -m bijepa_nb.bench --only ensemble    # only the ensemble ratios
    python -m bijepa_nb.bench --only sweep       # only the sweep throughput
    python -m bijepa_nb.bench --peer jax         # ours against a JAX version (below)
    python -m bijepa_nb.bench --only profile     # where a compiled ensemble step goes

``--peer jax``: the batched ensemble (eager and ``torch.compile``d) against
``bijepa_nb.experiments.jax_peer``, the same job written as a JAX user would (``vmap`` over
members, ``lax.scan`` over steps, ``jit``, optax AdamW), in member-steps per second at
``--peer-ks`` (16, 77) members and ``--peer-threads`` (1, 2) threads. Ours sets its threads
with ``torch.set_num_threads``; JAX runs in one worker process per thread count (XLA reads
its settings once, when its backend starts): 1 thread sets
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``, 2 leaves
XLA's default (one thread per core; 2 cores here). Those flags do not hold XLA to one
core (its one-thread runs used 1.6-1.7 cores), so for each thread count both sides are
also pinned to that many cores (``os.sched_setaffinity`` on this process, which the JAX
worker inherits): "1 thread" is one core for each. Runs alternate (ours eager, ours
compiled, JAX, repeated ``--repeats`` times) and the median of each is shown; compile
times are excluded from those and printed apart, as is the load average. "cores" is CPU
time over wall time of the timed runs, i.e. how many cores each really used. Needs the
``bench`` extra (``pip install -e ".[bench]"``); without it the command prints one line
saying so and exits 0 (nothing to compare is not an error of the command).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from .core.config import SineConfig, check_int
from .core.data import SineStream
from .core.models import build_model
from .core.training import make_optimizer, train
from .experiments import conv_ensemble, jax_peer, memory
from .experiments.ensemble import Ensemble, StackedStream, train_ensemble
from .experiments.pipeline import Run, train_runs
from .experiments.registry import experiment, paper_config
from .experiments.sweep import ALPHAS, EMA_MOMENTA


def _reference_run(num_steps: int, seed: int) -> float:
    """The reference-style loop, shaped like the paper's published script; returns its last loss."""
    np.random.seed(seed)
    torch.manual_seed(seed)

    def enc() -> nn.Module:
        return nn.Sequential(
            nn.Linear(10, 64),
            nn.LayerNorm(64),
            nn.ReLU(),
            nn.Linear(64, 64),
            nn.LayerNorm(64),
            nn.ReLU(),
            nn.Linear(64, 16),
        )

    def pred() -> nn.Module:
        return nn.Sequential(
            nn.Linear(16, 64), nn.LayerNorm(64), nn.ReLU(), nn.Linear(64, 16)
        )

    def generate_sine_waves(batch_size: int, seq_len: int = 20) -> torch.Tensor:
        t = np.linspace(0, 4 * np.pi, seq_len)
        waves = []
        for _ in range(batch_size):  # one sequence at a time
            freq, phase = np.random.uniform(0.8, 1.2), np.random.uniform(0, 2 * np.pi)
            waves.append(np.sin(freq * t + phase) + np.random.normal(0, 0.05, seq_len))
        return torch.tensor(np.array(waves), dtype=torch.float32).unsqueeze(-1)

    online, fwd_p, bwd_p = enc(), pred(), pred()
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad = False
    params = (
        list(online.parameters()) + list(fwd_p.parameters()) + list(bwd_p.parameters())
    )
    opt = torch.optim.AdamW(
        params, lr=1e-3, weight_decay=1e-4
    )  # plain AdamW, default settings
    losses = []
    for _ in range(num_steps):
        data = generate_sine_waves(64)
        x, y = data[:, :10, 0], data[:, 10:, 0]
        with torch.no_grad():
            tx, ty = target(x), target(y)
        ox, oy = online(x), online(y)
        loss_fwd = nn.functional.mse_loss(fwd_p(ox), ty)
        loss_bwd = nn.functional.mse_loss(bwd_p(oy), tx)
        opt.zero_grad()
        (0.5 * loss_fwd + 0.5 * loss_bwd).backward()
        opt.step()
        with torch.no_grad():  # per-parameter EMA
            for po, pt in zip(online.parameters(), target.parameters()):
                pt.data = 0.995 * pt.data + 0.005 * po.data
        losses.append((loss_fwd.item(), loss_bwd.item()))
    return 0.5 * sum(losses[-1])


def _library_run(num_steps: int, seed: int) -> float:
    mc, tc = paper_config(
        "sine",
        "expressive",
        0.5,
        num_steps=num_steps,
        progress=False,
        device="cpu",
        seed=seed,
    )
    model = build_model(mc, tc)
    return float(
        train(model, SineStream(SineConfig(), seed, tc.batch_size), tc).total[-1]
    )


def _ensemble_run(
    num_steps: int, seeds: list[int], threads: int, compile: bool = False
) -> float:
    mc, tc = paper_config(
        "sine",
        "expressive",
        0.5,
        num_steps=num_steps,
        progress=False,
        device="cpu",
        num_threads=threads,
    )
    ens = Ensemble([build_model(mc, replace(tc, seed=s)) for s in seeds])
    if compile:
        ens.compile()
    hs = train_ensemble(
        ens, [SineStream(SineConfig(), s, tc.batch_size) for s in seeds], tc
    )
    return float(np.mean([h.total[-1] for h in hs]))


def _sweep_batch(num_steps: int, members: int, threads: int, compile: bool) -> float:
    """One batch of the maps sweep: ``members`` sine runs (expressive) with mixed alpha and EMA
    momentum over 5 data seeds, through the shared pipeline."""

    sine = experiment("sine")
    runs = [
        Run(
            "expressive",
            sine.mode_configs(
                "expressive",
                alpha=ALPHAS[i % len(ALPHAS)],
                seed=i % 5,
                num_threads=threads,
                ema_momentum=EMA_MOMENTA[i % len(EMA_MOMENTA)],
                num_steps=num_steps,
                progress=False,
                device="cpu",
            )[1],
        )
        for i in range(members)
    ]
    data = {s: sine.seed_data(s) for s in range(5)}
    trained = train_runs(sine, runs, data, max_batch=members, compile=compile)
    return float(np.mean([t.history.total[-1] for t in trained]))


def _sequential_reference(num_steps: int, seeds: list[int]) -> float:
    return (
        float(np.mean([_reference_run(num_steps, s) for s in seeds]))
        if seeds
        else float("nan")
    )


def timed(fn, *args) -> tuple[float, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.steps < 1 or args.repeats < 1 or args.seeds < 1 or args.threads < 1:
        raise SystemExit("--steps, --repeats, --seeds and --threads must be >= 1")
    if args.peer == "jax":
        if not jax_peer.available():
            print(jax_peer.INSTALL_HINT)
            return
        peer_bench(args)
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    if args.only == "conv":
        torch.set_num_threads(old)
        conv_bench(args.conv_ks, threads=1)
        return
    if args.only == "memory":
        torch.set_num_threads(old)
        memory_bench(args.memory_members, args.sweep_steps)
        return
    if args.only == "profile":
        try:
            with pinned(1):
                for k in args.peer_ks:
                    print(_profile_line(k, profile_step(k)), flush=True)
        finally:
            torch.set_num_threads(old)
        return
    try:
        (
            _library_run(50, 0),
            _reference_run(50, 0),
            _ensemble_run(20, [0, 1], args.threads),
        )  # warm-up
        if args.only in (None, "single"):
            _bench_single(args)
        if args.only in (None, "ensemble"):
            _bench_ensemble(args)
        if args.only in (None, "sweep"):
            _bench_sweep(args)
    finally:
        torch.set_num_threads(old)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--steps", type=int, default=2000, help="training steps per run (paper: 2000)"
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="alternating repeats of the single-run comparison; the median of each is used",
    )
    ap.add_argument(
        "--seeds", type=int, default=16, help="models in the ensemble comparison"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        help="CPU threads of the ensemble run (the reference runs use 1, their fastest)",
    )
    ap.add_argument(
        "--only",
        choices=("single", "ensemble", "sweep", "conv", "memory", "profile"),
        default=None,
        help="run one of the comparisons (conv, the grouped-convolution MNIST encoders "
        "against separate ones; memory, the peak memory of sweep batches against "
        "sweep.estimate_bytes; profile, where one compiled ensemble step spends its "
        "time at --peer-ks members on one core: run only when named)",
    )
    ap.add_argument(
        "--conv-ks",
        type=int,
        nargs="+",
        default=[1, 2, 4, 8],
        help="ensemble sizes of the conv comparison",
    )
    ap.add_argument(
        "--sweep-members",
        type=int,
        default=77,
        help="runs in one batch of the sweep comparison (the grid's: 77)",
    )
    ap.add_argument(
        "--sweep-steps",
        type=int,
        default=400,
        help="steps of the sweep comparison and of --only memory",
    )
    ap.add_argument(
        "--memory-members",
        type=int,
        nargs="+",
        default=[16, 77, 128],
        help="batch sizes of --only memory (each in a fresh process)",
    )
    ap.add_argument(
        "--peer",
        choices=("jax",),
        default=None,
        help="compare the batched ensemble with a JAX version of the same job (only that)",
    )
    ap.add_argument(
        "--peer-ks", type=int, nargs="+", default=[16, 77], help="members K of --peer"
    )
    ap.add_argument(
        "--peer-threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="CPU threads of --peer (each side's own setting, see above)",
    )
    ap.add_argument(
        "--peer-steps", type=int, default=200, help="training steps of each --peer run"
    )
    return ap


def _bench_single(args: argparse.Namespace) -> None:
    """The library's training loop against the paper's reference code, one run each."""
    lib, ref = [], []
    for r in range(args.repeats):  # alternate so machine noise hits both alike
        lib.append(timed(_library_run, args.steps, r)[0])
        ref.append(timed(_reference_run, args.steps, r)[0])
    lib_s, ref_s = float(np.median(lib)), float(np.median(ref))
    print(
        f"library   : {lib_s:.2f} s for {args.steps} steps ({1e3 * lib_s / args.steps:.2f} ms/step), median of {args.repeats}"
    )
    print(
        f"reference : {ref_s:.2f} s for {args.steps} steps ({1e3 * ref_s / args.steps:.2f} ms/step), median of {args.repeats}"
    )
    print(f"speedup: {ref_s / lib_s:.1f}", flush=True)


def _bench_ensemble(args: argparse.Namespace) -> None:
    """One batched ensemble of ``--seeds`` runs against them one after another."""
    seeds = list(range(args.seeds))
    # The ensemble run is short and the sequential one long: interleave them (ensemble,
    # a share of the sequential runs, ensemble, ...) and take the ensemble's median, so
    # a burst of load on this shared machine cannot land on one side only.
    ens, seq_s = [], 0.0
    for part in np.array_split(np.array(seeds), args.repeats):
        ens.append(timed(_ensemble_run, args.steps, seeds, args.threads)[0])
        seq_s += timed(_sequential_reference, args.steps, [int(s) for s in part])[0]
    ens.append(timed(_ensemble_run, args.steps, seeds, args.threads)[0])
    ens_s = float(np.median(ens))
    print(
        f"ensemble  : {ens_s:.2f} s for {args.seeds} seeds x {args.steps} steps, batched, {args.threads} thread(s), median of {len(ens)}"
    )
    print(
        f"sequential: {seq_s:.2f} s for {args.seeds} reference-style runs one after another, 1 thread"
    )
    print(f"ensemble_speedup: {seq_s / ens_s:.1f}", flush=True)
    compile_s = timed(_ensemble_run, 11, seeds, args.threads, True)[
        0
    ]  # pays the one-off compile
    comp_s = float(
        np.median(
            [
                timed(_ensemble_run, args.steps, seeds, args.threads, True)[0]
                for _ in range(3)
            ]
        )
    )
    print(
        f"compiled  : {comp_s:.2f} s for {args.seeds} seeds x {args.steps} steps after a one-off compile of {compile_s:.1f} s"
    )
    print(f"ensemble_speedup_compiled: {seq_s / comp_s:.1f}", flush=True)


def _bench_sweep(args: argparse.Namespace) -> None:
    """One batch of the sweep, eager against ``torch.compile``."""
    k, n = args.sweep_members, args.sweep_steps
    _sweep_batch(11, k, args.threads, True)  # the one-off compile for this batch shape
    eager, comp = [], []
    for _ in range(2):  # alternate so machine noise hits both alike
        eager.append(timed(_sweep_batch, n, k, args.threads, False)[0])
        comp.append(timed(_sweep_batch, n, k, args.threads, True)[0])
    e_s, c_s = float(np.median(eager)), float(np.median(comp))
    print(
        f"sweep eager   : {k * n / e_s:,.0f} member-steps/s ({k} runs x {n} steps in {e_s:.1f} s)"
    )
    print(
        f"sweep compiled: {k * n / c_s:,.0f} member-steps/s ({k} runs x {n} steps in {c_s:.1f} s)"
    )
    print(f"sweep_compile_speedup: {e_s / c_s:.2f}")


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _timed_ours(k: int, steps: int, threads: int, compile: bool) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    last = _ensemble_run(steps, list(range(k)), threads, compile)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall": wall, "cpu": cpu, "loss": last}


def _peer_row(
    k: int, steps: int, threads: int, repeats: int, worker: jax_peer.Worker
) -> dict:
    """Medians of ``repeats`` alternating runs (ours eager, ours compiled, JAX) of K members."""
    runs: dict[str, list[dict]] = {"eager": [], "compiled": [], "jax": []}
    for _ in range(repeats):
        runs["eager"].append(_timed_ours(k, steps, threads, False))
        runs["compiled"].append(_timed_ours(k, steps, threads, True))
        runs["jax"].append(worker.run(k))
    row: dict = {"threads": threads, "k": k, "load": os.getloadavg()[0]}
    for name, rs in runs.items():
        wall = float(np.median([r["wall"] for r in rs]))
        row[name] = k * steps / wall  # member-steps per second
        row[name + "_cores"] = float(np.median([r["cpu"] / r["wall"] for r in rs]))
        row[name + "_loss"] = float(np.mean([r["loss"] for r in rs]))
        row[name + "_walls"] = [r["wall"] for r in rs]
    return row


def peer_bench(args: argparse.Namespace) -> list[dict]:
    """The batched ensemble against the JAX peer (``jax_peer``), in member-steps per second.

    The one-off compiles (ours per K, JAX per K and thread count) come first and are
    printed apart; then, per thread count and K, alternating timed runs (see the module
    docstring). Returns the rows of the table.
    """
    ks, n = args.peer_ks, args.peer_steps
    print(f"--peer jax: {n} steps per run, median of {args.repeats}; {_load()}")
    _ensemble_run(20, [0, 1], 1)  # warm-up
    for k in ks:  # one-off torch.compile per batch shape
        s, _ = timed(_ensemble_run, 11, list(range(k)), args.peer_threads[0], True)
        print(f"ours compile (K={k}): {s:.1f} s", flush=True)
    rows = []
    for threads in args.peer_threads:
        with pinned(threads):
            rows += _peer_rows(threads, n, ks, args.repeats)
    print(_peer_table(rows))
    print(_load())
    return rows


@contextlib.contextmanager
def pinned(cores: int):
    """Run the block on the first ``cores`` CPUs this process may use (children
    started inside inherit it); the old set is restored after."""
    before = os.sched_getaffinity(0)
    check_int("cores", cores, 1, len(before))
    os.sched_setaffinity(0, sorted(before)[:cores])
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _peer_rows(threads: int, n: int, ks: list[int], repeats: int) -> list[dict]:
    rows = []
    worker = jax_peer.Worker(threads, n, ks)
    try:
        for k, s in worker.compile_s.items():
            print(
                f"JAX {worker.version} compile (K={k}, {threads} thread(s)): {s:.1f} s"
            )
        for k in ks:
            rows.append(_peer_row(k, n, threads, repeats, worker))
            print(_peer_line(rows[-1]), flush=True)
    finally:
        worker.close()
    return rows


#: The phases of one ensemble step that ``profile_step`` times.
PHASES = ("data", "forward", "backward", "AdamW", "EMA")


def profile_step(k: int, steps: int = 200, warm: int = 60) -> dict[str, float]:
    """Milliseconds per step of each phase of the compiled ensemble step (K sine
    BiJEPA members, one thread; the job of ``--peer jax``): the batch from K seeded
    streams, the compiled loss, its backward, AdamW and the EMA, timed around each
    call over ``steps`` steps after ``warm`` untimed ones (the compile among them)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _profile(k, steps, warm)
    finally:
        torch.set_num_threads(old)


def _profile(k: int, steps: int, warm: int) -> dict[str, float]:
    mc, tc = paper_config(
        "sine", "expressive", 0.5, num_steps=steps, progress=False, device="cpu"
    )
    ens = Ensemble([build_model(mc, replace(tc, seed=s)) for s in range(k)]).compile()
    stream = StackedStream(
        [SineStream(SineConfig(), s, tc.batch_size) for s in range(k)]
    )
    opt = make_optimizer(ens, tc)
    spent = dict.fromkeys(PHASES, 0.0)
    for step in range(warm + steps):
        t = [time.perf_counter()]
        x, y = stream.next()
        t.append(time.perf_counter())
        total = ens.loss(x, y)[0]
        t.append(time.perf_counter())
        opt.zero_grad()
        total.sum().backward()
        t.append(time.perf_counter())
        opt.step()
        t.append(time.perf_counter())
        ens.ema_update(tc.ema_momentum)
        t.append(time.perf_counter())
        if step >= warm:
            for name, a, b in zip(PHASES, t, t[1:]):
                spent[name] += b - a
    return {name: 1000 * v / steps for name, v in spent.items()}


def _profile_line(k: int, ms: dict[str, float]) -> str:
    parts = ", ".join(f"{name} {v:.2f}" for name, v in ms.items())
    return f"K={k}, one core, compiled: {sum(ms.values()):.2f} ms per step ({parts})"


def _peer_line(r: dict) -> str:
    walls = ", ".join(
        f"{name} " + "/".join(f"{w:.1f}" for w in r[name + "_walls"])
        for name in ("eager", "compiled", "jax")
    )
    losses = ", ".join(
        f"{name} {r[name + '_loss']:.4f}" for name in ("eager", "compiled", "jax")
    )
    return f"  K={r['k']}, {r['threads']} thread(s): seconds {walls}; last loss {losses}; load {r['load']:.2f}"


def _peer_table(rows: list[dict]) -> str:
    head = (
        f"{'threads':>7} {'K':>3} {'ours eager':>11} {'ours compiled':>14} {'JAX':>7} "
        f"{'eager/JAX':>9} {'compiled/JAX':>12} {'cores e/c/JAX':>14} {'load':>5}"
    )
    lines = ["member-steps per second (higher is better)", head]
    for r in rows:
        cores = "/".join(f"{r[x + '_cores']:.1f}" for x in ("eager", "compiled", "jax"))
        lines.append(
            f"{r['threads']:>7} {r['k']:>3} {r['eager']:>11,.0f} {r['compiled']:>14,.0f} "
            f"{r['jax']:>7,.0f} {r['eager'] / r['jax']:>9.2f} "
            f"{r['compiled'] / r['jax']:>12.2f} {cores:>14} {r['load']:>5.2f}"
        )
    return "\n".join(lines)


def conv_bench(ks: list[int], threads: int = 1, steps: int = 8) -> None:
    """Grouped-convolution MNIST encoders vs separate ones: per-member ms per step."""
    for k, r in conv_ensemble.bench(ks, steps=steps, threads=threads).items():
        print(
            f"K={k:2d}: grouped {r['grouped_ms']:6.1f} ms/member-step, "
            f"separate {r['separate_ms']:6.1f} ms/member-step, "
            f"speed-up {r['ratio']:.2f}x",
            flush=True,
        )


def memory_bench(members: Sequence[int], steps: int) -> list[memory.Peak]:
    """Peak resident memory of one sweep batch per size in ``members``, eager and
    compiled, each in a fresh process, against ``sweep.estimate_bytes`` on the
    baseline (a process that only imports and builds the data), measured first. Prints the table and returns the rows."""
    peaks = [memory.measure(0, steps, False)]
    for k in members:
        for compile in (False, True):
            peaks.append(memory.measure(k, steps, compile, base=peaks[0].measured))
            print(memory.table(peaks[-1:]).splitlines()[1], flush=True)
    print(memory.table(peaks))
    return peaks


if __name__ == "__main__":
    main()
