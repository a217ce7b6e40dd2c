"""Adapters from ``rlref.llm`` to the trainers users already run (issue #16).

* :mod:`rlref.llm.adapters.trl`  — TRL: rlref's length rewards as ``GRPOTrainer`` reward functions
  (``reward_funcs`` convention), and :func:`~rlref.llm.adapters.trl.trl_grpo_loss`, a reference of every
  ``GRPOTrainer`` ``loss_type`` built from rlref primitives (tested against TRL 1.16's own loss).
* :mod:`rlref.llm.adapters.verl` — verl: :func:`~rlref.llm.adapters.verl.register` adds rlref's
  advantage estimators (including the group-wise length rewards) and policy losses to verl's registries,
  with verl's signatures.

Neither TRL nor verl is imported until an adapter needs it: this package imports with torch alone.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["trl", "verl"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"rlref.llm.adapters.{name}")
    raise AttributeError(f"module 'rlref.llm.adapters' has no attribute {name!r}")
