"""Tests for rlref.algorithms.occupancy_regularized (Laidlaw, Singhal, Dragan 2024).

Golden values come from independent computations: the occupancy LP solved by scipy's HiGHS,
value iteration, and occupancy measures accumulated by a truncated power series.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from rlref import TabularMDP
from rlref.algorithms.occupancy_regularized import (
    DIVERGENCES,
    divergence_value,
    flow_matrix,
    occupancy_of,
    solve,
    solve_action_kl,
    solve_action_kl_program,
    solve_sampled,
)

SEEDS = st.integers(0, 2**31 - 1)


def random_instance(seed: int, S: int = 5, A: int = 3, gamma: float = 0.8, sparse: bool = False):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S) * 0.5, size=(S, A))
    R = rng.normal(size=(S, A))
    mdp = TabularMDP(sp.csr_matrix(P.reshape(S * A, S)) if sparse else P, R, gamma=gamma)
    pi_ref = rng.dirichlet(np.ones(A), size=S)
    return mdp, pi_ref, rng


def power_series_occupancy(mdp: TabularMDP, pi: np.ndarray, tol: float = 1e-13) -> np.ndarray:
    """(1−γ) Σ_t γᵗ Pr(s_t = s) π(a|s), accumulated step by step (independent of any solve)."""
    P = mdp.dense_P()
    Ppi = np.einsum("sa,sat->st", pi, P)
    d, acc, w = np.asarray(mdp.mu0, dtype=float), np.zeros(mdp.num_states), 1.0 - mdp.gamma
    while w > tol:
        acc += w * d
        d = d @ Ppi
        w *= mdp.gamma
    return acc[:, None] * pi


def highs_lp(mdp: TabularMDP, r: np.ndarray) -> float:
    """max ⟨μ, r⟩ over the occupancy polytope, by scipy HiGHS on a dense constraint matrix."""
    S, A = mdp.num_states, mdp.num_actions
    P = mdp.dense_P().reshape(S * A, S)
    Aeq = np.kron(np.eye(S), np.ones((1, A))) - mdp.gamma * P.T
    res = linprog(-r.ravel(), A_eq=Aeq, b_eq=(1 - mdp.gamma) * mdp.mu0, bounds=(0, None), method="highs")
    assert res.status == 0
    return float(-res.fun)


def value_iteration(mdp: TabularMDP, r: np.ndarray) -> np.ndarray:
    v = np.zeros(mdp.num_states)
    for _ in range(5000):
        v = (r + mdp.gamma * mdp.expected_next(v)).max(axis=1)
    return v


# ----------------------------------------------------------------------------- building blocks
@settings(max_examples=15, deadline=None)
@given(SEEDS)
def test_occupancy_matches_power_series_and_satisfies_flow(seed):
    """μ_π solves the Bellman flow equations M μ = (1−γ) μ₀ and equals the series (1−γ)Σγᵗ d_t π."""
    mdp, pi, _ = random_instance(seed)
    mu = occupancy_of(mdp, pi)
    np.testing.assert_allclose(mu, power_series_occupancy(mdp, pi), atol=1e-10)
    np.testing.assert_allclose(flow_matrix(mdp) @ mu.ravel(), (1 - mdp.gamma) * mdp.mu0, atol=1e-12)


# ----------------------------------------------------------------------------- λ = 0 and λ → ∞
@settings(max_examples=10, deadline=None)
@given(SEEDS, st.sampled_from(DIVERGENCES))
def test_lambda_zero_is_the_occupancy_lp(seed, divergence):
    """At λ = 0 every program is the occupancy LP: its optimum equals HiGHS's, its duals equal V*."""
    mdp, pi_ref, _ = random_instance(seed)
    res = solve(mdp, None, pi_ref, 0.0, divergence)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(highs_lp(mdp, mdp.r), abs=1e-6)
    np.testing.assert_allclose(res.values, value_iteration(mdp, mdp.r), atol=1e-5)
    assert res.occupancy.sum() == pytest.approx(1.0, abs=1e-7)


