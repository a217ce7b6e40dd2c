"""The optimal chain-of-thought length: accuracy is an inverted U in the number of reasoning steps.

Wu, Wang, Ye, Du, Jegelka, Wang (2025), "When More is Less: Understanding Chain-of-Thought
Length in LLMs" (arXiv 2502.07266), §4 "Theoretical Analysis: Why an Optimal CoT Length Exists".

The model. A task of difficulty ``T`` is solved in ``N`` reasoning steps; each step is a
sub-task of difficulty ``T/N``. A model of capability ``M`` fails a sub-task of difficulty
``T/N`` with probability

    E(N, M, T) = T / (N · M)                                   (sub-task error; 0 ≤ E < 1)

and, independently, each step is corrupted by noise with probability ``σ`` (error
accumulation along the chain; in the paper ``σ = σ(T)`` may depend on the task). The final
answer is read off correctly with probability ``α``. The accuracy of an N-step chain is

    A(N) = α · [(1 − E(N, M, T)) · (1 − σ)]^N = α · [(1 − T/(N M)) (1 − σ)]^N,   N > T/M,

and A(N) = 0 for N ≤ T/M (a step harder than the model can ever do). More steps make each step
easier (the first factor rises towards 1) but multiply more factors below one (the noise term),
so A is an inverted U in N.

The optimum (the paper's scaling law; the derivation is reproduced here). With x = T/(N M),
d/dN log A = log(1 − x) + x/(1 − x) + log(1 − σ) = 0. Put v = 1/(1 − x) > 1: v − log v =
1 − log(1 − σ), i.e. (−v)·e^{−v} = −(1 − σ)/e, whose root with v > 1 lies on the lower branch
of the Lambert W function. With Z = W_{−1}(−(1 − σ)/e) ≤ −1 (so v = −Z),

    N*(M, T) = T · Z / (M · (Z + 1)),      A(N*) = α · (−1/Z · (1 − σ))^{N*}.

N* is proportional to T/M: it grows with task difficulty and falls with model capability
("simplicity bias"); Z/(Z + 1) decreases in σ from +∞ (σ → 0: no noise, infinitely many
steps are best) to 1 (σ → 1). log A is strictly concave in N on N > T/M (derived here:
d²/dN² [N log(1 − c/N)] = −c²/(N (N − c)²) with c = T/M), so the best integer length is
⌊N*⌋ or ⌈N*⌉.

References: Wu et al. (2025), arXiv 2502.07266, §4 (the model of A(N) and the optimal length
with the Lambert W function; Theorems 4.1–4.2 in v3). The formula E = T/(N M) is the paper's
sub-task error as recalled here: the paper's full text could not be retrieved in this session,
and the closed form below was re-derived from it ("derived here").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import lambertw

from rlref._checks import as_generator, check_count, check_positive, check_probability

__all__ = [
    "subtask_error",
    "cot_accuracy",
    "lambert_factor",
    "CoTOptimum",
    "optimal_length",
    "grid_optimal_length",
    "simulate_accuracy",
]


def _check_noise(noise: float) -> float:
    s = check_probability("noise", noise)
    if s >= 1.0:
        raise ValueError(f"noise must be < 1 (every step would be corrupted), got {noise!r}")
    return s


def _check_lengths(n: object) -> np.ndarray:
    arr = np.asarray(n, dtype=float)
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
        raise ValueError(f"n must be > 0 and finite (a number of reasoning steps), got n{list(idx)}={arr[idx]!r}")
    return arr


def subtask_error(n: object, capability: float, difficulty: float) -> np.ndarray:
    """Per-step error E(N, M, T) = T/(N·M), the failure probability of a sub-task of difficulty T/N.

    Values ≥ 1 mean the step cannot be done (the accuracy is 0 there). Shapes: ``n`` any shape,
    output the same shape.

    References: Wu et al. (2025), "When More is Less", arXiv 2502.07266, §4.
    """
    m = check_positive("capability", capability)
    t = check_positive("difficulty", difficulty)
    return t / (_check_lengths(n) * m)


def cot_accuracy(n: object, capability: float, difficulty: float, noise: float, alpha: float = 1.0) -> np.ndarray:
    """Accuracy of an N-step chain: A(N) = α [(1 − T/(N M)) (1 − σ)]^N for N > T/M, else 0.

    ``n`` may be real (the continuous relaxation) or integer, any shape. ``noise`` σ ∈ [0, 1),
    ``alpha`` α ∈ [0, 1]. Computed in log space.

    References: Wu et al. (2025), "When More is Less", arXiv 2502.07266, §4.
    """
    s = _check_noise(noise)
    a = check_probability("alpha", alpha)
    e = subtask_error(n, capability, difficulty)
    nn = _check_lengths(n)
    out = np.zeros_like(e)
    ok = e < 1.0
    out[ok] = a * np.exp(nn[ok] * (np.log1p(-e[ok]) + np.log1p(-s)))
    return out


def lambert_factor(noise: float) -> float:
    """Z = W_{−1}(−(1 − σ)/e) ≤ −1, the root of (−v) e^{−v} = −(1 − σ)/e with v = −Z > 1.

    ``noise`` σ ∈ (0, 1); σ = 0 gives Z = −1 and N* = ∞ (raise: there is no finite optimum).

    References: Wu et al. (2025), arXiv 2502.07266, §4 (the Lambert W form of the optimum).
    """
    s = _check_noise(noise)
    if s == 0.0:
        raise ValueError("noise must be > 0 for a finite optimal length (with noise=0 the accuracy rises for ever)")
    z = lambertw(-(1.0 - s) / math.e, k=-1)
    return float(z.real)


@dataclass(frozen=True)
class CoTOptimum:
    """The optimal CoT length of the model, continuous and integer.

    n_star: N* = T Z / (M (Z + 1)) (continuous relaxation); accuracy_star: A(N*);
    n_int: the best integer length (⌊N*⌋ or ⌈N*⌉, ties to the shorter); accuracy_int: A(n_int);
    z: the Lambert factor Z = W_{−1}(−(1 − σ)/e); stationarity: |d log A / dN| at N*
    (the certificate: ≈ 0).
    """

    n_star: float
    accuracy_star: float
    n_int: int
    accuracy_int: float
    z: float
    stationarity: float


def optimal_length(capability: float, difficulty: float, noise: float, alpha: float = 1.0) -> CoTOptimum:
    """N* = T Z / (M (Z + 1)), Z = W_{−1}(−(1 − σ)/e); the integer optimum is ⌊N*⌋ or ⌈N*⌉.

    The integer optimum needs N ≥ 1 and N > T/M; ``n_int`` is the better of the admissible
    neighbours of N* (log A is concave there, so one of them is the maximum over all integers).

    References: Wu et al. (2025), "When More is Less", arXiv 2502.07266, §4 (Lambert W optimum).
    """
    m = check_positive("capability", capability)
    t = check_positive("difficulty", difficulty)
    a = check_probability("alpha", alpha)
    z = lambert_factor(noise)
    n_star = t * z / (m * (z + 1.0))
    acc_star = float(cot_accuracy(n_star, m, t, noise, a))
    x = t / (n_star * m)
    stationarity = abs(math.log1p(-x) + x / (1.0 - x) + math.log1p(-noise))
    cands = [k for k in {max(1, math.floor(n_star)), max(1, math.ceil(n_star))} if k > t / m]
    if not cands:
        cands = [math.floor(t / m) + 1]
    accs = {k: float(cot_accuracy(k, m, t, noise, a)) for k in sorted(cands)}
    n_int = max(accs, key=lambda k: (accs[k], -k))
    return CoTOptimum(n_star=float(n_star), accuracy_star=acc_star, n_int=int(n_int), accuracy_int=accs[n_int],
                      z=z, stationarity=float(stationarity))


def grid_optimal_length(capability: float, difficulty: float, noise: float, max_steps: int, alpha: float = 1.0) -> int:
    """argmax_{N ∈ {1..max_steps}} A(N) by enumeration (the brute-force reference; ties to the shorter)."""
    k = check_count("max_steps", max_steps)
    acc = cot_accuracy(np.arange(1, k + 1), capability, difficulty, noise, alpha)
    return int(np.argmax(acc)) + 1


def simulate_accuracy(n: int, capability: float, difficulty: float, noise: float, alpha: float = 1.0, *,
                      num: int = 10_000, rng: np.random.Generator | None = None, seed: int | None = None) -> float:
    """Monte Carlo accuracy of the generative model: N independent steps, each failing with
    probability E = T/(N M) (sub-task) and corrupted with probability σ (noise), then a final
    readout correct with probability α. Returns the fraction of the ``num`` chains that are
    correct (an independent check of the product form of :func:`cot_accuracy`).
    """
    steps = check_count("n", n)
    trials = check_count("num", num)
    s = _check_noise(noise)
    a = check_probability("alpha", alpha)
    e = float(subtask_error(steps, capability, difficulty))
    g = as_generator(rng, seed)
    if e >= 1.0:
        return 0.0
    u = g.random((trials, steps, 2))
    ok = np.all((u[..., 0] >= e) & (u[..., 1] >= s), axis=1) & (g.random(trials) < a)
    return float(ok.mean())
