"""rlref.theory.lipschitz: W₁ against the closed form on a line and scipy, the Lipschitz projection against the LP
optimum, the model-error bound never violated (hypothesis), the projected VI's fixed point, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.stats import wasserstein_distance

from rlref.mdp import TabularMDP
from rlref.solve import bellman_optimality, value_iteration
from rlref.theory.lipschitz import (
    check_metric,
    lipschitz_constant,
    lipschitz_projection,
    lipschitz_value_iteration,
    model_error_bound,
    wasserstein1,
)


def line_metric(x: np.ndarray) -> np.ndarray:
    return np.abs(x[:, None] - x[None, :])


def random_pair(seed: int, S: int, A: int, gamma: float, noise: float):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 1, S)) + np.arange(S) * 1e-3
    P = rng.dirichlet(np.ones(S) * 0.5, size=(S, A))
    Ph = (1 - noise) * P + noise * rng.dirichlet(np.ones(S), size=(S, A))
    R = rng.uniform(0, 1, (S, A))
    return TabularMDP(P, R, gamma=gamma), TabularMDP(Ph, R, gamma=gamma), line_metric(x)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 7))
def test_w1_matches_closed_form_on_a_line(seed, n):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 1, n)) + np.arange(n) * 1e-3
    p, q = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
    ref = wasserstein_distance(x, x, p, q)  # independent: ∫|F − G| on the line
    assert wasserstein1(p, q, line_metric(x)) == pytest.approx(ref, abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 7), st.floats(0.1, 5.0))
def test_projection_is_lipschitz_and_sup_optimal(seed, n, L):
    rng = np.random.default_rng(seed)
    d = line_metric(rng.uniform(0, 1, n) + np.arange(n) * 1e-2)
    f = rng.normal(size=n)
    g = lipschitz_projection(f, d, L)
    assert lipschitz_constant(g, d) <= L + 1e-9
    # independent reference: min_{h, t} t s.t. |h − f| ≤ t, h(i) − h(j) ≤ L d(i, j)  (LP)
    rows, b = [], []
    for i in range(n):
        for sgn in (1, -1):
            r = np.zeros(n + 1)
            r[i], r[n] = sgn, -1
            rows.append(r)
            b.append(sgn * f[i])
        for j in range(n):
            if i != j:
                r = np.zeros(n + 1)
                r[i], r[j] = 1, -1
                rows.append(r)
                b.append(L * d[i, j])
    c = np.zeros(n + 1)
    c[n] = 1
    res = linprog(c, A_ub=np.array(rows), b_ub=np.array(b), bounds=[(None, None)] * n + [(0, None)], method="highs")
    assert np.abs(g - f).max() == pytest.approx(res.fun, abs=1e-8)
    # an L-Lipschitz f is left alone
    assert np.allclose(lipschitz_projection(g, d, L), g, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 5), st.integers(1, 3), st.floats(0.5, 0.95), st.floats(0.01, 0.6))
def test_model_error_bound_never_violated(seed, S, A, gamma, noise):
    M, Mh, d = random_pair(seed, S, A, gamma, noise)
    b = model_error_bound(M, Mh, d)
    assert b.gap <= b.bound + 1e-7
    # the one-step operator gap for an L_V-Lipschitz V (the paper's Sec. 4 inequality), V = V*_M
    v = value_iteration(M, epsilon=1e-11).values
    op_gap = np.abs(bellman_optimality(M, v) - bellman_optimality(Mh, v)).max()
    assert op_gap <= gamma * lipschitz_constant(v, d) * b.epsilon + 1e-9


def test_lipschitz_vi_fixed_point_and_limits():
    M, _, d = random_pair(3, 5, 2, 0.9, 0.2)
    v_star = value_iteration(M, epsilon=1e-12).values
    L_star = lipschitz_constant(v_star, d)
    # L above Lip(V*): no effect, the fixed point is V* (core VI, an independent solver)
    big = lipschitz_value_iteration(M, d, 2 * L_star)
    assert np.abs(big.values - v_star).max() < 1e-8
    # L below: a fixed point of Π_L ∘ T with Lip ≤ L, strictly different from V*
    small = lipschitz_value_iteration(M, d, 0.3 * L_star)
    assert np.allclose(lipschitz_projection(bellman_optimality(M, small.values), d, 0.3 * L_star), small.values, atol=1e-8)
    assert lipschitz_constant(small.values, d) <= 0.3 * L_star + 1e-9
    assert np.abs(small.values - v_star).max() > 1e-3


def test_bad_inputs():
    d = line_metric(np.array([0.0, 1.0, 3.0]))
    with pytest.raises(ValueError, match="L"):
        lipschitz_projection(np.zeros(3), d, 0.0)
    with pytest.raises(ValueError, match="triangle"):
        check_metric(np.array([[0, 1, 5], [1, 0, 1], [5, 1, 0.0]]))
    with pytest.raises(ValueError, match="symmetric"):
        check_metric(np.array([[0, 1.0], [2.0, 0]]))
    with pytest.raises(ValueError, match="q"):
        wasserstein1(np.array([1.0, 0, 0]), np.array([0.5, 0.6, 0]), d)
    M, Mh, d2 = random_pair(0, 3, 2, 0.9, 0.1)
    with pytest.raises(ValueError, match="reward"):
        model_error_bound(M, TabularMDP(Mh.dense_P(), np.zeros((3, 2)), gamma=0.9), d2)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.5, 0.9, 0.95]), st.floats(0.1, 1.0))
def test_lipschitz_vi_certificate_bounds_the_distance_to_the_fixed_point(seed, gamma, frac):
    """Π_L ∘ T is a γ-contraction, so a loose run's value_error_bound γ‖V_k − V_{k−1}‖/(1 − γ) covers its distance to
    V_L (taken from a run to 1e-13; Puterman 1994, Thm 6.3.1), and the hand-written loop V ← Π_L(T V) stops at the same
    sweep with the same values (an independent implementation of the same iteration)."""
    M, _, d = random_pair(seed, 5, 2, gamma, 0.1)
    L = frac * max(lipschitz_constant(value_iteration(M, epsilon=1e-11).values, d), 1e-3)
    loose, tight = lipschitz_value_iteration(M, d, L, tol=1e-3), lipschitz_value_iteration(M, d, L, tol=1e-13)
    assert np.abs(loose.values - tight.values).max() <= loose.value_error_bound + 1e-12
    assert loose.value_error_bound == pytest.approx(gamma * loose.residual / (1 - gamma))
    v, k, step = np.zeros(5), 0, np.inf
    while step > 1e-3:
        nv = lipschitz_projection(bellman_optimality(M, v), d, L)
        step, v, k = float(np.abs(nv - v).max()), nv, k + 1
    assert k == loose.iterations and np.array_equal(v, loose.values)
