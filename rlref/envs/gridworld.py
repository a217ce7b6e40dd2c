"""Gridworlds: a text-layout builder, Sutton & Barto's Example 3.5, and a matplotlib renderer.

Layout characters (one string per row, all rows the same length):

* ``'#'`` wall — not a state; moving into it (or off the grid) leaves the agent in place;
* ``'.'`` free cell;
* ``'S'`` start cell — ``mu0`` is uniform over the ``'S'`` cells (over all non-goal cells when
  the layout has no ``'S'``);
* ``'G'`` goal — an absorbing terminal state (``mdp.terminal``); entering it pays its reward.

States are the non-wall cells in row-major order; ``GridMDP.cells[s] = (row, col)`` and
``GridMDP.cell_to_state[row, col]`` (-1 on walls) convert between the two.

Actions, in this order: ``0 = up (row - 1)``, ``1 = down (row + 1)``, ``2 = right (col + 1)``,
``3 = left (col - 1)`` (``ACTIONS``).

References: Sutton & Barto (2018), "Reinforcement Learning: An Introduction", 2nd ed.,
Example 3.5 / Figure 3.2 and Example 3.8 / Figure 3.5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from rlref._checks import check_gamma, check_probability, check_real, resolve_gamma
from rlref.mdp import TabularMDP

__all__ = [
    "ACTIONS",
    "GridMDP",
    "gridworld",
    "sutton_barto_gridworld",
    "plot_gridworld",
    "parse_layout",
]

#: Action names in index order; the moves are (d_row, d_col) = MOVES[a].
ACTIONS: tuple[str, ...] = ("up", "down", "right", "left")
MOVES: np.ndarray = np.array([[-1, 0], [1, 0], [0, 1], [0, -1]], dtype=np.int64)
MOVES.setflags(write=False)

LAYOUT_CHARS = frozenset("#.SG")

#: Above this many states builders return a sparse (S·A, S) transition matrix by default.
SPARSE_THRESHOLD = 2000


def _readonly_int(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.int64, copy=True)
    x.setflags(write=False)
    return x


@dataclass(frozen=True, eq=False, repr=False)
class GridMDP(TabularMDP):
    """A :class:`~rlref.TabularMDP` whose states are cells of a rectangular grid.

    Extra fields:
      layout: the rows of the grid, one string per row (characters as in the module docstring).
      cells: ``cells[s] = (row, col)``, shape (S, 2), states in row-major order.
      cell_to_state: ``cell_to_state[row, col] = s``, -1 on walls; shape (rows, cols).
      action_names: names of the actions in index order.
    """

    layout: tuple[str, ...] = ()
    cells: Any = None
    cell_to_state: Any = None
    action_names: tuple[str, ...] = ACTIONS

    def __post_init__(self) -> None:
        super().__post_init__()
        cells = _readonly_int(self.cells)
        c2s = _readonly_int(self.cell_to_state)
        S = self.num_states
        if cells.shape != (S, 2):
            raise ValueError(f"cells must have shape (S, 2) = ({S}, 2), got {cells.shape}")
        if c2s.ndim != 2 or not np.array_equal(c2s[cells[:, 0], cells[:, 1]], np.arange(S)):
            raise ValueError("cell_to_state must invert cells: cell_to_state[cells[s]] == s for every state s")
        if len(self.action_names) != self.num_actions:
            raise ValueError(f"action_names must name {self.num_actions} actions, got {self.action_names!r}")
        object.__setattr__(self, "cells", cells)
        object.__setattr__(self, "cell_to_state", c2s)
        object.__setattr__(self, "layout", tuple(self.layout))

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the grid."""
        return (int(self.cell_to_state.shape[0]), int(self.cell_to_state.shape[1]))

    def state(self, row: int, col: int) -> int:
        """The state index of cell (row, col); ValueError on walls and outside the grid."""
        rows, cols = self.shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise ValueError(f"cell (row={row}, col={col}) lies outside the {rows}x{cols} grid")
        s = int(self.cell_to_state[row, col])
        if s < 0:
            raise ValueError(f"cell (row={row}, col={col}) is a wall, not a state")
        return s

    def cell(self, s: int) -> tuple[int, int]:
        """The (row, col) of state ``s``."""
        if not 0 <= s < self.num_states:
            raise ValueError(f"state s must lie in [0, {self.num_states}), got {s!r}")
        r, c = self.cells[s]
        return (int(r), int(c))


