"""Fuzzers for the numpy core (issue #11, "Done when"): one per core function.

The contract each fuzzer checks, on hostile input from ``rlref.testing.hostile_arrays`` /
``hostile_scalars`` (NaN/inf, negatives, subnormals, 1e300, float32, complex, ints, bools,
wrong shapes, empty arrays, strings, None): the call either raises ValueError/RuntimeError
whose message names the offending argument, or returns a finite (where finiteness is promised),
correctly shaped result that agrees with an independent brute-force computation written here
(mpmath at 40 digits for the divergences and soft values, enumeration of deterministic policies
and a linear solve for the planners). Any other exception, or a RuntimeWarning raised inside
rlref (an error under this repo's pytest config), fails the test.

Sized to stay fast: 15-30 examples per fuzzer, S <= 3 and A <= 3.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from rlref import TabularMDP, solve
from rlref import _checks as C
from rlref import divergences as D
from rlref import policy as POL
from rlref.testing import distributions, hostile_arrays, hostile_scalars, policies, tabular_mdps

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ_SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
mpmath.mp.dps = 40


def contract(fn: Callable[[], Any], *names: str) -> tuple[bool, Any]:
    """(True, result) if ``fn`` returns; (False, None) if it raises ValueError/RuntimeError
    naming one of ``names`` as a word; any other exception propagates (the test fails)."""
    try:
        out = fn()
    except (ValueError, RuntimeError) as exc:
        msg = str(exc)
        event("refused")
        assert any(re.search(rf"(?<![A-Za-z_]){re.escape(n)}(?![A-Za-z_])", msg) for n in names), f"error does not name {names}: {msg!r}"
        return False, None
    event("accepted")
    return True, out


def mix(valid: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """Valid about two times in three, hostile otherwise, so a fuzzer with several arguments
    still reaches the accepting branch (and its brute-force check) often."""
    return st.integers(0, 2).flatmap(lambda k: hostile if k == 2 else valid)


def f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _rows(n_lo: int, n_hi: int, batch: tuple[int, ...] = ()) -> st.SearchStrategy[np.ndarray]:
    return distributions((n_lo, n_hi), allow_zeros=True, batch_shape=batch)


# ----------------------------------------------------------------------------- _checks helpers
SCALARS = hostile_scalars(valid=st.floats(-1e3, 1e3, allow_nan=False) | st.integers(-5, 5))


def _is_real_number(x: Any) -> bool:
    return not isinstance(x, (bool, np.bool_, str, bytes, complex, np.complexfloating)) and x is not None and np.ndim(x) == 0


@FUZZ
@given(x=SCALARS, which=st.sampled_from(["positive", "real", "probability", "at_least", "gamma", "beta", "beta_inf", "beta_zero"]))
def test_fuzz_scalar_checks(x: Any, which: str) -> None:
    """Each scalar check returns a float with its documented property, or names the argument."""
    fns = {
        "positive": (lambda: C.check_positive("lr", x), lambda v: 0 < v < math.inf),
        "real": (lambda: C.check_real("lr", x), math.isfinite),
        "probability": (lambda: C.check_probability("lr", x), lambda v: 0 <= v <= 1),
        "at_least": (lambda: C.check_at_least("lr", x, 1.0), lambda v: 1 <= v < math.inf),
        "gamma": (lambda: C.check_gamma(x), lambda v: 0 <= v < 1),
        "beta": (lambda: C.check_beta("lr", x), lambda v: 0 < v < math.inf),
        "beta_inf": (lambda: C.check_beta("lr", x, allow_inf=True), lambda v: 0 < v <= math.inf),
        "beta_zero": (lambda: C.check_beta("lr", x, allow_zero=True), lambda v: 0 <= v < math.inf),
    }
    fn, prop = fns[which]
    ok, v = contract(fn, "gamma" if which == "gamma" else "lr")
    if ok:
        assert _is_real_number(x), f"{x!r} accepted by {which}"
        assert isinstance(v, float) and prop(v) and v == float(x)
    elif _is_real_number(x) and not math.isnan(float(x)):
        assert not prop(float(x)), f"{x!r} refused by {which} although it satisfies the property"


@FUZZ
@given(x=SCALARS | st.integers(-3, 10**20), minimum=st.integers(0, 3))
def test_fuzz_check_count_and_check_seed(x: Any, minimum: int) -> None:
    ok, v = contract(lambda: C.check_count("n", x, minimum=minimum), "n")
    is_int = isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))
    assert ok == (is_int and x >= minimum)
    if ok:
        assert type(v) is int and v == x
    ok, v = contract(lambda: C.check_seed("seed", x), "seed")
    assert ok == (x is None or (is_int and x >= 0))
    if ok and x is not None:
        np.random.default_rng(v)  # numpy accepts every seed we accept


# ----------------------------------------------------------------------------- TabularMDP
@st.composite
def mdp_kwargs(draw: Any) -> tuple[str, dict[str, Any]]:
    S, A = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    P = rng.dirichlet(np.ones(S), size=(S, A))
    P[rng.random(P.shape) < 0.3] = 0.0
    P[..., 0] += 1e-3
    P /= P.sum(axis=-1, keepdims=True)
    kw: dict[str, Any] = {"P": P, "R": rng.uniform(-1, 1, (S, A)), "gamma": 0.9, "mu0": rng.dirichlet(np.ones(S))}
    which = draw(st.sampled_from(["P", "R", "mu0", "gamma"]))
    if which == "gamma":
        kw["gamma"] = draw(hostile_scalars(valid=st.floats(0, 0.999)))
    else:
        kw[which] = draw(hostile_arrays(st.just(kw[which])))
    return which, kw


@FUZZ
@given(case=mdp_kwargs())
def test_fuzz_tabular_mdp(case: tuple[str, dict[str, Any]]) -> None:
    """TabularMDP either names the bad argument or stores exactly what it was given (in float64,
    rows renormalized only for float32/16 input), with r = R or r = Σ_s' P R."""
    which, kw = case
    ok, m = contract(lambda: TabularMDP(**kw), which)
    if not ok:
        return
    S, A = m.num_states, m.num_actions
    assert m.P.shape == (S, A, S) and m.P.dtype == np.float64 and np.isfinite(m.P).all()
    np.testing.assert_allclose(m.P.sum(axis=-1), 1.0, atol=1e-8)
    P_in = f64(kw["P"])
    np.testing.assert_allclose(m.P, P_in, rtol=2e-3 if f64(kw["P"]).dtype != getattr(kw["P"], "dtype", np.float64) else 1e-6, atol=1e-300)
    R_in = f64(kw["R"])
    want_r = R_in if R_in.ndim == 2 else np.einsum("sat,sat->sa", m.P, R_in)
    np.testing.assert_allclose(m.r, want_r, rtol=1e-12, atol=1e-300)
    assert np.isfinite(m.r).all()
    mu_in = np.full(S, 1 / S) if kw["mu0"] is None else f64(kw["mu0"])
    np.testing.assert_allclose(m.mu0, mu_in / mu_in.sum(), rtol=2e-3, atol=1e-300)
    assert 0.0 <= m.gamma < 1.0 and m.gamma == float(kw["gamma"])


