"""R2PVI: robust regularized Bellman operators on d-rectangular linear MDPs (the inner problem).

Tang, Liu & Xu (2024), "Robust Regularized Policy Iteration under d-rectangular linear MDPs"
(R2PVI), arXiv 2411.18612. The robust *regularized* Bellman operator

    Q_h(s, a) = r_h(s, a) + Σ_i φ_i(s, a) · inf_μ { E_μ V_{h+1} + λ D(μ ‖ μ⁰_{h,i}) }

replaces the uncertainty set of a constrained DRMDP by a penalty λ D. This module computes the
inner problem inf_μ E_μ v + λ D(μ‖μ0) exactly, for

* TV:  D = ½ Σ |μ − μ0|. Closed form (derived here): moving mass from s to argmin v gains
  v(s) − min v per unit and costs λ, so  inf = E_{μ0}[min(v, min_s v + λ)]  (min over ALL states:
  TV lets μ leave supp μ0): the one-dimensional dual over a clipping level α, at its optimum
  α = min v + λ (the value is clipped at α; derived here).
* KL:  D = Σ μ log(μ/μ0).  inf = −λ log E_{μ0} e^{−v/λ}  (Donsker–Varadhan; = −soft_value(−v, μ0, λ)).
* χ²:  D = Σ (μ − μ0)²/μ0 (μ ≪ μ0). Dual (derived here by a Lagrange multiplier η on Σμ = 1):
      inf = max_η  η + E_{μ0}[ψ(v − η)],   ψ(u) = u − u²/(4λ) for u ≤ 2λ,  λ for u > 2λ,
  with the optimal μ = μ0 · max(0, 1 − (v − η)/(2λ)); η solves E_{μ0}[max(0, 1 − (v − η)/(2λ))] = 1,
  a monotone piecewise-linear equation solved by bracketing in [min v, max v].

If the paper scales a divergence differently (e.g. TV without the ½), the conversion is λ_here = 2·λ_paper
for TV; KL and χ² are as written above (docs/r2pvi.md).

References: Tang, Liu & Xu (2024), arXiv 2411.18612, Sec. 3 (RRBE) and Prop. 3.2–3.4 (duals);
Donsker & Varadhan (1975); Duchi & Namkoong (2021) (χ² DRO dual).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from rlref._checks import as_float_array, check_choice, check_distribution, check_finite, check_positive
from rlref.solve import soft_value, soft_value_unchecked

__all__ = ["DIVERGENCES", "robust_regularized_expectation"]

DIVERGENCES = ("tv", "kl", "chi2")


def _check_v_mu0(v: object, mu0: object) -> tuple[np.ndarray, np.ndarray]:
    """v[S] finite and mu0[S] or mu0[d, S] distributions over v's states (ValueError naming them)."""
    v = as_float_array("v", v, ndim=1)
    check_finite("v", v)
    m = as_float_array("mu0", mu0, ndim=(1, 2))
    if m.shape[-1] != v.shape[0]:
        raise ValueError(f"mu0 must have last axis of length len(v) = {v.shape[0]}, got shape {m.shape}")
    check_distribution("mu0", m)
    return v, m


def _chi2_row(v: np.ndarray, mu0: np.ndarray, lam: float) -> float:
    sup = mu0 > 0
    vs, ps = v[sup], mu0[sup]
    if np.ptp(vs) == 0.0:
        return float(vs[0])

    def h(eta: float) -> float:
        return float(ps @ np.maximum(0.0, 1.0 - (vs - eta) / (2.0 * lam)) - 1.0)

    eta = brentq(h, float(vs.min()), float(vs.max()), xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500)
    u = vs - eta
    psi = np.where(u <= 2.0 * lam, u - u**2 / (4.0 * lam), lam)
    return float(eta + ps @ psi)


