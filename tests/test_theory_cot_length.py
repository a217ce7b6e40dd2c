"""rlref.theory.cot_length: the CoT-length model of Wu et al. (2025), "When More is Less"."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq, minimize_scalar

from rlref.theory.cot_length import (
    cot_accuracy,
    grid_optimal_length,
    lambert_factor,
    optimal_length,
    simulate_accuracy,
    subtask_error,
)

caps = st.floats(0.5, 20.0)
diffs = st.floats(0.5, 20.0)
noises = st.floats(0.005, 0.5)


def test_accuracy_closed_form_by_hand():
    # T = 4, M = 2, N = 4, σ = 0.1, α = 0.9: E = 0.5, A = 0.9 (0.5 · 0.9)^4
    assert float(cot_accuracy(4, 2.0, 4.0, 0.1, 0.9)) == pytest.approx(0.9 * 0.45 ** 4, rel=1e-13)
    assert float(subtask_error(4, 2.0, 4.0)) == 0.5
    # a step harder than the model can do: N ≤ T/M gives accuracy 0
    assert float(cot_accuracy(2, 2.0, 4.0, 0.1)) == 0.0


@settings(max_examples=25, deadline=None)
@given(caps, diffs, noises)
def test_lambert_optimum_equals_numerical_maximizer(m, t, s):
    """N* = T Z/(M(Z+1)) equals a bounded scalar maximizer of log A (independent: scipy, no W)."""
    opt = optimal_length(m, t, s)
    c = t / m
    f = lambda n: -(n * (math.log1p(-c / n) + math.log1p(-s)))  # noqa: E731
    res = minimize_scalar(f, bounds=(c * (1 + 1e-9), c * 1e4), method="bounded", options={"xatol": 1e-10 * c})
    assert opt.n_star == pytest.approx(res.x, rel=1e-5)
    assert opt.stationarity < 1e-9


@settings(max_examples=25, deadline=None)
@given(noises)
def test_lambert_factor_solves_its_equation_via_brentq(s):
    """v = −Z is the root > 1 of v − log v = 1 − log(1 − σ) (root found by bisection, not by W)."""
    v = brentq(lambda v: v - math.log(v) - 1 + math.log1p(-s), 1 + 1e-12, 1e6, xtol=1e-14)
    assert -lambert_factor(s) == pytest.approx(v, rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(caps, diffs, noises)
def test_integer_optimum_equals_grid_search(m, t, s):
    opt = optimal_length(m, t, s)
    top = int(max(10, 3 * math.ceil(opt.n_star)))
    g = grid_optimal_length(m, t, s, top)
    acc = cot_accuracy(np.arange(1, top + 1), m, t, s)
    assert acc[opt.n_int - 1] == pytest.approx(acc[g - 1], rel=1e-12)
    assert acc.max() == pytest.approx(opt.accuracy_int, rel=1e-12)


@settings(max_examples=20, deadline=None)
@given(caps, diffs, noises, st.floats(1.1, 5.0))
def test_scaling_law_monotone_in_difficulty_and_capability(m, t, s, k):
    """N* grows with T (∝ T) and falls with M (∝ 1/M); more noise shortens it."""
    base = optimal_length(m, t, s).n_star
    assert optimal_length(m, k * t, s).n_star == pytest.approx(k * base, rel=1e-12)
    assert optimal_length(k * m, t, s).n_star == pytest.approx(base / k, rel=1e-12)
    assert optimal_length(m, t, min(0.99, s * k)).n_star < base


def test_inverted_u_strictly():
    n = np.arange(3, 200)  # N > T/M = 2.5; below it the accuracy is 0
    acc = cot_accuracy(n, 4.0, 10.0, 0.02)
    assert np.all(cot_accuracy(np.arange(1, 3), 4.0, 10.0, 0.02) == 0.0)
    peak = int(np.argmax(acc))
    assert 0 < peak < len(n) - 1
    assert np.all(np.diff(acc[: peak + 1]) > 0) and np.all(np.diff(acc[peak:]) < 0)


def test_monte_carlo_matches_closed_form():
    rng = np.random.default_rng(0)
    for n in (3, 8, 20):
        p = float(cot_accuracy(n, 4.0, 6.0, 0.03, 0.95))
        mc = simulate_accuracy(n, 4.0, 6.0, 0.03, 0.95, num=40_000, rng=rng)
        assert abs(mc - p) < 5 * math.sqrt(p * (1 - p) / 40_000) + 1e-12


@pytest.mark.parametrize("call, match", [
    (lambda: cot_accuracy(0, 1.0, 1.0, 0.1), "n"),
    (lambda: cot_accuracy(3, -1.0, 1.0, 0.1), "capability"),
    (lambda: cot_accuracy(3, 1.0, 0.0, 0.1), "difficulty"),
    (lambda: cot_accuracy(3, 1.0, 1.0, 1.0), "noise"),
    (lambda: cot_accuracy(3, 1.0, 1.0, -0.1), "noise"),
    (lambda: cot_accuracy(3, 1.0, 1.0, 0.1, alpha=1.5), "alpha"),
    (lambda: optimal_length(1.0, 1.0, 0.0), "noise"),
    (lambda: grid_optimal_length(1.0, 1.0, 0.1, 0), "max_steps"),
    (lambda: simulate_accuracy(2.5, 1.0, 1.0, 0.1), "n"),
])
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
