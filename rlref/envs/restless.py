"""Coupled restless bandits with a pull budget, as a joint TabularMDP (the instances of the SEQUOIA reproduction).

N arms, each in a binary state s_i ∈ {0 (bad), 1 (good)}; a joint action is a binary vector a ∈ {0, 1}^N with
Σ_i a_i ≤ B (the budget). Arm i moves to the good state with probability

    p_i(s, a) = clip( base[i, s_i, a_i] + κ · (m_i(s) − ½), 0, 1 ),  m_i(s) = mean of the other arms' states,

independently across arms given (s, a) — the κ-term couples the arms (derived here: a simple instance of the
"coupled" restless bandits of Xu et al. 2025, whose arms interact through shared state). The reward is
r(s, a) = Σ_i w_i s_i (a weighted count of good arms). The joint MDP has 2^N states and Σ_{k ≤ B} C(N, k) actions,
so dynamic programming on it is exact for small N.

References: Whittle (1988), "Restless bandits"; Xu, Wilder, Khalil & Tambe (2025), "Reinforcement learning with
combinatorial actions for coupled restless bandits" (SEQUOIA), ICLR, arXiv 2503.01919.
"""

from __future__ import annotations

import itertools

import numpy as np

from rlref._checks import as_float_array, check_count, check_gamma, check_real
from rlref.mdp import TabularMDP

__all__ = ["budget_actions", "joint_states", "coupled_restless_bandit"]


def budget_actions(N: int, budget: int) -> np.ndarray:
    """All a ∈ {0, 1}^N with Σ a_i ≤ budget, ordered by size then lexicographically; shape [A, N].

    Raises ValueError if N <= 0, budget < 0 or budget > N (a budget larger than the number of arms).
    """
    N = check_count("N", N, meaning="the number of arms")
    B = check_count("budget", budget, minimum=0)
    if B > N:
        raise ValueError(f"budget must be at most the number of arms N = {N}, got {budget!r}")
    rows = [np.isin(np.arange(N), c).astype(np.int64) for k in range(B + 1) for c in itertools.combinations(range(N), k)]
    return np.array(rows, dtype=np.int64)


def joint_states(N: int) -> np.ndarray:
    """All s ∈ {0, 1}^N, state index = Σ_i s_i 2^i; shape [2^N, N]."""
    N = check_count("N", N, meaning="the number of arms")
    return (np.arange(2**N)[:, None] >> np.arange(N)[None, :]) & 1


def coupled_restless_bandit(base: np.ndarray, weights: np.ndarray, budget: int, *, coupling: float = 0.2, gamma: float = 0.9,
                            name: str = "coupled-restless") -> tuple[TabularMDP, np.ndarray]:
    """The joint MDP of a coupled restless bandit and its action table.

    Shapes: base[i, s_i, a_i] (probability that arm i is good next, before coupling), weights[i]. Returns
    (mdp with P[s, k, s'] for the k-th row of ``budget_actions(N, budget)``, that action table [A, N]).
    Raises ValueError on probabilities outside [0, 1] in ``base`` (naming the entry), a budget larger than the
    number of arms, non-finite weights or coupling, gamma outside [0, 1).
    """
    p0 = as_float_array("base", base, ndim=3)
    N = p0.shape[0]
    if p0.shape != (N, 2, 2):
        raise ValueError(f"base must have shape (N, 2, 2) = ({N}, 2, 2), got {p0.shape}")
    bad = ~((p0 >= 0) & (p0 <= 1))
    if np.any(bad):
        i = tuple(int(x) for x in np.argwhere(bad)[0])
        raise ValueError(f"base must hold probabilities in [0, 1]; base[{i[0]}, {i[1]}, {i[2]}] = {float(p0[i])!r}")
    w = as_float_array("weights", weights, ndim=1)
    if w.shape != (N,):
        raise ValueError(f"weights must have shape ({N},), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be finite, got {w.tolist()}")
    kappa = check_real("coupling", coupling)
    g = check_gamma(gamma)
    acts = budget_actions(N, budget)
    S = joint_states(N)
    nS, nA = S.shape[0], acts.shape[0]
    others = (S.sum(1, keepdims=True) - S) / max(N - 1, 1)  # [s, i]
    p_good = np.clip(p0[np.arange(N)[None, None, :], S[:, None, :], acts[None, :, :]] + kappa * (others[:, None, :] - 0.5), 0, 1)  # [s, k, i]
    # P(s' | s, k) = Π_i p^{s'_i} (1 − p)^{1 − s'_i}
    P = np.prod(np.where(S[None, None, :, :] == 1, p_good[:, :, None, :], 1 - p_good[:, :, None, :]), axis=-1)
    R = np.broadcast_to((S @ w)[:, None], (nS, nA))
    mu0 = np.full(nS, 1.0 / nS)
    return TabularMDP(P=P, R=R, gamma=g, mu0=mu0, name=name), acts
