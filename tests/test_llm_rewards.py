"""Tests for rlref.llm.rewards: each length reward on hand-computed cases."""

import math

import pytest

torch = pytest.importorskip("torch")

from rlref.llm import rewards as R  # noqa: E402


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


L3 = _t([[100.0, 200.0, 300.0]])
C3 = torch.tensor([[True, True, False]])


def test_dler_truncation_and_difficulty_budgets():
    torch.testing.assert_close(R.dler_truncation_reward(L3, C3, 150.0), _t([[1.0, 0.0, 0.0]]))
    torch.testing.assert_close(R.dler_truncation_reward(L3, C3, _t([250.0])), _t([[1.0, 1.0, 0.0]]))
    torch.testing.assert_close(R.dler_difficulty_budgets(_t([0.0, 0.5, 1.0]), base_budget=400, min_budget=200), _t([400.0, 300.0, 200.0]))


def test_tldr_budget_reward():
    torch.testing.assert_close(R.tldr_budget_reward(L3, C3, 200.0, penalty=1.0), _t([[1.0, 1.0, -0.5]]))


def test_kimi_length_reward_hand_case():
    # λ = 0.5 - (L - 100)/200 = (0.5, 0, -0.5); the wrong one gets min(0, -0.5)
    torch.testing.assert_close(R.kimi_length_reward(L3, C3), _t([[0.5, 0.0, -0.5]]))
    wrong_short = R.kimi_length_reward(L3, torch.tensor([[False, True, True]]))
    assert wrong_short[0, 0].item() == 0.0  # a short wrong answer is not rewarded
    torch.testing.assert_close(R.kimi_length_reward(_t([[50.0, 50.0]]), torch.tensor([[True, False]])), _t([[0.0, 0.0]]))


def test_dapo_overlong_hand_case():
    out = R.dapo_overlong_penalty(_t([100.0, 900.0, 950.0, 1000.0, 1001.0]), max_length=1000, cache_length=100)
    torch.testing.assert_close(out, _t([0.0, 0.0, -0.5, -1.0, -1.0]))


def test_cosine_length_reward_endpoints_and_midpoint():
    ln = _t([[1e-9, 500.0, 1000.0, 1200.0]])
    c = torch.tensor([[True, True, True, True]])
    out = R.cosine_length_reward(ln, c, max_length=1000)
    torch.testing.assert_close(out, _t([[2.0, 1.5, 1.0, -10.0]]), atol=1e-9, rtol=0)
    w = R.cosine_length_reward(ln, ~c, max_length=1000)
    torch.testing.assert_close(w[0, :3], _t([-10.0, -5.0, 0.0]), atol=1e-9, rtol=0)


def test_grpo_lambda_switch():
    lr = _t([[0.8, 0.2, -0.3], [0.9, -0.1, 0.0]])
    c = torch.tensor([[True, True, False], [True, False, False]])
    torch.testing.assert_close(R.grpo_lambda_reward(c, lr, threshold=0.5), _t([[0.8, 0.2, -0.3], [1.0, 0.0, 0.0]]))


def test_hapo_state_across_steps():
    hapo = R.HistoryAwareReward(weight=1.0)
    step1 = hapo("q", _t([400.0, 200.0]), torch.tensor([True, True]))
    torch.testing.assert_close(step1, _t([1.0, 1.0]))  # no history yet: only correctness
    assert hapo.history["q"] == 200.0
    # f(L, 200) = cos(min(π/2·L/200, π)): L=100 -> cos(π/4); L=200 -> 0; L=500 -> -1, floored at -0.7 for a
    # correct response (the authors' release: a correct response always out-scores an incorrect one)
    step2 = hapo("q", _t([100.0, 200.0, 500.0, 100.0]), torch.tensor([True, True, True, False]))
    torch.testing.assert_close(step2, _t([1 + math.cos(math.pi / 4), 1.0, 0.3, 0.0]), atol=1e-12, rtol=0)
    assert hapo.history["q"] == 100.0
    assert "other" not in hapo.history


def test_curriculum_budget_and_budget_reward():
    assert R.curriculum_budget(0, 10, initial_budget=1000, final_budget=250) == pytest.approx(1000)
    assert R.curriculum_budget(5, 10, initial_budget=1000, final_budget=250) == pytest.approx(500)
    assert R.curriculum_budget(5, 10, initial_budget=1000, final_budget=250, schedule="linear") == pytest.approx(625)
    torch.testing.assert_close(R.budget_reward(L3, C3, 400.0), _t([[1.0 + 0.5 * 0.75, 1.0 + 0.5 * 0.5, 0.0]]))


