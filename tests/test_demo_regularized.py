"""Tests for rlref.algorithms.demo_regularized (Tiapkin et al. 2024, "Demonstration-Regularized RL").

Golden values come from independent computations: cvxpy programs (the regularized MLE, the
occupancy-measure convex program of the KL-regularized MDP, logistic regression), brute-force
enumeration of trajectory distributions, and the exact solvers of rlref.solve for the true MDP.
"""

from __future__ import annotations

import itertools

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref import TabularMDP
from rlref.algorithms import demo_regularized as dr
from rlref.linear import random_linear_mdp
from rlref.solve import policy_evaluation, soft_policy_evaluation, soft_value_iteration, state_occupancy, value_iteration
from rlref.testing import policies, tabular_mdps

TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}


def _mdp(seed: int, S: int = 4, A: int = 2, H: int = 3, staged: bool = True) -> TabularMDP:
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), (H, S, A)) if staged else rng.dirichlet(np.ones(S), (S, A))
    return TabularMDP(P=P, R=rng.random((H, S, A)), horizon=H, mu0=rng.dirichlet(np.ones(S)), reward_axes="hsa")


def _expert(mdp: TabularMDP, temp: float = 0.05) -> np.ndarray:
    return soft_value_iteration(mdp, temp).policy


# ----------------------------------------------------------------------------- behaviour cloning
@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 30), st.floats(0.05, 3.0))
def test_bc_closed_form_is_the_regularized_mle(seed, N, kappa):
    """Claim (paper §3): (n_h(s,a)+κ)/(n_h(s)+κA) maximizes Σ log π(a_i|s_i) + κ Σ log π; golden: cvxpy."""
    rng = np.random.default_rng(seed)
    S, A, H = 3, 3, 2
    states, actions = rng.integers(0, S, (N, H)), rng.integers(0, A, (N, H))
    bc = dr.behavior_cloning(states, actions, S, A, kappa=kappa)
    counts = np.zeros((H, S, A))
    for i in range(N):
        for h in range(H):
            counts[h, states[i, h], actions[i, h]] += 1
    x = cp.Variable((H * S, A))
    w = counts.reshape(H * S, A) + kappa
    prob = cp.Problem(cp.Maximize(cp.sum(cp.multiply(w, cp.log(x)))), [cp.sum(x, axis=1) == 1, x >= 0])
    prob.solve(solver="CLARABEL", **TIGHT)
    np.testing.assert_allclose(bc.policy.reshape(H * S, A), x.value, atol=2e-5)  # Clarabel's accuracy on this cone
    assert bc.log_likelihood >= prob.value - 1e-9  # the closed form is at least as good as the solver's optimum
    assert bc.log_likelihood == pytest.approx(prob.value, abs=1e-6)


def test_bc_kappa_zero_is_empirical_frequency_and_keeps_mass_with_kappa():
    s = np.array([[0, 1], [0, 1], [0, 0]])
    a = np.array([[1, 0], [1, 1], [0, 0]])
    bc0 = dr.behavior_cloning(s, a, 2, 2, kappa=0.0)
    np.testing.assert_allclose(bc0.policy[0, 0], [1 / 3, 2 / 3])
    np.testing.assert_allclose(bc0.policy[0, 1], [0.5, 0.5])  # unvisited: uniform
    bc = dr.behavior_cloning(s, a, 2, 2, kappa=1.0)
    np.testing.assert_allclose(bc.policy[1, 1], [(1 + 1) / (2 + 2), (1 + 1) / (2 + 2)])
    assert bc.policy.min() > 0


