"""Tests for rlref.divergences: each test names the claim it checks.

Golden values come from independent computations: scalar closed forms (Bernoulli KL and
Hellinger), enumeration of events (TV), numeric suprema via scipy.optimize (conjugates), and the
defining sum Σ q f(p/q) evaluated directly here.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from rlref.divergences import (
    CHI2,
    FDIVERGENCES,
    HELLINGER2,
    JENSEN_SHANNON,
    KL,
    REVERSE_KL,
    TOTAL_VARIATION,
    FDivergence,
    chi2,
    f_divergence,
    get_fdivergence,
    hellinger2,
    jensen_shannon,
    kl,
    optimal_witness,
    power_divergence,
    renyi,
    reverse_kl,
    total_variation,
    variational_lower_bound,
)
from rlref.testing import distributions

SETTINGS = settings(max_examples=25, deadline=None)
ALL = [*FDIVERGENCES.values(), power_divergence(2.0), power_divergence(0.5), power_divergence(3.0)]
ALL_IDS = [d.name for d in ALL]
ALPHAS = [0.3, 0.5, 0.9, 2.0, 4.0]


def pairs(min_mass: float = 0.0, allow_zeros: bool = False, max_n: int = 6) -> st.SearchStrategy:
    return st.integers(1, max_n).flatmap(
        lambda n: st.tuples(distributions(n, min_mass=min_mass, allow_zeros=allow_zeros),
                            distributions(n, min_mass=min_mass, allow_zeros=allow_zeros))
    )


# ----------------------------------------------------------------------------- positivity
@SETTINGS
@given(pq=pairs(allow_zeros=True))
def test_divergence_nonnegative_and_zero_iff_equal(pq: tuple[np.ndarray, np.ndarray]) -> None:
    """D_f(p‖q) >= 0, D_f(p‖p) = 0 exactly, and D_f(p‖q) > 0 when p and q differ (Jensen)."""
    p, q = pq
    for fd in ALL:
        d = f_divergence(p, q, fd)
        assert d >= 0, fd.name
        assert f_divergence(p, p, fd) == 0.0, fd.name
        assert f_divergence(q, q, fd) == 0.0, fd.name
        if np.max(np.abs(p - q)) > 1e-6:
            assert d > 0, fd.name


@SETTINGS
@given(pq=pairs(allow_zeros=True))
def test_renyi_nonnegative_and_zero_iff_equal(pq: tuple[np.ndarray, np.ndarray]) -> None:
    """Rényi D_α(p‖q) >= 0 with equality iff p = q (van Erven & Harremoës 2014, Thm. 8)."""
    p, q = pq
    for alpha in ALPHAS:
        d = renyi(p, q, alpha)
        assert d >= 0, alpha
        assert renyi(p, p, alpha) == 0.0, alpha
        if np.max(np.abs(p - q)) > 1e-6:
            assert d > 0, alpha


# ----------------------------------------------------------------------------- definition
@SETTINGS
@given(pq=pairs(min_mass=0.01))
def test_matches_defining_sum_on_positive_inputs(pq: tuple[np.ndarray, np.ndarray]) -> None:
    """The specialized closed form equals Σ_x q(x) f(p(x)/q(x)) computed from the generator."""
    p, q = pq
    for fd in ALL:
        direct = float(np.sum(q * fd.f(p / q)))
        assert f_divergence(p, q, fd) == pytest.approx(max(direct, 0.0), rel=1e-9, abs=1e-12), fd.name


@SETTINGS
@given(pq=pairs(min_mass=0.01))
def test_renyi_is_monotone_function_of_power_divergence(pq: tuple[np.ndarray, np.ndarray]) -> None:
    """D_α = log(Σ p^α q^{1-α})/(α-1) = log(1 + (α-1) D_{f_α})/(α-1), f_α(t) = (t^α - 1)/(α-1)."""
    p, q = pq
    for alpha in ALPHAS:
        _check_renyi_forms(p, q, alpha)


def _check_renyi_forms(p: np.ndarray, q: np.ndarray, alpha: float) -> None:
    direct = math.log(float(np.sum(p**alpha * q ** (1 - alpha)))) / (alpha - 1)
    via_power = math.log1p((alpha - 1) * float(f_divergence(p, q, power_divergence(alpha)))) / (alpha - 1)
    assert renyi(p, q, alpha) == pytest.approx(max(direct, 0.0), rel=1e-9, abs=1e-12)
    assert renyi(p, q, alpha) == pytest.approx(max(via_power, 0.0), rel=1e-9, abs=1e-12)


@SETTINGS
@given(pq=pairs(min_mass=0.01))
def test_generic_path_agrees_with_closed_forms(pq: tuple[np.ndarray, np.ndarray]) -> None:
    """An FDivergence without a specialized implementation (generic Σ q f(p/q)) gives the same value."""
    p, q = pq
    for fd in FDIVERGENCES.values():
        generic = FDivergence(fd.name, fd.f, fd.f_conjugate, fd.f_prime, fd.f_zero, fd.f_prime_inf)
        assert f_divergence(p, q, generic) == pytest.approx(f_divergence(p, q, fd), rel=1e-9, abs=1e-12)


# ----------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("a,b", [(0.3, 0.6), (0.01, 0.99), (0.5, 0.5), (0.9, 0.2), (1e-6, 0.5)])
def test_bernoulli_closed_forms(a: float, b: float) -> None:
    """KL, reverse KL, χ², TV, H², JS between Bernoulli(a) and Bernoulli(b) from scalar formulas."""
    p, q = np.array([a, 1 - a]), np.array([b, 1 - b])
    kl_ab = a * math.log(a / b) + (1 - a) * math.log((1 - a) / (1 - b))
    kl_ba = b * math.log(b / a) + (1 - b) * math.log((1 - b) / (1 - a))
    assert kl(p, q) == pytest.approx(kl_ab, rel=1e-10, abs=1e-15)
    assert reverse_kl(p, q) == pytest.approx(kl_ba, rel=1e-10, abs=1e-15)
    assert chi2(p, q) == pytest.approx((a - b) ** 2 / (b * (1 - b)), rel=1e-10, abs=1e-15)
    assert total_variation(p, q) == pytest.approx(abs(a - b), rel=1e-12, abs=1e-15)
    h2 = 1 - (math.sqrt(a * b) + math.sqrt((1 - a) * (1 - b)))
    assert hellinger2(p, q) == pytest.approx(h2, rel=1e-8, abs=1e-15)
    m = (a + b) / 2
    js = 0.5 * (a * math.log(a / m) + (1 - a) * math.log((1 - a) / (1 - m))) + 0.5 * (
        b * math.log(b / m) + (1 - b) * math.log((1 - b) / (1 - m))
    )
    assert jensen_shannon(p, q) == pytest.approx(js, rel=1e-10, abs=1e-15)


@SETTINGS
@given(pq=pairs(allow_zeros=True))
def test_chi2_is_sum_p2_over_q_minus_one(pq: tuple[np.ndarray, np.ndarray]) -> None:
    """χ²(p‖q) = Σ p²/q − 1 when supp p ⊆ supp q, and ∞ otherwise."""
    p, q = pq
    if np.any((p > 0) & (q == 0)):
        assert chi2(p, q) == np.inf
    else:
        s = q > 0
        assert chi2(p, q) == pytest.approx(float(np.sum(p[s] ** 2 / q[s])) - 1, rel=1e-9, abs=1e-12)


@SETTINGS
@given(pq=pairs(allow_zeros=True))
def test_tv_is_half_l1_and_max_over_events(pq: tuple[np.ndarray, np.ndarray]) -> None:
    """TV = ½‖p − q‖₁ = max_E |p(E) − q(E)| (enumerating all events E)."""
    p, q = pq
    n = len(p)
    best = max(abs(float(p[list(E)].sum() - q[list(E)].sum())) for k in range(n + 1) for E in itertools.combinations(range(n), k))
    assert total_variation(p, q) == pytest.approx(0.5 * float(np.abs(p - q).sum()), rel=1e-12, abs=1e-15)
    assert total_variation(p, q) == pytest.approx(best, rel=1e-9, abs=1e-12)


@SETTINGS
@given(pq=pairs(allow_zeros=True))
def test_classical_inequalities(pq: tuple[np.ndarray, np.ndarray]) -> None:
    """Pinsker TV <= sqrt(KL/2); Le Cam h² <= TV <= h sqrt(2 − h²) (h² = ½Σ(√p−√q)²);
    JS <= log 2; KL <= log(1 + χ²) (= D_1 <= D_2); H² <= 1; TV <= 1."""
    p, q = pq
    tv, kl_, h2 = total_variation(p, q), kl(p, q), hellinger2(p, q)
    assert tv <= math.sqrt(kl_ / 2) + 1e-12
    assert h2 <= tv + 1e-12
    assert tv <= math.sqrt(h2 * (2 - h2)) + 1e-12
    assert jensen_shannon(p, q) <= math.log(2) + 1e-12
    assert kl_ <= math.log1p(chi2(p, q)) + 1e-12
    assert h2 <= 1 + 1e-12 and tv <= 1 + 1e-12


def test_js_is_log2_on_disjoint_supports() -> None:
    """JS attains its maximum log 2 exactly when the supports are disjoint; H² = TV = 1 there."""
    p, q = np.array([0.3, 0.7, 0.0, 0.0]), np.array([0.0, 0.0, 0.5, 0.5])
    assert jensen_shannon(p, q) == pytest.approx(math.log(2), rel=1e-14)
    assert hellinger2(p, q) == pytest.approx(1.0, rel=1e-14)
    assert total_variation(p, q) == pytest.approx(1.0, rel=1e-14)


@SETTINGS
@given(pq=pairs(allow_zeros=True))
def test_renyi_order_2_and_half(pq: tuple[np.ndarray, np.ndarray]) -> None:
    """D_2 = log(1 + χ²) and D_{1/2} = −2 log(1 − H²) (Bhattacharyya), including ∞ cases."""
    p, q = pq
    assert renyi(p, q, 2.0) == pytest.approx(math.log1p(chi2(p, q)), rel=1e-9, abs=1e-12)
    # 1 − H² is the Bhattacharyya coefficient BC = Σ √(p q); computed directly so that disjoint
    # supports give BC = 0 exactly (1 − H² can round to 1e-32 instead) and D_{1/2} = ∞.
    bc = float(np.sum(np.sqrt(p * q)))
    assert bc == pytest.approx(1 - hellinger2(p, q), abs=1e-12)
    expected = -2 * math.log(bc) if bc > 0 else math.inf
    assert renyi(p, q, 0.5) == pytest.approx(expected, rel=1e-7, abs=1e-10)


@SETTINGS
@given(pq=pairs(min_mass=0.01))
def test_renyi_tends_to_kl_and_is_monotone_in_alpha(pq: tuple[np.ndarray, np.ndarray]) -> None:
    """D_α → KL as α → 1 (both sides) and α ↦ D_α is non-decreasing (van Erven & Harremoës, Thm. 3, 5)."""
    p, q = pq
    k = kl(p, q)
    for eps in (1e-3, 1e-6):
        # |D_{1±ε} − KL| <= ε · Var_p[log p/q] / 2 + O(ε²); |log p/q| <= log 100 here.
        assert abs(renyi(p, q, 1 + eps) - k) <= eps * 15 + 1e-12
        assert abs(renyi(p, q, 1 - eps) - k) <= eps * 15 + 1e-12
    values = [renyi(p, q, a) for a in (0.1, 0.5, 0.9, 0.999, 1.001, 1.5, 2.0, 5.0)]
    assert all(x <= y + 1e-12 for x, y in itertools.pairwise(values))


def test_power_divergence_order_2_is_chi2() -> None:
    """The generator t² − 1 differs from (t − 1)² by the affine 2(t − 1), so D is χ²."""
    p, q = np.array([0.1, 0.2, 0.7]), np.array([0.3, 0.3, 0.4])
    assert f_divergence(p, q, power_divergence(2.0)) == pytest.approx(chi2(p, q), rel=1e-12)


# ----------------------------------------------------------------------------- zero mass
def test_zero_mass_conventions() -> None:
    """0 log 0 = 0; KL, χ², Rényi(α>1) = ∞ when p has mass outside supp q; reverse KL = ∞ when
    q has mass outside supp p; Rényi(α<1) = ∞ only for disjoint supports; TV, H², JS finite."""
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.5, 0.25, 0.25])
    # p ≪ q: KL finite, computed with 0 log 0 = 0
    assert kl(p, q) == pytest.approx(0.5 * math.log(2.0), rel=1e-14)
    assert reverse_kl(p, q) == np.inf
    assert chi2(p, q) == pytest.approx(0.5**2 / 0.5 + 0.5**2 / 0.25 - 1, rel=1e-14)  # Σ p²/q − 1 = 0.5
    # p not ≪ q
    assert kl(q, p) == np.inf and chi2(q, p) == np.inf and renyi(q, p, 2.0) == np.inf
    assert reverse_kl(q, p) == pytest.approx(kl(p, q), rel=1e-14)
    assert np.isfinite(renyi(q, p, 0.5))
    for fn in (total_variation, hellinger2, jensen_shannon):
        assert np.isfinite(fn(p, q)) and np.isfinite(fn(q, p))
    # disjoint supports
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert renyi(a, b, 0.5) == np.inf and renyi(a, b, 3.0) == np.inf
    assert kl(a, b) == np.inf and reverse_kl(a, b) == np.inf
    # the generic path uses f(0) and f'(∞) = lim f(t)/t
    for fd in FDIVERGENCES.values():
        generic = FDivergence(fd.name, fd.f, fd.f_conjugate, fd.f_prime, fd.f_zero, fd.f_prime_inf)
        for x, y in ((p, q), (q, p), (a, b)):
            assert f_divergence(x, y, generic) == pytest.approx(f_divergence(x, y, fd), rel=1e-12)


def test_generator_limits_match_the_generators() -> None:
    """f_zero = lim_{t→0} f(t) and f_prime_inf = lim_{t→∞} f(t)/t for every named divergence."""
    for fd in FDIVERGENCES.values():
        with np.errstate(divide="ignore"):
            at_zero = float(fd.f(np.array(1e-300)))
        if np.isinf(fd.f_zero):
            assert at_zero > 100
        else:
            assert at_zero == pytest.approx(fd.f_zero, abs=1e-6)
        slope = float(fd.f(np.array(1e12)) / 1e12)
        if np.isinf(fd.f_prime_inf):
            assert slope > 10
        else:
            assert slope == pytest.approx(fd.f_prime_inf, abs=1e-5)
        assert float(fd.f(np.array(1.0))) == 0.0


# ----------------------------------------------------------------------------- variational form
def _random_witness(fd: FDivergence, rng: np.random.Generator, n: int) -> np.ndarray:
    top = fd.f_prime_inf
    if np.isinf(top):
        return rng.normal(scale=3.0, size=n)
    return top - rng.exponential(scale=2.0, size=n) - 1e-9


@SETTINGS
@given(pq=pairs(allow_zeros=True), seed=st.integers(0, 2**32 - 1))
def test_variational_bound_and_equality_at_witness(pq: tuple[np.ndarray, np.ndarray], seed: int) -> None:
    """E_p[g] − E_q[f*(g)] <= D_f(p‖q) for every g, with equality at g* = f'(p/q)
    (Nguyen, Wainwright, Jordan 2010, Lemma 1), also when D is infinite."""
    p, q = pq
    for fd in ALL:
        _check_variational(fd, p, q, seed)


def _check_variational(fd: FDivergence, p: np.ndarray, q: np.ndarray, seed: int) -> None:
    d = f_divergence(p, q, fd)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        g = _random_witness(fd, rng, len(p))
        assert variational_lower_bound(p, q, g, fd) <= d + 1e-9 * (1 + abs(d) if np.isfinite(d) else 1)
    g_star = optimal_witness(p, q, fd)
    bound = variational_lower_bound(p, q, g_star, fd)
    if np.isinf(d):
        assert bound == np.inf
    else:
        assert bound == pytest.approx(d, rel=1e-8, abs=1e-10)


def test_bound_is_minus_inf_outside_conjugate_domain() -> None:
    """A witness above f'(∞) has f*(g) = ∞, so the bound is −∞ (trivially valid)."""
    p, q = np.array([0.2, 0.8]), np.array([0.5, 0.5])
    assert variational_lower_bound(p, q, np.array([0.6, 0.0]), TOTAL_VARIATION) == -np.inf
    assert variational_lower_bound(p, q, np.array([0.1, 0.0]), REVERSE_KL) == -np.inf
    assert variational_lower_bound(p, q, np.array([0.5, 0.5]), TOTAL_VARIATION) == pytest.approx(0.5 * 0.2 + 0.5 * 0.8 - 0.5)


