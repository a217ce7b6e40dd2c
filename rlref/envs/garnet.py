"""Garnet random MDPs ("Generic Average Reward Non-stationary Environment Testbed").

Garnet(S, A, b): for every state-action pair (s, a), ``b`` distinct next states are drawn uniformly
without replacement from the S states, and P(·|s, a) puts the masses of a random partition of
[0, 1] on them (the gaps between b - 1 uniform cut points, i.e. Dirichlet(1, ..., 1); a general
Dirichlet(α, ..., α) is available through ``concentration``). Rewards r(s, a) are i.i.d.

References: Archibald, McKinnon, Thomas (1995), "On the generation of Markov decision processes",
J. Operational Research Society 46(3); Bhatnagar, Sutton, Ghavamzadeh, Lee (2009), "Natural
actor-critic algorithms", Automatica 45(11), §6 (the Garnet construction with branching factor b
and cut-point probabilities).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rlref._checks import as_generator, check_count, resolve_gamma
from rlref.mdp import TabularMDP

__all__ = ["garnet", "GARNET_SPARSE_THRESHOLD"]

#: ``sparse=None`` builds a CSR transition matrix from this many states on.
GARNET_SPARSE_THRESHOLD = 2000


def _distinct_successors(rng: np.random.Generator, n_rows: int, S: int, b: int) -> np.ndarray:
    """``nxt[i, :]``: b distinct states drawn uniformly without replacement, sorted; shape (n_rows, b).

    Small S: the b smallest of S i.i.d. uniform keys (an exactly uniform b-subset). Large S:
    i.i.d. draws with whole-row rejection of rows that repeat a state (also exactly uniform on
    b-subsets, since every ordered b-tuple of distinct states is equally likely).
    """
    if S <= 64 or b * b > S:
        keys = rng.random((n_rows, S))
        idx = np.argpartition(keys, b - 1, axis=1)[:, :b] if b < S else np.tile(np.arange(S), (n_rows, 1))
        return np.sort(idx, axis=1)
    nxt = np.sort(rng.integers(0, S, size=(n_rows, b)), axis=1)
    bad = np.flatnonzero(np.any(nxt[:, 1:] == nxt[:, :-1], axis=1))
    while bad.size:
        redraw = np.sort(rng.integers(0, S, size=(bad.size, b)), axis=1)
        nxt[bad] = redraw
        still = np.any(redraw[:, 1:] == redraw[:, :-1], axis=1)
        bad = bad[still]
    return nxt


def garnet(
    num_states: int,
    num_actions: int,
    branching: int,
    *,
    gamma: float | None = None,
    horizon: int | None = None,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    sparse: bool | None = None,
    reward: str = "uniform",
    concentration: float = 1.0,
    name: str | None = None,
) -> TabularMDP:
    """A Garnet random MDP.

    P(·|s, a) = Σ_{k<b} w_k δ_{s'_k}, with {s'_0, ..., s'_{b-1}} a uniform random b-subset of the
    states and w ~ Dirichlet(α, ..., α) (α = ``concentration``; α = 1 is the uniform cut-point
    partition of [0, 1] of Bhatnagar et al.). Every row has exactly b non-zero entries (w > 0
    almost surely). Rewards, i.i.d. per (s, a):

    * ``reward="uniform"``: r(s, a) ~ U[0, 1];
    * ``reward="normal"``:  r(s, a) ~ N(0, 1);
    * ``reward="state"``:   r(s, a) = u(s) with u(s) ~ U[0, 1] (action-independent rewards).

    ``gamma`` defaults to 0.9 (discounted), or 1 with ``horizon=H``. mu0 is uniform.
    Shapes: dense ``P[s, a, s']`` or CSR ``(S·A, S)`` (row s·A + a), ``r[s, a]``.
    ``sparse=None`` picks CSR iff S >= 2000. The build is vectorized: O(S·A·b) time and memory
    for the sparse form (S = 10^5, A = 10, b = 5 takes about a second).

    Randomness: ``rng`` (a numpy Generator) or ``seed``; the same seed gives the same MDP.
    Raises ValueError if a count is not a positive integer, branching > num_states, the reward
    kind is unknown or concentration <= 0.

    References: Archibald, McKinnon, Thomas (1995); Bhatnagar et al. (2009), Automatica 45(11), §6.
    """
    S = check_count("num_states", num_states)
    A = check_count("num_actions", num_actions)
    b = check_count("branching", branching)
    if b > S:
        raise ValueError(f"branching must be <= num_states = {S}, got branching={branching!r}")
    if reward not in ("uniform", "normal", "state"):
        raise ValueError(f"reward must be 'uniform', 'normal' or 'state', got {reward!r}")
    try:
        alpha = float(concentration)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"concentration must be a positive number, got {concentration!r}") from exc
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"concentration must be > 0 and finite, got {concentration!r}")
    gen = as_generator(rng, seed)

    n_rows = S * A
    nxt = _distinct_successors(gen, n_rows, S, b)
    w = gen.gamma(alpha, size=(n_rows, b))
    w_sum = w.sum(axis=1, keepdims=True)
    tiny = w_sum[:, 0] <= 0  # only reachable for tiny alpha: fall back to a point mass
    if np.any(tiny):
        w[tiny] = 0.0
        w[tiny, 0] = 1.0
        w_sum[tiny] = 1.0
    w /= w_sum

    if reward == "uniform":
        r = gen.random((S, A))
    elif reward == "normal":
        r = gen.standard_normal((S, A))
    else:
        r = np.repeat(gen.random(S)[:, None], A, axis=1)

    use_sparse = S >= GARNET_SPARSE_THRESHOLD if sparse is None else bool(sparse)
    if use_sparse:
        indptr = np.arange(0, n_rows * b + 1, b, dtype=np.int64)
        P = sp.csr_matrix((w.ravel(), nxt.ravel(), indptr), shape=(n_rows, S))
    else:
        P = np.zeros((n_rows, S))
        np.put_along_axis(P, nxt, w, axis=1)
        P = P.reshape(S, A, S)
    label = name if name is not None else f"garnet(S={S}, A={A}, b={b})"
    return TabularMDP(P=P, R=r, gamma=resolve_gamma(gamma, horizon), horizon=horizon, name=label)
