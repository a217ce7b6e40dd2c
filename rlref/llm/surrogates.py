"""PPO-surrogate variants of the seed papers and their peers: the per-token loss of one paper each,
aggregated like :func:`rlref.llm.losses.ppo_clip` (every aggregation mode, ``"none"`` included).

* GSPO's sequence-level importance ratio (:func:`sequence_log_ratio`, :func:`gspo_clip`);
* CISPO's clipped, stop-gradient importance weight (:func:`cispo_loss`);
* SAPO's soft, temperature-controlled gate (:func:`sapo_loss`);
* VESPO's gamma weight of the sequence ratio (:func:`vespo_weights`, :func:`vespo_loss`).

Papers: Zheng et al. (2025) GSPO (arXiv 2507.18071); MiniMax (2025) MiniMax-M1 / CISPO (arXiv 2506.13585);
Gao et al. (2025) SAPO (arXiv 2511.20347); VESPO (arXiv 2602.10693). Each is cross-checked against TRL
1.16's ``GRPOTrainer`` loss and verl's policy losses (tests/test_llm_adapters.py).
"""

from __future__ import annotations

import math

import torch

from rlref.llm._checks import (
    check_finite_tensor,
    check_float_tensor,
    check_nonnegative_scalar,
    check_positive_scalar,
    check_probability,
    check_same_shape,
    masked_or_ones,
)
from rlref.llm._ops import acc_dtype, zero_masked
from rlref.llm.losses import PolicyLoss, _policy_loss, _token_triplet, aggregate, ppo_token_losses

__all__ = ["sequence_log_ratio", "gspo_clip", "cispo_loss", "sapo_loss", "vespo_weights", "vespo_loss"]


