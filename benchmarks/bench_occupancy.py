"""Benchmark: exact occupancy-regularized programs (rlref.algorithms.occupancy_regularized.solve)
against a naive cvxpy formulation of the same χ² program.

Ours: sparse flow matrix M (nnz ≈ S·A·(1 + #successors)), χ² as a diagonal quadratic
Σ (μ − μ_ref)²/μ_ref. Naive: dense flow matrix, one cvxpy constraint per state, and
cp.sum_squares(D @ (μ − μ_ref)) with a dense D = diag(μ_ref^{-1/2}).

Run:  python benchmarks/bench_occupancy.py [--n 50] [--naive-n 20]
Prints the wall-clock seconds of each and the ratio naive/ours on the same instance, and the
time of every divergence on an n×n gridworld with 4 actions (S·A = 4n²).
"""

from __future__ import annotations

import argparse
import time

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from rlref import TabularMDP
from rlref.algorithms.occupancy_regularized import DIVERGENCES, occupancy_of, solve


def grid(n: int, slip: float = 0.1, gamma: float = 0.95, seed: int = 0) -> tuple[TabularMDP, np.ndarray]:
    """Open n×n grid, actions up/down/left/right, w.p. slip a uniformly random move; sparse P."""
    S, A = n * n, 4
    moves = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    rows, cols, vals = [], [], []
    for s in range(S):
        i, j = divmod(s, n)
        nxt = [min(max(i + di, 0), n - 1) * n + min(max(j + dj, 0), n - 1) for di, dj in moves]
        for a in range(A):
            for b in range(A):
                rows.append(s * A + a)
                cols.append(nxt[b])
                vals.append((1 - slip) * (a == b) + slip / A)
    P = sp.csr_matrix((vals, (rows, cols)), shape=(S * A, S))
    rng = np.random.default_rng(seed)
    R = rng.normal(size=(S, A))
    mdp = TabularMDP(P, R, gamma=gamma, name=f"grid{n}")
    pi_ref = rng.dirichlet(np.ones(A), size=S)
    return mdp, pi_ref


def naive_chi2(mdp: TabularMDP, pi_ref: np.ndarray, lam: float) -> tuple[float, float]:
    S, A = mdp.num_states, mdp.num_actions
    P = mdp.dense_P()
    mu_ref = occupancy_of(mdp, pi_ref).ravel()
    mu = cp.Variable(S * A)
    cons = [mu >= 0]
    for s in range(S):  # one Python-built constraint per state, dense coefficients
        coef = -mdp.gamma * P[:, :, s].ravel()
        coef[s * A : (s + 1) * A] += 1.0
        cons.append(coef @ mu == (1 - mdp.gamma) * mdp.mu0[s])
    D = np.diag(1.0 / np.sqrt(mu_ref))
    prob = cp.Problem(cp.Maximize(mdp.r.ravel() @ mu - lam * cp.sum_squares(D @ (mu - mu_ref))), cons)
    t = time.perf_counter()
    prob.solve(solver="CLARABEL")
    return time.perf_counter() - t, float(prob.value)


def timed(f, *args, **kw):
    t = time.perf_counter()
    out = f(*args, **kw)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--naive-n", type=int, default=20)
    ap.add_argument("--lam", type=float, default=0.1)
    args = ap.parse_args()

    mdp, pi_ref = grid(args.naive_n)
    t_ours, res = timed(solve, mdp, None, pi_ref, args.lam, "chi2")
    t_naive, val = naive_chi2(mdp, pi_ref, args.lam)
    print(f"{args.naive_n}x{args.naive_n} grid (S·A = {mdp.num_states * mdp.num_actions}), chi2, lam={args.lam}")
    print(f"  ours  {t_ours:8.3f} s   objective {res.objective:.8f}")
    print(f"  naive {t_naive:8.3f} s   objective {val:.8f}")
    print(f"  ratio naive/ours = {t_naive / t_ours:.1f}x")

    mdp, pi_ref = grid(args.n)
    print(f"{args.n}x{args.n} grid (S·A = {mdp.num_states * mdp.num_actions}), lam={args.lam}")
    for div in DIVERGENCES:
        t, res = timed(solve, mdp, None, pi_ref, args.lam, div)
        print(f"  {div:<10} {t:8.3f} s   status {res.status}  objective {res.objective:.6f}")


if __name__ == "__main__":
    main()
