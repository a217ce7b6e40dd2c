"""Tests of the library functions that used to live inside reproductions (issue #9: experiments
hold no library logic). Golden values come from closed forms or an independent solver.

* ``rlref.theory.kl_regularized.sample_best_of_n`` (was inline in ``best_of_n.py``)
* ``rlref.theory.correlated_proxies.chi2_regularized_optimum`` (was ``_chi2_target``, a cvxpy program)
* ``rlref.algorithms.preference_losses.ld_dpo_token_minimizer`` (was ``_ld_dpo_target``)
* ``rlref.preferences.random_preference_matrix`` (was ``_random_intransitive``, in two reproductions)
* ``rlref.algorithms.preference_losses.xpo_max_alpha`` (was a bisection in ``dpo_family_tabular.py``)
* ``rlref.envs.transforms.mix_transitions`` and ``rlref.theory.simulation.transition_l1_errors`` /
  ``simulation_lemma_bound`` (were ``_mixed_mdp``, ``_l1_rows`` and an inline bound in ``solver_certificates.py``)
* ``rlref.envs.transforms.empirical_mdp`` (was ``empirical_model`` in ``lipschitz_value.py``)
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.preference_losses import (
    dpo_bt_minimizer,
    ld_dpo_token_minimizer,
    pair_distribution,
    xpo_bounded_below,
    xpo_max_alpha,
)
from rlref.preferences import bradley_terry, random_preference_matrix, validate_preference_matrix
from rlref.theory.correlated_proxies import chi2_regularized_optimum
from rlref.theory.kl_regularized import best_of_n_distribution, sample_best_of_n
from rlref.tokentree import TokenTree


# ----------------------------------------------------------------------------- best-of-n sampler
def test_best_of_n_sampler_two_outcomes_closed_form() -> None:
    """π_ref = (½, ½), r = (0, 1), n = 2: the better outcome is returned unless both draws are 0, so P = 3/4."""
    y = sample_best_of_n([0.5, 0.5], [0.0, 1.0], 2, 200_000, np.random.default_rng(0))
    freq = float(np.mean(y == 1))
    assert abs(freq - 0.75) < 5 * np.sqrt(0.75 * 0.25 / y.size)


def test_best_of_n_sampler_breaks_ties_uniformly() -> None:
    """Two tied top outcomes of masses .3 and .1 below a third of mass .6: given the top level, the
    choice is π_ref restricted to it, i.e. 3 : 1 (closed form 1 − .6^n for the level)."""
    ref, r, n = np.array([0.3, 0.1, 0.6]), np.array([1.0, 1.0, 0.0]), 3
    y = sample_best_of_n(ref, r, n, 200_000, np.random.default_rng(1))
    top = 1 - 0.6**n
    for k, expected in ((0, top * 0.75), (1, top * 0.25), (2, 0.6**n)):
        f = float(np.mean(y == k))
        assert abs(f - expected) < 5 * np.sqrt(expected * (1 - expected) / y.size)


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 6), st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_best_of_n_sampler_matches_the_exact_law(k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.dirichlet(np.ones(k))
    r = rng.integers(0, 3, k).astype(float)  # ties are common
    trials = 40_000
    emp = np.bincount(sample_best_of_n(ref, r, n, trials, rng), minlength=k) / trials
    exact = best_of_n_distribution(ref, r, n)
    z = np.abs(emp - exact) / np.sqrt(exact * (1 - exact) / trials + 1e-300)
    assert np.all(z[exact > 0] < 5.5)
    assert np.all(emp[exact == 0] == 0)


def test_best_of_n_sampler_rejects_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n"):
        sample_best_of_n([0.5, 0.5], [0, 1], 0, 10, rng)
    with pytest.raises(ValueError, match="size"):
        sample_best_of_n([0.5, 0.5], [0, 1], 2, 0, rng)
    with pytest.raises(ValueError, match="pi_ref"):
        sample_best_of_n([0.5, 0.6], [0, 1], 2, 10, rng)
    with pytest.raises(ValueError, match="rng"):
        sample_best_of_n([0.5, 0.5], [0, 1], 2, 10, 0)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- χ² optimum
def _chi2_cvxpy(p_ref: np.ndarray, r: np.ndarray, lam: float) -> np.ndarray:
    """Independent oracle: the concave program max r·p − λ(Σ p²/p_ref − 1) over the simplex (Clarabel)."""
    p = cp.Variable(p_ref.size)
    obj = r @ p - lam * (cp.sum(cp.multiply(1.0 / p_ref, cp.square(p))) - 1.0)
    cp.Problem(cp.Maximize(obj), [p >= 0, cp.sum(p) == 1]).solve(solver=cp.CLARABEL)
    return np.clip(np.asarray(p.value), 0.0, None)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 12), st.floats(0.01, 20.0), st.integers(0, 2**31 - 1))
def test_chi2_optimum_matches_a_convex_solver(k: int, lam: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p_ref = rng.dirichlet(np.ones(k)) * 0.98 + 0.02 / k
    r = rng.normal(size=k)
    p = chi2_regularized_optimum(p_ref, r, lam)
    q = _chi2_cvxpy(p_ref, r, lam)
    assert np.isclose(p.sum(), 1.0) and np.all(p >= 0)
    assert np.max(np.abs(p - q)) < 1e-5

    def objective(x: np.ndarray) -> float:
        return float(r @ x - lam * (np.sum(x**2 / p_ref) - 1))

    assert objective(p) >= objective(q) - 1e-9  # exact closed form is at least as good as the solver


def test_chi2_optimum_closed_form_cases() -> None:
    # constant reward: the regularizer alone, p = π_ref
    ref = np.array([0.2, 0.3, 0.5])
    assert np.allclose(chi2_regularized_optimum(ref, np.ones(3), 0.7), ref)
    # interior (all active) solution: p = π_ref (1 + (r − E_ref r)/(2λ)) when it stays >= 0
    r = np.array([0.0, 0.1, 0.2])
    lam = 5.0
    assert np.allclose(chi2_regularized_optimum(ref, r, lam), ref * (1 + (r - ref @ r) / (2 * lam)))
    # small λ: all the mass goes to the best outcome (ν between the top two rewards)
    assert np.allclose(chi2_regularized_optimum(ref, np.array([0.0, 0.0, 1.0]), 1e-3), [0, 0, 1])
    # outcomes outside the reference support get nothing
    assert chi2_regularized_optimum(np.array([0.0, 0.5, 0.5]), np.array([9.0, 0.0, 1.0]), 0.1)[0] == 0.0


def test_chi2_optimum_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="lam"):
        chi2_regularized_optimum([0.5, 0.5], [0, 1], 0.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        chi2_regularized_optimum([0.5, 0.5], [0, 1, 2], 1.0)
    with pytest.raises(ValueError, match="r"):
        chi2_regularized_optimum([0.5, 0.5], [0, np.nan], 1.0)


# ----------------------------------------------------------------------------- LD-DPO on a token tree
def test_ld_dpo_token_minimizer_at_alpha_one_is_the_dpo_tilt() -> None:
    """α = 1 removes the length weights, so the minimizer is DPO's: π_ref e^{r/β}/Z (Rafailov et al. 2023, eq. 4)."""
    tree = TokenTree(3, 2, eos=0)
    rng = np.random.default_rng(0)
    pi_ref = tree.random_policy(rng, concentration=3.0)
    r = rng.normal(size=tree.num_sequences)
    p_ref = tree.sequence_distribution(pi_ref)
    p = ld_dpo_token_minimizer(tree, pi_ref, bradley_terry(r), beta=1.0, alpha=1.0)
    assert np.max(np.abs(p - dpo_bt_minimizer(r, p_ref, 1.0))) < 1e-5


