"""KL-regularized RL at the bandit/sequence level, exactly: closed forms, the KL budget, best-of-n.

The objects are distributions over a finite set of outcomes ``y`` (a response, a full sequence,
an action): a reference ``pi_ref[..., y]``, a reward ``r[..., y]`` and a temperature ``beta``.

* KL-regularized optimum (Korbak, Perez, Buckley 2022, eq. (2)-(4)):
  π*(y) = π_ref(y) exp(r(y)/β) / Z,  Z = Σ_y π_ref(y) exp(r(y)/β),
  and  β log Z = max_π E_π[r] − β KL(π ‖ π_ref)  (the Gibbs / Donsker–Varadhan variational formula).
* Bayesian view (Korbak et al. 2022, §3): π* is the posterior of the prior π_ref under the
  likelihood exp(r/β); :func:`posterior` computes prior·exp(loglik)/evidence.
* KL-constrained RL (Yang et al. 2024, "Asymptotics of Language Model Alignment", Lemma 1 /
  eq. (3)): max E_π[r] s.t. KL(π ‖ π_ref) ≤ Δ is solved by the same tilt with β chosen so that the
  constraint is active; :func:`kl_constrained` finds β by a bracketed root search on log β.
* Distribution collapse (Korbak et al. 2022, §2): without the KL term the optimum is any
  distribution on the argmax set; as β → 0 the tilt converges to π_ref restricted to the argmax
  set, whose KL to π_ref is −log π_ref(argmax set).
* Best-of-n (Stiennon et al. 2020; Beirami et al. 2024, "Theoretical guarantees on the best-of-n
  alignment policy", Lemma 1 and Theorem 1): the exact law of the best of n i.i.d. draws from
  π_ref with ties broken uniformly, its exact KL, and the bound KL ≤ log n − (n−1)/n.

Conventions. Outcomes with π_ref(y) = 0 are unreachable: every policy here gives them probability
0 and their reward is ignored (it must still be finite). The reference must be a probability
distribution over the last axis; rewards must be finite (no NaN, no ±inf). KL is in nats, with
0·log 0 = 0. All softmax/KL computations are in log space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

from rlref import divergences
from rlref._checks import as_float_array, check_at_least, check_beta, check_distribution, check_finite
from rlref.solve import soft_greedy, soft_value

__all__ = [
    "optimal_policy",
    "optimal_value",
    "kl_divergence",
    "entropy",
    "posterior",
    "KLConstrainedResult",
    "kl_constrained",
    "RewardKLFrontier",
    "reward_kl_frontier",
    "argmax_distribution",
    "max_kl",
    "CollapseResult",
    "distribution_collapse",
    "best_of_n_distribution",
    "best_of_n_kl",
    "best_of_n_kl_bound",
    "best_of_n_reward",
    "best_of_n_level_log_probs",
]


# ----------------------------------------------------------------------------- validation
def _check_ref_reward(pi_ref: object, r: object, *, ref_name: str = "pi_ref", r_name: str = "r") -> tuple[np.ndarray, np.ndarray]:
    ref = as_float_array(ref_name, pi_ref)
    rew = as_float_array(r_name, r)
    if ref.ndim == 0:
        raise ValueError(f"{ref_name} must have at least one axis (the outcomes y), got a scalar")
    check_distribution(ref_name, ref)
    check_finite(r_name, rew)
    try:
        ref_b, rew_b = np.broadcast_arrays(ref, rew)
    except ValueError as exc:
        raise ValueError(f"{ref_name} of shape {ref.shape} and {r_name} of shape {rew.shape} do not broadcast") from exc
    if rew.ndim == 0 or rew.shape[-1] != ref.shape[-1]:
        raise ValueError(
            f"{r_name} must have the outcome axis of {ref_name} last: {ref_name} has {ref.shape[-1]} outcomes, "
            f"{r_name} has shape {rew.shape}"
        )
    return np.array(ref_b, dtype=np.float64), np.array(rew_b, dtype=np.float64)


def _check_1d(pi_ref: object, r: object) -> tuple[np.ndarray, np.ndarray]:
    ref, rew = _check_ref_reward(pi_ref, r)
    if ref.ndim != 1:
        raise ValueError(f"pi_ref and r must be 1-d (one distribution over outcomes y) here, got shape {ref.shape}")
    return ref, rew


def _check_n(n: float) -> float:
    return check_at_least("n", n, 1.0, "the number of samples")


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


# ----------------------------------------------------------------------------- closed forms
def optimal_policy(pi_ref: np.ndarray, r: np.ndarray, beta: float) -> np.ndarray:
    """The KL-regularized optimum π* = argmax_π E_π[r] − β KL(π ‖ π_ref).

    π*(y) = π_ref(y) · exp(r(y)/β) / Z,   Z = Σ_y π_ref(y) exp(r(y)/β); computed in log space by
    the one tilt of the library, :func:`rlref.solve.soft_greedy` (so r/β may overflow: β = 1e-310
    gives the argmax distribution, β = 1e18 gives π_ref to rounding). Outcomes with π_ref(y) = 0
    get π*(y) = 0.

    Shapes: pi_ref[..., y], r[..., y] (broadcast over leading axes) -> π*[..., y].
    Raises ValueError if beta <= 0, pi_ref is not a distribution over its last axis, or r has
    NaN/inf entries.

    References: Korbak, Perez, Buckley (2022), "RL with KL penalties is better viewed as Bayesian
    inference", eq. (4); Rafailov et al. (2023), DPO, eq. (4).
    """
    ref, rew = _check_ref_reward(pi_ref, r)
    return soft_greedy(rew, ref, check_beta("beta", beta))


def optimal_value(pi_ref: np.ndarray, r: np.ndarray, beta: float) -> np.ndarray:
    """The optimal regularized value  β log Z = max_π E_π[r] − β KL(π ‖ π_ref).

    β log Σ_y π_ref(y) exp(r(y)/β)  (Gibbs variational principle / Donsker–Varadhan), by the one
    log-partition of the library, :func:`rlref.solve.soft_value`: exact to rounding for every
    β > 0 (→ max over supp π_ref as β → 0, → E_{π_ref}[r] as β → ∞).

    Shapes: pi_ref[..., y], r[..., y] -> value[...] (a float for 1-d inputs).
    References: Korbak, Perez, Buckley (2022), eq. (2)-(4); Donsker & Varadhan (1975).
    """
    ref, rew = _check_ref_reward(pi_ref, r)
    out = soft_value(rew, ref, check_beta("beta", beta))
    return float(out) if np.ndim(out) == 0 else out


def kl_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p ‖ q) = Σ_y p(y) log(p(y)/q(y)) over the last axis, in nats.

    0·log(0/q) = 0; KL = +inf if p puts mass where q has none. Shapes: p[..., y], q[..., y] -> [...].
    A thin wrapper over :func:`rlref.divergences.kl`.
    References: Cover & Thomas (2006), eq. (2.26).
    """
    return divergences.kl(p, q)


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy H(p) = −Σ_y p(y) log p(y) over the last axis (nats, 0·log 0 = 0).

    Shapes: p[..., y] -> [...] (float for 1-d p). A thin wrapper over :func:`rlref.divergences.entropy`.
    References: Shannon (1948); used for the collapse diagnostics of Korbak, Perez, Buckley (2022), §2.
    """
    out = divergences.entropy(p)
    return float(out) if np.ndim(out) == 0 else out


def posterior(prior: np.ndarray, log_likelihood: np.ndarray) -> np.ndarray:
    """Bayes' rule over a finite hypothesis set: posterior(y) = prior(y) exp(ℓ(y)) / Σ_y' prior(y') exp(ℓ(y')).

    With ℓ = r/β this is exactly :func:`optimal_policy` (π* is the posterior of the prior π_ref
    given the evidence "y is optimal" with likelihood exp(r(y)/β)).

    Shapes: prior[..., y], log_likelihood[..., y] -> posterior[..., y]. Computed in log space.
    Raises ValueError if prior is not a distribution or the log-likelihood is NaN/inf.

    References: Korbak, Perez, Buckley (2022), §3, eq. (5)-(6).
    """
    ref, ll = _check_ref_reward(prior, log_likelihood, ref_name="prior", r_name="log_likelihood")
    return soft_greedy(ll, ref, 1.0)


# ----------------------------------------------------------------------------- argmax / collapse
def _argmax_mask(ref: np.ndarray, rew: np.ndarray) -> np.ndarray:
    """Mask of the reachable outcomes with maximal reward (ties exact)."""
    masked = np.where(ref > 0, rew, -np.inf)
    return (masked == masked.max(axis=-1, keepdims=True)) & (ref > 0)


def argmax_distribution(pi_ref: np.ndarray, r: np.ndarray) -> np.ndarray:
    """π_ref restricted to the argmax set A* = argmax_{y: π_ref(y)>0} r(y), renormalized.

    π_∞(y) = π_ref(y) 1[y ∈ A*] / π_ref(A*): the limit of :func:`optimal_policy` as β → 0, and the
    unregularized optimum closest (in KL) to π_ref. Rewards are compared exactly (ties are equal
    floats). Shapes: pi_ref[..., y], r[..., y] -> [..., y].

    References: Korbak, Perez, Buckley (2022), §2 ("distribution collapse"); limit derived here.
    """
    ref, rew = _check_ref_reward(pi_ref, r)
    mask = _argmax_mask(ref, rew)
    w = np.where(mask, ref, 0.0)
    return w / w.sum(axis=-1, keepdims=True)


def max_kl(pi_ref: np.ndarray, r: np.ndarray) -> np.ndarray:
    """KL of the argmax distribution to the reference: −log π_ref(A*), the largest useful KL budget.

    Any budget Δ ≥ −log π_ref(A*) is slack: the KL-constrained optimum is then the argmax
    distribution. Shapes: pi_ref[..., y], r[..., y] -> [...].
    References: Yang et al. (2024), "Asymptotics of Language Model Alignment", §2 (derived here).
    """
    ref, rew = _check_ref_reward(pi_ref, r)
    mass = np.where(_argmax_mask(ref, rew), ref, 0.0).sum(axis=-1)
    out = -np.log(mass)
    return float(out) if np.ndim(out) == 0 else out


@dataclass(frozen=True)
class CollapseResult:
    """The β → 0 limit of the KL-regularized optimum (the unregularized, collapsed optimum).

    Attributes:
      policy: π_ref restricted to the argmax set, renormalized, shape (Y,).
      argmax_mask: boolean mask of the argmax set A*, shape (Y,).
      entropy: H(policy); equals log |A*| iff π_ref is uniform on A*.
      kl: KL(policy ‖ π_ref) = −log π_ref(A*).
      reward: max reward over the support of π_ref.

    References: Korbak, Perez, Buckley (2022), §2 (see :func:`distribution_collapse`).
    """

    policy: np.ndarray
    argmax_mask: np.ndarray
    entropy: float
    kl: float
    reward: float


def distribution_collapse(pi_ref: np.ndarray, r: np.ndarray) -> CollapseResult:
    """The unregularized optimum that the KL-regularized optimum collapses to as β → 0.

    lim_{β→0} π*_β = π_ref(· | A*), A* = argmax r on supp π_ref; its entropy is H(π_ref(·|A*))
    (= log |A*| for a reference uniform on A*, a point mass when the argmax is unique) and its KL
    to the reference is −log π_ref(A*).

    Shapes: pi_ref[y], r[y] (1-d). References: Korbak, Perez, Buckley (2022), §2; limit derived here.
    """
    ref, rew = _check_1d(pi_ref, r)
    mask = _argmax_mask(ref, rew)
    pol = argmax_distribution(ref, rew)
    return CollapseResult(
        policy=pol,
        argmax_mask=mask,
        entropy=float(entropy(pol)),
        kl=float(-np.log(ref[mask].sum())),
        reward=float(rew[mask][0]),
    )


# ----------------------------------------------------------------------------- KL budget
@dataclass(frozen=True)
class KLConstrainedResult:
    """Solution of max_π E_π[r] s.t. KL(π ‖ π_ref) ≤ Δ.

    Attributes:
      beta: the temperature of the tilt; ``inf`` when the solution is π_ref (Δ = 0 or a constant
        reward on the support), ``0.0`` when the budget is slack (the argmax distribution).
      policy: the optimal distribution, shape (Y,).
      reward: E_policy[r].
      kl: KL(policy ‖ π_ref) (= Δ when the constraint is active, up to the root-finder tolerance).
      delta: the budget Δ.
      regime: "reference", "interior" or "argmax".
      iterations: root-finder iterations (0 at the boundaries).

    References: Yang et al. (2024), Lemma 1 / eq. (3) (see :func:`kl_constrained`).
    """

    beta: float
    policy: np.ndarray
    reward: float
    kl: float
    delta: float
    regime: str
    iterations: int


def _tilt_stats(ref: np.ndarray, rew: np.ndarray, beta: float) -> tuple[np.ndarray, float, float]:
    pi = soft_greedy(rew, ref, beta)
    return pi, float(pi @ rew), max(float(divergences.kl(pi, ref)), 0.0)


def _argmax_result(ref: np.ndarray, rew: np.ndarray, kl_max: float, d: float) -> KLConstrainedResult:
    pol = argmax_distribution(ref, rew)
    return KLConstrainedResult(beta=0.0, policy=pol, reward=float(pol @ rew), kl=kl_max, delta=d, regime="argmax", iterations=0)


def kl_constrained(pi_ref: np.ndarray, r: np.ndarray, delta: float, *, xtol: float = 1e-13) -> KLConstrainedResult:
    """KL-constrained optimum: max_π E_π[r] subject to KL(π ‖ π_ref) ≤ Δ.

    The solution is the tilt π_β ∝ π_ref exp(r/β) with β > 0 solving KL(π_β ‖ π_ref) = Δ (the map
    β ↦ KL(π_β ‖ π_ref) is continuous and decreasing, from −log π_ref(A*) at β → 0 to 0 at β → ∞).
    β is found by ``scipy.optimize.brentq`` on t = log β after bracketing. Boundaries, exactly:
    Δ = 0 (or r constant on the support) gives π_ref with β = inf; Δ ≥ −log π_ref(A*) gives the
    argmax distribution π_ref(·|A*) with β = 0.

    Shapes: pi_ref[y], r[y] (1-d). Raises ValueError if delta < 0 or not finite, or on a bad
    reference/reward; RuntimeError if the root cannot be bracketed.

    References: Yang et al. (2024), "Asymptotics of Language Model Alignment", Lemma 1 (the
    tilted form); Korbak et al. (2022), eq. (4); boundary handling derived here.
    """
    ref, rew = _check_1d(pi_ref, r)
    d = check_at_least("delta", delta, 0.0, "a KL budget in nats")
    support = ref > 0
    r_sup = rew[support]
    span = float(r_sup.max() - r_sup.min())
    if d == 0.0 or span == 0.0:
        return KLConstrainedResult(beta=math.inf, policy=ref.copy(), reward=float(ref @ rew), kl=0.0, delta=d, regime="reference", iterations=0)
    kl_max = float(max_kl(ref, rew))
    if d >= kl_max:
        return _argmax_result(ref, rew, kl_max, d)

    def g(t: float) -> float:
        return _tilt_stats(ref, rew, span * math.exp(t))[2] - d

    # t = log(β / span): bracket a sign change (g decreasing in t).
    lo, hi = 0.0, 0.0
    while g(hi) > 0:
        hi += 2.0
        if hi > 200:
            raise RuntimeError(f"kl_constrained: could not bracket the temperature for delta={d!r} (KL stays above the budget)")
    while g(lo) < 0:
        lo -= 2.0
        if lo < -60:
            # KL(π_β) equals −log π_ref(A*) to machine precision: Δ is within rounding of the
            # slack boundary, so the argmax distribution is optimal to that precision.
            return _argmax_result(ref, rew, kl_max, d)
    if g(lo) == 0.0:
        t = lo
        iterations = 0
    else:
        t, info = brentq(g, lo, hi, xtol=xtol, full_output=True)
        if not info.converged:
            raise RuntimeError(f"kl_constrained: brentq did not converge ({info.flag}) for delta={d!r}")
        iterations = int(info.iterations)
    beta = span * math.exp(t)
    pol, reward, kl = _tilt_stats(ref, rew, beta)
    return KLConstrainedResult(beta=beta, policy=pol, reward=reward, kl=kl, delta=d, regime="interior", iterations=iterations)


@dataclass(frozen=True)
class RewardKLFrontier:
    """The reward–KL frontier traced by the tilts π_β, one row per β.

    Attributes: betas (B,), rewards (B,) = E_{π_β}[r], kls (B,) = KL(π_β ‖ π_ref),
    values (B,) = β log Z_β, policies (B, Y).

    References: Korbak et al. (2022), eq. (4) (see :func:`reward_kl_frontier`).
    """

    betas: np.ndarray
    rewards: np.ndarray
    kls: np.ndarray
    values: np.ndarray
    policies: np.ndarray


def reward_kl_frontier(pi_ref: np.ndarray, r: np.ndarray, betas: np.ndarray) -> RewardKLFrontier:
    """Reward and KL of the KL-regularized optimum for each temperature β in ``betas``.

    Each point (KL(π_β ‖ π_ref), E_{π_β}[r]) lies on the concave upper frontier
    R(Δ) = max{E_π[r] : KL(π ‖ π_ref) ≤ Δ}; the frontier's slope at that point is β.

    Shapes: pi_ref[y], r[y], betas[B] (all > 0) -> RewardKLFrontier with (B,) and (B, Y) arrays.
    References: Korbak et al. (2022), eq. (4); Yang et al. (2024), Lemma 1.
    """
    ref, rew = _check_1d(pi_ref, r)
    b = as_float_array("betas", betas, ndim=1)
    if b.size == 0:
        raise ValueError("betas must hold at least one temperature (got an empty list); e.g. betas=np.geomspace(0.01, 10, 20)")
    for i, bi in enumerate(b):
        if not (math.isfinite(bi) and bi > 0):
            raise ValueError(f"betas must be > 0 and finite; betas[{i}] = {float(bi)!r}")
    pols, rewards, kls, values = [], [], [], []
    for bi in b:
        pi, reward, kl = _tilt_stats(ref, rew, float(bi))
        pols.append(pi)
        rewards.append(reward)
        kls.append(kl)
        values.append(float(soft_value(rew, ref, float(bi))))
    return RewardKLFrontier(
        betas=b.copy(), rewards=np.array(rewards), kls=np.array(kls), values=np.array(values), policies=np.array(pols).reshape(len(b), -1)
    )


# ----------------------------------------------------------------------------- best of n
def _levels(ref: np.ndarray, rew: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct reachable reward levels v_1 < ... < v_K, their masses m_k and each y's level index."""
    support = ref > 0
    values, inverse = np.unique(rew[support], return_inverse=True)
    masses = np.bincount(inverse, weights=ref[support], minlength=len(values))
    level_of = np.full(ref.shape, -1, dtype=np.int64)
    level_of[support] = inverse
    return values, masses, level_of


