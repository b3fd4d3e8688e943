"""The paper's tables over many seeds, with held-out scores and baselines, as one JSON file.

    python -m bijepa_nb.reproduce sine   --seeds 10 --out book/results/sine.json
    python -m bijepa_nb.reproduce lorenz --seeds 10 --out book/results/lorenz.json
    python -m bijepa_nb.reproduce mnist  --seeds 10 --out book/results/mnist.json
    python -m bijepa_nb.reproduce sine --seeds 2 --quick --out /tmp/sine.json   # smoke run

Sine and Lorenz train all seeds of a configuration at once (``bijepa_nb.experiments.ensemble``); MNIST
trains each (variant, seed) separately, two one-thread worker processes at a time
(``bijepa_nb.experiments.mnist_runs``; grouped-convolution batching does not pay on a CPU, see
``bijepa_nb.experiments.conv_ensemble``), at the paper's 2,350 steps whatever the data size.
Paper settings (Appendix B) unless ``--quick``. Sine and Lorenz run one chunk per table
variant; ``--ray [ADDRESS]`` runs the chunks as Ray tasks and finished chunks are cached
(``--cache-dir``), so a rerun computes only what is missing (``bijepa_nb.experiments.chunks``).
With ``--ray``, MNIST runs one Ray task per (variant, seed) task, also cached.

JSON schema (``SCHEMA_VERSION``; ``validate`` checks it):

- ``schema``, ``experiment``, ``seeds`` (list of int), ``quick`` (bool), ``command``,
  ``seconds`` (wall time of the whole reproduction), ``environment`` (torch version,
  device, threads; MNIST: ``mnist_source``, "full" or "offline-10k"), ``settings`` (the
  ModelConfig and TrainConfig of each configuration, probe epochs, data sizes).
- ``metrics``: ``{key: {"unit": str, "split": str, "description": str}}`` for every key
  of the per-seed results below; ``split`` is "train" (training loss/embeddings),
  "probe set" (the probe scored on its own training data, as the paper reports) or
  "held-out" (data never used for training or probe fitting).
- ``configs``: ``{name: {"label", "mode", "alpha", "diverged_at": [step or null per
  seed], "per_seed": {metric key: [value or null per seed]}}}``; a metric is null where it
  does not exist (classic JEPA has no backward predictor) or the seed diverged.
- ``baselines``: ``{name: {"unit", "split", "description", "per_seed": [value per seed]}}``
  on the same held-out data as the configurations (each seed has its own data).
- ``execution`` (sine, Lorenz; MNIST with ``--ray``): ``{"backend": "in-process" or "ray", "chunks",
  "from_cache", "computed"}``.
- ``paper``: the paper's own numbers for the same table (one run, scored on the probe set).
- MNIST only: ``checkpoints``: ``{"steps": [0, 320, 700, 1400, 2350], "metrics": [...],
  "configs": {name: {metric: [[value per step] per seed]}}}``, held-out probe accuracy,
  decoder MSE and embedding diagnostics along training (step 0: the untrained encoder,
  the random-encoder baseline of the same seed); ``settings.budget`` states the budget.
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
