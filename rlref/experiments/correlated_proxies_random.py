"""Reproduction ``correlated-proxies-random``: reward hacking on random MDPs with r-correlated
proxies, r in [0, 1] (Laidlaw, Singhal, Dragan 2024, §4–5): how often the optimum of the proxy
reward-hacks, whether the theory's √χ² regularization ever does, and how tight Theorem 5.1 is.
"""

from __future__ import annotations

import numpy as np

from rlref.algorithms.occupancy_regularized import solve, solve_action_kl
from rlref.reproduce import Context, Report, register
from rlref.theory.correlated_proxies import improvement_bound, prescribed_lambda, random_proxy_instance, reference_moments

PAPER = "Laidlaw, Singhal, Dragan (2024), Correlated Proxies: A New Definition and Improved Mitigation for Reward Hacking, arXiv 2403.03185"


@register("correlated-proxies-random", paper=PAPER, description="reward-hacking frequency and bound tightness on random MDPs over r in [0, 1]")
def run(ctx: Context) -> Report:
    rs = ctx.scale([0.0, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0], [float(x) for x in np.round(np.linspace(0, 1, 11), 2)] + [0.95])
    rs = sorted(set(rs))
    n = ctx.scale(12, 60)
    S, A = ctx.scale(8, 15), 3

    def unit(ri: int, r: float) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {k: [] for k in ("none", "theory", "theory_paper", "action_kl", "bound_theory", "slack_theory", "slack_none")}
        for i in range(n):
            inst = random_proxy_instance(S, A, r, ctx.child_rng(ri, i), gamma=0.9)
            R, Rt, mu_ref, pi_ref = inst.true_reward, inst.proxy_reward, inst.reference_occupancy, inst.pi_ref
            none = solve(inst.mdp, None, pi_ref, 0.0).occupancy
            chk_none = improvement_bound(R, Rt, none, mu_ref)
            out["none"].append(chk_none.true_improvement)
            out["slack_none"].append(chk_none.slack)
            if r > 0:
                sigma_proxy = reference_moments(Rt, mu_ref)[1]
                lam = prescribed_lambda(sigma_proxy, r)
                th = solve(inst.mdp, None, pi_ref, lam, "sqrt_chi2").occupancy
                lam_paper = prescribed_lambda(sigma_proxy, r, include_r=False)
                th_paper = solve(inst.mdp, None, pi_ref, lam_paper, "sqrt_chi2").occupancy
                out["theory_paper"].append(float(np.sum((th_paper - mu_ref) * R)))
                ad = solve_action_kl(inst.mdp, None, pi_ref, lam).occupancy
                chk = improvement_bound(R, Rt, th, mu_ref)
                out["theory"].append(chk.true_improvement)
                out["bound_theory"].append(chk.bound)
                out["slack_theory"].append(chk.slack)
                out["action_kl"].append(float(np.sum((ad - mu_ref) * R)))
        return out

    results = {r: ctx.unit(f"r{r:.2f}-paperlam", lambda ri=ri, r=r: unit(ri, r)) for ri, r in enumerate(ctx.progress(rs, desc="r"))}
    freq = {m: {r: float(np.mean(np.asarray(results[r][m]) < -1e-9)) if results[r][m] else None for r in rs}
            for m in ("none", "theory", "theory_paper", "action_kl")}
    theory_hacks = sum(int(np.sum(np.asarray(results[r]["theory"]) < -1e-7)) for r in rs)
    paper_hacks = sum(int(np.sum(np.asarray(results[r]["theory_paper"]) < -1e-7)) for r in rs)
    min_slack = min(min(results[r]["slack_none"] + results[r]["slack_theory"]) for r in rs)
    ctx.claim("with lambda = sigma*sqrt(1-r^2)/r the sqrt-chi^2 optimum never reward-hacks (count over all instances, r > 0)",
              expected=0, measured=theory_hacks, holds=theory_hacks == 0)
    ctx.claim("with the paper's lambda = sigma*sqrt(1-r^2) (prescribed_lambda(..., include_r=False)) the sqrt-chi^2 optimum "
              "never reward-hacks (count over all instances, r > 0)",
              expected=0, measured=paper_hacks, holds=paper_hacks == 0)
    ctx.claim("Theorem 5.1's lower bound holds on every instance (min slack)", expected=">= 0", measured=min_slack, holds=min_slack >= -1e-9)
    ctx.claim("a perfectly correlated proxy (r = 1, full-support reference) is never hacked", expected=0.0, measured=freq["none"][1.0],
              holds=freq["none"][1.0] == 0.0)
    ctx.claim("the unregularized proxy optimum reward-hacks on some instances with r <= 0.4", expected="> 0",
              measured={r: freq["none"][r] for r in rs if r <= 0.4}, holds=any(freq["none"][r] > 0 for r in rs if r <= 0.4))
    tight = {r: float(np.mean(np.asarray(results[r]["theory"]) - np.asarray(results[r]["bound_theory"]))) for r in rs if r > 0}

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for m, lab in (("none", "no regularization"), ("action_kl", "action KL, same λ"), ("theory", "√χ² occupancy, λ = σ√(1−r²)/r"),
                   ("theory_paper", "√χ² occupancy, λ = σ√(1−r²) (paper)")):
        xs = [r for r in rs if freq[m][r] is not None]
        axes[0].plot(xs, [freq[m][r] for r in xs], marker="o", label=lab)
    axes[0].set_xlabel("correlation r under μ_ref")
    axes[0].set_ylabel("fraction of instances with reward hacking")
    axes[0].legend(fontsize=8)
    xs = [r for r in rs if r > 0]
    axes[1].plot(xs, [np.mean(results[r]["theory"]) for r in xs], marker="o", label="true improvement (√χ², λ theory)")
    axes[1].plot(xs, [np.mean(results[r]["bound_theory"]) for r in xs], marker="s", label="Theorem 5.1 lower bound")
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set_xlabel("r")
    axes[1].set_ylabel("J(π,R) − J(π_ref,R) (mean)")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"random MDPs (S={S}, A={A}, γ=0.9, {n} per r)")
    return ctx.report(PAPER, figure=fig, data={"r": rs, "hacking_frequency": freq, "mean_gap_to_bound": tight, "results": results},
                      notes="Proxies built with exact correlation r under mu_ref; see docs/correlated_proxies.md.")
