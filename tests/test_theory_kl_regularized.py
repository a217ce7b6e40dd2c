"""Tests of rlref.theory.kl_regularized: each test names the claim it checks.

Golden values come from independent computations: cvxpy solutions of the same convex programs
(Clarabel, exponential cone), plain-numpy Bayes' rule, Monte Carlo simulation of best-of-n with
stated confidence bounds, and closed forms.
"""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.theory.kl_regularized import (
    argmax_distribution,
    best_of_n_distribution,
    best_of_n_kl,
    best_of_n_kl_bound,
    best_of_n_reward,
    distribution_collapse,
    entropy,
    kl_constrained,
    kl_divergence,
    max_kl,
    optimal_policy,
    optimal_value,
    posterior,
    reward_kl_frontier,
)

SETTINGS = settings(max_examples=15, deadline=None)


@st.composite
def instances(draw, min_y: int = 2, max_y: int = 6, positive: bool = True, ties: bool = False):
    """A (pi_ref, r) pair from a seed: strictly positive reference (for cvxpy), optional ties."""
    seed = draw(st.integers(0, 2**32 - 1))
    y = draw(st.integers(min_y, max_y))
    rng = np.random.default_rng(seed)
    ref = rng.dirichlet(np.ones(y))
    if positive:
        ref = 0.9 * ref + 0.1 / y
    else:
        ref[rng.random(y) < 0.3] = 0.0
        if ref.sum() == 0:
            ref[0] = 1.0
        ref /= ref.sum()
    r = rng.integers(0, 3, y).astype(float) if ties else rng.normal(size=y)
    return ref, r


def _cvx_regularized(ref: np.ndarray, r: np.ndarray, beta: float) -> tuple[np.ndarray, float]:
    pi = cp.Variable(len(ref), nonneg=True)
    obj = cp.Maximize(r @ pi - beta * cp.sum(cp.kl_div(pi, ref)))
    prob = cp.Problem(obj, [cp.sum(pi) == 1])
    prob.solve(solver=cp.CLARABEL)
    assert prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
    return np.clip(np.asarray(pi.value), 0.0, None), float(prob.value)


def _objective(ref: np.ndarray, r: np.ndarray, beta: float, pi: np.ndarray) -> float:
    pi = pi / pi.sum()
    pos = pi > 0
    return float(pi @ r - beta * np.sum(pi[pos] * np.log(pi[pos] / ref[pos])))


def _cvx_constrained(ref: np.ndarray, r: np.ndarray, delta: float) -> float:
    pi = cp.Variable(len(ref), nonneg=True)
    prob = cp.Problem(cp.Maximize(r @ pi), [cp.sum(pi) == 1, cp.sum(cp.kl_div(pi, ref)) <= delta])
    prob.solve(solver=cp.CLARABEL)
    assert prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
    return float(prob.value)


# ----------------------------------------------------------------------------- closed form
@SETTINGS
@given(instances(), st.floats(0.1, 5.0))
def test_optimal_policy_and_value_match_cvxpy_solution_of_the_regularized_program(inst, beta):
    """Korbak et al. eq. (4): π* ∝ π_ref exp(r/β) solves max E_π r − β KL, with value β log Z.

    cvxpy (Clarabel, exponential cone) solves the same program: the closed form is at least as
    good as the solver's point, the solver's reported optimum agrees with β log Z to 1e-6, and the
    policies agree to 1e-3 (an objective gap g allows ‖Δπ‖₁ ≤ sqrt(2g/β) by β-strong concavity).
    """
    ref, r = inst
    pi_cvx, val_cvx = _cvx_regularized(ref, r, beta)
    ours = optimal_value(ref, r, beta)
    assert ours >= _objective(ref, r, beta, pi_cvx) - 1e-12
    assert ours == pytest.approx(val_cvx, abs=1e-6)
    np.testing.assert_allclose(optimal_policy(ref, r, beta), pi_cvx / pi_cvx.sum(), atol=1e-3)


