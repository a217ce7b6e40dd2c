"""f-divergences between discrete distributions, with their generators and convex conjugates.

An f-divergence with a convex generator ``f: [0, ∞) -> (-∞, ∞]``, ``f(1) = 0``, is

    D_f(p ‖ q) = Σ_{x: q(x) > 0} q(x) f(p(x) / q(x))  +  f'(∞) · Σ_{x: q(x) = 0} p(x),

with ``f'(∞) = lim_{t→∞} f(t)/t`` (the mass of ``p`` outside the support of ``q``) and the
conventions ``0 · f(0/0) = 0``, ``0 · ∞ = 0``. Its variational (Fenchel) form is

    D_f(p ‖ q) = sup_g  E_p[g] − E_q[f*(g)],      f*(y) = sup_{t ≥ 0} (t y − f(t)),

attained at the witness ``g*(x) = f'(p(x)/q(x))``.

Conventions used here (``rlref`` everywhere):

=================  ==============================  ===========================================
name               generator f(t)                  D_f(p ‖ q)
=================  ==============================  ===========================================
``kl``             t log t                         Σ p log(p/q)  (= ∞ if p ≪ q fails)
``reverse_kl``     −log t                          KL(q ‖ p)     (= ∞ if q ≪ p fails)
``chi2``           (t − 1)²                        Pearson χ² = Σ (p − q)²/q = Σ p²/q − 1
``tv``             |t − 1| / 2                     ½ Σ |p − q|  ∈ [0, 1]
``hellinger2``     (√t − 1)² / 2                   H² = ½ Σ (√p − √q)² = 1 − Σ √(p q) ∈ [0, 1]
``js``             ½[t log t − (1+t) log((1+t)/2)]  ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p+q)/2, ≤ log 2
``power(α)``       (t^α − 1)/(α − 1)               (Σ p^α q^{1−α} − 1)/(α − 1)
=================  ==============================  ===========================================

Hellinger: this module uses the convention WITH the factor ½ (so that H² ≤ 1); Foster et al.
(2021) and much of the RL-theory literature use ``Σ (√p − √q)²``, which is ``2 · hellinger2``.

Rényi-α (α > 0, α ≠ 1) ``D_α = log(Σ p^α q^{1−α}) / (α − 1)`` is *not* an f-divergence, but a
monotone function of the α-power divergence: ``D_α = log(1 + (α − 1) D_{power(α)}) / (α − 1)``.
It tends to KL as α → 1.

All functions work on float64 arrays, batched over the last axis (``axis=-1``; any leading
shape). ``axis=None`` treats the whole array as one distribution — e.g. an occupancy measure
``d[s, a]`` for ``D(μ_π ‖ μ_ref)``. Infinite values are returned (not raised) where the
divergence is infinite: KL, χ² and Rényi with α > 1 when p has mass where q has none; reverse KL
when q has mass where p has none; Rényi with α < 1 when p and q have disjoint supports. TV,
Hellinger and JS are always finite. Every divergence returned is ≥ 0 (rounding below zero is
clipped) and exactly 0 when ``p == q``. Subnormal probabilities are exact inputs, not zeros: a
ratio p/q that would overflow is taken in log space (``kl([1, 0], [5e-311, 1]) = −log 5e-311 ≈
714.49``, finite), and a result is ∞ only when the divergence is infinite or exceeds the float64
range. A float32/float16 input is checked at its own precision (``rlref._checks.dist_atol``) and
renormalized in float64. ``entropy`` (Shannon, nats) and the alias ``tv`` = ``total_variation`` live here too.

References: Csiszár (1967), "Information-type measures of difference of probability
distributions"; Nguyen, Wainwright, Jordan (2010), "Estimating divergence functionals and the
likelihood ratio by convex risk minimization", Lemma 1 (the variational form); Nowozin, Cseke,
Tomioka (2016), "f-GAN", Table 1 (generators and conjugates); van Erven & Harremoës (2014),
"Rényi divergence and Kullback-Leibler divergence" (Rényi conventions, α → 1 limit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog
from scipy.special import kl_div, logsumexp, xlogy

from rlref._checks import as_distribution, as_float_array, check_axis, check_distribution, check_nonnegative, dist_atol, is_low_precision

__all__ = [
    "FDivergence",
    "KL",
    "REVERSE_KL",
    "CHI2",
    "TOTAL_VARIATION",
    "HELLINGER2",
    "JENSEN_SHANNON",
    "FDIVERGENCES",
    "power_divergence",
    "get_fdivergence",
    "kl",
    "reverse_kl",
    "chi2",
    "total_variation",
    "tv",
    "entropy",
    "hellinger2",
    "jensen_shannon",
    "renyi",
    "f_divergence",
    "optimal_witness",
    "variational_lower_bound",
]

ArrayFn = Callable[[np.ndarray], np.ndarray]
Axis = int | None


# ----------------------------------------------------------------------------- the dataclass
@dataclass(frozen=True, eq=False)
class FDivergence:
    """An f-divergence ``D_f(p ‖ q) = Σ_x q(x) f(p(x)/q(x))`` given by its generator.

    Fields:
      name: canonical name (the key in :data:`FDIVERGENCES`).
      f: the generator ``f(t)`` on ``t ≥ 0`` (vectorized, ``f(1) = 0``, convex).
      f_conjugate: the convex conjugate ``f*(y) = sup_{t≥0} (t y − f(t))`` for finite ``y`` in its
        domain; use :meth:`conjugate`, which also handles ``y = -∞`` and ``y`` outside the domain.
      f_prime: the derivative (a subgradient where f is not differentiable) ``f'(t)`` on ``t ≥ 0``.
      f_zero: ``f(0) = lim_{t→0+} f(t)`` (may be ``inf``).
      f_prime_inf: ``f'(∞) = lim_{t→∞} f(t)/t`` (may be ``inf``); it is also the supremum of the
        domain of ``f*``: ``f*(y) < ∞`` for ``y < f'(∞)``.
      conjugate_at_sup: whether ``f*(f'(∞))`` is finite (the domain of f* is closed at the top).
      divergence: optional specialized (log-space, exact-at-zero) implementation
        ``(p, q) -> D`` on validated arrays reduced over the last axis; ``None`` means the generic
        sum ``Σ q f(p/q) + f'(∞) Σ_{q=0} p`` is used.
      formula: the divergence in words, for reprs and docs.

    References: Csiszár (1967); Nowozin, Cseke, Tomioka (2016), "f-GAN", Table 1.
    """

    name: str
    f: ArrayFn
    f_conjugate: ArrayFn
    f_prime: ArrayFn
    f_zero: float
    f_prime_inf: float
    conjugate_at_sup: bool = False
    divergence: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    formula: str = ""

    def generator(self, t: np.ndarray) -> np.ndarray:
        """``f(t)`` with ``f(0)`` taken as the limit :attr:`f_zero`. Shapes preserved."""
        t = np.asarray(t, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(self.f(t), dtype=np.float64)
        return np.where(t == 0, self.f_zero, out)

    def derivative(self, t: np.ndarray) -> np.ndarray:
        """``f'(t)`` for ``t ∈ [0, ∞]``, with ``f'(∞)`` = :attr:`f_prime_inf`. Shapes preserved."""
        t = np.asarray(t, dtype=np.float64)
        finite = np.isfinite(t)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(self.f_prime(np.where(finite, t, 1.0)), dtype=np.float64)
        return np.where(finite, out, self.f_prime_inf)

    def conjugate(self, y: np.ndarray) -> np.ndarray:
        """``f*(y) = sup_{t ≥ 0} (t y − f(t))`` on the extended reals.

        ``f*(−∞) = −f(0)``; ``f*(y) = +∞`` for ``y > f'(∞)`` (and at ``y = f'(∞)`` unless
        :attr:`conjugate_at_sup`). Shapes preserved.
        """
        y = np.asarray(y, dtype=np.float64)
        top = self.f_prime_inf
        inside = (y < top) | ((y == top) & self.conjugate_at_sup)
        finite = inside & np.isfinite(y)
        safe = np.where(finite, y, 0.0 if top > 0 else top - 1.0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            val = np.asarray(self.f_conjugate(safe), dtype=np.float64)
        out = np.where(finite, val, np.inf)
        return np.where(y == -np.inf, -self.f_zero, out)

    def __repr__(self) -> str:
        return f"FDivergence({self.name!r}: {self.formula})"


# ----------------------------------------------------------------------------- validation
def _to_last_axis(name: str, x: object, axis: Axis, src_dtype: object = None) -> np.ndarray:
    arr = as_float_array(name, x)
    if arr.ndim == 0:
        raise ValueError(f"{name} must be at least 1-dimensional (a distribution), got a scalar {float(arr)!r}")
    if arr.size == 0:
        raise ValueError(f"{name} must be non-empty, got shape {arr.shape}")
    check_nonnegative(name, arr)
    if axis is None:
        arr = arr.reshape(-1)
    else:
        arr = np.moveaxis(arr, check_axis("axis", axis, arr.ndim), -1)
    if is_low_precision(src_dtype):  # normalized in float32/16: its own tolerance, renormalized in float64
        check_distribution(name, arr, atol=dist_atol(src_dtype, arr.shape[-1]))
        return arr / arr.sum(axis=-1, keepdims=True)
    check_distribution(name, arr)
    return arr


def _prepare(p: object, q: object, axis: Axis) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``p``, ``q`` as distributions over ``axis`` and broadcast them (last axis)."""
    pa = as_float_array("p", p)
    qa = as_float_array("q", q)
    if axis is None and pa.shape != qa.shape:
        raise ValueError(f"with axis=None, p and q must have the same shape; got p {pa.shape} and q {qa.shape}")
    P = _to_last_axis("p", pa, axis, getattr(p, "dtype", None))
    Q = _to_last_axis("q", qa, axis, getattr(q, "dtype", None))
    if P.shape[-1] != Q.shape[-1]:
        raise ValueError(f"p and q must have the same support size along axis {axis}; got {P.shape[-1]} and {Q.shape[-1]}")
    try:
        shape = np.broadcast_shapes(P.shape, Q.shape)
    except ValueError as exc:
        raise ValueError(f"p and q have incompatible batch shapes {P.shape[:-1]} and {Q.shape[:-1]}") from exc
    return np.broadcast_to(P, shape), np.broadcast_to(Q, shape)


