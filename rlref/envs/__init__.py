"""Environments as :class:`rlref.TabularMDP` builders.

* gridworlds from a text layout, Sutton & Barto's Example 3.5 gridworld and a matplotlib
  renderer (:mod:`rlref.envs.gridworld`);
* chains and RiverSwim (:mod:`rlref.envs.chains`);
* Garnet random MDPs, dense or sparse (:mod:`rlref.envs.garnet`);
* multi-armed and contextual bandits as horizon-1 MDPs (:mod:`rlref.envs.bandits`);
* deterministic MDPs in the BRIDGE format (:mod:`rlref.envs.bridge`);
* MDPs derived from another: a mixture of two kernels and the empirical MDP of a generative model
  (:mod:`rlref.envs.transforms`).

Every builder returns a validated ``TabularMDP`` (gridworlds a ``GridMDP`` subclass carrying the
layout); ``docs/envs.md`` states the exact dynamics and their sources.
"""

from rlref.envs.bandits import contextual_bandit, multi_armed_bandit
from rlref.envs.bridge import from_deterministic, load_bridge_npz
from rlref.envs.chains import CHAIN_ACTIONS, chain, riverswim
from rlref.envs.garnet import garnet
from rlref.envs.gridworld import ACTIONS, GridMDP, gridworld, parse_layout, plot_gridworld, sutton_barto_gridworld
from rlref.envs.tomato import TomatoGridworld, tomato_gridworld
from rlref.envs.transforms import empirical_mdp, mix_transitions

__all__ = [
    "tomato_gridworld",
    "TomatoGridworld",
    "ACTIONS",
    "CHAIN_ACTIONS",
    "GridMDP",
    "chain",
    "contextual_bandit",
    "empirical_mdp",
    "from_deterministic",
    "garnet",
    "gridworld",
    "load_bridge_npz",
    "mix_transitions",
    "multi_armed_bandit",
    "parse_layout",
    "plot_gridworld",
    "riverswim",
    "sutton_barto_gridworld",
]
