"""``length-shaping-tree``: the accuracy-vs-length trade-off of each length reward, exactly at equal KL and by the library's pipelines.

On a token tree whose responses have lengths and a correctness label (correct with probability
increasing with length: longer reasoning helps), two comparisons:

1. **Exact, at equal KL.** Each length *reward* of ``rlref.llm.length`` (DLER's truncation, TLDR, Kimi
   k1.5, cosine, HAPO) defines a sequence reward r_m(y), the whole tree forming the "group". The
   KL-constrained optimum max_π E_π[r_m] s.t. KL(π‖π_ref) ≤ δ is the tilt π_ref·e^{r_m/β}/Z with β from a
   bracketed 1-D root search (``rlref.theory.kl_regularized.kl_constrained``), so every reward is compared
   at exactly the same KL budget; we report accuracy E_π[1[correct]], expected length and a frontier.
2. **The library's sampled pipelines.** GRPO-λ, DRPO and DLER are not sequence rewards (GRPO-λ's switch
   depends on the batch, DRPO is a loss, DLER's dynamic sampling acts on batches), so they are run as
   written: a tabular-logit policy starts at π_ref and is trained on batches of B groups of G responses
   sampled from it (PPO-style: a batch is reused for a few steps against its π_old):
   GRPO on correctness (baseline); Kimi's length reward on every group; GRPO-λ
   (``grpo_lambda_reward(top_fraction=λ)``, the paper's batch-wise top-λ rule, with the Kimi-shaped reward);
   DLER (``dler_truncation_reward`` + ``DynamicSampler`` + ``dler_batch_normalized``); DRPO (``drpo_loss``
   with the release's λ, τ and KL hinge) and DRPO without the hinge (β = 0). The final policy's accuracy,
   length and KL(p_θ‖p_ref) are measured exactly, and checked against the exact bound of part 1: no policy
   at that KL is more accurate than the correctness-only tilt.

The experiment holds no objective of its own: every reward, advantage, sampler and loss is the library's.

References: Liu et al. (2025), DLER, Sec. 3; TLDR (2025), Sec. 4; Kimi Team (2025), Sec. 2.3.3;
Yeo et al. (2025), eq. (1) (cosine); Huang et al. (2025), HAPO, eqs. (2)-(4); Dai, Liu, Si (2025),
GRPO-λ (arXiv 2505.18086), Sec. 3; Li et al. (2025), DRPO (arXiv 2510.04474), Sec. 4 and its release;
Yu et al. (2025), DAPO, Sec. 3.2 (dynamic sampling); Yang et al. (2024), Lemma 1 (KL-constrained tilt).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from rlref.llm import length, losses
from rlref.llm.advantages import grpo
from rlref.llm.tokentree import TabularLogitPolicy, exact_rows, sample_batch, terminal_rewards, train, tv_distance
from rlref.reproduce import Context, Report, register
from rlref.theory.kl_regularized import kl_constrained, kl_divergence
from rlref.tokentree import TokenTree

PAPER = ("Length rewards for efficient reasoning (DLER, TLDR, Kimi k1.5, cosine, HAPO, GRPO-λ, DRPO) "
         "compared on a token tree: exactly at equal KL, and by the library's sampled pipelines")

METHODS = ("correctness", "DLER", "TLDR", "Kimi", "cosine", "HAPO")
PIPELINES = ("GRPO", "Kimi (every group)", "GRPO-λ", "DLER", "DRPO", "DRPO (β = 0)")
GRPO_LAMBDA = 0.5  # top fraction of the batch's groups that get the length reward
DRPO = {"lam": 0.1, "tau": 10.0, "beta": 1e3, "delta": 1e-4}  # the release's defaults (run_drpo_1.5b_8k.sh)
REUSE = 4  # optimizer steps per sampled batch (PPO epochs)
LR = 0.02  # Adam step size of the sampled pipelines
MAX_ROUNDS = 50  # DLER: sampling rounds per batch before the prompt counts as saturated (all groups flat)


def method_rewards(lengths: np.ndarray, correct: np.ndarray, max_len: int) -> dict[str, np.ndarray]:
    """Sequence rewards r_m(y) of each length reward, the enumerated responses forming one group.

    Budgets: DLER truncates above ⌈L/2⌉+1 tokens, TLDR's budget is ⌈L/2⌉; cosine uses L_max = L with
    the paper's default constants; HAPO's history is the shortest correct length on the tree (the
    limit of its running minimum).
    """
    ln = torch.as_tensor(lengths, dtype=torch.float64).unsqueeze(0)
    c = torch.as_tensor(correct, dtype=torch.bool).unsqueeze(0)
    half = int(np.ceil(max_len / 2))
    hapo = length.HistoryAwareReward(weight=1.0)
    hapo.update("tree", ln[0], c[0])
    out = {
        "correctness": c.double(),
        "DLER": length.dler_truncation_reward(ln, c, budget=half + 1),
        "TLDR": length.tldr_budget_reward(ln, c, budget=half),
        "Kimi": c.double() + length.kimi_length_reward(ln, c),
        "cosine": length.cosine_length_reward(ln, c, max_length=max_len),
        "HAPO": hapo("tree", ln[0], c[0], update=False).unsqueeze(0),
    }
    return {k: v[0].numpy().astype(np.float64) for k, v in out.items()}


def _instance(L: int, seed: int) -> tuple[TokenTree, np.ndarray, np.ndarray, np.ndarray]:
    tree = TokenTree(3, L, eos=0)
    rng = np.random.default_rng([seed, L])
    pi_ref = tree.random_policy(rng, concentration=3.0)
    lens = tree.lengths
    p_correct = 0.1 + 0.8 * (lens - 1) / (L - 1)
    correct = rng.uniform(size=lens.size) < p_correct
    return tree, pi_ref, lens, correct


def _pipeline(name: str, tree: TokenTree, pi_ref: np.ndarray, lens: np.ndarray, correct: np.ndarray, *, batches: int,
              groups: int, group_size: int, seed: int) -> dict:
    """Train a tabular-logit policy from π_ref with one of the library's sampled pipelines; measure it exactly."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    pol = TabularLogitPolicy(tree, init=pi_ref)
    tt = pol.tt
    L = tree.max_len
    ln_all = torch.as_tensor(lens, dtype=torch.float64)
    c_all = torch.as_tensor(correct, dtype=torch.bool)
    budget = int(np.ceil(L / 2)) + 1
    sampler = length.DynamicSampler(batch_size=groups) if name == "DLER" else None
    st: dict = {"k": 0, "active": [], "sampled_groups": 0, "dropped_groups": 0, "saturated_at_batch": None, "batch_kl": []}

    def new_batch() -> bool:
        with torch.no_grad():
            seq = pol.sequence_logprobs()
            if sampler is None:
                idx = sample_batch(seq, groups * group_size, gen).view(groups, group_size)
                st["sampled_groups"] += groups
            else:
                for _ in range(MAX_ROUNDS):
                    if sampler.ready:
                        break
                    cand = sample_batch(seq, groups * group_size, gen).view(groups, group_size)
                    r = length.dler_truncation_reward(ln_all[cand], c_all[cand], budget=budget)
                    st["sampled_groups"] += groups
                    st["dropped_groups"] += groups - sampler.add(r, items=list(cand))
                if not sampler.ready:  # every group is flat: the prompt is solved (or hopeless), DAPO/DLER drop it
                    return False
                _, items = sampler.pop()
                idx = torch.stack(items)
            ln, c = ln_all[idx], c_all[idx]
            if name == "GRPO":
                adv = grpo(c.double())
            elif name == "Kimi (every group)":
                adv = grpo(c.double() + length.kimi_length_reward(ln, c))
            elif name == "GRPO-λ":
                adv = grpo(length.grpo_lambda_reward(c, c.double() + length.kimi_length_reward(ln, c), top_fraction=GRPO_LAMBDA))
            elif name == "DLER":
                r = length.dler_truncation_reward(ln, c, budget=budget)
                adv = length.dler_batch_normalized(r, weighting="token", lengths=ln)
            else:
                adv = None
            st.update(idx=idx, old=pol.token_logprobs()[idx].detach(), adv=adv, correct=c, p_old=pol.sequence_distribution())
            return True

    def loss() -> torch.Tensor:
        if st["k"] % REUSE == 0 and st["k"] > 0 and st["saturated_at_batch"] is None:  # exact KL(π_old‖π_θ) of the batch just used
            st["batch_kl"].append(float(kl_divergence(st["p_old"], pol.sequence_distribution())))
        if st["saturated_at_batch"] is None and st["k"] % REUSE == 0 and not new_batch():
            st["saturated_at_batch"] = st["k"] // REUSE
        st["k"] += 1
        if st["saturated_at_batch"] is not None:
            return 0.0 * pol.logits.sum()  # no informative group left: training stops (the policy is kept)
        idx = st["idx"]
        tok = pol.token_logprobs()[idx]
        m = tt.mask[idx]
        if name.startswith("DRPO"):
            beta = 0.0 if name == "DRPO (β = 0)" else DRPO["beta"]
            res = length.drpo_loss(tok, st["old"], m, st["correct"], lam=DRPO["lam"], tau=DRPO["tau"], beta=beta,
                                   delta=DRPO["delta"], max_length=L)
            st["active"].append(bool(res.constraint_active))
            return res.loss
        T = tok.shape[-1]
        return losses.ppo_clip(tok.reshape(-1, T), st["old"].reshape(-1, T), st["adv"].reshape(-1), m.reshape(-1, T),
                               aggregation="token-mean").loss

    train(pol, loss, steps=batches * REUSE, lr=LR)
    p = pol.sequence_distribution()
    p_ref = tree.sequence_distribution(pi_ref)
    kl = float(kl_divergence(p, p_ref))
    best = kl_constrained(p_ref, correct.astype(float), kl)
    out = {"pipeline": name, "accuracy": float(p @ correct), "length": float(p @ lens), "kl_to_ref": kl,
           "best_accuracy_at_this_kl": float(best.policy @ correct), "sampled_groups": st["sampled_groups"],
           "dropped_groups": st["dropped_groups"], "saturated_at_batch": st["saturated_at_batch"]}
    out["mean_batch_kl_to_old"] = float(np.mean(st["batch_kl"])) if st["batch_kl"] else 0.0
    if st["active"]:
        out["hinge_active_fraction"] = float(np.mean(st["active"]))
    return out


