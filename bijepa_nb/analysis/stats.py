"""Statistics over seeds: means (arithmetic and geometric) with 95% intervals, paired
ratios, p-values with Holm's correction, the book's verdict rule, and loss roughness."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.config import check_float


@dataclass(frozen=True)
class Interval:
    """mean, sample std, a two-sided ``level`` t-interval [low, high] for the mean, and n.

    ``log``: the interval was computed on log(values) and exponentiated (a geometric
    mean or ratio; ``mean`` is then the geometric mean and ``std`` that of the logs).
    """

    mean: float
    std: float
    low: float
    high: float
    n: int
    level: float = 0.95
    log: bool = False

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
        raise ValueError(
            f"values must be a non-empty 1-D sequence, got shape {v.shape}"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError(
            "values must be finite (a diverged seed has no score: drop it and say so)"
        )
    m = float(v.mean())
    if len(v) == 1:
        return Interval(m, float("nan"), float("nan"), float("nan"), 1, level)
    s = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1)) * s / np.sqrt(len(v))
    return Interval(m, s, m - half, m + half, len(v), level)


def paired_ratio_ci(
    a: Sequence[float], b: Sequence[float], level: float = 0.95
) -> Interval:
    """Interval of the geometric-mean ratio a / b over paired seeds (t-interval on log a - log b)."""
    la, lb = np.log(np.asarray(a, dtype=float)), np.log(np.asarray(b, dtype=float))
    if la.shape != lb.shape:
        raise ValueError(
            f"a and b must pair up seed by seed, got {la.shape} and {lb.shape}"
        )
    d = mean_ci(la - lb, level)
    return Interval(
        float(np.exp(d.mean)),
        d.std,
        float(np.exp(d.low)),
        float(np.exp(d.high)),
        d.n,
        level,
        log=True,
    )


def geometric_mean_ci(values: Sequence[float], level: float = 0.95) -> Interval:
    """Geometric mean over seeds and its ``level`` interval: a t-interval on log(values),
    exponentiated (``std`` is that of the logs). For positive scores such as an MSE whose
    seeds spread over orders of magnitude: one bad seed widens the interval by a factor
    instead of pulling its lower end below zero, where it would overlap everything."""
    v = np.asarray(values, dtype=float)
    if v.size and not np.all(v > 0):
        raise ValueError(
            f"values must be positive for a log-scale interval, got min {v.min():g}"
        )
    d = mean_ci(np.log(v), level)
    return Interval(
        float(np.exp(d.mean)),
        d.std,
        float(np.exp(d.low)),
        float(np.exp(d.high)),
        d.n,
        level,
        log=True,
    )


def t_pvalue(values: Sequence[float], null: float = 0.0) -> float:
    """Two-sided p-value of the one-sample t-test "mean of ``values`` = ``null``" (NaN for n < 2).

    It matches ``mean_ci``: the ``level`` interval excludes ``null`` exactly when
    p < 1 - level.
    """
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or len(v) == 0 or not np.all(np.isfinite(v)):
        raise ValueError("values must be a non-empty 1-D sequence of finite numbers")
    if len(v) < 2:
        return float("nan")
    s = v.std(ddof=1)
    if s == 0:
        return 0.0 if v.mean() != null else 1.0
    t = (v.mean() - null) / (s / np.sqrt(len(v)))
    return float(2 * stats.t.sf(abs(t), len(v) - 1))


def interval_pvalue(iv: Interval, null: float) -> float:
    """Two-sided p-value of the t-test behind a ``mean_ci`` / ``geometric_mean_ci`` /
    ``paired_ratio_ci`` interval, "mean = ``null``" (on the log scale when ``iv.log``):
    p < 1 - iv.level exactly when the interval excludes ``null``. NaN for n < 2."""
    from scipy import stats

    if iv.n < 2 or not np.isfinite(iv.std):
        return float("nan")
    if iv.log and not null > 0:
        raise ValueError(f"null must be positive for a log-scale interval, got {null}")
    m, m0 = (np.log(iv.mean), np.log(null)) if iv.log else (iv.mean, null)
    if iv.std == 0:
        return 0.0 if m != m0 else 1.0
    t = (m - m0) / (iv.std / np.sqrt(iv.n))
    return float(2 * stats.t.sf(abs(t), iv.n - 1))


def paired_ratio_pvalue(a: Sequence[float], b: Sequence[float]) -> float:
    """p-value of "geometric-mean ratio a / b = 1" over paired seeds (the test of ``paired_ratio_ci``)."""
    la, lb = np.log(np.asarray(a, dtype=float)), np.log(np.asarray(b, dtype=float))
    if la.shape != lb.shape:
        raise ValueError(
            f"a and b must pair up seed by seed, got {la.shape} and {lb.shape}"
        )
    return t_pvalue(la - lb, 0.0)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): reject where adjusted p < alpha.

    Controls the probability of any false rejection in the family at alpha, whatever the
    dependence between the tests. Sorted ascending, p_(i) is multiplied by m - i
    (i = 0, ..., m - 1), made monotone, and capped at 1.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1 or len(p) == 0 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(
            "pvalues must be a non-empty 1-D sequence of numbers in [0, 1]"
        )
    order = np.argsort(p, kind="mergesort")
    m = len(p)
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def mean_std(values: Sequence[float], digits: int = 4) -> str:
    """'mean ± std' over seeds (sample std), or the single value."""
    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return fmt(float(v[0]), digits)
    m, s = float(v.mean()), float(v.std(ddof=1))
    if m != 0 and abs(m) < 0.5 * 10 ** (-digits):
        return f"{m:.1e} ± {s:.1e}"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def sig(x: Any, digits: int = 3) -> str:
    """``digits`` significant digits (the book's tables): 0.0517, 6.21, 1.2e-05."""
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    return f"{x:.{digits}g}"


def fmt_interval(iv: Interval, digits: int = 3) -> str:
    """'mean [low, high]' with ``digits`` significant digits each."""
    return f"{sig(iv.mean, digits)} [{sig(iv.low, digits)}, {sig(iv.high, digits)}]"


def fmt(x: Any, digits: int = 4) -> str:
    """Fixed point with ``digits`` decimals; values too small for that get 2 significant digits."""
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    if x != 0 and abs(x) < 0.5 * 10 ** (-digits):
        return f"{x:.1e}"
    return f"{x:.{digits}f}"


def prediction_interval(
    values: Sequence[float], log: bool = False, level: float = 0.95
) -> Interval:
    """A ``level`` prediction interval for one more run, from runs over seeds.

    Student-t: mean ± t * std * sqrt(1 + 1/n); with ``log`` on log(values), then
    exponentiated (for positive quantities such as errors and ratios). ``mean`` is the
    (geometric) mean. Where does a single run, e.g. the paper's, plausibly fall?
    """
    from scipy import stats as st

    check_float("level", level, 0.0, 1.0, low_open=True)
    v = np.asarray(values, dtype=float)
    if log:
        if np.any(v <= 0):
            raise ValueError("values must be positive for a log-scale interval")
        v = np.log(v)
    if v.ndim != 1 or len(v) < 2 or not np.all(np.isfinite(v)):
        raise ValueError(f"values must be >= 2 finite numbers, got {values!r}")
    m, s = float(v.mean()), float(v.std(ddof=1))
    half = float(st.t.ppf(0.5 + level / 2, len(v) - 1)) * s * np.sqrt(1 + 1 / len(v))
    lo, hi = m - half, m + half
    if log:
        m, lo, hi = float(np.exp(m)), float(np.exp(lo)), float(np.exp(hi))
    return Interval(m, s, lo, hi, len(v), level, log=log)
