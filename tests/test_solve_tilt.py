"""Tests of rlref.solve.tilt: the β → 0 limit (greedy_limit) and the unchecked fast paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rlref.solve as rs


def test_greedy_limit_closed_form_ties_share_mass_proportional_to_pi_ref():
    """q = (3, 3, 1, 5), π_ref = (0.1, 0.3, 0.6, 0): the max over supp π_ref is 3 (action 3 is
    outside the support), shared by actions 0, 1 in proportion 0.1 : 0.3."""
    q = np.array([3.0, 3.0, 1.0, 5.0])
    ref = np.array([0.1, 0.3, 0.6, 0.0])
    np.testing.assert_allclose(rs.greedy_limit(q, ref), [0.25, 0.75, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(rs.greedy_limit(q), [0.0, 0.0, 0.0, 1.0])
    # a positive tie_tol makes the near-tie 2.9 a tie
    np.testing.assert_allclose(rs.greedy_limit([3.0, 2.9, 0.0], None, tie_tol=0.2), [0.5, 0.5, 0.0])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), A=st.integers(1, 6))
def test_greedy_limit_is_the_small_beta_limit_of_soft_greedy(seed, A):
    """On integer-valued q (gaps ≥ 1, exact ties frequent) soft_greedy at β = 1e-3 is within
    e^{-1000}·A of greedy_limit: the limit is taken explicitly, ties ∝ π_ref."""
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 3, size=(4, A)).astype(float)
    ref = rng.dirichlet(np.ones(A), 4)
    ref[rng.random((4, A)) < 0.3] = 0.0
    ref[:, 0] += 1e-3
    ref /= ref.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(rs.greedy_limit(q, ref), rs.soft_greedy(q, ref, 1e-3), atol=1e-12)
    value = np.einsum("sa,sa->s", rs.greedy_limit(q, ref), q)
    np.testing.assert_allclose(value, np.where(ref > 0, q, -np.inf).max(axis=1), atol=1e-12)


def test_unchecked_fast_paths_equal_checked_functions():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(5, 3)) * 10
    ref = rng.dirichlet(np.ones(3), 5)
    for beta in (1e-6, 0.3, 1e6, np.inf):
        np.testing.assert_allclose(rs.soft_value_unchecked(q, ref, beta), rs.soft_value(q, ref, beta), rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(rs.soft_greedy_unchecked(q, ref, beta), rs.soft_greedy(q, ref, beta), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("tie_tol", [np.nan, -1.0, np.inf])
def test_greedy_limit_rejects_bad_tie_tol(tie_tol):
    with pytest.raises(ValueError, match="tie_tol"):
        rs.greedy_limit(np.zeros(3), None, tie_tol=tie_tol)


def test_soft_greedy_at_beta_zero_points_to_greedy_limit():
    with pytest.raises(ValueError, match="greedy_limit"):
        rs.soft_greedy(np.zeros(3), None, 0.0)


def test_subnormal_beta_gives_the_argmax_limit_without_overflow_warnings():
    """β = 1e-310: (q − max)/β overflows to −inf, which is the exact limit (no RuntimeWarning, no NaN)."""
    q = np.array([0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(rs.soft_greedy(q, None, 1e-310), [0.0, 0.0, 0.0, 1.0])
    assert rs.soft_value(q, None, 1e-310) == pytest.approx(3.0, abs=1e-300)
