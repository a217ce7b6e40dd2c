"""Occupancy-measure regularization against reward hacking (ORPO), solved exactly.

Implements the regularized objectives of Laidlaw, Singhal, Dragan (2024), "Correlated Proxies:
A New Definition and Improved Mitigation for Reward Hacking" (arXiv 2403.03185), §5–6:

* :func:`solve` — the exact convex program over normalized discounted occupancy measures

      max_μ  ⟨μ, R̃⟩ − λ · D(μ ‖ μ_ref)
      s.t.   Σ_a μ(s', a) − γ Σ_{s,a} P(s'|s,a) μ(s, a) = (1 − γ) μ₀(s')   for every s',
             μ ≥ 0,

  for D ∈ {χ², √χ², KL, TV}. Every feasible μ is the occupancy μ_π(s,a) = (1−γ) Σ_t γᵗ Pr(s_t=s,
  a_t=a) of the policy π(a|s) = μ(s,a)/Σ_b μ(s,b) (Puterman 1994, Thm 6.9.1), so ⟨μ, R̃⟩ is the
  *normalized* return J(π, R̃) = (1−γ) E[Σ_t γᵗ R̃(s_t, a_t)].
* :func:`solve_action_kl` — the action-distribution (AD) counterpart used in RLHF,

      max_π  E_{μ_π}[ R̃(s,a) − λ · KL(π(·|s) ‖ π_ref(·|s)) ],

  by soft value iteration, and :func:`solve_action_kl_program`, the same problem written as a
  convex program in μ (the conditional relative entropy Σ μ log(μ / (μ_s·π_ref)) is jointly
  convex), which the tests use as an independent solver.
* :func:`solve_sampled` — the practical ORPO recipe: a logistic-regression discriminator on
  one-hot (s, a) features, trained on sampled state-actions of μ_π and μ_ref, estimates
  d(s,a) ≈ log μ_π(s,a)/μ_ref(s,a); the gradient of the divergence, evaluated through exp(d), is
  subtracted from the proxy reward and the policy is re-optimized (Frank–Wolfe on the occupancy
  polytope, derived here).

Support convention (χ², √χ² and KL): these divergences are +∞ as soon as μ puts mass where μ_ref
is zero. If μ_ref is zero at a state-action that some policy can reach, :func:`solve` raises a
``ValueError`` naming it (the regularized objective would be −∞ for every policy visiting it),
unless ``restrict_support=True``, which constrains μ to supp(μ_ref) — the exact optimum for λ > 0.
State-actions no policy can reach are zero for every μ and are always dropped.

References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, eq. (ORPO objective) and §6
(discriminator); Puterman (1994), §6.9 (occupancy LP); Frank & Wolfe (1956).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cvxpy as cp
import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from rlref import divergences
from rlref._checks import as_float_array, check_at_least, check_count, check_finite
from rlref.mdp import TabularMDP
from rlref.policy import validate_policy
from rlref.solve import flow_matrix as _solve_flow_matrix
from rlref.solve import occupancy_measure, policy_from_occupancy, policy_iteration, soft_value_iteration, value_iteration

__all__ = [
    "DIVERGENCES",
    "OccupancyRegularizedResult",
    "ActionKLResult",
    "SampledResult",
    "solve",
    "solve_action_kl",
    "solve_action_kl_program",
    "solve_sampled",
    "flow_matrix",
    "occupancy_of",
    "policy_of",
    "divergence_value",
    "check_discounted_mdp",
    "check_sa_reward",
    "with_reward",
    "best_response_occupancy",
    "expected_action_kl",
]

Divergence = Literal["chi2", "sqrt_chi2", "kl", "tv"]
DIVERGENCES: tuple[str, ...] = ("chi2", "sqrt_chi2", "kl", "tv")
_OK = ("optimal", "optimal_inaccurate")


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class OccupancyRegularizedResult:
    """Solution of max_μ ⟨μ, R̃⟩ − λ D(μ ‖ μ_ref) over the occupancy polytope.

    Attributes:
      occupancy: μ[s, a], normalized discounted occupancy (sums to 1), negatives from the solver
        clipped to 0.
      policy: π[s, a] = μ(s,a)/Σ_b μ(s,b); π_ref(·|s) at states with zero occupancy.
      objective: ⟨μ, R̃⟩ − λ D(μ ‖ μ_ref) evaluated at the returned μ.
      proxy_return: ⟨μ, R̃⟩ = J(π, R̃) (normalized).
      divergence_value: D(μ ‖ μ_ref).
      reference_occupancy: μ_ref[s, a].
      values: v[s], the dual variables of the flow constraints; at λ = 0 they are the optimal
        (unnormalized) values V*(s) of R̃.
      nonneg_duals: ν[s, a] ≥ 0, the dual variables of μ ≥ 0 (0 where μ was fixed to 0).
      status: the cvxpy status string; solver: the solver that produced it.
      lam, divergence: the inputs.

    Shapes: occupancy, policy, reference_occupancy, nonneg_duals (S, A); values (S,).
    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §5 (see :func:`solve`).
    """

    occupancy: np.ndarray
    policy: np.ndarray
    objective: float
    proxy_return: float
    divergence_value: float
    reference_occupancy: np.ndarray
    values: np.ndarray
    nonneg_duals: np.ndarray
    status: str
    solver: str
    lam: float
    divergence: str


@dataclass(frozen=True)
class ActionKLResult:
    """Solution of max_π E_{μ_π}[R̃ − λ KL(π(·|s) ‖ π_ref(·|s))].

    ``objective`` is normalized: ⟨μ, R̃⟩ − λ Σ_{s,a} μ(s,a) log(π(a|s)/π_ref(a|s)); ``values`` are
    the unnormalized soft values V(s) (so objective = (1−γ) μ₀·V); ``status`` a short certificate.

    Shapes: occupancy, policy (S, A); values (S,).
    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §6 (see :func:`solve_action_kl`).
    """

    occupancy: np.ndarray
    policy: np.ndarray
    objective: float
    proxy_return: float
    action_kl: float
    values: np.ndarray
    status: str
    lam: float


@dataclass(frozen=True)
class SampledResult:
    """Output of the discriminator-based (sampled) occupancy regularization.

    ``objective_trace[k]`` is the exact regularized objective of the k-th iterate,
    ``log_ratio`` the last discriminator's estimate of log μ_π/μ_ref, ``iterations`` the number
    of policy-optimization rounds.

    Shapes: occupancy, policy, log_ratio (S, A); objective_trace (iterations,) (entry k after update k).
    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §6 (see :func:`solve_sampled`).
    """

    occupancy: np.ndarray
    policy: np.ndarray
    objective: float
    proxy_return: float
    divergence_value: float
    log_ratio: np.ndarray
    objective_trace: np.ndarray
    iterations: int
    lam: float
    divergence: str


# ----------------------------------------------------------------------------- validation
def check_discounted_mdp(mdp: TabularMDP) -> None:
    """Raise ValueError unless ``mdp`` is a discounted, stationary :class:`rlref.TabularMDP`.

    The occupancy measures of this module (and :mod:`rlref.algorithms.constrained`) are the
    normalized discounted ones, μ(s,a) = (1−γ) Σ_t γᵗ Pr(s_t = s, a_t = a) (Puterman 1994, §6.9).
    """
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"mdp must be a rlref.TabularMDP, got {type(mdp).__name__}")
    if mdp.is_finite_horizon or mdp.is_stage_dependent:
        raise ValueError(f"mdp must be a discounted, stationary MDP (occupancy measures here are discounted); got {mdp!r}")


def check_sa_reward(mdp: TabularMDP, reward: np.ndarray | None, name: str = "reward") -> np.ndarray:
    """A finite reward r[s, a] of shape (S, A) for ``mdp`` (``None``: ``mdp.reward()``); ValueError
    naming ``name``, the shape or the first non-finite entry otherwise."""
    S, A = mdp.num_states, mdp.num_actions
    r = mdp.reward() if reward is None else as_float_array(name, reward)
    if r.shape != (S, A):
        raise ValueError(f"{name} must have shape (S, A) = ({S}, {A}), got {r.shape}")
    check_finite(name, r)
    return r


def _check_lam(lam: float) -> float:
    return check_at_least("lam", lam, 0.0, "the regularization weight")


def _check_divergence(divergence: str) -> str:
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {DIVERGENCES}, got {divergence!r}")
    return divergence


# ----------------------------------------------------------------------------- building blocks
def flow_matrix(mdp: TabularMDP) -> sp.csr_matrix:
    """The sparse (S, S·A) Bellman-flow matrix M = Eᵀ − γ Pᵀ of a discounted MDP.

    (M μ)(s') = Σ_a μ(s', a) − γ Σ_{s,a} P(s'|s,a) μ(s, a), with μ flattened as s·A + a; the
    occupancy polytope is {μ ≥ 0 : M μ = (1 − γ) μ₀}. Costs O(nnz(P)) memory; never dense.
    A thin wrapper over :func:`rlref.solve.flow_matrix` that first checks the MDP is discounted.

    References: Puterman (1994), eq. (6.9.2).
    """
    check_discounted_mdp(mdp)
    return _solve_flow_matrix(mdp)


def occupancy_of(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """Normalized discounted occupancy μ_π[s, a] = d_π(s) π(a|s) (sums to 1).

    The same as :func:`rlref.solve.occupancy_measure` (discounted MDPs only here).
    Shapes: pi[s, a] -> μ[s, a].
    References: Puterman (1994), Thm 6.9.1.
    """
    check_discounted_mdp(mdp)
    return occupancy_measure(mdp, validate_policy(mdp, pi))


def policy_of(mu: np.ndarray, fallback: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """π(a|s) = μ(s,a) / Σ_b μ(s,b); ``fallback[s]`` where Σ_b μ(s,b) <= tol.

    Solver round-off (small negative entries of a convex program's μ) is clipped to 0 first;
    then this is :func:`rlref.solve.policy_from_occupancy`. Shapes: mu[s, a], fallback[s, a] -> π[s, a].
    References: Puterman (1994), Thm 6.9.1 (occupancy ↔ stationary policy).
    """
    return policy_from_occupancy(np.clip(np.asarray(mu, dtype=np.float64), 0.0, None), pi_default=fallback, min_mass=tol)


def divergence_value(mu: np.ndarray, mu_ref: np.ndarray, divergence: str) -> float:
    """D(μ ‖ μ_ref) for D ∈ {χ², √χ², KL, TV}; +∞ outside supp(μ_ref) for χ², √χ², KL.

    χ² = Σ (μ − μ_ref)²/μ_ref, KL = Σ μ log(μ/μ_ref) (0 log 0 = 0), TV = ½ Σ |μ − μ_ref|.
    Shapes: mu[s, a], mu_ref[s, a] (any equal shapes; flattened) -> float. Raises ValueError for
    an unknown divergence or mismatched shapes.
    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §5 (χ² and √χ² of occupancy
    measures); the definitions are standard.
    """
    _check_divergence(divergence)
    mu_arr = np.asarray(mu, dtype=np.float64)
    ref_arr = np.asarray(mu_ref, dtype=np.float64)
    if mu_arr.shape != ref_arr.shape:
        raise ValueError(f"mu must have the shape of mu_ref {ref_arr.shape}, got {mu_arr.shape}")
    mu, ref = mu_arr.ravel(), ref_arr.ravel()
    if divergence == "tv":
        return float(divergences.total_variation(mu, ref))
    pos = ref > 0
    if np.any(mu[~pos] > 1e-12):
        return float("inf")
    # Mass <= 1e-12 off supp(μ_ref) is solver round-off and is dropped before the divergence.
    m, q = mu[pos], ref[pos]
    if divergence == "kl":
        return float(divergences.kl(m, q))
    chi2 = float(divergences.chi2(m, q))
    return chi2 if divergence == "chi2" else float(np.sqrt(chi2))


def _reachable(mdp: TabularMDP) -> np.ndarray:
    """Boolean mask of states reachable from supp(μ₀) under some action sequence."""
    S, A = mdp.num_states, mdp.num_actions
    T = sp.csr_matrix(mdp.transition_matrix())
    # state -> state adjacency: s -> s' if P(s'|s,a) > 0 for some a
    rows = np.repeat(np.arange(S), A)
    G = (sp.csr_matrix((np.ones(S * A), (rows, np.arange(S * A))), shape=(S, S * A)) @ (T > 0)).tocsr()
    seen = np.asarray(mdp.mu0) > 0
    frontier = seen.copy()
    while frontier.any():
        nxt = np.asarray(G.T @ frontier.astype(np.float64)).ravel() > 0
        frontier = nxt & ~seen
        seen |= nxt
    return seen


def _support(mdp: TabularMDP, mu_ref: np.ndarray, divergence: str, lam: float, restrict_support: bool) -> np.ndarray:
    """Flat mask of the state-actions on which μ is a free variable."""
    A = mdp.num_actions
    reach = np.repeat(_reachable(mdp), A)
    if lam == 0.0 or divergence == "tv":
        return reach
    ref_pos = mu_ref.ravel() > 0
    bad = reach & ~ref_pos
    if np.any(bad) and not restrict_support:
        k = int(np.flatnonzero(bad)[0])
        s, a = divmod(k, A)
        raise ValueError(
            f"pi_ref has zero occupancy at the reachable state-action (s={s}, a={a}) (mu_ref[{s}, {a}] = 0): "
            f"{divergence}(mu || mu_ref) is infinite for every policy that visits it; give a pi_ref with full "
            f"support or pass restrict_support=True to constrain mu to supp(mu_ref)"
        )
    return reach & ref_pos


def _solve_problem(prob: cp.Problem, solver: str | None) -> str:
    order = [solver] if solver is not None else ["CLARABEL", "SCS"]
    status = "not solved"
    for name in order:
        try:
            # Clarabel's default gaps (1e-8) leave ~1e-5 errors in the exponential-cone (KL) program's μ.
            kwargs = {"max_iters": 200_000, "eps": 1e-9} if name == "SCS" else {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}
            prob.solve(solver=name, **kwargs)
            status = str(prob.status)
            if status in _OK:
                return name
        except cp.error.SolverError as exc:
            status = f"solver error: {exc}"
    raise RuntimeError(f"the convex program failed with solver(s) {order}: status {status!r}")


def expected_action_kl(mu: np.ndarray, pi: np.ndarray, pi_ref: np.ndarray) -> float:
    """E_{s∼μ}[KL(π(·|s) ‖ π_ref(·|s))] = Σ_s μ_s(s) KL(π(·|s) ‖ π_ref(·|s)),  μ_s(s) = Σ_a μ(s, a).

    States with μ_s(s) = 0 contribute 0; a visited state where π leaves supp π_ref gives +inf.
    The per-state KL is :func:`rlref.divergences.kl`. Shapes: mu, pi, pi_ref (S, A) -> float.
    References: Neu, Jonsson, Gómez (2017), "A unified view of entropy-regularized MDPs" (the
    conditional relative entropy of an occupancy); Laidlaw, Singhal, Dragan (2024), §6.
    """
    ds = np.asarray(mu, dtype=np.float64).sum(axis=1)
    kl_s = np.asarray(divergences.kl(pi, pi_ref, axis=-1), dtype=np.float64)
    return float(np.sum(np.where(ds > 0, ds * np.where(ds > 0, kl_s, 0.0), 0.0)))


# ----------------------------------------------------------------------------- exact program
def solve(
    mdp: TabularMDP,
    reward: np.ndarray | None,
    pi_ref: np.ndarray,
    lam: float,
    divergence: Divergence = "chi2",
    *,
    restrict_support: bool = False,
    solver: str | None = None,
) -> OccupancyRegularizedResult:
    """Occupancy-regularized planning: max_μ ⟨μ, R̃⟩ − λ D(μ ‖ μ_ref), exactly.

    The feasible set is the occupancy polytope {μ ≥ 0 : Mμ = (1−γ)μ₀} (sparse M, see
    :func:`flow_matrix`); μ_ref = μ_{π_ref}. Formulations (all DCP):

    * ``"chi2"``      λ Σ w (μ − μ_ref)², w = 1/μ_ref — a diagonal quadratic;
    * ``"sqrt_chi2"`` λ ‖w^{1/2} ⊙ (μ − μ_ref)‖₂ — one second-order cone (the objective that the
      paper's Theorem derives, with λ = :func:`rlref.theory.correlated_proxies.prescribed_lambda`);
    * ``"kl"``        λ Σ rel_entr(μ, μ_ref) — exponential cones;
    * ``"tv"``        (λ/2) Σ |μ − μ_ref| — linear.

    The objective is rescaled by 1/max(1, λ, max|R̃|) before solving (same maximizer, better
    conditioning). Clarabel is used by default, SCS as fallback.

    Args:
      mdp: a discounted TabularMDP (dense or sparse P).
      reward: proxy reward R̃[s, a]; ``None`` uses ``mdp.r``.
      pi_ref: reference policy π_ref[s, a].
      lam: λ >= 0.
      divergence: one of ``"chi2" | "sqrt_chi2" | "kl" | "tv"``.
      restrict_support: see the module docstring (χ², √χ², KL with a μ_ref that has zeros).
      solver: force a cvxpy solver name.

    Returns: :class:`OccupancyRegularizedResult`. Shapes: occupancy/policy (S, A), values (S,).
    Raises: ValueError on bad input; RuntimeError naming the status if the solvers fail.

    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §5 (the √χ² objective) and
    §6 (χ² and KL occupancy regularization); Puterman (1994), §6.9.
    """
    check_discounted_mdp(mdp)
    r = check_sa_reward(mdp, reward, "reward")
    pi_ref = validate_policy(mdp, pi_ref, "pi_ref")
    if pi_ref.ndim != 2:
        raise ValueError(f"pi_ref must be a stationary policy pi_ref[s, a], got shape {pi_ref.shape}")
    lam = _check_lam(lam)
    divergence = _check_divergence(divergence)
    S, A = mdp.num_states, mdp.num_actions
    mu_ref = occupancy_of(mdp, pi_ref)
    sup = _support(mdp, mu_ref, divergence, lam, restrict_support)
    idx = np.flatnonzero(sup)
    M = flow_matrix(mdp)[:, idx]
    b = (1.0 - mdp.gamma) * np.asarray(mdp.mu0)
    r_s = r.ravel()[idx]
    ref_s = mu_ref.ravel()[idx]
    scale = 1.0 / max(1.0, lam, float(np.abs(r).max()))

    x = cp.Variable(idx.size, name="mu")
    if lam == 0.0:
        penalty = cp.Constant(0.0)
    elif divergence == "chi2":
        penalty = cp.sum_squares(cp.multiply(1.0 / np.sqrt(ref_s), x - ref_s))
    elif divergence == "sqrt_chi2":
        penalty = cp.norm(cp.multiply(1.0 / np.sqrt(ref_s), x - ref_s), 2)
    elif divergence == "kl":
        penalty = cp.sum(cp.rel_entr(x, ref_s))
    else:
        penalty = 0.5 * cp.norm(x - ref_s, 1)
    flow = M @ x == b
    nonneg = x >= 0
    prob = cp.Problem(cp.Maximize(scale * (r_s @ x - lam * penalty)), [flow, nonneg])
    used = _solve_problem(prob, solver)

    mu = np.zeros(S * A)
    mu[idx] = np.clip(np.asarray(x.value, dtype=np.float64), 0.0, None)
    mu = mu.reshape(S, A)
    nu = np.zeros(S * A)
    nu[idx] = np.asarray(nonneg.dual_value, dtype=np.float64) / scale
    # cvxpy's equality dual y for Maximize(f) s.t. Mx = b satisfies ∇f = Mᵀ y - ν, so v = y / scale
    values = np.asarray(flow.dual_value, dtype=np.float64) / scale
    dval = divergence_value(mu, mu_ref, divergence)
    proxy = float(np.sum(mu * r))
    obj = proxy - lam * dval if lam > 0 else proxy
    return OccupancyRegularizedResult(
        occupancy=mu,
        policy=policy_of(mu, pi_ref),
        objective=float(obj),
        proxy_return=proxy,
        divergence_value=float(dval),
        reference_occupancy=mu_ref,
        values=values,
        nonneg_duals=nu.reshape(S, A),
        status=str(prob.status),
        solver=used,
        lam=lam,
        divergence=divergence,
    )


# ----------------------------------------------------------------------------- action KL
def with_reward(mdp: TabularMDP, r: np.ndarray) -> TabularMDP:
    """The same dynamics (P, γ, μ₀) with expected reward ``r[s, a]`` (validated by TabularMDP)."""
    return TabularMDP(mdp.P, r, gamma=mdp.gamma, mu0=mdp.mu0, name=mdp.name)


def solve_action_kl(
    mdp: TabularMDP,
    reward: np.ndarray | None,
    pi_ref: np.ndarray,
    lam: float,
    *,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> ActionKLResult:
    """Action-distribution KL regularization by soft value iteration.

    Solves max_π E[Σ_t γᵗ (R̃(s_t,a_t) − λ KL(π(·|s_t) ‖ π_ref(·|s_t)))] with
        Q(s,a) = R̃(s,a) + γ Σ_{s'} P(s'|s,a) V(s'),
        V(s)   = λ log Σ_a π_ref(a|s) exp(Q(s,a)/λ),     π(a|s) = π_ref(a|s) exp((Q(s,a) − V(s))/λ),
    in log space. λ = 0 is the unregularized problem restricted to supp(π_ref) (hard max).
    The returned ``objective`` is the normalized one, (1−γ) μ₀·V.

    Shapes: reward, pi_ref (S, A) -> policy, occupancy (S, A), values (S,).

    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §6 (AD KL baseline);
    Haarnoja et al. (2017) / Geist, Scherrer, Pietquin (2019), regularized MDPs (soft Bellman).
    """
    check_discounted_mdp(mdp)
    r = check_sa_reward(mdp, reward, "reward")
    pi_ref = validate_policy(mdp, pi_ref, "pi_ref")
    lam = _check_lam(lam)
    if lam == 0.0:
        # The unregularized problem restricted to supp(π_ref), as plain value iteration on a reward
        # that is pushed down by span(r)/(1−γ) + 1 off the support (derived here): with
        # V ≥ min r/(1−γ) on the restricted problem, Q(s, a_on) − Q(s, a_off) ≥ span(r) + 1 > 0, so
        # no off-support action is ever optimal and V* equals the restricted optimum.
        span = float(r.max() - r.min())
        r_off = float(r.min()) - span / (1.0 - mdp.gamma) - 1.0
        hard = value_iteration(with_reward(mdp, np.where(pi_ref > 0, r, r_off)), epsilon=tol, max_iter=max_iter, strict=True)
        v, pi, it = hard.values, hard.policy, hard.iterations
        status = f"value iteration converged in {it} iterations"
    else:
        soft = soft_value_iteration(with_reward(mdp, r), lam, pi_ref=pi_ref, epsilon=tol, max_iter=max_iter, strict=True)
        v, pi = soft.values, soft.policy
        status = f"soft value iteration converged in {soft.iterations} iterations"
    mu = occupancy_of(mdp, pi)
    action_kl = expected_action_kl(mu, pi, pi_ref)
    proxy = float(np.sum(mu * r))
    return ActionKLResult(
        occupancy=mu,
        policy=pi,
        objective=proxy - lam * action_kl,
        proxy_return=proxy,
        action_kl=action_kl,
        values=v,
        status=status,
        lam=lam,
    )


def solve_action_kl_program(
    mdp: TabularMDP,
    reward: np.ndarray | None,
    pi_ref: np.ndarray,
    lam: float,
    *,
    solver: str | None = None,
) -> OccupancyRegularizedResult:
    """The action-KL problem as a convex program over occupancy measures.

        max_μ ⟨μ, R̃⟩ − λ Σ_{s,a} μ(s,a) log( μ(s,a) / (μ_s(s) π_ref(a|s)) ),   μ_s(s) = Σ_b μ(s,b),

    over the occupancy polytope. Since π(a|s) = μ(s,a)/μ_s(s), the penalty is
    E_{μ}[KL(π(·|s) ‖ π_ref(·|s))]; it is Σ rel_entr(μ, μ_s ⊙ π_ref), the perspective of a convex
    function of an affine map of μ, hence jointly convex (derived here). Independent of soft VI;
    used to cross-check :func:`solve_action_kl`. ``divergence_value`` holds the penalty.

    Shapes: reward[s, a] (None: mdp.r), pi_ref[s, a] -> OccupancyRegularizedResult.
    References: Laidlaw, Singhal, Dragan (2024), arXiv 2403.03185, §6; Neu, Jonsson, Gómez (2017),
    "A unified view of entropy-regularized MDPs", eq. (conditional entropy of μ).
    """
    check_discounted_mdp(mdp)
    r = check_sa_reward(mdp, reward, "reward")
    pi_ref = validate_policy(mdp, pi_ref, "pi_ref")
    lam = _check_lam(lam)
    S, A = mdp.num_states, mdp.num_actions
    M = flow_matrix(mdp)
    b = (1.0 - mdp.gamma) * np.asarray(mdp.mu0)
    E = sp.csr_matrix((np.ones(S * A), (np.repeat(np.arange(S), A), np.arange(S * A))), shape=(S, S * A))
    scale = 1.0 / max(1.0, lam, float(np.abs(r).max()))
    x = cp.Variable(S * A, name="mu")
    mu_s_rep = E.T @ (E @ x)  # μ_s(s) repeated over a
    penalty = cp.sum(cp.rel_entr(x, cp.multiply(pi_ref.ravel(), mu_s_rep))) if lam > 0 else cp.Constant(0.0)
    flow = M @ x == b
    nonneg = x >= 0
    prob = cp.Problem(cp.Maximize(scale * (r.ravel() @ x - lam * penalty)), [flow, nonneg])
    used = _solve_problem(prob, solver)
    mu = np.clip(np.asarray(x.value, dtype=np.float64), 0.0, None).reshape(S, A)
    if lam > 0:  # the exponential cone forces μ = 0 off supp(π_ref); what is left there is round-off
        mu = np.where(pi_ref > 0, mu, 0.0)
    pi = policy_of(mu, pi_ref)
    pen = expected_action_kl(mu, pi, pi_ref)
    proxy = float(np.sum(mu * r))
    return OccupancyRegularizedResult(
        occupancy=mu,
        policy=pi,
        objective=proxy - lam * pen if lam > 0 else proxy,
        proxy_return=proxy,
        divergence_value=pen,
        reference_occupancy=occupancy_of(mdp, pi_ref),
        values=np.asarray(flow.dual_value, dtype=np.float64) / scale,
        nonneg_duals=np.asarray(nonneg.dual_value, dtype=np.float64).reshape(S, A) / scale,
        status=str(prob.status),
        solver=used,
        lam=lam,
        divergence="action_kl",
    )


# ----------------------------------------------------------------------------- sampled (ORPO)
def _fit_discriminator(counts_pi: np.ndarray, counts_ref: np.ndarray, l2: float) -> np.ndarray:
    """Logistic regression on one-hot (s, a) features: label 1 for μ_π samples, 0 for μ_ref.

    Minimizes Σ_k [n⁺_k log(1 + e^{−θ_k}) + n⁻_k log(1 + e^{θ_k})] + (l2/2)‖θ‖² over the logits θ
    (one per state-action; equal sample sizes, so no intercept is needed). Without l2 the
    minimizer is θ_k = log(n⁺_k/n⁻_k), the empirical log μ_π/μ_ref; l2 keeps unseen pairs finite.
    The problem separates over coordinates (one-hot features), so it is solved by a vectorized
    Newton iteration on f'(θ) = −n⁺σ(−θ) + n⁻σ(θ) + l2·θ (f'' >= l2 > 0), steps clipped to ±1.
    """
    npos, nneg = counts_pi.ravel().astype(np.float64), counts_ref.ravel().astype(np.float64)
    theta = np.log((npos + 0.5) / (nneg + 0.5))
    for _ in range(200):
        sp_, sn = expit(theta), expit(-theta)
        grad = -npos * sn + nneg * sp_ + l2 * theta
        hess = (npos + nneg) * sp_ * sn + l2
        step = np.clip(grad / hess, -1.0, 1.0)
        theta = theta - step
        if np.max(np.abs(step)) < 1e-12:
            break
    return theta.reshape(counts_pi.shape)


def best_response_occupancy(mdp: TabularMDP, r: np.ndarray) -> np.ndarray:
    """μ_π* [s, a]: the occupancy of a deterministic optimal policy for reward r[s, a]
    (:func:`rlref.solve.policy_iteration`, strict), i.e. a vertex of argmax_μ ⟨μ, r⟩ over the
    occupancy polytope. References: Puterman (1994), Thm 6.9.1 and §6.4."""
    return occupancy_measure(mdp, policy_iteration(with_reward(mdp, r), strict=True).policy)


def solve_sampled(
    mdp: TabularMDP,
    reward: np.ndarray | None,
    pi_ref: np.ndarray,
    lam: float,
    divergence: Literal["chi2", "sqrt_chi2"] = "chi2",
    *,
    num_samples: int = 20_000,
    iterations: int = 200,
    l2: float = 1e-2,
    rng: np.random.Generator | None = None,
) -> SampledResult:
    """ORPO-style occupancy regularization with a learned discriminator (derived here).

    Iteration k (Frank–Wolfe on the occupancy polytope):
      1. draw ``num_samples`` state-actions from μ_k and from μ_ref;
      2. fit a logistic-regression discriminator on one-hot (s,a) features:
         d(s,a) ≈ log μ_k(s,a)/μ_ref(s,a);
      3. penalized reward  R'_k = R̃ − λ ∂D/∂μ  with ∂χ²/∂μ = 2(e^{d} − 1), and
         ∂√χ²/∂μ = (e^{d} − 1)/√χ̂², χ̂² = E_{μ_k}[e^{d}] − 1 (clipped >= 1e-12) — the reward
         R̃ − λ e^{d}/√χ̂² of the paper up to a constant, which does not change the maximizer;
      4. policy optimization: a deterministic optimal policy for R'_k (policy iteration) gives
         the occupancy μ̂; μ_{k+1} = (1 − η_k) μ_k + η_k μ̂ with η_k = 2/(k + 2).
    With exact log-ratios this is Frank–Wolfe on the concave objective ⟨μ, R̃⟩ − λD(μ‖μ_ref),
    so it converges to :func:`solve`'s optimum at rate O(1/k) for χ² (smooth); sampling adds
    an O(1/√num_samples) error. Starts from μ_0 = μ_ref.

    Shapes: reward[s, a] (None: mdp.r), pi_ref[s, a] -> :class:`SampledResult`.
    References: Laidlaw, Singhal, Dragan (2024), arXiv
    2403.03185, §6 (ORPO: discriminator reward R' = R̃ − λ e^{d}/√χ̂²); Frank & Wolfe (1956).
    """
    check_discounted_mdp(mdp)
    r = check_sa_reward(mdp, reward, "reward")
    pi_ref = validate_policy(mdp, pi_ref, "pi_ref")
    lam = _check_lam(lam)
    if divergence not in ("chi2", "sqrt_chi2"):
        raise ValueError(f"divergence must be 'chi2' or 'sqrt_chi2' for the sampled method, got {divergence!r}")
    num_samples = check_count("num_samples", num_samples)
    iterations = check_count("iterations", iterations)
    if not (np.isfinite(l2) and l2 > 0):
        raise ValueError(f"l2 must be > 0 and finite, got {l2!r}")
    rng = np.random.default_rng() if rng is None else rng
    S, A = mdp.num_states, mdp.num_actions
    mu_ref = occupancy_of(mdp, pi_ref)
    p_ref = mu_ref.ravel() / mu_ref.sum()
    mu = mu_ref.copy()
    trace = []
    d = np.zeros((S, A))
    for k in range(iterations):
        p = np.clip(mu.ravel(), 0.0, None)
        counts_pi = rng.multinomial(num_samples, p / p.sum()).reshape(S, A)
        counts_ref = rng.multinomial(num_samples, p_ref).reshape(S, A)
        d = _fit_discriminator(counts_pi, counts_ref, l2)
        w = np.exp(np.clip(d, -50.0, 50.0))
        if divergence == "chi2":
            grad = 2.0 * (w - 1.0)
        else:
            chi2_hat = max(float(np.sum(mu * w)) - 1.0, 1e-12)
            grad = (w - 1.0) / np.sqrt(chi2_hat)
        mu_hat = best_response_occupancy(mdp, r - lam * grad)
        eta = 2.0 / (k + 2.0)
        mu = (1.0 - eta) * mu + eta * mu_hat
        trace.append(float(np.sum(mu * r)) - lam * divergence_value(mu, mu_ref, divergence))
    dval = divergence_value(mu, mu_ref, divergence)
    proxy = float(np.sum(mu * r))
    return SampledResult(
        occupancy=mu,
        policy=policy_of(mu, pi_ref),
        objective=proxy - lam * dval,
        proxy_return=proxy,
        divergence_value=dval,
        log_ratio=d,
        objective_trace=np.asarray(trace),
        iterations=iterations,
        lam=lam,
        divergence=divergence,
    )
