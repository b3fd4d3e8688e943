"""Tables for the book: numbers computed by cells, rendered as Markdown."""

from __future__ import annotations

from collections.abc import Sequence
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
