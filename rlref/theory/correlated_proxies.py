"""Correlated proxies: the definition of reward hacking and the χ² improvement bound.

Laidlaw, Singhal, Dragan (2024), "Correlated Proxies: A New Definition and Improved Mitigation
for Reward Hacking", arXiv 2403.03185, §4–5. Conventions (all quantities *normalized*):

* μ_π[s, a] is the normalized discounted occupancy, Σ μ_π = 1, and J(π, R) = ⟨μ_π, R⟩ =
  (1−γ) E_π[Σ_t γᵗ R(s_t, a_t)].
* **r-correlated proxy** (Definition, §4): R̃ is an r-correlated proxy for R with respect to
  π_ref if the Pearson correlation of R(s,a) and R̃(s,a) under (s, a) ~ μ_ref = μ_{π_ref} is r.
  σ_R, σ_R̃ are the standard deviations under μ_ref.
* **Reward hacking** (§4): optimizing R̃ yields π with J(π, R) < J(π_ref, R).
* **Bound** (Theorem 5.1 as reconstructed and proved here): for every policy π and r ∈ [−1, 1],

      (J(π,R) − J(π_ref,R)) / σ_R  ≥  r (J(π,R̃) − J(π_ref,R̃)) / σ_R̃  −  √(1 − r²) · √χ²(μ_π ‖ μ_ref).

  Proof (derived here): with w = μ_π/μ_ref, ΔJ(R) = E_ref[(w − 1) R] = σ_R E_ref[(w − 1) Z_R]
  for the standardized Z_R. Write Z_R = r Z_R̃ + √(1−r²) Z_⊥ with E_ref[Z_⊥] = 0,
  E_ref[Z_⊥ Z_R̃] = 0, E_ref[Z_⊥²] = 1. Then ΔJ(R)/σ_R = r ΔJ(R̃)/σ_R̃ + √(1−r²) E_ref[(w−1) Z_⊥]
  and Cauchy–Schwarz gives |E_ref[(w−1) Z_⊥]| ≤ √E_ref[(w−1)²] = √χ². The bound is tight: it
  holds with equality when w − 1 ∝ −Z_⊥ (see the tests).
* **A second bound** (derived here): decomposing the proxy instead, Z_R̃ = r Z_R + √(1−r²) Z_⊥′,
  the same Cauchy–Schwarz step gives, for r > 0,

      (J(π,R) − J(π_ref,R)) / σ_R  ≥  (1/r) [ (J(π,R̃) − J(π_ref,R̃)) / σ_R̃  −  √(1 − r²) · √χ²(μ_π ‖ μ_ref) ].

  Neither bound dominates the other (see the tests); :func:`lower_bound` evaluates the first.
* **Prescribed λ**: maximizing the first right-hand side over π is
  max_π J(π, R̃) − λ √χ²(μ_π‖μ_ref) with λ = σ_R̃ √(1 − r²) / r (r > 0); maximizing the second is
  the same objective with λ = σ_R̃ √(1 − r²), the coefficient the paper prescribes. Either
  optimizer has its right-hand side ≥ 0 (π_ref attains 0), so **both λ provably never
  reward-hack**; the default (with 1/r) is the larger, more conservative one (see
  :func:`prescribed_lambda`, ``include_r``).

References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, Definition 4.x (r-correlated
proxy), Theorem 5.1 and eq. (ORPO objective).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlref._checks import as_float_array, check_count, check_finite, check_positive
from rlref.divergences import chi2 as _chi2
from rlref.mdp import TabularMDP
from rlref.solve import occupancy_measure, soft_greedy, value_iteration

__all__ = [
    "BoundCheck",
    "reference_moments",
    "proxy_correlation",
    "correlated_proxy",
    "prescribed_lambda",
    "lower_bound",
    "improvement_bound",
    "is_reward_hacking",
    "ProxyInstance",
    "random_proxy_instance",
    "tomato_reference_policy",
]


def _occ(name: str, mu: object) -> np.ndarray:
    m = as_float_array(name, mu)
    check_finite(name, m)
    if np.any(m < -1e-12):
        idx = tuple(int(i) for i in np.argwhere(m < -1e-12)[0])
        raise ValueError(f"{name} must be non-negative; {name}[{', '.join(map(str, idx))}] = {float(m[idx])!r}")
    total = float(m.sum())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{name} must be a normalized occupancy measure summing to 1; it sums to {total!r}")
    return np.clip(m, 0.0, None)


def _reward(name: str, R: object, shape: tuple[int, ...]) -> np.ndarray:
    r = as_float_array(name, R)
    if r.shape != shape:
        raise ValueError(f"{name} must have the shape of the occupancy measure {shape}, got {r.shape}")
    check_finite(name, r)
    return r


def reference_moments(reward: np.ndarray, mu_ref: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of R(s,a) under (s,a) ~ μ_ref: (E_ref R, σ_R).

    Shapes: reward, mu_ref (S, A) (any equal shapes).
    """
    mu_ref = _occ("mu_ref", mu_ref)
    r = _reward("reward", reward, mu_ref.shape)
    m = float(np.sum(mu_ref * r))
    return m, float(np.sqrt(max(float(np.sum(mu_ref * (r - m) ** 2)), 0.0)))


