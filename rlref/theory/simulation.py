"""The simulation lemma: how far a policy's value moves when the transition kernel changes.

For two discounted MDPs M = (P, r) and M' = (P', r) with the same rewards and a policy π, V' = r_π + γ P'_π V'
and V = r_π + γ P_π V give (derived here)

    V^π_{M'} − V^π_M = γ (I − γ P'_π)⁻¹ (P'_π − P_π) V^π_M,

so V^π_{M'} − V^π_M is the value in M' under π of the reward r̃(s, a) = γ (P' − P)(·|s, a) · V^π_M. With
|(P' − P)(·|s, a) · V| ≤ ‖P'(·|s, a) − P(·|s, a)‖₁ ‖V‖∞ and ‖V^π_M‖∞ ≤ R_max/(1 − γ):

    ‖V^π_{M'} − V^π_M‖∞ ≤ γ ε_P R_max / (1 − γ)²,   ε_P = max_{s,a} ‖P'(·|s, a) − P(·|s, a)‖₁.

References: Kearns & Singh (2002), "Near-optimal reinforcement learning in polynomial time", Machine Learning 49,
Lemma 4 (simulation lemma); Agarwal, Jiang, Kakade & Sun, "Reinforcement Learning: Theory and Algorithms", ch. 2
(the identity and the bound in this form).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rlref._checks import check_at_least, check_gamma
from rlref.mdp import TabularMDP

__all__ = ["simulation_lemma_bound", "transition_l1_errors"]


def transition_l1_errors(mdp: TabularMDP, other: TabularMDP) -> np.ndarray:
    """‖P'(·|s, a) − P(·|s, a)‖₁ for every pair, P the kernel of ``mdp`` and P' that of ``other`` (= 2·TV row by row).

    Works on sparse (CSR) kernels without densifying them. ε_P of the simulation lemma is the maximum.

    Shapes: both MDPs (S, A) -> [S, A].
    Raises ValueError if the shapes differ or either MDP is stage-dependent.
    References: Kearns & Singh (2002), Machine Learning 49, Lemma 4 (the per-pair L1 error of the model).
    """
    for name, m in (("mdp", mdp), ("other", other)):
        if not isinstance(m, TabularMDP):
            raise ValueError(f"{name} must be a rlref.TabularMDP, got {type(m).__name__}")
        if m.is_stage_dependent:
            raise ValueError(f"{name} has stage-dependent P or r (a leading h axis); only a stationary kernel is supported")
    S, A = mdp.num_states, mdp.num_actions
    if (other.num_states, other.num_actions) != (S, A):
        raise ValueError(f"other must have the shape of mdp (S, A) = ({S}, {A}), got ({other.num_states}, {other.num_actions})")
    D = other.transition_matrix() - mdp.transition_matrix()
    if sp.issparse(D):
        return np.asarray(abs(D).sum(axis=1)).reshape(S, A)
    return np.abs(np.asarray(D)).sum(axis=1).reshape(S, A)


def simulation_lemma_bound(eps_p: float, r_max: float, gamma: float) -> float:
    """The classic simulation-lemma bound  ‖V^π_{M'} − V^π_M‖∞ ≤ γ ε_P R_max / (1 − γ)²  (module docstring).

    ``eps_p`` = max_{s,a} ‖P' − P‖₁ (:func:`transition_l1_errors`), ``r_max`` = max_{s,a} |r(s, a)|.
    Raises ValueError if eps_p or r_max is negative or not finite, or gamma is not in [0, 1).
    References: Kearns & Singh (2002), Machine Learning 49, Lemma 4; Agarwal, Jiang, Kakade & Sun, ch. 2.
    """
    e = check_at_least("eps_p", eps_p, 0.0, "an L1 distance between transition rows")
    rm = check_at_least("r_max", r_max, 0.0, "the largest |r(s, a)|")
    g = check_gamma(gamma)
    return g * e * rm / (1.0 - g) ** 2
