"""Tests for rlref.preferences: preference models, minimax winners and the regularized game."""

from __future__ import annotations

import nashpy
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.preferences import (
    bradley_terry,
    condorcet_winner,
    duality_gap,
    exploitability,
    fit_bradley_terry,
    kl_divergence,
    minimax_winner,
    regularized_exploitability,
    regularized_nash,
    sample_preferences,
    validate_preference_matrix,
    win_rate,
    win_rates,
)

try:
    from rlref.testing import preference_matrices
except ImportError:  # pragma: no cover - fallback while rlref.testing is unavailable
    @st.composite
    def preference_matrices(draw, n=(2, 6), transitive=None):  # type: ignore[no-redef]
        k = draw(st.integers(*n)) if isinstance(n, tuple) else n
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        if transitive:
            return bradley_terry(rng.normal(size=k) * 2)
        U = rng.uniform(0, 1, (k, k))
        P = np.triu(U, 1)
        P = P + np.tril(1 - P.T, -1)
        np.fill_diagonal(P, 0.5)
        return P

# OpenSpiel's biased rock-paper-scissors: payoff A has the published equilibrium (1, 10, 5)/16.
BIASED_RPS = np.array([[0.0, -0.25, 0.5], [0.25, 0.0, -0.05], [-0.5, 0.05, 0.0]])
SETTINGS = settings(max_examples=20, deadline=None)


