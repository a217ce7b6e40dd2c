"""Action masks (issue #19): ``TabularMDP(..., action_mask=...)`` removes actions from states.

Claims checked here:

* every solver (value iteration, policy iteration, modified PI, ``optimal`` with each method, soft
  value iteration and soft MPI, both LPs with both backends, backward induction) puts probability
  exactly 0 on a masked action, and its integer ``actions`` never name one;
* the masked MDP's V* equals V* of the MDP with those actions removed, computed independently:
  by brute-force enumeration of the deterministic policies over the available actions (discounted;
  a backward recursion written here for a finite horizon), and by the unmasked MDP in which every
  masked slot duplicates an available action of its state (a cross-check through unmasked code);
* the KL-regularized optimum of a masked MDP is that of the reduced problem with π_ref restricted
  to the available actions and renormalized (a soft Bellman iteration written here);
* the core helpers (greedy_policy, the tilt, uniform_policy, reference_policy, validate_policy,
  occupancy measures, flow_residual) and the mask's validation.
"""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

import rlref.solve as rs
from rlref import TabularMDP
from rlref.policy import (
    deterministic_policy,
    greedy_policy,
    reference_policy,
    softmax_policy,
    uniform_policy,
    validate_policy,
)
from rlref.solve.optimal import METHODS
from rlref.testing import tabular_mdps


def _backups_mask() -> bool:
    """Whether rlref.solve's Bellman backups put −∞ at masked pairs (the hook in solve/bellman.py)."""
    m = TabularMDP(np.full((1, 2, 1), 1.0), np.zeros((1, 2)), gamma=0.5, action_mask=[[True, False]])
    return bool(np.isneginf(rs.bellman_q(m, np.zeros(1))[0, 1]))


needs_masked_backups = pytest.mark.skipif(not _backups_mask(), reason="solve/bellman.py does not mask q yet (the -inf hook)")

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ----------------------------------------------------------------------------- builders written here
@st.composite
def masked_mdps(draw, discounted: bool = True, max_states: int = 3, max_actions: int = 3, sparse: bool | None = None):
    """(masked MDP, mask): a drawn MDP with A >= 2 and a random mask keeping >= 1 action per state."""
    kw = {"gamma": (0.0, 0.9)} if discounted else {"horizon": (1, 3)}
    mdp = draw(tabular_mdps(1, max_states, 2, max_actions, discounted=discounted, sparse=sparse, **kw))
    S, A = mdp.num_states, mdp.num_actions
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    mask = rng.random((S, A)) < 0.6
    mask[np.arange(S), rng.integers(0, A, S)] = True
    return dataclasses.replace(mdp, action_mask=mask), mask


def _with_reward_of_masked(mdp: TabularMDP, mask: np.ndarray, value: float = 50.0) -> TabularMDP:
    """The same masked MDP with a large reward on every masked pair: any solver that consulted a
    masked action would be drawn to it (so the tests below cannot pass by accident)."""
    r = np.array(mdp.r)
    r[..., ~mask] = value
    return TabularMDP(mdp.P, r, gamma=mdp.gamma, horizon=mdp.horizon, mu0=mdp.mu0,
                      reward_axes="hsa" if r.ndim == 3 else "sa", action_mask=mask)


def brute_force_masked(mdp: TabularMDP, mask: np.ndarray) -> np.ndarray:
    """V* of a discounted MDP over the deterministic policies that use available actions only:
    the componentwise max of (I − γ P_π)^{-1} r_π over all of them (a linear solve each)."""
    S = mdp.num_states
    P, r = mdp.dense_P(), np.asarray(mdp.r)
    choices = [np.flatnonzero(mask[s]) for s in range(S)]
    best = np.full(S, -np.inf)
    for acts in itertools.product(*choices):
        a = np.array(acts)
        v = np.linalg.solve(np.eye(S) - mdp.gamma * P[np.arange(S), a], r[np.arange(S), a])
        best = np.maximum(best, v)
    return best


def backward_masked(mdp: TabularMDP, mask: np.ndarray) -> np.ndarray:
    """V*_h of a finite-horizon MDP by a backward recursion over the available actions only."""
    H, S = mdp.horizon, mdp.num_states
    P = mdp.dense_P()
    V = np.zeros((H + 1, S))
    for h in range(H - 1, -1, -1):
        Ph = P[h] if P.ndim == 4 else P
        rh = mdp.r[h] if mdp.r.ndim == 3 else mdp.r
        q = rh + mdp.gamma * Ph @ V[h + 1]
        V[h] = np.where(mask, q, -np.inf).max(axis=1)
    return V[:H]


