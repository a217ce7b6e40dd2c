"""GenARM: reward-guided decoding with an autoregressive reward model, exactly on token trees.

Xu, Sehwag, Koppel, Zhu, An, Huang, Ganesh (2025), "GenARM: Reward Guided Generation with
Autoregressive Reward Model for Test-time Alignment" (ICLR 2025, arXiv:2410.08193).

The method, on a :class:`rlref.tokentree.TokenTree`:

1. **Autoregressive reward model (ARM).** A reward is parametrized as a log-probability,
   ``r(y) = Σ_t log π_r(y_t | y_<t)``, and π_r is fitted to preference pairs with the
   Bradley–Terry likelihood ``P(y ≻ y') = σ(β_r (r(y) − r(y')))``.
2. **Guided decoding.** Tokens are drawn from
   ``π_decode(v | x) ∝ π_base(v | x) · π_r(v | x)^{1/β}`` (normalized at every step).

The paper's expressivity result says the ARM class loses nothing: every trajectory-level reward
is equivalent (up to a prompt-only constant) to an ARM reward, and for every trajectory-level
reward r there is an ARM whose guided decoding reproduces the KL-regularized optimum
``π*(y) ∝ π_base(y) exp(r(y)/β)`` exactly. Both statements are checked here exactly; the
constructions below are derived here from the chain rule (the paper's proofs were not
available to us verbatim):

* expressivity — π_r = the per-prefix factorization of softmax(r): Σ_t log π_r = r − log Σ e^r;
* exact guidance — π_r(v|x) ∝ (π*(v|x) / π_base(v|x))^β, where π*(v|x) is the factorization of
  the trajectory optimum; then π_base·π_r^{1/β} ∝ π*(·|x) at every prefix.

What is *not* exact (measured by :func:`decoding_gap`, reported in ``genarm-tree``): guided
decoding with the ARM that a Bradley–Terry fit returns (the softmax factorization of r) is the
trajectory optimum only when the per-step normalizers do not depend on the prefix — e.g. on
depth-1 trees (bandits). On deeper trees the two distributions differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_expit, log_softmax

from rlref import divergences
from rlref._checks import as_float_array, check_beta, check_finite, check_positive
from rlref.solve import soft_greedy
from rlref.tokentree import TokenTree

__all__ = [
    "ARMFit",
    "GapReport",
    "arm_reward",
    "guided_decoding",
    "trajectory_optimum",
    "arm_from_reward",
    "exact_guidance_arm",
    "fit_arm_bradley_terry",
    "decoding_gap",
]


def _log(pi: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(pi)


def arm_reward(tree: TokenTree, pi_r: np.ndarray) -> np.ndarray:
    """The ARM reward of every complete response: ``r(y) = Σ_t log π_r(y_t | y_<t)``.

    Shapes: pi_r[x, v] over open prefixes -> r[y]. References: GenARM, eq. (4).
    """
    return tree.sequence_logprobs(pi_r)


def guided_decoding(tree: TokenTree, pi_base: np.ndarray, pi_r: np.ndarray, beta: float) -> np.ndarray:
    """GenARM's next-token distribution ``π(v|x) ∝ π_base(v|x) · π_r(v|x)^{1/β}`` (log space).

    Shapes: pi_base[x, v], pi_r[x, v] -> pi[x, v]. Raises ValueError if beta <= 0.
    References: GenARM, eq. (6).
    """
    beta = check_beta("beta", beta)
    pi_base = tree.validate_policy(pi_base, "pi_base")
    pi_r = tree.validate_policy(pi_r, "pi_r")
    logits = _log(pi_base) + _log(pi_r) / beta
    if np.any(np.all(np.isneginf(logits), axis=1)):
        x = int(np.flatnonzero(np.all(np.isneginf(logits), axis=1))[0])
        raise ValueError(f"pi_base and pi_r have disjoint supports at prefix {tree.prefixes[x]!r}")
    return np.exp(log_softmax(logits, axis=1))


def trajectory_optimum(tree: TokenTree, pi_base: np.ndarray, reward: np.ndarray, beta: float) -> np.ndarray:
    """The KL-regularized optimum over complete responses, ``π*(y) = π_base(y) e^{r(y)/β} / Z``.

    It maximizes E_π[r] − β·KL(π ‖ π_base) over distributions on responses; the tilt is
    :func:`rlref.solve.soft_greedy` of the sequence-level base law. Shapes: -> p[y].
    References: Korbak et al. (2022), eq. (2); GenARM, eq. (2).
    """
    beta = check_beta("beta", beta)
    r = as_float_array("reward", reward, ndim=1)
    if r.shape != (tree.num_sequences,):
        raise ValueError(f"reward must have shape ({tree.num_sequences},), got {r.shape}")
    check_finite("reward", r)
    return soft_greedy(r, tree.sequence_distribution(pi_base), beta)


def arm_from_reward(tree: TokenTree, reward: np.ndarray) -> np.ndarray:
    """An ARM representing ``reward``: π_r = the factorization of softmax(r) over responses.

    Then Σ_t log π_r(y_t|y_<t) = r(y) − log Σ_{y'} e^{r(y')}: the same reward up to a constant,
    hence the same Bradley–Terry preferences and the same KL-regularized optimum.
    Shapes: reward[y] over complete responses -> pi_r[x, v] over open prefixes.
    References: GenARM, Theorem 1 (expressivity); the construction is derived here.
    """
    r = as_float_array("reward", reward, ndim=1)
    check_finite("reward", r)
    return tree.policy_from_sequence_logits(r)


def exact_guidance_arm(tree: TokenTree, pi_base: np.ndarray, reward: np.ndarray, beta: float) -> np.ndarray:
    """The ARM whose guided decoding equals the trajectory optimum exactly.

    π_r(v|x) ∝ (π*(v|x) / π_base(v|x))^β with π*(·|x) the factorization of
    :func:`trajectory_optimum`; tokens outside the support of π_base get π_r = 0.
    Shapes: pi_base[x, v], reward[y] -> pi_r[x, v]. Raises ValueError if beta <= 0.
    References: GenARM, Theorem 2 (any KL-regularized optimum is reachable by guided decoding);
    the construction is derived here.
    """
    beta = check_beta("beta", beta)
    pi_base = tree.validate_policy(pi_base, "pi_base")
    p_star = trajectory_optimum(tree, pi_base, reward, beta)
    pi_star = tree.policy_from_sequence_distribution(p_star)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where(pi_base > 0, _log(pi_star) - _log(pi_base), -np.inf)
    return np.exp(log_softmax(beta * log_ratio, axis=1))


@dataclass(frozen=True)
class ARMFit:
    """A Bradley–Terry fit of an autoregressive reward model.

    Attributes:
      pi_r: fitted ARM ``pi_r[x, v]``.
      reward: its reward ``r(y) = Σ_t log π_r(y_t|y_<t)``.
      loss: final negative log-likelihood (per unit pair weight).
      grad_norm: max-norm of the gradient at the solution (the certificate).
      iterations, converged, message: from the optimizer.
      parametrization: ``"tabular"`` (one logit row per prefix) or ``"position"`` (one row per depth).

    References: GenARM, eq. (5) (see :func:`fit_arm_bradley_terry`).
    """

    pi_r: np.ndarray
    reward: np.ndarray
    loss: float
    grad_norm: float
    iterations: int
    converged: bool
    message: str
    parametrization: str


def fit_arm_bradley_terry(
    tree: TokenTree,
    wins: np.ndarray,
    *,
    beta_r: float = 1.0,
    parametrization: str = "tabular",
    l2: float = 1e-8,
    max_iter: int = 5000,
    tol: float = 1e-10,
) -> ARMFit:
    """Fit π_r by maximum likelihood under Bradley–Terry: min −Σ w(y≻y') log σ(β_r (r(y) − r(y'))).

    Args:
      tree: the token tree.
      wins: ``wins[y, y']`` ≥ 0, the weight (count or probability) of the comparison "y beats
        y'". A population fit uses ``wins = pair_prob * P`` with ``P`` a preference matrix.
      beta_r: the BT temperature of the reward model.
      parametrization: ``"tabular"`` — free logits per prefix (every reward is representable);
        ``"position"`` — logits depend only on (depth, token), so only rewards of the form
        Σ_t w_t(y_t) are representable.
      l2: a tiny ridge on the logits that pins down the directions the likelihood leaves free.

    Gradient (exact, derived here): with g_y = ∂L/∂r(y) and G[x, v] = Σ_{y ∋ (x, v)} g_y, the
    gradient w.r.t. the logits of prefix x is G[x, :] − π_r(·|x) Σ_v G[x, v].
    Shapes: wins[y, y'] -> ARMFit with pi_r[x, v] and reward[y].
    References: GenARM, eq. (5) (the ARM training loss).
    """
    beta_r = check_positive("beta_r", beta_r)
    W = as_float_array("wins", wins, ndim=2)
    n_y = tree.num_sequences
    if W.shape != (n_y, n_y):
        raise ValueError(f"wins must have shape ({n_y}, {n_y}), got {W.shape}")
    check_finite("wins", W)
    if np.any(W < 0):
        raise ValueError("wins must be non-negative")
    total = W.sum()
    if total <= 0:
        raise ValueError("wins has no comparisons (all zero)")
    W = W / total
    if parametrization not in ("tabular", "position"):
        raise ValueError(f"parametrization must be 'tabular' or 'position', got {parametrization!r}")
    n_x, V, L = tree.num_prefixes, tree.vocab_size, tree.max_len
    depths = tree.depths
    steps = tree.steps
    mask = steps[:, :, 0] >= 0
    px, pv = np.maximum(steps[:, :, 0], 0), np.maximum(steps[:, :, 1], 0)
    rows = n_x if parametrization == "tabular" else L

    def table(theta: np.ndarray) -> np.ndarray:
        lsm = log_softmax(theta.reshape(rows, V), axis=1)
        return lsm if parametrization == "tabular" else lsm[depths]

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_pi = table(theta)
        r = np.where(mask, log_pi[px, pv], 0.0).sum(axis=1)
        d = beta_r * (r[:, None] - r[None, :])
        loss = -(W * log_expit(d)).sum()
        s = np.exp(log_expit(-d))  # σ(−d)
        g = -beta_r * ((W * s).sum(axis=1) - (W * s).sum(axis=0))  # ∂L/∂r
        G = np.zeros((n_x, V))
        np.add.at(G, (px[mask], pv[mask]), np.broadcast_to(g[:, None], mask.shape)[mask])
        grad_rows = G - np.exp(log_pi) * G.sum(axis=1, keepdims=True)
        if parametrization == "position":
            grad = np.zeros((L, V))
            np.add.at(grad, depths, grad_rows)
        else:
            grad = grad_rows
        loss += 0.5 * l2 * float(theta @ theta)
        return float(loss), grad.ravel() + l2 * theta

    theta0 = np.zeros(rows * V)
    res = minimize(fun, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-15})
    _, grad = fun(res.x)
    log_pi = table(res.x)
    pi_r = np.exp(log_pi)
    if not np.all(np.isfinite(pi_r)):
        raise RuntimeError(f"ARM fit diverged: {res.message}")
    return ARMFit(
        pi_r=pi_r,
        reward=tree.sequence_logprobs_from_log(log_pi),
        loss=float(res.fun),
        grad_norm=float(np.abs(grad).max()),
        iterations=int(res.nit),
        converged=bool(res.success) or float(np.abs(grad).max()) < 1e-6,
        message=str(res.message),
        parametrization=parametrization,
    )


@dataclass(frozen=True)
class GapReport:
    """Distance between a decoded response distribution and the trajectory optimum.

    ``tv`` = ½ Σ_y |p(y) − p*(y)|; ``kl`` = KL(p* ‖ p) (inf if p misses mass of p*);
    ``reward_gap`` = E_{p*}[r] − E_p[r] for the reference reward r.

    References: derived here (see :func:`decoding_gap`).
    """

    tv: float
    kl: float
    reward_gap: float


def decoding_gap(tree: TokenTree, pi_decode: np.ndarray, p_star: np.ndarray, reward: np.ndarray) -> GapReport:
    """Compare the response distribution of the per-step policy ``pi_decode`` with ``p_star``.

    With p(y) = Π_t π_decode(y_t|y_<t): TV = ½ Σ_y |p(y) − p*(y)|, KL(p* ‖ p) and
    E_{p*}[r] − E_p[r]. Shapes: pi_decode[x, v], p_star[y], reward[y] -> GapReport. Raises
    ValueError if p_star or reward is not of shape (num_sequences,).
    References: derived here (the gap that GenARM, §4, leaves to experiments).
    """
    p = tree.sequence_distribution(pi_decode)
    p_star = as_float_array("p_star", p_star, ndim=1)
    r = as_float_array("reward", reward, ndim=1)
    for name, arr in (("p_star", p_star), ("reward", r)):
        if arr.shape != p.shape:
            raise ValueError(f"{name} must have shape {p.shape} (one entry per response), got {arr.shape}")
    tv = float(divergences.total_variation(p, p_star))
    kl = float(divergences.kl(p_star, p))
    return GapReport(tv=tv, kl=kl, reward_gap=float(p_star @ r - p @ r))
