"""rlref: a reference library for regularized reinforcement learning.

The tabular core is plain numpy/scipy on arrays with named shapes — ``P[s, a, s']``,
``R[s, a]``, ``pi[s, a]`` (a finite horizon adds a leading ``h`` axis) — see ``rlref.mdp``.

Submodules (imported on first attribute access, so ``import rlref`` stays light):
``solve`` (exact planning), ``policy``, ``divergences``, ``envs``, ``linear``, ``tokentree``,
``theory``, ``algorithms``, ``preferences``, ``testing`` (hypothesis strategies), ``reproduce``
(the ``rlref reproduce`` command line; also ``python -m rlref``), ``experiments`` (the
reproductions) and ``llm`` (torch; needs the ``llm`` extra).
"""

from __future__ import annotations

import importlib as _importlib
import pkgutil as _pkgutil

# every public module and subpackage of rlref, found on disk (a new package is listed automatically);
# all are imported on first access, so `import rlref` (and `rlref reproduce --list`) stays instant
_SUBMODULES = tuple(sorted(m.name for m in _pkgutil.iter_modules(__path__) if not m.name.startswith("_") and m.name != "mdp"))

__all__ = ["TabularMDP", *_SUBMODULES]
# The one place the version lives: pyproject.toml reads this literal statically (setuptools `attr:`,
# without importing rlref) and CITATION.cff repeats it (tests/test_packaging.py checks both).
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name == "TabularMDP":
        from rlref.mdp import TabularMDP

        return TabularMDP
    if name in _SUBMODULES or name == "mdp":
        return _importlib.import_module(f"rlref.{name}")
    raise AttributeError(f"module 'rlref' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, including the lazily imported submodules (for tab completion)."""
    return sorted({*__all__, "__version__", "mdp"})
