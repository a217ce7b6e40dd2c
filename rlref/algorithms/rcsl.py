"""Return-conditioned supervised learning (RCSL) and model-based RCSL (MBRCSL), exactly, on tabular MDPs.

RCSL fits π(a | h, s, g) — the action distribution of the data given the stage, the state and the
return-to-go g_h = Σ_{t ≥ h} r_t — by maximum likelihood (the empirical conditional, here with the exact
weights of the trajectories), and acts by conditioning on a target return g_0 and updating
g_{h+1} = g_h − r_h after each step (Brandfonbrener et al. 2022; Zhou et al. 2024, §3).

MBRCSL (Zhou, Huang, Zhu, Ma, Tang, Rajeswaran, ICLR 2024, Algorithm 1):
  1. learn a dynamics model P̂ (and reward r̂) and a behaviour policy β̂ from the data;
  2. roll β̂ out in P̂ from the data's initial states — rollouts stitch sub-trajectories of different
     data trajectories where they meet at a common state;
  3. keep the rollouts with the highest returns;
  4. fit RCSL on the kept rollouts and condition it on their (highest) return.

Here every step is exact (derived here): P̂ and β̂ are the empirical conditionals of the data, the rollouts
are the *exact distribution over all model paths* (infinite rollouts; or ``n_rollouts`` samples), the kept
set is the paths whose return is the best from their start state (or ≥ ``min_return``), and the RCSL
policy is evaluated exactly by propagating the joint distribution of (state, return-to-go) through the
true MDP. Undiscounted finite-horizon MDPs only (γ = 1, the RCSL setting).

Two facts checked in the tests (derived here; cf. Brandfonbrener et al. 2022, Thm 1, and Zhou et al.
2024, §4): in a deterministic MDP, RCSL conditioned on a return-to-go g that occurs at s_0 in the data
earns exactly g — so it never exceeds the best data return from s_0 and cannot stitch; and MBRCSL with
exact rollouts earns the optimal value of the data-restricted empirical MDP (what offline dynamic
programming on the covered (s, a) pairs attains), which stitches.

References: Zhou et al. (2024), "Free from Bellman Completeness: Trajectory Stitching via Model-based
Return-conditioned Supervised Learning", ICLR, Algorithm 1 and §4; Brandfonbrener, Bietti, Buckman, Laroche,
Bruna (2022), "When does return-conditioned supervised learning work for offline RL?", NeurIPS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rlref._checks import as_float_array, check_choice, check_count, check_finite
from rlref.mdp import TabularMDP

__all__ = [
    "TrajectoryData",
    "RCSLPolicy",
    "RCSLEvaluation",
    "MBRCSLResult",
    "FALLBACKS",
    "trajectory_returns",
    "fit_rcsl",
    "rcsl_value",
    "empirical_model",
    "model_rollouts",
    "mbrcsl",
    "stitching_mdp",
]

FALLBACKS = ("behaviour", "uniform")
_DIGITS = 10  # returns-to-go are matched after rounding to this many decimals


def _key(g: float) -> float:
    return round(float(g), _DIGITS)


@dataclass(frozen=True, eq=False)
class TrajectoryData:
    """N trajectories of a finite-horizon MDP: ``states[i, h]`` (h = 0..H, the last is s_H), ``actions[i, h]``
    (h = 0..H−1) and non-negative ``weights[i]`` (1 for sampled data; path probabilities for exact rollouts)."""

    states: np.ndarray
    actions: np.ndarray
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        s, a = np.asarray(self.states), np.asarray(self.actions)
        if s.ndim != 2 or a.ndim != 2 or s.shape[0] == 0:
            raise ValueError(f"states (N, H+1) and actions (N, H) must be non-empty 2-d arrays; got shapes {s.shape} and {a.shape} "
                             "(an empty dataset?)")
        if s.shape[0] != a.shape[0] or s.shape[1] != a.shape[1] + 1:
            raise ValueError(f"states must have shape (N, H+1) for actions of shape (N, H); got {s.shape} and {a.shape}")
        for name, x in (("states", s), ("actions", a)):
            if not np.issubdtype(x.dtype, np.integer):
                raise ValueError(f"{name} must be integer indices; got dtype {x.dtype}")
        w = np.ones(s.shape[0]) if self.weights is None else as_float_array("weights", self.weights, ndim=1)
        if w.shape != (s.shape[0],):
            raise ValueError(f"weights must have one entry per trajectory ({s.shape[0]}); got shape {w.shape}")
        check_finite("weights", w)
        if np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be >= 0 with a positive sum; got min {w.min()!r}, sum {w.sum()!r}")
        object.__setattr__(self, "states", s.astype(np.int64))
        object.__setattr__(self, "actions", a.astype(np.int64))
        object.__setattr__(self, "weights", w)

    @property
    def size(self) -> int:
        return int(self.states.shape[0])

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[1])

    @classmethod
    def from_trajectories(cls, traj) -> TrajectoryData:
        """From :class:`rlref.algorithms.demo_regularized.Trajectories` (states (N, H), actions, final_states)."""
        return cls(states=np.column_stack([traj.states, traj.final_states]), actions=traj.actions)


@dataclass(frozen=True, eq=False)
class RCSLPolicy:
    """π(a | h, s, g) as a table ``table[(h, s, round(g))] -> (A,)``; ``behaviour[h, s, a]`` the data's marginal
    (NaN rows where (h, s) has no data); ``fallback`` what acts at an unseen (h, s, g)."""

    table: dict = field(repr=False)
    behaviour: np.ndarray = field(repr=False)
    fallback: str
    num_actions: int

    def action_distribution(self, h: int, s: int, g: float) -> tuple[np.ndarray, bool]:
        """(π(·|h, s, g), whether (h, s, g) was in the data)."""
        p = self.table.get((h, s, _key(g)))
        if p is not None:
            return p, True
        b = self.behaviour[h, s]
        if self.fallback == "behaviour" and np.all(np.isfinite(b)):
            return b, False
        return np.full(self.num_actions, 1.0 / self.num_actions), False


@dataclass(frozen=True)
class RCSLEvaluation:
    """Exact expected return of RCSL from μ0 (``value``), per start state (``values[s]``), and the probability
    mass that ever acted at an unseen (h, s, g) (``ood_mass``)."""

    value: float
    values: np.ndarray
    ood_mass: float


@dataclass(frozen=True)
class MBRCSLResult:
    """The MBRCSL policy, its conditioning returns ``g0[s]`` (NaN where no rollout starts; such a start state is
    evaluated conditioned on 0), its exact value, all model rollouts, the kept ones and their probability mass."""

    policy: RCSLPolicy
    g0: np.ndarray
    evaluation: RCSLEvaluation
    kept: TrajectoryData
    rollouts: TrajectoryData
    kept_mass: float


def _check_mdp(mdp: TabularMDP) -> int:
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"mdp must be a TabularMDP, got {type(mdp).__name__}")
    if mdp.horizon is None or mdp.gamma != 1.0:
        raise ValueError(f"RCSL needs an undiscounted finite-horizon MDP (horizon=H, gamma=1); got horizon={mdp.horizon}, gamma={mdp.gamma}")
    return mdp.horizon


def _check_data(mdp: TabularMDP, data: TrajectoryData) -> None:
    H = _check_mdp(mdp)
    if data.horizon != H:
        raise ValueError(f"the trajectories have {data.horizon} actions; the MDP's horizon is {H}")
    for name, x, n in (("states", data.states, mdp.num_states), ("actions", data.actions, mdp.num_actions)):
        bad = np.argwhere((x < 0) | (x >= n))
        if bad.size:
            i, h = bad[0]
            raise ValueError(f"{name}[{i}, {h}] = {x[i, h]} is not an index in [0, {n})")


def _P(mdp: TabularMDP) -> np.ndarray:
    P = mdp.dense_P()
    return P if P.ndim == 4 else np.broadcast_to(P, (mdp.horizon, *P.shape))


def _r(mdp: TabularMDP) -> np.ndarray:
    return np.stack([mdp.reward(h) for h in range(mdp.horizon)])


def trajectory_returns(mdp: TabularMDP, data: TrajectoryData) -> np.ndarray:
    """Returns-to-go g[i, h] = Σ_{t ≥ h} r_t(s_t, a_t) (shape (N, H+1), g[:, H] = 0), with the MDP's expected rewards."""
    _check_data(mdp, data)
    r = _r(mdp)
    H = data.horizon
    rew = r[np.arange(H)[None, :], data.states[:, :H], data.actions]
    return np.concatenate([np.cumsum(rew[:, ::-1], axis=1)[:, ::-1], np.zeros((data.size, 1))], axis=1)


