"""Bandits as MDPs: a multi-armed bandit (one state) and a contextual bandit (one state per context).

Both default to ``horizon=1``: a single decision, so the optimal value is max_a r(s, a) in each
state and the value of a policy is its expected one-step reward. With ``horizon=None`` and a
``gamma`` they become discounted repeated bandits (contexts redrawn i.i.d. every step).

References: Lattimore & Szepesvári (2020), "Bandit Algorithms", ch. 4 (stochastic bandits) and
ch. 18 (contextual bandits).
"""

from __future__ import annotations

import numpy as np

from rlref._checks import as_float_array, check_distribution, check_finite
from rlref.mdp import TabularMDP

__all__ = ["multi_armed_bandit", "contextual_bandit"]


def multi_armed_bandit(
    means: np.ndarray, *, horizon: int | None = 1, gamma: float | None = None, name: str = "bandit"
) -> TabularMDP:
    """A K-armed bandit as a one-state MDP: S = 1, A = K, r(0, a) = means[a], P(0|0, a) = 1.

    With the default ``horizon=1`` the optimal value is V*(0) = max_a means[a] and a policy's
    value is Σ_a π(a) means[a]. ``horizon=None`` with ``gamma`` in [0, 1) gives the discounted
    repeated bandit, V*(0) = max_a means[a] / (1 - γ).

    Shapes: means[a]. Raises ValueError on an empty or non-finite ``means``.
    References: Lattimore & Szepesvári (2020), §4.1.
    """
    mu = as_float_array("means", means, ndim=1)
    if mu.size == 0:
        raise ValueError("means must have at least one arm, got an empty array")
    check_finite("means", mu)
    K = mu.size
    return TabularMDP(P=np.ones((1, K, 1)), R=mu[None, :], gamma=gamma, horizon=horizon, mu0=np.ones(1), name=name)


def contextual_bandit(
    rewards: np.ndarray,
    context_probs: np.ndarray | None = None,
    *,
    horizon: int | None = 1,
    gamma: float | None = None,
    name: str = "contextual_bandit",
) -> TabularMDP:
    """A contextual bandit as an MDP whose states are contexts.

    States x = 0, ..., X-1 with ``mu0 = context_probs`` (uniform when omitted); actions a;
    r(x, a) = ``rewards[x, a]``; P(x'|x, a) = context_probs[x'] (the next context is drawn afresh,
    which only matters when ``horizon > 1`` or discounted). With ``horizon=1``,
    V* = Σ_x ρ(x) max_a r(x, a) under the initial distribution ρ = context_probs.

    Shapes: rewards[x, a], context_probs[x].
    Raises ValueError on non-finite rewards or a context_probs that is not a distribution.
    References: Lattimore & Szepesvári (2020), §18.1.
    """
    R = as_float_array("rewards", rewards, ndim=2)
    if R.shape[0] == 0 or R.shape[1] == 0:
        raise ValueError(f"rewards must have at least one context and one action, got shape {R.shape}")
    check_finite("rewards", R)
    X, A = R.shape
    if context_probs is None:
        rho = np.full(X, 1.0 / X)
    else:
        rho = as_float_array("context_probs", context_probs, ndim=1)
        if rho.shape != (X,):
            raise ValueError(f"context_probs must have shape (X,) = ({X},) to match rewards, got {rho.shape}")
        check_distribution("context_probs", rho)
    P = np.broadcast_to(rho, (X, A, X))
    return TabularMDP(P=P, R=R, gamma=gamma, horizon=horizon, mu0=rho, name=name)
