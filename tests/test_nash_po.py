"""Tests for rlref.algorithms.nash_po: INPO, Nash-MD, SPO and iterated DPO on preference games."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.nash_po import (
    hedge_regret_bound,
    inpo,
    inpo_empirical_loss,
    inpo_empirical_minimizer,
    inpo_minimize,
    inpo_population_loss,
    inpo_sampled,
    inpo_update,
    iterated_dpo_bt,
    nash_md,
    nash_md_update,
    spo_hedge,
    spo_policy_gradient,
    win_proportion_rewards,
)
from rlref.preferences import exploitability, minimax_winner, regularized_nash, sample_preferences

try:
    from rlref.testing import preference_matrices
except ImportError:  # pragma: no cover
    @st.composite
    def preference_matrices(draw, n=(2, 6), transitive=None):  # type: ignore[no-redef]
        k = draw(st.integers(*n)) if isinstance(n, tuple) else n
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        B = rng.uniform(-0.5, 0.5, (k, k))
        return 0.5 + (B - B.T) / 2

SETTINGS = settings(max_examples=20, deadline=None)
BIASED_RPS = 0.5 + 0.8 * np.array([[0.0, -0.25, 0.5], [0.25, 0.0, -0.05], [-0.5, 0.05, 0.0]])


def dirichlet(n: int, seed: int) -> np.ndarray:
    p = np.random.default_rng(seed).dirichlet(np.ones(n))
    return (p + 1e-3) / (p + 1e-3).sum()


# ----------------------------------------------------------------------------- INPO
@given(preference_matrices((2, 6)), st.integers(0, 10_000), st.floats(0.05, 2.0), st.floats(0.01, 0.99))
@SETTINGS
def test_inpo_population_loss_minimizer_is_the_closed_form_omd_iterate(P, seed, eta, eta_tau):
    """Zhang et al. (2024): argmin_π L_t(π) = π_{t+1} ∝ π_t^{1−ητ} π_ref^{ητ} exp(η P(y ≻ π_t))."""
    n = P.shape[0]
    tau = eta_tau / eta
    pi_t, ref = dirichlet(n, seed), dirichlet(n, seed + 1)
    closed = inpo_update(P, pi_t, ref, tau, eta)
    # independent check of the closed form itself
    manual = pi_t ** (1 - eta * tau) * ref ** (eta * tau) * np.exp(eta * P @ pi_t)
    np.testing.assert_allclose(closed, manual / manual.sum(), rtol=1e-10)
    np.testing.assert_allclose(inpo_minimize(P, pi_t, ref, tau, eta), closed, atol=1e-7)


@given(preference_matrices((2, 5)), st.integers(0, 10_000))
@settings(max_examples=10, deadline=None)
def test_inpo_empirical_minimizer_closed_form_equals_lbfgs(P, seed):
    rng = np.random.default_rng(seed)
    n = P.shape[0]
    pi_t, ref = dirichlet(n, seed), dirichlet(n, seed + 1)
    data = sample_preferences(P, 400, rng, policy=pi_t)
    a = inpo_empirical_minimizer(data, pi_t, ref, 0.4, 0.9)
    b = inpo_minimize(None, pi_t, ref, 0.4, 0.9, data=data)
    la, _ = inpo_empirical_loss(np.log(a), data, pi_t, ref, 0.4, 0.9)
    lb, _ = inpo_empirical_loss(np.log(b), data, pi_t, ref, 0.4, 0.9)
    assert la <= lb + 1e-10
    seen = np.union1d(data.y, data.y_prime)
    if seen.size == n:  # connected comparisons: the minimizer is unique
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_inpo_empirical_minimizer_converges_to_population_iterate():
    P = BIASED_RPS
    pi_t, ref = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    data = sample_preferences(P, 200_000, np.random.default_rng(0), policy=pi_t)
    np.testing.assert_allclose(inpo_empirical_minimizer(data, pi_t, ref, 0.5, 1.0), inpo_update(P, pi_t, ref, 0.5, 1.0), atol=5e-3)


@pytest.mark.parametrize("loss", ["population", "empirical"])
def test_inpo_loss_gradients_match_finite_differences(loss):
    P = BIASED_RPS
    rng = np.random.default_rng(3)
    pi_t, ref = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    data = sample_preferences(P, 50, rng, policy=pi_t)
    theta = rng.normal(size=3)

    def f(th):
        if loss == "population":
            return inpo_population_loss(th, P, pi_t, ref, 0.3, 0.8)
        return inpo_empirical_loss(th, data, pi_t, ref, 0.3, 0.8)

    _, g = f(theta)
    eps = 1e-6
    fd = np.array([(f(theta + eps * e)[0] - f(theta - eps * e)[0]) / (2 * eps) for e in np.eye(3)])
    np.testing.assert_allclose(g, fd, atol=1e-7)


@pytest.mark.parametrize("method", [inpo, nash_md])
@pytest.mark.parametrize("P", [BIASED_RPS, 0.5 + 0.5 * np.array([[0, 1, -1, .3], [-1, 0, 1, .2], [1, -1, 0, -.4], [-.3, -.2, .4, 0]])])
def test_last_iterate_kl_below_nash_md_bound(method, P):
    """Munos et al. (2023), Thm. 1 with η_t = 2/(τ(t+2)): KL(π*_τ ‖ π_t) <= 8/(τ²(t+1)), t >= 1;
    and π_T -> π*_τ."""
    tau = 0.2
    tr = method(P, None, tau, 400)
    t = np.arange(1, 401)
    assert np.all(tr.kl_to_regularized_nash[1:] <= 8 / (tau**2 * (t + 1)))
    assert tr.kl_to_regularized_nash[-1] < 1e-4
    np.testing.assert_allclose(tr.last, regularized_nash(P, None, tau).pi, atol=1e-2)
    assert tr.exploitability[-1] <= tau * np.log(P.shape[0]) + 1e-3


def test_nash_md_update_matches_manual_geometric_mixture():
    P, pi, ref = BIASED_RPS, np.array([0.6, 0.3, 0.1]), np.array([0.2, 0.5, 0.3])
    eta, tau = 0.7, 0.5
    mu = pi ** (1 - eta * tau) * ref ** (eta * tau)
    mu /= mu.sum()
    nxt = mu * np.exp(eta * P @ mu)
    np.testing.assert_allclose(nash_md_update(P, pi, ref, tau, eta), nxt / nxt.sum(), rtol=1e-12)


def test_inpo_sampled_converges_to_regularized_nash():
    tr = inpo_sampled(BIASED_RPS, None, 0.5, 300, 2000, np.random.default_rng(0))
    assert tr.kl_to_regularized_nash[-1] < 1e-3
    assert tr.kl_to_regularized_nash[-1] < tr.kl_to_regularized_nash[1]


# ----------------------------------------------------------------------------- SPO
@given(preference_matrices((2, 6)))
@settings(max_examples=10, deadline=None)
def test_spo_hedge_average_exploitability_equals_regret_over_T_and_obeys_bound(P):
    """exploitability(average) = Regret_T / T (derived) <= Hedge bound / T (Cesa-Bianchi & Lugosi Thm 2.3)."""
    n = P.shape[0]
    T = 300
    tr = spo_hedge(P, T)
    played = tr.policies[:T]
    regret = np.max(np.sum(played @ P.T, axis=0)) - np.sum(np.einsum("ti,ij,tj->t", played, P, played))
    assert tr.average_exploitability[T] == pytest.approx(regret / T, abs=1e-12)
    if n >= 2:
        assert tr.average_exploitability[T] <= hedge_regret_bound(T, n) / T


def test_spo_hedge_average_converges_to_lp_minimax_winner():
    tr = spo_hedge(BIASED_RPS, 5000)
    assert tr.average_exploitability[-1] < 0.01
    np.testing.assert_allclose(tr.average, minimax_winner(BIASED_RPS), atol=0.05)


def test_spo_policy_gradient_last_iterate_does_not_converge_on_rps():
    """Plain self-play PG cycles around the interior equilibrium of rock–paper–scissors."""
    P = np.array([[0.5, 0.1, 0.9], [0.9, 0.5, 0.1], [0.1, 0.9, 0.5]])
    tr = spo_policy_gradient(P, 3000, eta=1.0, pi0=np.array([0.5, 0.3, 0.2]))
    assert np.min(tr.exploitability[1000:]) > 1e-3
    assert tr.average_exploitability[-1] < np.max(tr.exploitability[1000:])


def test_win_proportion_reward_is_unbiased():
    """E[r_i | y_i = y] = P(y ≻ π). Monte Carlo over 10,000 independent batches (one reward per
    batch, so the samples are i.i.d. in [0, 1]); Hoeffding with δ = 1e-6 per response."""
    P = BIASED_RPS
    pi = np.array([0.2, 0.5, 0.3])
    rng = np.random.default_rng(0)
    ys, rs = [], []
    for _ in range(10_000):
        y, r = win_proportion_rewards(P, pi, 4, rng)
        ys.append(y[0])
        rs.append(r[0])
    ys, rs = np.array(ys), np.array(rs)
    for y in range(3):
        m = ys == y
        bound = np.sqrt(np.log(2 / 1e-6) / (2 * m.sum()))
        assert abs(rs[m].mean() - (P @ pi)[y]) <= bound


def test_win_proportion_rewards_are_consistent():
    ys, r = win_proportion_rewards(BIASED_RPS, np.full(3, 1 / 3), 6, np.random.default_rng(1))
    # every comparison has exactly one winner: total wins = m(m-1)/2
    assert r.sum() * 5 == pytest.approx(15)
    with pytest.raises(ValueError, match="m must"):
        win_proportion_rewards(BIASED_RPS, np.full(3, 1 / 3), 1, np.random.default_rng(1))


# ----------------------------------------------------------------------------- iterated DPO
def test_iterated_dpo_with_bt_fit_stays_exploitable_on_intransitive_preferences():
    """The iterates cycle (never settle) and are repeatedly far more exploitable than the
    regularized Nash point at the same strength (<= β log n)."""
    beta = 0.05
    tr = iterated_dpo_bt(BIASED_RPS, None, beta, 30)
    tail = tr.exploitability[10:]
    assert np.max(tail) > 0.25 > beta * np.log(3)
    assert np.ptp(tail) > 0.1


def test_iterated_dpo_with_bt_fit_solves_transitive_preferences():
    r = np.array([0.0, 1.0, 2.0])
    P = 1 / (1 + np.exp(-(r[:, None] - r[None, :])))
    tr = iterated_dpo_bt(P, None, 0.1, 3)
    expected = np.exp(r / 0.1) / np.exp(r / 0.1).sum()
    np.testing.assert_allclose(tr.last, expected, atol=1e-6)


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs():
    with pytest.raises(ValueError, match="tau"):
        inpo(BIASED_RPS, None, 0.0, 10)
    with pytest.raises(ValueError, match="num_iters"):
        nash_md(BIASED_RPS, None, 0.1, 0)
    with pytest.raises(ValueError, match="pi_ref"):
        inpo(BIASED_RPS, np.array([0.5, 0.5, 0.0]), 0.1, 10)
    with pytest.raises(ValueError, match="eta"):
        spo_hedge(BIASED_RPS, 10, eta=-1.0)
    with pytest.raises(ValueError, match="P"):
        spo_hedge(np.array([[0.5, 0.9], [0.9, 0.5]]), 10)
    with pytest.raises(ValueError, match="beta"):
        iterated_dpo_bt(BIASED_RPS, None, 0.0, 3)


def test_trajectory_shapes_and_averages():
    tr = spo_hedge(BIASED_RPS, 20)
    assert tr.policies.shape == (21, 3) and tr.averages.shape == (21, 3)
    np.testing.assert_allclose(tr.averages[5], tr.policies[:5].mean(axis=0))
    np.testing.assert_allclose(tr.duality_gap, 2 * tr.exploitability)
    assert exploitability(BIASED_RPS, tr.average) == pytest.approx(tr.average_exploitability[-1])


# ----------------------------------------------------------------------------- single steps: bad input
@pytest.mark.parametrize("step", [inpo_update, nash_md_update])
def test_single_step_bad_input_raises(step):
    P = np.array([[0.5, 0.7, 0.2], [0.3, 0.5, 0.6], [0.8, 0.4, 0.5]])
    u = np.full(3, 1 / 3)
    with pytest.raises(ValueError, match="eta must be > 0"):
        step(P, u, u, 0.1, -1.0)
    with pytest.raises(ValueError, match=r"tau must be >= 0 and finite, got -0.1"):
        step(P, u, u, -0.1, 1.0)
    with pytest.raises(ValueError, match="pi must have full support"):
        step(P, np.array([0.5, 0.5, 0.0]), u, 0.1, 1.0)
    with pytest.raises(ValueError, match=r"pi_ref must have shape \(3,\)"):
        step(P, u, np.full(2, 0.5), 0.1, 1.0)
    with pytest.raises(ValueError, match="P \\+ P\\^T must equal 1"):
        step(P.T.copy() * 0 + 0.7, u, u, 0.1, 1.0)
