"""Tests for rlref.algorithms.constrained (CMDP LP, Lagrangian, composite proxies, two-stage)."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref import TabularMDP
from rlref.algorithms.constrained import (
    InfeasibleCMDPError,
    lagrangian_primal_dual,
    solve_cmdp,
    solve_composite,
    two_stage,
)
from rlref.algorithms.occupancy_regularized import flow_matrix, occupancy_of

SEEDS = st.integers(0, 2**31 - 1)


def instance(seed: int, S: int = 5, A: int = 3, K: int = 2, gamma: float = 0.8):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S) * 0.5, size=(S, A))
    mdp = TabularMDP(P, rng.normal(size=(S, A)), gamma=gamma)
    C = rng.uniform(0, 1, size=(K, S, A))
    return mdp, C, rng


def cvxpy_cmdp(mdp: TabularMDP, r: np.ndarray, C: np.ndarray, b: np.ndarray) -> float:
    """The same LP through cvxpy/Clarabel (an independent solver)."""
    x = cp.Variable(mdp.num_states * mdp.num_actions)
    cons = [flow_matrix(mdp) @ x == (1 - mdp.gamma) * mdp.mu0, x >= 0, C.reshape(len(b), -1) @ x <= b]
    prob = cp.Problem(cp.Maximize(r.ravel() @ x), cons)
    prob.solve(solver="CLARABEL")
    return float(prob.value)


def feasible_thresholds(mdp, C, rng):
    """Thresholds between a random policy's cost and the min cost: feasible, often binding."""
    pi = rng.dirichlet(np.ones(mdp.num_actions), size=mdp.num_states)
    return np.einsum("ksa,sa->k", C, occupancy_of(mdp, pi)) - 0.05


@settings(max_examples=15, deadline=None)
@given(SEEDS)
def test_cmdp_lp_matches_cvxpy_and_satisfies_strong_duality(seed):
    """HiGHS optimum = Clarabel optimum; constraints hold; OPT = (1−γ)μ₀·v + λ·b; λ ⊥ slack."""
    mdp, C, rng = instance(seed)
    b = feasible_thresholds(mdp, C, rng)
    try:
        res = solve_cmdp(mdp, None, C, b)
    except InfeasibleCMDPError:
        return
    assert res.objective == pytest.approx(cvxpy_cmdp(mdp, mdp.r, C, b), abs=1e-6)
    assert np.all(res.constraint_values <= b + 1e-8)
    assert np.all(res.multipliers >= -1e-9)
    assert res.objective == pytest.approx((1 - mdp.gamma) * mdp.mu0 @ res.values + res.multipliers @ b, abs=1e-7)
    np.testing.assert_allclose(res.multipliers * (b - res.constraint_values), 0, atol=1e-8)
    # reduced costs: r − λ·C − Mᵀv <= 0, and = 0 where μ > 0
    red = (mdp.r - np.einsum("k,ksa->sa", res.multipliers, C)).ravel() - flow_matrix(mdp).T @ res.values
    assert red.max() <= 1e-7
    assert np.abs(red[res.occupancy.ravel() > 1e-9]).max() <= 1e-7


