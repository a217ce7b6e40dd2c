"""Finite Markov chains: bottom strongly connected components, absorption probabilities and the
Cesàro-limit (long-run average) distribution.

These are the exact tools the infinite-horizon, undiscounted formalisms need: a limit-average
reward and the satisfaction probability of an ω-regular property are both determined by which
bottom SCC (BSCC) a run of the policy-induced chain ends in.

For a chain with transition matrix ``P[i, j]`` and start distribution ``mu0[i]``:

* every run enters a BSCC with probability 1 and then visits each of its states (and each of its
  positive-probability transitions) infinitely often;
* ``absorption[i, b] = Pr(reach BSCC b | start i)`` solves ``(I − Q) x = P_{T,b} 1`` on the
  transient states ``T``;
* the Cesàro limit ``ρ = lim_N (1/N) Σ_{t<N} mu0ᵀ Pᵗ`` equals ``Σ_b Pr(reach b) · σ_b`` where
  ``σ_b`` is the unique stationary distribution of BSCC ``b``.

References: Kemeny & Snell (1960), "Finite Markov Chains", Thm 3.2.1 and §4.1; Puterman (1994),
§8.2 and Appendix A.4 (the limiting matrix P*); Baier & Katoen (2008), "Principles of Model
Checking", Thm 10.27 (almost every path ends in a BSCC and visits all of it infinitely often).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse as sp

from rlref._checks import as_distribution, as_float_array, check_finite

__all__ = ["ChainLimit", "chain_limit"]

_EDGE_TOL = 0.0  # a transition exists iff its probability is > 0 (exact structure)


@dataclass(frozen=True, eq=False)
class ChainLimit:
    """Long-run structure of a finite Markov chain.

    Attributes:
      bsccs: the bottom SCCs, each a sorted integer array of chain states.
      reach: reach[b] = Pr(the run ends in BSCC b), shape (B,), sums to 1.
      stationary: stationary[b] = the stationary distribution of BSCC b on all states, shape (B, n).
      limit: the Cesàro-limit distribution ρ = Σ_b reach[b] stationary[b], shape (n,).
      residual: max |σ_b P − σ_b| over BSCCs plus |Σ reach − 1| (a certificate, ≥ 0).
    """

    bsccs: tuple[np.ndarray, ...]
    reach: np.ndarray
    stationary: np.ndarray
    limit: np.ndarray
    residual: float


def chain_limit(P: np.ndarray | sp.spmatrix, mu0: np.ndarray) -> ChainLimit:
    """BSCCs, absorption probabilities and the Cesàro-limit distribution of a finite chain.

    ρ = lim_{N→∞} (1/N) Σ_{t<N} μ0ᵀ Pᵗ = Σ_b Pr_μ0(reach B_b) σ_b, with σ_b P = σ_b on B_b.

    Shapes: P[i, j] (dense or sparse, rows stochastic), mu0[i] -> ChainLimit.
    Cost: one SCC decomposition (networkx) plus one sparse solve on the transient states and one
    small solve per BSCC.
    Raises ValueError if P is not square, has negative or NaN entries, or mu0 is not a distribution.
    References: Kemeny & Snell (1960), Thm 3.2.1; Puterman (1994), Appendix A.4.
    """
    Pd = P.toarray() if sp.issparse(P) else as_float_array("P", P, ndim=2)
    n = Pd.shape[0]
    if Pd.shape != (n, n):
        raise ValueError(f"P must be square, got shape {Pd.shape}")
    check_finite("P", Pd)
    if np.any(Pd < 0):
        i, j = (int(k) for k in np.argwhere(Pd < 0)[0])
        raise ValueError(f"P must be non-negative; P[{i}, {j}] = {Pd[i, j]!r}")
    rows = Pd.sum(axis=1)
    bad = np.abs(rows - 1.0) > 1e-8
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"P must have rows summing to 1; row {i} sums to {rows[i]!r}")
    mu0 = as_distribution("mu0", mu0, ndim=1)
    if mu0.shape != (n,):
        raise ValueError(f"mu0 must have shape ({n},), got {mu0.shape}")

    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    ii, jj = np.nonzero(Pd > _EDGE_TOL)
    g.add_edges_from(zip(ii.tolist(), jj.tolist(), strict=True))
    cond = nx.condensation(g)
    bottoms = [c for c in cond.nodes if cond.out_degree(c) == 0]
    bsccs = tuple(np.array(sorted(cond.nodes[c]["members"]), dtype=int) for c in bottoms)
    in_b = np.full(n, -1)
    for b, members in enumerate(bsccs):
        in_b[members] = b
    transient = np.flatnonzero(in_b < 0)

    B = len(bsccs)
    absorb = np.zeros((n, B))
    for b, members in enumerate(bsccs):
        absorb[members, b] = 1.0
    if transient.size:
        Q = Pd[np.ix_(transient, transient)]
        rhs = np.stack([Pd[np.ix_(transient, members)].sum(axis=1) for members in bsccs], axis=1)
        x = np.maximum(np.linalg.solve(np.eye(transient.size) - Q, rhs), 0.0)
        # every run leaves the transient states a.s., so each row is a distribution: renormalizing
        # removes the O(cond(I − Q)·eps) drift of nearly-absorbing rows (exit rate ε → cond ~ 1/ε)
        absorb[transient] = x / x.sum(axis=1, keepdims=True)
    reach = mu0 @ absorb

    stationary = np.zeros((B, n))
    residual = abs(float(reach.sum()) - 1.0)
    for b, members in enumerate(bsccs):
        k = members.size
        Pb = Pd[np.ix_(members, members)]
        # σ (I − P_b) = 0, Σ σ = 1: replace one equation by the normalization.
        M = (np.eye(k) - Pb).T
        M[-1, :] = 1.0
        rhs = np.zeros(k)
        rhs[-1] = 1.0
        sigma = np.linalg.solve(M, rhs)
        stationary[b, members] = sigma
        residual = max(residual, float(np.max(np.abs(sigma @ Pb - sigma))))
    limit = reach @ stationary
    return ChainLimit(bsccs=bsccs, reach=reach, stationary=stationary, limit=limit, residual=residual)
