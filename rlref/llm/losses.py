"""Policy losses and regularizers for LLM RL: PPO clip, KL estimators, entropy regularizers.

Conventions. Token tensors are ``[B, T]`` (B sequences, T positions); ``mask[B, T]`` (bool, or
0/1 integer) marks response tokens. Masked positions never enter a value: they may hold any
number, NaN included. Every function returns a *loss to minimize*.

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

KL direction: every KL estimator here estimates KL(π_θ ‖ π_ref) from tokens sampled from π_θ
(Schulman 2020, "Approximating KL divergence"), with log r = log π_ref(y) − log π_θ(y):
k1 = −log r (unbiased), k2 = ½ (log r)² (biased, low variance), k3 = (r − 1) − log r (unbiased,
≥ 0, low variance).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlref.llm._checks import (
    check_choice,
    check_finite_tensor,
    check_float_tensor,
    check_nonnegative_scalar,
    check_positive_scalar,
    check_probability,
    check_same_shape,
    masked_or_ones,
)

__all__ = [
    "AGGREGATIONS",
    "aggregate",
    "PolicyLoss",
    "ppo_clip",
    "kl_penalty",
    "kl_loss",
    "kl_reward",
    "exact_token_kl",
    "entropy_bonus",
    "gui_g1_difficulty_weights",
    "siren_selective_entropy",
    "siren_loss",
    "epo_smoothing_penalty",
    "epo_phase_weight",
    "aepo_temperature",
    "aepo_loss",
    "lp_reg_proxy",
    "lp_reg_loss",
    "t1_loss",
    "apo_dads_kl_weights",
    "apo_stcr_penalty",
    "DEMO_FORMS",
    "DEMO_BASELINES",
    "demonstration_regularization",
    "Chi2Penalty",
    "chi2_occupancy_penalty",
]

AGGREGATIONS = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "constant")


def _zero_masked(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return torch.where(m, x, torch.zeros_like(x))


def aggregate(
    values: torch.Tensor, mask: torch.Tensor | None = None, *, aggregation: str = "token-mean", constant: float | None = None
) -> torch.Tensor:
    """Reduce a per-token loss ``values[B, T]`` to a scalar (see the module docstring for the biases).

    Sequences with no valid token are skipped by ``seq-mean-token-mean``.
    Raises ValueError for an unknown mode, a missing/non-positive ``constant`` in "constant" mode,
    a mask that selects nothing, or a NaN/±inf value at a valid position (masked ones may hold anything).

    References: Yu et al. (2025), "DAPO", eq. (12) (token-mean); Shao et al. (2024), "DeepSeekMath",
    eq. (3) (seq-mean-token-mean); Liu et al. (2025), "Understanding R1-Zero-Like Training", Sec. 3
    (the length bias and the constant normalizer).
    """
    agg = check_choice("aggregation", aggregation, AGGREGATIONS)
    v = check_float_tensor("values", values, ndim=2)
    m = masked_or_ones("mask", mask, v.shape, v.device)
    n_tok = m.sum()
    if int(n_tok) == 0:
        raise ValueError("mask selects no token: the loss is undefined")
    x = _zero_masked(v, m)
    check_finite_tensor("values", x.detach())
    if agg == "token-mean":
        return x.sum() / n_tok
    if agg == "seq-mean-token-sum":
        return x.sum(dim=1).mean()
    if agg == "seq-mean-token-mean":
        per = m.sum(dim=1)
        has = per > 0
        return (x.sum(dim=1)[has] / per[has]).mean()
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
        check_finite_tensor(name, _zero_masked(t.detach(), m))
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

    Shapes: logp[B, T], old_logp[B, T], advantages[B, T] or [B] (one per sequence), mask[B, T].
    Returns a :class:`PolicyLoss`. Raises ValueError on shape mismatch, wrong mask dtype,
    ε outside [0, 1], dual_clip <= 1, NaN in valid entries.

    References: Schulman et al. (2017), "Proximal Policy Optimization Algorithms", eq. (7);
    Yu et al. (2025), "DAPO", eq. (10) (clip-higher); Ye et al. (2020), "Mastering Complex Control
    in MOBA Games with Deep RL", eq. (5) (dual clip).
    """
    el = check_probability("eps_low", eps_low)
    eh = check_nonnegative_scalar("eps_high", eps_high)
    lp, old, a, m = _token_triplet(logp, old_logp, advantages, mask)
    if dual_clip is not None:
        c = check_positive_scalar("dual_clip", dual_clip)
        if c <= 1.0:
            raise ValueError(f"dual_clip must be > 1, got {dual_clip!r}")
    zero = torch.zeros_like(lp)
    log_ratio = torch.where(m, lp - old.detach(), zero)
    ratio = torch.exp(log_ratio)
    adv = torch.where(m, a.detach(), zero)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - el, 1.0 + eh)
    per_tok = torch.maximum(unclipped, clipped)
    dual_active = torch.zeros_like(m)
    if dual_clip is not None:
        cap = -adv * float(dual_clip)
        dual_active = (adv < 0) & (per_tok > cap) & m
        per_tok = torch.where(adv < 0, torch.minimum(per_tok, cap), per_tok)
    loss = aggregate(per_tok, m, aggregation=aggregation, constant=constant)
    with torch.no_grad():
        n = m.sum().clamp(min=1).to(lp.dtype)
        low = ((ratio < 1.0 - el) & (adv < 0) & m).sum() / n
        high = ((ratio > 1.0 + eh) & (adv > 0) & m).sum() / n
        dual = dual_active.sum() / n
        # tokens were sampled from π_old, so with ρ = π_θ/π_old the unbiased, non-negative k3 estimate
        # of KL(π_old ‖ π_θ) is (ρ − 1) − log ρ (Schulman 2020 with r = p/q = ρ).
        approx_kl = _zero_masked(torch.expm1(log_ratio) - log_ratio, m).sum() / n
    return PolicyLoss(loss, low + high, low, high, dual, approx_kl)


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(π_θ ‖ π_ref) from tokens sampled from π_θ.

    log r = ref_logp − logp;  k1 = −log r;  k2 = ½ (log r)²;  k3 = (r − 1) − log r.
    E_{y∼π_θ}[k1] = E[k3] = KL(π_θ ‖ π_ref) (unbiased); k2 is biased (its mean is KL up to
    third order in log r); k3 ≥ 0 pointwise. As a *reward penalty* use −β·k1 detached
    (``kl_reward``). As a *loss* (``aggregate(kl_penalty(...), mask)``, differentiated through
    log π_θ(y) with y fixed) the expected per-position gradients differ by estimator:
    k1 -> 0; k2 -> ∇ KL(π_θ ‖ π_ref) (the intended direction); k3 (GRPO's choice) -> ∇ KL(π_ref ‖ π_θ),
    the *reverse* KL (exact identities for one position, checked in the tests; across positions
    the pathwise gradient also ignores a token's effect on later positions).

    Shapes: logp[...], ref_logp[...] (same shape) -> [...], elementwise.
    Raises ValueError for an unknown estimator or a shape mismatch.

    References: Schulman (2020), "Approximating KL divergence" (k1, k2, k3); Shao et al. (2024),
    "DeepSeekMath", eq. (4) (k3 as a loss); Tang & Munos (2025), "On a few pitfalls in KL divergence
    gradient estimation for RL" (the gradients of the estimators as losses).
    """
    est = check_choice("estimator", estimator, ("k1", "k2", "k3"))
    lp = check_float_tensor("logp", logp)
    ref = check_float_tensor("ref_logp", ref_logp)
    check_same_shape(("logp", "ref_logp"), (lp, ref))
    log_r = ref - lp
    if est == "k1":
        return -log_r
    if est == "k2":
        return 0.5 * log_r**2
    return torch.expm1(log_r) - log_r


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
    convention (gradient of the reverse KL, see :func:`kl_penalty`).

    References: Shao et al. (2024), "DeepSeekMath", eq. (3)-(4).
    """
    b = check_positive_scalar("beta", beta)
    est = check_choice("estimator", estimator, ("k1", "k2", "k3"))
    lp0, ref0, m = _valid_pair(logp, ref_logp, "ref_logp", mask)
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
    lp0, ref0, _ = _valid_pair(lp.detach(), ref, "ref_logp", m)
    k = kl_penalty(lp0, ref0, estimator)
    return torch.where(m, r0 - b * k, zero)


def exact_token_kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """Exact per-position KL(softmax(logits) ‖ softmax(ref_logits)) = Σ_v π (log π − log π_ref).

    Shapes: logits[..., V], ref_logits[..., V] -> [...]. 0·log 0 = 0; +inf where π puts mass outside
    π_ref's support. Computed in log space.

    References: definition.
    """
    z = check_float_tensor("logits", logits)
    zr = check_float_tensor("ref_logits", ref_logits)
    check_same_shape(("logits", "ref_logits"), (z, zr))
    lp = torch.log_softmax(z, dim=-1)
    lr = torch.log_softmax(zr, dim=-1)
    p = lp.exp()
    term = torch.where(p > 0, p * (lp - lr), torch.zeros_like(p))
    return term.sum(-1)


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


def gui_g1_difficulty_weights(difficulty: torch.Tensor, *, alpha: float = 1.0) -> torch.Tensor:
    """GUI-G1's difficulty-aware scaling of per-sample advantages.

    w_i = d_i^α / mean_j d_j^α  (batch mean 1), to multiply advantages so that hard samples (large d,
    e.g. a small relative target box) are not under-optimized; GUI-G1 pairs it with a constant
    length normalizer (``aggregation="constant"``) instead of GRPO's 1/|o|. The mean-1
    normalization is derived here.

    Shapes: difficulty[B] (> 0) -> [B].

    References: Zhou et al. (2025), "GUI-G1: Understanding R1-Zero-Like Training for Visual Grounding
    in GUI Agents", Sec. 4.3 (policy update: length normalization and difficulty-aware scaling).
    """
    d = check_float_tensor("difficulty", difficulty, ndim=1)
    check_finite_tensor("difficulty", d)
    if d.numel() == 0 or bool((d <= 0).any()):
        raise ValueError("difficulty must be a non-empty tensor of positive numbers")
    a = check_nonnegative_scalar("alpha", alpha)
    w = d**a
    return w / w.mean()


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


def apo_dads_kl_weights(group_accuracy: torch.Tensor, *, beta: float) -> torch.Tensor:
    """APO's Difficulty-Adaptive Divergence Shaping for positive samples.

    β_q = β · acc_q: the KL weight of a prompt's correct responses grows with the group's accuracy
    (easy prompts stay close to the reference; on hard prompts a rare success may move far).
    The linear form is derived here.

    Shapes: group_accuracy[B] in [0, 1] -> [B].

    References: "APO: Enhancing Reasoning Ability of MLLMs via Asymmetric Policy Optimization"
    (2025), Sec. 3.2 (DADS).
    """
    b = check_positive_scalar("beta", beta)
    acc = check_float_tensor("group_accuracy", group_accuracy, ndim=1)
    check_finite_tensor("group_accuracy", acc)
    if bool(((acc < 0) | (acc > 1)).any()):
        raise ValueError("group_accuracy must lie in [0, 1]")
    return b * acc


def apo_stcr_penalty(lengths: torch.Tensor, correct: torch.Tensor, *, coef: float) -> torch.Tensor:
    """APO's Suboptimal Trajectory Complexity Regularization for negative samples.

    For an incorrect response of length L in a group with mean length L̄:
    penalty = −coef · clip((L − L̄)/L̄, 0, 1); correct responses get 0 (added to the reward, it
    discourages overlong wrong answers without touching correct ones). Form derived here.

    Shapes: lengths[B, G] (> 0), correct[B, G] bool -> [B, G].

    References: APO (2025), Sec. 3.3 (STCR).
    """
    c = check_nonnegative_scalar("coef", coef)
    ln = check_float_tensor("lengths", lengths, ndim=2)
    check_finite_tensor("lengths", ln)
    if bool((ln <= 0).any()):
        raise ValueError("lengths must be > 0")
    if not isinstance(correct, torch.Tensor) or correct.dtype != torch.bool or correct.shape != ln.shape:
        raise ValueError(f"correct must be a bool tensor of shape {tuple(ln.shape)}")
    mean = ln.mean(dim=1, keepdim=True)
    pen = -c * torch.clamp((ln - mean) / mean, 0.0, 1.0)
    return torch.where(correct, torch.zeros_like(pen), pen)


DEMO_FORMS = ("score-function", "pathwise")
DEMO_BASELINES = ("none", "leave-one-out")


def _valid_pair(logp: object, other: object, other_name: str, mask: object | None):
    lp = check_float_tensor("logp", logp, ndim=2)
    ot = check_float_tensor(other_name, other, ndim=2)
    check_same_shape(("logp", other_name), (lp, ot))
    m = masked_or_ones("mask", mask, lp.shape, lp.device)
    zero = torch.zeros_like(lp)
    lp0, ot0 = torch.where(m, lp, zero), torch.where(m, ot.detach(), zero)
    check_finite_tensor("logp", lp0.detach())
    check_finite_tensor(other_name, ot0)
    return lp0, ot0, m


def demonstration_regularization(logp: torch.Tensor, bc_logp: torch.Tensor, mask: torch.Tensor | None = None, *,
                                 beta: float, form: str = "score-function", estimator: str | None = None,
                                 baseline: str = "none", aggregation: str = "seq-mean-token-sum") -> torch.Tensor:
    """Demonstration-regularized RL, LLM form: a loss for β · KL(p_θ ‖ p_BC) on π_θ's samples.

    π_BC is the behaviour-cloning (SFT) policy fit on expert demonstrations, p_θ(y) = Π_t π_θ(y_t|y_<t)
    and p_BC the response distributions. Added to a policy-gradient loss on a reward r, the default
    form ascends E_{p_θ}[r] − β KL(p_θ ‖ p_BC) exactly, whose optimum is p*(y) = p_BC(y) e^{r(y)/β} / Z
    (per prompt).

    ``form="score-function"`` (default; the reward-penalty form). With the sequence-level k1 sum
    s_b = Σ_t m_bt (log π_θ(y_bt) − log π_BC(y_bt)) = log p_θ(y_b) − log p_BC(y_b) and
    c_b = Σ_t m_bt log π_θ(y_bt), the loss is
        β · (1/B) Σ_b [ sg(s_b) + sg(s_b − b_b) · (c_b − sg(c_b)) ].
    Its value is β · (1/B) Σ_b s_b, an unbiased estimate of β KL(p_θ ‖ p_BC); its gradient
    β · (1/B) Σ_b (s_b − b_b) ∇ log p_θ(y_b) is an unbiased estimate of β ∇KL(p_θ ‖ p_BC), because
    ∇KL = E_{p_θ}[(log p_θ − log p_BC) ∇ log p_θ] (the +1 term has mean E[∇ log p_θ] = 0). It is the
    gradient of folding −β·k1 into the reward (``kl_reward``) and summing over the sequence.
    ``baseline="leave-one-out"`` uses b_b = mean_{j≠b} s_j (B >= 2; still unbiased since the
    responses are i.i.d.), ``"none"`` b_b = 0. Only the k1 estimator and ``seq-mean-token-sum`` are
    allowed here: k2/k3 in the reward, or a per-sequence 1/|o| or 1/Σ|o| normalizer, bias the gradient.

    ``form="pathwise"``: β · aggregate(k(log π_θ, log π_BC)) with ``estimator`` k2 (default) or k3,
    differentiated through log π_θ(y_t) with the tokens fixed (``kl_loss``). Its expected gradient at
    prefix x is d_θ(x) ∇_{θ_x} D_x with a per-prefix divergence D_x (k2: KL(π_θ(·|x) ‖ π_BC(·|x)),
    k3: KL(π_BC(·|x) ‖ π_θ(·|x))): it ignores θ_x's effect on the KL of later positions. Policy
    gradient on r plus this loss therefore converges, bottom-up, to
        k2: π(·|x) ∝ π_BC(·|x) exp(Q(x,·)/β),   k3: π(v|x) = β π_BC(v|x) / (λ_x − Q(x, v)),
    with the *unregularized* Q(x, v) = E_π[r | x·v] and λ_x > max_v Q(x, v) fixed by normalization
    (``rlref.llm.tokentree.pathwise_kl_fixed_point``) — not p_BC e^{r/β}/Z on responses of two or more
    tokens (k2 coincides with it on one-token responses).

    Shapes: logp[B, T], bc_logp[B, T], mask[B, T] -> scalar.
    Raises ValueError for an unknown form/baseline/estimator, an estimator or aggregation the form does
    not allow, a leave-one-out baseline with B < 2, NaN in valid entries, or a shape mismatch.

    References: Tiapkin et al. (2023), "Demonstration-Regularized RL", Sec. 4 (KL-regularization
    towards the BC policy); Williams (1992) (score-function gradient); Tang & Munos (2025), "On a few
    pitfalls in KL divergence gradient estimation for RL" (the pathwise fixed point; the bottom-up
    form is derived here).
    """
    b = check_positive_scalar("beta", beta)
    fm = check_choice("form", form, DEMO_FORMS)
    bl = check_choice("baseline", baseline, DEMO_BASELINES)
    if fm == "pathwise":
        if bl != "none":
            raise ValueError(f"baseline must be 'none' for form='pathwise', got {baseline!r}")
        est = "k2" if estimator is None else check_choice("estimator", estimator, ("k2", "k3"))
        return kl_loss(logp, bc_logp, mask, beta=b, estimator=est, aggregation=aggregation)
    if estimator not in (None, "k1"):
        raise ValueError(f"estimator must be 'k1' (or None) for form='score-function', got {estimator!r}; "
                         "use form='pathwise' for a k2/k3 loss")
    if aggregation != "seq-mean-token-sum":
        raise ValueError(f"aggregation must be 'seq-mean-token-sum' for form='score-function', got {aggregation!r}")
    lp0, bc0, m = _valid_pair(logp, bc_logp, "bc_logp", mask)
    if not bool(m.any()):
        raise ValueError("mask selects no token: the loss is undefined")
    c = lp0.sum(dim=1)
    s = (lp0.detach() - bc0).sum(dim=1)
    n = s.shape[0]
    if bl == "leave-one-out":
        if n < 2:
            raise ValueError(f"baseline='leave-one-out' needs B >= 2 sequences, got B = {n}")
        adv = s - (s.sum() - s) / (n - 1)
    else:
        adv = s
    return b * (s + adv * (c - c.detach())).mean()


@dataclass(frozen=True)
class Chi2Penalty:
    """Result of :func:`chi2_occupancy_penalty`.

    ``loss``: differentiable surrogate, value β·estimate, expected gradient β·∇χ²;
    ``estimate``: detached, unbiased estimate of the χ² divergence of the chosen ``level``.
    """

    loss: torch.Tensor
    estimate: torch.Tensor


def chi2_occupancy_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor | None = None, *, beta: float,
                           level: str = "occupancy") -> Chi2Penalty:
    """χ² regularization towards a reference policy, estimated on π_θ's samples.

    Write π(z) = Π_{k<|z|} π(z_k | z_<k) for the probability that a response starts with the token
    string z, and w_t = π_θ(y_≤t) / π_ref(y_≤t) = exp(Σ_{k≤t} (log π_θ − log π_ref)) for the density
    ratio of a sampled response's prefix through position t.

    ``level="occupancy"`` (default): χ² between the occupancy measures of the token MDP (state = open
    prefix x, action = next token v; undiscounted, no absorbing state, *not* normalized), whose
    occupancy is d_π(x, v) = π(x·v) — a sub-probability measure at each depth when responses end at
    ``eos`` — and
        χ²_occ(π ‖ π_ref) = Σ_{x, v} (d_π(x,v) − d_ref(x,v))² / d_ref(x,v)
                          = Σ_{x, v} d_π²/d_ref − 2 E_π|y| + E_ref|y|
                          = E_{y∼π_θ}[ Σ_{t<|y|} (w_t − 1)² / w_t ],
    a sum over every position t of every valid token (the eos token included).
    ``level="sequence"``: χ²(p_θ ‖ p_ref) = Σ_y (p_θ(y) − p_ref(y))² / p_ref(y) = E_{p_θ}[(w − 1)²/w]
    between the response distributions, w = w_{|y|−1} the full-response ratio (last valid token).

    Estimate: (1/B) Σ_b Σ_{t∈S_b} (w_bt − 1)²/w_bt (= 4 sinh²(½ log w), computed in log space), S_b
    the selected positions. Gradient: for each depth, ∇ Σ_z π(z)² / π_ref(z) = 2 E_π[w ∇ log π(z)] and
    ∇ Σ_z π(z) = E_π[∇ log π(z)] (the probability of reaching that depth — not constant with
    ``eos``), so the surrogate
        Σ_{t∈S_b} [ sg((w_t − 1)²/w_t) + 2 sg(w_t − 1) (c_t − sg(c_t)) ],  c_t = Σ_{k≤t} log π_θ(y_k),
    has the estimate as value and an unbiased gradient of χ². (A weight 2 w_t instead of 2 (w_t − 1)
    has expected gradient ∇χ²_occ + 2 ∇E_π|y| on variable-length responses — a length penalty; on
    fixed-length responses, and at ``level="sequence"``, the two coincide in expectation.)
    Requires full support of π_ref where π_θ puts mass, and π_θ > 0 where π_ref does.

    Shapes: logp[B, T], ref_logp[B, T], mask[B, T] (valid tokens form a prefix) -> Chi2Penalty.

    References: Laidlaw, Singhal, Dragan (2025), "Correlated Proxies: A New Definition and Improved
    Mitigation for Reward Hacking", Sec. 5 (χ² occupancy-measure regularization); the token-tree
    occupancy form, the estimator and its surrogate are derived here.
    """
    b = check_positive_scalar("beta", beta)
    lv = check_choice("level", level, ("occupancy", "sequence"))
    lp0, ref0, m = _valid_pair(logp, ref_logp, "ref_logp", mask)
    zero = torch.zeros_like(lp0)
    c = torch.cumsum(lp0, dim=1)
    log_w = c.detach() - torch.cumsum(ref0, dim=1)
    if lv == "sequence":
        t_idx = torch.arange(lp0.shape[1], device=lp0.device).expand_as(m)
        last = torch.where(m, t_idx, torch.full_like(t_idx, -1)).amax(dim=1, keepdim=True)
        sel = (t_idx == last) & m
    else:
        sel = m
    value = torch.where(sel, 4.0 * torch.sinh(0.5 * log_w) ** 2, zero)
    weight = torch.where(sel, 2.0 * torch.expm1(log_w), zero)
    per = value + weight * (c - c.detach())
    estimate = value.sum(dim=1).mean()
    return Chi2Penalty(loss=b * per.sum(dim=1).mean(), estimate=estimate.detach())