def test_linear_bc_with_one_hot_features_is_the_empirical_frequency():
    """Log-linear MLE with one-hot φ(s,a) is the unregularized tabular MLE (independent closed form)."""
    mdp = _mdp(3, S=3, A=2, H=2)
    tr = dr.sample_trajectories(mdp, np.full((3, 2), 0.5) * np.array([0.7, 0.3]) / 0.5, 3000, np.random.default_rng(0))
    phi = np.eye(6).reshape(3, 2, 6)
    lbc = dr.linear_behavior_cloning(tr.states, tr.actions, phi)
    bc = dr.behavior_cloning(tr.states, tr.actions, 3, 2, kappa=0.0)
    assert lbc.converged
    np.testing.assert_allclose(lbc.policy, bc.policy, atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(tabular_mdps(2, 3, 2, 3, discounted=False, horizon=(1, 3), sparse=False)
       .flatmap(lambda m: st.tuples(st.just(m), policies(m, deterministic=False, stages=True, allow_zeros=False),
                                    policies(m, stages=True))))
def test_trajectory_kl_equals_kl_of_enumerated_trajectory_distributions(args):
    """Claim: E_{π_E} Σ_h KL(π_E,h ‖ π_BC,h) = KL(P_{π_E}(τ) ‖ P_{π_BC}(τ)); golden: enumerate all τ."""
    mdp, pi_b, pi_e = args
    H, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
    P = mdp.dense_P()
    P = P if P.ndim == 4 else np.broadcast_to(P, (H, *P.shape))
    total = 0.0
    for s0 in range(S):
        for traj in itertools.product(range(A), range(S), repeat=H):
            acts, nxt = traj[0::2], traj[1::2]
            pe, pb, s = mdp.mu0[s0], mdp.mu0[s0], s0
            for h in range(H):
                pe *= pi_e[h, s, acts[h]] * P[h, s, acts[h], nxt[h]]
                pb *= pi_b[h, s, acts[h]] * P[h, s, acts[h], nxt[h]]
                s = nxt[h]
            if pe > 0:
                total += pe * np.log(pe / pb)
    assert dr.trajectory_kl(mdp, pi_e, pi_b) == pytest.approx(total, abs=1e-10)


def test_sampler_matches_exact_state_occupancy():
    mdp = _mdp(5)
    pi = _expert(mdp, 0.5)
    tr = dr.sample_trajectories(mdp, pi, 40_000, np.random.default_rng(1))
    d = state_occupancy(mdp, pi)
    freq = np.stack([np.bincount(tr.states[:, h], minlength=4) / 40_000 for h in range(3)])
    assert np.abs(freq - d).max() < 0.015  # ~5 standard errors


def test_bc_kl_decays_like_one_over_n():
    """The BC guarantee of §3 is KL_traj = Õ(S A H / N^E): the exact KL shrinks ~10x per 10x data."""
    mdp = _mdp(7)
    pi_e = _expert(mdp, 0.3)
    rng = np.random.default_rng(2)
    kls = []
    for N in (300, 3000, 30000):
        vals = [dr.trajectory_kl(mdp, pi_e, dr.behavior_cloning(*_sa(dr.sample_trajectories(mdp, pi_e, N, rng)), 4, 2, kappa=0.5).policy)
                for _ in range(5)]
        kls.append(np.mean(vals))
    slope = np.polyfit(np.log([300, 3000, 30000]), np.log(kls), 1)[0]
    assert -1.25 < slope < -0.8


def _sa(tr):
    return tr.states, tr.actions


# ----------------------------------------------------------------------------- planning is optimal
def _occupancy_program(mdp: TabularMDP, lam: float, ref: np.ndarray) -> float:
    """max Σ d_h·r_h − λ Σ_h Σ_{s,a} d_h(s,a) log(d_h(s,a)/(ρ_h(s) π̃_h(a|s))) over the flow polytope."""
    H, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
    P = mdp.dense_P()
    P = P if P.ndim == 4 else np.broadcast_to(P, (H, *P.shape))
    d = [cp.Variable((S, A), nonneg=True) for _ in range(H)]
    cons = [cp.sum(d[0], axis=1) == mdp.mu0]
    for h in range(H - 1):
        cons.append(cp.sum(d[h + 1], axis=1) == sum(P[h, :, a, :].T @ d[h][:, a] for a in range(A)))
    obj = 0
    for h in range(H):
        rho = cp.sum(d[h], axis=1)
        obj += cp.sum(cp.multiply(mdp.reward(h), d[h]))
        obj -= lam * cp.sum(cp.rel_entr(d[h], cp.multiply(cp.reshape(rho, (S, 1), order="C") @ np.ones((1, A)), ref[h])))
    prob = cp.Problem(cp.Maximize(obj), cons)
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)  # 1e-12 is "inaccurate" on the exp cone
    assert prob.status == "optimal", prob.status
    return float(prob.value)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_bellman_policy_solves_the_occupancy_convex_program(seed):
    """The soft-Bellman planner toward π_BC (what RLHF and the decomposition call) attains the optimum
    of the KL-regularized occupancy program (cvxpy, exponential cone)."""
    mdp = _mdp(seed)
    rng = np.random.default_rng(seed)
    ref = rng.dirichlet(np.ones(2), (3, 4))
    lam = 0.3
    res = soft_value_iteration(mdp, lam, pi_ref=ref)
    golden = _occupancy_program(mdp, lam, ref)
    assert res.objective == pytest.approx(golden, abs=1e-6)
    assert soft_policy_evaluation(mdp, res.policy, lam, pi_ref=ref).objective == pytest.approx(golden, abs=1e-6)


