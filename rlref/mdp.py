"""Finite Markov decision processes: the array conventions every other module builds on.

Shapes (named, as everywhere in rlref):

* discounted:      ``P[s, a, s']``, ``R[s, a]`` or ``R[s, a, s']``, ``gamma`` in [0, 1);
* finite horizon:  ``horizon=H``; transitions and rewards may be stationary (as above) or
  stage-dependent, ``P[h, s, a, s']`` and ``R[h, s, a]`` / ``R[h, s, a, s']``;
* sparse:          ``P`` a ``scipy.sparse`` matrix of shape ``(S·A, S)`` whose row ``s·A + a`` is
  ``P(·|s, a)`` (stationary only). Nothing is made dense behind the user's back.

The expected one-step reward ``r[s, a] = Σ_{s'} P(s'|s,a) R(s,a,s')`` is computed once and stored
(``mdp.r``; ``r[h, s, a]`` for stage-dependent finite-horizon MDPs). All arrays are float64 and
read-only after construction.

Action masks: ``action_mask[s, a]`` (bool, the same at every stage) marks the actions available in
state s; ``None`` (the default) makes every action available. A masked action is excluded from
every max, argmax, greedy step, softmax and tilt: the Bellman backups treat Q(s, a) as −∞ there
(so ``q`` arrays returned by the solvers hold −∞ at masked pairs), every policy the library
returns puts probability exactly 0 on it, and a user policy that puts mass on it is refused. The
masked MDP is the MDP with those actions removed (A(s) = {a : action_mask[s, a]}, Puterman's
state-dependent action sets); P and R must still be given (any valid row) at masked pairs, and
their values there are never used by a solver.

References: Puterman (1994), "Markov Decision Processes", ch. 2 and 4 (finite horizon) and 6
(discounted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from rlref._checks import (
    DIST_ATOL,
    as_distribution,
    as_float_array,
    check_count,
    check_finite,
    check_gamma,
    dist_atol,
    is_low_precision,
)

__all__ = ["TabularMDP"]


def _readonly(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float64, copy=True)
    x.setflags(write=False)
    return x


def _validate_sparse_rows(P: sp.csr_matrix, S: int, A: int, atol: float = DIST_ATOL) -> None:
    data = P.data
    check_finite("P (sparse data)", data)
    if np.any(data < 0):
        k = int(np.argmax(data < 0))
        row = int(np.searchsorted(P.indptr, k, side="right") - 1)
        s, a = divmod(row, A)
        raise ValueError(f"P must be non-negative; P[s={s}, a={a}, s'={int(P.indices[k])}] = {float(data[k])!r}")
    sums = np.asarray(P.sum(axis=1)).ravel()
    bad = np.abs(sums - 1.0) > atol
    if np.any(bad):
        row = int(np.argmax(bad))
        s, a = divmod(row, A)
        raise ValueError(
            f"P(·|s={s}, a={a}) must sum to 1 within {atol:g} (row {row} of the (S·A, S) sparse matrix); it sums to {float(sums[row])!r}"
        )


def _check_action_mask(mask: Any, S: int, A: int) -> np.ndarray:
    """A read-only bool copy of ``mask[s, a]``; ValueError naming the shape, dtype, bad entry or a
    state without any available action."""
    m = np.asarray(mask)
    if m.dtype != bool:
        if not (np.issubdtype(m.dtype, np.integer) or np.issubdtype(m.dtype, np.floating)):
            raise ValueError(f"action_mask must be a boolean array of shape (S, A) = ({S}, {A}), got dtype {m.dtype}")
        bad = ~((m == 0) | (m == 1))
        if np.any(bad):
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"action_mask must be boolean (or 0/1); action_mask[{', '.join(map(str, idx))}] = {m[idx]!r}")
    if m.shape != (S, A):
        raise ValueError(f"action_mask must have shape (S, A) = ({S}, {A}), got {m.shape}")
    m = m.astype(bool, copy=True)
    empty = ~m.any(axis=1)
    if np.any(empty):
        raise ValueError(f"action_mask leaves state {int(np.argmax(empty))} without any available action "
                         f"(every state needs at least one True in its row)")
    m.setflags(write=False)
    return m


@dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP, discounted or finite-horizon.

    Args:
      P: transitions. Dense ``P[s, a, s']`` (or ``P[h, s, a, s']`` for a stage-dependent finite
        horizon), or a scipy.sparse matrix of shape ``(S·A, S)`` with row ``s·A + a`` = P(·|s,a).
      R: rewards ``R[s, a]``, ``R[s, a, s']``, ``R[h, s, a]`` or ``R[h, s, a, s']``.
      gamma: discount in [0, 1) for a discounted MDP; for a finite horizon it defaults to 1 and
        may lie in [0, 1].
      horizon: ``H`` for an episodic MDP with stages ``h = 0, ..., H-1``; ``None`` for discounted.
      mu0: initial state distribution ``mu0[s]``; uniform when omitted.
      terminal: optional boolean mask ``terminal[s]`` of absorbing terminal states. A terminal
        state must loop to itself with probability 1 and earn zero reward under every action.
      name: a label used in reprs and figures.
      reward_axes: the layout of ``R`` — ``"sa"``, ``"sas"``, ``"hsa"`` or ``"hsas"``. Inferred from the
        shape; required only when it is ambiguous (a 3-d R with H = S = A).
      action_mask: optional boolean array ``action_mask[s, a]`` of shape (S, A): True where action a
        is available in state s (the same at every stage h). ``None`` = every action available.
        Integer 0/1 arrays are accepted. Every state needs at least one available action. Stored
        read-only (bool); the rows of P and R at masked pairs must still be valid but are unused.

    Precision: every array is stored in float64. A float32/float16 ``P`` or ``mu0`` (normalized in
    its own precision, so a row may sum to 1 ± 1e-7) is accepted at a dtype-aware tolerance
    (row length · eps of its dtype) and renormalized in float64; float64 input is held to 1e-8.

    Raises:
      ValueError on any malformed input, naming the argument, index and value (complex arrays
      included: their imaginary part is never dropped silently).
    """

    P: Any
    R: Any
    gamma: float | None = None
    horizon: int | None = None
    mu0: Any = None
    terminal: Any = None
    name: str = "mdp"
    reward_axes: str | None = None
    action_mask: Any = None
    r: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        # ----- horizon / gamma -----
        if self.horizon is None:
            if self.gamma is None:
                raise ValueError("gamma is required for a discounted MDP (or give horizon=H for a finite horizon)")
            set_(self, "gamma", check_gamma(self.gamma))
        else:
            set_(self, "horizon", check_count("horizon", self.horizon))
            set_(self, "gamma", check_gamma(1.0 if self.gamma is None else self.gamma, allow_one=True))
        H = self.horizon

        # ----- transitions -----
        if sp.issparse(self.P):
            if np.iscomplexobj(self.P):
                raise ValueError(f"P must be real, got a complex sparse matrix (dtype {self.P.dtype})")
            low = is_low_precision(self.P.dtype)
            P = sp.csr_matrix(self.P, dtype=np.float64)
            P.sum_duplicates()
            S = P.shape[1]
            if S == 0 or P.shape[0] % S != 0:
                raise ValueError(f"sparse P must have shape (S·A, S); got {P.shape}, which is not a multiple of S={S}")
            A = P.shape[0] // S
            if A == 0:
                raise ValueError(f"sparse P must have at least one action; got shape {P.shape}")
            _validate_sparse_rows(P, S, A, dist_atol(self.P.dtype, S) if low else DIST_ATOL)
            if low:  # renormalize each row in float64 (rows are non-empty: they sum to ~1)
                P = sp.csr_matrix(sp.diags(1.0 / np.asarray(P.sum(axis=1)).ravel()) @ P)
            P.data.setflags(write=False)
            P.indices.setflags(write=False)
            P.indptr.setflags(write=False)
            set_(self, "P", P)
            stage_P = False
        else:
            P = as_float_array("P", self.P, ndim=(3, 4))
            if P.ndim == 4:
                if H is None:
                    raise ValueError(f"a 4-d P[h, s, a, s'] needs horizon=H; got shape {P.shape} and no horizon")
                if P.shape[0] != H:
                    raise ValueError(f"P[h, s, a, s'] has {P.shape[0]} stages but horizon={H}")
            S, A = P.shape[-3], P.shape[-2]
            if P.shape[-1] != S:
                raise ValueError(f"P must have shape (S, A, S) with matching state axes; got {P.shape}")
            if S == 0 or A == 0:
                raise ValueError(f"P must have at least one state and one action; got shape {P.shape}")
            P = as_distribution("P", self.P)
            set_(self, "P", _readonly(P))
            stage_P = P.ndim == 4

        # ----- rewards -----
        R = self.R
        if sp.issparse(R):
            if np.iscomplexobj(R):
                raise ValueError(f"R must be real, got a complex sparse matrix (dtype {R.dtype})")
            R = sp.csr_matrix(R, dtype=np.float64)
            if R.shape != (S * A, S):
                raise ValueError(f"sparse R must have shape (S·A, S) = {(S * A, S)}, got {R.shape}")
            check_finite("R (sparse data)", R.data)
            r = self._expected_reward_sparse(R)
            set_(self, "R", R)
        else:
            R = as_float_array("R", R, ndim=(2, 3, 4))
            check_finite("R", R)
            allowed = {(S, A), (S, A, S)}
            if H is not None:
                allowed |= {(H, S, A), (H, S, A, S)}
            if R.shape not in allowed:
                raise ValueError(f"R must have shape in {sorted(allowed)} (S={S}, A={A}, H={H}); got {R.shape}")
            layouts = {"sa": (S, A), "sas": (S, A, S)}
            if H is not None:
                layouts |= {"hsa": (H, S, A), "hsas": (H, S, A, S)}
            if self.reward_axes is not None:
                if self.reward_axes not in layouts:
                    raise ValueError(f"reward_axes must be one of {sorted(layouts)}, got {self.reward_axes!r}")
                if layouts[self.reward_axes] != R.shape:
                    raise ValueError(f"reward_axes={self.reward_axes!r} needs R of shape {layouts[self.reward_axes]}, got {R.shape}")
            elif R.ndim == 3 and H is not None and (H, S, A) == (S, A, S):
                raise ValueError(f"R of shape {R.shape} is ambiguous when H = S = A = {S}: pass reward_axes='sas' or 'hsa'")
            else:
                object.__setattr__(self, "reward_axes", next(k for k, v in layouts.items() if v == R.shape))
            set_(self, "R", _readonly(R))
            r = self._expected_reward_dense(R, S, A)
        set_(self, "r", _readonly(r))
        set_(self, "_stage_dependent", stage_P or r.ndim == 3)

        # ----- initial distribution -----
        if self.mu0 is None:
            mu0 = np.full(S, 1.0 / S)
        else:
            mu0 = as_float_array("mu0", self.mu0, ndim=1)
            if mu0.shape != (S,):
                raise ValueError(f"mu0 must have shape (S,) = ({S},), got {mu0.shape}")
            mu0 = as_distribution("mu0", self.mu0)
        set_(self, "mu0", _readonly(mu0))

        # ----- terminal states -----
        if self.terminal is not None:
            term = np.asarray(self.terminal)
            if term.dtype != bool:
                raise ValueError(f"terminal must be a boolean mask of shape (S,), got dtype {term.dtype}")
            if term.shape != (S,):
                raise ValueError(f"terminal must have shape (S,) = ({S},), got {term.shape}")
            # vectorized over terminal states (no per-state loop, no dense rows of a sparse P)
            ts = np.flatnonzero(term)
            acts = np.arange(A)
            if ts.size == 0:
                p_stay = np.ones((0, A))
            elif sp.issparse(self.P):
                rows = (ts[:, None] * A + acts[None, :]).ravel()
                p_stay = np.asarray(self.P[rows, np.repeat(ts, A)]).reshape(ts.size, A)
            elif stage_P:
                p_stay = self.P[:, ts[:, None], acts[None, :], ts[:, None]].min(axis=0)
            else:
                p_stay = self.P[ts[:, None], acts[None, :], ts[:, None]]
            r_abs = np.abs(self.r[..., ts, :])
            r_abs = r_abs.max(axis=0) if r_abs.ndim == 3 else r_abs
            bad_any = (np.abs(p_stay - 1.0) > DIST_ATOL) | (r_abs != 0.0)
            for k in np.flatnonzero(bad_any.any(axis=1))[:1]:  # report the first bad (s, a)
                s = int(ts[k])
                for a in np.flatnonzero(np.abs(p_stay[k] - 1.0) > DIST_ATOL)[:1]:
                    raise ValueError(f"terminal state {s} must be absorbing; P(s'={s}|s={s}, a={a}) = {float(p_stay[k, a])!r}")
                for a in np.flatnonzero(r_abs[k] != 0.0)[:1]:
                    raise ValueError(f"terminal state {s} must earn zero reward; r[s={s}, a={a}] = {float(r_abs[k, a])!r}")
            term = term.copy()
            term.setflags(write=False)
            set_(self, "terminal", term)

        # ----- action mask -----
        if self.action_mask is not None:
            set_(self, "action_mask", _check_action_mask(self.action_mask, S, A))

    # ------------------------------------------------------------------ construction helpers
    def _expected_reward_dense(self, R: np.ndarray, S: int, A: int) -> np.ndarray:
        H = self.horizon
        if self.reward_axes in ("sa", "hsa"):
            return R
        # R[..., s, a, s'] -> r[..., s, a] = Σ_s' P(s'|s,a) R(s,a,s')
        if sp.issparse(self.P):
            if R.ndim == 4:
                return np.stack([np.asarray(self.P.multiply(R[h].reshape(S * A, S)).sum(axis=1)).reshape(S, A) for h in range(H)])
            return np.asarray(self.P.multiply(R.reshape(S * A, S)).sum(axis=1)).reshape(S, A)
        return np.einsum("...sat,...sat->...sa", np.broadcast_to(self.P, R.shape) if self.P.ndim < R.ndim else self.P, R)

    def _expected_reward_sparse(self, R: sp.csr_matrix) -> np.ndarray:
        S, A = self.num_states, self.num_actions
        if not sp.issparse(self.P) and self.P.ndim == 4:
            raise ValueError("a sparse R cannot be combined with a stage-dependent P[h, s, a, s']")
        P = self.P if sp.issparse(self.P) else sp.csr_matrix(self.P.reshape(S * A, S))
        return np.asarray(P.multiply(R).sum(axis=1)).reshape(S, A)

    # ------------------------------------------------------------------ shape properties
    @property
    def num_states(self) -> int:
        """S, the number of states."""
        return int(self.P.shape[1] if sp.issparse(self.P) else self.P.shape[-3] if self.P.ndim == 4 else self.P.shape[0])

    @property
    def num_actions(self) -> int:
        """A, the number of actions."""
        if sp.issparse(self.P):
            return int(self.P.shape[0] // self.P.shape[1])
        return int(self.P.shape[-2])

    S = num_states
    A = num_actions

    @property
    def is_sparse(self) -> bool:
        """Whether transitions are stored as a scipy.sparse (S·A, S) matrix."""
        return sp.issparse(self.P)

    @property
    def is_finite_horizon(self) -> bool:
        """True for an episodic MDP with ``horizon=H``."""
        return self.horizon is not None

    @property
    def is_stage_dependent(self) -> bool:
        """True when ``P`` or ``r`` has a leading stage axis ``h``."""
        return bool(self._stage_dependent)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ array access
    def transition_matrix(self, h: int | None = None) -> sp.csr_matrix | np.ndarray:
        """The (S·A, S) transition matrix, row ``s·A + a`` = P(·|s, a) (of stage ``h`` if staged).

        Sparse MDPs return their CSR matrix (no copy); dense ones a reshaped read-only view.
        """
        S, A = self.num_states, self.num_actions
        if sp.issparse(self.P):
            return self.P
        P = self.P[self._stage(h)] if self.P.ndim == 4 else self.P
        return P.reshape(S * A, S)

    def dense_P(self) -> np.ndarray:
        """``P[s, a, s']`` (or ``P[h, s, a, s']``) as a dense array. Costs S²A memory if sparse."""
        if sp.issparse(self.P):
            S, A = self.num_states, self.num_actions
            return self.P.toarray().reshape(S, A, S)
        return self.P

    def reward(self, h: int | None = None) -> np.ndarray:
        """Expected reward ``r[s, a]`` (of stage ``h`` when rewards are stage-dependent)."""
        return self.r[self._stage(h)] if self.r.ndim == 3 else self.r

    def _stage(self, h: int | None) -> int:
        if h is None:
            if self.is_stage_dependent:
                raise ValueError("this MDP is stage-dependent: pass the stage h")
            return 0
        if self.horizon is None or isinstance(h, (bool, np.bool_)) or not isinstance(h, (int, np.integer)) or not (0 <= h < self.horizon):
            raise ValueError(f"stage h must lie in [0, {self.horizon}) (an integer), got {h!r}")
        return int(h)

    def expected_next(self, v: np.ndarray, h: int | None = None) -> np.ndarray:
        """``(P v)[s, a] = Σ_{s'} P(s'|s, a) v(s')`` for ``v[s']``; returns shape (S, A).

        Uses a sparse mat-vec when P is sparse. ``h`` selects the stage of a staged P; it is
        required then (ValueError without it, rather than silently using stage 0).
        References: Puterman (1994), eq. (6.2.2).
        """
        S, A = self.num_states, self.num_actions
        v = as_float_array("v", v)
        if v.shape != (S,):
            raise ValueError(f"v must have shape (S,) = ({S},), got {v.shape}")
        if sp.issparse(self.P):
            return (self.P @ v).reshape(S, A)
        P = self.P[self._stage(h)] if self.P.ndim == 4 else self.P
        return P @ v

    def policy_transition(self, pi: np.ndarray, h: int | None = None) -> sp.csr_matrix | np.ndarray:
        """State-to-state matrix under ``pi[s, a]``: ``P_π(s, t) = Σ_a π(a|s) P(t|s, a)``.

        Sparse in, sparse out. ``h`` selects the stage of a staged P and is required then.
        Shapes: pi[s, a] -> P_π[s, t]. References: Puterman (1994), §6.1.
        """
        S, A = self.num_states, self.num_actions
        pi = as_float_array("pi", pi)
        if pi.shape != (S, A):
            raise ValueError(f"pi must have shape (S, A) = ({S}, {A}) here, got {pi.shape}")
        if sp.issparse(self.P):
            # block-row averaging: (S, S·A) @ (S·A, S)
            rows = np.repeat(np.arange(S), A)
            cols = np.arange(S * A)
            M = sp.csr_matrix((pi.ravel(), (rows, cols)), shape=(S, S * A))
            return (M @ self.P).tocsr()
        P = self.P[self._stage(h)] if self.P.ndim == 4 else self.P
        return np.einsum("sa,sat->st", pi, P)

    def __repr__(self) -> str:
        kind = f"horizon={self.horizon}" if self.horizon is not None else f"gamma={self.gamma}"
        store = "sparse" if self.is_sparse else "dense"
        masked = "" if self.action_mask is None else f", {int((~self.action_mask).sum())} masked (s, a)"
        return f"TabularMDP(name={self.name!r}, S={self.num_states}, A={self.num_actions}, {kind}, {store}{masked})"