# ----------------------------------------------------------------------------- policy helpers
Q2 = st.integers(1, 3).flatmap(lambda A: st.lists(st.floats(-3, 3), min_size=2 * A, max_size=2 * A).map(lambda v: np.reshape(v, (2, -1))))


@FUZZ
@given(q=mix(Q2, hostile_arrays(Q2)),
       tie_tol=mix(st.sampled_from([0.0, 1e-10, 0.5]), hostile_scalars()), ties=st.sampled_from(["uniform", "first"]))
def test_fuzz_greedy_policy(q: Any, tie_tol: Any, ties: str) -> None:
    """π is uniform (or first-index) over {a : q(a) ≥ max q − tie_tol}, checked by a Python loop."""
    ok, pi = contract(lambda: POL.greedy_policy(q, tie_tol=tie_tol, ties=ties), "q", "tie_tol")
    if not ok:
        return
    qa = f64(q)
    assert pi.shape == qa.shape and np.isfinite(pi).all()
    for idx in np.ndindex(qa.shape[:-1]):
        row = [float(v) for v in qa[idx]]
        best = [a for a, v in enumerate(row) if v >= max(row) - float(tie_tol)]
        if ties == "uniform":
            want = [(1 / len(best) if a in best else 0.0) for a in range(len(row))]
        else:
            want = [float(a == row.index(max(row))) for a in range(len(row))]
        np.testing.assert_allclose(pi[idx], want, atol=1e-15)


