"""Tests for rlref.llm.preference: hand-computed values and DPO's closed-form gradient."""

import math

import pytest

torch = pytest.importorskip("torch")

from rlref.llm import preference as P  # noqa: E402


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_dpo_hand_value():
    # margin h = (-1 - -2) - (-3 - -2) = 2; beta 0.5 -> -log σ(1)
    res = P.dpo_loss(_t([-1.0]), _t([-3.0]), _t([-2.0]), _t([-2.0]), beta=0.5)
    assert res.loss.item() == pytest.approx(math.log1p(math.exp(-1.0)))
    assert res.chosen_rewards.item() == pytest.approx(0.5)
    assert res.rejected_rewards.item() == pytest.approx(-0.5)


def test_dpo_gradient_matches_closed_form():
    """∂ℓ/∂ log π(y_w) = −β σ(−βh)/B, ∂ℓ/∂ log π(y_l) = +β σ(−βh)/B."""
    g = torch.Generator().manual_seed(0)
    pc, pr = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    rc, rr = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    pc.requires_grad_(True)
    pr.requires_grad_(True)
    beta = 0.7
    gc, gr = torch.autograd.grad(P.dpo_loss(pc, pr, rc, rr, beta).loss, (pc, pr))
    h = (pc - rc) - (pr - rr)
    s = torch.sigmoid(-beta * h).detach()
    torch.testing.assert_close(gc, -beta * s / 5)
    torch.testing.assert_close(gr, beta * s / 5)


def test_ipo_minimizer_and_value():
    beta = 0.25  # target margin 1/(2β) = 2
    res = P.ipo_loss(_t([0.0]), _t([-2.0]), _t([0.0]), _t([0.0]), beta)
    assert res.loss.item() == pytest.approx(0.0)
    assert P.ipo_loss(_t([0.0]), _t([0.0]), _t([0.0]), _t([0.0]), beta).loss.item() == pytest.approx(4.0)


def test_rpo_xpo_hand_values():
    base = P.dpo_loss(_t([-4.0]), _t([-6.0]), _t([-5.0]), _t([-5.0]), 1.0).loss.item()
    rpo = P.rpo_loss(_t([-4.0]), _t([-6.0]), _t([-5.0]), _t([-5.0]), 1.0, chosen_lengths=_t([2.0]), alpha=0.5)
    assert rpo.loss.item() == pytest.approx(base + 0.5 * 4.0 / 2.0)
    xpo = P.xpo_loss(_t([-4.0]), _t([-6.0]), _t([-5.0]), _t([-5.0]), 1.0, policy_ref_sample_logps=_t([-1.0, -3.0]), alpha=0.1)
    assert xpo.loss.item() == pytest.approx(base + 0.1 * (-2.0))


def test_ld_dpo_logps_hand_value():
    tok = _t([[-1.0, -1.0, -2.0, -4.0], [-1.0, -1.0, 0.0, 0.0]])
    m = torch.tensor([[True, True, True, True], [True, True, False, False]])
    out = P.ld_dpo_logps(tok, m, torch.tensor([2, 2]), alpha=0.5)
    torch.testing.assert_close(out, _t([-2.0 + 0.5 * (-6.0), -2.0]))
    # alpha = 1 recovers the plain sum
    torch.testing.assert_close(P.ld_dpo_logps(tok, m, torch.tensor([2, 2]), alpha=1.0), _t([-8.0, -2.0]))


def test_inpo_hand_value_and_minimizer():
    eta, tau = 2.0, 0.5
    # h = (0 - -1) - (τ/η)(0) - ((η-τ)/η)(0) = 1; target 1/(2η) = 0.25 -> (0.75)²
    res = P.inpo_loss(_t([0.0]), _t([-1.0]), _t([0.0]), _t([0.0]), prev_chosen_logps=_t([0.0]),
                      prev_rejected_logps=_t([0.0]), eta=eta, tau=tau)
    assert res.loss.item() == pytest.approx(0.5625)


def test_spo_win_rates():
    p = _t([[0.5, 0.8, 0.6], [0.2, 0.5, 0.3], [0.4, 0.7, 0.5]])
    torch.testing.assert_close(P.spo_win_rate_rewards(p), _t([0.7, 0.25, 0.55]))


def test_rto_rewards_sum_to_dpo_implicit_reward():
    d = _t([[-1.0, -2.0, 9.0]])
    r = _t([[-1.5, -1.0, 9.0]])
    m = torch.tensor([[True, True, False]])
    out = P.rto_token_rewards(d, r, m, beta_dpo=0.1)
    assert out.sum().item() == pytest.approx(0.1 * ((-3.0) - (-2.5)))
    assert out[0, 2].item() == 0.0


def test_bad_inputs_raise():
    x = _t([0.0])
    with pytest.raises(ValueError, match="beta must be > 0"):
        P.dpo_loss(x, x, x, x, 0.0)
    with pytest.raises(ValueError, match="beta must be > 0"):
        P.ipo_loss(x, x, x, x, -1.0)
    with pytest.raises(ValueError, match="must have the shape"):
        P.dpo_loss(x, _t([0.0, 1.0]), x, x, 0.1)
    with pytest.raises(ValueError, match="finite"):
        P.dpo_loss(_t([float("nan")]), x, x, x, 0.1)
    with pytest.raises(ValueError, match="tau must be < eta"):
        P.inpo_loss(x, x, x, x, prev_chosen_logps=x, prev_rejected_logps=x, eta=1.0, tau=1.0)
    with pytest.raises(ValueError, match="P\\[i, j\\] \\+ P\\[j, i\\] = 1"):
        P.spo_win_rate_rewards(_t([[0.5, 0.9], [0.9, 0.5]]))


