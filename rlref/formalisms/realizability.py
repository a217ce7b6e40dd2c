"""The realizability oracle: does a reward (or any objective linear in known features) induce a
given ordering of policies? An LP certificate when it does, a Farkas certificate when it does not.

Many formalisms score a finite list of policies π_1..π_n by a *linear* function of known features:
Markov rewards by J = ⟨R, m^π⟩ (features: the occupancy measure), limit-average rewards by ⟨R, ρ^π⟩
(features: the Cesàro-limit occupancy), regularised RL by ⟨R, m^π⟩ − Σ_j G_j Σ_s d^π(s) 1[π(s) = σ_j]
(the values G_j = α F(σ_j) of an arbitrary regulariser on the finitely many local distributions σ_j
that occur are free unknowns). An ordering is a set of constraints J(π_i) > J(π_j) and J(π_i) = J(π_j);
since the constraints are homogeneous in w, strict ones may be scaled to ≥ 1, so the ordering is
realizable iff the polyhedron  {w : D w ≥ 1, E w = 0}  (rows of D: φ_i − φ_j for strict pairs,
rows of E: φ_i − φ_j for ties) is non-empty. By Farkas' lemma (Gale's theorem of the alternative)
it is empty iff there are y ≥ 0, z with Dᵀy + Eᵀz = 0 and 1ᵀy > 0 — a finite, checkable proof that no
reward of that family induces the ordering. Both LPs are solved by HiGHS (scipy.optimize.linprog);
the certificate's residual ‖Dᵀy + Eᵀz‖_∞ (with 1ᵀy = 1) is returned.

References: Abel, Dabney, Harutyunyan, Ho, Littman, Precup, Singh (NeurIPS 2021), "On the
expressivity of Markov reward", Thm 4.3 (realizability of policy orderings by an LP);
Schrijver (1986), "Theory of linear and integer programming", Cor. 7.1e (Farkas' lemma);
Subramani et al. (ICLR 2024), arXiv 2310.11840, §3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linprog

from rlref._checks import as_float_array, check_finite
from rlref.formalisms.chains import chain_limit
from rlref.formalisms.objectives import occupancy_sas
from rlref.formalisms.ordering import PolicyOrdering, check_preorder, ordering_from_values
from rlref.mdp import TabularMDP
from rlref.policy import validate_policy

__all__ = [
    "RealizabilityResult",
    "as_relations",
    "linear_realizability",
    "markov_reward_realizability",
    "limit_average_realizability",
    "regularised_realizability",
    "occupancy_features",
    "limit_features",
    "regulariser_features",
]

_CERT_TOL = 1e-7


@dataclass(frozen=True, eq=False)
class RealizabilityResult:
    """Outcome of the realizability LP.

    Attributes:
      realizable: whether some weight vector w induces the ordering.
      weights: a realizing w (min ‖w‖_1 with strict gaps ≥ 1), or None.
      farkas: the Farkas multipliers (y for strict rows ≥ 0, z for tie rows), one per relation, with
        Σ y = 1 and Σ_k mult_k (φ_i − φ_j) = 0, or None when realizable.
      relations: the constraints (i, j, '>' or '=') the multipliers refer to.
      residual: ‖Dᵀy + Eᵀz‖_∞ for the certificate, or the worst violation of the realizing w (≥ 0).
      status: the HiGHS message.
    """

    realizable: bool
    weights: np.ndarray | None
    farkas: np.ndarray | None
    relations: tuple[tuple[int, int, str], ...]
    residual: float
    status: str

    def check(self, features: np.ndarray, tol: float = _CERT_TOL) -> bool:
        """Re-verify the certificate against the features (independent of the solver)."""
        phi = np.asarray(features, dtype=float)
        diffs = np.array([phi[i] - phi[j] for i, j, _ in self.relations]) if self.relations else np.zeros((0, phi.shape[1]))
        scale = max(1.0, float(np.max(np.abs(diffs), initial=0.0)))
        if self.realizable:
            g = diffs @ self.weights
            strict = np.array([k == ">" for _, _, k in self.relations], dtype=bool)
            return bool(np.all(g[strict] >= 1 - tol * scale) and np.all(np.abs(g[~strict]) <= tol * scale))
        y = self.farkas
        strict = np.array([k == ">" for _, _, k in self.relations], dtype=bool)
        return bool(np.all(y[strict] >= -tol) and abs(y[strict].sum() - 1) <= tol and np.max(np.abs(diffs.T @ y)) <= tol * scale)


def as_relations(ordering: Any, n: int) -> list[tuple[int, int, str]]:
    """Constraints from a PolicyOrdering, a score vector, a geq matrix or pairwise preferences
    [(i, j, '>' | '=' | '<')]. Raises ValueError on an index out of range, an unknown symbol or a
    relation that is not a preorder."""
    if isinstance(ordering, PolicyOrdering):
        if ordering.n != n:
            raise ValueError(f"ordering is over {ordering.n} policies, but {n} were given")
        return ordering.relations()
    if isinstance(ordering, (list, tuple)) and ordering and isinstance(ordering[0], (list, tuple)) and len(ordering[0]) == 3:
        out = []
        for k, (i, j, sym) in enumerate(ordering):
            i, j = int(i), int(j)
            if not (0 <= i < n and 0 <= j < n):
                raise ValueError(f"preference {k} = ({i}, {j}, {sym!r}) refers to a policy outside 0..{n - 1}")
            if sym == "<":
                i, j, sym = j, i, ">"
            if sym not in (">", "="):
                raise ValueError(f"preference {k} has symbol {sym!r}; use '>', '<' or '='")
            out.append((i, j, sym))
        return out
    arr = np.asarray(ordering)
    if arr.ndim == 2:
        return PolicyOrdering(geq=check_preorder(arr, total=False), total=False).relations()
    if arr.ndim == 1:
        if arr.size != n:
            raise ValueError(f"scores have length {arr.size}, but {n} policies were given")
        return ordering_from_values(arr.astype(float)).relations()
    raise ValueError("ordering must be a PolicyOrdering, a score vector, a geq matrix or a list of (i, j, '>'|'='|'<')")


def linear_realizability(features: Any, ordering: Any) -> RealizabilityResult:
    """Is there w with ⟨w, φ_i⟩ > ⟨w, φ_j⟩ for every strict pair and = for every tie?

    Shapes: features[n, d] (row i: the features of policy i). Returns a RealizabilityResult with
    the LP certificate (w) or the Farkas certificate (y, z). Cost: two HiGHS LPs of size (#relations, d).
    Raises RuntimeError if HiGHS fails on both the primal and the alternative system.
    """
    phi = as_float_array("features", features, ndim=2)
    check_finite("features", phi)
    n, d = phi.shape
    rel = as_relations(ordering, n)
    if not rel:
        return RealizabilityResult(realizable=True, weights=np.zeros(d), farkas=None, relations=(), residual=0.0, status="no constraints")
    diffs = np.array([phi[i] - phi[j] for i, j, _ in rel])
    strict = np.array([k == ">" for _, _, k in rel], dtype=bool)
    # primal: w = w⁺ − w⁻, min Σ(w⁺ + w⁻) s.t. D w ≥ 1, E w = 0
    D, E = diffs[strict], diffs[~strict]
    c = np.ones(2 * d)
    A_ub = np.hstack([-D, D]) if D.size else None
    b_ub = -np.ones(D.shape[0]) if D.size else None
    A_eq = np.hstack([E, -E]) if E.size else None
    b_eq = np.zeros(E.shape[0]) if E.size else None
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=[(0, None)] * (2 * d), method="highs")
    if res.status == 0:
        w = res.x[:d] - res.x[d:]
        g = diffs @ w
        viol = max(float(np.max(1 - g[strict], initial=0.0)), float(np.max(np.abs(g[~strict]), initial=0.0)))
        return RealizabilityResult(realizable=True, weights=w, farkas=None, relations=tuple(rel), residual=max(viol, 0.0), status=res.message)
    # alternative: y ≥ 0 on strict rows, z free on ties, Dᵀy + Eᵀz = 0, Σy = 1
    m = len(rel)
    bounds = [(0, None) if s else (None, None) for s in strict]
    A_eq2 = np.vstack([diffs.T, strict.astype(float)[None]])
    b_eq2 = np.concatenate([np.zeros(d), [1.0]])
    alt = linprog(np.zeros(m), A_eq=A_eq2, b_eq=b_eq2, bounds=bounds, method="highs")
    if alt.status != 0:
        raise RuntimeError(f"realizability LP failed: primal status {res.status} ({res.message}); alternative status {alt.status} ({alt.message})")
    y = alt.x
    resid = float(np.max(np.abs(diffs.T @ y)))
    return RealizabilityResult(realizable=False, weights=None, farkas=y, relations=tuple(rel), residual=resid, status=res.message)


# ----------------------------------------------------------------------------- feature maps
def occupancy_features(mdp: TabularMDP, policies: Sequence[np.ndarray], gamma: float | None = None) -> np.ndarray:
    """φ(π) = m^π(s, a, s') flattened: J_R(π) = ⟨R, m^π⟩ for every Markov reward R (discount γ)."""
    g = mdp.gamma if gamma is None else gamma
    return np.stack([occupancy_sas(mdp, validate_policy(mdp, p), g).ravel() for p in policies])


def limit_features(mdp: TabularMDP, policies: Sequence[np.ndarray]) -> np.ndarray:
    """φ(π) = ρ^π(s) π(a|s) P(s'|s, a) flattened, ρ^π the Cesàro-limit state distribution:
    the limit-average reward of R is ⟨R, φ(π)⟩ (exact, via :func:`chain_limit`)."""
    P = mdp.dense_P()
    out = []
    for p in policies:
        p = validate_policy(mdp, p)
        rho = chain_limit(np.einsum("sa,sat->st", p, P), mdp.mu0).limit
        out.append((rho[:, None, None] * p[:, :, None] * P).ravel())
    return np.stack(out)


def regulariser_features(mdp: TabularMDP, policies: Sequence[np.ndarray], gamma: float | None = None, decimals: int = 12) -> np.ndarray:
    """Features of regularised RL on a finite policy list (exact for every R and every regulariser F):
    [m^π(s, a, s') flattened | −Σ_s d^π(s) 1[π(·|s) = σ_j] for each distinct local distribution σ_j],
    so J_RRL(π) = ⟨(R, (αF(σ_j))_j), φ(π)⟩. Local distributions are matched after rounding to ``decimals``."""
    g = mdp.gamma if gamma is None else gamma
    pols = [validate_policy(mdp, p) for p in policies]
    keys: dict[tuple, int] = {}
    for p in pols:
        for s in range(mdp.num_states):
            keys.setdefault(tuple(np.round(p[s], decimals)), len(keys))
    rows = []
    for p in pols:
        m = occupancy_sas(mdp, p, g)
        d = m.sum(axis=(1, 2))
        reg = np.zeros(len(keys))
        for s in range(mdp.num_states):
            reg[keys[tuple(np.round(p[s], decimals))]] -= d[s]
        rows.append(np.concatenate([m.ravel(), reg]))
    return np.stack(rows)


def markov_reward_realizability(mdp: TabularMDP, policies: Sequence[np.ndarray], ordering: Any, gamma: float | None = None) -> RealizabilityResult:
    """Is there a Markov reward R(s, a, s') whose discounted value (discount γ, default mdp.gamma)
    orders ``policies`` as ``ordering``? The weights of a realizable result are R flattened (S·A·S).

    Example::

        res = markov_reward_realizability(mdp, [pi0, pi1, pi2], [(0, 1, '>'), (1, 2, '=')])
        R = res.weights.reshape(S, A, S) if res.realizable else None   # else res.farkas proves it
    """
    return linear_realizability(occupancy_features(mdp, policies, gamma), ordering)


def limit_average_realizability(mdp: TabularMDP, policies: Sequence[np.ndarray], ordering: Any) -> RealizabilityResult:
    """Is there a reward whose limit-average value orders ``policies`` as ``ordering``?"""
    return linear_realizability(limit_features(mdp, policies), ordering)


def regularised_realizability(mdp: TabularMDP, policies: Sequence[np.ndarray], ordering: Any, gamma: float | None = None) -> RealizabilityResult:
    """Is there a regularised-RL objective (any R, any α, any regulariser F, discount γ) ordering
    ``policies`` as ``ordering``? Exact on the finite list (see :func:`regulariser_features`)."""
    return linear_realizability(regulariser_features(mdp, policies, gamma), ordering)
