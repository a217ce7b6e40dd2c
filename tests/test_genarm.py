"""GenARM on token trees: expressivity, exact guidance, Bradley–Terry fits, and where decoding is not exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from rlref.algorithms.genarm import (
    arm_from_reward,
    arm_reward,
    decoding_gap,
    exact_guidance_arm,
    fit_arm_bradley_terry,
    guided_decoding,
    trajectory_optimum,
)
from rlref.tokentree import TokenTree

trees = st.builds(
    TokenTree,
    vocab_size=st.integers(2, 3),
    max_len=st.integers(1, 3),
    eos=st.sampled_from([None, 0]),
)


def _bt_wins(r: np.ndarray) -> np.ndarray:
    """Population 'y beats y'' weights: uniform pairs, P(y ≻ y') = σ(r(y) − r(y'))."""
    return expit(r[:, None] - r[None, :]) * (1 - np.eye(len(r)))


@settings(max_examples=25, deadline=None)
@given(tree=trees, seed=st.integers(0, 2**31))
def test_expressivity_every_reward_is_an_arm_reward_up_to_a_constant(tree: TokenTree, seed: int) -> None:
    """GenARM Thm 1: Σ_t log π_r(y_t|y_<t) = r(y) − log Σ e^r for π_r = factorization of softmax(r)."""
    r = np.random.default_rng(seed).normal(size=tree.num_sequences) * 3
    np.testing.assert_allclose(arm_reward(tree, arm_from_reward(tree, r)), r - np.log(np.exp(r).sum()), atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(tree=trees, seed=st.integers(0, 2**31), beta=st.floats(0.05, 20.0))
def test_exact_guidance_arm_reaches_the_trajectory_optimum(tree: TokenTree, seed: int, beta: float) -> None:
    """GenARM Thm 2: some ARM makes π_base·π_r^{1/β} (per step) equal π_base(y)e^{r(y)/β}/Z exactly.

    The optimum is computed independently by brute-force enumeration of responses.
    """
    rng = np.random.default_rng(seed)
    pi_base = tree.random_policy(rng)
    r = rng.normal(size=tree.num_sequences)
    brute = np.array([np.prod([pi_base[tree.prefix_index(y[:t]), y[t]] for t in range(len(y))]) for y in tree.sequences])
    brute = brute * np.exp(r / beta)
    brute /= brute.sum()
    np.testing.assert_allclose(trajectory_optimum(tree, pi_base, r, beta), brute, atol=1e-12)
    pi = guided_decoding(tree, pi_base, exact_guidance_arm(tree, pi_base, r, beta), beta)
    np.testing.assert_allclose(tree.sequence_distribution(pi), brute, atol=1e-10)


def test_bandit_case_bt_arm_decoding_is_exact() -> None:
    """Depth-1 tree: the BT-fitted ARM decodes to π_base e^{r/β}/Z (no per-step normalizer issue)."""
    tree = TokenTree(5, 1)
    rng = np.random.default_rng(0)
    r = rng.normal(size=5)
    fit = fit_arm_bradley_terry(tree, _bt_wins(r))
    assert fit.converged and fit.grad_norm < 1e-6
    pi_base = tree.random_policy(rng)
    pi = guided_decoding(tree, pi_base, fit.pi_r, beta=0.5)
    gap = decoding_gap(tree, pi, trajectory_optimum(tree, pi_base, r, 0.5), r)
    assert gap.tv < 1e-5


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31), eos=st.sampled_from([None, 1]))
def test_bradley_terry_fit_recovers_the_reward_up_to_a_constant(seed: int, eos: int | None) -> None:
    """Population BT likelihood is maximized by r itself (identifiable up to a constant)."""
    tree = TokenTree(3, 2, eos=eos)
    r = np.random.default_rng(seed).normal(size=tree.num_sequences)
    fit = fit_arm_bradley_terry(tree, _bt_wins(r))
    diff = fit.reward - r
    assert np.ptp(diff) < 1e-4, fit.message


def test_bt_fitted_arm_decoding_is_not_exact_on_deeper_trees() -> None:
    """The BT-fitted ARM (softmax factorization) decodes to a different distribution when L = 2.

    Counterexample derived here: the per-step normalizer Σ_v π_base(v|x) π_r(v|x)^{1/β} depends on x.
    """
    tree = TokenTree(2, 2)
    r = np.array([3.0, -3.0, 0.0, 0.0])  # responses (0,0), (0,1), (1,0), (1,1)
    pi_base = np.full((tree.num_prefixes, 2), 0.5)
    beta = 0.5
    p_star = trajectory_optimum(tree, pi_base, r, beta)
    pi = guided_decoding(tree, pi_base, arm_from_reward(tree, r), beta)
    # hand-computed: decoding puts A = (e³+e⁻³)²/((e³+e⁻³)²+4) on first token 0 and e⁶/(e⁶+e⁻⁶) on
    # (0,0) after it; the optimum puts e⁶/(e⁶+e⁻⁶+2) on (0,0).
    e = np.exp
    first0 = (e(3) + e(-3)) ** 2 / ((e(3) + e(-3)) ** 2 + 4)
    p_dec = np.array([first0 * e(6) / (e(6) + e(-6)), first0 * e(-6) / (e(6) + e(-6)), (1 - first0) / 2, (1 - first0) / 2])
    np.testing.assert_allclose(tree.sequence_distribution(pi), p_dec, atol=1e-12)
    np.testing.assert_allclose(p_star, np.array([e(6), e(-6), 1, 1]) / (e(6) + e(-6) + 2), atol=1e-12)
    gap = decoding_gap(tree, pi, p_star, r)
    assert gap.tv == pytest.approx(0.5 * np.abs(p_dec - p_star).sum(), abs=1e-12)
    assert gap.tv > 1e-3 and gap.reward_gap > 0.0
    # and the exact-guidance ARM closes the gap
    pi_exact = guided_decoding(tree, pi_base, exact_guidance_arm(tree, pi_base, r, beta), beta)
    assert decoding_gap(tree, pi_exact, p_star, r).tv < 1e-12


def test_position_only_arm_represents_exactly_the_additive_rewards() -> None:
    """A (depth, token) ARM fits Σ_t w_t(y_t) exactly, and cannot fit a non-additive reward."""
    tree = TokenTree(3, 3)
    rng = np.random.default_rng(3)
    w = rng.normal(size=(3, 3))
    additive = np.array([sum(w[t, v] for t, v in enumerate(y)) for y in tree.sequences])
    fit = fit_arm_bradley_terry(tree, _bt_wins(additive), parametrization="position")
    assert np.ptp(fit.reward - additive) < 1e-4
    nonadditive = additive + 2.0 * np.array([float(y[0] == y[-1]) for y in tree.sequences])
    fit2 = fit_arm_bradley_terry(tree, _bt_wins(nonadditive), parametrization="position")
    assert np.ptp(fit2.reward - nonadditive) > 0.5


def test_bad_inputs() -> None:
    tree = TokenTree(2, 2)
    pi = np.full((tree.num_prefixes, 2), 0.5)
    with pytest.raises(ValueError, match="beta must be > 0"):
        guided_decoding(tree, pi, pi, beta=0.0)
    with pytest.raises(ValueError, match="reward must have shape"):
        trajectory_optimum(tree, pi, np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="reward must be finite"):
        trajectory_optimum(tree, pi, np.array([0.0, np.nan, 0.0, 0.0]), 1.0)
    with pytest.raises(ValueError, match="pi_base must have shape"):
        guided_decoding(tree, np.full((2, 2), 0.5), pi, 1.0)
    with pytest.raises(ValueError, match="wins must be non-negative"):
        fit_arm_bradley_terry(tree, -np.ones((4, 4)))
    with pytest.raises(ValueError, match="parametrization"):
        fit_arm_bradley_terry(tree, np.ones((4, 4)), parametrization="mlp")
    with pytest.raises(ValueError, match="disjoint supports"):
        guided_decoding(tree, np.tile([1.0, 0.0], (3, 1)), np.tile([0.0, 1.0], (3, 1)), 1.0)


def test_decoding_gap_rejects_misshapen_inputs() -> None:
    tree = TokenTree(2, 2)
    pi = np.full((tree.num_prefixes, 2), 0.5)
    p = np.full(4, 0.25)
    with pytest.raises(ValueError, match=r"p_star must have shape \(4,\)"):
        decoding_gap(tree, pi, np.full(3, 1 / 3), np.zeros(4))
    with pytest.raises(ValueError, match=r"reward must have shape \(4,\)"):
        decoding_gap(tree, pi, p, np.zeros(1))
