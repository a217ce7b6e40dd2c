"""rlref.llm against the papers and the authors' releases (issue #15).

Every golden is computed independently of the library: a per-position Python loop written the way
the authors' release computes it, a hand case by the paper's equation, or finite differences."""

import math

import pytest

torch = pytest.importorskip("torch")

from rlref.llm import entropy as E  # noqa: E402
from rlref.llm import losses as L  # noqa: E402


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


# ----------------------------------------------------------------------------- SIREN
def _release_top_p_entropy(probs: list[float], p: float) -> float:
    """SIREN release (Linn3a/siren @ fa59a8d, efficient_top_p_sampling): sort descending, keep the
    first ``searchsorted(cumsum, p)`` tokens (those with cumulative mass < p), renormalize with a
    1e-12 guard, entropy −Σ q log(q + 1e-12)."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    cum, keep = 0.0, []
    for i in order:
        cum += probs[i]
        if cum >= p:
            break
        keep.append(i)
    tot = sum(probs[i] for i in keep)
    qs = [probs[i] / (tot + 1e-12) for i in keep]
    return -sum(q * math.log(q + 1e-12) for q in qs)


def _release_quantile(xs: list[float], q: float) -> float:
    """torch.nanquantile's default 'linear' interpolation, written out."""
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (pos - lo) * (s[hi] - s[lo])


def test_siren_top_p_entropy_and_per_response_quantile_match_the_release_loop():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(3, 6, 7, generator=g, dtype=torch.float64) * 2.0
    mask = torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    h, sel = E.siren_selective_entropy(z, mask, top_p=0.8, peak_quantile=0.8)
    probs = torch.softmax(z, -1).tolist()
    for b in range(3):
        hb = [_release_top_p_entropy(probs[b][t], 0.8) for t in range(6)]
        for t in range(6):
            assert h[b, t].item() == pytest.approx(hb[t], abs=1e-10)
        valid = [hb[t] for t in range(6) if mask[b, t]]
        thr = _release_quantile(valid, 0.8)  # per response, over its valid positions only
        want = [bool(mask[b, t]) and hb[t] > thr for t in range(6)]
        assert sel[b].tolist() == want


def test_siren_nucleus_excludes_the_token_that_crosses_p():
    """π = (0.6, 0.3, 0.1), p = 0.8: cumulative 0.6 < 0.8 keeps the top token only, 0.9 ≥ 0.8 stops:
    the nucleus is {0.6} and H^p = 0 (the standard nucleus {0.6, 0.3} would give H(2/3, 1/3)).
    π = (0.85, ...): the top token alone crosses p, the nucleus is empty and H^p = 0."""
    z = torch.log(_t([[[0.6, 0.3, 0.1], [0.5, 0.25, 0.25], [0.85, 0.1, 0.05]]]))
    h, _ = E.siren_selective_entropy(z, top_p=0.8, peak_quantile=0.0)
    assert h[0, 0].item() == pytest.approx(0.0, abs=1e-12)
    # (0.5, 0.25, 0.25): cumulative 0.5, 0.75 < 0.8 keep two tokens, renormalized (2/3, 1/3)
    assert h[0, 1].item() == pytest.approx(-(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3), abs=1e-12)
    assert h[0, 2].item() == 0.0


def test_siren_loss_is_the_squared_distance_to_a_fixed_anchor():
    """ℓ = coef·(H̄_sel − anchor)² with H̄_sel the release's seq-mean-token-mean over all B responses
    (a response without a selected position counts 0). Golden from the release loop above."""
    g = torch.Generator().manual_seed(5)
    z = torch.randn(2, 5, 6, generator=g, dtype=torch.float64) * 1.5
    z[1] = 0.0  # a response of uniform positions: equal entropies, nothing strictly above its quantile
    probs = torch.softmax(z, -1).tolist()
    rows = []
    for b in range(2):
        hb = [_release_top_p_entropy(probs[b][t], 0.8) for t in range(5)]
        thr = _release_quantile(hb, 0.8)
        sel = [x for x in hb if x > thr]
        rows.append(sum(sel) / len(sel) if sel else 0.0)
    hbar = sum(rows) / 2
    assert rows[1] == 0.0
    assert E.siren_anchor(z) == pytest.approx(hbar, abs=1e-10)
    for anchor in (0.0, 0.3, 2.0):
        assert E.siren_loss(z, coef=0.005, anchor=anchor).item() == pytest.approx(0.005 * (hbar - anchor) ** 2, abs=1e-12)
    assert L.siren_loss is E.siren_loss  # the public name: rlref.llm.losses.siren_loss


