"""Converters to and from pymdptoolbox's arrays (optional extra ``interop``).

pymdptoolbox (``mdptoolbox.mdp``) takes the transitions action first, ``P[a, s, s']``: a dense
(A, S, S) array or a sequence (list, tuple, 1-d object array) of A matrices (S, S), each dense or
scipy sparse. Its rewards come in three layouts, all accepted here:

    R[s]            a reward per state:               r(s, a) = R[s]
    R[s, a]         a reward per state-action pair:   r(s, a) = R[s, a]      (dense or sparse)
    R[a, s, s']     a reward per transition:          r(s, a) = Σ_{s'} P[a, s, s'] R[a, s, s']
                    (a dense (A, S, S) array or a sequence of A (S, S) matrices)

and the discount in (0, 1] (1 only for its ``FiniteHorizon``). rlref's layout is state first,
``P[s, a, s']`` (or CSR rows s·A + a); the conversion is the transposition P_rlref[s, a, s'] =
P_toolbox[a, s, s'], and a sparse input stays sparse. ``to_mdptoolbox`` writes r(s, a) as R[s, a].

References: Chadès, Chapron, Cros, Garcia, Sabbadin (2014), "MDPtoolbox: a multi-platform toolbox to
solve stochastic dynamic programming problems", Ecography 37(9); the pymdptoolbox docstrings of
``mdptoolbox.mdp.MDP`` and ``mdptoolbox.util.check`` (the layouts above).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from rlref._checks import DIST_ATOL, as_float_array, check_distribution, check_finite
from rlref.mdp import TabularMDP

__all__ = ["MdptoolboxArrays", "from_mdptoolbox", "to_mdptoolbox"]


@dataclass(frozen=True)
class MdptoolboxArrays:
    """pymdptoolbox's inputs for one MDP; unpacks as ``(transitions, reward, discount)``.

    Attributes:
      transitions: ``P[a, s, s']`` as a dense (A, S, S) array, or a tuple of A CSR (S, S) matrices
        when the MDP is sparse.
      reward: ``R[s, a]`` = r(s, a), the expected reward (per-transition rewards are averaged: pymdptoolbox
        uses only the expectation).
      discount: γ.
      horizon: N for a finite-horizon MDP (pass it to ``FiniteHorizon(*arrays, N=arrays.horizon)``), else None.
    """

    transitions: Any
    reward: np.ndarray
    discount: float
    horizon: int | None = None

    def __iter__(self) -> Iterator[Any]:
        """``PolicyIteration(*to_mdptoolbox(mdp))``: yields transitions, reward, discount."""
        return iter((self.transitions, self.reward, self.discount))


def _is_sequence(x: Any) -> bool:
    if isinstance(x, (list, tuple)):
        return True
    return isinstance(x, np.ndarray) and x.dtype == object and x.ndim == 1


def _check_stochastic_sparse(name: str, M: sp.csr_matrix) -> None:
    if M.nnz and (not np.isfinite(M.data).all() or M.data.min() < 0):
        bad = int(np.flatnonzero(~np.isfinite(M.data) | (M.data < 0))[0])
        row = int(np.searchsorted(M.indptr, bad, side="right") - 1)
        raise ValueError(f"{name}[{row}, {int(M.indices[bad])}] = {float(M.data[bad])!r} is not a probability")
    sums = np.asarray(M.sum(axis=1)).ravel()
    off = np.flatnonzero(np.abs(sums - 1.0) > DIST_ATOL)
    if off.size:
        raise ValueError(f"{name}[{int(off[0])}, :] sums to {float(sums[off[0]])!r}, not 1")


def _transitions(P: Any) -> tuple[np.ndarray | sp.csr_matrix, int, int, list[Any]]:
    """(rlref P: dense (S, A, S) or CSR (S·A, S), S, A, the A per-action matrices) from pymdptoolbox's P."""
    if _is_sequence(P):
        mats = list(P)
        if not mats:
            raise ValueError("P must hold at least one action's (S, S) matrix, got an empty sequence")
        S = None
        for a, M in enumerate(mats):
            shape = M.shape if sp.issparse(M) else np.shape(M)
            if len(shape) != 2 or shape[0] != shape[1] or (S is not None and shape[0] != S):
                raise ValueError(f"P[{a}] must be a square (S, S) matrix{'' if S is None else f' with S = {S}'}, got shape {shape}")
            S = shape[0]
        if any(sp.issparse(M) for M in mats):
            csr = [sp.csr_matrix(M, dtype=np.float64) for M in mats]
            for a, M in enumerate(csr):
                _check_stochastic_sparse(f"P[{a}]", M)
            A = len(csr)
            stacked = sp.vstack(csr, format="csr")  # row a·S + s
            order = (np.arange(S)[:, None] + S * np.arange(A)[None, :]).ravel()  # rlref row s·A + a
            return sp.csr_matrix(stacked[order]), S, A, csr
        P = np.stack([as_float_array(f"P[{a}]", M, ndim=2) for a, M in enumerate(mats)])
    P = as_float_array("P", P, ndim=3)
    A, S, S2 = P.shape
    if S != S2:
        raise ValueError(f"P must have shape (A, S, S) (pymdptoolbox's action-first layout), got {P.shape}")
    check_distribution("P", P)
    return np.ascontiguousarray(P.transpose(1, 0, 2)), S, A, list(P)


def _expected_reward(R: Any, mats: list[Any], S: int, A: int) -> np.ndarray:
    """r[s, a] from pymdptoolbox's R[s], R[s, a] or R[a, s, s'] (see the module docstring)."""
    if _is_sequence(R):
        if len(R) != A:
            raise ValueError(f"R as a sequence of per-action (S, S) reward matrices needs A = {A} of them, got {len(R)}")
        r = np.empty((S, A))
        for a, (Ra, Pa) in enumerate(zip(R, mats, strict=True)):
            shape = Ra.shape if sp.issparse(Ra) else np.shape(Ra)
            if tuple(shape) != (S, S):
                raise ValueError(f"R[{a}] must have shape (S, S) = ({S}, {S}), got {tuple(shape)}")
            Ra = sp.csr_matrix(Ra, dtype=np.float64) if sp.issparse(Ra) else as_float_array(f"R[{a}]", Ra, ndim=2)
            check_finite(f"R[{a}]", Ra.data if sp.issparse(Ra) else Ra)
            Pa = Pa if sp.issparse(Pa) else sp.csr_matrix(Pa)
            r[:, a] = np.asarray(Pa.multiply(Ra).sum(axis=1)).ravel()
        return r
    R = as_float_array("R", R.toarray() if sp.issparse(R) else R, ndim=(1, 2, 3))
    check_finite("R", R)
    if R.shape == (S,):
        return np.repeat(R[:, None], A, axis=1)
    if R.shape == (S, A):
        return R
    if R.shape == (A, S, S):
        return np.stack([np.asarray((sp.csr_matrix(mats[a]) if not sp.issparse(mats[a]) else mats[a]).multiply(R[a]).sum(axis=1)).ravel()
                         for a in range(A)], axis=1)
    raise ValueError(f"R must have shape (S,) = ({S},), (S, A) = ({S}, {A}) or (A, S, S) = ({A}, {S}, {S}), got {R.shape}")


def from_mdptoolbox(
    P: Any,
    R: Any,
    discount: float,
    *,
    horizon: int | None = None,
    mu0: np.ndarray | None = None,
    name: str = "mdptoolbox",
) -> TabularMDP:
    """The TabularMDP of pymdptoolbox's (P[a, s, s'], R, discount).

    P_rlref[s, a, s'] = P[a, s, s'] (a sequence holding a sparse matrix gives a CSR TabularMDP);
    r(s, a) from R[s], R[s, a] or R[a, s, s'] as in the module docstring; γ = discount.
    horizon=N gives the finite-horizon problem of pymdptoolbox's ``FiniteHorizon(P, R, discount, N)``
    (discount ≤ 1); without it the problem is discounted and needs discount < 1.
    Raises ValueError naming the argument (and action, state) for a non-stochastic P, a shape
    mismatch, non-finite rewards, or discount = 1 without a horizon.
    """
    if horizon is None and float(discount) == 1.0:
        raise ValueError("discount=1 needs horizon=N (pymdptoolbox's FiniteHorizon); a discounted TabularMDP needs discount < 1")
    Pr, S, A, mats = _transitions(P)
    r = _expected_reward(R, mats, S, A)
    return TabularMDP(P=Pr, R=r, gamma=float(discount), horizon=horizon, mu0=mu0, name=name)


def to_mdptoolbox(mdp: TabularMDP, *, sparse: bool | None = None) -> MdptoolboxArrays:
    """pymdptoolbox's (P[a, s, s'], R[s, a], discount) for a stationary TabularMDP.

    P[a, s, s'] = P_rlref(s'|s, a): a dense (A, S, S) array, or (``sparse=True``, the default for a
    sparse MDP) a tuple of A CSR matrices, P[a] = rows a, A + a, 2A + a, ... of the CSR (S·A, S) form,
    never densified. R[s, a] = r(s, a). The terminal mask has no pymdptoolbox counterpart (terminal
    states stay absorbing with zero reward, which is all it means).
    Raises ValueError for a stage-dependent MDP (P[h] or r[h]) and for an MDP with an action mask
    (pymdptoolbox has none; writing the masked actions out would silently make them available:
    use :func:`rlref.interop.quantecon.to_quantecon`, which writes them as -inf rewards).
    """
    if mdp.action_mask is not None:
        raise ValueError("to_mdptoolbox: the MDP has an action_mask and pymdptoolbox has no action masks "
                         "(the masked actions would become available); use rlref.interop.to_quantecon instead")
    if mdp.is_stage_dependent:
        raise ValueError("to_mdptoolbox needs a stationary MDP: pymdptoolbox has no stage-dependent P[h] / r[h]")
    A = mdp.num_actions
    sparse = mdp.is_sparse if sparse is None else bool(sparse)
    if sparse:
        T = mdp.transition_matrix()
        T = T.tocsr() if sp.issparse(T) else sp.csr_matrix(T)
        transitions: Any = tuple(sp.csr_matrix(T[a::A]) for a in range(A))
    else:
        transitions = np.ascontiguousarray(mdp.dense_P().transpose(1, 0, 2))
    return MdptoolboxArrays(transitions=transitions, reward=np.array(mdp.r, dtype=np.float64), discount=float(mdp.gamma), horizon=mdp.horizon)
