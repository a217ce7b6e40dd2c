"""Tests for rlref.linear: each test names the claim it checks.

Values are computed here with a local dense solver (not with rlref.solve or the code under test).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref import TabularMDP
from rlref.envs import garnet, gridworld
from rlref.linear import (
    LinearMDP,
    feature_expectation,
    from_tabular,
    linear_q_from_features,
    one_hot_features,
    policy_q_weights,
    random_linear_mdp,
    random_low_rank_features,
)


def q_of_policy(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """Q^π = r + γ P V^π with V^π from a dense linear solve (discounted)."""
    P = mdp.dense_P()
    S = mdp.num_states
    P_pi = np.einsum("sa,sat->st", pi, P)
    v = np.linalg.solve(np.eye(S) - mdp.gamma * P_pi, np.einsum("sa,sa->s", pi, mdp.r))
    return mdp.r + mdp.gamma * P @ v


def random_policy(rng: np.random.Generator, S: int, A: int) -> np.ndarray:
    return rng.dirichlet(np.ones(A), size=S)


# ------------------------------------------------------------------------------ construction


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), S=st.integers(1, 8), A=st.integers(1, 4), d=st.integers(1, 5))
def test_random_linear_mdp_induces_a_stochastic_kernel(seed, S, A, d):
    lin = random_linear_mdp(S, A, d, rng=np.random.default_rng(seed), gamma=0.8)
    tab = lin.to_tabular()
    assert isinstance(tab, TabularMDP) and tab.gamma == 0.8
    assert np.all(tab.P >= 0)
    np.testing.assert_allclose(tab.P.sum(axis=-1), 1.0, atol=1e-12)
    # P and r are the bilinear forms of the definition, entry by entry
    np.testing.assert_allclose(tab.P, np.einsum("sad,dt->sat", lin.phi, lin.mu), atol=1e-14)
    np.testing.assert_allclose(tab.r, np.einsum("sad,d->sa", lin.phi, lin.theta), atol=1e-14)
    assert np.all((tab.r >= 0) & (tab.r <= 1))


def test_random_linear_mdp_is_seeded():
    a = random_linear_mdp(5, 2, 3, seed=4)
    b = random_linear_mdp(5, 2, 3, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a.phi, b.phi)
    np.testing.assert_array_equal(a.mu, b.mu)
    assert not np.array_equal(a.phi, random_linear_mdp(5, 2, 3, seed=5).phi)


def test_random_low_rank_features_on_simplex_and_rank():
    phi = random_low_rank_features(10, 3, 4, seed=0)
    assert phi.shape == (10, 3, 4) and np.all(phi >= 0)
    np.testing.assert_allclose(phi.sum(-1), 1.0)
    assert np.linalg.matrix_rank(phi.reshape(30, 4)) == 4
    # the induced transition matrix (S·A, S) has rank <= d
    lin = random_linear_mdp(10, 3, 2, seed=1)
    assert np.linalg.matrix_rank(lin.P.reshape(30, 10)) <= 2


def test_one_hot_features_are_the_identity():
    phi = one_hot_features(3, 2)
    assert phi.shape == (3, 2, 6)
    np.testing.assert_array_equal(phi.reshape(6, 6), np.eye(6))


@pytest.mark.parametrize("make", [lambda: garnet(7, 3, 3, seed=2, gamma=0.7), lambda: gridworld(["S.#", "..G"], slip=0.2)])
def test_one_hot_linear_mdp_reproduces_the_tabular_mdp_exactly(make):
    mdp = make()
    lin = from_tabular(mdp)
    tab = lin.to_tabular()
    assert lin.dim == mdp.num_states * mdp.num_actions
    np.testing.assert_array_equal(tab.P, mdp.dense_P())
    np.testing.assert_array_equal(tab.r, mdp.r)
    np.testing.assert_array_equal(tab.mu0, mdp.mu0)
    assert tab.gamma == mdp.gamma
    # and so Q^π agrees for a random policy
    pi = random_policy(np.random.default_rng(0), mdp.num_states, mdp.num_actions)
    np.testing.assert_allclose(policy_q_weights(lin, pi).q, q_of_policy(mdp, pi), atol=1e-10)


def test_from_tabular_sparse_and_finite_horizon():
    sparse = garnet(6, 2, 2, seed=0, sparse=True, horizon=3)
    lin = from_tabular(sparse)
    assert lin.horizon == 3 and lin.gamma == 1.0
    np.testing.assert_array_equal(lin.P, sparse.dense_P())


# ------------------------------------------------------------------------------ Q^π is linear in φ


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), gamma=st.floats(0.0, 0.95))
def test_q_pi_lies_in_the_span_of_phi_for_every_policy(seed, gamma):
    """Jin et al. (2020), Prop. 2.3: Q^π = φ w^π with w^π = θ + γ μ V^π, for any π."""
    rng = np.random.default_rng(seed)
    S, A, d = 8, 3, 3
    lin = random_linear_mdp(S, A, d, rng=rng, gamma=gamma)
    pi = random_policy(rng, S, A)
    q = q_of_policy(lin.to_tabular(), pi)  # independent of policy_q_weights
    fit = linear_q_from_features(lin.phi, q)
    assert fit.residual < 1e-9 * max(1.0, np.abs(q).max())
    lq = policy_q_weights(lin, pi)
    np.testing.assert_allclose(lq.q, q, atol=1e-10)
    np.testing.assert_allclose(lin.phi @ lq.weights, q, atol=1e-10)


def test_q_of_a_non_linear_mdp_is_not_in_the_span():
    """The span test has teeth: a generic tabular MDP's Q^π is not linear in random low-rank features."""
    rng = np.random.default_rng(0)
    mdp = garnet(8, 3, 4, seed=1, gamma=0.9)
    phi = random_low_rank_features(8, 3, 3, rng=rng)
    q = q_of_policy(mdp, random_policy(rng, 8, 3))
    assert linear_q_from_features(phi, q).residual > 1e-3


