"""Input validation: the one validation module of the numpy side of rlref.

Every check raises ``ValueError`` naming the argument, the offending index and the value, so a
user never sees a bare numpy traceback or, worse, a silently wrong answer. Every module of the
numpy side (core, solve, theory, algorithms, envs, ...) calls these instead of writing a check
inline; the torch side has its own module, ``rlref.llm._checks``.

Arrays:   ``as_float_array`` (real float64; complex input is refused, not truncated),
          ``check_finite``, ``check_nonnegative``, ``check_distribution``, ``as_distribution``
          (dtype-aware tolerance, renormalized in float64), ``dist_atol``, ``check_shape``,
          ``check_axis``.
Scalars:  ``check_real``, ``check_positive``, ``check_at_least``, ``check_probability``,
          ``check_gamma``, ``check_beta`` (β ∈ (0, ∞), optionally β = 0 or β = ∞).
Integers: ``check_count`` (an integer >= minimum; bools refused).
Choices:  ``check_choice``.
Random:   ``check_seed``, ``as_generator``.
Builders: ``resolve_gamma`` and ``DEFAULT_GAMMA`` (the default discount of the env builders).

Scalars are refused when they are bools, strings, complex numbers or arrays with a dimension
(``float("0.5")`` and ``float(True)`` would otherwise pass silently).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "DIST_ATOL",
    "DEFAULT_GAMMA",
    "as_float_array",
    "as_distribution",
    "as_generator",
    "check_finite",
    "check_distribution",
    "check_gamma",
    "check_positive",
    "check_at_least",
    "check_nonnegative",
    "check_shape",
    "check_axis",
    "check_count",
    "check_seed",
    "check_beta",
    "check_probability",
    "check_real",
    "check_choice",
    "dist_atol",
    "is_low_precision",
    "resolve_gamma",
]

#: Tolerance on |sum - 1| for a probability vector stored in float64.
DIST_ATOL = 1e-8

#: The discount used by the env builders when called without ``gamma`` and without ``horizon``.
DEFAULT_GAMMA = 0.9


# ----------------------------------------------------------------------------- arrays
def as_float_array(name: str, x: Any, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Convert ``x`` to a real float64 array, checking its number of dimensions.

    Raises ValueError naming ``name`` if the conversion fails, if ``x`` is complex (numpy would
    drop the imaginary part with only a warning), or if ``ndim`` does not match.
    """
    if np.iscomplexobj(x):
        dtype = getattr(x, "dtype", "complex")
        raise ValueError(f"{name} must be real, got a complex array (dtype {dtype}); pass np.real({name}) if the imaginary part is meant to be 0")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be convertible to a float array, got {type(x).__name__}: {exc}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {arr.shape}")
    return arr


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _index(name: str, idx: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(map(str, idx))}]"


def check_finite(name: str, x: np.ndarray) -> None:
    """Raise ValueError naming the first index of ``x`` that is NaN or ±inf."""
    bad = ~np.isfinite(x)
    if np.any(bad):
        idx = _first_bad(np.atleast_1d(bad)) if np.ndim(x) else ()
        value = float(np.atleast_1d(x)[idx]) if idx else float(x)
        raise ValueError(f"{name} must be finite; {_index(name, idx) if idx else name} = {value!r}")


def check_nonnegative(name: str, x: np.ndarray) -> None:
    """Raise ValueError naming the first entry of ``x`` that is negative (or not finite)."""
    check_finite(name, x)
    bad = x < 0
    if np.any(bad):
        idx = _first_bad(np.atleast_1d(bad)) if np.ndim(x) else ()
        value = float(np.atleast_1d(x)[idx]) if idx else float(x)
        raise ValueError(f"{name} must be non-negative; {_index(name, idx) if idx else name} = {value!r}")


