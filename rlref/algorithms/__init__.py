"""Algorithms from the papers, one module per method (named after the method).

Import the module you need, e.g. ``from rlref.algorithms import nash_po``.
"""
