"""Episodes per second of each adversarial-MDP learner at S=20, A=4, H=5, d=8 (issue 13).

    python benchmarks/bench_adversarial.py [--episodes 1000]   # writes benchmarks/results/adversarial.json

Instance: rlref.linear.random_linear_mdp(20, 4, 8, seed=0, horizon=5) with i.i.d. losses of gap 0.3.
Each learner runs the same K episodes (default_tuning for the policy-optimization learners, M = ⌈√K⌉
simulator rollouts per episode; O-REPS with its default η; the simulator-free learners with
default_simfree_tuning, one policy per epoch of W episodes). Reported: episodes per second and the
ratio to Algorithm 1 (log-barrier). Set OMP_NUM_THREADS=1 on a shared machine: threaded BLAS on
tiny matrices is slower than one thread.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from rlref.algorithms import adversarial as adv
from rlref.linear import random_linear_mdp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "adversarial.json"))
    args = ap.parse_args()
    K, S, A, H, d = args.episodes, 20, 4, 5, 8
    lin = random_linear_mdp(S, A, d, seed=0, horizon=H)
    game = adv.AdversarialMDP(mdp=lin.to_tabular(), losses=adv.iid_losses(lin.phi, K, H, gap=0.3, seed=1), phi=lin.phi)
    runs = {
        "log_barrier (Alg. 1)": lambda: adv.log_barrier_po(game, seed=0, check_linear=False),
        "magnitude_reduced (Alg. 2)": lambda: adv.magnitude_reduced_po(game, seed=0, check_linear=False),
        "dilated_bonus (Luo et al. 2021)": lambda: adv.dilated_bonus_po(game, seed=0, check_linear=False),
        "log_barrier, exact covariance": lambda: adv.log_barrier_po(game, seed=0, check_linear=False, covariance="exact"),
        "oreps full information": lambda: adv.oreps(game, seed=0),
        "oreps bandit": lambda: adv.oreps(game, feedback="bandit", seed=0),
        "log_barrier_sf (simulator-free Alg. 1)": lambda: adv.simulator_free_po(game, "log_barrier_sf", seed=0, check_linear=False),
        "mgr_hedge_sf (simulator-free Luo et al.)": lambda: adv.simulator_free_po(game, "mgr_hedge_sf", seed=0, check_linear=False),
    }
    out = {}
    for name, fn in runs.items():
        t = time.perf_counter()
        run = fn()
        sec = time.perf_counter() - t
        out[name] = {"episodes_per_second": K / sec, "seconds": sec, "regret": run.regret}
        print(f"{name:42s} {K / sec:8.0f} episodes/s   regret {run.regret:8.2f}")
    base = out["log_barrier (Alg. 1)"]["episodes_per_second"]
    for v in out.values():
        v["ratio_to_alg1"] = v["episodes_per_second"] / base
    meta = {"K": K, "S": S, "A": A, "H": H, "d": d, "python": platform.python_version(), "numpy": np.__version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "results": out}, indent=2) + "\n")


if __name__ == "__main__":
    main()
