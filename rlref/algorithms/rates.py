"""Empirical rates: the slope of log y against log x, for reading off a power law y ∝ x^slope.

The reproductions measure regret rates (√T is slope ½), convergence rates (1/t is slope −1) and sample-complexity
rates this way; one function does the fit.

References: Seber & Lee (2003), "Linear Regression Analysis", 2nd ed., Wiley, §5.1 (least squares and the
t-interval of a slope).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rlref._checks import as_float_array

__all__ = ["LogLogFit", "fit_loglog_slope", "loglog_slope"]


def _positive_pair(x: Any, y: Any, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    x = as_float_array("x", x, ndim=1)
    y = as_float_array("y", y, ndim=1)
    if x.shape != y.shape or x.size < minimum:
        raise ValueError(f"x and y must be 1-d of equal length >= {minimum}, got {x.shape} and {y.shape}")
    bad = ~((x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y))
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"x and y must be positive and finite for a log-log fit; x[{i}] = {float(x[i])!r}, y[{i}] = {float(y[i])!r}")
    return x, y


def loglog_slope(x: Any, y: Any) -> float:
    """The least-squares slope b of  log y = a + b log x  (``numpy.polyfit`` of degree 1 on the logs).

    Shapes: x[n], y[n] with n >= 2 -> float. Raises ValueError on other shapes or a non-positive or non-finite
    entry (named by index). References: Seber & Lee (2003), §5.1.
    """
    x, y = _positive_pair(x, y, 2)
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


@dataclass(frozen=True)
class LogLogFit:
    """Least-squares fit log y = a + slope·log x: slope, its standard error and a 95% t-interval."""

    slope: float
    intercept: float
    stderr: float
    ci_low: float
    ci_high: float


def fit_loglog_slope(x: Any, y: Any) -> LogLogFit:
    """Ordinary least squares of log y on log x with the slope's 95% Student-t interval.

    Shapes: x[n], y[n] with n >= 3 -> LogLogFit. Raises ValueError if fewer than 3 points or a non-positive value.
    References: Seber & Lee (2003), "Linear Regression Analysis", §5.1 (t-interval of a slope).
    """
    from scipy import stats

    x, y = _positive_pair(x, y, 3)
    res = stats.linregress(np.log(x), np.log(y))
    t = stats.t.ppf(0.975, x.size - 2)
    return LogLogFit(slope=float(res.slope), intercept=float(res.intercept), stderr=float(res.stderr),
                     ci_low=float(res.slope - t * res.stderr), ci_high=float(res.slope + t * res.stderr))
