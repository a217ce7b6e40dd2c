"""Benchmark: episodes per second of the demonstration-regularized explorer (rlref.algorithms.demo_regularized).

Instance: Garnet S = 100, A = 5, branching 5, H = 10 (the issue's size), π̃ = a behaviour-cloned policy.
Measured (same process, same instance):

* end-to-end episodes/s of ``regularized_bpi`` run for a fixed budget (ε tiny so it never stops)
  at growth = 0.05 (re-plan after ⌈0.05 t⌉ episodes, the default) and growth = 0 limit emulated by
  re-planning after every episode (``growth`` tiny) for the first 2000 episodes;
* the time of one optimistic backward pass (the re-planning step) and of sampling one episode;
* the ratio of the vectorized backward pass to a naive pass with a Python loop over states
  (written here only for the comparison; the library has no per-state loop).

Run:  python benchmarks/bench_demo_regularized.py [--episodes 200000] [--repeat 3]
Writes benchmarks/results/demo_regularized.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from rlref.algorithms import demo_regularized as dr
from rlref.envs.garnet import garnet
from rlref.solve import soft_greedy_unchecked, soft_value_iteration, soft_value_unchecked


def _naive_pass(P: np.ndarray, r: np.ndarray, ref: np.ndarray, bonus: np.ndarray, lam: float) -> np.ndarray:
    """The optimistic soft backup with a Python loop over states (comparison only)."""
    H, S, A = r.shape
    V = np.zeros((H + 1, S))
    pi = np.zeros((H, S, A))
    for h in range(H - 1, -1, -1):
        for s in range(S):
            q = np.minimum(H - h, r[h, s] + P[h, s] @ V[h + 1] + bonus[h, s])
            V[h, s] = soft_value_unchecked(q, ref[h, s], lam)
            pi[h, s] = soft_greedy_unchecked(q, ref[h, s], lam)
    return pi


def _vector_pass(P: np.ndarray, r: np.ndarray, ref: np.ndarray, bonus: np.ndarray, lam: float) -> np.ndarray:
    H, S, A = r.shape
    V = np.zeros((H + 1, S))
    pi = np.zeros((H, S, A))
    for h in range(H - 1, -1, -1):
        q = np.minimum(H - h, r[h] + P[h] @ V[h + 1] + bonus[h])
        V[h] = soft_value_unchecked(q, ref[h], lam)
        pi[h] = soft_greedy_unchecked(q, ref[h], lam)
    return pi


def _best(f, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    S, A, H, lam = 100, 5, 10, 1.0
    mdp = garnet(S, A, 5, horizon=H, seed=0)
    pi_e = soft_value_iteration(mdp, 0.05).policy
    tr = dr.sample_trajectories(mdp, pi_e, 1000, np.random.default_rng(0))
    bc = dr.behavior_cloning(tr.states, tr.actions, S, A, kappa=0.1).policy

    out: dict = {"instance": f"garnet(S={S}, A={A}, b=5, H={H})", "lam": lam, "machine": platform.processor() or platform.machine(),
                 "python": platform.python_version()}
    for growth in (0.05, 0.2):
        t = _best(lambda g=growth: dr.regularized_bpi(mdp, bc, lam, 1e-9, rng=np.random.default_rng(1), max_episodes=args.episodes,
                                                      growth=g), args.repeat)
        out[f"episodes_per_s_growth_{growth}"] = args.episodes / t
    n_replan = 2000
    t = _best(lambda: dr.regularized_bpi(mdp, bc, lam, 1e-9, rng=np.random.default_rng(1), max_episodes=n_replan, growth=1e-12),
              args.repeat)
    out["episodes_per_s_replan_every_episode"] = n_replan / t
    rng = np.random.default_rng(2)
    t = _best(lambda: dr.sample_trajectories(mdp, bc, 100_000, rng), args.repeat)
    out["sampled_episodes_per_s"] = 100_000 / t

    P = mdp.dense_P()
    P = np.broadcast_to(P, (H, *P.shape))
    r = np.stack([mdp.reward(h) for h in range(H)])
    bonus = np.random.default_rng(3).random((H, S, A))
    np.testing.assert_allclose(_naive_pass(P, r, bc, bonus, lam), _vector_pass(P, r, bc, bonus, lam), atol=1e-12)
    t_naive = _best(lambda: _naive_pass(P, r, bc, bonus, lam), args.repeat)
    t_vec = _best(lambda: _vector_pass(P, r, bc, bonus, lam), args.repeat)
    out["backward_pass_ms_vectorized"] = 1e3 * t_vec
    out["backward_pass_ms_state_loop"] = 1e3 * t_naive
    out["state_loop_over_vectorized"] = t_naive / t_vec

    Path(__file__).with_name("results").mkdir(exist_ok=True)
    Path(__file__).with_name("results").joinpath("demo_regularized.json").write_text(json.dumps(out, indent=2))
    print("| quantity | value |\n|---|---|")
    for k, v in out.items():
        print(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")


if __name__ == "__main__":
    main()
