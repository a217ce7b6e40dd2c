"""Entropy-regularized zero-sum matrix games: the quantal response equilibrium (QRE) and the LP Nash.

The game. Payoff ``A[i, j]`` to the row player (maximizer), paid by the column player (minimizer).
With separate temperatures τ₁ (row) and τ₂ (column) each player is rewarded for its own entropy:

    f(x, y) = xᵀ A y + τ₁ H(x) − τ₂ H(y),        H(p) = −Σ p log p.

f is strictly concave in x and strictly convex in y, so max_x min_y f = min_y max_x f at a unique
saddle point, the logit QRE, characterized by the fixed point

    x = softmax(A y / τ₁),      y = softmax(−Aᵀ x / τ₂)

(both are the tilt ``rlref.solve.soft_greedy`` with a uniform reference). Its certificate is the
regularized duality gap (each term a log-partition, ``rlref.solve.soft_value``)

    gap(x, y) = max_x' f(x', y) − min_y' f(x, y')
              = τ₁ log Σ_i e^{(A y)_i/τ₁} − τ₂H(y) + τ₂ log Σ_j e^{−(Aᵀ x)_j/τ₂} − τ₁H(x) ≥ 0,
    = 0 iff (x, y) is the QRE.

Limits: τ₁, τ₂ → 0 gives a Nash equilibrium of the matrix game (the limit of the logit QRE
selects one; McKelvey & Palfrey 1995, Thm 2), computed exactly by :func:`matrix_nash` (LP);
τ → ∞ gives the uniform strategies.

Solver (derived here). Newton's method with per-game backtracking on the row player's logits z,
G(z) = z − A y(z)/τ₁ with y(z) = softmax(−Aᵀ softmax(z)/τ₂), whose Jacobian
I + (τ₁τ₂)⁻¹ A S_y Aᵀ S_x (S_p = diag p − p pᵀ, both PSD) is always invertible; continued from
temperatures scaled up by powers of 2 down to the requested ones (warm starts). Batched over
leading axes, so a Markov game solves all its states at once.

References: McKelvey & Palfrey (1995), "Quantal response equilibria for normal form games",
GEB 10, eq. (5) (logit QRE) and Thm 2 (limit); Reddi, Tölle, Peters, Chalvatzaki, D'Eramo (2024),
"Robust Adversarial Reinforcement Learning via Bounded Rationality Curricula" (QARL), ICLR,
arXiv 2311.01642, Sec. 4 (the entropy-regularized zero-sum game and its QRE); von Neumann (1928)
and Dantzig (1951) (the LP of a matrix game).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.special import log_softmax

from rlref import divergences
from rlref._checks import as_float_array, check_beta, check_distribution, check_finite
from rlref.solve import soft_greedy_unchecked, soft_value_unchecked

__all__ = ["matrix_qre", "matrix_qre_batch", "qre_value", "qre_gap", "MatrixNash", "matrix_nash", "maximin_strategy", "check_payoff"]


#: Temperatures below max|A| / MAX_SCALE_RATIO are refused (float64 cannot certify the fixed point there).
MAX_SCALE_RATIO = 1e3
#: The regularized duality gap at the returned QRE must be below GAP_TOL·(1 + max|A|).
GAP_TOL = 1e-9


def check_payoff(payoff: object, name: str = "payoff") -> np.ndarray:
    """A finite float64 payoff with at least 2 axes ``[..., m, n]``, m, n ≥ 1; ValueError naming ``name``."""
    A = as_float_array(name, payoff)
    if A.ndim < 2 or A.shape[-1] == 0 or A.shape[-2] == 0:
        raise ValueError(f"{name} must be a matrix [m, n] (or a batch [..., m, n]) with m, n >= 1, got shape {A.shape}")
    check_finite(name, A)
    return A


def _uniform(k: int) -> np.ndarray:
    return np.full(k, 1.0 / k)


def _col_logits(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """−Aᵀx per game: [..., n]."""
    return -np.einsum("...mn,...m->...n", A, x)


def _residual(A: np.ndarray, z: np.ndarray, t1: float, t2: float) -> np.ndarray:
    """max_i |log x_i − log softmax(A y/τ₁)_i| per game, x = softmax(z), y = softmax(−Aᵀx/τ₂)."""
    logx = log_softmax(z, axis=-1)
    y = np.exp(log_softmax(_col_logits(A, np.exp(logx)) / t2, axis=-1))
    return np.max(np.abs(logx - log_softmax(np.einsum("...mn,...n->...m", A, y) / t1, axis=-1)), axis=-1)


def _newton(A: np.ndarray, z: np.ndarray, t1: float, t2: float, tol: float, max_steps: int) -> np.ndarray:
    """Damped Newton on G(z) = z − A y(z)/τ₁ (batched, backtracking per game). Returns the new z."""
    m = A.shape[-2]
    eye = np.eye(m)

    def G(z: np.ndarray) -> np.ndarray:
        x = np.exp(log_softmax(z, axis=-1))
        y = np.exp(log_softmax(_col_logits(A, x) / t2, axis=-1))
        g = z - np.einsum("...mn,...n->...m", A, y) / t1
        return g - g.mean(axis=-1, keepdims=True)  # G(z + c) = G(z) + c: fix the free constant

    z = z - z.mean(axis=-1, keepdims=True)
    for _ in range(max_steps):
        if np.all(_residual(A, z, t1, t2) < tol):
            break
        x = np.exp(log_softmax(z, axis=-1))
        y = np.exp(log_softmax(_col_logits(A, x) / t2, axis=-1))
        Sx = x[..., :, None] * eye - x[..., :, None] * x[..., None, :]
        n = y.shape[-1]
        Sy = y[..., :, None] * np.eye(n) - y[..., :, None] * y[..., None, :]
        J = eye + np.einsum("...ij,...jk,...lk,...lm->...im", A, Sy, A, Sx) / (t1 * t2)
        g = G(z)
        step = np.linalg.solve(J, g[..., None])[..., 0]
        norm0 = np.max(np.abs(g), axis=-1)
        lam = np.ones(norm0.shape)
        todo = np.ones(norm0.shape, dtype=bool)
        for _ in range(40):
            cand = z - lam[..., None] * step
            ok = np.max(np.abs(G(cand)), axis=-1) < norm0
            todo &= ~ok
            if not todo.any():
                break
            lam = np.where(todo, lam / 2, lam)
        z = z - np.where(todo, 0.0, lam)[..., None] * step
    return z


def matrix_qre_batch(payoff: np.ndarray, tau_row: float, tau_col: float, z0: np.ndarray | None = None,
                     tol: float = 1e-11) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The logit QRE of a batch of games ``payoff[..., m, n]``: returns (x[..., m], y[..., n], z[..., m]).

    ``z`` are the row player's logits at the solution; pass them back as ``z0`` to warm-start a
    nearby batch (soft minimax value iteration does). The fixed-point residual
    max |log x − log softmax(A y/τ₁)| must fall below max(tol, 4096·eps·(1 + max|A|/min τ)·√(1 + max|A|²/(τ₁τ₂))): the round-off
    floor of A y/τ₁ times the scale of the Newton Jacobian (derived here), and the duality gap
    :func:`qre_gap` below 1e-9·(1 + max|A|). Temperatures below max|A|/1000 are refused (ValueError):
    call :func:`matrix_nash` for the τ → 0 limit.
    Raises ValueError on a bad payoff or temperature; RuntimeError if Newton does not reach it.
    References: as :func:`matrix_qre`.
    """
    A = check_payoff(payoff)
    t1 = check_beta("tau_row", tau_row)
    t2 = check_beta("tau_col", tau_col)
    scale = float(np.max(np.abs(A)))
    if scale > MAX_SCALE_RATIO * min(t1, t2):
        raise ValueError(f"min(tau_row, tau_col) = {min(t1, t2)!r} is below max|payoff|/{MAX_SCALE_RATIO:g} = {scale / MAX_SCALE_RATIO:.3g}: "
                         "the logit fixed point cannot be certified in float64 there; use matrix_nash for the tau -> 0 limit")
    floor = max(tol, 4096 * np.finfo(float).eps * (1.0 + scale / min(t1, t2)) * np.sqrt(1.0 + scale**2 / (t1 * t2)))
    # homotopy: start where both temperatures exceed the payoff scale, halve down to (τ₁, τ₂)
    k = int(np.ceil(np.log2(max(1.0, 2.0 * scale / min(t1, t2)))))
    homotopy = [2.0**j for j in range(k, 0, -1)] + [1.0]
    if z0 is not None:
        z = as_float_array("z0", z0)
        if z.shape != A.shape[:-1]:
            raise ValueError(f"z0 must have shape {A.shape[:-1]} (payoff's [..., m]), got {z.shape}")
        z = _newton(A, z, t1, t2, floor, 30)
        if np.all(_residual(A, z, t1, t2) < floor):
            homotopy = []  # the warm start converged
    if homotopy:
        z = np.zeros(A.shape[:-1])
    for c in homotopy:
        z = _newton(A, z, c * t1, c * t2, floor if c == 1.0 else 1e-8, 100)
    res = _residual(A, z, t1, t2)
    if not np.all(res < floor):
        bad = np.unravel_index(int(np.argmax(res)), res.shape) if res.ndim else ()
        raise RuntimeError(f"matrix_qre did not converge: fixed-point residual {float(np.max(res)):.3e} >= {floor:.1e} "
                           f"at game {bad} (tau_row={t1}, tau_col={t2})")
    x0 = np.exp(log_softmax(z, axis=-1))
    y0 = soft_greedy_unchecked(_col_logits(A, x0), _uniform(A.shape[-1]), t2)
    gap = qre_gap(A, x0, y0, t1, t2)
    if not np.all(gap <= GAP_TOL * (1.0 + scale)):
        raise RuntimeError(f"matrix_qre: regularized duality gap {float(np.max(gap)):.3e} > {GAP_TOL * (1.0 + scale):.1e} "
                           f"(tau_row={t1}, tau_col={t2})")
    y0 = soft_greedy_unchecked(_col_logits(A, x0), _uniform(A.shape[-1]), t2)
    x = soft_greedy_unchecked(np.einsum("...mn,...n->...m", A, y0), _uniform(A.shape[-2]), t1)
    y = soft_greedy_unchecked(_col_logits(A, x), _uniform(A.shape[-1]), t2)
    return x, y, z


