"""Linear Temporal Logic objectives: parsing, a deterministic monitor for the fragment the
expressivity witnesses need, the exact satisfaction probability of a stationary policy by the
product construction, and the reference semantics on lasso-shaped words.

An LTL objective (Subramani et al. 2024, §2, "Linear Temporal Logic") is a formula φ over atomic
propositions that label transitions; a policy is scored by J(π) = Pr_π(ξ ⊨ φ). Here a letter is the
set of propositions true on a transition (s_t, a_t, s_{t+1}); ``labels`` maps each proposition to a
boolean array over states ``(S,)``, state-actions ``(S, A)`` or transitions ``(S, A, S)``.

Syntax (a small recursive-descent parser: pyparsing's infix_notation, tried first, is exponential
on nested parentheses unless packrat parsing is switched on globally): propositions are lowercase identifiers; ``true``/``false``; unary
``!`` (or ``not``), ``X``, ``F``, ``G``; binary ``U`` (right-assoc), ``&``, ``|``, ``->``, in that order of
precedence. Example: ``"(F s1 & G F a) | (F s2 & F G a)"``.

Exact evaluation covers Boolean combinations of the *temporal atoms*
ψ, X…Xψ (bounded look-ahead), F ψ (reachability), G ψ (safety), ψ U χ, G F ψ (recurrence) and
F G ψ (persistence) with ψ, χ propositional. Each atom has a deterministic monitor (a flag, a
counter, or no memory with an Inf/Fin condition on transitions); their product is a deterministic
automaton with an Emerson–Lei acceptance condition. On the product of the policy-induced chain
with that automaton every flag is constant inside a bottom SCC and every transition of a BSCC is
taken infinitely often, so Pr_π(φ) = Σ_B Pr(reach B) · [φ holds on B] (Baier & Katoen 2008,
Thm 10.56 for ω-regular properties of Markov chains). Formulas outside the fragment raise
ValueError; :func:`lasso_satisfies` evaluates *all* of LTL on lasso words u·v^ω and is the
reference the monitor is tested against.

References: Pnueli (1977), "The temporal logic of programs"; Baier & Katoen (2008), "Principles of
Model Checking", §5.1 (semantics), §10.3 (Markov chains and ω-regular properties); Subramani,
Williams, Heitmann, Holm, Griffin, Skalse (ICLR 2024), "On the expressivity of
objective-specification formalisms in RL", arXiv 2310.11840, §2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rlref.formalisms.chains import chain_limit
from rlref.mdp import TabularMDP
from rlref.policy import validate_policy

__all__ = ["Formula", "parse_ltl", "lasso_satisfies", "LTLMonitor", "compile_monitor", "transition_letters", "ltl_probability"]


@dataclass(frozen=True)
class Formula:
    """An LTL formula node: ``op`` in {"prop", "true", "false", "not", "and", "or", "X", "F", "G", "U"}."""

    op: str
    args: tuple[Formula, ...] = ()
    name: str = ""

    def __str__(self) -> str:
        if self.op == "prop":
            return self.name
        if self.op in ("true", "false"):
            return self.op
        if self.op == "not":
            return f"!{self.args[0]}"
        if self.op in ("X", "F", "G"):
            return f"{self.op} {self.args[0]}"
        sym = {"and": "&", "or": "|", "U": "U"}[self.op]
        return f"({self.args[0]} {sym} {self.args[1]})"

    @property
    def propositional(self) -> bool:
        return self.op not in ("X", "F", "G", "U") and all(a.propositional for a in self.args)

    def props(self) -> set[str]:
        out = {self.name} if self.op == "prop" else set()
        for a in self.args:
            out |= a.props()
        return out


TRUE = Formula("true")
FALSE = Formula("false")


def _not(f: Formula) -> Formula:
    return Formula("not", (f,))


_TOKEN = re.compile(r"\s*(->|[()!&|]|[A-Za-z_][A-Za-z0-9_]*|\S)")
_UNARY = {"!", "not", "X", "F", "G"}


def _tokenize(text: str) -> list[tuple[str, int]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or not m.group(1):
            break
        out.append((m.group(1), m.start(1)))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent, precedence (low to high): ->, |, &, U, unary (!, X, F, G)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def _fail(self, msg: str) -> ValueError:
        col = self.toks[self.i][1] + 1 if self.i < len(self.toks) else len(self.text) + 1
        return ValueError(f"LTL formula {self.text!r} does not parse at column {col}: {msg}")

    def peek(self) -> str | None:
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise self._fail("unexpected end of formula")
        self.i += 1
        return tok

    def parse(self) -> Formula:
        f = self.implies()
        if self.peek() is not None:
            raise self._fail(f"unexpected {self.peek()!r}")
        return f

    def implies(self) -> Formula:
        f = self.disj()
        if self.peek() == "->":
            self.take()
            return Formula("or", (_not(f), self.implies()))
        return f

    def disj(self) -> Formula:
        f = self.conj()
        while self.peek() == "|":
            self.take()
            f = Formula("or", (f, self.conj()))
        return f

    def conj(self) -> Formula:
        f = self.until()
        while self.peek() == "&":
            self.take()
            f = Formula("and", (f, self.until()))
        return f

    def until(self) -> Formula:
        f = self.unary()
        if self.peek() == "U":
            self.take()
            return Formula("U", (f, self.until()))
        return f

    def unary(self) -> Formula:
        tok = self.peek()
        if tok in _UNARY:
            self.take()
            g = self.unary()
            return _not(g) if tok in ("!", "not") else Formula(tok, (g,))
        if tok == "(":
            self.take()
            f = self.implies()
            if self.peek() != ")":
                raise self._fail("expected ')'")
            self.take()
            return f
        if tok is None:
            raise self._fail("unexpected end of formula")
        if re.fullmatch(r"[a-z_][a-z0-9_]*", tok):
            self.take()
            return TRUE if tok == "true" else FALSE if tok == "false" else Formula("prop", name=tok)
        raise self._fail(f"unexpected {tok!r} (propositions are lowercase identifiers)")


@lru_cache(maxsize=512)
def parse_ltl(text: str) -> Formula:
    """Parse an LTL formula (syntax in the module docstring).

    Raises ValueError naming the column and the offending token if it does not parse.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"formula must be a non-empty string, got {text!r}")
    return _Parser(text).parse()