def robust_regularized_expectation(v: np.ndarray, mu0: np.ndarray, lam: float, divergence: str) -> np.ndarray | float:
    """inf_μ { E_μ v + λ D(μ ‖ μ0) } over distributions μ, for D ∈ {"tv", "kl", "chi2"} (module docstring).

    TV(μ, μ0) = ½Σ|μ − μ0|,  KL = Σ μ log(μ/μ0),  χ² = Σ (μ − μ0)²/μ0. Always ≤ E_{μ0} v (take μ = μ0) and
    ≥ min_s v (KL, χ²: min over supp μ0).
    Shapes: v[S], mu0[S] or mu0[d, S] (one factor distribution per row) -> float or [d].
    Raises ValueError if v is not finite, mu0 is not a distribution of v's length, lam <= 0 or not
    finite, or divergence is not one of "tv", "kl", "chi2".
    References: Tang, Liu & Xu (2024), arXiv 2411.18612, Prop. 3.2–3.4; derived here (TV closed form, χ² dual).
    """
    div = check_choice("divergence", divergence, DIVERGENCES)
    lam_ = check_positive("lam", lam)
    v, m = _check_v_mu0(v, mu0)
    rows = np.atleast_2d(m)
    if div == "kl":
        out = -soft_value(np.broadcast_to(-v, rows.shape), rows, lam_)
    elif div == "tv":
        out = rows @ np.minimum(v, v.min() + lam_)
    else:
        out = np.array([_chi2_row(v, row, lam_) for row in rows])
    out = np.asarray(out, dtype=np.float64)
    return float(out[0]) if m.ndim == 1 else out


# ----------------------------------------------------------------------------- R2PVI (finite horizon)
from dataclasses import dataclass  # noqa: E402

from rlref._checks import check_at_least, check_count  # noqa: E402
from rlref.linear import LinearMDP  # noqa: E402


@dataclass(frozen=True)
class RobustPlan:
    """values[h, s], q[h, s, a], policy[h, s, a] (greedy) of a robust regularized backward induction.

    ``regressions`` counts the ridge regressions on the data that an offline planner ran (0 for the exact
    DPs): each is one pass ŵ = Λ⁻¹ Σ_k φ(s_k, a_k) y_k over the K transitions (K·d multiply-adds, then a
    d×d mat-vec), the operation whose count separates R2PVI from the constrained DRMDP baselines.
    """

    values: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    regressions: int = 0


def _greedy(q: np.ndarray) -> np.ndarray:
    pi = np.zeros_like(q)
    np.put_along_axis(pi, np.argmax(q, axis=-1)[..., None], 1.0, axis=-1)
    return pi


def _check_factors(lin: LinearMDP) -> tuple[np.ndarray, np.ndarray, int]:
    if lin.horizon is None:
        raise ValueError("lin must be a finite-horizon LinearMDP (horizon=H), got horizon=None")
    phi, mu = np.asarray(lin.phi), np.asarray(lin.mu)
    if np.any(phi < -1e-12) or not np.allclose(phi.sum(-1), 1.0, atol=1e-9):
        raise ValueError("d-rectangular R2PVI needs phi[s, a] on the simplex (phi >= 0, rows summing to 1)")
    check_distribution("lin.mu", mu)
    return phi, mu, int(lin.horizon)


def robust_regularized_dp(lin: LinearMDP, lam: float, divergence: str) -> RobustPlan:
    """Exact robust regularized backward induction with the true factors μ⁰_i (the R2PVI target):
    Q_h = r + Σ_i φ_i inf_μ {E_μ V_{h+1} + λ D(μ‖μ⁰_i)}, V_h = max_a Q_h, V_H = 0.

    Shapes: lin.phi[s, a, d] (rows on the simplex), lin.mu[d, s'] (rows distributions) -> RobustPlan.
    References: Tang, Liu & Xu (2024), arXiv 2411.18612, Sec. 3 (robust regularized Bellman equation).
    """
    return _robust_backward_induction(lin, lambda v, mu: robust_regularized_expectation(v, mu, lam, divergence))


def _robust_backward_induction(lin: LinearMDP, inner) -> RobustPlan:
    """Q_h = r + φ · inner(V_{h+1}, μ⁰) (inner(v, μ⁰)[i] the robust expectation under factor i), V_h = max_a Q_h, V_H = 0."""
    phi, mu, H = _check_factors(lin)
    S, A, _ = phi.shape
    r = np.einsum("sad,d->sa", phi, np.asarray(lin.theta))
    V = np.zeros((H + 1, S))
    Q = np.zeros((H, S, A))
    for h in range(H - 1, -1, -1):
        Q[h] = r + phi @ inner(V[h + 1], mu)
        V[h] = Q[h].max(axis=-1)
    return RobustPlan(values=V[:H], q=Q, policy=_greedy(Q))


