"""Advantage estimators: the group and token-level core used by the seed papers' LLM RL recipes.

Group-based estimators take ``rewards[B, G]``: B prompts, G sampled responses per prompt, and an
optional ``mask[B, G]`` (bool, or 0/1 integer/float) marking the real responses (padding for
groups of unequal size). Masked entries never enter a statistic and get advantage 0, so padding
never changes a result. A group whose valid rewards are all equal gets advantage exactly 0 (never
NaN, and with a zero — never NaN — gradient): the normalizers divide only where the spread is
non-zero.

Numerics: statistics are accumulated in fp32 for half-precision rewards (fp64 for fp64) on values
scaled by their largest magnitude, so fp16 rewards of 600 or fp64 rewards of ±1e200 do not
overflow when squared; the result is returned in the rewards' dtype.

Ragged groups (a variable number of responses per prompt, identified by an id per response as verl's
``index``/``uid``): :func:`group_by_index` packs flat scores[N] into the padded ``[K, G]`` layout above,
:func:`grouped_advantages` runs any group estimator on it and returns advantages[N] in the input order.

Token-level estimators (GAE, T-PPO's extended GAE) take ``[B, T]`` tensors and a token mask;
masked tokens are skipped (the recursion runs over the valid tokens in order).

Paper-specific weightings live with their family and are re-exported here under their old names:
``dler_batch_normalized`` and ``drpo_weights`` in :mod:`rlref.llm.length`; ``igpo_turn_rewards``,
``igpo_advantages``, ``empg_modulate``, ``duration_aware_weights`` in :mod:`rlref.llm.agents`.

References are given per function; "derived here" marks what we derived from the described math.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch

from rlref.llm._checks import (
    check_any,
    check_bool_tensor,
    check_finite_tensor,
    check_float_tensor,
    check_group_rewards,
    check_nonnegative_scalar,
    check_probability,
    check_same_shape,
    masked_or_ones,
)
from rlref.llm._ops import acc_dtype, flat_group, masked_mean, masked_std, safe_div

_MOVED = {
    "dler_batch_normalized": "length",
    "drpo_weights": "length",
    "igpo_turn_rewards": "agents",
    "igpo_advantages": "agents",
    "empg_modulate": "agents",
    "duration_aware_weights": "agents",
}

__all__ = [
    "GroupedScores",
    "group_by_index",
    "grouped_advantages",
    "GROUP_ESTIMATORS",
    "grpo",
    "dr_grpo",
    "rloo",
    "reinforce_pp",
    "group_mean_batch_std",
    "gae",
    "tppo_extended_gae",
]
__all__ += list(_MOVED)  # re-exported from the family modules (loaded on first access)


def __getattr__(name: str) -> object:
    if name in _MOVED:
        return getattr(importlib.import_module(f"rlref.llm.{_MOVED[name]}"), name)
    raise AttributeError(f"module 'rlref.llm.advantages' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MOVED))


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
    r, m = check_group_rewards(rewards, mask)
    ra = r.to(acc_dtype(r.dtype))
    adv = safe_div(ra - masked_mean(ra, m, dim=1), masked_std(ra, m, dim=1, unbiased=unbiased), e)
    return torch.where(m & ~flat_group(r, m), adv, torch.zeros_like(adv)).to(r.dtype)


def dr_grpo(rewards: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Dr. GRPO advantage: the group mean baseline without std normalization.

    A_i = r_i − mean_g(r). (Dr. GRPO also drops GRPO's 1/|o_i| length normalization: use
    ``ppo_clip(..., aggregation="constant")`` for the loss.) Invariant to r -> r + c.

    Shapes: rewards[B, G], mask[B, G] -> [B, G].

    References: Liu et al. (2025), "Understanding R1-Zero-Like Training: A Critical Perspective",
    Sec. 3.2, eq. (3).
    """
    r, m = check_group_rewards(rewards, mask)
    ra = r.to(acc_dtype(r.dtype))
    adv = ra - masked_mean(ra, m, dim=1)
    return torch.where(m & ~flat_group(r, m), adv, torch.zeros_like(adv)).to(r.dtype)


