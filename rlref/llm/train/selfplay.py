"""Iterative self-play preference optimization in the training loop: INPO and SPO.

Both learn from a *preference oracle* ``P(y ≻ y' | x)`` instead of a reward model. On the toy task the
oracle compares the exact checker's scores (or those of the config's ``reward_fn``):
``P(y ≻ y') = 1[s(y) > s(y')] + ½·1[s(y) = s(y')]`` (correct beats incorrect, a tie is ½); a general,
possibly intransitive oracle is plugged in with ``preference_fn: "module:function"``
(``f(problems, responses_a, responses_b) -> one P(a ≻ b) in [0, 1] per pair``).

**INPO** (Zhang et al. 2024, "Iterative Nash Policy Optimization", arXiv 2407.00617, Algorithm 1).
Iteration t (``iteration_steps`` optimizer steps):

1. for each prompt sample two responses y, y' from the previous iterate π_t (π_1 = the initial policy);
2. query the oracle for p = P(y ≻ y');
3. minimize, over π_θ, the INPO loss (:func:`rlref.llm.preference.inpo_loss`, eq. (9)/(10))
   ``E[(h_t(π_θ, y_w, y_l) − 1/(2η))²]`` with
   ``h_t = log π_θ(y_w)/π_θ(y_l) − (τ/η) log π_ref(y_w)/π_ref(y_l) − ((η−τ)/η) log π_t(y_w)/π_t(y_l)``;
   the winner is drawn from the oracle (y_w = y with probability p), and we minimize the expectation over
   that draw exactly: ``p·ℓ(y, y') + (1 − p)·ℓ(y', y)`` (the population loss of Sec. 4; equal to the
   sampled-label loss when p ∈ {0, 1}, and it keeps ties instead of dropping them);
4. after the iteration's last step, π_{t+1} ← π_θ.

The population minimizer of step 3 is the online-mirror-descent update
``π_{t+1} ∝ π_t^{1−τ/η} π_ref^{τ/η} exp(P(y ≻ π_t)/η)`` (Sec. 4), whose last iterate converges to the
Nash policy of the τ-KL-regularized preference game. The previous iterate's weights live in
``trainer.extra_state["inpo_previous"]`` (saved in every checkpoint), so a resumed run repeats an
uninterrupted one bit for bit. Micro-batches count pairs: each pair's loss is divided by the number of
pairs of the whole step (times the world size, which DDP's averaging divides out), so micro-batching and
data parallelism give the full-batch gradient exactly.

**SPO** (Swamy et al. 2024, "A Minimaximalist Approach to Reinforcement Learning from Human Feedback",
arXiv 2401.04056, Algorithm 1). Per step, sample a group of ``group_size`` responses per prompt from the
current policy, reward each by its win rate against the others of its group under the oracle
(:func:`rlref.llm.preference.spo_win_rate_rewards`: r_i = (1/(G−1)) Σ_{j≠i} P(y_i ≻ y_j)), then apply the
loop's GRPO-family policy update (advantage, ``ppo_clip``, KL, length reward and aggregation as
configured). The win rates average ½ in every group by construction, so ``reward_mean`` in the metrics is
the oracle's score mean instead (the checker's accuracy by default).

Keys (``selfplay_kwargs``): INPO ``eta`` (> 0), ``tau`` (0 <= τ < η), ``iteration_steps`` (>= 1),
``preference_fn``; SPO ``preference_fn``. Unknown keys and bad values raise ValueError before training.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import weakref
from collections.abc import Callable

import torch

from rlref.llm.divergences import kl_penalty
from rlref.llm.preference import inpo_loss, spo_win_rate_rewards
from rlref.llm.train.config import resolve_reward_fn
from rlref.llm.train.loop import Batch, StepResult, Trainer, response_logprobs

__all__ = ["ALGORITHMS", "DEFAULTS", "check_kwargs", "score_preferences", "oracle_preferences", "inpo_step", "spo_step",
           "previous_iterate"]

DEFAULTS: dict[str, dict] = {
    "inpo": {"eta": 1.0, "tau": 0.1, "iteration_steps": 2, "preference_fn": None},
    "spo": {"preference_fn": None},
}


def _fail(key: str, msg: str) -> ValueError:
    return ValueError(f"config key 'selfplay_kwargs': {key!r} {msg}")


def _load_preference_fn(spec: str) -> Callable:
    try:
        return resolve_reward_fn(spec)
    except ValueError as exc:
        raise _fail("preference_fn", f"must be an importable 'module:function'; got {spec!r} ({exc})") from exc


def _check_preference_fn(fn: Callable, spec: str) -> None:
    """Call ``fn`` once on a dummy batch: it must return one probability in [0, 1] per pair."""
    from rlref.llm.train.task import ModSumTask

    task = ModSumTask()
    probs = task.batch(3, seed=0)
    try:
        out = torch.as_tensor(fn(probs, [task.solution(p) for p in probs], [task.solution(p, wrong=True) for p in probs]),
                              dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise _fail("preference_fn", f"{spec!r} must return one float P(a > b) per pair ({exc})") from exc
    if tuple(out.shape) != (3,):
        raise _fail("preference_fn", f"{spec!r} returned shape {tuple(out.shape)} for 3 pairs; it must return one float per pair")
    if not bool(((out >= 0) & (out <= 1)).all()):
        raise _fail("preference_fn", f"{spec!r} must return probabilities in [0, 1]; got {out.tolist()}")


def check_kwargs(name: str, kwargs: dict | None) -> dict:
    """Validate ``selfplay_algorithm`` = ``name`` and its ``selfplay_kwargs``; returns them merged over
    :data:`DEFAULTS`. Raises ValueError naming the config key (an unknown algorithm or key, a bad value, a
    ``preference_fn`` that cannot be imported or returns the wrong shape)."""
    if name not in ALGORITHMS:
        raise ValueError(f"config key 'selfplay_algorithm': unknown value {name!r}; choose one of {sorted(ALGORITHMS)}")
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(kwargs, dict):
        raise ValueError(f"config key 'selfplay_kwargs' must be a mapping; got {kwargs!r}")
    unknown = sorted(set(kwargs) - set(DEFAULTS[name]))
    if unknown:
        raise ValueError(f"config key 'selfplay_kwargs': unknown key(s) {unknown} for {name!r}; known: {sorted(DEFAULTS[name])}")
    kw = {**DEFAULTS[name], **kwargs}
    if name == "inpo":
        for k in ("eta", "tau"):
            if isinstance(kw[k], bool) or not isinstance(kw[k], (int, float)) or not math.isfinite(kw[k]):
                raise _fail(k, f"must be a finite number; got {kw[k]!r}")
        if kw["eta"] <= 0:
            raise _fail("eta", f"must be > 0; got {kw['eta']!r}")
        if not 0 <= kw["tau"] < kw["eta"]:
            raise _fail("tau", f"must satisfy 0 <= tau < eta = {kw['eta']!r}; got {kw['tau']!r}")
        it = kw["iteration_steps"]
        if isinstance(it, bool) or not isinstance(it, int) or it < 1:
            raise _fail("iteration_steps", f"must be an integer >= 1; got {it!r}")
    if kw["preference_fn"] is not None:
        if not isinstance(kw["preference_fn"], str):
            raise _fail("preference_fn", f"must be a 'module:function' string; got {kw['preference_fn']!r}")
        _check_preference_fn(_load_preference_fn(kw["preference_fn"]), kw["preference_fn"])
    return kw


# ---- the oracle -------------------------------------------------------------------------------------
def score_preferences(scores_a: torch.Tensor, scores_b: torch.Tensor) -> torch.Tensor:
    """The score oracle: P(a ≻ b) = 1[s_a > s_b] + ½·1[s_a = s_b] = (sign(s_a − s_b) + 1)/2, elementwise
    (broadcasting). On the toy task s is the exact checker (1 correct, 0 not): correct beats incorrect."""
    return (torch.sign(scores_a.double() - scores_b.double()) + 1.0) / 2.0


def oracle_preferences(problems: list, responses_a: list[str], responses_b: list[str], scores_a: torch.Tensor,
                       scores_b: torch.Tensor, preference_fn: Callable | None = None) -> torch.Tensor:
    """P(a_i ≻ b_i) [N] for N pairs: ``preference_fn(problems, responses_a, responses_b)`` when given, else
    :func:`score_preferences` of the scores. Raises ValueError if ``preference_fn`` returns a wrong shape or
    a value outside [0, 1]."""
    if preference_fn is None:
        return score_preferences(torch.as_tensor(scores_a), torch.as_tensor(scores_b))
    p = torch.as_tensor(preference_fn(problems, responses_a, responses_b), dtype=torch.float64).reshape(-1)
    if p.shape[0] != len(problems) or not bool(((p >= 0) & (p <= 1)).all()):
        raise ValueError(f"preference_fn must return {len(problems)} probabilities in [0, 1]; got {p.tolist()}")
    return p


def _group_preferences(problems: list, texts: list[str], scores: torch.Tensor, g: int, preference_fn: Callable | None) -> torch.Tensor:
    """The oracle's matrix P[b, i, j] = P(y_bi ≻ y_bj) for rows in prompt-major groups of ``g`` (diagonal ½)."""
    s = scores.double().reshape(-1, g)
    if preference_fn is None:
        return score_preferences(s[:, :, None], s[:, None, :])
    nb = s.shape[0]
    iu = [(b, i, j) for b in range(nb) for i in range(g) for j in range(i + 1, g)]
    p_ij = oracle_preferences([problems[b * g + i] for b, i, _ in iu], [texts[b * g + i] for b, i, _ in iu],
                              [texts[b * g + j] for b, _, j in iu], s.new_zeros(len(iu)), s.new_zeros(len(iu)), preference_fn)
    P = torch.full((nb, g, g), 0.5, dtype=torch.float64)
    for (b, i, j), p in zip(iu, p_ij.tolist(), strict=True):
        P[b, i, j], P[b, j, i] = p, 1.0 - p
    return P


