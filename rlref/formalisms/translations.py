"""Constructive translations between formalisms: each function maps an A-specification (in a given
environment) to a B-specification that induces the *same* policy ordering, proving A ⊑ B.

``TRANSLATIONS[(A, B)]`` is the function; its docstring is the argument. They are checked on random
environments and specifications in tests/test_formalisms.py. Identities used (derived here unless
cited): J_R(π) = ⟨R, m^π⟩; E_L[f] is a function of the lottery L; a stationary policy's lottery is
determined by its occupancy measure (π(a|s) = m(s, a)/Σ_b m(s, b) wherever m(s) > 0) and vice versa.
References: Subramani et al. (ICLR 2024), arXiv 2310.11840, §3 (the positive expressivity results).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rlref.formalisms.objectives import (
    Formalism,
    FunctionOfOccupancyMeasure,
    FunctionOfTrajectories,
    FunctionOfTrajectoryLottery,
    GeneralisedOuterMultiObjectiveRL,
    InnerMultiObjectiveRL,
    InnerNonlinearMarkovReward,
    MarkovReward,
    OccupancyMeasureOrdering,
    OuterMultiObjectiveRL,
    OuterNonlinearMarkovReward,
    PolicyOrderingObjective,
    RegularisedRL,
    RewardMachineObjective,
    TrajectoryLotteryOrdering,
    _returns,
    sas_reward,
)
from rlref.formalisms.reward_machine import RewardMachine
from rlref.mdp import TabularMDP

__all__ = ["TRANSLATIONS", "translate"]


def _identity(x):
    return x


def mr_to_rm(spec: MarkovReward, mdp: TabularMDP) -> RewardMachineObjective:
    """A Markov reward is a one-state reward machine emitting R."""
    return RewardMachineObjective(RewardMachine.from_markov_reward(sas_reward(mdp, spec.R)), spec.gamma)


def mr_to_inmr(spec: MarkovReward, mdp: TabularMDP, horizon: int = 6) -> InnerNonlinearMarkovReward:
    """f = identity: E[f(G)] = E[G]. Exact when every run earns nothing after ``horizon`` steps
    (episodic environments); otherwise within the truncation bound γ^H max|R|/(1 − γ)."""
    return InnerNonlinearMarkovReward(spec.R, spec.gamma, f=_identity, horizon=horizon)


def mr_to_onmr(spec: MarkovReward, mdp: TabularMDP) -> OuterNonlinearMarkovReward:
    """f = identity: f(J_R) = J_R."""
    return OuterNonlinearMarkovReward(spec.R, spec.gamma, f=_identity)


def mr_to_rrl(spec: MarkovReward, mdp: TabularMDP) -> RegularisedRL:
    """α = 0: no regulariser."""
    return RegularisedRL(spec.R, spec.gamma, alpha=0.0)


def onmr_to_omorl(spec: OuterNonlinearMarkovReward, mdp: TabularMDP) -> OuterMultiObjectiveRL:
    """k = 1, the same f."""
    return OuterMultiObjectiveRL([spec.R], spec.gamma, f=lambda v: spec.f(v[0]))


def inmr_to_imorl(spec: InnerNonlinearMarkovReward, mdp: TabularMDP) -> InnerMultiObjectiveRL:
    """k = 1, the same f."""
    return InnerMultiObjectiveRL([spec.R], spec.gamma, f=lambda v: spec.f(v[0]), horizon=spec.horizon)


def imorl_to_ftr(spec: InnerMultiObjectiveRL, mdp: TabularMDP) -> FunctionOfTrajectories:
    """f_FTR(ξ) = f(G_R1(ξ), …, G_Rk(ξ)) is a function of the trajectory."""
    Rs = [sas_reward(mdp, R) for R in spec.Rs]
    return FunctionOfTrajectories(lambda tr: spec.f(_returns(tr, Rs, spec.gamma)), horizon=spec.horizon)


def omorl_to_fomr(spec: OuterMultiObjectiveRL, mdp: TabularMDP) -> FunctionOfOccupancyMeasure:
    """J_Ri(π) = ⟨R_i, m^π⟩, so f(J_R1, …, J_Rk) = f(⟨R_1, m⟩, …) is a function of m."""
    Rs = [sas_reward(mdp, R) for R in spec.Rs]
    return FunctionOfOccupancyMeasure(lambda m: spec.f(np.array([float(np.sum(m * R)) for R in Rs])), spec.gamma)


def fomr_to_omorl(spec: FunctionOfOccupancyMeasure, mdp: TabularMDP) -> OuterMultiObjectiveRL:
    """k = S·A·S indicator rewards R_(s,a,s') = 1[(s, a, s')]: J_(s,a,s')(π) = m^π(s, a, s'), so f(m) = f(J)."""
    S, A = mdp.num_states, mdp.num_actions
    Rs = [np.eye(S * A * S)[k].reshape(S, A, S) for k in range(S * A * S)]
    return OuterMultiObjectiveRL(Rs, spec.gamma, f=lambda v: spec.f(np.asarray(v).reshape(S, A, S)))


def rrl_to_fomr(spec: RegularisedRL, mdp: TabularMDP) -> FunctionOfOccupancyMeasure:
    """J_RRL = ⟨R, m⟩ − α Σ_s d(s) F(π(s)) with d(s) = Σ m(s, ·, ·) and π(s) = m(s, ·)/d(s) where d(s) > 0."""
    R = sas_reward(mdp, spec.R)

    def f(m: np.ndarray) -> float:
        d = m.sum(axis=(1, 2))
        msa = m.sum(axis=2)
        reg = sum(d[s] * spec.F(msa[s] / d[s]) for s in range(len(d)) if d[s] > 0)
        return float(np.sum(m * R) - spec.alpha * reg)

    return FunctionOfOccupancyMeasure(f, spec.gamma)


def ftr_to_ftlr(spec: FunctionOfTrajectories, mdp: TabularMDP) -> FunctionOfTrajectoryLottery:
    """E_π[f(ξ)] = Σ_ξ L_π(ξ) f(ξ) is a function of the lottery."""
    return FunctionOfTrajectoryLottery(lambda L: sum(p * spec.f(tr) for tr, p in L.items()), horizon=spec.horizon)


def omorl_to_gomorl(spec: OuterMultiObjectiveRL, mdp: TabularMDP) -> GeneralisedOuterMultiObjectiveRL:
    """The total preorder u ⪰ v iff f(u) ≥ f(v) on ℝ^k."""
    def order(u, v):
        a, b = spec.f(u), spec.f(v)
        tol = 1e-9 * max(1.0, abs(a), abs(b))
        return 0 if abs(a - b) <= tol else (1 if a > b else -1)

    return GeneralisedOuterMultiObjectiveRL(spec.Rs, spec.gamma, order=order)


def fomr_to_omo(spec: FunctionOfOccupancyMeasure, mdp: TabularMDP) -> OccupancyMeasureOrdering:
    """m1 ⪰ m2 iff f(m1) ≥ f(m2)."""
    def cmp(m1, m2):
        a, b = spec.f(m1), spec.f(m2)
        tol = 1e-9 * max(1.0, abs(a), abs(b))
        return 0 if abs(a - b) <= tol else (1 if a > b else -1)

    return OccupancyMeasureOrdering(cmp, spec.gamma)


def ftlr_to_tlo(spec: FunctionOfTrajectoryLottery, mdp: TabularMDP) -> TrajectoryLotteryOrdering:
    """L1 ⪰ L2 iff f(L1) ≥ f(L2)."""
    def cmp(L1, L2):
        a, b = spec.f(L1), spec.f(L2)
        tol = 1e-9 * max(1.0, abs(a), abs(b))
        return 0 if abs(a - b) <= tol else (1 if a > b else -1)

    return TrajectoryLotteryOrdering(cmp, horizon=spec.horizon)


def any_to_po(spec: Formalism, mdp: TabularMDP) -> PolicyOrderingObjective:
    """Every formalism induces a preorder on policies; PO takes it as given (compare in the same environment)."""
    return PolicyOrderingObjective(lambda p1, p2: spec.compare(mdp, p1, p2))


TRANSLATIONS: dict[tuple[str, str], Callable] = {
    ("MR", "RM"): mr_to_rm,
    ("MR", "INMR"): mr_to_inmr,
    ("MR", "ONMR"): mr_to_onmr,
    ("MR", "RRL"): mr_to_rrl,
    ("ONMR", "OMORL"): onmr_to_omorl,
    ("INMR", "IMORL"): inmr_to_imorl,
    ("IMORL", "FTR"): imorl_to_ftr,
    ("OMORL", "FOMR"): omorl_to_fomr,
    ("FOMR", "OMORL"): fomr_to_omorl,
    ("RRL", "FOMR"): rrl_to_fomr,
    ("FTR", "FTLR"): ftr_to_ftlr,
    ("OMORL", "GOMORL"): omorl_to_gomorl,
    ("FOMR", "OMO"): fomr_to_omo,
    ("FTLR", "TLO"): ftlr_to_tlo,
    ("OMO", "PO"): any_to_po,
    ("TLO", "PO"): any_to_po,
}


def translate(spec: Formalism, target: str, mdp: TabularMDP) -> Formalism:
    """Translate ``spec`` into formalism ``target`` (ValueError if no constructive translation is implemented)."""
    key = (spec.abbrev, target)
    if key not in TRANSLATIONS:
        raise ValueError(f"no constructive translation {spec.abbrev} -> {target} is implemented; available: {sorted(TRANSLATIONS)}")
    return TRANSLATIONS[key](spec, mdp)
