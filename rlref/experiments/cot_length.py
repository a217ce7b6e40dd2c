"""``cot-length``: accuracy is an inverted U in the CoT length; the optimum N* = T Z/(M(Z+1)).

Wu et al. (2025), "When More is Less: Understanding Chain-of-Thought Length in LLMs" (§4). The
synthetic figure: A(N) against N for several model capabilities M (the optimum moves left as
M grows) and for several task difficulties T (it moves right), the Lambert-W optimum against a
grid search, and a Monte Carlo simulation of the step-by-step generative model.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rlref.algorithms.rates import loglog_slope
from rlref.reproduce import Context, Report, register
from rlref.theory.cot_length import cot_accuracy, grid_optimal_length, optimal_length, simulate_accuracy

PAPER = "Wu, Wang, Ye, Du, Jegelka, Wang (2025), When More is Less: Understanding Chain-of-Thought Length in LLMs (arXiv 2502.07266)"


def _unimodal(acc: np.ndarray) -> bool:
    pos = np.flatnonzero(acc > 0)
    a = acc[pos[0]:]
    k = int(np.argmax(a))
    return 0 < k < len(a) - 1 and bool(np.all(np.diff(a[: k + 1]) > 0) and np.all(np.diff(a[k:]) < 0))


@register("cot-length", paper=PAPER, description="Inverted-U accuracy vs CoT length; the Lambert-W optimal length grows with T, falls with M")
def run(ctx: Context) -> Report:
    sigma, T0 = 0.01, 16.0
    caps = [4.0, 8.0, 16.0, 32.0]
    diffs = [8.0, 16.0, 32.0, 64.0]
    n = np.arange(1, 201)
    by_cap = {m: cot_accuracy(n, m, T0, sigma) for m in caps}
    by_diff = {t: cot_accuracy(n, 16.0, t, sigma) for t in diffs}
    opt_cap = {m: optimal_length(m, T0, sigma) for m in caps}
    opt_diff = {t: optimal_length(16.0, t, sigma) for t in diffs}

    # Lambert-W integer optimum vs brute-force grid search over a sweep of (M, T, σ)
    sweep_m = np.geomspace(1.0, 50.0, ctx.scale(8, 20))
    sweep_t = np.geomspace(1.0, 50.0, ctx.scale(8, 20))
    mismatch, worst_stat = 0, 0.0
    for s in (0.005, 0.02, 0.1):
        for m in sweep_m:
            for t in sweep_t:
                o = optimal_length(float(m), float(t), s)
                g = grid_optimal_length(float(m), float(t), s, int(3 * np.ceil(o.n_star)) + 10)
                acc = cot_accuracy(np.array([o.n_int, g]), float(m), float(t), s)
                mismatch += int(not np.isclose(acc[0], acc[1], rtol=1e-12, atol=0.0))
                worst_stat = max(worst_stat, o.stationarity)

    # scaling law measured on the brute-force optimum: log-log slopes in T and in M
    ts = np.geomspace(20.0, 400.0, 12)
    grid_t = [grid_optimal_length(16.0, float(t), sigma, 2000) for t in ts]
    slope_t = loglog_slope(ts, grid_t)
    ms = np.geomspace(1.0, 20.0, 12)
    grid_m = [grid_optimal_length(float(m), 400.0, sigma, 20000) for m in ms]
    slope_m = loglog_slope(ms, grid_m)

    # Monte Carlo simulation of the generative model at several lengths (seeded)
    num = ctx.scale(20_000, 200_000)

    def mc() -> dict:
        rng = ctx.child_rng(1)
        lens = [1, 2, 4, 8, 16, 32, 64]
        return {"n": lens, "mc": [simulate_accuracy(k, 16.0, T0, sigma, num=num, rng=rng) for k in lens]}

    sim = ctx.unit("monte_carlo", mc)
    p = cot_accuracy(np.array(sim["n"]), 16.0, T0, sigma)
    z = np.abs(np.array(sim["mc"]) - p) / np.sqrt(np.maximum(p * (1 - p), 1e-300) / num)
    z = np.where(p > 0, z, np.abs(np.array(sim["mc"])) * 1e9)

    ctx.claim("Inverted U: for every capability M and difficulty T shown, A(N) rises strictly to one interior peak, then falls strictly",
              expected=True, measured=all(_unimodal(a) for a in [*by_cap.values(), *by_diff.values()]), holds=all(
                  _unimodal(a) for a in [*by_cap.values(), *by_diff.values()]))
    ns_cap = [opt_cap[m].n_star for m in caps]
    ns_diff = [opt_diff[t].n_star for t in diffs]
    ctx.claim("The optimal length falls with model capability (N* for M = 4, 8, 16, 32 at T = 16)",
              expected="strictly decreasing", measured=ns_cap, holds=bool(np.all(np.diff(ns_cap) < 0)))
    ctx.claim("The optimal length grows with task difficulty (N* for T = 8, 16, 32, 64 at M = 16)",
              expected="strictly increasing", measured=ns_diff, holds=bool(np.all(np.diff(ns_diff) > 0)))
    ctx.claim("Lambert-W optimum N* = T Z/(M(Z+1)): the best integer neighbour = grid-search optimum at every swept (M, T, sigma) (mismatches)",
              expected=0, measured=mismatch, tolerance=0)
    ctx.claim("N* is a stationary point of log A (max |d log A/dN| at N* over the sweep)", expected=0.0, measured=worst_stat, tolerance=1e-9)
    ctx.claim("Scaling law on the brute-force optimum: log-log slope of N* in T is 1", expected=1.0, measured=slope_t, tolerance=0.02)
    ctx.claim("Scaling law on the brute-force optimum: log-log slope of N* in M is -1", expected=-1.0, measured=slope_m, tolerance=0.02)
    ctx.claim("Monte Carlo of the step-by-step model (sub-task failure T/(NM), per-step noise sigma) matches A(N): max |z| over N = 1..64",
              expected="<= 4", measured=float(z.max()), holds=bool(z.max() <= 4.0))

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    for j, m in enumerate(caps):
        ax.plot(n, by_cap[m], f"C{j}-", label=f"M = {m:g}")
        ax.plot(opt_cap[m].n_star, opt_cap[m].accuracy_star, f"C{j}*", ms=11)
    ax.set_xscale("log")
    ax.set_xlabel("CoT length N (steps, log scale)")
    ax.set_ylabel("accuracy A(N)")
    ax.set_title(f"capability: optimum moves left (T = {T0:g}, σ = {sigma})")
    ax.legend(fontsize=8)
    ax = axes[1]
    for j, t in enumerate(diffs):
        ax.plot(n, by_diff[t], f"C{j}-", label=f"T = {t:g}")
        ax.plot(opt_diff[t].n_star, opt_diff[t].accuracy_star, f"C{j}*", ms=11)
    ax.plot(sim["n"], sim["mc"], "ko", ms=4, mfc="none", label="Monte Carlo (T = 16)")
    ax.set_xscale("log")
    ax.set_xlabel("CoT length N (steps, log scale)")
    ax.set_title("difficulty: optimum moves right (M = 16)")
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.loglog(ts, grid_t, "C0o", ms=4, label="grid-search N* vs T (M = 16)")
    ax.loglog(ts, [optimal_length(16.0, float(t), sigma).n_star for t in ts], "C0-", label="T Z/(M(Z+1))")
    ax.loglog(400.0 / ms, grid_m, "C3s", ms=4, label="grid-search N* vs T/M (T = 400)")
    ax.set_xlabel("T  (or T/M)")
    ax.set_ylabel("optimal length N*")
    ax.set_title(f"scaling law: slopes {slope_t:.3f} (T), {slope_m:.3f} (M)")
    ax.legend(fontsize=8)
    fig.suptitle("When More is Less: the optimal chain-of-thought length")
    fig.tight_layout()
    return ctx.report(PAPER, figure=fig, data={"n_star_by_capability": dict(zip(map(str, caps), ns_cap, strict=True)),
                                               "n_star_by_difficulty": dict(zip(map(str, diffs), ns_diff, strict=True)),
                                               "lambert_z": opt_cap[caps[0]].z, "monte_carlo": sim,
                                               "slope_T": slope_t, "slope_M": slope_m})
