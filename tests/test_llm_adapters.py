"""Tests for rlref.llm.adapters: TRL reward functions and loss types against TRL 1.16 itself; verl's registries.

TRL parts are skipped without TRL (``pip install -e ".[peers]"``). verl parts run against a real verl
when ``verl.trainer.ppo.core_algos`` imports (see docs/llm.md for the install line), in a subprocess so
that verl's heavy imports never leak into this process; the same adapter is also tested against a
faithful stub of verl's registry API (decorators storing the function by name, as in
verl 0.9.1 ``register_adv_est`` / ``register_policy_loss``), which always runs.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from rlref.llm import advantages, length, losses
from rlref.llm.adapters import verl as va

ROOT = Path(__file__).resolve().parents[1]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def is_correct(prompts=None, completions=None, completion_ids=None, answer=None, **kwargs):
    """A module-level (picklable) TRL-style accuracy reward used by the tests."""
    return [1.0 if a in c else 0.0 for c, a in zip(completions, answer, strict=True)]


# ============================================================================ TRL

try:
    import trl  # noqa: F401

    HAVE_TRL = True
except ImportError:  # pragma: no cover - the peers extra is absent
    HAVE_TRL = False
needs_trl = pytest.mark.skipif(not HAVE_TRL, reason="TRL not installed (pip install -e '.[peers]')")


@needs_trl
def test_length_rewards_follow_the_trl_convention_and_pickle():
    from rlref.llm.adapters.trl import LengthReward

    prompts = ["p1", "p1", "p1", "p2", "p2"]
    completions = ["12", "2 and more", "x", "4", "44444"]
    ids = [[1] * len(c) for c in completions]
    answer = ["2", "2", "2", "4", "4"]
    lens = torch.tensor([[2.0, 10.0, 1.0, 1.0, 5.0]], dtype=torch.float64)
    corr = torch.tensor([[True, True, False, True, True]])
    cases = {
        "dler_truncation": ({"budget": 3}, length.dler_truncation_reward(lens, corr, 3)),
        "tldr_budget": ({"budget": 3, "penalty": 0.5}, length.tldr_budget_reward(lens, corr, 3, penalty=0.5)),
        "cosine": ({"max_length": 8}, length.cosine_length_reward(lens, corr, max_length=8)),
        "budget": ({"budget": 6}, length.budget_reward(lens, corr, 6)),
        "dapo_overlong": ({"max_length": 8, "cache_length": 4}, length.dapo_overlong_penalty(lens, max_length=8, cache_length=4)),
    }
    for kind, (params, expected) in cases.items():
        f = LengthReward(kind, correct=is_correct, **params)
        assert f.__name__ == f"rlref_{kind}"
        out = f(prompts=prompts, completions=completions, completion_ids=ids, answer=answer, trainer_state=None)
        assert isinstance(out, list) and all(isinstance(x, float) for x in out)
        torch.testing.assert_close(torch.tensor(out, dtype=torch.float64), expected[0], atol=1e-12, rtol=0)
        g = pickle.loads(pickle.dumps(f))
        assert g.__name__ == f.__name__
        assert g(prompts=prompts, completions=completions, completion_ids=ids, answer=answer) == out
    # Kimi is group-wise: the completions of one prompt form a group
    kimi = LengthReward("kimi", correct=is_correct)
    out = kimi(prompts=prompts, completions=completions, completion_ids=ids, answer=answer)
    exp = torch.cat([length.kimi_length_reward(lens[:, :3], corr[:, :3])[0], length.kimi_length_reward(lens[:, 3:], corr[:, 3:])[0]])
    torch.testing.assert_close(torch.tensor(out, dtype=torch.float64), exp, atol=1e-12, rtol=0)
    # correctness None (TRL: not applicable) -> None (TRL turns it into NaN and ignores it)

    def maybe(prompts=None, completions=None, **kw):
        return [None, 1.0, 0.0, 1.0, 1.0]

    assert LengthReward("dler_truncation", correct=maybe, budget=3)(prompts=prompts, completions=completions, completion_ids=ids)[0] is None


@needs_trl
def test_length_reward_bad_configs_fail_at_construction():
    from rlref.llm.adapters.trl import LengthReward

    with pytest.raises(ValueError, match="kind must be one of"):
        LengthReward("nope", correct=is_correct)
    with pytest.raises(ValueError, match="needs correct"):
        LengthReward("dler_truncation", budget=3)
    with pytest.raises(ValueError, match="parameters"):
        LengthReward("dler_truncation", correct=is_correct, budgett=3)
    with pytest.raises(ValueError, match="budget"):
        LengthReward("dler_truncation", correct=is_correct, budget=-1)


SEEN: list = []


def recording_correct(prompts=None, completions=None, completion_ids=None, answer=None, **kwargs):
    SEEN.append([len(c) for c in completion_ids])
    return is_correct(prompts=prompts, completions=completions, answer=answer)


@needs_trl
def test_a_real_grpo_trainer_accepts_and_trains_with_the_rewards(tmp_path):
    """GRPOTrainer on a tiny from_config model and a local character tokenizer: one training step, and the
    rewards it logs are rlref's on the completions it generated."""
    pytest.importorskip("datasets")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rlref.llm.adapters.trl import LengthReward
    from rlref.llm.train.models import build_model, char_tokenizer

    tok = char_tokenizer()
    model = build_model(tok, hidden=16, layers=1, heads=2)
    dler = LengthReward("dler_truncation", correct=recording_correct, budget=4)
    kimi = LengthReward("kimi", correct=is_correct)
    ds = Dataset.from_dict({"prompt": ["1+1=", "2+2=", "3+3=", "1+2="], "answer": ["2", "4", "6", "3"]})
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_completion_length=6,
                      max_steps=1, report_to=[], use_cpu=True, logging_steps=1, save_strategy="no", bf16=False)
    SEEN.clear()
    trainer = GRPOTrainer(model=model, reward_funcs=[dler, kimi], args=args, train_dataset=ds, processing_class=tok)
    assert trainer.reward_func_names == ["rlref_dler_truncation", "rlref_kimi"]
    trainer.train()
    log = trainer.state.log_history[0]
    assert "rewards/rlref_kimi/mean" in log and log["step"] == 1
    assert len(SEEN) == 1 and len(SEEN[0]) == 4  # one call with the 4 completions of one prompt
    # DLER's reward for these lengths is 1[correct]·1[L <= 4]; its logged mean is over those 4 completions
    assert 0.0 <= log["rewards/rlref_dler_truncation/mean"] <= 1.0


