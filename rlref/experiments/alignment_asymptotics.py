"""``alignment-asymptotics``: large deviations, best-of-N and KL-RL in the memoryless model.

Yang, Salamatian, Sun, Suresh, Beirami (2024), "Asymptotics of Language Model Alignment". Tokens
are i.i.d. from p and the reward is additive, S_n = Σ_t w(y_t). With exact laws of S_n we check
Cramér's theorem −(1/n) log P(S_n ≥ n x) → I(x) (the rate function as a Legendre transform), and
that best-of-N with log N = nΔ reaches the per-token reward x*(Δ) of KL-constrained RL at budget
nΔ (I(x*) = Δ), with a gap that shrinks with n (Thm 3: asymptotic equivalence).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rlref.reproduce import Context, Report, register
from rlref.theory.asymptotics import compare_alignment, log_tail_probability, rate_function, sum_distribution

PAPER = "Yang, Salamatian, Sun, Suresh, Beirami (2024), Asymptotics of Language Model Alignment"

MODELS = {
    "Bernoulli(0.3)": (np.array([0.7, 0.3]), np.array([0.0, 1.0])),
    "3 tokens, w=(0,1,2.5)": (np.array([0.5, 0.3, 0.2]), np.array([0.0, 1.0, 2.5])),
}


def _bernoulli_rate(x: float, p: float) -> float:
    return x * math.log(x / p) + (1 - x) * math.log((1 - x) / (1 - p))


@register("alignment-asymptotics", paper=PAPER, description="Cramer rate function vs exact tails; best-of-N vs KL-RL gap shrinks with n")
def run(ctx: Context) -> Report:
    ns_tail = ctx.scale([10, 40, 160, 640], [10, 40, 160, 640, 2560])
    ns_bon = {"Bernoulli(0.3)": ctx.scale([10, 40, 160, 640, 2560], [10, 40, 160, 640, 2560, 10240]),
              "3 tokens, w=(0,1,2.5)": ctx.scale([10, 30, 90, 270], [10, 30, 90, 270, 810])}
    deltas = [0.05, 0.2, 0.5]

    def unit_tails(name: str) -> dict:
        p, w = MODELS[name]
        mean = float(p @ w)
        xs = np.linspace(mean, float(w.max()), 9)[1:-1]
        rates = np.asarray(rate_function(p, w, xs))
        emp = []
        for n in ns_tail:
            if len(p) > 2 and n > 640:
                break
            d = sum_distribution(p, w, n)
            emp.append([-log_tail_probability(d, n * x) / n for x in xs])
        return {"xs": xs, "rates": rates, "empirical": emp}

    def unit_bon(name: str) -> dict:
        p, w = MODELS[name]
        out = {}
        for delta in deltas:
            cmp = compare_alignment(p, w, delta, ns_bon[name])
            out[str(delta)] = {"kl_rl": cmp.kl_rl, "bon": cmp.best_of_n, "gap": cmp.gap}
        return out

    tails = {name: ctx.unit(f"tails-{i}", lambda name=name: unit_tails(name)) for i, name in enumerate(ctx.progress(MODELS, "tails"))}
    bons = {name: ctx.unit(f"bon-{i}", lambda name=name: unit_bon(name)) for i, name in enumerate(ctx.progress(MODELS, "best-of-N"))}

    xs_b = np.array(tails["Bernoulli(0.3)"]["xs"])
    closed = np.array([_bernoulli_rate(x, 0.3) for x in xs_b])
    ctx.claim("Rate function (Legendre transform, 1-D convex solve) equals the Bernoulli closed form (max abs err)",
              expected=0.0, measured=float(np.max(np.abs(np.array(tails["Bernoulli(0.3)"]["rates"]) - closed))), tolerance=1e-10)
    for name, t in tails.items():
        err = np.array(t["empirical"]) - np.array(t["rates"])[None, :]
        worst = np.max(np.abs(err), axis=1)
        ctx.claim(f"Cramér, {name}: max_x |-(1/n) log P(S_n >= nx) - I(x)| decreases in n (exact tails)",
                  expected="decreasing", measured=worst, tolerance=None, holds=bool(np.all(np.diff(worst) < 0)))
        ctx.claim(f"Cramér, {name}: the error at the largest n is below 0.02 nats",
                  expected=0.0, measured=float(worst[-1]), tolerance=0.02)
    for name, res in bons.items():
        gaps = np.array([res[str(d)]["gap"] for d in deltas])
        ctx.claim(f"{name}: best-of-N (log N = n·Δ) never beats KL-RL at budget n·Δ (min per-token gap, all Δ, n)",
                  expected=">= 0", measured=float(gaps.min()), tolerance=None, holds=bool(gaps.min() >= -1e-12))
        shrink = gaps[:, -1] / gaps[:, 0]
        ctx.claim(f"{name}: the BoN/KL-RL per-token gap shrinks with n (ratio last/first n, each Δ)",
                  expected="< 0.2 and decreasing", measured=shrink, tolerance=None,
                  holds=bool(np.all(np.diff(gaps, axis=1) < 0) and np.all(shrink < 0.2)))

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for k, (name, t) in enumerate(tails.items()):
        ax = axes[0] if k == 0 else axes[1]
        ax.plot(t["xs"], t["rates"], "k-", lw=2, label="I(x) (Legendre)")
        for j, row in enumerate(t["empirical"]):
            ax.plot(t["xs"], row, f"C{j}o--", ms=3, label=f"n={ns_tail[j]}")
        ax.set_xlabel("x (per-token reward)")
        ax.set_ylabel(r"$-\frac{1}{n}\log P(S_n \geq nx)$")
        ax.set_title(f"Cramér: {name}")
        ax.legend(fontsize=7)
    ax = axes[2]
    for k, (name, res) in enumerate(bons.items()):
        ns = ns_bon[name]
        for j, d in enumerate(deltas):
            ax.loglog(ns, res[str(d)]["gap"], f"C{j}{'-o' if k == 0 else '--s'}", ms=3, label=f"{name}, Δ={d}")
    ax.set_xlabel("sequence length n")
    ax.set_ylabel("x*(Δ) − E[max of N]/n")
    ax.set_title("best-of-N (N = e^{nΔ}) vs KL-RL: gap → 0")
    ax.legend(fontsize=6)
    fig.suptitle("Asymptotics of alignment in the memoryless model (exact laws)")
    fig.tight_layout()
    return ctx.report(PAPER, figure=fig, data={"tails": tails, "best_of_n": bons, "deltas": deltas})
