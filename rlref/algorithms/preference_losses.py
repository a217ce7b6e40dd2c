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
from scipy.special import expit, log_expit, log_softmax, logsumexp

from rlref._checks import as_float_array, check_distribution, check_finite, check_positive
from rlref.preferences import validate_preference_matrix

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
    "TokenTree",
    "token_tree",
    "sequence_log_probs",
    "token_conditionals",
    "rto_token_rewards",
    "SoftPlanResult",
    "soft_backward_induction",
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
    ref = as_float_array("pi_ref", pi_ref, ndim=1)
    if ref.shape != (n,):
        raise ValueError(f"pi_ref must have shape ({n},), got {ref.shape}")
    check_distribution("pi_ref", ref)
    if np.any(ref <= 0):
        raise ValueError(f"pi_ref must have full support; pi_ref[{int(np.argmin(ref))}] = {float(ref.min())!r}")
    return P, mu, ref


def pair_distribution(policy: np.ndarray, policy2: np.ndarray | None = None) -> np.ndarray:
    """``mu[y, y'] = policy(y) · policy2(y')`` (independent draws; policy2 defaults to policy)."""
    p = as_float_array("policy", policy, ndim=1)
    check_distribution("policy", p)
    q = p if policy2 is None else as_float_array("policy2", policy2, ndim=1)
    check_distribution("policy2", q)
    return np.outer(p, q)