def fit_rcsl(mdp: TabularMDP, data: TrajectoryData, fallback: str = "behaviour") -> RCSLPolicy:
    """Maximum-likelihood RCSL: π(a | h, s, g) = Σ_i w_i 1[s_ih = s, g_ih = g, a_ih = a] / Σ_i w_i 1[s_ih = s, g_ih = g].

    At an unseen (h, s, g) it acts by ``fallback``: "behaviour" (the data's π(a | h, s), uniform where (h, s) is
    unseen too) or "uniform". References: Brandfonbrener et al. (2022), §2 (RCSL).
    """
    fallback = check_choice("fallback", fallback, FALLBACKS)
    g = trajectory_returns(mdp, data)
    H, S, A = data.horizon, mdp.num_states, mdp.num_actions
    table: dict = {}
    counts = np.zeros((H, S, A))
    for h in range(H):
        np.add.at(counts[h], (data.states[:, h], data.actions[:, h]), data.weights)
        for i in range(data.size):
            k = (h, int(data.states[i, h]), _key(g[i, h]))
            table.setdefault(k, np.zeros(A))[data.actions[i, h]] += data.weights[i]
    table = {k: v / v.sum() for k, v in table.items() if v.sum() > 0}
    tot = counts.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        behaviour = np.where(tot > 0, counts / np.where(tot > 0, tot, 1.0), np.nan)
    return RCSLPolicy(table=table, behaviour=behaviour, fallback=fallback, num_actions=A)