def matrix_qre(payoff: np.ndarray, tau_row: float, tau_col: float) -> tuple[np.ndarray, np.ndarray]:
    """The quantal response equilibrium (x, y) of the entropy-regularized zero-sum matrix game.

    x = softmax(A y / τ₁),  y = softmax(−Aᵀ x / τ₂): the unique saddle point of
    f(x, y) = xᵀAy + τ₁H(x) − τ₂H(y) (row maximizes, column minimizes). τ → 0: a Nash equilibrium
    (:func:`matrix_nash`); τ → ∞: uniform.

    Shapes: payoff[m, n] -> (x[m], y[n]). Raises ValueError if payoff is not a finite 2-d matrix
    or a temperature is <= 0 / not finite; RuntimeError if the solver fails its certificate.
    References: McKelvey & Palfrey (1995), eq. (5); Reddi et al. (2024), QARL, Sec. 4.
    """
    A = check_payoff(payoff)
    if A.ndim != 2:
        raise ValueError(f"payoff must be a 2-d matrix [m, n], got shape {A.shape} (use matrix_qre_batch for a batch)")
    x, y, _ = matrix_qre_batch(A, tau_row, tau_col)
    return x, y


def qre_value(payoff: np.ndarray, x: np.ndarray, y: np.ndarray, tau_row: float, tau_col: float) -> np.ndarray:
    """f(x, y) = xᵀAy + τ₁H(x) − τ₂H(y) (batched over leading axes; at the QRE it is the game's value).

    References: Reddi et al. (2024), QARL, Sec. 4 (entropy-regularized objective); sign convention derived here.
    """
    A = check_payoff(payoff)
    t1, t2 = check_beta("tau_row", tau_row, allow_zero=True), check_beta("tau_col", tau_col, allow_zero=True)
    x, y = as_float_array("x", x), as_float_array("y", y)
    check_distribution("x", x)
    check_distribution("y", y)
    bil = np.einsum("...m,...mn,...n->...", x, A, y)
    return bil + t1 * np.asarray(divergences.entropy(x)) - t2 * np.asarray(divergences.entropy(y))


