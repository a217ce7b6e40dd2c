"""The DPO family on a finite response set: population losses, exact gradients, closed-form optima;
and RTO's token-wise reward on an enumerable token tree.

Setting. Responses y ∈ {0, …, n−1} (each with a length ℓ(y) for LD-DPO), a reference π_ref, a
preference matrix ``P[y, y'] = P(y ≻ y')`` and a distribution ``mu[y, y']`` of the ordered pairs
shown to the labeller (e.g. ``outer(π_ref, π_ref)``). The policy is tabular softmax, π_θ =
softmax(θ). With f(y) = log π_θ(y) − log π_ref(y) and Δ(y, y') = f(y) − f(y'), the population
losses are (each pair (y, y') is labelled y ≻ y' with probability P[y, y']):

* DPO:    Σ μ(y,y') [−P log σ(βΔ) − (1−P) log σ(−βΔ)]                        (Rafailov et al. 2023, eq. 7)
* IPO:    Σ μ(y,y') [P (Δ − 1/(2τ))² + (1−P)(−Δ − 1/(2τ))²]                   (Azar et al. 2023, eq. 17)
* RPO:    DPO + η·β·E_{y~π_base}[−log π_θ(y)], π_base = law of the chosen response (Liu et al. 2024, Alg. 2)
* XPO:    DPO + α·E_{ỹ~π_ref}[log π_θ(ỹ)]  (optimism: push mass off reference samples) (Xie et al. 2024, Alg. 1)
* LD-DPO: DPO with the log-ratio of each response of the pair replaced by its length-desensitized
  version: the first ℓ_p = min(ℓ(y), ℓ(y')) tokens count fully and the remaining ones with weight
  α (Liu et al. 2024, "Length Desensitization in DPO", eq. for π̂). On a tabular response set we
  assume each token carries an equal share of log π(y)/π_ref(y) (derived here), giving
  Δ_LD = c(y) f(y) − c(y') f(y'), c(y) = (ℓ_p + α(ℓ(y) − ℓ_p)) / ℓ(y).

Every loss returns ``(value, gradient)`` with the exact gradient in θ. Closed forms: DPO under
Bradley–Terry P = σ(r_y − r_y') with connected pair support is minimized by π_ref·exp(r/β)/Z
(Rafailov et al. 2023, Sec. 4–5); IPO's minimizer solves a graph-Laplacian system, which for
μ = ν ⊗ ν is π_ref·exp(P(y ≻ ν)/τ)/Z (Azar et al. 2023, Sec. 5.1).

RTO (Zhong et al. 2024, "DPO Meets PPO: Reinforced Token Optimization"): on a token tree the
DPO policy induces the token reward r(s_h, a_h) = β log π_dpo(a_h|s_h)/π_ref(a_h|s_h), whose sum
along a sequence telescopes (chain rule) to the sequence-level implicit reward
β log π_dpo(y)/π_ref(y) = r(y) − β log Z; KL-regularized planning with it recovers the
KL-regularized optimum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit, log_softmax

from rlref._checks import as_float_array, check_beta, check_count, check_distribution, check_finite, check_positive
from rlref.preferences import full_support_distribution, validate_preference_matrix
from rlref.solve import soft_greedy
from rlref.tokentree import TokenTree

__all__ = [
    "pair_distribution",
    "chosen_distribution",
    "kl_regularized_optimum",
    "dpo_loss",
    "ipo_loss",
    "rpo_loss",
    "xpo_loss",
    "xpo_bounded_below",
    "ld_dpo_coefficients",
    "ld_dpo_loss",
    "PreferenceOptimum",
    "minimize_population_loss",
    "dpo_bt_minimizer",
    "ipo_minimizer",
    "ipo_product_closed_form",
    "rto_token_rewards",
    "RTOPlan",
    "rto_plan",
]

LossFn = Callable[[np.ndarray], tuple[float, np.ndarray]]


# ----------------------------------------------------------------------------- inputs
def _check_inputs(P: np.ndarray, mu: np.ndarray, pi_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    P = validate_preference_matrix(P)
    n = P.shape[0]
    mu = as_float_array("mu", mu, ndim=2)
    if mu.shape != (n, n):
        raise ValueError(f"mu must have shape {(n, n)} (a distribution over ordered pairs), got {mu.shape}")
    check_distribution("mu (flattened)", mu.ravel())
    return P, mu, full_support_distribution("pi_ref", pi_ref, n)


def pair_distribution(policy: np.ndarray, policy2: np.ndarray | None = None) -> np.ndarray:
    """``mu[y, y'] = policy(y) · policy2(y')`` (independent draws; policy2 defaults to policy).

    Shapes: policy[n], policy2[m] -> mu[n, m]. References: the pair-sampling distribution μ of
    Azar et al. (2023), Sec. 4 (μ = ν ⊗ ν); derived here.
    """
    p = as_float_array("policy", policy, ndim=1)
    check_distribution("policy", p)
    q = p if policy2 is None else as_float_array("policy2", policy2, ndim=1)
    check_distribution("policy2", q)
    return np.outer(p, q)


def chosen_distribution(P: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Law of the chosen (winning) response: ``c(y) = Σ_y' μ(y,y') P[y,y'] + μ(y',y) P[y,y']``.

    Shapes: P[n, n], mu[n, n] (a distribution over ordered pairs) -> c[n].
    References: Liu et al. (2024), "Provably Mitigating Overoptimization in RLHF", Alg. 2 (SFT on
    the chosen responses); the law is derived here.
    """
    P = validate_preference_matrix(P)
    mu = as_float_array("mu", mu, ndim=2)
    if mu.shape != P.shape:
        raise ValueError(f"mu must have shape {P.shape} (a distribution over ordered pairs), got {mu.shape}")
    check_distribution("mu (flattened)", mu.ravel())
    return (mu * P).sum(axis=1) + (mu.T * P).sum(axis=1)


