"""Linear MDPs and feature maps.

A linear MDP with features φ(s, a) ∈ R^d has transitions and rewards linear in φ:

    P(s' | s, a) = ⟨φ(s, a), μ(s')⟩,      r(s, a) = ⟨φ(s, a), θ⟩,

with ``mu[d, s']`` the d signed measures μ(·) over next states and ``theta[d]``. Consequently, for
*every* policy π, Q^π(s, a) = ⟨φ(s, a), w^π⟩ with w^π = θ + γ Σ_{s'} μ(s') V^π(s') (Jin, Yang,
Wang, Jordan 2020, Proposition 2.3). One-hot features φ(s, a) = e_{(s, a)} (d = S·A) make every
tabular MDP a linear MDP.

Shapes: ``phi[s, a, d]``, ``mu[d, s']``, ``theta[d]``; a finite horizon uses the same (stationary)
φ, μ, θ at every stage.

References: Jin, Yang, Wang, Jordan (2020), "Provably efficient reinforcement learning with linear
function approximation", COLT, Assumption A and Proposition 2.3; Yang & Wang (2019), "Sample-optimal
parametric Q-learning using linearly additive features", ICML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlref._checks import DIST_ATOL, as_float_array, as_generator, check_count, check_finite, check_positive, resolve_gamma
from rlref.mdp import TabularMDP
from rlref.policy import validate_policy
from rlref.solve.occupancy import state_occupancy

__all__ = [
    "LinearMDP",
    "LinearQ",
    "LinearFit",
    "one_hot_features",
    "from_tabular",
    "random_low_rank_features",
    "random_linear_mdp",
    "policy_q_weights",
    "linear_q_from_features",
    "feature_expectation",
]

#: Induced probabilities above ``-NEG_ATOL`` count as zero rather than negative (round-off).
NEG_ATOL = 1e-10


def _readonly(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float64, copy=True)
    x.setflags(write=False)
    return x


@dataclass(frozen=True, eq=False, repr=False)
class LinearMDP:
    """A linear MDP: P(s'|s,a) = ⟨φ(s,a), μ(s')⟩ and r(s,a) = ⟨φ(s,a), θ⟩.

    Args:
      phi: features ``phi[s, a, d]``.
      mu: ``mu[d, s']``; column s' is μ(s') ∈ R^d.
      theta: reward parameter ``theta[d]``.
      gamma, horizon, mu0, name: as in :class:`rlref.TabularMDP` (gamma in [0, 1) for a
        discounted MDP; ``horizon=H`` for an episodic one, gamma then defaults to 1).

    Raises:
      ValueError if shapes disagree, an entry is not finite, or the induced P is not a
      stochastic kernel (a negative ⟨φ(s,a), μ(s')⟩ below -1e-10, or a row not summing to 1),
      naming s, a, s' and the value.

    References: Jin et al. (2020), Assumption A.
    """

    phi: Any
    mu: Any
    theta: Any
    gamma: float | None = None
    horizon: int | None = None
    mu0: Any = None
    name: str = "linear_mdp"
    _tabular: TabularMDP = field(init=False, repr=False)

    def __post_init__(self) -> None:
        phi = as_float_array("phi", self.phi, ndim=3)
        mu = as_float_array("mu", self.mu, ndim=2)
        theta = as_float_array("theta", self.theta, ndim=1)
        for name, arr in (("phi", phi), ("mu", mu), ("theta", theta)):
            check_finite(name, arr)
        S, A, d = phi.shape
        if S == 0 or A == 0 or d == 0:
            raise ValueError(f"phi must have shape (S, A, d) with S, A, d >= 1, got {phi.shape}")
        if mu.shape != (d, S):
            raise ValueError(f"mu must have shape (d, S) = ({d}, {S}) to match phi {phi.shape}, got {mu.shape}")
        if theta.shape != (d,):
            raise ValueError(f"theta must have shape (d,) = ({d},), got {theta.shape}")
        P = np.einsum("sad,dt->sat", phi, mu)
        neg = P < -NEG_ATOL
        if np.any(neg):
            s, a, t = (int(i) for i in np.argwhere(neg)[0])
            raise ValueError(
                "phi and mu must induce a stochastic kernel, but P(s'|s,a) = <phi(s,a), mu(s')> is negative: "
                f"P(s'={t}|s={s}, a={a}) = {P[s, a, t]!r} (negative features or measures?)"
            )
        sums = P.sum(axis=-1)
        bad = np.abs(sums - 1.0) > DIST_ATOL
        if np.any(bad):
            s, a = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"phi and mu must induce a stochastic kernel, but Σ_s' <phi(s,a), mu(s')> = {sums[s, a]!r} != 1 at s={s}, a={a}"
            )
        tiny = np.any(P < 0, axis=-1)  # round-off negatives: clip, renormalize only those rows
        if np.any(tiny):
            P[tiny] = np.clip(P[tiny], 0.0, None)
            P[tiny] /= P[tiny].sum(axis=-1, keepdims=True)
        tab = TabularMDP(P=P, R=phi @ theta, gamma=self.gamma, horizon=self.horizon, mu0=self.mu0, name=self.name)
        set_ = object.__setattr__
        set_(self, "phi", _readonly(phi))
        set_(self, "mu", _readonly(mu))
        set_(self, "theta", _readonly(theta))
        set_(self, "gamma", tab.gamma)
        set_(self, "horizon", tab.horizon)
        set_(self, "mu0", tab.mu0)
        set_(self, "_tabular", tab)

    @property
    def num_states(self) -> int:
        """S."""
        return int(self.phi.shape[0])

    @property
    def num_actions(self) -> int:
        """A."""
        return int(self.phi.shape[1])

    @property
    def dim(self) -> int:
        """d, the feature dimension."""
        return int(self.phi.shape[2])

    @property
    def P(self) -> np.ndarray:
        """The induced ``P[s, a, s'] = ⟨φ(s,a), μ(s')⟩`` (read-only)."""
        return self._tabular.P

    @property
    def r(self) -> np.ndarray:
        """The induced ``r[s, a] = ⟨φ(s,a), θ⟩`` (read-only)."""
        return self._tabular.r

    def to_tabular(self) -> TabularMDP:
        """The same MDP as a :class:`rlref.TabularMDP` (dense ``P[s, a, s']``, ``R[s, a]``)."""
        return self._tabular

    def __repr__(self) -> str:
        kind = f"horizon={self.horizon}" if self.horizon is not None else f"gamma={self.gamma}"
        return f"LinearMDP(name={self.name!r}, S={self.num_states}, A={self.num_actions}, d={self.dim}, {kind})"


# ---------------------------------------------------------------------------------------- features
def one_hot_features(num_states: int, num_actions: int) -> np.ndarray:
    """Tabular features φ(s, a) = e_{s·A + a} ∈ R^{S·A}; shape (S, A, S·A).

    Raises ValueError if a count is not a positive integer.
    References: Jin et al. (2020), §2 (the tabular case of a linear MDP).
    """
    S = check_count("num_states", num_states)
    A = check_count("num_actions", num_actions)
    return np.eye(S * A).reshape(S, A, S * A)


def from_tabular(mdp: TabularMDP) -> LinearMDP:
    """A tabular MDP as a linear MDP with one-hot features (d = S·A).

    φ(s, a) = e_{s·A + a}, μ[s·A + a, s'] = P(s'|s, a), θ[s·A + a] = r(s, a); so the linear MDP's
    P and r equal the tabular ones exactly. Stage-dependent MDPs are rejected (ValueError);
    sparse ones are made dense (S²A memory). Terminal masks are not carried over.

    References: Jin et al. (2020), §2 (tabular MDPs are linear MDPs with one-hot features).
    """
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"mdp must be a TabularMDP, got {type(mdp).__name__}")
    if mdp.is_stage_dependent:
        raise ValueError("from_tabular needs a stationary MDP; this one has stage-dependent P or r")
    S, A = mdp.num_states, mdp.num_actions
    P = np.asarray(mdp.dense_P()).reshape(S * A, S)
    return LinearMDP(
        phi=one_hot_features(S, A),
        mu=P,
        theta=np.asarray(mdp.r).ravel(),
        gamma=mdp.gamma,
        horizon=mdp.horizon,
        mu0=mdp.mu0,
        name=f"linear({mdp.name})",
    )


def random_low_rank_features(
    num_states: int,
    num_actions: int,
    dim: int,
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    concentration: float = 1.0,
) -> np.ndarray:
    """Random features on the probability simplex: φ(s, a) ~ Dirichlet(α·1_d) i.i.d.; shape (S, A, d).

    Simplex features combined with μ whose rows are distributions over s' always induce a
    stochastic kernel (P(·|s,a) is then a mixture of the d rows of μ), so they give linear MDPs
    of rank <= d. α = ``concentration``.
    Raises ValueError if a count is not a positive integer or concentration <= 0.
    References: Jin et al. (2020), §2 (simplex feature spaces); the sampler is derived here.
    """
    S = check_count("num_states", num_states)
    A = check_count("num_actions", num_actions)
    d = check_count("dim", dim)
    alpha = check_positive("concentration", concentration)
    gen = as_generator(rng, seed)
    return _dirichlet(gen, alpha, (S, A), d)


def _dirichlet(gen: np.random.Generator, alpha: float, batch: tuple[int, ...], k: int) -> np.ndarray:
    g = gen.gamma(alpha, size=(*batch, k))
    total = g.sum(axis=-1, keepdims=True)
    zero = total[..., 0] <= 0  # possible only for tiny alpha: fall back to a vertex
    if np.any(zero):
        g[zero] = 0.0
        g[zero, 0] = 1.0
        total[zero] = 1.0
    return g / total


def random_linear_mdp(
    num_states: int,
    num_actions: int,
    dim: int,
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    gamma: float | None = None,
    horizon: int | None = None,
    concentration: float = 1.0,
) -> LinearMDP:
    """A random linear MDP of feature dimension d = ``dim``.

    φ(s, a) ~ Dirichlet(α·1_d) (on the simplex), each row μ[i, ·] ~ Dirichlet(α·1_S) (a
    distribution over s'), θ ~ U[0, 1]^d; so P(·|s, a) = Σ_i φ_i(s, a) μ[i, ·] is a valid kernel
    and r(s, a) = ⟨φ(s, a), θ⟩ ∈ [0, 1]. mu0 is uniform; ``gamma`` defaults to 0.9 (or 1 with
    ``horizon=H``). Randomness from ``rng`` or ``seed``.

    References: Jin et al. (2020), §2 (simplex feature spaces give linear MDPs); this random
    construction is derived here.
    """
    S = check_count("num_states", num_states)
    A = check_count("num_actions", num_actions)
    d = check_count("dim", dim)
    alpha = check_positive("concentration", concentration)
    gen = as_generator(rng, seed)
    phi = _dirichlet(gen, alpha, (S, A), d)
    mu = _dirichlet(gen, alpha, (d,), S)
    theta = gen.random(d)
    return LinearMDP(
        phi=phi,
        mu=mu,
        theta=theta,
        gamma=resolve_gamma(gamma, horizon),
        horizon=horizon,
        name=f"random_linear_mdp(S={S}, A={A}, d={d})",
    )


# ---------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class LinearQ:
    """Exact Q^π of a linear MDP in feature form.

    weights: w^π, shape (d,) (discounted) or (H, d) (finite horizon, stage h);
    q: Q^π = φ w^π, shape (S, A) or (H, S, A); v: V^π, shape (S,) or (H, S).
    """

    weights: np.ndarray
    q: np.ndarray
    v: np.ndarray


@dataclass(frozen=True)
class LinearFit:
    """Least-squares fit of a table q[s, a] by features: weights w, fitted φ w, residual max |φ w − q|."""

    weights: np.ndarray
    fitted: np.ndarray
    residual: float


def _policy_value(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """V^π: (S,) for a discounted MDP, (H+1, S) with V_H = 0 for a finite horizon (dense solve)."""
    P = np.asarray(mdp.dense_P())
    S = mdp.num_states
    if mdp.horizon is None:
        P_pi = np.einsum("sa,sat->st", pi, P)
        r_pi = np.einsum("sa,sa->s", pi, mdp.r)
        return np.linalg.solve(np.eye(S) - mdp.gamma * P_pi, r_pi)
    H = mdp.horizon
    v = np.zeros((H + 1, S))
    for h in range(H - 1, -1, -1):
        pi_h = pi[h] if pi.ndim == 3 else pi
        q = mdp.reward(h if mdp.is_stage_dependent else None) + mdp.gamma * P @ v[h + 1]
        v[h] = np.einsum("sa,sa->s", pi_h, q)
    return v


def policy_q_weights(lin: LinearMDP, pi: np.ndarray) -> LinearQ:
    """The weights w^π with Q^π(s, a) = ⟨φ(s, a), w^π⟩, for any policy π.

    Discounted:      w^π = θ + γ μ V^π,  V^π = (I − γ P_π)^{-1} r_π.
    Finite horizon:  w^π_h = θ + γ μ V^π_{h+1},  V^π_H = 0  (h = 0, ..., H-1).

    Shapes: pi[s, a] (or pi[h, s, a] for a finite horizon) -> LinearQ. Cost: one dense S×S solve.
    References: Jin et al. (2020), Proposition 2.3.
    """
    tab = lin.to_tabular()
    pi = validate_policy(tab, pi)
    v = _policy_value(tab, pi)
    if lin.horizon is None:
        w = lin.theta + lin.gamma * lin.mu @ v
        return LinearQ(weights=w, q=lin.phi @ w, v=v)
    w = lin.theta[None, :] + lin.gamma * v[1:] @ lin.mu.T
    return LinearQ(weights=w, q=np.einsum("sad,hd->hsa", lin.phi, w), v=v[:-1])


def linear_q_from_features(phi: np.ndarray, q: np.ndarray) -> LinearFit:
    """Least-squares projection of q[s, a] onto span(φ): w = argmin_w Σ_{s,a} (⟨φ(s,a), w⟩ − q(s,a))².

    The residual max_{s,a} |⟨φ(s,a), w⟩ − q(s,a)| is ~0 exactly when q lies in span(φ) (e.g. any
    Q^π of a linear MDP). Shapes: phi[s, a, d], q[s, a] -> LinearFit (weights (d,), fitted (S, A)).
    Raises ValueError on non-finite inputs or mismatched shapes.
    References: Jin et al. (2020), Proposition 2.3 (Q^π ∈ span φ for a linear MDP).
    """
    phi = as_float_array("phi", phi, ndim=3)
    q = as_float_array("q", q, ndim=2)
    check_finite("phi", phi)
    check_finite("q", q)
    S, A, d = phi.shape
    if q.shape != (S, A):
        raise ValueError(f"q must have shape (S, A) = ({S}, {A}) to match phi, got {q.shape}")
    w, *_ = np.linalg.lstsq(phi.reshape(S * A, d), q.ravel(), rcond=None)
    fitted = phi @ w
    return LinearFit(weights=w, fitted=fitted, residual=float(np.max(np.abs(fitted - q))))


def feature_expectation(mdp: LinearMDP | TabularMDP, pi: np.ndarray, phi: np.ndarray | None = None) -> np.ndarray:
    """Discounted feature expectation  ψ^π = E_{s_0 ~ μ0, π}[ Σ_t γ^t φ(s_t, a_t) ] ∈ R^d.

    Discounted: ψ^π = Σ_{s,a} d^π(s) π(a|s) φ(s, a) with d^π = μ0ᵀ (I − γ P_π)^{-1} (unnormalized
    occupancy). Finite horizon: ψ^π = Σ_{h<H} γ^h E[φ(s_h, a_h)]. For a linear MDP,
    ⟨ψ^π, θ⟩ = E_{μ0}[V^π(s_0)]. ``phi`` defaults to the linear MDP's features and is required for
    a TabularMDP. Shapes: pi[s, a] (or pi[h, s, a]), phi[s, a, d] -> (d,). A sparse P is not
    densified (the occupancy comes from :func:`rlref.solve.state_occupancy`).

    References: Abbeel & Ng (2004), "Apprenticeship learning via inverse reinforcement learning",
    ICML, eq. (2) (feature expectations).
    """
    if isinstance(mdp, LinearMDP):
        tab = mdp.to_tabular()
        feats = mdp.phi if phi is None else as_float_array("phi", phi, ndim=3)
    elif isinstance(mdp, TabularMDP):
        if phi is None:
            raise ValueError("phi[s, a, d] is required for a TabularMDP")
        tab = mdp
        feats = as_float_array("phi", phi, ndim=3)
    else:
        raise ValueError(f"mdp must be a LinearMDP or TabularMDP, got {type(mdp).__name__}")
    S, A = tab.num_states, tab.num_actions
    if feats.shape[:2] != (S, A):
        raise ValueError(f"phi must have shape (S, A, d) with (S, A) = ({S}, {A}), got {feats.shape}")
    check_finite("phi", feats)
    pi = validate_policy(tab, pi)
    # d_S from rlref.solve (sparse-aware: a sparse P is never densified)
    ds = state_occupancy(tab, pi)
    if tab.horizon is None:
        occ = ds / (1.0 - tab.gamma)  # unnormalized: μ0ᵀ (I − γ P_π)^{-1}
        return np.einsum("s,sa,sad->d", occ, pi, feats)
    weights = tab.gamma ** np.arange(tab.horizon)
    pi_h = pi if pi.ndim == 3 else np.broadcast_to(pi, (tab.horizon, S, A))
    return np.einsum("h,hs,hsa,sad->d", weights, ds, pi_h, feats)