CONJ_RANGES = {
    "kl": (-10.0, 8.0),
    "reverse_kl": (-10.0, -0.1),
    "chi2": (-6.0, 10.0),
    "tv": (-2.0, 0.5),
    "hellinger2": (-5.0, 0.45),
    "js": (-5.0, 0.3),
    "power(2)": (-3.0, 6.0),
    "power(0.5)": (-5.0, -0.1),
    "power(3)": (-3.0, 6.0),
}


@pytest.mark.parametrize("fd", ALL, ids=ALL_IDS)
def test_conjugate_matches_numeric_supremum(fd: FDivergence) -> None:
    """f*(y) = sup_{t >= 0} (t y − f(t)), checked against a bounded scalar maximization over
    u = log t ∈ [−30, 30] together with the endpoint t = 0."""
    lo, hi = CONJ_RANGES[fd.name]
    rng = np.random.default_rng(0)
    for y in [lo, hi, *rng.uniform(lo, hi, size=12)]:
        res = minimize_scalar(lambda u, y=y: -(math.exp(u) * y - float(fd.f(np.array(math.exp(u))))),
                              bounds=(-30.0, 30.0), method="bounded", options={"xatol": 1e-12})
        sup = max(-res.fun, -fd.f_zero)
        assert float(fd.conjugate(np.array(y))) == pytest.approx(sup, rel=1e-7, abs=1e-8), (fd.name, y)
    # above the domain the supremum is infinite
    if np.isfinite(fd.f_prime_inf):
        y = fd.f_prime_inf + 0.1
        assert fd.conjugate(np.array(y)) == np.inf
        assert y * 1e8 - float(fd.f(np.array(1e8))) > 1e6


