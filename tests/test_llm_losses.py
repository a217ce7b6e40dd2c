"""Tests for rlref.llm.losses: hand-computed values, estimator unbiasedness, trust-region gradients."""

import math

import pytest

torch = pytest.importorskip("torch")

from rlref.llm import losses as L  # noqa: E402


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


# ------------------------------------------------------------------ aggregation


def test_aggregation_modes_hand_case():
    v = _t([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = torch.tensor([[True, True, True], [True, False, False]])
    assert L.aggregate(v, m, aggregation="token-mean").item() == pytest.approx(10 / 4)
    assert L.aggregate(v, m, aggregation="seq-mean-token-sum").item() == pytest.approx((6 + 4) / 2)
    assert L.aggregate(v, m, aggregation="seq-mean-token-mean").item() == pytest.approx((2 + 4) / 2)
    assert L.aggregate(v, m, aggregation="constant", constant=5).item() == pytest.approx(10 / (2 * 5))


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-sum", "seq-mean-token-mean"])
def test_aggregation_ignores_padding_content_and_width(mode):
    v = _t([[1.0, 2.0], [3.0, 5.0]])
    m = torch.tensor([[True, True], [True, False]])
    wide = torch.cat([v, torch.full((2, 3), float("nan"), dtype=torch.float64)], dim=1)
    wm = torch.cat([m, torch.zeros(2, 3, dtype=torch.bool)], dim=1)
    v2 = v.clone()
    v2[1, 1] = 1e9
    assert L.aggregate(wide, wm, aggregation=mode).item() == pytest.approx(L.aggregate(v, m, aggregation=mode).item())
    assert L.aggregate(v2, m, aggregation=mode).item() == pytest.approx(L.aggregate(v, m, aggregation=mode).item())


# ------------------------------------------------------------------ PPO clip


def test_ppo_clip_hand_values():
    # ratios (1.5, 0.5, 1.1) with A = (+1, -1, +2); eps_low = 0.2, eps_high = 0.28
    old = _t([[0.0, 0.0, 0.0]])
    logp = torch.log(_t([[1.5, 0.5, 1.1]]))
    a = _t([[1.0, -1.0, 2.0]])
    res = L.ppo_clip(logp, old, a, eps_low=0.2, eps_high=0.28)
    # per token: -min(1.5, 1.28) = -1.28; -min(-0.5, -0.8) = 0.8; -min(2.2, 2.2) = -2.2
    assert res.loss.item() == pytest.approx((-1.28 + 0.8 - 2.2) / 3)
    assert res.high_clip_fraction.item() == pytest.approx(1 / 3)
    assert res.low_clip_fraction.item() == pytest.approx(1 / 3)


def test_ppo_dual_clip_hand_value():
    # ratio 5 with A = -1: plain PPO loss = 5; dual clip c = 3 caps it at 3
    logp = torch.log(_t([[5.0]]))
    res = L.ppo_clip(logp, _t([[0.0]]), _t([[-1.0]]), dual_clip=3.0)
    assert res.loss.item() == pytest.approx(3.0)
    assert res.dual_clip_fraction.item() == pytest.approx(1.0)
    assert L.ppo_clip(logp, _t([[0.0]]), _t([[-1.0]])).loss.item() == pytest.approx(5.0)


def test_ppo_gradient_zero_outside_trust_region_and_nonzero_inside():
    old = torch.zeros(1, 4, dtype=torch.float64)
    logp = torch.log(_t([[1.5, 0.5, 1.05, 0.9]])).requires_grad_(True)
    a = _t([[1.0, -1.0, 1.0, -1.0]])
    res = L.ppo_clip(logp, old, a, aggregation="seq-mean-token-sum")
    (g,) = torch.autograd.grad(res.loss, logp)
    # outside (ratio 1.5 > 1.2 with A > 0; 0.5 < 0.8 with A < 0): zero; inside: d/dlogp (-A ρ) = -A ρ
    torch.testing.assert_close(g, _t([[0.0, 0.0, -1.05, 0.9]]))


def test_ppo_sequence_advantages_broadcast_and_padding_invariance():
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(2, 3, generator=g, dtype=torch.float64) * 0.1
    old = torch.randn(2, 3, generator=g, dtype=torch.float64) * 0.1
    a = _t([1.0, -2.0])
    m = torch.tensor([[True, True, True], [True, True, False]])
    base = L.ppo_clip(logp, old, a, m).loss
    pad = lambda x, val: torch.cat([x, torch.full((2, 2), val, dtype=torch.float64)], dim=1)  # noqa: E731
    padded = L.ppo_clip(pad(logp, float("nan")), pad(old, 7.0), a, torch.cat([m, torch.zeros(2, 2, dtype=torch.bool)], 1)).loss
    assert padded.item() == pytest.approx(base.item())
    full_a = a.unsqueeze(1).expand(2, 3)
    assert L.ppo_clip(logp, old, full_a, m).loss.item() == pytest.approx(base.item())


# ------------------------------------------------------------------ KL estimators


def _categorical():
    pi = _t([0.5, 0.3, 0.15, 0.05])
    ref = _t([0.25, 0.25, 0.25, 0.25])
    kl = float((pi * (pi / ref).log()).sum())
    return pi, ref, kl


def test_k1_k3_exact_expectation_is_kl_and_k2_is_biased():
    pi, ref, kl = _categorical()
    lp, lr = pi.log(), ref.log()
    e = {k: float((pi * L.kl_penalty(lp, lr, k)).sum()) for k in ("k1", "k2", "k3")}
    assert e["k1"] == pytest.approx(kl, abs=1e-12)
    assert e["k3"] == pytest.approx(kl, abs=1e-12)
    # k2 = ½ E[(log r)²] differs from KL on this pair (independent value: 0.5 Σ π log²(π/ref))
    k2_exact = 0.5 * float((pi * (pi / ref).log() ** 2).sum())
    assert e["k2"] == pytest.approx(k2_exact, abs=1e-12)
    assert abs(k2_exact - kl) > 1e-2


def test_k1_k3_monte_carlo_unbiased_within_bound():
    """Sample 200k tokens from π; |mean − KL| <= 5 σ/√N for k1 and k3 (σ computed exactly)."""
    pi, ref, kl = _categorical()
    n = 200_000
    g = torch.Generator().manual_seed(123)
    y = torch.multinomial(pi, n, replacement=True, generator=g)
    lp, lr = pi.log()[y], ref.log()[y]
    for k in ("k1", "k3"):
        vals = L.kl_penalty(lp, lr, k)
        per = L.kl_penalty(pi.log(), ref.log(), k)
        sd = math.sqrt(float((pi * (per - kl) ** 2).sum()))
        assert abs(float(vals.mean()) - kl) <= 5 * sd / math.sqrt(n)


def test_k3_nonnegative_and_hand_value():
    # log r = log 2: k1 = -log 2, k2 = ½ log² 2, k3 = 1 - log 2
    lp, lr = _t([0.0]), torch.log(_t([2.0]))
    assert L.kl_penalty(lp, lr, "k1").item() == pytest.approx(-math.log(2))
    assert L.kl_penalty(lp, lr, "k2").item() == pytest.approx(0.5 * math.log(2) ** 2)
    assert L.kl_penalty(lp, lr, "k3").item() == pytest.approx(1 - math.log(2))
    g = torch.Generator().manual_seed(0)
    assert bool((L.kl_penalty(torch.randn(100, generator=g), torch.randn(100, generator=g), "k3") >= 0).all())


def test_kl_reward_sums_to_regularized_return():
    lp = _t([[-1.0, -2.0]])
    ref = _t([[-1.5, -1.0]])
    r = _t([[0.0, 1.0]])
    out = L.kl_reward(r, lp, ref, beta=0.1)
    assert out.sum().item() == pytest.approx(1.0 - 0.1 * ((-1.0 - -1.5) + (-2.0 - -1.0)))


def test_estimator_gradients_as_losses_exact_expectation():
    """Σ_y sg(π(y)) ∇k(y) (pathwise, y fixed): k1 -> 0, k2 -> ∇KL(π‖ref), k3 -> ∇KL(ref‖π)."""
    theta = _t([0.3, -0.2, 0.5]).requires_grad_(True)
    ref = torch.log_softmax(_t([0.0, 0.4, -0.1]), -1)

    def grad_of(f):
        lp = torch.log_softmax(theta, -1)
        (g,) = torch.autograd.grad(f(lp), theta)
        return g

    est = {k: grad_of(lambda lp, k=k: (lp.exp().detach() * L.kl_penalty(lp, ref, k)).sum()) for k in ("k1", "k2", "k3")}
    fwd = grad_of(lambda lp: (lp.exp() * (lp - ref)).sum())
    rev = grad_of(lambda lp: (ref.exp() * (ref - lp)).sum())
    torch.testing.assert_close(est["k1"], torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(est["k2"], fwd)
    torch.testing.assert_close(est["k3"], rev)
    assert (fwd - rev).abs().max() > 1e-3


def test_exact_token_kl_hand_and_support():
    z = torch.log(_t([0.5, 0.5]))
    zr = torch.log(_t([0.25, 0.75]))
    assert L.exact_token_kl(z, zr).item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75))
    inf = L.exact_token_kl(_t([0.0, 0.0]), _t([0.0, -float("inf")]))
    assert math.isinf(inf.item())


# ------------------------------------------------------------------ entropy regularizers


def test_entropy_bonus_and_gui_g1_weights():
    h = _t([[1.0, 3.0]])
    assert L.entropy_bonus(h, coef=0.1).item() == pytest.approx(-0.2)
    w = L.gui_g1_difficulty_weights(_t([1.0, 3.0]), alpha=1.0)
    torch.testing.assert_close(w, _t([0.5, 1.5]))


def test_siren_top_p_entropy_hand_case_and_gradient():
    logits = torch.log(_t([[[0.6, 0.3, 0.1], [1 / 3, 1 / 3, 1 / 3]]]))
    h, sel = L.siren_selective_entropy(logits, top_p=0.8, peak_quantile=0.0)
    q = [2 / 3, 1 / 3]
    assert h[0, 0].item() == pytest.approx(-sum(x * math.log(x) for x in q))
    # uniform row: mass before each sorted token is 0, 1/3, 2/3 < 0.8 -> all kept -> log 3
    assert h[0, 1].item() == pytest.approx(math.log(3))
    assert bool(sel.all())
    # peak-entropy mask keeps only the uniform (highest-entropy) position at quantile 1
    _, sel1 = L.siren_selective_entropy(logits, top_p=0.8, peak_quantile=1.0)
    assert sel1.tolist() == [[False, True]]
    z = logits.clone().requires_grad_(True)
    (g_loss,) = torch.autograd.grad(L.siren_loss(z, coef=0.5, top_p=0.8, peak_quantile=0.0), z)
    h2, s2 = L.siren_selective_entropy(z, top_p=0.8, peak_quantile=0.0)
    (g_h,) = torch.autograd.grad(h2[s2].mean(), z)
    torch.testing.assert_close(g_loss, -0.5 * g_h)


def test_epo_penalty_and_phase_weight():
    h = _t([[2.0, 2.0]])
    assert L.epo_smoothing_penalty(h, None, history_mean=2.0).item() == 0.0
    assert L.epo_smoothing_penalty(h, None, history_mean=1.0, high=1.5).item() == pytest.approx(0.25)
    assert L.epo_smoothing_penalty(h, None, history_mean=4.0, low=0.75).item() == pytest.approx(1.0)
    assert L.epo_phase_weight(10, 100) == 1.0
    assert L.epo_phase_weight(75, 100) == pytest.approx(0.55)
    assert L.epo_phase_weight(100, 100) == pytest.approx(0.1)


def test_aepo_hot_samples_raise_entropy():
    """Exact expectation: the REINFORCE-on-π_T gradient is ∇KL(π_T‖π_θ); a small step with T > 1 raises H."""
    theta = _t([2.0, 0.5, -1.0]).requires_grad_(True)
    t = L.aepo_temperature(entropy=0.1, target=1.0)
    assert t > 1
    pt = torch.softmax(theta.detach() / t, -1)
    lp = torch.log_softmax(theta, -1)
    loss = -(pt * lp).sum()  # E_{y~π_T}[−log π_θ(y)], the expectation of aepo_loss with coef 1
    (g,) = torch.autograd.grad(loss, theta)
    (g_kl,) = torch.autograd.grad((pt * (pt.log() - torch.log_softmax(theta, -1))).sum(), theta)
    torch.testing.assert_close(g, g_kl)
    ent = lambda th: float(-(torch.softmax(th, -1) * torch.log_softmax(th, -1)).sum())  # noqa: E731
    assert ent(theta.detach() - 0.1 * g) > ent(theta.detach())
    assert L.aepo_loss(_t([[-1.0, -3.0]]), coef=2.0).item() == pytest.approx(4.0)
    assert L.aepo_temperature(entropy=2.0, target=1.0) < 1


def test_lp_reg_proxy_hand_case_and_loss():
    p = _t([0.5, 0.3, 0.19, 0.01])
    lq = L.lp_reg_proxy(p.log(), kappa=0.05)  # threshold 0.025 drops 0.01
    torch.testing.assert_close(lq.exp(), _t([0.5, 0.3, 0.19, 0.0]) / 0.99)
    lq2 = L.lp_reg_proxy(p.log(), kappa=None, tau=0.2)
    torch.testing.assert_close(lq2.exp(), _t([0.5, 0.3, 0.0, 0.0]) / 0.8)
    loss = L.lp_reg_loss(p.log().reshape(1, 1, 4), beta=2.0, kappa=0.05)
    assert loss.item() == pytest.approx(2.0 * math.log(1 / 0.99))  # KL(q‖π) = Σ q log(1/0.99)


def test_t1_and_apo_hand_cases():
    lp, anc, h = _t([[0.0]]), torch.log(_t([[2.0]])), _t([[1.5]])
    assert L.t1_loss(lp, anc, h, beta=0.5, entropy_coef=0.1).item() == pytest.approx(0.5 * (1 - math.log(2)) - 0.15)
    torch.testing.assert_close(L.apo_dads_kl_weights(_t([0.0, 0.5, 1.0]), beta=0.2), _t([0.0, 0.1, 0.2]))
    pen = L.apo_stcr_penalty(_t([[10.0, 20.0, 30.0]]), torch.tensor([[True, False, False]]), coef=1.0)
    torch.testing.assert_close(pen, _t([[0.0, 0.0, -0.5]]))


def test_demonstration_regularization_is_sequence_kl():
    lp = _t([[-1.0, -0.5]])
    bc = _t([[-2.0, -0.5]])
    assert L.demonstration_regularization(lp, bc, beta=1.0, estimator="k1").item() == pytest.approx(1.0)
    assert L.demonstration_regularization(lp, bc, beta=1.0).item() == pytest.approx(0.5)


def test_chi2_occupancy_exact_expectation_and_gradient():
    """Two independent steps, enumerated: the π-weighted surrogate equals the occupancy χ² and its gradient."""
    th = _t([[0.2, -0.3], [0.5, 0.1]]).requires_grad_(True)
    ref = torch.log_softmax(_t([[0.0, 0.3], [-0.2, 0.0]]), -1)
    lp = torch.log_softmax(th, -1)
    seqs = [(a, b) for a in range(2) for b in range(2)]
    lps = torch.stack([torch.stack([lp[0, a], lp[1, b]]) for a, b in seqs])
    refs = torch.stack([torch.stack([ref[0, a], ref[1, b]]) for a, b in seqs])
    prob = lps.sum(1).exp().detach()
    res = L.chi2_occupancy_penalty(lps, refs, beta=1.0)
    # res.loss averages over the 4 rows; reweight by probability * 4 via per-row calls
    total = sum(prob[i] * L.chi2_occupancy_penalty(lps[i : i + 1], refs[i : i + 1], beta=1.0).loss for i in range(4))
    p1, r1 = lp[0].exp(), ref[0].exp()
    p12 = (lp[0].unsqueeze(1) + lp[1].unsqueeze(0)).exp()
    r12 = (ref[0].unsqueeze(1) + ref[1].unsqueeze(0)).exp()
    chi2 = (p1**2 / r1).sum() - 1 + (p12**2 / r12).sum() - 1
    assert float(total.detach()) == pytest.approx(float(chi2.detach()), abs=1e-12)
    (g1,) = torch.autograd.grad(total, th, retain_graph=True)
    (g2,) = torch.autograd.grad(chi2, th)
    torch.testing.assert_close(g1, g2)
    assert torch.isfinite(res.estimate)


# ------------------------------------------------------------------ bad inputs


def test_bad_inputs_raise():
    x = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="old_logp must have the shape"):
        L.ppo_clip(x, torch.zeros(2, 4, dtype=torch.float64), x)
    with pytest.raises(ValueError, match="bool"):
        L.ppo_clip(x, x, x, torch.ones(2, 3))
    with pytest.raises(ValueError, match="mask must have shape"):
        L.ppo_clip(x, x, x, torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        L.ppo_clip(x, x, x, dual_clip=0.5)
    with pytest.raises(ValueError, match="eps_low"):
        L.ppo_clip(x, x, x, eps_low=1.5)
    with pytest.raises(ValueError, match="aggregation"):
        L.ppo_clip(x, x, x, aggregation="sum")
    with pytest.raises(ValueError, match="constant must be given"):
        L.ppo_clip(x, x, x, aggregation="constant")
    with pytest.raises(ValueError, match="estimator"):
        L.kl_penalty(x, x, "k4")
    with pytest.raises(ValueError, match="ref_logp must have the shape"):
        L.kl_penalty(x, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="beta must be > 0"):
        L.kl_loss(x, x, beta=0.0)
    with pytest.raises(ValueError, match="beta must be > 0"):
        L.chi2_occupancy_penalty(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="logp must be finite"):
        L.ppo_clip(torch.full((1, 1), float("nan"), dtype=torch.float64), x[:1, :1], x[:1, :1])
    with pytest.raises(ValueError, match="no token"):
        L.ppo_clip(x, x, x, torch.zeros(2, 3, dtype=torch.bool))
