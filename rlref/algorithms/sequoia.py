"""SEQUOIA: Q-learning for coupled restless bandits whose greedy step is a mixed-integer program over the budget set.

Xu, Wilder, Khalil & Tambe (2025), "Reinforcement learning with combinatorial actions for coupled restless bandits",
ICLR, arXiv 2503.01919. SEQUOIA learns Q(s, a) over joint binary actions a ∈ {0, 1}^N and, instead of enumerating
the combinatorial action set, embeds Q(s, ·) in a MIP whose constraints are the budget Σ_i a_i ≤ B; the MIP's
optimum is both the greedy action and the max in the Q-learning target. The paper's Q is a ReLU network encoded in
the MIP; here Q is tabular, and the tabular Q(s, ·) is encoded *exactly* by its multilinear (Möbius) expansion

    Q(s, a) = Σ_{T ⊆ supp(a)} c_T(s),   c_T(s) = Σ_{U ⊆ T} (−1)^{|T|−|U|} Q(s, 1_U),

(every subset of a feasible action is feasible, so all c_T with |T| ≤ B are defined), linearized with one auxiliary
y_T = Π_{i ∈ T} a_i per monomial (y_T ≤ a_i, y_T ≥ Σ_{i∈T} a_i − |T| + 1, 0 ≤ y_T ≤ 1): the MILP

    max  c_∅ + Σ_T c_T y_T   s.t.  Σ_i a_i ≤ B,  a ∈ {0, 1}^N,

solved by ``scipy.optimize.milp`` (HiGHS). Its optimum equals max over the feasible set for every Q (derived here).

Q-learning (synchronous, generative model): every iteration draws one s' ~ P(· | s, a) for every (s, a) and sets
Q ← Q + α_n (r + γ max_{a'} Q(s', a') − Q) with the max from the MIP and the rescaled linear step
α_n = 1 / (1 + (1 − γ) n) (Wainwright 2019). The greedy policy of the final Q is the MIP argmax in every state.

References: Xu et al. (2025), Sec. 4 (SEQUOIA: Q-network + MIP action selection); Watkins & Dayan (1992);
Wainwright (2019), "Stochastic approximation with cone-contractive operators" (rescaled linear step size).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from rlref._checks import as_float_array, as_generator, check_choice, check_count
from rlref.algorithms.sampling import inverse_cdf_sample
from rlref.mdp import TabularMDP

__all__ = ["MIPGreedy", "SequoiaResult", "multilinear_coefficients", "mip_greedy", "brute_force_greedy", "sequoia_q_learning"]


@dataclass(frozen=True)
class MIPGreedy:
    """The MIP greedy step in one state: the arm vector ``action``, its row ``index`` in the action table, the optimal
    objective ``value`` (= Q(s, action)), and HiGHS's ``status`` / ``mip_gap``."""

    action: np.ndarray
    index: int
    value: float
    status: int
    mip_gap: float


@dataclass(frozen=True)
class SequoiaResult:
    """q[s, k] after ``iterations`` synchronous sweeps; ``greedy[s]`` = the MIP-greedy action index; ``mip_calls``;
    ``q_error[n]`` = ‖Q_n − q_ref‖_∞ when a reference Q was given (else empty)."""

    q: np.ndarray
    greedy: np.ndarray
    iterations: int
    mip_calls: int
    q_error: np.ndarray


def _check_actions(actions: np.ndarray, budget: int) -> tuple[np.ndarray, int, int]:
    acts = np.asarray(actions)
    if acts.ndim != 2 or not np.all((acts == 0) | (acts == 1)):
        raise ValueError(f"actions must be a [A, N] table of 0/1 arm vectors, got shape {acts.shape}")
    N = acts.shape[1]
    B = check_count("budget", budget, minimum=0)
    if B > N:
        raise ValueError(f"budget must be at most the number of arms N = {N}, got {budget!r}")
    if np.any(acts.sum(1) > B):
        k = int(np.argmax(acts.sum(1) > B))
        raise ValueError(f"actions[{k}] = {acts[k].tolist()} pulls more than budget = {B} arms")
    return acts.astype(np.int64), N, B


def multilinear_coefficients(q_row: np.ndarray, actions: np.ndarray, budget: int) -> dict[tuple[int, ...], float]:
    """c_T = Σ_{U ⊆ T} (−1)^{|T|−|U|} Q(1_U) for every arm set T with |T| ≤ budget (Möbius inversion on the subset
    lattice); Q(a) = Σ_{T ⊆ supp(a)} c_T for every feasible a. Requires every such arm set in ``actions``.
    Shapes: q_row[k], actions[k, N].
    """
    acts, N, B = _check_actions(actions, budget)
    q = as_float_array("q_row", q_row, ndim=1)
    if q.shape != (acts.shape[0],):
        raise ValueError(f"q_row must have shape ({acts.shape[0]},) to match actions, got {q.shape}")
    index = {tuple(np.flatnonzero(a)): k for k, a in enumerate(acts)}
    coef: dict[tuple[int, ...], float] = {}
    for size in range(B + 1):
        for T in itertools.combinations(range(N), size):
            if T not in index:
                raise ValueError(f"actions must contain every arm set of size ≤ budget; {list(T)} is missing")
            coef[T] = float(sum((-1) ** (size - u) * q[index[U]] for u in range(size + 1) for U in itertools.combinations(T, u)))
    return coef


