"""Benchmark: token_logprobs_from_hidden (chunked, recompute in backward) vs the naive path.

Naive path: logits = hidden @ weight.T (input dtype), log_softmax in fp32, gather; backward through
autograd. Measured per path in a fresh subprocess (CPU: peak RSS above the inputs' baseline; CUDA:
torch.cuda.max_memory_allocated above the baseline): peak extra memory and the wall time of
forward + backward (median of repeats, after one warm-up). Prints ratios and writes a JSON.

    python benchmarks/bench_logprobs.py                # CPU: V=32000, d=512, N=4096, fp32 + bf16
    python benchmarks/bench_logprobs.py --device cuda  # GPU: V=151936, d=2048, N=16384, bf16 + fp32
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import statistics
import time


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _worker(path: str, device: str, dtype_name: str, n: int, d: int, v: int, chunk: int, repeats: int, q) -> None:
    import torch

    from rlref.llm.logprobs import token_logprobs_from_hidden

    torch.manual_seed(0)
    dtype = getattr(torch, dtype_name)
    hidden = (torch.randn(n, d, device=device) * 0.5).to(dtype).requires_grad_(True)
    weight = (torch.randn(v, d, device=device) * 0.02).to(dtype).requires_grad_(True)
    tokens = torch.randint(0, v, (n,), device=device)

    def step() -> None:
        hidden.grad = None
        weight.grad = None
        if path == "chunked":
            out = token_logprobs_from_hidden(hidden, weight, tokens, chunk_size=chunk)
        else:
            logits = (hidden @ weight.T).float()
            out = torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        out.sum().backward()

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up (allocates the gradient buffers too)
    sync()
    if device == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = _rss_mb()
    times = []
    peak_sampler = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    if device == "cuda":
        peak_extra = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_sampler = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
        peak_extra = peak_sampler - base
    q.put({"path": path, "time_s": statistics.median(times), "peak_extra_mib": peak_extra})


def _run(path: str, args, dtype_name: str) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_worker, args=(path, args.device, dtype_name, args.tokens, args.hidden, args.vocab, args.chunk, args.repeats, q))
    p.start()
    res = q.get()
    p.join()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--vocab", type=int, default=None)
    ap.add_argument("--hidden", type=int, default=None)
    ap.add_argument("--tokens", type=int, default=None)
    ap.add_argument("--chunk", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--out", default="benchmarks/bench_logprobs.json")
    args = ap.parse_args()
    gpu = args.device == "cuda"
    args.vocab = args.vocab or (151_936 if gpu else 32_000)
    args.hidden = args.hidden or (2_048 if gpu else 512)
    args.tokens = args.tokens or (16_384 if gpu else 4_096)
    args.chunk = args.chunk or (1_024 if gpu else 512)
    args.repeats = args.repeats or (5 if gpu else 2)

    import torch

    device_name = torch.cuda.get_device_name(0) if gpu else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    logits_mib = args.tokens * args.vocab * 4 / 2**20
    results = []
    for dtype_name in args.dtypes.split(","):
        naive = _run("naive", args, dtype_name)
        chunked = _run("chunked", args, dtype_name)
        row = {
            "dtype": dtype_name,
            "naive": naive,
            "chunked": chunked,
            "fp32_logits_mib": logits_mib,
            "memory_ratio_chunked_over_naive": chunked["peak_extra_mib"] / max(naive["peak_extra_mib"], 1e-9),
            "chunked_extra_over_fp32_logits": chunked["peak_extra_mib"] / logits_mib,
            "time_ratio_chunked_over_naive": chunked["time_s"] / naive["time_s"],
        }
        results.append(row)
        print(
            f"{dtype_name:9s} naive {naive['time_s']:.3f}s {naive['peak_extra_mib']:.0f} MiB | chunked {chunked['time_s']:.3f}s "
            f"{chunked['peak_extra_mib']:.0f} MiB | memory x{row['memory_ratio_chunked_over_naive']:.3f} "
            f"(extra = {100 * row['chunked_extra_over_fp32_logits']:.1f}% of fp32 logits), time x{row['time_ratio_chunked_over_naive']:.2f}"
        )
    report = {
        "device": device_name,
        "torch": torch.__version__,
        "vocab": args.vocab,
        "hidden": args.hidden,
        "tokens": args.tokens,
        "chunk_size": args.chunk,
        "repeats": args.repeats,
        "memory_measure": "CUDA max_memory_allocated above baseline" if gpu else "peak RSS (ru_maxrss) above the RSS after warm-up",
        "results": results,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
