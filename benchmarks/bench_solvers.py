"""Speed and memory of rlref's exact solvers against pymdptoolbox on sparse Garnet MDPs.

For each S (default 10^3, 10^4, 10^5; A = 10 actions, branching b = 5, gamma = 0.9) one Garnet
instance is built with ``rlref.envs.garnet(..., seed=SEED, sparse=True)`` and solved by

* rlref: ``policy_evaluation`` of a fixed random deterministic policy (sparse solve of
  (I − γ P_π) V = r_π to a 1e-12 residual) and ``value_iteration(mdp, epsilon=2·TOL)``, whose
  stopping rule ‖v_{k+1} − v_k‖∞ <= ε(1 − γ)/(2γ) certifies ‖V_k − V*‖∞ <= ε/2 = TOL
  (default 1e-6) and a greedy policy that is ε-optimal;
* pymdptoolbox 4.0b3 on the *same* instance (converted to its action-first layout: a list of A
  ``scipy.sparse.csr_matrix`` of shape (S, S) with ``P_a[s, s'] = P(s'|s, a)``, and R as (S, A)):
  ``ValueIteration(P, R, gamma, epsilon)`` for epsilon in (0.01 = its default, TOL), and the
  dense matrix policy evaluation of ``PolicyIteration`` (``_evalPolicyMatrix``, the routine its
  policy iteration uses) for the same deterministic policy.

Every solver runs in its own subprocess so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own; rlref's solver calls are also run
once under ``tracemalloc`` to report the peak of the memory they allocate. Values are compared
against the exact optimum V* = V^{π_greedy}: the greedy policy of rlref's VI evaluated by a
sparse direct solve, certified by its Bellman residual ‖T V − V‖∞ / (1 − γ) ≈ 1e-13.

pymdptoolbox's ValueIteration stops on the *span* of V_{k+1} − V_k, which does not bound the
error of the values (only of the greedy policy), so its values can be far from V*; the script
reports that true error next to the time. pymdptoolbox is not run above ``--pmt-max-states``
(default 10^4): its input check ``mdptoolbox.util.check`` computes ``P_a.sum(axis=1) − ones(S)``
on an (S, 1) ``numpy.matrix``, which broadcasts to a dense (S, S) array (74.5 GiB at S = 10^5),
and ``ValueIteration._boundIter`` slices all S·A sparse columns one by one.

pymdptoolbox 4.0b3 imports and runs unchanged under numpy 2 / scipy 1.17 when its transition
matrices are ``csr_matrix`` (not ``csr_array``: its ``todense().A1`` needs ``numpy.matrix``), so
no compatibility shim is needed.

Usage::

    python benchmarks/bench_solvers.py                       # S = 1e3, 1e4, 1e5 (several minutes)
    python benchmarks/bench_solvers.py --sizes 1000 --repeat 5
    python benchmarks/bench_solvers.py --out benchmarks/results/solvers.json

Writes a JSON file (default ``benchmarks/results/solvers.json``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# ----------------------------------------------------------------------------- instance
def build_instance(S: int, A: int, b: int, gamma: float, seed: int) -> tuple[Any, np.ndarray]:
    """The Garnet MDP and a fixed random deterministic policy ``actions[s]`` (same for both libraries)."""
    from rlref.envs import garnet

    mdp = garnet(S, A, b, gamma=gamma, seed=seed, sparse=True)
    actions = np.random.default_rng([seed, 1]).integers(0, A, size=S)
    return mdp, actions


def to_mdptoolbox(mdp: Any) -> tuple[list[Any], np.ndarray]:
    """rlref's (S·A, S) CSR (row s·A + a) -> pymdptoolbox's list of A CSR (S, S) and R[s, a]."""
    import scipy.sparse as sp

    A = mdp.num_actions
    P = mdp.transition_matrix()
    return [sp.csr_matrix(P[a::A]) for a in range(A)], np.array(mdp.r)


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(max(repeat, 1)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _traced_peak_mib(fn: Callable[[], Any]) -> float:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


# ----------------------------------------------------------------------------- workers
def worker_rlref(S: int, A: int, b: int, gamma: float, seed: int, tol: float, repeat: int, npz: str) -> dict[str, Any]:
    """Time rlref's policy evaluation and value iteration; store values in ``npz``."""
    from rlref.policy import deterministic_policy
    from rlref.solve import policy_evaluation, value_iteration

    t0 = time.perf_counter()
    mdp, actions = build_instance(S, A, b, gamma, seed)
    t_build = time.perf_counter() - t0
    rss_instance = _peak_rss_mib()
    pi = deterministic_policy(actions, A)
    reps = repeat if S <= 10_000 else 1

    t_pe, pe = _best_time(lambda: policy_evaluation(mdp, pi), reps)
    t_vi, vi = _best_time(lambda: value_iteration(mdp, epsilon=2.0 * tol), reps)
    rss_after = _peak_rss_mib()
    mem_pe = _traced_peak_mib(lambda: policy_evaluation(mdp, pi))
    mem_vi = _traced_peak_mib(lambda: value_iteration(mdp, epsilon=2.0 * tol))

    # exact V*: evaluate VI's greedy policy by a direct solve and certify it by its Bellman residual
    star = policy_evaluation(mdp, vi.policy)
    v_star = star.values
    residual = float(np.max(np.abs(np.max(mdp.r + mdp.gamma * mdp.expected_next(v_star), axis=1) - v_star)))
    np.savez(npz, v_pe=pe.values, v_vi=vi.values, v_star=v_star)
    return {
        "build_s": t_build,
        "policy_evaluation_s": t_pe,
        "value_iteration_s": t_vi,
        "value_iteration_iterations": int(vi.iterations),
        "value_iteration_bound": float(vi.suboptimality_bound),
        "vstar_bellman_residual": residual,
        "vstar_certified_error": residual / (1.0 - gamma),
        "peak_rss_instance_mib": rss_instance,
        "peak_rss_mib": rss_after,
        "tracemalloc_peak_policy_evaluation_mib": mem_pe,
        "tracemalloc_peak_value_iteration_mib": mem_vi,
        "nnz": int(mdp.transition_matrix().nnz),
    }