def test_ld_dpo_token_minimizer_with_alpha_below_one_differs_from_dpo_and_is_stationary() -> None:
    tree = TokenTree(3, 3, eos=0)
    rng = np.random.default_rng(1)
    pi_ref = tree.random_policy(rng, concentration=3.0)
    r = rng.normal(size=tree.num_sequences)
    p_ref = tree.sequence_distribution(pi_ref)
    p = ld_dpo_token_minimizer(tree, pi_ref, bradley_terry(r), beta=1.0, alpha=0.5)
    assert np.isclose(p.sum(), 1.0) and np.all(p > 0)
    assert np.abs(p - dpo_bt_minimizer(r, p_ref, 1.0)).sum() / 2 > 1e-3  # length desensitization moves the optimum


def test_ld_dpo_token_minimizer_rejects_bad_input() -> None:
    tree = TokenTree(2, 2, eos=0)
    pi_ref = tree.random_policy(np.random.default_rng(0))
    P = bradley_terry(np.zeros(tree.num_sequences))
    with pytest.raises(ValueError, match="alpha"):
        ld_dpo_token_minimizer(tree, pi_ref, P, 1.0, 1.5)
    with pytest.raises(ValueError, match="pi_ref must have shape"):
        ld_dpo_token_minimizer(tree, pi_ref[:1], P, 1.0, 0.5)
    with pytest.raises(ValueError, match="P must have shape"):
        ld_dpo_token_minimizer(tree, pi_ref, P[:2, :2], 1.0, 0.5)


