"""Tests of rlref.solve.regularized: soft greedy step, soft value, soft VI, regularized evaluation."""

from __future__ import annotations

import itertools

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

import rlref.solve as rs
from rlref import TabularMDP


def random_mdp(seed: int, S: int = 6, A: int = 3, gamma: float = 0.9, horizon: int | None = None) -> TabularMDP:
    rng = np.random.default_rng(seed)
    return TabularMDP(rng.dirichlet(np.ones(S), (S, A)), rng.normal(size=(S, A)), gamma=gamma, horizon=horizon,
                      mu0=rng.dirichlet(np.ones(S)))


def random_policy(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(shape[-1]), shape[:-1])


# ----------------------------------------------------------------- one-step soft greedy
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), A=st.integers(2, 5), beta=st.floats(0.05, 5.0))
def test_soft_greedy_maximizes_regularized_objective_vs_cvxpy(seed, A, beta):
    """π ∝ π_ref e^{Q/β} maximizes Σ π Q − β KL(π‖π_ref), and the max equals soft_value (cvxpy/Clarabel)."""
    rng = np.random.default_rng(seed)
    q, ref = rng.normal(size=A) * 2, rng.dirichlet(np.ones(A))
    p = cp.Variable(A, nonneg=True)
    obj = q @ p + beta * cp.sum(cp.entr(p)) + beta * (np.log(ref) @ p)
    prob = cp.Problem(cp.Maximize(obj), [cp.sum(p) == 1])
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
    assert prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)  # Clarabel flags some at 1e-9 gaps; the checks below bind
    pi = rs.soft_greedy(q, ref, beta)
    np.testing.assert_allclose(pi, p.value, atol=1e-4)
    ours = q @ pi - beta * rs.kl_rows(pi, ref)
    assert ours >= prob.value - 1e-8  # at least as good as the convex solver's optimum
    assert rs.soft_value(q, ref, beta) == pytest.approx(prob.value, abs=1e-6)
    assert rs.soft_value(q, ref, beta) == pytest.approx(ours, abs=1e-12)


def test_soft_greedy_limits():
    """β → 0: greedy on supp π_ref (ties split ∝ π_ref); β = inf: π_ref; zero-support actions get 0."""
    q = np.array([1.0, 3.0, 3.0, 5.0])
    ref = np.array([0.1, 0.3, 0.6, 0.0])
    np.testing.assert_allclose(rs.soft_greedy(q, ref, 1e-12), [0.0, 1 / 3, 2 / 3, 0.0], atol=1e-12)
    np.testing.assert_array_equal(rs.soft_greedy(q, ref, np.inf), ref)
    assert rs.soft_value(q, ref, np.inf) == pytest.approx(ref @ q)
    assert rs.soft_value(q, ref, 1e-12) == pytest.approx(3.0, abs=1e-10)


def test_soft_value_no_overflow_at_extreme_beta():
    """β = 1e-12 and 1e12 give finite, accurate values (max on the support; π_ref-mean − Var/(2β) ≈ mean)."""
    rng = np.random.default_rng(0)
    q = rng.normal(size=(4, 5)) * 100
    ref = rng.dirichlet(np.ones(5), 4)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        small = rs.soft_value(q, ref, 1e-12)
        large = rs.soft_value(q, ref, 1e12)
        pg = rs.soft_greedy(q, ref, 1e-12)
        pl = rs.soft_greedy(q, ref, 1e12)
    np.testing.assert_allclose(small, q.max(axis=1), atol=1e-9)
    np.testing.assert_allclose(large, np.sum(ref * q, axis=1), atol=1e-7)
    np.testing.assert_array_equal(pg, np.eye(5)[q.argmax(axis=1)])
    np.testing.assert_allclose(pl, ref, atol=1e-9)


