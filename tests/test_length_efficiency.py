"""The length-efficiency-toy and rl-update-sparsity reproductions' pieces: the verbose scratchpad (designed
there), that every method's config is accepted by the loop, one step of each method end to end, and the
sparsity measurement of a real (one-step) update. The reproductions themselves run in test_reproduce_seeds."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rlref.experiments import length_efficiency_toy as toy  # noqa: E402
from rlref.experiments import rl_update_sparsity as sp  # noqa: E402
from rlref.llm.train import ModSumTask, build_model, char_tokenizer, validate  # noqa: E402
from rlref.llm.train.task import Problem  # noqa: E402


def test_verbose_scratchpad_by_hand():
    p = Problem(prompt="3+5+2=", answer=0, digits=(3, 5, 2))
    assert toy.worked_pass(p) == "3+5=8;8+2=0"
    assert toy.verbose_solution(p, 1) == toy.concise_target(p) == "3+5=8;8+2=0#0"
    assert toy.verbose_solution(p, 3) == "3+5=8;8+2=0;3+5=8;8+2=0;3+5=8;8+2=0#0"
    with pytest.raises(ValueError, match="repeats"):
        toy.verbose_solution(p, 0)


def test_verbose_targets_are_correct_and_have_the_stated_token_lengths():
    """Every target passes the task's exact checker; k passes of 11 characters joined by ';', then '#d' and EOS, are
    12 k + 2 tokens of the character tokenizer (counted here by tokenizing), 14 for the concise one."""
    task, tok = ModSumTask(toy.TERMS, toy.MODULUS), char_tokenizer()
    toy._TARGET_RNG.seed(0)
    seen = set()
    for p in task.batch(300, seed=5):
        t = toy.verbose_target(p)
        assert task.check(p, t)
        k = t.count(";") // (toy.TERMS - 1) + 1
        seen.add(k)
        assert len(tok(t, add_special_tokens=False)["input_ids"]) + 1 == 12 * k + 2
    assert seen == set(toy.REPEATS)
    assert toy.concise_length() == 14


def test_zero_reward_and_slugs():
    assert toy.zero_reward([None] * 3, ["a", "b", "c"]) == [0.0, 0.0, 0.0]
    slugs = [toy.slug(m) for m in toy.METHODS]
    assert len(set(slugs)) == len(slugs) and all(s.isascii() and " " not in s for s in slugs)


@pytest.mark.parametrize("name", list(toy.METHODS))
def test_every_method_config_is_valid_for_the_loop(name):
    validate(toy.train_config({**toy.RL_CONFIG, **toy.METHODS[name]}, 0, 3), char_tokenizer())


def test_claim_groups_name_existing_methods():
    assert set(toy.BUDGETED) | set(toy.TIGHT) | set(toy.SLOW) <= set(toy.METHODS)
    assert set(toy.BUDGETED) | set(toy.SLOW) == set(toy.METHODS) - {"GRPO"}


@pytest.fixture(scope="module")
def tiny():
    tok = char_tokenizer()
    return build_model(tok, **toy.MODEL, seed=0), tok


@pytest.mark.parametrize("name", ["GRPO", "DLER", "HAPO", "GRPO-λ", "DRPO", "TLTS curriculum"])
def test_one_rl_step_of_a_method_runs_and_evaluates(tiny, name):
    model, tok = tiny
    start = {k: v.clone() for k, v in model.state_dict().items()}
    trained, rows, info = toy.run_method(model, tok, toy.METHODS[name], seed=0, steps=1)
    assert len(rows) == 1 and rows[0]["tokens"] > 0 and info["draws"] == toy.RL_CONFIG["prompts_per_step"]
    ev = toy.evaluate(trained, tok, seed=0, problems=3, samples=2)
    s = toy.summarize(ev)
    assert len(ev["accuracy"]) == 3 and 0.0 <= s["accuracy"] <= 1.0 and 1.0 <= s["length"] <= toy.MAX_NEW_TOKENS
    # a copy is trained: the shared start is left as it was
    assert trained is not model and all(torch.equal(start[k], v) for k, v in model.state_dict().items())


def test_update_measurement_of_one_real_step(tiny):
    model, tok = tiny
    before = sp._state(model)
    sft, tokens = sp.sft_same_size(model, tok, seed=0, steps=1, lr=1e-3, tokens_per_step=5 * 14)
    assert tokens == 5 * 14  # 5 concise targets of 14 tokens each
    m = sp.measure(before, sp._state(sft))
    assert 0.5 < m["changed_fp32"] <= 1.0 and m["changed_bf16"] <= m["changed_fp32"]
    assert 0.0 < m["mean_rank_ratio"] <= 1.0 and len(m["per_matrix"]) == len(before)