@settings(max_examples=10, deadline=None)
@given(SEEDS, st.sampled_from(DIVERGENCES))
def test_large_lambda_returns_the_reference_occupancy(seed, divergence):
    """As λ → ∞ the maximizer tends to μ_ref (the unique zero of every divergence)."""
    mdp, pi_ref, _ = random_instance(seed)
    res = solve(mdp, None, pi_ref, 1e7, divergence)
    np.testing.assert_allclose(res.occupancy, power_series_occupancy(mdp, pi_ref), atol=2e-4)


@settings(max_examples=8, deadline=None)
@given(SEEDS, st.sampled_from(DIVERGENCES))
def test_penalty_and_proxy_return_decrease_with_lambda(seed, divergence):
    """For λ₁ < λ₂: D(μ_λ₂) <= D(μ_λ₁) and ⟨μ_λ₂, R̃⟩ <= ⟨μ_λ₁, R̃⟩ (optimality of each; derived here)."""
    mdp, pi_ref, _ = random_instance(seed)
    lams = [0.05, 0.3, 1.0, 3.0]
    sols = [solve(mdp, None, pi_ref, lam, divergence) for lam in lams]
    for a, b in zip(sols, sols[1:], strict=False):
        assert b.divergence_value <= a.divergence_value + 1e-5
        assert b.proxy_return <= a.proxy_return + 1e-5


# ----------------------------------------------------------------------------- KKT
@settings(max_examples=15, deadline=None)
@given(SEEDS, st.floats(0.05, 5.0))
def test_chi2_optimum_satisfies_kkt(seed, lam):
    """KKT of max ⟨μ,R̃⟩ − λχ²: R̃ − 2λ(μ − μ_ref)/μ_ref = Mᵀv − ν, ν >= 0, ν ⊙ μ = 0, Mμ = (1−γ)μ₀.

    v and ν are the dual variables reported by cvxpy.
    """
    mdp, pi_ref, _ = random_instance(seed)
    res = solve(mdp, None, pi_ref, lam, "chi2")
    mu, ref = res.occupancy.ravel(), power_series_occupancy(mdp, pi_ref).ravel()
    M = flow_matrix(mdp).toarray()
    grad = mdp.r.ravel() - 2 * lam * (mu - ref) / ref
    nu = res.nonneg_duals.ravel()
    np.testing.assert_allclose(M.T @ res.values - grad, nu, atol=1e-5)
    assert nu.min() >= -1e-6
    assert np.abs(nu * mu).max() <= 1e-6
    np.testing.assert_allclose(M @ mu, (1 - mdp.gamma) * mdp.mu0, atol=1e-7)


@settings(max_examples=10, deadline=None)
@given(SEEDS, st.floats(0.05, 2.0))
def test_sqrt_chi2_equals_chi2_at_the_matched_lambda(seed, lam):
    """√χ² at λ and χ² at λ' = λ / (2√χ²(μ*)) share the KKT point μ* (derived here)."""
    mdp, pi_ref, _ = random_instance(seed)
    a = solve(mdp, None, pi_ref, lam, "sqrt_chi2")
    if a.divergence_value < 1e-2:  # μ* ≈ μ_ref: the √χ² kink, where λ' is ill-conditioned
        return
    b = solve(mdp, None, pi_ref, lam / (2 * a.divergence_value), "chi2")
    np.testing.assert_allclose(a.occupancy, b.occupancy, atol=2e-4)


def test_sparse_and_dense_transitions_agree():
    """The formulation uses only M; dense and sparse P give the same optimum."""
    for div in DIVERGENCES:
        mdp, pi_ref, _ = random_instance(3)
        mdp_sp, _, _ = random_instance(3, sparse=True)
        a, b = solve(mdp, None, pi_ref, 0.7, div), solve(mdp_sp, None, pi_ref, 0.7, div)
        np.testing.assert_allclose(a.occupancy, b.occupancy, atol=1e-6)


