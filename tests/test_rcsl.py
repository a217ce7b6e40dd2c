"""Tests for rlref.algorithms.rcsl: RCSL cannot stitch, MBRCSL can — exactly.

Independent references: the conditioned return itself (RCSL's fixed-return property in deterministic MDPs),
the core planner on the data-restricted empirical MDP (what MBRCSL's stitching must attain), Monte Carlo
simulation of the RCSL policy, and the stitching instance's closed-form values.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.demo_regularized import sample_trajectories
from rlref.algorithms.rcsl import (
    TrajectoryData,
    empirical_model,
    fit_rcsl,
    mbrcsl,
    rcsl_value,
    stitching_mdp,
    trajectory_returns,
)
from rlref.mdp import TabularMDP
from rlref.solve import optimal
from rlref.testing import tabular_mdps

FAST = settings(max_examples=15, deadline=None)


def stitching_data() -> TrajectoryData:
    # D1 from A: A→M→Bad (return 0) and A→Med→Bad (0.5);  D2 from B: B→M→G (1)
    return TrajectoryData(np.array([[0, 2, 5], [0, 3, 5], [1, 2, 4]]), np.array([[0, 0], [1, 0], [0, 1]]))


def restricted_optimum(mdp: TabularMDP, data: TrajectoryData) -> np.ndarray:
    """V*_0 of the empirical MDP restricted to the covered (h, s, a) — offline DP, by the core planner."""
    P_hat, _, covered = empirical_model(mdp, data)
    H, S, A = covered.shape
    r = np.stack([mdp.reward(h) for h in range(H)])
    big = 10.0 * (H * (np.abs(r).max() + 1.0))
    P = np.where(covered[..., None], P_hat, np.eye(S)[None, :, None, :])
    R = np.where(covered, r, -big)
    return optimal(TabularMDP(P, R, horizon=H, mu0=mdp.mu0, reward_axes="hsa")).values[0]


def behaviour_data(mdp: TabularMDP, n: int, seed: int) -> TrajectoryData:
    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.ones(mdp.num_actions) * 0.5, size=(mdp.horizon, mdp.num_states))
    return TrajectoryData.from_trajectories(sample_trajectories(mdp, pi, n, rng))


# ----------------------------------------------------------------------------- the stitching instance
def test_rcsl_cannot_stitch_and_mbrcsl_can_on_the_stitching_mdp():
    mdp, data = stitching_mdp(), stitching_data()
    J_star = optimal(mdp).values[0, 0]
    assert J_star == pytest.approx(1.0)
    for fb, best_ood in (("behaviour", 0.75), ("uniform", 0.5)):  # closed forms: ½·1 + ½·½ and ⅓·1 + ⅓·½ + ⅓·0
        pol = fit_rcsl(mdp, data, fallback=fb)
        assert rcsl_value(mdp, pol, 0.0).value == pytest.approx(0.0)
        assert rcsl_value(mdp, pol, 0.5).value == pytest.approx(0.5)
        ood = rcsl_value(mdp, pol, 1.0)
        assert ood.value == pytest.approx(best_ood) and ood.ood_mass == pytest.approx(1.0)
        assert ood.value < J_star
    res = mbrcsl(mdp, data)
    assert res.evaluation.value == pytest.approx(J_star)
    assert res.g0[0] == pytest.approx(1.0)
    assert res.evaluation.ood_mass == 0.0
    # the exact rollout law: from A (weight 2/3) the stitched path A→M→G has probability 2/3 · 1/2 · 1/2
    stitched = (res.rollouts.states == [0, 2, 4]).all(1)
    assert res.rollouts.weights[stitched].sum() == pytest.approx(1 / 6)


def test_sampled_rollouts_recover_the_exact_mbrcsl():
    mdp, data = stitching_mdp(), stitching_data()
    res = mbrcsl(mdp, data, n_rollouts=200, rng=np.random.default_rng(0))
    assert res.evaluation.value == pytest.approx(1.0)


# ----------------------------------------------------------------------------- general properties
@FAST
@given(tabular_mdps(2, 5, 2, 3, discounted=False, deterministic=True, horizon=(1, 3)), st.integers(0, 2**31 - 1))
def test_rcsl_in_deterministic_mdps_earns_exactly_the_conditioned_in_support_return(mdp, seed):
    """Deterministic P and r: (h, s, g) in the data ⇒ the next (h+1, s', g − r) is in the data too, so RCSL's
    realized return is g — never more than the best data return from s_0 (it cannot stitch)."""
    data = behaviour_data(mdp, 6, seed)
    g = trajectory_returns(mdp, data)
    pol = fit_rcsl(mdp, data)
    for i in range(data.size):
        s0 = int(data.states[i, 0])
        m = TabularMDP(mdp.P, mdp.R, horizon=mdp.horizon, mu0=np.eye(mdp.num_states)[s0], reward_axes=mdp.reward_axes)
        ev = rcsl_value(m, pol, g[i, 0])
        assert ev.value == pytest.approx(g[i, 0], abs=1e-9)
        assert ev.ood_mass == 0.0
        assert ev.value <= g[data.states[:, 0] == s0, 0].max() + 1e-9


@FAST
@given(tabular_mdps(2, 5, 2, 3, discounted=False, deterministic=True, horizon=(1, 3)), st.integers(0, 2**31 - 1))
def test_mbrcsl_exact_equals_offline_dp_on_the_data_restricted_model(mdp, seed):
    """Exact MBRCSL = the best covered path from each start = V* of the restricted empirical MDP (core planner)."""
    data = behaviour_data(mdp, 6, seed)
    starts = np.unique(data.states[:, 0])
    v_dp = restricted_optimum(mdp, data)
    for s0 in starts:
        m = TabularMDP(mdp.P, mdp.R, horizon=mdp.horizon, mu0=np.eye(mdp.num_states)[s0], reward_axes=mdp.reward_axes)
        res = mbrcsl(m, data)
        assert res.evaluation.value == pytest.approx(v_dp[s0], abs=1e-9)
        assert res.evaluation.value >= trajectory_returns(mdp, data)[data.states[:, 0] == s0, 0].max() - 1e-9


def test_rcsl_value_matches_monte_carlo_in_a_stochastic_mdp():
    rng = np.random.default_rng(5)
    S, A, H = 3, 2, 3
    P = rng.dirichlet(np.ones(S), size=(S, A))
    R = rng.integers(0, 2, size=(S, A)).astype(float)
    mdp = TabularMDP(P, R, horizon=H, mu0=np.eye(S)[0])
    data = behaviour_data(mdp, 30, 1)
    pol = fit_rcsl(mdp, data)
    g0 = trajectory_returns(mdp, data)[0, 0]
    exact = rcsl_value(mdp, pol, g0).value
    n, total = 8000, 0.0
    for _ in range(n):
        s, g = 0, g0
        for h in range(H):
            p, _ = pol.action_distribution(h, s, g)
            a = rng.choice(A, p=p)
            total += R[s, a]
            g -= R[s, a]
            s = rng.choice(S, p=P[s, a])
    assert abs(total / n - exact) < 4 * np.sqrt(H**2 / 4 / n) + 1e-9


# ----------------------------------------------------------------------------- bad inputs
def test_bad_inputs_raise_named_errors():
    mdp, data = stitching_mdp(), stitching_data()
    with pytest.raises(ValueError, match="empty dataset"):
        TrajectoryData(np.zeros((0, 3), dtype=int), np.zeros((0, 2), dtype=int))
    with pytest.raises(ValueError, match="shape"):
        TrajectoryData(np.zeros((1, 2), dtype=int), np.zeros((1, 2), dtype=int))
    with pytest.raises(ValueError, match="fallback must be one of"):
        fit_rcsl(mdp, data, fallback="greedy")
    with pytest.raises(ValueError, match="undiscounted finite-horizon"):
        fit_rcsl(TabularMDP(mdp.P, mdp.R, gamma=0.9), data)
    with pytest.raises(ValueError, match="horizon is 3"):
        fit_rcsl(TabularMDP(mdp.P, mdp.R, horizon=3), data)
    with pytest.raises(ValueError, match=r"states\[0, 1\] = 7"):
        fit_rcsl(mdp, TrajectoryData(np.array([[0, 7, 5]]), np.array([[0, 0]])))
    with pytest.raises(ValueError, match="weights must be >= 0"):
        TrajectoryData(data.states, data.actions, weights=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="rng"):
        mbrcsl(mdp, data, n_rollouts=10)
    with pytest.raises(ValueError, match="no model rollout"):
        mbrcsl(mdp, data, min_return=5.0)


def test_stitching_mdp_optimum_by_enumeration() -> None:
    """From A the best of the 3² action pairs returns 1 (A → M → G); from B also 1; start outside [0, 6) is refused."""
    import itertools

    for start in (0, 1):
        mdp = stitching_mdp(start)
        P, r = mdp.dense_P(), mdp.r
        best = max(r[start, a0] + sum(P[start, a0, s1] * r[s1, a1] for s1 in range(6))
                   for a0, a1 in itertools.product(range(3), repeat=2))
        assert best == 1.0 and optimal(mdp).objective == 1.0
    with pytest.raises(ValueError, match="start"):
        stitching_mdp(6)
