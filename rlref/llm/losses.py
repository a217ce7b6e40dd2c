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

Policy losses beyond the PPO clip (GSPO, CISPO, SAPO, VESPO), each the per-token loss of one paper
aggregated like ``ppo_clip``, live in :mod:`rlref.llm.surrogates` and are re-exported here.

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
    "sequence_log_ratio": "surrogates",
    "gspo_clip": "surrogates",
    "cispo_loss": "surrogates",
    "sapo_loss": "surrogates",
    "vespo_weights": "surrogates",
    "vespo_loss": "surrogates",
}

__all__ = [
    "AGGREGATIONS",
    "aggregate",
    "PolicyLoss",
    "ppo_clip",
    "PPOTokenLosses",
    "ppo_token_losses",
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