def kl_regularized_optimum(r: np.ndarray, pi_ref: np.ndarray, beta: float) -> np.ndarray:
    """``π*(y) = π_ref(y) exp(r(y)/β) / Z`` = argmax_π E_π[r] − β KL(π‖π_ref) (log space).

    The DPO argument order of :func:`rlref.theory.kl_regularized.optimal_policy` (which calls the library's one
    tilt, :func:`rlref.solve.soft_greedy`), restricted to one distribution over n responses.

    Shapes: r[n], pi_ref[n] -> π*[n]. Raises ValueError if beta <= 0, r or pi_ref is not 1-d, or the shapes differ.
    References: Rafailov et al. (2023), eq. (4).
    """
    from rlref.theory.kl_regularized import optimal_policy

    for name, x in (("r", r), ("pi_ref", pi_ref)):
        if np.ndim(x) != 1:
            raise ValueError(f"{name} must be 1-d (one value per response), got shape {np.shape(x)}")
    return optimal_policy(pi_ref, r, beta)


def _theta_grad(g_logpi: np.ndarray, logpi: np.ndarray) -> np.ndarray:
    """Chain rule through log-softmax: d/dθ = g − π Σ g."""
    return g_logpi - np.exp(logpi) * g_logpi.sum()


def _dpo_terms(Delta: np.ndarray, P: np.ndarray, mu: np.ndarray, beta: float) -> tuple[float, np.ndarray]:
    """Σ μ[−P log σ(βΔ) − (1−P) log σ(−βΔ)] and its derivative with respect to Δ[y, y']."""
    z = beta * Delta
    loss = -np.sum(mu * (P * log_expit(z) + (1 - P) * log_expit(-z)))
    dDelta = -mu * beta * (P * expit(-z) - (1 - P) * expit(z))
    return float(loss), dDelta