# ----------------------------------------------------------------------------- explorers
def test_confidence_bonuses_cover_the_truth_at_the_stated_frequency():
    """On the event the widths are built for (prob ≥ 1 − δ), V̄ ≥ V*_λ, V̲^π ≤ V^π_λ and the
    certificate ≥ V*_λ − V^π_λ. Checked at stopping over 20 seeds (δ = 0.2: expect ≥ 16/20)."""
    mdp = _mdp(11, S=3, A=2, H=3, staged=False)
    lam, delta = 0.5, 0.2
    ref = _expert(mdp, 1.0)
    opt = soft_value_iteration(mdp, lam, pi_ref=ref)
    ok = 0
    for seed in range(20):
        res = dr.regularized_bpi(mdp, ref, lam, 0.2, delta=delta, rng=np.random.default_rng(seed))
        ev = soft_policy_evaluation(mdp, res.policy, lam, pi_ref=ref)
        gap = opt.objective - ev.objective
        ok += bool(np.all(res.upper_values >= opt.values - 1e-12) and np.all(res.lower_values <= ev.values + 1e-12)
                   and res.certificate >= gap and res.converged)
    assert ok >= 16
    assert ok == 20  # Hoeffding + union bound is conservative: in practice it always holds here


def test_ucbvi_certificate_bounds_the_unregularized_gap():
    mdp = _mdp(12, S=3, A=2, H=3, staged=False)
    vi = value_iteration(mdp)
    for seed in range(5):
        res = dr.ucbvi_bpi(mdp, 0.3, rng=np.random.default_rng(seed))
        ev = policy_evaluation(mdp, res.policy)
        assert res.converged
        assert vi.objective - ev.objective <= res.certificate + 1e-12
        assert np.all(res.upper_values >= vi.values - 1e-12)


def test_regularized_explorer_needs_fewer_samples_than_ucbvi_and_scales_like_one_over_epsilon():
    """Thm 5 (paper) vs UCBVI: regularized BPI is Õ(1/ε), unregularized Õ(1/ε²). Measured on a fixed
    instance: the episodes-vs-ε log-log slope is ≈ −1 for λ = 1 and ≈ −2 for UCBVI."""
    mdp = _mdp(13, S=4, A=2, H=3, staged=False)
    eps = np.array([0.3, 0.1, 0.03])
    reg = [dr.regularized_bpi(mdp, None, 1.0, e, rng=np.random.default_rng(0)).episodes for e in eps]
    ucb = [dr.ucbvi_bpi(mdp, e, rng=np.random.default_rng(0), max_episodes=10**7).episodes for e in eps[:2]]
    s_reg = np.polyfit(np.log(eps), np.log(reg), 1)[0]
    s_ucb = np.log(ucb[1] / ucb[0]) / np.log(eps[1] / eps[0])
    assert -1.4 < s_reg < -0.8
    assert -2.4 < s_ucb < -1.6
    assert reg[1] < ucb[1]


def test_linear_explorer_runs_and_certificate_decreases():
    lin = random_linear_mdp(6, 2, 3, horizon=3, seed=0)
    res = dr.linear_regularized_bpi(lin, None, 1.0, 0.05, rng=np.random.default_rng(0), bonus_scale=0.05, max_episodes=20000)
    assert res.policy.shape == (3, 6, 2)
    np.testing.assert_allclose(res.policy.sum(-1), 1.0)
    assert res.history_certificate[-1] < res.history_certificate[0]
    m = lin.to_tabular()
    gap = soft_value_iteration(m, 1.0).objective - soft_policy_evaluation(m, res.policy, 1.0).objective
    assert gap < 0.05


# ----------------------------------------------------------------------------- decomposition
@settings(max_examples=10, deadline=None)
@given(tabular_mdps(1, 4, 1, 3, discounted=False, horizon=(1, 4), sparse=False, reward_range=(0.0, 1.0))
       .flatmap(lambda m: st.tuples(st.just(m), policies(m, stages=True), policies(m, deterministic=False, stages=True, allow_zeros=False),
                                    policies(m, stages=True), st.floats(0.01, 5.0))))
