"""Tests of rlref.interop.quantecon: DiscreteDP converters round-trip in both input formats,
infeasible actions (R = -inf, missing pairs) become action masks and back."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

import rlref.solve as rs

from helpers import random_mdp

qe = pytest.importorskip("quantecon")
from quantecon.markov import DiscreteDP  # noqa: E402

from rlref import TabularMDP  # noqa: E402
from rlref.interop.quantecon import from_discrete_dp, from_quantecon, to_discrete_dp, to_quantecon  # noqa: E402


def _backups_mask() -> bool:
    """Whether rlref.solve's Bellman backups put -inf at masked pairs (the hook in solve/bellman.py)."""
    m = TabularMDP(np.full((1, 2, 1), 1.0), np.zeros((1, 2)), gamma=0.5, action_mask=[[True, False]])
    return bool(np.isneginf(rs.bellman_q(m, np.zeros(1))[0, 1]))


def _brute_force(mdp: TabularMDP) -> np.ndarray:
    """V* over the deterministic policies that use available actions only (a linear solve each)."""
    S = mdp.num_states
    P, r = mdp.dense_P(), np.asarray(mdp.r)
    mask = np.ones((S, mdp.num_actions), dtype=bool) if mdp.action_mask is None else mdp.action_mask
    best = np.full(S, -np.inf)
    for acts in itertools.product(*[np.flatnonzero(mask[s]) for s in range(S)]):
        a = np.array(acts)
        best = np.maximum(best, np.linalg.solve(np.eye(S) - mdp.gamma * P[np.arange(S), a], r[np.arange(S), a]))
    return best


def _same(a, b):
    np.testing.assert_array_equal(a.dense_P(), b.dense_P())
    np.testing.assert_array_equal(a.r, b.r)
    assert a.gamma == b.gamma


@pytest.mark.parametrize("form", ["dense", "sa_pairs"])
@pytest.mark.parametrize("sparse", [False, True])
def test_round_trip_both_forms(form, sparse):
    """TabularMDP -> DiscreteDP -> TabularMDP is the identity on (P, r, γ), and quantecon's own
    policy iteration on the converted problem gives rlref's V* (an independent solver)."""
    mdp = random_mdp(3, S=7, A=3, gamma=0.9, sparse=sparse)
    ddp = to_discrete_dp(mdp, form=form)
    back = from_discrete_dp(ddp)
    _same(mdp, back)
    assert back.is_sparse == (sparse and form == "sa_pairs")
    np.testing.assert_allclose(ddp.solve("policy_iteration").v, rs.optimal(mdp, 1e-10).values, atol=1e-8)


def test_from_user_built_pair_form_in_any_order_and_infeasible_actions():
    """A user's pair form (shuffled pairs, one state with a single action) converts with
    fill='duplicate' and keeps V*; with fill='raise' the missing action is an error naming the state."""
    rng = np.random.default_rng(0)
    S, A = 4, 2
    pairs = [(s, a) for s in range(S) for a in range(A) if not (s == 2 and a == 1)]
    order = rng.permutation(len(pairs))
    s_idx = np.array([pairs[i][0] for i in order])
    a_idx = np.array([pairs[i][1] for i in order])
    R = rng.normal(size=len(pairs))
    Q = rng.dirichlet(np.ones(S), len(pairs))
    ddp = DiscreteDP(R, Q, 0.8, s_idx, a_idx)
    with pytest.raises(ValueError, match="state 2"):
        from_discrete_dp(ddp, fill="raise")
    assert from_discrete_dp(ddp).action_mask[2, 1] == False  # noqa: E712 - the default masks it
    mdp = from_discrete_dp(ddp, fill="duplicate")
    assert mdp.action_mask is None
    np.testing.assert_allclose(rs.optimal(mdp, 1e-10).values, ddp.solve("policy_iteration").v, atol=1e-8)
    dense = DiscreteDP(np.array([[1.0, -np.inf], [0.0, 2.0]]), np.full((2, 2, 2), 0.5), 0.5)
    np.testing.assert_allclose(rs.optimal(from_discrete_dp(dense, fill="duplicate"), 1e-10).values,
                               dense.solve("policy_iteration").v, atol=1e-8)


