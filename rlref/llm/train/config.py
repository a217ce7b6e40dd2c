"""Training configuration: a frozen dataclass read from YAML plus ``key=value`` overrides, validated
before any training starts (every error is a ValueError naming the key)."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = ["TrainConfig", "load_config", "shipped_configs", "validate", "resolve_callable", "ADVANTAGES", "POLICY_LOSSES",
           "PREFERENCE_LOSSES", "LENGTH_REWARDS", "REWARD_SWITCHES", "BUDGET_SCHEDULES", "FAMILIES", "DISTRIBUTED"]

FAMILIES = ("grpo", "dpo", "sft", "selfplay")
# group advantages of rlref.llm.advantages with the signature f(rewards[B, G], **advantage_kwargs) -> [B, G]
ADVANTAGES = ("grpo", "dr_grpo", "rloo", "reinforce_pp", "group_mean_batch_std", "dler_batch_normalized")
# policy losses whose inputs the loop has (see rlref.llm.train.loop.policy_term)
POLICY_LOSSES = ("ppo_clip", "lp_reg", "drpo", "kimi_mirror_descent")
PREFERENCE_LOSSES = ("dpo", "ipo", "rpo", "xpo", "ld_dpo")
# per-response length rewards of rlref.llm.length with the signature f(lengths[B, G], correct[B, G], **kwargs) -> [B, G],
# plus "hapo": the stateful HistoryAwareReward (history keyed by prompt text, kept in Trainer.extra_state)
LENGTH_REWARDS = ("dler_truncation_reward", "tldr_budget_reward", "kimi_length_reward", "cosine_length_reward", "budget_reward", "hapo")
REWARD_SWITCHES = ("grpo_lambda",)
BUDGET_SCHEDULES = ("curriculum",)
DISTRIBUTED = ("ddp", "fsdp2")
# keys the loop passes to a policy loss itself (set them as config keys, not in policy_loss_kwargs)
_LOOP_POLICY_ARGS = {"ppo_clip": ("eps_low", "eps_high", "aggregation", "constant"), "lp_reg": ("eps_low", "eps_high", "aggregation"),
                     "drpo": (), "kimi_mirror_descent": ("log_partition",)}
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class TrainConfig:
    """Every key of a training run (YAML keys and ``key=value`` overrides use these names).

    family: "grpo" (online, sampled groups), "dpo" (offline pairs), "sft" (teacher-forced targets) or
    "selfplay" (rlref.llm.train.selfplay.ALGORITHMS[selfplay_algorithm]). steps: optimizer steps (a step of
    ppo_epochs x ppo_mini_batches updates counts once). prompts_per_step x group_size sequences per step
    (dpo/sft: prompts_per_step pairs/targets), split into micro-batches of micro_batch_size sequences (pairs)
    with gradient accumulation. See docs/training.md for every key.
    """

    family: str = "grpo"
    seed: int = 0
    steps: int = 20
    # model / tokenizer: local paths, or a tiny model built from a config over the character tokenizer
    model_path: str | None = None
    tokenizer_path: str | None = None
    arch: str = "llama"
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    # task
    terms: int = 3
    modulus: int = 10
    # batch and sampling
    prompts_per_step: int = 4
    group_size: int = 4
    micro_batch_size: int = 4
    max_new_tokens: int = 12
    temperature: float = 1.0
    use_cache: bool = True  # KV cache in sampling (same tokens as without it)
    # optimizer
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    # GRPO family
    advantage: str = "grpo"
    advantage_kwargs: dict = field(default_factory=dict)
    policy_loss: str = "ppo_clip"
    policy_loss_kwargs: dict = field(default_factory=dict)
    ppo_epochs: int = 1
    ppo_mini_batches: int = 1
    aggregation: str = "token-mean"
    constant: float | None = None
    eps_low: float = 0.2
    eps_high: float = 0.2
    kl_estimator: str = "k3"
    kl_beta: float = 0.0
    length_reward: str | None = None
    length_reward_kwargs: dict = field(default_factory=dict)
    length_coef: float = 1.0
    reward_switch: str | None = None
    reward_switch_kwargs: dict = field(default_factory=dict)
    budget_schedule: str | None = None
    budget_schedule_kwargs: dict = field(default_factory=dict)
    schedule_max_new_tokens: bool = False
    reward_fn: str | None = None  # "module:function"(problems, responses) -> one float per response; replaces the checker
    # DPO family
    preference_loss: str = "dpo"
    preference_kwargs: dict = field(default_factory=dict)
    beta: float = 0.1
    rpo_alpha: float = 1.0
    rejected_scratchpad: bool = True  # false: the rejected answer is the bare "#wrong" (shorter than the chosen one)
    # SFT family: "module:function"(problem) -> target text; default task.solution(problem)
    sft_target: str | None = None
    # self-play family
    selfplay_algorithm: str = "inpo"
    selfplay_kwargs: dict = field(default_factory=dict)
    # run control
    distributed: str = "ddp"  # under torchrun: "ddp" (DistributedDataParallel) or "fsdp2" (fully_shard)
    # the frozen reference model: "always" (also for the kl metric when kl_beta = 0), or "when_needed" (only when a
    # loss reads it: kl_beta > 0, the DPO and self-play families; otherwise no copy is built and the kl metric is null)
    reference: str = "always"
    checkpoint_every: int = 5
    bf16: bool = False
    progress: bool = True

    def replace(self, **kw) -> TrainConfig:
        return dataclasses.replace(self, **kw)


def shipped_configs() -> list[str]:
    """Names of the configs shipped in ``rlref/llm/configs`` (``rlref train --list-configs``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def _coerce(key: str, raw: str, default: object, annotation: str) -> object:
    v = yaml.safe_load(raw)
    if v is None or "float" not in annotation or isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return v


def load_config(source: str | Path | dict, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML path, a shipped config name or a dict, then ``key=value`` overrides
    (values parsed as YAML). Raises ValueError for an unknown key, a malformed override or a missing file."""
    if isinstance(source, dict):
        data = dict(source)
    else:
        p = Path(source)
        if not p.exists() and (CONFIG_DIR / f"{source}.yaml").exists():
            p = CONFIG_DIR / f"{source}.yaml"
        if not p.exists():
            raise ValueError(f"config {str(source)!r} is neither a file nor a shipped config ({', '.join(shipped_configs())})")
        data = yaml.safe_load(p.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"config {str(p)!r} must be a YAML mapping of key: value")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for ov in overrides:
        if "=" not in ov:
            raise ValueError(f"override {ov!r} must be key=value")
        k, raw = ov.split("=", 1)
        if k not in fields:
            raise ValueError(f"unknown config key {k!r} in override {ov!r}")
        data[k] = _coerce(k, raw, fields[k].default, str(fields[k].type))
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown}; known keys: {sorted(fields)}")
    for k, v in data.items():
        if "float" in str(fields[k].type) and isinstance(v, int) and not isinstance(v, bool):
            data[k] = float(v)
    return TrainConfig(**data)


def _choice(key: str, value: object, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"config key {key!r}: unknown value {value!r}; choose one of {list(options)}")


def _positive_int(cfg: TrainConfig, *keys: str) -> None:
    for k in keys:
        v = getattr(cfg, k)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"config key {k!r} must be an integer >= 1; got {v!r}")


def resolve_callable(key: str, spec: str):
    """Import ``"module:function"`` named by config key ``key``."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"config key {key!r} must be 'module:function'; got {spec!r}")
    mod, name = spec.split(":", 1)
    try:
        return getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"config key {key!r}: cannot import {spec!r} ({exc})") from exc


def resolve_reward_fn(spec: str):
    """Import the ``reward_fn`` ``"module:function"``."""
    return resolve_callable("reward_fn", spec)


def _dict(cfg: TrainConfig, *keys: str) -> None:
    for k in keys:
        v = getattr(cfg, k)
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v):
            raise ValueError(f"config key {k!r} must be a mapping of keyword -> value; got {v!r}")


