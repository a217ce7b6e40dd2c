"""Peer cross-checks of rlref.llm against TRL (skipped when TRL is absent: ``pip install -e ".[peers]"``).

Each test feeds identical tensors to TRL's own function and to rlref's, and names the difference
where the two differ by design. TRL's GRPO loss lives inside ``GRPOTrainer._compute_loss`` (a method
that needs a model); the tests call that very method on a stand-in ``self`` whose
``_get_per_token_logps_and_entropies`` returns the test's log-probs, so TRL's code computes the loss
from tensors without a model. Read: TRL 1.16.0 (PyPI), trl/trainer/grpo_trainer.py
(``_compute_loss``, ``_generate_and_score_completions``), trl/trainer/utils.py
(``selective_log_softmax``, ``entropy_from_logits``, ``nanstd``), trl/rewards/other_rewards.py
(``get_soft_overlong_punishment``), trl/trainer/dpo_trainer.py (the ``ipo`` loss type).
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

trl = pytest.importorskip("trl")
from trl.rewards import get_soft_overlong_punishment  # noqa: E402
from trl.trainer.grpo_trainer import GRPOTrainer  # noqa: E402
from trl.trainer.utils import entropy_from_logits, nanstd, selective_log_softmax  # noqa: E402

from rlref.llm import advantages, length, losses, preference  # noqa: E402
from rlref.llm.divergences import kl_penalty  # noqa: E402
from rlref.llm.logprobs import token_entropy, token_logprobs  # noqa: E402


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_selective_log_softmax_and_entropy_match_trl():
    g = _gen(1)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        logits = (3.0 * torch.randn(4, 7, 11, generator=g, dtype=torch.float64)).to(dtype)
        tokens = torch.randint(0, 11, (4, 7), generator=g)
        for temp in (1.0, 0.7):
            ours = token_logprobs(logits, tokens, temperature=temp)
            theirs = selective_log_softmax(logits / temp, tokens)
            torch.testing.assert_close(ours, theirs, atol=tol, rtol=tol)
        torch.testing.assert_close(token_entropy(logits), entropy_from_logits(logits), atol=tol, rtol=tol)


# ----------------------------------------------------------------------------- GRPO advantages


def _trl_group_advantages(rewards: torch.Tensor, scale: str) -> torch.Tensor:
    """TRL 1.16 ``_generate_and_score_completions`` (sum_then_normalize), restated on a [B, G] reward matrix:
    A = (r − mean_g) / (std + 1e-4), std = ``nanstd`` (Bessel) over the group ("group") or the batch ("batch")."""
    B, G = rewards.shape
    r = rewards.reshape(-1)
    mean = torch.nanmean(r.view(-1, G), dim=1).repeat_interleave(G)
    std = nanstd(r.view(-1, G), dim=1).repeat_interleave(G) if scale == "group" else nanstd(r).expand_as(r)
    adv = r - mean
    if scale != "none":
        adv = adv / (std + 1e-4)
    return adv.view(B, G)


def test_grpo_advantages_match_trl_with_its_eps():
    g = _gen(2)
    r = torch.randn(5, 6, generator=g, dtype=torch.float64)
    r[2] = 0.7  # a flat group: rlref gives exactly 0, TRL (r − mean)/1e-4 = O(1e-12) from the mean's rounding
    ours, theirs = advantages.grpo(r, eps=1e-4), _trl_group_advantages(r, "group")
    # Finding: TRL's nanstd computes Bessel's factor count/(count − 1) from int64 counts, which torch divides in
    # float32 (6/5 -> 1.2000000477), so its fp64 std carries a ~2e-8 relative error. rlref matches torch.std.
    assert bool((ours[2] == 0).all()) and 0 < theirs[2].abs().max() < 1e-11
    keep = torch.tensor([0, 1, 3, 4])
    torch.testing.assert_close(ours[keep], ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4))[keep], atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(ours, theirs, atol=1e-7, rtol=1e-7)
    f32 = torch.tensor(6, dtype=torch.long) / torch.tensor(5, dtype=torch.long)
    assert f32.dtype == torch.float32
    torch.testing.assert_close(nanstd(r, dim=1), torch.sqrt(r.var(1, unbiased=False) * f32.double()), atol=1e-15, rtol=1e-15)
    assert (ours - theirs).abs().max() > 1e-9
    torch.testing.assert_close(advantages.dr_grpo(r), _trl_group_advantages(r, "none"), atol=1e-12, rtol=1e-12)
    # scale_rewards="batch": group mean over batch std (Bessel, TRL) vs rlref's group_mean_batch_std
    # (the population std of the group-centred rewards, Tricks-or-Traps' form): documented difference.
    b = _trl_group_advantages(r, "batch")
    centred = r - r.mean(dim=1, keepdim=True)
    torch.testing.assert_close(b, centred / (nanstd(r) + 1e-4), atol=1e-12, rtol=1e-12)
    assert not torch.allclose(advantages.group_mean_batch_std(r, eps=1e-4), b, atol=1e-6)
    # rlref's default eps (1e-6) differs from TRL's 1e-4 by a relative 1e-4/std
    assert (advantages.grpo(r) - theirs).abs().max() > 1e-6


# ----------------------------------------------------------------------------- GRPO loss types


class _Acc:
    num_processes = 1
    sync_gradients = True

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


def _trl_grpo_loss(loss_type: str, logp: torch.Tensor, old: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, *,
                   eps_low: float = 0.2, eps_high: float = 0.28, beta: float = 0.0, ref: torch.Tensor | None = None,
                   max_completion_length: int | None = None, num_items_in_batch: float | None = None,
                   level: str = "token") -> torch.Tensor:
    """TRL's ``GRPOTrainer._compute_loss`` run on tensors: a stand-in ``self`` supplies the per-token log-probs."""
    self = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp, torch.zeros_like(logp), None),
        aux_loss_enabled=False, top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level=level,
        beta=beta, loss_type=loss_type, epsilon_low=eps_low, epsilon_high=eps_high, use_vllm=False,
        vllm_importance_sampling_correction=False, model=SimpleNamespace(training=True), current_gradient_accumulation_steps=1,
        accelerator=_Acc(), max_completion_length=max_completion_length, _entropy_bonus_enabled=False,
        _metrics={"train": defaultdict(list)},
        args=SimpleNamespace(delta=None, use_bias_correction_kl=False, steps_per_generation=1),
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


