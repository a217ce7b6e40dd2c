"""Tests of rlref.solve.optimal and the span (MacQueen-Porteus) certificates (issue #10).

Golden V* comes from brute-force enumeration of deterministic policies (tests/helpers.py) or from
the HiGHS value LP, never from the solver under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rlref.solve as rs

from helpers import brute_force_values, random_mdp, with_absorbing_and_ties

METHODS = ("auto", "vi", "mpi", "pi", "lp")


def _instance(seed: int, S: int, A: int, gamma: float, special: bool):
    mdp = random_mdp(seed, S=S, A=A, gamma=gamma)
    return with_absorbing_and_ties(mdp, seed) if special else mdp


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), S=st.integers(1, 5), A=st.integers(1, 3), gamma=st.floats(0.05, 0.995),
       special=st.booleans(), scale=st.sampled_from([1e-3, 1.0, 10.0, 1e4]))
def test_span_bounds_contain_v_star_for_any_v(seed, S, A, gamma, special, scale):
    """MacQueen-Porteus (Puterman Thm 6.6.3): T v + γ/(1−γ) min d ≤ V* ≤ T v + γ/(1−γ) max d for an
    arbitrary v, incl. MDPs with an absorbing state and exactly tied actions."""
    mdp = _instance(seed, S, A, gamma, special)
    v_star = brute_force_values(mdp)
    v = v_star + scale * np.random.default_rng(seed + 7).normal(size=S)
    lo, hi = rs.span_bounds(mdp, v)
    tol = 1e-9 * (1 + np.abs(v_star).max() + scale / (1 - gamma))
    assert np.all(lo <= v_star + tol) and np.all(v_star <= hi + tol)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), S=st.integers(1, 5), A=st.integers(1, 3), gamma=st.floats(0.05, 0.99),
       special=st.booleans(), method=st.sampled_from(METHODS), eps=st.sampled_from([1e-2, 1e-4, 1e-6]))
def test_certificate_is_never_smaller_than_the_true_error(seed, S, A, gamma, special, method, eps):
    """For every method: ‖values − V*‖ ≤ value_error_bound, V* − V^π ≤ suboptimality_bound ≤ ε
    (the property quantecon's and pymdptoolbox's VI fail)."""
    mdp = _instance(seed, S, A, gamma, special)
    v_star = brute_force_values(mdp)
    res = rs.optimal(mdp, eps, method=method)
    v_pi = rs.policy_evaluation(mdp, res.policy).values
    slack = 1e-10 * (1 + np.abs(v_star).max())
    assert res.converged and res.suboptimality_bound <= eps
    assert np.abs(res.values - v_star).max() <= res.value_error_bound + slack
    assert res.value_error_bound <= res.suboptimality_bound + slack
    assert np.all(v_star - v_pi >= -slack) and (v_star - v_pi).max() <= res.suboptimality_bound + slack


@pytest.mark.parametrize("sparse,S", [(False, 30), (True, 2200)])
def test_auto_and_every_method_agree_with_the_lp_within_their_certificates(sparse, S):
    """|values − V*_LP| ≤ value_error_bound + LP error, for "auto" and each method (HiGHS LP as the
    independent reference; its own error measured by its Bellman residual / (1 − γ))."""
    mdp = random_mdp(3, S=S, A=4, gamma=0.95, sparse=sparse, branching=5)
    lp = rs.lp_value(mdp).values
    lp_err = np.abs(rs.bellman_optimality(mdp, lp) - lp).max() / (1 - mdp.gamma)
    for method in METHODS:
        res = rs.optimal(mdp, 1e-6, method=method)
        assert res.method in {"vi", "mpi", "pi", "lp"} and res.reason
        assert np.abs(res.values - lp).max() <= res.value_error_bound + lp_err + 1e-12, method


def test_auto_says_what_it_ran_and_why_on_fast_and_slow_mixing_instances():
    """Garnet-like random sparse MDP (fast mixing) and a long deterministic chain (slow mixing):
    auto runs span MPI on both (measured fastest, docs/benchmarks.md) and says so; the chain's
    values match the closed form within the certificate."""
    fast = rs.optimal(random_mdp(0, S=5000, A=4, gamma=0.99, sparse=True, branching=5))
    assert fast.method == "mpi" and "modified PI" in fast.reason and "S=5000" in fast.reason, fast.reason
    import scipy.sparse as sp

    from rlref import TabularMDP

    S = 2500  # chain: action 0 stays, action 1 moves right; reward only at the right end
    rows = np.arange(2 * S)
    cols = np.where(rows % 2 == 0, rows // 2, np.minimum(rows // 2 + 1, S - 1))
    P = sp.csr_matrix((np.ones(2 * S), (rows, cols)), shape=(2 * S, S))
    R = np.zeros((S, 2))
    R[S - 1] = 1.0
    chain = TabularMDP(P, R, gamma=0.999)
    slow = rs.optimal(chain, 1e-6)
    assert slow.method == "mpi" and slow.converged, slow.reason
    v_true = 0.999 ** np.maximum(S - 1 - np.arange(S), 0) / (1 - 0.999)  # walk right, then stay
    assert np.abs(slow.values - v_true).max() <= slow.value_error_bound + 1e-9
    dense = TabularMDP(P.toarray().reshape(S, 2, S), R, gamma=0.999)  # 1 non-zero per row: solved as CSR
    res = rs.optimal(dense, 1e-6)
    assert "dense P run as CSR" in res.reason and np.abs(res.values - v_true).max() <= res.value_error_bound + 1e-9


@pytest.mark.parametrize("sweep_tol", [None, 0.0, 0.03, 0.5])
def test_adaptive_mpi_sweeps_keep_the_certificate_and_never_touch_P(sweep_tol):
    """Any sweep_tol (None = classical m − 1 sweeps) gives a certified answer within the LP's
    values; the cached γ P_π is a scaled copy, so the MDP's own P is unchanged afterwards."""
    mdp = random_mdp(5, S=300, A=3, gamma=0.98, sparse=True, branching=4)
    before = mdp.transition_matrix().copy()
    lp = rs.lp_value(mdp).values
    lp_err = np.abs(rs.bellman_optimality(mdp, lp) - lp).max() / (1 - mdp.gamma)
    res = rs.optimal(mdp, 1e-7, method="mpi", m=30, sweep_tol=sweep_tol)
    assert res.converged and res.suboptimality_bound <= 1e-7
    assert np.abs(res.values - lp).max() <= res.value_error_bound + lp_err + 1e-12
    assert (mdp.transition_matrix() != before).nnz == 0
    with pytest.raises(ValueError, match="sweep_tol"):
        rs.optimal(mdp, method="mpi", sweep_tol=-1.0)
    with pytest.raises(ValueError, match="m must be a positive integer"):
        rs.optimal(mdp, method="mpi", m=0)


