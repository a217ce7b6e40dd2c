"""Policies as arrays: ``pi[s, a]`` (stationary) or ``pi[h, s, a]`` (finite horizon), and the tilt.

A policy is a plain float64 array whose last axis is a probability distribution over actions.
These helpers build and validate them; they never wrap them in objects.

The tilt π_ref·e^{q/β}/Z (``soft_greedy``), its log-partition β log Z (``soft_value``) and the
β → 0 limit (``greedy_limit``) are implemented here, once, in the core layer, so that
``softmax_policy`` (core) and ``rlref.solve.tilt`` (which re-exports them; the documented home of
the tilt) share one formula. See :mod:`rlref.solve.tilt` for the math and the references.

Action masks: a Q-value of −∞ marks an unavailable (masked) action. ``greedy_policy``,
``softmax_policy``, ``soft_greedy``, ``soft_value`` and ``greedy_limit`` give it probability exactly
0 (a reference policy's mass there is dropped and the rest renormalized), and stay finite as long
as each row has one finite entry. For a ``TabularMDP`` with ``action_mask``, ``uniform_policy`` is
uniform over the available actions, ``reference_policy`` restricts a reference policy to them, and
``validate_policy`` refuses a policy that puts mass on a masked action.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, logsumexp

from rlref._checks import (
    DIST_ATOL,
    as_float_array,
    check_at_least,
    check_beta,
    check_choice,
    check_count,
    check_distribution,
    check_positive,
    dist_atol,
    is_low_precision,
)
from rlref.mdp import TabularMDP

__all__ = [
    "uniform_policy",
    "greedy_policy",
    "softmax_policy",
    "soft_greedy",
    "soft_value",
    "greedy_limit",
    "soft_greedy_unchecked",
    "soft_value_unchecked",
    "validate_policy",
    "reference_policy",
    "deterministic_policy",
    "stage_policy",
    "log_policy",
]


def _policy_shape(mdp: TabularMDP, stages: bool) -> tuple[int, ...]:
    S, A = mdp.num_states, mdp.num_actions
    return (mdp.horizon, S, A) if stages and mdp.horizon is not None else (S, A)


def uniform_policy(mdp: TabularMDP, stages: bool = False) -> np.ndarray:
    """π(a|s) = 1/A for every state (and every stage if ``stages`` and the MDP is episodic); with an
    ``action_mask``, π(a|s) = 1/|A(s)| on the available actions A(s) and 0 on the masked ones.

    Shapes: -> π[s, a], or π[h, s, a] with ``stages=True`` for a finite-horizon MDP.
    References: Puterman (1994), §2.1.5 (randomized decision rules).
    """
    shape = _policy_shape(mdp, stages)
    mask = mdp.action_mask
    if mask is None:
        return np.full(shape, 1.0 / mdp.num_actions)
    return np.array(np.broadcast_to(mask / mask.sum(axis=1, keepdims=True), shape), dtype=np.float64)


def _check_q(q: np.ndarray) -> np.ndarray:
    """q as float64 with a non-empty action axis, entries finite or −∞ (a masked action), and at
    least one finite entry per row; ValueError naming the index otherwise."""
    q = as_float_array("q", q)
    if q.ndim < 1 or q.shape[-1] == 0:
        raise ValueError(f"q must have a non-empty action axis, got shape {q.shape}")
    finite = np.isfinite(q)
    if finite.all():
        return q
    bad = ~finite & ~np.isneginf(q)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"q must be finite or -inf (a masked action); q[{', '.join(map(str, idx))}] = {float(q[idx])!r}")
    empty = ~finite.any(axis=-1)
    if np.any(empty):
        idx = tuple(int(i) for i in np.argwhere(np.atleast_1d(empty))[0]) if q.ndim > 1 else ()
        row = ", ".join(map(str, idx)) + (", " if idx else "")
        raise ValueError(f"q[{row}:] is -inf for every action (every action masked); a row needs one finite entry")
    return q


def greedy_policy(q: np.ndarray, tie_tol: float = 1e-10, ties: str = "uniform") -> np.ndarray:
    """The greedy policy of ``q[..., s, a]``.

    π(a|s) = 1/|𝒜*(s)| for a ∈ 𝒜*(s) = {a : Q(s,a) ≥ max_b Q(s,b) − tie_tol}, and 0 otherwise
    (``ties="uniform"``); ``ties="first"`` puts all mass on the lowest-index maximizer, giving a
    deterministic policy. Uniform tie-breaking makes the map q -> π permutation-equivariant.

    An entry Q(s, a) = −∞ is a masked action: it gets probability 0 (as the solvers' ``q`` holds −∞
    at the masked pairs of an MDP with ``action_mask``, their greedy policies never choose one).

    Shapes: q[..., s, a] -> π[..., s, a].
    Raises ValueError if q has a NaN or +inf entry, a row that is −∞ everywhere or an empty action
    axis, tie_tol is negative, NaN or infinite, or ``ties`` is unknown.
    References: Puterman (1994), eq. (6.2.4) (greedy, "conserving" decision rules).
    """
    q = _check_q(q)
    tie_tol = check_at_least("tie_tol", tie_tol, 0.0, "a tolerance on Q for ties")
    check_choice("ties", ties, ("uniform", "first"))
    if ties == "first":
        pi = np.zeros_like(q)
        np.put_along_axis(pi, np.argmax(q, axis=-1)[..., None], 1.0, axis=-1)
        return pi
    best = q >= q.max(axis=-1, keepdims=True) - tie_tol
    return best / best.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- the tilt (one formula)
def _beta(beta: float) -> float:
    """β ∈ (0, ∞] via rlref._checks.check_beta; at exactly β = 0 the message points to greedy_limit."""
    try:
        return check_beta("beta", beta, allow_inf=True)
    except ValueError as exc:
        if isinstance(beta, (int, float, np.integer, np.floating)) and not isinstance(beta, bool) and beta == 0:
            raise ValueError(f"{exc}; for the beta -> 0 limit call rlref.solve.greedy_limit") from None
        raise


def _check_q_ref(q: np.ndarray, pi_ref: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(q, π_ref) checked, π_ref broadcast to q's shape and renormalized over the available actions
    (q > −∞); ValueError if π_ref puts no mass on any available action of some row."""
    q = _check_q(q)
    if pi_ref is None:
        ref = np.full(q.shape, 1.0 / q.shape[-1])
    else:
        ref = as_float_array("pi_ref", pi_ref)
        check_distribution("pi_ref", ref)
        try:
            ref = np.broadcast_to(ref, q.shape)
        except ValueError as exc:
            raise ValueError(f"pi_ref of shape {ref.shape} does not broadcast to q's shape {q.shape}") from exc
    if not np.isfinite(q).all():  # masked actions: drop the reference mass there
        ref = np.where(np.isneginf(q), 0.0, ref)
        empty = ~(ref > 0).any(axis=-1)
        if np.any(empty):
            idx = tuple(int(i) for i in np.argwhere(np.atleast_1d(empty))[0]) if q.ndim > 1 else ()
            row = ", ".join(map(str, idx)) + (", " if idx else "")
            raise ValueError(f"pi_ref[{row}:] puts no mass on an available action (one with q > -inf)")
    return q, ref / ref.sum(axis=-1, keepdims=True)