def test_siren_gradient_pulls_toward_the_anchor_from_both_sides():
    """∇ℓ = 2·coef·(H̄ − a)·∇H̄: anchors equally far above and below give opposite gradients, and a
    step along −∇ℓ moves H̄ toward the anchor (checked by re-evaluating); autograd vs central differences."""
    g = torch.Generator().manual_seed(7)
    z0 = torch.randn(1, 4, 5, generator=g, dtype=torch.float64)
    h0 = E.siren_anchor(z0)
    grads = []
    for a in (h0 + 0.2, h0 - 0.2):
        z = z0.clone().requires_grad_(True)
        (gz,) = torch.autograd.grad(E.siren_loss(z, coef=1.0, anchor=a), z)
        grads.append(gz)
        h1 = E.siren_anchor(z0 - 1e-3 * gz)
        assert abs(h1 - a) < abs(h0 - a)
    torch.testing.assert_close(grads[0], -grads[1])
    # central differences on a few coordinates (the masks are locally constant)
    z = z0.clone().requires_grad_(True)
    (gz,) = torch.autograd.grad(E.siren_loss(z, coef=1.0, anchor=h0 + 0.2), z)
    for idx in [(0, 0, 0), (0, 2, 3), (0, 3, 1)]:
        e = torch.zeros_like(z0)
        e[idx] = 1e-6
        fd = (E.siren_loss(z0 + e, coef=1.0, anchor=h0 + 0.2) - E.siren_loss(z0 - e, coef=1.0, anchor=h0 + 0.2)) / 2e-6
        assert gz[idx].item() == pytest.approx(fd.item(), abs=1e-7)


def test_siren_rejects_a_missing_or_bad_anchor_and_padding_is_never_selected():
    z = torch.randn(1, 3, 4, dtype=torch.float64)
    with pytest.raises(TypeError):
        E.siren_loss(z, coef=1.0)
    with pytest.raises(ValueError, match="anchor"):
        E.siren_loss(z, coef=1.0, anchor=float("nan"))
    m = torch.tensor([[True, True, False]])
    z[0, 2] = torch.tensor([0.0, 0.0, 0.0, 0.0])  # the highest-entropy position is padding
    _, sel = E.siren_selective_entropy(z, m, peak_quantile=0.0)
    assert not sel[0, 2]


# ----------------------------------------------------------------------------- Lp-Reg
def _verl_low_var_kl(logp: float, ref: float) -> float:
    d = max(-20.0, min(20.0, ref - logp))
    return max(-10.0, min(10.0, math.exp(d) - d - 1.0))


def test_lp_reg_proxy_keeps_p_at_least_kappa_times_max():
    p = _t([0.5, 0.3, 0.19, 0.01])
    lq = E.lp_reg_proxy(p.log(), kappa=0.02)  # threshold 0.01: the release keeps π >= 0.01
    torch.testing.assert_close(lq.exp(), p)
    lq = E.lp_reg_proxy(p.log(), kappa=0.05)
    torch.testing.assert_close(lq.exp(), _t([0.5, 0.3, 0.19, 0.0]) / 0.99)


def test_lp_reg_loss_matches_the_release_loop():
    """compute_policy_loss_lp_reg (Lp-Reg-dev @ 33b27e2) written as a loop: PPO loss everywhere; among
    negative-advantage tokens the k = max(1, int(n·f)) lowest log-probs (only if k > 1), of which those
    with π_θ < π_proxy get −A·ρ + coef·low_var_kl instead (no clipping); token-mean."""
    g = torch.Generator().manual_seed(11)
    B, T, V = 4, 6, 5
    z_old = torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2
    z = (z_old + 0.3 * torch.randn(B, T, V, generator=g, dtype=torch.float64)).requires_grad_(True)
    tokens = torch.randint(0, V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, 4:] = False
    adv = torch.tensor([1.0, -1.0, -0.5, -2.0], dtype=torch.float64)
    from rlref.llm.logprobs import token_logprobs

    lp = token_logprobs(z, tokens)
    old = token_logprobs(z_old, tokens)
    pq = E.lp_reg_proxy_logprobs(z_old, tokens, kappa=0.02)
    res = E.lp_reg_loss(lp, old, pq, adv, mask, coef=1.0, neg_fraction=0.5, eps_low=0.2, eps_high=0.28)
    # the loop
    lpl, oldl, pql = lp.tolist(), old.tolist(), pq.tolist()
    cells = [(b, t) for b in range(B) for t in range(T) if mask[b, t]]
    neg = [(b, t) for (b, t) in cells if adv[b] < 0]
    k = max(1, int(len(neg) * 0.5))
    chosen = sorted(neg, key=lambda c: lpl[c[0]][c[1]])[:k] if k > 1 else []
    chosen = {c for c in chosen if lpl[c[0]][c[1]] < pql[c[0]][c[1]]}
    assert chosen, "the instance must exercise the selection"
    total = 0.0
    for (b, t) in cells:
        a = float(adv[b])
        rho = math.exp(lpl[b][t] - oldl[b][t])
        if (b, t) in chosen:
            total += -a * rho + _verl_low_var_kl(lpl[b][t], pql[b][t])
        else:
            total += max(-a * rho, -a * min(max(rho, 0.8), 1.28))
    assert res.loss.item() == pytest.approx(total / len(cells), abs=1e-12)
    assert {(b, t) for b in range(B) for t in range(T) if res.regularized[b, t]} == chosen
    res.loss.backward()
    assert torch.isfinite(z.grad).all()