def proxy_correlation(true_reward: np.ndarray, proxy_reward: np.ndarray, mu_ref: np.ndarray) -> float:
    """Pearson correlation Corr_{(s,a)~μ_ref}(R(s,a), R̃(s,a)) — the r of an r-correlated proxy.

    Raises ValueError if either reward is constant on supp(μ_ref) (the correlation is undefined).
    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §4 (Definition of an
    r-correlated proxy).
    """
    mu_ref = _occ("mu_ref", mu_ref)
    R = _reward("true_reward", true_reward, mu_ref.shape)
    Rt = _reward("proxy_reward", proxy_reward, mu_ref.shape)
    mR, mP = float(np.sum(mu_ref * R)), float(np.sum(mu_ref * Rt))
    vR, vP = float(np.sum(mu_ref * (R - mR) ** 2)), float(np.sum(mu_ref * (Rt - mP) ** 2))
    for name, v in (("true_reward", vR), ("proxy_reward", vP)):
        if v <= 1e-24:
            raise ValueError(f"{name} is constant on the support of mu_ref (variance {v!r}); its correlation is undefined")
    c = float(np.sum(mu_ref * (R - mR) * (Rt - mP)) / np.sqrt(vR * vP))
    return float(np.clip(c, -1.0, 1.0))


def correlated_proxy(
    true_reward: np.ndarray,
    mu_ref: np.ndarray,
    r: float,
    rng: np.random.Generator,
    *,
    sigma: float | None = None,
    mean: float | None = None,
) -> np.ndarray:
    """A proxy R̃ whose correlation with R under μ_ref is exactly r.

    R̃ = mean + σ (r Z_R + √(1 − r²) Z_⊥), where Z_R is R standardized under μ_ref and Z_⊥ is
    Gaussian noise made μ_ref-mean-zero, μ_ref-orthogonal to Z_R and unit-variance (one
    Gram–Schmidt step in L²(μ_ref)). Off supp(μ_ref) the noise is unconstrained, so R̃ may be
    arbitrarily wrong where π_ref never goes — the mechanism of reward hacking. σ and mean default
    to σ_R and E_ref R. Construction derived here.

    Raises ValueError if r ∉ [−1, 1], R is constant under μ_ref, or supp(μ_ref) has < 3 points
    (then no orthogonal unit noise exists for |r| < 1).
    """
    mu_ref = _occ("mu_ref", mu_ref)
    R = _reward("true_reward", true_reward, mu_ref.shape)
    r = float(r)
    if not (np.isfinite(r) and -1.0 <= r <= 1.0):
        raise ValueError(f"r must lie in [-1, 1], got {r!r}")
    mR, sR = reference_moments(R, mu_ref)
    if sR <= 1e-12:
        raise ValueError(f"true_reward is constant on the support of mu_ref (std {sR!r}); no proxy has a defined correlation")
    z = (R - mR) / sR
    noise = np.zeros_like(R)
    if r * r < 1.0:
        if int(np.count_nonzero(mu_ref > 0)) < 3:
            raise ValueError("mu_ref must have at least 3 support points to build a proxy with |r| < 1")
        for _ in range(100):
            e = rng.standard_normal(R.shape)
            e = e - np.sum(mu_ref * e)
            e = e - np.sum(mu_ref * e * z) * z
            n2 = float(np.sum(mu_ref * e * e))
            if n2 > 1e-12:
                noise = e / np.sqrt(n2)
                break
        else:  # pragma: no cover - probability zero
            raise RuntimeError("could not draw noise orthogonal to the true reward")
    s = sR if sigma is None else float(sigma)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"sigma must be > 0 and finite, got {sigma!r}")
    m = mR if mean is None else float(mean)
    return m + s * (r * z + np.sqrt(max(1.0 - r * r, 0.0)) * noise)