def _batch(seed: int = 3, B: int = 6, T: int = 9):
    g = _gen(seed)
    old = -torch.rand(B, T, generator=g, dtype=torch.float64) * 2
    logp = (old + 0.4 * torch.randn(B, T, generator=g, dtype=torch.float64)).requires_grad_(True)
    lengths = torch.randint(2, T + 1, (B,), generator=g)
    mask = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    adv = torch.randn(B, generator=g, dtype=torch.float64)
    return logp, old, adv, mask


@pytest.mark.parametrize("loss_type,aggregation", [("grpo", "seq-mean-token-mean"), ("bnpo", "token-mean"),
                                                  ("dr_grpo", "constant"), ("dapo", "token-mean"), ("luspo", "seq-mean-token-sum")])
def test_trl_grpo_loss_types_equal_ppo_clip_with_an_aggregation(loss_type, aggregation):
    """TRL's clipped loss types are rlref's ppo_clip (clip-higher) with one aggregation each: value and gradient."""
    logp, old, adv, mask = _batch()
    T = logp.shape[1]
    kw = {}
    if loss_type == "dr_grpo":
        kw["max_completion_length"] = T
    if loss_type == "dapo":
        kw["num_items_in_batch"] = float(mask.sum())  # one process, one micro-batch: the global token count is local
    theirs = _trl_grpo_loss(loss_type, logp, old, adv.unsqueeze(1).expand(-1, T) if loss_type == "dapo" else adv, mask, **kw)
    (g_t,) = torch.autograd.grad(theirs, logp)
    ours = losses.ppo_clip(logp, old, adv, mask, eps_low=0.2, eps_high=0.28, aggregation=aggregation,
                           constant=float(T) if aggregation == "constant" else None).loss
    (g_o,) = torch.autograd.grad(ours, logp)
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(g_o, g_t, atol=1e-12, rtol=1e-12)


