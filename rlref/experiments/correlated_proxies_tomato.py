"""Reproduction ``correlated-proxies-tomato``: χ² occupancy regularization vs action KL on the
tomato-watering gridworld (Laidlaw, Singhal, Dragan 2024, §6, tomato results).

Every point is an exact optimum: the occupancy programs by cvxpy/Clarabel, action KL by soft
value iteration. The sweep and the claims are computed, never tuned.
"""

from __future__ import annotations

import numpy as np

from rlref.algorithms.occupancy_regularized import occupancy_of, solve, solve_action_kl
from rlref.envs.tomato import tomato_gridworld
from rlref.reproduce import Context, Report, register
from rlref.theory.correlated_proxies import improvement_bound, prescribed_lambda, proxy_correlation, reference_moments, tomato_reference_policy

PAPER = "Laidlaw, Singhal, Dragan (2024), Correlated Proxies: A New Definition and Improved Mitigation for Reward Hacking, arXiv 2403.03185"


@register("correlated-proxies-tomato", paper=PAPER, description="true vs proxy return on tomato watering: chi^2 occupancy vs action KL vs none")
def run(ctx: Context) -> Report:
    env = tomato_gridworld()
    pi_ref = tomato_reference_policy(env)
    mu_ref = occupancy_of(env.mdp, pi_ref)
    R, Rt = env.true_reward, env.proxy_reward
    r = proxy_correlation(R, Rt, mu_ref)
    sigma = reference_moments(Rt, mu_ref)[1]
    lam_theory = prescribed_lambda(sigma, r)
    lam_summary = prescribed_lambda(sigma, r, include_r=False)
    j_ref = float(np.sum(mu_ref * R))
    n = ctx.scale(14, 40)
    lams = np.logspace(-4, 0, n)

    def evaluate(mu: np.ndarray) -> dict[str, float]:
        chk = improvement_bound(R, Rt, mu, mu_ref)
        return {"true": float(np.sum(mu * R)), "proxy": float(np.sum(mu * Rt)), "on_O": float(mu[env.on_transformer()].sum()),
                "bound": chk.bound, "slack": chk.slack}

    def sweep(method: str) -> list[dict[str, float]]:
        out = []
        for lam in ctx.progress(lams, desc=method):
            if method == "action_kl":
                mu = solve_action_kl(env.mdp, None, pi_ref, float(lam)).occupancy
            else:
                mu = solve(env.mdp, None, pi_ref, float(lam), method).occupancy
            out.append({"lam": float(lam), **evaluate(mu)})
        return out

    methods = ["chi2", "sqrt_chi2", "kl", "action_kl"]
    curves = {m: ctx.unit(f"sweep-{m}", lambda m=m: sweep(m)) for m in methods}
    none = ctx.unit("none", lambda: evaluate(solve(env.mdp, None, pi_ref, 0.0).occupancy))
    theory = ctx.unit("theory", lambda: evaluate(solve(env.mdp, None, pi_ref, lam_theory, "sqrt_chi2").occupancy))
    summary = ctx.unit("summary-lambda", lambda: evaluate(solve(env.mdp, None, pi_ref, lam_summary, "sqrt_chi2").occupancy))
    true_opt = ctx.unit("true-optimum", lambda: evaluate(solve(env.mdp, R, pi_ref, 0.0).occupancy))

    ctx.claim("unregularized optimization of the proxy reward-hacks: J(pi*, R) < J(pi_ref, R)",
              expected=f"< {j_ref:.5f}", measured=none["true"], holds=none["true"] < j_ref)
    ctx.claim("sqrt-chi^2 occupancy regularization with the theory's lambda = sigma*sqrt(1-r^2)/r never reward-hacks",
              expected=f">= {j_ref:.5f}", measured=theory["true"], holds=theory["true"] >= j_ref - 1e-9)
    ctx.claim("same with the paper's lambda = sigma*sqrt(1-r^2) (no 1/r; guaranteed by the second bound): no reward hacking",
              expected=f">= {j_ref:.5f}", measured=summary["true"], holds=summary["true"] >= j_ref - 1e-9)
    best = {m: max(p["true"] for p in curves[m]) for m in methods}
    ctx.claim("chi^2 occupancy regularization attains a higher best true return than action KL across the sweep",
              expected=f"> {best['action_kl']:.5f}", measured=best["chi2"], holds=best["chi2"] > best["action_kl"])
    min_slack = min(p["slack"] for m in methods for p in curves[m])
    ctx.claim("the Theorem 5.1 lower bound holds at every point of every sweep", expected=">= 0", measured=min_slack,
              holds=min_slack >= -1e-9)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    labels = {"chi2": "χ² occupancy", "sqrt_chi2": "√χ² occupancy", "kl": "KL occupancy", "action_kl": "action KL"}
    for m in methods:
        x = [p["lam"] for p in curves[m]]
        axes[0].plot(x, [p["true"] for p in curves[m]], marker=".", label=labels[m])
        axes[1].plot(x, [p["proxy"] for p in curves[m]], marker=".", label=labels[m])
    for ax, key in zip(axes, ("true", "proxy"), strict=True):
        ax.axhline(float(np.sum(mu_ref * (R if key == "true" else Rt))), color="k", ls="--", lw=1, label="π_ref")
        ax.axhline(none[key], color="r", ls=":", lw=1, label="no regularization")
        ax.axvline(lam_theory, color="g", lw=0.8, label="λ theory")
        ax.set_xscale("log")
        ax.set_xlabel("λ")
        ax.set_ylabel(f"normalized {key} return")
    axes[0].axhline(true_opt["true"], color="gray", lw=0.8, label="true optimum")
    axes[0].legend(fontsize=7)
    axes[0].set_title(f"tomato watering: true return (r = {r:.3f})")
    axes[1].set_title("proxy return")
    data = {"correlation": r, "sigma_proxy": sigma, "lambda_theory": lam_theory, "lambda_summary": lam_summary,
            "reference_true_return": j_ref, "none": none, "theory": theory, "summary_lambda": summary, "true_optimum": true_opt,
            "best_true": best, "curves": curves}
    return ctx.report(PAPER, figure=fig, data=data,
                      notes="Exact optima on a 240-state tomato gridworld; see docs/correlated_proxies.md.")
