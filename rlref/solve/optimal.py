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

"auto" rule (measured, docs/benchmarks.md): every discounted instance runs span-certified modified
PI with adaptive partial evaluation (at most m − 1 = 19 sweeps per greedy step, stopped once a
sweep changes v by a span ≤ θ sp(T v − v), θ = 0.03; late greedy steps are exact lazy backups where
the action gaps allow, see rlref.solve.iteration): it was the fastest rlref method on every
benchmark instance (Garnet S = 1e4-1e6, slippery grids, RiverSwim), ahead of span VI (which the
earlier rule ran after a 21-sweep probe on fast-mixing instances) and of Krylov PI. If MPI is not
certified within 5000 greedy steps, auto continues with Krylov policy iteration (finite
convergence). Dense transition arrays with ≤ 10% non-zeros and S ≥ 200 are converted once to CSR
first (RiverSwim: 3 non-zeros per row of 500). The result's ``reason`` records the rule and the
numbers behind it.

References: Puterman (1994), "Markov Decision Processes", §6.4-6.6 (Thm 6.6.3, span bounds);
MacQueen (1966); Porteus (1971); Saad & Schultz (1986), "GMRES"; Howard (1960).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from rlref._checks import as_float_array, check_at_least, check_count, check_finite, check_positive
from rlref.mdp import TabularMDP
from rlref.solve._results import PlanningResult
from rlref.solve.bellman import HardBackup, _abs_max, _q, _row_max
from rlref.solve.dp import _improve, _planning_result
from rlref.solve.evaluation import objective_of
from rlref.solve.iteration import backward_induction, check_max_iter, check_tie_tol, iterate

__all__ = ["optimal", "span_bounds", "METHODS", "EVALUATORS"]

METHODS = ("auto", "vi", "mpi", "pi", "lp")
#: Inexact evaluators for method="pi" (GMRES is the default: fastest in the benchmark).
EVALUATORS = ("gmres", "bicgstab", "richardson")
#: Default cap m on the MPI sweeps (m − 1 partial-evaluation sweeps) and the adaptive stop θ (measured).
DEFAULT_M = 20
DEFAULT_SWEEP_TOL = 0.03
#: Greedy steps after which "auto" hands an uncertified MPI over to Krylov policy iteration.
_AUTO_MPI_STEPS = 5000
#: Dense P with at most this fraction of non-zeros (and S at least _SPARSIFY_MIN_S) is solved as CSR.
_SPARSIFY_DENSITY = 0.1
_SPARSIFY_MIN_S = 200


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
    policy, slack = HardBackup(mdp, tie_tol).greedy(q, tv)
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
        actions = _improve(q, actions, 1e-11 * (1.0 + _abs_max(q)))
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
    m: int = DEFAULT_M,
    evaluator: str = "gmres",
    sweep_tol: float | None = DEFAULT_SWEEP_TOL,
) -> PlanningResult:
    """V* within ``epsilon`` (sup norm) and an ε-optimal policy, certified: the one call to make.

    Returns a PlanningResult with ‖values − V*‖_∞ ≤ value_error_bound ≤ suboptimality_bound and
    0 ≤ V* − V^π ≤ suboptimality_bound ≤ ε for the returned greedy policy π (span certificate, see the
    module docstring), ``method`` = the method that ran and ``reason`` = why (for "auto": the size,
    γ and the probe's span contraction rate). Finite horizon: exact backward induction (bound from
    ties only).

    method: "auto" | "vi" | "mpi" (after each greedy step at most m − 1 partial-evaluation sweeps,
    stopped early once one changes v by a span ≤ ``sweep_tol`` · sp(T v − v); ``sweep_tol=None``
    always runs m − 1, the classical MPI) | "pi" (inexact Krylov evaluation, ``evaluator`` in
    EVALUATORS) | "lp" (HiGHS value LP, then certified by one backup).
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
    m = check_count("m", m)
    if sweep_tol is not None:
        sweep_tol = check_at_least("sweep_tol", sweep_tol, 0.0, "a fraction of sp(Tv - v)")
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
        mm = 1 if method == "vi" else m
        run = _sparsified(mdp)
        out = iterate(run, HardBackup(run, tie_tol), v, epsilon=eps, max_iter=max_iter, m=mm, bounds="span", strict=strict,
                      method=method, sweep_tol=sweep_tol)
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
    # auto: span MPI with adaptive evaluation on every discounted instance (measured fastest)
    run = _sparsified(mdp)
    how = f"m <= {m}" + ("" if sweep_tol is None else f", sweeps stopped at span change <= {sweep_tol:g} sp(Tv - v)")
    steps = min(max_iter, _AUTO_MPI_STEPS)
    out = iterate(run, HardBackup(run, tie_tol), v, epsilon=eps, max_iter=steps, m=m, bounds="span", strict=False,
                  method="mpi", sweep_tol=sweep_tol)
    why = (f"auto: S={S}, gamma={gamma}{', dense P run as CSR' if run is not mdp else ''}: span-certified modified PI ({how}), "
           "the fastest rlref method on every benchmark instance (docs/benchmarks.md)")
    if out.converged or steps == max_iter:
        if strict and not out.converged:
            raise RuntimeError(f"optimal(method='auto') stopped after {out.iterations} iterations with certified bound "
                               f"{out.suboptimality_bound:.3e} > epsilon={eps:.3e}; raise max_iter or pass strict=False")
        return _planning_result(mdp, out, "mpi", why)
    return _krylov_pi(mdp, out.values, eps, max_iter, tie_tol, evaluator,
                      f"{why}; not certified in {steps} greedy steps: Krylov policy iteration from there", strict)


def _sparsified(mdp: TabularMDP) -> TabularMDP:
    """The same discounted MDP with a CSR transition matrix when its dense P is mostly zeros (one
    conversion, O(S²A); each later mat-vec then costs O(nnz) instead of O(S²A)); otherwise mdp."""
    P = mdp.P
    S = mdp.num_states
    if sp.issparse(P) or S < _SPARSIFY_MIN_S or np.count_nonzero(P) > _SPARSIFY_DENSITY * P.size:
        return mdp
    return TabularMDP(sp.csr_matrix(mdp.transition_matrix()), mdp.r, gamma=mdp.gamma, mu0=mdp.mu0, name=mdp.name, reward_axes="sa",
                      action_mask=getattr(mdp, "action_mask", None))
