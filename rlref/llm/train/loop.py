"""The training loop of :mod:`rlref.llm.train`: online GRPO-family RL and offline DPO-family preference
optimization over a Hugging Face causal LM, with micro-batching, DDP, checkpoint/resume and metrics.

The objectives are rlref.llm's (called, not copied): advantages from :mod:`rlref.llm.advantages`, the
clipped surrogate :func:`rlref.llm.losses.ppo_clip`, the KL term :func:`rlref.llm.losses.kl_loss`,
length rewards from :mod:`rlref.llm.length`, preference losses from :mod:`rlref.llm.preference`.

Exact micro-batching (derived here). Every aggregation is a sum of per-token terms divided by a
normalizer Z of the WHOLE batch (token-mean: the valid-token count; seq-mean-token-sum and constant:
the number of sequences; seq-mean-token-mean: the number of non-empty sequences). A micro-batch's
``aggregate`` divides by its own Z_mb, so it is multiplied by Z_mb / Z with Z the global normalizer,
all-reduced over data-parallel ranks (and by the world size, which DDP's gradient averaging divides
out). The sum of the micro-batch losses is then the full-batch loss exactly, and so is its gradient.
"""

from __future__ import annotations

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
from rlref.llm.logprobs import token_entropy, token_logprobs
from rlref.llm.losses import kl_loss, ppo_clip
from rlref.llm.train.config import TrainConfig, resolve_reward_fn, validate
from rlref.llm.train.models import build_model, load_tokenizer
from rlref.llm.train.task import ModSumTask

__all__ = ["Batch", "StepResult", "Trainer", "train", "sample", "response_logprobs", "normalizer", "save_checkpoint", "CKPT"]

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


@dataclass(frozen=True)
class StepResult:
    """One optimizer step's metrics (written to metrics.jsonl)."""

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


def _positions(attn: torch.Tensor) -> torch.Tensor:
    return (attn.long().cumsum(-1) - 1).clamp(min=0)


def _logits(model, seq: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    return model(input_ids=seq, attention_mask=attn, position_ids=_positions(attn), use_cache=False).logits


@torch.no_grad()
def sample(model, tokenizer, prompts: list[str], *, max_new_tokens: int, temperature: float, generators: list[torch.Generator]) -> Batch:
    """Sample one response per prompt from ``model``: at each position the token is the inverse CDF of
    softmax(logits/temperature) at a uniform drawn from that row's own generator (``generators[i]``), so a
    row's sample does not depend on which rows share its batch (micro-batches and ranks see the same
    rollouts). Stops at EOS; tokens after EOS are padding (masked)."""
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
    for _ in range(max_new_tokens):
        logp = torch.log_softmax(_logits(model, seq, attn)[:, -1].float() / temperature, dim=-1)
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in generators])
        cdf = logp.double().exp().cpu().cumsum(-1)
        nxt = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None]).squeeze(1).clamp(max=cdf.shape[1] - 1).to(dev)
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
        seq = torch.cat([seq, nxt[:, None]], 1)
        attn = torch.cat([attn, (~done).long()[:, None]], 1)
        done = done | (nxt == eos)
        if bool(done.all()):
            break
    model.train(was_training)
    return Batch(seq=seq, attn=attn, resp_mask=attn[:, p_len:].bool(), prompt_len=p_len)


