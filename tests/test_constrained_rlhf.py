"""Constrained RLHF (Moskovitz et al. 2023): μ-PPO, ξ-PPO, All-PPO against an independent cvxpy
solve of the same convex program (exponential cone, KL as Σ rel_entr), and NM-PPO on an instance
whose best proxy point is known in closed form."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms import constrained_rlhf as C
from rlref.algorithms.constrained import InfeasibleCMDPError


def _instance(seed: int, Y: int = 9, K: int = 2):
    rng = np.random.default_rng(seed)
    ref = rng.dirichlet(np.ones(Y) * 2.0)
    R = rng.normal(size=(K, Y))
    return ref, R


def _cvx(ref, R, th, kind, kl_budget=None, w=None):
    p = cp.Variable(ref.shape[0], nonneg=True)
    klp = cp.sum(cp.rel_entr(p, ref))
    cons = [cp.sum(p) == 1]
    if kind == "mu":
        cons.append(R @ p >= th)
        obj = cp.Minimize(klp)
    elif kind == "xi":
        cons.append(R @ p == th)
        obj = cp.Minimize(klp)
    else:
        cons += [R @ p <= th, klp <= kl_budget]
        obj = cp.Maximize(w @ (R @ p))
    cp.Problem(obj, cons).solve(solver=cp.CLARABEL)
    return np.maximum(p.value, 0.0), cons[1].dual_value


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), up=st.floats(0.05, 0.6))
def test_mu_ppo_meets_its_constraints_and_matches_cvxpy(seed, up):
    ref, R = _instance(seed)
    th = R @ ref + np.array([up * (R[0].max() - R[0] @ ref), -0.2])  # the second is met by pi_ref already: multiplier 0
    res = C.mu_ppo(ref, R, th)
    assert np.all(res.values >= th - 1e-7)
    assert np.all(res.multipliers >= 0) and res.multipliers[0] > 0
    np.testing.assert_allclose(res.multipliers * (res.values - th), 0.0, atol=1e-7)  # complementary slackness
    p, dual = _cvx(ref, R, th, "mu")
    assert 0.5 * np.abs(res.policy - p).sum() < 1e-4  # Clarabel's own accuracy (our dual gap is ~1e-12)
    np.testing.assert_allclose(res.multipliers, dual, atol=1e-3)
    assert res.duality_gap < 1e-8


def _feasible_point(ref, R, seed):
    """θ = E_q[R] for a full-support q: strictly feasible for equalities."""
    q = 0.5 * ref + 0.5 * np.random.default_rng(seed + 1).dirichlet(np.ones(ref.shape[0]))
    return R @ q


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_xi_ppo_holds_every_component_at_its_proxy_point_and_matches_cvxpy(seed):
    ref, R = _instance(seed)
    th = _feasible_point(ref, R, seed)
    res = C.xi_ppo(ref, R, th)
    np.testing.assert_allclose(res.values, th, atol=1e-7)
    p, dual = _cvx(ref, R, th, "xi")
    assert 0.5 * np.abs(res.policy - p).sum() < 1e-4
    np.testing.assert_allclose(res.multipliers, -dual, atol=1e-3)  # cvxpy's equality duals have the opposite sign
    assert res.duality_gap < 1e-8
    # the policy is the tilt π_ref·exp(ξ·R)/Z (checked by hand, not through soft_greedy)
    t = ref * np.exp(res.multipliers @ R)
    np.testing.assert_allclose(res.policy, t / t.sum(), atol=1e-12)


def test_xi_differs_from_mu_when_a_correlated_component_would_overshoot():
    ref, R = _instance(3)
    R[1] = R[0] + 0.5 * R[1]  # correlated components
    th = R @ ref + np.array([0.4, 0.1])
    mu, xi = C.mu_ppo(ref, R, th), C.xi_ppo(ref, R, th)
    assert mu.values[1] > th[1] + 0.05  # μ-PPO carries the correlated component past its proxy point
    assert abs(xi.values[1] - th[1]) < 1e-7 and xi.multipliers[1] < 0


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), eps=st.floats(0.05, 0.3))
def test_all_ppo_meets_every_constraint_and_matches_cvxpy(seed, eps):
    ref, R = _instance(seed)
    th = R @ ref + np.array([2.0, 0.1])
    w = np.array([1.0, 0.5])
    res = C.all_ppo(ref, R, th, eps, weights=w)
    assert np.all(res.values <= th + 1e-7) and res.kl <= eps + 1e-6
    p, _ = _cvx(ref, R, th, "all", kl_budget=eps, w=w)
    assert abs(res.objective - w @ (R @ p)) < 1e-5
    assert 0.5 * np.abs(res.policy - p).sum() < 1e-3
    assert res.duality_gap < 1e-6


def test_infeasible_thresholds_raise_naming_the_component():
    ref, R = _instance(1)
    with pytest.raises(InfeasibleCMDPError, match=r"thresholds\[0\]"):
        C.mu_ppo(ref, R, np.array([R[0].max() + 1.0, -10.0]))
    with pytest.raises(ValueError, match="senses\\[1\\]"):
        C.kl_constrained_rewards(ref, R, R @ ref, (">=", ">"))
    with pytest.raises(ValueError, match="thresholds must have 2"):
        C.xi_ppo(ref, R, np.zeros(3))


def test_nm_ppo_finds_the_proxy_points_of_the_true_optimum():
    """True score J(π) = E_π[c·R] − β_t KL(π‖π_ref): its maximizer over all π is the tilt
    π* ∝ π_ref·exp(c·R/β_t) (closed form), which is the ξ-PPO solution at θ* = E_{π*}[R] — so the
    best proxy points are θ*, with score β_t log E_ref[exp(c·R/β_t)]."""
    ref, R = _instance(5)
    c, bt = np.array([0.8, -0.5]), 0.7
    t = ref * np.exp(c @ R / bt)
    p_star = t / t.sum()
    th_star = R @ p_star
    best = bt * np.log(ref @ np.exp(c @ R / bt))

    def evaluate(p):
        q = p[p > 0]
        return float(p @ (c @ R) - bt * (q * np.log(q / ref[p > 0])).sum())

    res = C.nm_ppo(ref, R, evaluate, R @ ref)
    np.testing.assert_allclose(res.thresholds, th_star, atol=1e-3)
    assert abs(res.evaluation - best) < 1e-7
    assert res.evaluation <= best + 1e-12