def test_max_iter_raises_by_default_and_returns_converged_false_on_request():
    """Never silent: optimal(max_iter=2) raises RuntimeError naming the bound; strict=False returns
    converged=False with a bound that still dominates the true loss."""
    mdp = random_mdp(2, S=6, A=3, gamma=0.99)
    v_star = brute_force_values(mdp)
    for method in ("vi", "mpi"):
        with pytest.raises(RuntimeError, match="bound"):
            rs.optimal(mdp, 1e-10, method=method, max_iter=2)
        res = rs.optimal(mdp, 1e-10, method=method, max_iter=2, strict=False)
        assert not res.converged and res.suboptimality_bound > 1e-10
        assert (v_star - rs.policy_evaluation(mdp, res.policy).values).max() <= res.suboptimality_bound
        assert np.abs(res.values - v_star).max() <= res.value_error_bound + 1e-12
    with pytest.raises(RuntimeError, match="bound"):
        rs.optimal(mdp, 1e-12, method="pi", max_iter=1)


def test_finite_horizon_and_gamma_zero_are_exact():
    mdp = random_mdp(4, S=5, A=3, gamma=0.9, horizon=4, staged=True)
    res = rs.optimal(mdp)
    np.testing.assert_allclose(res.values, rs.value_iteration(mdp).values, atol=0)
    assert res.method == "backward_induction" and res.suboptimality_bound == 0.0
    g0 = rs.optimal(random_mdp(1, gamma=0.0))
    np.testing.assert_array_equal(g0.values, random_mdp(1, gamma=0.0).r.max(axis=1))
    assert g0.suboptimality_bound == 0.0


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), S=st.integers(1, 6), gamma=st.floats(0.1, 0.99), beta=st.floats(0.05, 5.0),
       m=st.sampled_from([1, 4]))
