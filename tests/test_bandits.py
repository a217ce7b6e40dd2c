"""EVOLvE bandits (rlref.algorithms.bandits, rlref.envs.bandits): instances, baselines, metrics, bounds, distillation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.bandits import (
    cumulative_regret,
    distill,
    fit_regret_form,
    greedy_rule,
    lai_robbins_constant,
    mean_ci,
    min_frac,
    opt_frac,
    run_linucb,
    run_mab,
    thompson_rule,
    ucb1_regret_bound,
    ucb_demonstrations,
    ucb_rule,
    uniform_rule,
)
from rlref.envs.bandits import (
    bernoulli_bandit,
    evolve_bernoulli,
    evolve_gaussian,
    evolve_hard,
    gaussian_bandit,
    low_rank_contextual_bandit,
)
from rlref.solve import value_iteration


def test_evolve_instances_match_the_paper():
    small, large = evolve_bernoulli(5, "small"), evolve_bernoulli(5, "large", best_arm=3)
    assert np.allclose(small.means, [0.6, 0.4, 0.4, 0.4, 0.4]) and small.gap == pytest.approx(0.2)
    assert np.allclose(large.means, [0.25, 0.25, 0.25, 0.75, 0.25]) and large.best_arm == 3 and large.gap == pytest.approx(0.5)
    hard, T = evolve_hard()
    assert (hard.K, T, hard.gap) == (20, 1000, pytest.approx(0.2))
    g = evolve_gaussian(5, 3.0, rng=np.random.default_rng(0))
    assert g.kind == "gaussian" and g.sigma == 1.0 and g.K == 5
    # the MDP view: V* = max mean (horizon 1), solved by the core independently of the bandit code
    assert value_iteration(small.mdp()).values[0] == pytest.approx(0.6)


def test_low_rank_contextual_bandit_has_rank_d_means_and_mdp_view():
    cb = low_rank_contextual_bandit(30, 8, 3, rng=np.random.default_rng(1))
    assert np.linalg.matrix_rank(cb.mean_rewards) == 3
    v = value_iteration(cb.mdp()).values
    assert v @ cb.context_probs == pytest.approx(np.mean(cb.mean_rewards.max(1)))


@pytest.mark.parametrize("bad", [[0.5, 1.2], [-0.1, 0.3], [0.2, np.nan]])
def test_bernoulli_probability_outside_unit_interval_is_refused(bad):
    with pytest.raises(ValueError, match=r"means\[1\]|means\[0\]"):
        bernoulli_bandit(bad)


@pytest.mark.parametrize("T", [0, -3])
def test_nonpositive_horizon_is_refused(T):
    with pytest.raises(ValueError, match="T must be"):
        run_mab(evolve_bernoulli(), ucb_rule(), T, 2, seed=0)
    with pytest.raises(ValueError, match="T must be"):
        run_linucb(low_rank_contextual_bandit(rng=np.random.default_rng(0)), T, 2, seed=0)
    with pytest.raises(ValueError, match="T must be"):
        ucb1_regret_bound(evolve_bernoulli(), T)


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="sigma"):
        gaussian_bandit([0.0, 1.0], sigma=0.0)
    with pytest.raises(ValueError, match="best_arm"):
        evolve_bernoulli(3, best_arm=3)
    with pytest.raises(ValueError, match="gap"):
        evolve_bernoulli(3, "medium")
    with pytest.raises(ValueError, match=r"actions\[0, 1\] = 7"):
        cumulative_regret([0.1, 0.2], np.array([[0, 7]]))
    with pytest.raises(ValueError, match="Bernoulli"):
        ucb1_regret_bound(gaussian_bandit([0.0, 1.0]), 10)
    with pytest.raises(RuntimeError, match="outside"):
        run_mab(evolve_bernoulli(), lambda n, s, t, rng: np.full(n.shape[0], 9), 3, 2, seed=0)


def test_metrics_on_a_hand_computed_sequence():
    mu = np.array([0.2, 0.5, 0.9])
    a = np.array([0, 2, 1, 2])
    assert np.allclose(cumulative_regret(mu, a), [0.7, 0.7, 1.1, 1.1])
    assert opt_frac(mu, a) == pytest.approx(0.5)
    assert min_frac(a, 3) == pytest.approx(3 * 1 / 4)
    assert min_frac(np.array([0, 0, 1]), 3) == 0.0


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(0.05, 0.95), min_size=2, max_size=5), st.integers(0, 10_000))
def test_uniform_policy_regret_is_mean_gap_times_t(means, seed):
    """E[R_T] of the uniform policy = (μ* − μ̄) T exactly; the sample mean over runs lies within 5 standard errors."""
    bd = bernoulli_bandit(means)
    r = run_mab(bd, uniform_rule(), 50, 400, seed=seed)
    exact = (max(means) - np.mean(means)) * 50
    se = r.regret[:, -1].std(ddof=1) / np.sqrt(400)
    assert abs(r.regret[:, -1].mean() - exact) <= 5 * se + 1e-12


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(0.05, 0.95), min_size=2, max_size=4).filter(lambda m: max(m) - sorted(m)[-2] > 0.05), st.integers(0, 10_000))
def test_ucb1_mean_regret_within_auer_bound(means, seed):
    """Auer et al. (2002), Thm. 1: E[R_T] ≤ 8 Σ ln T/Δ_a + (1 + π²/3) Σ Δ_a for UCB1 (α = 2); checked on the upper
    99% confidence end over 100 runs."""
    bd = bernoulli_bandit(means)
    r = run_mab(bd, ucb_rule(2.0), 200, 100, seed=seed)
    assert mean_ci(r.regret[:, -1], 0.99)[1] <= ucb1_regret_bound(bd, 200)


def test_ts_and_ucb_regret_grows_logarithmically_and_beats_uniform():
    """On the small-gap instance, TS and UCB(0.5) have sublinear regret: the regret added over the second half of T = 2000
    is < ½ of that over the first half (a linear-regret policy would add as much), with 100 runs."""
    bd = evolve_bernoulli(5, "small")
    for rule in (thompson_rule("bernoulli"), ucb_rule(0.5)):
        R = run_mab(bd, rule, 2000, 100, seed=3).regret.mean(0)
        assert R[-1] - R[999] < 0.5 * R[999]
        assert R[-1] < 0.2 * (bd.gaps.mean() * 2000)


def test_lai_robbins_constant_closed_forms():
    bd = bernoulli_bandit([0.4, 0.6])
    kl = 0.4 * np.log(0.4 / 0.6) + 0.6 * np.log(0.6 / 0.4)
    assert lai_robbins_constant(bd) == pytest.approx(0.2 / kl)
    g = gaussian_bandit([0.0, 1.0, 3.0], sigma=2.0)
    assert lai_robbins_constant(g) == pytest.approx(sum(2 * 4.0 / d for d in (3.0, 2.0)))


def test_greedy_gets_stuck_with_positive_probability():
    """Greedy pulls each arm once and then never explores: on 0.4/0.6 a sizeable fraction of runs lock onto a bad arm."""
    r = run_mab(evolve_bernoulli(5, "small"), greedy_rule(), 300, 300, seed=0)
    assert np.mean(r.opt_frac < 0.1) > 0.1


def test_regret_form_fit_recovers_a_synthetic_curve():
    t = np.arange(1, 1001)
    y = 3.0 * np.log(t) ** 1.5 / 0.2 + 0.05 * t + 2.0
    f = fit_regret_form(y, 0.2)
    assert f.alpha == pytest.approx(1.5, abs=1e-3) and f.beta == pytest.approx(0.05, abs=1e-4) and f.rmse < 1e-3


def test_distilled_learner_with_ucb_statistics_imitates_ucb():
    """With UCB's statistics as inputs, UCB's rule is a linear score wᵀφ with w ∝ (1, 1): the fitted learner points the same
    way and reproduces most of UCB's held-out choices."""
    rng = np.random.default_rng(0)
    train = [bernoulli_bandit(rng.uniform(0.1, 0.9, 4)) for _ in range(4)]
    X, Y = ucb_demonstrations(train, 150, 6, "ucb", rng=rng)
    pol = distill(X, Y, "ucb")
    assert pol.weights[0] > 0 and pol.weights[1] > 0
    assert pol.train_accuracy > 0.7
    Xm, Ym = ucb_demonstrations(train, 150, 6, "mean", rng=np.random.default_rng(0))
    assert distill(Xm, Ym, "mean").train_accuracy < pol.train_accuracy


def test_linucb_beats_uniform_and_alpha_zero_is_greedy_ridge():
    cb = low_rank_contextual_bandit(20, 5, 3, rng=np.random.default_rng(2))
    r = run_linucb(cb, 400, 10, alpha=0.5, seed=1)
    uniform = (cb.mean_rewards.max(1) - cb.mean_rewards.mean(1)).mean() * 400
    assert r.regret[:, -1].mean() < 0.5 * uniform
    with pytest.raises(ValueError, match="alpha"):
        run_linucb(cb, 10, 2, alpha=-1.0, seed=0)
