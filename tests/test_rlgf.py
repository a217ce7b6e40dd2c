"""RLGF (Chang et al. 2023) exact expected updates on token trees."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.rlgf import reach_probabilities, regularized_objective, regularized_q, rlgf_update, run_rlgf
from rlref.tokentree import TokenTree


def _setup(seed: int, V: int = 3, L: int = 3):
    tree = TokenTree(V, L, eos=0)
    rng = np.random.default_rng(seed)
    return tree, rng.normal(size=tree.num_sequences), tree.random_policy(rng, 2.0), tree.random_policy(rng, 2.0)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), beta=st.floats(0.1, 2.0))
def test_ppo_step_is_the_gradient_of_J(seed, beta):
    """The on-policy step is lr·∇_θ J (policy-gradient theorem with KL), checked by central finite differences of J."""
    tree, R, ref, _ = _setup(seed)
    theta = np.random.default_rng(seed + 1).normal(size=(tree.num_prefixes, tree.vocab_size))
    step = rlgf_update(tree, R, theta, ref, beta, "ppo", lr=1.0) - theta

    def J(t):
        p = np.exp(t - np.log(np.exp(t).sum(axis=1, keepdims=True)))
        return regularized_objective(tree, R, p, ref, beta)

    fd = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        e = np.zeros_like(theta)
        e[idx] = 1e-6
        fd[idx] = (J(theta + e) - J(theta - e)) / 2e-6
    np.testing.assert_allclose(step, fd, atol=1e-6)


def test_ppo_and_ppo_plus_plus_converge_to_the_kl_optimum():
    """Stationary point of J: π* ∝ π_ref e^{R/β} on responses (closed form, not the update)."""
    tree, R, ref, guide = _setup(0)
    beta = 0.5
    p_star = tree.sequence_distribution(ref) * np.exp(R / beta)
    p_star /= p_star.sum()
    for alg in ("ppo", "ppo++"):
        res = run_rlgf(tree, R, ref, beta, alg, guide, iterations=600, lr=5.0)
        assert 0.5 * np.abs(tree.sequence_distribution(res.pi) - p_star).sum() < 1e-3
        assert res.gap[-1] >= -1e-12 and res.gap[-1] < 1e-4


def test_aggrevated_fixed_point_is_the_soft_improvement_of_the_guide():
    """Guide roll-out: π ∝ π_ref e^{Q_β^{π_g}/β} (computed here by hand from Q) is a fixed point, and it is not π*."""
    tree, R, ref, guide = _setup(3)
    beta = 0.5
    qg = regularized_q(tree, R, guide, ref, beta)
    logits = np.log(ref) + qg / beta
    fp = np.exp(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)))
    nxt = rlgf_update(tree, R, np.log(fp), ref, beta, "aggrevated", guide, lr=3.0)
    np.testing.assert_allclose(nxt, np.log(fp), atol=1e-10)
    moved = rlgf_update(tree, R, np.log(fp), ref, beta, "ppo", lr=3.0)
    assert np.abs(moved - np.log(fp)).max() > 1e-4  # not a stationary point of J: the guide biases AggreVaTeD


def test_reach_probabilities_sum_to_one_over_completions():
    """Σ over depth-t prefixes of d plus the mass already ended by eos is 1 (enumeration of responses)."""
    tree, _, ref, guide = _setup(1, V=3, L=4)
    for switch in range(4):
        d = reach_probabilities(tree, ref, guide, switch)
        for t in range(tree.max_len):
            ended = sum(
                np.prod([(guide if k < switch else ref)[tree.prefix_index(y[:k]), y[k]] for k in range(len(y))])
                for y in tree.sequences if len(y) <= t
            )
            assert d[tree.depths == t].sum() + ended == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"algorithm": "trpo"}, "algorithm"), ({"beta": 0.0}, "beta"), ({"beta": -1.0}, "beta"), ({"guide": None, "algorithm": "lols"}, "guide"),
     ({"mix": 1.5, "algorithm": "ppo++"}, "mix"), ({"lr": 0.0}, "lr")],
)
def test_bad_inputs(kwargs, match):
    tree, R, ref, guide = _setup(0, V=2, L=2)
    args = {"algorithm": "ppo", "beta": 1.0, "guide": guide, "mix": 0.5, "lr": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        run_rlgf(tree, R, ref, args["beta"], args["algorithm"], args["guide"], iterations=2, lr=args["lr"], mix=args["mix"])
