"""rlref.llm.train: fine-tune Hugging Face causal LMs with rlref.llm's objectives (the ``hf`` extra).

:func:`train` runs a :class:`TrainConfig` (``load_config``: YAML path or shipped name + ``key=value``
overrides) into a folder: online GRPO-family RL on the verifiable :class:`ModSumTask`, offline
DPO-family preference optimization on its (correct, incorrect) pairs, SFT on worked solutions, or
iterative self-play (:mod:`rlref.llm.train.selfplay`); unchanged under ``torchrun`` with DDP or FSDP2.
CLI: ``rlref train``. See docs/training.md.
"""

from rlref.llm.train.config import TrainConfig, load_config, shipped_configs, validate
from rlref.llm.train.loop import (
    Batch,
    StepResult,
    Trainer,
    encode_pairs,
    normalizer,
    pack,
    policy_normalizer,
    policy_term,
    preference_term,
    response_logprobs,
    sample,
    scheduled_budget,
    train,
)
from rlref.llm.train.models import build_model, char_tokenizer, load_tokenizer
from rlref.llm.train.task import ModSumTask, Problem

__all__ = ["TrainConfig", "load_config", "shipped_configs", "validate", "Batch", "StepResult", "Trainer", "encode_pairs", "normalizer",
           "pack", "policy_normalizer", "policy_term", "preference_term", "response_logprobs", "sample", "scheduled_budget", "train",
           "build_model", "char_tokenizer", "load_tokenizer", "ModSumTask", "Problem"]
