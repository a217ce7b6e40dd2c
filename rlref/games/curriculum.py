"""QARL's bounded-rationality curriculum on a tabular Markov game, trained exactly.

QARL (Reddi et al. 2024) trains the protagonist against an adversary whose rationality is raised
during training: the adversary's entropy temperature τ₂ is annealed toward 0, so the game moves
from a nearly uniform adversary (easy saddle point, the QRE of a strongly regularized game) to a
fully rational one (the Nash equilibrium of RARL, Pinto et al. 2017). Two schedules:

* linear (:func:`linear_schedule`): τ₂(t) falls linearly from τ_start to τ_end over the iterations;
* self-paced (:func:`self_paced_schedule`): τ₂ is multiplied by ``decay`` only once the players have
  adapted to the current temperature, i.e. once the largest change of either policy in the last
  iteration (max_s ‖π_t − π_{t−1}‖₁) is below ``threshold``. The paper's self-paced variant updates
  a *distribution* over temperatures by a KL-constrained step on the protagonist's performance
  (after Klink et al. 2020); that update could not be retrieved exactly, and this deterministic
  progress-triggered rule is derived here.

Learning dynamics (the inner optimizer; derived here for the tabular case): both players run
independent entropy-regularized natural policy gradient, exactly evaluated,

    x_{t+1}(·|s) ∝ x_t(·|s)^{1−ητ₁} exp(η Q_t^{row}(s, ·)),   y_{t+1}(·|s) ∝ y_t(·|s)^{1−ητ₂(t)} exp(−η Q_t^{col}(s, ·)),

with Q^{row}(s, a) = Σ_b y(b|s) Q(s, a, b), Q^{col}(s, b) = Σ_a x(a|s) Q(s, a, b) and Q the exact
regularized Q of the pair (:func:`rlref.games.evaluate_pair`); each step is the tilt
``rlref.solve.soft_greedy`` with reference ∝ π_t^{1−ητ} and β = 1/η. For τ₁, τ₂ > 0 this converges
linearly to the QRE (Cen, Wei & Chi 2021, Thm 1, for matrix games); with τ₂ = 0 (RARL) it need not.

References: Reddi, Tölle, Peters, Chalvatzaki, D'Eramo (2024), QARL, ICLR, arXiv 2311.01642, Sec. 4–5;
Pinto, Davidson, Sukthankar, Gupta (2017), "Robust Adversarial Reinforcement Learning", ICML;
Cen, Wei & Chi (2021), "Fast policy extragradient methods for competitive games with entropy
regularization", NeurIPS; Klink et al. (2020), "Self-paced deep reinforcement learning".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rlref._checks import as_float_array, check_at_least, check_beta, check_count, check_positive
from rlref.games.markov import MarkovGame, evaluate_pair, worst_case_value
from rlref.solve import soft_greedy

__all__ = ["linear_schedule", "self_paced_schedule", "CurriculumRun", "train_curriculum"]


def linear_schedule(tau_start: float, tau_end: float, num_iters: int, warmup: int = 0) -> np.ndarray:
    """Adversary temperatures τ₂(t), t = 0..num_iters−1: τ_start for ``warmup`` iterations, then linear to τ_end.

    τ_end = 0 is allowed (a fully rational adversary at the end). Raises ValueError for τ_start <= 0,
    τ_end < 0 or > τ_start, or bad counts.
    """
    t0 = check_positive("tau_start", tau_start)
    t1 = check_at_least("tau_end", tau_end, 0.0)
    if t1 > t0:
        raise ValueError(f"tau_end must be <= tau_start (the curriculum raises rationality), got tau_end={tau_end!r} > tau_start={tau_start!r}")
    n = check_count("num_iters", num_iters)
    w = check_count("warmup", warmup, minimum=0)
    ramp = max(n - w, 1)
    t = np.arange(n)
    frac = np.clip((t - w) / max(ramp - 1, 1), 0.0, 1.0)
    return t0 + (t1 - t0) * frac


@dataclass(frozen=True)
class SelfPaced:
    """The self-paced rule's parameters (see the module docstring)."""

    tau_start: float
    tau_end: float
    decay: float
    threshold: float


def self_paced_schedule(tau_start: float, tau_end: float = 0.0, decay: float = 0.7, threshold: float = 1e-2) -> SelfPaced:
    """Self-paced curriculum: τ₂ ← decay·τ₂ whenever max_s ‖π_t − π_{t−1}‖₁ < threshold for both players,
    and τ₂ ← τ_end once it falls below 1e-3·τ_start. Derived here (module docstring)."""
    t0 = check_positive("tau_start", tau_start)
    t1 = check_at_least("tau_end", tau_end, 0.0)
    if t1 > t0:
        raise ValueError(f"tau_end must be <= tau_start, got tau_end={tau_end!r} > tau_start={tau_start!r}")
    d = check_positive("decay", decay)
    if d >= 1.0:
        raise ValueError(f"decay must lie in (0, 1), got {decay!r}")
    return SelfPaced(tau_start=t0, tau_end=t1, decay=d, threshold=check_positive("threshold", threshold))


