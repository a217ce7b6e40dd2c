"""Lipschitz-regularized value functions on a metric tabular MDP: the model-error bound and a Lipschitz-projected VI.

Zheng, Wang, Xu & Huang (2023), "Is Model Ensemble Necessary? Model-based RL via a Single Model with Lipschitz
Regularized Value Function", ICLR 2023 (arXiv 2302.01244). Their insight (Sec. 4): for an L_V-Lipschitz value function
the gap between the true and the learned Bellman operators is at most γ L_V W₁(P, P̂), so a value function with a
smaller Lipschitz constant is less hurt by model error. Exactly, on a finite metric space (S, d) (derived here, the
standard simulation-lemma argument with Kantorovich-Rubinstein duality, cf. Asadi, Misra & Littman 2018, Thm. 2):

    |(T V)(s) − (T̂ V)(s)| ≤ γ max_a |E_{P(s,a)} V − E_{P̂(s,a)} V| ≤ γ Lip(V) ε,   ε = max_{s,a} W₁(P(·|s,a), P̂(·|s,a)),
    ‖V*_M − V*_M̂‖_∞ ≤ γ L_V ε / (1 − γ)   with L_V = Lip(V*_M) or Lip(V*_M̂) (either works; the smaller is used),

for the same reward in both models. W₁ is the transport LP of ``rlref.divergences.wasserstein1`` (HiGHS).

Lipschitz-regularized VI (the tabular analogue of the paper's spectral-norm / adversarial regularization, derived
here): V ← Π_L(T̂ V), with Π_L the sup-norm-optimal projection onto L-Lipschitz functions,
    Π_L f = ½ (U + W),  U(s) = min_t f(t) + L d(s, t),  W(s) = max_t f(t) − L d(s, t)
(U ≤ f ≤ W are the McShane and Whitney extensions; Π_L f is L-Lipschitz, monotone and sup-norm non-expansive, and
‖Π_L f − f‖_∞ ≤ ‖h − f‖_∞ for every L-Lipschitz h — derived here). Π_L ∘ T̂ is then a γ-contraction, so the iteration
converges to a unique V_L with Lip(V_L) ≤ L, and V_L = V*_M̂ as soon as L ≥ Lip(V*_M̂).

`lipschitz_value_iteration` runs the core driver ``rlref.solve.iterate`` with the backup :class:`LipschitzBackup` = Π_L ∘ T̂.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlref._checks import as_float_array, check_count, check_finite, check_positive
from rlref.divergences import wasserstein1 as _w1
from rlref.mdp import TabularMDP
from rlref.solve import HardBackup, bellman_q, iterate, value_iteration

__all__ = ["ModelErrorBound", "check_metric", "lipschitz_constant", "lipschitz_projection", "lipschitz_value_iteration",
           "model_error_bound", "wasserstein1"]


def check_metric(metric: np.ndarray) -> np.ndarray:
    """A finite metric d[s, t]: square, finite, symmetric, zero on the diagonal, > 0 off it, triangle inequality."""
    d = as_float_array("metric", metric, ndim=2)
    check_finite("metric", d)
    n = d.shape[0]
    if d.shape != (n, n) or n == 0:
        raise ValueError(f"metric must be a non-empty square matrix, got shape {d.shape}")
    if not np.allclose(d, d.T, atol=1e-12):
        i, j = np.unravel_index(np.argmax(np.abs(d - d.T)), d.shape)
        raise ValueError(f"metric must be symmetric: metric[{i}, {j}] = {d[i, j]} != metric[{j}, {i}] = {d[j, i]}")
    if np.any(np.diag(d) != 0):
        i = int(np.flatnonzero(np.diag(d) != 0)[0])
        raise ValueError(f"metric[{i}, {i}] must be 0, got {d[i, i]}")
    off = d[~np.eye(n, dtype=bool)]
    if off.size and off.min() <= 0:
        raise ValueError(f"metric must be > 0 off the diagonal, got min {off.min()}")
    viol = d[:, None, :] - (d[:, :, None] + d[None, :, :])  # d(i,k) − d(i,j) − d(j,k)
    if viol.max() > 1e-9:
        i, j, k = np.unravel_index(np.argmax(viol), viol.shape)
        raise ValueError(f"metric violates the triangle inequality: d[{i},{k}] > d[{i},{j}] + d[{j},{k}] by {viol.max():.3g}")
    return d


def wasserstein1(p: np.ndarray, q: np.ndarray, metric: np.ndarray) -> float:
    """W₁(p, q) over the finite metric space (S, metric): ``rlref.divergences.wasserstein1`` after ``check_metric``.

    Raises ValueError on bad p, q or metric. References: Villani (2008), Def. 6.1.
    """
    d = check_metric(metric)
    n = d.shape[0]
    for name, x in (("p", p), ("q", q)):
        if np.shape(x) != (n,):
            raise ValueError(f"{name} must have length {n} (the metric's size), got shape {np.shape(x)}")
    return _w1(p, q, d)


def lipschitz_constant(v: np.ndarray, metric: np.ndarray) -> float:
    """Lip(v) = max_{s ≠ t} |v(s) − v(t)| / d(s, t) (0 for one state)."""
    d = check_metric(metric)
    v = as_float_array("v", v, ndim=1)
    if v.shape != (d.shape[0],):
        raise ValueError(f"v must have length {d.shape[0]} (the metric's size), got shape {v.shape}")
    off = ~np.eye(d.shape[0], dtype=bool)
    return float(np.max(np.abs(v[:, None] - v[None, :])[off] / d[off])) if off.any() else 0.0


def _project(f: np.ndarray, d: np.ndarray, L: float) -> np.ndarray:
    """Π_L f = ½(U + W) on validated inputs (d a checked metric, L > 0 or inf); no checks."""
    if np.isinf(L):
        return f.copy()
    U = np.min(f[..., None, :] + L * d, axis=-1)
    W = np.max(f[..., None, :] - L * d, axis=-1)
    return 0.5 * (U + W)


def lipschitz_projection(f: np.ndarray, metric: np.ndarray, L: float) -> np.ndarray:
    """Π_L f = ½(U + W), the sup-norm-optimal L-Lipschitz approximation of f (module docstring; derived here)."""
    d = check_metric(metric)
    L_ = check_positive("L", L) if np.isfinite(L) else np.inf
    f = as_float_array("f", f, ndim=1)
    if f.shape != (d.shape[0],):
        raise ValueError(f"f must have length {d.shape[0]} (the metric's size), got shape {f.shape}")
    return _project(f, d, L_)


@dataclass(frozen=True)
class ModelErrorBound:
    """The exact ‖V*_M − V*_M̂‖_∞, the bound γ L_V ε/(1 − γ), its ingredients, and tightness = gap / bound."""

    gap: float
    bound: float
    epsilon: float
    lipschitz: float
    tightness: float


def model_error_bound(true_mdp: TabularMDP, model: TabularMDP, metric: np.ndarray) -> ModelErrorBound:
    """Check ‖V*_M − V*_M̂‖_∞ ≤ γ L_V max_{s,a} W₁(P, P̂)/(1 − γ) exactly (module docstring); same reward required.

    Raises ValueError if the two MDPs differ in shape, γ or reward, or γ is not in (0, 1).
    """
    P, Ph = true_mdp.dense_P(), model.dense_P()
    if P.shape != Ph.shape:
        raise ValueError(f"true_mdp and model must have the same shape, got {P.shape} and {Ph.shape}")
    g = float(true_mdp.gamma)
    if not (0 < g < 1) or g != float(model.gamma):
        raise ValueError(f"both MDPs need the same discount gamma in (0, 1), got {true_mdp.gamma} and {model.gamma}")
    if not np.allclose(true_mdp.r, model.r):
        raise ValueError("the bound is for a model of the dynamics only: the expected rewards true_mdp.r and model.r must be equal")
    d = check_metric(metric)
    S, A = P.shape[:2]
    eps = max(wasserstein1(P[s, a], Ph[s, a], d) for s in range(S) for a in range(A))
    v, vh = value_iteration(true_mdp, epsilon=1e-11).values, value_iteration(model, epsilon=1e-11).values
    L_V = min(lipschitz_constant(v, d), lipschitz_constant(vh, d))
    bound = g * L_V * eps / (1 - g)
    gap = float(np.abs(v - vh).max())
    return ModelErrorBound(gap=gap, bound=bound, epsilon=eps, lipschitz=L_V, tightness=gap / bound if bound > 0 else float("nan"))


class LipschitzBackup:
    """The projected backup Π_L ∘ T̂ for the driver ``rlref.solve.iterate``: value(q) = Π_L(max_a q),
    policy(q) = the greedy policy for q (``rlref.solve.HardBackup``), slack its greedy slack.

    Π_L is monotone, commutes with constants (Π_L(f + c) = Π_L f + c) and is a sup-norm non-expansion
    (module docstring), so Π_L ∘ T̂ is a monotone γ-contraction with the shift property: the driver's
    sup-norm certificate ‖V_k − V_L‖_∞ ≤ γ‖T V − V‖_∞/(1 − γ) holds for its fixed point V_L (derived here;
    Puterman 1994, Thm 6.3.1, applies to any γ-contraction). The driver's ``suboptimality_bound`` is about
    the fixed point of the backup, V_L, not V*_M̂; it is not reported. Inputs assumed validated.
    """

    kind = "lipschitz"

    def __init__(self, mdp: TabularMDP, metric: np.ndarray, L: float) -> None:
        self.d, self.L, self.hard = metric, float(L), HardBackup(mdp)

    def value(self, q: np.ndarray, h: int | None = None) -> np.ndarray:
        return _project(self.hard.value(q), self.d, self.L)

    def policy(self, q: np.ndarray, h: int | None = None) -> np.ndarray:
        return self.hard.policy(q)

    def slack(self, q: np.ndarray, pi: np.ndarray) -> float:
        return self.hard.slack(q, pi)


@dataclass(frozen=True)
class LipschitzPlan:
    """values V_L (the fixed point of Π_L ∘ T), q = r + γ P V_L, iterations, the final sup-norm step
    ``residual`` = ‖V_k − V_{k−1}‖_∞ and ``value_error_bound`` = γ · residual / (1 − γ) ≥ ‖values − V_L‖_∞."""

    values: np.ndarray
    q: np.ndarray
    iterations: int
    residual: float
    value_error_bound: float


def lipschitz_value_iteration(mdp: TabularMDP, metric: np.ndarray, L: float, tol: float = 1e-10, max_iter: int = 100_000) -> LipschitzPlan:
    """V_{k+1} = Π_L(T V_k) (T the hard Bellman backup) to ‖V_{k+1} − V_k‖_∞ ≤ tol, run by ``rlref.solve.iterate``
    with :class:`LipschitzBackup` (a γ-contraction; the driver's sup-norm rule 2γ‖d‖/(1 − γ) ≤ ε is this rule
    with ε = 2γ tol/(1 − γ)). ``L = inf`` is plain value iteration.

    Raises ValueError on L <= 0, a bad metric or γ not in [0, 1); RuntimeError if max_iter passes first (or the
    float64 fixed point is reached with the step still above tol).
    """
    d = check_metric(metric)
    tol = check_positive("tol", tol)
    check_count("max_iter", max_iter)
    L_ = check_positive("L", L) if np.isfinite(L) else np.inf
    if mdp.horizon is not None or not (0 <= float(mdp.gamma) < 1):
        raise ValueError(f"lipschitz_value_iteration needs a discounted MDP with gamma in [0, 1), got gamma={mdp.gamma}")
    if d.shape[0] != mdp.num_states:
        raise ValueError(f"metric must be {mdp.num_states} x {mdp.num_states}, got {d.shape}")
    g = float(mdp.gamma)
    out = iterate(mdp, LipschitzBackup(mdp, d, L_), np.zeros(mdp.num_states), epsilon=2.0 * g * tol / (1.0 - g),
                  max_iter=max_iter, strict=True, method="lipschitz_value_iteration")
    return LipschitzPlan(values=out.values, q=bellman_q(mdp, out.values), iterations=out.iterations,
                         residual=out.bellman_residual, value_error_bound=out.value_error_bound)


__all__ += ["LipschitzBackup", "LipschitzPlan"]