def test_objective_is_not_beaten_by_random_policies():
    """The program's optimum is >= the regularized objective of any policy (here 200 random ones)."""
    mdp, pi_ref, rng = random_instance(11)
    for div in DIVERGENCES:
        res = solve(mdp, None, pi_ref, 0.4, div)
        ref = occupancy_of(mdp, pi_ref)
        for _ in range(50):
            mu = occupancy_of(mdp, rng.dirichlet(np.ones(mdp.num_actions), size=mdp.num_states))
            assert res.objective >= float(np.sum(mu * mdp.r)) - 0.4 * divergence_value(mu, ref, div) - 1e-6


# ----------------------------------------------------------------------------- action KL
@settings(max_examples=10, deadline=None)
@given(SEEDS, st.floats(0.05, 3.0))
def test_action_kl_soft_vi_agrees_with_its_convex_program(seed, lam):
    """Soft VI and the conditional-relative-entropy program in μ have the same optimum and policy."""
    mdp, pi_ref, _ = random_instance(seed)
    a = solve_action_kl(mdp, None, pi_ref, lam)
    b = solve_action_kl_program(mdp, None, pi_ref, lam)
    assert a.objective == pytest.approx(b.objective, abs=1e-6)
    assert a.objective == pytest.approx((1 - mdp.gamma) * mdp.mu0 @ a.values, abs=1e-8)
    np.testing.assert_allclose(a.policy, b.policy, atol=1e-4)
    assert a.action_kl == pytest.approx(b.divergence_value, abs=1e-4)


def test_action_kl_small_lambda_tends_to_the_lp_and_large_to_the_reference():
    mdp, pi_ref, _ = random_instance(5)
    assert solve_action_kl(mdp, None, pi_ref, 1e-4).proxy_return == pytest.approx(highs_lp(mdp, mdp.r), abs=5e-3)
    assert solve_action_kl(mdp, None, pi_ref, 0.0).proxy_return == pytest.approx(highs_lp(mdp, mdp.r), abs=1e-8)
    np.testing.assert_allclose(solve_action_kl(mdp, None, pi_ref, 1e6).policy, pi_ref, atol=1e-5)


# ----------------------------------------------------------------------------- sampled (ORPO)
def test_discriminator_estimates_the_log_ratio():
    """Logistic regression on one-hot features: as l2 → 0 its logits are the closed-form MLE
    log(n⁺/n⁻), the empirical log μ_π/μ_ref; with many samples that is close to the true ratio."""
    from rlref.algorithms.occupancy_regularized import _fit_discriminator

    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(12)) * 0.5 + 1 / 24, rng.dirichlet(np.ones(12)) * 0.5 + 1 / 24
    n = 1_000_000
    npos, nneg = rng.multinomial(n, p), rng.multinomial(n, q)
    d = _fit_discriminator(npos, nneg, 1e-9)
    np.testing.assert_allclose(d, np.log(npos / nneg), atol=1e-6)
    np.testing.assert_allclose(d, np.log(p / q), atol=0.02)


@pytest.mark.parametrize("divergence,lam", [("chi2", 0.5), ("sqrt_chi2", 0.3)])
def test_sampled_orpo_approaches_the_exact_program(divergence, lam):
    """Discriminator-penalized policy optimization reaches the exact optimum up to sampling error."""
    mdp, pi_ref, _ = random_instance(7)
    exact = solve(mdp, None, pi_ref, lam, divergence)
    ref_obj = float(np.sum(exact.reference_occupancy * mdp.r))
    res = solve_sampled(mdp, None, pi_ref, lam, divergence, num_samples=50_000, iterations=150, rng=np.random.default_rng(1))
    assert res.objective <= exact.objective + 1e-9
    # closes at least 95% of the gap between the reference policy and the exact optimum
    assert exact.objective - res.objective <= 0.05 * (exact.objective - ref_obj) + 1e-3
    assert np.abs(res.occupancy - exact.occupancy).sum() < 0.15


