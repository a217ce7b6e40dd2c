"""Categorical sampling by inversion, episodes of a finite-horizon MDP, and the argmax with ties broken uniformly
at random, shared by the simulators and learners of the method layer.

A draw from the distribution p[0..K−1] with cumulative F_j = Σ_{i≤j} p_i is the first j with u ≤ F_j for
u ~ U[0, 1), i.e. the number of j with u > F_j (sequential search). The uniforms are passed in, so each caller
keeps its own random stream (one uniform per draw, drawn in the caller's order).

References: Devroye (1986), "Non-Uniform Random Variate Generation", Springer, §III.2 (the inversion method
for discrete distributions, sequential search).
"""

from __future__ import annotations

import numpy as np

__all__ = ["inverse_cdf_sample", "random_argmax", "rollout_episodes"]


def inverse_cdf_sample(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index draws k = min(#{j : u > F_j}, K − 1), the first j with u ≤ F_j, for each leading index.

    Shapes: cdf[..., K] (non-decreasing along the last axis, F_{K−1} = 1 up to rounding), u[...] (uniforms in
    [0, 1), the leading shape of cdf) -> int64 [...]. The clamp at K − 1 keeps a draw in range when rounding
    leaves F_{K−1} just below u. Unchecked: callers validate their distributions once, outside hot loops.
    References: Devroye (1986), §III.2 (inversion by sequential search).
    """
    idx = (np.asarray(u)[..., None] > cdf).sum(axis=-1)
    return np.minimum(idx, np.shape(cdf)[-1] - 1)


def random_argmax(score: np.ndarray, rng: np.random.Generator, tol: float = 0.0) -> np.ndarray:
    """An index drawn uniformly from the near-maximizers {a : score[..., a] ≥ max_b score[..., b] − tol}, per row.

    Each entry gets an independent U[0, 1) key (``rng.random(score.shape)``, one call) and the largest key among
    the near-maximizers wins: by symmetry every one of them is equally likely. Shapes: score[..., A] -> int64 [...]
    (a 0-d array for 1-d score). Unchecked (hot loops): score must be finite where it matters (no NaN).
    References: the uniform tie-break of UCB / Thompson / greedy rules, e.g. Lattimore & Szepesvári (2020), §7.1.
    """
    s = np.asarray(score)
    top = s >= s.max(axis=-1, keepdims=True) - tol
    return np.argmax(np.where(top, rng.random(s.shape), -1.0), axis=-1)


def rollout_episodes(cum_P: np.ndarray, pi: np.ndarray, mu0: np.ndarray, n: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n independent episodes of the staged policy π in a finite-horizon MDP, vectorized over episodes:

        s_0 ~ μ0,   a_h ~ π_h(·|s_h),   s_{h+1} ~ P_h(·|s_h, a_h),   h = 0, ..., H − 1,

    each draw by :func:`inverse_cdf_sample` from one uniform, in the order u_0 (all s_0), then per stage the n
    action uniforms and the n next-state uniforms: the stream of ``rng.random((2H + 1, n))``.

    Shapes: cum_P[h, s, a, s'] (the cumulative sum of P over s', computed once by the caller), pi[h, s, a],
    mu0[s] -> (states[n, H], actions[n, H], final_states[n]) int64, final_states = s_H. Unchecked: callers
    validate the MDP and the policy.
    References: Puterman (1994), §2.1 (the process a policy induces); Devroye (1986), §III.2 (inversion).
    """
    H = pi.shape[0]
    states = np.empty((n, H), dtype=np.int64)
    actions = np.empty((n, H), dtype=np.int64)
    s = inverse_cdf_sample(np.broadcast_to(np.cumsum(mu0), (n, mu0.size)), rng.random(n))
    cpi = np.cumsum(pi, axis=-1)
    for h in range(H):
        states[:, h] = s
        a = inverse_cdf_sample(cpi[h, s], rng.random(n))
        actions[:, h] = a
        s = inverse_cdf_sample(cum_P[h, s, a], rng.random(n))
    return states, actions, s