def best_of_n_level_log_probs(log_masses: np.ndarray, log_n: float) -> np.ndarray:
    """log P(max of n draws is level k) = log(F_k^n − F_{k−1}^n), with F_k = Σ_{j≤k} m_j.

    Unchecked building block (shared with :mod:`rlref.theory.asymptotics`): ``log_masses`` must be
    finite-or-−inf log weights of the levels, ``log_n`` = log n ≥ 0.

    ``log_masses[k]`` = log m_k for levels sorted by increasing reward. log(−log F_k) is taken from
    the bottom cumulative sum where F_k < 1/2 and from the tail t_k = Σ_{j>k} m_j above
    (log(−log1p(−t)), or log t + log1p(t/2) when t < 1e-8, so tails far below machine epsilon keep
    their value). Then log P_k = a_k + log(−expm1(a_{k−1} − a_k)) with a_k = n log F_k =
    −exp(log n + log(−log F_k)), so n may be astronomically large (only log n is used).
    Valid for real n ≥ 1 (level CDF F^n).

    References: Beirami et al. (2024), Lemma 1 (the level law); the log-space evaluation is derived here.
    """
    log_m = log_masses - logsumexp(log_masses)
    log_cdf = np.logaddexp.accumulate(log_m)  # log F_k from the bottom
    log_tail = np.concatenate([np.logaddexp.accumulate(log_m[::-1])[::-1][1:], [-np.inf]])  # log Σ_{j>k} m_j
    # L_k = log(−log F_k), computed without forming F_k when F_k is within rounding of 1.
    tail = np.minimum(np.exp(log_tail), 0.5)
    with np.errstate(divide="ignore"):
        from_cdf = np.log(-np.minimum(log_cdf, -1e-300))
        from_tail = np.where(tail > 1e-8, np.log(-np.log1p(-tail)), log_tail + np.log1p(tail / 2))
    log_neg_log_f = np.where(log_cdf < math.log(0.5), from_cdf, from_tail)
    with np.errstate(over="ignore"):
        a = -np.exp(log_n + log_neg_log_f)  # a_k = n log F_k (0 at the top level)
    a_prev = np.concatenate([[-np.inf], a[:-1]])
    out = np.full_like(a, -np.inf)
    ok = np.isfinite(a)
    with np.errstate(divide="ignore"):
        out[ok] = a[ok] + np.log(-np.expm1(a_prev[ok] - a[ok]))
    return out


