"""Certified planning in one call: ``optimal(mdp, epsilon)`` picks a method and certifies the answer.

Every discounted answer is certified the same way, whatever produced it: for the returned v one
Bellman backup gives d = T v − v and the MacQueen-Porteus interval
    T v + γ/(1 − γ) min d ≤ V* ≤ T v + γ/(1 − γ) max d        (Puterman 1994, Thm 6.6.3),
the values are its midpoint (error ≤ half-width) and the greedy policy π of r + γ P v loses at most
(γ sp(d) + δ)/(1 − γ) (δ ≤ tie_tol its greedy slack; derived in rlref.solve.iteration).

Methods: "vi" (value iteration, span stopping), "mpi" (modified PI, span stopping), "pi" (policy
iteration with inexact, warm-started Krylov evaluation: GMRES, chosen by measurement, see
docs/benchmarks.md; exact dense LU for small S), "lp" (HiGHS value LP), and "auto". A finite
horizon is always solved exactly by backward induction.

"auto" rule (measured on the benchmark instances): small problems (S ≤ 2000) → span-certified
modified PI (m = 20; exact PI needs ~S iterations on chains such as RiverSwim); otherwise a
10-sweep span-VI probe estimates the span contraction rate ρ
(≪ γ on fast-mixing chains such as Garnet MDPs) and predicts the sweeps to ε; if that is ≤ 300 the
probe continues as span VI, otherwise (slow mixing: gridworlds, chains) it switches to span MPI
(m = 20) warm-started from the probe (measured: on the 100×100 slippery grid MPI 0.07 s vs Krylov
PI 0.40-0.70 s). The result's ``reason`` records the numbers behind the choice.

References: Puterman (1994), "Markov Decision Processes", §6.4-6.6 (Thm 6.6.3, span bounds);
MacQueen (1966); Porteus (1971); Saad & Schultz (1986), "GMRES"; Howard (1960).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from rlref._checks import as_float_array, check_finite, check_positive
from rlref.mdp import TabularMDP
from rlref.policy import greedy_policy
from rlref.solve._results import PlanningResult
from rlref.solve.bellman import HardBackup, _q, _row_max
from rlref.solve.dp import _improve, _planning_result
from rlref.solve.evaluation import objective_of
from rlref.solve.iteration import backward_induction, check_max_iter, check_tie_tol, iterate

__all__ = ["optimal", "span_bounds", "METHODS", "EVALUATORS"]

METHODS = ("auto", "vi", "mpi", "pi", "lp")
#: Inexact evaluators for method="pi" (GMRES is the default: fastest in the benchmark).
EVALUATORS = ("gmres", "bicgstab", "richardson")
#: S at or below which "auto" uses exact policy iteration with dense solves.
_SMALL_S = 2000
#: Predicted span-VI sweeps above which "auto" switches to Krylov policy iteration.
_MAX_PREDICTED_SWEEPS = 300
_PROBE_SWEEPS = 10


def span_bounds(mdp: TabularMDP, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MacQueen-Porteus bounds on V* from any value vector v (discounted, γ < 1):

        T v + γ/(1 − γ) · min_s (T v − v)(s)  ≤  V*  ≤  T v + γ/(1 − γ) · max_s (T v − v)(s).

    The interval's half-width γ sp(T v − v)/(2(1 − γ)) bounds the error of its midpoint; it is 0
    iff T v − v is constant. Cost: one backup, O(nnz(P)). Shapes: v[s] -> (lower[s], upper[s]).
    Raises ValueError for a finite-horizon MDP or a v of the wrong shape / not finite.
    References: MacQueen (1966); Porteus (1971); Puterman (1994), Thm 6.6.3.
    """
    if mdp.horizon is not None:
        raise ValueError("span_bounds needs a discounted MDP (horizon=None); a finite horizon is solved exactly")
    v = as_float_array("v", v, ndim=1)
    if v.shape != (mdp.num_states,):
        raise ValueError(f"v must have shape (S,) = ({mdp.num_states},), got {v.shape}")
    check_finite("v", v)
    tv = _row_max(_q(mdp, v, None))
    d = tv - v
    k = mdp.gamma / (1.0 - mdp.gamma)
    return tv + k * float(d.min()), tv + k * float(d.max())


def _certify(mdp: TabularMDP, v: np.ndarray, tie_tol: float, epsilon: float, iterations: int, method: str,
             reason: str, strict: bool) -> PlanningResult:
    """Span certificate of an arbitrary v (one backup): midpoint values, greedy policy, bounds."""
    gamma = mdp.gamma
    k = gamma / (1.0 - gamma)
    q = _q(mdp, v, None)
    tv = _row_max(q)
    d = tv - v
    d_max, d_min = float(d.max()), float(d.min())
    policy = greedy_policy(q, tie_tol=tie_tol)
    slack = HardBackup(mdp, tie_tol).slack(q, policy)
    bound = k * (d_max - d_min) + slack / (1.0 - gamma)
    values = tv + 0.5 * k * (d_max + d_min)
    converged = bound <= epsilon
    if strict and not converged:
        raise RuntimeError(f"optimal(method={method!r}) stopped after {iterations} iterations with certified bound "
                           f"{bound:.3e} > epsilon={epsilon:.3e}; raise max_iter or pass strict=False")
    return PlanningResult(
        values=values, q=q, policy=policy, iterations=iterations, bellman_residual=max(d_max, -d_min),
        suboptimality_bound=bound, value_error_bound=0.5 * k * (d_max - d_min), converged=converged,
        objective=objective_of(mdp, values), method=method, reason=reason,
    )