def duplicated(mdp: TabularMDP, mask: np.ndarray) -> TabularMDP:
    """The unmasked MDP whose masked slots copy the first available action of their state: it has
    the same V* as the MDP with the masked actions removed (a duplicate action changes nothing)."""
    S, A = mask.shape
    first = np.argmax(mask, axis=1)
    src = np.where(mask, np.arange(A)[None, :], first[:, None])  # src[s, a]: the action a stands for
    P, r = mdp.dense_P(), np.asarray(mdp.r)
    s_idx = np.arange(S)[:, None]
    P2 = P[:, s_idx, src] if P.ndim == 4 else P[s_idx, src]
    r2 = r[:, s_idx, src] if r.ndim == 3 else r[s_idx, src]
    return TabularMDP(P2, r2, gamma=mdp.gamma, horizon=mdp.horizon, mu0=mdp.mu0, reward_axes="hsa" if r2.ndim == 3 else "sa")


def assert_respects_mask(policy: np.ndarray, actions: np.ndarray | None, mask: np.ndarray, who: str) -> None:
    assert np.all(policy[..., ~mask] == 0.0), f"{who} puts mass on a masked action"
    np.testing.assert_allclose(policy.sum(axis=-1), 1.0, atol=1e-12)
    if actions is not None:
        S = mask.shape[0]
        assert actions.dtype.kind == "i" and actions.shape == policy.shape[:-1]
        assert np.all(mask[np.arange(S), actions]), f"{who}.actions names a masked action"


# ----------------------------------------------------------------------------- hard planners
@needs_masked_backups
@SETTINGS
@given(pair=masked_mdps(discounted=True))
def test_discounted_planners_never_choose_a_masked_action_and_reach_the_reduced_optimum(pair):
    """Every discounted planner: policy 0 on masked actions, actions available, values = V* of the
    reduced MDP (brute force over the available deterministic policies, and the duplicated MDP)."""
    mdp, mask = pair
    mdp = _with_reward_of_masked(mdp, mask)
    v_star = brute_force_masked(mdp, mask)
    np.testing.assert_allclose(rs.optimal(duplicated(mdp, mask), 1e-10).values, v_star, atol=1e-7)
    results = {
        "value_iteration": rs.value_iteration(mdp, epsilon=1e-10),
        "value_iteration(span)": rs.value_iteration(mdp, epsilon=1e-10, bounds="span"),
        "policy_iteration": rs.policy_iteration(mdp),
        "modified_policy_iteration": rs.modified_policy_iteration(mdp, m=4, epsilon=1e-10),
        **{f"optimal({m})": rs.optimal(mdp, 1e-10, method=m) for m in METHODS},
    }
    for who, res in results.items():
        assert_respects_mask(res.policy, res.actions, mask, who)
        np.testing.assert_allclose(res.values, v_star, atol=1e-7, err_msg=who)
        # the returned policy is optimal in the masked MDP: its exact value is V*
        np.testing.assert_allclose(rs.policy_evaluation(mdp, res.policy).values, v_star, atol=1e-6, err_msg=who)


@needs_masked_backups
@SETTINGS
@given(pair=masked_mdps(discounted=True), backend=st.sampled_from(["highs", "cvxpy"]))
def test_lps_have_no_constraint_or_variable_for_masked_pairs(pair, backend):
    """Value LP and occupancy LP: V* of the reduced MDP, policy and occupancy 0 on masked pairs,
    the occupancy satisfies the masked flow constraints."""
    mdp, mask = pair
    mdp = _with_reward_of_masked(mdp, mask)
    v_star = brute_force_masked(mdp, mask)
    for res in (rs.lp_value(mdp, backend=backend), rs.lp_occupancy(mdp, backend=backend)):
        assert_respects_mask(res.policy, res.actions, mask, f"lp/{backend}")
        assert np.all(res.occupancy[~mask] == 0.0)
        assert rs.flow_residual(mdp, res.occupancy) < 1e-6
        J = float(mdp.mu0 @ v_star)
        assert float(mdp.mu0 @ rs.policy_evaluation(mdp, res.policy).values) == pytest.approx(J, abs=1e-6)
    np.testing.assert_allclose(rs.lp_value(mdp, backend=backend).values, v_star, atol=1e-6)


