"""``optimistic-actor-critic``: √T regret of the optimistic actor-critic with rare switching (tabular).

Tan, Fan, Wei (2025), "Actor-Critics Can Achieve Optimal Sample Efficiency" (ICML 2025). On
RiverSwim (6 states, H = 20): the optimistic off-policy critic for Q* (UCB-VI bonus), NPG actor
and doubling-rule rare switching with actor resets; the cumulative regret's log-log slope,
fitted per run, with a t-interval over runs; the number of switches against its bound; a
non-optimistic (bonus 0) and an every-episode-critic variant for comparison.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from rlref.algorithms.optimistic_ac import optimistic_actor_critic, regret_slope, switch_bound
from rlref.envs.chains import riverswim
from rlref.reproduce import Context, Report, register

PAPER = "Tan, Fan, Wei (2025), Actor-Critics Can Achieve Optimal Sample Efficiency (ICML 2025, arXiv 2505.03710)"
N_STATES, H, BONUS = 6, 20, 0.1


@register("optimistic-actor-critic", paper=PAPER, description="Optimistic actor-critic (UCB critic for Q*, NPG actor, rare switching): regret slope")
def run(ctx: Context) -> Report:
    mdp = riverswim(N_STATES, horizon=H)
    T = ctx.scale(2000, 20000)
    runs = ctx.scale(4, 10)

    def one(kind: str, i: int) -> dict:
        rng = ctx.child_rng({"optimistic": 0, "greedy": 1, "every": 2}[kind], i)
        res = optimistic_actor_critic(mdp, T, bonus_scale=0.0 if kind == "greedy" else BONUS,
                                      rare_switching=kind != "every", rng=rng)
        marks = np.unique(np.geomspace(1, T, 60).astype(int))
        return {"cumulative": res.cumulative[marks - 1], "checkpoints": marks,
                "slope": regret_slope(res.cumulative) if res.cumulative[int(0.1 * T)] > 0 else float("nan"),
                "switches": len(res.switches), "min_regret": float(res.regret.min()), "tail": float(res.regret[-T // 10:].mean()),
                "total": float(res.cumulative[-1]), "v_star": res.optimal_value}

    jobs = [("optimistic", i) for i in range(runs)] + [("greedy", i) for i in range(runs)] + [("every", i) for i in range(ctx.scale(1, 3))]
    out = {f"{k}{i}": ctx.unit(f"{k}_{i}", lambda k=k, i=i: one(k, i)) for k, i in ctx.progress(jobs, desc="runs")}
    opt = [out[f"optimistic{i}"] for i in range(runs)]
    slopes = np.array([o["slope"] for o in opt])
    half = float(stats.t.ppf(0.975, runs - 1) * slopes.std(ddof=1) / np.sqrt(runs))
    lo, hi = float(slopes.mean() - half), float(slopes.mean() + half)
    bound = switch_bound(N_STATES, 2, T)
    sw = max(o["switches"] for o in opt)
    v_star = opt[0]["v_star"]
    tail = max(o["tail"] for o in opt)

    ctx.claim(f"Sublinear regret: fitted log-log slope of R(t) on t in [T/10, T] (T = {T}), mean and 95% t-interval over {runs} runs: upper end < 1",
              expected="< 1", measured=[float(slopes.mean()), lo, hi], holds=bool(hi < 1.0))
    ctx.claim("Consistent with the sqrt(T) rate (up to logs): the mean fitted slope is <= 0.6",
              expected="<= 0.6", measured=float(slopes.mean()), holds=bool(slopes.mean() <= 0.6))
    ctx.claim(f"Rare switching: critic recomputations <= S A (floor(log2 T) + 1) + 1 = {bound} (max over runs), i.e. <= 5% of the episodes",
              expected=f"<= {bound}", measured=sw, holds=bool(sw <= bound and sw <= 0.05 * T))
    ctx.claim("Exact regret accounting: every episode's regret V* - V^pi_t is >= 0 (min over runs)",
              expected=">= 0", measured=min(o["min_regret"] for o in opt), holds=bool(min(o["min_regret"] for o in opt) >= -1e-9))
    ctx.claim("The policy learns: mean regret over the last 10% of episodes < 10% of V* (max over runs)",
              expected=f"< {0.1 * v_star:.3f}", measured=tail, holds=bool(tail < 0.1 * v_star))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    for kind, col in (("optimistic", "C0"), ("greedy", "C3"), ("every", "C2")):
        for i, key in enumerate(k for k in out if k.startswith(kind)):
            o = out[key]
            ax.loglog(o["checkpoints"], np.maximum(o["cumulative"], 1e-3), color=col, alpha=0.7, lw=1,
                      label={"optimistic": f"optimistic AC, rare switching (c = {BONUS})", "greedy": "no optimism (c = 0)",
                             "every": "critic every episode, no resets"}[kind] if i == 0 else None)
    t = np.geomspace(T / 10, T, 10)
    ax.loglog(t, opt[0]["cumulative"][-1] * np.sqrt(t / T), "k--", lw=1, label="∝ √t")
    ax.set_xlabel("episode t")
    ax.set_ylabel("cumulative regret R(t)")
    ax.set_title(f"RiverSwim (S = {N_STATES}, H = {H})")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.bar(range(runs), slopes, color="C0")
    ax.axhline(0.5, color="k", ls="--", lw=1, label="1/2")
    ax.axhline(1.0, color="C3", ls=":", lw=1, label="linear")
    ax.set_xlabel("run")
    ax.set_ylabel("fitted slope of log R vs log t")
    ax.set_title(f"slope {slopes.mean():.2f}  [{lo:.2f}, {hi:.2f}] (95%)")
    ax.legend(fontsize=8)
    fig.suptitle("Optimistic actor-critic: off-policy optimistic critic for Q*, NPG actor, rare switching")
    fig.tight_layout()
    return ctx.report(PAPER, figure=fig, data={"T": T, "slopes": slopes, "slope_ci": [lo, hi], "switches": [o["switches"] for o in opt],
                                               "switch_bound": bound, "total_regret": {k: v["total"] for k, v in out.items()},
                                               "greedy_slopes": [out[f"greedy{i}"]["slope"] for i in range(runs)]})
