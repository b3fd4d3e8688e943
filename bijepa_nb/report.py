"""Tables for the book: numbers computed by cells, rendered as Markdown."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def fmt(x: Any, digits: int = 4) -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def mean_std(values: Sequence[float], digits: int = 4) -> str:
    """'mean ± std' over seeds (sample std), or the single value."""
    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return fmt(float(v[0]), digits)
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4):
    """An IPython Markdown table (plain text outside IPython)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(c, digits) for c in row) + " |" for row in rows]
    text = "\n".join(lines)
    try:
        from IPython.display import Markdown

        return Markdown(text)
    except ImportError:  # pragma: no cover
        return text