@needs_masked_backups
@SETTINGS
@given(pair=masked_mdps(discounted=False))
def test_finite_horizon_backward_induction_respects_the_mask(pair):
    """Finite horizon: V*_h of the recursion over available actions; policies and actions [h, s] masked."""
    mdp, mask = pair
    mdp = _with_reward_of_masked(mdp, mask)
    v_star = backward_masked(mdp, mask)
    for who, res in {"value_iteration": rs.value_iteration(mdp), "policy_iteration": rs.policy_iteration(mdp),
                     "optimal": rs.optimal(mdp), "lp_value": rs.lp_value(mdp),
                     "lp_occupancy(cvxpy)": rs.lp_occupancy(mdp, backend="cvxpy")}.items():
        assert_respects_mask(res.policy, res.actions, mask, who)
        if who.startswith("lp_occupancy"):  # its duals are V* only where the occupancy has mass: compare J
            assert np.all(res.occupancy[..., ~mask] == 0.0) and rs.flow_residual(mdp, res.occupancy) < 1e-6
            assert res.objective == pytest.approx(float(mdp.mu0 @ v_star[0]), abs=1e-6)
            np.testing.assert_allclose(rs.policy_evaluation(mdp, res.policy).values[0] @ mdp.mu0, mdp.mu0 @ v_star[0], atol=1e-6)
        else:
            np.testing.assert_allclose(res.values, v_star, atol=1e-6, err_msg=who)


@needs_masked_backups
def test_optimal_keeps_the_mask_when_it_converts_a_sparse_looking_dense_p_to_csr():
    """optimal() runs a dense P with <= 10% non-zeros and S >= 200 as CSR: the mask must survive that
    copy (V* = that of the duplicated-action MDP, no mass on masked actions)."""
    rng = np.random.default_rng(7)
    S, A, k = 240, 3, 4
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            P[s, a, rng.choice(S, k, replace=False)] = rng.dirichlet(np.ones(k))
    mask = rng.random((S, A)) < 0.5
    mask[:, 0] = True
    r = np.where(mask, rng.normal(size=(S, A)), 10.0)  # masked pairs would be attractive
    mdp = TabularMDP(P, r, gamma=0.9, action_mask=mask)
    res = rs.optimal(mdp, 1e-9)
    assert_respects_mask(res.policy, res.actions, mask, "optimal(auto, CSR)")
    np.testing.assert_allclose(res.values, rs.optimal(duplicated(mdp, mask), 1e-9).values, atol=1e-7)


# ----------------------------------------------------------------------------- soft planners
def soft_reference_values(mdp: TabularMDP, mask: np.ndarray, ref: np.ndarray, beta: float) -> np.ndarray:
    """V*_β of the reduced problem: π_ref restricted to the available actions and renormalized,
    V ← β log Σ_{a ∈ A(s)} π'_ref(a|s) exp((r + γ P V)(s, a)/β) iterated to a fixed point (written
    here; discounted, γ ≤ 0.9, so 600 iterations leave < 1e-27 of the start)."""
    w = np.where(mask, ref, 0.0)
    log_w = np.log(np.where(mask, w / w.sum(axis=1, keepdims=True), 1.0))
    P, r = mdp.dense_P(), np.asarray(mdp.r)
    V = np.zeros(mdp.num_states)
    for _ in range(600):
        q = r + mdp.gamma * P @ V
        V = beta * logsumexp(np.where(mask, log_w + q / beta, -np.inf), axis=1)
    return V


@SETTINGS
@given(pair=masked_mdps(discounted=True), beta=st.sampled_from([0.05, 0.5, 3.0]), ref_kind=st.sampled_from(["uniform", "random"]),
       m=st.sampled_from([1, 3]))
def test_soft_value_iteration_is_the_reduced_problem_with_renormalized_reference(pair, beta, ref_kind, m):
    """Soft VI / soft MPI on a masked MDP: values = the reduced problem's V*_β with π_ref
    renormalized over the available actions; the soft-greedy policy is 0 on masked actions."""
    mdp, mask = pair
    mdp = _with_reward_of_masked(mdp, mask)
    S, A = mask.shape
    ref = np.full((S, A), 1.0 / A) if ref_kind == "uniform" else np.random.default_rng(S * A).dirichlet(np.ones(A), S)
    want = soft_reference_values(mdp, mask, ref, beta)
    res = rs.soft_value_iteration(mdp, beta, pi_ref=None if ref_kind == "uniform" else ref, epsilon=1e-10, m=m)
    assert_respects_mask(res.policy, None, mask, "soft_value_iteration")
    np.testing.assert_allclose(res.values, want, atol=1e-7)
    # the regularized value of the returned policy (against the renormalized reference) is V*_β
    ev = rs.soft_policy_evaluation(mdp, res.policy, beta, pi_ref=None if ref_kind == "uniform" else ref)
    np.testing.assert_allclose(ev.values, want, atol=1e-6)