def test_lp_reg_gradient_on_a_selected_token_raises_its_probability_toward_the_proxy():
    """On a selected token (π_θ < π_proxy) the penalty's gradient w.r.t. log π_θ is
    −(e^{d} − 1) < 0 (d = log π_proxy − log π_θ > 0): minimizing raises log π_θ — the spark is shielded.
    Central differences on the scalar loss."""
    lp = _t([[-3.0, -0.1]]).requires_grad_(True)
    old = _t([[-3.0, -0.1]])
    pq = _t([[-2.0, -0.05]])
    res = E.lp_reg_loss(lp, old, pq, _t([-1.0]), coef=1.0, neg_fraction=1.0)
    assert res.regularized.tolist() == [[True, True]]
    (g,) = torch.autograd.grad(res.loss, lp)
    for j in range(2):
        e = torch.zeros(1, 2, dtype=torch.float64)
        e[0, j] = 1e-6
        fd = (E.lp_reg_loss(lp.detach() + e, old, pq, _t([-1.0]), neg_fraction=1.0).loss
              - E.lp_reg_loss(lp.detach() - e, old, pq, _t([-1.0]), neg_fraction=1.0).loss) / 2e-6
        assert g[0, j].item() == pytest.approx(fd.item(), abs=1e-6)
    # d/dlogp of [A=-1: ρ + (e^d − d − 1)]/2 = (ρ − (e^d − 1))/2 with ρ = 1 at old = logp
    want = [(1.0 - (math.exp(1.0) - 1.0)) / 2, (1.0 - (math.exp(0.05) - 1.0)) / 2]
    torch.testing.assert_close(g, _t([want]))


# ----------------------------------------------------------------------------- DRPO
def _release_drpo(logp, old, mask, correct, lam, tau, beta, delta):
    """compute_policy_loss_drpo (Optimization-AI/DRPO @ 405f702) restated per group with Python loops
    over responses; the negatives' term is the release's Σe/sg(Σe) surrogate (value 1, same gradient)."""
    B, G, T = logp.shape
    total = 0.0
    for b in range(B):
        pos = [g for g in range(G) if correct[b, g]]
        neg = [g for g in range(G) if not correct[b, g]]
        if not pos or not neg:
            continue
        s = [(logp[b, g] * mask[b, g]).sum() / mask[b, g].sum() for g in range(G)]
        ratio = [float(mask[b, g].sum()) / T for g in range(G)]
        mx = max(float(s[g].detach()) / tau for g in neg)
        se = sum(torch.exp(s[g] / tau - mx) for g in neg)
        lme = se / (se.detach() + torch.finfo(torch.float64).eps)
        w = [math.exp((1 - ratio[g]) / lam) for g in pos]
        total = total + sum(w[k] * (s[g] - tau * lme) for k, g in enumerate(pos)) / sum(w)
    pg = total / B
    kl = ((old - logp) * mask).sum() / mask.sum()
    return -pg + max(beta * (float(kl.detach()) - delta), 0.0) * kl


def test_drpo_loss_gradient_matches_the_release_and_value_uses_the_true_log_mean_exp():
    from rlref.llm import length

    g = torch.Generator().manual_seed(2)
    B, G, T = 3, 4, 5
    base = torch.randn(B, G, T, generator=g, dtype=torch.float64) - 1.0
    old = base.clone()
    mask = torch.ones(B, G, T, dtype=torch.bool)
    mask[0, 1, 3:] = False
    mask[1, 2, 1:] = False
    correct = torch.tensor([[True, True, False, False], [True, False, False, False], [True, True, True, True]])
    for beta, delta in ((1e3, 1e-4), (0.0, 0.0)):
        lp1 = (base + 0.05 * torch.randn(B, G, T, generator=g, dtype=torch.float64)).requires_grad_(True)
        lp2 = lp1.detach().clone().requires_grad_(True)
        ours = length.drpo_loss(lp1, old, mask, correct, lam=0.1, tau=10.0, beta=beta, delta=delta)
        ref = _release_drpo(lp2, old, mask, correct, 0.1, 10.0, beta, delta)
        ours.loss.backward()
        ref.backward()
        torch.testing.assert_close(lp1.grad, lp2.grad, atol=1e-12, rtol=1e-9)
        assert ours.valid_groups.tolist() == [True, True, False]
    # the value: J = (1/B) Σ_q Σ_pos ŵ (s − τ log mean exp(s_neg/τ)), written out for group 1 (one positive)
    lp = base.clone()
    res = length.drpo_loss(lp, old, mask, correct, lam=0.1, tau=10.0, beta=0.0, delta=0.0)
    s = [float((lp[b, gg] * mask[b, gg]).sum() / mask[b, gg].sum()) for b in range(B) for gg in range(G)]
    s = [s[i * G:(i + 1) * G] for i in range(B)]
    w0 = [math.exp((1 - float(mask[0, gg].sum()) / T) / 0.1) for gg in (0, 1)]
    lme0 = 10.0 * math.log(sum(math.exp(s[0][gg] / 10.0) for gg in (2, 3)) / 2)
    lme1 = 10.0 * math.log(sum(math.exp(s[1][gg] / 10.0) for gg in (1, 2, 3)) / 3)
    j0 = (w0[0] * (s[0][0] - lme0) + w0[1] * (s[0][1] - lme0)) / sum(w0)
    j1 = s[1][0] - lme1
    assert res.objective.item() == pytest.approx((j0 + j1) / 3, abs=1e-12)


def test_drpo_weights_are_the_release_gradient_weights():
    """Σ_i w_i ∇s_i equals ∇J_q: positives ŵ = softmax((1 − ℓ)/λ), negatives −softmax(s/τ)."""
    from rlref.llm import length

    s = torch.tensor([[-0.5, -1.0, -2.0, -0.2]], dtype=torch.float64, requires_grad=True)
    ell = _t([[0.2, 0.6, 0.3, 0.9]])
    c = torch.tensor([[True, True, False, False]])
    w = length.drpo_weights(1.0 - ell, c, lam=0.1, neg_scores=s.detach(), tau=10.0)
    wp = torch.softmax((1.0 - ell[0, :2]) / 0.1, 0)
    j = (wp * (s[0, :2] - 10.0 * torch.logsumexp(s[0, 2:] / 10.0, 0))).sum()
    (gj,) = torch.autograd.grad(j, s)
    torch.testing.assert_close(w, gj)
    # the τ → ∞ limit: −1/n_neg
    torch.testing.assert_close(length.drpo_weights(1.0 - ell, c, lam=0.1)[0, 2:], _t([-0.5, -0.5]))


