"""rlref.llm: the seed papers' language-model objectives as composable torch functions.

Requires the ``llm`` extra (torch). The rest of rlref never imports this package eagerly.
Submodules are loaded on first attribute access, so ``import rlref.llm`` stays cheap.

The core (what every recipe builds on):

* :mod:`rlref.llm.logprobs`    — token log-probs / entropies from logits or hidden states (chunked).
* :mod:`rlref.llm.divergences` — the one place for tensor divergences: k1/k2/k3 KL estimators,
  exact categorical KL, TV.
* :mod:`rlref.llm.losses`      — aggregation, the PPO clip (clip-higher, dual clip), KL losses and penalties.
* :mod:`rlref.llm.advantages`  — GRPO, Dr. GRPO, RLOO, REINFORCE++, group-mean/batch-std, GAE, T-PPO's EGAE.

One module per family of seed-paper objectives (a paper's code is in one place):

* :mod:`rlref.llm.surrogates`  — PPO-surrogate variants: GSPO, CISPO, SAPO, VESPO.
* :mod:`rlref.llm.entropy`     — entropy control: entropy bonus, SIREN, EPO, AEPO, Lp-Reg, T1.
* :mod:`rlref.llm.length`      — length and efficiency: DLER, TLDR, Kimi k1.5, DAPO overlong, cosine,
  GRPO-λ, HAPO, Train-Long-Think-Short, s1 budget forcing, DRPO, APO, GUI-G1
  (:mod:`rlref.llm.rewards` re-exports its rewards under their first names).
* :mod:`rlref.llm.preference`  — DPO, IPO, RPO, XPO, LD-DPO, INPO, SPO, RTO.
* :mod:`rlref.llm.reference`   — regularization toward a reference/demonstration: demonstration-regularized
  RL, χ² occupancy regularization (correlated proxies).
* :mod:`rlref.llm.agents`      — multi-turn agents: IGPO, EMPG, duration-aware updates.
* :mod:`rlref.llm.composite`   — checklist and composite rewards for long-form generation: ACE-RL, LongWriter-Zero.
* :mod:`rlref.llm.critic`      — value-network regularizers: BEER.
* :mod:`rlref.llm.diffusion`   — RL for masked-diffusion LMs: the ELBO objective and BGPO's linear bound.

Around them:

* :mod:`rlref.llm.train`       — the training loop over Hugging Face causal LMs (``rlref train``): GRPO, DPO,
  SFT and self-play families, DDP/FSDP2, checkpoint/resume (needs the ``hf`` extra).
* :mod:`rlref.llm.adapters`    — TRL and verl adapters: length rewards in TRL's ``reward_funcs`` convention,
  every GRPOTrainer ``loss_type`` from rlref primitives, rlref estimators/losses in verl's registries.

And :mod:`rlref.llm.tokentree`, the token-tree bridge to the exact tabular optima.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = [
    "logprobs",
    "divergences",
    "losses",
    "surrogates",
    "advantages",
    "entropy",
    "length",
    "rewards",
    "preference",
    "reference",
    "agents",
    "composite",
    "critic",
    "diffusion",
    "tokentree",
    "train",
    "adapters",
]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"rlref.llm.{name}")
    raise AttributeError(f"module 'rlref.llm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | {"__doc__", "__name__", "__all__"})
