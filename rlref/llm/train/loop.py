"""The training loop of :mod:`rlref.llm.train`: online GRPO-family RL, offline DPO-family preference
optimization, SFT and (through :mod:`rlref.llm.train.selfplay`) iterative self-play over a Hugging Face
causal LM, with micro-batching, DDP / FSDP2, checkpoint/resume and metrics.

The objectives are rlref.llm's (called, not copied): advantages from :mod:`rlref.llm.advantages`, the
policy losses :func:`rlref.llm.losses.ppo_clip`, :func:`rlref.llm.entropy.lp_reg_loss`,
:func:`rlref.llm.length.drpo_loss`, :func:`rlref.llm.length.kimi_mirror_descent_loss`, the KL term
:func:`rlref.llm.losses.kl_loss`, length rewards, the GRPO-λ switch and the curriculum budget from
:mod:`rlref.llm.length`, preference losses from :mod:`rlref.llm.preference`.

Exact micro-batching (derived here). Every loss is a sum of per-token (or per-sequence, per-group)
terms divided by a normalizer Z of the WHOLE batch (token-mean: the valid-token count;
seq-mean-token-sum and constant: the number of sequences; seq-mean-token-mean: the number of non-empty
sequences; DRPO: the number of groups; the Kimi loss: the number of responses). A micro-batch's loss
divides by its own Z_mb, so it is multiplied by Z_mb / Z with Z the global normalizer, all-reduced over
data-parallel ranks (and by the world size, which DDP's and FSDP's gradient averaging divide out). The
sum of the micro-batch losses is then the full-batch loss exactly, and so is its gradient. With
``ppo_mini_batches`` = M the same holds inside each of the M optimizer updates of a step.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from rlref.llm import advantages as _adv
from rlref.llm import length as _length
from rlref.llm import preference as _pref
from rlref.llm.divergences import kl_penalty
from rlref.llm.entropy import lp_reg_loss, lp_reg_proxy_logprobs
from rlref.llm.logprobs import token_entropy, token_logprobs
from rlref.llm.losses import aggregate, kl_loss, ppo_clip
from rlref.llm.train.config import TrainConfig, needs_reference, resolve_callable, resolve_reward_fn, validate
from rlref.llm.train.models import build_model, load_tokenizer
from rlref.llm.train.task import ModSumTask

__all__ = ["Batch", "StepResult", "Trainer", "train", "sample", "encode_pairs", "pack", "response_logprobs", "normalizer",
           "policy_term", "policy_normalizer", "preference_term", "scheduled_budget", "save_checkpoint", "init_distributed", "CKPT"]

CKPT = "checkpoint.pt"


@dataclass(frozen=True)
class Batch:
    """Sequences = left-padded prompt + right-padded response. ``seq[N, P+T]``, ``attn[N, P+T]``,
    ``resp_mask[N, T]`` (response tokens, EOS included), ``prompt_len`` = P."""

    seq: torch.Tensor
    attn: torch.Tensor
    resp_mask: torch.Tensor
    prompt_len: int

    def rows(self, idx: slice) -> Batch:
        return Batch(seq=self.seq[idx], attn=self.attn[idx], resp_mask=self.resp_mask[idx], prompt_len=self.prompt_len)

    def to(self, device: torch.device) -> Batch:
        return Batch(seq=self.seq.to(device), attn=self.attn.to(device), resp_mask=self.resp_mask.to(device), prompt_len=self.prompt_len)

    def response_ids(self) -> list[list[int]]:
        """The valid response tokens of each row (EOS included when sampled)."""
        return [[t for t, v in zip(r, m, strict=True) if v] for r, m in zip(self.seq[:, self.prompt_len:].tolist(),
                                                                            self.resp_mask.tolist(), strict=True)]


@dataclass(frozen=True)
class StepResult:
    """One optimizer step's metrics (written to metrics.jsonl). ``truncated_fraction``: responses that hit
    the step's max_new_tokens without EOS (0 for the offline families)."""

    step: int
    loss: float
    reward_mean: float
    accuracy: float
    response_length_mean: float
    kl: float
    entropy: float
    clip_fraction: float
    grad_norm: float
    tokens: int
    tokens_per_s: float
    seconds: float
    truncated_fraction: float = 0.0


def _positions(attn: torch.Tensor) -> torch.Tensor:
    return (attn.long().cumsum(-1) - 1).clamp(min=0)


