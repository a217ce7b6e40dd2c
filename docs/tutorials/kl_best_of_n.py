# %% [markdown]
# # KL-regularized RL and best-of-n from first principles
#
# On a finite set of responses y with reference π_ref and reward r, the KL-regularized objective
# max_π E_π[r] − β KL(π ‖ π_ref) is solved in closed form by the **tilt**
# π_β(y) = π_ref(y) e^{r(y)/β} / Z_β, with optimal value β log Z_β (Korbak, Perez & Buckley 2022,
# eq. 4; `rlref.theory.kl_regularized.optimal_policy`). Best-of-n (draw n responses from π_ref,
# keep the best) is the other common way to trade KL for reward; its law, reward and KL are
# exact finite sums (Beirami et al. 2024), and its KL is at most log n − (n−1)/n.

# %%
import matplotlib.pyplot as plt
import numpy as np

from rlref.theory import kl_regularized as klr

rng = np.random.default_rng(0)
K = 12
pi_ref = rng.dirichlet(np.ones(K))
r = rng.normal(size=K)

beta = 0.5
by_hand = pi_ref * np.exp(r / beta)
by_hand /= by_hand.sum()                      # the tilt, from its definition
pi_beta = klr.optimal_policy(pi_ref, r, beta)
print("tilt matches its definition:", np.allclose(pi_beta, by_hand, atol=1e-14))
value = pi_beta @ r - beta * klr.kl_divergence(pi_beta, pi_ref)
print(f"E[r] - beta KL at the tilt = {value:.12f};  beta log Z = {klr.optimal_value(pi_ref, r, beta):.12f}")
assert np.isclose(value, klr.optimal_value(pi_ref, r, beta), atol=1e-12)

# %% [markdown]
# No other policy does better: a random one is below β log Z.

# %%
for _ in range(1000):
    pi = rng.dirichlet(np.ones(K))
    assert pi @ r - beta * klr.kl_divergence(pi, pi_ref) <= klr.optimal_value(pi_ref, r, beta) + 1e-12

# %% [markdown]
# Best-of-n: the exact law against Monte Carlo, the exact KL against the bound, and both methods on
# the reward–KL plane. For each n, the tilt with the same KL budget (`kl_constrained`) earns at
# least best-of-n's reward, since it is the optimum of max E_π[r] s.t. KL ≤ Δ.

# %%
n = 8
law = klr.best_of_n_distribution(pi_ref, r, n)
draws = klr.sample_best_of_n(pi_ref, r, n, size=200_000, rng=rng)
empirical = np.bincount(draws, minlength=K) / draws.size
print(f"best-of-{n}: max |exact - Monte Carlo| = {np.abs(law - empirical).max():.4f}")
assert np.abs(law - empirical).max() < 0.01

ns = np.array([1, 2, 4, 8, 16, 32, 64])
bon_kl = np.array([klr.best_of_n_kl(pi_ref, r, k) for k in ns])
bon_r = np.array([klr.best_of_n_reward(pi_ref, r, k) for k in ns])
bound = np.array([klr.best_of_n_kl_bound(k) for k in ns])
assert np.all(bon_kl <= bound + 1e-12)
tilt_r = np.array([klr.kl_constrained(pi_ref, r, d).reward if d > 0 else pi_ref @ r for d in bon_kl])
assert np.all(tilt_r >= bon_r - 1e-9)
for k, a, b, c in zip(ns, bon_kl, bound, tilt_r - bon_r, strict=True):
    print(f"n={k:3d}  KL={a:.4f} <= log n-(n-1)/n={b:.4f}   tilt reward - best-of-n reward = {c:.4f}")

frontier = klr.reward_kl_frontier(pi_ref, r, np.geomspace(0.02, 20, 60))
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(frontier.kls, frontier.rewards, label="tilt π_β (KL-regularized optimum)")
ax.plot(bon_kl, bon_r, "o", label="best-of-n, n = 1…64")
ax.set_xlabel("KL(π ‖ π_ref)  [nats]")
ax.set_ylabel("E_π[r]")
ax.legend()
fig.tight_layout()
fig.savefig("kl_best_of_n.png", dpi=100)

# %% [markdown]
# ![Reward-KL frontier and best-of-n](kl_best_of_n.png)
