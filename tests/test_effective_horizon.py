"""Tests of rlref.algorithms.effective_horizon and rlref.envs.bridge_mdps against brute-force references.

Every golden value is computed independently here: Q^rand, Q^k and return variances by explicit
enumeration of all action / next-state sequences (Python loops over the dense P), k-QVI-solvability by
evaluating every greedy deterministic policy, m_1 from the brute-force variance and gap.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings

from rlref.algorithms.effective_horizon import (
    effective_horizon,
    gorp,
    is_k_qvi_solvable,
    k_qvi,
    min_qvi_k,
    q_learning,
    random_policy_q,
    random_return_variance,
    sqirl,
)
from rlref.envs import from_deterministic, load_bridge_npz
from rlref.envs.bridge_mdps import minigrid_arrays, minigrid_suite, sticky_actions
from rlref.mdp import TabularMDP
from rlref.solve import policy_evaluation, value_iteration
from rlref.testing import tabular_mdps

SMALL = dict(max_states=3, max_actions=2, min_actions=2, discounted=False, horizon=(1, 3), stage_dependent=False, sparse=False)


def _dense(mdp):
    P = mdp.dense_P()
    R = np.asarray(mdp.R)
    if mdp.reward_axes == "sa":
        R = np.repeat(R[:, :, None], mdp.num_states, axis=2)
    return P, R


def _brute_moments(mdp, h, s, a):
    """(E G, E G²) of the return from (h, s, a) under π_rand, by enumerating every continuation."""
    P, R = _dense(mdp)
    T, S, A, g = mdp.horizon, mdp.num_states, mdp.num_actions, mdp.gamma
    m1 = m2 = 0.0
    # enumerate next states and subsequent (action, next state) pairs for the remaining T - h - 1 stages
    rest = T - h - 1
    for path in itertools.product(range(S), *([range(A), range(S)] * rest)):
        prob, ret, cur, act = 1.0, 0.0, s, a
        s1 = path[0]
        prob *= P[cur, act, s1]
        ret += R[cur, act, s1]
        cur = s1
        for j in range(rest):
            act, s1 = path[1 + 2 * j], path[2 + 2 * j]
            prob *= P[cur, act, s1] / A
            ret += g ** (j + 1) * R[cur, act, s1]
            cur = s1
        m1 += prob * ret
        m2 += prob * ret**2
    return m1, m2


def _det_moments(mdp, h, s, a):
    """(E G, E G²) under π_rand on a deterministic MDP, by enumerating the A^(T−h−1) action sequences."""
    nxt, r = mdp.dense_P().argmax(axis=2), mdp.r
    T, A = mdp.horizon, mdp.num_actions
    rets = []
    for seq in itertools.product(range(A), repeat=T - h - 1):
        ret, cur = r[s, a], nxt[s, a]
        for act in seq:
            ret, cur = ret + r[cur, act], nxt[cur, act]
        rets.append(ret)
    return float(np.mean(rets)), float(np.mean(np.square(rets)))


def _brute_qk(mdp, k):
    """Q^k by explicit loops: Q¹ from enumeration, then Q^{j+1}_h(s,a) = Σ P (R + γ max Q^j_{h+1})."""
    P, R = _dense(mdp)
    T, S, A, g = mdp.horizon, mdp.num_states, mdp.num_actions, mdp.gamma
    q = np.array([[[_brute_moments(mdp, h, s, a)[0] for a in range(A)] for s in range(S)] for h in range(T)])
    for _ in range(k - 1):
        new = np.zeros_like(q)
        for h in range(T):
            for s in range(S):
                for a in range(A):
                    new[h, s, a] = sum(P[s, a, t] * (R[s, a, t] + (g * q[h + 1, t].max() if h + 1 < T else 0.0)) for t in range(S))
        q = new
    return q


@settings(max_examples=15, deadline=None)
@given(tabular_mdps(**SMALL))
def test_k_qvi_equals_brute_force_enumeration(mdp):
    """k-QVI (Def. 5.1): Q¹ = Q^{π_rand} and Q^{j+1} = r + max Q^j, against explicit enumeration, for every k ≤ T."""
    for k in range(1, mdp.horizon + 1):
        np.testing.assert_allclose(k_qvi(mdp, k), _brute_qk(mdp, k), atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(tabular_mdps(max_states=4, max_actions=3, discounted=False, horizon=(1, 4)))
def test_q_T_is_q_star(mdp):
    """T steps of k-QVI reach Q* on every finite-horizon MDP, so every MDP is T-QVI-solvable."""
    np.testing.assert_allclose(k_qvi(mdp, mdp.horizon), value_iteration(mdp).q, atol=1e-9)
    assert is_k_qvi_solvable(mdp, mdp.horizon)
    assert min_qvi_k(mdp) <= mdp.horizon


@settings(max_examples=15, deadline=None)
@given(tabular_mdps(**SMALL))
def test_random_return_variance_equals_enumeration(mdp):
    """Var[G_h | s, a] under π_rand from the second-moment recursion equals the enumerated variance."""
    var = random_return_variance(mdp)
    for h, s, a in itertools.product(range(mdp.horizon), range(mdp.num_states), range(mdp.num_actions)):
        m1, m2 = _brute_moments(mdp, h, s, a)
        assert var[h, s, a] == pytest.approx(max(m2 - m1**2, 0.0), abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(tabular_mdps(max_states=3, max_actions=2, min_actions=2, discounted=False, horizon=(1, 3), deterministic=True, stage_dependent=False))
def test_k_qvi_solvable_iff_every_greedy_policy_optimal(mdp):
    """Def. 5.1: k-QVI-solvable ⇔ every deterministic policy greedy for Q^k (all tie choices) is optimal."""
    J = value_iteration(mdp).objective
    T, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
    for k in range(1, T + 1):
        q = k_qvi(mdp, k)
        choices = [np.flatnonzero(q[h, s] >= q[h, s].max() - 1e-9) for h in range(T) for s in range(S)]
        all_opt = True
        for pick in itertools.product(*choices):
            pi = np.zeros((T, S, A))
            pi[np.repeat(np.arange(T), S), np.tile(np.arange(S), T), np.array(pick)] = 1.0
            all_opt &= policy_evaluation(mdp, pi).objective >= J - 1e-9
        # a greedy choice at an unreachable state cannot change J, so the two definitions agree
        assert is_k_qvi_solvable(mdp, k) == all_opt


def test_effective_horizon_of_a_1_qvi_solvable_mdp_is_1_plus_log_m1():
    """When greedy-on-Q^rand is optimal, H_1 = 1 + log_A m_1 with m_1 = ⌈16 σ²/Δ² ln(2TA)⌉ at the worst state (brute force)."""
    T_, R_ = minigrid_arrays(["######", "#S..G#", "######"])
    H = 5
    mdp = from_deterministic(T_, R_, horizon=H)
    A = mdp.num_actions
    assert is_k_qvi_solvable(mdp, 1)
    q_star = value_iteration(mdp).q
    q1 = random_policy_q(mdp)
    # states reachable by actions whose Q¹ beats every suboptimal action, by explicit forward search
    reach = {(0, 0)}
    m1 = 1
    frontier = [(0, 0)]
    while frontier:
        h, s = frontier.pop()
        opt = q_star[h, s] >= q_star[h, s].max() - 1e-9
        sub = max((q1[h, s, a] for a in range(A) if not opt[a]), default=-np.inf)
        if np.isfinite(sub):
            gap = q1[h, s].max() - sub
            sig = max(max(_det_moments(mdp, h, s, a)[1] - _det_moments(mdp, h, s, a)[0] ** 2, 0.0) for a in range(A))
            m1 = max(m1, math.ceil(16 * sig / gap**2 * math.log(2 * H * A) - 1e-9))
        for a in range(A):
            if q1[h, s, a] > sub + 1e-9 and h + 1 < H:
                nxt = (h + 1, int(np.argmax(mdp.dense_P()[s, a])))
                if nxt not in reach:
                    reach.add(nxt)
                    frontier.append(nxt)
    res = effective_horizon(mdp)
    assert res.solvable[0]
    assert res.m[0] == m1
    assert res.horizons[0] == pytest.approx(1 + math.log(m1) / math.log(A))
    assert res.effective_horizon == pytest.approx(min(res.horizons))
    assert res.effective_horizon <= H + 1e-12


@settings(max_examples=10, deadline=None)
@given(tabular_mdps(max_states=4, max_actions=3, min_actions=2, discounted=False, horizon=(1, 4), stage_dependent=False, deterministic=True))
def test_range_variance_bound_dominates_exact(mdp):
    """On a deterministic MDP (Q* and Q^worst are the largest and smallest possible returns):
    (Q^rand − Q^worst)(Q* − Q^worst) ≥ Var (Bhatia–Davis), so H_k(range) ≥ H_k(exact) wherever both are finite."""
    ex, rg = effective_horizon(mdp, variance="exact"), effective_horizon(mdp, variance="range")
    fin = np.isfinite(ex.horizons)
    assert np.all(rg.horizons[fin] >= ex.horizons[fin] - 1e-12)
    assert ex.effective_horizon <= mdp.horizon + 1e-12


def test_gorp_with_k_equal_T_is_exhaustive_search():
    """With k = T GORP compares every full action sequence exactly (no random leaves): it is optimal at any m."""
    T_, R_ = minigrid_arrays(["#####", "#Sd.#", "#..G#", "#####"])
    mdp = from_deterministic(T_, R_, horizon=5)
    J = value_iteration(mdp).objective
    for seed in range(3):
        res = gorp(mdp, 5, 1, seed=seed)
        assert policy_evaluation(mdp, res.policy).objective == pytest.approx(J)


def test_gorp_sqirl_qlearning_solve_a_short_corridor():
    """On a 1-QVI-solvable corridor, GORP (k=1), SQIRL (k=1) and Q-learning return an optimal policy with enough samples."""
    T_, R_ = minigrid_arrays(["######", "#S..G#", "######"])
    mdp = from_deterministic(T_, R_, horizon=5)
    J = value_iteration(mdp).objective
    assert policy_evaluation(mdp, gorp(mdp, 1, 64, seed=0).policy).objective == pytest.approx(J)
    assert policy_evaluation(mdp, sqirl(mdp, 1, 400, seed=0).policy).objective == pytest.approx(J)
    assert policy_evaluation(mdp, q_learning(mdp, 400, 0.2, seed=0).policy).objective == pytest.approx(J)


def test_gorp_fails_when_k_is_below_min_qvi_k():
    """GORP with k < min-QVI k picks the distractor: Q¹ prefers it, however many rollouts (m = 2000)."""
    T_, R_ = minigrid_arrays(["######", "#Sd..#", "#....#", "#...G#", "######"])
    mdp = from_deterministic(T_, R_, horizon=10)
    assert min_qvi_k(mdp) > 1
    J = value_iteration(mdp).objective
    assert policy_evaluation(mdp, gorp(mdp, 1, 2000, seed=0).policy).objective < J - 0.1


def test_sticky_actions_dynamics():
    """Sticky actions: rows are distributions; expected reward (1−p) R[s,a] + p R[s,prev]; p = 0 keeps J*; first step never sticky."""
    T_, R_ = minigrid_arrays(["#####", "#S.G#", "#####"])
    H = 6
    base = value_iteration(from_deterministic(T_, R_, horizon=H)).objective
    m0 = sticky_actions(T_, R_, horizon=H, repeat_probability=0.0)
    assert value_iteration(m0).objective == pytest.approx(base)
    p = 0.25
    m = sticky_actions(T_, R_, horizon=H, repeat_probability=p)
    S, A = T_.shape
    for s in range(S):
        for prev in range(A):
            for a in range(A):
                assert m.r[s * A + prev, a] == pytest.approx((1 - p) * R_[s, a] + p * R_[s, prev])
    start = (S + 1) * A
    np.testing.assert_allclose(m.r[start], R_[0])
    assert np.count_nonzero(m.dense_P()[start], axis=1).max() == 1
    # a sticky MDP's optimum is at most the deterministic one's here (the stickiness only hurts reaching G)
    assert value_iteration(m).objective <= base + 1e-12
    assert not is_k_qvi_solvable(m, 1) or min_qvi_k(m) == 1  # defined on stochastic MDPs too


def test_suite_is_valid_bridge_format(tmp_path):
    """The shipped suite round-trips through the BRIDGE loader, and each MDP reaches its goal (J* = 1)."""
    for name, T_, R_, H in minigrid_suite():
        path = tmp_path / f"{name}.npz"
        np.savez(path, transitions=T_, rewards=R_)
        mdp = load_bridge_npz(path, horizon=H)
        assert value_iteration(mdp).objective == pytest.approx(1.0), name


def test_bad_inputs_raise_clear_errors(tmp_path):
    """A BRIDGE file with an out-of-range transition, stochastic MDPs for GORP, bad k, A < 2, bad layouts, bad p."""
    T_, R_ = minigrid_arrays(["#####", "#S.G#", "#####"])
    bad = T_.copy()
    bad[2, 1] = T_.shape[0] + 3
    np.savez(tmp_path / "bad.npz", transitions=bad, rewards=R_)
    with pytest.raises(ValueError, match=r"transitions\[2, 1\]"):
        load_bridge_npz(tmp_path / "bad.npz", horizon=4)
    with pytest.raises(ValueError, match=r"transitions\[2, 1\]"):
        sticky_actions(bad, R_, horizon=4)
    mdp = from_deterministic(T_, R_, horizon=4)
    with pytest.raises(ValueError, match="k must lie in"):
        k_qvi(mdp, 5)
    with pytest.raises(ValueError, match="k"):
        gorp(mdp, 0, 3)
    with pytest.raises(ValueError, match="m"):
        sqirl(mdp, 1, 0)
    with pytest.raises(ValueError, match="deterministic"):
        gorp(sticky_actions(T_, R_, horizon=4), 1, 3)
    with pytest.raises(ValueError, match="finite-horizon"):
        effective_horizon(TabularMDP(np.ones((1, 2, 1)), np.zeros((1, 2)), gamma=0.9))
    with pytest.raises(ValueError, match="at least 2 actions"):
        effective_horizon(TabularMDP(np.ones((1, 1, 1)), np.zeros((1, 1)), horizon=2))
    with pytest.raises(ValueError, match="variance"):
        effective_horizon(mdp, variance="bogus")
    with pytest.raises(ValueError, match=r"layout\[1\]\[2\]"):
        minigrid_arrays(["#####", "#SxG#", "#####"])
    with pytest.raises(ValueError, match="exactly one 'S'"):
        minigrid_arrays(["#####", "#..G#", "#####"])
    with pytest.raises(ValueError, match="repeat_probability"):
        sticky_actions(T_, R_, horizon=4, repeat_probability=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        q_learning(mdp, 10, epsilon=-0.1)
