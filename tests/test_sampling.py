"""rlref.algorithms.sampling: categorical draws by inversion (Devroye 1986, §III.2)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.sampling import inverse_cdf_sample


def test_inverse_cdf_sample_closed_form_boundaries() -> None:
    """p = (.2, .3, .5): u ≤ .2 -> 0, .2 < u ≤ .5 -> 1, u > .5 -> 2 (the first j with u ≤ F_j)."""
    cdf = np.cumsum([0.2, 0.3, 0.5])
    u = np.array([0.0, 0.2, 0.2000001, 0.5, 0.5000001, 0.999999])
    got = inverse_cdf_sample(np.broadcast_to(cdf, (u.size, 3)), u)
    assert got.tolist() == [0, 0, 1, 1, 2, 2]


def test_inverse_cdf_sample_clamps_a_rounded_last_entry_and_broadcasts_leading_axes() -> None:
    """F_{K−1} = 1 − 1e-9 by rounding and u above it: still the last index, never K. Leading shape (2, 3) kept."""
    cdf = np.array([0.5, 1.0 - 1e-9])
    assert int(inverse_cdf_sample(cdf[None], np.array([1.0 - 1e-10]))[0]) == 1
    cdfs = np.broadcast_to(np.array([0.1, 0.4, 1.0]), (2, 3, 3))
    u = np.array([[0.05, 0.3, 0.9], [0.1, 0.4, 0.41]])
    assert inverse_cdf_sample(cdfs, u).tolist() == [[0, 1, 2], [0, 1, 2]]


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_inverse_cdf_sample_has_the_law_p(k: int, seed: int) -> None:
    """Frequencies of 40 000 draws are within 5 standard errors of p (binomial bound per category)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k))
    n = 40_000
    draws = inverse_cdf_sample(np.broadcast_to(np.cumsum(p), (n, k)), rng.random(n))
    freq = np.bincount(draws, minlength=k) / n
    assert draws.min() >= 0 and draws.max() < k
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12)


def test_random_argmax_is_uniform_over_the_near_maximizers() -> None:
    """score = (1, 3, 3 − 1e-13, 2) with tol = 1e-12: arms 1 and 2 each with probability ½, never 0 or 3;
    with tol = 0 only arm 1. Rows are independent (leading axis)."""
    from rlref.algorithms.sampling import random_argmax

    rng = np.random.default_rng(0)
    n = 40_000
    score = np.broadcast_to(np.array([1.0, 3.0, 3.0 - 1e-13, 2.0]), (n, 4))
    draws = random_argmax(score, rng, tol=1e-12)
    freq = np.bincount(draws, minlength=4) / n
    assert freq[0] == 0 and freq[3] == 0
    assert abs(freq[1] - 0.5) < 5 * np.sqrt(0.25 / n)
    assert np.all(random_argmax(score, rng) == 1)
    assert int(random_argmax(np.array([0.0, 5.0]), rng)) == 1


def test_rollout_episodes_has_the_trajectory_law() -> None:
    """S = A = H = 2, stage-dependent P: the frequency of each (s0, a0, s1, a1, s2) is within 5 standard errors of
    μ0(s0) π0(a0|s0) P0(s1|s0,a0) π1(a1|s1) P1(s2|s1,a1), computed by enumeration."""
    import itertools

    from rlref.algorithms.sampling import rollout_episodes

    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.ones(2), size=(2, 2, 2))
    pi = rng.dirichlet(np.ones(2), size=(2, 2))
    mu0 = np.array([0.3, 0.7])
    n = 60_000
    states, actions, final = rollout_episodes(np.cumsum(P, axis=-1), pi, mu0, n, np.random.default_rng(0))
    assert states.shape == actions.shape == (n, 2) and final.shape == (n,)
    for s0, a0, s1, a1, s2 in itertools.product(range(2), repeat=5):
        p = mu0[s0] * pi[0, s0, a0] * P[0, s0, a0, s1] * pi[1, s1, a1] * P[1, s1, a1, s2]
        hit = (states[:, 0] == s0) & (actions[:, 0] == a0) & (states[:, 1] == s1) & (actions[:, 1] == a1) & (final == s2)
        assert abs(hit.mean() - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12


def test_rollout_episodes_uses_one_uniform_per_draw_in_stage_order() -> None:
    """The stream is rng.random((2H + 1, n)): row 0 the start states, rows 2h + 1 and 2h + 2 stage h's actions and
    next states (checked against inverse_cdf_sample on those rows)."""
    from rlref.algorithms.sampling import rollout_episodes

    rng = np.random.default_rng(5)
    H, S, A, n = 3, 3, 2, 7
    cP = np.cumsum(rng.dirichlet(np.ones(S), size=(H, S, A)), axis=-1)
    pi = rng.dirichlet(np.ones(A), size=(H, S))
    mu0 = np.array([0.2, 0.5, 0.3])
    states, actions, final = rollout_episodes(cP, pi, mu0, n, np.random.default_rng(11))
    u = np.random.default_rng(11).random((2 * H + 1, n))
    s = inverse_cdf_sample(np.broadcast_to(np.cumsum(mu0), (n, S)), u[0])
    for h in range(H):
        assert np.array_equal(states[:, h], s)
        a = inverse_cdf_sample(np.cumsum(pi[h, s], axis=-1), u[2 * h + 1])
        assert np.array_equal(actions[:, h], a)
        s = inverse_cdf_sample(cP[h, s, a], u[2 * h + 2])
    assert np.array_equal(final, s)
