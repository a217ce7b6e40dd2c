"""Converters between rlref's TabularMDP and other libraries' MDP types (optional dependencies).

``rlref.interop.quantecon``: QuantEcon's ``DiscreteDP`` in both of its input formats.
"""

__all__ = ["quantecon"]