def _kwargs_error(key: str, name: str, exc: Exception) -> ValueError:
    return ValueError(f"config key {key!r} for {name!r}: {exc}")


def validate(cfg: TrainConfig, tokenizer=None, *, world_size: int = 1) -> None:
    """Check every key before training (no model is run; the objectives are called once on dummy inputs,
    so a wrong name, wrong kwargs or a wrong output shape fail here). Raises ValueError naming the key."""
    from rlref.llm.divergences import KL_ESTIMATORS
    from rlref.llm.losses import AGGREGATIONS

    _choice("family", cfg.family, FAMILIES)
    _positive_int(cfg, "steps", "prompts_per_step", "group_size", "micro_batch_size", "max_new_tokens", "checkpoint_every",
                  "hidden", "layers", "heads", "terms", "ppo_epochs", "ppo_mini_batches")
    _dict(cfg, "advantage_kwargs", "policy_loss_kwargs", "length_reward_kwargs", "reward_switch_kwargs", "budget_schedule_kwargs",
          "preference_kwargs", "selfplay_kwargs")
    _choice("distributed", cfg.distributed, DISTRIBUTED)
    _choice("reference", cfg.reference, ("always", "when_needed"))
    _choice("advantage", cfg.advantage, ADVANTAGES)
    _choice("policy_loss", cfg.policy_loss, POLICY_LOSSES)
    if cfg.aggregation == "none":
        raise ValueError("config key 'aggregation': 'none' returns the per-token loss matrix for an external reducer (verl's agg_loss); "
                         f"the loop needs a scalar loss: choose one of {[a for a in AGGREGATIONS if a != 'none']}")
    _choice("aggregation", cfg.aggregation, AGGREGATIONS)
    _choice("kl_estimator", cfg.kl_estimator, KL_ESTIMATORS)
    _choice("preference_loss", cfg.preference_loss, PREFERENCE_LOSSES)
    if cfg.aggregation == "constant" and (cfg.constant is None or cfg.constant <= 0):
        raise ValueError(f"config key 'constant' must be > 0 with aggregation='constant'; got {cfg.constant!r}")
    if cfg.kl_beta < 0 or cfg.beta <= 0 or cfg.lr <= 0 or cfg.temperature <= 0:
        raise ValueError(f"config keys 'kl_beta' (>= 0), 'beta', 'lr', 'temperature' (> 0); got {cfg.kl_beta}, {cfg.beta}, {cfg.lr}, "
                         f"{cfg.temperature}")
    per_step = cfg.prompts_per_step * (cfg.group_size if cfg.family == "grpo" else 1)
    split = cfg.micro_batch_size * world_size * (cfg.ppo_mini_batches if cfg.family == "grpo" else 1)
    if per_step % split:
        raise ValueError(f"config key 'micro_batch_size': {per_step} sequences per step (prompts_per_step x group_size) are not "
                         f"divisible by micro_batch_size={cfg.micro_batch_size} x world_size={world_size}"
                         + (f" x ppo_mini_batches={cfg.ppo_mini_batches}" if cfg.family == "grpo" else ""))
    if cfg.family == "grpo" and cfg.group_size < 2 and cfg.advantage in ("grpo", "rloo"):
        raise ValueError(f"config key 'group_size' must be >= 2 for advantage={cfg.advantage!r}; got {cfg.group_size}")
    if cfg.family == "grpo" and cfg.policy_loss in ("drpo", "kimi_mirror_descent") and cfg.micro_batch_size % cfg.group_size:
        raise ValueError(f"config key 'micro_batch_size': policy_loss={cfg.policy_loss!r} is a group objective, so a micro-batch must "
                         f"hold whole groups; micro_batch_size={cfg.micro_batch_size} is not a multiple of group_size={cfg.group_size}")
    if cfg.family != "grpo" and (cfg.ppo_epochs != 1 or cfg.ppo_mini_batches != 1):
        raise ValueError(f"config keys 'ppo_epochs'/'ppo_mini_batches' apply to family 'grpo' only; got {cfg.ppo_epochs}, "
                         f"{cfg.ppo_mini_batches} with family={cfg.family!r}")
    if tokenizer is not None and tokenizer.pad_token_id is None:
        raise ValueError("config key 'tokenizer_path': the tokenizer has no pad token (set tokenizer.pad_token before training)")
    _check_policy_loss(cfg)
    _check_rewards(cfg)
    _check_preference(cfg)
    if cfg.sft_target is not None:
        from rlref.llm.train.task import ModSumTask

        fn = resolve_callable("sft_target", cfg.sft_target)
        out = fn(ModSumTask(cfg.terms, cfg.modulus).batch(1, seed=0)[0])
        if not isinstance(out, str) or not out:
            raise ValueError(f"config key 'sft_target': {cfg.sft_target!r} must return a non-empty str for a problem; got {out!r}")
    if cfg.family == "selfplay":
        try:
            from rlref.llm.train import selfplay
        except ImportError as exc:
            raise ValueError(f"config key 'family': 'selfplay' needs rlref.llm.train.selfplay, which is not importable ({exc})") from exc
        _choice("selfplay_algorithm", cfg.selfplay_algorithm, tuple(selfplay.ALGORITHMS))
        try:
            selfplay.check_kwargs(cfg.selfplay_algorithm, dict(cfg.selfplay_kwargs))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ValueError) and "selfplay_kwargs" in str(exc):
                raise  # the message already names the key (no doubled prefix)
            raise _kwargs_error("selfplay_kwargs", cfg.selfplay_algorithm, exc) from exc


