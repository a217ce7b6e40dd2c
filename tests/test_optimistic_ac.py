"""rlref.algorithms.optimistic_ac: optimistic actor-critic with rare switching (Tan, Fan, Wei 2025), tabular."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.optimistic_ac import optimistic_actor_critic, optimistic_critic, regret_slope, switch_bound
from rlref.envs.chains import riverswim
from rlref.mdp import TabularMDP


def _hand_q(P, r, H):
    S, A = r.shape
    q = np.zeros((H, S, A))
    v = np.zeros(S)
    for h in reversed(range(H)):
        q[h] = r + P @ v
        v = q[h].max(axis=1)
    return q


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_critic_is_backward_induction_of_the_empirical_mdp_and_optimistic(seed, H):
    rng = np.random.default_rng(seed)
    S, A = 4, 3
    tc = rng.integers(0, 5, size=(S, A, S)).astype(float)
    tc[0, 0] = 0.0  # an unvisited pair
    n = tc.sum(axis=2)
    rs = rng.random((S, A)) * n
    b = rng.random((S, A))
    q = optimistic_critic(n, rs, tc, H, b)
    P = np.where(n[..., None] > 0, tc / np.maximum(n, 1)[..., None], 0.0)
    for s_, a_ in zip(*np.nonzero(n == 0), strict=True):
        P[s_, a_, s_] = 1.0  # unvisited pairs: a self-loop
    r = np.where(n > 0, rs / np.maximum(n, 1), 0.0)
    np.testing.assert_allclose(q, _hand_q(P, r + b, H), atol=1e-12)
    # optimism is monotone in the bonus: Q̄(b) ≥ Q̄(0) everywhere
    assert np.all(q >= optimistic_critic(n, rs, tc, H, np.zeros((S, A))) - 1e-12)


def test_regret_is_nonnegative_switches_are_rare_and_regret_is_sublinear():
    mdp = riverswim(4, horizon=10)
    res = optimistic_actor_critic(mdp, 600, seed=0)
    assert np.all(res.regret >= -1e-9)  # V* is optimal: every episode's regret is >= 0 (exact evaluation)
    assert 1 <= len(res.switches) <= switch_bound(4, 2, 600)
    # the second half of the run has a smaller average regret than the first
    assert res.regret[300:].mean() < 0.5 * res.regret[:300].mean()
    every = optimistic_actor_critic(mdp, 50, seed=0, rare_switching=False)
    assert len(every.switches) == 50


def test_optimal_value_matches_hand_backward_induction():
    mdp = riverswim(5, horizon=7)
    res = optimistic_actor_critic(mdp, 1, seed=0)
    q = _hand_q(mdp.dense_P(), mdp.reward(0), 7)
    assert res.optimal_value == pytest.approx(q[0, 0].max(), abs=1e-12)


def test_regret_slope_on_known_curves():
    t = np.arange(1, 5001, dtype=float)
    assert regret_slope(3.0 * np.sqrt(t)) == pytest.approx(0.5, abs=1e-9)
    assert regret_slope(0.2 * t) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("call, match", [
    (lambda: optimistic_actor_critic(riverswim(3, horizon=4), 0), "episodes"),
    (lambda: optimistic_actor_critic(riverswim(3, horizon=4), -5), "episodes"),
    (lambda: optimistic_actor_critic(riverswim(3, gamma=0.9), 10), "finite-horizon"),
    (lambda: optimistic_actor_critic(riverswim(3, horizon=4), 10, bonus_scale=-1.0), "bonus_scale"),
    (lambda: optimistic_actor_critic(riverswim(3, horizon=4), 10, eta=0.0), "eta"),
    (lambda: optimistic_actor_critic(riverswim(3, horizon=4), 10, delta=0.0), "delta"),
    (lambda: optimistic_actor_critic(TabularMDP(np.ones((2, 2, 1, 2)) / 2, np.zeros((2, 2, 1)), horizon=2), 3), "stage"),
    (lambda: regret_slope(np.zeros(10)), "regret"),
])
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
