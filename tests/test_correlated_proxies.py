"""Tests for rlref.theory.correlated_proxies (Laidlaw, Singhal, Dragan 2024, §4–5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref import TabularMDP
from rlref.algorithms.occupancy_regularized import occupancy_of, solve
from rlref.theory.correlated_proxies import (
    correlated_proxy,
    improvement_bound,
    is_reward_hacking,
    lower_bound,
    prescribed_lambda,
    proxy_correlation,
    reference_moments,
)

SEEDS = st.integers(0, 2**31 - 1)


def instance(seed: int, S: int = 6, A: int = 3, gamma: float = 0.85):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S) * 0.5, size=(S, A))
    R = rng.normal(size=(S, A))
    mdp = TabularMDP(P, R, gamma=gamma)
    pi_ref = rng.dirichlet(np.ones(A) * 2, size=S)
    return mdp, pi_ref, occupancy_of(mdp, pi_ref), rng


def weighted_corr(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    c = np.cov(x.ravel(), y.ravel(), aweights=w.ravel(), ddof=0)
    return float(c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]))


@settings(max_examples=25, deadline=None)
@given(SEEDS, st.floats(-1.0, 1.0))
def test_constructed_proxy_has_exactly_the_requested_correlation(seed, r):
    """correlated_proxy gives Corr_{μ_ref}(R, R̃) = r (checked with numpy's weighted covariance)."""
    mdp, _, mu_ref, rng = instance(seed)
    Rt = correlated_proxy(mdp.r, mu_ref, r, rng)
    assert weighted_corr(mdp.r, Rt, mu_ref) == pytest.approx(r, abs=1e-9)
    assert proxy_correlation(mdp.r, Rt, mu_ref) == pytest.approx(r, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(SEEDS, st.floats(-1.0, 1.0), st.booleans())
def test_bound_holds_for_every_policy(seed, r, random_proxy):
    """Theorem 5.1: ΔJ(R)/σ_R ≥ r ΔJ(R̃)/σ_R̃ − √(1−r²)√χ² for any π (random policies and proxies)."""
    mdp, _, mu_ref, rng = instance(seed)
    Rt = rng.normal(size=mdp.r.shape) * 3 if random_proxy else correlated_proxy(mdp.r, mu_ref, r, rng)
    for _ in range(5):
        pi = rng.dirichlet(np.ones(mdp.num_actions) * rng.uniform(0.05, 2), size=mdp.num_states)
        chk = improvement_bound(mdp.r, Rt, occupancy_of(mdp, pi), mu_ref)
        assert chk.holds, chk
        assert chk.slack >= -1e-8  # round-off only: at |r| = 1 the bound is attained (see improvement_bound)


@settings(max_examples=20, deadline=None)
@given(st.integers(3, 8), st.floats(0.0, 0.99), st.floats(0.01, 0.3), SEEDS)
def test_bound_is_tight(A, r, eps, seed):
    """Equality when μ/μ_ref − 1 = −ε Z_⊥ (a one-state bandit, γ = 0; derived here)."""
    rng = np.random.default_rng(seed)
    mu_ref = np.full((1, A), 1.0 / A)
    Rt = rng.normal(size=(1, A))
    R = correlated_proxy(Rt, mu_ref, r, rng)  # corr(R̃, R) = r, symmetric
    mR, sR = reference_moments(R, mu_ref)
    mP, sP = reference_moments(Rt, mu_ref)
    zR, zP = (R - mR) / sR, (Rt - mP) / sP
    zperp = (zR - r * zP) / np.sqrt(1 - r * r)
    eps = eps / max(1.0, np.abs(zperp).max())  # keep μ ≥ 0
    mu = mu_ref * (1 - eps * zperp)
    chk = improvement_bound(R, Rt, mu, mu_ref)
    assert chk.true_improvement == pytest.approx(chk.bound, abs=1e-10)
    assert chk.proxy_improvement == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=12, deadline=None)
@given(SEEDS, st.floats(0.1, 0.95))
def test_prescribed_lambda_never_reward_hacks(seed, r):
    """The exact √χ² program with λ = σ_R̃√(1−r²)/r never has J(π,R) < J(π_ref,R)."""
    mdp, pi_ref, mu_ref, rng = instance(seed)
    Rt = correlated_proxy(mdp.r, mu_ref, r, rng)
    lam = prescribed_lambda(reference_moments(Rt, mu_ref)[1], r)
    res = solve(mdp, Rt, pi_ref, lam, "sqrt_chi2")
    chk = improvement_bound(mdp.r, Rt, res.occupancy, mu_ref)
    assert chk.bound >= -1e-6  # the optimizer maximizes the bound, and π_ref gives 0
    assert chk.true_improvement >= -1e-6
    assert not is_reward_hacking(mdp.r, res.occupancy, mu_ref, tol=1e-6)


def test_prescribed_lambda_maximizes_the_bound():
    """The √χ² optimum at the prescribed λ has a bound no smaller than that of 300 random policies."""
    mdp, pi_ref, mu_ref, rng = instance(4)
    r = 0.6
    Rt = correlated_proxy(mdp.r, mu_ref, r, rng)
    lam = prescribed_lambda(reference_moments(Rt, mu_ref)[1], r)
    best = improvement_bound(mdp.r, Rt, solve(mdp, Rt, pi_ref, lam, "sqrt_chi2").occupancy, mu_ref).bound
    for _ in range(300):
        pi = rng.dirichlet(np.ones(mdp.num_actions) * 0.3, size=mdp.num_states)
        assert improvement_bound(mdp.r, Rt, occupancy_of(mdp, pi), mu_ref).bound <= best + 1e-6


def test_prescribed_lambda_values():
    assert prescribed_lambda(2.0, 0.6) == pytest.approx(2.0 * 0.8 / 0.6)
    assert prescribed_lambda(2.0, 0.6, include_r=False) == pytest.approx(1.6)
    assert prescribed_lambda(1.0, 1.0) == 0.0


def test_reward_hacking_definition():
    mu_ref = np.array([[0.5, 0.5]])
    R = np.array([[1.0, 0.0]])
    assert is_reward_hacking(R, np.array([[0.2, 0.8]]), mu_ref)
    assert not is_reward_hacking(R, np.array([[0.8, 0.2]]), mu_ref)


def test_infinite_chi2_gives_a_vacuous_bound():
    mu_ref = np.array([[0.5, 0.5, 0.0]])
    chk = improvement_bound(np.array([[1.0, 0.0, 2.0]]), np.array([[0.0, 1.0, 5.0]]), np.array([[0.2, 0.2, 0.6]]), mu_ref)
    assert chk.chi2 == np.inf and chk.bound == -np.inf and chk.holds


# ----------------------------------------------------------------------------- bad input
def test_correlation_outside_unit_interval_raises():
    _, _, mu_ref, rng = instance(0)
    with pytest.raises(ValueError, match=r"r must lie in \[-1, 1\], got 1.5"):
        correlated_proxy(np.arange(18.0).reshape(6, 3), mu_ref, 1.5, rng)
    with pytest.raises(ValueError, match=r"r must lie in \(0, 1\]"):
        prescribed_lambda(1.0, 0.0)


def test_constant_reward_raises():
    _, _, mu_ref, _ = instance(0)
    with pytest.raises(ValueError, match="proxy_reward is constant"):
        proxy_correlation(np.arange(18.0).reshape(6, 3), np.ones((6, 3)), mu_ref)


def test_proxy_of_wrong_shape_raises():
    _, _, mu_ref, _ = instance(0)
    with pytest.raises(ValueError, match="proxy_reward must have the shape"):
        proxy_correlation(np.ones((6, 3)), np.ones((6, 4)), mu_ref)


def test_unnormalized_occupancy_raises():
    with pytest.raises(ValueError, match="mu_ref must be a normalized occupancy"):
        reference_moments(np.ones((1, 2)), np.array([[0.5, 0.6]]))


def test_negative_sigma_in_bound_raises():
    with pytest.raises(ValueError, match="sigma"):
        lower_bound(0.1, 0.5, -1.0, 1.0, 0.2)


# ----------------------------------------------------------------------------- the summary's λ (no 1/r)
def proxy_side_bound(dP: float, r: float, sP: float, sR: float, chi2: float) -> float:
    """The other decomposition, Z_R̃ = r Z_R + √(1−r²) Z_⊥′ (derived here, independent of the module):

    r ΔJ(R)/σ_R ≥ ΔJ(R̃)/σ_R̃ − √(1−r²) √χ²; maximizing its right-hand side is λ = σ_R̃ √(1−r²).
    """
    return sR * (dP / sP - np.sqrt(1.0 - r * r) * np.sqrt(chi2)) / r


@settings(max_examples=25, deadline=None)
@given(SEEDS, st.floats(0.05, 1.0))
def test_proxy_side_bound_holds_for_every_policy(seed, r):
    """The second Cauchy–Schwarz bound (decomposing R̃ instead of R) holds for random policies too."""
    mdp, _, mu_ref, rng = instance(seed)
    Rt = correlated_proxy(mdp.r, mu_ref, r, rng)
    for _ in range(5):
        pi = rng.dirichlet(np.ones(mdp.num_actions) * rng.uniform(0.05, 2), size=mdp.num_states)
        chk = improvement_bound(mdp.r, Rt, occupancy_of(mdp, pi), mu_ref)
        rr = chk.correlation
        # 1e-8: σ's are square roots of μ_ref-variances (half the float64 digits); at r = 1 the
        # bound is attained and the two sides differ only by that round-off (seen: 1.3e-9)
        assert chk.true_improvement >= proxy_side_bound(chk.proxy_improvement, rr, chk.sigma_proxy, chk.sigma_true, chk.chi2) - 1e-8


@settings(max_examples=12, deadline=None)
@given(SEEDS, st.floats(0.1, 0.95))
def test_summary_lambda_never_reward_hacks_either(seed, r):
    """λ = σ_R̃√(1−r²) (include_r=False) maximizes the proxy-side bound, so it never hacks either."""
    mdp, pi_ref, mu_ref, rng = instance(seed)
    Rt = correlated_proxy(mdp.r, mu_ref, r, rng)
    lam = prescribed_lambda(reference_moments(Rt, mu_ref)[1], r, include_r=False)
    res = solve(mdp, Rt, pi_ref, lam, "sqrt_chi2")
    chk = improvement_bound(mdp.r, Rt, res.occupancy, mu_ref)
    assert proxy_side_bound(chk.proxy_improvement, chk.correlation, chk.sigma_proxy, chk.sigma_true, chk.chi2) >= -1e-6
    assert not is_reward_hacking(mdp.r, res.occupancy, mu_ref, tol=1e-6)


def test_neither_bound_dominates():
    """Bound (A) = lower_bound and bound (B) = proxy_side_bound are each the tighter one somewhere (derived here)."""
    # a = ΔJ(R̃)/σ_R̃, c = √χ²;  B − A = a(1/r − r) − √(1−r²) c (1/r − 1)
    r = 0.5
    a_big = lower_bound(1.0, r, 1.0, 1.0, 0.01), proxy_side_bound(1.0, r, 1.0, 1.0, 0.01)
    a_small = lower_bound(0.0, r, 1.0, 1.0, 1.0), proxy_side_bound(0.0, r, 1.0, 1.0, 1.0)
    assert a_big[1] > a_big[0]
    assert a_small[0] > a_small[1]


def test_nan_inputs_to_bound_raise():
    with pytest.raises(ValueError, match="chi2 must be >= 0, got nan"):
        lower_bound(0.1, 0.5, 1.0, 1.0, float("nan"))
    with pytest.raises(ValueError, match="proxy_improvement must be finite"):
        lower_bound(float("nan"), 0.5, 1.0, 1.0, 0.2)
    with pytest.raises(ValueError, match="r must lie in"):
        lower_bound(0.1, float("nan"), 1.0, 1.0, 0.2)
    with pytest.raises(ValueError, match="chi2 must be >= 0, got -0.1"):
        lower_bound(0.1, 0.5, 1.0, 1.0, -0.1)
