"""The token-tree bridge in torch: policies over an enumerable tree, trained with rlref.llm losses.

A :class:`rlref.tokentree.TokenTree` enumerates every response; here it becomes padded tensors
(``tokens[y, t]``, ``mask[y, t]``), and two torch policies produce the exact log-probability of
every response:

* :class:`TabularLogitPolicy` — one free logit row per open prefix (the tabular policy class,
  so every distribution over responses is reachable);
* :class:`TinyTransformer` — a one- or two-layer causal transformer (plain torch, a few thousand
  parameters) over the same tokens.

Because every response is enumerated, expectations are exact sums ``Σ_y π(y) f(y)`` — the
``rlref.llm`` losses can be driven with exact expectations (no sampling) and their fixed points
compared with the exact tabular optimum (``rlref.theory.kl_regularized.optimal_policy`` and
friends). :func:`sample_batch` draws responses for the sampled variant of the same tests.

References: DESIGN.md, "The token-tree bridge"; Korbak, Perez, Buckley (2022), §3.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rlref.llm.logprobs import token_logprobs
from rlref.tokentree import TokenTree

__all__ = ["TreeTensors", "tree_tensors", "TabularLogitPolicy", "TinyTransformer", "TrainResult", "train", "sample_batch"]


@dataclass(frozen=True)
class TreeTensors:
    """A token tree as padded tensors.

    Attributes:
      tokens: ``[Y, L]`` long, the responses (padding 0).
      mask: ``[Y, L]`` bool, True on real tokens.
      prefix: ``[Y, L]`` long, index of the open prefix each token is emitted from (padding 0).
      lengths: ``[Y]`` long.
    """

    tree: TokenTree
    tokens: torch.Tensor
    mask: torch.Tensor
    prefix: torch.Tensor
    lengths: torch.Tensor


def tree_tensors(tree: TokenTree, device: torch.device | str | None = None) -> TreeTensors:
    """Padded tensors of every response of ``tree`` (see :class:`TreeTensors`)."""
    steps = tree.steps
    mask = steps[:, :, 0] >= 0
    return TreeTensors(
        tree=tree,
        tokens=torch.as_tensor(np.where(mask, steps[:, :, 1], 0), dtype=torch.long, device=device),
        mask=torch.as_tensor(mask, device=device),
        prefix=torch.as_tensor(np.where(mask, steps[:, :, 0], 0), dtype=torch.long, device=device),
        lengths=torch.as_tensor(tree.lengths, dtype=torch.long, device=device),
    )


class _TreePolicy(nn.Module, abc.ABC):
    """Shared interface: token log-probs ``[Y, L]`` (0 on padding) and response log-probs ``[Y]``."""

    tt: TreeTensors

    @abc.abstractmethod
    def token_logits(self) -> torch.Tensor:
        """Next-token logits ``[Y, L, V]`` at every position of every response."""

    def token_logprobs(self) -> torch.Tensor:
        """log π(y_t | y_<t) for every response and position; 0 on padding."""
        lp = token_logprobs(self.token_logits(), self.tt.tokens)
        return torch.where(self.tt.mask, lp, torch.zeros_like(lp))

    def sequence_logprobs(self) -> torch.Tensor:
        """log π(y) = Σ_t log π(y_t | y_<t) for every response."""
        return self.token_logprobs().sum(dim=-1)

    @torch.no_grad()
    def policy_table(self) -> np.ndarray:
        """The per-prefix next-token distribution ``pi[x, v]`` as a float64 numpy array."""
        tree = self.tt.tree
        probs = torch.softmax(self.token_logits().double(), dim=-1).cpu().numpy()
        pi = np.full((tree.num_prefixes, tree.vocab_size), np.nan)
        m = self.tt.mask.cpu().numpy()
        pi[self.tt.prefix.cpu().numpy()[m]] = probs[m]
        return pi


class TabularLogitPolicy(_TreePolicy):
    """One free logit row per open prefix: ``π(v | x) = softmax(θ[x])_v``.

    Args:
      tree: the token tree.
      init: optional ``pi[x, v]`` to start from (log is taken; zeros are clipped at 1e-30).
      dtype: parameter dtype (float64 for tight comparisons with the exact optimum).
    """

    def __init__(self, tree: TokenTree, init: np.ndarray | None = None, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.tt = tree_tensors(tree)
        if init is None:
            theta = torch.zeros(tree.num_prefixes, tree.vocab_size, dtype=dtype)
        else:
            pi = tree.validate_policy(init, "init")
            theta = torch.as_tensor(np.log(np.maximum(pi, 1e-30)), dtype=dtype)
        self.logits = nn.Parameter(theta)

    def token_logits(self) -> torch.Tensor:
        return self.logits[self.tt.prefix]


class TinyTransformer(_TreePolicy):
    """A small causal transformer over the tree's tokens (BOS + positions + pre-LN blocks).

    The logits at position t are computed from ``(BOS, y_0, ..., y_{t-1})``, so the model is an
    autoregressive policy over the same responses as the tabular one.
    """

    def __init__(self, tree: TokenTree, d_model: int = 32, n_heads: int = 2, n_layers: int = 1,
                 seed: int = 0, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.tt = tree_tensors(tree)
        V, L = tree.vocab_size, tree.max_len
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._build(V, L, d_model, n_heads, n_layers)
        self.to(dtype)
        causal = torch.triu(torch.full((L, L), float("-inf"), dtype=dtype), diagonal=1)
        self.register_buffer("causal", causal, persistent=False)

    def _build(self, V: int, L: int, d_model: int, n_heads: int, n_layers: int) -> None:
        self.embed = nn.Embedding(V + 1, d_model)  # token V is BOS
        self.pos = nn.Embedding(L, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=2 * d_model, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, V)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``[B, L, V]`` for response tokens ``[B, L]`` (teacher forcing)."""
        B, L = tokens.shape
        bos = torch.full((B, 1), self.embed.num_embeddings - 1, dtype=torch.long, device=tokens.device)
        inp = torch.cat([bos, tokens[:, :-1]], dim=1)
        h = self.embed(inp) + self.pos(torch.arange(L, device=tokens.device))
        h = self.blocks(h, mask=self.causal[:L, :L])
        return self.head(self.norm(h))

    def token_logits(self) -> torch.Tensor:
        return self.forward(self.tt.tokens)


@dataclass(frozen=True)
class TrainResult:
    """Loss trace of :func:`train` (``losses[k]`` at step k) and the number of steps."""

    losses: np.ndarray
    steps: int


def train(policy: nn.Module, loss_fn: Callable[[], torch.Tensor], *, steps: int, lr: float = 0.1,
          optimizer: str = "adam") -> TrainResult:
    """Minimize ``loss_fn()`` over ``policy``'s parameters with Adam (or plain SGD).

    ``loss_fn`` closes over the policy and recomputes the loss from scratch (exact expectations
    or a fresh sampled batch) at every step.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(policy.parameters(), lr=lr)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    losses = np.empty(steps)
    for k in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        if not torch.isfinite(loss):
            raise RuntimeError(f"loss became {loss.item()} at step {k}")
        loss.backward()
        opt.step()
        losses[k] = float(loss.detach())
    return TrainResult(losses=losses, steps=steps)


def sample_batch(seq_logprobs: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``n`` responses drawn i.i.d. from ``softmax(seq_logprobs)`` (no gradient)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    p = torch.softmax(seq_logprobs.detach().double(), dim=0)
    return torch.multinomial(p, n, replacement=True, generator=generator)
