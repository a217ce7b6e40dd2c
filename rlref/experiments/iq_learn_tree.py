"""``iq-learn-tree``: IQ-Learn as TD-regularized MLE (Wulfmeier et al. 2024, §3) on an enumerable token tree.

The expert is a softmax over complete responses of a random task reward R (V=3, L=3, with eos).
We check the exact statements — π = softmax Q is soft-optimal for its implied reward, α → ∞ is
MLE, and on the expert's full distribution the recovered reward makes the expert optimal as α
grows — and measure the paper's empirical claim on *sampled* demonstrations: the χ² TD
regularizer keeps more diversity (entropy) than MLE; whether it also lands closer to the expert
is measured and stated as the statistic it is.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rlref.algorithms.iq_learn import entropy_regularized_policy, fit_iq_learn, mle_policy
from rlref.algorithms.preference_losses import kl_regularized_optimum
from rlref.divergences import entropy, total_variation
from rlref.reproduce import Context, Report, register
from rlref.tokentree import TokenTree

PAPER = "Wulfmeier et al. (2024), Imitating Language via Scalable Inverse Reinforcement Learning (NeurIPS 2024, arXiv 2409.01369)"


@register("iq-learn-tree", paper=PAPER, description="IQ-Learn (χ² TD-regularized MLE) vs MLE on a token tree, exact")
def run(ctx: Context) -> Report:
    tree = TokenTree(3, 3, eos=0)
    n_inst = ctx.scale(6, 30)
    pop_alphas = [1.0, 10.0, 100.0, 1e4]
    sizes = [10, 30, 100]
    alphas = [0.3, 1.0, 3.0]

    def unit_instance(i: int) -> dict:
        rng = ctx.child_rng(i)
        R = rng.normal(size=tree.num_sequences)
        pE = kl_regularized_optimum(R, np.full(R.size, 1.0 / R.size), 1.0)  # the expert: softmax of R
        piE = tree.policy_from_sequence_distribution(pE)
        ident = 0.0
        pop_tv = []
        with np.errstate(divide="ignore"):
            warm = np.maximum(np.log(piE), -30.0)
        for a in pop_alphas:
            res = fit_iq_learn(tree, pE, a, q0=warm, gtol=1e-10)
            ident = max(ident, float(np.abs(entropy_regularized_policy(tree, res.reward) - res.pi).max()))
            pop_tv.append(float(total_variation(tree.sequence_distribution(res.pi), pE)))
        expert_opt = float(np.abs(entropy_regularized_policy(tree, res.reward) - piE).max())
        sampled = {}
        for N in sizes:
            counts = np.bincount(rng.choice(tree.num_sequences, size=N, p=pE), minlength=tree.num_sequences).astype(float)
            data = counts / N
            pm = tree.sequence_distribution(mle_policy(tree, data))
            with np.errstate(divide="ignore"):
                warm = np.maximum(np.log(mle_policy(tree, data)), -30.0)
            big = fit_iq_learn(tree, data, 1e7, q0=warm)
            row = {"mle": {"tv": float(total_variation(pm, pE)), "H": float(entropy(pm)), "R": float(pm @ R)},
                   "mle_gap": float(total_variation(tree.sequence_distribution(big.pi), pm))}
            for a in alphas:
                res = fit_iq_learn(tree, data, a, q0=warm)
                p = tree.sequence_distribution(res.pi)
                ident = max(ident, float(np.abs(entropy_regularized_policy(tree, res.reward) - res.pi).max()))
                row[str(a)] = {"tv": float(total_variation(p, pE)), "H": float(entropy(p)), "R": float(p @ R)}
            sampled[str(N)] = row
        return {"ident": ident, "pop_tv": pop_tv, "expert_opt": expert_opt, "sampled": sampled,
                "H_E": float(entropy(pE)), "R_E": float(pE @ R)}

    res = [ctx.unit(f"inst{i}", lambda i=i: unit_instance(i)) for i in ctx.progress(range(n_inst), "instances")]

    ident = max(r["ident"] for r in res)
    pop = np.array([r["pop_tv"] for r in res])
    expert_opt = max(r["expert_opt"] for r in res)
    mle_gap = max(r["sampled"][str(N)]["mle_gap"] for r in res for N in sizes)

    def stat(key: str, what: str) -> np.ndarray:  # [N] mean over instances
        return np.array([np.mean([r["sampled"][str(N)][key][what] for r in res]) for N in sizes])

    H = {k: stat(k, "H") for k in ["mle", *map(str, alphas)]}
    TV = {k: stat(k, "tv") for k in ["mle", *map(str, alphas)]}
    RW = {k: stat(k, "R") for k in ["mle", *map(str, alphas)]}
    ctx.claim("Inverse soft Bellman: π = softmax Q is the entropy-regularized optimum for the implied reward r = Q − V(s') "
              "(core soft VI, every fit, max |Δπ|)", expected=0.0, measured=ident, tolerance=1e-9)
    ctx.claim("Expert's full distribution as data: TV(π_α, π_E) decreases in α (α = 1, 10, 100, 1e4; every instance)",
              expected="decreasing", measured=pop.mean(axis=0).tolist(), holds=bool(np.all(np.diff(pop, axis=1) < 0)))
    ctx.claim("...and at α = 1e4 the recovered reward makes the expert optimal (core soft VI policy vs π_E, max |Δπ|)",
              expected=0.0, measured=expert_opt, tolerance=1e-4)
    ctx.claim("α → ∞ recovers MLE on sampled data (α = 1e7 vs the empirical conditionals, max TV over responses)",
              expected=0.0, measured=mle_gap, tolerance=1e-5)
    ctx.claim("Diversity (the paper's headline): on sampled demonstrations the IQ-Learn policy (α = 1) has higher response "
              "entropy than MLE, mean over instances, at every dataset size N = 10, 30, 100",
              expected="H_IQ > H_MLE", measured={"H_IQ": H["1.0"].tolist(), "H_MLE": H["mle"].tolist()},
              holds=bool(np.all(H["1.0"] > H["mle"])))
    tv_iq_big = min(float(TV[str(a)][-1]) for a in alphas)
    tv_strong = float(TV[str(min(alphas))][-1])
    ctx.claim("Finding (the paper's quality gain is NOT reproduced here): with a tabular Q the χ² TD term is a shrinkage "
              "toward zero reward (the uniform-over-responses policy); at N = 100 the best α of the grid is within 0.02 "
              "mean TV of MLE (either side), and the strongest regularizer (α = 0.3) is farther from the expert than MLE by > 0.02",
              expected="|min_α TV_IQ − TV_MLE| <= 0.02 and TV_IQ(0.3) − TV_MLE > 0.02",
              measured={"TV_MLE": float(TV["mle"][-1]), "min_alpha_TV_IQ": tv_iq_big, "TV_IQ_alpha_0.3": tv_strong},
              holds=bool(abs(tv_iq_big - TV["mle"][-1]) <= 0.02 and tv_strong - TV["mle"][-1] > 0.02))
    rw_gap = max(float(RW[str(a)][k] - RW["mle"][k]) for a in alphas for k in range(len(sizes)))
    ctx.claim("Finding: the diversity is paid for in task reward — E_π[R] of IQ-Learn is below MLE's at every N and α "
              "(max over the grid of E_IQ[R] − E_MLE[R], mean over instances)",
              expected="< 0", measured=rw_gap, holds=rw_gap < 0)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    ax.loglog(pop_alphas, pop.mean(axis=0), "o-")
    ax.fill_between(pop_alphas, pop.min(axis=0), pop.max(axis=0), alpha=0.2)
    ax.set_xlabel("α")
    ax.set_ylabel("TV(π_α, π_E)")
    ax.set_title("Population data: α → ∞ recovers the expert")
    for ax, M, lab in ((axes[1], H, "response entropy"), (axes[2], RW, "task reward E[R]")):
        ax.plot(sizes, M["mle"], "ks-", label="MLE")
        for a in alphas:
            ax.plot(sizes, M[str(a)], "o-", label=f"IQ-Learn α={a}")
        if lab == "response entropy":
            ax.axhline(np.mean([r["H_E"] for r in res]), color="gray", ls="--", label="expert")
        else:
            ax.axhline(np.mean([r["R_E"] for r in res]), color="gray", ls="--", label="expert")
        ax.set_xscale("log")
        ax.set_xlabel("demonstrations N")
        ax.set_ylabel(lab)
        ax.legend()
        ax.set_title(f"Sampled data: {lab} (mean over {n_inst})")
    fig.suptitle("IQ-Learn as TD-regularized MLE on a token tree (V=3, L=3)")
    fig.tight_layout()
    return ctx.report(PAPER, figure=fig, data={"pop_alphas": pop_alphas, "pop_tv_mean": pop.mean(axis=0), "sizes": sizes,
                                              "alphas": alphas, "entropy": H, "tv": TV, "task_reward": RW,
                                              "expert_entropy": float(np.mean([r["H_E"] for r in res]))})
