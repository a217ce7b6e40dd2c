"""The one iteration driver: value iteration, soft value iteration, modified policy iteration and
iterative evaluation (discounted), and backward induction (finite horizon), with a pluggable backup
(rlref.solve.bellman: HardBackup, SoftBackup, PolicyBackup).

Discounted sweep: q = r + γ P v, T v = backup.value(q), d = T v − v. Two certificates:

* sup norm (Puterman Thm 6.3.1; Williams & Baird 1993, Cor. 2): ‖T v − V*‖_∞ ≤ γ‖d‖_∞/(1 − γ) and,
  for π δ-greedy for q, 0 ≤ V* − V^π ≤ (2γ‖d‖_∞ + δ)/(1 − γ). Stop when ‖d‖_∞ ≤ ε(1 − γ)/(2γ);
  values = T v.
* span (MacQueen 1966; Porteus 1971; Puterman §6.6, Thm 6.6.3 and Prop. 6.6.5): for ANY v,
      T v + γ/(1 − γ) · min_s d(s)  ≤  V*  ≤  T v + γ/(1 − γ) · max_s d(s),
  because T is monotone and T(v + c) = T v + γc. Values = the midpoint of that interval, with
  half-width γ sp(d)/(2(1 − γ)), sp(d) = max d − min d. For π δ-greedy for q (T_π v ≥ T v − δ) the
  same bound applied to T_π gives V^π ≥ T v − δ + γ/(1 − γ)(min d − δ), hence
      0 ≤ V* − V^π ≤ (γ sp(d) + δ)/(1 − γ)                      (derived here from Thm 6.6.3),
  never worse than the sup-norm bound since sp(d) ≤ 2‖d‖_∞. Stop when γ sp(d)/(1 − γ) ≤ ε.
  The regularized operators T_β, T_π^β are monotone with the same shift property (Geist et al.
  2019, Prop. 2), so the bounds hold verbatim for soft VI (δ = 0: the soft-greedy policy attains
  the soft max).

Modified PI (m > 1) follows each greedy step by m − 1 partial-evaluation sweeps v ← c_π + γ P_π v
(Puterman §6.5); the bounds above are evaluated at the v of each greedy step, so they hold as is.
With the hard backup a greedy step may be *lazy* (HardBackup.lazy_value_argmax): once few actions
change, the gaps sec(s) = max_{a≠π(s)} q_ref(s, a) are kept, and since
q_v(s, a) ≤ q_ref(s, a) + γ max_{s'} (v − v_ref)(s') (T monotone, shift property), every state with
sec(s) + γ max (v − v_ref) ≤ (T_π v)(s) has (T v)(s) = (T_π v)(s) exactly; only the other states get
a full row. So T v, d and the bounds are exact, at the cost of one sweep plus those rows; a lazy
step that meets the stopping rule is redone as a full backup, so the returned q is a full one.

Never silent: reaching ``max_iter`` (or a float64 fixed point above the threshold) gives
``converged=False`` with the achieved, still valid, bound, or a RuntimeError when ``strict``.

Finite horizon: backward induction Q_h = r_h + γ P_h V_{h+1}, V_h = backup.value(Q_h, h), V_H = 0;
the returned policy loses at most Σ_h γ^h max_s δ_h(s) (derived here; δ_h the greedy slack).

References: Puterman (1994), "Markov Decision Processes", Thm 4.5.1, Thm 6.3.1, §6.5, §6.6;
MacQueen (1966), "A modified dynamic programming method for Markovian decision problems";
Porteus (1971), "Some bounds for discounted sequential decision processes"; Williams & Baird (1993);
Geist, Scherrer & Pietquin (2019), "A theory of regularized MDPs".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlref._checks import as_float_array, check_count, check_finite
from rlref.mdp import TabularMDP
from rlref.solve.bellman import _q, affine_sweep

__all__ = ["IterationOutcome", "iterate", "backward_induction", "span_bounds_of", "BOUNDS"]

#: Stagnation floor: an iteration whose change is below this many ulps of ‖v‖ cannot progress.
ULPS = 16.0
#: Adaptive partial evaluation tests its stopping rule every this many sweeps (the test costs
#: about as much as a sweep on a sparse P_π with ~5 non-zeros per row).
SWEEP_CHECK_EVERY = 4
#: The certificates the driver offers.
BOUNDS = ("span", "sup")
#: Hard modified PI stores the action gaps after a full backup that changed at most S / LAZY_AFTER
#: actions, so later steps can skip the full backup where the gaps hold (HardBackup.lazy_value_argmax).
LAZY_AFTER = 16


@dataclass(frozen=True, eq=False)
class IterationOutcome:
    """What the driver returns (the wrappers turn it into PlanningResult / SoftResult).

    Attributes: values, q (Q at the last v, the one ``policy`` is greedy for), policy, iterations,
    bellman_residual ‖T v − v‖_∞, suboptimality_bound (bound on V* − V^π, covers ‖values − V*‖ too),
    value_error_bound (bound on ‖values − V*‖_∞), converged.
    """

    values: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    iterations: int
    bellman_residual: float
    suboptimality_bound: float
    value_error_bound: float
    converged: bool


def check_max_iter(max_iter: int) -> int:
    """max_iter as a positive int; ValueError naming it otherwise."""
    return check_count("max_iter", max_iter)


def check_v0(mdp: TabularMDP, v0: np.ndarray | None) -> np.ndarray | None:
    """A finite copy of v0 of shape (S,), or None."""
    if v0 is None:
        return None
    v0 = as_float_array("v0", v0, ndim=1)
    if v0.shape != (mdp.num_states,):
        raise ValueError(f"v0 must have shape (S,) = ({mdp.num_states},), got {v0.shape}")
    check_finite("v0", v0)
    return v0.copy()


def check_tie_tol(tie_tol: float) -> float:
    """tie_tol as a finite float ≥ 0 (NaN and inf rejected: a NaN tolerance made a NaN policy)."""
    try:
        t = float(tie_tol)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tie_tol must be a finite number >= 0, got {tie_tol!r}") from exc
    if not (t >= 0.0) or np.isinf(t):
        raise ValueError(f"tie_tol must be a finite number >= 0, got {tie_tol!r}")
    return t


def check_bounds(bounds: str) -> str:
    if bounds not in BOUNDS:
        raise ValueError(f"bounds must be one of {BOUNDS}, got {bounds!r}")
    return bounds


def span_bounds_of(v: np.ndarray, tv: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """MacQueen-Porteus interval [T v + γ/(1−γ) min d, T v + γ/(1−γ) max d], d = T v − v (no checks)."""
    d = tv - v
    k = gamma / (1.0 - gamma)
    return tv + k * float(d.min()), tv + k * float(d.max())


def iterate(
    mdp: TabularMDP,
    backup,
    v: np.ndarray,
    *,
    epsilon: float,
    max_iter: int,
    m: int = 1,
    bounds: str = "sup",
    strict: bool = False,
    method: str = "value_iteration",
    sweep_tol: float | None = None,
) -> IterationOutcome:
    """Discounted sweeps v ← (partial evaluation)^{m−1} ∘ backup(v) until the chosen certificate ≤ ε.

    See the module docstring for both stopping rules and bounds. ``backup`` is a HardBackup,
    SoftBackup or PolicyBackup; m > 1 needs ``backup.improvement``. γ = 0 stops after one sweep.
    ``sweep_tol`` = θ makes the partial evaluation adaptive: after the greedy step the sweeps
    u ← c_π + γ P_π u stop as soon as sp(u_new − u) ≤ θ · sp(d), tested every SWEEP_CHECK_EVERY
    sweeps (or after m − 1 sweeps). Only the
    span of T v − v enters the certificate and the stopping rule, and on a fast-mixing chain the
    sweeps soon change u by a near-constant only, so further sweeps buy nothing (measured in
    docs/benchmarks.md; a speed heuristic, derived here: the bounds hold for any v).
    No input checks (the public wrappers check).
    """
    gamma = mdp.gamma
    k_gamma = gamma / (1.0 - gamma)
    tiny = ULPS * np.finfo(float).eps
    q, tv = None, None
    residual, width, stat = np.inf, np.inf, np.inf
    converged = False
    k = 0
    masked = getattr(backup, "masked", True)  # −∞ at masked pairs before the max (rlref.solve.bellman)
    fast = m > 1 and hasattr(backup, "value_argmax")  # hard modified PI: argmax with the max, P_π cached
    lazy = fast and hasattr(backup, "lazy_value_argmax")  # skip full backups where action gaps hold
    S = v.shape[0]
    P_pi, c, full = None, None, True  # P_pi holds γ P_π (scaled once per greedy step)
    fails, skip = 0, 0
    bufs = (np.empty(S), np.empty(S)) if m > 1 else ()  # the sweeps alternate between these two
    while k < max_iter:
        k += 1
        v_eval, step = v, None
        if lazy and P_pi is not None and backup.has_gaps():
            w = affine_sweep(P_pi, v, c, np.empty(S))  # T_π v
            step = backup.lazy_value_argmax(v, w)
            if step is None:  # failed: back off (skip storing gaps for the next 2^fails − 1 full steps)
                backup.forget_gaps()
                fails += 1
                skip = 2**fails - 1
            else:
                fails = 0
        for _attempt in range(2):
            if step is None:
                q = _q(mdp, v, None, masked)
                if fast:
                    tv, actions = backup.value_argmax(q)
                    if lazy:
                        ch = backup.changed
                        if ch is not None and ch * LAZY_AFTER <= S and skip == 0:
                            backup.remember_gaps(q, v, actions)
                        else:
                            backup.forget_gaps()
                            skip = max(skip - 1, 0)
                else:
                    tv = backup.value(q)
                full = True
            else:
                tv, actions = step
                full = False
            d = tv - v
            d_max, d_min = float(d.max()), float(d.min())
            residual = max(d_max, -d_min)
            width = d_max - d_min
            stat = k_gamma * width if bounds == "span" else 2.0 * k_gamma * residual
            if full or not (stat <= epsilon):
                break
            step = None  # a lazy step met the stopping rule: confirm it with the full backup at this v
        if stat <= epsilon or gamma == 0.0:
            converged = True
            break
        scale = tiny * max(1.0, float(tv.max()), -float(tv.min()))
        if (width if bounds == "span" else residual) <= scale:
            break  # float64 fixed point above the requested threshold
        if k == max_iter:
            break  # no sweeps after the last step: the result is certified at v_eval, as computed
        v = tv
        if m > 1:
            if fast:
                P_pi, c = backup.deterministic_improvement(actions, gamma)
            else:
                P_pi, c = backup.improvement(q)
                P_pi = gamma * P_pi
            # v ← c_π + γ P_π v by affine_sweep (one kernel call), into whichever buffer v is not
            a, b = bufs
            if sweep_tol is None:
                for _ in range(m - 1):
                    v = affine_sweep(P_pi, v, c, b if v is a else a)
            else:
                target = sweep_tol * width
                for j in range(1, m):
                    new = affine_sweep(P_pi, v, c, b if v is a else a)
                    if j % SWEEP_CHECK_EVERY:
                        v = new
                        continue
                    diff = new - v if v is tv else np.subtract(new, v, out=v)  # the old iterate's buffer holds the change
                    change = float(diff.max()) - float(diff.min())
                    v = new
                    if change <= target:
                        break
    if not full:  # max_iter after a lazy step: q (and the returned policy) from the full backup at that v
        q = _q(mdp, v_eval, None, masked)
        tv, _ = backup.value_argmax(q)
        d = tv - v_eval
        d_max, d_min = float(d.max()), float(d.min())
        residual, width = max(d_max, -d_min), d_max - d_min
    if hasattr(backup, "greedy"):  # hard backup: the greedy policy and its slack from the row max tv
        policy, slack = backup.greedy(q, tv)
    else:
        policy = backup.policy(q)
        slack = backup.slack(q, policy)
    if bounds == "span":
        values = tv + k_gamma * 0.5 * (d_max + d_min)
        value_bound = 0.5 * k_gamma * width
        bound = k_gamma * width + slack / (1.0 - gamma)
    else:
        values = tv
        value_bound = k_gamma * residual
        bound = 2.0 * k_gamma * residual + slack / (1.0 - gamma)
    if strict and not converged:
        raise RuntimeError(
            f"{method} stopped after {k} iterations without meeting the stopping rule: "
            f"Bellman residual {residual:.3e}, certified suboptimality bound {bound:.3e} > epsilon={epsilon:.3e}"
            f" (raise max_iter, loosen epsilon, or pass strict=False to get converged=False with this bound)"
        )
    return IterationOutcome(
        values=values, q=q, policy=policy, iterations=k, bellman_residual=residual,
        suboptimality_bound=bound, value_error_bound=value_bound, converged=converged,
    )


def backward_induction(mdp: TabularMDP, backup) -> IterationOutcome:
    """Exact finite-horizon recursion V_H = 0, Q_h = r_h + γ P_h V_{h+1}, V_h = backup.value(Q_h, h).

    Returns values (H, S), q (H, S, A), the backup's policy per stage (H, S, A) and the bound
    Σ_h γ^h max_s δ_h(s) on V*_0 − V^π_0 (0 for the soft and policy backups; derived here).
    """
    H, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
    assert H is not None
    values = np.zeros((H, S))
    q = np.zeros((H, S, A))
    policy = np.zeros((H, S, A))
    nxt = np.zeros(S)
    bound = 0.0
    masked = getattr(backup, "masked", True)
    for h in range(H - 1, -1, -1):
        q[h] = _q(mdp, nxt, h, masked)
        policy[h] = backup.policy(q[h], h)
        values[h] = backup.value(q[h], h)
        bound += mdp.gamma**h * backup.slack(q[h], policy[h])
        nxt = values[h]
    return IterationOutcome(
        values=values, q=q, policy=policy, iterations=H, bellman_residual=0.0,
        suboptimality_bound=bound, value_error_bound=0.0, converged=True,
    )
