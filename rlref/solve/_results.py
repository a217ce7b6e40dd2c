"""Result objects returned by :mod:`rlref.solve` (frozen dataclasses, never tuples).

Shapes: discounted ``values[s]``, ``q[s, a]``, ``policy[s, a]``; finite horizon
``values[h, s]``, ``q[h, s, a]``, ``policy[h, s, a]`` for stages ``h = 0, ..., H-1``
(the value after the last stage, ``V_H = 0``, is not stored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EvaluationResult", "PlanningResult", "LPResult", "SoftResult"]


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """The exact value of a fixed policy.

    Attributes:
      values: V^π, shape (S,) or (H, S).
      q: Q^π = r + γ P V^π, shape (S, A) or (H, S, A).
      advantage: A^π = Q^π − V^π, shape of ``q`` (Σ_a π(a|s) A^π(s, a) = 0).
      policy: the evaluated policy, shape (S, A) or (H, S, A) (a stationary policy is
        broadcast over stages for a finite horizon).
      objective: J(π) = Σ_s μ0(s) V^π(s) (stage 0 for a finite horizon).
    """

    values: np.ndarray
    q: np.ndarray
    advantage: np.ndarray
    policy: np.ndarray
    objective: float


@dataclass(frozen=True, eq=False)
class PlanningResult:
    """The output of value / policy / modified policy iteration.

    Attributes:
      values: the value estimate (exact V* for policy iteration up to the linear solve;
        for value iteration V_{k+1} = T V_k), shape (S,) or (H, S).
      q: Q = r + γ P V_k, the Q-function the policy is greedy for, shape (S, A) or (H, S, A).
      policy: the returned (greedy) policy, shape (S, A) or (H, S, A).
      iterations: number of sweeps (Bellman backups or improvement steps).
      bellman_residual: ‖T V_k − V_k‖_∞ ≥ 0 for the last iterate V_k (0 for backward induction).
      suboptimality_bound: a certified upper bound on ‖V^π − V*‖_∞ ≥ 0 for the returned policy π
        (a bound on V* − V^π, which is ≥ 0 componentwise).
      converged: whether the stopping rule was met before ``max_iter``.
      objective: Σ_s μ0(s) values(s) (stage 0 for a finite horizon).
      method: the algorithm's name.
    """

    values: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    iterations: int
    bellman_residual: float
    suboptimality_bound: float
    converged: bool
    objective: float
    method: str


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
    """

    values: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    occupancy: np.ndarray
    objective: float
    status: str
    backend: str


@dataclass(frozen=True, eq=False)
class SoftResult:
    """The output of KL-regularized (soft) value iteration.

    Attributes:
      values: the regularized optimal value V*_β, shape (S,) or (H, S).
      q: Q = r + γ P V, shape (S, A) or (H, S, A).
      policy: the soft-greedy policy π ∝ π_ref · exp(Q/β), shape (S, A) or (H, S, A).
      iterations: number of soft Bellman backups.
      bellman_residual: ‖T_β V_k − V_k‖_∞ ≥ 0 (0 for backward induction).
      beta: the regularization temperature β.
      suboptimality_bound: certified bound on ‖V_β^π − V*_β‖_∞ for the returned policy.
      converged: whether the stopping rule was met before ``max_iter``.
      objective: Σ_s μ0(s) values(s) (stage 0 for a finite horizon).
    """

    values: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    iterations: int
    bellman_residual: float
    beta: float
    suboptimality_bound: float
    converged: bool
    objective: float