# ----------------------------------------------------------------------------- TRL loss types


class _Acc:
    num_processes = 1
    sync_gradients = True

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


def _trl_loss(logp, old, adv, mask, *, loss_type, eps_low=0.2, eps_high=0.28, beta=0.0, ref=None, level="token", delta=None,
              max_completion_length=None, num_items_in_batch=None, ga=1, bias_kl=False, num_processes=1, spg=1):
    """TRL's own ``GRPOTrainer._compute_loss`` on tensors: a stand-in ``self`` supplies the per-token log-probs."""
    from trl.trainer.grpo_trainer import GRPOTrainer

    acc = _Acc()
    acc.num_processes = num_processes
    self = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp, torch.zeros_like(logp), None),
        aux_loss_enabled=False, top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level=level,
        beta=beta, loss_type=loss_type, epsilon_low=eps_low, epsilon_high=eps_high, use_vllm=False,
        vllm_importance_sampling_correction=False, model=SimpleNamespace(training=True), current_gradient_accumulation_steps=ga,
        accelerator=acc, max_completion_length=max_completion_length, _entropy_bonus_enabled=False,
        _metrics={"train": defaultdict(list)}, get_gamma_weights=GRPOTrainer.get_gamma_weights,
        args=SimpleNamespace(delta=delta, use_bias_correction_kl=bias_kl, steps_per_generation=spg, sapo_temperature_pos=1.0,
                             sapo_temperature_neg=1.05, vespo_k_pos=2.0, vespo_lambda_pos=3.0, vespo_k_neg=3.0, vespo_lambda_neg=2.0),
    )
    B, T = logp.shape
    inputs = {"prompt_ids": torch.zeros(B, 1, dtype=torch.long), "prompt_mask": torch.ones(B, 1, dtype=torch.long),
              "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": mask.long(),
              "advantages": adv, "old_per_token_logps": old}
    if ref is not None:
        inputs["ref_per_token_logps"] = ref
    if num_items_in_batch is not None:
        inputs["num_items_in_batch"] = torch.tensor(float(num_items_in_batch))
    return GRPOTrainer._compute_loss(self, None, inputs)


