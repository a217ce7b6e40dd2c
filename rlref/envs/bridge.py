"""Deterministic MDPs in the BRIDGE format.

BRIDGE (Laidlaw, Russell, Dragan 2023) stores each of its 155 deterministic MDPs as integer
``transitions[s, a]`` (the next state, or -1 when the episode ends) and ``rewards[s, a]``, with
state 0 the initial state and a finite horizon. The loader of the authors' code appends one
absorbing "done" state at index S (= ``transitions.shape[0]``) and maps -1 to it; we do the same.

References: Laidlaw, Russell, Dragan (2023), "Bridging RL Theory and Practice with the Effective
Horizon", NeurIPS, §5 and Appendix (the BRIDGE dataset); ``effective_horizon/mdp_utils.py``
(``load_mdp``) in the authors' repository cassidylaidlaw/effective-horizon.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from rlref._checks import as_float_array, check_finite
from rlref.mdp import TabularMDP

__all__ = ["from_deterministic", "load_bridge_npz", "with_done_state", "BRIDGE_SPARSE_THRESHOLD"]

#: ``sparse=None`` stores P as CSR from this many states on.
BRIDGE_SPARSE_THRESHOLD = 2000


def with_done_state(transitions: np.ndarray, rewards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checked BRIDGE arrays with the absorbing done state S appended (the loader's convention, module docstring):

        nxt[s, a] = transitions[s, a], with −1 replaced by S;   nxt[S, a] = S;   r[s, a] = rewards[s, a];   r[S, a] = 0.

    Shapes: transitions[S, a] (integers in [−1, S); integral floats accepted), rewards[S, A] -> nxt[S + 1, A] (int64),
    r[S + 1, A] (float64). Raises ValueError if transitions is not a non-empty 2-d integer array with entries in
    [−1, S), or rewards has another shape or a non-finite entry (named by index).
    References: Laidlaw, Russell, Dragan (2023), the BRIDGE dataset; ``load_mdp`` in cassidylaidlaw/effective-horizon.
    """
    T = np.asarray(transitions)
    if T.ndim != 2 or T.shape[0] == 0 or T.shape[1] == 0:
        raise ValueError(f"transitions must be a non-empty 2-d array transitions[s, a], got shape {T.shape}")
    if not np.issubdtype(T.dtype, np.integer):
        if np.issubdtype(T.dtype, np.floating) and np.all(np.isfinite(T)) and np.all(T == np.round(T)):
            T = T.astype(np.int64)
        else:
            raise ValueError(f"transitions must hold integers (next state or -1), got dtype {T.dtype}")
    S, A = T.shape
    bad = (T < -1) | (T >= S)
    if np.any(bad):
        s, a = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"transitions[{s}, {a}] = {int(T[s, a])} must lie in [-1, {S}) (-1 = terminal)")
    R = as_float_array("rewards", rewards, ndim=2)
    if R.shape != (S, A):
        raise ValueError(f"rewards must have the shape of transitions {(S, A)}, got {R.shape}")
    check_finite("rewards", R)
    nxt = np.concatenate([np.where(T == -1, S, T), np.full((1, A), S)], axis=0).astype(np.int64)
    return nxt, np.concatenate([R, np.zeros((1, A))], axis=0)


def from_deterministic(
    transitions: np.ndarray,
    rewards: np.ndarray,
    *,
    gamma: float | None = None,
    horizon: int | None = None,
    mu0: np.ndarray | None = None,
    sparse: bool | None = None,
    name: str = "deterministic",
) -> TabularMDP:
    """A TabularMDP from a deterministic transition table (BRIDGE format).

    Input: ``transitions[s, a]`` ∈ {-1, 0, ..., S-1} (integers; -1 = episode ends),
    ``rewards[s, a]``. Output: S + 1 states; state S is an added absorbing terminal ("done")
    state with zero reward, always present (as in the BRIDGE loader), marked in ``mdp.terminal``:

        P(s'|s, a) = 1[s' = transitions[s, a]]   (with -1 replaced by S),   P(S|S, a) = 1,
        r(s, a) = rewards[s, a],   r(S, a) = 0.

    Give ``horizon=H`` for the episodic MDP (gamma defaults to 1; BRIDGE MDPs are episodic) or
    ``gamma`` in [0, 1) for a discounted one; exactly as :class:`~rlref.TabularMDP`. ``mu0`` is over
    the S original states and defaults to a point mass on state 0 (BRIDGE's initial state); the
    done state gets initial mass 0. ``sparse=None`` stores P as CSR iff S + 1 >= 2000.

    Raises ValueError if transitions are not integers in [-1, S), shapes differ, rewards are not
    finite, or neither gamma nor horizon is given.
    References: Laidlaw, Russell, Dragan (2023), the BRIDGE dataset.
    """
    nxt, r = with_done_state(transitions, rewards)
    if gamma is None and horizon is None:
        raise ValueError("give horizon=H (episodic, as in BRIDGE) or gamma in [0, 1) (discounted)")
    n, A = nxt.shape
    S = done = n - 1
    use_sparse = n >= BRIDGE_SPARSE_THRESHOLD if sparse is None else bool(sparse)
    if use_sparse:
        P = sp.csr_matrix((np.ones(n * A), nxt.ravel(), np.arange(n * A + 1)), shape=(n * A, n))
    else:
        P = np.zeros((n, A, n))
        np.put_along_axis(P, nxt[:, :, None], 1.0, axis=2)
    if mu0 is None:
        m = np.zeros(n)
        m[0] = 1.0
    else:
        m0 = as_float_array("mu0", mu0, ndim=1)
        if m0.shape != (S,):
            raise ValueError(f"mu0 must have shape (S,) = ({S},) over the original states, got {m0.shape}")
        m = np.append(m0, 0.0)
    terminal = np.zeros(n, dtype=bool)
    terminal[done] = True
    return TabularMDP(P=P, R=r, gamma=gamma, horizon=horizon, mu0=m, terminal=terminal, name=name)


def load_bridge_npz(path: str | os.PathLike, *, horizon: int, gamma: float | None = None, **kwargs) -> TabularMDP:
    """Load a BRIDGE ``.npz`` file (arrays ``transitions`` and ``rewards``) with :func:`from_deterministic`.

    The horizon is not stored in the file; BRIDGE lists it per MDP. Raises ValueError if an
    array is missing.
    References: Laidlaw, Russell, Dragan (2023), the BRIDGE dataset (``load_mdp`` in
    cassidylaidlaw/effective-horizon).
    """
    with np.load(path) as data:
        missing = {"transitions", "rewards"} - set(data.files)
        if missing:
            raise ValueError(f"{os.fspath(path)!r} lacks the arrays {sorted(missing)} of the BRIDGE format")
        transitions, rewards = data["transitions"], data["rewards"]
    name = kwargs.pop("name", os.path.splitext(os.path.basename(os.fspath(path)))[0])
    return from_deterministic(transitions, rewards, horizon=horizon, gamma=gamma, name=name, **kwargs)
