"""Input validation shared by the whole library.

Every check raises ``ValueError`` naming the argument, the offending index and the value, so a
user never sees a bare numpy traceback or, worse, a silently wrong answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "as_float_array",
    "check_finite",
    "check_distribution",
    "check_gamma",
    "check_positive",
    "check_at_least",
    "check_nonnegative",
    "check_shape",
]

#: Tolerance on |sum - 1| for a probability vector stored in float64.
DIST_ATOL = 1e-8


def as_float_array(name: str, x: Any, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Convert ``x`` to a float64 array, checking its number of dimensions.

    Raises ValueError naming ``name`` if the conversion fails or ``ndim`` does not match.
    """
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


def check_finite(name: str, x: np.ndarray) -> None:
    """Raise ValueError naming the first index of ``x`` that is NaN or ±inf."""
    bad = ~np.isfinite(x)
    if np.any(bad):
        idx = _first_bad(bad)
        raise ValueError(f"{name} must be finite; {name}[{', '.join(map(str, idx))}] = {float(x[idx])!r}")


def check_nonnegative(name: str, x: np.ndarray) -> None:
    """Raise ValueError naming the first negative entry of ``x``."""
    check_finite(name, x)
    bad = x < 0
    if np.any(bad):
        idx = _first_bad(bad)
        raise ValueError(f"{name} must be non-negative; {name}[{', '.join(map(str, idx))}] = {float(x[idx])!r}")


def check_distribution(name: str, x: np.ndarray, atol: float = DIST_ATOL) -> None:
    """Check that every slice ``x[..., :]`` is a probability distribution over the last axis.

    Raises ValueError naming the first negative entry, or the first row whose sum differs from 1
    by more than ``atol``.
    """
    check_nonnegative(name, x)
    if x.shape[-1] == 0:
        raise ValueError(f"{name} must have a non-empty last axis, got shape {x.shape}")
    sums = x.sum(axis=-1)
    bad = np.abs(sums - 1.0) > atol
    if np.any(bad):
        idx = _first_bad(np.atleast_1d(bad))
        row = ", ".join(map(str, idx)) if np.ndim(sums) else ""
        value = float(np.atleast_1d(sums)[idx])
        raise ValueError(f"{name}[{row}{', ' if row else ''}:] must sum to 1 (a probability distribution); it sums to {value!r}")


def check_gamma(gamma: float, *, allow_one: bool = False) -> float:
    """Validate a discount factor: gamma in [0, 1) (or [0, 1] when ``allow_one``)."""
    try:
        g = float(gamma)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"gamma must be a number, got {gamma!r}") from exc
    upper_ok = g <= 1.0 if allow_one else g < 1.0
    if not (np.isfinite(g) and g >= 0.0 and upper_ok):
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"gamma must lie in {interval}, got {gamma!r}")
    return g


def check_positive(name: str, value: float) -> float:
    """Validate a strictly positive finite scalar (a temperature, a step size, ...)."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a positive number, got {value!r}") from exc
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be > 0 and finite, got {value!r}")
    return v


def check_at_least(name: str, value: float, lower: float, meaning: str = "") -> float:
    """Validate a finite scalar ``value >= lower`` (a budget, a penalty weight, a sample count...).

    ``meaning`` is appended to the error message, e.g. "(a per-token KL budget in nats)".
    """
    what = f" ({meaning})" if meaning else ""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number >= {lower:g}{what}, got {value!r}") from exc
    if not (np.isfinite(v) and v >= lower):
        raise ValueError(f"{name} must be >= {lower:g} and finite{what}, got {value!r}")
    return v


def check_shape(name: str, x: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise ValueError if ``x.shape != shape``."""
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}")