# ----------------------------------------------------------------------------- bad input
def test_reference_with_zero_occupancy_where_the_optimum_is_not_raises_for_chi2():
    mdp, pi_ref, _ = random_instance(2)
    pi_bad = pi_ref.copy()
    pi_bad[0] = [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"zero occupancy.*\(s=0, a=1\).*infinite"):
        solve(mdp, None, pi_bad, 1.0, "chi2")
    with pytest.raises(ValueError, match="infinite"):
        solve(mdp, None, pi_bad, 1.0, "kl")
    res = solve(mdp, None, pi_bad, 1.0, "chi2", restrict_support=True)
    assert res.occupancy[0, 1] == 0 and res.occupancy[0, 2] == 0
    assert np.isfinite(res.divergence_value)
    solve(mdp, None, pi_bad, 1.0, "tv")  # TV is finite everywhere: no error


def test_negative_lambda_raises():
    mdp, pi_ref, _ = random_instance(0)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        solve(mdp, None, pi_ref, -0.1)
    with pytest.raises(ValueError, match="lam"):
        solve_action_kl(mdp, None, pi_ref, float("nan"))


def test_proxy_of_wrong_shape_raises():
    mdp, pi_ref, _ = random_instance(0)
    with pytest.raises(ValueError, match=r"reward must have shape \(S, A\) = \(5, 3\)"):
        solve(mdp, np.zeros((5, 4)), pi_ref, 1.0)


def test_divergence_value_rejects_mismatched_shapes():
    """A (1,)-shaped reference would broadcast silently in the TV branch without the check."""
    mu = np.full((2, 2), 0.25)
    with pytest.raises(ValueError, match=r"mu must have the shape of mu_ref \(1,\)"):
        divergence_value(mu, np.ones(1), "tv")
    assert divergence_value(mu, mu, "tv") == 0.0


def test_non_finite_proxy_raises():
    mdp, pi_ref, _ = random_instance(0)
    r = np.zeros((5, 3))
    r[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"reward\[2, 1\]"):
        solve(mdp, r, pi_ref, 1.0)


def test_unknown_divergence_raises():
    mdp, pi_ref, _ = random_instance(0)
    with pytest.raises(ValueError, match="divergence must be one of"):
        solve(mdp, None, pi_ref, 1.0, "hellinger")


def test_bad_reference_policy_raises():
    mdp, pi_ref, _ = random_instance(0)
    with pytest.raises(ValueError, match="pi_ref"):
        solve(mdp, None, pi_ref[:, :2], 1.0)


def test_finite_horizon_mdp_raises():
    P = np.full((2, 2, 2), 0.5)
    mdp = TabularMDP(P, np.zeros((2, 2)), horizon=3)
    with pytest.raises(ValueError, match="discounted"):
        solve(mdp, None, np.full((2, 2), 0.5), 1.0)


def test_failed_solver_raises_runtime_error_naming_the_status():
    mdp, pi_ref, _ = random_instance(0)
    with pytest.raises(RuntimeError, match="status"):
        solve(mdp, None, pi_ref, 1.0, "chi2", solver="NOT_A_SOLVER")


# ----------------------------------------------------------------------------- cross-check with rlref.solve
@settings(max_examples=10, deadline=None)
@given(SEEDS)
def test_unregularized_program_agrees_with_the_lp(seed):
    """λ = 0: the χ² program's optimum is the occupancy LP's (rlref.solve.lp_occupancy, HiGHS).

    (solve_action_kl is built on rlref.solve.soft_value_iteration; its independent check is the
    convex-program form, test_action_kl_soft_vi_agrees_with_its_convex_program.)"""
    from rlref.solve import lp_occupancy

    mdp, pi_ref, _ = random_instance(seed)
    assert solve(mdp, None, pi_ref, 0.0).objective == pytest.approx(lp_occupancy(mdp).objective, abs=1e-7)
