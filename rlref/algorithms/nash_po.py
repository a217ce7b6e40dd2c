"""Preference optimization as a game: INPO, Nash-MD, SPO and iterated DPO on tabular preferences.

All algorithms act on a finite response set with a preference matrix ``P[y, y'] = P(y ≻ y')``
(see :mod:`rlref.preferences`) and return a :class:`GameTrajectory` holding every iterate,
the running averages and their exploitability (>= 0, 0 at a minimax winner).

* **INPO** (Zhang et al. 2024): online mirror descent in self-play on the KL-regularized game,
  ``π_{t+1}(y) ∝ π_t(y)^{1−ητ} π_ref(y)^{ητ} exp(η P(y ≻ π_t))``; the same iterate is the
  minimizer of the INPO loss ``E_{y,y'~π_t, (y_w,y_l)}[(h_t(π, y_w, y_l) − η/2)²]`` with
  ``h_t(π, y, y') = log π(y)/π(y') − ητ log π_ref(y)/π_ref(y') − (1−ητ) log π_t(y)/π_t(y')``.
* **Nash-MD** (Munos et al. 2023): ``π_t^μ ∝ π_t^{1−ητ} π_ref^{ητ}`` (geometric mixture), then
  ``π_{t+1} ∝ π_t^μ exp(η P(y ≻ π_t^μ))``.
* **SPO** (Swamy et al. 2024): self-play where each response is rewarded by its win proportion
  against the learner's own samples, ``r_t(y) = P(y ≻ π_t)``, fed to a no-regret learner
  (Hedge / exponential weights, or softmax policy gradient). The average iterate is an
  ε-minimax winner with ε = Regret_T / T.
* **Iterated DPO with a Bradley–Terry fit**: fit a BT reward to comparisons drawn from π_t and
  take the DPO/KL-regularized optimum ``π_ref exp(r̂/β)``; exploitable when P is intransitive.

References: Zhang et al. (2024), "Iterative Nash Policy Optimization", Sec. 4 (OMD update,
eq. for h_t and the loss, Prop. on its minimizer); Munos et al. (2023), "Nash Learning from
Human Feedback", Sec. 5–6 (Nash-MD, Thm. 1); Swamy et al. (2024), "A Minimaximalist Approach
to RLHF", Alg. 1 and Sec. 3; Cesa-Bianchi & Lugosi (2006), "Prediction, Learning, and Games",
Thm. 2.2–2.3 (Hedge regret).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from rlref import divergences
from rlref._checks import as_float_array, check_beta, check_count, check_distribution, check_positive
from rlref.preferences import (
    PreferenceData,
    fit_bradley_terry,
    full_support_distribution,
    regularized_nash,
    sample_preferences,
    validate_preference_matrix,
)
from rlref.solve import soft_greedy, soft_value

__all__ = [
    "GameTrajectory",
    "StepSize",
    "nash_md_step_size",
    "hedge_anytime_step_size",
    "hedge_regret_bound",
    "inpo_update",
    "inpo",
    "inpo_h",
    "inpo_population_loss",
    "inpo_empirical_loss",
    "inpo_minimize",
    "inpo_empirical_minimizer",
    "inpo_sampled",
    "nash_md_update",
    "nash_md",
    "spo_hedge",
    "spo_policy_gradient",
    "win_proportion_rewards",
    "iterated_dpo_bt",
]

def _log_softmax(x: np.ndarray) -> np.ndarray:
    """log softmax of a 1-D vector (fast path; scipy's version has per-call overhead)."""
    y = x - np.max(x)
    return y - np.log(np.sum(np.exp(y)))


#: A step-size schedule: a constant, or a function of the iteration index t = 0, 1, ...
StepSize = float | Callable[[int], float]


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class GameTrajectory:
    """Iterates of a self-play method on the preference game.

    Attributes:
      method: the algorithm's name.
      policies: ``[T+1, n]`` the last iterates π_0, ..., π_T.
      averages: ``[T+1, n]``; ``averages[t]`` = (1/t) Σ_{s<t} π_s (the policies played in rounds
        0..t−1), and ``averages[0] = π_0``.
      exploitability: ``[T+1]`` max_y P(y ≻ π_t) − 1/2 of the last iterates (>= 0).
      average_exploitability: ``[T+1]`` the same for the averages (for Hedge this equals
        Regret_t / t exactly).
      step_sizes: ``[T]`` the step sizes η_t used.
      tau: the KL-regularization strength (0 for unregularized methods).
      regularized_nash: π*_τ when tau > 0, else None.
      kl_to_regularized_nash: ``[T+1]`` KL(π*_τ ‖ π_t) when tau > 0, else None.
      regularized_exploitability: ``[T+1]`` regularized exploitability of π_t when tau > 0.
    """

    method: str
    policies: np.ndarray
    averages: np.ndarray
    exploitability: np.ndarray
    average_exploitability: np.ndarray
    step_sizes: np.ndarray
    tau: float = 0.0
    regularized_nash: np.ndarray | None = None
    kl_to_regularized_nash: np.ndarray | None = None
    regularized_exploitability: np.ndarray | None = None

    @property
    def last(self) -> np.ndarray:
        return self.policies[-1]

    @property
    def average(self) -> np.ndarray:
        return self.averages[-1]

    @property
    def duality_gap(self) -> np.ndarray:
        """``[T+1]`` duality gap of the pair (π_t, π_t) = 2·exploitability."""
        return 2.0 * self.exploitability

    @property
    def average_duality_gap(self) -> np.ndarray:
        return 2.0 * self.average_exploitability


def _finish(method: str, P: np.ndarray, pis: list[np.ndarray], etas: list[float], tau: float = 0.0,
            pi_ref: np.ndarray | None = None) -> GameTrajectory:
    policies = np.array(pis)
    csum = np.cumsum(policies, axis=0)
    averages = np.empty_like(policies)
    averages[0] = policies[0]
    averages[1:] = csum[:-1] / np.arange(1, len(pis))[:, None]
    expl = np.max(policies @ P.T, axis=1) - 0.5
    avg_expl = np.max(averages @ P.T, axis=1) - 0.5
    star = kl = rexpl = None
    if tau > 0:
        assert pi_ref is not None
        star = regularized_nash(P, pi_ref, tau).pi
        kl = np.asarray(divergences.kl(star, policies), dtype=np.float64)
        kl_ref = np.asarray(divergences.kl(policies, pi_ref), dtype=np.float64)
        # regularized exploitability of each iterate: τ log Σ π_ref e^{Pπ_t/τ} + τ KL(π_t ‖ π_ref) − 1/2
        rexpl = soft_value(policies @ P.T, pi_ref, tau) + tau * kl_ref - 0.5
    return GameTrajectory(
        method=method, policies=policies, averages=averages, exploitability=expl, average_exploitability=avg_expl,
        step_sizes=np.array(etas, dtype=float), tau=float(tau), regularized_nash=star, kl_to_regularized_nash=kl,
        regularized_exploitability=rexpl,
    )


def _eta(eta: StepSize, t: int) -> float:
    value = eta(t) if callable(eta) else eta
    return check_positive(f"eta (at t={t})", value)


def _setup(P: np.ndarray, pi_ref: np.ndarray | None, pi0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    P = validate_preference_matrix(P)
    n = P.shape[0]
    ref = np.full(n, 1.0 / n) if pi_ref is None else full_support_distribution("pi_ref", pi_ref, n)
    p0 = ref.copy() if pi0 is None else full_support_distribution("pi0", pi0, n)
    return P, ref, p0


def _check_iters(num_iters: int) -> int:
    return check_count("num_iters", num_iters)


# ----------------------------------------------------------------------------- step sizes
def nash_md_step_size(tau: float) -> Callable[[int], float]:
    """``η_t = 2 / (τ (t + 2))`` (t = 0, 1, ...), so η_0 τ = 1 and η_t τ <= 1.

    With the one-step inequality KL(π*‖π_{t+1}) <= (1 − η_t τ) KL(π*‖π_t) + 2η_t², induction
    gives KL(π*_τ ‖ π_t) <= 8 / (τ² (t + 1)) for t >= 1.

    References: Munos et al. (2023), Thm. 1 (the schedule and the O(1/T) rate); the induction
    is derived here. Used for INPO as well (Zhang et al. 2024 also prove an O(1/T) last-iterate
    rate in KL for a decreasing schedule).
    """
    t_ = check_positive("tau", tau)
    return lambda t: 2.0 / (t_ * (t + 2.0))


def hedge_anytime_step_size(n: int) -> Callable[[int], float]:
    """Anytime Hedge step ``η_t = sqrt(8 ln n / (t + 1))`` for rewards in [0, 1].

    References: Cesa-Bianchi & Lugosi (2006), Thm. 2.3.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2 for Hedge, got {n}")
    return lambda t: float(np.sqrt(8.0 * np.log(n) / (t + 1.0)))


def hedge_regret_bound(T: int | np.ndarray, n: int, anytime: bool = True) -> float | np.ndarray:
    """Regret bound of Hedge on rewards in [0, 1] after T rounds with n actions.

    anytime (η_t = sqrt(8 ln n / t)): ``2 sqrt(T ln n / 2) + sqrt(ln n / 8)`` (Thm. 2.3);
    fixed horizon (η = sqrt(8 ln n / T)): ``sqrt(T ln n / 2)`` (Thm. 2.2).
    For SPO self-play, exploitability(average of π_0..π_{T−1}) = Regret_T / T (derived here:
    Σ_t P(π_t ≻ π_t) = T/2 and y ↦ P(y ≻ ·) is linear).

    References: Cesa-Bianchi & Lugosi (2006), Thm. 2.2 and 2.3; Swamy et al. (2024), Thm. 3.
    """
    ln = np.log(n)
    T_arr = np.asarray(T, dtype=float)
    out = 2 * np.sqrt(T_arr * ln / 2) + np.sqrt(ln / 8) if anytime else np.sqrt(T_arr * ln / 2)
    return float(out) if out.ndim == 0 else out


# ----------------------------------------------------------------------------- INPO
def inpo_update(P: np.ndarray, pi: np.ndarray, pi_ref: np.ndarray, tau: float, eta: float) -> np.ndarray:
    """One INPO / online-mirror-descent step in closed form (log space).

    π_{t+1}(y) ∝ π_t(y)^{1−ητ} · π_ref(y)^{ητ} · exp(η P(y ≻ π_t)).

    Shapes: P[n, n], pi[n], pi_ref[n] -> [n]. Requires full-support π_t and π_ref, τ >= 0, η > 0
    (ValueError naming the argument otherwise).

    References: Zhang et al. (2024), "Iterative Nash Policy Optimization", Sec. 4 (OMD update
    of the KL-regularized game).
    """
    P, pi, pi_ref, tau, eta = _check_step(P, pi, pi_ref, tau, eta)
    return _inpo_step(P, pi, pi_ref, tau, eta)


def _inpo_step(P: np.ndarray, pi: np.ndarray, pi_ref: np.ndarray, tau: float, eta: float) -> np.ndarray:
    log_pi = np.log(pi)
    return np.exp(_log_softmax((1 - eta * tau) * log_pi + eta * tau * np.log(pi_ref) + eta * (P @ pi)))


def _check_step(P: object, pi: object, pi_ref: object, tau: float, eta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Validate the inputs of one closed-form step: P a preference matrix, π and π_ref full-support."""
    P = validate_preference_matrix(P)  # type: ignore[arg-type]
    n = P.shape[0]
    p, ref = (full_support_distribution(name, x, n) for name, x in (("pi", pi), ("pi_ref", pi_ref)))
    t = float(tau)
    if not (np.isfinite(t) and t >= 0):
        raise ValueError(f"tau must be >= 0 and finite, got {tau!r}")
    return P, p, ref, t, check_positive("eta", eta)


def _run_regularized_md(name: str, step, P: np.ndarray, pi_ref: np.ndarray | None, tau: float, num_iters: int,
                        eta: StepSize | None, pi0: np.ndarray | None) -> GameTrajectory:
    """Iterate ``pi <- step(P, pi, pi_ref, tau, eta_t)`` (INPO or Nash-MD) and record the trajectory."""
    t_ = check_positive("tau", tau)
    P, ref, pi = _setup(P, pi_ref, pi0)
    T = _check_iters(num_iters)
    sched = nash_md_step_size(t_) if eta is None else eta
    pis, etas = [pi], []
    for t in range(T):
        e = _eta(sched, t)
        pi = step(P, pi, ref, t_, e)
        pis.append(pi)
        etas.append(e)
    return _finish(name, P, pis, etas, t_, ref)


def inpo(P: np.ndarray, pi_ref: np.ndarray | None, tau: float, num_iters: int, eta: StepSize | None = None,
         pi0: np.ndarray | None = None) -> GameTrajectory:
    """Run INPO's exact (population) OMD iteration for ``num_iters`` steps from π_0 (default π_ref).

    ``eta`` defaults to :func:`nash_md_step_size` (η_t = 2/(τ(t+2))). Returns the trajectory with
    KL(π*_τ ‖ π_t) and the (unregularized and regularized) exploitabilities.

    References: Zhang et al. (2024), Alg. 1 and Sec. 4.
    """
    return _run_regularized_md("INPO", _inpo_step, P, pi_ref, tau, num_iters, eta, pi0)


def inpo_h(theta: np.ndarray, pi_t: np.ndarray, pi_ref: np.ndarray, tau: float, eta: float) -> np.ndarray:
    """``f(y) = log π_θ(y) − ητ log π_ref(y) − (1−ητ) log π_t(y)``, so h_t(π_θ, y, y') = f(y) − f(y').

    Shapes: theta[n] (logits of π_θ = softmax θ) -> f[n].

    References: Zhang et al. (2024), Sec. 4 (definition of h_t).
    """
    return _log_softmax(theta) - eta * tau * np.log(pi_ref) - (1 - eta * tau) * np.log(pi_t)


def inpo_population_loss(theta: np.ndarray, P: np.ndarray, pi_t: np.ndarray, pi_ref: np.ndarray, tau: float,
                         eta: float) -> tuple[float, np.ndarray]:
    """Population INPO loss and its exact gradient in the logits θ.

    L_t(θ) = Σ_{y,y'} π_t(y) π_t(y') P[y, y'] (h_t(π_θ, y, y') − η/2)²,
    (y, y' ~ π_t independently; y is the winner with probability P[y, y']).
    Its minimizers are exactly the OMD iterate on supp(π_t) (derived here: with f as in
    :func:`inpo_h`, L = 2 Var_{π_t}(f) − 4η Cov_{π_t}(f, P(·≻π_t)) + const).

    Shapes: theta[n] -> (loss, grad[n]).

    References: Zhang et al. (2024), Sec. 4 (INPO loss, Prop. "minimizer = OMD update").
    """
    f = inpo_h(theta, pi_t, pi_ref, tau, eta)
    H = f[:, None] - f[None, :] - eta / 2
    W = np.outer(pi_t, pi_t) * P
    loss = float(np.sum(W * H**2))
    G = 2 * W * H
    grad = G.sum(axis=1) - G.sum(axis=0)  # d/df; h is invariant to the log-softmax normalizer
    return loss, grad


def inpo_empirical_loss(theta: np.ndarray, data: PreferenceData, pi_t: np.ndarray, pi_ref: np.ndarray, tau: float,
                        eta: float) -> tuple[float, np.ndarray]:
    """Empirical INPO loss ``(1/N) Σ_i (h_t(π_θ, y_w^i, y_l^i) − η/2)²`` on sampled comparisons, with gradient.

    References: Zhang et al. (2024), Alg. 1 (the loss minimized on the preference dataset).
    """
    f = inpo_h(theta, pi_t, pi_ref, tau, eta)
    w, lo = data.winners, data.losers
    if w.size == 0:
        raise ValueError("data must contain at least one comparison")
    r = f[w] - f[lo] - eta / 2
    loss = float(np.mean(r**2))
    grad = np.zeros_like(f)
    np.add.at(grad, w, 2 * r / w.size)
    np.add.at(grad, lo, -2 * r / w.size)
    return loss, grad


def inpo_minimize(P: np.ndarray | None, pi_t: np.ndarray, pi_ref: np.ndarray, tau: float, eta: float,
                  data: PreferenceData | None = None) -> np.ndarray:
    """Minimize the INPO loss over a tabular softmax policy with L-BFGS; returns π_θ*.

    Uses the population loss (given ``P``) or the empirical loss on ``data``. On the population
    loss the result equals :func:`inpo_update` (the closed-form OMD iterate).
    """
    theta0 = np.log(pi_t)
    if data is None:
        if P is None:
            raise ValueError("give P (population loss) or data (empirical loss)")
        P = validate_preference_matrix(P)

        def fun(th: np.ndarray) -> tuple[float, np.ndarray]:
            return inpo_population_loss(th, P, pi_t, pi_ref, tau, eta)
    else:
        def fun(th: np.ndarray) -> tuple[float, np.ndarray]:
            return inpo_empirical_loss(th, data, pi_t, pi_ref, tau, eta)

    res = minimize(fun, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 10_000, "gtol": 1e-13, "ftol": 1e-16})
    return np.exp(_log_softmax(res.x))


def inpo_empirical_minimizer(data: PreferenceData, pi_t: np.ndarray, pi_ref: np.ndarray, tau: float, eta: float) -> np.ndarray:
    """Closed-form minimizer of the empirical INPO loss (a graph-Laplacian least-squares problem).

    The loss (1/N) Σ_i (f(y_w^i) − f(y_l^i) − η/2)² is quadratic in f = log π_θ − ητ log π_ref −
    (1−ητ) log π_t; its normal equations are L f = (η/2) b with L the Laplacian of the comparison
    multigraph and b(y) = #wins(y) − #losses(y). The minimum-norm solution (pseudo-inverse) is
    returned as π ∝ exp(f + ητ log π_ref + (1−ητ) log π_t); on a connected comparison graph the
    minimizer is unique (derived here).
    """
    w, lo = data.winners, data.losers
    if w.size == 0:
        raise ValueError("data must contain at least one comparison")
    n = pi_t.shape[0]
    L = np.zeros((n, n))
    np.add.at(L, (w, w), 1.0)
    np.add.at(L, (lo, lo), 1.0)
    np.add.at(L, (w, lo), -1.0)
    np.add.at(L, (lo, w), -1.0)
    b = np.zeros(n)
    np.add.at(b, w, eta / 2)
    np.add.at(b, lo, -eta / 2)
    f = np.linalg.lstsq(L, b, rcond=None)[0]
    return np.exp(_log_softmax(f + eta * tau * np.log(pi_ref) + (1 - eta * tau) * np.log(pi_t)))


def inpo_sampled(P: np.ndarray, pi_ref: np.ndarray | None, tau: float, num_iters: int, num_pairs: int,
                 rng: np.random.Generator, eta: StepSize | None = None, pi0: np.ndarray | None = None) -> GameTrajectory:
    """INPO as run in practice: each round draw ``num_pairs`` comparisons (y, y' ~ π_t, label ~ P)
    and set π_{t+1} = argmin of the empirical INPO loss (:func:`inpo_empirical_minimizer`).

    References: Zhang et al. (2024), Alg. 1.
    """
    t_ = check_positive("tau", tau)
    P, ref, pi = _setup(P, pi_ref, pi0)
    T = _check_iters(num_iters)
    check_count("num_pairs", num_pairs)
    sched = nash_md_step_size(t_) if eta is None else eta
    pis, etas = [pi], []
    for t in range(T):
        e = _eta(sched, t)
        data = sample_preferences(P, int(num_pairs), rng, policy=pi)
        pi = inpo_empirical_minimizer(data, pi, ref, t_, e)
        pi = np.clip(pi, 1e-300, None)
        pi = pi / pi.sum()
        pis.append(pi)
        etas.append(e)
    return _finish("INPO (sampled)", P, pis, etas, t_, ref)


# ----------------------------------------------------------------------------- Nash-MD
def nash_md_update(P: np.ndarray, pi: np.ndarray, pi_ref: np.ndarray, tau: float, eta: float) -> np.ndarray:
    """One Nash-MD step: ``π^μ ∝ π^{1−ητ} π_ref^{ητ}``, then ``π_{t+1} ∝ π^μ exp(η P(y ≻ π^μ))``.

    Shapes: P[n, n], pi[n], pi_ref[n] -> [n]. Requires full-support π and π_ref, τ >= 0, η > 0
    (ValueError naming the argument otherwise).

    References: Munos et al. (2023), "Nash Learning from Human Feedback", Sec. 6 (Nash-MD,
    eq. for the regularized policy π_t^μ and the update).
    """
    P, pi, pi_ref, tau, eta = _check_step(P, pi, pi_ref, tau, eta)
    return _nash_md_step(P, pi, pi_ref, tau, eta)


def _nash_md_step(P: np.ndarray, pi: np.ndarray, pi_ref: np.ndarray, tau: float, eta: float) -> np.ndarray:
    log_mu = _log_softmax((1 - eta * tau) * np.log(pi) + eta * tau * np.log(pi_ref))
    mu = np.exp(log_mu)
    return np.exp(_log_softmax(log_mu + eta * (P @ mu)))


def nash_md(P: np.ndarray, pi_ref: np.ndarray | None, tau: float, num_iters: int, eta: StepSize | None = None,
            pi0: np.ndarray | None = None) -> GameTrajectory:
    """Run exact Nash-MD; ``eta`` defaults to η_t = 2/(τ(t+2)) (Munos et al. 2023, Thm. 1).

    References: Munos et al. (2023), Sec. 6 and Thm. 1: KL(π*_τ ‖ π_T) = O(1/T).
    """
    return _run_regularized_md("Nash-MD", _nash_md_step, P, pi_ref, tau, num_iters, eta, pi0)


# ----------------------------------------------------------------------------- SPO
def win_proportion_rewards(P: np.ndarray, pi: np.ndarray, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """SPO's reward: sample y_1..y_m ~ π, compare all pairs, ``r_i = (1/(m−1)) Σ_{j≠i} 1[y_i ≻ y_j]``.

    Conditionally on y_i = y, E[r_i] = P(y ≻ π) (unbiased: the y_j, j ≠ i, are independent draws
    from π and each comparison is an independent Bernoulli(P[y_i, y_j])).

    Shapes: -> (responses[m], rewards[m]).

    References: Swamy et al. (2024), Alg. 1 (win-proportion reward from a preference oracle).
    """
    P = validate_preference_matrix(P)
    if int(m) != m or m < 2:
        raise ValueError(f"m must be an integer >= 2 (at least two samples to compare), got {m!r}")
    m = int(m)
    pi = as_float_array("pi", pi, ndim=1)
    check_distribution("pi", pi)
    ys = rng.choice(P.shape[0], size=m, p=pi)
    U = rng.random((m, m))
    wins = np.triu(U < P[ys][:, ys], 1)  # one Bernoulli draw per unordered pair i < j
    beats = wins | np.tril(~wins.T, -1)  # j beat i  <=>  i did not beat j
    np.fill_diagonal(beats, False)
    return ys, beats.sum(axis=1) / (m - 1)


def spo_hedge(P: np.ndarray, num_iters: int, eta: StepSize | None = None, pi0: np.ndarray | None = None) -> GameTrajectory:
    """SPO with Hedge (exponential weights) on the exact win-proportion reward r_t(y) = P(y ≻ π_t).

    π_{t+1}(y) ∝ π_0(y) exp(η_{t+1} Σ_{s<=t} r_s(y)); ``eta`` defaults to the anytime schedule
    η_t = sqrt(8 ln n / (t+1)). The average of π_0..π_{T−1} has exploitability
    Regret_T / T <= hedge_regret_bound(T, n) / T (derived here; see :func:`hedge_regret_bound`).

    References: Swamy et al. (2024), Alg. 1 and Thm. 3 (no-regret self-play yields an
    approximate minimax winner); Freund & Schapire (1997).
    """
    P, _, pi = _setup(P, None, pi0)
    T = _check_iters(num_iters)
    n = P.shape[0]
    if n == 1:
        return _finish("SPO (Hedge)", P, [pi] * (T + 1), [1.0] * T)
    sched = hedge_anytime_step_size(n) if eta is None else eta
    log_p0 = np.log(pi)
    cum = np.zeros(n)
    pis, etas = [pi], []
    for t in range(T):
        cum += P @ pi
        e = _eta(sched, t + 1)
        pi = np.exp(_log_softmax(log_p0 + e * cum))
        pis.append(pi)
        etas.append(e)
    return _finish("SPO (Hedge)", P, pis, etas)


def spo_policy_gradient(P: np.ndarray, num_iters: int, eta: StepSize = 1.0, pi0: np.ndarray | None = None) -> GameTrajectory:
    """SPO with exact softmax policy gradient on the win-proportion reward.

    θ_{t+1} = θ_t + η_t ∇_θ Σ_y π_θ(y) r_t(y) = θ_t + η_t π_t ⊙ (r_t − π_tᵀ r_t),  r_t = P π_t.

    References: Swamy et al. (2024), Sec. 4 (SPO with a policy-gradient learner);
    Williams (1992) (softmax policy gradient).
    """
    P, _, pi = _setup(P, None, pi0)
    T = _check_iters(num_iters)
    theta = np.log(pi)
    pis, etas = [pi], []
    for t in range(T):
        r = P @ pi
        e = _eta(eta, t)
        theta = theta + e * pi * (r - pi @ r)
        pi = np.exp(_log_softmax(theta))
        pis.append(pi)
        etas.append(e)
    return _finish("SPO (softmax PG)", P, pis, etas)


# ----------------------------------------------------------------------------- iterated DPO
def iterated_dpo_bt(P: np.ndarray, pi_ref: np.ndarray | None, beta: float, num_iters: int,
                    pi0: np.ndarray | None = None, ridge: float = 1e-6) -> GameTrajectory:
    """Online iterated DPO under a Bradley–Terry assumption.

    Round t: fit r̂_t = BT MLE on pairs y, y' ~ π_t (:func:`rlref.preferences.fit_bradley_terry`,
    with a small ridge so the MLE exists when π_t is nearly deterministic), then take the
    DPO/KL-regularized optimum π_{t+1} ∝ π_ref exp(r̂_t / β). On intransitive P no reward
    represents the preferences and the iterates are exploitable.

    References: Rafailov et al. (2023), eq. (4) (DPO optimum π_ref exp(r/β)/Z); Munos et al.
    (2023), Sec. 3 (the BT-optimal policy can be beaten under intransitive preferences).
    """
    b = check_beta("beta", beta)
    P, ref, pi = _setup(P, pi_ref, pi0)
    T = _check_iters(num_iters)
    pis, etas = [pi], []
    for _ in range(T):
        r = fit_bradley_terry(P, np.outer(pi, pi), ridge=ridge)
        pi = soft_greedy(r, ref, b)
        pis.append(pi)
        etas.append(1.0 / b)
    return _finish("iterated DPO (BT fit)", P, pis, etas)
