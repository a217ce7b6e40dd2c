"""Tests for rlref.algorithms.offline (PRDC, A2PR, TD3+BC fixed points on a continuous-action MDP).

Golden values come from independent computations: brute-force nearest neighbours, a hand-built
linear solve of the continuous-action Bellman equation, value iteration on a fine discretization of
the action interval (rlref.solve.optimal on a many-action TabularMDP), and the closed-form argmax of
the concave-quadratic TD3+BC actor objective.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.offline import (
    ContinuousActionMDP,
    OfflineDataset,
    evaluate_actions,
    line_model,
    nearest_neighbour,
    offline_fixed_point,
    optimal_actions,
    q_at,
)
from rlref.mdp import TabularMDP
from rlref.solve import optimal
from rlref.testing import tabular_mdps

FAST = settings(max_examples=15, deadline=None)


def bimodal_data(S: int, n: int, seed: int) -> OfflineDataset:
    rng = np.random.default_rng(seed)
    s = rng.integers(0, S, n)
    s[:S] = np.arange(S)  # every state has data
    good = rng.random(n) < 0.5
    a = np.where(good, rng.normal(0.5, 0.1, n), rng.normal(-0.6, 0.1, n)).clip(-1, 1)
    return OfflineDataset(s, a, S)


def discretized(model: ContinuousActionMDP, grid: np.ndarray) -> TabularMDP:
    """The continuous-action MDP restricted to a finite action grid, as a TabularMDP (independent of the module)."""
    P0, R0 = model.base.dense_P(), model.base.r
    w1 = (1 + grid) / 2
    P = (1 - w1)[None, :, None] * P0[:, [0], :] + w1[None, :, None] * P0[:, [1], :]
    R = (1 - w1)[None, :] * R0[:, [0]] + w1[None, :] * R0[:, [1]] - model.action_cost * grid[None, :] ** 2
    return TabularMDP(P, R, gamma=model.base.gamma, mu0=model.base.mu0)


# ----------------------------------------------------------------------------- exact evaluation / optimum
@FAST
@given(tabular_mdps(2, 6, 2, 2, discounted=True, sparse=False), st.integers(0, 2**31 - 1))
def test_evaluation_solves_the_continuous_bellman_equation(base, seed):
    """V^π = (I − γ P_π)⁻¹ r_π with P_π, r_π built by hand from the interpolation definition."""
    model = ContinuousActionMDP(base, 0.2, np.arange(base.num_states, dtype=float))
    a = np.random.default_rng(seed).uniform(-1, 1, base.num_states)
    P = base.dense_P()
    P_pi = ((1 - a) / 2)[:, None] * P[:, 0] + ((1 + a) / 2)[:, None] * P[:, 1]
    r_pi = (1 - a) / 2 * base.r[:, 0] + (1 + a) / 2 * base.r[:, 1] - 0.2 * a**2
    v = np.linalg.solve(np.eye(base.num_states) - base.gamma * P_pi, r_pi)
    ev = evaluate_actions(model, a)
    np.testing.assert_allclose(ev.values, v, atol=1e-9)
    np.testing.assert_allclose(q_at(model, ev.q_endpoints, np.arange(base.num_states), a), v, atol=1e-9)  # Q^π(s, π(s)) = V^π(s)


@FAST
@given(tabular_mdps(2, 5, 2, 2, discounted=True, sparse=False, gamma=(0.0, 0.9)), st.floats(0.05, 2.0))
def test_optimum_matches_value_iteration_on_a_fine_action_grid(base, cost):
    """The closed-form-greedy policy iteration optimum equals planning on 401 discretized actions (to grid error)."""
    model = ContinuousActionMDP(base, cost, np.zeros(base.num_states))
    opt = optimal_actions(model)
    ref = optimal(discretized(model, np.linspace(-1, 1, 401)))
    assert opt.converged
    # a grid point within 0.005 of a* loses at most c·0.005² + (Lipschitz) ~ 1e-4 per step of value
    scale = 1.0 + np.abs(base.r).max() / (1 - base.gamma)
    np.testing.assert_allclose(opt.values, ref.values, atol=2e-4 * scale)
    # the continuous optimum dominates every restriction (ref is certified only to within its value_error_bound)
    assert np.all(opt.values >= ref.values - ref.value_error_bound - 1e-9)


def test_unregularized_fixed_point_is_the_true_optimum():
    model = line_model()
    data = bimodal_data(model.S, 100, 0)
    fp = offline_fixed_point(model, data, "none", grid_size=2001)
    opt = optimal_actions(model)
    assert fp.converged
    assert abs(fp.objective - opt.objective) < 1e-4


# ----------------------------------------------------------------------------- PRDC's nearest neighbour
@FAST
@given(st.integers(1, 6), st.integers(1, 40), st.floats(0.0, 5.0), st.integers(0, 2**31 - 1))
def test_prdc_nearest_neighbour_equals_brute_force(dim, n, beta, seed):
    """KD-tree d^β_D(s, a) = min_i ‖(β x_s ⊕ a) − (β x_{s_i} ⊕ a_i)‖ by brute force over all samples."""
    rng = np.random.default_rng(seed)
    S = 5
    pos = rng.normal(size=(S, dim))
    base = line_model(S).base
    model = ContinuousActionMDP(base, 0.3, pos)
    data = OfflineDataset(rng.integers(0, S, n), rng.uniform(-1, 1, n), S)
    qs, qa = rng.integers(0, S, 30), rng.uniform(-1, 1, 30)
    dist, idx = nearest_neighbour(model, data, qs, qa, beta)
    keys = np.concatenate([beta * pos[data.states], data.actions[:, None]], 1)
    qk = np.concatenate([beta * pos[qs], qa[:, None]], 1)
    brute = np.sqrt(((qk[:, None, :] - keys[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(dist, brute.min(1), atol=1e-12)
    np.testing.assert_allclose(brute[np.arange(30), idx], brute.min(1), atol=1e-12)


# ----------------------------------------------------------------------------- the actor steps
def test_bc_fixed_point_is_the_per_state_data_mean():
    model = line_model()
    data = bimodal_data(model.S, 60, 1)
    fp = offline_fixed_point(model, data, "bc", grid_size=2001)
    mean = np.array([data.actions[data.states == s].mean() for s in range(model.S)])
    np.testing.assert_allclose(fp.actions, mean, atol=1e-3 / 2 + 1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_td3bc_fixed_point_satisfies_the_closed_form_actor_step(seed):
    """λQ(s,a) − mean_i (a − a_i)² is a concave quadratic: argmax = clip((λ d + 2ā)/(2λc + 2)), d = (q1 − q0)/2."""
    model = line_model()
    data = bimodal_data(model.S, 80, seed)
    fp = offline_fixed_point(model, data, "td3bc", grid_size=4001)
    ev = evaluate_actions(model, fp.actions)
    lam = 2.5 / np.mean(np.abs(q_at(model, ev.q_endpoints, data.states, fp.actions[data.states])))
    d = (ev.q_endpoints[:, 1] - ev.q_endpoints[:, 0]) / 2
    mean = np.array([data.actions[data.states == s].mean() for s in range(model.S)])
    closed = np.clip((lam * d + 2 * mean) / (2 * lam * model.action_cost + 2), -1, 1)
    assert fp.converged
    np.testing.assert_allclose(fp.lam, lam, rtol=1e-12)
    np.testing.assert_allclose(fp.actions, closed, atol=2.0 / 4000)


def test_prdc_and_a2pr_beat_td3bc_and_bc_on_bimodal_data():
    """The mechanism of both papers: a mean-seeking BC term lands between the modes (out of data, low value);
    the dataset constraint (PRDC) and the advantage-selected target (A2PR) follow the good mode."""
    model = line_model(num_states=9)
    data = bimodal_data(model.S, 150, 3)
    J = {m: offline_fixed_point(model, data, m) for m in ("bc", "td3bc", "prdc", "a2pr")}
    assert J["prdc"].objective > J["td3bc"].objective > J["bc"].objective
    assert J["a2pr"].objective > J["td3bc"].objective
    assert J["prdc"].distance.max() < 0.05 < J["td3bc"].distance.max()  # PRDC stays on the data


def test_a2pr_without_active_samples_is_unregularized():
    """With ε_A above every advantage no sample is constrained: A2PR reduces to argmax λQ, the optimum."""
    model = line_model()
    data = bimodal_data(model.S, 60, 2)
    fp = offline_fixed_point(model, data, "a2pr", eps_adv=1e6, grid_size=2001)
    assert abs(fp.objective - optimal_actions(model).objective) < 1e-4


def test_prdc_released_form_also_tracks_the_good_mode():
    model = line_model()
    data = bimodal_data(model.S, 100, 4)
    fp = offline_fixed_point(model, data, "prdc", prdc_form="released")
    assert fp.objective > offline_fixed_point(model, data, "td3bc").objective


# ----------------------------------------------------------------------------- bad inputs
def test_bad_inputs_raise_named_errors():
    model = line_model()
    data = bimodal_data(model.S, 20, 0)
    with pytest.raises(ValueError, match="empty dataset"):
        OfflineDataset(np.array([], dtype=int), np.array([]), model.S)
    with pytest.raises(ValueError, match=r"states\[1\] = 9"):
        OfflineDataset(np.array([0, 9]), np.array([0.0, 0.0]), model.S)
    with pytest.raises(ValueError, match=r"actions\[0\] = 1.5"):
        OfflineDataset(np.array([0]), np.array([1.5]), model.S)
    with pytest.raises(ValueError, match="method must be one of"):
        offline_fixed_point(model, data, "cql")
    with pytest.raises(ValueError, match="alpha must be > 0"):
        offline_fixed_point(model, data, "prdc", alpha=0.0)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        offline_fixed_point(model, data, "prdc", beta=-1.0)
    with pytest.raises(ValueError, match="action_cost must be > 0"):
        ContinuousActionMDP(model.base, 0.0, model.positions)
    with pytest.raises(ValueError, match="2 actions"):
        ContinuousActionMDP(TabularMDP(np.ones((2, 3, 2)) / 2, np.zeros((2, 3)), gamma=0.5), 0.1, np.zeros(2))
    sparse = OfflineDataset(np.array([0, 1]), np.array([0.1, 0.2]), model.S)
    with pytest.raises(ValueError, match="state 2 has no sample"):
        offline_fixed_point(model, sparse, "td3bc")
    with pytest.raises(ValueError, match=r"actions\[0\] = 2.0"):
        evaluate_actions(model, np.r_[2.0, np.zeros(model.S - 1)])


def test_line_model_by_hand() -> None:
    """S = 3: left/right endpoints move one step (clipped), reward 1 only in the last state, positions on [0, 1]."""
    m = line_model(num_states=3, gamma=0.5, action_cost=0.2)
    P = m.base.dense_P()
    assert P[0, 0].tolist() == [1, 0, 0] and P[0, 1].tolist() == [0, 1, 0] and P[2, 1].tolist() == [0, 0, 1]
    assert m.base.r.tolist() == [[0, 0], [0, 0], [1, 1]] and m.positions.ravel().tolist() == [0.0, 0.5, 1.0]
    assert m.action_cost == 0.2 and m.base.gamma == 0.5 and m.base.mu0.tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="num_states"):
        line_model(num_states=1)