def _batch(seed=3, B=6, T=9, spread=0.4):
    g = _gen(seed)
    old = -torch.rand(B, T, generator=g, dtype=torch.float64) * 2
    logp = (old + spread * torch.randn(B, T, generator=g, dtype=torch.float64)).requires_grad_(True)
    n = torch.randint(2, T + 1, (B,), generator=g)
    mask = torch.arange(T).unsqueeze(0) < n.unsqueeze(1)
    adv = torch.randn(B, generator=g, dtype=torch.float64)
    ref = old + 0.3 * torch.randn(B, T, generator=g, dtype=torch.float64)
    return logp, old, adv, mask, ref


LOSS_CASES = [
    ("grpo", "token", {}), ("bnpo", "token", {}), ("dr_grpo", "token", {}), ("dapo", "token", {}),
    ("grpo", "sequence", {}), ("luspo", "sequence", {}), ("dapo", "token", {"delta": 1.5}), ("grpo", "sequence", {"delta": 1.4}),
    ("cispo", "token", {"eps_high": 1.3}), ("sapo", "token", {}), ("vespo", "token", {}),
    ("bnpo", "token", {"beta": 0.04}), ("dapo", "token", {"beta": 0.04, "bias_kl": True}), ("grpo", "sequence", {"beta": 0.1, "bias_kl": True}),
    ("dapo", "token", {"ga": 2, "num_processes": 2, "spg": 2}), ("sapo", "token", {"beta": 0.02, "ga": 3}),
]


@needs_trl
@pytest.mark.parametrize("loss_type,level,kw", LOSS_CASES)
def test_trl_grpo_loss_equals_trl_for_every_loss_type(loss_type, level, kw):
    from rlref.llm.adapters.trl import trl_grpo_loss

    logp, old, adv, mask, ref = _batch(sum(map(ord, loss_type + level)) % 97)
    T = logp.shape[1]
    common = {"max_completion_length": T if loss_type == "dr_grpo" else None,
              "num_items_in_batch": 3.0 * float(mask.sum()) if loss_type in ("dapo", "cispo", "vespo") else None}
    kk = dict(kw)
    eps_high = kk.pop("eps_high", 0.28)
    beta = kk.pop("beta", 0.0)
    # Finding: TRL builds SAPO's temperatures with torch.where(A > 0, 1.0, 1.05) from Python floats, i.e. in float32,
    # so τ_neg is float32(1.05) = 1.0499999523 even for fp64 inputs (a 3e-8 relative change of the loss).
    sapo_tau = {"sapo_temperature_neg": float(torch.tensor(1.05, dtype=torch.float32))} if loss_type == "sapo" else {}
    theirs = _trl_loss(logp, old, adv, mask, loss_type=loss_type, level=level, eps_high=eps_high, beta=beta,
                       ref=ref if beta else None, **common, **kk)
    ours = trl_grpo_loss(logp, old, adv, mask, loss_type=loss_type, importance_sampling_level=level, epsilon=0.2, epsilon_high=eps_high,
                         beta=beta, ref_logp=ref if beta else None, delta=kk.get("delta"), use_bias_correction_kl=kk.get("bias_kl", False),
                         gradient_accumulation_steps=kk.get("ga", 1), num_processes=kk.get("num_processes", 1),
                         steps_per_generation=kk.get("spg", 1), **sapo_tau, **common)
    g_t = torch.autograd.grad(theirs, logp)[0]
    g_o = torch.autograd.grad(ours, logp)[0]
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(g_o, g_t, atol=1e-12, rtol=1e-12)


