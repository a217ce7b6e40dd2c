"""Tests for the public hypothesis strategies in rlref.testing: each test names the claim it checks."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from scipy.special import logit

import rlref
from rlref.policy import validate_policy
from rlref.testing import distributions, linear_mdps, policies, preference_matrices, rewards, tabular_mdps

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIND = settings(max_examples=300, database=None, deadline=None)


def _rows(mdp: rlref.TabularMDP) -> np.ndarray:
    return mdp.dense_P().reshape(-1, mdp.num_states)


# ----------------------------------------------------------------------------- tabular_mdps
@SETTINGS
@given(tabular_mdps(min_states=2, max_states=5, min_actions=2, max_actions=3, horizon=(2, 3), gamma=(0.1, 0.8)))
def test_generated_mdps_validate_and_respect_bounds(mdp: rlref.TabularMDP) -> None:
    """Every MDP is a valid TabularMDP within the size bounds; rows sum to 1 within 1e-12."""
    assert isinstance(mdp, rlref.TabularMDP)
    assert 2 <= mdp.num_states <= 5 and 2 <= mdp.num_actions <= 3
    rows = _rows(mdp)
    assert np.all(rows >= 0)
    assert np.max(np.abs(rows.sum(axis=1) - 1)) <= 1e-12
    assert abs(mdp.mu0.sum() - 1) <= 1e-12 and np.all(mdp.mu0 > 0)
    assert np.all(np.abs(mdp.r) <= 1.0)
    if mdp.horizon is None:
        assert 0.1 <= mdp.gamma <= 0.8
    else:
        assert mdp.horizon in (2, 3) and mdp.gamma == 1.0
    # re-validation from the raw arrays succeeds (independent of the strategy's own construction)
    again = rlref.TabularMDP(mdp.P, mdp.R, gamma=mdp.gamma, horizon=mdp.horizon, mu0=mdp.mu0, reward_axes=mdp.reward_axes)
    np.testing.assert_array_equal(again.r, mdp.r)


@SETTINGS
@given(
    sparse=tabular_mdps(sparse=True),
    dense=tabular_mdps(sparse=False),
    det=tabular_mdps(deterministic=True),
    positive=tabular_mdps(deterministic=False, allow_zeros=False),
)
def test_sparse_and_deterministic_flags(sparse, dense, det, positive) -> None:  # type: ignore[no-untyped-def]
    """sparse=True -> scipy.sparse (S·A, S) P; sparse=False -> dense; deterministic -> 0/1 rows;
    deterministic=False without zeros -> every transition probability > 0."""
    assert sparse.is_sparse and sp.issparse(sparse.P) and sparse.P.shape == (sparse.S * sparse.A, sparse.S)
    assert not dense.is_sparse and isinstance(dense.P, np.ndarray)
    rows = _rows(det)
    assert set(np.unique(rows)) <= {0.0, 1.0} and np.all(rows.sum(axis=1) == 1.0)
    assert np.all(_rows(positive) > 0)


@SETTINGS
@given(
    disc=tabular_mdps(discounted=True, gamma=0.7),
    fin=tabular_mdps(discounted=False, horizon=(2, 5)),
    staged=tabular_mdps(stage_dependent=True),
    stationary=tabular_mdps(discounted=False, stage_dependent=False),
    sa=tabular_mdps(reward_shape="sa"),
    sas=tabular_mdps(reward_shape="sas"),
    uniform_mu0=tabular_mdps(random_mu0=False, reward_range=(2.0, 3.0)),
)
def test_horizon_stage_reward_and_mu0_flags(disc, fin, staged, stationary, sa, sas, uniform_mu0) -> None:  # type: ignore[no-untyped-def]
    """discounted -> gamma given, no horizon; finite -> horizon in range; stage_dependent -> staged
    arrays; reward_shape -> R[s, a] or R[s, a, s']; random_mu0=False -> uniform mu0; reward_range."""
    assert disc.horizon is None and disc.gamma == 0.7 and not disc.is_stage_dependent
    assert fin.is_finite_horizon and 2 <= fin.horizon <= 5
    assert staged.is_finite_horizon and staged.is_stage_dependent
    assert staged.r.ndim == 3 or (not staged.is_sparse and staged.P.ndim == 4)
    assert stationary.is_finite_horizon and not stationary.is_stage_dependent
    S, A, H = sa.S, sa.A, sa.horizon
    assert sa.R.shape in {(S, A), (H, S, A)}
    S, A, H = sas.S, sas.A, sas.horizon
    assert sas.R.shape in {(S, A, S), (H, S, A, S)}
    # a stationary MDP must not be mistaken for a stage-dependent one (R[s,a,s'] vs R[h,s,a])
    assert sas.is_stage_dependent == (sas.R.ndim == 4 or (not sas.is_sparse and sas.P.ndim == 4))
    np.testing.assert_array_equal(uniform_mu0.mu0, np.full(uniform_mu0.S, 1 / uniform_mu0.S))
    assert np.all((uniform_mu0.r >= 2.0) & (uniform_mu0.r <= 3.0))


@pytest.mark.parametrize(
    "condition",
    [
        lambda m: m.is_sparse and m.is_finite_horizon and m.is_stage_dependent,
        lambda m: m.is_sparse and not m.is_finite_horizon,
        lambda m: not m.is_sparse and m.P.ndim == 4,
        lambda m: not m.is_sparse and m.R.ndim == 3 and not m.is_finite_horizon,
        lambda m: m.S >= 2 and not set(np.unique(_rows(m))) <= {0.0, 1.0},
        lambda m: m.S >= 2 and set(np.unique(_rows(m))) <= {0.0, 1.0},
        lambda m: m.S >= 3 and np.any(_rows(m) == 0) and np.any((_rows(m) > 0) & (_rows(m) < 1)),
        lambda m: not np.allclose(m.mu0, 1 / m.S),
    ],
    ids=["sparse-staged", "sparse-discounted", "dense-staged-P", "dense-sas-discounted",
         "stochastic", "deterministic", "exact-zeros", "random-mu0"],
)
def test_default_flags_reach_every_kind(condition) -> None:  # type: ignore[no-untyped-def]
    """With the flags left at None, every kind of MDP is generated (hypothesis.find succeeds)."""
    mdp = find(tabular_mdps(), condition, settings=FIND)
    assert condition(mdp)


def test_mdps_shrink_to_minimal_sizes() -> None:
    """A failing property shrinks to the smallest MDP that still fails: S = 3, A = 1, H = 1."""
    mdp = find(tabular_mdps(), lambda m: m.num_states >= 3, settings=FIND)
    assert mdp.num_states == 3 and mdp.num_actions == 1
    assert mdp.horizon in (None, 1)


# ----------------------------------------------------------------------------- policies
@SETTINGS
@given(st.data())
def test_policies_are_stochastic_and_flags_hold(data: st.DataObject) -> None:
    """policies(mdp) are valid policies of mdp; deterministic -> one-hot; stages -> (H, S, A)."""
    mdp = data.draw(tabular_mdps(max_states=4))
    pi = data.draw(policies(mdp))
    assert pi.shape == (mdp.S, mdp.A)
    validate_policy(mdp, pi)
    assert np.all(pi >= 0) and np.max(np.abs(pi.sum(axis=-1) - 1)) <= 1e-12
    det = data.draw(policies(mdp, deterministic=True))
    assert set(np.unique(det)) <= {0.0, 1.0} and np.all(det.sum(axis=-1) == 1.0)
    staged = data.draw(policies(mdp, stages=True))
    expected = (mdp.horizon, mdp.S, mdp.A) if mdp.is_finite_horizon else (mdp.S, mdp.A)
    assert staged.shape == expected
    validate_policy(mdp, staged)
    full = data.draw(policies(mdp, deterministic=False, allow_zeros=False))
    assert np.all(full > 0)


def test_policies_flatmap_pattern() -> None:
    """The documented flatmap pattern pairs each MDP with one of its policies."""
    pairs = tabular_mdps(max_states=3).flatmap(lambda m: st.tuples(st.just(m), policies(m)))

    @settings(max_examples=10, deadline=None)
    @given(pairs)
    def check(pair: tuple[rlref.TabularMDP, np.ndarray]) -> None:
        mdp, pi = pair
        # every stage of a stage-dependent MDP (whose operators need the stage h)
        stages = range(mdp.horizon) if mdp.is_stage_dependent else [None]
        for h in stages:
            pi_h = pi[h] if pi.ndim == 3 else pi
            P_pi = mdp.policy_transition(pi_h, h)
            P_pi = P_pi.toarray() if sp.issparse(P_pi) else P_pi
            assert np.max(np.abs(P_pi.sum(axis=1) - 1)) <= 1e-12

    check()


# ----------------------------------------------------------------------------- distributions, rewards
@SETTINGS
@given(
    p=distributions((1, 7)),
    z=distributions(6, allow_zeros=True),
    m=distributions((2, 5), min_mass=0.1),
    b=distributions(3, batch_shape=(2, 4)),
    r=rewards((3, 2), low=-2.0, high=5.0),
)
def test_distributions_and_rewards(p, z, m, b, r) -> None:  # type: ignore[no-untyped-def]
    """Vectors sum to 1 within 1e-12; sizes in range; no zeros unless allowed; min_mass; batches."""
    for x in (p, z, m, b):
        assert x.dtype == np.float64 and np.all(x >= 0)
        assert np.max(np.abs(x.sum(axis=-1) - 1)) <= 1e-12
    assert 1 <= p.shape[0] <= 7 and np.all(p > 0)
    assert z.shape == (6,) and np.any(z > 0)
    assert 2 <= m.shape[0] <= 5 and np.all(m >= 0.1 - 1e-12)
    assert b.shape == (2, 4, 3)
    assert r.shape == (3, 2) and np.all((r >= -2.0) & (r <= 5.0))


def test_distributions_reach_zeros_and_shrink() -> None:
    """allow_zeros generates exact zeros; sizes shrink to the minimum that fails."""
    z = find(distributions(5, allow_zeros=True), lambda x: np.count_nonzero(x == 0) >= 2, settings=FIND)
    assert np.count_nonzero(z == 0) >= 2
    small = find(distributions((1, 9)), lambda x: len(x) >= 4, settings=FIND)
    assert len(small) == 4


# ----------------------------------------------------------------------------- preferences
def _has_cycle(P: np.ndarray) -> bool:
    n = len(P)
    return any(P[i, j] > 0.5 and P[j, k] > 0.5 and P[k, i] > 0.5 for i, j, k in itertools.permutations(range(n), 3))


def _condorcet(P: np.ndarray) -> list[int]:
    n = len(P)
    return [i for i in range(n) if all(P[i, j] > 0.5 for j in range(n) if j != i)]


@SETTINGS
@given(any_=preference_matrices((1, 6)), bt=preference_matrices((1, 6), transitive=True),
       cyc=preference_matrices((3, 6), transitive=False))
def test_preference_matrices(any_: np.ndarray, bt: np.ndarray, cyc: np.ndarray) -> None:
    """P ∈ [0,1], P + Pᵀ = 1 exactly, diagonal 1/2; transitive -> a Condorcet winner and logit P
    additive (Bradley–Terry: logit P[i,j] + logit P[j,k] = logit P[i,k]); intransitive -> a 3-cycle
    with P > 1/2 along it."""
    for P in (any_, bt, cyc):
        n = len(P)
        assert P.shape == (n, n) and np.all((P >= 0) & (P <= 1))
        assert np.all(P + P.T == 1.0)
        assert np.all(np.diag(P) == 0.5)
    assert len(_condorcet(bt)) == 1
    L = logit(bt)
    n = len(bt)
    for i, j, k in itertools.product(range(n), repeat=3):
        assert L[i, j] + L[j, k] == pytest.approx(L[i, k], abs=1e-9)
    assert not _has_cycle(bt)
    assert len(cyc) >= 3 and _has_cycle(cyc)


def test_preference_default_reaches_both_kinds() -> None:
    """transitive=None generates matrices with and without a preference cycle."""
    assert _has_cycle(find(preference_matrices(4), _has_cycle, settings=FIND))
    assert not _has_cycle(find(preference_matrices(4), lambda P: not _has_cycle(P), settings=FIND))


# ----------------------------------------------------------------------------- linear MDPs
@settings(max_examples=15, deadline=None)
@given(lin=linear_mdps(min_states=2, max_states=4, max_actions=3, min_dim=2, max_dim=3, gamma=(0.2, 0.9)),
       fin=linear_mdps(max_states=3, discounted=False, horizon=(2, 3)))
def test_linear_mdps(lin, fin) -> None:  # type: ignore[no-untyped-def]
    """linear_mdps give LinearMDPs within bounds whose P = ⟨φ, μ⟩ is a stochastic kernel."""
    from rlref.linear import LinearMDP

    assert isinstance(lin, LinearMDP)
    assert 2 <= lin.num_states <= 4 and 1 <= lin.num_actions <= 3 and 2 <= lin.dim <= 3
    assert 0.2 <= lin.gamma <= 0.9 and lin.horizon is None
    P = np.einsum("sad,dt->sat", lin.phi, lin.mu)
    assert np.all(P >= -1e-12) and np.max(np.abs(P.sum(axis=-1) - 1)) <= 1e-9
    np.testing.assert_allclose(lin.r, lin.phi @ lin.theta, rtol=1e-12)
    assert isinstance(lin.to_tabular(), rlref.TabularMDP)
    assert fin.horizon in (2, 3)


# ----------------------------------------------------------------------------- arguments, import
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: tabular_mdps(min_states=0), "min_states"),
        (lambda: tabular_mdps(min_states=4, max_states=2), "max_states"),
        (lambda: tabular_mdps(max_actions=0), "max_actions"),
        (lambda: tabular_mdps(discounted=True, stage_dependent=True), "stage_dependent"),
        (lambda: tabular_mdps(reward_shape="s"), "reward_shape"),
        (lambda: tabular_mdps(gamma=1.0), "gamma"),
        (lambda: tabular_mdps(horizon=0), "horizon"),
        (lambda: tabular_mdps(sparse="yes"), "sparse"),
        (lambda: tabular_mdps(reward_range=(1.0, 0.0)), "reward_range"),
        (lambda: distributions(0), "n"),
        (lambda: distributions(4, min_mass=0.3), "min_mass"),
        (lambda: preference_matrices(2, transitive=False), "n >= 3"),
        (lambda: policies("mdp"), "mdp"),
        (lambda: rewards((2, -1)), "shape"),
        (lambda: linear_mdps(min_dim=0), "min_dim"),
    ],
)
def test_bad_arguments_raise_value_error(make, match) -> None:  # type: ignore[no-untyped-def]
    """Inconsistent strategy arguments raise ValueError at call time, naming the argument."""
    with pytest.raises(ValueError, match=match):
        make()


