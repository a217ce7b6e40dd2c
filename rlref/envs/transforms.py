"""MDPs built from another MDP: a mixture of two kernels, and the empirical kernel of a generative model.

Both keep the expected reward r[s, a], the discount and μ0 of the given MDP and change only the dynamics, which is
the setting of the simulation lemma (:mod:`rlref.theory.simulation`) and of model-error bounds
(:func:`rlref.theory.lipschitz.model_error_bound`).

* :func:`mix_transitions`: P' = (1 − λ) P + λ Q, a kernel at controlled distance ‖P' − P‖₁ = λ ‖Q − P‖₁ row by row.
* :func:`empirical_mdp`: P̂(·|s, a) = N(s, a, ·)/n with N(s, a, ·) ~ Multinomial(n, P(·|s, a)), the
  certainty-equivalence model of n generative-model samples per pair (Kearns & Singh 1999; Azar, Munos &
  Kappen 2013, Sec. 2).

References: Kearns & Singh (1999), "Finite-sample convergence rates for Q-learning and indirect algorithms",
NeurIPS (the generative model and its empirical MDP); Azar, Munos & Kappen (2013), "Minimax PAC bounds on the
sample complexity of RL with a generative model", Machine Learning 91(3).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rlref._checks import check_count, check_probability
from rlref.mdp import TabularMDP

__all__ = ["empirical_mdp", "mix_transitions"]


def _check_unstaged(name: str, mdp: TabularMDP) -> None:
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"{name} must be a rlref.TabularMDP, got {type(mdp).__name__}")
    if mdp.is_stage_dependent:
        raise ValueError(f"{name} has stage-dependent P or r (a leading h axis); only a stationary kernel is supported")


def mix_transitions(mdp: TabularMDP, other: TabularMDP, weight: float) -> TabularMDP:
    """M' = (P', r) with P'(·|s, a) = (1 − λ) P(·|s, a) + λ Q(·|s, a), Q the kernel of ``other``, λ = ``weight``.

    Rewards r[s, a], γ, horizon and μ0 are those of ``mdp``; ``other`` contributes only its kernel. Row by row
    ‖P' − P‖₁ = λ ‖Q − P‖₁. Sparse stays sparse (CSR) when ``mdp`` is sparse.

    Shapes: both MDPs (S, A) -> TabularMDP (S, A).
    Raises ValueError if weight is not in [0, 1], the shapes differ, or either MDP is stage-dependent.
    References: derived here (a convex combination of stochastic rows is stochastic); used for the simulation
    lemma, Kearns & Singh (2002), "Near-optimal RL in polynomial time", Machine Learning 49, Lemma 4.
    """
    lam = check_probability("weight", weight)
    _check_unstaged("mdp", mdp)
    _check_unstaged("other", other)
    S, A = mdp.num_states, mdp.num_actions
    if (other.num_states, other.num_actions) != (S, A):
        raise ValueError(f"other must have the shape of mdp (S, A) = ({S}, {A}), got ({other.num_states}, {other.num_actions})")
    P, Q = mdp.transition_matrix(), other.transition_matrix()
    if mdp.is_sparse:
        P2 = ((1.0 - lam) * P + lam * Q).tocsr()
    else:
        Qd = Q.toarray() if sp.issparse(Q) else np.asarray(Q)
        P2 = ((1.0 - lam) * np.asarray(P) + lam * Qd).reshape(S, A, S)
    return TabularMDP(P2, np.array(mdp.r), gamma=mdp.gamma, horizon=mdp.horizon, mu0=np.array(mdp.mu0),
                      name=f"{mdp.name} mixed {weight}")


def empirical_mdp(mdp: TabularMDP, n: int, rng: np.random.Generator) -> TabularMDP:
    """The empirical MDP of a generative model: n next-state samples for every (s, a).

        N(s, a, ·) ~ Multinomial(n, P(·|s, a)) independently,   P̂(s'|s, a) = N(s, a, s') / n,

    drawn in the order s = 0..S−1, a = 0..A−1 (one ``rng.multinomial`` call per pair). The expected reward
    r[s, a], γ, horizon and μ0 are those of ``mdp`` (the model is of the dynamics only). A sparse ``mdp`` is
    densified (S²A memory).

    Shapes: mdp (S, A) -> TabularMDP (S, A), dense P̂[s, a, s'].
    Raises ValueError if n < 1 or mdp is stage-dependent.
    References: Kearns & Singh (1999), NeurIPS, Sec. 3 (the generative model); Azar, Munos & Kappen (2013),
    Machine Learning 91(3), Sec. 2 (the empirical model P̂ and its certainty-equivalence value).
    """
    n_ = check_count("n", n, 1, "the number of samples per (s, a)")
    _check_unstaged("mdp", mdp)
    P = mdp.dense_P()
    S, A = mdp.num_states, mdp.num_actions
    counts = np.array([[rng.multinomial(n_, P[s, a]) for a in range(A)] for s in range(S)], dtype=float)
    return TabularMDP(counts / n_, mdp.r, gamma=mdp.gamma, horizon=mdp.horizon, mu0=mdp.mu0, name=f"empirical-{n_}")
