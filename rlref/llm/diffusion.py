"""RL for masked-diffusion language models: the ELBO likelihood proxy and BGPO's linear lower bound.

Papers (titles from the seed list):

* "Boundary-Guided Policy Optimization for Memory-efficient RL of Diffusion Large Language Models"
  (BGPO) — :func:`bgpo_loss`, beside the ELBO-ratio objective it bounds (:func:`elbo_ratio_objective`).

A masked-diffusion LM (MDLM / LLaDA style) has no tractable log-likelihood; RL methods replace
log π_θ(y) by its ELBO, estimated with n Monte Carlo samples (t_j ∼ U(0, 1), each token masked with
probability t_j):
    ELBO_θ(y) ≈ (1/n) Σ_j ℓ_θ,j,  ℓ_θ,j = (1/t_j) Σ_{i masked in sample j} log p_θ(y_i | y_{t_j}).
The policy objective A·ρ with ρ = exp(ELBO_θ − ELBO_old) is non-linear in the samples, so every
sample's graph must be kept for the gradient. BGPO maximizes a lower bound that is a *sum over samples*
(constant memory with gradient accumulation) and is *equal in value and gradient* on-policy.

Exact references on a tiny model (:func:`masked_diffusion_elbo_exact`, :func:`any_order_log_likelihood`):
the continuous-time ELBO integrates in closed form over t, ∫₀¹ t^{k−1}(1−t)^{L−k} dt = 1/(k·C(L, k)), so
    ELBO(y) = Σ_{∅≠S⊆[L]} Σ_{i∈S} log p(y_i | y_{−S}) / (|S|·C(L, |S|)),
an average over unmasking orders of the order's log-likelihood, hence ≤ log p(y) for the model that
unmasks one token at a time in a uniformly random order (Jensen), with equality when the conditionals
are order-consistent.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch

from rlref.llm._checks import check_finite_tensor, check_float_tensor, check_same_shape

__all__ = ["elbo_ratio_objective", "bgpo_loss", "masked_diffusion_elbo_exact", "any_order_log_likelihood"]


def _elbo_inputs(elbo_terms: object, old_elbo_terms: object, advantages: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    e = check_float_tensor("elbo_terms", elbo_terms, ndim=2)
    o = check_float_tensor("old_elbo_terms", old_elbo_terms, ndim=2)
    check_same_shape(("elbo_terms", "old_elbo_terms"), (e, o))
    a = check_float_tensor("advantages", advantages, ndim=1)
    if a.shape[0] != e.shape[0]:
        raise ValueError(f"advantages must have shape [{e.shape[0]}] (one per response), got {tuple(a.shape)}")
    if e.shape[1] == 0:
        raise ValueError("elbo_terms must hold at least one Monte Carlo sample per response (n >= 1)")
    for name, t in (("elbo_terms", e.detach()), ("old_elbo_terms", o), ("advantages", a)):
        check_finite_tensor(name, t)
    return e, o.detach(), a.detach()


def elbo_ratio_objective(elbo_terms: torch.Tensor, old_elbo_terms: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """The ELBO-based policy objective (to maximize): (1/B) Σ_b A_b · exp(mean_j(ℓ_θ,bj − ℓ_old,bj)).

    Non-linear in the samples (the mean sits inside the exponential). Shapes: elbo_terms[B, n],
    old_elbo_terms[B, n] (the same Monte Carlo samples under π_old), advantages[B] -> scalar.

    References: BGPO (2025), Sec. 3 (the ELBO-based RL objective it bounds).
    """
    e, o, a = _elbo_inputs(elbo_terms, old_elbo_terms, advantages)
    return (a * torch.exp((e - o).mean(dim=1))).mean()


def bgpo_loss(elbo_terms: torch.Tensor, old_elbo_terms: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """BGPO's loss: minus a lower bound of :func:`elbo_ratio_objective` that is linear in the samples.

    With x_j = ℓ_θ,j − ℓ_old,j and x̄ = mean_j x_j:
    A ≥ 0:  A·e^{x̄} ≥ A·(1 + x̄) = (1/n) Σ_j A·(1 + x_j)   (the tangent of exp at 0);
    A < 0:  A·e^{x̄} ≥ (1/n) Σ_j A·e^{x_j}                  (Jensen: e^{x̄} ≤ mean_j e^{x_j}).
    Each term depends on one Monte Carlo sample (gradients can be accumulated sample by sample), and
    at θ = θ_old (every x_j = 0) the bound's value and gradient equal the objective's. The loss is
    −(1/B) Σ_b bound_b. The two inequalities are derived here from the abstract's two properties
    (linearity, on-policy equivalence); the paper's own equation was not read.

    Shapes: elbo_terms[B, n], old_elbo_terms[B, n], advantages[B] -> scalar.

    References: "Boundary-Guided Policy Optimization for Memory-efficient RL of Diffusion Large
    Language Models" (BGPO, 2025), Sec. 3-4.
    """
    e, o, a = _elbo_inputs(elbo_terms, old_elbo_terms, advantages)
    x = e - o
    pos = a.unsqueeze(1) * (1.0 + x)
    neg = a.unsqueeze(1) * torch.exp(torch.where(a.unsqueeze(1) < 0, x, torch.zeros_like(x)))
    per = torch.where(a.unsqueeze(1) >= 0, pos, neg)
    return -per.mean(dim=1).mean()


def masked_diffusion_elbo_exact(y: Sequence[int], cond_logp: Callable[[tuple[int, ...], int], torch.Tensor]) -> torch.Tensor:
    """The exact continuous-time masked-diffusion ELBO of a short sequence, by enumerating mask sets.

    ELBO(y) = Σ_{∅≠S⊆[L]} Σ_{i∈S} log p(y_i | y_{−S}) / (|S|·C(L, |S|)), where ``cond_logp(visible, i)``
    returns log p(· | visible)[...] for position i as a [V] tensor of log-probabilities, ``visible`` the
    sequence with masked positions set to −1. Differentiable through ``cond_logp``. Cost 2^L·L calls.

    References: the MDLM/LLaDA ELBO E_{t∼U(0,1)}[(1/t) Σ_{i masked} log p(y_i | y_t)] with the t-integral
    in closed form (derived here).
    """
    L = len(y)
    if L < 1:
        raise ValueError("y must hold at least one token")
    total = torch.zeros(())
    for k in range(1, L + 1):
        w = 1.0 / (k * math.comb(L, k))
        for S in itertools.combinations(range(L), k):
            vis = tuple(-1 if j in S else int(y[j]) for j in range(L))
            for i in S:
                total = total + w * cond_logp(vis, i)[int(y[i])]
    return total


def any_order_log_likelihood(y: Sequence[int], cond_logp: Callable[[tuple[int, ...], int], torch.Tensor]) -> torch.Tensor:
    """log p(y) of the sampler that unmasks one position at a time in a uniformly random order:
    p(y) = (1/L!) Σ_σ Π_k p(y_σ(k) | y_σ(<k)). Enumerates the L! orders (tiny L only).

    References: the any-order autoregressive view of masked diffusion (derived here for the check).
    """
    L = len(y)
    logs = []
    for order in itertools.permutations(range(L)):
        vis = [-1] * L
        lp = torch.zeros(())
        for i in order:
            lp = lp + cond_logp(tuple(vis), i)[int(y[i])]
            vis[i] = int(y[i])
        logs.append(lp)
    return torch.logsumexp(torch.stack(logs), 0) - math.log(math.factorial(L))