@SETTINGS
@given(instances(positive=False), st.floats(0.05, 5.0))
def test_optimal_value_equals_objective_at_optimal_policy(inst, beta):
    """β log Z = E_π*[r] − β KL(π* ‖ π_ref) (Gibbs variational identity), zero-mass y allowed."""
    ref, r = inst
    pi = optimal_policy(ref, r, beta)
    pos = pi > 0
    direct = float(pi @ r - beta * np.sum(pi[pos] * np.log(pi[pos] / ref[pos])))
    assert optimal_value(ref, r, beta) == pytest.approx(direct, abs=1e-10)
    assert np.all(pi[ref == 0] == 0)


def test_optimal_policy_is_batched_over_leading_axes():
    rng = np.random.default_rng(1)
    ref = rng.dirichlet(np.ones(4), size=(3, 2))
    r = rng.normal(size=(3, 2, 4))
    out = optimal_policy(ref, r, 0.7)
    assert out.shape == (3, 2, 4)
    for i in range(3):
        for j in range(2):
            np.testing.assert_allclose(out[i, j], optimal_policy(ref[i, j], r[i, j], 0.7), atol=1e-15)
    assert optimal_value(ref, r, 0.7).shape == (3, 2)


def test_optimal_policy_is_stable_in_log_space_for_huge_rewards():
    """No overflow: rewards of 1e6 at β = 1e-3 still give the argmax distribution."""
    ref = np.array([0.25, 0.25, 0.5])
    r = np.array([1e6, 1e6 - 1.0, -1e6])
    np.testing.assert_allclose(optimal_policy(ref, r, 1e-3), [1.0, 0.0, 0.0], atol=1e-300)


# ----------------------------------------------------------------------------- Bayes
@SETTINGS
@given(instances(positive=False), st.floats(0.05, 5.0))
def test_optimal_policy_is_the_posterior_with_likelihood_exp_r_over_beta(inst, beta):
    """Korbak et al. §3: π* = posterior of the prior π_ref under likelihood exp(r/β)."""
    ref, r = inst
    lik = np.exp(r / beta)
    bayes = ref * lik / np.sum(ref * lik)  # plain Bayes' rule, computed independently
    np.testing.assert_allclose(posterior(ref, r / beta), bayes, atol=1e-12)
    np.testing.assert_allclose(optimal_policy(ref, r, beta), posterior(ref, r / beta), atol=1e-14)


# ----------------------------------------------------------------------------- KL budget
@SETTINGS
@given(instances(), st.floats(0.01, 0.95))
def test_kl_constrained_matches_cvxpy_with_the_kl_constraint(inst, frac):
    """Yang et al. Lemma 1: the KL-constrained optimum is the tilt meeting the budget."""
    ref, r = inst
    delta = frac * max_kl(ref, r)
    res = kl_constrained(ref, r, delta)
    assert res.regime == "interior"
    assert res.kl == pytest.approx(delta, rel=1e-9, abs=1e-12)
    assert res.reward == pytest.approx(_cvx_constrained(ref, r, delta), abs=1e-6)
    np.testing.assert_allclose(res.policy, optimal_policy(ref, r, res.beta), atol=1e-14)


def test_kl_constrained_boundaries_are_exact():
    ref = np.array([0.1, 0.2, 0.3, 0.4])
    r = np.array([2.0, 2.0, 1.0, 0.0])
    zero = kl_constrained(ref, r, 0.0)
    assert zero.regime == "reference" and zero.beta == math.inf
    np.testing.assert_array_equal(zero.policy, ref)
    kmax = -math.log(0.3)
    assert max_kl(ref, r) == pytest.approx(kmax, rel=1e-15)
    for d in (kmax, kmax + 1.0):
        top = kl_constrained(ref, r, d)
        assert top.regime == "argmax" and top.beta == 0.0
        np.testing.assert_allclose(top.policy, [1 / 3, 2 / 3, 0, 0], atol=1e-15)
        assert top.kl == pytest.approx(kmax, rel=1e-15)
        assert top.reward == 2.0
    # a budget just below the slack boundary is an interior solution with a tiny beta
    near = kl_constrained(ref, r, kmax * (1 - 1e-6))
    assert near.regime == "interior" and near.beta < 0.2
    assert near.kl == pytest.approx(kmax * (1 - 1e-6), rel=1e-9)


