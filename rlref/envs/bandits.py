"""Bandits as MDPs: a multi-armed bandit (one state) and a contextual bandit (one state per context).

Both default to ``horizon=1``: a single decision, so the optimal value is max_a r(s, a) in each
state and the value of a policy is its expected one-step reward. With ``horizon=None`` and a
``gamma`` they become discounted repeated bandits (contexts redrawn i.i.d. every step).

References: Lattimore & Szepesvári (2020), "Bandit Algorithms", ch. 4 (stochastic bandits) and
ch. 18 (contextual bandits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlref._checks import as_float_array, check_choice, check_count, check_distribution, check_finite, check_positive
from rlref.mdp import TabularMDP

__all__ = [
    "multi_armed_bandit",
    "contextual_bandit",
    "StochasticBandit",
    "LinearContextualBandit",
    "bernoulli_bandit",
    "gaussian_bandit",
    "evolve_bernoulli",
    "evolve_gaussian",
    "evolve_hard",
    "low_rank_contextual_bandit",
    "EVOLVE_HARD_K",
    "EVOLVE_HARD_T",
]


def multi_armed_bandit(
    means: np.ndarray, *, horizon: int | None = 1, gamma: float | None = None, name: str = "bandit"
) -> TabularMDP:
    """A K-armed bandit as a one-state MDP: S = 1, A = K, r(0, a) = means[a], P(0|0, a) = 1.

    With the default ``horizon=1`` the optimal value is V*(0) = max_a means[a] and a policy's
    value is Σ_a π(a) means[a]. ``horizon=None`` with ``gamma`` in [0, 1) gives the discounted
    repeated bandit, V*(0) = max_a means[a] / (1 - γ).

    Shapes: means[a]. Raises ValueError on an empty or non-finite ``means``.
    References: Lattimore & Szepesvári (2020), §4.1.
    """
    mu = as_float_array("means", means, ndim=1)
    if mu.size == 0:
        raise ValueError("means must have at least one arm, got an empty array")
    check_finite("means", mu)
    K = mu.size
    return TabularMDP(P=np.ones((1, K, 1)), R=mu[None, :], gamma=gamma, horizon=horizon, mu0=np.ones(1), name=name)


def contextual_bandit(
    rewards: np.ndarray,
    context_probs: np.ndarray | None = None,
    *,
    horizon: int | None = 1,
    gamma: float | None = None,
    name: str = "contextual_bandit",
) -> TabularMDP:
    """A contextual bandit as an MDP whose states are contexts.

    States x = 0, ..., X-1 with ``mu0 = context_probs`` (uniform when omitted); actions a;
    r(x, a) = ``rewards[x, a]``; P(x'|x, a) = context_probs[x'] (the next context is drawn afresh,
    which only matters when ``horizon > 1`` or discounted). With ``horizon=1``,
    V* = Σ_x ρ(x) max_a r(x, a) under the initial distribution ρ = context_probs.

    Shapes: rewards[x, a], context_probs[x].
    Raises ValueError on non-finite rewards or a context_probs that is not a distribution.
    References: Lattimore & Szepesvári (2020), §18.1.
    """
    R = as_float_array("rewards", rewards, ndim=2)
    if R.shape[0] == 0 or R.shape[1] == 0:
        raise ValueError(f"rewards must have at least one context and one action, got shape {R.shape}")
    check_finite("rewards", R)
    X, A = R.shape
    if context_probs is None:
        rho = np.full(X, 1.0 / X)
    else:
        rho = as_float_array("context_probs", context_probs, ndim=1)
        if rho.shape != (X,):
            raise ValueError(f"context_probs must have shape (X,) = ({X},) to match rewards, got {rho.shape}")
        check_distribution("context_probs", rho)
    P = np.broadcast_to(rho, (X, A, X))
    return TabularMDP(P=P, R=R, gamma=gamma, horizon=horizon, mu0=rho, name=name)


# ----------------------------------------------------------------------------- EVOLvE / BanditBench instances
# Appended for issue #18 (EVOLvE). The instances of Nie et al. (2025), "EVOLvE: Evaluating and Optimizing LLMs
# For In-Context Exploration", ICML, arXiv 2410.06238, Sec. 3 (BanditBench), as stochastic bandits one can
# simulate: each instance carries its reward distribution, not only the mean (the MDP view is ``.mdp()``).


@dataclass(frozen=True)
class StochasticBandit:
    """A K-armed stochastic bandit with Bernoulli or Gaussian arms.

    ``kind == "bernoulli"``: arm a pays 1 with probability ``means[a]`` and 0 otherwise.
    ``kind == "gaussian"``: arm a pays a draw of N(means[a], sigma²).
    ``best_arm`` = argmax means (the first one on ties), ``gaps[a]`` = μ* − μ_a, ``gap`` = Δ_min, the smallest
    positive gap (0 when all arms are equal) — BanditBench's "instance hardness".
    """

    means: np.ndarray
    kind: str
    sigma: float
    name: str

    @property
    def K(self) -> int:
        return int(self.means.size)

    @property
    def best_arm(self) -> int:
        return int(np.argmax(self.means))

    @property
    def gaps(self) -> np.ndarray:
        return self.means.max() - self.means

    @property
    def gap(self) -> float:
        pos = self.gaps[self.gaps > 0]
        return float(pos.min()) if pos.size else 0.0

    def sample(self, arms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One reward for each entry of ``arms`` (any shape), drawn independently."""
        mu = self.means[np.asarray(arms)]
        if self.kind == "bernoulli":
            return (rng.random(mu.shape) < mu).astype(np.float64)
        return mu + self.sigma * rng.standard_normal(mu.shape)

    def mdp(self) -> TabularMDP:
        """The one-state MDP with r(0, a) = means[a] (:func:`multi_armed_bandit`)."""
        return multi_armed_bandit(self.means, name=self.name)