def test_soft_vi_and_soft_mpi_span_certificates_hold(seed, S, gamma, beta, m):
    """Soft VI / soft MPI with bounds="span": ‖values − V*_β‖ ≤ value_error_bound and
    V*_β − V_β^π ≤ suboptimality_bound ≤ ε, with V*_β = V_β of the soft-optimal policy computed by an
    exact linear solve (soft_policy_evaluation of a 1e-13-accurate sup-norm soft VI)."""
    mdp = random_mdp(seed, S=S, A=3, gamma=gamma)
    ref = rs.soft_value_iteration(mdp, beta, epsilon=1e-13)
    v_star = rs.soft_policy_evaluation(mdp, ref.policy, beta).values
    res = rs.soft_value_iteration(mdp, beta, epsilon=1e-5, m=m, bounds="span", strict=True)
    assert res.method == ("soft_value_iteration" if m == 1 else "soft_modified_policy_iteration")
    slack = 1e-9 * (1 + np.abs(v_star).max())
    assert res.suboptimality_bound <= 1e-5
    assert np.abs(res.values - v_star).max() <= res.value_error_bound + slack
    v_pi = rs.soft_policy_evaluation(mdp, res.policy, beta).values
    assert (v_star - v_pi).max() <= res.suboptimality_bound + slack


def test_span_vi_stops_no_later_than_sup_vi():
    """sp(d) ≤ 2‖d‖_∞, so the span rule never needs more sweeps than the sup-norm rule."""
    mdp = random_mdp(9, S=200, A=4, gamma=0.99, sparse=True, branching=5)
    span = rs.value_iteration(mdp, epsilon=1e-6, bounds="span")
    sup = rs.value_iteration(mdp, epsilon=1e-6)
    assert span.iterations <= sup.iterations and span.suboptimality_bound <= 1e-6


@pytest.mark.parametrize("tie_tol", [np.nan, -1e-3, np.inf])
def test_nan_tie_tol_is_rejected(tie_tol):
    """Issue #11 item 10: value_iteration(m, tie_tol=nan) used to return a NaN policy."""
    mdp = random_mdp(0)
    for call in (rs.value_iteration, rs.modified_policy_iteration, rs.optimal):
        with pytest.raises(ValueError, match="tie_tol"):
            call(mdp, tie_tol=tie_tol)


def test_bad_arguments_raise():
    mdp = random_mdp(0)
    with pytest.raises(ValueError, match="method"):
        rs.optimal(mdp, method="simplex")
    with pytest.raises(ValueError, match="evaluator"):
        rs.optimal(mdp, evaluator="cg")
    with pytest.raises(ValueError, match="epsilon"):
        rs.optimal(mdp, 0.0)
    with pytest.raises(ValueError, match="bounds"):
        rs.value_iteration(mdp, bounds="l2")
    with pytest.raises(ValueError, match="v must have shape"):
        rs.span_bounds(mdp, np.zeros(2))