def test_conjugate_at_minus_infinity_is_minus_f0() -> None:
    """f*(−∞) = lim_{y→−∞} sup_t (t y − f(t)) = −f(0)."""
    for fd in ALL:
        assert float(fd.conjugate(np.array(-np.inf))) == -fd.f_zero


# ----------------------------------------------------------------------------- batching
@settings(max_examples=10, deadline=None)
@given(p=distributions(4, allow_zeros=True, batch_shape=(2, 3)), q=distributions(4, allow_zeros=True, batch_shape=(2, 3)))
def test_batching_equals_loop(p: np.ndarray, q: np.ndarray) -> None:
    """Leading dimensions are a batch; axis=0 and broadcasting of q agree with a Python loop."""
    for name in [*FDIVERGENCES, "renyi"]:
        _check_batching(name, p, q)


def _check_batching(name: str, p: np.ndarray, q: np.ndarray) -> None:
    def fn(x: np.ndarray, y: np.ndarray, **kw: object) -> np.ndarray:
        return renyi(x, y, 1.7, **kw) if name == "renyi" else f_divergence(x, y, name, **kw)

    batched = fn(p, q)
    assert batched.shape == (2, 3)
    loop = np.array([[fn(p[i, j], q[i, j]) for j in range(3)] for i in range(2)])
    np.testing.assert_array_equal(batched, loop)
    moved = fn(np.moveaxis(p, -1, 0), np.moveaxis(q, -1, 0), axis=0)
    np.testing.assert_array_equal(moved, loop)
    bcast = fn(p, q[0, 0])
    np.testing.assert_array_equal(bcast, np.array([[fn(p[i, j], q[0, 0]) for j in range(3)] for i in range(2)]))


