"""Witness tasks for the expressivity results of Subramani et al. (ICLR 2024, arXiv 2310.11840):
for each of RRL, ONMR, RM, LTL and LAR (the abstract's headline), an environment and a
specification whose policy ordering none of the other four formalisms can induce — each "cannot"
checked by code with one of four certificates:

* ``lp-farkas``: the other formalism's values on the witness policies are linear in known features
  for *every* specification of it, so a Farkas certificate of the realizability LP
  (:mod:`rlref.formalisms.realizability`) proves no specification works. Used for RRL (exact
  features: occupancy + regulariser indicators, any R, α, F; checked on a grid of discounts, and
  γ-free where the witness's state occupancies are policy-independent), LAR (Cesàro-limit
  occupancy; exact, γ-free), and the trajectory formalisms RM/LTL/FTR where the witness makes their
  value linear in π(·|s0) (one decision, never revisited: L_π = Σ_a π(a|s0) L_a) or additively
  separable over nature's branches (J = ½ h1(π(s1)) + ½ h2(π(s2))).
* ``levels``: in a deterministic environment with a deterministic start, a deterministic policy has
  one trajectory, so an LTL value is 0 or 1: LTL orders such policies into at most two classes.
* ``refuter`` (ONMR, and RM across a discontinuity): a constructive function that, for ANY given
  specification of the other formalism, returns two witness policies on which that specification
  and the target disagree (ties one but not the other, or orders them differently); the argument
  that the construction always succeeds is in its docstring, and the reproduction runs it on many
  random specifications. ONMR orders by f(⟨R, m^π⟩): policies with equal ⟨R, m^π⟩ tie for every f.
  A discounted reward machine's value is continuous in π (coupling bound below), so it cannot jump.
* ``debreu`` (OMORL ⊏ GOMORL, :func:`witness_gomorl`): the lexicographic order of two returns that
  cover a square is not representable by any real function (Debreu 1954). That is an infinite
  argument — on finitely many policies every total preorder *is* a real function's (its rank,
  :func:`finite_rank_representation`) — so the certificate checks its finite parts: the square, the
  pigeonhole LP of Debreu's proof (:func:`lexicographic_gap_lp`), and a refuter for every continuous
  OMORL specification (:func:`refute_lexicographic`).
* ``not-total`` / ``exhaustive`` (TO, :func:`witness_to_partial`, :func:`witness_to_linear`): TO's
  stochastic-dominance orderings can be partial, which no other formalism induces; and TO cannot
  induce a linear MR/LAR ordering — all 13 total preorders on the three reachable trajectories fail.
* Propagation: a formalism that expresses less (MR ⊑ RM, ONMR, RRL) inherits every "cannot".

Everything marked "derived here" is our construction; the paper's own witnesses could not be
retrieved (only its abstract, a summary and its reference list were accessible).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq

from rlref.formalisms.objectives import (
    Formalism,
    LimitAverageReward,
    LinearTemporalLogic,
    MarkovReward,
    OuterNonlinearMarkovReward,
    RegularisedRL,
    RewardMachineObjective,
)
from rlref.formalisms.ordering import PolicyOrdering
from rlref.formalisms.realizability import (
    RealizabilityResult,
    limit_average_realizability,
    linear_realizability,
    regularised_realizability,
)
from rlref.formalisms.reward_machine import RewardMachine
from rlref.mdp import TabularMDP

__all__ = [
    "Certificate",
    "Witness",
    "GAMMA_GRID",
    "witness_rrl",
    "witness_onmr",
    "witness_rm",
    "witness_ltl",
    "witness_lar",
    "witness_tlo_po",
    "witness_mr",
    "witness_gomorl",
    "witness_to_partial",
    "witness_to_linear",
    "witness_ltl_to",
    "headline_witnesses",
    "all_witnesses",
    "lexicographic_gap_lp",
    "refute_lexicographic",
    "finite_rank_representation",
    "refute_onmr",
    "refute_rm_jump",
    "random_reward_machine",
    "rm_continuity_bound",
]

GAMMA_GRID = (0.05, 0.3, 0.5, 0.7, 0.9, 0.99)


@dataclass(frozen=True, eq=False)
class Certificate:
    """Evidence that formalism ``against`` cannot induce the witness ordering."""

    against: str
    method: str  # "lp-farkas", "levels", "refuter", "identical-lotteries"
    holds: bool
    detail: str
    data: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Witness:
    """A task B can express and the formalisms in ``certificates`` cannot (derived here)."""

    name: str
    expresses: str
    mdp: TabularMDP
    spec: Formalism
    policies: tuple[np.ndarray, ...]
    policy_names: tuple[str, ...]
    ordering: PolicyOrdering
    certificates: dict[str, Certificate]
    refuters: dict[str, Callable[..., Any]] = field(default_factory=dict)


# ----------------------------------------------------------------------------- helpers
def _mdp(P: np.ndarray, mu0: Sequence[float], name: str) -> TabularMDP:
    S, A = P.shape[:2]
    return TabularMDP(P=P, R=np.zeros((S, A)), gamma=0.9, mu0=np.asarray(mu0, float), name=name)


def _policy(rows: Sequence[Sequence[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=float)


def _lp_cert(against: str, res: RealizabilityResult | Sequence[RealizabilityResult], what: str) -> Certificate:
    results = list(res) if isinstance(res, (list, tuple)) else [res]
    holds = all(not r.realizable for r in results)
    worst = max(r.residual for r in results)
    return Certificate(against=against, method="lp-farkas", holds=holds,
                       detail=f"{what}: realizability LP infeasible ({len(results)} LP(s)); Farkas residual <= {worst:.1e}",
                       data={"farkas": [None if r.farkas is None else r.farkas.tolist() for r in results],
                             "relations": [list(map(list, r.relations)) for r in results][:1], "residual": worst})


def _rrl_cert(w_mdp, policies, ordering) -> Certificate:
    res = [regularised_realizability(w_mdp, policies, ordering, gamma=g) for g in GAMMA_GRID]
    return _lp_cert("RRL", res, f"every R, alpha, regulariser F, at gamma in {GAMMA_GRID}")


def _levels_cert(mdp: TabularMDP, policies, ordering: PolicyOrdering, idx: Sequence[int]) -> Certificate:
    P = mdp.dense_P()
    det_env = bool(np.all((P == 0) | (P == 1)) and np.count_nonzero(mdp.mu0) == 1)
    det_pol = all(np.all((policies[i] == 0) | (policies[i] == 1)) for i in idx)
    sub = ordering.geq[np.ix_(idx, idx)]
    n_classes = len(PolicyOrdering(geq=sub).classes())
    holds = det_env and det_pol and n_classes > 2
    return Certificate(against="LTL", method="levels", holds=holds,
                       detail=f"deterministic environment and policies: an LTL value is 0 or 1 (<= 2 classes); the target has {n_classes} classes",
                       data={"classes": n_classes, "deterministic_env": det_env, "deterministic_policies": det_pol})


def _refuter_cert(against: str, refuter: Callable[..., Any], sampler: Callable[[np.random.Generator], Any], n: int, seed: int,
                  argument: str) -> Certificate:
    rng = np.random.default_rng(seed)
    ok = 0
    for _ in range(n):
        if refuter(sampler(rng)) is not None:
            ok += 1
    return Certificate(against=against, method="refuter", holds=ok == n,
                       detail=f"{argument}; refuted {ok}/{n} random {against} specifications", data={"refuted": ok, "tried": n})


def rm_continuity_bound(eps: float, gamma: float, rmax: float) -> float:
    """|J_RM(π) − J_RM(π')| ≤ 2 R_max Σ_t γ^t (1 − (1 − ε)^{t+1}) = 2 R_max [1/(1 − γ) − (1 − ε)/(1 − γ(1 − ε))]
    when π, π' differ in total variation by at most ε at every state (couple the two runs; they
    agree until the first step whose actions differ, which has probability ≤ ε per step). Derived here."""
    return 2.0 * rmax * (1.0 / (1.0 - gamma) - (1.0 - eps) / (1.0 - gamma * (1.0 - eps)))


def random_reward_machine(rng: np.random.Generator, mdp: TabularMDP, max_states: int = 3) -> RewardMachineObjective:
    """A random complete reward machine over the MDP's transitions (for refuter checks)."""
    S, A = mdp.num_states, mdp.num_actions
    U = int(rng.integers(1, max_states + 1))
    delta = rng.integers(0, U, size=(U, S, A, S))
    reward = rng.normal(size=(U, S, A, S)) * (rng.random((U, S, A, S)) < 0.6)
    return RewardMachineObjective(RewardMachine(delta=delta, reward=reward, u0=0), float(rng.uniform(0.05, 0.99)))


