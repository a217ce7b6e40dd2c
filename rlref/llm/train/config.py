"""Training configuration: a frozen dataclass read from YAML plus ``key=value`` overrides, validated
before any training starts (every error is a ValueError naming the key)."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = ["TrainConfig", "load_config", "shipped_configs", "ADVANTAGES", "PREFERENCE_LOSSES", "LENGTH_REWARDS", "FAMILIES"]

FAMILIES = ("grpo", "dpo")
ADVANTAGES = ("grpo", "dr_grpo", "rloo", "reinforce_pp", "group_mean_batch_std")
POLICY_LOSSES = ("ppo_clip",)
PREFERENCE_LOSSES = ("dpo", "ipo", "rpo")
# per-response length rewards of rlref.llm.length with the signature f(lengths[B, G], correct[B, G], **kwargs) -> [B, G]
LENGTH_REWARDS = ("dler_truncation_reward", "tldr_budget_reward", "kimi_length_reward", "cosine_length_reward")
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class TrainConfig:
    """Every key of a training run (YAML keys and ``key=value`` overrides use these names).

    family: "grpo" (online, sampled groups) or "dpo" (offline pairs). steps: optimizer steps.
    prompts_per_step x group_size sequences per step (dpo: prompts_per_step pairs), split into
    micro-batches of micro_batch_size sequences (pairs) with gradient accumulation.
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
    # optimizer
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    # GRPO family
    advantage: str = "grpo"
    policy_loss: str = "ppo_clip"
    aggregation: str = "token-mean"
    constant: float | None = None
    eps_low: float = 0.2
    eps_high: float = 0.2
    kl_estimator: str = "k3"
    kl_beta: float = 0.0
    length_reward: str | None = None
    length_reward_kwargs: dict = field(default_factory=dict)
    length_coef: float = 1.0
    reward_fn: str | None = None  # "module:function"(problems, responses) -> one float per response; replaces the checker
    # DPO family
    preference_loss: str = "dpo"
    beta: float = 0.1
    rpo_alpha: float = 1.0
    # run control
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


def resolve_reward_fn(spec: str):
    """Import ``"module:function"``."""
    if ":" not in spec:
        raise ValueError(f"config key 'reward_fn' must be 'module:function'; got {spec!r}")
    mod, name = spec.split(":", 1)
    try:
        return getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"config key 'reward_fn': cannot import {spec!r} ({exc})") from exc


def validate(cfg: TrainConfig, tokenizer=None, *, world_size: int = 1) -> None:
    """Check every key before training (no model is run). Raises ValueError naming the key."""
    from rlref.llm.divergences import KL_ESTIMATORS
    from rlref.llm.losses import AGGREGATIONS

    _choice("family", cfg.family, FAMILIES)
    _positive_int(cfg, "steps", "prompts_per_step", "group_size", "micro_batch_size", "max_new_tokens", "checkpoint_every",
                  "hidden", "layers", "heads", "terms")
    _choice("advantage", cfg.advantage, ADVANTAGES)
    _choice("policy_loss", cfg.policy_loss, POLICY_LOSSES)
    _choice("aggregation", cfg.aggregation, AGGREGATIONS)
    _choice("kl_estimator", cfg.kl_estimator, KL_ESTIMATORS)
    _choice("preference_loss", cfg.preference_loss, PREFERENCE_LOSSES)
    if cfg.aggregation == "constant" and (cfg.constant is None or cfg.constant <= 0):
        raise ValueError(f"config key 'constant' must be > 0 with aggregation='constant'; got {cfg.constant!r}")
    if cfg.kl_beta < 0 or cfg.beta <= 0 or cfg.lr <= 0 or cfg.temperature <= 0:
        raise ValueError(f"config keys 'kl_beta' (>= 0), 'beta', 'lr', 'temperature' (> 0); got {cfg.kl_beta}, {cfg.beta}, {cfg.lr}, "
                         f"{cfg.temperature}")
    per_step = cfg.prompts_per_step * (cfg.group_size if cfg.family == "grpo" else 1)
    if per_step % (cfg.micro_batch_size * world_size):
        raise ValueError(f"config key 'micro_batch_size': {per_step} sequences per step (prompts_per_step x group_size) are not "
                         f"divisible by micro_batch_size={cfg.micro_batch_size} x world_size={world_size}")
    if cfg.family == "grpo" and cfg.group_size < 2 and cfg.advantage in ("grpo", "rloo"):
        raise ValueError(f"config key 'group_size' must be >= 2 for advantage={cfg.advantage!r}; got {cfg.group_size}")
    if tokenizer is not None and tokenizer.pad_token_id is None:
        raise ValueError("config key 'tokenizer_path': the tokenizer has no pad token (set tokenizer.pad_token before training)")
    _check_rewards(cfg)


def _check_rewards(cfg: TrainConfig) -> None:
    """Call the reward pieces once on a dummy batch: a wrong name, wrong kwargs or a wrong output shape fail here."""
    import torch

    from rlref.llm.train.task import ModSumTask

    b, g = 2, 3
    if cfg.length_reward is not None:
        _choice("length_reward", cfg.length_reward, LENGTH_REWARDS)
        from rlref.llm import length

        try:
            out = getattr(length, cfg.length_reward)(torch.tensor([[1.0, 4, 9], [2, 3, 5]]), torch.tensor([[True, False, True]] * b),
                                                     **cfg.length_reward_kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config key 'length_reward_kwargs' for {cfg.length_reward!r}: {exc}") from exc
        if tuple(out.shape) != (b, g):
            raise ValueError(f"config key 'length_reward': {cfg.length_reward!r} returned shape {tuple(out.shape)}, expected {(b, g)}")
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
