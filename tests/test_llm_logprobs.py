"""Tests for rlref.llm.logprobs: the chunked hidden-state path equals log_softmax + gather."""

import math

import pytest

torch = pytest.importorskip("torch")

from rlref.llm.logprobs import (  # noqa: E402
    TokenLogprobs,
    token_entropy,
    token_logprobs,
    token_logprobs_from_hidden,
)


def _gen(seed: int) -> "torch.Generator":
    return torch.Generator().manual_seed(seed)


def _naive(hidden, weight, tokens, temperature=1.0):
    z = (hidden @ weight.T).float() if hidden.dtype != torch.float64 else hidden @ weight.T
    logp = torch.log_softmax(z / temperature, dim=-1)
    picked = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    ent = -(logp.exp() * logp).sum(-1)
    return picked, ent


def test_token_logprobs_hand_case():
    # logits (0, log 2, log 3): softmax = (1, 2, 3)/6.
    logits = torch.tensor([[0.0, math.log(2.0), math.log(3.0)]])
    out = token_logprobs(logits, torch.tensor([2]))
    assert out.item() == pytest.approx(math.log(3 / 6), abs=1e-6)
    ent = token_entropy(logits)
    p = [1 / 6, 2 / 6, 3 / 6]
    assert ent.item() == pytest.approx(-sum(q * math.log(q) for q in p), abs=1e-6)


def test_token_logprobs_temperature_hand_case():
    # logits (0, 2) at T = 2 -> softmax(0, 1): log p_1 = 1 - log(1 + e)
    out = token_logprobs(torch.tensor([0.0, 2.0]), torch.tensor(1), temperature=2.0)
    assert out.item() == pytest.approx(1 - math.log(1 + math.e), abs=1e-6)


def test_entropy_handles_zero_probabilities():
    """0·log 0 = 0: a -inf logit contributes nothing; uniform over the other two gives log 2."""
    ent = token_entropy(torch.tensor([[0.0, 0.0, -float("inf")]]))
    assert ent.item() == pytest.approx(math.log(2.0), abs=1e-6)
    assert torch.isfinite(ent).all()