# ----------------------------------------------------------------------------- GRPO-λ
def test_grpo_lambda_uses_the_batchwise_top_lambda_rule():
    """Four groups with correctness ratios (0.25, 1.0, 0.5, 0.75); λ = 0.5 keeps the top ⌈0.5·4⌉ = 2
    (ratios 1.0 and 0.75) on the length reward, the other two on 0/1 — a per-group threshold of 0.5
    would also switch the 0.5 group."""
    from rlref.llm import length

    c = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    lr = torch.full((4, 4), 7.0, dtype=torch.float64)
    out = length.grpo_lambda_reward(c, lr, top_fraction=0.5)
    chosen = [bool((out[b] == 7.0).all()) for b in range(4)]
    assert chosen == [False, True, False, True]
    torch.testing.assert_close(out[0], c[0].double())
    assert [bool((length.grpo_lambda_reward(c, lr, threshold=0.5)[b] == 7.0).all()) for b in range(4)] == [False, True, True, True]
    # ties at the cut: a stable sort keeps the earlier group
    c2 = torch.tensor([[1, 0], [1, 0], [0, 0]], dtype=torch.bool)
    out2 = length.grpo_lambda_reward(c2, torch.full((3, 2), 7.0, dtype=torch.float64), top_fraction=0.34)
    assert [bool((out2[b] == 7.0).all()) for b in range(3)] == [True, True, False]  # ⌈1.02⌉ = 2