def test_axis_none_treats_the_array_as_one_distribution() -> None:
    """axis=None: an occupancy measure d[s, a] is one distribution over state-action pairs."""
    rng = np.random.default_rng(3)
    d1 = rng.random((4, 3))
    d1 /= d1.sum()
    d2 = rng.random((4, 3))
    d2 /= d2.sum()
    assert kl(d1, d2, axis=None) == pytest.approx(float(np.sum(d1 * np.log(d1 / d2))), rel=1e-12)
    assert chi2(d1, d2, axis=None) == pytest.approx(chi2(d1.ravel(), d2.ravel()), rel=1e-14)
    g = optimal_witness(d1, d2, "chi2", axis=None)
    assert g.shape == (4, 3)
    np.testing.assert_allclose(g, 2 * (d1 / d2 - 1), rtol=1e-12)
    assert variational_lower_bound(d1, d2, g, "chi2", axis=None) == pytest.approx(chi2(d1, d2, axis=None), rel=1e-10)
    with pytest.raises(ValueError, match=r"q\[:\] must sum to 1"):
        kl(d1, d2 * 2, axis=None)


def test_witness_shape_follows_axis() -> None:
    """optimal_witness returns g in the layout of p (support on `axis`)."""
    p = np.array([[0.2, 0.5], [0.8, 0.5]])  # columns are distributions
    q = np.array([[0.5, 0.5], [0.5, 0.5]])
    g = optimal_witness(p, q, "kl", axis=0)
    np.testing.assert_allclose(g, np.log(p / q) + 1, rtol=1e-14)
    assert variational_lower_bound(p, q, g, "kl", axis=0) == pytest.approx(kl(p, q, axis=0), rel=1e-12)


