"""Two-player zero-sum Markov games with entropy regularization: soft minimax value iteration.

A Markov game (Shapley 1953) has states s, row (protagonist) actions a, column (adversary) actions
b, kernel P(s'|s, a, b), reward r(s, a, b) to the protagonist (paid by the adversary) and discount
γ. It is stored as a ``rlref.TabularMDP`` over *joint* actions, index ``a·B + b``, so the core's
expected-next, evaluation and iteration driver apply unchanged.

Entropy-regularized objective (QARL, Sec. 4; sign convention derived here): the protagonist π
maximizes and the adversary π̄ minimizes

    J(π, π̄) = E[ Σ_t γ^t ( r(s_t, a_t, b_t) + τ₁ H(π(·|s_t)) − τ₂ H(π̄(·|s_t)) ) ].

Its value is the fixed point of the soft minimax Bellman operator

    (T V)(s) = max_x min_y  xᵀ Q_V(s) y + τ₁H(x) − τ₂H(y),   Q_V(s, a, b) = r(s, a, b) + γ Σ_s' P(s'|s, a, b) V(s'),

whose per-state solution is the logit QRE of the matrix game Q_V(s) (:func:`rlref.games.matrix_qre`).
T is monotone and T(V + c) = T V + γc (the regularized game value is monotone in its payoff and
shifts with it), hence a γ-contraction, and the driver's certificates (rlref.solve.iterate) hold
verbatim (derived here, as Geist et al. 2019, Prop. 2 for one player). τ₁ = τ₂ = 0 is Shapley's
minimax value iteration (one LP per state, :func:`minimax_value_iteration`).

References: Shapley (1953), "Stochastic games", PNAS 39; Reddi et al. (2024), QARL, ICLR,
arXiv 2311.01642, Sec. 4 (entropy-regularized zero-sum Markov game, QRE); McKelvey & Palfrey (1995);
Geist, Scherrer & Pietquin (2019), Prop. 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlref import divergences
from rlref._checks import as_float_array, check_beta, check_count, check_distribution, check_finite
from rlref.games.qre import matrix_nash, matrix_qre_batch
from rlref.mdp import TabularMDP
from rlref.solve import iterate, policy_evaluation, value_iteration

__all__ = [
    "MarkovGame",
    "markov_game",
    "SoftMinimaxBackup",
    "MinimaxBackup",
    "MarkovQRE",
    "soft_minimax_vi",
    "minimax_value_iteration",
    "joint_policy",
    "evaluate_pair",
    "worst_case_value",
]


@dataclass(frozen=True, eq=False)
class MarkovGame:
    """A zero-sum Markov game as a joint-action ``TabularMDP`` (joint action a·B + b).

    Attributes: mdp (S states, A·B joint actions, discounted), num_row_actions A, num_col_actions B.
    """

    mdp: TabularMDP
    num_row_actions: int
    num_col_actions: int

    @property
    def num_states(self) -> int:
        return self.mdp.num_states

    @property
    def P(self) -> np.ndarray:
        """P[s, a, b, s'] (dense)."""
        S = self.mdp.num_states
        return self.mdp.dense_P().reshape(S, self.num_row_actions, self.num_col_actions, S)

    @property
    def r(self) -> np.ndarray:
        """r[s, a, b]."""
        return self.mdp.r.reshape(self.mdp.num_states, self.num_row_actions, self.num_col_actions)

    def q(self, v: np.ndarray) -> np.ndarray:
        """Q_V[s, a, b] = r(s, a, b) + γ Σ_s' P(s'|s, a, b) V(s')."""
        return (self.mdp.r + self.mdp.gamma * self.mdp.expected_next(v)).reshape(self.r.shape)


def markov_game(P: np.ndarray, R: np.ndarray, gamma: float, mu0: np.ndarray | None = None, name: str = "markov-game") -> MarkovGame:
    """Build a discounted zero-sum Markov game from P[s, a, b, s'] and R[s, a, b] (reward to the row player).

    Raises ValueError (from TabularMDP or here) on bad shapes, non-stochastic rows, non-finite
    rewards or γ outside [0, 1).
    """
    P = as_float_array("P", P)
    R = as_float_array("R", R)
    if P.ndim != 4:
        raise ValueError(f"P must have shape (S, A, B, S), got {P.shape}")
    S, A, B, S2 = P.shape
    if S2 != S:
        raise ValueError(f"P must have shape (S, A, B, S) with the same S, got {P.shape}")
    if R.shape != (S, A, B):
        raise ValueError(f"R must have shape (S, A, B) = {(S, A, B)}, got {R.shape}")
    mdp = TabularMDP(P=P.reshape(S, A * B, S), R=R.reshape(S, A * B), gamma=gamma, mu0=mu0, name=name)
    return MarkovGame(mdp=mdp, num_row_actions=A, num_col_actions=B)


def joint_policy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The product policy π(a·B + b | s) = x(a|s) y(b|s): [s, A], [s, B] -> [s, A·B]."""
    return (x[:, :, None] * y[:, None, :]).reshape(x.shape[0], -1)


class SoftMinimaxBackup:
    """The soft minimax backup for ``rlref.solve.iterate``: value(q) = the QRE value of each state's
    game Q(s) (temperatures τ₁, τ₂), policy(q) = the product of the QRE strategies, slack 0.

    Warm-starts each sweep's QRE from the previous sweep's logits. Inputs assumed validated.
    """

    kind = "soft-minimax"

    def __init__(self, game: MarkovGame, tau_row: float, tau_col: float) -> None:
        self.game, self.t1, self.t2 = game, float(tau_row), float(tau_col)
        self.z: np.ndarray | None = None

    def _solve(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Q = q.reshape(self.game.r.shape)
        x, y, self.z = matrix_qre_batch(Q, self.t1, self.t2, z0=self.z)
        return x, y

    def value(self, q: np.ndarray, h: int | None = None) -> np.ndarray:
        x, y = self._solve(q)
        Q = q.reshape(self.game.r.shape)
        bil = np.einsum("sa,sab,sb->s", x, Q, y)
        return bil + self.t1 * np.asarray(divergences.entropy(x)) - self.t2 * np.asarray(divergences.entropy(y))

    def policy(self, q: np.ndarray, h: int | None = None) -> np.ndarray:
        return joint_policy(*self._solve(q))

    def slack(self, q: np.ndarray, pi: np.ndarray) -> float:
        return 0.0


class MinimaxBackup:
    """Shapley's backup: value(q)(s) = the LP value of the matrix game Q(s) (:func:`matrix_nash`),
    policy = the product of the LP equilibrium strategies, slack = their LP duality gap."""

    kind = "minimax"

    def __init__(self, game: MarkovGame) -> None:
        self.game = game
        self._last: tuple[np.ndarray, list] | None = None

    def _nash(self, q: np.ndarray) -> list:
        if self._last is not None and self._last[0] is q:
            return self._last[1]
        ns = [matrix_nash(Qs) for Qs in q.reshape(self.game.r.shape)]
        self._last = (q, ns)
        return ns

    def value(self, q: np.ndarray, h: int | None = None) -> np.ndarray:
        return np.array([n.value for n in self._nash(q)])

    def policy(self, q: np.ndarray, h: int | None = None) -> np.ndarray:
        ns = self._nash(q)
        return joint_policy(np.array([n.x for n in ns]), np.array([n.y for n in ns]))

    def slack(self, q: np.ndarray, pi: np.ndarray) -> float:
        return float(max(n.gap for n in self._nash(q)))


@dataclass(frozen=True)
class MarkovQRE:
    """Soft minimax value iteration's output.

    values[s] (the regularized game value), q[s, a, b], row_policy[s, a], col_policy[s, b],
    iterations, bellman_residual ‖T V − V‖_∞, value_error_bound (certified bound on ‖values − V*‖_∞),
    converged, tau_row, tau_col.
    """

    values: np.ndarray
    q: np.ndarray
    row_policy: np.ndarray
    col_policy: np.ndarray
    iterations: int
    bellman_residual: float
    value_error_bound: float
    converged: bool
    tau_row: float
    tau_col: float


def _result(game: MarkovGame, out, t1: float, t2: float) -> MarkovQRE:
    A, B = game.num_row_actions, game.num_col_actions
    pi = out.policy.reshape(game.num_states, A, B)
    return MarkovQRE(values=out.values, q=out.q.reshape(game.num_states, A, B), row_policy=pi.sum(axis=2),
                     col_policy=pi.sum(axis=1), iterations=out.iterations, bellman_residual=out.bellman_residual,
                     value_error_bound=out.value_error_bound, converged=out.converged, tau_row=t1, tau_col=t2)


def soft_minimax_vi(game: MarkovGame, tau_row: float, tau_col: float, epsilon: float = 1e-8, max_iter: int = 10_000,
                    v0: np.ndarray | None = None) -> MarkovQRE:
    """Soft minimax value iteration: V ← T V with T the entropy-regularized minimax backup (module docstring).

    Stops when the sup-norm certificate 2γ‖TV − V‖/(1 − γ) ≤ epsilon (rlref.solve.iterate).
    Raises ValueError for a temperature <= 0 or not finite, or a bad v0.
    References: Reddi et al. (2024), QARL, Sec. 4; Shapley (1953); derived here: the contraction.
    """
    t1, t2 = check_beta("tau_row", tau_row), check_beta("tau_col", tau_col)
    check_count("max_iter", max_iter)
    v = np.zeros(game.num_states) if v0 is None else as_float_array("v0", v0, ndim=1)
    check_finite("v0", v)
    out = iterate(game.mdp, SoftMinimaxBackup(game, t1, t2), v, epsilon=float(epsilon), max_iter=max_iter, method="soft_minimax_vi")
    return _result(game, out, t1, t2)


def minimax_value_iteration(game: MarkovGame, epsilon: float = 1e-8, max_iter: int = 10_000) -> MarkovQRE:
    """Shapley's value iteration V ← max_x min_y xᵀ Q_V(s) y (one LP per state per sweep).

    References: Shapley (1953), Thm 1 (contraction, existence of the value).
    """
    check_count("max_iter", max_iter)
    out = iterate(game.mdp, MinimaxBackup(game), np.zeros(game.num_states), epsilon=float(epsilon), max_iter=max_iter,
                  method="minimax_value_iteration")
    return _result(game, out, 0.0, 0.0)


def _check_strategy(name: str, p: np.ndarray, S: int, k: int) -> np.ndarray:
    p = as_float_array(name, p)
    if p.shape != (S, k):
        raise ValueError(f"{name} must have shape (S, {k}) = ({S}, {k}), got {p.shape}")
    check_distribution(name, p)
    return p


def evaluate_pair(game: MarkovGame, x: np.ndarray, y: np.ndarray, tau_row: float = 0.0, tau_col: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Exact regularized value and Q of the pair (x, y): V = (I − γP_{xy})⁻¹ (r_{xy} + τ₁H(x) − τ₂H(y)),
    Q[s, a, b] = r(s, a, b) + γ P V (the current state's entropies are not inside Q).

    Computed by ``rlref.solve.policy_evaluation`` on the game's MDP with the per-state entropy bonus
    added to the reward. Shapes: x[s, A], y[s, B] -> (V[s], Q[s, A, B]).
    """
    S, A, B = game.r.shape
    x, y = _check_strategy("x", x, S, A), _check_strategy("y", y, S, B)
    t1, t2 = check_beta("tau_row", tau_row, allow_zero=True), check_beta("tau_col", tau_col, allow_zero=True)
    bonus = t1 * np.asarray(divergences.entropy(x)) - t2 * np.asarray(divergences.entropy(y))
    mdp = game.mdp
    if np.any(bonus != 0.0):
        mdp = TabularMDP(P=mdp.P, R=mdp.r + bonus[:, None], gamma=mdp.gamma, mu0=mdp.mu0, name=mdp.name)
    v = policy_evaluation(mdp, joint_policy(x, y)).values
    return v, game.q(v)


def worst_case_value(game: MarkovGame, x: np.ndarray) -> np.ndarray:
    """The protagonist's worst-case (unregularized) value min_π̄ V^{x, π̄}(s): the adversary's best response.

    The adversary faces the MDP P_x(s'|s, b) = Σ_a x(a|s) P(s'|s, a, b), r_x(s, b) = Σ_a x(a|s) r(s, a, b),
    and minimizes; solved by ``rlref.solve.value_iteration`` on −r_x. Shapes: x[s, A] -> V[s].
    References: Pinto et al. (2017), RARL (worst-case evaluation); derived here.
    """
    S, A, B = game.r.shape
    x = _check_strategy("x", x, S, A)
    Px = np.einsum("sa,sabt->sbt", x, game.P)
    rx = np.einsum("sa,sab->sb", x, game.r)
    adv = TabularMDP(P=Px, R=-rx, gamma=game.mdp.gamma, mu0=game.mdp.mu0, name="adversary-best-response")
    return -value_iteration(adv, epsilon=1e-10).values
