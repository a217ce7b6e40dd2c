"""Policy helpers: greedy with ties, softmax toward a reference, validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref import TabularMDP
from rlref.policy import deterministic_policy, greedy_policy, softmax_policy, uniform_policy, validate_policy

MDP = TabularMDP(np.full((3, 2, 3), 1 / 3), np.zeros((3, 2)), horizon=4)


def test_greedy_splits_ties_uniformly_and_first_is_deterministic() -> None:
    q = np.array([[1.0, 3.0, 3.0], [0.0, 0.0, 0.0], [5.0, 1.0, 2.0]])
    np.testing.assert_allclose(greedy_policy(q), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3], [1, 0, 0]])
    np.testing.assert_allclose(greedy_policy(q, ties="first"), [[0, 1, 0], [1, 0, 0], [1, 0, 0]])
    # values within tie_tol of the max count as tied
    np.testing.assert_allclose(greedy_policy([[1.0, 1.0 - 1e-12]]), [[0.5, 0.5]])
    np.testing.assert_allclose(greedy_policy([[1.0, 1.0 - 1e-12]], tie_tol=0.0), [[1.0, 0.0]])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), S=st.integers(1, 5), A=st.integers(1, 5))
def test_greedy_is_permutation_equivariant_and_maximizes(seed: int, S: int, A: int) -> None:
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 3, size=(S, A)).astype(float)  # many ties
    pi = greedy_policy(q)
    perm = rng.permutation(A)
    np.testing.assert_allclose(greedy_policy(q[:, perm]), pi[:, perm])
    np.testing.assert_allclose((pi * q).sum(axis=1), q.max(axis=1))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), tau=st.floats(1e-3, 1e3))
def test_softmax_matches_direct_formula(seed: int, tau: float) -> None:
    """π ∝ π_ref · exp(Q/τ), compared with the direct (shifted) exponentials."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(4, 3)) * 5
    ref = rng.dirichlet(np.ones(3), size=4)
    w = ref * np.exp((q - q.max(axis=1, keepdims=True)) / tau)
    np.testing.assert_allclose(softmax_policy(q, tau, ref), w / w.sum(axis=1, keepdims=True), rtol=1e-10, atol=1e-300)


def test_softmax_is_overflow_free_and_respects_zero_reference_mass() -> None:
    pi = softmax_policy(np.array([[1e6, 0.0, -1e6]]), temperature=1e-6, pi_ref=np.array([[0.0, 0.5, 0.5]]))
    np.testing.assert_allclose(pi, [[0.0, 1.0, 0.0]])
    assert np.all(np.isfinite(pi))


def test_validate_policy_accepts_stationary_and_staged() -> None:
    validate_policy(MDP, uniform_policy(MDP))
    assert uniform_policy(MDP, stages=True).shape == (4, 3, 2)
    validate_policy(MDP, uniform_policy(MDP, stages=True))


def test_validate_policy_errors() -> None:
    with pytest.raises(ValueError, match="pi must have shape"):
        validate_policy(MDP, np.full((2, 2), 0.5))
    bad = uniform_policy(MDP)
    bad[2] = [0.9, 0.2]
    with pytest.raises(ValueError, match=r"pi\[2, :\] must sum to 1"):
        validate_policy(MDP, bad)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        softmax_policy(np.zeros((1, 2)), temperature=0.0)
    with pytest.raises(ValueError, match="ties must be"):
        greedy_policy(np.zeros((1, 2)), ties="random")
    with pytest.raises(ValueError, match=r"actions must lie in \[0, 2\)"):
        deterministic_policy(np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="q must be finite"):
        greedy_policy(np.array([[np.nan, 1.0]]))


def test_softmax_rejects_a_reference_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"pi_ref of shape \(4, 2\) does not broadcast"):
        softmax_policy(np.zeros((3, 2)), 1.0, np.full((4, 2), 0.5))
    # a per-action reference broadcasts over states
    np.testing.assert_allclose(softmax_policy(np.zeros((3, 2)), 1.0, np.array([0.25, 0.75])), [[0.25, 0.75]] * 3)