def random_intransitive(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    B = rng.uniform(-0.5, 0.5, (n, n))
    return 0.5 + (B - B.T) / 2


# ----------------------------------------------------------------------------- models
def test_bradley_terry_is_sigmoid_of_reward_difference():
    r = np.array([0.0, 1.0, -2.0])
    P = bradley_terry(r)
    assert P[1, 0] == pytest.approx(1 / (1 + np.exp(-1.0)))
    assert P[0, 2] == pytest.approx(1 / (1 + np.exp(-2.0)))
    validate_preference_matrix(P)


@given(preference_matrices((2, 6)))
@SETTINGS
def test_valid_preference_matrices_pass_validation(P):
    out = validate_preference_matrix(P)
    np.testing.assert_allclose(np.diag(out), 0.5)


def test_bad_preference_matrix_not_complementary():
    P = np.array([[0.5, 0.7], [0.4, 0.5]])
    with pytest.raises(ValueError, match=r"P \+ P\^T must equal 1"):
        validate_preference_matrix(P)


def test_bad_preference_matrix_outside_unit_interval():
    P = np.array([[0.5, 1.2], [-0.2, 0.5]])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        validate_preference_matrix(P)


def test_bad_preference_matrix_diagonal():
    P = np.array([[0.6, 0.5], [0.5, 0.4]])
    with pytest.raises(ValueError, match="P \\+ P\\^T"):
        validate_preference_matrix(P)


def test_empty_response_set():
    with pytest.raises(ValueError, match="empty"):
        validate_preference_matrix(np.zeros((0, 0)))
    with pytest.raises(ValueError, match="empty"):
        bradley_terry(np.zeros(0))


def test_non_square_and_nan():
    with pytest.raises(ValueError, match="square"):
        validate_preference_matrix(np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="finite"):
        validate_preference_matrix(np.array([[0.5, np.nan], [np.nan, 0.5]]))


def test_tau_must_be_positive():
    P = 0.5 + BIASED_RPS
    for tau in (0.0, -1.0, np.inf):
        with pytest.raises(ValueError, match="tau"):
            regularized_nash(P, None, tau)
        with pytest.raises(ValueError, match="tau"):
            regularized_exploitability(P, np.full(3, 1 / 3), None, tau)


def test_bad_policy_shape_and_backend():
    P = 0.5 + BIASED_RPS
    with pytest.raises(ValueError, match="pi must have shape"):
        win_rates(P, np.ones(2) / 2)
    with pytest.raises(ValueError, match="sum to 1"):
        exploitability(P, np.ones(3))
    with pytest.raises(ValueError, match="backend"):
        minimax_winner(P, backend="glpk")


# ----------------------------------------------------------------------------- sampling
def test_sample_preferences_frequencies_match_P():
    """Empirical win frequency of each ordered pair is within a Hoeffding bound (δ = 1e-6 each)."""
    P = 0.5 + BIASED_RPS * 0.8
    rng = np.random.default_rng(0)
    data = sample_preferences(P, 60_000, rng)
    for i in range(3):
        for j in range(3):
            m = (data.y == i) & (data.y_prime == j)
            k = m.sum()
            bound = np.sqrt(np.log(2 / 1e-6) / (2 * k))
            assert abs(data.y_wins[m].mean() - P[i, j]) <= bound
    np.testing.assert_array_equal(np.where(data.y_wins, data.y, data.y_prime), data.winners)


def test_sample_preferences_from_pairs():
    P = bradley_terry([0.0, 3.0, 1.0])
    data = sample_preferences(P, 500, np.random.default_rng(1), pairs=np.array([[0, 1]]))
    assert set(np.unique(data.y)) == {0} and set(np.unique(data.y_prime)) == {1}
    with pytest.raises(ValueError, match="pairs"):
        sample_preferences(P, 5, np.random.default_rng(1), pairs=np.array([[0, 7]]))


# ----------------------------------------------------------------------------- the game
def test_win_rate_is_bilinear_form():
    P = 0.5 + BIASED_RPS
    pi, pi2 = np.array([0.2, 0.3, 0.5]), np.array([0.6, 0.1, 0.3])
    assert win_rate(P, pi, pi2) == pytest.approx(pi @ P @ pi2)
    assert win_rate(P, pi, pi2) + win_rate(P, pi2, pi) == pytest.approx(1.0)
    np.testing.assert_allclose(win_rates(P, pi2), P @ pi2)


def test_biased_rps_minimax_winner_matches_published_equilibrium():
    """OpenSpiel's biased RPS: Nash (1/16, 10/16, 5/16) (a published, independent golden value)."""
    P = 0.5 + BIASED_RPS
    for backend in ("highs", "cvxpy"):
        np.testing.assert_allclose(minimax_winner(P, backend=backend), np.array([1, 10, 5]) / 16, atol=1e-6)


@given(preference_matrices((2, 5)))
@SETTINGS
def test_minimax_winner_is_nash_of_zero_sum_game_and_value_is_half(P):
    """The LP winner is an equilibrium of the zero-sum game P − 1/2 (as found by nashpy) and the
    value of the symmetric game is 1/2: min_y' P(π ≻ y') = 1/2 and max_y P(y ≻ π) = 1/2."""
    pi = minimax_winner(P)
    assert np.min(pi @ P) == pytest.approx(0.5, abs=1e-8)
    assert exploitability(P, pi) == pytest.approx(0.0, abs=1e-8)
    game = nashpy.Game(P - 0.5)
    # support enumeration's indifference test has a fixed tolerance and can miss the equilibrium
    # of a near-degenerate game; vertex enumeration, then Lemke-Howson, are the fallbacks
    eqs = list(game.support_enumeration()) or list(game.vertex_enumeration()) or [game.lemke_howson(initial_dropped_label=0)]
    assert eqs, "nashpy found no equilibrium"
    for sigma_r, sigma_c in eqs:
        # every nashpy equilibrium strategy is a minimax winner with game value 0 (i.e. 1/2)
        assert float(sigma_r @ (P - 0.5) @ sigma_c) == pytest.approx(0.0, abs=1e-8)
        assert exploitability(P, sigma_r) == pytest.approx(0.0, abs=1e-8)
    if len(eqs) == 1:
        np.testing.assert_allclose(pi, eqs[0][0], atol=1e-7)


@pytest.mark.parametrize("n,seed", [(3, 0), (5, 1), (7, 2), (9, 3)])
def test_minimax_winner_unique_random_games_agree_with_nashpy_lemke_howson(n, seed):
    P = random_intransitive(n, seed)
    sigma_r, _ = nashpy.Game(P - 0.5).lemke_howson(initial_dropped_label=0)
    np.testing.assert_allclose(minimax_winner(P), sigma_r, atol=1e-7)


@given(preference_matrices((2, 5)))
@settings(max_examples=12, deadline=None)
def test_both_lp_backends_agree(P):
    a, b = minimax_winner(P, "highs"), minimax_winner(P, "cvxpy")
    assert exploitability(P, a) == pytest.approx(0.0, abs=1e-8)
    assert exploitability(P, b) == pytest.approx(0.0, abs=1e-6)
    if len(list(nashpy.Game(P - 0.5).support_enumeration())) == 1:
        np.testing.assert_allclose(a, b, atol=1e-5)


@given(preference_matrices((2, 6)), st.integers(0, 10_000))
@SETTINGS
def test_exploitability_nonnegative_and_duality_gap_identity(P, seed):
    pi = np.random.default_rng(seed).dirichlet(np.ones(P.shape[0]))
    e = exploitability(P, pi)
    assert e >= -1e-12
    assert duality_gap(P, pi) == pytest.approx(2 * e)
    pi2 = np.random.default_rng(seed + 1).dirichlet(np.ones(P.shape[0]))
    assert duality_gap(P, pi, pi2) >= -1e-12


@given(preference_matrices((2, 6), transitive=True))
@SETTINGS
def test_condorcet_winner_of_bt_is_the_argmax_reward_and_is_the_minimax_winner(P):
    # for BT, P[y, 0] > 1/2 iff r_y > r_0; the row with the largest row sum has the largest reward
    y = condorcet_winner(P)
    assert y == int(np.argmax(P.sum(axis=1)))
    np.testing.assert_allclose(minimax_winner(P), np.eye(P.shape[0])[y], atol=1e-8)


def test_rock_paper_scissors_has_no_condorcet_winner_and_uniform_winner():
    P = np.array([[0.5, 0.0, 1.0], [1.0, 0.5, 0.0], [0.0, 1.0, 0.5]])
    assert condorcet_winner(P) is None
    np.testing.assert_allclose(minimax_winner(P), np.full(3, 1 / 3), atol=1e-9)
    assert exploitability(P, np.array([1.0, 0, 0])) == pytest.approx(0.5)


# ----------------------------------------------------------------------------- regularized game
@given(preference_matrices((2, 6)), st.sampled_from([1.0, 0.1, 0.01]), st.integers(0, 10_000))
@SETTINGS
def test_regularized_nash_satisfies_fixed_point_equation(P, tau, seed):
    """π*_τ ∝ π_ref exp(P π*_τ / τ) (checked independently here), and its regularized
    exploitability is 0 while any other policy has a positive one."""
    rng = np.random.default_rng(seed)
    ref = rng.dirichlet(np.ones(P.shape[0]) * 2)
    ref = (ref + 1e-3) / (ref + 1e-3).sum()
    res = regularized_nash(P, ref, tau)
    target = ref * np.exp(P @ res.pi / tau)
    target /= target.sum()
    np.testing.assert_allclose(res.pi, target, rtol=1e-9, atol=1e-14)
    assert res.residual < 1e-9
    assert abs(res.exploitability) < 1e-10
    other = rng.dirichlet(np.ones(P.shape[0]))
    assert regularized_exploitability(P, other, ref, tau) > -1e-12


@given(preference_matrices((2, 6)), st.sampled_from([0.5, 0.05, 0.005]))
@SETTINGS
def test_regularized_nash_exploitability_bounded_by_tau_log_n(P, tau):
    """Derived here: exploitability(π*_τ) = τ(max_y log(π*/π_ref)(y) − KL(π*‖π_ref)) <= τ log n."""
    n = P.shape[0]
    star = regularized_nash(P, None, tau).pi
    e = exploitability(P, star)
    ref = np.full(n, 1 / n)
    assert e == pytest.approx(tau * (np.max(np.log(star / ref)) - kl_divergence(star, ref)), abs=1e-10)
    assert e <= tau * np.log(n) + 1e-12


def test_regularized_nash_is_saddle_point_by_direct_best_responses():
    """Independent check: π*_τ is a best response to itself in J_τ (solved by scipy on the simplex)."""
    from scipy.optimize import minimize

    P = random_intransitive(4, 7)
    ref = np.array([0.1, 0.2, 0.3, 0.4])
    tau = 0.2
    star = regularized_nash(P, ref, tau).pi

    def neg_obj(z):
        p = np.exp(z - np.max(z))
        p /= p.sum()
        return -(p @ P @ star - tau * np.sum(p * np.log(p / ref)))

    best = minimize(neg_obj, np.zeros(4), method="BFGS", options={"gtol": 1e-12}).x
    p = np.exp(best - best.max())
    p /= p.sum()
    np.testing.assert_allclose(p, star, atol=1e-6)


# ----------------------------------------------------------------------------- BT fit
@given(st.lists(st.floats(-3, 3), min_size=2, max_size=6))
@SETTINGS
def test_bt_fit_recovers_centered_reward(r):
    r = np.array(r)
    np.testing.assert_allclose(fit_bradley_terry(bradley_terry(r)), r - r.mean(), atol=1e-7)


def test_bradley_terry_mle_that_does_not_exist_is_a_runtime_error():
    """Issue #11 item 5: a response that wins every comparison has no finite MLE (Ford 1957,
    condition A); the fit must raise instead of returning Newton's last iterate [14.6, -14.6]."""
    with pytest.raises(RuntimeError, match=r"responses \[0\] are never beaten"):
        fit_bradley_terry(np.array([[0.5, 1.0], [0.0, 0.5]]))
    # {0, 1} beat each other but both always beat 2: the set {0, 1} is never beaten by the rest.
    P = np.array([[0.5, 0.6, 1.0], [0.4, 0.5, 1.0], [0.0, 0.0, 0.5]])
    with pytest.raises(RuntimeError, match=r"responses \[0, 1\] are never beaten"):
        fit_bradley_terry(P)
    # ridge > 0 makes the problem strictly convex: a finite answer is then correct.
    assert np.all(np.isfinite(fit_bradley_terry(P, ridge=1e-3)))
    # A strongly connected two-item case has the closed form r0 − r1 = log(P01/P10).
    r = fit_bradley_terry(np.array([[0.5, 0.7], [0.3, 0.5]]))
    assert r[0] - r[1] == pytest.approx(np.log(0.7 / 0.3), rel=1e-10)
