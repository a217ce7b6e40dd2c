"""Offline policy regularization toward the data: PRDC and A2PR, exactly, on a continuous-action MDP.

Both methods are TD3+BC-style actor objectives ``max_π E_{s∼D}[λ Q(s, π(s)) − penalty(s, π(s))]`` with
λ = α / ((1/N) Σ_i |Q(s_i, a_i)|) (Fujimoto & Gu 2021, eq. 3; PRDC and A2PR keep it) and differ only in the
penalty:

* **TD3+BC**: the behaviour-cloning term averaged over the data at the state, (1/N_s) Σ_{i: s_i = s} (a − a_i)².
* **PRDC** (Ran, Li, Zhang, Zhang, Yu, ICML 2023, §4, eq. 5–6): the *dataset constraint*
  d^β_D(s, a) = min_{(ŝ, â) ∈ D} ‖(β s ⊕ a) − (β ŝ ⊕ â)‖₂, the distance from the state-action point to
  the nearest sample of the whole dataset, with the state scaled by β; the nearest neighbour is found with
  a KD-tree (``scipy.spatial.cKDTree``) built once on the scaled keys β ŝ ⊕ â.
* **A2PR** (Liu, Li, Lan, Gao, Pan, Xu, ICML 2024, §4): each sample (s, a) is regularized toward
  whichever of its dataset action a and a *generated* action ã(s) (the paper's advantage-filtered VAE,
  "EPBL") has the higher advantage, â = ã if A(s, ã) ≥ A(s, a) else a, weighted as in the released
  code by w = 1[A(s, ã) ≥ ε_A] + 1[A(s, a) > ε_A]: penalty (1/N_s) Σ_i w_i (a − â_i)². The advantage is
  A(s, b) = Q(s, b) − V(s) with the released value head's target, V(s) = E_{a∼β(·|s)} Q(s, a) (the TD target of
  the dataset action), here the per-state data average of Q^π(s, a_i). PRDC's released loss is also available
  (``prdc_form="released"``): (a − â_nn)², the squared distance to the nearest sample's action.

The actor-critic is run to its *exact fixed point*: the critic is the exact Q^π of the current policy
(policy evaluation by the core, no function approximation), and the actor step is the exact argmax of the
actor objective over a fine action grid, state by state; iterate until the policy no longer changes. The
continuous-action MDP is a two-endpoint interpolation (derived here, so that Q^π is exact and quadratic
in a): actions a ∈ [−1, 1], P(·|s, a) = ((1 − a)/2) P(·|s, 0) + ((1 + a)/2) P(·|s, 1) and
r(s, a) = ((1 − a)/2) R(s, 0) + ((1 + a)/2) R(s, 1) − c a², from a two-action :class:`~rlref.TabularMDP`.
Then Q^π(s, a) = ((1 − a)/2) q^π(s, 0) + ((1 + a)/2) q^π(s, 1) − c a² with q^π = R + γ P V^π, and the
unregularized greedy action is clip((q(s,1) − q(s,0)) / (4c), −1, 1).

The generator ã(s) of A2PR is, in the paper, a conditional VAE trained on the samples with A(s, a) > ε_A.
:func:`epbl_actions` is its stand-in here (derived here): the Gaussian-kernel (in state position) average of
the dataset actions whose advantage exceeds ε_A — the mean of the advantage-filtered behaviour, smoothed
across nearby states as a VAE's decoder generalizes.

References: Ran et al. (2023), "Policy Regularization with Dataset Constraint for Offline RL", ICML, eq. 5–6;
Liu et al. (2024), "Adaptive Advantage-Guided Policy Regularization for Offline RL", ICML, §4 (eq. 6–8);
Fujimoto & Gu (2021), "A Minimalist Approach to Offline RL" (TD3+BC), eq. 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from rlref._checks import as_float_array, check_at_least, check_choice, check_count, check_finite, check_positive
from rlref.mdp import TabularMDP
from rlref.solve.evaluation import evaluate_values

__all__ = [
    "ContinuousActionMDP",
    "line_model",
    "OfflineDataset",
    "ContinuousEvaluation",
    "OfflineFixedPoint",
    "METHODS",
    "PRDC_FORMS",
    "evaluate_actions",
    "q_at",
    "optimal_actions",
    "nearest_neighbour",
    "dataset_distance",
    "epbl_actions",
    "actor_objective",
    "offline_fixed_point",
]

METHODS = ("none", "bc", "td3bc", "prdc", "a2pr")
PRDC_FORMS = ("distance", "released")


@dataclass(frozen=True, eq=False)
class ContinuousActionMDP:
    """A continuous-action MDP interpolating a two-action tabular MDP (derived here).

    Action a ∈ [−1, 1]: P(·|s, a) = w₀ P(·|s, 0) + w₁ P(·|s, 1), r(s, a) = w₀ R(s, 0) + w₁ R(s, 1) − c a²,
    with w₀ = (1 − a)/2, w₁ = (1 + a)/2. ``positions[s]`` (shape (S,) or (S, d)) embeds the states for
    PRDC's nearest-neighbour search.
    """

    base: TabularMDP
    action_cost: float
    positions: np.ndarray

    def __post_init__(self) -> None:
        if self.base.num_actions != 2 or self.base.horizon is not None:
            raise ValueError(f"base must be a discounted TabularMDP with 2 actions (the endpoints a=-1, a=+1); "
                             f"got A={self.base.num_actions}, horizon={self.base.horizon}")
        object.__setattr__(self, "action_cost", check_positive("action_cost", self.action_cost))
        pos = as_float_array("positions", self.positions, ndim=(1, 2))
        check_finite("positions", pos)
        if pos.shape[0] != self.base.num_states:
            raise ValueError(f"positions must have one row per state (S={self.base.num_states}); got shape {pos.shape}")
        object.__setattr__(self, "positions", pos.reshape(pos.shape[0], -1))

    @property
    def S(self) -> int:
        return self.base.num_states


def line_model(num_states: int = 7, gamma: float = 0.9, action_cost: float = 0.3) -> ContinuousActionMDP:
    """The line of S states as a :class:`ContinuousActionMDP` (the instance of the PRDC/A2PR reproduction, derived here).

    Endpoints: a = −1 moves left, a = +1 right (deterministic, clipped at the ends); R(s, ·) = 1[s = S − 1] for both
    endpoints, so r(s, a) = 1[s = S − 1] − c a²; μ0 = the point mass on state 0; positions[s] = s/(S − 1) on [0, 1].
    Raises ValueError if num_states < 2, gamma is not in [0, 1) or action_cost <= 0.
    """
    S = check_count("num_states", num_states, 2)
    P = np.zeros((S, 2, S))
    for s in range(S):
        P[s, 0, max(s - 1, 0)] = 1.0
        P[s, 1, min(s + 1, S - 1)] = 1.0
    R = np.zeros((S, 2))
    R[S - 1] = 1.0
    return ContinuousActionMDP(TabularMDP(P, R, gamma=gamma, mu0=np.eye(S)[0], name="line"), action_cost, np.arange(S) / (S - 1))


@dataclass(frozen=True, eq=False)
class OfflineDataset:
    """State indices ``states[i]`` and continuous actions ``actions[i]`` ∈ [−1, 1] of N samples."""

    states: np.ndarray
    actions: np.ndarray
    num_states: int

    def __post_init__(self) -> None:
        n_s = check_count("num_states", self.num_states)
        s = np.asarray(self.states)
        a = as_float_array("actions", self.actions, ndim=1)
        if s.ndim != 1 or s.size == 0:
            raise ValueError(f"states must be a non-empty 1-d array of state indices; got shape {s.shape} (an empty dataset?)")
        if not np.issubdtype(s.dtype, np.integer):
            raise ValueError(f"states must be integer state indices; got dtype {s.dtype}")
        if a.shape != s.shape:
            raise ValueError(f"actions must have the shape of states {s.shape}; got {a.shape}")
        check_finite("actions", a)
        bad = np.flatnonzero((s < 0) | (s >= n_s))
        if bad.size:
            raise ValueError(f"states[{bad[0]}] = {s[bad[0]]} is not a state index in [0, {n_s})")
        bad = np.flatnonzero(np.abs(a) > 1.0)
        if bad.size:
            raise ValueError(f"actions[{bad[0]}] = {float(a[bad[0]])!r} lies outside the action interval [-1, 1]")
        object.__setattr__(self, "states", s.astype(np.int64))
        object.__setattr__(self, "actions", a)

    @property
    def size(self) -> int:
        return int(self.states.size)


@dataclass(frozen=True)
class ContinuousEvaluation:
    """Exact V^π(s), the endpoint q^π(s, 0/1) = R + γ P V^π and J = Σ μ0 V^π of a deterministic policy."""

    values: np.ndarray
    q_endpoints: np.ndarray
    objective: float


@dataclass(frozen=True)
class OfflineFixedPoint:
    """The exact fixed point of a regularized actor-critic (critic = exact Q^π, actor = grid argmax).

    ``residual`` is max_s |π_last(s) − π_prev(s)| at the last iteration (0 at a fixed point on the grid);
    ``converged`` when it is at most one grid step (a fixed point, or a 2-cycle between neighbouring grid points
    that brackets the continuous fixed point); ``distance`` the PRDC dataset distance d^β_D(s, π(s)) of each
    state; ``lam`` the λ of the returned policy.
    """

    method: str
    actions: np.ndarray
    values: np.ndarray
    objective: float
    lam: float
    iterations: int
    residual: float
    converged: bool
    distance: np.ndarray = field(repr=False)


def _weights(actions: np.ndarray) -> np.ndarray:
    return np.stack([(1.0 - actions) / 2.0, (1.0 + actions) / 2.0], axis=-1)


def _check_actions(model: ContinuousActionMDP, actions, name: str = "actions") -> np.ndarray:
    a = as_float_array(name, actions, ndim=1)
    check_finite(name, a)
    if a.shape != (model.S,):
        raise ValueError(f"{name} must have shape (S,) = ({model.S},); got {a.shape}")
    bad = np.flatnonzero(np.abs(a) > 1.0)
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] = {float(a[bad[0]])!r} lies outside the action interval [-1, 1]")
    return a


def evaluate_actions(model: ContinuousActionMDP, actions: np.ndarray) -> ContinuousEvaluation:
    """Exact evaluation of the deterministic policy s ↦ actions[s] (derived here).

    V^π = (I − γ P_π)⁻¹ r_π with P_π = Σ_k w_k(π(s)) P(·|s, k) and r_π(s) = Σ_k w_k R(s, k) − c π(s)²; the
    core's policy evaluation on the endpoint mixture with the state reward offset −c π(s)².
    """
    a = _check_actions(model, actions)
    v, q = evaluate_values(model.base, _weights(a), reward_offset=-model.action_cost * a**2)
    return ContinuousEvaluation(values=v, q_endpoints=q, objective=float(model.base.mu0 @ v))


def q_at(model: ContinuousActionMDP, q_endpoints: np.ndarray, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Q(s, a) = ((1 − a)/2) q(s, 0) + ((1 + a)/2) q(s, 1) − c a², broadcast over states/actions."""
    q = q_endpoints[np.asarray(states)]
    a = np.asarray(actions, dtype=float)
    return (1.0 - a) / 2.0 * q[..., 0] + (1.0 + a) / 2.0 * q[..., 1] - model.action_cost * a**2


