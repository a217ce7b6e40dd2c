"""Preference models over a finite response set and the preference game.

A preference model over ``n`` responses is a matrix ``P[y, y'] = P(y ≻ y')`` with
``P + Pᵀ = 1`` (so the diagonal is 1/2) and entries in [0, 1]. It defines the symmetric
two-player constant-sum game with payoff ``P(π ≻ π') = πᵀ P π'`` (Munos et al. 2023;
Swamy et al. 2024). Its value is 1/2 and its maximin strategies are the *minimax winners*
(von Neumann winners, maximal lotteries), computed here by a linear program.

Sign conventions (all certificates are >= 0 and 0 exactly at an equilibrium):

* ``exploitability(P, π) = max_y P(y ≻ π) − 1/2``: how much a best response beats π;
* ``duality_gap(P, π, π') = max_y P(y ≻ π') − min_y P(π ≻ y)`` for the pair (π max player,
  π' min player); ``duality_gap(P, π, π) = 2·exploitability(P, π)``;
* ``regularized_exploitability(P, π, π_ref, τ) = max_π' J_τ(π', π) − 1/2`` for the KL-regularized
  game ``J_τ(π, π') = πᵀPπ' − τ KL(π‖π_ref) + τ KL(π'‖π_ref)``.

Each certificate costs one matrix-vector product, O(n²).

References: Munos et al. (2023), "Nash Learning from Human Feedback", Sec. 3–4;
Swamy et al. (2024), "A Minimaximalist Approach to RLHF", Sec. 2 (minimax winners);
Fishburn (1984), "Probabilistic social choice based on simple voting comparisons" (maximal
lotteries); Bradley & Terry (1952).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy.special import expit, log_expit, log_softmax

from rlref import divergences
from rlref._checks import as_float_array, check_distribution, check_finite, check_positive
from rlref.games import maximin_strategy
from rlref.solve import soft_value

__all__ = [
    "PREF_ATOL",
    "bradley_terry",
    "validate_preference_matrix",
    "PreferenceData",
    "sample_preferences",
    "win_rate",
    "win_rates",
    "minimax_winner",
    "exploitability",
    "duality_gap",
    "condorcet_winner",
    "RegularizedNash",
    "regularized_nash",
    "regularized_exploitability",
    "fit_bradley_terry",
    "kl_divergence",
]

#: Tolerance on |P + Pᵀ − 1| accepted by :func:`validate_preference_matrix`.
PREF_ATOL = 1e-9


# ----------------------------------------------------------------------------- models
def bradley_terry(r: np.ndarray) -> np.ndarray:
    """Bradley–Terry preference matrix ``P[y, y'] = σ(r_y − r_y')``.

    Shapes: r[n] -> P[n, n]. Raises ValueError for an empty or non-finite reward vector.

    References: Bradley & Terry (1952); Rafailov et al. (2023), "Direct Preference
    Optimization", eq. (1).
    """
    r = as_float_array("r", r, ndim=1)
    if r.size == 0:
        raise ValueError("r must be a non-empty reward vector (the response set is empty)")
    check_finite("r", r)
    return expit(r[:, None] - r[None, :])


def validate_preference_matrix(P: np.ndarray, atol: float = PREF_ATOL) -> np.ndarray:
    """Check that ``P`` is a preference matrix and return it as float64.

    Conditions: square, non-empty, finite, ``0 <= P[y, y'] <= 1`` and
    ``P[y, y'] + P[y', y] = 1`` within ``atol`` (hence ``P[y, y] = 1/2``).
    Raises ValueError naming the first offending entry.
    """
    P = as_float_array("P", P, ndim=2)
    if P.shape[0] != P.shape[1]:
        raise ValueError(f"P must be a square matrix P[y, y'], got shape {P.shape}")
    if P.shape[0] == 0:
        raise ValueError("P must be non-empty (the response set is empty)")
    check_finite("P", P)
    bad = (P < -atol) | (P > 1 + atol)
    if np.any(bad):
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"P entries must lie in [0, 1]; P[{i}, {j}] = {P[i, j]!r}")
    dev = np.abs(P + P.T - 1.0)
    if np.any(dev > atol):
        i, j = (int(k) for k in np.argwhere(dev > atol)[0])
        raise ValueError(f"P + P^T must equal 1; P[{i}, {j}] + P[{j}, {i}] = {P[i, j] + P[j, i]!r}")
    return np.clip(P, 0.0, 1.0)


def _check_policy(name: str, pi: np.ndarray, n: int) -> np.ndarray:
    pi = as_float_array(name, pi, ndim=1)
    if pi.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match P, got {pi.shape}")
    check_distribution(name, pi)
    return pi


# ----------------------------------------------------------------------------- sampling
@dataclass(frozen=True)
class PreferenceData:
    """Sampled comparisons: ``y[i]`` against ``y_prime[i]``; ``y_wins[i]`` is 1[y ≻ y']."""

    y: np.ndarray
    y_prime: np.ndarray
    y_wins: np.ndarray

    @property
    def winners(self) -> np.ndarray:
        return np.where(self.y_wins, self.y, self.y_prime)

    @property
    def losers(self) -> np.ndarray:
        return np.where(self.y_wins, self.y_prime, self.y)

    def __len__(self) -> int:
        return int(self.y.size)


def sample_preferences(
    P: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    policy: np.ndarray | None = None,
    policy2: np.ndarray | None = None,
    pairs: np.ndarray | None = None,
) -> PreferenceData:
    """Draw ``n`` labelled comparisons ``(y, y', 1[y ≻ y'])`` with ``1[y ≻ y'] ~ Bernoulli(P[y, y'])``.

    Pairs come either from ``y ~ policy, y' ~ policy2`` independently (``policy2`` defaults to
    ``policy``; both default to uniform), or uniformly from the rows of ``pairs[m, 2]``.
    Shapes: P[n_resp, n_resp] -> arrays of length n.
    """
    P = validate_preference_matrix(P)
    k = P.shape[0]
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    n = int(n)
    if pairs is not None:
        if policy is not None or policy2 is not None:
            raise ValueError("give either pairs or policy/policy2, not both")
        pairs = np.asarray(pairs)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.shape[0] == 0 or not np.issubdtype(pairs.dtype, np.integer):
            raise ValueError(f"pairs must be a non-empty integer array of shape (m, 2), got {pairs.shape} {pairs.dtype}")
        if pairs.min() < 0 or pairs.max() >= k:
            raise ValueError(f"pairs must index responses in [0, {k}), found {int(pairs[(pairs < 0) | (pairs >= k)][0])}")
        rows = pairs[rng.integers(0, pairs.shape[0], size=n)]
        y, y2 = rows[:, 0], rows[:, 1]
    else:
        p1 = np.full(k, 1.0 / k) if policy is None else _check_policy("policy", policy, k)
        p2 = p1 if policy2 is None else _check_policy("policy2", policy2, k)
        y = rng.choice(k, size=n, p=p1)
        y2 = rng.choice(k, size=n, p=p2)
    wins = rng.random(n) < P[y, y2]
    return PreferenceData(y=y.astype(np.int64), y_prime=y2.astype(np.int64), y_wins=wins)


# ----------------------------------------------------------------------------- the game
def win_rate(P: np.ndarray, pi: np.ndarray, pi2: np.ndarray) -> float:
    """``P(π ≻ π') = πᵀ P π'`` (probability that y ~ π beats an independent y' ~ π').

    References: Munos et al. (2023), eq. (2).
    """
    P = validate_preference_matrix(P)
    n = P.shape[0]
    return float(_check_policy("pi", pi, n) @ P @ _check_policy("pi2", pi2, n))


def win_rates(P: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """``P(y ≻ π) = Σ_y' P[y, y'] π(y')`` for every response y. Shapes: -> [n]."""
    P = validate_preference_matrix(P)
    return P @ _check_policy("pi", pi, P.shape[0])


def exploitability(P: np.ndarray, pi: np.ndarray) -> float:
    """``max_y P(y ≻ π) − 1/2`` (>= 0 because πᵀPπ = 1/2; = 0 iff π is a minimax winner).

    References: Swamy et al. (2024), Def. 2.2 (minimax winner); derived here: the value of the
    symmetric game is 1/2, so this is the best response's advantage over π itself.
    """
    return float(np.max(win_rates(P, pi)) - 0.5)


def duality_gap(P: np.ndarray, pi: np.ndarray, pi2: np.ndarray | None = None) -> float:
    """``max_y P(y ≻ π') − min_y P(π ≻ y)`` for π (maximizer) and π' (minimizer), >= 0.

    With ``pi2=None`` π' = π and the gap is ``2·exploitability(P, π)``.
    """
    P = validate_preference_matrix(P)
    n = P.shape[0]
    pi = _check_policy("pi", pi, n)
    pi2 = pi if pi2 is None else _check_policy("pi2", pi2, n)
    return float(np.max(P @ pi2) - np.min(pi @ P))


def condorcet_winner(P: np.ndarray) -> int | None:
    """The response y with ``P[y, y'] > 1/2`` for every y' ≠ y, or None if there is none."""
    P = validate_preference_matrix(P)
    n = P.shape[0]
    off = ~np.eye(n, dtype=bool)
    beats = np.where(off, P > 0.5, True).all(axis=1)
    idx = np.flatnonzero(beats)
    return int(idx[0]) if idx.size else None


def minimax_winner(P: np.ndarray, backend: str = "highs") -> np.ndarray:
    """A minimax (von Neumann) winner: ``π ∈ argmax_π min_y' P(π ≻ y')`` by linear programming.

    LP:  max_{π, v} v  s.t.  Σ_y π(y) P[y, y'] >= v for all y',  Σ_y π(y) = 1,  π >= 0.
    The optimal v is the game value 1/2 (the game is symmetric). ``backend="highs"`` uses
    scipy's HiGHS, ``backend="cvxpy"`` solves the same LP with cvxpy (Clarabel). When the
    winner is not unique, any optimal vertex/interior point may be returned.

    Shapes: P[n, n] -> π[n]. Raises RuntimeError if the solver fails.

    References: Swamy et al. (2024), Def. 2.2; Munos et al. (2023), Sec. 3 (Nash of the
    preference game); Fishburn (1984) (maximal lotteries).
    """
    P = validate_preference_matrix(P)
    n = P.shape[0]
    if backend == "highs":
        pi, _ = maximin_strategy(P)  # the one zero-sum LP (rlref.games.qre), here with A = P
    elif backend == "cvxpy":
        import cvxpy as cp

        x = cp.Variable(n, nonneg=True)
        v = cp.Variable()
        prob = cp.Problem(cp.Maximize(v), [P.T @ x >= v, cp.sum(x) == 1])
        prob.solve(solver=cp.CLARABEL)
        if prob.status not in ("optimal", "optimal_inaccurate") or x.value is None:
            raise RuntimeError(f"minimax_winner: cvxpy failed with status {prob.status}")
        pi = np.asarray(x.value)
    else:
        raise ValueError(f"backend must be 'highs' or 'cvxpy', got {backend!r}")
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


# ----------------------------------------------------------------------------- regularized game
def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """``KL(p‖q) = Σ p log(p/q)`` with 0·log 0 = 0 and +inf if p is not absolutely continuous w.r.t. q."""
    return float(divergences.kl(p, q))


@dataclass(frozen=True)
class RegularizedNash:
    """The symmetric equilibrium π*_τ of the KL-regularized preference game.

    ``residual`` = max_y |log π(y) − log softmax(log π_ref + Pπ/τ)(y)| certifies the fixed point;
    ``exploitability`` = regularized_exploitability(P, π, π_ref, τ) (>= 0, 0 at π*_τ).
    """

    pi: np.ndarray
    tau: float
    residual: float
    exploitability: float
    iterations: int


def full_support_distribution(name: str, x: object, n: int) -> np.ndarray:
    """``x`` as a float64 distribution over the n responses with x(y) > 0 for every y.

    The check of a reference (or initial) policy in a KL-regularized preference game, where log π_ref must be
    finite. Shapes: x[n] -> [n]. Raises ValueError naming ``name`` if x has another shape, is not a
    distribution, or has a zero entry (the first one by index).
    """
    a = _check_policy(name, x, n)
    if np.any(a <= 0):
        raise ValueError(f"{name} must have full support; {name}[{int(np.argmin(a))}] = {float(a.min())!r}")
    return a


def _check_ref(pi_ref: np.ndarray | None, n: int) -> np.ndarray:
    return np.full(n, 1.0 / n) if pi_ref is None else full_support_distribution("pi_ref", pi_ref, n)


def regularized_exploitability(P: np.ndarray, pi: np.ndarray, pi_ref: np.ndarray | None, tau: float) -> float:
    """``max_π' J_τ(π', π) − 1/2`` for ``J_τ(π, π') = πᵀPπ' − τKL(π‖π_ref) + τKL(π'‖π_ref)``.

    Closed form: ``τ·logsumexp(log π_ref + Pπ/τ) + τ·KL(π‖π_ref) − 1/2`` (>= 0; = 0 iff π = π*_τ).
    Twice this is the duality gap ``max_π' J_τ(π', π) − min_π' J_τ(π, π')`` (derived here from
    P + Pᵀ = 1).

    References: Munos et al. (2023), Sec. 4 (regularized preference model); derived here.
    """
    P = validate_preference_matrix(P)
    n = P.shape[0]
    t = check_positive("tau", tau)
    ref = _check_ref(pi_ref, n)
    pi = _check_policy("pi", pi, n)
    return float(soft_value(P @ pi, ref, t) + t * kl_divergence(pi, ref) - 0.5)


def _fixed_point_residual(P: np.ndarray, log_ref: np.ndarray, t: float, z: np.ndarray) -> float:
    logpi = log_softmax(z)
    return float(np.max(np.abs(logpi - log_softmax(log_ref + P @ np.exp(logpi) / t))))


def _solve_stage(P: np.ndarray, log_ref: np.ndarray, t: float, z0: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Newton with backtracking on H(z) = z − log π_ref − P softmax(z)/τ; mirror-prox fallback."""
    n = P.shape[0]

    def H(z: np.ndarray) -> np.ndarray:
        return z - log_ref - P @ np.exp(log_softmax(z)) / t

    z = log_ref + P @ np.exp(log_softmax(z0)) / t
    its = 0
    for _ in range(60):
        if _fixed_point_residual(P, log_ref, t, z) < tol:
            return z, its
        pi = np.exp(log_softmax(z))
        h = H(z)
        J = np.eye(n) - P @ (np.diag(pi) - np.outer(pi, pi)) / t
        step = np.linalg.solve(J, h)
        norm0, lam = np.max(np.abs(h)), 1.0
        while lam > 1e-6 and np.max(np.abs(H(z - lam * step))) >= norm0:
            lam /= 2
        if lam <= 1e-6:
            break
        z = z - lam * step
        its += 1
    # Fallback: magnetic mirror-prox (linear rate), then one more Newton pass.
    eta = 1.0
    z = log_softmax(z0)
    for it in range(1, max_iter + 1):
        pi = np.exp(log_softmax(z))
        z_half = (z + eta * t * log_ref + eta * (P @ pi)) / (1 + eta * t)
        z = log_softmax((z + eta * t * log_ref + eta * (P @ np.exp(log_softmax(z_half)))) / (1 + eta * t))
        its += 1
        if it % 10 == 0 and _fixed_point_residual(P, log_ref, t, z) < max(tol, 1e-6):
            break
    z = log_ref + P @ np.exp(log_softmax(z)) / t
    for _ in range(60):
        if _fixed_point_residual(P, log_ref, t, z) < tol:
            break
        pi = np.exp(log_softmax(z))
        J = np.eye(n) - P @ (np.diag(pi) - np.outer(pi, pi)) / t
        z = z - np.linalg.solve(J, H(z))
        its += 1
    return z, its


def regularized_nash(
    P: np.ndarray,
    pi_ref: np.ndarray | None,
    tau: float,
    tol: float = 1e-12,
    max_iter: int = 200_000,
) -> RegularizedNash:
    """Solve ``π*_τ = argmax_π min_π' J_τ(π, π')`` for ``J_τ(π, π') = πᵀPπ' − τKL(π‖π_ref) + τKL(π'‖π_ref)``.

    The game is strictly convex–concave and symmetric, so its unique equilibrium is (π*, π*)
    with the fixed point ``π* ∝ π_ref · exp(P π* / τ)``. The solver is Newton's method with backtracking on
    ``z = log π_ref + P softmax(z)/τ``, continued from τ = 1 down to the requested τ by halving
    (warm starts); the fallback is magnetic mirror-prox in log space, ``π' ∝ (π_t π_ref^{ητ} e^{η P π_½})^{1/(1+ητ)}``
    (linear convergence). The certificate is the fixed-point
    residual in log space, which must fall below ``max(tol, 64·eps·(1 + 1/τ))`` (the round-off
    floor of evaluating Pπ/τ).

    Shapes: P[n, n], pi_ref[n] (None = uniform, must have full support) -> π[n].
    Raises ValueError for tau <= 0 or bad P/pi_ref; RuntimeError if ``tol`` is not reached.

    References: Munos et al. (2023), Prop. 1 (existence/uniqueness of the regularized Nash);
    Sokota et al. (2023), "A Unified Approach to Reinforcement Learning, Quantal Response
    Equilibria, and Two-Player Zero-Sum Games" (magnetic mirror descent); derived here: the
    fixed-point equation and the Newton polish.
    """
    P = validate_preference_matrix(P)
    n = P.shape[0]
    t = check_positive("tau", tau)
    ref = _check_ref(pi_ref, n)
    log_ref = np.log(ref)
    floor = max(tol, 64 * np.finfo(float).eps * (1.0 + 1.0 / t))  # round-off floor of the residual
    # Homotopy in tau: solve at tau_k = max(tau, 2^-k), warm-starting each stage.
    taus = [max(t, 2.0**-k) for k in range(0, 64) if 2.0**-k > t] + [t]
    z = log_ref.copy()
    iterations = 0
    for tk in taus:
        z, its = _solve_stage(P, log_ref, tk, z, floor if tk == t else 1e-9, max_iter)
        iterations += its
    res = _fixed_point_residual(P, log_ref, t, z)
    pi = np.exp(log_softmax(z))
    if not res < floor:
        raise RuntimeError(f"regularized_nash did not reach tol={floor:.1e}: fixed-point residual {res:.3e} (tau={t})")
    return RegularizedNash(pi=pi, tau=t, residual=res, exploitability=regularized_exploitability(P, pi, ref, t), iterations=iterations)


# ----------------------------------------------------------------------------- Bradley–Terry fit
def _check_bt_mle_exists(WP: np.ndarray) -> None:
    """RuntimeError unless the digraph y → y' (y beats y' with positive weight) is strongly connected.

    Ford (1957), condition (A): for every split of the responses into two non-empty sets, some
    member of each beats some member of the other; equivalently strong connectivity. A strongly
    connected component with no edge coming in from outside is a set never beaten by the rest.
    """
    n = WP.shape[0]
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    G.add_edges_from((int(i), int(j)) for i, j in zip(*np.nonzero(WP > 0), strict=True) if i != j)
    if n <= 1 or nx.is_strongly_connected(G):
        return
    C = nx.condensation(G)
    top = next(c for c in nx.topological_sort(C) if C.in_degree(c) == 0)
    members = sorted(C.nodes[top]["members"])
    raise RuntimeError(
        f"fit_bradley_terry: the maximum-likelihood reward does not exist: responses {members} are never beaten by the "
        f"other responses (P[y, y'] * weights[y, y'] = 0 for every y outside that set, y' inside), so their reward "
        f"diverges to +inf; the comparison graph must be strongly connected (Ford 1957), or pass ridge > 0"
    )


def fit_bradley_terry(P: np.ndarray, weights: np.ndarray | None = None, ridge: float = 0.0) -> np.ndarray:
    """Population maximum-likelihood Bradley–Terry reward fitted to a (possibly intransitive) P.

    r̂ = argmin_r Σ_{y,y'} w(y, y') [−P[y,y'] log σ(r_y − r_y')] + ridge·‖r‖²/2, normalized to mean 0,
    where ``w[y, y']`` is the probability of comparing the ordered pair (default uniform).
    If P is itself Bradley–Terry with reward r and w has connected support, r̂ = r − mean(r).

    Existence (ridge = 0): the MLE exists, finite and unique up to a constant, iff the "beats"
    digraph with an edge y → y' whenever w(y, y')·P[y, y'] > 0 is strongly connected (Zermelo
    1929; Ford 1957, condition A); otherwise some set of responses is never beaten by the rest and
    its rewards diverge. This is checked first (networkx), with a RuntimeError naming that set.

    Solved by Newton's method. Shapes: P[n, n], weights[n, n] -> r̂[n]. Raises RuntimeError if the
    MLE does not exist (above) or Newton fails; ValueError on bad P, weights or ridge.

    References: Bradley & Terry (1952); Ford (1957), "Solution of a ranking problem from binary
    comparisons", condition (A); Rafailov et al. (2023), eq. (2) (reward-model loss).
    """
    P = validate_preference_matrix(P)
    n = P.shape[0]
    W = np.full((n, n), 1.0 / n**2) if weights is None else as_float_array("weights", weights, ndim=2)
    if W.shape != (n, n):
        raise ValueError(f"weights must have shape {(n, n)}, got {W.shape}")
    if np.any(W < 0) or not np.all(np.isfinite(W)):
        raise ValueError("weights must be finite and non-negative")
    W = W / W.sum()

    ridge = float(ridge)
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be >= 0 and finite, got {ridge!r}")
    WP = W * P
    if ridge == 0.0:
        _check_bt_mle_exists(WP)

    def loss_grad_hess(r: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        d = r[:, None] - r[None, :]
        loss = -np.sum(WP * log_expit(d)) + 0.5 * ridge * r @ r
        G = -WP * expit(-d)
        grad = G.sum(axis=1) - G.sum(axis=0) + ridge * r
        C = WP * expit(d) * expit(-d)
        C = C + C.T
        hess = np.diag(C.sum(axis=1)) - C + ridge * np.eye(n)
        return float(loss), grad, hess

    # Newton's method with backtracking (the loss is convex; its Hessian is a graph Laplacian).
    r = np.zeros(n)
    loss, grad, hess = loss_grad_hess(r)
    for _ in range(200):
        if np.max(np.abs(grad)) < 1e-13:
            break
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        lam = 1.0
        while lam > 1e-12:
            new_loss, new_grad, new_hess = loss_grad_hess(r - lam * step)
            if new_loss <= loss - 1e-4 * lam * grad @ step:
                break
            lam /= 2
        if lam <= 1e-12:
            break
        r, loss, grad, hess = r - lam * step, new_loss, new_grad, new_hess
    r = r - r.mean()
    if not np.all(np.isfinite(r)) or np.max(np.abs(grad)) > 1e-8:
        raise RuntimeError(f"fit_bradley_terry: Newton did not converge (|grad|={np.max(np.abs(grad)):.2e}); "
                           "the MLE may not exist (a response is never beaten); use ridge > 0")
    return r


# ----------------------------------------------------------------------------- random instances
# (moved here from the nash-intransitive and inpo-last-iterate reproductions, which each had a copy)
def random_preference_matrix(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random general preference matrix P = ½ + (B − Bᵀ)/2 with B[i, j] ~ U(−½, ½) i.i.d.

    P[i, j] = Pr(i ≻ j) is in [0, 1], P + Pᵀ = 1, diag(P) = ½; it is generically intransitive (not
    of Bradley–Terry form), the regime where Nash (minimax-winner) alignment differs from reward
    maximization.

    Shapes: integer n >= 1 -> P[n, n]. Randomness: one ``rng.uniform(-0.5, 0.5, (n, n))`` call.
    References: Swamy et al. (2024), "A Minimaximalist Approach to RLHF" (SPO), §2 (general
    preferences, minimax winners); Zhang et al. (2024), INPO, §5 (random preference instances).
    """
    from rlref._checks import check_count

    n = check_count("n", n, 1, "the number of responses")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    B = rng.uniform(-0.5, 0.5, (n, n))
    return 0.5 + (B - B.T) / 2


__all__ += ["random_preference_matrix", "full_support_distribution"]
