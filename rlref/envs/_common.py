"""Argument checks shared by the environment builders (private)."""

from __future__ import annotations

import numpy as np

#: The discount used when a builder is called without ``gamma`` and without ``horizon``.
DEFAULT_GAMMA = 0.9


def resolve_gamma(gamma: float | None, horizon: int | None) -> float | None:
    """``gamma`` itself if given; else 0.9 for a discounted MDP and None (meaning 1) for a finite horizon."""
    if gamma is None and horizon is None:
        return DEFAULT_GAMMA
    return gamma


def as_generator(rng: np.random.Generator | None, seed: int | None) -> np.random.Generator:
    """The Generator to draw from: ``rng`` if given, else ``default_rng(seed)``; not both."""
    if rng is not None and seed is not None:
        raise ValueError("give either rng or seed, not both")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng
    return np.random.default_rng(seed)


def check_count(name: str, value: int, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_probability(name: str, x: float) -> float:
    """A number in [0, 1]."""
    try:
        v = float(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a probability in [0, 1], got {x!r}") from exc
    if not (np.isfinite(v) and 0.0 <= v <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {x!r}")
    return v


def check_real(name: str, x: float) -> float:
    """A finite number."""
    try:
        v = float(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a finite number, got {x!r}") from exc
    if not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return v