def sequence_log_ratio(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """GSPO's length-normalized sequence log-ratio log s_i = (1/|o_i|) Σ_t m (log π_θ − log π_old).

    s_i = (π_θ(o_i)/π_old(o_i))^{1/|o_i|}; differentiable in ``logp`` (``old_logp`` is detached); a row
    with no valid token gets 0 (as TRL's ``clamp(min=1)``). Computed in fp32 for half inputs.

    Shapes: logp[B, T], old_logp[B, T], mask[B, T] -> [B].

    References: Zheng et al. (2025), "Group Sequence Policy Optimization" (arXiv 2507.18071), Sec. 4.1
    (the sequence-level importance ratio s_i(θ)).
    """
    lp = check_float_tensor("logp", logp, ndim=2)
    old = check_float_tensor("old_logp", old_logp, ndim=2)
    check_same_shape(("logp", "old_logp"), (lp, old))
    m = masked_or_ones("mask", mask, lp.shape, lp.device)
    acc = acc_dtype(lp.dtype)
    d = zero_masked(lp.to(acc) - old.detach().to(acc), m)
    check_finite_tensor("logp - old_logp", d.detach())
    return d.sum(dim=1) / m.sum(dim=1).clamp(min=1).to(acc)


def gspo_clip(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    eps_low: float = 3e-4,
    eps_high: float = 4e-4,
    dual_clip: float | None = None,
    aggregation: str = "seq-mean-token-mean",
    constant: float | None = None,
) -> PolicyLoss:
    """GSPO: the PPO clip applied to the sequence ratio s_i = exp(:func:`sequence_log_ratio`).

    ℓ_i = −min(s_i A_i, clip(s_i, 1 − ε_low, 1 + ε_high) A_i), the same for every token of response i,
    so the default ``seq-mean-token-mean`` gives the paper's J = (1/G) Σ_i min(...). The gradient of
    s_i is s_i · (1/|o_i|) Σ_t ∇ log π_θ(o_it): every token of a response shares one clip decision.
    Defaults are the paper's ε (3e-4, 4e-4). ``approx_kl`` of the result is the k3 estimate on the
    sequence log-ratio. TRL's ``importance_sampling_level="sequence"`` and verl's ``gspo`` (the
    "GSPO-token" form sg[s_i]·π/sg[π], equal in value and gradient when A is constant per response)
    compute this loss. ``dual_clip`` as in :func:`ppo_clip`, on the sequence ratio.

    Shapes: logp[B, T], old_logp[B, T], advantages[B] (or [B, T]), mask[B, T] -> :class:`PolicyLoss`.

    References: Zheng et al. (2025), "Group Sequence Policy Optimization" (arXiv 2507.18071), Sec. 4.1
    (the GSPO objective and its gradient), Sec. 4.2 (GSPO-token).
    """
    lp, old, a, m = _token_triplet(logp, old_logp, advantages, mask)
    seq = sequence_log_ratio(lp, old, m).unsqueeze(1).expand(lp.shape)
    t = ppo_token_losses(seq, torch.zeros_like(seq.detach()), a, m, eps_low=eps_low, eps_high=eps_high, dual_clip=dual_clip)
    return _policy_loss(aggregate(t.per_token, t.mask, aggregation=aggregation, constant=constant), t)


def _ratio_inputs(logp: object, old_logp: object, advantages: object, mask: object | None):
    lp, old, a, m = _token_triplet(logp, old_logp, advantages, mask)
    acc = acc_dtype(lp.dtype)
    zero = torch.zeros(lp.shape, dtype=acc, device=lp.device)
    log_ratio = torch.where(m, lp.to(acc) - old.detach().to(acc), zero)
    adv = torch.where(m, a.detach().to(acc), zero)
    return torch.where(m, lp.to(acc), zero), log_ratio, adv, m


def cispo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    eps_low: float = 1.0,
    eps_high: float = 4.0,
    aggregation: str = "token-mean",
    constant: float | None = None,
) -> torch.Tensor:
    """CISPO: clip the importance-sampling weight, not the update, and stop its gradient.

    ℓ_t = −sg(clip(ρ_t, 1 − ε_low, 1 + ε_high)) · A_t · log π_θ(o_t),  ρ_t = π_θ/π_old,
    so every token keeps a REINFORCE gradient −ŵ_t A_t ∇ log π_θ(o_t) (none is dropped, unlike the PPO
    clip). Default ε_low = 1 (no lower bound, as MiniMax-M1) and 1 + ε_high = 5 (ScaleRL's ε_max = 5, the
    value TRL recommends). TRL's ``cispo`` clamps ρ at ``epsilon_high`` only: ``eps_low=1,
    eps_high=epsilon_high − 1`` here; verl's ``cispo`` clamps to [1 − clip_ratio_low, 1 + clip_ratio_high].
    The loss *value* is not a surrogate ratio (it is −ŵ A log π); only its gradient is meaningful.

    Shapes: logp[B, T], old_logp[B, T], advantages[B] or [B, T], mask[B, T] -> scalar (or [B, T] with
    ``aggregation="none"``).

    References: MiniMax (2025), "MiniMax-M1: Scaling Test-Time Compute Efficiently with Lightning
    Attention" (arXiv 2506.13585), Sec. 3.1 (CISPO); "The Art of Scaling Reinforcement Learning Compute
    for LLMs" (ScaleRL, arXiv 2510.13786) (ε_max = 5, as cited by TRL's ``GRPOConfig.epsilon_high``).
    """
    el = check_probability("eps_low", eps_low)
    eh = check_nonnegative_scalar("eps_high", eps_high)
    lp, log_ratio, adv, m = _ratio_inputs(logp, old_logp, advantages, mask)
    lr = log_ratio.detach()
    w = torch.clamp(torch.exp(torch.minimum(lr, torch.full_like(lr, math.log1p(eh) + 1.0))), 1.0 - el, 1.0 + eh)
    return aggregate(-(w * adv) * lp, m, aggregation=aggregation, constant=constant)


