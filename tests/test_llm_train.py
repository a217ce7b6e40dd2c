"""rlref.llm.train: one step == the same step written out by hand, exact micro-batching for every aggregation,
bit-for-bit resume after a kill, config validation, save_pretrained/reload, the CLI."""

from __future__ import annotations

import copy
import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rlref.llm.train import ModSumTask, Trainer, char_tokenizer, load_config, sample, train  # noqa: E402
from rlref.llm.train.loop import response_logprobs  # noqa: E402

torch.set_num_threads(1)
BASE = dict(family="grpo", steps=3, terms=2, prompts_per_step=2, group_size=4, micro_batch_size=8, max_new_tokens=6, lr=1e-2,
            progress=False, hidden=32, layers=1, heads=2)


def length_reward(problems, responses):
    """A dense test reward (a fresh tiny model is never correct): response length mod 3."""
    return [float(len(r) % 3) for r in responses]


def _cfg(**kw):
    return load_config(dict(BASE, **kw))


def test_task_checker_and_solutions():
    t = ModSumTask(terms=3)
    for p in t.batch(50, seed=1):
        assert p.answer == sum(int(c) for c in p.prompt[:-1].split("+")) % 10
        assert t.check(p, t.solution(p)) and t.check(p, t.solution(p, scratchpad=False))
        assert not t.check(p, t.solution(p, wrong=True))
    assert ModSumTask.parse("1>2#3#7") == 7 and ModSumTask.parse("12") is None and ModSumTask.parse("#") is None


def test_one_step_equals_hand_computation():
    cfg = _cfg(kl_beta=0.1, kl_estimator="k3", max_grad_norm=None, aggregation="token-mean", reward_fn="tests.test_llm_train:length_reward")
    tr = Trainer(cfg)
    with torch.no_grad():  # a reference different from the policy, so the KL term is not zero
        for p in tr.ref.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
    model0, ref = copy.deepcopy(tr.model), tr.ref
    res = tr.step(1)
    # by hand: same prompts and per-row generators, then the GRPO objective written out
    probs = [p for p in tr.task.batch(2, seed=cfg.seed * 1_000_003 + 1) for _ in range(4)]
    gens = [torch.Generator().manual_seed(((cfg.seed * 1_000_003 + 1) * 1_000_003 + i) % (2**63)) for i in range(8)]
    b = sample(model0, tr.tokenizer, [p.prompt for p in probs], max_new_tokens=6, temperature=1.0, generators=gens)
    m = b.resp_mask.double()
    texts = ["".join(tr.tokenizer.convert_ids_to_tokens([t for t, v in zip(r, mm, strict=True) if v and t != tr.tokenizer.eos_token_id]))
             for r, mm in zip(b.seq[:, b.prompt_len:].tolist(), b.resp_mask.tolist(), strict=True)]
    r = torch.tensor(length_reward(probs, texts), dtype=torch.float64).reshape(2, 4)
    adv = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-6)).reshape(-1, 1)
    logits = model0(input_ids=b.seq, attention_mask=b.attn, position_ids=(b.attn.cumsum(-1) - 1).clamp(min=0)).logits
    lp = torch.log_softmax(logits[:, b.prompt_len - 1:-1].double(), -1).gather(-1, b.seq[:, b.prompt_len:, None]).squeeze(-1)
    with torch.no_grad():
        rl = torch.log_softmax(ref(input_ids=b.seq, attention_mask=b.attn, position_ids=(b.attn.cumsum(-1) - 1).clamp(min=0)).logits[
            :, b.prompt_len - 1:-1].double(), -1).gather(-1, b.seq[:, b.prompt_len:, None]).squeeze(-1)
    ratio = torch.exp(lp - lp.detach())
    pg = -torch.minimum(ratio * adv, ratio.clamp(0.8, 1.2) * adv)
    k3 = torch.exp(rl - lp) - (rl - lp) - 1
    loss = ((pg + 0.1 * k3) * m).sum() / m.sum()
    loss.backward()
    assert res.loss == pytest.approx(loss.item(), abs=1e-6)
    assert res.reward_mean == pytest.approx(r.mean().item(), abs=1e-6)
    opt = torch.optim.AdamW(model0.parameters(), lr=cfg.lr, weight_decay=0.0)
    opt.step()
    for (name, a), bb in zip(tr.model.named_parameters(), model0.parameters(), strict=True):
        assert torch.allclose(a, bb, atol=1e-6), name