def _as_formula(phi: str | Formula) -> Formula:
    return parse_ltl(phi) if isinstance(phi, str) else phi


def _holds_prop(f: Formula, letter: frozenset[str]) -> bool:
    op = f.op
    if op == "prop":
        return f.name in letter
    if op == "true":
        return True
    if op == "false":
        return False
    if op == "not":
        return not _holds_prop(f.args[0], letter)
    if op == "and":
        return _holds_prop(f.args[0], letter) and _holds_prop(f.args[1], letter)
    if op == "or":
        return _holds_prop(f.args[0], letter) or _holds_prop(f.args[1], letter)
    raise ValueError(f"{f} is not propositional")


# ----------------------------------------------------------------------------- reference semantics
def lasso_satisfies(phi: str | Formula, prefix: Sequence[Iterable[str]], loop: Sequence[Iterable[str]]) -> bool:
    """Whether the lasso word u·v^ω (u = ``prefix``, v = ``loop``, letters = sets of true
    propositions) satisfies φ, for *all* of LTL.

    Positions 0..n−1 with n = |u| + |v|; succ(n − 1) = |u|. Sat sets are computed bottom-up; φ U ψ
    is the least fixed point S = ψ ∨ (φ ∧ X S); F ψ = true U ψ; G φ = ¬F¬φ.
    Raises ValueError if the loop is empty.
    References: Baier & Katoen (2008), Def. 5.7 (semantics) and §5.2 (lasso words).
    """
    f = _as_formula(phi)
    u = [frozenset(x) for x in prefix]
    v = [frozenset(x) for x in loop]
    if not v:
        raise ValueError("loop must contain at least one letter (a lasso word is u v^omega)")
    word = u + v
    n = len(word)
    succ = np.array([i + 1 if i + 1 < n else len(u) for i in range(n)])

    def sat(g: Formula) -> np.ndarray:
        op = g.op
        if op == "prop":
            return np.array([g.name in w for w in word])
        if op == "true":
            return np.ones(n, bool)
        if op == "false":
            return np.zeros(n, bool)
        if op == "not":
            return ~sat(g.args[0])
        if op == "and":
            return sat(g.args[0]) & sat(g.args[1])
        if op == "or":
            return sat(g.args[0]) | sat(g.args[1])
        if op == "X":
            return sat(g.args[0])[succ]
        if op in ("U", "F"):
            a, b = (np.ones(n, bool), sat(g.args[0])) if op == "F" else (sat(g.args[0]), sat(g.args[1]))
            s = b.copy()
            for _ in range(n + 1):
                s_new = b | (a & s[succ])
                if np.array_equal(s_new, s):
                    break
                s = s_new
            return s
        if op == "G":
            return ~sat(Formula("F", (_not(g.args[0]),)))
        raise ValueError(f"unknown operator {op!r}")

    return bool(sat(f)[0])


