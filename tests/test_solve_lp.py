"""Tests of rlref.solve LPs: both formulations, both backends (HiGHS and cvxpy/Clarabel)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rlref.solve as rs
from rlref import TabularMDP

from helpers import random_mdp

BACKENDS = ["highs", "cvxpy"]
TOL = {"highs": 1e-8, "cvxpy": 1e-8}  # Clarabel runs with gaps tightened to 1e-12 (rlref.solve.lp)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sparse", [False, True])
def test_lps_agree_with_policy_iteration_discounted(backend, sparse):
    """Value LP and occupancy LP return V* (= PI's values), J* and an optimal policy."""
    mdp = random_mdp(7, S=8, A=3, gamma=0.9, sparse=sparse)
    v_star = rs.policy_iteration(mdp).values
    tol = TOL[backend]
    lv = rs.lp_value(mdp, backend=backend)
    lo = rs.lp_occupancy(mdp, backend=backend)
    assert lv.backend == backend and lv.status == "optimal"
    np.testing.assert_allclose(lv.values, v_star, atol=tol)
    np.testing.assert_allclose(lo.values, v_star, atol=tol)  # mu0 > 0: duals determined everywhere
    assert lv.objective == pytest.approx(mdp.mu0 @ v_star, abs=tol)
    assert lo.objective == pytest.approx((1 - mdp.gamma) * (mdp.mu0 @ v_star), abs=tol)
    for res in (lv, lo):
        np.testing.assert_allclose(rs.policy_evaluation(mdp, res.policy).values, v_star, atol=10 * tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["stationary", "staged", "sparse"])
def test_lps_agree_with_backward_induction_finite_horizon(backend, kind):
    """Staged value and occupancy LPs give V*_h and J* = Σ_h γ^h ⟨d_h, r_h⟩ (dense, staged, sparse P)."""
    H = 4
    mdp = random_mdp(9, S=5, A=3, gamma=0.9, horizon=H, staged=kind == "staged", sparse=kind == "sparse")
    vi = rs.value_iteration(mdp)
    tol = TOL[backend]
    lv = rs.lp_value(mdp, backend=backend)
    lo = rs.lp_occupancy(mdp, backend=backend)
    np.testing.assert_allclose(lv.values, vi.values, atol=tol)
    np.testing.assert_allclose(lo.values, vi.values, atol=10 * tol)
    assert lo.objective == pytest.approx(vi.objective, abs=tol)
    assert lo.occupancy.shape == (H, 5, 3)
    np.testing.assert_allclose(lo.occupancy.sum(axis=(1, 2)), 1.0, atol=tol)
    J = sum(mdp.gamma**h * np.sum(lo.occupancy[h] * mdp.reward(h)) for h in range(H))
    assert J == pytest.approx(vi.objective, abs=tol)
    np.testing.assert_allclose(rs.policy_evaluation(mdp, lv.policy).values, vi.values, atol=10 * tol)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), gamma=st.floats(0.0, 0.97))
