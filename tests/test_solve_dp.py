"""Tests of rlref.solve Bellman operators, evaluation, VI, PI and MPI (claims named per test)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rlref.solve as rs
from rlref import TabularMDP
from rlref.policy import uniform_policy

from helpers import brute_force_values, random_mdp


def random_policy(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(shape[-1]), shape[:-1])


# ----------------------------------------------------------------- Bellman operators
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), S=st.integers(1, 8), A=st.integers(1, 4), gamma=st.floats(0.0, 0.99))
def test_bellman_operators_are_gamma_contractions_and_monotone(seed, S, A, gamma):
    """Puterman Prop. 6.2.4: ‖Tv − Tw‖ ≤ γ‖v − w‖, ‖T_π v − T_π w‖ ≤ γ‖v − w‖; v ≤ w ⇒ Tv ≤ Tw, T_π v ≤ T_π w."""
    mdp = random_mdp(seed, S, A, gamma)
    rng = np.random.default_rng(seed + 1)
    v, w = rng.normal(size=S) * 5, rng.normal(size=S) * 5
    pi = random_policy(seed + 2, (S, A))
    for op in (lambda x: rs.bellman_optimality(mdp, x), lambda x: rs.bellman_policy(mdp, x, pi)):
        assert np.abs(op(v) - op(w)).max() <= gamma * np.abs(v - w).max() + 1e-12
        lo = np.minimum(v, w)
        assert np.all(op(lo) <= op(v) + 1e-12) and np.all(op(lo) <= op(w) + 1e-12)


def test_bellman_q_matches_dense_formula_on_sparse_mdp():
    """Q = r + γ P v computed sparsely equals the dense einsum."""
    mdp = random_mdp(3, S=30, A=4, sparse=True)
    v = np.random.default_rng(0).normal(size=30)
    expected = mdp.r + mdp.gamma * np.einsum("sat,t->sa", mdp.dense_P(), v)
    np.testing.assert_allclose(rs.bellman_q(mdp, v), expected, atol=1e-12)


# ----------------------------------------------------------------- evaluation
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), sparse=st.booleans())
def test_policy_evaluation_solves_the_bellman_equation(seed, sparse):
    """V^π = r_π + γ P_π V^π, advantage has zero π-mean, and equals a truncated Neumann series."""
    mdp = random_mdp(seed, S=12, A=3, sparse=sparse)
    pi = random_policy(seed, (12, 3))
    res = rs.policy_evaluation(mdp, pi)
    np.testing.assert_allclose(res.values, rs.bellman_policy(mdp, res.values, pi), atol=1e-10)
    np.testing.assert_allclose(np.einsum("sa,sa->s", pi, res.advantage), 0.0, atol=1e-10)
    P_pi = np.einsum("sa,sat->st", pi, mdp.dense_P())
    r_pi = np.einsum("sa,sa->s", pi, mdp.r)
    v, term = np.zeros(12), r_pi.copy()
    for _ in range(400):
        v += term
        term = mdp.gamma * P_pi @ term
    np.testing.assert_allclose(res.values, v, atol=1e-9)
    assert res.objective == pytest.approx(mdp.mu0 @ v, abs=1e-9)


def test_finite_horizon_evaluation_matches_trajectory_enumeration():
    """V_0^π(s) = Σ over all length-H state-action paths of prob × discounted reward (staged P, r, π)."""
    H, S, A = 3, 3, 2
    mdp = random_mdp(5, S, A, gamma=0.8, horizon=H, staged=True)
    pi = random_policy(6, (H, S, A))
    P = mdp.dense_P()
    res = rs.policy_evaluation(mdp, pi)
    for s0 in range(S):
        total = 0.0
        for path in np.ndindex(*([S, A] * H)):
            s, a = path[0::2], path[1::2]
            if s[0] != s0:
                continue
            prob = np.prod([pi[h, s[h], a[h]] for h in range(H)])
            prob *= np.prod([P[h, s[h], a[h], s[h + 1]] for h in range(H - 1)])
            total += prob * sum(mdp.gamma**h * mdp.r[h, s[h], a[h]] for h in range(H))
        assert res.values[0, s0] == pytest.approx(total, abs=1e-12)
    assert res.policy.shape == (H, S, A) and res.q.shape == (H, S, A)


# ----------------------------------------------------------------- VI / PI / MPI agreement
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.95])
def test_vi_pi_mpi_agree_with_brute_force(sparse, gamma):
    """VI, PI and MPI all return V* (enumeration of the A^S deterministic policies) to 1e-6."""
    mdp = random_mdp(11, S=5, A=3, gamma=gamma, sparse=sparse)
    v_star = brute_force_values(mdp)
    for res in (rs.value_iteration(mdp), rs.policy_iteration(mdp), rs.modified_policy_iteration(mdp, m=4)):
        assert res.converged
        np.testing.assert_allclose(res.values, v_star, atol=1e-6)
        np.testing.assert_allclose(rs.policy_evaluation(mdp, res.policy).values, v_star, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), H=st.integers(1, 5), staged=st.booleans(), gamma=st.floats(0.3, 1.0))
def test_finite_horizon_vi_pi_mpi_agree(seed, H, staged, gamma):
    """Backward induction, finite-horizon PI and MPI give the same V*_h, and V^{π_greedy} = V*."""
    mdp = random_mdp(seed, S=5, A=3, gamma=gamma, horizon=H, staged=staged)
    vi = rs.value_iteration(mdp)
    assert vi.values.shape == (H, 5) and vi.policy.shape == (H, 5, 3)
    np.testing.assert_allclose(rs.policy_iteration(mdp).values, vi.values, atol=1e-10)
    np.testing.assert_allclose(rs.modified_policy_iteration(mdp).values, vi.values, atol=1e-10)
    np.testing.assert_allclose(rs.policy_evaluation(mdp, vi.policy).values, vi.values, atol=1e-10)
    # Bellman optimality at every stage, V_H = 0
    for h in range(H):
        nxt = vi.values[h + 1] if h + 1 < H else np.zeros(5)
        np.testing.assert_allclose(vi.values[h], rs.bellman_optimality(mdp, nxt, h=h), atol=1e-12)


def test_sparse_finite_horizon_agrees_with_dense():
    """A sparse stationary P with stage-dependent rewards gives the dense answer."""
    sparse_mdp = random_mdp(21, S=20, A=3, sparse=True)
    R = np.random.default_rng(0).normal(size=(4, 20, 3))
    fs = TabularMDP(sparse_mdp.P, R, horizon=4)
    fd = TabularMDP(sparse_mdp.dense_P(), R, horizon=4)
    np.testing.assert_allclose(rs.value_iteration(fs).values, rs.value_iteration(fd).values, atol=1e-12)
    np.testing.assert_allclose(rs.policy_iteration(fs).values, rs.value_iteration(fd).values, atol=1e-10)


# ----------------------------------------------------------------- certificates
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), gamma=st.floats(0.5, 0.99), eps=st.sampled_from([1e-1, 1e-3, 1e-6]))
def test_value_iteration_certificate_holds(seed, gamma, eps):
    """Puterman Thm 6.3.1 / Williams-Baird: ‖V^{π_greedy} − V*‖ ≤ suboptimality_bound ≤ ε and
    ‖values − V*‖ ≤ γ·residual/(1 − γ), with V* from policy iteration and V^π by exact evaluation."""
    mdp = random_mdp(seed, S=8, A=3, gamma=gamma)
    res = rs.value_iteration(mdp, epsilon=eps)
    v_star = rs.policy_iteration(mdp).values
    loss = np.abs(rs.policy_evaluation(mdp, res.policy).values - v_star).max()
    assert res.converged and loss <= res.suboptimality_bound + 1e-12 <= eps * (1 + 1e-6) + 1e-12
    assert np.abs(res.values - v_star).max() <= gamma * res.bellman_residual / (1 - gamma) + 1e-12
    assert np.all(res.values == res.q.max(axis=1))


def test_value_iteration_gamma_zero_is_one_step():
    """γ = 0: V* = max_a r in one sweep with a zero bound."""
    mdp = random_mdp(1, gamma=0.0)
    res = rs.value_iteration(mdp)
    assert res.iterations == 1 and res.suboptimality_bound == 0.0
    np.testing.assert_array_equal(res.values, mdp.r.max(axis=1))


def test_mpi_certificate_and_policy_iteration_bound():
    """MPI's bound dominates its true loss; PI's bound δ/(1 − γ) is tiny and its values are V^π."""
    mdp = random_mdp(8, S=10, A=4, gamma=0.97)
    pi_res = rs.policy_iteration(mdp)
    assert pi_res.converged and pi_res.suboptimality_bound < 1e-8
    np.testing.assert_allclose(rs.policy_evaluation(mdp, pi_res.policy).values, pi_res.values, atol=1e-10)
    mpi = rs.modified_policy_iteration(mdp, m=3, epsilon=1e-4)
    loss = np.abs(rs.policy_evaluation(mdp, mpi.policy).values - pi_res.values).max()
    assert loss <= mpi.suboptimality_bound <= 1e-4


def test_max_iter_signals_non_convergence_and_strict_raises():
    """Hitting max_iter gives converged=False (still a valid bound); strict=True raises RuntimeError."""
    mdp = random_mdp(2, gamma=0.99)
    res = rs.value_iteration(mdp, max_iter=3)
    assert not res.converged and res.iterations == 3
    v_star = rs.policy_iteration(mdp).values
    assert np.abs(rs.policy_evaluation(mdp, res.policy).values - v_star).max() <= res.suboptimality_bound
    with pytest.raises(RuntimeError, match="value_iteration"):
        rs.value_iteration(mdp, max_iter=3, strict=True)
    with pytest.raises(RuntimeError, match="modified_policy_iteration"):
        rs.modified_policy_iteration(mdp, max_iter=2, strict=True)


def test_policy_iteration_does_not_cycle_on_exact_ties():
    """Duplicated actions (exact ties in Q) must not make PI cycle: it stops in a few iterations."""
    base = random_mdp(4, S=6, A=2, gamma=0.9)
    P = np.concatenate([base.dense_P()] * 3, axis=1)
    R = np.concatenate([base.r] * 3, axis=1)
    mdp = TabularMDP(P, R, gamma=0.9)
    res = rs.policy_iteration(mdp, pi0=uniform_policy(mdp))
    assert res.converged and res.iterations <= 10
    np.testing.assert_allclose(res.values, rs.policy_iteration(base).values, atol=1e-10)


def test_large_sparse_smoke():
    """S = 20000, A = 4, 3 successors: VI, evaluation and PI run on the sparse matrix and agree."""
    mdp = random_mdp(0, S=20_000, A=4, gamma=0.9, sparse=True)
    assert mdp.is_sparse
    vi = rs.value_iteration(mdp, epsilon=1e-7)
    ev = rs.policy_evaluation(mdp, vi.policy)
    pi = rs.policy_iteration(mdp)
    assert mdp.is_sparse
    np.testing.assert_allclose(vi.values, pi.values, atol=1e-6)
    np.testing.assert_allclose(ev.values, pi.values, atol=1e-6)


# ----------------------------------------------------------------- bad inputs
def test_bad_policy_shape_raises():
    mdp = random_mdp(0)
    with pytest.raises(ValueError, match="pi must have shape"):
        rs.policy_evaluation(mdp, np.full((3, 3), 1 / 3))


def test_non_stochastic_policy_raises():
    mdp = random_mdp(0)
    with pytest.raises(ValueError, match="sum to 1"):
        rs.policy_evaluation(mdp, np.full((6, 3), 0.5))


def test_negative_policy_raises():
    mdp = random_mdp(0)
    pi = np.full((6, 3), 1 / 3)
    pi[0] = [1.5, -0.5, 0.0]
    with pytest.raises(ValueError, match="non-negative"):
        rs.policy_evaluation(mdp, pi)


@pytest.mark.parametrize("eps", [0.0, -1e-3, np.nan])
def test_bad_epsilon_raises(eps):
    with pytest.raises(ValueError, match="epsilon"):
        rs.value_iteration(random_mdp(0), epsilon=eps)


def test_bad_max_iter_m_and_v0_raise():
    mdp = random_mdp(0)
    with pytest.raises(ValueError, match="max_iter"):
        rs.value_iteration(mdp, max_iter=0)
    with pytest.raises(ValueError, match="m must"):
        rs.modified_policy_iteration(mdp, m=0)
    with pytest.raises(ValueError, match="v0"):
        rs.value_iteration(mdp, v0=np.zeros(5))


def test_bad_value_vector_raises():
    with pytest.raises(ValueError, match="v must have shape"):
        rs.bellman_q(random_mdp(0), np.zeros(4))
