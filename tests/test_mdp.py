"""TabularMDP: construction, validation, read-only storage, dense/sparse agreement."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref import TabularMDP
from rlref.policy import uniform_policy


def random_P(rng: np.random.Generator, S: int, A: int) -> np.ndarray:
    return rng.dirichlet(np.ones(S), size=(S, A))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), S=st.integers(1, 7), A=st.integers(1, 4))
def test_sparse_and_dense_storage_define_the_same_mdp(seed: int, S: int, A: int) -> None:
    """The (S·A, S) sparse layout (row s·A + a = P(·|s,a)) is the same kernel as P[s, a, s']."""
    rng = np.random.default_rng(seed)
    P = random_P(rng, S, A)
    R3 = rng.normal(size=(S, A, S))
    dense = TabularMDP(P, R3, gamma=0.9)
    sparse = TabularMDP(sp.csr_matrix(P.reshape(S * A, S)), R3, gamma=0.9)
    assert sparse.is_sparse and not dense.is_sparse
    np.testing.assert_allclose(sparse.r, dense.r, atol=1e-12)
    # r[s, a] = Σ_s' P(s'|s,a) R(s,a,s'), computed independently with a loop
    r_loop = np.array([[sum(P[s, a, t] * R3[s, a, t] for t in range(S)) for a in range(A)] for s in range(S)])
    np.testing.assert_allclose(dense.r, r_loop, atol=1e-12)
    v = rng.normal(size=S)
    np.testing.assert_allclose(sparse.expected_next(v), dense.expected_next(v), atol=1e-12)
    pi = rng.dirichlet(np.ones(A), size=S)
    np.testing.assert_allclose(sparse.policy_transition(pi).toarray(), dense.policy_transition(pi), atol=1e-12)
    np.testing.assert_allclose(sparse.dense_P(), P, atol=1e-15)
    # P_π rows are distributions
    np.testing.assert_allclose(dense.policy_transition(pi).sum(axis=1), 1.0, atol=1e-12)


def test_arrays_are_read_only_copies() -> None:
    P = np.full((2, 1, 2), 0.5)
    R = np.zeros((2, 1))
    mdp = TabularMDP(P, R, gamma=0.5)
    P[0, 0, 0] = 7.0  # the caller's array is not aliased
    assert mdp.P[0, 0, 0] == 0.5
    with pytest.raises(ValueError):
        mdp.P[0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        mdp.r[0, 0] = 1.0
    with pytest.raises(ValueError):
        mdp.mu0[0] = 1.0


def test_finite_horizon_stage_dependent() -> None:
    rng = np.random.default_rng(0)
    H, S, A = 3, 4, 2
    P = rng.dirichlet(np.ones(S), size=(H, S, A))
    R = rng.normal(size=(H, S, A))
    mdp = TabularMDP(P, R, horizon=H)
    assert mdp.is_finite_horizon and mdp.is_stage_dependent and mdp.gamma == 1.0
    np.testing.assert_allclose(mdp.reward(2), R[2])
    v = rng.normal(size=S)
    np.testing.assert_allclose(mdp.expected_next(v, h=1), P[1] @ v)
    with pytest.raises(ValueError, match="stage h"):
        mdp.reward()
    # a stationary P with a staged reward is also stage dependent
    mdp2 = TabularMDP(P[0], R, horizon=H)
    assert mdp2.is_stage_dependent
    # a stationary finite-horizon MDP is not
    assert not TabularMDP(P[0], R[0], horizon=H).is_stage_dependent


def test_default_mu0_is_uniform_and_terminal_states_validated() -> None:
    P = np.zeros((3, 2, 3))
    P[0, :, 1] = 1.0
    P[1, :, 2] = 1.0
    P[2, :, 2] = 1.0
    R = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    mdp = TabularMDP(P, R, gamma=0.9, terminal=np.array([False, False, True]))
    np.testing.assert_allclose(mdp.mu0, 1 / 3)
    with pytest.raises(ValueError, match="terminal state 1 must be absorbing"):
        TabularMDP(P, R, gamma=0.9, terminal=np.array([False, True, True]))
    R_bad = R.copy()
    R_bad[2, 1] = 1.0
    with pytest.raises(ValueError, match="terminal state 2 must earn zero reward"):
        TabularMDP(P, R_bad, gamma=0.9, terminal=np.array([False, False, True]))
    with pytest.raises(ValueError, match="boolean mask"):
        TabularMDP(P, R, gamma=0.9, terminal=np.array([0, 0, 1]))


# ---------------------------------------------------------------- one test per kind of bad input
P_OK = np.full((2, 2, 2), 0.5)
R_OK = np.zeros((2, 2))


def test_rejects_non_stochastic_rows() -> None:
    P = P_OK.copy()
    P[1, 0] = [0.5, 0.6]
    with pytest.raises(ValueError, match=r"P\[1, 0, :\] must sum to 1"):
        TabularMDP(P, R_OK, gamma=0.9)


def test_rejects_negative_probabilities() -> None:
    P = P_OK.copy()
    P[0, 1] = [1.5, -0.5]
    with pytest.raises(ValueError, match=r"P must be non-negative; P\[0, 1, 1\] = -0.5"):
        TabularMDP(P, R_OK, gamma=0.9)


def test_rejects_negative_sparse_probabilities_naming_the_pair() -> None:
    P = P_OK.copy().reshape(4, 2)
    P[3] = [1.5, -0.5]
    with pytest.raises(ValueError, match=r"P\[s=1, a=1, s'=1\] = -0.5"):
        TabularMDP(sp.csr_matrix(P), R_OK, gamma=0.9)


def test_rejects_sparse_rows_not_summing_to_one() -> None:
    P = P_OK.copy().reshape(4, 2)
    P[2] = [0.2, 0.2]
    with pytest.raises(ValueError, match=r"P\(·\|s=1, a=0\) must sum to 1"):
        TabularMDP(sp.csr_matrix(P), R_OK, gamma=0.9)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rejects_non_finite_rewards(bad: float) -> None:
    R = R_OK.copy()
    R[1, 1] = bad
    with pytest.raises(ValueError, match=r"R must be finite; R\[1, 1\]"):
        TabularMDP(P_OK, R, gamma=0.9)


def test_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="R must have shape"):
        TabularMDP(P_OK, np.zeros((3, 2)), gamma=0.9)
    with pytest.raises(ValueError, match="matching state axes"):
        TabularMDP(np.full((2, 2, 3), 1 / 3), R_OK, gamma=0.9)
    with pytest.raises(ValueError, match="mu0 must have shape"):
        TabularMDP(P_OK, R_OK, gamma=0.9, mu0=[1.0])


@pytest.mark.parametrize("gamma", [1.0, -0.1, 1.5, np.nan])
def test_rejects_gamma_outside_unit_interval(gamma: float) -> None:
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\)"):
        TabularMDP(P_OK, R_OK, gamma=gamma)