@FUZZ
@given(q=mix(Q13 := st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3).map(lambda v: np.array([v])), hostile_arrays(Q13)),
       tau=mix(st.floats(1e-3, 1e3), hostile_scalars()), ref=st.none() | mix(_rows(3, 3, (1,)), hostile_arrays(_rows(3, 3, (1,)))))
def test_fuzz_softmax_policy(q: Any, tau: Any, ref: Any) -> None:
    """π ∝ π_ref exp(q/τ): compared with mpmath (exact exponentials at 40 digits)."""
    ok, pi = contract(lambda: POL.softmax_policy(q, tau, pi_ref=ref), "q", "temperature", "pi_ref")
    if not ok:
        return
    qa, t = f64(q), float(tau)
    r = np.full(qa.shape, 1 / qa.shape[-1]) if ref is None else np.broadcast_to(f64(ref), qa.shape)
    assert pi.shape == qa.shape and np.isfinite(pi).all()
    for idx in np.ndindex(qa.shape[:-1]):
        w = [mpmath.mpf(float(rr)) * mpmath.exp(mpmath.mpf(float(x)) / t) for x, rr in zip(qa[idx], r[idx], strict=True)]
        z = mpmath.fsum(w)
        np.testing.assert_allclose(pi[idx], [float(x / z) for x in w], rtol=1e-9, atol=1e-12)


@FUZZ
@given(actions=mix(st.just(np.array([0, 1, 2])), hostile_arrays(st.just(np.array([0, 1, 2])))), A=mix(st.integers(1, 4), hostile_scalars()))
def test_fuzz_deterministic_policy(actions: Any, A: Any) -> None:
    ok, pi = contract(lambda: POL.deterministic_policy(actions, A), "actions", "num_actions")
    if ok:
        acts = np.asarray(actions)
        assert pi.shape == acts.shape + (int(A),)
        for idx in np.ndindex(acts.shape):
            assert pi[idx][int(acts[idx])] == 1.0 and pi[idx].sum() == 1.0


MDP23 = TabularMDP(np.full((2, 3, 2), 0.5), np.arange(6.0).reshape(2, 3), gamma=0.5)


@FUZZ
@given(pi=hostile_arrays(_rows(3, 3, (2,))))
def test_fuzz_validate_policy(pi: Any) -> None:
    ok, out = contract(lambda: POL.validate_policy(MDP23, pi), "pi")
    if ok:
        assert out.shape == (2, 3) and out.dtype == np.float64
        np.testing.assert_allclose(out.sum(axis=-1), 1.0, atol=1e-8)
        np.testing.assert_allclose(out, f64(pi), rtol=1e-3, atol=1e-300)


