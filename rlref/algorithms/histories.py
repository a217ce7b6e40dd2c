"""Offline RL with observation histories, compressed by a bisimulation metric — exactly, on a tabular POMDP.

Hong, Dragan, Levine (ICLR 2024) show that offline RL conditioned on raw observation histories cannot
"stitch" (two trajectories never share a history) and so needs data for every history, and that it becomes
efficient when histories are compressed to a representation that respects a *bisimulation metric*. Here
every piece is exact (derived here):

* :func:`history_mdp` turns a finite POMDP (T[s, a, s'], Z[s', o], R[s, a], μ0, an episode of H steps) into
  the MDP whose states are the observation histories h = (o_0, a_0, …, o_t) (plus an absorbing terminal
  state after H steps): r(h, a) = Σ_s b(s|h) R(s, a), P(h∘(a, o) | h, a) = Σ_{s, s'} b(s|h) T(s, a, s') Z(s', o),
  with b(·|h) the exact belief. It is a discounted :class:`~rlref.TabularMDP` (discount γ within the episode).
* :func:`bisimulation_metric` computes the bisimulation metric of Ferns, Panangaden & Precup (2004) as the
  fixed point of  F(d)(x, y) = max_a [ |r(x, a) − r(y, a)| + γ W₁_d(P(·|x, a), P(·|y, a)) ],  a γ-contraction,
  with the Wasserstein-1 distances solved as transport LPs (HiGHS; :func:`rlref.divergences.wasserstein1`). Its fixed point bounds value
  differences: |Q*(x, a) − Q*(y, a)| ≤ d(x, y) and |V*(x) − V*(y)| ≤ d(x, y) (Ferns et al. 2004, Thm 5.1).
* :func:`partition_by_metric` groups histories into cells of d-diameter ≤ ε (complete linkage; ε = 0 gives
  the bisimulation classes), :func:`aggregate_mdp` builds the cell MDP with within-cell weights ξ, and
  :func:`empirical_cell_mdp` the certainty-equivalence model of the cells estimated from offline data.

The aggregation bound checked in the tests and the reproduction (derived here; cf. Ferns et al. 2004,
Thm 5.2, and Singh & Yee 1994): for cells of d-diameter ≤ ε and any weights ξ,
‖Q̃∘φ − Q*‖∞ ≤ ε / (1 − γ), so the policy greedy for the cell MDP loses at most
V* − V^{π_φ} ≤ 2 ‖Q̃∘φ − Q*‖∞ / (1 − γ) ≤ 2ε / (1 − γ)² at every history; on a history MDP of depth H the
geometric sums stop after H terms: 2ε (Σ_{k<H} γ^k)² (:func:`aggregation_bound`).

References: Hong, Dragan, Levine (2024), "Offline RL with Observation Histories: Analyzing and Improving
Sample Complexity", ICLR, §4–5; Ferns, Panangaden, Precup (2004), "Metrics for finite Markov decision
processes", UAI, Thm 4.5 (fixed point) and 5.1–5.2; Singh & Yee (1994), "An upper bound on the loss from
approximate optimal-value functions", Machine Learning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from rlref._checks import as_distribution, as_float_array, check_at_least, check_count, check_finite, check_gamma, check_positive
from rlref.divergences import wasserstein1
from rlref.mdp import TabularMDP

__all__ = [
    "HistoryMDP",
    "BisimulationResult",
    "HistoryData",
    "wasserstein1",
    "history_mdp",
    "bisimulation_operator",
    "bisimulation_metric",
    "partition_by_metric",
    "aggregate_mdp",
    "sample_histories",
    "empirical_cell_mdp",
    "lift_policy",
    "aggregation_bound",
]


# ----------------------------------------------------------------------------- the history MDP
@dataclass(frozen=True, eq=False)
class HistoryMDP:
    """The MDP over observation histories: ``mdp`` (state 0 is the terminal state), ``histories[k]`` the tuple
    (o_0, a_0, o_1, …, o_t) of state k (``()`` for the terminal), ``stage[k]`` = t (−1 for the terminal),
    ``belief[k]`` = b(·|h_k), and ``index`` the map from history tuples to states."""

    mdp: TabularMDP
    histories: list
    stage: np.ndarray
    belief: np.ndarray
    index: dict = field(repr=False)
    horizon: int

    @property
    def num_histories(self) -> int:
        return len(self.histories) - 1


def history_mdp(T: np.ndarray, Z: np.ndarray, R: np.ndarray, mu0: np.ndarray, horizon: int, gamma: float) -> HistoryMDP:
    """Enumerate the observation histories of a finite POMDP and build their (discounted) MDP.

    T[s, a, s'] transitions, Z[s, o] = P(o | s) observations (o_0 is drawn from the initial state), R[s, a]
    rewards, mu0[s]; the episode has ``horizon`` decisions, after which the history MDP enters the absorbing
    zero-reward terminal state 0. Histories of probability 0 are not created. Exact beliefs by Bayes' rule.
    """
    T = as_float_array("T", T, ndim=3)
    S, A, _ = T.shape
    if T.shape != (S, A, S):
        raise ValueError(f"T must have shape (S, A, S); got {T.shape}")
    for s in range(S):
        for a in range(A):
            as_distribution(f"T[{s}, {a}]", T[s, a], ndim=1)
    Z = as_float_array("Z", Z, ndim=2)
    if Z.shape[0] != S:
        raise ValueError(f"Z must have shape (S, O) with S = {S}; got {Z.shape}")
    for s in range(S):
        as_distribution(f"Z[{s}]", Z[s], ndim=1)
    R = as_float_array("R", R, ndim=2)
    if R.shape != (S, A):
        raise ValueError(f"R must have shape (S, A) = ({S}, {A}); got {R.shape}")
    check_finite("R", R)
    mu0 = as_distribution("mu0", mu0, ndim=1)
    if mu0.shape != (S,):
        raise ValueError(f"mu0 must have shape ({S},); got {mu0.shape}")
    H = check_count("horizon", horizon)
    gamma = check_gamma(gamma)
    O = Z.shape[1]

    histories: list = [()]
    beliefs: list = [np.full(S, 1.0 / S)]
    stages: list = [-1]
    start: dict = {}
    joint0 = mu0[:, None] * Z  # P(s, o_0)
    frontier = []
    for o in range(O):
        m = joint0[:, o].sum()
        if m > 0:
            histories.append((o,))
            beliefs.append(joint0[:, o] / m)
            stages.append(0)
            start[len(histories) - 1] = m
            frontier.append(len(histories) - 1)
    edges: list = []  # (k, a, k2, prob)
    for t in range(H):
        nxt = []
        for k in frontier:
            if t == H - 1:
                for a in range(A):
                    edges.append((k, a, 0, 1.0))
                continue
            for a in range(A):
                pred = beliefs[k] @ T[:, a, :]  # P(s' | h, a)
                joint = pred[:, None] * Z  # P(s', o | h, a)
                for o in range(O):
                    m = joint[:, o].sum()
                    if m > 0:
                        histories.append((*histories[k], a, o))
                        beliefs.append(joint[:, o] / m)
                        stages.append(t + 1)
                        edges.append((k, a, len(histories) - 1, m))
                        nxt.append(len(histories) - 1)
        frontier = nxt
    n = len(histories)
    P = np.zeros((n, A, n))
    P[0, :, 0] = 1.0
    for k, a, k2, m in edges:
        P[k, a, k2] += m
    belief = np.array(beliefs)
    r = belief @ R
    r[0] = 0.0
    mu = np.zeros(n)
    for k, m in start.items():
        mu[k] = m
    term = np.zeros(n, dtype=bool)
    term[0] = True
    mdp = TabularMDP(P, r, gamma=gamma, mu0=mu, terminal=term, name=f"histories(H={H})")
    return HistoryMDP(mdp=mdp, histories=histories, stage=np.array(stages), belief=belief,
                      index={h: k for k, h in enumerate(histories)}, horizon=H)


# ----------------------------------------------------------------------------- the bisimulation metric
@dataclass(frozen=True)
class BisimulationResult:
    """The metric ``metric[x, y]`` (inf across blocks), the iterations, the last sup-norm change ``residual``
    and the a-posteriori error bound ‖d − d*‖∞ ≤ γ residual / (1 − γ) (``error_bound``)."""

    metric: np.ndarray
    iterations: int
    residual: float
    error_bound: float
    converged: bool


def _blocks(mdp: TabularMDP, blocks) -> np.ndarray:
    if blocks is None:
        return np.zeros(mdp.num_states, dtype=np.int64)
    b = np.asarray(blocks)
    if b.shape != (mdp.num_states,) or not np.issubdtype(b.dtype, np.integer):
        raise ValueError(f"blocks must be an integer array of shape ({mdp.num_states},); got {b.dtype} {b.shape}")
    return b.astype(np.int64)


def bisimulation_operator(mdp: TabularMDP, d: np.ndarray, blocks=None) -> np.ndarray:
    """One application of F(d)(x, y) = max_a [ |r(x,a) − r(y,a)| + γ W₁_d(P(·|x,a), P(·|y,a)) ] (Ferns et al. 2004).

    Only pairs in the same block are computed (others are inf); the successors of a block must lie in one
    block, or W₁ meets an infinite cost and raises ValueError.
    """
    if mdp.horizon is not None:
        raise ValueError("bisimulation_operator needs a discounted MDP (gamma < 1); got a finite-horizon one")
    b = _blocks(mdp, blocks)
    S = mdp.num_states
    d = as_float_array("d", d, ndim=2)
    if d.shape != (S, S):
        raise ValueError(f"d must have shape ({S}, {S}); got {d.shape}")
    P, r, g = mdp.dense_P(), mdp.r, mdp.gamma
    out = np.full((S, S), np.inf)
    np.fill_diagonal(out, 0.0)
    same = (b[:, None] == b[None, :]) & ~np.eye(S, dtype=bool)
    xs, ys = np.nonzero(np.triu(same))
    if xs.size == 0:
        return out
    val = np.zeros(xs.size)
    point = (P == 1.0)  # P(·|x, a) a point mass (its successor is argmax)
    succ = P.argmax(-1)
    for a in range(mdp.num_actions):
        w = np.zeros(xs.size)
        if g > 0:
            both = point[xs, a, succ[xs, a]] & point[ys, a, succ[ys, a]]
            w[both] = d[succ[xs[both], a], succ[ys[both], a]]  # W1 of two point masses is their distance
            for k in np.flatnonzero(~both):
                w[k] = wasserstein1(P[xs[k], a], P[ys[k], a], d)
            if not np.all(np.isfinite(w)):
                k = np.flatnonzero(~np.isfinite(w))[0]
                raise ValueError(f"the successors of states {xs[k]} and {ys[k]} under action {a} lie in different blocks")
        val = np.maximum(val, np.abs(r[xs, a] - r[ys, a]) + g * w)
    out[xs, ys] = out[ys, xs] = val
    return out


def bisimulation_metric(mdp: TabularMDP, blocks=None, tol: float = 1e-10, max_iter: int = 10_000) -> BisimulationResult:
    """The bisimulation metric d* = F(d*) by fixed-point iteration from d = 0 (a γ-contraction in sup norm).

    Stops when ‖F(d) − d‖∞ ≤ tol (the returned metric then satisfies ‖d − d*‖∞ ≤ γ tol / (1 − γ)). Cost per
    iteration: one transport LP per pair in a block and action. References: Ferns, Panangaden, Precup (2004),
    Thm 4.5 and §4 (the metric with c_R = 1, c_T = γ).
    """
    tol = check_positive("tol", tol)
    max_iter = check_count("max_iter", max_iter)
    b = _blocks(mdp, blocks)
    d = np.where(b[:, None] == b[None, :], 0.0, np.inf)
    res = np.inf
    it = 0
    while it < max_iter:
        it += 1
        new = bisimulation_operator(mdp, d, b)
        fin = np.isfinite(new)
        res = float(np.max(np.abs(new[fin] - d[fin]))) if fin.any() else 0.0
        d = new
        if res <= tol:
            break
    g = mdp.gamma
    return BisimulationResult(metric=d, iterations=it, residual=res, error_bound=g * res / (1 - g) if g < 1 else np.inf,
                              converged=res <= tol)


def partition_by_metric(metric: np.ndarray, eps: float, blocks=None) -> np.ndarray:
    """Cells of d-diameter ≤ ε within each block (complete-linkage clustering; ε = 0: the classes d = 0).

    Returns labels[x] (0, 1, …). Complete linkage guarantees max_{x, y in a cell} d(x, y) ≤ ε.
    """
    eps = check_at_least("eps", eps, 0.0, "the cell diameter")
    d = as_float_array("metric", metric, ndim=2)
    S = d.shape[0]
    b = np.zeros(S, dtype=np.int64) if blocks is None else np.asarray(blocks, dtype=np.int64)
    labels = np.empty(S, dtype=np.int64)
    nxt = 0
    for blk in np.unique(b):
        idx = np.flatnonzero(b == blk)
        if idx.size == 1:
            labels[idx] = nxt
            nxt += 1
            continue
        sub = d[np.ix_(idx, idx)]
        if not np.all(np.isfinite(sub)):
            raise ValueError(f"metric has infinite entries inside block {blk}")
        sub = (sub + sub.T) / 2
        np.fill_diagonal(sub, 0.0)
        lab = fcluster(linkage(squareform(sub, checks=False), method="complete"), t=eps + 1e-12, criterion="distance")
        _, lab = np.unique(lab, return_inverse=True)
        labels[idx] = lab + nxt
        nxt += lab.max() + 1
    return labels


def aggregate_mdp(mdp: TabularMDP, labels: np.ndarray, weights: np.ndarray) -> TabularMDP:
    """The cell MDP: r̃(C, a) = Σ_{x∈C} ξ(x) r(x, a), P̃(C'|C, a) = Σ_{x∈C} ξ(x) Σ_{x'∈C'} P(x'|x, a), ξ ∝ weights in C.

    A cell whose weights are all 0 gets uniform weights. References: Ferns et al. (2004), §5 (aggregation).
    """
    labels = np.asarray(labels, dtype=np.int64)
    w = as_float_array("weights", weights, ndim=1)
    if w.shape != (mdp.num_states,) or labels.shape != (mdp.num_states,) or np.any(w < 0):
        raise ValueError(f"labels and weights must have shape ({mdp.num_states},) and weights be >= 0")
    C = int(labels.max()) + 1
    M = np.zeros((mdp.num_states, C))
    M[np.arange(mdp.num_states), labels] = 1.0
    mass = M.T @ w
    xi = np.where(mass[labels] > 0, w / np.where(mass[labels] > 0, mass[labels], 1.0), 1.0 / (M.sum(0)[labels]))
    W = M * xi[:, None]  # W[x, C] = ξ(x) 1[x ∈ C]
    P = mdp.dense_P()
    r = np.einsum("xc,xa->ca", W, mdp.r)
    Pc = np.einsum("xc,xay,yd->cad", W, P, M)
    return TabularMDP(Pc, r, gamma=mdp.gamma, mu0=M.T @ mdp.mu0, name=f"cells({C})")


# ----------------------------------------------------------------------------- offline data
@dataclass(frozen=True, eq=False)
class HistoryData:
    """N episodes as history-MDP transitions: ``x[i, t]`` (history state), ``a``, ``r`` (the realized POMDP reward)."""

    x: np.ndarray
    a: np.ndarray
    r: np.ndarray

    def __post_init__(self) -> None:
        if np.asarray(self.x).size == 0:
            raise ValueError("the dataset is empty (no episodes)")


def sample_histories(T, Z, R, mu0, hist: HistoryMDP, behaviour: np.ndarray, n: int, rng: np.random.Generator) -> HistoryData:
    """Roll out ``n`` POMDP episodes (hidden s ∼ μ0, o ∼ Z, a ∼ behaviour[t, o_t... ] — here ``behaviour[a]`` is a
    history-independent action distribution) and record the visited history states and realized rewards."""
    n = check_count("n", n)
    beh = as_distribution("behaviour", behaviour, ndim=1)
    T, Z, R, mu0 = (np.asarray(v, dtype=float) for v in (T, Z, R, mu0))
    H, S, O = hist.horizon, T.shape[0], Z.shape[1]
    xs = np.empty((n, H), dtype=np.int64)
    acts = np.empty((n, H), dtype=np.int64)
    rews = np.empty((n, H))
    for i in range(n):
        s = rng.choice(S, p=mu0)
        h = (int(rng.choice(O, p=Z[s])),)
        for t in range(H):
            k = hist.index[h]
            a = int(rng.choice(beh.size, p=beh))
            xs[i, t], acts[i, t], rews[i, t] = k, a, R[s, a]
            s = rng.choice(S, p=T[s, a])
            h = (*h, a, int(rng.choice(O, p=Z[s])))
    return HistoryData(x=xs, a=acts, r=rews)


def empirical_cell_mdp(hist: HistoryMDP, data: HistoryData, labels: np.ndarray, unseen_reward: float = 0.0) -> TabularMDP:
    """Certainty-equivalence model of the cells from offline data: r̂(C, a) = mean realized reward, P̂(C'|C, a) the
    empirical next-cell frequencies (the terminal cell after the last step). An unseen (C, a) is pessimistic: it
    pays ``unseen_reward`` and ends the episode. The start distribution is the empirical one of the first cells."""
    labels = np.asarray(labels, dtype=np.int64)
    C, A, H = int(labels.max()) + 1, hist.mdp.num_actions, hist.horizon
    term = int(labels[0])
    n = np.zeros((C, A))
    rs = np.zeros((C, A))
    nt = np.zeros((C, A, C))
    cx = labels[data.x]
    for t in range(H):
        np.add.at(n, (cx[:, t], data.a[:, t]), 1.0)
        np.add.at(rs, (cx[:, t], data.a[:, t]), data.r[:, t])
        nxt = cx[:, t + 1] if t + 1 < H else np.full(cx.shape[0], term)
        np.add.at(nt, (cx[:, t], data.a[:, t], nxt), 1.0)
    seen = n > 0
    r = np.where(seen, rs / np.where(seen, n, 1.0), unseen_reward)
    P = np.where(seen[..., None], nt / np.where(seen, n, 1.0)[..., None], 0.0)
    P[~seen, term] = 1.0
    r[term] = 0.0
    P[term] = 0.0
    P[term, :, term] = 1.0
    mu = np.bincount(cx[:, 0], minlength=C).astype(float)
    return TabularMDP(P, r, gamma=hist.mdp.gamma, mu0=mu / mu.sum(), name=f"empirical-cells({C})")


def lift_policy(q_cells: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The history policy greedy for the cell Q: π(x) = argmax_a Q̃(φ(x), a) (first maximizer), shape (S, A)."""
    q = np.asarray(q_cells)[np.asarray(labels)]
    return np.eye(q.shape[1])[q.argmax(1)]


def aggregation_bound(eps: float, gamma: float, depth: int | None = None) -> float:
    """The loss bound of the greedy cell policy for cells of d-diameter ≤ ε (derived here; see the module docstring).

    Infinite horizon: 2ε / (1 − γ)². On a history MDP of ``depth`` H (every path reaches the terminal state
    after H steps, where both values are 0) the geometric sums stop after H terms:
    ‖Q̃∘φ − Q*‖∞ ≤ ε Σ_{k<H} γ^k and V* − V^{π_φ} ≤ 2 (Σ_{k<H} γ^k) ‖Q̃∘φ − Q*‖∞ = 2ε (Σ_{k<H} γ^k)².
    """
    eps = check_at_least("eps", eps, 0.0, "the cell diameter")
    gamma = check_gamma(gamma)
    if depth is None:
        return 2.0 * eps / (1.0 - gamma) ** 2
    geo = float(sum(gamma**k for k in range(check_count("depth", depth))))
    return 2.0 * eps * geo**2