@dataclass(frozen=True)
class CurriculumRun:
    """One training run: final strategies x[s, A], y[s, B]; per iteration the adversary temperature
    ``taus[t]``, the protagonist's exact worst-case return ``worst_case[t]`` = μ0ᵀ min_π̄ V^{x_t, π̄},
    and its return against the current adversary ``nominal[t]`` = μ0ᵀ V^{x_t, y_t} (unregularized)."""

    x: np.ndarray
    y: np.ndarray
    taus: np.ndarray
    worst_case: np.ndarray
    nominal: np.ndarray


def _npg_step(pi: np.ndarray, q: np.ndarray, tau: float, eta: float) -> np.ndarray:
    """π' ∝ π^{1−ητ} e^{η q} (the tilt with reference ∝ π^{1−ητ}, β = 1/η)."""
    with np.errstate(divide="ignore"):
        logp = (1.0 - eta * tau) * np.log(pi)
    ref = np.exp(logp - logp.max(axis=-1, keepdims=True))
    ref /= ref.sum(axis=-1, keepdims=True)
    return soft_greedy(q, ref, 1.0 / eta)


def train_curriculum(game: MarkovGame, tau_row: float, adversary: np.ndarray | SelfPaced | float, num_iters: int, eta: float,
                     x0: np.ndarray | None = None, y0: np.ndarray | None = None, record_every: int = 1,
                     callback: Callable[[int], None] | None = None) -> CurriculumRun:
    """Independent entropy-regularized NPG for both players (module docstring) for ``num_iters`` iterations.

    ``adversary``: a float (fixed temperature τ₂ ≥ 0; 0 is RARL's fully rational adversary), an array
    of per-iteration temperatures (:func:`linear_schedule`), or a :class:`SelfPaced` rule.
    Requires η·τ ≤ 1 for every temperature used. The worst-case return is computed exactly every
    ``record_every`` iterations (NaN elsewhere). Raises ValueError on bad temperatures / step size.
    """
    S, A, B = game.r.shape
    t1 = check_beta("tau_row", tau_row, allow_zero=True)
    n = check_count("num_iters", num_iters)
    eta_ = check_positive("eta", eta)
    every = check_count("record_every", record_every)
    if isinstance(adversary, SelfPaced):
        schedule = None
        tau2 = adversary.tau_start
    elif np.ndim(adversary) == 0:
        tau2 = check_beta("adversary", float(adversary), allow_zero=True)
        schedule = np.full(n, tau2)
    else:
        schedule = as_float_array("adversary", adversary, ndim=1)
        if schedule.shape != (n,) or np.any(~np.isfinite(schedule)) or np.any(schedule < 0):
            raise ValueError(f"adversary schedule must be {n} finite temperatures >= 0, got shape {schedule.shape}")
    top = max(t1, float(schedule.max()) if schedule is not None else adversary.tau_start)
    if eta_ * top > 1.0:
        raise ValueError(f"eta * tau must be <= 1 for every temperature, got eta={eta!r} with tau={top!r}")
    x = np.full((S, A), 1.0 / A) if x0 is None else as_float_array("x0", x0)
    y = np.full((S, B), 1.0 / B) if y0 is None else as_float_array("y0", y0)
    mu0 = game.mdp.mu0
    taus, worst, nominal = np.zeros(n), np.full(n, np.nan), np.full(n, np.nan)
    for t in range(n):
        if schedule is not None:
            tau2 = float(schedule[t])
        taus[t] = tau2
        _, Q = evaluate_pair(game, x, y, t1, tau2)
        if t % every == 0 or t == n - 1:
            worst[t] = float(mu0 @ worst_case_value(game, x))
            nominal[t] = float(mu0 @ evaluate_pair(game, x, y)[0])
        x_new = _npg_step(x, np.einsum("sab,sb->sa", Q, y), t1, eta_)
        y_new = _npg_step(y, -np.einsum("sab,sa->sb", Q, x), tau2, eta_)
        if isinstance(adversary, SelfPaced):
            change = max(float(np.abs(x_new - x).sum(-1).max()), float(np.abs(y_new - y).sum(-1).max()))
            if change < adversary.threshold and tau2 > adversary.tau_end:
                tau2 = adversary.decay * tau2
                if tau2 < 1e-3 * adversary.tau_start:
                    tau2 = adversary.tau_end
        x, y = x_new, y_new
        if callback is not None:
            callback(t)
    return CurriculumRun(x=x, y=y, taus=taus, worst_case=worst, nominal=nominal)