def rcsl_value(mdp: TabularMDP, policy: RCSLPolicy, g0) -> RCSLEvaluation:
    """Exact expected return of RCSL conditioned on g0 (a scalar, or ``g0[s]`` per start state) in the true MDP.

    Propagates the joint law of (s_h, g_h): a_h ∼ π(·|h, s_h, g_h), s_{h+1} ∼ P_h(·|s_h, a_h),
    g_{h+1} = g_h − r_h(s_h, a_h). Cost O(H · #(s, g) pairs · A · S).
    """
    H = _check_mdp(mdp)
    S = mdp.num_states
    g0 = np.broadcast_to(np.asarray(g0, dtype=float), (S,))
    P, r = _P(mdp), _r(mdp)
    values = np.zeros(S)
    ood = 0.0
    for s0 in np.flatnonzero(mdp.mu0 > 0):
        if not np.isfinite(g0[s0]):
            raise ValueError(f"g0[{s0}] = {g0[s0]!r}: the start state {s0} has positive mu0 but no finite conditioning return")
        dist = {(int(s0), _key(g0[s0])): (1.0, float(g0[s0]), False)}
        v = 0.0
        for h in range(H):
            nxt: dict = {}
            for (s, _), (p, g, was_ood) in dist.items():
                pa, seen = policy.action_distribution(h, s, g)
                for a in np.flatnonzero(pa > 0):
                    pr = p * pa[a]
                    v += pr * r[h, s, a]
                    g2 = g - r[h, s, a]
                    for s2 in np.flatnonzero(P[h, s, a] > 0):
                        k = (int(s2), _key(g2))
                        q, gg, o = nxt.get(k, (0.0, g2, False))
                        nxt[k] = (q + pr * P[h, s, a, s2], gg, o or was_ood or not seen)
            dist = nxt
        values[s0] = v
        ood += mdp.mu0[s0] * sum(p for p, _, o in dist.values() if o)
    return RCSLEvaluation(value=float(mdp.mu0 @ values), values=values, ood_mass=float(ood))


