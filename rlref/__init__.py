"""rlref: a reference library for regularized reinforcement learning.

The tabular core is plain numpy/scipy on arrays with named shapes — ``P[s, a, s']``,
``R[s, a]``, ``pi[s, a]`` (a finite horizon adds a leading ``h`` axis) — see ``rlref.mdp``.

Submodules (imported on first attribute access, so ``import rlref`` stays light):
``solve`` (exact planning), ``policy``, ``divergences``, ``envs``, ``linear``, ``tokentree``,
``theory``, ``algorithms``, ``preferences``, ``testing`` (hypothesis strategies), ``reproduce``,
and ``llm`` (torch; needs the ``llm`` extra).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rlref import policy
from rlref.mdp import TabularMDP

_SUBMODULES = (
    "solve",
    "divergences",
    "envs",
    "linear",
    "tokentree",
    "theory",
    "algorithms",
    "preferences",
    "testing",
    "reproduce",
    "llm",
)

__all__ = ["TabularMDP", "policy", *_SUBMODULES]
__version__ = "0.1.0"


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"rlref.{name}")
    raise AttributeError(f"module 'rlref' has no attribute {name!r}")
