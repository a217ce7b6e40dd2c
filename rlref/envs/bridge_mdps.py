"""Small MiniGrid-like deterministic MDPs in the BRIDGE format, and the sticky-action variant.

The BRIDGE dataset (Laidlaw, Russell, Dragan 2023) cannot be downloaded here, so this module builds
small deterministic MDPs in its format — integer ``transitions[s, a]`` (next state, -1 = the episode
ends) and ``rewards[s, a]``, state 0 initial — in the style of its MiniGrid part: an agent on a grid
with a heading, actions ``0 = turn left, 1 = turn right, 2 = forward`` (MiniGrid's first three),
walls block forward moves. Layout characters:

    ``#`` wall, ``.`` floor, ``S`` start (heading east), ``G`` goal (reward 1, episode ends),
    ``L`` lava (reward 0, episode ends), ``d`` a distractor exit (reward ``distractor_reward``, ends).

The sticky-action variant (Machado et al. 2018, used by Laidlaw, Zhu, Russell, Dragan 2024 with
repeat probability 0.25) executes the previously *executed* action instead of the chosen one with
probability p (never at the first step), so the state must carry that action.

References: Laidlaw, Russell, Dragan (2023), "Bridging RL Theory and Practice with the Effective
Horizon", NeurIPS (the BRIDGE format; ``load_mdp`` in cassidylaidlaw/effective-horizon);
Laidlaw, Zhu, Russell, Dragan (2024), "The Effective Horizon Explains Deep RL Performance in
Stochastic Environments", ICLR, §4 (sticky actions, p = 0.25; ``sticky_transitions_and_rewards``
and ``StickyActionsWrapper`` in the same repository); Chevalier-Boisvert et al. (2018), MiniGrid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlref._checks import check_count, check_probability
from rlref.envs.bridge import with_done_state
from rlref.mdp import TabularMDP

__all__ = ["MINIGRID_ACTIONS", "minigrid_arrays", "minigrid_suite", "sticky_actions"]

#: Action names of :func:`minigrid_arrays`, in index order.
MINIGRID_ACTIONS = ("left", "right", "forward")

_HEADINGS = ((0, 1), (1, 0), (0, -1), (-1, 0))  # east, south, west, north as (drow, dcol); right turn = +1


def minigrid_arrays(layout: str | Sequence[str], distractor_reward: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """BRIDGE arrays ``(transitions[s, a], rewards[s, a])`` of a MiniGrid-like layout.

    A state is (cell, heading) for every non-wall, non-exit cell and 4 headings; state 0 is the
    start cell heading east. ``left``/``right`` turn in place (reward 0); ``forward`` moves one cell
    unless a wall (or the grid edge) is ahead; moving onto ``G``/``L``/``d`` ends the episode
    (transition -1) with reward 1 / 0 / ``distractor_reward``.

    Raises ValueError if the layout is not rectangular, has an unknown character, has not exactly one
    ``S``, or ``distractor_reward`` is not finite.
    References: Chevalier-Boisvert et al. (2018), MiniGrid (actions, headings); Laidlaw, Russell,
    Dragan (2023), BRIDGE format.
    """
    rows = [r.strip() for r in (layout.strip().splitlines() if isinstance(layout, str) else list(layout)) if r.strip()]
    if not rows:
        raise ValueError("layout must have at least one non-empty row")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(f"layout row {i} has length {len(r)}, expected {width} (rows must be equal length)")
        for j, c in enumerate(r):
            if c not in "#.SGLd":
                raise ValueError(f"layout[{i}][{j}] = {c!r} is not one of '#', '.', 'S', 'G', 'L', 'd'")
    starts = [(i, j) for i, r in enumerate(rows) for j, c in enumerate(r) if c == "S"]
    if len(starts) != 1:
        raise ValueError(f"layout must have exactly one 'S', found {len(starts)}")
    dr = float(distractor_reward)
    if not np.isfinite(dr):
        raise ValueError(f"distractor_reward must be finite, got {distractor_reward!r}")
    cells = [starts[0]] + [(i, j) for i, r in enumerate(rows) for j, c in enumerate(r) if c == "." or (c == "S" and (i, j) != starts[0])]
    index = {cell: n for n, cell in enumerate(cells)}
    S = 4 * len(cells)
    T = np.zeros((S, 3), dtype=np.int64)
    R = np.zeros((S, 3))
    exit_reward = {"G": 1.0, "L": 0.0, "d": dr}
    for (i, j), n in index.items():
        for h in range(4):
            s = 4 * n + h
            T[s, 0], T[s, 1] = 4 * n + (h - 1) % 4, 4 * n + (h + 1) % 4
            ni, nj = i + _HEADINGS[h][0], j + _HEADINGS[h][1]
            ahead = rows[ni][nj] if 0 <= ni < len(rows) and 0 <= nj < width else "#"
            if ahead == "#":
                T[s, 2] = s
            elif ahead in exit_reward:
                T[s, 2], R[s, 2] = -1, exit_reward[ahead]
            else:
                T[s, 2] = 4 * index[(ni, nj)] + h
    return T, R


#: The suite of small layouts used by the ``effective-horizon`` reproduction: (name, layout, horizon).
_SUITE = (
    ("empty-3", ["#####", "#S..#", "#...#", "#..G#", "#####"], 8),
    ("corridor-5", ["#######", "#S...G#", "#######"], 7),
    ("empty-4", ["######", "#S...#", "#....#", "#....#", "#...G#", "######"], 10),
    ("lava-gap", ["#######", "#S.L..#", "#..L..#", "#.....#", "#..L.G#", "#######"], 12),
    ("distractor", ["######", "#Sd..#", "#....#", "#...G#", "######"], 10),
    ("far-distractor", ["#######", "#S...G#", "#.d...#", "#######"], 10),
    ("two-rooms", ["#######", "#S.#..#", "#.....#", "#..#.G#", "#######"], 12),
    ("long-corridor", ["#######", "#S....#", "#####.#", "#G....#", "#######"], 14),
)


def minigrid_suite() -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """The small MiniGrid-like BRIDGE-format suite: a list of ``(name, transitions, rewards, horizon)``.

    Derived here (the real BRIDGE MDPs cannot be downloaded): open rooms, a corridor, a lava gap, a
    room with a distractor exit (reward 0.3) next to the start, two rooms joined by a gap and a long
    corridor, with horizons from 7 to 14 — chosen to span a range of effective horizons.
    """
    return [(name, *minigrid_arrays(layout), horizon) for name, layout, horizon in _SUITE]


def sticky_actions(
    transitions: np.ndarray, rewards: np.ndarray, *, horizon: int, repeat_probability: float = 0.25, name: str = "sticky",
) -> TabularMDP:
    """The sticky-action stochastic MDP of a deterministic BRIDGE-format MDP.

    With D = S the added absorbing "done" state (as in :func:`rlref.envs.from_deterministic`), the
    states are ``(s, prev)`` for s ∈ {0, …, D}, prev ∈ {0, …, A−1} — index ``s·A + prev`` — plus a
    fresh start state with index (S+1)·A (no previous action, so the first step is never sticky).
    Choosing a in (s, prev) executes e = a with probability 1 − p and e = prev with probability p,
    and then moves to ``(T[s, e], e)`` with reward ``rewards[s, e]``:

        P((T[s, a], a) | (s, prev), a) += 1 − p,   P((T[s, prev], prev) | (s, prev), a) += p,
        r((s, prev), a, (s', e)) = rewards[s, e].

    The reward is given as ``R[s, a, s']`` (the executed action is read off the next state), so the
    return's variance is exact. ``mu0`` is the point mass on the fresh start state; the done states
    (D, prev) are marked terminal. Episodic with the given ``horizon`` (gamma 1).

    Raises ValueError if p is outside [0, 1], or the arrays are not valid BRIDGE arrays.
    References: Laidlaw, Zhu, Russell, Dragan (2024), §4 (repeat probability 0.25); Machado et al.
    (2018), "Revisiting the Arcade Learning Environment" (sticky actions); the repository's
    ``sticky_transitions_and_rewards``.
    """
    p = check_probability("repeat_probability", repeat_probability)
    check_count("horizon", horizon)
    nxt, rw = with_done_state(transitions, rewards)
    S, A = nxt.shape[0] - 1, nxt.shape[1]
    D = S
    n = (S + 1) * A + 1
    start = n - 1
    P = np.zeros((n, A, n))
    R = np.zeros((n, A, n))
    for s in range(S + 1):
        for prev in range(A):
            x = s * A + prev
            for a in range(A):
                for e, w in ((a, 1.0 - p), (prev, p)):
                    y = nxt[s, e] * A + e
                    P[x, a, y] += w
                    R[x, a, y] = rw[s, e]
    for a in range(A):
        y = nxt[0, a] * A + a
        P[start, a, y] = 1.0
        R[start, a, y] = rw[0, a]
    mu0 = np.zeros(n)
    mu0[start] = 1.0
    terminal = np.zeros(n, dtype=bool)
    terminal[D * A:(D + 1) * A] = True
    # a done state loops to a done state with a possibly different prev: make each loop to itself
    for prev in range(A):
        x = D * A + prev
        P[x] = 0.0
        P[x, :, x] = 1.0
        R[x] = 0.0
    return TabularMDP(P=P, R=R, horizon=horizon, mu0=mu0, terminal=terminal, name=name, reward_axes="sas")
