"""The policy-loss core of ``rlref.llm``: aggregation, the PPO clip, and KL penalties.

Conventions. Token tensors are ``[B, T]`` (B sequences, T positions); ``mask[B, T]`` (bool, or
0/1 integer or float) marks response tokens. Masked positions never enter a value: they may hold
any number, NaN included. Every function returns a *loss to minimize*.

Aggregation (:func:`aggregate`) of a per-token loss ``ℓ[b, t]``, |o_b| = valid tokens of b:

* ``"token-mean"``  Σ_{b,t} m ℓ / Σ_{b,t} m (DAPO). Every token weighs the same; a sequence
  weighs ∝ its length, and the normalizer depends on the batch's total length (a small bias).
* ``"seq-mean-token-sum"``  (1/B) Σ_b Σ_t m ℓ. The unbiased Monte-Carlo policy gradient of a
  sequence-level objective; its scale (and variance) grows with the lengths.
* ``"seq-mean-token-mean"``  (1/B) Σ_b (1/|o_b|) Σ_t m ℓ (original GRPO). Per-token weight
  1/|o_b| is a length bias: for A > 0 short responses are pushed up harder, for A < 0 long
  responses are pushed down less, so incorrect answers drift longer (Liu et al. 2025, Sec. 3.1).
* ``"constant"``  Σ_{b,t} m ℓ / (B · C) with a fixed C (e.g. the max generation length;
  Dr. GRPO). Unbiased up to the constant factor 1/C.
* ``"none"``  no reduction: the per-token matrix m ⊙ ℓ (masked entries exactly 0), for an external
  reducer that knows the global batch (verl's ``agg_loss`` with ``dp_size``/``batch_num_tokens``,
  TRL's ``num_items_in_batch``), so the data-parallel normalization is done once, there.

Policy losses beyond the PPO clip, each the per-token loss of one paper, aggregated like ``ppo_clip``:
GSPO's sequence-level ratio (:func:`gspo_clip`), CISPO's clipped, stop-gradient IS weight
(:func:`cispo_loss`), SAPO's soft gate (:func:`sapo_loss`) and VESPO's gamma weight (:func:`vespo_loss`).

KL direction: every KL estimator estimates KL(π_θ ‖ π_ref) from tokens sampled from π_θ
(:func:`rlref.llm.divergences.kl_penalty`).

The paper-specific objectives live one family per module and are re-exported here under their
old names (``rlref.llm.losses.siren_loss`` keeps working): entropy control in
:mod:`rlref.llm.entropy`, length and efficiency in :mod:`rlref.llm.length`, regularization toward a
reference or demonstration policy in :mod:`rlref.llm.reference`.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import torch

from rlref.llm._checks import (
    check_any,
    check_choice,
    check_finite_tensor,
    check_float_tensor,
    check_logp_pair,
    check_nonnegative_scalar,
    check_positive_scalar,
    check_probability,
    check_same_shape,
    first_index,
    is_meta,
    masked_or_ones,
)
from rlref.llm._ops import acc_dtype, zero_masked
from rlref.llm.divergences import KL_ESTIMATORS, exact_token_kl, kl_penalty

_MOVED = {
    "entropy_bonus": "entropy",
    "siren_selective_entropy": "entropy",
    "siren_loss": "entropy",
    "epo_smoothing_penalty": "entropy",
    "epo_phase_weight": "entropy",
    "aepo_temperature": "entropy",
    "aepo_loss": "entropy",
    "lp_reg_proxy": "entropy",
    "lp_reg_loss": "entropy",
    "t1_loss": "entropy",
    "gui_g1_difficulty_weights": "length",
    "apo_dads_kl_weights": "length",
    "apo_stcr_penalty": "length",
    "DEMO_FORMS": "reference",
    "DEMO_BASELINES": "reference",
    "demonstration_regularization": "reference",
    "Chi2Penalty": "reference",
    "chi2_occupancy_penalty": "reference",
}

__all__ = [
    "AGGREGATIONS",
    "aggregate",
    "PolicyLoss",
    "ppo_clip",
    "PPOTokenLosses",
    "ppo_token_losses",
    "sequence_log_ratio",
    "gspo_clip",
    "cispo_loss",
    "sapo_loss",
    "vespo_weights",
    "vespo_loss",
    "kl_penalty",
    "kl_loss",
    "kl_reward",
    "exact_token_kl",
]
__all__ += list(_MOVED)  # re-exported from the family modules (loaded on first access)


def __getattr__(name: str) -> object:
    if name in _MOVED:
        return getattr(importlib.import_module(f"rlref.llm.{_MOVED[name]}"), name)
    raise AttributeError(f"module 'rlref.llm.losses' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MOVED))


AGGREGATIONS = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "constant", "none")


def aggregate(
    values: torch.Tensor, mask: torch.Tensor | None = None, *, aggregation: str = "token-mean", constant: float | None = None
) -> torch.Tensor:
    """Reduce a per-token loss ``values[B, T]`` to a scalar (see the module docstring for the biases).

    Sequences with no valid token are skipped by ``seq-mean-token-mean``. ``aggregation="none"``
    returns the masked matrix m ⊙ ℓ itself ([B, T], masked entries exactly 0, gradient flowing), for
    an external reducer; an all-False mask is allowed there (a micro-batch of padding gives zeros).
    Raises ValueError for an unknown mode, a missing/non-positive ``constant`` in "constant" mode,
    a mask that selects nothing (scalar modes), or a NaN/±inf value at a valid position (masked ones
    may hold anything).

    References: Yu et al. (2025), "DAPO", eq. (12) (token-mean); Shao et al. (2024), "DeepSeekMath",
    eq. (3) (seq-mean-token-mean); Liu et al. (2025), "Understanding R1-Zero-Like Training", Sec. 3
    (the length bias and the constant normalizer).
    """
    agg = check_choice("aggregation", aggregation, AGGREGATIONS)
    v = check_float_tensor("values", values, ndim=2)
    m = masked_or_ones("mask", mask, v.shape, v.device)
    x = zero_masked(v, m)
    check_finite_tensor("values", x.detach())
    if agg == "none":
        return x
    check_any("mask", m)
    if agg == "token-mean":
        return x.sum() / m.sum()
    if agg == "seq-mean-token-sum":
        return x.sum(dim=1).mean()
    if agg == "seq-mean-token-mean":
        per = m.sum(dim=1)
        has = per > 0
        seq = torch.where(has, x.sum(dim=1) / per.clamp(min=1), torch.zeros_like(x[:, 0]))
        return seq.sum() / has.sum()
    if constant is None:
        raise ValueError("constant must be given for aggregation='constant' (e.g. the maximum response length)")
    c = check_positive_scalar("constant", constant)
    return x.sum() / (v.shape[0] * c)


def _token_triplet(logp: object, old_logp: object, advantages: object, mask: object | None):
    lp = check_float_tensor("logp", logp, ndim=2)
    old = check_float_tensor("old_logp", old_logp, ndim=2)
    check_same_shape(("logp", "old_logp"), (lp, old))
    a = check_float_tensor("advantages", advantages, ndim=(1, 2))
    if a.ndim == 1:
        if a.shape[0] != lp.shape[0]:
            raise ValueError(f"advantages must have shape [{lp.shape[0]}] or {tuple(lp.shape)}, got {tuple(a.shape)}")
        a = a.unsqueeze(1).expand_as(lp)
    check_same_shape(("logp", "advantages"), (lp, a))
    m = masked_or_ones("mask", mask, lp.shape, lp.device)
    for name, t in (("logp", lp), ("old_logp", old), ("advantages", a)):
        check_finite_tensor(name, zero_masked(t.detach(), m))
    return lp, old, a, m


@dataclass(frozen=True)
class PolicyLoss:
    """Result of a clipped policy loss.

    ``loss`` (scalar, differentiable) and diagnostics (detached scalars): fraction of valid tokens
    where the low clip (ratio < 1 − ε_low, A < 0), the high clip (ratio > 1 + ε_high, A > 0) or the
    dual clip is active, and ``approx_kl`` = token-mean of (ρ − 1) − log ρ, ρ = π_θ/π_old: the k3
    estimate of KL(π_old ‖ π_θ) from tokens sampled from π_old (unbiased, ≥ 0; Schulman 2020).
    """

    loss: torch.Tensor
    clip_fraction: torch.Tensor
    low_clip_fraction: torch.Tensor
    high_clip_fraction: torch.Tensor
    dual_clip_fraction: torch.Tensor
    approx_kl: torch.Tensor


@dataclass(frozen=True)
class PPOTokenLosses:
    """Per-token pieces of the PPO clipped surrogate (see :func:`ppo_token_losses`).

    ``per_token[B, T]`` (differentiable, 0 off the mask), and detached: ``log_ratio``, ``ratio``
    (computed with the exponent capped where the loss cannot depend on it), ``advantages`` (in the
    accumulation dtype, 0 off the mask), ``mask`` (bool) and the masks where the low, high and dual
    clips are active.
    """

    per_token: torch.Tensor
    log_ratio: torch.Tensor
    ratio: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor
    low_clipped: torch.Tensor
    high_clipped: torch.Tensor
    dual_clipped: torch.Tensor


def ppo_token_losses(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    dual_clip: float | None = None,
) -> PPOTokenLosses:
    """The per-token PPO clipped surrogate ℓ_t = −min(ρA, clip(ρ, 1 − ε_low, 1 + ε_high)A) (dual clip:
    min(ℓ, −cA) for A < 0), before aggregation. :func:`ppo_clip` aggregates it; objectives that
    replace the loss on selected tokens (Lp-Reg) start from it. Numerics and errors as in :func:`ppo_clip`.

    Shapes: logp[B, T], old_logp[B, T], advantages[B, T] or [B], mask[B, T] -> PPOTokenLosses.

    References: Schulman et al. (2017), eq. (7); Yu et al. (2025), "DAPO", eq. (10); Ye et al. (2020), eq. (5).
    """
    el = check_probability("eps_low", eps_low)
    eh = check_nonnegative_scalar("eps_high", eps_high)
    lp, old, a, m = _token_triplet(logp, old_logp, advantages, mask)
    c = None
    if dual_clip is not None:
        c = check_positive_scalar("dual_clip", dual_clip)
        if c <= 1.0:
            raise ValueError(f"dual_clip must be > 1, got {dual_clip!r}")
    acc = acc_dtype(lp.dtype)
    lp_a, old_a = lp.to(acc), old.detach().to(acc)
    zero = torch.zeros_like(lp_a)
    log_ratio = torch.where(m, lp_a - old_a, zero)
    adv = torch.where(m, a.detach().to(acc), zero)
    # Cap the exponent where a larger ratio cannot change the loss (see ppo_clip's docstring).
    cap_pos = math.log1p(eh) + 1.0
    cap_neg = math.log(c) + 1.0 if c is not None else math.inf
    cap = torch.where(adv >= 0, torch.full_like(adv, cap_pos), torch.full_like(adv, cap_neg))
    ratio = torch.exp(torch.minimum(log_ratio, cap))
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - el, 1.0 + eh)
    per_tok = torch.maximum(unclipped, clipped)
    dual_active = torch.zeros_like(m)
    if c is not None:
        cap_loss = -adv * c
        dual_active = (adv < 0) & (per_tok > cap_loss) & m
        per_tok = torch.where(adv < 0, torch.minimum(per_tok, cap_loss), per_tok)
    if not is_meta(per_tok):
        bad = m & ~torch.isfinite(per_tok.detach())
        if bool(bad.any()):
            idx = first_index(bad)
            raise ValueError(
                f"ppo_clip: the ratio exp(logp − old_logp) overflows at logp[{idx[0]}, {idx[1]}] (log-ratio "
                f"{float(log_ratio[idx]):.4g}) where advantages[{idx[0]}, {idx[1]}] = {float(adv[idx]):.4g} < 0 and no dual_clip "
                "bounds the loss: the loss is infinite (pass dual_clip, or check logp and old_logp)")
    with torch.no_grad():
        low = (ratio < 1.0 - el) & (adv < 0) & m
        high = (ratio > 1.0 + eh) & (adv > 0) & m
    return PPOTokenLosses(per_token=zero_masked(per_tok, m), log_ratio=log_ratio.detach(), ratio=ratio.detach(), advantages=adv,
                          mask=m, low_clipped=low, high_clipped=high, dual_clipped=dual_active)


def ppo_clip(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    dual_clip: float | None = None,
    aggregation: str = "token-mean",
    constant: float | None = None,
) -> PolicyLoss:
    """PPO clipped surrogate with separate low/high epsilons (clip-higher) and optional dual clip.

    ρ = exp(log π_θ − log π_old);  ℓ = −min(ρA, clip(ρ, 1 − ε_low, 1 + ε_high) A);
    dual clip (c > 1): for A < 0, ℓ = min(ℓ, −cA) (bounds the loss when ρ ≫ 1).
    Outside the trust region in the improving direction (ρ > 1 + ε_high with A > 0, ρ < 1 − ε_low
    with A < 0) the gradient is exactly zero.

    Numerics: the log-ratio and the ratio are computed in fp32 for bf16/fp16 inputs (fp64 for
    fp64), and the loss is returned in that dtype. Where the loss does not depend on the size of a
    large ratio (A > 0 beyond the high clip, A = 0, A < 0 beyond the dual clip) the log-ratio is
    capped before the exponential, so an overflowing ratio there gives the exact (finite) loss and
    gradient; with A = 0 the per-token loss is exactly 0. Only where the loss itself is infinite
    (A < 0, no dual clip, ρ overflowing) is a ValueError raised, naming ``logp``/``old_logp``.

    Shapes: logp[B, T], old_logp[B, T], advantages[B, T] or [B] (one per sequence), mask[B, T].
    Returns a :class:`PolicyLoss`. Raises ValueError on shape mismatch, a non-0/1 mask,
    ε outside [0, 1], dual_clip <= 1, NaN in valid entries.

    References: Schulman et al. (2017), "Proximal Policy Optimization Algorithms", eq. (7);
    Yu et al. (2025), "DAPO", eq. (10) (clip-higher); Ye et al. (2020), "Mastering Complex Control
    in MOBA Games with Deep RL", eq. (5) (dual clip).
    """
    t = ppo_token_losses(logp, old_logp, advantages, mask, eps_low=eps_low, eps_high=eps_high, dual_clip=dual_clip)
    loss = aggregate(t.per_token, t.mask, aggregation=aggregation, constant=constant)
    return _policy_loss(loss, t)


def _policy_loss(loss: torch.Tensor, t: PPOTokenLosses) -> PolicyLoss:
    with torch.no_grad():
        m = t.mask
        n = m.sum().clamp(min=1).to(t.ratio.dtype)
        low, high, dual = t.low_clipped.sum() / n, t.high_clipped.sum() / n, t.dual_clipped.sum() / n
        # tokens were sampled from π_old, so with ρ = π_θ/π_old the unbiased, non-negative k3 estimate
        # of KL(π_old ‖ π_θ) is (ρ − 1) − log ρ (Schulman 2020 with r = p/q = ρ).
        approx_kl = zero_masked(torch.expm1(t.log_ratio) - t.log_ratio, m).sum() / n
    return PolicyLoss(loss=loss, clip_fraction=low + high, low_clip_fraction=low, high_clip_fraction=high,
                      dual_clip_fraction=dual, approx_kl=approx_kl)


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


def kl_loss(
    logp: torch.Tensor,
    ref_logp: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    beta: float,
    estimator: str = "k2",
    aggregation: str = "token-mean",
    constant: float | None = None,
) -> torch.Tensor:
    """β · aggregate(k(logp, ref_logp)): a KL-to-reference loss term (beta > 0).

    Default ``k2``: its expected per-position gradient is ∇ KL(π_θ ‖ π_ref); pass ``"k3"`` for GRPO's
    convention (gradient of the reverse KL, see :func:`kl_penalty`), or ``"k3+"`` for k3's value with
    k2's (unbiased) gradient. ``aggregation="none"`` returns β times the masked per-token matrix.

    Shapes: logp[B, T], ref_logp[B, T], mask[B, T] -> scalar.

    References: Shao et al. (2024), "DeepSeekMath", eq. (3)-(4).
    """
    b = check_positive_scalar("beta", beta)
    est = check_choice("estimator", estimator, KL_ESTIMATORS)
    lp0, ref0, m = check_logp_pair(logp, ref_logp, "ref_logp", mask)
    return b * aggregate(kl_penalty(lp0, ref0, est), m, aggregation=aggregation, constant=constant)


def kl_reward(rewards: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor | None = None, *, beta: float,
              estimator: str = "k1") -> torch.Tensor:
    """Per-token rewards with the KL penalty folded in: r_t − β · k(logp_t, ref_logp_t) (detached).

    ``rewards`` is [B, T] (e.g. the outcome reward on the last token, 0 elsewhere). Masked tokens get 0.
    Summed over a sequence with k1 this is r − β log(π_θ(y)/π_ref(y)), the KL-regularized return.

    References: Ouyang et al. (2022), "Training language models to follow instructions with human
    feedback", eq. (2); Hu (2025), "REINFORCE++", Sec. 3.
    """
    b = check_positive_scalar("beta", beta)
    r = check_float_tensor("rewards", rewards, ndim=2)
    lp = check_float_tensor("logp", logp, ndim=2)
    ref = check_float_tensor("ref_logp", ref_logp, ndim=2)
    check_same_shape(("rewards", "logp", "ref_logp"), (r, lp, ref))
    m = masked_or_ones("mask", mask, r.shape, r.device)
    zero = torch.zeros_like(r)
    r0 = torch.where(m, r, zero)
    check_finite_tensor("rewards", r0.detach())
    lp0, ref0, _ = check_logp_pair(lp.detach(), ref, "ref_logp", m)
    k = kl_penalty(lp0, ref0, estimator)
    return torch.where(m, r0 - b * k, zero)
