"""TRL adapters: length rewards as ``GRPOTrainer`` reward functions, and a reference of each ``loss_type``.

Read (for conventions only, no code copied): TRL 1.16.0 (PyPI), ``trl/trainer/grpo_trainer.py``
(``_calculate_rewards``: a reward function is called as ``f(prompts=..., completions=...,
completion_ids=..., **dataset_columns, trainer_state=..., log_extra=..., log_metric=...)`` and returns one
float — or None, turned into NaN and ignored — per completion; ``_compute_loss``: the loss types) and
``trl/trainer/grpo_config.py`` (the defaults).

* :class:`LengthReward` wraps a length reward of :mod:`rlref.llm.length` (DLER truncation, TLDR budget,
  cosine, Train-Long-Think-Short budget, DAPO overlong, Kimi) as a picklable TRL reward function with a
  ``__name__``. The length of a completion is ``len(completion_ids)`` (tokens, as TRL counts them).
  Correctness comes from a TRL-style reward function given as ``correct`` (e.g. the user's accuracy
  reward): a completion is correct when that function's value exceeds ``correct_threshold``. TRL sums
  reward functions with ``reward_weights``, so a length reward that already contains the correctness
  term (DLER's 1[correct]·1[L ≤ B], TLDR's, the cosine reward) is meant to *replace* the accuracy reward,
  while Kimi's and DAPO's penalties are meant to be *added* to it.
* :func:`trl_grpo_loss` computes, from rlref primitives (``ppo_clip``, ``gspo_clip``, ``cispo_loss``,
  ``sapo_loss``, ``vespo_loss``, ``kl_penalty``, ``aggregate``), what ``GRPOTrainer._compute_loss`` returns
  for each ``loss_type`` on given per-token log-probs (tested equal to TRL's own method, value and gradient).

Group-wise rewards (Kimi's min/max within a group) see only the completions of one reward call: TRL
scores each process's slice of the generation batch, so a group split across processes is scored in
parts. One process holds whole groups; with several, prefer the verl adapter (whole groups) or check
that ``per_device_train_batch_size * steps_per_generation`` is a multiple of ``num_generations``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from rlref.llm import length
from rlref.llm._checks import check_choice, check_nonnegative_scalar, check_positive_scalar
from rlref.llm.divergences import kl_penalty
from rlref.llm.losses import aggregate, ppo_clip
from rlref.llm.surrogates import cispo_loss, gspo_clip, sapo_loss, vespo_loss

__all__ = ["LENGTH_REWARDS", "LengthReward", "TRL_LOSS_TYPES", "trl_grpo_loss"]

#: name -> (rlref function, needs correctness, group-wise)
LENGTH_REWARDS: dict[str, tuple[Callable[..., torch.Tensor], bool, bool]] = {
    "dler_truncation": (length.dler_truncation_reward, True, False),
    "tldr_budget": (length.tldr_budget_reward, True, False),
    "cosine": (length.cosine_length_reward, True, False),
    "budget": (length.budget_reward, True, False),
    "dapo_overlong": (length.dapo_overlong_penalty, False, False),
    "kimi": (length.kimi_length_reward, True, True),
}


class LengthReward:
    """A length reward of :mod:`rlref.llm.length` in TRL's ``reward_funcs`` calling convention.

    ``LengthReward(kind, correct=accuracy_fn, **params)``; ``kind`` in ``LENGTH_REWARDS``, ``params`` the
    keyword arguments of the rlref function (e.g. ``budget=512`` for DLER/TLDR, ``max_length=`` for cosine
    and DAPO, ``cache_length=`` for DAPO). Called as TRL calls a reward function, it returns
    ``list[float | None]``: None where ``correct`` returned None (TRL ignores it).

    * per-response kinds: r_n = f(L_n, c_n; params) (the rlref function on a [1, N] batch);
    * ``"kimi"``: completions of the same prompt (compared by ``str(prompt)``) form a group, scored by
      :func:`rlref.llm.length.kimi_length_reward` on that group.

    Picklable when ``correct`` is (a module-level function): TRL may send reward functions to workers.
    Raises ValueError at construction for an unknown kind, a missing ``correct`` or bad parameters (the
    rlref function is called once on a dummy input, so a wrong keyword fails here, not mid-training).

    References: the rlref function of each kind (DLER, TLDR, Yeo et al., Train Long Think Short, DAPO,
    Kimi k1.5); TRL 1.16 ``GRPOTrainer._calculate_rewards`` (the calling convention).
    """

    def __init__(self, kind: str, *, correct: Callable[..., list] | None = None, correct_threshold: float = 0.5,
                 name: str | None = None, **params: Any) -> None:
        self.kind = check_choice("kind", kind, tuple(LENGTH_REWARDS))
        fn, needs_correct, _ = LENGTH_REWARDS[self.kind]
        if needs_correct and correct is None:
            raise ValueError(f"LengthReward({kind!r}) needs correct=<a TRL-style reward function giving correctness per completion>")
        if correct is not None and not callable(correct):
            raise ValueError(f"correct must be callable (a TRL reward function), got {type(correct).__name__}")
        self.correct = correct
        self.correct_threshold = float(correct_threshold)
        self.params = dict(params)
        self.__name__ = name if name is not None else f"rlref_{self.kind}"
        try:
            self._score(torch.ones(1, 1), torch.ones(1, 1, dtype=torch.bool))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"LengthReward({kind!r}) parameters {self.params}: {exc}") from exc

    def __repr__(self) -> str:
        return f"LengthReward({self.kind!r}, name={self.__name__!r}, params={self.params})"

    def _score(self, lengths: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
        fn, needs_correct, _ = LENGTH_REWARDS[self.kind]
        if needs_correct:
            return fn(lengths, correct, **self.params)
        return fn(lengths, **self.params)

    def __call__(self, prompts: list | None = None, completions: list | None = None, completion_ids: list | None = None,
                 **kwargs: Any) -> list[float | None]:
        if completion_ids is None:
            raise ValueError(f"{self.__name__}: TRL passes completion_ids (token ids per completion); got None")
        n = len(completion_ids)
        # an empty completion counts as one token (rlref's length rewards need L > 0)
        lengths = torch.tensor([max(len(ids), 1) for ids in completion_ids], dtype=torch.float64)
        known = [True] * n
        flags = [False] * n
        if LENGTH_REWARDS[self.kind][1]:
            values = self.correct(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
            if len(values) != n:
                raise ValueError(f"{self.__name__}: correct returned {len(values)} values for {n} completions")
            known = [v is not None and v == v for v in values]  # None and NaN: unknown
            flags = [bool(k and float(v) > self.correct_threshold) for v, k in zip(values, known, strict=True)]
        c = torch.tensor(flags, dtype=torch.bool)
        if LENGTH_REWARDS[self.kind][2]:
            keys = [str(p) for p in prompts] if prompts is not None else ["" for _ in range(n)]
            out = torch.empty(n, dtype=torch.float64)
            for key in dict.fromkeys(keys):
                pos = [i for i, k in enumerate(keys) if k == key]
                out[pos] = self._score(lengths[pos].unsqueeze(0), c[pos].unsqueeze(0))[0]
        else:
            out = self._score(lengths.unsqueeze(0), c.unsqueeze(0))[0]
        return [float(r) if k else None for r, k in zip(out.tolist(), known, strict=True)]


TRL_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo", "cispo", "sapo", "vespo")
_CLIP_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo")


def trl_grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    loss_type: str = "dapo",
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    delta: float | None = None,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    use_bias_correction_kl: bool = False,
    importance_sampling_level: str = "token",
    max_completion_length: int | None = None,
    num_items_in_batch: float | None = None,
    num_processes: int = 1,
    gradient_accumulation_steps: int = 1,
    steps_per_generation: int = 1,
    sapo_temperature_pos: float = 1.0,
    sapo_temperature_neg: float = 1.05,
    vespo_k_pos: float = 2.0,
    vespo_lambda_pos: float = 3.0,
    vespo_k_neg: float = 3.0,
    vespo_lambda_neg: float = 2.0,
) -> torch.Tensor:
    """What TRL 1.16's ``GRPOTrainer._compute_loss`` returns (training mode), from rlref primitives.

    Per-token loss ℓ (``aggregation="none"``), then TRL's reduction:

    | loss_type | per-token loss | reduction (then ÷ gradient_accumulation_steps) |
    |---|---|---|
    | grpo | ``ppo_clip(eps_low=ε, eps_high=ε_high, dual_clip=δ)`` | ``seq-mean-token-mean`` |
    | bnpo | same | ``token-mean`` (local tokens) |
    | dr_grpo | same | ``constant``, C = max_completion_length |
    | dapo | same | Σ ℓ / (N_items/P · GA/S) (global tokens) |
    | luspo | same, on GSPO's sequence ratio | ``seq-mean-token-sum`` |
    | cispo | ``cispo_loss(eps_low=1, eps_high=ε_high − 1)`` | as dapo |
    | sapo | ``sapo_loss(τ_pos, τ_neg)`` | ``seq-mean-token-mean`` |
    | vespo | ``vespo_loss(k, λ)`` | as dapo |

    ``importance_sampling_level="sequence"`` replaces the token ratio by GSPO's sequence ratio
    (``gspo_clip``; clip loss types only here). TRL's ``delta`` (INTELLECT-2's upper bound on the ratio
    for A < 0) is rlref's ``dual_clip`` when δ > 1 + ε_high. ``beta > 0`` adds β·k3(π_θ, π_ref) per token
    before the reduction (× the ratio with ``use_bias_correction_kl``). ``dapo``, ``cispo`` and ``vespo``
    divide by ``num_items_in_batch`` (the token count of the whole generation batch, all processes)
    / ``num_processes`` × GA / ``steps_per_generation``; the others normalize locally.

    Differences from TRL kept on purpose (documented in docs/llm.md): a completion with no valid token
    is skipped by rlref's ``seq-mean-token-mean`` but counted (as 0) in TRL's mean; rlref caps the ratio's
    exponent only where the loss cannot depend on it (TRL does not cap; verl clamps to ±20); VESPO's
    log-weight clamps are not applied. Not covered: ``top_entropy_quantile``, the off-policy mask, vLLM
    importance-sampling correction, the entropy bonus (they multiply or add to ℓ outside the loss type).

    Shapes: logp[B, T], old_logp[B, T], advantages[B] (TRL unsqueezes to [B, 1]) or [B, T], mask[B, T],
    ref_logp[B, T] -> scalar.

    References: TRL 1.16.0 ``GRPOTrainer._compute_loss`` and ``GRPOConfig``; the papers of each primitive
    (DeepSeekMath, DAPO, Dr. GRPO, GSPO, LUSPO arXiv 2602.05261, MiniMax-M1, SAPO, VESPO, INTELLECT-2).
    """
    lt = check_choice("loss_type", loss_type, TRL_LOSS_TYPES)
    level = check_choice("importance_sampling_level", importance_sampling_level, ("token", "sequence"))
    el = float(epsilon)
    eh = float(epsilon if epsilon_high is None else epsilon_high)
    ga = gradient_accumulation_steps
    if level == "sequence" and lt not in _CLIP_TYPES:
        raise ValueError(f"importance_sampling_level='sequence' is supported here for the clip loss types {list(_CLIP_TYPES)}, "
                         f"got loss_type={lt!r}")
    if lt == "luspo" and level != "sequence":
        raise ValueError("loss_type='luspo' requires importance_sampling_level='sequence' (as TRL enforces)")
    if delta is not None:
        if lt not in _CLIP_TYPES:
            raise ValueError(f"delta applies to the clip loss types {list(_CLIP_TYPES)}, got loss_type={lt!r}")
        if not float(delta) > 1.0 + eh:
            raise ValueError(f"delta must be > 1 + epsilon_high = {1.0 + eh} (there TRL's two-sided clip is the dual clip), got {delta!r}")
    m = mask.bool() if isinstance(mask, torch.Tensor) and mask.dtype != torch.bool else mask
    if lt in _CLIP_TYPES:
        clip = gspo_clip if level == "sequence" else ppo_clip
        per_tok = clip(logp, old_logp, advantages, m, eps_low=el, eps_high=eh, dual_clip=delta, aggregation="none").loss
    elif lt == "cispo":
        if eh < 1.0:
            raise ValueError(f"for loss_type='cispo' TRL's epsilon_high is the cap ε_max on the ratio (>= 1), got {eh!r}")
        per_tok = cispo_loss(logp, old_logp, advantages, m, eps_low=1.0, eps_high=eh - 1.0, aggregation="none")
    elif lt == "sapo":
        per_tok = sapo_loss(logp, old_logp, advantages, m, tau_pos=sapo_temperature_pos, tau_neg=sapo_temperature_neg, aggregation="none")
    else:
        per_tok = vespo_loss(logp, old_logp, advantages, m, k_pos=vespo_k_pos, lambda_pos=vespo_lambda_pos, k_neg=vespo_k_neg,
                             lambda_neg=vespo_lambda_neg, aggregation="none")
    if beta != 0.0:
        b = check_nonnegative_scalar("beta", beta)
        if ref_logp is None:
            raise ValueError("beta > 0 needs ref_logp (the reference model's per-token log-probs)")
        kl = kl_penalty(logp, ref_logp, "k3")
        if use_bias_correction_kl:
            if level == "sequence":
                from rlref.llm.surrogates import sequence_log_ratio

                kl = kl * torch.exp(sequence_log_ratio(logp, old_logp, m)).unsqueeze(1)
            else:
                kl = kl * torch.exp(logp - old_logp.detach())
        per_tok = per_tok + aggregate(b * kl, m, aggregation="none")
    if lt in ("grpo", "sapo"):
        return aggregate(per_tok, m, aggregation="seq-mean-token-mean") / ga
    if lt == "bnpo":
        return aggregate(per_tok, m, aggregation="token-mean") / ga
    if lt == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("loss_type='dr_grpo' needs max_completion_length (TRL's constant normalizer)")
        return aggregate(per_tok, m, aggregation="constant", constant=max_completion_length) / ga
    if lt == "luspo":
        return aggregate(per_tok, m, aggregation="seq-mean-token-sum") / ga
    if num_items_in_batch is None:
        raise ValueError(f"loss_type={lt!r} needs num_items_in_batch (the token count of the whole generation batch)")
    n_items = max(float(num_items_in_batch), 1.0)
    norm = n_items / check_positive_scalar("num_processes", num_processes) * ga / check_positive_scalar("steps_per_generation",
                                                                                                       steps_per_generation)
    return per_tok.sum() / norm
