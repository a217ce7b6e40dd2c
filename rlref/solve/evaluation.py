"""Exact policy evaluation.

Discounted:  V^π = (I − γ P_π)^{-1} r_π,  r_π(s) = Σ_a π(a|s) r(s, a),
             P_π(s, s') = Σ_a π(a|s) P(s'|s, a)   (one linear solve; sparse-aware).
Finite horizon: V_H = 0,  Q_h = r_h + γ P_h V_{h+1},  V_h(s) = Σ_a π_h(a|s) Q_h(s, a).

References: Puterman (1994), "Markov Decision Processes", Thm 6.1.1 (discounted) and
§4.2 (finite-horizon policy evaluation algorithm).
"""

from __future__ import annotations

import numpy as np

from rlref.mdp import TabularMDP
from rlref.policy import validate_policy
from rlref.solve._linalg import solve_discounted
from rlref.solve._results import EvaluationResult
from rlref.solve.bellman import PolicyBackup, _mask_q, _q
from rlref.solve.iteration import backward_induction

__all__ = ["policy_evaluation", "evaluate_values"]


def _staged(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """Broadcast a stationary policy to (H, S, A) for a finite-horizon MDP."""
    if mdp.horizon is None or pi.ndim == 3:
        return pi
    return np.broadcast_to(pi, (mdp.horizon, *pi.shape)).copy()


def evaluate_values(mdp: TabularMDP, pi: np.ndarray, reward_offset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(V^π, Q^π) for a validated policy, optionally adding a per-state reward offset c_π(s)
    (shape (S,) or (H, S)) to r_π — used for regularized rewards r − β KL. No input checks.

    Q^π is r + γ P V^π (the offset is a state reward collected on top, not in Q), −∞ at the
    pairs masked by ``mdp.action_mask``.
    """
    gamma = mdp.gamma
    if mdp.horizon is None:
        r_pi = np.einsum("sa,sa->s", pi, mdp.r)
        if reward_offset is not None:
            r_pi = r_pi + reward_offset
        v = solve_discounted(mdp.policy_transition(pi), r_pi, gamma)
        return v, _q(mdp, v, None)
    out = backward_induction(mdp, PolicyBackup(mdp, pi, reward_offset))
    return out.values, _mask_q(mdp, out.q)


def objective_of(mdp: TabularMDP, values: np.ndarray) -> float:
    """J = Σ_s μ0(s) V(s) (stage 0 for a finite horizon)."""
    return float(mdp.mu0 @ (values[0] if values.ndim == 2 else values))


def policy_evaluation(mdp: TabularMDP, pi: np.ndarray) -> EvaluationResult:
    """Exact value, Q-function and advantage of a policy.

    Discounted: solves (I − γ P_π) V = r_π (dense LU, or BiCGSTAB refinement + fixed-point polish for a
    sparse P, never densified; error ≤ residual/(1 − γ)). Finite horizon: backward induction
    V_h = Σ_a π_h(a|s) [r_h(s, a) + γ Σ_{s'} P_h(s'|s, a) V_{h+1}(s')], V_H = 0.

    Shapes: pi[s, a] (or pi[h, s, a] for a finite horizon) -> values[s] / values[h, s],
    q[s, a] / q[h, s, a], advantage = q − values[..., None].
    Raises ValueError if pi has the wrong shape or a row is not a distribution.
    References: Puterman (1994), Thm 6.1.1 and §4.2.
    """
    pi = validate_policy(mdp, pi)
    values, q = evaluate_values(mdp, pi)
    return EvaluationResult(
        values=values, q=q, policy=_staged(mdp, pi), advantage=q - values[..., None], objective=objective_of(mdp, values)
    )
