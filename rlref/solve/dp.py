"""Dynamic programming: value iteration, policy iteration, modified policy iteration.

Discounted problems use the certified stopping rule of Puterman (1994) Thm 6.3.1 with the
greedy-policy loss bound of Williams & Baird (1993): for any value estimate v and a policy π
that is δ-greedy for Q_v = r + γ P v (i.e. T_π v ≥ T v − δ componentwise),

    0 ≤ V*(s) − V^π(s) ≤ (2γ ‖T v − v‖_∞ + δ) / (1 − γ)         (derived here for δ > 0;
                                                                  δ = 0 is Williams & Baird Cor. 2)

so stopping when ‖v_{k+1} − v_k‖_∞ ≤ ε(1 − γ)/(2γ) certifies an ε-optimal greedy policy.
Finite-horizon problems are solved exactly by backward induction (Puterman §4.5).

References: Puterman (1994), "Markov Decision Processes", Thm 4.5.1, Thm 6.3.1 (value
iteration), §6.4 (policy iteration, Thm 6.4.2), §6.5 (modified policy iteration, Thm 6.5.5);
Williams & Baird (1993), "Tight performance bounds on greedy policies based on imperfect
value functions", Cor. 2.
"""

from __future__ import annotations

import numpy as np

from rlref._checks import check_count, check_positive
from rlref.mdp import TabularMDP
from rlref.policy import deterministic_policy, greedy_policy, validate_policy
from rlref.solve._results import PlanningResult
from rlref.solve.bellman import HardBackup, _abs_max, _expect, _mask_q
from rlref.solve.evaluation import evaluate_values, objective_of
from rlref.solve.iteration import IterationOutcome, backward_induction, check_bounds, check_max_iter, check_tie_tol, check_v0, iterate

__all__ = ["value_iteration", "policy_iteration", "modified_policy_iteration"]


def _planning_result(mdp: TabularMDP, out: IterationOutcome, method: str, reason: str) -> PlanningResult:
    return PlanningResult(
        values=out.values,
        q=out.q,
        policy=out.policy,
        iterations=out.iterations,
        bellman_residual=out.bellman_residual,
        suboptimality_bound=out.suboptimality_bound,
        value_error_bound=out.value_error_bound,
        converged=out.converged,
        objective=objective_of(mdp, out.values),
        method=method,
        reason=reason,
    )


def value_iteration(
    mdp: TabularMDP,
    epsilon: float = 1e-8,
    max_iter: int = 100_000,
    v0: np.ndarray | None = None,
    strict: bool = False,
    tie_tol: float = 1e-10,
    *,
    bounds: str = "sup",
) -> PlanningResult:
    """Value iteration v_{k+1} = T v_k with a certified stopping rule.

    Discounted: iterate until ‖v_{k+1} − v_k‖_∞ ≤ ε(1 − γ)/(2γ) (immediately if γ = 0). Returns
    q = r + γ P v_k, values = max_a q = v_{k+1}, the greedy policy of q (uniform over actions within
    ``tie_tol`` of the max) and the certificate
        suboptimality_bound = (2γ ‖v_{k+1} − v_k‖_∞ + δ)/(1 − γ) ≥ ‖V^π − V*‖_∞,
    δ = max_s [max_a q(s, a) − Σ_a π(a|s) q(s, a)] ≤ tie_tol, so the policy is ε-optimal up to δ/(1−γ).
    Also ‖values − V*‖_∞ ≤ γ ‖v_{k+1} − v_k‖_∞/(1 − γ).
    If ``max_iter`` sweeps pass first (or float64 stagnates above the threshold), ``converged`` is
    False and the (still valid) bound is reported; with ``strict=True`` a RuntimeError is raised.
    ``bounds="span"`` stops instead on the span of T v − v (MacQueen-Porteus; Puterman §6.6): values
    = the midpoint of [T v + γ/(1−γ) min d, T v + γ/(1−γ) max d] ∋ V*, value_error_bound = its
    half-width, suboptimality_bound = (γ sp(d) + δ)/(1 − γ); never looser, often far earlier
    (see rlref.solve.iteration). The default ``bounds="sup"`` keeps the sup-norm rule above.
    Finite horizon: exact backward induction (``iterations`` = H, bound from ties only).

    Cost: O(nnz(P)) per sweep; O(log(ε(1−γ)/‖r‖)/log γ) sweeps (sup), fewer on fast-mixing chains (span).
    Shapes: values[s] / values[h, s], q[s, a] / q[h, s, a], policy like q.
    Raises ValueError if epsilon <= 0, max_iter < 1, tie_tol is negative/NaN/inf, bounds is unknown
    or v0 has the wrong shape.
    References: Puterman (1994), Thm 6.3.1, Thm 4.5.1 and Thm 6.6.3; Williams & Baird (1993), Cor. 2;
    MacQueen (1966); Porteus (1971).
    """
    eps = check_positive("epsilon", epsilon)
    max_iter = check_max_iter(max_iter)
    tie_tol = check_tie_tol(tie_tol)
    bounds = check_bounds(bounds)
    v = check_v0(mdp, v0)
    backup = HardBackup(mdp, tie_tol)
    if mdp.horizon is not None:
        return _planning_result(mdp, backward_induction(mdp, backup), "value_iteration", "exact backward induction")
    v = np.zeros(mdp.num_states) if v is None else v
    out = iterate(mdp, backup, v, epsilon=eps, max_iter=max_iter, bounds=bounds, strict=strict, method="value_iteration")
    return _planning_result(mdp, out, "value_iteration", f"{bounds} certificate")