# ----------------------------------------------------------------------------- DLER
def test_dler_token_weighting_is_verl_masked_whiten_and_response_weighting_is_the_formula():
    from rlref.llm import length

    r = _t([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    n = torch.tensor([[4, 2, 6], [3, 5, 1]])
    # group-centered Ã, written out
    a = [[2 / 3, -1 / 3, -1 / 3], [1 / 3, 1 / 3, -2 / 3]]
    flat = [x for row in a for x in row]
    mu = sum(flat) / 6
    sd = math.sqrt(sum((x - mu) ** 2 for x in flat) / 6)
    want_resp = [[(x - mu) / (sd + 1e-6) for x in row] for row in a]
    torch.testing.assert_close(length.dler_batch_normalized(r), _t(want_resp))
    # verl: Ã repeated |o| times, token mean, Bessel token variance, (x − μ)·rsqrt(var + 1e-8)
    toks = [a[b][g] for b in range(2) for g in range(3) for _ in range(int(n[b, g]))]
    mt = sum(toks) / len(toks)
    vt = sum((x - mt) ** 2 for x in toks) / (len(toks) - 1)
    want_tok = [[(x - mt) / math.sqrt(vt + 1e-8) for x in row] for row in a]
    torch.testing.assert_close(length.dler_batch_normalized(r, weighting="token", lengths=n, eps=1e-8), _t(want_tok))


def test_dynamic_sampler_drops_flat_groups_and_fills_the_batch():
    from rlref.llm import length

    ds = length.DynamicSampler(batch_size=3, max_rounds=5)
    assert ds.add(_t([[1.0, 1.0], [0.0, 1.0]]), ["a", "b"]) == 1
    assert not ds.ready
    assert ds.add(_t([[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]]), ["c", "d", "e"]) == 2
    rewards, items = ds.pop()
    assert items == ["b", "d", "e"] and rewards.shape == (3, 2)
    assert not bool(length.flat_groups(rewards).any())
    ds2 = length.DynamicSampler(batch_size=1, max_rounds=2)
    ds2.add(_t([[1.0, 1.0]]))
    with pytest.raises(RuntimeError, match="max_rounds=2"):
        ds2.add(_t([[0.0, 0.0]]))


# ----------------------------------------------------------------------------- Kimi k1.5
def test_kimi_mirror_descent_squared_loss_reaches_the_tilted_reference_on_the_tree():
    """On a token tree with exact expectations and the exact log Z, the squared-loss surrogate's
    minimizer is the KL-regularized mirror-descent step π_old·e^{r/τ}/Z (zero residual), computed
    independently by rlref.theory.kl_regularized.optimal_policy."""
    import numpy as np

    from rlref.llm import length
    from rlref.llm.tokentree import TabularLogitPolicy, train, tv_distance
    from rlref.theory.kl_regularized import optimal_policy
    from rlref.tokentree import TokenTree

    rng = np.random.default_rng(0)
    tree = TokenTree(3, 2, eos=0)
    pi_old = tree.random_policy(rng, concentration=3.0)
    p_old = tree.sequence_distribution(pi_old)
    r = rng.normal(size=tree.num_sequences)
    tau = 0.7
    old = TabularLogitPolicy(tree, init=pi_old)
    with torch.no_grad():
        old_seq = old.sequence_logprobs()
    logz = float(np.log(np.sum(p_old * np.exp(r / tau))))
    pol = TabularLogitPolicy(tree, init=pi_old)
    R = torch.as_tensor(r).unsqueeze(0)

    # the library loss on every response of the tree (full support): its unique zero is the tilt
    def lib_loss():
        seq = pol.sequence_logprobs()
        return length.kimi_mirror_descent_loss(seq.unsqueeze(0), old_seq.unsqueeze(0), R, tau=tau,
                                               log_partition=torch.tensor([logz], dtype=torch.float64))

    train(pol, lib_loss, steps=40, optimizer="lbfgs")
    tv = tv_distance(pol.sequence_distribution(), optimal_policy(p_old, r, tau))
    assert tv < 1e-8, tv
    assert float(lib_loss().detach()) < 1e-14


def test_kimi_loss_with_the_mean_reward_gradient_is_a_policy_gradient_at_pi_old():
    """At π_θ = π_old the gradient of (1/k)Σ(r − r̄ − τ log π_θ/π_old)² is −(2τ/k) Σ (r_j − r̄) ∇log π_θ(y_j)."""
    from rlref.llm import length

    lp = _t([[-1.0, -2.0, -0.5]]).requires_grad_(True)
    r = _t([[1.0, 0.0, 0.5]])
    loss = length.kimi_mirror_descent_loss(lp, lp.detach(), r, tau=0.3)
    (g,) = torch.autograd.grad(loss, lp)
    torch.testing.assert_close(g, -(2 * 0.3 / 3) * (r - r.mean()))


# ----------------------------------------------------------------------------- ACE-RL, LongWriter-Zero
def test_ace_rl_reward_is_the_satisfied_fraction_of_each_checklist():
    from rlref.llm import composite

    sat = torch.tensor([[[1, 1, 0], [0, 0, 0]], [[1, 0, 1], [1, 1, 1]]])
    cm = torch.tensor([[True, True, True], [True, True, False]])  # instruction 1 has two constraints
    torch.testing.assert_close(composite.ace_rl_constraint_reward(sat, cm), torch.tensor([[2 / 3, 0.0], [1 / 2, 1.0]]))
    with pytest.raises(ValueError, match=r"constraint_mask\[1\] selects no constraint"):
        composite.ace_rl_constraint_reward(sat, torch.tensor([[True, True, True], [False, False, False]]))


def test_ace_rl_checklist_reward_with_kl_rl_reaches_the_tilt_on_the_tree():
    """Token tree (V=3, L=3, eos): constraints are random response predicates; KL-regularized policy
    gradient on the checklist reward reaches π_ref·e^{r/β}/Z (rlref.theory.kl_regularized.optimal_policy)."""
    import numpy as np

    from rlref.llm import composite
    from rlref.llm.tokentree import TabularLogitPolicy, exact_rows, terminal_rewards, train, tv_distance
    from rlref.theory.kl_regularized import optimal_policy
    from rlref.tokentree import TokenTree

    rng = np.random.default_rng(4)
    tree = TokenTree(3, 3, eos=0)
    pi_ref = tree.random_policy(rng, concentration=3.0)
    p_ref = tree.sequence_distribution(pi_ref)
    sat = torch.as_tensor(rng.random((1, tree.num_sequences, 4)) < 0.5)
    r = composite.ace_rl_constraint_reward(sat, torch.tensor([[True, True, True, False]]))[0].double().numpy()
    beta = 0.5
    ref = TabularLogitPolicy(tree, init=pi_ref)
    with torch.no_grad():
        ref_tok = ref.token_logprobs()
    R_tok = terminal_rewards(ref.tt, r)
    pol = TabularLogitPolicy(tree)

    def loss():
        rows = exact_rows(pol.sequence_logprobs())
        tok = pol.token_logprobs()
        with torch.no_grad():
            ret = L.kl_reward(R_tok, tok, ref_tok, ref.tt.mask, beta=beta).sum(-1)
            a = (ret - (rows.weights * ret).sum()) * rows.weights * rows.index.numel()
        return L.ppo_clip(tok, tok.detach(), a, ref.tt.mask, aggregation="seq-mean-token-sum").loss

    train(pol, loss, steps=300, lr=0.1, lr_end=0.01)
    tv = tv_distance(pol.sequence_distribution(), optimal_policy(p_ref, r, beta))
    assert tv < 1e-4, tv


def test_longwriter_zero_normalizes_each_reward_model_then_averages():
    from rlref.llm import composite

    r_len = _t([[0.0, 1.0, 2.0]])
    r_q = _t([[10.0, 10.0, 40.0]])
    s3 = 1.0  # unbiased std of (0, 1, 2)
    sq = math.sqrt(((10 - 20) ** 2 * 2 + 20**2) / 2)
    want = 0.5 * (_t([[-1.0, 0.0, 1.0]]) / s3 + _t([[-10.0, -10.0, 20.0]]) / sq)
    torch.testing.assert_close(composite.longwriter_zero_advantages(torch.stack([r_len, r_q]), eps=0.0), want)
    # weighting one model fully recovers its GRPO advantage; a flat model contributes 0
    flat = _t([[3.0, 3.0, 3.0]])
    torch.testing.assert_close(composite.longwriter_zero_advantages(torch.stack([r_len, flat]), eps=0.0), 0.5 * _t([[-1.0, 0.0, 1.0]]))


# ----------------------------------------------------------------------------- BEER
def test_beer_bound_holds_for_bellman_consistent_linear_critics_and_the_release_formula():
    """If Q = ⟨φ, w⟩ satisfies r = Q(s,a) − γQ(s',a') exactly, Cauchy–Schwarz gives cos(φ, φ') ≤ bound,
    so the regularizer is 0; the bound is compared with the release's expression written out."""
    from rlref.llm import critic

    g = torch.Generator().manual_seed(9)
    for _ in range(20):
        f = torch.randn(16, 8, generator=g, dtype=torch.float64)
        fn = f + 0.3 * torch.randn(16, 8, generator=g, dtype=torch.float64)  # similar consecutive features
        w = torch.randn(1, 8, generator=g, dtype=torch.float64)
        r = (f @ w.T).squeeze(1) - 0.99 * (fn @ w.T).squeeze(1)
        bound = critic.beer_upper_bound(f, fn, r, w, gamma=0.99)
        cos = torch.nn.functional.cosine_similarity(f, fn, dim=1)
        assert bool((cos <= bound + 1e-12).all())
        assert critic.beer_regularizer(f, fn, r, w, gamma=0.99, beta=1e-3).item() == 0.0
    # release: (0.5/γ)(‖φ‖² + γ²‖φ'‖² − r²/‖w‖²)/(‖φ‖‖φ'‖), with γ = 0.99
    f, fn, w, r = _t([[1.0, 0.0]]), _t([[1.0, 0.1]]), _t([[2.0, 1.0]]), _t([3.0])
    nf, nn_ = 1.0, math.sqrt(1.01)
    want = (0.5 / 0.99) * (nf**2 + 0.99**2 * nn_**2 - 9.0 / 5.0) / (nf * nn_)
    assert critic.beer_upper_bound(f, fn, r, w, gamma=0.99).item() == pytest.approx(want, abs=1e-12)
    cos = 1.0 / nn_
    assert critic.beer_regularizer(f, fn, r, w, gamma=0.99, beta=2.0).item() == pytest.approx(2.0 * max(0.0, cos - want), abs=1e-12)
    assert cos > want  # this pair violates the bound: the regularizer is active


# ----------------------------------------------------------------------------- HAPO
def test_hapo_length_reward_matches_the_release_function():
    """The release's compute_len_reward(history_len, seq_len, is_corr) restated: cos(L/h·π/2) for
    L < 2h else −1; correct -> max(−0.7, ·), incorrect -> min(0, ·); no history -> 0."""
    from rlref.llm import length

    def release(h, n, corr):
        if h is None:
            return 0.0
        r = math.cos(n / h * math.pi / 2) if n < 2 * h else -1.0
        return max(-0.7, r) if corr else min(0.0, r)

    hapo = length.HistoryAwareReward(weight=1.0)
    lens = [50.0, 100.0, 150.0, 170.0, 250.0, 400.0]
    for corr in (True, False):
        c = torch.tensor([corr] * len(lens))
        assert hapo.length_reward("q", _t(lens), c).tolist() == [0.0] * len(lens)
    hapo.update("q", _t([100.0]), torch.tensor([True]))
    for corr in (True, False):
        got = hapo.length_reward("q", _t(lens), torch.tensor([corr] * len(lens))).tolist()
        assert got == pytest.approx([release(100.0, n, corr) for n in lens], abs=1e-12)


# ----------------------------------------------------------------------------- BGPO (masked diffusion)
def test_bgpo_bound_is_linear_below_the_elbo_objective_and_equal_on_policy():
    from rlref.llm import diffusion as D

    g = torch.Generator().manual_seed(13)
    a = _t([1.5, -0.7, 0.0, -2.0])
    old = torch.randn(4, 6, generator=g, dtype=torch.float64)
    # on-policy: value and gradient equal
    e1 = old.clone().requires_grad_(True)
    e2 = old.clone().requires_grad_(True)
    bound = -D.bgpo_loss(e1, old, a)
    obj = D.elbo_ratio_objective(e2, old, a)
    assert bound.item() == pytest.approx(obj.item(), abs=1e-14)
    bound.backward()
    obj.backward()
    torch.testing.assert_close(e1.grad, e2.grad, atol=1e-14, rtol=0)
    # off-policy: a lower bound, and a mean of one-sample terms (gradient accumulation is exact)
    for _ in range(15):
        e = old + 0.8 * torch.randn(4, 6, generator=g, dtype=torch.float64)
        assert -D.bgpo_loss(e, old, a).item() <= D.elbo_ratio_objective(e, old, a).item() + 1e-12
        per_sample = torch.stack([D.bgpo_loss(e[:, j:j + 1], old[:, j:j + 1], a) for j in range(6)]).mean()
        assert D.bgpo_loss(e, old, a).item() == pytest.approx(per_sample.item(), abs=1e-12)
    e = old + 0.8 * torch.randn(4, 6, generator=g, dtype=torch.float64)
    per_obj = torch.stack([D.elbo_ratio_objective(e[:, j:j + 1], old[:, j:j + 1], a) for j in range(6)]).mean()
    assert abs(per_obj.item() - D.elbo_ratio_objective(e, old, a).item()) > 1e-3  # the objective itself is not linear


def _tiny_mdlm(L: int, V: int, seed: int):
    """A tabular masked-diffusion denoiser: one free logit vector per (visible pattern, position)."""
    g = torch.Generator().manual_seed(seed)
    table = {}

    def cond_logp(vis, i):
        key = (vis, i)
        if key not in table:
            table[key] = torch.randn(V, generator=g, dtype=torch.float64)
        return torch.log_softmax(table[key], 0)

    return cond_logp


def test_masked_diffusion_elbo_closed_form_matches_monte_carlo_and_bounds_the_likelihood():
    """On a tiny model (L = 3, V = 2): the subset-sum ELBO equals the Monte Carlo ELBO
    E_{t~U(0,1)}[(1/t) Σ_{masked} log p(y_i | y_t)] (20k samples, within 4 standard errors); it is
    ≤ log p(y) of the random-order sampler for every y, and equal when the conditionals come from
    one joint distribution."""
    import itertools

    import numpy as np

    from rlref.llm import diffusion as D

    L, V = 3, 2
    cond = _tiny_mdlm(L, V, 0)
    rng = np.random.default_rng(0)
    for y in itertools.product(range(V), repeat=L):
        elbo = D.masked_diffusion_elbo_exact(y, cond).item()
        assert elbo <= D.any_order_log_likelihood(y, cond).item() + 1e-12
    y = (1, 0, 1)
    vals = []
    for _ in range(20000):
        t = rng.uniform()
        masked = rng.uniform(size=L) < t
        vis = tuple(-1 if masked[j] else y[j] for j in range(L))
        vals.append(sum(cond(vis, i)[y[i]].item() for i in range(L) if masked[i]) / t)
    vals = np.asarray(vals)
    se = vals.std() / math.sqrt(len(vals))
    assert abs(vals.mean() - D.masked_diffusion_elbo_exact(y, cond).item()) < 4 * se
    # consistent conditionals (from a joint q): ELBO = log q(y) = any-order log-likelihood
    q = torch.softmax(torch.randn(V**L, generator=torch.Generator().manual_seed(1), dtype=torch.float64), 0).reshape((V,) * L)

    def cond_q(vis, i):
        idx = tuple(slice(None) if v == -1 else v for v in vis)
        sub = q[idx]  # joint over the masked positions
        masked = [j for j in range(L) if vis[j] == -1]
        marg = sub.sum(dim=tuple(k for k, j in enumerate(masked) if j != i)) if len(masked) > 1 else sub
        return torch.log(marg / marg.sum())

    for y in itertools.product(range(V), repeat=L):
        lq = math.log(q[y].item())
        assert D.masked_diffusion_elbo_exact(y, cond_q).item() == pytest.approx(lq, abs=1e-12)
        assert D.any_order_log_likelihood(y, cond_q).item() == pytest.approx(lq, abs=1e-12)


# ----------------------------------------------------------------------------- SUPO
def test_supo_segment_policy_gradient_is_the_exact_gradient_on_a_summarizing_token_environment():
    """A two-turn token environment with V = 2: turn 1 emits a1 (2 tokens), then a summary token s
    that *replaces* the context; turn 2 emits a2 (1 token) from (s) alone. R(a1, s, a2) random.
    SUPO's loss — every segment ([a1, s] and [a2]) a row with its trajectory's advantage, through the
    library's ppo_clip, exact trajectory weights — has the exact gradient of E[R] (autograd of
    Σ_τ p(τ) R(τ), centered), so segment-wise training is unbiased."""
    import itertools

    from rlref.llm import agents

    g = torch.Generator().manual_seed(21)
    V = 2
    # tabular logits: turn-1 contexts (), (x), (x, y); summary context (a1); turn-2 context (s,)
    ctx1 = [()] + [(x,) for x in range(V)] + [(x, y) for x in range(V) for y in range(V)]
    theta = {c: torch.randn(V, generator=g, dtype=torch.float64, requires_grad=True) for c in ctx1}
    theta.update({("s", s): torch.randn(V, generator=g, dtype=torch.float64, requires_grad=True) for s in range(V)})
    trajs = list(itertools.product(range(V), range(V), range(V), range(V)))  # (x, y, s, z)
    R = torch.randn(len(trajs), generator=g, dtype=torch.float64)

    def lp(c, tok):
        return torch.log_softmax(theta[c], 0)[tok]

    seg1 = [lp((), x) + lp((x,), y) + lp((x, y), s) for (x, y, s, z) in trajs]  # [a1, s]: the summary is an action
    seg2 = [lp(("s", s), z) for (x, y, s, z) in trajs]  # turn 2 sees only the summary
    log_p = torch.stack([a + b for a, b in zip(seg1, seg2, strict=True)])
    p = torch.exp(log_p).detach()
    params = list(theta.values())
    exact = torch.autograd.grad((torch.exp(log_p) * R).sum(), params, retain_graph=True)
    # SUPO: segments as rows of ppo_clip at ratio 1 with the trajectory's advantage (exact weights folded in)
    adv_traj = (R - (p * R).sum()) * p * len(trajs)  # exact-expectation baseline, weights folded in
    seg_lp = torch.stack(seg1 + seg2).unsqueeze(1)  # 2·|τ| rows of one "token" each (the segment's log-prob)
    seg_traj = torch.tensor(list(range(len(trajs))) * 2)
    a_seg = adv_traj[seg_traj]
    loss = L.ppo_clip(seg_lp, seg_lp.detach(), a_seg, aggregation="seq-mean-token-sum").loss * (2 * len(trajs)) / len(trajs)
    got = torch.autograd.grad(-loss, params)
    for ge, gg in zip(exact, got, strict=True):
        torch.testing.assert_close(gg, ge, atol=1e-12, rtol=1e-10)
    # the library's segment advantages: GRPO over a group of trajectories, gathered per segment
    rg = R[:4].unsqueeze(0)
    a = agents.supo_segment_advantages(rg, torch.tensor([0, 0, 1, 2, 3, 3]))
    from rlref.llm.advantages import grpo
    torch.testing.assert_close(a, grpo(rg)[0][torch.tensor([0, 0, 1, 2, 3, 3])])


# ----------------------------------------------------------------------------- GUI-G1
def test_gui_g1_release_loss_is_ppo_clip_with_rate_scaled_dr_grpo_advantages_and_a_constant_normalizer():
    """GUI-G1's compute_loss (Yuqi-Zhou/GUI-G1 @ e581fe9) restated: advantages r − mean_g (no std),
    per-token −min(ρA, clip(ρ)A), summed over each response, times the sample's rate, divided by 64,
    mean over responses."""
    from rlref.llm.advantages import dr_grpo

    g = torch.Generator().manual_seed(17)
    G, T = 4, 5
    r = _t([[1.0, 0.0, 1.0, 0.5]])
    rate = _t([1.5, 0.5, 2.0, 1.0])
    lp = torch.randn(G, T, generator=g, dtype=torch.float64) * 0.1 - 1.0
    old = lp + 0.2 * torch.randn(G, T, generator=g, dtype=torch.float64)
    m = torch.ones(G, T, dtype=torch.bool)
    m[1, 3:] = False
    adv = (r - r.mean(dim=1, keepdim=True))[0]
    total = 0.0
    for i in range(G):
        s = 0.0
        for t in range(T):
            if m[i, t]:
                rho = math.exp(float(lp[i, t] - old[i, t]))
                s += -min(rho * float(adv[i]), min(max(rho, 0.8), 1.2) * float(adv[i]))
        total += s * float(rate[i]) / 64
    want = total / G
    got = L.ppo_clip(lp, old, dr_grpo(r)[0] * rate, m, aggregation="constant", constant=64).loss
    assert got.item() == pytest.approx(want, abs=1e-12)


def test_aepo_temperature_switch_matches_the_release_at_the_boundary():
    """The release: entropy <= entropy_base -> T_high (1.2), else T_low (0.8)."""
    assert E.aepo_temperature(0.5, 0.5) == 1.2
    assert E.aepo_temperature(0.49, 0.5) == 1.2
    assert E.aepo_temperature(0.51, 0.5) == 0.8


# ----------------------------------------------------------------------------- EPO
def test_epo_phase_weight_and_entropy_mask_match_the_release():
    """_calculate_epoch_based_entropy_weight and generate_entropy_penalty (WujiangXu/EPO @ 5b6fa98) restated."""

    def release_weight(e, K):
        e = max(0, min(e, K))
        half = K // 2
        if e <= half:
            return 1.0 if half == 0 else 1.0 - 0.2 * (1 - math.exp(-2.0 * e / half))
        return 0.8 if K - half == 0 else 0.8 * math.exp(-3.0 * (e - half) / (K - half))

    for K in (1, 7, 150):
        for e in range(K + 1):
            assert E.epo_phase_weight(e, K) == pytest.approx(release_weight(e, K), abs=1e-15)
    h = _t([[0.5, 1.0, 1.3], [2.0, 0.1, 0.9]])
    hist = _t([1.0, 1.0])
    want_tok = [[0.1 if not (0.8 < x < 1.2) else 0.0 for x in row] for row in h.tolist()]
    torch.testing.assert_close(E.epo_entropy_mask(h, hist), _t(want_tok))
    seq = h.mean(1).tolist()  # (0.9333, 1.0): both inside (0.8, 1.2)
    want_seq = [[0.0 if 0.8 < s < 1.2 else 0.1] * 3 for s in seq]
    torch.testing.assert_close(E.epo_entropy_mask(h, hist, mode="seq"), _t(want_seq))
    z = h.clone().requires_grad_(True)
    assert not E.epo_entropy_mask(z, hist).requires_grad  # the released penalty carries no gradient


# ----------------------------------------------------------------------------- APO
def test_apo_dads_and_stcr_match_the_release():
    """calculate_kl_weight and neg_diff_weights (Indolent-Kawhi/View-R1 @ 093f2d8) restated."""
    from rlref.llm import length

    def kl_weight(d):
        if d in (0.0, 1.0):
            return 1.0
        return 1 - math.exp(-math.e * (1 - d))

    acc = [0.0, 0.25, 0.5, 0.75, 1.0]
    torch.testing.assert_close(length.apo_dads_kl_weights(_t(acc), beta=1.0), _t([kl_weight(1 - a) for a in acc]))
    ln = _t([[10.0, 20.0, 40.0, 5.0], [10.0, 30.0, 50.0, 70.0]])
    c = torch.tensor([[True, True, False, False], [False, False, False, False]])
    # group 0: correct mean 15; the wrong 40 is 25 over -> 1 + (1 − 1.00001^{−25}); the wrong 5 is under -> 1
    want = [[1.0, 1.0, 1.0 + (1 - 1.00001 ** (-25.0)), 1.0], [1.0, 1.0, 1.0, 1.0]]  # group 1: no correct -> 1
    torch.testing.assert_close(length.apo_stcr_weights(ln, c), _t(want))
