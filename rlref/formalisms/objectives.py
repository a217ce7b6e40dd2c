"""The objective-specification formalisms of Subramani, Williams, Heitmann, Holm, Griffin & Skalse,
"On the expressivity of objective-specification formalisms in reinforcement learning" (ICLR 2024,
arXiv 2310.11840), as objects that score or order the stationary policies of a TabularMDP.

The environment supplies the dynamics (P, μ0); its own reward and discount are ignored: every
specification carries its reward(s), discount and transform. Notation: G_R(ξ) = Σ_t γ^t R(s_t, a_t,
s_{t+1}) is the discounted return, J_R(π) = E_π[G_R], m^π(s, a, s') = Σ_t γ^t Pr_π(s_t = s, a_t = a,
s_{t+1} = s') the (unnormalized) occupancy measure, L_π the trajectory lottery.

=========  ==========================================  =====================================  ======================
abbrev     formalism                                   scores π by                            evaluation here
=========  ==========================================  =====================================  ======================
MR         Markov rewards                              J_R(π)                                 exact (policy evaluation)
LAR        limit-average reward                        lim_N E[(1/N) Σ_{t<N} R]               exact (BSCCs of P_π)
LTL        linear temporal logic                       Pr_π(ξ ⊨ φ)                            exact (product + BSCCs)
RM         reward machines                             E_π[Σ γ^t δ_R(u_t, ·)]                 exact (product MDP)
INMR       inner nonlinear Markov rewards              E_π[f(G_R)]                            enumeration, H steps
ONMR       outer nonlinear Markov rewards              f(J_R(π))                              exact
FTR        functions from trajectories to reals        E_π[f(ξ)]                              enumeration, H steps
RRL        regularised RL                              E_π[Σ γ^t (R − α F(π(s_t)))]           exact (occupancy)
IMORL      inner multi-objective RL                    E_π[f(G_R1, …, G_Rk)]                  enumeration, H steps
OMORL      outer multi-objective RL                    f(J_R1(π), …, J_Rk(π))                 exact
GOMORL     generalised outer MORL                      a total preorder on (J_R1, …, J_Rk)    exact
FOMR       functions from occupancy measures to reals  f(m^π)                                 exact
FTLR       functions from trajectory lotteries         f(L_π)                                 H-step lottery, exact
OMO        occupancy-measure orderings                 a total preorder on m^π                exact
TLO        trajectory-lottery orderings                a total preorder on L_π                H-step lottery, exact
PO         policy orderings                            a total preorder on policies           exact
TO         trajectory orderings (see note)             stochastic dominance of L_π under a    H-step lottery, exact
                                                       total preorder on trajectories
=========  ==========================================  =====================================  ======================

"Enumeration, H steps": E_π[f(ξ)] over the exact lottery of length-H prefixes; for INMR/IMORL the
returns are truncated at H, so |G − G_H| ≤ γ^H max|R| / (1 − γ) (``truncation_bound``) and the value
is exact for f that only reads the first H steps. Note on TO: the paper's full text could not be
retrieved (only its abstract, a third-party summary and its reference list); 16 of the 17 names
above are those the abstract and summary give, and TO (trajectory orderings, the task type of Abel
et al. 2021, which the paper cites) is our best reconstruction of the seventeenth, lifted to policies
by first-order stochastic dominance (a *partial* preorder) — derived here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rlref._checks import as_float_array, check_finite, check_gamma, check_real
from rlref.divergences import entropy
from rlref.formalisms.chains import chain_limit
from rlref.formalisms.ltl import ltl_probability, parse_ltl
from rlref.formalisms.ordering import PolicyOrdering, ordering_from_compare, ordering_from_values
from rlref.formalisms.reward_machine import RewardMachine, reward_machine_value
from rlref.mdp import TabularMDP
from rlref.policy import validate_policy
from rlref.solve import policy_evaluation, state_occupancy

__all__ = [
    "Formalism",
    "MarkovReward",
    "LimitAverageReward",
    "LinearTemporalLogic",
    "RewardMachineObjective",
    "InnerNonlinearMarkovReward",
    "OuterNonlinearMarkovReward",
    "FunctionOfTrajectories",
    "RegularisedRL",
    "InnerMultiObjectiveRL",
    "OuterMultiObjectiveRL",
    "GeneralisedOuterMultiObjectiveRL",
    "FunctionOfOccupancyMeasure",
    "FunctionOfTrajectoryLottery",
    "OccupancyMeasureOrdering",
    "TrajectoryLotteryOrdering",
    "PolicyOrderingObjective",
    "TrajectoryOrdering",
    "FORMALISMS",
    "sas_reward",
    "occupancy_sas",
    "limit_average_value",
    "trajectory_lottery",
    "neg_entropy",
]

Trajectory = tuple[tuple[int, int, int], ...]


# ----------------------------------------------------------------------------- shared exact pieces
def sas_reward(mdp: TabularMDP, R: Any, name: str = "R") -> np.ndarray:
    """R as a (S, A, S) array (an (S, A) reward is broadcast over s'); ValueError on shape/NaN."""
    S, A = mdp.num_states, mdp.num_actions
    R = as_float_array(name, R, ndim=(2, 3))
    check_finite(name, R)
    if R.shape == (S, A):
        return np.repeat(R[:, :, None], S, axis=2)
    if R.shape != (S, A, S):
        raise ValueError(f"{name} must have shape (S, A) = ({S}, {A}) or (S, A, S) = ({S}, {A}, {S}); got {R.shape}")
    return R


def _env(mdp: TabularMDP, R: np.ndarray, gamma: float) -> TabularMDP:
    if mdp.horizon is not None:
        raise ValueError("the formalisms are defined on infinite-horizon environments; mdp must have horizon=None")
    return TabularMDP(P=mdp.P, R=R, gamma=check_gamma(gamma), mu0=mdp.mu0, name=mdp.name, reward_axes="sas" if R.ndim == 3 else None)


def occupancy_sas(mdp: TabularMDP, pi: np.ndarray, gamma: float) -> np.ndarray:
    """m^π(s, a, s') = Σ_t γ^t Pr_π(s_t = s, a_t = a, s_{t+1} = s') = d_S(s) π(a|s) P(s'|s, a) / (1 − γ).

    Uses :func:`rlref.solve.state_occupancy` (normalized) on the environment with discount γ.
    References: Puterman (1994), Thm 6.9.1.
    """
    env = _env(mdp, np.zeros((mdp.num_states, mdp.num_actions)), gamma)
    d = state_occupancy(env, pi) / (1.0 - env.gamma)
    return d[:, None, None] * pi[:, :, None] * mdp.dense_P()


def limit_average_value(mdp: TabularMDP, pi: np.ndarray, R: Any) -> float:
    """J(π) = lim_N E_π[(1/N) Σ_{t<N} R(s_t, a_t, s_{t+1})] = Σ_s ρ(s) Σ_a π(a|s) Σ_s' P(s'|s,a) R(s,a,s'),
    ρ the Cesàro-limit state distribution of P_π from μ0 (exact, via :func:`chain_limit`).

    References: Puterman (1994), §8.2 (the gain of a stationary policy, g = P* r).
    """
    pi = validate_policy(mdp, pi)
    R3 = sas_reward(mdp, R)
    P = mdp.dense_P()
    Ppi = np.einsum("sa,sat->st", pi, P)
    lim = chain_limit(Ppi, mdp.mu0)
    r_pi = np.einsum("sa,sat,sat->s", pi, P, R3)
    return float(lim.limit @ r_pi)


def trajectory_lottery(mdp: TabularMDP, pi: np.ndarray, horizon: int) -> dict[Trajectory, float]:
    """The exact law of the first ``horizon`` transitions: {((s0, a0, s1), …): probability} (positive only).

    Cost: at most (S·A·S)^horizon prefixes (only positive-probability branches are expanded).
    """
    pi = validate_policy(mdp, pi)
    if int(horizon) < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    P = mdp.dense_P()
    layer: dict[Trajectory, float] = {}
    for s in np.flatnonzero(mdp.mu0 > 0):
        for a in np.flatnonzero(pi[s] > 0):
            for t in np.flatnonzero(P[s, a] > 0):
                layer[((int(s), int(a), int(t)),)] = float(mdp.mu0[s] * pi[s, a] * P[s, a, t])
    for _ in range(int(horizon) - 1):
        nxt: dict[Trajectory, float] = {}
        for traj, p in layer.items():
            s = traj[-1][2]
            for a in np.flatnonzero(pi[s] > 0):
                for t in np.flatnonzero(P[s, a] > 0):
                    nxt[(*traj, (int(s), int(a), int(t)))] = p * float(pi[s, a] * P[s, a, t])
        layer = nxt
    return layer


def _returns(traj: Trajectory, Rs: Sequence[np.ndarray], gamma: float) -> np.ndarray:
    disc = gamma ** np.arange(len(traj))
    idx = tuple(np.array(x) for x in zip(*traj, strict=True))
    return np.array([float(disc @ R[idx]) for R in Rs])


def neg_entropy(p: np.ndarray) -> float:
    """F(p) = −H(p) = Σ_a p(a) log p(a) (0 log 0 = 0): the entropy regulariser of RRL."""
    return -float(entropy(p))


def _sign(x: float, tol: float) -> int:
    return 0 if abs(x) <= tol else (1 if x > 0 else -1)


# ----------------------------------------------------------------------------- base
class Formalism:
    """An objective specification: scores (``value``) or compares (``compare``) stationary policies."""

    abbrev: ClassVar[str] = ""
    title: ClassVar[str] = ""
    real_valued: ClassVar[bool] = True

    def value(self, mdp: TabularMDP, pi: np.ndarray) -> float:  # pragma: no cover - overridden
        raise TypeError(f"{self.abbrev} specifications order policies without a real value; use compare/ordering")

    def compare(self, mdp: TabularMDP, pi1: np.ndarray, pi2: np.ndarray, tol: float = 1e-9) -> int:
        """1 if π1 ≻ π2, 0 if indifferent, −1 if π2 ≻ π1."""
        a, b = self.value(mdp, pi1), self.value(mdp, pi2)
        return _sign(a - b, tol * max(1.0, abs(a), abs(b)))

    def ordering(self, mdp: TabularMDP, policies: Sequence[np.ndarray], tol: float = 1e-9) -> PolicyOrdering:
        """The induced preorder on ``policies`` (ties within a relative tolerance ``tol``)."""
        if self.real_valued:
            return ordering_from_values([self.value(mdp, p) for p in policies], tol=tol)
        return ordering_from_compare(list(policies), lambda x, y: self.compare(mdp, x, y, tol), total=getattr(self, "total", True))


# ----------------------------------------------------------------------------- the formalisms
@dataclass(frozen=True, eq=False)
class MarkovReward(Formalism):
    """MR: J(π) = E_π[Σ_t γ^t R(s_t, a_t, s_{t+1})]."""

    R: Any
    gamma: float
    abbrev: ClassVar[str] = "MR"
    title: ClassVar[str] = "Markov rewards"

    def value(self, mdp, pi):
        return float(policy_evaluation(_env(mdp, sas_reward(mdp, self.R), self.gamma), pi).objective)


@dataclass(frozen=True, eq=False)
class LimitAverageReward(Formalism):
    """LAR: J(π) = lim_N E_π[(1/N) Σ_{t<N} R(s_t, a_t, s_{t+1})] (exact gain of P_π)."""

    R: Any
    abbrev: ClassVar[str] = "LAR"
    title: ClassVar[str] = "Limit average reward"

    def value(self, mdp, pi):
        return limit_average_value(mdp, pi, self.R)


@dataclass(frozen=True, eq=False)
class LinearTemporalLogic(Formalism):
    """LTL: J(π) = Pr_π(ξ ⊨ φ); ``labels`` maps propositions to (S,), (S, A) or (S, A, S) boolean arrays."""

    formula: str
    labels: Mapping[str, Any]
    abbrev: ClassVar[str] = "LTL"
    title: ClassVar[str] = "Linear temporal logic"

    def __post_init__(self) -> None:
        parse_ltl(self.formula)  # malformed formulas fail at construction, naming the column

    def value(self, mdp, pi):
        return ltl_probability(mdp, pi, self.formula, self.labels)


@dataclass(frozen=True, eq=False)
class RewardMachineObjective(Formalism):
    """RM: J(π) = E_π[Σ_t γ^t δ_R(u_t, s_t, a_t, s_{t+1})] (exact, product MDP)."""

    machine: RewardMachine
    gamma: float
    abbrev: ClassVar[str] = "RM"
    title: ClassVar[str] = "Reward machines"

    def value(self, mdp, pi):
        return reward_machine_value(mdp, pi, self.machine, self.gamma)


@dataclass(frozen=True, eq=False)
class InnerNonlinearMarkovReward(Formalism):
    """INMR: J(π) = E_π[f(G_R(ξ))], returns truncated at ``horizon`` (see ``truncation_bound``)."""

    R: Any
    gamma: float
    f: Callable[[float], float]
    horizon: int = 8
    abbrev: ClassVar[str] = "INMR"
    title: ClassVar[str] = "Inner nonlinear Markov rewards"

    def truncation_bound(self, mdp) -> float:
        return float(self.gamma**self.horizon * np.max(np.abs(sas_reward(mdp, self.R))) / (1 - self.gamma))

    def value(self, mdp, pi):
        R3 = sas_reward(mdp, self.R)
        return float(sum(p * self.f(_returns(tr, [R3], self.gamma)[0]) for tr, p in trajectory_lottery(mdp, pi, self.horizon).items()))


@dataclass(frozen=True, eq=False)
class OuterNonlinearMarkovReward(Formalism):
    """ONMR: J(π) = f(J_R(π)) (exact)."""

    R: Any
    gamma: float
    f: Callable[[float], float]
    abbrev: ClassVar[str] = "ONMR"
    title: ClassVar[str] = "Outer nonlinear Markov rewards"

    def value(self, mdp, pi):
        return float(self.f(MarkovReward(self.R, self.gamma).value(mdp, pi)))


@dataclass(frozen=True, eq=False)
class FunctionOfTrajectories(Formalism):
    """FTR: J(π) = E_π[f(ξ)] for f of the first ``horizon`` transitions (exact enumeration)."""

    f: Callable[[Trajectory], float]
    horizon: int = 6
    abbrev: ClassVar[str] = "FTR"
    title: ClassVar[str] = "Functions from trajectories to reals"

    def value(self, mdp, pi):
        return float(sum(p * self.f(tr) for tr, p in trajectory_lottery(mdp, pi, self.horizon).items()))


@dataclass(frozen=True, eq=False)
class RegularisedRL(Formalism):
    """RRL: J(π) = E_π[Σ_t γ^t (R(s_t, a_t, s_{t+1}) − α F(π(·|s_t)))] = ⟨R, m^π⟩ − α Σ_s d^π(s) F(π(·|s)),
    d^π(s) = Σ_t γ^t Pr(s_t = s). F defaults to the negative entropy (entropy-regularised RL)."""

    R: Any
    gamma: float
    alpha: float = 1.0
    F: Callable[[np.ndarray], float] = neg_entropy
    abbrev: ClassVar[str] = "RRL"
    title: ClassVar[str] = "Regularised RL"

    def value(self, mdp, pi):
        pi = validate_policy(mdp, pi)
        check_real("alpha", self.alpha)
        m = occupancy_sas(mdp, pi, self.gamma)
        d = m.sum(axis=(1, 2))
        reg = sum(d[s] * self.F(pi[s]) for s in range(mdp.num_states) if d[s] > 0)
        return float(np.sum(m * sas_reward(mdp, self.R)) - self.alpha * reg)


@dataclass(frozen=True, eq=False)
class InnerMultiObjectiveRL(Formalism):
    """IMORL: J(π) = E_π[f(G_R1(ξ), …, G_Rk(ξ))], returns truncated at ``horizon``."""

    Rs: Sequence[Any]
    gamma: float
    f: Callable[[np.ndarray], float]
    horizon: int = 8
    abbrev: ClassVar[str] = "IMORL"
    title: ClassVar[str] = "Inner multi-objective RL"

    def value(self, mdp, pi):
        Rs = [sas_reward(mdp, R, f"Rs[{i}]") for i, R in enumerate(self.Rs)]
        return float(sum(p * self.f(_returns(tr, Rs, self.gamma)) for tr, p in trajectory_lottery(mdp, pi, self.horizon).items()))


@dataclass(frozen=True, eq=False)
class OuterMultiObjectiveRL(Formalism):
    """OMORL: J(π) = f(J_R1(π), …, J_Rk(π)) (exact)."""

    Rs: Sequence[Any]
    gamma: float
    f: Callable[[np.ndarray], float]
    abbrev: ClassVar[str] = "OMORL"
    title: ClassVar[str] = "Outer multi-objective RL"

    def returns(self, mdp, pi) -> np.ndarray:
        m = occupancy_sas(mdp, validate_policy(mdp, pi), self.gamma)
        return np.array([float(np.sum(m * sas_reward(mdp, R, f"Rs[{i}]"))) for i, R in enumerate(self.Rs)])

    def value(self, mdp, pi):
        return float(self.f(self.returns(mdp, pi)))


def _lexicographic(u: np.ndarray, v: np.ndarray, tol: float) -> int:
    for a, b in zip(u, v, strict=True):
        s = _sign(a - b, tol * max(1.0, abs(a), abs(b)))
        if s:
            return s
    return 0


@dataclass(frozen=True, eq=False)
class GeneralisedOuterMultiObjectiveRL(Formalism):
    """GOMORL: π1 ≽ π2 iff (J_R1(π1), …, J_Rk(π1)) ⪰ (J_R1(π2), …) for a total preorder ⪰ on ℝ^k:
    ``order="lexicographic"`` or a callable(u, v) -> −1/0/1."""

    Rs: Sequence[Any]
    gamma: float
    order: Any = "lexicographic"
    abbrev: ClassVar[str] = "GOMORL"
    title: ClassVar[str] = "Generalised outer multi-objective RL"
    real_valued: ClassVar[bool] = False

    def compare(self, mdp, pi1, pi2, tol=1e-9):
        omorl = OuterMultiObjectiveRL(self.Rs, self.gamma, f=lambda v: 0.0)
        u, v = omorl.returns(mdp, pi1), omorl.returns(mdp, pi2)
        if self.order == "lexicographic":
            return _lexicographic(u, v, tol)
        if not callable(self.order):
            raise ValueError(f"order must be 'lexicographic' or a callable, got {self.order!r}")
        return int(self.order(u, v))


@dataclass(frozen=True, eq=False)
class FunctionOfOccupancyMeasure(Formalism):
    """FOMR: J(π) = f(m^π) with m^π(s, a, s') the discounted occupancy measure (exact)."""

    f: Callable[[np.ndarray], float]
    gamma: float
    abbrev: ClassVar[str] = "FOMR"
    title: ClassVar[str] = "Functions from occupancy measures to reals"

    def value(self, mdp, pi):
        return float(self.f(occupancy_sas(mdp, validate_policy(mdp, pi), self.gamma)))


@dataclass(frozen=True, eq=False)
class FunctionOfTrajectoryLottery(Formalism):
    """FTLR: J(π) = f(L_π) with L_π the exact law of the first ``horizon`` transitions (a dict)."""

    f: Callable[[dict], float]
    horizon: int = 6
    abbrev: ClassVar[str] = "FTLR"
    title: ClassVar[str] = "Functions from trajectory lotteries to reals"

    def value(self, mdp, pi):
        return float(self.f(trajectory_lottery(mdp, pi, self.horizon)))


@dataclass(frozen=True, eq=False)
class OccupancyMeasureOrdering(Formalism):
    """OMO: π1 ≽ π2 iff m^π1 ⪰ m^π2 for a total preorder on occupancy measures: compare(m1, m2) -> −1/0/1."""

    compare_fn: Callable[[np.ndarray, np.ndarray], int]
    gamma: float
    abbrev: ClassVar[str] = "OMO"
    title: ClassVar[str] = "Occupancy measure orderings"
    real_valued: ClassVar[bool] = False

    def compare(self, mdp, pi1, pi2, tol=1e-9):
        m1 = occupancy_sas(mdp, validate_policy(mdp, pi1), self.gamma)
        m2 = occupancy_sas(mdp, validate_policy(mdp, pi2), self.gamma)
        return int(self.compare_fn(m1, m2))


@dataclass(frozen=True, eq=False)
class TrajectoryLotteryOrdering(Formalism):
    """TLO: π1 ≽ π2 iff L_π1 ⪰ L_π2 for a total preorder on (H-step) trajectory lotteries."""

    compare_fn: Callable[[dict, dict], int]
    horizon: int = 6
    abbrev: ClassVar[str] = "TLO"
    title: ClassVar[str] = "Trajectory lottery orderings"
    real_valued: ClassVar[bool] = False

    def compare(self, mdp, pi1, pi2, tol=1e-9):
        return int(self.compare_fn(trajectory_lottery(mdp, pi1, self.horizon), trajectory_lottery(mdp, pi2, self.horizon)))


@dataclass(frozen=True, eq=False)
class PolicyOrderingObjective(Formalism):
    """PO: any total preorder on policies, given as compare(pi1, pi2) -> −1/0/1."""

    compare_fn: Callable[[np.ndarray, np.ndarray], int]
    abbrev: ClassVar[str] = "PO"
    title: ClassVar[str] = "Policy orderings"
    real_valued: ClassVar[bool] = False

    def compare(self, mdp, pi1, pi2, tol=1e-9):
        return int(self.compare_fn(validate_policy(mdp, pi1), validate_policy(mdp, pi2)))


@dataclass(frozen=True, eq=False)
class TrajectoryOrdering(Formalism):
    """TO (reconstructed, derived here): a total preorder on H-step trajectories given by a rank
    ``rank(ξ)`` (higher is better), lifted to policies by first-order stochastic dominance:
    π1 ≽ π2 iff Pr_π1(rank ≥ c) ≥ Pr_π2(rank ≥ c) for every c. This is a *partial* preorder."""

    rank: Callable[[Trajectory], float]
    horizon: int = 6
    abbrev: ClassVar[str] = "TO"
    title: ClassVar[str] = "Trajectory orderings (reconstructed)"
    real_valued: ClassVar[bool] = False
    total: ClassVar[bool] = False

    def _tail(self, mdp, pi) -> dict[float, float]:
        out: dict[float, float] = {}
        for tr, p in trajectory_lottery(mdp, pi, self.horizon).items():
            r = float(self.rank(tr))
            out[r] = out.get(r, 0.0) + p
        return out

    @staticmethod
    def _dominance(a: dict[float, float], b: dict[float, float], tol: float) -> int:
        levels = sorted(set(a) | set(b))
        ge = le = True
        for c in levels:
            ta = sum(p for r, p in a.items() if r >= c)
            tb = sum(p for r, p in b.items() if r >= c)
            ge &= ta >= tb - tol
            le &= tb >= ta - tol
        if ge and le:
            return 0
        if ge:
            return 1
        if le:
            return -1
        return -2  # incomparable: neither >= holds

    def compare(self, mdp, pi1, pi2, tol=1e-9):
        return self._dominance(self._tail(mdp, pi1), self._tail(mdp, pi2), tol)

    def ordering(self, mdp, policies, tol=1e-9):
        tails = [self._tail(mdp, p) for p in policies]
        n = len(policies)
        geq = np.eye(n, dtype=bool)
        for i, j in itertools.product(range(n), range(n)):
            if i != j:
                geq[i, j] = self._dominance(tails[i], tails[j], tol) in (0, 1)
        return PolicyOrdering(geq=geq, total=False)


FORMALISMS: dict[str, type[Formalism]] = {
    cls.abbrev: cls
    for cls in (
        MarkovReward,
        LimitAverageReward,
        LinearTemporalLogic,
        RewardMachineObjective,
        InnerNonlinearMarkovReward,
        OuterNonlinearMarkovReward,
        FunctionOfTrajectories,
        RegularisedRL,
        InnerMultiObjectiveRL,
        OuterMultiObjectiveRL,
        GeneralisedOuterMultiObjectiveRL,
        FunctionOfOccupancyMeasure,
        FunctionOfTrajectoryLottery,
        OccupancyMeasureOrdering,
        TrajectoryLotteryOrdering,
        PolicyOrderingObjective,
        TrajectoryOrdering,
    )
}