def test_trl_dapo_normalizes_by_the_global_token_count():
    """dapo divides by ``num_items_in_batch`` (tokens of the whole generation batch), not the micro-batch's."""
    logp, old, adv, mask = _batch(4)
    n_local = float(mask.sum())
    theirs = _trl_grpo_loss("dapo", logp, old, adv, mask, num_items_in_batch=3 * n_local)
    ours = losses.ppo_clip(logp, old, adv, mask, eps_low=0.2, eps_high=0.28, aggregation="token-mean").loss
    torch.testing.assert_close(3 * theirs, ours, atol=1e-12, rtol=1e-12)


def test_trl_kl_term_is_k3_to_the_reference_added_per_token():
    """With beta > 0 TRL adds β·k3(π_θ, π_ref) per token before aggregation (k3 = e^{ref−logp} − (ref−logp) − 1)."""
    logp, old, adv, mask = _batch(5)
    g = _gen(6)
    ref = old + 0.3 * torch.randn(old.shape, generator=g, dtype=torch.float64)
    beta = 0.04
    theirs = _trl_grpo_loss("bnpo", logp, old, adv, mask, beta=beta, ref=ref)
    pg = losses.ppo_clip(logp, old, adv, mask, eps_low=0.2, eps_high=0.28, aggregation="token-mean").loss
    kl = losses.aggregate(kl_penalty(logp, ref, "k3"), mask, aggregation="token-mean")
    torch.testing.assert_close(pg + beta * kl, theirs, atol=1e-12, rtol=1e-12)


def test_trl_sequence_level_importance_sampling_is_gspo():
    """importance_sampling_level="sequence": one ratio per response, exp of the token-mean log-ratio (GSPO), i.e.
    rlref's gspo_clip, and also the same loop over responses written out (value and gradient)."""
    logp, old, adv, mask = _batch(7)
    theirs = _trl_grpo_loss("grpo", logp, old, adv, mask, level="sequence")
    per = []
    for b in range(logp.shape[0]):
        m = mask[b]
        s = torch.exp((logp[b][m] - old[b][m]).mean())
        per.append(-torch.minimum(s * adv[b], torch.clamp(s, 0.8, 1.28) * adv[b]))
    torch.testing.assert_close(torch.stack(per).mean(), theirs, atol=1e-12, rtol=1e-12)
    ours = losses.gspo_clip(logp, old, adv, mask, eps_low=0.2, eps_high=0.28).loss
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(torch.autograd.grad(ours, logp)[0], torch.autograd.grad(theirs, logp)[0], atol=1e-12, rtol=1e-12)


# ----------------------------------------------------------------------------- rewards and preference losses


def test_soft_overlong_punishment_matches_trl():
    lens = torch.arange(1, 130, dtype=torch.float64)  # rlref requires lengths > 0
    theirs = torch.tensor(get_soft_overlong_punishment(100, 20)([[1] * int(n) for n in lens]), dtype=torch.float64)
    torch.testing.assert_close(length.dapo_overlong_penalty(lens, max_length=100, cache_length=20), theirs, atol=1e-12, rtol=0)


def test_trl_ipo_is_rlref_ipo_on_length_averaged_logps():
    """TRL's ``ipo`` divides each sequence's log-ratio by its completion length (confirmed with the IPO authors,
    per TRL's comment); rlref's ipo_loss takes whatever sequence log-probs it is given, so TRL's loss is
    ipo_loss on token-averaged log-probs. Restated from dpo_trainer.py (``loss_type == "ipo"``)."""
    g = _gen(8)
    B, T, beta = 4, 7, 0.1
    tok = -torch.rand(4, B, T, generator=g, dtype=torch.float64)
    lc = torch.randint(1, T + 1, (B,), generator=g)
    lr = torch.randint(1, T + 1, (B,), generator=g)
    mc = torch.arange(T) < lc.unsqueeze(1)
    mr = torch.arange(T) < lr.unsqueeze(1)
    pc, rc = [(t * mc).sum(1) for t in tok[:2]]
    pr, rr = [(t * mr).sum(1) for t in tok[2:]]
    trl_losses = ((pc - rc) / lc - (pr - rr) / lr - 1 / (2 * beta)) ** 2
    ours = preference.ipo_loss(pc / lc, pr / lr, rc / lc, rr / lr, beta)
    torch.testing.assert_close(ours.losses, trl_losses, atol=1e-12, rtol=1e-12)
    assert not torch.allclose(preference.ipo_loss(pc, pr, rc, rr, beta).losses, trl_losses)
