"""Reproduction ``demo-regularized-sample-complexity``: episodes to certified ε-optimality vs N^E and ε.

Demonstration-regularized BPI (Tiapkin et al. 2024, §4): clone the expert from N^E trajectories
(:func:`behavior_cloning`, κ = 0.1), then run the optimistic KL-regularized explorer toward π_BC
(:func:`regularized_bpi`) with

    λ(N^E) = ε N^E / (H S (A − 1)),   target ε/2 for the regularized problem,

so that λ · E KL_traj(π_E ‖ π_BC) ≈ ε/2 by the delta-method constant E KL ≈ H S (A − 1)/(2 N^E)
measured in ``demo-bc-rate`` (this λ schedule is derived here; the paper's Cor. 3 sets λ from a
high-probability KL bound of the same order). Unregularized gap of the output ≤ expert gap +
λ KL + ε/2 (the exact decomposition). Baselines in the same harness and with the same confidence
event: plain BC (no interaction), the same explorer toward the uniform policy with
λ_u = ε/(2 H log A) (so λ_u KL(π ‖ u) ≤ ε/2: exploration from scratch) and UCBVI for the
unregularized MDP. Instances: a Garnet and a slippery chain (tabular), and a random linear MDP
(LSVI-UCB-style explorer, heuristic bonus scale — stated).

The paper's rates: Õ(Poly(S, A, H)/(ε² N^E)) (Cor. 3, tabular), Õ(Poly(d, H)/(ε² N^E)) (linear),
against Õ(1/ε²) without demonstrations. Here: the fitted exponent of episodes in N^E (paper −1),
in ε at fixed N^E (paper −2), and the crossover N^E beyond which demonstrations beat scratch.
The sample counts are the stopping times of the certified rule (δ = 0.1), so they carry the
(conservative, derived) constants of the bonuses.

References: Tiapkin et al. (2024), "Demonstration-Regularized RL", ICLR, Thm 5 and Cor. 3;
Tiapkin et al. (2023), "Fast rates for maximum entropy exploration"; Azar et al. (2017), UCBVI.
"""

from __future__ import annotations

import numpy as np

from rlref.algorithms.demo_regularized import (
    behavior_cloning,
    linear_behavior_cloning,
    linear_regularized_bpi,
    regularized_bpi,
    sample_trajectories,
    ucbvi_bpi,
)
from rlref.envs.chains import chain
from rlref.envs.garnet import garnet
from rlref.linear import random_linear_mdp
from rlref.reproduce import Context, Report, register
from rlref.solve import policy_evaluation, soft_value_iteration, value_iteration

KAPPA = 0.1
EPS = 0.4
MAX_EPISODES = 4 * 10**6
LINEAR_BONUS_SCALE = 0.2


def _instances(ctx: Context) -> dict:
    return {
        "garnet": garnet(5, 3, 2, horizon=4, rng=ctx.child_rng(0, 0), name="garnet(S=5, A=3, b=2, H=4)"),
        "chain": chain(5, slip=0.1, horizon=6),
    }


def _gap(mdp, v_star: float, pi: np.ndarray) -> float:
    return float(v_star - policy_evaluation(mdp, pi).objective)


def _tabular_unit(ctx: Context, idx: int, mdp, n_grid: list[int], eps_grid: list[float], n_eps: int) -> dict:
    H, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
    v_star = value_iteration(mdp).objective
    pi_e = soft_value_iteration(mdp, 0.01).policy  # an O(ε)-optimal expert (gap ~1e-5 here)
    out: dict = {"expert_gap": _gap(mdp, v_star, pi_e), "n_grid": n_grid, "eps_grid": eps_grid}
    rng = ctx.child_rng(1, idx)

    def demo(n: int, eps: float) -> dict:
        tr = sample_trajectories(mdp, pi_e, n, ctx.child_rng(2, n, idx))
        bc = behavior_cloning(tr.states, tr.actions, S, A, kappa=KAPPA).policy
        lam = eps * n / (H * S * (A - 1))
        res = regularized_bpi(mdp, bc, lam, eps / 2, rng=rng, max_episodes=MAX_EPISODES, growth=0.1)
        return {"episodes": res.episodes, "converged": res.converged, "gap": _gap(mdp, v_star, res.policy),
                "bc_gap": _gap(mdp, v_star, bc), "lam": lam}

    out["demo"] = [demo(n, EPS) for n in n_grid]
    lam_u = EPS / (2 * H * np.log(A))
    sc = regularized_bpi(mdp, None, lam_u, EPS / 2, rng=rng, max_episodes=MAX_EPISODES, growth=0.1)
    out["scratch"] = {"episodes": sc.episodes, "converged": sc.converged, "gap": _gap(mdp, v_star, sc.policy), "lam": lam_u}
    ucb = ucbvi_bpi(mdp, EPS, rng=rng, max_episodes=MAX_EPISODES, growth=0.1)
    out["ucbvi"] = {"episodes": ucb.episodes, "converged": ucb.converged, "gap": _gap(mdp, v_star, ucb.policy)}
    out["eps_demo"] = [demo(n_eps, e) for e in eps_grid]
    out["eps_ucbvi"] = [ucbvi_bpi(mdp, e, rng=rng, max_episodes=MAX_EPISODES, growth=0.1).episodes for e in eps_grid]
    return out


