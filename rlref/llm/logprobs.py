"""Token log-probabilities and entropies, from logits or from hidden states at scale.

Every RL objective for language models starts from ``log π(y_t | y_<t)`` of the sampled tokens
and, for entropy regularizers, the per-token entropy ``H_t = −Σ_v π(v|y_<t) log π(v|y_<t)``.

* :func:`token_logprobs` / :func:`token_entropy` take logits ``[..., V]``.
* :func:`token_logprobs_from_hidden` takes the last hidden states ``h[N, d]`` and the output
  projection ``W[V, d]`` (logits ``z = h Wᵀ / T``) and never materializes the ``N × V`` fp32
  logits: it processes ``chunk_size`` tokens at a time, keeps only the per-token logsumexp, and
  recomputes each chunk's logits in the backward pass (a custom ``torch.autograd.Function``).
  Peak extra memory is ``O(chunk_size · V)`` instead of ``O(N · V)``.

Numerics: softmax reductions run in fp32 (fp64 for fp64 inputs). For bf16/fp16 inputs the
matrix product runs in the input dtype — the GEMM accumulates in fp32 internally — and its
output is upcast to fp32 before the logsumexp, exactly what the naive path
``log_softmax((h @ W.T).float())`` does.

References: the chunk-and-recompute scheme is the standard memory-saving trick for the
output-layer cross-entropy (e.g. Wijmans et al. 2025, "Cut Your Losses in Large-Vocabulary
Language Models", Sec. 3); the entropy gradient ∂H/∂z_j = −p_j (log p_j + H) is derived here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from rlref.llm._checks import check_float_tensor, check_index_tensor, check_logits, check_positive_scalar
from rlref.llm._ops import acc_dtype as _acc_dtype
from rlref.llm.divergences import categorical_entropy

__all__ = [
    "TokenLogprobs",
    "token_logprobs",
    "token_entropy",
    "token_logprobs_from_hidden",
]


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, *, temperature: float = 1.0) -> torch.Tensor:
    """Log-probability of each sampled token under ``softmax(logits / T)``.

    log π(y_t) = z_t[y_t]/T − logsumexp_v z_t[v]/T.

    Shapes: logits[..., V], tokens[...] (integer ids in [0, V)) -> [...] in fp32 (fp64 for fp64
    logits). Differentiable w.r.t. ``logits``.
    Raises ValueError on a shape mismatch, a token id outside [0, V), NaN or +inf logits (−inf is a
    masked token and is allowed) or temperature <= 0.

    References: definition (softmax policy over the vocabulary).
    """
    check_logits("logits", logits)
    if not isinstance(tokens, torch.Tensor):
        raise ValueError(f"tokens must be a torch.Tensor of token ids, got {type(tokens).__name__}")
    if tuple(tokens.shape) != tuple(logits.shape[:-1]):
        want = tuple(logits.shape[:-1])
        raise ValueError(f"tokens must have shape {want} (logits without the vocab axis), got {tuple(tokens.shape)}")
    check_index_tensor("tokens", tokens, logits.shape[-1])
    t = check_positive_scalar("temperature", temperature)
    z = logits.to(_acc_dtype(logits.dtype))
    if t != 1.0:
        z = z / t
    picked = torch.gather(z, -1, tokens.long().unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(z, dim=-1)


def token_entropy(logits: torch.Tensor, *, temperature: float = 1.0) -> torch.Tensor:
    """Entropy of ``softmax(logits / T)`` at every position.

    H = −Σ_v p_v log p_v = logsumexp(z) − Σ_v p_v z_v   (z = logits / T), computed in log space
    so that p_v = 0 contributes 0 (0·log 0 = 0).

    Shapes: logits[..., V] -> [...] in fp32 (fp64 for fp64 logits). Differentiable; −inf logits
    (a vocabulary mask) contribute 0 to the value and to the gradient.
    Raises ValueError if logits are not a floating tensor with a non-empty last axis, hold NaN or
    +inf (or a row of only −inf), or T <= 0.

    References: definition (Shannon entropy of the next-token distribution).
    """
    check_logits("logits", logits)
    t = check_positive_scalar("temperature", temperature)
    z = logits.to(_acc_dtype(logits.dtype))
    if t != 1.0:
        z = z / t
    # 0·log 0 = 0 with a zero gradient on −inf logits (rlref.llm.divergences.categorical_entropy)
    return categorical_entropy(torch.log_softmax(z, dim=-1))


@dataclass(frozen=True)
class TokenLogprobs:
    """Per-token log-probabilities and entropies (both shape [N], fp32 or fp64)."""

    logprobs: torch.Tensor
    entropy: torch.Tensor


class _HiddenLogprobs(torch.autograd.Function):
    """Chunked log-probs (and entropies) of ``softmax(h Wᵀ / T)`` with recomputation in backward."""

    @staticmethod
    def forward(ctx, hidden, weight, tokens, chunk_size, temperature, with_entropy):  # type: ignore[override]
        n = hidden.shape[0]
        acc = _acc_dtype(hidden.dtype)
        logp = torch.empty(n, dtype=acc, device=hidden.device)
        lse = torch.empty(n, dtype=acc, device=hidden.device)
        ent = torch.empty(n, dtype=acc, device=hidden.device) if with_entropy else None
        inv_t = 1.0 / temperature
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            z = (hidden[start:stop] @ weight.T).to(acc)
            if inv_t != 1.0:
                z.mul_(inv_t)
            m = torch.logsumexp(z, dim=-1)
            lse[start:stop] = m
            logp[start:stop] = z.gather(-1, tokens[start:stop].unsqueeze(-1)).squeeze(-1) - m
            if ent is not None:
                # H = lse − Σ p z, with p = exp(z − lse).
                p = torch.exp(z - m.unsqueeze(-1))
                ent[start:stop] = m - torch.linalg.vecdot(p, z)
                del p
            del z
        saved = [hidden, weight, tokens, lse] + ([ent] if ent is not None else [])
        ctx.save_for_backward(*saved)
        ctx.chunk_size = chunk_size
        ctx.inv_t = inv_t
        ctx.with_entropy = with_entropy
        if ent is not None:
            return logp, ent
        return logp

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):  # type: ignore[override]
        if ctx.with_entropy:
            hidden, weight, tokens, lse, ent = ctx.saved_tensors
            g_logp, g_ent = grads
        else:
            hidden, weight, tokens, lse = ctx.saved_tensors
            (g_logp,) = grads
            g_ent, ent = None, None
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        acc = lse.dtype
        inv_t = ctx.inv_t
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_w else None
        n = hidden.shape[0]
        for start in range(0, n, ctx.chunk_size):
            stop = min(start + ctx.chunk_size, n)
            h = hidden[start:stop]
            z = (h @ weight.T).to(acc)
            if inv_t != 1.0:
                z.mul_(inv_t)
            # In place on the one fp32 block: z -> log p -> gz, where
            # gz = p · (−g_logp − g_ent · (log p + H)) + g_logp · onehot(y)
            #   from ∂ log p_y/∂z_j = 1[j = y] − p_j and ∂H/∂z_j = −p_j (log p_j + H) (derived here).
            z.sub_(lse[start:stop].unsqueeze(-1))
            gl = g_logp[start:stop].to(acc).unsqueeze(-1)
            if g_ent is not None:
                ge = g_ent[start:stop].to(acc).unsqueeze(-1)
                p = z.exp()
                z.add_(ent[start:stop].unsqueeze(-1)).mul_(-ge).sub_(gl).mul_(p)
                del p
            else:
                z.exp_().mul_(-gl)
            gz = z
            gz.scatter_add_(-1, tokens[start:stop].unsqueeze(-1), gl)
            if inv_t != 1.0:
                gz.mul_(inv_t)
            gz_in = gz.to(hidden.dtype)
            if grad_h is not None:
                grad_h[start:stop] = gz_in @ weight
            if grad_w is not None:
                if gz_in.dtype == grad_w.dtype:
                    grad_w.addmm_(gz_in.T, h)  # in place: no (V, d) temporary per chunk
                else:  # bf16/fp16 product (fast on GPUs), accumulated into the fp32 buffer
                    grad_w.add_(gz_in.T @ h)
            del gz, gz_in
        if grad_w is not None:
            grad_w = grad_w.to(weight.dtype)
        return grad_h, grad_w, None, None, None, None


def token_logprobs_from_hidden(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    tokens: torch.Tensor,
    *,
    chunk_size: int = 1024,
    temperature: float = 1.0,
    return_entropy: bool = False,
) -> torch.Tensor | TokenLogprobs:
    """Token log-probs (and entropies) of ``softmax(h Wᵀ / T)`` without the full logits.

    log π(y_n) = z_n[y_n] − logsumexp_v z_n[v],  z_n = h_n Wᵀ / T;
    H_n = logsumexp_v z_n[v] − Σ_v p_n[v] z_n[v].

    Shapes: hidden[N, d], weight[V, d] (the LM head, ``lm_head.weight``), tokens[N] ids in
    [0, V) -> logprobs[N] (fp32; fp64 for fp64 inputs), or a :class:`TokenLogprobs` with
    ``logprobs[N]`` and ``entropy[N]`` when ``return_entropy``. Leading batch axes: flatten
    them first (``hidden.reshape(-1, d)``).

    Memory: saves only ``hidden``, ``weight``, ``tokens`` and the per-token logsumexp (and
    entropy) for backward; the forward and the backward each hold one ``chunk_size × V``
    block of fp32 logits at a time. The backward accumulates ``∂/∂W`` in fp32.
    Gradients: w.r.t. ``hidden`` and ``weight`` (both logprobs and entropy are differentiable).

    Raises ValueError on shape/dtype mismatches, out-of-range token ids, chunk_size < 1 or
    temperature <= 0.

    References: chunked output-layer recomputation as in Wijmans et al. (2025), "Cut Your
    Losses in Large-Vocabulary Language Models", Sec. 3; gradients derived here.
    """
    check_float_tensor("hidden", hidden, ndim=2)
    check_float_tensor("weight", weight, ndim=2)
    if weight.shape[1] != hidden.shape[1]:
        d = hidden.shape[1]
        raise ValueError(f"weight must have shape [V, {d}] (hidden size d = {d}), got {tuple(weight.shape)}")
    if weight.dtype != hidden.dtype:
        raise ValueError(f"weight dtype {weight.dtype} must equal hidden dtype {hidden.dtype}")
    if weight.shape[0] == 0:
        raise ValueError("weight must have at least one row (vocabulary size V >= 1)")
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 1 or tokens.shape[0] != hidden.shape[0]:
        got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"tokens must be a tensor of shape [{hidden.shape[0]}] (one id per hidden row), got {got}")
    check_index_tensor("tokens", tokens, weight.shape[0])
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    t = check_positive_scalar("temperature", temperature)
    out = _HiddenLogprobs.apply(hidden, weight, tokens.long(), chunk_size, t, bool(return_entropy))
    if return_entropy:
        logp, ent = out
        return TokenLogprobs(logprobs=logp, entropy=ent)
    return out
