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
