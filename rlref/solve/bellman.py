"""Bellman operators on tabular MDPs (discounted and finite horizon, dense or sparse).

    (T_Q v)(s, a) = r(s, a) + γ Σ_{s'} P(s'|s, a) v(s')           (bellman_q)
    (T v)(s)      = max_a (T_Q v)(s, a)                            (bellman_optimality)
    (T_π v)(s)    = Σ_a π(a|s) (T_Q v)(s, a)                       (bellman_policy)

For a finite horizon the stage ``h`` selects r_h and P_h and v is V_{h+1}.
Both T and T_π are monotone (v ≤ w ⇒ Tv ≤ Tw) and γ-contractions in ‖·‖_∞.

References: Puterman (1994), "Markov Decision Processes", §6.2 (eq. 6.2.2-6.2.4), Prop. 6.2.4.
"""

from __future__ import annotations

import numpy as np

from rlref._checks import as_float_array, check_finite
from rlref.mdp import TabularMDP
from rlref.policy import stage_policy, validate_policy

__all__ = ["bellman_q", "bellman_optimality", "bellman_policy", "q_values", "advantage"]


def _check_v(mdp: TabularMDP, v: np.ndarray, name: str = "v") -> np.ndarray:
    v = as_float_array(name, v, ndim=1)
    if v.shape != (mdp.num_states,):
        raise ValueError(f"{name} must have shape (S,) = ({mdp.num_states},), got {v.shape}")
    check_finite(name, v)
    return v


def _q(mdp: TabularMDP, v: np.ndarray, h: int | None) -> np.ndarray:
    """r_h + γ P_h v without input checks (internal fast path)."""
    return mdp.reward(h) + mdp.gamma * mdp.expected_next(v, h)


def bellman_q(mdp: TabularMDP, v: np.ndarray, h: int | None = None) -> np.ndarray:
    """Q(s, a) = r(s, a) + γ Σ_{s'} P(s'|s, a) v(s').

    Shapes: v[s'] -> Q[s, a]. For a stage-dependent finite-horizon MDP pass the stage ``h``
    (then r_h, P_h are used and v plays the role of V_{h+1}).
    References: Puterman (1994), eq. (6.2.2).
    """
    v = _check_v(mdp, v)
    return _q(mdp, v, h)


def bellman_optimality(mdp: TabularMDP, v: np.ndarray, h: int | None = None) -> np.ndarray:
    """(T v)(s) = max_a [r(s, a) + γ Σ_{s'} P(s'|s, a) v(s')].  Shapes: v[s] -> (Tv)[s].

    References: Puterman (1994), eq. (6.2.3).
    """
    return bellman_q(mdp, v, h).max(axis=-1)


def bellman_policy(mdp: TabularMDP, v: np.ndarray, pi: np.ndarray, h: int | None = None) -> np.ndarray:
    """(T_π v)(s) = Σ_a π(a|s) [r(s, a) + γ Σ_{s'} P(s'|s, a) v(s')].

    Shapes: v[s], pi[s, a] (or pi[h, s, a], whose stage ``h`` is used) -> (T_π v)[s].
    References: Puterman (1994), eq. (6.1.3) / §6.2.
    """
    pi = validate_policy(mdp, pi)
    if pi.ndim == 3:
        if h is None:
            raise ValueError("a staged policy pi[h, s, a] needs the stage h")
        pi = stage_policy(pi, h)
    return np.einsum("sa,sa->s", pi, bellman_q(mdp, v, h))


def q_values(mdp: TabularMDP, values: np.ndarray) -> np.ndarray:
    """Q from a value function: Q = r + γ P V (discounted, values[s] -> q[s, a]) or, for a finite
    horizon, Q_h = r_h + γ P_h V_{h+1} with V_H = 0 (values[h, s] -> q[h, s, a]).

    References: Puterman (1994), eq. (4.3.2) and (6.2.2).
    """
    values = as_float_array("values", values, ndim=(1, 2))
    check_finite("values", values)
    S = mdp.num_states
    if mdp.horizon is None:
        return bellman_q(mdp, values)
    H = mdp.horizon
    if values.shape != (H, S):
        raise ValueError(f"values must have shape (H, S) = ({H}, {S}) for a finite-horizon MDP, got {values.shape}")
    nxt = np.vstack([values[1:], np.zeros((1, S))])
    return np.stack([_q(mdp, nxt[h], h) for h in range(H)])


def advantage(mdp: TabularMDP, values: np.ndarray) -> np.ndarray:
    """A(s, a) = Q(s, a) − V(s) with Q = q_values(mdp, values); shapes as ``q_values``.

    For V = V^π this is the advantage of π (Σ_a π(a|s) A(s, a) = 0); for V = V* it is ≤ 0.
    References: Kakade & Langford (2002), §3 (advantage function).
    """
    values = as_float_array("values", values, ndim=(1, 2))
    return q_values(mdp, values) - values[..., None]
