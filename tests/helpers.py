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