# ----------------------------------------------------------------------------- monitor
@dataclass(frozen=True)
class _Atom:
    kind: str  # "now", "F", "G", "U", "GF", "FG"
    psi: Formula
    chi: Formula = TRUE
    k: int = 0  # look-ahead for "now"

    def init(self) -> int:
        return 0

    def step(self, st: int, letter: frozenset[str]) -> int:
        kind = self.kind
        if kind == "now":
            if st < self.k:
                return st + 1
            if st == self.k:
                return self.k + 2 if _holds_prop(self.psi, letter) else self.k + 1
            return st
        if kind == "F":
            return 1 if st == 1 or _holds_prop(self.psi, letter) else 0
        if kind == "G":
            return 1 if st == 1 or not _holds_prop(self.psi, letter) else 0
        if kind == "U":
            if st != 0:
                return st
            if _holds_prop(self.chi, letter):
                return 1
            return 0 if _holds_prop(self.psi, letter) else 2
        return 0  # GF / FG carry no memory

    def accepts(self, st: int, inf_letters: Sequence[frozenset[str]]) -> bool:
        """Truth of the atom on a run whose monitor state is eventually ``st`` and whose letters
        seen infinitely often are ``inf_letters``."""
        kind = self.kind
        if kind == "now":
            return st == self.k + 2
        if kind == "F":
            return st == 1
        if kind == "G":
            return st == 0
        if kind == "U":
            return st == 1
        if kind == "GF":
            return any(_holds_prop(self.psi, w) for w in inf_letters)
        return all(_holds_prop(self.psi, w) for w in inf_letters)  # FG


def _decompose(f: Formula, atoms: list[_Atom]) -> tuple:
    """Boolean skeleton of f over temporal atoms (appended to ``atoms``); ValueError outside the fragment."""
    op = f.op
    if f.propositional:
        atoms.append(_Atom("now", f, k=0))
        return ("atom", len(atoms) - 1)
    if op == "not":
        return ("not", _decompose(f.args[0], atoms))
    if op in ("and", "or"):
        return (op, _decompose(f.args[0], atoms), _decompose(f.args[1], atoms))
    if op == "X":
        k, g = 1, f.args[0]
        while g.op == "X":
            k, g = k + 1, g.args[0]
        if g.propositional:
            atoms.append(_Atom("now", g, k=k))
            return ("atom", len(atoms) - 1)
    if op == "F":
        g = f.args[0]
        if g.propositional:
            atoms.append(_Atom("F", g))
            return ("atom", len(atoms) - 1)
        if g.op == "G" and g.args[0].propositional:
            atoms.append(_Atom("FG", g.args[0]))
            return ("atom", len(atoms) - 1)
    if op == "G":
        g = f.args[0]
        if g.propositional:
            atoms.append(_Atom("G", g))
            return ("atom", len(atoms) - 1)
        if g.op == "F" and g.args[0].propositional:
            atoms.append(_Atom("GF", g.args[0]))
            return ("atom", len(atoms) - 1)
    if op == "U" and f.args[0].propositional and f.args[1].propositional:
        atoms.append(_Atom("U", f.args[0], f.args[1]))
        return ("atom", len(atoms) - 1)
    raise ValueError(
        f"LTL subformula {f} is outside the supported fragment (Boolean combinations of psi, X..X psi, F psi, G psi, "
        "psi U chi, G F psi, F G psi with psi, chi propositional); use lasso_satisfies for the full logic on lasso words"
    )


