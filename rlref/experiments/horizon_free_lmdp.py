"""``horizon-free-lmdp``: belief-state planning in a latent MDP and the regret's (non-)dependence on H.

Zhou, Wang, Du (2023), "Horizon-Free and Variance-Dependent Reinforcement Learning for Latent
MDPs" (ICML 2023, arXiv 2210.11604). On a two-context probe chain whose total reward is ≤ 0.8 for
every H (the paper's normalization): exact belief planning over histories (alpha vectors), then
the value-optimistic learner with context in hindsight, with the variance-aware (Bernstein) bonus
and a variance-unaware (Hoeffding) bonus, swept over H at a fixed number of episodes K.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rlref.algorithms.lmdp import latent_probe_chain, lmdp_max_return, lmdp_optimistic, lmdp_plan, lmdp_policy_value
from rlref.algorithms.rates import loglog_slope
from rlref.mdp import TabularMDP
from rlref.reproduce import Context, Report, register
from rlref.solve import value_iteration

PAPER = "Zhou, Wang, Du (2023), Horizon-Free and Variance-Dependent RL for Latent MDPs (ICML 2023, arXiv 2210.11604)"
C1, C2 = 0.5, 0.05


@register("horizon-free-lmdp", paper=PAPER, description="Latent MDPs: exact belief planning; optimistic learner's regret vs the horizon H")
def run(ctx: Context) -> Report:
    Hs = ctx.scale([2, 4, 8], [2, 4, 8, 16])
    K = ctx.scale(200, 1000)
    runs = ctx.scale(2, 5)

    planning = {}
    for H in Hs:
        lmdp = latent_probe_chain(H)
        v, planner = lmdp_plan(lmdp)
        revealed = sum(lmdp.weights[m] * value_iteration(TabularMDP(P=lmdp.P[m], R=lmdp.R[m], horizon=H, mu0=lmdp.nu[m])).objective
                       for m in range(lmdp.M))
        # best policy that ignores the history (one action sequence per stage-state, no belief): context-averaged MDP
        avg = TabularMDP(P=np.einsum("m,msat->sat", lmdp.weights, lmdp.P), R=np.einsum("m,msa->sa", lmdp.weights, lmdp.R), horizon=H,
                         mu0=lmdp.nu[0])
        planning[H] = {"v_star": v, "v_pi": lmdp_policy_value(lmdp, planner), "revealed": float(revealed),
                       "markov": float(value_iteration(avg).objective), "max_return": lmdp_max_return(lmdp), "nodes": planner.histories}

    def one(kind: str, H: int, i: int) -> dict:
        rng = ctx.child_rng({"bernstein": 0, "hoeffding": 1}[kind], H, i)
        res = lmdp_optimistic(latent_probe_chain(H), K, bonus=kind, c1=C1, c2=C2, rng=rng)
        return {"cumulative": res.cumulative, "min_regret": float(res.regret.min()), "epochs": len(res.epoch_starts)}

    jobs = [(k, H, i) for k in ("bernstein", "hoeffding") for H in Hs for i in range(runs)]
    out = {(k, H, i): ctx.unit(f"{k}_H{H}_{i}", lambda k=k, H=H, i=i: one(k, H, i)) for k, H, i in ctx.progress(jobs, desc="runs")}
    final = {k: np.array([np.mean([out[(k, H, i)]["cumulative"][-1] for i in range(runs)]) for H in Hs]) for k in ("bernstein", "hoeffding")}
    slope = {k: loglog_slope(Hs, final[k]) for k in final}

    gap = max(abs(p["v_star"] - p["v_pi"]) for p in planning.values())
    ctx.claim("Belief planning is exact: V* from the alpha-vector recursion equals the value of its policy by enumeration of histories (max over H)",
              expected=0.0, measured=gap, tolerance=1e-12, holds=bool(gap <= 1e-12))
    ok = all(p["markov"] - 1e-12 <= p["v_star"] <= p["revealed"] + 1e-12 for p in planning.values())
    ctx.claim("Value of information: best history-blind (context-averaged MDP) value <= V* <= value with the context revealed up front (all H)",
              expected="markov <= V* <= revealed", measured={H: [p["markov"], p["v_star"], p["revealed"]] for H, p in planning.items()}, holds=ok)
    gains = [planning[H]["v_star"] - planning[H]["markov"] for H in Hs]
    ctx.claim("Instance: the value of in-episode information V* - (best history-blind value) is >= 0 and grows with H, > 0.02 at the largest H",
              expected="non-decreasing in H, > 0.02 at H_max", measured=gains,
              holds=bool(np.all(np.diff(gains) >= -1e-12) and gains[-1] > 0.02))
    mr = max(p["max_return"] for p in planning.values())
    ctx.claim("Instance: the total reward of every episode is <= 1 for every H (the paper's normalization)",
              expected="<= 1", measured=mr, holds=bool(mr <= 1 + 1e-12))
    mn = min(o["min_regret"] for o in out.values())
    ctx.claim("Exact regret accounting: every episode's V* - V^pi_k >= 0 (min over all runs)", expected=">= 0", measured=mn, holds=bool(mn >= -1e-12))
    ctx.claim(f"Horizon-free (finding at this scale): the variance-aware learner's regret at K = {K} does not grow with H: "
              f"log-log slope of mean regret vs H in {Hs} is <= 0.25", expected="<= 0.25", measured=slope["bernstein"],
              holds=bool(slope["bernstein"] <= 0.25))
    ctx.claim("The variance-unaware (Hoeffding) bonus's regret grows faster with H than the variance-aware one's (log-log slopes)",
              expected="slope_hoeffding > slope_bernstein", measured=[slope["hoeffding"], slope["bernstein"]],
              holds=bool(slope["hoeffding"] > slope["bernstein"]))
    ratio = float(final["hoeffding"][-1] / final["bernstein"][-1])
    ctx.claim(f"At the largest H = {Hs[-1]} the variance-aware bonus has less regret than the Hoeffding bonus",
              expected="> 1", measured=ratio, holds=bool(ratio > 1))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    for j, H in enumerate(Hs):
        for k, ls in (("bernstein", "-"), ("hoeffding", "--")):
            c = np.mean([out[(k, H, i)]["cumulative"] for i in range(runs)], axis=0)
            ax.plot(np.arange(1, K + 1), c, ls, color=f"C{j}", label=f"H = {H}, {k}")
    ax.set_xlabel("episode k")
    ax.set_ylabel("cumulative regret (mean over runs)")
    ax.set_title("latent probe chain (M = 2, S = 3, A = 2)")
    ax.legend(fontsize=7)
    ax = axes[1]
    for k, mk in (("bernstein", "o-"), ("hoeffding", "s--")):
        ax.loglog(Hs, final[k], mk, label=f"{k} (slope {slope[k]:.2f})")
    ax.set_xlabel("horizon H")
    ax.set_ylabel(f"regret after K = {K}")
    ax.set_title("regret vs horizon (total reward <= 1)")
    ax.legend(fontsize=8)
    fig.suptitle("Horizon-free LMDP learning: variance-aware vs Hoeffding optimism, context in hindsight")
    fig.tight_layout()
    return ctx.report(PAPER, figure=fig, data={"H": Hs, "K": K, "runs": runs, "planning": {str(H): p for H, p in planning.items()},
                                               "final_regret": {k: v.tolist() for k, v in final.items()}, "slopes": slope, "c1": C1, "c2": C2})