def _logits(model, seq: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    return model(input_ids=seq, attention_mask=attn, position_ids=_positions(attn), use_cache=False).logits


def _cache_kwarg(model) -> str:
    """The KV-cache argument of ``model.forward``: ``cache`` (transformers >= 5.2x) or ``past_key_values``."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _cache_of(out) -> object:
    return getattr(out, "cache", None) if getattr(out, "cache", None) is not None else out.past_key_values


def _all_done(done: torch.Tensor, sync_ranks: bool) -> bool:
    if not sync_ranks or _world()[1] == 1:
        return bool(done.all())
    import torch.distributed as dist

    flag = torch.tensor([int(bool(done.all()))], device=done.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


@torch.no_grad()
def sample(model, tokenizer, prompts: list[str], *, max_new_tokens: int, temperature: float, generators: list[torch.Generator],
           use_cache: bool = True, sync_ranks: bool = False) -> Batch:
    """Sample one response per prompt from ``model``: at each position the token is the inverse CDF of
    softmax(logits/temperature) at a uniform drawn from that row's own generator (``generators[i]``), so a
    row's sample does not depend on which rows share its batch (micro-batches and ranks see the same
    rollouts). Stops at EOS; tokens after EOS are padding (masked).

    ``use_cache``: feed only the new token with the KV cache (``past_key_values``) after the first forward;
    position ids are the running count of attended tokens (left padding excluded), as without the cache, so
    the logits agree to rounding and the tokens are the same. ``sync_ranks`` (FSDP: every forward is a
    collective): all ranks stop at the same position (when every rank's rows are done)."""
    if len(generators) != len(prompts):
        raise ValueError(f"generators must hold one generator per prompt ({len(prompts)}); got {len(generators)}")
    enc = tokenizer(prompts, padding=True, add_special_tokens=False, return_tensors="pt")
    dev = next(model.parameters()).device
    seq, attn = enc["input_ids"].to(dev), enc["attention_mask"].to(dev)
    p_len = seq.shape[1]
    done = torch.zeros(seq.shape[0], dtype=torch.bool, device=dev)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    was_training = model.training
    model.eval()
    past = None
    for _ in range(max_new_tokens):
        if not use_cache:
            logits = _logits(model, seq, attn)[:, -1]
        elif past is None:
            out = model(input_ids=seq, attention_mask=attn, position_ids=_positions(attn), use_cache=True)
            logits, past = out.logits[:, -1], _cache_of(out)
        else:
            out = model(input_ids=seq[:, -1:], attention_mask=attn, position_ids=_positions(attn)[:, -1:], use_cache=True,
                        **{_cache_kwarg(model): past})
            logits, past = out.logits[:, -1], _cache_of(out)
        logp = torch.log_softmax(logits.float() / temperature, dim=-1)
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in generators])
        cdf = logp.double().exp().cpu().cumsum(-1)
        nxt = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None]).squeeze(1).clamp(max=cdf.shape[1] - 1).to(dev)
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
        seq = torch.cat([seq, nxt[:, None]], 1)
        attn = torch.cat([attn, (~done).long()[:, None]], 1)
        done = done | (nxt == eos)
        if _all_done(done, sync_ranks):
            break
    model.train(was_training)
    return Batch(seq=seq, attn=attn, resp_mask=attn[:, p_len:].bool(), prompt_len=p_len)


