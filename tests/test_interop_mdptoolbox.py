"""rlref.interop.mdptoolbox against pymdptoolbox itself: its example problems, its policy iteration and finite-horizon solver."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

tb_mdp = pytest.importorskip("mdptoolbox.mdp")
tb_example = pytest.importorskip("mdptoolbox.example")

from rlref.envs import garnet  # noqa: E402
from rlref.interop.mdptoolbox import from_mdptoolbox, to_mdptoolbox  # noqa: E402
from rlref.mdp import TabularMDP  # noqa: E402
from rlref.solve import optimal  # noqa: E402

# pymdptoolbox's own input check compares a sparse matrix with 0 (its warning, not ours)
pytestmark = pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning")


def _pi(P, R, discount):
    pi = tb_mdp.PolicyIteration(P, R, discount)  # eval_type=0: exact evaluation by a linear solve
    pi.run()
    return np.asarray(pi.V), np.asarray(pi.policy)


@pytest.mark.parametrize("sparse", [False, True])
def test_to_mdptoolbox_fed_to_pymdptoolbox_policy_iteration_gives_rlrefs_optimum(sparse):
    mdp = garnet(30, 4, 5, gamma=0.9, seed=2, sparse=sparse)
    arrays = to_mdptoolbox(mdp)
    assert isinstance(arrays.transitions, tuple) == sparse
    V, policy = _pi(*arrays)
    ours = optimal(mdp, 1e-11)
    np.testing.assert_allclose(ours.values, V, atol=1e-8)
    np.testing.assert_array_equal(np.argmax(ours.policy, axis=-1), policy)
    gaps = np.sort(ours.q, axis=-1)
    assert (gaps[:, -1] - gaps[:, -2]).min() > 1e-6  # unique optimal actions: the policies must agree exactly


@pytest.mark.parametrize("is_sparse", [False, True])
def test_pymdptoolbox_forest_problem_converts_and_solves_to_its_own_answer(is_sparse):
    """The toolbox's forest-management example (P (A, S, S) or a list of sparse matrices, R (S, A))."""
    P, R = tb_example.forest(S=6, r1=4, r2=2, p=0.1, is_sparse=is_sparse)
    mdp = from_mdptoolbox(P, R, 0.95)
    assert mdp.is_sparse == is_sparse and (mdp.num_states, mdp.num_actions) == (6, 2)
    V, policy = _pi(P, R, 0.95)
    ours = optimal(mdp, 1e-11)
    np.testing.assert_allclose(ours.values, V, atol=1e-8)
    np.testing.assert_array_equal(np.argmax(ours.policy, axis=-1), policy)


@pytest.mark.parametrize("is_sparse", [False, True])
def test_transition_rewards_R_ass_are_averaged_over_the_next_state(is_sparse):
    """tb_example.rand gives R[a, s, s'] (dense, or a list of sparse matrices): r(s, a) = Σ_s' P R; V* agrees with the toolbox."""
    np.random.seed(0)  # noqa: NPY002 - pymdptoolbox's example draws from numpy's global generator
    P, R = tb_example.rand(8, 3, is_sparse=is_sparse)
    mdp = from_mdptoolbox(P, R, 0.9)
    Pd = np.stack([Pa.toarray() if sp.issparse(Pa) else Pa for Pa in P])
    Rd = np.stack([Ra.toarray() if sp.issparse(Ra) else Ra for Ra in R])
    np.testing.assert_allclose(mdp.r, np.einsum("ast,ast->sa", Pd, Rd), atol=1e-14)
    V, _ = _pi(P, R, 0.9)
    np.testing.assert_allclose(optimal(mdp, 1e-11).values, V, atol=1e-8)


def test_state_reward_vector_is_the_same_for_every_action():
    P, R = tb_example.forest(S=4)
    Rs = np.array([1.0, -2.0, 0.5, 3.0])
    mdp = from_mdptoolbox(P, Rs, 0.9)
    np.testing.assert_array_equal(mdp.r, np.repeat(Rs[:, None], 2, axis=1))
    V, _ = _pi(P, Rs, 0.9)
    np.testing.assert_allclose(optimal(mdp, 1e-11).values, V, atol=1e-8)


def test_finite_horizon_matches_pymdptoolbox_finite_horizon():
    """FiniteHorizon(P, R, discount, N).V[:, 0] = rlref's backward-induction V*_0 (discount 1 allowed with a horizon)."""
    P, R = tb_example.forest(S=5)
    for discount in (0.9, 1.0):
        fh = tb_mdp.FiniteHorizon(P, R, discount, 6)
        fh.run()
        mdp = from_mdptoolbox(P, R, discount, horizon=6)
        np.testing.assert_allclose(optimal(mdp).values[0], np.asarray(fh.V)[:, 0], atol=1e-12)
        back = to_mdptoolbox(mdp)
        assert back.horizon == 6 and back.discount == discount


@pytest.mark.parametrize("sparse", [False, True])
def test_round_trips_are_exact(sparse):
    mdp = garnet(9, 3, 3, gamma=0.8, seed=5, sparse=sparse)
    back = from_mdptoolbox(*to_mdptoolbox(mdp))
    assert back.is_sparse == sparse
    np.testing.assert_array_equal(back.dense_P(), mdp.dense_P())
    np.testing.assert_array_equal(back.r, mdp.r)
    assert back.gamma == mdp.gamma
    P, R = tb_example.forest(S=5)
    again = to_mdptoolbox(from_mdptoolbox(P, R, 0.9))
    np.testing.assert_array_equal(again.transitions, P)
    np.testing.assert_array_equal(again.reward, R)


def test_bad_inputs_name_the_argument():
    P, R = tb_example.forest(S=4)
    bad = P.copy()
    bad[1, 2, 0] += 0.5
    with pytest.raises(ValueError, match=r"P\[1, 2, :\] must sum to 1"):  # named in the toolbox's layout [a, s, :]
        from_mdptoolbox(bad, R, 0.9)
    with pytest.raises(ValueError, match=r"P\[1\]\[2, :\] sums to"):
        from_mdptoolbox([sp.csr_matrix(P[0]), sp.csr_matrix(bad[1])], R, 0.9)
    with pytest.raises(ValueError, match=r"P\[1\] must be a square"):
        from_mdptoolbox([P[0], P[1][:3]], R, 0.9)
    with pytest.raises(ValueError, match=r"R must have shape"):
        from_mdptoolbox(P, R[:3], 0.9)
    with pytest.raises(ValueError, match=r"discount=1 needs horizon"):
        from_mdptoolbox(P, R, 1.0)
    Rn = R.copy()
    Rn[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"R must be finite; R\[2, 1\] = nan"):
        from_mdptoolbox(P, Rn, 0.9)
    staged = TabularMDP(P=np.stack([garnet(3, 2, 2, gamma=0.9, seed=k).dense_P() for k in range(2)]), R=np.zeros((2, 3, 2)), horizon=2)
    with pytest.raises(ValueError, match="stationary"):
        to_mdptoolbox(staged)


def test_to_mdptoolbox_refuses_an_action_mask():
    from rlref.interop import to_mdptoolbox
    from rlref.mdp import TabularMDP

    P = np.full((2, 2, 2), 0.5)
    mask = np.array([[True, False], [True, True]])
    mdp = TabularMDP(P, np.zeros((2, 2)), gamma=0.9, action_mask=mask)
    with pytest.raises(ValueError, match="action_mask"):
        to_mdptoolbox(mdp)
