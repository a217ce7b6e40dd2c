"""Tests of rlref.theory.asymptotics (Yang et al. 2024, memoryless model): each names its claim.

Golden values: the Bernoulli rate function in closed form, scipy.stats.binom tails, cvxpy's
solution of the Sanov/contraction program I(x) = min{KL(q ‖ p) : E_q w = x}, brute-force
enumeration of all sequences, and the sequence-level KL-constrained solver of
rlref.theory.kl_regularized (a different code path) on the enumerated sequence space.
"""

from __future__ import annotations

import itertools
import math

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import rel_entr
from scipy.stats import binom

from rlref.theory.asymptotics import (
    best_of_n_sum_reward,
    compare_alignment,
    kl_rl_per_token_reward,
    log_mgf,
    log_mgf_derivative,
    log_tail_probability,
    rate_function,
    sum_distribution,
    tilt_for_budget,
    tilted_distribution,
)
from rlref.theory.kl_regularized import best_of_n_reward, kl_constrained

SETTINGS = settings(max_examples=20, deadline=None)


def _bernoulli_rate(x: float, p: float) -> float:
    def term(a: float, b: float) -> float:
        return 0.0 if a == 0 else a * math.log(a / b)

    return term(x, p) + term(1 - x, 1 - p)


@SETTINGS
@given(st.floats(0.05, 0.95), st.floats(0.0, 1.0))
def test_rate_function_matches_bernoulli_closed_form(p, x):
    """I(x) = x log(x/p) + (1−x) log((1−x)/(1−p)) for w ∈ {0, 1}, w = 1 w.p. p."""
    assert rate_function([1 - p, p], [0.0, 1.0], x) == pytest.approx(_bernoulli_rate(x, p), rel=1e-9, abs=1e-12)


def test_rate_function_is_infinite_outside_the_range_and_zero_at_the_mean():
    p, w = np.array([0.2, 0.5, 0.3]), np.array([-1.0, 0.5, 2.0])
    out = rate_function(p, w, [-1.5, float(p @ w), 2.0, 2.5])
    assert out[0] == math.inf and out[3] == math.inf and out[1] == 0.0
    assert out[2] == pytest.approx(-math.log(0.3), rel=1e-14)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.floats(0.05, 0.95))
def test_rate_function_equals_the_sanov_kl_projection_solved_by_cvxpy(seed, frac):
    """Contraction principle: I(x) = min{KL(q ‖ p) : Σ q w = x}, solved independently by cvxpy."""
    rng = np.random.default_rng(seed)
    p = 0.8 * rng.dirichlet(np.ones(4)) + 0.05
    w = rng.normal(size=4)
    x = float(w.min() + frac * (w.max() - w.min()))
    q = cp.Variable(4, nonneg=True)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.kl_div(q, p))), [cp.sum(q) == 1, w @ q == x])
    prob.solve(solver=cp.CLARABEL)
    assert prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
    assert rate_function(p, w, x) == pytest.approx(prob.value, abs=1e-6)


def test_log_mgf_and_derivative_match_direct_sums():
    p, w = np.array([0.2, 0.5, 0.3]), np.array([-1.0, 0.5, 2.0])
    for lam in (-2.0, 0.0, 0.7, 5.0):
        assert log_mgf(p, w, lam) == pytest.approx(math.log(np.sum(p * np.exp(lam * w))), rel=1e-13)
        h = 1e-6
        fd = (math.log(np.sum(p * np.exp((lam + h) * w))) - math.log(np.sum(p * np.exp((lam - h) * w)))) / (2 * h)
        assert log_mgf_derivative(p, w, lam) == pytest.approx(fd, rel=1e-7)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.floats(0.01, 0.9))
