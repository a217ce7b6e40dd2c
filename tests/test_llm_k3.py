"""The gradient bias of the KL estimators *inside the loss*, measured exactly (no sampling noise).

A categorical policy π = softmax(θ) over V tokens and a fixed reference. For an estimator k the loss
of one sampled token y is β·k(log π(y), log π_ref(y)) (``kl_loss``), differentiated through log π(y)
with y fixed, as GRPO's loss is. Its expected gradient E_{y∼π}[∇_θ k(y)] = Σ_y π(y) ∇_θ k(y) is
computed here by enumerating every y (``aggregation="none"`` gives the per-sample losses, weighted by
the detached π(y)), and compared with golden values that do not use the code under test: the
autograd gradient of the exact KL(π‖π_ref) = Σ_y π (log π − log π_ref) written out in torch, and the
closed forms ∇_θ KL(π‖π_ref)_j = π_j (log π_j − log π_ref,j − KL) and ∇_θ KL(π_ref‖π) = π − π_ref.

Claims (Tang & Munos 2025; verl's "k3+"): k1 -> 0 (bias −∇KL); k2 -> ∇KL (unbiased); k3 -> ∇KL(π_ref‖π)
(biased; the bias is second order in log(π/π_ref)); k3+ -> ∇KL (unbiased) with the value of k3.
"""

from __future__ import annotations

import pytest
import torch

from rlref.llm.divergences import KL_ESTIMATORS, kl_penalty
from rlref.llm.losses import kl_loss


def _expected_grad(theta: torch.Tensor, ref_logp: torch.Tensor, estimator: str) -> torch.Tensor:
    """Σ_y π(y) ∇_θ kl_loss(log π(y), log π_ref(y)): the exact expected gradient of the sampled loss."""
    th = theta.clone().requires_grad_(True)
    logp = torch.log_softmax(th, dim=-1)
    per_sample = kl_loss(logp.unsqueeze(1), ref_logp.unsqueeze(1), beta=1.0, estimator=estimator, aggregation="none")[:, 0]
    (g,) = torch.autograd.grad((logp.exp().detach() * per_sample).sum(), th)
    return g


def _exact_kl_grad(theta: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    th = theta.clone().requires_grad_(True)
    logp = torch.log_softmax(th, dim=-1)
    (g,) = torch.autograd.grad((logp.exp() * (logp - ref_logp)).sum(), th)
    return g


def _case(seed: int, v: int = 6, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    theta = scale * torch.randn(v, generator=g, dtype=torch.float64)
    ref_logp = torch.log_softmax(scale * torch.randn(v, generator=g, dtype=torch.float64), dim=-1)
    return theta, ref_logp


def test_k3_plus_is_registered():
    assert "k3+" in KL_ESTIMATORS


@pytest.mark.parametrize("seed", range(5))
def test_closed_forms_of_the_exact_gradients(seed):
    """The golden values agree with each other: autograd of the exact KL = π(log π − log π_ref − KL)."""
    theta, ref = _case(seed)
    p = torch.softmax(theta, -1)
    kl = (p * (p.log() - ref)).sum()
    torch.testing.assert_close(_exact_kl_grad(theta, ref), p * (p.log() - ref - kl), atol=1e-14, rtol=0)


@pytest.mark.parametrize("seed", range(5))
def test_expected_gradient_of_each_estimator_in_the_loss(seed):
    theta, ref = _case(seed)
    p = torch.softmax(theta, -1)
    grad_kl = _exact_kl_grad(theta, ref)
    grad_reverse = p - ref.exp()  # ∇_θ KL(π_ref ‖ π) for softmax logits
    # k1: the score function has mean zero, so the pathwise k1 loss carries no KL gradient at all
    torch.testing.assert_close(_expected_grad(theta, ref, "k1"), torch.zeros_like(theta), atol=1e-15, rtol=0)
    # k2 and k3+: exactly the gradient of KL(π ‖ π_ref)
    torch.testing.assert_close(_expected_grad(theta, ref, "k2"), grad_kl, atol=1e-14, rtol=0)
    torch.testing.assert_close(_expected_grad(theta, ref, "k3+"), grad_kl, atol=1e-14, rtol=0)
    # k3: the gradient of the *reverse* KL(π_ref ‖ π), which is not ∇KL(π ‖ π_ref)
    g3 = _expected_grad(theta, ref, "k3")
    torch.testing.assert_close(g3, grad_reverse, atol=1e-14, rtol=0)
    assert float((g3 - grad_kl).norm()) > 1e-3 * float(grad_kl.norm())


def test_k3_plus_has_the_value_of_k3_so_its_mean_is_the_kl():
    theta, ref = _case(7)
    logp = torch.log_softmax(theta, -1)
    p = logp.exp()
    k3p, k3 = kl_penalty(logp, ref, "k3+"), kl_penalty(logp, ref, "k3")
    assert torch.equal(k3p.detach(), k3)
    torch.testing.assert_close((p * k3p).sum(), (p * (logp - ref)).sum(), atol=1e-14, rtol=0)


def test_k3_gradient_bias_is_second_order_in_the_log_ratio():
    """With π_ref = softmax(θ + εu): ∇KL(π‖ref) and ∇KL(ref‖π) agree to first order in ε, so the k3 bias is
    Θ(ε²) (halving ε divides it by ≈ 4) while the gradient itself is Θ(ε): the relative bias is Θ(ε)."""
    g = torch.Generator().manual_seed(11)
    theta = torch.randn(5, generator=g, dtype=torch.float64)
    u = torch.randn(5, generator=g, dtype=torch.float64)
    bias, size = [], []
    for eps in (0.2, 0.1, 0.05):
        ref = torch.log_softmax(theta + eps * u, -1)
        gk = _exact_kl_grad(theta, ref)
        bias.append(float((_expected_grad(theta, ref, "k3") - gk).norm()))
        size.append(float(gk.norm()))
    assert 3.5 < bias[0] / bias[1] < 4.5 and 3.5 < bias[1] / bias[2] < 4.5
    assert 1.8 < size[0] / size[1] < 2.2


def test_documented_numbers():
    """The example in docs/llm.md: π uniform over 4 tokens, π_ref = (0.1, 0.2, 0.3, 0.4)."""
    theta = torch.zeros(4, dtype=torch.float64)
    ref = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64).log()
    gk = _exact_kl_grad(theta, ref)
    g3 = _expected_grad(theta, ref, "k3")
    torch.testing.assert_close(g3, torch.tensor([0.15, 0.05, -0.05, -0.15], dtype=torch.float64), atol=1e-14, rtol=0)
    d = torch.log(0.25 / torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64))  # log π − log π_ref
    torch.testing.assert_close(gk, 0.25 * (d - 0.25 * d.sum()), atol=1e-14, rtol=0)  # π_j (d_j − KL)
    rel = float((g3 - gk).norm() / gk.norm())
    assert abs(0.25 * float(d.sum()) - 0.1218) < 1e-4 and abs(float(gk.norm()) - 0.2603) < 1e-4 and abs(rel - 0.2322) < 1e-4