def _grads(cfg):
    tr = Trainer(cfg)
    tr.optimizer.step = lambda *a, **k: None
    res = tr.step(1)
    return res, [p.grad.clone() for p in tr.model.parameters()]


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "constant"])
def test_micro_batches_equal_full_batch(aggregation):
    kw = dict(aggregation=aggregation, constant=6.0, kl_beta=0.05, max_grad_norm=None, reward_fn="tests.test_llm_train:length_reward")
    full, g_full = _grads(_cfg(micro_batch_size=8, **kw))
    micro, g_micro = _grads(_cfg(micro_batch_size=2, **kw))
    assert micro.loss == pytest.approx(full.loss, abs=1e-6)
    assert max(float((a - b).abs().max()) for a, b in zip(g_full, g_micro, strict=True)) < 1e-6
    assert max(float(a.abs().max()) for a in g_full) > 1e-4  # the gradient is not trivially zero


@pytest.mark.parametrize("family", ["grpo", "dpo"])
def test_resume_after_kill_is_bit_for_bit(tmp_path, family):
    kw = dict(family=family, steps=4, checkpoint_every=2, reward_fn="tests.test_llm_train:length_reward",
              prompts_per_step=2 if family == "grpo" else 8, micro_batch_size=4)
    cfg = _cfg(**kw)
    full = train(cfg, tmp_path / "a")

    def kill(step, res):
        if step == 3:  # step 3 finished but not checkpointed: it must be redone
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", on_step=kill)
    resumed = train(cfg, tmp_path / "b")
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    la = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lb] == [1, 2, 3, 4]
    assert [x["loss"] for x in la] == [x["loss"] for x in lb]
    for key in ("step", "loss", "reward_mean", "response_length_mean", "kl", "entropy", "tokens_per_s"):
        assert key in la[0]
    # strict JSON: no NaN tokens (the DPO family has no KL; it is written as null)
    text = (tmp_path / "a" / "metrics.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    if family == "dpo":
        assert la[0]["kl"] is None


def test_dpo_step_runs_every_loss():
    for name in ("dpo", "ipo", "rpo"):
        tr = Trainer(_cfg(family="dpo", preference_loss=name, prompts_per_step=4, micro_batch_size=2))
        r = tr.step(1)
        assert r.loss == r.loss and r.grad_norm > 0


def bad_shape_reward(problems, responses):
    return [[0.0, 0.0]] * len(responses)


@pytest.mark.parametrize(("kw", "key"), [
    (dict(advantage="nope"), "advantage"),
    (dict(aggregation="mean"), "aggregation"),
    (dict(preference_loss="kto"), "preference_loss"),
    (dict(length_reward="nope"), "length_reward"),
    (dict(reward_fn="tests.test_llm_train:bad_shape_reward"), "reward_fn"),
    (dict(micro_batch_size=3), "micro_batch_size"),
    (dict(aggregation="constant", constant=None), "constant"),
])
def test_bad_configs_fail_before_training(kw, key):
    with pytest.raises(ValueError, match=key):
        Trainer(_cfg(**kw))


def test_unknown_key_and_pad_token():
    with pytest.raises(ValueError, match="lerning_rate"):
        load_config(dict(BASE, lerning_rate=1.0))
    with pytest.raises(ValueError, match="lerning_rate"):
        load_config("grpo_toy", ["lerning_rate=1"])
    with pytest.raises(ValueError, match="pad token"):
        Trainer(_cfg(), tokenizer=char_tokenizer(pad=False))


def test_local_checkpoint_save_and_reload(tmp_path):
    tr = Trainer(_cfg())
    tr.model.save_pretrained(tmp_path / "m")
    tr.tokenizer.save_pretrained(tmp_path / "m")
    tr2 = Trainer(_cfg(model_path=str(tmp_path / "m"), tokenizer_path=str(tmp_path / "m")))
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    b = sample(tr.model, tr.tokenizer, ["1+2="] * 2, max_new_tokens=4, temperature=1.0, generators=gens)
    with torch.no_grad():
        assert torch.allclose(response_logprobs(tr.model, b), response_logprobs(tr2.model, b), atol=1e-6)  # eager vs sdpa attention
    sd = tr2.model.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in tr.model.state_dict().items())
    assert tr2.tokenizer.pad_token_id == tr.tokenizer.pad_token_id