# ----------------------------------------------------------------------------- bad input
def test_negative_entry_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"p must be non-negative; p\[1\] = -0.1"):
        kl([0.6, -0.1, 0.5], [0.3, 0.3, 0.4])


def test_row_not_summing_to_one_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"q\[1, :\] must sum to 1.*0.9"):
        total_variation(np.full((2, 2), 0.5), np.array([[0.5, 0.5], [0.5, 0.4]]))


def test_shape_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="same support size"):
        hellinger2([0.5, 0.5], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="incompatible batch shapes"):
        jensen_shannon(np.full((2, 2), 0.5), np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="same shape"):
        kl(np.full((2, 2), 0.25), np.full(4, 0.25), axis=None)


@pytest.mark.parametrize("alpha", [0.0, -1.0, 1.0, float("nan"), float("inf"), "two"])
def test_bad_renyi_alpha_is_rejected(alpha: object) -> None:
    with pytest.raises(ValueError, match="alpha"):
        renyi([0.5, 0.5], [0.5, 0.5], alpha)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        power_divergence(alpha)  # type: ignore[arg-type]


def test_other_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown f-divergence 'kll'"):
        f_divergence([1.0], [1.0], "kll")
    with pytest.raises(ValueError, match="at least 1-dimensional"):
        kl(1.0, 1.0)
    with pytest.raises(ValueError, match="axis"):
        kl([0.5, 0.5], [0.5, 0.5], axis=3)
    with pytest.raises(ValueError, match=r"p must be finite; p\[0\] = nan"):
        chi2([np.nan, 1.0], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"g must not contain NaN; g\[1\]"):
        variational_lower_bound([0.5, 0.5], [0.5, 0.5], [0.0, np.nan], "kl")
    with pytest.raises(ValueError, match="g must broadcast"):
        variational_lower_bound([0.5, 0.5], [0.5, 0.5], [0.0, 0.0, 0.0], "kl")