def bernoulli_bandit(means: np.ndarray, *, name: str = "bernoulli-bandit") -> StochasticBandit:
    """Bernoulli arms with success probabilities ``means[a]``.

    Raises ValueError naming the first arm whose probability lies outside [0, 1] (or is NaN), or on no arms.
    References: Lattimore & Szepesvári (2020), §4.6 (Bernoulli bandits).
    """
    mu = as_float_array("means", means, ndim=1)
    if mu.size == 0:
        raise ValueError("means must have at least one arm, got an empty array")
    bad = ~((mu >= 0.0) & (mu <= 1.0))
    if np.any(bad):
        a = int(np.argmax(bad))
        raise ValueError(f"means must be Bernoulli probabilities in [0, 1]; means[{a}] = {float(mu[a])!r}")
    return StochasticBandit(means=mu.copy(), kind="bernoulli", sigma=0.5, name=name)


def gaussian_bandit(means: np.ndarray, sigma: float = 1.0, *, name: str = "gaussian-bandit") -> StochasticBandit:
    """Gaussian arms N(means[a], sigma²) (sigma-subgaussian rewards).

    Raises ValueError on non-finite means, no arms, or sigma <= 0.
    References: Lattimore & Szepesvári (2020), §4.6.
    """
    mu = as_float_array("means", means, ndim=1)
    if mu.size == 0:
        raise ValueError("means must have at least one arm, got an empty array")
    check_finite("means", mu)
    s = check_positive("sigma", sigma)
    return StochasticBandit(means=mu.copy(), kind="gaussian", sigma=s, name=name)


def evolve_bernoulli(K: int = 5, gap: str = "small", *, best_arm: int = 0) -> StochasticBandit:
    """EVOLvE's Bernoulli instances: ``gap="small"`` (Δ = 0.2): K − 1 arms at 0.4 and one at 0.6;
    ``gap="large"`` (Δ = 0.5): K − 1 arms at 0.25 and one at 0.75. The best arm sits at ``best_arm``.

    References: Nie et al. (2025), EVOLvE, arXiv 2410.06238, Sec. 3 (BanditBench MAB: "domain" Bernoulli,
    exploration difficulty Δ_min ∈ {0.2, 0.5}).
    """
    K = check_count("K", K, minimum=2, meaning="the number of arms")
    check_choice("gap", gap, ("small", "large"))
    a = check_count("best_arm", best_arm, minimum=0)
    if a >= K:
        raise ValueError(f"best_arm must be an arm index in [0, {K}), got {best_arm!r}")
    lo, hi = (0.4, 0.6) if gap == "small" else (0.25, 0.75)
    mu = np.full(K, lo)
    mu[a] = hi
    return bernoulli_bandit(mu, name=f"bernoulli-K{K}-{gap}")