def empirical_model(mdp: TabularMDP, data: TrajectoryData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P̂[h, s, a, s'], β̂[h, s, a], covered[h, s, a]): the data's empirical transitions and behaviour (zero rows
    where uncovered). The reward model is the MDP's expected reward on covered pairs (deterministic rewards)."""
    _check_data(mdp, data)
    H, S, A = data.horizon, mdp.num_states, mdp.num_actions
    n_sas = np.zeros((H, S, A, S))
    for h in range(H):
        np.add.at(n_sas[h], (data.states[:, h], data.actions[:, h], data.states[:, h + 1]), data.weights)
    n_sa = n_sas.sum(-1)
    covered = n_sa > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        P_hat = np.where(covered[..., None], n_sas / np.where(covered, n_sa, 1.0)[..., None], 0.0)
        n_s = n_sa.sum(-1, keepdims=True)
        beta = np.where(n_s > 0, n_sa / np.where(n_s > 0, n_s, 1.0), 0.0)
    return P_hat, beta, covered


def model_rollouts(mdp: TabularMDP, data: TrajectoryData, n_rollouts: int | None = None, rng: np.random.Generator | None = None,
                   max_paths: int = 200_000) -> TrajectoryData:
    """MBRCSL step 2: roll β̂ out in P̂ from the data's initial states (weighted by their empirical frequency).

    ``n_rollouts=None``: the exact law — every model path with its probability as weight (raises ValueError if
    there are more than ``max_paths``); otherwise ``n_rollouts`` sampled paths (``rng`` required).
    """
    P_hat, beta, _ = empirical_model(mdp, data)
    H = data.horizon
    start = np.bincount(data.states[:, 0], weights=data.weights, minlength=mdp.num_states)
    start = start / start.sum()
    if n_rollouts is not None:
        n = check_count("n_rollouts", n_rollouts)
        if rng is None:
            raise ValueError("rng (a numpy.random.Generator) is required when n_rollouts is given")
        st = np.empty((n, H + 1), dtype=np.int64)
        ac = np.empty((n, H), dtype=np.int64)
        st[:, 0] = rng.choice(mdp.num_states, size=n, p=start)
        for h in range(H):
            for i in range(n):
                ac[i, h] = rng.choice(mdp.num_actions, p=beta[h, st[i, h]])
                st[i, h + 1] = rng.choice(mdp.num_states, p=P_hat[h, st[i, h], ac[i, h]])
        return TrajectoryData(states=st, actions=ac)
    paths = [([int(s)], [], float(start[s])) for s in np.flatnonzero(start > 0)]
    for h in range(H):
        new = []
        for ss, aa, w in paths:
            s = ss[-1]
            for a in np.flatnonzero(beta[h, s] > 0):
                for s2 in np.flatnonzero(P_hat[h, s, a] > 0):
                    new.append((ss + [int(s2)], aa + [int(a)], w * beta[h, s, a] * P_hat[h, s, a, s2]))
        if len(new) > max_paths:
            raise ValueError(f"the exact model rollout has more than max_paths={max_paths} paths at stage {h}; pass n_rollouts to sample")
        paths = new
    return TrajectoryData(states=np.array([p[0] for p in paths]), actions=np.array([p[1] for p in paths]),
                          weights=np.array([p[2] for p in paths]))


def _best_per_start(returns: np.ndarray, starts: np.ndarray, S: int) -> np.ndarray:
    best = np.full(S, -np.inf)
    np.maximum.at(best, starts, returns)
    return best


def mbrcsl(mdp: TabularMDP, data: TrajectoryData, min_return: float | None = None, n_rollouts: int | None = None,
           rng: np.random.Generator | None = None, fallback: str = "behaviour") -> MBRCSLResult:
    """MBRCSL (Zhou et al. 2024, Algorithm 1), exact by default.

    Rollouts of β̂ in P̂ (:func:`model_rollouts`); keep those with return ≥ ``min_return`` (default: the best
    return from their own start state); fit RCSL on the kept rollouts; condition on g0[s] = the best kept return
    from s; evaluate exactly in the true MDP (:func:`rcsl_value`).
    """
    roll = model_rollouts(mdp, data, n_rollouts=n_rollouts, rng=rng)
    g = trajectory_returns(mdp, roll)[:, 0]
    S = mdp.num_states
    best = _best_per_start(g, roll.states[:, 0], S)
    thr = best[roll.states[:, 0]] - 10.0 ** -_DIGITS if min_return is None else np.full(roll.size, float(min_return))
    keep = g >= thr
    if not np.any(keep):
        raise ValueError(f"no model rollout has return >= min_return={min_return!r} (best rollout return {g.max()!r})")
    kept = TrajectoryData(states=roll.states[keep], actions=roll.actions[keep], weights=roll.weights[keep])
    policy = fit_rcsl(mdp, kept, fallback=fallback)
    g0 = _best_per_start(g[keep], kept.states[:, 0], S)
    g0 = np.where(np.isfinite(g0), g0, np.nan)
    g_eval = np.where(np.isfinite(g0), g0, 0.0)
    return MBRCSLResult(policy=policy, g0=g0, evaluation=rcsl_value(mdp, policy, g_eval), kept=kept, rollouts=roll,
                        kept_mass=float(roll.weights[keep].sum() / roll.weights.sum()))


def stitching_mdp(start: int = 0) -> TabularMDP:
    """The stitching instance (derived here, after Zhou et al. 2024's Point-Maze illustration; docs/rcsl.md).

    States 0 A, 1 B (two starts), 2 M (the shared junction), 3 Med, 4 G (goal, absorbing), 5 sink (absorbing);
    A = 3 actions, H = 2. A → (M, Med, sink) by action (0, 1, 2); B → (M, sink, sink); M → (sink, G, sink);
    r(M, 1) = 1 (reaching the goal), r(Med, ·) = 0.5, else 0. The optimal path A → M → G returns 1. ``start`` is the
    state of the point-mass μ0. Raises ValueError if start is not a state in [0, 6).
    References: Zhou et al. (2024), "Free from Bellman Completeness", ICLR, §4 (trajectory stitching).
    """
    S, A = 6, 3
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < S:
        raise ValueError(f"start must be a state in [0, {S}), got {start!r}")
    P = np.zeros((S, A, S))
    P[:, :, 5] = 1.0
    P[0] = 0.0
    P[0, 0, 2] = P[0, 1, 3] = P[0, 2, 5] = 1.0
    P[1] = 0.0
    P[1, 0, 2] = P[1, 1, 5] = P[1, 2, 5] = 1.0
    P[2] = 0.0
    P[2, 0, 5] = P[2, 1, 4] = P[2, 2, 5] = 1.0
    P[4] = 0.0
    P[4, :, 4] = 1.0
    R = np.zeros((S, A))
    R[2, 1] = 1.0
    R[3, :] = 0.5
    return TabularMDP(P, R, horizon=2, mu0=np.eye(S)[start], name="stitching")
