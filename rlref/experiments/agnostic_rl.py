"""``agnostic-rl``: the spanning capacity, by brute force, governs the cost of agnostic learning.

Jia, Li, Rakhlin, Sekhari, Srebro (2023), "When is Agnostic RL Statistically Tractable?". On
layered MDPs (H = 3 layers of S = 3 states, A = 2), four policy classes of different spanning
capacity C(Π) (computed by exact search); trajectory trees with a generative model on random
stochastic layered MDPs: queries per tree against H·C(Π), and ε-optimality within the class.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rlref.algorithms.agnostic import policy_values, singleton_class, spanning_capacity, trajectory_tree_learn, trees_needed
from rlref.mdp import TabularMDP
from rlref.reproduce import Context, Report, register

PAPER = "Jia, Li, Rakhlin, Sekhari, Srebro (2023), When is Agnostic Reinforcement Learning Statistically Tractable? (NeurIPS 2023)"
H, S, A = 3, 3, 2
EPS, DELTA = 0.5, 0.1


def _classes(rng: np.random.Generator) -> dict[str, np.ndarray]:
    const = np.stack([np.zeros((H, S), dtype=np.int64), np.ones((H, S), dtype=np.int64)])
    layer = np.array([np.repeat(np.array(bits)[:, None], S, axis=1) for bits in np.ndindex(*(A,) * H)], dtype=np.int64)
    return {"constant": const, "singletons": singleton_class(H, S), "layer-only": layer,
            "random-10": rng.integers(0, A, size=(10, H, S))}


@register("agnostic-rl", paper=PAPER, description="Spanning capacity by exact search; trajectory-tree cost vs H*C(Pi); eps-optimal within the class")
def run(ctx: Context) -> Report:
    classes = _classes(ctx.child_rng(0))
    caps = {name: spanning_capacity(p, A) for name, p in classes.items()}
    instances = ctx.scale(12, 60)

    def one(name: str) -> dict:
        pols = classes[name]
        n = trees_needed(len(pols), H, EPS, DELTA)
        rng = ctx.child_rng(1, list(classes).index(name))
        q_mean, q_max, ok, nodes, gaps = [], [], [], [], []
        for _ in range(instances):
            P = rng.dirichlet(np.full(S, 0.5), size=(H, S, A))
            mdp = TabularMDP(P, rng.random((H, S, A)), horizon=H, mu0=np.eye(S)[0])
            res = trajectory_tree_learn(mdp, pols, n, rng=rng)
            v = policy_values(mdp, pols)
            q_mean.append(res.queries / res.trees)
            q_max.append(res.max_queries_per_tree)
            nodes.append(res.max_layer_nodes.tolist())
            gaps.append(float(v.max() - v[res.best]))
            ok.append(bool(v.max() - v[res.best] <= EPS))
        return {"trees": n, "q_mean": q_mean, "q_max": q_max, "ok": ok, "nodes": nodes, "gaps": gaps}

    out = {name: ctx.unit(f"trees_{name}", lambda name=name: one(name)) for name in ctx.progress(list(classes), desc="classes")}
    names = list(classes)
    C = [caps[nm].capacity for nm in names]
    sizes = [len(classes[nm]) for nm in names]
    mean_q = [float(np.mean(out[nm]["q_mean"])) for nm in names]
    ratio = max(max(out[nm]["q_max"]) / (H * caps[nm].capacity) for nm in names)
    layer_ok = all(np.all(np.array(out[nm]["nodes"]) <= caps[nm].per_layer) for nm in names)
    success = [float(np.mean(out[nm]["ok"])) for nm in names]

    ctx.claim("Spanning capacities by exact search: constant 2, singletons H + 1 = 4, layer-only min(A^H, S A) = 6 (derived closed forms)",
              expected=[2, 4, 6], measured=C[:3], tolerance=0)
    ctx.claim("C(Pi) <= |Pi| for every class, and the singletons class has C = 4 << |Pi| = 1 + H S = 10",
              expected=True, measured={"C": C, "size": sizes}, holds=all(c <= k for c, k in zip(C, sizes, strict=True)) and C[1] < sizes[1])
    ctx.claim("Each trajectory tree's layer-h nodes never exceed max_M C_h(Pi; M), so a tree costs <= H C(Pi) queries (max ratio over all trees)",
              expected="<= 1", measured=ratio, holds=bool(layer_ok and ratio <= 1.0))
    monotone = all(mean_q[i] < mean_q[j] for i in range(len(names)) for j in range(len(names)) if C[i] < C[j])
    ctx.claim("Mean generative queries per tree are larger for every class of larger C(Pi) (C_i < C_j implies q_i < q_j)",
              expected="monotone in C", measured={nm: q for nm, q in zip(names, mean_q, strict=True)}, holds=bool(monotone))
    ctx.claim(f"n = ceil(H^2 log(2|Pi|/delta)/(2 (eps/2)^2)) trees: the chosen policy is eps = {EPS}-optimal within the class on >= 1 - delta "
              f"of the random MDPs (fraction per class, {instances} MDPs each)",
              expected=f">= {1 - DELTA}", measured={nm: s for nm, s in zip(names, success, strict=True)}, holds=bool(min(success) >= 1 - DELTA))
    total = {nm: float(np.mean(out[nm]["q_mean"]) * out[nm]["trees"]) for nm in names}
    naive = {nm: float(H * sizes[i] * out[nm]["trees"]) for i, nm in enumerate(names)}
    ctx.claim("Trees share samples: total queries <= those of evaluating each policy with its own n rollouts (H |Pi| n), for every class",
              expected="ratio <= 1", measured={nm: total[nm] / naive[nm] for nm in names}, holds=all(total[nm] <= naive[nm] for nm in names))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    x = np.arange(len(names))
    ax.bar(x - 0.2, sizes, 0.4, label="|Π|")
    ax.bar(x + 0.2, C, 0.4, label="C(Π) (exact search)")
    ax.set_xticks(x, names)
    ax.set_title(f"policy classes (H = {H}, S = {S}, A = {A})")
    ax.legend(fontsize=8)
    ax = axes[1]
    for i, nm in enumerate(names):
        ax.scatter(np.full(len(out[nm]["q_mean"]), C[i]) + 0.05 * (i - 1.5), out[nm]["q_mean"], s=12, label=nm)
    cc = np.arange(0, max(C) + 2)
    ax.plot(cc, H * cc, "k--", lw=1, label="H·C(Π)")
    ax.set_xlabel("spanning capacity C(Π)")
    ax.set_ylabel("generative queries per trajectory tree")
    ax.set_title("trajectory-tree cost vs capacity (one dot per random MDP)")
    ax.legend(fontsize=8)
    fig.suptitle("Agnostic RL: the spanning capacity governs the cost with a generative model")
    fig.tight_layout()
    return ctx.report(PAPER, figure=fig, data={"capacity": dict(zip(names, C, strict=True)), "size": dict(zip(names, sizes, strict=True)),
                                               "per_layer": {nm: caps[nm].per_layer for nm in names},
                                               "mean_queries_per_tree": dict(zip(names, mean_q, strict=True)),
                                               "trees": {nm: out[nm]["trees"] for nm in names}, "success": dict(zip(names, success, strict=True)),
                                               "max_gap": {nm: max(out[nm]["gaps"]) for nm in names}})