# ----------------------------------------------------------------------------- divergences
def _mp_terms(p: np.ndarray, q: np.ndarray, name: str, alpha: float = 2.0) -> float:
    """The divergence of two float64 vectors, evaluated in mpmath from its definition."""
    P = [mpmath.mpf(float(x)) for x in p]
    Q = [mpmath.mpf(float(x)) for x in q]
    if name == "kl":
        return float(mpmath.fsum(a * mpmath.log(a / b) if a > 0 and b > 0 else (mpmath.inf if a > 0 else 0) for a, b in zip(P, Q, strict=True)))
    if name == "reverse_kl":
        return _mp_terms(q, p, "kl")
    if name == "chi2":
        return float(mpmath.fsum((a - b) ** 2 / b if b > 0 else (mpmath.inf if a > 0 else 0) for a, b in zip(P, Q, strict=True)))
    if name == "tv":
        return float(mpmath.fsum(abs(a - b) for a, b in zip(P, Q, strict=True)) / 2)
    if name == "hellinger2":
        return float(mpmath.fsum((mpmath.sqrt(a) - mpmath.sqrt(b)) ** 2 for a, b in zip(P, Q, strict=True)) / 2)
    if name == "js":
        M = [(a + b) / 2 for a, b in zip(P, Q, strict=True)]
        tp = mpmath.fsum(a * mpmath.log(a / m) for a, m in zip(P, M, strict=True) if a > 0)
        tq = mpmath.fsum(b * mpmath.log(b / m) for b, m in zip(Q, M, strict=True) if b > 0)
        return float((tp + tq) / 2)
    if name == "renyi":
        pairs = [(a, b) for a, b in zip(P, Q, strict=True) if a > 0]
        s = mpmath.fsum(a**alpha * b ** (1 - alpha) if b > 0 else (mpmath.inf if alpha > 1 else 0) for a, b in pairs)
        return float(mpmath.log(s) / (alpha - 1)) if s > 0 else math.inf
    if name == "entropy":
        return float(-mpmath.fsum(a * mpmath.log(a) for a in P if a > 0))
    raise AssertionError(name)


DIVS = {
    "kl": D.kl, "reverse_kl": D.reverse_kl, "chi2": D.chi2, "tv": D.tv, "hellinger2": D.hellinger2, "js": D.jensen_shannon,
    "renyi": lambda p, q: D.renyi(p, q, 0.5), "renyi3": lambda p, q: D.renyi(p, q, 3.0), "entropy": lambda p, q: D.entropy(p),
}


@FUZZ
@given(name=st.sampled_from(sorted(DIVS)), swap=st.booleans(),
       pq=st.integers(1, 4).flatmap(lambda n: st.tuples(mix(_rows(n, n), hostile_arrays(_rows(n, n))), _rows(n, n))))
def test_fuzz_divergences(name: str, pq: tuple[Any, np.ndarray], swap: bool) -> None:
    """Each divergence either names p or q, or equals its definition evaluated in mpmath
    (relative 1e-9, absolute 3e-8 for the 1e-8 slack allowed in the row sums)."""
    p, q = pq
    if swap and name != "entropy":
        p, q = q, p
    ok, d = contract(lambda: DIVS[name](p, q), "p", "q", "axis")
    if not ok:
        return
    pa, qa = f64(p), f64(q)
    if getattr(p, "dtype", np.float64) in (np.float32, np.float16):
        pa = pa / pa.sum()
    if getattr(q, "dtype", np.float64) in (np.float32, np.float16):
        qa = qa / qa.sum()
    base = "renyi" if name.startswith("renyi") else name
    pa, qa = np.broadcast_arrays(pa, qa) if name != "entropy" else (pa, pa)
    rows = zip(pa.reshape(-1, pa.shape[-1]), qa.reshape(-1, qa.shape[-1]), strict=True)
    want = np.array([_mp_terms(a, b, base, alpha=0.5 if name == "renyi" else 3.0) for a, b in rows])
    d = np.asarray(d)
    assert d.shape == pa.shape[:-1] and (d >= 0).all()
    assert (np.isinf(d) == np.isinf(want).reshape(d.shape)).all()
    fin = np.isfinite(want).reshape(d.shape)
    np.testing.assert_allclose(d[fin], want.reshape(d.shape)[fin], rtol=1e-9, atol=3e-8)