def pack(tokenizer, prompts: list[str], response_ids: list[list[int]]) -> Batch:
    """Left-padded prompts + right-padded response token ids (teacher forcing)."""
    enc = tokenizer(prompts, padding=True, add_special_tokens=False, return_tensors="pt")
    t = max(1, max(map(len, response_ids)))
    resp = torch.full((len(response_ids), t), tokenizer.pad_token_id, dtype=torch.long)
    m = torch.zeros((len(response_ids), t), dtype=torch.bool)
    for i, r in enumerate(response_ids):
        resp[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        m[i, : len(r)] = True
    return Batch(seq=torch.cat([enc["input_ids"], resp], 1), attn=torch.cat([enc["attention_mask"], m.long()], 1), resp_mask=m,
                 prompt_len=enc["input_ids"].shape[1])


def encode_pairs(tokenizer, prompts: list[str], responses: list[str]) -> Batch:
    """Teacher-forced sequences prompt + response + EOS (for the DPO and SFT families)."""
    return pack(tokenizer, prompts, [tokenizer(r, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for r in responses])


def _forward(model, b: Batch, *, temperature: float = 1.0):
    """(token log-probs[N, T] (differentiable), entropies[N, T] (detached), response logits[N, T, V])."""
    logits = _logits(model, b.seq, b.attn)[:, b.prompt_len - 1 : -1]
    lp = token_logprobs(logits, b.seq[:, b.prompt_len :], temperature=temperature)
    with torch.no_grad():
        ent = token_entropy(logits.detach(), temperature=temperature)
    return lp, ent, logits


def response_logprobs(model, b: Batch, *, temperature: float = 1.0, with_entropy: bool = False):
    """Token log-probs ``[N, T]`` of the response tokens (and their entropies when ``with_entropy``)."""
    lp, ent, _ = _forward(model, b, temperature=temperature)
    return (lp, ent) if with_entropy else lp


def normalizer(mask: torch.Tensor, aggregation: str) -> torch.Tensor:
    """The normalizer Z_mb of :func:`rlref.llm.losses.aggregate` for a micro-batch (see the module docstring)."""
    if aggregation == "token-mean":
        return mask.sum().double()
    if aggregation == "seq-mean-token-mean":
        return (mask.sum(1) > 0).sum().double()
    return torch.tensor(float(mask.shape[0]), dtype=torch.float64)


def policy_normalizer(cfg: TrainConfig, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """Z_mb of the policy loss ``cfg.policy_loss`` on a micro-batch: the aggregation's normalizer for the
    token losses (ppo_clip, lp_reg), the number of groups for DRPO, of responses for the Kimi loss."""
    if cfg.policy_loss == "drpo":
        return torch.tensor(float(mask.shape[0] // group_size), dtype=torch.float64)
    if cfg.policy_loss == "kimi_mirror_descent":
        return torch.tensor(float(mask.shape[0]), dtype=torch.float64)
    return normalizer(mask, cfg.aggregation)


def policy_term(cfg: TrainConfig, lp: torch.Tensor, old: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, *, correct: torch.Tensor,
                rewards: torch.Tensor, logits: torch.Tensor, tokens: torch.Tensor, group_size: int,
                max_length: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss normalized by the micro-batch's own Z_mb, clip fraction) of ``cfg.policy_loss`` with
    ``cfg.policy_loss_kwargs``. Rows are whole groups of ``group_size`` (prompt-major) for the group losses.

    * ``ppo_clip``: :func:`rlref.llm.losses.ppo_clip` (eps_low, eps_high, aggregation, constant from the
      config; kwargs e.g. ``dual_clip``).
    * ``lp_reg``: :func:`rlref.llm.entropy.lp_reg_loss` with the proxy of the sampling-time logits
      (:func:`rlref.llm.entropy.lp_reg_proxy_logprobs`, kwargs ``kappa``/``tau``; the rest go to the loss).
      Its lowest-probability selection is made within each micro-batch (exactly the batch's selection when
      one micro-batch holds the rank's whole batch).
    * ``drpo``: :func:`rlref.llm.length.drpo_loss` on [groups, G, T] (``max_length`` defaults to the
      step's max_new_tokens). Its hinge KL coefficient is evaluated per micro-batch (the KL to π_old is 0
      in the first epoch, so this matters only with ppo_epochs > 1 and several micro-batches).
    * ``kimi_mirror_descent``: :func:`rlref.llm.length.kimi_mirror_descent_loss` on sequence log-probs
      with the shaped rewards (kwarg ``tau`` required).
    """
    name, kw = cfg.policy_loss, dict(cfg.policy_loss_kwargs)
    if name == "ppo_clip":
        pl = ppo_clip(lp, old, adv.to(lp.dtype), mask, eps_low=cfg.eps_low, eps_high=cfg.eps_high, aggregation=cfg.aggregation,
                      constant=cfg.constant, **kw)
        return pl.loss, pl.clip_fraction
    if name == "lp_reg":
        pkw = {k: kw.pop(k) for k in ("kappa", "tau") if k in kw}
        proxy = lp_reg_proxy_logprobs(logits.detach() / cfg.temperature, tokens, **pkw)
        out = lp_reg_loss(lp, old, proxy, adv.to(lp.dtype), mask, eps_low=cfg.eps_low, eps_high=cfg.eps_high,
                          aggregation=cfg.aggregation, **kw)
        return out.loss, out.clip_fraction
    n, t = lp.shape
    g = group_size
    if n % g:
        raise ValueError(f"policy_loss {name!r} needs whole groups: {n} rows are not a multiple of group_size={g}")
    if name == "drpo":
        kw.setdefault("max_length", max_length)
        out = _length.drpo_loss(lp.reshape(n // g, g, t), old.reshape(n // g, g, t), mask.reshape(n // g, g, t),
                                correct.reshape(n // g, g), **kw)
        return out.loss, torch.zeros((), dtype=torch.float64)
    if name == "kimi_mirror_descent":
        mf = mask.to(lp.dtype)
        seq, seq_old = (lp * mf).sum(1).reshape(n // g, g), (old * mf).sum(1).reshape(n // g, g)
        return _length.kimi_mirror_descent_loss(seq, seq_old, rewards.reshape(n // g, g).to(lp.dtype), **kw), \
            torch.zeros((), dtype=torch.float64)
    raise ValueError(f"config key 'policy_loss': unknown value {name!r}")


def preference_term(cfg: TrainConfig, lp: torch.Tensor, ref_lp: torch.Tensor, mask: torch.Tensor, *,
                    sample_logps: torch.Tensor | None = None) -> _pref.PreferenceLoss:
    """``cfg.preference_loss`` on token log-probs of [chosen; rejected] rows (``lp``, ``ref_lp``: [2h, T]).

    Sequence log-probs are token sums (``ld_dpo``: :func:`rlref.llm.preference.ld_dpo_logps` with the
    pair's public length = the shorter response, kwarg ``alpha``). ``rpo``: alpha = preference_kwargs
    ``alpha`` or the config key ``rpo_alpha``; ``xpo``: ``sample_logps[h]`` = log π_θ of one sample ỹ ∼ π_ref
    per prompt (kwarg ``alpha``). Returns the micro-batch's :class:`rlref.llm.preference.PreferenceLoss`
    (mean over its pairs)."""
    h = lp.shape[0] // 2
    kw = dict(cfg.preference_kwargs)
    name = cfg.preference_loss
    mf = mask.to(lp.dtype)
    if name == "ld_dpo":
        n_tok = mask.sum(1)
        public = torch.minimum(n_tok[:h], n_tok[h:]).repeat(2)
        pol = _pref.ld_dpo_logps(lp, mask, public, **kw)
        ref = _pref.ld_dpo_logps(ref_lp, mask, public, **kw)
        return _pref.dpo_loss(pol[:h], pol[h:], ref[:h], ref[h:], cfg.beta)
    pol, ref = (lp * mf).sum(1), (ref_lp * mf).sum(1)
    args = (pol[:h], pol[h:], ref[:h], ref[h:], cfg.beta)
    if name == "rpo":
        kw.setdefault("alpha", cfg.rpo_alpha)
        return _pref.rpo_loss(*args, chosen_lengths=mask[:h].sum(1).to(pol.dtype), **kw)
    if name == "xpo":
        if sample_logps is None:
            raise ValueError("preference_loss 'xpo' needs sample_logps (log-probs of samples from the reference)")
        return _pref.xpo_loss(*args, policy_ref_sample_logps=sample_logps, **kw)
    return getattr(_pref, f"{name}_loss")(*args, **kw)


def scheduled_budget(cfg: TrainConfig, k: int) -> float | None:
    """The length budget of step k (1-based) under ``cfg.budget_schedule``: ``curriculum`` =
    :func:`rlref.llm.length.curriculum_budget` at step k − 1 of ``total_steps`` (kwarg, default steps − 1,
    so step 1 gets initial_budget and the last step final_budget). None without a schedule."""
    if cfg.budget_schedule is None:
        return None
    kw = dict(cfg.budget_schedule_kwargs)
    total = kw.pop("total_steps", max(cfg.steps - 1, 1))
    return _length.curriculum_budget(min(k - 1, total), total, **kw)


def _world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> tuple[int, int]:
    """Under ``torchrun`` (WORLD_SIZE > 1 in the environment) initialize the default process group once:
    NCCL on CUDA (device LOCAL_RANK), gloo on the CPU. Returns (rank, world size)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return _world()


def _all_reduce(x: torch.Tensor) -> torch.Tensor:
    """Sum over ranks in place; a CPU tensor goes through the GPU under NCCL (which reduces only CUDA tensors)."""
    import torch.distributed as dist

    if _world()[1] > 1:
        if x.device.type == "cpu" and dist.get_backend() == "nccl":
            y = x.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(y)
            x.copy_(y.cpu())
        else:
            dist.all_reduce(x)
    return x


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic write: torch.save to a temporary file in the same folder, fsync, then os.replace."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _shard(model) -> None:
    """FSDP2: fully_shard every decoder layer, then the root (the usual transformer recipe)."""
    from torch.distributed.fsdp import fully_shard

    inner = getattr(model, "model", None)
    for layer in getattr(inner, "layers", []):
        fully_shard(layer)
    fully_shard(model)


class Trainer:
    """Builds the tokenizer, policy, frozen reference and optimizer of ``cfg`` and runs optimizer steps.

    ``step(k)`` is a pure function of (model, optimizer state, extra_state, cfg.seed, k): its prompts and its
    sampling generators are seeded by (seed, k, row), so a resumed run repeats an uninterrupted one bit for
    bit, and a data-parallel run samples exactly what a 1-process run does.

    Plug-in API (used by rlref.llm.train.selfplay and rlref.llm.train.sparsity): ``cfg``, ``tokenizer``,
    ``task``, ``model`` (the policy; an FSDP module under fsdp2), ``module`` (what to call forward on for
    gradients: DDP wrapper or the model), ``ref`` (frozen), ``optimizer``, ``rank``/``world``, ``device``;
    ``problems(k)``, ``micro_batches(n)``, ``mine(n)`` (this rank's micro-batches), ``generators(k, rows)``,
    ``all_reduce(x)``, ``accumulate(last)`` (gradient-sync context for a micro-batch), ``autocast()``,
    ``optimizer_step()`` (clip + step, returns the grad norm), and ``extra_state``: a dict saved in every
    checkpoint and restored on resume (anything torch.save stores), so a plug-in's state resumes bit for bit.
    """

    def __init__(self, cfg: TrainConfig, *, tokenizer=None, model=None):
        rank, world = _world()
        self.rank, self.world = rank, world
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.tokenizer_path)
        validate(cfg, self.tokenizer, world_size=world)
        if torch.cuda.is_available():
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) if world > 1 else torch.cuda.current_device())
        else:
            self.device = torch.device("cpu")
        if cfg.bf16 and self.device.type != "cuda":
            raise ValueError("config key 'bf16': bf16 autocast is only used on CUDA; set bf16=false on the CPU")
        self.cfg = cfg
        self.task = ModSumTask(cfg.terms, cfg.modulus)
        self.model = (model if model is not None else build_model(self.tokenizer, path=cfg.model_path, arch=cfg.arch, hidden=cfg.hidden,
                                                                  layers=cfg.layers, heads=cfg.heads, seed=cfg.seed)).to(self.device)
        self.ref = copy.deepcopy(self.model).eval() if needs_reference(cfg) else None
        if self.ref is not None:
            for p in self.ref.parameters():
                p.requires_grad_(False)
        self.fsdp = world > 1 and cfg.distributed == "fsdp2"
        self.module = self.model
        if self.fsdp:
            _shard(self.model)
            if self.ref is not None:
                _shard(self.ref)
        elif world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.module = DistributedDataParallel(self.model)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.reward_fn = resolve_reward_fn(cfg.reward_fn) if cfg.reward_fn else None
        self.sft_target = resolve_callable("sft_target", cfg.sft_target) if cfg.sft_target else self.task.solution
        self.extra_state: dict = {}

    # ---- pieces ---------------------------------------------------------------------------------
    def autocast(self):
        if self.cfg.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    _autocast = autocast

    def accumulate(self, last: bool):
        """Context for one micro-batch's forward/backward: gradients are synchronized across ranks only on
        the ``last`` micro-batch of an update (DDP ``no_sync``; FSDP2 ``set_requires_gradient_sync``)."""
        if self.world == 1:
            return contextlib.nullcontext()
        if self.fsdp:
            self.model.set_requires_gradient_sync(last)
            return contextlib.nullcontext()
        return contextlib.nullcontext() if last else self.module.no_sync()

    def all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        """Sum ``x`` over data-parallel ranks in place (a no-op on one process)."""
        return _all_reduce(x)

    def micro_batches(self, n: int) -> list[slice]:
        mb = self.cfg.micro_batch_size
        return [slice(i, i + mb) for i in range(0, n, mb)]

    def mine(self, n: int) -> list[int]:
        """Indices of the global micro-batches this rank owns (round robin)."""
        return list(range(self.rank, len(self.micro_batches(n)), self.world))

    def problems(self, k: int):
        return self.task.batch(self.cfg.prompts_per_step, seed=self.cfg.seed * 1_000_003 + k)

    def generators(self, k: int, rows: list[int], *, stream: int = 0) -> list[torch.Generator]:
        """One sampling generator per global row, seeded by (seed, step, row[, stream])."""
        base = (self.cfg.seed * 1_000_003 + k) * 1_000_003
        return [torch.Generator().manual_seed((base + i + stream * 7_919_993) % (2**63)) for i in rows]

    def rewards(self, probs, texts: list[str], lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rewards[N], correct[N]) for responses in prompt-major order (the group of prompt i is rows i*G..)."""
        correct = torch.tensor([self.task.check(p, t) for p, t in zip(probs, texts, strict=True)])
        if self.reward_fn is not None:
            r = torch.as_tensor(self.reward_fn(probs, texts), dtype=torch.float32).reshape(-1)
        else:
            r = correct.float()
        return r, correct

    def decode(self, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
        out = []
        for row, m in zip(ids.tolist(), mask.tolist(), strict=True):
            toks = [t for t, v in zip(row, m, strict=True) if v and t != self.tokenizer.eos_token_id]
            out.append("".join(self.tokenizer.convert_ids_to_tokens(toks)))
        return out

    _decode = decode

    def shape_rewards(self, k: int, probs, base: torch.Tensor, correct: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """rewards[B, G] = base + length_coef · length_reward (budget from the schedule at step k; "hapo":
        the history-aware reward, history in extra_state["hapo_history"] keyed by prompt text, updated after
        scoring), then the reward switch (GRPO-λ: groups outside the top fraction get the 0/1 correctness)."""
        cfg = self.cfg
        out = base
        if cfg.length_reward == "hapo":
            h = _length.HistoryAwareReward(**cfg.length_reward_kwargs, history=self.extra_state.setdefault("hapo_history", {}))
            lr = torch.stack([h.length_reward(p.prompt, lengths[i], correct[i]) for i, p in enumerate(probs)]) * h.weight
            for i, p in enumerate(probs):
                h.update(p.prompt, lengths[i], correct[i])
            out = base + cfg.length_coef * lr.to(base.dtype)
        elif cfg.length_reward is not None:
            budget = scheduled_budget(cfg, k)
            kw = dict(cfg.length_reward_kwargs, **({} if budget is None else {"budget": budget}))
            out = base + cfg.length_coef * getattr(_length, cfg.length_reward)(lengths, correct, **kw).to(base.dtype)
        if cfg.reward_switch == "grpo_lambda":
            out = _length.grpo_lambda_reward(correct, out, **cfg.reward_switch_kwargs)
        return out

    def advantages(self, rewards: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        kw = dict(self.cfg.advantage_kwargs)
        if self.cfg.advantage == "dler_batch_normalized" and kw.get("weighting") == "token":
            kw["lengths"] = lengths
        return getattr(_adv, self.cfg.advantage)(rewards, **kw)

    def max_new_tokens(self, k: int) -> int:
        b = scheduled_budget(self.cfg, k)
        if b is None or not self.cfg.schedule_max_new_tokens:
            return self.cfg.max_new_tokens
        return max(1, min(self.cfg.max_new_tokens, int(math.ceil(b))))

    def rollout(self, k: int, rows: list[int], prompts: list[str], *, model=None, max_new_tokens: int | None = None,
                stream: int = 0) -> Batch:
        """Sample this rank's rows (global indices ``rows``) from ``model`` (default the policy)."""
        return sample(self.model if model is None else model, self.tokenizer, prompts,
                      max_new_tokens=self.max_new_tokens(k) if max_new_tokens is None else max_new_tokens, temperature=self.cfg.temperature,
                      generators=self.generators(k, rows, stream=stream), use_cache=self.cfg.use_cache, sync_ranks=self.fsdp)

    # ---- GRPO family ----------------------------------------------------------------------------
    def grpo_step(self, k: int) -> StepResult:
        cfg = self.cfg
        t0 = time.perf_counter()
        probs = self.problems(k)
        g = cfg.group_size
        flat = [p for p in probs for _ in range(g)]
        n = len(flat)
        mbs = self.micro_batches(n)
        own = self.mine(n)
        rows = [i for j in own for i in range(n)[mbs[j]]]
        max_new = self.max_new_tokens(k)
        whole = self.rollout(k, rows, [flat[i].prompt for i in rows], max_new_tokens=max_new)
        resp = whole.seq[:, whole.prompt_len:]
        texts = self.decode(resp, whole.resp_mask)
        r, c = self.rewards([flat[i] for i in rows], texts, whole.resp_mask.sum(1))
        rew, cor, lens, trunc = torch.zeros(n), torch.zeros(n), torch.zeros(n), torch.zeros(n)
        idx = torch.tensor(rows, dtype=torch.long)
        rew[idx], cor[idx], lens[idx] = r.float(), c.float(), whole.resp_mask.sum(1).float().cpu()
        trunc[idx] = (~((resp == self.tokenizer.eos_token_id) & whole.resp_mask).any(1)).float().cpu()
        batches: dict[int, Batch] = {}
        off = 0
        for j in own:
            w = len(range(n)[mbs[j]])
            batches[j] = whole.rows(slice(off, off + w))
            off += w
        for x in (rew, cor, lens, trunc):
            _all_reduce(x)
        shape = (cfg.prompts_per_step, g)
        rewards = self.shape_rewards(k, probs, rew.reshape(shape), cor.bool().reshape(shape), lens.reshape(shape))
        adv = self.advantages(rewards, lens.reshape(shape)).reshape(-1)
        rflat, cflat = rewards.reshape(-1), cor.bool()
        epochs, n_mini = cfg.ppo_epochs, cfg.ppo_mini_batches
        per_mini = len(mbs) // n_mini
        mini_of = {j: j // per_mini for j in own}
        # normalizers of every mini-batch, summed over its micro-batches on every rank: [policy Z, KL Z] per mini-batch
        z = torch.zeros(n_mini, 2, dtype=torch.float64)
        for j in own:
            z[mini_of[j], 0] += policy_normalizer(cfg, batches[j].resp_mask, g)
            z[mini_of[j], 1] += normalizer(batches[j].resp_mask, cfg.aggregation)
        _all_reduce(z)
        on_policy = epochs == 1 and n_mini == 1
        old: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
        ref: dict[int, torch.Tensor] = {}
        with torch.no_grad():
            for j in own:
                if self.ref is not None:  # the reference's log-probs (the KL term and the kl metric)
                    with self.autocast():
                        ref[j] = response_logprobs(self.ref, batches[j], temperature=cfg.temperature)
                if not on_policy:  # the sampling policy's log-probs, taken once before the first update
                    with self.autocast():
                        lp0, _, lg0 = _forward(self.model, batches[j], temperature=cfg.temperature)
                    old[j] = (lp0.detach(), lg0.detach() if cfg.policy_loss == "lp_reg" else None)
        tot = torch.zeros(6, dtype=torch.float64)  # loss, kl sum, entropy sum, tokens (first epoch), clip tokens, tokens (all epochs)
        self.module.train()
        gn = 0.0
        for e in range(epochs):
            for mi in range(n_mini):
                mine = [j for j in own if mini_of[j] == mi]
                self.optimizer.zero_grad(set_to_none=True)
                for i, j in enumerate(mine):
                    b = batches[j]
                    with self.accumulate(i == len(mine) - 1), self.autocast():
                        lp, ent, logits = _forward(self.module, b, temperature=cfg.temperature)
                        old_lp, old_logits = (lp.detach(), logits.detach()) if on_policy else old[j]
                        m = b.resp_mask
                        s_pol = (policy_normalizer(cfg, m, g) / z[mi, 0] * self.world).item()
                        s_kl = (normalizer(m, cfg.aggregation) / z[mi, 1] * self.world).item()
                        pol, clip = policy_term(cfg, lp, old_lp, adv[mbs[j]].to(m.device), m, correct=cflat[mbs[j]].to(m.device),
                                                rewards=rflat[mbs[j]].to(m.device), logits=old_logits if old_logits is not None else logits,
                                                tokens=b.seq[:, b.prompt_len:], group_size=g, max_length=float(max_new))
                        loss = pol * s_pol
                        if cfg.kl_beta > 0:
                            loss = loss + kl_loss(lp, ref[j], m, beta=cfg.kl_beta, estimator=cfg.kl_estimator, aggregation=cfg.aggregation,
                                                  constant=cfg.constant) * s_kl
                    loss.backward()
                    with torch.no_grad():
                        mf = m.to(lp.dtype)
                        first = float(e == 0)
                        kl_tok = kl_penalty(lp.detach(), ref[j], "k3") * mf if j in ref else torch.zeros_like(mf)
                        tot += torch.tensor([loss.item() / self.world / (epochs * n_mini), first * kl_tok.sum().item(),
                                             first * (ent * mf).sum().item(), first * mf.sum().item(), float(clip) * mf.sum().item(),
                                             mf.sum().item()], dtype=torch.float64)
                gn = self.optimizer_step()
        _all_reduce(tot)
        dt = time.perf_counter() - t0
        ntok = int(tot[3].item())
        return StepResult(step=k, loss=float(tot[0]), reward_mean=float(rewards.mean()), accuracy=float(cor.mean()),
                          response_length_mean=float(lens.mean()), kl=float(tot[1] / tot[3]) if self.ref is not None else math.nan,
                          entropy=float(tot[2] / tot[3]), clip_fraction=float(tot[4] / tot[5]), grad_norm=gn, tokens=ntok,
                          tokens_per_s=ntok / max(dt, 1e-9), seconds=dt, truncated_fraction=float(trunc.mean()))

    def optimizer_step(self) -> float:
        """Clip the gradient to ``max_grad_norm`` (none: measure it only), step the optimizer; returns the
        global gradient norm (before clipping)."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        gn = torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm if self.cfg.max_grad_norm is not None else math.inf)
        if hasattr(gn, "full_tensor"):
            gn = gn.full_tensor()
        self.optimizer.step()
        return float(gn)

    _optimizer_step = optimizer_step

    # ---- DPO family -----------------------------------------------------------------------------
    def pairs(self, k: int):
        """(problems, chosen = worked correct solutions, rejected = the same with a wrong final digit, or the
        bare wrong "#d" when ``rejected_scratchpad`` is false) of step k."""
        probs = self.problems(k)
        return probs, [self.task.solution(p) for p in probs], [self.task.solution(p, wrong=True, scratchpad=self.cfg.rejected_scratchpad)
                                                               for p in probs]

    def dpo_step(self, k: int) -> StepResult:
        cfg, tok = self.cfg, self.tokenizer
        t0 = time.perf_counter()
        probs, chosen, rejected = self.pairs(k)
        n = len(probs)
        mbs = self.micro_batches(n)
        own = self.mine(n)
        xpo = cfg.preference_loss == "xpo"
        samples: dict[int, list[list[int]]] = {}
        if xpo:  # one sample ỹ ∼ π_ref per prompt (XPO's exploration term)
            rows = [i for j in own for i in range(n)[mbs[j]]]
            sb = self.rollout(k, rows, [probs[i].prompt for i in rows], model=self.ref, stream=1)
            ids = sb.response_ids()
            off = 0
            for j in own:
                w = len(range(n)[mbs[j]])
                samples[j], off = ids[off : off + w], off + w
        self.optimizer.zero_grad(set_to_none=True)
        tot = torch.zeros(5, dtype=torch.float64)  # loss, reward(margin>0) count, length sum, tokens, entropy sum
        self.module.train()
        for i, j in enumerate(own):
            prompts = [p.prompt for p in probs[mbs[j]]]
            h = len(prompts)
            ids = [tok(r, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for r in chosen[mbs[j]] + rejected[mbs[j]]]
            b = pack(tok, prompts * (3 if xpo else 2), ids + samples.get(j, [])).to(self.device)
            with torch.no_grad(), self.autocast():
                ref_lp = response_logprobs(self.ref, b.rows(slice(0, 2 * h)))
            with self.accumulate(i == len(own) - 1), self.autocast():
                lp, ent, _ = _forward(self.module, b)
                sample_logps = (lp[2 * h:] * b.resp_mask[2 * h:]).sum(1) if xpo else None
                out = preference_term(cfg, lp[: 2 * h], ref_lp, b.resp_mask[: 2 * h], sample_logps=sample_logps)
                loss = out.loss * (h / n * self.world)
            loss.backward()
            with torch.no_grad():
                mf = b.resp_mask[: 2 * h].to(lp.dtype)
                tot += torch.tensor([loss.item() / self.world, float((out.chosen_rewards > out.rejected_rewards).sum()),
                                     float(mf[:h].sum()), float(mf.sum()), float((ent[: 2 * h] * mf).sum())], dtype=torch.float64)
        _all_reduce(tot)
        return self._teacher_forced_result(k, t0, n, loss=tot[0], hits=tot[1], length_sum=tot[2], tokens=tot[3], entropy_sum=tot[4])

    # ---- SFT ------------------------------------------------------------------------------------
    def sft_step(self, k: int) -> StepResult:
        """Teacher-forced cross-entropy −log π_θ(target | prompt) aggregated by ``cfg.aggregation`` (default
        token-mean over the whole batch's target tokens, EOS included). reward_mean = accuracy = the fraction
        of targets the task's checker accepts (1.0 for the default worked solutions); kl is not computed."""
        cfg, tok = self.cfg, self.tokenizer
        t0 = time.perf_counter()
        probs = self.problems(k)
        targets = [self.sft_target(p) for p in probs]
        n = len(probs)
        mbs = self.micro_batches(n)
        own = self.mine(n)
        batches = {j: encode_pairs(tok, [p.prompt for p in probs[mbs[j]]], targets[mbs[j]]).to(self.device) for j in own}
        z = torch.zeros((), dtype=torch.float64)
        for j in own:
            z += normalizer(batches[j].resp_mask, cfg.aggregation)
        _all_reduce(z)
        self.optimizer.zero_grad(set_to_none=True)
        tot = torch.zeros(4, dtype=torch.float64)  # loss, tokens, entropy sum, correct targets
        self.module.train()
        for i, j in enumerate(own):
            b = batches[j]
            with self.accumulate(i == len(own) - 1), self.autocast():
                lp, ent, _ = _forward(self.module, b)
                scale = (normalizer(b.resp_mask, cfg.aggregation) / z * self.world).item()
                loss = aggregate(-lp, b.resp_mask, aggregation=cfg.aggregation, constant=cfg.constant) * scale
            loss.backward()
            with torch.no_grad():
                mf = b.resp_mask.to(lp.dtype)
                ok = sum(self.task.check(p, t) for p, t in zip(probs[mbs[j]], targets[mbs[j]], strict=True))
                tot += torch.tensor([loss.item() / self.world, float(mf.sum()), float((ent * mf).sum()), float(ok)], dtype=torch.float64)
        _all_reduce(tot)
        return self._teacher_forced_result(k, t0, n, loss=tot[0], hits=tot[3], length_sum=tot[1], tokens=tot[1], entropy_sum=tot[2])

    def _teacher_forced_result(self, k: int, t0: float, n: int, *, loss, hits, length_sum, tokens, entropy_sum) -> StepResult:
        """Optimizer step and metrics of a teacher-forced family (DPO, SFT): the sums are already all-reduced;
        reward_mean = accuracy = hits / n; no KL and no clipping."""
        gn = self.optimizer_step()
        dt = time.perf_counter() - t0
        ntok = int(tokens.item())
        return StepResult(step=k, loss=float(loss), reward_mean=float(hits / n), accuracy=float(hits / n),
                          response_length_mean=float(length_sum / n), kl=math.nan, entropy=float(entropy_sum / tokens),
                          clip_fraction=0.0, grad_norm=gn, tokens=ntok, tokens_per_s=ntok / max(dt, 1e-9), seconds=dt)

    def step(self, k: int) -> StepResult:
        fam = self.cfg.family
        if fam == "grpo":
            return self.grpo_step(k)
        if fam == "dpo":
            return self.dpo_step(k)
        if fam == "sft":
            return self.sft_step(k)
        from rlref.llm.train import selfplay

        return selfplay.ALGORITHMS[self.cfg.selfplay_algorithm](self, k, **self.cfg.selfplay_kwargs)

    # ---- checkpoints ----------------------------------------------------------------------------
    def state(self, step: int) -> dict:
        """The full (unsharded) state on every rank (a collective under FSDP2: call it on all ranks). Model
        and optimizer states come from torch.distributed.checkpoint's get_model_state_dict /
        get_optimizer_state_dict (full_state_dict, parameter names as keys), so a checkpoint loads into a
        1-process, DDP or FSDP2 run alike."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return {"step": step, "model": get_model_state_dict(self.model, options=opts),
                "optimizer": get_optimizer_state_dict(self.model, self.optimizer, options=opts),
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
                "extra_state": copy.deepcopy(self.extra_state), "config": asdict(self.cfg)}

    def load(self, state: dict) -> int:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict, set_optimizer_state_dict

        opts = StateDictOptions(full_state_dict=True)
        set_model_state_dict(self.model, state["model"], options=opts)
        set_optimizer_state_dict(self.model, self.optimizer, state["optimizer"], options=opts)
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        self.extra_state = copy.deepcopy(state.get("extra_state", {}))
        return int(state["step"])


def _progress(k: int, total: int, r: StepResult, end: int) -> None:
    w = 24
    fill = int(w * k / total)
    print(f"\r[{'#' * fill}{'.' * (w - fill)}] {k}/{total} loss {r.loss:+.4f} reward {r.reward_mean:.3f} len {r.response_length_mean:.1f} "
          f"{r.tokens_per_s:.0f} tok/s", end="" if k < end else "\n", file=sys.stderr, flush=True)


def _json_metrics(r: StepResult) -> dict:
    """``asdict(r)`` with non-finite floats written as null (strict JSON; e.g. kl is not defined for the DPO and
    SFT families)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(r).items()}


def train(cfg: TrainConfig, out: str | Path, *, max_steps: int | None = None, on_step=None, tokenizer=None, model=None) -> Trainer:
    """Run ``cfg`` into folder ``out``: metrics.jsonl (one object per step), checkpoint.pt (atomic, every
    ``checkpoint_every`` steps and at the end), config.json; resume from ``out/checkpoint.pt`` when present
    (metrics after the checkpoint are dropped, their steps redone). ``max_steps`` caps the steps run in this
    call; ``on_step(step, result)`` is called after each step (an exception there stops the run like a kill)."""
    out = Path(out)
    init_distributed()
    tr = Trainer(cfg, tokenizer=tokenizer, model=model)
    main = tr.rank == 0
    if main:
        out.mkdir(parents=True, exist_ok=True)
    ck = out / CKPT
    start = 0
    if ck.exists():
        start = tr.load(torch.load(ck, weights_only=False, map_location="cpu"))
    mpath = out / "metrics.jsonl"
    if main:
        lines = mpath.read_text().splitlines() if mpath.exists() else []
        kept = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= start]
        mpath.write_text("".join(ln + "\n" for ln in kept))
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    end = cfg.steps if max_steps is None else min(cfg.steps, start + max_steps)
    for k in range(start + 1, end + 1):
        r = tr.step(k)
        if main:
            with open(mpath, "a") as f:
                f.write(json.dumps(_json_metrics(r), allow_nan=False) + "\n")
            if cfg.progress:
                _progress(k, cfg.steps, r, end)
        if on_step is not None:
            on_step(k, r)
        if k % cfg.checkpoint_every == 0 or k == end:
            st = tr.state(k)  # every rank: a collective under FSDP2
            if main:
                save_checkpoint(ck, st)
    return tr