def test_finite_horizon_q_weights_match_backward_induction():
    lin = random_linear_mdp(5, 2, 2, seed=3, horizon=4)
    rng = np.random.default_rng(1)
    pi = np.stack([random_policy(rng, 5, 2) for _ in range(4)])
    P, r = lin.P, lin.r
    v = np.zeros(5)
    qs = []
    for h in range(3, -1, -1):
        q = r + P @ v
        qs.append(q)
        v = np.einsum("sa,sa->s", pi[h], q)
    expected = np.stack(qs[::-1])
    lq = policy_q_weights(lin, pi)
    assert lq.weights.shape == (4, 2)
    np.testing.assert_allclose(lq.q, expected, atol=1e-12)
    np.testing.assert_allclose(lq.v[0], v, atol=1e-12)


# ------------------------------------------------------------------------------ feature expectations


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_feature_expectation_times_theta_is_the_policy_value(seed):
    rng = np.random.default_rng(seed)
    lin = random_linear_mdp(6, 2, 3, rng=rng, gamma=0.85)
    pi = random_policy(rng, 6, 2)
    tab = lin.to_tabular()
    q = q_of_policy(tab, pi)
    value = float(tab.mu0 @ np.einsum("sa,sa->s", pi, q))
    assert float(feature_expectation(lin, pi) @ lin.theta) == pytest.approx(value, rel=1e-10, abs=1e-12)


def test_feature_expectation_by_monte_carlo_free_unrolling():
    """Discounted ψ^π equals the truncated sum Σ_{t<T} γ^t E[φ(s_t, a_t)] for large T."""
    lin = random_linear_mdp(4, 2, 2, seed=0, gamma=0.5)
    pi = np.full((4, 2), 0.5)
    dist, total = lin.mu0.copy(), np.zeros(2)
    for t in range(80):
        total += 0.5**t * np.einsum("s,sa,sad->d", dist, pi, lin.phi)
        dist = np.einsum("s,sa,sat->t", dist, pi, lin.P)
    np.testing.assert_allclose(feature_expectation(lin, pi), total, atol=1e-12)
    # finite horizon: Σ_{h<H} E[φ]; with H = 1 it is E_{μ0, π}[φ(s_0, a_0)]
    lin1 = random_linear_mdp(4, 2, 2, seed=0, horizon=1)
    np.testing.assert_allclose(feature_expectation(lin1, pi), np.einsum("s,sa,sad->d", lin1.mu0, pi, lin1.phi))
    # a TabularMDP needs explicit features
    with pytest.raises(ValueError, match="phi"):
        feature_expectation(lin.to_tabular(), pi)
    np.testing.assert_allclose(feature_expectation(lin.to_tabular(), pi, phi=lin.phi), total, atol=1e-12)


# ------------------------------------------------------------------------------ bad inputs


def _valid_parts():
    lin = random_linear_mdp(4, 2, 2, seed=0)
    return np.array(lin.phi), np.array(lin.mu), np.array(lin.theta)


