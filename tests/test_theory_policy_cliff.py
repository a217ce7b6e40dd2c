"""Tests of rlref.theory.policy_cliff (Xu 2025, "The Policy Cliff"): each names the claim.

Golden values: exact TV jumps of the argmax map at k-way ties (1 − 1/k), finite-difference
Jacobians of softmax, the optimal Q of a random MDP from scipy's HiGHS linear program, and the
derived Lipschitz constant 1/(2β) (checked never violated and approached).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from rlref.mdp import TabularMDP
from rlref.theory.policy_cliff import (
    argmax_policy,
    effective_reward,
    empirical_lipschitz,
    jump_curve,
    mdp_lipschitz_bound,
    mdp_optimal_policy,
    oscillation,
    policy_jump,
    regularized_policy,
    reward_to_policy,
    softmax_lipschitz_bound,
    softmax_lipschitz_constant,
    tv_distance,
    weights_to_policy,
)

SETTINGS = settings(max_examples=25, deadline=None)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_argmax_map_jumps_by_one_minus_one_over_k_at_a_k_way_tie_for_every_eps(k):
    """The policy cliff: TV(π(r), π(r + ε e_a)) = 1 − 1/k for all ε > 0, and 1 between two sides."""
    r = np.concatenate([np.ones(k), np.zeros(3)])
    for eps in (1e-1, 1e-4, 1e-9):
        e0 = np.zeros_like(r)
        e0[0] = eps
        e1 = np.zeros_like(r)
        e1[1] = eps
        assert policy_jump(r, e0, 0.0) == pytest.approx(1 - 1 / k, abs=1e-15)
        assert tv_distance(argmax_policy(r + e0), argmax_policy(r + e1)) == 1.0
    curve = jump_curve(r, 0.0, np.geomspace(1e-1, 1e-10, 6), rng=np.random.default_rng(0))
    assert np.all(curve.jump >= 1 - 1 / k - 1e-15)


def test_argmax_map_is_continuous_away_from_ties():
    """With a unique argmax and gap g, perturbations with ‖d‖_∞ < g/2 do not move the policy."""
    r = np.array([1.0, 0.8, 0.1])
    curve = jump_curve(r, 0.0, np.array([0.09, 0.01, 1e-6]), rng=np.random.default_rng(1))
    np.testing.assert_array_equal(curve.jump, 0.0)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.floats(0.05, 5.0), st.floats(1e-4, 3.0), st.booleans())
def test_softmax_lipschitz_bound_is_never_violated(seed, beta, scale, with_ref):
    """‖softmax(r/β) − softmax(r′/β)‖₁ ≤ osc(r − r′)/(2β) (derived here), with or without π_ref."""
    rng = np.random.default_rng(seed)
    A = int(rng.integers(2, 8))
    r = rng.normal(size=A)
    rp = r + scale * rng.normal(size=A)
    ref = rng.dirichlet(np.ones(A)) if with_ref else None
    diff = np.abs(regularized_policy(r, beta, ref) - regularized_policy(rp, beta, ref)).sum()
    assert diff <= softmax_lipschitz_bound(r, rp, beta) * (1 + 1e-9) + 1e-15
    assert diff <= np.max(np.abs(r - rp)) / beta * (1 + 1e-9) + 1e-15  # the sup-norm form
    est = empirical_lipschitz(r, beta, rng=rng, num=60, scale=scale, pi_ref=ref)
    assert not est.violated


@pytest.mark.parametrize("beta", [0.1, 1.0, 7.0])
def test_softmax_lipschitz_constant_is_approached(beta):
    """Tightness: at r = 0 with d = ε(+1, +1, −1, −1), ‖Δπ‖₁/osc(d) → 1/(2β) as ε → 0."""
    r = np.zeros(4)
    ratios = []
    for eps in (1e-1 * beta, 1e-3 * beta, 1e-6 * beta):
        d = eps * np.array([1.0, 1.0, -1.0, -1.0])
        ratios.append(np.abs(regularized_policy(r + d, beta) - regularized_policy(r, beta)).sum() / oscillation(d))
    c = softmax_lipschitz_constant(beta)
    assert all(x <= c * (1 + 1e-8) for x in ratios)  # rounding in the difference at tiny ε
    assert ratios[-1] == pytest.approx(c, rel=1e-5)
    assert ratios[0] < ratios[1] < c * (1 + 1e-8)


def test_softmax_jacobian_is_diag_minus_outer_over_beta():
    """The basis of the bound: ∂π/∂r = (diag(π) − ππᵀ)/β (central finite differences)."""
    rng = np.random.default_rng(5)
    r, beta, h = rng.normal(size=5), 0.7, 1e-6
    pi = regularized_policy(r, beta)
    jac = np.empty((5, 5))
    for j in range(5):
        e = np.zeros(5)
        e[j] = h
        jac[:, j] = (regularized_policy(r + e, beta) - regularized_policy(r - e, beta)) / (2 * h)
    np.testing.assert_allclose(jac, (np.diag(pi) - np.outer(pi, pi)) / beta, atol=1e-8)


def test_regularized_jump_vanishes_linearly_in_eps():
    r = np.array([1.0, 1.0, 0.5])
    curve = jump_curve(r, 0.5, np.geomspace(1e-1, 1e-6, 6), rng=np.random.default_rng(2))
    assert np.all(curve.jump <= curve.bound * (1 + 1e-9))  # TV ≤ osc/(4β) ≤ ε/(2β)
    assert curve.jump[-1] < 1e-5


def test_multi_reward_weight_map_is_discontinuous_at_ties_and_lipschitz_when_regularized():
    """Xu (2025) effective reward: r_eff = Σ w_i r_i; a tie in r_eff is a cliff in the weights."""
    rewards = np.array([[1.0, 0.0], [0.0, 1.0]])  # reward i favours action i
    w_tie = np.array([0.5, 0.5])
    np.testing.assert_array_equal(effective_reward(rewards, w_tie), [0.5, 0.5])
    for eps in (1e-2, 1e-8):
        left = weights_to_policy(rewards, w_tie + [eps, -eps], 0.0)
        right = weights_to_policy(rewards, w_tie - [eps, -eps], 0.0)
        assert tv_distance(left, right) == 1.0
    beta = 0.2
    rng = np.random.default_rng(3)
    for _ in range(50):
        w1, w2 = rng.dirichlet(np.ones(2)), rng.dirichlet(np.ones(2))
        d = np.abs(weights_to_policy(rewards, w1, beta) - weights_to_policy(rewards, w2, beta)).sum()
        bound = oscillation(effective_reward(rewards, w1 - w2)) / (2 * beta)
        assert d <= bound * (1 + 1e-9)


def _random_mdp(seed: int, S: int = 4, A: int = 3, gamma: float = 0.8) -> TabularMDP:
    rng = np.random.default_rng(seed)
    return TabularMDP(rng.dirichlet(np.ones(S), size=(S, A)), rng.normal(size=(S, A)), gamma=gamma)


def test_mdp_hard_optimum_matches_highs_linear_program():
    mdp = _random_mdp(0)
    S, A, g = mdp.num_states, mdp.num_actions, mdp.gamma
    P = mdp.dense_P()
    # min Σ V  s.t.  V(s) ≥ r(s,a) + γ P(·|s,a)·V  for all (s,a)
    a_ub = np.zeros((S * A, S))
    b_ub = np.zeros(S * A)
    for s in range(S):
        for a in range(A):
            a_ub[s * A + a] = g * P[s, a] - np.eye(S)[s]
            b_ub[s * A + a] = -mdp.r[s, a]
    lp = linprog(np.ones(S), A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * S, method="highs")
    assert lp.status == 0
    res = mdp_optimal_policy(mdp, 0.0)
    np.testing.assert_allclose(res.v, lp.x, atol=1e-8)
    np.testing.assert_allclose(res.policy, argmax_policy(mdp.r + g * P @ lp.x, 1e-7), atol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mdp_soft_policy_map_respects_the_derived_lipschitz_bound(seed):
    """Per state: ‖Δπ(·|s)‖₁ ≤ ‖Δr‖_∞ / (β (1 − γ)) for the soft-optimal policy (derived here)."""
    mdp = _random_mdp(seed)
    rng = np.random.default_rng(100 + seed)
    beta = 0.3
    base = mdp_optimal_policy(mdp, beta)
    # soft Bellman fixed point: Q = r + γ P V with V = β log mean exp(Q/β)
    v = beta * (np.log(np.mean(np.exp(base.q / beta), axis=1)))
    np.testing.assert_allclose(base.q, mdp.r + mdp.gamma * mdp.dense_P() @ v, atol=1e-9)
    for scale in (1e-3, 1e-1, 1.0):
        dr = scale * rng.normal(size=mdp.r.shape)
        moved = mdp_optimal_policy(mdp, beta, r=mdp.r + dr)
        per_state = np.abs(moved.policy - base.policy).sum(axis=1)
        assert np.all(per_state <= mdp_lipschitz_bound(float(np.max(np.abs(dr))), beta, mdp.gamma) * (1 + 1e-9))


def test_mdp_argmax_policy_has_a_cliff_at_a_q_tie():
    """Two identical actions in every state: Q ties, and an ε-reward tweak flips the policy."""
    P = np.zeros((2, 2, 2))
    P[:, :, 0] = 1.0
    mdp = TabularMDP(P, np.zeros((2, 2)), gamma=0.9)
    base = mdp_optimal_policy(mdp, 0.0, tie_tol=0.0)
    np.testing.assert_array_equal(base.policy, 0.5)
    r = np.zeros((2, 2))
    r[:, 0] = 1e-9
    moved = mdp_optimal_policy(mdp, 0.0, r=r, tie_tol=0.0)
    assert tv_distance(base.policy, moved.policy).max() == 0.5
    soft = mdp_optimal_policy(mdp, 1.0, r=r)
    assert tv_distance(mdp_optimal_policy(mdp, 1.0).policy, soft.policy).max() < 1e-8


# ----------------------------------------------------------------------------- bad input
def test_bad_beta_raises():
    with pytest.raises(ValueError, match="beta"):
        regularized_policy([0.0, 1.0], 0.0)
    with pytest.raises(ValueError, match="beta"):
        reward_to_policy([0.0, 1.0], -1.0)
    with pytest.raises(ValueError, match="beta"):
        softmax_lipschitz_constant(float("nan"))


def test_nan_reward_and_bad_eps_raise():
    with pytest.raises(ValueError, match=r"r\[1\]"):
        argmax_policy([0.0, math.nan])
    with pytest.raises(ValueError, match="eps"):
        jump_curve([0.0, 1.0], 0.0, [0.1, 0.0])
    with pytest.raises(ValueError, match="tie_tol"):
        argmax_policy([0.0, 1.0], tie_tol=-1.0)


def test_shape_mismatches_raise():
    with pytest.raises(ValueError, match="same shape"):
        policy_jump([0.0, 1.0], [0.0, 1.0, 2.0], 1.0)
    with pytest.raises(ValueError, match="weights"):
        effective_reward(np.ones((2, 3)), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="discounted"):
        mdp_optimal_policy(TabularMDP(np.ones((1, 1, 1)), np.zeros((1, 1)), horizon=3), 1.0)
