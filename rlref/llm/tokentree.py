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
friends). :func:`exact_rows` / :func:`exact_pairs` weight every response / labelled pair by its
exact probability; :func:`sampled_rows` / :func:`sampled_pairs` (and :func:`sample_batch`) draw
them for the sampled variant. :func:`pathwise_kl_fixed_point` gives the exact stationary point of
a policy gradient with a k2/k3 KL *loss*, which is not the KL-regularized optimum. See
docs/llm_tokentree.md for the objectives, their optima and the tolerances.

References: DESIGN.md, "The token-tree bridge"; Korbak, Perez, Buckley (2022), §3.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import logsumexp
from torch import nn

from rlref._checks import as_float_array, check_distribution, check_finite, check_positive
from rlref.divergences import total_variation
from rlref.llm.logprobs import token_logprobs
from rlref.tokentree import TokenTree

__all__ = [
    "TreeTensors",
    "tree_tensors",
    "TabularLogitPolicy",
    "TinyTransformer",
    "TrainResult",
    "train",
    "sample_batch",
    "Rows",
    "exact_rows",
    "sampled_rows",
    "Pairs",
    "exact_pairs",
    "sampled_pairs",
    "terminal_rewards",
    "tv_distance",
    "PathwiseFixedPoint",
    "pathwise_kl_fixed_point",
]


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
    def sequence_distribution(self) -> np.ndarray:
        """π(y) for every response as a float64 numpy array (sums to 1)."""
        lp = self.sequence_logprobs().double().cpu().numpy()
        return np.exp(lp - logsumexp(lp))

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
    """Loss trace of :func:`train` (``losses[k]`` at evaluation k) and the number of evaluations."""

    losses: np.ndarray
    steps: int


def train(policy: nn.Module, loss_fn: Callable[[], torch.Tensor], *, steps: int, lr: float = 0.1,
          optimizer: str = "adam", lr_end: float | None = None) -> TrainResult:
    """Minimize ``loss_fn()`` over ``policy``'s parameters with Adam, plain SGD or L-BFGS.

    ``loss_fn`` closes over the policy and recomputes the loss from scratch (exact expectations
    or a fresh sampled batch) at every step. With ``lr_end`` the step size of Adam/SGD decays
    geometrically from ``lr`` to ``lr_end`` over the run (lr_k = lr · (lr_end/lr)^(k/steps)), which
    averages out the noise of sampled batches. ``"lbfgs"`` (strong-Wolfe line search, at most
    ``steps`` iterations, ``lr`` ignored) is for deterministic losses whose *value* is the
    objective (population preference losses, NLL) — not for score-function surrogates, whose value
    is not the objective they ascend.

    Raises ValueError for steps < 1, lr/lr_end <= 0 or an unknown optimizer; RuntimeError when the
    loss becomes NaN/inf.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    check_positive("lr", lr)
    if lr_end is not None:
        check_positive("lr_end", lr_end)
    if optimizer not in ("adam", "sgd", "lbfgs"):
        raise ValueError(f"optimizer must be 'adam', 'sgd' or 'lbfgs', got {optimizer!r}")
    trace: list[float] = []

    def evaluate() -> torch.Tensor:
        loss = loss_fn()
        if not torch.isfinite(loss):
            raise RuntimeError(f"loss became {loss.item()} at step {len(trace)}")
        trace.append(float(loss.detach()))
        return loss

    if optimizer == "lbfgs":
        lbfgs = torch.optim.LBFGS(policy.parameters(), lr=1.0, max_iter=int(steps), max_eval=int(steps) * 5 // 4 + 10,
                                  tolerance_grad=1e-13, tolerance_change=1e-16, history_size=50, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            lbfgs.zero_grad()
            loss = evaluate()
            loss.backward()
            return loss

        lbfgs.step(closure)
        return TrainResult(losses=np.asarray(trace), steps=len(trace))
    opt: torch.optim.Optimizer = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(policy.parameters(), lr=lr)
    decay = 1.0 if lr_end is None else (lr_end / lr) ** (1.0 / steps)
    for k in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * decay**k
        opt.zero_grad()
        evaluate().backward()
        opt.step()
    return TrainResult(losses=np.asarray(trace), steps=steps)


def sample_batch(seq_logprobs: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``n`` responses drawn i.i.d. from ``softmax(seq_logprobs)`` (no gradient)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    p = torch.softmax(seq_logprobs.detach().double(), dim=0)
    return torch.multinomial(p, n, replacement=True, generator=generator)


# ----------------------------------------------------------------------------- exact vs sampled expectations
@dataclass(frozen=True)
class Rows:
    """Responses to put in a loss and their weights: the loss is ``Σ_i weights[i] · ℓ(y_{index[i]})``.

    Exact rows are every response with ``weights = π(y)`` (detached), so the weighted sum is the
    exact expectation ``E_{y∼π}[ℓ(y)]`` and its gradient (with ℓ a score-function surrogate) is the
    exact policy gradient; sampled rows are ``n`` i.i.d. draws with weights ``1/n``.
    """

    index: torch.Tensor
    weights: torch.Tensor


def exact_rows(seq_logprobs: torch.Tensor) -> Rows:
    """All responses, weighted by their exact probability ``softmax(seq_logprobs)`` (no gradient)."""
    w = torch.softmax(seq_logprobs.detach(), dim=0)
    return Rows(torch.arange(w.shape[0], device=w.device), w)


def sampled_rows(seq_logprobs: torch.Tensor, n: int, generator: torch.Generator) -> Rows:
    """``n`` responses drawn i.i.d. from ``softmax(seq_logprobs)``, each with weight ``1/n``."""
    idx = sample_batch(seq_logprobs, n, generator)
    return Rows(idx, torch.full((n,), 1.0 / n, dtype=seq_logprobs.dtype, device=seq_logprobs.device))


@dataclass(frozen=True)
class Pairs:
    """Preference pairs ``(chosen[i], rejected[i])`` with weights: the loss is ``Σ_i weights[i] ℓ_i``."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    weights: torch.Tensor