def _shifted(q: np.ndarray, ref: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m = max of q over supp(π_ref), x = (q − m)/β (≤ 0 on the support), log π_ref."""
    support = ref > 0
    m = np.where(support, q, -np.inf).max(axis=-1, keepdims=True)
    with np.errstate(over="ignore"):  # a gap / subnormal β overflows to −inf: the exact β → 0 limit
        x = np.where(support, (q - m) / beta, -np.inf)
    with np.errstate(divide="ignore"):
        log_ref = np.log(ref)
    return m, x, log_ref


def soft_value_unchecked(q: np.ndarray, pi_ref: np.ndarray, beta: float) -> np.ndarray:
    """β log Σ_a π_ref(a|s) exp(Q(s, a)/β) with NO input checks (the fast path of :func:`soft_value`).

    Preconditions (the caller's responsibility): q float64 with a non-empty last axis, finite except
    −∞ at masked actions; pi_ref of q's shape (or broadcastable), non-negative, rows summing to 1,
    zero wherever q = −∞ (:func:`reference_policy` builds such a reference for a masked MDP);
    beta a float in (0, ∞]. Shapes: q[..., a] -> V[...]. References: as :func:`soft_value`.
    """
    if np.isinf(beta):  # Σ_a π_ref q, with 0 · (−∞) = 0 at masked actions
        return np.einsum("...a,...a->...", pi_ref, np.where(pi_ref > 0, q, 0.0))
    m, x, log_ref = _shifted(q, pi_ref, beta)
    # log Σ_a π_ref e^{x_a}: accurate as log1p(Σ π_ref expm1(x)) when the sum is near 1 (large β),
    # and as logsumexp(log π_ref + x) otherwise (small β). Both are exact for a normalized π_ref.
    s = np.einsum("...a,...a->...", pi_ref, np.expm1(x))
    with np.errstate(divide="ignore", invalid="ignore"):
        small = np.log1p(np.maximum(s, -0.5))
    lse = logsumexp(log_ref + x, axis=-1)
    return m[..., 0] + beta * np.where(s > -0.5, small, lse)


def soft_greedy_unchecked(q: np.ndarray, pi_ref: np.ndarray, beta: float) -> np.ndarray:
    """π_ref · exp(Q/β) / Z with NO input checks (the fast path of :func:`soft_greedy`).

    Preconditions as :func:`soft_value_unchecked`. Shapes: q[..., a] -> π[..., a].
    """
    if np.isinf(beta):
        return np.array(np.broadcast_to(pi_ref, q.shape), dtype=np.float64)
    _, x, log_ref = _shifted(q, pi_ref, beta)
    return np.exp(log_softmax(log_ref + x, axis=-1))


def soft_value(q: np.ndarray, pi_ref: np.ndarray | None, beta: float) -> np.ndarray:
    """Soft (log-sum-exp) value  V(s) = β log Σ_a π_ref(a|s) exp(Q(s, a)/β)
    = max_π { Σ_a π(a|s) Q(s, a) − β KL(π(·|s) ‖ π_ref(·|s)) }.

    Limits: β → 0 gives max_{a ∈ supp π_ref} Q(s, a); β = np.inf gives Σ_a π_ref(a|s) Q(s, a).
    Computed stably for any β in (0, ∞] (shifted by the max; log1p/expm1 for large β), so
    β = 1e-12 and β = 1e12 neither overflow nor lose the O(1) part.
    Masked actions: Q(s, a) = −∞ removes action a from state s; π_ref's mass there is dropped and
    the rest renormalized, so V is the soft value of the problem without that action (finite).
    Shapes: q[..., a], pi_ref broadcastable (None = uniform) -> V[...].
    Raises ValueError if beta <= 0 or NaN, q has a NaN/+inf entry or a row of −∞, or pi_ref is not
    a distribution over the last axis (or has no mass on an available action).
    References: Geist, Scherrer & Pietquin (2019), Prop. 1 (Legendre-Fenchel of β·KL);
    Ziebart (2010), Thm 6.8.
    """
    b = _beta(beta)
    q, ref = _check_q_ref(q, pi_ref)
    return soft_value_unchecked(q, ref, b)


def soft_greedy(q: np.ndarray, pi_ref: np.ndarray | None, beta: float) -> np.ndarray:
    """KL-regularized greedy step.

    π(a|s) = π_ref(a|s) · exp(Q(s, a)/β) / Z(s),  Z(s) = Σ_a π_ref(a|s) exp(Q(s, a)/β);
    it maximizes  Σ_a π(a|s) Q(s, a) − β · KL(π(·|s) ‖ π_ref(·|s))  for each s.
    β → 0: greedy among the support of π_ref (ties share the mass in proportion to π_ref; exactly
    β = 0 is :func:`greedy_limit`); β = np.inf returns π_ref. Actions with π_ref = 0 get probability 0,
    and so do masked actions, Q(s, a) = −∞ (π_ref is renormalized over the others, also at β = ∞).

    Shapes: q[..., s, a], pi_ref broadcastable (None = uniform) -> [..., s, a]. Computed in log space.
    Raises ValueError if beta <= 0, q has a NaN/+inf entry or a row of −∞, or pi_ref is not a
    distribution over the last axis (or has no mass on an available action).
    References: Korbak, Perez & Buckley (2022), eq. (2); Rafailov et al. (2023), eq. (4).
    """
    b = _beta(beta)
    q, ref = _check_q_ref(q, pi_ref)
    return soft_greedy_unchecked(q, ref, b)


def greedy_limit(q: np.ndarray, pi_ref: np.ndarray | None = None, tie_tol: float = 0.0) -> np.ndarray:
    """The β → 0 limit of the tilt: lim_{β→0} π_ref · exp(Q/β)/Z.

    π(a|s) = π_ref(a|s) 1[a ∈ 𝒜*(s)] / Σ_{b ∈ 𝒜*(s)} π_ref(b|s),
    𝒜*(s) = {a ∈ supp π_ref(·|s) : Q(s, a) ≥ max_{b ∈ supp π_ref} Q(s, b) − tie_tol}.
    With tie_tol = 0 this is the exact pointwise limit (exact ties share the mass ∝ π_ref); a
    positive tie_tol treats near-ties as ties. pi_ref None = uniform (uniform over the maximizers).
    Its value Σ_a π(a|s) Q(s, a) → max_{a ∈ supp π_ref} Q(s, a) = lim_{β→0} soft_value (for tie_tol = 0).
    Masked actions (Q = −∞) get probability 0, as in :func:`soft_greedy`.

    Shapes: q[..., a], pi_ref broadcastable -> π[..., a].
    Raises ValueError if q has a NaN/+inf entry or a row of −∞, pi_ref is not a distribution, or
    tie_tol is negative or NaN.
    References: derived here (limit of eq. (2) of Korbak, Perez & Buckley (2022): the terms with
    Q(s, a) < max lose all mass at rate exp(−gap/β)).
    """
    tol = float(tie_tol)
    if not (tol >= 0.0) or np.isinf(tol):
        raise ValueError(f"tie_tol must be a finite number >= 0, got {tie_tol!r}")
    q, ref = _check_q_ref(q, pi_ref)
    support = ref > 0
    m = np.where(support, q, -np.inf).max(axis=-1, keepdims=True)
    w = np.where(support & (q >= m - tol), ref, 0.0)
    return w / w.sum(axis=-1, keepdims=True)


def softmax_policy(q: np.ndarray, temperature: float = 1.0, pi_ref: np.ndarray | None = None) -> np.ndarray:
    """Boltzmann policy π(a|s) ∝ π_ref(a|s) · exp(Q(s,a) / τ), computed in log space.

    The tilt :func:`soft_greedy` at β = τ (one formula; this name keeps the temperature-first
    signature). With ``pi_ref=None`` the reference is uniform (plain softmax). Actions with
    π_ref = 0 or Q = −∞ (masked) get probability 0. The logits are shifted by the row maximum over
    supp π_ref before dividing by τ, so Q/τ beyond the float64 range (Q = 1e300, τ = 1e-10) gives
    the argmax limit, not NaN.
    Shapes: q[..., s, a], pi_ref broadcastable -> π[..., s, a].
    Raises ValueError if the temperature is <= 0 or infinite, q has a NaN/+inf entry or a row of
    −∞, or pi_ref is not a distribution over the last axis or does not broadcast to q's shape.
    References: Sutton & Barto (2018), eq. (13.2) (soft-max in action preferences); Korbak, Perez,
    Buckley (2022), eq. (2) (the π_ref-tilted form).
    """
    tau = check_positive("temperature", temperature)
    return soft_greedy(q, pi_ref, tau)


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


def _as_policy(mdp: TabularMDP, pi: np.ndarray, name: str) -> np.ndarray:
    """Shape and distribution checks of validate_policy (no mask check)."""
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


def validate_policy(mdp: TabularMDP, pi: np.ndarray, name: str = "pi") -> np.ndarray:
    """Check that ``pi`` is a policy for ``mdp`` and return it as float64.

    Accepts ``pi[s, a]``, or ``pi[h, s, a]`` for a finite-horizon MDP. Raises ValueError naming
    the bad shape, the first negative entry or the first state whose row does not sum to 1
    (|Σ_a π(a|s) − 1| > 1e-8; for a float32/float16 ``pi`` the tolerance is A·eps of its dtype,
    and the rows are then renormalized in float64). With ``mdp.action_mask``, a policy that puts
    any mass (> 0) on a masked action is refused, naming the state and the action.
    References: Puterman (1994), §2.1.5.
    """
    pi = _as_policy(mdp, pi, name)
    mask = mdp.action_mask
    if mask is not None:
        bad = (pi > 0) & ~mask
        if np.any(bad):
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            stage = f" at stage h={idx[0]}" if len(idx) == 3 else ""
            s, a = idx[-2:]
            raise ValueError(f"{name} puts probability {float(pi[idx])!r} on the masked action a={a} at state s={s}{stage} "
                             f"(mdp.action_mask[{s}, {a}] is False)")
    return pi


def reference_policy(mdp: TabularMDP, pi_ref: np.ndarray | None = None, name: str = "pi_ref") -> np.ndarray:
    """A reference policy for ``mdp``, checked, restricted to the available actions and row-normalized.

    π'_ref(a|s) = π_ref(a|s) 1[a ∈ A(s)] / Σ_{b ∈ A(s)} π_ref(b|s), A(s) = the actions
    ``mdp.action_mask`` allows in s (all actions without a mask); ``None`` = uniform over A(s)
    (:func:`uniform_policy`). This is the reference of the MDP with the masked actions removed, so
    KL-regularized values of a masked MDP equal those of the reduced MDP. Rows are renormalized
    in float64 even without a mask (exactly stochastic input for the unchecked tilts).

    Shapes: pi_ref[s, a] or pi_ref[h, s, a] -> the same shape.
    Raises ValueError as :func:`validate_policy` for a malformed pi_ref, or naming the state (and
    stage) where pi_ref puts no mass on any available action (KL = +∞ for every allowed policy).
    References: Puterman (1994), §2.1.5 and §4.1 (state-dependent action sets A(s)).
    """
    if pi_ref is None:
        return uniform_policy(mdp)
    ref = _as_policy(mdp, pi_ref, name)
    mask = mdp.action_mask
    if mask is not None:
        ref = np.where(mask, ref, 0.0)
        empty = ~(ref > 0).any(axis=-1)
        if np.any(empty):
            idx = tuple(int(i) for i in np.argwhere(empty)[0])
            stage = f" at stage h={idx[0]}" if len(idx) == 2 else ""
            raise ValueError(f"{name} puts no mass on an available action at state s={idx[-1]}{stage} "
                             f"(its support lies inside the masked actions of mdp.action_mask)")
    return ref / ref.sum(axis=-1, keepdims=True)


def stage_policy(pi: np.ndarray, h: int) -> np.ndarray:
    """``pi[h]`` for a staged policy, ``pi`` itself for a stationary one."""
    return pi[h] if pi.ndim == 3 else pi


def log_policy(pi: np.ndarray) -> np.ndarray:
    """log π with log 0 = -inf and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(pi)

