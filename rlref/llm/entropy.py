"""Entropy control for LLM RL: one module for the entropy-regularization family of seed papers.

Papers (titles from the seed list):

* Williams & Peng (1991); Mnih et al. (2016), "Asynchronous Methods for Deep RL" — the plain
  entropy bonus (:func:`entropy_bonus`).
* "Rethinking Entropy Regularization in Large Reasoning Models" (SIREN) —
  :func:`siren_selective_entropy`, :func:`siren_loss`.
* Xu et al. (2025), "EPO: Entropy-regularized Policy Optimization for LLM Agents RL" —
  :func:`epo_smoothing_penalty`, :func:`epo_phase_weight`.
* Wang et al. (2025), "Arbitrary Entropy Policy Optimization" (AEPO) — :func:`aepo_temperature`,
  :func:`aepo_loss`.
* Huang et al. (2025), "Low-probability Tokens Sustain Exploration in RL with Verifiable Reward"
  (Lp-Reg) — :func:`lp_reg_proxy`, :func:`lp_reg_loss`.
* Hou et al. (2025), "Advancing Language Model Reasoning through Reinforcement Learning and
  Inference Scaling" (T1) — :func:`t1_loss`.

Per-token entropies come from :func:`rlref.llm.logprobs.token_entropy`; KL terms from
:mod:`rlref.llm.divergences`; the reduction from :func:`rlref.llm.losses.aggregate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rlref.llm._checks import (
    check_choice,
    check_float_tensor,
    check_index_tensor,
    check_logits,
    check_mask,
    check_nonnegative_scalar,
    check_positive_scalar,
    check_probability,
    check_same_shape,
    is_meta,
    masked_or_ones,
    require_values,
)
from rlref.llm._ops import acc_dtype, zero_masked
from rlref.llm.divergences import categorical_entropy
from rlref.llm.losses import aggregate, kl_loss, ppo_token_losses

__all__ = [
    "entropy_bonus",
    "siren_selective_entropy",
    "siren_selective_mean",
    "siren_anchor",
    "siren_loss",
    "SIREN_AGGREGATIONS",
    "epo_smoothing_penalty",
    "epo_entropy_mask",
    "epo_phase_weight",
    "aepo_temperature",
    "aepo_loss",
    "lp_reg_proxy",
    "lp_reg_proxy_logprobs",
    "LpRegLoss",
    "lp_reg_loss",
    "t1_loss",
]


def entropy_bonus(
    entropy: torch.Tensor, mask: torch.Tensor | None = None, *, coef: float, aggregation: str = "token-mean",
    constant: float | None = None,
) -> torch.Tensor:
    """Entropy bonus as a loss: −coef · aggregate(H).  Minimizing it raises the entropy.

    Shapes: entropy[B, T] (e.g. ``token_entropy(logits)``), mask[B, T] -> scalar. coef > 0.

    References: Williams & Peng (1991), "Function optimization using connectionist RL algorithms";
    Mnih et al. (2016), "Asynchronous Methods for Deep RL", Sec. 4.
    """
    c = check_positive_scalar("coef", coef)
    return -c * aggregate(entropy, mask, aggregation=aggregation, constant=constant)


SIREN_AGGREGATIONS = ("seq-mean-token-mean", "token-mean")


def siren_selective_entropy(logits: torch.Tensor, mask: torch.Tensor | None = None, *, top_p: float = 0.8,
                            peak_quantile: float = 0.8) -> tuple[torch.Tensor, torch.Tensor]:
    """SIREN's two masks: the entropy of the top-p nucleus, at each response's peak-entropy positions.

    Top-p mask (per position): sort π descending with cumulative mass C_k = Σ_{j≤k} π_(j); the
    nucleus N keeps the tokens with C_k < p (the authors' release: the token at which the mass first
    reaches p is *not* kept, so a position whose top token alone has π ≥ p has an empty nucleus and
    H^p = 0). H^p = −Σ_{v∈N} q_v log q_v with q = π|_N / π(N) (the tail cannot be inflated).
    Peak-entropy mask (per response b): τ_b = the ``peak_quantile`` quantile (linear interpolation,
    ``torch.nanquantile``) of H^p over b's valid positions; selected = valid ∧ H^p > τ_b (strict).

    Shapes: logits[B, T, V], mask[B, T] -> (H^p[B, T], selected[B, T] bool). H^p is differentiable
    (its gradient flows through the renormalized nucleus probabilities); the masks are not.

    Deviation from the release, on purpose: the release's selection is ``H^p > τ_b`` without
    intersecting the response mask, so padding positions can be selected; here they never are.
    The release computes H^p with a 1e-12 smoothing (−Σ q log(q + 1e-12), q = π·1_N/(π(N) + 1e-12)),
    here it is exact in log space (differences ≤ 1e-11).

    References: "Rethinking Entropy Regularization in Large Reasoning Models" (SIREN, arXiv
    2509.25133), Sec. 4.1-4.2; release github.com/Linn3a/siren @ fa59a8d,
    verl/verl/workers/actor/dp_actor.py (``efficient_top_p_sampling``, ``mask_by_quantile``).
    """
    z = check_logits("logits", logits, ndim=3)
    tp = check_probability("top_p", top_p, open_left=True)
    q = check_probability("peak_quantile", peak_quantile)
    m = masked_or_ones("mask", mask, z.shape[:2], z.device)
    require_values("siren_selective_entropy (a per-response quantile)", z)
    logp = torch.log_softmax(z.to(acc_dtype(z.dtype)), dim=-1)
    p = logp.exp()
    sp, idx = torch.sort(p.detach(), dim=-1, descending=True)
    keep_sorted = torch.cumsum(sp, dim=-1) < tp
    keep = torch.zeros_like(keep_sorted).scatter(-1, idx, keep_sorted)
    neg_inf = torch.full_like(logp, -float("inf"))
    lse = torch.logsumexp(torch.where(keep, logp, neg_inf), dim=-1, keepdim=True)  # −inf on an empty nucleus
    nonempty = keep.any(dim=-1, keepdim=True)
    logq = torch.where(keep & nonempty, logp - torch.where(nonempty, lse, torch.zeros_like(lse)), neg_inf)
    h_p = categorical_entropy(logq)
    hv = torch.where(m, h_p.detach(), torch.full_like(h_p.detach(), float("nan")))
    thr = torch.nanquantile(hv, q, dim=-1, keepdim=True)  # NaN for a response without valid tokens
    selected = m & (h_p.detach() > thr)
    return h_p, selected


def siren_selective_mean(h_p: torch.Tensor, selected: torch.Tensor, *, aggregation: str = "seq-mean-token-mean") -> torch.Tensor:
    """SIREN's selective entropy H̄_sel: the mean of H^p over the selected positions.

    ``"seq-mean-token-mean"`` (the release's default ``entropy_agg_mode``): (1/B) Σ_b mean_{t∈S_b} H^p_bt,
    where a response with no selected position counts as 0 in the mean over all B responses (verl's
    ``agg_loss`` of the release); ``"token-mean"``: Σ_{S} H^p / |S| (0 if S is empty).

    Shapes: h_p[B, T], selected[B, T] -> scalar.

    References: SIREN release @ fa59a8d, verl/verl/trainer/ppo/core_algos.py (``agg_loss``).
    """
    agg = check_choice("aggregation", aggregation, SIREN_AGGREGATIONS)
    h = check_float_tensor("h_p", h_p, ndim=2)
    sel = check_mask("selected", selected, h.shape)
    x = zero_masked(h, sel)
    if agg == "token-mean":
        return x.sum() / sel.sum().clamp(min=1)
    per = sel.sum(dim=1)
    row = torch.where(per > 0, x.sum(dim=1) / per.clamp(min=1), torch.zeros_like(x[:, 0]))
    return row.mean()


def siren_anchor(logits: torch.Tensor, mask: torch.Tensor | None = None, *, top_p: float = 0.8, peak_quantile: float = 0.8,
                 aggregation: str = "seq-mean-token-mean") -> float:
    """SIREN's entropy anchor: the selective entropy H̄_sel of a batch, as a float (detached).

    The release sets the anchor once, from the first training step's batch, and keeps it fixed:
    call this on the first batch and pass the number to :func:`siren_loss` at every step.

    References: SIREN release @ fa59a8d, verl/verl/trainer/ppo/ray_trainer.py (``entropy_anchor`` at
    ``global_steps == 1``).
    """
    with torch.no_grad():
        h_p, sel = siren_selective_entropy(logits, mask, top_p=top_p, peak_quantile=peak_quantile)
        return float(siren_selective_mean(h_p, sel, aggregation=aggregation))


def siren_loss(logits: torch.Tensor, mask: torch.Tensor | None = None, *, coef: float, anchor: float, top_p: float = 0.8,
               peak_quantile: float = 0.8, aggregation: str = "seq-mean-token-mean") -> torch.Tensor:
    """SIREN's self-anchored selective entropy regularizer: coef · (H̄_sel − H_anchor)².

    H̄_sel is the selective entropy of the batch (top-p nucleus entropy at each response's
    peak-entropy positions: :func:`siren_selective_entropy`, :func:`siren_selective_mean`), and
    H_anchor a fixed number the caller holds — the release takes the first step's H̄_sel
    (:func:`siren_anchor`). The square pulls the selective entropy toward the anchor from *both*
    sides: its gradient 2·coef·(H̄_sel − H_anchor)·∇H̄_sel is an entropy bonus below the anchor and an
    entropy penalty above it. Added to the policy loss (the release: ``pg_loss + coef · loss``,
    coef = 0.005, top_p = 0.8, peak_quantile = 0.8).

    Shapes: logits[B, T, V], mask[B, T] -> scalar.

    References: SIREN (arXiv 2509.25133), Sec. 4.3 (self-anchored regularization); release
    github.com/Linn3a/siren @ fa59a8d, verl/verl/workers/actor/dp_actor.py
    (``entropy_change = entropy_loss − entropy_anchor``; ``entropy_change.pow(2)``) and
    exp_scripts/siren.sh (the defaults).
    """
    c = check_positive_scalar("coef", coef)
    try:
        a = float(anchor)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"anchor must be a number (e.g. siren_anchor of the first batch), got {anchor!r}") from exc
    if not math.isfinite(a) or a < 0:
        raise ValueError(f"anchor must be a finite entropy >= 0, got {anchor!r}")
    h_p, sel = siren_selective_entropy(logits, mask, top_p=top_p, peak_quantile=peak_quantile)
    hbar = siren_selective_mean(h_p, sel, aggregation=aggregation)
    return c * (hbar - a) ** 2


def epo_smoothing_penalty(entropy: torch.Tensor, mask: torch.Tensor | None, *, history_mean: float, low: float = 0.9,
                          high: float = 1.1) -> torch.Tensor:
    """An entropy-smoothing penalty in EPO's spirit: keep the batch entropy inside a band of its history.

    H̄ = token-mean entropy of the batch; band [low·H_hist, high·H_hist] around the historical mean
    H_hist; penalty = max(0, H̄ − high·H_hist)² + max(0, low·H_hist − H̄)² (0 inside the band), so
    the entropy cannot jump abruptly in either direction. The squared-hinge form is derived here and is
    *not* the authors' release: there the penalty is the constant mask of :func:`epo_entropy_mask`
    (0 inside the band, 0.1 outside), whose gradient is zero — it shifts the loss value only.

    Shapes: entropy[B, T], mask[B, T] -> scalar (add β_smooth · penalty to the loss).

    References: Xu et al. (2025), "EPO: Entropy-regularized Policy Optimization for LLM Agents RL"
    (arXiv 2509.22576), Sec. 3.2 (entropy smoothing regularizer).
    """
    h = check_nonnegative_scalar("history_mean", history_mean)
    lo = check_nonnegative_scalar("low", low)
    hi = check_nonnegative_scalar("high", high)
    if not lo <= 1.0 <= hi:
        raise ValueError(f"need low <= 1 <= high, got low={low!r}, high={high!r}")
    hbar = aggregate(entropy, mask, aggregation="token-mean")
    return torch.relu(hbar - hi * h) ** 2 + torch.relu(lo * h - hbar) ** 2


def epo_entropy_mask(entropy: torch.Tensor, history_mean: torch.Tensor, *, min_ratio: float = 0.8, max_ratio: float = 1.2,
                     out_range_penalty: float = 0.1, mode: str = "token") -> torch.Tensor:
    """EPO's entropy-smoothing mask, as released: 0 where the entropy lies strictly inside
    (min_ratio·H̄_step, max_ratio·H̄_step), ``out_range_penalty`` outside.

    H̄_step is the historical average entropy of the environment step (turn) each sample comes from
    (``history_mean[b]``). ``mode="token"`` compares each token's entropy, ``"seq"`` the response's mean
    entropy (broadcast to its tokens). The release subtracts entropy_smooth_coeff · aggregate(mask) from
    the entropy term, only for steps ≥ max_step // 2; the mask carries no gradient, so that term changes
    the loss value but not the update (a finding about the release, reported, not "fixed" here).

    Shapes: entropy[B, T], history_mean[B] -> [B, T] (detached).

    References: EPO release github.com/WujiangXu/EPO @ 5b6fa98, verl/workers/actor/dp_actor.py
    (``generate_entropy_penalty``; defaults 0.8/1.2/0.1, the example script uses 0.5/1.5).
    """
    h = check_float_tensor("entropy", entropy, ndim=2)
    hm = check_float_tensor("history_mean", history_mean, ndim=1)
    if hm.shape[0] != h.shape[0]:
        raise ValueError(f"history_mean must have shape [{h.shape[0]}] (one per sample), got {tuple(hm.shape)}")
    lo_r = check_nonnegative_scalar("min_ratio", min_ratio)
    hi_r = check_nonnegative_scalar("max_ratio", max_ratio)
    pen = check_nonnegative_scalar("out_range_penalty", out_range_penalty)
    md = check_choice("mode", mode, ("token", "seq"))
    with torch.no_grad():
        x = h if md == "token" else h.mean(dim=1, keepdim=True).expand_as(h)
        ref = hm.to(h.dtype).unsqueeze(1)
        inside = (x > ref * lo_r) & (x < ref * hi_r)
        return torch.where(inside, torch.zeros_like(h), torch.full_like(h, pen))


def epo_phase_weight(step: int, total_steps: int) -> float:
    """EPO's adaptive phase weight, as released: a slow exponential decay from 1 to 0.8 over the first
    half of training, then a fast one from 0.8 toward 0.
    p = step/(K/2) ≤ 1:  w = 1 − 0.2·(1 − e^{−2p});   afterwards, p = (step − K/2)/(K − K/2):  w = 0.8·e^{−3p}.
    (K/2 is the integer half, as released; the release applies w to the smoothing mask with K = 150.)

    References: EPO (arXiv 2509.22576), Sec. 3.3 (adaptive phase-based weighting); release
    github.com/WujiangXu/EPO @ 5b6fa98, verl/workers/actor/dp_actor.py (``_calculate_epoch_based_entropy_weight``).
    """
    if total_steps < 1 or not 0 <= step <= total_steps:
        raise ValueError(f"need 0 <= step <= total_steps and total_steps >= 1, got step={step}, total_steps={total_steps}")
    half = total_steps // 2
    if step <= half:
        return 1.0 if half == 0 else 1.0 - 0.2 * (1.0 - math.exp(-2.0 * step / half))
    rest = total_steps - half
    return 0.8 * math.exp(-3.0 * (step - half) / rest)


def aepo_temperature(entropy: float, target: float, *, t_high: float = 1.2, t_low: float = 0.8) -> float:
    """AEPO's temperature switch: sample the regularization batch at T_high when the policy entropy
    is at or below the target (pull entropy up), at T_low when above (pull it down).

    References: Wang et al. (2025), "Arbitrary Entropy Policy Optimization" (arXiv 2510.08141), Sec. 4
    (temperature regulation); release github.com/597358816/AEPO @ b353a05, verl/trainer/ray_trainer.py
    (``entropy <= entropy_base`` -> ``temperature_high`` = 1.2, else ``temperature_low`` = 0.8).
    """
    th = check_positive_scalar("t_high", t_high)
    tl = check_positive_scalar("t_low", t_low)
    if not tl <= 1.0 <= th:
        raise ValueError(f"need t_low <= 1 <= t_high, got t_low={t_low!r}, t_high={t_high!r}")
    return th if float(entropy) <= float(target) else tl


def aepo_loss(logp_temp_samples: torch.Tensor, mask: torch.Tensor | None = None, *, coef: float,
              aggregation: str = "token-mean") -> torch.Tensor:
    """AEPO's REINFORCE regularizer on temperature-adjusted samples.

    Tokens y are sampled from π_T ∝ π^{1/T} (the current policy at temperature T); the loss
    −coef · aggregate(log π_θ(y)) is REINFORCE with reward 1 on those samples, whose expected
    gradient is coef · ∇ CE(π_T, π_θ) = coef · ∇ KL(π_T ‖ π_θ) (π_T held fixed): it moves π_θ
    toward the hotter (T > 1) or colder (T < 1) distribution without an explicit entropy term.

    Shapes: logp_temp_samples[B, T] (log π_θ of the temperature-T samples), mask[B, T] -> scalar.

    How the release uses it (597358816/AEPO @ b353a05, ``ray_trainer.py``): responses are sampled at the
    switched temperature for a quarter of the prompts, only those with advantage > 0.05 are kept
    (``_select_by_advantage``: the one-sided "REINFORCE as regularization"), their advantage is set to 1,
    and up to ``reinforce_sample_num`` of them (half as many when the entropy is above the target)
    replace rows of the ordinary PPO batch — so the weight is the share of such rows rather than a
    separate coefficient. Pass those selected samples here.

    References: Wang et al. (2025), "Arbitrary Entropy Policy Optimization" (arXiv 2510.08141), Sec. 4,
    eq. (8); release github.com/597358816/AEPO @ b353a05.
    """
    c = check_positive_scalar("coef", coef)
    return -c * aggregate(logp_temp_samples, mask, aggregation=aggregation)


def lp_reg_proxy(logits: torch.Tensor, *, kappa: float | None = 0.02, tau: float | None = None) -> torch.Tensor:
    """Lp-Reg's proxy distribution: drop presumed-noise tokens, renormalize the rest.

    Threshold δ = κ · max_v π(v) (min-p, when ``kappa``; the release's ``regular_type="minp"``) or a
    fixed τ (when ``tau``; ``"fixed"``); the proxy keeps π(v) ≥ δ (the release's ``>=``):
    π_proxy(v) = π(v) 1[π(v) ≥ δ] / Σ_u π(u) 1[π(u) ≥ δ]. Returned as log-probabilities, −inf on
    the filtered tokens (the release writes a logit of −1e4, i.e. probability ≈ 0), detached.
    With a fixed τ above every probability the arg-max is kept (the release would give a uniform
    proxy over −1e4 logits there).

    Shapes: logits[..., V] -> [..., V].

    References: Huang et al. (2025), "Low-probability Tokens Sustain Exploration in RL with
    Verifiable Reward" (Lp-Reg, arXiv 2510.03222), Sec. 4 (the proxy); release
    github.com/CarlanLark/Lp-Reg-dev @ 33b27e2, verl/workers/actor/dp_actor.py (``apply_min_p``).
    """
    z = check_logits("logits", logits)
    if (kappa is None) == (tau is None):
        raise ValueError("give exactly one of kappa (relative threshold) or tau (absolute threshold)")
    logp = torch.log_softmax(z.detach().to(acc_dtype(z.dtype)), dim=-1)
    p = logp.exp()
    pmax = p.amax(dim=-1, keepdim=True)
    if kappa is not None:
        thr = check_probability("kappa", kappa, open_right=True) * pmax
    else:
        thr = torch.full_like(p[..., :1], check_probability("tau", tau, open_right=True))
    keep = (p >= thr) | (p == pmax)
    filt = torch.where(keep, logp, torch.full_like(logp, -float("inf")))
    return filt - torch.logsumexp(filt, dim=-1, keepdim=True)


def lp_reg_proxy_logprobs(logits: torch.Tensor, tokens: torch.Tensor, *, kappa: float | None = 0.02,
                          tau: float | None = None) -> torch.Tensor:
    """log π_proxy(y_t) of the sampled tokens (−inf for a filtered token), from the logits that define
    the proxy — the release uses the rollout (old) policy's logits (``minp_old_log_prob=True``).

    Shapes: logits[B, T, V], tokens[B, T] -> [B, T] (detached).

    References: Lp-Reg release @ 33b27e2 (``compute_minp_log_prob``, ``minp_old_log_probs``).
    """
    lq = lp_reg_proxy(logits, kappa=kappa, tau=tau)
    if not isinstance(tokens, torch.Tensor) or tuple(tokens.shape) != tuple(lq.shape[:-1]):
        got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"tokens must have shape {tuple(lq.shape[:-1])} (logits without the vocab axis), got {got}")
    check_index_tensor("tokens", tokens, lq.shape[-1])
    return torch.gather(lq, -1, tokens.long().unsqueeze(-1)).squeeze(-1)


@dataclass(frozen=True)
class LpRegLoss:
    """Result of :func:`lp_reg_loss`: the differentiable ``loss``, the bool mask ``regularized[B, T]``
    of the tokens that got the proxy penalty (and no clipping), and the PPO diagnostics of the rest."""

    loss: torch.Tensor
    regularized: torch.Tensor
    clip_fraction: torch.Tensor
    approx_kl: torch.Tensor


def _lowest_fraction(logp: torch.Tensor, cand: torch.Tensor, fraction: float) -> torch.Tensor:
    """The release's selection: among the candidates, the k = max(1, ⌊n·fraction⌋) lowest log-probs,
    applied only when k > 1 (a quirk of the release: a single candidate is never regularized)."""
    out = torch.zeros_like(cand)
    n = int(cand.sum())
    k = max(1, int(n * fraction))
    if k <= 1:
        return out
    flat = torch.where(cand, logp, torch.full_like(logp, float("inf"))).reshape(-1)
    idx = torch.topk(flat, k, largest=False).indices
    return out.reshape(-1).scatter(0, idx, True).reshape(cand.shape)


def lp_reg_loss(logp: torch.Tensor, old_logp: torch.Tensor, proxy_logp: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor | None = None, *, coef: float = 1.0, neg_fraction: float = 0.01, pos_fraction: float = 0.0,
                eps_low: float = 0.2, eps_high: float = 0.2, aggregation: str = "token-mean") -> LpRegLoss:
    """Lp-Reg's policy loss: PPO, with a per-token pull toward the proxy on the lowest-probability
    negative tokens, which are exempt from clipping.

    Selection (the authors' release): among the valid tokens with A < 0, the k = max(1, ⌊n_neg ·
    neg_fraction⌋) tokens of lowest log π_θ(y_t) (applied only if k > 1), and of those only the ones
    with π_θ(y_t) < π_proxy(y_t); likewise for A > 0 with ``pos_fraction`` (0 by default: off).
    On a selected token the loss is −A·ρ_t + coef · k3(log π_θ(y_t), log π_proxy(y_t)) — the ratio
    unclipped — with verl's ``low_var_kl``: k3 = e^{d} − d − 1, d = clamp(log π_proxy − log π_θ, ±20),
    clamped to [−10, 10]. Every other token keeps the clipped PPO loss (:func:`ppo_token_losses`).
    Release defaults: min-p κ = 0.02, neg_fraction = 0.01, coef = 1, ε_low = 1, ε_high = 9 (their
    Qwen3-14B script); the library keeps PPO's 0.2/0.2 as defaults.

    Shapes: logp[B, T] (π_θ of the sampled tokens), old_logp[B, T], proxy_logp[B, T] (from
    :func:`lp_reg_proxy_logprobs`, −inf on filtered tokens), advantages[B, T] or [B], mask[B, T]
    -> :class:`LpRegLoss`. Needs real tensors (the selection is data dependent).

    References: Lp-Reg (Huang et al. 2025, arXiv 2510.03222), Sec. 4; release
    github.com/CarlanLark/Lp-Reg-dev @ 33b27e2, verl/trainer/ppo/core_algos.py
    (``compute_policy_loss_lp_reg``) and recipe/lp_reg/Qwen3_14b_lp_reg_onpolicy_64gpu.sh (defaults).
    """
    c = check_nonnegative_scalar("coef", coef)
    nf = check_probability("neg_fraction", neg_fraction)
    pf = check_probability("pos_fraction", pos_fraction)
    t = ppo_token_losses(logp, old_logp, advantages, mask, eps_low=eps_low, eps_high=eps_high)
    lp = logp
    pq = check_float_tensor("proxy_logp", proxy_logp, ndim=2)
    check_same_shape(("logp", "proxy_logp"), (lp, pq))
    if not is_meta(pq) and bool((t.mask & torch.isnan(pq)).any()):
        raise ValueError("proxy_logp must not hold NaN at valid positions (−inf marks a filtered token)")
    require_values("lp_reg_loss (a lowest-probability selection)", lp)
    lp_d = lp.detach().to(t.ratio.dtype)
    pq_d = pq.detach().to(t.ratio.dtype)
    sel = (_lowest_fraction(lp_d, t.mask & (t.advantages < 0), nf) | _lowest_fraction(lp_d, t.mask & (t.advantages > 0), pf))
    sel = sel & (lp_d < pq_d)
    lpa = lp.to(t.ratio.dtype)
    d = torch.clamp(torch.where(sel, pq_d, lpa.detach()) - lpa, -20.0, 20.0)
    k3 = torch.clamp(torch.expm1(d) - d, -10.0, 10.0)
    ratio_u = torch.exp(torch.where(sel, lpa - old_logp.detach().to(lpa.dtype), torch.zeros_like(lpa)))
    reg = -t.advantages * ratio_u + c * k3
    per_tok = torch.where(sel, reg, t.per_token)
    loss = aggregate(per_tok, t.mask, aggregation=aggregation)
    with torch.no_grad():
        rest = t.mask & ~sel
        n = t.mask.sum().clamp(min=1).to(t.ratio.dtype)
        clip = ((t.low_clipped | t.high_clipped) & rest).sum() / n
        approx_kl = zero_masked(torch.expm1(t.log_ratio) - t.log_ratio, t.mask).sum() / n
    return LpRegLoss(loss=loss, regularized=sel, clip_fraction=clip, approx_kl=approx_kl)


def t1_loss(logp: torch.Tensor, anchor_logp: torch.Tensor, entropy: torch.Tensor, mask: torch.Tensor | None = None, *,
            beta: float, entropy_coef: float, aggregation: str = "token-mean") -> torch.Tensor:
    """T1's regularizer: KL to a dynamic anchor plus an entropy bonus.

    β · aggregate(k3(logp, anchor_logp)) − α · aggregate(H), where the anchor policy is a snapshot of
    the policy that is refreshed every N steps (the caller swaps ``anchor_logp``'s model), so the KL
    restrains each phase's drift rather than the drift from the initial SFT model.

    Shapes: logp[B, T], anchor_logp[B, T], entropy[B, T], mask[B, T] -> scalar.

    References: Hou et al. (2025), "Advancing Language Model Reasoning through Reinforcement
    Learning and Inference Scaling" (T1, arXiv 2501.11651), Sec. 3.2 (entropy bonus, dynamic anchor).
    The k3 estimator and the loss-form sum are derived here: the authors' repository (THUDM/T1) holds
    no RL training code to check them against.
    """
    kl = kl_loss(logp, anchor_logp, mask, beta=beta, estimator="k3", aggregation=aggregation)
    return kl + entropy_bonus(entropy, mask, coef=entropy_coef, aggregation=aggregation)

