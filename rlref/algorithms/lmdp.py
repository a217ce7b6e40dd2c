"""Latent MDPs with context in hindsight: exact belief-state planning and the variance-aware optimistic learner.

Zhou, Wang, Du (2023), "Horizon-Free and Variance-Dependent Reinforcement Learning for Latent
Markov Decision Processes" (ICML 2023, arXiv 2210.11604).

**The model** (the paper's Section 3.1). A latent MDP is M MDPs M_m = (S, A, H, ν_m, P_m, R_m)
over shared states, actions and horizon, with mixing weights w_m > 0, Σ_m w_m = 1. At the start
of an episode a context m ~ w is drawn and hidden; s_1 ~ ν_m; the agent acts for H steps with
deterministic rewards R_m(s, a) ∈ [0, 1]; the paper normalizes so that the total reward of an
episode is at most 1. *Context in hindsight*: m is revealed at the end of the episode.

**Belief-state planning.** Optimal policies are history dependent. For a history
τ_h = (s_1, a_1, …, s_h) the unnormalized belief is ω_m(τ_h) = w_m ν_m(s_1) Π_t P_m(s_{t+1}|s_t, a_t),
and the *alpha vector* α_m(τ_h) is the expected return-to-go in context m of the policy from τ_h.
The optimal policy solves, over histories,

    α^a_m(τ_h) = R_m(s_h, a) + Σ_s' P_m(s'|s_h, a) α_m(τ_h a s'),   a*(τ_h) = argmax_a Σ_m ω_m(τ_h) α^a_m(τ_h),

with α_m(τ_{H+1}) = 0, and V* = Σ_{s_1} Σ_m ω_m(s_1) α_m(s_1). The decision at τ depends on the
history only through (h, s_h, ω/‖ω‖₁), so the recursion is memoized on that key (exact up to the
1e-12 rounding of the key; the planner is still exponential in H in the worst case, as LMDP
planning is hard in general — Kwon et al. 2021).

**The learner** (the paper's model-based framework with the value-optimistic solver; derived
here at the level of detail the tabular code needs). Counts N_m(s, a), N_m(s, a, s') are kept per
context — possible only because the context is revealed in hindsight. The empirical model P̂ is
refreshed when some N_m(s, a) reaches a power of 2 (the doubling schedule), and the policy of
each epoch is the belief-state planner run on P̂ with optimistic, truncated alpha vectors

    α_m(τ) = min{1, R_m(s, a) + P̂_m α_m(τ a ·) + b_m(s, a)},
    b_m(s, a) = c₁ √(𝕍(P̂_m(·|s, a), α_m(τ a ·)) ι / N) + c₂ ι / N,   ι = 2 ln(2 M S A H K / δ),

where 𝕍(p, x) = Σ p x² − (Σ p x)² is the variance of the *next alpha vector* (the variance-aware,
Bernstein-type bonus that makes the regret horizon free), N = max(1, N_m(s, a)), and an unvisited
pair gets α = 1 (the largest total reward). ``bonus="hoeffding"`` replaces b by c₁ √(ι / N)
(range 1, variance-unaware) for comparison; ``bonus="none"`` is the greedy plug-in planner.
The constants c₁, c₂ are parameters (the paper's proof constants are far larger; the defaults
here are scaled down, as is usual in experiments). The weights w and initial laws ν are taken as
known (a simplification: the paper also estimates ν).

Regret after K episodes: Σ_k V* − V^{π_k}, both computed exactly by enumeration of histories; the
paper's Theorem (main upper bound) is Õ(√(Var* M Γ S A K)), only logarithmic in H.

References: Zhou, Wang, Du (2023), arXiv 2210.11604, Sec. 3 (LMDP, alpha vectors, ι), Sec. 4
(model-based framework, value-optimistic solver), main theorem (horizon-free regret);
Kwon, Efroni, Caramanis, Mannor (2021), "RL for Latent MDPs: Regret Guarantees and a Lower Bound"
(LMDP, context in hindsight); Zhang, Ji, Du (2021), "Is RL more difficult than bandits?" (MVP,
doubling and the variance bonus).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rlref._checks import as_distribution, as_float_array, as_generator, check_count, check_nonnegative, check_positive, check_probability

__all__ = ["LatentMDP", "BeliefPlanner", "LMDPLearningResult", "lmdp_belief", "lmdp_plan", "lmdp_policy_value",
           "alpha_variance_bonus", "lmdp_optimistic", "lmdp_max_return", "latent_probe_chain"]

_KEY_DIGITS = 12


@dataclass(frozen=True)
class LatentMDP:
    """A latent MDP: ``weights[m]``, ``nu[m, s]``, ``P[m, s, a, s']``, ``R[m, s, a]`` (deterministic, in [0, 1]), ``horizon``.

    Raises ValueError naming the argument and index for a weight vector, initial law or
    transition row that is not a distribution, a reward outside [0, 1], or mismatched shapes.
    References: Zhou, Wang, Du (2023), Sec. 3.1.
    """

    weights: np.ndarray
    nu: np.ndarray
    P: np.ndarray
    R: np.ndarray
    horizon: int

    def __post_init__(self) -> None:
        w = as_distribution("weights", self.weights, ndim=1)
        P = as_distribution("P", self.P, ndim=4)
        M, S, A, S2 = P.shape
        if S2 != S:
            raise ValueError(f"P must have shape (M, S, A, S); got {P.shape}")
        if w.shape[0] != M:
            raise ValueError(f"weights has {w.shape[0]} entries but P has M = {M} contexts")
        if np.any(w <= 0):
            i = int(np.argmin(w))
            raise ValueError(f"weights[{i}] = {w[i]} must be > 0 (every context has positive weight)")
        nu = as_distribution("nu", self.nu, ndim=2)
        if nu.shape != (M, S):
            raise ValueError(f"nu must have shape (M, S) = {(M, S)}; got {nu.shape}")
        R = as_float_array("R", self.R, ndim=3)
        if R.shape != (M, S, A):
            raise ValueError(f"R must have shape (M, S, A) = {(M, S, A)}; got {R.shape}")
        check_nonnegative("R", R)
        if np.any(R > 1):
            idx = tuple(int(i) for i in np.argwhere(R > 1)[0])
            raise ValueError(f"R{list(idx)} = {R[idx]} must lie in [0, 1]")
        set_ = object.__setattr__
        for name, arr in (("weights", w), ("nu", nu), ("P", P), ("R", R)):
            arr = np.array(arr, dtype=float)
            arr.setflags(write=False)
            set_(self, name, arr)
        set_(self, "horizon", check_count("horizon", self.horizon))

    @property
    def M(self) -> int:
        return self.P.shape[0]

    @property
    def S(self) -> int:
        return self.P.shape[1]

    @property
    def A(self) -> int:
        return self.P.shape[2]


def lmdp_belief(lmdp: LatentMDP, states: list[int], actions: list[int]) -> np.ndarray:
    """Posterior over contexts after a history: b_m ∝ w_m ν_m(s_1) Π_t P_m(s_{t+1}|s_t, a_t).

    ``states`` = [s_1, …, s_h], ``actions`` = [a_1, …, a_{h-1}]. Raises ValueError for a history of
    probability 0 under every context, or indices out of range.
    References: Zhou, Wang, Du (2023), Sec. 3 (the belief over contexts induced by a history).
    """
    if len(states) != len(actions) + 1:
        raise ValueError(f"a history has one more state than actions; got {len(states)} states and {len(actions)} actions")
    for i, s in enumerate(states):
        if not 0 <= int(s) < lmdp.S:
            raise ValueError(f"states[{i}] = {s} is out of range [0, {lmdp.S})")
    for i, a in enumerate(actions):
        if not 0 <= int(a) < lmdp.A:
            raise ValueError(f"actions[{i}] = {a} is out of range [0, {lmdp.A})")
    omega = lmdp.weights * lmdp.nu[:, states[0]]
    for t, a in enumerate(actions):
        omega = omega * lmdp.P[:, states[t], a, states[t + 1]]
    z = omega.sum()
    if z <= 0:
        raise ValueError("the history has probability 0 under every context")
    return omega / z


def _key(h: int, s: int, omega: np.ndarray) -> tuple:
    z = omega.sum()
    return (h, s, tuple(np.round(omega / z, _KEY_DIGITS)), tuple(omega > 0))


@dataclass
class BeliefPlanner:
    """Memoized belief-state planner on a model (P, R) over histories, optionally optimistic.

    ``action(h, s, omega)`` and ``alpha(h, s, omega)`` give the planner's decision and alpha vector
    at any (stage, state, unnormalized belief) — also beliefs the model itself would never reach,
    which is what executing the planned policy in the true LMDP needs. ``bonus(s, a, next_alpha, p)``,
    when given, returns the (M,) bonus from the (M, k) next alpha vectors and the (M, k) model
    probabilities of the k successors; the alpha vectors are then truncated at ``cap``.
    Not a result object (it is mutable: it fills its memo lazily); use :func:`lmdp_plan`.
    """

    P: np.ndarray
    R: np.ndarray
    horizon: int
    bonus: Callable[[int, int, np.ndarray, np.ndarray], np.ndarray] | None = None
    cap: float = math.inf
    tie_tol: float = 1e-12
    _memo: dict = field(default_factory=dict, repr=False)

    def solve(self, h: int, s: int, omega: np.ndarray) -> tuple[np.ndarray, int]:
        """(α(τ), a*(τ)) at stage h (0-based), state s, unnormalized belief ω (M,)."""
        key = _key(h, s, omega)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        alive = omega > 0
        M, A = self.R.shape[0], self.R.shape[2]
        best, best_score, best_alpha = 0, -math.inf, np.zeros(M)
        for a in range(A):
            alpha = self.R[:, s, a].copy()
            if h + 1 < self.horizon:
                nexts = np.nonzero((self.P[alive, s, a, :] > 0).any(axis=0))[0]
                p = self.P[:, s, a, nexts]
                nxt = np.zeros((M, len(nexts)))
                for j, s2 in enumerate(nexts):
                    nxt[:, j] = self.solve(h + 1, int(s2), omega * p[:, j])[0]
                alpha = alpha + np.einsum("mk,mk->m", p, nxt)
                if self.bonus is not None:
                    alpha = alpha + self.bonus(s, a, nxt, p)
            elif self.bonus is not None:
                alpha = alpha + self.bonus(s, a, np.zeros((M, 0)), np.zeros((M, 0)))
            alpha = np.minimum(alpha, self.cap)
            score = float(omega @ alpha)
            if score > best_score + self.tie_tol:
                best, best_score, best_alpha = a, score, alpha
        self._memo[key] = (best_alpha, best)
        return best_alpha, best

    def action(self, h: int, s: int, omega: np.ndarray) -> int:
        return self.solve(h, s, omega)[1]

    def alpha(self, h: int, s: int, omega: np.ndarray) -> np.ndarray:
        return self.solve(h, s, omega)[0]

    @property
    def histories(self) -> int:
        """Number of distinct (stage, state, belief) nodes solved so far."""
        return len(self._memo)


def lmdp_plan(lmdp: LatentMDP) -> tuple[float, BeliefPlanner]:
    """Exact optimal value V* of the LMDP and its belief-state planner (the optimal history-dependent policy).

    V* = Σ_{s_1} Σ_m w_m ν_m(s_1) α*_m(s_1) with the alpha-vector recursion of the module docstring.
    References: Zhou, Wang, Du (2023), Sec. 3 (alpha vectors; the optimal policy of an LMDP).
    """
    planner = BeliefPlanner(P=lmdp.P, R=lmdp.R, horizon=lmdp.horizon)
    value = 0.0
    for s in range(lmdp.S):
        omega = lmdp.weights * lmdp.nu[:, s]
        if omega.sum() > 0:
            value += float(omega @ planner.alpha(0, s, omega))
    return value, planner


def lmdp_policy_value(lmdp: LatentMDP, planner: BeliefPlanner, model_P: np.ndarray | None = None) -> float:
    """Exact value in the true LMDP of the history policy ``planner.action`` whose belief is tracked under ``model_P``.

    V^π = Σ_m w_m E_m[Σ_h R_m(s_h, a_h)], enumerating every history reachable in the true P_m; the
    policy updates its belief with the model ω ← ω ⊙ P̂(s'|s, a) (``model_P`` defaults to the true
    P). When the model gives a reached history probability 0 under every context, the policy's
    belief restarts from the prior weights (a convention derived here; it never happens when
    ``model_P`` is the true P).
    References: Zhou, Wang, Du (2023), Sec. 3 (value of a history-dependent policy).
    """
    Pm = lmdp.P if model_P is None else np.asarray(model_P, dtype=float)
    if Pm.shape != lmdp.P.shape:
        raise ValueError(f"model_P must have shape {lmdp.P.shape}; got {Pm.shape}")
    memo: dict = {}

    def go(h: int, s: int, m: int, omega: np.ndarray) -> float:
        if omega.sum() <= 0:
            omega = lmdp.weights.copy()
        key = (m,) + _key(h, s, omega)
        if key in memo:
            return memo[key]
        a = planner.action(h, s, omega)
        v = float(lmdp.R[m, s, a])
        if h + 1 < lmdp.horizon:
            for s2 in np.nonzero(lmdp.P[m, s, a] > 0)[0]:
                v += float(lmdp.P[m, s, a, s2]) * go(h + 1, int(s2), m, omega * Pm[:, s, a, s2])
        memo[key] = v
        return v

    total = 0.0
    for m in range(lmdp.M):
        for s in np.nonzero(lmdp.nu[m] > 0)[0]:
            total += float(lmdp.weights[m] * lmdp.nu[m, s]) * go(0, int(s), m, lmdp.weights * lmdp.nu[:, s])
    return total


def lmdp_max_return(lmdp: LatentMDP) -> float:
    """max over contexts, reachable paths and actions of the total reward Σ_h R_m(s_h, a_h) (the paper assumes ≤ 1).

    Backward induction of the path maximum: G_h(s) = max_a [R_m(s, a) + max_{s': P_m(s'|s,a) > 0} G_{h+1}(s')].
    References: Zhou, Wang, Du (2023), Sec. 3.1 (total reward bounded by 1).
    """
    best = 0.0
    for m in range(lmdp.M):
        G = np.zeros(lmdp.S)
        for _ in range(lmdp.horizon):
            nxt = np.where(lmdp.P[m] > 0, G[None, None, :], -np.inf).max(axis=2)
            G = (lmdp.R[m] + nxt).max(axis=1)
        best = max(best, float(G[lmdp.nu[m] > 0].max()))
    return best


def alpha_variance_bonus(next_alpha: np.ndarray, p: np.ndarray, n: np.ndarray, iota: float, c1: float, c2: float) -> np.ndarray:
    """b_m = c₁ √(𝕍(p_m, α_m) ι / N_m) + c₂ ι / N_m, 𝕍(p, x) = Σ p x² − (Σ p x)², N_m = max(1, n_m).

    Shapes: next_alpha[m, k], p[m, k] (model probabilities of the k successors), n[m] -> [m].
    References: Zhou, Wang, Du (2023), Sec. 4 (the variance of alpha vectors in the bonus);
    Zhang, Ji, Du (2021), MVP bonus.
    """
    mean = np.einsum("mk,mk->m", p, next_alpha)
    var = np.maximum(np.einsum("mk,mk->m", p, next_alpha ** 2) - mean ** 2, 0.0)
    N = np.maximum(n, 1.0)
    return c1 * np.sqrt(var * iota / N) + c2 * iota / N


def _doubling_level(n: np.ndarray) -> np.ndarray:
    """-1 for n = 0, else ⌊log₂ n⌋ (the epoch index of a count under the doubling schedule)."""
    return np.where(n > 0, np.floor(np.log2(np.maximum(n, 1.0))), -1.0)


@dataclass(frozen=True)
class LMDPLearningResult:
    """The learner's run: per-episode exact regret V* − V^{π_k}, its cumulative sum, the epochs.

    Attributes:
      regret: (K,) V* − V^{π_k} ≥ 0 (exact, enumeration of histories).
      cumulative: (K,) running sum of ``regret``.
      optimal_value: V* of the true LMDP.
      epoch_starts: episodes at which the model (and the policy) were refreshed.
      bonus: "bernstein", "hoeffding" or "none".
    """

    regret: np.ndarray
    cumulative: np.ndarray
    optimal_value: float
    epoch_starts: tuple[int, ...]
    bonus: str


def lmdp_optimistic(lmdp: LatentMDP, episodes: int, *, bonus: str = "bernstein", c1: float = 0.5, c2: float = 0.5,
                    delta: float = 0.1, rng: np.random.Generator | None = None, seed: int | None = None) -> LMDPLearningResult:
    """Run the value-optimistic LMDP learner with context in hindsight for K = ``episodes`` episodes.

    See the module docstring for the algorithm (counts per revealed context, doubling schedule,
    belief-state planning on P̂ with truncated optimistic alpha vectors). Raises ValueError for
    episodes < 1, an unknown ``bonus``, c₁, c₂ < 0 or δ outside (0, 1).
    References: Zhou, Wang, Du (2023), arXiv 2210.11604, Sec. 4 (algorithm), main theorem.
    """
    K = check_count("episodes", episodes)
    if bonus not in ("bernstein", "hoeffding", "none"):
        raise ValueError(f"bonus must be 'bernstein', 'hoeffding' or 'none'; got {bonus!r}")
    for name, c in (("c1", c1), ("c2", c2)):
        if not (np.isfinite(c) and c >= 0):
            raise ValueError(f"{name} must be a finite number >= 0; got {c}")
    check_probability("delta", delta)
    check_positive("delta", delta)
    if delta >= 1:
        raise ValueError(f"delta must lie in (0, 1); got {delta}")
    rng = as_generator(rng, seed)
    M, S, A, H = lmdp.M, lmdp.S, lmdp.A, lmdp.horizon
    iota = 2.0 * math.log(2.0 * M * S * A * H * K / delta)
    v_star, _ = lmdp_plan(lmdp)
    n = np.zeros((M, S, A))
    n_next = np.zeros((M, S, A, S))
    n_frozen = n.copy()

    def build() -> tuple[BeliefPlanner, np.ndarray]:
        P_hat = n_next / np.maximum(n, 1.0)[..., None]
        unseen = n == 0
        P_hat[unseen] = 1.0 / S
        counts = n.copy()

        def b(s: int, a: int, nxt: np.ndarray, p: np.ndarray) -> np.ndarray:
            out = np.where(counts[:, s, a] == 0, math.inf, 0.0)
            if bonus == "bernstein":
                out = out + alpha_variance_bonus(nxt, p, counts[:, s, a], iota, c1, c2)
            elif bonus == "hoeffding":
                out = out + c1 * np.sqrt(iota / np.maximum(counts[:, s, a], 1.0))
            return out

        planner = BeliefPlanner(P=P_hat, R=lmdp.R, horizon=H, bonus=b, cap=1.0)
        return planner, P_hat

    planner, P_hat = build()
    v_pi = lmdp_policy_value(lmdp, planner, P_hat)
    regret = np.zeros(K)
    starts = [0]
    for k in range(K):
        regret[k] = v_star - v_pi
        m = int(rng.choice(M, p=lmdp.weights))
        s = int(rng.choice(S, p=lmdp.nu[m]))
        omega = lmdp.weights * lmdp.nu[:, s]
        for h in range(H):
            if omega.sum() <= 0:
                omega = lmdp.weights.copy()
            a = planner.action(h, s, omega)
            s2 = int(rng.choice(S, p=lmdp.P[m, s, a]))
            n[m, s, a] += 1
            n_next[m, s, a, s2] += 1
            omega = omega * P_hat[:, s, a, s2]
            s = s2
        # doubling schedule: refresh when some count N_m(s, a) crossed a power of two since the last refresh
        if k + 1 < K and np.any(_doubling_level(n) > _doubling_level(n_frozen)):
            n_frozen = n.copy()
            planner, P_hat = build()
            v_pi = lmdp_policy_value(lmdp, planner, P_hat)
            starts.append(k + 1)
    return LMDPLearningResult(regret=regret, cumulative=np.cumsum(regret), optimal_value=v_star,
                              epoch_starts=tuple(starts), bonus=bonus)


def latent_probe_chain(horizon: int, p: tuple[float, float] = (0.9, 0.2), weights: tuple[float, float] = (0.5, 0.5)) -> LatentMDP:
    """A two-context LMDP whose total reward is ≤ 0.8 for every H (the paper's normalization), for sweeping H.

    States 0 (home), 1 (good), 2 (bad); actions 0 (probe) and 1 (stay). From home, *stay* earns
    0.5/H and stays home; *probe* earns 0 and moves to good w.p. p_m (else bad); good earns 1.6/H
    under either action, and good and bad return home. Context 0 (p = 0.9) favours probing
    (1.44/H per two steps against 1/H), context 1 (p = 0.2) favours staying, so the optimal policy
    probes, updates its belief from the outcomes and commits: the value of in-episode information.
    An instance built here (derived here), not one of the paper's.
    """
    H = check_count("horizon", horizon, minimum=2, meaning="the good state's reward 1.6/H must be <= 1")
    P = np.zeros((2, 3, 2, 3))
    R = np.zeros((2, 3, 2))
    for m in range(2):
        pm = check_probability(f"p[{m}]", p[m])
        P[m, 0, 1, 0] = 1.0
        P[m, 0, 0, 1], P[m, 0, 0, 2] = pm, 1.0 - pm
        P[m, 1:, :, 0] = 1.0
        R[m, 0, 1] = 0.5 / H
        R[m, 1, :] = 1.6 / H
    return LatentMDP(weights=np.asarray(weights, dtype=float), nu=np.tile([1.0, 0.0, 0.0], (2, 1)), P=P, R=R, horizon=H)