def encode_pairs(tokenizer, prompts: list[str], responses: list[str]) -> Batch:
    """Teacher-forced sequences prompt + response + EOS (for the DPO family)."""
    enc = tokenizer(prompts, padding=True, add_special_tokens=False, return_tensors="pt")
    ids = [tokenizer(r, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for r in responses]
    t = max(map(len, ids))
    resp = torch.full((len(ids), t), tokenizer.pad_token_id, dtype=torch.long)
    m = torch.zeros((len(ids), t), dtype=torch.bool)
    for i, r in enumerate(ids):
        resp[i, : len(r)] = torch.tensor(r)
        m[i, : len(r)] = True
    return Batch(seq=torch.cat([enc["input_ids"], resp], 1), attn=torch.cat([enc["attention_mask"], m.long()], 1), resp_mask=m,
                 prompt_len=enc["input_ids"].shape[1])


def response_logprobs(model, b: Batch, *, temperature: float = 1.0, with_entropy: bool = False):
    """Token log-probs ``[N, T]`` of the response tokens (and their entropies when ``with_entropy``)."""
    logits = _logits(model, b.seq, b.attn)[:, b.prompt_len - 1 : -1]
    lp = token_logprobs(logits, b.seq[:, b.prompt_len :], temperature=temperature)
    if not with_entropy:
        return lp
    with torch.no_grad():
        ent = token_entropy(logits.detach(), temperature=temperature)
    return lp, ent


def normalizer(mask: torch.Tensor, aggregation: str) -> torch.Tensor:
    """The normalizer Z_mb of :func:`rlref.llm.losses.aggregate` for a micro-batch (see the module docstring)."""
    if aggregation == "token-mean":
        return mask.sum().double()
    if aggregation == "seq-mean-token-mean":
        return (mask.sum(1) > 0).sum().double()
    return torch.tensor(float(mask.shape[0]), dtype=torch.float64)


def _world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_reduce(x: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    if _world()[1] > 1:
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


class Trainer:
    """Builds the tokenizer, policy, frozen reference and optimizer of ``cfg`` and runs optimizer steps.

    ``step(k)`` is a pure function of (model, optimizer state, cfg.seed, k): its prompts and its
    sampling generator are seeded by (seed, k, micro-batch index), so a resumed run repeats an
    uninterrupted one bit for bit, and a data-parallel run samples exactly what a 1-process run does.
    """

    def __init__(self, cfg: TrainConfig, *, tokenizer=None, model=None):
        rank, world = _world()
        self.rank, self.world = rank, world
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.tokenizer_path)
        validate(cfg, self.tokenizer, world_size=world)
        self.device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        if cfg.bf16 and self.device.type != "cuda":
            raise ValueError("config key 'bf16': bf16 autocast is only used on CUDA; set bf16=false on the CPU")
        self.cfg = cfg
        self.task = ModSumTask(cfg.terms, cfg.modulus)
        self.model = (model if model is not None else build_model(self.tokenizer, path=cfg.model_path, arch=cfg.arch, hidden=cfg.hidden,
                                                                  layers=cfg.layers, heads=cfg.heads, seed=cfg.seed)).to(self.device)
        import copy

        self.ref = copy.deepcopy(self.model).eval()
        for p in self.ref.parameters():
            p.requires_grad_(False)
        self.module = self.model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.module = DistributedDataParallel(self.model)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.reward_fn = resolve_reward_fn(cfg.reward_fn) if cfg.reward_fn else None

    # ---- pieces ---------------------------------------------------------------------------------
    def _autocast(self):
        if self.cfg.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        import contextlib

        return contextlib.nullcontext()

    def micro_batches(self, n: int) -> list[slice]:
        mb = self.cfg.micro_batch_size
        return [slice(i, i + mb) for i in range(0, n, mb)]

    def mine(self, n: int) -> list[int]:
        """Indices of the global micro-batches this rank owns (round robin)."""
        return list(range(self.rank, len(self.micro_batches(n)), self.world))

    def problems(self, k: int):
        return self.task.batch(self.cfg.prompts_per_step, seed=self.cfg.seed * 1_000_003 + k)

    def rewards(self, probs, texts: list[str], lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rewards[N], correct[N]) for responses in prompt-major order (the group of prompt i is rows i*G..)."""
        correct = torch.tensor([self.task.check(p, t) for p, t in zip(probs, texts, strict=True)])
        if self.reward_fn is not None:
            r = torch.as_tensor(self.reward_fn(probs, texts), dtype=torch.float32).reshape(-1)
        else:
            r = correct.float()
        return r, correct

    def _decode(self, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
        out = []
        for row, m in zip(ids.tolist(), mask.tolist(), strict=True):
            toks = [t for t, v in zip(row, m, strict=True) if v and t != self.tokenizer.eos_token_id]
            out.append("".join(self.tokenizer.convert_ids_to_tokens(toks)))
        return out

    # ---- GRPO family ----------------------------------------------------------------------------
    def grpo_step(self, k: int) -> StepResult:
        cfg, tok = self.cfg, self.tokenizer
        t0 = time.perf_counter()
        probs = self.problems(k)
        g = cfg.group_size
        flat = [p for p in probs for _ in range(g)]
        n = len(flat)
        mbs = self.micro_batches(n)
        own = self.mine(n)
        rows = [i for j in own for i in range(n)[mbs[j]]]
        gens = [torch.Generator().manual_seed(((cfg.seed * 1_000_003 + k) * 1_000_003 + i) % (2**63)) for i in rows]
        whole = sample(self.model, tok, [flat[i].prompt for i in rows], max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                       generators=gens)
        texts = self._decode(whole.seq[:, whole.prompt_len :], whole.resp_mask)
        r, c = self.rewards([flat[i] for i in rows], texts, whole.resp_mask.sum(1))
        rew, cor, lens = torch.zeros(n), torch.zeros(n), torch.zeros(n)
        idx = torch.tensor(rows, dtype=torch.long)
        rew[idx], cor[idx], lens[idx] = r.float(), c.float(), whole.resp_mask.sum(1).float().cpu()
        batches: dict[int, Batch] = {}
        off = 0
        for j in own:
            w = len(range(n)[mbs[j]])
            batches[j] = whole.rows(slice(off, off + w))
            off += w
        for x in (rew, cor, lens):
            _all_reduce(x)
        rewards = rew.reshape(cfg.prompts_per_step, g)
        if cfg.length_reward is not None:
            lr = getattr(_length, cfg.length_reward)(lens.reshape_as(rewards), cor.bool().reshape_as(rewards), **cfg.length_reward_kwargs)
            rewards = rewards + cfg.length_coef * lr.to(rewards.dtype)
        adv = getattr(_adv, cfg.advantage)(rewards).reshape(-1)
        # global normalizer over every micro-batch of every rank
        z = torch.zeros((), dtype=torch.float64)
        for j in own:
            z += normalizer(batches[j].resp_mask, cfg.aggregation)
        _all_reduce(z)
        self.optimizer.zero_grad(set_to_none=True)
        tot = torch.zeros(5, dtype=torch.float64)  # loss, kl sum, entropy sum, tokens, clip tokens
        self.module.train()
        for i, j in enumerate(own):
            b = batches[j]
            with torch.no_grad():
                ref_lp = response_logprobs(self.ref, b, temperature=cfg.temperature)
            sync = i == len(own) - 1 or self.world == 1
            ctx = self.module.no_sync() if (self.world > 1 and not sync) else _null()
            with ctx, self._autocast():
                lp, ent = response_logprobs(self.module, b, temperature=cfg.temperature, with_entropy=True)
                old = lp.detach()
                m = b.resp_mask
                scale = (normalizer(m, cfg.aggregation) / z * self.world).item()
                pl = ppo_clip(lp, old, adv[mbs[j]].to(lp.dtype), m, eps_low=cfg.eps_low, eps_high=cfg.eps_high,
                              aggregation=cfg.aggregation, constant=cfg.constant)
                loss = pl.loss * scale
                if cfg.kl_beta > 0:
                    loss = loss + kl_loss(lp, ref_lp, m, beta=cfg.kl_beta, estimator=cfg.kl_estimator, aggregation=cfg.aggregation,
                                          constant=cfg.constant) * scale
            loss.backward()
            with torch.no_grad():
                mf = m.to(lp.dtype)
                kl_tok = kl_penalty(lp.detach(), ref_lp, "k3") * mf
                tot += torch.tensor([loss.item() / self.world, kl_tok.sum().item(), (ent * mf).sum().item(), mf.sum().item(),
                                     pl.clip_fraction.item() * mf.sum().item()], dtype=torch.float64)
        _all_reduce(tot)
        gn = self._optimizer_step()
        dt = time.perf_counter() - t0
        ntok = int(tot[3].item())
        return StepResult(step=k, loss=float(tot[0]), reward_mean=float(rewards.mean()), accuracy=float(cor.mean()),
                          response_length_mean=float(lens.mean()), kl=float(tot[1] / tot[3]), entropy=float(tot[2] / tot[3]),
                          clip_fraction=float(tot[4] / tot[3]), grad_norm=gn, tokens=ntok, tokens_per_s=ntok / max(dt, 1e-9), seconds=dt)

    def _optimizer_step(self) -> float:
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.cfg.max_grad_norm is not None:
            gn = float(torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm))
        else:
            gn = float(torch.linalg.vector_norm(torch.stack([p.grad.detach().norm() for p in params])))
        self.optimizer.step()
        return gn

    # ---- DPO family -----------------------------------------------------------------------------
    def pairs(self, k: int):
        probs = self.problems(k)
        return probs, [self.task.solution(p) for p in probs], [self.task.solution(p, wrong=True) for p in probs]

    def dpo_step(self, k: int) -> StepResult:
        cfg, tok = self.cfg, self.tokenizer
        t0 = time.perf_counter()
        probs, chosen, rejected = self.pairs(k)
        n = len(probs)
        mbs = self.micro_batches(n)
        own = self.mine(n)
        self.optimizer.zero_grad(set_to_none=True)
        tot = torch.zeros(5, dtype=torch.float64)  # loss, reward(margin>0) count, length sum, tokens, entropy sum
        self.module.train()
        for i, j in enumerate(own):
            prompts = [p.prompt for p in probs[mbs[j]]]
            b = encode_pairs(tok, prompts + prompts, chosen[mbs[j]] + rejected[mbs[j]])
            b = Batch(seq=b.seq.to(self.device), attn=b.attn.to(self.device), resp_mask=b.resp_mask.to(self.device), prompt_len=b.prompt_len)
            h = len(prompts)
            with torch.no_grad():
                ref_seq = (response_logprobs(self.ref, b) * b.resp_mask).sum(1)
            sync = i == len(own) - 1 or self.world == 1
            ctx = self.module.no_sync() if (self.world > 1 and not sync) else _null()
            with ctx, self._autocast():
                lp, ent = response_logprobs(self.module, b, with_entropy=True)
                seq_lp = (lp * b.resp_mask).sum(1)
                args = (seq_lp[:h], seq_lp[h:], ref_seq[:h], ref_seq[h:], cfg.beta)
                if cfg.preference_loss == "rpo":
                    out = _pref.rpo_loss(*args, chosen_lengths=b.resp_mask[:h].sum(1).to(seq_lp.dtype), alpha=cfg.rpo_alpha)
                else:
                    out = getattr(_pref, f"{cfg.preference_loss}_loss")(*args)
                loss = out.loss * (h / n * self.world)
            loss.backward()
            with torch.no_grad():
                mf = b.resp_mask.to(lp.dtype)
                tot += torch.tensor([loss.item() / self.world, float((out.chosen_rewards > out.rejected_rewards).sum()),
                                     float(mf[:h].sum()), float(mf.sum()), float((ent * mf).sum())], dtype=torch.float64)
        _all_reduce(tot)
        gn = self._optimizer_step()
        dt = time.perf_counter() - t0
        ntok = int(tot[3].item())
        return StepResult(step=k, loss=float(tot[0]), reward_mean=float(tot[1] / n), accuracy=float(tot[1] / n),
                          response_length_mean=float(tot[2] / n), kl=math.nan, entropy=float(tot[4] / tot[3]), clip_fraction=0.0,
                          grad_norm=gn, tokens=ntok, tokens_per_s=ntok / max(dt, 1e-9), seconds=dt)

    def step(self, k: int) -> StepResult:
        return self.grpo_step(k) if self.cfg.family == "grpo" else self.dpo_step(k)

    # ---- checkpoints ----------------------------------------------------------------------------
    def state(self, step: int) -> dict:
        return {"step": step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
                "config": asdict(self.cfg)}

    def load(self, state: dict) -> int:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        return int(state["step"])


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _progress(k: int, total: int, r: StepResult, end: int) -> None:
    w = 24
    fill = int(w * k / total)
    print(f"\r[{'#' * fill}{'.' * (w - fill)}] {k}/{total} loss {r.loss:+.4f} reward {r.reward_mean:.3f} len {r.response_length_mean:.1f} "
          f"{r.tokens_per_s:.0f} tok/s", end="" if k < end else "\n", file=sys.stderr, flush=True)


def train(cfg: TrainConfig, out: str | Path, *, max_steps: int | None = None, on_step=None, tokenizer=None, model=None) -> Trainer:
    """Run ``cfg`` into folder ``out``: metrics.jsonl (one object per step), checkpoint.pt (atomic, every
    ``checkpoint_every`` steps and at the end), config.json; resume from ``out/checkpoint.pt`` when present
    (metrics after the checkpoint are dropped, their steps redone). ``max_steps`` caps the steps run in this
    call; ``on_step(step, result)`` is called after each step (an exception there stops the run like a kill)."""
    out = Path(out)
    tr = Trainer(cfg, tokenizer=tokenizer, model=model)
    main = tr.rank == 0
    if main:
        out.mkdir(parents=True, exist_ok=True)
    ck = out / CKPT
    start = 0
    if ck.exists():
        start = tr.load(torch.load(ck, weights_only=False))
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
                f.write(json.dumps(asdict(r)) + "\n")
            if cfg.progress:
                _progress(k, cfg.steps, r, end)
        if on_step is not None:
            on_step(k, r)
        if main and (k % cfg.checkpoint_every == 0 or k == end):
            save_checkpoint(ck, tr.state(k))
    return tr