@needs_trl
def test_trl_grpo_counts_empty_completions_rlref_skips_them():
    """Documented difference: a completion with no valid token (e.g. a tool mask over all of it) adds 0 to TRL's
    per-sequence mean but is still counted in B; rlref's seq-mean-token-mean averages over non-empty ones."""
    from rlref.llm.adapters.trl import trl_grpo_loss

    logp, old, adv, mask, _ = _batch(5)
    mask = mask.clone()
    mask[0] = False
    theirs = _trl_loss(logp, old, adv, mask, loss_type="grpo")
    ours = trl_grpo_loss(logp, old, adv, mask, loss_type="grpo", epsilon_high=0.28)
    B = logp.shape[0]
    torch.testing.assert_close(ours * (B - 1) / B, theirs, atol=1e-12, rtol=1e-12)


@needs_trl
def test_trl_loss_reference_rejects_unsupported_combinations():
    from rlref.llm.adapters.trl import trl_grpo_loss

    logp, old, adv, mask, _ = _batch(6)
    with pytest.raises(ValueError, match="luspo"):
        trl_grpo_loss(logp, old, adv, mask, loss_type="luspo")
    with pytest.raises(ValueError, match="delta must be"):
        trl_grpo_loss(logp, old, adv, mask, loss_type="bnpo", delta=1.1)
    with pytest.raises(ValueError, match="num_items_in_batch"):
        trl_grpo_loss(logp, old, adv, mask, loss_type="dapo")
    with pytest.raises(ValueError, match="sequence"):
        trl_grpo_loss(logp, old, adv, mask, loss_type="sapo", importance_sampling_level="sequence")


@needs_trl
def test_trl_rpo_is_sigmoid_plus_sft_and_rlref_rpo_is_its_length_normalized_form():
    """TRL's RPO is ``loss_type=["sigmoid", "sft"]`` (DPOTrainer sums the weighted losses); its sft term is the
    token-mean NLL of the chosen completion. rlref's rpo_loss(alpha) = dpo + alpha · that NLL: restated here."""
    from rlref.llm import preference

    g = _gen(9)
    B, T, beta = 5, 6, 0.1
    tok = -torch.rand(4, B, T, generator=g, dtype=torch.float64)
    lc = torch.randint(1, T + 1, (B,), generator=g)
    mc = torch.arange(T) < lc.unsqueeze(1)
    pc, rc = [(t * mc).sum(1) for t in tok[:2]]
    pr, rr = [t.sum(1) for t in tok[2:]]
    sigmoid = preference.dpo_loss(pc, pr, rc, rr, beta).loss
    sft = (-(tok[0] * mc).sum(1) / lc).mean()
    rpo = preference.rpo_loss(pc, pr, rc, rr, beta, chosen_lengths=lc.double(), alpha=1.0).loss
    torch.testing.assert_close(rpo, sigmoid + sft, atol=1e-12, rtol=1e-12)


# ============================================================================ verl: the adapter on a stub registry