def needs_reference(cfg: TrainConfig) -> bool:
    """Whether the run builds the frozen reference model: always with ``reference="always"``; with
    ``"when_needed"`` only when a loss reads it (a KL term, the DPO family, self-play)."""
    return cfg.reference == "always" or cfg.kl_beta > 0 or cfg.family in ("dpo", "selfplay")


def _check_policy_loss(cfg: TrainConfig) -> None:
    """Run the policy loss once on a dummy group batch (2 groups x 2 responses x 3 tokens)."""
    import torch

    from rlref.llm.train.loop import policy_term

    clash = sorted(set(cfg.policy_loss_kwargs) & set(_LOOP_POLICY_ARGS[cfg.policy_loss]))
    if clash:
        raise ValueError(f"config key 'policy_loss_kwargs': {clash} are set by the loop for {cfg.policy_loss!r} (use the config keys "
                         f"{[c for c in clash if c != 'log_partition']} instead)")
    g = torch.Generator().manual_seed(0)
    lp = -torch.rand(4, 3, generator=g, dtype=torch.float64) - 0.1
    logits = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    try:
        policy_term(cfg, lp.clone().requires_grad_(True), lp - 0.01, torch.tensor([1.0, -1.0, 0.5, -0.5], dtype=torch.float64), mask,
                    correct=torch.tensor([True, False, False, True]), rewards=torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64),
                    logits=logits, tokens=torch.zeros(4, 3, dtype=torch.long), group_size=2, max_length=float(cfg.max_new_tokens))
    except (TypeError, ValueError) as exc:
        raise _kwargs_error("policy_loss_kwargs", cfg.policy_loss, exc) from exc