def worker_mdptoolbox(S: int, A: int, b: int, gamma: float, seed: int, epsilons: list[float], npz: str) -> dict[str, Any]:
    """Time pymdptoolbox's ValueIteration (per epsilon) and its matrix policy evaluation."""
    warnings.simplefilter("ignore")  # its isNonNegative triggers SparseEfficiencyWarning
    import mdptoolbox
    import mdptoolbox.mdp as pmt
    import mdptoolbox.util as pmt_util

    mdp, actions = build_instance(S, A, b, gamma, seed)
    t0 = time.perf_counter()
    P, R = to_mdptoolbox(mdp)
    t_convert = time.perf_counter() - t0
    rss_instance = _peak_rss_mib()

    # instrument (not change) the two expensive parts of its constructor
    spent: dict[str, float] = {}
    original_check = pmt_util.check
    original_bound = pmt.ValueIteration._boundIter

    def timed_check(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return original_check(*args, **kwargs)
        finally:
            spent["check_s"] = spent.get("check_s", 0.0) + time.perf_counter() - t

    def timed_bound(self: Any, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return original_bound(self, *args, **kwargs)
        finally:
            spent["bound_iter_s"] = spent.get("bound_iter_s", 0.0) + time.perf_counter() - t

    pmt_util.check = timed_check
    pmt.ValueIteration._boundIter = timed_bound
    out: dict[str, Any] = {"version": getattr(mdptoolbox, "__version__", "4.0b3"), "convert_s": t_convert,
                           "peak_rss_instance_mib": rss_instance, "value_iteration": []}
    arrays: dict[str, np.ndarray] = {}
    try:
        vi0 = None
        for k, eps in enumerate(epsilons):
            spent.clear()
            if vi0 is None:
                t = time.perf_counter()
                vi = pmt.ValueIteration(P, R, gamma, epsilon=eps)
                t_init = time.perf_counter() - t
                vi0 = vi
            else:
                # same as ValueIteration.__init__ after its (epsilon-independent) input check:
                # V = 0, then the span-based iteration bound and threshold for this epsilon
                t = time.perf_counter()
                vi = copy.copy(vi0)
                vi.V, vi.iter, vi.policy = np.zeros(S), 0, None
                vi._boundIter(eps)
                vi.thresh = eps * (1 - gamma) / gamma
                t_init = time.perf_counter() - t
                spent["check_s"] = out["value_iteration"][0]["check_s"]  # paid once by a real user too
                t_init += spent["check_s"]
            t = time.perf_counter()
            vi.run()
            t_run = time.perf_counter() - t
            arrays[f"v_vi_{k}"] = np.asarray(vi.V, dtype=np.float64)
            arrays[f"pol_vi_{k}"] = np.asarray(vi.policy, dtype=np.int64)
            out["value_iteration"].append({"epsilon": eps, "init_s": t_init, "run_s": t_run, "total_s": t_init + t_run,
                                           "iterations": int(vi.iter), "max_iter": int(vi.max_iter),
                                           "check_s": spent.get("check_s", 0.0), "bound_iter_s": spent.get("bound_iter_s", 0.0)})
        # PolicyIteration's matrix policy evaluation on the same, already checked and converted,
        # P and R (PolicyIteration.__init__ would repeat the input check and compute the same
        # self.P, self.R through the shared MDP base class)
        pe = pmt.PolicyIteration.__new__(pmt.PolicyIteration)
        pe.__dict__.update(copy.copy(vi0).__dict__)
        pe.policy = np.asarray(actions)
        pe.V = np.zeros(S)
        t = time.perf_counter()
        pmt.PolicyIteration._evalPolicyMatrix(pe)
        out["policy_evaluation_s"] = time.perf_counter() - t
        arrays["v_pe"] = np.asarray(pe.V, dtype=np.float64).ravel()
    finally:
        pmt_util.check = original_check
        pmt.ValueIteration._boundIter = original_bound
    out["peak_rss_mib"] = _peak_rss_mib()
    np.savez(npz, **arrays)
    return out


# ----------------------------------------------------------------------------- driver
def _spawn(args: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["unknown error"])[-1], "returncode": proc.returncode}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpu_count": os.cpu_count(), "numpy": np.__version__}
    try:
        import scipy

        info["scipy"] = scipy.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        info["cpu"] = names[0] if names else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    try:
        with open("/proc/meminfo") as fh:
            info["mem_total_gib"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info


def run_size(S: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run both libraries on one Garnet instance and compare their values against V*."""
    from rlref.policy import deterministic_policy
    from rlref.solve import policy_evaluation

    common = ["--S", str(S), "--actions", str(args.actions), "--branching", str(args.branching),
              "--gamma", str(args.gamma), "--seed", str(args.seed)]
    row: dict[str, Any] = {"S": S, "A": args.actions, "branching": args.branching, "gamma": args.gamma, "tol": args.tol}
    with tempfile.TemporaryDirectory() as tmp:
        ours_npz, pmt_npz = os.path.join(tmp, "ours.npz"), os.path.join(tmp, "pmt.npz")
        print(f"  S={S}: rlref ...", file=sys.stderr, flush=True)
        ours = _spawn(["--worker", "rlref", *common, "--tol", str(args.tol), "--repeat", str(args.repeat), "--npz", ours_npz])
        row["rlref"] = ours
        if "error" in ours:
            return row
        o = np.load(ours_npz)
        v_star = o["v_star"]
        row["rlref"]["vi_error"] = float(np.max(np.abs(o["v_vi"] - v_star)))
        if S > args.pmt_max_states:
            row["mdptoolbox"] = {"skipped": f"S > --pmt-max-states={args.pmt_max_states}: util.check broadcasts a dense "
                                            f"(S, S) array ({S * S * 8 / 2**30:.1f} GiB) and _boundIter slices S*A columns"}
            return row
        print(f"  S={S}: pymdptoolbox ...", file=sys.stderr, flush=True)
        eps = ",".join(str(e) for e in args.pmt_epsilons)
        theirs = _spawn(["--worker", "mdptoolbox", *common, "--epsilons", eps, "--npz", pmt_npz])
        row["mdptoolbox"] = theirs
        if "error" in theirs:
            return row
        t = np.load(pmt_npz)
        mdp, _ = build_instance(S, args.actions, args.branching, args.gamma, args.seed)
        theirs["policy_evaluation_max_abs_diff"] = float(np.max(np.abs(t["v_pe"] - o["v_pe"])))
        theirs["policy_evaluation_ratio"] = theirs["policy_evaluation_s"] / ours["policy_evaluation_s"]
        for k, entry in enumerate(theirs["value_iteration"]):
            v = t[f"v_vi_{k}"]
            v_pol = policy_evaluation(mdp, deterministic_policy(t[f"pol_vi_{k}"], args.actions)).values
            entry["value_error"] = float(np.max(np.abs(v - v_star)))
            entry["policy_suboptimality"] = float(np.max(v_star - v_pol))
            entry["ratio_total"] = entry["total_s"] / ours["value_iteration_s"]
            entry["ratio_run_only"] = entry["run_s"] / ours["value_iteration_s"]
            ours_sweep = ours["value_iteration_s"] / max(ours["value_iteration_iterations"], 1)
            entry["ratio_per_sweep"] = entry["run_s"] / max(entry["iterations"], 1) / ours_sweep
    return row


def markdown(results: dict[str, Any]) -> str:
    """The results as a markdown table (times in seconds; ratio = pymdptoolbox / rlref)."""
    lines = [
        "| S | rlref PE (s) | pmt PE (s) | PE ratio | PE max diff | rlref VI (s) | rlref VI iters | rlref VI ‖V−V*‖∞ "
        "| pmt ε | pmt VI total (s) [check, bound] | pmt VI run (s) | pmt iters | pmt ‖V−V*‖∞ | pmt policy subopt. "
        "| VI ratio total (run only, per sweep) | rlref peak RSS (MiB) | pmt peak RSS (MiB) |",
        "|" + "---|" * 18,
    ]
    for row in results["rows"]:
        o, t = row["rlref"], row.get("mdptoolbox", {})
        if "error" in o:
            lines.append(f"| {row['S']} | error: {o['error']} |" + " |" * 16)
            continue
        head = (f"| {row['S']:,} | {o['policy_evaluation_s']:.3g} | {t.get('policy_evaluation_s', float('nan')):.3g} "
                f"| {t.get('policy_evaluation_ratio', float('nan')):.3g} | {t.get('policy_evaluation_max_abs_diff', float('nan')):.1e} "
                f"| {o['value_iteration_s']:.3g} | {o['value_iteration_iterations']} | {o['vi_error']:.1e} ")
        tail = f"| {o['peak_rss_mib']:.0f} | {t.get('peak_rss_mib', float('nan')):.0f} |"
        entries = t.get("value_iteration") or [None]
        for e in entries:
            if e is None:
                why = t.get("skipped") or t.get("error", "")
                lines.append(head + f"| — | not run ({why}) | | | | | | " + tail)
            else:
                lines.append(head + f"| {e['epsilon']:g} | {e['total_s']:.3g} [{e['check_s']:.3g}, {e['bound_iter_s']:.3g}] "
                             f"| {e['run_s']:.3g} | {e['iterations']} | {e['value_error']:.2e} | {e['policy_suboptimality']:.1e} "
                             f"| {e['ratio_total']:.3g} ({e['ratio_run_only']:.3g}, {e['ratio_per_sweep']:.3g}) " + tail)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000", help="comma-separated numbers of states")
    p.add_argument("--actions", type=int, default=10)
    p.add_argument("--branching", type=int, default=5)
    p.add_argument("--gamma", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tol", type=float, default=1e-6, help="rlref VI: certified ‖V_k − V*‖∞ target")
    p.add_argument("--pmt-epsilons", default="0.01,1e-6", help="pymdptoolbox ValueIteration epsilons (0.01 is its default)")
    p.add_argument("--pmt-max-states", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3, help="best of N timings of rlref's solvers (S <= 1e4)")
    p.add_argument("--out", default=str(HERE / "results" / "solvers.json"))
    # internal: one solver in a subprocess
    p.add_argument("--worker", choices=["rlref", "mdptoolbox"], help=argparse.SUPPRESS)
    p.add_argument("--S", type=int, help=argparse.SUPPRESS)
    p.add_argument("--epsilons", help=argparse.SUPPRESS)
    p.add_argument("--npz", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker == "rlref":
        res = worker_rlref(args.S, args.actions, args.branching, args.gamma, args.seed, args.tol, args.repeat, args.npz)
        print(json.dumps(res))
        return 0
    if args.worker == "mdptoolbox":
        eps = [float(e) for e in args.epsilons.split(",")]
        res = worker_mdptoolbox(args.S, args.actions, args.branching, args.gamma, args.seed, eps, args.npz)
        print(json.dumps(res))
        return 0

    args.pmt_epsilons = [float(e) for e in args.pmt_epsilons.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, Any] = {
        "benchmark": "bench_solvers",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": _machine(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "S", "epsilons", "npz")},
        "rows": [],
    }
    for S in sizes:
        results["rows"].append(run_size(S, args))
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
