"""Model-based vs model-free generalization from the same data (Young, Ramesh, Kirsch & Schmidhuber 2023).

Paper: K. Young, A. Ramesh, L. Kirsch, J. Schmidhuber (2023), "The Benefits of Model-Based Generalization in
Reinforcement Learning", ICML, arXiv 2211.02222, Theorem 1.1 and Figure 1.

Two exact pieces:

1. **Hypothesis pruning (the paper's theorem).** Take a class of deterministic models M and, as the value class,
   the optimal action-values of those models, Q_M = {Q*_m : m ∈ M} (both learners start from the same prior).
   Given transitions D = {(s_i, a_i, r_i, s'_i)}:

   - model-based: keep the models consistent with D, M_D = {m : r_m(s_i, a_i) = r_i, s'_m(s_i, a_i) = s'_i ∀i},
     and take their optimal values  Q_MB = {Q*_m : m ∈ M_D};
   - model-free: keep the values consistent with the Bellman optimality equation on D,
     Q_MF = {Q*_m : Q*_m(s_i, a_i) = r_i + γ max_a' Q*_m(s'_i, a') ∀i}.

   Theorem 1.1: Q_MB ⊆ Q_MF (a model consistent with D has a Q* that satisfies its own Bellman equation at every
   observed transition), and the inclusion can be strict. :func:`prune_hypotheses` computes both sets exactly.

2. **Linear least squares (derived here; cf. Parr et al. 2008, Sutton et al. 2008).** With the *same* features φ
   and the same data, the least-squares linear model μ̂ = Λ⁻¹ Φ_Dᵀ E', θ̂ = Λ⁻¹ Φ_Dᵀ r (Λ = Φ_DᵀΦ_D + λI, E' the
   one-hot next states) planned over all states gives *exactly* the model-free answer: policy evaluation in the
   fitted model equals LSTD-Q, and k sweeps of value iteration in the fitted model equal k iterations of fitted-Q
   iteration, because μ̂ V = Λ⁻¹ Φ_Dᵀ V(s'_D) for every V. So unconstrained linear generalization alone gives a
   model no advantage; the benefit of item 1 needs a model class that carries structure the value class lacks.

Datasets are four equal-length 1-D arrays ``(s, a, r, s_next)``. Shapes: ``phi[s, a, d]``, ``pi[s, a]``.

References: Young et al. (2023), Thm. 1.1; Parr, Li, Taylor, Painter-Wakefield & Littman (2008), "An analysis of
linear models, linear value-function approximation, and feature selection for RL", ICML, Sec. 3 (linear model ≡
LSTD); Sutton, Szepesvári, Geramifard & Bowling (2008), "Dyna-style planning with linear function approximation".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlref._checks import as_float_array, check_at_least, check_count, check_finite, check_gamma, check_positive
from rlref.mdp import TabularMDP
from rlref.policy import greedy_policy
from rlref.solve import policy_evaluation, value_iteration

__all__ = [
    "Dataset",
    "HypothesisPruning",
    "LinearModelFit",
    "as_dataset",
    "optimal_q_values",
    "prune_hypotheses",
    "fit_linear_model",
    "linear_model_evaluation",
    "lstd_q",
    "linear_model_value_iteration",
    "fitted_q_iteration",
]


@dataclass(frozen=True)
class Dataset:
    """Transitions (s_i, a_i, r_i, s'_i), i = 0..n−1, as four 1-D arrays of length n ≥ 1."""

    s: np.ndarray
    a: np.ndarray
    r: np.ndarray
    s_next: np.ndarray

    def __len__(self) -> int:
        return int(self.s.shape[0])


def as_dataset(data: Any, num_states: int, num_actions: int) -> Dataset:
    """Validate ``data`` = (s, a, r, s_next) (or a :class:`Dataset`) against S states and A actions.

    Raises ValueError if the dataset is empty, the arrays differ in length, an index is out of range
    (naming the array, position and value) or a reward is not finite.
    """
    if isinstance(data, Dataset):
        parts = (data.s, data.a, data.r, data.s_next)
    else:
        try:
            parts = tuple(data)
        except TypeError as e:
            raise ValueError(f"data must be a Dataset or a tuple (s, a, r, s_next), got {type(data).__name__}") from e
        if len(parts) != 4:
            raise ValueError(f"data must have four arrays (s, a, r, s_next), got {len(parts)}")
    s, a, s_next = (np.asarray(x).ravel() for x in (parts[0], parts[1], parts[3]))
    r = as_float_array("data.r", np.asarray(parts[2]).ravel(), ndim=1)
    n = s.shape[0]
    if n == 0:
        raise ValueError("data is empty: at least one transition (s, a, r, s_next) is needed")
    for name, x in (("data.a", a), ("data.r", r), ("data.s_next", s_next)):
        if x.shape[0] != n:
            raise ValueError(f"{name} has length {x.shape[0]} but data.s has length {n}")
    check_finite("data.r", r)
    out = []
    for name, x, hi in (("data.s", s, num_states), ("data.a", a, num_actions), ("data.s_next", s_next, num_states)):
        if not np.issubdtype(x.dtype, np.integer):
            if not np.all(np.isfinite(x.astype(float))) or np.any(x != np.round(x)):
                i = int(np.argmax(~np.isfinite(x.astype(float)) | (x != np.round(x))))
                raise ValueError(f"{name}[{i}] = {x[i]!r} is not an integer index")
            x = x.astype(np.int64)
        bad = (x < 0) | (x >= hi)
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ValueError(f"{name}[{i}] = {int(x[i])} is out of range [0, {hi})")
        out.append(x.astype(np.int64))
    return Dataset(s=out[0], a=out[1], r=r, s_next=out[2])


# ------------------------------------------------------------------------------------------ Theorem 1.1
@dataclass(frozen=True)
class HypothesisPruning:
    """The model-based and model-free consistent sets of :func:`prune_hypotheses`.

    Attributes:
      model_based: indices m of the models consistent with D (so Q_MB = {Q*_m : m ∈ model_based}).
      model_free: indices m whose Q*_m satisfies the Bellman optimality equation on D within ``atol``.
      q_star: Q*_m for every model, shape (K, S, A).
      bellman_residual: max_i |Q*_m(s_i, a_i) − r_i − γ max_a' Q*_m(s'_i, a')| per model, shape (K,).
      subset: whether model_based ⊆ model_free (Theorem 1.1 says always).
    """

    model_based: tuple[int, ...]
    model_free: tuple[int, ...]
    q_star: np.ndarray
    bellman_residual: np.ndarray
    subset: bool


def _deterministic_next(m: TabularMDP, k: int) -> np.ndarray:
    P = np.asarray(m.dense_P())
    nxt = P.argmax(axis=-1)
    top = np.take_along_axis(P, nxt[..., None], axis=-1)[..., 0]
    if np.any(top < 1.0 - 1e-12):
        s, a = (int(i) for i in np.argwhere(top < 1.0 - 1e-12)[0])
        raise ValueError(f"models[{k}] must be deterministic (Theorem 1.1's setting), but P(·|s={s}, a={a}) has max {top[s, a]!r} < 1")
    return nxt


def optimal_q_values(models: Sequence[TabularMDP]) -> np.ndarray:
    """Q*_m for each model, shape (K, S, A): value iteration (ε = 1e-12), then an exact evaluation of its greedy policy.

    References: Puterman (1994), Thm. 6.2.7 (a policy greedy for Q* is optimal).
    """
    return np.stack([policy_evaluation(m, greedy_policy(value_iteration(m, epsilon=1e-12).q)).q for m in models])


def prune_hypotheses(models: Sequence[TabularMDP], data: Any, *, atol: float = 1e-8, q_star: Any = None) -> HypothesisPruning:
    """Exact model-based and model-free hypothesis pruning on a finite class of deterministic models.

    M_D = {m : r_m(s_i, a_i) = r_i and s'_m(s_i, a_i) = s'_i for all i}            (model-based),
    F_D = {m : |Q*_m(s_i, a_i) − r_i − γ max_a' Q*_m(s'_i, a')| ≤ atol for all i}     (model-free),
    with Q*_m = Q^{π*_m} computed by value iteration and an exact policy evaluation of its greedy policy.
    Theorem 1.1: M_D ⊆ F_D.

    Args:
      models: K ≥ 1 deterministic discounted TabularMDPs with the same S, A and γ.
      data: (s, a, r, s_next) transitions.
      atol: tolerance for both the reward match and the Bellman residual (> 0).
      q_star: optional precomputed :func:`optimal_q_values` of ``models`` (K, S, A), to prune many datasets cheaply.
    Raises ValueError on an empty class or dataset, mismatched sizes or γ, a stochastic or finite-horizon model,
    or atol ≤ 0. Cost: K value iterations plus K dense S×S solves.
    References: Young et al. (2023), Theorem 1.1 and Figure 1.
    """
    models = list(models)
    check_count("len(models)", len(models))
    tol = check_positive("atol", atol)
    m0 = models[0]
    S, A = m0.num_states, m0.num_actions
    for k, m in enumerate(models):
        if not isinstance(m, TabularMDP):
            raise ValueError(f"models[{k}] must be a TabularMDP, got {type(m).__name__}")
        if m.horizon is not None or m.is_stage_dependent:
            raise ValueError(f"models[{k}] must be a stationary discounted MDP")
        if (m.num_states, m.num_actions) != (S, A) or m.gamma != m0.gamma:
            raise ValueError(f"models[{k}] has (S, A, gamma) = ({m.num_states}, {m.num_actions}, {m.gamma}) "
                             f"but models[0] has ({S}, {A}, {m0.gamma})")
    D = as_dataset(data, S, A)
    gamma = m0.gamma
    if q_star is None:
        q_star = optimal_q_values(models)
    q_star = as_float_array("q_star", q_star, ndim=3)
    if q_star.shape != (len(models), S, A):
        raise ValueError(f"q_star must have shape (K, S, A) = ({len(models)}, {S}, {A}), got {q_star.shape}")
    resid = np.empty(len(models))
    mb = []
    for k, m in enumerate(models):
        nxt = _deterministic_next(m, k)
        q = q_star[k]
        resid[k] = float(np.max(np.abs(q[D.s, D.a] - D.r - gamma * q[D.s_next].max(axis=1))))
        if np.all(nxt[D.s, D.a] == D.s_next) and np.all(np.abs(np.asarray(m.r)[D.s, D.a] - D.r) <= tol):
            mb.append(k)
    mf = tuple(int(k) for k in np.flatnonzero(resid <= tol))
    return HypothesisPruning(model_based=tuple(mb), model_free=mf, q_star=q_star, bellman_residual=resid,
                             subset=set(mb) <= set(mf))


# ------------------------------------------------------------------------------------- linear least squares
@dataclass(frozen=True)
class LinearModelFit:
    """Least-squares linear model P̂(s'|s, a) = ⟨φ(s, a), μ̂(s')⟩, r̂(s, a) = ⟨φ(s, a), θ̂⟩.

    mu: μ̂, shape (d, S) (signed: P̂ need not be a stochastic kernel); theta: θ̂, shape (d,);
    gram: Λ = Φ_DᵀΦ_D + λI, shape (d, d); ridge: λ.
    """

    mu: np.ndarray
    theta: np.ndarray
    gram: np.ndarray
    ridge: float


def _design(phi: Any, data: Any) -> tuple[np.ndarray, Dataset]:
    phi = as_float_array("phi", phi, ndim=3)
    check_finite("phi", phi)
    S, A, _ = phi.shape
    return phi, as_dataset(data, S, A)


def _solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    x, *_ = np.linalg.lstsq(gram, rhs, rcond=None)  # minimum-norm solution when Λ is singular (λ = 0, poor coverage)
    return x


def fit_linear_model(phi: Any, data: Any, ridge: float = 0.0) -> LinearModelFit:
    """μ̂ = Λ⁺ Φ_Dᵀ E',  θ̂ = Λ⁺ Φ_Dᵀ r,  Λ = Φ_DᵀΦ_D + λI  (least squares of one-hot next states and rewards on φ).

    Φ_D[i] = φ(s_i, a_i) (n×d), E'[i] = e_{s'_i} (n×S); Λ⁺ is the pseudo-inverse (minimum-norm fit) when Λ is
    singular. Raises ValueError if ridge < 0 or on bad phi / data.
    References: Parr et al. (2008), Sec. 3 (the least-squares linear model); derived here for next-state
    distributions μ(s') as in the linear MDP of Jin et al. (2020).
    """
    lam = check_at_least("ridge", ridge, 0.0)
    phi, D = _design(phi, data)
    S, _, d = phi.shape
    X = phi[D.s, D.a]
    E = np.zeros((len(D), S))
    E[np.arange(len(D)), D.s_next] = 1.0
    gram = X.T @ X + lam * np.eye(d)
    return LinearModelFit(mu=_solve(gram, X.T @ E), theta=_solve(gram, X.T @ D.r), gram=gram, ridge=lam)


def _policy_features(phi: np.ndarray, pi: Any) -> np.ndarray:
    pi = as_float_array("pi", pi, ndim=2)
    if pi.shape != phi.shape[:2]:
        raise ValueError(f"pi must have shape (S, A) = {phi.shape[:2]}, got {pi.shape}")
    check_finite("pi", pi)
    return np.einsum("sa,sad->sd", pi, phi)


def linear_model_evaluation(phi: Any, data: Any, pi: Any, gamma: float, ridge: float = 0.0) -> np.ndarray:
    """Q̂^π by planning in the fitted linear model over *all* states (model-based policy evaluation).

    V̂ = (I − γ P̂_π)⁻¹ r̂_π with P̂_π(s, s') = Σ_a π(a|s) ⟨φ(s, a), μ̂(s')⟩, r̂_π(s) = Σ_a π(a|s) ⟨φ(s, a), θ̂⟩;
    returns Q̂ = φ(θ̂ + γ μ̂ V̂), shape (S, A). Raises ValueError on bad input, RuntimeError if I − γ P̂_π is
    singular (the fitted kernel is signed, so this can happen).
    References: Parr et al. (2008), Sec. 3; Sutton et al. (2008) (planning with a linear model).
    """
    g = check_gamma(gamma)
    fit = fit_linear_model(phi, data, ridge)
    phi = as_float_array("phi", phi, ndim=3)
    phi_pi = _policy_features(phi, pi)
    S = phi.shape[0]
    P_pi, r_pi = phi_pi @ fit.mu, phi_pi @ fit.theta
    try:
        v = np.linalg.solve(np.eye(S) - g * P_pi, r_pi)
    except np.linalg.LinAlgError as e:
        raise RuntimeError("I − γ P̂_π of the fitted linear model is singular; add ridge > 0") from e
    return phi @ (fit.theta + g * fit.mu @ v)


def lstd_q(phi: Any, data: Any, pi: Any, gamma: float, ridge: float = 0.0) -> np.ndarray:
    """LSTD-Q (model-free): w solves (Φ_Dᵀ(Φ_D − γ Φ'_π) + λI) w = Φ_Dᵀ r, Φ'_π[i] = Σ_a' π(a'|s'_i) φ(s'_i, a');
    returns Q̂ = φ w, shape (S, A). Raises ValueError on bad input, RuntimeError if the system is singular.
    References: Lagoudakis & Parr (2003), "Least-squares policy iteration", JMLR, eq. (LSTDQ); Bradtke & Barto (1996).
    """
    g = check_gamma(gamma)
    lam = check_at_least("ridge", ridge, 0.0)
    phi, D = _design(phi, data)
    phi_pi = _policy_features(phi, pi)
    X, Xn = phi[D.s, D.a], phi_pi[D.s_next]
    Amat = X.T @ (X - g * Xn) + lam * np.eye(phi.shape[2])
    try:
        w = np.linalg.solve(Amat, X.T @ D.r)
    except np.linalg.LinAlgError as e:
        raise RuntimeError("the LSTD-Q system Φ_Dᵀ(Φ_D − γΦ'_π) + λI is singular; add ridge > 0 or more data") from e
    return phi @ w


def linear_model_value_iteration(phi: Any, data: Any, gamma: float, iterations: int, ridge: float = 0.0) -> np.ndarray:
    """k sweeps of value iteration in the fitted linear model, over all states (model-based control).

    Q_0 = 0,  V_k(s) = max_a Q_k(s, a),  Q_{k+1} = φ(θ̂ + γ μ̂ V_k)  (k = 0..iterations−1); returns Q_k, shape
    (S, A). The fitted kernel is signed, so this need not converge as k → ∞: it is a fixed-k computation.
    References: Sutton et al. (2008) (linear Dyna); derived here.
    """
    g = check_gamma(gamma)
    K = check_count("iterations", iterations, minimum=0)
    fit = fit_linear_model(phi, data, ridge)
    phi = as_float_array("phi", phi, ndim=3)
    q = np.zeros(phi.shape[:2])
    for _ in range(K):
        q = phi @ (fit.theta + g * fit.mu @ q.max(axis=1))
    return q


def fitted_q_iteration(phi: Any, data: Any, gamma: float, iterations: int, ridge: float = 0.0) -> np.ndarray:
    """k iterations of linear fitted-Q iteration on the data (model-free control).

    w_0 = 0,  y_i = r_i + γ max_a' ⟨φ(s'_i, a'), w_k⟩,  w_{k+1} = argmin_w Σ_i (⟨φ(s_i, a_i), w⟩ − y_i)² + λ‖w‖²
    (minimum-norm when singular); returns Q = φ w_k, shape (S, A).
    References: Ernst, Geurts & Wehenkel (2005), "Tree-based batch mode RL", JMLR (FQI); Young et al. (2023), Sec. 2.
    """
    g = check_gamma(gamma)
    K = check_count("iterations", iterations, minimum=0)
    lam = check_at_least("ridge", ridge, 0.0)
    phi, D = _design(phi, data)
    X = phi[D.s, D.a]
    gram = X.T @ X + lam * np.eye(phi.shape[2])
    w = np.zeros(phi.shape[2])
    for _ in range(K):
        y = D.r + g * (phi[D.s_next] @ w).max(axis=1)
        w = _solve(gram, X.T @ y)
    return phi @ w