def test_finite_horizon_allows_gamma_one_but_rejects_bad_horizons() -> None:
    assert TabularMDP(P_OK, R_OK, horizon=2, gamma=1.0).gamma == 1.0
    for H in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="horizon must be a positive integer"):
            TabularMDP(P_OK, R_OK, horizon=H)
    with pytest.raises(ValueError, match="4-d P"):
        TabularMDP(np.stack([P_OK, P_OK]), R_OK, gamma=0.9)
    with pytest.raises(ValueError, match="stages but horizon"):
        TabularMDP(np.stack([P_OK, P_OK]), R_OK, horizon=3)


def test_missing_gamma_is_explained() -> None:
    with pytest.raises(ValueError, match="gamma is required"):
        TabularMDP(P_OK, R_OK)


def test_rejects_bad_mu0() -> None:
    with pytest.raises(ValueError, match="mu0"):
        TabularMDP(P_OK, R_OK, gamma=0.9, mu0=[0.7, 0.7])


def test_large_sparse_mdp_is_never_densified() -> None:
    """S = 10^5 with 5 successors per pair: construction and operators stay sparse (O(nnz))."""
    rng = np.random.default_rng(1)
    S, A, k = 100_000, 3, 5
    rows = np.repeat(np.arange(S * A), k)
    cols = rng.integers(0, S, size=S * A * k)
    vals = rng.dirichlet(np.ones(k), size=S * A).ravel()
    P = sp.csr_matrix((vals, (rows, cols)), shape=(S * A, S))
    mdp = TabularMDP(P, rng.normal(size=(S, A)), gamma=0.95)
    assert mdp.is_sparse and mdp.num_states == S and mdp.num_actions == A
    Ppi = mdp.policy_transition(uniform_policy(mdp))
    assert sp.issparse(Ppi) and Ppi.nnz <= S * A * k
    np.testing.assert_allclose(np.asarray(Ppi.sum(axis=1)).ravel(), 1.0, atol=1e-12)