class _StubCoreAlgos:
    """verl 0.9.1's registry API, restated: decorators that store the function under its name, and agg_loss."""

    def __init__(self):
        self.ADV_ESTIMATOR_REGISTRY, self.POLICY_LOSS_REGISTRY = {}, {}

    def register_adv_est(self, name):
        def deco(fn):
            if name in self.ADV_ESTIMATOR_REGISTRY and self.ADV_ESTIMATOR_REGISTRY[name] != fn:
                raise ValueError(f"Adv estimator {name} has already been registered")
            self.ADV_ESTIMATOR_REGISTRY[name] = fn
            return fn
        return deco

    def register_policy_loss(self, name):
        def deco(fn):
            self.POLICY_LOSS_REGISTRY[name] = fn
            return fn
        return deco

    @staticmethod
    def agg_loss(loss_mat, loss_mask, loss_agg_mode, dp_size=1, batch_num_tokens=None, global_batch_size=None, loss_scale_factor=None):
        m = loss_mask.to(loss_mat.dtype)
        if loss_agg_mode == "token-mean":
            n = m.sum() if batch_num_tokens is None else batch_num_tokens
            return (loss_mat * m).sum() / n * dp_size
        if loss_agg_mode == "seq-mean-token-mean":
            seq = (loss_mat * m).sum(-1) / (m.sum(-1) + 1e-8)
            has = (m.sum(-1) > 0).to(loss_mat.dtype)
            n = has.sum() if global_batch_size is None else global_batch_size
            return (seq * has).sum() / n * dp_size
        if loss_agg_mode == "seq-mean-token-sum":
            has = (m.sum(-1) > 0).to(loss_mat.dtype)
            n = has.sum() if global_batch_size is None else global_batch_size
            return ((loss_mat * m).sum(-1) * has).sum() / n * dp_size
        raise ValueError(loss_agg_mode)


def _verl_batch(seed=0, n_groups=4, T=7):
    g = _gen(seed)
    sizes = [3, 1, 4, 2][:n_groups]
    uid = [f"u{k}" for k, s in enumerate(sizes) for _ in range(s)]
    perm = torch.randperm(len(uid), generator=g).tolist()
    uid = [uid[i] for i in perm]  # groups interleaved, as after verl's balancing
    N = len(uid)
    n_tok = torch.randint(1, T + 1, (N,), generator=g)
    mask = (torch.arange(T).unsqueeze(0) < n_tok.unsqueeze(1)).long()  # int64, as verl
    scores = torch.randint(0, 2, (N,), generator=g).double()
    rewards = torch.zeros(N, T, dtype=torch.float64)
    rewards[torch.arange(N), n_tok - 1] = scores  # outcome reward on the last token
    import numpy as np

    return rewards, mask, np.array(uid, dtype=object), scores, n_tok


def test_register_adds_every_estimator_and_loss_with_the_prefix():
    stub = _StubCoreAlgos()
    names = va.register(prefix="rlref_", core_algos=stub)
    assert set(names["adv_estimators"]) <= set(stub.ADV_ESTIMATOR_REGISTRY) and set(names["policy_losses"]) <= set(stub.POLICY_LOSS_REGISTRY)
    assert {"rlref_grpo", "rlref_rloo", "rlref_kimi_grpo", "rlref_dler", "rlref_grpo_lambda"} <= set(stub.ADV_ESTIMATOR_REGISTRY)
    assert {"rlref_ppo_clip", "rlref_gspo", "rlref_cispo", "rlref_sapo"} <= set(stub.POLICY_LOSS_REGISTRY)
    assert va.register(prefix="rlref_", core_algos=stub) == names  # idempotent (verl raises on a different fn)


def test_verl_grpo_estimator_matches_verl_semantics_on_ragged_groups():
    rewards, mask, uid, scores, _ = _verl_batch(1)
    adv, ret = va.make_adv_estimator("grpo")(token_level_rewards=rewards, response_mask=mask, index=uid, config=None)
    assert adv.shape == rewards.shape and torch.equal(adv, ret)
    # by hand, verl's rule: groups >= 2: (s − mean)/(std + 1e-6) (Bessel); single response: s/(1 + 1e-6)
    exp = torch.empty_like(scores)
    for key in dict.fromkeys(uid.tolist()):
        pos = [i for i, k in enumerate(uid.tolist()) if k == key]
        s = scores[pos]
        exp[pos] = s / (1 + 1e-6) if len(pos) == 1 else ((s - s.mean()) / (s.std() + 1e-6) if s.max() > s.min() else 0.0 * s)
    torch.testing.assert_close(adv, exp.unsqueeze(1) * mask, atol=1e-12, rtol=0)
    rl, _ = va.make_adv_estimator("grpo", single_response="rlref")(token_level_rewards=rewards, response_mask=mask, index=uid)
    single = [i for i, k in enumerate(uid.tolist()) if uid.tolist().count(k) == 1]
    assert bool((rl[single] == 0).all())


