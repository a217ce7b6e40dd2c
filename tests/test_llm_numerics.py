"""rlref.llm under hostile numerics (issue #11): extreme dtypes, NaN gradients, −inf/NaN logits,
meta tensors, overflowing PPO ratios, the messages, and the masks/lengths users pass.

Each test names the issue item it pins; every golden is a closed form written here."""

import math

import pytest

torch = pytest.importorskip("torch")

from rlref.llm import advantages as adv  # noqa: E402

SQ = 1.0 / math.sqrt(2.0)


# ----------------------------------------------------------------------------- item 6
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_item6_half_precision_group_normalizers_do_not_overflow(dtype):
    """Two rewards (0, 600): unbiased std 300·√2 gives GRPO ±1/√2; population std 300 gives ±1.
    In fp16, 300² = 9e4 overflows (max 65504), which used to make every advantage exactly 0."""
    r = torch.tensor([[0.0, 600.0]], dtype=dtype)
    tol = dict(atol=4e-3, rtol=0)
    torch.testing.assert_close(adv.grpo(r).float(), torch.tensor([[-SQ, SQ]]), **tol)
    torch.testing.assert_close(adv.reinforce_pp(r).float(), torch.tensor([[-1.0, 1.0]]), **tol)
    torch.testing.assert_close(adv.group_mean_batch_std(r).float(), torch.tensor([[-1.0, 1.0]]), **tol)
    assert adv.grpo(r).dtype == dtype


