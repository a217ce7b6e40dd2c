"""rlref.algorithms.ota: tabular OTA / HIQL expectile values (Ahn et al. 2025)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.sparse.csgraph import shortest_path

from rlref.algorithms.ota import (
    advantage_sign_accuracy,
    expectile,
    option_outcomes,
    ota_values,
    shortest_path_option_values,
)
from rlref.mdp import TabularMDP
from rlref.solve import policy_evaluation


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 8), st.floats(0.05, 0.95), st.integers(0, 10_000))
def test_expectile_minimizes_the_asymmetric_square_loss(m, tau, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=m), rng.random(m) + 0.01
    loss = lambda e: float(np.sum(w * np.abs(tau - (x < e)) * (x - e) ** 2))  # noqa: E731
    ref = minimize_scalar(loss, bounds=(x.min() - 1, x.max() + 1), method="bounded", options={"xatol": 1e-12}).x
    assert float(expectile(x, tau, w)) == pytest.approx(ref, abs=1e-7)


def test_expectile_half_is_the_weighted_mean_and_high_tau_tends_to_max():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(6, 5)), rng.random((6, 5))
    np.testing.assert_allclose(expectile(x, 0.5, w), (w * x).sum(1) / w.sum(1), atol=1e-14)
    assert np.all(expectile(x, 1 - 1e-9, w) <= x.max(1) + 1e-12)
    np.testing.assert_allclose(expectile(x, 1 - 1e-9, w), x.max(1), atol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("tau", [0.3, 0.7, 0.9])
def test_shortest_path_data_gives_the_closed_form(n, tau):
    """On a corridor walked left to right, V_n(s, g) = −(1 − γ^{⌈d/n⌉})/(1 − γ) for every g right of s."""
    S, gamma = 14, 0.9
    res = ota_values([np.arange(S)], S, n, gamma=gamma, tau=tau)
    idx = np.arange(S)
    d = np.where(idx[None, :] >= idx[:, None], idx[None, :] - idx[:, None], np.inf)  # d[s, g]
    ref = shortest_path_option_values(d, n, gamma)
    ok = np.isfinite(d)
    assert res.converged
    np.testing.assert_allclose(res.values[ok & ~np.isnan(res.values)], ref[ok & ~np.isnan(res.values)], atol=1e-9)
    assert np.isnan(res.values[S - 1, 0])  # the last state has no outgoing option: no data


def _random_walks(S, rng, num=6, length=25):
    adj = [[max(s - 1, 0), min(s + 1, S - 1)] for s in range(S)]
    out = []
    for _ in range(num):
        s = int(rng.integers(S))
        tr = [s]
        for _ in range(length):
            s = adj[s][int(rng.integers(2))]
            tr.append(s)
        out.append(np.array(tr))
    return out


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.5, 0.95))
def test_mean_expectile_n1_equals_policy_evaluation_of_the_empirical_chain(seed, gamma):
    """τ = 1/2, n = 1: V(·, g) is the value of the empirical Markov chain with g absorbing and
    reward −1 per step (solved independently by rlref.solve.policy_evaluation on that chain)."""
    rng = np.random.default_rng(seed)
    S = 7
    trajs = _random_walks(S, rng)
    res = ota_values(trajs, S, 1, gamma=gamma, tau=0.5, epsilon=1e-12)
    counts = np.zeros((S, S))
    for tr in trajs:
        np.add.at(counts, (tr[:-1], tr[1:]), 1.0)
    for g in range(S):
        P = np.zeros((S, 1, S))
        R = np.full((S, 1), -1.0)
        for s in range(S):
            if s == g or counts[s].sum() == 0:
                P[s, 0, s], R[s, 0] = 1.0, 0.0
            else:
                P[s, 0] = counts[s] / counts[s].sum()
        ev = policy_evaluation(TabularMDP(P, R, gamma=gamma), np.ones((S, 1)))
        seen = counts.sum(1) > 0
        np.testing.assert_allclose(res.values[seen, g], ev.values[seen], atol=1e-8)


def test_option_outcomes_by_hand():
    C = option_outcomes([[0, 1, 2, 3]], 4, 2)
    # from 0 (t=0) the window is (1, 2): goal 1 ends the option at 1, goal 2 at 2, others at 2
    assert C[0, 1, 1] == 1 and C[0, 2, 2] == 1 and C[0, 3, 2] == 1 and C[0, 0, 2] == 1
    # from 2 (t=2) the window is (3,) (trajectory end)
    assert C[2, 0, 3] == 1 and C[2, 3, 3] == 1
    assert C[3].sum() == 0


def test_options_enlarge_the_advantage_gap_only_for_long_horizons():
    """Shortest-path data, subgoal k = 8 steps closer: the primitive gap is γ^{d−k}(1 − γ^k)/(1 − γ),
    the OTA gap (n = 8) γ^{⌈(d−k)/8⌉}; OTA's is larger exactly beyond the crossover distance
    d − k > 8 log((1 − γ^k)/(1 − γ)) / (7 log(1/γ)) (derived here), smaller before it."""
    gamma, k, n = 0.9, 8, 8
    d = np.arange(k, 80, dtype=float)
    gap1 = shortest_path_option_values(d, 1, gamma) - shortest_path_option_values(d - k, 1, gamma)
    gapn = shortest_path_option_values(d, n, gamma) - shortest_path_option_values(d - k, n, gamma)
    gap1, gapn = -gap1, -gapn
    np.testing.assert_allclose(gap1, gamma ** (d - k) * (1 - gamma ** k) / (1 - gamma), rtol=1e-10)
    np.testing.assert_allclose(gapn, gamma ** np.ceil((d - k) / n), rtol=1e-10)
    x = d - k
    cross = n * np.log((1 - gamma ** k) / (1 - gamma)) / ((n - 1) * np.log(1 / gamma))
    assert np.all(gapn[x > cross + n] > gap1[x > cross + n])
    assert np.all(gapn[x < cross - n] < gap1[x < cross - n])


def test_advantage_sign_accuracy_by_hand():
    V = np.array([[0.0, -2.0], [-1.0, 0.0], [-1.0, -1.0]])
    D = np.array([[0, 2], [1, 0], [1, 1]], dtype=float)
    acc = advantage_sign_accuracy(V, D, np.array([[0, 1, 1], [1, 0, 0], [0, 2, 1]]))
    # (0 -> 1, g=1): dV = 0 - (-2) > 0, dd = 2 - 0 > 0: right; (1 -> 0, g=0): dV = 0-(-1) > 0, dd = 1 > 0: right
    # (0 -> 2, g=1): dV = -1 - (-2) = 1 > 0, dd = 2 - 1 = 1 > 0: right
    np.testing.assert_array_equal(acc, [1.0, 1.0, 1.0])
    acc2 = advantage_sign_accuracy(-V, D, np.array([[0, 1, 1]]))
    np.testing.assert_array_equal(acc2, [0.0])
    # a graph check of distances used by the experiment: scipy's BFS on a path graph
    A = np.diag(np.ones(3), 1) + np.diag(np.ones(3), -1)
    assert shortest_path(A, unweighted=True)[0, 3] == 3


@pytest.mark.parametrize("call, match", [
    (lambda: expectile(np.ones(3), 1.0), "tau"),
    (lambda: expectile(np.ones(3), 0.0), "tau"),
    (lambda: expectile(np.array([1.0, np.nan]), 0.5), "x"),
    (lambda: expectile(np.ones(2), 0.5, np.array([1.0, -1.0])), "weights"),
    (lambda: expectile(np.ones(2), 0.5, np.zeros(2)), "weights"),
    (lambda: ota_values([[0, 5]], 3, 1), r"trajectories\[0\]\[1\] = 5"),
    (lambda: ota_values([[0, 1]], 3, 0), "n must be"),
    (lambda: ota_values([[0]], 3, 1), "trajectories"),
    (lambda: ota_values([], 3, 1), "trajectories"),
    (lambda: ota_values([[0, 1]], 3, 1, gamma=1.0), "gamma"),
    (lambda: shortest_path_option_values(np.array([-1.0]), 1, 0.9), "distance"),
    (lambda: advantage_sign_accuracy(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2), dtype=int)), "pairs"),
])
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
