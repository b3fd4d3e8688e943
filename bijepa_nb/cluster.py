"""Where and how chunks run (the options ``sweep`` and ``reproduce`` share) and Ray's
overhead: ``python -m bijepa_nb.cluster bench [--paper | --full-mode]``.

    python -m bijepa_nb.sweep sine --out maps.json --ray            # local Ray (all CPUs)
    python -m bijepa_nb.sweep sine --out maps.json --ray auto       # a running cluster
    python -m bijepa_nb.sweep sine --out maps.json --ray HOST:6379  # a cluster's head

Chunks, the cache and the Ray connection: ``bijepa_nb.experiments.chunks``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .experiments import sweep as sw
from .experiments.chunks import (
    DEFAULT_CACHE,
    ClusterError,
    OutputError,
    check_output,
    connect,
    write_output,
)

# ---------------------------------------------------------------- command line


def add_execution_arguments(ap: argparse.ArgumentParser, chunks: bool) -> None:
    """The options that choose where and how chunks run (sweep and reproduce share them)."""
    g = ap.add_argument_group("execution: chunks, cache, Ray")
    g.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run the chunks as Ray tasks: no ADDRESS starts a local Ray instance, "
        "'auto' joins the running cluster, HOST:PORT or ray://HOST:PORT a remote one",
    )
    g.add_argument(
        "--ray-cpus",
        type=int,
        default=None,
        help="CPUs of a local Ray instance (default: all of this machine's)",
    )
    g.add_argument(
        "--ray-ship",
        action="store_true",
        help="send this package with the job (runtime_env py_modules), for workers "
        "that do not have it installed",
    )
    g.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"finished chunks are kept here and reused (default {DEFAULT_CACHE}, or "
        "$BIJEPA_CACHE_DIR)",
    )
    g.add_argument("--no-cache", action="store_true", help="neither read nor write it")
    g.add_argument(
        "--force",
        action="store_true",
        help="replace --out even if it holds another experiment's results",
    )
    if chunks:
        g.add_argument(
            "--chunk-size",
            type=int,
            default=None,
            help="most runs per chunk, one batched ensemble (default: --max-batch)",
        )


def check_out(
    out: Path | str, identity: dict, force: bool, option: str = "--out"
) -> None:
    """Refuse ``--out`` before any work (``chunks.check_output``): one line on stderr,
    exit status 2."""
    try:
        check_output(out, identity, force, option)
    except OutputError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def write_out(
    args: argparse.Namespace, out: dict, identity: tuple, indent: int | None = None
) -> None:
    """Write the results to ``args.out``; if that fails, they are saved beside the cache
    (``<cache-dir>/unsaved``) or in the temporary folder, and the exit status is 1 with
    one line on stderr naming that file (``chunks.write_output``)."""
    cache = getattr(args, "cache_dir", None)
    aside = [] if cache is None or getattr(args, "no_cache", False) else [cache]
    try:
        write_output(
            args.out,
            out,
            identity,
            args.force,
            indent,
            [Path(a) / "unsaved" for a in aside],
        )
    except OutputError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


@contextlib.contextmanager
def execution(args: argparse.Namespace, ap: argparse.ArgumentParser):
    """The Ray cluster that ``args`` ask for (None for in-process), shut down after.
    Ctrl-C exits with 130 and says that the finished chunks are kept."""
    cluster = None
    if args.ray is None:
        if args.ray_cpus is not None or args.ray_ship:
            ap.error("--ray-cpus and --ray-ship need --ray")
    else:
        if args.ray_cpus is not None and (args.ray != "local" or args.ray_cpus < 1):
            ap.error("--ray-cpus must be >= 1 and only sizes a local Ray instance")
        try:
            cluster = connect(
                None if args.ray == "local" else args.ray, args.ray_cpus, args.ray_ship
            )
        except ClusterError as err:
            sys.exit(f"error: {err}")
    try:
        yield cluster
    except ClusterError as err:
        sys.exit(f"error: {err}")
    except KeyboardInterrupt:
        kept = "no cache (--no-cache)" if args.no_cache else f"{args.cache_dir}"
        print(
            f"interrupted: finished chunks are kept in {kept}; run the same command "
            "again to compute only the rest",
            file=sys.stderr,
        )
        sys.exit(130)
    finally:
        if cluster is not None:
            cluster.shutdown()


# ------------------------------------------------------------------------ benchmark


def bench(
    paper: bool,
    threads: int = 1,
    log: Callable[[str], None] = print,
    full_mode: bool = False,
) -> dict:
    """Wall time of one chunked sweep in process and through a local Ray cluster, same
    chunks, no cache; prints the ratio ray / in-process (the overhead)."""

    if full_mode:  # the whole expressive grid of the maps: 385 runs, 5 chunks of 77
        spec = sw.SweepSpec(
            "sine", modes=["expressive"], seeds=(0, 1, 2, 3, 4), chunk_size=77
        )
    elif paper:  # paper steps, a slice of the grid: 2 alphas x 7 momenta x 5 seeds
        spec = sw.SweepSpec(
            "sine",
            modes=["expressive"],
            alphas=(0.5, 1.0),
            seeds=(0, 1, 2, 3, 4),
            chunk_size=35,
        )
    else:
        spec = sw.SweepSpec(
            "sine",
            alphas=sw.QUICK["alpha"],
            taus=sw.QUICK["ema_momentum"],
            seeds=tuple(range(sw.QUICK["seeds"])),
            num_steps=sw.QUICK["num_steps"],
            probe_epochs=sw.QUICK["probe_epochs"],
            quick=True,
            chunk_size=6,
        )
    spec = dataclasses.replace(spec, threads=threads)
    quiet = dict(log=lambda line: None, cache_dir=None)
    t0 = time.perf_counter()
    local = sw.sweep(spec, **quiet)
    t_local = time.perf_counter() - t0
    t1 = time.perf_counter()
    cluster = connect(None, num_cpus=threads, log=log)
    t_start = time.perf_counter() - t1
    try:
        remote = sw.sweep(spec, cluster=cluster, **quiet)
    finally:
        cluster.shutdown()
    t_ray = time.perf_counter() - t1
    same = local["points"] == remote["points"]
    n = remote["execution"]["chunks"]
    out = {
        "what": "one full mode of the maps grid"
        if full_mode
        else ("paper-scale slice" if paper else "quick sweep"),
        "chunks": n,
        "threads_per_chunk": threads,
        "in_process_s": round(t_local, 2),
        "ray_s": round(t_ray, 2),
        "ray_start_s": round(t_start, 2),
        "overhead_ratio": round(t_ray / t_local, 3),
        "identical_points": same,
    }
    for k, v in out.items():
        log(f"{k}: {v}")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bijepa_nb.cluster",
        description="Benchmark of the Ray path's overhead against in-process execution.",
    )
    ap.add_argument("command", choices=("bench",))
    ap.add_argument(
        "--paper",
        action="store_true",
        help="paper steps on a slice of the grid (default: the quick sweep)",
    )
    ap.add_argument(
        "--full-mode",
        action="store_true",
        help="the whole expressive grid of the maps at paper steps (385 runs, 5 chunks)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPUs per chunk, and of the local Ray cluster (default 1: one chunk at a "
        "time in both paths, so the ratio is the overhead alone)",
    )
    args = ap.parse_args(argv)
    if args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    try:
        bench(args.paper, args.threads, full_mode=args.full_mode)
    except ClusterError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
