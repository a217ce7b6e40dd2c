"""Linear solves with (I − γ P_π), dense or sparse, without densifying sparse inputs.

Sparse systems are solved by iterative refinement: x ← x + solve(M, b − M x) with BiCGSTAB at a
moderate tolerance while it makes progress, then fixed-point (Richardson) sweeps
x ← b + γ P_π x (error × γ per sweep; always converges), until the residual is below tolerance. Direct sparse LU (spsolve) is
avoided because random sparse transition graphs have catastrophic fill-in (measured: S = 5000,
5 successors per state: 17 s for spsolve vs 0.01 s for BiCGSTAB).

Certificate: ‖(I − γ P)^{-1}‖_∞ = 1/(1 − γ) for a row-stochastic P, so a max-norm residual ρ
bounds the max-norm error by ρ/(1 − γ); for the transposed system (occupancy measures) the same
holds in the 1-norm. References: Puterman (1994), Thm 6.1.1 and Cor. C.4 (Neumann series).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl

__all__ = ["solve_discounted"]


def _norm(x: np.ndarray, transpose: bool) -> float:
    return float(np.abs(x).sum() if transpose else np.abs(x).max(initial=0.0))


def _inner(M: sp.csr_matrix, r: np.ndarray) -> np.ndarray | None:
    """Approximate M^{-1} r by BiCGSTAB, or None if it breaks down (it does on the strongly
    non-normal transposed systems of deterministic policies)."""
    dx, info = spl.bicgstab(M, r, rtol=1e-9, atol=0.0, maxiter=100)
    if info < 0 or not np.all(np.isfinite(dx)):
        return None
    return dx


def solve_discounted(P_pi: np.ndarray | sp.spmatrix, b: np.ndarray, gamma: float, transpose: bool = False) -> np.ndarray:
    """Solve (I − γ P_π) x = b, or (I − γ P_π)^T x = b when ``transpose``.

    Sparse: the residual is driven below max(1e-12, 100·eps/(1 − γ)) · ‖b‖ (max-norm, or 1-norm
    when ``transpose``), so the error is at most that divided by (1 − γ).
    Shapes: P_π (S, S) dense or sparse, b (S,) -> x (S,).
    Raises RuntimeError if the sparse iterative solve does not reach the tolerance.
    """
    S = b.shape[0]
    if gamma == 0.0:
        return b.astype(np.float64, copy=True)
    if not sp.issparse(P_pi):
        M = np.eye(S) - gamma * (P_pi.T if transpose else P_pi)
        return np.linalg.solve(M, b)
    Pt = (P_pi.T if transpose else P_pi).tocsr()
    M = (sp.identity(S, format="csr") - gamma * Pt).tocsr()
    rtol = max(1e-12, 100.0 * np.finfo(float).eps / (1.0 - gamma))
    tol = rtol * _norm(b, transpose)
    x = np.zeros(S)
    res_vec = b.astype(np.float64, copy=True)
    res = _norm(res_vec, transpose)
    for _ in range(4):
        if res <= tol:
            return x
        dx = _inner(M, res_vec)
        if dx is None:
            break
        x_new = x + dx
        new_vec = b - M @ x_new
        new_res = _norm(new_vec, transpose)
        if not (new_res <= 1e-2 * res):
            break
        x, res_vec, res = x_new, new_vec, new_res
    # Richardson polish: x <- b + γ P x contracts the error by γ per sweep.
    max_sweeps = int(np.ceil(np.log(1e-16) / np.log(gamma))) + 100
    for _ in range(max_sweeps):
        if res <= tol:
            return x
        x = b + gamma * (Pt @ x)
        res = _norm(b - M @ x, transpose)
    if not (res <= tol):
        raise RuntimeError(f"sparse solve of (I - gamma P_pi) x = b did not converge: residual {res:.3e} > {tol:.3e}")
    return x