def evolve_gaussian(K: int = 5, scale: float = 1.0, *, rng: np.random.Generator) -> StochasticBandit:
    """EVOLvE's Gaussian instances: means μ_a ~ N(0, scale²) drawn once (scale ∈ {1, 3} in the paper), rewards
    N(μ_a, 1). A larger scale spreads the means, so the instance is easier.

    References: Nie et al. (2025), EVOLvE, Sec. 3 (BanditBench MAB, Gaussian domain).
    """
    K = check_count("K", K, minimum=2, meaning="the number of arms")
    s = check_positive("scale", scale)
    return gaussian_bandit(s * rng.standard_normal(K), 1.0, name=f"gaussian-K{K}-scale{s:g}")


#: EVOLvE's "hard" configuration: K = 20 arms with the small gap, horizon T = 1000.
EVOLVE_HARD_K, EVOLVE_HARD_T = 20, 1000


def evolve_hard() -> tuple[StochasticBandit, int]:
    """The hard BanditBench setting: (20-armed Bernoulli with Δ = 0.2, T = 1000).

    References: Nie et al. (2025), EVOLvE, Sec. 3 (K = 20 with T = 1000; K = 5 with T = 300).
    """
    return evolve_bernoulli(EVOLVE_HARD_K, "small"), EVOLVE_HARD_T


@dataclass(frozen=True)
class LinearContextualBandit:
    """A contextual bandit with linear (disjoint-arm) means: context x has features ``features[x]`` ∈ R^d, arm a a
    parameter ``theta[a]`` ∈ R^d, E[r | x, a] = ⟨features[x], theta[a]⟩, noise N(0, sigma²); contexts i.i.d. from
    ``context_probs``. The mean-reward matrix features @ thetaᵀ has rank ≤ d.
    """

    features: np.ndarray
    theta: np.ndarray
    context_probs: np.ndarray
    sigma: float
    name: str

    @property
    def mean_rewards(self) -> np.ndarray:
        """r[x, a] = ⟨features[x], theta[a]⟩."""
        return self.features @ self.theta.T

    def mdp(self) -> TabularMDP:
        """The horizon-1 contextual-bandit MDP (:func:`contextual_bandit`)."""
        return contextual_bandit(self.mean_rewards, self.context_probs, name=self.name)


def low_rank_contextual_bandit(
    num_contexts: int = 50, K: int = 10, rank: int = 5, *, sigma: float = 0.5, rng: np.random.Generator
) -> LinearContextualBandit:
    """A synthetic stand-in for EVOLvE's MovieLens contextual bandit: a rank-``rank`` user × item preference matrix
    U Vᵀ with U[x], V[a] ~ N(0, I/rank) (so each mean has unit variance), users as contexts (uniform), the user
    factor U[x] as the context feature, V[a] as arm a's parameter, Gaussian noise ``sigma``.

    The paper factorizes the MovieLens-1M rating matrix by SVD into d = 5 user and item features (low rank) and
    uses them as LinUCB's features; the data set is not used here (derived here: same structure, synthetic).
    References: Nie et al. (2025), EVOLvE, Sec. 3 (BanditBench CB); Li, Chu, Langford & Schapire (2010) (LinUCB).
    """
    X = check_count("num_contexts", num_contexts)
    K = check_count("K", K, minimum=2, meaning="the number of arms")
    d = check_count("rank", rank)
    s = check_positive("sigma", sigma)
    U = rng.standard_normal((X, d)) / np.sqrt(d)
    V = rng.standard_normal((K, d)) / np.sqrt(d)
    return LinearContextualBandit(features=U, theta=V, context_probs=np.full(X, 1.0 / X), sigma=s,
                                  name=f"low-rank-cb-X{X}-K{K}-d{d}")
