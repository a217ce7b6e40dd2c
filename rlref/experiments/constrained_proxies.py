"""Reproduction ``constrained-proxies``: a composite of proxy rewards with per-component thresholds
(Moskovitz et al. 2023, constrained RLHF): maximize the task proxy R_0 while the other proxy
components R_1, R_2 stay at or below their proxy points, solved by the Lagrangian primal-dual
method; each component stays under its threshold and the duality gap goes to 0. Also reports the two-stage
constrained actor-critic (Cai et al. 2023) on the same instance.
"""

from __future__ import annotations

import numpy as np

from rlref.algorithms.constrained import lagrangian_primal_dual, solve_cmdp, two_stage
from rlref.algorithms.occupancy_regularized import solve
from rlref.reproduce import Context, Report, register
from rlref.theory.correlated_proxies import correlated_proxy, random_proxy_instance

PAPER = ("Moskovitz et al. (2023), Confronting Reward Model Overoptimization with Constrained RLHF, arXiv 2310.04373; "
         "Cai et al. (2023), Two-Stage Constrained Actor-Critic for Short Video Recommendation, arXiv 2302.01680")


@register("constrained-proxies", paper=PAPER, description="Lagrangian primal-dual keeps each proxy component under its threshold; gap -> 0")
def run(ctx: Context) -> Report:
    S, A, K = ctx.scale(10, 25), 3, 3
    T = ctx.scale(3000, 20000)
    inst = random_proxy_instance(S, A, 0.6, ctx.child_rng(0), gamma=0.9)
    mdp, R, mu_ref, pi_ref = inst.mdp, inst.true_reward, inst.reference_occupancy, inst.pi_ref
    comps = np.stack([inst.proxy_reward] + [correlated_proxy(R, mu_ref, 0.6, ctx.child_rng(k)) for k in range(1, K)])
    # proxy points: a quarter of the way from the reference's component return to its maximum
    j_ref = np.einsum("ksa,sa->k", comps, mu_ref)
    j_max = np.array([solve(mdp, c, pi_ref, 0.0).proxy_return for c in comps])
    theta = j_ref + 0.25 * (j_max - j_ref)
    # the task proxy R_0 is the objective (no threshold); R_1.. are constrained at their proxy points
    reward, cons, theta = comps[0], comps[1:], theta[1:]
    lp = solve_cmdp(mdp, reward, cons, theta)
    lag = ctx.unit("lagrangian", lambda: _lag_summary(lagrangian_primal_dual(mdp, reward, cons, theta, iterations=T, step=1.0), R))
    free = solve(mdp, reward, pi_ref, 0.0)
    ts = two_stage(mdp, comps[0], comps[1:], np.full(K - 1, 0.5), aux_temperature=0.05)

    viol = float(lag["max_violation"])
    ctx.claim("the Lagrangian method keeps each proxy component under its threshold (max violation of the averaged policy)",
              expected=0.0, measured=viol, tolerance=1e-2 * float(np.max(np.abs(theta))) + 1e-3)
    ctx.claim("the duality gap goes to 0 (final |gap|)", expected=0.0, measured=abs(lag["gap"]), tolerance=1e-2 * (1 + abs(lp.objective)))
    g = np.asarray(lag["gap_trace"])
    ctx.claim("the duality gap shrinks: |gap| at T <= |gap| at T/10", expected="<=", measured=[float(g[len(g) // 10 - 1]), float(g[-1])],
              holds=bool(abs(g[-1]) <= abs(g[len(g) // 10 - 1]) + 1e-12))
    ctx.claim("the Lagrangian objective matches the exact CMDP LP", expected=lp.objective, measured=lag["objective"],
              tolerance=1e-2 * (1 + abs(lp.objective)))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    it = np.arange(1, len(g) + 1)
    axes[0].loglog(it, np.maximum(np.abs(g), 1e-12), label="|duality gap|")
    axes[0].loglog(it, np.maximum(np.asarray(lag["violation_trace"]), 1e-12), label="max violation")
    axes[0].set_xlabel("iteration")
    axes[0].legend(fontsize=8)
    ct = np.asarray(lag["component_trace"])
    for k in range(K - 1):
        axes[1].semilogx(np.arange(1, len(ct) + 1) * lag["stride"], ct[:, k], label=f"J(π̄, R_{k + 1})")
        axes[1].axhline(theta[k], ls="--", lw=0.8, color=f"C{k}")
    axes[1].set_title("components of the averaged policy vs thresholds")
    axes[1].legend(fontsize=8)
    axes[2].semilogx(np.arange(1, len(ct) + 1) * lag["stride"], np.asarray(lag["multiplier_trace"]))
    axes[2].set_title("multipliers λ_k")
    data = {"thresholds": theta, "reference_component_returns": j_ref, "max_component_returns": j_max,
            "lp": {"objective": lp.objective, "components": lp.constraint_values, "multipliers": lp.multipliers,
                   "true_return": float(np.sum(lp.occupancy * R))},
            "lagrangian": {k: v for k, v in lag.items() if not k.endswith("trace")},
            "unconstrained": {"objective": free.proxy_return, "components": np.einsum("ksa,sa->k", cons, free.occupancy),
                              "true_return": float(np.sum(free.occupancy * R))},
            "reference_true_return": float(np.sum(mu_ref * R)),
            "two_stage": {"main_return": ts.main_return, "aux_returns": ts.aux_returns, "kl_to_aux": ts.kl_to_aux,
                          "true_return": float(np.sum(ts.occupancy * R))}}
    return ctx.report(PAPER, figure=fig, data=data, notes="Exact best responses; thresholds are a quarter of the way to each component's maximum.")


def _lag_summary(res, R: np.ndarray) -> dict:
    stride = max(1, len(res.gap_trace) // 300)
    return {"objective": res.objective, "gap": res.duality_gap, "max_violation": res.max_violation, "dual_value": res.dual_value,
            "components": res.constraint_values, "multipliers": res.multipliers, "true_return": float(np.sum(res.occupancy * R)),
            "gap_trace": res.gap_trace, "violation_trace": res.violation_trace, "stride": stride,
            "multiplier_trace": res.multiplier_trace[stride - 1 :: stride], "component_trace": res.constraint_trace[stride - 1 :: stride]}
