"""BiJEPA among its peers: every objective and control on sine, Lorenz or MNIST, one JSON.

    python -m bijepa_nb.peers sine   --out book/results/peers_sine.json
    python -m bijepa_nb.peers lorenz --out book/results/peers_lorenz.json
    python -m bijepa_nb.peers mnist  --seeds 5 --ray --out book/results/peers_mnist.json
    python -m bijepa_nb.peers sine --quick --out /tmp/peers.json        # smoke run

Paper settings (Appendix B) unless ``--quick``; 10 scored seeds (0-9), the classic
lr x tau search on validation seeds 100-104. ``--ray [ADDRESS]`` runs the chunks as Ray
tasks; finished chunks are cached (``--cache-dir``). The objectives, the batching and
the JSON schema: ``bijepa_nb.experiments.peers``. MNIST (one chunk per objective and
seed, 700 steps, no lr x tau search): ``bijepa_nb.experiments.mnist_peers``.
"""

from __future__ import annotations

import argparse
import sys

from .cluster import add_execution_arguments, check_out, execution, write_out
from .core.config import DEVICES
from .experiments import mnist_peers as mp
from .experiments.mnist import MnistNotFoundError
from .experiments.peers import (
    IDENTITY,
    OBJECTIVES,
    PEER_EXPERIMENTS,
    QUICK,
    VALIDATION_SEEDS,
    PeersSpec,
    peers,
)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("experiment", choices=(*PEER_EXPERIMENTS, "mnist"))
    ap.add_argument("--out", required=True, help="the JSON file to write")
    ap.add_argument(
        "--objectives",
        nargs="+",
        default=None,
        help=f"objectives to run (default: all of {', '.join(OBJECTIVES)}; on mnist "
        f"{', '.join(mp.MNIST_OBJECTIVES)})",
    )
    ap.add_argument("--seeds", type=int, default=10, help="scored seeds 0..N-1")
    ap.add_argument("--steps", type=int, default=None, help="training steps")
    ap.add_argument("--quick", action="store_true", help="a smoke run (100 steps)")
    ap.add_argument("--device", default="auto", choices=DEVICES)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    add_execution_arguments(ap, chunks=False)
    args = ap.parse_args(argv)
    if args.seeds < 2:
        ap.error(f"--seeds must be >= 2 (intervals need two seeds), got {args.seeds}")
    if args.experiment == "mnist":
        return _mnist(args, ap)
    if args.objectives is None:
        args.objectives = list(OBJECTIVES)
    n_seeds = min(args.seeds, QUICK["seeds"]) if args.quick else args.seeds
    n_val = QUICK["validation_seeds"] if args.quick else len(VALIDATION_SEEDS)
    spec = PeersSpec(
        args.experiment,
        objectives=args.objectives,
        seeds=tuple(range(n_seeds)),
        validation_seeds=VALIDATION_SEEDS[:n_val],
        num_steps=args.steps,
        quick=args.quick,
        device=args.device,
        threads=args.threads,
    )
    try:
        spec = spec.resolved()
    except (ValueError, TypeError) as err:
        ap.error(str(err))
    check_out(args.out, spec.identity(), args.force)  # before any work
    with execution(args, ap) as cluster:
        out = peers(
            spec, cache_dir=None if args.no_cache else args.cache_dir, cluster=cluster
        )
    write_out(args, out, IDENTITY, indent=1)
    print(f"wrote {args.out} ({out['seconds']:.1f} s)")


def _mnist(args: argparse.Namespace, ap: argparse.ArgumentParser) -> None:
    n_seeds = min(args.seeds, mp.QUICK["seeds"]) if args.quick else args.seeds
    spec = mp.MnistPeersSpec(
        objectives=args.objectives or mp.MNIST_OBJECTIVES,
        seeds=tuple(range(n_seeds)),
        num_steps=args.steps,
        quick=args.quick,
        device=args.device,
        threads=args.threads,
    )
    try:
        spec = spec.resolved()
    except (ValueError, TypeError) as err:
        ap.error(str(err))
    check_out(args.out, spec.identity(), args.force)  # before any work
    try:
        mnist = mp.load_mnist()  # the data is there before any training
    except MnistNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    with execution(args, ap) as cluster:
        out = mp.mnist_peers(
            spec,
            cache_dir=None if args.no_cache else args.cache_dir,
            cluster=cluster,
            mnist=mnist,
        )
    write_out(args, out, mp.IDENTITY, indent=1)
    print(f"wrote {args.out} ({out['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
