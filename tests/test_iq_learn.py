"""IQ-Learn as TD-regularized MLE on token trees (Wulfmeier et al. 2024, §3; Garg et al. 2021)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.iq_learn import entropy_regularized_policy, fit_iq_learn, implied_reward, iq_objective, mle_policy, visit_weights
from rlref.tokentree import TokenTree

trees = st.sampled_from([(2, 2, None), (3, 2, 0), (3, 3, 0), (2, 3, None)])


def _tree(spec: tuple) -> TokenTree:
    V, L, eos = spec
    return TokenTree(V, L, eos=eos)


@settings(max_examples=15, deadline=None)
@given(spec=trees, seed=st.integers(0, 2**31 - 1))
def test_softmax_q_is_soft_optimal_for_its_implied_reward(spec, seed):
    """Inverse soft Bellman (Garg et al. Eq. 3): π = softmax Q is the soft-optimal policy for r = Q − V(s')."""
    tree = _tree(spec)
    q = np.random.default_rng(seed).normal(size=(tree.num_prefixes, tree.vocab_size)) * 2
    pi = np.exp(q - np.log(np.exp(q).sum(axis=1, keepdims=True)))
    np.testing.assert_allclose(entropy_regularized_policy(tree, implied_reward(tree, q)), pi, atol=1e-10)


def _brute_objective(tree: TokenTree, q: np.ndarray, data: np.ndarray, alpha: float, gamma: float) -> float:
    """J by a loop over responses and their steps, logsumexp written out (independent of the module)."""
    V = {x: float(np.log(np.sum(np.exp(q[i])))) for i, x in enumerate(tree.prefixes)}
    total = 0.0
    for w, y in zip(data, tree.sequences, strict=True):
        for t in range(len(y)):
            s, a = y[:t], y[t]
            i = tree.prefixes.index(s)
            nxt = V.get((*s, a), 0.0)  # complete responses are terminal: V = 0
            r = q[i, a] - gamma * nxt
            total += w * ((q[i, a] - V[s]) - r * r / (4 * alpha))
    return total


@settings(max_examples=15, deadline=None)
@given(spec=trees, seed=st.integers(0, 2**31 - 1), alpha=st.floats(0.05, 50.0), gamma=st.floats(0.5, 1.0))
def test_objective_matches_brute_force(spec, seed, alpha, gamma):
    """J = E_D Σ log π − (1/4α) E_D Σ r² (issue #17's statement of Wulfmeier et al. §3), by enumeration."""
    tree = _tree(spec)
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(tree.num_prefixes, tree.vocab_size))
    data = rng.dirichlet(np.ones(tree.num_sequences)) * (rng.random(tree.num_sequences) < 0.7)
    data[0] += 0.1
    assert iq_objective(tree, q, data, alpha, gamma) == pytest.approx(_brute_objective(tree, q, data, alpha, gamma), rel=1e-10, abs=1e-10)


def test_alpha_infinity_is_mle_of_the_counts():
    """α → ∞ drops the TD term: the fit is the MLE, the empirical conditionals count(s·a)/count(s) (counted here by hand)."""
    tree = TokenTree(3, 3, eos=0)
    rng = np.random.default_rng(3)
    ys = rng.integers(0, tree.num_sequences, size=40)
    counts = np.bincount(ys, minlength=tree.num_sequences).astype(float)
    prefix_counts: dict = {}
    for j in ys:
        y = tree.sequences[j]
        for t in range(len(y)):
            prefix_counts.setdefault(y[:t], np.zeros(3))[y[t]] += 1
    for alpha in (np.inf, 1e7):
        res = fit_iq_learn(tree, counts, alpha)
        for s, c in prefix_counts.items():
            np.testing.assert_allclose(res.pi[tree.prefix_index(s)], c / c.sum(), atol=1e-5)
    for s, c in prefix_counts.items():
        np.testing.assert_allclose(mle_policy(tree, counts)[tree.prefix_index(s)], c / c.sum(), atol=1e-12)


def test_population_fit_recovers_expert_and_reward_makes_expert_optimal():
    """With the expert's full distribution as data, π_α → π_E as α grows (TV ≈ c/α), and the recovered reward makes the
    expert soft-optimal (checked by the core's soft VI, not by the fit)."""
    tree = TokenTree(3, 3, eos=0)
    rng = np.random.default_rng(0)
    pE = np.exp(rng.normal(size=tree.num_sequences))
    pE /= pE.sum()
    piE = tree.policy_from_sequence_distribution(pE)
    tvs = []
    for alpha in (1.0, 10.0, 1e4):
        res = fit_iq_learn(tree, pE, alpha)
        assert res.grad_norm < 1e-6
        tvs.append(0.5 * np.abs(tree.sequence_distribution(res.pi) - pE).sum())
    assert tvs[0] > tvs[1] > tvs[2]
    assert tvs[2] < 1e-4
    res = fit_iq_learn(tree, pE, 1e4)
    assert np.max(np.abs(entropy_regularized_policy(tree, res.reward) - piE)) < 1e-4
    # and the finite-α fit is NOT the expert (the χ² regularizer shrinks the reward): a test that can fail
    assert tvs[0] > 1e-2


def test_fit_is_a_local_maximum():
    """The returned Q is a stationary point and no small perturbation increases J (finite differences, not the gradient)."""
    tree = TokenTree(3, 3, eos=0)
    rng = np.random.default_rng(5)
    counts = np.bincount(rng.integers(0, tree.num_sequences, size=25), minlength=tree.num_sequences).astype(float)
    res = fit_iq_learn(tree, counts / counts.sum(), 1.0, q_floor=-60.0)
    j0 = iq_objective(tree, res.q, counts / counts.sum(), 1.0)
    assert j0 == pytest.approx(res.objective, abs=1e-10)
    for _ in range(30):
        dq = rng.normal(size=res.q.shape) * 1e-3
        assert iq_objective(tree, res.q + dq, counts / counts.sum(), 1.0) <= j0 + 1e-9


def test_visit_weights_are_the_occupancy():
    """d(s,a) for the expert's distribution equals Σ_y p(y) 1[(s,a) ∈ y]; the root's row sums to 1."""
    tree = TokenTree(2, 3)
    p = np.arange(1, tree.num_sequences + 1, dtype=float)
    p /= p.sum()
    d = visit_weights(tree, p)
    assert d[0].sum() == pytest.approx(1.0)
    assert d.sum() == pytest.approx(float((p * tree.lengths).sum()))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": "x"}, "alpha"),
        ({"data": "empty"}, "empty"),
        ({"data": "negative"}, "data"),
        ({"data": "shape"}, "shape"),
        ({"gamma": 1.5}, "gamma"),
    ],
)
def test_bad_inputs(kwargs, match):
    tree = TokenTree(2, 2)
    data = {"empty": np.zeros(tree.num_sequences), "negative": -np.ones(tree.num_sequences), "shape": np.ones(3)}.get(
        kwargs.get("data"), np.ones(tree.num_sequences))
    args = {"alpha": 1.0, "gamma": 1.0, **{k: v for k, v in kwargs.items() if k != "data"}}
    with pytest.raises(ValueError, match=match):
        fit_iq_learn(tree, data, args["alpha"], args["gamma"])


def test_bad_q_shape():
    tree = TokenTree(2, 2)
    with pytest.raises(ValueError, match="q must have shape"):
        implied_reward(tree, np.zeros((2, 2)))
