"""Constrained RLHF with KL objectives: μ-PPO, ξ-PPO, All-PPO and the Nelder–Mead proxy-point search (NM-PPO).

Moskovitz et al. (2023) combine component reward models R_1..R_K whose usefulness ends at their
*proxy points* θ_k (past θ_k, more proxy reward means worse human ratings). Instead of a fixed
weighting they solve a constrained problem whose Lagrange multipliers are the dynamic weights.
Here every inner problem is solved *exactly* on a distribution over responses (a bandit, or the
sequence distribution of a token tree, where the sequence-level tilt equals the token-level soft
Bellman solution), with the Lagrangian dual as a few-dimensional smooth convex program:

* :func:`mu_ppo` — max_π −β·KL(π‖π_ref) s.t. E_π[R_k] ≥ θ_k (multipliers μ_k ≥ 0): stay as close to
  the reference as possible while every component reaches its proxy point;
* :func:`xi_ppo` — the same with equalities E_π[R_k] = θ_k (free multipliers ξ_k): every component
  is held exactly at its proxy point (inequalities can overshoot a component not yet binding);
* :func:`all_ppo` — every signal constrained, the KL included: max_π Σ_k w_k E_π[R_k] s.t.
  E_π[R_k] ≤ θ_k and KL(π‖π_ref) ≤ ε;
* :func:`nm_ppo` — the proxy points are unknown: a Nelder–Mead search over θ
  (``scipy.optimize.minimize(method="Nelder-Mead")``) maximizes a black-box evaluation of the
  ξ-PPO (or μ-PPO) solution π*(θ).

The solution of each is a tilt π ∝ π_ref·exp(Σ_k ν_k R_k / β) (``rlref.solve.soft_greedy``), whose
log-partition is ``rlref.solve.soft_value``; the dual d(ν) = ν·θ − β log Z(ν) is concave with
gradient θ − E_π[R], minimized (negated) by L-BFGS-B under the sign bounds of each constraint type.

What is derived here: the paper's text gives the three formulations as Lagrangian relaxations
trained with PPO and a learned multiplier per constraint; its equations were not recovered in
this session (only its abstract and introduction could be read), so the exact forms above are our
reading of the names ("μ": inequality multipliers, "ξ": equality multipliers, "All": every signal,
the KL included, as a constraint). The exact inner solves (in place of PPO with multiplier
gradient steps) and the NM-PPO evaluation of a θ by its exact constrained optimum (in place of a
window of training steps in one run) are derived here. The KL-free composite form
max Σ w_k J_k s.t. J_k ≤ θ_k on an MDP stays ``rlref.algorithms.constrained.solve_composite``
(an occupancy LP) with ``lagrangian_primal_dual`` as its primal-dual method.

References: Moskovitz, Singh, Strouse, Sandholm, Salakhutdinov, Dragan, McAleer (2023),
"Confronting Reward Model Overoptimization with Constrained RLHF", arXiv 2310.04373, Sec. 4
(constrained formulations, Lagrange multipliers as weights) and Sec. 5 (NM-PPO); release
github.com/tedmoskovitz/ConstrainedRL4LMs (located; only its README was read); Boyd &
Vandenberghe (2004), Sec. 5.2 (Lagrange dual), Ex. 5.5 (entropy maximization dual).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from rlref._checks import as_distribution, as_float_array, check_count, check_finite, check_positive
from rlref.algorithms.constrained import InfeasibleCMDPError
from rlref.divergences import kl
from rlref.solve import soft_greedy, soft_value

__all__ = [
    "SENSES",
    "ConstrainedRLHFResult",
    "NMPPOResult",
    "kl_constrained_rewards",
    "mu_ppo",
    "xi_ppo",
    "all_ppo",
    "nm_ppo",
]

SENSES = (">=", "=", "<=")


@dataclass(frozen=True)
class ConstrainedRLHFResult:
    """Exact solution of a constrained-RLHF problem on a distribution over responses.

    ``policy[y]``; ``multipliers[k]`` (the dynamic weights of the components: the policy is
    π_ref·exp(Σ_k multipliers_k R_k / β)/Z, β the KL coefficient or, for All-PPO, the KL multiplier);
    ``values[k]`` = E_π[R_k]; ``kl`` = KL(π‖π_ref); ``objective`` (the primal value);
    ``dual_value``; ``duality_gap`` = |primal − dual|; ``constraint_violation`` (max over constraints,
    KL budget included for All-PPO); ``kl_multiplier`` (All-PPO's η, else β); ``method``; ``status``.
    """

    policy: np.ndarray
    multipliers: np.ndarray
    values: np.ndarray
    kl: float
    objective: float
    dual_value: float
    duality_gap: float
    constraint_violation: float
    kl_multiplier: float
    method: str
    status: str


@dataclass(frozen=True)
class NMPPOResult:
    """Result of :func:`nm_ppo`: the proxy points found (``thresholds``), the inner solution there
    (``inner``), its ``evaluation``, the Nelder–Mead ``iterations``/``evaluations`` and ``status``."""

    thresholds: np.ndarray
    inner: ConstrainedRLHFResult
    evaluation: float
    iterations: int
    evaluations: int
    status: str


def _check_problem(pi_ref: object, rewards: object, thresholds: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ref = as_distribution("pi_ref", pi_ref, ndim=1)
    R = as_float_array("rewards", rewards, ndim=(1, 2))
    if R.ndim == 1:
        R = R[None, :]
    check_finite("rewards", R)
    if R.shape[1] != ref.shape[0]:
        raise ValueError(f"rewards must have shape [K, {ref.shape[0]}] (one row per component), got {R.shape}")
    th = as_float_array("thresholds", thresholds, ndim=(0, 1)).reshape(-1)
    check_finite("thresholds", th)
    if th.shape[0] != R.shape[0]:
        raise ValueError(f"thresholds must have {R.shape[0]} entries (one per component), got {th.shape[0]}")
    return ref, R, th


def _senses(senses: object, k: int) -> tuple[str, ...]:
    s = (senses,) * k if isinstance(senses, str) else tuple(senses)  # type: ignore[arg-type]
    if len(s) != k:
        raise ValueError(f"senses must have {k} entries (one per component), got {len(s)}")
    for i, v in enumerate(s):
        if v not in SENSES:
            raise ValueError(f"senses[{i}] must be one of {SENSES}, got {v!r}")
    return s


def _tilt(ref: np.ndarray, q: np.ndarray, temp: float) -> tuple[np.ndarray, float]:
    """π_ref·exp(q/temp)/Z and temp·log Z (the soft value)."""
    return soft_greedy(q, ref, temp), float(soft_value(q, ref, temp))


def _violation(values: np.ndarray, th: np.ndarray, senses: tuple[str, ...]) -> np.ndarray:
    out = np.empty_like(values)
    for k, s in enumerate(senses):
        d = values[k] - th[k]
        out[k] = max(-d, 0.0) if s == ">=" else (max(d, 0.0) if s == "<=" else abs(d))
    return out


def _raise_infeasible(method: str, viol: np.ndarray, values: np.ndarray, th: np.ndarray) -> None:
    k = int(np.argmax(viol))
    raise InfeasibleCMDPError(f"{method}: thresholds[{k}] = {th[k]!r} cannot be met (closest E_π[R_{k}] = {values[k]!r}, "
                              f"violation {viol[k]:.3g}); no policy absolutely continuous w.r.t. pi_ref satisfies the constraints")


def kl_constrained_rewards(pi_ref: np.ndarray, rewards: np.ndarray, thresholds: np.ndarray, senses: str | tuple[str, ...] = ">=", *,
                           beta: float = 1.0, reward: np.ndarray | None = None, tol: float = 1e-7,
                           method: str = "kl-constrained") -> ConstrainedRLHFResult:
    """max_π E_π[r_0] − β·KL(π‖π_ref) s.t. E_π[R_k] (≥ | = | ≤) θ_k for each component k, solved exactly by its dual.

    ``reward`` = r_0[Y] (default 0: the pure KL objective of μ-/ξ-PPO). Lagrangian: E_π[r_0] − β KL(π‖π_ref)
    + Σ_k ν_k (E_π[R_k] − θ_k) with ν_k ≥ 0 for "≥", ν_k ≤ 0 for "≤", free for "=". Its maximizer is
    π_ν = π_ref·exp((r_0 + Σ_k ν_k R_k)/β)/Z(ν) and the dual function is d(ν) = β log Z(ν) − ν·θ ≥ primal
    (convex; ∇d = E_{π_ν}[R] − θ), minimized by L-BFGS-B under the sign bounds. ``multipliers`` = ν.
    Strong duality holds when θ is strictly feasible (Slater); the result's ``duality_gap`` and
    ``constraint_violation`` certify the solve. A threshold beyond what any π ≪ π_ref reaches (the
    dual is then unbounded) raises :class:`~rlref.algorithms.constrained.InfeasibleCMDPError`;
    a threshold exactly at the boundary (e.g. the largest R_k) has no finite multiplier and is
    met only up to ``tol``-level violations or raises.

    Shapes: pi_ref[Y], rewards[K, Y] (or [Y]), thresholds[K], senses a string or K strings.

    References: Boyd & Vandenberghe (2004), Sec. 5.2 and Ex. 5.5 (the entropy-maximization dual);
    Moskovitz et al. (2023), arXiv 2310.04373, Sec. 4 (the multipliers as component weights).
    """
    ref, R, th = _check_problem(pi_ref, rewards, thresholds)
    s = _senses(senses, R.shape[0])
    b = check_positive("beta", beta)
    r0 = np.zeros_like(ref) if reward is None else as_float_array("reward", reward, ndim=1)
    if r0.shape != ref.shape:
        raise ValueError(f"reward must have shape {ref.shape} (one entry per response), got {r0.shape}")
    check_finite("reward", r0)
    bounds = [(0.0, None) if v == ">=" else ((None, 0.0) if v == "<=" else (None, None)) for v in s]
    sup = ref > 0
    hi, lo = R[:, sup].max(axis=1), R[:, sup].min(axis=1)
    for k, v in enumerate(s):  # one component alone out of reach: no dual solve needed to see it
        if (v != "<=" and th[k] > hi[k]) or (v != ">=" and th[k] < lo[k]):
            raise InfeasibleCMDPError(f"{method}: thresholds[{k}] = {th[k]!r} lies outside [{lo[k]!r}, {hi[k]!r}], the range of "
                                      f"rewards[{k}] on the support of pi_ref, so constraint {k} ({v}) cannot be met")

    def dual(u: np.ndarray) -> tuple[float, np.ndarray]:  # d(βu)/β: the Hessian Cov(R) does not scale with 1/β
        p, v = _tilt(ref, r0 / b + u @ R, 1.0)
        return v - float(u @ th), R @ p - th

    res = minimize(dual, np.zeros(R.shape[0]), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 3000, "ftol": 1e-15, "gtol": 1e-12})
    nu = b * np.asarray(res.x, dtype=np.float64)
    p, v = _tilt(ref, r0 + nu @ R, b)
    values = R @ p
    viol = _violation(values, th, s)
    scale = 1.0 + float(np.abs(R).max())
    if viol.max() > tol * scale:
        _raise_infeasible(method, viol, values, th)
    d = float(kl(p, ref))
    primal = float(p @ r0) - b * d
    dual_value = v - float(nu @ th)
    return ConstrainedRLHFResult(policy=p, multipliers=nu, values=values, kl=d, objective=primal, dual_value=dual_value,
                                 duality_gap=abs(primal - dual_value), constraint_violation=float(viol.max()), kl_multiplier=b,
                                 method=method, status=str(res.message))


def mu_ppo(pi_ref: np.ndarray, rewards: np.ndarray, thresholds: np.ndarray, *, beta: float = 1.0, tol: float = 1e-7) -> ConstrainedRLHFResult:
    """μ-PPO's problem: max_π −β·KL(π‖π_ref) s.t. E_π[R_k] ≥ θ_k (multipliers μ_k ≥ 0).

    Each component is pushed up only until it reaches its proxy point; a component already above
    θ_k under π_ref gets μ_k = 0. See :func:`kl_constrained_rewards` (form: our reading of Moskovitz et
    al. 2023, Sec. 4; the exact inner solve is derived here).
    """
    return kl_constrained_rewards(pi_ref, rewards, thresholds, ">=", beta=beta, tol=tol, method="mu-ppo")


def xi_ppo(pi_ref: np.ndarray, rewards: np.ndarray, thresholds: np.ndarray, *, beta: float = 1.0, tol: float = 1e-7) -> ConstrainedRLHFResult:
    """ξ-PPO's problem: max_π −β·KL(π‖π_ref) s.t. E_π[R_k] = θ_k (free multipliers ξ_k).

    Every component sits exactly at its proxy point: a correlated component that μ-PPO would carry
    past θ_k is held there by a negative ξ_k. See :func:`kl_constrained_rewards` (form: our reading of
    Moskovitz et al. 2023, Sec. 4; the exact inner solve is derived here).
    """
    return kl_constrained_rewards(pi_ref, rewards, thresholds, "=", beta=beta, tol=tol, method="xi-ppo")


def all_ppo(pi_ref: np.ndarray, rewards: np.ndarray, thresholds: np.ndarray, kl_budget: float, *, weights: np.ndarray | None = None,
            tol: float = 1e-7) -> ConstrainedRLHFResult:
    """All-PPO's problem: max_π Σ_k w_k E_π[R_k] s.t. E_π[R_k] ≤ θ_k (each k) and KL(π‖π_ref) ≤ ε.

    Every signal is a constraint, the KL included. With λ_k ≥ 0 for the components and η ≥ 0 for the
    KL, the Lagrangian's maximizer is π = π_ref·exp((w − λ)·R / η)/Z and the dual is
    g(λ, η) = η log Z + λ·θ + η ε (the perspective of the log-partition: jointly convex). It is
    minimized in two levels: over λ ≥ 0 at fixed η by :func:`kl_constrained_rewards` (reward w·R,
    "≤" constraints, β = η), then over η by a bounded 1-D search on log η (the partial minimum is convex in η).
    ``multipliers`` = w − λ (the effective weights), ``kl_multiplier`` = η. Default weights: all 1.

    Raises ValueError for a non-positive kl_budget; InfeasibleCMDPError when no π meets the constraints
    (e.g. every response has R_k > θ_k).

    References: form: our reading of Moskovitz et al. (2023), arXiv 2310.04373, Sec. 4 (derived here);
    Boyd & Vandenberghe (2004), Sec. 5.2.
    """
    ref, R, th = _check_problem(pi_ref, rewards, thresholds)
    eps = check_positive("kl_budget", kl_budget)
    K = R.shape[0]
    w = np.ones(K) if weights is None else as_float_array("weights", weights, ndim=1)
    if w.shape[0] != K:
        raise ValueError(f"weights must have {K} entries (one per component), got {w.shape[0]}")
    check_finite("weights", w)
    r0 = w @ R

    def inner(eta: float, tl: float = tol) -> ConstrainedRLHFResult:
        return kl_constrained_rewards(ref, R, th, "<=", beta=eta, reward=r0, tol=tl, method="all-ppo")

    def g(t: float) -> float:  # min over λ of the dual at η = e^t, plus η ε (convex in η)
        eta = float(np.exp(t))  # at small η the inner problem nears an LP: a looser check while searching
        return inner(eta, 1e-4).dual_value + eta * eps

    span = float(np.abs(R).max()) * (1.0 + float(np.abs(w).max())) + 1e-300
    out = minimize_scalar(g, bounds=(np.log(span) - 10.0, np.log(span) + 10.0), method="bounded", options={"xatol": 1e-12})
    eta = float(np.exp(out.x))
    r = inner(eta)
    viol = max(r.constraint_violation, max(r.kl - eps, 0.0))
    if r.kl - eps > 1e-6 * (1.0 + eps):
        raise InfeasibleCMDPError(f"all-ppo: the KL budget kl_budget = {eps!r} is exceeded (KL = {r.kl!r}) at the dual solution")
    primal = float(w @ r.values)
    dual_value = r.dual_value + eta * eps
    return ConstrainedRLHFResult(policy=r.policy, multipliers=w + r.multipliers, values=r.values, kl=r.kl, objective=primal,
                                 dual_value=dual_value, duality_gap=abs(dual_value - primal), constraint_violation=float(viol),
                                 kl_multiplier=eta, method="all-ppo", status=f"eta: {out.message}; inner: {r.status}")


def nm_ppo(pi_ref: np.ndarray, rewards: np.ndarray, evaluate: Callable[[np.ndarray], float], x0: np.ndarray, *,
           inner: str = "xi", beta: float = 1.0, max_evaluations: int = 2000, xatol: float = 1e-7, fatol: float = 1e-12,
           initial_step: float | None = None) -> NMPPOResult:
    """NM-PPO: search the proxy points θ with Nelder–Mead, scoring each by a black-box evaluation of its solution.

    f(θ) = −evaluate(π*(θ)), π*(θ) the exact :func:`xi_ppo` (``inner="xi"``) or :func:`mu_ppo` (``"mu"``)
    solution; ``scipy.optimize.minimize(f, x0, method="Nelder-Mead")``. ``evaluate`` maps a policy
    ``p[Y]`` to a float (the true, e.g. human, score the component RMs proxy for). A θ that no policy
    can meet scores +inf (Nelder–Mead then contracts away from it). ``initial_step`` sets the initial
    simplex x0 + step·e_i (default: 5% of the reward range of each component).

    In the paper the search runs inside one PPO run, each candidate θ evaluated after a window of
    training steps; here each candidate's policy is its exact constrained optimum (derived here).

    References: Moskovitz et al. (2023), arXiv 2310.04373, Sec. 5 (NM-PPO); Nelder & Mead (1965).
    """
    ref, R, th0 = _check_problem(pi_ref, rewards, x0)
    solve = {"xi": xi_ppo, "mu": mu_ppo}
    if inner not in solve:
        raise ValueError(f"inner must be 'xi' or 'mu', got {inner!r}")
    check_count("max_evaluations", max_evaluations)
    if not callable(evaluate):
        raise ValueError(f"evaluate must be callable (policy p[Y] -> float), got {type(evaluate).__name__}")
    span = R.max(axis=1) - R.min(axis=1)
    step = 0.05 * np.where(span > 0, span, 1.0) if initial_step is None else np.full(R.shape[0], check_positive("initial_step", initial_step))
    simplex = np.vstack([th0, th0 + np.diag(step)])
    best: dict = {"f": np.inf, "res": None, "th": th0}

    def f(theta: np.ndarray) -> float:
        try:
            r = solve[inner](ref, R, theta, beta=beta)
        except InfeasibleCMDPError:
            return np.inf
        val = float(evaluate(r.policy))
        if not np.isfinite(val):
            raise ValueError(f"evaluate returned {val!r} at thresholds {theta.tolist()}; it must return a finite float")
        if -val < best["f"]:
            best.update(f=-val, res=r, th=np.array(theta, dtype=np.float64))
        return -val

    res = minimize(f, th0, method="Nelder-Mead", options={"initial_simplex": simplex, "maxfev": int(max_evaluations),
                                                          "xatol": xatol, "fatol": fatol})
    if best["res"] is None:
        raise InfeasibleCMDPError(f"nm_ppo: no candidate thresholds were feasible (start x0 = {th0.tolist()})")
    return NMPPOResult(thresholds=best["th"], inner=best["res"], evaluation=-float(best["f"]), iterations=int(res.nit),
                       evaluations=int(res.nfev), status=str(res.message))