def robust_value_of(lin: LinearMDP, pi: np.ndarray, lam: float, divergence: str) -> np.ndarray:
    """The robust regularized value of a fixed policy π[h, s, a]: V_h = Σ_a π (r + Σ_i φ_i z_i(V_{h+1}))."""
    phi, mu, H = _check_factors(lin)
    r = np.einsum("sad,d->sa", phi, np.asarray(lin.theta))
    V = np.zeros((H + 1, phi.shape[0]))
    for h in range(H - 1, -1, -1):
        V[h] = np.einsum("sa,sa->s", pi[h], r + phi @ robust_regularized_expectation(V[h + 1], mu, lam, divergence))
    return V[:H]


def _offline_setup(lin: LinearMDP, states, actions, next_states, beta: float, ridge: float):
    """Shared by r2pvi and drpvi: checks, the features of the data F[K, d], Λ⁻¹, the penalty β‖φ‖_{Λ⁻¹}, r."""
    beta_ = check_at_least("beta", beta, 0.0)
    ridge_ = check_positive("ridge", ridge)
    phi, _, H = _check_factors(lin)
    s, a, s2 = (np.asarray(x, dtype=np.int64).ravel() for x in (states, actions, next_states))
    if s.size == 0:
        raise ValueError("the dataset is empty: states, actions, next_states have no transitions")
    if not (s.size == a.size == s2.size):
        raise ValueError(f"states, actions, next_states must have the same length, got {s.size}, {a.size}, {s2.size}")
    S, A, d = phi.shape
    for name, x, n in (("states", s, S), ("actions", a, A), ("next_states", s2, S)):
        bad = np.flatnonzero((x < 0) | (x >= n))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] = {x[bad[0]]} is out of range [0, {n})")
    F = phi[s, a]  # [K, d]
    Lam_inv = np.linalg.inv(F.T @ F + ridge_ * np.eye(d))
    bonus = beta_ * np.sqrt(np.einsum("sad,de,sae->sa", phi, Lam_inv, phi))
    r = np.einsum("sad,d->sa", phi, np.asarray(lin.theta))
    return phi, H, s2, F, Lam_inv, bonus, r


def r2pvi(lin: LinearMDP, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray, lam: float, divergence: str,
          beta: float = 0.0, ridge: float = 1.0, num_eta: int = 64) -> RobustPlan:
    """R2PVI (offline, pessimistic): backward induction with the inner problem estimated from data.

    Data: transitions (s_k, a_k, s'_k), k < K, shared by every stage (time-homogeneous kernel); the
    reward r = ⟨φ, θ⟩ is known. With Λ = Σ_k φ_k φ_kᵀ + ridge·I, each dual's μ⁰-expectation
    E_{μ⁰_i}[g(V_{h+1})] is the ridge estimate ŵ = Λ⁻¹ Σ_k φ_k g(V_{h+1}(s'_k)), coordinate by coordinate:
    KL: g = e^{−V/λ}, ẑ_i = −λ log clip(ŵ_i, e^{−max V/λ}, 1); TV: g = min(V, min V + λ); χ²: for each
    η on a grid of ``num_eta`` points in [min V, max V], g = ψ(V − η) and ẑ_i = max_η η + ŵ_i(η).
    Then Q_h = clip(r + φᵀẑ − β‖φ‖_{Λ⁻¹}, 0, H − h) (pessimism), V_h = max_a Q_h.
    Cost: one ridge regression per stage for TV and KL, ``num_eta`` per stage for χ² (``RobustPlan.regressions``).

    Raises ValueError on an empty dataset, mismatched lengths, lam <= 0, beta < 0 or an unknown divergence.
    References: Tang, Liu & Xu (2024), arXiv 2411.18612, Alg. 1 (R2PVI) and eq. (4.1) (penalty);
    derived here: the KL clipping range, the η grid for χ².
    """
    div = check_choice("divergence", divergence, DIVERGENCES)
    lam_ = check_positive("lam", lam)
    check_count("num_eta", num_eta, minimum=2)
    phi, H, s2, F, Lam_inv, bonus, r = _offline_setup(lin, states, actions, next_states, beta, ridge)
    S, A, d = phi.shape

    def ridge_fit(y: np.ndarray) -> np.ndarray:
        return Lam_inv @ (y @ F)

    V = np.zeros((H + 1, S))
    Q = np.zeros((H, S, A))
    fits = 0
    for h in range(H - 1, -1, -1):
        v = V[h + 1]
        fits += num_eta if div == "chi2" else 1
        if div == "kl":
            w = ridge_fit(np.exp(-(v[s2] - v.min()) / lam_))
            pos = w > 0  # log clip(w, e^{-span/λ}, 1) in log space (the floor underflows for λ ≪ span)
            log_w = np.clip(np.where(pos, np.log(np.where(pos, w, 1.0)), -np.inf), -(v.max() - v.min()) / lam_, 0.0)
            z = v.min() - lam_ * log_w
        elif div == "tv":
            z = ridge_fit(np.minimum(v[s2], v.min() + lam_))
        else:
            etas = np.linspace(v.min(), v.max(), num_eta)
            u = v[s2][:, None] - etas[None, :]
            psi = np.where(u <= 2 * lam_, u - u**2 / (4 * lam_), lam_)
            z = np.max(etas[:, None] + (psi.T @ F) @ Lam_inv.T, axis=0)
        Q[h] = np.clip(r + phi @ z - bonus, 0.0, H - h)
        V[h] = Q[h].max(axis=-1)
    return RobustPlan(values=V[:H], q=Q, policy=_greedy(Q), regressions=fits)


