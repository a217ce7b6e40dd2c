"""Reproduction ``sutton-barto-gridworld``: Sutton & Barto (2018), Example 3.5 and Example 3.8.

The 5x5 gridworld of Example 3.5 (γ = 0.9): the state-value function of the equiprobable random
policy (Figure 3.2, right) and the optimal state-value function and optimal policy (Figure 3.5,
middle and right), drawn as the book draws them — grids of numbers, and arrows for every optimal
action (ties included).

Claims:

* V^π of the uniform random policy matches the book's printed table (Figure 3.2) to 0.05 — the
  book prints one decimal, so a correct value is within 0.05 of the printed number;
* V* matches Figure 3.5 to 0.05;
* the set of optimal actions in every state equals the arrows of Figure 3.5;
* V^π from ``policy_evaluation`` equals an independent dense ``numpy.linalg.solve`` of the
  Bellman equation (I − γ P_π) V = r_π to 1e-10;
* value iteration, policy iteration, the value-form LP and the occupancy-form LP (each with the
  HiGHS and the cvxpy backend) give the same V* — to 1e-8, and to 1e-6 for the cvxpy backend
  (an interior-point solver at its default tolerances, which reach about 1e-7 here).

The golden tables below were typed from the book, independently of rlref.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlref.policy import greedy_policy
from rlref.reproduce import Context, Report, register

PAPER = "Sutton & Barto (2018), Reinforcement Learning: An Introduction, 2nd ed., Example 3.5 (Fig. 3.2) and Example 3.8 (Fig. 3.5)"

#: Figure 3.2 (right): state-value function of the equiprobable random policy, γ = 0.9.
BOOK_V_RANDOM = np.array(
    [
        [3.3, 8.8, 4.4, 5.3, 1.5],
        [1.5, 3.0, 2.3, 1.9, 0.5],
        [0.1, 0.7, 0.7, 0.4, -0.4],
        [-1.0, -0.4, -0.4, -0.6, -1.2],
        [-1.9, -1.3, -1.2, -1.4, -2.0],
    ]
)

#: Figure 3.5 (middle): optimal state-value function v*, γ = 0.9.
BOOK_V_STAR = np.array(
    [
        [22.0, 24.4, 22.0, 19.4, 17.5],
        [19.8, 22.0, 19.8, 17.8, 16.0],
        [17.8, 19.8, 17.8, 16.0, 14.4],
        [16.0, 17.8, 16.0, 14.4, 13.0],
        [14.4, 16.0, 14.4, 13.0, 11.7],
    ]
)

#: Figure 3.5 (right): the optimal actions drawn as arrows in each cell (N, S, E, W); in A and B
#: every action is optimal (each moves the agent to A' or B' with the same reward).
BOOK_PI_STAR = (
    ("E", "NSEW", "W", "NSEW", "W"),
    ("NE", "N", "NW", "W", "W"),
    ("NE", "N", "NW", "NW", "NW"),
    ("NE", "N", "NW", "NW", "NW"),
    ("NE", "N", "NW", "NW", "NW"),
)

ACTION_LETTERS = "NSEW"  # rlref.envs.sutton_barto_gridworld: actions (north, south, east, west)
PRINTED_TOL = 0.05  # the book prints one decimal
AGREE_TOL = 1e-8
#: cvxpy's default interior-point (Clarabel) tolerances give values to ~1e-7 on this MDP.
CVXPY_TOL = 1e-8
TIE_TOL = 1e-9


def optimal_action_sets(q: np.ndarray, tie_tol: float = TIE_TOL) -> list[str]:
    """The letters of the actions within ``tie_tol`` of max_a Q(s, a) (the greedy set), for each state s."""
    best = greedy_policy(q, tie_tol=tie_tol) > 0
    return ["".join(ACTION_LETTERS[a] for a in np.flatnonzero(row)) for row in best]


def _draw_numbers(ax: Any, grid: np.ndarray, title: str) -> None:
    n_rows, n_cols = grid.shape
    for r in range(n_rows):
        for c in range(n_cols):
            ax.text(c + 0.5, r + 0.5, f"{grid[r, c]:.1f}", ha="center", va="center", fontsize=10)
    _grid_lines(ax, n_rows, n_cols, title)


def _grid_lines(ax: Any, n_rows: int, n_cols: int, title: str) -> None:
    for r in range(n_rows + 1):
        ax.plot([0, n_cols], [r, r], color="black", lw=0.8)
    for c in range(n_cols + 1):
        ax.plot([c, c], [0, n_rows], color="black", lw=0.8)
    ax.set_xlim(-0.05, n_cols + 0.05)
    ax.set_ylim(n_rows + 0.05, -0.05)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)


def _draw_arrows(ax: Any, sets: list[str], n: int, title: str) -> None:
    delta = {"N": (0.0, -1.0), "S": (0.0, 1.0), "E": (1.0, 0.0), "W": (-1.0, 0.0)}
    for s, letters in enumerate(sets):
        r, c = divmod(s, n)
        for ch in letters:
            dx, dy = delta[ch]
            ax.annotate("", xy=(c + 0.5 + 0.38 * dx, r + 0.5 + 0.38 * dy), xytext=(c + 0.5, r + 0.5),
                        arrowprops={"arrowstyle": "->", "lw": 1.2, "color": "black"})
    _grid_lines(ax, n, n, title)


def _draw_world(ax: Any, n: int) -> None:
    for (r, c), label in {(0, 1): "A", (0, 3): "B", (4, 1): "A'", (2, 3): "B'"}.items():
        ax.text(c + 0.5, r + 0.5, label, ha="center", va="center", fontsize=12, fontweight="bold")
    ax.annotate("", xy=(1.5, 4.25), xytext=(1.5, 0.75), arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 1.5})
    ax.text(1.15, 2.5, "+10", color="tab:red", fontsize=10, ha="center")
    ax.annotate("", xy=(3.5, 2.25), xytext=(3.5, 0.75), arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 1.5})
    ax.text(3.85, 1.5, "+5", color="tab:red", fontsize=10, ha="center")
    _grid_lines(ax, n, n, "Gridworld (Ex. 3.5)")


@register("sutton-barto-gridworld", paper=PAPER,
          description="Sutton & Barto Ex. 3.5/3.8: V of the random policy, V* and pi*; VI = PI = LPs = book tables")
def run(ctx: Context) -> Report:
    """Solve Example 3.5 exactly, compare with the printed tables and across solvers, draw the figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlref.envs import sutton_barto_gridworld
    from rlref.policy import uniform_policy
    from rlref.solve import lp_occupancy, lp_value, policy_evaluation, policy_iteration, value_iteration

    mdp = sutton_barto_gridworld(gamma=0.9)
    n = 5
    S = mdp.num_states

    # ---- the equiprobable random policy (Figure 3.2)
    pi_rand = uniform_policy(mdp)
    v_rand = policy_evaluation(mdp, pi_rand).values
    P = mdp.dense_P()
    v_rand_dense = np.linalg.solve(np.eye(S) - mdp.gamma * np.einsum("sa,sat->st", pi_rand, P), (pi_rand * mdp.r).sum(axis=1))

    # ---- the optimum, five ways (Figure 3.5)
    solvers = [("value iteration", lambda: value_iteration(mdp, epsilon=1e-12))]
    solvers += [("policy iteration", lambda: policy_iteration(mdp))]
    for backend in ("highs", "cvxpy"):
        solvers += [(f"LP value form ({backend})", lambda b=backend: lp_value(mdp, backend=b))]
        solvers += [(f"LP occupancy form ({backend})", lambda b=backend: lp_occupancy(mdp, backend=b))]
    results = {name: fn() for name, fn in ctx.progress(solvers, desc="solvers")}
    v_pi = results["policy iteration"].values
    q_star = mdp.r + mdp.gamma * mdp.expected_next(v_pi)
    sets = optimal_action_sets(q_star)

    # ---- claims
    ctx.claim("V of the equiprobable random policy matches the printed table of Fig. 3.2 (one decimal)",
              expected=BOOK_V_RANDOM, measured=np.round(v_rand.reshape(n, n), 4), tolerance=PRINTED_TOL)
    ctx.claim("V* matches the printed table of Fig. 3.5 (one decimal)",
              expected=BOOK_V_STAR, measured=np.round(v_pi.reshape(n, n), 4), tolerance=PRINTED_TOL)
    book_sets = ["".join(sorted(x, key=ACTION_LETTERS.index)) for row in BOOK_PI_STAR for x in row]
    mismatches = [f"{divmod(s, n)}: book {b} vs {m}" for s, (b, m) in enumerate(zip(book_sets, sets, strict=True)) if b != m]
    ctx.claim("the optimal actions in every state (ties included) are the arrows of Fig. 3.5",
              expected=book_sets, measured=sets, tolerance=None, holds=not mismatches)
    ctx.claim("policy_evaluation equals a dense numpy solve of (I - gamma P_pi) V = r_pi for the random policy",
              expected=0.0, measured=float(np.max(np.abs(v_rand - v_rand_dense))), tolerance=1e-10)
    for name, res in results.items():
        if name == "policy iteration":
            continue
        ctx.claim(f"{name} gives the same V* as policy iteration", expected=0.0,
                  measured=float(np.max(np.abs(res.values - v_pi))), tolerance=CVXPY_TOL if "cvxpy" in name else AGREE_TOL)

    # ---- figure, drawn like the book
    fig, axes = plt.subplots(1, 4, figsize=(15, 4))
    _draw_world(axes[0], n)
    _draw_numbers(axes[1], v_rand.reshape(n, n), "$v_\\pi$, equiprobable random policy (Fig. 3.2)")
    _draw_numbers(axes[2], v_pi.reshape(n, n), "$v_*$ (Fig. 3.5)")
    _draw_arrows(axes[3], sets, n, "$\\pi_*$, all optimal actions (Fig. 3.5)")
    fig.suptitle("Sutton & Barto (2018) Example 3.5 gridworld, γ = 0.9 — computed by rlref", fontsize=11)
    fig.tight_layout()

    data = {
        "gamma": mdp.gamma,
        "v_random": v_rand.reshape(n, n),
        "v_star": v_pi.reshape(n, n),
        "optimal_actions": [sets[r * n:(r + 1) * n] for r in range(n)],
        "max_dev_from_book_random": float(np.max(np.abs(v_rand.reshape(n, n) - BOOK_V_RANDOM))),
        "max_dev_from_book_star": float(np.max(np.abs(v_pi.reshape(n, n) - BOOK_V_STAR))),
        "solver_deviation_from_pi": {k: float(np.max(np.abs(r.values - v_pi))) for k, r in results.items()},
        "value_iteration_iterations": int(results["value iteration"].iterations),
        "policy_iteration_iterations": int(results["policy iteration"].iterations),
    }
    return ctx.report(PAPER, figure=fig, data=data,
                      notes="Golden tables typed from the book (printed to one decimal, hence tolerance 0.05).")