def test_names_and_aliases() -> None:
    """Every canonical name and alias resolves; FDivergence objects pass through."""
    assert get_fdivergence("total_variation") is TOTAL_VARIATION
    assert get_fdivergence("hellinger") is HELLINGER2
    assert get_fdivergence("jensen_shannon") is JENSEN_SHANNON
    assert get_fdivergence("KL") is KL and get_fdivergence(CHI2) is CHI2
    assert set(FDIVERGENCES) == {"kl", "reverse_kl", "chi2", "tv", "hellinger2", "js"}


# ----------------------------------------------------------------------------- subnormals (issue #11 item 3)
TINY = 5e-311  # subnormal: 1 / TINY overflows float64


def test_kl_with_a_subnormal_q_entry_is_finite() -> None:
    """KL([1, 0] ‖ [t, 1 − t]) = −log t exactly (one term); with t subnormal the ratio 1/t overflows,
    but KL = 714.49 is representable and must be returned (it was +inf)."""
    want = -math.log(TINY)
    assert kl([1.0, 0.0], [TINY, 1.0]) == pytest.approx(want, rel=1e-14)
    assert reverse_kl([TINY, 1.0], [1.0, 0.0]) == pytest.approx(want, rel=1e-14)
    assert f_divergence([1.0, 0.0], [TINY, 1.0], "kl") == pytest.approx(want, rel=1e-14)
    # row-wise on a policy array pi[s, a]: only the subnormal row is affected
    got = kl(np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([[TINY, 1.0], [0.5, 0.5]]), axis=-1)
    np.testing.assert_allclose(got, [want, 0.0], rtol=1e-14)


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.999, 2.0, 4.0])
def test_renyi_with_a_subnormal_q_entry_is_minus_log_t(alpha: float) -> None:
    """D_α([1, 0] ‖ [t, 1 − t]) = log(t^{1−α}) / (α − 1) = −log t for every α (closed form);
    the log1p branch used to round Σ p expm1(z) to −1 and return +inf for α < 1."""
    assert renyi([1.0, 0.0], [TINY, 1.0], alpha) == pytest.approx(-math.log(TINY), rel=1e-12)


