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
