"""Demonstration-regularized RL and RLHF on finite-horizon tabular and linear MDPs.

Implements Tiapkin, Belomestny, Calandriello, Moulines, Munos, Naumov, Perrault, Valko & Ménard
(2024), "Demonstration-Regularized RL", ICLR (arXiv:2310.17303):

1. **Behaviour cloning** from N^E expert trajectories. Tabular: maximum likelihood with the
   paper's logarithmic regularization, closed form π^BC_h(a|s) = (n_h(s,a) + κ)/(n_h(s) + κA)
   (:func:`behavior_cloning`). Linear: a log-linear policy π_θ(a|s) ∝ exp(⟨φ(s,a), θ_h⟩) fit by
   convex maximum likelihood (:func:`linear_behavior_cloning`). The trajectory KL
   E_{π_E}[Σ_h KL(π_E,h(s_h) ‖ π_BC,h(s_h))] is computed exactly by the occupancy recursion
   (:func:`trajectory_kl`).
2. **KL-regularized best-policy identification toward π_BC** — an optimistic explorer in the
   spirit of the paper's UCBVI-Ent+ (:func:`regularized_bpi`; linear LSVI-UCB-style variant
   :func:`linear_regularized_bpi`) — and the baselines in the same harness: plain BC, the same
   explorer toward the uniform policy, and UCBVI for the unregularized MDP (:func:`ucbvi_bpi`).
   It touches the MDP only through sampled episodes (:func:`sample_trajectories`).
3. **Demonstration-regularized RLHF**: BC, a Bradley-Terry reward fitted by maximum likelihood
   on trajectory preference pairs (:func:`fit_trajectory_reward`), then KL-regularized planning
   toward π_BC (:func:`demo_regularized_rlhf`).
4. The **exact decomposition** of V* − V^π̂ (:func:`suboptimality_decomposition`).

The regularized objective (finite horizon H, stages h = 0..H−1, rewards r_h ∈ [0, 1]):

    V^π_λ(s_0) = E_π[ Σ_h r_h(s_h, a_h) − λ KL(π_h(·|s_h) ‖ π̃_h(·|s_h)) ],

soft Bellman V_h(s) = λ log Σ_a π̃_h(a|s) exp(Q_h(s,a)/λ), Q_h = r_h + p_h V_{h+1}, V_H = 0
(computed by :func:`rlref.solve.soft_value` / :func:`rlref.solve.soft_value_iteration`).

Constants. The exact bonus and stopping constants of UCBVI-Ent+ (paper, App. on regularized
BPI) and of UCBVI-Ent (Tiapkin et al. 2023, "Fast rates for maximum entropy exploration", ICML)
could not be retrieved in this session, so valid ones are **derived here** from Hoeffding's
inequality (for the fixed function V*_{h+1}), Weissman et al.'s (2003) L1 deviation bound and
Jonsson et al.'s (2020) KL concentration of p̂_h(·|s,a) (for data-dependent functions; the KL
one through a Donsker-Varadhan step, :func:`kl_upper_mean`) and a union bound over (h, s, a, n)
with weights 1/(n(n+1)); see :func:`confidence_widths`. The fast-rate stopping rule uses the identity
(derived here; the regularized performance-difference lemma)

    V*_λ(s_0) − V^π_λ(s_0) = λ E_π[ Σ_h KL(π_h(·|s_h) ‖ π*_h(·|s_h)) ],   π*_h ∝ π̃_h e^{Q*_h/λ},

and, for two tilts of π̃ with 0 ≤ Q̄ − Q* ≤ D, λ KL(π_Q̄ ‖ π_Q*) ≤ min(m, e^{m/λ} π·D²/(2λ), G²/(8λ)),
m = π·D, G = max D (:func:`tilt_gap_bound`; second-order expansion of the log-partition). The gap is therefore
quadratic in the width of the confidence interval on Q*, which is what gives Õ(1/ε) rather than
Õ(1/ε²) for regularized BPI (paper, Thm 5 for UCBVI-Ent+; Tiapkin et al. 2023, UCBVI-Ent).

References: Tiapkin et al. (2024), "Demonstration-Regularized RL", ICLR — BC with logarithmic
regularization (§3), demonstration-regularized BPI (§4, Thm 5, Cor. 3), RLHF (§5); Tiapkin et al.
(2023), "Fast rates for maximum entropy exploration", ICML; Azar, Osband & Munos (2017), UCBVI;
Jin, Yang, Wang & Jordan (2020), LSVI-UCB, Thm 3.1; Weissman et al. (2003), "Inequalities for
the L1 deviation of the empirical distribution", Thm 2.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_softmax, logsumexp

from rlref._checks import as_float_array, check_beta, check_count, check_positive
from rlref.algorithms._mdp_checks import check_finite_horizon
from rlref.algorithms.sampling import rollout_episodes
from rlref.linear import LinearMDP
from rlref.mdp import TabularMDP
from rlref.policy import validate_policy
from rlref.solve import (
    kl_rows,
    policy_evaluation,
    soft_greedy_unchecked,
    soft_policy_evaluation,
    soft_value_iteration,
    soft_value_unchecked,
    state_occupancy,
    value_iteration,
)

__all__ = [
    "Trajectories",
    "BCResult",
    "LinearBCResult",
    "BPIResult",
    "Decomposition",
    "RLHFResult",
    "PreferencePairs",
    "sample_trajectories",
    "behavior_cloning",
    "linear_behavior_cloning",
    "log_linear_policy",
    "trajectory_kl",
    "confidence_widths",
    "kl_upper_mean",
    "tilt_gap_bound",
    "regularized_bpi",
    "ucbvi_bpi",
    "linear_regularized_bpi",
    "suboptimality_decomposition",
    "sample_preference_pairs",
    "fit_trajectory_reward",
    "demo_regularized_rlhf",
]


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Trajectories:
    """N episodes of length H: ``states[i, h]`` = s_h, ``actions[i, h]`` = a_h (int arrays [N, H]).
    ``final_states[i]`` = s_H (the state reached after the last action)."""

    states: np.ndarray
    actions: np.ndarray
    final_states: np.ndarray


def _check_int_array(name: str, x: object, upper: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be an int array of shape [N, H], got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); behaviour cloning needs at least one trajectory of length >= 1")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    bad = (arr < 0) | (arr >= upper)
    if np.any(bad):
        i, h = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{name}[{i}, {h}] = {int(arr[i, h])} is out of range [0, {upper})")
    return arr.astype(np.int64)


def _check_trajectories(states: object, actions: object, S: int, A: int, horizon: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    s = _check_int_array("states", states, S)
    a = _check_int_array("actions", actions, A)
    if s.shape != a.shape:
        raise ValueError(f"states and actions must have the same shape [N, H]; got {s.shape} and {a.shape}")
    if horizon is not None and s.shape[1] != horizon:
        raise ValueError(f"trajectories have horizon {s.shape[1]} but the MDP has horizon H = {horizon}")
    return s, a


def _stage_P(mdp: TabularMDP) -> np.ndarray:
    P = mdp.dense_P()
    return P if P.ndim == 4 else np.broadcast_to(P, (mdp.horizon, *P.shape))


def _stage_r(mdp: TabularMDP) -> np.ndarray:
    return np.stack([mdp.reward(h) for h in range(mdp.horizon)])


def _staged_policy(mdp: TabularMDP, pi: np.ndarray, name: str = "pi") -> np.ndarray:
    pi = validate_policy(mdp, pi, name=name)
    return pi if pi.ndim == 3 else np.broadcast_to(pi, (mdp.horizon, *pi.shape))


def sample_trajectories(mdp: TabularMDP, pi: np.ndarray, num_episodes: int, rng: np.random.Generator) -> Trajectories:
    """Roll out ``num_episodes`` independent episodes of π in a finite-horizon MDP.

    s_0 ~ μ0, a_h ~ π_h(·|s_h), s_{h+1} ~ p_h(·|s_h, a_h); vectorized over episodes (a loop over
    the H stages only). Shapes: pi[s, a] or pi[h, s, a] -> Trajectories with int arrays [N, H].
    Raises ValueError if the MDP is discounted, pi is not a policy for it, or num_episodes < 1.
    """
    check_finite_horizon(mdp, "demonstration-regularized RL is episodic")
    pi = _staged_policy(mdp, pi)
    N = check_count("num_episodes", num_episodes)
    P = _stage_P(mdp)
    return _rollout(P, pi, mdp.mu0, N, rng)


def _rollout(P: np.ndarray, pi: np.ndarray, mu0: np.ndarray, N: int, rng: np.random.Generator,
             cP: np.ndarray | None = None) -> Trajectories:
    """Vectorized episodes; ``cP`` = cumsum of P over s' may be passed in (computed once by the explorers)."""
    states, actions, final = rollout_episodes(np.cumsum(P, axis=-1) if cP is None else cP, pi, mu0, N, rng)
    return Trajectories(states=states, actions=actions, final_states=final)