# ---------------------------------------------------------------------------------------- layout
def parse_layout(layout: str | Sequence[str]) -> tuple[str, ...]:
    """Validate a layout and return it as a tuple of equal-length rows.

    A single string is split into lines (blank lines and surrounding whitespace removed).
    Raises ValueError on an empty or ragged layout, or on a character outside ``'#.SG'``.
    """
    if isinstance(layout, str):
        rows = tuple(line.strip() for line in layout.splitlines() if line.strip())
    else:
        try:
            rows = tuple(layout)
        except TypeError as exc:
            raise ValueError(f"layout must be a list of strings, got {type(layout).__name__}") from exc
    if not rows:
        raise ValueError("layout must have at least one row, got an empty layout")
    for i, row in enumerate(rows):
        if not isinstance(row, str):
            raise ValueError(f"layout rows must be strings; layout[{i}] = {row!r}")
    width = len(rows[0])
    if width == 0:
        raise ValueError("layout rows must be non-empty; layout[0] = ''")
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(
                f"layout must be rectangular (ragged rows): layout[0] has {width} characters, "
                f"layout[{i}] = {row!r} has {len(row)}"
            )
        for j, ch in enumerate(row):
            if ch not in LAYOUT_CHARS:
                raise ValueError(
                    f"layout has unknown character {ch!r} at (row={i}, col={j}); allowed: '#' wall, '.' free, 'S' start, 'G' goal"
                )
    if all(ch == "#" for row in rows for ch in row):
        raise ValueError("layout must contain at least one non-wall cell")
    return rows


