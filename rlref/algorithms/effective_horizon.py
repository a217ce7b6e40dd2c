"""The effective horizon: k-QVI, k-QVI-solvability, the effective horizon bound, GORP and SQIRL.

Laidlaw, Russell & Dragan (2023) observe that many MDPs are solved by acting greedily on a few steps
of value iteration applied to the *random* policy's Q-function. On a finite-horizon MDP with stages
h = 0, …, T−1 and A actions (π_rand uniform):

    k-QVI:   Q¹ = Q^{π_rand},   Q^{j+1}_h(s, a) = r_h(s, a) + γ Σ_{s'} P_h(s'|s, a) max_{a'} Q^j_{h+1}(s', a'),  Q^j_T = 0.

The MDP is **k-QVI-solvable** if every policy greedy for Q^k is optimal. Since Q^T = Q*, every MDP
is T-QVI-solvable. GORP ("greedy over random policy", deterministic MDPs) learns the policy one stage
at a time: at stage i it estimates, by m random rollouts each, the value of all A^k action sequences
a_{i:i+k} (the Q^k of the sequence's leaf backed up along deterministic transitions) and fixes a_i to
the first action of the best sequence. The **effective horizon** (their Theorem 5.4, with the
constants of the authors' ``compute_simple_effective_horizon``) is

    H = min_k H_k,   H_k = k + log_A m_k,   m_k = max_{(h, s)} max(1, ⌈16 σ²_k(h, s) / Δ_k(h, s)² · ln(2 T A^k)⌉),

over the states (h, s) that GORP can reach (following actions whose Q^k beats every suboptimal
action's), where Δ_k(h, s) = max_a Q^k_h(s, a) − max_{a suboptimal} Q^k_h(s, a) is the gap of Q^k
between the optimal and the suboptimal actions (a suboptimal action has Q*_h(s, a) < V*_h(s)), and
σ²_k(h, s) bounds the variance of a random rollout's return at the leaves of the depth-k search tree
under (h, s): the maximum, over leaves (h + k − 1, s', a') reachable by k − 1 actions, of the
variance of the return of π_rand from (s', a'). ``variance="exact"`` uses that variance (computed
exactly by a second-moment recursion); ``variance="range"`` uses the authors' code's bound
(Q^rand − Q^worst)(Q* − Q^worst) ≥ Var (Bhatia–Davis; valid on deterministic MDPs, where Q* and
Q^worst are the largest and smallest possible returns — not in general on stochastic ones). H_k = ∞ where the MDP is not k-QVI-solvable
(where Q^k ties a suboptimal action with the best one), and H ≤ T (at k = T the leaves are terminal,
σ² = 0 and m_T = 1).

SQIRL (Laidlaw, Zhu, Russell & Dragan 2024, Algorithm 1) generalizes GORP to stochastic MDPs: at
stage i it collects m episodes that follow the frozen π_0, …, π_{i−1} and then act at random,
regresses Q̂¹_t on the Monte-Carlo returns from (t, s_t, a_t) for t ≥ i, runs k − 1 steps of fitted-Q
iteration Q̂^{j+1}_t ← regress r_t + max_{a'} Q̂^j_{t+1}(s_{t+1}, a'), and freezes π_i greedy for Q̂^k_i.
Here the regression oracle is tabular least squares (the per-(t, s, a) sample mean) — the exact
minimizer of the squared loss over all tabular functions. Tabular ε-greedy Q-learning
(Watkins & Dayan 1992; finite horizon, learning rate 1/n) is the deep-RL stand-in baseline.

The effective horizon is defined by the papers for deterministic MDPs (Theorem 5.4 is for GORP);
for a stochastic MDP this module applies the same formula with exact variances including the
transition noise and with the maximum over next states in the support — derived here, not the
stochastic paper's definition (which we could not read; see docs/effective-horizon.md).

References: Laidlaw, Russell & Dragan (2023), "Bridging RL Theory and Practice with the Effective
Horizon", NeurIPS, Def. 5.1 (k-QVI-solvable), Alg. 1 (GORP), Thm. 5.4 (effective horizon), and
``EffectiveHorizon.jl/src/gorp_bounds.jl`` in cassidylaidlaw/effective-horizon; Laidlaw, Zhu,
Russell & Dragan (2024), "The Effective Horizon Explains Deep RL Performance in Stochastic
Environments", ICLR, Alg. 1 (SQIRL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rlref._checks import as_generator, check_choice, check_count, check_positive, check_probability
from rlref.algorithms._mdp_checks import check_finite_horizon
from rlref.algorithms.sampling import inverse_cdf_sample, random_argmax
from rlref.mdp import TabularMDP
from rlref.policy import uniform_policy
from rlref.solve import policy_evaluation, q_values, value_iteration

__all__ = [
    "EffectiveHorizonResult",
    "GORPResult",
    "SQIRLResult",
    "QLearningResult",
    "random_policy_q",
    "k_qvi",
    "worst_q",
    "random_return_variance",
    "greedy_reachable",
    "is_k_qvi_solvable",
    "min_qvi_k",
    "effective_horizon",
    "gorp",
    "sqirl",
    "q_learning",
    "is_optimal_policy",
]


# ------------------------------------------------------------------------------------ results
@dataclass(frozen=True, eq=False)
class EffectiveHorizonResult:
    """The effective horizon H = min_k H_k and its ingredients for k = 1, …, max_k.

    Attributes:
      effective_horizon: H = min_k H_k (≤ T when max_k = T).
      k: the k attaining the minimum.
      ks: the k's tried, shape (K,).
      horizons: H_k = k + log_A m_k (∞ where the MDP is not k-QVI-solvable), shape (K,).
      m: m_k (0 where not k-QVI-solvable), shape (K,).
      gaps: Δ_k at the state attaining m_k (nan where not solvable), shape (K,).
      variances: σ²_k at that state, shape (K,).
      solvable: whether the MDP is k-QVI-solvable, shape (K,).
      min_k: the smallest k-QVI-solvable k among those tried (None if none).
      variance: "exact" or "range".
    """

    effective_horizon: float
    k: int
    ks: np.ndarray
    horizons: np.ndarray
    m: np.ndarray
    gaps: np.ndarray
    variances: np.ndarray
    solvable: np.ndarray
    min_k: int | None
    variance: str


@dataclass(frozen=True, eq=False)
class GORPResult:
    """One GORP run: the open-loop action sequence, its policy, the samples it used.

    Attributes:
      actions: a_0, …, a_{T−1}, shape (T,).
      policy: the staged policy π[h, s, a] = 1[a = a_h] (open loop), shape (T, S, A).
      timesteps: environment steps simulated (each episode from stage 0 until the end or a terminal state).
      episodes: episodes simulated (T · A^k · m at most).
    """

    actions: np.ndarray
    policy: np.ndarray
    timesteps: int
    episodes: int


@dataclass(frozen=True, eq=False)
class SQIRLResult:
    """One SQIRL run.

    Attributes:
      policy: the frozen staged policy π[h, s, a] (greedy for Q̂^k_h, uniform over ties and over
        actions never tried at a state seen, uniform at unseen states), shape (T, S, A).
      q: Q̂^k_h at each stage h (as estimated at iteration h; nan where (s, a) had no data), shape (T, S, A).
      timesteps: environment steps simulated.
      episodes: episodes simulated (T · m).
    """

    policy: np.ndarray
    q: np.ndarray
    timesteps: int
    episodes: int


@dataclass(frozen=True, eq=False)
class QLearningResult:
    """One tabular Q-learning run.

    Attributes:
      policy: the greedy staged policy for the final Q (uniform over ties), shape (T, S, A).
      q: the final Q[h, s, a], shape (T, S, A).
      timesteps: environment steps simulated.
      episodes: episodes simulated.
      checkpoint_policies: the greedy policy after each requested checkpoint (episode count), shape (C, T, S, A).
      checkpoint_timesteps: the environment steps simulated by each checkpoint, shape (C,).
    """

    policy: np.ndarray
    q: np.ndarray
    timesteps: int
    episodes: int
    checkpoint_policies: np.ndarray
    checkpoint_timesteps: np.ndarray


# ------------------------------------------------------------------------------------ checks
def _check_mdp(mdp: TabularMDP) -> TabularMDP:
    check_finite_horizon(mdp, "the effective horizon is defined for episodic MDPs")
    return mdp


def _check_k(mdp: TabularMDP, k: int, name: str = "k") -> int:
    k = check_count(name, k)
    if k > mdp.horizon:
        raise ValueError(f"{name} must lie in [1, T] = [1, {mdp.horizon}], got {k}")
    return k


def _support(mdp: TabularMDP, h: int) -> sp.csr_matrix:
    """The 0/1 support of P_h as a CSR matrix of shape (S·A, S)."""
    M = mdp.transition_matrix(h if mdp.is_stage_dependent else None)
    M = sp.csr_matrix(M, copy=True)
    M.eliminate_zeros()
    return sp.csr_matrix((np.ones_like(M.data), M.indices, M.indptr), shape=M.shape)


def _stage(mdp: TabularMDP, h: int) -> int | None:
    return h if mdp.is_stage_dependent else None


# ------------------------------------------------------------------------------------ k-QVI
def random_policy_q(mdp: TabularMDP) -> np.ndarray:
    """Q^{π_rand}_h(s, a) of the uniformly random policy, shape (T, S, A) (exact, by :func:`rlref.solve.policy_evaluation`).

    References: Laidlaw, Russell & Dragan (2023), §5 (Q¹ = Q^{π_rand}).
    """
    mdp = _check_mdp(mdp)
    return policy_evaluation(mdp, uniform_policy(mdp)).q


def k_qvi(mdp: TabularMDP, k: int) -> np.ndarray:
    """Q^k of k-QVI: Q¹ = Q^{π_rand}, Q^{j+1}_h = r_h + γ P_h max_{a'} Q^j_{h+1}, shape (T, S, A).

    Each step is one hard Bellman backup of the stage-indexed Q (by :func:`rlref.solve.q_values`);
    Q^T = Q* (after T − 1 backups every stage's value is the optimal one).
    Raises ValueError if k ∉ [1, T] or the MDP is not finite-horizon.
    References: Laidlaw, Russell & Dragan (2023), Def. 5.1.
    """
    mdp = _check_mdp(mdp)
    k = _check_k(mdp, k)
    q = random_policy_q(mdp)
    for _ in range(k - 1):
        q = q_values(mdp, q.max(axis=-1))
    return q


def worst_q(mdp: TabularMDP) -> np.ndarray:
    """Q^worst_h(s, a) = r_h + γ P_h min_{a'} Q^worst_{h+1}: the value of the worst continuation, shape (T, S, A).

    Computed as −Q* of the MDP with negated rewards (by :func:`rlref.solve.value_iteration`).
    """
    mdp = _check_mdp(mdp)
    R = mdp.R if not sp.issparse(mdp.R) else mdp.R.toarray()
    neg = TabularMDP(P=mdp.P, R=-np.asarray(R), gamma=mdp.gamma, horizon=mdp.horizon, mu0=mdp.mu0,
                     terminal=mdp.terminal, name=f"-{mdp.name}", reward_axes=mdp.reward_axes)
    return -value_iteration(neg).q


def _reward_moments(mdp: TabularMDP, h: int, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """E[(r + γ G')²] for G' with mean v(s') and second moment w(s') at the next state, shape (S, A)."""
    g = mdp.gamma
    st = _stage(mdp, h)
    if mdp.reward_axes in ("sa", "hsa"):
        r = mdp.reward(st)
        return r**2 + 2 * g * r * mdp.expected_next(v, st) + g**2 * mdp.expected_next(w, st)
    R = np.asarray(mdp.R[h] if mdp.reward_axes == "hsas" else mdp.R)
    S, A = mdp.num_states, mdp.num_actions
    P = np.asarray(sp.csr_matrix(mdp.transition_matrix(st)).toarray()).reshape(S, A, S)
    return np.einsum("sat,sat->sa", P, (R + g * v[None, None, :]) ** 2 + g**2 * (w - v**2)[None, None, :])


def random_return_variance(mdp: TabularMDP) -> np.ndarray:
    """Var[G_h | s_h = s, a_h = a] of the return G_h = Σ_{t≥h} γ^{t−h} r_t under π_rand after (s, a), shape (T, S, A).

    Exact second-moment recursion (derived here): with V, Q the random policy's values and
    W_h(s) = E[G_h² | s_h = s] = mean_a M_h(s, a),
        M_h(s, a) = Σ_{s'} P_h(s'|s, a) [(r_h(s, a, s') + γ V_{h+1}(s'))² + γ² (W_{h+1}(s') − V_{h+1}(s')²)],
    Var = M − Q² (clipped at 0 against rounding). Rewards are deterministic given (s, a, s').
    """
    mdp = _check_mdp(mdp)
    T, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
    ev = policy_evaluation(mdp, uniform_policy(mdp))
    var = np.zeros((T, S, A))
    v_next, w_next = np.zeros(S), np.zeros(S)
    for h in range(T - 1, -1, -1):
        M = _reward_moments(mdp, h, v_next, w_next)
        var[h] = np.maximum(M - ev.q[h] ** 2, 0.0)
        v_next, w_next = ev.values[h], M.mean(axis=1)
    return var


def _optimal_actions(q_star: np.ndarray, tol: float) -> np.ndarray:
    return q_star >= q_star.max(axis=-1, keepdims=True) - tol


def greedy_reachable(mdp: TabularMDP, allowed: np.ndarray) -> np.ndarray:
    """Stage-states reachable from μ0 when only ``allowed[h, s, a]`` actions are taken: bool (T, S).

    reach_0 = supp μ0, reach_{h+1}(s') = ∃ (s, a): reach_h(s) ∧ allowed_h(s, a) ∧ P_h(s'|s, a) > 0.
    """
    mdp = _check_mdp(mdp)
    T, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
    allowed = np.asarray(allowed, dtype=bool)
    if allowed.shape != (T, S, A):
        raise ValueError(f"allowed must have shape (T, S, A) = {(T, S, A)}, got {allowed.shape}")
    reach = np.zeros((T, S), dtype=bool)
    reach[0] = np.asarray(mdp.mu0) > 0
    for h in range(T - 1):
        w = (reach[h][:, None] & allowed[h]).astype(float).ravel()
        reach[h + 1] = (_support(mdp, h).T @ w) > 0
    return reach


def is_k_qvi_solvable(mdp: TabularMDP, k: int, tol: float = 1e-9) -> bool:
    """Whether every policy greedy for Q^k is optimal (on the states such policies reach).

    Checks that at every (h, s) reachable under the greedy sets argmax Q^k_h(s, ·) (ties within
    ``tol`` included), each greedy action is optimal: Q*_h(s, a) ≥ V*_h(s) − tol.
    References: Laidlaw, Russell & Dragan (2023), Def. 5.1; the authors' ``calculate_minimum_k``.
    """
    mdp = _check_mdp(mdp)
    k = _check_k(mdp, k)
    q_star = value_iteration(mdp).q
    qk = k_qvi(mdp, k)
    greedy = qk >= qk.max(axis=-1, keepdims=True) - tol
    reach = greedy_reachable(mdp, greedy)
    bad = reach[..., None] & greedy & ~_optimal_actions(q_star, tol)
    return not bool(bad.any())


def min_qvi_k(mdp: TabularMDP, tol: float = 1e-9) -> int:
    """The smallest k such that the MDP is k-QVI-solvable (≤ T, since Q^T = Q*)."""
    mdp = _check_mdp(mdp)
    for k in range(1, mdp.horizon + 1):
        if is_k_qvi_solvable(mdp, k, tol):
            return k
    raise RuntimeError("no k ≤ T is k-QVI-solvable: Q^T should equal Q* (numerical failure)")


def _leaf_max(mdp: TabularMDP, x: np.ndarray) -> np.ndarray:
    """y_h(s, a) = max over s' ∈ supp P_h(·|s, a) of max_{a'} x_{h+1}(s', a') (x ≥ 0); y_{T−1} = x_{T−1}."""
    T, S, A = x.shape
    y = x.copy()
    for h in range(T - 1):
        nxt = x[h + 1].max(axis=1)
        y[h] = np.asarray(_support(mdp, h).multiply(nxt[None, :]).max(axis=1).todense()).reshape(S, A)
    return y


def effective_horizon(mdp: TabularMDP, max_k: int | None = None, variance: str = "exact", tol: float = 1e-9) -> EffectiveHorizonResult:
    """The effective horizon H = min_{k ≤ max_k} (k + log_A m_k) of a finite-horizon MDP (see the module docstring).

    m_k(h, s) = max(1, ⌈16 σ²_k(h, s)/Δ_k(h, s)² · ln(2 T A^k)⌉) at the states GORP can reach with
    Q^k (following actions whose Q^k exceeds every suboptimal action's); m_k is its maximum. The MDP is
    not k-QVI-solvable (H_k = ∞) if at such a state a suboptimal action's Q^k is within ``tol`` of the best.
    ``max_k`` defaults to T (then H ≤ T). ``variance``: "exact" (the variance of a random rollout's
    return at the leaves) or "range" (the authors' bound (Q^rand − Q^worst)(Q* − Q^worst)).

    Raises ValueError if A < 2 (log_A undefined), max_k ∉ [1, T], or variance is unknown.
    References: Laidlaw, Russell & Dragan (2023), Thm. 5.4 and ``compute_simple_effective_horizon``.
    """
    mdp = _check_mdp(mdp)
    T, A = mdp.horizon, mdp.num_actions
    if A < 2:
        raise ValueError(f"the effective horizon needs at least 2 actions (log_A), got A = {A}")
    max_k = T if max_k is None else _check_k(mdp, max_k, "max_k")
    variance = check_choice("variance", variance, ("exact", "range"))
    check_positive("tol", tol)
    ev = policy_evaluation(mdp, uniform_policy(mdp))
    q_star = value_iteration(mdp).q
    if variance == "exact":
        leaf = random_return_variance(mdp)
    else:
        qw = worst_q(mdp)
        leaf = np.maximum((ev.q - qw) * (q_star - qw), 0.0)
    opt = _optimal_actions(q_star, tol)
    q, var = ev.q, leaf
    ks, Hs, ms, gaps, vars_, ok = [], [], [], [], [], []
    for k in range(1, max_k + 1):
        if k > 1:
            q = q_values(mdp, q.max(axis=-1))
            var = _leaf_max(mdp, var)
        best = q.max(axis=-1)
        sub = np.where(opt, -np.inf, q).max(axis=-1)  # -inf where every action is optimal
        allowed = q > sub[..., None] + tol
        reach = greedy_reachable(mdp, allowed)
        gap = best - sub
        works = not bool(np.any(reach & (gap <= tol)))
        ks.append(k)
        ok.append(works)
        if not works:
            Hs.append(np.inf)
            ms.append(0)
            gaps.append(np.nan)
            vars_.append(np.nan)
            continue
        sig = var.max(axis=-1)
        logf = math.log(2 * T) + k * math.log(A)
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.where(np.isinf(gap), 0.0, 16.0 * sig / np.where(np.isinf(gap), 1.0, gap) ** 2 * logf)
        m_hs = np.where(reach, np.maximum(1.0, np.ceil(raw - 1e-9)), 0.0)
        h_, s_ = np.unravel_index(int(np.argmax(m_hs)), m_hs.shape)
        m = int(m_hs[h_, s_])
        ms.append(m)
        gaps.append(float(gap[h_, s_]))
        vars_.append(float(sig[h_, s_]))
        Hs.append(k + math.log(m) / math.log(A))
    Hs_arr = np.array(Hs)
    best_i = int(np.argmin(Hs_arr))
    solv = np.array(ok)
    return EffectiveHorizonResult(
        effective_horizon=float(Hs_arr[best_i]), k=ks[best_i], ks=np.array(ks), horizons=Hs_arr, m=np.array(ms),
        gaps=np.array(gaps), variances=np.array(vars_), solvable=solv,
        min_k=int(ks[int(np.argmax(solv))]) if solv.any() else None, variance=variance,
    )


# ------------------------------------------------------------------------------------ simulation
class _Sampler:
    """Vectorized sampling of s' ~ P_h(·|s, a) and r_h(s, a, s') from the (small) support of each row."""

    def __init__(self, mdp: TabularMDP) -> None:
        S, A = mdp.num_states, mdp.num_actions
        stages = range(mdp.horizon) if mdp.is_stage_dependent else [0]
        self.stationary = not mdp.is_stage_dependent
        self.nxt, self.cdf, self.rew = [], [], []
        for h in stages:
            st = _stage(mdp, h)
            M = sp.csr_matrix(mdp.transition_matrix(st), copy=True)
            M.eliminate_zeros()
            K = int(np.diff(M.indptr).max())
            nxt = np.zeros((S * A, K), dtype=np.int64)
            prob = np.zeros((S * A, K))
            for row in range(S * A):
                lo, hi = M.indptr[row], M.indptr[row + 1]
                nxt[row, : hi - lo] = M.indices[lo:hi]
                nxt[row, hi - lo:] = M.indices[hi - 1]
                prob[row, : hi - lo] = M.data[lo:hi]
            cdf = np.cumsum(prob, axis=1)
            cdf[:, -1] = np.inf
            if mdp.reward_axes in ("sa", "hsa"):
                rew = np.repeat(mdp.reward(st).reshape(S * A, 1), K, axis=1)
            else:
                R = np.asarray(mdp.R[h] if mdp.reward_axes == "hsas" else mdp.R).reshape(S * A, S)
                rew = np.take_along_axis(R, nxt, axis=1)
            self.nxt.append(nxt)
            self.cdf.append(cdf)
            self.rew.append(rew)
        self.A = A
        self.deterministic = all(c.shape[1] == 1 for c in self.cdf)
        self.terminal = np.asarray(mdp.terminal, dtype=bool) if mdp.terminal is not None else np.zeros(S, dtype=bool)
        self.mu0 = np.asarray(mdp.mu0)

    def reset(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(self.mu0.size, size=n, p=self.mu0)

    def step(self, h: int, s: np.ndarray, a: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        i = 0 if self.stationary else h
        row = s * self.A + a
        if self.cdf[i].shape[1] == 1:
            k = np.zeros(row.shape, dtype=np.int64)
        else:
            u = rng.random(row.shape)
            k = inverse_cdf_sample(self.cdf[i][row], u)
        return self.nxt[i][row, k], self.rew[i][row, k]


def is_optimal_policy(mdp: TabularMDP, pi: np.ndarray, tol: float = 1e-6) -> bool:
    """Whether J(π) ≥ J* − tol (exact evaluation; J = Σ_s μ0(s) V_0(s))."""
    return bool(policy_evaluation(mdp, pi).objective >= value_iteration(mdp).objective - tol)


def gorp(mdp: TabularMDP, k: int, m: int, rng: np.random.Generator | None = None, seed: int | None = None) -> GORPResult:
    """GORP (greedy over random policy) on a deterministic MDP with one initial state.

    For i = 0, …, T−1: for every action sequence (a_i, …, a_{i+k'−1}) ∈ A^{k'}, k' = min(k, T − i),
    run m episodes that take the fixed a_0, …, a_{i−1}, then the sequence, then uniformly random
    actions; Q̂(seq) = the mean return Σ_{t ≥ i} γ^{t−i} r_t. Fix a_i = the first action of an
    argmax sequence (ties broken uniformly at random). Episodes stop at a terminal state.

    Raises ValueError if P is not deterministic, μ0 is not a point mass, or k, m are invalid.
    References: Laidlaw, Russell & Dragan (2023), Alg. 1; the authors' ``run_gorp.jl``.
    """
    mdp = _check_mdp(mdp)
    k = _check_k(mdp, k)
    m = check_count("m", m)
    rng = as_generator(rng, seed)
    sim = _Sampler(mdp)
    if not sim.deterministic:
        raise ValueError("gorp needs a deterministic MDP (every P(·|s, a) one-hot); use sqirl for stochastic MDPs")
    if np.count_nonzero(sim.mu0) != 1:
        raise ValueError("gorp needs a single initial state (mu0 a point mass)")
    T, S, A, g = mdp.horizon, mdp.num_states, mdp.num_actions, mdp.gamma
    s0 = int(np.argmax(sim.mu0))
    actions = np.zeros(T, dtype=np.int64)
    steps = episodes = 0
    s_i, prefix_steps = s0, 0
    for i in range(T):
        kk = min(k, T - i)
        seqs = np.array(np.unravel_index(np.arange(A**kk), (A,) * kk)).T  # (A^kk, kk), first action slowest
        n = seqs.shape[0]
        s = np.full((n, m), s_i)
        ret = np.zeros((n, m))
        alive = np.full((n, m), not sim.terminal[s_i])
        live_steps = 0
        for t in range(i, T):
            a = np.broadcast_to(seqs[:, t - i, None], (n, m)) if t - i < kk else rng.integers(A, size=(n, m))
            s2, r = sim.step(t, s, a, rng)
            ret += np.where(alive, g ** (t - i) * r, 0.0)
            live_steps += int(alive.sum())
            alive &= ~sim.terminal[s2]
            s = s2
        episodes += n * m
        steps += live_steps + n * m * prefix_steps
        q_hat = ret.mean(axis=1)
        actions[i] = seqs[int(random_argmax(q_hat, rng, tol=1e-12)), 0]
        if not sim.terminal[s_i]:
            prefix_steps += 1
        s_next, _ = sim.step(i, np.array([s_i]), np.array([actions[i]]), rng)
        s_i = int(s_next[0])
    pi = np.zeros((T, S, A))
    pi[np.arange(T), :, actions] = 1.0
    return GORPResult(actions=actions, policy=pi, timesteps=int(steps), episodes=int(episodes))


def _greedy_staged(q: np.ndarray) -> np.ndarray:
    """Uniform over argmax actions (nan = no data: excluded; all-nan rows uniform)."""
    with np.errstate(invalid="ignore"):
        qq = np.where(np.isnan(q), -np.inf, q)
        best = qq.max(axis=-1, keepdims=True)
        mask = (qq >= best - 1e-12) & np.isfinite(qq)
    mask |= ~mask.any(axis=-1, keepdims=True)
    return mask / mask.sum(axis=-1, keepdims=True)


def _rollout(sim: _Sampler, pi: np.ndarray, n: int, T: int, rng: np.random.Generator, gamma: float):
    """n episodes of the staged policy pi[h, s, a]: states, actions, rewards (T, n) and alive mask (T, n)."""
    s = sim.reset(n, rng)
    states = np.zeros((T, n), dtype=np.int64)
    acts = np.zeros((T, n), dtype=np.int64)
    rews = np.zeros((T, n))
    alive = np.zeros((T, n), dtype=bool)
    live = ~sim.terminal[s]
    for t in range(T):
        a = inverse_cdf_sample(np.cumsum(pi[t][s], axis=1), rng.random(n))
        s2, r = sim.step(t, s, a, rng)
        states[t], acts[t], rews[t], alive[t] = s, a, np.where(live, r, 0.0), live
        live = live & ~sim.terminal[s2]
        s = s2
    return states, acts, rews, alive


def _tabular_mean(states: np.ndarray, acts: np.ndarray, y: np.ndarray, mask: np.ndarray, S: int, A: int) -> np.ndarray:
    """Least-squares fit of a tabular function f(s, a) to targets y: the per-(s, a) mean (nan where no data)."""
    idx = (states * A + acts)[mask]
    tot = np.bincount(idx, weights=y[mask], minlength=S * A)
    cnt = np.bincount(idx, minlength=S * A)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan).reshape(S, A)


def sqirl(mdp: TabularMDP, k: int, m: int, rng: np.random.Generator | None = None, seed: int | None = None) -> SQIRLResult:
    """SQIRL with the tabular least-squares regression oracle (see the module docstring).

    For i = 0, …, T−1: m episodes following π_0..π_{i−1}, then π_rand; Q̂¹_t(s, a) = mean Monte-Carlo
    return G_t from (t, s, a), t ∈ [i, i + k − 1]; Q̂^{j+1}_t(s, a) = mean of r_t + γ max_{a'} Q̂^j_{t+1}(s_{t+1}, a')
    (the max over actions with data; 0 past the horizon or at a terminal state) for j = 1..k−1;
    π_i greedy for Q̂^k_i (uniform over ties, and over all actions at a state without data).

    Raises ValueError if k ∉ [1, T] or m < 1.
    References: Laidlaw, Zhu, Russell & Dragan (2024), Alg. 1 (SQIRL) and the regression oracle of §3.
    """
    mdp = _check_mdp(mdp)
    k = _check_k(mdp, k)
    m = check_count("m", m)
    rng = as_generator(rng, seed)
    sim = _Sampler(mdp)
    T, S, A, g = mdp.horizon, mdp.num_states, mdp.num_actions, mdp.gamma
    pi = np.full((T, S, A), 1.0 / A)
    q_out = np.full((T, S, A), np.nan)
    steps = 0
    for i in range(T):
        states, acts, rews, alive = _rollout(sim, pi, m, T, rng, g)
        steps += int(alive.sum())
        G = np.zeros((T + 1, m))
        for t in range(T - 1, -1, -1):
            G[t] = rews[t] + g * G[t + 1]
        top = min(i + k, T)  # stages i .. top-1 of the search tree
        q = {t: _tabular_mean(states[t], acts[t], G[t], alive[t], S, A) for t in range(i, top)}
        for _ in range(k - 1):
            new = {}
            for t in range(i, top):
                if t + 1 < top:
                    with np.errstate(invalid="ignore"):
                        nq = np.where(np.isnan(q[t + 1]), -np.inf, q[t + 1]).max(axis=1)
                    nq = np.where(np.isfinite(nq), nq, 0.0)
                    nxt_s = states[t + 1]
                    y = rews[t] + g * np.where(alive[t + 1], nq[nxt_s], 0.0)
                    new[t] = _tabular_mean(states[t], acts[t], y, alive[t], S, A)
                else:
                    new[t] = q[t]
            q = new
        q_out[i] = q[i]
        pi[i] = _greedy_staged(q[i])
    return SQIRLResult(policy=pi, q=q_out, timesteps=steps, episodes=T * m)


def q_learning(mdp: TabularMDP, episodes: int, epsilon: float = 0.1, rng: np.random.Generator | None = None,
               seed: int | None = None, checkpoints: tuple[int, ...] = ()) -> QLearningResult:
    """Tabular finite-horizon ε-greedy Q-learning with learning rate 1/n(h, s, a) (Watkins & Dayan 1992).

    Q_h(s, a) ← Q_h(s, a) + (1/n) (r + γ max_{a'} Q_{h+1}(s', a') − Q_h(s, a)), Q_T = 0, Q_h(terminal) = 0,
    Q initialized to 0; the behaviour policy is ε-greedy (uniform over greedy ties). ``checkpoints``:
    episode counts (≤ episodes) after which the greedy policy is recorded (one run, many budgets).
    Raises ValueError if episodes < 1, ε ∉ [0, 1] or a checkpoint is outside [1, episodes].
    References: Watkins & Dayan (1992), "Q-learning"; the tabular baseline of Laidlaw et al. (2023), §6.
    """
    mdp = _check_mdp(mdp)
    episodes = check_count("episodes", episodes)
    eps = check_probability("epsilon", epsilon)
    rng = as_generator(rng, seed)
    sim = _Sampler(mdp)
    T, S, A, g = mdp.horizon, mdp.num_states, mdp.num_actions, mdp.gamma
    cps = sorted({check_count("checkpoints", c) for c in checkpoints})
    if cps and cps[-1] > episodes:
        raise ValueError(f"checkpoints must lie in [1, episodes = {episodes}], got {cps[-1]}")
    Q = np.zeros((T + 1, S, A))
    N = np.zeros((T, S, A))
    steps = 0
    cp_pol, cp_steps = [], []
    for ep in range(episodes):
        s = int(sim.reset(1, rng)[0])
        for t in range(T):
            if sim.terminal[s]:
                break
            if rng.random() < eps:
                a = int(rng.integers(A))
            else:
                a = int(random_argmax(Q[t, s], rng, tol=1e-12))
            s2, r = sim.step(t, np.array([s]), np.array([a]), rng)
            s2, r = int(s2[0]), float(r[0])
            N[t, s, a] += 1
            target = r + (0.0 if sim.terminal[s2] else g * Q[t + 1, s2].max())
            Q[t, s, a] += (target - Q[t, s, a]) / N[t, s, a]
            steps += 1
            s = s2
        if len(cp_pol) < len(cps) and ep + 1 == cps[len(cp_pol)]:
            cp_pol.append(_greedy_staged(Q[:T]))
            cp_steps.append(steps)
    q = Q[:T]
    return QLearningResult(policy=_greedy_staged(q), q=q, timesteps=steps, episodes=episodes,
                           checkpoint_policies=np.array(cp_pol).reshape(len(cp_pol), T, S, A),
                           checkpoint_timesteps=np.array(cp_steps, dtype=np.int64))
