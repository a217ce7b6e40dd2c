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

import torch

from rlref.llm._checks import (
    check_float_tensor,
    check_nonnegative_scalar,
    check_positive_scalar,
    check_probability,
    masked_or_ones,
)
from rlref.llm.losses import aggregate, kl_loss

__all__ = [
    "entropy_bonus",
    "siren_selective_entropy",
    "siren_loss",
    "epo_smoothing_penalty",
    "epo_phase_weight",
    "aepo_temperature",
    "aepo_loss",
    "lp_reg_proxy",
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


def siren_selective_entropy(logits: torch.Tensor, mask: torch.Tensor | None = None, *, top_p: float = 0.9,
                            peak_quantile: float = 0.8) -> tuple[torch.Tensor, torch.Tensor]:
    """SIREN's two masks: entropy over the top-p nucleus, at peak-entropy positions only.

    Top-p mask: at each position keep the smallest set of tokens whose probability mass reaches
    ``top_p`` and compute the entropy of the renormalized nucleus, H^p = −Σ_{v∈N} q_v log q_v,
    q = π|_N / π(N) (the tail cannot be inflated). Peak-entropy mask: keep only positions whose
    (full) entropy is at or above the ``peak_quantile`` quantile of the valid positions.

    Shapes: logits[B, T, V], mask[B, T] -> (H^p[B, T], selected[B, T] bool).

    References: "Rethinking Entropy Regularization in Large Reasoning Models" (SIREN, 2025),
    Sec. 4.1-4.2.
    """
    z = check_float_tensor("logits", logits, ndim=3)
    tp = check_probability("top_p", top_p, open_left=True)
    q = check_probability("peak_quantile", peak_quantile)
    m = masked_or_ones("mask", mask, z.shape[:2], z.device)
    logp = torch.log_softmax(z.to(torch.float64 if z.dtype == torch.float64 else torch.float32), dim=-1)
    p = logp.exp()
    sp, idx = torch.sort(p, dim=-1, descending=True)
    before = torch.cumsum(sp, dim=-1) - sp
    keep_sorted = before < tp
    keep = torch.zeros_like(keep_sorted).scatter(-1, idx, keep_sorted)
    lse = torch.logsumexp(torch.where(keep, logp, torch.full_like(logp, -float("inf"))), dim=-1, keepdim=True)
    logq = torch.where(keep, logp - lse, torch.zeros_like(logp))  # finite everywhere: no NaN gradients
    qn = torch.where(keep, logq.exp(), torch.zeros_like(logq))
    h_p = -(qn * logq).sum(-1)
    full = -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1)
    if not bool(m.any()):
        raise ValueError("mask selects no token")
    thr = torch.quantile(full.detach()[m], q)
    selected = m & (full.detach() >= thr)
    return h_p, selected


def siren_loss(logits: torch.Tensor, mask: torch.Tensor | None = None, *, coef: float, top_p: float = 0.9,
               peak_quantile: float = 0.8) -> torch.Tensor:
    """SIREN's self-anchored selective entropy regularizer.

    H̄ = mean of H^p over the selected positions (``siren_selective_entropy``); the loss is
    coef · (H̄ − sg(H̄) − 1)² / 2, whose value is coef/2 and whose gradient is −coef·∇H̄ — an entropy
    bonus whose *scale* is anchored to the current policy (the stop-gradient anchor), so the
    regularization strength does not grow with the raw entropy. This reading of "self-anchored" is
    derived here; its gradient equals the entropy bonus −coef·∇H̄ on the selected set.

    Shapes: logits[B, T, V], mask[B, T] -> scalar.

    References: SIREN (2025), Sec. 4.3 (self-anchored regularization).
    """
    c = check_positive_scalar("coef", coef)
    h_p, sel = siren_selective_entropy(logits, mask, top_p=top_p, peak_quantile=peak_quantile)
    hbar = h_p[sel].mean()
    return 0.5 * c * (hbar - hbar.detach() - 1.0) ** 2


