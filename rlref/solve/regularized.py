"""KL-regularized (soft) planning.

Objective (discounted):  V_β^π(s) = E_π[ Σ_t γ^t ( r(s_t, a_t) − β KL(π(·|s_t) ‖ π_ref(·|s_t)) ) | s_0 = s ].
Soft Bellman optimality:  Q = r + γ P V,   V(s) = β log Σ_a π_ref(a|s) exp(Q(s, a)/β),
optimal policy  π*(a|s) = π_ref(a|s) exp((Q(s, a) − V(s))/β).
Entropy regularization is the special case π_ref = uniform: −β KL(π ‖ u) = β H(π) − β log A,
so V_entropy = V_KL + β log A/(1 − γ) (or + β log A · Σ_h γ^h for a finite horizon).

Finite horizon (stage-dependent π_ref[h, s, a] allowed): V_H = 0, Q_h = r_h + γ P_h V_{h+1},
V_h = β log Σ_a π_ref,h exp(Q_h/β). On a tree MDP (states = prefixes, reward R(y) at the leaf,
γ = 1) the product of per-step soft policies is the sequence-level tilt
π(y) = π_ref(y) exp(R(y)/β) / Z with β log Z = V_0(root).

References: Ziebart (2010), PhD thesis, Thm 6.8 (soft Bellman equations); Haarnoja et al. (2017),
"Reinforcement learning with deep energy-based policies", Thm 1-2; Geist, Scherrer & Pietquin
(2019), "A theory of regularized MDPs", Prop. 1 and Thm 1; Korbak, Perez & Buckley (2022),
"RL with KL penalties is better viewed as Bayesian inference", eq. (2); Rafailov et al. (2023),
"Direct preference optimization", eq. (4).

Action masks (``TabularMDP(..., action_mask=...)``): π_ref is restricted to the available actions
and renormalized (rlref.policy.reference_policy; None = uniform over them), so the soft values are
those of the MDP with the masked actions removed and every returned policy is 0 on them.
"""

from __future__ import annotations

import numpy as np

from rlref import divergences
from rlref._checks import as_float_array, check_beta, check_count, check_nonnegative, check_positive
from rlref.mdp import TabularMDP
from rlref.policy import reference_policy, stage_policy, validate_policy
from rlref.solve._results import EvaluationResult, SoftResult
from rlref.solve.bellman import SoftBackup
from rlref.solve.evaluation import _staged, evaluate_values, objective_of
from rlref.solve.iteration import backward_induction, check_bounds, check_max_iter, check_v0, iterate
from rlref.solve.tilt import soft_greedy, soft_value

__all__ = ["soft_greedy", "soft_value", "soft_value_iteration", "soft_policy_evaluation", "kl_rows"]


def kl_rows(pi: np.ndarray, pi_ref: np.ndarray) -> np.ndarray:
    """KL(π(·|s) ‖ π_ref(·|s)) = Σ_a π log(π/π_ref) over the last axis, with 0·log 0 = 0 and
    KL = +inf when π puts mass where π_ref has none. Shapes: pi[..., a], pi_ref broadcastable to
    pi's shape -> [...]. Raises ValueError if either is negative or not finite, or pi_ref does not
    broadcast to pi's shape.
    References: Cover & Thomas (2006), eq. (2.26).
    """
    pi = as_float_array("pi", pi)
    ref = as_float_array("pi_ref", pi_ref)
    check_nonnegative("pi", pi)
    check_nonnegative("pi_ref", ref)
    try:
        ref = np.broadcast_to(ref, pi.shape)
    except ValueError as exc:
        raise ValueError(f"pi_ref of shape {ref.shape} does not broadcast to pi's shape {pi.shape}") from exc
    return np.asarray(divergences.kl(pi, ref))