def _linear_unit(ctx: Context, n_grid: list[int]) -> dict:
    H, S, A, d = 4, 8, 3, 4
    lin = random_linear_mdp(S, A, d, horizon=H, rng=ctx.child_rng(3, 0))
    mdp = lin.to_tabular()
    v_star = value_iteration(mdp).objective
    pi_e = soft_value_iteration(mdp, 0.02).policy  # log-linear in φ (soft Q of a linear MDP is linear): realizable
    phi = np.asarray(lin.phi)
    rng = ctx.child_rng(4, 0)
    rows = []
    for n in n_grid:
        tr = sample_trajectories(mdp, pi_e, n, ctx.child_rng(5, n))
        bc = linear_behavior_cloning(tr.states, tr.actions, phi, ridge=1e-3 / n).policy
        lam = EPS * n / (H * d)
        res = linear_regularized_bpi(lin, bc, lam, EPS / 2, rng=rng, bonus_scale=LINEAR_BONUS_SCALE, max_episodes=MAX_EPISODES,
                                     growth=0.1)
        rows.append({"episodes": res.episodes, "converged": res.converged, "gap": _gap(mdp, v_star, res.policy),
                     "bc_gap": _gap(mdp, v_star, bc), "lam": lam})
    lam_u = EPS / (2 * H * np.log(A))
    sc = linear_regularized_bpi(lin, None, lam_u, EPS / 2, rng=rng, bonus_scale=LINEAR_BONUS_SCALE, max_episodes=MAX_EPISODES,
                                growth=0.1)
    return {"demo": rows, "scratch": {"episodes": sc.episodes, "converged": sc.converged, "gap": _gap(mdp, v_star, sc.policy)}}