def test_soft_backward_induction_with_mask_and_beta_inf():
    """Finite horizon soft VI: masked actions get 0; β = ∞ evaluates the renormalized π_ref."""
    rng = np.random.default_rng(3)
    S, A, H = 4, 3, 3
    P = rng.dirichlet(np.ones(S), (S, A))
    R = rng.normal(size=(S, A))
    mask = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=bool)
    mdp = TabularMDP(P, R, horizon=H, action_mask=mask)
    for beta in (0.3, np.inf):
        res = rs.soft_value_iteration(mdp, beta)
        assert_respects_mask(res.policy, None, mask, f"soft_backward_induction(beta={beta})")
        assert np.isfinite(res.values).all()
    ref = mask / mask.sum(axis=1, keepdims=True)
    V = np.zeros(S)
    for _ in range(H):  # evaluation of the renormalized uniform reference, written here
        V = (ref * (R + P @ V)).sum(axis=1)
    np.testing.assert_allclose(rs.soft_value_iteration(mdp, np.inf).values[0], V, atol=1e-12)


# ----------------------------------------------------------------------------- core helpers
def test_mask_validation_errors_name_the_problem():
    P = np.full((2, 2, 2), 0.5)
    R = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"action_mask must have shape \(S, A\) = \(2, 2\)"):
        TabularMDP(P, R, gamma=0.5, action_mask=np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="state 1 without any available action"):
        TabularMDP(P, R, gamma=0.5, action_mask=np.array([[True, False], [False, False]]))
    with pytest.raises(ValueError, match=r"action_mask\[0, 1\] = "):
        TabularMDP(P, R, gamma=0.5, action_mask=np.array([[1, 2], [1, 1]]))
    with pytest.raises(ValueError, match="dtype"):
        TabularMDP(P, R, gamma=0.5, action_mask=np.array([["a", "b"], ["c", "d"]]))
    m = TabularMDP(P, R, gamma=0.5, action_mask=np.array([[1, 0], [1, 1]]))  # 0/1 integers are accepted
    assert m.action_mask.dtype == bool and not m.action_mask.flags.writeable
    assert "1 masked" in repr(m)
    assert TabularMDP(P, R, gamma=0.5).action_mask is None