def test_loose_constraints_give_the_unconstrained_optimum():
    mdp, C, _ = instance(1)
    res = solve_cmdp(mdp, None, C, np.full(2, 10.0))
    assert res.objective == pytest.approx(cvxpy_cmdp(mdp, mdp.r, C, np.full(2, 10.0)), abs=1e-7)
    np.testing.assert_allclose(res.multipliers, 0, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lagrangian_converges_to_the_lp_with_vanishing_gap(seed):
    """The averaged primal iterate approaches the LP optimum; gap and violation shrink toward 0."""
    mdp, C, rng = instance(seed)
    b = feasible_thresholds(mdp, C, rng)
    lp = solve_cmdp(mdp, None, C, b)
    res = lagrangian_primal_dual(mdp, None, C, b, iterations=2000, step=2.0)
    assert res.dual_value >= lp.objective - 1e-9  # weak duality
    assert res.duality_gap <= 0.02 * (1 + abs(lp.objective))
    assert res.max_violation <= 0.01
    assert res.objective == pytest.approx(lp.objective, abs=0.02)
    assert res.gap_trace[-1] <= max(res.gap_trace[99], 0.0) + 1e-9  # shrinking over time


def test_composite_keeps_each_component_under_its_threshold():
    mdp, C, rng = instance(4, K=3)
    th = feasible_thresholds(mdp, C, rng)
    lp = solve_composite(mdp, C, th)
    assert np.all(lp.constraint_values <= th + 1e-8)
    lag = solve_composite(mdp, C, th, method="lagrangian", iterations=2000, step=2.0)
    assert np.all(lag.constraint_values <= th + 0.01)
    free = solve_cmdp(mdp, C.sum(axis=0), C, np.full(3, 1e3))
    assert free.objective >= lp.objective - 1e-9


@settings(max_examples=8, deadline=None)
@given(SEEDS, st.floats(0.1, 2.0), st.floats(0.1, 2.0))
def test_two_stage_matches_its_convex_program(seed, l1, l2):
    """Stage 2 equals max ⟨μ,R₀⟩ − Σ_k λ_k Σ μ log(μ/(μ_s π_k)) solved by cvxpy (independent)."""
    mdp, C, _ = instance(seed)
    lam = np.array([l1, l2])
    res = two_stage(mdp, mdp.r, C, lam, aux_temperature=0.2)
    S, A = mdp.num_states, mdp.num_actions
    x = cp.Variable(S * A)
    E = np.kron(np.eye(S), np.ones((1, A)))
    rep = E.T @ (E @ x)
    pen = sum(lam[k] * cp.sum(cp.rel_entr(x, cp.multiply(res.aux_policies[k].ravel(), rep))) for k in range(2))
    prob = cp.Problem(cp.Maximize(mdp.r.ravel() @ x - pen), [flow_matrix(mdp) @ x == (1 - mdp.gamma) * mdp.mu0, x >= 0])
    prob.solve(solver="CLARABEL")
    assert res.objective == pytest.approx(prob.value, abs=1e-5)
    np.testing.assert_allclose(res.occupancy.ravel(), np.clip(x.value, 0, None), atol=1e-4)


def test_two_stage_large_weight_follows_that_auxiliary_policy():
    mdp, C, _ = instance(9)
    res = two_stage(mdp, mdp.r, C, np.array([1e4, 1e-6]))
    np.testing.assert_allclose(res.policy, res.aux_policies[0], atol=1e-3)


# ----------------------------------------------------------------------------- bad input
def test_infeasible_cmdp_says_it_is_infeasible():
    mdp, C, _ = instance(0)
    with pytest.raises(InfeasibleCMDPError, match="infeasible.*min_pi"):
        solve_cmdp(mdp, None, C, np.array([-1.0, 0.5]))
    with pytest.raises(ValueError, match="infeasible"):
        lagrangian_primal_dual(mdp, None, C, np.array([-1.0, 0.5]), iterations=10)


def test_costs_of_wrong_shape_raise():
    mdp, C, _ = instance(0)
    with pytest.raises(ValueError, match=r"costs must have shape \(K, S, A\)"):
        solve_cmdp(mdp, None, C[:, :, :2], np.ones(2))


def test_thresholds_of_wrong_shape_raise():
    mdp, C, _ = instance(0)
    with pytest.raises(ValueError, match=r"thresholds must have shape \(K,\) = \(2,\)"):
        solve_cmdp(mdp, None, C, np.ones(3))


def test_proxy_of_wrong_shape_raises():
    mdp, C, _ = instance(0)
    with pytest.raises(ValueError, match="reward must have shape"):
        solve_cmdp(mdp, np.ones((4, 3)), C, np.ones(2))


def test_negative_kl_weights_raise():
    mdp, C, _ = instance(0)
    with pytest.raises(ValueError, match="kl_weights must be >= 0"):
        two_stage(mdp, mdp.r, C, np.array([1.0, -1.0]))


def test_unknown_method_raises():
    mdp, C, _ = instance(0)
    with pytest.raises(ValueError, match="method must be"):
        solve_composite(mdp, C, np.ones(2), method="ppo")


def test_badly_scaled_infeasible_cmdp_raises_the_documented_error():
    """Issue #11 item 20: on this instance (costs ~1e-5, threshold ~ -1e6, γ = 0.999) HiGHS
    returns status 4 ("model_status is Unknown") for the unscaled LP; the CMDP is plainly
    infeasible (⟨μ, C⟩ >= -max|C| > b for every occupancy μ), so InfeasibleCMDPError is due."""
    from rlref.envs import garnet

    rng = np.random.default_rng(55)  # the draws of the fuzzer that found it
    S, A = int(rng.integers(2, 30)), int(rng.integers(1, 5))
    branching, gamma = int(rng.integers(1, S + 1)), float(rng.choice([0.0, 0.5, 0.99, 0.999]))
    K = int(rng.integers(1, 4))
    C = rng.normal(size=(K, S, A)) * 10.0 ** rng.integers(-8, 9)
    b = rng.normal(size=K) * 10.0 ** rng.integers(-8, 9)
    mdp = garnet(S, A, branching, seed=55, gamma=gamma)
    assert (S, A, branching, gamma, K) == (28, 4, 21, 0.999, 1) and b[0] < -np.abs(C).max()
    with pytest.raises(InfeasibleCMDPError, match="infeasible"):
        solve_cmdp(mdp, None, C, b)
