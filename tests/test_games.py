"""rlref.games: the logit QRE against a convex program (cvxpy) and its limits (LP Nash vs nashpy, uniform),
soft minimax VI against its fixed-point equations and Shapley's value, the worst-case evaluation, the
curriculum's NPG against soft minimax VI, and the bad-input errors."""

from __future__ import annotations

import cvxpy as cp
import nashpy
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.games import (
    adversarial_gridworld,
    evaluate_pair,
    linear_schedule,
    markov_game,
    matrix_nash,
    matrix_qre,
    maximin_strategy,
    minimax_value_iteration,
    qre_gap,
    qre_value,
    self_paced_schedule,
    soft_minimax_vi,
    train_curriculum,
    worst_case_value,
)

FAST = settings(max_examples=15, deadline=None)


def cvxpy_qre(A: np.ndarray, t1: float, t2: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Independent reference: x* = argmax_x −τ₂ log Σ_j e^{−(Aᵀx)_j/τ₂} + τ₁H(x) (concave), y* its softmax response."""
    x = cp.Variable(A.shape[0], nonneg=True)
    obj = -t2 * cp.log_sum_exp(-(A.T @ x) / t2) + t1 * cp.sum(cp.entr(x))
    prob = cp.Problem(cp.Maximize(obj), [cp.sum(x) == 1])
    prob.solve(solver=cp.CLARABEL)
    xs = np.clip(np.asarray(x.value), 0, None)
    xs /= xs.sum()
    z = -(A.T @ xs) / t2
    ys = np.exp(z - z.max())
    return xs, ys / ys.sum(), float(prob.value)


@st.composite
def games(draw, max_size: int = 4):
    m = draw(st.integers(1, max_size))
    n = draw(st.integers(1, max_size))
    seed = draw(st.integers(0, 2**31 - 1))
    return np.random.default_rng(seed).uniform(-1, 1, size=(m, n))


@FAST
@given(games(), st.floats(0.05, 5.0), st.floats(0.05, 5.0))
def test_qre_matches_cvxpy_convex_program(A, t1, t2):
    x, y = matrix_qre(A, t1, t2)
    xr, yr, val = cvxpy_qre(A, t1, t2)
    assert np.abs(x - xr).max() < 2e-4 and np.abs(y - yr).max() < 2e-4  # Clarabel's exponential-cone accuracy
    # the game value f(x*, y*) = xᵀAy + τ₁H(x) − τ₂H(y) equals the convex program's optimum
    assert abs(float(qre_value(A, x, y, t1, t2)) - val) < 1e-6


@FAST
@given(games(), st.floats(0.05, 5.0), st.floats(0.05, 5.0))
def test_qre_is_the_logit_fixed_point_with_zero_gap(A, t1, t2):
    x, y = matrix_qre(A, t1, t2)
    ex = np.exp(A @ y / t1 - (A @ y / t1).max())
    ey = np.exp(-A.T @ x / t2 - (-A.T @ x / t2).max())
    assert np.allclose(x, ex / ex.sum(), atol=1e-10) and np.allclose(y, ey / ey.sum(), atol=1e-10)
    assert float(qre_gap(A, x, y, t1, t2)) < 1e-9
    # any other pair has a positive gap
    assert float(qre_gap(A, np.full(A.shape[0], 1 / A.shape[0]), y, t1, t2)) >= 0.0


@FAST
@given(games())
def test_lp_nash_matches_nashpy_support_enumeration(A):
    ne = matrix_nash(A)
    g = nashpy.Game(A, -A)
    # support enumeration misses equilibria of near-degenerate games (its tolerances); vertex enumeration is the fallback
    eqs = list(g.support_enumeration()) or list(g.vertex_enumeration())
    assert eqs, "nashpy found no equilibrium"
    x, y = eqs[0]
    assert abs(ne.value - float(x @ A @ y)) < 1e-7
    assert ne.gap < 1e-8


def test_qre_tends_to_nash_and_to_uniform():
    # biased RPS (OpenSpiel matrix_brps): unique Nash (1, 10, 5)/16 for both players
    A = np.array([[0.0, -0.25, 0.5], [0.25, 0.0, -0.05], [-0.5, 0.05, 0.0]])
    star = np.array([1, 10, 5]) / 16
    errs = []
    for tau in (1e-1, 1e-2, 1e-3):
        x, y = matrix_qre(A, tau, tau)
        errs.append(max(np.abs(x - star).max(), np.abs(y - star).max()))
    assert errs[2] < 5e-3 and errs[0] > errs[1] > errs[2]
    x, y = matrix_qre(A, 1e5, 1e5)
    assert np.abs(x - 1 / 3).max() < 1e-5 and np.abs(y - 1 / 3).max() < 1e-5


def _random_game(seed: int, S: int = 4, A: int = 3, B: int = 2, gamma: float = 0.8):
    rng = np.random.default_rng(seed)
    return markov_game(rng.dirichlet(np.ones(S), size=(S, A, B)), rng.uniform(-1, 1, size=(S, A, B)), gamma)


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10**6), st.floats(0.05, 1.0), st.floats(0.05, 1.0))
def test_soft_minimax_vi_is_the_regularized_equilibrium(seed, t1, t2):
    g = _random_game(seed)
    res = soft_minimax_vi(g, t1, t2, epsilon=1e-10)
    assert res.converged
    # values are the exact regularized value of the returned pair (independent linear solve)
    v, q = evaluate_pair(g, res.row_policy, res.col_policy, t1, t2)
    assert np.abs(v - res.values).max() < 1e-8
    # at every state the pair is the QRE of the stage game Q(s)
    assert np.max(qre_gap(q, res.row_policy, res.col_policy, t1, t2)) < 1e-7
    # neither player gains by deviating to a different policy (protagonist: a soft best response)
    x_alt = np.random.default_rng(seed).dirichlet(np.ones(3), size=4)
    v_alt, _ = evaluate_pair(g, x_alt, res.col_policy, t1, t2)
    assert np.all(v_alt <= res.values + 1e-8)


def test_soft_value_within_entropy_bound_of_shapley():
    g = _random_game(3)
    sh = minimax_value_iteration(g, epsilon=1e-7)
    for tau in (0.3, 0.05):
        soft = soft_minimax_vi(g, tau, tau, epsilon=1e-9)
        # derived bound: each step's entropy bonus lies in [−τ₂ log B, τ₁ log A]
        bound = tau * (np.log(3) + np.log(2)) / (1 - g.mdp.gamma) + 1e-6
        assert np.abs(soft.values - sh.values).max() <= bound
    # Shapley's value: the LP equilibrium is unexploitable by the adversary's best response
    assert np.abs(worst_case_value(g, sh.row_policy) - sh.values).max() < 1e-5


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10**6))
def test_worst_case_value_lower_bounds_every_adversary(seed):
    g = _random_game(seed % 50)
    rng = np.random.default_rng(seed)
    x = rng.dirichlet(np.ones(3), size=4)
    wc = worst_case_value(g, x)
    for _ in range(5):
        y = rng.dirichlet(np.ones(2), size=4)
        assert np.all(wc <= evaluate_pair(g, x, y)[0] + 1e-8)


def test_npg_with_both_temperatures_converges_to_soft_minimax_vi():
    g = _random_game(7)
    t1, t2 = 0.5, 0.5
    run = train_curriculum(g, t1, t2, 400, eta=1.0, record_every=400)
    res = soft_minimax_vi(g, t1, t2, epsilon=1e-10)
    assert np.abs(run.x - res.row_policy).max() < 1e-6 and np.abs(run.y - res.col_policy).max() < 1e-6


def test_schedules():
    s = linear_schedule(1.0, 0.0, 11)
    assert s[0] == 1.0 and s[-1] == 0.0 and np.allclose(np.diff(s), -0.1)
    g = adversarial_gridworld(["S.G"], gamma=0.9)
    run = train_curriculum(g, 0.0, self_paced_schedule(0.5, 0.0, decay=0.5, threshold=0.05), 200, 1.0, record_every=50)
    assert np.all(np.diff(run.taus) <= 0) and run.taus[-1] == 0.0  # monotone, ends fully rational


def test_bad_inputs_raise_clear_errors():
    A = np.eye(2)
    with pytest.raises(ValueError, match="payoff"):
        matrix_qre(np.ones(3), 1.0, 1.0)
    with pytest.raises(ValueError, match="payoff"):
        matrix_qre(np.ones((0, 2)), 1.0, 1.0)
    with pytest.raises(ValueError, match="payoff"):
        matrix_qre(np.array([[np.nan, 1.0]]), 1.0, 1.0)
    with pytest.raises(ValueError, match="tau_row"):
        matrix_qre(A, 0.0, 1.0)
    with pytest.raises(ValueError, match="tau_col"):
        matrix_qre(A, 1.0, -1.0)
    with pytest.raises(ValueError, match="matrix_nash"):
        matrix_qre(A, 1e-9, 1.0)
    with pytest.raises(ValueError, match="tau_end"):
        linear_schedule(0.5, 1.0, 10)
    with pytest.raises(ValueError, match="P must have shape"):
        markov_game(np.ones((2, 2, 2)), np.ones((2, 2)), 0.9)
    with pytest.raises(ValueError, match="R must have shape"):
        markov_game(np.full((2, 1, 1, 2), 0.5), np.ones((2, 2)), 0.9)
    g = _random_game(0)
    with pytest.raises(ValueError, match="tau_col"):
        soft_minimax_vi(g, 1.0, 0.0)
    with pytest.raises(ValueError, match="eta"):
        train_curriculum(g, 0.5, 0.5, 10, eta=3.0)
    with pytest.raises(ValueError, match="x must have shape"):
        worst_case_value(g, np.ones((4, 2)) / 2)


@FAST
@given(games())
def test_maximin_strategy_is_the_row_lp_of_matrix_nash_and_guarantees_the_value(A):
    """maximin_strategy(A) = (x, v) with min_j (Aᵀx)_j = v = the game value (von Neumann 1928), the value of the same
    LP solved by cvxpy/Clarabel (independent solver), and matrix_nash's row strategy is that same LP solution."""
    x, v = maximin_strategy(A)
    xc, vc = cp.Variable(A.shape[0], nonneg=True), cp.Variable()
    cp.Problem(cp.Maximize(vc), [A.T @ xc >= vc, cp.sum(xc) == 1]).solve(solver=cp.CLARABEL)
    assert v == pytest.approx(float(vc.value), abs=1e-7)
    assert float((A.T @ x).min()) == pytest.approx(v, abs=1e-9)
    np.testing.assert_array_equal(matrix_nash(A).x, x)


def test_maximin_strategy_solves_the_symmetric_preference_game():
    """For a preference matrix (P + Pᵀ = 1) the maximin LP is the minimax winner: biased rock-paper-scissors has the
    unique equilibrium (1, 10, 5)/16 and value 1/2 (the published OpenSpiel value; symmetric game)."""
    from rlref.preferences import minimax_winner

    M = np.array([[0.0, -0.25, 0.5], [0.25, 0.0, -0.05], [-0.5, 0.05, 0.0]])  # biased RPS payoff, antisymmetric
    P = 0.5 + M
    x, v = maximin_strategy(P)
    np.testing.assert_allclose(x, np.array([1, 10, 5]) / 16, atol=1e-9)
    assert v == pytest.approx(0.5, abs=1e-12)
    np.testing.assert_array_equal(minimax_winner(P), x)
    with pytest.raises(ValueError, match="payoff"):
        maximin_strategy(np.ones((2, 2, 2)))
