"""Length and efficiency rewards, and decoding-side logits processors (a re-export of :mod:`rlref.llm.length`).

The code lives in :mod:`rlref.llm.length`, one module for the length-efficiency family of papers;
this module keeps the names importable from ``rlref.llm.rewards`` where they were first published.
"""

from __future__ import annotations

from rlref.llm.length import (
    BudgetForcing,
    EndOfThinkingScaling,
    HistoryAwareReward,
    budget_reward,
    cosine_length_reward,
    curriculum_budget,
    dapo_overlong_penalty,
    dler_difficulty_budgets,
    dler_truncation_reward,
    grpo_lambda_reward,
    kimi_length_reward,
    tldr_budget_reward,
)

__all__ = [
    "dler_truncation_reward",
    "dler_difficulty_budgets",
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
]
