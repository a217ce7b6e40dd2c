"""Linear-programming formulations of planning, primal and dual (sparse constraint matrices).

Value LP (discounted), with weights w > 0:
    min_v  Σ_s w(s) v(s)   s.t.  v(s) − γ Σ_{s'} P(s'|s, a) v(s') ≥ r(s, a)   ∀ s, a;
its unique solution is V*, and its dual variables d(s, a) ≥ 0 satisfy
    Σ_a d(s', a) − γ Σ_{s,a} P(s'|s, a) d(s, a) = w(s'),
i.e. (1 − γ) d is the normalized occupancy measure of an optimal policy started from w.
Occupancy LP (discounted, normalized):
    max_d ⟨d, r⟩  s.t.  Σ_a d(s', a) = (1 − γ) μ0(s') + γ Σ_{s,a} P(s'|s, a) d(s, a),  d ≥ 0,
optimal value (1 − γ) J*, J* = Σ_s μ0(s) V*(s); its duals are V* on the reachable support.
Finite horizon (stages h = 0..H−1, V_H = 0): the staged value LP
    min Σ_{h,s} w_h(s) v_h(s)  s.t.  v_h(s) − γ Σ_{s'} P_h(s'|s, a) v_{h+1}(s') ≥ r_h(s, a),
and the staged occupancy LP
    max Σ_h γ^h ⟨d_h, r_h⟩  s.t.  Σ_a d_0(s, a) = μ0(s),  Σ_a d_{h+1}(s', a) = Σ_{s,a} P_h(s'|s, a) d_h(s, a),
with duals u_h = γ^h V_h.

Backends: scipy.optimize.linprog(method="highs-ipm") and cvxpy (Clarabel by default) — two
independent solvers on the same sparse matrices. cvxpy is imported only when ``backend="cvxpy"``
runs (it takes about a second to import), so ``import rlref.solve`` does not load it.

Action masks (``mdp.action_mask``): the value LP has no constraint for a masked (s, a), and the
occupancy LP has no variable for it (its occupancy is fixed at 0); the returned policy and
occupancy are 0 there. Both LPs are then those of the MDP with the masked actions removed.

References: Puterman (1994), "Markov Decision Processes", §6.9 (LP (6.9.1)-(6.9.2), Thm 6.9.1)
and §4.6 (finite horizon, derived here in the staged form); Manne (1960); d'Epenoux (1963);
De Farias & Van Roy (2003), "The linear programming approach to approximate DP", §2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from rlref.mdp import TabularMDP
from rlref.policy import uniform_policy
from rlref.solve._results import LPResult
from rlref.solve.bellman import bellman_optimality, q_values
from rlref.solve.evaluation import policy_evaluation
from rlref.solve.occupancy import _selector, _transition_csr, flow_matrix, occupancy_measure, policy_from_occupancy

if TYPE_CHECKING:  # cvxpy is imported lazily, in _cvxpy()
    import cvxpy as cp

__all__ = ["lp_value", "lp_occupancy"]

_BACKENDS = ("highs", "cvxpy")
#: Refuse an LP answer whose certified relative error exceeds this (issue #11 item 4).
LP_REL_TOL = 1e-4


def _reward_scale(mdp: TabularMDP) -> float:
    """c = max |r| (1 if r = 0): the LPs are solved for r / c and unscaled, so HiGHS' absolute
    tolerances (~1e-9) do not swamp rewards of scale 1e-9 (measured: 1%-21% errors before)."""
    c = float(np.abs(mdp.r).max())
    return c if c > 0 else 1.0


def _horizon_weight(mdp: TabularMDP) -> float:
    return 1.0 / (1.0 - mdp.gamma) if mdp.horizon is None else float(mdp.horizon)


def _check_values(mdp: TabularMDP, values: np.ndarray, scale: float, name: str) -> None:
    """Refuse V unless its certified error ‖T V − V‖_∞/(1 − γ) (finite horizon: Σ_h of the stage
    residuals) is ≤ LP_REL_TOL · max|r| · (1/(1 − γ) or H)."""
    if mdp.horizon is None:
        err = float(np.abs(bellman_optimality(mdp, values) - values).max()) / (1.0 - mdp.gamma)
    else:
        nxt = np.vstack([values[1:], np.zeros((1, mdp.num_states))])
        err = sum(float(np.abs(bellman_optimality(mdp, nxt[h], h) - values[h]).max()) for h in range(mdp.horizon))
    limit = LP_REL_TOL * scale * _horizon_weight(mdp)
    if not (err <= limit):
        raise RuntimeError(f"{name}: the solver reported success but its values fail the Bellman check: certified error "
                           f"{err:.3e} > {limit:.3e} (= {LP_REL_TOL:g} * max|r| * horizon); use rlref.solve.optimal")


def _check_policy_objective(mdp: TabularMDP, policy: np.ndarray, J_lp: float, scale: float, name: str) -> None:
    """Refuse an occupancy-LP policy whose exact value J(π) misses the LP optimum by more than the tolerance."""
    J_pi = policy_evaluation(mdp, policy).objective
    limit = LP_REL_TOL * scale * _horizon_weight(mdp)
    if not (abs(J_pi - J_lp) <= limit):
        raise RuntimeError(f"{name}: the solver reported success but its policy's exact value J(pi) = {J_pi:.6e} misses "
                           f"the LP optimum {J_lp:.6e} by more than {limit:.3e}; use rlref.solve.optimal")


def _check_backend(backend: str) -> str:
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    return backend


def _value_constraints(mdp: TabularMDP) -> tuple[sp.csr_matrix, np.ndarray]:
    """(M, r) with M v ≥ r the Bellman inequalities; v flattened as v[h·S + s] for a finite horizon.

    Discounted M = flow_matrixᵀ = E − γ P; staged: diagonal blocks E, super-diagonal −γ P_h.
    """
    if mdp.horizon is None:
        return flow_matrix(mdp).T.tocsr(), mdp.r.ravel()
    E = _selector(mdp.num_states, mdp.num_actions)
    g = mdp.gamma
    H = mdp.horizon
    blocks = [[None] * H for _ in range(H)]
    for h in range(H):
        blocks[h][h] = E
        if h + 1 < H:
            blocks[h][h + 1] = -g * _transition_csr(mdp, h)
    r = np.concatenate([mdp.reward(h).ravel() for h in range(H)])
    return sp.bmat(blocks, format="csr"), r


def _weights(mdp: TabularMDP) -> tuple[np.ndarray, bool]:
    """Strictly positive LP weights and whether they equal μ0 (so the dual is μ0's occupancy)."""
    S = mdp.num_states
    if mdp.horizon is None:
        if np.all(mdp.mu0 > 0):
            return np.asarray(mdp.mu0, dtype=np.float64), True
        return np.full(S, 1.0 / S), False
    n = mdp.horizon * S
    return np.full(n, 1.0 / n), False


def _solve_highs(c, A_ub=None, b_ub=None, A_eq=None, b_eq=None, bounds=None):
    # HiGHS' interior point (with crossover to a vertex) is both more accurate (dual values within
    # ~1e-11 of V* on Garnet MDPs, vs ~6e-8 with the default dual simplex) and 3-7x faster here.
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs-ipm")
    if res.status != 0:
        raise RuntimeError(f"HiGHS (scipy.optimize.linprog) failed: status {res.status}: {res.message}")
    return res


def _cvxpy():
    """The cvxpy module, imported on first use (only the cvxpy backend needs it)."""
    import cvxpy

    return cvxpy


def _cvxpy_solve(prob: cp.Problem, solver: str) -> str:
    cp = _cvxpy()
    try:
        # Clarabel's default gaps (1e-8) leave ~1e-7 errors in V*; tighten them for reference answers.
        opts = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12} if solver.upper() == "CLARABEL" else {}
        prob.solve(solver=solver, **opts)
    except cp.error.SolverError as exc:
        raise RuntimeError(f"cvxpy solver {solver} failed: {exc}") from exc
    if prob.status != cp.OPTIMAL:
        raise RuntimeError(f"cvxpy solver {solver} did not solve the LP: status {prob.status!r}")
    return str(prob.status)