def prescribed_lambda(sigma_proxy: float, r: float, *, include_r: bool = True) -> float:
    """The regularization coefficient of the √χ² objective that maximizes the bound.

    λ = σ_R̃ √(1 − r²) / r  (``include_r=True``, derived here: multiply the right-hand side of the
    bound of :func:`lower_bound` by σ_R̃ / r). ``include_r=False`` returns σ_R̃ √(1 − r²), the
    coefficient of the paper and of tracker issue #4; it maximizes the second bound of the module
    docstring, (1/r)[ΔJ(R̃)/σ_R̃ − √(1−r²)√χ²] (derived here). Both optimizers provably never
    reward-hack; the 1/r form is larger (more conservative) for r < 1. Requires 0 < r <= 1 and
    σ_R̃ > 0.

    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §5 (after Theorem 5.1).
    """
    s, rr = float(sigma_proxy), float(r)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"sigma_proxy must be > 0 and finite, got {sigma_proxy!r}")
    if not (np.isfinite(rr) and 0.0 < rr <= 1.0):
        raise ValueError(f"r must lie in (0, 1] for a prescribed lambda, got {r!r}")
    lam = s * np.sqrt(max(1.0 - rr * rr, 0.0))
    return float(lam / rr if include_r else lam)


def lower_bound(proxy_improvement: float, r: float, sigma_true: float, sigma_proxy: float, chi2: float) -> float:
    """Right-hand side of Theorem 5.1 in units of the true reward:

        J(π,R) − J(π_ref,R)  ≥  σ_R [ r ΔJ(R̃) / σ_R̃ − √(1 − r²) √χ² ].

    Scalars in, scalar out. Returns −∞ when χ² = ∞. Raises ValueError for r ∉ [−1, 1], σ <= 0,
    χ² < 0 or NaN, or a non-finite proxy_improvement.
    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, Theorem 5.1 (statement
    reconstructed and proved here, see the module docstring).
    """
    if not (-1.0 <= r <= 1.0):
        raise ValueError(f"r must lie in [-1, 1], got {r!r}")
    if not (np.isfinite(sigma_true) and np.isfinite(sigma_proxy) and sigma_true > 0 and sigma_proxy > 0):
        raise ValueError(f"sigma_true and sigma_proxy must be > 0, got {sigma_true!r}, {sigma_proxy!r}")
    if not np.isfinite(proxy_improvement):
        raise ValueError(f"proxy_improvement must be finite, got {proxy_improvement!r}")
    if not (chi2 >= 0):
        raise ValueError(f"chi2 must be >= 0, got {chi2!r}")
    if np.isinf(chi2):
        return float("-inf")
    return float(sigma_true * (r * proxy_improvement / sigma_proxy - np.sqrt(max(1.0 - r * r, 0.0)) * np.sqrt(chi2)))


@dataclass(frozen=True)
class BoundCheck:
    """Theorem 5.1 evaluated for one policy.

    true_improvement = J(π,R) − J(π_ref,R); proxy_improvement likewise for R̃; correlation = r;
    chi2 = χ²(μ_π‖μ_ref); bound = :func:`lower_bound`; slack = true_improvement − bound (>= 0 by
    the theorem); holds = slack >= −tol; reward_hacking = true_improvement < 0.
    """

    true_improvement: float
    proxy_improvement: float
    correlation: float
    sigma_true: float
    sigma_proxy: float
    chi2: float
    bound: float
    slack: float
    holds: bool
    reward_hacking: bool


