"""Closed forms and bounds: KL-regularized RL and best-of-n, alignment asymptotics, the policy cliff.

Submodules:

* :mod:`rlref.theory.kl_regularized` — the tilt π_ref·exp(r/β)/Z, its Bayesian reading, the
  KL-constrained optimum, distribution collapse, exact best-of-n (Korbak et al. 2022; Beirami
  et al. 2024).
* :mod:`rlref.theory.asymptotics` — the memoryless model: Λ, the Cramér rate function, exact laws
  of the additive reward, best-of-N vs KL-RL (Yang et al. 2024).
* :mod:`rlref.theory.policy_cliff` — the reward → policy map: discontinuity at ties, Lipschitz
  continuity under entropy regularization (Xu 2025).
* :mod:`rlref.theory.correlated_proxies` — proxy/true-reward correlation under the reference
  occupancy measure, reward hacking, and the χ² lower bound (Laidlaw, Singhal, Dragan 2024).
"""

from rlref.theory import asymptotics, correlated_proxies, kl_regularized, policy_cliff
from rlref.theory.asymptotics import compare_alignment, rate_function, sum_distribution, tilt_for_budget
from rlref.theory.kl_regularized import (
    best_of_n_distribution,
    best_of_n_kl,
    best_of_n_kl_bound,
    best_of_n_reward,
    distribution_collapse,
    kl_constrained,
    optimal_policy,
    optimal_value,
    posterior,
    reward_kl_frontier,
)
from rlref.theory.policy_cliff import argmax_policy, jump_curve, regularized_policy, softmax_lipschitz_constant

__all__ = [
    "asymptotics",
    "correlated_proxies",
    "kl_regularized",
    "policy_cliff",
    "optimal_policy",
    "optimal_value",
    "posterior",
    "kl_constrained",
    "reward_kl_frontier",
    "distribution_collapse",
    "best_of_n_distribution",
    "best_of_n_kl",
    "best_of_n_kl_bound",
    "best_of_n_reward",
    "rate_function",
    "tilt_for_budget",
    "sum_distribution",
    "compare_alignment",
    "argmax_policy",
    "regularized_policy",
    "jump_curve",
    "softmax_lipschitz_constant",
]

# appended: the CoT-length model of Wu et al. (2025), "When More is Less" (issue #18)
from rlref.theory import cot_length  # noqa: E402

__all__ += ["cot_length"]