def epo_smoothing_penalty(entropy: torch.Tensor, mask: torch.Tensor | None, *, history_mean: float, low: float = 0.9,
                          high: float = 1.1) -> torch.Tensor:
    """EPO's entropy-smoothing regularizer: keep the batch entropy inside a band of its history.

    H̄ = token-mean entropy of the batch; band [low·H_hist, high·H_hist] around the historical mean
    H_hist; penalty = max(0, H̄ − high·H_hist)² + max(0, low·H_hist − H̄)² (0 inside the band), so
    the entropy cannot jump abruptly in either direction. The squared-hinge form is derived here.

    Shapes: entropy[B, T], mask[B, T] -> scalar (add β_smooth · penalty to the loss).

    References: Xu et al. (2025), "EPO: Entropy-regularized Policy Optimization for LLM Agents RL",
    Sec. 3.2 (entropy smoothing regularizer).
    """
    h = check_nonnegative_scalar("history_mean", history_mean)
    lo = check_nonnegative_scalar("low", low)
    hi = check_nonnegative_scalar("high", high)
    if not lo <= 1.0 <= hi:
        raise ValueError(f"need low <= 1 <= high, got low={low!r}, high={high!r}")
    hbar = aggregate(entropy, mask, aggregation="token-mean")
    return torch.relu(hbar - hi * h) ** 2 + torch.relu(lo * h - hbar) ** 2


def epo_phase_weight(step: int, total_steps: int, *, beta_early: float = 1.0, beta_late: float = 0.1,
                     switch_fraction: float = 0.5) -> float:
    """EPO's adaptive phase weighting of the entropy term.

    β(k) = β_early for k < switch·K (exploration phase), then decays linearly to β_late at k = K
    (exploitation phase). The linear decay is derived here.

    References: EPO (2025), Sec. 3.3 (adaptive phase-based weighting).
    """
    if total_steps < 1 or not 0 <= step <= total_steps:
        raise ValueError(f"need 0 <= step <= total_steps and total_steps >= 1, got step={step}, total_steps={total_steps}")
    be = check_nonnegative_scalar("beta_early", beta_early)
    bl = check_nonnegative_scalar("beta_late", beta_late)
    s = check_probability("switch_fraction", switch_fraction)
    k0 = s * total_steps
    if step <= k0 or total_steps == k0:
        return be
    frac = (step - k0) / (total_steps - k0)
    return be + frac * (bl - be)


def aepo_temperature(entropy: float, target: float, *, t_high: float = 1.2, t_low: float = 0.8) -> float:
    """AEPO's temperature switch: sample the regularization batch at T > 1 when the policy entropy
    is below the target (pull entropy up), at T < 1 when above (pull it down).

    References: Wang et al. (2025), "Arbitrary Entropy Policy Optimization", Sec. 4 (temperature
    regulation).
    """
    th = check_positive_scalar("t_high", t_high)
    tl = check_positive_scalar("t_low", t_low)
    if not tl <= 1.0 <= th:
        raise ValueError(f"need t_low <= 1 <= t_high, got t_low={t_low!r}, t_high={t_high!r}")
    return th if float(entropy) < float(target) else tl


def aepo_loss(logp_temp_samples: torch.Tensor, mask: torch.Tensor | None = None, *, coef: float,
              aggregation: str = "token-mean") -> torch.Tensor:
    """AEPO's REINFORCE regularizer on temperature-adjusted samples.

    Tokens y are sampled from π_T ∝ π^{1/T} (the current policy at temperature T); the loss
    −coef · aggregate(log π_θ(y)) is REINFORCE with reward 1 on those samples, whose expected
    gradient is coef · ∇ CE(π_T, π_θ) = coef · ∇ KL(π_T ‖ π_θ) (π_T held fixed): it moves π_θ
    toward the hotter (T > 1) or colder (T < 1) distribution without an explicit entropy term.

    Shapes: logp_temp_samples[B, T] (log π_θ of the temperature-T samples), mask[B, T] -> scalar.

    References: Wang et al. (2025), "Arbitrary Entropy Policy Optimization", Sec. 4, eq. (8).
    """
    c = check_positive_scalar("coef", coef)
    return -c * aggregate(logp_temp_samples, mask, aggregation=aggregation)


