"""``policy-cliff``: the reward → policy map jumps at ties and is Lipschitz when regularized.

Xu (2025), "The Policy Cliff: A Theoretical Analysis of Reward-Policy Maps in Large Language
Models". With tied optimal actions the argmax policy moves by a TV distance that does not shrink
with the perturbation size ε; the entropy-regularized policy softmax(r/β) moves by at most
ε/(2β) in TV (the tight constant 1/(2β) in ‖·‖₁ per unit oscillation, derived in
rlref.theory.policy_cliff). The multi-reward version has a cliff in the weights where the
effective reward ties; tabular MDPs inherit the bound with a 1/(1−γ) factor.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rlref.mdp import TabularMDP
from rlref.reproduce import Context, Report, register
from rlref.theory.policy_cliff import (
    empirical_lipschitz,
    jump_curve,
    mdp_lipschitz_bound,
    mdp_optimal_policy,
    oscillation,
    regularized_policy,
    softmax_lipschitz_constant,
    weights_to_policy,
)

PAPER = "Xu (2025), The Policy Cliff: A Theoretical Analysis of Reward-Policy Maps in Large Language Models"


@register("policy-cliff", paper=PAPER, description="TV jump vs perturbation size at ties (beta=0) and Lipschitz continuity (beta>0)")
def run(ctx: Context) -> Report:
    rng = ctx.child_rng(0)
    eps = np.geomspace(1e-1, 1e-8, ctx.scale(15, 30))
    r_tie = np.array([1.0, 1.0, 0.3, -0.2, 0.1])  # two tied optimal actions
    betas = [0.05, 0.2, 1.0]
    curves = {0.0: jump_curve(r_tie, 0.0, eps, rng=rng)}
    for b in betas:
        curves[b] = jump_curve(r_tie, b, eps, rng=rng)

    # empirical Lipschitz ratios over random rewards, against 1/(2β)
    n_inst = ctx.scale(200, 2000)
    ratio_max = {}
    for b in betas:
        worst = 0.0
        for _ in range(n_inst):
            A = int(rng.integers(2, 8))
            est = empirical_lipschitz(rng.normal(size=A), b, rng=rng, num=30, scale=float(rng.choice([1e-4, 1e-2, 1.0])))
            worst = max(worst, est.max_ratio / est.constant)
        ratio_max[b] = worst
    tight = []
    for b in betas:
        d = 1e-6 * b * np.array([1.0, 1.0, -1.0, -1.0])
        diff = np.abs(regularized_policy(d, b) - regularized_policy(np.zeros(4), b)).sum()
        tight.append(diff / oscillation(d) / softmax_lipschitz_constant(b))

    # multi-reward: weight -> policy through r_eff = w r_1 + (1 - w) r_2
    rewards = np.array([[1.0, 0.0, 0.2], [0.0, 1.0, 0.2]])
    ws = np.linspace(0.0, 1.0, 401)
    p0 = {b: np.array([weights_to_policy(rewards, [w, 1 - w], b)[0] for w in ws]) for b in [0.0, 0.05, 0.2]}
    cliff_w = [float(0.5 * np.abs(weights_to_policy(rewards, [0.5 + e, 0.5 - e], 0.0)
                                  - weights_to_policy(rewards, [0.5 - e, 0.5 + e], 0.0)).sum()) for e in (1e-2, 1e-6, 1e-12)]

    # tabular MDP: per-state bound ||Δπ(s)||_1 <= ||Δr||_∞ / (β(1-γ))
    S, A = 5, 3
    mdp = TabularMDP(rng.dirichlet(np.ones(S), size=(S, A)), rng.normal(size=(S, A)), gamma=0.9)
    mdp_ratio = 0.0
    for b in (0.1, 1.0):
        base = mdp_optimal_policy(mdp, b)
        for _ in range(ctx.scale(10, 50)):
            dr = float(rng.choice([1e-3, 1e-1])) * rng.normal(size=(S, A))
            moved = mdp_optimal_policy(mdp, b, r=mdp.r + dr)
            per_state = np.abs(moved.policy - base.policy).sum(axis=1).max()
            mdp_ratio = max(mdp_ratio, per_state / mdp_lipschitz_bound(float(np.abs(dr).max()), b, mdp.gamma))

    jump0 = curves[0.0].jump
    ctx.claim("Policy cliff: with 2 tied optimal actions the argmax policy's TV jump stays >= 1/2 as eps -> 1e-8",
              expected=">= 0.5", measured=float(jump0.min()), tolerance=None, holds=bool(jump0.min() >= 0.5))
    ctx.claim("Entropy regularization: TV jump <= eps/(2 beta) for every probed perturbation (max jump/bound)",
              expected="<= 1", measured=max(float(np.max(curves[b].jump / curves[b].bound)) for b in betas), tolerance=None,
              holds=all(np.all(curves[b].jump <= curves[b].bound * (1 + 1e-6)) for b in betas))
    ctx.claim("Derived constant 1/(2 beta) (||.||_1 per unit oscillation) is never violated on random rewards (max ratio)",
              expected="<= 1", measured=max(ratio_max.values()), tolerance=None, holds=max(ratio_max.values()) <= 1 + 1e-9)
    ctx.claim("...and is attained in the limit (two blocks of mass 1/2 moved apart by eps -> 0): ratio to the constant",
              expected=1.0, measured=min(tight), tolerance=1e-5)
    ctx.claim("Multi-reward: at the tie of the effective reward the weight -> argmax-policy map jumps by TV = 1 for all eps",
              expected=1.0, measured=min(cliff_w), tolerance=0.0)
    ctx.claim("Tabular MDP (derived here): per-state ||Δπ||_1 <= ||Δr||_inf / (beta (1-gamma)) (max ratio to bound)",
              expected="<= 1", measured=mdp_ratio, tolerance=None, holds=mdp_ratio <= 1 + 1e-9)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    ax.loglog(eps, np.maximum(jump0, 1e-300), "k-o", ms=3, label="β = 0 (argmax)")
    for j, b in enumerate(betas):
        ax.loglog(eps, curves[b].jump, f"C{j}-", label=f"β = {b}")
        ax.loglog(eps, curves[b].bound, f"C{j}:", lw=1)
    ax.set_xlabel("perturbation size ε (sup norm)")
    ax.set_ylabel("max TV jump of the policy")
    ax.set_title("the cliff at ties vs Lipschitz (dotted: ε/(2β))")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.bar([str(b) for b in betas], [ratio_max[b] for b in betas], color="C0", label="max empirical ratio / (1/(2β))")
    ax.plot([str(b) for b in betas], tight, "C3o", label="tight instance")
    ax.axhline(1.0, color="k", ls="--")
    ax.set_xlabel("β")
    ax.set_ylim(0, 1.15)
    ax.set_title("empirical Lipschitz ratio vs derived constant")
    ax.legend(fontsize=8)
    ax = axes[2]
    for j, (b, v) in enumerate(p0.items()):
        ax.plot(ws, v, f"C{j}-", label=f"β = {b}")
    ax.set_xlabel("weight w on reward 1 (r_eff = w r₁ + (1−w) r₂)")
    ax.set_ylabel("π(action 1)")
    ax.set_title("multi-reward: cliff in the weights at the tie")
    ax.legend(fontsize=8)
    fig.suptitle("The policy cliff: reward → policy maps")
    fig.tight_layout()
    return ctx.report(PAPER, figure=fig, data={"eps": eps, "jump": {str(b): c.jump for b, c in curves.items()},
                                               "lipschitz_ratio_max": {str(b): v for b, v in ratio_max.items()}, "tight": tight})