def sapo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    tau_pos: float = 1.0,
    tau_neg: float = 1.05,
    aggregation: str = "seq-mean-token-mean",
    constant: float | None = None,
) -> torch.Tensor:
    """SAPO: a soft, temperature-controlled gate in place of the hard clip.

    ℓ_t = −f_τ(ρ_t) A_t,  f_τ(ρ) = σ(τ(ρ − 1)) · 4/τ,  τ = τ_pos if A_t > 0 else τ_neg;
    f_τ(1) = 2/τ and f_τ'(1) = 1, so at ρ = 1 the gradient is PPO's; off-policy tokens (ρ far from 1)
    are attenuated smoothly (f_τ' = 4σ(1 − σ) -> 0) instead of cut off. Defaults are TRL's (1.0, 1.05).
    The exponent is capped at log(1 + 80/τ), where σ = 1 to fp64 precision (the gradient there is < 1e-30).

    Shapes: logp[B, T], old_logp[B, T], advantages[B] or [B, T], mask[B, T] -> scalar (or [B, T]).

    References: Gao et al. (2025), "Soft Adaptive Policy Optimization" (arXiv 2511.20347), Sec. 3
    (the gate f_{i,t} and its temperatures).
    """
    tp = check_positive_scalar("tau_pos", tau_pos)
    tn = check_positive_scalar("tau_neg", tau_neg)
    _, log_ratio, adv, m = _ratio_inputs(logp, old_logp, advantages, mask)
    tau = torch.where(adv > 0, torch.full_like(adv, tp), torch.full_like(adv, tn))
    ratio = torch.exp(torch.minimum(log_ratio, torch.log1p(80.0 / tau)))
    gate = torch.sigmoid(tau * (ratio - 1.0)) * (4.0 / tau)
    return aggregate(-gate * adv, m, aggregation=aggregation, constant=constant)


def vespo_weights(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    k_pos: float = 2.0,
    lambda_pos: float = 3.0,
    k_neg: float = 3.0,
    lambda_neg: float = 2.0,
) -> torch.Tensor:
    """VESPO's gamma weight of the sequence importance ratio (detached).

    w_i = π_θ(o_i)/π_old(o_i) = exp(Σ_t m (log π_θ − log π_old)) (the *un-normalized* sequence ratio);
    φ(w) = e^λ · w^k · e^{−λw} (φ(1) = 1, maximal at w = k/λ), with (k, λ) = (k_pos, λ_pos) where A ≥ 0 and
    (k_neg, λ_neg) where A < 0, computed in log space: log φ = λ + k log w − λ w. Defaults are TRL's.

    Shapes: logp[B, T], old_logp[B, T], advantages[B] or [B, T], mask[B, T] -> [B, T] (0 off the mask).

    References: "VESPO: Variational Sequence-Level Soft Policy Optimization" (arXiv 2602.10693), the
    gamma weighting function; TRL 1.16 ``GRPOTrainer.get_gamma_weights`` (the parametrization read here).
    TRL additionally clamps the token log-ratios to [−20, 20] and log w to [log 1e-8, 20]; here there is
    no clamp (equal whenever those bounds are not reached).
    """
    kp = check_nonnegative_scalar("k_pos", k_pos)
    lp_ = check_positive_scalar("lambda_pos", lambda_pos)
    kn = check_nonnegative_scalar("k_neg", k_neg)
    ln_ = check_positive_scalar("lambda_neg", lambda_neg)
    _, log_ratio, adv, m = _ratio_inputs(logp, old_logp, advantages, mask)
    log_w = log_ratio.detach().sum(dim=1, keepdim=True).expand_as(adv)
    pos = adv >= 0
    k = torch.where(pos, torch.full_like(adv, kp), torch.full_like(adv, kn))
    lam = torch.where(pos, torch.full_like(adv, lp_), torch.full_like(adv, ln_))
    return zero_masked(torch.exp(lam + k * log_w - lam * torch.exp(log_w)), m)


def vespo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    k_pos: float = 2.0,
    lambda_pos: float = 3.0,
    k_neg: float = 3.0,
    lambda_neg: float = 2.0,
    aggregation: str = "token-mean",
    constant: float | None = None,
) -> torch.Tensor:
    """VESPO: ℓ_t = −sg(φ(w_i)) · A_t · log π_θ(o_t), φ the gamma weight of :func:`vespo_weights`.

    A soft, asymmetric, sequence-level replacement of the clip: the gradient is the REINFORCE gradient
    scaled by φ(w_i) ∈ (0, e^λ (k/λ)^k e^{−k}]. TRL's ``vespo`` aggregates like ``dapo`` (token sum over the
    global token count). Shapes as :func:`cispo_loss`.

    References: "VESPO: Variational Sequence-Level Soft Policy Optimization" (arXiv 2602.10693).
    """
    phi = vespo_weights(logp, old_logp, advantages, mask, k_pos=k_pos, lambda_pos=lambda_pos, k_neg=k_neg, lambda_neg=lambda_neg)
    lp, _, adv, m = _ratio_inputs(logp, old_logp, advantages, mask)
    return aggregate(-(phi * adv) * lp, m, aggregation=aggregation, constant=constant)
