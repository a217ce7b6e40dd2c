"""Converters to and from QuantEcon's ``quantecon.markov.DiscreteDP`` (optional extra ``quantecon``).

DiscreteDP takes either the dense form  R[s, a], Q[s, a, s']  (infeasible actions have R = −inf)
or the state-action-pair form  R[l], Q[l, s'] (dense or scipy sparse), s_indices[l], a_indices[l]
for the L feasible pairs; its discount factor is ``beta`` (rlref's γ). An infeasible action
(R = −inf in the dense form, a pair left out of the pair form) becomes a masked action of the
TabularMDP (``action_mask[s, a] = False``; ``fill="mask"``, the default), and back: ``to_discrete_dp``
writes R = −inf at masked pairs (dense form) or leaves them out (pair form). The alternatives
``fill="duplicate"`` (the infeasible action copies a feasible action of the same state, which leaves
V* and the optimal policies' values unchanged, with no mask) and ``fill="raise"`` remain.

``from_quantecon`` / ``to_quantecon`` are the same functions under the peer's name.

References: QuantEcon.py documentation, ``quantecon.markov.ddp.DiscreteDP`` (Sargent & Stachurski,
"Quantitative Economics with Python", "Discrete State Dynamic Programming").
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rlref.mdp import TabularMDP

__all__ = ["to_discrete_dp", "from_discrete_dp", "to_quantecon", "from_quantecon", "FORMS", "FILLS"]

FORMS = ("dense", "sa_pairs")
#: What ``from_discrete_dp`` does with an infeasible action.
FILLS = ("mask", "duplicate", "raise")


def _ddp_class():
    try:
        from quantecon.markov import DiscreteDP
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("rlref.interop.quantecon needs quantecon: pip install quantecon (or pip install -e '.[interop]')") from exc
    return DiscreteDP


def to_discrete_dp(mdp: TabularMDP, form: str = "sa_pairs"):
    """A ``DiscreteDP`` with the same R, P and γ (β = γ).

    form="dense": R[s, a], Q[s, a, s'] (densifies P: S²A memory). form="sa_pairs" (default): R[l],
    Q[l, s'] with l = s·A + a, s_indices = l // A, a_indices = l % A; a sparse P stays sparse (CSR).
    A masked action (``mdp.action_mask[s, a]`` False) is infeasible in the DiscreteDP: R[s, a] = −inf
    in the dense form, the pair (s, a) left out of the pair form.
    Raises ValueError for a finite-horizon MDP (DiscreteDP's finite horizon is backward induction on
    a stationary problem; convert stage by stage instead) or an unknown form.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if mdp.horizon is not None:
        raise ValueError(f"to_discrete_dp needs a discounted MDP (horizon=None), got horizon={mdp.horizon}")
    DiscreteDP = _ddp_class()
    S, A = mdp.num_states, mdp.num_actions
    mask = mdp.action_mask
    if form == "dense":
        R = np.array(mdp.r, dtype=np.float64)
        if mask is not None:
            R[~mask] = -np.inf
        return DiscreteDP(R, np.array(mdp.dense_P(), dtype=np.float64), mdp.gamma)
    L = np.arange(S * A) if mask is None else np.flatnonzero(mask.ravel())
    Q = mdp.transition_matrix()
    if mask is not None:
        Q = Q[L]
    Q = Q.tocsr(copy=True) if sp.issparse(Q) else np.array(Q, dtype=np.float64)
    return DiscreteDP(mdp.r.ravel()[L].astype(np.float64), Q, mdp.gamma, L // A, L % A)


def from_discrete_dp(ddp, fill: str = "mask", mu0: np.ndarray | None = None, name: str = "") -> TabularMDP:
    """The TabularMDP of a ``DiscreteDP`` (either input format); γ = ddp.beta < 1 required.

    Infeasible actions — R[s, a] = −inf in the dense form, a pair missing from (s_indices, a_indices)
    in the pair form (listed in any order) — are handled by ``fill``:

    * ``"mask"`` (default): ``action_mask[s, a] = False`` (shape (S, A)); the unused P row there copies
      a feasible action of the state and r = 0. V*, the policies and ``to_discrete_dp`` round-trip.
    * ``"duplicate"``: no mask; the action copies a feasible action of the same state (P row and r),
      which leaves V* and the optimal policies' values unchanged.
    * ``"raise"``: ValueError naming the state and action.

    A sparse Q stays sparse. A is ``R.shape[1]`` (dense) or ``max(a_indices) + 1`` (pairs).
    Raises ValueError for β ∉ [0, 1), an unknown ``fill``, a state without any feasible action, or an
    infeasible action with ``fill="raise"`` (each naming the state).
    """
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    gamma = float(ddp.beta)
    if not (0.0 <= gamma < 1.0):
        raise ValueError(f"ddp.beta must lie in [0, 1) for a discounted TabularMDP, got {ddp.beta!r}")
    S = int(ddp.num_states)
    if getattr(ddp, "_sa_pair", False):
        s_idx, a_idx = np.asarray(ddp.s_indices), np.asarray(ddp.a_indices)
        A = int(a_idx.max()) + 1
        pos = np.full((S, A), -1, dtype=np.int64)
        pos[s_idx, a_idx] = np.arange(s_idx.shape[0])
        R_pairs = np.asarray(ddp.R, dtype=np.float64)
        Q_pairs = ddp.Q
    else:
        R = np.asarray(ddp.R, dtype=np.float64)
        A = R.shape[1]
        pos = np.where(np.isfinite(R), np.arange(S * A).reshape(S, A), -1)
        R_pairs = R.ravel()
        Q_pairs = np.asarray(ddp.Q, dtype=np.float64).reshape(S * A, S)
    missing = pos < 0
    masked = None
    if np.any(missing):
        s_bad, a_bad = (int(i) for i in np.argwhere(missing)[0])
        if fill == "raise":
            raise ValueError(f"ddp has no feasible action {a_bad} at state {s_bad} (fill='raise'); pass fill='mask' "
                             f"(an action mask) or fill='duplicate' (copy a feasible action there)")
        first = np.where(missing, np.iinfo(np.int64).max, pos).min(axis=1)
        if np.any(first == np.iinfo(np.int64).max):
            s_none = int(np.argmax(first == np.iinfo(np.int64).max))
            raise ValueError(f"ddp has no feasible action at all at state {s_none}")
        pos = np.where(missing, first[:, None], pos)
        masked = missing if fill == "mask" else None
    rows = pos.ravel()
    r = R_pairs[rows].reshape(S, A)
    if masked is not None:
        r = np.where(masked, 0.0, r)
    if sp.issparse(Q_pairs):
        P = sp.csr_matrix(Q_pairs)[rows]
    else:
        P = np.asarray(Q_pairs, dtype=np.float64)[rows].reshape(S, A, S)
    return TabularMDP(P, r, gamma=gamma, mu0=mu0, name=name or "quantecon.DiscreteDP",
                      action_mask=None if masked is None else ~masked)


#: The peer's names for the same converters.
to_quantecon = to_discrete_dp
from_quantecon = from_discrete_dp