def test_bad_inputs():
    with pytest.raises(ValueError, match="form"):
        to_discrete_dp(random_mdp(0), form="csr")
    with pytest.raises(ValueError, match="horizon"):
        to_discrete_dp(random_mdp(0, horizon=3))
    with pytest.raises(ValueError, match="fill"):
        from_discrete_dp(to_discrete_dp(random_mdp(0)), fill="zero")


@pytest.mark.parametrize("sparse_q", [False, True])
def test_infeasible_actions_become_the_action_mask_and_agree_with_quantecon(sparse_q):
    """Dense R = -inf and missing pairs (sparse Q too) map to action_mask = False; quantecon's own
    policy iteration on the peer object gives V* = brute force over the available actions of the
    converted MDP, its sigma never names a masked action, and rlref's optimal agrees."""
    rng = np.random.default_rng(4)
    S, A = 5, 3
    feasible = rng.random((S, A)) < 0.6
    feasible[np.arange(S), rng.integers(0, A, S)] = True
    R = np.where(feasible, rng.normal(size=(S, A)), -np.inf)
    Q = rng.dirichlet(np.ones(S), (S, A))
    dense = DiscreteDP(R, Q, 0.85)
    s_idx, a_idx = np.nonzero(feasible)
    order = rng.permutation(s_idx.size)
    Qp = Q[s_idx[order], a_idx[order]]
    pairs = DiscreteDP(R[s_idx[order], a_idx[order]], sp.csr_matrix(Qp) if sparse_q else Qp, 0.85, s_idx[order], a_idx[order])
    for ddp in (dense, pairs):
        mdp = from_quantecon(ddp)
        np.testing.assert_array_equal(mdp.action_mask, feasible)
        assert mdp.is_sparse == (ddp is pairs and sparse_q)
        qe_res = ddp.solve("policy_iteration")
        np.testing.assert_allclose(qe_res.v, _brute_force(mdp), atol=1e-9)
        assert feasible[np.arange(S), qe_res.sigma].all()
        if _backups_mask():
            ours = rs.optimal(mdp, 1e-11)
            np.testing.assert_allclose(ours.values, qe_res.v, atol=1e-8)
            np.testing.assert_array_equal(ours.actions, qe_res.sigma)


@pytest.mark.parametrize("form", ["dense", "sa_pairs"])
def test_masked_mdp_round_trips_through_quantecon(form):
    """to_quantecon writes -inf (dense) or leaves the pair out (sa_pairs) at masked pairs; back, the
    mask, r and P on the available pairs are unchanged and quantecon's V* is brute force's."""
    mdp0 = random_mdp(5, S=6, A=3, gamma=0.9)
    mask = np.random.default_rng(5).random((6, 3)) < 0.5
    mask[:, 1] = True
    mdp = TabularMDP(mdp0.P, mdp0.R, gamma=0.9, action_mask=mask)
    ddp = to_quantecon(mdp, form=form)
    if form == "dense":
        assert np.isneginf(ddp.R[~mask]).all() and np.isfinite(ddp.R[mask]).all()
    else:
        assert ddp.num_sa_pairs == int(mask.sum())
    back = from_quantecon(ddp)
    np.testing.assert_array_equal(back.action_mask, mask)
    np.testing.assert_array_equal(back.r[mask], mdp.r[mask])
    np.testing.assert_array_equal(back.dense_P()[mask], mdp.dense_P()[mask])
    np.testing.assert_allclose(ddp.solve("policy_iteration").v, _brute_force(mdp), atol=1e-9)
    assert to_quantecon is to_discrete_dp and from_quantecon is from_discrete_dp
