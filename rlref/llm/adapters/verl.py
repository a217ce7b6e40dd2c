"""verl adapters: rlref's advantage estimators and policy losses in verl's registries.

Read (for signatures and conventions only, no code copied): verl 0.9.1 (PyPI wheel),
``verl/trainer/ppo/core_algos.py`` — ``register_adv_est(name)`` / ``register_policy_loss(name)`` are
decorators storing the function by name (re-registering a *different* function under a taken
estimator name raises); an advantage estimator is called as ``fn(token_level_rewards[N, T],
response_mask[N, T], config=AlgoConfig, index=uid array)`` and returns ``(advantages[N, T],
returns[N, T])``; a policy loss is called as ``fn(old_log_prob, log_prob, advantages, response_mask,
loss_agg_mode, config=ActorConfig, rollout_is_weights=None)`` and returns ``(loss, metrics)``, the loss
reduced by ``agg_loss(loss_mat, loss_mask, loss_agg_mode, **config.global_batch_info)`` so that the
data-parallel normalization (``dp_size``, global token / sequence counts) is verl's; and
``verl/trainer/ppo/ray_trainer.py`` (``compute_advantage``: how estimators are called).

* Advantage estimators (``make_adv_estimator``): the outcome score of a response is
  ``token_level_rewards.sum(-1)``; responses are grouped by ``index`` with
  :func:`rlref.llm.advantages.group_by_index` (ragged, interleaved groups are fine), the rlref estimator
  runs on the packed groups, and the advantage is broadcast over the response's tokens (× mask).
  Group-wise length rewards enter here, since only an estimator sees whole groups: ``kimi_grpo``
  (score + w·Kimi's length reward, then GRPO), ``grpo_lambda`` (GRPO-λ's top-λ switch to score + Kimi,
  then GRPO), ``dler`` (DLER's truncation reward 1[correct]·1[L ≤ budget] with DLER's batch
  normalization, verl's token weighting). A response is correct when its score > ``correct_threshold``;
  its length is ``response_mask.sum(-1)``.
* Single-response groups: verl's ``grpo`` gives one its raw score s/(1 + ε) (mean 0, std 1), ``rloo`` its
  raw score; rlref's estimators give 0 (its own baseline) and ``rloo`` refuses it.
  ``single_response="verl"`` (the default here) reproduces verl's rule for the group estimators (grpo,
  dr_grpo, rloo and the length estimators built on grpo); ``"rlref"`` keeps rlref's 0.
* Policy losses (``make_policy_loss``): the per-token loss of an rlref primitive with
  ``aggregation="none"``, times ``rollout_is_weights`` if given, reduced by verl's own ``agg_loss``.
  ``ppo_clip`` reads ``clip_ratio``/``clip_ratio_low``/``clip_ratio_high`` and the dual clip
  ``clip_ratio_c`` (default 3, as verl's ``vanilla``); ``gspo`` the same ε; ``cispo`` clamps the weight to
  [1 − clip_ratio_low, 1 + clip_ratio_high] (verl's form); ``sapo`` reads ``tau_pos``/``tau_neg`` (and,
  unlike verl's ``sapo``, honours ``loss_agg_mode``). verl's KL loss already offers ``kl_loss_type="k3+"``,
  which equals rlref's ``kl_penalty(..., "k3+")`` (tested).

Nothing here imports verl until :func:`register` is called without ``core_algos`` (or a policy loss is
called without an ``agg_loss``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch

from rlref.llm import advantages as adv_mod
from rlref.llm import length
from rlref.llm._checks import check_choice, check_float_tensor, check_mask
from rlref.llm.losses import aggregate, ppo_clip
from rlref.llm.surrogates import cispo_loss, gspo_clip, sapo_loss

__all__ = ["ADV_ESTIMATORS", "POLICY_LOSSES", "make_adv_estimator", "make_policy_loss", "register"]

ADV_ESTIMATORS = ("grpo", "dr_grpo", "rloo", "reinforce_pp", "group_mean_batch_std", "kimi_grpo", "grpo_lambda", "dler")
POLICY_LOSSES = ("ppo_clip", "gspo", "cispo", "sapo")
_SINGLE_AWARE = ("grpo", "dr_grpo", "rloo", "kimi_grpo", "grpo_lambda")


def _cfg(config: object, name: str, default: object = None) -> object:
    """config.name, or config.get(name), or the default (verl passes dataclass configs or DictConfigs)."""
    if config is None:
        return default
    if hasattr(config, name):
        v = getattr(config, name)
        return default if v is None else v
    getter = getattr(config, "get", None)
    if callable(getter):
        v = getter(name, default)
        return default if v is None else v
    return default


def _group_estimate(r: torch.Tensor, g: adv_mod.GroupedScores, base: str, single: str, eps: float) -> torch.Tensor:
    """Advantages[K, G] of packed rewards r[K, G] by a group estimator, with verl's or rlref's single-response rule."""
    fn = adv_mod.GROUP_ESTIMATORS[base]
    kw = {"eps": eps} if base == "grpo" else {}
    is_single = g.sizes == 1
    if single == "rlref" and base != "rloo":
        return fn(r, g.mask, **kw)
    out = torch.zeros_like(r)
    multi = ~is_single
    if bool(multi.any()):
        out[multi] = fn(r[multi], g.mask[multi], **kw)
    if single == "verl":
        s = r[is_single, 0]
        out[is_single, 0] = s / (1.0 + eps) if base == "grpo" else s
    elif bool(is_single.any()):  # rlref's rloo needs two responses per group
        raise ValueError(f"rloo needs at least 2 responses per group; group {g.keys[int(torch.nonzero(is_single)[0])]!r} has 1 "
                         "(use single_response='verl' for verl's raw-score rule)")
    return out


def make_adv_estimator(name: str, *, single_response: str = "verl", eps: float = 1e-6, correct_threshold: float = 0.5,
                       length_weight: float = 1.0, top_fraction: float | None = None, budget: float | None = None
                       ) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """An rlref advantage estimator with verl's signature ``fn(token_level_rewards, response_mask, index, config, **kw)``.

    ``name`` in ``ADV_ESTIMATORS``. Scores s_n = Σ_t token_level_rewards[n, t]; lengths L_n = Σ_t mask;
    correct_n = s_n > ``correct_threshold``. Then, on the groups of ``index``:
    ``grpo``/``dr_grpo``/``rloo``/``reinforce_pp``/``group_mean_batch_std`` — the rlref estimator of s;
    ``kimi_grpo`` — GRPO of s + w·``kimi_length_reward``(L, correct) (w = ``length_weight``);
    ``grpo_lambda`` — GRPO of ``grpo_lambda_reward``(correct, s + w·Kimi, top_fraction) (equal group sizes
    only: its batch ranking uses each group's accuracy); ``dler`` — ``dler_batch_normalized``(
    ``dler_truncation_reward``(L, correct, budget), weighting="token") with budget = ``budget`` or, if
    None, the response width T (only responses that hit the generation limit are truncated).
    Returns (A[N, T], A[N, T]) with A[n, t] = a_n · mask[n, t] in the rewards' dtype.

    References: as each rlref function; verl 0.9.1 ``compute_grpo_outcome_advantage`` /
    ``compute_rloo_outcome_advantage`` (the single-response rule reproduced by ``single_response="verl"``).
    """
    est = check_choice("name", name, ADV_ESTIMATORS)
    single = check_choice("single_response", single_response, ("verl", "rlref"))

    def estimator(token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: object = None, config: object = None,
                  **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        rew = check_float_tensor("token_level_rewards", token_level_rewards, ndim=2)
        m = check_mask("response_mask", response_mask, rew.shape)
        if index is None:
            raise ValueError(f"rlref_{est}: verl passes index (the uid of each response's prompt); got None")
        with torch.no_grad():
            scores = aggregate(rew, m, aggregation="none").sum(dim=1)
            g = adv_mod.group_by_index(scores, index)
            r = g.rewards
            if est in ("reinforce_pp", "group_mean_batch_std"):
                a = adv_mod.GROUP_ESTIMATORS[est](r, g.mask)
            elif est in ("grpo", "dr_grpo", "rloo"):
                a = _group_estimate(r, g, est, single, eps)
            else:
                lens = g.pack(m.sum(dim=1).clamp(min=1).to(rew.dtype))
                correct = g.pack(scores > correct_threshold)
                if est == "dler":
                    bud = float(rew.shape[1]) if budget is None else budget
                    shaped = length.dler_truncation_reward(lens, correct & g.mask, bud)
                    a = length.dler_batch_normalized(shaped, g.mask, eps=eps, weighting="token", lengths=lens)
                else:
                    shaped = r + length_weight * length.kimi_length_reward(lens, correct & g.mask)
                    if est == "grpo_lambda":
                        if bool((g.sizes != g.sizes[0]).any()):
                            raise ValueError("rlref_grpo_lambda ranks groups by accuracy and needs equal group sizes; got sizes "
                                             f"{sorted(set(g.sizes.tolist()))}")
                        shaped = length.grpo_lambda_reward(correct, shaped, top_fraction=top_fraction)
                    a = _group_estimate(shaped, g, "grpo", single, eps)
            out = (g.ungroup(a).to(rew.dtype).unsqueeze(1) * m.to(rew.dtype))
        return out, out

    estimator.__name__ = f"rlref_{est}"
    estimator.__doc__ = f"rlref's {est!r} advantage estimator in verl's signature (see rlref.llm.adapters.verl.make_adv_estimator)."
    return estimator


def _verl_agg_loss() -> Callable[..., torch.Tensor]:
    return importlib.import_module("verl.trainer.ppo.core_algos").agg_loss


def make_policy_loss(name: str, *, agg_loss: Callable[..., torch.Tensor] | None = None) -> Callable[..., tuple[torch.Tensor, dict]]:
    """An rlref policy loss with verl's signature ``fn(old_log_prob, log_prob, advantages, response_mask,
    loss_agg_mode="token-mean", config=None, rollout_is_weights=None) -> (loss, metrics)``.

    ``name`` in ``POLICY_LOSSES``; the per-token loss comes from rlref (``aggregation="none"``) and is
    reduced by ``agg_loss`` (verl's own, imported at call time, unless one is given) with
    ``config.global_batch_info``. Metrics: ``actor/pg_clipfrac``, ``actor/ppo_kl`` (token-mean of
    log π_old − log π_θ, verl's k1) and ``actor/pg_clipfrac_lower`` (the dual clip's fraction).

    References: verl 0.9.1 ``compute_policy_loss_vanilla``/``_gspo``/``_cispo``/``_sapo`` (the config
    keys read and the metrics); the rlref primitives' papers.
    """
    loss_name = check_choice("name", name, POLICY_LOSSES)

    def policy_loss(old_log_prob: torch.Tensor, log_prob: torch.Tensor, advantages: torch.Tensor, response_mask: torch.Tensor,
                    loss_agg_mode: str = "token-mean", config: object = None, rollout_is_weights: torch.Tensor | None = None,
                    **kwargs: Any) -> tuple[torch.Tensor, dict]:
        lp = check_float_tensor("log_prob", log_prob, ndim=2)
        m = check_mask("response_mask", response_mask, lp.shape)
        clip = float(_cfg(config, "clip_ratio", 0.2))
        el = float(_cfg(config, "clip_ratio_low", clip))
        eh = float(_cfg(config, "clip_ratio_high", clip))
        zero = torch.zeros((), dtype=torch.float32)
        clipfrac, lower = zero, zero
        if loss_name == "ppo_clip":
            res = ppo_clip(lp, old_log_prob, advantages, m, eps_low=el, eps_high=eh, dual_clip=float(_cfg(config, "clip_ratio_c", 3.0)),
                           aggregation="none")
            per_tok, clipfrac, lower = res.loss, res.clip_fraction, res.dual_clip_fraction
        elif loss_name == "gspo":
            res = gspo_clip(lp, old_log_prob, advantages, m, eps_low=el, eps_high=eh, aggregation="none")
            per_tok, clipfrac = res.loss, res.clip_fraction
        elif loss_name == "cispo":
            per_tok = cispo_loss(lp, old_log_prob, advantages, m, eps_low=el, eps_high=eh, aggregation="none")
        else:
            per_tok = sapo_loss(lp, old_log_prob, advantages, m, tau_pos=float(_cfg(config, "tau_pos", 1.0)),
                                tau_neg=float(_cfg(config, "tau_neg", 1.05)), aggregation="none")
        if rollout_is_weights is not None:
            per_tok = per_tok * rollout_is_weights
        info = dict(_cfg(config, "global_batch_info", {}) or {})
        reduce = agg_loss if agg_loss is not None else _verl_agg_loss()
        loss = reduce(loss_mat=per_tok, loss_mask=m, loss_agg_mode=loss_agg_mode, **info)
        with torch.no_grad():
            ppo_kl = aggregate(old_log_prob.detach().to(per_tok.dtype) - lp.detach().to(per_tok.dtype), m, aggregation="token-mean") \
                if bool(m.any()) else zero
        metrics = {"actor/pg_clipfrac": float(clipfrac), "actor/ppo_kl": float(ppo_kl), "actor/pg_clipfrac_lower": float(lower)}
        return loss, metrics

    policy_loss.__name__ = f"rlref_{loss_name}"
    policy_loss.__doc__ = f"rlref's {loss_name!r} policy loss in verl's signature (see rlref.llm.adapters.verl.make_policy_loss)."
    return policy_loss


_MADE: dict[tuple, Callable] = {}


def register(prefix: str = "rlref_", *, core_algos: object = None, params: dict[str, dict] | None = None) -> dict[str, list[str]]:
    """Add every rlref advantage estimator and policy loss to verl's registries under ``prefix + name``.

    ``core_algos`` defaults to ``verl.trainer.ppo.core_algos`` (imported here); any object with verl's
    ``register_adv_est(name)`` and ``register_policy_loss(name)`` decorators works (the tests pass a stub).
    ``params`` maps an estimator name to keyword arguments of :func:`make_adv_estimator` (e.g.
    ``{"dler": {"budget": 4096}}``). Idempotent: registering again with the same arguments registers the
    same function objects (verl refuses a different function under a taken estimator name). Then select
    them in verl's config: ``algorithm.adv_estimator=rlref_grpo``, ``actor_rollout_ref.actor.policy_loss.
    loss_mode=rlref_ppo_clip``. Returns the registered names.
    """
    ca = core_algos if core_algos is not None else importlib.import_module("verl.trainer.ppo.core_algos")
    params = params or {}
    for key in params:
        check_choice("params key", key, ADV_ESTIMATORS)
    adv_names, loss_names = [], []
    for est in ADV_ESTIMATORS:
        kw = params.get(est, {})
        key = ("adv", prefix, est, tuple(sorted(kw.items())))
        fn = _MADE.setdefault(key, make_adv_estimator(est, **kw))
        ca.register_adv_est(prefix + est)(fn)
        adv_names.append(prefix + est)
    for loss_name in POLICY_LOSSES:
        key = ("loss", prefix, loss_name)
        fn = _MADE.setdefault(key, make_policy_loss(loss_name))
        ca.register_policy_loss(prefix + loss_name)(fn)
        loss_names.append(prefix + loss_name)
    return {"adv_estimators": adv_names, "policy_losses": loss_names}
