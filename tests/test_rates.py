"""rlref.algorithms.rates: log-log slopes (Seber & Lee 2003, §5.1)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.rates import fit_loglog_slope, loglog_slope


@settings(max_examples=20, deadline=None)
@given(st.floats(-3.0, 3.0), st.floats(0.01, 100.0), st.integers(2, 12))
def test_loglog_slope_recovers_an_exact_power_law(b: float, a: float, n: int) -> None:
    """y = a x^b exactly gives slope b, and the same slope as the t-interval fit (when n >= 3)."""
    x = np.geomspace(1.0, 1e4, n)
    y = a * x**b
    assert loglog_slope(x, y) == pytest.approx(b, abs=1e-9)
    if n >= 3:
        assert fit_loglog_slope(x, y).slope == pytest.approx(b, abs=1e-9)


def test_loglog_slope_two_points_closed_form_and_bad_input() -> None:
    """Two points: (log 8 − log 2)/(log 4 − log 1) = 1."""
    assert loglog_slope([1.0, 4.0], [2.0, 8.0]) == pytest.approx(1.0, abs=1e-14)
    with pytest.raises(ValueError, match="length >= 2"):
        loglog_slope([1.0], [1.0])
    with pytest.raises(ValueError, match=r"y\[1\] = 0.0"):
        loglog_slope([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="positive and finite"):
        loglog_slope([1.0, np.inf], [1.0, 2.0])
    with pytest.raises(ValueError, match="length >= 3"):
        fit_loglog_slope([1.0, 2.0], [1.0, 2.0])
