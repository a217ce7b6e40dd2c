"""Reproduction ``rcsl-stitching``: RCSL cannot stitch two sub-optimal datasets; MBRCSL can — exactly.

The instance (derived here, after the paper's Point-Maze illustration): two start states A and B lead to a
shared junction M; from M one action reaches the goal G (reward 1), the others a sink. From A a side branch
Med pays 0.5. Dataset D1 starts at A and, at M, never takes the goal action (its best return is 0.5, via Med);
dataset D2 starts at B and mostly goes M → G. The optimal path A → M → G (return 1) is in neither dataset:
only stitching D1's prefix to D2's suffix at M finds it. The test start is A.

Everything is exact: RCSL's value is computed by propagating the law of (state, return-to-go) through the
true MDP, MBRCSL's rollouts are the exact law of all model paths (and, separately, n sampled rollouts).

References: Zhou et al. (2024), "Free from Bellman Completeness: Trajectory Stitching via Model-based
Return-conditioned Supervised Learning", ICLR, Algorithm 1, §4; Brandfonbrener et al. (2022), NeurIPS.
"""

from __future__ import annotations

import numpy as np

from rlref.algorithms.demo_regularized import sample_trajectories
from rlref.algorithms.rcsl import FALLBACKS, TrajectoryData, empirical_model, fit_rcsl, mbrcsl, rcsl_value, stitching_mdp, trajectory_returns
from rlref.mdp import TabularMDP
from rlref.reproduce import Context, Report, register
from rlref.solve import optimal

A_, B_, M_, MED, G_, SINK = range(6)
NAMES = ["A", "B", "M", "Med", "G", "sink"]


def behaviours() -> tuple[np.ndarray, np.ndarray]:
    """D1 (from A): A → {M, Med, sink} w.p. (0.45, 0.45, 0.1); at M never the goal action. D2 (from B): mostly B → M → G."""
    S, A, H = 6, 3, 2
    d1 = np.full((H, S, A), 1.0 / A)
    d1[:, A_] = [0.45, 0.45, 0.1]
    d1[:, M_] = [0.9, 0.0, 0.1]
    d2 = np.full((H, S, A), 1.0 / A)
    d2[:, B_] = [0.9, 0.05, 0.05]
    d2[:, M_] = [0.1, 0.9, 0.0]
    return d1, d2


def concat(a: TrajectoryData, b: TrajectoryData) -> TrajectoryData:
    return TrajectoryData(np.vstack([a.states, b.states]), np.vstack([a.actions, b.actions]))


@register("rcsl-stitching", paper="Zhou et al. 2024 (MBRCSL, ICLR), Algorithm 1 and §4",
          description="exact RCSL vs MBRCSL on a two-dataset stitching MDP: RCSL earns at most the best data return, MBRCSL the optimum")