@register("length-shaping-tree", paper=PAPER,
          description="length rewards on a token tree: exact accuracy vs length at equal KL, and GRPO-λ/DRPO/DLER pipelines")
def run(ctx: Context) -> Report:
    L = ctx.scale(6, 8)
    deltas = np.geomspace(0.02, 1.5, ctx.scale(10, 25))
    delta0 = 0.3
    tree, pi_ref, lens, correct = _instance(L, ctx.seed)
    p_ref = tree.sequence_distribution(pi_ref)
    rs = method_rewards(lens, correct, L)
    cf = correct.astype(float)

    def unit_frontier() -> dict:
        out = {}
        for m in METHODS:
            rows = []
            for d in [delta0, *deltas]:
                sol = kl_constrained(p_ref, rs[m], float(d))
                rows.append({"delta": float(d), "beta": sol.beta, "kl": float(kl_divergence(sol.policy, p_ref)),
                             "accuracy": float(sol.policy @ cf), "length": float(sol.policy @ lens), "regime": sol.regime})
            out[m] = rows
        return out

    fr = ctx.unit(f"frontier-L{L}", unit_frontier)

    def unit_torch() -> dict:
        torch.set_num_threads(1)
        m = "Kimi"
        sol = kl_constrained(p_ref, rs[m], delta0)
        pol = TabularLogitPolicy(tree)
        ref = TabularLogitPolicy(tree, init=pi_ref)
        with torch.no_grad():
            ref_tok = ref.token_logprobs()
        R_tok = terminal_rewards(ref.tt, rs[m])

        def loss() -> torch.Tensor:
            rows = exact_rows(pol.sequence_logprobs())
            tok = pol.token_logprobs()
            with torch.no_grad():
                ret = losses.kl_reward(R_tok, tok, ref_tok, ref.tt.mask, beta=sol.beta).sum(-1)
            a = (ret - (rows.weights * ret).sum()) * rows.weights * rows.weights.numel()
            return losses.ppo_clip(tok, tok.detach(), a, ref.tt.mask, aggregation="seq-mean-token-sum").loss

        train(pol, loss, steps=ctx.scale(300, 800), lr=0.1)
        return {"method": m, "beta": sol.beta, "tv": tv_distance(pol.sequence_distribution(), sol.policy)}

    tch = ctx.unit(f"torch-check-L{L}", unit_torch)
    batches, groups, gsize = ctx.scale(30, 100), 8, 8
    torch.set_num_threads(1)
    pipes = {p: ctx.unit(f"pipeline-{p}-L{L}-b{batches}", lambda p=p: _pipeline(p, tree, pi_ref, lens, correct, batches=batches,
                                                                               groups=groups, group_size=gsize, seed=ctx.seed))
             for p in ctx.progress(PIPELINES, desc="pipelines")}

    at = {m: fr[m][0] for m in METHODS}
    base = at["correctness"]
    kl_err = max(abs(at[m]["kl"] - delta0) for m in METHODS)
    ctx.claim(f"Every length reward is evaluated at the same KL budget δ = {delta0} nats (max |KL − δ| over rewards)",
              expected=0.0, measured=kl_err, tolerance=1e-8)
    penalizers = [m for m in METHODS[1:] if m != "cosine"]  # rewards that only ever lower long responses' reward
    shorter = [m for m in penalizers if at[m]["length"] < base["length"] - 1e-9]
    ctx.claim("At equal KL every length reward that only lowers the reward of long responses (DLER truncation, TLDR, Kimi, HAPO) "
              "shortens the expected response vs the correctness-only reward (rewards that do)",
              expected=penalizers, measured=shorter, tolerance=None, holds=shorter == penalizers)
    cos_delta = at["cosine"]["length"] - base["length"]
    ctx.claim("Finding: the cosine reward (η_wrong rises with length: short wrong answers get −10, long wrong ones 0) does NOT "
              "shorten responses at equal KL here — expected length minus the correctness-only one (>= 0)",
              expected=">= 0", measured=cos_delta, tolerance=None, holds=cos_delta >= -1e-9)
    acc_gap = {m: base["accuracy"] - at[m]["accuracy"] for m in METHODS[1:]}
    ctx.claim("The correctness-only tilt maximizes accuracy at a given KL budget, so every length reward costs accuracy "
              "(min over rewards of accuracy(correctness) − accuracy(reward) >= 0)",
              expected=">= 0", measured=min(acc_gap.values()), tolerance=None, holds=min(acc_gap.values()) >= -1e-10)
    costly = {m: acc_gap[m] for m in sorted(METHODS[1:], key=lambda m: -acc_gap[m]) if acc_gap[m] > 0.01}
    ctx.claim(f"The torch policy gradient (library ppo_clip + kl_reward, exact expectations) on the {tch['method']}-shaped reward "
              "reaches the exact KL-constrained tilt (TV)", expected=0.0, measured=tch["tv"], tolerance=1e-4)
    slack = min(pipes[p]["best_accuracy_at_this_kl"] - pipes[p]["accuracy"] for p in PIPELINES)
    ctx.claim("No trained pipeline beats the exact bound: at its own KL(p_θ‖p_ref), each is at most as accurate as the "
              "correctness-only tilt at that KL (min over pipelines of bound − accuracy >= 0)",
              expected=">= 0", measured=slack, tolerance=None, holds=slack >= -1e-9)
    shaped = ["GRPO-λ", "DLER", "DRPO"]
    shorter_p = [p for p in shaped if pipes[p]["length"] < pipes["GRPO"]["length"]]
    ctx.claim(f"After {batches} batches of {groups}×{gsize} samples, GRPO-λ, DLER and DRPO each end with a shorter expected "
              "response than correctness-only GRPO trained the same way (pipelines that do)",
              expected=shaped, measured=shorter_p, tolerance=None, holds=shorter_p == shaped)
    d_hinge = pipes["DRPO"]["mean_batch_kl_to_old"] - pipes["DRPO (β = 0)"]["mean_batch_kl_to_old"]
    ctx.claim("Finding: DRPO's KL hinge max(β(KL − δ), 0)·KL at the release's β = 1e3, δ = 1e-4 (k1 estimate) barely changes how "
              f"far a batch moves the policy under Adam ({REUSE} steps per batch): the exact KL(π_old‖π_θ) per batch, mean over "
              "batches, with the hinge minus with β = 0, is within 1e-3 nats (the per-batch KL itself is a few 1e-3)",
              expected="|Δ| < 1e-3", measured=d_hinge, tolerance=None, holds=abs(d_hinge) < 1e-3)
    dl = pipes["DLER"]
    ctx.claim("DLER's dynamic sampling drops groups whose rewards are all equal and resamples until the batch is full "
              "(fraction of sampled groups dropped, > 0 on this instance)",
              expected="> 0", measured=dl["dropped_groups"] / dl["sampled_groups"], tolerance=None, holds=dl["dropped_groups"] > 0)
    lam_gap = pipes["GRPO-λ"]["accuracy"] - pipes["Kimi (every group)"]["accuracy"]
    ctx.claim("Finding: with a single prompt the batch-wise top-λ rule ranks groups by sampling noise alone, so GRPO-λ keeps no "
              "more accuracy than Kimi's length reward on every group: |accuracy(GRPO-λ) − accuracy(Kimi)| < 0.01 "
              "(the paper's effect needs prompts of different difficulty)",
              expected="|Δ| < 0.01", measured=lam_gap, tolerance=None, holds=abs(lam_gap) < 0.01)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    ax = axes[0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, m in enumerate(METHODS):
        rows = sorted(fr[m][1:], key=lambda r: r["delta"])
        ax.plot([r["length"] for r in rows], [r["accuracy"] for r in rows], "-", color=colors[k % len(colors)], alpha=0.5)
        ax.plot(at[m]["length"], at[m]["accuracy"], "o", ms=9, color=colors[k % len(colors)], label=m)
    ax.plot(p_ref @ lens, p_ref @ cf, "k*", ms=12, label="reference")
    ax.set_xlabel("expected length (tokens)")
    ax.set_ylabel("accuracy E[1[correct]]")
    ax.set_title(f"Exact optima at KL = {delta0} (markers) and over KL budgets (lines)")
    ax.legend(fontsize=8)
    ax = axes[1]
    for k, p in enumerate(PIPELINES):
        ax.plot(pipes[p]["length"], pipes[p]["accuracy"], "s", ms=9, color=colors[k % len(colors)], label=f"{p} (KL {pipes[p]['kl_to_ref']:.2f})")
    ax.plot(p_ref @ lens, p_ref @ cf, "k*", ms=12, label="reference")
    ax.set_xlabel("expected length (tokens)")
    ax.set_ylabel("accuracy E[1[correct]]")
    ax.set_title(f"Library pipelines after {batches} sampled batches")
    ax.legend(fontsize=8)
    fig.suptitle(f"Length shaping on a token tree (V=3, L={L}, {tree.num_sequences} responses)")
    fig.tight_layout()
    table = [{"method": m, "accuracy": at[m]["accuracy"], "expected_length": at[m]["length"], "beta": at[m]["beta"],
              "accuracy_cost": 0.0 if m == "correctness" else acc_gap[m], "length_saved": base["length"] - at[m]["length"]} for m in METHODS]
    return ctx.report(PAPER, figure=fig, data={"delta": delta0, "table": table, "costing_over_1_point": costly, "frontier": fr, "reference": {
        "accuracy": float(p_ref @ cf), "length": float(p_ref @ lens)}, "torch_check": tch, "pipelines": pipes, "L": L,
        "settings": {"batches": batches, "groups": groups, "group_size": gsize, "reuse": REUSE, "grpo_lambda": GRPO_LAMBDA, "drpo": DRPO}})