def test_power_divergence_with_a_subnormal_q_entry() -> None:
    """D_{f_α}([1, 0] ‖ [t, 1 − t]) = (t^{1−α} − 1)/(α − 1), evaluated with math.pow."""
    for alpha in (0.5, 0.9):
        want = (math.pow(TINY, 1.0 - alpha) - 1.0) / (alpha - 1.0)
        assert f_divergence([1.0, 0.0], [TINY, 1.0], power_divergence(alpha)) == pytest.approx(want, rel=1e-12)


def test_chi2_term_does_not_underflow() -> None:
    """χ² term (p − q)²/q with p = 1e-160, q = 1e-310 is 1e-10 (the square of p − q underflows)."""
    got = chi2([1e-160, 1.0 - 1e-160], [1e-310, 1.0 - 1e-310])
    assert got == pytest.approx(1e-10, rel=1e-9)  # (1e-160)² / 1e-310; the second term is 0


def test_js_with_the_smallest_subnormal_is_finite() -> None:
    """JS is bounded by log 2; with p = [1, 5e-324], q = [1, 0] the midpoint rounds to 0 but JS
    must stay finite (its true value, ½ · 5e-324 · log 2, underflows to 0)."""
    d = jensen_shannon([1.0, 5e-324], [1.0, 0.0])
    assert np.isfinite(d) and 0.0 <= d <= math.log(2)


def test_entropy_and_tv_alias() -> None:
    """H(uniform_n) = log n; H(p) = log n − KL(p ‖ uniform); tv is total_variation."""
    from rlref.divergences import entropy, tv

    assert entropy(np.full(5, 0.2)) == pytest.approx(math.log(5), rel=1e-15)
    p = np.array([0.1, 0.2, 0.7])
    assert entropy(p) == pytest.approx(-sum(x * math.log(x) for x in p), rel=1e-14)
    assert entropy(np.array([[1.0, 0.0], [0.5, 0.5]])) == pytest.approx([0.0, math.log(2)])
    assert entropy(np.full((2, 2), 0.25), axis=None) == pytest.approx(math.log(4))
    assert tv is total_variation
    with pytest.raises(ValueError, match="p"):
        entropy([0.5, 0.6])


