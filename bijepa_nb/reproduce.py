"""The paper's tables over many seeds, with held-out scores and baselines, as one JSON file.

    python -m bijepa_nb.reproduce sine   --seeds 10 --out book/results/sine.json
    python -m bijepa_nb.reproduce lorenz --seeds 10 --out book/results/lorenz.json
    python -m bijepa_nb.reproduce mnist  --seeds 10 --out book/results/mnist.json
    python -m bijepa_nb.reproduce sine --seeds 2 --quick --out /tmp/sine.json   # smoke run

Paper settings (Appendix B) unless ``--quick``. ``--ray [ADDRESS]`` runs the chunks as
Ray tasks; finished chunks (MNIST: each variant and seed) are cached (``--cache-dir``),
with or without Ray, so a rerun computes only what is missing. How the runs are batched and the JSON schema: ``bijepa_nb.experiments.reproduce``.
"""

from __future__ import annotations

import argparse

from .cluster import add_execution_arguments, check_out, execution, write_out
from .core.config import (
    DEVICES,
)
from .experiments.registry import EXPERIMENTS
from .experiments.reproduce import IDENTITY, ReproduceSpec, reproduce


def main(argv: list[str] | None = None) -> None:
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


if __name__ == "__main__":
    main()
