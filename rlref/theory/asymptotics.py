"""Asymptotics of language-model alignment in the memoryless model, exactly.

Model (Yang, Salamatian, Sun, Suresh, Beirami 2024, "Asymptotics of Language Model Alignment",
§4): a sequence y = (y_1, …, y_n) has i.i.d. tokens y_t ~ p over a finite alphabet and an
additive ("linear") reward r(y) = S_n = Σ_t w(y_t). Write

* Λ(λ) = log E_p[exp(λ w)]  (the log-moment generating function of one token's reward),
* p_λ(a) = p(a) exp(λ w(a) − Λ(λ))  (the exponentially tilted token law), Λ'(λ) = E_{p_λ}[w],
* I(x) = sup_λ (λ x − Λ(λ))  (the Cramér rate function, the Legendre transform of Λ).

Facts computed here:

* Cramér: −(1/n) log P(S_n ≥ n x) → I(x) for x > E_p[w] (Cramér 1938; Dembo & Zeitouni,
  Thm 2.2.3); :func:`sum_distribution` gives the exact law of S_n so the exact tail is available.
* KL-constrained RL at budget n·Δ: the optimum over sequence laws is the product of the tilts
  p_λ with λ ≥ 0 solving KL(p_λ ‖ p) = λΛ'(λ) − Λ(λ) = Δ; its expected reward is exactly
  n·Λ'(λ) = n·x*(Δ), where x*(Δ) ≥ E_p[w] solves I(x) = Δ (Yang et al. 2024, Thm 2 and §4;
  the product form follows from the tilt of Korbak et al. 2022, eq. (4), derived here).
* Best-of-N with log N = n·Δ: (1/n)·E[max of N i.i.d. copies of S_n] → x*(Δ) (Yang et al.
  2024, Thm 3: best-of-N and KL-constrained RL are asymptotically equivalent).

All exact computations work on the finite support of S_n (at most C(n+m−1, m−1) values for an
alphabet of size m) in log space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import gammaln, logsumexp

from rlref._checks import as_float_array, check_at_least, check_count, check_distribution, check_finite, check_real
from rlref.solve import soft_greedy_unchecked, soft_value_unchecked
from rlref.theory.kl_regularized import best_of_n_level_log_probs

__all__ = [
    "log_mgf",
    "log_mgf_derivative",
    "tilted_distribution",
    "rate_function",
    "tilt_for_budget",
    "TiltSolution",
    "kl_rl_per_token_reward",
    "SumDistribution",
    "sum_distribution",
    "log_tail_probability",
    "best_of_n_sum_reward",
    "AlignmentComparison",
    "compare_alignment",
]

#: Largest number of count vectors that :func:`sum_distribution` enumerates.
MAX_COMPOSITIONS = 3_000_000


# ----------------------------------------------------------------------------- validation
def _check_token_model(p: object, w: object) -> tuple[np.ndarray, np.ndarray]:
    pp = as_float_array("p", p, ndim=1)
    ww = as_float_array("w", w, ndim=1)
    check_distribution("p", pp)
    check_finite("w", ww)
    if pp.shape != ww.shape:
        raise ValueError(f"p and w must have the same shape (one weight per token), got {pp.shape} and {ww.shape}")
    keep = pp > 0
    return pp[keep], ww[keep]


def _check_length(n: int) -> int:
    return check_count("n", n, meaning="the sequence length")


def _check_delta(delta: float) -> float:
    return check_at_least("delta", delta, 0.0, "a per-token KL budget in nats")


# ----------------------------------------------------------------------------- Λ, tilt, I
def _log_mgf(p: np.ndarray, w: np.ndarray, lam: float) -> float:
    """Λ(λ) = |λ| · soft_value(sign(λ) w, p, 1/|λ|): the library's one log-partition (exact for
    tiny |λ| through its log1p branch, and for huge |λ| through its max shift)."""
    if lam == 0.0:
        return 0.0
    sign = 1.0 if lam > 0 else -1.0
    return abs(lam) * float(soft_value_unchecked(sign * w, p / p.sum(), 1.0 / abs(lam)))


def _tilt(p: np.ndarray, w: np.ndarray, lam: float) -> np.ndarray:
    """p_λ ∝ p·e^{λw} = soft_greedy(sign(λ) w, p, 1/|λ|) (the library's one tilt; λ = 0 gives p)."""
    if lam == 0.0:
        return np.array(p, dtype=np.float64)
    sign = 1.0 if lam > 0 else -1.0
    return soft_greedy_unchecked(sign * w, p, 1.0 / abs(lam))


def log_mgf(p: np.ndarray, w: np.ndarray, lam: float) -> float:
    """Λ(λ) = log Σ_a p(a) exp(λ w(a)), the cumulant generating function of one token's reward.

    Shapes: p[m], w[m], scalar λ -> float. Computed with logsumexp.
    References: Yang et al. (2024), "Asymptotics of Language Model Alignment", §4 (eq. for Λ).
    """
    pp, ww = _check_token_model(p, w)
    return _log_mgf(pp, ww, float(lam))


def log_mgf_derivative(p: np.ndarray, w: np.ndarray, lam: float) -> float:
    """Λ'(λ) = E_{p_λ}[w], the mean reward under the tilted token law p_λ ∝ p·exp(λ w).

    Shapes: p[m], w[m], scalar λ -> float.
    References: Yang et al. (2024), "Asymptotics of Language Model Alignment", §4; the identity
    Λ'(λ) = E_{p_λ}[w] (differentiate log Σ_a p(a)e^{λw(a)}) derived here.
    """
    pp, ww = _check_token_model(p, w)
    return float(_tilt(pp, ww, float(lam)) @ ww)


def tilted_distribution(p: np.ndarray, w: np.ndarray, lam: float) -> np.ndarray:
    """p_λ(a) = p(a) exp(λ w(a) − Λ(λ)) over the full alphabet (0 where p(a) = 0).

    Shapes: p[m], w[m] -> [m]. References: Yang et al. (2024), §4; Dembo & Zeitouni (1998), §2.2.
    """
    _check_token_model(p, w)
    pp = as_float_array("p", p, ndim=1)
    return _tilt(pp / pp.sum(), as_float_array("w", w, ndim=1), check_real("lam", lam))


def _solve_lambda_for_mean(p: np.ndarray, w: np.ndarray, x: float) -> float:
    """λ with Λ'(λ) = x for E_p w < x < max w or min w < x < E_p w (Λ' is increasing)."""
    mean = float(p @ w)

    def g(lam: float) -> float:
        return float(_tilt(p, w, lam) @ w) - x

    span = float(w.max() - w.min())
    step = 1.0 / span
    if x > mean:
        lo, hi = 0.0, step
        while g(hi) < 0:
            lo, hi = hi, 2 * hi
            if hi > 1e300:
                raise RuntimeError(f"rate_function: could not bracket λ for x={x!r}")
    else:
        lo, hi = -step, 0.0
        while g(lo) > 0:
            lo, hi = 2 * lo, lo
            if lo < -1e300:
                raise RuntimeError(f"rate_function: could not bracket λ for x={x!r}")
    return float(brentq(g, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps))


def _rate(p: np.ndarray, w: np.ndarray, x: float) -> float:
    wmax, wmin = float(w.max()), float(w.min())
    mean = float(p @ w)
    if x > wmax or x < wmin:
        return math.inf
    if x == wmax:
        return float(-np.log(p[w == wmax].sum()))
    if x == wmin:
        return float(-np.log(p[w == wmin].sum()))
    if x == mean:
        return 0.0
    lam = _solve_lambda_for_mean(p, w, x)
    # I(x) = λx − Λ(λ) = KL(p_λ ‖ p) at the maximizing λ (always >= 0).
    return max(lam * x - _log_mgf(p, w, lam), 0.0)


def rate_function(p: np.ndarray, w: np.ndarray, x: float | np.ndarray) -> float | np.ndarray:
    """Cramér rate function I(x) = sup_λ (λ x − Λ(λ)) of one token's reward w(a), a ~ p.

    The sup is concave in λ; it is found by solving Λ'(λ) = x (brentq on a bracket). Boundary
    values exactly: I(E_p w) = 0; I(max w) = −log p(w = max w) (likewise at min w); I = +inf outside
    [min w, max w] (over the support of p).

    Shapes: p[m], w[m], x scalar or [k] -> float or [k].
    References: Cramér (1938); Dembo & Zeitouni (1998), Thm 2.2.3; Yang et al. (2024), §4.
    """
    pp, ww = _check_token_model(p, w)
    xs = as_float_array("x", x)
    if np.any(np.isnan(xs)):
        raise ValueError(f"x must not be NaN, got {x!r}")
    out = np.array([_rate(pp, ww, float(xi)) for xi in xs.ravel()]).reshape(xs.shape)
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class TiltSolution:
    """The per-token tilt that meets a per-token KL budget Δ.

    Attributes:
      lam: λ ≥ 0 with KL(p_λ ‖ p) = λΛ'(λ) − Λ(λ) = Δ (``inf`` when Δ ≥ −log p(argmax w)).
      policy: the tilted token law p_λ over the full alphabet.
      reward: x*(Δ) = Λ'(λ), the per-token expected reward (solves I(x) = Δ).
      kl: KL(p_λ ‖ p) (= Δ up to the root-finder tolerance, or the slack maximum).
      delta: the budget Δ.

    References: Yang et al. (2024), Thm 2 / §4 (derived here, see :func:`tilt_for_budget`).
    """

    lam: float
    policy: np.ndarray
    reward: float
    kl: float
    delta: float


def tilt_for_budget(p: np.ndarray, w: np.ndarray, delta: float) -> TiltSolution:
    """Solve λΛ'(λ) − Λ(λ) = Δ for λ ≥ 0: the per-token factor of the KL-constrained optimum.

    For sequences of length n with reward S_n = Σ_t w(y_t) and budget KL ≤ n·Δ, the optimal law is
    the product ⊗_t p_λ (the sequence-level tilt p^{⊗n} exp(S_n/β)/Z factorizes, with λ = 1/β),
    so the per-token KL is Δ and the per-token reward is Λ'(λ) = x*(Δ), with I(x*(Δ)) = Δ.
    Boundaries: Δ = 0 gives λ = 0; Δ ≥ −log p(argmax w) gives λ = inf (all mass on argmax w).

    Shapes: p[m], w[m] -> TiltSolution. Raises ValueError if delta < 0.
    References: Yang et al. (2024), Thm 2 / §4 (KL-RL reward rate); factorization derived here.
    """
    pp = as_float_array("p", p, ndim=1)
    ps, ws = _check_token_model(p, w)
    d = _check_delta(delta)
    wfull = np.asarray(w, dtype=np.float64)
    mean = float(ps @ ws)
    if d == 0.0 or ws.max() == ws.min():
        return TiltSolution(lam=0.0, policy=pp.copy(), reward=mean, kl=0.0, delta=d)
    kl_max = float(-np.log(ps[ws == ws.max()].sum()))
    if d >= kl_max:
        top = (wfull == ws.max()) & (pp > 0)
        pol = np.where(top, pp, 0.0) / pp[top].sum()
        return TiltSolution(lam=math.inf, policy=pol, reward=float(ws.max()), kl=kl_max, delta=d)

    def kl_of(lam: float) -> float:
        return lam * float(_tilt(ps, ws, lam) @ ws) - _log_mgf(ps, ws, lam)

    hi = 1.0 / float(ws.max() - ws.min())
    while kl_of(hi) < d:
        hi *= 2.0
        if hi > 1e300:
            raise RuntimeError(f"tilt_for_budget: could not bracket λ for delta={d!r}")
    lam = float(brentq(lambda t: kl_of(t) - d, 0.0, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps))
    pol = tilted_distribution(pp, wfull, lam)
    return TiltSolution(lam=lam, policy=pol, reward=float(_tilt(ps, ws, lam) @ ws), kl=kl_of(lam), delta=d)


def kl_rl_per_token_reward(p: np.ndarray, w: np.ndarray, delta: float) -> float:
    """x*(Δ) = Λ'(λ_Δ): the exact per-token reward of KL-constrained RL at budget n·Δ (any n).

    Shapes: p[m], w[m], scalar Δ >= 0 -> float.
    References: Yang et al. (2024), Thm 2 / §4; exactness for every n derived here (product form).
    """
    return tilt_for_budget(p, w, delta).reward


# ----------------------------------------------------------------------------- exact S_n
@dataclass(frozen=True)
class SumDistribution:
    """Exact law of S_n = Σ_{t≤n} w(y_t), y_t i.i.d. ~ p.

    Attributes: n; values (K,) sorted distinct sums; log_probs (K,) log P(S_n = value);
    probs (K,) = exp(log_probs).

    References: the multinomial law (derived here, see :func:`sum_distribution`).
    """

    n: int
    values: np.ndarray
    log_probs: np.ndarray
    probs: np.ndarray


def _compositions(n: int, m: int) -> np.ndarray:
    """All count vectors c ∈ ℕ^m with Σ c = n, shape (C(n+m−1, m−1), m)."""
    if m == 1:
        return np.array([[n]], dtype=np.int64)
    rows = []
    for first in range(n, -1, -1):
        rest = _compositions(n - first, m - 1)
        rows.append(np.column_stack([np.full(len(rest), first, dtype=np.int64), rest]))
    return np.vstack(rows)


def sum_distribution(p: np.ndarray, w: np.ndarray, n: int, *, merge_tol: float = 1e-9) -> SumDistribution:
    """Exact law of the additive reward S_n by enumerating token counts (multinomial).

    P(S_n = s) = Σ_{c: Σ_a c_a w(a) = s} n! / Π_a c_a! · Π_a p(a)^{c_a}, summed in log space over
    all count vectors c (tokens with p(a) = 0 are dropped, tokens with equal weight are merged
    first). Sums closer than ``merge_tol·(1 + |s|)`` are merged (exact for lattice weights).

    Shapes: p[m], w[m] -> SumDistribution. Raises ValueError if n < 1 or the enumeration would
    exceed MAX_COMPOSITIONS count vectors.
    References: the multinomial law; used for the exact tails in Yang et al. (2024), §4 (derived here).
    """
    ps, ws = _check_token_model(p, w)
    nn = _check_length(n)
    wv, inv = np.unique(ws, return_inverse=True)
    pv = np.bincount(inv, weights=ps, minlength=len(wv))
    m = len(wv)
    size = math.comb(nn + m - 1, m - 1)
    if size > MAX_COMPOSITIONS:
        raise ValueError(
            f"n={nn} with {m} distinct token rewards needs {size} count vectors (> {MAX_COMPOSITIONS}); use a shorter n"
        )
    counts = _compositions(nn, m)
    log_pv = np.log(pv)
    logp = gammaln(nn + 1) - gammaln(counts + 1).sum(axis=1) + counts @ log_pv
    sums = counts @ wv
    order = np.argsort(sums, kind="stable")
    sums, logp = sums[order], logp[order]
    new_group = np.concatenate([[True], np.diff(sums) > merge_tol * (1.0 + np.abs(sums[1:]))])
    starts = np.flatnonzero(new_group)
    values = sums[starts]
    group_max = np.maximum.reduceat(logp, starts)
    gid = np.cumsum(new_group) - 1
    log_probs = group_max + np.log(np.add.reduceat(np.exp(logp - group_max[gid]), starts))
    log_probs -= logsumexp(log_probs)
    return SumDistribution(n=nn, values=values, log_probs=log_probs, probs=np.exp(log_probs))


def log_tail_probability(dist: SumDistribution, threshold: float, *, tol: float = 1e-9) -> float:
    """log P(S_n ≥ threshold) from the exact law (values within tol·(1+|t|) below count as ≥).

    Shapes: dist with K support points, scalar threshold -> float. Returns −inf if the event is
    empty. References: Cramér (1938), the quantity in the LDP; exact evaluation derived here.
    """
    t = float(threshold)
    if math.isnan(t):
        raise ValueError("threshold must not be NaN")
    keep = dist.values >= t - tol * (1.0 + abs(t))
    return float(logsumexp(dist.log_probs[keep])) if np.any(keep) else -math.inf


def best_of_n_sum_reward(dist: SumDistribution, log_num_samples: float) -> float:
    """Exact E[max of N i.i.d. copies of S_n] with N = exp(log_num_samples) (N ≥ 1, real allowed).

    E[max] = Σ_k s_k (F_k^N − F_{k−1}^N) with F the CDF of S_n, in log space so N may be huge
    (only log N is used). Ties among sequences do not change the reward of the best one.

    Shapes: dist with K support points (values s_k sorted, F_k the CDF), scalar log N -> float.
    References: Yang et al. (2024), Thm 3 (best-of-N with N = exp(nΔ)); order statistics, derived here.
    """
    log_n = check_at_least("log_num_samples", log_num_samples, 0.0, "N >= 1")
    log_p = best_of_n_level_log_probs(dist.log_probs, log_n)
    return float(np.exp(log_p) @ dist.values)


@dataclass(frozen=True)
class AlignmentComparison:
    """Best-of-N (log N = nΔ) versus KL-constrained RL (budget nΔ), per token, for each n.

    Attributes: ns (L,); delta; kl_rl (scalar x*(Δ), exact for every n); best_of_n (L,) =
    E[max of N copies of S_n]/n; gap (L,) = kl_rl − best_of_n.

    References: Yang et al. (2024), Thm 3 (see :func:`compare_alignment`).
    """

    ns: np.ndarray
    delta: float
    kl_rl: float
    best_of_n: np.ndarray
    gap: np.ndarray


def compare_alignment(p: np.ndarray, w: np.ndarray, delta: float, ns: list[int] | np.ndarray) -> AlignmentComparison:
    """Per-token reward of best-of-N with N = e^{nΔ} and of KL-constrained RL at budget nΔ.

    KL-RL gives exactly x*(Δ) per token for every n; best-of-N gives E[max]/n, which tends to
    x*(Δ) as n → ∞ (the gap shrinks).

    Shapes: p[m], w[m], scalar Δ, ns[L] -> AlignmentComparison with (L,) arrays.
    References: Yang et al. (2024), "Asymptotics of Language Model Alignment", Thm 3.
    """
    d = _check_delta(delta)
    x_star = kl_rl_per_token_reward(p, w, d)
    ns_arr = np.array([_check_length(k) for k in np.asarray(ns).tolist()], dtype=np.int64)
    bon = np.array([best_of_n_sum_reward(sum_distribution(p, w, int(k)), int(k) * d) / int(k) for k in ns_arr])
    return AlignmentComparison(ns=ns_arr, delta=d, kl_rl=x_star, best_of_n=bon, gap=x_star - bon)
