"""The tilt (KL-regularized greedy step) and its log-partition: the one home of π_ref·e^{q/β}/Z.

    soft_greedy:  π(a|s) = π_ref(a|s) exp(Q(s, a)/β) / Z(s),   Z(s) = Σ_a π_ref(a|s) exp(Q(s, a)/β)
    soft_value:   V(s) = β log Z(s) = max_π { Σ_a π(a|s) Q(s, a) − β KL(π(·|s) ‖ π_ref(·|s)) }
    greedy_limit: the β → 0 limit of soft_greedy (argmax over supp π_ref, ties share mass ∝ π_ref)

β ranges over (0, ∞]: β = np.inf gives π = π_ref and V = Σ_a π_ref Q. β = 0 is not accepted by
soft_greedy / soft_value (the limit is a different function with a tie rule); call
:func:`greedy_limit` for it explicitly, or the hard backup (``rlref.solve.bellman_optimality``).

Masked actions: Q(s, a) = −∞ marks an action that is not available in s (an MDP's
``action_mask``; the backups of rlref.solve put −∞ there). It gets probability exactly 0, π_ref's
mass on it is dropped and the rest renormalized (``soft_greedy``/``soft_value``/``greedy_limit``;
the unchecked paths require a π_ref that is already 0 there, see ``rlref.policy.reference_policy``),
and the value stays finite.

Where the code lives: the functions are implemented in the core layer (:mod:`rlref.policy`), so that
``rlref.policy.softmax_policy`` (core, which may not import ``rlref.solve``) is this same tilt, and
re-exported here: one formula in one place, documented and tested as ``rlref.solve.tilt``.

House style: ``soft_value`` / ``soft_greedy`` check their inputs once; the layers that call them in
an inner loop use the documented unchecked fast paths ``soft_value_unchecked`` /
``soft_greedy_unchecked`` (same math, preconditions stated, no validation).

References: Korbak, Perez & Buckley (2022), "RL with KL penalties is better viewed as Bayesian
inference", eq. (2); Rafailov et al. (2023), "Direct preference optimization", eq. (4); Geist,
Scherrer & Pietquin (2019), "A theory of regularized MDPs", Prop. 1 (Legendre-Fenchel of β·KL);
Ziebart (2010), PhD thesis, Thm 6.8.
"""

from __future__ import annotations

from rlref.policy import greedy_limit, soft_greedy, soft_greedy_unchecked, soft_value, soft_value_unchecked

__all__ = ["soft_greedy", "soft_value", "greedy_limit", "soft_value_unchecked", "soft_greedy_unchecked"]
