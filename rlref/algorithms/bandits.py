"""EVOLvE: the classical bandit baselines, the paper's metrics, algorithm-guided statistics and algorithm distillation.

Implements the non-LLM side of Nie, Su, Chang, Lee, Chi, Le & Chen (2025), "EVOLvE: Evaluating and Optimizing LLMs
For In-Context Exploration", ICML (PMLR 267), arXiv 2410.06238, on the instances of :mod:`rlref.envs.bandits`:

1. baselines, batched over independent runs (every array has a leading run axis r):
   UCB (each arm once, then argmax_a μ̂_a + √(α ln t / n_a), t = rounds played so far; α = 0.5 in BanditBench's
   ``UCBAgent``, α = 2 is Auer et al.'s UCB1), greedy (each arm once, then argmax μ̂), ε-greedy, Thompson sampling
   (Beta(1, 1) prior for Bernoulli arms; flat-prior Gaussian posterior N(μ̂_a, σ²/n_a) for Gaussian arms), a uniform
   policy, and disjoint LinUCB (Li et al. 2010: θ̂_a = A_a⁻¹ b_a, index θ̂_aᵀx + α √(xᵀ A_a⁻¹ x), A_a = λI + Σ x xᵀ);
2. metrics: cumulative pseudo-regret R_t = Σ_{s≤t} (μ* − μ_{a_s}), the fraction of optimal pulls (OptFrac) and
   MinFrac = K · min_a N_T(a)/T (Krishnamurthy et al. 2024, "Can large language models explore in-context?", whose
   summary statistics EVOLvE's evaluation builds on), and the paper's functional-form fit of a regret curve,
   R(t) ≈ λ (ln t)^α / Δ_min + β t + c  (α: how fast the sublinear part grows, β > 0: linear regret);
3. the references: the Lai–Robbins constant c_LR = Σ_{Δ_a>0} Δ_a / KL(ν_a ‖ ν*) (liminf R_T / ln T ≥ c_LR for any
   consistent policy) and UCB1's finite-time bound 8 Σ ln T / Δ_a + (1 + π²/3) Σ Δ_a (Auer et al. 2002, Thm. 1);
4. the main idea: *algorithm-guided support* — the summary statistics a learner is given each round (UCB's
   exploitation value μ̂_a and exploration bonus √(α ln t / n_a), BanditBench's ``UCBGuide``) — and *algorithm
   distillation*: a small policy π_w(a | h) ∝ exp(wᵀ φ_a(h)) over per-arm features, fitted by cross-entropy to UCB's
   choices on UCB trajectories (imitation), then deployed greedily. The learner here is a conditional-logit policy,
   not an LLM (the paper fine-tunes Gemini models on the same kind of data).

References: Nie et al. (2025), EVOLvE, Sec. 3 (BanditBench), Sec. 4 (algorithm-guided support, distillation),
Sec. 6 (regret analysis / functional form); Lai & Robbins (1985); Auer, Cesa-Bianchi & Fischer (2002), Thm. 1;
Agrawal & Goyal (2012) (Beta-Bernoulli Thompson sampling); Li, Chu, Langford & Schapire (2010) (LinUCB);
Lattimore & Szepesvári (2020), "Bandit Algorithms", ch. 7, 16, 19, 36. The paper's exact text for the regret
functional form was not retrieved; the form above follows its description (derived here where it differs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats
from scipy.special import log_softmax

from rlref._checks import as_float_array, as_generator, check_at_least, check_choice, check_count, check_positive, check_probability
from rlref.algorithms.sampling import random_argmax
from rlref.divergences import kl
from rlref.envs.bandits import LinearContextualBandit, StochasticBandit

__all__ = [
    "BanditRuns",
    "RegretFit",
    "DistilledPolicy",
    "ChoiceRule",
    "cumulative_regret",
    "opt_frac",
    "min_frac",
    "mean_ci",
    "ucb_summary",
    "summary_features",
    "ucb_rule",
    "greedy_rule",
    "epsilon_greedy_rule",
    "thompson_rule",
    "uniform_rule",
    "run_mab",
    "run_linucb",
    "lai_robbins_constant",
    "ucb1_regret_bound",
    "fit_regret_form",
    "ucb_demonstrations",
    "distill",
    "FEATURE_SETS",
]

#: A choice rule maps (counts[r, a], sums[r, a], t, rng) to the arms[r] to pull; t = rounds played so far.
ChoiceRule = Callable[[np.ndarray, np.ndarray, int, np.random.Generator], np.ndarray]

#: The learner's per-arm inputs for distillation: "ucb" = UCB's summary statistics (μ̂_a, √(α ln t / n_a))
#: (algorithm-guided support), "raw" = the history's own summary (μ̂_a, n_a / t), "mean" = μ̂_a only.
FEATURE_SETS = ("ucb", "raw", "mean")


@dataclass(frozen=True)
class BanditRuns:
    """n_runs independent runs of one algorithm on one instance.

    actions[r, t], rewards[r, t]; regret[r, t] = cumulative pseudo-regret after round t + 1; opt_frac[r] = fraction of
    rounds that pulled an optimal arm; min_frac[r] = K · min_a N_T(a) / T.
    """

    algorithm: str
    actions: np.ndarray
    rewards: np.ndarray
    regret: np.ndarray
    opt_frac: np.ndarray
    min_frac: np.ndarray


@dataclass(frozen=True)
class RegretFit:
    """R(t) ≈ lam · (ln t)^alpha / gap + beta · t + offset, by least squares over t = t0..T; rmse of the fit."""

    alpha: float
    beta: float
    lam: float
    offset: float
    rmse: float


@dataclass(frozen=True)
class DistilledPolicy:
    """π_w(a | h) ∝ exp(wᵀ φ_a(h)) with φ from ``feature_set``; deployed greedily (argmax, random tie-break).

    train_accuracy: fraction of demonstration rounds where argmax_a wᵀφ_a equals the demonstrator's arm;
    train_loss: the mean cross-entropy at the optimum.
    """

    weights: np.ndarray
    feature_set: str
    alpha: float
    train_accuracy: float
    train_loss: float

    def __call__(self, counts: np.ndarray, sums: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        phi = summary_features(counts, sums, t, self.feature_set, alpha=self.alpha)
        return _first_unpulled_or(counts, phi @ self.weights, rng)


# ----------------------------------------------------------------------------- metrics
def cumulative_regret(means: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """R_t = Σ_{s ≤ t} (μ* − μ_{a_s}) (pseudo-regret), cumulative along the last axis of ``actions``.

    Shapes: means[a], actions[..., t] -> [..., t]. References: Lattimore & Szepesvári (2020), eq. (4.1).
    """
    mu = as_float_array("means", means, ndim=1)
    a = _check_actions(actions, mu.size)
    return np.cumsum(mu.max() - mu[a], axis=-1)


def opt_frac(means: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """OptFrac = (1/T) Σ_t 1{μ_{a_t} = μ*}: the fraction of pulls of an optimal arm. Shapes: actions[..., t] -> [...]."""
    mu = as_float_array("means", means, ndim=1)
    a = _check_actions(actions, mu.size)
    return np.mean(mu[a] == mu.max(), axis=-1)


def min_frac(actions: np.ndarray, K: int) -> np.ndarray:
    """MinFrac = K · min_a N_T(a) / T ∈ [0, 1]: 1 for perfectly even exploration, 0 if some arm was never pulled.

    Shapes: actions[..., t] -> [...]. References: Krishnamurthy, Harris, Foster, Zhang & Slivkins (2024), Sec. 3.
    """
    K = check_count("K", K)
    a = _check_actions(actions, K)
    counts = np.stack([(a == k).sum(-1) for k in range(K)], axis=-1)
    return K * counts.min(-1) / a.shape[-1]


def mean_ci(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lower, upper): the Student-t confidence interval for the mean of the samples ``x`` (over seeds/runs)."""
    v = as_float_array("x", x, ndim=1)
    if v.size < 2:
        raise ValueError(f"x needs at least 2 samples for a confidence interval, got {v.size}")
    check_probability("level", level)
    m, se = float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))
    h = float(stats.t.ppf(0.5 + level / 2, v.size - 1)) * se
    return m, m - h, m + h