__all__ += ["RobustPlan", "robust_regularized_dp", "robust_value_of", "r2pvi"]


# ----------------------------------------------------------------------------- the constrained DRMDP baseline
CONSTRAINED_DIVERGENCES = ("tv", "kl")


def robust_constrained_expectation(v: np.ndarray, mu0: np.ndarray, rho: float, divergence: str) -> np.ndarray | float:
    """inf_μ { E_μ v : D(μ ‖ μ0) ≤ ρ } (the uncertainty-set inner problem of a constrained DRMDP), D ∈ {"tv", "kl"}.

    Same D as :func:`robust_regularized_expectation` (TV = ½Σ|μ − μ0|, KL = Σ μ log(μ/μ0)). Duals:
    TV:  max_α E_{μ0}[min(v, α)] − ρ (α − min_s v), concave piecewise linear in α with kinks at the values of v,
         so the maximum is taken exactly over α ∈ {v(s)} (Liu & Xu 2024, DRPVI's TV dual; derived here: the kinks);
    KL:  sup_{β>0} −β log E_{μ0} e^{−v/β} − βρ (Hu & Hong 2013), a concave problem in β solved over log β, with its
         β → 0 limit (the worst state of supp μ0) included.
    Shapes: v[S], mu0[S] or mu0[d, S] -> float or [d]. Raises ValueError on rho < 0, an unknown divergence,
    or bad v / mu0 (as robust_regularized_expectation).
    References: Tang, Liu & Xu (2024), arXiv 2411.18612, Sec. 5 (the DRMDP baselines); Hu & Hong (2013) (KL dual).
    """
    from scipy.optimize import minimize_scalar

    div = check_choice("divergence", divergence, CONSTRAINED_DIVERGENCES)
    rho_ = check_at_least("rho", rho, 0.0)
    v, m = _check_v_mu0(v, mu0)
    rows = np.atleast_2d(m)
    if div == "tv":
        alphas = np.unique(v)
        vals = rows @ np.minimum(v[:, None], alphas[None, :]) - rho_ * (alphas - v.min())[None, :]
        out = vals.max(axis=1)
    else:
        out = np.empty(rows.shape[0])
        for i, row in enumerate(rows):
            sup = row > 0
            vs, ps = v[sup], row[sup]
            lo, span = vs.min(), float(np.ptp(vs))
            if span == 0.0 or rho_ == 0.0:
                out[i] = lo if span == 0.0 else ps @ vs
                continue

            def neg(t: float, vs=vs, ps=ps) -> float:  # −(−b log Σ p e^{−v/b} − bρ), the soft value of −v at temperature b
                b = np.exp(t)
                return -(-float(soft_value_unchecked(-vs, ps, b)) - b * rho_)

            res = minimize_scalar(neg, bounds=(np.log(span) - 20.0, np.log(span) + 20.0), method="bounded",
                                  options={"xatol": 1e-12, "maxiter": 2000})
            out[i] = max(-res.fun, lo)
    out = np.asarray(out, dtype=np.float64)
    return float(out[0]) if m.ndim == 1 else out