# ----------------------------------------------------------------- soft value iteration
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), beta=st.floats(0.01, 10.0), gamma=st.floats(0.0, 0.95))
def test_soft_vi_fixed_point_and_regularized_evaluation(seed, beta, gamma):
    """V = β log Σ π_ref exp((r + γPV)/β) (checked with scipy logsumexp); soft_policy_evaluation of the
    soft-greedy policy equals V; the certified bound holds; random policies are no better."""
    mdp = random_mdp(seed, gamma=gamma)
    ref = random_policy(seed + 1, (6, 3))
    res = rs.soft_value_iteration(mdp, beta, pi_ref=ref, epsilon=1e-10)
    assert res.converged
    q = mdp.r + gamma * np.einsum("sat,t->sa", mdp.dense_P(), res.values)
    rhs = beta * logsumexp(np.log(ref) + q / beta, axis=1)
    np.testing.assert_allclose(res.values, rhs, atol=1e-8)
    ev = rs.soft_policy_evaluation(mdp, res.policy, beta, ref)
    assert np.abs(ev.values - res.values).max() <= res.suboptimality_bound + 1e-9
    for k in range(3):
        other = rs.soft_policy_evaluation(mdp, random_policy(seed + 10 + k, (6, 3)), beta, ref)
        assert np.all(other.values <= res.values + 1e-8)


def test_soft_vi_tends_to_vi_as_beta_to_zero():
    """V* − β log(1/π_ref,min)/(1 − γ) ≤ V*_β ≤ V* (derived here: KL ≤ log 1/π_ref,min per step)."""
    mdp = random_mdp(3, gamma=0.9)
    v_star = rs.policy_iteration(mdp).values
    for beta in (1e-2, 1e-4, 1e-6):
        vb = rs.soft_value_iteration(mdp, beta).values
        assert np.all(vb <= v_star + 1e-8)
        assert np.all(vb >= v_star - beta * np.log(3) / (1 - 0.9) - 1e-8)


def test_soft_vi_tends_to_evaluation_of_pi_ref_as_beta_to_infinity():
    """V*_β → V^{π_ref} as β → ∞ (β = inf exactly), with V^{π_ref} ≤ V*_β."""
    mdp = random_mdp(4, gamma=0.9)
    ref = random_policy(5, (6, 3))
    v_ref = rs.policy_evaluation(mdp, ref).values
    np.testing.assert_allclose(rs.soft_value_iteration(mdp, np.inf, pi_ref=ref).values, v_ref, atol=1e-7)
    vb = rs.soft_value_iteration(mdp, 1e6, pi_ref=ref).values
    assert np.all(vb >= v_ref - 1e-7) and np.abs(vb - v_ref).max() < 1e-4


def test_entropy_regularization_is_kl_to_uniform_up_to_a_constant():
    """Soft VI with uniform π_ref equals the entropy-regularized value minus β log A /(1 − γ)."""
    mdp = random_mdp(6, gamma=0.8)
    beta = 0.7
    v_kl = rs.soft_value_iteration(mdp, beta).values
    # entropy-regularized soft VI written directly: V = β log Σ_a exp(Q/β)
    v = np.zeros(6)
    for _ in range(400):
        v = beta * logsumexp((mdp.r + 0.8 * np.einsum("sat,t->sa", mdp.dense_P(), v)) / beta, axis=1)
    np.testing.assert_allclose(v_kl + beta * np.log(3) / (1 - 0.8), v, atol=1e-8)


def test_finite_horizon_soft_vi_matches_regularized_evaluation():
    """Finite horizon (staged π_ref): backward soft recursion = soft_policy_evaluation of its policy."""
    H = 4
    mdp = random_mdp(8, horizon=H, gamma=1.0)
    ref = random_policy(9, (H, 6, 3))
    res = rs.soft_value_iteration(mdp, 0.5, pi_ref=ref)
    assert res.values.shape == (H, 6) and res.policy.shape == (H, 6, 3)
    ev = rs.soft_policy_evaluation(mdp, res.policy, 0.5, ref)
    np.testing.assert_allclose(ev.values, res.values, atol=1e-12)