def refute_rm_jump(spec: RewardMachineObjective, mdp: TabularMDP, pi_zero: np.ndarray, pi_one: np.ndarray,
                   pi_eps: Callable[[float], np.ndarray], target: Callable[[np.ndarray], float]) -> tuple[np.ndarray, np.ndarray] | None:
    """Two policies the reward machine ``spec`` orders unlike the target, when the target ties
    π_ε with π_1 for every ε ∈ (0, 1] and ranks π_0 strictly below (a jump at ε = 0).

    If J(π_1) ≤ J(π_0), the pair (π_1, π_0) already disagrees. Else choose ε with
    rm_continuity_bound(ε) < J(π_1) − J(π_0): then J(π_ε) < J(π_1) while the target ties them.
    """
    j0, j1 = spec.value(mdp, pi_zero), spec.value(mdp, pi_one)
    t0, t1 = target(pi_zero), target(pi_one)
    if not t1 > t0:
        raise ValueError("refute_rm_jump needs target(pi_one) > target(pi_zero)")
    if j1 <= j0 + 1e-12:
        return (pi_one, pi_zero)
    rmax = float(np.max(np.abs(spec.machine.reward))) or 1.0
    eps = 0.5
    while rm_continuity_bound(eps, spec.gamma, rmax) >= (j1 - j0) / 2 and eps > 1e-300:
        eps /= 2
    pe = pi_eps(eps)
    je = spec.value(mdp, pe)
    if abs(je - j1) > 1e-12 * max(1.0, abs(j1)) and abs(target(pe) - t1) <= 1e-12:
        return (pe, pi_one)
    return None


def refute_onmr(spec: OuterNonlinearMarkovReward | MarkovReward, mdp: TabularMDP, pairs: Sequence[tuple[np.ndarray, np.ndarray]],
                target: Callable[[np.ndarray], float]) -> tuple[np.ndarray, np.ndarray] | None:
    """The first candidate pair with equal ⟨R, m^π⟩ (so every f ties them) but different target
    values; None if no candidate works. The witnesses build the candidates from the spec."""
    mr = MarkovReward(spec.R, spec.gamma)
    for p, q in pairs:
        a, b = mr.value(mdp, p), mr.value(mdp, q)
        if abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b)) and abs(target(p) - target(q)) > 1e-9:
            return (p, q)
    return None


def _onmr_sampler(mdp: TabularMDP):
    def sample(rng):
        R = rng.normal(size=(mdp.num_states, mdp.num_actions, mdp.num_states))
        return OuterNonlinearMarkovReward(R, float(rng.uniform(0.05, 0.99)), f=np.tanh)

    return sample


def _line_pairs(family: Callable[[float, float], np.ndarray], ell: Callable[[np.ndarray], float], centers: Sequence[tuple[float, float]],
                t: float = 0.25):
    """Pairs of policies family(x, y) on a level line of the affine functional ℓ through each center."""
    l00, l10, l01 = ell(family(0, 0)), ell(family(1, 0)), ell(family(0, 1))
    a, b = l10 - l00, l01 - l00
    out = []
    for cx, cy in centers:
        if abs(a) + abs(b) <= 1e-12 * max(1.0, abs(l00)):
            out += [(family(cx, cy), family(px, py)) for px, py in ((0, 0), (1, 1), (0, 1), (1, 0))]
            continue
        dx, dy = b, -a
        s = t / max(abs(dx), abs(dy))
        out.append((family(cx + s * dx, cy + s * dy), family(cx - s * dx, cy - s * dy)))
        out.append((family(cx, cy), family(cx + s * dx, cy + s * dy)))
    return out


