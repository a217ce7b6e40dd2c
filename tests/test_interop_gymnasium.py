"""rlref.interop.gymnasium on the real Gymnasium toy-text environments (FrozenLake, Taxi, CliffWalking).

Golden values come from outside the converter: quantecon's DiscreteDP policy iteration on the raw
FrozenLake table, closed forms of shortest paths (CliffWalking, non-slippery FrozenLake), a
breadth-first search on Taxi's raw table, and Monte-Carlo returns of the real environments.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from rlref.envs import garnet  # noqa: E402
from rlref.interop.gymnasium import from_gymnasium, to_gymnasium  # noqa: E402
from rlref.policy import deterministic_policy, greedy_policy  # noqa: E402
from rlref.solve import optimal, policy_evaluation  # noqa: E402


def _make(family: str, **kwargs):
    """gym.make of the newest registered version of a toy-text family (Taxi-v3 -> v4 across gymnasium releases)."""
    ids = sorted((k for k in gym.envs.registry if k.split("-v")[0] == family), key=lambda k: int(k.rsplit("-v", 1)[1]))
    if not ids:
        pytest.skip(f"gymnasium ships no {family}")
    return gym.make(ids[-1], **kwargs)


def _raw_dense(env):
    """Q[s, a, s'] and R[s, a] read off env.P ignoring the terminated flag (duplicates summed), S = observation_space.n."""
    u = env.unwrapped
    S, A = u.observation_space.n, u.action_space.n
    Q, R = np.zeros((S, A, S)), np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            for p, s2, rew, _ in u.P[s][a]:
                Q[s, a, s2] += p
                R[s, a] += p * rew
    return Q, R


FROZEN = [("4x4", True), ("4x4", False), ("8x8", True), ("8x8", False)]


@pytest.mark.parametrize("map_name,slippery", FROZEN)
def test_frozenlake_vstar_equals_quantecon_policy_iteration_on_the_raw_table(map_name, slippery):
    """FrozenLake's holes and goal are absorbing zero-reward rows in P, so the raw table is the MDP: V* agrees with quantecon's PI."""
    qe = pytest.importorskip("quantecon")
    env = _make("FrozenLake", map_name=map_name, is_slippery=slippery)
    gamma = 0.95
    mdp = from_gymnasium(env, gamma=gamma)
    S = env.unwrapped.observation_space.n
    assert mdp.num_states == S  # no state added: every terminated transition lands in an absorbing zero-reward state
    Q, R = _raw_dense(env)
    res = qe.markov.DiscreteDP(R, Q, gamma).solve(method="policy_iteration")
    ours = optimal(mdp, 1e-10)
    np.testing.assert_allclose(ours.values, res.v, atol=1e-8)
    desc = env.unwrapped.desc.astype(str).ravel()
    np.testing.assert_array_equal(mdp.terminal, np.isin(desc, ["H", "G"]))


def test_slippery_frozenlake_sums_duplicate_next_states():
    """State 0, action LEFT of slippery 4x4 lists s'=0 twice (slip up, move left): P(0|0,LEFT) = 2/3, P(4|0,LEFT) = 1/3."""
    env = _make("FrozenLake", map_name="4x4", is_slippery=True)
    targets = [s2 for _, s2, _, _ in env.unwrapped.P[0][0]]
    assert targets.count(0) == 2  # the duplicate the converter must sum
    P = from_gymnasium(env, gamma=0.9).dense_P()
    np.testing.assert_allclose(P[0, 0, [0, 4]], [2 / 3, 1 / 3], atol=1e-15)
    np.testing.assert_allclose(P.sum(axis=-1), 1.0, atol=1e-12)


def test_nonslippery_frozenlake_vstar_is_discounted_shortest_path():
    """Non-slippery 4x4: the goal is 6 moves from the start and pays 1 on the last, so V*(0) = γ^5 (closed form)."""
    gamma = 0.9
    mdp = from_gymnasium(_make("FrozenLake", map_name="4x4", is_slippery=False), gamma=gamma)
    assert optimal(mdp, 1e-12).values[0] == pytest.approx(gamma**5, abs=1e-10)
    np.testing.assert_array_equal(mdp.mu0, np.eye(16)[0])


def test_cliffwalking_goal_is_made_absorbing_and_vstar_is_the_13_step_path():
    """CliffWalking's goal row keeps moving at reward −1 in P; the converter adds ⊥ (index 48), so V*(start) = −(1 − γ^13)/(1 − γ)."""
    env = _make("CliffWalking")
    S = env.unwrapped.observation_space.n
    goal = S - 1
    assert any(s2 != goal for a in range(4) for _, s2, _, _ in env.unwrapped.P[goal][a])  # not absorbing in the raw table
    gamma = 0.9
    mdp = from_gymnasium(env, gamma=gamma)
    assert mdp.num_states == S + 1 and np.flatnonzero(mdp.terminal).tolist() == [S]
    start = int(np.argmax(env.unwrapped.initial_state_distrib))
    assert optimal(mdp, 1e-12).values[start] == pytest.approx(-(1 - gamma**13) / (1 - gamma), abs=1e-9)
    # the raw table (goal not absorbing) would give a different answer: the conversion matters
    Q, R = _raw_dense(env)
    raw = optimal(type(mdp)(P=Q, R=R, gamma=gamma), 1e-12).values[start]
    assert abs(raw - (-(1 - gamma**13) / (1 - gamma))) > 0.1
    with pytest.raises(ValueError, match="max_episode_steps"):
        from_gymnasium(env, horizon="spec")


def test_taxi_optimal_return_is_21_minus_the_bfs_number_of_moves():
    """Taxi (H = spec's 200, γ = 1): every move costs 1 and the drop-off pays 20, so V*_0(s) = 21 − k(s), k = BFS moves to termination."""
    env = _make("Taxi")
    u = env.unwrapped
    S, A = u.observation_space.n, u.action_space.n
    mdp = from_gymnasium(env, horizon="spec")
    assert mdp.horizon == env.spec.max_episode_steps == 200
    assert mdp.num_states == S + 1 and mdp.terminal[S] and mdp.terminal.sum() == 1
    np.testing.assert_array_equal(mdp.mu0[:S], u.initial_state_distrib)
    # k(s): reverse BFS from the terminating (s, a) pairs on the raw, deterministic table
    pred = [[] for _ in range(S)]
    k = np.full(S, np.inf)
    queue = deque()
    for s in range(S):
        for a in range(A):
            ((_, s2, _, done),) = u.P[s][a]
            if done:
                k[s] = 1
                queue.append(s)
            else:
                pred[s2].append(s)
    while queue:
        t = queue.popleft()
        for s in pred[t]:
            if k[s] == np.inf:
                k[s] = k[t] + 1
                queue.append(s)
    assert np.isfinite(k).all() and k.max() < 200
    np.testing.assert_allclose(optimal(mdp).values[0, :S], 21 - k, atol=1e-12)


def test_rainy_taxi_keeps_its_stochastic_moves():
    """is_rainy=True lives in P: the intended move has probability rainy_probability (0.8), the two lateral ones 0.1 each."""
    try:
        env = _make("Taxi", is_rainy=True)
    except TypeError:
        pytest.skip("this gymnasium's Taxi has no is_rainy")
    P = from_gymnasium(env, gamma=0.9).dense_P()
    probs = np.sort(P[0, 0][P[0, 0] > 0])
    np.testing.assert_allclose(probs, [0.1, 0.1, 0.8], atol=1e-12)


def test_what_cannot_be_converted_exactly_is_refused():
    with pytest.raises(ValueError, match="fickle_passenger"):
        from_gymnasium(_make("Taxi", fickle_passenger=True), gamma=0.9)
    with pytest.raises(ValueError, match="observation_space must be a gymnasium.spaces.Discrete"):
        from_gymnasium(_make("Blackjack"), gamma=0.9)
    with pytest.raises(ValueError, match="observation_space must be a gymnasium.spaces.Discrete"):
        from_gymnasium(gym.make("CartPole-v1"), gamma=0.9)
    env = _make("FrozenLake")
    with pytest.raises(ValueError, match="gamma is required"):
        from_gymnasium(env)
    with pytest.raises(ValueError, match="horizon must be None, 'spec'"):
        from_gymnasium(env, horizon="max")
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        from_gymnasium(env, horizon=0)


def test_a_malformed_table_is_named_by_its_entry():
    mdp = garnet(4, 2, 2, gamma=0.9, seed=0)
    env = to_gymnasium(mdp)
    p, s2, r, d = env.P[2][1][0]
    env.P[2][1][0] = (p * 0.5, s2, r, d)
    with pytest.raises(ValueError, match=r"env.P\[2\]\[1\] probabilities sum to"):
        from_gymnasium(env, gamma=0.9)
    env.P[2][1][0] = (p, 7, r, d)
    with pytest.raises(ValueError, match=r"env.P\[2\]\[1\]\[0\] has next_state 7"):
        from_gymnasium(env, gamma=0.9)
    env.P[2][1][0] = (p, s2, float("nan"), d)
    with pytest.raises(ValueError, match=r"env.P\[2\]\[1\]\[0\] has reward nan"):
        from_gymnasium(env, gamma=0.9)


@pytest.mark.parametrize("sparse", [False, True])
def test_rlref_to_gymnasium_and_back_is_the_same_mdp(sparse):
    """from_gymnasium(to_gymnasium(m)) = m: P exactly, r to rounding, μ0 and the terminal mask."""
    mdp = garnet(12, 3, 4, gamma=0.9, seed=3, sparse=sparse)
    back = from_gymnasium(to_gymnasium(mdp), gamma=0.9, sparse=sparse)
    np.testing.assert_array_equal(back.dense_P(), mdp.dense_P())
    np.testing.assert_allclose(back.r, mdp.r, atol=1e-14)
    np.testing.assert_array_equal(back.mu0, mdp.mu0)
    assert back.is_sparse == sparse and not back.terminal.any()


@pytest.mark.parametrize("family", ["FrozenLake", "Taxi", "CliffWalking"])
def test_gymnasium_to_rlref_to_gymnasium_to_rlref_is_a_fixed_point(family):
    env = _make(family)
    m1 = from_gymnasium(env, horizon=50)
    m2 = from_gymnasium(to_gymnasium(m1), horizon=50)
    np.testing.assert_array_equal(m2.dense_P(), m1.dense_P())
    np.testing.assert_allclose(m2.r, m1.r, atol=1e-14)
    np.testing.assert_array_equal(m2.terminal, m1.terminal)
    np.testing.assert_array_equal(m2.mu0, m1.mu0)


def test_to_gymnasium_is_a_valid_gymnasium_env():
    """gymnasium's own env checker accepts it; reset(seed=) is reproducible; .P and the spec's time limit are exposed."""
    from gymnasium.utils.env_checker import check_env

    mdp = garnet(6, 3, 2, horizon=7, seed=1)
    env = to_gymnasium(mdp)
    check_env(env, skip_render_check=True)
    assert isinstance(env, gym.Env) and env.spec.max_episode_steps == 7 and len(env.P) == 6
    np.testing.assert_array_equal(env.initial_state_distrib, mdp.mu0)
    a = [env.reset(seed=5)[0]] + [env.step(1)[0] for _ in range(7)]
    b = [env.reset(seed=5)[0]] + [env.step(1)[0] for _ in range(7)]
    assert a == b
    with pytest.raises(ValueError, match="max_episode_steps=3 must equal the MDP's horizon 7"):
        to_gymnasium(mdp, max_episode_steps=3)
    with pytest.raises(ValueError, match="action must be an integer"):
        env.step(3)


def _mc_returns(env, actions: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Undiscounted episode returns of the deterministic policy a = actions[s] until termination or truncation."""
    out = np.empty(n)
    s, _ = env.reset(seed=seed)
    for i in range(n):
        if i:
            s, _ = env.reset()
        total, done = 0.0, False
        while not done:
            s, r, term, trunc, _ = env.step(int(actions[s]))
            total += r
            done = term or trunc
        out[i] = total
    return out


def test_monte_carlo_returns_of_to_gymnasium_match_the_exact_value():
    """A fixed random deterministic policy: the mean of 3000 sampled H-step returns is within 4.5 standard errors of V^π_0·μ0."""
    H = 6
    mdp = garnet(8, 3, 3, horizon=H, seed=11)
    actions = np.random.default_rng(0).integers(0, 3, size=8)
    exact = policy_evaluation(mdp, deterministic_policy(actions, 3)).objective
    ret = _mc_returns(to_gymnasium(mdp), actions, 3000, seed=0)
    assert abs(ret.mean() - exact) <= 4.5 * ret.std(ddof=1) / np.sqrt(ret.size)


def test_monte_carlo_on_the_real_frozenlake_matches_the_exact_finite_horizon_value():
    """On gym.make('FrozenLake-v1') itself (TimeLimit 100): a stationary greedy policy's success rate equals its exact V^π_0·μ0
    from from_gymnasium(horizon='spec') within 4.5 standard errors (2000 episodes)."""
    env = _make("FrozenLake", map_name="4x4", is_slippery=True)
    disc = from_gymnasium(env, gamma=0.99)
    actions = np.argmax(greedy_policy(optimal(disc, 1e-10).q, ties="first"), axis=-1)
    fin = from_gymnasium(env, horizon="spec")
    exact = policy_evaluation(fin, deterministic_policy(actions, 4)).objective
    assert 0.3 < exact < 0.9  # a non-trivial success probability
    ret = _mc_returns(env, actions, 2000, seed=0)
    se = np.sqrt(exact * (1 - exact) / ret.size)
    assert abs(ret.mean() - exact) <= 4.5 * se


def test_a_masked_mdp_goes_to_gymnasium_with_its_mask_and_back():
    """to_gymnasium of a masked MDP: env.action_mask, info["action_mask"] (int8 row of the current
    state, usable by action_space.sample(mask=...)), a masked action in step is refused; from_gymnasium
    reads the mask back (same P, r, mask); Taxi's action_mask *method* is not read as a mask."""
    from rlref import TabularMDP

    base = garnet(7, 3, 3, gamma=0.9, seed=4)
    mask = np.random.default_rng(4).random((7, 3)) < 0.5
    mask[:, 2] = True
    mdp = TabularMDP(base.P, base.R, gamma=0.9, mu0=base.mu0, action_mask=mask)
    env = to_gymnasium(mdp)
    np.testing.assert_array_equal(env.action_mask, mask)
    s, info = env.reset(seed=0)
    for _ in range(50):
        assert info["action_mask"].dtype == np.int8
        np.testing.assert_array_equal(info["action_mask"], mask[s].astype(np.int8))
        a = int(env.action_space.sample(mask=info["action_mask"]))
        assert mask[s, a]
        s, _, _, _, info = env.step(a)
    s_bad, a_bad = (int(i) for i in np.argwhere(~mask)[0])
    env.unwrapped.s = s_bad  # put the sampler in a state with a masked action
    with pytest.raises(ValueError, match=f"action {a_bad} is masked in state {s_bad}"):
        env.step(a_bad)
    back = from_gymnasium(env, gamma=0.9)
    np.testing.assert_array_equal(back.action_mask, mask)
    np.testing.assert_allclose(back.dense_P(), mdp.dense_P(), atol=1e-15)
    np.testing.assert_allclose(back.r, mdp.r, atol=1e-12)
    assert from_gymnasium(_make("Taxi"), gamma=0.9).action_mask is None