def test_imports_without_pytest() -> None:
    """rlref.testing is importable in a process that never imports pytest."""
    code = "import sys, rlref.testing; assert 'pytest' not in sys.modules, 'pytest imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_worked_example_in_docs_runs() -> None:
    """The worked example in docs/testing.md runs and its properties hold."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "testing.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/testing.md", "exec"), namespace)
    tests = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    assert len(tests) == 3
    for t in tests:
        t()


# ----------------------------------------------------------------------------- hostile strategies
def test_hostile_arrays_applies_each_documented_mutation() -> None:
    """Each mutation in ARRAY_MUTATIONS is reachable and does what its name says."""
    from rlref.testing import ARRAY_MUTATIONS, hostile_arrays

    base = st.just(np.array([[0.25, 0.75], [0.5, 0.5]]))
    checks = {
        "nan": lambda x: isinstance(x, np.ndarray) and np.isnan(x).sum() == 1,
        "inf": lambda x: isinstance(x, np.ndarray) and np.isposinf(x).sum() == 1,
        "-inf": lambda x: isinstance(x, np.ndarray) and np.isneginf(x).sum() == 1,
        "negative": lambda x: isinstance(x, np.ndarray) and x.dtype == np.float64 and (x < 0).sum() == 1,
        "subnormal": lambda x: isinstance(x, np.ndarray) and (x == 5e-311).sum() == 1,
        "huge": lambda x: isinstance(x, np.ndarray) and (x == 1e300).sum() == 1,
        "float32": lambda x: isinstance(x, np.ndarray) and x.dtype == np.float32,
        "float16": lambda x: isinstance(x, np.ndarray) and x.dtype == np.float16,
        "complex": lambda x: isinstance(x, np.ndarray) and np.iscomplexobj(x) and np.any(x.imag != 0),
        "complex_real": lambda x: isinstance(x, np.ndarray) and np.iscomplexobj(x) and np.all(x.imag == 0),
        "int": lambda x: isinstance(x, np.ndarray) and x.dtype == np.int64,
        "bool": lambda x: isinstance(x, np.ndarray) and x.dtype == bool,
        "empty": lambda x: isinstance(x, np.ndarray) and x.shape == (2, 0),
        "drop_axis": lambda x: isinstance(x, np.ndarray) and x.shape == (2,),
        "add_axis": lambda x: isinstance(x, np.ndarray) and x.shape == (1, 2, 2),
        "shrink_last": lambda x: isinstance(x, np.ndarray) and x.shape == (2, 1),
        "list": lambda x: isinstance(x, list) and np.array_equal(np.asarray(x), [[0.25, 0.75], [0.5, 0.5]]),
        "string": lambda x: isinstance(x, str),
        "none": lambda x: x is None,
    }
    assert set(checks) == set(ARRAY_MUTATIONS)
    for kind, ok in checks.items():
        x = find(hostile_arrays(base, mutations=[kind]), lambda _: True)
        assert ok(x), (kind, x)
    with pytest.raises(ValueError, match="mutations"):
        hostile_arrays(base, mutations=["melt"])
    with pytest.raises(ValueError, match="base"):
        hostile_arrays(np.zeros(2))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "condition",
    [
        lambda x: isinstance(x, float) and np.isnan(x),
        lambda x: isinstance(x, float) and x == 5e-324,
        lambda x: isinstance(x, np.float32),
        lambda x: x is True,
        lambda x: isinstance(x, str),
        lambda x: x is None,
        lambda x: isinstance(x, complex),
        lambda x: isinstance(x, np.ndarray) and x.shape == (1,),
    ],
)
def test_hostile_scalars_reach_every_kind(condition) -> None:  # type: ignore[no-untyped-def]
    from rlref.testing import hostile_scalars

    find(hostile_scalars(), condition, settings=settings(max_examples=2000, database=None))


def test_hostile_scalars_mixes_in_valid_values() -> None:
    from rlref.testing import hostile_scalars

    find(hostile_scalars(valid=st.just(0.123)), lambda x: isinstance(x, float) and x == 0.123)
    with pytest.raises(ValueError, match="valid"):
        hostile_scalars(valid=0.5)  # type: ignore[arg-type]


def test_fuzzing_example_in_docs_runs() -> None:
    """The hostile_arrays example in docs/testing.md runs and its property holds."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "testing.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    code = next(b for b in blocks if "hostile_arrays" in b)
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/testing.md", "exec"), namespace)
    namespace["test_kl_refuses_or_is_right"]()  # type: ignore[operator]


@settings(max_examples=40, deadline=None)
@given(tabular_mdps(min_actions=2, masked=True).flatmap(lambda m: st.tuples(st.just(m), policies(m), policies(m, deterministic=True))))
def test_masked_mdps_have_a_valid_mask_and_their_policies_respect_it(triple):
    mdp, pi, det = triple
    mask = mdp.action_mask
    assert mask is not None and mask.shape == (mdp.num_states, mdp.num_actions)
    assert mask.any(axis=1).all() and not mask.all()  # >= 1 action per state, >= 1 masked pair
    for p in (pi, det):
        assert np.all(p[..., ~mask] == 0.0)
        np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-12)
    assert set(np.unique(det)) <= {0.0, 1.0}


def test_masked_false_by_default_and_validated():
    with pytest.raises(ValueError, match="masked"):
        tabular_mdps(masked="yes")