def test_exact_decomposition_adds_up(args):
    """V* − V^π̂ = expert gap + λ KL_E + slack + planning error + policy KL term, each by a different solver."""
    mdp, pi_e, pi_bc, pi_hat, lam = args
    pi_hat = 0.5 * pi_hat + 0.5 * pi_bc  # π̂ ≪ π_BC so its regularized value is finite
    dec = dr.suboptimality_decomposition(mdp, pi_e, pi_bc, pi_hat, lam)
    assert dec.residual < 1e-9
    assert dec.expert_suboptimality >= -1e-9 and dec.kl_term >= 0 and dec.planning_error >= -1e-9
    assert dec.regularized_slack <= 1e-9 and dec.policy_kl_term <= 1e-12
    assert dec.total <= dec.bound + 1e-9
    assert dec.kl_term == pytest.approx(lam * dr.trajectory_kl(mdp, pi_e, pi_bc), rel=1e-12, abs=1e-14)


# ----------------------------------------------------------------------------- RLHF
def test_bt_reward_mle_matches_cvxpy_logistic_regression():
    mdp = _mdp(21, S=3, A=2, H=2)
    pairs = dr.sample_preference_pairs(mdp, np.full((3, 2), 0.5), 200, np.random.default_rng(0))
    ridge = 1e-2
    r_hat = dr.fit_trajectory_reward(pairs, 3, 2, ridge=ridge)
    c1 = np.zeros((200, 12))
    c2 = np.zeros((200, 12))
    for i in range(200):
        for h in range(2):
            c1[i, (h * 3 + pairs.first.states[i, h]) * 2 + pairs.first.actions[i, h]] += 1
            c2[i, (h * 3 + pairs.second.states[i, h]) * 2 + pairs.second.actions[i, h]] += 1
    y = 2.0 * pairs.first_preferred - 1.0
    th = cp.Variable(12)
    obj = cp.sum(cp.logistic(-cp.multiply(y, (c1 - c2) @ th))) / 200 + ridge / 2 * cp.sum_squares(th)
    cp.Problem(cp.Minimize(obj)).solve(solver="CLARABEL", **TIGHT)
    np.testing.assert_allclose(r_hat.ravel(), th.value, atol=1e-5)


def test_demo_regularized_rlhf_beats_uniform_regularization_with_few_pairs():
    """§5's claim, on one instance: with few preference pairs, regularizing toward π_BC (good demos)
    gives a smaller true suboptimality than the same pipeline toward uniform (mean over 5 draws)."""
    mdp = _mdp(22, S=5, A=3, H=3)
    pi_e = _expert(mdp, 0.05)
    rng = np.random.default_rng(0)
    demo, unif = [], []
    for _ in range(5):
        tr = dr.sample_trajectories(mdp, pi_e, 200, rng)
        bc = dr.behavior_cloning(tr.states, tr.actions, 5, 3, kappa=0.1).policy
        pairs = dr.sample_preference_pairs(mdp, bc, 30, rng)
        demo.append(dr.demo_regularized_rlhf(mdp, bc, pairs, 0.1).suboptimality)
        unif.append(dr.demo_regularized_rlhf(mdp, None, pairs, 0.1).suboptimality)
    assert np.mean(demo) < np.mean(unif)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("states", "actions", "match"),
    [
        (np.zeros((0, 3), int), np.zeros((0, 3), int), "empty"),
        (np.array([[0, 5]]), np.array([[0, 0]]), r"states\[0, 1\] = 5"),
        (np.array([[0, 1]]), np.array([[0, -1]]), r"actions\[0, 1\] = -1"),
        (np.array([[0, 1]]), np.array([[0, 1, 1]]), "same shape"),
        (np.array([[0.5, 1]]), np.array([[0, 1]]), "integers"),
        (np.array([0, 1]), np.array([0, 1]), "shape"),
    ],
)
def test_bad_demonstrations_raise(states, actions, match):
    with pytest.raises(ValueError, match=match):
        dr.behavior_cloning(states, actions, 3, 2, kappa=1.0)