@FUZZ
@given(p=_rows(3, 3, (2,)), q=_rows(3, 3, (2,)), axis=mix(st.sampled_from([-1, 0, 1, -2, None]), hostile_scalars() | st.sampled_from([2, -3])))
def test_fuzz_divergence_axis(p: np.ndarray, q: np.ndarray, axis: Any) -> None:
    """Row-wise use on pi[s, a]: axis picks the support axis, or the error names axis / p / q."""
    ok, d = contract(lambda: D.kl(p, q, axis=axis), "axis", "p", "q")
    if not ok:
        return
    if axis is None:
        assert d == pytest.approx(_mp_terms(p.ravel(), q.ravel(), "kl"), rel=1e-9, abs=3e-8)
    else:
        pm, qm = np.moveaxis(p, axis, -1), np.moveaxis(q, axis, -1)
        np.testing.assert_allclose(d, [_mp_terms(a, b, "kl") for a, b in zip(pm, qm, strict=True)], rtol=1e-9, atol=3e-8)


# ----------------------------------------------------------------------------- solve: tilt and soft value
QS = st.lists(st.floats(-50, 50), min_size=6, max_size=6).map(lambda v: np.reshape(v, (2, 3)))


@FUZZ
@given(q=mix(QS, hostile_arrays(QS)), ref=st.none() | mix(_rows(3, 3, (2,)), hostile_arrays(_rows(3, 3, (2,)))),
       beta=mix(st.floats(1e-2, 1e2) | st.just(math.inf), hostile_scalars()))
def test_fuzz_soft_greedy_and_soft_value(q: Any, ref: Any, beta: Any) -> None:
    """soft_greedy = π_ref e^{q/β}/Z and soft_value = β log Z (β = ∞: π_ref and E_ref q), in mpmath."""
    ok1, pi = contract(lambda: solve.soft_greedy(q, ref, beta), "q", "pi_ref", "beta")
    ok2, v = contract(lambda: solve.soft_value(q, ref, beta), "q", "pi_ref", "beta")
    assert ok1 == ok2
    if not ok1:
        return
    qa, b = f64(q), float(beta)
    r = np.full(qa.shape, 1 / qa.shape[-1]) if ref is None else np.broadcast_to(f64(ref), qa.shape)
    r = np.where(np.isneginf(qa), 0.0, r)  # q = -inf is a masked action: its reference mass is dropped (renormalized below)
    assert pi.shape == qa.shape and v.shape == qa.shape[:-1] and np.isfinite(pi).all() and np.isfinite(v).all()
    for idx in np.ndindex(qa.shape[:-1]):
        if math.isinf(b):
            np.testing.assert_allclose(pi[idx], r[idx] / r[idx].sum(), rtol=1e-12)
            keep = r[idx] > 0
            assert v[idx] == pytest.approx(float(np.dot(r[idx][keep], qa[idx][keep]) / r[idx].sum()), rel=1e-9, abs=1e-9)
            continue
        w = [mpmath.mpf(float(rr)) * mpmath.exp(mpmath.mpf(float(x)) / b) for x, rr in zip(qa[idx], r[idx], strict=True)]
        z = mpmath.fsum(w)
        z_ref = mpmath.fsum(mpmath.mpf(float(rr)) for rr in r[idx])  # π_ref sums to 1 only within 1e-8
        np.testing.assert_allclose(pi[idx], [float(x / z) for x in w], rtol=1e-8, atol=1e-12)
        # β log(Z/Z_ref) as β log1p(Σ π_ref expm1(q/β) / Z_ref): no cancellation at huge β (q/β = 1e-300 stays exact)
        dz = mpmath.fsum(mpmath.mpf(float(rr)) * mpmath.expm1(mpmath.mpf(float(x)) / b) for x, rr in zip(qa[idx], r[idx], strict=True))
        ratio = dz / z_ref  # log1p loses everything once Σ π_ref e^{q/β} << 1 (e.g. q <= -3 at β = 0.01): then log(z / z_ref)
        v_ref = float(b * (mpmath.log1p(ratio) if ratio > -0.5 else mpmath.log(z / z_ref)))
        assert v[idx] == pytest.approx(v_ref, rel=1e-9, abs=1e-9 * max(1.0, abs(float(qa[idx].max()))))


