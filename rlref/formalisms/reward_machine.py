"""Reward machines: a finite automaton over transitions that emits Markov rewards, evaluated
exactly by the product MDP.

A reward machine (Icarte, Klassen, Valenzano & McIlraith 2018; Subramani et al. 2024, §2 "Reward
Machines") is (U, u0, δ_U, δ_R): machine states U, a start u0, a transition function
δ_U(u, (s, a, s')) = u' and rewards δ_R(u, (s, a, s')) ∈ ℝ. The return of a trajectory is
G = Σ_t γ^t δ_R(u_t, (s_t, a_t, s_{t+1})) with u_{t+1} = δ_U(u_t, (s_t, a_t, s_{t+1})), and J(π) = E_π[G].
Here δ_U and δ_R are arrays ``delta[u, s, a, s']`` and ``reward[u, s, a, s']``; the product MDP on
(s, u) has P((s', u') | (s, u), a) = P(s'|s, a) 1[u' = δ_U(u, s, a, s')] and reward δ_R, so J(π) is the
value, under the policy π(a | s, u) = π(a | s), of a TabularMDP solved by :func:`rlref.solve.policy_evaluation`.

References: Toro Icarte, Klassen, Valenzano, McIlraith (ICML 2018), "Using reward machines for
high-level task specification and decomposition in RL", Def. 1 and §4 (cross-product);
Subramani et al. (ICLR 2024), arXiv 2310.11840, §2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rlref._checks import as_float_array, check_finite, check_gamma
from rlref.formalisms.ltl import _holds_prop, parse_ltl, transition_letters
from rlref.mdp import TabularMDP
from rlref.policy import validate_policy
from rlref.solve import policy_evaluation

__all__ = ["RewardMachine", "reward_machine_from_rules", "product_mdp", "reward_machine_value"]


@dataclass(frozen=True, eq=False)
class RewardMachine:
    """δ_U = ``delta[u, s, a, s']`` (int, in 0..U−1), δ_R = ``reward[u, s, a, s']``, start ``u0``.

    Raises ValueError on a missing transition (a negative entry), an out-of-range target, or a
    non-finite reward, naming the machine state and the transition.
    """

    delta: np.ndarray
    reward: np.ndarray
    u0: int = 0

    def __post_init__(self) -> None:
        d = np.asarray(self.delta)
        if d.ndim != 4 or not np.issubdtype(d.dtype, np.integer):
            raise ValueError(f"delta must be an integer array delta[u, s, a, s'], got dtype {d.dtype} and shape {d.shape}")
        U = d.shape[0]
        r = as_float_array("reward", self.reward, ndim=4)
        if r.shape != d.shape:
            raise ValueError(f"reward must have the shape of delta {d.shape}, got {r.shape}")
        check_finite("reward", r)
        if np.any(d < 0):
            u, s, a, t = (int(x) for x in np.argwhere(d < 0)[0])
            raise ValueError(f"reward machine has no transition from machine state {u} on (s, a, s') = ({s}, {a}, {t}) "
                             f"(delta = {int(d[u, s, a, t])})")
        if np.any(d >= U):
            u, s, a, t = (int(x) for x in np.argwhere(d >= U)[0])
            raise ValueError(f"delta[{u}, {s}, {a}, {t}] = {int(d[u, s, a, t])} is not a machine state (U = {U})")
        if not 0 <= int(self.u0) < U:
            raise ValueError(f"u0 must be a machine state in 0..{U - 1}, got {self.u0}")
        d = d.astype(np.int64)
        d.setflags(write=False)
        r.setflags(write=False)
        object.__setattr__(self, "delta", d)
        object.__setattr__(self, "reward", r)
        object.__setattr__(self, "u0", int(self.u0))

    @property
    def num_states(self) -> int:
        return int(self.delta.shape[0])

    @classmethod
    def from_markov_reward(cls, R: np.ndarray) -> RewardMachine:
        """The one-state machine that emits R[s, a, s'] (or R[s, a]): MR ⊑ RM, constructively."""
        R = np.asarray(R, dtype=float)
        if R.ndim == 2:
            R = np.repeat(R[:, :, None], R.shape[0], axis=2)
        return cls(delta=np.zeros((1, *R.shape), dtype=np.int64), reward=R[None].copy(), u0=0)

    def run(self, transitions: Sequence[tuple[int, int, int]], gamma: float) -> float:
        """Discounted return Σ_t γ^t δ_R(u_t, s_t, a_t, s_{t+1}) of a finite transition sequence."""
        u, g, disc = self.u0, 0.0, 1.0
        for s, a, t in transitions:
            g += disc * float(self.reward[u, s, a, t])
            u = int(self.delta[u, s, a, t])
            disc *= gamma
        return g


def reward_machine_from_rules(mdp: TabularMDP, labels: Mapping[str, np.ndarray], num_states: int,
                              rules: Sequence[tuple[int, str, int, float]], u0: int = 0) -> RewardMachine:
    """Build a machine from guarded rules ``(u, guard, u', reward)``: on a transition whose letter
    satisfies the propositional ``guard``, machine state u moves to u' and emits ``reward``.

    Every (u, s, a, s') must match exactly one rule. Raises ValueError naming the machine state and
    the transition that matches no rule (a missing transition) or several rules (nondeterminism).
    """
    S, A = mdp.num_states, mdp.num_actions
    letters = transition_letters(mdp, labels)
    parsed = []
    for k, (u, guard, v, rew) in enumerate(rules):
        g = parse_ltl(guard)
        if not g.propositional:
            raise ValueError(f"rule {k}: guard {guard!r} must be propositional (no X, F, G, U)")
        parsed.append((int(u), g, int(v), float(rew)))
    delta = np.full((num_states, S, A, S), -1, dtype=np.int64)
    reward = np.zeros((num_states, S, A, S))
    for u in range(num_states):
        for s in range(S):
            for a in range(A):
                for t in range(S):
                    hits = [(v, r) for (uu, g, v, r) in parsed if uu == u and _holds_prop(g, letters[s][a][t])]
                    if len(hits) > 1:
                        raise ValueError(f"reward machine is nondeterministic: machine state {u} on (s, a, s') = ({s}, {a}, {t}) "
                                         f"matches {len(hits)} rules")
                    if hits:
                        delta[u, s, a, t], reward[u, s, a, t] = hits[0]
    return RewardMachine(delta=delta, reward=reward, u0=u0)


def product_mdp(mdp: TabularMDP, rm: RewardMachine, gamma: float | None = None) -> TabularMDP:
    """The cross-product MDP on (s, u) (index s·U + u), with the machine's rewards.

    P((s', u') | (s, u), a) = P(s'|s, a) 1[u' = δ_U(u, s, a, s')];  R((s, u), a, (s', u')) = δ_R(u, s, a, s').
    References: Toro Icarte et al. (2018), §4.
    """
    if mdp.horizon is not None:
        raise ValueError("product_mdp supports discounted MDPs (horizon=None)")
    g = check_gamma(mdp.gamma if gamma is None else gamma)
    S, A, U = mdp.num_states, mdp.num_actions, rm.num_states
    if rm.delta.shape[1:] != (S, A, S):
        raise ValueError(f"reward machine is over transitions of shape {rm.delta.shape[1:]}, the MDP has (S, A, S) = ({S}, {A}, {S})")
    P = mdp.dense_P()
    N = S * U
    PP = np.zeros((N, A, N))
    RR = np.zeros((N, A, N))
    for s in range(S):
        for u in range(U):
            i = s * U + u
            for a in range(A):
                for t in range(S):
                    j = t * U + int(rm.delta[u, s, a, t])
                    PP[i, a, j] += P[s, a, t]
                    RR[i, a, j] = rm.reward[u, s, a, t]
    mu = np.zeros(N)
    mu[np.arange(S) * U + rm.u0] = mdp.mu0
    return TabularMDP(P=PP, R=RR, gamma=g, mu0=mu, name=f"{mdp.name}xRM{U}", reward_axes="sas")


def reward_machine_value(mdp: TabularMDP, pi: np.ndarray, rm: RewardMachine, gamma: float | None = None) -> float:
    """J(π) = E_π[Σ_t γ^t δ_R(u_t, s_t, a_t, s_{t+1})], exactly, on the product MDP (π ignores u)."""
    pi = validate_policy(mdp, pi)
    prod = product_mdp(mdp, rm, gamma)
    lifted = np.repeat(pi, rm.num_states, axis=0)
    return float(policy_evaluation(prod, lifted).objective)