def test_constant_reward_on_support_returns_reference():
    ref = np.array([0.5, 0.5, 0.0])
    res = kl_constrained(ref, [1.0, 1.0, 7.0], 0.3)  # y=2 is unreachable: its reward is ignored
    assert res.regime == "reference"
    np.testing.assert_array_equal(res.policy, ref)


# ----------------------------------------------------------------------------- frontier
def test_reward_kl_frontier_is_increasing_concave_with_slope_beta_and_matches_kl_constrained():
    rng = np.random.default_rng(3)
    ref = rng.dirichlet(np.ones(7))
    r = rng.normal(size=7)
    betas = np.geomspace(10.0, 0.3, 40)
    fr = reward_kl_frontier(ref, r, betas)
    assert np.all(np.diff(fr.kls) > 0) and np.all(np.diff(fr.rewards) > 0)
    slopes = np.diff(fr.rewards) / np.diff(fr.kls)
    assert np.all(np.diff(slopes) < 0)  # concave
    mid_beta = np.sqrt(betas[:-1] * betas[1:])
    np.testing.assert_allclose(slopes, mid_beta, rtol=0.1)  # dR/dKL = β (envelope theorem)
    for k in (0, 17, 39):
        assert kl_constrained(ref, r, fr.kls[k]).reward == pytest.approx(fr.rewards[k], abs=1e-9)
    np.testing.assert_allclose(fr.values, fr.rewards - betas * fr.kls, atol=1e-12)


# ----------------------------------------------------------------------------- collapse
def test_distribution_collapse_entropy_and_kl_limits_as_beta_goes_to_zero():
    """Korbak et al. §2: as β → 0 the optimum collapses onto the argmax set.

    With π_ref uniform on the argmax set A* (|A*| = 3) the entropy → log 3 and KL → −log π_ref(A*).
    """
    ref = np.array([0.1, 0.1, 0.1, 0.3, 0.4])
    r = np.array([1.0, 1.0, 1.0, 0.5, 0.0])
    col = distribution_collapse(ref, r)
    assert col.entropy == pytest.approx(math.log(3), rel=1e-14)
    assert col.kl == pytest.approx(-math.log(0.3), rel=1e-14)
    ents, kls, tvs = [], [], []
    for beta in (1.0, 0.3, 0.1, 0.03, 0.001):
        pi = optimal_policy(ref, r, beta)
        ents.append(entropy(pi))
        kls.append(kl_divergence(pi, ref))
        tvs.append(0.5 * np.abs(pi - col.policy).sum())
    assert abs(ents[-1] - math.log(3)) < 1e-12 and abs(kls[-1] + math.log(0.3)) < 1e-12
    assert np.all(np.diff(kls) > 0) and np.all(np.diff(tvs) < 0)  # monotone approach to the collapse
    # a unique argmax collapses to a point mass (entropy 0)
    assert distribution_collapse(ref, np.arange(5.0)).entropy == 0.0


def test_argmax_distribution_ignores_unreachable_outcomes():
    ref = np.array([0.5, 0.5, 0.0])
    r = np.array([0.0, 1.0, 100.0])
    np.testing.assert_array_equal(argmax_distribution(ref, r), [0.0, 1.0, 0.0])
    assert max_kl(ref, r) == pytest.approx(math.log(2))