def lp_reg_proxy(logits: torch.Tensor, *, kappa: float | None = 0.02, tau: float | None = None) -> torch.Tensor:
    """Lp-Reg's proxy distribution: drop presumed-noise tokens, renormalize the rest.

    Threshold δ = κ · max_v π(v) (min-p style, when ``kappa``) or a fixed τ (when ``tau``); the proxy is
    π_proxy(v) = π(v) 1[π(v) > δ] / Σ_u π(u) 1[π(u) > δ]  (the arg-max always survives).
    Returned as log-probabilities (−inf on filtered tokens), detached.

    Shapes: logits[..., V] -> [..., V].

    References: Huang et al. (2025), "Low-probability Tokens Sustain Exploration in RL with
    Verifiable Reward" (Lp-Reg), Sec. 4.1, eq. (5).
    """
    z = check_float_tensor("logits", logits)
    if (kappa is None) == (tau is None):
        raise ValueError("give exactly one of kappa (relative threshold) or tau (absolute threshold)")
    logp = torch.log_softmax(z.detach().to(torch.float64 if z.dtype == torch.float64 else torch.float32), dim=-1)
    p = logp.exp()
    if kappa is not None:
        k = check_probability("kappa", kappa, open_right=True)
        thr = k * p.amax(dim=-1, keepdim=True)
    else:
        thr = torch.full_like(p[..., :1], check_probability("tau", tau, open_right=True))
    keep = (p > thr) | (p == p.amax(dim=-1, keepdim=True))
    filt = torch.where(keep, logp, torch.full_like(logp, -float("inf")))
    return filt - torch.logsumexp(filt, dim=-1, keepdim=True)


def lp_reg_loss(logits: torch.Tensor, mask: torch.Tensor | None = None, *, beta: float, kappa: float | None = 0.02,
                tau: float | None = None, aggregation: str = "token-mean") -> torch.Tensor:
    """Lp-Reg: β · aggregate( KL(π_proxy ‖ π_θ) ) at the selected positions.

    KL(π_proxy ‖ π_θ) = Σ_v π_proxy(v) (log π_proxy(v) − log π_θ(v)) with the proxy detached
    (forward KL to the filtered, renormalized distribution): it shields the low-probability but
    above-threshold tokens ("reasoning sparks") from being driven to 0. Pass a ``mask`` that selects
    the positions to regularize (Lp-Reg applies it to low-probability sampled tokens).

    Shapes: logits[B, T, V], mask[B, T] -> scalar.

    References: Lp-Reg (Huang et al. 2025), Sec. 4.2, eq. (6).
    """
    b = check_positive_scalar("beta", beta)
    z = check_float_tensor("logits", logits, ndim=3)
    lq = lp_reg_proxy(z, kappa=kappa, tau=tau)
    lp = torch.log_softmax(z.to(lq.dtype), dim=-1)
    q = lq.exp()
    kl = torch.where(q > 0, q * (lq - lp), torch.zeros_like(q)).sum(-1)
    return b * aggregate(kl, mask, aggregation=aggregation)


def t1_loss(logp: torch.Tensor, anchor_logp: torch.Tensor, entropy: torch.Tensor, mask: torch.Tensor | None = None, *,
            beta: float, entropy_coef: float, aggregation: str = "token-mean") -> torch.Tensor:
    """T1's regularizer: KL to a dynamic anchor plus an entropy bonus.

    β · aggregate(k3(logp, anchor_logp)) − α · aggregate(H), where the anchor policy is a snapshot of
    the policy that is refreshed every N steps (the caller swaps ``anchor_logp``'s model), so the KL
    restrains each phase's drift rather than the drift from the initial SFT model.

    Shapes: logp[B, T], anchor_logp[B, T], entropy[B, T], mask[B, T] -> scalar.

    References: Hou et al. (2025), "Advancing Language Model Reasoning through Reinforcement
    Learning and Inference Scaling" (T1), Sec. 3.2 (entropy bonus, dynamic anchor).
    """
    kl = kl_loss(logp, anchor_logp, mask, beta=beta, estimator="k3", aggregation=aggregation)
    return kl + entropy_bonus(entropy, mask, coef=entropy_coef, aggregation=aggregation)

