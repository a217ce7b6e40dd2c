"""``token-tree-objectives``: every rlref.llm objective against its exact optimum on token trees.

For each objective with a known optimum (KL-regularized policy gradient, PPO clip, the pathwise
k2/k3 KL losses, DPO, IPO, RPO, XPO, LD-DPO, one INPO round, a length-shaped reward,
demonstration regularization, χ² regularization) and each tree of a growing family, a policy is
trained with the library's torch loss using *exact* expectations (every response or pair
weighted by its exact probability) and its response distribution is compared, in total
variation, with the optimum computed independently by rlref's tabular code. Two policy classes:
the tabular-logit policy (every distribution reachable) and a tiny causal transformer.

References: DESIGN.md, "The token-tree bridge"; the objectives' papers are cited in
``rlref.llm.losses`` / ``rlref.llm.preference`` / ``rlref.llm.rewards`` and docs/llm_tokentree.md.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import binomtest

from rlref.algorithms import nash_po
from rlref.algorithms import preference_losses as pl
from rlref.llm import losses, preference, rewards
from rlref.llm.tokentree import (
    TabularLogitPolicy,
    TinyTransformer,
    exact_pairs,
    exact_rows,
    pathwise_kl_fixed_point,
    terminal_rewards,
    train,
    tv_distance,
)
from rlref.preferences import bradley_terry
from rlref.reproduce import Context, Report, register
from rlref.theory.correlated_proxies import chi2_regularized_optimum
from rlref.theory.kl_regularized import optimal_policy
from rlref.tokentree import TokenTree

PAPER = "rlref token-tree bridge (DESIGN.md): seed papers' LLM objectives vs exact tabular optima"

OBJECTIVES = ("kl-k1-reward", "ppo-clip", "k2-loss", "k3-loss", "dpo", "ipo", "rpo", "xpo", "ld-dpo", "inpo-round",
              "length-shaped", "demo-kl", "chi2")
PG_OBJECTIVES = ("kl-k1-reward", "ppo-clip", "k2-loss", "k3-loss", "length-shaped", "demo-kl", "chi2")
TABULAR_TOL = 1e-3
TRANSFORMER_TOL = 0.05


class _Inst:
    def __init__(self, tree: TokenTree, rng: np.random.Generator) -> None:
        self.tree = tree
        self.pi_ref = tree.random_policy(rng, concentration=3.0)
        self.p_ref = tree.sequence_distribution(self.pi_ref)
        self.r = rng.normal(size=tree.num_sequences)
        ref = TabularLogitPolicy(tree, init=self.pi_ref)
        with torch.no_grad():
            self.ref_tok = ref.token_logprobs()
        self.ref_seq = self.ref_tok.sum(-1)
        self.tt = ref.tt
        self.R_tok = terminal_rewards(self.tt, self.r)
        self.lens = self.tt.lengths
        self.rng = rng


def _pg(pol, inst: _Inst, rows, adv: torch.Tensor) -> torch.Tensor:
    """Exact REINFORCE through ``ppo_clip`` at ratio 1, row weights folded into the advantages."""
    tok = pol.token_logprobs()[rows.index]
    a = adv * rows.weights * rows.index.numel()
    return losses.ppo_clip(tok, tok.detach(), a, inst.tt.mask[rows.index], aggregation="seq-mean-token-sum").loss


def _kl_pg(pol, inst: _Inst, beta: float, R_tok: torch.Tensor, ref_tok: torch.Tensor) -> torch.Tensor:
    rows = exact_rows(pol.sequence_logprobs())
    with torch.no_grad():
        ret = losses.kl_reward(R_tok, pol.token_logprobs(), ref_tok, inst.tt.mask, beta=beta).sum(-1)
    return _pg(pol, inst, rows, ret - (rows.weights * ret).sum())


def _weighted(pairs, res) -> torch.Tensor:
    return (pairs.weights * res.losses).sum()


def _objective(name: str, inst: _Inst, pol) -> tuple[Callable[[], torch.Tensor], np.ndarray, str, np.ndarray | None]:
    """(loss closure, exact target p[y], optimizer, KL optimum π* when the target is a *different* point)."""
    tree = inst.tree
    beta = 1.0
    if name == "kl-k1-reward":
        return (lambda: _kl_pg(pol, inst, beta, inst.R_tok, inst.ref_tok)), optimal_policy(inst.p_ref, inst.r, beta), "adam", None
    if name == "ppo-clip":
        state: dict = {"k": 0}

        def ppo() -> torch.Tensor:
            if state["k"] % 4 == 0:
                with torch.no_grad():
                    old = pol.token_logprobs()
                    rows = exact_rows(old.sum(-1))
                    ret = losses.kl_reward(inst.R_tok, old, inst.ref_tok, inst.tt.mask, beta=beta).sum(-1)
                    state.update(old=old, w=rows.weights, adv=ret - (rows.weights * ret).sum())
            state["k"] += 1
            a = state["adv"] * state["w"] * state["w"].numel()
            return losses.ppo_clip(pol.token_logprobs(), state["old"], a, inst.tt.mask, eps_low=0.2, eps_high=0.28,
                                   aggregation="seq-mean-token-sum").loss

        return ppo, optimal_policy(inst.p_ref, inst.r, beta), "adam-decay", None
    if name in ("k2-loss", "k3-loss"):
        est = name[:2]
        r = torch.as_tensor(inst.r)

        def pathwise() -> torch.Tensor:
            rows = exact_rows(pol.sequence_logprobs())
            tok = pol.token_logprobs()
            k = torch.where(inst.tt.mask, losses.kl_penalty(tok, inst.ref_tok, estimator=est), torch.zeros_like(tok)).sum(-1)
            return _pg(pol, inst, rows, r - (rows.weights * r).sum()) + beta * (rows.weights * k).sum()

        fp = pathwise_kl_fixed_point(tree, inst.pi_ref, inst.r, beta, est)
        return pathwise, fp.p, "adam", optimal_policy(inst.p_ref, inst.r, beta)
    P = bradley_terry(inst.r)
    pairs = exact_pairs(inst.p_ref, P)
    c, d = pairs.chosen, pairs.rejected

    def seqs() -> tuple[torch.Tensor, ...]:
        s = pol.sequence_logprobs()
        return s[c], s[d], inst.ref_seq[c], inst.ref_seq[d]

    if name == "dpo":
        return (lambda: _weighted(pairs, preference.dpo_loss(*seqs(), beta))), pl.dpo_bt_minimizer(inst.r, inst.p_ref, beta), "lbfgs", None
    if name == "ipo":
        tau = 0.5
        return (lambda: _weighted(pairs, preference.ipo_loss(*seqs(), tau))), pl.ipo_product_closed_form(P, inst.p_ref, inst.p_ref, tau), \
            "lbfgs", None
    mu = pl.pair_distribution(inst.p_ref)
    if name == "rpo":
        alpha = 0.5
        # the library's SFT term is length-normalized: −α Σ_y c(y) log π(y)/|y|, c = law of the chosen response
        chosen = pl.chosen_distribution(P, mu) / tree.lengths
        z = chosen.sum()
        opt = pl.minimize_population_loss(lambda th: pl.rpo_loss(th, P, mu, inst.p_ref, beta, alpha * z / beta, pi_base=chosen / z),
                                          np.log(inst.p_ref))
        ln = inst.lens[c].double()
        return (lambda: _weighted(pairs, preference.rpo_loss(*seqs(), beta, chosen_lengths=ln, alpha=alpha))), opt.pi, "lbfgs", None
    if name == "xpo":
        alpha = 0.002
        opt = pl.minimize_population_loss(lambda th: pl.xpo_loss(th, P, mu, inst.p_ref, beta, alpha), np.log(inst.p_ref))
        pr = torch.as_tensor(inst.p_ref)

        def xpo() -> torch.Tensor:
            s = seqs()
            res = preference.xpo_loss(*s, beta, policy_ref_sample_logps=pol.sequence_logprobs() * pr * pr.numel(), alpha=alpha)
            return _weighted(pairs, res) + (res.loss - res.losses.mean())

        return xpo, opt.pi, "lbfgs", None
    if name == "ld-dpo":
        alpha = 0.5
        pub = torch.minimum(inst.lens[c], inst.lens[d])

        def ld() -> torch.Tensor:
            tok = pol.token_logprobs()
            m = inst.tt.mask
            lp = [preference.ld_dpo_logps(x[i], m[i], pub, alpha=alpha) for x in (tok, inst.ref_tok) for i in (c, d)]
            return _weighted(pairs, preference.dpo_loss(lp[0], lp[1], lp[2], lp[3], beta))

        return ld, pl.ld_dpo_token_minimizer(inst.tree, inst.pi_ref, P, beta, alpha), "lbfgs", None
    if name == "inpo-round":
        eta, tau = 2.0, 1.0
        A = inst.rng.uniform(size=P.shape)
        G = np.triu(A, 1) + np.tril(1 - A.T, -1) + 0.5 * np.eye(P.shape[0])
        gp = exact_pairs(inst.p_ref, G)
        prev = inst.ref_seq

        def inpo() -> torch.Tensor:
            s = pol.sequence_logprobs()
            i, j = gp.chosen, gp.rejected
            res = preference.inpo_loss(s[i], s[j], inst.ref_seq[i], inst.ref_seq[j], prev_chosen_logps=prev[i], prev_rejected_logps=prev[j],
                                       eta=eta, tau=tau)
            return _weighted(gp, res)

        return inpo, nash_po.inpo_update(G, inst.p_ref, inst.p_ref, tau, 1.0 / eta), "lbfgs", None
    if name == "length-shaped":
        correct = torch.as_tensor(inst.r > 0).unsqueeze(0)
        shaped = (correct.double() + rewards.kimi_length_reward(inst.lens.double().unsqueeze(0), correct))[0].numpy()
        return (lambda: _kl_pg(pol, inst, beta, terminal_rewards(inst.tt, shaped), inst.ref_tok)), optimal_policy(inst.p_ref, shaped, beta), \
            "adam", None
    if name == "demo-kl":
        demo = tree.random_policy(inst.rng, concentration=3.0)
        with torch.no_grad():
            demo_tok = TabularLogitPolicy(tree, init=demo).token_logprobs()
        target = optimal_policy(tree.sequence_distribution(demo), inst.r, beta)
        return (lambda: _kl_pg(pol, inst, beta, inst.R_tok, demo_tok)), target, "adam", None
    if name == "chi2":
        lam = 2.0
        r = torch.as_tensor(inst.r)

        def chi2() -> torch.Tensor:
            rows = exact_rows(pol.sequence_logprobs())
            tok = pol.token_logprobs()
            pen = losses.chi2_occupancy_penalty(tok, inst.ref_tok, inst.tt.mask, beta=lam, level="sequence").loss
            (g,) = torch.autograd.grad(pen, tok, retain_graph=True)
            pen_exact = (rows.weights.numel() * rows.weights[:, None] * g.detach() * tok).sum()
            return _pg(pol, inst, rows, r - (rows.weights * r).sum()) + pen_exact

        return chi2, chi2_regularized_optimum(inst.p_ref, inst.r, lam), "adam", None
    raise ValueError(f"unknown objective {name!r}")


def _run_unit(name: str, V: int, L: int, policy_class: str, steps: int, seed: int) -> dict:
    torch.set_num_threads(1)
    tree = TokenTree(V, L, eos=0)
    inst = _Inst(tree, np.random.default_rng([seed, V, L, OBJECTIVES.index(name)]))
    pol = TabularLogitPolicy(tree) if policy_class == "tabular" else TinyTransformer(tree, d_model=16, seed=seed)
    loss_fn, target, mode, kl_opt = _objective(name, inst, pol)
    tab = policy_class == "tabular"
    if mode == "lbfgs":
        train(pol, loss_fn, steps=steps, optimizer="lbfgs")
    elif mode == "adam-decay" or not tab:
        train(pol, loss_fn, steps=steps * (2 if tab else 1), lr=0.1 if tab else 0.03, lr_end=0.005 if tab else 0.002)
    else:
        train(pol, loss_fn, steps=steps * 2, lr=0.1)
    p = pol.sequence_distribution()
    out = {"tv": tv_distance(p, target), "num_sequences": tree.num_sequences}
    if kl_opt is not None:
        out["bias_tv_to_kl_optimum"] = tv_distance(target, kl_opt)
    return out


@register("token-tree-objectives", paper=PAPER,
          description="every rlref.llm objective trained with exact expectations vs its exact optimum on growing token trees")
def run(ctx: Context) -> Report:
    sizes = ctx.scale([(3, 2), (3, 3), (3, 4)], [(2, 2), (3, 2), (3, 3), (3, 4), (4, 4)])
    transformer_sizes = ctx.scale(sizes[:2], sizes[:4])
    steps = ctx.scale(200, 500)
    jobs = [(o, V, L, "tabular") for (V, L) in sizes for o in OBJECTIVES]
    jobs += [(o, V, L, "transformer") for (V, L) in transformer_sizes for o in OBJECTIVES]
    res: dict[tuple, dict] = {}
    for o, V, L, cls in ctx.progress(jobs, "objective x tree x policy"):
        res[(o, V, L, cls)] = ctx.unit(f"{o}-V{V}-L{L}-{cls}", lambda o=o, V=V, L=L, cls=cls: _run_unit(o, V, L, cls, steps, ctx.seed))

    table = [{"objective": o, "V": V, "L": L, "policy": cls, **res[(o, V, L, cls)]} for (o, V, L, cls) in jobs]
    tab_tv = {o: max(res[(o, V, L, "tabular")]["tv"] for (V, L) in sizes) for o in OBJECTIVES}
    tf_tv = {o: max(res[(o, V, L, "transformer")]["tv"] for (V, L) in transformer_sizes) for o in OBJECTIVES}
    worst_tab = max(tab_tv.values())
    ctx.claim(f"Every objective's tabular-logit policy, trained with the library loss on exact expectations, is within TV "
              f"{TABULAR_TOL:g} of its exact optimum on every tree (max over objectives and trees)",
              expected=0.0, measured=worst_tab, tolerance=TABULAR_TOL)
    # The transformer is a non-convex model with a fixed step budget: on some instances (e.g. seed 3, demo-kl on
    # V=3, L=3: TV 0.16, unchanged with twice the steps) it stops short of the optimum. So this claim is the
    # statistic it is: the fraction of (objective, tree) runs within the tolerance, with its Wilson 95% interval,
    # and it holds if the interval lies above 1/2 (the transformer reaches the optimum in most runs); failures listed.
    tf_runs = [(o, V, L, res[(o, V, L, "transformer")]["tv"]) for (V, L) in transformer_sizes for o in OBJECTIVES]
    n_ok = sum(tv <= TRANSFORMER_TOL for *_, tv in tf_runs)
    ci = binomtest(n_ok, len(tf_runs)).proportion_ci(confidence_level=0.95, method="wilson")
    ctx.claim(f"The tiny transformer (exact expectations) is within TV {TRANSFORMER_TOL:g} of the optimum in most (objective, tree) "
              f"runs: fraction of the {len(tf_runs)} runs within it, Wilson 95% interval above 1/2 (runs that are not: listed)",
              expected="interval > 0.5",
              measured={"fraction": n_ok / len(tf_runs), "wilson_95": [float(ci.low), float(ci.high)],
                        "not_within": [f"{o} V={V} L={L}: TV {tv:.3g}" for o, V, L, tv in tf_runs if tv > TRANSFORMER_TOL]},
              tolerance=None, holds=bool(ci.low > 0.5))
    bias = min(res[(o, V, L, "tabular")]["bias_tv_to_kl_optimum"] for o in ("k2-loss", "k3-loss") for (V, L) in sizes if L >= 2)
    ctx.claim("The pathwise k2/k3 KL losses converge to their own fixed points, which differ from the KL-regularized optimum "
              "π_ref·e^{r/β}/Z on trees of depth >= 2 (min TV between the two)",
              expected="> 1e-3", measured=bias, tolerance=None, holds=bias > 1e-3)

    fig, axes = plt.subplots(1, 2, figsize=(15, 4.8), sharey=True)
    width = 0.8 / max(len(sizes), 1)
    x = np.arange(len(OBJECTIVES))
    for ax, cls, sz in ((axes[0], "tabular", sizes), (axes[1], "transformer", transformer_sizes)):
        for k, (V, L) in enumerate(sz):
            vals = [max(res[(o, V, L, cls)]["tv"], 1e-12) for o in OBJECTIVES]
            ax.bar(x + k * width, vals, width, label=f"V={V}, L={L} ({res[(OBJECTIVES[0], V, L, cls)]['num_sequences']} responses)")
        ax.axhline(TABULAR_TOL if cls == "tabular" else TRANSFORMER_TOL, color="k", ls="--", lw=1, label="tolerance")
        ax.set_yscale("log")
        ax.set_xticks(x + width * (len(sz) - 1) / 2)
        ax.set_xticklabels(OBJECTIVES, rotation=60, ha="right")
        ax.set_title(f"{cls} policy: TV(trained, exact optimum)")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("total variation")
    fig.tight_layout()
    return ctx.report(PAPER, figure=fig, data={"table": table, "sizes": sizes, "transformer_sizes": transformer_sizes, "steps": steps,
                                               "max_tv_tabular": tab_tv, "max_tv_transformer": tf_tv})
