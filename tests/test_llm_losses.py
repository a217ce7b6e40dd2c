"""Tests for rlref.llm.losses: hand-computed values, estimator unbiasedness, trust-region gradients."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rlref.llm import losses as L  # noqa: E402
from rlref.llm.tokentree import TabularLogitPolicy  # noqa: E402
from rlref.tokentree import TokenTree  # noqa: E402


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


# SIREN: the release's anchored form is tested in tests/test_llm_fidelity.py (the derived one-sided form is gone).


def test_epo_penalty_and_phase_weight():
    h = _t([[2.0, 2.0]])
    assert L.epo_smoothing_penalty(h, None, history_mean=2.0).item() == 0.0
    assert L.epo_smoothing_penalty(h, None, history_mean=1.0, high=1.5).item() == pytest.approx(0.25)
    assert L.epo_smoothing_penalty(h, None, history_mean=4.0, low=0.75).item() == pytest.approx(1.0)
    # the release's schedule (tested against its formula in test_llm_fidelity.py)
    assert L.epo_phase_weight(0, 100) == 1.0
    assert L.epo_phase_weight(50, 100) == pytest.approx(1.0 - 0.2 * (1.0 - math.exp(-2.0)))


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
    # the release's per-token loss (replacing the derived full-vocabulary KL) is tested in test_llm_fidelity.py


def test_t1_and_apo_hand_cases():
    lp, anc, h = _t([[0.0]]), torch.log(_t([[2.0]])), _t([[1.5]])
    assert L.t1_loss(lp, anc, h, beta=0.5, entropy_coef=0.1).item() == pytest.approx(0.5 * (1 - math.log(2)) - 0.15)
    # the release's f(d) = 1 − exp(−e·(1 − d)), 1 at d ∈ {0, 1} (d = 1 − accuracy)
    torch.testing.assert_close(L.apo_dads_kl_weights(_t([0.0, 0.5, 1.0]), beta=0.2),
                               _t([0.2, 0.2 * (1 - math.exp(-math.e * 0.5)), 0.2]))
    pen = L.apo_stcr_penalty(_t([[10.0, 20.0, 30.0]]), torch.tensor([[True, False, False]]), coef=1.0)
    torch.testing.assert_close(pen, _t([[0.0, 0.0, -0.5]]))


def test_demonstration_regularization_hand_values_and_gradient():
    """Default (score-function) value = β·Σ_t k1 = β(log p_θ − log p_BC); its gradient w.r.t. every valid
    token log-prob is β·s; the pathwise forms return β·Σ k2 and β·Σ k3 (hand-computed)."""
    lp = _t([[-1.0, -0.5, 7.0]]).requires_grad_(True)
    bc = _t([[-2.0, -0.5, float("nan")]])
    m = torch.tensor([[True, True, False]])
    loss = L.demonstration_regularization(lp, bc, m, beta=2.0)
    assert loss.item() == pytest.approx(2.0 * 1.0)
    assert L.demonstration_regularization(lp, bc, m, beta=2.0, estimator="k1").item() == pytest.approx(2.0)
    (g,) = torch.autograd.grad(loss, lp)
    torch.testing.assert_close(g, _t([[2.0, 2.0, 0.0]]))
    assert L.demonstration_regularization(lp, bc, m, beta=1.0, form="pathwise").item() == pytest.approx(0.5)
    k3 = L.demonstration_regularization(lp, bc, m, beta=1.0, form="pathwise", estimator="k3").item()
    assert k3 == pytest.approx(math.exp(-1.0))  # (r − 1) − log r with log r = −1, plus 0
    # leave-one-out: s = (1, 3) -> advantages (1 − 3, 3 − 1); the value is still β·mean(s)
    lp2 = _t([[-1.0], [-1.0]]).requires_grad_(True)
    bc2 = _t([[-2.0], [-4.0]])
    loo = L.demonstration_regularization(lp2, bc2, beta=1.0, baseline="leave-one-out")
    assert loo.item() == pytest.approx(2.0)
    (g2,) = torch.autograd.grad(loo, lp2)
    torch.testing.assert_close(g2, _t([[-1.0], [1.0]]))


# ------------------------------------------------------------------ exact expectations on a token tree


def _tree_case(seed: int, V: int, Lmax: int, eos):
    """A token tree, a random policy θ (tabular logits) and a random reference, as tensors."""
    tree = TokenTree(V, Lmax, eos=eos)
    rng = np.random.default_rng(seed)
    pol = TabularLogitPolicy(tree, init=tree.random_policy(rng, concentration=2.0))
    ref = TabularLogitPolicy(tree, init=tree.random_policy(rng, concentration=2.0))
    with torch.no_grad():
        ref_tok = ref.token_logprobs()
    return tree, pol, ref, ref_tok


def _expected(pol, fn):
    """Σ_y sg(p_θ(y)) · fn(row y): the exact expectation (value and gradient) of a per-row loss."""
    tok = pol.token_logprobs()
    p = pol.sequence_logprobs().detach().exp()
    return sum(p[i] * fn(tok[i : i + 1], i) for i in range(tok.shape[0]))


def _occupancy(tree, table: torch.Tensor) -> torch.Tensor:
    """d(x, v) = π(x)·π(v|x) by the prefix recursion π(x·u) = π(x) π(u|x) (independent of the losses)."""
    reach = [torch.ones((), dtype=table.dtype)]
    for x in tree.prefixes[1:]:
        parent = tree.prefix_index(x[:-1])
        reach.append(reach[parent] * table[parent, x[-1]])
    return torch.stack(reach)[:, None] * table


def _grad(value, pol):
    (g,) = torch.autograd.grad(value, pol.logits, retain_graph=True)
    return g


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), V=st.integers(2, 3), Lmax=st.integers(1, 3), eos=st.sampled_from([None, 0]))
def test_demonstration_regularization_default_has_exact_kl_gradient(seed, V, Lmax, eos):
    """Claim: under exact expectations the default (score-function) form's value is β KL(p_θ‖p_BC) and its
    gradient is β ∇KL(p_θ‖p_BC) (autograd on the enumerated response distribution), on any tree."""
    tree, pol, ref, ref_tok = _tree_case(seed, V, Lmax, eos)
    mask = pol.tt.mask
    beta = 0.7
    est = _expected(pol, lambda row, i: L.demonstration_regularization(row, ref_tok[i : i + 1], mask[i : i + 1], beta=beta))
    p = torch.softmax(pol.sequence_logprobs(), 0)
    kl = beta * (p * (torch.log(p) - ref_tok.sum(-1))).sum()
    assert float(est.detach()) == pytest.approx(float(kl.detach()), abs=1e-12)
    torch.testing.assert_close(_grad(est, pol), _grad(kl, pol), atol=1e-12, rtol=1e-10)


def test_demonstration_regularization_pathwise_gradient_differs_beyond_depth_one():
    """Claim: the pathwise k2 form has the exact ∇KL(p_θ‖p_BC) only on one-token responses; on a depth-3
    tree with eos its expected gradient differs (it drops θ_x's effect on later positions' KL)."""
    for Lmax, differs in ((1, False), (3, True)):
        tree, pol, ref, ref_tok = _tree_case(5, 3, Lmax, 0 if Lmax > 1 else None)
        mask = pol.tt.mask
        est = _expected(pol, lambda row, i, rt=ref_tok, m=mask: L.demonstration_regularization(
            row, rt[i : i + 1], m[i : i + 1], beta=1.0, form="pathwise"))
        p = torch.softmax(pol.sequence_logprobs(), 0)
        gap = float((_grad(est, pol) - _grad((p * (torch.log(p) - ref_tok.sum(-1))).sum(), pol)).abs().max())
        assert (gap > 1e-3) if differs else (gap <= 1e-12), gap


def test_demonstration_regularization_leave_one_out_is_unbiased():
    """Claim: with B = 2 i.i.d. responses the leave-one-out baseline keeps the gradient unbiased: the exact
    expectation over all ordered pairs equals β ∇KL(p_θ‖p_BC)."""
    tree, pol, ref, ref_tok = _tree_case(7, 3, 2, 0)
    mask = pol.tt.mask
    tok = pol.token_logprobs()
    p = pol.sequence_logprobs().detach().exp()
    Y = tok.shape[0]
    total = sum(p[i] * p[j] * L.demonstration_regularization(tok[[i, j]], ref_tok[[i, j]], mask[[i, j]], beta=1.0,
                                                            baseline="leave-one-out")
                for i in range(Y) for j in range(Y))
    q = torch.softmax(pol.sequence_logprobs(), 0)
    torch.testing.assert_close(_grad(total, pol), _grad((q * (torch.log(q) - ref_tok.sum(-1))).sum(), pol),
                               atol=1e-12, rtol=1e-10)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), V=st.integers(2, 3), Lmax=st.integers(1, 3), eos=st.sampled_from([None, 0]))
def test_chi2_occupancy_exact_value_and_gradient_on_trees(seed, V, Lmax, eos):
    """Claim: under exact expectations, ``level="occupancy"`` has value χ²_occ = Σ_{x,v} (d_θ − d_ref)²/d_ref
    and gradient ∇χ²_occ, with d(x, v) = π(x)π(v|x) enumerated independently — also with eos
    (variable lengths); ``level="sequence"`` has value and gradient of χ²(p_θ‖p_ref) = Σ_y (p_θ − p_ref)²/p_ref."""
    tree, pol, ref, ref_tok = _tree_case(seed, V, Lmax, eos)
    mask = pol.tt.mask
    d = _occupancy(tree, torch.softmax(pol.logits, -1))
    d_ref = _occupancy(tree, torch.softmax(ref.logits.detach(), -1))
    chi2_occ = ((d - d_ref) ** 2 / d_ref).sum()
    p = torch.softmax(pol.sequence_logprobs(), 0)
    p_ref = ref_tok.sum(-1).exp()
    chi2_seq = ((p - p_ref) ** 2 / p_ref).sum()
    for level, target in (("occupancy", chi2_occ), ("sequence", chi2_seq)):
        est = _expected(pol, lambda row, i, lv=level: L.chi2_occupancy_penalty(row, ref_tok[i : i + 1], mask[i : i + 1],
                                                                               beta=1.0, level=lv).loss)
        assert float(est.detach()) == pytest.approx(float(target.detach()), abs=1e-10)
        torch.testing.assert_close(_grad(est, pol), _grad(target, pol), atol=1e-10, rtol=1e-8)


def test_chi2_naive_occupancy_weight_penalizes_length_with_eos():
    """Claim (the bug fixed here): the surrogate weight 2·w_t (instead of 2·(w_t − 1)) has expected gradient
    ∇χ²_occ + 2∇E_θ|y| — biased on a tree with eos, where ∇E_θ|y| ≠ 0 — while the library estimator's is
    ∇χ²_occ; the estimate is unbiased for χ²_occ (value checked against enumeration)."""
    tree, pol, ref, ref_tok = _tree_case(11, 3, 3, 0)
    mask = pol.tt.mask
    tok = pol.token_logprobs()
    p = pol.sequence_logprobs().detach().exp()
    c = torch.cumsum(tok, 1)
    w = torch.exp(c.detach() - torch.cumsum(ref_tok, 1))
    naive = (p[:, None] * torch.where(mask, 2 * w * c, torch.zeros_like(c))).sum()
    d = _occupancy(tree, torch.softmax(pol.logits, -1))
    d_ref = _occupancy(tree, torch.softmax(ref.logits.detach(), -1))
    chi2_occ = ((d - d_ref) ** 2 / d_ref).sum()
    q = torch.softmax(pol.sequence_logprobs(), 0)
    length = (q * pol.tt.lengths.double()).sum()
    g_len = _grad(length, pol)
    assert float(g_len.abs().max()) > 1e-2
    torch.testing.assert_close(_grad(naive, pol), _grad(chi2_occ, pol) + 2 * g_len, atol=1e-10, rtol=1e-8)
    lib = _expected(pol, lambda row, i: L.chi2_occupancy_penalty(row, ref_tok[i : i + 1], mask[i : i + 1], beta=1.0).loss)
    torch.testing.assert_close(_grad(lib, pol), _grad(chi2_occ, pol), atol=1e-10, rtol=1e-8)
    rows = [L.chi2_occupancy_penalty(tok[i : i + 1], ref_tok[i : i + 1], mask[i : i + 1], beta=1.0).estimate
            for i in range(tok.shape[0])]
    assert float((p * torch.stack(rows)).sum()) == pytest.approx(float(chi2_occ.detach()), abs=1e-10)


# ------------------------------------------------------------------ bad inputs


def test_bad_inputs_raise():
    x = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="old_logp must have the shape"):
        L.ppo_clip(x, torch.zeros(2, 4, dtype=torch.float64), x)
    with pytest.raises(ValueError, match="bool"):
        L.ppo_clip(x, x, x, torch.full((2, 3), 0.5))
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
    with pytest.raises(ValueError, match="level"):
        L.chi2_occupancy_penalty(x, x, beta=1.0, level="token")
    with pytest.raises(ValueError, match="ref_logp must have the shape"):
        L.chi2_occupancy_penalty(x, x[:, :2], beta=1.0)
    with pytest.raises(ValueError, match="ref_logp must be finite"):
        L.chi2_occupancy_penalty(x, torch.full((2, 3), float("nan"), dtype=torch.float64), beta=1.0)


def test_demonstration_regularization_bad_inputs_raise():
    x = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="form"):
        L.demonstration_regularization(x, x, beta=1.0, form="exact")
    with pytest.raises(ValueError, match="estimator must be 'k1'"):
        L.demonstration_regularization(x, x, beta=1.0, estimator="k2")
    with pytest.raises(ValueError, match="estimator"):
        L.demonstration_regularization(x, x, beta=1.0, form="pathwise", estimator="k1")
    with pytest.raises(ValueError, match="aggregation"):
        L.demonstration_regularization(x, x, beta=1.0, aggregation="token-mean")
    with pytest.raises(ValueError, match="baseline"):
        L.demonstration_regularization(x, x, beta=1.0, baseline="mean")
    with pytest.raises(ValueError, match="baseline must be 'none' for form='pathwise'"):
        L.demonstration_regularization(x, x, beta=1.0, form="pathwise", baseline="leave-one-out")
    with pytest.raises(ValueError, match="B >= 2"):
        L.demonstration_regularization(x[:1], x[:1], beta=1.0, baseline="leave-one-out")
    with pytest.raises(ValueError, match="beta must be > 0"):
        L.demonstration_regularization(x, x, beta=0.0)
    with pytest.raises(ValueError, match="bc_logp must have the shape"):
        L.demonstration_regularization(x, x[:, :2], beta=1.0)
    with pytest.raises(ValueError, match="bc_logp must be finite"):
        L.demonstration_regularization(x, torch.full((2, 3), float("nan"), dtype=torch.float64), beta=1.0)
    with pytest.raises(ValueError, match="no token"):
        L.demonstration_regularization(x, x, torch.zeros(2, 3, dtype=torch.bool), beta=1.0)
    with pytest.raises(ValueError, match="logp must be finite"):
        L.ppo_clip(torch.full((1, 1), float("nan"), dtype=torch.float64), x[:1, :1], x[:1, :1])
    with pytest.raises(ValueError, match="no token"):
        L.ppo_clip(x, x, x, torch.zeros(2, 3, dtype=torch.bool))


# ------------------------------------------------------------------ review additions


def test_ppo_approx_kl_is_unbiased_k3_for_kl_old_to_theta():
    """Claim: ``approx_kl`` estimates KL(π_old ‖ π_θ) from tokens sampled from π_old. A batch whose token
    counts are proportional to π_old makes the token-mean an exact expectation, so it must equal the
    enumerated Σ π_old log(π_old/π_θ) (numpy, independent of the library); one token with ρ = 2 gives
    (ρ − 1) − log ρ = 1 − log 2 by hand."""
    p_old = np.array([1, 2, 3, 2]) / 8
    p_new = np.array([0.4, 0.3, 0.2, 0.1])
    tokens = [0, 1, 1, 2, 2, 2, 3, 3]
    old = _t([[math.log(p_old[y]) for y in tokens]])
    logp = _t([[math.log(p_new[y]) for y in tokens]])
    res = L.ppo_clip(logp, old, torch.zeros(1, len(tokens), dtype=torch.float64))
    assert res.approx_kl.item() == pytest.approx(float(np.sum(p_old * np.log(p_old / p_new))), abs=1e-12)
    one = L.ppo_clip(_t([[math.log(2.0)]]), _t([[0.0]]), _t([[1.0]]))
    assert one.approx_kl.item() == pytest.approx(1.0 - math.log(2.0), abs=1e-12)


def test_aggregate_rejects_nan_at_valid_positions():
    with pytest.raises(ValueError, match="values must be finite"):
        L.aggregate(_t([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="values must be finite"):
        L.entropy_bonus(_t([[float("nan")]]), coef=0.1)
    # a NaN in a masked position is ignored
    assert L.aggregate(_t([[1.0, float("nan")]]), torch.tensor([[True, False]])).item() == 1.0


def test_kl_loss_and_kl_reward_validate_the_reference():
    """The bug fixed here: kl_loss broadcast a [B, 1] ref_logp silently and returned NaN for NaN inputs."""
    x = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="ref_logp must have the shape"):
        L.kl_loss(x, torch.zeros(2, 1, dtype=torch.float64), beta=1.0)
    with pytest.raises(ValueError, match="logp must be finite"):
        L.kl_loss(torch.full((2, 3), float("nan"), dtype=torch.float64), x, beta=1.0)
    with pytest.raises(ValueError, match="ref_logp must be finite"):
        L.kl_loss(x, torch.full((2, 3), float("nan"), dtype=torch.float64), beta=1.0)
    with pytest.raises(ValueError, match="estimator"):
        L.kl_loss(x, x, beta=1.0, estimator="k4")
    with pytest.raises(ValueError, match="bool"):
        L.kl_loss(x, x, torch.full((2, 3), 0.5), beta=1.0)
    with pytest.raises(ValueError, match="ref_logp must be a torch.Tensor"):
        L.kl_reward(x, x, [[0.0]], beta=1.0)
    with pytest.raises(ValueError, match="ref_logp must have the shape"):
        L.kl_reward(x, x, x[:, :1], beta=1.0)
    with pytest.raises(ValueError, match="rewards must be finite"):
        L.kl_reward(torch.full((2, 3), float("nan"), dtype=torch.float64), x, x, beta=1.0)
    with pytest.raises(ValueError, match="beta must be > 0"):
        L.kl_reward(x, x, x, beta=0.0)


def _pad(x, val, width=2):
    return torch.cat([x, torch.full((x.shape[0], width), val, dtype=x.dtype)], dim=1)


@pytest.mark.parametrize("name", ["kl_loss", "kl_reward", "entropy_bonus", "t1_loss", "aepo_loss", "epo",
                                  "demonstration", "demonstration_pathwise", "chi2", "chi2_sequence"])
def test_masked_losses_ignore_padding_content_and_width(name):
    """Masks and padding never change a result: appending masked columns holding NaN/junk, or
    overwriting masked positions, leaves every mask-taking loss unchanged."""
    g = torch.Generator().manual_seed(3)
    lp = -torch.rand(2, 3, generator=g, dtype=torch.float64) - 0.1
    ref = -torch.rand(2, 3, generator=g, dtype=torch.float64) - 0.1
    h = torch.rand(2, 3, generator=g, dtype=torch.float64)
    r = torch.randn(2, 3, generator=g, dtype=torch.float64)
    m = torch.tensor([[True, True, True], [True, True, False]])
    fns = {
        "kl_loss": lambda a, b, e, rr, mm: L.kl_loss(a, b, mm, beta=0.3, estimator="k3"),
        "kl_reward": lambda a, b, e, rr, mm: L.kl_reward(rr, a, b, mm, beta=0.3)[mm].sum(),
        "entropy_bonus": lambda a, b, e, rr, mm: L.entropy_bonus(e, mm, coef=0.1),
        "t1_loss": lambda a, b, e, rr, mm: L.t1_loss(a, b, e, mm, beta=0.2, entropy_coef=0.1),
        "aepo_loss": lambda a, b, e, rr, mm: L.aepo_loss(a, mm, coef=0.5),
        "epo": lambda a, b, e, rr, mm: L.epo_smoothing_penalty(e, mm, history_mean=2.0),
        "demonstration": lambda a, b, e, rr, mm: L.demonstration_regularization(a, b, mm, beta=0.5),
        "demonstration_pathwise": lambda a, b, e, rr, mm: L.demonstration_regularization(a, b, mm, beta=0.5,
                                                                                      form="pathwise"),
        "chi2": lambda a, b, e, rr, mm: L.chi2_occupancy_penalty(a, b, mm, beta=1.0).loss,
        "chi2_sequence": lambda a, b, e, rr, mm: L.chi2_occupancy_penalty(a, b, mm, beta=1.0, level="sequence").loss,
    }
    f = fns[name]
    base = float(f(lp, ref, h, r, m))
    assert math.isfinite(base)
    nan = float("nan")
    padded = f(_pad(lp, nan), _pad(ref, nan), _pad(h, nan), _pad(r, nan), _pad(m, False))
    assert float(padded) == pytest.approx(base, abs=1e-12)
    junk = [x.clone() for x in (lp, ref, h, r)]
    for x in junk:
        x[1, 2] = 1e6
    assert float(f(*junk, m)) == pytest.approx(base, abs=1e-12)


# ------------------------------------------------------------------ aggregation="none" (issue #16)


def test_aggregation_none_returns_the_masked_matrix_with_gradient():
    v = _t([[1.0, 2.0, float("nan")], [4.0, float("inf"), 0.5]]).requires_grad_(True)
    m = torch.tensor([[1, 1, 0], [1, 0, 1]])
    out = L.aggregate(v, m, aggregation="none")
    assert out.shape == (2, 3) and "none" in L.AGGREGATIONS
    torch.testing.assert_close(out.detach(), _t([[1.0, 2.0, 0.0], [4.0, 0.0, 0.5]]))
    (g,) = torch.autograd.grad(out.sum(), v)
    torch.testing.assert_close(g, m.double())  # masked entries get a zero (not NaN) gradient
    # every scalar mode is a reduction of the "none" matrix
    x = torch.where(m.bool(), v.detach(), torch.zeros(()))
    for mode, ref in (("token-mean", x.sum() / 4), ("seq-mean-token-sum", x.sum(1).mean()),
                      ("seq-mean-token-mean", (x.sum(1) / m.sum(1)).mean())):
        torch.testing.assert_close(L.aggregate(out.detach(), m, aggregation=mode), ref)
    # an all-padding micro-batch is allowed (zeros) in "none", an error in the scalar modes
    assert bool((L.aggregate(v, torch.zeros(2, 3, dtype=torch.bool), aggregation="none") == 0).all())
    with pytest.raises(ValueError, match="selects no"):
        L.aggregate(v, torch.zeros(2, 3, dtype=torch.bool), aggregation="token-mean")


def test_ppo_clip_and_kl_loss_with_aggregation_none_give_the_per_token_losses():
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(3, 4, generator=g, dtype=torch.float64)
    lp = old + 0.3 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    a = torch.randn(3, generator=g, dtype=torch.float64)
    m = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]).bool()
    t = L.ppo_token_losses(lp, old, a, m)
    torch.testing.assert_close(L.ppo_clip(lp, old, a, m, aggregation="none").loss, t.per_token)
    ref = old + 0.1
    torch.testing.assert_close(L.kl_loss(lp, ref, m, beta=0.5, aggregation="none"),
                               torch.where(m, 0.5 * 0.5 * (ref - lp) ** 2, torch.zeros(())))


# ------------------------------------------------------------------ GSPO, CISPO, SAPO, VESPO (issue #16)


def _pol_batch(seed=0, B=4, T=5):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(B, T, generator=g, dtype=torch.float64) * 2
    lp = (old + 0.3 * torch.randn(B, T, generator=g, dtype=torch.float64)).requires_grad_(True)
    a = torch.randn(B, generator=g, dtype=torch.float64)
    n = torch.randint(1, T + 1, (B,), generator=g)
    m = torch.arange(T).unsqueeze(0) < n.unsqueeze(1)
    return lp, old, a, m


def test_gspo_is_the_clip_on_the_length_normalized_sequence_ratio():
    lp, old, a, m = _pol_batch(1)
    ours = L.gspo_clip(lp, old, a, m, eps_low=0.05, eps_high=0.08)
    per = []
    for b in range(lp.shape[0]):  # the paper's per-response objective, written out
        s = torch.exp((lp[b][m[b]] - old[b][m[b]]).sum() / m[b].sum())
        per.append(-torch.minimum(s * a[b], torch.clamp(s, 0.95, 1.08) * a[b]))
    ref = torch.stack(per).mean()
    torch.testing.assert_close(ours.loss, ref, atol=1e-13, rtol=0)
    torch.testing.assert_close(torch.autograd.grad(ours.loss, lp)[0], torch.autograd.grad(ref, lp)[0], atol=1e-13, rtol=0)
    torch.testing.assert_close(L.sequence_log_ratio(lp, old, m), ((lp - old) * m).sum(1) / m.sum(1))


def test_cispo_gradient_is_reinforce_with_a_clipped_stop_gradient_weight():
    lp, old, a, m = _pol_batch(2)
    loss = L.cispo_loss(lp, old, a, m, eps_low=0.1, eps_high=0.15, aggregation="seq-mean-token-sum")
    (g,) = torch.autograd.grad(loss, lp)
    w = torch.clamp((lp.detach() - old).exp(), 0.9, 1.15)
    torch.testing.assert_close(g, -(w * a.unsqueeze(1) * m) / lp.shape[0], atol=1e-14, rtol=0)


def test_sapo_gate_hand_values_and_ppo_gradient_on_policy():
    lp, old, a, m = _pol_batch(3)
    loss = L.sapo_loss(lp, old, a, m, tau_pos=1.0, tau_neg=1.05, aggregation="token-mean")
    rho = (lp.detach() - old).exp()
    tau = torch.where(a.unsqueeze(1) > 0, _t(1.0), _t(1.05)).expand_as(rho)
    gate = torch.sigmoid(tau * (rho - 1)) * 4 / tau
    torch.testing.assert_close(loss, (-(gate * a.unsqueeze(1)) * m).sum() / m.sum(), atol=1e-14, rtol=0)
    # on-policy (ρ = 1) the gradient is the PPO / policy-gradient one: −A ∇log π
    on = old.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(L.sapo_loss(on, old, a, m, aggregation="seq-mean-token-sum"), on)
    torch.testing.assert_close(g, -(a.unsqueeze(1) * m) / lp.shape[0], atol=1e-14, rtol=0)


def test_vespo_gamma_weight_closed_form():
    lp, old, a, m = _pol_batch(4)
    phi = L.vespo_weights(lp, old, a, m, k_pos=2.0, lambda_pos=3.0, k_neg=3.0, lambda_neg=2.0)
    w = ((lp.detach() - old) * m).sum(1).exp()
    k = torch.where(a >= 0, _t(2.0), _t(3.0))
    lam = torch.where(a >= 0, _t(3.0), _t(2.0))
    ref = torch.exp(lam) * w**k * torch.exp(-lam * w)  # e^λ w^k e^{−λw}
    torch.testing.assert_close(phi, ref.unsqueeze(1) * m, atol=1e-12, rtol=1e-12)
    assert float(L.vespo_weights(old, old, a, m).max()) == pytest.approx(1.0)  # φ(1) = 1
    loss = L.vespo_loss(lp, old, a, m, aggregation="token-mean")
    (g,) = torch.autograd.grad(loss, lp)
    torch.testing.assert_close(g, -(ref * a).unsqueeze(1) * m / m.sum(), atol=1e-12, rtol=1e-12)
