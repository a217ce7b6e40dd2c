"""Advantage estimators used by the seed papers' LLM RL recipes.

Group-based estimators take ``rewards[B, G]``: B prompts, G sampled responses per prompt, and an
optional bool ``mask[B, G]`` marking the real responses (padding for groups of unequal size).
Masked entries never enter a statistic and get advantage 0, so padding never changes a result.
A group whose valid rewards are all equal gets advantage exactly 0 (never NaN): the
normalizers divide only where the spread is non-zero.

Token-level estimators (GAE, T-PPO's extended GAE) take ``[B, T]`` tensors and a token mask;
masked tokens are skipped (the recursion runs over the valid tokens in order).

References are given per function; "derived here" marks what we derived from the described math.
"""

from __future__ import annotations

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

__all__ = [
    "grpo",
    "dr_grpo",
    "rloo",
    "reinforce_pp",
    "group_mean_batch_std",
    "dler_batch_normalized",
    "gae",
    "tppo_extended_gae",
    "drpo_weights",
    "igpo_turn_rewards",
    "igpo_advantages",
    "empg_modulate",
    "duration_aware_weights",
]


# ----------------------------------------------------------------------------- helpers


def _group_inputs(rewards: object, mask: object | None, *, min_valid: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    r = check_float_tensor("rewards", rewards, ndim=2)
    if r.shape[1] == 0:
        raise ValueError(f"rewards must have at least one response per group (G >= 1), got shape {tuple(r.shape)}")
    m = masked_or_ones("mask", mask, r.shape, r.device)
    counts = m.sum(dim=1)
    small = counts < min_valid
    if bool(small.any()):
        b = int(torch.nonzero(small)[0])
        raise ValueError(f"group {b} has {int(counts[b])} valid responses; this estimator needs at least {min_valid} per group")
    check_finite_tensor("rewards", torch.where(m, r, torch.zeros_like(r)))
    return r, m


def _masked_mean(x: torch.Tensor, m: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    xm = torch.where(m, x, torch.zeros_like(x))
    if dim is None:
        return xm.sum() / m.sum()
    return xm.sum(dim=dim, keepdim=True) / m.sum(dim=dim, keepdim=True)


def _masked_std(x: torch.Tensor, m: torch.Tensor, dim: int | None, unbiased: bool) -> torch.Tensor:
    mu = _masked_mean(x, m, dim)
    sq = torch.where(m, (x - mu) ** 2, torch.zeros_like(x))
    n = m.sum() if dim is None else m.sum(dim=dim, keepdim=True)
    denom = (n - 1).clamp(min=1) if unbiased else n
    s = sq.sum() if dim is None else sq.sum(dim=dim, keepdim=True)
    return torch.sqrt(s / denom)


def _flat_group(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """True for groups whose valid entries are all equal (max == min): their advantage is 0."""
    big = torch.finfo(x.dtype).max
    hi = torch.where(m, x, torch.full_like(x, -big)).amax(dim=1, keepdim=True)
    lo = torch.where(m, x, torch.full_like(x, big)).amin(dim=1, keepdim=True)
    return hi == lo


def _safe_div(num: torch.Tensor, den: torch.Tensor, eps: float) -> torch.Tensor:
    den = den + eps
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))


# ----------------------------------------------------------------------------- group estimators


def grpo(rewards: torch.Tensor, mask: torch.Tensor | None = None, *, eps: float = 1e-6, unbiased: bool = True) -> torch.Tensor:
    """GRPO group-normalized advantage.

    A_i = (r_i − mean_g(r)) / (std_g(r) + eps), statistics over the valid responses of the group
    (std with Bessel's correction when ``unbiased``, as ``torch.std``); a group whose rewards are all
    equal gets A = 0. Invariant to r -> a·r + c (a > 0) up to the eps term; permuting a group
    permutes its advantages.

    Shapes: rewards[B, G], mask[B, G] (bool) -> [B, G]. Raises ValueError on NaN/inf valid rewards,
    a wrong shape, an empty group, eps < 0.

    References: Shao et al. (2024), "DeepSeekMath", Sec. 4.1.2 (outcome supervision), eq. for Â_{i,t}.
    """
    e = check_nonnegative_scalar("eps", eps)
    r, m = _group_inputs(rewards, mask)
    centered = r - _masked_mean(r, m, dim=1)
    adv = _safe_div(centered, _masked_std(r, m, dim=1, unbiased=unbiased), e)
    return torch.where(m & ~_flat_group(r, m), adv, torch.zeros_like(adv))


def dr_grpo(rewards: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Dr. GRPO advantage: the group mean baseline without std normalization.

    A_i = r_i − mean_g(r). (Dr. GRPO also drops GRPO's 1/|o_i| length normalization: use
    ``ppo_clip(..., aggregation="constant")`` for the loss.) Invariant to r -> r + c.

    Shapes: rewards[B, G], mask[B, G] -> [B, G].

    References: Liu et al. (2025), "Understanding R1-Zero-Like Training: A Critical Perspective",
    Sec. 3.2, eq. (3).
    """
    r, m = _group_inputs(rewards, mask)
    adv = r - _masked_mean(r, m, dim=1)
    return torch.where(m & ~_flat_group(r, m), adv, torch.zeros_like(adv))


def rloo(rewards: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """REINFORCE leave-one-out advantage.

    A_i = r_i − (1/(k−1)) Σ_{j≠i} r_j = k/(k−1) · (r_i − mean_g(r)),  k = valid responses in the
    group (k >= 2). The baseline does not depend on r_i, so the estimator is unbiased.

    Shapes: rewards[B, G], mask[B, G] -> [B, G]. Raises ValueError if a group has fewer than 2 valid responses.

    References: Kool, van Hoof, Welling (2019), "Buy 4 REINFORCE samples, get a baseline for free!";
    Ahmadian et al. (2024), "Back to Basics: Revisiting REINFORCE Style Optimization ...", eq. (5).
    """
    r, m = _group_inputs(rewards, mask, min_valid=2)
    k = m.sum(dim=1, keepdim=True).to(r.dtype)
    total = torch.where(m, r, torch.zeros_like(r)).sum(dim=1, keepdim=True)
    adv = r - (total - r) / (k - 1)
    return torch.where(m & ~_flat_group(r, m), adv, torch.zeros_like(adv))


def reinforce_pp(rewards: torch.Tensor, mask: torch.Tensor | None = None, *, eps: float = 1e-6) -> torch.Tensor:
    """REINFORCE++ advantage: global batch normalization.

    A = (r − mean_batch(r)) / (std_batch(r) + eps), statistics over every valid entry of the batch
    (any shape; population std). A batch whose rewards are all equal gets 0.

    Shapes: rewards[...], mask[...] -> [...]. In REINFORCE++ the per-token return already includes
    the −β·KL penalty (``kl_penalty(..., as_reward=True)``).

    References: Hu (2025), "REINFORCE++: A Simple and Efficient Approach for Aligning LLMs",
    Sec. 3 (advantage normalization).
    """
    e = check_nonnegative_scalar("eps", eps)
    r = check_float_tensor("rewards", rewards)
    m = masked_or_ones("mask", mask, r.shape, r.device)
    if not bool(m.any()):
        raise ValueError("mask selects no entries: REINFORCE++ needs at least one valid reward")
    check_finite_tensor("rewards", torch.where(m, r, torch.zeros_like(r)))
    flat_r, flat_m = r.reshape(1, -1), m.reshape(1, -1)
    if bool(_flat_group(flat_r, flat_m).all()):
        return torch.zeros_like(r)
    adv = _safe_div(r - _masked_mean(r, m), _masked_std(r, m, dim=None, unbiased=False), e)
    return torch.where(m, adv, torch.zeros_like(adv))


def group_mean_batch_std(rewards: torch.Tensor, mask: torch.Tensor | None = None, *, eps: float = 1e-6) -> torch.Tensor:
    """Group-mean baseline with batch-level std ("Tricks or Traps", Part I).

    A_i = (r_i − mean_g(r)) / (std_batch(r) + eps): the mean is local to the prompt's group, the
    scale is the population std of all valid rewards in the batch, which stays robust when a group's
    rewards are concentrated (std_g -> 0). Invariant to r -> a·r + c (a > 0) up to eps.

    Shapes: rewards[B, G], mask[B, G] -> [B, G].

    References: Liu et al. (2025), "Part I: Tricks or Traps? A Deep Dive into RL for LLM Reasoning",
    Sec. 4.1 (advantage normalization: group-level mean, batch-level std).
    """
    e = check_nonnegative_scalar("eps", eps)
    r, m = _group_inputs(rewards, mask)
    centered = r - _masked_mean(r, m, dim=1)
    adv = _safe_div(centered, _masked_std(r, m, dim=None, unbiased=False), e)
    return torch.where(m & ~_flat_group(r, m), adv, torch.zeros_like(adv))


def dler_batch_normalized(rewards: torch.Tensor, mask: torch.Tensor | None = None, *, eps: float = 1e-6) -> torch.Tensor:
    """DLER's batch-wise reward normalization.

    Ã_i = r_i − mean_g(r) (group baseline), then A_i = (Ã_i − mean_batch(Ã)) / (std_batch(Ã) + eps)
    over all valid responses in the batch. Groups whose rewards are all equal contribute Ã = 0 and
    get A = 0 (they are excluded from the batch statistics, as dynamic sampling would drop them).

    Shapes: rewards[B, G], mask[B, G] -> [B, G]. If every group is flat, returns zeros.

    References: Liu et al. (2025), "DLER: Doing Length pEnalty Right", Sec. 3.1 (batch-wise reward
    normalization, the REINFORCE++-baseline form); exclusion of flat groups derived here.
    """
    e = check_nonnegative_scalar("eps", eps)
    r, m = _group_inputs(rewards, mask)
    active = m & ~_flat_group(r, m)
    if not bool(active.any()):
        return torch.zeros_like(r)
    centered = r - _masked_mean(r, m, dim=1)
    adv = _safe_div(centered - _masked_mean(centered, active), _masked_std(centered, active, dim=None, unbiased=False), e)
    return torch.where(active, adv, torch.zeros_like(adv))


# ----------------------------------------------------------------------------- GAE


def _token_inputs(rewards: object, values: object, mask: object | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r = check_float_tensor("rewards", rewards, ndim=2)
    v = check_float_tensor("values", values, ndim=2)
    check_same_shape(("rewards", "values"), (r, v))
    m = masked_or_ones("mask", mask, r.shape, r.device)
    zero = torch.zeros_like(r)
    check_finite_tensor("rewards", torch.where(m, r, zero))
    check_finite_tensor("values", torch.where(m, v, zero))
    return r, v, m


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    gamma: float = 1.0,
    lam: float = 0.95,
    bootstrap: torch.Tensor | None = None,
) -> torch.Tensor:
    """Generalized advantage estimation over the valid tokens of each sequence.

    δ_t = r_t + γ V(s_{t+1}) − V(s_t);  A_t = δ_t + γλ A_{t+1},
    where t runs over the valid tokens (mask True) in order, V after the last valid token is
    ``bootstrap[b]`` (0 by default: the response terminated). Masked tokens get 0 and do not break
    the recursion (inserting padding anywhere leaves the valid advantages unchanged).
    Returns = advantages + values.

    Shapes: rewards[B, T], values[B, T], mask[B, T], bootstrap[B] -> advantages[B, T].
    Raises ValueError if gamma or lam is outside [0, 1] or shapes mismatch.

    References: Schulman et al. (2016), "High-Dimensional Continuous Control Using Generalized
    Advantage Estimation", eq. (16).
    """
    g = check_probability("gamma", gamma)
    lmb = check_probability("lam", lam)
    r, v, m = _token_inputs(rewards, values, mask)
    b = r.shape[0]
    if bootstrap is None:
        next_v = torch.zeros(b, dtype=r.dtype, device=r.device)
    else:
        bs = check_float_tensor("bootstrap", bootstrap, ndim=1)
        if bs.shape[0] != b:
            raise ValueError(f"bootstrap must have shape [{b}], got {tuple(bs.shape)}")
        check_finite_tensor("bootstrap", bs)
        next_v = bs.to(r.dtype)
    last = torch.zeros(b, dtype=r.dtype, device=r.device)
    out = torch.zeros_like(r)
    for t in range(r.shape[1] - 1, -1, -1):
        mt = m[:, t]
        delta = r[:, t] + g * next_v - v[:, t]
        cand = delta + g * lmb * last
        last = torch.where(mt, cand, last)
        next_v = torch.where(mt, v[:, t], next_v)
        out[:, t] = torch.where(mt, cand, torch.zeros_like(cand))
    return out


def tppo_extended_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None,
    truncated: torch.Tensor,
    *,
    gamma: float = 1.0,
    lam: float = 0.95,
) -> torch.Tensor:
    """T-PPO's Extended GAE (EGAE) for responses cut off mid-generation.

    For a response that terminated, ordinary GAE (V after the end = 0). For a truncated response
    (generation window ended before EOS), the state after the last generated token is not terminal;
    its value is unknown, so the last valid token's own value estimate V(s_l) stands in for it:
    δ_l = r_l + γ V(s_l) − V(s_l), and the recursion runs backwards as usual. This makes advantages
    of the generated prefix available before the response completes.

    Shapes: rewards[B, T], values[B, T], mask[B, T], truncated[B] (bool) -> [B, T].

    References: Fan et al. (2025), "Truncated Proximal Policy Optimization", Sec. 3.1 (EGAE);
    the bootstrap choice V(s_{l+1}) ≈ V(s_l) is our reading of it ("derived here").
    """
    r, v, m = _token_inputs(rewards, values, mask)
    if not isinstance(truncated, torch.Tensor) or truncated.dtype != torch.bool or truncated.shape != (r.shape[0],):
        got = f"{truncated.dtype} {tuple(truncated.shape)}" if isinstance(truncated, torch.Tensor) else type(truncated).__name__
        raise ValueError(f"truncated must be a bool tensor of shape [{r.shape[0]}], got {got}")
    t_idx = torch.arange(r.shape[1], device=r.device).expand_as(m)
    last_idx = torch.where(m, t_idx, torch.full_like(t_idx, -1)).amax(dim=1)
    has = last_idx >= 0
    last_v = v.gather(1, last_idx.clamp(min=0).unsqueeze(1)).squeeze(1)
    boot = torch.where(truncated & has, last_v, torch.zeros_like(last_v))
    return gae(r, v, m, gamma=gamma, lam=lam, bootstrap=boot)


# ----------------------------------------------------------------------------- DRPO, IGPO, EMPG, duration


def drpo_weights(
    length_rewards: torch.Tensor,
    correct: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    lam: float = 1.0,
) -> torch.Tensor:
    """DRPO's decoupled per-response weights (the closed-form positive distribution).

    DRPO replaces the positive-data distribution of the discriminative objective by
    P*(o|q) ∝ π_old(o|q) · 1[o correct] · exp(r_l(o)/λ), the maximizer of E_P[r_l] − λ·KL(P ‖ π_old⁺).
    With responses sampled from π_old, self-normalized importance weights give
    w_i = exp(r_l,i/λ) / Σ_{j correct} exp(r_l,j/λ) for correct i (Σ w = 1, all > 0 — a correct
    response is never pushed down, however long), and w_i = −1/n_neg for incorrect i.
    The surrogate Σ_i w_i · s_θ(o_i) is the decoupled objective's gradient weighting.
    A group with no correct (or no incorrect) responses gives zeros on that side.

    Shapes: length_rewards[B, G], correct[B, G] (bool), mask[B, G] -> weights[B, G].
    Raises ValueError if lam <= 0.

    References: Li, Chen, Lin, Yang (2025), "DRPO: Efficient Reasoning via Decoupled Reward Policy
    Optimization", Sec. 4 (closed-form P*); the per-sample weights are derived here.
    """
    lmb = check_positive_scalar("lam", lam)
    r, m = _group_inputs(length_rewards, mask)
    if not isinstance(correct, torch.Tensor) or correct.dtype != torch.bool or correct.shape != r.shape:
        raise ValueError(f"correct must be a bool tensor of shape {tuple(r.shape)}")
    pos = m & correct
    neg = m & ~correct
    logits = torch.where(pos, r / lmb, torch.full_like(r, -float("inf")))
    any_pos = pos.any(dim=1, keepdim=True)
    w_pos = torch.softmax(torch.where(any_pos, logits, torch.zeros_like(logits)), dim=1)
    w_pos = torch.where(pos, w_pos, torch.zeros_like(w_pos))
    n_neg = neg.sum(dim=1, keepdim=True).clamp(min=1).to(r.dtype)
    return torch.where(pos, w_pos, torch.where(neg, -1.0 / n_neg, torch.zeros_like(r)))


def igpo_turn_rewards(answer_logps: torch.Tensor, outcome: torch.Tensor, turn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """IGPO's turn-level information-gain rewards.

    p_t = exp( (1/L) Σ_j log π(a_j | q, o_≤t, a_<j) ) is the policy's (length-normalized) probability
    of the ground-truth answer after t turns (t = 0: prompt only). Turn t = 1..K−1 earns
    r_t = p_t − p_{t−1}; the last valid turn earns the outcome reward (e.g. answer F1).

    Shapes: answer_logps[B, K+1] (mean token log-prob of the answer after 0..K turns), outcome[B],
    turn_mask[B, K] (valid turns, a prefix) -> rewards[B, K]; 0 on masked turns.

    References: Wang et al. (2025), "Information Gain-based Policy Optimization: A Simple and
    Effective Approach for Multi-Turn LLM Agents", Sec. 3.2, eqs. (4)-(6).
    """
    lp = check_float_tensor("answer_logps", answer_logps, ndim=2)
    if lp.shape[1] < 2:
        raise ValueError(f"answer_logps must have K+1 >= 2 columns (before and after each turn), got {tuple(lp.shape)}")
    o = check_float_tensor("outcome", outcome, ndim=1)
    if o.shape[0] != lp.shape[0]:
        raise ValueError(f"outcome must have shape [{lp.shape[0]}], got {tuple(o.shape)}")
    check_finite_tensor("outcome", o)
    b, k = lp.shape[0], lp.shape[1] - 1
    m = masked_or_ones("turn_mask", turn_mask, (b, k), lp.device)
    n_turns = m.sum(dim=1)
    if bool((n_turns == 0).any()):
        raise ValueError(f"turn_mask selects no turn for row {int(torch.nonzero(n_turns == 0)[0])}")
    expect = torch.arange(k, device=lp.device).unsqueeze(0) < n_turns.unsqueeze(1)
    if not bool((expect == m).all()):
        raise ValueError("turn_mask must be a prefix mask (valid turns first, then padding)")
    valid_lp = torch.cat([torch.ones_like(m[:, :1]), m], dim=1)
    check_finite_tensor("answer_logps", torch.where(valid_lp, lp, torch.zeros_like(lp)))
    p = torch.where(valid_lp, lp, torch.zeros_like(lp)).exp()
    gain = p[:, 1:] - p[:, :-1]
    is_last = torch.arange(k, device=lp.device).unsqueeze(0) == (n_turns - 1).unsqueeze(1)
    out = torch.where(is_last, o.unsqueeze(1).to(gain.dtype), gain)
    return torch.where(m, out, torch.zeros_like(out))


def igpo_advantages(
    turn_rewards: torch.Tensor, turn_mask: torch.Tensor | None = None, *, gamma: float = 1.0, eps: float = 1e-6
) -> torch.Tensor:
    """IGPO's turn-level advantages: group z-normalization, then discounted sums.

    r̃_{i,t} = (r_{i,t} − mean(R)) / (std(R) + eps) over every valid turn reward R of the group;
    A_{i,t} = Σ_{k ≥ t} γ^{k−t} r̃_{i,k} (over valid turns of response i). Each token of turn t
    takes A_{i,t}. A group whose turn rewards are all equal gets 0.

    Shapes: turn_rewards[B, G, K], turn_mask[B, G, K] -> [B, G, K].

    References: Wang et al. (2025), "Information Gain-based Policy Optimization", Sec. 3.3.
    """
    g_ = check_probability("gamma", gamma)
    e = check_nonnegative_scalar("eps", eps)
    r = check_float_tensor("turn_rewards", turn_rewards, ndim=3)
    b, g, k = r.shape
    m = masked_or_ones("turn_mask", turn_mask, r.shape, r.device)
    flat_r, flat_m = r.reshape(b, g * k), m.reshape(b, g * k)
    z = grpo(flat_r, flat_m, eps=e, unbiased=False).reshape(b, g, k)
    out = torch.zeros_like(r)
    run = torch.zeros(b, g, dtype=r.dtype, device=r.device)
    for t in range(k - 1, -1, -1):
        mt = m[:, :, t]
        cand = z[:, :, t] + g_ * run
        run = torch.where(mt, cand, run)
        out[:, :, t] = torch.where(mt, cand, torch.zeros_like(cand))
    return out


def empg_modulate(
    advantages: torch.Tensor,
    step_entropy: torch.Tensor,
    step_mask: torch.Tensor | None = None,
    *,
    k: float = 1.0,
    k_f: float = 1.0,
    zeta: float = 0.1,
    eps: float = 1e-8,
) -> torch.Tensor:
    """EMPG's entropy-modulated step advantages.

    H_norm = (H − min H)/(max H − min H + eps) over all valid steps of the batch;
    g(H) = exp(−k·H_norm) / mean_batch(exp(−k·H_norm))  (self-calibrating scale, batch mean 1);
    f(H) = exp(−k_f·H_norm)  (future-clarity bonus);
    A_mod(i, t) = g(H_{i,t}) · A_i + ζ · f(H_{i,t+1})  (no bonus on a trajectory's last step).
    Confident steps (low entropy) get amplified updates in either direction, uncertain ones damped.

    Shapes: advantages[B] (trajectory advantage) or [B, T], step_entropy[B, T] (mean token entropy
    of each step), step_mask[B, T] -> [B, T].

    References: Liu et al. (2025), "Harnessing Uncertainty: Entropy-Modulated Policy Gradients for
    Long-Horizon LLM Agents", eqs. (10)-(12).
    """
    kk = check_nonnegative_scalar("k", k)
    kf = check_nonnegative_scalar("k_f", k_f)
    zt = check_nonnegative_scalar("zeta", zeta)
    e = check_positive_scalar("eps", eps)
    h = check_float_tensor("step_entropy", step_entropy, ndim=2)
    a = check_float_tensor("advantages", advantages, ndim=(1, 2))
    if a.ndim == 1:
        if a.shape[0] != h.shape[0]:
            raise ValueError(f"advantages must have shape [{h.shape[0]}] or {tuple(h.shape)}, got {tuple(a.shape)}")
        a = a.unsqueeze(1).expand_as(h)
    check_same_shape(("step_entropy", "advantages"), (h, a))
    m = masked_or_ones("step_mask", step_mask, h.shape, h.device)
    if not bool(m.any()):
        raise ValueError("step_mask selects no step")
    zero = torch.zeros_like(h)
    check_finite_tensor("step_entropy", torch.where(m, h, zero))
    check_finite_tensor("advantages", torch.where(m, a, zero))
    big = torch.finfo(h.dtype).max
    lo = torch.where(m, h, torch.full_like(h, big)).min()
    hi = torch.where(m, h, torch.full_like(h, -big)).max()
    hn = (h - lo) / (hi - lo + e)
    raw = torch.exp(-kk * hn)
    gscale = raw / _masked_mean(raw, m)
    f = torch.exp(-kf * hn)
    f_next = torch.cat([f[:, 1:], torch.zeros_like(f[:, :1])], dim=1)
    m_next = torch.cat([m[:, 1:], torch.zeros_like(m[:, :1])], dim=1)
    out = gscale * a + zt * torch.where(m_next, f_next, zero)
    return torch.where(m, out, zero)


def duration_aware_weights(advantages: torch.Tensor, durations: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Duration-aware advantage weighting for variable-duration actions.

    In asynchronous RL fast actions finish (and are updated on) more often; weighting each sample's
    policy-gradient term by its execution time Δt_i cancels that frequency bias:
    A'_i = (Δt_i / mean_valid(Δt)) · A_i. Dividing by the mean duration keeps the update's scale
    (derived here); the direction equals the paper's Δt-weighted update.

    Shapes: advantages[...], durations[...] (> 0), mask[...] -> [...].

    References: Yang et al. (2025), "Reinforcement Learning for Machine Learning Engineering Agents",
    Sec. 3.1 (duration-aware gradient updates).
    """
    a = check_float_tensor("advantages", advantages)
    d = check_float_tensor("durations", durations)
    check_same_shape(("advantages", "durations"), (a, d))
    m = masked_or_ones("mask", mask, a.shape, a.device)
    if not bool(m.any()):
        raise ValueError("mask selects no entries")
    dv = torch.where(m, d, torch.ones_like(d))
    check_finite_tensor("durations", dv)
    if bool((dv <= 0).any()):
        idx = tuple(int(i) for i in torch.nonzero(dv <= 0)[0])
        raise ValueError(f"durations must be > 0; durations[{', '.join(map(str, idx))}] = {float(d[idx])!r}")
    check_finite_tensor("advantages", torch.where(m, a, torch.zeros_like(a)))
    out = a * dv / _masked_mean(dv, m)
    return torch.where(m, out, torch.zeros_like(out))