def optimal_actions(model: ContinuousActionMDP, tol: float = 1e-12, max_iter: int = 1000) -> OfflineFixedPoint:
    """The true optimum by policy iteration with the closed-form greedy step (derived here).

    Greedy: argmax_{a ∈ [−1, 1]} Q(s, a) = clip((q(s, 1) − q(s, 0)) / (4c), −1, 1) (Q is a concave quadratic).
    Stops when the policy moves by ≤ tol. References: Howard's policy iteration, Puterman (1994), §6.4.
    """
    check_positive("tol", tol)
    check_count("max_iter", max_iter)
    a = np.zeros(model.S)
    res = np.inf
    it = 0
    while it < max_iter:
        it += 1
        ev = evaluate_actions(model, a)
        new = np.clip((ev.q_endpoints[:, 1] - ev.q_endpoints[:, 0]) / (4.0 * model.action_cost), -1.0, 1.0)
        res, a = float(np.max(np.abs(new - a))), new
        if res <= tol:
            break
    ev = evaluate_actions(model, a)
    return OfflineFixedPoint(method="optimal", actions=a, values=ev.values, objective=ev.objective, lam=np.inf, iterations=it,
                             residual=res, converged=res <= tol, distance=np.full(model.S, np.nan))


def _keys(positions: np.ndarray, actions: np.ndarray, beta: float) -> np.ndarray:
    return np.concatenate([beta * positions, np.asarray(actions, dtype=float).reshape(-1, 1)], axis=1)