def _improve(q: np.ndarray, actions: np.ndarray | None, tol: float) -> np.ndarray:
    """Tie-robust greedy improvement: keep a(s) if Q(s, a(s)) ≥ max_b Q(s, b) − tol, else argmax."""
    best = np.argmax(q, axis=-1)
    if actions is None:
        return best
    q_old = np.take_along_axis(q, actions[..., None], axis=-1)[..., 0]
    keep = q_old >= q.max(axis=-1) - tol
    return np.where(keep, actions, best)


def policy_iteration(
    mdp: TabularMDP, pi0: np.ndarray | None = None, max_iter: int = 10_000, strict: bool = False
) -> PlanningResult:
    """Howard's policy iteration with exact evaluation.

    π_{k+1}(s) ∈ argmax_a Q^{π_k}(s, a), keeping π_k(s) whenever it is within a tolerance
    τ = 1e-11·(1 + ‖Q‖_∞) of the maximum (prevents cycling between numerically tied actions);
    stops when the policy is stable. Starts from ``pi0`` (any stochastic policy) or the greedy
    policy of r. Returns the last deterministic policy π, values = V^π, q = Q^π and
        bellman_residual δ = ‖T V^π − V^π‖_∞ ≤ τ,  suboptimality_bound = δ/(1 − γ) ≥ ‖V* − V^π‖_∞
    (finite horizon: Σ_h γ^h δ_h; derived here from V* − V^π ≤ (T V^π − V^π) + γ P_{π*}(V* − V^π)).
    Converges in finitely many steps (at most A^S; typically a handful).

    Cost per iteration: one linear solve (dense O(S³), sparse BiCGSTAB) plus O(nnz(P)).
    Raises ValueError if pi0 is not a policy for mdp or max_iter < 1.
    References: Howard (1960); Puterman (1994), Thm 6.4.2 and §4.5.
    """
    max_iter = check_max_iter(max_iter)
    A = mdp.num_actions
    if pi0 is None:
        pi = greedy_policy(_mask_q(mdp, np.array(mdp.r)), ties="first")
    else:
        pi = validate_policy(mdp, pi0, name="pi0")
    actions: np.ndarray | None = None
    converged = False
    k = 0
    values, q = evaluate_values(mdp, pi)
    while k < max_iter:
        k += 1
        tol = 1e-11 * (1.0 + _abs_max(q))
        new = _improve(q, actions, tol)
        if actions is not None and np.array_equal(new, actions):
            converged = True
            break
        actions = new
        pi = deterministic_policy(actions, A)
        values, q = evaluate_values(mdp, pi)
    q_pi = _expect(pi, q)
    slack = np.maximum(q.max(axis=-1) - q_pi, 0.0)
    if mdp.horizon is None:
        delta = float(slack.max())
        bound = delta / (1.0 - mdp.gamma)
    else:
        if pi.ndim == 2:
            pi = np.broadcast_to(pi, (mdp.horizon, *pi.shape)).copy()
        delta = float(slack.max())
        bound = float(sum(mdp.gamma**h * slack[h].max() for h in range(mdp.horizon)))
    if strict and not converged:
        raise RuntimeError(f"policy_iteration did not stabilize in {max_iter} iterations; bound {bound:.3e}")
    return PlanningResult(
        values=values,
        q=q,
        policy=pi,
        iterations=k,
        bellman_residual=delta,
        suboptimality_bound=bound,
        value_error_bound=bound,
        converged=converged,
        objective=objective_of(mdp, values),
        method="policy_iteration",
        reason="exact evaluation",
    )


def modified_policy_iteration(
    mdp: TabularMDP,
    m: int = 5,
    epsilon: float = 1e-8,
    max_iter: int = 100_000,
    v0: np.ndarray | None = None,
    strict: bool = False,
    tie_tol: float = 1e-10,
    *,
    bounds: str = "sup",
) -> PlanningResult:
    """Modified policy iteration (optimistic PI): v_{k+1} = (T_{π_{k+1}})^m v_k, π_{k+1} greedy for v_k.

    m = 1 is value iteration, m = ∞ policy iteration. Stops when ‖T v_k − v_k‖_∞ ≤ ε(1 − γ)/(2γ)
    and returns the greedy policy of q = r + γ P v_k, values = T v_k, and the same certificate
    as value iteration: suboptimality_bound = (2γ ‖T v_k − v_k‖_∞ + δ)/(1 − γ). The default start
    v_0 = min r / (1 − γ) satisfies T v_0 ≥ v_0, so the iterates increase monotonically to V*.
    ``bounds="span"``: the MacQueen-Porteus stopping rule and midpoint values, as in value_iteration.
    Finite horizon: exact backward induction.

    Cost: O(m · nnz(P)) per iteration.
    Raises ValueError if m < 1, epsilon <= 0, max_iter < 1, tie_tol is negative/NaN, bounds is
    unknown or v0 has the wrong shape.
    References: Puterman & Shin (1978); Puterman (1994), §6.5, Thm 6.5.5, Prop. 6.5.1 and §6.6.
    """
    m = check_count("m", m)
    eps = check_positive("epsilon", epsilon)
    max_iter = check_max_iter(max_iter)
    tie_tol = check_tie_tol(tie_tol)
    bounds = check_bounds(bounds)
    v = check_v0(mdp, v0)
    backup = HardBackup(mdp, tie_tol)
    name = "modified_policy_iteration"
    if mdp.horizon is not None:
        return _planning_result(mdp, backward_induction(mdp, backup), name, "exact backward induction")
    if v is None:
        v = np.full(mdp.num_states, float(mdp.r.min()) / (1.0 - mdp.gamma))
    out = iterate(mdp, backup, v, epsilon=eps, max_iter=max_iter, m=int(m), bounds=bounds, strict=strict, method=name)
    return _planning_result(mdp, out, name, f"{bounds} certificate, m={int(m)}")