def test_verl_length_estimators_feed_rlref_length_rewards():
    rewards, mask, uid, scores, n_tok = _verl_batch(2)
    adv, _ = va.make_adv_estimator("kimi_grpo", single_response="rlref")(token_level_rewards=rewards, response_mask=mask, index=uid)
    g = advantages.group_by_index(scores, uid.tolist())
    L = g.pack(n_tok.double())
    c = g.pack(scores > 0.5)
    r = g.rewards + length.kimi_length_reward(L, c & g.mask)
    exp = g.ungroup(advantages.grpo(r, g.mask))
    torch.testing.assert_close(adv[:, 0], exp, atol=1e-12, rtol=0)


def test_verl_dler_and_grpo_lambda_and_rloo_estimators():
    rewards, mask, uid, scores, n_tok = _verl_batch(3)
    g = advantages.group_by_index(scores, uid.tolist())
    L, c = g.pack(n_tok.double()), g.pack(scores > 0.5)
    # DLER: truncation reward at the budget, then DLER's batch normalization with verl's token weighting
    adv, _ = va.make_adv_estimator("dler", budget=4)(token_level_rewards=rewards, response_mask=mask, index=uid)
    shaped = length.dler_truncation_reward(L, c & g.mask, 4)
    exp = g.ungroup(length.dler_batch_normalized(shaped, g.mask, weighting="token", lengths=L))
    torch.testing.assert_close(adv[:, 0], exp, atol=1e-12, rtol=0)
    # rloo: verl's raw score for the single-response group, rlref's leave-one-out elsewhere; rlref's rule refuses it
    a, _ = va.make_adv_estimator("rloo")(token_level_rewards=rewards, response_mask=mask, index=uid)
    alone = [i for i, k in enumerate(uid.tolist()) if uid.tolist().count(k) == 1]
    torch.testing.assert_close(a[alone, 0], scores[alone])
    with pytest.raises(ValueError, match="at least 2"):
        va.make_adv_estimator("rloo", single_response="rlref")(token_level_rewards=rewards, response_mask=mask, index=uid)
    # GRPO-lambda ranks groups by accuracy: ragged groups are refused, equal ones follow grpo_lambda_reward
    with pytest.raises(ValueError, match="equal group sizes"):
        va.make_adv_estimator("grpo_lambda")(token_level_rewards=rewards, response_mask=mask, index=uid)
    import numpy as np

    eq = np.array(["a", "b", "a", "b", "c", "c"], dtype=object)
    r6, m6 = rewards[:6], mask[:6]
    a6, _ = va.make_adv_estimator("grpo_lambda", top_fraction=0.5)(token_level_rewards=r6, response_mask=m6, index=eq)
    g6 = advantages.group_by_index(r6.sum(1), eq.tolist())
    L6, c6 = g6.pack(m6.sum(1).double()), g6.pack(r6.sum(1) > 0.5)
    sw = length.grpo_lambda_reward(c6, g6.rewards + length.kimi_length_reward(L6, c6), top_fraction=0.5)
    torch.testing.assert_close(a6[:, 0], g6.ungroup(advantages.grpo(sw)), atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="index"):
        va.make_adv_estimator("grpo")(token_level_rewards=rewards, response_mask=mask)