def rloo(rewards: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """REINFORCE leave-one-out advantage.

    A_i = r_i − (1/(k−1)) Σ_{j≠i} r_j = k/(k−1) · (r_i − mean_g(r)),  k = valid responses in the
    group (k >= 2). The baseline does not depend on r_i, so the estimator is unbiased.

    Shapes: rewards[B, G], mask[B, G] -> [B, G]. Raises ValueError if a group has fewer than 2 valid responses.

    References: Kool, van Hoof, Welling (2019), "Buy 4 REINFORCE samples, get a baseline for free!";
    Ahmadian et al. (2024), "Back to Basics: Revisiting REINFORCE Style Optimization ...", eq. (5).
    """
    r, m = check_group_rewards(rewards, mask, min_valid=2)
    ra = r.to(acc_dtype(r.dtype))
    k = m.sum(dim=1, keepdim=True).to(ra.dtype)
    # r_i − mean_{j≠i} r_j = k/(k−1) · (r_i − mean_g r), with the overflow-safe mean
    adv = k / (k - 1) * (ra - masked_mean(ra, m, dim=1))
    return torch.where(m & ~flat_group(r, m), adv, torch.zeros_like(adv)).to(r.dtype)


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
    check_any("mask", m, "entries (REINFORCE++ needs at least one valid reward)")
    check_finite_tensor("rewards", torch.where(m, r, torch.zeros_like(r)))
    flat = flat_group(r.reshape(1, -1), m.reshape(1, -1)).reshape(())
    ra = r.to(acc_dtype(r.dtype))
    adv = safe_div(ra - masked_mean(ra, m), masked_std(ra, m, dim=None, unbiased=False), e)
    return torch.where(m & ~flat, adv, torch.zeros_like(adv)).to(r.dtype)


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
    r, m = check_group_rewards(rewards, mask)
    ra = r.to(acc_dtype(r.dtype))
    adv = safe_div(ra - masked_mean(ra, m, dim=1), masked_std(ra, m, dim=None, unbiased=False), e)
    return torch.where(m & ~flat_group(r, m), adv, torch.zeros_like(adv)).to(r.dtype)


# ----------------------------------------------------------------------------- ragged groups


@dataclass(frozen=True)
class GroupedScores:
    """Flat per-response scores packed into padded groups (see :func:`group_by_index`).

    ``rewards[K, G]`` (K groups in order of first appearance, G = largest group; a padded slot holds the
    group's *first* score, so mask-less min/max statistics are unchanged — still pass ``mask``),
    ``mask[K, G]`` (bool, the real responses), ``row[N]``/``col[N]`` (int64: response n sits at
    ``rewards[row[n], col[n]]``, responses keep their input order within a group), ``sizes[K]`` (int64)
    and ``keys`` (the group id of each row).
    """

    rewards: torch.Tensor
    mask: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    sizes: torch.Tensor
    keys: tuple

    def pack(self, values: torch.Tensor) -> torch.Tensor:
        """Per-response values[N, ...] -> [K, G, ...] in the same layout (padding repeats the group's first value)."""
        v = values if isinstance(values, torch.Tensor) else torch.as_tensor(values)
        if v.ndim < 1 or v.shape[0] != self.row.shape[0]:
            raise ValueError(f"values must have {self.row.shape[0]} rows (one per response), got shape {tuple(v.shape)}")
        first = v[self._first]  # [K, ...]
        out = first.unsqueeze(1).expand(first.shape[0], self.mask.shape[1], *first.shape[1:]).clone()
        out[self.row, self.col] = v
        return out

    def ungroup(self, values: torch.Tensor) -> torch.Tensor:
        """Grouped values[K, G, ...] -> per-response [N, ...] in the input order (``values[row, col]``)."""
        if not isinstance(values, torch.Tensor) or tuple(values.shape[:2]) != tuple(self.mask.shape):
            got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"values must have leading shape {tuple(self.mask.shape)} (groups, slots), got {got}")
        return values[self.row, self.col]

    @property
    def _first(self) -> torch.Tensor:
        n = self.row.shape[0]
        first = torch.full((self.mask.shape[0],), n, dtype=torch.int64, device=self.row.device)
        return first.scatter_reduce(0, self.row, torch.arange(n, device=self.row.device), reduce="amin")


def _index_keys(index: object, n: int) -> list:
    if isinstance(index, torch.Tensor):
        if index.ndim != 1 or torch.is_floating_point(index) or torch.is_complex(index):
            raise ValueError(f"index must be a 1-D integer tensor or a sequence of hashable ids, got {index.dtype} {tuple(index.shape)}")
        keys = index.tolist()
    elif hasattr(index, "tolist") and getattr(index, "ndim", 1) == 1:  # a numpy array (verl's uid array of str)
        keys = index.tolist()
    elif isinstance(index, Sequence) and not isinstance(index, str | bytes):
        keys = list(index)
    else:
        raise ValueError(f"index must be a 1-D sequence of group ids (one per response), got {type(index).__name__}")
    if len(keys) != n:
        raise ValueError(f"index must hold one group id per score ({n}), got {len(keys)}")
    for i, k in enumerate(keys):
        if not isinstance(k, Hashable):
            raise ValueError(f"index[{i}] = {k!r} is not hashable (a group id must be a str, int, ...)")
    return keys