def _eval_skeleton(node: tuple, truth: Sequence[bool]) -> bool:
    tag = node[0]
    if tag == "atom":
        return truth[node[1]]
    if tag == "not":
        return not _eval_skeleton(node[1], truth)
    if tag == "and":
        return _eval_skeleton(node[1], truth) and _eval_skeleton(node[2], truth)
    return _eval_skeleton(node[1], truth) or _eval_skeleton(node[2], truth)


@dataclass(frozen=True)
class LTLMonitor:
    """Deterministic automaton for a fragment formula: state = tuple of atom states, Emerson–Lei
    acceptance = the Boolean skeleton over atom conditions (flags, Inf/Fin sets of letters)."""

    formula: Formula
    atoms: tuple[_Atom, ...]
    skeleton: tuple

    @property
    def initial(self) -> tuple[int, ...]:
        return tuple(a.init() for a in self.atoms)

    def step(self, q: tuple[int, ...], letter: frozenset[str]) -> tuple[int, ...]:
        return tuple(a.step(s, letter) for a, s in zip(self.atoms, q, strict=True))

    def accepts(self, q: tuple[int, ...], inf_letters: Sequence[frozenset[str]]) -> bool:
        truth = [a.accepts(s, inf_letters) for a, s in zip(self.atoms, q, strict=True)]
        return _eval_skeleton(self.skeleton, truth)

    def accepts_lasso(self, prefix: Sequence[Iterable[str]], loop: Sequence[Iterable[str]]) -> bool:
        """Run the monitor on u·v^ω: iterate v until the state at the loop entry repeats."""
        u = [frozenset(x) for x in prefix]
        v = [frozenset(x) for x in loop]
        if not v:
            raise ValueError("loop must contain at least one letter")
        q = self.initial
        for w in u:
            q = self.step(q, w)
        seen: dict[tuple[int, ...], int] = {}
        states = []
        while q not in seen:
            seen[q] = len(states)
            states.append(q)
            for w in v:
                q = self.step(q, w)
        # from loop entry q on, the run cycles through v forever; atom flags are constant on the cycle
        return self.accepts(q, v)


def compile_monitor(phi: str | Formula) -> LTLMonitor:
    """Deterministic monitor of a fragment formula (ValueError naming the unsupported subformula)."""
    f = _as_formula(phi)
    atoms: list[_Atom] = []
    skel = _decompose(f, atoms)
    return LTLMonitor(formula=f, atoms=tuple(atoms), skeleton=skel)


# ----------------------------------------------------------------------------- labels and product
def transition_letters(mdp: TabularMDP, labels: Mapping[str, np.ndarray]) -> list[list[list[frozenset[str]]]]:
    """``letters[s][a][s']`` = the set of propositions true on transition (s, a, s').

    Each label is a boolean array of shape (S,) (true in the source state), (S, A) or (S, A, S).
    Raises ValueError naming the proposition if its shape fits none of these.
    """
    S, A = mdp.num_states, mdp.num_actions
    full = {}
    for name, arr in labels.items():
        x = np.asarray(arr, dtype=bool)
        if x.shape == (S,):
            x = np.broadcast_to(x[:, None, None], (S, A, S))
        elif x.shape == (S, A):
            x = np.broadcast_to(x[:, :, None], (S, A, S))
        elif x.shape != (S, A, S):
            raise ValueError(f"label {name!r} must have shape (S,), (S, A) or (S, A, S) = ({S}, {A}, {S}); got {x.shape}")
        full[name] = x
    return [[[frozenset(n for n, x in full.items() if x[s, a, t]) for t in range(S)] for a in range(A)] for s in range(S)]