# ----------------------------------------------------------------------------- algorithm-guided statistics
def ucb_summary(counts: np.ndarray, sums: np.ndarray, t: int, alpha: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """UCB's per-arm summary statistics: exploitation value μ̂_a = sums_a / n_a and exploration bonus
    √(α ln t / n_a) (+∞ for an unpulled arm, whose μ̂ is reported as 0). These are what EVOLvE's algorithm-guided
    support (AG) shows the learner every round.

    Shapes: counts[..., a], sums[..., a] -> (mean[..., a], bonus[..., a]).
    References: Nie et al. (2025), EVOLvE, Sec. 4.1 (BanditBench ``UCBGuide``); Auer et al. (2002).
    """
    n = np.asarray(counts, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, np.asarray(sums, dtype=np.float64) / np.maximum(n, 1), 0.0)
        bonus = np.where(n > 0, np.sqrt(alpha * np.log(max(t, 1)) / np.maximum(n, 1)), np.inf)
    return mean, bonus


def summary_features(counts: np.ndarray, sums: np.ndarray, t: int, feature_set: str, *, alpha: float = 0.5) -> np.ndarray:
    """The learner's per-arm inputs φ_a(h) for one of :data:`FEATURE_SETS`. Shapes: -> [..., a, F].

    An unpulled arm's bonus (+∞) is never used: every rule pulls unpulled arms first.
    """
    check_choice("feature_set", feature_set, FEATURE_SETS)
    mean, bonus = ucb_summary(counts, sums, t, alpha)
    if feature_set == "ucb":
        return np.stack([mean, np.where(np.isfinite(bonus), bonus, 0.0)], axis=-1)
    if feature_set == "raw":
        return np.stack([mean, np.asarray(counts, dtype=np.float64) / max(t, 1)], axis=-1)
    return mean[..., None]


# ----------------------------------------------------------------------------- choice rules
def _first_unpulled_or(counts: np.ndarray, score: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    unpulled = counts == 0
    pick = random_argmax(score, rng)
    return np.where(unpulled.any(-1), np.argmax(unpulled, axis=-1), pick)


def ucb_rule(alpha: float = 0.5) -> ChoiceRule:
    """α-UCB: each arm once (in index order), then argmax_a μ̂_a + √(α ln t / n_a), ties broken at random.

    α = 0.5 is BanditBench's default; α = 2 is UCB1 (Auer et al. 2002), whose bound :func:`ucb1_regret_bound` states.
    """
    a = check_positive("alpha", alpha)

    def choose(counts, sums, t, rng):
        mean, bonus = ucb_summary(counts, sums, t, a)
        return _first_unpulled_or(counts, mean + np.where(np.isfinite(bonus), bonus, 0.0), rng)

    return choose


def greedy_rule() -> ChoiceRule:
    """Greedy: each arm once, then argmax_a μ̂_a (ties at random). No exploration: linear regret with positive
    probability."""

    def choose(counts, sums, t, rng):
        return _first_unpulled_or(counts, ucb_summary(counts, sums, t)[0], rng)

    return choose


def epsilon_greedy_rule(epsilon: float = 0.1) -> ChoiceRule:
    """ε-greedy: each arm once; then with probability ε a uniform arm, else the greedy arm."""
    eps = check_probability("epsilon", epsilon)

    def choose(counts, sums, t, rng):
        greedy = _first_unpulled_or(counts, ucb_summary(counts, sums, t)[0], rng)
        explore = rng.random(counts.shape[0]) < eps
        return np.where(explore & (counts > 0).all(-1), rng.integers(0, counts.shape[-1], counts.shape[0]), greedy)

    return choose


def thompson_rule(kind: str, *, prior: tuple[float, float] = (1.0, 1.0), sigma: float = 1.0) -> ChoiceRule:
    """Thompson sampling: draw θ_a from each arm's posterior and pull argmax θ_a.

    ``kind="bernoulli"``: Beta(prior[0] + S_a, prior[1] + n_a − S_a) (Beta(1, 1) = uniform prior; rewards in {0, 1}).
    ``kind="gaussian"``: flat prior, posterior N(μ̂_a, σ²/n_a), each arm pulled once first.
    References: Agrawal & Goyal (2012); Lattimore & Szepesvári (2020), ch. 36.
    """
    check_choice("kind", kind, ("bernoulli", "gaussian"))
    a0, b0 = (check_positive("prior[0]", prior[0]), check_positive("prior[1]", prior[1]))
    s = check_positive("sigma", sigma)

    def choose(counts, sums, t, rng):
        if kind == "bernoulli":
            return random_argmax(rng.beta(a0 + sums, b0 + counts - sums), rng)
        mean = sums / np.maximum(counts, 1)
        theta = mean + s * rng.standard_normal(counts.shape) / np.sqrt(np.maximum(counts, 1))
        return _first_unpulled_or(counts, theta, rng)

    return choose


def uniform_rule() -> ChoiceRule:
    """A uniformly random arm every round (the no-learning reference: regret Δ̄ · t)."""

    def choose(counts, sums, t, rng):
        return rng.integers(0, counts.shape[-1], counts.shape[0])

    return choose


# ----------------------------------------------------------------------------- drivers
def run_mab(bandit: StochasticBandit, rule: ChoiceRule, T: int, n_runs: int, *, rng: np.random.Generator | None = None,
            seed: int | None = None, name: str = "") -> BanditRuns:
    """Run ``rule`` for T rounds on ``bandit``, n_runs independent runs at once (vectorized over runs).

    Round t = 0..T−1: a_t = rule(N, S, t, rng) with N[r, a], S[r, a] the pull counts and reward sums so far; reward
    drawn by ``bandit.sample``. Raises ValueError if T <= 0 or n_runs <= 0, RuntimeError if the rule returns an
    arm outside [0, K).
    """
    T = check_count("T", T, meaning="the number of rounds")
    R = check_count("n_runs", n_runs)
    g = as_generator(rng, seed)
    K = bandit.K
    counts, sums = np.zeros((R, K)), np.zeros((R, K))
    actions, rewards = np.zeros((R, T), dtype=np.int64), np.zeros((R, T))
    rows = np.arange(R)
    for t in range(T):
        a = np.asarray(rule(counts, sums, t, g))
        if a.shape != (R,) or np.any((a < 0) | (a >= K)):
            bad = a.ravel()[0] if a.shape != (R,) else a[(a < 0) | (a >= K)][0]
            raise RuntimeError(f"choice rule returned arms of shape {a.shape} (expected ({R},)) or an arm outside [0, {K}): {bad!r} at round {t}")
        x = bandit.sample(a, g)
        counts[rows, a] += 1.0
        sums[rows, a] += x
        actions[:, t], rewards[:, t] = a, x
    return BanditRuns(algorithm=name or getattr(rule, "__qualname__", "rule"), actions=actions, rewards=rewards,
                      regret=cumulative_regret(bandit.means, actions), opt_frac=opt_frac(bandit.means, actions),
                      min_frac=min_frac(actions, K))


def run_linucb(cb: LinearContextualBandit, T: int, n_runs: int, *, alpha: float = 0.5, lam: float = 1.0,
               rng: np.random.Generator | None = None, seed: int | None = None) -> BanditRuns:
    """Disjoint LinUCB (Li et al. 2010, Alg. 1) on a linear contextual bandit; α = 0 is the greedy (ridge) policy.

    Each round: x_t ~ context_probs, a_t = argmax_a θ̂_aᵀφ + α √(φᵀ A_a⁻¹ φ) with φ = features[x_t],
    A_a = λI + Σ φφᵀ, b_a = Σ r φ, θ̂_a = A_a⁻¹ b_a (A⁻¹ kept by Sherman–Morrison). Regret is against the best arm of
    each drawn context, μ*(x_t) − μ(x_t, a_t); opt_frac counts rounds where a_t is optimal for x_t.
    References: Li, Chu, Langford & Schapire (2010), Alg. 1; Chu et al. (2011); Lattimore & Szepesvári (2020), ch. 19.
    """
    T = check_count("T", T, meaning="the number of rounds")
    R = check_count("n_runs", n_runs)
    a_ = check_at_least("alpha", alpha, 0.0)
    lam = check_positive("lam", lam)
    g = as_generator(rng, seed)
    F, mu = cb.features, cb.mean_rewards
    K, d = cb.theta.shape
    Ainv = np.broadcast_to(np.eye(d) / lam, (R, K, d, d)).copy()
    b = np.zeros((R, K, d))
    rows = np.arange(R)
    actions, rewards, inst = np.zeros((R, T), dtype=np.int64), np.zeros((R, T)), np.zeros((R, T))
    best_hit = np.zeros((R, T), dtype=bool)
    for t in range(T):
        x = g.choice(F.shape[0], size=R, p=cb.context_probs)
        phi = F[x]  # [r, d]
        theta = np.einsum("rkij,rkj->rki", Ainv, b)
        Av = np.einsum("rkij,rj->rki", Ainv, phi)
        width = np.sqrt(np.maximum(np.einsum("rki,ri->rk", Av, phi), 0.0))
        a = random_argmax(np.einsum("rki,ri->rk", theta, phi) + a_ * width, g)
        r = mu[x, a] + cb.sigma * g.standard_normal(R)
        u = Av[rows, a]  # A⁻¹φ for the pulled arm
        Ainv[rows, a] -= u[:, :, None] * u[:, None, :] / (1.0 + np.einsum("ri,ri->r", u, phi))[:, None, None]
        b[rows, a] += r[:, None] * phi
        actions[:, t], rewards[:, t] = a, r
        inst[:, t] = mu[x].max(1) - mu[x, a]
        best_hit[:, t] = mu[x, a] >= mu[x].max(1)
    return BanditRuns(algorithm=f"LinUCB(alpha={a_:g})", actions=actions, rewards=rewards, regret=np.cumsum(inst, 1),
                      opt_frac=best_hit.mean(1), min_frac=min_frac(actions, K))


# ----------------------------------------------------------------------------- references
def lai_robbins_constant(bandit: StochasticBandit) -> float:
    """c_LR = Σ_{a: Δ_a > 0} Δ_a / KL(ν_a ‖ ν*): for any consistent policy liminf_T E[R_T] / ln T ≥ c_LR.

    Bernoulli: KL = kl(Bern(μ_a), Bern(μ*)) (:func:`rlref.divergences.kl`); Gaussian with common σ: Δ_a² / (2σ²)
    (written here: :mod:`rlref.divergences` holds divergences of finite-support distributions and has no Gaussian KL).
    Returns inf if some suboptimal arm has KL = inf (e.g. μ_a = 0 against μ* = 1 is still finite; μ* ∈ {0, 1}
    with μ_a strictly inside gives inf, when the optimal arm is deterministic).
    References: Lai & Robbins (1985), Thm. 2; Lattimore & Szepesvári (2020), Thm. 16.2.
    """
    mu, gaps = bandit.means, bandit.gaps
    total = 0.0
    for a in np.flatnonzero(gaps > 0):
        if bandit.kind == "bernoulli":
            d = float(kl(np.array([mu[a], 1 - mu[a]]), np.array([mu.max(), 1 - mu.max()])))
        else:
            d = gaps[a] ** 2 / (2 * bandit.sigma**2)
        total += gaps[a] / d
    return float(total)


def ucb1_regret_bound(bandit: StochasticBandit, T: int) -> float:
    """Auer, Cesa-Bianchi & Fischer (2002), Thm. 1: UCB1 (α = 2 here) on rewards in [0, 1] has
    E[R_T] ≤ 8 Σ_{Δ_a>0} ln T / Δ_a + (1 + π²/3) Σ_a Δ_a. Raises ValueError for a non-Bernoulli instance
    (the theorem needs rewards in [0, 1]) or T <= 0.
    """
    T = check_count("T", T, meaning="the number of rounds")
    if bandit.kind != "bernoulli":
        raise ValueError(f"ucb1_regret_bound needs rewards in [0, 1] (a Bernoulli bandit), got kind {bandit.kind!r}")
    g = bandit.gaps[bandit.gaps > 0]
    return float(8 * np.sum(np.log(T) / g) + (1 + np.pi**2 / 3) * np.sum(g))


def fit_regret_form(regret: np.ndarray, gap: float, *, t0: int = 10) -> RegretFit:
    """Fit R(t) ≈ λ (ln t)^α / Δ_min + β t + c to a mean regret curve (t = 1..T, fitted on t ≥ t0) by bounded least
    squares (α ∈ [0, 4], β ∈ [0, 1], λ ≥ 0). β ≈ 0 with finite α is the sublinear (logarithmic) regime of a good
    explorer; β > 0 is a linear-regret failure to explore.

    References: Nie et al. (2025), EVOLvE, Sec. 6 (functional interpretation of LLM regret; form as described there,
    exact parameterization derived here).
    """
    y = as_float_array("regret", regret, ndim=1)
    check_positive("gap", gap)
    t = np.arange(1, y.size + 1, dtype=np.float64)
    m = t >= t0
    if m.sum() < 5:
        raise ValueError(f"regret must have at least t0 + 4 = {t0 + 4} rounds to fit 4 parameters, got {y.size}")
    tt, yy = t[m], y[m]

    def f(p):
        a, b, lam, c = p
        return lam * np.log(tt) ** a / gap + b * tt + c - yy

    best = None
    for a0 in (0.5, 1.0, 2.0):
        sol = optimize.least_squares(f, x0=[a0, 0.01, 1.0, 0.0], bounds=([0, 0, 0, -np.inf], [4, 1, np.inf, np.inf]))
        if best is None or sol.cost < best.cost:
            best = sol
    a, b, lam, c = best.x
    return RegretFit(alpha=float(a), beta=float(b), lam=float(lam), offset=float(c), rmse=float(np.sqrt(2 * best.cost / m.sum())))


# ----------------------------------------------------------------------------- algorithm distillation
def ucb_demonstrations(bandits: list[StochasticBandit], T: int, n_runs: int, feature_set: str, *, alpha: float = 0.5,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """UCB trajectories as imitation data: for each bandit, n_runs α-UCB runs of T rounds; every round after the
    initial round-robin (all arms pulled) gives (φ(h_t)[a, F], a_t). All bandits must have the same K.

    Returns (features[n, a, F], labels[n]). References: Nie et al. (2025), EVOLvE, Sec. 4.2 (oracle trajectories
    from UCB for in-context demonstrations and fine-tuning).
    """
    check_choice("feature_set", feature_set, FEATURE_SETS)
    if not bandits:
        raise ValueError("bandits must hold at least one instance")
    K = bandits[0].K
    rule = ucb_rule(alpha)
    X, Y = [], []
    for i, bd in enumerate(bandits):
        if bd.K != K:
            raise ValueError(f"all bandits must have K = {K} arms; bandits[{i}] has {bd.K}")
        runs = run_mab(bd, rule, T, n_runs, rng=rng, name="UCB")
        counts, sums = np.zeros((n_runs, K)), np.zeros((n_runs, K))
        rows = np.arange(n_runs)
        for t in range(T):
            a = runs.actions[:, t]
            if t >= K:
                X.append(summary_features(counts, sums, t, feature_set, alpha=alpha))
                Y.append(a.copy())
            counts[rows, a] += 1.0
            sums[rows, a] += runs.rewards[:, t]
    return np.concatenate(X), np.concatenate(Y)


def distill(features: np.ndarray, labels: np.ndarray, feature_set: str, *, alpha: float = 0.5, l2: float = 1e-4) -> DistilledPolicy:
    """Algorithm distillation by imitation: w = argmin_w  −(1/n) Σ_i log π_w(a_i | h_i) + l2 ‖w‖²,
    π_w(a | h) = softmax_a(wᵀ φ_a(h)) (a convex conditional-logit loss, solved by L-BFGS with its exact gradient).

    Shapes: features[n, a, F], labels[n]. References: Nie et al. (2025), EVOLvE, Sec. 4.2 (fine-tuning on UCB's
    trajectories); Laskin et al. (2022) (algorithm distillation).
    """
    Phi = as_float_array("features", features, ndim=3)
    y = np.asarray(labels)
    if y.shape != Phi.shape[:1]:
        raise ValueError(f"labels must have shape ({Phi.shape[0]},) to match features, got {y.shape}")
    check_choice("feature_set", feature_set, FEATURE_SETS)
    n = y.size
    idx = np.arange(n)

    def loss(w):
        lp = log_softmax(Phi @ w, axis=1)
        p = np.exp(lp)
        grad = -(Phi[idx, y] - np.einsum("na,naf->nf", p, Phi)).mean(0) + 2 * l2 * w
        return -lp[idx, y].mean() + l2 * w @ w, grad

    sol = optimize.minimize(loss, np.zeros(Phi.shape[2]), jac=True, method="L-BFGS-B")
    if not np.all(np.isfinite(sol.x)):
        raise RuntimeError(f"distillation diverged: {sol.message}")
    acc = float(np.mean(np.argmax(Phi @ sol.x, axis=1) == y))
    return DistilledPolicy(weights=sol.x, feature_set=feature_set, alpha=float(alpha), train_accuracy=acc, train_loss=float(sol.fun))


def _check_actions(actions: np.ndarray, K: int) -> np.ndarray:
    a = np.asarray(actions)
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError(f"actions must have a non-empty last (time) axis, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"actions must be integer arm indices, got dtype {a.dtype}")
    bad = (a < 0) | (a >= K)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"actions must be arm indices in [0, {K}); actions{list(idx)} = {int(a[idx])}")
    return a