@pytest.mark.parametrize("sparse", [False, True])
def test_deterministic_improvement_patches_few_changed_rows_exactly(sparse):
    """HardBackup.deterministic_improvement: after a cached policy, a policy differing at few states
    gives an operator whose products equal P_π v of the explicit row selection (Σ_s' P(s'|s, π(s)) v(s'),
    computed here from the dense P), and c_π = r(s, π(s)); many changes rebuild the selection."""
    from rlref.solve.bellman import HardBackup

    S, A = 64, 3
    mdp = random_mdp(11, S=S, A=A, gamma=0.9, sparse=sparse, branching=4)
    P = mdp.dense_P()
    rng = np.random.default_rng(0)
    backup = HardBackup(mdp, 0.0)
    v = rng.normal(size=S)
    actions = rng.integers(0, A, S)
    for n_changed in (0, 0, 2, 4, 40):
        new = actions.copy()
        flip = rng.choice(S, n_changed, replace=False)
        new[flip] = (new[flip] + 1) % A
        op, c = backup.deterministic_improvement(new)
        expect = P[np.arange(S), new] @ v
        np.testing.assert_allclose(np.asarray(op @ v).ravel(), expect, rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(c, mdp.r[np.arange(S), new])
        if n_changed == 0:
            actions = new  # the cache keeps its base policy; later cases patch relative to it


@pytest.mark.parametrize("sparse", [False, True])
def test_scaled_improvement_and_affine_sweep_equal_the_explicit_partial_evaluation(sparse):
    """One partial-evaluation sweep of modified PI, u = c_π + γ P_π v (Puterman §6.5): affine_sweep on
    deterministic_improvement(π, γ) (γ P_π, full selections and row patches, CSR and dense) equals
    r(s, π(s)) + γ Σ_s' P(s'|s, π(s)) v(s') computed here from the dense P, into the given buffer."""
    from rlref.solve.bellman import HardBackup, affine_sweep

    S, A, gamma = 64, 3, 0.9
    mdp = random_mdp(12, S=S, A=A, gamma=gamma, sparse=sparse, branching=4)
    P = mdp.dense_P()
    rng = np.random.default_rng(1)
    backup = HardBackup(mdp, 0.0)
    v = rng.normal(size=S)
    actions = rng.integers(0, A, S)
    for n_changed in (0, 3, 40):
        new = actions.copy()
        flip = rng.choice(S, n_changed, replace=False)
        new[flip] = (new[flip] + 1) % A
        op, c = backup.deterministic_improvement(new, gamma)
        out = np.full(S, np.nan)
        got = affine_sweep(op, v, c, out)
        expect = mdp.r[np.arange(S), new] + gamma * (P[np.arange(S), new] @ v)
        assert got is out
        assert (type(op).__name__ == "RowPatched") == (n_changed == 3)  # the patch path is covered
        np.testing.assert_allclose(got, expect, rtol=1e-13, atol=1e-13)
        unscaled, _ = HardBackup(mdp, 0.0).deterministic_improvement(new)  # the default scale 1: P_π
        np.testing.assert_allclose(np.asarray(unscaled @ v).ravel(), P[np.arange(S), new] @ v, rtol=1e-13, atol=1e-13)


def _masked_instance(seed: int, S: int, A: int, gamma: float, sparse: bool = False, horizon: int | None = None):
    """A random MDP whose masked pairs (≥ 1 allowed action per state) carry the largest rewards, so a
    solver that ignored the mask would pick them."""
    import inspect

    from rlref import TabularMDP

    if "action_mask" not in inspect.signature(TabularMDP).parameters:
        pytest.skip("TabularMDP has no action_mask yet")
    base = random_mdp(seed, S=S, A=A, gamma=gamma, sparse=sparse, horizon=horizon, branching=4)
    rng = np.random.default_rng(seed + 1)
    mask = rng.random((S, A)) < 0.5
    mask[np.arange(S), rng.integers(0, A, S)] = True
    r = np.where(mask, base.r, 10.0 + np.abs(base.r))
    return TabularMDP(base.P, r, gamma=gamma, horizon=horizon, mu0=base.mu0, reward_axes="sa", action_mask=mask), mask


def _brute_force_masked(mdp, mask) -> np.ndarray:
    """V* of the MDP with the masked actions removed: enumerate the allowed deterministic policies."""
    S = mdp.num_states
    P = mdp.dense_P()
    best = np.full(S, -np.inf)
    for acts in np.ndindex(*[int(k) for k in mask.sum(axis=1)]):
        a = np.array([np.flatnonzero(mask[s])[acts[s]] for s in range(S)])
        v = np.linalg.solve(np.eye(S) - mdp.gamma * P[np.arange(S), a], mdp.r[np.arange(S), a])
        best = np.maximum(best, v)
    return best


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", range(4))
def test_no_method_selects_a_masked_action_and_v_star_is_that_of_the_reduced_mdp(method, seed):
    """Action masks (issue #19): optimal(method=m) puts probability 0 on every masked pair, its q is
    −∞ there, and its values are V* of the MDP with those actions removed (brute force over the
    allowed deterministic policies) within the certificate."""
    mdp, mask = _masked_instance(seed, S=4, A=3, gamma=0.9)
    v_star = _brute_force_masked(mdp, mask)
    res = rs.optimal(mdp, 1e-8, method=method)
    assert np.all(res.policy[~mask] == 0.0)
    assert np.all(np.isneginf(res.q[~mask])) and np.all(np.isfinite(res.q[mask]))
    assert res.converged and np.abs(res.values - v_star).max() <= res.value_error_bound + 1e-9
    v_pi = rs.policy_evaluation(mdp, res.policy).values
    assert (v_star - v_pi).max() <= res.suboptimality_bound + 1e-9


@pytest.mark.parametrize("method", METHODS)
def test_masked_sparse_instance_mpi_fast_path_and_krylov_pi_respect_the_mask(method):
    """The sparse paths (MPI's cached row selection P_π, Krylov PI, the CSR conversion) never select a
    masked action; V* equals that of the same MDP with each masked pair replaced by a copy of an
    allowed action of its state (no mask: an independent construction of the reduced MDP)."""
    import scipy.sparse as sparse

    from rlref import TabularMDP

    S, A = 300, 4
    mdp, mask = _masked_instance(5, S=S, A=A, gamma=0.95, sparse=True)
    first = mask.argmax(axis=1)
    src = np.where(mask, np.arange(A)[None, :], first[:, None])  # the action whose row fills (s, a)
    rows = (np.arange(S)[:, None] * A + src).ravel()
    copy = TabularMDP(sparse.csr_matrix(mdp.transition_matrix()[rows]), mdp.r[np.arange(S)[:, None], src], gamma=0.95,
                      reward_axes="sa")
    ref = rs.optimal(copy, 1e-8, method="lp")
    res = rs.optimal(mdp, 1e-8, method=method)
    assert np.all(res.policy[~mask] == 0.0) and np.all(res.actions == res.policy.argmax(axis=1))
    assert mask[np.arange(S), res.actions].all()
    assert np.abs(res.values - ref.values).max() <= res.value_error_bound + ref.value_error_bound + 1e-9


def test_masked_finite_horizon_policy_iteration_and_evaluation():
    """Finite horizon (backward induction), policy_iteration and policy_evaluation with a mask: no
    masked action chosen, Q^π = −∞ exactly at masked pairs, V*_0 = the brute-force optimum of the
    reduced MDP over H stages (dynamic programming by hand over the allowed actions)."""
    mdp, mask = _masked_instance(3, S=4, A=3, gamma=0.9, horizon=3)
    P, r = mdp.dense_P(), mdp.r
    v = np.zeros(4)
    for _ in range(3):
        v = np.where(mask, r + 0.9 * P @ v, -np.inf).max(axis=1)
    for res in (rs.optimal(mdp), rs.value_iteration(mdp), rs.policy_iteration(mdp)):
        assert np.all(res.policy[:, ~mask] == 0.0)
        np.testing.assert_allclose(res.values[0], v, rtol=1e-12, atol=1e-12)
    disc, dmask = _masked_instance(4, S=4, A=3, gamma=0.9)
    pi = rs.policy_iteration(disc)
    assert np.all(pi.policy[~dmask] == 0.0) and pi.converged
    np.testing.assert_allclose(pi.values, _brute_force_masked(disc, dmask), rtol=1e-9, atol=1e-9)
    ev = rs.policy_evaluation(disc, pi.policy)
    assert np.all(np.isneginf(ev.q[~dmask])) and np.all(np.isfinite(ev.q[dmask]))


def test_select_rows_with_row_blocks_equals_scipy_row_indexing():
    """select_rows(P, rows, row_blocks(P)) is P[rows] entry for entry (dense comparison), for CSR
    matrices whose rows all have k entries (views), ragged rows within the padding limit (padded
    with explicit zeros) and a dense P; row_blocks refuses CSC, dense and too-ragged matrices."""
    import scipy.sparse as sparse

    from rlref.solve.bellman import row_blocks, select_rows

    rng = np.random.default_rng(3)
    uniform = random_mdp(2, S=40, A=3, sparse=True, branching=4).transition_matrix()
    short = uniform.tolil()
    for i in (5, 17, 90):
        short[i, short.rows[i][0]] = 0.0
    short = short.tocsr()
    short.eliminate_zeros()
    ragged = sparse.csr_matrix(rng.random((120, 40)) * (rng.random((120, 40)) < 0.1))
    assert row_blocks(uniform)[0].shape == (120, 4) and row_blocks(short)[0].shape == (120, 4)
    assert row_blocks(ragged) is None and row_blocks(uniform.tocsc()) is None and row_blocks(uniform.toarray()) is None
    rows = rng.integers(0, 120, 57)
    v = rng.normal(size=40)
    for P in (uniform, short, ragged, uniform.toarray()):
        got = select_rows(P, rows, row_blocks(P))
        expect = P.toarray()[rows] if sparse.issparse(P) else P[rows]
        np.testing.assert_array_equal(got.toarray() if sparse.issparse(got) else got, expect)
        np.testing.assert_allclose(got @ v, expect @ v, rtol=1e-15, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), S=st.integers(1, 6), A=st.integers(1, 4), tie_tol=st.sampled_from([0.0, 0.5, 1.0]),
       masked=st.booleans())