def test_negative_features_raise():
    phi, mu, theta = _valid_parts()
    phi[1, 0] = [1.5, -0.5]
    mu[1] = np.eye(4)[0]
    mu[0] = np.eye(4)[1]
    with pytest.raises(ValueError, match="negative"):
        LinearMDP(phi, mu, theta, gamma=0.9)


def test_rows_not_summing_to_one_raise():
    phi, mu, theta = _valid_parts()
    with pytest.raises(ValueError, match="!= 1"):
        LinearMDP(phi * 2.0, mu, theta, gamma=0.9)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda p, m, t: (p, m[:, :3], t), "mu must have shape"),
        (lambda p, m, t: (p, m, t[:1]), "theta must have shape"),
        (lambda p, m, t: (p[0], m, t), "phi must have 3"),
        (lambda p, m, t: (p, m, np.array([np.nan, 0.0])), "theta must be finite"),
    ],
)
def test_bad_shapes_and_values_raise(change, match):
    phi, mu, theta = change(*_valid_parts())
    with pytest.raises(ValueError, match=match):
        LinearMDP(phi, mu, theta, gamma=0.9)


def test_gamma_is_required_and_checked():
    phi, mu, theta = _valid_parts()
    with pytest.raises(ValueError, match="gamma"):
        LinearMDP(phi, mu, theta)
    with pytest.raises(ValueError, match="gamma"):
        LinearMDP(phi, mu, theta, gamma=1.5)


def test_helper_bad_inputs_raise():
    with pytest.raises(ValueError, match="dim"):
        random_linear_mdp(3, 2, 0, seed=0)
    with pytest.raises(ValueError, match="concentration"):
        random_low_rank_features(3, 2, 2, seed=0, concentration=-1.0)
    with pytest.raises(ValueError, match="q must have shape"):
        linear_q_from_features(one_hot_features(2, 2), np.zeros((3, 2)))
    lin = random_linear_mdp(3, 2, 2, seed=0)
    with pytest.raises(ValueError, match="pi"):
        policy_q_weights(lin, np.full((3, 2), 0.7))


def test_feature_expectation_on_sparse_and_staged_tabular_mdps_matches_unrolling():
    """ψ^π on a sparse P (never densified) and a stage-dependent P equals explicit forward unrolling."""
    import scipy.sparse as sp

    rng = np.random.default_rng(4)
    S, A, d, H = 6, 2, 3, 4
    P = rng.dirichlet(np.ones(S), (S, A))
    phi = rng.normal(size=(S, A, d))
    pi = rng.dirichlet(np.ones(A), S)
    mu0 = rng.dirichlet(np.ones(S))
    sparse = TabularMDP(sp.csr_matrix(P.reshape(S * A, S)), np.zeros((S, A)), gamma=0.8, mu0=mu0)
    dist, total = mu0.copy(), np.zeros(d)
    for t in range(400):  # Σ_t γ^t E[φ(s_t, a_t)], truncated at γ^400 ≈ 1e-39
        total += 0.8**t * np.einsum("s,sa,sad->d", dist, pi, phi)
        dist = np.einsum("s,sa,sat->t", dist, pi, P)
    np.testing.assert_allclose(feature_expectation(sparse, pi, phi=phi), total, atol=1e-12)
    assert sparse.is_sparse
    Ph = rng.dirichlet(np.ones(S), (H, S, A))
    pih = rng.dirichlet(np.ones(A), (H, S))
    staged = TabularMDP(Ph, np.zeros((S, A)), horizon=H, gamma=0.9, mu0=mu0)
    dist, total = mu0.copy(), np.zeros(d)
    for h in range(H):
        total += 0.9**h * np.einsum("s,sa,sad->d", dist, pih[h], phi)
        dist = np.einsum("s,sa,sat->t", dist, pih[h], Ph[h])
    np.testing.assert_allclose(feature_expectation(staged, pih, phi=phi), total, atol=1e-12)


def test_random_linear_builders_refuse_a_negative_seed():
    """Issue #11 item 18: seed=-1 is a ValueError naming ``seed`` (not a bare numpy error)."""
    with pytest.raises(ValueError, match="seed must be None, a non-negative integer"):
        random_low_rank_features(3, 2, 2, seed=-1)
    with pytest.raises(ValueError, match="seed must be None, a non-negative integer"):
        random_linear_mdp(3, 2, 2, seed=-1)
