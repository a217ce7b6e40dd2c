"""Reproductions, one module each, registered by name for ``rlref reproduce``.

Each module defines a function decorated with :func:`rlref.reproduce.register`; the registry
imports every module of this package on first use.
"""