def test_ambiguous_reward_layout_must_be_named() -> None:
    """With H = S = A a 3-d R could be R[s, a, s'] or R[h, s, a]: we refuse to guess."""
    P = np.full((2, 2, 2), 0.5)
    R = np.zeros((2, 2, 2))
    R[:, :, 1] = 1.0
    with pytest.raises(ValueError, match="ambiguous"):
        TabularMDP(P, R, horizon=2)
    as_transition = TabularMDP(P, R, horizon=2, reward_axes="sas")
    np.testing.assert_allclose(as_transition.r, 0.5)
    assert not as_transition.is_stage_dependent
    as_stage = TabularMDP(P, R, horizon=2, reward_axes="hsa")
    assert as_stage.is_stage_dependent
    np.testing.assert_allclose(as_stage.reward(1), R[1])
    with pytest.raises(ValueError, match="reward_axes="):
        TabularMDP(P, R[0], horizon=2, reward_axes="sas")
    with pytest.raises(ValueError, match="reward_axes must be one of"):
        TabularMDP(P, R, horizon=2, reward_axes="xyz")


def test_stage_dependent_P_requires_the_stage_instead_of_silently_using_stage_0() -> None:
    """With P[h, s, a, s'] the stage is part of the operator: h=None is an error, not stage 0."""
    rng = np.random.default_rng(3)
    H, S, A = 3, 4, 2
    P = rng.dirichlet(np.ones(S), size=(H, S, A))
    mdp = TabularMDP(P, rng.normal(size=(S, A)), horizon=H)
    v = rng.normal(size=S)
    pi = rng.dirichlet(np.ones(A), size=S)
    with pytest.raises(ValueError, match="pass the stage h"):
        mdp.expected_next(v)
    with pytest.raises(ValueError, match="pass the stage h"):
        mdp.policy_transition(pi)
    for h in range(H):
        np.testing.assert_allclose(mdp.expected_next(v, h), P[h] @ v, atol=1e-14)
        np.testing.assert_allclose(mdp.policy_transition(pi, h), np.einsum("sa,sat->st", pi, P[h]), atol=1e-14)
    with pytest.raises(ValueError, match="stage h must lie"):
        mdp.expected_next(v, H)


@pytest.mark.parametrize("storage", ["dense", "sparse", "staged"])
def test_terminal_validation_names_the_first_bad_pair_in_every_storage(storage: str) -> None:
    """Terminal checks (absorbing, zero reward) hold for dense, sparse and stage-dependent P."""
    P = np.zeros((3, 2, 3))
    P[0, :, 1] = 1.0
    P[1, :, 2] = 1.0
    P[2, :, 2] = 1.0
    R = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    kw: dict = {"gamma": 0.9}
    if storage == "sparse":
        Pin = sp.csr_matrix(P.reshape(6, 3))
    elif storage == "staged":
        Pin, kw = np.stack([P, P]), {"horizon": 2}
    else:
        Pin = P
    ok = TabularMDP(Pin, R, terminal=np.array([False, False, True]), **kw)
    assert ok.terminal.tolist() == [False, False, True]
    assert TabularMDP(Pin, R, terminal=np.zeros(3, dtype=bool), **kw).terminal.sum() == 0
    with pytest.raises(ValueError, match=r"terminal state 1 must be absorbing; P\(s'=1\|s=1, a=0\) = 0.0"):
        TabularMDP(Pin, R, terminal=np.array([False, True, True]), **kw)
    R_bad = R.copy()
    R_bad[2, 1] = -3.0
    with pytest.raises(ValueError, match=r"terminal state 2 must earn zero reward; r\[s=2, a=1\] = 3.0"):
        TabularMDP(Pin, R_bad, terminal=np.array([False, False, True]), **kw)
    if storage == "staged":  # absorbing at stage 0 but not at stage 1
        P2 = np.stack([P, P])
        P2[1, 2, 1] = [1.0, 0.0, 0.0]
        with pytest.raises(ValueError, match=r"terminal state 2 must be absorbing; P\(s'=2\|s=2, a=1\) = 0.0"):
            TabularMDP(P2, R, horizon=2, terminal=np.array([False, False, True]))