def qre_gap(payoff: np.ndarray, x: np.ndarray, y: np.ndarray, tau_row: float, tau_col: float) -> np.ndarray:
    """Regularized duality gap max_x' f(x', y) − min_y' f(x, y') ≥ 0 (= 0 iff (x, y) is the QRE).

    = [τ₁ log Σ_i e^{(Ay)_i/τ₁} − τ₂H(y)] + [τ₂ log Σ_j e^{−(Aᵀx)_j/τ₂} − τ₁H(x)]  (each log-sum-exp a
    soft value with uniform reference plus τ log k). Cost O(mn). References: derived here (Legendre–Fenchel of τH, Geist et al. 2019, Prop. 1).
    """
    A = check_payoff(payoff)
    t1, t2 = check_beta("tau_row", tau_row), check_beta("tau_col", tau_col)
    x, y = as_float_array("x", x), as_float_array("y", y)
    check_distribution("x", x)
    check_distribution("y", y)
    m, n = A.shape[-2], A.shape[-1]
    h_x, h_y = np.asarray(divergences.entropy(x)), np.asarray(divergences.entropy(y))
    best_row = soft_value_unchecked(np.einsum("...mn,...n->...m", A, y), _uniform(m), t1) + t1 * np.log(m) - t2 * h_y
    worst_col = -(soft_value_unchecked(_col_logits(A, x), _uniform(n), t2) + t2 * np.log(n)) + t1 * h_x
    return np.maximum(best_row - worst_col, 0.0)


