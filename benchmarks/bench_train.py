"""Benchmark: one GRPO training step of rlref's loop (``rlref.llm.train.Trainer``) vs TRL's ``GRPOTrainer``.

Both run in their own fresh subprocess, one after the other, on the same model (built from the same config
with the same seed), the same character tokenizer, the same modular-sum prompts (``ModSumTask``), the same
batch (P prompts x G completions, one forward/backward, no gradient accumulation), the same loss and the
same optimizer:

- loss: group-normalized advantages (rlref ``advantage="grpo"`` / TRL ``scale_rewards="group"``), the PPO
  clipped surrogate with eps 0.2, token-mean over the batch (rlref ``aggregation="token-mean"`` / TRL
  ``loss_type="dapo"``), KL to the frozen reference with coefficient ``--kl-beta`` (k3 in both; at 0 neither
  runs the reference model), one policy update per batch; AdamW, constant learning rate, grad-norm clip 1.0;
- reward: the same dense function of the completion text in both (:func:`digit_reward`, the fraction of
  digits; the exact checker is almost always 0 on an untrained model, which would zero every advantage);
- sampling at temperature 1, no top-k/top-p. A forward hook on the LM head sets the logits of EOS, PAD and
  of the ids beyond the tokenizer's vocabulary (the 0.5B config keeps Qwen2's 151,936-row head) to -1e4 in
  both, so every completion has exactly ``--max-new-tokens`` tokens: both runs process the same number of
  tokens (checked: the script fails if the counts differ).

Measured per framework after ``--warmup`` steps, over ``--steps`` steps: the wall time of a whole step
(median), the part spent generating (rlref: ``rlref.llm.train.loop.sample``; TRL: ``GRPOTrainer._generate``),
completion tokens per second with and without generation, and peak memory during the measured steps
(CPU: resident set sampled every 2 ms from /proc/self/statm, absolute and above the pre-step baseline;
CUDA: ``torch.cuda.max_memory_allocated`` absolute and above ``memory_allocated`` before the steps).

    python benchmarks/bench_train.py                                   # CPU, tiny Qwen2 (hidden 256, 4 layers)
    python benchmarks/bench_train.py --device cuda --model qwen2-0.5b-config --max-new-tokens 256
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import tempfile
import threading
import time

MODELS = {
    # a tiny Qwen2 for the CPU
    "tiny": dict(hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                 vocab_size=None, tie_word_embeddings=False),
    # the shapes of Qwen2-0.5B (494M parameters with its 151,936-token vocabulary), built from a config, no weights
    "qwen2-0.5b-config": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                              num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, rope_theta=1_000_000.0),
}
BLOCKED = -1e4  # finite, so entropies (p log p with p = 0) stay 0 instead of NaN


def digit_reward(problems, responses) -> list[float]:
    """rlref ``reward_fn`` form: the fraction of digit characters in each response."""
    return [sum(c.isdigit() for c in r) / max(len(r), 1) for r in responses]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class _PeakRSS:
    """Samples the resident set size every ``dt`` seconds in a thread; ``peak`` in MiB."""

    def __init__(self, dt: float = 0.002):
        self.dt, self.peak, self._stop = dt, _rss_mb(), threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(self.dt)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mb())
        return False


def build(args):
    """(tokenizer, model): the char tokenizer and a Qwen2 built from ``MODELS[args.model]`` under seed 0, with the
    LM-head hook that blocks EOS/PAD and out-of-vocabulary ids."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from rlref.llm.train import char_tokenizer

    tok = char_tokenizer()
    spec = dict(MODELS[args.model])
    vocab = spec.pop("vocab_size") or len(tok)
    cfg = Qwen2Config(vocab_size=vocab, max_position_embeddings=4096, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, **spec)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation=args.attn)
    block_eos(model, tok)
    return tok, model


def block_eos(model, tok) -> None:
    """Forward hook on the LM head: logits of EOS, PAD and ids >= len(tok) get BLOCKED added."""
    import torch

    block = torch.zeros(model.config.vocab_size)
    block[[tok.eos_token_id, tok.pad_token_id]] = BLOCKED
    block[len(tok):] = BLOCKED

    def hook(module, inputs, out):
        return out + block.to(device=out.device, dtype=out.dtype)

    model.get_output_embeddings().register_forward_hook(hook)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


class _Memory:
    def __init__(self, device: str):
        self.device = device

    def __enter__(self):
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            self.base = torch.cuda.memory_allocated() / 2**20
            torch.cuda.reset_peak_memory_stats()
        else:
            self.base = _rss_mb()
            self._rss = _PeakRSS().__enter__()
        return self

    def __exit__(self, *a):
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._rss.__exit__()
            self.peak = self._rss.peak
        return False