def test_many_sparse_terminal_states_are_validated_without_dense_rows() -> None:
    """S = 10^5 states, half of them terminal: validation is vectorized (no S-length row per pair)."""
    S, A = 100_000, 2
    nxt = np.where(np.arange(S) % 2 == 0, np.arange(S), np.minimum(np.arange(S) + 1, S - 1))
    cols = np.repeat(nxt, A)
    P = sp.csr_matrix((np.ones(S * A), cols, np.arange(S * A + 1)), shape=(S * A, S))
    R = np.where((np.arange(S) % 2 == 0)[:, None], 0.0, 1.0) * np.ones((S, A))
    term = np.arange(S) % 2 == 0
    mdp = TabularMDP(P, R, gamma=0.9, terminal=term)
    assert mdp.terminal.sum() == S // 2


# ----------------------------------------------------------------------------- complex and float32 input (issue #11 items 11, 21)
def _float32_chain() -> np.ndarray:
    """P[s, a, :] = float32(1/7) everywhere: each row sums to 1 + 5.1e-8 in float64."""
    return np.full((7, 2, 7), 1 / 7, dtype=np.float32)


@pytest.mark.parametrize("arg", ["P", "R", "mu0"])
def test_complex_input_is_refused_by_name(arg: str) -> None:
    """numpy would drop the imaginary part with only a ComplexWarning; TabularMDP must refuse it."""
    kw = {"P": np.full((2, 2, 2), 0.5), "R": np.zeros((2, 2)), "gamma": 0.9, "mu0": np.array([0.5, 0.5])}
    kw[arg] = kw[arg].astype(complex) + (0.5j if arg != "P" else 0.0j)
    with pytest.raises(ValueError, match=rf"{arg} must be real"):
        TabularMDP(**kw)


@pytest.mark.parametrize("arg", ["P", "R"])
def test_complex_sparse_input_is_refused_by_name(arg: str) -> None:
    P = sp.csr_matrix(np.full((4, 2), 0.5))
    R = sp.csr_matrix(np.zeros((4, 2)))
    kw = {"P": P, "R": R}
    kw[arg] = kw[arg].astype(complex)
    with pytest.raises(ValueError, match=rf"{arg} must be real"):
        TabularMDP(kw["P"], kw["R"], gamma=0.9)


def test_float32_transitions_normalized_in_float32_are_accepted_and_renormalized() -> None:
    """Rows off by 5e-8 (float32 rounding) exceed the float64 tolerance 1e-8 but are within
    A · eps(float32); the MDP stores them in float64 with rows summing to 1 at float64 precision."""
    P32 = _float32_chain()
    assert abs(float(P32.astype(np.float64)[0, 0].sum()) - 1.0) > 1e-8  # the premise of the test
    m = TabularMDP(P32, np.zeros((7, 2)), gamma=0.9, mu0=np.full(7, 1 / 7, dtype=np.float32))
    assert m.P.dtype == np.float64 and m.mu0.dtype == np.float64
    np.testing.assert_allclose(m.P.sum(axis=-1), 1.0, atol=1e-15)
    np.testing.assert_allclose(m.mu0.sum(), 1.0, atol=1e-15)
    np.testing.assert_allclose(m.P, 1 / 7, rtol=1e-15)
    ms = TabularMDP(sp.csr_matrix(P32.reshape(14, 7)), np.zeros((7, 2)), gamma=0.9)
    np.testing.assert_allclose(np.asarray(ms.P.sum(axis=1)).ravel(), 1.0, atol=1e-15)


def test_float64_rows_off_by_5e_8_are_still_refused_with_the_tolerance_named() -> None:
    P = _float32_chain().astype(np.float64)
    with pytest.raises(ValueError, match=r"P\[0, 0, :\] must sum to 1 .*within 1e-08.*float32 rounding"):
        TabularMDP(P, np.zeros((7, 2)), gamma=0.9)
    # and a float32 row that is really wrong (off by 1e-3) is refused at its own tolerance
    bad = _float32_chain()
    bad[0, 0, 0] += np.float32(1e-3)
    with pytest.raises(ValueError, match=r"P\[0, 0, :\] must sum to 1"):
        TabularMDP(bad, np.zeros((7, 2)), gamma=0.9)


@pytest.mark.parametrize("h", [1.5, True, "0", -1])
def test_stage_index_must_be_an_integer_in_range(h) -> None:
    m = TabularMDP(np.full((3, 2, 2, 2), 0.5), np.zeros((2, 2)), horizon=3)
    with pytest.raises(ValueError, match="stage h"):
        m.expected_next(np.zeros(2), h)