def _evaluate_inexact(M, b: np.ndarray, x0: np.ndarray, tol: float, evaluator: str, gamma: float, P_pi) -> np.ndarray:
    """x with ‖b − M x‖_∞ ≤ tol for M = I − γ P_π, warm-started at x0 (tol in the max norm, checked)."""
    x = x0
    res = b - M @ x
    r_inf = float(np.abs(res).max())
    atol2 = tol * np.sqrt(x.shape[0]) * 0.5
    for _ in range(30):
        if r_inf <= tol:
            return x
        if evaluator == "richardson":
            x = b + gamma * (P_pi @ x)
        else:
            solver = spl.gmres if evaluator == "gmres" else spl.bicgstab
            kw = {"restart": 30} if evaluator == "gmres" else {}
            dx, _info = solver(M, res, rtol=0.0, atol=atol2, maxiter=200, **kw)
            if np.all(np.isfinite(dx)):
                x = x + dx
            atol2 *= 0.1
        res = b - M @ x
        r_inf = float(np.abs(res).max())
    return x  # the certificate of the outer loop stays valid whatever the accuracy here


def _krylov_pi(mdp: TabularMDP, v: np.ndarray, epsilon: float, max_iter: int, tie_tol: float, evaluator: str,
               reason: str, strict: bool) -> PlanningResult:
    """Policy iteration with inexact evaluation; stops on the span certificate of the current v.

    Each step: q = r + γ P v, d = T v − v; stop if γ sp(d)/(1 − γ) ≤ ε/2, else π ← greedy(q)
    (keeping the old action within a tolerance), then evaluate π from the warm start T v to a
    max-norm residual τ = max(ε(1 − γ)/(4γ), 10⁻² sp(d)) (a forcing term that tightens as PI settles).
    """
    gamma, S, A = mdp.gamma, mdp.num_states, mdp.num_actions
    k_g = gamma / (1.0 - gamma)
    tau_final = epsilon * (1.0 - gamma) / (4.0 * gamma)
    actions = None
    it = 0
    ident = sp.identity(S, format="csr")
    while it < max_iter:
        it += 1
        q = _q(mdp, v, None)
        tv = _row_max(q)
        d = tv - v
        width = float(d.max() - d.min())
        if k_g * width <= 0.5 * epsilon or width <= 16 * np.finfo(float).eps * max(1.0, float(np.abs(tv).max())):
            break
        actions = _improve(q, actions, 1e-11 * (1.0 + float(np.abs(q).max())))
        r_pi = mdp.r[np.arange(S), actions]
        P_pi = mdp.transition_matrix()[np.arange(S) * A + actions]  # rows (s, π(s)): P_π for a deterministic π
        if sp.issparse(P_pi):
            M = (ident - gamma * P_pi).tocsr()
            v = _evaluate_inexact(M, r_pi, tv, max(tau_final, 1e-2 * width), evaluator, gamma, P_pi)
        else:
            v = np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi)
    return _certify(mdp, v, tie_tol, epsilon, it, "pi", reason, strict)


