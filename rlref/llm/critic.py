"""Regularizers of value networks (critics) used with the seed papers' RL recipes.

Papers (titles from the seed list):

* He et al. (2024), "Adaptive Regularization of Representation Rank as an Implicit Constraint of
  Bellman Equation" (BEER, ICLR 2024) — :func:`beer_upper_bound`, :func:`beer_regularizer`.
"""

from __future__ import annotations

import torch

from rlref.llm._checks import check_finite_tensor, check_float_tensor, check_nonnegative_scalar, check_probability, check_same_shape

__all__ = ["beer_upper_bound", "beer_regularizer"]


def beer_upper_bound(features: torch.Tensor, next_features: torch.Tensor, rewards: torch.Tensor, head_weight: torch.Tensor, *,
                     gamma: float) -> torch.Tensor:
    """The Bellman-implied upper bound on the cosine similarity of consecutive representations.

    With a linear head Q(s, a) = ⟨φ(s, a), w⟩ satisfying Q(s, a) = r + γ Q(s', a'):
    |r| = |⟨φ − γφ', w⟩| ≤ ‖φ − γφ'‖ ‖w‖, hence
        cos(φ, φ') ≤ (‖φ‖² + γ²‖φ'‖² − r²/‖w‖²) / (2γ ‖φ‖ ‖φ'‖).

    Shapes: features[B, d] (φ(s, a)), next_features[B, d] (φ(s', a')), rewards[B], head_weight[..., d]
    (‖w‖ is its Frobenius norm) -> [B]. Computed without gradient (the bound is a target).

    References: BEER (He et al. 2024), Sec. 4 (Theorem: the cosine-similarity bound); release
    github.com/sweetice/BEER-ICLR2024 @ 81834e5, BEER.py (``upper_bound1``).
    """
    g = check_probability("gamma", gamma, open_left=True)
    f = check_float_tensor("features", features, ndim=2)
    fn = check_float_tensor("next_features", next_features, ndim=2)
    check_same_shape(("features", "next_features"), (f, fn))
    r = check_float_tensor("rewards", rewards, ndim=1)
    if r.shape[0] != f.shape[0]:
        raise ValueError(f"rewards must have shape [{f.shape[0]}], got {tuple(r.shape)}")
    w = check_float_tensor("head_weight", head_weight)
    for name, t in (("features", f), ("next_features", fn), ("rewards", r), ("head_weight", w)):
        check_finite_tensor(name, t)
    with torch.no_grad():
        nf, nn_ = f.norm(dim=1), fn.norm(dim=1)
        w2 = w.norm() ** 2
        return (nf**2 + g**2 * nn_**2 - r**2 / w2) / (2.0 * g * nf * nn_)


def beer_regularizer(features: torch.Tensor, next_features: torch.Tensor, rewards: torch.Tensor, head_weight: torch.Tensor, *,
                     gamma: float, beta: float, eps: float = 1e-6) -> torch.Tensor:
    """BEER: β · mean_b max(0, cos(φ_b, φ'_b) − bound_b) — the rank is penalized only where it violates
    the Bellman bound (:func:`beer_upper_bound`), so it is regularized adaptively, neither maximized
    nor minimized. Added to the critic's TD loss; the gradient flows through ``features`` (and
    ``next_features`` if they require grad; the release uses the target network's, detached).

    The release computes ‖φ'‖ in the bound's numerator from the online critic and the cosine (and the
    denominator) from the target critic; pass the features you mean — here both use ``next_features``.

    Shapes: features[B, d], next_features[B, d], rewards[B], head_weight[..., d] -> scalar.

    References: BEER (He et al. 2024), Sec. 4 (the regularizer); release
    github.com/sweetice/BEER-ICLR2024 @ 81834e5, BEER.py (``beer_loss``; γ = 0.99 there).
    """
    b = check_nonnegative_scalar("beta", beta)
    bound = beer_upper_bound(features, next_features, rewards, head_weight, gamma=gamma)
    cos = torch.nn.functional.cosine_similarity(features, next_features, dim=1, eps=eps)
    return b * torch.relu(cos - bound).mean()
