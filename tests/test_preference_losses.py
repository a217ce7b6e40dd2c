"""Tests for rlref.algorithms.preference_losses: the DPO family and RTO on a token tree."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from rlref.algorithms.preference_losses import (
    chosen_distribution,
    dpo_bt_minimizer,
    dpo_loss,
    ipo_loss,
    ipo_minimizer,
    ipo_product_closed_form,
    kl_regularized_optimum,
    ld_dpo_coefficients,
    ld_dpo_loss,
    minimize_population_loss,
    pair_distribution,
    rpo_loss,
    rto_plan,
    rto_token_rewards,
    xpo_bounded_below,
    xpo_loss,
)
from rlref.preferences import bradley_terry
from rlref.tokentree import TokenTree

SETTINGS = settings(max_examples=15, deadline=None)


def instance(n: int, seed: int):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=n)
    ref = rng.dirichlet(np.ones(n) * 3)
    ref = (ref + 0.01) / (ref + 0.01).sum()
    B = rng.uniform(-0.5, 0.5, (n, n))
    P_gen = 0.5 + (B - B.T) / 2
    ell = rng.integers(1, 8, size=n).astype(float)
    return rng, r, ref, P_gen, ell


def all_losses(P, mu, ref, ell):
    return {
        "dpo": lambda th: dpo_loss(th, P, mu, ref, 0.7),
        "ipo": lambda th: ipo_loss(th, P, mu, ref, 0.4),
        "rpo": lambda th: rpo_loss(th, P, mu, ref, 0.7, 0.5),
        "xpo": lambda th: xpo_loss(th, P, mu, ref, 0.7, 0.05),
        "ld_dpo": lambda th: ld_dpo_loss(th, P, mu, ref, 0.7, 0.4, ell),
    }


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", ["dpo", "ipo", "rpo", "xpo", "ld_dpo"])
@given(seed=st.integers(0, 10_000))
@settings(max_examples=8, deadline=None)
def test_exact_gradients_match_finite_differences(name, seed):
    rng, _, ref, P, ell = instance(5, seed)
    mu = rng.dirichlet(np.ones(25)).reshape(5, 5)
    fn = all_losses(P, mu, ref, ell)[name]
    theta = rng.normal(size=5)
    _, g = fn(theta)
    eps = 1e-6
    fd = np.array([(fn(theta + eps * e)[0] - fn(theta - eps * e)[0]) / (2 * eps) for e in np.eye(5)])
    np.testing.assert_allclose(g, fd, atol=1e-7, rtol=1e-6)


def test_dpo_loss_matches_direct_sum_over_pairs():
    """Independent evaluation: enumerate ordered pairs and labels."""
    _, r, ref, P, _ = instance(4, 1)
    mu = pair_distribution(ref)
    theta = np.array([0.3, -0.2, 1.0, 0.1])
    pi = np.exp(theta) / np.exp(theta).sum()
    beta = 0.7
    total = 0.0
    for y in range(4):
        for yp in range(4):
            h = beta * (np.log(pi[y] / ref[y]) - np.log(pi[yp] / ref[yp]))
            total += mu[y, yp] * (P[y, yp] * np.log1p(np.exp(-h)) + P[yp, y] * np.log1p(np.exp(h)))
    assert dpo_loss(theta, P, mu, ref, beta)[0] == pytest.approx(total, rel=1e-12)


# ----------------------------------------------------------------------------- closed forms
@given(seed=st.integers(0, 10_000), beta=st.sampled_from([0.1, 0.5, 2.0]))
@SETTINGS
def test_dpo_population_minimizer_is_pi_ref_exp_r_over_beta(seed, beta):
    """Rafailov et al. (2023): under BT preferences the DPO optimum is π_ref exp(r/β)/Z."""
    rng, r, ref, _, _ = instance(5, seed)
    P = bradley_terry(r)
    mu = pair_distribution(rng.dirichlet(np.ones(5)) * 0.9 + 0.02)
    opt = minimize_population_loss(lambda th: dpo_loss(th, P, mu, ref, beta), np.log(ref))
    assert opt.converged
    expected = ref * np.exp(r / beta)
    np.testing.assert_allclose(opt.pi, expected / expected.sum(), atol=1e-7)
    np.testing.assert_allclose(dpo_bt_minimizer(r, ref, beta), expected / expected.sum(), rtol=1e-12)


@given(seed=st.integers(0, 10_000))
@SETTINGS
def test_ipo_minimizer_closed_form_matches_lbfgs_for_general_and_product_mu(seed):
    """Azar et al. (2023): for μ = ν⊗ν the IPO optimum is π_ref exp(P(y≻ν)/τ)/Z; for a general μ
    the Laplacian solve (derived here) matches numerical minimization."""
    rng, _, ref, P, _ = instance(5, seed)
    tau = 0.3
    nu = rng.dirichlet(np.ones(5)) * 0.9 + 0.02
    mu = pair_distribution(nu)
    opt = minimize_population_loss(lambda th: ipo_loss(th, P, mu, ref, tau), np.log(ref))
    np.testing.assert_allclose(opt.pi, ipo_product_closed_form(P, nu, ref, tau), atol=1e-7)
    np.testing.assert_allclose(ipo_minimizer(P, mu, ref, tau), ipo_product_closed_form(P, nu, ref, tau), atol=1e-10)
    mu2 = rng.dirichlet(np.ones(25)).reshape(5, 5)
    opt2 = minimize_population_loss(lambda th: ipo_loss(th, P, mu2, ref, tau), np.log(ref))
    np.testing.assert_allclose(opt2.pi, ipo_minimizer(P, mu2, ref, tau), atol=1e-7)


def test_ld_dpo_with_alpha_one_is_dpo_and_coefficients():
    rng, r, ref, P, ell = instance(5, 3)
    mu = pair_distribution(ref)
    th = rng.normal(size=5)
    a, ga = ld_dpo_loss(th, P, mu, ref, 0.5, 1.0, ell)
    b, gb = dpo_loss(th, P, mu, ref, 0.5)
    assert a == pytest.approx(b, rel=1e-12)
    np.testing.assert_allclose(ga, gb, atol=1e-12)
    C = ld_dpo_coefficients(np.array([2.0, 5.0]), 0.5)
    # the shorter response counts fully; the longer counts 2 tokens fully and 3 with weight 1/2
    np.testing.assert_allclose(C, [[1.0, 1.0], [(2 + 0.5 * 3) / 5, 1.0]])


def test_rpo_with_eta_zero_is_dpo_and_chosen_distribution_sums_to_one():
    rng, _, ref, P, _ = instance(4, 5)
    mu = pair_distribution(ref)
    th = rng.normal(size=4)
    assert rpo_loss(th, P, mu, ref, 0.5, 0.0)[0] == pytest.approx(dpo_loss(th, P, mu, ref, 0.5)[0])
    c = chosen_distribution(P, mu)
    assert c.sum() == pytest.approx(1.0)
    assert np.all(c >= 0)


def test_rpo_sft_term_pulls_towards_base_distribution():
    """Liu et al. (2024): the SFT term regularizes towards π_base; with large η the optimum → π_base."""
    _, r, ref, _, _ = instance(4, 6)
    P = bradley_terry(r)
    mu = pair_distribution(ref)
    base = np.array([0.4, 0.3, 0.2, 0.1])
    dist = []
    for eta in (0.0, 1.0, 100.0):
        o = minimize_population_loss(lambda th, e=eta: rpo_loss(th, P, mu, ref, 0.5, e, pi_base=base), np.log(ref))
        dist.append(np.abs(o.pi - base).sum())
    assert dist[0] > dist[1] > dist[2]
    assert dist[2] < 0.05


def test_xpo_boundedness_condition():
    """Derived here: XPO's loss is bounded below iff α π_ex(S) <= β·(win mass of S vs its complement)
    for all subsets S. Above the threshold the loss decreases without bound along θ − s·1_S."""
    _, r, ref, _, ell = instance(4, 7)
    P = bradley_terry(r + 0.3 * ell)
    mu = pair_distribution(ref)
    beta = 0.5
    assert xpo_bounded_below(P, mu, beta, 0.0, ref)
    assert not xpo_bounded_below(P, mu, beta, 10.0, ref)
    # find the threshold by bisection and check the ray behaviour on both sides
    lo, hi = 0.0, 10.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if xpo_bounded_below(P, mu, beta, mid, ref) else (lo, mid)
    for alpha, bounded in ((0.9 * lo, True), (1.1 * hi, False)):
        values = []
        for S in range(1, 15):
            d = -np.array([(S >> k) & 1 for k in range(4)], dtype=float)
            values.append(xpo_loss(1e4 * d, P, mu, ref, beta, alpha)[0] - xpo_loss(1e3 * d, P, mu, ref, beta, alpha)[0])
        assert (min(values) > -1e-6) == bounded


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_raise():
    _, _, ref, P, ell = instance(3, 0)
    mu = pair_distribution(ref)
    th = np.zeros(3)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(th, P, mu, ref, 0.0)
    with pytest.raises(ValueError, match="tau"):
        ipo_loss(th, P, mu, ref, -1.0)
    with pytest.raises(ValueError, match="mu"):
        dpo_loss(th, P, np.ones((3, 3)), ref, 1.0)
    with pytest.raises(ValueError, match="pi_ref"):
        dpo_loss(th, P, mu, np.array([1.0, 0.0, 0.0]), 1.0)
    with pytest.raises(ValueError, match="alpha"):
        ld_dpo_loss(th, P, mu, ref, 1.0, 1.5, ell)
    with pytest.raises(ValueError, match="lengths"):
        ld_dpo_loss(th, P, mu, ref, 1.0, 0.5, np.array([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="P"):
        dpo_loss(th, np.full((3, 3), 0.7), mu, ref, 1.0)
    with pytest.raises(ValueError, match="eta"):
        rpo_loss(th, P, mu, ref, 1.0, -1.0)


def test_shape_mismatches_raise_instead_of_broadcasting():
    _, _, ref, P, _ = instance(3, 0)
    mu = pair_distribution(ref)
    with pytest.raises(ValueError, match=r"mu must have shape \(3, 3\)"):
        chosen_distribution(P, ref[None, :])  # a (1, 3) "mu" would broadcast silently
    with pytest.raises(ValueError, match=r"r must have the outcome axis of pi_ref last: pi_ref has 3 outcomes"):
        kl_regularized_optimum(np.zeros(1), ref, 1.0)
    with pytest.raises(ValueError, match=r"pi_ref must have shape \(3,\)"):
        ipo_product_closed_form(P, ref, np.ones(1), 1.0)
    with pytest.raises(ValueError, match=r"nu must have shape \(3,\)"):
        ipo_product_closed_form(P, np.ones(1), ref, 1.0)
    with pytest.raises(ValueError, match="restarts must be an integer >= 0"):
        minimize_population_loss(lambda t: dpo_loss(t, P, mu, ref, 1.0), np.zeros(3), restarts=-1)


# ----------------------------------------------------------------------------- RTO on a token tree
def tree_instance(seed: int, V: int = 3, L: int = 3):
    rng = np.random.default_rng(seed)
    tree = TokenTree(V, L)
    ref = rng.dirichlet(np.ones(V) * 2, size=tree.num_prefixes)
    R = rng.normal(size=tree.num_sequences)
    return tree, ref, R


@given(seed=st.integers(0, 10_000), beta=st.sampled_from([0.2, 1.0, 3.0]))
@SETTINGS
def test_rto_token_rewards_telescope_to_dpo_implicit_reward(seed, beta):
    """Zhong et al. (2024): Σ_t β log π_dpo(y_t|x_t)/π_ref(y_t|x_t) = β log π_dpo(y)/π_ref(y) = r(y) − β log Z."""
    tree, ref, R = tree_instance(seed)
    log_ref = tree.sequence_logprobs(ref)
    pi_dpo = kl_regularized_optimum(R, np.exp(log_ref), beta)
    tok = tree.policy_from_sequence_distribution(pi_dpo)
    np.testing.assert_allclose(tree.sequence_logprobs(tok), np.log(pi_dpo), atol=1e-12)
    rewards = rto_token_rewards(tree, tok, ref, beta)
    total = np.zeros(tree.num_sequences)
    for i, y in enumerate(tree.sequences):  # walk each response explicitly
        for t, v in enumerate(y):
            total[i] += rewards[tree.prefix_index(y[:t]), v]
    logZ = logsumexp(log_ref + R / beta)
    np.testing.assert_allclose(total, R - beta * logZ, atol=1e-10)


@given(seed=st.integers(0, 10_000), beta=st.sampled_from([0.3, 1.0]), beta2=st.sampled_from([0.5, 2.0]))
@SETTINGS
def test_planning_with_rto_reward_recovers_kl_regularized_optimum(seed, beta, beta2):
    """Exact planning with the dense RTO reward and KL strength β' gives π_ref exp(r/β')/Z: the
    token reward differs from r(y) by a constant."""
    tree, ref, R = tree_instance(seed)
    log_ref = tree.sequence_logprobs(ref)
    tok = tree.policy_from_sequence_distribution(kl_regularized_optimum(R, np.exp(log_ref), beta))
    plan = rto_plan(tree, rto_token_rewards(tree, tok, ref, beta), ref, beta2)
    got = tree.sequence_distribution(plan.policy)
    np.testing.assert_allclose(got, kl_regularized_optimum(R, np.exp(log_ref), beta2), atol=1e-10)
    # the sparse sequence reward gives the same optimum and the soft value β log E_ref exp(r/β)
    sparse = rto_plan(tree, None, ref, beta2, terminal_reward=R)
    np.testing.assert_allclose(tree.sequence_distribution(sparse.policy), got, atol=1e-10)
    assert sparse.root_value == pytest.approx(beta2 * logsumexp(log_ref + R / beta2), abs=1e-10)


def test_rto_rejects_dpo_mass_outside_the_reference():
    tree = TokenTree(2, 1)
    with pytest.raises(ValueError, match="infinite token reward"):
        rto_token_rewards(tree, np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]), 1.0)