def _product_chain(mdp: TabularMDP, pi: np.ndarray, letters, step, q0):
    """Reachable product chain over (s, q); returns (index, P, mu0, edges) with edges[i] = [(j, letter)]."""
    P = mdp.dense_P()
    S = mdp.num_states
    index: dict[tuple[int, tuple], int] = {}
    order: list[tuple[int, tuple]] = []
    frontier = []
    for s in range(S):
        if mdp.mu0[s] > 0:
            key = (s, q0)
            if key not in index:
                index[key] = len(order)
                order.append(key)
                frontier.append(key)
    rows: dict[int, dict[int, float]] = {}
    edges: dict[int, list[tuple[int, frozenset[str]]]] = {}
    while frontier:
        key = frontier.pop()
        s, q = key
        i = index[key]
        row: dict[int, float] = {}
        out = []
        for a in np.flatnonzero(pi[s] > 0):
            for t in np.flatnonzero(P[s, a] > 0):
                letter = letters[s][a][t]
                nk = (int(t), step(q, letter))
                if nk not in index:
                    index[nk] = len(order)
                    order.append(nk)
                    frontier.append(nk)
                j = index[nk]
                row[j] = row.get(j, 0.0) + float(pi[s, a] * P[s, a, t])
                out.append((j, letter))
        rows[i] = row
        edges[i] = out
    n = len(order)
    M = np.zeros((n, n))
    for i, row in rows.items():
        for j, p in row.items():
            M[i, j] = p
    mu = np.zeros(n)
    for s in range(S):
        if mdp.mu0[s] > 0:
            mu[index[(s, q0)]] += mdp.mu0[s]
    return order, M, mu, edges


def ltl_probability(mdp: TabularMDP, pi: np.ndarray, phi: str | Formula, labels: Mapping[str, np.ndarray]) -> float:
    """Exact Pr_π(ξ ⊨ φ) for a stationary policy, by the product of the chain with the monitor.

    Pr_π(φ) = Σ_B Pr(reach BSCC B of the product) · [the monitor accepts on B]; a BSCC's atom flags
    are read from any of its states and its Inf-set is the set of letters on its transitions.
    Shapes: pi[s, a]. Raises ValueError for formulas outside the fragment, unknown propositions or
    a finite-horizon MDP (LTL is an infinite-horizon objective).
    References: Baier & Katoen (2008), Thm 10.56; Subramani et al. (2024), §2.
    """
    if mdp.horizon is not None:
        raise ValueError("LTL objectives are defined on infinite trajectories; mdp must be discounted/infinite (horizon=None)")
    pi = validate_policy(mdp, pi)
    mon = compile_monitor(phi)
    unknown = mon.formula.props() - set(labels)
    if unknown:
        raise ValueError(f"formula {mon.formula} uses propositions without labels: {sorted(unknown)}")
    letters = transition_letters(mdp, labels)
    order, M, mu, edges = _product_chain(mdp, pi, letters, mon.step, mon.initial)
    lim = chain_limit(M, mu)
    total = 0.0
    for b, members in enumerate(lim.bsccs):
        member_set = set(members.tolist())
        qs = {order[i][1] for i in members}
        if len(qs) != 1 and not _flags_constant(mon, qs):
            raise RuntimeError(f"monitor flags vary inside a bottom SCC ({sorted(qs)}); this is a bug")
        q = order[members[0]][1]
        inf_letters = list({w for i in members for (j, w) in edges[i] if j in member_set})
        if mon.accepts(q, inf_letters):
            total += float(lim.reach[b])
    return float(min(max(total, 0.0), 1.0))


def _flags_constant(mon: LTLMonitor, qs: set) -> bool:
    return len({tuple(s for a, s in zip(mon.atoms, q, strict=True) if a.kind not in ("GF", "FG")) for q in qs}) == 1
