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


# ---------------------------------------------------------------- POPLER (online, sunflower classes)

from rlref.algorithms.agnostic import (  # noqa: E402
    PoplerSchedule,
    is_sunflower,
    petals_from_core,
    popler,
    popler_schedule,
    reachability_mass,
)


def _brute_sunflower(pols, core, petals):
    """The definition path by path, with Python loops (independent of the vectorized check)."""
    k, H, S = pols.shape
    for i in range(k):
        for path in itertools.product(range(S), repeat=H):
            if not any(all(petals[i, h, s] or core[e, h, s] == pols[i, h, s] for h, s in enumerate(path)) for e in range(len(core))):
                return False
    return True


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 3))
def test_is_sunflower_equals_path_by_path_definition(seed, k, K):
    rng = np.random.default_rng(seed)
    H, S, A = 3, 2, 2
    pols, core = rng.integers(0, A, size=(k, H, S)), rng.integers(0, A, size=(K, H, S))
    petals = rng.random((k, H, S)) < 0.3
    assert is_sunflower(pols, core, petals, A) == _brute_sunflower(pols, core, petals)
    assert is_sunflower(pols, core, petals_from_core(pols, core, A), A)  # the nearest-core petals always work


def test_singletons_are_a_1_1_sunflower_and_not_a_1_0():
    H, S = 3, 3
    sing, zero = singleton_class(H, S), np.zeros((1, H, S), dtype=np.int64)
    pet = petals_from_core(sing, zero, 2)
    assert pet.reshape(len(sing), -1).sum(axis=1).max() == 1
    assert is_sunflower(sing, zero, pet, 2)
    assert not is_sunflower(sing, zero, np.zeros_like(pet), 2)


@pytest.mark.parametrize("cls", ["singletons", "random"])
def test_reachability_mass_is_at_most_the_capacity(cls):
    """Σ_{s,a} max_π d_h^π(s,a) ≤ C_h(Π) (derived lemma) against the exact search, on random stochastic MDPs."""
    rng = np.random.default_rng(1)
    H, S, A = 3, 3, 2
    pols = singleton_class(H, S) if cls == "singletons" else rng.integers(0, A, size=(6, H, S))
    per = spanning_capacity(pols, A).per_layer
    for _ in range(10):
        mass = reachability_mass(_layered_mdp(rng, H, S, A), pols)
        assert np.all(mass <= per + 1e-9)


def _sunflower_cases(rng, H, S, A):
    sing = singleton_class(H, S)
    rand = rng.integers(0, A, size=(6, H, S))
    core = rand[:2]
    return [(sing, np.zeros((1, H, S), dtype=np.int64)), (rand, core), (rand, rand)]


def test_popler_estimates_match_exact_values_when_every_petal_is_explored():
    """τ = 0.01: every petal reached with probability ≥ τ is explored; the rest bias V̂^π by ≤ H τ D. V̂^π lies
    within that plus a Hoeffding radius of the exact V^π."""
    rng = np.random.default_rng(5)
    H, S, A = 3, 3, 2
    for pols, core in _sunflower_cases(rng, H, S, A):
        mdp = _layered_mdp(rng, H, S, A)
        pet = petals_from_core(pols, core, A)
        n = 20_000
        res = popler(mdp, pols, core, pet, 0.5, 0.1, rng=rng, schedule=PoplerSchedule(n_core=n, n_node=n, tau=0.01, eta=0.0))
        exact = policy_values(mdp, pols)
        D = int(pet.reshape(len(pols), -1).sum(axis=1).max())
        # each node: weights ≤ K, returns ≤ H; ≤ D + 1 chained nodes, δ = 1e-6 per node (loose, first order)
        tol = (D + 1) * len(core) * H * np.sqrt(np.log(2 * len(pols) * (D + 1) / 1e-6) / (2 * n)) + H * 0.01 * D
        assert np.max(np.abs(res.estimates - exact)) <= tol, (np.abs(res.estimates - exact).max(), tol)


def test_popler_is_biased_when_the_sunflower_is_broken():
    """check=False with no petals for singletons: the deviating policies are weighted 0 after their deviation."""
    rng = np.random.default_rng(2)
    H, S, A = 3, 3, 2
    sing, zero = singleton_class(H, S), np.zeros((1, H, S), dtype=np.int64)
    mdp = _layered_mdp(rng, H, S, A)
    with pytest.raises(ValueError, match="not a sunflower"):
        popler(mdp, sing, zero, np.zeros(sing.shape, dtype=bool), 0.5, 0.1, rng=rng)
    res = popler(mdp, sing, zero, np.zeros(sing.shape, dtype=bool), 0.5, 0.1, rng=rng, check=False,
                 schedule=PoplerSchedule(n_core=20_000, n_node=1, tau=1.0, eta=0.0))
    assert np.max(np.abs(res.estimates - policy_values(mdp, sing))) > 0.2


def test_popler_is_eps_optimal_in_the_class_at_the_stated_failure_rate():
    """δ = 0.2 over 5 random MDPs per sunflower class: P(≥ 4 failures | p ≤ 0.2) < 0.007, so assert ≤ 3 failures;
    the regret is measured against the brute-force best policy of the class."""
    rng = np.random.default_rng(11)
    H, S, A = 3, 3, 2
    eps, delta = 0.5, 0.2
    for pols, core in _sunflower_cases(rng, H, S, A):
        pet = petals_from_core(pols, core, A)
        fails = 0
        for _ in range(5):
            mdp = _layered_mdp(rng, H, S, A)
            v = policy_values(mdp, pols)
            res = popler(mdp, pols, core, pet, eps, delta, rng=rng)
            fails += bool(v.max() - v[res.best] > eps)
            assert res.episodes >= res.core_episodes == popler_schedule(len(pols), H, len(core), int(pet.reshape(len(pols), -1).sum(1).max()),
                                                                         eps, delta).n_core
        assert fails <= 3


def test_popler_schedule_formula_and_bad_inputs():
    s = popler_schedule(10, 3, 2, 1, 0.5, 0.1)
    assert s.eta == pytest.approx(0.5 / 8) and s.tau == pytest.approx(0.5 / 12)
    assert s.n_core == int(np.ceil(36 * np.log(2 * 10 * 2 / 0.1) / (2 * (0.5 / 8) ** 2)))
    with pytest.raises(ValueError, match="delta"):
        popler_schedule(10, 3, 2, 1, 0.5, 1.0)
    rng = np.random.default_rng(0)
    mdp = _layered_mdp(rng, 2, 3, 2)
    pols = np.zeros((2, 2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="petals must be a boolean"):
        popler(mdp, pols, pols, np.zeros((2, 2, 3)), 0.5, 0.1)
    with pytest.raises(ValueError, match="core must have shape"):
        popler(mdp, pols, np.zeros((1, 3, 3), dtype=np.int64), np.zeros((2, 2, 3), dtype=bool), 0.5, 0.1)
    with pytest.raises(ValueError, match=r"policies\[0, 0, 0\] = 5"):
        is_sunflower(np.full((1, 2, 3), 5), pols, np.zeros((1, 2, 3), dtype=bool), 2)
