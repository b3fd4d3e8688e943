"""Statistics over seeds: means with 95% intervals, paired differences, loss roughness."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .config import check_float, check_int


@dataclass(frozen=True)
class Interval:
    """mean, sample std, a two-sided ``level`` t-interval [low, high] for the mean, and n."""

    mean: float
    std: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def __str__(self) -> str:
        return f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}]"

    def excludes(self, value: float = 0.0) -> bool:
        """True when ``value`` lies outside the interval."""
        return not (self.low <= value <= self.high)


def mean_ci(values: Sequence[float], level: float = 0.95) -> Interval:
    """Mean and Student-t confidence interval of the mean over seeds (NaNs are refused)."""
    from scipy import stats

    check_float("level", level, 0.0, 1.0, low_open=True)
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or len(v) == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite (a diverged seed has no score: drop it and say so)")
    m = float(v.mean())
    if len(v) == 1:
        return Interval(m, float("nan"), float("nan"), float("nan"), 1, level)
    s = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1)) * s / np.sqrt(len(v))
    return Interval(m, s, m - half, m + half, len(v), level)


def paired_ratio_ci(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Interval:
    """Interval of the geometric-mean ratio a / b over paired seeds (t-interval on log a - log b)."""
    la, lb = np.log(np.asarray(a, dtype=float)), np.log(np.asarray(b, dtype=float))
    if la.shape != lb.shape:
        raise ValueError(f"a and b must pair up seed by seed, got {la.shape} and {lb.shape}")
    d = mean_ci(la - lb, level)
    return Interval(float(np.exp(d.mean)), d.std, float(np.exp(d.low)), float(np.exp(d.high)), d.n, level)


def roughness(loss: np.ndarray, window: int = 51, start: float = 0.5) -> float:
    """Step-to-step fluctuation of a training loss: the std of log(loss) around its centred
    moving average (``window`` steps), over the part of training after fraction ``start``.

    Dimensionless; 0 for a smooth curve. Used to test "BiJEPA's loss is smoother".
    """
    check_int("window", window, 3)
    check_float("start", start, 0.0, 1.0)
    y = np.log(np.asarray(loss, dtype=float))
    if len(y) < window + 2:
        raise ValueError(f"loss must have more than window + 1 = {window + 1} steps, got {len(y)}")
    trend = np.convolve(y, np.ones(window) / window, mode="valid")  # aligned with y[window//2 : -window//2]
    h = window // 2
    resid = y[h : len(y) - h] - trend
    return float(resid[int(start * len(resid)) :].std())