# ---- shared pieces -----------------------------------------------------------------------------------
def _result(**metrics) -> StepResult:
    """A StepResult by keyword; a field this module does not compute is NaN."""
    return StepResult(**{f.name: metrics.get(f.name, math.nan) for f in dataclasses.fields(StepResult)})


_PREVIOUS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def previous_iterate(trainer: Trainer):
    """INPO's previous iterate π_t: a frozen copy of the policy whose ``state_dict`` is
    ``trainer.extra_state["inpo_previous"]`` (the same tensors, so a checkpoint saves it and a resume, which
    replaces that entry, rebuilds it). Created from the current policy at the first INPO step (π_1 = the
    initial policy)."""
    st = trainer.extra_state.get("inpo_previous")
    cached = _PREVIOUS.get(trainer)
    if cached is not None and cached[1] is st:
        return cached[0]
    prev = copy.deepcopy(trainer.ref).eval()
    prev.load_state_dict(st if st is not None else trainer.model.state_dict())
    sd = prev.state_dict()
    trainer.extra_state["inpo_previous"] = sd
    _PREVIOUS[trainer] = (prev, sd)
    return prev


def _seq_logps(model, b: Batch, temperature: float) -> torch.Tensor:
    lp = response_logprobs(model, b, temperature=temperature)
    return torch.where(b.resp_mask, lp, torch.zeros_like(lp)).sum(1)


