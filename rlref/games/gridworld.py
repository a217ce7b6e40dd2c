"""A tabular adversarial gridworld (a zero-sum Markov game) for QARL's mechanism.

Built on ``rlref.envs.gridworld`` (deterministic moves, goal cells absorbing, negative goals are
lava). The protagonist picks a direction a; the adversary simultaneously picks a direction b to
block. If b ≠ a the protagonist moves in direction a; if b = a the move is blocked and the
protagonist is blown in a uniformly random one of the four directions:

    P(·|s, a, b) = P₀(·|s, a) if b ≠ a,     (1/4) Σ_d P₀(·|s, d) if b = a,

with the expected reward built the same way from r₀. The adversary must guess the protagonist's
move (a matching-pennies structure), so equilibria are mixed where two routes are equally good.
Derived here (an instance of RARL's destabilizing adversary, Pinto et al. 2017, in tabular form).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rlref.envs import gridworld
from rlref.games.markov import MarkovGame, markov_game

__all__ = ["adversarial_gridworld"]


def adversarial_gridworld(layout: str | Sequence[str], gamma: float = 0.9, goal_rewards: Mapping[tuple[int, int], float] | None = None,
                          step_reward: float = 0.0) -> MarkovGame:
    """The blocking-adversary gridworld of the module docstring (A = B = 4 directions).

    ``goal_rewards`` maps goal cells (row, col) to their reward (negative = lava), as in
    ``rlref.envs.gridworld``. Raises ValueError on a bad layout / reward (from the grid builder).
    """
    base = gridworld(layout, slip=0.0, gamma=gamma, goal_rewards=goal_rewards, step_reward=step_reward)
    P0 = base.dense_P()  # [s, d, s']
    r0 = base.r  # [s, d]
    S = base.num_states
    blocked_P = P0.mean(axis=1)  # [s, s']
    blocked_r = r0.mean(axis=1)
    eye = np.eye(4, dtype=bool)
    P = np.where(eye[None, :, :, None], blocked_P[:, None, None, :], P0[:, :, None, :])
    R = np.where(eye[None], blocked_r[:, None, None], r0[:, :, None])
    return markov_game(P.reshape(S, 4, 4, S), R, gamma=base.gamma, mu0=base.mu0, name="adversarial-gridworld")
