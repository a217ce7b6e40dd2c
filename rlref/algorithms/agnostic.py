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

Not implemented: POPLER, the paper's online algorithm for classes with the sunflower property
(§5); only the generative-model algorithm above is here.

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
]


def check_policy_class(policies: object, num_actions: int) -> np.ndarray:
    """``policies`` as an int array [k, h, s] with actions in [0, num_actions); ValueError otherwise."""
    A = check_count("num_actions", num_actions)
    p = np.asarray(policies)
    if p.ndim != 3 or p.shape[0] < 1 or p.shape[1] < 1 or p.shape[2] < 1:
        raise ValueError(f"policies must have shape (k, H, S) with k, H, S >= 1, got {p.shape}")
    if not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"policies must hold integer actions, got dtype {p.dtype}")
    bad = (p < 0) | (p >= A)
    if bad.any():
        k, h, s = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"policies[{k}, {h}, {s}] = {int(p[k, h, s])} is not an action in [0, {A})")
    return p.astype(np.int64)


def _check_nxt(nxt: object, H: int, S: int, A: int) -> np.ndarray:
    t = np.asarray(nxt)
    if t.shape != (max(H - 1, 0), S, A) or (t.size and not np.issubdtype(t.dtype, np.integer)):
        raise ValueError(f"nxt must be an integer array of shape (H-1, S, A) = ({H - 1}, {S}, {A}), got {t.shape}")
    bad = (t < 0) | (t >= S)
    if bad.any():
        h, s, a = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"nxt[{h}, {s}, {a}] = {int(t[h, s, a])} is not a state in [0, {S})")
    return t.astype(np.int64)


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


def policy_values(mdp: TabularMDP, policies: object) -> np.ndarray:
    """Exact expected return from ``mdp.mu0`` of each deterministic layered policy (rlref.solve.policy_evaluation)."""
    if not mdp.is_finite_horizon:
        raise ValueError("mdp must be finite-horizon (a layered MDP with horizon H)")
    p = check_policy_class(policies, mdp.num_actions)
    if p.shape[1:] != (mdp.horizon, mdp.num_states):
        raise ValueError(f"policies must have shape (k, H, S) = (k, {mdp.horizon}, {mdp.num_states}), got {p.shape}")
    eye = np.eye(mdp.num_actions)
    return np.array([float(policy_evaluation(mdp, eye[pi]).objective) for pi in p])


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