# ----------------------------------------------------------------------------- behaviour cloning
@dataclass(frozen=True)
class BCResult:
    """Tabular behaviour cloning: ``policy[h, s, a]``, the counts ``counts[h, s, a]`` = n_h(s, a),
    ``kappa`` and the regularized log-likelihood it maximizes."""

    policy: np.ndarray
    counts: np.ndarray
    kappa: float
    log_likelihood: float


def behavior_cloning(states: np.ndarray, actions: np.ndarray, num_states: int, num_actions: int, *, kappa: float) -> BCResult:
    """Tabular behaviour cloning with logarithmic regularization (closed-form MLE).

    π^BC = argmax_π Σ_i Σ_h log π_h(a_h^i|s_h^i) + κ Σ_{h,s,a} log π_h(a|s), whose maximizer
    (one Lagrange multiplier per (h, s)) is

        π^BC_h(a|s) = (n_h(s, a) + κ) / (n_h(s) + κ A);

    unvisited (h, s) get the uniform policy; every action keeps mass ≥ κ/(n_h(s) + κA).
    κ = 0 is the plain MLE (unvisited states uniform), allowed for comparison.
    Shapes: states, actions int [N, H] -> policy [H, S, A].
    Raises ValueError on empty data, out-of-range or non-integer entries, shape mismatch, κ < 0.
    References: Tiapkin et al. (2024), §3, the tabular BC estimator with logarithmic
    regularization (Laplace/add-κ smoothing).
    """
    S = check_count("num_states", num_states)
    A = check_count("num_actions", num_actions)
    k = float(kappa)
    if not np.isfinite(k) or k < 0:
        raise ValueError(f"kappa must be a finite number >= 0, got {kappa!r}")
    s, a = _check_trajectories(states, actions, S, A)
    H = s.shape[1]
    flat = (np.arange(H)[None, :] * S + s) * A + a
    counts = np.bincount(flat.ravel(), minlength=H * S * A).reshape(H, S, A).astype(np.float64)
    n_s = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        pol = np.where(n_s + k * A > 0, (counts + k) / (n_s + k * A), 1.0 / A)
    logp = np.log(np.where(pol > 0, pol, 1.0))  # pol = 0 only where κ = 0 and n_h(s, a) = 0 (weight 0)
    ll = float(np.sum(counts * logp) + k * np.sum(logp))
    return BCResult(policy=pol, counts=counts, kappa=k, log_likelihood=ll)


@dataclass(frozen=True)
class LinearBCResult:
    """Log-linear behaviour cloning: ``theta[h, d]``, ``policy[h, s, a]`` = π_θ, the fitted negative
    log-likelihood per trajectory and the optimizer's gradient norm at the solution."""

    theta: np.ndarray
    policy: np.ndarray
    neg_log_likelihood: float
    grad_norm: float
    converged: bool


