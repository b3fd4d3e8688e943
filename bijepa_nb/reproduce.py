"""The paper's tables over many seeds, with held-out scores and baselines, as one JSON file.

    python -m bijepa_nb.reproduce sine   --seeds 10 --out book/results/sine.json
    python -m bijepa_nb.reproduce lorenz --seeds 10 --out book/results/lorenz.json
    python -m bijepa_nb.reproduce mnist  --seeds 10 --out book/results/mnist.json
    python -m bijepa_nb.reproduce sine --seeds 2 --quick --out /tmp/sine.json   # smoke run
    python -m bijepa_nb.reproduce regimes --out book/results/regimes.json  # harder regimes

Paper settings (Appendix B) unless ``--quick``. ``--ray [ADDRESS]`` runs the chunks as
Ray tasks; finished chunks (MNIST: each variant and seed) are cached (``--cache-dir``),
with or without Ray, so a rerun computes only what is missing. How the runs are batched and the JSON schema: ``bijepa_nb.experiments.reproduce``.
"""

from __future__ import annotations

import argparse
import sys

from .cluster import add_execution_arguments, check_out, execution, write_out
from .core.config import (
    DEVICES,
)
from .experiments import regimes as rg
from .experiments.registry import EXPERIMENTS
from .experiments.reproduce import IDENTITY, ReproduceSpec, reproduce


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["regimes"]:
        _regimes(argv[1:])
        return
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("experiment", choices=tuple(EXPERIMENTS))
    ap.add_argument(
        "--seeds",
        type=int,
        default=10,
        help="number of seeds, first-seed .. first-seed + seeds - 1 (default 10)",
    )
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="the JSON file to write")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a fast smoke run (few steps, small probes)",
    )
    ap.add_argument("--device", default="auto", choices=DEVICES)
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        help="CPU threads of the batched runs (default 2)",
    )
    ap.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="alpha of the BiJEPA variants (default: the paper's 0.5)",
    )
    ap.add_argument(
        "--ema-momentum",
        type=float,
        default=None,
        help="EMA momentum of every variant (default: the paper's)",
    )
    add_execution_arguments(ap, chunks=False)
    args = ap.parse_args(argv)
    if args.seeds < 1 or args.first_seed < 0:
        raise SystemExit(
            f"--seeds must be >= 1 and --first-seed >= 0, got {args.seeds} and {args.first_seed}"
        )
    spec = ReproduceSpec(
        args.experiment,
        list(range(args.first_seed, args.first_seed + args.seeds)),
        args.quick,
        args.device,
        args.threads,
        alpha=args.alpha,
        ema_momentum=args.ema_momentum,
    )
    check_out(args.out, spec.identity(), args.force)  # before any work
    with execution(args, ap) as cluster:
        try:
            out = reproduce(
                spec,
                cache_dir=None if args.no_cache else args.cache_dir,
                cluster=cluster,
            )
        except ValueError as err:
            ap.error(str(err))
    write_out(args, out, IDENTITY, indent=1)
    print(f"wrote {args.out} ({out['seconds']:.1f} s)")


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _regimes(argv: list[str]) -> None:
    """``python -m bijepa_nb.reproduce regimes``: the harder-regimes study
    (``bijepa_nb.experiments.regimes``: the regimes, the batching, the JSON schema)."""
    ap = argparse.ArgumentParser(
        prog="python -m bijepa_nb.reproduce regimes",
        description=rg.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--out", required=True, help="the JSON file to write")
    ap.add_argument("--seeds", type=int, default=10, help="sine and Lorenz seeds (10)")
    ap.add_argument(
        "--mnist-seeds", type=int, default=5, help="MNIST seeds (5; 0: none)"
    )
    ap.add_argument(
        "--noise-levels",
        type=_floats,
        default=list(rg.NOISE_LEVELS),
        help=f"sine observation noise sigma, of {rg.NOISE_LEVELS}",
    )
    ap.add_argument("--sine-horizons", type=_ints, default=list(rg.SINE_HORIZONS))
    ap.add_argument("--lorenz-horizons", type=_ints, default=list(rg.LORENZ_HORIZONS))
    ap.add_argument("--label-budgets", type=_ints, default=list(rg.LABEL_BUDGETS))
    ap.add_argument("--quick", action="store_true", help="a fast smoke run")
    ap.add_argument("--device", default="auto", choices=DEVICES)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    add_execution_arguments(ap, chunks=False)
    args = ap.parse_args(argv)
    if args.seeds < 2 or args.mnist_seeds < 0:
        ap.error(
            f"--seeds must be >= 2 and --mnist-seeds >= 0, got {args.seeds} and "
            f"{args.mnist_seeds}"
        )
    spec = rg.RegimesSpec(
        sine_seeds=list(range(args.seeds)),
        lorenz_seeds=list(range(args.seeds)),
        mnist_seeds=list(range(args.mnist_seeds)),
        noise_levels=args.noise_levels,
        sine_horizons=args.sine_horizons,
        lorenz_horizons=args.lorenz_horizons,
        label_budgets=args.label_budgets,
        quick=args.quick,
        device=args.device,
        threads=args.threads,
    )
    try:
        spec.check()
    except (TypeError, ValueError) as err:
        ap.error(str(err))
    check_out(args.out, spec.identity(), args.force)  # before any work
    with execution(args, ap) as cluster:
        try:
            out = rg.regimes(
                spec,
                cache_dir=None if args.no_cache else args.cache_dir,
                cluster=cluster,
            )
        except ValueError as err:
            ap.error(str(err))
    write_out(args, out, rg.IDENTITY, indent=1)
    print(f"wrote {args.out} ({out['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