def _allowed_pairs(mdp: TabularMDP) -> np.ndarray | None:
    """Indices of the available (s, a) pairs in the flattened s·A + a order (h·S·A + s·A + a for a
    finite horizon); None when there is no action mask (every pair is kept)."""
    if mdp.action_mask is None:
        return None
    keep = np.flatnonzero(mdp.action_mask.ravel())
    if mdp.horizon is None:
        return keep
    n = mdp.num_states * mdp.num_actions
    return (np.arange(mdp.horizon)[:, None] * n + keep[None, :]).ravel()


def _scatter(x: np.ndarray, keep: np.ndarray | None, size: int) -> np.ndarray:
    """x on the kept pairs, 0 on the masked ones (identity when keep is None)."""
    if keep is None:
        return x
    out = np.zeros(size)
    out[keep] = x
    return out


def _shape_sa(mdp: TabularMDP, x: np.ndarray) -> np.ndarray:
    S, A = mdp.num_states, mdp.num_actions
    return x.reshape((S, A) if mdp.horizon is None else (mdp.horizon, S, A))


def _shape_s(mdp: TabularMDP, x: np.ndarray) -> np.ndarray:
    S = mdp.num_states
    return x.reshape((S,) if mdp.horizon is None else (mdp.horizon, S))


def lp_value(mdp: TabularMDP, backend: str = "highs", cvxpy_solver: str = "CLARABEL") -> LPResult:
    """Solve the value LP  min_v Σ w v  s.t.  v ≥ r + γ P v  (staged for a finite horizon).

    Weights: w = μ0 when μ0 > 0 everywhere (discounted), otherwise uniform over all states (and
    stages); strict positivity makes the solution V* at every state. ``objective`` = w·V*.
    The dual variables d ≥ 0 of the Bellman inequalities give the policy π(a|s) ∝ d(s, a) (tight
    constraints only, by complementary slackness); ``occupancy`` is (1 − γ) d when w = μ0, else
    occupancy_measure(mdp, π) — the normalized occupancy of π from μ0 either way.

    Sizes: S (or H·S) variables, S·A (or H·S·A) constraints, nnz(P) + S·A non-zeros.
    Numerics: solved for r / max|r| and unscaled; the answer is then checked by one Bellman backup
    and refused (RuntimeError) if its certified error ‖T V − V‖_∞/(1 − γ) exceeds LP_REL_TOL · max|r|/(1 − γ).
    Raises ValueError for an unknown backend, RuntimeError naming the status if the solver fails.
    References: Puterman (1994), LP (6.9.1) and Thm 6.9.1; Manne (1960).
    """
    _check_backend(backend)
    M, r = _value_constraints(mdp)
    n_pairs = M.shape[0]
    keep = _allowed_pairs(mdp)
    if keep is not None:  # no Bellman inequality for a masked (s, a)
        M, r = M[keep], r[keep]
    scale = _reward_scale(mdp)
    r = r / scale
    w, is_mu0 = _weights(mdp)
    if backend == "highs":
        res = _solve_highs(w, A_ub=-M, b_ub=-r, bounds=(None, None))
        v, dual, obj, status = res.x, -res.ineqlin.marginals, float(res.fun), "optimal"
    else:
        cp = _cvxpy()
        x = cp.Variable(M.shape[1])
        cons = [M @ x >= r]
        prob = cp.Problem(cp.Minimize(w @ x), cons)
        status = _cvxpy_solve(prob, cvxpy_solver)
        v, dual, obj = np.asarray(x.value), np.asarray(cons[0].dual_value), float(prob.value)
    values = _shape_s(mdp, v) * scale
    obj *= scale
    _check_values(mdp, values, scale, "lp_value")
    d = _shape_sa(mdp, _scatter(np.maximum(dual, 0.0), keep, n_pairs))
    policy = policy_from_occupancy(d, uniform_policy(mdp))
    if is_mu0:
        occupancy = (1.0 - mdp.gamma) * d
    else:
        occupancy = occupancy_measure(mdp, policy)
    return LPResult(
        values=values, q=q_values(mdp, values), policy=policy, occupancy=occupancy, objective=obj, status=status, backend=backend
    )


