"""Tests for rlref.envs.tomato (the tomato-watering gridworld) and the instances built on it in
rlref.theory.correlated_proxies (its reference policy, random r-correlated proxies)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref.algorithms.occupancy_regularized import occupancy_of, solve
from rlref.envs.tomato import DEFAULT_LAYOUT, tomato_gridworld
from rlref.theory.correlated_proxies import proxy_correlation, random_proxy_instance, tomato_reference_policy


def test_sizes_and_rewards():
    env = tomato_gridworld()
    assert env.mdp.num_states == 15 * 16 and env.mdp.num_actions == 5
    on_o = env.on_transformer()
    assert on_o.sum() == 16
    np.testing.assert_allclose(env.proxy_reward[on_o], 0.02 * 4)
    np.testing.assert_allclose(env.proxy_reward[~on_o], env.true_reward[~on_o])
    assert env.true_reward.max() == pytest.approx(0.08) and env.true_reward.min() == 0.0


def test_hand_computed_transition():
    """From the start (row 2, col 3; tomato at (3,1) watered) moving left: agent to (2,2); the
    watered tomato stays watered w.p. 1 − p_dry = 0.95."""
    env = tomato_gridworld(p_dry=0.05)
    P = env.mdp.dense_P()
    s0 = int(np.argmax(env.mdp.mu0))
    assert env.cells[env.state_cell[s0]] == (2, 3)
    row = P[s0, 2]
    nxt = np.flatnonzero(row)
    assert {env.cells[env.state_cell[s]] for s in nxt} == {(2, 2)}
    probs = {int(env.state_mask[s]): row[s] for s in nxt}
    watered_bit = 1 << env.tomatoes.index((3, 1))
    assert probs == pytest.approx({watered_bit: 0.95, 0: 0.05})


def test_stepping_on_a_tomato_waters_it():
    env = tomato_gridworld(p_dry=0.0)
    P = env.mdp.dense_P()
    c = env.cells.index((1, 2))  # right of the tomato at (1, 1)
    s = c * 16 + 0
    nxt = np.flatnonzero(P[s, 2])
    assert len(nxt) == 1
    assert env.cells[env.state_cell[nxt[0]]] == (1, 1)
    assert env.state_mask[nxt[0]] == 1 << env.tomatoes.index((1, 1))


def test_walls_block_moves():
    env = tomato_gridworld(p_dry=0.0)
    P = env.mdp.dense_P()
    c = env.cells.index((1, 1))
    s = c * 16 + 1
    assert env.cells[env.state_cell[int(np.argmax(P[s, 0]))]] == (1, 1)  # up into a wall


def test_proxy_optimum_hacks_and_true_optimum_avoids_the_transformer():
    env = tomato_gridworld()
    pi_ref = tomato_reference_policy(env)
    mu_ref = occupancy_of(env.mdp, pi_ref)
    hack = solve(env.mdp, None, pi_ref, 0.0).occupancy
    honest = solve(env.mdp, env.true_reward, pi_ref, 0.0).occupancy
    assert hack[env.on_transformer()].sum() > 0.5
    assert honest[env.on_transformer()].sum() < 1e-6
    assert np.sum(hack * env.true_reward) < np.sum(mu_ref * env.true_reward)
    assert 0 < proxy_correlation(env.true_reward, env.proxy_reward, mu_ref) < 1


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.0, 1.0))
def test_random_instance_has_exact_correlation(seed, r):
    inst = random_proxy_instance(6, 3, r, np.random.default_rng(seed))
    w = inst.reference_occupancy.ravel()
    c = np.cov(inst.true_reward.ravel(), inst.proxy_reward.ravel(), aweights=w, ddof=0)
    assert c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]) == pytest.approx(r, abs=1e-9)
    np.testing.assert_allclose(inst.mdp.r, inst.proxy_reward)


def test_bad_layout_raises():
    with pytest.raises(ValueError, match=r"layout\[1\]\[1\] = 'x'"):
        tomato_gridworld(("###", "#x#", "###"))
    with pytest.raises(ValueError, match="one 'A', one 'O'"):
        tomato_gridworld(("#####", "#A t#", "#####"))


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="p_dry"):
        tomato_gridworld(DEFAULT_LAYOUT, p_dry=1.5)
    with pytest.raises(ValueError, match="num_states"):
        random_proxy_instance(0, 3, 0.5, np.random.default_rng(0))


def test_tomato_env_module_imports_only_the_core():
    """Layering (issue #9): rlref.envs.tomato is a pure builder; it imports no solver, theory or algorithm."""
    import ast
    import inspect

    import rlref.envs.tomato as mod

    tree = ast.parse(inspect.getsource(mod))
    names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    rl = {n for n in names if n.startswith("rlref")}
    assert rl <= {"rlref._checks", "rlref.mdp", "rlref.policy", "rlref.divergences"}, rl
