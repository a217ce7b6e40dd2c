"""Shared builders for the solver tests (independent of rlref.testing, so a bug there cannot hide one here)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rlref import TabularMDP


def random_mdp(seed: int, S: int = 6, A: int = 3, gamma: float = 0.9, sparse: bool = False, horizon: int | None = None,
               staged: bool = False, branching: int = 3, mu0_zeros: bool = False) -> TabularMDP:
    """A random MDP: Dirichlet rows (sparse: ``branching`` distinct successors), normal rewards."""
    rng = np.random.default_rng(seed)
    if sparse:
        k = min(branching, S)
        rows = np.repeat(np.arange(S * A), k)
        cols = np.concatenate([rng.choice(S, size=k, replace=False) for _ in range(S * A)])
        P = sp.csr_matrix((rng.dirichlet(np.ones(k), S * A).ravel(), (rows, cols)), shape=(S * A, S))
    elif staged:
        P = rng.dirichlet(np.ones(S), (horizon, S, A))
    else:
        P = rng.dirichlet(np.ones(S), (S, A))
    R = rng.normal(size=(horizon, S, A) if staged else (S, A))
    mu0 = rng.dirichlet(np.ones(S))
    if mu0_zeros:
        mu0[: S // 2] = 0.0
        mu0 /= mu0.sum()
    return TabularMDP(P, R, gamma=gamma, horizon=horizon, mu0=mu0)


def brute_force_values(mdp: TabularMDP) -> np.ndarray:
    """V* by enumerating all A^S deterministic stationary policies (independent of the solvers)."""
    S, A = mdp.num_states, mdp.num_actions
    P = mdp.dense_P()
    best = np.full(S, -np.inf)
    for idx in np.ndindex(*([A] * S)):
        a = np.array(idx)
        P_pi = P[np.arange(S), a]
        v = np.linalg.solve(np.eye(S) - mdp.gamma * P_pi, mdp.r[np.arange(S), a])
        best = np.maximum(best, v)
    return best


def with_absorbing_and_ties(mdp: TabularMDP, seed: int) -> TabularMDP:
    """A copy of a dense discounted MDP whose first state is absorbing (self-loop, reward 0 under
    every action) and whose last action duplicates action 0 (exact ties in Q)."""
    rng = np.random.default_rng(seed)
    P = mdp.dense_P().copy()
    R = mdp.r.copy()
    P[0] = 0.0
    P[0, :, 0] = 1.0
    R[0] = 0.0
    if mdp.num_actions >= 2:
        P[:, -1] = P[:, 0]
        R[:, -1] = R[:, 0]
    R = R + 0.0 * rng.normal(size=R.shape)
    return TabularMDP(P, R, gamma=mdp.gamma, mu0=mdp.mu0)