def run_rlref(args, q) -> None:
    import torch

    import rlref.llm.train.loop as loop
    from rlref.llm.train import Trainer, load_config

    torch.set_num_threads(args.threads)
    tok, model = build(args)
    cfg = load_config(dict(family="grpo", seed=0, steps=args.warmup + args.steps, prompts_per_step=args.prompts, group_size=args.group,
                           micro_batch_size=args.prompts * args.group, max_new_tokens=args.max_new_tokens, lr=1e-6, temperature=1.0,
                           advantage="grpo", aggregation="token-mean", eps_low=0.2, eps_high=0.2, kl_beta=args.kl_beta,
                           kl_estimator="k3", max_grad_norm=1.0, terms=args.terms, progress=False, bf16=args.device == "cuda",
                           reward_fn="bench_train:digit_reward", reference="when_needed"))  # as TRL: no reference model at beta 0
    tr = Trainer(cfg, tokenizer=tok, model=model)
    gen = []
    real = loop.sample

    def timed(*a, **k):
        _sync(args.device)
        t = time.perf_counter()
        out = real(*a, **k)
        _sync(args.device)
        gen.append(time.perf_counter() - t)
        return out

    loop.sample = timed
    times, tokens = [], []
    for k in range(1, args.warmup + 1):
        tr.step(k)
    gen.clear()
    with _Memory(args.device) as mem:
        for k in range(args.warmup + 1, args.warmup + args.steps + 1):
            _sync(args.device)
            t = time.perf_counter()
            r = tr.step(k)
            _sync(args.device)
            times.append(time.perf_counter() - t)
            tokens.append(r.tokens)
    q.put(dict(times=times, gen=gen, tokens=tokens, mem_base=mem.base, mem_peak=mem.peak,
               params=sum(p.numel() for p in model.parameters())))


def run_trl(args, q) -> None:
    import torch
    import trl
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlref.llm.train import ModSumTask

    torch.set_num_threads(args.threads)
    tok, model = build(args)
    problems = ModSumTask(terms=args.terms).batch(args.prompts * (args.warmup + args.steps) * 4, seed=0)

    def digits(prompts, completions, **kw):
        return digit_reward(prompts, completions)

    out = tempfile.mkdtemp(prefix="bench_trl_")
    conf = GRPOConfig(output_dir=out, per_device_train_batch_size=args.prompts * args.group, num_generations=args.group,
                      gradient_accumulation_steps=1, max_completion_length=args.max_new_tokens, learning_rate=1e-6,
                      lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, beta=args.kl_beta,
                      loss_type="dapo", scale_rewards="group", epsilon=0.2, num_iterations=1, temperature=1.0, top_p=1.0, top_k=0,
                      max_steps=args.warmup + args.steps, logging_steps=10**6, disable_tqdm=True, report_to="none", save_strategy="no", seed=0,
                      use_cpu=args.device == "cpu", bf16=args.device == "cuda", disable_dropout=True, dataloader_num_workers=0,
                      log_completions=False, shuffle_dataset=False)
    ds = Dataset.from_dict({"prompt": [p.prompt for p in problems]})
    times, gen, tokens, state = [], [], [], {}

    class Clock(TrainerCallback):
        def on_step_begin(self, a, s, c, **kw):
            if s.global_step == args.warmup:
                state["mem"] = _Memory(args.device).__enter__()
                gen.clear()
            _sync(args.device)
            state["t"] = time.perf_counter()

        def on_step_end(self, a, s, c, **kw):
            _sync(args.device)
            if s.global_step > args.warmup:
                times.append(time.perf_counter() - state["t"])

    if args.kl_beta > 0:  # TRL builds its reference model from the policy's config path: give it a local copy
        model.save_pretrained(os.path.join(out, "init"))
        model.config._name_or_path = os.path.join(out, "init")
    trainer = GRPOTrainer(model=model, reward_funcs=[digits], args=conf, train_dataset=ds, processing_class=tok, callbacks=[Clock()])
    if trainer.ref_model is not None:
        block_eos(trainer.ref_model, tok)
    real = trainer._generate

    def timed(prompts):
        _sync(args.device)
        t = time.perf_counter()
        res = real(prompts)
        _sync(args.device)
        gen.append(time.perf_counter() - t)
        tokens.append(sum(len(c) for c in res[1]))
        return res

    trainer._generate = timed
    trainer.train()
    mem = state["mem"]
    mem.__exit__()
    q.put(dict(times=times, gen=gen, tokens=tokens[args.warmup:], mem_base=mem.base, mem_peak=mem.peak, trl=trl.__version__,
               params=sum(p.numel() for p in model.parameters())))


def _spawn(fn, args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(args, q))
    p.start()
    res = q.get()
    p.join()
    if p.exitcode:
        raise RuntimeError(f"{fn.__name__} exited with {p.exitcode}")
    return res


def summarize(name: str, runs: list[dict]) -> dict:
    """Median and minimum over every measured step of every round (the minimum is the statistic least
    inflated by other load on a shared machine); update = step − generation of the same step; memory: the
    largest peak over the rounds."""
    times = [t for r in runs for t in r["times"]]
    gens = [t for r in runs for t in r["gen"]]
    if len(gens) != len(times):
        raise RuntimeError(f"{name}: {len(gens)} timed generations for {len(times)} timed steps")
    upd = [t - g for t, g in zip(times, gens, strict=True)]
    tok = statistics.median([t for r in runs for t in r["tokens"]])
    step, g, u = statistics.median(times), statistics.median(gens), statistics.median(upd)
    return dict(framework=name, step_s=step, step_min_s=min(times), generate_s=g, generate_min_s=min(gens), update_s=u,
                update_min_s=min(upd), tokens=tok, tokens_per_s=tok / step, tokens_per_s_best=tok / min(times),
                update_tokens_per_s=tok / u, update_tokens_per_s_best=tok / min(upd), mem_peak_mb=max(r["mem_peak"] for r in runs),
                mem_step_mb=max(r["mem_peak"] - r["mem_base"] for r in runs), params=runs[0]["params"], steps_measured=len(times),
                raw=runs)


