"""Reproductions ``adversarial-regret-rates`` and ``adversarial-regret-vs-features``.

Dai, Luo, Wei, Zimmert (2023) prove rates, not experiments: Õ(√K) for Algorithm 1 (log-barrier
FTRL, poly(A)) and Algorithm 2 (magnitude-reduced estimator with Hedge, log A), against the Õ(K^{2/3})
of Luo, Wei, Lee (2021); O-REPS (Zimin & Neu 2013) is the Õ(√K) tabular known-transition reference.
Here the regret (exact pseudo-regret against the best fixed policy in hindsight) is measured on a
small linear MDP (simplex features, so Q^π is exactly linear; verified) with i.i.d. losses of a fixed
gap, each algorithm tuned for the horizon K by :func:`rlref.algorithms.adversarial.default_tuning`,
and the log-log slope of regret against K is fitted with a 95% interval over seeds × K (one loss
sequence per seed, truncated to each K). The rates are worst-case upper bounds for large K; at quick
scale the learners are pre-asymptotic, so the slopes are stated as the finding they are, beside
ordering findings that hold at every seed.
"""

from __future__ import annotations

import numpy as np

from rlref.algorithms import adversarial as adv
from rlref.linear import random_linear_mdp
from rlref.reproduce import Context, Report, register

PAPER = "Dai, Luo, Wei, Zimmert (2023), Refined Regret for Adversarial MDPs with Linear Function Approximation (ICML)"
LABELS = {"log_barrier": "Alg. 1 (log-barrier FTRL)", "magnitude_reduced": "Alg. 2 (magnitude-reduced, Hedge)",
          "dilated_bonus": "Luo et al. 2021 (K^{2/3})", "oreps": "O-REPS (full info, known P)"}
RATES = {"log_barrier": 0.5, "magnitude_reduced": 0.5, "dilated_bonus": 2.0 / 3.0, "oreps": 0.5}
S, H, GAP, CONC = 4, 2, 0.6, 0.5
#: rate constants of default_tuning, picked once from {1, 3, 10, 30, 100} at K = 300 on seeds 100-102 (not the evaluation seeds)
CONSTANTS = {"log_barrier": {"c_eta": 3.0}, "magnitude_reduced": {"c_eta": 3.0}, "dilated_bonus": {"c_gamma": 3.0}}


def _game(K: int, A: int, d: int, seed: int) -> adv.AdversarialMDP:
    lin = random_linear_mdp(S, A, d, rng=np.random.default_rng([seed, A, d]), horizon=H, concentration=CONC)
    losses = adv.iid_losses(lin.phi, K, H, gap=GAP, rng=np.random.default_rng([seed, A, d, K]))
    return adv.AdversarialMDP(mdp=lin.to_tabular(), losses=losses, phi=lin.phi, name=f"linear(S={S},A={A},d={d},H={H})")


def _regret(alg: str, K: int, A: int, d: int, seed: int, K_max: int | None = None) -> float:
    """Regret at K of ``alg`` tuned for K; with ``K_max`` the game is the first K episodes of one K_max-episode loss sequence."""
    game = _game(K, A, d, seed) if K_max is None else _game(K_max, A, d, seed).truncated(K)
    if alg == "oreps":
        return float(adv.oreps(game, seed=seed).regret)
    return float(adv.policy_optimization(game, alg, adv.default_tuning(alg, K, H, A, d, **CONSTANTS[alg]), seed=seed).regret)


def _band(ax, x, Y, label, color):
    Y = np.maximum(np.asarray(Y), 1e-3)
    mean = Y.mean(axis=0)
    ax.loglog(x, mean, "o-", color=color, label=label)
    if Y.shape[0] > 1:
        ax.fill_between(x, Y.min(axis=0), Y.max(axis=0), color=color, alpha=0.2)


def _fit(x, Y):
    Y = np.asarray(Y)
    xs = np.tile(np.asarray(x, dtype=float), Y.shape[0])
    return adv.fit_loglog_slope(xs, np.maximum(Y.ravel(), 1e-6))


@register("adversarial-regret-rates", paper=PAPER,
          description="regret vs K (log-log, fitted slopes) of Dai et al. Alg. 1-2, the K^{2/3} baseline and O-REPS; regret vs A")
