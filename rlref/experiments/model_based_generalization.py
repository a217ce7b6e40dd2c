"""Reproduction ``model-based-generalization``: learning a model narrows the set of value functions more than the Bellman equation.

Part 1 (Young et al. 2023, Theorem 1.1, exact): a ring of N = 12 states, A = 3 actions; action a moves the agent by a
displacement δ_a ∈ {−2, …, 2} that is the same in every state (the factored structure a model can generalize), reward 1
for leaving state 0. The hypothesis class is every δ ∈ {−2, …, 2}³ (125 deterministic models, each a linear MDP with
one-hot features) and the value class is their optimal Q*'s. From n random transitions of the true model, the
model-based learner keeps the models consistent with the data (M_D) and the model-free learner keeps the Q*'s with zero
Bellman residual on the data (F_D). Measured, for each n: |M_D|, |F_D|, the inclusion M_D ⊆ F_D, and the worst-case
true suboptimality J* − J(greedy Q) over each set.

Part 2 (derived here; Parr et al. 2008): on a random linear MDP (S = 20, A = 3, d = 4) with the same features and
data, planning in the least-squares linear model equals LSTD-Q (policy evaluation) and k sweeps of VI in it equal k
iterations of fitted-Q — the two approaches coincide, so the benefit of Part 1 needs model structure beyond φ.

The paper's neural-network illustration and its online Atari-style/combinatorial experiments are not reproduced.
References: Young, Ramesh, Kirsch & Schmidhuber (2023), ICML, arXiv 2211.02222.
"""

from __future__ import annotations

import itertools

import numpy as np

from rlref.algorithms.model_based import (
    fitted_q_iteration,
    linear_model_evaluation,
    linear_model_value_iteration,
    lstd_q,
    optimal_q_values,
    prune_hypotheses,
)
from rlref.linear import random_linear_mdp
from rlref.mdp import TabularMDP
from rlref.policy import greedy_policy
from rlref.reproduce import Context, Report, register
from rlref.solve import policy_evaluation

N, A, GAMMA, DISPLACEMENTS = 12, 3, 0.9, (-2, -1, 0, 1, 2)


def ring_mdp(delta: tuple[int, ...]) -> TabularMDP:
    """s' = (s + δ_a) mod N; r(s, a) = 1 at s = 0; μ0 uniform (derived here)."""
    P = np.zeros((N, A, N))
    for a, d in enumerate(delta):
        P[np.arange(N), a, (np.arange(N) + d) % N] = 1.0
    R = np.zeros((N, A))
    R[0] = 1.0
    return TabularMDP(P, R, gamma=GAMMA, mu0=np.full(N, 1.0 / N), name=f"ring{delta}")


@register("model-based-generalization", paper="Young, Ramesh, Kirsch & Schmidhuber 2023 (ICML), arXiv 2211.02222",
          description="Thm 1.1 exactly: model-consistent Q* set ⊆ Bellman-consistent set on a ring with shared dynamics; "
                      "least-squares linear model planning ≡ LSTD/FQI with the same features")