# ----------------------------------------------------------------------------- RRL
def witness_rrl(samples: int = 200, seed: int = 0) -> Witness:
    """RRL expresses 'the more random the first choice, the better': J = H(π(·|s0)) (entropy bonus,
    R = 0), s0 → one of three absorbing states. Derived here.

    * LAR, RM, LTL (indeed all of FTR): the first action is taken once, so L_π = Σ_a π(a|s0) L_a and
      E_π[f(ξ)] is linear in π(·|s0): the uniform policy would score the mean of the deterministic
      ones, which the target ties strictly below it — LP on features π(·|s0) is infeasible.
    * ONMR: ⟨R, m^π⟩ = c·π(·|s0) + const; through the uniform point, the level line of c (direction
      c × 1) stays in the simplex, and H drops strictly away from uniform, so f cannot separate them.
    """
    S, A = 4, 3
    P = np.zeros((S, A, S))
    for a in range(A):
        P[0, a, a + 1] = 1.0
    P[1:, :, :] = 0.0
    for s in range(1, S):
        P[s, :, s] = 1.0
    mdp = _mdp(P, [1, 0, 0, 0], "rrl-witness")
    rest = [[1, 0, 0]] * 3
    firsts = {"a0": [1, 0, 0], "a1": [0, 1, 0], "a2": [0, 0, 1], "half01": [0.5, 0.5, 0], "uniform": [1 / 3] * 3}
    names = tuple(firsts)
    pols = tuple(_policy([v, *rest]) for v in firsts.values())
    spec = RegularisedRL(R=np.zeros((S, A)), gamma=0.9, alpha=1.0)
    order = spec.ordering(mdp, pols)
    lin = linear_realizability(np.stack([p[0] for p in pols]), order)

    def family(p: np.ndarray) -> np.ndarray:
        return _policy([p, *rest])

    def refuter(onmr):
        c = np.array([MarkovReward(onmr.R, onmr.gamma).value(mdp, family(np.eye(3)[a])) for a in range(3)])
        u = np.full(3, 1 / 3)
        if np.ptp(c) <= 1e-12 * max(1.0, np.max(np.abs(c))):
            cands = [(family(u), family(np.eye(3)[0]))]
        else:
            d = np.cross(c - c.mean(), np.ones(3))
            d = d / np.max(np.abs(d)) * 0.2
            cands = [(family(u), family(u + d))]
        return refute_onmr(onmr, mdp, cands, lambda p: spec.value(mdp, p))

    certs = {
        "LAR": _lp_cert("LAR", limit_average_realizability(mdp, pols, order), "any reward, limit average"),
        "RM": _lp_cert("RM", lin, "every function of trajectories is linear in pi(.|s0) here"),
        "LTL": _lp_cert("LTL", lin, "every function of trajectories is linear in pi(.|s0) here"),
        "ONMR": _refuter_cert("ONMR", refuter, _onmr_sampler(mdp), samples, 1 + 1000 * seed,
                              "level line of <R, m> through the uniform first choice: entropy differs, <R, m> equal"),
    }
    return Witness(name="rrl", expresses="RRL", mdp=mdp, spec=spec, policies=pols, policy_names=names, ordering=order,
                   certificates=certs, refuters={"ONMR": refuter})


# ----------------------------------------------------------------------------- ONMR
def witness_onmr() -> Witness:
    """ONMR expresses 'exactly one of the two branches should pick action 1':
    nature sends s0 to s1 or s2 (½ each); action 1 there earns 1; J = −(J_R − γ/2)². Derived here.

    RRL, RM, LTL, LAR: each branch is entered with probability ½ whatever π does, and only π(s1)
    (resp. π(s2)) acts in it, so every trajectory objective is h1(π(s1)) + h2(π(s2)) (separable),
    and so is RRL's ⟨R, m⟩ − α Σ_s d(s) F(π(s)) with d(s1) = d(s2) = γ/2 fixed. XOR is not
    separable: (1,0) ~ (0,1) ≻ (0,0) ~ (1,1) forces h1(1) − h1(0) = h2(0) − h2(1) = h2(1) − h2(0) = 0.
    """
    S, A = 5, 2
    P = np.zeros((S, A, S))
    P[0, :, 1] = P[0, :, 2] = 0.5
    for s in (1, 2):
        P[s, 0, 3] = P[s, 1, 4] = 1.0
    P[3, :, 3] = P[4, :, 4] = 1.0
    mdp = _mdp(P, [1, 0, 0, 0, 0], "onmr-witness")
    R = np.zeros((S, A))
    R[1, 1] = R[2, 1] = 1.0
    gamma = 0.9
    spec = OuterNonlinearMarkovReward(R, gamma, f=lambda x: -((x - gamma / 2) ** 2))

    def pol(p, q):
        return _policy([[1, 0], [1 - p, p], [1 - q, q], [1, 0], [1, 0]])

    combos = {"(0,0)": (0, 0), "(0,1)": (0, 1), "(1,0)": (1, 0), "(1,1)": (1, 1)}
    pols = tuple(pol(*v) for v in combos.values())
    order = spec.ordering(mdp, pols)
    sep = np.array([[1 - p, p, 1 - q, q] for p, q in combos.values()], dtype=float)
    sep_res = linear_realizability(sep, order)
    certs = {
        "RRL": _rrl_cert(mdp, pols, order),
        "RM": _lp_cert("RM", sep_res, "trajectory objectives are separable over nature's branches"),
        "LTL": _lp_cert("LTL", sep_res, "trajectory objectives are separable over nature's branches"),
        "LAR": _lp_cert("LAR", limit_average_realizability(mdp, pols, order), "any reward, limit average"),
    }
    return Witness(name="onmr", expresses="ONMR", mdp=mdp, spec=spec, policies=pols, policy_names=tuple(combos), ordering=order, certificates=certs)


