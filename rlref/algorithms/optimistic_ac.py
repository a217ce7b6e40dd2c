"""Optimistic actor-critic with an off-policy critic for Q*, an NPG actor and rare switching (tabular).

Tan, Fan, Wei (2025), "Actor-Critics Can Achieve Optimal Sample Efficiency" (ICML 2025,
arXiv 2505.03710). The algorithm combines three pieces, instantiated here for a tabular
finite-horizon MDP (the paper works with general function classes and the Bellman eluder
dimension; the tabular case is its simplest instance, derived here):

1. **Optimistic off-policy critic targeting Q\\***: from all data so far, an upper confidence
   estimate of the *optimal* Q-function (not of Q^π), here the UCB-VI recursion (Azar, Osband,
   Munos 2017): Q̄_h = r̂ + b + P̂ V̄_{h+1}, V̄_h = max_a Q̄_h, V̄_H = 0, with the Hoeffding bonus
   b(s, a) = c · H · sqrt(log(S A H T / δ) / max(1, N(s, a))) (and b = H · c' for unvisited pairs).
   It is solved by the library's finite-horizon driver (rlref.solve.backward_induction) on the
   empirical MDP (P̂, r̂ + b).
2. **NPG actor** (mirror descent with the KL): π^{t+1}_h(·|s) ∝ π^t_h(·|s) exp(η Q̄_h(s, ·)), the
   core tilt rlref.solve.soft_greedy with β = 1/η.
3. **Rare switching with policy resets**: the critic is recomputed only when some visit count
   N(s, a) has doubled since the last switch (the tabular analogue of the paper's determinant /
   information doubling), and at every switch the actor is reset to uniform. Each (s, a) can
   trigger at most ⌊log₂ T⌋ + 1 switches, so there are at most S·A·(⌊log₂ T⌋ + 1) + 1 switches.

Regret after T episodes: R(T) = Σ_t V*_0(μ0) − V^{π_t}_0(μ0) (exact, by rlref.solve policy
evaluation); the paper proves R(T) = Õ(√T) (its Theorem on the regret of the optimistic
algorithm). Setting ``bonus_scale = 0`` removes the optimism (a greedy actor-critic baseline).

References: Tan, Fan, Wei (2025), arXiv 2505.03710 (the algorithm: optimism + off-policy critic
for Q* + rare-switching resets; √T regret); Azar, Osband, Munos (2017), "Minimax regret bounds for
reinforcement learning", Alg. 1 (UCB-VI, Hoeffding bonus); Kakade (2001) / Agarwal et al. (2021)
(NPG as the multiplicative-weights update).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rlref._checks import as_generator, check_at_least, check_count, check_positive, check_probability
from rlref.algorithms.rates import loglog_slope
from rlref.mdp import TabularMDP
from rlref.solve import HardBackup, backward_induction, policy_evaluation, soft_greedy

__all__ = ["optimistic_critic", "ACResult", "optimistic_actor_critic", "switch_bound", "regret_slope"]


def optimistic_critic(counts: np.ndarray, reward_sum: np.ndarray, transition_counts: np.ndarray, horizon: int,
                      bonus: np.ndarray) -> np.ndarray:
    """Q̄[h, s, a] of the empirical MDP with rewards r̂ + bonus: Q̄_h = r̂ + b + P̂ V̄_{h+1}, V̄ = max_a Q̄.

    Unvisited pairs get P̂ = a self-loop and r̂ = 0 (their optimism comes from ``bonus`` alone).
    Shapes: counts[s, a], reward_sum[s, a], transition_counts[s, a, s'], bonus[s, a] -> [H, s, a].
    Solved by rlref.solve.backward_induction with the hard backup.
    References: Azar, Osband, Munos (2017), Alg. 1 (without the min(H, ·) clip).
    """
    H = check_count("horizon", horizon)
    n = np.asarray(counts, dtype=float)
    S, A = n.shape
    P = np.asarray(transition_counts, dtype=float) / np.maximum(n, 1.0)[..., None]
    unseen = n == 0
    P[unseen] = np.eye(S)[np.nonzero(unseen)[0]]
    r = np.where(unseen, 0.0, np.asarray(reward_sum, dtype=float) / np.maximum(n, 1.0)) + np.asarray(bonus, dtype=float)
    mdp = TabularMDP(P, r, horizon=H)
    return backward_induction(mdp, HardBackup(mdp)).q


@dataclass(frozen=True)
class ACResult:
    """regret[t] = V*_0(μ0) − V^{π_t}_0(μ0) per episode (exact); cumulative = its running sum;
    switches: episodes at which the critic was recomputed (and the actor reset); policy: the
    last policy π[h, s, a]; optimal_value V*_0(μ0)."""

    regret: np.ndarray
    cumulative: np.ndarray
    switches: np.ndarray
    policy: np.ndarray
    optimal_value: float


def switch_bound(num_states: int, num_actions: int, episodes: int) -> int:
    """S·A·(⌊log₂ T⌋ + 1) + 1: the most switches under the doubling rule (derived here)."""
    S = check_count("num_states", num_states)
    A = check_count("num_actions", num_actions)
    T = check_count("episodes", episodes)
    return S * A * (int(math.floor(math.log2(T))) + 1) + 1


def optimistic_actor_critic(mdp: TabularMDP, episodes: int, *, eta: float = 1.0, bonus_scale: float = 0.1,
                            delta: float = 0.1, rare_switching: bool = True, rng: np.random.Generator | None = None,
                            seed: int | None = None) -> ACResult:
    """Run the optimistic actor-critic (module docstring) for ``episodes`` episodes on a finite-horizon MDP.

    ``eta`` is the NPG step size. Within a switch epoch the critic is fixed, so after k actor steps
    π ∝ exp(k η Q̄) and the actor's suboptimality against Q̄ is ≤ log A/(k η) (derived here); a
    constant η of order 1 (the default) makes it greedy within a few episodes. (The Hedge tuning
    η = sqrt(8 log A/(H² T)), for adversarial payoffs, keeps the actor near uniform for ~1/η
    episodes after every reset and was measured to give near-linear regret here.) Rewards are
    observed as the expected reward r(s, a) (deterministic rewards). ``rare_switching=False``
    recomputes the critic every episode and never resets the actor. ``bonus_scale`` is the c of
    the bonus c·H·sqrt(log(SAHT/δ)/N).
    """
    if not mdp.is_finite_horizon:
        raise ValueError("mdp must be finite-horizon (give horizon=H)")
    if mdp.is_stage_dependent:
        raise ValueError("optimistic_actor_critic pools data over stages: it needs stage-independent P and r")
    T = check_count("episodes", episodes)
    c = check_at_least("bonus_scale", bonus_scale, 0.0)
    d = check_probability("delta", delta)
    if d == 0.0:
        raise ValueError("delta must be > 0")
    H, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
    lr = check_positive("eta", eta)
    g = as_generator(rng, seed)
    P = mdp.dense_P()
    R = mdp.reward(0)
    star = backward_induction(mdp, HardBackup(mdp))
    v_star = float(mdp.mu0 @ star.values[0])
    log_term = math.log(S * A * H * T / d)
    counts = np.zeros((S, A))
    rsum = np.zeros((S, A))
    tcounts = np.zeros((S, A, S))
    at_switch = np.full((S, A), -1.0)
    uniform = np.full((H, S, A), 1.0 / A)
    pi = uniform.copy()
    q_bar = np.zeros((H, S, A))
    regret = np.zeros(T)
    switches = []
    for t in range(T):
        if (not rare_switching) or t == 0 or np.any(counts >= 2.0 * np.maximum(at_switch, 0.5)):
            bonus = c * H * np.sqrt(log_term / np.maximum(counts, 1.0))
            q_bar = optimistic_critic(counts, rsum, tcounts, H, bonus)
            at_switch = counts.copy()
            switches.append(t)
            if rare_switching:
                pi = uniform.copy()
        pi = soft_greedy(q_bar, pi, 1.0 / lr)
        regret[t] = v_star - float(policy_evaluation(mdp, pi).objective)
        s = int(g.choice(S, p=mdp.mu0))
        for h in range(H):
            a = int(g.choice(A, p=pi[h, s]))
            s2 = int(g.choice(S, p=P[s, a]))
            counts[s, a] += 1
            rsum[s, a] += R[s, a]
            tcounts[s, a, s2] += 1
            s = s2
    return ACResult(regret=regret, cumulative=np.cumsum(regret), switches=np.array(switches, dtype=np.int64),
                    policy=pi, optimal_value=v_star)


def regret_slope(cumulative: np.ndarray, start_fraction: float = 0.1) -> float:
    """Least-squares slope of log R(t) on log t over t ∈ [start_fraction·T, T] (t = 1-based episodes).

    √T regret shows as a slope ≤ 1/2 (plus log factors); linear regret as 1.
    """
    R = np.asarray(cumulative, dtype=float)
    f = check_probability("start_fraction", start_fraction)
    T = R.size
    t0 = max(1, int(f * T))
    t = np.arange(t0, T + 1)
    y = R[t0 - 1:]
    if np.any(y <= 0):
        raise ValueError("cumulative regret must be > 0 on the fitted range to take its log")
    return loglog_slope(t, y)
