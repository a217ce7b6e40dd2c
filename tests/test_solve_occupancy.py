"""Tests of rlref.solve occupancy measures: flow constraints, normalization, value identity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rlref.solve as rs

from helpers import random_mdp


def random_policy(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(shape[-1]), shape[:-1])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), S=st.integers(1, 10), A=st.integers(1, 4), gamma=st.floats(0.0, 0.99),
       sparse=st.booleans())
def test_occupancy_satisfies_flow_sums_to_one_and_value_identity(seed, S, A, gamma, sparse):
    """d^π ≥ 0 satisfies the flow constraints, Σ d = 1, and J(π) = ⟨d^π, r⟩/(1 − γ)."""
    mdp = random_mdp(seed, S, A, gamma, sparse=sparse)
    pi = random_policy(seed + 1, (S, A))
    d = rs.occupancy_measure(mdp, pi)
    assert d.shape == (S, A) and np.all(d >= 0)
    assert d.sum() == pytest.approx(1.0, abs=1e-10)
    assert rs.flow_residual(mdp, d) <= 1e-10
    J = rs.policy_evaluation(mdp, pi).objective
    assert J == pytest.approx(np.sum(d * mdp.r) / (1 - gamma), abs=1e-8)


def test_occupancy_equals_truncated_discounted_visitation_series():
    """d(s, a) = (1 − γ) Σ_t γ^t Pr(s_t = s) π(a|s), summed explicitly by forward propagation."""
    mdp = random_mdp(3, S=7, A=2, gamma=0.8)
    pi = random_policy(4, (7, 2))
    P_pi = np.einsum("sa,sat->st", pi, mdp.dense_P())
    p, acc = mdp.mu0.copy(), np.zeros(7)
    for t in range(300):
        acc += (1 - mdp.gamma) * mdp.gamma**t * p
        p = p @ P_pi
    np.testing.assert_allclose(rs.occupancy_measure(mdp, pi), acc[:, None] * pi, atol=1e-12)
    np.testing.assert_allclose(rs.state_occupancy(mdp, pi), acc, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), H=st.integers(1, 5), staged=st.booleans(), gamma=st.floats(0.2, 1.0))
def test_finite_horizon_occupancy_per_stage(seed, H, staged, gamma):
    """d[h] = Pr(s_h, a_h): each stage sums to 1, flow residual 0, J = Σ_h γ^h ⟨d_h, r_h⟩."""
    mdp = random_mdp(seed, S=5, A=3, gamma=gamma, horizon=H, staged=staged)
    pi = random_policy(seed, (H, 5, 3))
    d = rs.occupancy_measure(mdp, pi)
    assert d.shape == (H, 5, 3)
    np.testing.assert_allclose(d.sum(axis=(1, 2)), 1.0, atol=1e-12)
    assert rs.flow_residual(mdp, d) <= 1e-12
    J = sum(gamma**h * np.sum(d[h] * mdp.reward(h)) for h in range(H))
    assert rs.policy_evaluation(mdp, pi).objective == pytest.approx(J, abs=1e-10)


def test_policy_from_occupancy_recovers_policy_and_defaults_on_zero_mass():
    """π(a|s) = d(s,a)/Σ_b d(s,b) where the state has mass; π_default (uniform if None) elsewhere."""
    mdp = random_mdp(5, S=6, A=3)
    pi = random_policy(6, (6, 3))
    np.testing.assert_allclose(rs.policy_from_occupancy(rs.occupancy_measure(mdp, pi)), pi, atol=1e-12)
    d = np.zeros((2, 3))
    d[0] = [0.2, 0.0, 0.6]
    out = rs.policy_from_occupancy(d)
    np.testing.assert_allclose(out, [[0.25, 0.0, 0.75], [1 / 3, 1 / 3, 1 / 3]])
    out = rs.policy_from_occupancy(d, pi_default=np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(out[1], [1.0, 0.0, 0.0])


def test_flow_residual_detects_a_perturbation():
    """A non-occupancy (perturbed or negative) array has a positive flow residual."""
    mdp = random_mdp(7)
    d = rs.occupancy_measure(mdp, random_policy(8, (6, 3)))
    bad = d.copy()
    bad[0, 0] += 1e-3
    assert rs.flow_residual(mdp, bad) >= 1e-3 * (1 - mdp.gamma) - 1e-12
    neg = d.copy()
    neg[1, 1] = -0.5
    assert rs.flow_residual(mdp, neg) >= 0.5


def test_sparse_occupancy_large_is_normalized():
    """S = 20000 sparse: the occupancy solve runs without densifying and satisfies the flow constraints."""
    mdp = random_mdp(1, S=20_000, A=4, gamma=0.9, sparse=True)
    pi = random_policy(2, (20_000, 4))
    d = rs.occupancy_measure(mdp, pi)
    assert mdp.is_sparse and d.sum() == pytest.approx(1.0, abs=1e-9)
    assert rs.flow_residual(mdp, d) <= 1e-12


def test_bad_inputs_raise():
    mdp = random_mdp(0)
    with pytest.raises(ValueError, match="pi must have shape"):
        rs.occupancy_measure(mdp, np.full((6, 2), 0.5))
    with pytest.raises(ValueError, match="d must have shape"):
        rs.flow_residual(mdp, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        rs.policy_from_occupancy(np.array([[0.5, -0.1]]))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), S=st.integers(1, 8), A=st.integers(1, 4), gamma=st.floats(0.0, 0.99),
       sparse=st.booleans())
def test_flow_matrix_is_selector_minus_discounted_transition_and_annihilates_occupancies(seed, S, A, gamma, sparse):
    """flow_matrix: M[s', (s, a)] = 1[s' = s] − γ P(s'|s, a) (built entry by entry here), and
    M d^π = (1 − γ) μ0 for every policy's occupancy (Puterman LP (6.9.2))."""
    mdp = random_mdp(seed, S, A, gamma, sparse=sparse)
    M = rs.flow_matrix(mdp)
    assert M.shape == (S, S * A)
    P = mdp.dense_P()
    expected = np.zeros((S, S * A))
    for s in range(S):
        for a in range(A):
            for t in range(S):
                expected[t, s * A + a] = float(t == s) - gamma * P[s, a, t]
    np.testing.assert_allclose(M.toarray(), expected, atol=1e-15)
    d = rs.occupancy_measure(mdp, random_policy(seed + 2, (S, A)))
    np.testing.assert_allclose(M @ d.ravel(), (1 - gamma) * mdp.mu0, atol=1e-10)


def test_flow_matrix_stage_and_gamma_override():
    """Finite horizon, stage-dependent P_h: flow_matrix(mdp, h, gamma=1) d_h = Σ_a d_h − P_hᵀ d_h."""
    mdp = random_mdp(5, S=4, A=2, gamma=0.7, horizon=3, staged=True)
    d = rs.occupancy_measure(mdp, random_policy(6, (3, 4, 2)))
    for h in range(2):
        M = rs.flow_matrix(mdp, h, gamma=1.0)
        push = np.einsum("sa,sat->t", d[h], mdp.dense_P()[h])
        np.testing.assert_allclose(M @ d[h].ravel(), d[h].sum(axis=1) - push, atol=1e-14)
    with pytest.raises(ValueError, match="gamma"):
        rs.flow_matrix(mdp, 0, gamma=1.5)
    with pytest.raises(ValueError, match="stage"):
        rs.flow_matrix(mdp, None)
