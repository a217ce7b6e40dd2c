"""Latent MDPs with context in hindsight (Zhou, Wang, Du 2023): belief planning vs an enumeration of histories."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.lmdp import LatentMDP, alpha_variance_bonus, lmdp_belief, lmdp_max_return, lmdp_optimistic, lmdp_plan, lmdp_policy_value
from rlref.mdp import TabularMDP
from rlref.solve import value_iteration


def random_lmdp(seed: int, M: int, S: int, A: int, H: int, sparse: bool = False) -> LatentMDP:
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(M, S, A))
    if sparse:  # zero out some successors (support degree Γ < S), keep rows stochastic
        mask = rng.random(P.shape) < 0.4
        mask[..., 0] = False
        P = np.where(mask, 0.0, P)
        P /= P.sum(-1, keepdims=True)
    R = rng.uniform(0, 1 / H, size=(M, S, A))
    return LatentMDP(weights=rng.dirichlet(np.ones(M)), nu=rng.dirichlet(np.ones(S), size=M), P=P, R=R, horizon=H)


def brute_force_value(lmdp: LatentMDP) -> float:
    """max over ALL deterministic history-dependent policies, each evaluated by summing over every trajectory (no beliefs)."""
    S, A, H = lmdp.S, lmdp.A, lmdp.horizon

    def histories(h):  # all (s1, a1, ..., s_h) histories of length h (1-based count of states)
        if h == 1:
            return [(s,) for s in range(S)]
        return [t + (a, s) for t in histories(h - 1) for a in range(A) for s in range(S)]

    all_hist = [t for h in range(1, H + 1) for t in histories(h)]
    best = -np.inf
    for acts in itertools.product(range(A), repeat=len(all_hist)):
        best = max(best, _history_policy_value(lmdp, dict(zip(all_hist, acts, strict=True)), range(S)))
    return best


def _history_policy_value(lmdp: LatentMDP, pol: dict, starts) -> float:
    """Σ over contexts m, start states s1 in ``starts`` and every state sequence of P(trajectory) · return under the
    history policy ``pol`` (a dict history -> action): the value by enumeration, no beliefs."""
    M, S, H = lmdp.M, lmdp.S, lmdp.horizon
    v = 0.0
    for m in range(M):
        for s1 in starts:
            for rest in itertools.product(range(S), repeat=H - 1):
                states = (s1,) + rest
                prob, ret, hist = lmdp.weights[m] * lmdp.nu[m, s1], 0.0, (s1,)
                for t in range(H):
                    a = pol[hist]
                    ret += lmdp.R[m, states[t], a]
                    if t + 1 < H:
                        prob *= lmdp.P[m, states[t], a, states[t + 1]]
                        hist = hist + (a, states[t + 1])
                v += prob * ret
    return v


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), M=st.integers(1, 3), H=st.integers(1, 2), sparse=st.booleans())
def test_belief_planning_equals_brute_force_over_history_policies(seed, M, H, sparse):
    """The alpha-vector belief planner attains max over all history-dependent policies (enumeration of histories)."""
    lmdp = random_lmdp(seed, M, 2, 2, H, sparse)
    v, planner = lmdp_plan(lmdp)
    assert v == pytest.approx(brute_force_value(lmdp), abs=1e-12)
    assert lmdp_policy_value(lmdp, planner) == pytest.approx(v, abs=1e-12)


def test_belief_planning_equals_brute_force_horizon_3():
    """The same at H = 3, S = A = 2, start state fixed: brute force over every policy table on the histories each policy can reach."""
    rng = np.random.default_rng(3)
    M, S, A, H = 2, 2, 2, 3
    P = rng.dirichlet(np.ones(S), size=(M, S, A))
    P[:, 1] = np.eye(S)[1]  # state 1 absorbing: fewer live histories, but the brute force still ranges over all tables
    lmdp = LatentMDP(weights=[0.3, 0.7], nu=np.tile([1.0, 0.0], (M, 1)), P=P, R=rng.uniform(0, 1 / H, size=(M, S, A)), horizon=H)
    v, _ = lmdp_plan(lmdp)
    assert v == pytest.approx(_brute_force_from_state0(lmdp), abs=1e-12)


def _brute_force_from_state0(lmdp: LatentMDP) -> float:
    S, A, H = lmdp.S, lmdp.A, lmdp.horizon
    hist = [(0,)]
    layers = [hist]
    for _ in range(H - 1):
        layers.append([t + (a, s) for t in layers[-1] for a in range(A) for s in range(S)])
    best = -np.inf

    # only histories consistent with the policy's own earlier actions matter: enumerate policies layer by layer
    def rec(layer, pol):
        nonlocal best
        if layer == H:
            best = max(best, _history_policy_value(lmdp, pol, [0]))
            return
        keys = [t for t in layers[layer] if layer == 0 or (t[:-2] in pol and pol[t[:-2]] == t[-2])]
        for acts in itertools.product(range(A), repeat=len(keys)):
            rec(layer + 1, {**pol, **dict(zip(keys, acts, strict=True))})

    rec(0, {})
    return best


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), H=st.integers(1, 4))
def test_single_context_equals_backward_induction(seed, H):
    """M = 1: the LMDP is an MDP and V* equals the core finite-horizon value iteration."""
    lmdp = random_lmdp(seed, 1, 3, 2, H)
    mdp = TabularMDP(P=lmdp.P[0], R=lmdp.R[0], horizon=H, mu0=lmdp.nu[0])
    assert lmdp_plan(lmdp)[0] == pytest.approx(value_iteration(mdp).objective, abs=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), M=st.integers(2, 3), H=st.integers(1, 4))
def test_lmdp_value_between_markov_and_revealed_context_bounds(seed, M, H):
    """Σ_m w_m V^{π}_m(best single Markov π, checked against all Markov deterministic π at H ≤ 4 via stage tables) ≤ V* ≤ Σ_m w_m V*_m."""
    lmdp = random_lmdp(seed, M, 2, 2, H)
    v, _ = lmdp_plan(lmdp)
    upper = sum(lmdp.weights[m] * value_iteration(TabularMDP(P=lmdp.P[m], R=lmdp.R[m], horizon=H, mu0=lmdp.nu[m])).objective
                for m in range(M))
    assert v <= upper + 1e-12
    # a uniform random policy is history dependent (trivially): its value, by linearity, is a lower bound
    from rlref.solve import policy_evaluation
    uni = np.full((H, 2, 2), 0.5)
    lower = sum(lmdp.weights[m] * float(lmdp.nu[m] @ policy_evaluation(TabularMDP(P=lmdp.P[m], R=lmdp.R[m], horizon=H), uni).values[0])
                for m in range(M))
    assert v >= lower - 1e-12


def test_identical_contexts_reduce_to_one_mdp():
    lmdp1 = random_lmdp(7, 1, 3, 2, 3)
    twin = LatentMDP(weights=[0.4, 0.6], nu=np.repeat(lmdp1.nu, 2, 0), P=np.repeat(lmdp1.P, 2, 0), R=np.repeat(lmdp1.R, 2, 0), horizon=3)
    assert lmdp_plan(twin)[0] == pytest.approx(lmdp_plan(lmdp1)[0], abs=1e-13)


def test_belief_by_hand():
    P = np.zeros((2, 2, 1, 2))
    P[0, :, 0] = [0.9, 0.1]
    P[1, :, 0] = [0.2, 0.8]
    lmdp = LatentMDP(weights=[0.5, 0.5], nu=[[1.0, 0.0], [0.5, 0.5]], P=P, R=np.zeros((2, 2, 1)), horizon=3)
    b = lmdp_belief(lmdp, [0, 1, 1], [0, 0])
    w0, w1 = 0.5 * 1.0 * 0.1 * 0.1, 0.5 * 0.5 * 0.8 * 0.8
    np.testing.assert_allclose(b, [w0 / (w0 + w1), w1 / (w0 + w1)], rtol=1e-14)
    with pytest.raises(ValueError, match="probability 0"):
        lmdp_belief(LatentMDP(weights=[1.0], nu=[[1.0, 0.0]], P=P[:1], R=np.zeros((1, 2, 1)), horizon=2), [1], [])
    with pytest.raises(ValueError, match=r"states\[1\]"):
        lmdp_belief(lmdp, [0, 5], [0])


def test_alpha_variance_bonus_by_hand():
    p = np.array([[0.25, 0.75], [1.0, 0.0]])
    x = np.array([[0.0, 1.0], [0.3, 0.9]])
    b = alpha_variance_bonus(x, p, np.array([4.0, 0.0]), iota=2.0, c1=1.0, c2=0.5)
    np.testing.assert_allclose(b, [np.sqrt(0.25 * 0.75 * 2.0 / 4) + 0.5 * 2.0 / 4, 0.0 + 0.5 * 2.0 / 1], rtol=1e-14)


def test_max_return_by_hand():
    P = np.zeros((1, 2, 1, 2))
    P[0, 0, 0] = [0.5, 0.5]
    P[0, 1, 0] = [0.0, 1.0]
    R = np.array([[[0.1], [0.3]]])
    lmdp = LatentMDP(weights=[1.0], nu=[[1.0, 0.0]], P=P, R=R, horizon=3)
    assert lmdp_max_return(lmdp) == pytest.approx(0.1 + 0.3 + 0.3)


def test_learner_regret_is_exact_and_nonnegative_and_learns():
    lmdp = random_lmdp(1, 2, 3, 2, 3)
    res = lmdp_optimistic(lmdp, 300, seed=0)
    assert res.regret.min() >= -1e-12
    assert res.optimal_value == pytest.approx(lmdp_plan(lmdp)[0])
    assert res.regret[-50:].mean() < res.regret[:50].mean()
    assert res.epoch_starts[0] == 0 and len(res.epoch_starts) <= 2 * 3 * 2 * (np.log2(300 * 3) + 1) + 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(weights=[0.5, 0.6]), "weights"),
    (dict(weights=[1.0, 0.0]), r"weights\[1\]"),
    (dict(R=np.full((2, 2, 2), 1.5)), r"R\[0, 0, 0\]"),
    (dict(R=np.full((2, 2, 2), -0.1)), "R"),
    (dict(nu=np.ones((2, 3)) / 3), "nu"),
    (dict(horizon=0), "horizon"),
])
def test_bad_lmdp_inputs(kwargs, match):
    base = dict(weights=[0.5, 0.5], nu=np.ones((2, 2)) / 2, P=np.ones((2, 2, 2, 2)) / 2, R=np.zeros((2, 2, 2)), horizon=2)
    with pytest.raises(ValueError, match=match):
        LatentMDP(**{**base, **kwargs})


@pytest.mark.parametrize("kwargs, match", [(dict(episodes=0), "episodes"), (dict(bonus="ucb"), "bonus"),
                                           (dict(c1=-1.0), "c1"), (dict(delta=1.0), "delta")])
def test_bad_learner_inputs(kwargs, match):
    lmdp = random_lmdp(0, 2, 2, 2, 2)
    with pytest.raises(ValueError, match=match):
        lmdp_optimistic(lmdp, **{"episodes": 5, **kwargs})


@pytest.mark.parametrize("H", [2, 3, 6])
def test_probe_chain_total_reward_bounded_and_information_helps(H):
    """The probe chain keeps every episode's total reward <= 0.8 (= 1.6/H every other step) and V* >= the history-blind value."""
    from rlref.algorithms.lmdp import latent_probe_chain
    lmdp = latent_probe_chain(H)
    assert lmdp_max_return(lmdp) <= 0.8 + 1e-12
    avg = TabularMDP(P=np.einsum("m,msat->sat", lmdp.weights, lmdp.P), R=np.einsum("m,msa->sa", lmdp.weights, lmdp.R), horizon=H,
                     mu0=lmdp.nu[0])
    assert lmdp_plan(lmdp)[0] >= value_iteration(avg).objective - 1e-12
    with pytest.raises(ValueError, match="p"):
        latent_probe_chain(H, p=(1.5, 0.2))
    with pytest.raises(ValueError, match="horizon"):
        latent_probe_chain(1)
