"""Re-export shim (to be deleted): the env builders' checks now live in ``rlref._checks``.

Import ``check_count``, ``check_probability``, ``check_real``, ``as_generator``, ``resolve_gamma``
and ``DEFAULT_GAMMA`` from ``rlref._checks``, the one validation module of the numpy side.
"""

from __future__ import annotations

from rlref._checks import DEFAULT_GAMMA, as_generator, check_count, check_probability, check_real, resolve_gamma

__all__ = ["DEFAULT_GAMMA", "as_generator", "check_count", "check_probability", "check_real", "resolve_gamma"]
