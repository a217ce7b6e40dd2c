"""Divergences between token distributions, for tensors: the one place of ``rlref.llm`` for KL and TV.

The numpy divergences of the tabular core live in :mod:`rlref.divergences`; these are their torch
counterparts, differentiable and safe on masked vocabularies (−inf logits).

* :func:`kl_penalty` — per-token *estimates* of KL(π_θ ‖ π_ref) from tokens sampled from π_θ
  (Schulman 2020, "Approximating KL divergence"), with log r = log π_ref(y) − log π_θ(y):
  k1 = −log r (unbiased), k2 = ½ (log r)² (biased, low variance), k3 = (r − 1) − log r
  (unbiased, ≥ 0, low variance), and "k3+" (the value of k3 with the gradient of k2).
* :func:`categorical_kl` / :func:`exact_token_kl` — the exact KL over the vocabulary,
  Σ_v p_v (log p_v − log q_v), with 0·log 0 = 0 and +inf outside q's support.
* :func:`categorical_tv` — total variation ½ Σ_v |p_v − q_v|.
"""

from __future__ import annotations

import torch

from rlref.llm._checks import check_choice, check_float_tensor, check_logits, check_same_shape

__all__ = ["KL_ESTIMATORS", "kl_penalty", "categorical_entropy", "categorical_kl", "exact_token_kl", "categorical_tv"]

KL_ESTIMATORS = ("k1", "k2", "k3", "k3+")


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(π_θ ‖ π_ref) from tokens sampled from π_θ.

    log r = ref_logp − logp;  k1 = −log r;  k2 = ½ (log r)²;  k3 = (r − 1) − log r (via ``expm1``);
    k3+ = sg(k3) + k2 − sg(k2) (sg = stop-gradient): the value of k3, the gradient of k2.
    E_{y∼π_θ}[k1] = E[k3] = KL(π_θ ‖ π_ref) (unbiased); k2 is biased (its mean is KL up to
    third order in log r); k3 ≥ 0 pointwise. As a *reward penalty* use −β·k1 detached
    (``kl_reward``). As a *loss* (``aggregate(kl_penalty(...), mask)``, differentiated through
    log π_θ(y) with y fixed) the expected per-position gradients differ by estimator:
    k1 -> 0; k2 -> ∇ KL(π_θ ‖ π_ref) (the intended direction); k3 (GRPO's choice) -> ∇ KL(π_ref ‖ π_θ),
    the *reverse* KL; k3+ -> ∇ KL(π_θ ‖ π_ref) (unbiased, like k2) while its logged value stays the
    unbiased, non-negative k3 (exact identities for one position, checked in tests/test_llm_k3.py;
    across positions the pathwise gradient also ignores a token's effect on later positions).
    No mask: every entry is used (the masked wrappers ``kl_loss``/``kl_reward`` check their valid entries).
    Unlike verl's ``low_var_kl`` no clamp is applied (verl clamps log r to [−20, 20] and k3 to ≤ 10).

    Shapes: logp[...], ref_logp[...] (same shape) -> [...], elementwise.
    Raises ValueError for an unknown estimator or a shape mismatch.

    References: Schulman (2020), "Approximating KL divergence" (k1, k2, k3); Shao et al. (2024),
    "DeepSeekMath", eq. (4) (k3 as a loss); Tang & Munos (2025), "On a few pitfalls in KL divergence
    gradient estimation for RL" (the gradients of the estimators as losses); verl 0.9.1,
    verl/trainer/ppo/core_algos.py ``kl_penalty`` (the "+" suffix: a straight-through k2 gradient under
    a k1/k3 value, e.g. ``kl_loss_type="k3+"``).
    """
    est = check_choice("estimator", estimator, KL_ESTIMATORS)
    lp = check_float_tensor("logp", logp)
    ref = check_float_tensor("ref_logp", ref_logp)
    check_same_shape(("logp", "ref_logp"), (lp, ref))
    log_r = ref - lp
    if est == "k1":
        return -log_r
    if est == "k2":
        return 0.5 * log_r**2
    k3 = torch.expm1(log_r) - log_r
    if est == "k3":
        return k3
    k2 = 0.5 * log_r**2
    return k3.detach() + (k2 - k2.detach())


def categorical_entropy(logp: torch.Tensor) -> torch.Tensor:
    """Shannon entropy H(p) = −Σ_v p_v log p_v over the last axis, from log-probabilities.

    0·log 0 = 0 with a zero (never NaN) gradient: log p_v = −inf entries contribute nothing.

    Shapes: logp[..., V] (normalized; −inf allowed) -> [...].

    References: Cover & Thomas (2006), eq. (2.1).
    """
    p = logp.exp()
    on = p > 0
    zero = torch.zeros_like(p)
    return -torch.where(on, p * torch.where(on, logp, zero), zero).sum(-1)


def categorical_kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) = Σ_v p_v (log p_v − log q_v) over the last axis, from log-probabilities.

    0·log 0 = 0 (entries with p_v = 0 contribute exactly 0, whatever log q_v, and have a zero —
    never NaN — gradient); +inf where p_v > 0 = q_v.

    Shapes: logp[..., V], logq[..., V] (normalized log-probabilities; −inf allowed) -> [...].

    References: Cover & Thomas (2006), eq. (2.26).
    """
    p = logp.exp()
    on = p > 0
    zero = torch.zeros_like(p)
    diff = torch.where(on, logp, zero) - torch.where(on, logq, zero)
    return torch.where(on, p * diff, zero).sum(-1)


def exact_token_kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """Exact per-position KL(softmax(logits) ‖ softmax(ref_logits)) = Σ_v π (log π − log π_ref).

    Shapes: logits[..., V], ref_logits[..., V] -> [...]. 0·log 0 = 0; +inf where π puts mass outside
    π_ref's support. Computed in log space; −inf logits (a vocabulary mask) give finite gradients.
    Raises ValueError on NaN or +inf logits, or a row whose logits are all −inf.

    References: definition; Cover & Thomas (2006), eq. (2.26).
    """
    z = check_logits("logits", logits)
    zr = check_logits("ref_logits", ref_logits)
    check_same_shape(("logits", "ref_logits"), (z, zr))
    return categorical_kl(torch.log_softmax(z, dim=-1), torch.log_softmax(zr, dim=-1))


def categorical_tv(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Total variation ½ Σ_v |p_v − q_v| over the last axis (probabilities, not logits).

    Shapes: p[..., V], q[..., V] -> [...].

    References: Levin, Peres, Wilmer (2009), "Markov Chains and Mixing Times", Prop. 4.2.
    """
    pp = check_float_tensor("p", p)
    qq = check_float_tensor("q", q)
    check_same_shape(("p", "q"), (pp, qq))
    return 0.5 * (pp - qq).abs().sum(-1)
