"""OTA: option-aware temporally abstracted goal-conditioned values, tabular and exact.

Ahn, Choi, Han, Moon (2025), "Option-aware Temporally Abstracted Value for Offline
Goal-Conditioned Reinforcement Learning" (arXiv 2505.12737, NeurIPS 2025). HIQL (Park et al.
2023) learns its high-level value V(s, g) from offline trajectories with the action-free
expectile TD loss

    L(V) = E_{(s, s') ~ D, g} [ L²_τ( r(s, g) + γ V̄(s', g) − V(s, g) ) ],   L²_τ(u) = |τ − 1{u < 0}| u²,

with r(s, g) = 0 at the goal and −1 elsewhere. OTA makes it option-aware: the next state s' is
replaced by s^Ω, the state in which an option of horizon n started at s terminates — the state
n steps later on the same trajectory, or the goal if the trajectory reaches it first:

    L(V^OTA, n) = E_{(s, s^Ω) ~ D, g} [ L²_τ( r(s^Ω, g) + γ V̄^OTA(s^Ω, g) − V^OTA(s, g) ) ].

One high-level step is then n primitive steps, so a goal at distance d* is ⌈d*/n⌉ value backups
away instead of d*: the effective horizon contracts by n.

Tabular and exact (derived here). With one table entry per (s, g), the minimizer of the loss at
a fixed target V̄ is, for each (s, g), the τ-expectile of the empirical distribution of the
targets −1 + γ V̄(s^Ω, g) over the dataset's options from s (V(g, g) = 0). That map is monotone
and commutes with constants (expectiles are translation-equivariant), so it is a γ-contraction;
its fixed point is computed by the library's one iteration driver (``rlref.solve.iterate``)
with :class:`ExpectileBackup` on a "pair MDP" whose states are the (s, g) pairs and whose
actions are the distinct option outcomes s^Ω observed from s, weighted by their frequencies.

Closed form (derived here): on shortest-path data (every option goes min(n, d*) steps towards
the goal) the fixed point is V_n(s, g) = −(1 − γ^{⌈d*(s,g)/n⌉})/(1 − γ) for every τ ∈ (0, 1).
The high-level advantage of a subgoal k steps closer, V_n(s_k, g) − V_n(s, g), then has size
≈ γ^{⌈(d*−k)/n⌉}·(1 − γ^{k/n}) / (1 − γ): for a fixed estimation error ε in V the advantage sign
is wrong once ε exceeds it, which happens at distances n times larger with options of horizon n.

References: Ahn et al. (2025), arXiv 2505.12737, §4 (the OTA value objective, eq. for
L(V^OTA, n)); Park et al. (2023), "HIQL: Offline Goal-Conditioned RL with Latent States as
Actions", §4 (action-free IQL value learning, r = −1 until the goal); Kostrikov et al. (2022),
"Offline RL with Implicit Q-Learning", eq. (5) (the expectile loss).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rlref._checks import check_count, check_gamma, check_positive
from rlref.mdp import TabularMDP
from rlref.solve import iterate

__all__ = [
    "expectile",
    "ExpectileBackup",
    "option_outcomes",
    "OTAValue",
    "ota_values",
    "shortest_path_option_values",
    "advantage_sign_accuracy",
    "advantage_sign_probability",
    "effective_horizon_steps",
]


def _check_tau(tau: float) -> float:
    t = check_positive("tau", tau)
    if not t < 1.0:
        raise ValueError(f"tau must lie in (0, 1) (the expectile level), got {tau!r}")
    return t


def _expectile(q: np.ndarray, w: np.ndarray, tau: float) -> np.ndarray:
    """Row-wise weighted τ-expectile, exact (no checks); rows of w sum to > 0."""
    order = np.argsort(q, axis=-1)
    qs = np.take_along_axis(q, order, axis=-1)
    ws = np.take_along_axis(w, order, axis=-1)
    L = np.cumsum(ws, axis=-1)
    LS = np.cumsum(ws * qs, axis=-1)
    W, S = L[..., -1:], LS[..., -1:]
    f = tau * ((S - LS) - qs * (W - L)) - (1.0 - tau) * (qs * L - LS)  # f(q_j), non-increasing in j
    j = np.argmax(f <= 1e-15 * (1.0 + np.abs(qs)) * W, axis=-1)[..., None]  # first sorted point with f <= 0
    jm = np.maximum(j - 1, 0)
    Lb = np.where(j > 0, np.take_along_axis(L, jm, axis=-1), 0.0)
    LSb = np.where(j > 0, np.take_along_axis(LS, jm, axis=-1), 0.0)
    num = tau * (S - LSb) + (1.0 - tau) * LSb
    den = tau * (W - Lb) + (1.0 - tau) * Lb
    e = num / den
    return np.where(j > 0, e, np.take_along_axis(qs, j, axis=-1))[..., 0]


def expectile(x: np.ndarray, tau: float, weights: np.ndarray | None = None) -> np.ndarray:
    """The τ-expectile over the last axis: the e with τ Σ w (x − e)_+ = (1 − τ) Σ w (e − x)_+.

    It minimizes Σ_i w_i |τ − 1{x_i < e}| (x_i − e)² (the expectile loss); τ = 1/2 is the weighted
    mean, τ → 1 the maximum over the support. Computed exactly (the root of a piecewise-linear
    monotone function, from sorted cumulative sums). Shapes: x[..., m], weights[..., m] ≥ 0 with
    a positive sum per row -> [...].

    References: Newey & Powell (1987), "Asymmetric least squares estimation and testing";
    Kostrikov et al. (2022), eq. (5).
    """
    t = _check_tau(tau)
    x = np.asarray(x, dtype=float)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have at least one entry on its last axis, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise ValueError(f"x must be finite, got x{list(idx)}={x[idx]!r}")
    w = np.ones_like(x) if weights is None else np.broadcast_to(np.asarray(weights, dtype=float), x.shape)
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"weights must be finite and >= 0, got weights{list(idx)}={w[idx]!r}")
    if np.any(w.sum(axis=-1) <= 0):
        raise ValueError("weights must have a positive sum in every row")
    return _expectile(x, np.array(w), t)


class ExpectileBackup:
    """The expectile backup for the driver: value(q)[p] = τ-expectile of q[p, ·] under weights[p, ·].

    Monotone and shift-equivariant (value(q + c) = value(q) + c), so with q = r + γ P v it is a
    γ-contraction and the driver's sup-norm and span certificates apply (Puterman 1994, Thm 6.3.1
    and §6.6 need only these two properties; derived here). ``policy`` returns the weights (the
    behaviour distribution over option outcomes); ``slack`` is 0: there is no greedy policy here,
    only the value. Inputs assumed validated.
    """

    kind = "expectile"

    def __init__(self, weights: np.ndarray, tau: float) -> None:
        self.weights, self.tau = weights, float(tau)

    def value(self, q: np.ndarray, h: int | None = None) -> np.ndarray:
        return _expectile(q, self.weights, self.tau)

    def policy(self, q: np.ndarray, h: int | None = None) -> np.ndarray:
        return self.weights / self.weights.sum(axis=-1, keepdims=True)

    def slack(self, q: np.ndarray, pi: np.ndarray) -> float:
        return 0.0


def _check_trajectories(trajectories: Sequence[Sequence[int]], num_states: int) -> list[np.ndarray]:
    S = check_count("num_states", num_states)
    out = []
    if len(trajectories) == 0:
        raise ValueError("trajectories must contain at least one trajectory")
    for i, tr in enumerate(trajectories):
        a = np.asarray(tr)
        if a.ndim != 1 or a.size < 2 or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"trajectories[{i}] must be a 1-d integer sequence of >= 2 states, got {tr!r:.80}")
        bad = (a < 0) | (a >= S)
        if bad.any():
            j = int(np.argmax(bad))
            raise ValueError(f"trajectories[{i}][{j}] = {int(a[j])} is not a state in [0, {S})")
        out.append(a.astype(np.int64))
    return out


def option_outcomes(trajectories: Sequence[Sequence[int]], num_states: int, n: int) -> np.ndarray:
    """Counts C[s, g, s'] of option outcomes: from each visit of s at time t (not the last step),
    s^Ω = g if g occurs in s_{t+1..t+n}, else s_{min(t+n, T)} (T the trajectory's last index).

    n = 1 is the primitive transition s_{t+1} (HIQL). Shapes: -> C[s, g, s'] (int64).
    References: Ahn et al. (2025), arXiv 2505.12737, §4 (the option's terminal state s^Ω).
    """
    k = check_count("n", n, meaning="the option horizon")
    trajs = _check_trajectories(trajectories, num_states)
    S = int(num_states)
    C = np.zeros((S, S, S), dtype=np.int64)
    goals = np.arange(S)
    for a in trajs:
        T = a.size - 1
        for t in range(T):
            window = a[t + 1: min(t + k, T) + 1]
            end = window[-1]
            outcome = np.full(S, end)
            # goals met inside the window end the option there
            met = np.zeros(S, dtype=bool)
            met[window] = True
            outcome[met] = goals[met]
            C[a[t], goals, outcome] += 1
    return C


@dataclass(frozen=True)
class OTAValue:
    """values[s, g]: the fixed point V^OTA_n (NaN where the dataset never leaves s); n, tau, gamma;
    iterations of the driver; value_error_bound ≥ ‖values − V_fixed‖_∞ (the driver's certificate);
    converged; coverage[s, g]: number of dataset options from s (for goal g)."""

    values: np.ndarray
    n: int
    tau: float
    gamma: float
    iterations: int
    value_error_bound: float
    converged: bool
    coverage: np.ndarray


def ota_values(trajectories: Sequence[Sequence[int]], num_states: int, n: int, *, gamma: float = 0.99, tau: float = 0.7,
               epsilon: float = 1e-10, max_iter: int = 200_000) -> OTAValue:
    """The tabular fixed point of the OTA value loss: V(g, g) = 0 and, for s ≠ g,

        V(s, g) = Expectile_τ [ −1 + γ V(s^Ω, g) ]  over the dataset's options from s (horizon n),

    solved on the pair MDP ((s, g) states, option outcomes as actions) by ``rlref.solve.iterate``
    with :class:`ExpectileBackup` (span certificate ≤ ``epsilon``). n = 1 is HIQL's value.

    References: Ahn et al. (2025), arXiv 2505.12737, §4; Park et al. (2023), HIQL, §4.
    """
    g_ = check_gamma(gamma)
    t = _check_tau(tau)
    eps = check_positive("epsilon", epsilon)
    C = option_outcomes(trajectories, num_states, n)
    S = int(num_states)
    counts = C.reshape(S * S, S)  # pair p = s·S + g, columns: s^Ω
    counts[np.arange(S) * S + np.arange(S)] = 0  # V(g, g) = 0: the goal pair is absorbing
    nnz = (counts > 0).sum(axis=1)
    A = max(1, int(nnz.max()))
    rows_p, cols_o = np.nonzero(counts)
    slot = np.zeros_like(rows_p)
    if rows_p.size:
        start = np.searchsorted(rows_p, np.arange(S * S))
        slot = np.arange(rows_p.size) - start[rows_p]
    weights = np.zeros((S * S, A))
    weights[rows_p, slot] = counts[rows_p, cols_o]
    nxt = np.repeat(np.arange(S * S)[:, None], A, axis=1)  # padding and uncovered pairs: self-loops
    goal_of = rows_p % S
    nxt[rows_p, slot] = cols_o * S + goal_of
    R = np.zeros((S * S, A))
    R[rows_p, slot] = -1.0
    covered = nnz > 0
    weights[~covered, 0] = 1.0  # no data: a reward-0 self-loop, reported as NaN below
    P = sp.csr_matrix((np.ones(S * S * A), (np.arange(S * S * A), nxt.ravel())), shape=(S * S * A, S * S))
    mdp = TabularMDP(P, R, gamma=g_, name=f"ota-pairs-n{n}")
    out = iterate(mdp, ExpectileBackup(weights, t), np.zeros(S * S), epsilon=eps, max_iter=max_iter, bounds="span")
    values = np.array(out.values).reshape(S, S)
    cover = counts.sum(axis=1).reshape(S, S)
    diag = np.eye(S, dtype=bool)
    values[diag] = 0.0
    values[(cover == 0) & ~diag] = np.nan
    return OTAValue(values=values, n=int(n), tau=t, gamma=g_, iterations=int(out.iterations),
                    value_error_bound=float(out.value_error_bound), converged=bool(out.converged), coverage=cover)


def shortest_path_option_values(distance: np.ndarray, n: int, gamma: float) -> np.ndarray:
    """V_n(s, g) = −(1 − γ^{⌈d*(s,g)/n⌉})/(1 − γ): the OTA fixed point on shortest-path data
    (derived here; n = 1 is the primitive goal-conditioned value −(1 − γ^{d*})/(1 − γ)).
    ``distance`` d*[s, g] ≥ 0 (np.inf where g is unreachable gives −1/(1 − γ)).
    """
    k = check_count("n", n, meaning="the option horizon")
    g_ = check_gamma(gamma)
    d = np.asarray(distance, dtype=float)
    if np.any(np.isnan(d)) or np.any(d < 0):
        raise ValueError("distance must be >= 0 (np.inf for unreachable), without NaN")
    with np.errstate(over="ignore"):
        steps = np.ceil(d / k)
    return -(1.0 - np.power(g_, steps)) / (1.0 - g_)


def _pair_differences(values: np.ndarray, distance: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pairs, ΔV, Δd) for rows (s, s_sub, g): ΔV = V(s_sub, g) − V(s, g), Δd = d*(s, g) − d*(s_sub, g)."""
    p = np.asarray(pairs)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"pairs must have shape (m, 3) of (s, s_sub, g) rows, got {p.shape}")
    v = np.asarray(values, dtype=float)
    d = np.asarray(distance, dtype=float)
    return p, v[p[:, 1], p[:, 2]] - v[p[:, 0], p[:, 2]], d[p[:, 0], p[:, 2]] - d[p[:, 1], p[:, 2]]


def advantage_sign_accuracy(values: np.ndarray, distance: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """For rows (s, s_sub, g) of ``pairs``: 1 if sign(V(s_sub, g) − V(s, g)) = sign(d*(s, g) − d*(s_sub, g)),
    else 0 (a zero value difference counts as wrong when the distances differ). Pairs with equal
    distances are scored 1 only if the value difference is exactly 0.

    This is the quantity the OTA paper plots for HIQL's high-level advantage (§3, "the sign of the
    advantage frequently becomes incorrect"). Shapes: values[s, g], distance[s, g], pairs[m, 3] -> [m].
    """
    _, dv, dd = _pair_differences(values, distance, pairs)
    return (np.sign(dv) == np.sign(dd)).astype(float)


def effective_horizon_steps(distance: float, n: int) -> int:
    """⌈d*/n⌉: the number of high-level value backups between a state and a goal at distance d*."""
    k = check_count("n", n, meaning="the option horizon")
    return int(math.ceil(float(distance) / k))


def advantage_sign_probability(values: np.ndarray, distance: np.ndarray, pairs: np.ndarray, sigma: float) -> np.ndarray:
    """P(sign of the estimated advantage is right) when each table entry carries an independent
    N(0, σ²) estimation error, V̂ = V + σ ξ (a model of function-approximation error, derived here):

        V̂(s_sub, g) − V̂(s, g) ~ N(ΔV, 2σ²),   P(right) = Φ(sign(Δd) · ΔV / (σ √2)),

    with ΔV = V(s_sub, g) − V(s, g) and Δd = d*(s, g) − d*(s_sub, g) ≠ 0 (rows with Δd = 0 raise).
    Shapes: values[s, g], distance[s, g], pairs[m, 3] of (s, s_sub, g) -> [m].
    """
    from scipy.special import ndtr

    sd = check_positive("sigma", sigma)
    p, dv, dd = _pair_differences(values, distance, pairs)
    if np.any(dd == 0):
        i = int(np.argmax(dd == 0))
        raise ValueError(f"pairs[{i}] = {p[i].tolist()} has equal distances to the goal: the advantage has no right sign")
    return ndtr(np.sign(dd) * dv / (sd * math.sqrt(2.0)))
