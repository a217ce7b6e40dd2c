"""Preference-optimization losses: DPO, IPO, RPO, XPO, LD-DPO, INPO, SPO win rates, RTO rewards.

Inputs are sequence log-probabilities (sum of token log-probs of the response given the prompt),
shape ``[B]``: ``policy_chosen_logps`` = log π_θ(y_w|x), ``ref_rejected_logps`` = log π_ref(y_l|x),
and so on. Losses are to be minimized; results are :class:`PreferenceLoss` (mean loss, per-pair
losses, implicit rewards).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rlref.llm._checks import (
    check_finite_tensor,
    check_float_tensor,
    check_integer_tensor,
    check_lengths,
    check_nonnegative_scalar,
    check_positive_scalar,
    check_same_shape,
    check_unit_interval_tensor,
    is_meta,
    masked_or_ones,
)

__all__ = [
    "PreferenceLoss",
    "dpo_loss",
    "ipo_loss",
    "rpo_loss",
    "xpo_loss",
    "ld_dpo_logps",
    "inpo_loss",
    "spo_win_rate_rewards",
    "rto_token_rewards",
]


@dataclass(frozen=True)
class PreferenceLoss:
    """``loss`` (scalar mean), ``losses`` [B], implicit rewards β·log(π_θ/π_ref) of chosen/rejected [B] (detached)."""

    loss: torch.Tensor
    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor


def _four(pc: object, pr: object, rc: object, rr: object) -> tuple[torch.Tensor, ...]:
    names = ("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps")
    ts = tuple(check_float_tensor(n, t, ndim=1) for n, t in zip(names, (pc, pr, rc, rr), strict=True))
    check_same_shape(names, ts)
    if ts[0].shape[0] == 0:
        raise ValueError("policy_chosen_logps (and the other three log-prob tensors) must hold at least one preference pair (B >= 1), got shape (0,)")
    for n, t in zip(names, ts, strict=True):
        check_finite_tensor(n, t.detach())
    return ts


def _margin(pc, pr, rc, rr):
    return (pc - rc) - (pr - rr)


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
) -> PreferenceLoss:
    """Direct Preference Optimization.

    ℓ = −log σ(β [(log π_θ(y_w) − log π_ref(y_w)) − (log π_θ(y_l) − log π_ref(y_l))]).
    Gradient w.r.t. log π_θ(y_w): −β σ(−βh)/B (and +β σ(−βh)/B for y_l), h the margin.

    Shapes: four tensors [B] -> PreferenceLoss. Raises ValueError if beta <= 0 or shapes differ.

    References: Rafailov et al. (2023), "Direct Preference Optimization", eq. (7).
    """
    b = check_positive_scalar("beta", beta)
    pc, pr, rc, rr = _four(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    losses = -F.logsigmoid(b * _margin(pc, pr, rc, rr))
    return PreferenceLoss(losses.mean(), losses, (b * (pc - rc)).detach(), (b * (pr - rr)).detach())


def ipo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta: float) -> PreferenceLoss:
    """Identity Preference Optimization: ℓ = (h − 1/(2β))², h the DPO log-ratio margin (β is IPO's τ).

    The minimizer sets h = 1/(2β) for every pair (regression to a bounded target, no saturation).

    References: Azar et al. (2024), "A General Theoretical Paradigm to Understand Learning from
    Human Preferences", eq. (17).
    """
    b = check_positive_scalar("beta", beta)
    pc, pr, rc, rr = _four(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    losses = (_margin(pc, pr, rc, rr) - 1.0 / (2.0 * b)) ** 2
    return PreferenceLoss(losses.mean(), losses, (b * (pc - rc)).detach(), (b * (pr - rr)).detach())


def rpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta: float, *,
             chosen_lengths: torch.Tensor, alpha: float = 1.0) -> PreferenceLoss:
    """RPO: DPO plus an SFT (negative log-likelihood) term on the chosen response.

    ℓ = −log σ(βh) − α · log π_θ(y_w) / |y_w|  (length-normalized NLL of the chosen response).

    Shapes: four [B] tensors, chosen_lengths[B] (> 0 tokens).

    References: Pang et al. (2024), "Iterative Reasoning Preference Optimization", eq. (1);
    Liu et al. (2024), "Provably Mitigating Overoptimization in RLHF: Your SFT Loss is Implicitly an
    Adversarial Regularizer" (RPO).
    """
    a = check_nonnegative_scalar("alpha", alpha)
    base = dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta)
    n = check_lengths("chosen_lengths", chosen_lengths, ndim=1, dtype=base.losses.dtype)
    check_same_shape(("policy_chosen_logps", "chosen_lengths"), (base.losses, n))
    losses = base.losses - a * policy_chosen_logps / n
    return PreferenceLoss(losses.mean(), losses, base.chosen_rewards, base.rejected_rewards)


def xpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta: float, *,
             policy_ref_sample_logps: torch.Tensor, alpha: float) -> PreferenceLoss:
    """Exploratory Preference Optimization: DPO plus an optimism term on samples from π_ref.

    ℓ = DPO + α · mean_j log π_θ(ỹ_j),  ỹ_j ∼ π_ref: lowering the likelihood of reference samples
    pushes π_θ away from π_ref's support — the implicit optimism bonus that gives XPO its exploration
    guarantee.

    Shapes: four [B] tensors, policy_ref_sample_logps[M] -> PreferenceLoss (losses [B] exclude the
    optimism term; ``loss`` includes it).

    References: Xie et al. (2024), "Exploratory Preference Optimization: Harnessing Implicit
    Q*-Approximation for Sample-Efficient RLHF", Algorithm 1, eq. (8).
    """
    a = check_nonnegative_scalar("alpha", alpha)
    base = dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta)
    s = check_float_tensor("policy_ref_sample_logps", policy_ref_sample_logps, ndim=1)
    if s.shape[0] == 0:
        raise ValueError("policy_ref_sample_logps must hold at least one sample")
    check_finite_tensor("policy_ref_sample_logps", s.detach())
    return PreferenceLoss(base.loss + a * s.mean(), base.losses, base.chosen_rewards, base.rejected_rewards)


def ld_dpo_logps(token_logps: torch.Tensor, mask: torch.Tensor | None, public_length: torch.Tensor, *, alpha: float) -> torch.Tensor:
    """LD-DPO's length-desensitized sequence log-probability.

    With l_p the public length (the shorter of the pair's two response lengths),
    log π̂(y) = Σ_{t ≤ l_p} log π(y_t) + α Σ_{t > l_p} log π(y_t),  α ∈ [0, 1]: the excess tokens of the
    longer response count with weight α, decoupling the verbosity preference. Feed the results
    (for policy and reference, chosen and rejected) to :func:`dpo_loss`.

    Shapes: token_logps[B, T], mask[B, T] (valid tokens form a prefix), public_length[B] (int >= 0) -> [B].
    Raises ValueError for alpha outside [0, 1], a negative or non-integer public_length, NaN valid log-probs.

    References: Liu et al. (2024), "Length Desensitization in Direct Preference Optimization"
    (LD-DPO), eq. (11).
    """
    a = check_nonnegative_scalar("alpha", alpha)
    if a > 1:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    lp = check_float_tensor("token_logps", token_logps, ndim=2)
    m = masked_or_ones("mask", mask, lp.shape, lp.device)
    check_integer_tensor("public_length", public_length, (lp.shape[0],), minimum=0)
    t = torch.arange(lp.shape[1], device=lp.device).unsqueeze(0)
    w = torch.where(t < public_length.unsqueeze(1), torch.ones_like(lp), torch.full_like(lp, a))
    x = torch.where(m, lp, torch.zeros_like(lp))
    check_finite_tensor("token_logps", x.detach())
    return (w * x).sum(dim=1)


def inpo_loss(
    policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, *,
    prev_chosen_logps: torch.Tensor, prev_rejected_logps: torch.Tensor, eta: float, tau: float,
) -> PreferenceLoss:
    """Iterative Nash Policy Optimization loss (one no-regret step against the previous policy π_t).

    h = log π_θ(y_w)/π_θ(y_l) − (τ/η) log π_ref(y_w)/π_ref(y_l) − ((η − τ)/η) log π_t(y_w)/π_t(y_l);
    ℓ = (h − 1/(2η))². Its population minimizer is the online mirror-descent update
    π_{t+1} ∝ π_t^{1−τ/η} π_ref^{τ/η} exp(P(y ≻ π_t)/η).

    Shapes: six [B] tensors. Raises ValueError unless η > 0 and 0 <= τ < η.

    References: Zhang et al. (2025), "Iterative Nash Policy Optimization: Aligning LLMs with General
    Preferences via No-Regret Learning", eq. (9)/(10).
    """
    e = check_positive_scalar("eta", eta)
    t = check_nonnegative_scalar("tau", tau)
    if t >= e:
        raise ValueError(f"tau must be < eta, got tau={tau!r}, eta={eta!r}")
    pc, pr, rc, rr = _four(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    tc = check_float_tensor("prev_chosen_logps", prev_chosen_logps, ndim=1)
    tr = check_float_tensor("prev_rejected_logps", prev_rejected_logps, ndim=1)
    check_same_shape(("policy_chosen_logps", "prev_chosen_logps", "prev_rejected_logps"), (pc, tc, tr))
    check_finite_tensor("prev_chosen_logps", tc.detach())
    check_finite_tensor("prev_rejected_logps", tr.detach())
    h = (pc - pr) - (t / e) * (rc - rr) - ((e - t) / e) * (tc - tr)
    losses = (h - 1.0 / (2.0 * e)) ** 2
    return PreferenceLoss(losses.mean(), losses, (pc - tc).detach(), (pr - tr).detach())


def spo_win_rate_rewards(preferences: torch.Tensor) -> torch.Tensor:
    """SPO's self-play rewards: each sample's average win rate against the other samples.

    r_i = (1/(G−1)) Σ_{j≠i} P(y_i ≻ y_j), with P[i, j] + P[j, i] = 1 (the diagonal is ignored).

    Shapes: preferences[B, G, G] (or [G, G]) with entries in [0, 1] -> [B, G] (or [G]).

    References: Swamy et al. (2024), "A Minimaximalist Approach to Reinforcement Learning from Human
    Feedback", Algorithm 1 (SPO).
    """
    p = check_float_tensor("preferences", preferences, ndim=(2, 3))
    squeeze = p.ndim == 2
    if squeeze:
        p = p.unsqueeze(0)
    g = p.shape[-1]
    if p.shape[-2] != g or g < 2:
        raise ValueError(f"preferences must be square [.., G, G] with G >= 2, got {tuple(p.shape)}")
    check_unit_interval_tensor("preferences", p)
    off = ~torch.eye(g, dtype=torch.bool, device=p.device)
    if not is_meta(p) and not torch.allclose((p + p.transpose(-1, -2))[:, off], torch.ones_like(p[:, off]), atol=1e-6):
        raise ValueError("preferences must satisfy P[i, j] + P[j, i] = 1 off the diagonal")
    r = torch.where(off, p, torch.zeros_like(p)).sum(-1) / (g - 1)
    return r[0] if squeeze else r


def rto_token_rewards(
    dpo_logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor | None = None, *, beta_dpo: float,
    policy_logps: torch.Tensor | None = None, beta_kl: float = 0.0,
) -> torch.Tensor:
    """RTO's token-wise reward extracted from a DPO-trained model.

    r_t = β₁ (log π_dpo(y_t) − log π_ref(y_t)) − β₂ (log π_θ(y_t) − log π_ref(y_t)) on valid tokens
    (the second, KL term only when ``policy_logps`` is given); PPO then optimizes these dense rewards.
    Summed over a response, the first term is β₁ times DPO's implicit sequence reward.

    Shapes: dpo_logps[B, T], ref_logps[B, T], mask[B, T], policy_logps[B, T] -> [B, T].

    References: Zhong et al. (2024), "DPO Meets PPO: Reinforced Token Optimization for RLHF", eq. (4.4).
    """
    b1 = check_positive_scalar("beta_dpo", beta_dpo)
    b2 = check_nonnegative_scalar("beta_kl", beta_kl)
    d = check_float_tensor("dpo_logps", dpo_logps, ndim=2)
    r = check_float_tensor("ref_logps", ref_logps, ndim=2)
    check_same_shape(("dpo_logps", "ref_logps"), (d, r))
    m = masked_or_ones("mask", mask, d.shape, d.device)
    zero = torch.zeros_like(d)
    out = b1 * (torch.where(m, d, zero) - torch.where(m, r, zero))
    if policy_logps is not None:
        p = check_float_tensor("policy_logps", policy_logps, ndim=2)
        check_same_shape(("dpo_logps", "policy_logps"), (d, p))
        out = out - b2 * (torch.where(m, p, zero) - torch.where(m, r, zero)).detach()
    check_finite_tensor("rewards", out.detach())
    return torch.where(m, out, zero)