def log_linear_policy(phi: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """π_θ,h(a|s) = exp(⟨φ(s, a), θ_h⟩) / Σ_b exp(⟨φ(s, b), θ_h⟩).
    Shapes: phi[s, a, d], theta[h, d] -> [h, s, a] (log-space softmax)."""
    phi = as_float_array("phi", phi, ndim=3)
    theta = as_float_array("theta", theta, ndim=2)
    if theta.shape[1] != phi.shape[2]:
        raise ValueError(f"theta has dimension {theta.shape[1]} but phi has d = {phi.shape[2]}")
    return np.exp(log_softmax(np.einsum("sad,hd->hsa", phi, theta), axis=-1))


def linear_behavior_cloning(states: np.ndarray, actions: np.ndarray, phi: np.ndarray, *, ridge: float = 0.0,
                            tol: float = 1e-10, max_iter: int = 2000) -> LinearBCResult:
    """Behaviour cloning over the log-linear class π_θ,h(a|s) ∝ exp(⟨φ(s, a), θ_h⟩) by convex MLE.

    θ̂_h = argmin_θ −(1/N) Σ_i log π_θ(a_h^i|s_h^i) + (ridge/2)‖θ‖², one convex problem per stage
    (the log-partition is convex in θ), solved by L-BFGS with the exact gradient
    −(1/N) Σ_i [φ(s_h^i, a_h^i) − E_{π_θ}φ(s_h^i, ·)] + ridge·θ. The paper needs no regularization in
    the linear case (ridge = 0, the default); if the data are separable in some direction the MLE
    is at infinity and the optimizer stops at a large finite θ (``converged`` is then False, reported).
    Shapes: states, actions [N, H], phi[s, a, d] -> theta[h, d], policy[h, s, a].
    References: Tiapkin et al. (2024), §3 (BC for linear MDPs, the log-linear class).
    """
    phi = as_float_array("phi", phi, ndim=3)
    S, A, d = phi.shape
    s, a = _check_trajectories(states, actions, S, A)
    rid = float(ridge)
    if not np.isfinite(rid) or rid < 0:
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    N, H = s.shape
    theta = np.zeros((H, d))
    nll, gnorm, conv = 0.0, 0.0, True
    for h in range(H):
        F = phi[s[:, h]]  # [N, A, d]
        target = phi[s[:, h], a[:, h]].mean(axis=0)

        def f(th: np.ndarray, F: np.ndarray = F, target: np.ndarray = target) -> tuple[float, np.ndarray]:
            logits = F @ th
            lz = logsumexp(logits, axis=1)
            p = np.exp(logits - lz[:, None])
            val = float(lz.mean() - target @ th + 0.5 * rid * th @ th)
            grad = np.einsum("na,nad->d", p, F) / F.shape[0] - target + rid * th
            return val, grad

        res = minimize(f, np.zeros(d), jac=True, method="L-BFGS-B", options={"gtol": tol, "maxiter": max_iter})
        theta[h] = res.x
        val, grad = f(res.x)
        nll += val - 0.5 * rid * res.x @ res.x
        gnorm = max(gnorm, float(np.abs(grad).max()))
        conv &= bool(res.success) and float(np.abs(grad).max()) <= max(1e3 * tol, 1e-6)
    return LinearBCResult(theta=theta, policy=log_linear_policy(phi, theta), neg_log_likelihood=float(nll),
                          grad_norm=gnorm, converged=conv)


def trajectory_kl(mdp: TabularMDP, pi_expert: np.ndarray, pi_bc: np.ndarray) -> float:
    """Exact KL along expert trajectories:  E_{π_E}[ Σ_h KL(π_E,h(·|s_h) ‖ π_BC,h(·|s_h)) ]
    = Σ_h Σ_s d^{π_E}_h(s) KL(π_E,h(·|s) ‖ π_BC,h(·|s)), with d^{π_E}_h the exact state occupancy
    (:func:`rlref.solve.state_occupancy`; H mat-vecs, no sampling). It equals the KL between the
    trajectory distributions of π_E and π_BC (chain rule; the transition factors cancel).
    Returns +inf if π_E puts mass where π_BC has none at a reachable state.
    References: Tiapkin et al. (2024), §3 (the BC guarantee is stated for this quantity).
    """
    check_finite_horizon(mdp, "demonstration-regularized RL is episodic")
    pe = _staged_policy(mdp, pi_expert, "pi_expert")
    pb = _staged_policy(mdp, pi_bc, "pi_bc")
    d = state_occupancy(mdp, np.ascontiguousarray(pe))
    kl = kl_rows(pe, pb)
    reach = d > 0
    if np.any(reach & np.isinf(kl)):
        return float("inf")
    return float(np.sum(np.where(reach, d * np.where(np.isinf(kl), 0.0, kl), 0.0)))


# ----------------------------------------------------------------------------- exploration
def confidence_widths(counts: np.ndarray, horizon: int, num_states: int, num_actions: int, delta: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-(h, s, a) confidence widths used by the explorers (derived here). Returns (b, w, α).

    With n = n_h(s, a) ≥ 1, δ' = δ/3 per family and ℓ(n) = log(2 S A H n(n+1)/δ'):

    * Hoeffding, for the fixed function V*_{h+1} ∈ [0, H−h−1]:
      |(p̂_h − p_h) V*_{h+1}|(s, a) ≤ b_h(s, a) = (H−h−1) √(ℓ(n)/(2n));
    * Weissman et al. (2003), for every function at once: ‖p̂_h(·|s,a) − p_h(·|s,a)‖₁ ≤
      w_h(s, a) = min(2, √(2(S log 2 + ℓ(n) − log 2)/n)), so |(p̂ − p) f| ≤ w · span(f)/2;
    * Jonsson et al. (2020), Prop. 1 (anytime KL concentration of a categorical):
      KL(p̂_h(·|s,a) ‖ p_h(·|s,a)) ≤ α_h(s, a) = [log(S A H/δ') + (S−1) log(e(1 + n/(S−1)))]/n.

    The first two use the union bound over (h, s, a) and n ≥ 1 with weights 1/(n(n+1)) (Σ = 1);
    the third is uniform in n already. All three hold together with probability ≥ 1 − δ.
    n = 0 gives +inf. Shapes: counts[h, s, a] -> three arrays [h, s, a].
    References: Hoeffding (1963), Thm 2; Weissman et al. (2003), Thm 2.1; Jonsson, Kaufmann,
    Ménard, Darwiche Domingues, Leurent & Valko (2020), "Planning in MDPs with gap-dependent sample
    complexity", Prop. 1 (the β^KL threshold also used by UCBVI-Ent's code); the union-bound
    construction as in Azar et al. (2017) and Ménard et al. (2021); constants derived here.
    """
    d = float(delta)
    if not (0.0 < d < 1.0):
        raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
    n = np.asarray(counts, dtype=np.float64)
    H, S, A = int(horizon), int(num_states), int(num_actions)
    d3 = d / 3.0
    safe = np.maximum(n, 1.0)
    ell = np.log(2.0 * S * A * H * safe * (safe + 1.0) / d3)
    span = (H - 1 - np.arange(H, dtype=np.float64)).reshape((H,) + (1,) * (n.ndim - 1))
    hoeff = np.where(n > 0, span * np.sqrt(ell / (2.0 * safe)), np.inf)
    l1 = np.where(n > 0, np.minimum(2.0, np.sqrt(2.0 * (S * np.log(2.0) + ell - np.log(2.0)) / safe)), np.inf)
    dim = (S - 1) * np.log(np.e * (1.0 + safe / (S - 1))) if S > 1 else 0.0
    kl = np.where(n > 0, (np.log(S * A * H / d3) + dim) / safe, np.inf)
    return hoeff, l1, kl


def tilt_gap_bound(pi: np.ndarray, width: np.ndarray, lam: float) -> np.ndarray:
    """Upper bound on λ KL(π ‖ π*) when π ∝ π̃ e^{Q̄/λ}, π* ∝ π̃ e^{Q*/λ} and 0 ≤ Q̄ − Q* ≤ D = ``width``
    (derived here). With m = Σ_a π(a) D(a), G = max_a D(a):

        λ KL(π ‖ π*) ≤ min( m,  e^{m/λ} Σ_a π(a) D(a)²/(2λ),  G²/(8λ) ).

    Proof: with Δ = Q̄ − Q* and ψ(u) = log Σ_a π̃ e^{(Q* + uΔ)/λ}, KL(π ‖ π*) = ∫_0^1 ∫_t^1 ψ''(u) du dt and
    ψ'' = Var_{π_u}(Δ)/λ². Popoviciu gives Var ≤ G²/4 (third term); π_u ∝ π e^{−(1−u)Δ/λ} and
    Jensen give E_{π_u}Δ² ≤ e^{(1−u)m/λ} E_π Δ² (second term); λ KL = E_π Δ − λ(ψ(1) − ψ(0)) ≤ E_π Δ
    since Δ ≥ 0 (first term). The bound is quadratic in D where π puts its mass, which is what
    gives the Õ(1/ε) rate of regularized BPI (Tiapkin et al. 2024, Thm 5; Tiapkin et al. 2023).
    Shapes: pi[..., a], width[..., a] -> [...].
    """
    D = np.asarray(width, dtype=np.float64)
    m = np.einsum("...a,...a->...", pi, D)
    quad = np.exp(np.minimum(m / lam, 50.0)) * np.einsum("...a,...a->...", pi, D**2) / (2.0 * lam)
    G = D.max(axis=-1)
    return np.minimum(np.minimum(m, quad), G**2 / (8.0 * lam))


def kl_upper_mean(p_hat_f: np.ndarray, alpha: np.ndarray, f_max: float) -> np.ndarray:
    """Upper bound on p f from p̂ f for any f ∈ [0, F] when KL(p̂ ‖ p) ≤ α (derived here):

        p f ≤ min(F, ((√(2αF) + √(2αF + 4 p̂f))/2)²).

    Proof: Donsker-Varadhan with g = −t f gives −t p̂f ≤ α + log E_p e^{−tf} ≤ α − t pf + t² F pf/2
    (e^{−x} ≤ 1 − x + x²/2 for x ≥ 0, log(1+z) ≤ z, f² ≤ F f); optimizing t > 0,
    pf − √(2αF pf) ≤ p̂f, a quadratic inequality in √(pf). When p̂f = O(α) the bound is O(α) = O(1/n),
    which is what makes the quadratic gap bound of :func:`regularized_bpi` shrink like 1/n.
    Shapes: broadcast of p_hat_f and alpha; alpha = inf gives F.
    """
    F = float(f_max)
    a = np.asarray(alpha, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        root = np.sqrt(2.0 * np.where(np.isinf(a), 0.0, a) * F)
        val = (0.5 * (root + np.sqrt(root**2 + 4.0 * np.maximum(p_hat_f, 0.0)))) ** 2
    return np.where(np.isinf(a), F, np.minimum(F, val))


@dataclass(frozen=True)
class BPIResult:
    """Output of an explorer. ``policy[h, s, a]`` is the returned policy; ``certificate`` the
    upper bound on its (regularized, for λ > 0) suboptimality at stopping, valid on the
    confidence event when ``bonus_scale = 1``; ``episodes`` / ``samples`` (= episodes·H) the
    interaction used; ``converged`` whether the stopping rule fired before ``max_episodes``.
    ``upper_values`` / ``lower_values`` [h, s] are V̄ ≥ V* and V̲^π ≤ V^π at stopping (for
    :func:`linear_regularized_bpi`, ``lower_values`` is the lower bound V̲* on V* instead);
    ``history_*`` record (episodes, certificate, policy) at every re-planning."""

    policy: np.ndarray
    certificate: float
    episodes: int
    samples: int
    converged: bool
    lam: float
    upper_values: np.ndarray
    lower_values: np.ndarray
    history_episodes: np.ndarray
    history_certificate: np.ndarray
    history_policies: np.ndarray | None


def _check_explorer_args(epsilon: float, delta: float, bonus_scale: float, max_episodes: int, growth: float) -> None:
    check_positive("epsilon", epsilon)
    if not (0.0 < float(delta) < 1.0):
        raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
    check_positive("bonus_scale", bonus_scale)
    check_positive("growth", growth)
    check_count("max_episodes", max_episodes)


def _check_rewards(r: np.ndarray) -> None:
    if np.any(r < -1e-12) or np.any(r > 1 + 1e-12):
        idx = tuple(int(i) for i in np.argwhere((r < -1e-12) | (r > 1 + 1e-12))[0])
        raise ValueError(f"the explorers assume rewards in [0, 1] (value range [0, H − h]); r{list(idx)} = {float(r[idx])!r}")


def _tabular_plan(n_sa: np.ndarray, n_sas: np.ndarray, r: np.ndarray, ref: np.ndarray | None, lam: float | None,
                  delta: float, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One optimistic backward pass on the empirical model. Returns (policy, V̄, V̲^π, W_0)."""
    H, S, A = r.shape
    hoeff, l1, klw = confidence_widths(n_sa, H, S, A, delta)
    hoeff, l1, klw = scale * hoeff, scale * l1, scale**2 * klw
    inv_n = 1.0 / np.maximum(n_sa, 1.0)  # p̂_h f = (n_h(s, a, ·) · f)/n_h(s, a) (0 where unvisited; never densified)

    def p_hat(h: int, f: np.ndarray) -> np.ndarray:
        return (n_sas[h] @ f) * inv_n[h]

    steps = H - np.arange(H)  # H − h: the value range at stage h
    reg = lam is not None
    uniform = np.full((S, A), 1.0 / A)
    lo = np.zeros(H + 1)  # lower end of the range of V^π_{λ,h} (derived: λ KL(π_h ‖ π̃_h) ≤ H − h)
    if reg:
        lo[:H] = -np.cumsum(steps[::-1])[::-1]
    policy = np.empty((H, S, A))
    V_up, V_lo_star, V_lo_pi, W = (np.zeros((H + 1, S)) for _ in range(4))
    wmax = np.zeros(H + 1)
    for h in range(H - 1, -1, -1):
        pv_up = p_hat(h, V_up[h + 1])
        q_up = np.minimum(steps[h], r[h] + pv_up + np.where(np.isinf(hoeff[h]), steps[h], hoeff[h]))
        refh = uniform if ref is None else ref[h]
        if reg:
            V_up[h] = soft_value_unchecked(q_up, refh, lam)
            pi_h = soft_greedy_unchecked(q_up, refh, lam)
            # λ KL(π_h ‖ π̃_h) = π_h·Q̄_h − V̄_h for the soft-greedy π_h (the soft value's variational form)
            lam_kl = np.maximum(np.einsum("sa,sa->s", pi_h, q_up) - V_up[h], 0.0)
        else:
            V_up[h] = q_up.max(axis=-1)
            pi_h = np.zeros((S, A))
            pi_h[np.arange(S), q_up.argmax(axis=-1)] = 1.0
            lam_kl = np.zeros(S)
        policy[h] = pi_h
        # lower bound on V^π (any data-dependent function: the L1 width)
        span_next = (steps[h] - 1) - lo[h + 1]
        unseen = np.isinf(l1[h])  # n_h(s, a) = 0: only the range is known
        l1h = np.where(unseen, 0.0, l1[h])
        q_lo_pi = np.where(unseen, lo[h + 1], np.maximum(lo[h + 1], r[h] + p_hat(h, V_lo_pi[h + 1]) - 0.5 * l1h * span_next))
        V_lo_pi[h] = np.einsum("sa,sa->s", pi_h, q_lo_pi) - lam_kl
        if reg:
            # lower bound on Q* (fixed function V*: Hoeffding) and the quadratic gap bound W
            q_lo_star = np.maximum(0.0, r[h] + p_hat(h, V_lo_star[h + 1]) - hoeff[h])
            V_lo_star[h] = soft_value_unchecked(q_lo_star, refh, lam)
            g = tilt_gap_bound(pi_h, q_up - q_lo_star, lam)
            wmax[h] = steps[h] + wmax[h + 1]
            w_next = kl_upper_mean(p_hat(h, W[h + 1]), klw[h], wmax[h + 1])
            W[h] = np.minimum(wmax[h], g + np.einsum("sa,sa->s", pi_h, w_next))
    return policy, V_up[:H], V_lo_pi[:H], W[0]


def _explore_until_certified(plan, update, P: np.ndarray, cP: np.ndarray, mu0: np.ndarray, epsilon: float, max_episodes: int,
                             growth: float, rng: np.random.Generator, record_policies: bool) -> dict:
    """The explorers' shared loop: plan(episodes) -> (policy, certificate, extra) on the current statistics; stop
    when certificate <= epsilon (converged) or max_episodes have been drawn; otherwise roll the planned policy out
    for max(1, ceil(growth · episodes)) more episodes and update(trajectories, next_states) the statistics."""
    episodes = 0
    hist_e, hist_c, hist_p = [], [], []
    converged = False
    while True:
        policy, cert, extra = plan(episodes)
        hist_e.append(episodes)
        hist_c.append(cert)
        if record_policies:
            hist_p.append(policy)
        if cert <= epsilon:
            converged = True
            break
        if episodes >= max_episodes:
            break
        batch = int(min(max_episodes - episodes, max(1, np.ceil(growth * episodes))))
        tr = _rollout(P, policy, mu0, batch, rng, cP=cP)
        update(tr, np.concatenate([tr.states[:, 1:], tr.final_states[:, None]], axis=1))
        episodes += batch
    return {"policy": policy, "cert": cert, "extra": extra, "episodes": episodes, "converged": converged,
            "history_episodes": np.array(hist_e), "history_certificate": np.array(hist_c),
            "history_policies": np.array(hist_p) if record_policies else None}


def _explore(mdp: TabularMDP, ref: np.ndarray | None, lam: float | None, epsilon: float, delta: float, rng: np.random.Generator,
             max_episodes: int, bonus_scale: float, growth: float, record_policies: bool) -> BPIResult:
    H = check_finite_horizon(mdp, "demonstration-regularized RL is episodic")
    _check_explorer_args(epsilon, delta, bonus_scale, max_episodes, growth)
    S, A = mdp.num_states, mdp.num_actions
    P = _stage_P(mdp)
    cP = np.cumsum(P, axis=-1)
    r = _stage_r(mdp)
    _check_rewards(r)
    mu0 = mdp.mu0
    n_sa = np.zeros((H, S, A))
    n_sas = np.zeros((H, S, A, S))

    def plan(episodes: int) -> tuple[np.ndarray, float, tuple[np.ndarray, np.ndarray]]:
        policy, V_up, V_lo, W0 = _tabular_plan(n_sa, n_sas, r, ref, lam, delta, bonus_scale)
        cert_lin = float(mu0 @ (V_up[0] - V_lo[0]))
        return policy, (min(cert_lin, float(mu0 @ W0)) if lam is not None else cert_lin), (V_up, V_lo)

    def update(tr: Trajectories, nxt: np.ndarray) -> None:
        hh = np.broadcast_to(np.arange(H), tr.states.shape)
        flat_sa = ((hh * S + tr.states) * A + tr.actions).ravel()
        if flat_sa.size * 8 < n_sas.size:  # small batch: scatter-add beats a full-length bincount
            np.add.at(n_sa.reshape(-1), flat_sa, 1.0)
            np.add.at(n_sas.reshape(-1), flat_sa * S + nxt.ravel(), 1.0)
        else:
            n_sa[...] += np.bincount(flat_sa, minlength=H * S * A).reshape(H, S, A)
            n_sas[...] += np.bincount(flat_sa * S + nxt.ravel(), minlength=H * S * A * S).reshape(H, S, A, S)

    run = _explore_until_certified(plan, update, P, cP, mu0, epsilon, max_episodes, growth, rng, record_policies)
    V_up, V_lo = run["extra"]
    return BPIResult(policy=run["policy"], certificate=run["cert"], episodes=run["episodes"], samples=run["episodes"] * H,
                     converged=run["converged"], lam=0.0 if lam is None else lam, upper_values=V_up, lower_values=V_lo,
                     history_episodes=run["history_episodes"], history_certificate=run["history_certificate"],
                     history_policies=run["history_policies"])


def regularized_bpi(mdp: TabularMDP, pi_ref: np.ndarray | None, lam: float, epsilon: float, *, delta: float = 0.1,
                    rng: np.random.Generator, max_episodes: int = 10**6, bonus_scale: float = 1.0, growth: float = 0.05,
                    record_policies: bool = False) -> BPIResult:
    """Optimistic best-policy identification for the KL-regularized MDP toward π̃ = ``pi_ref``.

    Each round (re-planning after a geometrically growing batch of ⌈growth·t⌉ episodes, t the
    episodes so far; all batches are real sampled episodes of the current policy) computes on
    the empirical model p̂_h(s'|s, a) = n_h(s, a, s')/n_h(s, a), with the widths b, w of
    :func:`confidence_widths` (b, w times ``bonus_scale``, α times its square):

        Q̄_h = min(H − h, r_h + p̂_h V̄_{h+1} + b_h),      V̄_h(s) = λ log Σ_a π̃_h(a|s) e^{Q̄_h(s,a)/λ},
        π_h = π̃_h e^{Q̄_h/λ} / Z  (the soft-greedy policy; :func:`rlref.solve.soft_greedy`),
        Q̲*_h = max(0, r_h + p̂_h V̲*_{h+1} − b_h),       V̲*_h = soft value of Q̲*_h  (so Q̲* ≤ Q* ≤ Q̄),
        W_h(s) = min(W_max,h, g_h(s) + Σ_a π_h(a|s) U(p̂_h W_{h+1}, α_h)),  U = :func:`kl_upper_mean`,
        g_h(s) = :func:`tilt_gap_bound` (π_h, Q̄_h − Q̲*_h, λ) ≥ λ KL(π_h(·|s) ‖ π*_h(·|s)),

    and a linear lower bound V̲^π (π-evaluation with the L1 width). It stops when the certificate
    min(μ0·W_0, μ0·(V̄_0 − V̲^π_0)) ≤ ε; on the event of :func:`confidence_widths` this bounds
    V*_λ − V^π_λ (derived here: the regularized performance-difference identity in the module
    docstring, and :func:`tilt_gap_bound`). Rewards are known and lie in [0, 1].

    With ``pi_ref = π_BC`` this is demonstration-regularized BPI; ``pi_ref=None`` regularizes toward
    the uniform policy (exploration from scratch). The certificate is not a valid bound when
    ``bonus_scale < 1`` (a practical setting, as in the authors' own code's bonus scale factor).
    Cost per re-planning: O(H S² A) (vectorized over s, a; a loop over h only).
    Raises ValueError if lam <= 0, epsilon <= 0, delta not in (0, 1), pi_ref is not a policy for
    mdp, the MDP is discounted or a reward lies outside [0, 1].
    References: Tiapkin et al. (2024), §4, Alg. UCBVI-Ent+ and Thm 5 (Õ(1/ε) regularized BPI);
    Tiapkin et al. (2023), "Fast rates for maximum entropy exploration", UCBVI-Ent; constants
    derived here.
    """
    H = check_finite_horizon(mdp, "demonstration-regularized RL is episodic")
    lam = check_beta("lam", lam)
    ref = None if pi_ref is None else np.ascontiguousarray(_staged_policy(mdp, pi_ref, "pi_ref"))
    if ref is not None and H != ref.shape[0]:
        raise ValueError(f"pi_ref has {ref.shape[0]} stages but the MDP has H = {H}")
    return _explore(mdp, ref, lam, epsilon, delta, rng, max_episodes, bonus_scale, growth, record_policies)


def ucbvi_bpi(mdp: TabularMDP, epsilon: float, *, delta: float = 0.1, rng: np.random.Generator, max_episodes: int = 10**6,
              bonus_scale: float = 1.0, growth: float = 0.05, record_policies: bool = False) -> BPIResult:
    """UCBVI-style best-policy identification for the unregularized MDP (the baseline).

    Q̄_h = min(H − h, r_h + p̂_h V̄_{h+1} + b_h), V̄_h = max_a Q̄_h, π_h greedy in Q̄_h (first
    maximizer); the lower bound V̲^π_h = π_h[max(0, r_h + p̂_h V̲^π_{h+1} − w_h (H − h − 1)/2)];
    stops when μ0·(V̄_0 − V̲^π_0) ≤ ε, which bounds V* − V^π on the event of
    :func:`confidence_widths` (Õ(1/ε²) episodes).
    References: Azar, Osband & Munos (2017), UCBVI; the upper/lower-bound stopping rule as in
    Ménard et al. (2021), "Fast active learning for pure exploration in RL" (constants derived here).
    """
    return _explore(mdp, None, None, epsilon, delta, rng, max_episodes, bonus_scale, growth, record_policies)


def linear_regularized_bpi(lin: LinearMDP, pi_ref: np.ndarray | None, lam: float, epsilon: float, *, delta: float = 0.1,
                           rng: np.random.Generator, max_episodes: int = 10**6, bonus_scale: float = 1.0, ridge: float = 1.0,
                           growth: float = 0.05, record_policies: bool = False) -> BPIResult:
    """KL-regularized BPI with linear function approximation (LSVI-UCB-style soft backups).

    Stage-h statistics from the sampled transitions (s_h^i, a_h^i, s_{h+1}^i): Λ_h = ρ I + Σ_i φ_i φ_iᵀ
    and M_h = Σ_i φ_i e_{s_{h+1}^i}ᵀ (ρ = ``ridge``). The least-squares regression of f(s_{h+1}) on φ
    is φ(s, a)ᵀ Λ_h⁻¹ M_h f, so

        Q̄_h = min(H − h, r_h + φᵀ Λ_h⁻¹ M_h V̄_{h+1} + β_h ‖φ‖_{Λ_h⁻¹}),  V̄_h = λ log Σ_a π̃_h e^{Q̄_h/λ},
        Q̲*_h = max(0, r_h + φᵀ Λ_h⁻¹ M_h V̲*_{h+1} − β_h ‖φ‖_{Λ_h⁻¹}),

    π_h = soft-greedy(Q̄_h), and the quadratic gap bound W of :func:`regularized_bpi` propagated with
    :func:`kl_upper_mean` using α = (c d √log · ‖φ‖_{Λ⁻¹})² as the radius (heuristic analogue of the
    tabular KL width). β_h = c · d (H − h − 1) √(log(2 d H t/δ)) is the
    LSVI-UCB width of Jin et al. (2020), Thm 3.1, whose absolute constant c is unspecified there;
    here c = ``bonus_scale``. The certificate μ0·W_0 is therefore a stopping *heuristic*, not a
    certified bound (stated; the tabular explorer's is certified). Rewards r = ⟨φ, θ⟩ are known.
    Shapes: lin.phi[s, a, d]; pi_ref [h, s, a] or [s, a] (None = uniform).
    References: Tiapkin et al. (2024), §4 (linear demonstration-regularized BPI, Õ(Poly(d, H)/(ε² N^E)));
    Jin, Yang, Wang & Jordan (2020), LSVI-UCB, Alg. 1 and Thm 3.1.
    """
    if not isinstance(lin, LinearMDP):
        raise ValueError(f"lin must be a LinearMDP, got {type(lin).__name__}")
    mdp = lin.to_tabular()
    H = check_finite_horizon(mdp, "demonstration-regularized RL is episodic")
    lam = check_beta("lam", lam)
    _check_explorer_args(epsilon, delta, bonus_scale, max_episodes, growth)
    rho = check_positive("ridge", ridge)
    S, A, d = mdp.num_states, mdp.num_actions, lin.dim
    ref = None if pi_ref is None else np.ascontiguousarray(_staged_policy(mdp, pi_ref, "pi_ref"))
    phi = np.asarray(lin.phi, dtype=np.float64)
    flat = phi.reshape(S * A, d)
    P = _stage_P(mdp)
    cP = np.cumsum(P, axis=-1)
    r = _stage_r(mdp)
    _check_rewards(r)
    mu0 = mdp.mu0
    uniform = np.full((S, A), 1.0 / A)
    Lam = np.broadcast_to(rho * np.eye(d), (H, d, d)).copy()
    M = np.zeros((H, d, S))
    steps = H - np.arange(H)
    wmax = np.concatenate([np.cumsum(steps[::-1])[::-1], [0.0]])

    def plan(episodes: int) -> tuple[np.ndarray, float, tuple[np.ndarray, np.ndarray]]:
        scale_log = np.sqrt(np.log(2.0 * d * H * max(episodes, 1) / float(delta)))
        policy = np.empty((H, S, A))
        V_up, V_lo, W = (np.zeros((H + 1, S)) for _ in range(3))
        for h in range(H - 1, -1, -1):
            Linv = np.linalg.inv(Lam[h])
            proj = flat @ Linv  # [SA, d]
            model = (proj @ M[h]).reshape(S, A, S)  # φᵀ Λ⁻¹ M: the regression "model" (signed)
            norm = np.sqrt(np.maximum(np.einsum("kd,kd->k", proj, flat), 0.0)).reshape(S, A)
            beta_h = bonus_scale * d * (steps[h] - 1) * scale_log
            refh = uniform if ref is None else ref[h]
            q_up = np.minimum(steps[h], r[h] + model @ V_up[h + 1] + beta_h * norm)
            q_lo = np.maximum(0.0, r[h] + model @ V_lo[h + 1] - beta_h * norm)
            V_up[h] = soft_value_unchecked(q_up, refh, lam)
            V_lo[h] = soft_value_unchecked(q_lo, refh, lam)
            pi_h = soft_greedy_unchecked(q_up, refh, lam)
            policy[h] = pi_h
            g = tilt_gap_bound(pi_h, q_up - q_lo, lam)
            # KL-type propagation as in the tabular explorer, with the squared elliptical width as the "KL radius"
            w_next = kl_upper_mean(model @ W[h + 1], (bonus_scale * d * scale_log * norm) ** 2, wmax[h + 1])
            W[h] = np.minimum(wmax[h], g + np.einsum("sa,sa->s", pi_h, w_next))
        return policy, float(mu0 @ W[0]), (V_up[:H], V_lo[:H])

    def update(tr: Trajectories, nxt: np.ndarray) -> None:
        for h in range(H):
            F = phi[tr.states[:, h], tr.actions[:, h]]  # [batch, d]
            Lam[h] += F.T @ F
            M[h] += F.T @ np.eye(S)[nxt[:, h]]

    run = _explore_until_certified(plan, update, P, cP, mu0, epsilon, max_episodes, growth, rng, record_policies)
    V_up, V_lo = run["extra"]
    return BPIResult(policy=run["policy"], certificate=run["cert"], episodes=run["episodes"], samples=run["episodes"] * H,
                     converged=run["converged"], lam=lam, upper_values=V_up, lower_values=V_lo,
                     history_episodes=run["history_episodes"], history_certificate=run["history_certificate"],
                     history_policies=run["history_policies"])


# ----------------------------------------------------------------------------- decomposition
@dataclass(frozen=True)
class Decomposition:
    """V* − V^π̂ = expert_suboptimality + kl_term + regularized_slack + planning_error + policy_kl_term, exactly:

    * expert_suboptimality  = V* − V^{π_E}                                   (≥ 0)
    * kl_term               = λ E_{π_E} Σ_h KL(π_E,h ‖ π_BC,h) = V^{π_E} − V^{π_E}_λ    (≥ 0)
    * regularized_slack     = V^{π_E}_λ − V*_λ                               (≤ 0)
    * planning_error        = V*_λ − V^π̂_λ                                   (≥ 0)
    * policy_kl_term        = V^π̂_λ − V^π̂ = −λ E_π̂ Σ_h KL(π̂_h ‖ π_BC,h)       (≤ 0)

    so ``total`` ≤ ``bound`` = expert_suboptimality + kl_term + planning_error. ``residual`` is
    |total − Σ terms| (each term is computed by a different solver, so it is a real check)."""

    optimal_value: float
    policy_value: float
    total: float
    expert_suboptimality: float
    kl_term: float
    regularized_slack: float
    planning_error: float
    policy_kl_term: float
    bound: float
    residual: float


def suboptimality_decomposition(mdp: TabularMDP, pi_expert: np.ndarray, pi_bc: np.ndarray, pi_hat: np.ndarray, lam: float) -> Decomposition:
    """Exact split of the unregularized suboptimality of π̂ (values at μ0) into the terms of
    :class:`Decomposition`. V* from :func:`rlref.solve.value_iteration`, V^π from
    :func:`rlref.solve.policy_evaluation`, V*_λ from :func:`rlref.solve.soft_value_iteration`
    toward π_BC, V^π_λ from :func:`rlref.solve.soft_policy_evaluation`, the KL term from
    :func:`trajectory_kl` (occupancy recursion).
    References: Tiapkin et al. (2024), §4, the decomposition behind Cor. 3 (V* − V^π̂ ≤ expert gap
    + λ·KL_traj(π_E ‖ π_BC) + regularized BPI error); the exact five-term identity is derived here.
    """
    check_finite_horizon(mdp, "demonstration-regularized RL is episodic")
    lam = check_beta("lam", lam)
    pe = np.ascontiguousarray(_staged_policy(mdp, pi_expert, "pi_expert"))
    pb = np.ascontiguousarray(_staged_policy(mdp, pi_bc, "pi_bc"))
    ph = np.ascontiguousarray(_staged_policy(mdp, pi_hat, "pi_hat"))
    v_star = value_iteration(mdp).objective
    v_e = policy_evaluation(mdp, pe).objective
    v_hat = policy_evaluation(mdp, ph).objective
    kl_e = trajectory_kl(mdp, pe, pb)
    v_star_lam = soft_value_iteration(mdp, lam, pi_ref=pb).objective
    v_e_lam = soft_policy_evaluation(mdp, pe, lam, pi_ref=pb).objective
    v_hat_lam = soft_policy_evaluation(mdp, ph, lam, pi_ref=pb).objective
    terms = dict(expert_suboptimality=v_star - v_e, kl_term=lam * kl_e, regularized_slack=v_e_lam - v_star_lam,
                 planning_error=v_star_lam - v_hat_lam, policy_kl_term=v_hat_lam - v_hat)
    total = v_star - v_hat
    return Decomposition(optimal_value=v_star, policy_value=v_hat, total=total, **terms,
                         bound=terms["expert_suboptimality"] + terms["kl_term"] + terms["planning_error"],
                         residual=abs(total - sum(terms.values())))


# ----------------------------------------------------------------------------- RLHF
@dataclass(frozen=True)
class PreferencePairs:
    """Trajectory comparisons: ``first`` and ``second`` (Trajectories of N episodes each) and
    ``first_preferred[i]`` ∈ {0, 1} drawn from the Bradley-Terry model σ(R(τ¹_i) − R(τ²_i))."""

    first: Trajectories
    second: Trajectories
    first_preferred: np.ndarray


def _returns(r: np.ndarray, tr: Trajectories) -> np.ndarray:
    H = r.shape[0]
    return r[np.arange(H)[None, :], tr.states, tr.actions].sum(axis=1)


def sample_preference_pairs(mdp: TabularMDP, pi: np.ndarray, num_pairs: int, rng: np.random.Generator) -> PreferencePairs:
    """Draw ``num_pairs`` pairs of independent trajectories of π and a Bradley-Terry label
    P(τ¹ ≻ τ²) = σ(R(τ¹) − R(τ²)), R(τ) = Σ_h r_h(s_h, a_h) (the MDP's expected reward).
    References: Tiapkin et al. (2024), §5 (trajectory-level BT preferences); Bradley & Terry (1952).
    """
    first = sample_trajectories(mdp, pi, num_pairs, rng)
    second = sample_trajectories(mdp, pi, num_pairs, rng)
    r = _stage_r(mdp)
    p = 1.0 / (1.0 + np.exp(-(_returns(r, first) - _returns(r, second))))
    return PreferencePairs(first=first, second=second, first_preferred=(rng.random(num_pairs) < p).astype(np.int64))


def _visit_counts(tr: Trajectories, S: int, A: int) -> np.ndarray:
    N, H = tr.states.shape
    flat = (np.arange(H)[None, :] * S + tr.states) * A + tr.actions
    rows = np.repeat(np.arange(N), H)
    out = np.zeros((N, H * S * A))
    np.add.at(out, (rows, flat.ravel()), 1.0)
    return out


def fit_trajectory_reward(pairs: PreferencePairs, num_states: int, num_actions: int, *, ridge: float = 1e-3) -> np.ndarray:
    """Bradley-Terry maximum likelihood for a tabular reward r̂[h, s, a] from trajectory comparisons.

    With x_i = c(τ¹_i) − c(τ²_i) ∈ R^{HSA} (visit-count differences) and y_i = 2·first_preferred − 1,
    r̂ = argmin_θ (1/N) Σ_i log(1 + exp(−y_i θᵀ x_i)) + (ridge/2)‖θ‖², a strictly convex program
    (damped Newton with the exact Hessian, to |∇| ≤ 1e-10 or the float64 floor of the Newton decrement;
    RuntimeError if |∇| > 1e-7 at the end). R_θ(τ) = θᵀ c(τ) is invariant to adding a constant per stage and is
    unidentified at unvisited (h, s, a); the ridge term picks the minimum-norm representative
    (0 there). Returns r̂ [H, S, A].
    References: Tiapkin et al. (2024), §5 (reward MLE for demonstration-regularized RLHF).
    """
    S = check_count("num_states", num_states)
    A = check_count("num_actions", num_actions)
    rid = check_positive("ridge", ridge)
    s1, a1 = _check_trajectories(pairs.first.states, pairs.first.actions, S, A)
    _check_trajectories(pairs.second.states, pairs.second.actions, S, A, horizon=s1.shape[1])
    H = s1.shape[1]
    y = 2.0 * np.asarray(pairs.first_preferred, dtype=np.float64) - 1.0
    X = (_visit_counts(pairs.first, S, A) - _visit_counts(pairs.second, S, A)) * y[:, None]
    N = X.shape[0]

    def f(th: np.ndarray) -> float:
        return float(np.mean(np.logaddexp(0.0, -(X @ th))) + 0.5 * rid * th @ th)

    th = np.zeros(H * S * A)
    gmax = np.inf
    for _ in range(200):  # damped Newton: strictly convex (ridge > 0), quadratic convergence
        z = X @ th
        sig = expit(-z)  # σ(−z) = −d/dz log(1 + e^{−z})
        grad = -(X.T @ sig) / N + rid * th
        gmax = float(np.abs(grad).max())
        if gmax <= 1e-10:
            break
        hess = (X * (sig * (1.0 - sig))[:, None]).T @ X / N + rid * np.eye(th.size)
        step = np.linalg.solve(hess, grad)
        if grad @ step <= 1e-22:  # Newton decrement at the float64 floor
            break
        t_, f0 = 1.0, f(th)
        while f(th - t_ * step) > f0 - 0.25 * t_ * (grad @ step) and t_ > 1e-10:
            t_ *= 0.5
        if t_ <= 1e-10:  # no further decrease representable
            break
        th = th - t_ * step
    if gmax > 1e-7:
        raise RuntimeError(f"fit_trajectory_reward: Newton did not converge (|grad| = {gmax:.2e})")
    return th.reshape(H, S, A)


@dataclass(frozen=True)
class RLHFResult:
    """Demonstration-regularized RLHF: the fitted reward ``reward[h, s, a]``, the planned ``policy``,
    its true (unregularized) value and suboptimality V* − V^π under the MDP's real reward."""

    reward: np.ndarray
    policy: np.ndarray
    value: float
    suboptimality: float


def demo_regularized_rlhf(mdp: TabularMDP, pi_ref: np.ndarray | None, pairs: PreferencePairs | None, lam: float, *,
                          ridge: float = 1e-3, reward: np.ndarray | None = None) -> RLHFResult:
    """BT reward MLE on ``pairs`` (:func:`fit_trajectory_reward`), then exact KL-regularized planning
    π = argmax_π E_π[Σ_h r̂_h − λ KL(π_h ‖ π̃_h)] on the MDP's transitions
    (:func:`rlref.solve.soft_value_iteration`), π̃ = ``pi_ref`` (π_BC for demonstration-regularized
    RLHF; None = uniform, the same pipeline without demonstrations). The returned value and
    suboptimality use the MDP's true reward (an oracle evaluation, for measurement only).
    Planning is exact on the true dynamics here (the paper also explores; derived choice).
    ``reward`` skips the fit (reuse one r̂ for several λ / references).
    References: Tiapkin et al. (2024), §5, demonstration-regularized RLHF.
    """
    H = check_finite_horizon(mdp, "demonstration-regularized RL is episodic")
    lam = check_beta("lam", lam)
    S, A = mdp.num_states, mdp.num_actions
    if reward is None:
        if pairs is None:
            raise ValueError("give the preference pairs (or an already fitted reward=r_hat[h, s, a])")
        r_hat = fit_trajectory_reward(pairs, S, A, ridge=ridge)
    else:
        r_hat = as_float_array("reward", reward, ndim=3)
        if r_hat.shape[1:] != (S, A):
            raise ValueError(f"reward must have shape (H, {S}, {A}), got {r_hat.shape}")
    if r_hat.shape[0] != H:
        raise ValueError(f"preference trajectories have horizon {r_hat.shape[0]} but the MDP has H = {H}")
    model = TabularMDP(P=mdp.dense_P(), R=r_hat, horizon=H, mu0=mdp.mu0, reward_axes="hsa", name="rlhf-model")
    pi = soft_value_iteration(model, lam, pi_ref=pi_ref).policy
    v = policy_evaluation(mdp, pi).objective
    return RLHFResult(reward=r_hat, policy=pi, value=v, suboptimality=value_iteration(mdp).objective - v)
