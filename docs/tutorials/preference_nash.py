# %% [markdown]
# # A preference game and its Nash point
#
# With a general preference matrix P[y, y'] = P(y ≻ y') (not necessarily from a reward, possibly
# intransitive), "the best response" may not exist: there is no Condorcet winner. The game view
# (Munos et al. 2023, Nash learning from human feedback; Swamy et al. 2024) replaces it by the
# **minimax (von Neumann) winner** π ∈ argmax_π min_π' πᵀPπ', a symmetric Nash equilibrium of
# the zero-sum game with payoff P − ½, whose value is ½. Its KL-regularized version π*_τ
# (`rlref.preferences.regularized_nash`) is unique and tends to a minimax winner as τ → 0.

# %%
import matplotlib.pyplot as plt
import numpy as np

from rlref import games, preferences

# rock-paper-scissors with a fourth, dominated response
P = np.array([
    [0.5, 0.9, 0.2, 0.8],
    [0.1, 0.5, 0.7, 0.6],
    [0.8, 0.3, 0.5, 0.7],
    [0.2, 0.4, 0.3, 0.5],
])
P = preferences.validate_preference_matrix(P)
print("Condorcet winner:", preferences.condorcet_winner(P))

pi = preferences.minimax_winner(P)
print("minimax winner:", pi.round(4), " exploitability:", f"{preferences.exploitability(P, pi):.2e}")
assert preferences.condorcet_winner(P) is None
assert preferences.exploitability(P, pi) <= 1e-9

# %% [markdown]
# An independent check: the zero-sum matrix game A = P − ½ solved for *both* players by
# `rlref.games.matrix_nash` has value 0, and the row strategy is unexploitable.

# %%
nash = games.matrix_nash(P - 0.5)
print(f"value {nash.value:.2e}, duality gap {nash.gap:.2e}, row strategy {nash.x.round(4)}")
assert abs(nash.value) <= 1e-9 and preferences.exploitability(P, nash.x) <= 1e-9

# %% [markdown]
# The regularized equilibrium π*_τ against a uniform reference: its (unregularized)
# exploitability goes to 0 as τ → 0, and its regularized exploitability is 0 at every τ.

# %%
pi_ref = np.full(4, 0.25)
taus = np.geomspace(1e-3, 1.0, 12)
sols = [preferences.regularized_nash(P, pi_ref, tau) for tau in taus]
expl = np.array([preferences.exploitability(P, s.pi) for s in sols])
reg = np.array([preferences.regularized_exploitability(P, s.pi, pi_ref, s.tau) for s in sols])
assert np.all(np.abs(reg) <= 1e-8)
assert expl[0] < 1e-2 and np.all(np.diff(expl) >= -1e-12)
print("tau, exploitability of pi*_tau:", " ".join(f"({t:.3g}, {e:.2e})" for t, e in zip(taus, expl, strict=True)))

fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3))
a1.loglog(taus, np.maximum(expl, 1e-16), "o-")
a1.set_xlabel("τ")
a1.set_ylabel("max_y P(y ≻ π*_τ) − ½")
a2.plot(taus, np.array([s.pi for s in sols]), "o-", ms=3)
a2.set_xscale("log")
a2.set_xlabel("τ")
a2.set_ylabel("π*_τ(y)")
a2.legend([f"y = {k}" for k in range(4)], fontsize=8)
fig.tight_layout()
fig.savefig("preference_nash.png", dpi=100)

# %% [markdown]
# ![Exploitability and the regularized Nash point](preference_nash.png)