# ----------------------------------------------------------------------------- random preference matrices
@settings(max_examples=20, deadline=None)
@given(st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_random_preference_matrix_is_a_valid_general_preference(n: int, seed: int) -> None:
    P = random_preference_matrix(n, np.random.default_rng(seed))
    assert P.shape == (n, n)
    assert np.allclose(P + P.T, 1.0) and np.allclose(np.diag(P), 0.5)
    assert np.all((P >= 0) & (P <= 1))
    validate_preference_matrix(P)
    assert np.array_equal(P, random_preference_matrix(n, np.random.default_rng(seed)))  # determined by the generator


def test_random_preference_matrix_is_generically_intransitive() -> None:
    """For n = 3 about a quarter of draws hold a cycle a ≻ b ≻ c ≻ a (derived: 2 of the 8 orientations of a tournament)."""
    rng = np.random.default_rng(0)
    cycles = 0
    for _ in range(2000):
        P = random_preference_matrix(3, rng)
        beats = P > 0.5
        cycles += bool((beats[0, 1] and beats[1, 2] and beats[2, 0]) or (beats[1, 0] and beats[2, 1] and beats[0, 2]))
    assert abs(cycles / 2000 - 0.25) < 0.04


def test_random_preference_matrix_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="n"):
        random_preference_matrix(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng"):
        random_preference_matrix(3, 7)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- XPO threshold
def test_xpo_max_alpha_two_responses_closed_form() -> None:
    """n = 2: the subsets are {0} and {1}; α* = β min(W01 P01 / π_e(0), W10 P10 / π_e(1)), W = μ + μᵀ."""
    P = bradley_terry(np.array([0.0, 1.0]))
    mu = np.array([[0.1, 0.3], [0.2, 0.4]])
    ex = np.array([0.25, 0.75])
    beta = 0.7
    W = mu + mu.T
    expected = beta * min(W[0, 1] * P[0, 1] / ex[0], W[1, 0] * P[1, 0] / ex[1])
    assert np.isclose(xpo_max_alpha(P, mu, beta, ex), expected, rtol=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 6), st.floats(0.05, 3.0), st.integers(0, 2**31 - 1))
def test_xpo_max_alpha_is_the_boundedness_threshold(n: int, beta: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    P = random_preference_matrix(n, rng)
    ref = rng.dirichlet(np.ones(n))
    mu = pair_distribution(ref)
    a = xpo_max_alpha(P, mu, beta, ref)
    assert xpo_bounded_below(P, mu, beta, a * (1 - 1e-9), ref)
    assert not xpo_bounded_below(P, mu, beta, a * (1 + 1e-6) + 1e-12, ref)


def test_xpo_max_alpha_rejects_bad_input() -> None:
    P = bradley_terry(np.zeros(3))
    with pytest.raises(ValueError, match="pi_explore"):
        xpo_max_alpha(P, np.full((3, 3), 1 / 9), 1.0, np.array([0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match="mu must have shape"):
        xpo_max_alpha(P, np.full((2, 2), 0.25), 1.0, np.full(3, 1 / 3))


# ----------------------------------------------------------------------------- mixed kernels and the simulation lemma
def _random_pair(S: int, A: int, seed: int, sparse: bool = False):
    from rlref.envs import garnet

    return (garnet(S, A, min(3, S), gamma=0.8, seed=seed, sparse=sparse),
            garnet(S, A, min(3, S), gamma=0.8, seed=seed + 1, sparse=sparse))


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 7), st.integers(1, 4), st.floats(0.0, 1.0), st.integers(0, 1000))
def test_mix_transitions_is_the_convex_combination(S: int, A: int, lam: float, seed: int) -> None:
    """P' = (1 − λ)P + λQ entrywise (brute force on the dense arrays), rows stay stochastic, r/γ/μ0 are those of mdp,
    and the per-pair L1 error to P is λ ‖Q − P‖₁ (so λ = 0 gives P back and λ = 1 gives Q)."""
    from rlref.envs import mix_transitions
    from rlref.theory.simulation import transition_l1_errors

    m, o = _random_pair(S, A, seed)
    mixed = mix_transitions(m, o, lam)
    P, Q = m.dense_P(), o.dense_P()
    assert np.allclose(mixed.dense_P(), (1 - lam) * P + lam * Q, atol=1e-15)
    assert np.allclose(mixed.dense_P().sum(-1), 1.0)
    assert np.array_equal(mixed.r, m.r) and mixed.gamma == m.gamma and np.array_equal(mixed.mu0, m.mu0)
    brute = np.array([[np.sum(np.abs(Q[s, a] - P[s, a])) for a in range(A)] for s in range(S)])
    assert np.allclose(transition_l1_errors(m, mixed), lam * brute, atol=1e-12)


def test_mix_transitions_and_l1_errors_sparse_equal_dense() -> None:
    """A CSR kernel gives the same mixture and the same L1 errors as its dense copy; the L1 error is 2·TV."""
    from rlref.divergences import total_variation
    from rlref.envs import mix_transitions
    from rlref.theory.simulation import transition_l1_errors

    ms, os_ = _random_pair(30, 3, 5, sparse=True)
    md, od = _random_pair(30, 3, 5, sparse=False)
    assert np.allclose(ms.dense_P(), md.dense_P())
    mixed_s, mixed_d = mix_transitions(ms, os_, 0.3), mix_transitions(md, od, 0.3)
    assert mixed_s.is_sparse and not mixed_d.is_sparse
    assert np.allclose(mixed_s.dense_P(), mixed_d.dense_P(), atol=1e-15)
    e_s, e_d = transition_l1_errors(ms, mixed_s), transition_l1_errors(md, mixed_d)
    assert e_s.shape == (30, 3)
    assert np.allclose(e_s, e_d, atol=1e-14)
    assert np.allclose(e_d, 2 * total_variation(mixed_d.dense_P(), md.dense_P()), atol=1e-12)


def test_mix_transitions_and_l1_errors_reject_bad_input() -> None:
    from rlref.envs import mix_transitions
    from rlref.theory.simulation import transition_l1_errors

    m, o = _random_pair(4, 2, 0)
    small, _ = _random_pair(3, 2, 0)
    with pytest.raises(ValueError, match="weight"):
        mix_transitions(m, o, 1.5)
    with pytest.raises(ValueError, match="shape"):
        mix_transitions(m, small, 0.5)
    with pytest.raises(ValueError, match="shape"):
        transition_l1_errors(m, small)
    with pytest.raises(ValueError, match="TabularMDP"):
        transition_l1_errors(m, np.eye(4))


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.floats(0.0, 1.0), st.integers(0, 1000))
def test_simulation_lemma_bound_holds_for_random_policies(S: int, A: int, lam: float, seed: int) -> None:
    """‖V^π_{M'} − V^π_M‖∞ ≤ γ ε_P R_max/(1 − γ)² (Kearns & Singh 2002, Lemma 4), the values by exact policy evaluation."""
    from rlref.envs import mix_transitions
    from rlref.solve import policy_evaluation
    from rlref.theory.simulation import simulation_lemma_bound, transition_l1_errors

    m, o = _random_pair(S, A, seed)
    mixed = mix_transitions(m, o, lam)
    pi = np.random.default_rng(seed).dirichlet(np.ones(A), size=S)
    gap = np.max(np.abs(policy_evaluation(mixed, pi).values - policy_evaluation(m, pi).values))
    bound = simulation_lemma_bound(float(np.max(transition_l1_errors(m, mixed))), float(np.max(np.abs(m.r))), m.gamma)
    assert gap <= bound + 1e-12