@pytest.mark.parametrize("num_actions", [0, -1, 2.0, True])
def test_deterministic_policy_rejects_bad_num_actions(num_actions) -> None:
    with pytest.raises(ValueError, match="num_actions must be a positive integer"):
        deterministic_policy(np.array([0, 1]), num_actions)


# ----------------------------------------------------------------------------- hostile inputs (issue #11 item 10)
@pytest.mark.parametrize("tie_tol", [float("nan"), -1e-3, float("inf"), "0.1", True])
def test_greedy_rejects_a_bad_tie_tol_by_name(tie_tol) -> None:
    """A NaN tie_tol used to give a NaN policy (q >= max - nan is all False, 0/0); it must raise."""
    with pytest.raises(ValueError, match="tie_tol"):
        greedy_policy([[1.0, 2.0]], tie_tol=tie_tol)


def test_greedy_rejects_an_unknown_ties_rule_by_name() -> None:
    with pytest.raises(ValueError, match="ties"):
        greedy_policy([[1.0, 2.0]], ties="random")


def test_softmax_at_an_overflowing_q_over_tau_is_the_argmax_limit() -> None:
    """Q/τ beyond float64 (1e300 / 1e-10) used to give NaN; the limit τ → 0 is the argmax
    (ties split uniformly), and an action outside supp π_ref stays at 0."""
    np.testing.assert_array_equal(softmax_policy([[1e300, -1e300, 0.0]], 1e-10), [[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(softmax_policy([[1e300, 1e300]], 1e-10), [[0.5, 0.5]])
    np.testing.assert_array_equal(softmax_policy([[1e300, 0.0]], 1e-10, pi_ref=[0.0, 1.0]), [[0.0, 1.0]])


def test_validate_policy_accepts_float32_rows_at_their_precision() -> None:
    """A float32 policy normalized in float32 (row sums off by ~1e-7) is accepted and returned
    renormalized in float64; a float64 row off by 1e-7 is still refused (tolerance 1e-8)."""
    mdp = TabularMDP(np.full((2, 7, 2), 0.5), np.zeros((2, 7)), gamma=0.9)
    pi32 = np.full((2, 7), 1 / 7, dtype=np.float32)  # float32(1/7) · 7 = 1 + 5.1e-8 in float64
    assert abs(float(pi32.astype(np.float64).sum(axis=1)[0]) - 1.0) > 1e-8
    out = validate_policy(mdp, pi32)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-15)
    np.testing.assert_allclose(out, pi32, rtol=1e-6)
    bad = np.full((2, 7), 1 / 7) + np.array([1e-7] + [0.0] * 6)
    with pytest.raises(ValueError, match=r"pi\[0, :\] must sum to 1"):
        validate_policy(mdp, bad)


def test_softmax_policy_is_the_one_tilt():
    """softmax_policy(q, τ, π_ref) is rlref.solve.soft_greedy(q, π_ref, τ) (one formula, in the core),
    and rlref.solve.tilt re-exports the core functions rather than copying them."""
    import rlref.solve as rs
    from rlref import policy as P
    from rlref.solve import tilt

    rng = np.random.default_rng(2)
    q, ref = rng.normal(size=(4, 3)) * 5, rng.dirichlet(np.ones(3), 4)
    for tau in (1e-3, 0.7, 40.0):
        np.testing.assert_array_equal(softmax_policy(q, tau, ref), rs.soft_greedy(q, ref, tau))
        np.testing.assert_array_equal(softmax_policy(q, tau), rs.soft_greedy(q, None, tau))
    for name in tilt.__all__:
        assert getattr(tilt, name) is getattr(P, name) is getattr(rs, name)
    with pytest.raises(ValueError, match="temperature"):
        softmax_policy(q, np.inf)