def test_bad_parameters_raise():
    mdp = _mdp(0)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="kappa"):
        dr.behavior_cloning(np.zeros((1, 3), int), np.zeros((1, 3), int), 4, 2, kappa=-1.0)
    for lam in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="lam"):
            dr.regularized_bpi(mdp, None, lam, 0.1, rng=rng)
        with pytest.raises(ValueError, match="lam"):
            dr.suboptimality_decomposition(mdp, np.full((4, 2), 0.5), np.full((4, 2), 0.5), np.full((4, 2), 0.5), lam)
    with pytest.raises(ValueError, match="epsilon"):
        dr.regularized_bpi(mdp, None, 1.0, 0.0, rng=rng)
    with pytest.raises(ValueError, match="delta"):
        dr.ucbvi_bpi(mdp, 0.1, delta=1.5, rng=rng)
    with pytest.raises(ValueError, match="finite-horizon"):
        dr.ucbvi_bpi(TabularMDP(mdp.dense_P()[0], mdp.r[0], gamma=0.9), 0.1, rng=rng)
    with pytest.raises(ValueError, match=r"rewards in \[0, 1\]"):
        dr.ucbvi_bpi(TabularMDP(mdp.dense_P(), 2 * mdp.r, horizon=3, reward_axes="hsa"), 0.1, rng=rng)
    with pytest.raises(ValueError, match="num_episodes"):
        dr.sample_trajectories(mdp, np.full((4, 2), 0.5), 0, rng)
    with pytest.raises(ValueError, match="LinearMDP"):
        dr.linear_regularized_bpi(mdp, None, 1.0, 0.1, rng=rng)
    with pytest.raises(ValueError, match="lam"):
        dr.linear_regularized_bpi(random_linear_mdp(4, 2, 2, horizon=2, seed=0), None, 0.0, 0.1, rng=rng)
    with pytest.raises(ValueError, match="pi_ref"):
        dr.regularized_bpi(mdp, np.full((4, 3), 1 / 3), 1.0, 0.1, rng=rng)
    tr = dr.sample_trajectories(mdp, np.full((4, 2), 0.5), 5, rng)
    pairs = dr.PreferencePairs(first=tr, second=tr, first_preferred=np.ones(5, int))
    wrong = TabularMDP(P=mdp.dense_P()[0], R=mdp.r[0], horizon=4)
    with pytest.raises(ValueError, match="horizon"):
        dr.demo_regularized_rlhf(wrong, None, pairs, 0.1)
    with pytest.raises(ValueError, match=r"pi_expert must have shape .* got \(3, 4, 2\)"):
        dr.suboptimality_decomposition(wrong, np.full((3, 4, 2), 0.5), np.full((4, 2), 0.5), np.full((4, 2), 0.5), 0.1)


# ----------------------------------------------------------------------------- the derived inequalities
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10**6), st.integers(2, 6), st.floats(0.01, 10.0))
def test_tilt_gap_bound_dominates_the_exact_kl_between_tilts(seed, A, lam):
    """λ KL(π_Q̄ ‖ π_Q*) ≤ tilt_gap_bound(π_Q̄, D, λ) whenever 0 ≤ Q̄ − Q* ≤ D; golden: exact KL of the tilts."""
    from rlref.divergences import kl
    from rlref.solve import soft_greedy

    rng = np.random.default_rng(seed)
    ref = rng.dirichlet(np.ones(A))
    q_star = rng.uniform(0, 3, A)
    D = rng.uniform(0, 3, A) * (rng.random(A) < 0.7)
    q_up = q_star + D * rng.random(A)
    pi, pi_star = soft_greedy(q_up, ref, lam), soft_greedy(q_star, ref, lam)
    assert lam * kl(pi, pi_star) <= dr.tilt_gap_bound(pi, D, lam) + 1e-12


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10**6), st.integers(2, 6), st.floats(0.1, 5.0))
def test_kl_upper_mean_bounds_the_true_mean(seed, S, F):
    """p f ≤ U(p̂ f, α, F) whenever KL(p̂ ‖ p) ≤ α and f ∈ [0, F] (Donsker-Varadhan; derived here)."""
    from rlref.divergences import kl

    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(S))
    p_hat = rng.multinomial(rng.integers(1, 50), p).astype(float)
    p_hat /= p_hat.sum()
    f = rng.uniform(0, F, S) * (rng.random(S) < 0.6)
    alpha = kl(p_hat, p)
    assert p @ f <= dr.kl_upper_mean(p_hat @ f, alpha, F) + 1e-12
    assert dr.kl_upper_mean(p_hat @ f, np.inf, F) == F
