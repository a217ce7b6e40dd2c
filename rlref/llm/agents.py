"""Multi-turn and agentic RL for LLMs: turn-level credit, step-level modulation, duration weights.

Papers (titles from the seed list):

* Wang et al. (2025), "Information Gain-based Policy Optimization: A Simple and Effective Approach
  for Multi-Turn LLM Agents" (IGPO) — :func:`igpo_turn_rewards`, :func:`igpo_advantages`.
* Wang, Liu, Fu et al. (2025), "Harnessing Uncertainty: Entropy-Modulated Policy Gradients for Long-Horizon
  LLM Agents" (EMPG) — :func:`empg_modulate`.
* Yang et al. (2025), "Reinforcement Learning for Machine Learning Engineering Agents" — the
  duration-aware update (:func:`duration_aware_weights`).
* "Scaling LLM Multi-turn RL with End-to-end Summarization-based Context Management" (SUPO) —
  :func:`supo_segment_advantages` (policy gradient over summarization-truncated trajectories).

Group normalization comes from :func:`rlref.llm.advantages.grpo`.
"""

from __future__ import annotations

import torch

from rlref.llm._checks import (
    check_any,
    check_finite_tensor,
    check_float_tensor,
    check_nonnegative_scalar,
    check_positive_scalar,
    check_positive_tensor,
    check_probability,
    check_same_shape,
    first_index,
    is_meta,
    masked_or_ones,
)
from rlref.llm._ops import masked_mean
from rlref.llm.advantages import grpo

__all__ = ["igpo_turn_rewards", "igpo_advantages", "empg_modulate", "duration_aware_weights", "supo_segment_advantages"]


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
    expect = torch.arange(k, device=lp.device).unsqueeze(0) < n_turns.unsqueeze(1)
    if not is_meta(m):
        if bool((n_turns == 0).any()):
            raise ValueError(f"turn_mask selects no turn for row {first_index(n_turns == 0)[0]}")
        if not bool((expect == m).all()):
            bad = list(first_index(expect != m))
            raise ValueError(f"turn_mask must be a prefix mask (valid turns first, then padding); turn_mask{bad} breaks it")
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

    References: Wang et al. (2025), "Information Gain-based Policy Optimization" (arXiv 2510.14967),
    Sec. 3.3 (the form above: group z-score of all turn rewards, then discounted sums). The authors'
    release (github.com/GuoqingWang1/IGPO @ bff163b, verl/trainer/ppo/core_algos.py
    ``compute_grpo_outcome_advantage``) differs: it places the turn rewards on tokens, takes per-token
    returns (γ = 1) and subtracts the group mean at each token position, without std normalization;
    the paper's form is kept here.
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

    References: Wang, Liu, Fu et al. (2025, arXiv 2509.09265), "Harnessing Uncertainty: Entropy-Modulated Policy Gradients for
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
    check_any("step_mask", m, "step")
    zero = torch.zeros_like(h)
    check_finite_tensor("step_entropy", torch.where(m, h, zero))
    check_finite_tensor("advantages", torch.where(m, a, zero))
    big = torch.finfo(h.dtype).max
    lo = torch.where(m, h, torch.full_like(h, big)).min()
    hi = torch.where(m, h, torch.full_like(h, -big)).max()
    hn = (h - lo) / (hi - lo + e)
    raw = torch.exp(-kk * hn)
    gscale = raw / masked_mean(raw, m)
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
    check_any("mask", m, "entries")
    dv = torch.where(m, d, torch.ones_like(d))
    check_positive_tensor("durations", dv)
    check_finite_tensor("advantages", torch.where(m, a, torch.zeros_like(a)))
    out = a * dv / masked_mean(dv, m)
    return torch.where(m, out, torch.zeros_like(out))



def supo_segment_advantages(trajectory_rewards: torch.Tensor, segment_trajectory: torch.Tensor, mask: torch.Tensor | None = None, *,
                            eps: float = 1e-6) -> torch.Tensor:
    """SUPO's advantages for summarization-truncated trajectories: every segment shares its trajectory's.

    With summarization-based context management a trajectory τ is a sequence of segments: each
    working context ends with an LLM-written summary that replaces the history, and the next segment
    is generated from (prompt, summary) only. Because each segment's context is a deterministic
    function of the tokens before it, log p_θ(τ) = Σ_k log p_θ(segment_k | context_k), so
    ∇E[R] = E[R(τ) Σ_k ∇log p_θ(segment_k | context_k)]: each segment is trained as an ordinary
    sequence (its tool calls *and* its summary tokens are actions) with the trajectory's advantage —
    here GRPO's group-normalized trajectory reward. Feed the segments as rows to ``ppo_clip`` with
    these advantages.

    Shapes: trajectory_rewards[B, G] (G trajectories per prompt), segment_trajectory[S] (int: the flat
    trajectory index b·G + g of each segment), mask[B, G] -> advantages[S].

    References: "Scaling LLM Multi-turn RL with End-to-end Summarization-based Context Management"
    (SUPO, 2025), Sec. 3 (the policy-gradient representation over summarized segments); the
    decomposition is restated (derived) here from the abstract.
    """
    a = grpo(trajectory_rewards, mask, eps=eps)
    flat = a.reshape(-1)
    idx = segment_trajectory
    if not isinstance(idx, torch.Tensor) or idx.ndim != 1 or torch.is_floating_point(idx) or idx.dtype == torch.bool:
        raise ValueError(f"segment_trajectory must be a 1-D integer tensor of trajectory indices, got {idx!r}")
    if not is_meta(idx):
        bad = (idx < 0) | (idx >= flat.shape[0])
        if bool(bad.any()):
            j = first_index(bad)[0]
            raise ValueError(f"segment_trajectory must lie in [0, {flat.shape[0]}); segment_trajectory[{j}] = {int(idx[j])}")
    return flat[idx.long()]