def test_cli_list_configs_and_run(tmp_path, capsys):
    from rlref.reproduce import main

    assert main(["train", "--list-configs"]) == 0
    assert {"grpo_toy", "dpo_toy"} <= set(capsys.readouterr().out.split())
    assert main(["train", "grpo_toy", "--out", str(tmp_path), "steps=1", "progress=false", "hidden=32", "layers=1"]) == 0
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
    assert main(["train", "grpo_toy", "advantage=nope"]) == 2


# ---- names other modules build on: sft, policy losses, length rewards, reward switch, budget schedule, self-play -----------------


def test_sft_step_is_token_mean_cross_entropy():
    tr = Trainer(_cfg(family="sft", prompts_per_step=4, micro_batch_size=2, max_grad_norm=None))
    model0 = copy.deepcopy(tr.model)
    res = tr.step(1)
    probs = tr.task.batch(4, seed=tr.cfg.seed * 1_000_003 + 1)
    ids = [[tr.tokenizer.convert_tokens_to_ids(ch) for ch in tr.task.solution(p)] + [tr.tokenizer.eos_token_id] for p in probs]
    nll, ntok = 0.0, 0
    with torch.no_grad():
        for p, r in zip(probs, ids, strict=True):  # one unpadded sequence at a time, by hand
            x = torch.tensor([[tr.tokenizer.convert_tokens_to_ids(ch) for ch in p.prompt] + r])
            logp = torch.log_softmax(model0(input_ids=x).logits[0, len(p.prompt) - 1:-1].double(), -1)
            nll -= float(logp.gather(-1, torch.tensor(r)[:, None]).sum())
            ntok += len(r)
    assert res.loss == pytest.approx(nll / ntok, abs=1e-5)
    assert res.accuracy == 1.0 and res.tokens == ntok and res.truncated_fraction == 0.0


def target_no_scratchpad(problem):
    return ModSumTask(terms=2).solution(problem, scratchpad=False)


def test_sft_custom_target():
    r = Trainer(_cfg(family="sft", prompts_per_step=4, micro_batch_size=4, sft_target="tests.test_llm_train:target_no_scratchpad")).step(1)
    assert r.response_length_mean == 3.0  # "#d" + EOS


GROUP_LOSSES = [("ppo_clip", {"dual_clip": 3.0}), ("lp_reg", {"kappa": 0.5, "neg_fraction": 0.5}), ("drpo", {}),
                ("kimi_mirror_descent", {"tau": 0.5})]


@pytest.mark.parametrize(("name", "kwargs"), GROUP_LOSSES)
def test_policy_losses_micro_batched_equal_full_batch(name, kwargs):
    kw = dict(policy_loss=name, policy_loss_kwargs=kwargs, max_grad_norm=None, reward_fn="tests.test_llm_train:length_reward")
    if name == "drpo":  # DRPO needs correct and incorrect responses in a group: the checker is replaced below
        kw.pop("reward_fn")
    full, g_full = _grads(_cfg(micro_batch_size=8, **kw))
    micro, g_micro = _grads(_cfg(micro_batch_size=4, **kw))
    assert math.isfinite(full.loss) and micro.loss == pytest.approx(full.loss, abs=1e-6)
    if name != "lp_reg":  # lp_reg's lowest-probability selection is made per micro-batch (documented)
        assert max(float((a - b).abs().max()) for a, b in zip(g_full, g_micro, strict=True)) < 1e-6
    if name != "drpo":
        assert max(float(a.abs().max()) for a in g_full) > 1e-5


