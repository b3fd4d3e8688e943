"""Tables for the book: numbers computed by cells, rendered as Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def fmt(x: Any, digits: int = 4) -> str:
    """Fixed point with ``digits`` decimals; values too small for that get 2 significant digits."""
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    if x != 0 and abs(x) < 0.5 * 10 ** (-digits):
        return f"{x:.1e}"
    return f"{x:.{digits}f}"


def mean_std(values: Sequence[float], digits: int = 4) -> str:
    """'mean ± std' over seeds (sample std), or the single value."""
    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return fmt(float(v[0]), digits)
    m, s = float(v.mean()), float(v.std(ddof=1))
    if m != 0 and abs(m) < 0.5 * 10 ** (-digits):
        return f"{m:.1e} ± {s:.1e}"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4
):
    """An IPython Markdown table (plain text outside IPython)."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(fmt(c, digits) for c in row) + " |" for row in rows]
    text = "\n".join(lines)
    try:
        from IPython.display import Markdown

        return Markdown(text)
    except ImportError:  # pragma: no cover
        return text


def interval(values: Sequence[float], digits: int = 4) -> str:
    """'mean [low, high]': the mean over seeds and its 95% t-interval (``stats.mean_ci``),
    or the single value when there is one seed."""
    from .stats import mean_ci

    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return fmt(float(v[0]), digits)
    iv = mean_ci(v)
    return f"{fmt(iv.mean, digits)} [{fmt(iv.low, digits)}, {fmt(iv.high, digits)}]"


def paper_table(
    experiment: str,
    results: Mapping[str, Sequence[Mapping[str, float]]],
    extra: Mapping[str, str] | None = None,
    digits: int = 4,
):
    """The paper's table beside ours: one row per variant of ``results``.

    results: variant name -> one dict of metrics per seed, holding at least the keys the
    paper reports for ``experiment`` (``bijepa_nb.paper``: e.g. train_loss, A, B). For
    each of those keys the table shows the paper's single run (read from the registry)
    and ours as "mean [95% interval over seeds]"; ``extra`` (column header -> metric
    key) adds columns of ours alone (held-out scores, other probes).
    """
    from .paper import PAPER_METRICS, VARIANTS
    from .paper import experiment as lookup

    exp = lookup(experiment)
    if not results:
        raise ValueError("results must hold at least one variant")
    extra = dict(extra or {})
    for name, per_seed in results.items():
        if name not in exp.paper:
            raise ValueError(
                f"results: variant {name!r} is not in the paper's table of "
                f"{experiment!r} (one of {', '.join(map(repr, exp.paper))})"
            )
        if not per_seed:
            raise ValueError(f"results[{name!r}] holds no seed")
    keys = list(next(iter(exp.paper.values())))
    header = ["variant"]
    for k in keys:
        label = PAPER_METRICS.get(k, k)
        header += [f"{label}, paper", f"{label}, ours"]
    header += list(extra)
    rows = []
    for name, per_seed in results.items():
        row: list[Any] = [VARIANTS[name].label]
        for k in keys:
            row += [exp.paper[name][k], interval([r[k] for r in per_seed], digits)]
        row += [interval([r[key] for r in per_seed], digits) for key in extra.values()]
        rows.append(row)
    return markdown_table(header, rows, digits)
