# %% [markdown]
# # Property-testing your own planner with `rlref.testing`
#
# `rlref.testing` exports hypothesis strategies for random tabular MDPs, policies, distributions,
# preference matrices and hostile inputs. A property test states a theorem and lets hypothesis
# search for a counterexample. Here: *your* value iteration must agree with rlref's certified
# optimum on every random discounted MDP, to within the tolerance you asked for.

# %%
import matplotlib.pyplot as plt
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rlref import solve
from rlref.testing import tabular_mdps


def my_value_iteration(mdp, tol=1e-10):
    """Your planner: value iteration from the dense P[s, a, s'] and r[s, a]."""
    P, r, v = mdp.dense_P(), mdp.r, np.zeros(mdp.num_states)
    while True:
        v_new = (r + mdp.gamma * P @ v).max(axis=1)
        if np.abs(v_new - v).max() <= tol * (1 - mdp.gamma) / (2 * mdp.gamma + 1e-300):
            return v_new
        v = v_new


def buggy_value_iteration(mdp):
    """The same planner with a classic bug: the discount is applied twice."""
    P, r, v = mdp.dense_P(), mdp.r, np.zeros(mdp.num_states)
    for _ in range(2000):
        v = (r + mdp.gamma**2 * P @ v).max(axis=1)
    return v


errors = {"my_value_iteration": [], "buggy_value_iteration": []}


def check(planner):
    @settings(max_examples=30, deadline=None, database=None)
    @given(tabular_mdps(max_states=6, max_actions=3, discounted=True), st.just(planner))
    def test_planner_matches_the_certified_optimum(mdp, planner):
        opt = solve.optimal(mdp, epsilon=1e-9)
        err = np.abs(planner(mdp) - opt.values).max()
        errors[planner.__name__].append(err)
        assert err <= 1e-8 + opt.value_error_bound, f"|v - V*| = {err:.3g} on {mdp}"

    test_planner_matches_the_certified_optimum()


check(my_value_iteration)
print("my_value_iteration passes; largest error", max(errors["my_value_iteration"]))

# %% [markdown]
# The buggy planner is caught, and hypothesis shrinks the MDP to a small counterexample.

# %%
try:
    check(buggy_value_iteration)
except AssertionError as failure:
    print("caught:", str(failure).splitlines()[0][:200])
else:
    raise RuntimeError("the property test missed the bug")

# %%
fig, ax = plt.subplots(figsize=(5, 3))
for name, errs in errors.items():
    ax.semilogy(np.maximum(errs, 1e-17), "o", ms=3, label=name)
ax.axhline(1e-8, color="k", lw=0.8, ls="--", label="tolerance")
ax.set_xlabel("hypothesis example")
ax.set_ylabel("‖v − V*‖∞")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig("property_testing.png", dpi=100)

# %% [markdown]
# ![Errors of the two planners over the hypothesis examples](property_testing.png)