@dataclass(frozen=True)
class MatrixNash:
    """A Nash equilibrium of the zero-sum matrix game: x (row, maximizer), y (column), value = xᵀAy.

    ``gap`` = max_i (Ay)_i − min_j (Aᵀx)_j ≥ 0, the duality-gap certificate (0 at an equilibrium).
    """

    x: np.ndarray
    y: np.ndarray
    value: float
    gap: float


def maximin_strategy(payoff: np.ndarray) -> tuple[np.ndarray, float]:
    """The row player's maximin strategy of the zero-sum matrix game A, by one linear program (HiGHS):

        max_{x ∈ Δ_m, v} v   s.t.  (Aᵀx)_j ≥ v  for every column j,

    returning (x, v) with v = max_x min_j (Aᵀx)_j the game value (minimax theorem). The one zero-sum LP of the
    library: :func:`matrix_nash` solves it for both players, ``rlref.preferences.minimax_winner`` for the
    symmetric preference game (A = P, value 1/2).

    Shapes: payoff[m, n] -> x[m], float. Raises ValueError on a bad payoff, RuntimeError if HiGHS fails.
    References: von Neumann (1928); Dantzig (1951), "A proof of the equivalence of the programming problem and
    the game problem".
    """
    A = check_payoff(payoff)
    if A.ndim != 2:
        raise ValueError(f"payoff must be a 2-d matrix [m, n], got shape {A.shape}")
    return _lp_maximin(A)


def _lp_maximin(A: np.ndarray) -> tuple[np.ndarray, float]:
    """max_{x ∈ Δ, v} v s.t. (Aᵀx)_j ≥ v ∀j (HiGHS) on a validated A; no checks."""
    m, n = A.shape
    c = np.zeros(m + 1)
    c[-1] = -1.0
    res = linprog(c, A_ub=np.hstack([-A.T, np.ones((n, 1))]), b_ub=np.zeros(n),
                  A_eq=np.hstack([np.ones((1, m)), np.zeros((1, 1))]), b_eq=[1.0],
                  bounds=[(0, None)] * m + [(None, None)], method="highs")
    if res.status != 0:
        raise RuntimeError(f"the maximin LP of a {m} x {n} zero-sum game: HiGHS failed: {res.message}")
    x = np.clip(res.x[:m], 0.0, None)
    return x / x.sum(), float(res.x[-1])


def matrix_nash(payoff: np.ndarray) -> MatrixNash:
    """A Nash equilibrium of the zero-sum matrix game A (row maximizes xᵀAy) by two linear programs.

    Row:  max_{x ∈ Δ_m, v} v  s.t.  Aᵀx ≥ v·1;   column: the same LP for −Aᵀ. The two optimal
    values coincide (minimax theorem). The general (rectangular, not constant-sum-1/2) case of
    ``rlref.preferences.minimax_winner``.

    Shapes: payoff[m, n] -> x[m], y[n]. Raises ValueError on a bad payoff, RuntimeError if HiGHS fails.
    References: von Neumann (1928); Dantzig (1951), "A proof of the equivalence of the programming
    problem and the game problem".
    """
    A = check_payoff(payoff)
    if A.ndim != 2:
        raise ValueError(f"payoff must be a 2-d matrix [m, n], got shape {A.shape}")
    x, v = _lp_maximin(A)
    y, _ = _lp_maximin(-A.T)
    gap = float(np.max(A @ y) - np.min(A.T @ x))
    return MatrixNash(x=x, y=y, value=v, gap=max(gap, 0.0))
