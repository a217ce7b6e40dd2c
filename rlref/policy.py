"""Policies as arrays: ``pi[s, a]`` (stationary) or ``pi[h, s, a]`` (finite horizon).

A policy is a plain float64 array whose last axis is a probability distribution over actions.
These helpers build and validate them; they never wrap them in objects.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from rlref._checks import (
    DIST_ATOL,
    as_float_array,
    check_at_least,
    check_choice,
    check_count,
    check_distribution,
    check_finite,
    check_positive,
    dist_atol,
    is_low_precision,
)
from rlref.mdp import TabularMDP

__all__ = [
    "uniform_policy",
    "greedy_policy",
    "softmax_policy",
    "validate_policy",
    "deterministic_policy",
    "stage_policy",
    "log_policy",
]


def _policy_shape(mdp: TabularMDP, stages: bool) -> tuple[int, ...]:
    S, A = mdp.num_states, mdp.num_actions
    return (mdp.horizon, S, A) if stages and mdp.horizon is not None else (S, A)


def uniform_policy(mdp: TabularMDP, stages: bool = False) -> np.ndarray:
    """π(a|s) = 1/A for every state (and every stage if ``stages`` and the MDP is episodic).

    Shapes: -> π[s, a], or π[h, s, a] with ``stages=True`` for a finite-horizon MDP.
    References: Puterman (1994), §2.1.5 (randomized decision rules).
    """
    shape = _policy_shape(mdp, stages)
    return np.full(shape, 1.0 / mdp.num_actions)


def greedy_policy(q: np.ndarray, tie_tol: float = 1e-10, ties: str = "uniform") -> np.ndarray:
    """The greedy policy of ``q[..., s, a]``.

    π(a|s) = 1/|𝒜*(s)| for a ∈ 𝒜*(s) = {a : Q(s,a) ≥ max_b Q(s,b) − tie_tol}, and 0 otherwise
    (``ties="uniform"``); ``ties="first"`` puts all mass on the lowest-index maximizer, giving a
    deterministic policy. Uniform tie-breaking makes the map q -> π permutation-equivariant.

    Shapes: q[..., s, a] -> π[..., s, a].
    Raises ValueError if q is not finite or has an empty action axis, tie_tol is negative, NaN or
    infinite, or ``ties`` is unknown.
    References: Puterman (1994), eq. (6.2.4) (greedy, "conserving" decision rules).
    """
    q = as_float_array("q", q)
    check_finite("q", q)
    if q.ndim < 1 or q.shape[-1] == 0:
        raise ValueError(f"q must have a non-empty action axis, got shape {q.shape}")
    tie_tol = check_at_least("tie_tol", tie_tol, 0.0, "a tolerance on Q for ties")
    check_choice("ties", ties, ("uniform", "first"))
    if ties == "first":
        pi = np.zeros_like(q)
        np.put_along_axis(pi, np.argmax(q, axis=-1)[..., None], 1.0, axis=-1)
        return pi
    best = q >= q.max(axis=-1, keepdims=True) - tie_tol
    return best / best.sum(axis=-1, keepdims=True)


def softmax_policy(q: np.ndarray, temperature: float = 1.0, pi_ref: np.ndarray | None = None) -> np.ndarray:
    """Boltzmann policy π(a|s) ∝ π_ref(a|s) · exp(Q(s,a) / τ), computed in log space.

    With ``pi_ref=None`` the reference is uniform (plain softmax). Actions with π_ref = 0 get
    probability 0. The logits are shifted by the row maximum over supp π_ref before dividing by
    τ, so Q/τ beyond the float64 range (Q = 1e300, τ = 1e-10) gives the argmax limit, not NaN.
    Shapes: q[..., s, a], pi_ref broadcastable -> π[..., s, a].
    Raises ValueError if the temperature is <= 0, q is not finite, or pi_ref is not a
    distribution over the last axis or does not broadcast to q's shape.
    References: Sutton & Barto (2018), eq. (13.2) (soft-max in action preferences); Korbak, Perez,
    Buckley (2022), eq. (2) (the π_ref-tilted form).
    """
    tau = check_positive("temperature", temperature)
    q = as_float_array("q", q)
    check_finite("q", q)
    if q.ndim < 1 or q.shape[-1] == 0:
        raise ValueError(f"q must have a non-empty action axis, got shape {q.shape}")
    if pi_ref is None:
        support = np.ones(q.shape, dtype=bool)
        log_ref = np.zeros(q.shape)
    else:
        ref = as_float_array("pi_ref", pi_ref)
        check_distribution("pi_ref", ref)
        try:
            ref = np.broadcast_to(ref, q.shape)
        except ValueError as exc:
            raise ValueError(f"pi_ref of shape {ref.shape} does not broadcast to q's shape {q.shape}") from exc
        support = ref > 0
        with np.errstate(divide="ignore"):
            log_ref = np.log(ref)
    m = np.max(np.where(support, q, -np.inf), axis=-1, keepdims=True)
    with np.errstate(over="ignore", invalid="ignore"):
        logits = np.where(support, (q - m) / tau + log_ref, -np.inf)
    return np.exp(log_softmax(logits, axis=-1))


def deterministic_policy(actions: np.ndarray, num_actions: int) -> np.ndarray:
    """One-hot policy π(a|s) = 1[a = actions[s]] from integer ``actions[..., s]``.

    Shapes: actions[..., s] -> π[..., s, a] with A = ``num_actions``.
    Raises ValueError if num_actions is not a positive integer or an action lies outside [0, A).
    References: Puterman (1994), §2.1.5 (deterministic decision rules).
    """
    num_actions = check_count("num_actions", num_actions)
    actions = np.asarray(actions)
    if not np.issubdtype(actions.dtype, np.integer):
        raise ValueError(f"actions must be integers, got dtype {actions.dtype}")
    if actions.size and (actions.min() < 0 or actions.max() >= num_actions):
        bad = actions[(actions < 0) | (actions >= num_actions)].ravel()[0]
        raise ValueError(f"actions must lie in [0, {num_actions}), found {bad}")
    return np.eye(num_actions)[actions]


def validate_policy(mdp: TabularMDP, pi: np.ndarray, name: str = "pi") -> np.ndarray:
    """Check that ``pi`` is a policy for ``mdp`` and return it as float64.

    Accepts ``pi[s, a]``, or ``pi[h, s, a]`` for a finite-horizon MDP. Raises ValueError naming
    the bad shape, the first negative entry or the first state whose row does not sum to 1
    (|Σ_a π(a|s) − 1| > 1e-8; for a float32/float16 ``pi`` the tolerance is A·eps of its dtype,
    and the rows are then renormalized in float64). References: Puterman (1994), §2.1.5.
    """
    src = getattr(pi, "dtype", None)
    pi = as_float_array(name, pi, ndim=(2, 3))
    S, A = mdp.num_states, mdp.num_actions
    ok = {(S, A)}
    if mdp.horizon is not None:
        ok.add((mdp.horizon, S, A))
    if pi.shape not in ok:
        raise ValueError(f"{name} must have shape {sorted(ok)} for this MDP, got {pi.shape}")
    low = is_low_precision(src)
    check_distribution(name, pi, atol=dist_atol(src, A) if low else DIST_ATOL)
    return pi / pi.sum(axis=-1, keepdims=True) if low else pi


def stage_policy(pi: np.ndarray, h: int) -> np.ndarray:
    """``pi[h]`` for a staged policy, ``pi`` itself for a stationary one."""
    return pi[h] if pi.ndim == 3 else pi


def log_policy(pi: np.ndarray) -> np.ndarray:
    """log π with log 0 = -inf and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(pi)