def _check_pair_model(mu: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = as_float_array("mu", mu, ndim=1)
    check_distribution("mu", mu)
    P = as_float_array("P", P, ndim=2)
    if P.shape != (mu.size, mu.size):
        raise ValueError(f"P must have shape {(mu.size, mu.size)}, got {P.shape}")
    check_finite("P", P)
    if np.any(P < 0) or np.any(P > 1) or not np.allclose(P + P.T, 1.0, atol=1e-9):
        raise ValueError("P must be a preference matrix: entries in [0, 1] and P + Pᵀ = 1")
    return mu, P


def exact_pairs(mu: np.ndarray, P: np.ndarray) -> Pairs:
    """Every outcome (chosen c, rejected d) of "draw y, y' ∼ μ i.i.d., label by P", with its probability.

    Drawing (c, d) and labelling c ≻ d, or drawing (d, c) and labelling c ≻ d, both give the outcome
    (c, d): its probability is ``2 μ(c) μ(d) P[c, d]`` for c ≠ d and ``μ(c)²`` for c = d (a tie pair,
    which carries no preference but does enter SFT-style terms on the chosen response). The weights
    sum to 1, so ``Σ weights · ℓ(chosen, rejected)`` is the population loss. Shapes: mu[Y], P[Y, Y].
    """
    mu, P = _check_pair_model(mu, P)
    n = mu.size
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    i, j = i.ravel(), j.ravel()
    w = np.where(i == j, mu[i] ** 2, 2.0 * mu[i] * mu[j] * P[i, j])
    keep = w > 0
    return Pairs(torch.as_tensor(i[keep]), torch.as_tensor(j[keep]), torch.as_tensor(w[keep], dtype=torch.float64))


def sampled_pairs(mu: np.ndarray, P: np.ndarray, n: int, generator: torch.Generator) -> Pairs:
    """``n`` preference pairs: y, y' ∼ μ i.i.d., y chosen with probability ``P[y, y']``; weights 1/n."""
    mu, P = _check_pair_model(mu, P)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    m = torch.as_tensor(mu, dtype=torch.float64)
    a = torch.multinomial(m, n, replacement=True, generator=generator)
    b = torch.multinomial(m, n, replacement=True, generator=generator)
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    first = u < torch.as_tensor(P, dtype=torch.float64)[a, b]
    chosen = torch.where(first, a, b)
    rejected = torch.where(first, b, a)
    return Pairs(chosen, rejected, torch.full((n,), 1.0 / n, dtype=torch.float64))


def terminal_rewards(tt: TreeTensors, reward: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Per-token rewards ``[Y, L]``: the sequence reward ``R(y)`` on the last token of y, 0 elsewhere."""
    R = torch.as_tensor(np.asarray(reward, dtype=np.float64))
    if R.shape != (tt.tokens.shape[0],):
        raise ValueError(f"reward must have shape ({tt.tokens.shape[0]},), got {tuple(R.shape)}")
    out = torch.zeros(tt.tokens.shape, dtype=torch.float64)
    out[torch.arange(R.shape[0]), tt.lengths - 1] = R
    return out


def tv_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation ``½ Σ_y |p(y) − q(y)|`` between two distributions over responses.

    Delegates to :func:`rlref.divergences.total_variation` (the one TV of the library), which
    validates both as distributions.
    """
    p = as_float_array("p", p, ndim=1)
    q = as_float_array("q", q, ndim=1)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
    return float(total_variation(p, q))


# ----------------------------------------------------------------------------- pathwise KL losses
@dataclass(frozen=True)
class PathwiseFixedPoint:
    """The stationary policy of "policy gradient on R + β · pathwise KL loss" (see below).

    Attributes: ``policy[x, v]``, its response distribution ``p[y]``, and ``q[x, v]`` = the
    *unregularized* expected reward E_π[R | x·v] used at each prefix.
    """

    policy: np.ndarray
    p: np.ndarray
    q: np.ndarray


def _reverse_kl_tilt(ref: np.ndarray, q: np.ndarray, beta: float) -> np.ndarray:
    """argmax_π Σ π q − β KL(π_ref ‖ π) = β π_ref / (λ − q), λ > max q the root of Σ = 1."""
    sup = ref > 0
    qmax = float(q[sup].max())

    def total(lam: float) -> float:
        return float(np.sum(beta * ref[sup] / (lam - q[sup]))) - 1.0

    lo = qmax + beta * float(ref[sup][np.argmax(q[sup])]) * (1.0 - 1e-12)  # total(lo) >= 0
    hi = qmax + beta + 1.0
    lam = brentq(total, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    out = np.zeros_like(ref)
    out[sup] = beta * ref[sup] / (lam - q[sup])
    return out / out.sum()


def pathwise_kl_fixed_point(tree: TokenTree, pi_ref: np.ndarray, reward: np.ndarray, beta: float,
                            estimator: str) -> PathwiseFixedPoint:
    """Exact fixed point of REINFORCE on ``R`` plus ``β · Σ_t k(log π_θ(y_t), log π_ref(y_t))`` as a loss.

    Differentiated through log π_θ(y_t) with the sampled tokens fixed (how the k2/k3 estimators
    are used as losses), the expected gradient at prefix x, logits θ_x, is
    d_π(x) · [π(·|x) ⊙ (Q(x,·) − V(x)) − β ∇_θx D_x], where Q(x, v) = E_π[R | x·v] is the
    *unregularized* future reward and D_x is a per-prefix divergence:

    * ``"k2"``: D_x = KL(π(·|x) ‖ π_ref(·|x)); stationary iff π(·|x) ∝ π_ref(·|x) exp(Q(x,·)/β);
    * ``"k3"``: D_x = KL(π_ref(·|x) ‖ π(·|x)) (reverse); stationary iff
      π(v|x) = β π_ref(v|x) / (λ_x − Q(x, v)) with λ_x > max_v Q(x, v) fixing Σ_v π(v|x) = 1.

    Q depends only on the policy below x, so the fixed point is computed bottom-up (deepest
    prefixes first). Neither equals the KL-regularized optimum π* ∝ π_ref e^{R/β} on trees of depth
    >= 2: the pathwise loss ignores the effect of θ_x on the KL of later positions (the soft value
    of π* would replace Q). On depth 1, ``"k2"`` gives π* exactly.

    Shapes: pi_ref[x, v], reward[y] -> PathwiseFixedPoint. Raises ValueError on bad input.

    References: Tang & Munos (2025), "On a few pitfalls in KL divergence gradient estimation for
    RL" (the gradients of k1/k2/k3 as losses); the bottom-up fixed points are derived here.
    """
    pi_ref = tree.validate_policy(pi_ref, "pi_ref")
    R = as_float_array("reward", reward, ndim=1)
    if R.shape != (tree.num_sequences,):
        raise ValueError(f"reward must have shape ({tree.num_sequences},), got {R.shape}")
    check_finite("reward", R)
    b = check_positive("beta", beta)
    if estimator not in ("k2", "k3"):
        raise ValueError(f"estimator must be 'k2' or 'k3' (k1 as a loss has zero expected gradient), got {estimator!r}")
    n, V = tree.num_prefixes, tree.vocab_size
    policy = np.zeros((n, V))
    q = np.zeros((n, V))
    value = np.zeros(n)
    order = np.argsort(-tree.depths, kind="stable")
    for x in order:
        prefix = tree.prefixes[x]
        for v in range(V):
            y = (*prefix, v)
            if v == tree.eos or len(y) == tree.max_len:
                q[x, v] = R[tree.sequence_index(y)]
            else:
                q[x, v] = value[tree.prefix_index(y)]
        if estimator == "k2":
            with np.errstate(divide="ignore"):
                logits = np.log(pi_ref[x]) + q[x] / b
            policy[x] = np.exp(logits - logsumexp(logits))
        else:
            policy[x] = _reverse_kl_tilt(pi_ref[x], q[x], b)
        value[x] = float(policy[x] @ q[x])
    if not math.isfinite(float(value[0])):
        raise RuntimeError("pathwise_kl_fixed_point: non-finite value")
    return PathwiseFixedPoint(policy=policy, p=tree.sequence_distribution(policy), q=q)