def test_verl_policy_loss_is_rlref_per_token_loss_through_agg_loss():
    stub = _StubCoreAlgos()
    logp = (-torch.rand(5, 6, generator=_gen(3), dtype=torch.float64)).requires_grad_(True)
    old = logp.detach() + 0.2 * torch.randn(5, 6, generator=_gen(4), dtype=torch.float64)
    adv = torch.randn(5, 1, generator=_gen(5), dtype=torch.float64).expand(5, 6)
    mask = (torch.arange(6).unsqueeze(0) < torch.tensor([[6], [3], [1], [5], [2]])).long()
    cfg = SimpleNamespace(clip_ratio=0.2, clip_ratio_low=None, clip_ratio_high=0.28, clip_ratio_c=3.0,
                          global_batch_info={"dp_size": 2, "batch_num_tokens": 40, "global_batch_size": None})
    fn = va.make_policy_loss("ppo_clip", agg_loss=stub.agg_loss)
    loss, metrics = fn(old_log_prob=old, log_prob=logp, advantages=adv, response_mask=mask, loss_agg_mode="token-mean", config=cfg,
                       rollout_is_weights=None)
    per_tok = losses.ppo_clip(logp, old, adv, mask, eps_low=0.2, eps_high=0.28, dual_clip=3.0, aggregation="none").loss
    torch.testing.assert_close(loss, per_tok.sum() / 40 * 2, atol=1e-12, rtol=0)
    assert {"actor/pg_clipfrac", "actor/ppo_kl", "actor/pg_clipfrac_lower"} <= set(metrics)


# ============================================================================ verl: the real thing (subprocess)

VERL_SITE = os.environ.get("RLREF_VERL_SITE", "/tmp/verl_site")


def _verl_available() -> bool:
    code = "import verl.trainer.ppo.core_algos"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([VERL_SITE, str(ROOT)]))
    try:
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300, cwd=ROOT).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


@pytest.mark.slow
def test_register_into_real_verl_and_match_its_own_estimators_and_losses():
    """In a subprocess with verl importable (``RLREF_VERL_SITE``, default /tmp/verl_site): register, then compare
    rlref_grpo/rlref_rloo/rlref_dr_grpo with verl's grpo/rloo/grpo(norm_adv_by_std_in_grpo=False) on
    ragged, interleaved groups, and rlref_ppo_clip/rlref_gspo/rlref_cispo/rlref_sapo with verl's vanilla/gspo/
    cispo/sapo through verl's own agg_loss."""
    if not _verl_available():
        pytest.skip(f"verl not importable from {VERL_SITE} (see docs/llm.md for the install line)")
    script = textwrap.dedent(r'''
        import numpy as np, torch
        from omegaconf import OmegaConf
        import verl.trainer.ppo.core_algos as ca
        from verl.workers.config import ActorConfig
        from rlref.llm.adapters import verl as va
        names = va.register(prefix="rlref_")
        g = torch.Generator().manual_seed(0)
        sizes = [3, 1, 4, 2, 5]
        uid = np.array([f"u{k}" for k, s in enumerate(sizes) for _ in range(s)], dtype=object)[torch.randperm(15, generator=g).numpy()]
        N, T = len(uid), 8
        n_tok = torch.randint(1, T + 1, (N,), generator=g)
        mask = (torch.arange(T)[None] < n_tok[:, None]).long()
        scores = torch.randn(N, generator=g, dtype=torch.float64)
        rew = torch.zeros(N, T, dtype=torch.float64); rew[torch.arange(N), n_tok - 1] = scores
        cases = [("rlref_grpo", "grpo", {}), ("rlref_rloo", "rloo", {}), ("rlref_dr_grpo", "grpo", {"norm_adv_by_std_in_grpo": False})]
        for ours, theirs, kw in cases:
            a, _ = ca.get_adv_estimator_fn(ours)(token_level_rewards=rew, response_mask=mask, index=uid, config=None)
            b, _ = ca.get_adv_estimator_fn(theirs)(token_level_rewards=rew.clone(), response_mask=mask, index=uid, config=None, **kw)
            # verl's single-response divisor is float32(1.0) + 1e-6 = 1.00000095 (a 1e-8 relative difference); the rest is exact
            err = float((a - b).abs().max()); assert err < 1e-7, (ours, err); print(ours, "max |diff|", err)
        logp = (-torch.rand(N, T, generator=g, dtype=torch.float64)).requires_grad_(True)
        old = logp.detach() + 0.1 * torch.randn(N, T, generator=g, dtype=torch.float64)
        adv = torch.randn(N, 1, generator=g, dtype=torch.float64).expand(N, T) * mask
        cfg = ActorConfig(strategy="fsdp", clip_ratio=0.2, clip_ratio_high=0.28, clip_ratio_c=3.0, tau_pos=1.0, tau_neg=1.05,
                          ppo_micro_batch_size_per_gpu=1, rollout_n=1)
        cfg.global_batch_info.update({"dp_size": 1, "batch_num_tokens": None, "global_batch_size": None})
        for ours, theirs, mode in [("rlref_ppo_clip", "vanilla", "token-mean"), ("rlref_ppo_clip", "vanilla", "seq-mean-token-mean"),
                                   ("rlref_gspo", "gspo", "seq-mean-token-mean"), ("rlref_cispo", "cispo", "token-mean"),
                                   ("rlref_sapo", "sapo", "seq-mean-token-mean")]:
            kw = dict(old_log_prob=old, log_prob=logp, advantages=adv, response_mask=mask.bool(), loss_agg_mode=mode, config=cfg)
            la, _ = ca.get_policy_loss_fn(ours)(**kw)
            lb, _ = ca.get_policy_loss_fn(theirs)(**kw)
            ga, = torch.autograd.grad(la, logp); gb, = torch.autograd.grad(lb, logp)
            err = max(float((la - lb).abs()), float((ga - gb).abs().max())); assert err < 1e-10, (ours, mode, err); print(ours, mode, err)
        kp = ca.kl_penalty(logp, old, "k3+"); from rlref.llm.divergences import kl_penalty
        ko = kl_penalty(logp, old, "k3+")
        gk1, = torch.autograd.grad(kp.sum(), logp); gk2, = torch.autograd.grad(ko.sum(), logp)
        assert float((kp - ko).abs().max()) < 1e-12 and float((gk1 - gk2).abs().max()) < 1e-12
        print("OK", sorted(names["adv_estimators"]), sorted(names["policy_losses"]))
    ''')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([VERL_SITE, str(ROOT)]), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    print(res.stdout)
    assert "OK" in res.stdout