def test_drpo_gradient_with_mixed_groups(monkeypatch):
    monkeypatch.setattr(ModSumTask, "check", lambda self, p, r: len(r) % 2 == 0)
    full, g_full = _grads(_cfg(micro_batch_size=8, policy_loss="drpo", max_grad_norm=None))
    micro, g_micro = _grads(_cfg(micro_batch_size=4, policy_loss="drpo", max_grad_norm=None))
    assert max(float(a.abs().max()) for a in g_full) > 1e-5
    assert max(float((a - b).abs().max()) for a, b in zip(g_full, g_micro, strict=True)) < 1e-6


@pytest.mark.parametrize("kw", [
    dict(length_reward="budget_reward", length_reward_kwargs={"budget": 4.0, "w_correct": 0.0}),
    dict(length_reward="hapo", length_reward_kwargs={"weight": 0.5}),
    dict(length_reward="kimi_length_reward", reward_switch="grpo_lambda", reward_switch_kwargs={"top_fraction": 0.5}),
    dict(length_reward="dler_truncation_reward", budget_schedule="curriculum", advantage="dler_batch_normalized",
         budget_schedule_kwargs={"initial_budget": 6.0, "final_budget": 2.0}, schedule_max_new_tokens=True),
    dict(advantage="dler_batch_normalized", advantage_kwargs={"weighting": "token"}),
])
def test_reward_pieces_run_one_step(kw, monkeypatch):
    monkeypatch.setattr(ModSumTask, "check", lambda self, p, r: len(r) % 2 == 0)
    r = Trainer(_cfg(**kw)).step(1)
    assert math.isfinite(r.loss) and 0.0 <= r.truncated_fraction <= 1.0


def test_reward_shaping_by_hand(monkeypatch):
    """budget_reward + GRPO-λ recomputed from the sampled lengths: reward_mean must match."""
    monkeypatch.setattr(ModSumTask, "check", lambda self, p, r: len(r) % 2 == 0)
    cfg = _cfg(prompts_per_step=4, micro_batch_size=4, length_reward="budget_reward", length_reward_kwargs={"budget": 5.0},
               length_coef=0.5, reward_switch="grpo_lambda", reward_switch_kwargs={"top_fraction": 0.5})
    tr = Trainer(cfg)
    model0 = copy.deepcopy(tr.model)
    res = tr.step(1)
    probs = [p for p in tr.task.batch(4, seed=1) for _ in range(4)]
    b = sample(model0, tr.tokenizer, [p.prompt for p in probs], max_new_tokens=6, temperature=1.0, generators=tr.generators(1, range(16)))
    texts = tr.decode(b.seq[:, b.prompt_len:], b.resp_mask)
    c = torch.tensor([len(t) % 2 == 0 for t in texts]).reshape(4, 4)
    ln = b.resp_mask.sum(1).double().reshape(4, 4)
    shaped = c.double() + 0.5 * (c.double() + 0.5 * c.double() * torch.relu(1 - ln / 5.0))
    acc = c.double().mean(1)
    top = torch.sort(acc, descending=True, stable=True).indices[:2]
    want = c.double().clone()
    want[top] = shaped[top]
    assert res.reward_mean == pytest.approx(float(want.mean()), abs=1e-6)
    eos = tr.tokenizer.eos_token_id
    trunc = ~((b.seq[:, b.prompt_len:] == eos) & b.resp_mask).any(1)
    assert res.truncated_fraction == pytest.approx(float(trunc.double().mean()))


def test_budget_schedule_caps_max_new_tokens():
    cfg = _cfg(steps=5, length_reward="tldr_budget_reward", budget_schedule="curriculum", schedule_max_new_tokens=True,
               budget_schedule_kwargs={"initial_budget": 6.0, "final_budget": 1.0, "schedule": "linear"})
    tr = Trainer(cfg)
    assert [tr.max_new_tokens(k) for k in range(1, 6)] == [6, 5, 4, 3, 1]  # ceil(6 - 5(k-1)/4), capped by max_new_tokens=6
    r = tr.step(5)
    assert r.response_length_mean == 1.0 and r.tokens == 8