def test_hard_backup_greedy_is_greedy_policy_and_its_slack(seed, S, A, tie_tol, masked):
    """HardBackup.greedy(q, max_a q) returns greedy_policy(q, tie_tol) exactly (uniform over the
    actions within tie_tol of the max, −∞ never chosen) and δ = max_s [max_a q − Σ_a π q] computed
    here directly, on integer-valued q (so exact ties are common)."""
    from rlref.policy import greedy_policy
    from rlref.solve.bellman import HardBackup

    rng = np.random.default_rng(seed)
    q = rng.integers(-2, 3, (S, A)).astype(float)
    if masked and A > 1:
        q[rng.random((S, A)) < 0.3] = -np.inf
        q[np.arange(S), rng.integers(0, A, S)] = rng.integers(-2, 3, S)
    tv = q.max(axis=1)
    pi, delta = HardBackup(random_mdp(0, S=S, A=A), tie_tol).greedy(q, tv)
    np.testing.assert_array_equal(pi, greedy_policy(q, tie_tol=tie_tol))
    expect = max(float(tv[s] - sum(pi[s, a] * q[s, a] for a in range(A) if pi[s, a] > 0)) for s in range(S))
    assert delta == pytest.approx(max(expect, 0.0), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), S=st.integers(1, 8), A=st.integers(1, 4), scale=st.sampled_from([0.0, 1e-6, 1e-2, 1.0]),
       sparse=st.booleans(), masked=st.booleans())