def test_tilt_for_budget_meets_the_budget_and_solves_i_of_x_equals_delta(seed, frac):
    """KL(p_λ ‖ p) = λΛ'(λ) − Λ(λ) = Δ and x*(Δ) = Λ'(λ) solves I(x) = Δ (Yang et al. §4)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(3))
    w = rng.normal(size=3)
    delta = frac * -math.log(p[np.argmax(w)])
    sol = tilt_for_budget(p, w, delta)
    q = sol.policy
    # rel_entr: 0·log 0 = 0 (a tilt with λ ~ 1e3 underflows the worst token to exactly 0)
    assert float(np.sum(rel_entr(q, p))) == pytest.approx(delta, rel=1e-8)
    assert rate_function(p, w, sol.reward) == pytest.approx(delta, rel=1e-7)
    assert sol.reward > float(p @ w)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_kl_rl_at_budget_n_delta_is_the_product_tilt_exactly(n):
    """Sequence-level KL-constrained RL (enumerated, other solver) earns exactly n·x*(Δ)."""
    p, w, delta = np.array([0.5, 0.3, 0.2]), np.array([0.0, 1.0, 2.5]), 0.15
    seqs = np.array(list(itertools.product(range(3), repeat=n)))
    ref = np.prod(p[seqs], axis=1)
    rew = w[seqs].sum(axis=1)
    res = kl_constrained(ref, rew, n * delta)
    assert res.reward == pytest.approx(n * kl_rl_per_token_reward(p, w, delta), rel=1e-9)
    tilt = tilted_distribution(p, w, tilt_for_budget(p, w, delta).lam)
    np.testing.assert_allclose(res.policy, np.prod(tilt[seqs], axis=1), atol=1e-10)


def test_tilt_boundaries():
    p, w = np.array([0.6, 0.4]), np.array([0.0, 1.0])
    assert tilt_for_budget(p, w, 0.0).lam == 0.0
    top = tilt_for_budget(p, w, 5.0)
    assert top.lam == math.inf and top.reward == 1.0
    np.testing.assert_array_equal(top.policy, [0.0, 1.0])


@pytest.mark.parametrize("n", [1, 7, 60])
def test_sum_distribution_matches_binomial(n):
    d = sum_distribution([0.7, 0.3], [0.0, 1.0], n)
    np.testing.assert_array_equal(d.values, np.arange(n + 1))
    np.testing.assert_allclose(d.probs, binom.pmf(np.arange(n + 1), n, 0.3), rtol=1e-10, atol=1e-300)


def test_sum_distribution_matches_brute_force_enumeration():
    p, w, n = np.array([0.5, 0.3, 0.2]), np.array([0.0, 1.0, 2.5]), 5
    seqs = np.array(list(itertools.product(range(3), repeat=n)))
    probs = np.prod(p[seqs], axis=1)
    sums = np.round(w[seqs].sum(axis=1), 9)
    d = sum_distribution(p, w, n)
    for v, pr in zip(d.values, d.probs, strict=True):
        assert pr == pytest.approx(probs[np.isclose(sums, v)].sum(), rel=1e-12)
    assert d.probs.sum() == pytest.approx(1.0, abs=1e-14)


def test_cramer_exact_tail_rate_converges_to_rate_function():
    """−(1/n) log P(S_n ≥ n x) → I(x) (Cramér), with exact tails equal to scipy's binomial tails."""
    p, x = 0.3, 0.5
    target = rate_function([1 - p, p], [0.0, 1.0], x)
    errs = []
    for n in (10, 40, 160, 640):
        d = sum_distribution([1 - p, p], [0.0, 1.0], n)
        lt = log_tail_probability(d, n * x)
        assert lt == pytest.approx(binom.logsf(math.ceil(n * x) - 1, n, p), rel=1e-10)
        errs.append(-lt / n - target)
    assert all(e > 0 for e in errs)  # Chernoff: P(S_n ≥ nx) ≤ exp(−n I(x))
    assert errs[0] > errs[1] > errs[2] > errs[3]
    assert errs[3] < 0.01


def test_best_of_n_sum_reward_matches_sequence_level_best_of_n():
    """E[max of N copies of S_n] from the law of S_n equals best-of-N over enumerated sequences."""
    p, w, n = np.array([0.5, 0.3, 0.2]), np.array([0.0, 1.0, 2.5]), 4
    seqs = np.array(list(itertools.product(range(3), repeat=n)))
    ref = np.prod(p[seqs], axis=1)
    rew = w[seqs].sum(axis=1)
    d = sum_distribution(p, w, n)
    for N in (1, 3, 50):
        assert best_of_n_sum_reward(d, math.log(N)) == pytest.approx(best_of_n_reward(ref, rew, N), rel=1e-12)


def test_best_of_n_and_kl_rl_are_asymptotically_equivalent():
    """Yang et al. Thm 3: with log N = nΔ, the per-token BoN reward → x*(Δ); the gap is ≥ 0 and shrinks."""
    cmp = compare_alignment([0.7, 0.3], [0.0, 1.0], 0.1, [10, 40, 160, 640, 2560])
    assert np.all(cmp.gap >= 0)
    assert np.all(np.diff(cmp.gap) < 0)
    assert cmp.gap[-1] < 0.05 * cmp.gap[0]
    assert cmp.kl_rl == pytest.approx(kl_rl_per_token_reward([0.7, 0.3], [0.0, 1.0], 0.1))


def test_best_of_n_with_tails_below_machine_epsilon_stays_below_kl_rl():
    """Regression: log N = nΔ = 1280 needs tails P(S_n > s) ~ e^{-1280}; BoN must stay <= x*(Δ)."""
    cmp = compare_alignment([0.7, 0.3], [0.0, 1.0], 0.5, [640, 2560])
    assert np.all(cmp.gap >= 0) and cmp.gap[1] < cmp.gap[0] < 0.01


def test_best_of_n_sum_reward_handles_astronomical_n():
    d = sum_distribution([0.5, 0.5], [0.0, 1.0], 20)
    assert best_of_n_sum_reward(d, 1000.0) == pytest.approx(20.0, abs=1e-12)  # N = e^1000
    assert best_of_n_sum_reward(d, 0.0) == pytest.approx(10.0, abs=1e-12)  # N = 1: the mean


# ----------------------------------------------------------------------------- bad input
def test_bad_token_model_raises():
    with pytest.raises(ValueError, match="p"):
        rate_function([0.5, 0.6], [0.0, 1.0], 0.5)
    with pytest.raises(ValueError, match="w"):
        rate_function([0.5, 0.5], [0.0, float("nan")], 0.5)
    with pytest.raises(ValueError, match="same shape"):
        log_mgf([0.5, 0.5], [0.0, 1.0, 2.0], 1.0)


def test_bad_budget_and_length_raise():
    with pytest.raises(ValueError, match="delta"):
        tilt_for_budget([0.5, 0.5], [0.0, 1.0], -0.1)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sum_distribution([0.5, 0.5], [0.0, 1.0], 0)
    with pytest.raises(ValueError, match="log_num_samples"):
        best_of_n_sum_reward(sum_distribution([0.5, 0.5], [0.0, 1.0], 3), -1.0)
    with pytest.raises(ValueError, match="count vectors"):
        sum_distribution(np.full(6, 1 / 6), np.arange(6.0), 400)
