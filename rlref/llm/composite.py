"""Composite and checklist rewards for long-form generation: one module for this family of seed papers.

Papers (titles from the seed list):

* "ACE-RL: Adaptive Constraint-Enhanced Reward for Long-form Generation Reinforcement Learning" —
  :func:`ace_rl_constraint_reward` (the fraction of an instruction's verifiable constraints a response
  satisfies, fed to GRPO).
* Wu, Bai, Hu, Lee, Li (2025), "LongWriter-Zero: Mastering Ultra-Long Text Generation via Reinforcement
  Learning" (arXiv 2506.18841) — :func:`longwriter_zero_advantages` (each reward model's scores are
  group-normalized separately, then the advantages are averaged).

Group normalization is :func:`rlref.llm.advantages.grpo`.
"""

from __future__ import annotations

import torch

from rlref.llm._checks import check_float_tensor, check_mask, check_nonnegative_scalar, first_index, is_meta, masked_or_ones
from rlref.llm._ops import zero_masked
from rlref.llm.advantages import grpo

__all__ = ["ace_rl_constraint_reward", "longwriter_zero_advantages"]


def ace_rl_constraint_reward(satisfied: torch.Tensor, constraint_mask: torch.Tensor | None = None) -> torch.Tensor:
    """ACE-RL's constraint-satisfaction reward: r = (1/|C_q|) Σ_{c∈C_q} 1[response satisfies c].

    Each instruction q is deconstructed into a checklist C_q of fine-grained, verifiable constraints
    (a variable number per instruction: ``constraint_mask``); a verifier marks which ones each response
    meets (``satisfied``, bool or 0/1). The reward is the satisfied fraction, in [0, 1], and the policy is
    trained with GRPO on it.

    Shapes: satisfied[B, G, K], constraint_mask[B, K] (True on the instruction's real constraints;
    each instruction needs at least one) -> rewards[B, G] in the default float dtype.

    References: "ACE-RL: Adaptive Constraint-Enhanced Reward for Long-form Generation Reinforcement
    Learning" (2025), Sec. 3 (constraint verification reward; the satisfied fraction is the reading of
    "quantifies the quality ... based on their satisfaction over corresponding constraints").
    """
    if not isinstance(satisfied, torch.Tensor) or satisfied.ndim != 3:
        got = tuple(satisfied.shape) if isinstance(satisfied, torch.Tensor) else type(satisfied).__name__
        raise ValueError(f"satisfied must be a [B, G, K] tensor, got {got}")
    sat = check_mask("satisfied", satisfied, satisfied.shape)
    b, _, k = sat.shape
    cm = masked_or_ones("constraint_mask", constraint_mask, (b, k), sat.device)
    n = cm.sum(dim=1)
    if not is_meta(n) and bool((n == 0).any()):
        raise ValueError(f"constraint_mask[{first_index(n == 0)[0]}] selects no constraint: every instruction needs at least one")
    hits = (sat & cm.unsqueeze(1)).sum(dim=2).to(torch.get_default_dtype())
    return hits / n.unsqueeze(1).to(hits.dtype)


def longwriter_zero_advantages(rewards: torch.Tensor, mask: torch.Tensor | None = None, *, weights: torch.Tensor | None = None,
                               eps: float = 1e-6, unbiased: bool = True) -> torch.Tensor:
    """LongWriter-Zero's composite advantage: group-normalize each reward model, then average.

    A_i = Σ_k w_k · (r_{k,i} − mean_g r_k) / (std_g r_k + eps),  w_k = 1/K by default,
    for K reward models (length, writing quality, format). Normalizing each reward separately keeps a
    reward with a large scale or spread from drowning the others; a reward model that is flat on a
    group contributes 0 there (GRPO's convention).

    Shapes: rewards[K, B, G], mask[B, G], weights[K] (>= 0, summing to 1) -> [B, G].

    References: Wu et al. (2025), "LongWriter-Zero" (arXiv 2506.18841), Sec. 3 (composite reward:
    per-reward-model group-normalized advantages, averaged); Shao et al. (2024), DeepSeekMath (GRPO).
    """
    r = check_float_tensor("rewards", rewards, ndim=3)
    kk = r.shape[0]
    if kk == 0:
        raise ValueError("rewards must hold at least one reward model (K >= 1), got shape (0, ...)")
    if weights is None:
        w = torch.full((kk,), 1.0 / kk, dtype=r.dtype, device=r.device)
    else:
        w = check_float_tensor("weights", weights, ndim=1)
        if w.shape[0] != kk:
            raise ValueError(f"weights must have shape [{kk}] (one per reward model), got {tuple(w.shape)}")
        for i, x in enumerate(w.tolist()):
            check_nonnegative_scalar(f"weights[{i}]", x)
        if abs(float(w.sum()) - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1, got {float(w.sum())!r}")
    e = check_nonnegative_scalar("eps", eps)
    advs = torch.stack([grpo(r[k], mask, eps=e, unbiased=unbiased) for k in range(kk)])
    out = (w.to(advs.dtype).view(kk, 1, 1) * advs).sum(dim=0)
    m = masked_or_ones("mask", mask, r.shape[1:], r.device)
    return zero_masked(out, m)
