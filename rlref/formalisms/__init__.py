"""Objective-specification formalisms and their expressivity preorder (Subramani, Williams,
Heitmann, Holm, Griffin, Skalse, "On the expressivity of objective-specification formalisms in
reinforcement learning", ICLR 2024, arXiv 2310.11840).

* :data:`FORMALISMS` — short name (MR, LAR, LTL, RM, INMR, ONMR, FTR, RRL, IMORL, OMORL, GOMORL,
  FOMR, FTLR, OMO, TLO, PO, TO) → class; each object scores or orders the stationary policies of a
  :class:`rlref.TabularMDP` (``value``, ``compare``, ``ordering``).
* :func:`expressivity_graph` — the networkx DiGraph of "can express" (edge A → B: B expresses every
  ordering A can), each edge with its evidence; :func:`hasse_diagram`, :func:`draw_hasse`.
* :mod:`~rlref.formalisms.witnesses` — the witness tasks with their certificates: the five headline
  ones, OMORL ⊏ GOMORL (lexicographic, Debreu), TLO ⊏ PO, and TO's; :func:`pair_table` decides every
  ordered pair of formalisms.
* The realizability oracle: :func:`markov_reward_realizability` (and the LAR / RRL / generic
  linear versions) returns a reward inducing a given ordering or a Farkas certificate that none does.
* :mod:`~rlref.formalisms.ltl` (parser, deterministic monitors, product-chain probabilities, lasso
  semantics) and :mod:`~rlref.formalisms.reward_machine` (product MDP).

See docs/expressivity.md.
"""

from rlref.formalisms.chains import ChainLimit, chain_limit
from rlref.formalisms.ltl import Formula, compile_monitor, lasso_satisfies, ltl_probability, parse_ltl
from rlref.formalisms.objectives import (
    FORMALISMS,
    Formalism,
    FunctionOfOccupancyMeasure,
    FunctionOfTrajectories,
    FunctionOfTrajectoryLottery,
    GeneralisedOuterMultiObjectiveRL,
    InnerMultiObjectiveRL,
    InnerNonlinearMarkovReward,
    LimitAverageReward,
    LinearTemporalLogic,
    MarkovReward,
    OccupancyMeasureOrdering,
    OuterMultiObjectiveRL,
    OuterNonlinearMarkovReward,
    PolicyOrderingObjective,
    RegularisedRL,
    RewardMachineObjective,
    TrajectoryLotteryOrdering,
    TrajectoryOrdering,
    limit_average_value,
    occupancy_sas,
    trajectory_lottery,
)
from rlref.formalisms.ordering import PolicyOrdering, check_preorder, ordering_from_values
from rlref.formalisms.preorder import (
    NON_EDGES,
    draw_hasse,
    equivalence_classes,
    expressivity_graph,
    hasse_diagram,
    non_expressivity,
    pair_table,
)
from rlref.formalisms.realizability import (
    RealizabilityResult,
    limit_average_realizability,
    linear_realizability,
    markov_reward_realizability,
    regularised_realizability,
)
from rlref.formalisms.reward_machine import RewardMachine, product_mdp, reward_machine_from_rules, reward_machine_value
from rlref.formalisms.translations import TRANSLATIONS, translate

__all__ = [
    "FORMALISMS",
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
    "expressivity_graph",
    "equivalence_classes",
    "hasse_diagram",
    "draw_hasse",
    "non_expressivity",
    "pair_table",
    "NON_EDGES",
    "TRANSLATIONS",
    "translate",
    "PolicyOrdering",
    "check_preorder",
    "ordering_from_values",
    "RealizabilityResult",
    "linear_realizability",
    "markov_reward_realizability",
    "limit_average_realizability",
    "regularised_realizability",
    "RewardMachine",
    "reward_machine_from_rules",
    "product_mdp",
    "reward_machine_value",
    "Formula",
    "parse_ltl",
    "compile_monitor",
    "lasso_satisfies",
    "ltl_probability",
    "ChainLimit",
    "chain_limit",
    "limit_average_value",
    "occupancy_sas",
    "trajectory_lottery",
]
