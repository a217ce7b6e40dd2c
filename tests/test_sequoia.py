"""SEQUOIA (rlref.algorithms.sequoia, rlref.envs.restless): the MIP greedy step and Q-learning against brute force and DP."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.sequoia import brute_force_greedy, mip_greedy, multilinear_coefficients, sequoia_q_learning
from rlref.envs.restless import budget_actions, coupled_restless_bandit, joint_states
from rlref.solve import policy_evaluation, value_iteration


def _instance(N=3, B=1, kappa=0.3, seed=0):
    rng = np.random.default_rng(seed)
    base = np.clip(np.stack([[[0.1, 0.6], [0.5, 0.9]]] * N) + rng.uniform(-0.08, 0.08, (N, 2, 2)), 0, 1)
    return coupled_restless_bandit(base, rng.uniform(0.5, 1.5, N), B, coupling=kappa)


def test_budget_set_size_and_joint_mdp_is_stochastic():
    acts = budget_actions(5, 2)
    assert acts.shape == (1 + 5 + comb(5, 2), 5) and acts.sum(1).max() == 2
    assert joint_states(3).shape == (8, 3)
    M, acts = _instance(3, 2)
    assert np.allclose(M.dense_P().sum(-1), 1.0) and M.A == acts.shape[0] == 7


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 5), st.data(), st.integers(0, 2**31 - 1))
def test_mip_greedy_equals_brute_force_over_the_feasible_set(N, data, seed):
    B = data.draw(st.integers(0, N))
    acts = budget_actions(N, B)
    q = np.random.default_rng(seed).standard_normal(acts.shape[0])
    got = mip_greedy(q, acts, B)
    assert got.value == pytest.approx(q.max(), abs=1e-9)
    assert q[got.index] == pytest.approx(q[brute_force_greedy(q, acts, B)], abs=1e-9)
    assert got.action.sum() <= B


def test_multilinear_expansion_reproduces_q_on_every_feasible_action():
    acts = budget_actions(4, 3)
    q = np.random.default_rng(1).standard_normal(acts.shape[0])
    c = multilinear_coefficients(q, acts, 3)
    for k, a in enumerate(acts):
        supp = set(np.flatnonzero(a))
        assert sum(v for T, v in c.items() if set(T) <= supp) == pytest.approx(q[k])


def test_mip_greedy_policy_of_q_star_is_optimal_and_q_learning_approaches_it():
    M, acts = _instance(3, 1)
    vi = value_iteration(M, epsilon=1e-11)
    pi = np.zeros((M.S, M.A))
    pi[np.arange(M.S), [mip_greedy(vi.q[s], acts, 1).index for s in range(M.S)]] = 1.0
    assert M.mu0 @ policy_evaluation(M, pi).values == pytest.approx(M.mu0 @ vi.values, abs=1e-7)
    a = sequoia_q_learning(M, acts, 1, 5, seed=3)
    b = sequoia_q_learning(M, acts, 1, 5, seed=3, greedy="enumerate")
    assert np.abs(a.q - b.q).max() <= 1e-9
    ql = sequoia_q_learning(M, acts, 1, 2000, q_ref=vi.q, seed=4, greedy="enumerate")
    assert ql.q_error[-1] < 0.2 * ql.q_error[0]


def test_bad_inputs():
    with pytest.raises(ValueError, match="budget must be at most the number of arms N = 3, got 4"):
        budget_actions(3, 4)
    acts = budget_actions(3, 1)
    with pytest.raises(ValueError, match="budget must be at most"):
        mip_greedy(np.zeros(acts.shape[0]), acts, 5)
    with pytest.raises(ValueError, match="pulls more than budget"):
        mip_greedy(np.zeros(budget_actions(3, 2).shape[0]), budget_actions(3, 2), 1)
    base = np.full((2, 2, 2), 0.5)
    base[1, 0, 1] = 1.5
    with pytest.raises(ValueError, match=r"base\[1, 0, 1\] = 1.5"):
        coupled_restless_bandit(base, np.ones(2), 1)
    M, acts = _instance(3, 1)
    with pytest.raises(ValueError, match="iterations"):
        sequoia_q_learning(M, acts, 1, 0, seed=0)