# ----------------------------------------------------------------------------- Wasserstein-1
@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_wasserstein1_equals_the_cdf_formula_on_the_line(n, m, seed) -> None:
    """On ℝ, W₁(p, q) = ∫|F_p − F_q| (scipy.stats.wasserstein_distance, an independent formula), for two point sets
    (rectangular cost |x_i − y_j|) and for one shared point set (a square metric)."""
    from scipy.stats import wasserstein_distance

    from rlref.divergences import wasserstein1

    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=n), rng.normal(size=m)
    p, q = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(m))
    assert wasserstein1(p, q, np.abs(x[:, None] - y[None, :])) == pytest.approx(wasserstein_distance(x, y, p, q), abs=1e-9)
    q2 = rng.dirichlet(np.ones(n))
    assert wasserstein1(p, q2, np.abs(x[:, None] - x[None, :])) == pytest.approx(wasserstein_distance(x, x, p, q2), abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 5), st.integers(2, 5), st.integers(0, 2**31 - 1), st.booleans())
def test_wasserstein1_matches_cvxpy_on_random_costs_and_metrics(n, m, seed, metric) -> None:
    """The HiGHS transport LP equals the same LP solved by cvxpy/Clarabel (an independent solver), on random
    rectangular costs and on random finite metrics (shortest paths of a random graph); and for a metric the
    Kantorovich-Rubinstein dual max_{f: |f_i − f_j| ≤ d_ij} Σ f (p − q) gives the same value (Villani 2008, Thm 5.10)."""
    import cvxpy as cp
    from scipy.sparse.csgraph import shortest_path

    from rlref.divergences import wasserstein1

    rng = np.random.default_rng(seed)
    if metric:
        m = n
        w = rng.uniform(0.1, 2.0, (n, n))
        cost = shortest_path(np.triu(w, 1) + np.triu(w, 1).T, directed=False)
    else:
        cost = rng.uniform(0.0, 3.0, (n, m))
    p = rng.dirichlet(np.ones(n))
    q = rng.dirichlet(np.ones(m))
    pi = cp.Variable((n, m), nonneg=True)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(cost, pi))), [cp.sum(pi, axis=1) == p, cp.sum(pi, axis=0) == q])
    prob.solve(solver=cp.CLARABEL)
    got = wasserstein1(p, q, cost)
    assert got == pytest.approx(prob.value, abs=1e-6)
    if metric:
        f = cp.Variable(n)
        dual = cp.Problem(cp.Maximize(f @ (p - q)), [f[i] - f[j] <= cost[i, j] for i in range(n) for j in range(n) if i != j])
        dual.solve(solver=cp.CLARABEL)
        assert got == pytest.approx(dual.value, abs=1e-6)


def test_wasserstein1_fast_paths_and_bad_inputs() -> None:
    """A point mass: W₁(δ_i, q) = Σ_j q_j cost_ij; W₁(p, p) = 0 for a zero-diagonal cost but not for a cost with a
    positive diagonal (the fast path must not fire); errors name the argument and index."""
    from rlref.divergences import wasserstein1

    cost = np.array([[0.0, 1.0, 4.0], [1.0, 0.0, 2.0], [4.0, 2.0, 0.0]])
    assert wasserstein1([0.0, 1.0, 0.0], [0.2, 0.3, 0.5], cost) == pytest.approx(0.2 * 1 + 0.5 * 2)
    assert wasserstein1([0.3, 0.3, 0.4], [0.3, 0.3, 0.4], cost) == 0.0
    assert wasserstein1([0.5, 0.5], [0.5, 0.5], np.ones((2, 2))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cost must have shape"):
        wasserstein1([0.5, 0.5], [1.0], np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"cost\[0, 1\].*not finite"):
        wasserstein1([0.5, 0.5], [0.5, 0.5], np.array([[0.0, np.inf], [np.inf, 0.0]]))
    with pytest.raises(ValueError, match=r"cost\[1, 0\]"):
        wasserstein1([0.5, 0.5], [0.5, 0.5], np.array([[0.0, 1.0], [-1.0, 0.0]]))
    with pytest.raises(ValueError, match="q"):
        wasserstein1([1.0, 0.0, 0.0], [0.5, 0.6, 0.0], cost)
    # a zero-probability row may carry inf: only the supports matter
    assert wasserstein1([0.5, 0.5, 0.0], [0.5, 0.0, 0.5], np.array([[0.0, 1, 1], [1, 0, 1], [np.inf, np.inf, 0]])) == pytest.approx(0.5)