def test_resume_bit_for_bit_with_hapo_history(tmp_path, monkeypatch):
    monkeypatch.setattr(ModSumTask, "check", lambda self, p, r: len(r) % 2 == 0)
    cfg = _cfg(steps=4, checkpoint_every=2, length_reward="hapo", length_reward_kwargs={"weight": 1.0}, terms=1, modulus=2)
    full = train(cfg, tmp_path / "a")
    assert full.extra_state["hapo_history"]  # the history is not empty, so resuming without it would differ

    def kill(step, res):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", on_step=kill)
    resumed = train(cfg, tmp_path / "b")
    assert resumed.extra_state == full.extra_state
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    ck = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert ck["extra_state"]["hapo_history"] == full.extra_state["hapo_history"]


def test_selfplay_dispatch_and_validation(monkeypatch):
    import sys
    import types

    calls = []
    fake = types.ModuleType("rlref.llm.train.selfplay")

    def algo(trainer, k, *, eta=1.0):
        calls.append((k, eta))
        return trainer.sft_step(k)

    def check_kwargs(name, kwargs):
        if set(kwargs) - {"eta"}:
            raise ValueError(f"unknown selfplay kwargs {sorted(set(kwargs) - {'eta'})}")

    fake.ALGORITHMS, fake.check_kwargs = {"inpo": algo}, check_kwargs
    import rlref.llm.train as train_pkg

    # `from rlref.llm.train import selfplay` reads the package attribute first (set once the real module was
    # imported, e.g. by collecting tests/test_llm_selfplay.py): patch both
    monkeypatch.setitem(sys.modules, "rlref.llm.train.selfplay", fake)
    monkeypatch.setattr(train_pkg, "selfplay", fake, raising=False)
    r = Trainer(_cfg(family="selfplay", selfplay_kwargs={"eta": 2.0}, prompts_per_step=4, micro_batch_size=4)).step(3)
    assert calls == [(3, 2.0)] and r.step == 3
    with pytest.raises(ValueError, match="selfplay_kwargs"):
        Trainer(_cfg(family="selfplay", selfplay_kwargs={"bogus": 1}, prompts_per_step=4, micro_batch_size=4))
    with pytest.raises(ValueError, match="selfplay_algorithm"):
        Trainer(_cfg(family="selfplay", selfplay_algorithm="nope", prompts_per_step=4, micro_batch_size=4))
    monkeypatch.setitem(sys.modules, "rlref.llm.train.selfplay", None)
    monkeypatch.delattr(train_pkg, "selfplay")
    with pytest.raises(ValueError, match="selfplay"):
        Trainer(_cfg(family="selfplay", prompts_per_step=4, micro_batch_size=4))


def bad_target(problem):
    return 3


@pytest.mark.parametrize(("kw", "key"), [
    (dict(policy_loss="gspo"), "policy_loss"),
    (dict(policy_loss_kwargs={"bogus": 1.0}), "policy_loss_kwargs"),
    (dict(policy_loss_kwargs={"eps_low": 0.1}), "policy_loss_kwargs"),
    (dict(policy_loss="kimi_mirror_descent"), "policy_loss_kwargs"),  # tau is required
    (dict(policy_loss="drpo", micro_batch_size=2), "micro_batch_size"),
    (dict(aggregation="none"), "aggregation"),
    (dict(length_reward="hapo", length_reward_kwargs={"correct_floor": 0.5}), "length_reward_kwargs"),
    (dict(length_reward="budget_reward"), "length_reward_kwargs"),  # budget missing
    (dict(reward_switch="nope"), "reward_switch"),
    (dict(reward_switch="grpo_lambda", reward_switch_kwargs={"top_fraction": 2.0}), "reward_switch_kwargs"),
    (dict(budget_schedule="curriculum", budget_schedule_kwargs={"initial_budget": 4.0, "final_budget": 2.0}), "budget_schedule"),
    (dict(budget_schedule="curriculum", length_reward="budget_reward", budget_schedule_kwargs={"initial_budget": 4.0}),
     "budget_schedule_kwargs"),
    (dict(schedule_max_new_tokens=True), "schedule_max_new_tokens"),
    (dict(advantage_kwargs={"bogus": 1}), "advantage_kwargs"),
    (dict(family="sft", micro_batch_size=2, sft_target="tests.test_llm_train:bad_target"), "sft_target"),
    (dict(family="sft", micro_batch_size=2, sft_target="nomodule"), "sft_target"),
    (dict(family="sft", micro_batch_size=2, ppo_epochs=2), "ppo_epochs"),
    (dict(distributed="tp"), "distributed"),
    (dict(length_reward_kwargs=[1]), "length_reward_kwargs"),
])
def test_bad_plugin_configs_fail_before_training(kw, key):
    with pytest.raises(ValueError, match=key):
        Trainer(_cfg(**kw))


