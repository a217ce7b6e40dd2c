"""Token trees: enumeration, the chain rule, and token-level = sequence-level KL regularization."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref import solve
from rlref.tokentree import TokenTree

trees = st.builds(TokenTree, vocab_size=st.integers(1, 3), max_len=st.integers(1, 4), eos=st.sampled_from([None, 0]))


def test_counts_match_closed_forms() -> None:
    # without eos: V^L responses and Σ_{t<L} V^t open prefixes
    t = TokenTree(4, 3)
    assert t.num_sequences == 64 and t.num_prefixes == 1 + 4 + 16
    # with eos: responses end in eos at any length < L, or have length L: Σ_{t<L}(V-1)^t + (V-1)^{L-1}(V-1)
    t = TokenTree(4, 3, eos=3)
    assert t.num_prefixes == 1 + 3 + 9
    assert t.num_sequences == (1 + 3 + 9) + 9 * 3
    assert set(t.lengths) == {1, 2, 3}


@settings(max_examples=30, deadline=None)
@given(tree=trees, seed=st.integers(0, 2**31))
def test_chain_rule_round_trip(tree: TokenTree, seed: int) -> None:
    """π(y) = Π_t π(y_t|y_<t) is a distribution, and its factorization gives π back (full support)."""
    pi = tree.random_policy(np.random.default_rng(seed))
    p = tree.sequence_distribution(pi)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(tree.policy_from_sequence_distribution(p), pi, atol=1e-9)
    logits = np.log(p) + 7.0  # a constant shift does not change the softmax
    np.testing.assert_allclose(tree.policy_from_sequence_logits(logits), pi, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(tree=trees, seed=st.integers(0, 2**31), beta=st.floats(0.02, 50.0))
def test_token_level_soft_vi_equals_sequence_level_posterior(tree: TokenTree, seed: int, beta: float) -> None:
    """KL-regularized soft VI on the tree MDP yields per-token policies whose product is
    π_ref(y) e^{R(y)/β} / Z, and whose root value is β log Z (computed here by enumeration).

    References: Korbak, Perez, Buckley (2022), §3; the factorization is the chain rule.
    """
    rng = np.random.default_rng(seed)
    pi_ref = tree.random_policy(rng, concentration=0.7)
    R = rng.normal(size=tree.num_sequences) * 2
    mdp = tree.to_mdp(R)
    res = solve.soft_value_iteration(mdp, beta, pi_ref=tree.extend_policy(pi_ref))
    pi = tree.restrict_policy(res.policy)
    # brute force over responses
    log_ref = np.array([sum(np.log(pi_ref[tree.prefix_index(y[:t]), y[t]]) for t in range(len(y))) for y in tree.sequences])
    logits = log_ref + R / beta
    post = np.exp(logits - logits.max())
    post /= post.sum()
    np.testing.assert_allclose(tree.sequence_distribution(pi), post, atol=1e-9)
    log_z = np.log(np.exp(logits - logits.max()).sum()) + logits.max()
    v_root = res.values[0, 0] if np.ndim(res.values) == 2 else res.values[0]
    assert v_root == pytest.approx(beta * log_z, rel=1e-9, abs=1e-9)


def test_to_mdp_pays_the_sequence_reward_on_completion() -> None:
    tree = TokenTree(2, 2, eos=1)
    R = np.arange(tree.num_sequences, dtype=float) + 1.0
    mdp = tree.to_mdp(R)
    # deterministic policy "always 0" produces (0, 0); "always eos" produces (1,)
    det0 = np.tile([1.0, 0.0], (tree.num_prefixes, 1))
    ev = solve.policy_evaluation(mdp, tree.extend_policy(det0))
    v0 = ev.values[0, 0] if np.ndim(ev.values) == 2 else ev.values[0]
    assert v0 == pytest.approx(R[tree.sequence_index((0, 0))])
    assert mdp.terminal[-1] and mdp.mu0[0] == 1.0


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="vocab_size must be a positive integer"):
        TokenTree(0, 2)
    with pytest.raises(ValueError, match="max_len must be a positive integer"):
        TokenTree(2, 0)
    with pytest.raises(ValueError, match="eos must be a token"):
        TokenTree(2, 2, eos=2)
    with pytest.raises(ValueError, match="too large"):
        TokenTree(50, 5)
    tree = TokenTree(2, 2)
    with pytest.raises(ValueError, match="reward must have shape"):
        tree.to_mdp(np.zeros(3))
    with pytest.raises(ValueError, match="not a complete response"):
        tree.sequence_index((0,))
    with pytest.raises(ValueError, match=r"pi\[1, :\] must sum to 1"):
        tree.sequence_logprobs(np.array([[0.5, 0.5], [0.5, 0.6], [0.5, 0.5]]))


@pytest.mark.parametrize("V, L, eos", [(50, 10, None), (30, 6, None), (10**6, 2, 0), (2, 25, None)])
def test_size_guard_runs_before_any_enumeration(V, L, eos, monkeypatch):
    """Issue #11 item 16: the size Σ_{t<L} V^t · V is checked before a single prefix is built
    (TokenTree(50, 10) used to exhaust memory, TokenTree(30, 6) took seconds and GBs)."""
    import itertools

    def no_enumeration(*args, **kwargs):
        raise AssertionError("TokenTree started enumerating prefixes before checking its size")

    monkeypatch.setattr(itertools, "product", no_enumeration)
    body = V - (eos is not None)
    total = sum(body**t for t in range(L)) * V
    with pytest.raises(ValueError, match=f"= {total} "):
        TokenTree(V, L, eos=eos)


def test_size_guard_is_exact(monkeypatch):
    """The guard compares (open prefixes)·V with MAX_TREE_ENTRIES exactly: V = 3, L = 2 has
    (1 + 3)·3 = 12 entries, allowed at a limit of 12 and refused at 11."""
    import rlref.tokentree as tt

    monkeypatch.setattr(tt, "MAX_TREE_ENTRIES", 12)
    assert TokenTree(3, 2).num_prefixes == 4
    monkeypatch.setattr(tt, "MAX_TREE_ENTRIES", 11)
    with pytest.raises(ValueError, match="= 12 "):
        TokenTree(3, 2)