def soft_value_iteration(
    mdp: TabularMDP,
    beta: float,
    pi_ref: np.ndarray | None = None,
    epsilon: float = 1e-8,
    max_iter: int = 100_000,
    v0: np.ndarray | None = None,
    strict: bool = False,
    *,
    m: int = 1,
    bounds: str = "sup",
) -> SoftResult:
    """Soft value iteration for the KL-regularized objective E[Σ_t γ^t (r − β KL(π ‖ π_ref))].

    Discounted: v_{k+1}(s) = β log Σ_a π_ref(a|s) exp((r(s, a) + γ Σ_{s'} P(s'|s, a) v_k(s'))/β), a
    γ-contraction; stops when ‖v_{k+1} − v_k‖_∞ ≤ ε(1 − γ)/(2γ). Returns q = r + γ P v_k,
    values = v_{k+1}, the soft-greedy policy π ∝ π_ref exp(q/β) and the certificate
    suboptimality_bound = 2γ ‖v_{k+1} − v_k‖_∞/(1 − γ) ≥ ‖V_β^π − V_β*‖_∞ (the Williams-Baird argument
    applies verbatim to the regularized operators since π attains the soft max exactly; derived here),
    and ‖values − V_β*‖_∞ ≤ γ‖v_{k+1} − v_k‖_∞/(1 − γ).
    ``m > 1``: soft modified policy iteration (m − 1 regularized evaluation sweeps
    v ← r_π − β KL_π + γ P_π v of the soft-greedy π after each backup). ``bounds="span"``: stop on the
    span of T_β v − v and return the MacQueen-Porteus midpoint (half-width in value_error_bound,
    suboptimality_bound = γ sp(d)/(1 − γ)); valid because T_β is monotone with T_β(v + c) = T_β v + γc
    (Geist et al. 2019, Prop. 2; derived here as in rlref.solve.iteration).
    Finite horizon: exact backward recursion (pi_ref may be stage-dependent, pi_ref[h, s, a]).
    β = np.inf evaluates π_ref; β → 0 recovers (hard) value iteration restricted to supp π_ref.

    Action mask: π_ref's mass on masked actions is dropped and renormalized (None = uniform over the
    available actions), so the result is that of the MDP without them; the policy is 0 there.
    Shapes: pi_ref[s, a] or [h, s, a] (None = uniform, i.e. entropy regularization up to the
    constant β log A per step) -> values[s] / values[h, s], q and policy [s, a] / [h, s, a].
    Raises ValueError if beta <= 0, epsilon <= 0, max_iter < 1, m < 1, bounds is unknown or pi_ref
    is not a policy for mdp.
    References: Geist, Scherrer & Pietquin (2019), Thm 1 (contraction) and Prop. 3; Ziebart (2010),
    Thm 6.8; Puterman (1994), Thm 6.3.1 (stopping rule), §6.5 (MPI), §6.6 (span bounds).
    """
    b = check_beta("beta", beta, allow_inf=True)
    eps = check_positive("epsilon", epsilon)
    max_iter = check_max_iter(max_iter)
    bounds = check_bounds(bounds)
    m = check_count("m", m)
    v = check_v0(mdp, v0)
    ref = reference_policy(mdp, pi_ref)
    backup = SoftBackup(mdp, ref, b)
    if mdp.horizon is not None:
        out, name = backward_induction(mdp, backup), "soft_backward_induction"
    else:
        if ref.ndim == 3:
            raise ValueError("a stage-dependent pi_ref[h, s, a] needs a finite-horizon MDP")
        name = "soft_value_iteration" if m == 1 else "soft_modified_policy_iteration"
        v = np.zeros(mdp.num_states) if v is None else v
        out = iterate(mdp, backup, v, epsilon=eps, max_iter=max_iter, m=int(m), bounds=bounds, strict=strict, method=name)
    return SoftResult(
        values=out.values,
        q=out.q,
        policy=out.policy,
        beta=b,
        iterations=out.iterations,
        bellman_residual=out.bellman_residual,
        suboptimality_bound=out.suboptimality_bound,
        value_error_bound=out.value_error_bound,
        converged=out.converged,
        objective=objective_of(mdp, out.values),
        method=name,
    )


def soft_policy_evaluation(mdp: TabularMDP, pi: np.ndarray, beta: float, pi_ref: np.ndarray | None = None) -> EvaluationResult:
    """Regularized value of any policy: V_β^π = (I − γ P_π)^{-1} (r_π − β KL_π),
    KL_π(s) = KL(π(·|s) ‖ π_ref(·|s)); finite horizon V_h = Σ_a π_h (r_h + γ P_h V_{h+1}) − β KL_{π,h}.

    Returned ``q`` is Q_β^π = r + γ P V_β^π (the KL of the current state is not inside Q), so
    V_β^π(s) = Σ_a π(a|s) Q_β^π(s, a) − β KL_π(s) and ``advantage`` = q − values[..., None].
    Shapes: pi, pi_ref [s, a] or [h, s, a] (pi_ref None = uniform over the available actions;
    with an action mask π_ref is restricted to them and renormalized, see soft_value_iteration).
    Raises ValueError if beta is not finite and > 0, pi / pi_ref is not a policy for mdp (pi with
    mass on a masked action included), or π puts
    mass outside supp π_ref at some state (KL = +inf there, so the regularized value is −inf).
    References: Geist, Scherrer & Pietquin (2019), Def. of T_{π,Ω} (eq. 3) and Prop. 2.
    """
    b = check_beta("beta", beta)
    pi = validate_policy(mdp, pi)
    ref = reference_policy(mdp, pi_ref)
    if mdp.horizon is None and (pi.ndim == 3 or ref.ndim == 3):
        raise ValueError("stage-dependent pi / pi_ref need a finite-horizon MDP")
    if mdp.horizon is not None and (pi.ndim == 3 or ref.ndim == 3):
        H = mdp.horizon
        kl = np.stack([kl_rows(stage_policy(pi, h), stage_policy(ref, h)) for h in range(H)])
    else:
        kl = kl_rows(pi, ref)
    if np.any(np.isinf(kl)):
        idx = tuple(int(i) for i in np.argwhere(np.isinf(kl))[0])
        raise ValueError(
            f"pi puts mass outside the support of pi_ref at index {idx} (KL = +inf, regularized value -inf)"
        )
    values, q = evaluate_values(mdp, pi, reward_offset=-b * kl)
    return EvaluationResult(
        values=values, q=q, policy=_staged(mdp, pi), advantage=q - values[..., None], objective=objective_of(mdp, values)
    )
