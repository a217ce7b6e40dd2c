"""Regularization toward a reference or a demonstration policy, beyond the core KL penalty.

Papers (titles from the seed list):

* Tiapkin et al. (2023), "Demonstration-Regularized RL" — :func:`demonstration_regularization`
  (KL toward the behaviour-cloning policy, score-function and pathwise forms).
* Laidlaw, Singhal, Dragan (2025), "Correlated Proxies: A New Definition and Improved Mitigation
  for Reward Hacking" — :func:`chi2_occupancy_penalty` (χ² occupancy-measure regularization).

The per-token KL estimators are :func:`rlref.llm.divergences.kl_penalty`; the KL loss is
:func:`rlref.llm.losses.kl_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlref.llm._checks import check_any, check_choice, check_logp_pair, check_positive_scalar
from rlref.llm.losses import kl_loss

__all__ = ["DEMO_FORMS", "DEMO_BASELINES", "demonstration_regularization", "Chi2Penalty", "chi2_occupancy_penalty"]


DEMO_FORMS = ("score-function", "pathwise")


DEMO_BASELINES = ("none", "leave-one-out")


def demonstration_regularization(logp: torch.Tensor, bc_logp: torch.Tensor, mask: torch.Tensor | None = None, *,
                                 beta: float, form: str = "score-function", estimator: str | None = None,
                                 baseline: str = "none", aggregation: str = "seq-mean-token-sum") -> torch.Tensor:
    """Demonstration-regularized RL, LLM form: a loss for β · KL(p_θ ‖ p_BC) on π_θ's samples.

    π_BC is the behaviour-cloning (SFT) policy fit on expert demonstrations, p_θ(y) = Π_t π_θ(y_t|y_<t)
    and p_BC the response distributions. Added to a policy-gradient loss on a reward r, the default
    form ascends E_{p_θ}[r] − β KL(p_θ ‖ p_BC) exactly, whose optimum is p*(y) = p_BC(y) e^{r(y)/β} / Z
    (per prompt).

    ``form="score-function"`` (default; the reward-penalty form). With the sequence-level k1 sum
    s_b = Σ_t m_bt (log π_θ(y_bt) − log π_BC(y_bt)) = log p_θ(y_b) − log p_BC(y_b) and
    c_b = Σ_t m_bt log π_θ(y_bt), the loss is
        β · (1/B) Σ_b [ sg(s_b) + sg(s_b − b_b) · (c_b − sg(c_b)) ].
    Its value is β · (1/B) Σ_b s_b, an unbiased estimate of β KL(p_θ ‖ p_BC); its gradient
    β · (1/B) Σ_b (s_b − b_b) ∇ log p_θ(y_b) is an unbiased estimate of β ∇KL(p_θ ‖ p_BC), because
    ∇KL = E_{p_θ}[(log p_θ − log p_BC) ∇ log p_θ] (the +1 term has mean E[∇ log p_θ] = 0). It is the
    gradient of folding −β·k1 into the reward (``kl_reward``) and summing over the sequence.
    ``baseline="leave-one-out"`` uses b_b = mean_{j≠b} s_j (B >= 2; still unbiased since the
    responses are i.i.d.), ``"none"`` b_b = 0. Only the k1 estimator and ``seq-mean-token-sum`` are
    allowed here: k2/k3 in the reward, or a per-sequence 1/|o| or 1/Σ|o| normalizer, bias the gradient.

    ``form="pathwise"``: β · aggregate(k(log π_θ, log π_BC)) with ``estimator`` k2 (default) or k3,
    differentiated through log π_θ(y_t) with the tokens fixed (``kl_loss``). Its expected gradient at
    prefix x is d_θ(x) ∇_{θ_x} D_x with a per-prefix divergence D_x (k2: KL(π_θ(·|x) ‖ π_BC(·|x)),
    k3: KL(π_BC(·|x) ‖ π_θ(·|x))): it ignores θ_x's effect on the KL of later positions. Policy
    gradient on r plus this loss therefore converges, bottom-up, to
        k2: π(·|x) ∝ π_BC(·|x) exp(Q(x,·)/β),   k3: π(v|x) = β π_BC(v|x) / (λ_x − Q(x, v)),
    with the *unregularized* Q(x, v) = E_π[r | x·v] and λ_x > max_v Q(x, v) fixed by normalization
    (``rlref.llm.tokentree.pathwise_kl_fixed_point``) — not p_BC e^{r/β}/Z on responses of two or more
    tokens (k2 coincides with it on one-token responses).

    Shapes: logp[B, T], bc_logp[B, T], mask[B, T] -> scalar.
    Raises ValueError for an unknown form/baseline/estimator, an estimator or aggregation the form does
    not allow, a leave-one-out baseline with B < 2, NaN in valid entries, or a shape mismatch.

    References: Tiapkin et al. (2023), "Demonstration-Regularized RL", Sec. 4 (KL-regularization
    towards the BC policy); Williams (1992) (score-function gradient); Tang & Munos (2025), "On a few
    pitfalls in KL divergence gradient estimation for RL" (the pathwise fixed point; the bottom-up
    form is derived here).
    """
    b = check_positive_scalar("beta", beta)
    fm = check_choice("form", form, DEMO_FORMS)
    bl = check_choice("baseline", baseline, DEMO_BASELINES)
    if fm == "pathwise":
        if bl != "none":
            raise ValueError(f"baseline must be 'none' for form='pathwise', got {baseline!r}")
        est = "k2" if estimator is None else check_choice("estimator", estimator, ("k2", "k3"))
        return kl_loss(logp, bc_logp, mask, beta=b, estimator=est, aggregation=aggregation)
    if estimator not in (None, "k1"):
        raise ValueError(f"estimator must be 'k1' (or None) for form='score-function', got {estimator!r}; "
                         "use form='pathwise' for a k2/k3 loss")
    if aggregation != "seq-mean-token-sum":
        raise ValueError(f"aggregation must be 'seq-mean-token-sum' for form='score-function', got {aggregation!r}")
    lp0, bc0, m = check_logp_pair(logp, bc_logp, "bc_logp", mask)
    check_any("mask", m)
    c = lp0.sum(dim=1)
    s = (lp0.detach() - bc0).sum(dim=1)
    n = s.shape[0]
    if bl == "leave-one-out":
        if n < 2:
            raise ValueError(f"baseline='leave-one-out' needs B >= 2 sequences, got B = {n}")
        adv = s - (s.sum() - s) / (n - 1)
    else:
        adv = s
    return b * (s + adv * (c - c.detach())).mean()


@dataclass(frozen=True)
class Chi2Penalty:
    """Result of :func:`chi2_occupancy_penalty`.

    ``loss``: differentiable surrogate, value β·estimate, expected gradient β·∇χ²;
    ``estimate``: detached, unbiased estimate of the χ² divergence of the chosen ``level``.
    """

    loss: torch.Tensor
    estimate: torch.Tensor


def chi2_occupancy_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor | None = None, *, beta: float,
                           level: str = "occupancy") -> Chi2Penalty:
    """χ² regularization towards a reference policy, estimated on π_θ's samples.

    Write π(z) = Π_{k<|z|} π(z_k | z_<k) for the probability that a response starts with the token
    string z, and w_t = π_θ(y_≤t) / π_ref(y_≤t) = exp(Σ_{k≤t} (log π_θ − log π_ref)) for the density
    ratio of a sampled response's prefix through position t.

    ``level="occupancy"`` (default): χ² between the occupancy measures of the token MDP (state = open
    prefix x, action = next token v; undiscounted, no absorbing state, *not* normalized), whose
    occupancy is d_π(x, v) = π(x·v) — a sub-probability measure at each depth when responses end at
    ``eos`` — and
        χ²_occ(π ‖ π_ref) = Σ_{x, v} (d_π(x,v) − d_ref(x,v))² / d_ref(x,v)
                          = Σ_{x, v} d_π²/d_ref − 2 E_π|y| + E_ref|y|
                          = E_{y∼π_θ}[ Σ_{t<|y|} (w_t − 1)² / w_t ],
    a sum over every position t of every valid token (the eos token included).
    ``level="sequence"``: χ²(p_θ ‖ p_ref) = Σ_y (p_θ(y) − p_ref(y))² / p_ref(y) = E_{p_θ}[(w − 1)²/w]
    between the response distributions, w = w_{|y|−1} the full-response ratio (last valid token).

    Estimate: (1/B) Σ_b Σ_{t∈S_b} (w_bt − 1)²/w_bt (= 4 sinh²(½ log w), computed in log space), S_b
    the selected positions. Gradient: for each depth, ∇ Σ_z π(z)² / π_ref(z) = 2 E_π[w ∇ log π(z)] and
    ∇ Σ_z π(z) = E_π[∇ log π(z)] (the probability of reaching that depth — not constant with
    ``eos``), so the surrogate
        Σ_{t∈S_b} [ sg((w_t − 1)²/w_t) + 2 sg(w_t − 1) (c_t − sg(c_t)) ],  c_t = Σ_{k≤t} log π_θ(y_k),
    has the estimate as value and an unbiased gradient of χ². (A weight 2 w_t instead of 2 (w_t − 1)
    has expected gradient ∇χ²_occ + 2 ∇E_π|y| on variable-length responses — a length penalty; on
    fixed-length responses, and at ``level="sequence"``, the two coincide in expectation.)
    Requires full support of π_ref where π_θ puts mass, and π_θ > 0 where π_ref does.

    Shapes: logp[B, T], ref_logp[B, T], mask[B, T] (valid tokens form a prefix) -> Chi2Penalty.

    References: Laidlaw, Singhal, Dragan (2025), "Correlated Proxies: A New Definition and Improved
    Mitigation for Reward Hacking", Sec. 5 (χ² occupancy-measure regularization); the token-tree
    occupancy form, the estimator and its surrogate are derived here.
    """
    b = check_positive_scalar("beta", beta)
    lv = check_choice("level", level, ("occupancy", "sequence"))
    lp0, ref0, m = check_logp_pair(logp, ref_logp, "ref_logp", mask)
    zero = torch.zeros_like(lp0)
    c = torch.cumsum(lp0, dim=1)
    log_w = c.detach() - torch.cumsum(ref0, dim=1)
    if lv == "sequence":
        t_idx = torch.arange(lp0.shape[1], device=lp0.device).expand_as(m)
        last = torch.where(m, t_idx, torch.full_like(t_idx, -1)).amax(dim=1, keepdim=True)
        sel = (t_idx == last) & m
    else:
        sel = m
    value = torch.where(sel, 4.0 * torch.sinh(0.5 * log_w) ** 2, zero)
    weight = torch.where(sel, 2.0 * torch.expm1(log_w), zero)
    per = value + weight * (c - c.detach())
    estimate = value.sum(dim=1).mean()
    return Chi2Penalty(loss=b * per.sum(dim=1).mean(), estimate=estimate.detach())