def group_by_index(scores: torch.Tensor, index: object) -> GroupedScores:
    """Pack per-response scores[N] into groups given by a group id per response (verl's ``index``).

    Responses with equal ids form a group (any size ≥ 1, ids need not be contiguous); groups are
    numbered in order of first appearance and responses keep their order inside a group, so for
    contiguous equal-size groups ``rewards`` is ``scores.view(K, G)``. The result feeds every
    ``[B, G]`` estimator of this module through its ``mask`` (see :func:`grouped_advantages`).

    Shapes: scores[N] (float, finite), index: N hashable ids (list, tuple, numpy array, 1-D integer
    tensor) -> :class:`GroupedScores`. Raises ValueError on a length mismatch, N = 0, a non-finite score
    or an unhashable id.

    References: verl 0.9.1, verl/trainer/ppo/core_algos.py (``compute_grpo_outcome_advantage``: groups
    of the ``uid`` array, the convention followed here).
    """
    s = check_float_tensor("scores", scores, ndim=1)
    n = s.shape[0]
    if n == 0:
        raise ValueError("scores must hold at least one response, got shape (0,)")
    check_finite_tensor("scores", s)
    keys = _index_keys(index, n)
    slot: dict = {}
    rows, cols, counts = [], [], []
    for k in keys:
        r = slot.setdefault(k, len(slot))
        if r == len(counts):
            counts.append(0)
        rows.append(r)
        cols.append(counts[r])
        counts[r] += 1
    dev = s.device
    row = torch.tensor(rows, dtype=torch.int64, device=dev)
    col = torch.tensor(cols, dtype=torch.int64, device=dev)
    sizes = torch.tensor(counts, dtype=torch.int64, device=dev)
    mask = torch.arange(int(sizes.max()), device=dev).unsqueeze(0) < sizes.unsqueeze(1)
    g = GroupedScores(rewards=s.new_zeros(mask.shape), mask=mask, row=row, col=col, sizes=sizes, keys=tuple(slot))
    return GroupedScores(rewards=g.pack(s), mask=mask, row=row, col=col, sizes=sizes, keys=g.keys)


GROUP_ESTIMATORS: dict[str, Callable[..., torch.Tensor]] = {}  # filled below the estimators' definitions


def grouped_advantages(scores: torch.Tensor, index: object, estimator: str | Callable[..., torch.Tensor] = "grpo",
                       **kwargs: object) -> torch.Tensor:
    """Any group estimator on ragged groups: ``ungroup(estimator(rewards[K, G], mask, **kwargs))``.

    ``estimator`` is a name of ``GROUP_ESTIMATORS`` ("grpo", "dr_grpo", "rloo", "reinforce_pp",
    "group_mean_batch_std", "dler_batch_normalized") or a callable ``f(rewards[K, G], mask[K, G], **kwargs)
    -> [K, G]``. Equal, response by response, to running the estimator group by group (tested against a
    loop written out by hand). A single-response group gets advantage 0 from the std/mean estimators
    (its reward is its own baseline) and makes ``rloo`` raise (no leave-one-out baseline); verl instead
    gives it its raw score (``rlref.llm.adapters.verl`` offers that behaviour).

    Shapes: scores[N], index N ids -> advantages[N] (the scores' dtype).

    References: as the chosen estimator; grouping as :func:`group_by_index`.
    """
    g = group_by_index(scores, index)
    if isinstance(estimator, str):
        fn = GROUP_ESTIMATORS.get(estimator)
        if fn is None:
            raise ValueError(f"estimator must be one of {sorted(GROUP_ESTIMATORS)} or a callable, got {estimator!r}")
    elif callable(estimator):
        fn = estimator
    else:
        raise ValueError(f"estimator must be a name or a callable, got {type(estimator).__name__}")
    adv = fn(g.rewards, g.mask, **kwargs)
    if not isinstance(adv, torch.Tensor) or tuple(adv.shape) != tuple(g.mask.shape):
        got = tuple(adv.shape) if isinstance(adv, torch.Tensor) else type(adv).__name__
        raise ValueError(f"estimator must return a tensor of shape {tuple(g.mask.shape)} (groups, slots), got {got}")
    return g.ungroup(adv)


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
    check_bool_tensor("truncated", truncated, (r.shape[0],))
    t_idx = torch.arange(r.shape[1], device=r.device).expand_as(m)
    last_idx = torch.where(m, t_idx, torch.full_like(t_idx, -1)).amax(dim=1)
    has = last_idx >= 0
    last_v = v.gather(1, last_idx.clamp(min=0).unsqueeze(1)).squeeze(1)
    boot = torch.where(truncated & has, last_v, torch.zeros_like(last_v))
    return gae(r, v, m, gamma=gamma, lam=lam, bootstrap=boot)


def _dler(rewards: torch.Tensor, mask: torch.Tensor | None = None, **kwargs: object) -> torch.Tensor:
    return importlib.import_module("rlref.llm.length").dler_batch_normalized(rewards, mask, **kwargs)


GROUP_ESTIMATORS.update({"grpo": grpo, "dr_grpo": dr_grpo, "rloo": rloo, "reinforce_pp": reinforce_pp,
                         "group_mean_batch_std": group_mean_batch_std, "dler_batch_normalized": _dler})
