"""rlref.llm: the seed papers' language-model objectives as composable torch functions.

Requires the ``llm`` extra (torch). The rest of rlref never imports this package eagerly.
Submodules are loaded on first attribute access, so ``import rlref.llm`` stays cheap:

* :mod:`rlref.llm.logprobs`   — token log-probs / entropies from logits or hidden states (chunked).
* :mod:`rlref.llm.advantages` — GRPO, Dr. GRPO, RLOO, REINFORCE++, GAE, T-PPO, DRPO, IGPO, EMPG, ...
* :mod:`rlref.llm.losses`     — PPO clip (clip-higher, dual clip), KL estimators, entropy regularizers.
* :mod:`rlref.llm.rewards`    — length and efficiency rewards, decoding-side logits processors.
* :mod:`rlref.llm.preference` — DPO, IPO, RPO, XPO, LD-DPO, INPO, SPO, RTO.
* :mod:`rlref.llm.tokentree`  — the token-tree bridge to the exact tabular optima.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["logprobs", "advantages", "losses", "rewards", "preference", "tokentree"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"rlref.llm.{name}")
    raise AttributeError(f"module 'rlref.llm' has no attribute {name!r}")