def test_inpo_hand_value_exercises_reference_and_previous_policy_terms():
    """h = (pc − pr) − (τ/η)(rc − rr) − ((η − τ)/η)(tc − tr) with every term non-zero:
    (0 − −1) − ¼·(−1 − −3) − ¾·(−2 − −2.5) = 1 − 0.5 − 0.375 = 0.125; target 1/(2η) = 0.25 -> 0.125²."""
    res = P.inpo_loss(_t([0.0]), _t([-1.0]), _t([-1.0]), _t([-3.0]), prev_chosen_logps=_t([-2.0]),
                      prev_rejected_logps=_t([-2.5]), eta=2.0, tau=0.5)
    assert res.loss.item() == pytest.approx(0.125**2, abs=1e-12)


def test_ipo_dpo_per_pair_losses_are_permutation_equivariant():
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(4, generator=g, dtype=torch.float64) for _ in range(4)]
    perm = torch.tensor([2, 0, 3, 1])
    for fn in (P.dpo_loss, P.ipo_loss):
        base = fn(*xs, 0.3)
        permuted = fn(*(x[perm] for x in xs), 0.3)
        torch.testing.assert_close(permuted.losses, base.losses[perm])
        assert permuted.loss.item() == pytest.approx(base.loss.item(), abs=1e-12)


def test_ld_dpo_and_rto_ignore_padding():
    tok = _t([[-1.0, -2.0, -3.0], [-1.0, -0.5, 0.0]])
    m = torch.tensor([[True, True, True], [True, True, False]])
    base = P.ld_dpo_logps(tok, m, torch.tensor([2, 2]), alpha=0.5)
    wide = torch.cat([tok, torch.full((2, 2), float("nan"), dtype=torch.float64)], dim=1)
    wm = torch.cat([m, torch.zeros(2, 2, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(P.ld_dpo_logps(wide, wm, torch.tensor([2, 2]), alpha=0.5), base)
    rto = P.rto_token_rewards(tok, tok - 1.0, m, beta_dpo=0.2)
    rto_wide = P.rto_token_rewards(wide, wide - 1.0, wm, beta_dpo=0.2)
    torch.testing.assert_close(rto_wide[:, :3], rto)
    assert torch.equal(rto_wide[:, 3:], torch.zeros(2, 2, dtype=torch.float64))


def test_more_bad_inputs_raise():
    x = _t([0.0])
    nan = _t([float("nan")])
    with pytest.raises(ValueError, match="policy_ref_sample_logps must be finite"):
        P.xpo_loss(x, x, x, x, 1.0, policy_ref_sample_logps=nan, alpha=0.1)
    with pytest.raises(ValueError, match="prev_chosen_logps must be finite"):
        P.inpo_loss(x, x, x, x, prev_chosen_logps=nan, prev_rejected_logps=x, eta=1.0, tau=0.5)
    with pytest.raises(ValueError, match="chosen_lengths must be > 0"):
        P.rpo_loss(x, x, x, x, 1.0, chosen_lengths=_t([0.0]))
    with pytest.raises(ValueError, match="chosen_lengths must be finite"):
        P.rpo_loss(x, x, x, x, 1.0, chosen_lengths=nan)
    with pytest.raises(ValueError, match="at least one preference pair"):
        P.dpo_loss(*(torch.zeros(0, dtype=torch.float64),) * 4, 0.1)
    with pytest.raises(ValueError, match="2 dimensions|1 dimensions"):
        P.dpo_loss(torch.zeros(1, 1, dtype=torch.float64), x, x, x, 0.1)
    with pytest.raises(ValueError, match="bool"):
        P.ld_dpo_logps(torch.zeros(1, 2, dtype=torch.float64), torch.full((1, 2), 0.5), torch.tensor([1]), alpha=0.5)
    with pytest.raises(ValueError, match="alpha must lie in"):
        P.ld_dpo_logps(torch.zeros(1, 2, dtype=torch.float64), None, torch.tensor([1]), alpha=1.5)
    with pytest.raises(ValueError, match="public_length"):
        P.ld_dpo_logps(torch.zeros(1, 2, dtype=torch.float64), None, _t([1.0]), alpha=0.5)
    with pytest.raises(ValueError, match="ref_logps must have the shape"):
        P.rto_token_rewards(torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64), beta_dpo=1.0)
    with pytest.raises(ValueError, match="beta_dpo must be > 0"):
        P.rto_token_rewards(torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64), beta_dpo=0.0)
    with pytest.raises(ValueError, match="G >= 2"):
        P.spo_win_rate_rewards(_t([[0.5]]))
    with pytest.raises(ValueError, match="preferences must lie in"):
        P.spo_win_rate_rewards(_t([[0.5, 1.5], [-0.5, 0.5]]))