def run_rates(ctx: Context) -> Report:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ks = ctx.scale([100, 200, 400, 800], [250, 500, 1000, 2000, 4000, 10000])
    seeds = ctx.scale(4, 5)
    A0, d0 = 2, 4
    algs = list(LABELS)
    jobs = [(alg, K, s) for alg in algs for K in Ks for s in range(seeds)]
    res = {}
    for alg, K, s in ctx.progress(jobs, desc="regret vs K"):
        # one loss sequence per seed, truncated to each K: the slope is measured on a fixed instance
        res[alg, K, s] = ctx.unit(f"K2-{alg}-{K}-{ctx.seed}-{s}", lambda a=alg, k=K, s=s: _regret(a, k, A0, d0, 1000 * ctx.seed + s, Ks[-1]))
    R = {alg: np.array([[res[alg, K, s] for K in Ks] for s in range(seeds)]) for alg in algs}
    fits = {alg: _fit(Ks, R[alg]) for alg in algs}

    As = ctx.scale([2, 4, 8], [2, 4, 8, 16])
    K_A = ctx.scale(300, 2000)
    ajobs = [(alg, A, s) for alg in ("log_barrier", "magnitude_reduced") for A in As for s in range(seeds)]
    ares = {}
    for alg, A, s in ctx.progress(ajobs, desc="regret vs A"):
        ares[alg, A, s] = ctx.unit(f"A-{alg}-{A}-{K_A}-{ctx.seed}-{s}", lambda a=alg, A=A, s=s: _regret(a, K_A, A, d0, 1000 * ctx.seed + s))
    RA = {alg: np.array([[ares[alg, A, s] for A in As] for s in range(seeds)]) for alg in ("log_barrier", "magnitude_reduced")}
    afits = {alg: _fit(As, RA[alg]) for alg in RA}

    chk = adv.linear_q_residual(_game(10, A0, d0, ctx.seed))
    ctx.claim("the instance satisfies the linear-Q assumption (P and every loss in span phi; max least-squares residual)",
              expected=0.0, measured=max(chk.transition_residual, chk.loss_residual), tolerance=1e-8)
    # The paper's rates are worst-case upper bounds for K large; at quick scale the learners are still in their exploring phase,
    # so the slopes are reported as the statistic over seeds x K they are (point slope, 95% CI) and the claim is that finding.
    slopes = {alg: [round(fits[alg].slope, 3), round(fits[alg].ci_low, 3), round(fits[alg].ci_high, 3)] for alg in algs}
    pre = all(0.5 < fits[alg].slope < 1.0 for alg in algs)
    ctx.claim(f"Finding: at K <= {Ks[-1]} every learner's regret is sublinear but grows faster than sqrt(K) (the pre-asymptotic phase): "
              "each pooled log-log slope over seeds x K lies in (1/2, 1) [slope, 95% CI low, high]; the paper's rates "
              "(1/2 for Alg. 1-2 and O-REPS, 2/3 for the baseline) are not resolved at this scale",
              expected="1/2 < slope < 1 for every learner", measured=slopes, holds=pre)
    f1, fb = fits["log_barrier"], fits["dilated_bonus"]
    overlap = f1.ci_low <= fb.ci_high and fb.ci_low <= f1.ci_high
    ratio = float(R["dilated_bonus"][:, -1].mean() / R["log_barrier"][:, -1].mean())
    ctx.claim(f"Finding: K <= {Ks[-1]} does not resolve sqrt(K) from K^(2/3): the slope CIs of Alg. 1 and the baseline overlap "
              f"(baseline / Alg. 1 mean regret at K = {Ks[-1]}: {ratio:.2f})", expected="CIs overlap",
              measured=[[round(f1.ci_low, 3), round(f1.ci_high, 3)], [round(fb.ci_low, 3), round(fb.ci_high, 3)]], holds=overlap)
    last = {alg: float(R[alg][:, -1].mean()) for alg in algs}
    ctx.claim(f"at K = {Ks[-1]} Algorithm 2 (magnitude-reduced, Hedge) has lower mean regret than Algorithm 1 (log-barrier)",
              expected="Alg.2 < Alg.1", measured=[round(last["magnitude_reduced"], 2), round(last["log_barrier"], 2)],
              holds=last["magnitude_reduced"] < last["log_barrier"])
    ctx.claim(f"at K = {Ks[-1]} O-REPS (full information, known transitions) has the lowest mean regret of the four learners",
              expected="O-REPS lowest", measured={a: round(v, 2) for a, v in last.items()}, holds=min(last, key=last.get) == "oreps")
    a1, a2 = afits["log_barrier"], afits["magnitude_reduced"]
    ctx.claim(f"regret grows more slowly with A for Algorithm 2 than for Algorithm 1 (log-log slopes vs A at K = {K_A}: "
              f"Alg. 2 {a2.slope:.2f} vs Alg. 1 {a1.slope:.2f})", expected="Alg.2 slope < Alg.1 slope",
              measured=[round(a2.slope, 3), round(a1.slope, 3)], holds=a2.slope < a1.slope)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    for i, alg in enumerate(algs):
        _band(axes[0], Ks, R[alg], f"{LABELS[alg]}: slope {fits[alg].slope:.2f} [{fits[alg].ci_low:.2f}, {fits[alg].ci_high:.2f}]", f"C{i}")
    k = np.asarray(Ks, dtype=float)
    ref = R["log_barrier"].mean(axis=0)[0]
    axes[0].loglog(k, ref * (k / k[0]) ** 0.5, "k:", lw=1, label="∝ √K")
    axes[0].loglog(k, ref * (k / k[0]) ** (2 / 3), "k--", lw=1, label="∝ K^{2/3}")
    axes[0].set_xlabel("K (episodes)")
    axes[0].set_ylabel("regret vs best fixed policy")
    axes[0].set_title(f"regret vs K (S={S}, A={A0}, d={d0}, H={H}; band: min-max over {seeds} seeds)")
    axes[0].legend(fontsize=7)
    for i, alg in enumerate(RA):
        _band(axes[1], As, RA[alg], f"{LABELS[alg]}: slope {afits[alg].slope:.2f}", f"C{i}")
    axes[1].set_xlabel("A (actions)")
    axes[1].set_title(f"regret vs A at K = {K_A}")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    data = {"K": Ks, "regret": {a: R[a] for a in algs}, "slopes": {a: vars(fits[a]) for a in algs},
            "A": As, "K_A": K_A, "regret_vs_A": {a: RA[a] for a in RA}, "slopes_vs_A": {a: vars(afits[a]) for a in RA},
            "instance": {"S": S, "H": H, "d": d0, "gap": GAP, "concentration": CONC}}
    return ctx.report(PAPER, figure=fig, data=data)


