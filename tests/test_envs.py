"""Tests for rlref.envs: each test names the claim it checks.

Golden values come from published tables (Sutton & Barto 2018, Figures 3.2 and 3.5) or from
independent reference constructions written here with plain loops from the documented rules.
Values are computed with tiny numpy solvers local to this file, not with rlref.solve.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rlref.envs import (  # noqa: E402
    ACTIONS,
    GridMDP,
    chain,
    contextual_bandit,
    from_deterministic,
    garnet,
    gridworld,
    load_bridge_npz,
    multi_armed_bandit,
    plot_gridworld,
    riverswim,
    sutton_barto_gridworld,
)

# ------------------------------------------------------------------------------ local solvers


def _dense(mdp) -> np.ndarray:
    return mdp.dense_P()


def evaluate(mdp, pi: np.ndarray) -> np.ndarray:
    """V^π = (I - γ P_π)^{-1} r_π by a dense linear solve (discounted MDPs)."""
    P = _dense(mdp)
    S = P.shape[0]
    P_pi = np.einsum("sa,sat->st", pi, P)
    r_pi = np.einsum("sa,sa->s", pi, mdp.r)
    return np.linalg.solve(np.eye(S) - mdp.gamma * P_pi, r_pi)


def value_iteration(mdp, tol: float = 1e-12) -> np.ndarray:
    P = _dense(mdp)
    v = np.zeros(P.shape[0])
    for _ in range(100_000):
        v_new = (mdp.r + mdp.gamma * P @ v).max(axis=1)
        if np.max(np.abs(v_new - v)) < tol:
            return v_new
        v = v_new
    raise AssertionError("value iteration did not converge")


def finite_horizon_optimal(mdp) -> np.ndarray:
    """V*_0 by backward induction (stationary P and r)."""
    P = _dense(mdp)
    v = np.zeros(P.shape[0])
    for _ in range(mdp.horizon):
        v = (mdp.r + mdp.gamma * P @ v).max(axis=1)
    return v


# ------------------------------------------------------------------------------ Sutton & Barto

BOOK_RANDOM = np.array(
    [
        [3.3, 8.8, 4.4, 5.3, 1.5],
        [1.5, 3.0, 2.3, 1.9, 0.5],
        [0.1, 0.7, 0.7, 0.4, -0.4],
        [-1.0, -0.4, -0.4, -0.6, -1.2],
        [-1.9, -1.3, -1.2, -1.4, -2.0],
    ]
)
BOOK_OPTIMAL = np.array(
    [
        [22.0, 24.4, 22.0, 19.4, 17.5],
        [19.8, 22.0, 19.8, 17.8, 16.0],
        [17.8, 19.8, 17.8, 16.0, 14.4],
        [16.0, 17.8, 16.0, 14.4, 13.0],
        [14.4, 16.0, 14.4, 13.0, 11.7],
    ]
)


def test_sutton_barto_random_policy_value_matches_figure_3_2():
    mdp = sutton_barto_gridworld()
    v = evaluate(mdp, np.full((25, 4), 0.25))
    np.testing.assert_allclose(v.reshape(5, 5), BOOK_RANDOM, atol=0.05)


def test_sutton_barto_optimal_value_matches_figure_3_5():
    mdp = sutton_barto_gridworld()
    v = value_iteration(mdp)
    np.testing.assert_allclose(v.reshape(5, 5), BOOK_OPTIMAL, atol=0.05)


def test_sutton_barto_layout_and_special_transitions():
    mdp = sutton_barto_gridworld()
    assert isinstance(mdp, GridMDP) and mdp.num_states == 25 and mdp.num_actions == 4
    assert mdp.gamma == 0.9 and mdp.terminal is None
    for row in range(5):
        for col in range(5):
            assert mdp.state(row, col) == 5 * row + col
    P = mdp.P
    for a in range(4):
        assert P[1, a, 21] == 1.0 and mdp.r[1, a] == 10.0  # A -> A'
        assert P[3, a, 13] == 1.0 and mdp.r[3, a] == 5.0  # B -> B'
    # corner (0, 0): north and west bump (-1, stay); south and east move with 0 reward
    assert P[0, 0, 0] == 1.0 and mdp.r[0, 0] == -1.0
    assert P[0, 3, 0] == 1.0 and mdp.r[0, 3] == -1.0
    assert P[0, 1, 5] == 1.0 and mdp.r[0, 1] == 0.0
    assert P[0, 2, 1] == 1.0 and mdp.r[0, 2] == 0.0
    assert mdp.action_names == ("north", "south", "east", "west")


def test_sutton_barto_rejects_bad_gamma():
    with pytest.raises(ValueError, match="gamma"):
        sutton_barto_gridworld(gamma=1.0)


# ------------------------------------------------------------------------------ gridworld

LAYOUT = [
    "S..#.",
    ".#..G",
    "...#.",
    "G....",
]


def reference_gridworld_P(layout, slip):
    """P built cell by cell from the documented rule, with plain loops (independent reference)."""
    cells = [(r, c) for r, row in enumerate(layout) for c, ch in enumerate(row) if ch != "#"]
    index = {cell: s for s, cell in enumerate(cells)}
    moves = [(-1, 0), (1, 0), (0, 1), (0, -1)]
    S = len(cells)
    P = np.zeros((S, 4, S))
    for s, (r, c) in enumerate(cells):
        for a in range(4):
            if layout[r][c] == "G":
                P[s, a, s] = 1.0
                continue
            for d, (dr, dc) in enumerate(moves):
                p = 1.0 - slip if d == a else slip / 3.0
                target = index.get((r + dr, c + dc), s)
                P[s, a, target] += p
    return P


@st.composite
def layouts(draw):
    rows = draw(st.integers(1, 5))
    cols = draw(st.integers(1, 5))
    chars = draw(st.lists(st.sampled_from("##...SG"), min_size=rows * cols, max_size=rows * cols))
    if all(ch == "#" for ch in chars):
        chars[0] = "."
    return ["".join(chars[i * cols : (i + 1) * cols]) for i in range(rows)]


@settings(max_examples=30, deadline=None)
@given(layout=layouts(), slip=st.floats(0.0, 1.0))
def test_gridworld_P_equals_loop_reference_and_rows_are_stochastic(layout, slip):
    mdp = gridworld(layout, slip=slip)
    P = mdp.P
    np.testing.assert_allclose(P.sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(P, reference_gridworld_P(layout, slip), atol=1e-12)
    # states are exactly the non-wall cells, row-major
    cells = [(r, c) for r, row in enumerate(layout) for c, ch in enumerate(row) if ch != "#"]
    assert [tuple(x) for x in mdp.cells] == cells
    for s, (r, c) in enumerate(cells):
        assert mdp.state(r, c) == s and mdp.cell(s) == (r, c)


@settings(max_examples=20, deadline=None)
@given(layout=layouts(), slip=st.floats(0.0, 1.0))
def test_gridworld_moves_only_to_adjacent_non_wall_cells(layout, slip):
    mdp = gridworld(layout, slip=slip)
    for s, _a, t in zip(*np.nonzero(mdp.P > 0), strict=True):
        (r1, c1), (r2, c2) = mdp.cell(int(s)), mdp.cell(int(t))
        assert layout[r2][c2] != "#"  # walls unreachable (they are not even states)
        assert abs(r1 - r2) + abs(c1 - c2) <= 1


def test_gridworld_slip_zero_is_deterministic_and_follows_the_action_order():
    mdp = gridworld(LAYOUT, slip=0.0)
    assert mdp.action_names == ACTIONS == ("up", "down", "right", "left")
    assert np.all(np.isin(mdp.P, [0.0, 1.0]))
    s = mdp.state(2, 1)
    assert mdp.P[s, 0, mdp.state(1, 1) if LAYOUT[1][1] != "#" else s] == 1.0  # up into a wall: stays
    assert mdp.P[s, 1, mdp.state(3, 1)] == 1.0  # down
    assert mdp.P[s, 2, mdp.state(2, 2)] == 1.0  # right
    assert mdp.P[s, 3, mdp.state(2, 0)] == 1.0  # left


def test_gridworld_slip_mass_in_open_field():
    slip = 0.3
    mdp = gridworld(["...", "...", "..."], slip=slip)
    s = mdp.state(1, 1)
    for a, (dr, dc) in enumerate([(-1, 0), (1, 0), (0, 1), (0, -1)]):
        row = mdp.P[s, a]
        assert row[mdp.state(1 + dr, 1 + dc)] == pytest.approx(1 - slip)
        others = [mdp.state(1 + r, 1 + c) for r, c in [(-1, 0), (1, 0), (0, 1), (0, -1)] if (r, c) != (dr, dc)]
        np.testing.assert_allclose(row[others], slip / 3)
        assert row[s] == 0.0
    # corner (0, 0), action up: the wall bumps of 'up' (1 - slip) and 'left' (slip/3) stay put
    c = mdp.state(0, 0)
    assert mdp.P[c, 0, c] == pytest.approx(1 - slip + slip / 3)


def test_gridworld_goals_absorbing_terminal_and_rewards():
    mdp = gridworld(LAYOUT, slip=0.0, step_reward=-0.1, goal_reward=2.0, goal_rewards={(3, 0): -5.0})
    g1, g2 = mdp.state(1, 4), mdp.state(3, 0)
    assert mdp.terminal[g1] and mdp.terminal[g2] and mdp.terminal.sum() == 2
    for g in (g1, g2):
        np.testing.assert_array_equal(mdp.P[g, :, g], 1.0)
        np.testing.assert_array_equal(mdp.r[g], 0.0)
    assert mdp.r[mdp.state(1, 3), 2] == pytest.approx(-0.1 + 2.0)  # right into goal (1, 4)
    assert mdp.r[mdp.state(2, 0), 1] == pytest.approx(-0.1 - 5.0)  # down into the trap (3, 0)
    assert mdp.r[mdp.state(0, 0), 1] == pytest.approx(-0.1)
    # mu0 sits on 'S'
    assert mdp.mu0[mdp.state(0, 0)] == 1.0


def test_gridworld_goal_value_closed_form():
    """In a corridor S...G with slip 0, V*(s) = γ^{d(s)-1} R_G with d the distance to G."""
    gamma = 0.8
    mdp = gridworld(["S...G"], gamma=gamma, goal_reward=3.0)
    v = value_iteration(mdp)
    np.testing.assert_allclose(v, [3.0 * gamma**3, 3.0 * gamma**2, 3.0 * gamma, 3.0, 0.0], atol=1e-10)


def test_gridworld_finite_horizon_defaults_gamma_to_one():
    mdp = gridworld(["S..G"], horizon=3)
    assert mdp.horizon == 3 and mdp.gamma == 1.0
    np.testing.assert_allclose(finite_horizon_optimal(mdp), [1.0, 1.0, 1.0, 0.0])
    mdp2 = gridworld(["S..G"], horizon=2)
    np.testing.assert_allclose(finite_horizon_optimal(mdp2), [0.0, 1.0, 1.0, 0.0])


def test_gridworld_mu0_uniform_over_non_goals_without_start():
    mdp = gridworld(["..G", "#.."])
    expected = np.where(mdp.terminal, 0.0, 1.0)
    np.testing.assert_allclose(mdp.mu0, expected / expected.sum())


def test_gridworld_sparse_equals_dense():
    dense = gridworld(LAYOUT, slip=0.2)
    sparse = gridworld(LAYOUT, slip=0.2, sparse=True)
    assert sparse.is_sparse and not dense.is_sparse
    np.testing.assert_allclose(sparse.dense_P(), dense.P, atol=1e-15)
    np.testing.assert_allclose(sparse.r, dense.r)


def test_gridworld_large_layout_defaults_to_sparse():
    mdp = gridworld(["." * 50] * 50, slip=0.1)
    assert mdp.num_states == 2500 and mdp.is_sparse
    np.testing.assert_allclose(np.asarray(mdp.P.sum(axis=1)).ravel(), 1.0)


def test_gridworld_accepts_multiline_string():
    mdp = gridworld("""
        S.
        .G
    """)
    assert mdp.layout == ("S.", ".G") and mdp.num_states == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layout": ["S..", "..G."]}, "ragged"),
        ({"layout": ["S.x", "..G"]}, "unknown character 'x'"),
        ({"layout": []}, "at least one row"),
        ({"layout": ["##", "##"]}, "non-wall"),
        ({"layout": ["S.G"], "slip": 1.5}, "slip"),
        ({"layout": ["S.G"], "slip": -0.1}, "slip"),
        ({"layout": ["S.G"], "goal_rewards": {(0, 1): 1.0}}, "goal_rewards"),
        ({"layout": ["S.G"], "step_reward": float("nan")}, "step_reward"),
        ({"layout": ["S.G"], "gamma": 1.0}, "gamma"),
    ],
)
def test_gridworld_bad_inputs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gridworld(**kwargs)


def test_gridmdp_state_of_wall_raises():
    mdp = gridworld(LAYOUT)
    with pytest.raises(ValueError, match="wall"):
        mdp.state(0, 3)
    with pytest.raises(ValueError, match="outside"):
        mdp.state(9, 0)


def test_plot_gridworld_draws_heatmap_and_arrows_for_ties():
    from matplotlib.patches import FancyArrow

    mdp = gridworld(LAYOUT, slip=0.1)
    values = np.arange(mdp.num_states, dtype=float)
    pi = np.zeros((mdp.num_states, 4))
    pi[:, 0] = 1.0
    s = mdp.state(0, 0)
    pi[s] = [0.5, 0.5, 0.0, 0.0]  # a tie: two arrows in this state
    ax = plot_gridworld(mdp, values=values, policy=pi)
    arrows = [p for p in ax.patches if isinstance(p, FancyArrow)]
    n_nonterminal = int((~mdp.terminal).sum())
    assert len(arrows) == n_nonterminal + 1
    assert len(ax.images) >= 2  # heat map + wall overlay
    plt.close(ax.figure)
    # integer actions work too, and the axes passed in is returned
    fig, ax2 = plt.subplots()
    assert plot_gridworld(mdp, policy=np.zeros(mdp.num_states, dtype=int), ax=ax2) is ax2
    plt.close(fig)


def test_plot_gridworld_bad_shapes_raise():
    mdp = gridworld(LAYOUT)
    with pytest.raises(ValueError, match="values"):
        plot_gridworld(mdp, values=np.zeros(3))
    with pytest.raises(ValueError, match="policy"):
        plot_gridworld(mdp, policy=np.zeros((3, 4)))
    plt.close("all")


# ------------------------------------------------------------------------------ garnet


@pytest.mark.parametrize(
    ("S", "A", "b", "sparse"), [(10, 3, 3, False), (10, 2, 10, False), (300, 3, 4, True), (300, 2, 20, False)]
)
def test_garnet_each_row_has_exactly_b_distinct_successors(S, A, b, sparse):
    mdp = garnet(S, A, b, seed=1, sparse=sparse)
    M = mdp.transition_matrix()
    nnz = np.diff(M.indptr) if sp.issparse(M) else (M > 0).sum(axis=1)
    np.testing.assert_array_equal(nnz, b)
    np.testing.assert_allclose(np.asarray(M.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    assert mdp.is_sparse == sparse


def test_garnet_seeded_reproducibility():
    a = garnet(50, 4, 5, seed=7)
    b = garnet(50, 4, 5, rng=np.random.default_rng(7))
    c = garnet(50, 4, 5, seed=8)
    np.testing.assert_array_equal(a.P, b.P)
    np.testing.assert_array_equal(a.r, b.r)
    assert not np.array_equal(a.P, c.P)


@pytest.mark.parametrize(("S", "b"), [(8, 3), (400, 5)])
def test_garnet_successor_sets_are_uniform(S, b):
    """Each state is a successor of a row with probability b/S (both sampling code paths)."""
    A = 20_000 // S
    n = S * A  # number of rows (s, a)
    mdp = garnet(S, A, b, seed=3, sparse=True)
    counts = np.bincount(mdp.P.indices, minlength=S) / n * (S / b)
    # binomial frequency over n rows: 6 standard errors
    se = np.sqrt((b / S) * (1 - b / S) / n) * (S / b)
    assert np.max(np.abs(counts - 1.0)) < 6 * se
    # Dirichlet(1) weights have mean 1/b
    assert abs(mdp.P.data.mean() - 1.0 / b) < 0.01


def test_garnet_sparse_matches_dense_for_same_seed():
    d = garnet(30, 3, 4, seed=5, sparse=False)
    s = garnet(30, 3, 4, seed=5, sparse=True)
    np.testing.assert_allclose(s.dense_P(), d.P)


def test_garnet_large_sparse_build():
    mdp = garnet(10**5, 10, 5, seed=0)
    assert mdp.is_sparse and mdp.P.shape == (10**6, 10**5) and mdp.P.nnz == 5 * 10**6
    assert np.all(np.diff(mdp.P.indptr) == 5)


def test_garnet_reward_kinds():
    u = garnet(20, 3, 2, seed=0, reward="uniform")
    assert np.all((u.r >= 0) & (u.r <= 1))
    s = garnet(20, 3, 2, seed=0, reward="state")
    np.testing.assert_array_equal(s.r, s.r[:, :1].repeat(3, axis=1))
    n = garnet(200, 3, 2, seed=0, reward="normal")
    assert n.r.min() < 0 < n.r.max()


def test_garnet_finite_horizon():
    mdp = garnet(10, 2, 3, seed=0, horizon=5)
    assert mdp.horizon == 5 and mdp.gamma == 1.0


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((5, 2, 6), {}, "branching"),
        ((5, 2, 0), {}, "branching"),
        ((0, 2, 1), {}, "num_states"),
        ((5, 0, 1), {}, "num_actions"),
        ((5, 2, 2), {"reward": "gaussian"}, "reward"),
        ((5, 2, 2), {"concentration": 0.0}, "concentration"),
        ((5, 2, 2), {"seed": 1, "rng": np.random.default_rng(1)}, "rng or seed"),
    ],
)
def test_garnet_bad_inputs_raise(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        garnet(*args, **kwargs)


# ------------------------------------------------------------------------------ chains


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_chain_optimal_values_closed_form(gamma):
    n = 6
    mdp = chain(n, gamma=gamma)
    v = value_iteration(mdp)
    expected = np.array([gamma ** (n - 2 - s) / (1 - gamma) for s in range(n - 1)] + [1 / (1 - gamma)])
    np.testing.assert_allclose(v, expected, rtol=1e-9)
    assert mdp.mu0[0] == 1.0


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 8), slip=st.floats(0.0, 1.0))
def test_chain_slip_moves_opposite(n, slip):
    mdp = chain(n, slip=slip)
    P = mdp.P
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-12)
    for s in range(n):
        left, right = max(s - 1, 0), min(s + 1, n - 1)
        expected_right = np.zeros(n)
        expected_right[right] += 1 - slip
        expected_right[left] += slip
        np.testing.assert_allclose(P[s, 1], expected_right, atol=1e-12)


def test_riverswim_matches_osband_table():
    mdp = riverswim(6, gamma=0.95)
    P, r = mdp.P, mdp.r
    for s in range(6):
        assert P[s, 0, max(s - 1, 0)] == 1.0  # left always succeeds
    assert (P[0, 1, 0], P[0, 1, 1]) == (pytest.approx(0.4), pytest.approx(0.6))
    for s in range(1, 5):
        assert (P[s, 1, s - 1], P[s, 1, s], P[s, 1, s + 1]) == (
            pytest.approx(0.05),
            pytest.approx(0.6),
            pytest.approx(0.35),
        )
    assert (P[5, 1, 4], P[5, 1, 5]) == (pytest.approx(0.4), pytest.approx(0.6))
    expected_r = np.zeros((6, 2))
    expected_r[0, 0] = 0.005
    expected_r[5, 1] = 1.0
    np.testing.assert_array_equal(r, expected_r)
    assert mdp.mu0[0] == 1.0 and mdp.num_actions == 2


def test_riverswim_always_left_value_closed_form_and_right_is_optimal_when_patient():
    gamma = 0.99
    mdp = riverswim(6, gamma=gamma)
    left = np.zeros((6, 2))
    left[:, 0] = 1.0
    assert evaluate(mdp, left)[0] == pytest.approx(0.005 / (1 - gamma))
    v_star = value_iteration(mdp)
    q = mdp.r + gamma * mdp.P @ v_star
    assert np.all(q[:, 1] > q[:, 0])  # swimming right is optimal everywhere for a patient agent
    assert v_star[0] > 0.005 / (1 - gamma)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n": 1}, "n must"), ({"p_right": 0.5, "p_stay": 0.6}, "p_right"), ({"p_stay_last": 1.2}, "p_stay_last")],
)
def test_riverswim_bad_inputs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        riverswim(**kwargs)


def test_chain_bad_inputs_raise():
    with pytest.raises(ValueError, match="slip"):
        chain(4, slip=2.0)
    with pytest.raises(ValueError, match="n must"):
        chain(0)


# ------------------------------------------------------------------------------ bandits


@settings(max_examples=20, deadline=None)
@given(means=st.lists(st.floats(-10, 10), min_size=1, max_size=8))
def test_bandit_optimal_value_is_max_mean(means):
    mdp = multi_armed_bandit(means)
    assert mdp.num_states == 1 and mdp.horizon == 1
    assert finite_horizon_optimal(mdp)[0] == pytest.approx(max(means))


def test_discounted_bandit_value():
    mdp = multi_armed_bandit([0.2, 0.7], horizon=None, gamma=0.5)
    assert value_iteration(mdp)[0] == pytest.approx(0.7 / 0.5)


def test_contextual_bandit_value_is_expected_max():
    rng = np.random.default_rng(0)
    R = rng.normal(size=(4, 3))
    rho = np.array([0.1, 0.2, 0.3, 0.4])
    mdp = contextual_bandit(R, rho)
    np.testing.assert_allclose(mdp.mu0, rho)
    v = finite_horizon_optimal(mdp)
    assert mdp.mu0 @ v == pytest.approx(float(rho @ R.max(axis=1)))
    # discounted repeated version: contexts redrawn i.i.d., V* = max_a r(x,a) + γ/(1-γ) E_ρ max
    g = 0.8
    d = contextual_bandit(R, rho, horizon=None, gamma=g)
    np.testing.assert_allclose(value_iteration(d), R.max(1) + g / (1 - g) * rho @ R.max(1), rtol=1e-9)


def test_bandit_bad_inputs_raise():
    with pytest.raises(ValueError, match="means"):
        multi_armed_bandit([])
    with pytest.raises(ValueError, match="means"):
        multi_armed_bandit([0.0, np.inf])
    with pytest.raises(ValueError, match="context_probs"):
        contextual_bandit(np.zeros((2, 2)), [0.7, 0.7])
    with pytest.raises(ValueError, match="context_probs"):
        contextual_bandit(np.zeros((2, 2)), [1.0])


# ------------------------------------------------------------------------------ BRIDGE format

TRANS = np.array([[1, 2], [-1, 0], [2, -1]])
REWS = np.array([[0.0, 1.0], [5.0, 0.0], [0.5, 2.0]])


def test_from_deterministic_round_trip_and_terminal():
    mdp = from_deterministic(TRANS, REWS, horizon=3)
    S = TRANS.shape[0]
    assert mdp.num_states == S + 1 and mdp.terminal[S] and mdp.terminal.sum() == 1
    recovered = mdp.P.argmax(axis=-1)
    assert np.all(mdp.P.max(axis=-1) == 1.0)
    np.testing.assert_array_equal(np.where(recovered[:S] == S, -1, recovered[:S]), TRANS)
    np.testing.assert_array_equal(mdp.r[:S], REWS)
    np.testing.assert_array_equal(mdp.r[S], 0.0)
    np.testing.assert_array_equal(mdp.P[S, :, S], 1.0)
    assert mdp.mu0[0] == 1.0 and mdp.gamma == 1.0


def test_from_deterministic_finite_horizon_value_by_enumeration():
    """V*_0(0) equals the best return over all action sequences, found by brute force."""
    import itertools

    for H in (1, 2, 3, 4):
        best = -np.inf
        for seq in itertools.product(range(2), repeat=H):
            s, total = 0, 0.0
            for a in seq:
                if s == -1:
                    break
                total += REWS[s, a]
                s = TRANS[s, a]
            best = max(best, total)
        mdp = from_deterministic(TRANS, REWS, horizon=H)
        assert finite_horizon_optimal(mdp)[0] == pytest.approx(best)


def test_from_deterministic_sparse_and_npz(tmp_path):
    dense = from_deterministic(TRANS, REWS, gamma=0.9)
    sparse = from_deterministic(TRANS, REWS, gamma=0.9, sparse=True)
    np.testing.assert_array_equal(sparse.dense_P(), dense.P)
    path = tmp_path / "toy.npz"
    np.savez(path, transitions=TRANS, rewards=REWS)
    loaded = load_bridge_npz(path, horizon=5)
    np.testing.assert_array_equal(loaded.P, from_deterministic(TRANS, REWS, horizon=5).P)
    assert loaded.name == "toy"
    np.savez(tmp_path / "bad.npz", transitions=TRANS)
    with pytest.raises(ValueError, match="rewards"):
        load_bridge_npz(tmp_path / "bad.npz", horizon=5)


def test_from_deterministic_custom_mu0():
    mdp = from_deterministic(TRANS, REWS, horizon=2, mu0=[0.0, 0.5, 0.5])
    np.testing.assert_allclose(mdp.mu0, [0.0, 0.5, 0.5, 0.0])


@pytest.mark.parametrize(
    ("trans", "rews", "kwargs", "match"),
    [
        (np.array([[1, 3]]), np.zeros((1, 2)), {"horizon": 2}, r"transitions\[0, 0\]"),
        (np.array([[0, -2]]), np.zeros((1, 2)), {"horizon": 2}, r"transitions\[0, 1\]"),
        (np.array([[0.5, 0.0]]), np.zeros((1, 2)), {"horizon": 2}, "integers"),
        (np.array([[0, 0]]), np.zeros((1, 3)), {"horizon": 2}, "rewards"),
        (np.array([[0, 0]]), np.array([[0.0, np.nan]]), {"horizon": 2}, "rewards"),
        (np.array([[0, 0]]), np.zeros((1, 2)), {}, "horizon"),
    ],
)
def test_from_deterministic_bad_inputs_raise(trans, rews, kwargs, match):
    with pytest.raises(ValueError, match=match):
        from_deterministic(trans, rews, **kwargs)


def test_with_done_state_appends_the_absorbing_state_and_zero_reward():
    """BRIDGE's loader convention, by hand: −1 -> S = 2, the done row loops to itself with reward 0; the same check
    (and message) serves from_deterministic and sticky_actions."""
    from rlref.envs.bridge import with_done_state
    from rlref.envs.bridge_mdps import sticky_actions

    nxt, r = with_done_state(np.array([[1, -1], [0.0, 1.0]]), np.array([[0.5, 1.0], [0.0, 2.0]]))
    assert nxt.dtype == np.int64 and nxt.tolist() == [[1, 2], [0, 1], [2, 2]]
    assert r.tolist() == [[0.5, 1.0], [0.0, 2.0], [0.0, 0.0]]
    for build in (lambda T, R: from_deterministic(T, R, horizon=2), lambda T, R: sticky_actions(T, R, horizon=2)):
        with pytest.raises(ValueError, match=r"transitions\[0, 1\] = 5 must lie in \[-1, 2\)"):
            build(np.array([[0, 5], [1, 1]]), np.zeros((2, 2)))


@pytest.mark.parametrize("seed", [-1, -(2**40), 1.5, True, "0"])
def test_a_bad_seed_is_a_value_error_naming_seed(seed):
    """Issue #11 item 18: a negative (or non-integer) seed is refused by name before numpy sees it."""
    with pytest.raises(ValueError, match="seed must be None, a non-negative integer"):
        garnet(4, 2, 2, seed=seed)


def test_env_builders_import_only_the_core():
    """Layering (issue #9): every rlref.envs module imports only the core (no solve, theory,
    algorithms, and no private envs._common)."""
    import ast
    import importlib
    import inspect
    import pkgutil

    import rlref.envs as envs

    core = {"rlref._checks", "rlref.mdp", "rlref.policy", "rlref.divergences"}
    for info in pkgutil.iter_modules(envs.__path__):
        if info.name == "_common":
            continue
        mod = importlib.import_module(f"rlref.envs.{info.name}")
        tree = ast.parse(inspect.getsource(mod))
        used = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("rlref")}
        assert used <= core | {f"rlref.envs.{m.name}" for m in pkgutil.iter_modules(envs.__path__) if m.name != "_common"}, (info.name, used)
