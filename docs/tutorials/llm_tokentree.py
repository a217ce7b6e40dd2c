# %% [markdown]
# # An LLM objective on the token tree, reaching its exact optimum
#
# A language model with vocabulary V and length ≤ L is a tabular MDP on prefixes; for V = 3,
# L = 3 every response can be enumerated (`rlref.tokentree.TokenTree`). We train a torch policy with
# one free logit row per prefix (`rlref.llm.tokentree.TabularLogitPolicy`) on the **DPO loss**
# (Rafailov et al. 2023, eq. 7, `rlref.llm.preference.dpo_loss`) with Bradley–Terry preferences and
# pairs from π_ref, taken as an *exact* population loss over every (chosen, rejected) outcome
# (`exact_pairs`). Its minimizer is the KL-regularized optimum π_ref(y) e^{r(y)/β}/Z (Rafailov et
# al. 2023, §4–5), computed independently in numpy by `rlref.theory.kl_regularized.optimal_policy`.
# Requires torch (`pip install -e ".[llm]"`).

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from rlref.llm import preference
from rlref.llm.tokentree import TabularLogitPolicy, exact_pairs, train, tv_distance
from rlref.preferences import bradley_terry
from rlref.theory.kl_regularized import optimal_policy
from rlref.tokentree import TokenTree

rng = np.random.default_rng(0)
tree = TokenTree(3, 3, eos=0)
pi_ref = tree.random_policy(rng, concentration=3.0)       # a reference "model", per prefix
p_ref = tree.sequence_distribution(pi_ref)                 # its law over the Y responses
r = rng.normal(size=tree.num_sequences)                    # a sequence reward
beta = 0.8
target = optimal_policy(p_ref, r, beta)
print("responses:", tree.num_sequences)

ref = TabularLogitPolicy(tree, init=pi_ref)
with torch.no_grad():
    ref_seq = ref.sequence_logprobs()
pairs = exact_pairs(p_ref, bradley_terry(r))
policy = TabularLogitPolicy(tree)                          # starts uniform
tvs = []


def population_dpo_loss():
    seq = policy.sequence_logprobs()
    c, d = pairs.chosen, pairs.rejected
    res = preference.dpo_loss(seq[c], seq[d], ref_seq[c], ref_seq[d], beta)
    with torch.no_grad():
        tvs.append(tv_distance(policy.sequence_distribution(), target))
    return (pairs.weights * res.losses).sum()


train(policy, population_dpo_loss, steps=200, optimizer="lbfgs")
final_tv = tv_distance(policy.sequence_distribution(), target)
print(f"TV(trained policy, pi_ref e^(r/beta)/Z) = {final_tv:.2e}")
assert final_tv <= 1e-4

# %%
fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogy(tvs)
ax.set_xlabel("loss evaluation (L-BFGS)")
ax.set_ylabel("TV to the exact optimum")
ax.set_title("population DPO on a V=3, L=3 token tree")
fig.tight_layout()
fig.savefig("llm_tokentree.png", dpi=100)

# %% [markdown]
# ![TV distance to the exact optimum during training](llm_tokentree.png)
