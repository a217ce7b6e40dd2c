"""Token trees: an autoregressive model over a small vocabulary as an enumerable tabular MDP.

A language model with vocabulary ``V`` and maximum length ``L`` is a finite-horizon MDP: the
state is the prefix, the action the next token, and the episode ends when the end-of-sequence
token ``eos`` is emitted or the length reaches ``L``. For small ``V`` and ``L`` every prefix and
every complete response can be enumerated, so every regularized objective has an exact answer
(the "token-tree bridge" of DESIGN.md): ``rlref.llm`` losses are validated against it.

Conventions:

* ``tree.prefixes`` are the *open* prefixes (length < L, no ``eos``) — the decision states;
  index 0 is the empty prefix. A policy on the tree is ``pi[p, v]`` over open prefixes.
* ``tree.sequences`` are the complete responses ``y`` (ending in ``eos`` or of length ``L``).
* ``tree.to_mdp(reward)`` adds one absorbing, zero-reward ``done`` state (index
  ``num_prefixes``) and pays the sequence reward ``R(y)`` on the transition that completes ``y``.

Identity used everywhere (the chain rule): ``π(y) = Π_t π(y_t | y_<t)``, and conversely every
distribution over complete responses factorizes uniquely into per-prefix conditionals on the
prefixes it reaches.

References: Korbak, Perez, Buckley (2022), "RL with KL penalties is better viewed as Bayesian
inference", §3 (the LM as a policy over tokens); DESIGN.md, "The token-tree bridge".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from rlref._checks import as_float_array, check_count, check_distribution, check_finite
from rlref.mdp import TabularMDP

__all__ = ["TokenTree", "MAX_TREE_ENTRIES"]

#: Largest (open prefixes × vocabulary) a TokenTree enumerates; checked before enumerating.
MAX_TREE_ENTRIES = 2_000_000


@dataclass(frozen=True, eq=False)
class TokenTree:
    """All responses over a vocabulary of ``vocab_size`` tokens with at most ``max_len`` tokens.

    Args:
      vocab_size: V >= 1 tokens, ``0..V-1``.
      max_len: L >= 1, the maximum number of tokens in a response (``eos`` included).
      eos: optional end-of-sequence token in ``[0, V)``; without it every response has length L.

    Sizes: with ``eos`` there are Σ_{t<L} (V-1)^t open prefixes; without, Σ_{t<L} V^t.
    """

    vocab_size: int
    max_len: int
    eos: int | None = None
    prefixes: tuple[tuple[int, ...], ...] = field(init=False, repr=False)
    sequences: tuple[tuple[int, ...], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        V = check_count("vocab_size", self.vocab_size)
        L = check_count("max_len", self.max_len)
        if self.eos is not None and not (0 <= self.eos < V):
            raise ValueError(f"eos must be a token in [0, {V}), got {self.eos!r}")
        body = [v for v in range(V) if v != self.eos]
        # Size guard BEFORE enumerating (exact integer arithmetic): Σ_{t<L} |body|^t open prefixes,
        # each with V children.
        n_prefixes = sum(len(body) ** t for t in range(L))
        if n_prefixes * V > MAX_TREE_ENTRIES:
            raise ValueError(
                f"tree too large to enumerate: {n_prefixes} prefixes x {V} tokens = {n_prefixes * V} "
                f"(vocab_size={V}, max_len={L}) > {MAX_TREE_ENTRIES}"
            )
        prefixes: list[tuple[int, ...]] = []
        for t in range(L):
            prefixes.extend(itertools.product(body, repeat=t))
        seqs: list[tuple[int, ...]] = []
        for p in prefixes:
            for v in range(V):
                if v == self.eos or len(p) + 1 == L:
                    seqs.append((*p, v))
        object.__setattr__(self, "prefixes", tuple(prefixes))
        object.__setattr__(self, "sequences", tuple(seqs))
        object.__setattr__(self, "_prefix_index", {p: i for i, p in enumerate(prefixes)})
        object.__setattr__(self, "_seq_index", {y: i for i, y in enumerate(seqs)})
        # per sequence: the (prefix index, token) of each step, padded with -1
        steps = np.full((len(seqs), L, 2), -1, dtype=np.int64)
        for i, y in enumerate(seqs):
            for t, v in enumerate(y):
                steps[i, t] = (self._prefix_index[y[:t]], v)  # type: ignore[attr-defined]
        steps.setflags(write=False)
        object.__setattr__(self, "_steps", steps)

    # ------------------------------------------------------------------ sizes and indices
    @property
    def num_prefixes(self) -> int:
        """Number of open prefixes (decision states)."""
        return len(self.prefixes)

    @property
    def num_sequences(self) -> int:
        """Number of complete responses."""
        return len(self.sequences)

    def prefix_index(self, prefix: tuple[int, ...]) -> int:
        """Index of an open prefix; ValueError if it is not one."""
        try:
            return self._prefix_index[tuple(prefix)]  # type: ignore[attr-defined]
        except KeyError:
            raise ValueError(f"{tuple(prefix)!r} is not an open prefix of this tree") from None

    def sequence_index(self, y: tuple[int, ...]) -> int:
        """Index of a complete response; ValueError if it is not one."""
        try:
            return self._seq_index[tuple(y)]  # type: ignore[attr-defined]
        except KeyError:
            raise ValueError(f"{tuple(y)!r} is not a complete response of this tree") from None

    @property
    def lengths(self) -> np.ndarray:
        """``lengths[y]``: number of tokens of each complete response (``eos`` included)."""
        return np.array([len(y) for y in self.sequences])

    @property
    def depths(self) -> np.ndarray:
        """``depths[p]``: length of each open prefix (its stage ``h`` in the MDP)."""
        return np.array([len(p) for p in self.prefixes])

    @property
    def steps(self) -> np.ndarray:
        """``steps[y, t] = (prefix index, token)`` of step t of response y; ``-1`` padding."""
        return self._steps  # type: ignore[attr-defined]

    def step_mask(self) -> np.ndarray:
        """``mask[y, t]``: True where response y has a token at position t."""
        return self.steps[:, :, 0] >= 0

    # ------------------------------------------------------------------ policies and sequences
    def validate_policy(self, pi: np.ndarray, name: str = "pi") -> np.ndarray:
        """Check ``pi[p, v]`` is a distribution over tokens for every open prefix."""
        pi = as_float_array(name, pi, ndim=2)
        if pi.shape != (self.num_prefixes, self.vocab_size):
            raise ValueError(f"{name} must have shape (num_prefixes, V) = {(self.num_prefixes, self.vocab_size)}, got {pi.shape}")
        check_distribution(name, pi)
        return pi

    def sequence_logprobs(self, pi: np.ndarray) -> np.ndarray:
        """``log π(y) = Σ_t log π(y_t | y_<t)`` for every complete response (−inf for zero mass)."""
        pi = self.validate_policy(pi)
        with np.errstate(divide="ignore"):
            logpi = np.log(pi)
        return self.sequence_logprobs_from_log(logpi)

    def sequence_logprobs_from_log(self, log_pi: np.ndarray) -> np.ndarray:
        """Like :meth:`sequence_logprobs` for per-prefix log-probabilities (or any token scores).

        Returns ``Σ_t log_pi[p_t, y_t]`` for every response: with arbitrary token scores this is
        the "sum of token rewards" of each response.
        """
        log_pi = np.asarray(log_pi, dtype=np.float64)
        if log_pi.shape != (self.num_prefixes, self.vocab_size):
            raise ValueError(f"log_pi must have shape {(self.num_prefixes, self.vocab_size)}, got {log_pi.shape}")
        p, v = self.steps[..., 0], self.steps[..., 1]
        vals = np.where(p >= 0, log_pi[np.maximum(p, 0), np.maximum(v, 0)], 0.0)
        return vals.sum(axis=1)

    def sequence_distribution(self, pi: np.ndarray) -> np.ndarray:
        """``π(y)`` for every complete response; sums to 1."""
        return np.exp(self.sequence_logprobs(pi))

    def policy_from_sequence_distribution(self, p: np.ndarray) -> np.ndarray:
        """The unique per-prefix factorization π(v | prefix) of a distribution ``p[y]``.

        π(v | x) = p(responses extending x·v) / p(responses extending x); prefixes of zero mass
        get the uniform distribution (any choice gives the same ``p``).
        """
        p = as_float_array("p", p, ndim=1)
        if p.shape != (self.num_sequences,):
            raise ValueError(f"p must have shape (num_sequences,) = ({self.num_sequences},), got {p.shape}")
        check_distribution("p", p)
        mass = np.zeros((self.num_prefixes, self.vocab_size))
        steps = self.steps
        for t in range(self.max_len):
            ok = steps[:, t, 0] >= 0
            np.add.at(mass, (steps[ok, t, 0], steps[ok, t, 1]), p[ok])
        total = mass.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            pi = np.where(total > 0, mass / np.where(total > 0, total, 1.0), 1.0 / self.vocab_size)
        return pi

    def policy_from_sequence_logits(self, logits: np.ndarray) -> np.ndarray:
        """Factorization of the softmax of sequence scores, computed in log space.

        π(v | x) = exp(U(x·v) − U(x)) with U(x) = log Σ_{y ⊒ x} exp(logits[y]).
        """
        logits = as_float_array("logits", logits, ndim=1)
        if logits.shape != (self.num_sequences,):
            raise ValueError(f"logits must have shape ({self.num_sequences},), got {logits.shape}")
        if np.any(np.isnan(logits)) or np.any(logits == np.inf):
            raise ValueError("logits must not contain NaN or +inf")
        steps = self.steps
        log_mass = np.full((self.num_prefixes, self.vocab_size), -np.inf)
        for t in range(self.max_len):
            ok = steps[:, t, 0] >= 0
            np.logaddexp.at(log_mass, (steps[ok, t, 0], steps[ok, t, 1]), logits[ok])
        total = logsumexp(log_mass, axis=1, keepdims=True)
        with np.errstate(invalid="ignore"):
            pi = np.where(np.isfinite(total), np.exp(log_mass - np.where(np.isfinite(total), total, 0.0)), 1.0 / self.vocab_size)
        return pi

    def random_policy(self, rng: np.random.Generator, concentration: float = 1.0) -> np.ndarray:
        """A random full-support policy: each ``pi[p, :]`` ~ Dirichlet(concentration)."""
        pi = rng.dirichlet(np.full(self.vocab_size, concentration), size=self.num_prefixes)
        pi = np.maximum(pi, 1e-12)
        return pi / pi.sum(axis=1, keepdims=True)

    # ------------------------------------------------------------------ as an MDP
    def to_mdp(self, reward: np.ndarray, token_reward: np.ndarray | None = None) -> TabularMDP:
        """The tree as a finite-horizon ``TabularMDP`` (horizon L, deterministic transitions).

        States: the open prefixes, then one absorbing ``done`` state (index ``num_prefixes``,
        terminal, zero reward). ``r[x, v] = R(x·v)`` when ``x·v`` is a complete response, plus
        ``token_reward[x, v]`` if given. ``mu0`` is the point mass on the empty prefix. A prefix
        of length h is only reachable at stage h, so a stationary policy ``pi[x, v]`` suffices.
        """
        R = as_float_array("reward", reward, ndim=1)
        if R.shape != (self.num_sequences,):
            raise ValueError(f"reward must have shape (num_sequences,) = ({self.num_sequences},), got {R.shape}")
        check_finite("reward", R)
        n, V = self.num_prefixes, self.vocab_size
        S = n + 1
        nxt = np.full((S, V), n, dtype=np.int64)
        r = np.zeros((S, V))
        for i, x in enumerate(self.prefixes):
            for v in range(V):
                y = (*x, v)
                if v == self.eos or len(y) == self.max_len:
                    r[i, v] = R[self._seq_index[y]]  # type: ignore[attr-defined]
                else:
                    nxt[i, v] = self._prefix_index[y]  # type: ignore[attr-defined]
        if token_reward is not None:
            tr = as_float_array("token_reward", token_reward, ndim=2)
            if tr.shape != (n, V):
                raise ValueError(f"token_reward must have shape {(n, V)}, got {tr.shape}")
            check_finite("token_reward", tr)
            r[:n] += tr
        P = np.zeros((S, V, S))
        P[np.arange(S)[:, None], np.arange(V)[None, :], nxt] = 1.0
        mu0 = np.zeros(S)
        mu0[0] = 1.0
        terminal = np.zeros(S, dtype=bool)
        terminal[n] = True
        return TabularMDP(P, r, horizon=self.max_len, mu0=mu0, terminal=terminal, name=f"token-tree(V={V}, L={self.max_len})")

    def extend_policy(self, pi: np.ndarray) -> np.ndarray:
        """``pi[x, v]`` on open prefixes -> a policy on ``to_mdp`` states (uniform at ``done``)."""
        pi = self.validate_policy(pi)
        return np.vstack([pi, np.full((1, self.vocab_size), 1.0 / self.vocab_size)])

    def restrict_policy(self, pi_mdp: np.ndarray) -> np.ndarray:
        """A policy of ``to_mdp`` (stationary ``[S, V]`` or staged ``[h, S, V]``) -> ``pi[x, v]``.

        For a staged policy each prefix takes the row of its own stage ``h = len(x)``.
        """
        pi_mdp = np.asarray(pi_mdp, dtype=np.float64)
        n = self.num_prefixes
        if pi_mdp.ndim == 3:
            return pi_mdp[self.depths, np.arange(n)]
        if pi_mdp.ndim == 2:
            return pi_mdp[:n]
        raise ValueError(f"pi_mdp must have 2 or 3 dimensions, got shape {pi_mdp.shape}")


def tree_links(tree: TokenTree) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(child, parent, parent_token)`` index arrays of a token tree.

    ``child[p, v]``: index of the open prefix p·v, or −1 if p·v is a complete response (v = eos, or the
    length limit reached); ``parent[p]``, ``parent_token[p]``: the prefix and token leading to p (−1 at the root).
    Shapes: (num_prefixes, vocab_size), (num_prefixes,), (num_prefixes,). Cost: O(num_prefixes · vocab_size).
    """
    if not isinstance(tree, TokenTree):
        raise ValueError(f"tree must be a TokenTree, got {type(tree).__name__}")
    n, V = tree.num_prefixes, tree.vocab_size
    child = np.full((n, V), -1, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    ptok = np.full(n, -1, dtype=np.int64)
    for i, x in enumerate(tree.prefixes):
        if x:
            parent[i] = tree.prefix_index(x[:-1])
            ptok[i] = x[-1]
        for v in range(V):
            if v != tree.eos and len(x) + 1 < tree.max_len:
                child[i, v] = tree.prefix_index((*x, v))
    return child, parent, ptok


__all__.append("tree_links")