def test_item6_float64_rewards_of_1e200():
    """(−1e200, 1e200): squaring overflows fp64 (1e400); scaled statistics give ±1/√2 and ±1."""
    r = torch.tensor([[-1e200, 1e200]], dtype=torch.float64)
    torch.testing.assert_close(adv.grpo(r), torch.tensor([[-SQ, SQ]], dtype=torch.float64))
    torch.testing.assert_close(adv.reinforce_pp(r), torch.tensor([[-1.0, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(adv.group_mean_batch_std(r), torch.tensor([[-1.0, 1.0]], dtype=torch.float64))
    # a batch of two groups: DLER's batch z-score of the group-centered rewards (±1e200 each) is ±1
    r2 = torch.tensor([[-1e200, 1e200], [1e200, -1e200]], dtype=torch.float64)
    torch.testing.assert_close(adv.dler_batch_normalized(r2), torch.tensor([[-1.0, 1.0], [1.0, -1.0]], dtype=torch.float64))
    # the mean of near-max values must not overflow either: rloo of (1e308, 1e308, 0)
    r3 = torch.tensor([[1e308, 1e308, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(adv.rloo(r3), torch.tensor([[0.5e308, 0.5e308, -1e308]], dtype=torch.float64))


# ----------------------------------------------------------------------------- item 7
@pytest.mark.parametrize("fn", [adv.grpo, adv.group_mean_batch_std, adv.reinforce_pp, adv.dler_batch_normalized, adv.rloo])
def test_item7_flat_group_has_finite_gradient(fn):
    """A group whose rewards are all equal (common with verifiable 0/1 rewards) has advantage 0 and
    a finite — not NaN (the backward of sqrt(0)) — gradient w.r.t. its rewards; zero where only the
    group's own statistics see it (not for the batch std of group_mean_batch_std, which the flat
    group's rewards do move). eps=0 where the estimator has one, so the std is exactly 0 there."""
    r = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 3.0]], dtype=torch.float64, requires_grad=True)
    kw = {"eps": 0.0} if fn is not adv.rloo else {}
    out = fn(r, **kw) if fn is not adv.reinforce_pp else fn(r[:1], **kw)
    w = torch.arange(1.0, out.numel() + 1, dtype=torch.float64).reshape(out.shape)
    (out * w).sum().backward()
    assert torch.isfinite(r.grad).all()
    if fn is not adv.group_mean_batch_std:
        assert torch.equal(r.grad[0], torch.zeros(3, dtype=torch.float64))


def test_item7_grpo_gradient_matches_the_closed_form_on_a_non_flat_group():
    """Next to a flat group, the non-flat group's gradient is the derivative of (r − r̄)/s (unbiased s),
    ∂A_i/∂r_j = (δ_ij − 1/n)/s − (r_i − r̄)(r_j − r̄)/((n − 1) s³), written out here."""
    vals = [0.0, 1.0, 3.0]
    r = torch.tensor([[2.0, 2.0, 2.0], vals], dtype=torch.float64, requires_grad=True)
    adv.grpo(r, eps=0.0)[1, 0].backward()
    n, mean = 3, sum(vals) / 3
    s = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    want = [((1.0 if j == 0 else 0.0) - 1 / n) / s - (vals[0] - mean) * (vals[j] - mean) / ((n - 1) * s**3) for j in range(3)]
    torch.testing.assert_close(r.grad[1], torch.tensor(want, dtype=torch.float64))
    assert torch.equal(r.grad[0], torch.zeros(3, dtype=torch.float64))


# ----------------------------------------------------------------------------- items 8 and 9
def test_item8_minus_inf_logits_give_the_gradient_of_the_reduced_vocabulary():
    """A −inf logit (a vocabulary mask) is a token of probability 0: the entropy, the KL and their
    gradients equal those of the vocabulary without that token (computed here on the reduced logits),
    and the masked token's own gradient is 0. Before: the forward was finite, the gradients NaN."""
    from rlref.llm import losses
    from rlref.llm.logprobs import token_entropy

    base = torch.tensor([[0.3, -1.2, 0.7]], dtype=torch.float64)
    ref = torch.tensor([[0.1, 0.4, -0.5]], dtype=torch.float64)
    z = torch.cat([base, torch.full((1, 1), -float("inf"), dtype=torch.float64)], 1).requires_grad_(True)
    zr = torch.cat([ref, torch.zeros(1, 1, dtype=torch.float64)], 1)
    small = base.clone().requires_grad_(True)
    h, h_small = token_entropy(z), token_entropy(small)
    torch.testing.assert_close(h, h_small)
    (g,) = torch.autograd.grad(h.sum(), z)
    (g_small,) = torch.autograd.grad(h_small.sum(), small)
    torch.testing.assert_close(g[:, :3], g_small)
    assert g[0, 3].item() == 0.0
    # exact KL(π ‖ π_ref): with π's 4th token masked, it is Σ_{v<3} π_v (log π_v − log π_ref,v) with
    # π_ref normalized over all 4 tokens (written out here)
    kl = losses.exact_token_kl(z, zr)
    p = torch.softmax(base, -1)
    lr = torch.log_softmax(zr, -1)[:, :3]
    small2 = base.clone().requires_grad_(True)
    kl_hand = (torch.softmax(small2, -1) * (torch.log_softmax(small2, -1) - lr)).sum(-1)
    torch.testing.assert_close(kl, (p * (p.log() - lr)).sum(-1))
    (gk,) = torch.autograd.grad(kl.sum(), z)
    (gk_small,) = torch.autograd.grad(kl_hand.sum(), small2)
    torch.testing.assert_close(gk[:, :3], gk_small)
    assert gk[0, 3].item() == 0.0
    # entropy_bonus on those entropies inherits a finite gradient
    zz = z.detach().clone().requires_grad_(True)
    losses.entropy_bonus(token_entropy(zz).unsqueeze(0), coef=0.5).backward()
    torch.testing.assert_close(zz.grad[:, :3], -0.5 * g_small)
    # the reference side may be masked too, where π is also 0: 0·log(0/0) = 0, gradient finite
    zr2 = torch.cat([ref, torch.full((1, 1), -float("inf"), dtype=torch.float64)], 1)
    z2 = z.detach().clone().requires_grad_(True)
    kl2 = losses.exact_token_kl(z2, zr2)
    kl2.backward()
    assert torch.isfinite(kl2).all() and torch.isfinite(z2.grad).all()


def test_item9_nan_and_plus_inf_logits_are_rejected_by_name():
    from rlref.llm import losses
    from rlref.llm.logprobs import token_entropy, token_logprobs

    nan = torch.tensor([[float("nan"), 0.0]])
    with pytest.raises(ValueError, match=r"logits must not hold NaN.*logits\[0, 0\]"):
        token_entropy(nan)
    with pytest.raises(ValueError, match=r"ref_logits must not hold NaN"):
        losses.exact_token_kl(torch.zeros(1, 2), nan)
    with pytest.raises(ValueError, match=r"logits must not hold NaN"):
        token_logprobs(nan, torch.tensor([1]))
    with pytest.raises(ValueError, match=r"\+inf"):
        token_entropy(torch.tensor([[float("inf"), 0.0]]))
    with pytest.raises(ValueError, match="every logit -inf"):
        token_entropy(torch.tensor([[0.0, 1.0], [-float("inf"), -float("inf")]]))


# ----------------------------------------------------------------------------- item 19
def test_item19_ppo_ratio_overflow_in_half_precision():
    """fp16 exp overflows at a log-ratio of ~11. With A = 0 the loss is exactly 0; with A > 0 beyond
    the high clip it is −A(1 + ε_high) with zero gradient; with A < 0 and a dual clip c it is −cA.
    (Before: 'values must be finite; values[...] = nan'.)"""
    from rlref.llm import losses

    old = torch.zeros(1, 2, dtype=torch.float16)
    for a, want in ((0.0, 0.0), (2.0, -2.0 * 1.2)):
        logp = torch.full((1, 2), 12.0, dtype=torch.float16, requires_grad=True)
        res = losses.ppo_clip(logp, old, torch.full((1,), a, dtype=torch.float16))
        assert res.loss.item() == pytest.approx(want, abs=1e-6)
        res.loss.backward()
        assert torch.equal(logp.grad, torch.zeros_like(logp.grad))
    logp = torch.full((1, 2), 12.0, dtype=torch.float16)
    res = losses.ppo_clip(logp, old, torch.full((1,), -1.5, dtype=torch.float16), dual_clip=3.0)
    assert res.loss.item() == pytest.approx(4.5, abs=1e-6) and res.dual_clip_fraction.item() == 1.0


def test_item19_infinite_ppo_loss_names_the_arguments():
    """A < 0 without a dual clip: the true loss −Aρ overflows fp32 at a log-ratio of 100 — the error
    names logp/old_logp and the index, not an internal 'values'."""
    from rlref.llm import losses

    logp = torch.tensor([[0.0, 100.0]])
    with pytest.raises(ValueError, match=r"logp\[0, 1\].*old_logp"):
        losses.ppo_clip(logp, torch.zeros(1, 2), torch.tensor([-1.0]))


def test_item19_bf16_ratio_is_computed_in_fp32():
    """The ratio of bf16 inputs equals exp of the fp64 difference of the same (bf16) numbers to fp32
    precision; computed in bf16 it was ~1% off."""
    from rlref.llm import losses

    lp = torch.tensor([[-0.1]], dtype=torch.bfloat16)
    old = torch.tensor([[-5.59375]], dtype=torch.bfloat16)
    want = math.exp(float(lp.double()) - float(old.double()))  # A = −1 beyond the clip: loss = ρ
    got = losses.ppo_clip(lp, old, torch.tensor([-1.0], dtype=torch.bfloat16)).loss
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(want, rel=1e-6)


# ----------------------------------------------------------------------------- items 23 and 25
def test_item23_messages_name_the_argument():
    from rlref.llm import preference

    with pytest.raises(ValueError, match=r"mask\[1\] selects 0 valid responses"):
        adv.grpo(torch.zeros(2, 2), torch.tensor([[True, True], [False, False]]))
    e = torch.zeros(0)
    with pytest.raises(ValueError, match="policy_chosen_logps.*at least one preference pair"):
        preference.dpo_loss(e, e, e, e, beta=0.1)


def test_item25_negative_public_length_is_rejected():
    from rlref.llm import preference

    x = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"public_length must be >= 0; public_length\[1\] = -1"):
        preference.ld_dpo_logps(x, None, torch.tensor([1, -1]), alpha=0.5)
    with pytest.raises(ValueError, match="public_length must be an integer tensor"):
        preference.ld_dpo_logps(x, None, torch.tensor([1.0, 2.0]), alpha=0.5)


# ----------------------------------------------------------------------------- item 28
def test_item28_reward_functions_accept_int64_lengths():
    """Token counts arrive as int64: each reward equals its value on the same lengths as floats."""
    from rlref.llm import rewards

    n = torch.tensor([[3, 8, 12], [5, 5, 20]])
    f = n.to(torch.get_default_dtype())
    c = torch.tensor([[True, False, True], [True, True, False]])
    cases = [
        lambda ln: rewards.dler_truncation_reward(ln, c, budget=10),
        lambda ln: rewards.tldr_budget_reward(ln, c, budget=10),
        lambda ln: rewards.kimi_length_reward(ln, c),
        lambda ln: rewards.dapo_overlong_penalty(ln, max_length=16, cache_length=4),
        lambda ln: rewards.cosine_length_reward(ln, c, max_length=16),
        lambda ln: rewards.budget_reward(ln, c, budget=10),
        lambda ln: adv.dler_batch_normalized(rewards.dler_truncation_reward(ln, c, budget=10)),
    ]
    for fn in cases:
        torch.testing.assert_close(fn(n), fn(f))
    h = rewards.HistoryAwareReward()
    h(0, f[0], c[0])
    h2 = rewards.HistoryAwareReward()
    h2(0, n[0], c[0])
    torch.testing.assert_close(h(0, n[0], c[0], update=False), h2(0, f[0], c[0], update=False))


def test_item28_float_and_int_0_1_masks_equal_bool_masks_other_floats_fail():
    from rlref.llm import losses

    g = torch.Generator().manual_seed(0)
    r = torch.randn(2, 4, generator=g, dtype=torch.float64)
    mb = torch.tensor([[True, True, False, True], [True, False, True, True]])
    for m in (mb.long(), mb.float(), mb.double()):
        torch.testing.assert_close(adv.grpo(r, m), adv.grpo(r, mb))
        torch.testing.assert_close(losses.ppo_clip(r, r.flip(1), r, m).loss, losses.ppo_clip(r, r.flip(1), r, mb).loss)
        torch.testing.assert_close(losses.kl_loss(r, r.flip(1), m, beta=0.3), losses.kl_loss(r, r.flip(1), mb, beta=0.3))
    with pytest.raises(ValueError, match=r"mask must be a bool \(or 0/1\) tensor.*mask\[0, 1\] = 0.5"):
        adv.grpo(r, torch.tensor([[1.0, 0.5, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]]))
    with pytest.raises(ValueError, match="mask"):
        adv.grpo(r, torch.tensor([[1.0, float("nan"), 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]]))


# ----------------------------------------------------------------------------- item 15
def _meta(*shape, dtype=torch.float32):
    return torch.empty(*shape, device="meta", dtype=dtype)


def test_item15_shape_only_checks_run_on_meta_tensors():
    """On meta tensors (shapes without data) the shape checks run, the value checks are skipped, and
    the result is a meta tensor of the right shape. (Before: every function failed in bool(t.any()).)"""
    from rlref.llm import losses, preference, rewards
    from rlref.llm.logprobs import token_entropy, token_logprobs

    B, T, V = 2, 3, 5
    x, z = _meta(B, T), _meta(B, T, V)
    m = torch.ones(B, T, dtype=torch.bool, device="meta")
    s = _meta(B)
    cases = {
        (B, T, V): [losses.lp_reg_proxy(z)],
        (B, T): [adv.grpo(x, m), adv.rloo(x), adv.reinforce_pp(x), adv.group_mean_batch_std(x), adv.dler_batch_normalized(x),
                 adv.gae(x, x, m), adv.drpo_weights(x, m), adv.empg_modulate(s, x), token_entropy(z),
                 token_logprobs(z, torch.zeros(B, T, dtype=torch.long, device="meta")), losses.kl_reward(x, x, x, m, beta=0.1),
                 rewards.kimi_length_reward(x, m), rewards.dler_truncation_reward(x, m, budget=3.0), losses.exact_token_kl(z, z),
                 preference.rto_token_rewards(x, x, m, beta_dpo=0.1), preference.spo_win_rate_rewards(_meta(B, 3, 3))],
        (): [losses.aggregate(x, m, aggregation="seq-mean-token-mean"), losses.ppo_clip(x, x, x, m, dual_clip=3.0).loss,
             losses.kl_loss(x, x, m, beta=0.1), losses.entropy_bonus(x, m, coef=0.1),
             losses.chi2_occupancy_penalty(x, x, m, beta=0.1).loss, preference.dpo_loss(s, s, s, s, 0.1).loss,
             preference.rpo_loss(s, s, s, s, 0.1, chosen_lengths=s).loss],
        (B,): [losses.gui_g1_difficulty_weights(s), preference.ld_dpo_logps(x, m, torch.zeros(B, dtype=torch.long, device="meta"), alpha=0.5)],
    }
    for shape, outs in cases.items():
        for out in outs:
            assert out.is_meta and tuple(out.shape) == shape
    # shape checks still run on meta
    with pytest.raises(ValueError, match="mask must have shape"):
        adv.grpo(x, torch.ones(B, T + 1, dtype=torch.bool, device="meta"))
    with pytest.raises(ValueError, match="old_logp must have the shape"):
        losses.ppo_clip(x, _meta(B, T + 1), x)