def chosen_distribution(P: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Law of the chosen (winning) response: ``c(y) = Σ_y' μ(y,y') P[y,y'] + μ(y',y) P[y,y']``."""
    P = validate_preference_matrix(P)
    return (mu * P).sum(axis=1) + (mu.T * P).sum(axis=1)


def kl_regularized_optimum(r: np.ndarray, pi_ref: np.ndarray, beta: float) -> np.ndarray:
    """``π*(y) = π_ref(y) exp(r(y)/β) / Z`` = argmax_π E_π[r] − β KL(π‖π_ref) (log space).

    References: Rafailov et al. (2023), eq. (4).
    """
    b = check_positive("beta", beta)
    r = as_float_array("r", r, ndim=1)
    check_finite("r", r)
    ref = as_float_array("pi_ref", pi_ref, ndim=1)
    check_distribution("pi_ref", ref)
    with np.errstate(divide="ignore"):
        return np.exp(log_softmax(np.log(ref) + r / b))


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
    b = check_positive("beta", beta)
    P, mu, ref = _check_inputs(P, mu, pi_ref)
    logpi = log_softmax(theta)
    f = logpi - np.log(ref)
    loss, dD = _dpo_terms(f[:, None] - f[None, :], P, mu, b)
    g = dD.sum(axis=1) - dD.sum(axis=0)
    return loss, _theta_grad(g, logpi)


def ipo_loss(theta: np.ndarray, P: np.ndarray, mu: np.ndarray, pi_ref: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
    """Population IPO loss ``Σ μ(y,y') [P (Δ − 1/(2τ))² + (1−P)(Δ + 1/(2τ))²]`` and its θ-gradient.

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


def xpo_bounded_below(P: np.ndarray, mu: np.ndarray, beta: float, alpha: float, pi_explore: np.ndarray) -> bool:
    """Whether the population XPO loss is bounded below (so a minimizer can exist).

    Along a ray θ + s·d the DPO term grows at rate β Σ_{y,y'} W(y,y') P[y,y'] max(0, d_y' − d_y)
    (W = μ + μᵀ) and the optimism term falls at rate α Σ_y π_explore(y)(max d − d_y). Both are
    linear on each ordering cone of d, whose extreme rays are d = −1_S, so the loss is bounded
    below iff for every non-empty proper subset S of responses
    α·π_explore(S) <= β·Σ_{y∈S, y'∉S} W(y,y') P[y,y']  (derived here). Cost O(2^n n²); n <= 16.
    """
    b = check_positive("beta", beta)
    P = validate_preference_matrix(P)
    n = P.shape[0]
    if n > 16:
        raise ValueError(f"xpo_bounded_below enumerates subsets; n = {n} > 16")
    W = np.asarray(mu, dtype=float) + np.asarray(mu, dtype=float).T
    ex = np.asarray(pi_explore, dtype=float)
    for mask in range(1, 2**n - 1):
        S = np.array([(mask >> k) & 1 for k in range(n)], dtype=bool)
        win_mass = float(np.sum((W * P)[np.ix_(S, ~S)]))
        if alpha * ex[S].sum() > b * win_mass + 1e-15:
            return False
    return True


def ld_dpo_coefficients(lengths: np.ndarray, alpha: float) -> np.ndarray:
    """``C[y, y'] = (ℓ_p + α(ℓ(y) − ℓ_p)) / ℓ(y)`` with ℓ_p = min(ℓ(y), ℓ(y')): the weight of
    log π(y)/π_ref(y) in LD-DPO's desensitized log-ratio when y is compared with y'.

    Assumes each token of y carries an equal share of the sequence log-ratio (tabular
    approximation, derived here). α = 1 gives DPO (C = 1).

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

    References: Liu et al. (2024), "Length Desensitization in DPO", eq. (LD-DPO loss).
    """
    b = check_positive("beta", beta)
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
    certificate ``grad_norm`` (max-norm of the exact gradient at the solution)."""

    pi: np.ndarray
    theta: np.ndarray
    loss: float
    grad_norm: float
    iterations: int
    converged: bool


def minimize_population_loss(loss_fn: LossFn, theta0: np.ndarray, gtol: float = 1e-9) -> PreferenceOptimum:
    """Minimize a loss ``θ -> (value, grad)`` over tabular logits with scipy's L-BFGS.

    ``converged`` is True when the gradient max-norm at the returned point is below ``gtol``.
    """
    theta0 = as_float_array("theta0", theta0, ndim=1)
    res = minimize(loss_fn, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": 20_000, "maxcor": 30, "gtol": 1e-14, "ftol": 1e-16})
    val, grad = loss_fn(res.x)
    gn = float(np.max(np.abs(grad)))
    theta = res.x - res.x.max()
    return PreferenceOptimum(np.exp(log_softmax(theta)), theta, float(val), gn, int(res.nit), gn < gtol)


def dpo_bt_minimizer(r: np.ndarray, pi_ref: np.ndarray, beta: float) -> np.ndarray:
    """Closed-form population DPO minimizer under Bradley–Terry preferences P = σ(r_y − r_y'):
    π_ref·exp(r/β)/Z (unique when the pair distribution's support connects all responses).

    References: Rafailov et al. (2023), Thm. 1 and Sec. 5 (derived here for the population loss:
    βΔ(y,y') = r_y − r_y' zeroes every pair's logistic-loss gradient).
    """
    return kl_regularized_optimum(r, pi_ref, beta)


def ipo_minimizer(P: np.ndarray, mu: np.ndarray, pi_ref: np.ndarray, tau: float) -> np.ndarray:
    """Closed-form population IPO minimizer for a general pair distribution μ.

    The loss is Σ μ [Δ² − (Δ/τ)(2P − 1)] + const in f = log π/π_ref, so its stationarity condition
    is the Laplacian system (D_W − W) f = (1/(2τ)) Σ_y' W(y,y')(2P[y,y'] − 1), W = μ + μᵀ
    (derived here). Solved by least squares (unique up to a constant on a connected support).

    References: Azar et al. (2023), Sec. 5 (IPO), derived here for general μ.
    """
    t = check_positive("tau", tau)
    P, mu, ref = _check_inputs(P, mu, pi_ref)
    W = mu + mu.T
    L = np.diag(W.sum(axis=1)) - W
    b = (W * (2 * P - 1)).sum(axis=1) / (2 * t)
    f = np.linalg.lstsq(L, b, rcond=None)[0]
    return np.exp(log_softmax(np.log(ref) + f))


def ipo_product_closed_form(P: np.ndarray, nu: np.ndarray, pi_ref: np.ndarray, tau: float) -> np.ndarray:
    """``π ∝ π_ref · exp(P(y ≻ ν)/τ)``: IPO's optimum when both responses are drawn from ν (full support).

    References: Azar et al. (2023), Sec. 4–5 (ΨPO with Ψ = identity: argmax_π E_{y~π,y'~ν}
    P(y ≻ y') − τ KL(π‖π_ref)).
    """
    t = check_positive("tau", tau)
    P = validate_preference_matrix(P)
    nu = as_float_array("nu", nu, ndim=1)
    check_distribution("nu", nu)
    return np.exp(log_softmax(np.log(pi_ref) + P @ nu / t))


# ----------------------------------------------------------------------------- token tree (RTO)
@dataclass(frozen=True)
class TokenTree:
    """All sequences of exactly ``L`` tokens over a vocabulary of size ``V``.

    States at depth h are the V^h prefixes, indexed in base V (prefix (a_0..a_{h−1}) has index
    Σ a_k V^{h−1−k}); appending token a to prefix s gives s·V + a. A token policy is a list
    ``[pi_h[V^h, V] for h in range(L)]``; complete sequences are indexed 0..V^L − 1 the same way.
    """

    V: int
    L: int

    @property
    def num_sequences(self) -> int:
        return self.V**self.L

    def sequences(self) -> np.ndarray:
        """``[V^L, L]`` token array of every sequence, in index order."""
        idx = np.arange(self.num_sequences)
        return np.stack([(idx // self.V ** (self.L - 1 - k)) % self.V for k in range(self.L)], axis=1)


def token_tree(V: int, L: int) -> TokenTree:
    """Build the token tree of all length-L sequences over V tokens (V >= 1, L >= 1)."""
    if int(V) != V or V < 1 or int(L) != L or L < 1:
        raise ValueError(f"V and L must be positive integers, got V={V!r}, L={L!r}")
    if V**L > 2_000_000:
        raise ValueError(f"V^L = {V**L} sequences is too many to enumerate")
    return TokenTree(int(V), int(L))


def _check_token_policy(tree: TokenTree, pol: list[np.ndarray], name: str) -> list[np.ndarray]:
    if len(pol) != tree.L:
        raise ValueError(f"{name} must have one array per depth ({tree.L}), got {len(pol)}")
    out = []
    for h, p in enumerate(pol):
        p = as_float_array(f"{name}[{h}]", p, ndim=2)
        if p.shape != (tree.V**h, tree.V):
            raise ValueError(f"{name}[{h}] must have shape {(tree.V**h, tree.V)}, got {p.shape}")
        check_distribution(f"{name}[{h}]", p)
        out.append(p)
    return out


def sequence_log_probs(tree: TokenTree, token_policy: list[np.ndarray]) -> np.ndarray:
    """``log π(y) = Σ_h log π(a_h | s_h)`` for every complete sequence. Shapes: -> [V^L]."""
    pol = _check_token_policy(tree, token_policy, "token_policy")
    logp = np.zeros(1)
    for h in range(tree.L):
        with np.errstate(divide="ignore"):
            logp = (logp[:, None] + np.log(pol[h])).ravel()
    return logp


def token_conditionals(tree: TokenTree, seq_probs: np.ndarray) -> list[np.ndarray]:
    """The token policy π(a | s_h) = π(s_h a)/π(s_h) of a distribution over complete sequences.

    Prefixes of probability 0 get the uniform conditional. Shapes: seq_probs[V^L] -> list of [V^h, V].
    """
    p = as_float_array("seq_probs", seq_probs, ndim=1)
    if p.shape != (tree.num_sequences,):
        raise ValueError(f"seq_probs must have shape ({tree.num_sequences},), got {p.shape}")
    check_distribution("seq_probs", p)
    out: list[np.ndarray] = []
    marg = p
    for h in range(tree.L - 1, -1, -1):
        joint = marg.reshape(tree.V**h, tree.V)
        tot = joint.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            cond = np.where(tot > 0, joint / np.where(tot > 0, tot, 1.0), 1.0 / tree.V)
        out.append(cond)
        marg = tot.ravel()
    return out[::-1]


def rto_token_rewards(tree: TokenTree, pi_dpo: list[np.ndarray], pi_ref: list[np.ndarray], beta: float) -> list[np.ndarray]:
    """RTO's token-wise reward ``r(s_h, a) = β log π_dpo(a|s_h)/π_ref(a|s_h)``. Shapes: list of [V^h, V].

    Summed along a sequence it telescopes to β log π_dpo(y)/π_ref(y), the DPO implicit reward.

    References: Zhong et al. (2024), "DPO Meets PPO: Reinforced Token Optimization", Sec. 3–4
    (token-wise characterization of DPO's implicit reward, RTO's reward).
    """
    b = check_positive("beta", beta)
    pd = _check_token_policy(tree, pi_dpo, "pi_dpo")
    pr = _check_token_policy(tree, pi_ref, "pi_ref")
    out = []
    for h in range(tree.L):
        if np.any((pd[h] > 0) & (pr[h] == 0)):
            raise ValueError(f"pi_dpo[{h}] puts mass where pi_ref[{h}] is 0 (infinite token reward)")
        with np.errstate(divide="ignore"):
            out.append(b * (np.log(pd[h]) - np.log(pr[h])))
    return out


@dataclass(frozen=True)
class SoftPlanResult:
    """Exact finite-horizon KL-regularized planning on a token tree.

    ``policy[h][s, a]``, soft values ``values[h][s]`` (``values[L]`` = terminal reward) and the
    root value ``values[0][0] = max_π E_π[Σ_h r_h] − β KL(π‖π_ref)``.
    """

    policy: list[np.ndarray]
    values: list[np.ndarray]

    @property
    def root_value(self) -> float:
        return float(self.values[0][0])


def soft_backward_induction(tree: TokenTree, token_rewards: list[np.ndarray] | None, pi_ref: list[np.ndarray], beta: float,
                            terminal_reward: np.ndarray | None = None) -> SoftPlanResult:
    """Backward recursion for max_π E_π[Σ_h r(s_h, a_h) + R(y)] − β KL(π‖π_ref) on the tree.

    V_L(y) = R(y);  V_h(s) = β log Σ_a π_ref(a|s) exp((r(s,a) + V_{h+1}(s a))/β);
    π(a|s) = π_ref(a|s) exp((r(s,a) + V_{h+1}(s a) − V_h(s))/β). Computed in log space.

    References: Ziebart (2010) (soft Bellman backup); Rafailov et al. (2024), "From r to Q*",
    Sec. 3 (token-level KL-regularized MDP).
    """
    b = check_positive("beta", beta)
    pr = _check_token_policy(tree, pi_ref, "pi_ref")
    v_next = np.zeros(tree.num_sequences) if terminal_reward is None else as_float_array("terminal_reward", terminal_reward, ndim=1)
    if v_next.shape != (tree.num_sequences,):
        raise ValueError(f"terminal_reward must have shape ({tree.num_sequences},), got {v_next.shape}")
    check_finite("terminal_reward", v_next)
    values: list[np.ndarray] = [v_next]
    policy: list[np.ndarray] = []
    for h in range(tree.L - 1, -1, -1):
        r = np.zeros((tree.V**h, tree.V)) if token_rewards is None else as_float_array(f"token_rewards[{h}]", token_rewards[h])
        if r.shape != (tree.V**h, tree.V):
            raise ValueError(f"token_rewards[{h}] must have shape {(tree.V**h, tree.V)}, got {r.shape}")
        with np.errstate(divide="ignore"):
            logits = np.log(pr[h]) + (r + values[0].reshape(tree.V**h, tree.V)) / b
        v = b * logsumexp(logits, axis=1)
        policy.insert(0, np.exp(logits - v[:, None] / b))
        values.insert(0, v)
    return SoftPlanResult(policy=policy, values=values)