@pytest.mark.parametrize("staged_ref", [False, True])
def test_token_tree_product_of_soft_policies_is_sequence_level_tilt(staged_ref):
    """On a prefix tree (V=3, L=3, γ=1): Π_h π_h(y_h|y_<h) = π_ref(y) exp(R(y)/β)/Z, β log Z = V_0(root)."""
    V, L, beta = 3, 3, 0.4
    rng = np.random.default_rng(0)
    prefixes = [()] + [p for n in range(1, L + 1) for p in itertools.product(range(V), repeat=n)]
    index = {p: i for i, p in enumerate(prefixes)}
    S = len(prefixes)
    P = np.zeros((S, V, S))
    R = np.zeros((S, V))
    for p, i in index.items():
        for a in range(V):
            if len(p) < L:
                P[i, a, index[p + (a,)]] = 1.0
                R[i, a] = rng.normal()  # token-level rewards along the way
            else:
                P[i, a, i] = 1.0
    mu0 = np.zeros(S)
    mu0[0] = 1.0
    mdp = TabularMDP(P, R, horizon=L, mu0=mu0)
    ref = rng.dirichlet(np.ones(V), (L, S) if staged_ref else S)
    res = rs.soft_value_iteration(mdp, beta, pi_ref=ref)

    def ref_at(h: int, i: int) -> np.ndarray:
        return ref[h, i] if staged_ref else ref[i]

    logw = {}
    for y in itertools.product(range(V), repeat=L):
        lp_ref = sum(np.log(ref_at(h, index[y[:h]])[y[h]]) for h in range(L))
        ret = sum(R[index[y[:h]], y[h]] for h in range(L))
        logw[y] = lp_ref + ret / beta
    logZ = logsumexp(list(logw.values()))
    for y, lw in logw.items():
        prod = np.prod([res.policy[h, index[y[:h]], y[h]] for h in range(L)])
        assert prod == pytest.approx(np.exp(lw - logZ), rel=1e-10)
    assert res.values[0, 0] == pytest.approx(beta * logZ, abs=1e-12)
    assert res.objective == pytest.approx(beta * logZ, abs=1e-12)


# ----------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("beta", [0.0, -1.0, np.nan])
def test_bad_beta_raises(beta):
    mdp = random_mdp(0)
    with pytest.raises(ValueError, match="beta"):
        rs.soft_value_iteration(mdp, beta)
    with pytest.raises(ValueError, match="beta"):
        rs.soft_greedy(np.zeros(3), None, beta)
    with pytest.raises(ValueError, match="beta"):
        rs.soft_value(np.zeros(3), None, beta)


def test_soft_policy_evaluation_rejects_infinite_beta_and_kl():
    mdp = random_mdp(0)
    pi = np.full((6, 3), 1 / 3)
    with pytest.raises(ValueError, match="beta"):
        rs.soft_policy_evaluation(mdp, pi, np.inf)
    ref = np.tile([0.5, 0.5, 0.0], (6, 1))
    with pytest.raises(ValueError, match="support of pi_ref"):
        rs.soft_policy_evaluation(mdp, pi, 1.0, ref)


def test_bad_pi_ref_raises():
    mdp = random_mdp(0)
    with pytest.raises(ValueError, match="pi_ref"):
        rs.soft_value_iteration(mdp, 1.0, pi_ref=np.full((6, 3), 0.5))
    with pytest.raises(ValueError, match="pi_ref"):
        rs.soft_greedy(np.zeros(3), np.array([0.5, 0.6, -0.1]), 1.0)
    with pytest.raises(ValueError, match="epsilon"):
        rs.soft_value_iteration(mdp, 1.0, epsilon=0.0)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), A=st.integers(1, 6))
def test_kl_rows_matches_scipy_rel_entr_with_zeros(seed, A):
    """KL(π‖π_ref) = Σ rel_entr(π, π_ref) (scipy, independent): 0·log 0 = 0, +inf off the support."""
    from scipy.special import rel_entr

    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.ones(A), 5) * (rng.random((5, A)) < 0.7)
    pi = np.where(pi.sum(axis=1, keepdims=True) > 0, pi, 1.0 / A)
    pi /= pi.sum(axis=1, keepdims=True)
    ref = rng.dirichlet(np.ones(A), 5) * (rng.random((5, A)) < 0.7)
    ref = np.where(ref.sum(axis=1, keepdims=True) > 0, ref, 1.0 / A)
    ref /= ref.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(rs.kl_rows(pi, ref), rel_entr(pi, ref).sum(axis=1), atol=1e-12)


def test_kl_rows_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"pi_ref of shape \(3, 2\) does not broadcast"):
        rs.kl_rows(np.full((2, 2), 0.5), np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match=r"pi must be non-negative; pi\[0, 1\]"):
        rs.kl_rows(np.array([[1.5, -0.5]]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"pi_ref must be finite"):
        rs.kl_rows(np.array([0.5, 0.5]), np.array([np.nan, 1.0]))