def robust_constrained_dp(lin: LinearMDP, rho: float, divergence: str) -> RobustPlan:
    """Exact backward induction of the d-rectangular constrained DRMDP: Q_h = r + Σ_i φ_i inf_{D(μ‖μ⁰_i) ≤ ρ} E_μ V_{h+1}.

    References: Tang, Liu & Xu (2024), arXiv 2411.18612, Sec. 2 (the d-rectangular DRMDP it is compared with).
    """
    return _robust_backward_induction(lin, lambda v, mu: robust_constrained_expectation(v, mu, rho, divergence))


def drpvi(lin: LinearMDP, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray, rho: float, divergence: str,
          beta: float = 0.0, ridge: float = 1.0, num_grid: int = 64) -> RobustPlan:
    """The constrained-uncertainty-set baseline (offline, pessimistic, linear): as :func:`r2pvi`, but each coordinate's
    dual has a free scalar that no closed form fixes, so it is maximized over a grid of ``num_grid`` points and every
    grid point costs one ridge regression of its integrand:
    TV: α ∈ linspace(min V, max V), ẑ_i = max_α ŵ_i(α) − ρ(α − min V), ŵ(α) = ridge fit of min(V(s'), α);
    KL: β ∈ geomspace(1e−3, 1e3)·span V, ẑ_i = max_β min V − β log clip(ŵ_i(β)) − βρ, ŵ(β) = ridge fit of e^{−(V(s') − min V)/β}.
    This per-coordinate scalar search is what makes the DRMDP baselines slower than R2PVI (paper, Sec. 6): ``num_grid``
    ridge regressions per stage (one where V_{h+1} is constant, e.g. V_H = 0), counted in ``RobustPlan.regressions``.

    Raises ValueError as r2pvi, and on rho < 0, num_grid < 2 or a divergence not in ("tv", "kl").
    References: Tang, Liu & Xu (2024), arXiv 2411.18612, Sec. 6 (DRPVI / DRVI-L baselines); Liu & Xu (2024),
    arXiv 2403.09621 (DRPVI); derived here: the grids.
    """
    div = check_choice("divergence", divergence, CONSTRAINED_DIVERGENCES)
    rho_ = check_at_least("rho", rho, 0.0)
    check_count("num_grid", num_grid, minimum=2)
    phi, H, s2, F, Lam_inv, bonus, r = _offline_setup(lin, states, actions, next_states, beta, ridge)
    S, A, _ = phi.shape
    V = np.zeros((H + 1, S))
    Q = np.zeros((H, S, A))
    fits = 0
    for h in range(H - 1, -1, -1):
        v = V[h + 1]
        lo, span = float(v.min()), float(np.ptp(v))
        fits += 1 if span == 0.0 else num_grid
        if span == 0.0:
            z = Lam_inv @ (v[s2] @ F)
        elif div == "tv":
            alphas = np.linspace(lo, float(v.max()), num_grid)
            W = Lam_inv @ (np.minimum(v[s2][:, None], alphas[None, :]).T @ F).T
            z = np.max(W - rho_ * (alphas - lo)[None, :], axis=1)
        else:
            betas = np.geomspace(1e-3, 1e3, num_grid) * span
            W = Lam_inv @ (np.exp(-(v[s2][:, None] - lo) / betas[None, :]).T @ F).T
            # log clip(W, e^{-span/β}, 1) in log space: the floor e^{-span/β} underflows to 0 for β ≪ span
            pos = W > 0
            log_w = np.where(pos, np.log(np.where(pos, W, 1.0)), -np.inf)
            log_w = np.clip(log_w, (-span / betas)[None, :], 0.0)
            z = np.max(lo - betas[None, :] * log_w - rho_ * betas[None, :], axis=1)
        Q[h] = np.clip(r + phi @ z - bonus, 0.0, H - h)
        V[h] = Q[h].max(axis=-1)
    return RobustPlan(values=V[:H], q=Q, policy=_greedy(Q), regressions=fits)


__all__ += ["CONSTRAINED_DIVERGENCES", "robust_constrained_expectation", "robust_constrained_dp", "drpvi"]