def test_backends_agree_and_duals_match_primal(seed, gamma):
    """HiGHS and cvxpy agree; lp_occupancy's d = occupancy_measure(its policy) (flow feasible, sums to 1);
    lp_value's dual occupancy = occupancy_measure(its policy); lp_occupancy's dual values = lp_value's primal."""
    mdp = random_mdp(seed, S=6, A=3, gamma=gamma)
    hv, cv = rs.lp_value(mdp, "highs"), rs.lp_value(mdp, "cvxpy")
    ho, co = rs.lp_occupancy(mdp, "highs"), rs.lp_occupancy(mdp, "cvxpy")
    np.testing.assert_allclose(cv.values, hv.values, atol=1e-6)
    assert co.objective == pytest.approx(ho.objective, abs=1e-6)
    for res, tol in ((ho, 1e-9), (co, 1e-6), (hv, 1e-9), (cv, 1e-6)):
        np.testing.assert_allclose(res.occupancy, rs.occupancy_measure(mdp, res.policy), atol=tol)
        assert rs.flow_residual(mdp, res.occupancy) <= tol
        assert res.occupancy.sum() == pytest.approx(1.0, abs=tol)
    np.testing.assert_allclose(ho.values, hv.values, atol=1e-8)
    # strong duality: primal objective of one LP = dual objective of the other
    assert ho.objective == pytest.approx((1 - gamma) * hv.objective, abs=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_value_lp_with_zero_mass_initial_states_still_returns_v_star(backend):
    """With μ0 having zeros the value LP uses uniform weights, so values = V* everywhere; the
    occupancy is still μ0's; lp_occupancy's values are V* on its support and ≥ V* elsewhere."""
    mdp = random_mdp(13, S=8, A=3, gamma=0.8, mu0_zeros=True)
    v_star = rs.policy_iteration(mdp).values
    lv = rs.lp_value(mdp, backend=backend)
    np.testing.assert_allclose(lv.values, v_star, atol=TOL[backend])
    np.testing.assert_allclose(lv.occupancy, rs.occupancy_measure(mdp, lv.policy), atol=1e-9)
    lo = rs.lp_occupancy(mdp, backend=backend)
    support = lo.occupancy.sum(axis=1) > 1e-6
    np.testing.assert_allclose(lo.values[support], v_star[support], atol=10 * TOL[backend])
    assert np.all(lo.values >= v_star - 10 * TOL[backend])


def test_unknown_backend_raises():
    with pytest.raises(ValueError, match="backend"):
        rs.lp_value(random_mdp(0), backend="gurobi")
    with pytest.raises(ValueError, match="backend"):
        rs.lp_occupancy(random_mdp(0), backend="glpk")


def test_occupancy_lp_rejects_vanishing_stage_weights():
    mdp = random_mdp(0, horizon=10, gamma=0.1)
    with pytest.raises(ValueError, match="gamma"):
        rs.lp_occupancy(mdp)


def test_failed_solver_raises_runtime_error(monkeypatch):
    """A solver that does not reach optimality raises RuntimeError naming the status."""
    import rlref.solve.lp as lp_mod

    class Fake:
        status, message = 2, "The problem is infeasible."

    monkeypatch.setattr(lp_mod, "linprog", lambda *a, **k: Fake())
    with pytest.raises(RuntimeError, match="status 2"):
        rs.lp_value(random_mdp(0))


@pytest.mark.parametrize("scale", [1e-9, 1e9])
def test_lp_answers_are_right_at_extreme_reward_scales(scale):
    """Issue #11 item 4: at reward scale 1e-9 HiGHS returned values 1%-21% off (status "optimal");
    the LPs now solve r/max|r| and unscale. V* from brute-force enumeration."""
    from helpers import brute_force_values

    base = random_mdp(0, S=5, A=3, gamma=0.9)
    mdp = TabularMDP(base.dense_P(), base.r * scale, gamma=0.9, mu0=base.mu0)
    v_star = brute_force_values(mdp)
    for fn in (rs.lp_value, rs.lp_occupancy):
        res = fn(mdp)
        np.testing.assert_allclose(res.values, v_star, rtol=1e-8, atol=0)
        np.testing.assert_allclose(rs.policy_evaluation(mdp, res.policy).values, v_star, rtol=1e-8, atol=0)


def test_lp_answer_failing_the_bellman_check_is_refused(monkeypatch):
    """A solver that reports success with wrong numbers is refused, not returned."""
    import rlref.solve.lp as lp

    real = lp._solve_highs

    def corrupt(*args, **kwargs):
        res = real(*args, **kwargs)
        res.x = res.x * 1.1
        res.fun = res.fun * 1.1
        return res

    monkeypatch.setattr(lp, "_solve_highs", corrupt)
    mdp = random_mdp(1, S=5, A=2, gamma=0.9)
    with pytest.raises(RuntimeError, match="Bellman check"):
        rs.lp_value(mdp)
    with pytest.raises(RuntimeError, match="misses the LP optimum"):
        rs.lp_occupancy(mdp)