def improvement_bound(
    true_reward: np.ndarray, proxy_reward: np.ndarray, mu: np.ndarray, mu_ref: np.ndarray, tol: float = 1e-8
) -> BoundCheck:
    """Evaluate both sides of Theorem 5.1 for the occupancy μ = μ_π against μ_ref.

    ``holds`` is ``slack >= -tol``; the default 1e-8 allows for round-off in σ_R, σ_R̃ (square
    roots of μ_ref-variances carry about half of float64's digits): at |r| = 1 the bound is
    attained and the slack is pure round-off (seen: −2.7e-9).
    Shapes: all (S, A). χ² is +∞ (bound −∞) if μ has mass outside supp(μ_ref).
    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, Theorem 5.1.
    """
    mu_ref = _occ("mu_ref", mu_ref)
    mu = _occ("mu", mu)
    if mu.shape != mu_ref.shape:
        raise ValueError(f"mu must have the shape of mu_ref {mu_ref.shape}, got {mu.shape}")
    R = _reward("true_reward", true_reward, mu.shape)
    Rt = _reward("proxy_reward", proxy_reward, mu.shape)
    r = proxy_correlation(R, Rt, mu_ref)
    _, sR = reference_moments(R, mu_ref)
    _, sP = reference_moments(Rt, mu_ref)
    dR = float(np.sum((mu - mu_ref) * R))
    dP = float(np.sum((mu - mu_ref) * Rt))
    c2 = float(_chi2(mu.ravel() / mu.sum(), mu_ref.ravel() / mu_ref.sum()))
    b = lower_bound(dP, r, sR, sP, c2)
    slack = dR - b
    return BoundCheck(
        true_improvement=dR, proxy_improvement=dP, correlation=r, sigma_true=sR, sigma_proxy=sP, chi2=c2, bound=b,
        slack=float(slack), holds=bool(slack >= -tol), reward_hacking=bool(dR < 0),
    )


def is_reward_hacking(true_reward: np.ndarray, mu: np.ndarray, mu_ref: np.ndarray, tol: float = 0.0) -> bool:
    """Reward hacking (§4): J(π, R) < J(π_ref, R) − tol, with J(π,R) = ⟨μ_π, R⟩.

    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §4 (Definition of reward hacking).
    """
    mu_ref = _occ("mu_ref", mu_ref)
    mu = _occ("mu", mu)
    R = _reward("true_reward", true_reward, mu.shape)
    return bool(float(np.sum(mu * R)) < float(np.sum(mu_ref * R)) - tol)


# ----------------------------------------------------------------------------- instances
@dataclass(frozen=True, eq=False)
class ProxyInstance:
    """A random MDP with a true reward, an r-correlated proxy and a reference policy.

    ``mdp.r`` is the proxy; ``correlation`` is the measured Corr_{μ_ref}(R, R̃) (= r exactly).
    Shapes: true_reward, proxy_reward, pi_ref, reference_occupancy (S, A).
    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §4 (see :func:`random_proxy_instance`).
    """

    mdp: TabularMDP
    true_reward: np.ndarray
    proxy_reward: np.ndarray
    pi_ref: np.ndarray
    reference_occupancy: np.ndarray
    correlation: float


def random_proxy_instance(
    num_states: int,
    num_actions: int,
    r: float,
    rng: np.random.Generator,
    *,
    gamma: float = 0.9,
    concentration: float = 0.3,
    reference_concentration: float = 1.0,
) -> ProxyInstance:
    """Random MDP (Dirichlet(concentration) rows), Gaussian true reward, Dirichlet π_ref, and a
    proxy with Corr_{μ_ref}(R, R̃) = r exactly and σ_R̃ = σ_R (derived here).

    μ_ref is the normalized discounted occupancy of π_ref (:func:`rlref.solve.occupancy_measure`);
    the proxy is :func:`correlated_proxy`. (Moved here from ``rlref.envs.tomato``: an env is a
    pure builder and may not solve.)

    Shapes: -> ProxyInstance with (S, A) arrays. Raises ValueError on a count < 1,
    S·A < 3 or a concentration <= 0.
    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §4 (r-correlated proxies).
    """
    S = check_count("num_states", num_states)
    A = check_count("num_actions", num_actions)
    if S * A < 3:
        raise ValueError(f"num_states * num_actions must be >= 3 for a proxy with |r| < 1, got {S * A}")
    check_positive("concentration", concentration)
    check_positive("reference_concentration", reference_concentration)
    P = rng.dirichlet(np.full(S, concentration), size=(S, A))
    R = rng.normal(size=(S, A))
    pi_ref = rng.dirichlet(np.full(A, reference_concentration), size=S)
    pi_ref = np.maximum(pi_ref, 1e-6)
    pi_ref /= pi_ref.sum(axis=1, keepdims=True)
    base = TabularMDP(P, R, gamma=gamma)
    mu_ref = occupancy_measure(base, pi_ref)
    Rt = correlated_proxy(R, mu_ref, r, rng)
    mdp = TabularMDP(P, Rt, gamma=gamma, name=f"random-proxy-r{r:.2f}")
    return ProxyInstance(
        mdp=mdp, true_reward=R, proxy_reward=Rt, pi_ref=pi_ref, reference_occupancy=mu_ref, correlation=proxy_correlation(R, Rt, mu_ref)
    )


