"""Adversarial episodic MDPs with linear function approximation: FTRL with the log-barrier.

Paper: Dai, Luo, Wei, Zimmert (2023), "Refined Regret for Adversarial MDPs with Linear Function
Approximation", ICML (arXiv 2301.12942). Baselines: Luo, Wei, Lee (2021), "Policy optimization in
adversarial MDPs: improved exploration via dilated bonuses", NeurIPS (the Õ(K^{2/3}) linear-Q
result with a simulator); Zimin & Neu (2013), "Online learning in episodic Markovian decision
processes by relative entropy policy search", NeurIPS (O-REPS, known transitions).

The setting. A fixed finite-horizon MDP (``TabularMDP`` with ``horizon=H``, stationary P, unknown
to the policy-optimization learners) and K loss functions ℓ_k[h, s, a] ∈ [0, 1] fixed in advance
by an oblivious adversary. In episode k the learner plays π_k, observes the losses only along its
trajectory (bandit feedback), and may roll out any policy in a simulator of the same MDP (the
paper's assumption; every simulated trajectory is counted). The regret against the best fixed
policy in hindsight,

    Reg_K = Σ_k V^{π_k}_k(μ0) − min_π Σ_k V^π_k(μ0),

is computed exactly: V^{π_k}_k = ⟨d^{π_k}, ℓ_k⟩ from the occupancy measure, and the minimum by
backward induction on the summed losses (a fixed π's value is linear in ℓ).

Linear-Q assumption: Q^π_{k,h}(s, a) = ⟨φ(s, a), θ^π_{k,h}⟩ for every π and k. It holds when
P(·|s, a) = ⟨φ(s, a), μ(·)⟩ and every ℓ_{k,h} ∈ span φ (a linear MDP, Jin et al. 2020, Prop. 2.3);
:func:`linear_q_residual` verifies that sufficient condition.

The policy-optimization algorithms (one driver, :func:`policy_optimization`) all run, for every
stage h and state s,

    π_k(·|h, s) = argmin_{p ∈ Δ_A} ⟨p, Σ_{τ<k} (Q̂_τ(h, s, ·) − B_τ(h, s, ·))⟩ + Ψ(p)/η,

with the linear-Q estimator built from the played trajectory (s_h, a_h)_h and a simulated covariance

    Q̂_k(h, s, a) = φ(s, a)ᵀ Σ̂⁺_{k,h} φ(s_h, a_h) L_{k,h},   L_{k,h} = Σ_{h' ≥ h} ℓ_k(h', s_{h'}, a_{h'}),
    Σ̂⁺_{k,h} = (γ I + Σ̃_{k,h})⁻¹,   Σ̃_{k,h} = (1/M) Σ_{i ≤ M} φ(s^i_h, a^i_h) φ(s^i_h, a^i_h)ᵀ  (M simulator rollouts of π_k),

and the dilated exploration bonus (Luo et al. 2021, eq. (4), their "dilated Bellman equation")

    b_k(h, s, a) = β ‖φ(s, a)‖²_{Σ̂⁺} + β E_{a'∼π_k(h, s)} ‖φ(s, a')‖²_{Σ̂⁺},
    B_k(h, s, a) = b_k(h, s, a) + (1 + 1/H) E_{s'∼P(s, a), a'∼π_k(h+1, s')} B_k(h+1, s', a').

* Algorithm 1 (``"log_barrier"``): Ψ(p) = Σ_a log(1/p_a), the log-barrier; its FTRL step is solved
  exactly (:func:`log_barrier_ftrl_step`). The log-barrier's stability term needs no lower bound on
  the estimates, so Q̂ is used as is, however negative (the paper's refined analysis), and η, γ, β
  can be tuned independently: η, β ∝ K^{-1/2}, γ ∝ K^{-1} (Õ(√K) regret, polynomial in A).
* Algorithm 2 (``"magnitude_reduced"``): Ψ = negative entropy (Hedge) on the magnitude-reduced
  estimator Q̃_k(h, s, a) = Q̂_k(h, s, a) − min_{a'} Q̂_k(h, s, a') ≥ 0. The shift is the same for
  every action of a state, so Hedge's policy is unchanged by it, but Q̃ ≥ 0 meets Hedge's stability
  condition η Q̃ ≥ −1 for every η, so η ∝ √(log A / K) can be chosen free of γ (Õ(√K), log A).
  The paper's exact estimator could not be retrieved; this construction is derived here.
* Baseline (``"dilated_bonus"``, Luo et al. 2021): Hedge on Q̂ itself, which needs η |Q̂| ≤ 1; with
  |Q̂| ≤ H ‖φ‖² / γ this forces η = γ / H and the tuning γ ∝ K^{-2/3}, β ∝ K^{-1/3} (Õ(K^{2/3})).

Deviations (stated): the bonus's next-state expectation is computed exactly with the simulator's
kernel (the infinite-rollout limit of the paper's Monte Carlo estimate, so it costs no simulator
calls), and ``covariance="exact"`` replaces the simulated Σ̃ by E_{π_k}[φφᵀ] itself. O-REPS
(:func:`oreps`) is the tabular known-transition baseline: online mirror descent with the
unnormalized KL over the occupancy polytope, the projection solved exactly by Newton's method on its
convex dual (:func:`oreps_projection`).

Simulator-free (:func:`simulator_free_po`; derived here, the paper's §5 could not be retrieved): epochs
of W episodes with one policy each; a fair coin makes each episode a covariance or a loss episode, so
the covariance-inverse estimate is independent of the trajectories it multiplies. ``"log_barrier_sf"``
(Dai et al.'s extension of Algorithm 1, K^{8/9}) uses the plug-in ridge inverse (:func:`ridge_inverse`,
with a derived second-order bias bound) in place of Matrix Geometric Resampling; ``"mgr_hedge_sf"``
(the earlier scheme of Luo et al. 2021, K^{14/15}) uses Hedge with MGR (:func:`mgr_inverse`). The
bonus's next-state term is a ridge regression on the covariance episodes (:func:`regressed_dilated_bonus`),
so no simulator and no model is used.

Shapes: losses[k, h, s, a], phi[s, a, d], policies[h, s, a], occupancies[h, s, a].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlref._checks import as_float_array, as_generator, check_count, check_finite, check_positive
from rlref.algorithms._mdp_checks import check_finite_horizon
from rlref.algorithms.rates import LogLogFit, fit_loglog_slope
from rlref.algorithms.sampling import rollout_episodes
from rlref.mdp import TabularMDP
from rlref.policy import softmax_policy, validate_policy
from rlref.solve import occupancy_measure, policy_from_occupancy, value_iteration

__all__ = [
    "log_barrier_ftrl_step",
    "entropy_ftrl_step",
    "AdversarialMDP",
    "LinearQCheck",
    "linear_q_residual",
    "iid_losses",
    "switching_losses",
    "punishing_losses",
    "Simulator",
    "Hindsight",
    "best_fixed_policy",
    "expected_loss",
    "AdversarialRun",
    "Tuning",
    "default_tuning",
    "policy_optimization",
    "log_barrier_po",
    "magnitude_reduced_po",
    "dilated_bonus_po",
    "linear_q_estimate",
    "dilated_bonus",
    "OREPSProjection",
    "oreps_projection",
    "oreps",
    "fit_loglog_slope",
    "LogLogFit",
    "SIMULATOR_FREE",
    "ridge_inverse",
    "mgr_inverse",
    "epoch_q_estimate",
    "regressed_dilated_bonus",
    "SimFreeTuning",
    "default_simfree_tuning",
    "simulator_free_po",
]

ALGORITHMS = ("log_barrier", "magnitude_reduced", "dilated_bonus")


# ------------------------------------------------------------------------------------- FTRL steps
def _log_barrier_step(L: np.ndarray, eta: float, iters: int = 100) -> np.ndarray:
    """Unchecked kernel of :func:`log_barrier_ftrl_step` (L finite, eta > 0, last axis = actions)."""
    A = L.shape[-1]
    u = L - L.min(axis=-1, keepdims=True)  # u ≥ 0, min 0
    # p_a = 1 / (η (u_a + z)); Σ_a p_a = 1 has its root z in [1/η, A/η]; f(z) = Σ 1/(η(u+z)) − 1 is
    # convex and decreasing, so Newton from the left end increases monotonically to the root.
    z = np.full(u.shape[:-1] + (1,), 1.0 / eta)
    hi = np.full_like(z, A / eta)
    for _ in range(iters):
        inv = 1.0 / (eta * (u + z))
        f = inv.sum(axis=-1, keepdims=True) - 1.0
        fp = -(eta * inv * inv).sum(axis=-1, keepdims=True)
        step = -f / fp
        z = np.minimum(z + step, hi)
        if np.all(np.abs(step) <= 1e-15 * z):
            break
    p = 1.0 / (eta * (u + z))
    return p / p.sum(axis=-1, keepdims=True)


def log_barrier_ftrl_step(cumulative_loss: Any, eta: float) -> np.ndarray:
    """The log-barrier FTRL distribution over the last axis.

        p = argmin_{p ∈ Δ_A} ⟨p, L⟩ + (1/η) Σ_a log(1/p_a),

    whose KKT conditions give p_a = 1 / (η (L_a + λ)) with the normalizer λ > −min_a L_a fixed by
    Σ_a p_a = 1; λ is found by a monotone Newton root-find on [1/η, A/η] − min L (the bracket is
    derived here: at λ + min L = 1/η the smallest loss alone has mass 1, at A/η every mass is ≤ 1/A).
    Any finite L is allowed, however negative (the log-barrier needs no lower bound on losses).

    Shapes: cumulative_loss[..., a] -> p[..., a] (batched over leading axes); float64.
    Raises ValueError if eta <= 0 or the losses are not finite or have no action axis.
    References: Dai, Luo, Wei, Zimmert (2023), Algorithm 1 (FTRL with the log-barrier regularizer);
    Foster, Li, Lykouris, Sridharan, Tardos (2016), "Learning in games: robustness of fast
    convergence" (log-barrier FTRL on the simplex).
    """
    eta = check_positive("eta", eta)
    L = as_float_array("cumulative_loss", cumulative_loss)
    if L.ndim == 0 or L.shape[-1] == 0:
        raise ValueError(f"cumulative_loss must have a non-empty last (action) axis, got shape {L.shape}")
    check_finite("cumulative_loss", L)
    return _log_barrier_step(L, eta)


def entropy_ftrl_step(cumulative_loss: Any, eta: float) -> np.ndarray:
    """Negative-entropy FTRL (Hedge): p = argmin_p ⟨p, L⟩ + (1/η) Σ_a p_a log p_a = softmax(−η L).

    Invariant to adding a constant to L along the last axis. Shapes: L[..., a] -> p[..., a].
    Raises ValueError if eta <= 0 or L is not finite.
    References: Freund & Schapire (1997) (Hedge); Luo, Wei, Lee (2021), Algorithm 1 (per-state Hedge).
    """
    eta = check_positive("eta", eta)
    return softmax_policy(-as_float_array("cumulative_loss", cumulative_loss), temperature=1.0 / eta)


# ------------------------------------------------------------------------------------- the setting
def _check_losses(losses: Any, H: int, S: int, A: int, name: str = "losses") -> np.ndarray:
    ell = as_float_array(name, losses)
    if ell.ndim != 4 or ell.shape[1:] != (H, S, A) or ell.shape[0] < 1:
        raise ValueError(f"{name} must have shape (K, H, S, A) = (K, {H}, {S}, {A}) with K >= 1, got {ell.shape}")
    check_finite(name, ell)
    bad = (ell < -1e-12) | (ell > 1.0 + 1e-12)  # round-off of <phi, g> is clipped, larger excursions raise
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must lie in [0, 1]; {name}[k={idx[0]}, h={idx[1]}, s={idx[2]}, a={idx[3]}] = {float(ell[idx])!r}")
    return np.clip(ell, 0.0, 1.0)


def _check_phi(phi: Any, S: int, A: int) -> np.ndarray:
    f = as_float_array("phi", phi, ndim=3)
    if f.shape[:2] != (S, A) or f.shape[2] < 1:
        raise ValueError(f"phi must have shape (S, A, d) = ({S}, {A}, d) with d >= 1, got {f.shape}")
    check_finite("phi", f)
    return f


@dataclass(frozen=True, eq=False)
class AdversarialMDP:
    """An adversarial episodic MDP: a fixed finite-horizon MDP, K loss functions, features.

    Args:
      mdp: a finite-horizon :class:`rlref.TabularMDP` with stationary P (its rewards are ignored).
      losses: ``losses[k, h, s, a]`` ∈ [0, 1], fixed before the first episode (oblivious adversary).
      phi: features ``phi[s, a, d]``; one-hot (d = S·A) when omitted.
      name: a label.

    Raises ValueError for a discounted or stage-dependent MDP, losses of the wrong shape or outside
    [0, 1], or features of the wrong shape, naming the index and value.
    References: Dai et al. (2023), §2 (problem setup); Luo et al. (2021), §2.
    """

    mdp: TabularMDP
    losses: Any
    phi: Any = None
    name: str = "adversarial_mdp"

    def __post_init__(self) -> None:
        if not isinstance(self.mdp, TabularMDP):
            raise ValueError(f"mdp must be a TabularMDP, got {type(self.mdp).__name__}")
        if self.mdp.horizon is None:
            raise ValueError("mdp must be finite-horizon (horizon=H): adversarial MDPs here are episodic")
        if self.mdp.is_stage_dependent:
            raise ValueError("mdp must have stationary transitions P[s, a, s'] (stage-dependent P is not supported)")
        H, S, A = self.mdp.horizon, self.mdp.num_states, self.mdp.num_actions
        ell = _check_losses(self.losses, H, S, A)
        phi = np.eye(S * A).reshape(S, A, S * A) if self.phi is None else _check_phi(self.phi, S, A)
        for arr in (ell, phi):
            arr.setflags(write=False)
        object.__setattr__(self, "losses", ell)
        object.__setattr__(self, "phi", phi)

    @property
    def K(self) -> int:
        """Number of episodes."""
        return int(self.losses.shape[0])

    @property
    def H(self) -> int:
        """Horizon."""
        return int(self.mdp.horizon)

    @property
    def S(self) -> int:
        return self.mdp.num_states

    @property
    def A(self) -> int:
        return self.mdp.num_actions

    @property
    def d(self) -> int:
        """Feature dimension."""
        return int(self.phi.shape[2])

    def truncated(self, K: int) -> AdversarialMDP:
        """The same game over its first K episodes."""
        if not (1 <= int(K) <= self.K):
            raise ValueError(f"K must lie in [1, {self.K}], got {K!r}")
        return AdversarialMDP(mdp=self.mdp, losses=self.losses[: int(K)], phi=self.phi, name=self.name)


@dataclass(frozen=True)
class LinearQCheck:
    """Residuals of the sufficient condition for linear Q: P(·|s,a) ∈ span φ and ℓ_{k,h} ∈ span φ.

    transition_residual = max |Φ W_P − P| over (s, a, s'), loss_residual = max |Φ w_{k,h} − ℓ_{k,h}|,
    both from least squares onto the columns of Φ (S·A × d); holds: both ≤ atol.
    """

    transition_residual: float
    loss_residual: float
    atol: float
    holds: bool


def _span_residual(Phi: np.ndarray, Y: np.ndarray) -> float:
    W, *_ = np.linalg.lstsq(Phi, Y, rcond=None)
    return float(np.max(np.abs(Phi @ W - Y))) if Y.size else 0.0


def linear_q_residual(game: AdversarialMDP, atol: float = 1e-8) -> LinearQCheck:
    """Check the linear-Q assumption through its sufficient linear-MDP condition.

    If P(s'|s, a) = ⟨φ(s, a), μ(s')⟩ and ℓ_{k,h}(s, a) = ⟨φ(s, a), g_{k,h}⟩, then for every policy
    Q^π_{k,h} = ℓ_{k,h} + P V^π_{k,h+1} = ⟨φ, g_{k,h} + μ V^π_{k,h+1}⟩ is linear in φ
    (Jin, Yang, Wang, Jordan 2020, Prop. 2.3). Both memberships are tested by least squares.
    Cost: one (S·A × d) least-squares solve with S + K·H right-hand sides.
    References: Dai et al. (2023), Assumption 1 (linear Q); Jin et al. (2020), Prop. 2.3.
    """
    atol = check_positive("atol", atol)
    S, A, d = game.phi.shape
    Phi = game.phi.reshape(S * A, d)
    P = np.asarray(game.mdp.dense_P()).reshape(S * A, S)
    rt = _span_residual(Phi, P)
    rl = _span_residual(Phi, game.losses.reshape(game.K * game.H, S * A).T)
    return LinearQCheck(transition_residual=rt, loss_residual=rl, atol=atol, holds=bool(rt <= atol and rl <= atol))


def require_linear_q(game: AdversarialMDP, atol: float = 1e-8) -> None:
    """Raise ValueError unless :func:`linear_q_residual` holds, naming the residual that fails."""
    chk = linear_q_residual(game, atol)
    if chk.transition_residual > atol:
        raise ValueError(
            f"features violate the linear-Q assumption: P(.|s,a) is not in span(phi) (residual {chk.transition_residual:.3e} > atol {atol:g})"
        )
    if chk.loss_residual > atol:
        raise ValueError(
            f"features violate the linear-Q assumption: some loss l_(k,h) is not in span(phi) (residual {chk.loss_residual:.3e} > atol {atol:g})"
        )


# ------------------------------------------------------------------------------------- adversaries
def _simplex_phi(phi: Any) -> np.ndarray:
    f = as_float_array("phi", phi, ndim=3)
    check_finite("phi", f)
    if np.any(f < -1e-12) or np.any(np.abs(f.sum(axis=-1) - 1.0) > 1e-8):
        s, a = (int(i) for i in np.argwhere((f < -1e-12).any(-1) | (np.abs(f.sum(-1) - 1.0) > 1e-8))[0])
        raise ValueError(
            "the adversaries need simplex features (phi[s, a] >= 0, summing to 1) so that losses <phi, g> with g in [0,1]^d "
            f"lie in [0, 1]; phi[s={s}, a={a}] = {f[s, a]!r}"
        )
    return f


def iid_losses(phi: Any, K: int, H: int, *, gap: float = 0.1, rng: np.random.Generator | None = None, seed: int | None = None) -> np.ndarray:
    """I.i.d. stochastic losses ℓ_k(h, s, a) = ⟨φ(s, a), g_{k,h}⟩, g_{k,h,i} ~ Bernoulli(m_i).

    The feature means are m_i = 1/2 + gap·(2 x_i − 1)/2 with x_i ~ U{0, 1} drawn once, so features
    differ in mean loss by ``gap`` (the stochastic lower-bound family; derived here). With simplex
    features ℓ ∈ [0, 1] and ℓ_{k,h} ∈ span φ. Shape (K, H, S, A).
    Raises ValueError unless phi is simplex-valued, K, H >= 1 and 0 <= gap <= 1.
    References: Auer et al. (2002), "The nonstochastic multiarmed bandit problem", §7 (the gap
    family behind the Ω(√K) lower bound).
    """
    f = _simplex_phi(phi)
    K, H = check_count("K", K), check_count("H", H)
    if not (0.0 <= float(gap) <= 1.0):
        raise ValueError(f"gap must lie in [0, 1], got {gap!r}")
    gen = as_generator(rng, seed)
    d = f.shape[-1]
    x = gen.integers(0, 2, size=d)
    if d > 1 and np.all(x == x[0]):
        x[0] = 1 - x[0]
    m = 0.5 + float(gap) * (x - 0.5)
    g = (gen.random((K, H, d)) < m).astype(float)
    return np.clip(np.einsum("sai,khi->khsa", f, g), 0.0, 1.0)


def switching_losses(phi: Any, K: int, H: int, *, period: int = 50, n_regimes: int = 2,
                     rng: np.random.Generator | None = None, seed: int | None = None) -> np.ndarray:
    """Oblivious switching losses: ℓ_k = ⟨φ, g^{(j(k))}_h⟩ with regime j(k) = ⌊k / period⌋ mod n_regimes.

    Each regime's g^{(j)}_h ~ U[0, 1]^d is drawn once; the loss is piecewise constant and changes
    every ``period`` episodes (derived here). Shape (K, H, S, A).
    References: Dai et al. (2023), §2 (arbitrary oblivious losses); the construction is derived here.
    """
    f = _simplex_phi(phi)
    K, H = check_count("K", K), check_count("H", H)
    period, n_regimes = check_count("period", period), check_count("n_regimes", n_regimes)
    gen = as_generator(rng, seed)
    g = gen.random((n_regimes, H, f.shape[-1]))
    j = (np.arange(K) // period) % n_regimes
    return np.clip(np.einsum("sai,khi->khsa", f, g[j]), 0.0, 1.0)


def punishing_losses(mdp: TabularMDP, phi: Any, K: int, *, refresh: int = 10, noise: float = 0.1,
                     rng: np.random.Generator | None = None, seed: int | None = None) -> np.ndarray:
    """Adaptive-looking but oblivious losses that punish the best fixed policy of the past.

    Every ``refresh`` episodes, π*_k = argmin_π Σ_{τ<k} V^π_τ (exact backward induction) and its
    per-stage feature expectation ψ_h = Σ_{s,a} d^{π*}_h(s, a) φ(s, a) are recomputed; then
    g_{k,h} = clip(1/2 + (ψ_h − mean ψ_h)/(2 max|ψ_h − mean ψ_h|) + noise·ξ, 0, 1), ξ ~ U[−1, 1]^d:
    high loss on the features the past leader uses. It depends on past losses only, never on the
    learner, so it is oblivious and fixed in advance (derived here). Shape (K, H, S, A).
    References: Dai et al. (2023), §2 (oblivious adversary); the construction is derived here.
    """
    check_finite_horizon(mdp)
    f = _simplex_phi(phi)
    S, A = mdp.num_states, mdp.num_actions
    if f.shape[:2] != (S, A):
        raise ValueError(f"phi must have shape (S, A, d) = ({S}, {A}, d), got {f.shape}")
    K, refresh = check_count("K", K), check_count("refresh", refresh)
    if not (0.0 <= float(noise) <= 1.0):
        raise ValueError(f"noise must lie in [0, 1], got {noise!r}")
    gen = as_generator(rng, seed)
    H, d = mdp.horizon, f.shape[-1]
    out = np.zeros((K, H, S, A))
    total = np.zeros((H, S, A))
    g_now = np.full((H, d), 0.5)
    for k in range(K):
        if k > 0 and k % refresh == 0:
            pi = _solve_hindsight(mdp, total).policy
            occ = occupancy_measure(mdp, pi)
            psi = np.einsum("hsa,sai->hi", occ, f)
            dev = psi - psi.mean(axis=-1, keepdims=True)
            scale = np.max(np.abs(dev), axis=-1, keepdims=True)
            g_now = 0.5 + 0.5 * np.divide(dev, scale, out=np.zeros_like(dev), where=scale > 0)
        g = np.clip(g_now + noise * gen.uniform(-1.0, 1.0, size=(H, d)), 0.0, 1.0)
        out[k] = np.einsum("sai,hi->hsa", f, g)
        total += out[k]
    return np.clip(out, 0.0, 1.0)


# ------------------------------------------------------------------------------------- simulator
class Simulator:
    """Roll out policies in a finite-horizon MDP; counts calls and trajectories (the paper's simulator).

    ``rollout(pi, n)`` draws n independent trajectories s_0 ~ μ0, a_h ~ π(·|h, s_h),
    s_{h+1} ~ P(·|s_h, a_h) and returns (states[n, H], actions[n, H]). ``calls`` counts rollout
    calls, ``trajectories`` the trajectories drawn. Randomness from ``rng``.
    References: Luo et al. (2021), §4 (simulator access); Dai et al. (2023), §2.
    """

    def __init__(self, mdp: TabularMDP, rng: np.random.Generator) -> None:
        check_finite_horizon(mdp)
        self.mdp = mdp
        self.rng = as_generator(rng, None)
        P = np.asarray(mdp.dense_P())
        cum = np.cumsum(P, axis=-1)
        self._cum_P = cum if P.ndim == 4 else np.broadcast_to(cum, (mdp.horizon, *cum.shape))
        self.calls = 0
        self.trajectories = 0

    def rollout(self, pi: np.ndarray, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
        n = check_count("n", n)
        H = self.mdp.horizon
        pi = np.asarray(pi)
        if pi.shape != (H, self.mdp.num_states, self.mdp.num_actions):
            raise ValueError(f"pi must have shape (H, S, A) = {(H, self.mdp.num_states, self.mdp.num_actions)}, got {pi.shape}")
        self.calls += 1
        self.trajectories += n
        states, actions, _ = rollout_episodes(self._cum_P, pi, np.asarray(self.mdp.mu0), n, self.rng)
        return states, actions


# ------------------------------------------------------------------------------------- regret
@dataclass(frozen=True, eq=False)
class Hindsight:
    """The best fixed policy for the summed losses of the first K episodes.

    value: min_π Σ_{k<K} V^π_k(μ0) (total expected loss); policy[h, s, a] (deterministic up to ties);
    values[h, s]: the optimal loss-to-go of the summed losses.
    """

    value: float
    policy: np.ndarray
    values: np.ndarray


def _solve_hindsight(mdp: TabularMDP, total: np.ndarray):
    # A fixed policy's value is linear in the loss: Σ_k V^π_k = V^π(Σ_k ℓ_k); minimize with the core's
    # exact backward induction on reward −Σ_k ℓ_k (stage-dependent).
    tab = TabularMDP(P=mdp.dense_P(), R=-total, horizon=mdp.horizon, mu0=mdp.mu0, reward_axes="hsa", name="hindsight")
    return value_iteration(tab)


def best_fixed_policy(game: AdversarialMDP, K: int | None = None) -> Hindsight:
    """min_π Σ_{k<K} V^π_k(μ0), exactly, by backward induction on Σ_{k<K} ℓ_k (rlref.solve.value_iteration).

    Equals the occupancy LP min_{q ∈ polytope} ⟨q, Σ_k ℓ_k⟩ (tested against rlref.solve.lp_occupancy).
    References: Zimin & Neu (2013), §2 (regret against the best fixed policy); Puterman (1994), §4.5.
    """
    K = game.K if K is None else check_count("K", K)
    if K > game.K:
        raise ValueError(f"K must be <= the game's {game.K} episodes, got {K}")
    res = _solve_hindsight(game.mdp, game.losses[:K].sum(axis=0))
    return Hindsight(value=-float(res.objective), policy=res.policy, values=-res.values)


def expected_loss(game: AdversarialMDP, pi: np.ndarray, k: int) -> float:
    """V^π_k(μ0) = ⟨d^π, ℓ_k⟩ = Σ_{h,s,a} d^π_h(s, a) ℓ_k(h, s, a) (occupancy from rlref.solve)."""
    pi = validate_policy(game.mdp, pi)
    return float(np.sum(occupancy_measure(game.mdp, pi) * game.losses[k]))


@dataclass(frozen=True, eq=False)
class AdversarialRun:
    """One run of an adversarial-MDP learner.

    expected_losses[k] = V^{π_k}_k(μ0) (exact, from the occupancy of the played π_k);
    realized_losses[k]: the loss of the played trajectory; regret = Σ_k expected_losses[k] − the
    hindsight optimum (pseudo-regret, exact given the played policies); cumulative_regret[k] =
    Σ_{τ≤k} expected_losses[τ] − min_π Σ_{τ≤k} V^π_τ at the episodes in ``checkpoints``;
    simulator_calls / simulator_trajectories: simulator use; last_policy[h, s, a].
    """

    algorithm: str
    expected_losses: np.ndarray
    realized_losses: np.ndarray
    regret: float
    checkpoints: np.ndarray
    cumulative_regret: np.ndarray
    simulator_calls: int
    simulator_trajectories: int
    last_policy: np.ndarray
    params: dict = field(default_factory=dict)


def _finish_run(game: AdversarialMDP, algorithm: str, exp_l: np.ndarray, real_l: np.ndarray, checkpoints: Any,
                sim: Simulator | None, pi: np.ndarray, params: dict) -> AdversarialRun:
    if checkpoints is None:
        cps = np.array([game.K])
    else:
        cps = np.unique(np.asarray(checkpoints, dtype=np.int64))
        if cps.size == 0 or cps[0] < 1 or cps[-1] > game.K:
            raise ValueError(f"checkpoints must lie in [1, K={game.K}], got {checkpoints!r}")
    cum = np.cumsum(exp_l)
    creg = np.array([cum[c - 1] - best_fixed_policy(game, int(c)).value for c in cps])
    reg = float(creg[-1]) if cps[-1] == game.K else float(cum[-1] - best_fixed_policy(game).value)
    return AdversarialRun(
        algorithm=algorithm, expected_losses=exp_l, realized_losses=real_l, regret=reg, checkpoints=cps,
        cumulative_regret=creg, simulator_calls=0 if sim is None else sim.calls,
        simulator_trajectories=0 if sim is None else sim.trajectories, last_policy=pi, params=params,
    )


# ------------------------------------------------------------------------------------- estimators
def linear_q_estimate(phi: np.ndarray, sigma_inv: np.ndarray, states: np.ndarray, actions: np.ndarray,
                      step_losses: np.ndarray) -> np.ndarray:
    """θ̂_h = Σ̂⁺_h φ(s_h, a_h) L_h with L_h = Σ_{h' ≥ h} ℓ(h', s_{h'}, a_{h'}); returns θ̂[h, d].

    Q̂(h, s, a) = ⟨φ(s, a), θ̂_h⟩. Unbiased for θ^π_h when Σ̂⁺_h = (E_π[φφᵀ])⁻¹ (γ = 0, exact
    covariance): E[φ_h L_h] = E[φ_h Q^π_h(s_h, a_h)] = E[φ_h φ_hᵀ] θ^π_h.
    Shapes: phi[s, a, d], sigma_inv[h, d, d], states[h], actions[h], step_losses[h] -> θ̂[h, d].
    References: Luo et al. (2021), eq. (11) (linear-Q estimator); Dai et al. (2023), Algorithm 1;
    Neu & Olkhovskaya (2020), "Efficient and robust algorithms for adversarial linear contextual bandits".
    """
    togo = np.cumsum(step_losses[::-1])[::-1]
    feats = phi[states, actions]  # (H, d)
    return np.einsum("hij,hj->hi", sigma_inv, feats) * togo[:, None]


def dilated_bonus(mdp: TabularMDP, pi: np.ndarray, phi: np.ndarray, sigma_inv: np.ndarray, beta: float) -> np.ndarray:
    """The dilated bonus B[h, s, a] of Luo et al. (2021), computed exactly backward in h.

        b(h, s, a) = β ‖φ(s, a)‖²_{Σ⁺_h} + β Σ_{a'} π(a'|h, s) ‖φ(s, a')‖²_{Σ⁺_h},
        B(h, s, a) = b(h, s, a) + (1 + 1/H) Σ_{s'} P(s'|s, a) Σ_{a'} π(a'|h+1, s') B(h+1, s', a'),  B(H) = 0.

    Shapes: pi[h, s, a], phi[s, a, d], sigma_inv[h, d, d] -> B[h, s, a]. The next-state expectation
    uses ``mdp.expected_next`` (the core's P v).
    References: Luo, Wei, Lee (2021), eq. (4) (dilated Bellman equation) and Algorithm 4.
    """
    H = mdp.horizon
    w = np.einsum("sai,hij,saj->hsa", phi, sigma_inv, phi)
    b = beta * (w + np.einsum("hsa,hsa->hs", pi, w)[:, :, None])
    B = np.empty_like(b)
    nxt = np.zeros(mdp.num_states)
    for h in range(H - 1, -1, -1):
        B[h] = b[h] + (1.0 + 1.0 / H) * mdp.expected_next(nxt)
        nxt = np.einsum("sa,sa->s", pi[h], B[h])
    return B


# ------------------------------------------------------------------------------------- tuning
@dataclass(frozen=True)
class Tuning:
    """Constant parameters of one policy-optimization run: learning rate η, ridge γ, bonus β, rollouts M."""

    eta: float
    gamma: float
    beta: float
    rollouts: int


def default_tuning(algorithm: str, K: int, H: int, A: int, d: int, *, c_eta: float = 1.0, c_gamma: float = 1.0,
                   c_beta: float = 0.1) -> Tuning:
    """The rate-optimal scaling of each algorithm's parameters with K (constants set to 1; derived here).

    * log_barrier (Dai et al. Alg. 1):     η = c_η √(A / (d H² K)),  γ = c_γ / K,  β = c_β / √K.
    * magnitude_reduced (Alg. 2):          η = c_η √(log A / (d H² K)), γ, β as Algorithm 1.
    * dilated_bonus (Luo et al. 2021):     γ = c_γ K^{-2/3}, η = γ / H (so η |Q̂| ≤ 1), β = c_β K^{-1/3}.

    Rollouts M = ⌈√K⌉ simulated trajectories per episode for the covariance. The exponents follow
    the regret decompositions (regularizer/η + η·stability + β·bonus + γ·bias/β); the constants do not
    come from the papers.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    K, H, A, d = check_count("K", K), check_count("H", H), check_count("A", A), check_count("d", d)
    M = int(np.ceil(np.sqrt(K)))
    if algorithm == "dilated_bonus":
        gam = c_gamma * K ** (-2.0 / 3.0)
        return Tuning(eta=gam / H, gamma=gam, beta=c_beta * K ** (-1.0 / 3.0), rollouts=M)
    scale = A if algorithm == "log_barrier" else max(np.log(A), 1.0)
    return Tuning(eta=c_eta * np.sqrt(scale / (d * H * H * K)), gamma=c_gamma / K, beta=c_beta / np.sqrt(K), rollouts=M)


# ------------------------------------------------------------------------------------- the driver
def _covariance(game: AdversarialMDP, pi: np.ndarray, sim: Simulator, M: int, exact: bool) -> np.ndarray:
    """Σ_h = E_{π}[φ(s_h, a_h) φ(s_h, a_h)ᵀ]: exact from the occupancy, or the mean over M simulated trajectories."""
    if exact:
        occ = occupancy_measure(game.mdp, pi)
        return np.einsum("hsa,sai,saj->hij", occ, game.phi, game.phi)
    states, actions = sim.rollout(pi, M)
    feats = game.phi[states, actions]  # (M, H, d)
    return np.einsum("mhi,mhj->hij", feats, feats) / M


def policy_optimization(
    game: AdversarialMDP,
    algorithm: str,
    tuning: Tuning | None = None,
    *,
    covariance: str = "simulated",
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    checkpoints: Any = None,
    check_linear: bool = True,
    callback: Callable[[int, np.ndarray], None] | None = None,
) -> AdversarialRun:
    """Per-state FTRL policy optimization with linear-Q estimates and dilated bonuses (see module docstring).

    Each episode k: π_k = FTRL(Σ_{τ<k} (Q̂_τ − B_τ)) at every (h, s); Σ̃_{k,h} from M simulator
    rollouts of π_k (or exact with ``covariance="exact"``); Σ̂⁺ = (γI + Σ̃)⁻¹; play one trajectory in the
    environment and observe its losses; Q̂_k from :func:`linear_q_estimate`; B_k from :func:`dilated_bonus`.

    algorithm: "log_barrier" (Algorithm 1), "magnitude_reduced" (Algorithm 2) or "dilated_bonus"
    (Luo et al. 2021). tuning: constant (η, γ, β, M); :func:`default_tuning` when omitted.
    With ``check_linear`` the features must satisfy :func:`linear_q_residual` (ValueError otherwise).
    Cost per episode: O(H S A d² + M H d²) plus one batched FTRL solve.
    References: Dai et al. (2023), Algorithms 1-2; Luo et al. (2021), Algorithm 4 (linear-Q, simulator).
    """
    if not isinstance(game, AdversarialMDP):
        raise ValueError(f"game must be an AdversarialMDP, got {type(game).__name__}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if covariance not in ("simulated", "exact"):
        raise ValueError(f"covariance must be 'simulated' or 'exact', got {covariance!r}")
    H, S, A, d, K = game.H, game.S, game.A, game.d, game.K
    tun = default_tuning(algorithm, K, H, A, d) if tuning is None else tuning
    eta = check_positive("tuning.eta", tun.eta)
    gam = check_positive("tuning.gamma", tun.gamma)
    if not (tun.beta >= 0.0 and np.isfinite(tun.beta)):
        raise ValueError(f"tuning.beta must be finite and >= 0, got {tun.beta!r}")
    M = check_count("tuning.rollouts", tun.rollouts)
    if check_linear:
        require_linear_q(game)
    gen = as_generator(rng, seed)
    sim = Simulator(game.mdp, gen)
    env = Simulator(game.mdp, gen)  # the real environment: its rollouts are the played episodes
    phi = game.phi
    eye = np.eye(d)
    cum = np.zeros((H, S, A))  # Σ_τ (Q̂_τ − B_τ)
    exp_l = np.empty(K)
    real_l = np.empty(K)
    pi = np.full((H, S, A), 1.0 / A)
    for k in range(K):
        if algorithm == "log_barrier":
            pi = _log_barrier_step(cum, eta)
        else:
            pi = softmax_policy(-cum, temperature=1.0 / eta)
        if callback is not None:
            callback(k, pi)
        exp_l[k] = float(np.sum(occupancy_measure(game.mdp, pi) * game.losses[k]))
        sigma = _covariance(game, pi, sim, M, covariance == "exact")
        sigma_inv = np.linalg.inv(gam * eye + sigma)
        st, ac = env.rollout(pi, 1)
        st, ac = st[0], ac[0]
        step = game.losses[k, np.arange(H), st, ac]
        real_l[k] = float(step.sum())
        theta = linear_q_estimate(phi, sigma_inv, st, ac, step)
        q_hat = np.einsum("sai,hi->hsa", phi, theta)
        if algorithm == "magnitude_reduced":
            q_hat = q_hat - q_hat.min(axis=-1, keepdims=True)
        bonus = dilated_bonus(game.mdp, pi, phi, sigma_inv, tun.beta) if tun.beta > 0 else 0.0
        cum += q_hat - bonus
    params = {"eta": eta, "gamma": gam, "beta": float(tun.beta), "rollouts": M, "covariance": covariance}
    return _finish_run(game, algorithm, exp_l, real_l, checkpoints, sim, pi, params)


def log_barrier_po(game: AdversarialMDP, tuning: Tuning | None = None, **kw: Any) -> AdversarialRun:
    """Algorithm 1 of Dai et al. (2023): log-barrier FTRL, linear-Q estimates, dilated bonuses (Õ(√K), poly(A))."""
    return policy_optimization(game, "log_barrier", tuning, **kw)


def magnitude_reduced_po(game: AdversarialMDP, tuning: Tuning | None = None, **kw: Any) -> AdversarialRun:
    """Algorithm 2 of Dai et al. (2023), as derived here: Hedge on the magnitude-reduced estimator (Õ(√K), log A)."""
    return policy_optimization(game, "magnitude_reduced", tuning, **kw)


def dilated_bonus_po(game: AdversarialMDP, tuning: Tuning | None = None, **kw: Any) -> AdversarialRun:
    """Luo, Wei, Lee (2021): Hedge with linear-Q estimates and dilated bonuses, η = γ/H (Õ(K^{2/3}))."""
    return policy_optimization(game, "dilated_bonus", tuning, **kw)


# ------------------------------------------------------------------------------------- O-REPS
@dataclass(frozen=True, eq=False)
class OREPSProjection:
    """argmin_{q ∈ Δ(M)} D(q ‖ q̃) with D the unnormalized KL; the dual v[h, s]; Newton iterations;
    flow_residual = max |C q − b| (the flow constraints); converged."""

    occupancy: np.ndarray
    dual: np.ndarray
    iterations: int
    flow_residual: float
    converged: bool


def _block_tridiag_solve(D: np.ndarray, O: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Solve the symmetric block-tridiagonal system with diagonal blocks D[h] and sub-diagonal
    blocks O[h] (= the (h, h−1) block, O[0] unused) for the right side r[h] (block Thomas algorithm)."""
    H = D.shape[0]
    Dp = np.empty_like(D)
    rp = np.empty_like(r)
    Dp[0], rp[0] = D[0], r[0]
    for h in range(1, H):
        X = np.linalg.solve(Dp[h - 1], np.column_stack([O[h].T, rp[h - 1]]))
        Dp[h] = D[h] - O[h] @ X[:, :-1]
        rp[h] = r[h] - O[h] @ X[:, -1]
    x = np.empty_like(r)
    x[H - 1] = np.linalg.solve(Dp[H - 1], rp[H - 1])
    for h in range(H - 2, -1, -1):
        x[h] = np.linalg.solve(Dp[h], rp[h] - O[h + 1].T @ x[h + 1])
    return x


def oreps_projection(mdp: TabularMDP, q_tilde: Any, v0: Any = None, tol: float = 1e-11, max_iter: int = 200) -> OREPSProjection:
    """Exact KL projection onto the occupancy polytope of a finite-horizon MDP (known transitions).

        q* = argmin_{q ≥ 0, C q = b} Σ q log(q / q̃) − q + q̃,   C q = b:  Σ_a q_0(s, a) = μ0(s),
             Σ_a q_{h+1}(s', a) = Σ_{s,a} P(s'|s, a) q_h(s, a),
        q*(h, s, a) = q̃(h, s, a) exp(−v_h(s) + Σ_{s'} P(s'|s, a) v_{h+1}(s'))   (v_H = 0),

    with v the minimizer of the convex dual Φ(v) = Σ q̃ exp(−Cᵀ v) + bᵀ v, whose gradient is b − C q
    and Hessian C diag(q) Cᵀ is block tridiagonal in h (blocks diag(Σ_a q_h) + Pᵀ diag(q_{h−1}) P and
    −Pᵀ diag(q_{h−1}) E). Damped Newton with backtracking, block-Thomas solves, stops at
    ‖C q − b‖_∞ ≤ tol. ``v0`` warm-starts the dual (e.g. the previous projection's).
    Shapes: q_tilde[h, s, a] (positive) -> OREPSProjection. RuntimeError if Newton fails.
    References: Zimin & Neu (2013), §4 (O-REPS: the projection and its dual); the Newton solve is derived here.
    """
    check_finite_horizon(mdp)
    if mdp.is_stage_dependent:
        raise ValueError("mdp must have stationary transitions")
    H, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
    qt = as_float_array("q_tilde", q_tilde)
    if qt.shape != (H, S, A):
        raise ValueError(f"q_tilde must have shape (H, S, A) = {(H, S, A)}, got {qt.shape}")
    check_finite("q_tilde", qt)
    if np.any(qt <= 0):
        idx = tuple(int(i) for i in np.argwhere(qt <= 0)[0])
        raise ValueError(f"q_tilde must be positive; q_tilde[{idx[0]}, {idx[1]}, {idx[2]}] = {float(qt[idx])!r}")
    tol = check_positive("tol", tol)
    P = np.asarray(mdp.dense_P()).reshape(S * A, S)  # row s·A + a = P(·|s, a)
    mu0 = mdp.mu0
    logq = np.log(qt)
    v = np.zeros((H, S)) if v0 is None else as_float_array("v0", v0).copy()
    if v.shape != (H, S):
        raise ValueError(f"v0 must have shape (H, S) = {(H, S)}, got {v.shape}")

    def primal(v: np.ndarray) -> np.ndarray:
        nxt = np.zeros((H, S, A))
        nxt[:-1] = (v[1:] @ P.T).reshape(H - 1, S, A)  # Σ_{s'} P(s'|s, a) v_{h+1}(s')
        return np.exp(logq - v[:, :, None] + nxt)

    def dual(v: np.ndarray, q: np.ndarray) -> float:
        return float(q.sum() + mu0 @ v[0])

    def residual(q: np.ndarray) -> np.ndarray:  # C q − b
        r = q.sum(axis=-1)
        r[0] -= mu0
        r[1:] -= q[:-1].reshape(H - 1, S * A) @ P
        return r

    q = primal(v)
    f = dual(v, q)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        r = residual(q)
        if np.max(np.abs(r)) <= tol:
            converged = True
            break
        D = np.zeros((H, S, S))
        O = np.zeros((H, S, S))
        n = q.sum(axis=-1)
        D[:, np.arange(S), np.arange(S)] = n
        for h in range(1, H):
            qf = q[h - 1].ravel()
            D[h] += P.T @ (qf[:, None] * P)
            O[h] = -(P * qf[:, None]).T.reshape(S, S, A).sum(axis=-1)  # (t, s) = −Σ_a q_{h−1}(s, a) P(t|s, a)
        D[:, np.arange(S), np.arange(S)] += 1e-14 * (1.0 + n)
        step = _block_tridiag_solve(D, O, r)  # Newton: Hess · step = −grad = C q − b
        dec = -float(np.sum(r * step))
        rnorm = float(np.max(np.abs(r)))
        t = 1.0
        while True:  # Armijo on Φ, or (near the optimum, where Φ's decrease is below round-off) a smaller residual
            q_new = primal(v + t * step)
            f_new = dual(v + t * step, q_new)
            if f_new <= f + 1e-4 * t * dec or float(np.max(np.abs(residual(q_new)))) < rnorm or t < 1e-12:
                break
            t *= 0.5
        v, f, q = v + t * step, f_new, q_new
    resid = float(np.max(np.abs(residual(q))))
    if not converged and resid > 1e-6:
        raise RuntimeError(f"O-REPS projection did not converge in {max_iter} Newton steps: flow residual {resid:.3e}")
    return OREPSProjection(occupancy=q, dual=v, iterations=it, flow_residual=resid, converged=converged)


def oreps(game: AdversarialMDP, eta: float | None = None, *, feedback: str = "full", implicit_exploration: float = 0.0,
          rng: np.random.Generator | None = None, seed: int | None = None, checkpoints: Any = None) -> AdversarialRun:
    """O-REPS (Zimin & Neu 2013): online mirror descent over occupancy measures, known transitions.

        q̃_{k+1} = q_k · exp(−η ℓ̂_k),   q_{k+1} = argmin_{q ∈ Δ(M)} D(q ‖ q̃_{k+1})   (oreps_projection),

    q_1 the occupancy of the uniform policy, π_k = q_k / Σ_a q_k (rlref.solve.policy_from_occupancy).
    feedback="full": ℓ̂_k = ℓ_k; "bandit": ℓ̂_k(h, s, a) = ℓ_k(h, s, a) 1{(s_h, a_h) = (s, a)} / (q_k(h, s, a) + γ_IX)
    (importance weighted; γ_IX = ``implicit_exploration``, 0 = unbiased). η defaults to
    √(log(S A) / (H K)) (full) and √(log(S A) / (S A H K)) (bandit) — the rate-optimal scalings.
    Regret: Õ(H √K) full information, Õ(√(H S A K)) bandit (Zimin & Neu 2013, Thm 1-2).
    """
    if not isinstance(game, AdversarialMDP):
        raise ValueError(f"game must be an AdversarialMDP, got {type(game).__name__}")
    if feedback not in ("full", "bandit"):
        raise ValueError(f"feedback must be 'full' or 'bandit', got {feedback!r}")
    H, S, A, K = game.H, game.S, game.A, game.K
    if eta is None:
        eta = np.sqrt(np.log(S * A) / (H * K)) if feedback == "full" else np.sqrt(np.log(S * A) / (S * A * H * K))
    eta = check_positive("eta", eta)
    if not (implicit_exploration >= 0.0):
        raise ValueError(f"implicit_exploration must be >= 0, got {implicit_exploration!r}")
    gen = as_generator(rng, seed)
    env = Simulator(game.mdp, gen)
    q = occupancy_measure(game.mdp, np.full((H, S, A), 1.0 / A))
    q = np.maximum(q, 1e-300)
    exp_l = np.empty(K)
    real_l = np.empty(K)
    pi = np.full((H, S, A), 1.0 / A)
    for k in range(K):
        pi = policy_from_occupancy(q)
        exp_l[k] = float(np.sum(q * game.losses[k]))
        st, ac = env.rollout(pi, 1)
        st, ac = st[0], ac[0]
        step = game.losses[k, np.arange(H), st, ac]
        real_l[k] = float(step.sum())
        if feedback == "full":
            ell_hat = game.losses[k]
        else:
            ell_hat = np.zeros((H, S, A))
            ell_hat[np.arange(H), st, ac] = step / (q[np.arange(H), st, ac] + implicit_exploration)
        # q_k is feasible, so the dual of this projection is a small correction: start it at 0
        q = oreps_projection(game.mdp, np.maximum(q * np.exp(-eta * ell_hat), 1e-300)).occupancy
    return _finish_run(game, f"oreps_{feedback}", exp_l, real_l, checkpoints, None, pi,
                       {"eta": eta, "feedback": feedback, "implicit_exploration": implicit_exploration})


# ------------------------------------------------------------------------------------- rates
# LogLogFit and fit_loglog_slope live in rlref.algorithms.rates (imported above, re-exported here).


# ------------------------------------------------------------------------------------- simulator-free
#: the simulator-free learners of :func:`simulator_free_po`
SIMULATOR_FREE = ("log_barrier_sf", "mgr_hedge_sf")


def _check_feats(feats: Any, gamma: float) -> tuple[np.ndarray, float]:
    f = as_float_array("feats", feats, ndim=3)
    check_finite("feats", f)
    return f, check_positive("gamma", gamma)


def ridge_inverse(feats: Any, gamma: float) -> np.ndarray:
    """The plug-in ridge inverse (γI + Σ̂_h)⁻¹ with Σ̂_h = (1/m) Σ_{t ≤ m} φ_{t,h} φ_{t,h}ᵀ, batched over h.

    This is the estimator that replaces Matrix Geometric Resampling in the simulator-free variant
    (:func:`simulator_free_po`, ``"log_barrier_sf"``): the covariance samples come from real episodes
    of the same policy that are independent of the episodes whose losses are estimated. It is biased
    only at second order, with the bound (derived here from A⁻¹ − B⁻¹ = A⁻¹(B − A)B⁻¹ applied twice and
    E Σ̂ = Σ):

        Σ̂⁺ − Σ⁺ = Σ⁺(Σ − Σ̂)Σ⁺ + Σ⁺(Σ − Σ̂)Σ̂⁺(Σ − Σ̂)Σ⁺   ⇒   ‖E Σ̂⁺ − Σ⁺‖₂ ≤ γ⁻³ E‖Σ̂ − Σ‖²_F = γ⁻³ v / m,

    v = E‖φφᵀ − Σ‖²_F (tested by Monte Carlo). With m = 0 samples it returns I/γ.
    Shapes: feats[m, h, d] -> [h, d, d]. Raises ValueError if gamma <= 0 or feats is not a finite 3-d array.
    References: Dai, Luo, Wei, Zimmert (2023), §5 (the simulator-free extension; the paper's exact
    estimator could not be retrieved here, this plug-in form and its bias bound are derived here).
    """
    f, gam = _check_feats(feats, gamma)
    m, H, d = f.shape
    sig = np.einsum("mhi,mhj->hij", f, f) / max(m, 1)
    return np.linalg.inv(gam * np.eye(d) + sig)


def mgr_inverse(feats: Any, gamma: float, c: float) -> np.ndarray:
    """Matrix Geometric Resampling (Neu & Olkhovskaya 2020, Alg. 2) for (γI + Σ_h)⁻¹, batched over h.

        Σ̂⁺ = c I + c Σ_{i=1}^{m} Π_{j ≤ i} (I − c(γI + φ_j φ_jᵀ)),
        E Σ̂⁺ = c Σ_{i=0}^{m} (I − c(γI + Σ))^i = (γI + Σ)⁻¹ (I − (I − c(γI + Σ))^{m+1})

    (independent samples φ_j with E φφᵀ = Σ): a truncated Neumann series, so its bias decays like
    (1 − cγ)^{m+1} and its norm is ≤ c(m + 1). ``c`` must satisfy c (γ + max ‖φ‖²) ≤ 1 so that every
    factor is a contraction (checked on the samples). Shapes: feats[m, h, d] -> [h, d, d] (not symmetric).
    Raises ValueError if gamma <= 0, c <= 0 or c (γ + ‖φ_j‖²) > 1 for some sample.
    References: Neu & Olkhovskaya (2020), "Efficient and robust algorithms for adversarial linear
    contextual bandits", COLT, §3 (MGR); Luo, Wei, Lee (2021), §5 (its use in the simulator-free linear-MDP algorithm).
    """
    f, gam = _check_feats(feats, gamma)
    c = check_positive("c", c)
    m, H, d = f.shape
    if m and float(c * (gam + np.max(np.sum(f * f, axis=-1)))) > 1.0 + 1e-12:
        raise ValueError(f"c must satisfy c * (gamma + max ||phi||^2) <= 1, got c = {c!r}, gamma = {gam!r}, "
                         f"max ||phi||^2 = {float(np.max(np.sum(f * f, axis=-1)))!r}")
    Y = np.broadcast_to(np.eye(d), (H, d, d)).copy()
    acc = Y.copy()
    for j in range(m):  # Y <- Y (I - c(γI + φφᵀ)) = (1 - cγ) Y - c (Yφ) φᵀ
        phi_j = f[j]
        Y = (1.0 - c * gam) * Y - c * np.einsum("hij,hj,hk->hik", Y, phi_j, phi_j)
        acc += Y
    return c * acc


def regressed_dilated_bonus(pi: np.ndarray, phi: np.ndarray, sigma_inv: np.ndarray, states: np.ndarray, actions: np.ndarray,
                            beta: float) -> np.ndarray:
    """The dilated bonus of Luo et al. (2021) without a simulator or a model: the next-state term by ridge regression.

        b(h, s, a) = β ‖φ(s, a)‖²_{Σ̂⁺_h} + β Σ_{a'} π(a'|h, s) ‖φ(s, a')‖²_{Σ̂⁺_h},
        B(h, s, a) = b(h, s, a) + (1 + 1/H) φ(s, a)ᵀ w_h,   w_h = Σ̂⁺_h (1/m) Σ_t φ(s^t_h, a^t_h) V_{h+1}(s^t_{h+1}),
        V_{h+1}(s) = Σ_a π(a|h+1, s) B(h+1, s, a),   B(H) = 0,

    from m real trajectories (states[m, H], actions[m, H]) of π: in a linear MDP E[V(s')|s, a] = ⟨φ(s, a), μV⟩,
    and w_h is its least-squares (ridge) estimate, as in LSVI (Jin et al. 2020). With m = 0 the regression
    term is 0. Equals :func:`dilated_bonus` in the limit m → ∞, γ → 0 (tested). Derived here (the paper's
    simulator-free bonus estimate could not be retrieved). Shapes: pi[h, s, a], phi[s, a, d], sigma_inv[h, d, d] -> B[h, s, a].
    """
    H = pi.shape[0]
    w = np.einsum("sai,hij,saj->hsa", phi, sigma_inv, phi)
    b = beta * (w + np.einsum("hsa,hsa->hs", pi, w)[:, :, None])
    B = np.empty_like(b)
    m = states.shape[0]
    B[H - 1] = b[H - 1]
    for h in range(H - 2, -1, -1):
        if m:
            v_next = np.einsum("ta,ta->t", pi[h + 1, states[:, h + 1]], B[h + 1, states[:, h + 1]])
            wh = sigma_inv[h] @ (phi[states[:, h], actions[:, h]].T @ v_next / m)
            B[h] = b[h] + (1.0 + 1.0 / H) * np.einsum("sai,i->sa", phi, wh)
        else:
            B[h] = b[h]
    return B


def epoch_q_estimate(phi: np.ndarray, sigma_inv: np.ndarray, states: np.ndarray, actions: np.ndarray, step_losses: np.ndarray,
                     weight: float = 1.0) -> np.ndarray:
    """θ̂_h = weight · Σ̂⁺_h Σ_t φ(s^t_h, a^t_h) L^t_h over n episodes, L^t_h = Σ_{h' ≥ h} ℓ_t(h', s^t_{h'}, a^t_{h'}).

    The epoch loss estimate of :func:`simulator_free_po` (weight = 2 undoes the fair coin that makes an
    episode a loss episode): Q̂(h, s, a) = ⟨φ(s, a), θ̂_h⟩. With Σ̂⁺_h = (E_π φφᵀ)⁻¹ and every episode
    kept with probability 1/weight, E θ̂_h = Σ_t θ^π_{t,h} (the summed Q of the epoch; tested).
    Shapes: phi[s, a, d], sigma_inv[h, d, d], states/actions/step_losses[n, h] -> θ̂[h, d] (zeros if n = 0).
    References: Luo et al. (2021), eq. (11), summed over an epoch as in their §5; derived here.
    """
    togo = np.cumsum(step_losses[:, ::-1], axis=1)[:, ::-1]
    v = weight * np.einsum("thi,th->hi", phi[states, actions], togo)
    return np.einsum("hij,hj->hi", sigma_inv, v)


@dataclass(frozen=True)
class SimFreeTuning:
    """Constant parameters of one simulator-free run: learning rate η (per unit of epoch loss), ridge γ,
    bonus β, epoch length W (episodes per policy), and the MGR step c (used by ``"mgr_hedge_sf"`` only)."""

    eta: float
    gamma: float
    beta: float
    epoch: int
    mgr_step: float = 0.0


def default_simfree_tuning(algorithm: str, K: int, H: int, A: int, d: int, phi_sq_max: float = 1.0, *, c_eta: float = 1.0,
                           c_gamma: float = 1.0, c_beta: float = 0.1, c_epoch: float = 1.0) -> SimFreeTuning:
    """The scaling of each simulator-free learner's parameters with K (derived here; see the decomposition below).

    Simplified regret decomposition of the epoch scheme of :func:`simulator_free_po` (W = K^w episodes per
    epoch, γ = K^{-g}; H, d, A and logs dropped; derived here): FTRL regularizer + stability ≈ 1/η + ηKW,
    covariance-estimation bias ≈ K/(γ√W) (the bound of :func:`ridge_inverse`, first order), ridge bias
    plus bonus ≈ γK/β + βK ≈ K√γ (β = √γ).

    * ``"log_barrier_sf"`` (Dai et al. 2023's simulator-free Algorithm 1, as derived here): the log-barrier
      lets η be tuned freely, η ≈ 1/√(KW): terms K^{(1+w)/2}, K^{1+g−w/2}, K^{1−g/2}; balancing gives
      w = 2/3, g = 2/9 and the design rate K^{8/9} (the paper's rate). η = c_η √(A/(d H² K W)).
    * ``"mgr_hedge_sf"`` (Luo et al. 2021's simulator-free scheme, as derived here): Hedge needs
      η·|epoch estimate| ≤ 1, and MGR's norm is ≤ c(m+1) ≈ cW, so η = c_η/(2 H φ²_max c W (W/2 + 1)):
      regularizer ≈ W², plus the two bias terms: w = 3g, 2w = 1 − g/2 give g = 2/13, w = 6/13 and the
      design rate K^{12/13} of this simplified decomposition (the paper states K^{14/15} for Luo et al.,
      whose analysis also pays for exploration with a policy cover, which this decomposition omits).

    β = c_β K^{-g/2}; the MGR step is c = 1/(γ + φ²_max) (``phi_sq_max`` = max ‖φ(s, a)‖²).
    """
    if algorithm not in SIMULATOR_FREE:
        raise ValueError(f"algorithm must be one of {SIMULATOR_FREE}, got {algorithm!r}")
    K, H, A, d = check_count("K", K), check_count("H", H), check_count("A", A), check_count("d", d)
    phi_sq_max = check_positive("phi_sq_max", phi_sq_max)
    if algorithm == "log_barrier_sf":
        W = int(min(K, max(2, np.ceil(c_epoch * K ** (2.0 / 3.0)))))
        gam = c_gamma * K ** (-2.0 / 9.0)
        return SimFreeTuning(eta=c_eta * np.sqrt(A / (d * H * H * K * W)), gamma=gam, beta=c_beta * K ** (-1.0 / 9.0), epoch=W)
    W = int(min(K, max(2, np.ceil(c_epoch * K ** (6.0 / 13.0)))))
    gam = c_gamma * K ** (-2.0 / 13.0)
    c = 1.0 / (gam + phi_sq_max)
    return SimFreeTuning(eta=c_eta / (2.0 * H * phi_sq_max * c * W * (W / 2.0 + 1.0)), gamma=gam,
                         beta=c_beta * K ** (-1.0 / 13.0), epoch=W, mgr_step=c)


def simulator_free_po(game: AdversarialMDP, algorithm: str, tuning: SimFreeTuning | None = None, *,
                      rng: np.random.Generator | None = None, seed: int | None = None, checkpoints: Any = None,
                      check_linear: bool = True) -> AdversarialRun:
    """Simulator-free policy optimization in epochs: no simulator call, only the played episodes.

    Episodes are grouped in epochs of W; in epoch j the learner plays the fixed policy
    π_j = FTRL(Σ_{i<j} (Q̂_i − B_i)) at every (h, s) in all W episodes, and each episode t of the epoch
    is, by an independent fair coin, a *covariance* episode (t ∈ C_j) or a *loss* episode (t ∈ E_j), so
    the two sets of trajectories are independent given π_j. After the epoch:

        Σ̂⁺_{j,h} from the features of C_j: ridge_inverse (``"log_barrier_sf"``) or mgr_inverse (``"mgr_hedge_sf"``),
        Q̂_j(h, s, a) = Σ_{t ∈ E_j} 2 φ(s, a)ᵀ Σ̂⁺_{j,h} φ(s^t_h, a^t_h) L^t_h        (an estimate of Σ_{t in epoch j} Q^{π_j}_t),
        B_j = W · regressed_dilated_bonus(π_j, φ, Σ̂⁺_j, C_j's trajectories, β).

    The factor 2 undoes the coin: with the exact Σ⁺ (γ = 0), E[Q̂_j] = Σ_t Q^{π_j}_t exactly (tested).
    ``"log_barrier_sf"``: log-barrier FTRL (the simulator-free extension of Dai et al. 2023's Algorithm 1,
    whose point is that the log-barrier tolerates the estimator's negative values, so η is free of γ);
    ``"mgr_hedge_sf"``: Hedge with MGR (the earlier scheme of Luo et al. 2021, simplified: no policy cover).
    tuning: :func:`default_simfree_tuning` when omitted. The regret is the exact pseudo-regret of the
    played π_j (see :class:`AdversarialRun`); simulator_calls is 0.
    Cost per epoch: O(W H d² + H S A d²) (MGR: O(W H d²) more). Derived here (the paper's epoch schedule,
    exploration policy and constants could not be retrieved), following the structure of Luo et al. (2021), §5.
    References: Dai, Luo, Wei, Zimmert (2023), §5 (K^{8/9}); Luo, Wei, Lee (2021), §5 (K^{14/15});
    Neu & Olkhovskaya (2020) (MGR).
    """
    if not isinstance(game, AdversarialMDP):
        raise ValueError(f"game must be an AdversarialMDP, got {type(game).__name__}")
    if algorithm not in SIMULATOR_FREE:
        raise ValueError(f"algorithm must be one of {SIMULATOR_FREE}, got {algorithm!r}")
    H, S, A, d, K = game.H, game.S, game.A, game.d, game.K
    phi = game.phi
    phi_sq_max = float(np.max(np.sum(phi * phi, axis=-1)))
    tun = default_simfree_tuning(algorithm, K, H, A, d, max(phi_sq_max, 1e-300)) if tuning is None else tuning
    if not isinstance(tun, SimFreeTuning):
        raise ValueError(f"tuning must be a SimFreeTuning, got {type(tun).__name__}")
    eta = check_positive("tuning.eta", tun.eta)
    gam = check_positive("tuning.gamma", tun.gamma)
    if not (tun.beta >= 0.0 and np.isfinite(tun.beta)):
        raise ValueError(f"tuning.beta must be finite and >= 0, got {tun.beta!r}")
    W = check_count("tuning.epoch", tun.epoch)
    if algorithm == "mgr_hedge_sf":
        c = check_positive("tuning.mgr_step", tun.mgr_step)
        if c * (gam + phi_sq_max) > 1.0 + 1e-12:
            raise ValueError(f"tuning.mgr_step must satisfy c * (gamma + max ||phi||^2) <= 1, got {c!r} "
                             f"(gamma {gam!r}, max ||phi||^2 {phi_sq_max!r})")
    if check_linear:
        require_linear_q(game)
    gen = as_generator(rng, seed)
    env = Simulator(game.mdp, gen)  # the real environment only
    cum = np.zeros((H, S, A))
    exp_l = np.empty(K)
    real_l = np.empty(K)
    pi = np.full((H, S, A), 1.0 / A)
    hs = np.arange(H)
    k = 0
    while k < K:
        n = min(W, K - k)
        pi = _log_barrier_step(cum, eta) if algorithm == "log_barrier_sf" else softmax_policy(-cum, temperature=1.0 / eta)
        occ = occupancy_measure(game.mdp, pi)
        exp_l[k:k + n] = np.einsum("hsa,khsa->k", occ, game.losses[k:k + n])
        st, ac = env.rollout(pi, n)
        steps = game.losses[k + np.arange(n)[:, None], hs[None, :], st, ac]  # (n, H)
        real_l[k:k + n] = steps.sum(axis=1)
        is_loss = gen.random(n) < 0.5
        cst, cac = st[~is_loss], ac[~is_loss]
        feats = phi[cst, cac]  # (m, H, d)
        sigma_inv = ridge_inverse(feats, gam) if algorithm == "log_barrier_sf" else mgr_inverse(feats, gam, tun.mgr_step)
        theta = epoch_q_estimate(phi, sigma_inv, st[is_loss], ac[is_loss], steps[is_loss], weight=2.0)
        cum += np.einsum("sai,hi->hsa", phi, theta)
        if tun.beta > 0:
            cum -= n * regressed_dilated_bonus(pi, phi, sigma_inv, cst, cac, tun.beta)
        k += n
    params = {"eta": eta, "gamma": gam, "beta": float(tun.beta), "epoch": W, "mgr_step": float(tun.mgr_step)}
    return _finish_run(game, algorithm, exp_l, real_l, checkpoints, None, pi, params)
