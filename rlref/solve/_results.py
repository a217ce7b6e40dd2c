"""Result objects returned by :mod:`rlref.solve` (frozen dataclasses, never tuples).

Shapes: discounted ``values[s]``, ``q[s, a]``, ``policy[s, a]``; finite horizon
``values[h, s]``, ``q[h, s, a]``, ``policy[h, s, a]`` for stages ``h = 0, ..., H-1``
(the value after the last stage, ``V_H = 0``, is not stored).

``PlanningResult`` and ``LPResult`` also give ``actions``: the policy as integers, one action per
state (``actions[s]``) or per stage and state (``actions[h, s]``), the first (lowest-index)
maximizer of ``policy`` — the form quantecon's ``sigma`` and pymdptoolbox's ``policy`` take.

Field order is shared: ``values, q, policy`` first, then the method-specific fields (``beta``
right after ``policy`` where there is one), then the certificates, then ``objective`` and the
bookkeeping (``method``, ``reason`` / ``status``, ``backend``). Build them by keyword.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EvaluationResult", "PlanningResult", "LPResult", "SoftResult"]


def policy_actions(policy: np.ndarray) -> np.ndarray:
    """The policy as integers: ``actions[s]`` (or ``actions[h, s]``) = the first a maximizing
    ``policy[s, a]`` (``policy[h, s, a]``), i.e. the lowest-index action among ties; an int64 array
    of shape (S,) or (H, S). For a deterministic policy ``deterministic_policy(actions, A)``
    gives ``policy`` back. Never a masked action: ``policy`` is 0 there and positive on some
    available action of every state."""
    return np.argmax(policy, axis=-1).astype(np.int64)


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """The exact value of a fixed policy.

    Attributes:
      values: V^π, shape (S,) or (H, S).
      q: Q^π = r + γ P V^π, shape (S, A) or (H, S, A).
      policy: the evaluated policy, shape (S, A) or (H, S, A) (a stationary policy is
        broadcast over stages for a finite horizon).
      advantage: A^π = Q^π − V^π, shape of ``q`` (Σ_a π(a|s) A^π(s, a) = 0).
      objective: J(π) = Σ_s μ0(s) V^π(s) (stage 0 for a finite horizon).
    """

    values: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    advantage: np.ndarray
    objective: float


@dataclass(frozen=True, eq=False)
class PlanningResult:
    """The output of value / policy / modified policy iteration and of :func:`rlref.solve.optimal`.

    Attributes:
      values: the value estimate, shape (S,) or (H, S): V_{k+1} = T V_k (sup-norm certificate),
        the midpoint of the MacQueen-Porteus interval (span certificate), V^π (exact policy
        iteration) or exact V* (backward induction).
      q: Q = r + γ P V_k, the Q-function the policy is greedy for, shape (S, A) or (H, S, A).
      policy: the returned (greedy) policy, shape (S, A) or (H, S, A).
      iterations: number of sweeps (Bellman backups or improvement steps).
      bellman_residual: ‖T V_k − V_k‖_∞ ≥ 0 for the last iterate V_k (0 for backward induction).
      suboptimality_bound: a certified upper bound on ‖V^π − V*‖_∞ ≥ 0 for the returned policy π
        (a bound on V* − V^π, which is ≥ 0 componentwise); it also bounds ‖values − V*‖_∞.
      value_error_bound: a certified bound on ‖values − V*‖_∞ (≤ suboptimality_bound up to ties).
      converged: whether the stopping rule was met before ``max_iter``.
      objective: Σ_s μ0(s) values(s) (stage 0 for a finite horizon).
      method: the algorithm that ran.
      reason: why it ran (set by ``optimal(method="auto")``; otherwise the certificate used).

    Property ``actions``: the policy as one integer action per state (or per stage and state).
    """

    values: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    iterations: int
    bellman_residual: float
    suboptimality_bound: float
    value_error_bound: float
    converged: bool
    objective: float
    method: str
    reason: str

    @property
    def actions(self) -> np.ndarray:
        """The policy as integers (:func:`policy_actions` of ``policy``)."""
        return policy_actions(self.policy)


@dataclass(frozen=True, eq=False)
class LPResult:
    """The solution of a linear-programming formulation of planning, primal and dual.

    Attributes:
      values: V*, shape (S,) or (H, S).
      q: r + γ P V*, shape (S, A) or (H, S, A).
      policy: the optimal policy read off the occupancy measure, shape (S, A) or (H, S, A).
      occupancy: the normalized occupancy measure of ``policy`` from μ0, d[s, a] (Σ d = 1) or
        d[h, s, a] (each stage sums to 1).
      objective: the optimal objective of the LP that was solved (see each function).
      status: the solver's status string.
      backend: "highs" or "cvxpy".

    Property ``actions``: the policy as one integer action per state (or per stage and state).
    """

    values: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    occupancy: np.ndarray
    objective: float
    status: str
    backend: str

    @property
    def actions(self) -> np.ndarray:
        """The policy as integers (:func:`policy_actions` of ``policy``)."""
        return policy_actions(self.policy)


@dataclass(frozen=True, eq=False)
class SoftResult:
    """The output of KL-regularized (soft) value iteration.

    Attributes:
      values: the regularized optimal value V*_β, shape (S,) or (H, S).
      q: Q = r + γ P V, shape (S, A) or (H, S, A).
      policy: the soft-greedy policy π ∝ π_ref · exp(Q/β), shape (S, A) or (H, S, A).
      beta: the regularization temperature β.
      iterations: number of soft Bellman backups.
      bellman_residual: ‖T_β V_k − V_k‖_∞ ≥ 0 (0 for backward induction).
      suboptimality_bound: certified bound on ‖V_β^π − V*_β‖_∞ for the returned policy (it also
        bounds ‖values − V*_β‖_∞).
      value_error_bound: certified bound on ‖values − V*_β‖_∞.
      converged: whether the stopping rule was met before ``max_iter``.
      objective: Σ_s μ0(s) values(s) (stage 0 for a finite horizon).
      method: the algorithm that ran ("soft_value_iteration", "soft_modified_policy_iteration",
        "soft_backward_induction").
    """

    values: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    beta: float
    iterations: int
    bellman_residual: float
    suboptimality_bound: float
    value_error_bound: float
    converged: bool
    objective: float
    method: str