def dist_atol(dtype: Any, n: int) -> float:
    """Tolerance on |Σ p − 1| for a distribution of ``n`` entries that was normalized in ``dtype``.

    ``max(DIST_ATOL, n · eps(dtype))``: a row normalized in float32 sums to 1 only up to about
    n·eps/2 (eps = 1.19e-7), far above the float64 tolerance 1e-8 (derived here: the rounding
    error of n additions). Integer and float64 inputs get ``DIST_ATOL``.
    """
    dt = np.dtype(dtype) if dtype is not None else np.dtype(np.float64)
    eps = float(np.finfo(dt).eps) if np.issubdtype(dt, np.floating) else 0.0
    return max(DIST_ATOL, max(int(n), 1) * eps)


def is_low_precision(dtype: Any) -> bool:
    """True for a floating dtype narrower than float64 (float32, float16): such an array gets the
    tolerance ``dist_atol`` and is renormalized in float64 by ``as_distribution``."""
    if dtype is None:
        return False
    dt = np.dtype(dtype)
    return bool(np.issubdtype(dt, np.floating) and dt.itemsize < 8)


def check_distribution(name: str, x: np.ndarray, atol: float = DIST_ATOL) -> None:
    """Check that every slice ``x[..., :]`` is a probability distribution over the last axis.

    Raises ValueError naming the first negative entry, or the first row whose sum differs from 1
    by more than ``atol``.
    """
    check_nonnegative(name, x)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"{name} must have a non-empty last axis, got shape {x.shape}")
    sums = x.sum(axis=-1)
    bad = np.abs(sums - 1.0) > atol
    if np.any(bad):
        idx = _first_bad(np.atleast_1d(bad))
        row = ", ".join(map(str, idx)) if np.ndim(sums) else ""
        value = float(np.atleast_1d(sums)[idx])
        hint = ""
        if atol < 1e-6 and abs(value - 1.0) < 1e-4:
            hint = " (within float32 rounding: normalize in float64, e.g. x / x.sum(-1, keepdims=True))"
        raise ValueError(
            f"{name}[{row}{', ' if row else ''}:] must sum to 1 (a probability distribution) within {atol:g}; it sums to {value!r}{hint}"
        )


def as_distribution(name: str, x: Any, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``x`` as a float64 array of distributions over its last axis, checked and returned.

    The tolerance on the row sums follows the input's dtype (``dist_atol``): an array normalized
    in float32 or float16 is accepted at its own precision and then renormalized in float64, so
    downstream code sees rows that sum to 1 in float64. A float64 (or integer, or list) input is
    checked at ``DIST_ATOL`` and returned unchanged.
    """
    src = getattr(x, "dtype", None)
    arr = as_float_array(name, x, ndim=ndim)
    low = is_low_precision(src)
    n = arr.shape[-1] if arr.ndim else 1
    check_distribution(name, arr, atol=dist_atol(src, n) if low else DIST_ATOL)
    if low:
        arr = arr / arr.sum(axis=-1, keepdims=True)
    return arr


def check_shape(name: str, x: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise ValueError if ``x.shape != shape``."""
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}")


def check_axis(name: str, axis: Any, ndim: int) -> int:
    """An axis index valid for an array with ``ndim`` dimensions, normalized to [0, ndim)."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"{name} must be an integer in [{-ndim}, {ndim}) for an array with {ndim} dimensions, got {axis!r}")
    return int(axis) % ndim


# ----------------------------------------------------------------------------- scalars
def _scalar(name: str, value: Any, what: str) -> float:
    """``float(value)`` for a real scalar; ValueError naming ``name`` for anything else."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or np.iscomplexobj(value) or np.ndim(value) != 0:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be {what}, got {value!r}") from exc


def check_real(name: str, x: float) -> float:
    """A finite real number."""
    v = _scalar(name, x, "a finite number")
    if not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return v


def check_positive(name: str, value: float) -> float:
    """Validate a strictly positive finite scalar (a temperature, a step size, ...)."""
    v = _scalar(name, value, "a positive number")
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be > 0 and finite, got {value!r}")
    return v


