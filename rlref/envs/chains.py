"""Chain MDPs: a plain slippery chain and RiverSwim.

States 0, ..., n-1 from left to right; actions ``0 = left``, ``1 = right`` (``CHAIN_ACTIONS``).

References: Strehl & Littman (2008), "An analysis of model-based interval estimation for Markov
decision processes", J. Computer and System Sciences 74(8), §5 (RiverSwim); Osband, Russo,
Van Roy (2013), "(More) efficient reinforcement learning via posterior sampling", NeurIPS,
Figure 2 and the authors' ``SetRiverSwim.m`` (the parametrization used here).
"""

from __future__ import annotations

import numpy as np

from rlref._checks import check_count, check_probability, check_real, resolve_gamma
from rlref.mdp import TabularMDP

__all__ = ["CHAIN_ACTIONS", "chain", "riverswim"]

CHAIN_ACTIONS: tuple[str, str] = ("left", "right")
LEFT, RIGHT = 0, 1


def chain(
    n: int,
    *,
    slip: float = 0.0,
    gamma: float | None = None,
    horizon: int | None = None,
    end_reward: float = 1.0,
    start_reward: float = 0.0,
    mu0: np.ndarray | None = None,
) -> TabularMDP:
    """A chain of ``n`` states with a rewarding right end.

    Dynamics: action a ∈ (left, right) moves one step in its direction with probability
    ``1 - slip`` and one step in the opposite direction with probability ``slip``; a move past
    either end stays put. Rewards are paid on arrival:

        R(s, a, s') = end_reward · 1[s' = n-1] + start_reward · 1[s' = 0],

    so r(s, a) = Σ_s' P(s'|s, a) R(s, a, s'). With slip = 0, end_reward = 1 and start_reward = 0
    the optimal values are V*(s) = γ^{n-2-s} / (1 - γ) for s < n-1 and V*(n-1) = 1 / (1 - γ)
    (derived here). ``mu0`` defaults to a point mass on state 0; ``gamma`` defaults to 0.9
    (or 1 with ``horizon=H``).

    Raises ValueError if n < 1, slip is outside [0, 1] or a reward is not finite.
    Shapes: P[s, a, s'] (n, 2, n), r[s, a] (n, 2).
    References: Strehl & Littman (2008), §5 (chain-shaped exploration MDPs); the closed form
    above is derived here.
    """
    n = check_count("n", n)
    slip = check_probability("slip", slip)
    end_reward = check_real("end_reward", end_reward)
    start_reward = check_real("start_reward", start_reward)
    s = np.arange(n)
    left, right = np.maximum(s - 1, 0), np.minimum(s + 1, n - 1)
    P = np.zeros((n, 2, n))
    np.add.at(P, (s, LEFT, left), 1.0 - slip)
    np.add.at(P, (s, LEFT, right), slip)
    np.add.at(P, (s, RIGHT, right), 1.0 - slip)
    np.add.at(P, (s, RIGHT, left), slip)
    arrive = np.zeros(n)
    arrive[n - 1] += end_reward
    arrive[0] += start_reward
    r = P @ arrive
    if mu0 is None:
        mu0 = np.eye(n)[0]
    return TabularMDP(P=P, R=r, gamma=resolve_gamma(gamma, horizon), horizon=horizon, mu0=mu0, name=f"chain(n={n})")


def riverswim(
    n: int = 6,
    *,
    gamma: float | None = None,
    horizon: int | None = None,
    p_right: float = 0.35,
    p_stay: float = 0.6,
    p_right_first: float = 0.6,
    p_stay_last: float = 0.6,
    small_reward: float = 5.0 / 1000.0,
    large_reward: float = 1.0,
) -> TabularMDP:
    """RiverSwim (Strehl & Littman 2008) in the parametrization of Osband et al. (2013).

    ``left`` always succeeds: P(max(s-1, 0) | s, left) = 1. ``right`` swims against the current:

    * interior 0 < s < n-1:  P(s+1) = ``p_right`` (0.35), P(s) = ``p_stay`` (0.6),
      P(s-1) = 1 - p_right - p_stay (0.05);
    * leftmost s = 0:        P(1) = ``p_right_first`` (0.6), P(0) = 1 - p_right_first (0.4);
    * rightmost s = n-1:     P(n-1) = ``p_stay_last`` (0.6), P(n-2) = 1 - p_stay_last (0.4).

    Rewards: r(0, left) = ``small_reward`` (5/1000), r(n-1, right) = ``large_reward`` (1), all
    others 0. mu0 is a point mass on state 0 (the river bank). ``gamma`` defaults to 0.9 (or 1
    with ``horizon=H``; Osband et al. run episodes of H = 20).

    Raises ValueError if n < 2, a probability lies outside [0, 1], or p_right + p_stay > 1.

    References: Strehl & Littman (2008), §5 (RiverSwim; their original constants differ);
    Osband, Russo, Van Roy (2013), Figure 2, and ``code/Set Parameters/SetRiverSwim.m`` in the
    authors' repository iosband/psrl_2013 (the constants used here).
    """
    n = check_count("n", n, minimum=2)
    p_right = check_probability("p_right", p_right)
    p_stay = check_probability("p_stay", p_stay)
    p_right_first = check_probability("p_right_first", p_right_first)
    p_stay_last = check_probability("p_stay_last", p_stay_last)
    if p_right + p_stay > 1.0 + 1e-12:
        raise ValueError(f"p_right + p_stay must be <= 1, got p_right={p_right!r}, p_stay={p_stay!r}")
    p_back = max(0.0, 1.0 - p_right - p_stay)
    small_reward = check_real("small_reward", small_reward)
    large_reward = check_real("large_reward", large_reward)
    s = np.arange(n)
    P = np.zeros((n, 2, n))
    P[s, LEFT, np.maximum(s - 1, 0)] = 1.0
    inner = s[1:-1]
    P[inner, RIGHT, inner + 1] = p_right
    P[inner, RIGHT, inner] = p_stay
    P[inner, RIGHT, inner - 1] = p_back
    P[0, RIGHT, 0] = 1.0 - p_right_first
    P[0, RIGHT, 1] = p_right_first
    P[n - 1, RIGHT, n - 1] = p_stay_last
    P[n - 1, RIGHT, n - 2] = 1.0 - p_stay_last
    r = np.zeros((n, 2))
    r[0, LEFT] = small_reward
    r[n - 1, RIGHT] = large_reward
    return TabularMDP(P=P, R=r, gamma=resolve_gamma(gamma, horizon), horizon=horizon, mu0=np.eye(n)[0], name=f"riverswim(n={n})")
