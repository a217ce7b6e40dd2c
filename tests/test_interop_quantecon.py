"""Tests of rlref.interop.quantecon: DiscreteDP converters round-trip in both input formats."""

from __future__ import annotations

import numpy as np
import pytest

import rlref.solve as rs

from helpers import random_mdp

qe = pytest.importorskip("quantecon")
from quantecon.markov import DiscreteDP  # noqa: E402

from rlref.interop.quantecon import from_discrete_dp, to_discrete_dp  # noqa: E402


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
    fill='duplicate' and keeps V*; without it the missing action is an error naming the state."""
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
        from_discrete_dp(ddp)
    mdp = from_discrete_dp(ddp, fill="duplicate")
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