def test_pathwise_per_token_losses_miss_the_future_kl_score_term():
    """Two positions: π(y1) and π(y2|y1) tabular. The per-token k2 / k3+ loss Σ_t k(y_t) has expected gradient
    E[Σ_t ∇ KL_t] (pathwise), while ∇KL_seq also holds E[∇log π(y1) · KL(π(·|y1) ‖ π_ref(·|y1))]: the
    identity ∇KL_seq = E[∇ Σ_t k2_t] + that score term holds exactly, and the score term is not zero."""
    g = torch.Generator().manual_seed(3)
    v = 3
    th1 = torch.randn(v, generator=g, dtype=torch.float64).requires_grad_(True)
    th2 = torch.randn(v, v, generator=g, dtype=torch.float64).requires_grad_(True)
    r1 = torch.log_softmax(torch.randn(v, generator=g, dtype=torch.float64), -1)
    r2 = torch.log_softmax(torch.randn(v, v, generator=g, dtype=torch.float64), -1)
    l1, l2 = torch.log_softmax(th1, -1), torch.log_softmax(th2, -1)  # l2[y1, y2]
    joint = (l1.unsqueeze(1) + l2).exp()  # p(y1, y2)
    kl_seq = (joint * (l1.unsqueeze(1) + l2 - r1.unsqueeze(1) - r2)).sum()
    g_seq = torch.autograd.grad(kl_seq, (th1, th2), retain_graph=True)
    kl2 = (l2.exp() * (l2 - r2)).sum(1)  # KL at position 2 given y1
    for est in ("k2", "k3+"):
        lp = torch.stack([l1.unsqueeze(1).expand(v, v), l2], dim=-1).reshape(v * v, 2)
        rp = torch.stack([r1.unsqueeze(1).expand(v, v), r2], dim=-1).reshape(v * v, 2)
        per_tok = kl_loss(lp, rp, beta=1.0, estimator=est, aggregation="none").sum(1)
        g_tok = torch.autograd.grad((joint.detach().reshape(-1) * per_tok).sum(), (th1, th2), retain_graph=True)
        score = torch.autograd.grad((l1.exp().detach() * l1 * kl2.detach()).sum(), (th1, th2), allow_unused=True, retain_graph=True)
        score = tuple(torch.zeros_like(t) if s is None else s for s, t in zip(score, (th1, th2), strict=True))
        for a, b, c in zip(g_seq, g_tok, score, strict=True):
            torch.testing.assert_close(a, b + c, atol=1e-13, rtol=0)
        assert float(score[0].norm()) > 1e-3
