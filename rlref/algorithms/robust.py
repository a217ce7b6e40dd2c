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
from rlref.solve import soft_value

__all__ = ["DIVERGENCES", "robust_regularized_expectation"]

DIVERGENCES = ("tv", "kl", "chi2")


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
    v = as_float_array("v", v, ndim=1)
    check_finite("v", v)
    m = as_float_array("mu0", mu0, ndim=(1, 2))
    if m.shape[-1] != v.shape[0]:
        raise ValueError(f"mu0 must have last axis of length len(v) = {v.shape[0]}, got shape {m.shape}")
    check_distribution("mu0", m)
    rows = np.atleast_2d(m)
    if div == "kl":
        out = -soft_value(np.broadcast_to(-v, rows.shape), rows, lam_)
    elif div == "tv":
        out = rows @ np.minimum(v, v.min() + lam_)
    else:
        out = np.array([_chi2_row(v, row, lam_) for row in rows])
    out = np.asarray(out, dtype=np.float64)
    return float(out[0]) if m.ndim == 1 else out