def run(ctx: Context) -> Report:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = ctx.scale(20, 200)
    n_grid = ctx.scale([2, 5, 10, 20, 50, 100], [2, 5, 10, 20, 50, 100, 200, 500, 1000])
    mdp = stitching_mdp(A_)
    d1, d2 = behaviours()

    def unit() -> dict:
        rng = ctx.child_rng(0)
        data = concat(TrajectoryData.from_trajectories(sample_trajectories(stitching_mdp(A_), d1, n, rng)),
                      TrajectoryData.from_trajectories(sample_trajectories(stitching_mdp(B_), d2, n, rng)))
        g = trajectory_returns(mdp, data)
        from_a = data.states[:, 0] == A_
        in_support = sorted({float(x) for x in g[from_a, 0]})
        rcsl = {fb: {str(c): rcsl_value(mdp, fit_rcsl(mdp, data, fb), c).value for c in sorted({*in_support, 0.0, 0.5, 1.0})}
                for fb in FALLBACKS}
        rcsl_err = max(abs(rcsl_value(mdp, fit_rcsl(mdp, data), c).value - c) for c in in_support)
        exact = mbrcsl(mdp, data)
        sampled = {}
        for k, m in enumerate(n_grid):
            try:
                sampled[str(m)] = mbrcsl(mdp, data, n_rollouts=m, rng=ctx.child_rng(1, k)).evaluation.value
            except ValueError:  # no rollout from A kept (cannot happen: every start has a best return) — recorded as NaN
                sampled[str(m)] = float("nan")
        P_hat, _, covered = empirical_model(mdp, data)
        big = 10.0 * (2 * 1.0 + 1.0)
        P = np.where(covered[..., None], P_hat, np.eye(6)[None, :, None, :])
        R = np.where(covered, np.stack([mdp.reward(h) for h in range(2)]), -big)
        v_dp = float(optimal(TabularMDP(P, R, horizon=2, mu0=mdp.mu0, reward_axes="hsa")).values[0, A_])
        stitched_in_data = bool(((data.states == [A_, M_, G_]).all(1)).any())
        return {"in_support": in_support, "best_data_from_A": max(in_support), "rcsl": rcsl, "rcsl_in_support_error": rcsl_err,
                "mbrcsl_exact": exact.evaluation.value, "mbrcsl_g0": float(exact.g0[A_]), "kept_mass": exact.kept_mass,
                "mbrcsl_sampled": sampled, "offline_dp": v_dp, "stitched_in_data": stitched_in_data, "N": data.size}

    u = ctx.unit("stitching", unit)
    J_star = float(optimal(mdp).values[0, A_])
    rcsl_best = max(max(v.values()) for v in u["rcsl"].values())

    ctx.claim("the instance needs stitching: the optimal path A→M→G (J* = 1, core planner) is not in the data, whose best return "
              "from A is 0.5", expected={"J*": 1.0, "best data return from A": 0.5, "stitched path in data": False},
              measured={"J*": J_star, "best data return from A": u["best_data_from_A"], "stitched path in data": u["stitched_in_data"]},
              holds=abs(J_star - 1.0) < 1e-12 and abs(u["best_data_from_A"] - 0.5) < 1e-12 and not u["stitched_in_data"])
    ctx.claim("RCSL conditioned on any return-to-go seen at A earns exactly that return (deterministic MDP): max |V_RCSL(g) − g| = 0, "
              "so at most the best data return", expected=0.0, measured=u["rcsl_in_support_error"], tolerance=1e-9)
    ctx.claim("RCSL cannot stitch: its best value over conditioning returns {seen, 0, 0.5, 1} and both fallbacks for unseen (s, g) "
              "stays below J* (the unseen target g = 1 acts by the fallback at A and stitches only by chance)",
              expected="< 1", measured=rcsl_best, holds=rcsl_best < J_star - 1e-9)
    ctx.claim("MBRCSL with exact model rollouts (infinite rollouts) stitches: its exact value is J*",
              expected=J_star, measured=u["mbrcsl_exact"], tolerance=1e-9)
    ctx.claim("MBRCSL equals offline dynamic programming on the data-restricted empirical model (core planner)",
              expected=u["offline_dp"], measured=u["mbrcsl_exact"], tolerance=1e-9)
    big_n = str(n_grid[-1])
    ctx.claim(f"MBRCSL with {big_n} sampled model rollouts (the paper's finite-rollout algorithm) also reaches J*",
              expected=J_star, measured=u["mbrcsl_sampled"][big_n], tolerance=1e-9)

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.8))
    labels, vals = ["J*", "best data return from A"], [J_star, u["best_data_from_A"]]
    for fb in FALLBACKS:
        for c, v in u["rcsl"][fb].items():
            labels.append(f"RCSL g={float(c):g} ({fb})")
            vals.append(v)
    labels += ["MBRCSL (exact)", "offline DP"]
    vals += [u["mbrcsl_exact"], u["offline_dp"]]
    colors = ["k", "0.5"] + ["tab:orange"] * (len(labels) - 4) + ["tab:green", "tab:blue"]
    ax0.bar(range(len(vals)), vals, color=colors)
    ax0.set_xticks(range(len(vals)), labels, fontsize=7, rotation=60, ha="right")
    ax0.set_ylabel("exact value from A")
    ax0.set_title(f"RCSL vs MBRCSL (N = {u['N']} trajectories)", fontsize=10)
    xs = [int(k) for k in u["mbrcsl_sampled"]]
    ax1.semilogx(xs, list(u["mbrcsl_sampled"].values()), "o-", color="tab:green", label="MBRCSL, sampled rollouts")
    ax1.axhline(J_star, color="k", ls="--", label="J*")
    ax1.axhline(u["best_data_from_A"], color="0.5", ls=":", label="best data return from A")
    ax1.axhline(rcsl_best, color="tab:orange", ls="-.", label="best RCSL")
    ax1.set_xlabel("number of model rollouts")
    ax1.set_ylabel("exact value from A")
    ax1.set_ylim(0, 1.1)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    return ctx.report("Zhou et al. (2024), MBRCSL, ICLR", figure=fig, data={**u, "J_star": J_star, "rcsl_best": rcsl_best, "states": NAMES},
                      notes="Exact tabular version: empirical model and behaviour, exact rollout law, exact evaluation of the "
                            "return-conditioned policy. The paper's Point-Maze and PickPlace experiments are not reproduced.")