def test_aggregation_none_lets_verl_agg_loss_do_the_data_parallel_normalization():
    """Two simulated data-parallel ranks: each reduces its rlref per-token matrix with verl's agg_loss(dp_size=2,
    global token / sequence counts); DDP averages the ranks' gradients, so the mean of the rank losses must equal
    the full-batch loss, for token-mean and the sequence means (value and gradient)."""
    stub = _StubCoreAlgos()
    g = _gen(8)
    old = -torch.rand(6, 5, generator=g, dtype=torch.float64)
    logp = (old + 0.2 * torch.randn(6, 5, generator=g, dtype=torch.float64)).requires_grad_(True)
    a = torch.randn(6, generator=g, dtype=torch.float64)
    mask = torch.arange(5) < torch.tensor([[5], [1], [3], [2], [4], [5]])
    for mode in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum"):
        full = losses.ppo_clip(logp, old, a, mask, aggregation=mode).loss
        info = {"dp_size": 2, "batch_num_tokens": mask.sum(), "global_batch_size": 6}
        ranks = [stub.agg_loss(losses.ppo_clip(logp[s], old[s], a[s], mask[s], aggregation="none").loss, mask[s], mode, **info)
                 for s in (slice(0, 3), slice(3, 6))]
        dp = (ranks[0] + ranks[1]) / 2
        # verl's seq-mean-token-mean divides each sequence by |o| + 1e-8 (a relative 1e-8/|o| difference)
        tol = 2e-8 if mode == "seq-mean-token-mean" else 1e-12
        torch.testing.assert_close(dp, full, atol=0, rtol=tol)
        torch.testing.assert_close(torch.autograd.grad(dp, logp)[0], torch.autograd.grad(full, logp)[0], atol=1e-14, rtol=tol)
