"""Occupancy measures (state-action visitation distributions).

Discounted (normalized):  d^π(s, a) = (1 − γ) Σ_t γ^t Pr_{μ0, π}(s_t = s, a_t = a),  Σ d = 1,
    found from d_S^T (I − γ P_π) = (1 − γ) μ0^T and d(s, a) = d_S(s) π(a|s).
It satisfies the flow (Bellman-flow) constraints
    Σ_a d(s', a) = (1 − γ) μ0(s') + γ Σ_{s,a} P(s'|s, a) d(s, a),   d ≥ 0,
and the identity  J(π) = Σ_s μ0(s) V^π(s) = ⟨d^π, r⟩ / (1 − γ).
Finite horizon (per stage):  d[h, s, a] = Pr(s_h = s, a_h = a),  d_0 = μ0 ⊗ π_0,
    Σ_a d[h+1, s', a] = Σ_{s,a} P_h(s'|s, a) d[h, s, a];  each stage sums to 1,
    J(π) = Σ_h γ^h ⟨d_h, r_h⟩.

Action masks: the occupancy polytope of an MDP with ``action_mask`` adds d(s, a) = 0 at every masked
pair; ``occupancy_measure`` refuses a policy with mass there (so its d is 0 there) and
``flow_residual`` counts mass there as a violation.

References: Puterman (1994), §6.9 (Thm 6.9.1, dual LP and occupancy); Altman (1999),
"Constrained Markov Decision Processes", ch. 3; Syed, Bowling & Schapire (2008), eq. (3).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rlref._checks import as_float_array, check_distribution, check_finite
from rlref.mdp import TabularMDP
from rlref.policy import stage_policy, validate_policy
from rlref.solve._linalg import solve_discounted

__all__ = ["occupancy_measure", "state_occupancy", "policy_from_occupancy", "flow_residual", "flow_matrix"]

#: Negative entries of an occupancy above this magnitude are rejected as input errors.
_NEG_TOL = 1e-9


def _selector(S: int, A: int) -> sp.csr_matrix:
    """E[(s, a), s] = 1: the (S·A, S) matrix that copies v(s) to every action (Eᵀ sums d over actions)."""
    return sp.csr_matrix((np.ones(S * A), (np.arange(S * A), np.repeat(np.arange(S), A))), shape=(S * A, S))


def _transition_csr(mdp: TabularMDP, h: int | None) -> sp.csr_matrix:
    M = mdp.transition_matrix(h if mdp.is_stage_dependent else None)
    return M.tocsr() if sp.issparse(M) else sp.csr_matrix(M)


def flow_matrix(mdp: TabularMDP, h: int | None = None, gamma: float | None = None) -> sp.csr_matrix:
    """The sparse (S, S·A) Bellman-flow matrix  M = Eᵀ − γ P_hᵀ.

    (M d)(s') = Σ_a d(s', a) − γ Σ_{s,a} P_h(s'|s, a) d(s, a) for d[s, a] flattened as s·A + a,
    where E[(s, a), s] = 1 copies a state value to its actions and P_h[(s, a), s'] = P_h(s'|s, a)
    is ``mdp.transition_matrix(h)``. The discounted occupancy polytope is
    {d ≥ 0 : M d = (1 − γ) μ0}, and Mᵀ v = v(s) − γ Σ_{s'} P(s'|s, a) v(s') is the left side of
    the value LP's Bellman inequalities Mᵀ v ≥ r (Puterman LP (6.9.1)-(6.9.2)).

    ``gamma`` defaults to ``mdp.gamma``; pass ``gamma=1`` for the undiscounted stage-to-stage
    flow of a finite horizon (Σ_a d_{h+1}(s', a) = Σ_{s,a} P_h(s'|s, a) d_h(s, a) is
    Eᵀ d_{h+1} = P_hᵀ d_h, so only the blocks Eᵀ and P_hᵀ of M are used there). ``h`` selects the
    stage of a stage-dependent MDP.
    Shapes: (S, S·A) CSR; O(nnz(P) + S·A) memory, never dense.
    Raises ValueError if gamma is outside [0, 1] or h is not a stage of mdp.
    References: Puterman (1994), "Markov Decision Processes", LP (6.9.1)-(6.9.2), Thm 6.9.1.
    """
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"mdp must be a TabularMDP, got {type(mdp).__name__}")
    g = mdp.gamma if gamma is None else float(gamma)
    if not (0.0 <= g <= 1.0):
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    S, A = mdp.num_states, mdp.num_actions
    return (_selector(S, A).T - g * _transition_csr(mdp, h).T).tocsr()


def _pushforward(mdp: TabularMDP, d_sa: np.ndarray, h: int | None) -> np.ndarray:
    """(P^T d)(s') = Σ_{s,a} P_h(s'|s, a) d(s, a); d_sa[s, a] -> [s'] (sparse-aware)."""
    M = mdp.transition_matrix(h if mdp.is_stage_dependent else None)
    return np.asarray(M.T @ d_sa.ravel()).ravel()


def state_occupancy(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """State occupancy d_S^π: (1 − γ) μ0^T (I − γ P_π)^{-1} (discounted, shape (S,), sums to 1)
    or d_S[h, s] = Pr(s_h = s) (finite horizon, shape (H, S), each stage sums to 1).

    Cost: one transposed linear solve (discounted) or H sparse mat-vecs.
    Raises ValueError if pi is not a policy for mdp.
    References: Puterman (1994), §6.9; Altman (1999), Ch. 3 eq. (3.3).
    """
    pi = validate_policy(mdp, pi)
    return _state_occupancy(mdp, pi)


def _state_occupancy(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    gamma = mdp.gamma
    if mdp.horizon is None:
        d = solve_discounted(mdp.policy_transition(pi), (1.0 - gamma) * mdp.mu0, gamma, transpose=True)
        return np.maximum(d, 0.0)
    H, S = mdp.horizon, mdp.num_states
    ds = np.zeros((H, S))
    ds[0] = mdp.mu0
    for h in range(H - 1):
        ds[h + 1] = _pushforward(mdp, ds[h][:, None] * stage_policy(pi, h), h)
    return ds


def occupancy_measure(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """Normalized state-action occupancy measure of a policy.

    Discounted: d[s, a] = (1 − γ) Σ_t γ^t Pr(s_t = s, a_t = a) = d_S(s) π(a|s) with
    d_S^T (I − γ P_π) = (1 − γ) μ0^T (sparse-aware solve; Σ d = 1). Finite horizon:
    d[h, s, a] = Pr(s_h = s, a_h = a) (each stage sums to 1).
    Identity: Σ_s μ0(s) V^π(s) = ⟨d, r⟩/(1 − γ) (discounted), = Σ_h γ^h ⟨d_h, r_h⟩ (finite horizon).

    Shapes: pi[s, a] or pi[h, s, a] -> d[s, a] or d[h, s, a].
    Raises ValueError if pi is not a policy for mdp.
    References: Puterman (1994), Thm 6.9.1; Altman (1999), Ch. 3.
    """
    pi = validate_policy(mdp, pi)
    ds = _state_occupancy(mdp, pi)
    if mdp.horizon is None:
        return ds[:, None] * pi
    return ds[:, :, None] * (pi if pi.ndim == 3 else pi[None])


def _check_occupancy(d: np.ndarray, name: str = "d") -> np.ndarray:
    d = as_float_array(name, d, ndim=(2, 3))
    check_finite(name, d)
    bad = d < -_NEG_TOL
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be non-negative; {name}[{', '.join(map(str, idx))}] = {float(d[idx])!r}")
    return np.maximum(d, 0.0)


def policy_from_occupancy(d: np.ndarray, pi_default: np.ndarray | None = None, min_mass: float = 0.0) -> np.ndarray:
    """π(a|s) = d(s, a) / Σ_b d(s, b) where the state mass exceeds ``min_mass``, else π_default(·|s)
    (uniform when ``pi_default`` is None). Works per stage for d[h, s, a].

    Entries in [−1e-9, 0) (solver round-off) are clipped to 0; more negative ones raise.
    Shapes: d[s, a] or d[h, s, a] -> π of the same shape; pi_default broadcastable to it.
    References: Puterman (1994), Thm 6.9.1 (the policy of an occupancy measure); Altman (1999), Thm 3.1.
    """
    d = _check_occupancy(d)
    if min_mass < 0:
        raise ValueError(f"min_mass must be >= 0, got {min_mass!r}")
    A = d.shape[-1]
    if pi_default is None:
        default = np.full(d.shape, 1.0 / A)
    else:
        pd = as_float_array("pi_default", pi_default)
        check_distribution("pi_default", pd)
        try:
            default = np.broadcast_to(pd, d.shape)
        except ValueError as exc:
            raise ValueError(f"pi_default of shape {pd.shape} does not broadcast to d's shape {d.shape}") from exc
    mass = d.sum(axis=-1, keepdims=True)
    ok = mass > min_mass
    safe = np.where(ok, mass, 1.0)
    return np.where(ok, d / safe, default)


def flow_residual(mdp: TabularMDP, d: np.ndarray) -> float:
    """Max-norm violation of the occupancy (flow) constraints, ≥ 0; 0 iff d is an occupancy measure.

    Discounted, d[s, a]:
        max( max_{s'} |Σ_a d(s', a) − (1 − γ) μ0(s') − γ Σ_{s,a} P(s'|s, a) d(s, a)|,  max(−d) ).
    Finite horizon, d[h, s, a]: the same with |Σ_a d[0, s, a] − μ0(s)| and
    |Σ_a d[h+1, s', a] − Σ_{s,a} P_h(s'|s, a) d[h, s, a]|.
    With ``mdp.action_mask`` the largest |d| at a masked pair is a violation too (d = 0 there).
    Cost: O(nnz(P)) per stage. References: Puterman (1994), LP (6.9.2); Altman (1999), eq. (3.3).
    """
    d = as_float_array("d", d, ndim=(2, 3))
    check_finite("d", d)
    S, A = mdp.num_states, mdp.num_actions
    neg = float(max(0.0, -float(d.min())))
    if mdp.action_mask is not None and d.shape[-2:] == mdp.action_mask.shape:
        off = np.abs(d[..., ~mdp.action_mask])
        neg = max(neg, float(off.max()) if off.size else 0.0)
    if mdp.horizon is None:
        if d.shape != (S, A):
            raise ValueError(f"d must have shape (S, A) = ({S}, {A}), got {d.shape}")
        lhs = d.sum(axis=1)
        rhs = (1.0 - mdp.gamma) * mdp.mu0 + mdp.gamma * _pushforward(mdp, d, None)
        return max(float(np.abs(lhs - rhs).max()), neg)
    H = mdp.horizon
    if d.shape != (H, S, A):
        raise ValueError(f"d must have shape (H, S, A) = ({H}, {S}, {A}), got {d.shape}")
    worst = float(np.abs(d[0].sum(axis=1) - mdp.mu0).max())
    for h in range(H - 1):
        worst = max(worst, float(np.abs(d[h + 1].sum(axis=1) - _pushforward(mdp, d[h], h)).max()))
    return max(worst, neg)
