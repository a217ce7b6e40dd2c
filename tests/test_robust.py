"""rlref.algorithms.robust: the robust regularized expectation inf_μ E_μ v + λ D(μ‖μ0) against the inner
minimization solved directly by cvxpy (hypothesis, all three divergences), its sandwich bounds, the λ
limits, and the bad-input errors."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.robust import robust_regularized_expectation
from rlref.testing import distributions


def cvxpy_inner(v: np.ndarray, mu0: np.ndarray, lam: float, div: str) -> float:
    """Independent reference: the primal inner problem over the simplex."""
    mu = cp.Variable(v.shape[0], nonneg=True)
    if div == "tv":
        pen = 0.5 * cp.norm1(mu - mu0)
    elif div == "kl":
        sup = mu0 > 0
        pen = cp.sum(cp.rel_entr(mu[sup], mu0[sup]))
    else:
        sup = mu0 > 0
        pen = cp.sum(cp.multiply(1.0 / mu0[sup], cp.square(mu[sup] - mu0[sup])))
    cons = [cp.sum(mu) == 1]
    if div != "tv" and np.any(mu0 == 0):
        cons.append(mu[mu0 == 0] == 0)
    prob = cp.Problem(cp.Minimize(v @ mu + lam * pen), cons)
    prob.solve(solver=cp.CLARABEL)
    assert prob.status == "optimal"
    return float(prob.value)


@settings(max_examples=20, deadline=None)
@given(distributions((2, 6), min_mass=0.02, allow_zeros=True), st.integers(0, 2**31 - 1), st.floats(0.05, 5.0),
       st.sampled_from(["tv", "kl", "chi2"]))
def test_matches_cvxpy_inner_minimization(mu0, seed, lam, div):
    v = np.random.default_rng(seed).uniform(-1, 2, size=mu0.shape[0])
    got = robust_regularized_expectation(v, mu0, lam, div)
    ref = cvxpy_inner(v, mu0, lam, div)
    assert abs(got - ref) < 1e-5 * (1 + abs(ref))
    # sandwich: the nominal expectation above, the worst state below
    low = v.min() if div == "tv" else v[mu0 > 0].min()
    assert low - 1e-12 <= got <= mu0 @ v + 1e-12


def test_lambda_limits_and_batches():
    v = np.array([0.0, 1.0, 3.0])
    mu0 = np.array([[0.2, 0.3, 0.5], [0.5, 0.5, 0.0]])
    for div in ("tv", "kl", "chi2"):
        big = robust_regularized_expectation(v, mu0, 1e6, div)
        assert np.allclose(big, mu0 @ v, atol=1e-4)  # λ → ∞: no robustness
        small = robust_regularized_expectation(v, mu0, 1e-6, div)
        assert np.allclose(small, 0.0, atol=1e-4)  # λ → 0: the worst state of the support (0 is in both supports)
    # TV can move mass outside supp μ0: the second row reaches v = 0 anyway; a row without state 0 still pays λ to get there
    assert robust_regularized_expectation(v, np.array([0.0, 0.0, 1.0]), 0.5, "tv") == pytest.approx(0.5)
    assert robust_regularized_expectation(v, np.array([0.0, 0.0, 1.0]), 0.5, "kl") == pytest.approx(3.0)


def test_bad_inputs():
    v, mu0 = np.array([0.0, 1.0]), np.array([0.5, 0.5])
    with pytest.raises(ValueError, match="lam"):
        robust_regularized_expectation(v, mu0, 0.0, "kl")
    with pytest.raises(ValueError, match="lam"):
        robust_regularized_expectation(v, mu0, -1.0, "tv")
    with pytest.raises(ValueError, match="divergence"):
        robust_regularized_expectation(v, mu0, 1.0, "wasserstein")
    with pytest.raises(ValueError, match="mu0"):
        robust_regularized_expectation(v, np.array([0.5, 0.6]), 1.0, "chi2")
    with pytest.raises(ValueError, match="mu0"):
        robust_regularized_expectation(v, np.array([1.0, 0.0, 0.0]), 1.0, "chi2")
    with pytest.raises(ValueError, match="v"):
        robust_regularized_expectation(np.array([np.inf, 0.0]), mu0, 1.0, "tv")


# ----------------------------------------------------------------------------- R2PVI on a d-rectangular linear MDP
def _data(lin, K: int, seed: int):
    from rlref.linear import random_linear_mdp  # noqa: F401  (lin built by the caller)

    rng = np.random.default_rng(seed)
    P = lin.to_tabular().dense_P()
    S, A = P.shape[:2]
    s = rng.integers(0, S, size=K)
    a = rng.integers(0, A, size=K)
    s2 = np.array([rng.choice(S, p=P[i, j]) for i, j in zip(s, a, strict=True)])
    return s, a, s2


def test_robust_dp_tends_to_nominal_and_is_pessimistic():
    from rlref.algorithms.robust import robust_regularized_dp
    from rlref.linear import random_linear_mdp
    from rlref.solve import optimal

    lin = random_linear_mdp(6, 3, 3, seed=1, horizon=4)
    nominal = optimal(lin.to_tabular()).values  # the core's backward induction, an independent solver
    for div in ("tv", "kl", "chi2"):
        assert np.abs(robust_regularized_dp(lin, 1e6, div).values - nominal).max() < 1e-3
        assert np.all(robust_regularized_dp(lin, 0.5, div).values <= nominal + 1e-12)


@pytest.mark.parametrize("div", ["tv", "kl", "chi2"])
def test_r2pvi_with_ample_data_recovers_the_exact_robust_values(div):
    from rlref.algorithms.robust import r2pvi, robust_regularized_dp
    from rlref.linear import random_linear_mdp

    lin = random_linear_mdp(5, 2, 3, seed=2, horizon=3)
    s, a, s2 = _data(lin, 20000, 0)
    est = r2pvi(lin, s, a, s2, lam=0.5, divergence=div, beta=0.0, ridge=1e-3, num_eta=400)
    exact = robust_regularized_dp(lin, 0.5, div)
    assert np.abs(est.values - exact.values).max() < 0.05
    # pessimism: a penalty lowers every estimate
    pess = r2pvi(lin, s, a, s2, lam=0.5, divergence=div, beta=1.0, ridge=1e-3)
    assert np.all(pess.values <= est.values + 1e-3)


def test_regressions_count_one_data_pass_per_dual_evaluation():
    """R2PVI's TV/KL duals are closed forms (one ridge regression per stage), χ² and the constrained baselines search a
    grid (one per grid point); the baseline's last stage sees V_H = 0 (constant), which needs a single regression. The
    counts are stated from the algorithm (Tang, Liu & Xu 2024, Alg. 1 vs Sec. 6), and the exact DPs report 0."""
    from rlref.algorithms.robust import drpvi, r2pvi, robust_constrained_dp, robust_regularized_dp
    from rlref.linear import random_linear_mdp

    H, grid = 3, 7
    lin = random_linear_mdp(5, 2, 3, seed=2, horizon=H)
    s, a, s2 = _data(lin, 500, 0)
    for div in ("tv", "kl"):
        assert r2pvi(lin, s, a, s2, lam=0.5, divergence=div).regressions == H
        plan = drpvi(lin, s, a, s2, rho=0.2, divergence=div, num_grid=grid)
        assert np.all(np.ptp(plan.values[1:], axis=-1) > 0)  # V_{h+1} is not constant before the last stage
        assert plan.regressions == 1 + (H - 1) * grid
    assert r2pvi(lin, s, a, s2, lam=0.5, divergence="chi2", num_eta=grid).regressions == H * grid
    assert robust_regularized_dp(lin, 0.5, "kl").regressions == 0
    assert robust_constrained_dp(lin, 0.2, "tv").regressions == 0


def test_r2pvi_bad_inputs():
    from rlref.algorithms.robust import r2pvi
    from rlref.linear import random_linear_mdp

    lin = random_linear_mdp(4, 2, 2, seed=0, horizon=2)
    with pytest.raises(ValueError, match="empty"):
        r2pvi(lin, [], [], [], lam=1.0, divergence="kl")
    with pytest.raises(ValueError, match="lam"):
        r2pvi(lin, [0], [0], [1], lam=0.0, divergence="kl")
    with pytest.raises(ValueError, match="divergence"):
        r2pvi(lin, [0], [0], [1], lam=1.0, divergence="hellinger")
    with pytest.raises(ValueError, match="same length"):
        r2pvi(lin, [0, 1], [0], [1], lam=1.0, divergence="tv")


# ----------------------------------------------------------------------------- the constrained DRMDP baseline
def cvxpy_constrained(v: np.ndarray, mu0: np.ndarray, rho: float, div: str) -> float:
    """Independent reference: the uncertainty-set primal min E_μ v s.t. D(μ‖μ0) ≤ ρ over the simplex."""
    mu = cp.Variable(v.shape[0], nonneg=True)
    cons = [cp.sum(mu) == 1]
    if div == "tv":
        cons.append(0.5 * cp.norm1(mu - mu0) <= rho)
    else:
        sup = mu0 > 0
        cons.append(cp.sum(cp.rel_entr(mu[sup], mu0[sup])) <= rho)
        if np.any(~sup):
            cons.append(mu[~sup] == 0)
    prob = cp.Problem(cp.Minimize(v @ mu), cons)
    prob.solve(solver=cp.CLARABEL)
    assert prob.status == "optimal"
    return float(prob.value)


@settings(max_examples=20, deadline=None)
@given(distributions((2, 6), min_mass=0.02, allow_zeros=True), st.integers(0, 2**31 - 1), st.floats(0.01, 1.5),
       st.sampled_from(["tv", "kl"]))
def test_constrained_matches_cvxpy(mu0, seed, rho, div):
    from rlref.algorithms.robust import robust_constrained_expectation

    v = np.random.default_rng(seed).uniform(-1, 2, size=mu0.shape[0])
    got = robust_constrained_expectation(v, mu0, rho, div)
    ref = cvxpy_constrained(v, mu0, rho, div)
    assert abs(got - ref) < 1e-5 * (1 + abs(ref))
    # ρ = 0 is the nominal expectation (no robustness)
    assert robust_constrained_expectation(v, mu0, 0.0, div) == pytest.approx(mu0 @ v, abs=1e-12)


def test_drpvi_with_ample_data_recovers_the_exact_constrained_values():
    from rlref.algorithms.robust import drpvi, robust_constrained_dp
    from rlref.linear import random_linear_mdp

    lin = random_linear_mdp(5, 2, 3, seed=2, horizon=3)
    s, a, s2 = _data(lin, 20000, 0)
    for div in ("tv", "kl"):
        est = drpvi(lin, s, a, s2, rho=0.2, divergence=div, ridge=1e-3, num_grid=200)
        exact = robust_constrained_dp(lin, 0.2, div)
        assert np.abs(est.values - exact.values).max() < 0.05, div
    with pytest.raises(ValueError, match="rho"):
        drpvi(lin, s, a, s2, rho=-0.1, divergence="tv")
    with pytest.raises(ValueError, match="divergence"):
        drpvi(lin, s, a, s2, rho=0.1, divergence="chi2")
    with pytest.raises(ValueError, match="next_states"):
        drpvi(lin, s, a, np.full_like(s2, 99), rho=0.1, divergence="tv")