# ----------------------------------------------------------------------------- best of n
def _monte_carlo_bon(ref: np.ndarray, r: np.ndarray, n: int, trials: int, rng: np.random.Generator) -> np.ndarray:
    draws = rng.choice(len(ref), size=(trials, n), p=ref)
    rew = r[draws]
    key = rng.random((trials, n))  # uniform tie-break among draws of maximal reward
    best = np.where(rew == rew.max(axis=1, keepdims=True), key, -1.0).argmax(axis=1)
    chosen = draws[np.arange(trials), best]
    return np.bincount(chosen, minlength=len(ref)) / trials


@pytest.mark.parametrize("n", [1, 2, 5])
def test_best_of_n_distribution_matches_monte_carlo_within_5_standard_errors(n):
    """Exact best-of-n law (ties uniform) vs 200k seeded simulations: |p̂ − p| ≤ 5·SE + 1e-4."""
    rng = np.random.default_rng(1234 + n)
    ref = np.array([0.3, 0.1, 0.2, 0.15, 0.25])
    r = np.array([1.0, 2.0, 2.0, 0.0, 2.0])  # a three-way tie at the top
    exact = best_of_n_distribution(ref, r, n)
    trials = 200_000
    emp = _monte_carlo_bon(ref, r, n, trials, rng)
    se = np.sqrt(exact * (1 - exact) / trials)
    assert np.all(np.abs(emp - exact) <= 5 * se + 1e-4)
    assert best_of_n_reward(ref, r, n) == pytest.approx(float(exact @ r), abs=1e-14)


def test_best_of_n_closed_form_small_case():
    """Two outcomes, rewards 0 < 1, π_ref = (1−q, q): π_n(1) = 1 − (1−q)^n."""
    q = 0.3
    for n in (1, 2, 3, 10):
        expected = [(1 - q) ** n, 1 - (1 - q) ** n]
        np.testing.assert_allclose(best_of_n_distribution([1 - q, q], [0.0, 1.0], n), expected, atol=1e-15)


@SETTINGS
@given(instances(max_y=8, positive=False, ties=True), st.floats(1.0, 500.0))
def test_best_of_n_kl_is_exact_and_below_log_n_minus_n_minus_1_over_n(inst, n):
    """Beirami et al. Thm 1: KL(π_n ‖ π_ref) ≤ log n − (n−1)/n (ties and real n ≥ 1 included)."""
    ref, r = inst
    q = best_of_n_distribution(ref, r, n)
    assert q.sum() == pytest.approx(1.0, abs=1e-12)
    pos = q > 0
    direct = float(np.sum(q[pos] * np.log(q[pos] / ref[pos])))
    kl = best_of_n_kl(ref, r, n)
    assert kl == pytest.approx(direct, abs=1e-9)
    assert kl <= best_of_n_kl_bound(n) + 1e-12


@pytest.mark.parametrize("n", [2, 4, 16, 64])
def test_best_of_n_kl_bound_is_approached_with_many_distinct_equiprobable_rewards(n):
    """Continuous limit: K distinct equiprobable rewards, KL → log n − (n−1)/n as K → ∞."""
    gaps = []
    for K in (10, 100, 10_000):
        ref = np.full(K, 1.0 / K)
        gaps.append(best_of_n_kl_bound(n) - best_of_n_kl(ref, np.arange(K, dtype=float), n))
    assert gaps[0] > gaps[1] > gaps[2] >= 0
    assert gaps[2] < 5e-3 * best_of_n_kl_bound(n) + 1e-4


def test_best_of_n_kl_bound_is_loose_with_heavy_ties():
    """Two reward values with mass 1/2 each: KL → log 2 while the bound grows like log n."""
    ref = np.array([0.5, 0.5])
    r = np.array([0.0, 1.0])
    assert best_of_n_kl(ref, r, 1000) == pytest.approx(math.log(2), abs=1e-12)
    assert best_of_n_kl_bound(1000) > 5.9


@SETTINGS
@given(instances(max_y=6, ties=True), st.integers(1, 64))
def test_kl_regularized_frontier_dominates_best_of_n(inst, n):
    """At equal KL, the KL-constrained optimum earns at least the best-of-n reward."""
    ref, r = inst
    kl = best_of_n_kl(ref, r, n)
    assert kl_constrained(ref, r, kl).reward >= best_of_n_reward(ref, r, n) - 1e-9


