"""IQ-Learn as a TD-regularized extension of MLE, exactly, on an enumerable token tree.

Wulfmeier et al. (2024), "Imitating Language via Scalable Inverse Reinforcement Learning"
(NeurIPS 2024, arXiv 2409.01369), §3: inverse soft-Q learning (Garg et al. 2021, "IQ-Learn") with
the χ² reward regularizer, rewritten on expert data alone. With a soft Q-function on
(prefix, token) pairs,

    π(a|s) = softmax_a Q(s, a),    V(s) = log Σ_a exp Q(s, a),    V(done) = 0,

the reward implied by Q through the inverse soft Bellman operator is

    r(s, a) = Q(s, a) − γ V(s')  =  log π(a|s) + V(s) − γ V(s')          (s' the child prefix),

and the offline χ²-IQ-Learn objective becomes

    J(Q) = E_D[ Σ_t log π(a_t|s_t) ] − (1/(4α)) E_D[ Σ_t r(s_t, a_t)² ],

an MLE term plus a temporal-difference regularizer (the telescoping Σ_t V(s_t) − γV(s_{t+1})
of the IQ-Learn objective on expert trajectories turns E[Q − γV'] − (1−γ)E[V(s₀)] into
E[log π]; for γ = 1 on a tree this is exact, for γ < 1 it is the paper's offline surrogate).
α → ∞ removes the regularizer and recovers MLE (the empirical per-prefix conditionals).

Expectations here are per *sequence*: ``data[y]`` is a distribution (or counts) over complete
responses and E_D Σ_t means Σ_y data[y] Σ_{(s,a) ∈ y}. By construction π = softmax Q is the
soft-optimal (entropy-regularized, temperature 1) policy of the tree MDP paying the implied
reward r — Q solves the soft Bellman equation for r — so the recovered reward "makes the learned
policy optimal"; it makes the *expert* optimal exactly when the learned π equals the expert's.

The exact optimizer is L-BFGS (scipy) on the tabular Q with the analytic gradient (derived here):

    ∂J/∂Q(s,a) = d(s,a) − n(s) π(a|s) − (1/(2α)) [ d(s,a) r(s,a) − γ π(a|s) d(p,t) r(p,t) ],

with d(s,a) the data's visit weights, n(s) = Σ_a d(s,a), and (p, t) the parent prefix and token
that lead to s (the term is absent at the root).

References: Wulfmeier et al. (2024), §3 (offline IQLearn as TD-regularized MLE); Garg et al.
(2021), "IQ-Learn: Inverse soft-Q Learning for Imitation", Eq. (9)-(10) and the χ² regularizer.
Equation numbers of Wulfmeier et al. were not pinned; the objective is as stated in issue #17.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from rlref._checks import as_float_array, check_finite, check_gamma, check_nonnegative
from rlref.solve import soft_greedy, soft_value
from rlref.tokentree import TokenTree, tree_links  # tree_links re-exported (it lives in rlref.tokentree)

__all__ = [
    "IQLearnResult",
    "tree_links",
    "visit_weights",
    "soft_policy_and_value",
    "implied_reward",
    "iq_objective",
    "fit_iq_learn",
    "mle_policy",
    "entropy_regularized_policy",
]


@dataclass(frozen=True)
class IQLearnResult:
    """The maximizer of the χ²-IQ-Learn objective on a token tree.

    Attributes:
      q: ``q[p, v]`` the fitted soft Q-function on open prefixes.
      pi: ``pi[p, v] = softmax q[p]``.
      reward: ``reward[p, v] = q[p, v] − γ V(child)``, the implied (recovered) reward.
      objective: J(q); mle_term: E_D Σ log π; td_term: E_D Σ r² (J = mle_term − td_term/(4α)).
      alpha, gamma: the regularization and discount used.
      iterations: L-BFGS iterations; grad_norm: ‖∇J‖_∞ at the returned q (the certificate of a
      stationary point); converged: the optimizer's success flag.
    """

    q: np.ndarray
    pi: np.ndarray
    reward: np.ndarray
    objective: float
    mle_term: float
    td_term: float
    alpha: float
    gamma: float
    iterations: int
    grad_norm: float
    converged: bool


def _check_data(tree: TokenTree, data: object) -> np.ndarray:
    w = as_float_array("data", data, ndim=1)
    if w.shape != (tree.num_sequences,):
        raise ValueError(f"data must have shape (num_sequences,) = ({tree.num_sequences},), got {w.shape}")
    check_finite("data", w)
    check_nonnegative("data", w)
    if not w.sum() > 0:
        raise ValueError("data is empty: the weights over responses sum to 0 (no demonstrations)")
    return w


def visit_weights(tree: TokenTree, data: object) -> np.ndarray:
    """``d[p, v] = Σ_y data[y] 1[(p, v) is a step of y]``: the data's (prefix, token) visit weights.

    With ``data`` the expert's sequence distribution this is the expert's state-action occupancy
    (undiscounted, summed over steps). Raises ValueError on a wrong shape, a negative or
    non-finite weight, or empty data (all weights 0).
    """
    w = _check_data(tree, data)
    d = np.zeros((tree.num_prefixes, tree.vocab_size))
    steps = tree.steps
    for t in range(tree.max_len):
        ok = steps[:, t, 0] >= 0
        np.add.at(d, (steps[ok, t, 0], steps[ok, t, 1]), w[ok])
    return d


def soft_policy_and_value(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """π = softmax Q and V = log Σ_a exp Q (entropy-regularized, temperature 1), via the core tilt.

    V(s) = log Σ_a e^{Q(s,a)} = soft_value(Q, uniform, 1) + log |A| (the core's value is relative to
    the uniform reference).
    """
    V = q.shape[-1]
    return soft_greedy(q, None, 1.0), soft_value(q, None, 1.0) + np.log(V)


def _next_values(child: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.where(child >= 0, v[np.maximum(child, 0)], 0.0)


def implied_reward(tree: TokenTree, q: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """The inverse soft Bellman operator: r(s, a) = Q(s, a) − γ V(s'), V = logsumexp Q, V(done) = 0.

    Equivalently r = log π(a|s) + V(s) − γV(s'). With γ = 1 the tree MDP ``tree.to_mdp(0,
    token_reward=r)`` has softmax(Q) as its entropy-regularized optimal policy.
    References: Garg et al. (2021), Eq. (3) (the inverse soft Bellman operator).
    """
    q = _check_q(tree, q)
    g = check_gamma(gamma, allow_one=True)
    child, _, _ = tree_links(tree)
    _, v = soft_policy_and_value(q)
    return q - g * _next_values(child, v)


def _check_q(tree: TokenTree, q: object) -> np.ndarray:
    q = as_float_array("q", q, ndim=2)
    if q.shape != (tree.num_prefixes, tree.vocab_size):
        raise ValueError(f"q must have shape (num_prefixes, V) = {(tree.num_prefixes, tree.vocab_size)}, got {q.shape}")
    check_finite("q", q)
    return q


def _check_alpha(alpha: float) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"alpha must be a positive number (np.inf for MLE), got {alpha!r}") from exc
    if not a > 0:
        raise ValueError(f"alpha must be > 0 (np.inf for MLE), got {alpha!r}")
    return a


def _terms(q: np.ndarray, d: np.ndarray, child: np.ndarray, parent: np.ndarray, ptok: np.ndarray, gamma: float):
    pi, v = soft_policy_and_value(q)
    r = q - gamma * _next_values(child, v)
    with np.errstate(divide="ignore"):
        logpi = np.where(d > 0, q - v[:, None], 0.0)
    mle = float((d * logpi).sum())
    td = float((d * r * r).sum())
    n = d.sum(axis=1)
    g_mle = d - n[:, None] * pi
    dr = d * r
    par = np.where(parent >= 0, dr[np.maximum(parent, 0), np.maximum(ptok, 0)], 0.0)
    g_td = 2.0 * dr - 2.0 * gamma * pi * par[:, None]  # ∂(Σ d r²)/∂Q
    return pi, r, mle, td, g_mle, g_td


def iq_objective(tree: TokenTree, q: np.ndarray, data: object, alpha: float, gamma: float = 1.0) -> float:
    """J(Q) = E_D Σ_t log π(a_t|s_t) − (1/(4α)) E_D Σ_t r(s_t, a_t)²  (α = np.inf: the MLE term alone).

    Shapes: q[p, v]; data[y] over complete responses (a distribution or counts).
    References: Wulfmeier et al. (2024), §3; Garg et al. (2021), χ² regularizer.
    """
    q = _check_q(tree, q)
    d = visit_weights(tree, data)
    a = _check_alpha(alpha)
    g = check_gamma(gamma, allow_one=True)
    child, parent, ptok = tree_links(tree)
    _, _, mle, td, _, _ = _terms(q, d, child, parent, ptok, g)
    return mle - (0.0 if np.isinf(a) else td / (4.0 * a))


def mle_policy(tree: TokenTree, data: object) -> np.ndarray:
    """The α → ∞ limit: the MLE of a tabular policy, the empirical per-prefix conditionals d(s,a)/n(s).

    Prefixes the data never reach get the uniform distribution (they do not enter the likelihood).
    """
    w = _check_data(tree, data)
    return tree.policy_from_sequence_distribution(w / w.sum())


def fit_iq_learn(
    tree: TokenTree,
    data: object,
    alpha: float,
    gamma: float = 1.0,
    q0: np.ndarray | None = None,
    *,
    q_floor: float = -30.0,
    gtol: float = 1e-9,
    max_iter: int = 5000,
) -> IQLearnResult:
    """Maximize the χ²-IQ-Learn objective over a tabular Q on the tree (L-BFGS-B, analytic gradient).

    ``q`` is boxed to ``[q_floor, −q_floor]`` so that a token the data never take (whose MLE
    probability is 0, i.e. Q → −∞) stays finite; with the default floor its probability is ≤ e^{-30}
    relative to a Q of 0. ``alpha = np.inf`` maximizes the MLE term alone. ``q0`` defaults to 0.
    The objective is not concave in Q in general (r² composes with logsumexp), so the result is a
    stationary point; ``grad_norm`` is its projected-gradient certificate.
    Raises ValueError for alpha ≤ 0, gamma outside [0, 1], empty or malformed data.
    References: Wulfmeier et al. (2024), §3; Garg et al. (2021), Eq. (10).
    """
    d = visit_weights(tree, data)
    a = _check_alpha(alpha)
    g = check_gamma(gamma, allow_one=True)
    n, V = tree.num_prefixes, tree.vocab_size
    x0 = np.zeros(n * V) if q0 is None else _check_q(tree, q0).ravel().copy()
    child, parent, ptok = tree_links(tree)
    c = 0.0 if np.isinf(a) else 1.0 / (4.0 * a)
    scale = max(float(d.sum()), 1e-300)

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        q = x.reshape(n, V)
        _, _, mle, td, g_mle, g_td = _terms(q, d, child, parent, ptok, g)
        return -(mle - c * td) / scale, -(g_mle - c * g_td).ravel() / scale

    lo = float(q_floor)
    if not (np.isfinite(lo) and lo < 0):
        raise ValueError(f"q_floor must be a finite negative number, got {q_floor!r}")
    res = minimize(f, np.clip(x0, lo, -lo), jac=True, method="L-BFGS-B", bounds=[(lo, -lo)] * (n * V),
                   options={"maxiter": max_iter, "gtol": gtol, "ftol": 1e-15, "maxcor": 30})
    q = res.x.reshape(n, V)
    pi, r, mle, td, g_mle, g_td = _terms(q, d, child, parent, ptok, g)
    grad = (g_mle - c * g_td).ravel()
    # projected gradient: components pushing against an active bound do not count
    at_lo, at_hi = res.x <= lo + 1e-9, res.x >= -lo - 1e-9
    grad = np.where((at_lo & (grad < 0)) | (at_hi & (grad > 0)), 0.0, grad)
    return IQLearnResult(q=q, pi=pi, reward=r, objective=mle - c * td, mle_term=mle, td_term=td, alpha=a, gamma=g,
                         iterations=int(res.nit), grad_norm=float(np.max(np.abs(grad))), converged=bool(res.success))


def entropy_regularized_policy(tree: TokenTree, token_reward: np.ndarray) -> np.ndarray:
    """The entropy-regularized optimum π = argmax_π E_π[Σ_h r(x_h, v_h) + Σ_h H(π(·|x_h))] on the tree, by the core's
    soft VI (an independent route to the optimum that :func:`implied_reward` inverts).

    E[Σ r + H(π)] = E[Σ (r + log V) − KL(π ‖ uniform)] per token, so it is the KL-to-uniform soft backward induction
    (β = 1) of ``tree.to_mdp`` with the token reward shifted by log V (responses differ in length, so the shift
    matters). Shapes: token_reward[x, v] -> π[x, v].
    References: Ziebart (2010), PhD thesis, §6 (maximum causal entropy); Wulfmeier et al. (2024), arXiv 2409.01369,
    Sec. 3 (the soft Bellman relation IQ-Learn inverts).
    """
    from rlref.solve import soft_value_iteration

    mdp = tree.to_mdp(np.zeros(tree.num_sequences), token_reward=np.asarray(token_reward) + np.log(tree.vocab_size))
    return tree.restrict_policy(soft_value_iteration(mdp, 1.0).policy)