# ---- DPO family: XPO, LD-DPO ----------------------------------------------------------------------------------------------------


def _dpo_loss(steps=1, **kw):
    """The loss of the last of ``steps`` steps (at step 1 the policy is the reference, so every DPO margin is 0)."""
    tr = Trainer(_cfg(family="dpo", prompts_per_step=4, micro_batch_size=2, max_grad_norm=None, **kw))
    return [tr.step(k) for k in range(1, steps + 1)][-1].loss


def test_ld_dpo_interpolates_and_equals_dpo_at_alpha_one():
    short = dict(rejected_scratchpad=False, steps=2)  # rejected "#d" is shorter than the worked chosen answer
    dpo = _dpo_loss(**short)
    assert _dpo_loss(preference_loss="ld_dpo", preference_kwargs={"alpha": 1.0}, **short) == pytest.approx(dpo, abs=1e-7)
    assert abs(_dpo_loss(preference_loss="ld_dpo", preference_kwargs={"alpha": 0.3}, **short) - dpo) > 1e-6
    # same-length pairs: the public length is the whole response, so LD-DPO is DPO for every alpha
    assert _dpo_loss(2, preference_loss="ld_dpo", preference_kwargs={"alpha": 0.3}) == pytest.approx(_dpo_loss(2), abs=1e-7)


def test_xpo_adds_alpha_times_policy_logp_of_reference_samples():
    cfg = _cfg(family="dpo", prompts_per_step=4, micro_batch_size=2, preference_loss="xpo", preference_kwargs={"alpha": 0.5})
    tr = Trainer(cfg)
    model0 = copy.deepcopy(tr.model)
    res = tr.step(1)
    dpo = _dpo_loss()
    probs = tr.task.batch(4, seed=1)  # the same sample ỹ ~ π_ref per prompt (stream 1 of the step's generators), scored by π_θ
    b = sample(tr.ref, tr.tokenizer, [p.prompt for p in probs], max_new_tokens=6, temperature=1.0,
               generators=tr.generators(1, range(4), stream=1))
    with torch.no_grad():
        s = (response_logprobs(model0, b) * b.resp_mask).sum(1)
    assert res.loss == pytest.approx(dpo + 0.5 * float(s.mean()), abs=1e-5)
    assert _dpo_loss(preference_loss="xpo", preference_kwargs={"alpha": 0.0}) == pytest.approx(dpo, abs=1e-7)
    with pytest.raises(ValueError, match="preference_kwargs"):
        Trainer(_cfg(family="dpo", prompts_per_step=4, micro_batch_size=2, preference_loss="xpo"))  # alpha is required


