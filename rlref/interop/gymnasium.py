"""Converters between rlref's TabularMDP and Gymnasium's toy-text environments (optional extra ``interop``).

A Gymnasium toy-text environment (FrozenLake, Taxi, CliffWalking) carries its dynamics in a table
``env.unwrapped.P[s][a] = [(prob, next_state, reward, terminated), ...]`` and its start
distribution in ``env.unwrapped.initial_state_distrib``; ``step`` samples one entry of the list and
``reset`` samples the start state. The MDP it defines (derived here from the toy-text source,
``gymnasium/envs/toy_text/*.py``, Gymnasium 1.x):

    P(s'|s, a) = Σ_{(p, s', ·, False) ∈ P[s][a]} p              (duplicates of s' summed: slippery
                                                                   FrozenLake lists the same s' twice)
    P(⊥|s, a)  = Σ_{(p, ·, ·, True) ∈ P[s][a]} p                 (a terminated transition ends the episode:
                                                                   it goes to an absorbing zero-reward state ⊥)
    r(s, a)    = Σ_{(p, ·, ρ, ·) ∈ P[s][a]} p · ρ                 (the reward of the transition is collected
                                                                   before the episode ends)

⊥ is the transition's own target when that state is already absorbing with zero reward in ``P``
(FrozenLake's holes and goal), else one added state with index ``S = observation_space.n`` (needed
for CliffWalking, whose goal row in ``P`` keeps moving with reward −1, and for Taxi, whose drop-off
lands in an ordinary state). Every ⊥ is marked in ``TabularMDP.terminal``. The episode's time limit
(``TimeLimit`` wrapper, ``spec.max_episode_steps``) makes the problem a finite-horizon one with
H = max_episode_steps: V_0(s) is the expected undiscounted return of an episode that starts in s.

What is not an exact table is refused (ValueError): non-Discrete spaces (Blackjack's Tuple, any
Box), an environment without ``P``, Taxi with ``fickle_passenger=True`` (the passenger's change of
destination happens in ``step()``, not in ``P``), a table whose rows are not distributions.

References: Towers et al. (2024), "Gymnasium: A Standard Interface for Reinforcement Learning
Environments", arXiv:2407.17032 (the Env API: ``reset(seed=)`` -> (obs, info), ``step(a)`` ->
(obs, reward, terminated, truncated, info)); the toy-text sources for the table layout.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import scipy.sparse as sp

from rlref._checks import DIST_ATOL, check_count, check_finite
from rlref.mdp import TabularMDP

__all__ = ["from_gymnasium", "to_gymnasium", "tabular_env_class"]


def _gym():
    try:
        import gymnasium
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("rlref.interop.gymnasium needs gymnasium: pip install gymnasium (or pip install -e '.[interop]')") from exc
    return gymnasium


def _discrete_size(space: Any, name: str) -> int:
    """n of a gymnasium ``Discrete`` space starting at 0; ValueError naming the space otherwise."""
    gym = _gym()
    if not isinstance(space, gym.spaces.Discrete):
        raise ValueError(f"{name} must be a gymnasium.spaces.Discrete for an exact tabular conversion, got {space!r}")
    if int(space.start) != 0:
        raise ValueError(f"{name} must start at 0, got Discrete(n={int(space.n)}, start={int(space.start)})")
    return int(space.n)


def _resolve_horizon(env: Any, horizon: Any) -> int | None:
    if horizon is None:
        return None
    if isinstance(horizon, str):
        if horizon != "spec":
            raise ValueError(f"horizon must be None, 'spec' or a positive integer, got {horizon!r}")
        spec = getattr(env, "spec", None)
        steps = None if spec is None else spec.max_episode_steps
        if steps is None:
            raise ValueError(f"horizon='spec' needs env.spec.max_episode_steps, but {getattr(spec, 'id', 'the env')!r} has none: pass horizon=H")
        return check_count("env.spec.max_episode_steps", steps)
    return check_count("horizon", horizon)


def _read_table(P: Any, S: int, A: int) -> list[list[list[tuple[float, int, float, bool]]]]:
    """env.P as nested lists, each entry checked (index, probability, reward) with the offending P[s][a][k] named."""
    table = []
    for s in range(S):
        try:
            row = P[s]
        except (KeyError, IndexError) as exc:
            raise ValueError(f"env.P has no entry for state {s} (observation_space.n = {S})") from exc
        acts = []
        for a in range(A):
            try:
                entries = row[a]
            except (KeyError, IndexError) as exc:
                raise ValueError(f"env.P[{s}] has no entry for action {a} (action_space.n = {A})") from exc
            out = []
            total = 0.0
            for k, entry in enumerate(entries):
                if len(entry) != 4:
                    raise ValueError(f"env.P[{s}][{a}][{k}] must be (prob, next_state, reward, terminated), got {entry!r}")
                p, s2, rew, done = entry
                p, rew = float(p), float(rew)
                if not (np.isfinite(p) and 0.0 <= p <= 1.0 + DIST_ATOL):
                    raise ValueError(f"env.P[{s}][{a}][{k}] has probability {p!r}, not in [0, 1]")
                if not np.isfinite(rew):
                    raise ValueError(f"env.P[{s}][{a}][{k}] has reward {rew!r}, not finite")
                if isinstance(s2, (bool, np.bool_)) or not isinstance(s2, (int, np.integer)) or not 0 <= int(s2) < S:
                    raise ValueError(f"env.P[{s}][{a}][{k}] has next_state {s2!r}, not an integer in [0, {S})")
                out.append((p, int(s2), rew, bool(done)))
                total += p
            if abs(total - 1.0) > DIST_ATOL:
                raise ValueError(f"env.P[{s}][{a}] probabilities sum to {total!r}, not 1")
            acts.append(out)
        table.append(acts)
    return table


def _absorbing_zero_reward(row: list[list[tuple[float, int, float, bool]]], s: int) -> bool:
    """Every action of state s stays in s with probability 1 and earns reward 0."""
    return all(all(p == 0.0 or (s2 == s and rew == 0.0) for p, s2, rew, _ in entries) for entries in row)


def from_gymnasium(
    env: Any,
    *,
    gamma: float | None = None,
    horizon: int | str | None = None,
    sparse: bool = False,
    name: str | None = None,
) -> TabularMDP:
    """The TabularMDP of a Gymnasium toy-text environment's table ``env.unwrapped.P`` (see the module docstring).

    P(s'|s, a) sums the probabilities of the non-terminated entries for s' (duplicates summed);
    terminated entries go to an absorbing zero-reward state ⊥ (the target itself when it is already
    absorbing with zero reward in ``P``, else one added state of index ``observation_space.n``);
    r(s, a) = Σ p·reward over the list; μ0 = ``initial_state_distrib`` (0 on an added ⊥);
    ``terminal`` marks every ⊥.

    horizon: None (discounted; ``gamma`` in [0, 1) required), ``"spec"`` (H = ``env.spec.max_episode_steps``,
    the TimeLimit of ``gym.make``) or an int H; a finite horizon takes ``gamma`` (default 1).
    sparse: build P as a CSR (S·A, S) matrix (for large tables) instead of a dense array.
    An env with an array attribute ``action_mask`` of shape (S, A) (as :func:`to_gymnasium` writes for
    a masked MDP) gives the MDP that ``action_mask`` (an added ⊥ allows every action). Toy-text envs
    have no invalid actions (Taxi's ``action_mask(state)`` method marks actions that change the
    state; the others are legal moves), so they convert without a mask.

    Shapes: P[s, a, s'] with S = observation_space.n (+1 if ⊥ is added), A = action_space.n.
    Raises ValueError for non-Discrete spaces, an env without ``P`` or ``initial_state_distrib``,
    Taxi with ``fickle_passenger=True``, a malformed table entry (naming ``P[s][a][k]``), or a bad
    gamma/horizon.
    References: the Gymnasium toy-text sources (table layout); the MDP above is derived here.
    """
    u = getattr(env, "unwrapped", env)
    S = _discrete_size(getattr(u, "observation_space", None), "env.observation_space")
    A = _discrete_size(getattr(u, "action_space", None), "env.action_space")
    if getattr(u, "fickle_passenger", False):
        raise ValueError("env has fickle_passenger=True: Taxi's change of destination happens in step(), not in env.P, so no exact table exists")
    if not hasattr(u, "P"):
        raise ValueError(f"env {type(u).__name__} has no transition table P[s][a] = [(prob, next_state, reward, terminated), ...]")
    if not hasattr(u, "initial_state_distrib"):
        raise ValueError(f"env {type(u).__name__} has no initial_state_distrib")
    H = _resolve_horizon(env, horizon)
    table = _read_table(u.P, S, A)

    # where each terminated entry goes: its own target if already absorbing with zero reward, else the added ⊥
    targets = {s2 for row in table for entries in row for _, s2, _, done in entries if done}
    reuse = {t for t in targets if _absorbing_zero_reward(table[t], t)}
    extra = any(t not in reuse for t in targets)
    S_out = S + int(extra)
    bottom = S

    rows, cols, vals = [], [], []
    r = np.zeros((S_out, A))
    for s in range(S):
        for a in range(A):
            for p, s2, rew, done in table[s][a]:
                rows.append(s * A + a)
                cols.append(s2 if (not done or s2 in reuse) else bottom)
                vals.append(p)
                r[s, a] += p * rew
    if extra:
        rows.extend(bottom * A + a for a in range(A))
        cols.extend([bottom] * A)
        vals.extend([1.0] * A)
    # coo -> csr sums duplicate (row, col) entries: slippery FrozenLake's repeated s'
    P = sp.csr_matrix((np.asarray(vals, dtype=np.float64), (np.asarray(rows), np.asarray(cols))), shape=(S_out * A, S_out))
    P.sum_duplicates()
    if not sparse:
        P = P.toarray().reshape(S_out, A, S_out)

    mu = np.asarray(u.initial_state_distrib, dtype=np.float64).ravel()
    if mu.shape != (S,):
        raise ValueError(f"env.initial_state_distrib must have shape ({S},), got {mu.shape}")
    check_finite("env.initial_state_distrib", mu)
    mu0 = np.concatenate([mu, np.zeros(S_out - S)])
    terminal = np.zeros(S_out, dtype=bool)
    terminal[sorted(reuse)] = True
    if extra:
        terminal[bottom] = True
    spec = getattr(env, "spec", None)
    label = name if name is not None else (spec.id if spec is not None else type(u).__name__)
    mask = getattr(u, "action_mask", None)
    if mask is not None and not callable(mask):
        mask = np.asarray(mask)
        if mask.shape != (S, A):
            raise ValueError(f"env.action_mask must have shape (S, A) = ({S}, {A}), got {mask.shape}")
        mask = np.vstack([mask.astype(bool), np.ones((S_out - S, A), dtype=bool)])
    else:
        mask = None
    return TabularMDP(P=P, R=r, gamma=gamma, horizon=H, mu0=mu0, terminal=terminal, name=label, action_mask=mask)


_ENV_CLASS = None


class _Rebuild:
    """The entry point of a converted env's spec: rebuilds the same env (short repr, unlike a partial holding P)."""

    def __init__(self, cls: type, *args: Any) -> None:
        self.cls, self.args = cls, args

    def __call__(self, **kwargs: Any):
        return self.cls(*self.args)

    def __repr__(self) -> str:
        return f"<rebuild {self.cls.__name__} {self.args[3]!r}>"


def tabular_env_class():
    """The ``gymnasium.Env`` subclass returned by :func:`to_gymnasium` (built on first use, so gymnasium stays optional)."""
    global _ENV_CLASS
    if _ENV_CLASS is not None:
        return _ENV_CLASS
    gym = _gym()

    class TabularMDPEnv(gym.Env):
        """A TabularMDP as a Gymnasium environment in the toy-text layout.

        ``P[s][a] = [(prob, next_state, reward, terminated), ...]`` (terminated = the next state is
        terminal in the MDP), ``initial_state_distrib``; ``reset(seed=)`` samples s ~ μ0, ``step(a)``
        samples one entry and truncates after ``max_episode_steps`` steps (also in ``spec``).
        With an ``action_mask`` (S, A): ``info["action_mask"]`` is the int8 row of the current state
        (gymnasium's convention: ``env.action_space.sample(mask=info["action_mask"])``) and
        ``step`` refuses a masked action with a ValueError.
        """

        metadata = {"render_modes": []}

        def __init__(self, P: dict, initial_state_distrib: np.ndarray, max_episode_steps: int | None, name: str,
                     action_mask: np.ndarray | None = None) -> None:
            S, A = len(P), len(P[0])
            self.P = P
            self.initial_state_distrib = initial_state_distrib
            self.action_mask = action_mask
            self.observation_space = gym.spaces.Discrete(S)
            self.action_space = gym.spaces.Discrete(A)
            self.max_episode_steps = max_episode_steps
            # a callable entry point, so that spec.make() (used by gymnasium's env checker) rebuilds the same env
            self.spec = gym.envs.registration.EnvSpec(
                id=f"rlref/{name}", entry_point=_Rebuild(type(self), P, initial_state_distrib, max_episode_steps, name, action_mask),
                max_episode_steps=max_episode_steps,
            )
            self._cum = [[np.cumsum([e[0] for e in P[s][a]]) for a in range(A)] for s in range(S)]
            self._mu_cum = np.cumsum(initial_state_distrib)
            self.s: int | None = None
            self._elapsed = 0

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            super().reset(seed=seed)
            self.s = int(min(np.searchsorted(self._mu_cum, self.np_random.random(), side="right"), len(self._mu_cum) - 1))
            self._elapsed = 0
            return self.s, self._info(float(self.initial_state_distrib[self.s]))

        def _info(self, prob: float) -> dict:
            if self.action_mask is None:
                return {"prob": prob}
            return {"prob": prob, "action_mask": self.action_mask[self.s].astype(np.int8)}

        def step(self, action):
            if self.s is None:
                raise RuntimeError("call reset() before step()")
            if not self.action_space.contains(action):
                raise ValueError(f"action must be an integer in [0, {self.action_space.n}), got {action!r}")
            a = int(action)
            if self.action_mask is not None and not self.action_mask[self.s, a]:
                raise ValueError(f"action {a} is masked in state {self.s} (info['action_mask'] = {self.action_mask[self.s].astype(int).tolist()})")
            cum = self._cum[self.s][a]
            k = int(min(np.searchsorted(cum, self.np_random.random() * cum[-1], side="right"), len(cum) - 1))
            p, s2, rew, done = self.P[self.s][a][k]
            self.s = s2
            self._elapsed += 1
            truncated = (not done) and self.max_episode_steps is not None and self._elapsed >= self.max_episode_steps
            return s2, rew, done, truncated, self._info(p)

    _ENV_CLASS = TabularMDPEnv
    return _ENV_CLASS


def to_gymnasium(mdp: TabularMDP, *, max_episode_steps: int | None = None):
    """A ``gymnasium.Env`` (toy-text layout, Discrete spaces) that samples the MDP, for checking sample-based agents.

    ``env.P[s][a]`` lists (P(s'|s,a), s', reward, terminated) for each s' with P(s'|s,a) > 0, where the
    reward is R[s, a, s'] if the MDP was given rewards per transition, else r[s, a], and terminated
    = ``mdp.terminal[s']``; ``env.initial_state_distrib`` = μ0. ``from_gymnasium(to_gymnasium(m), gamma=m.gamma)``
    gives back m's P, r, μ0, terminal mask and action mask (r up to rounding of Σ p·r).
    A masked MDP's env carries ``env.action_mask`` (S, A) and ``info["action_mask"]`` (int8, the
    current state's row) and refuses a masked action in ``step`` (gymnasium's ``check_env`` samples
    unmasked actions, so it applies to unmasked MDPs); ``env.P`` keeps the (unused) rows there.
    A finite-horizon MDP truncates episodes after H steps (``max_episode_steps`` defaults to H and
    must equal it); a discounted one truncates after ``max_episode_steps`` if given (the env does not
    discount: the return's discount is the agent's).
    Raises ValueError for a stage-dependent MDP (P or r depending on h cannot live in a stationary
    table) or a max_episode_steps that is not a positive integer or disagrees with the horizon.
    """
    if mdp.is_stage_dependent:
        raise ValueError("to_gymnasium needs a stationary MDP: P[h] / r[h] depending on the stage h cannot be written as env.P[s][a]")
    H = mdp.horizon
    if max_episode_steps is not None:
        max_episode_steps = check_count("max_episode_steps", max_episode_steps)
        if H is not None and max_episode_steps != H:
            raise ValueError(f"max_episode_steps={max_episode_steps} must equal the MDP's horizon {H} (or be left None)")
    steps = H if max_episode_steps is None else max_episode_steps
    S, A = mdp.num_states, mdp.num_actions
    Pm = mdp.transition_matrix()
    Pm = Pm.tocsr() if sp.issparse(Pm) else sp.csr_matrix(Pm)
    Rsas = None
    if mdp.reward_axes == "sas":
        Rsas = mdp.R if sp.issparse(mdp.R) else np.asarray(mdp.R).reshape(S * A, S)
        Rsas = sp.csr_matrix(Rsas) if sp.issparse(Rsas) else Rsas
    term = np.zeros(S, dtype=bool) if mdp.terminal is None else np.asarray(mdp.terminal)
    r = mdp.r
    P: dict[int, dict[int, list]] = {}
    for s in range(S):
        P[s] = {}
        for a in range(A):
            i = s * A + a
            lo, hi = Pm.indptr[i], Pm.indptr[i + 1]
            idx, prob = Pm.indices[lo:hi], Pm.data[lo:hi]
            order = np.argsort(idx)
            entries = []
            for j in order:
                if prob[j] <= 0.0:
                    continue
                t = int(idx[j])
                rew = float(r[s, a]) if Rsas is None else float(Rsas[i, t])
                entries.append((float(prob[j]), t, rew, bool(term[t])))
            P[s][a] = entries
    cls = tabular_env_class()
    label = re.sub(r"[^\w:.-]", "_", mdp.name) or "mdp"
    mask = None if mdp.action_mask is None else np.array(mdp.action_mask)
    return cls(P, np.array(mdp.mu0, dtype=np.float64), steps, label, mask)