@register("adversarial-regret-vs-features", paper=PAPER,
          description="regret vs feature dimension d at fixed K for Dai et al. Alg. 1-2 and the K^{2/3} baseline")
def run_features(ctx: Context) -> Report:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = ctx.scale([2, 4, 8, 16], [2, 4, 8, 16, 32])
    K = ctx.scale(600, 3000)
    seeds = ctx.scale(3, 5)
    A = 2
    algs = ["log_barrier", "magnitude_reduced", "dilated_bonus"]
    jobs = [(alg, d, s) for alg in algs for d in ds for s in range(seeds)]
    res = {}
    for alg, d, s in ctx.progress(jobs, desc="regret vs d"):
        res[alg, d, s] = ctx.unit(f"d-{alg}-{d}-{ctx.seed}-{s}", lambda a=alg, d=d, s=s: _regret(a, K, A, d, 1000 * ctx.seed + s))
    R = {alg: np.array([[res[alg, d, s] for d in ds] for s in range(seeds)]) for alg in algs}
    fits = {alg: _fit(ds, R[alg]) for alg in algs}
    worst = max(max(adv.linear_q_residual(_game(5, A, d, ctx.seed)).transition_residual,
                    adv.linear_q_residual(_game(5, A, d, ctx.seed)).loss_residual) for d in ds)
    ctx.claim("every instance satisfies the linear-Q assumption (max least-squares residual over d)",
              expected=0.0, measured=worst, tolerance=1e-8)
    for alg in algs:
        f = fits[alg]
        ctx.claim(f"{LABELS[alg]}: regret grows at most linearly in d at fixed K (log-log slope vs d <= 1; 95% CI "
                  f"[{f.ci_low:.2f}, {f.ci_high:.2f}])", expected="<= 1", measured=round(f.slope, 3), holds=f.slope <= 1.0)
    ratio = R["dilated_bonus"].mean(axis=0) / R["log_barrier"].mean(axis=0)
    ctx.claim(f"Finding: at K = {K} the K^(2/3) baseline and Algorithm 1 are not separated: their mean regrets are within a "
              "factor 2 at every d (ratios baseline / Alg. 1)", expected="0.5 <= ratio <= 2 at every d",
              measured=np.round(ratio, 3).tolist(), holds=bool(np.all((ratio >= 0.5) & (ratio <= 2.0))))

    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    for i, alg in enumerate(algs):
        _band(ax, ds, R[alg], f"{LABELS[alg]}: slope {fits[alg].slope:.2f}", f"C{i}")
    ax.set_xlabel("feature dimension d")
    ax.set_ylabel(f"regret at K = {K}")
    ax.set_title(f"regret vs d (S={S}, A={A}, H={H}; band: min-max over {seeds} seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    data = {"d": ds, "K": K, "regret": {a: R[a] for a in algs}, "slopes": {a: vars(fits[a]) for a in algs}}
    return ctx.report(PAPER, figure=fig, data=data)