# ----------------------------------------------------------------------------- losses
def dpo_loss(theta: np.ndarray, P: np.ndarray, mu: np.ndarray, pi_ref: np.ndarray, beta: float) -> tuple[float, np.ndarray]:
    """Population DPO loss ``Σ μ(y,y') [−P[y,y'] log σ(βΔ) − (1−P[y,y']) log σ(−βΔ)]`` and its θ-gradient.

    Δ(y, y') = log π_θ(y)/π_ref(y) − log π_θ(y')/π_ref(y'). Shapes: theta[n], P[n,n], mu[n,n],
    pi_ref[n] -> (float, [n]).

    References: Rafailov et al. (2023), "Direct Preference Optimization", eq. (7).
    """
    b = check_beta("beta", beta)
    P, mu, ref = _check_inputs(P, mu, pi_ref)
    logpi = log_softmax(theta)
    f = logpi - np.log(ref)
    loss, dD = _dpo_terms(f[:, None] - f[None, :], P, mu, b)
    g = dD.sum(axis=1) - dD.sum(axis=0)
    return loss, _theta_grad(g, logpi)


def ipo_loss(theta: np.ndarray, P: np.ndarray, mu: np.ndarray, pi_ref: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
    """Population IPO loss ``Σ μ(y,y') [P (Δ − 1/(2τ))² + (1−P)(Δ + 1/(2τ))²]`` and its θ-gradient.

    Δ as in :func:`dpo_loss`. Shapes: theta[n], P[n,n], mu[n,n], pi_ref[n] -> (float, [n]).
    References: Azar et al. (2023), "A General Theoretical Paradigm to Understand Learning from
    Human Preferences", eq. (17) (sampled IPO loss) and Sec. 5.
    """
    t = check_positive("tau", tau)
    P, mu, ref = _check_inputs(P, mu, pi_ref)
    logpi = log_softmax(theta)
    f = logpi - np.log(ref)
    D = f[:, None] - f[None, :]
    c = 1.0 / (2 * t)
    loss = float(np.sum(mu * (P * (D - c) ** 2 + (1 - P) * (D + c) ** 2)))
    dD = 2 * mu * (P * (D - c) + (1 - P) * (D + c))
    g = dD.sum(axis=1) - dD.sum(axis=0)
    return loss, _theta_grad(g, logpi)


def rpo_loss(theta: np.ndarray, P: np.ndarray, mu: np.ndarray, pi_ref: np.ndarray, beta: float, eta: float,
             pi_base: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Population RPO loss: DPO + ``η·β·E_{y~π_base}[−log π_θ(y)]`` (SFT/NLL term).

    ``pi_base`` defaults to the law of the chosen response (:func:`chosen_distribution`), the
    practical choice of the paper (SFT on the preferred responses).

    Shapes: theta[n], P[n,n], mu[n,n], pi_ref[n], pi_base[n] -> (float, [n]).
    References: Liu et al. (2024), "Provably Mitigating Overoptimization in RLHF: Your SFT Loss
    is Implicitly an Adversarial Regularizer", Alg. 2 / eq. (RPO objective).
    """
    e = float(eta)
    if not (np.isfinite(e) and e >= 0):
        raise ValueError(f"eta must be >= 0 and finite, got {eta!r}")
    loss, grad = dpo_loss(theta, P, mu, pi_ref, beta)
    base = chosen_distribution(P, mu) if pi_base is None else as_float_array("pi_base", pi_base, ndim=1)
    check_distribution("pi_base", base)
    logpi = log_softmax(theta)
    with np.errstate(invalid="ignore"):
        nll = -float(np.sum(np.where(base > 0, base * logpi, 0.0)))
    g = -base  # d/d logπ of −Σ base·logπ
    return loss + e * beta * nll, grad + e * beta * _theta_grad(g, logpi)


def xpo_loss(theta: np.ndarray, P: np.ndarray, mu: np.ndarray, pi_ref: np.ndarray, beta: float, alpha: float,
             pi_explore: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Population XPO loss: DPO + ``α·E_{ỹ~π_explore}[log π_θ(ỹ)]`` with π_explore = π_ref by default.

    The optimism term lowers the likelihood of reference samples, steering mass toward responses
    the reference rarely produces (exploration). The loss is DPO (convex in θ) plus a concave
    term, so it is bounded below only for α small enough: see :func:`xpo_bounded_below` (derived
    here).

    Shapes: theta[n], P[n,n], mu[n,n], pi_ref[n], pi_explore[n] -> (float, [n]).
    References: Xie et al. (2024), "Exploratory Preference Optimization", Alg. 1 (XPO objective
    with the term α Σ log π(ỹ), ỹ ~ π_ref).
    """
    a = float(alpha)
    if not (np.isfinite(a) and a >= 0):
        raise ValueError(f"alpha must be >= 0 and finite, got {alpha!r}")
    loss, grad = dpo_loss(theta, P, mu, pi_ref, beta)
    ex = np.asarray(pi_ref, dtype=float) if pi_explore is None else as_float_array("pi_explore", pi_explore, ndim=1)
    check_distribution("pi_explore", ex)
    logpi = log_softmax(theta)
    return loss + a * float(ex @ logpi), grad + a * _theta_grad(ex, logpi)


def _xpo_cuts(P: np.ndarray, mu: np.ndarray, pi_explore: np.ndarray, caller: str) -> tuple[np.ndarray, np.ndarray]:
    """For every non-empty proper subset S of the n responses (bitmask order 1..2^n − 2): the cut mass
    Σ_{y∈S, y'∉S} W(y,y') P[y,y'] (W = μ + μᵀ) and π_explore(S). Checks the inputs; n <= 16 (O(2^n n²))."""
    P = validate_preference_matrix(P)
    n = P.shape[0]
    if n > 16:
        raise ValueError(f"{caller} enumerates subsets; n = {n} > 16")
    mu = as_float_array("mu", mu, ndim=2)
    ex = as_float_array("pi_explore", pi_explore, ndim=1)
    if mu.shape != (n, n) or ex.shape != (n,):
        raise ValueError(f"mu must have shape ({n}, {n}) and pi_explore ({n},); got {mu.shape} and {ex.shape}")
    check_distribution("pi_explore", ex)
    WP = (mu + mu.T) * P
    masks = range(1, 2**n - 1)
    win, explore = np.empty(len(masks)), np.empty(len(masks))
    for i, mask in enumerate(masks):
        S = np.array([(mask >> k) & 1 for k in range(n)], dtype=bool)
        win[i], explore[i] = float(np.sum(WP[np.ix_(S, ~S)])), float(ex[S].sum())
    return win, explore


def xpo_bounded_below(P: np.ndarray, mu: np.ndarray, beta: float, alpha: float, pi_explore: np.ndarray) -> bool:
    """Whether the population XPO loss is bounded below (so a minimizer can exist).

    Along a ray θ + s·d the DPO term grows at rate β Σ_{y,y'} W(y,y') P[y,y'] max(0, d_y' − d_y)
    (W = μ + μᵀ) and the optimism term falls at rate α Σ_y π_explore(y)(max d − d_y). Both are
    linear on each ordering cone of d, whose extreme rays are d = −1_S, so the loss is bounded
    below iff for every non-empty proper subset S of responses
    α·π_explore(S) <= β·Σ_{y∈S, y'∉S} W(y,y') P[y,y']  (derived here). Cost O(2^n n²); n <= 16.

    Shapes: P[n,n], mu[n,n], pi_explore[n] -> bool.
    References: Xie et al. (2024), "Exploratory Preference Optimization", Alg. 1 (the loss);
    the boundedness criterion is derived here.
    """
    b = check_beta("beta", beta)
    win, explore = _xpo_cuts(P, mu, pi_explore, "xpo_bounded_below")
    return not bool(np.any(alpha * explore > b * win + 1e-15))


def ld_dpo_coefficients(lengths: np.ndarray, alpha: float) -> np.ndarray:
    """``C[y, y'] = (ℓ_p + α(ℓ(y) − ℓ_p)) / ℓ(y)`` with ℓ_p = min(ℓ(y), ℓ(y')): the weight of
    log π(y)/π_ref(y) in LD-DPO's desensitized log-ratio when y is compared with y'.

    Assumes each token of y carries an equal share of the sequence log-ratio (tabular
    approximation, derived here). α = 1 gives DPO (C = 1).

    Shapes: lengths[n] (> 0), scalar α ∈ [0, 1] -> C[n, n].
    References: Liu et al. (2024), "Length Desensitization in Direct Preference Optimization",
    Sec. 4 (π̂ with public length ℓ_p and weight α on the excess tokens).
    """
    ell = as_float_array("lengths", lengths, ndim=1)
    check_finite("lengths", ell)
    if np.any(ell <= 0):
        raise ValueError(f"lengths must be positive; lengths[{int(np.argmin(ell))}] = {float(ell.min())!r}")
    a = float(alpha)
    if not (0.0 <= a <= 1.0):
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    lp = np.minimum(ell[:, None], ell[None, :])
    return (lp + a * (ell[:, None] - lp)) / ell[:, None]


def ld_dpo_loss(theta: np.ndarray, P: np.ndarray, mu: np.ndarray, pi_ref: np.ndarray, beta: float, alpha: float,
                lengths: np.ndarray) -> tuple[float, np.ndarray]:
    """Population LD-DPO loss: DPO with Δ_LD(y, y') = C[y,y'] f(y) − C[y',y] f(y') (see
    :func:`ld_dpo_coefficients`), f = log π_θ/π_ref; exact θ-gradient.

    Shapes: theta[n], P[n,n], mu[n,n], pi_ref[n], lengths[n] -> (float, [n]).
    References: Liu et al. (2024), "Length Desensitization in DPO", eq. (LD-DPO loss).
    """
    b = check_beta("beta", beta)
    P, mu, ref = _check_inputs(P, mu, pi_ref)
    C = ld_dpo_coefficients(lengths, alpha)
    if C.shape != P.shape:
        raise ValueError(f"lengths must have shape ({P.shape[0]},), got {np.shape(lengths)}")
    logpi = log_softmax(theta)
    f = logpi - np.log(ref)
    D = C * f[:, None] - C.T * f[None, :]
    loss, dD = _dpo_terms(D, P, mu, b)
    g = (dD * C).sum(axis=1) - (dD * C.T).sum(axis=0)
    return loss, _theta_grad(g, logpi)


# ----------------------------------------------------------------------------- minimizers
@dataclass(frozen=True)
class PreferenceOptimum:
    """A population minimizer found numerically: the policy, its logits, the loss value and the
    certificate ``grad_norm`` (max-norm of the exact gradient at the solution).

    Shapes: pi (n,), theta (n,). References: see :func:`minimize_population_loss`.
    """

    pi: np.ndarray
    theta: np.ndarray
    loss: float
    grad_norm: float
    iterations: int
    converged: bool


def minimize_population_loss(loss_fn: LossFn, theta0: np.ndarray, gtol: float = 1e-8, restarts: int = 3) -> PreferenceOptimum:
    """Minimize a loss ``θ -> (value, grad)`` over tabular logits with scipy's L-BFGS.

    ``converged`` is True when the gradient max-norm at the returned point is below ``gtol``.
    L-BFGS's line search can stop at float precision just above ``gtol``; the solve is then
    restarted from where it stopped (a fresh curvature memory), at most ``restarts`` times.

    Shapes: theta0[n]; loss_fn maps [n] -> (float, [n]) -> PreferenceOptimum with π = softmax(θ).
    Raises ValueError if restarts < 0.
    References: Liu & Nocedal (1989), L-BFGS (scipy's L-BFGS-B); the restart rule is derived here.
    """
    x = as_float_array("theta0", theta0, ndim=1)
    restarts = check_count("restarts", restarts, minimum=0)
    nit = 0
    for _ in range(1 + restarts):
        res = minimize(loss_fn, x, jac=True, method="L-BFGS-B",
                       options={"maxiter": 20_000, "maxcor": 30, "gtol": 1e-14, "ftol": 1e-16})
        x, nit = res.x - res.x.max(), nit + int(res.nit)
        val, grad = loss_fn(x)
        gn = float(np.max(np.abs(grad)))
        if gn < gtol:
            break
    return PreferenceOptimum(pi=np.exp(log_softmax(x)), theta=x, loss=float(val), grad_norm=gn, iterations=nit, converged=gn < gtol)


def dpo_bt_minimizer(r: np.ndarray, pi_ref: np.ndarray, beta: float) -> np.ndarray:
    """Closed-form population DPO minimizer under Bradley–Terry preferences P = σ(r_y − r_y'):
    π_ref·exp(r/β)/Z (unique when the pair distribution's support connects all responses).

    Shapes: r[n], pi_ref[n] -> π[n].
    References: Rafailov et al. (2023), Thm. 1 and Sec. 5 (derived here for the population loss:
    βΔ(y,y') = r_y − r_y' zeroes every pair's logistic-loss gradient).
    """
    return kl_regularized_optimum(r, pi_ref, beta)


def ipo_minimizer(P: np.ndarray, mu: np.ndarray, pi_ref: np.ndarray, tau: float) -> np.ndarray:
    """Closed-form population IPO minimizer for a general pair distribution μ.

    The loss is Σ μ [Δ² − (Δ/τ)(2P − 1)] + const in f = log π/π_ref, so its stationarity condition
    is the Laplacian system (D_W − W) f = (1/(2τ)) Σ_y' W(y,y')(2P[y,y'] − 1), W = μ + μᵀ
    (derived here). Solved by least squares (unique up to a constant on a connected support).

    Shapes: P[n,n], mu[n,n], pi_ref[n] -> π[n].
    References: Azar et al. (2023), Sec. 5 (IPO), derived here for general μ.
    """
    t = check_positive("tau", tau)
    P, mu, ref = _check_inputs(P, mu, pi_ref)
    W = mu + mu.T
    L = np.diag(W.sum(axis=1)) - W
    b = (W * (2 * P - 1)).sum(axis=1) / (2 * t)
    f = np.linalg.lstsq(L, b, rcond=None)[0]
    return soft_greedy(f, ref, 1.0)  # π ∝ π_ref · e^f


def ipo_product_closed_form(P: np.ndarray, nu: np.ndarray, pi_ref: np.ndarray, tau: float) -> np.ndarray:
    """``π ∝ π_ref · exp(P(y ≻ ν)/τ)``: IPO's optimum when both responses are drawn from ν (full support).

    P(y ≻ ν) = Σ_y' P[y, y'] ν(y'). Shapes: P[n,n], nu[n], pi_ref[n] -> π[n].
    References: Azar et al. (2023), Sec. 4–5 (ΨPO with Ψ = identity: argmax_π E_{y~π,y'~ν}
    P(y ≻ y') − τ KL(π‖π_ref)).
    """
    t = check_positive("tau", tau)
    P = validate_preference_matrix(P)
    n = P.shape[0]
    nu = as_float_array("nu", nu, ndim=1)
    check_distribution("nu", nu)
    ref = as_float_array("pi_ref", pi_ref, ndim=1)
    check_distribution("pi_ref", ref)
    for name, arr in (("nu", nu), ("pi_ref", ref)):
        if arr.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    return soft_greedy(P @ nu, ref, t)


# ----------------------------------------------------------------------------- RTO on a token tree
def rto_token_rewards(tree: TokenTree, pi_dpo: np.ndarray, pi_ref: np.ndarray, beta: float) -> np.ndarray:
    """RTO's token-wise reward ``r(x, v) = β log π_dpo(v|x)/π_ref(v|x)`` on every open prefix x.

    Summed along a response it telescopes to β log π_dpo(y)/π_ref(y), the DPO implicit reward.
    Shapes: pi_dpo[x, v], pi_ref[x, v] (per-prefix tables of a :class:`rlref.tokentree.TokenTree`)
    -> r[x, v]. Raises ValueError where π_dpo has mass that π_ref lacks (infinite reward).

    References: Zhong et al. (2024), "DPO Meets PPO: Reinforced Token Optimization", Sec. 3–4
    (token-wise characterization of DPO's implicit reward, RTO's reward).
    """
    b = check_beta("beta", beta)
    pd = tree.validate_policy(pi_dpo, "pi_dpo")
    pr = tree.validate_policy(pi_ref, "pi_ref")
    bad = (pd > 0) & (pr == 0)
    if np.any(bad):
        x, v = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"pi_dpo puts mass on token {v} after prefix {tree.prefixes[x]!r} where pi_ref is 0 (infinite token reward)")
    with np.errstate(divide="ignore"):
        return np.where(pd > 0, b * (np.log(np.where(pd > 0, pd, 1.0)) - np.log(np.where(pr > 0, pr, 1.0))), -np.inf)


@dataclass(frozen=True)
class RTOPlan:
    """Exact KL-regularized planning with token rewards on a token tree.

    ``policy[x, v]`` (per open prefix) and ``root_value`` = max_π E_π[Σ_t r(x_t, v_t) + R(y)] − β KL(π‖π_ref).

    References: Zhong et al. (2024), Sec. 4 (see :func:`rto_plan`).
    """

    policy: np.ndarray
    root_value: float


def rto_plan(tree: TokenTree, token_rewards: np.ndarray | None, pi_ref: np.ndarray, beta: float,
             terminal_reward: np.ndarray | None = None) -> RTOPlan:
    """Optimize the token-level KL-regularized objective with RTO's dense reward, exactly.

    The tree becomes a finite-horizon MDP (``tree.to_mdp``) whose reward is the token reward
    plus the sequence reward on completion; ``rlref.solve.soft_value_iteration`` solves it by
    the soft backward recursion V_h(x) = β log Σ_v π_ref(v|x) exp((r(x,v) + V_{h+1}(xv))/β).
    Tokens with reward −inf (outside π_dpo's support) are excluded from the support of π_ref.

    Shapes: token_rewards[x, v] (or None: zero), pi_ref[x, v], terminal_reward[y] (or None) ->
    RTOPlan with policy[x, v].
    References: Zhong et al. (2024), Sec. 4 (RTO optimizes the token-wise reward with PPO; here
    the same objective is solved exactly); Rafailov et al. (2024), "From r to Q*", Sec. 3.
    """
    from rlref.solve import soft_value_iteration

    b = check_beta("beta", beta)
    ref = tree.validate_policy(pi_ref, "pi_ref")
    R = np.zeros(tree.num_sequences) if terminal_reward is None else terminal_reward
    tok = np.zeros_like(ref) if token_rewards is None else as_float_array("token_rewards", token_rewards, ndim=2)
    if tok.shape != ref.shape:
        raise ValueError(f"token_rewards must have shape {ref.shape}, got {tok.shape}")
    if np.any(np.isnan(tok)) or np.any(tok == np.inf):
        raise ValueError("token_rewards must not contain NaN or +inf")
    excluded = np.isneginf(tok)
    if np.any(excluded):
        ref = np.where(excluded, 0.0, ref)
        ref = ref / ref.sum(axis=1, keepdims=True)
        tok = np.where(excluded, 0.0, tok)
    res = soft_value_iteration(tree.to_mdp(R, token_reward=tok), b, pi_ref=tree.extend_policy(ref))
    return RTOPlan(policy=tree.restrict_policy(res.policy), root_value=float(res.values[0, 0]))


# ----------------------------------------------------------------------------- token-level LD-DPO on a token tree
# (moved here from the token-tree-objectives reproduction: experiments hold no library logic)
def ld_dpo_token_minimizer(tree: TokenTree, pi_ref: np.ndarray, P: np.ndarray, beta: float, alpha: float,
                           mu: np.ndarray | None = None, gtol: float = 1e-11, maxiter: int = 5000) -> np.ndarray:
    """Population minimizer of token-level LD-DPO over a tabular (per-prefix logit) policy on a token tree.

    With f_{y,y'} = Σ_t w_t(y, y') (log π(y_t | y_<t) − log π_ref(y_t | y_<t)), w_t = 1 for t < ℓ_p =
    min(|y|, |y'|) and α after (the exact token weights of LD-DPO, not the equal-share tabular
    approximation of :func:`ld_dpo_coefficients`), the loss is
        L(π) = −Σ_{y,y'} μ(y, y') [P(y ≻ y') log σ(β(f_{y,y'} − f_{y',y})) + P(y' ≻ y) log σ(β(f_{y',y} − f_{y,y'}))],
    minimized by BFGS over the per-prefix logits (started at log π_ref). α = 1 is DPO, whose
    minimizer for a Bradley–Terry P is the tilt π_ref(y) e^{r(y)/β}/Z (a test checks this).

    Shapes: pi_ref[prefix, token] (tree policy), P[y, y'] over the tree's responses, mu[y, y'] (default
    p_ref ⊗ p_ref with p_ref the reference's response law) -> the minimizer's response law p[y].
    References: Liu et al. (2024), "Length Desensitization in Direct Preference Optimization",
    eq. (11) (the public-length weights); population form on the token tree derived here.
    """
    b = check_beta("beta", beta)
    a = float(alpha)
    if not (0.0 <= a <= 1.0):
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    pi_ref = as_float_array("pi_ref", pi_ref, ndim=2)
    if pi_ref.shape != (tree.num_prefixes, tree.vocab_size):
        raise ValueError(f"pi_ref must have shape ({tree.num_prefixes}, {tree.vocab_size}) (prefix, token), got {pi_ref.shape}")
    p_ref = tree.sequence_distribution(pi_ref)
    n = tree.num_sequences
    P = validate_preference_matrix(P)
    if P.shape != (n, n):
        raise ValueError(f"P must have shape ({n}, {n}) (the tree's responses), got {P.shape}")
    wpair = np.outer(p_ref, p_ref) if mu is None else as_float_array("mu", mu, ndim=2)
    if wpair.shape != (n, n):
        raise ValueError(f"mu must have shape ({n}, {n}), got {wpair.shape}")
    steps = tree.steps
    valid = steps[..., 0] >= 0
    pidx, vidx = np.maximum(steps[..., 0], 0), np.maximum(steps[..., 1], 0)
    with np.errstate(divide="ignore"):
        log_ref = np.log(pi_ref)
    ref_tok = np.where(valid, log_ref[pidx, vidx], 0.0)
    lens = tree.lengths
    pub = np.minimum(lens[:, None], lens[None, :])
    t = np.arange(tree.max_len)
    W = np.where(t[None, None, :] < pub[:, :, None], 1.0, a) * valid[:, None, :]

    def fun(theta: np.ndarray) -> float:
        lq = log_softmax(theta.reshape(tree.num_prefixes, tree.vocab_size), axis=1)
        f = np.einsum("abt,at->ab", W, lq[pidx, vidx] * valid - ref_tok)
        D = f - f.T
        return float(-np.sum(wpair * (P * log_expit(b * D) + (1 - P) * log_expit(-b * D))))

    res = minimize(fun, log_ref.ravel(), method="BFGS", options={"gtol": gtol, "maxiter": maxiter})
    return tree.sequence_distribution(np.exp(log_softmax(res.x.reshape(tree.num_prefixes, tree.vocab_size), axis=1)))


__all__ += ["ld_dpo_token_minimizer"]


# (moved here from the dpo-family-tabular reproduction, which found it by bisection on xpo_bounded_below)
def xpo_max_alpha(P: np.ndarray, mu: np.ndarray, beta: float, pi_explore: np.ndarray) -> float:
    """The largest optimism weight α for which the population XPO loss is bounded below.

    By the criterion of :func:`xpo_bounded_below` (α·π_explore(S) <= β·Σ_{y∈S, y'∉S} W(y,y') P[y,y']
    for every non-empty proper subset S, W = μ + μᵀ), which is linear in α:
        α* = β · min_{S : π_explore(S) > 0}  Σ_{y∈S, y'∉S} W(y,y') P[y,y'] / π_explore(S)
    (inf when no subset has exploration mass, i.e. n = 1). Cost O(2^n n²); n <= 16.

    Shapes: P[n,n], mu[n,n], pi_explore[n] -> float.
    References: Xie et al. (2024), "Exploratory Preference Optimization", Alg. 1; the closed form
    of the threshold is derived here.
    """
    b = check_beta("beta", beta)
    win, explore = _xpo_cuts(P, mu, pi_explore, "xpo_max_alpha")
    has = explore > 0
    return b * float(np.min(win[has] / explore[has])) if has.any() else b * np.inf


__all__ += ["xpo_max_alpha"]