def nearest_neighbour(model: ContinuousActionMDP, data: OfflineDataset, states: np.ndarray, actions: np.ndarray,
                      beta: float) -> tuple[np.ndarray, np.ndarray]:
    """PRDC's dataset constraint by KD-tree: (d^β_D(s, a), index of the nearest sample) for each query.

    d^β_D(s, a) = min_{(ŝ, â) ∈ D} ‖(β x_s ⊕ a) − (β x_ŝ ⊕ â)‖₂, x = model.positions. The tree is built on the N
    keys (O(N log N)); each query is O(log N) on average. References: Ran et al. (2023), eq. 5.
    """
    beta = check_at_least("beta", beta, 0.0, "the state scale of the dataset constraint")
    s = np.asarray(states)
    a = np.asarray(actions, dtype=float)
    if s.shape != a.shape:
        raise ValueError(f"states and actions must have the same shape; got {s.shape} and {a.shape}")
    tree = cKDTree(_keys(model.positions[data.states], data.actions, beta))
    dist, idx = tree.query(_keys(model.positions[s.ravel()], a.ravel(), beta))
    return dist.reshape(s.shape), idx.reshape(s.shape)


def dataset_distance(model: ContinuousActionMDP, data: OfflineDataset, actions: np.ndarray, beta: float) -> np.ndarray:
    """d^β_D(s, π(s)) at every state s for the deterministic policy ``actions``."""
    return nearest_neighbour(model, data, np.arange(model.S), _check_actions(model, actions), beta)[0]