# ---- PPO epochs / mini-batches --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("epochs", "minis"), [(2, 1), (2, 2)])
def test_ppo_epochs_reuse_the_sampling_logprobs(epochs, minis):
    from rlref.llm.advantages import grpo
    from rlref.llm.losses import ppo_clip

    cfg = _cfg(ppo_epochs=epochs, ppo_mini_batches=minis, micro_batch_size=2, eps_low=0.02, eps_high=0.02, max_grad_norm=None,
               reward_fn="tests.test_llm_train:length_reward")
    tr = Trainer(cfg)
    model = copy.deepcopy(tr.model)
    res = tr.step(1)
    # by hand: one rollout, old log-probs of the sampling model, epochs x mini-batch updates of the clipped loss
    probs = [p for p in tr.task.batch(2, seed=1) for _ in range(4)]
    b = sample(model, tr.tokenizer, [p.prompt for p in probs], max_new_tokens=6, temperature=1.0, generators=tr.generators(1, range(8)))
    adv = grpo(torch.tensor(length_reward(probs, tr.decode(b.seq[:, b.prompt_len:], b.resp_mask))).reshape(2, 4)).reshape(-1)
    with torch.no_grad():
        old = response_logprobs(model, b)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    clips = []
    size = 8 // minis
    for _ in range(epochs):
        for mi in range(minis):
            rows = slice(mi * size, (mi + 1) * size)
            opt.zero_grad()
            pl = ppo_clip(response_logprobs(model, b.rows(rows)), old[rows], adv[rows], b.resp_mask[rows], eps_low=0.02, eps_high=0.02)
            pl.loss.backward()
            opt.step()
            clips.append((float(pl.clip_fraction), int(b.resp_mask[rows].sum())))
    assert clips[0][0] == 0.0 and max(c for c, _ in clips[minis:]) > 0  # the ratio is 1 at the sample, clipping starts in epoch 2
    assert res.clip_fraction == pytest.approx(sum(c * n for c, n in clips) / sum(n for _, n in clips), abs=1e-6)
    for a, bb in zip(tr.model.parameters(), model.parameters(), strict=True):
        assert torch.allclose(a, bb, atol=1e-6)


def test_one_epoch_has_no_clipping():
    assert Trainer(_cfg(reward_fn="tests.test_llm_train:length_reward", eps_low=0.02, eps_high=0.02)).step(1).clip_fraction == 0.0


# ---- KV cache -------------------------------------------------------------------------------------------------------------------


def test_cached_sampling_gives_the_same_tokens():
    tr = Trainer(_cfg(hidden=32, layers=2))
    prompts = ["1+2=", "3+3+4=", "5=", "9+9+9+1+0="] * 3  # different lengths: left padding
    for s in range(4):
        def gens(s=s):
            return [torch.Generator().manual_seed(100 * s + i) for i in range(len(prompts))]

        a = sample(tr.model, tr.tokenizer, prompts, max_new_tokens=16, temperature=1.0, generators=gens(), use_cache=True)
        b = sample(tr.model, tr.tokenizer, prompts, max_new_tokens=16, temperature=1.0, generators=gens(), use_cache=False)
        assert torch.equal(a.seq, b.seq) and torch.equal(a.attn, b.attn)
        assert a.seq.shape[1] > 12  # several cached decoding steps ran


def test_every_shipped_config_validates():
    from rlref.llm.train import shipped_configs, validate

    names = shipped_configs()
    assert {"grpo_toy", "dpo_toy", "sft_toy", "selfplay_toy", "grpo_budget_toy"} <= set(names)
    for name in names:
        validate(load_config(name), char_tokenizer())


def test_reference_when_needed_skips_the_frozen_copy_and_keeps_the_update(tmp_path):
    """reference="when_needed" with kl_beta = 0 builds no reference model (TRL's beta = 0 memory), reports kl as
    null, and takes exactly the same step as reference="always"; a KL term or the DPO family still builds one."""
    from rlref.llm.train.config import needs_reference

    kw = dict(steps=2, checkpoint_every=2, reward_fn="tests.test_llm_train:length_reward", prompts_per_step=2, micro_batch_size=4)
    a = train(_cfg(**kw), tmp_path / "a")
    b = train(_cfg(reference="when_needed", **kw), tmp_path / "b")
    assert a.ref is not None and b.ref is None
    for x, y in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(x, y)
    lines = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["kl"] is None for r in lines)
    assert needs_reference(_cfg(reference="when_needed", kl_beta=0.1))
    assert needs_reference(_cfg(reference="when_needed", family="dpo", prompts_per_step=8))
    from rlref.llm.train.config import validate

    with pytest.raises(ValueError, match="reference"):
        validate(_cfg(reference="sometimes"))