def _check_preference(cfg: TrainConfig) -> None:
    import torch

    from rlref.llm.train.loop import preference_term

    lp = -torch.rand(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 0.1
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    try:
        preference_term(cfg, lp.clone().requires_grad_(True), lp + 0.01, mask, sample_logps=-torch.ones(2, dtype=torch.float64))
    except (TypeError, ValueError) as exc:
        raise _kwargs_error("preference_kwargs", cfg.preference_loss, exc) from exc


def _check_rewards(cfg: TrainConfig) -> None:
    """Call the reward pieces once on a dummy batch: a wrong name, wrong kwargs or a wrong output shape fail here."""
    import inspect

    import torch

    from rlref.llm import length
    from rlref.llm.train.task import ModSumTask

    b, g = 2, 3
    lengths, correct = torch.tensor([[1.0, 4, 9], [2, 3, 5]]), torch.tensor([[True, False, True]] * b)
    budget = None
    if cfg.budget_schedule is not None:
        _choice("budget_schedule", cfg.budget_schedule, BUDGET_SCHEDULES)
        if cfg.length_reward is None or cfg.length_reward == "hapo" or \
                "budget" not in inspect.signature(getattr(length, cfg.length_reward)).parameters:
            raise ValueError(f"config key 'budget_schedule': {cfg.budget_schedule!r} sets the length reward's budget, but length_reward="
                             f"{cfg.length_reward!r} takes none (use dler_truncation_reward, tldr_budget_reward or budget_reward)")
        from rlref.llm.train.loop import scheduled_budget

        try:
            budget = scheduled_budget(cfg, 1)
        except (TypeError, ValueError) as exc:
            raise _kwargs_error("budget_schedule_kwargs", cfg.budget_schedule, exc) from exc
    elif cfg.schedule_max_new_tokens:
        raise ValueError("config key 'schedule_max_new_tokens': true needs a budget_schedule")
    lr = None
    if cfg.length_reward is not None:
        _choice("length_reward", cfg.length_reward, LENGTH_REWARDS)
        try:
            if cfg.length_reward == "hapo":
                h = length.HistoryAwareReward(**cfg.length_reward_kwargs)
                h.update("p", lengths[0], correct[0])
                lr = torch.stack([h.length_reward("p", lengths[i], correct[i]) for i in range(b)])
            else:
                kw = dict(cfg.length_reward_kwargs, **({} if budget is None else {"budget": budget}))
                lr = getattr(length, cfg.length_reward)(lengths, correct, **kw)
        except (TypeError, ValueError) as exc:
            raise _kwargs_error("length_reward_kwargs", cfg.length_reward, exc) from exc
        if tuple(lr.shape) != (b, g):
            raise ValueError(f"config key 'length_reward': {cfg.length_reward!r} returned shape {tuple(lr.shape)}, expected {(b, g)}")
    if cfg.reward_switch is not None:
        _choice("reward_switch", cfg.reward_switch, REWARD_SWITCHES)
        shaped = correct.float() + (0.0 if lr is None else cfg.length_coef * lr)
        try:
            length.grpo_lambda_reward(correct, shaped, **cfg.reward_switch_kwargs)
        except (TypeError, ValueError) as exc:
            raise _kwargs_error("reward_switch_kwargs", cfg.reward_switch, exc) from exc
    if cfg.family == "grpo":
        from rlref.llm import advantages

        kw = dict(cfg.advantage_kwargs)
        if cfg.advantage == "dler_batch_normalized" and kw.get("weighting") == "token":
            kw["lengths"] = lengths
        try:
            adv = getattr(advantages, cfg.advantage)(torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]]), **kw)
        except (TypeError, ValueError) as exc:
            raise _kwargs_error("advantage_kwargs", cfg.advantage, exc) from exc
        if tuple(adv.shape) != (b, g):
            raise ValueError(f"config key 'advantage': {cfg.advantage!r} returned shape {tuple(adv.shape)}, expected {(b, g)}")
    if cfg.reward_fn is not None:
        fn = resolve_reward_fn(cfg.reward_fn)
        task = ModSumTask(cfg.terms, cfg.modulus)
        probs = task.batch(b * g, seed=0)
        out = fn(probs, [task.solution(p) for p in probs])
        try:
            shape = tuple(torch.as_tensor(out, dtype=torch.float64).shape)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"config key 'reward_fn': {cfg.reward_fn!r} must return one float per response ({exc})") from exc
        if shape != (b * g,):
            raise ValueError(f"config key 'reward_fn': {cfg.reward_fn!r} returned shape {shape} for {b * g} responses; "
                             f"it must return one float per response")
