"""Exact planning on tabular MDPs: evaluation, value / policy / modified policy iteration,
linear programs (value and occupancy forms), occupancy measures and KL-regularized planning.

Every function handles discounted and finite-horizon MDPs (stage-dependent P[h] / r[h] allowed)
and sparse transitions without densifying them. See docs/solve.md.

References: Puterman (1994), "Markov Decision Processes", ch. 4 and 6; Geist, Scherrer &
Pietquin (2019), "A theory of regularized MDPs".
"""

from rlref.solve._results import EvaluationResult, LPResult, PlanningResult, SoftResult
from rlref.solve.bellman import (
    HardBackup,
    PolicyBackup,
    SoftBackup,
    advantage,
    bellman_optimality,
    bellman_policy,
    bellman_q,
    q_values,
    soft_bellman,
)
from rlref.solve.dp import modified_policy_iteration, policy_iteration, value_iteration
from rlref.solve.evaluation import policy_evaluation
from rlref.solve.iteration import IterationOutcome, backward_induction, iterate
from rlref.solve.lp import lp_occupancy, lp_value
from rlref.solve.occupancy import flow_matrix, flow_residual, occupancy_measure, policy_from_occupancy, state_occupancy
from rlref.solve.optimal import optimal, span_bounds
from rlref.solve.regularized import kl_rows, soft_policy_evaluation, soft_value_iteration
from rlref.solve.tilt import greedy_limit, soft_greedy, soft_greedy_unchecked, soft_value, soft_value_unchecked

__all__ = [
    "EvaluationResult",
    "PlanningResult",
    "LPResult",
    "SoftResult",
    "bellman_q",
    "bellman_optimality",
    "bellman_policy",
    "soft_bellman",
    "HardBackup",
    "SoftBackup",
    "PolicyBackup",
    "IterationOutcome",
    "iterate",
    "backward_induction",
    "optimal",
    "span_bounds",
    "q_values",
    "advantage",
    "policy_evaluation",
    "value_iteration",
    "policy_iteration",
    "modified_policy_iteration",
    "lp_value",
    "lp_occupancy",
    "occupancy_measure",
    "state_occupancy",
    "policy_from_occupancy",
    "flow_residual",
    "flow_matrix",
    "soft_greedy",
    "soft_value",
    "greedy_limit",
    "soft_greedy_unchecked",
    "soft_value_unchecked",
    "soft_value_iteration",
    "soft_policy_evaluation",
    "kl_rows",
]