def _geometry(rows: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid of chars, cells[s] = (r, c), cell_to_state[r, c])."""
    grid = np.array([list(row) for row in rows])
    rr, cc = np.nonzero(grid != "#")  # row-major order
    cell_to_state = np.full(grid.shape, -1, dtype=np.int64)
    cell_to_state[rr, cc] = np.arange(rr.size)
    return grid, np.stack([rr, cc], axis=1), cell_to_state


def _moves(cells: np.ndarray, cell_to_state: np.ndarray, absorbing: np.ndarray) -> np.ndarray:
    """``nxt[s, d]``: the state reached from s by move d (staying put on walls, edges and absorbing states)."""
    rows, cols = cell_to_state.shape
    S = cells.shape[0]
    nxt = np.empty((S, len(MOVES)), dtype=np.int64)
    for d, (dr, dc) in enumerate(MOVES):
        nr, nc = cells[:, 0] + dr, cells[:, 1] + dc
        inside = (nr >= 0) & (nr < rows) & (nc >= 0) & (nc < cols)
        target = np.full(S, -1, dtype=np.int64)
        target[inside] = cell_to_state[nr[inside], nc[inside]]
        nxt[:, d] = np.where((target >= 0) & ~absorbing, target, np.arange(S))
    return nxt


def _assemble(nxt: np.ndarray, weights: np.ndarray, sparse: bool) -> np.ndarray | sp.csr_matrix:
    """P from ``nxt[s, d]`` and ``weights[a, d]``: P(s'|s,a) = Σ_d weights[a, d] 1[nxt[s, d] = s']."""
    S, D = nxt.shape
    A = weights.shape[0]
    rows = np.repeat(np.arange(S * A), D)
    cols = np.repeat(nxt[:, None, :], A, axis=1).ravel()
    data = np.broadcast_to(weights, (S, A, D)).ravel()
    keep = data > 0
    P = sp.csr_matrix((data[keep], (rows[keep], cols[keep])), shape=(S * A, S))
    P.sum_duplicates()
    return P if sparse else P.toarray().reshape(S, A, S)


# ---------------------------------------------------------------------------------------- builders
def gridworld(
    layout: str | Sequence[str],
    *,
    slip: float = 0.0,
    gamma: float | None = None,
    horizon: int | None = None,
    step_reward: float = 0.0,
    goal_reward: float = 1.0,
    goal_rewards: Mapping[tuple[int, int], float] | None = None,
    sparse: bool | None = None,
    name: str = "gridworld",
) -> GridMDP:
    """A gridworld from a text layout.

    Dynamics: in a non-goal state, action a ∈ (up, down, right, left) moves in direction a with
    probability ``1 - slip`` and in each of the other three directions with probability
    ``slip / 3``; a move into a wall or off the grid leaves the agent where it is. Goal cells are
    absorbing (P(g|g, a) = 1) and marked in ``mdp.terminal``.

    Rewards (expected, r[s, a]): every step from a non-goal state earns ``step_reward``; a
    transition into goal g additionally earns R_g (``goal_rewards[(row, col)]`` if given, else
    ``goal_reward``); goals earn 0 afterwards:

        r(s, a) = step_reward + Σ_g P(g | s, a) R_g   (s not a goal),   r(g, a) = 0.

    A goal with a negative R_g is a trap ("lava").

    Args:
      layout: list of equal-length strings over ``'#.SG'`` (or one multi-line string).
      slip: probability in [0, 1] that the move goes in a uniformly random *other* direction.
      gamma, horizon: discounted (``gamma`` in [0, 1), default 0.9) or episodic (``horizon=H``;
        ``gamma`` then defaults to 1).
      sparse: store P as a CSR (S·A, S) matrix; ``None`` = sparse iff S >= 2000.

    Returns: a :class:`GridMDP` (S = number of non-wall cells, A = 4).
    Raises ValueError on a ragged layout, an unknown character, slip outside [0, 1], or a
    ``goal_rewards`` key that is not a goal cell.

    References: Sutton & Barto (2018), §3.5 (gridworld dynamics); the slip model is the usual
    "slippery" gridworld (derived here: slip/3 to each other direction).
    """
    rows = parse_layout(layout)
    slip = check_probability("slip", slip)
    step_reward = check_real("step_reward", step_reward)
    goal_reward = check_real("goal_reward", goal_reward)
    grid, cells, cell_to_state = _geometry(rows)
    S = cells.shape[0]
    chars = grid[cells[:, 0], cells[:, 1]]
    is_goal = chars == "G"

    goal_r = np.where(is_goal, goal_reward, 0.0)
    for key, value in (goal_rewards or {}).items():
        try:
            r_, c_ = (int(k) for k in key)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"goal_rewards keys must be (row, col) pairs, got {key!r}") from exc
        inside = 0 <= r_ < grid.shape[0] and 0 <= c_ < grid.shape[1]
        if not inside or grid[r_, c_] != "G":
            raise ValueError(f"goal_rewards key {key!r} is not a goal cell 'G' of the layout")
        goal_r[cell_to_state[r_, c_]] = check_real(f"goal_rewards[{key!r}]", value)

    nxt = _moves(cells, cell_to_state, is_goal)
    weights = np.where(np.eye(4, dtype=bool), 1.0 - slip, slip / 3.0)  # weights[a, d]
    use_sparse = S >= SPARSE_THRESHOLD if sparse is None else bool(sparse)
    P = _assemble(nxt, weights, use_sparse)
    # r(s,a) = step + Σ_d w[a,d] R_goal(nxt[s,d]) for non-goal s
    r = step_reward + goal_r[nxt] @ weights.T
    r[is_goal] = 0.0

    starts = chars == "S"
    if not starts.any():
        starts = ~is_goal if (~is_goal).any() else np.ones(S, dtype=bool)
    mu0 = starts / starts.sum()
    return GridMDP(
        P=P,
        R=r,
        gamma=resolve_gamma(gamma, horizon),
        horizon=horizon,
        mu0=mu0,
        terminal=is_goal if is_goal.any() else None,
        name=name,
        layout=rows,
        cells=cells,
        cell_to_state=cell_to_state,
    )


def sutton_barto_gridworld(gamma: float = 0.9) -> GridMDP:
    """Sutton & Barto's 5x5 gridworld (Example 3.5, Figure 3.2).

    States are cells, ``s = 5·row + col``; actions (north, south, east, west) = (up, down, right,
    left), deterministic. An action that would take the agent off the grid leaves it in place
    with reward -1. From A = (0, 1) every action pays +10 and moves to A' = (4, 1); from
    B = (0, 3) every action pays +5 and moves to B' = (2, 3). All other rewards are 0. It is a
    continuing task (no terminal states); the book uses gamma = 0.9 and a uniform mu0.

    References: Sutton & Barto (2018), "Reinforcement Learning: An Introduction", 2nd ed.,
    Example 3.5 (Figure 3.2) and Example 3.8 (Figure 3.5).
    """
    gamma = check_gamma(gamma)
    n = 5
    rows = tuple("." * n for _ in range(n))
    _, cells, cell_to_state = _geometry(rows)
    S, A = n * n, 4
    nr = cells[:, None, 0] + MOVES[None, :, 0]
    nc = cells[:, None, 1] + MOVES[None, :, 1]
    off = (nr < 0) | (nr >= n) | (nc < 0) | (nc >= n)
    nxt = np.where(off, np.arange(S)[:, None], np.clip(nr, 0, n - 1) * n + np.clip(nc, 0, n - 1))
    r = np.where(off, -1.0, 0.0)
    for (ar, ac), (br, bc), bonus in (((0, 1), (4, 1), 10.0), ((0, 3), (2, 3), 5.0)):
        s = ar * n + ac
        nxt[s, :] = br * n + bc
        r[s, :] = bonus
    P = np.zeros((S, A, S))
    np.put_along_axis(P, nxt[:, :, None], 1.0, axis=2)
    return GridMDP(
        P=P,
        R=r,
        gamma=gamma,
        name="sutton_barto_gridworld",
        layout=rows,
        cells=cells,
        cell_to_state=cell_to_state,
        action_names=("north", "south", "east", "west"),
    )


# ---------------------------------------------------------------------------------------- plotting
_ARROW_DELTAS = {0: (0.0, -1.0), 1: (0.0, 1.0), 2: (1.0, 0.0), 3: (-1.0, 0.0)}  # (dx, dy) in image coords


def plot_gridworld(
    mdp: GridMDP,
    values: np.ndarray | None = None,
    policy: np.ndarray | None = None,
    ax: Any = None,
    *,
    annotate: bool = True,
    tie_tol: float = 1e-9,
    cmap: str = "viridis",
) -> Any:
    """Draw a gridworld: walls in black, a heat map of ``values[s]``, arrows of ``policy``.

    ``policy`` is ``pi[s, a]`` (an arrow for every action within ``tie_tol`` of the state's
    largest probability, so tied-max actions all get arrows) or integer ``actions[s]``. Goal
    and start cells are labelled 'G' and 'S'; values are printed in the cells when
    ``annotate``. Only the four grid moves (A = 4) can be drawn as arrows.

    Returns the matplotlib ``Axes``. Raises ValueError on shape mismatches or a non-grid MDP.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    if not isinstance(mdp, GridMDP):
        raise ValueError(f"mdp must be a GridMDP (from rlref.envs.gridworld), got {type(mdp).__name__}")
    S = mdp.num_states
    rows, cols = mdp.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * cols + 1.5, 0.6 * rows + 0.5))
    walls = (mdp.cell_to_state < 0).astype(float)
    if values is not None:
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (S,):
            raise ValueError(f"values must have shape (S,) = ({S},), got {v.shape}")
        img = np.full((rows, cols), np.nan)
        img[mdp.cells[:, 0], mdp.cells[:, 1]] = v
        im = ax.imshow(img, cmap=cmap, interpolation="nearest")
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    else:
        ax.imshow(np.zeros((rows, cols)), cmap=ListedColormap(["white"]), interpolation="nearest")
        v = None
    ax.imshow(np.ma.masked_where(walls == 0, walls), cmap=ListedColormap(["black"]), interpolation="nearest")

    labels = {"G": "G", "S": "S"}
    for s in range(S):
        r, c = mdp.cells[s]
        ch = mdp.layout[r][c] if mdp.layout else "."
        text = labels.get(ch, "")
        if v is not None and annotate:
            text = f"{text} {v[s]:.2f}".strip()
        if text:
            ax.text(c, r + 0.3, text, ha="center", va="center", fontsize=7, color="white" if v is not None else "black")

    if policy is not None:
        pol = np.asarray(policy)
        if np.issubdtype(pol.dtype, np.integer):
            if pol.shape != (S,) or pol.min() < 0 or pol.max() >= mdp.num_actions:
                raise ValueError(f"integer policy must have shape (S,) = ({S},) with actions in [0, {mdp.num_actions})")
            best = np.eye(mdp.num_actions, dtype=bool)[pol]
        else:
            pol = pol.astype(np.float64)
            if pol.shape != (S, mdp.num_actions):
                raise ValueError(f"policy must have shape (S, A) = ({S}, {mdp.num_actions}), got {pol.shape}")
            best = pol >= pol.max(axis=1, keepdims=True) - tie_tol
        if mdp.num_actions != 4:
            raise ValueError(f"policy arrows need the 4 grid actions, this MDP has A = {mdp.num_actions}")
        term = mdp.terminal if mdp.terminal is not None else np.zeros(S, dtype=bool)
        for s in range(S):
            if term[s]:
                continue
            r, c = mdp.cells[s]
            for a in np.flatnonzero(best[s]):
                dx, dy = _ARROW_DELTAS[int(a)]
                ax.arrow(c, r, 0.28 * dx, 0.28 * dy, head_width=0.12, head_length=0.1, length_includes_head=True, color="red")
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_title(mdp.name)
    return ax