def test_greedy_policy_and_tilts_give_minus_inf_entries_zero_probability():
    q = np.array([[1.0, -np.inf, 0.5], [-np.inf, -np.inf, -3.0]])
    np.testing.assert_array_equal(greedy_policy(q), [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(greedy_policy(q, ties="first"), [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    ref = np.array([[0.2, 0.6, 0.2], [0.5, 0.4, 0.1]])
    beta = 0.7
    # closed form on the available actions with π_ref renormalized there
    w0 = np.array([0.2 * np.exp(1.0 / beta), 0.0, 0.2 * np.exp(0.5 / beta)])
    pi = rs.soft_greedy(q, ref, beta)
    np.testing.assert_allclose(pi, [w0 / w0.sum(), [0.0, 0.0, 1.0]], rtol=1e-13)
    np.testing.assert_allclose(softmax_policy(q, beta, ref), pi, rtol=1e-15)
    v = rs.soft_value(q, ref, beta)
    np.testing.assert_allclose(v, [beta * np.log((0.2 * np.exp(1 / beta) + 0.2 * np.exp(0.5 / beta)) / 0.4), -3.0], rtol=1e-13)
    # β = ∞: the renormalized reference and its mean (finite)
    np.testing.assert_allclose(rs.soft_greedy(q, ref, np.inf), [[0.5, 0.0, 0.5], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(rs.soft_value(q, ref, np.inf), [0.75, -3.0])
    np.testing.assert_allclose(rs.greedy_limit(q, ref), [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    # β → 0 of the soft value is the max over available actions
    np.testing.assert_allclose(rs.soft_value(q, ref, 1e-12), [1.0, -3.0], atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), A=st.integers(1, 5), beta=st.sampled_from([1e-3, 0.2, 1.0, 30.0, np.inf]),
       with_ref=st.booleans())
def test_tilt_on_masked_rows_is_the_tilt_of_the_available_actions(seed, A, beta, with_ref):
    """Per row, soft_greedy / soft_value / greedy_policy of q with −∞ at masked entries equal the
    closed forms on the available entries alone, with π_ref renormalized there (numpy, written
    here): π ∝ π'_ref e^{(q − max q)/β}, V = max q + β log Σ π'_ref e^{(q − max q)/β}."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(4, A)) * 3
    mask = rng.random((4, A)) < 0.6
    mask[np.arange(4), rng.integers(0, A, 4)] = True
    ref = rng.dirichlet(np.ones(A), 4) if with_ref else np.full((4, A), 1.0 / A)
    qm = np.where(mask, q, -np.inf)
    pi = rs.soft_greedy(qm, ref if with_ref else None, beta)
    v = rs.soft_value(qm, ref if with_ref else None, beta)
    g = greedy_policy(qm)
    assert np.all(pi[~mask] == 0.0) and np.all(g[~mask] == 0.0) and np.isfinite(v).all()
    for s in range(4):
        a = np.flatnonzero(mask[s])
        w_ref = ref[s, a] / ref[s, a].sum()
        if np.isinf(beta):
            want_pi, want_v = w_ref, float(w_ref @ q[s, a])
        else:
            top = q[s, a].max()
            w = w_ref * np.exp((q[s, a] - top) / beta)
            want_pi, want_v = w / w.sum(), top + beta * np.log(w.sum())
        np.testing.assert_allclose(pi[s, a], want_pi, rtol=1e-10, atol=1e-300)
        assert v[s] == pytest.approx(want_v, rel=1e-10, abs=1e-10)
        best = a[q[s, a] >= q[s, a].max() - 1e-10]
        np.testing.assert_allclose(g[s, best], 1.0 / best.size)


@pytest.mark.parametrize("bad, match", [
    (np.array([[np.nan, 1.0]]), r"q\[0, 0\] = nan"),
    (np.array([[np.inf, 1.0]]), r"q\[0, 0\] = inf"),
    (np.array([[-np.inf, -np.inf]]), "every action masked"),
])
def test_q_with_nan_plus_inf_or_an_all_masked_row_is_refused(bad, match):
    for fn in (greedy_policy, lambda q: rs.soft_greedy(q, None, 1.0), lambda q: rs.soft_value(q, None, 1.0),
               lambda q: softmax_policy(q, 1.0), rs.greedy_limit):
        with pytest.raises(ValueError, match=match):
            fn(bad)


def test_reference_with_no_mass_on_available_actions_is_refused():
    with pytest.raises(ValueError, match=r"pi_ref\[0, :\] puts no mass on an available action"):
        rs.soft_greedy([[-np.inf, 1.0]], [[1.0, 0.0]], 1.0)
    mdp = TabularMDP(np.full((2, 2, 2), 0.5), np.zeros((2, 2)), gamma=0.5, action_mask=[[1, 0], [1, 1]])
    with pytest.raises(ValueError, match="state s=0"):
        reference_policy(mdp, [[0.0, 1.0], [0.5, 0.5]])
    np.testing.assert_array_equal(reference_policy(mdp, [[0.5, 0.5], [0.25, 0.75]]), [[1.0, 0.0], [0.25, 0.75]])
    np.testing.assert_array_equal(reference_policy(mdp), uniform_policy(mdp))


def test_uniform_and_validate_policy_with_a_mask():
    mask = np.array([[1, 0, 1], [0, 1, 0]], dtype=bool)
    mdp = TabularMDP(np.full((2, 3, 2), 0.5), np.zeros((2, 3)), horizon=2, action_mask=mask)
    np.testing.assert_array_equal(uniform_policy(mdp), [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    assert uniform_policy(mdp, stages=True).shape == (2, 2, 3)
    validate_policy(mdp, uniform_policy(mdp, stages=True))
    with pytest.raises(ValueError, match=r"pi puts probability 0.5 on the masked action a=1 at state s=0"):
        validate_policy(mdp, np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]]))
    staged = np.broadcast_to(uniform_policy(mdp), (2, 2, 3)).copy()
    staged[1, 1] = [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"masked action a=0 at state s=1 at stage h=1"):
        validate_policy(mdp, staged)
    with pytest.raises(ValueError, match="masked action"):
        rs.policy_evaluation(mdp, np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="masked action"):
        rs.occupancy_measure(mdp, np.full((2, 3), 1 / 3))


def test_flow_residual_counts_mass_on_masked_pairs():
    """The occupancy polytope of a masked MDP has d = 0 on masked pairs: an occupancy of the
    unmasked MDP that uses a masked pair violates it by that mass."""
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(3), (3, 2))
    mask = np.array([[1, 1], [1, 0], [1, 1]], dtype=bool)
    free = TabularMDP(P, rng.normal(size=(3, 2)), gamma=0.8)
    masked = dataclasses.replace(free, action_mask=mask)
    d_bad = rs.occupancy_measure(free, np.full((3, 2), 0.5))
    assert rs.flow_residual(free, d_bad) < 1e-12
    assert rs.flow_residual(masked, d_bad) == pytest.approx(d_bad[1, 1])
    d_ok = rs.occupancy_measure(masked, uniform_policy(masked))
    assert d_ok[1, 1] == 0.0 and rs.flow_residual(masked, d_ok) < 1e-12


# ----------------------------------------------------------------------------- integer actions
def test_actions_is_the_first_maximizer_of_the_policy():
    """actions[s] = the lowest-index action of maximal probability; per stage for a finite horizon;
    deterministic_policy(actions, A) gives a deterministic policy back."""
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.ones(4), (4, 3))
    R = np.zeros((4, 3))  # every action ties: the uniform greedy policy's first maximizer is action 0
    res = rs.value_iteration(TabularMDP(P, R, gamma=0.9), epsilon=1e-10)
    np.testing.assert_array_equal(res.actions, [0, 0, 0, 0])
    R = rng.normal(size=(4, 3))
    mdp = TabularMDP(P, R, gamma=0.9)
    res = rs.policy_iteration(mdp)
    np.testing.assert_array_equal(deterministic_policy(res.actions, 3), res.policy)
    v_star = brute_force_masked(mdp, np.ones((4, 3), dtype=bool))
    np.testing.assert_allclose(rs.policy_evaluation(mdp, deterministic_policy(res.actions, 3)).values, v_star, atol=1e-9)
    fh = rs.value_iteration(TabularMDP(P, R, horizon=3))
    assert fh.actions.shape == (3, 4) and fh.actions.dtype == np.int64
    np.testing.assert_array_equal(fh.actions, np.argmax(fh.q, axis=-1))
    lp = rs.lp_value(mdp)
    np.testing.assert_array_equal(lp.actions, res.actions)


# ----------------------------------------------------------------------------- lazy cvxpy
def test_import_rlref_solve_does_not_import_cvxpy():
    """cvxpy (about a second to import) is loaded only by the cvxpy LP backend; rlref's lazy
    top-level attributes still resolve."""
    code = ("import sys, rlref, rlref.solve; assert 'cvxpy' not in sys.modules, 'cvxpy imported'; "
            "assert rlref.solve.optimal and rlref.TabularMDP and rlref.policy.soft_greedy is rlref.solve.soft_greedy; "
            "assert 'cvxpy' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_soft_bellman_fixed_point_of_masked_soft_vi():
    """soft_bellman on a masked MDP uses the reference restricted to the available actions, so the masked soft-VI
    values are its fixed point (with the unrestricted 1/A reference it was off by beta*log(|A(s)|/A))."""
    from rlref.solve import soft_bellman
    from rlref.solve.regularized import soft_value_iteration

    rng = np.random.default_rng(3)
    S, A = 6, 4
    P = rng.dirichlet(np.ones(S), size=(S, A))
    mask = rng.random((S, A)) > 0.5
    mask[:, 1] = True
    mdp = TabularMDP(P, rng.uniform(-1, 1, (S, A)), gamma=0.9, action_mask=mask)
    for beta in (0.05, 0.5, 3.0):
        v = soft_value_iteration(mdp, beta, epsilon=1e-11).values
        np.testing.assert_allclose(soft_bellman(mdp, v, beta), v, atol=1e-9)
        ref = rng.dirichlet(np.ones(A), size=S)
        v = soft_value_iteration(mdp, beta, ref, epsilon=1e-11).values
        np.testing.assert_allclose(soft_bellman(mdp, v, beta, ref), v, atol=1e-9)