def test_end_of_thinking_scaling_multiplies_eot_probability():
    z = torch.zeros(1, 3, dtype=torch.float64)
    out = R.EndOfThinkingScaling(eot_id=2, temperature=0.5)(z)
    p = torch.softmax(out, -1)
    assert p[0, 2].item() == pytest.approx(2 / 4)  # weight 2 against 1, 1
    assert torch.equal(z, torch.zeros(1, 3, dtype=torch.float64))


def test_budget_forcing():
    proc = R.BudgetForcing(eot_id=0, min_tokens=2, max_tokens=5)
    z = _t([[3.0, 1.0, 2.0], [3.0, 1.0, 2.0], [3.0, 1.0, 2.0]])
    out = proc(z, torch.tensor([1, 3, 5]))
    assert math.isinf(out[0, 0].item()) and out[0, 0].item() < 0  # too early: eot suppressed
    torch.testing.assert_close(out[1], z[1])  # inside the window: unchanged
    assert int(torch.argmax(out[2])) == 0 and bool(torch.isinf(out[2, 1:]).all())  # budget spent: eot forced
    wait = R.BudgetForcing(eot_id=0, min_tokens=2, wait_id=2)(z[:1], torch.tensor([0]))
    assert int(torch.argmax(wait[0])) == 2


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="lengths must be > 0"):
        R.kimi_length_reward(_t([[0.0, 1.0]]), torch.tensor([[True, True]]))
    with pytest.raises(ValueError, match="correct must be a bool"):
        R.kimi_length_reward(_t([[1.0, 2.0]]), torch.tensor([[1, 0]]))
    with pytest.raises(ValueError, match="cache_length"):
        R.dapo_overlong_penalty(_t([1.0]), max_length=10, cache_length=20)
    with pytest.raises(ValueError, match="budget must be > 0"):
        R.dler_truncation_reward(L3, C3, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        R.EndOfThinkingScaling(0, 0.0)
    with pytest.raises(ValueError, match="schedule"):
        R.curriculum_budget(1, 2, initial_budget=1, final_budget=1, schedule="cosine")


def test_more_bad_inputs_raise():
    with pytest.raises(ValueError, match="budget must be positive and finite"):
        R.dler_truncation_reward(L3, C3, _t([float("nan")]))
    with pytest.raises(ValueError, match="budget must be positive and finite"):
        R.tldr_budget_reward(L3, C3, _t([100.0, 200.0]))
    with pytest.raises(ValueError, match="lengths must be finite"):
        R.dapo_overlong_penalty(_t([float("nan")]), max_length=10, cache_length=2)
    with pytest.raises(ValueError, match="lengths must be finite"):
        R.cosine_length_reward(_t([[float("nan")]]), torch.tensor([[True]]), max_length=10)
    with pytest.raises(ValueError, match="at least one response"):
        R.kimi_length_reward(torch.zeros(1, 0, dtype=torch.float64), torch.zeros(1, 0, dtype=torch.bool))
    with pytest.raises(ValueError, match="length_rewards must be finite"):
        R.grpo_lambda_reward(torch.tensor([[True]]), _t([[float("nan")]]))
    with pytest.raises(ValueError, match="correct must be a bool"):
        R.grpo_lambda_reward(torch.tensor([[1.0]]), _t([[0.0]]))
    with pytest.raises(ValueError, match="threshold"):
        R.grpo_lambda_reward(torch.tensor([[True]]), _t([[0.0]]), threshold=1.5)
    with pytest.raises(ValueError, match="min_budget must be <= base_budget"):
        R.dler_difficulty_budgets(_t([0.5]), base_budget=100, min_budget=200)
    with pytest.raises(ValueError, match="group_accuracy must lie in"):
        R.dler_difficulty_budgets(_t([1.5]), base_budget=100, min_budget=50)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        R.HistoryAwareReward(weight=-1.0)
    with pytest.raises(ValueError, match="lengths must be > 0"):
        R.HistoryAwareReward()("q", _t([0.0]), torch.tensor([True]))
    with pytest.raises(ValueError, match="correct must be a bool"):
        R.HistoryAwareReward()("q", _t([1.0]), torch.tensor([1]))
    with pytest.raises(ValueError, match="eot_id 9 is outside the vocabulary"):
        R.BudgetForcing(eot_id=9)(torch.zeros(1, 3), torch.tensor([0]))
    with pytest.raises(ValueError, match="wait_id"):
        R.BudgetForcing(eot_id=0, wait_id=0)
    with pytest.raises(ValueError, match="num_thinking_tokens"):
        R.BudgetForcing(eot_id=0)(torch.zeros(1, 3), torch.tensor([0.5]))
    with pytest.raises(ValueError, match="eot_id 5 is outside"):
        R.EndOfThinkingScaling(eot_id=5, temperature=1.0)(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="step"):
        R.curriculum_budget(11, 10, initial_budget=1, final_budget=1)
