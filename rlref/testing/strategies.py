"""Hypothesis strategies for property-testing RL algorithms on random finite problems.

Every strategy first draws the *sizes and flags* (so hypothesis shrinks a failing example to
the fewest states, actions, stages) and then one integer seed from which the arrays are generated
with a ``numpy.random.Generator`` (fast, and the seed shrinks towards 0). Probability vectors
are normalized positive draws, optionally with exact zeros, so every row sums to 1 within 1e-12.

Import as ``from rlref.testing import tabular_mdps, policies, distributions, ...``; needs
``hypothesis`` (the ``testing`` extra), not pytest.

References: MacIver et al. (2019), "Hypothesis: A new approach to property-based testing",
JOSS 4(43):1891; Bradley & Terry (1952) (the transitive preference matrices).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from scipy.special import expit

from rlref.mdp import TabularMDP

__all__ = [
    "tabular_mdps",
    "policies",
    "distributions",
    "rewards",
    "linear_mdps",
    "preference_matrices",
    "hostile_scalars",
    "hostile_arrays",
    "HOSTILE_FLOATS",
    "ARRAY_MUTATIONS",
]

_SEEDS = st.integers(min_value=0, max_value=2**32 - 1)

IntRange = int | tuple[int, int]
FloatRange = float | tuple[float, float] | SearchStrategy


# ----------------------------------------------------------------------------- argument checks
def _int_range(name: str, value: IntRange, minimum: int) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        lo = hi = int(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value):
        lo, hi = int(value[0]), int(value[1])
    else:
        raise ValueError(f"{name} must be an int or a (min, max) pair of ints, got {value!r}")
    if lo < minimum or hi < lo:
        raise ValueError(f"{name} must satisfy {minimum} <= min <= max, got {value!r}")
    return lo, hi


def _bounds(name_lo: str, lo: int, name_hi: str, hi: int, minimum: int = 1) -> None:
    for n, v in ((name_lo, lo), (name_hi, hi)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{n} must be an integer, got {v!r}")
    if lo < minimum:
        raise ValueError(f"{name_lo} must be >= {minimum}, got {lo!r}")
    if hi < lo:
        raise ValueError(f"{name_hi} must be >= {name_lo} = {lo}, got {hi!r}")


def _tristate(name: str, value: Any) -> None:
    if value not in (None, True, False):
        raise ValueError(f"{name} must be None (either), True or False, got {value!r}")


def _float_strategy(name: str, value: FloatRange, lo_ok: float, hi_ok: float, hi_open: bool) -> SearchStrategy:
    if isinstance(value, SearchStrategy):
        return value
    if isinstance(value, (int, float, np.floating)) and not isinstance(value, bool):
        lo = hi = float(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        lo, hi = float(value[0]), float(value[1])
    else:
        raise ValueError(f"{name} must be a float, a (min, max) pair or a hypothesis strategy, got {value!r}")
    upper_ok = hi < hi_ok if hi_open else hi <= hi_ok
    if not (np.isfinite(lo) and np.isfinite(hi) and lo_ok <= lo <= hi and upper_ok):
        interval = f"[{lo_ok}, {hi_ok})" if hi_open else f"[{lo_ok}, {hi_ok}]"
        raise ValueError(f"{name} must lie in {interval} with min <= max, got {value!r}")
    return st.just(lo) if lo == hi else st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _flag(draw: Any, value: bool | None) -> bool:
    return draw(st.booleans()) if value is None else bool(value)


# ----------------------------------------------------------------------------- numpy builders
def _simplex(rng: np.random.Generator, shape: tuple[int, ...], zero_prob: float = 0.0, min_mass: float = 0.0) -> np.ndarray:
    """Rows over the last axis: normalized positive draws spanning a few orders of magnitude,
    each entry zero with probability ``zero_prob`` (at least one entry per row kept), and every
    non-zero entry >= ``min_mass``."""
    power = rng.uniform(1.0, 3.0)
    w = rng.exponential(size=shape) ** power + 1e-12
    if zero_prob > 0:
        keep = rng.random(size=shape) >= zero_prob
        forced = rng.integers(shape[-1], size=shape[:-1])
        np.put_along_axis(keep, forced[..., None], True, axis=-1)
        w = np.where(keep, w, 0.0)
    p = w / w.sum(axis=-1, keepdims=True)
    if min_mass > 0:
        k = np.count_nonzero(p, axis=-1)[..., None]
        p = np.where(p > 0, min_mass + (1.0 - k * min_mass) * p, 0.0)
        p = p / p.sum(axis=-1, keepdims=True)
    return p


def _one_hot(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    idx = rng.integers(shape[-1], size=shape[:-1])
    return np.eye(shape[-1])[idx]


# ----------------------------------------------------------------------------- public strategies
def _action_mask(rng: np.random.Generator, S: int, A: int) -> np.ndarray:
    """A random bool mask[s, a] with >= 1 available action per state and, when A >= 2, >= 1 masked pair."""
    mask = rng.random((S, A)) >= rng.uniform(0.1, 0.7)
    keep = rng.integers(A, size=S)
    mask[np.arange(S), keep] = True
    if A >= 2 and mask.all():
        s = int(rng.integers(S))
        mask[s, (keep[s] + 1) % A] = False
    return mask


def tabular_mdps(
    min_states: int = 1,
    max_states: int = 6,
    min_actions: int = 1,
    max_actions: int = 4,
    *,
    discounted: bool | None = None,
    horizon: IntRange = (1, 4),
    sparse: bool | None = None,
    deterministic: bool | None = None,
    stage_dependent: bool | None = None,
    reward_shape: str | None = None,
    gamma: FloatRange = (0.0, 0.95),
    random_mu0: bool | None = None,
    allow_zeros: bool = True,
    reward_range: tuple[float, float] = (-1.0, 1.0),
    masked: bool | None = False,
) -> SearchStrategy[TabularMDP]:
    """Random finite MDPs (:class:`rlref.TabularMDP`), discounted or finite-horizon.

    Args:
      min_states, max_states, min_actions, max_actions: inclusive bounds on S and A.
      discounted: True -> ``gamma`` drawn from ``gamma``, ``horizon=None``; False -> a finite
        horizon ``H`` drawn from ``horizon`` (gamma = 1); None -> either.
      horizon: H (int) or (min, max) for finite-horizon MDPs.
      sparse: True -> ``P`` is a scipy.sparse CSR matrix of shape (S·A, S) (``mdp.is_sparse``);
        False -> dense ``P[s, a, s']``; None -> either.
      deterministic: True -> every ``P(·|s, a)`` is one-hot; False -> random stochastic rows
        (a row may still be one-hot, e.g. when S = 1 or zeros are allowed); None -> either.
      stage_dependent: finite horizon only. True -> ``mdp.is_stage_dependent`` (rewards
        ``R[h, ...]``, and for dense MDPs possibly ``P[h, s, a, s']`` too); False -> stationary;
        None -> either. ``discounted=True`` with ``stage_dependent=True`` is rejected.
      reward_shape: ``"sa"`` (``R[s, a]``), ``"sas"`` (``R[s, a, s']``) or None (either); a
        stage axis is prepended for stage-dependent rewards. A stationary ``R[s, a, s']`` has
        the shape of a staged ``R[h, s, a]`` when H = S = A, so such horizons are skipped (and
        if the horizon range allows nothing else, ``R[s, a]`` is used).
      gamma: discount for discounted MDPs: a float, a (min, max) pair in [0, 1), or a strategy.
      random_mu0: True -> a random full-support ``mu0``; False -> uniform; None -> either.
      allow_zeros: whether stochastic transition rows may contain exact zeros.
      reward_range: rewards are uniform on this interval.
      masked: True -> a random ``action_mask[s, a]`` (each pair masked with a random probability,
        at least one action available in every state; with A >= 2 at least one pair is masked);
        False (the default) -> ``action_mask=None``; None -> either.

    Every generated MDP passes ``TabularMDP`` validation (rows sum to 1 within 1e-12).
    Raises ValueError at call time for inconsistent arguments.

    Example::

        from hypothesis import given, settings
        from rlref.testing import tabular_mdps

        @settings(max_examples=20, deadline=None)
        @given(tabular_mdps(max_states=4, discounted=True, sparse=False))
        def test_rewards_bounded(mdp):
            assert abs(mdp.r).max() <= 1.0

    References: Puterman (1994), ch. 2 (the model).
    """
    _bounds("min_states", min_states, "max_states", max_states)
    _bounds("min_actions", min_actions, "max_actions", max_actions)
    for n, v in (("discounted", discounted), ("sparse", sparse), ("deterministic", deterministic),
                 ("stage_dependent", stage_dependent), ("random_mu0", random_mu0), ("masked", masked)):
        _tristate(n, v)
    if discounted is True and stage_dependent is True:
        raise ValueError("stage_dependent=True needs a finite horizon, but discounted=True")
    if reward_shape not in (None, "sa", "sas"):
        raise ValueError(f"reward_shape must be None, 'sa' or 'sas', got {reward_shape!r}")
    h_lo, h_hi = _int_range("horizon", horizon, 1)
    gamma_st = _float_strategy("gamma", gamma, 0.0, 1.0, hi_open=True)
    r_lo, r_hi = _float_pair("reward_range", reward_range)

    @st.composite
    def build(draw: Any) -> TabularMDP:
        S = draw(st.integers(min_states, max_states))
        A = draw(st.integers(min_actions, max_actions))
        disc = False if stage_dependent is True else _flag(draw, discounted)
        is_sparse = _flag(draw, sparse)
        det = _flag(draw, deterministic)
        rshape = reward_shape if reward_shape is not None else draw(st.sampled_from(["sa", "sas"]))
        staged = False if disc else _flag(draw, stage_dependent)
        staged_P = staged and not is_sparse and draw(st.booleans())
        staged_R = staged and (not staged_P or draw(st.booleans()))
        if disc:
            H, g = None, draw(gamma_st)
        else:
            H, g = draw(st.integers(h_lo, h_hi)), None
        rand_mu0 = _flag(draw, random_mu0)
        rng = np.random.default_rng(draw(_SEEDS))

        p_shape = ((H,) if staged_P else ()) + (S, A, S)
        if det:
            P = _one_hot(rng, p_shape)
        else:
            P = _simplex(rng, p_shape, zero_prob=rng.uniform(0.0, 0.5) if allow_zeros else 0.0)
        if is_sparse:
            P = sp.csr_matrix(P.reshape(S * A, S))
        r_shape = ((H,) if staged_R else ()) + (S, A) + ((S,) if rshape == "sas" else ())
        R = rng.uniform(r_lo, r_hi, size=r_shape)
        mu0 = _simplex(rng, (S,)) if rand_mu0 else None
        mask = _action_mask(rng, S, A) if _flag(draw, masked) else None
        # name the reward layout: with H = S = A a 3-d R would be ambiguous
        axes = ("h" if staged_R else "") + rshape
        return TabularMDP(P, R, gamma=g, horizon=H, mu0=mu0, name=f"random(S={S}, A={A})", reward_axes=axes, action_mask=mask)

    return build()


def _float_pair(name: str, value: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a (min, max) pair of floats, got {value!r}") from exc
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ValueError(f"{name} must be finite with min <= max, got {value!r}")
    return lo, hi


def policies(
    mdp: TabularMDP, deterministic: bool | None = None, stages: bool = False, allow_zeros: bool = True
) -> SearchStrategy[np.ndarray]:
    """Random policies ``pi[s, a]`` of ``mdp`` (``pi[h, s, a]`` when ``stages`` and the MDP has
    a finite horizon, as in :func:`rlref.policy.uniform_policy`).

    ``deterministic``: True -> one-hot rows; False -> random stochastic rows (with exact zeros
    if ``allow_zeros``); None -> either. A masked MDP's policies put mass only on available actions
    (``mdp.action_mask``). Every row is a probability distribution (sum 1 within
    1e-12). Use with ``flatmap`` or ``st.data()`` to pair policies with a drawn MDP.

    Example::

        from hypothesis import given, strategies as st
        from rlref.testing import tabular_mdps, policies

        @given(tabular_mdps().flatmap(lambda m: st.tuples(st.just(m), policies(m))))
        def test_policy_transition_is_stochastic(pair):
            mdp, pi = pair
            h = mdp.horizon - 1 if mdp.is_stage_dependent else None  # staged P needs its stage
            P_pi = mdp.policy_transition(pi[-1] if pi.ndim == 3 else pi, h)
            assert abs(P_pi.sum(axis=1) - 1).max() < 1e-9
    """
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"mdp must be an rlref.TabularMDP, got {type(mdp).__name__}")
    _tristate("deterministic", deterministic)
    S, A = mdp.num_states, mdp.num_actions
    shape = (mdp.horizon, S, A) if stages and mdp.horizon is not None else (S, A)

    mask = mdp.action_mask

    @st.composite
    def build(draw: Any) -> np.ndarray:
        det = _flag(draw, deterministic)
        rng = np.random.default_rng(draw(_SEEDS))
        if det:
            pi = _one_hot(rng, shape)
        else:
            pi = _simplex(rng, shape, zero_prob=rng.uniform(0.0, 0.5) if allow_zeros else 0.0)
        if mask is None:
            return pi
        # only available actions: weights on them (a row with no mass left gets the uniform over A(s))
        w = np.where(mask, rng.random(shape) if det else pi, 0.0)
        if det:
            w = (w == w.max(axis=-1, keepdims=True)) & mask
            w = w & (np.cumsum(w, axis=-1) == 1)
        w = w.astype(np.float64)
        empty = w.sum(axis=-1, keepdims=True) == 0
        w = np.where(empty, mask.astype(np.float64), w)
        return w / w.sum(axis=-1, keepdims=True)

    return build()


def distributions(
    n: IntRange, min_mass: float = 0.0, allow_zeros: bool = False, batch_shape: tuple[int, ...] = ()
) -> SearchStrategy[np.ndarray]:
    """Probability vectors of length ``n`` (an int or a (min, max) pair), float64.

    ``min_mass``: every non-zero entry is >= min_mass (needs ``max_n · min_mass <= 1``).
    ``allow_zeros``: entries may be exactly 0 (at least one stays positive); otherwise all are
    > 0. Entries span several orders of magnitude. ``batch_shape`` prepends independent rows:
    shape ``(*batch_shape, n)``. Each row sums to 1 within 1e-12.

    Example::

        from hypothesis import given
        from rlref.divergences import kl
        from rlref.testing import distributions

        @given(distributions(5), distributions(5))
        def test_gibbs_inequality(p, q):
            assert kl(p, q) >= 0
    """
    lo, hi = _int_range("n", n, 1)
    try:
        m = float(min_mass)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"min_mass must be a number in [0, 1/max_n], got {min_mass!r}") from exc
    if not (0.0 <= m and hi * m <= 1.0):
        raise ValueError(f"min_mass must lie in [0, 1/max_n] = [0, {1.0 / hi}], got {min_mass!r}")
    batch = tuple(batch_shape)
    if any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 0 for b in batch):
        raise ValueError(f"batch_shape must be a tuple of non-negative ints, got {batch_shape!r}")

    @st.composite
    def build(draw: Any) -> np.ndarray:
        size = draw(st.integers(lo, hi))
        rng = np.random.default_rng(draw(_SEEDS))
        zp = rng.uniform(0.0, 0.6) if allow_zeros else 0.0
        return _simplex(rng, batch + (size,), zero_prob=zp, min_mass=m)

    return build()


def rewards(shape: Sequence[int], low: float = -1.0, high: float = 1.0) -> SearchStrategy[np.ndarray]:
    """Float64 reward arrays of a fixed ``shape`` (e.g. ``(S, A)``), uniform on [low, high].

    Example: ``rewards((mdp.S, mdp.A))`` draws an alternative reward for a drawn MDP.
    """
    shp = tuple(shape)
    if any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 0 for b in shp):
        raise ValueError(f"shape must be a tuple of non-negative ints, got {shape!r}")
    lo, hi = _float_pair("(low, high)", (low, high))
    return _SEEDS.map(lambda seed: np.random.default_rng(seed).uniform(lo, hi, size=shp))


def linear_mdps(
    min_states: int = 1,
    max_states: int = 6,
    min_actions: int = 1,
    max_actions: int = 4,
    min_dim: int = 1,
    max_dim: int = 4,
    *,
    discounted: bool | None = True,
    horizon: IntRange = (1, 4),
    gamma: FloatRange = (0.0, 0.95),
) -> SearchStrategy[Any]:
    """Random linear MDPs (:class:`rlref.linear.LinearMDP`) from :func:`rlref.linear.random_linear_mdp`.

    ``P(s'|s, a) = ⟨φ(s, a), μ(s')⟩`` and ``r(s, a) = ⟨φ(s, a), θ⟩`` with simplex features of
    dimension ``d`` in [min_dim, max_dim]; S, A and d shrink towards their minima.
    ``discounted``: True (default) -> ``gamma`` drawn from ``gamma``; False -> ``horizon=H``
    drawn from ``horizon``; None -> either. ``rlref.linear`` is imported lazily, when the
    strategy draws.

    Example::

        import numpy as np
        from hypothesis import given
        from rlref.testing import linear_mdps

        @given(linear_mdps(max_states=4, max_dim=3))
        def test_rewards_are_linear(lmdp):
            assert np.allclose(lmdp.r, lmdp.phi @ lmdp.theta)

    References: Jin, Yang, Wang, Jordan (2020), "Provably efficient RL with linear function
    approximation", Assumption A (linear MDP).
    """
    _bounds("min_states", min_states, "max_states", max_states)
    _bounds("min_actions", min_actions, "max_actions", max_actions)
    _bounds("min_dim", min_dim, "max_dim", max_dim)
    _tristate("discounted", discounted)
    h_lo, h_hi = _int_range("horizon", horizon, 1)
    gamma_st = _float_strategy("gamma", gamma, 0.0, 1.0, hi_open=True)

    @st.composite
    def build(draw: Any) -> Any:
        from rlref.linear import random_linear_mdp

        S = draw(st.integers(min_states, max_states))
        A = draw(st.integers(min_actions, max_actions))
        d = draw(st.integers(min_dim, max_dim))
        if _flag(draw, discounted):
            g, H = draw(gamma_st), None
        else:
            g, H = None, draw(st.integers(h_lo, h_hi))
        rng = np.random.default_rng(draw(_SEEDS))
        return random_linear_mdp(S, A, d, rng=rng, gamma=g, horizon=H)

    return build()


def _antisymmetric(U: np.ndarray) -> np.ndarray:
    """``P`` with ``P[i, j] ≈ U[i, j]`` for i < j and ``P + Pᵀ = 1`` exactly in floating point.

    For each pair the entry ``v >= 1/2`` is stored as is and the other as ``1 − v``, which is
    exact for v in [1/2, 1] (Sterbenz), so ``v + (1 − v) == 1`` without rounding.
    """
    n = U.shape[0]
    P = np.full((n, n), 0.5)
    i, j = np.triu_indices(n, k=1)
    u = U[i, j]
    big = np.where(u >= 0.5, u, 1.0 - u)
    P[i, j] = np.where(u >= 0.5, big, 1.0 - big)
    P[j, i] = np.where(u >= 0.5, 1.0 - big, big)
    return P


def preference_matrices(n: IntRange = (2, 6), transitive: bool | None = None) -> SearchStrategy[np.ndarray]:
    """Preference matrices ``P[y, y'] = P(y ≻ y')`` over ``n`` responses (an int or (min, max)).

    Always ``P[y, y'] ∈ [0, 1]``, ``P + Pᵀ = 1`` exactly, diagonal 1/2.

    * ``transitive=True``: Bradley–Terry, ``P[y, y'] = σ(r(y) − r(y'))`` for random distinct
      rewards, so the best response is a Condorcet winner and ``logit P`` is additive.
    * ``transitive=False``: guaranteed intransitive (needs n >= 3): three responses ``i, j, k``
      with ``P[i, j], P[j, k], P[k, i] > 1/2`` (a preference cycle), the other pairs random.
    * ``None``: either, or an arbitrary random matrix (uniform upper triangle).

    Example::

        from hypothesis import given
        from rlref.testing import preference_matrices

        @given(preference_matrices(4))
        def test_game_value_is_half(P):
            ...

    References: Bradley & Terry (1952); Munos et al. (2023), "Nash Learning from Human
    Feedback", §3 (general, possibly intransitive preferences).
    """
    lo, hi = _int_range("n", n, 1)
    _tristate("transitive", transitive)
    if transitive is False:
        if hi < 3:
            raise ValueError(f"an intransitive preference matrix needs n >= 3, got n={n!r}")
        lo = max(lo, 3)

    @st.composite
    def build(draw: Any) -> np.ndarray:
        if transitive is None:
            size = draw(st.integers(lo, hi))
            kind = draw(st.sampled_from(["bt", "uniform", "cycle"] if size >= 3 else ["bt", "uniform"]))
        else:
            size = draw(st.integers(lo, hi))
            kind = "bt" if transitive else "cycle"
        rng = np.random.default_rng(draw(_SEEDS))
        if kind == "uniform":
            return _antisymmetric(rng.uniform(0.0, 1.0, size=(size, size)))
        scale = rng.uniform(0.2, 3.0)
        r = rng.permutation(np.cumsum(rng.uniform(0.1, 1.0, size=size))) * scale
        U = expit(r[:, None] - r[None, :])
        if kind == "cycle":
            i, j, k = rng.permutation(size)[:3]
            a, b, c = rng.uniform(0.55, 0.95, size=3)
            U[i, j], U[j, i] = a, 1.0 - a
            U[j, k], U[k, j] = b, 1.0 - b
            U[k, i], U[i, k] = c, 1.0 - c
        return _antisymmetric(U)

    return build()


# ----------------------------------------------------------------------------- hostile inputs (fuzzing)
#: Floats a hostile user passes where a number is expected (each is a valid float64).
HOSTILE_FLOATS: tuple[float, ...] = (
    float("nan"), float("inf"), -float("inf"), 0.0, -0.0, -1.0, 5e-324, 5e-311, 1e-300, 1e300, -1e300, 1e-12,
)

#: The mutations :func:`hostile_arrays` applies (one per drawn example).
ARRAY_MUTATIONS: tuple[str, ...] = (
    "nan", "inf", "-inf", "negative", "subnormal", "huge", "float32", "float16", "complex", "complex_real",
    "int", "bool", "empty", "drop_axis", "add_axis", "shrink_last", "list", "string", "none",
)


def hostile_scalars(valid: SearchStrategy | None = None) -> SearchStrategy[Any]:
    """Values a hostile user passes where a real scalar is expected.

    Draws from :data:`HOSTILE_FLOATS` (NaN, ±inf, ±0, −1, subnormals, 1e±300), their numpy
    float32 / int64 versions, and non-numbers a careless caller produces: ``True``, ``"0.5"``,
    ``None``, ``1 + 2j``, a complex with zero imaginary part, a shape-(1,) array. ``valid`` (a
    strategy) mixes in values that should be accepted, so a fuzzer exercises both branches.

    Example::

        @given(hostile_scalars(valid=st.floats(0.01, 10)))
        def test_beta_is_checked(beta):
            try:
                out = soft_value(q, None, beta)
            except ValueError as e:
                assert "beta" in str(e)
            else:
                assert np.isfinite(out).all()
    """
    odd: list[Any] = [True, False, "0.5", None, 1 + 2j, complex(0.5, 0.0), np.array([0.5]), np.float32(0.5), np.int64(3), np.int64(-3)]
    base = st.sampled_from(HOSTILE_FLOATS) | st.sampled_from(HOSTILE_FLOATS).map(np.float32) | st.sampled_from(odd)
    if valid is None:
        return base
    if not isinstance(valid, SearchStrategy):
        raise ValueError(f"valid must be a hypothesis strategy or None, got {type(valid).__name__}")
    return base | valid


def _mutate(arr: np.ndarray, kind: str, rng: np.random.Generator) -> Any:
    a = np.array(arr, dtype=np.float64, copy=True)
    idx = tuple(int(rng.integers(n)) for n in a.shape) if a.size else None
    if kind in ("nan", "inf", "-inf", "negative", "subnormal", "huge") and idx is not None:
        a[idx] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "negative": -abs(a[idx]) - 0.25,
                  "subnormal": 5e-311, "huge": 1e300}[kind]
        return a
    if kind in ("float32", "float16"):
        return a.astype(kind)
    if kind == "complex":
        return a + 1j * (a + 1.0)
    if kind == "complex_real":
        return a.astype(complex)
    if kind == "int":
        return np.rint(a).astype(np.int64)
    if kind == "bool":
        return a != 0
    if kind == "empty":
        return a[..., :0] if a.ndim else np.zeros(0)
    if kind == "drop_axis":
        return a[..., 0] if a.ndim else a
    if kind == "add_axis":
        return a[None]
    if kind == "shrink_last":
        return a[..., :-1] if a.ndim and a.shape[-1] > 1 else a[..., :0]
    if kind == "list":
        return a.tolist()
    if kind == "string":
        return "not an array"
    if kind == "none":
        return None
    return a


def hostile_arrays(base: SearchStrategy[np.ndarray], mutations: Sequence[str] = ARRAY_MUTATIONS) -> SearchStrategy[Any]:
    """A valid array from ``base`` with one hostile mutation applied.

    The mutation (see :data:`ARRAY_MUTATIONS`) is one of: an entry set to NaN, ±inf, a negative
    value, a subnormal (5e-311) or 1e300; a cast to float32, float16, complex (with or without an
    imaginary part), int64 (rounded) or bool; a shape change (empty last axis, a dropped or an
    added axis, one entry fewer); a nested list (valid, for the conversion path); a string;
    ``None``. The mutation is recorded with ``hypothesis.note`` so a failing example says which.
    Some mutations leave the input valid (float32, list, a subnormal in a distribution): a
    function under test must then return the correct answer, not an error.

    Example::

        @given(hostile_arrays(distributions(4)), distributions(4))
        def test_kl_contract(p, q):
            try:
                d = kl(p, q)
            except ValueError as e:
                assert "p" in str(e)
            else:
                assert d >= 0
    """
    if not isinstance(base, SearchStrategy):
        raise ValueError(f"base must be a hypothesis strategy of arrays, got {type(base).__name__}")
    kinds = tuple(mutations)
    unknown = [k for k in kinds if k not in ARRAY_MUTATIONS]
    if not kinds or unknown:
        raise ValueError(f"mutations must be a non-empty subset of {ARRAY_MUTATIONS}, got {mutations!r}")

    @st.composite
    def build(draw: Any) -> Any:
        from hypothesis import note

        arr = draw(base)
        kind = draw(st.sampled_from(kinds))
        note(f"hostile_arrays mutation: {kind}")
        return _mutate(np.asarray(arr), kind, np.random.default_rng(draw(_SEEDS)))

    return build()