def optimal(
    mdp: TabularMDP,
    epsilon: float = 1e-6,
    *,
    method: str = "auto",
    max_iter: int = 100_000,
    strict: bool = True,
    v0: np.ndarray | None = None,
    tie_tol: float = 0.0,
    m: int = 20,
    evaluator: str = "gmres",
) -> PlanningResult:
    """V* within ``epsilon`` (sup norm) and an ε-optimal policy, certified: the one call to make.

    Returns a PlanningResult with ‖values − V*‖_∞ ≤ value_error_bound ≤ suboptimality_bound and
    0 ≤ V* − V^π ≤ suboptimality_bound ≤ ε for the returned greedy policy π (span certificate, see the
    module docstring), ``method`` = the method that ran and ``reason`` = why (for "auto": the size,
    γ and the probe's span contraction rate). Finite horizon: exact backward induction (bound from
    ties only).

    method: "auto" | "vi" | "mpi" (m partial-evaluation sweeps) | "pi" (inexact Krylov evaluation,
    ``evaluator`` in EVALUATORS) | "lp" (HiGHS value LP, then certified by one backup).
    Never silent: if ``max_iter`` passes first, ``strict=True`` (default) raises RuntimeError with
    the achieved bound; ``strict=False`` returns converged=False with that (valid) bound.
    Raises ValueError for an unknown method/evaluator, epsilon <= 0, max_iter < 1, a bad tie_tol or v0.
    References: Puterman (1994), Thm 6.6.3, §6.4-6.5, §4.5; MacQueen (1966); Porteus (1971).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if evaluator not in EVALUATORS:
        raise ValueError(f"evaluator must be one of {EVALUATORS}, got {evaluator!r}")
    eps = check_positive("epsilon", epsilon)
    max_iter = check_max_iter(max_iter)
    tie_tol = check_tie_tol(tie_tol)
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m must be a positive integer, got {m!r}")
    if mdp.horizon is not None:
        out = backward_induction(mdp, HardBackup(mdp, tie_tol))
        return _planning_result(mdp, out, "backward_induction", "finite horizon: exact backward induction")
    S, gamma = mdp.num_states, mdp.gamma
    v = np.zeros(S) if v0 is None else as_float_array("v0", v0, ndim=1).copy()
    if v.shape != (S,):
        raise ValueError(f"v0 must have shape (S,) = ({S},), got {v.shape}")
    check_finite("v0", v)
    backup = HardBackup(mdp, tie_tol)
    if gamma == 0.0:
        return _certify(mdp, v, tie_tol, eps, 1, "vi", "gamma = 0: one backup is exact", strict)
    if method == "vi" or method == "mpi":
        mm = 1 if method == "vi" else int(m)
        out = iterate(mdp, backup, v, epsilon=eps, max_iter=max_iter, m=mm, bounds="span", strict=strict, method=method)
        return _planning_result(mdp, out, method, "requested; span (MacQueen-Porteus) certificate")
    if method == "pi":
        return _krylov_pi(mdp, v, eps, max_iter, tie_tol, evaluator, f"requested; inexact evaluation by {evaluator}", strict)
    if method == "lp":
        from rlref.solve.lp import lp_value

        lp = lp_value(mdp)
        # HiGHS' values carry ~1e-9 relative error, amplified by γ/(1−γ) in the certificate: polish
        # them with span-VI sweeps (usually 0-3) until the certificate meets epsilon.
        out = iterate(mdp, backup, lp.values, epsilon=eps, max_iter=max_iter, bounds="span", strict=strict, method="lp")
        return _planning_result(mdp, out, "lp", "requested; HiGHS value LP, polished and certified by span-VI sweeps")
    # auto
    if S <= _SMALL_S:
        out = iterate(mdp, backup, v, epsilon=eps, max_iter=min(max_iter, 5000), m=int(m), bounds="span", strict=False, method="mpi")
        if out.converged:
            return _planning_result(mdp, out, "mpi", f"auto: S={S} <= {_SMALL_S}: span-certified modified PI (m={int(m)})")
        return _krylov_pi(mdp, out.values, eps, max_iter, tie_tol, evaluator,
                          f"auto: S={S} <= {_SMALL_S}, modified PI not certified in 5000 iterations: policy iteration", strict)
    k_g = gamma / (1.0 - gamma)
    probe = iterate(mdp, backup, v, epsilon=eps, max_iter=_PROBE_SWEEPS, bounds="span", strict=False, method="vi")
    if probe.converged:
        return _planning_result(mdp, probe, "vi", f"auto: span VI converged within the {_PROBE_SWEEPS}-sweep probe (fast mixing)")
    first = iterate(mdp, backup, probe.values, epsilon=eps, max_iter=1, bounds="span", strict=False, method="vi")
    second = iterate(mdp, backup, first.values, epsilon=eps, max_iter=_PROBE_SWEEPS, bounds="span", strict=False, method="vi")
    if second.converged:
        second = replace(second, iterations=second.iterations + _PROBE_SWEEPS + 1)
        return _planning_result(mdp, second, "vi", f"auto: span VI converged within {2 * _PROBE_SWEEPS + 1} sweeps (fast mixing)")
    w1, w2 = first.value_error_bound, second.value_error_bound
    rho = (w2 / w1) ** (1.0 / _PROBE_SWEEPS) if w1 > 0 and w2 > 0 else 0.0
    target = 0.5 * eps / k_g  # half-width that certifies eps
    need = np.inf if rho >= 1.0 else (np.log(max(target / max(w2, 1e-300), 1e-300)) / np.log(max(rho, 1e-300)) if rho > 0 else 0.0)
    why = f"S={S}, gamma={gamma}, probe span contraction rate {rho:.4f} (gamma={gamma}), predicted span-VI sweeps {need:.0f}"
    if need <= _MAX_PREDICTED_SWEEPS:
        out = iterate(mdp, backup, second.values, epsilon=eps, max_iter=max_iter, bounds="span", strict=strict, method="vi")
        out = replace(out, iterations=out.iterations + 2 * _PROBE_SWEEPS + 1)
        return _planning_result(mdp, out, "vi", f"auto: {why} <= {_MAX_PREDICTED_SWEEPS}: span value iteration")
    out = iterate(mdp, backup, second.values, epsilon=eps, max_iter=max_iter, m=int(m), bounds="span", strict=strict, method="mpi")
    out = replace(out, iterations=out.iterations + 2 * _PROBE_SWEEPS + 1)
    return _planning_result(mdp, out, "mpi", f"auto: {why} > {_MAX_PREDICTED_SWEEPS}: slow mixing, span modified PI (m={int(m)})")