# ----------------------------------------------------------------------------- RM
def witness_rm(samples: int = 200, seed: int = 0) -> Witness:
    """RM expresses 'start with action 0, then repeat your first action': a deterministic chain
    s0 → s1 → s2 (absorbing); the machine remembers a0, pays 1 for a0 = 0 and 1 (discounted) for
    a1 = a0. Order (0,0) ≻ (0,1) ≻ (1,1) ≻ (1,0). Derived here.

    * RRL: d(s0) = 1, d(s1) = γ for every policy, so RRL is separable: g0(a0) + g1(a1) — but
      (0,0) ≻ (0,1) needs g1(0) > g1(1) and (1,1) ≻ (1,0) needs g1(1) > g1(0).
    * LAR: every policy ends in s2 with the same behaviour there: all tie.
    * LTL: 4 classes of deterministic policies in a deterministic environment (> 2 levels).
    * ONMR: ⟨R, m⟩ is affine in (p, q) = (π(0|s0), π(0|s1)) while the target p + γ(pq + (1−p)(1−q))
      has the cross term 2γpq: on a level line of ⟨R, m⟩ it is a non-constant quadratic (or, on an
      axis-parallel line, linear with slope 2γp − γ ≠ 0 off p = ½), so f cannot tie it.
    """
    S, A = 3, 2
    P = np.zeros((S, A, S))
    P[0, :, 1] = P[1, :, 2] = P[2, :, 2] = 1.0
    mdp = _mdp(P, [1, 0, 0], "rm-witness")
    U = 4
    delta = np.zeros((U, S, A, S), dtype=np.int64)
    for u in range(U):
        delta[u] = u
    reward = np.zeros((U, S, A, S))
    delta[0, 0, 0, 1], delta[0, 0, 1, 1] = 1, 2
    reward[0, 0, 0, 1] = 1.0
    delta[1, 1, :, 2] = delta[2, 1, :, 2] = 3
    reward[1, 1, 0, 2] = reward[2, 1, 1, 2] = 1.0
    spec = RewardMachineObjective(RewardMachine(delta=delta, reward=reward, u0=0), gamma=0.9)

    def pol(p, q):
        return _policy([[p, 1 - p], [q, 1 - q], [1, 0]])

    combos = {"(0,0)": (1, 1), "(0,1)": (1, 0), "(1,0)": (0, 1), "(1,1)": (0, 0)}  # (a0, a1) -> (p, q)
    pols = tuple(pol(*v) for v in combos.values())
    order = spec.ordering(mdp, pols)

    def refuter(onmr):
        mr = MarkovReward(onmr.R, onmr.gamma)
        cands = _line_pairs(lambda x, y: pol(x, y), lambda p: mr.value(mdp, p), [(0.5, 0.5), (0.8, 0.5), (0.2, 0.5), (0.5, 0.8)])
        return refute_onmr(onmr, mdp, cands, lambda p: spec.value(mdp, p))

    certs = {
        "RRL": _rrl_cert(mdp, pols, order),
        "LAR": _lp_cert("LAR", limit_average_realizability(mdp, pols, order), "any reward, limit average"),
        "LTL": _levels_cert(mdp, pols, order, range(len(pols))),
        "ONMR": _refuter_cert("ONMR", refuter, _onmr_sampler(mdp), samples, 2 + 1000 * seed, "level lines of <R, m> cut the bilinear target"),
    }
    return Witness(name="rm", expresses="RM", mdp=mdp, spec=spec, policies=pols, policy_names=tuple(combos), ordering=order,
                   certificates=certs, refuters={"ONMR": refuter})