def _occupancy_constraints(mdp: TabularMDP) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """(N, b, c): N d = b are the flow constraints and c the objective weights.

    Discounted N = flow_matrix(mdp); staged: diagonal blocks Eᵀ, sub-diagonal −P_{h−1}ᵀ.
    """
    g = mdp.gamma
    if mdp.horizon is None:
        return flow_matrix(mdp), (1.0 - g) * mdp.mu0, mdp.r.ravel()
    E = _selector(mdp.num_states, mdp.num_actions)
    H, S = mdp.horizon, mdp.num_states
    blocks = [[None] * H for _ in range(H)]
    for h in range(H):
        blocks[h][h] = E.T
        if h >= 1:
            blocks[h][h - 1] = -_transition_csr(mdp, h - 1).T
    b = np.zeros(H * S)
    b[:S] = mdp.mu0
    c = np.concatenate([g**h * mdp.reward(h).ravel() for h in range(H)])
    return sp.bmat(blocks, format="csr"), b, c


def lp_occupancy(mdp: TabularMDP, backend: str = "highs", cvxpy_solver: str = "CLARABEL") -> LPResult:
    """Solve the occupancy (dual) LP  max_{d ≥ 0} ⟨d, r⟩  s.t. the flow constraints.

    Discounted: Σ_a d(s', a) = (1 − γ) μ0(s') + γ Σ_{s,a} P(s'|s, a) d(s, a); Σ d = 1 and
    ``objective`` = (1 − γ) J*. Finite horizon: per-stage d[h, s, a] (each stage sums to 1) and
    ``objective`` = J* = Σ_h γ^h ⟨d_h, r_h⟩.
    ``values`` come from the constraint duals (V_h = u_h/γ^h for a finite horizon); they equal V*
    wherever the optimal occupancy (or μ0) has mass. Off that support the LP does not determine
    them: the returned dual is then some v with v ≥ T v, hence v ≥ V* there (an upper bound).
    ``policy`` = d normalized per state, uniform (over the available actions) on states with zero mass.

    Numerics: solved for r / max|r| and unscaled; the policy is then evaluated exactly and refused
    (RuntimeError) if J(π) misses the LP optimum by more than LP_REL_TOL · max|r|/(1 − γ).
    Raises ValueError for an unknown backend or a finite horizon with γ^{H−1} < 1e-6 (later stages
    would carry vanishing weight in the objective and their values could not be recovered);
    RuntimeError naming the status if the solver fails.
    References: Puterman (1994), LP (6.9.2) and Thm 6.9.1; Altman (1999), Ch. 3 (normalized form).
    """
    _check_backend(backend)
    if mdp.horizon is not None and mdp.gamma ** (mdp.horizon - 1) < 1e-6:
        raise ValueError(
            f"lp_occupancy needs gamma^(H-1) >= 1e-6 for a finite horizon, got gamma={mdp.gamma!r}, "
            f"H={mdp.horizon}; use lp_value or value_iteration"
        )
    N, b, c = _occupancy_constraints(mdp)
    n_pairs = N.shape[1]
    keep = _allowed_pairs(mdp)
    if keep is not None:  # no variable for a masked (s, a): its occupancy is 0
        N, c = N[:, keep], c[keep]
    scale = _reward_scale(mdp)
    c = c / scale
    if backend == "highs":
        res = _solve_highs(-c, A_eq=N, b_eq=b, bounds=(0, None))
        d, u, obj, status = res.x, -res.eqlin.marginals, -float(res.fun), "optimal"
    else:
        cp = _cvxpy()
        x = cp.Variable(N.shape[1], nonneg=True)
        cons = [N @ x == b]
        prob = cp.Problem(cp.Maximize(c @ x), cons)
        status = _cvxpy_solve(prob, cvxpy_solver)
        d, u, obj = np.asarray(x.value), np.asarray(cons[0].dual_value), float(prob.value)
    d = _shape_sa(mdp, _scatter(np.maximum(d, 0.0), keep, n_pairs))
    u = _shape_s(mdp, u) * scale
    obj *= scale
    if mdp.horizon is not None:
        u = u / (mdp.gamma ** np.arange(mdp.horizon))[:, None]
    policy = policy_from_occupancy(d, uniform_policy(mdp))
    J_lp = obj / (1.0 - mdp.gamma) if mdp.horizon is None else obj
    _check_policy_objective(mdp, policy, J_lp, scale, "lp_occupancy")
    return LPResult(values=u, q=q_values(mdp, u), policy=policy, occupancy=d, objective=obj, status=status, backend=backend)
