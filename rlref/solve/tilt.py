"""The tilt (KL-regularized greedy step) and its log-partition: the one home of π_ref·e^{q/β}/Z.

    soft_greedy:  π(a|s) = π_ref(a|s) exp(Q(s, a)/β) / Z(s),   Z(s) = Σ_a π_ref(a|s) exp(Q(s, a)/β)
    soft_value:   V(s) = β log Z(s) = max_π { Σ_a π(a|s) Q(s, a) − β KL(π(·|s) ‖ π_ref(·|s)) }
    greedy_limit: the β → 0 limit of soft_greedy (argmax over supp π_ref, ties share mass ∝ π_ref)

β ranges over (0, ∞]: β = np.inf gives π = π_ref and V = Σ_a π_ref Q. β = 0 is not accepted by
soft_greedy / soft_value (the limit is a different function with a tie rule); call
:func:`greedy_limit` for it explicitly, or the hard backup (``rlref.solve.bellman_optimality``).

House style: ``soft_value`` / ``soft_greedy`` check their inputs once; the layers that call them in
an inner loop use the documented unchecked fast paths ``soft_value_unchecked`` /
``soft_greedy_unchecked`` (same math, preconditions stated, no validation).

References: Korbak, Perez & Buckley (2022), "RL with KL penalties is better viewed as Bayesian
inference", eq. (2); Rafailov et al. (2023), "Direct preference optimization", eq. (4); Geist,
Scherrer & Pietquin (2019), "A theory of regularized MDPs", Prop. 1 (Legendre-Fenchel of β·KL);
Ziebart (2010), PhD thesis, Thm 6.8.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, logsumexp

from rlref._checks import as_float_array, check_beta, check_distribution, check_finite

__all__ = ["soft_greedy", "soft_value", "greedy_limit", "soft_value_unchecked", "soft_greedy_unchecked"]


def _beta(beta: float) -> float:
    """β ∈ (0, ∞] via rlref._checks.check_beta; at exactly β = 0 the message points to greedy_limit."""
    try:
        return check_beta("beta", beta, allow_inf=True)
    except ValueError as exc:
        if isinstance(beta, (int, float, np.integer, np.floating)) and not isinstance(beta, bool) and beta == 0:
            raise ValueError(f"{exc}; for the beta -> 0 limit call rlref.solve.greedy_limit") from None
        raise


def _check_q_ref(q: np.ndarray, pi_ref: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    q = as_float_array("q", q)
    check_finite("q", q)
    if q.ndim < 1 or q.shape[-1] == 0:
        raise ValueError(f"q must have a non-empty action axis, got shape {q.shape}")
    if pi_ref is None:
        ref = np.full(q.shape, 1.0 / q.shape[-1])
    else:
        ref = as_float_array("pi_ref", pi_ref)
        check_distribution("pi_ref", ref)
        try:
            ref = np.broadcast_to(ref, q.shape)
        except ValueError as exc:
            raise ValueError(f"pi_ref of shape {ref.shape} does not broadcast to q's shape {q.shape}") from exc
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

    Preconditions (the caller's responsibility): q finite float64 with a non-empty last axis;
    pi_ref of q's shape (or broadcastable), non-negative, rows summing to 1; beta a float in (0, ∞].
    Shapes: q[..., a] -> V[...]. References: as :func:`soft_value`.
    """
    if np.isinf(beta):
        return np.einsum("...a,...a->...", pi_ref, q)
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
    Shapes: q[..., a], pi_ref broadcastable (None = uniform) -> V[...].
    Raises ValueError if beta <= 0 or NaN, or pi_ref is not a distribution over the last axis.
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
    β = 0 is :func:`greedy_limit`); β = np.inf returns π_ref. Actions with π_ref = 0 get probability 0.

    Shapes: q[..., s, a], pi_ref broadcastable (None = uniform) -> [..., s, a]. Computed in log space.
    Raises ValueError if beta <= 0 or pi_ref is not a distribution over the last axis.
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

    Shapes: q[..., a], pi_ref broadcastable -> π[..., a].
    Raises ValueError if q is not finite, pi_ref is not a distribution, or tie_tol is negative or NaN.
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
