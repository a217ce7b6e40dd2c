"""RL with guided feedback (RLGF) on an enumerable token tree, with exact expected updates.

Chang, Brantley, Ramamurthy, Misra, Sun (2023), "Learning to Generate Better Than Your LLM"
(arXiv 2306.11816), §4. A guide policy π_g (a black-box LLM) interacts with the learner π in two
ways: its generations serve as extra *roll-in* (restart) states, and it *rolls out* (completes)
the learner's partial responses. The objective is the KL-regularized return

    J(π) = E_{y∼π}[R(y)] − β KL(π(y) ‖ π_ref(y)),   J* = β log Σ_y π_ref(y) e^{R(y)/β}.

Each algorithm is one choice of roll-in distribution w(s) and roll-out value Q_out(s, a):

    ppo         w = d^π                                   Q_out = Q_β^π
    ppo++       w = (1−m) d^π + m d^{g→π}                 Q_out = Q_β^π          (guide roll-in, learner roll-out)
    aggrevated  w = d^π                                   Q_out = Q_β^{π_g}      (learner roll-in, guide roll-out)
    lols        w = d^π                                   Q_out = (1−m') Q_β^π + m' Q_β^{π_g}
    d2lols      w = (1−m) d^π + m d^{g→π}                 Q_out = (1−m') Q_β^π + m' Q_β^{π_g}

where d^π(s) is the probability that π reaches prefix s, d^{g→π} rolls in with π_g for a switch
time h drawn uniformly from {0, …, L−1} and with π afterwards, and Q_β^μ is the KL-regularized
Q-function of μ (``rlref.solve.soft_policy_evaluation``; the KL at the current state is outside Q).
The update is the exact expected softmax policy-gradient step on logits θ (derived here; the
paper's PPO clipping and sampling are replaced by their expectation, step size ``lr``):

    θ(s, a) ← θ(s, a) + lr · w(s) π(a|s) Â(s, a),
    Â(s, a) = Q_out(s, a) − β log(π(a|s)/π_ref(a|s)) − Σ_b π(b|s) [Q_out(s, b) − β log(π(b|s)/π_ref(b|s))].

With Q_out = Q_β^π this is ∇_θ J (the softmax policy-gradient theorem; Agarwal et al. 2021,
Lemma C.1, with the KL term), so ppo and ppo++ (any full-support w) share J's unique stationary
point, the optimum π* ∝ π_ref e^{Q*/β}. A roll-out through the guide moves the stationary point:
aggrevated's is the one-step soft improvement π ∝ π_ref e^{Q_β^{π_g}/β} of the guide (the
AggreVaTe(D) guarantee competes with it), lols/d2lols' solves π ∝ π_ref e^{((1−m')Q_β^π + m' Q_β^{π_g})/β}
(derived here).

References: Chang et al. (2023), §4 (PPO++, AggreVaTeD, LOLS, D²LOLS) — the roll-in/roll-out table
above is from the paper's description; the mixing schedules were not pinned (fixed m, m' here);
Sun et al. (2017), "Deeply AggreVaTeD"; Chang et al. (2015), "Learning to Search Better than Your
Teacher" (LOLS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlref._checks import as_float_array, check_beta, check_choice, check_count, check_finite, check_probability
from rlref.divergences import kl
from rlref.solve import soft_greedy, soft_policy_evaluation, soft_value
from rlref.tokentree import TokenTree, tree_links

__all__ = [
    "ALGORITHMS",
    "RLGFResult",
    "reach_probabilities",
    "rollin_weights",
    "regularized_q",
    "rollout_q",
    "regularized_objective",
    "optimal_objective",
    "rlgf_update",
    "run_rlgf",
]

#: The algorithms of Chang et al. (2023) plus the PPO baseline.
ALGORITHMS = ("ppo", "ppo++", "aggrevated", "lols", "d2lols")


@dataclass(frozen=True)
class RLGFResult:
    """A run of an RLGF algorithm with exact expected updates.

    Attributes:
      algorithm: the name; pi: the final policy ``pi[p, v]``; logits: its logits θ.
      objective: J(π_k) for k = 0..iterations; gap: J* − J(π_k) (≥ 0).
      optimum: J*; iterations: number of updates.
    """

    algorithm: str
    pi: np.ndarray
    logits: np.ndarray
    objective: np.ndarray
    gap: np.ndarray
    optimum: float
    iterations: int


def reach_probabilities(tree: TokenTree, pi: np.ndarray, guide: np.ndarray | None = None, switch: int = 0) -> np.ndarray:
    """``d[p]``: probability of reaching open prefix p when the first ``switch`` tokens come from ``guide`` and the rest from ``pi``.

    ``switch = 0`` (or no guide) is the learner's own reach probability d^π. Shapes: pi, guide [p, v] -> d[p].
    """
    pi = tree.validate_policy(pi)
    g = pi if guide is None else tree.validate_policy(guide, "guide")
    _, parent, ptok = tree_links(tree)
    depth = tree.depths
    d = np.zeros(tree.num_prefixes)
    d[0] = 1.0
    for t in range(1, tree.max_len):
        idx = np.flatnonzero(depth == t)
        pol = g if t - 1 < switch else pi
        d[idx] = d[parent[idx]] * pol[parent[idx], ptok[idx]]
    return d


def rollin_weights(tree: TokenTree, pi: np.ndarray, guide: np.ndarray | None, mix: float) -> np.ndarray:
    """w = (1 − m) d^π + m · (1/L) Σ_{h<L} d^{g→π at h}: PPO++'s restart roll-in (m = 0: on-policy)."""
    m = check_probability("mix", mix)
    d = reach_probabilities(tree, pi)
    if m == 0.0:
        return d
    if guide is None:
        raise ValueError("mix > 0 needs a guide policy (guide is None)")
    restart = np.mean([reach_probabilities(tree, pi, guide, h) for h in range(tree.max_len)], axis=0)
    return (1.0 - m) * d + m * restart


