"""Maps of what alpha and the EMA momentum do: one batched sweep over a grid, as JSON.

    python -m bijepa_nb.sweep sine   --out book/results/maps_sine.json
    python -m bijepa_nb.sweep lorenz --modes expressive --out book/results/maps_lorenz.json
    python -m bijepa_nb.sweep sine --quick --out /tmp/maps.json        # smoke run
    python -m bijepa_nb.sweep merge A.json B.json --out C.json         # join partial grids

The grid, the batching and the JSON schema: ``bijepa_nb.experiments.sweep``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .cluster import add_execution_arguments, check_out, execution, write_out
from .core.config import (
    DEVICES,
    STABILITY_MODES,
)
from .experiments.sweep import (
    IDENTITY,
    QUICK,
    SWEPT,
    SweepSpec,
    merge,
    sweep,
)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [
        "merge"
    ]:  # python -m bijepa_nb.sweep merge A.json B.json ... --out C.json
        _merge(argv[1:])
        return
    ap = _parser()
    args = ap.parse_args(argv)
    try:
        spec = _spec(args)
        spec.grid()  # a bad grid is refused here, naming the parameter
    except ValueError as err:
        ap.error(str(err))
    check_out(args.out, spec.identity(), args.force)  # before any work
    with execution(args, ap) as cluster:
        try:
            out = sweep(
                spec,
                cache_dir=None if args.no_cache else args.cache_dir,
                cluster=cluster,
            )
        except (ValueError, MemoryError) as err:
            ap.error(str(err))
    _write(args, out)


def _merge(argv: list[str]) -> None:
    mp = argparse.ArgumentParser(
        prog="python -m bijepa_nb.sweep merge", description=merge.__doc__
    )
    mp.add_argument("parts", nargs="+")
    mp.add_argument("--out", required=True)
    mp.add_argument("--force", action="store_true", help="replace any --out file")
    margs = mp.parse_args(argv)
    try:
        out = merge([json.loads(Path(f).read_text()) for f in margs.parts])
    except ValueError as err:
        mp.error(str(err))
    check_out(margs.out, {k: out[k] for k in IDENTITY}, margs.force)
    _write(margs, out)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("experiment", choices=SWEPT)
    ap.add_argument("--out", required=True, help="the JSON file to write")
    ap.add_argument(
        "--modes",
        nargs="+",
        default=list(STABILITY_MODES),
        help="stability modes (default: all three)",
    )
    ap.add_argument(
        "--alpha",
        type=_floats,
        default=None,
        help="comma-separated alphas (default 0,0.1,...,1)",
    )
    ap.add_argument(
        "--ema-momentum",
        type=_floats,
        default=None,
        help="comma-separated EMA momenta (default 0.9,0.95,0.98,0.99,0.995,0.999,1)",
    )
    ap.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    ap.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds first..first+N-1 (default 0): fresh seeds to score chosen cells on",
    )
    ap.add_argument(
        "--steps", type=int, default=None, help="training steps (default: the paper's)"
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 3 alphas x 2 momenta, 2 seeds, 100 steps",
    )
    ap.add_argument("--device", default="auto", choices=DEVICES)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--max-batch",
        type=int,
        default=128,
        help="most runs trained as one batch (default 128)",
    )
    ap.add_argument(
        "--no-compile",
        action="store_true",
        help="train eagerly (default: torch.compile for >= 1000 steps)",
    )
    add_execution_arguments(ap, chunks=True)
    return ap


def _spec(args: argparse.Namespace) -> SweepSpec:
    """The sweep that the arguments ask for: ``--quick`` takes ``QUICK``'s grid, run
    length and at most its seeds; ``--alpha``, ``--ema-momentum``, ``--steps`` win."""
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.first_seed < 0:
        raise ValueError(f"--first-seed must be >= 0, got {args.first_seed}")
    kw: dict[str, Any] = {}
    seeds = args.seeds
    if args.quick:
        kw = {
            "alphas": QUICK["alpha"],
            "taus": QUICK["ema_momentum"],
            "num_steps": QUICK["num_steps"],
            "probe_epochs": QUICK["probe_epochs"],
        }
        seeds = min(seeds, QUICK["seeds"])
    if args.alpha is not None:
        kw["alphas"] = args.alpha
    if args.ema_momentum is not None:
        kw["taus"] = args.ema_momentum
    if args.steps is not None:
        kw["num_steps"] = args.steps
    return SweepSpec(
        args.experiment,
        modes=args.modes,
        seeds=list(range(args.first_seed, args.first_seed + seeds)),
        quick=args.quick,
        device=args.device,
        threads=args.threads,
        max_batch=args.max_batch,
        compile=False if args.no_compile else None,
        chunk_size=args.chunk_size,
        **kw,
    )


def _write(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Write the JSON atomically (a temporary file renamed over the target); never over
    a file that holds another experiment's or another grid's results unless ``--force``;
    if writing fails the results are saved aside (``cluster.write_out``)."""
    path = Path(args.out)
    write_out(args, out, IDENTITY)
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {len(out['points'])} points x {len(out['grid']['seeds'])} seeds "
        f"in {out['seconds']:.1f} s, {out['member_steps_per_second']:,} member-steps/s"
    )


if __name__ == "__main__":
    main()