# ----------------------------------------------------------------------------- solve: planners vs brute force
SMALL = tabular_mdps(max_states=3, max_actions=2, discounted=True, gamma=(0.0, 0.9))


def _dense(m: TabularMDP) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(m.dense_P(), dtype=np.float64), np.asarray(m.r, dtype=np.float64)


def _evaluate(m: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """V^π = (I − γ P_π)^{-1} r_π by a dense linear solve, written here."""
    P, r = _dense(m)
    P_pi = np.einsum("sa,sat->st", pi, P)
    return np.linalg.solve(np.eye(m.num_states) - m.gamma * P_pi, (pi * r).sum(axis=1))


def _brute_optimum(m: TabularMDP) -> np.ndarray:
    """V* = max over all A^S deterministic policies of V^π (componentwise; Puterman Thm 6.2.10)."""
    S, A = m.num_states, m.num_actions
    return np.max([_evaluate(m, np.eye(A)[list(acts)]) for acts in itertools.product(range(A), repeat=S)], axis=0)


@FUZZ_SLOW
@given(m=SMALL, eps=mix(st.sampled_from([1e-8, 1e-3, 1.0]), hostile_scalars()), max_iter=mix(st.integers(1, 50), hostile_scalars()),
       tie_tol=mix(st.just(1e-10), hostile_scalars()))
def test_fuzz_value_iteration(m: TabularMDP, eps: Any, max_iter: Any, tie_tol: Any) -> None:
    """VI names a bad argument, or its certificates hold against brute force:
    ‖values − V*‖ ≤ value_error_bound and ‖V* − V^π‖ ≤ suboptimality_bound."""
    ok, res = contract(lambda: solve.value_iteration(m, epsilon=eps, max_iter=max_iter, tie_tol=tie_tol), "epsilon", "max_iter", "tie_tol")
    if not ok:
        return
    v_star = _brute_optimum(m)
    assert res.values.shape == (m.num_states,) and np.isfinite(res.values).all()
    np.testing.assert_allclose(res.policy.sum(axis=1), 1.0, atol=1e-12)
    assert np.max(np.abs(res.values - v_star)) <= res.value_error_bound + 1e-9
    assert np.max(v_star - _evaluate(m, res.policy)) <= res.suboptimality_bound + 1e-9


@FUZZ_SLOW
@given(data=st.data(), max_iter=mix(st.integers(1, 20), hostile_scalars()))
def test_fuzz_policy_iteration(data: st.DataObject, max_iter: Any) -> None:
    m = data.draw(SMALL)
    first = np.eye(m.num_actions)[np.zeros(m.num_states, dtype=int)]
    pi0 = data.draw(st.none() | mix(st.just(first), hostile_arrays(st.just(first))))
    ok, res = contract(lambda: solve.policy_iteration(m, pi0=pi0, max_iter=max_iter), "pi0", "max_iter", "pi")
    if not ok:
        return
    v_star = _brute_optimum(m)
    assert np.max(v_star - _evaluate(m, res.policy)) <= res.suboptimality_bound + 1e-9
    if res.converged:
        np.testing.assert_allclose(res.values, v_star, atol=1e-9)


@FUZZ
@given(data=st.data())
def test_fuzz_policy_evaluation_and_occupancy(data: st.DataObject) -> None:
    """V^π by a dense solve; d = (1 − γ) d_S π with d_S = (1 − γ) μ0ᵀ (I − γ P_π)^{-1}."""
    m = data.draw(SMALL)
    base = np.full((m.num_states, m.num_actions), 1.0 / m.num_actions)
    pi = data.draw(mix(policies(m), hostile_arrays(st.just(base))))
    ok, res = contract(lambda: solve.policy_evaluation(m, pi), "pi")
    ok2, d = contract(lambda: solve.occupancy_measure(m, pi), "pi")
    assert ok == ok2
    if not ok:
        return
    pia = f64(pi) / f64(pi).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(res.values, _evaluate(m, pia), rtol=1e-9, atol=1e-9)
    P, _ = _dense(m)
    P_pi = np.einsum("sa,sat->st", pia, P)
    d_s = (1 - m.gamma) * np.linalg.solve((np.eye(m.num_states) - m.gamma * P_pi).T, m.mu0)
    np.testing.assert_allclose(d, d_s[:, None] * pia, rtol=1e-9, atol=1e-12)
    assert d.sum() == pytest.approx(1.0, abs=1e-9)


@FUZZ_SLOW
@given(data=st.data(), beta=mix(st.floats(0.05, 5.0) | st.just(math.inf), hostile_scalars()), max_iter=mix(st.integers(1, 10**5), hostile_scalars()))
def test_fuzz_soft_value_iteration(data: st.DataObject, beta: Any, max_iter: Any) -> None:
    """Soft VI names a bad argument, or its value is within its certificate of V*_β, computed
    here by 3000 iterations of the soft backup V ← β log Σ_a π_ref e^{(r + γ P V)/β} (scipy)."""
    m = data.draw(SMALL)
    ref = data.draw(st.none() | mix(_rows(m.num_actions, m.num_actions), hostile_arrays(_rows(m.num_actions, m.num_actions))))
    ok, res = contract(lambda: solve.soft_value_iteration(m, beta, pi_ref=ref, max_iter=max_iter), "beta", "pi_ref", "max_iter")
    if not ok:
        return
    b = float(beta)
    P, r = _dense(m)
    lref = np.log(np.broadcast_to(np.full(m.num_actions, 1 / m.num_actions) if ref is None else f64(ref), r.shape))
    v = np.zeros(m.num_states)
    for _ in range(3000):
        if math.isinf(b):  # β = ∞: the value of π_ref itself
            v = (np.exp(lref) * (r + m.gamma * P @ v)).sum(axis=1)
        else:  # shifted by the row max, so a subnormal β (5e-324) does not overflow to inf - inf
            q = r + m.gamma * P @ v
            top = q.max(axis=1)
            with np.errstate(over="ignore"):
                v = top + b * logsumexp((q - top[:, None]) / b + lref, axis=1)
    assert np.isfinite(res.values).all()
    assert np.max(np.abs(res.values - v)) <= res.value_error_bound + 1e-8


@FUZZ_SLOW
@given(m=SMALL, backend=st.sampled_from(["highs", "HiGHS", "", "simplex", None]))
def test_fuzz_lp_value(m: TabularMDP, backend: str) -> None:
    """The value LP equals the brute-force optimum, or the error names the backend."""
    ok, res = contract(lambda: solve.lp_value(m, backend=backend), "backend")
    if ok:
        np.testing.assert_allclose(res.values, _brute_optimum(m), atol=1e-6 * max(1.0, float(np.abs(m.r).max()) / (1 - m.gamma)))


def test_soft_value_iteration_at_huge_beta_is_the_reference_value():
    """The fuzzer's falsifying case (β = 1e300, γ = 0): β log Σ π_ref e^{r/β} = E_ref[r] + O(1/β), a closed form;
    a reference computed with logsumexp after a row-max shift rounds this to max r (the bug was in the test)."""
    r = np.array([[0.21327155, 0.45899312]])
    m = TabularMDP(np.ones((1, 2, 1)), r, gamma=0.0)
    res = solve.soft_value_iteration(m, 1e300, max_iter=1)
    assert res.values[0] == pytest.approx(r.mean(), abs=1e-12)
