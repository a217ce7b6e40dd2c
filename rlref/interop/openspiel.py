"""OpenSpiel matrix games (and plain payoff arrays) as rlref's zero-sum and preference games (optional extra ``interop``).

An OpenSpiel ``pyspiel.MatrixGame`` (``pyspiel.load_game("matrix_rps")``, ``pyspiel.create_matrix_game``,
``pyspiel.extensive_to_matrix_game(kuhn)``) holds two utility matrices, the row player's U_row[i, j]
and the column player's U_col[i, j]. rlref's games use one payoff A[i, j] that the row player
maximizes and the column player minimizes (``rlref.games.matrix_nash`` / ``matrix_qre``); its
preference games use a matrix P[y, y'] = P(y ≻ y') with P + Pᵀ = 1 (``rlref.preferences``). The maps:

    constant-sum (U_row + U_col = c):   A = U_row − c/2            (same best responses, hence the same
                                                                    Nash equilibria; the value shifts by c/2)
    symmetric (A = −Aᵀ, square):        P = 1/2 + s·A,  0 < s ≤ 1/(2·max|A|)   (P ∈ [0, 1], P + Pᵀ = 1)

and P(π ≻ π') = πᵀPπ' = 1/2 + s·πᵀAπ'. The scale s matters for regularized play: the KL-regularized
preference game J_τ(π, π') = πᵀPπ' − τKL(π‖π_ref) + τKL(π'‖π_ref) equals 1/2 + s·[πᵀAπ' − (τ/s)KL + (τ/s)KL],
so its equilibrium at temperature τ is the regularized equilibrium (quantal response with reference
π_ref) of A at temperature τ/s, and the fixed point π ∝ π_ref·exp(Pπ/τ) = π_ref·exp(Aπ/(τ/s))
(derived here). ``MatrixGame.payoff_temperature`` / ``preference_temperature`` convert.

References: Lanctot et al. (2019), "OpenSpiel: A Framework for Reinforcement Learning in Games",
arXiv:1908.09453 (``MatrixGame``: row/col utilities); Munos et al. (2023), "Nash Learning from Human
Feedback", Sec. 3 (the preference game and its KL-regularized version); McKelvey & Palfrey (1995)
(quantal response equilibrium).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rlref._checks import as_float_array, check_finite, check_positive

__all__ = ["MatrixGame", "from_matrix_game"]

#: Tolerance on U_row + U_col = c (constant sum) and A = −Aᵀ (symmetric game).
SUM_ATOL = 1e-9


@dataclass(frozen=True)
class MatrixGame:
    """A two-player matrix game in rlref's conventions (see the module docstring).

    Attributes:
      row_utility, col_utility: U_row[i, j], U_col[i, j], shape (m, n), as the source gave them.
      row_actions, col_actions: action names (OpenSpiel's, else "0", "1", ...).
      constant_sum: c if U_row + U_col = c everywhere (0 for zero-sum), else None (general-sum).
      payoff: A = U_row − c/2, the zero-sum payoff the row player maximizes (``rlref.games.matrix_nash``), or None.
      symmetric: A is square and antisymmetric (A = −Aᵀ): the game is a preference game.
      preference: P = 1/2 + scale·A (P + Pᵀ = 1, entries in [0, 1]) when symmetric, else None.
      scale: s in P = 1/2 + s·A (None unless symmetric); a temperature τ on P is τ/s on A.
      name: the source's name.
    """

    row_utility: np.ndarray
    col_utility: np.ndarray
    row_actions: tuple[str, ...]
    col_actions: tuple[str, ...]
    constant_sum: float | None
    payoff: np.ndarray | None
    symmetric: bool
    preference: np.ndarray | None
    scale: float | None
    name: str

    def _need_scale(self) -> float:
        if self.scale is None:
            raise ValueError(f"game {self.name!r} is not a symmetric zero-sum game, so it has no preference matrix and no scale")
        return self.scale

    def payoff_temperature(self, tau: float) -> float:
        """τ_A = τ / s: the temperature on A whose regularized equilibrium is the preference game's at τ."""
        return check_positive("tau", tau) / self._need_scale()

    def preference_temperature(self, tau_payoff: float) -> float:
        """τ = s · τ_A: the inverse of :meth:`payoff_temperature`."""
        return check_positive("tau_payoff", tau_payoff) * self._need_scale()


def _utilities(game: Any) -> tuple[np.ndarray, np.ndarray, tuple[str, ...] | None, tuple[str, ...] | None, str]:
    """(U_row, U_col, row names, col names, name) from a pyspiel MatrixGame, a nashpy Game, a (2, m, n) array, a pair or one payoff."""
    if hasattr(game, "row_utilities") and hasattr(game, "col_utilities"):  # pyspiel.MatrixGame (duck-typed: pyspiel stays optional)
        m, n = int(game.num_rows()), int(game.num_cols())
        rows = tuple(str(game.row_action_name(i)) for i in range(m))
        cols = tuple(str(game.col_action_name(j)) for j in range(n))
        name = str(game.get_type().short_name) if hasattr(game, "get_type") else "matrix_game"
        return np.asarray(game.row_utilities(), dtype=np.float64), np.asarray(game.col_utilities(), dtype=np.float64), rows, cols, name
    if hasattr(game, "new_initial_state") and hasattr(game, "get_type"):  # another pyspiel game
        raise ValueError(f"game {game.get_type().short_name!r} is not a pyspiel.MatrixGame: convert a two-player sequential game with "
                         "pyspiel.extensive_to_matrix_game(game) first (its size is the number of pure strategies)")
    if hasattr(game, "payoff_matrices"):  # nashpy.Game
        U_row, U_col = game.payoff_matrices
        return np.asarray(U_row, dtype=np.float64), np.asarray(U_col, dtype=np.float64), None, None, "nashpy_game"
    if isinstance(game, (tuple, list)) and len(game) == 2 and np.ndim(game[0]) == 2:
        return (as_float_array("game[0] (row utilities)", game[0], ndim=2), as_float_array("game[1] (column utilities)", game[1], ndim=2),
                None, None, "matrix_game")
    U = as_float_array("game", game, ndim=(2, 3))
    if U.ndim == 3:
        if U.shape[0] != 2:
            raise ValueError(f"a 3-d game must be the (2, m, n) stack [U_row, U_col] (OpenSpiel's game_payoffs_array), got shape {U.shape}")
        return U[0], U[1], None, None, "matrix_game"
    return U, -U, None, None, "matrix_game"


def from_matrix_game(game: Any, *, scale: float | None = None) -> MatrixGame:
    """A two-player matrix game as rlref's zero-sum payoff and (when symmetric) preference matrix.

    game: a ``pyspiel.MatrixGame``; a ``nashpy.Game``; a pair (U_row, U_col); a (2, m, n) array
    [U_row, U_col]; or one (m, n) array, read as the zero-sum payoff A (U_col = −A).
    scale: s in P = 1/2 + s·A for a symmetric game; default 1/(2·max|A|), the largest s keeping P in
    [0, 1] (1 when A = 0). Must satisfy 0 < s·max|A| ≤ 1/2.
    Returns a :class:`MatrixGame` (constant-sum c, A = U_row − c/2, P, s; see the module docstring).
    Raises ValueError for non-finite or mismatched utilities (naming which), a scale that takes P out of
    [0, 1] or a scale given for a game that is not symmetric zero-sum, or a pyspiel game that is not a
    matrix game.
    """
    U_row, U_col, rows, cols, name = _utilities(game)
    if U_row.ndim != 2 or U_row.shape != U_col.shape or 0 in U_row.shape:
        raise ValueError(f"row and column utilities must be non-empty (m, n) matrices of one shape, got {U_row.shape} and {U_col.shape}")
    check_finite("row utilities", U_row)
    check_finite("column utilities", U_col)
    m, n = U_row.shape
    total = U_row + U_col
    c = float(total.flat[0])
    constant = bool(np.all(np.abs(total - c) <= SUM_ATOL * max(1.0, float(np.abs(U_row).max()))))
    A = U_row - c / 2.0 if constant else None
    symmetric = A is not None and m == n and bool(np.all(np.abs(A + A.T) <= SUM_ATOL * max(1.0, float(np.abs(A).max()))))
    P = s = None
    if symmetric:
        amax = float(np.abs(A).max())
        s = (1.0 / (2.0 * amax) if amax > 0 else 1.0) if scale is None else check_positive("scale", scale)
        if s * amax > 0.5 + SUM_ATOL:
            raise ValueError(f"scale={scale!r} puts P = 1/2 + scale·A outside [0, 1]: scale·max|A| = {s * amax!r} > 1/2")
        A = 0.5 * (A - A.T)  # exactly antisymmetric, so P + Pᵀ = 1 to round-off
        P = np.clip(0.5 + s * A, 0.0, 1.0)
    elif scale is not None:
        raise ValueError(f"scale={scale!r} given, but game {name!r} is not a symmetric zero-sum game (no preference matrix)")
    return MatrixGame(
        row_utility=U_row, col_utility=U_col,
        row_actions=rows if rows is not None else tuple(str(i) for i in range(m)),
        col_actions=cols if cols is not None else tuple(str(j) for j in range(n)),
        constant_sum=c if constant else None, payoff=A, symmetric=symmetric, preference=P, scale=s, name=name,
    )