def _check_setup(tree: TokenTree, reward: object, pi_ref: object, beta: float) -> tuple[np.ndarray, np.ndarray, float]:
    R = as_float_array("reward", reward, ndim=1)
    if R.shape != (tree.num_sequences,):
        raise ValueError(f"reward must have shape (num_sequences,) = ({tree.num_sequences},), got {R.shape}")
    check_finite("reward", R)
    ref = tree.validate_policy(pi_ref, "pi_ref")
    return R, ref, check_beta("beta", beta)


def regularized_q(tree: TokenTree, reward: np.ndarray, pi: np.ndarray, pi_ref: np.ndarray, beta: float) -> np.ndarray:
    """Q_β^π[p, v] on the tree paying R(y) at completion (core ``soft_policy_evaluation``; current-state KL outside Q)."""
    R, ref, b = _check_setup(tree, reward, pi_ref, beta)
    mdp = tree.to_mdp(R)
    ev = soft_policy_evaluation(mdp, tree.extend_policy(pi), b, tree.extend_policy(ref))
    return tree.restrict_policy(ev.q)


def rollout_q(tree, reward, pi, pi_ref, beta, guide=None, mix: float = 0.0) -> np.ndarray:
    """Q_out = (1 − m') Q_β^π + m' Q_β^{π_g}: the roll-out value (m' = 1: AggreVaTeD, guide roll-out)."""
    m = check_probability("rollout_mix", mix)
    q = regularized_q(tree, reward, pi, pi_ref, beta) if m < 1.0 else 0.0
    if m == 0.0:
        return q
    if guide is None:
        raise ValueError("rollout_mix > 0 needs a guide policy (guide is None)")
    return (1.0 - m) * q + m * regularized_q(tree, reward, guide, pi_ref, beta)


