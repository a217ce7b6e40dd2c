"""rlref._checks, the one validation module of the numpy side: each check accepts what it
documents and refuses the rest with a ValueError that names the argument (and the index)."""

from __future__ import annotations

import numpy as np
import pytest

from rlref import _checks as C


@pytest.mark.parametrize("bad", [1 + 2j, np.complex128(1 + 0j), [1.0, 2j], np.zeros(2, dtype=complex)])
def test_as_float_array_refuses_complex(bad) -> None:
    with pytest.raises(ValueError, match="x must be real"):
        C.as_float_array("x", bad)


def test_as_float_array_names_unconvertible_input_and_wrong_ndim() -> None:
    with pytest.raises(ValueError, match="x must be convertible"):
        C.as_float_array("x", "abc")
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        C.as_float_array("x", [1.0], ndim=2)


def test_check_finite_names_the_first_bad_index() -> None:
    with pytest.raises(ValueError, match=r"x\[1, 0\] = nan"):
        C.check_finite("x", np.array([[0.0, 1.0], [np.nan, np.inf]]))
    with pytest.raises(ValueError, match="x = inf"):
        C.check_finite("x", np.array(np.inf))


def test_check_distribution_names_the_row_and_its_sum() -> None:
    with pytest.raises(ValueError, match=r"p\[1, :\] must sum to 1 .*it sums to 0.5"):
        C.check_distribution("p", np.array([[0.5, 0.5], [0.25, 0.25]]))
    with pytest.raises(ValueError, match=r"p must be non-negative; p\[0, 1\] = -0.5"):
        C.check_distribution("p", np.array([[1.5, -0.5]]))
    with pytest.raises(ValueError, match="non-empty last axis"):
        C.check_distribution("p", np.zeros((2, 0)))


def test_dist_atol_follows_the_dtype() -> None:
    """float64 (and ints) are held to 1e-8; float32 to n · 2^-23; float16 to n · 2^-10."""
    assert C.dist_atol(np.float64, 10) == C.DIST_ATOL
    assert C.dist_atol(np.int64, 10) == C.DIST_ATOL
    assert C.dist_atol(np.float32, 10) == pytest.approx(10 * 2.0**-23)
    assert C.dist_atol(np.float16, 4) == pytest.approx(4 * 2.0**-10)


def test_as_distribution_renormalizes_low_precision_only() -> None:
    x32 = np.full(7, 1 / 7, dtype=np.float32)
    out = C.as_distribution("p", x32)
    assert out.dtype == np.float64 and abs(out.sum() - 1.0) < 1e-15
    x64 = np.array([0.25, 0.75])
    np.testing.assert_array_equal(C.as_distribution("p", x64), x64)  # float64: unchanged
    with pytest.raises(ValueError, match="p"):
        C.as_distribution("p", x32.astype(np.float64))


@pytest.mark.parametrize("bad", [True, np.bool_(True), "0.5", b"1", np.array([0.5]), 1 + 0j, None, float("nan")])
@pytest.mark.parametrize("fn", [C.check_positive, C.check_real, C.check_probability])
def test_scalar_checks_refuse_non_numbers(fn, bad) -> None:
    with pytest.raises(ValueError, match="^lr must"):
        fn("lr", bad)


def test_scalar_checks_accept_numbers_and_return_float() -> None:
    assert C.check_positive("lr", np.float32(0.5)) == 0.5
    assert C.check_real("x", -3) == -3.0 and isinstance(C.check_real("x", -3), float)
    assert C.check_probability("p", 1) == 1.0
    assert C.check_at_least("n", 2, 1.0) == 2.0
    with pytest.raises(ValueError, match="n must be >= 1 and finite"):
        C.check_at_least("n", 0.5, 1.0)


@pytest.mark.parametrize(
    ("kw", "good", "bad"),
    [
        ({}, [1e-300, 1.0, 1e300], [0.0, -1.0, np.inf, np.nan]),
        ({"allow_inf": True}, [1.0, np.inf], [0.0, np.nan, -np.inf]),
        ({"allow_zero": True}, [0.0, 2.0], [-1e-300, np.inf, np.nan]),
        ({"allow_zero": True, "allow_inf": True}, [0.0, np.inf], [-1.0, np.nan]),
    ],
)
def test_check_beta(kw, good, bad) -> None:
    for b in good:
        assert C.check_beta("beta", b, **kw) == b
    for b in bad:
        with pytest.raises(ValueError, match="^beta must be "):
            C.check_beta("beta", b, **kw)
    with pytest.raises(ValueError, match="beta must be > 0"):
        C.check_beta("beta", -1.0)


@pytest.mark.parametrize("bad", [0, -3, 1.0, 2.5, True, "3", None, np.float64(2.0)])
def test_check_count_refuses_non_positive_integers(bad) -> None:
    with pytest.raises(ValueError, match="n must be a positive integer"):
        C.check_count("n", bad)


def test_check_count_minimum_and_numpy_ints() -> None:
    assert C.check_count("n", np.int32(3)) == 3 and isinstance(C.check_count("n", np.int64(3)), int)
    assert C.check_count("restarts", 0, minimum=0) == 0
    with pytest.raises(ValueError, match="restarts must be an integer >= 0"):
        C.check_count("restarts", -1, minimum=0)
    with pytest.raises(ValueError, match=r"m must be an integer >= 2 \(two samples\)"):
        C.check_count("m", 1, minimum=2, meaning="two samples")


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1", [1, 2]])
def test_check_seed_refuses_what_numpy_would_choke_on(bad) -> None:
    with pytest.raises(ValueError, match="seed must be None, a non-negative integer"):
        C.check_seed("seed", bad)


def test_check_seed_and_as_generator() -> None:
    g = np.random.default_rng(0)
    assert C.check_seed("seed", None) is None and C.check_seed("seed", np.int64(7)) == 7 and C.check_seed("seed", g) is g
    a = C.as_generator(None, 3).random(3)
    np.testing.assert_array_equal(a, np.random.default_rng(3).random(3))
    assert C.as_generator(g, None) is g
    with pytest.raises(ValueError, match="either rng or seed"):
        C.as_generator(g, 1)
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator"):
        C.as_generator(np.random.RandomState(0), None)
    with pytest.raises(ValueError, match="seed must be"):
        C.as_generator(None, -1)


def test_check_axis_choice_gamma_and_resolve_gamma() -> None:
    assert C.check_axis("axis", -1, 3) == 2
    for bad in (3, -4, 1.0, True):
        with pytest.raises(ValueError, match="axis must be an integer in"):
            C.check_axis("axis", bad, 3)
    assert C.check_choice("ties", "first", ("uniform", "first")) == "first"
    with pytest.raises(ValueError, match="ties must be one of 'uniform', 'first'"):
        C.check_choice("ties", ["x"], ("uniform", "first"))
    assert C.check_gamma(1, allow_one=True) == 1.0
    for bad in (1.0, -0.1, np.nan, True, "0.5"):
        with pytest.raises(ValueError, match="gamma"):
            C.check_gamma(bad)
    assert C.resolve_gamma(None, None) == C.DEFAULT_GAMMA == 0.9
    assert C.resolve_gamma(None, 5) is None and C.resolve_gamma(0.5, 5) == 0.5
