# %% [markdown]
# # Exact planning and certificates on FrozenLake
#
# FrozenLake 4×4 (slippery) is small enough to be solved *exactly*. `rlref.solve.optimal` returns
# V* within ε together with a **certificate**: `value_error_bound` bounds ‖v − V*‖∞ and
# `suboptimality_bound` bounds V* − V^π for the greedy policy π it returns (Puterman 1994,
# Thm 6.6.3, the span bounds of MacQueen 1966). We check both against two independent
# computations: the linear program for V* and exact policy evaluation of π.
#
# If gymnasium is installed the MDP is read from gymnasium's own `FrozenLake-v1` transition table
# (`rlref.interop.gymnasium.from_gymnasium`: a terminated transition goes to an absorbing
# zero-reward state). Without gymnasium the same map is built with
# `rlref.envs.gridworld`, holes as zero-reward absorbing cells; its slip model differs from
# gymnasium's (slip/3 to each *other* direction, where gymnasium slips only sideways).

# %%
import matplotlib.pyplot as plt
import numpy as np

from rlref import envs, solve

MAP = ["SFFF", "FHFH", "FFFH", "HFFG"]
GAMMA = 0.95
try:
    import gymnasium

    from rlref.interop.gymnasium import from_gymnasium

    mdp = from_gymnasium(gymnasium.make("FrozenLake-v1", desc=MAP, is_slippery=True), gamma=GAMMA)
    ARROWS = "←↓→↑"                      # gymnasium's action order: left, down, right, up
    source = "gymnasium FrozenLake-v1"
except ImportError:
    holes = {(r, c): 0.0 for r, row in enumerate(MAP) for c, ch in enumerate(row) if ch == "H"}
    layout = [row.replace("F", ".").replace("H", "G") for row in MAP]
    mdp = envs.gridworld(layout, slip=2 / 3, gamma=GAMMA, goal_rewards=holes)
    ARROWS = "↑↓→←"                      # rlref.envs.ACTIONS: up, down, right, left
    source = "rlref.envs.gridworld (no gymnasium)"
print(source, "S =", mdp.num_states, "A =", mdp.num_actions)

# %% [markdown]
# Solve, then check the certificate against the LP optimum and against exact evaluation of the
# returned policy.

# %%
opt = solve.optimal(mdp, epsilon=1e-8)
lp = solve.lp_value(mdp)                     # V* by the value LP (HiGHS), an independent solver
ev = solve.policy_evaluation(mdp, opt.policy)  # V^π by a linear solve

value_error = np.abs(opt.values - lp.values).max()
regret = (lp.values - ev.values).max()
print(f"method {opt.method}: {opt.iterations} iterations, residual {opt.bellman_residual:.2e}")
print(f"|v - V*|_inf = {value_error:.2e}  <=  value_error_bound = {opt.value_error_bound:.2e}")
print(f"max_s V*(s) - V^pi(s) = {regret:.2e}  <=  suboptimality_bound = {opt.suboptimality_bound:.2e}")
assert value_error <= opt.value_error_bound + 1e-9        # 1e-9: the LP's own tolerance
assert regret <= opt.suboptimality_bound + 1e-9
assert opt.suboptimality_bound <= 1e-8
print("V*(start) =", round(float(mdp.mu0 @ opt.values), 6))

# %% [markdown]
# The value of each cell and the greedy action (a hole or the goal has none).

# %%
V = opt.values[:16].reshape(4, 4)            # cells in row-major order (an extra absorbing state, if any, is last)
actions = opt.policy[:16].argmax(axis=1).reshape(4, 4)
fig, ax = plt.subplots(figsize=(4, 4))
ax.imshow(V, cmap="viridis")
for r in range(4):
    for c in range(4):
        ch = MAP[r][c]
        label = ch if ch in "HG" else ARROWS[actions[r, c]]
        ax.text(c, r, f"{label}\n{V[r, c]:.3f}", ha="center", va="center", color="w" if V[r, c] < V.max() / 2 else "k")
ax.set_xticks([])
ax.set_yticks([])
ax.set_title(f"FrozenLake 4x4, slippery, γ = {GAMMA}: V* and π*")
fig.tight_layout()
fig.savefig("frozenlake_planning.png", dpi=100)

# %% [markdown]
# ![FrozenLake V* and the greedy policy](frozenlake_planning.png)