def mip_greedy(q_row: np.ndarray, actions: np.ndarray, budget: int) -> MIPGreedy:
    """argmax_{a: Σ a_i ≤ B} Q(s, a) as the MILP of the module docstring (HiGHS via scipy.optimize.milp).

    Raises ValueError on a budget larger than the number of arms, RuntimeError if HiGHS does not report optimality.
    References: Xu et al. (2025), Sec. 4 (the MIP greedy step); exact tabular encoding derived here.
    """
    acts, N, B = _check_actions(actions, budget)
    coef = multilinear_coefficients(q_row, acts, B)
    mono = [T for T in coef if len(T) >= 2]
    nv = N + len(mono)
    c = np.zeros(nv)
    for i in range(N):
        c[i] = -coef[(i,)] if (i,) in coef else 0.0
    rows, lo, hi = [np.r_[np.ones(N), np.zeros(len(mono))]], [-np.inf], [float(B)]
    for j, T in enumerate(mono):
        c[N + j] = -coef[T]
        for i in T:  # y_T ≤ a_i
            r = np.zeros(nv)
            r[N + j], r[i] = 1.0, -1.0
            rows.append(r), lo.append(-np.inf), hi.append(0.0)
        r = np.zeros(nv)  # y_T ≥ Σ a_i − |T| + 1
        r[N + j] = 1.0
        r[list(T)] = -1.0
        rows.append(r), lo.append(1.0 - len(T)), hi.append(np.inf)
    integrality = np.r_[np.ones(N), np.zeros(len(mono))]
    res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=integrality, bounds=Bounds(0, 1))
    if res.status != 0 or res.x is None:
        raise RuntimeError(f"MIP greedy step failed: HiGHS status {res.status} ({res.message})")
    a = np.rint(res.x[:N]).astype(np.int64)
    k = int(np.flatnonzero((acts == a).all(1))[0])
    return MIPGreedy(action=a, index=k, value=float(coef[()] - res.fun), status=int(res.status),
                     mip_gap=float(getattr(res, "mip_gap", 0.0) or 0.0))


def brute_force_greedy(q_row: np.ndarray, actions: np.ndarray, budget: int) -> int:
    """The reference: the index of max_k q_row[k] over the rows of ``actions`` with Σ a_i ≤ budget (enumeration)."""
    acts, _, B = _check_actions(actions, budget)
    q = as_float_array("q_row", q_row, ndim=1)
    return int(np.argmax(np.where(acts.sum(1) <= B, q, -np.inf)))


def sequoia_q_learning(mdp: TabularMDP, actions: np.ndarray, budget: int, iterations: int, *,
                       greedy: str = "mip", q_ref: np.ndarray | None = None, rng: np.random.Generator | None = None,
                       seed: int | None = None) -> SequoiaResult:
    """Synchronous Q-learning on the joint restless-bandit MDP with the MIP greedy step (module docstring).

    Shapes: actions[k, N] (the MDP's action k is the arm vector actions[k]); q_ref[s, k] optional (e.g. Q* from value
    iteration) to record ‖Q_n − q_ref‖_∞. ``greedy="enumerate"`` replaces the MIP by enumeration of the action table
    (the reference: same random draws, so the two runs coincide up to solver tolerance).
    Raises ValueError on iterations <= 0, a budget larger than the number of arms, or an action table that does not match the MDP.
    """
    n_it = check_count("iterations", iterations)
    check_choice("greedy", greedy, ("mip", "enumerate"))
    acts, _, B = _check_actions(actions, budget)
    if acts.shape[0] != mdp.A:
        raise ValueError(f"actions has {acts.shape[0]} rows but the MDP has A = {mdp.A} actions")
    g = as_generator(rng, seed)
    P, r, gamma = mdp.dense_P(), mdp.r, mdp.gamma
    S, A = r.shape
    q = np.zeros((S, A))
    cdf = np.cumsum(P, axis=2)
    errs, calls = [], 0
    for n in range(n_it):
        if greedy == "mip":
            vmax = np.array([mip_greedy(q[s], acts, B).value for s in range(S)])
            calls += S
        else:
            vmax = q.max(1)
        nxt = inverse_cdf_sample(cdf, g.random((S, A)))
        q = q + (r + gamma * vmax[nxt] - q) / (1.0 + (1.0 - gamma) * n)
        if q_ref is not None:
            errs.append(float(np.abs(q - q_ref).max()))
    pick = np.array([mip_greedy(q[s], acts, B).index for s in range(S)])
    return SequoiaResult(q=q, greedy=pick, iterations=n_it, mip_calls=calls + S, q_error=np.array(errs))
