"""rlref: a reference library for regularized reinforcement learning.

The tabular core is plain numpy/scipy on arrays with named shapes — ``P[s, a, s']``,
``R[s, a]``, ``pi[s, a]`` (a finite horizon adds a leading ``h`` axis) — see ``rlref.mdp``.
"""

from rlref.mdp import TabularMDP

__all__ = ["TabularMDP"]
__version__ = "0.1.0"
