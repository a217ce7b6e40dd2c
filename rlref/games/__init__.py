"""Zero-sum games with entropy regularization: matrix-game QRE and Nash, soft minimax value
iteration for Markov games, and QARL's bounded-rationality curriculum.

References: Reddi, Tölle, Peters, Chalvatzaki, D'Eramo (2024), "Robust Adversarial Reinforcement
Learning via Bounded Rationality Curricula" (QARL), ICLR, arXiv 2311.01642; McKelvey & Palfrey (1995).
"""

from rlref.games.qre import MatrixNash, matrix_nash, matrix_qre, matrix_qre_batch, maximin_strategy, qre_gap, qre_value

__all__ = ["matrix_qre", "matrix_qre_batch", "qre_value", "qre_gap", "MatrixNash", "matrix_nash", "maximin_strategy"]
from rlref.games.markov import (  # noqa: E402
    MarkovGame,
    MarkovQRE,
    MinimaxBackup,
    SoftMinimaxBackup,
    evaluate_pair,
    joint_policy,
    markov_game,
    minimax_value_iteration,
    soft_minimax_vi,
    worst_case_value,
)

__all__ += ["MarkovGame", "MarkovQRE", "MinimaxBackup", "SoftMinimaxBackup", "evaluate_pair", "joint_policy", "markov_game",
            "minimax_value_iteration", "soft_minimax_vi", "worst_case_value"]
from rlref.games.curriculum import CurriculumRun, SelfPaced, linear_schedule, self_paced_schedule, train_curriculum  # noqa: E402
from rlref.games.gridworld import adversarial_gridworld  # noqa: E402

__all__ += ["CurriculumRun", "SelfPaced", "linear_schedule", "self_paced_schedule", "train_curriculum", "adversarial_gridworld"]
