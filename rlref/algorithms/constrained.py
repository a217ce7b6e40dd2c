"""Constrained MDPs for proxy rewards: the occupancy LP, a Lagrangian primal-dual method,
composite proxies with per-component thresholds, and the two-stage constrained actor-critic.

* :func:`solve_cmdp` — max_μ ⟨μ, R⟩ s.t. ⟨μ, C_k⟩ <= b_k (k = 1..K), μ in the occupancy polytope
  {μ >= 0 : Mμ = (1−γ)μ₀}; an LP (scipy HiGHS) whose duals are the values v and the multipliers
  λ_k >= 0 (Altman 1999, Thm 3.3). All returns are *normalized*: ⟨μ, C⟩ = (1−γ)E[Σ γᵗ C].
* :func:`lagrangian_primal_dual` — projected subgradient descent on the dual function
  g(λ) = max_μ ⟨μ, R − Σ_k λ_k C_k⟩ + λ·b (convex, g(λ) >= OPT), with exact best responses
  (policy iteration) and the running average of the best-response occupancies as the primal
  iterate. Certificate: duality gap min_t g(λ_t) − ⟨μ̄_T, R⟩ and the constraint violation of μ̄_T,
  both → 0 at rate O(1/√T) (Nedić & Ozdaglar 2009; derived here for this instance).
* :func:`solve_composite` — constrained RLHF with a composite reward (Moskovitz et al. 2023, §4):
  maximize Σ_k w_k J(π, R_k) while each component stays at or below its "proxy point" θ_k,
  J(π, R_k) <= θ_k, beyond which that component stops tracking the true objective.
* :func:`two_stage` — two-stage constrained actor-critic (Cai et al. 2023, §3): stage 1 learns one
  (entropy-regularized) policy π_k per auxiliary reward; stage 2 maximizes the main reward with
  KL penalties to them, max_π E_{μ_π}[R₀ − Σ_k λ_k KL(π(·|s) ‖ π_k(·|s))], solved exactly via
  Σ_k λ_k KL(π‖π_k) = Λ KL(π‖π̄) − Λ log Z(s), π̄ ∝ Π_k π_k^{λ_k/Λ}, Λ = Σ λ_k (derived here), i.e.
  soft value iteration with reference π̄, temperature Λ and reward R₀ + Λ log Z.

References: Altman (1999), "Constrained Markov Decision Processes", ch. 3; Moskovitz et al.
(2023), "Confronting Reward Model Overoptimization with Constrained RLHF", arXiv 2310.04373;
Cai et al. (2023), "Two-Stage Constrained Actor-Critic for Short Video Recommendation",
arXiv 2302.01680, eq. (stage-2 objective and its closed-form policy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.special import log_softmax, logsumexp

from rlref._checks import as_float_array, check_count, check_finite, check_positive
from rlref.algorithms.occupancy_regularized import (
    best_response_occupancy,
    check_discounted_mdp,
    check_sa_reward,
    expected_action_kl,
    flow_matrix,
    occupancy_of,
    policy_of,
    solve_action_kl,
)
from rlref.mdp import TabularMDP

__all__ = [
    "InfeasibleCMDPError",
    "CMDPResult",
    "LagrangianResult",
    "TwoStageResult",
    "solve_cmdp",
    "lagrangian_primal_dual",
    "solve_composite",
    "two_stage",
]


class InfeasibleCMDPError(ValueError):
    """The constraint set {μ : ⟨μ, C_k⟩ <= b_k} has no occupancy measure in it.

    Raised when b_k < min_π ⟨μ_π, C_k⟩ for some k, or the joint LP is infeasible.
    References: Altman (1999), ch. 3 (feasibility of the CMDP LP).
    """


@dataclass(frozen=True)
class CMDPResult:
    """Optimum of the constrained occupancy LP.

    occupancy μ[s, a]; policy π[s, a]; objective ⟨μ, R⟩; constraint_values ⟨μ, C_k⟩ (K,);
    multipliers λ_k >= 0 (K,) and values v[s] (LP duals, with strong duality
    objective = (1−γ)μ₀·v + λ·b); status the HiGHS message.

    Shapes: occupancy, policy (S, A); constraint_values, multipliers (K,); values (S,).
    References: Altman (1999), Thm 3.3 (see :func:`solve_cmdp`).
    """

    occupancy: np.ndarray
    policy: np.ndarray
    objective: float
    constraint_values: np.ndarray
    multipliers: np.ndarray
    values: np.ndarray
    status: str


@dataclass(frozen=True)
class LagrangianResult:
    """Output of :func:`lagrangian_primal_dual`.

    occupancy/policy: the averaged primal iterate μ̄_T; multipliers: λ_T; objective ⟨μ̄_T, R⟩;
    constraint_values ⟨μ̄_T, C_k⟩; dual_value min_t g(λ_t) (an upper bound on OPT);
    duality_gap = dual_value − objective (it can be slightly negative while μ̄_T still violates a
    constraint, by at most λ·violation; |gap| and the violation both → 0); max_violation = max_k (⟨μ̄_T, C_k⟩ − b_k)⁺; traces
    per iteration of the same quantities (gap_trace, violation_trace, multiplier_trace (T, K),
    constraint_trace (T, K) = ⟨μ̄_t, C_k⟩).

    Shapes: occupancy, policy (S, A); multipliers, constraint_values (K,); gap_trace,
    violation_trace (T,). References: see :func:`lagrangian_primal_dual`.
    """

    occupancy: np.ndarray
    policy: np.ndarray
    multipliers: np.ndarray
    objective: float
    constraint_values: np.ndarray
    dual_value: float
    duality_gap: float
    max_violation: float
    gap_trace: np.ndarray
    violation_trace: np.ndarray
    multiplier_trace: np.ndarray
    constraint_trace: np.ndarray
    iterations: int


@dataclass(frozen=True)
class TwoStageResult:
    """Output of :func:`two_stage`: auxiliary policies π_k (K, S, A), the main policy, its
    occupancy, main return J(π, R₀), auxiliary returns J(π, R_k) (K,), the expected KLs
    E_{μ_π}[KL(π‖π_k)] (K,) and the normalized stage-2 objective.

    Shapes: aux_policies (K, S, A); policy, occupancy (S, A); aux_returns, kl_to_aux (K,).
    References: Cai et al. (2023), arXiv 2302.01680, §3 (see :func:`two_stage`).
    """

    aux_policies: np.ndarray
    policy: np.ndarray
    occupancy: np.ndarray
    main_return: float
    aux_returns: np.ndarray
    kl_to_aux: np.ndarray
    objective: float


# ----------------------------------------------------------------------------- validation
def _check_costs(mdp: TabularMDP, costs: object, thresholds: object, name: str = "costs") -> tuple[np.ndarray, np.ndarray]:
    S, A = mdp.num_states, mdp.num_actions
    C = as_float_array(name, costs)
    if C.ndim == 2:
        C = C[None]
    if C.ndim != 3 or C.shape[1:] != (S, A) or C.shape[0] == 0:
        raise ValueError(f"{name} must have shape (K, S, A) = (K, {S}, {A}) with K >= 1, got {np.shape(costs)}")
    check_finite(name, C)
    b = np.atleast_1d(as_float_array("thresholds", thresholds))
    if b.shape != (C.shape[0],):
        raise ValueError(f"thresholds must have shape (K,) = ({C.shape[0]},), got {b.shape}")
    check_finite("thresholds", b)
    return C, b


def _min_costs(mdp: TabularMDP, C: np.ndarray) -> np.ndarray:
    """min_μ ⟨μ, C_k⟩ for each k (each by its own LP), used to explain infeasibility."""
    M = flow_matrix(mdp)
    beq = (1.0 - mdp.gamma) * np.asarray(mdp.mu0)
    out = []
    for Ck in C:
        res = linprog(Ck.ravel(), A_eq=M, b_eq=beq, bounds=(0, None), method="highs")
        out.append(res.fun if res.status == 0 else np.nan)
    return np.asarray(out)


def _infeasibility(M, beq: np.ndarray, Cs: np.ndarray, bs: np.ndarray) -> float:
    """Phase-1 certificate: t* = min t s.t. Cs μ − t ≤ bs, Mμ = beq, μ ≥ 0, t ≥ 0.

    Always feasible and bounded (the occupancy polytope is non-empty and compact), and t* > 0 iff
    the constrained set is empty (t* is the smallest uniform relaxation of the scaled constraints;
    standard phase-1 LP, e.g. Bertsimas & Tsitsiklis 1997, §3.5). Returns inf if HiGHS fails on it.
    """
    n, K = Cs.shape[1], Cs.shape[0]
    c = np.zeros(n + 1)
    c[-1] = 1.0
    A_ub = np.hstack([Cs, -np.ones((K, 1))])
    A_eq = sp.hstack([M, sp.csr_matrix((M.shape[0], 1))]).tocsr()
    res = linprog(c, A_ub=A_ub, b_ub=bs, A_eq=A_eq, b_eq=beq, bounds=(0, None), method="highs")
    return float(res.fun) if res.status == 0 else float("inf")


# ----------------------------------------------------------------------------- exact LP
def solve_cmdp(mdp: TabularMDP, reward: np.ndarray | None, costs: np.ndarray, thresholds: np.ndarray) -> CMDPResult:
    """Constrained occupancy LP, exactly (HiGHS).

        max_μ ⟨μ, R⟩  s.t.  Mμ = (1−γ)μ₀,  ⟨μ, C_k⟩ <= b_k  (k = 1..K),  μ >= 0.

    An optimal policy may randomize in at most K states (Altman 1999, Thm 3.8).
    Shapes: reward (S, A) (``None``: ``mdp.r``), costs (K, S, A) or (S, A), thresholds (K,).
    Raises :class:`InfeasibleCMDPError` (a ValueError whose message says "infeasible" and gives
    min_π ⟨μ_π, C_k⟩ for each k) if no policy satisfies the constraints; RuntimeError if HiGHS fails.

    References: Altman (1999), "Constrained Markov Decision Processes", Thm 3.3 (the LP).
    """
    check_discounted_mdp(mdp)
    r = check_sa_reward(mdp, reward)
    C, b = _check_costs(mdp, costs, thresholds)
    S, A = mdp.num_states, mdp.num_actions
    M = flow_matrix(mdp)
    beq = (1.0 - mdp.gamma) * np.asarray(mdp.mu0)
    # Row k of the cost constraints is divided by s_k = max(max|C_k|, |b_k|) (same feasible set;
    # HiGHS reports "unknown" status on badly scaled infeasible rows); λ_k = λ'_k / s_k.
    Cf = C.reshape(len(b), S * A)
    row = np.maximum(np.maximum(np.abs(Cf).max(axis=1), np.abs(b)), np.finfo(float).tiny)
    res = linprog(-r.ravel(), A_ub=Cf / row[:, None], b_ub=b / row, A_eq=M, b_eq=beq, bounds=(0, None), method="highs")
    if res.status != 0:
        gap = _infeasibility(M, beq, Cf / row[:, None], b / row)
        if res.status == 2 or (np.isfinite(gap) and gap > 1e-9):
            mins = _min_costs(mdp, C)
            detail = ", ".join(f"k={k}: min_pi <mu_pi, C_k> = {m:.6g} vs threshold {bk:.6g}" for k, (m, bk) in enumerate(zip(mins, b, strict=True)))
            raise InfeasibleCMDPError(
                f"the CMDP is infeasible: no policy satisfies all constraints <mu, C_k> <= b_k ({detail}; "
                f"smallest uniform relaxation of the scaled constraints: {gap:.3g})"
            )
        raise RuntimeError(f"HiGHS failed on the CMDP LP: status {res.status} ({res.message})")
    mu = np.clip(res.x, 0.0, None).reshape(S, A)
    lam = -np.asarray(res.ineqlin.marginals) / row  # HiGHS marginals are d(min)/d(b) <= 0
    v = -np.asarray(res.eqlin.marginals)
    return CMDPResult(
        occupancy=mu,
        policy=policy_of(mu, np.full((S, A), 1.0 / A)),
        objective=float(np.sum(mu * r)),
        constraint_values=np.einsum("ksa,sa->k", C, mu),
        multipliers=lam,
        values=v,
        status=str(res.message),
    )


# ----------------------------------------------------------------------------- Lagrangian
def lagrangian_primal_dual(
    mdp: TabularMDP,
    reward: np.ndarray | None,
    costs: np.ndarray,
    thresholds: np.ndarray,
    *,
    iterations: int = 2000,
    step: float = 1.0,
) -> LagrangianResult:
    """Dual projected subgradient with exact best responses (derived here for CMDPs).

        μ_t      = argmax_μ ⟨μ, R − Σ_k λ_{t,k} C_k⟩        (policy iteration; a deterministic policy)
        g(λ_t)   = ⟨μ_t, R − Σ_k λ_{t,k} C_k⟩ + λ_t·b       (dual function, >= OPT by weak duality)
        λ_{t+1}  = max(0, λ_t + η_t (⟨μ_t, C⟩ − b)),   η_t = step / √(t + 1)
        μ̄_T      = (1/T) Σ_t μ_t                          (a valid occupancy: the polytope is convex)

    Certificates (each O(K·S·A) per iteration): duality gap min_t g(λ_t) − ⟨μ̄_T, R⟩ and the
    violation max_k (⟨μ̄_T, C_k⟩ − b_k)⁺; both tend to 0. Infeasible CMDPs raise
    :class:`InfeasibleCMDPError` (checked by the LP first).

    Shapes: reward (S, A) (``None``: ``mdp.r``), costs (K, S, A) or (S, A), thresholds (K,) ->
    LagrangianResult with traces of length T = ``iterations``.
    References: Altman (1999), ch. 3 (Lagrangian duality of CMDPs); Nedić & Ozdaglar (2009),
    "Approximate primal solutions and rate analysis for dual subgradient methods".
    """
    check_discounted_mdp(mdp)
    r = check_sa_reward(mdp, reward)
    C, b = _check_costs(mdp, costs, thresholds)
    iterations = check_count("iterations", iterations)
    step = check_positive("step", step)
    solve_cmdp(mdp, r, C, b)  # raises InfeasibleCMDPError with an explanation
    S, A = mdp.num_states, mdp.num_actions
    K = len(b)
    lam = np.zeros(K)
    mu_sum = np.zeros((S, A))
    best_dual = np.inf
    gaps, viols, lam_trace, con_trace = [], [], [], []
    for t in range(iterations):
        mu_t = best_response_occupancy(mdp, r - np.einsum("k,ksa->sa", lam, C))
        cval = np.einsum("ksa,sa->k", C, mu_t)
        best_dual = min(best_dual, float(np.sum(mu_t * r) - lam @ cval + lam @ b))
        mu_sum += mu_t
        mu_bar = mu_sum / (t + 1)
        gaps.append(best_dual - float(np.sum(mu_bar * r)))
        cbar = np.einsum("ksa,sa->k", C, mu_bar)
        con_trace.append(cbar)
        viols.append(float(max(0.0, np.max(cbar - b))))
        lam = np.maximum(0.0, lam + step / np.sqrt(t + 1.0) * (cval - b))
        lam_trace.append(lam.copy())
    mu_bar = mu_sum / iterations
    return LagrangianResult(
        occupancy=mu_bar,
        policy=policy_of(mu_bar, np.full((S, A), 1.0 / A)),
        multipliers=lam,
        objective=float(np.sum(mu_bar * r)),
        constraint_values=np.einsum("ksa,sa->k", C, mu_bar),
        dual_value=best_dual,
        duality_gap=gaps[-1],
        max_violation=viols[-1],
        gap_trace=np.asarray(gaps),
        violation_trace=np.asarray(viols),
        multiplier_trace=np.asarray(lam_trace),
        constraint_trace=np.asarray(con_trace),
        iterations=iterations,
    )


# ----------------------------------------------------------------------------- composite proxies
def solve_composite(
    mdp: TabularMDP,
    components: np.ndarray,
    thresholds: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    method: str = "lp",
    **kwargs: float,
) -> CMDPResult | LagrangianResult:
    """Composite proxy reward with per-component thresholds (constrained RLHF).

        max_π Σ_k w_k J(π, R_k)   s.t.   J(π, R_k) <= θ_k  for every component k,

    where θ_k is component k's proxy point (Moskovitz et al. 2023, §4: past it, optimizing R_k
    stops improving the true objective). ``method="lp"`` solves it exactly (:func:`solve_cmdp`),
    ``"lagrangian"`` with :func:`lagrangian_primal_dual` (``kwargs`` are passed on).
    Shapes: components (K, S, A), thresholds (K,), weights (K,) (default all ones).

    References: Moskovitz et al. (2023), arXiv 2310.04373, §4 (constrained composite RMs).
    """
    check_discounted_mdp(mdp)
    C, th = _check_costs(mdp, components, thresholds, "components")
    w = np.ones(len(th)) if weights is None else np.atleast_1d(as_float_array("weights", weights))
    if w.shape != th.shape:
        raise ValueError(f"weights must have shape (K,) = ({len(th)},), got {w.shape}")
    check_finite("weights", w)
    reward = np.einsum("k,ksa->sa", w, C)
    if method == "lp":
        return solve_cmdp(mdp, reward, C, th)
    if method == "lagrangian":
        return lagrangian_primal_dual(mdp, reward, C, th, **kwargs)  # type: ignore[arg-type]
    raise ValueError(f"method must be 'lp' or 'lagrangian', got {method!r}")


# ----------------------------------------------------------------------------- two-stage
def _soft_optimal(mdp: TabularMDP, r: np.ndarray, tau: float) -> np.ndarray:
    uniform = np.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)
    return solve_action_kl(mdp, r, uniform, tau).policy


def two_stage(
    mdp: TabularMDP,
    main_reward: np.ndarray,
    aux_rewards: np.ndarray,
    kl_weights: np.ndarray,
    *,
    aux_temperature: float = 0.1,
) -> TwoStageResult:
    """Two-stage constrained actor-critic, solved exactly.

    Stage 1: π_k = argmax_π E[Σ γᵗ (R_k − τ KL(π(·|s) ‖ uniform))] for each auxiliary reward
    (soft-optimal, full support, τ = ``aux_temperature``).
    Stage 2: max_π E_{μ_π}[R₀ − Σ_k λ_k KL(π(·|s) ‖ π_k(·|s))]; with Λ = Σλ_k and
    π̄(a|s) = Π_k π_k(a|s)^{λ_k/Λ} / Z(s), Σ_k λ_k KL(π‖π_k) = Λ KL(π‖π̄) − Λ log Z(s), so stage 2
    is soft value iteration on R₀ + Λ log Z with reference π̄ and temperature Λ (derived here);
    its optimal policy is π(a|s) ∝ Π_k π_k(a|s)^{λ_k/Λ} exp(Q(s,a)/Λ), the closed form of Cai et al.

    Shapes: main_reward (S, A), aux_rewards (K, S, A), kl_weights (K,) with λ_k >= 0, Σλ_k > 0.
    References: Cai et al. (2023), arXiv 2302.01680, §3 (stage-2 objective and optimal policy).
    """
    check_discounted_mdp(mdp)
    r0 = check_sa_reward(mdp, main_reward, "main_reward")
    Raux, lam = _check_costs(mdp, aux_rewards, kl_weights, "aux_rewards")
    if np.any(lam < 0) or lam.sum() <= 0:
        raise ValueError(f"kl_weights must be >= 0 with a positive sum, got {lam!r}")
    aux_temperature = check_positive("aux_temperature", aux_temperature)
    aux = np.stack([_soft_optimal(mdp, Rk, aux_temperature) for Rk in Raux])
    Lam = float(lam.sum())
    with np.errstate(divide="ignore"):
        log_aux = np.log(aux)
    log_unnorm = np.einsum("k,ksa->sa", lam / Lam, log_aux)
    log_z = logsumexp(log_unnorm, axis=1)
    pi_bar = np.exp(log_softmax(log_unnorm, axis=1))
    res = solve_action_kl(mdp, r0 + Lam * log_z[:, None], pi_bar, Lam)
    pi, mu = res.policy, occupancy_of(mdp, res.policy)
    kls = np.array([expected_action_kl(mu, pi, pi_k) for pi_k in aux])
    main = float(np.sum(mu * r0))
    return TwoStageResult(
        aux_policies=aux,
        policy=pi,
        occupancy=mu,
        main_return=main,
        aux_returns=np.einsum("ksa,sa->k", Raux, mu),
        kl_to_aux=kls,
        objective=main - float(lam @ kls),
    )
