"""Agnostic RL with a policy class: the spanning capacity and trajectory-tree policy learning.

Jia, Li, Rakhlin, Sekhari, Srebro (2023), "When is Agnostic Reinforcement Learning Statistically
Tractable?" (NeurIPS 2023, arXiv 2310.06113). Given a class Π of policies, learn a policy
ε-close to the best in Π. The paper's complexity measure depends on Π only:

* cumulative reachability of a deterministic layered MDP M at layer h:
      C_h(Π; M) = |{(s_h, a_h) : some π ∈ Π visits s_h at layer h in M and plays a_h = π(s_h)}|;
* spanning capacity  C(Π) = max_h max_{M deterministic} C_h(Π; M)  (the paper's Definition 1).

C(Π) ≤ |Π|, C(Π) ≤ max_h min(A^h, S_h·A); it can be far below |Π| (the singletons class has
C = H + 1, derived here). With a generative model the sample complexity of agnostic learning is
governed by C(Π) (the paper's §3: an upper bound of order H·C(Π)·log(|Π|/δ)/ε² and a matching
lower bound in C(Π)). The upper bound is achieved by trajectory trees (Kearns, Mansour, Ng 2000):
starting from s_1, at each node query the generative model once for every action some policy of
Π that reaches the node would take; every π ∈ Π then has one unbiased return sample along its
path of the tree. A tree's nodes at layer h are the reached (s_h, a_h) pairs of the sampled
deterministic MDP, so a tree costs at most Σ_h C_h ≤ H·C(Π) queries, and
n = ⌈H² log(2|Π|/δ) / (2 (ε/2)²)⌉ trees give every policy's value to ±ε/2 (Hoeffding, returns in
[0, H], union bound), so the empirical best is ε-optimal with probability ≥ 1 − δ.

Online access: POPLER (§6, :func:`popler`) for classes with the sunflower property (a core of K
policies, petals of ≤ D states per policy), by importance weighting over the core and exploration of
the Π-reachable petal states; its details are reconstructed and derived here (the paper's text was
not retrievable), see its docstring.

Layout: H layers of S states each; layer 0 starts in ``start``; policies ``policies[k, h, s]``
(deterministic, integer actions in [0, A)); deterministic transitions ``nxt[h, s, a]`` ∈ [0, S)
for h < H − 1; a stochastic layered MDP is a finite-horizon ``TabularMDP`` with P[h, s, a, s'].

References: Jia et al. (2023), arXiv 2310.06113, Definition 1 (spanning capacity), §3
(generative model); Kearns, Mansour, Ng (2000), "Approximate planning in large POMDPs via
reusable trajectories" (trajectory trees).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from rlref._checks import as_generator, check_count, check_positive, check_probability
from rlref.algorithms.sampling import inverse_cdf_sample
from rlref.mdp import TabularMDP
from rlref.solve import policy_evaluation

__all__ = [
    "check_policy_class",
    "cumulative_reachability",
    "SpanningCapacity",
    "spanning_capacity",
    "singleton_class",
    "all_policies",
    "TreeResult",
    "trajectory_tree_learn",
    "trees_needed",
    "policy_values",
    "is_sunflower",
    "petals_from_core",
    "reachability_mass",
    "PoplerSchedule",
    "popler_schedule",
    "PoplerResult",
    "popler",
]


def _in_range(name: str, t: np.ndarray, upper: int, what: str) -> np.ndarray:
    """``t`` as int64 if every entry lies in [0, upper); else ValueError naming the first bad index and value."""
    bad = (t < 0) | (t >= upper)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}[{', '.join(map(str, idx))}] = {int(t[idx])} is not {what} in [0, {upper})")
    return t.astype(np.int64)


def check_policy_class(policies: object, num_actions: int) -> np.ndarray:
    """``policies`` as an int array [k, h, s] with actions in [0, num_actions); ValueError otherwise."""
    A = check_count("num_actions", num_actions)
    p = np.asarray(policies)
    if p.ndim != 3 or p.shape[0] < 1 or p.shape[1] < 1 or p.shape[2] < 1:
        raise ValueError(f"policies must have shape (k, H, S) with k, H, S >= 1, got {p.shape}")
    if not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"policies must hold integer actions, got dtype {p.dtype}")
    return _in_range("policies", p, A, "an action")


def _check_nxt(nxt: object, H: int, S: int, A: int) -> np.ndarray:
    t = np.asarray(nxt)
    if t.shape != (max(H - 1, 0), S, A) or (t.size and not np.issubdtype(t.dtype, np.integer)):
        raise ValueError(f"nxt must be an integer array of shape (H-1, S, A) = ({H - 1}, {S}, {A}), got {t.shape}")
    return _in_range("nxt", t, S, "a state")


def cumulative_reachability(policies: object, nxt: object, num_actions: int, start: int = 0) -> np.ndarray:
    """C_h(Π; M) for h = 0..H−1 in the deterministic layered MDP ``nxt`` started at ``start``.

    Shapes: policies[k, h, s], nxt[h, s, a] (h < H − 1) -> [H] (int).
    References: Jia et al. (2023), arXiv 2310.06113, Definition 1.
    """
    p = check_policy_class(policies, num_actions)
    _, H, S = p.shape
    t = _check_nxt(nxt, H, S, int(num_actions))
    if not (isinstance(start, (int, np.integer)) and 0 <= start < S):
        raise ValueError(f"start must be a state in [0, {S}), got {start!r}")
    k = p.shape[0]
    s = np.full(k, int(start))
    out = np.zeros(H, dtype=np.int64)
    for h in range(H):
        a = p[np.arange(k), h, s]
        out[h] = len(set(zip(s.tolist(), a.tolist(), strict=True)))
        if h < H - 1:
            s = t[h, s, a]
    return out


@dataclass(frozen=True)
class SpanningCapacity:
    """capacity C(Π) = max_h per_layer[h]; per_layer[h] = max_M C_h(Π; M); searched: deterministic
    transition assignments examined (of the reached pairs only); witness_layer: an argmax h."""

    capacity: int
    per_layer: np.ndarray
    searched: int
    witness_layer: int


def spanning_capacity(policies: object, num_actions: int, max_search: int = 5_000_000) -> SpanningCapacity:
    """C(Π) = max_h max_M C_h(Π; M), exactly, by search over deterministic layered MDPs.

    Only the transitions of reached (s, a) pairs matter, so the search assigns a next state to each
    reached pair, layer by layer (S^{#pairs} branches per node), over every start state. Exponential:
    for small classes (a RuntimeError when more than ``max_search`` assignments would be examined).

    References: Jia et al. (2023), arXiv 2310.06113, Definition 1.
    """
    p = check_policy_class(policies, num_actions)
    cap = check_count("max_search", max_search)
    k, H, S = p.shape
    best = np.zeros(H, dtype=np.int64)
    count = [0]

    def visit(h: int, state_of: np.ndarray) -> None:
        acts = p[np.arange(k), h, state_of]
        pairs = sorted(set(zip(state_of.tolist(), acts.tolist(), strict=True)))
        best[h] = max(best[h], len(pairs))
        if h == H - 1:
            return
        index = {pa: i for i, pa in enumerate(pairs)}
        which = np.array([index[(int(s), int(a))] for s, a in zip(state_of, acts, strict=True)])
        for assign in itertools.product(range(S), repeat=len(pairs)):
            count[0] += 1
            if count[0] > cap:
                raise RuntimeError(f"spanning_capacity: more than max_search={cap} transition assignments; the class is too large for exact search")
            visit(h + 1, np.asarray(assign)[which])

    for s0 in range(S):
        visit(0, np.full(k, s0))
    per = best.copy()
    return SpanningCapacity(capacity=int(per.max()), per_layer=per, searched=int(count[0]), witness_layer=int(np.argmax(per)))


def singleton_class(horizon: int, num_states: int) -> np.ndarray:
    """Π_sing: the all-zeros policy plus, for every (h, s), the policy playing 1 at (h, s) and 0 elsewhere.

    |Π_sing| = 1 + H·S; its spanning capacity is H + 1 when S ≥ H (derived here: at layer h the
    reached pairs are the on-path (x_h, 0), (x_h, 1) and one pair per earlier deviation, h + 1 ≤ H + 1).
    """
    H = check_count("horizon", horizon)
    S = check_count("num_states", num_states)
    out = np.zeros((1 + H * S, H, S), dtype=np.int64)
    for i, (h, s) in enumerate(itertools.product(range(H), range(S))):
        out[1 + i, h, s] = 1
    return out


def all_policies(horizon: int, num_states: int, num_actions: int) -> np.ndarray:
    """Every deterministic layered policy: A^{H·S} of them (small sizes only)."""
    H = check_count("horizon", horizon)
    S = check_count("num_states", num_states)
    A = check_count("num_actions", num_actions)
    if A ** (H * S) > 1_000_000:
        raise ValueError(f"all_policies: A^(H*S) = {A}^{H * S} policies is too many to enumerate")
    return np.array(list(itertools.product(range(A), repeat=H * S)), dtype=np.int64).reshape(-1, H, S)


def _one_hot_class(mdp: TabularMDP, policies: object) -> np.ndarray:
    """The policy class as one-hot layered policies pi[k, h, s, a], checked against the finite-horizon ``mdp``."""
    if not mdp.is_finite_horizon:
        raise ValueError("mdp must be finite-horizon (a layered MDP with horizon H)")
    p = check_policy_class(policies, mdp.num_actions)
    if p.shape[1:] != (mdp.horizon, mdp.num_states):
        raise ValueError(f"policies must have shape (k, H, S) = (k, {mdp.horizon}, {mdp.num_states}), got {p.shape}")
    return np.eye(mdp.num_actions)[p]


def policy_values(mdp: TabularMDP, policies: object) -> np.ndarray:
    """Exact expected return from ``mdp.mu0`` of each deterministic layered policy (rlref.solve.policy_evaluation)."""
    return np.array([float(policy_evaluation(mdp, pi).objective) for pi in _one_hot_class(mdp, policies)])


def trees_needed(num_policies: int, horizon: int, epsilon: float, delta: float) -> int:
    """n = ⌈H² log(2|Π|/δ) / (2 (ε/2)²)⌉: Hoeffding + union bound for returns in [0, H] (rewards in [0, 1])."""
    k = check_count("num_policies", num_policies)
    H = check_count("horizon", horizon)
    e = check_positive("epsilon", epsilon)
    d = check_probability("delta", delta)
    if d == 0.0 or d == 1.0:
        raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
    return int(math.ceil(H * H * math.log(2 * k / d) / (2 * (e / 2) ** 2)))


@dataclass(frozen=True)
class TreeResult:
    """estimates[k]: mean tree return of each policy; best: argmax index; trees; queries: generative
    calls in all; max_queries_per_tree; max_layer_nodes[h]: the most (s_h, a_h) nodes at layer h of
    any tree (each ≤ C(Π))."""

    estimates: np.ndarray
    best: int
    trees: int
    queries: int
    max_queries_per_tree: int
    max_layer_nodes: np.ndarray


def trajectory_tree_learn(mdp: TabularMDP, policies: object, num_trees: int, *, rng: np.random.Generator | None = None,
                          seed: int | None = None, bernoulli_rewards: bool = True) -> TreeResult:
    """Agnostic policy learning with a generative model by trajectory trees (module docstring).

    Each query of (h, s, a) draws s' ~ P_h(·|s, a) and a reward (Bernoulli(r_h(s, a)) when
    ``bernoulli_rewards``, needing r ∈ [0, 1]; else the mean r_h(s, a)). The start state is drawn
    from ``mdp.mu0`` once per tree.

    References: Kearns, Mansour, Ng (2000); Jia et al. (2023), arXiv 2310.06113, §3.
    """
    if not mdp.is_finite_horizon:
        raise ValueError("mdp must be finite-horizon (a layered MDP with horizon H)")
    p = check_policy_class(policies, mdp.num_actions)
    H, S = mdp.horizon, mdp.num_states
    if p.shape[1:] != (H, S):
        raise ValueError(f"policies must have shape (k, H, S) = (k, {H}, {S}), got {p.shape}")
    n = check_count("num_trees", num_trees)
    g = as_generator(rng, seed)
    R = np.stack([mdp.reward(h) for h in range(H)])
    if bernoulli_rewards and (R.min() < 0 or R.max() > 1):
        raise ValueError("bernoulli_rewards needs mean rewards in [0, 1]")
    Pd = mdp.dense_P()
    P = Pd if Pd.ndim == 4 else np.broadcast_to(Pd, (H, *Pd.shape))
    k = p.shape[0]
    total = np.zeros(k)
    queries, worst, layer_nodes = 0, 0, np.zeros(H, dtype=np.int64)
    for _ in range(n):
        s = np.full(k, int(g.choice(S, p=mdp.mu0)))
        ret = np.zeros(k)
        q_tree = 0
        for h in range(H):
            a = p[np.arange(k), h, s]
            nodes = {}
            for i, key in enumerate(zip(s.tolist(), a.tolist(), strict=True)):
                nodes.setdefault(key, []).append(i)
            layer_nodes[h] = max(layer_nodes[h], len(nodes))
            s_new = s.copy()
            for (ss, aa), members in nodes.items():
                q_tree += 1
                mean = R[h, ss, aa]
                rew = float(g.random() < mean) if bernoulli_rewards else float(mean)
                ret[members] += rew
                if h < H - 1:
                    s_new[members] = int(g.choice(S, p=P[h, ss, aa]))
            s = s_new
        total += ret
        queries += q_tree
        worst = max(worst, q_tree)
    est = total / n
    return TreeResult(estimates=est, best=int(np.argmax(est)), trees=n, queries=int(queries),
                      max_queries_per_tree=int(worst), max_layer_nodes=layer_nodes)


# --------------------------------------------------------------------------------------------
# POPLER: online agnostic learning for sunflower classes (Jia et al. 2023, §6, Algorithm 1).
# --------------------------------------------------------------------------------------------


def _check_petals(petals: object, shape: tuple[int, int, int]) -> np.ndarray:
    m = np.asarray(petals)
    if m.shape != shape or m.dtype != np.bool_:
        raise ValueError(f"petals must be a boolean array of shape (k, H, S) = {shape}, got {m.shape} {m.dtype}")
    return m


def is_sunflower(policies: object, core: object, petals: object, num_actions: int) -> bool:
    """Whether (Π_core, {S_π}) witnesses the sunflower property of Π, exactly, by enumeration.

    The property (Jia et al. 2023, §6, the (K, D)-sunflower definition, as recalled: the text was not
    retrievable here): for every π ∈ Π and every trajectory consistent with π there is one π_e ∈ Π_core
    that agrees with π at every step whose state is outside the petal set S_π. In a layered MDP any
    state sequence is realizable by some MDP, so this is checked on all S^H state paths (a path's
    prefixes are then covered too). ``petals[k, h, s]`` marks (h, s) ∈ S_{π_k}; K = |core|,
    D = max_k |S_{π_k}|. Exponential in H: small classes only.
    """
    p = check_policy_class(policies, num_actions)
    c = check_policy_class(core, num_actions)
    k, H, S = p.shape
    if c.shape[1:] != (H, S):
        raise ValueError(f"core must have shape (K, H, S) = (K, {H}, {S}), got {c.shape}")
    m = _check_petals(petals, p.shape)
    if S ** H > 2_000_000:
        raise ValueError(f"is_sunflower: S^H = {S}^{H} paths is too many to enumerate")
    paths = np.array(list(itertools.product(range(S), repeat=H)), dtype=np.int64)  # [N, H]
    hh = np.arange(H)
    core_a = c[:, hh, paths]  # [K, N, H]
    for i in range(k):
        agree = core_a == p[i][hh, paths][None]  # [K, N, H]
        free = m[i][hh, paths][None]  # petal steps need no agreement
        if not np.all(np.any(np.all(agree | free, axis=2), axis=0)):
            return False
    return True


def petals_from_core(policies: object, core: object, num_actions: int) -> np.ndarray:
    """A valid petal assignment for a given core: S_π = the (h, s) where π differs from its nearest core
    policy (fewest differing entries). Along any path that core policy agrees with π off S_π, so
    (core, petals) is a sunflower with D = max_π min_e |{π ≠ π_e}| (derived here)."""
    p = check_policy_class(policies, num_actions)
    c = check_policy_class(core, num_actions)
    if c.shape[1:] != p.shape[1:]:
        raise ValueError(f"core must have shape (K, H, S) = (K, {p.shape[1]}, {p.shape[2]}), got {c.shape}")
    diff = p[:, None] != c[None]  # [k, K, H, S]
    nearest = np.argmin(diff.reshape(len(p), len(c), -1).sum(axis=2), axis=1)
    return diff[np.arange(len(p)), nearest]


def reachability_mass(mdp: TabularMDP, policies: object) -> np.ndarray:
    """Σ_{(s, a)} max_{π ∈ Π} d_h^π(s, a) per layer h, in a (stochastic) layered MDP -> [H].

    It is at most max_M C_h(Π; M) (derived here: draw every (h, s, a)'s next state independently to get
    a random deterministic MDP M_ω; each π's path in M_ω has the law of its trajectory, so
    max_π d_h^π(s, a) ≤ Pr_ω[some π reaches (s, a)], and summing gives E_ω C_h(Π; M_ω) ≤ C_h). Hence at
    most C(Π)/τ states per layer are reached with probability ≥ τ by some π ∈ Π: the Π-reachable states
    that POPLER explores are few when the capacity is small.
    """
    from rlref.solve import occupancy_measure

    d = np.max([occupancy_measure(mdp, pi) for pi in _one_hot_class(mdp, policies)], axis=0)  # [H, S, A]
    return d.sum(axis=(1, 2))


@dataclass(frozen=True)
class PoplerSchedule:
    """Sample sizes of :func:`popler` (derived here, see its docstring): n_core start episodes, n_node
    successful visits per explored (petal state, action), threshold tau, per-node accuracy eta."""

    n_core: int
    n_node: int
    tau: float
    eta: float


def popler_schedule(num_policies: int, horizon: int, num_core: int, petal_size: int, epsilon: float, delta: float) -> PoplerSchedule:
    """η = ε/(4(D+1)), τ = ε/(4 H max(D, 1)), n = ⌈(K H)² log(2|Π|(D+1)/δ)/(2η²)⌉ for both n_core and n_node.

    Derived here (not the paper's constants, which could not be checked): importance weights are ≤ K
    and segment returns ≤ H, so each node's estimate is a mean of variables in [0, K·H] (Hoeffding); a
    union bound over the ≤ |Π|(D + 1) (policy, node) estimates; V̂^π chains at most D + 1 node errors
    (first order) for ≤ ε/4; each of the ≤ D unexplored petals of π has reach < τ and costs ≤ H τ,
    ≤ ε/4 in all; so every |V̂^π − V^π| ≲ ε/2 and the empirical best is ε-optimal.
    """
    k = check_count("num_policies", num_policies)
    H = check_count("horizon", horizon)
    K = check_count("num_core", num_core)
    D = check_count("petal_size", petal_size, minimum=0)
    e = check_positive("epsilon", epsilon)
    d = check_probability("delta", delta)
    if d == 0.0 or d == 1.0:
        raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
    eta = e / (4 * (D + 1))
    tau = e / (4 * H * max(D, 1))
    n = int(math.ceil((K * H) ** 2 * math.log(2 * k * (D + 1) / d) / (2 * eta**2)))
    return PoplerSchedule(n_core=n, n_node=n, tau=float(tau), eta=float(eta))


@dataclass(frozen=True)
class PoplerResult:
    """``estimates[k]``: V̂^π for each policy; ``best``: argmax; ``episodes``: online episodes run in all
    (each counts whole, even when cut short after a failed reach); ``core_episodes``; ``explored``: the
    (h, s) petal states explored, in order; ``node_episodes[i]``: episodes spent on ``explored[i]`` (all
    its actions); ``explored_per_layer[h]``; ``reach[k, h, s]``: the estimated probability that π_k
    visits the petal (h, s), used to decide exploration (0 where (h, s) is not a petal of π_k)."""

    estimates: np.ndarray
    best: int
    episodes: int
    core_episodes: int
    explored: tuple
    node_episodes: tuple
    explored_per_layer: np.ndarray
    reach: np.ndarray


def _simulate(cumP: np.ndarray, R: np.ndarray, tables: np.ndarray, idx: np.ndarray, s: np.ndarray, h0: int, h1: int,
              g: np.random.Generator, first_action: int | None = None):
    """Run layers h0..h1−1 from states s; episode i plays tables[idx[i]] (first_action at layer h0 if
    given). Returns states [n, h1−h0], actions, Bernoulli rewards, and the state at layer h1 (or −1)."""
    n = len(s)
    L = h1 - h0
    states = np.empty((n, L), dtype=np.int64)
    acts = np.empty((n, L), dtype=np.int64)
    rews = np.empty((n, L))
    H = cumP.shape[0] + 1
    for t in range(L):
        h = h0 + t
        a = np.full(n, first_action, dtype=np.int64) if (t == 0 and first_action is not None) else tables[idx, h, s]
        states[:, t], acts[:, t] = s, a
        rews[:, t] = (g.random(n) < R[h, s, a]).astype(float)
        if h < H - 1:
            s = inverse_cdf_sample(cumP[h, s, a], g.random(n))
        else:
            s = np.full(n, -1)
    return states, acts, rews, s


def _segment_estimates(pi: np.ndarray, pet: np.ndarray, core: np.ndarray, data, h0: int, forced: bool):
    """Importance-weighted segment statistics of π from one node's data (module docstring of popler).

    Returns per-sample (weighted reward sum, end weight, next petal (h, s) or None)."""
    states, acts, rews = data
    n, L = states.shape
    K = len(core)
    hh = h0 + np.arange(L)
    consistent = np.ones(n, dtype=bool)  # π agrees with the observed actions on the segment so far
    count = np.ones((n, K), dtype=bool)  # which core policies agree with the observed actions so far
    w = np.ones(n)
    alive = np.ones(n, dtype=bool)  # the segment has not reached the next petal yet
    rsum = np.zeros(n)
    w_end = np.zeros(n)
    nxt_h = np.full(n, -1)
    nxt_s = np.full(n, -1)
    for t in range(L):
        h, s, a = hh[t], states[:, t], acts[:, t]
        if t > 0 or not forced:
            hit = alive & pet[h, s]
            w_end[hit], nxt_h[hit], nxt_s[hit] = w[hit], h, s[hit]
            alive &= ~hit
            consistent &= pi[h, s] == a
            count &= core[:, h, s].T == a[:, None]
            m = count.sum(axis=1)
            w = np.where(consistent & (m > 0), K / np.maximum(m, 1), 0.0)
        rsum += np.where(alive, w * rews[:, t], 0.0)
    w_end[alive] = w[alive]  # segments that run to the end (⊥)
    return rsum, w_end, nxt_h, nxt_s


def popler(mdp: TabularMDP, policies: object, core: object, petals: object, epsilon: float, delta: float, *,
           rng: np.random.Generator | None = None, seed: int | None = None, schedule: PoplerSchedule | None = None,
           check: bool = True) -> PoplerResult:
    """POPLER (Jia, Li, Rakhlin, Sekhari, Srebro 2023, §6, Algorithm 1), tabular, online access only.

    Faithful in structure to the paper's description (its text was not retrievable here: the steps
    below are reconstructed and their details derived here). Π is a sunflower with core Π_core (K
    policies) and petals S_π (≤ D layer-states each, :func:`is_sunflower`). Off its petals, a path of
    π agrees with a core policy, so the part of π's trajectory between two petal visits (a segment)
    can be evaluated by importance weighting data of the uniform mixture over Π_core: a segment's
    weight is 1{π consistent}/( (1/K) #{π_e consistent}) ≤ K, unbiased by the sunflower property.

    1. Run n_core episodes from μ0, each with a uniformly drawn π_e ∈ Π_core (the start node ⊤).
    2. Reachable-state identification, layer by layer: for each (h, s) that is a petal of some π,
       estimate d̂^π(h, s) = Σ_v d̂^π(v) T̂^π(v → (h, s)) over ⊤ and the explored petals v of π at
       earlier layers (T̂: importance-weighted probability that π's next petal after v is (h, s)). If
       max_π d̂^π(h, s) ≥ τ, the state is Π-reachable and explored: for every action a that some π with
       that petal plays there, run the reaching policy argmax_π d̂^π until layer h and, from the
       episodes that arrive at s, play a and then a uniform core policy, until n_node arrivals.
    3. Policy evaluation on the petal MDP of π (nodes ⊤, explored petals, ⊥): backward over layers,
       Ŵ(u) = mean over u's data of [weighted segment reward + end weight · Ŵ(next petal)], with
       Ŵ = 0 at unexplored petals and ⊥. V̂^π = Ŵ(⊤). Return argmax_π V̂^π.

    Rewards are Bernoulli(r_h(s, a)), so r ∈ [0, 1] is required. ``schedule`` defaults to
    :func:`popler_schedule` with D = max_π |S_π|. Sample cost (derived here): n_core + Σ over explored
    (h, s, a) of ≈ n_node / d(h, s) episodes with d ≥ τ (up to estimation), and at most C_h(Π)/τ
    states per layer can be reached with probability τ (:func:`reachability_mass`).

    References: Jia et al. (2023), arXiv 2310.06113, §6 (POPLER, sunflower classes), Definition 1.
    """
    if not mdp.is_finite_horizon:
        raise ValueError("mdp must be finite-horizon (a layered MDP with horizon H)")
    p = check_policy_class(policies, mdp.num_actions)
    H, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
    if p.shape[1:] != (H, S):
        raise ValueError(f"policies must have shape (k, H, S) = (k, {H}, {S}), got {p.shape}")
    c = check_policy_class(core, A)
    if c.shape[1:] != (H, S):
        raise ValueError(f"core must have shape (K, H, S) = (K, {H}, {S}), got {c.shape}")
    m = _check_petals(petals, p.shape)
    if check and not is_sunflower(p, c, m, A):
        raise ValueError("(core, petals) is not a sunflower for policies: some path of a policy agrees with no core policy off its petals")
    k, K = len(p), len(c)
    D = int(m.reshape(k, -1).sum(axis=1).max())
    sch = schedule if schedule is not None else popler_schedule(k, H, K, D, epsilon, delta)
    g = as_generator(rng, seed)
    R = np.stack([mdp.reward(h) for h in range(H)])
    if R.min() < 0 or R.max() > 1:
        raise ValueError("popler needs mean rewards in [0, 1] (Bernoulli rewards)")
    Pd = mdp.dense_P()
    P = Pd if Pd.ndim == 4 else np.broadcast_to(Pd, (H, *Pd.shape))
    cumP = np.cumsum(P[: H - 1], axis=-1)

    # 1. the start node: uniform mixture over the core
    n0 = sch.n_core
    s0 = g.choice(S, size=n0, p=mdp.mu0)
    st, ac, rw, _ = _simulate(cumP, R, c, g.integers(0, K, size=n0), s0, 0, H, g)
    top = (st, ac, rw)
    episodes = n0
    seg = {i: {None: _segment_estimates(p[i], m[i], c, top, 0, False)} for i in range(k)}  # seg[i][node]
    data: dict = {}  # (h, s, a) -> data
    explored, node_eps = [], []
    reach = np.zeros((k, H, S))

    def transition(i: int, node, h: int, s: int) -> float:
        _, w_end, nh, ns = seg[i][node]
        return float(np.sum(w_end * ((nh == h) & (ns == s))) / len(w_end))

    # 2. reachable-state identification, layer by layer
    for h in range(H):
        for s in range(S):
            owners = np.flatnonzero(m[:, h, s])
            if owners.size == 0:
                continue
            for i in owners:
                reach[i, h, s] = sum(reach[i, v[0], v[1]] * transition(i, v, h, s) for v in seg[i] if v is not None) + transition(i, None, h, s)
            j = int(owners[np.argmax(reach[owners, h, s])])
            if reach[j, h, s] < sch.tau:
                continue
            spent = 0
            for a in sorted({int(p[i, h, s]) for i in owners}):
                got = []
                need = sch.n_node
                while need > 0:
                    batch = int(math.ceil(need / max(reach[j, h, s], sch.tau / 2) * 1.1)) + 16
                    x = g.choice(S, size=batch, p=mdp.mu0)
                    if h > 0:
                        *_, x = _simulate(cumP, R, p, np.full(batch, j), x, 0, h, g)
                    spent += batch
                    x = x[x == s][:need]
                    if x.size:
                        got.append(_simulate(cumP, R, c, g.integers(0, K, size=x.size), x, h, H, g, first_action=a)[:3])
                        need -= x.size
                data[(h, s, a)] = tuple(np.concatenate(z) for z in zip(*got, strict=True))
            episodes += spent
            explored.append((h, s))
            node_eps.append(spent)
            for i in owners:
                seg[i][(h, s)] = _segment_estimates(p[i], m[i], c, data[(h, s, int(p[i, h, s]))], h, True)

    # 3. evaluation on each policy's petal MDP, backward over layers
    est = np.zeros(k)
    for i in range(k):
        W = np.zeros((H + 1, S + 1))  # W[h, s]: Ŵ of explored petal (h, s); row/column −1 (⊥, unexplored) stays 0
        for node in sorted((v for v in seg[i] if v is not None), reverse=True):
            rsum, w_end, nh, ns = seg[i][node]
            W[node] = float(np.mean(rsum + w_end * W[nh, ns]))
        rsum, w_end, nh, ns = seg[i][None]
        est[i] = float(np.mean(rsum + w_end * W[nh, ns]))
    per_layer = np.bincount(np.array([v[0] for v in explored], dtype=np.int64), minlength=H) if explored else np.zeros(H, dtype=np.int64)
    return PoplerResult(estimates=est, best=int(np.argmax(est)), episodes=int(episodes), core_episodes=int(n0), explored=tuple(explored),
                        node_episodes=tuple(node_eps), explored_per_layer=per_layer, reach=reach)