def run(ctx: Context) -> Report:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hyps = list(itertools.product(DISPLACEMENTS, repeat=A))
    ns = ctx.scale([1, 2, 3, 4, 6, 8, 12], [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24])
    reps = ctx.scale(20, 100)

    def pruning() -> dict:
        rng = ctx.child_rng(0)
        true = int(rng.integers(len(hyps)))
        models = [ring_mdp(h) for h in hyps]
        q_star = optimal_q_values(models)
        M = models[true]
        J = np.array([policy_evaluation(M, greedy_policy(q)).objective for q in q_star])
        J_star = float(J[true])
        nxt = M.dense_P().argmax(-1)
        out = {"true": true, "J_star": J_star, "mb": [], "mf": [], "subset": [], "true_in": [], "worst_mb": [], "worst_mf": [], "unseen": []}
        for i, n in enumerate(ns):
            rows = {k: [] for k in ("mb", "mf", "subset", "true_in", "worst_mb", "worst_mf", "unseen")}
            for r in range(reps):
                g = ctx.child_rng(1, i, r)
                s, a = g.integers(0, N, n), g.integers(0, A, n)
                res = prune_hypotheses(models, (s, a, np.asarray(M.r)[s, a], nxt[s, a]), q_star=q_star)
                rows["unseen"].append(int(A - np.unique(a).size))
                rows["mb"].append(len(res.model_based))
                rows["mf"].append(len(res.model_free))
                rows["subset"].append(bool(res.subset))
                rows["true_in"].append(true in res.model_based and true in res.model_free)
                rows["worst_mb"].append(float(J_star - J[list(res.model_based)].min()))
                rows["worst_mf"].append(float(J_star - J[list(res.model_free)].min()))
            for k in rows:
                out[k].append(rows[k])
        return out

    def linear() -> dict:
        lin = random_linear_mdp(20, 3, 4, rng=ctx.child_rng(2), gamma=0.9)
        pi = np.full((20, 3), 1.0 / 3)
        sizes = [3, 5, 10, 30, 100]
        ev, ctl = [], []
        for j, n in enumerate(sizes):
            g = ctx.child_rng(3, j)
            s, a = g.integers(0, 20, n), g.integers(0, 3, n)
            sn = np.array([g.choice(20, p=lin.P[x, y] / lin.P[x, y].sum()) for x, y in zip(s, a, strict=True)])
            D = (s, a, lin.r[s, a], sn)
            q1, q2 = linear_model_evaluation(lin.phi, D, pi, 0.9, 1e-3), lstd_q(lin.phi, D, pi, 0.9, 1e-3)
            ev.append(float(np.abs(q1 - q2).max() / (1 + np.abs(q1).max())))
            c1, c2 = linear_model_value_iteration(lin.phi, D, 0.9, 30, 1e-3), fitted_q_iteration(lin.phi, D, 0.9, 30, 1e-3)
            ctl.append(float(np.abs(c1 - c2).max() / (1 + np.abs(c1).max())))
        return {"sizes": sizes, "eval_rel_diff": ev, "control_rel_diff": ctl}

    p = ctx.unit("pruning", pruning)
    lin = ctx.unit("linear", linear)
    mb, mf = np.array(p["mb"]), np.array(p["mf"])
    wmb, wmf = np.array(p["worst_mb"]), np.array(p["worst_mf"])
    nd = len(ns) * reps
    ctx.claim(f"Theorem 1.1: the model-based set M_D ⊆ the model-free (Bellman-consistent) set F_D in every dataset "
              f"({len(ns)} sizes × {reps} datasets)", expected=nd, measured=int(np.sum(p["subset"])), holds=bool(np.all(p["subset"])))
    ctx.claim("the data-generating model survives both prunings in every dataset", expected=nd, measured=int(np.sum(p["true_in"])),
              holds=bool(np.all(p["true_in"])))
    ctx.claim("learning the model prunes strictly more on average: mean |F_D| > mean |M_D| at the smallest dataset "
              f"(n = {ns[0]}) and at n = {ns[2]}", expected="mean |F_D| > mean |M_D|",
              measured={"n": [ns[0], ns[2]], "mean_MB": [float(mb[0].mean()), float(mb[2].mean())],
                        "mean_MF": [float(mf[0].mean()), float(mf[2].mean())]},
              holds=bool(mf[0].mean() > mb[0].mean() and mf[2].mean() > mb[2].mean()))
    ctx.claim("so the worst-case true suboptimality of a hypothesis the model-based learner cannot rule out is never larger "
              "than the model-free one's (every dataset), and smaller on average over all sizes", expected="≤ always, < on average",
              measured={"violations": int(np.sum(wmb > wmf + 1e-12)), "mean_worst_MB": float(wmb.mean()), "mean_worst_MF": float(wmf.mean())},
              holds=bool(np.all(wmb <= wmf + 1e-12) and wmb.mean() < wmf.mean()))
    closed = len(DISPLACEMENTS) ** np.array(p["unseen"])
    ctx.claim(f"closed form for the model-based set: |M_D| = {len(DISPLACEMENTS)}^(number of actions never tried in D) in every "
              "dataset (one transition pins down δ_a), so M_D = {true model} once every action is tried",
              expected="0 datasets where |M_D| ≠ 5^unseen", measured=int(np.sum(mb != closed)), holds=bool(np.all(mb == closed)))
    worst = max(max(lin["eval_rel_diff"]), max(lin["control_rel_diff"]))
    ctx.claim("same features, same data (derived here, Parr et al. 2008): planning in the least-squares linear model equals "
              "LSTD-Q and 30 VI sweeps in it equal 30 FQI iterations (max relative difference over 5 dataset sizes)",
              expected=0.0, measured=worst, tolerance=1e-8, holds=worst <= 1e-8)

    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(14, 4.2))
    ax0.plot(ns, mf.mean(1), "s-", label=r"model-free $|F_D|$ (Bellman-consistent $Q^*$)")
    ax0.plot(ns, mb.mean(1), "o-", label=r"model-based $|M_D|$ (consistent models)")
    ax0.set_yscale("log")
    ax0.set_xlabel("transitions n")
    ax0.set_ylabel(f"surviving hypotheses (of {len(hyps)})")
    ax0.set_title("Thm 1.1 on the ring: hypotheses left", fontsize=10)
    ax0.legend(fontsize=8)
    ax1.plot(ns, wmf.mean(1), "s-", label="model-free")
    ax1.plot(ns, wmb.mean(1), "o-", label="model-based")
    ax1.set_xlabel("transitions n")
    ax1.set_ylabel(r"worst-case $J^* - J(\pi_Q)$ over the set")
    ax1.set_title("worst-case suboptimality (mean over datasets)", fontsize=10)
    ax1.legend(fontsize=8)
    ax2.semilogy(lin["sizes"], np.maximum(lin["eval_rel_diff"], 1e-17), "o-", label="model eval vs LSTD-Q")
    ax2.semilogy(lin["sizes"], np.maximum(lin["control_rel_diff"], 1e-17), "s-", label="model VI vs FQI (k = 30)")
    ax2.set_xlabel("transitions n")
    ax2.set_ylabel("max relative difference")
    ax2.set_title("linear LS model ≡ model-free (same φ)", fontsize=10)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return ctx.report("Young, Ramesh, Kirsch & Schmidhuber (2023), ICML, arXiv 2211.02222", figure=fig,
                      data={"ns": list(ns), "reps": reps, "num_hypotheses": len(hyps), "true_hypothesis": list(hyps[p["true"]]),
                            "J_star": p["J_star"], "mean_MB": mb.mean(1).tolist(), "mean_MF": mf.mean(1).tolist(),
                            "mean_worst_MB": wmb.mean(1).tolist(), "mean_worst_MF": wmf.mean(1).tolist(), "linear": lin},
                      notes="Exact finite-class version of Theorem 1.1 (deterministic models, value class = the models' Q*); the "
                            "ring instance and the linear least-squares equivalence are derived here. The paper's neural-network "
                            "example and online experiments are not reproduced.")