# ----------------------------------------------------------------------------- bad input
def test_bad_beta_raises():
    with pytest.raises(ValueError, match="beta"):
        optimal_policy([0.5, 0.5], [0.0, 1.0], 0.0)
    with pytest.raises(ValueError, match="beta"):
        optimal_value([0.5, 0.5], [0.0, 1.0], -1.0)


def test_negative_delta_raises():
    with pytest.raises(ValueError, match="delta"):
        kl_constrained([0.5, 0.5], [0.0, 1.0], -0.1)


def test_nan_reward_raises():
    with pytest.raises(ValueError, match=r"r\[1\]"):
        optimal_policy([0.5, 0.5], [0.0, float("nan")], 1.0)
    with pytest.raises(ValueError, match="r"):
        best_of_n_distribution([0.5, 0.5], [float("inf"), 0.0], 2)


def test_reference_without_mass_or_not_a_distribution_raises():
    with pytest.raises(ValueError, match="pi_ref"):
        optimal_policy([0.0, 0.0], [0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="pi_ref"):
        optimal_policy([0.7, 0.7], [0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="pi_ref"):
        kl_constrained([1.2, -0.2], [0.0, 1.0], 0.1)


def test_zero_mass_outcomes_are_unreachable():
    ref = np.array([0.0, 0.6, 0.4])
    r = np.array([10.0, 0.0, 1.0])
    for out in (optimal_policy(ref, r, 0.5), best_of_n_distribution(ref, r, 3), kl_constrained(ref, r, 0.2).policy):
        assert out[0] == 0.0
    assert best_of_n_reward(ref, r, 3) <= 1.0


def test_n_below_one_raises():
    with pytest.raises(ValueError, match="n must be >= 1"):
        best_of_n_distribution([0.5, 0.5], [0.0, 1.0], 0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        best_of_n_kl_bound(0.5)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        optimal_policy([0.5, 0.5], [0.0, 1.0, 2.0], 1.0)


def test_optimal_value_keeps_its_o1_part_at_huge_beta():
    """Issue #11 item 1: β log Z = E_ref[r] + Var_ref(r)/(2β) + O(β⁻²) (cumulant expansion); at
    β = 1e18 that is E_ref[r] = 2.0 to rounding (it used to return 111.02)."""
    ref, r = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 1.0, 2.0, 3.0])
    assert optimal_value(ref, r, 1e18) == pytest.approx(2.0, abs=1e-12)
    assert optimal_value(ref, r, 1e6) == pytest.approx(2.0 + 1.0 / (2e6), rel=1e-10)  # Var_ref(r) = 1
    np.testing.assert_allclose(optimal_policy(ref, r, 1e18), ref, rtol=1e-12)


def test_tilt_and_value_at_a_subnormal_beta_are_the_argmax_limit():
    """Issue #11 item 2: r/β overflows at β = 1e-310; the tilt is then the argmax distribution
    (point mass on y = 3) and β log Z = max r = 3 (it used to give NaN)."""
    ref, r = np.full(4, 0.25), np.array([0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(optimal_policy(ref, r, 1e-310), [0.0, 0.0, 0.0, 1.0])
    assert optimal_value(ref, r, 1e-310) == pytest.approx(3.0, abs=1e-300)
    tied = np.array([0.0, 3.0, 1.0, 3.0])
    np.testing.assert_allclose(optimal_policy([0.1, 0.2, 0.3, 0.4], tied, 1e-310), [0, 1 / 3, 0, 2 / 3], rtol=1e-12)


def test_reward_kl_frontier_rejects_an_empty_beta_list():
    """Issue #11 item 17: an empty β list is a clear ValueError naming ``betas``."""
    with pytest.raises(ValueError, match="betas must hold at least one"):
        reward_kl_frontier([0.5, 0.5], [0.0, 1.0], [])