def tomato_reference_policy(env, *, temperature: float = 0.02, uniform_weight: float = 0.5) -> np.ndarray:
    """A mediocre, safe reference policy: (1 − w)·softmax(Q*_true/τ) + w·uniform.

    ``env`` is a :class:`rlref.envs.tomato.TomatoGridworld` (anything with ``mdp`` and
    ``true_reward``). Q*_true is the optimal Q of the *true* reward (:func:`rlref.solve.value_iteration`,
    ε = 1e-10) and the softmax is the tilt :func:`rlref.solve.soft_greedy` of the uniform policy;
    mixing with the uniform policy makes π_ref stochastic with full support (so χ² against it is
    finite) and far from optimal, like the behavior-cloned reference policies of the paper
    (derived here). Moved here from ``rlref.envs.tomato`` (an env may not solve).

    Shapes: -> pi_ref[s, a]. Raises ValueError if temperature <= 0 or uniform_weight ∉ (0, 1].
    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §6 (tomato environment).
    """
    tau = check_positive("temperature", temperature)
    if not (0.0 < uniform_weight <= 1.0):
        raise ValueError(f"uniform_weight must lie in (0, 1], got {uniform_weight!r}")
    mdp = env.mdp
    true_mdp = TabularMDP(mdp.P, env.true_reward, gamma=mdp.gamma, mu0=mdp.mu0, name=f"{mdp.name}-true")
    q = value_iteration(true_mdp, epsilon=1e-10, strict=True).q
    return (1.0 - uniform_weight) * soft_greedy(q, None, tau) + uniform_weight / mdp.num_actions


# ----------------------------------------------------------------------------- χ²-regularized bandit optimum
# (moved here from the token-tree-objectives reproduction, where it was a cvxpy program: experiments hold no library logic)
def chi2_regularized_optimum(pi_ref: np.ndarray, r: np.ndarray, lam: float) -> np.ndarray:
    """The maximizer over the simplex of  Σ_y p(y) r(y) − λ · χ²(p ‖ π_ref),  χ²(p‖q) = Σ_y p(y)²/q(y) − 1.

    KKT (derived here): r(y) − 2λ p(y)/π_ref(y) − ν + κ(y) = 0 with κ ≥ 0, κ·p = 0, so
        p(y) = π_ref(y) · (r(y) − ν)₊ / (2λ),
    with ν the unique root of Σ_y π_ref(y) (r(y) − ν)₊ = 2λ (found exactly by sorting r: on the
    active set A = {y : r(y) > ν}, ν = (Σ_A π_ref r − 2λ) / Σ_A π_ref). Unlike the KL optimum, outcomes
    with r(y) ≤ ν get probability 0; as λ → ∞, p → π_ref. Outcomes with π_ref(y) = 0 get 0.

    Shapes: pi_ref[y], r[y], scalar lam > 0 -> p[y]. Raises ValueError for a non-distribution
    pi_ref, non-finite r, or lam <= 0.
    References: Laidlaw, Singhal, Dragan (2024), "Correlated Proxies: A New Definition and Improved
    Mitigation for Reward Hacking", arXiv 2403.03185, §5 (χ² occupancy regularization; a bandit
    is a one-state MDP); closed form derived here.
    """
    from rlref.theory.kl_regularized import _check_1d

    ref, rew = _check_1d(pi_ref, r)
    lam = check_positive("lam", lam)
    sup = ref > 0
    order = np.argsort(-rew[sup])
    rs, qs = rew[sup][order], ref[sup][order]
    cq, cqr = np.cumsum(qs), np.cumsum(qs * rs)
    nu_k = (cqr - 2.0 * lam) / cq  # ν if the active set is the top k+1 rewards
    nxt = np.append(rs[1:], -np.inf)
    k = int(np.argmax((nu_k < rs) & (nu_k >= nxt)))  # the consistent active set (exists and is unique)
    nu = nu_k[k]
    p = np.zeros_like(ref)
    p[sup] = ref[sup] * np.maximum(rew[sup] - nu, 0.0) / (2.0 * lam)
    return p / p.sum()


__all__ += ["chi2_regularized_optimum"]