def test_lazy_backup_is_the_exact_backup(seed, S, A, scale, sparse, masked):
    """HardBackup.lazy_value_argmax (gap bound sec(s) + γ max(v − v_ref) ≤ q_v(s, π(s))): whenever it
    answers, its T v equals max_a [r + γ P v] computed here from the dense P (twice in a row, so
    the second call uses the per-state references the first one created), and its actions attain
    that max; masked pairs are never chosen."""
    import inspect

    from rlref import TabularMDP
    from rlref.solve.bellman import HardBackup, _q

    base = random_mdp(seed, S=S, A=A, gamma=0.9, sparse=sparse, branching=3)
    rng = np.random.default_rng(seed)
    mask = None
    if masked and "action_mask" in inspect.signature(TabularMDP).parameters:
        mask = rng.random((S, A)) < 0.6
        mask[np.arange(S), rng.integers(0, A, S)] = True
        base = TabularMDP(base.P, base.r, gamma=0.9, reward_axes="sa", action_mask=mask)
    P, r = base.dense_P(), base.r
    allowed = np.ones((S, A), bool) if mask is None else mask
    backup = HardBackup(base, 0.0)
    v = rng.normal(size=S)
    q = _q(base, v, None)
    _, actions = backup.value_argmax(q)
    backup.remember_gaps(q, v, actions)
    for _ in range(2):
        v = v + scale * rng.normal(size=S)
        w = r[np.arange(S), actions] + 0.9 * P[np.arange(S), actions] @ v
        out = backup.lazy_value_argmax(v, w)
        if out is None:
            break
        tv, actions = out
        q_true = np.where(allowed, r + 0.9 * P @ v, -np.inf)
        np.testing.assert_allclose(tv, q_true.max(axis=1), rtol=1e-12, atol=1e-12)
        assert np.all(q_true[np.arange(S), actions] >= tv - 1e-12) and allowed[np.arange(S), actions].all()


def test_mpi_lazy_steps_happen_and_keep_the_certificate():
    """On a sparse Garnet-like instance, span MPI takes lazy (gap-certified) steps, and the answer
    agrees with the HiGHS LP within its certificate, as with lazy steps disabled."""
    from rlref.solve.bellman import HardBackup

    mdp = random_mdp(7, S=3000, A=6, gamma=0.99, sparse=True, branching=5)
    lp = rs.optimal(mdp, 1e-8, method="lp")
    calls = []
    orig = HardBackup.lazy_value_argmax

    def spy(self, v, w):
        out = orig(self, v, w)
        calls.append(out is not None)
        return out

    HardBackup.lazy_value_argmax = spy
    try:
        res = rs.optimal(mdp, 1e-6)
    finally:
        HardBackup.lazy_value_argmax = orig
    assert any(calls) and res.converged and res.suboptimality_bound <= 1e-6
    assert np.abs(res.values - lp.values).max() <= res.value_error_bound + lp.value_error_bound + 1e-9
    v_pi = rs.policy_evaluation(mdp, res.policy).values
    assert (lp.values - v_pi).max() <= res.suboptimality_bound + lp.value_error_bound + 1e-9


def test_private_csr_kernel_is_used_only_after_a_self_check():
    """The fast paths call scipy's private CSR kernel; the import-time self-check (y += A x on a known case) is what
    keeps a future scipy with other semantics from giving wrong values: it passes on the installed scipy."""
    from rlref.solve import bellman

    assert bellman._kernel_works()
    assert bellman._kernels is not None