def _nonneg(x: np.ndarray) -> np.ndarray | float:
    out = np.maximum(x, 0.0)
    return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out


# ----------------------------------------------------------------------------- closed forms
def _log(x: np.ndarray) -> np.ndarray:
    """``log x`` with ``log 0 = −∞`` (no warning)."""
    with np.errstate(divide="ignore"):
        return np.log(x)


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    # Termwise p log(p/q) − p + q ≥ 0 (= ∞ if p > 0 = q; = q if p = 0); the linear terms sum to
    # Σq − Σp = 0, so the sum is KL with every term non-negative. scipy's kl_div forms the ratio
    # p/q, which overflows to ∞ when q is subnormal (kl([1, 0], [5e-311, 1]) would be ∞, not
    # 714.5); where it does, the term is taken in log space, p (log p − log q) − p + q.
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        terms = kl_div(p, q)
        bad = (p > 0) & (q > 0) & ~np.isfinite(terms)
        if np.any(bad):
            terms = np.where(bad, p * (_log(p) - _log(q)) - p + q, terms)
    return np.sum(np.maximum(terms, 0.0), axis=-1)


def _chi2(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    # ((p − q)/√q)² rather than (p − q)²/q: the square of a tiny difference underflows to 0 even
    # where the term itself is representable (p = 1e-160, q = 1e-310 gives 1e-10, not 0).
    pos = q > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        terms = np.where(pos, ((p - q) / np.sqrt(np.where(pos, q, 1.0))) ** 2, np.where(p > 0, np.inf, 0.0))
    return np.sum(terms, axis=-1)


def _tv(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return 0.5 * np.sum(np.abs(p - q), axis=-1)


def _hellinger2(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return 0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=-1)


def _js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    # m = (p + q)/2 rounds to 0 when p or q is the smallest subnormal and the other is 0; then
    # kl_div(p, 0) = ∞ would make the always-finite JS infinite. The true term there is below
    # 1e-323 (p log(p/m) − p + m ≤ p log 2), so it is taken as 0.
    m = 0.5 * (p + q)
    pos = m > 0
    mm = np.where(pos, m, 1.0)
    tp = np.where(pos, kl_div(p, mm), 0.0)
    tq = np.where(pos, kl_div(q, mm), 0.0)
    return 0.5 * (np.sum(np.maximum(tp, 0.0), axis=-1) + np.sum(np.maximum(tq, 0.0), axis=-1))


def _log_power_sum(p: np.ndarray, q: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``log Σ p^α q^{1−α}`` over the last axis, split as (log1p-form, is_infinite).

    Returns ``(s, inf_mask)`` with ``s = log Σ_x p (p/q)^{α−1}``. Where every exponent
    ``z = (α−1) log(p/q)`` has ``|z| ≤ 1`` it is computed as ``log1p(Σ p · expm1(z))`` (accurate
    as α → 1 and exactly 0 when p = q); otherwise as a weighted logsumexp. (The log1p form is
    not used for very negative z: there Σ p · expm1(z) rounds to −1 and log1p gives −∞, which
    made renyi([1, 0], [5e-311, 1], 0.5) infinite instead of 714.5.)
    """
    c = alpha - 1.0
    supp = p > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        logratio = np.where(supp, np.log(np.where(supp, p, 1.0)) - np.log(q), 0.0)  # +inf where q = 0 < p
        z = np.where(supp, c * logratio, 0.0)
    inf_mask = np.any(supp & np.isposinf(z), axis=-1)  # alpha > 1 and p has mass where q has none
    zabs = np.max(np.where(supp, np.abs(z), 0.0), axis=-1)
    small = zabs <= 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s_small = np.log1p(np.sum(np.where(supp, p * np.expm1(np.clip(z, -1.0, 1.0)), 0.0), axis=-1))
        zz = np.where(supp & np.isfinite(z), z, -np.inf)
        s_large = logsumexp(zz, b=np.where(supp, p, 0.0), axis=-1)
    return np.where(small, s_small, s_large), inf_mask


def _power(alpha: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def div(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        s, inf_mask = _log_power_sum(p, q, alpha)
        with np.errstate(over="ignore"):
            val = np.expm1(s) / (alpha - 1.0)
        return np.where(inf_mask, np.inf, val)

    return div


# ----------------------------------------------------------------------------- generators
def _js_f(t: np.ndarray) -> np.ndarray:
    return 0.5 * (xlogy(t, t) - xlogy(1.0 + t, 0.5 * (1.0 + t)))


KL = FDivergence(
    name="kl",
    f=lambda t: xlogy(t, t),
    f_conjugate=lambda y: np.exp(y - 1.0),
    f_prime=lambda t: np.log(t) + 1.0,
    f_zero=0.0,
    f_prime_inf=np.inf,
    divergence=_kl,
    formula="KL(p‖q) = Σ p log(p/q)",
)

REVERSE_KL = FDivergence(
    name="reverse_kl",
    f=lambda t: -np.log(t),
    f_conjugate=lambda y: -1.0 - np.log(-y),
    f_prime=lambda t: -1.0 / t,
    f_zero=np.inf,
    f_prime_inf=0.0,
    divergence=lambda p, q: _kl(q, p),
    formula="KL(q‖p) = Σ q log(q/p)",
)

CHI2 = FDivergence(
    name="chi2",
    f=lambda t: (t - 1.0) ** 2,
    # sup over t ≥ 0: interior optimum t = 1 + y/2 when y ≥ −2, else t = 0.
    f_conjugate=lambda y: np.where(y >= -2.0, y + 0.25 * y**2, -1.0),
    f_prime=lambda t: 2.0 * (t - 1.0),
    f_zero=1.0,
    f_prime_inf=np.inf,
    divergence=_chi2,
    formula="χ²(p‖q) = Σ (p − q)²/q = Σ p²/q − 1",
)

TOTAL_VARIATION = FDivergence(
    name="tv",
    f=lambda t: 0.5 * np.abs(t - 1.0),
    f_conjugate=lambda y: np.maximum(y, -0.5),
    f_prime=lambda t: 0.5 * np.sign(t - 1.0),
    f_zero=0.5,
    f_prime_inf=0.5,
    conjugate_at_sup=True,
    divergence=_tv,
    formula="TV(p, q) = ½ Σ |p − q|",
)

HELLINGER2 = FDivergence(
    name="hellinger2",
    f=lambda t: 0.5 * (np.sqrt(t) - 1.0) ** 2,
    f_conjugate=lambda y: y / (1.0 - 2.0 * y),
    f_prime=lambda t: 0.5 * (1.0 - 1.0 / np.sqrt(t)),
    f_zero=0.5,
    f_prime_inf=0.5,
    divergence=_hellinger2,
    formula="H²(p, q) = ½ Σ (√p − √q)²",
)

JENSEN_SHANNON = FDivergence(
    name="js",
    f=_js_f,
    f_conjugate=lambda y: -0.5 * np.log(2.0 - np.exp(2.0 * y)),
    f_prime=lambda t: 0.5 * np.log(2.0 * t / (1.0 + t)),
    f_zero=0.5 * np.log(2.0),
    f_prime_inf=0.5 * np.log(2.0),
    divergence=_js,
    formula="JS(p, q) = ½ KL(p‖m) + ½ KL(q‖m), m = (p + q)/2",
)

#: The named f-divergences, by canonical name.
FDIVERGENCES: dict[str, FDivergence] = {d.name: d for d in (KL, REVERSE_KL, CHI2, TOTAL_VARIATION, HELLINGER2, JENSEN_SHANNON)}

_ALIASES = {
    "forward_kl": "kl",
    "kullback_leibler": "kl",
    "pearson": "chi2",
    "chi_squared": "chi2",
    "total_variation": "tv",
    "hellinger": "hellinger2",
    "squared_hellinger": "hellinger2",
    "jensen_shannon": "js",
}


def _check_alpha(alpha: float) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"alpha must be a number > 0 and != 1, got {alpha!r}") from exc
    if not (np.isfinite(a) and a > 0.0) or a == 1.0:
        raise ValueError(f"alpha must be finite, > 0 and != 1 (alpha -> 1 is KL), got {alpha!r}")
    return a


def power_divergence(alpha: float) -> FDivergence:
    """The α-power divergence, generator ``f_α(t) = (t^α − 1)/(α − 1)`` (α > 0, α ≠ 1).

    ``D_{f_α}(p ‖ q) = (Σ p^α q^{1−α} − 1)/(α − 1)``; ``f_α'(t) = α t^{α−1}/(α − 1)``;
    ``f_α*(y) = ((α−1) y/α)^{α/(α−1)} + 1/(α−1)`` where ``(α−1) y > 0``, ``f_α*(y) = 1/(α−1)`` for
    ``y ≤ 0`` when α > 1, and ``+∞`` for ``y ≥ 0`` when α < 1 (derived here). α = 2 gives
    ``χ²`` (up to the affine term ``t − 1``, which does not change D); the Rényi divergence is
    ``log(1 + (α−1) D_{f_α})/(α−1)``. The value ``e^{(α−1) D_α}`` can exceed the float64 range
    for large α (it is then ``inf``); :func:`renyi` stays in log scale.

    References: Liese & Vajda (2006), "On divergences and informations in statistics and
    information theory", eq. (17); van Erven & Harremoës (2014), eq. (1).
    """
    a = _check_alpha(alpha)
    c = a - 1.0

    def conj(y: np.ndarray) -> np.ndarray:
        base = c * y / a
        return np.where(base > 0, np.abs(base) ** (a / c), 0.0) + 1.0 / c

    return FDivergence(
        name=f"power({a:g})",
        f=lambda t: (t**a - 1.0) / c,
        f_conjugate=conj,
        f_prime=lambda t: a * t**c / c,
        f_zero=-1.0 / c,
        f_prime_inf=np.inf if a > 1 else 0.0,
        divergence=_power(a),
        formula=f"(Σ p^α q^(1−α) − 1)/(α − 1), α = {a:g}",
    )


def get_fdivergence(name_or_fdiv: str | FDivergence) -> FDivergence:
    """Look up a named f-divergence (``"kl"``, ``"reverse_kl"``, ``"chi2"``, ``"tv"``,
    ``"hellinger2"``, ``"js"`` or an alias such as ``"total_variation"``); an
    :class:`FDivergence` is returned unchanged. Raises ValueError for an unknown name."""
    if isinstance(name_or_fdiv, FDivergence):
        return name_or_fdiv
    if not isinstance(name_or_fdiv, str):
        raise ValueError(f"fdiv must be a name or an FDivergence, got {type(name_or_fdiv).__name__}: {name_or_fdiv!r}")
    key = name_or_fdiv.lower()
    key = _ALIASES.get(key, key)
    if key not in FDIVERGENCES:
        raise ValueError(f"unknown f-divergence {name_or_fdiv!r}; known: {sorted(FDIVERGENCES)} (and aliases {sorted(_ALIASES)})")
    return FDIVERGENCES[key]


# ----------------------------------------------------------------------------- public functions
def _generic(p: np.ndarray, q: np.ndarray, fd: FDivergence) -> np.ndarray:
    pos = q > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t = np.where(pos, p / np.where(pos, q, 1.0), 1.0)
        inside = np.where(pos, q * fd.generator(t), 0.0)
        outside = np.where(~pos & (p > 0), p * fd.f_prime_inf, 0.0)
    return np.sum(inside, axis=-1) + np.sum(outside, axis=-1)


def f_divergence(p: object, q: object, fdiv: str | FDivergence, axis: Axis = -1) -> np.ndarray | float:
    """``D_f(p ‖ q) = Σ_{q>0} q f(p/q) + f'(∞) Σ_{q=0} p`` for a named or given f-divergence.

    Shapes: p[..., n], q[..., n] (leading dims broadcast) -> D[...]; ``axis`` selects the
    support axis, ``axis=None`` makes the whole array one distribution (e.g. occupancy ``d[s, a]``).
    Named divergences use their specialized closed forms (log space, exact 0 at p = q); an
    :class:`FDivergence` without ``divergence`` uses the generic sum above.
    Raises ValueError if p or q is not a distribution (naming the argument and the row), on a
    shape mismatch, or for an unknown name.

    References: Csiszár (1967); Liese & Vajda (2006), eq. (6) (the q = 0 convention).
    """
    fd = get_fdivergence(fdiv)
    P, Q = _prepare(p, q, axis)
    out = fd.divergence(P, Q) if fd.divergence is not None else _generic(P, Q, fd)
    return _nonneg(out)


def kl(p: object, q: object, axis: Axis = -1) -> np.ndarray | float:
    """``KL(p ‖ q) = Σ_x p(x) log(p(x)/q(x))``, with ``0 log 0 = 0`` and ``= ∞`` if some
    ``p(x) > 0 = q(x)``. Computed termwise as ``p log(p/q) − p + q ≥ 0`` (scipy ``kl_div``).

    Shapes: p[..., n], q[..., n] -> [...]; ``axis=None``: one distribution over the whole array.

    References: Kullback & Leibler (1951); Cover & Thomas (2006), eq. (2.26).
    """
    return f_divergence(p, q, KL, axis)


def reverse_kl(p: object, q: object, axis: Axis = -1) -> np.ndarray | float:
    """``KL(q ‖ p) = Σ_x q(x) log(q(x)/p(x))`` — the f-divergence with ``f(t) = −log t``;
    ``= ∞`` if some ``q(x) > 0 = p(x)``. Shapes as :func:`kl`.

    References: Nowozin, Cseke, Tomioka (2016), "f-GAN", Table 1.
    """
    return f_divergence(p, q, REVERSE_KL, axis)


def chi2(p: object, q: object, axis: Axis = -1) -> np.ndarray | float:
    """Pearson ``χ²(p ‖ q) = Σ_x (p(x) − q(x))²/q(x) = E_q[(p/q − 1)²] = Σ p²/q − 1``;
    ``= ∞`` if some ``p(x) > 0 = q(x)``. Shapes as :func:`kl`.

    References: Pearson (1900); Huang et al. (2024), "Correcting the mythos of KL-regularization:
    χ²-preference optimization", §3 (χ² with this convention).
    """
    return f_divergence(p, q, CHI2, axis)


def total_variation(p: object, q: object, axis: Axis = -1) -> np.ndarray | float:
    """``TV(p, q) = ½ Σ_x |p(x) − q(x)| = max_E |p(E) − q(E)|`` ∈ [0, 1]. Shapes as :func:`kl`.

    References: Tsybakov (2009), "Introduction to nonparametric estimation", Def. 2.4 and Lemma 2.1.
    """
    return f_divergence(p, q, TOTAL_VARIATION, axis)


#: Short alias: ``tv(p, q, axis=-1)`` is :func:`total_variation` (the one TV of rlref).
tv = total_variation


def entropy(p: object, axis: Axis = -1) -> np.ndarray | float:
    """Shannon entropy ``H(p) = −Σ_x p(x) log p(x)`` in nats (``0 log 0 = 0``), ``0 ≤ H ≤ log n``.

    Not a divergence, but ``H(p) = log n − KL(p ‖ uniform)``; it lives here so that every
    information quantity of the numpy side has one home. Shapes: p[..., n] -> [...] (``axis``
    selects the support axis; ``axis=None``: one distribution over the whole array).
    Raises ValueError if p is not a distribution over ``axis``.

    References: Shannon (1948); Cover & Thomas (2006), eq. (2.1).
    """
    P = _to_last_axis("p", p, axis, getattr(p, "dtype", None))
    out = -np.sum(xlogy(P, P), axis=-1)
    return _nonneg(out)


def hellinger2(p: object, q: object, axis: Axis = -1) -> np.ndarray | float:
    """Squared Hellinger distance ``H²(p, q) = ½ Σ_x (√p(x) − √q(x))² = 1 − Σ √(p q)`` ∈ [0, 1].

    Convention: WITH the factor ½ (Le Cam; Tsybakov uses no ½: his H² is ``2 · hellinger2``, as is
    Foster et al.'s ``D²_H``). Shapes as :func:`kl`.

    References: Tsybakov (2009), Def. 2.3 (up to the factor 2); Le Cam & Yang (2000), §3.2.
    """
    return f_divergence(p, q, HELLINGER2, axis)


def jensen_shannon(p: object, q: object, axis: Axis = -1) -> np.ndarray | float:
    """``JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m)``, ``m = (p + q)/2``, in nats; ``0 ≤ JS ≤ log 2``.

    Symmetric and always finite. (``scipy.spatial.distance.jensenshannon`` returns its square
    root.) Shapes as :func:`kl`.

    References: Lin (1991), "Divergence measures based on the Shannon entropy", eq. (4.1).
    """
    return f_divergence(p, q, JENSEN_SHANNON, axis)


def renyi(p: object, q: object, alpha: float, axis: Axis = -1) -> np.ndarray | float:
    """Rényi divergence of order α: ``D_α(p ‖ q) = log(Σ_x p(x)^α q(x)^{1−α}) / (α − 1)``.

    Not an f-divergence, but ``D_α = log(1 + (α − 1) D_{f_α}) / (α − 1)`` for the α-power
    divergence ``f_α(t) = (t^α − 1)/(α − 1)`` (:func:`power_divergence`), a monotone function of
    it. α > 0, α ≠ 1; ``D_α → KL`` as α → 1; ``D_2 = log(1 + χ²)``; ``D_{1/2} = −2 log(1 − H²)``.
    ``= ∞`` when α > 1 and some ``p(x) > 0 = q(x)``, or when α < 1 and the supports are disjoint.
    Computed in log space (``log1p``/``expm1`` near α = 1, weighted logsumexp otherwise).

    Shapes as :func:`kl`. Raises ValueError if alpha <= 0, alpha == 1 or not finite.

    References: Rényi (1961), "On measures of entropy and information", eq. (1.3); van Erven &
    Harremoës (2014), "Rényi divergence and Kullback-Leibler divergence", eq. (1) and Thm. 5.
    """
    a = _check_alpha(alpha)
    P, Q = _prepare(p, q, axis)
    s, inf_mask = _log_power_sum(P, Q, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        val = np.where(inf_mask, np.inf, s / (a - 1.0))
    return _nonneg(val)


# ----------------------------------------------------------------------------- variational form
def optimal_witness(p: object, q: object, fdiv: str | FDivergence, axis: Axis = -1) -> np.ndarray:
    """The maximizer ``g*(x) = f'(p(x)/q(x))`` of the variational form of :func:`f_divergence`.

    Conventions: ``g* = f'(∞)`` where ``q = 0 < p``; ``g* = f'(0)`` (possibly −∞) where
    ``p = 0 < q``; ``g* = f'(1)`` where ``p = q = 0`` (those points do not enter the bound).
    Where the ratio p/q exceeds the float64 range (q subnormal) it is taken as ∞, so ``g* = f'(∞)``
    there; the divergence itself (:func:`f_divergence`) stays exact in that case.
    Shapes: p[..., n], q[..., n] -> g[..., n] (the shape of the broadcast inputs; with
    ``axis`` moved back in place, or the input shape when ``axis=None``).

    References: Nguyen, Wainwright, Jordan (2010), Lemma 1; Nowozin et al. (2016), eq. (5).
    """
    fd = get_fdivergence(fdiv)
    P, Q = _prepare(p, q, axis)
    pos = Q > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t = np.where(pos, P / np.where(pos, Q, 1.0), np.where(P > 0, np.inf, 1.0))
    g = fd.derivative(t)
    return _restore(g, p, q, axis)


def _restore(g: np.ndarray, p: object, q: object, axis: Axis) -> np.ndarray:
    if axis is None:
        return g.reshape(np.shape(p))
    return np.moveaxis(g, -1, axis)


def variational_lower_bound(p: object, q: object, g: object, fdiv: str | FDivergence, axis: Axis = -1) -> np.ndarray | float:
    """The Fenchel lower bound ``E_p[g] − E_q[f*(g)] ≤ D_f(p ‖ q)`` for a witness ``g(x)``.

    Equality holds at ``g = f'(p/q)`` (:func:`optimal_witness`). Conventions: terms with zero
    mass are dropped (``0 · (±∞) = 0``); ``f*(y) = ∞`` above the domain of f* (bound −∞); a
    point with ``p, q > 0`` and ``g = +∞`` contributes −∞ (``f*`` grows superlinearly); a sum of
    +∞ and −∞ terms is reported as −∞ (the trivial bound).

    Shapes: p[..., n], q[..., n], g broadcastable to them (same ``axis`` layout) -> [...].
    Raises ValueError on NaN in g or a shape mismatch, and as :func:`f_divergence`.

    References: Nguyen, Wainwright, Jordan (2010), "Estimating divergence functionals and the
    likelihood ratio by convex risk minimization", Lemma 1; Nowozin et al. (2016), eq. (4).
    """
    fd = get_fdivergence(fdiv)
    P, Q = _prepare(p, q, axis)
    G = as_float_array("g", g)
    if np.any(np.isnan(G)):
        idx = tuple(int(i) for i in np.argwhere(np.isnan(G))[0])
        raise ValueError(f"g must not contain NaN; g[{', '.join(map(str, idx))}] = nan")
    if axis is None:
        if G.shape != np.shape(p):
            raise ValueError(f"with axis=None, g must have the shape of p {np.shape(p)}, got {G.shape}")
        G = G.reshape(-1)
    elif G.ndim > 0:
        if not -G.ndim <= axis < G.ndim:
            raise ValueError(f"g of shape {G.shape} has no axis {axis}")
        G = np.moveaxis(G, axis, -1)
    try:
        G = np.broadcast_to(G, P.shape)
    except ValueError as exc:
        raise ValueError(f"g must broadcast to the shape of p and q (support on axis {axis}), got g {np.shape(g)}") from exc
    fstar = fd.conjugate(G)
    with np.errstate(invalid="ignore"):
        ep = np.where(P > 0, P * G, 0.0)
        eq = np.where(Q > 0, Q * fstar, 0.0)
        terms = ep - eq
    # p, q > 0 and g = +inf: inf - inf; the limit is -inf (f* is superlinear at +inf).
    terms = np.where(np.isnan(terms), -np.inf, terms)
    with np.errstate(invalid="ignore"):
        total = np.sum(terms, axis=-1)
    total = np.where(np.isnan(total), -np.inf, total)
    return total[()] if total.ndim == 0 else total


# ----------------------------------------------------------------------------- optimal transport
def wasserstein1(p: object, q: object, cost: object) -> float:
    """Wasserstein-1 (Kantorovich) distance between discrete distributions: the exact transport LP.

        W₁(p, q) = min_{π ∈ ℝ^{n×m}, π ≥ 0}  Σ_ij π_ij cost_ij   s.t.  Σ_j π_ij = p_i,  Σ_i π_ij = q_j,

    solved with HiGHS (``scipy.optimize.linprog``) on the supports of p and q only. With ``cost`` a metric
    d[s, t] on one finite space (n = m) this is the W₁ of the metric space (Kantorovich-Rubinstein:
    = max_{f 1-Lipschitz} Σ f (p − q)); a rectangular ``cost`` is the general transport problem between two
    point sets. Exact fast paths: a point mass on either side (the only coupling is the product p qᵀ) and
    p = q with a zero cost diagonal on the support (the identity coupling costs 0).

    Shapes: p[n], q[m], cost[n, m] -> float (≥ 0).
    Raises ValueError if p or q is not a distribution, cost has the wrong shape, or an entry of cost on the
    supports is not finite or is negative (named by index); RuntimeError if the LP fails.

    References: Villani (2008), "Optimal Transport: Old and New", Def. 6.1 and Thm 5.10 (duality); Ferns,
    Panangaden & Precup (2004), "Metrics for finite Markov decision processes", UAI (W₁ over a finite MDP's
    states, the LP form used in the bisimulation metric).
    """
    P = as_distribution("p", p, ndim=1)
    Q = as_distribution("q", q, ndim=1)
    C = as_float_array("cost", cost, ndim=2)
    if C.shape != (P.size, Q.size):
        raise ValueError(f"cost must have shape ({P.size}, {Q.size}) (len(p), len(q)); got {C.shape}")
    i, j = np.flatnonzero(P > 0), np.flatnonzero(Q > 0)
    c = C[np.ix_(i, j)]
    bad = ~np.isfinite(c) | (c < 0)
    if bad.any():
        k, l = np.argwhere(bad)[0]
        raise ValueError(f"cost[{i[k]}, {j[l]}] = {c[k, l]!r} is not finite and >= 0 on the supports of p and q")
    if i.size == 1 or j.size == 1:
        return float((P[i][:, None] * Q[j][None, :] * c).sum())  # the only coupling is the product
    if i.size == j.size and np.array_equal(i, j) and np.allclose(P[i], Q[j], rtol=0, atol=1e-15) and not np.diag(c).any():
        return 0.0
    n, m = i.size, j.size
    A_eq = sparse.vstack([sparse.kron(sparse.eye(n), np.ones((1, m))), sparse.kron(np.ones((1, n)), sparse.eye(m))], format="csr")
    res = linprog(c.ravel(), A_eq=A_eq, b_eq=np.r_[P[i], Q[j]], bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"the Wasserstein-1 transport LP (HiGHS) failed: status {res.status}: {res.message}")
    return max(float(res.fun), 0.0)


__all__ += ["wasserstein1"]