def _bon_levels(pi_ref: np.ndarray, r: np.ndarray, n: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ref, rew = _check_1d(pi_ref, r)
    nn = _check_n(n)
    values, masses, level_of = _levels(ref, rew)
    log_p = best_of_n_level_log_probs(np.log(masses), math.log(nn))
    return ref, values, masses, level_of, log_p


def best_of_n_distribution(pi_ref: np.ndarray, r: np.ndarray, n: float) -> np.ndarray:
    """Exact law of best-of-n: draw n i.i.d. y ~ π_ref, return one of highest reward (ties uniform).

    With reachable reward levels v_1 < … < v_K, masses m_k and CDF F_k = Σ_{j≤k} m_j,
    P(max level = k) = F_k^n − F_{k−1}^n, and given the level the returned y is uniform among the
    tied draws, hence distributed as π_ref restricted to the level:
        π_n(y) = (F_k^n − F_{k−1}^n) · π_ref(y) / m_k,   k = level of r(y).
    Real n ≥ 1 is accepted (the law whose level CDF is F^n); integer n is best-of-n.

    Shapes: pi_ref[y], r[y] -> π_n[y]. Raises ValueError if n < 1.
    References: Beirami et al. (2024), "Theoretical guarantees on the best-of-n alignment policy",
    Lemma 1 (distinct rewards); uniform tie-breaking derived here.
    """
    ref, _, masses, level_of, log_p = _bon_levels(pi_ref, r, n)
    out = np.zeros_like(ref)
    sup = level_of >= 0
    lv = level_of[sup]
    out[sup] = np.exp(log_p[lv] - np.log(masses[lv])) * ref[sup]
    return out


def best_of_n_kl(pi_ref: np.ndarray, r: np.ndarray, n: float) -> float:
    """Exact KL(π_n ‖ π_ref) of the best-of-n law (ties broken uniformly).

    Since π_n and π_ref share the within-level conditional π_ref(·|level), the chain rule gives
    KL(π_n ‖ π_ref) = Σ_k P_k log(P_k / m_k), P_k = F_k^n − F_{k−1}^n (levels as in
    :func:`best_of_n_distribution`).

    Shapes: pi_ref[y], r[y], scalar n >= 1 -> float.
    References: Beirami et al. (2024), Lemma 1 and Theorem 1; chain-rule form derived here.
    """
    _, _, masses, _, log_p = _bon_levels(pi_ref, r, n)
    p = np.exp(log_p)
    pos = p > 0
    return float(max(np.sum(p[pos] * (log_p[pos] - np.log(masses[pos]))), 0.0))


def best_of_n_kl_bound(n: float) -> float:
    """The analytical formula log n − (n−1)/n, an upper bound on KL(π_n ‖ π_ref).

    Equality holds for a continuous reward distribution (no ties); with atoms the exact KL is
    strictly smaller. Real n ≥ 1 accepted. Raises ValueError if n < 1.

    Shapes: scalar n >= 1 -> float.
    References: Stiennon et al. (2020), Appendix G.3 (the formula); Beirami et al. (2024),
    Theorem 1 (it is an upper bound).
    """
    nn = _check_n(n)
    return math.log(nn) - (nn - 1.0) / nn


def best_of_n_reward(pi_ref: np.ndarray, r: np.ndarray, n: float) -> float:
    """Exact expected reward of best-of-n: E[max_i r(y_i)] = Σ_k v_k (F_k^n − F_{k−1}^n).

    Levels v_k and CDF F_k as in :func:`best_of_n_distribution`. Shapes: pi_ref[y], r[y], scalar
    n >= 1 -> float.
    References: Beirami et al. (2024), §2 (order statistics of the reward); derived here.
    """
    _, values, _, _, log_p = _bon_levels(pi_ref, r, n)
    return float(np.exp(log_p) @ values)


# ----------------------------------------------------------------------------- best-of-n sampler
# (moved here from the best-of-n reproduction: experiments hold no library logic)
def sample_best_of_n(pi_ref: np.ndarray, r: np.ndarray, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Monte Carlo best-of-n: ``size`` independent rounds of n i.i.d. draws y ~ π_ref, each
    returning one draw of highest reward r(y), ties broken uniformly at random.

    Each round draws y_1..y_n ~ π_ref and keys u_1..u_n ~ U(0, 1) and returns y_{i*},
    i* = argmax_{i : r(y_i) = max_j r(y_j)} u_i (uniform among the tied draws). Its law is
    :func:`best_of_n_distribution` (π_ref, r, n), which a test checks by a χ²-type z-score.

    Shapes: pi_ref[y], r[y], integer n >= 1, size >= 1 -> int64[size] (the returned outcomes).
    Randomness: ``rng.choice`` for the draws, then ``rng.random`` for the keys, in that order.
    References: Beirami et al. (2024), "Theoretical guarantees on the best-of-n alignment policy",
    §2 (the best-of-n policy); uniform tie-breaking as in :func:`best_of_n_distribution`.
    """
    from rlref._checks import check_count

    ref, rew = _check_1d(pi_ref, r)
    n = check_count("n", n, 1, "the number of samples per round")
    size = check_count("size", size, 1, "the number of rounds")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    draws = rng.choice(ref.size, size=(size, n), p=ref)
    rew_d = rew[draws]
    key = rng.random((size, n))
    best = np.where(rew_d == rew_d.max(axis=1, keepdims=True), key, -1.0).argmax(axis=1)
    return draws[np.arange(size), best]


__all__ += ["sample_best_of_n"]