def test_token_logprobs_matches_log_softmax_batched():
    g = _gen(1)
    logits = torch.randn(2, 5, 13, generator=g)
    tokens = torch.randint(0, 13, (2, 5), generator=g)
    ref = torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(token_logprobs(logits, tokens), ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_from_hidden_matches_naive_fp32_with_gradients(chunk_size, temperature):
    """Values and grads w.r.t. hidden and weight equal the naive path to 1e-5 in fp32."""
    g = _gen(2)
    n, d, v = 37, 16, 101
    hidden = torch.randn(n, d, generator=g, requires_grad=True)
    weight = (0.3 * torch.randn(v, d, generator=g)).requires_grad_(True)
    tokens = torch.randint(0, v, (n,), generator=g)
    w_out = torch.randn(n, generator=g)
    w_ent = torch.randn(n, generator=g)

    res = token_logprobs_from_hidden(hidden, weight, tokens, chunk_size=chunk_size, temperature=temperature, return_entropy=True)
    assert isinstance(res, TokenLogprobs)
    gh, gw = torch.autograd.grad((res.logprobs * w_out).sum() + (res.entropy * w_ent).sum(), (hidden, weight))

    ref_lp, ref_ent = _naive(hidden, weight, tokens, temperature)
    rh, rw = torch.autograd.grad((ref_lp * w_out).sum() + (ref_ent * w_ent).sum(), (hidden, weight))
    torch.testing.assert_close(res.logprobs, ref_lp, atol=1e-5, rtol=0)
    torch.testing.assert_close(res.entropy, ref_ent, atol=1e-5, rtol=0)
    torch.testing.assert_close(gh, rh, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gw, rw, atol=1e-5, rtol=1e-5)


def test_from_hidden_gradcheck_float64():
    """torch.autograd.gradcheck (finite differences) on both outputs, grads w.r.t. hidden and weight."""
    g = _gen(3)
    n, d, v = 6, 4, 9
    hidden = torch.randn(n, d, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(v, d, dtype=torch.float64, generator=g, requires_grad=True)
    tokens = torch.randint(0, v, (n,), generator=g)

    def f(h, w):
        r = token_logprobs_from_hidden(h, w, tokens, chunk_size=4, temperature=0.8, return_entropy=True)
        return r.logprobs, r.entropy

    assert torch.autograd.gradcheck(f, (hidden, weight))
    assert torch.autograd.gradcheck(lambda h, w: token_logprobs_from_hidden(h, w, tokens, chunk_size=2), (hidden, weight))


def test_from_hidden_bf16_accumulates_in_fp32():
    """bf16 inputs: outputs are fp32 and equal the naive bf16-matmul-then-fp32-softmax path."""
    g = _gen(4)
    n, d, v = 20, 32, 257
    hidden = torch.randn(n, d, generator=g).bfloat16().requires_grad_(True)
    weight = (0.2 * torch.randn(v, d, generator=g)).bfloat16().requires_grad_(True)
    tokens = torch.randint(0, v, (n,), generator=g)
    out = token_logprobs_from_hidden(hidden, weight, tokens, chunk_size=7)
    assert out.dtype == torch.float32
    ref, _ = _naive(hidden, weight, tokens)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    gh, gw = torch.autograd.grad(out.sum(), (hidden, weight))
    rh, rw = torch.autograd.grad(ref.sum(), (hidden, weight))
    assert gh.dtype == torch.bfloat16 and gw.dtype == torch.bfloat16
    torch.testing.assert_close(gh.float(), rh.float(), atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(gw.float(), rw.float(), atol=2e-2, rtol=2e-2)


def test_from_hidden_result_independent_of_chunk_size():
    g = _gen(5)
    hidden = torch.randn(11, 8, dtype=torch.float64, generator=g)
    weight = torch.randn(17, 8, dtype=torch.float64, generator=g)
    tokens = torch.randint(0, 17, (11,), generator=g)
    outs = [token_logprobs_from_hidden(hidden, weight, tokens, chunk_size=c) for c in (1, 4, 11, 100)]
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], atol=1e-12, rtol=0)


def test_bad_inputs_raise():
    h = torch.randn(4, 3)
    w = torch.randn(5, 3)
    y = torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="weight must have shape"):
        token_logprobs_from_hidden(h, torch.randn(5, 4), y)
    with pytest.raises(ValueError, match="tokens must be a tensor of shape"):
        token_logprobs_from_hidden(h, w, y[:3])
    with pytest.raises(ValueError, match="tokens must lie in"):
        token_logprobs_from_hidden(h, w, torch.tensor([0, 1, 2, 5]))
    with pytest.raises(ValueError, match="chunk_size"):
        token_logprobs_from_hidden(h, w, y, chunk_size=0)
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs_from_hidden(h, w, y, temperature=0.0)
    with pytest.raises(ValueError, match="dtype"):
        token_logprobs_from_hidden(h, w.double(), y)
    with pytest.raises(ValueError, match="tokens must have shape"):
        token_logprobs(torch.randn(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer tensor"):
        token_logprobs(torch.randn(2, 5), torch.zeros(2))
    with pytest.raises(ValueError, match="floating-point"):
        token_entropy(torch.zeros(2, 5, dtype=torch.long))


def test_token_logprobs_rejects_non_tensor_tokens():
    with pytest.raises(ValueError, match="tokens must be a torch.Tensor"):
        token_logprobs(torch.zeros(2, 3), [0, 1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the CPU path is tested above)")
def test_from_hidden_cuda_matches_naive_bf16():
    """On a GPU: the chunked path in bf16 equals log_softmax((h @ W.T).float()) and its gradients."""
    g = _gen(6)
    n, d, v = 64, 32, 1000
    hidden = torch.randn(n, d, generator=g).bfloat16().cuda().requires_grad_(True)
    weight = (0.2 * torch.randn(v, d, generator=g)).bfloat16().cuda().requires_grad_(True)
    tokens = torch.randint(0, v, (n,), generator=g).cuda()
    out = token_logprobs_from_hidden(hidden, weight, tokens, chunk_size=16, return_entropy=True)
    ref_lp, ref_ent = _naive(hidden, weight, tokens)
    torch.testing.assert_close(out.logprobs, ref_lp, atol=1e-4, rtol=0)
    torch.testing.assert_close(out.entropy, ref_ent, atol=1e-4, rtol=0)
    gh, gw = torch.autograd.grad(out.logprobs.sum() + out.entropy.sum(), (hidden, weight))
    rh, rw = torch.autograd.grad(ref_lp.sum() + ref_ent.sum(), (hidden, weight))
    torch.testing.assert_close(gh.float(), rh.float(), atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(gw.float(), rw.float(), atol=2e-2, rtol=2e-2)