# ---- INPO -------------------------------------------------------------------------------------------
def inpo_step(trainer: Trainer, k: int, **kwargs) -> StepResult:
    """One INPO optimizer step (module docstring): pairs from π_t, the oracle's p, the expected INPO loss
    against π_t and π_ref; π_{t+1} ← π_θ after every ``iteration_steps``-th step. ``micro_batch_size``
    counts pairs (``prompts_per_step`` pairs per step, one per prompt)."""
    kw = check_kwargs("inpo", kwargs)
    cfg, tok = trainer.cfg, trainer.tokenizer
    n = cfg.prompts_per_step
    if getattr(trainer, "fsdp", False):
        raise ValueError("config key 'distributed': INPO keeps a full copy of the previous iterate in extra_state; it runs in one "
                         "process or under DDP, not under fsdp2")
    if n % (cfg.micro_batch_size * trainer.world):
        raise ValueError(f"config key 'micro_batch_size': INPO's {n} pairs per step (prompts_per_step) are not divisible by "
                         f"micro_batch_size={cfg.micro_batch_size} x world_size={trainer.world}")
    pref_fn = _load_preference_fn(kw["preference_fn"]) if kw["preference_fn"] else None
    t0 = time.perf_counter()
    prev = previous_iterate(trainer)
    probs = trainer.problems(k)
    mbs, own = trainer.micro_batches(n), trainer.mine(n)
    pairs = [i for j in own for i in range(n)[mbs[j]]]
    rows = [2 * i + s for i in pairs for s in (0, 1)]  # pair i = sequences 2i (a) and 2i + 1 (b)
    whole = trainer.rollout(k, rows, [probs[r // 2].prompt for r in rows], model=prev, max_new_tokens=cfg.max_new_tokens)
    texts = trainer.decode(whole.seq[:, whole.prompt_len:], whole.resp_mask)
    lengths = whole.resp_mask.sum(1)
    scores, correct = trainer.rewards([probs[r // 2] for r in rows], texts, lengths)
    pa = oracle_preferences([probs[i] for i in pairs], texts[0::2], texts[1::2], scores[0::2], scores[1::2], pref_fn)
    eos = tok.eos_token_id
    trunc = ~(whole.seq[:, whole.prompt_len:].eq(eos) & whole.resp_mask).any(1)
    trainer.optimizer.zero_grad(set_to_none=True)
    # loss, score sum, correct sum, length sum, tokens, kl sum, entropy sum, truncated
    tot = torch.zeros(8, dtype=torch.float64)
    trainer.module.train()
    off = 0  # first owned pair of this micro-batch
    for i, j in enumerate(own):
        w = len(range(n)[mbs[j]])
        sl = slice(2 * off, 2 * (off + w))
        b, p = whole.rows(sl), pa[off : off + w]
        off += w
        with torch.no_grad():
            ref = _seq_logps(trainer.ref, b, cfg.temperature)
            old = _seq_logps(prev, b, cfg.temperature)
            ref_tok = response_logprobs(trainer.ref, b, temperature=cfg.temperature)
        with trainer.accumulate(i == len(own) - 1), trainer.autocast():
            lp, ent = response_logprobs(trainer.module, b, temperature=cfg.temperature, with_entropy=True)
            seq = torch.where(b.resp_mask, lp, torch.zeros_like(lp)).sum(1)
            ab = inpo_loss(seq[0::2], seq[1::2], ref[0::2], ref[1::2], prev_chosen_logps=old[0::2], prev_rejected_logps=old[1::2],
                           eta=kw["eta"], tau=kw["tau"])
            ba = inpo_loss(seq[1::2], seq[0::2], ref[1::2], ref[0::2], prev_chosen_logps=old[1::2], prev_rejected_logps=old[0::2],
                           eta=kw["eta"], tau=kw["tau"])
            pp = p.to(ab.losses.dtype)
            loss = (pp * ab.losses + (1 - pp) * ba.losses).sum() / n * trainer.world
        loss.backward()
        with torch.no_grad():
            mf = b.resp_mask.to(lp.dtype)
            kl = (kl_penalty(lp.detach(), ref_tok, "k3") * mf).sum()
            tot += torch.tensor([loss.item() / trainer.world, float(scores[sl].sum()), float(correct[sl].float().sum()),
                                 float(mf.sum()), float(mf.sum()), float(kl), float((ent * mf).sum()), float(trunc[sl].sum())],
                                dtype=torch.float64)
    trainer.all_reduce(tot)
    gn = trainer.optimizer_step()
    if k % kw["iteration_steps"] == 0:
        prev.load_state_dict(trainer.model.state_dict())  # in place: extra_state["inpo_previous"] sees it
    dt = time.perf_counter() - t0
    m = 2 * n
    return _result(step=k, loss=float(tot[0]), reward_mean=float(tot[1] / m), accuracy=float(tot[2] / m),
                   response_length_mean=float(tot[3] / m), kl=float(tot[5] / tot[4]), entropy=float(tot[6] / tot[4]),
                   clip_fraction=0.0, grad_norm=gn, tokens=int(tot[4]), tokens_per_s=float(tot[4]) / max(dt, 1e-9), seconds=dt,
                   truncated_fraction=float(tot[7] / m))


# ---- SPO --------------------------------------------------------------------------------------------
def spo_step(trainer: Trainer, k: int, **kwargs) -> StepResult:
    """One SPO step (module docstring): ``group_size`` samples per prompt from the current policy, each
    rewarded by its win rate in its group under the oracle, then the loop's GRPO-family update. Under data
    parallelism every rank must hold whole groups: ``micro_batch_size`` a multiple of ``group_size``."""
    kw = check_kwargs("spo", kwargs)
    cfg = trainer.cfg
    g = cfg.group_size
    if g < 2:
        raise ValueError(f"config key 'group_size' must be >= 2 for SPO (win rates against the others of a group); got {g}")
    if trainer.world > 1 and cfg.micro_batch_size % g:
        raise ValueError(f"config key 'micro_batch_size': SPO under data parallelism needs whole groups per micro-batch; "
                         f"micro_batch_size={cfg.micro_batch_size} is not a multiple of group_size={g}")
    pref_fn = _load_preference_fn(kw["preference_fn"]) if kw["preference_fn"] else None
    score_sum = torch.zeros(1, dtype=torch.float64)

    def win_rates(problems, texts, lengths):
        scores, correct = Trainer.rewards(trainer, problems, texts, lengths)
        score_sum.add_(scores.double().sum())
        P = _group_preferences(problems, texts, scores, g, pref_fn)
        return spo_win_rate_rewards(P).reshape(-1).to(torch.float32), correct

    trainer.rewards = win_rates  # the loop's GRPO step scores its rollouts with the win rates
    try:
        res = trainer.grpo_step(k)
    finally:
        del trainer.rewards
    trainer.all_reduce(score_sum)
    return dataclasses.replace(res, reward_mean=float(score_sum[0]) / (cfg.prompts_per_step * g))


ALGORITHMS: dict[str, Callable[..., StepResult]] = {"inpo": inpo_step, "spo": spo_step}