def test_simulation_lemma_bound_closed_form_and_bad_input() -> None:
    """γ = ½, ε_P = 0.2, R_max = 1: ½ · 0.2 · 1 / (½)² = 0.4."""
    from rlref.theory.simulation import simulation_lemma_bound

    assert simulation_lemma_bound(0.2, 1.0, 0.5) == pytest.approx(0.4, rel=1e-15)
    with pytest.raises(ValueError, match="eps_p"):
        simulation_lemma_bound(-0.1, 1.0, 0.5)
    with pytest.raises(ValueError, match="r_max"):
        simulation_lemma_bound(0.1, float("nan"), 0.5)
    with pytest.raises(ValueError, match="gamma"):
        simulation_lemma_bound(0.1, 1.0, 1.0)


# ----------------------------------------------------------------------------- the empirical MDP of a generative model
def test_empirical_mdp_is_the_multinomial_frequency() -> None:
    """Same stream as one Multinomial(n, P(·|s, a)) draw per pair in (s, a) order; rows are multiples of 1/n; r, γ, μ0
    kept; the frequencies concentrate on P (Hoeffding: |P̂ − P| ≤ 5/√n entrywise, far beyond a 1e-6 failure rate)."""
    from rlref.envs import empirical_mdp

    m, _ = _random_pair(5, 2, 3)
    P = m.dense_P()
    emp = empirical_mdp(m, 40, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    manual = np.array([[rng.multinomial(40, P[s, a]) for a in range(2)] for s in range(5)]) / 40
    assert np.array_equal(emp.dense_P(), manual)
    assert np.allclose(emp.dense_P() * 40, np.round(emp.dense_P() * 40))
    assert np.array_equal(emp.r, m.r) and emp.gamma == m.gamma and np.array_equal(emp.mu0, m.mu0)
    big = empirical_mdp(m, 200_000, np.random.default_rng(8))
    assert np.max(np.abs(big.dense_P() - P)) < 5 / np.sqrt(200_000)
    # support: a pair never moves to a state outside supp P(·|s, a)
    assert np.all(emp.dense_P()[P == 0] == 0)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        empirical_mdp(m, 0, np.random.default_rng(0))