def epbl_actions(model: ContinuousActionMDP, data: OfflineDataset, advantages: np.ndarray, eps_adv: float = 0.0,
                 bandwidth: float = 0.1, fallback: np.ndarray | None = None) -> np.ndarray:
    """Stand-in for A2PR's advantage-filtered VAE (EPBL; derived here): the generated action of each state.

    ã(s) = Σ_i k(x_s, x_{s_i}) 1[A_i > ε_A] a_i / Σ_i k(x_s, x_{s_i}) 1[A_i > ε_A], k Gaussian with the given
    bandwidth in state position. ``advantages[i]`` = A(s_i, a_i). A state whose kernel mass on positive-advantage
    samples underflows gets ``fallback[s]`` (default: the plain kernel mean of all actions).
    References: Liu et al. (2024), §4.1 (the VAE trained on 1[A(s, a) > ε_A]-filtered samples).
    """
    adv = as_float_array("advantages", advantages, ndim=1)
    if adv.shape != data.actions.shape:
        raise ValueError(f"advantages must have one entry per sample ({data.size}); got shape {adv.shape}")
    check_finite("advantages", adv)
    bandwidth = check_positive("bandwidth", bandwidth)
    d2 = ((model.positions[:, None, :] - model.positions[data.states][None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / (2.0 * bandwidth**2))
    kf = k * (adv > eps_adv)[None, :]
    mass = kf.sum(1)
    mean_all = (k @ data.actions) / k.sum(1)
    fb = mean_all if fallback is None else _check_actions(model, fallback, "fallback")
    with np.errstate(invalid="ignore", divide="ignore"):
        gen = np.where(mass > 1e-300, (kf @ data.actions) / np.where(mass > 1e-300, mass, 1.0), fb)
    return np.clip(gen, -1.0, 1.0)


def _per_state(data: OfflineDataset, S: int) -> list[np.ndarray]:
    order = np.argsort(data.states, kind="stable")
    bounds = np.searchsorted(data.states[order], np.arange(S + 1))
    return [order[bounds[s]:bounds[s + 1]] for s in range(S)]


def actor_objective(model: ContinuousActionMDP, data: OfflineDataset, q_endpoints: np.ndarray, grid: np.ndarray, method: str,
                    lam: float, beta: float = 2.0, targets: list[np.ndarray] | None = None,
                    active: list[np.ndarray] | None = None, prdc_form: str = "distance") -> np.ndarray:
    """The actor objective λ Q(s, a) − penalty(s, a) on an action grid, shape (S, len(grid)).

    method "none": λQ; "bc": −(1/N_s) Σ_i (a − a_i)²; "td3bc": λQ − (1/N_s) Σ_i (a − a_i)²; "prdc": λQ − d^β_D(s, a);
    "a2pr": λQ − (1/N_s) Σ_i active_i (a − targets_i)² (targets/active per state, from :func:`offline_fixed_point`).
    """
    method = check_choice("method", method, METHODS)
    prdc_form = check_choice("prdc_form", prdc_form, PRDC_FORMS)
    S, g = model.S, np.asarray(grid, dtype=float)
    states = np.repeat(np.arange(S), g.size).reshape(S, g.size)
    acts = np.broadcast_to(g, (S, g.size))
    value = lam * q_at(model, q_endpoints, states, acts) if method != "bc" else np.zeros((S, g.size))
    if method == "prdc":
        dist, idx = nearest_neighbour(model, data, states, acts, beta)
        value = value - (dist if prdc_form == "distance" else (acts - data.actions[idx]) ** 2)
    elif method in ("bc", "td3bc", "a2pr"):
        groups = _per_state(data, S)
        for s in range(S):
            if groups[s].size == 0:
                raise ValueError(f"method {method!r} needs data at every state: state {s} has no sample in the dataset")
            if method == "a2pr":
                t, w = targets[s], active[s].astype(float)
            else:
                t, w = data.actions[groups[s]], np.ones(groups[s].size)
            value[s] -= ((g[:, None] - t[None, :]) ** 2 * w[None, :]).mean(1)
    return value


def offline_fixed_point(model: ContinuousActionMDP, data: OfflineDataset, method: str, alpha: float = 2.5, beta: float = 2.0,
                        eps_adv: float = 0.0, bandwidth: float = 0.1, grid_size: int = 401, max_iter: int = 2000,
                        init: np.ndarray | None = None, step: float | None = None, prdc_form: str = "distance") -> OfflineFixedPoint:
    """Run the regularized actor-critic to its exact fixed point (critic exact, actor = grid argmax).

    π_{k+1}(s) = argmax_{a ∈ grid} λ_k Q^{π_k}(s, a) − penalty_k(s, a),  λ_k = α / ((1/N) Σ_i |Q^{π_k}(s_i, π_k(s_i))|),
    with the penalty of ``method`` (see :func:`actor_objective`); for A2PR the per-sample target is
    â_i = ã(s_i) if A(s_i, ã) ≥ A(s_i, a_i) else a_i with ã from :func:`epbl_actions` (recomputed each iteration),
    weight w_i = 1[A(s_i, ã) ≥ ε_A] + 1[A(s_i, a_i) > ε_A], A(s, b) = Q^{π_k}(s, b) − (1/N_s) Σ_{j: s_j = s} Q^{π_k}(s, a_j).
    ``step`` (optional) restricts each actor step to |a − π_k(s)| ≤ step (a gradient actor's trust region).
    Starts from ``init`` (default: behaviour cloning, the per-state data mean). Stops when the grid policy repeats.

    Raises ValueError on an unknown method, alpha ≤ 0, beta < 0, an empty dataset (at construction) or a state
    without data for the per-state penalties (bc, td3bc, a2pr).
    References: Ran et al. (2023), eq. 6; Liu et al. (2024), eq. 8; Fujimoto & Gu (2021), eq. 3.
    """
    method = check_choice("method", method, METHODS)
    alpha = check_positive("alpha", alpha)
    beta = check_at_least("beta", beta, 0.0, "the state scale of the dataset constraint")
    if data.num_states != model.S:
        raise ValueError(f"data.num_states = {data.num_states} does not match the MDP's S = {model.S}")
    grid = np.linspace(-1.0, 1.0, check_count("grid_size", grid_size, minimum=3))
    if step is not None:
        step = check_positive("step", step)
    groups = _per_state(data, model.S)
    if init is None:
        a = np.array([data.actions[g].mean() if g.size else 0.0 for g in groups])
    else:
        a = _check_actions(model, init, "init")
    a = grid[np.abs(grid[None, :] - a[:, None]).argmin(1)]
    res, lam, seen = np.inf, 0.0, {a.tobytes()}
    it, max_iter = 0, check_count("max_iter", max_iter)
    while it < max_iter:
        it += 1
        ev = evaluate_actions(model, a)
        q_pi = q_at(model, ev.q_endpoints, data.states, a[data.states])
        scale = float(np.mean(np.abs(q_pi)))
        lam = alpha / scale if scale > 0 else alpha
        targets = active = None
        if method == "a2pr":
            q_data = q_at(model, ev.q_endpoints, data.states, data.actions)
            v_beh = np.array([q_data[g].mean() if g.size else 0.0 for g in groups])[data.states]
            adv_data = q_data - v_beh
            gen = epbl_actions(model, data, adv_data, eps_adv, bandwidth, fallback=a)[data.states]
            adv_gen = q_at(model, ev.q_endpoints, data.states, gen) - v_beh
            tgt = np.where(adv_gen >= adv_data, gen, data.actions)
            w = (adv_gen >= eps_adv).astype(float) + (adv_data > eps_adv).astype(float)
            targets, active = [tgt[g] for g in groups], [w[g] for g in groups]
        obj = actor_objective(model, data, ev.q_endpoints, grid, method, lam, beta, targets, active, prdc_form)
        if step is not None:  # the trust region of a gradient actor: only actions within `step` of π_k(s)
            obj = np.where(np.abs(grid[None, :] - a[:, None]) <= step + 1e-12, obj, -np.inf)
        new = grid[obj.argmax(1)]
        res, a = float(np.max(np.abs(new - a))), new
        if res == 0.0 or a.tobytes() in seen:  # a fixed point, or a cycle on the finite grid (reported by residual)
            break
        seen.add(a.tobytes())
    ev = evaluate_actions(model, a)
    scale = float(np.mean(np.abs(q_at(model, ev.q_endpoints, data.states, a[data.states]))))
    lam = alpha / scale if scale > 0 else alpha
    converged = res <= (grid[1] - grid[0]) * (1 + 1e-9)  # a fixed point, or a 2-cycle between neighbouring grid points
    return OfflineFixedPoint(method=method, actions=a, values=ev.values, objective=ev.objective, lam=lam, iterations=it,
                             residual=res, converged=converged, distance=dataset_distance(model, data, a, beta))