# ----------------------------------------------------------------------------- LTL
def witness_ltl(samples: int = 200, seed: int = 0) -> Witness:
    """LTL expresses φ = (F in1 ∧ G F a) ∨ (F in2 ∧ F G a): nature sends s0 to the absorbing s1 or
    s2 (½ each); with x = π(a|s1), y = π(a|s2), Pr(φ) = ½[x > 0] + ½[y = 1]. Derived here.

    * RRL: J = ⟨R, m⟩ − α Σ_s d(s) F(π(s)) with d(s1) = d(s2); the x-jump at 0 and the y-jump at 1
      force c < c' and c' < c for the two linear parts (LP on x, y ∈ {0, ½, 1}).
    * LAR: ⟨R, ρ^π⟩ is affine in (x, y); the target is not.
    * ONMR: ⟨R, m⟩ = αx + βy + c: moving from (0, ½) along its level line turns [x > 0] on.
    * RM: the discounted value is continuous in π (:func:`rm_continuity_bound`); the target jumps at x = 0.
    """
    S, A = 3, 2
    P = np.zeros((S, A, S))
    P[0, :, 1] = P[0, :, 2] = 0.5
    P[1, :, 1] = P[2, :, 2] = 1.0
    mdp = _mdp(P, [1, 0, 0], "ltl-witness")
    labels = {"in1": np.array([0, 1, 0], bool), "in2": np.array([0, 0, 1], bool), "a": np.tile(np.array([True, False]), (S, 1))}
    spec = LinearTemporalLogic("(F in1 & G F a) | (F in2 & F G a)", labels)

    def pol(x, y):
        return _policy([[1, 0], [x, 1 - x], [y, 1 - y]])

    grid = [0.0, 0.5, 1.0]
    combos = {f"x={x:g},y={y:g}": (x, y) for x in grid for y in grid}
    pols = tuple(pol(*v) for v in combos.values())
    order = spec.ordering(mdp, pols)

    def target(p):
        return spec.value(mdp, p)

    def onmr_refuter(onmr):
        mr = MarkovReward(onmr.R, onmr.gamma)
        l00 = mr.value(mdp, pol(0, 0))
        a, b = mr.value(mdp, pol(1, 0)) - l00, mr.value(mdp, pol(0, 1)) - l00
        if abs(b) > 1e-9 * max(1.0, abs(l00)):
            s = min(0.25, 0.2 * abs(b) / max(abs(a), 1e-300))
            cands = [(pol(0, 0.5), pol(s, 0.5 - a * s / b))]
        else:
            cands = [(pol(0.5, 0), pol(0.5, 1))]
        return refute_onmr(onmr, mdp, cands, target)

    def rm_refuter(rm):
        return refute_rm_jump(rm, mdp, pol(0, 0), pol(1, 0), lambda e: pol(e, 0), target)

    certs = {
        "RRL": _rrl_cert(mdp, pols, order),
        "LAR": _lp_cert("LAR", limit_average_realizability(mdp, pols, order), "any reward, limit average"),
        "ONMR": _refuter_cert("ONMR", onmr_refuter, _onmr_sampler(mdp), samples, 3 + 1000 * seed,
                              "level line of <R, m> from (0, 1/2) switches [x > 0] on"),
        "RM": _refuter_cert("RM", rm_refuter, lambda rng: random_reward_machine(rng, mdp), max(1, samples // 3), 4 + 1000 * seed,
                            "coupling bound |J(pi_eps) - J(pi_0)| <= rm_continuity_bound(eps) -> 0, but the target jumps at x = 0"),
    }
    return Witness(name="ltl", expresses="LTL", mdp=mdp, spec=spec, policies=pols, policy_names=tuple(combos), ordering=order,
                   certificates=certs, refuters={"ONMR": onmr_refuter, "RM": rm_refuter})


# ----------------------------------------------------------------------------- LAR
def witness_lar(samples: int = 200, seed: int = 0) -> Witness:
    """LAR expresses 'leave s0 eventually, how soon does not matter, then earn (0, 1, ½) per step
    by action': s0 (action 0 stays, actions 1, 2 move to the absorbing s1). With x = π(leave|s0),
    J = [x > 0] · r(π(s1)). Derived here.

    * LTL: deterministic environment, deterministic policies score 0, ½, 1: three classes.
    * RRL: d(s0) = 1/(1 − γ(1 − x)) and d(s1) = γx / ((1 − γ)(1 − γ(1 − x))), which differ between x = ½
      and x = 1 for every γ ∈ (0, 1); so s1's contribution d(s1)·g(π(s1)) cannot be tied across the two x
      for every π(s1) unless g is constant, which the target forbids (LP, any R, α, F).
    * RM: continuity in π (:func:`rm_continuity_bound`) against the jump at x = 0.
    * ONMR: the curves x ↦ ⟨R, m^π⟩ (x ∈ (0, 1]) for four levels of π(s1) all tend to the x = 0 value;
      two of them lie on the same side, so their images overlap: a common value is found by brentq.
    """
    S, A = 2, 3
    P = np.zeros((S, A, S))
    P[0, 0, 0] = 1.0
    P[0, 1, 1] = P[0, 2, 1] = 1.0
    P[1, :, 1] = 1.0
    mdp = _mdp(P, [1, 0], "lar-witness")
    R = np.zeros((S, A))
    R[1] = [0.0, 1.0, 0.5]
    spec = LimitAverageReward(R)

    def pol(x, s1):
        return _policy([[1 - x, x, 0], s1])

    e = np.eye(3)
    combos = {f"x={x:g},s1=a{k}": (x, e[k]) for x in (0.0, 0.5, 1.0) for k in range(3)}
    pols = tuple(pol(*v) for v in combos.values())
    order = spec.ordering(mdp, pols)
    det_idx = [i for i, (x, _) in enumerate(combos.values()) if x in (0.0, 1.0)]

    def target(p):
        return spec.value(mdp, p)

    def onmr_refuter(onmr):
        mr = MarkovReward(onmr.R, onmr.gamma)
        l0 = mr.value(mdp, pol(0.0, e[0]))
        levels = (0.25, 0.5, 0.75, 1.0)

        def sig(c):
            return (1 - c) * e[0] + c * e[1]

        def curve(c, x):
            return mr.value(mdp, pol(x, sig(c))) - l0

        xs = np.geomspace(1e-12, 1.0, 120)
        vals = {c: np.array([curve(c, x) for x in xs]) for c in levels}
        scale = max(1.0, abs(l0))
        for c, v in vals.items():  # a curve meeting the x = 0 value ties a level-c policy with x = 0
            if np.any(np.abs(v) <= 1e-12 * scale):
                x = float(xs[int(np.argmin(np.abs(v)))])
                return refute_onmr(onmr, mdp, [(pol(x, sig(c)), pol(0.0, e[0]))], target)
            sgn = np.sign(v)
            if np.any(sgn != sgn[0]):
                k = int(np.flatnonzero(sgn != sgn[0])[0])
                x = brentq(lambda t, c=c: curve(c, t), xs[k - 1], xs[k], xtol=1e-15, rtol=1e-15)
                return refute_onmr(onmr, mdp, [(pol(x, sig(c)), pol(0.0, e[0]))], target)
        sides: dict[float, list[float]] = {}
        for c, v in vals.items():
            sides.setdefault(float(np.sign(v[-1])), []).append(c)
        group = max(sides.values(), key=len)
        c1, c2 = group[0], group[1]
        side = float(np.sign(vals[c1][-1]))
        peak = min(float(np.max(side * vals[c1])), float(np.max(side * vals[c2])))
        goal = side * peak / 2
        xs_hit = []
        for c in (c1, c2):
            v = side * vals[c]
            k = int(np.argmax(v >= peak / 2))
            lo = xs[k - 1] if k > 0 else xs[0] / 10
            xs_hit.append(brentq(lambda t, c=c: curve(c, t) - goal, lo, xs[k], xtol=1e-15, rtol=1e-15))
        return refute_onmr(onmr, mdp, [(pol(xs_hit[0], sig(c1)), pol(xs_hit[1], sig(c2)))], target)

    def rm_refuter(rm):
        return refute_rm_jump(rm, mdp, pol(0.0, e[1]), pol(1.0, e[1]), lambda eps: pol(eps, e[1]), target)

    certs = {
        "LTL": _levels_cert(mdp, pols, order, det_idx),
        "RRL": _rrl_cert(mdp, pols, order),
        "RM": _refuter_cert("RM", rm_refuter, lambda rng: random_reward_machine(rng, mdp), max(1, samples // 3), 5 + 1000 * seed,
                            "coupling bound |J(pi_eps) - J(pi_0)| <= rm_continuity_bound(eps) -> 0, but the target jumps at x = 0"),
        "ONMR": _refuter_cert("ONMR", onmr_refuter, _onmr_sampler(mdp), max(1, samples // 2), 6 + 1000 * seed,
                              "curves of <R, m> for four levels all tend to the x = 0 value; two overlap"),
    }
    return Witness(name="lar", expresses="LAR", mdp=mdp, spec=spec, policies=pols, policy_names=tuple(combos), ordering=order,
                   certificates=certs, refuters={"ONMR": onmr_refuter, "RM": rm_refuter})


# ----------------------------------------------------------------------------- TLO vs PO
def witness_tlo_po() -> Witness:
    """PO distinguishes policies that differ only in a state no run reaches; their trajectory
    lotteries and occupancy measures are identical, so every TLO/OMO (hence FTLR, FOMR, …) ties them."""
    from rlref.formalisms.objectives import PolicyOrderingObjective, occupancy_sas, trajectory_lottery

    S, A = 2, 2
    P = np.zeros((S, A, S))
    P[0, :, 0] = 1.0
    P[1, :, 1] = 1.0
    mdp = _mdp(P, [1, 0], "tlo-po-witness")
    pols = (_policy([[1, 0], [1, 0]]), _policy([[1, 0], [0, 1]]))
    spec = PolicyOrderingObjective(lambda p, q: int(np.sign(p[1, 0] - q[1, 0])))
    order = spec.ordering(mdp, pols)
    same_l = trajectory_lottery(mdp, pols[0], 6) == trajectory_lottery(mdp, pols[1], 6)
    same_m = bool(np.array_equal(occupancy_sas(mdp, pols[0], 0.9), occupancy_sas(mdp, pols[1], 0.9)))
    cert = Certificate(against="TLO", method="identical-lotteries", holds=bool(same_l and same_m and order.strict()[0, 1]),
                       detail="the two policies differ only in the unreachable s1: identical lotteries and occupancy measures, "
                              "PO ranks them strictly")
    return Witness(name="tlo-po", expresses="PO", mdp=mdp, spec=spec, policies=pols, policy_names=("s1->a0", "s1->a1"), ordering=order,
                   certificates={"TLO": cert})


def witness_mr() -> Witness:
    """MR expresses 'prefer action 0, first step most': on the deterministic chain of :func:`witness_rm`,
    R(s0, 0) = 2, R(s1, 0) = 1 ranks the four deterministic policies in four classes. LAR ties them all
    (they share their limit behaviour in s2) and LTL has at most two levels there. Derived here."""
    base = witness_rm(samples=1)
    mdp, pols = base.mdp, base.policies
    R = np.zeros((3, 2))
    R[0, 0], R[1, 0] = 2.0, 1.0
    spec = MarkovReward(R, 0.9)
    order = spec.ordering(mdp, pols)
    certs = {"LAR": _lp_cert("LAR", limit_average_realizability(mdp, pols, order), "any reward, limit average"),
             "LTL": _levels_cert(mdp, pols, order, range(len(pols)))}
    return Witness(name="mr", expresses="MR", mdp=mdp, spec=spec, policies=pols, policy_names=base.policy_names, ordering=order, certificates=certs)


def headline_witnesses(samples: int = 200, seed: int = 0) -> dict[str, Witness]:
    """The abstract's five: each of RRL, ONMR, RM, LTL, LAR expresses a task the other four cannot.
    ``samples`` random specifications (drawn with ``seed``) are refuted per refuter certificate."""
    return {"RRL": witness_rrl(samples, seed), "ONMR": witness_onmr(), "RM": witness_rm(samples, seed), "LTL": witness_ltl(samples, seed),
            "LAR": witness_lar(samples, seed)}


# ----------------------------------------------------------------------------- OMORL ⊏ GOMORL (lexicographic)
def lexicographic_gap_lp(n_columns: int) -> float:
    """The largest uniform vertical gap t a real function u with values in [0, 1] can have while
    respecting the lexicographic order on the grid {x_1 < … < x_N} × {0, 1}:

        max t  s.t.  u(x_i, 1) − u(x_i, 0) ≥ t,  u(x_{i+1}, 0) ≥ u(x_i, 1),  0 ≤ u ≤ 1.

    Solved as an LP (HiGHS); the optimum is 1/N (telescoping: N·t ≤ u(x_N, 1) − u(x_1, 0) ≤ 1). This is
    the finite step of Debreu's argument (Debreu 1954; Fishburn 1970, Thm 3.4): a real representation
    of the lexicographic order on a square can be taken bounded (compose with arctan), so for every
    ε > 0 at most 1/ε columns have a gap ≥ ε; the columns with a positive gap are then countable —
    but lexicographic strictness needs a positive gap in every one of uncountably many columns.
    """
    from scipy.optimize import linprog

    N = int(n_columns)
    if N < 1:
        raise ValueError(f"n_columns must be >= 1, got {n_columns}")
    nv = 2 * N + 1  # u(x_1,0), u(x_1,1), …, u(x_N,1), t
    A, b = [], []
    for i in range(N):
        row = np.zeros(nv)
        row[2 * i], row[2 * i + 1], row[-1] = 1.0, -1.0, 1.0  # t − (u_i1 − u_i0) ≤ 0
        A.append(row), b.append(0.0)
        if i + 1 < N:
            row = np.zeros(nv)
            row[2 * i + 1], row[2 * i + 2] = 1.0, -1.0  # u_i1 − u_{i+1}0 ≤ 0
            A.append(row), b.append(0.0)
    c = np.zeros(nv)
    c[-1] = -1.0
    res = linprog(c, A_ub=np.array(A), b_ub=np.array(b), bounds=[(0, 1)] * (2 * N) + [(None, None)], method="highs")
    if res.status != 0:
        raise RuntimeError(f"lexicographic_gap_lp: LP failed ({res.message})")
    return float(-res.fun)


Point = tuple[float, float]


def refute_lexicographic(value: Callable[[float, float], float], x0: float = 0.5, kmax: int = 40) -> tuple[Point, Point] | None:
    """Two points p ≻_lex q of the unit square that a real score ``value(x, y)`` does not rank p > q.

    First (x0, 1) ≻ (x0, 0): if value(x0, 1) ≤ value(x0, 0) that pair already disagrees. Otherwise the
    gap g = value(x0, 1) − value(x0, 0) > 0, and (x0 + δ, 0) ≻ (x0, 1) for every δ > 0: halve δ = 2^−k
    until value(x0 + δ, 0) ≤ value(x0, 0) + g/2 < value(x0, 1) (a margin g/2, far above rounding). This
    terminates whenever ``value`` is right-continuous in x at (x0, 0) with modulus below g/2 at δ = 2^−kmax
    — every continuous score; discontinuous ones are covered by Debreu's argument (:func:`lexicographic_gap_lp`).
    Returns (p, q) with p ≻_lex q and value(p) ≤ value(q), or None. Derived here.
    """
    a, b = float(value(x0, 0.0)), float(value(x0, 1.0))
    if not b > a:
        return ((x0, 1.0), (x0, 0.0))
    for k in range(1, kmax + 1):
        d = 2.0**-k
        if float(value(x0 + d, 0.0)) <= a + (b - a) / 2:
            return ((x0 + d, 0.0), (x0, 1.0))
    return None


def _omorl_sampler(mdp: TabularMDP, R1: np.ndarray, R2: np.ndarray, gamma: float):
    """Random continuous OMORL specifications: random rewards and f, or 'big-M' scalarisations of the
    true objectives (M·J1 + J2, tanh-squashed, …), the usual attempt to emulate a lexicographic order."""
    from rlref.formalisms.objectives import OuterMultiObjectiveRL

    S, A = mdp.num_states, mdp.num_actions

    def sample(rng):
        kind = int(rng.integers(4))
        if kind == 0:
            M = float(10 ** rng.uniform(1, 6))
            return OuterMultiObjectiveRL([R1, R2], gamma, f=lambda v, M=M: M * v[0] + v[1])
        if kind == 1:
            M = float(10 ** rng.uniform(0, 4))
            return OuterMultiObjectiveRL([R1, R2], gamma, f=lambda v, M=M: np.tanh(M * v[0]) + np.arctan(v[1]) / 10)
        k = int(rng.integers(1, 4))
        Rs = [rng.normal(size=(S, A)) for _ in range(k)]
        w = rng.normal(size=k)
        g = float(rng.uniform(0.05, 0.99))
        if kind == 2:
            return OuterMultiObjectiveRL(Rs, g, f=lambda v, w=w: float(w @ v))
        return OuterMultiObjectiveRL(Rs, g, f=lambda v, w=w: float(np.sin(w @ v) + (w @ v) ** 2))

    return sample


def witness_gomorl(samples: int = 200, seed: int = 0) -> Witness:
    """GOMORL expresses the lexicographic order of (J_R1, J_R2): nature sends s0 to s1 or s2 (½ each,
    the environment of :func:`witness_onmr`); R1 pays 1 for action 1 in s1, R2 for action 1 in s2, so
    with x = π(1|s1), y = π(1|s2) the returns are exactly (J_R1, J_R2) = (γ/2)(x, y): the policies
    cover a square, ordered lexicographically. Derived here (the classical example is Debreu 1954).

    OMORL (hence FOMR and FTLR, its equivalents) cannot induce it: an OMORL value is one real number,
    and no real function represents the lexicographic order on a square. The certificate checks:
    (1) the square: J = (γ/2)(x, y) on an 11 × 11 grid of policies (closed form above); (2) Debreu's
    finite step: :func:`lexicographic_gap_lp` = 1/N for N = 2 … 64 columns; (3) a constructive
    refuter (:func:`refute_lexicographic`) on random continuous OMORL specifications. No *finite*
    policy set can witness this strictness: on finitely many policies the rank of the return vector is a
    real function inducing the same order (:func:`finite_rank_representation`).
    """
    from rlref.formalisms.objectives import GeneralisedOuterMultiObjectiveRL, OuterMultiObjectiveRL

    base = witness_onmr()
    mdp = base.mdp
    S, A = mdp.num_states, mdp.num_actions
    gamma = 0.9
    R1, R2 = np.zeros((S, A)), np.zeros((S, A))
    R1[1, 1] = R2[2, 1] = 1.0
    spec = GeneralisedOuterMultiObjectiveRL([R1, R2], gamma, order="lexicographic")

    def pol(x, y):
        return _policy([[1, 0], [1 - x, x], [1 - y, y], [1, 0], [1, 0]])

    grid = (0.0, 0.5, 1.0)
    combos = {f"x={x:g},y={y:g}": (x, y) for x in grid for y in grid}
    pols = tuple(pol(*v) for v in combos.values())
    order = spec.ordering(mdp, pols)
    returns = OuterMultiObjectiveRL([R1, R2], gamma, f=lambda v: 0.0)
    sq = np.linspace(0.0, 1.0, 11)
    square_err = max(float(np.max(np.abs(returns.returns(mdp, pol(x, y)) - gamma / 2 * np.array([x, y]))))
                     for x in sq for y in sq)
    columns = (2, 4, 8, 16, 32, 64)
    gaps = {N: lexicographic_gap_lp(N) for N in columns}
    gaps_ok = all(abs(g - 1.0 / N) <= 1e-9 for N, g in gaps.items())

    def refuter(omorl):
        pair = refute_lexicographic(lambda x, y: omorl.value(mdp, pol(x, y)))
        if pair is None:
            return None
        (p, q) = pair
        lex = (p[0], p[1]) > (q[0], q[1])
        return pair if lex and omorl.value(mdp, pol(*p)) <= omorl.value(mdp, pol(*q)) else None

    ref = _refuter_cert("OMORL", refuter, _omorl_sampler(mdp, R1, R2, gamma), samples, 7 + 1000 * seed,
                        "continuity: (x+d, 0) >_lex (x, 1) for every d > 0, but a continuous score tends to its (x, 0) value")
    holds = bool(square_err <= 1e-12 and gaps_ok and ref.holds)
    cert = Certificate(
        against="OMORL", method="debreu", holds=holds,
        detail=(f"returns cover the square (gamma/2)[0,1]^2 (max error {square_err:.1e} on 11x11 policies); Debreu's finite step: "
                f"max uniform lexicographic gap on N columns = 1/N for N in {columns}; {ref.detail}"),
        data={"square_error": square_err, "gap_lp": {str(N): g for N, g in gaps.items()}, "refuted": ref.data["refuted"], "tried": ref.data["tried"],
              "finite_witness_possible": False})
    return Witness(name="gomorl", expresses="GOMORL", mdp=mdp, spec=spec, policies=pols, policy_names=tuple(combos), ordering=order,
                   certificates={"OMORL": cert}, refuters={"OMORL": refuter})


def finite_rank_representation(spec: Formalism, mdp: TabularMDP, policies: Sequence[np.ndarray]) -> Formalism:
    """An OMORL specification inducing ``spec``'s ordering on the finite list ``policies``: the rank of
    each policy's occupancy measure (indicator rewards J = m^π, f = the rank looked up by nearest m).

    This is why OMORL ⊏ GOMORL has no finite witness: every total preorder on finitely many points is
    represented by a real function (its rank). Derived here.
    """
    from rlref.formalisms.objectives import OuterMultiObjectiveRL

    order = spec.ordering(mdp, policies)
    classes = order.classes()  # best first
    rank = np.empty(len(policies))
    for r, cls in enumerate(classes):
        rank[cls] = len(classes) - r
    S, A = mdp.num_states, mdp.num_actions
    Rs = []
    for s in range(S):
        for a in range(A):
            for t in range(S):
                R = np.zeros((S, A, S))
                R[s, a, t] = 1.0
                Rs.append(R)
    g = getattr(spec, "gamma", 0.9)
    enc = OuterMultiObjectiveRL(Rs, g, f=lambda v: 0.0)
    keys = np.stack([enc.returns(mdp, p) for p in policies])

    def f(v):
        return float(rank[int(np.argmin(np.abs(keys - v).sum(axis=1)))])

    return OuterMultiObjectiveRL(Rs, g, f=f)


# ----------------------------------------------------------------------------- TO (trajectory orderings)
def _arm_env() -> TabularMDP:
    S, A = 4, 3
    P = np.zeros((S, A, S))
    for a in range(A):
        P[0, a, a + 1] = 1.0
    for s in range(1, S):
        P[s, :, s] = 1.0
    return _mdp(P, [1, 0, 0, 0], "arms")


def _arm_policy(first: Sequence[float]) -> np.ndarray:
    return _policy([list(first), [1, 0, 0], [1, 0, 0], [1, 0, 0]])


def witness_to_partial() -> Witness:
    """TO (trajectory orderings lifted by stochastic dominance) induces orderings that are not total:
    s0 → three absorbing arms ranked 0 < 1 < 2; the mixture ½(arm 0) + ½(arm 2) and arm 1 have crossing
    rank distributions (tails ½ vs 1 at level 1, ½ vs 0 at level 2), so neither dominates. Every other
    formalism (real-valued, or a total preorder on returns, occupancies, lotteries or policies) induces
    a total preorder, so none can express it. Derived here."""
    from rlref.formalisms.objectives import TrajectoryOrdering

    mdp = _arm_env()
    spec = TrajectoryOrdering(rank=lambda tr: float(tr[0][1]), horizon=2)
    firsts = {"arm0": [1, 0, 0], "arm1": [0, 1, 0], "arm2": [0, 0, 1], "mix02": [0.5, 0, 0.5]}
    pols = tuple(_arm_policy(v) for v in firsts.values())
    order = spec.ordering(mdp, pols)
    i, j = 3, 1
    incomparable = bool(not order.geq[i, j] and not order.geq[j, i])
    cert = Certificate(against="PO", method="not-total", holds=incomparable,
                       detail="mix02 and arm1 are incomparable under stochastic dominance; every other formalism induces total preorders")
    return Witness(name="to-partial", expresses="TO", mdp=mdp, spec=spec, policies=pols, policy_names=tuple(firsts), ordering=order,
                   certificates={"PO": cert})


def _all_weak_orders(n: int) -> list[tuple[int, ...]]:
    """Every total preorder on n items, as a rank vector normalised to 0, 1, …, k−1 (the ordered Bell number of them)."""
    import itertools

    out = set()
    for r in itertools.product(range(n), repeat=n):
        levels = sorted(set(r))
        out.add(tuple(levels.index(x) for x in r))
    return sorted(out)


def witness_to_linear(expresses: str = "MR") -> Witness:
    """MR (or LAR) expresses 'arm a is worth a': on the arms environment, J = π(1|s0) + 2π(2|s0), which
    ties arm 1 with the mixture ½(arm 0) + ½(arm 2). TO cannot: the four policies' lotteries live on the
    three arm trajectories, so a TO ordering of them is fixed by a total preorder on those three; all 13
    are enumerated and none induces the target (a tie between arm 1 and the mixture forces equal rank
    distributions, hence all three ranks equal, which also ties arm 0 with arm 2). Derived here."""
    from rlref.formalisms.objectives import TrajectoryOrdering

    mdp = _arm_env()
    if expresses == "MR":
        R = np.zeros((4, 3))
        R[0] = [0.0, 1.0, 2.0]
        spec = MarkovReward(R, 0.9)
    elif expresses == "LAR":
        R = np.zeros((4, 3))
        R[1:, :] = np.array([0.0, 1.0, 2.0])[:, None]
        spec = LimitAverageReward(R)
    else:
        raise ValueError(f"expresses must be 'MR' or 'LAR', got {expresses!r}")
    firsts = {"arm0": [1, 0, 0], "arm1": [0, 1, 0], "arm2": [0, 0, 1], "mix02": [0.5, 0, 0.5]}
    pols = tuple(_arm_policy(v) for v in firsts.values())
    order = spec.ordering(mdp, pols)
    tried, hits = 0, 0
    for ranks in _all_weak_orders(3):
        to = TrajectoryOrdering(rank=lambda tr, ranks=ranks: float(ranks[tr[0][1]]), horizon=2)
        tried += 1
        hits += to.ordering(mdp, pols).same_as(order)
    cert = Certificate(against="TO", method="exhaustive", holds=bool(hits == 0 and tried == 13),
                       detail=f"all {tried} total preorders on the 3 reachable trajectories tried; {hits} induce the target",
                       data={"tried": tried, "hits": hits})
    return Witness(name=f"to-{expresses.lower()}", expresses=expresses, mdp=mdp, spec=spec, policies=pols, policy_names=tuple(firsts),
                   ordering=order, certificates={"TO": cert})


def witness_ltl_to(formula: str = "X X in2 | (X in1 & !X X in1)") -> tuple[bool, int]:
    """LTL ⊑ TO on instances: rank(ξ) = 1[ξ ⊨ φ] makes stochastic dominance compare Pr(φ) (two levels),
    so the TO ordering equals the LTL one. Checked on random 3-state environments and policies for a
    formula fixed by the first 3 steps. Returns (all equal, number of instances)."""
    import functools

    from rlref.formalisms.ltl import lasso_satisfies, parse_ltl
    from rlref.formalisms.objectives import LinearTemporalLogic, TrajectoryOrdering

    rng = np.random.default_rng(11)
    phi = parse_ltl(formula)
    labels = {"in1": np.array([0, 1, 0], bool), "in2": np.array([0, 0, 1], bool)}
    n, ok = 0, True
    for _ in range(8):
        S, A = 3, 2
        P = rng.dirichlet(np.ones(S), size=(S, A))
        mdp = TabularMDP(P=P, R=np.zeros((S, A)), gamma=0.9, mu0=rng.dirichlet(np.ones(S)))
        ltl = LinearTemporalLogic(formula, labels)

        @functools.cache
        def rank(tr):
            states = [t[0] for t in tr] + [tr[-1][2]]
            word = [frozenset(k for k, v in labels.items() if v[s]) for s in states]
            return float(lasso_satisfies(phi, word[:-1], word[-1:]))

        to = TrajectoryOrdering(rank=rank, horizon=3)
        pols = [rng.dirichlet(np.ones(A), size=S) for _ in range(4)] + [np.eye(A)[rng.integers(A, size=S)] for _ in range(2)]
        ok &= to.ordering(mdp, pols).same_as(ltl.ordering(mdp, pols))
        n += 1
    return bool(ok), n


def all_witnesses(samples: int = 200, seed: int = 0) -> dict[str, Witness]:
    """Every witness by the name :data:`rlref.formalisms.preorder.NON_EDGES` refers to it: the five
    headline ones, ``tlo-po``, ``mr``, ``gomorl``, ``to-partial``, ``to-mr`` and ``to-lar``."""
    out = {w.name: w for w in headline_witnesses(samples, seed).values()}
    out.update({"tlo-po": witness_tlo_po(), "mr": witness_mr(), "gomorl": witness_gomorl(samples, seed), "to-partial": witness_to_partial(),
                "to-mr": witness_to_linear("MR"), "to-lar": witness_to_linear("LAR")})
    return out