def _slope(x, y) -> tuple[float, float]:
    """Least-squares log-log slope and its standard error."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    coef, cov = np.polyfit(lx, ly, 1, cov=True) if len(lx) > 2 else (np.polyfit(lx, ly, 1), np.zeros((2, 2)))
    return float(coef[0]), float(np.sqrt(cov[0, 0]))


def _crossover(n_grid, demo_eps, baseline) -> int | None:
    for i, n in enumerate(n_grid):
        if all(e < baseline for e in demo_eps[i:]):
            return int(n)
    return None


@register("demo-regularized-sample-complexity", paper="Tiapkin et al. 2024 (Demonstration-Regularized RL), Thm 5 / Cor. 3",
          description="episodes to certified eps-optimality vs N^E and eps: demo-regularized BPI vs scratch and UCBVI")
def run(ctx: Context) -> Report:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_grid = ctx.scale([10, 30, 100, 300, 1000, 3000], [10, 30, 100, 300, 1000, 3000, 10000])
    eps_grid = ctx.scale([0.8, 0.4, 0.2], [1.0, 0.7, 0.5, 0.35, 0.25, 0.18])
    n_eps = 100
    fit_n = 4  # fit N^E ∈ {10, ..., 300}: below the floor set by lower-order terms of the certificate
    inst = _instances(ctx)
    res = {k: ctx.unit(f"tab-{k}", lambda i=i, m=m: _tabular_unit(ctx, i, m, n_grid, eps_grid, n_eps))
           for i, (k, m) in ctx.progress(list(enumerate(inst.items())), desc="tabular")}
    lin = ctx.unit("linear", lambda: _linear_unit(ctx, n_grid[:5]))

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    summary = {}
    for k, r in res.items():
        ep = [row["episodes"] for row in r["demo"]]
        s, se = _slope(n_grid[:fit_n], ep[:fit_n])
        s_eps, se_eps = _slope(eps_grid, [row["episodes"] for row in r["eps_demo"]])
        s_eps_u, _ = _slope(eps_grid, r["eps_ucbvi"])
        summary[k] = {"slope_N": s, "slope_N_se": se, "slope_eps_demo": s_eps, "slope_eps_demo_se": se_eps, "slope_eps_ucbvi": s_eps_u,
                      "cross_scratch": _crossover(n_grid, ep, r["scratch"]["episodes"]),
                      "cross_ucbvi": _crossover(n_grid, ep, r["ucbvi"]["episodes"]),
                      "max_gap_over_eps": max([row["gap"] for row in r["demo"]] + [r["scratch"]["gap"], r["ucbvi"]["gap"]]) / EPS,
                      "all_converged": all(row["converged"] for row in r["demo"]) and r["scratch"]["converged"] and r["ucbvi"]["converged"],
                      "bc_eps_optimal_from": next((int(n) for n, row in zip(n_grid, r["demo"], strict=True) if row["bc_gap"] <= EPS), None)}
        line = axes[0].loglog(n_grid, ep, "o-", label=f"{k}: demo-reg (slope {s:.2f}±{se:.2f})")[0]
        axes[0].axhline(r["scratch"]["episodes"], color=line.get_color(), ls="--", lw=1, label=f"{k}: scratch (KL to uniform)")
        axes[0].axhline(r["ucbvi"]["episodes"], color=line.get_color(), ls=":", lw=1, label=f"{k}: UCBVI")
        l2 = axes[1].loglog(eps_grid, [row["episodes"] for row in r["eps_demo"]], "o-", label=f"{k}: demo-reg N^E={n_eps} ({s_eps:.2f})")[0]
        axes[1].loglog(eps_grid, r["eps_ucbvi"], "s:", color=l2.get_color(), label=f"{k}: UCBVI ({s_eps_u:.2f})")
    lep = [row["episodes"] for row in lin["demo"]]
    s_lin, se_lin = _slope(n_grid[:fit_n], lep[:fit_n])
    axes[2].loglog(n_grid[:5], lep, "o-", label=f"linear demo-reg (slope {s_lin:.2f}±{se_lin:.2f})")
    axes[2].axhline(lin["scratch"]["episodes"], ls="--", color="k", label="linear scratch (KL to uniform)")
    for ax, xl in zip(axes, ["$N^E$", r"$\varepsilon$", "$N^E$"], strict=True):
        ax.set_xlabel(xl)
        ax.set_ylabel("episodes to certified stop")
        ax.legend(fontsize=7)
    axes[0].set_title(f"tabular, ε = {EPS} (paper: slope −1 in $N^E$)", fontsize=9)
    axes[1].set_title("tabular, vs ε (paper: −2 for both)", fontsize=9)
    axes[2].set_title(f"random linear MDP (d=4), heuristic bonus scale {LINEAR_BONUS_SCALE}", fontsize=9)
    fig.tight_layout()

    for k, sm in summary.items():
        ctx.claim(f"{k}: episodes to certified stop fall like (N^E)^slope over N^E ∈ [10, 300]; paper Cor. 3: slope −1 "
                  f"(fitted {sm['slope_N']:.2f} ± {sm['slope_N_se']:.2f} s.e.)", expected=-1.0, measured=sm["slope_N"], tolerance=0.35)
        ctx.claim(f"{k}: demonstration-regularized BPI beats exploration from scratch (KL to uniform) for every N^E ≥ crossover "
                  "(reported; holds if a crossover exists in the grid)", expected="crossover in grid", measured=sm["cross_scratch"],
                  holds=sm["cross_scratch"] is not None)
        ctx.claim(f"{k}: it also beats unregularized UCBVI for N^E ≥ crossover (a finding about constants: UCBVI's 1/ε² has a small "
                  "constant at this ε; reported, holds if a crossover exists)", expected="crossover in grid", measured=sm["cross_ucbvi"],
                  holds=sm["cross_ucbvi"] is not None)
        ctx.claim(f"{k}: at N^E = {n_eps}, episodes vs ε: fitted exponent of demo-regularized BPI ≈ −2 (paper Õ(1/(ε² N^E)); "
                  "λ ∝ ε)", expected=-2.0, measured=sm["slope_eps_demo"], tolerance=0.5)
        ctx.claim(f"{k}: every returned policy (demo-reg, scratch, UCBVI) is ε-optimal for the unregularized MDP (exact evaluation), "
                  "and every run stopped by its certificate", expected="max gap/ε <= 1 and all stopped", measured=sm["max_gap_over_eps"],
                  holds=sm["max_gap_over_eps"] <= 1.0 and sm["all_converged"])
        ctx.claim(f"{k}: finding about the instance: plain BC (no interaction) is already ε-optimal from N^E = "
                  f"{sm['bc_eps_optimal_from']} on (exact gap); the explorers spend their episodes to *certify* ε-optimality, "
                  "which BC cannot do", expected="reported", measured=sm["bc_eps_optimal_from"], holds=sm["bc_eps_optimal_from"] is not None)
    ctx.claim(f"random linear MDP: episodes fall with N^E (paper: Õ(Poly(d,H)/(ε² N^E)), slope −1); fitted {s_lin:.2f} ± {se_lin:.2f} "
              f"(heuristic bonus scale {LINEAR_BONUS_SCALE}, certificate not certified)", expected=-1.0, measured=s_lin, tolerance=0.5)
    return ctx.report("Tiapkin et al. (2024), Demonstration-Regularized RL, Thm 5 / Cor. 3", figure=fig,
                      data={"eps": EPS, "n_grid": n_grid, "eps_grid": eps_grid, "tabular": res, "linear": lin, "summary": summary,
                            "kappa": KAPPA, "linear_bonus_scale": LINEAR_BONUS_SCALE},
                      notes="Sample counts are certified stopping times with constants derived here (Hoeffding, Weissman L1, "
                            "Jonsson et al. KL concentration); the paper has no experiments.")
