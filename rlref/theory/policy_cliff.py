"""The reward → optimal-policy map: discontinuous at ties, Lipschitz under entropy regularization.

Xu (2025), "The Policy Cliff: A Theoretical Analysis of Reward-Policy Maps in Large Language
Models", studies the map from a reward to its optimal policy:

* Unregularized (β = 0), the optimal policy is the argmax of r (per state: of Q*). When the
  optimal action is not unique the map is discontinuous: an arbitrarily small perturbation of
  size ε moves the policy by a total-variation distance that does not shrink with ε (1 − 1/k
  from the uniform-over-ties policy, 1 between two opposite perturbations) — the "policy cliff".
* With entropy/KL regularization at temperature β > 0 the optimal policy is π = softmax(r/β)
  (times a reference), and the map is Lipschitz. The tight constant, derived here: the Jacobian
  of r ↦ softmax(r/β) is J = (diag(π) − ππᵀ)/β, so for a direction d,
  ‖J d‖₁ = (1/β) Σ_a π(a) |d(a) − E_π d| ≤ (1/β) · (max d − min d)/2, because the mean absolute
  deviation of a variable with range [m, M] is at most (M − m)/2 (attained with two atoms of
  mass 1/2 at the ends). Integrating along the segment r → r′:
      ‖π_β(r) − π_β(r′)‖₁ ≤ osc(r − r′)/(2β) ≤ ‖r − r′‖_∞/β,   i.e.  TV ≤ osc(r − r′)/(4β),
  with osc(d) = max_a d(a) − min_a d(a). The constant 1/(2β) is attained in the limit of small
  perturbations at a policy that puts mass 1/2 on each of two groups of actions moved in
  opposite directions. The same bound holds for π ∝ π_ref exp(r/β) with any reference.
* Multi-reward RL (Xu 2025, §multi-reward): the policy is a function of the effective reward
  r_eff = Σ_i w_i r_i, so the weight → policy map inherits both facts: discontinuous where
  r_eff has ties (β = 0), Lipschitz with ‖Δπ‖₁ ≤ osc(Σ_i Δw_i r_i)/(2β) for β > 0.
* Tabular MDPs (derived here): the soft-optimal policy is softmax(Q_β/β) per state, and the soft
  Bellman operator is a γ-contraction in the reward, so ‖Q_β(r) − Q_β(r′)‖_∞ ≤ ‖r − r′‖_∞/(1−γ)
  and per state ‖Δπ(·|s)‖₁ ≤ osc_a ΔQ(s,·)/(2β) ≤ ‖r − r′‖_∞/(β(1−γ)).

Shapes: rewards r[..., a] (a leading state axis is allowed), policies π[..., a].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rlref import divergences
from rlref._checks import as_float_array, check_at_least, check_beta, check_count, check_finite, check_gamma, check_positive
from rlref.mdp import TabularMDP
from rlref.solve import greedy_limit, soft_greedy, soft_value_iteration, value_iteration

__all__ = [
    "argmax_policy",
    "regularized_policy",
    "reward_to_policy",
    "tv_distance",
    "oscillation",
    "softmax_lipschitz_constant",
    "softmax_lipschitz_bound",
    "policy_jump",
    "JumpCurve",
    "jump_curve",
    "LipschitzEstimate",
    "empirical_lipschitz",
    "effective_reward",
    "weights_to_policy",
    "MDPPolicyResult",
    "mdp_optimal_policy",
    "mdp_lipschitz_bound",
]


# ----------------------------------------------------------------------------- checks
def _check_reward(name: str, r: object) -> np.ndarray:
    arr = as_float_array(name, r)
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise ValueError(f"{name} must have a non-empty action axis last, got shape {arr.shape}")
    check_finite(name, arr)
    return arr


# ----------------------------------------------------------------------------- maps
def argmax_policy(r: np.ndarray, tie_tol: float = 0.0) -> np.ndarray:
    """The unregularized optimal policy: uniform over 𝒜* = {a : r(a) ≥ max_b r(b) − tie_tol}.

    Uniform tie-breaking is the permutation-equivariant choice (any selection from the optimal
    set is optimal; all are discontinuous at ties); it is the β → 0 limit of the uniform-reference
    tilt, :func:`rlref.solve.greedy_limit`. Shapes: r[..., a] -> π[..., a].
    References: Xu (2025), "The Policy Cliff", §single-reward analysis (the argmax correspondence).
    """
    arr = _check_reward("r", r)
    return greedy_limit(arr, None, check_at_least("tie_tol", tie_tol, 0.0))


def regularized_policy(r: np.ndarray, beta: float, pi_ref: np.ndarray | None = None) -> np.ndarray:
    """Entropy/KL-regularized optimal policy π_β(a) ∝ π_ref(a) exp(r(a)/β) (uniform π_ref if None).

    It maximizes E_π[r] − β KL(π ‖ π_ref) (= E_π[r] + β H(π) − β log A for uniform π_ref).
    The tilt is :func:`rlref.solve.soft_greedy` (log space).
    Shapes: r[..., a], pi_ref broadcastable -> π[..., a]. Raises ValueError if beta <= 0.
    References: Xu (2025), §entropy regularization; Korbak et al. (2022), eq. (4).
    """
    arr = _check_reward("r", r)
    return soft_greedy(arr, pi_ref, check_beta("beta", beta))


def reward_to_policy(r: np.ndarray, beta: float, *, tie_tol: float = 0.0, pi_ref: np.ndarray | None = None) -> np.ndarray:
    """The reward → policy map: :func:`argmax_policy` for β = 0, :func:`regularized_policy` for β > 0.

    π = uniform over argmax_a r(a) (β = 0), π ∝ π_ref exp(r/β) (β > 0).
    Shapes: r[..., a], pi_ref broadcastable (β > 0 only) -> π[..., a].
    References: Xu (2025), "The Policy Cliff" (the reward-policy map).
    """
    b = check_beta("beta", beta, allow_zero=True)
    return argmax_policy(r, tie_tol) if b == 0 else regularized_policy(r, b, pi_ref)


def tv_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total variation TV(p, q) = ½ Σ_a |p(a) − q(a)| over the last axis. Shapes: [..., a] -> [...].

    A thin wrapper over :func:`rlref.divergences.total_variation`.
    References: the standard definition (used for the jumps in Xu (2025), "The Policy Cliff").
    """
    out = divergences.total_variation(p, q)
    return float(out) if np.ndim(out) == 0 else out


