"""``kl-bayes``: KL-regularized RL is Bayesian inference, exactly (Korbak, Perez, Buckley 2022).

On random finite outcome sets we check: the tilt π_ref·exp(r/β)/Z traces the reward–KL frontier
(no random policy beats it, and the KL-constrained solver lands on it); the tilt equals the
Bayesian posterior with likelihood exp(r/β); and as β → 0 it collapses onto the argmax set
(entropy → log |A*| for a reference uniform on A*, KL → −log π_ref(A*)).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rlref.reproduce import Context, Report, register
from rlref.theory.kl_regularized import (
    distribution_collapse,
    entropy,
    kl_constrained,
    kl_divergence,
    optimal_policy,
    optimal_value,
    posterior,
    reward_kl_frontier,
)

PAPER = "Korbak, Perez, Buckley (2022), RL with KL penalties is better viewed as Bayesian inference"


@register("kl-bayes", paper=PAPER, description="reward-KL frontier of the tilt, posterior = optimum, collapse as beta -> 0")
def run(ctx: Context) -> Report:
    Y = ctx.scale(12, 40)
    n_random = ctx.scale(4000, 40000)
    rng = ctx.child_rng(0)
    ref = rng.dirichlet(np.ones(Y))
    r = rng.normal(size=Y)

    # --- frontier and random policies below it
    betas = np.geomspace(20.0, 0.02, 400)
    fr = reward_kl_frontier(ref, r, betas)
    rand = rng.dirichlet(np.full(Y, 0.3), size=n_random)
    rand_kl = np.array([kl_divergence(q, ref) for q in rand])
    rand_rew = rand @ r
    feasible = rand_kl < fr.kls.max()
    frontier_at = np.array([kl_constrained(ref, r, k).reward for k in rand_kl[feasible][:400]])
    excess = float(np.max(rand_rew[feasible][:400] - frontier_at))
    budgets = np.linspace(0.05, 0.95, 7) * float(-np.log(ref[np.argmax(r)]))
    solved = [kl_constrained(ref, r, d) for d in budgets]
    on_frontier = max(abs(s.reward - float(np.interp(s.kl, fr.kls, fr.rewards))) for s in solved)
    gibbs = max(float(rand_rew[i] - 1.0 * rand_kl[i]) - optimal_value(ref, r, 1.0) for i in range(n_random))

    # --- posterior = optimum
    post_err = max(float(np.max(np.abs(posterior(ref, r / b) - ref * np.exp(r / b) / np.sum(ref * np.exp(r / b))))) for b in (0.3, 1.0, 3.0))
    opt_err = max(float(np.max(np.abs(optimal_policy(ref, r, b) - posterior(ref, r / b)))) for b in (0.3, 1.0, 3.0))

    # --- collapse: π_ref uniform (0.05 each) on a 3-way argmax set
    ref_c = np.concatenate([np.full(3, 0.05), 0.85 * rng.dirichlet(np.ones(Y - 3))])
    r_c = rng.uniform(-1, 0.9, size=Y)
    r_c[:3] = 1.0
    col = distribution_collapse(ref_c, r_c)
    cbetas = np.geomspace(3.0, 1e-3, 40)
    ents = np.array([entropy(optimal_policy(ref_c, r_c, b)) for b in cbetas])
    kls = np.array([kl_divergence(optimal_policy(ref_c, r_c, b), ref_c) for b in cbetas])

    ctx.claim("No random policy exceeds the reward-KL frontier of the tilt (max reward excess at equal KL)",
              expected=0.0, measured=excess, tolerance=None, holds=excess <= 1e-9)
    ctx.claim("KL-constrained solutions (brentq on log beta) lie on the frontier traced by the tilt (max |gap|)",
              expected=0.0, measured=on_frontier, tolerance=1e-4)
    ctx.claim("beta log Z >= E_pi[r] - beta KL(pi || pi_ref) for every random pi (Gibbs variational principle)",
              expected="<= 0", measured=gibbs, tolerance=None, holds=gibbs <= 1e-12)
    ctx.claim("Bayes' rule with likelihood exp(r/beta) equals the KL-regularized optimum (max abs diff)",
              expected=0.0, measured=max(post_err, opt_err), tolerance=1e-12)
    ctx.claim("Collapse: entropy -> log|A*| = log 3 as beta -> 0 (pi_ref uniform on A*)",
              expected=math.log(3), measured=float(ents[-1]), tolerance=1e-9)
    ctx.claim("Collapse: KL -> -log pi_ref(A*) as beta -> 0",
              expected=col.kl, measured=float(kls[-1]), tolerance=1e-9)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    ax.scatter(rand_kl, rand_rew, s=2, alpha=0.25, color="grey", label="random policies")
    ax.plot(fr.kls, fr.rewards, "C0-", lw=2, label=r"tilt $\pi_\beta$ (frontier)")
    ax.plot([s.kl for s in solved], [s.reward for s in solved], "C3o", label="kl_constrained(Δ)")
    ax.set_xlim(0, float(fr.kls.max()) * 1.05)
    ax.set_xlabel(r"KL($\pi\,\|\,\pi_{ref}$)")
    ax.set_ylabel(r"$E_\pi[r]$")
    ax.set_title("reward–KL frontier")
    ax.legend(fontsize=8)
    ax = axes[1]
    b = 0.5
    idx = np.arange(Y)
    ax.bar(idx - 0.2, ref, 0.4, label=r"prior $\pi_{ref}$")
    ax.bar(idx + 0.2, posterior(ref, r / b), 0.4, label=r"posterior, loglik $r/\beta$")
    ax.plot(idx + 0.2, optimal_policy(ref, r, b), "k.", label=r"$\pi^*_\beta$")
    ax.set_title(rf"posterior = KL optimum ($\beta$={b})")
    ax.set_xlabel("outcome y")
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.semilogx(cbetas, ents, "C0-", label="entropy")
    ax.semilogx(cbetas, kls, "C1-", label=r"KL to $\pi_{ref}$")
    ax.axhline(math.log(3), color="C0", ls=":", label="log |A*|")
    ax.axhline(col.kl, color="C1", ls=":", label=r"$-\log \pi_{ref}(A^*)$")
    ax.invert_xaxis()
    ax.set_xlabel(r"$\beta$ (decreasing →)")
    ax.set_title("distribution collapse as β → 0")
    ax.legend(fontsize=8)
    fig.suptitle("KL-regularized RL as Bayesian inference")
    fig.tight_layout()
    return ctx.report(PAPER, figure=fig, data={"betas": betas, "frontier_kl": fr.kls, "frontier_reward": fr.rewards,
                                               "collapse_betas": cbetas, "collapse_entropy": ents, "collapse_kl": kls})