def check_at_least(name: str, value: float, lower: float, meaning: str = "") -> float:
    """Validate a finite scalar ``value >= lower`` (a budget, a penalty weight, a tolerance...).

    ``meaning`` is appended to the error message, e.g. "(a per-token KL budget in nats)".
    NaN is refused (``nan >= lower`` is False).
    """
    what = f" ({meaning})" if meaning else ""
    v = _scalar(name, value, f"a number >= {lower:g}{what}")
    if not (np.isfinite(v) and v >= lower):
        raise ValueError(f"{name} must be >= {lower:g} and finite{what}, got {value!r}")
    return v


def check_probability(name: str, x: float) -> float:
    """A number in [0, 1]."""
    v = _scalar(name, x, "a probability in [0, 1]")
    if not (np.isfinite(v) and 0.0 <= v <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {x!r}")
    return v


def check_gamma(gamma: float, *, allow_one: bool = False) -> float:
    """Validate a discount factor: gamma in [0, 1) (or [0, 1] when ``allow_one``)."""
    g = _scalar("gamma", gamma, "a number")
    upper_ok = g <= 1.0 if allow_one else g < 1.0
    if not (np.isfinite(g) and g >= 0.0 and upper_ok):
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"gamma must lie in {interval}, got {gamma!r}")
    return g


def check_beta(name: str, beta: float, *, allow_inf: bool = False, allow_zero: bool = False) -> float:
    """A regularization temperature β: > 0 and finite by default.

    ``allow_zero`` admits β = 0 (the unregularized argmax limit, which the caller must handle
    explicitly); ``allow_inf`` admits β = ∞ (the policy equals the reference). NaN is refused.
    The message reads "<name> must be > 0 ..." (or ">= 0 ...") followed by what is allowed.
    """
    b = _scalar(name, beta, "a number")
    low_ok = b >= 0 if allow_zero else b > 0
    high_ok = (b < np.inf) or allow_inf
    if np.isnan(b) or not low_ok or not high_ok:
        low = ">= 0" if allow_zero else "> 0"
        high = "(np.inf allowed)" if allow_inf else "and finite"
        raise ValueError(f"{name} must be {low} {high}, got {beta!r}")
    return b


# ----------------------------------------------------------------------------- integers, choices
def check_count(name: str, value: int, minimum: int = 1, meaning: str = "") -> int:
    """An integer >= ``minimum`` (Python or numpy int; bools and floats such as 3.0 refused).

    The message says "a positive integer" when ``minimum == 1`` and "an integer >= m" otherwise;
    ``meaning`` is appended, e.g. "(the number of samples)".
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        extra = f" ({meaning})" if meaning else ""
        raise ValueError(f"{name} must be {what}{extra}, got {value!r}")
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``; else ValueError listing them."""
    options = tuple(choices)
    try:
        ok = value in options
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


# ----------------------------------------------------------------------------- randomness
def check_seed(name: str, seed: Any) -> Any:
    """A seed numpy accepts without surprise: None, an integer >= 0, or a numpy Generator,
    BitGenerator or SeedSequence (returned unchanged; an integer is returned as ``int``).

    A negative seed, a bool, a float or a string raises ValueError naming ``name``
    (``numpy.random.default_rng(-1)`` would raise a bare numpy error).
    """
    if seed is None or isinstance(seed, (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name} must be None, a non-negative integer or a numpy.random.Generator, got {seed!r}")
    return int(seed)


def as_generator(rng: np.random.Generator | None, seed: int | None) -> np.random.Generator:
    """The Generator to draw from: ``rng`` if given, else ``default_rng(seed)``; not both."""
    if rng is not None and seed is not None:
        raise ValueError("give either rng or seed, not both")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng
    return np.random.default_rng(check_seed("seed", seed))


# ----------------------------------------------------------------------------- builder defaults
def resolve_gamma(gamma: float | None, horizon: int | None) -> float | None:
    """``gamma`` itself if given; else 0.9 for a discounted MDP and None (meaning 1) for a finite horizon."""
    if gamma is None and horizon is None:
        return DEFAULT_GAMMA
    return gamma
