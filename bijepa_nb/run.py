"""Train and score paper configurations from the command line: ``python -m bijepa_nb.run sine``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from .cluster import check_out
from .experiments.chunks import OutputError, write_output
from .experiments.paper_runs import CONFIGS, PAPER_TABLES, run_experiment
from .experiments.registry import (
    EXPERIMENTS,
)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description="Train and score paper configurations; prints one line per run and a summary."
    )
    ap.add_argument("experiment", choices=tuple(PAPER_TABLES))
    ap.add_argument(
        "--configs",
        nargs="+",
        default=None,
        choices=tuple(CONFIGS),
        help="default: the paper's table",
    )
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="override num_steps (default: the paper's)",
    )
    ap.add_argument(
        "--json", default=None, help="write the per-run scores to this file"
    )
    args = ap.parse_args(argv)
    if args.json:  # the folder must take the file (an existing file is replaced)
        check_out(args.json, {}, force=True, option="--json")
    configs = args.configs or PAPER_TABLES[args.experiment]
    over: dict[str, Any] = {"progress": False}
    if args.steps is not None:
        over["num_steps"] = args.steps
    rows = []
    for cfg in configs:
        for seed in args.seeds:
            r = run_experiment(args.experiment, cfg, seed, **dict(over))
            tail = r.history.tail_mean(100)
            row = {
                "config": cfg,
                "seed": seed,
                "seconds": round(r.seconds, 2),
                "train_loss_last100": tail["total"],
                "scores": r.scores,
            }
            rows.append(row)
            if EXPERIMENTS[args.experiment].kind == "halves":
                print(
                    f"{cfg:14s} seed {seed}: probe acc {r.scores['linear_probe']['eval_acc']:.4f}  decoder MSE {r.scores['decoder']['eval_mse']:.4f}  ({r.seconds:.1f} s)",
                    flush=True,
                )
            else:
                s = r.scores
                print(
                    f"{cfg:14s} seed {seed}: loss {tail['total']:.4f}  A probe/test/lstsq {s['A']['adam_probeset']:.4f}/{s['A']['adam_heldout']:.4f}/{s['A']['lstsq_heldout']:.4f}"
                    f"  B probe/test/lstsq {s['B']['adam_probeset']:.4f}/{s['B']['adam_heldout']:.4f}/{s['B']['lstsq_heldout']:.4f}  ({r.seconds:.1f} s)",
                    flush=True,
                )
    if EXPERIMENTS[args.experiment].kind == "forecast":
        print(
            "\nmean ± std over seeds (held-out test MSE of the paper-style Adam probe):"
        )
        for cfg in configs:
            rs = [r for r in rows if r["config"] == cfg]
            for p in ("A", "B"):
                v = np.array([r["scores"][p]["adam_heldout"] for r in rs])
                print(
                    f"  {cfg:14s} Protocol {p}: {v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f}"
                )
    if args.json:
        try:  # if it fails, the scores are saved in the temporary folder, named
            write_output(args.json, rows, (), force=True, indent=1)
        except OutputError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
