"""Tests for rlref.algorithms.histories: the bisimulation metric over observation histories and its bounds.

Independent references: scipy.stats.wasserstein_distance (W₁ on the line), the core planner's V* (Ferns'
bound |V*(x) − V*(y)| ≤ d(x, y)), the hidden-state MDP evaluated by the core (history-MDP construction), and
brute-force enumeration of hidden paths (beliefs).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance

from rlref.algorithms.histories import (
    HistoryData,
    aggregate_mdp,
    aggregation_bound,
    bisimulation_metric,
    bisimulation_operator,
    empirical_cell_mdp,
    history_mdp,
    lift_policy,
    partition_by_metric,
    sample_histories,
    wasserstein1,
)
from rlref.mdp import TabularMDP
from rlref.solve import optimal, policy_evaluation, state_occupancy
from rlref.testing import tabular_mdps

FAST = settings(max_examples=8, deadline=None)


def random_pomdp(seed: int, S: int = 2, A: int = 2, O: int = 2):
    rng = np.random.default_rng(seed)
    return (rng.dirichlet(np.ones(S), size=(S, A)), rng.dirichlet(np.ones(O), size=S), rng.uniform(0, 1, (S, A)),
            rng.dirichlet(np.ones(S)))


# ----------------------------------------------------------------------------- W1
@settings(max_examples=20, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_wasserstein1_equals_the_closed_form_on_the_line(n, m, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=n), rng.normal(size=m)
    p, q = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(m))
    pts = np.r_[x, y]
    cost = np.abs(pts[:, None] - pts[None, :])
    w = wasserstein1(np.r_[p, np.zeros(m)], np.r_[np.zeros(n), q], cost)
    assert w == pytest.approx(wasserstein_distance(x, y, p, q), abs=1e-8)


# ----------------------------------------------------------------------------- the metric
@FAST
@given(tabular_mdps(2, 3, 1, 2, discounted=True, sparse=False, gamma=(0.0, 0.5)))
def test_bisimulation_metric_is_a_fixed_point_and_bounds_optimal_values(mdp):
    """d* = F(d*) (Ferns et al. 2004, Thm 4.5), a pseudometric, and |V*(x) − V*(y)| ≤ d*(x, y) (Thm 5.1)."""
    res = bisimulation_metric(mdp, tol=1e-9)
    d = res.metric
    assert res.converged
    np.testing.assert_allclose(bisimulation_operator(mdp, d), d, atol=1e-8)
    np.testing.assert_allclose(d, d.T, atol=0)
    assert np.all(np.diag(d) == 0) and np.all(d >= 0)
    assert np.all(d[:, None, :] <= d[:, :, None] + d[None, :, :] + 1e-9)  # triangle inequality d(x,z) ≤ d(x,y) + d(y,z)
    v = optimal(mdp).values
    q = optimal(mdp).q
    assert np.all(np.abs(v[:, None] - v[None, :]) <= d + 1e-6)
    assert np.all(np.abs(q[:, None, :] - q[None, :, :]).max(-1) <= d + 1e-6)


# ----------------------------------------------------------------------------- the history MDP
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_history_mdp_matches_the_hidden_state_mdp_for_history_blind_policies(seed):
    """A history-independent policy earns the same in the history MDP and in the hidden-state MDP (core evaluation)."""
    T, Z, R, mu0 = random_pomdp(seed, S=3, A=2, O=2)
    H, gamma = 3, 0.8
    hist = history_mdp(T, Z, R, mu0, H, gamma)
    pa = np.array([0.3, 0.7])
    J_hist = policy_evaluation(hist.mdp, np.broadcast_to(pa, (hist.mdp.num_states, 2)).copy()).objective
    hidden = TabularMDP(np.broadcast_to(T, (H, *T.shape)).copy(), np.broadcast_to(R, (H, *R.shape)).copy(), gamma=gamma,
                        horizon=H, mu0=mu0, reward_axes="hsa")
    J_hidden = policy_evaluation(hidden, np.broadcast_to(pa, (3, 2)).copy()).objective
    assert J_hist == pytest.approx(J_hidden, abs=1e-12)
    for t in range(H):  # the stage-t histories carry probability 1 under any policy (uniform here)
        occ = state_occupancy(hist.mdp, np.full((hist.mdp.num_states, 2), 0.5))
        assert occ[hist.stage == t].sum() > 0


def test_beliefs_match_brute_force_enumeration():
    T, Z, R, mu0 = random_pomdp(3, S=2, A=2, O=2)
    hist = history_mdp(T, Z, R, mu0, 2, 0.9)
    for k, h in enumerate(hist.histories):
        if len(h) != 3:
            continue
        o0, a0, o1 = h
        joint = np.array([sum(mu0[s0] * Z[s0, o0] * T[s0, a0, s1] * Z[s1, o1] for s0 in range(2)) for s1 in range(2)])
        np.testing.assert_allclose(hist.belief[k], joint / joint.sum(), atol=1e-12)


# ----------------------------------------------------------------------------- compression bounds
@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 3), st.floats(0.5, 0.95))
def test_aggregation_bound_is_never_violated(seed, S, gamma):
    """Greedy cell policy loss ≤ 2ε(Σ_{k<H} γ^k)² for cells of d-diameter ≤ ε, for any within-cell weights."""
    T, Z, R, mu0 = random_pomdp(seed, S=S, A=2, O=2)
    hist = history_mdp(T, Z, R, mu0, 2, gamma)
    d = bisimulation_metric(hist.mdp, blocks=hist.stage).metric
    opt = optimal(hist.mdp)
    rng = np.random.default_rng(seed)
    for eps in [0.0, 0.05, 0.1, 0.2, 0.4, 0.8]:
        lab = partition_by_metric(d, eps, hist.stage)
        cells = np.unique(lab)
        diam = max(d[np.ix_(lab == c, lab == c)].max() for c in cells)
        assert diam <= eps + 1e-9
        agg = aggregate_mdp(hist.mdp, lab, rng.uniform(0.1, 1.0, hist.mdp.num_states))
        pi = lift_policy(optimal(agg).q, lab)
        loss = policy_evaluation(hist.mdp, pi).values - opt.values
        assert np.all(-loss <= aggregation_bound(eps, gamma, depth=2) + 1e-9)


def test_exact_bisimulation_classes_are_lossless_and_collapse_distractors():
    """A distractor observation bit and the (reward-irrelevant) past action do not change the belief: d = 0 merges them."""
    T = np.broadcast_to(np.eye(2)[:, None, :], (2, 2, 2)).copy()
    Z = np.array([[0.4, 0.4, 0.1, 0.1], [0.1, 0.1, 0.4, 0.4]])  # o = 2x + z, x = s w.p. 0.8, z a fair coin
    hist = history_mdp(T, Z, np.eye(2), np.array([0.5, 0.5]), 2, 0.9)
    d = bisimulation_metric(hist.mdp, blocks=hist.stage).metric
    lab = partition_by_metric(d, 0.0, hist.stage)
    assert hist.num_histories == 4 + 32
    assert [len(np.unique(lab[hist.stage == t])) for t in (0, 1)] == [2, 3]  # beliefs 0.8/0.2; 0.94/0.5/0.06
    pi = lift_policy(optimal(aggregate_mdp(hist.mdp, lab, np.ones(hist.mdp.num_states))).q, lab)
    assert policy_evaluation(hist.mdp, pi).objective == pytest.approx(optimal(hist.mdp).objective, abs=1e-12)


def test_offline_cells_with_full_data_recover_the_optimum():
    T = np.broadcast_to(np.eye(2)[:, None, :], (2, 2, 2)).copy()
    Z = np.array([[0.4, 0.4, 0.1, 0.1], [0.1, 0.1, 0.4, 0.4]])
    R, mu0 = np.eye(2), np.array([0.5, 0.5])
    hist = history_mdp(T, Z, R, mu0, 2, 0.9)
    lab = partition_by_metric(bisimulation_metric(hist.mdp, blocks=hist.stage).metric, 0.0, hist.stage)
    data = sample_histories(T, Z, R, mu0, hist, np.array([0.5, 0.5]), 400, np.random.default_rng(0))
    pi = lift_policy(optimal(empirical_cell_mdp(hist, data, lab)).q, lab)
    assert policy_evaluation(hist.mdp, pi).objective == pytest.approx(optimal(hist.mdp).objective, abs=1e-12)


# ----------------------------------------------------------------------------- bad inputs
def test_bad_inputs_raise_named_errors():
    T, Z, R, mu0 = random_pomdp(0)
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        history_mdp(T, Z, R, mu0, 0, 0.9)
    with pytest.raises(ValueError, match="gamma"):
        history_mdp(T, Z, R, mu0, 2, 1.0)
    with pytest.raises(ValueError, match=r"Z\[0\]"):
        history_mdp(T, np.array([[0.5, 0.6], [0.5, 0.5]]), R, mu0, 2, 0.9)
    with pytest.raises(ValueError, match="R must have shape"):
        history_mdp(T, Z, R[:, :1], mu0, 2, 0.9)
    with pytest.raises(ValueError, match="cost must have shape"):
        wasserstein1(np.array([0.5, 0.5]), np.array([1.0]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="not finite"):
        wasserstein1(np.array([0.5, 0.5]), np.array([0.5, 0.5]), np.array([[0.0, np.inf], [np.inf, 0.0]]))
    with pytest.raises(ValueError, match="eps must be >= 0"):
        aggregation_bound(-0.1, 0.9)
    with pytest.raises(ValueError, match="discounted"):
        bisimulation_metric(TabularMDP(np.ones((2, 1, 2)) / 2, np.zeros((2, 1)), horizon=2))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sample_histories(T, Z, R, mu0, history_mdp(T, Z, R, mu0, 2, 0.9), np.array([0.5, 0.5]), 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="dataset is empty"):
        HistoryData(np.zeros((0, 2), dtype=int), np.zeros((0, 2), dtype=int), np.zeros((0, 2)))