def oscillation(d: np.ndarray) -> np.ndarray:
    """osc(d) = max_a d(a) − min_a d(a) over the last axis (the seminorm softmax sees).

    Shapes: d[..., a] -> [...] (float for 1-d d). References: derived here (module docstring).
    """
    arr = _check_reward("d", d)
    out = arr.max(axis=-1) - arr.min(axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def softmax_lipschitz_constant(beta: float) -> float:
    """Tight Lipschitz constant 1/(2β) of r ↦ softmax(r/β) from (ℝ^A, osc) to (Δ_A, ‖·‖₁).

    Equivalently TV ≤ osc/(4β), and ‖·‖₁ ≤ ‖r − r′‖_∞/β. Shapes: scalar β > 0 -> float.
    References: derived here (module docstring).
    """
    return 1.0 / (2.0 * check_beta("beta", beta))


def softmax_lipschitz_bound(r: np.ndarray, r_prime: np.ndarray, beta: float) -> np.ndarray:
    """Upper bound on ‖π_β(r) − π_β(r′)‖₁: osc(r − r′)/(2β), per leading index.

    Shapes: r[..., a], r_prime[..., a] -> [...]. References: derived here (module docstring).
    """
    a = _check_reward("r", r)
    b = _check_reward("r_prime", r_prime)
    if a.shape != b.shape:
        raise ValueError(f"r and r_prime must have the same shape, got {a.shape} and {b.shape}")
    return oscillation(a - b) * softmax_lipschitz_constant(beta)


def policy_jump(r: np.ndarray, perturbation: np.ndarray, beta: float, *, tie_tol: float = 0.0) -> np.ndarray:
    """TV(π_β(r), π_β(r + perturbation)) for the reward → policy map (β = 0: argmax).

    Shapes: r[..., a], perturbation[..., a] -> [...]. References: Xu (2025), "The Policy Cliff".
    """
    a = _check_reward("r", r)
    d = _check_reward("perturbation", perturbation)
    if a.shape != d.shape:
        raise ValueError(f"r and perturbation must have the same shape, got {a.shape} and {d.shape}")
    return tv_distance(reward_to_policy(a, beta, tie_tol=tie_tol), reward_to_policy(a + d, beta, tie_tol=tie_tol))


@dataclass(frozen=True)
class JumpCurve:
    """Worst TV jump of the policy against the perturbation size, for one reward vector.

    Attributes: eps (E,) perturbation sizes (sup-norm); jump (E,) max TV(π(r), π(r + d)) over the
    probed d with ‖d‖_∞ ≤ eps; bound (E,) the TV bound ε/(2β) (osc(d) ≤ 2ε, TV ≤ osc/(4β)),
    inf for β = 0; beta.

    References: Xu (2025), "The Policy Cliff" (the cliff); the bound is derived here.
    """

    eps: np.ndarray
    jump: np.ndarray
    bound: np.ndarray
    beta: float


def _probe_directions(num_actions: int, rng: np.random.Generator, num_random: int) -> np.ndarray:
    """Unit sup-norm directions: ±e_a, the two-block ±1 patterns, and random signs/uniforms."""
    eye = np.eye(num_actions)
    dirs = [eye, -eye]
    half = np.where(np.arange(num_actions) < num_actions // 2, 1.0, -1.0)
    dirs.append(np.stack([half, -half]))
    if num_random:
        dirs.append(rng.choice([-1.0, 1.0], size=(num_random, num_actions)))
        dirs.append(rng.uniform(-1.0, 1.0, size=(num_random, num_actions)))
    return np.vstack(dirs)


def jump_curve(r: np.ndarray, beta: float, eps: np.ndarray, *, rng: np.random.Generator | None = None,
               num_random: int = 64, tie_tol: float = 0.0) -> JumpCurve:
    """Largest probed TV jump of π_β(r) under perturbations of sup-norm ≤ ε, for each ε.

    At β = 0 with k ≥ 2 tied optimal actions the jump is ≥ 1 − 1/k ≥ 1/2 for every ε > 0 (the
    cliff); for β > 0 it is ≤ ε/(2β) → 0. The probes are the ±ε one-hot and two-block directions and
    ``num_random`` random sign and uniform directions.

    Shapes: r[a] (1-d), eps[E] > 0 -> JumpCurve. References: Xu (2025), "The Policy Cliff";
    the bound is derived here.
    """
    arr = _check_reward("r", r)
    if arr.ndim != 1:
        raise ValueError(f"r must be 1-d (a reward per action), got shape {arr.shape}")
    b = check_beta("beta", beta, allow_zero=True)
    e = as_float_array("eps", eps, ndim=1)
    for i, ei in enumerate(e):
        if not (math.isfinite(ei) and ei > 0):
            raise ValueError(f"eps must be > 0 and finite; eps[{i}] = {float(ei)!r}")
    gen = rng if rng is not None else np.random.default_rng(0)
    dirs = _probe_directions(arr.shape[0], gen, num_random)
    base = reward_to_policy(arr, b, tie_tol=tie_tol)
    jumps = []
    for ei in e:
        moved = reward_to_policy(arr[None, :] + ei * dirs, b, tie_tol=tie_tol)
        jumps.append(float(np.max(tv_distance(moved, base))))
    bound = np.full(e.shape, np.inf) if b == 0 else e / (2.0 * b)
    return JumpCurve(eps=e.copy(), jump=np.array(jumps), bound=bound, beta=b)


@dataclass(frozen=True)
class LipschitzEstimate:
    """Empirical Lipschitz ratio ‖π_β(r) − π_β(r′)‖₁ / osc(r − r′) over random pairs.

    Attributes: ratios (N,); max_ratio; constant = 1/(2β) (the proven bound); violated =
    max_ratio > constant·(1 + 1e-9).

    References: derived here (module docstring; see :func:`empirical_lipschitz`).
    """

    ratios: np.ndarray
    max_ratio: float
    constant: float
    violated: bool


def empirical_lipschitz(r: np.ndarray, beta: float, *, rng: np.random.Generator, num: int = 256, scale: float = 1.0,
                        pi_ref: np.ndarray | None = None) -> LipschitzEstimate:
    """Empirical Lipschitz ratios of r ↦ π_β(r) at ``r`` against the bound 1/(2β).

    Pairs (r, r + d) with d drawn as scale·(uniform, Gaussian, or ±1 signs); the ratio is
    ‖π_β(r) − π_β(r + d)‖₁ / osc(d).

    Shapes: r[a] -> LipschitzEstimate. References: derived here (module docstring).
    """
    arr = _check_reward("r", r)
    if arr.ndim != 1:
        raise ValueError(f"r must be 1-d (a reward per action), got shape {arr.shape}")
    b = check_beta("beta", beta)
    num = check_count("num", num)
    scale = check_positive("scale", scale)
    A = arr.shape[0]
    k = num // 3 + 1
    d = scale * np.vstack([rng.uniform(-1, 1, (k, A)), rng.normal(size=(k, A)), rng.choice([-1.0, 1.0], (k, A))])[:num]
    osc = d.max(axis=1) - d.min(axis=1)
    keep = osc > 0
    d, osc = d[keep], osc[keep]
    base = regularized_policy(arr, b, pi_ref)
    moved = regularized_policy(arr[None, :] + d, b, pi_ref)
    ratios = np.abs(moved - base).sum(axis=1) / osc
    c = 1.0 / (2.0 * b)
    mx = float(ratios.max()) if ratios.size else 0.0
    return LipschitzEstimate(ratios=ratios, max_ratio=mx, constant=c, violated=bool(mx > c * (1 + 1e-9)))


# ----------------------------------------------------------------------------- multi-reward
def effective_reward(rewards: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """r_eff(a) = Σ_i w_i r_i(a). Shapes: rewards[k, ..., a], weights[k] -> r_eff[..., a].

    References: Xu (2025), "The Policy Cliff", §multi-reward RL (the effective reward).
    """
    rs = _check_reward("rewards", rewards)
    w = as_float_array("weights", weights, ndim=1)
    check_finite("weights", w)
    if rs.ndim < 2 or rs.shape[0] != w.shape[0]:
        raise ValueError(f"rewards must be (k, ..., a) with k = len(weights) = {w.shape[0]}, got shape {rs.shape}")
    return np.tensordot(w, rs, axes=(0, 0))


def weights_to_policy(rewards: np.ndarray, weights: np.ndarray, beta: float, *, tie_tol: float = 0.0) -> np.ndarray:
    """The weight → policy map π_β(Σ_i w_i r_i) (β = 0: argmax of the effective reward).

    For β > 0: ‖π(w) − π(w′)‖₁ ≤ osc(Σ_i (w_i − w′_i) r_i)/(2β) (derived here).
    Shapes: rewards[k, ..., a], weights[k] -> π[..., a].
    References: Xu (2025), "The Policy Cliff", §multi-reward RL.
    """
    return reward_to_policy(effective_reward(rewards, weights), beta, tie_tol=tie_tol)


# ----------------------------------------------------------------------------- tabular MDPs
@dataclass(frozen=True)
class MDPPolicyResult:
    """Optimal (β = 0) or soft-optimal (β > 0) Q-values and policy of a discounted tabular MDP.

    Attributes: q (S, A); v (S,); policy (S, A); beta; iterations; residual = ‖T Q − Q‖_∞ at exit.

    References: see :func:`mdp_optimal_policy`.
    """

    q: np.ndarray
    v: np.ndarray
    policy: np.ndarray
    beta: float
    iterations: int
    residual: float


def mdp_optimal_policy(mdp: TabularMDP, beta: float, *, r: np.ndarray | None = None, tol: float = 1e-12,
                       max_iter: int = 100_000, tie_tol: float = 1e-9) -> MDPPolicyResult:
    """Soft (β > 0) or hard (β = 0) value iteration on a discounted MDP, then the policy map.

    Q(s,a) = r(s,a) + γ Σ_s' P(s'|s,a) V(s'),  V(s) = β log (1/A) Σ_a exp(Q(s,a)/β)  (β > 0, the
    entropy-regularized optimum relative to the uniform policy), V(s) = max_a Q(s,a) (β = 0).
    Policy: softmax(Q/β) per state, or uniform over the actions within ``tie_tol`` of the max.
    The iteration is rlref.solve's (:func:`rlref.solve.soft_value_iteration` with the uniform
    reference for β > 0, :func:`rlref.solve.value_iteration` for β = 0) with ε = ``tol``, whose
    certificate gives ‖V − V*‖_∞ ≤ tol/2.

    Shapes: r[s, a] (defaults to mdp.r) -> MDPPolicyResult. Raises ValueError for a finite-horizon
    MDP or bad r/beta; RuntimeError if value iteration does not converge in max_iter sweeps.
    References: Xu (2025), "The Policy Cliff" (the per-state reward-policy map); soft Bellman
    operator as in Haarnoja et al. (2017), eq. (2)-(3).
    """
    if mdp.horizon is not None:
        raise ValueError("mdp_optimal_policy needs a discounted MDP (horizon=None)")
    b = check_beta("beta", beta, allow_zero=True)
    S, A = mdp.num_states, mdp.num_actions
    rr = mdp.r if r is None else _check_reward("r", r)
    if rr.shape != (S, A):
        raise ValueError(f"r must have shape {(S, A)}, got {rr.shape}")
    model = mdp if r is None else TabularMDP(mdp.P, rr, gamma=mdp.gamma, mu0=mdp.mu0, name=mdp.name)
    # ε-certificate of solve: ‖values − V*‖_∞ ≤ ε/2, so ε = tol meets the contract ‖Q − Q*‖_∞ ≤ tol.
    if b > 0:
        res = soft_value_iteration(model, b, None, epsilon=tol, max_iter=max_iter, strict=True)
    else:
        res = value_iteration(model, epsilon=tol, max_iter=max_iter, strict=True, tie_tol=tie_tol)
    return MDPPolicyResult(
        q=res.q, v=res.values, policy=reward_to_policy(res.q, b, tie_tol=tie_tol), beta=b, iterations=res.iterations, residual=res.bellman_residual
    )


def mdp_lipschitz_bound(delta_r_sup: float, beta: float, gamma: float) -> float:
    """Per-state bound ‖π_β(·|s; r) − π_β(·|s; r′)‖₁ ≤ ‖r − r′‖_∞ / (β (1 − γ)) (derived here).

    ‖Q_β(r) − Q_β(r′)‖_∞ ≤ ‖r − r′‖_∞/(1−γ) (the soft Bellman operator is a γ-contraction and
    monotone in r), and osc_a ΔQ(s,·) ≤ 2‖ΔQ‖_∞ in the softmax bound osc/(2β).

    Shapes: scalars (‖r − r′‖_∞ >= 0, β > 0, γ ∈ [0, 1)) -> float.
    References: derived here (module docstring); Xu (2025), "The Policy Cliff" (the statement
    that regularization makes the map Lipschitz).
    """
    b = check_beta("beta", beta)
    g = check_gamma(gamma)
    d = check_at_least("delta_r_sup", delta_r_sup, 0.0)
    return d / (b * (1 - g))