def markdown(args, rows: list[dict], meta: dict) -> str:
    a, b = rows
    unit = "GPU memory allocated" if args.device == "cuda" else "resident set"
    lines = [f"### GRPO step: rlref vs TRL {meta['trl']} ({args.device}, {args.model})", "",
             f"Machine: {meta['machine']}; torch {meta['torch']}, transformers {meta['transformers']}; {args.threads} torch thread(s); "
             f"load average {meta['load_before'][0]:.2f} before, {meta['load_after'][0]:.2f} after.",
             f"Model: Qwen2 from config, {a['params'] / 1e6:.1f}M parameters; batch {args.prompts} prompts x {args.group} completions x "
             f"{args.max_new_tokens} new tokens = {int(a['tokens'])} completion tokens per step (equal in both); kl_beta {args.kl_beta}; "
             f"median of {a['steps_measured']} steps ({args.rounds} alternating rounds of {args.steps} steps, each after {args.warmup} "
             f"warm-up step(s) in a fresh process); memory: the largest peak over the rounds.", "",
             "| | rlref | TRL | rlref / TRL |", "|---|---|---|---|"]

    def row(label, key, fmt):
        ratio = a[key] / b[key] if b[key] else float("nan")
        lines.append(f"| {label} | {a[key]:{fmt}} | {b[key]:{fmt}} | {ratio:.2f} |")

    row("step time, s (median)", "step_s", ".3f")
    row("step time, s (min)", "step_min_s", ".3f")
    row("generation, s (median)", "generate_s", ".3f")
    row("generation, s (min)", "generate_min_s", ".3f")
    row("update = step - generation, s (median)", "update_s", ".3f")
    row("update = step - generation, s (min)", "update_min_s", ".3f")
    row("tokens/s, whole step (median)", "tokens_per_s", ".4g")
    row("tokens/s, whole step (best)", "tokens_per_s_best", ".4g")
    row("tokens/s, generation excluded (median)", "update_tokens_per_s", ".4g")
    row("tokens/s, generation excluded (best)", "update_tokens_per_s_best", ".4g")
    row(f"peak {unit} during the steps, MiB", "mem_peak_mb", ".0f")
    row(f"peak {unit} above the pre-step baseline, MiB", "mem_step_mb", ".0f")
    lines += ["", "Ratios: time and memory below 1, tokens/s above 1 favour rlref. Min/best = the fastest measured step "
              "(least inflated by other load on the machine)."]
    return "\n".join(lines) + "\n"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--model", choices=sorted(MODELS), default="tiny")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--terms", type=int, default=3)
    ap.add_argument("--kl-beta", type=float, default=0.0)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rlref/TRL rounds (each in fresh processes)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in each worker (CPU)")
    ap.add_argument("--attn", default="sdpa", help="attn_implementation of the model (both frameworks)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/train_<device>_<model>.json)")
    ap.add_argument("--md", default=None, help="also append the markdown table to this file")
    ap.add_argument("--from-json", default=None, help="re-render the markdown of a saved JSON (no run)")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        md = markdown(argparse.Namespace(**saved["meta"]["args"]), saved["results"], saved["meta"])
        print(md)
        if args.md:
            with open(args.md, "a") as f:
                f.write(md + "\n")
        return
    import torch
    import transformers

    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {"rlref": [], "trl": []}
    for i in range(args.rounds):
        order = [("rlref", run_rlref), ("trl", run_trl)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            runs[name].append(_spawn(fn, args))
    rows = [summarize("rlref", runs["rlref"]), summarize("trl", runs["trl"])]
    if rows[0]["tokens"] != rows[1]["tokens"]:
        raise RuntimeError(f"the two runs processed different numbers of tokens: rlref {rows[0]['tokens']}, TRL {rows[1]['tokens']}")
    machine = f"{_cpu_name()}, {os.cpu_count()} CPUs"
    if args.device == "cuda":
        machine = f"{torch.cuda.get_device_name()} ({machine})"
    meta = dict(machine=machine, torch=torch.__version__, transformers=transformers.__version__, trl=rows[1]["raw"][0]["trl"],
                load_before=load_before, load_after=os.getloadavg(), args=vars(args))
    md = markdown(args, rows, meta)
    print(md)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", f"train_{args.device}_{args.model}.json")
    with open(out, "w") as f:
        json.dump(dict(meta=meta, results=rows, markdown=md), f, indent=1)
    if args.md:
        with open(args.md, "a") as f:
            f.write(md + "\n")


if __name__ == "__main__":
    main()
