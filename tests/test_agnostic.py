"""rlref.algorithms.agnostic: spanning capacity and trajectory trees (Jia et al. 2023)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.agnostic import (
    all_policies,
    cumulative_reachability,
    policy_values,
    singleton_class,
    spanning_capacity,
    trajectory_tree_learn,
    trees_needed,
)
from rlref.mdp import TabularMDP


def _brute_force_capacity(policies, A):
    """max over EVERY deterministic transition table nxt[h, s, a] and start state (the definition)."""
    k, H, S = policies.shape
    best = np.zeros(H, dtype=int)
    for flat in itertools.product(range(S), repeat=(H - 1) * S * A):
        nxt = np.array(flat, dtype=np.int64).reshape(H - 1, S, A)
        for s0 in range(S):
            best = np.maximum(best, cumulative_reachability(policies, nxt, A, start=s0))
    return best


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_search_equals_brute_force_over_all_deterministic_mdps(seed, k):
    rng = np.random.default_rng(seed)
    H, S, A = 3, 2, 2
    pols = rng.integers(0, A, size=(k, H, S))
    sc = spanning_capacity(pols, A)
    np.testing.assert_array_equal(sc.per_layer, _brute_force_capacity(pols, A))
    assert sc.capacity <= k  # C(Π) ≤ |Π|


@pytest.mark.parametrize("H, S", [(2, 2), (3, 3), (3, 4)])
def test_singleton_class_has_capacity_h_plus_one(H, S):
    assert spanning_capacity(singleton_class(H, S), 2).capacity == H + 1


@pytest.mark.parametrize("H, S, A", [(2, 2, 2), (3, 2, 2), (2, 2, 3)])
def test_all_policies_capacity_is_min_of_tree_and_layer_size(H, S, A):
    """Every policy: layer h reaches min(A^{h+1}, S·A) pairs (one start state; the tree of actions vs the layer)."""
    per = spanning_capacity(all_policies(H, S, A), A).per_layer
    np.testing.assert_array_equal(per, [min(A ** (h + 1), S * A) for h in range(H)])


def test_cumulative_reachability_by_hand():
    # two policies that differ at layer 0 and are sent to the same state: layer 1 has 1 state, 2 or 1 pairs
    pols = np.array([[[0, 0], [0, 0]], [[1, 1], [1, 0]]])
    nxt = np.zeros((1, 2, 2), dtype=int)  # everything goes to state 0
    np.testing.assert_array_equal(cumulative_reachability(pols, nxt, 2), [2, 2])
    pols2 = np.array([[[0, 0], [0, 0]], [[1, 1], [0, 0]]])
    np.testing.assert_array_equal(cumulative_reachability(pols2, nxt, 2), [2, 1])


def _layered_mdp(rng, H, S, A):
    P = rng.dirichlet(np.ones(S) * 0.5, size=(H, S, A))
    R = rng.random((H, S, A))
    mu0 = np.eye(S)[0]
    return TabularMDP(P, R, horizon=H, mu0=mu0)


def test_tree_estimates_are_unbiased_and_queries_bounded_by_capacity():
    rng = np.random.default_rng(3)
    H, S, A = 3, 3, 2
    mdp = _layered_mdp(rng, H, S, A)
    pols = singleton_class(H, S)
    cap = spanning_capacity(pols, A)
    res = trajectory_tree_learn(mdp, pols, 4000, rng=rng)
    exact = policy_values(mdp, pols)
    # Hoeffding at 4000 trees, returns in [0, H]: |error| ≤ H sqrt(log(2k/δ)/(2n)) with δ = 1e-6
    tol = H * np.sqrt(np.log(2 * len(pols) / 1e-6) / (2 * 4000))
    assert np.max(np.abs(res.estimates - exact)) <= tol
    assert np.all(res.max_layer_nodes <= cap.per_layer)
    assert res.max_queries_per_tree <= H * cap.capacity


def test_policy_values_against_hand_backward_induction():
    rng = np.random.default_rng(0)
    H, S, A = 3, 2, 2
    mdp = _layered_mdp(rng, H, S, A)
    pols = rng.integers(0, A, size=(5, H, S))
    P, R = mdp.dense_P(), np.stack([mdp.reward(h) for h in range(H)])
    for k, pi in enumerate(pols):
        v = np.zeros(S)
        for h in reversed(range(H)):
            v = np.array([R[h, s, pi[h, s]] + P[h, s, pi[h, s]] @ v for s in range(S)])
        assert policy_values(mdp, pols)[k] == pytest.approx(v[0], abs=1e-12)


def test_trees_needed_formula():
    assert trees_needed(10, 2, 0.5, 0.1) == int(np.ceil(4 * np.log(200) / (2 * 0.0625)))


@pytest.mark.parametrize("call, match", [
    (lambda: spanning_capacity(np.array([[[0, 2]]]), 2), r"policies\[0, 0, 1\] = 2"),
    (lambda: spanning_capacity(np.zeros((2, 2)), 2), "shape"),
    (lambda: spanning_capacity(np.zeros((1, 2, 2)), 2), "integer"),
    (lambda: cumulative_reachability(np.zeros((1, 2, 2), dtype=int), np.full((1, 2, 2), 5), 2), r"nxt\[0, 0, 0\] = 5"),
    (lambda: cumulative_reachability(np.zeros((1, 2, 2), dtype=int), np.zeros((1, 2, 2), dtype=int), 2, start=3), "start"),
    (lambda: trees_needed(3, 2, 0.1, 0.0), "delta"),
    (lambda: trees_needed(3, 2, -0.1, 0.1), "epsilon"),
    (lambda: spanning_capacity(all_policies(3, 3, 2), 2, max_search=10), "max_search"),
    (lambda: all_policies(5, 5, 3), "too many"),
])
def test_bad_inputs_raise(call, match):
    with pytest.raises((ValueError, RuntimeError), match=match):
        call()