def regularized_objective(tree: TokenTree, reward: np.ndarray, pi: np.ndarray, pi_ref: np.ndarray, beta: float) -> float:
    """J(π) = E_{y∼π} R(y) − β KL(π(y) ‖ π_ref(y)) on complete responses."""
    R, ref, b = _check_setup(tree, reward, pi_ref, beta)
    p = tree.sequence_distribution(pi)
    return float(p @ R - b * kl(p, tree.sequence_distribution(ref)))


def optimal_objective(tree: TokenTree, reward: np.ndarray, pi_ref: np.ndarray, beta: float) -> float:
    """J* = β log Σ_y π_ref(y) e^{R(y)/β} (the core tilt's value on responses; Korbak et al. 2022, eq. 2)."""
    R, ref, b = _check_setup(tree, reward, pi_ref, beta)
    return float(soft_value(R, tree.sequence_distribution(ref), b))


def rlgf_update(tree, reward, logits, pi_ref, beta, algorithm: str, guide=None, *, mix: float = 0.5, rollout_mix: float = 0.5,
                lr: float = 1.0) -> np.ndarray:
    """One exact expected RLGF step on logits θ[p, v] (see the module docstring for each algorithm's w and Q_out)."""
    alg = check_choice("algorithm", algorithm, ALGORITHMS)
    R, ref, b = _check_setup(tree, reward, pi_ref, beta)
    theta = as_float_array("logits", logits, ndim=2)
    if theta.shape != (tree.num_prefixes, tree.vocab_size):
        raise ValueError(f"logits must have shape {(tree.num_prefixes, tree.vocab_size)}, got {theta.shape}")
    check_finite("logits", theta)
    if alg != "ppo" and guide is None:
        raise ValueError(f"algorithm {alg!r} needs a guide policy (guide is None)")
    pi = soft_greedy(theta, None, 1.0)
    m_in = mix if alg in ("ppo++", "d2lols") else 0.0
    m_out = {"ppo": 0.0, "ppo++": 0.0, "aggrevated": 1.0}.get(alg, rollout_mix)
    w = rollin_weights(tree, pi, guide, m_in)
    q = rollout_q(tree, R, pi, ref, b, guide, m_out)
    with np.errstate(divide="ignore"):
        u = q - b * (np.log(pi) - np.log(ref))
    u = np.where(pi > 0, u, 0.0)
    adv = u - (pi * u).sum(axis=1, keepdims=True)
    return theta + lr * w[:, None] * pi * adv


def run_rlgf(tree, reward, pi_ref, beta, algorithm: str, guide=None, *, iterations: int = 200, lr: float = 1.0,
             mix: float = 0.5, rollout_mix: float = 0.5, logits0: np.ndarray | None = None) -> RLGFResult:
    """Run ``iterations`` exact RLGF updates from ``logits0`` (default log π_ref: the learner starts at the reference).

    Raises ValueError for an unknown algorithm, beta ≤ 0, a missing guide, mix outside [0, 1], lr ≤ 0.
    """
    alg = check_choice("algorithm", algorithm, ALGORITHMS)
    R, ref, b = _check_setup(tree, reward, pi_ref, beta)
    n = check_count("iterations", iterations, minimum=0)
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite positive number, got {lr!r}")
    if logits0 is None:
        with np.errstate(divide="ignore"):
            theta = np.maximum(np.log(ref), -50.0)
    else:
        theta = np.array(logits0, dtype=np.float64)
    opt = optimal_objective(tree, R, ref, b)
    objs = [regularized_objective(tree, R, soft_greedy(theta, None, 1.0), ref, b)]
    for _ in range(n):
        theta = rlgf_update(tree, R, theta, ref, b, alg, guide, mix=mix, rollout_mix=rollout_mix, lr=lr)
        objs.append(regularized_objective(tree, R, soft_greedy(theta, None, 1.0), ref, b))
    obj = np.array(objs)
    return RLGFResult(algorithm=alg, pi=soft_greedy(theta, None, 1.0), logits=theta, objective=obj, gap=opt - obj,
                      optimum=opt, iterations=n)
