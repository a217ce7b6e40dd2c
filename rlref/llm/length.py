"""Length and efficiency of reasoning: rewards, shaping, budgets and decoding-side controls.

One module for the length-efficiency family of seed papers (titles from the seed list):

* Liu et al. (2025), "DLER: Doing Length pEnalty Right" — :func:`dler_truncation_reward`,
  :func:`dler_difficulty_budgets`, :func:`dler_batch_normalized`.
* "Towards Efficient Reasoning for Small Models: Temperature Scaling and TLDR" —
  :func:`tldr_budget_reward`, :class:`EndOfThinkingScaling`.
* Kimi Team (2025), "Kimi k1.5: Scaling Reinforcement Learning with LLMs" — :func:`kimi_length_reward`.
* Yu et al. (2025), "DAPO" — :func:`dapo_overlong_penalty`.
* Yeo et al. (2025), "Demystifying Long Chain-of-Thought Reasoning in LLMs" — :func:`cosine_length_reward`.
* "GRPO-λ: Stable and Efficient RL for Reasoning with Length-Penalty Switching" — :func:`grpo_lambda_reward`.
* Huang et al. (2025), "HAPO: Training Language Models to Reason Concisely via History-Aware Policy
  Optimization" — :class:`HistoryAwareReward`.
* Hammoud et al. (2025), "Train Long, Think Short: Curriculum Learning for Efficient Reasoning" —
  :func:`curriculum_budget`, :func:`budget_reward`.
* Muennighoff et al. (2025), "s1: Simple test-time scaling" — :class:`BudgetForcing`.
* Li, Chen, Lin, Yang (2025), "DRPO: Efficient Reasoning via Decoupled Reward Policy Optimization" —
  :func:`drpo_weights`.
* "APO: Enhancing Reasoning Ability of MLLMs via Asymmetric Policy Optimization" —
  :func:`apo_dads_kl_weights`, :func:`apo_stcr_penalty`.
* Zhou et al. (2025), "GUI-G1: Understanding R1-Zero-Like Training for Visual Grounding in GUI
  Agents" — :func:`gui_g1_difficulty_weights`.

Rewards take ``lengths[B, G]`` (response lengths in tokens, > 0; float or integer) and
``correct[B, G]`` (bool) per group of G responses to a prompt, and return ``[B, G]`` float rewards
(in torch's default dtype for integer lengths). Where a paper's exact constants were not available
the functional form is stated and marked "derived here".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from rlref.llm._checks import (
    check_bool_tensor,
    check_choice,
    check_count,
    check_finite_tensor,
    check_float_tensor,
    check_group_rewards,
    check_lengths,
    check_mask,
    check_nonnegative_scalar,
    check_positive_scalar,
    check_positive_tensor,
    check_probability,
    check_same_shape,
    check_unit_interval_tensor,
    first_index,
    is_meta,
    require_values,
)
from rlref.llm._ops import acc_dtype, flat_group, masked_mean, masked_std, safe_div, zero_masked

__all__ = [
    "dler_truncation_reward",
    "dler_difficulty_budgets",
    "dler_batch_normalized",
    "tldr_budget_reward",
    "kimi_length_reward",
    "dapo_overlong_penalty",
    "cosine_length_reward",
    "grpo_lambda_reward",
    "HistoryAwareReward",
    "curriculum_budget",
    "budget_reward",
    "EndOfThinkingScaling",
    "BudgetForcing",
    "drpo_weights",
    "DRPOLoss",
    "drpo_loss",
    "kimi_mirror_descent_loss",
    "flat_groups",
    "DynamicSampler",
    "apo_dads_kl_weights",
    "apo_stcr_penalty",
    "apo_stcr_weights",
    "gui_g1_difficulty_weights",
]


def _lc(lengths: object, correct: object) -> tuple[torch.Tensor, torch.Tensor]:
    """lengths[B, G] (float or integer token counts, > 0) and correct[B, G] (bool)."""
    ln = check_lengths("lengths", lengths, ndim=2)
    if ln.shape[1] == 0:
        raise ValueError(f"lengths must have at least one response per group, got shape {tuple(ln.shape)}")
    return ln, check_bool_tensor("correct", correct, ln.shape)


def _budget(name: str, budget: object, b: int, like: torch.Tensor) -> torch.Tensor:
    if isinstance(budget, torch.Tensor):
        bt = check_float_tensor(name, budget, ndim=1)
        if bt.shape[0] != b or not bool((bt > 0).all()) or not bool(torch.isfinite(bt).all()):
            raise ValueError(f"{name} must be positive and finite with shape [{b}], got {bt.tolist() if bt.numel() <= 8 else tuple(bt.shape)}")
        return bt.to(like.dtype).unsqueeze(1)
    return torch.full((b, 1), check_positive_scalar(name, budget), dtype=like.dtype, device=like.device)


def dler_truncation_reward(lengths: torch.Tensor, correct: torch.Tensor, budget: float | torch.Tensor) -> torch.Tensor:
    """DLER's truncation length penalty: r = 1[correct] · 1[L ≤ budget].

    A response longer than the budget (per prompt if ``budget`` is a [B] tensor) is truncated and
    earns 0 whatever its answer. Pair with ``dler_batch_normalized`` advantages and clip-higher.

    Shapes: lengths[B, G], correct[B, G], budget scalar or [B] -> [B, G].

    References: Liu et al. (2025), "DLER: Doing Length pEnalty Right", Sec. 3 (truncation penalty).
    """
    ln, c = _lc(lengths, correct)
    bud = _budget("budget", budget, ln.shape[0], ln)
    return (c & (ln <= bud)).to(ln.dtype)


def dler_difficulty_budgets(group_accuracy: torch.Tensor, *, base_budget: float, min_budget: float) -> torch.Tensor:
    """Difficulty-aware DLER budgets: tighter truncation on easier prompts.

    B_q = base − acc_q · (base − min): a prompt solved by every sample gets the minimum budget, an
    unsolved one the base budget. The linear interpolation is derived here.

    Shapes: group_accuracy[B] in [0, 1] -> budgets[B].

    References: DLER (2025), Sec. 5 (Difficulty-Aware DLER).
    """
    acc = check_unit_interval_tensor("group_accuracy", group_accuracy, ndim=1)
    hi = check_positive_scalar("base_budget", base_budget)
    lo = check_positive_scalar("min_budget", min_budget)
    if lo > hi:
        raise ValueError(f"min_budget must be <= base_budget, got {min_budget!r} > {base_budget!r}")
    return hi - acc * (hi - lo)


def tldr_budget_reward(lengths: torch.Tensor, correct: torch.Tensor, budget: float | torch.Tensor, *,
                       penalty: float = 1.0) -> torch.Tensor:
    """TLDR's length-regularized reward under a requested budget level (short / medium / long).

    r = 1[correct] − penalty · max(0, L − B)/B, with B the budget of the level requested in the prompt
    (per prompt when ``budget`` is a [B] tensor), so one model learns several length levels. The
    relative-overshoot form is derived here.

    Shapes: lengths[B, G], correct[B, G], budget scalar or [B] -> [B, G].

    References: "Towards Efficient Reasoning for Small Models: Temperature Scaling and TLDR" (2025),
    Sec. 4 (multi-level length control).
    """
    ln, c = _lc(lengths, correct)
    bud = _budget("budget", budget, ln.shape[0], ln)
    p = check_nonnegative_scalar("penalty", penalty)
    return c.to(ln.dtype) - p * torch.relu(ln - bud) / bud


def kimi_length_reward(lengths: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """Kimi k1.5's length penalty within a group.

    λ_i = 0.5 − (L_i − min L)/(max L − min L);  reward = λ_i if correct, min(0, λ_i) if not
    (λ = 0 for a group whose lengths are all equal). Added to the correctness reward.

    Shapes: lengths[B, G], correct[B, G] -> [B, G].

    References: Kimi Team (2025), "Kimi k1.5: Scaling Reinforcement Learning with LLMs", Sec. 2.3.3 (length penalty).
    """
    ln, c = _lc(lengths, correct)
    lo = ln.amin(dim=1, keepdim=True)
    hi = ln.amax(dim=1, keepdim=True)
    span = hi - lo
    lam = torch.where(span > 0, 0.5 - (ln - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(ln))
    return torch.where(c, lam, torch.clamp(lam, max=0.0))


def dapo_overlong_penalty(lengths: torch.Tensor, *, max_length: float, cache_length: float) -> torch.Tensor:
    """DAPO's soft overlong punishment.

    R(L) = 0 if L ≤ L_max − L_cache; (L_max − L_cache − L)/L_cache if L_max − L_cache < L ≤ L_max; −1 if L > L_max.

    Shapes: lengths[...] -> [...].

    References: Yu et al. (2025), "DAPO: An Open-Source LLM Reinforcement Learning System at Scale", eq. (13).
    """
    ln = check_lengths("lengths", lengths)
    lmax = check_positive_scalar("max_length", max_length)
    cache = check_positive_scalar("cache_length", cache_length)
    if cache > lmax:
        raise ValueError(f"cache_length must be <= max_length, got {cache_length!r} > {max_length!r}")
    soft = (lmax - cache - ln) / cache
    return torch.where(ln <= lmax - cache, torch.zeros_like(ln), torch.where(ln <= lmax, soft, -torch.ones_like(ln)))


def cosine_length_reward(lengths: torch.Tensor, correct: torch.Tensor, *, max_length: float, r_correct_short: float = 2.0,
                         r_correct_long: float = 1.0, r_wrong_short: float = -10.0, r_wrong_long: float = 0.0,
                         r_exceed: float = -10.0) -> torch.Tensor:
    """Cosine length-scaled reward.

    CosFn(L) = η_min + ½ (η_max − η_min)(1 + cos(π L / L_max)), which decays from η_max at L = 0 to
    η_min at L = L_max. Correct: η_max = r_correct_short, η_min = r_correct_long (shorter correct is
    better); wrong: η_max = r_wrong_short, η_min = r_wrong_long (longer wrong is penalized less, so
    the model keeps thinking when unsure); L > L_max: r_exceed.

    Shapes: lengths[B, G], correct[B, G] -> [B, G].

    References: Yeo et al. (2025), "Demystifying Long Chain-of-Thought Reasoning in LLMs", eq. (1);
    used in Dang & Ngo (2025), "Reinforcement Learning for Reasoning in Small LLMs".
    """
    ln, c = _lc(lengths, correct)
    lmax = check_positive_scalar("max_length", max_length)
    cosw = 0.5 * (1.0 + torch.cos(math.pi * torch.clamp(ln, max=lmax) / lmax))
    rc = r_correct_long + (r_correct_short - r_correct_long) * cosw
    rw = r_wrong_long + (r_wrong_short - r_wrong_long) * cosw
    out = torch.where(c, rc, rw)
    return torch.where(ln > lmax, torch.full_like(out, float(r_exceed)), out)


def grpo_lambda_reward(correct: torch.Tensor, length_rewards: torch.Tensor, *, top_fraction: float | None = None,
                       threshold: float | None = None) -> torch.Tensor:
    """GRPO-λ's reward switch: the length-penalized reward only for the batch's most-correct groups.

    Paper's rule (batch-wise top-λ selection): rank the B groups of the batch by their correctness
    ratio acc_q = (1/G) Σ_i 1[correct]; the ⌈λ·B⌉ groups with the highest ratio (``top_fraction`` = λ)
    get ``length_rewards`` (e.g. correctness + ``kimi_length_reward``); every other group gets the
    plain 0/1 correctness reward, so a struggling prompt is never pushed toward shorter reasoning.
    Ties at the cut are broken by the group's position (a stable sort), since the text gives no rule.

    ``threshold=τ`` instead selects the groups with acc_q ≥ τ (a per-group switch: this library's
    earlier reading, kept for callers that use it; it is not the paper's rule). Give at most one of
    the two; with neither, λ = 0.5 (the paper's λ value was not recovered: derived here).

    Shapes: correct[B, G] bool, length_rewards[B, G] -> [B, G].

    References: Dai, Liu, Si (2025), "Stable Reinforcement Learning for Efficient Reasoning"
    (GRPO-λ, arXiv 2505.18086), Sec. 3 (batch-wise top-λ selection by correctness ratio).
    """
    lr = check_float_tensor("length_rewards", length_rewards, ndim=2)
    check_finite_tensor("length_rewards", lr)
    check_bool_tensor("correct", correct, lr.shape)
    if top_fraction is not None and threshold is not None:
        raise ValueError("give at most one of top_fraction (the paper's batch-wise top-λ) and threshold (a per-group switch)")
    acc = correct.to(lr.dtype).mean(dim=1)
    if threshold is not None:
        chosen = acc >= check_probability("threshold", threshold)
    else:
        lam = check_probability("top_fraction", 0.5 if top_fraction is None else top_fraction, open_left=True)
        require_values("grpo_lambda_reward (a batch-wise ranking)", lr)
        k = math.ceil(lam * lr.shape[0] - 1e-12)
        order = torch.sort(acc, descending=True, stable=True).indices
        chosen = torch.zeros_like(acc, dtype=torch.bool)
        chosen[order[:k]] = True
    return torch.where(chosen.unsqueeze(1), lr, correct.to(lr.dtype))


@dataclass
class HistoryAwareReward:
    """HAPO's history-aware length reward (per-prompt state kept across training steps).

    State: h_q = minimum length of a correct response seen so far for prompt q (None until one is).
    f(L, h) = cos(min(π/2 · L/h, π)) ∈ [−1, 1] (1 at L = 0, 0 at L = h, −1 for L ≥ 2h).
    Length reward: correct -> max(f, ``correct_floor``) (the authors' release floors it at −0.7 so that
    any correct response keeps a higher total reward than any incorrect one); incorrect -> min(f, 0)
    (short wrong answers are not punished); no history yet -> 0. Total reward = 1[correct] + w · length
    reward. After scoring a step, ``update`` lowers h_q to the shortest correct length of that step.
    ``correct_floor=None`` removes the floor (the paper's eq. (4) as first implemented here).

    References: Huang, Zhang, Cardie (2025), "HAPO: Training Language Models to Reason Concisely via
    History-Aware Policy Optimization" (arXiv 2505.11225), Sec. 3, eqs. (2)-(4); the authors' release,
    ``utils.compute_len_reward`` (cosine form, the −0.7 floor for correct responses, ``mode="min"``
    history), read through the code index.
    """

    weight: float = 1.0
    history: dict[object, float] = field(default_factory=dict)
    correct_floor: float | None = -0.7

    def __post_init__(self) -> None:
        check_nonnegative_scalar("weight", self.weight)
        if self.correct_floor is not None and not -1.0 <= float(self.correct_floor) <= 0.0:
            raise ValueError(f"correct_floor must lie in [-1, 0] (or be None), got {self.correct_floor!r}")

    def length_reward(self, prompt_id: object, lengths: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
        """Length reward for one prompt's responses (lengths[G], correct[G]) against the stored history."""
        ln = check_lengths("lengths", lengths, ndim=1)
        check_bool_tensor("correct", correct, ln.shape)
        ln, c = _lc(ln.unsqueeze(0), correct.unsqueeze(0))
        ln, c = ln[0], c[0]
        h = self.history.get(prompt_id)
        if h is None:
            return torch.zeros_like(ln)
        f = torch.cos(torch.clamp(0.5 * math.pi * ln / h, max=math.pi))
        fc = f if self.correct_floor is None else torch.clamp(f, min=float(self.correct_floor))
        return torch.where(c, fc, torch.clamp(f, max=0.0))

    def __call__(self, prompt_id: object, lengths: torch.Tensor, correct: torch.Tensor, *, update: bool = True) -> torch.Tensor:
        """Total reward 1[correct] + w·length_reward, then (by default) update the history."""
        lr = self.length_reward(prompt_id, lengths, correct)  # validates lengths and correct first
        r = correct.to(lr.dtype) + self.weight * lr
        if update:
            self.update(prompt_id, lengths, correct)
        return r

    def update(self, prompt_id: object, lengths: torch.Tensor, correct: torch.Tensor) -> None:
        """h_q <- min(h_q, shortest correct length of this step)."""
        if bool(correct.any()):
            m = float(lengths[correct].min())
            old = self.history.get(prompt_id)
            self.history[prompt_id] = m if old is None else min(old, m)


def curriculum_budget(step: int, total_steps: int, *, initial_budget: float, final_budget: float,
                      schedule: str = "exponential") -> float:
    """"Train Long, Think Short" budget curriculum: start generous, tighten over training.

    exponential: B(k) = B_0 · (B_K/B_0)^{k/K};  linear: B(k) = B_0 + (B_K − B_0) k/K.

    References: Hammoud et al. (2025), "Train Long, Think Short: Curriculum Learning for Efficient
    Reasoning", Sec. 3 (budget decay schedules).
    """
    if total_steps < 1 or not 0 <= step <= total_steps:
        raise ValueError(f"need 0 <= step <= total_steps and total_steps >= 1, got step={step}, total_steps={total_steps}")
    b0 = check_positive_scalar("initial_budget", initial_budget)
    bk = check_positive_scalar("final_budget", final_budget)
    frac = step / total_steps
    if schedule == "exponential":
        return b0 * (bk / b0) ** frac
    if schedule == "linear":
        return b0 + (bk - b0) * frac
    raise ValueError(f"schedule must be 'exponential' or 'linear', got {schedule!r}")


def budget_reward(lengths: torch.Tensor, correct: torch.Tensor, budget: float, *, w_correct: float = 1.0,
                  w_length: float = 0.5) -> torch.Tensor:
    """Correctness plus length efficiency under the current curriculum budget.

    r = w_c · 1[correct] + w_ℓ · 1[correct] · max(0, 1 − L/B): a correct answer earns more the further
    it stays under budget, an over-budget one earns only correctness. Form derived here.

    Shapes: lengths[B, G], correct[B, G] -> [B, G].

    References: "Train Long, Think Short" (2025), Sec. 3 (reward with correctness and length terms).
    """
    ln, c = _lc(lengths, correct)
    b = check_positive_scalar("budget", budget)
    cf = c.to(ln.dtype)
    return w_correct * cf + w_length * cf * torch.relu(1.0 - ln / b)


class EndOfThinkingScaling:
    """TLDR's temperature scaling of the end-of-thinking token (a logits processor).

    z'[eot] = z[eot] + log(s), i.e. the end-of-thinking token's unnormalized probability is multiplied by
    s = 1/temperature (s > 1 stops thinking earlier, s < 1 later); the other logits are unchanged.
    Callable as ``processor(logits)`` with logits[..., V] (returns a new tensor).

    References: "Towards Efficient Reasoning for Small Models: Temperature Scaling and TLDR" (2025),
    Sec. 3 (temperature scaling of the stopping token).
    """

    def __init__(self, eot_id: int, temperature: float) -> None:
        if not isinstance(eot_id, int) or eot_id < 0:
            raise ValueError(f"eot_id must be a non-negative int, got {eot_id!r}")
        self.eot_id = eot_id
        self.temperature = check_positive_scalar("temperature", temperature)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        z = check_float_tensor("logits", logits)
        if self.eot_id >= z.shape[-1]:
            raise ValueError(f"eot_id {self.eot_id} is outside the vocabulary of size {z.shape[-1]}")
        out = z.clone()
        out[..., self.eot_id] = out[..., self.eot_id] - math.log(self.temperature)
        return out


class BudgetForcing:
    """s1's budget forcing as a logits processor over the thinking phase.

    With n thinking tokens generated so far: n < min_tokens -> the end-of-thinking token is suppressed
    (logit −inf; with ``wait_id`` the model is instead forced to emit "Wait", as s1 appends it);
    n ≥ max_tokens -> the end-of-thinking token is forced (all other logits −inf); otherwise unchanged.

    References: Muennighoff et al. (2025), "s1: Simple test-time scaling", Sec. 3.1 (budget forcing).
    """

    def __init__(self, eot_id: int, *, min_tokens: int = 0, max_tokens: int | None = None, wait_id: int | None = None) -> None:
        if not isinstance(eot_id, int) or eot_id < 0:
            raise ValueError(f"eot_id must be a non-negative int, got {eot_id!r}")
        if wait_id is not None and (not isinstance(wait_id, int) or wait_id < 0 or wait_id == eot_id):
            raise ValueError(f"wait_id must be a non-negative int other than eot_id, got {wait_id!r}")
        if min_tokens < 0 or (max_tokens is not None and max_tokens < min_tokens):
            raise ValueError(f"need 0 <= min_tokens <= max_tokens, got {min_tokens!r}, {max_tokens!r}")
        self.eot_id, self.min_tokens, self.max_tokens, self.wait_id = eot_id, min_tokens, max_tokens, wait_id

    def __call__(self, logits: torch.Tensor, num_thinking_tokens: torch.Tensor) -> torch.Tensor:
        """logits[B, V], num_thinking_tokens[B] (int) -> processed logits[B, V]."""
        z = check_float_tensor("logits", logits, ndim=2)
        n = num_thinking_tokens
        if not isinstance(n, torch.Tensor) or n.shape != (z.shape[0],) or torch.is_floating_point(n):
            raise ValueError(f"num_thinking_tokens must be an integer tensor of shape [{z.shape[0]}]")
        vocab = z.shape[-1]
        for name, tok in (("eot_id", self.eot_id), ("wait_id", self.wait_id)):
            if tok is not None and tok >= vocab:
                raise ValueError(f"{name} {tok} is outside the vocabulary of size {vocab}")
        out = z.clone()
        neg = torch.full_like(out[0], -float("inf"))
        onehot_eot = neg.clone()
        onehot_eot[self.eot_id] = 0.0
        for b in range(z.shape[0]):
            k = int(n[b])
            if self.max_tokens is not None and k >= self.max_tokens:
                out[b] = onehot_eot
            elif k < self.min_tokens:
                if self.wait_id is not None and int(torch.argmax(z[b])) == self.eot_id:
                    out[b] = neg.clone()
                    out[b, self.wait_id] = 0.0
                else:
                    out[b, self.eot_id] = -float("inf")
        return out


# ----------------------------------------------------------------------------- DLER / DRPO advantages and weights


def dler_batch_normalized(rewards: torch.Tensor, mask: torch.Tensor | None = None, *, eps: float = 1e-6,
                          weighting: str = "response", lengths: torch.Tensor | None = None) -> torch.Tensor:
    """DLER's batch-wise reward normalization (the REINFORCE++-baseline form).

    Ã_i = r_i − mean_g(r) (group baseline), then A_i = (Ã_i − μ) / σ over the batch:
    ``weighting="response"`` — μ, σ (population) over the valid responses, each response weighing 1,
    A = (Ã − μ)/(σ + eps) (the paper's per-response formula); ``weighting="token"`` — verl's
    ``reinforce_plus_plus_baseline``: Ã is broadcast to every token and whitened over the valid tokens
    (``masked_whiten``), i.e. each response weighs its length |o_i| (``lengths``), μ = Σ|o|Ã/Σ|o|,
    σ² the Bessel-corrected token variance (Σ|o| − 1 in the denominator), A = (Ã − μ)/√(σ² + eps).
    The paper trains with verl, so its runs use the token weighting; its text states the per-response one.
    Groups whose rewards are all equal contribute Ã = 0 and get A = 0 (they are excluded from the
    batch statistics, as dynamic sampling — :class:`DynamicSampler` — would drop them: derived here).

    Shapes: rewards[B, G], mask[B, G], lengths[B, G] (token counts, for "token") -> [B, G].
    If every group is flat, returns zeros.

    References: Liu et al. (2025), "DLER: Doing Length pEnalty Right", Sec. 3.1 (batch-wise reward
    normalization); Hu (2025), "REINFORCE++" (the baseline variant); verl
    verl/trainer/ppo/core_algos.py ``compute_reinforce_plus_plus_baseline_outcome_advantage`` and
    verl/utils/torch_functional.py ``masked_whiten`` (the token weighting).
    """
    e = check_nonnegative_scalar("eps", eps)
    wt = check_choice("weighting", weighting, ("response", "token"))
    r, m = check_group_rewards(rewards, mask)
    active = m & ~flat_group(r, m)
    if not is_meta(active) and not bool(active.any()):
        return torch.zeros_like(r)
    ra = r.to(acc_dtype(r.dtype))
    centered = ra - masked_mean(ra, m, dim=1)
    if wt == "response":
        if lengths is not None:
            raise ValueError("lengths is used only with weighting='token'")
        adv = safe_div(centered - masked_mean(centered, active), masked_std(centered, active, dim=None, unbiased=False), e)
        return torch.where(active, adv, torch.zeros_like(adv)).to(r.dtype)
    if lengths is None:
        raise ValueError("weighting='token' needs lengths[B, G] (the response token counts)")
    w = check_lengths("lengths", lengths, ndim=2, dtype=ra.dtype)
    check_same_shape(("rewards", "lengths"), (r, w))
    w = zero_masked(w.to(ra.dtype), active)
    n = w.sum()
    mu = (w * centered).sum() / n
    var = (w * (centered - mu) ** 2).sum() / (n - 1).clamp(min=1e-12)
    adv = (centered - mu) / torch.sqrt(var + e)
    return torch.where(active, adv, torch.zeros_like(adv)).to(r.dtype)


def drpo_weights(
    length_rewards: torch.Tensor,
    correct: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    lam: float = 1.0,
    neg_scores: torch.Tensor | None = None,
    tau: float | None = None,
) -> torch.Tensor:
    """DRPO's decoupled per-response gradient weights w_i (the score s_i = mean token log-prob of o_i).

    DRPO's objective for a group (:func:`drpo_loss`) is Σ_{i∈pos} ŵ_i (s_i − τ·LME_{j∈neg}(s_j/τ)),
    ŵ_i = exp(r_l,i/λ) / Σ_{k∈pos} exp(r_l,k/λ) — the self-normalized importance weights of the closed-form
    positive distribution P* ∝ π_old·1[correct]·exp(r_l/λ). Its gradient is Σ_i w_i ∇s_i with
        w_i = ŵ_i (correct i; Σ = 1, all > 0 — a correct response is never pushed down, however long),
        w_j = −softmax_{neg}(s_j/τ) (incorrect j; Σ = −1), because τ·∇LME(s/τ) = Σ_j softmax(s/τ)_j ∇s_j.
    With ``neg_scores`` and ``tau`` given the negative weights are the release's softmax; without them
    they are −1/n_neg, the τ → ∞ limit (uniform over the group's negatives). The release's length reward
    is r_l = 1 − L/L_max (any shift of r_l gives the same ŵ). A group with no correct (or no incorrect)
    response gives zeros on that side (the release drops such groups).

    Shapes: length_rewards[B, G], correct[B, G] (bool), mask[B, G], neg_scores[B, G] -> weights[B, G].
    Raises ValueError if lam <= 0 or tau <= 0.

    References: Li, Chen, Lin, Yang (2025), "DRPO: Efficient Reasoning via Decoupled Reward Policy
    Optimization" (arXiv 2510.04474), Sec. 4; release github.com/Optimization-AI/DRPO @ 405f702,
    verl/verl/trainer/ppo/core_algos.py (``compute_policy_loss_drpo``).
    """
    lmb = check_positive_scalar("lam", lam)
    r, m = check_group_rewards(length_rewards, mask)
    check_bool_tensor("correct", correct, r.shape)
    pos = m & correct
    neg = m & ~correct
    w_pos = _masked_softmax(r / lmb, pos)
    if (neg_scores is None) != (tau is None):
        raise ValueError("give both neg_scores and tau (the release's softmax over negatives) or neither (the tau -> inf limit)")
    if neg_scores is None:
        w_neg = neg.to(r.dtype) / neg.sum(dim=1, keepdim=True).clamp(min=1).to(r.dtype)
    else:
        t = check_positive_scalar("tau", tau)
        sc = check_float_tensor("neg_scores", neg_scores, ndim=2)
        check_same_shape(("length_rewards", "neg_scores"), (r, sc))
        check_finite_tensor("neg_scores", zero_masked(sc.detach(), neg))
        w_neg = _masked_softmax(sc.detach().to(r.dtype) / t, neg)
    return torch.where(pos, w_pos, torch.where(neg, -w_neg, torch.zeros_like(r)))


def _masked_softmax(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """softmax of x over the True entries of each row (0 elsewhere; a row without any is all 0)."""
    logits = torch.where(m, x, torch.full_like(x, -float("inf")))
    has = m.any(dim=1, keepdim=True)
    w = torch.softmax(torch.where(has, logits, torch.zeros_like(logits)), dim=1)
    return torch.where(m, w, torch.zeros_like(w))


@dataclass(frozen=True)
class DRPOLoss:
    """Result of :func:`drpo_loss`: ``loss`` (to minimize) = −objective + hinge·KL; ``objective`` (the
    decoupled discriminative objective, detached), ``kl`` (the token-mean KL estimate to π_old, detached),
    ``constraint_active`` (KL > δ) and ``valid_groups[B]`` (groups with both correct and incorrect responses)."""

    loss: torch.Tensor
    objective: torch.Tensor
    kl: torch.Tensor
    constraint_active: torch.Tensor
    valid_groups: torch.Tensor


def drpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor, correct: torch.Tensor, *, lam: float = 0.1,
              tau: float = 10.0, beta: float = 1e3, delta: float = 1e-4, kl_estimator: str = "k1",
              max_length: float | None = None) -> DRPOLoss:
    """DRPO's policy loss, as released: the decoupled objective with a hinge KL constraint.

    Per response i of group q: s_i = (1/|o_i|) Σ_t log π_θ(y_it) (the mean token log-prob) and the
    length ratio ℓ_i = |o_i| / L_max. For a group with correct (pos) and incorrect (neg) responses,
        J_q = Σ_{i∈pos} ŵ_i (s_i − τ·log((1/n_neg) Σ_{j∈neg} e^{s_j/τ})),  ŵ_i ∝ exp((1 − ℓ_i)/λ) (Σ_pos ŵ = 1);
    J = (1/B) Σ_{q valid} J_q (groups without both kinds are skipped but counted in B, as released).
    KL: the token-mean over valid tokens of k1 = log π_old − log π_θ (``kl_estimator="k1"``, the
    release's ``ppo_kl_type=kl``) or k3 = (ρ − 1) − log ρ (``"k3"``: ``low_var_kl``), both estimating
    KL(π_old ‖ π_θ) on tokens sampled from π_old. Loss = −J + sg(max(β(KL − δ), 0))·KL.

    The value uses the true log-mean-exp; the release writes the negatives' term as
    Σe/sg(Σe) (value 1, the same gradient), so the two losses differ by a constant in θ and have
    identical gradients. Release defaults: λ = 0.1, τ = 10, β = 1e3, δ = 1e-4, ``kl``.

    Shapes: logp[B, G, T], old_logp[B, G, T], mask[B, G, T] (every response needs ≥ 1 valid token),
    correct[B, G] bool -> :class:`DRPOLoss`. ``max_length`` = L_max (default T, the release's padded width).

    References: Li, Chen, Lin, Yang (2025), "DRPO" (arXiv 2510.04474), Sec. 4; release
    github.com/Optimization-AI/DRPO @ 405f702, verl/verl/trainer/ppo/core_algos.py
    (``compute_policy_loss_drpo``) and scripts/train/run_drpo_1.5b_8k.sh (defaults).
    """
    lmb = check_positive_scalar("lam", lam)
    t = check_positive_scalar("tau", tau)
    b = check_nonnegative_scalar("beta", beta)
    dl = check_nonnegative_scalar("delta", delta)
    est = check_choice("kl_estimator", kl_estimator, ("k1", "k3"))
    lp = check_float_tensor("logp", logp, ndim=3)
    old = check_float_tensor("old_logp", old_logp, ndim=3)
    check_same_shape(("logp", "old_logp"), (lp, old))
    m = check_mask("mask", mask, lp.shape)
    check_bool_tensor("correct", correct, lp.shape[:2])
    check_finite_tensor("logp", zero_masked(lp.detach(), m))
    check_finite_tensor("old_logp", zero_masked(old.detach(), m))
    n_tok = m.sum(dim=2)
    if not is_meta(n_tok) and bool((n_tok == 0).any()):
        raise ValueError(f"mask{list(first_index(n_tok == 0))} selects no token: every response needs at least one")
    lmax = float(lp.shape[2]) if max_length is None else check_positive_scalar("max_length", max_length)
    acc = acc_dtype(lp.dtype)
    lpa = zero_masked(lp.to(acc), m)
    scores = lpa.sum(dim=2) / n_tok.to(acc)
    ratio_len = n_tok.to(acc) / lmax
    pos, neg = correct, ~correct
    valid = pos.any(dim=1) & neg.any(dim=1)
    w_pos = _masked_softmax((1.0 - ratio_len) / lmb, pos)
    neg_logits = torch.where(neg, scores / t, torch.full_like(scores, -float("inf")))
    lme = torch.logsumexp(torch.where(neg.any(dim=1, keepdim=True), neg_logits, torch.zeros_like(neg_logits)), dim=1)
    lme = lme - torch.log(neg.sum(dim=1).clamp(min=1).to(acc))
    j_q = (w_pos * (scores - t * lme.unsqueeze(1))).sum(dim=1)
    objective = torch.where(valid, j_q, torch.zeros_like(j_q)).sum() / lp.shape[0]
    log_ratio = zero_masked(lpa - old.detach().to(acc), m)
    per_tok = -log_ratio if est == "k1" else torch.expm1(log_ratio) - log_ratio
    kl = zero_masked(per_tok, m).sum() / m.sum()
    hinge = torch.clamp(b * (kl.detach() - dl), min=0.0)
    loss = -objective + hinge * kl
    return DRPOLoss(loss=loss, objective=objective.detach(), kl=kl.detach(), constraint_active=(kl.detach() > dl), valid_groups=valid)


# ----------------------------------------------------------------------------- Kimi k1.5 policy objective


def kimi_mirror_descent_loss(seq_logp: torch.Tensor, old_seq_logp: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor | None = None,
                             *, tau: float, log_partition: torch.Tensor | None = None) -> torch.Tensor:
    """Kimi k1.5's policy objective: online mirror descent as a squared loss toward the tilted reference.

    Iteration i solves max_θ E_x[E_{y∼π_θ}[r(x, y)] − τ KL(π_θ(·|x) ‖ π_θi(·|x))], whose solution is
    π*(y|x) = π_θi(y|x) exp(r(x, y)/τ) / Z(x). Since r − τ log Z = τ log(π*/π_θi), the surrogate
        L(θ) = E_x (1/k) Σ_{j=1..k} ( r(x, y_j) − τ log Z(x) − τ log(π_θ(y_j|x)/π_θi(y_j|x)) )²,  y_j ∼ π_θi,
    is minimized (at 0) by π_θ = π*. τ log Z is approximated by the group's mean reward r̄ (the
    paper's choice) unless ``log_partition`` = log Z(x) is given (exact, e.g. on a token tree).

    Shapes: seq_logp[B, G] (log π_θ(y|x), summed over tokens), old_seq_logp[B, G] (π_θi, detached),
    rewards[B, G], mask[B, G] (valid responses), log_partition[B] -> scalar (mean over valid responses).

    References: Kimi Team (2025), "Kimi k1.5: Scaling Reinforcement Learning with LLMs", Sec. 2.3.2
    (policy optimization: the relative-entropy-regularized objective, its closed form and the
    squared-loss surrogate with the mean-reward approximation of τ log Z).
    """
    c = check_positive_scalar("tau", tau)
    r, m = check_group_rewards(rewards, mask)
    lp = check_float_tensor("seq_logp", seq_logp, ndim=2)
    old = check_float_tensor("old_seq_logp", old_seq_logp, ndim=2)
    check_same_shape(("rewards", "seq_logp", "old_seq_logp"), (r, lp, old))
    check_finite_tensor("seq_logp", zero_masked(lp.detach(), m))
    check_finite_tensor("old_seq_logp", zero_masked(old.detach(), m))
    if log_partition is None:
        base = masked_mean(r, m, dim=1)
    else:
        lz = check_float_tensor("log_partition", log_partition, ndim=1)
        if lz.shape[0] != r.shape[0]:
            raise ValueError(f"log_partition must have shape [{r.shape[0]}], got {tuple(lz.shape)}")
        check_finite_tensor("log_partition", lz)
        base = c * lz.to(r.dtype).unsqueeze(1)
    resid = r - base - c * (lp - old.detach())
    return zero_masked(resid**2, m).sum() / m.sum()


# ----------------------------------------------------------------------------- DLER: dynamic sampling


def flat_groups(rewards: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """True for each group whose valid rewards are all equal (zero GRPO advantage: no learning signal).

    Shapes: rewards[B, G], mask[B, G] -> [B] bool.

    References: Yu et al. (2025), "DAPO", Sec. 3.2 (dynamic sampling), used by DLER, Sec. 3.
    """
    r, m = check_group_rewards(rewards, mask)
    return flat_group(r, m).squeeze(1)


@dataclass
class DynamicSampler:
    """DLER/DAPO dynamic sampling: drop groups whose rewards are all equal, keep sampling until the batch is full.

    ``add(rewards[B, G], items)`` keeps the informative groups (and their ``items``, one per group —
    prompts, rollouts, anything), in arrival order; ``ready`` is True once ``batch_size`` groups are held;
    ``pop()`` returns the first ``batch_size`` (rewards[batch_size, G], items) and keeps the surplus for
    the next batch. ``rounds`` counts ``add`` calls; ``max_rounds`` (if set) raises RuntimeError when the
    generator keeps producing only flat groups.

    References: DLER (Liu et al. 2025, "DLER: Doing Length pEnalty Right"), Sec. 3 (dynamic sampling,
    following DAPO, Yu et al. 2025, Sec. 3.2: "over-sample and filter out prompts with accuracy 0 or 1").
    """

    batch_size: int
    max_rounds: int | None = None
    rounds: int = 0
    _rewards: list = field(default_factory=list)
    _items: list = field(default_factory=list)

    def __post_init__(self) -> None:
        check_count("batch_size", self.batch_size)
        if self.max_rounds is not None:
            check_count("max_rounds", self.max_rounds)

    def add(self, rewards: torch.Tensor, items: list | None = None, mask: torch.Tensor | None = None) -> int:
        """Keep the non-flat groups of one sampling round; returns how many were kept."""
        keep = ~flat_groups(rewards, mask)
        its = list(range(rewards.shape[0])) if items is None else list(items)
        if len(its) != rewards.shape[0]:
            raise ValueError(f"items must hold one entry per group ({rewards.shape[0]}), got {len(its)}")
        self.rounds += 1
        for b in torch.nonzero(keep).flatten().tolist():
            self._rewards.append(rewards[b])
            self._items.append(its[b])
        if not self.ready and self.max_rounds is not None and self.rounds >= self.max_rounds:
            raise RuntimeError(f"DynamicSampler: {len(self._rewards)} informative groups after max_rounds={self.max_rounds} rounds; "
                               f"batch_size={self.batch_size} not reached")
        return int(keep.sum())

    @property
    def ready(self) -> bool:
        return len(self._rewards) >= self.batch_size

    def pop(self) -> tuple[torch.Tensor, list]:
        """The first ``batch_size`` informative groups (rewards stacked to [batch_size, G]) and their items."""
        if not self.ready:
            raise RuntimeError(f"DynamicSampler holds {len(self._rewards)} groups, fewer than batch_size={self.batch_size}")
        n = self.batch_size
        out = torch.stack(self._rewards[:n]), self._items[:n]
        self._rewards, self._items = self._rewards[n:], self._items[n:]
        return out


# ----------------------------------------------------------------------------- APO, GUI-G1


def gui_g1_difficulty_weights(difficulty: torch.Tensor, *, alpha: float = 1.0) -> torch.Tensor:
    """GUI-G1's difficulty-aware scaling of per-sample advantages.

    w_i = d_i^α / mean_j d_j^α  (batch mean 1), to multiply advantages so that hard samples (large d,
    e.g. a small relative target box) are not under-optimized. The mean-1 normalization and the power
    α are derived here. The authors' release multiplies each response's token-summed clipped loss by a
    per-sample weight read from the data (``rate``), with Dr. GRPO advantages (r − mean_g, no std) and
    a constant normalizer 64 instead of 1/|o|; because the clipped loss is positively homogeneous in A,
    that is exactly ``ppo_clip(logp, old_logp, dr_grpo(r) * rate, mask, aggregation="constant",
    constant=64)`` (tested).

    Shapes: difficulty[B] (> 0) -> [B].

    References: Zhou et al. (2025), "GUI-G1: Understanding R1-Zero-Like Training for Visual Grounding
    in GUI Agents" (arXiv 2505.15810), Sec. 4.3 (policy update: length normalization and
    difficulty-aware scaling); release github.com/Yuqi-Zhou/GUI-G1 @ e581fe9,
    src/open-r1-multimodal/src/open_r1/trainer/grpo_trainer.py (``compute_loss``: ``rates``, ``/ 64``).
    """
    d = check_positive_tensor("difficulty", check_float_tensor("difficulty", difficulty, ndim=1))
    if d.numel() == 0:
        raise ValueError("difficulty must be a non-empty tensor of positive numbers, got shape (0,)")
    a = check_nonnegative_scalar("alpha", alpha)
    w = d**a
    return w / w.mean()


def apo_dads_kl_weights(group_accuracy: torch.Tensor, *, beta: float) -> torch.Tensor:
    """APO's Difficulty-Adaptive Divergence Shaping: the KL weight of a prompt's positive samples.

    With the group's accuracy acc_q (difficulty d_q = 1 − acc_q), a positive-advantage response's
    per-response KL term is weighted by β·f(d_q), f(d) = 1 − exp(−e·(1 − d)) = 1 − e^{−e·acc} for
    0 < d < 1 and f = 1 at d ∈ {0, 1}; negative-advantage responses keep β (apply these weights to
    the positive samples only). Hard prompts (low accuracy) get a small KL weight, so a rare success
    may move far from the reference; easy ones stay close.

    Shapes: group_accuracy[B] in [0, 1] -> [B].

    References: "APO: Enhancing Reasoning Ability of MLLMs via Asymmetric Policy Optimization"
    (arXiv 2506.21655), Sec. 3.2 (DADS); release github.com/Indolent-Kawhi/View-R1 @ 093f2d8,
    openrlhf/trainer/ray/ppo_actor.py (``calculate_kl_weight``, applied where ``advantage > 0``).
    """
    b = check_positive_scalar("beta", beta)
    acc = check_unit_interval_tensor("group_accuracy", group_accuracy, ndim=1)
    f = -torch.expm1(-math.e * acc)
    return b * torch.where((acc == 0) | (acc == 1), torch.ones_like(f), f)


def apo_stcr_weights(lengths: torch.Tensor, correct: torch.Tensor, *, base: float = 1.00001) -> torch.Tensor:
    """APO's Suboptimal Trajectory Complexity Regularization, as released: a multiplicative weight on
    the advantages of overlong incorrect responses.

    In a group with at least one correct response, an incorrect response longer than the correct
    responses' mean length L̄⁺ by Δ = L − L̄⁺ > 0 gets w = 1 + (1 − base^{−Δ}) ∈ (1, 2); every other
    response w = 1. The advantage is multiplied by w, so a long wrong answer is pushed down harder.

    Shapes: lengths[B, G] (> 0, tokens), correct[B, G] bool -> weights[B, G].

    References: APO (arXiv 2506.21655), Sec. 3.3 (STCR); release github.com/Indolent-Kawhi/View-R1 @
    093f2d8, openrlhf/trainer/ppo_utils/experience_maker.py (``neg_diff_weights``, ``use_stcr``).
    """
    ln, c = _lc(lengths, correct)
    bs = check_positive_scalar("base", base)
    if bs <= 1.0:
        raise ValueError(f"base must be > 1, got {base!r}")
    cf = c.to(ln.dtype)
    n_pos = cf.sum(dim=1, keepdim=True)
    mean_pos = (ln * cf).sum(dim=1, keepdim=True) / n_pos.clamp(min=1)
    delta = torch.where(~c & (n_pos > 0), ln - mean_pos, torch.zeros_like(ln))
    extra = torch.where(delta > 0, -torch.expm1(-delta * math.log(bs)), torch.zeros_like(ln))
    return 1.0 + extra


def apo_stcr_penalty(lengths: torch.Tensor, correct: torch.Tensor, *, coef: float) -> torch.Tensor:
    """A reward-penalty reading of APO's STCR (derived here; the release is :func:`apo_stcr_weights`).

    For an incorrect response of length L in a group with mean length L̄:
    penalty = −coef · clip((L − L̄)/L̄, 0, 1); correct responses get 0 (added to the reward, it
    discourages overlong wrong answers without touching correct ones). Form derived here; the
    authors' release instead multiplies the advantage of overlong wrong answers (``apo_stcr_weights``).

    Shapes: lengths[B, G] (> 0), correct[B, G] bool -> [B, G].

    References: APO (2025), Sec. 3.3 (STCR).
    """
    c = check_nonnegative_scalar("coef", coef)
    ln, correct = _lc(lengths, correct)
    mean = ln.mean(dim=1, keepdim=True)
    pen = -c * torch.clamp((ln - mean) / mean, 0.0, 1.0)
    return torch.where(correct, torch.zeros_like(pen), pen)


