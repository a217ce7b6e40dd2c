"""Certified planning side by side in one run: rlref ``optimal`` vs quantecon ``DiscreteDP`` vs pymdptoolbox.

Instances (all sparse CSR, A = 10 / 4 / 2 actions):

* Garnet (fast mixing): ``rlref.envs.garnet(S, 10, 5, sparse=True, seed=0)``, S ∈ {1e4, 1e5}, γ ∈ {0.9, 0.99, 0.999};
  S = 1e6 at γ = 0.99 only, with one contestant per library (rlref "auto", quantecon MPI) to keep the
  run short (the instance alone takes ~20 s to build and 0.6 GB).
* Slippery gridworld (slow mixing): an open n×n grid, goal in the far corner, slip 0.2, step reward −0.01
  (S = 1e4: n = 100; S ≈ 1e5: n = 316 at γ = 0.99 only, rlref "auto" and quantecon MPI).
* RiverSwim (very slow mixing, Strehl & Littman 2008): ``rlref.envs.riverswim(n)``, n = 500 (policy iteration needs ~n iterations here).

Contestants at the same target ε = 1e-6 (sup norm on the values): rlref ``optimal(mdp, ε, method=m)`` for
m ∈ {auto, vi, mpi, pi}; quantecon ``DiscreteDP.solve`` "vi" (its defaults: max_iter = 250) and
"mpi" on the state-action-pair form built by ``rlref.interop.quantecon.to_discrete_dp``; pymdptoolbox
``ValueIteration(P, R, γ, ε)`` on its (A, S, S) input from ``rlref.interop.mdptoolbox.to_mdptoolbox``,
on Garnet S = 1e4 at γ = 0.9 only (its input check densifies P beyond S = 1e4, and at γ = 0.99 it
did not finish in 10 minutes: its iteration-bound computation slices all S·A sparse columns one by one).
Left out after measuring once (Garnet S = 1e4, γ = 0.9): quantecon "pi" (302 s: its evaluation is a
sparse direct solve with catastrophic fill-in) and rlref "lp" (127 s in HiGHS' interior point).

Timing: each contestant runs once, then the ones that took < 2 s (all with ``--repeat-slow``) run ``--repeats`` − 1 more times
round-robin (all contestants of an instance in turn) and the minimum is kept (the machine is
shared and loaded, and interleaving makes a load spike hit every contestant alike). quantecon's MPI is run with its default
``max_iter = 250`` and, where that stops it early, again with ``max_iter = 100000`` ("mpi*"), so that
the ratio ``auto / qe mpi`` compares the two at the same true accuracy. Two ratios are reported: of
the minima, and the median over passes of (auto's time / qe MPI's time in the same pass), whose
two runs lie seconds apart and so see about the same load (``auto_over_qe_mpi_median``, with
every pass in ``auto_over_qe_mpi_per_pass``); the load average at the start and end is recorded.

Mat-vec lower bound per contestant: one untimed extra run counts the sparse products it performs
(scipy's CSR mat-vec kernel, wrapped for that run only) in units of nnz processed; the floor is
(nnz processed / nnz(P)) × (time of one P v), i.e. the time of the mat-vecs the method needed at
this machine's memory bandwidth, and ``floor_ratio`` = time / floor says how close it comes. Dense
products (numpy) are not counted (floor reported as None).

Reported per contestant: wall time, iterations, the certificate it returns (rlref only; the others
return none), the true error ‖v − V*‖_∞ with V* from rlref's span MPI (m = 50) at ε = 1e-9, whose own error
is certified by the MacQueen-Porteus half-width (reported as ``vstar_uncertainty``), and a flag
``off`` when the true error exceeds the contestant's ε (+ the V* uncertainty). The floor: the time
of one CSR mat-vec P v at this machine's memory bandwidth (``matvec_s``); each time is also given in
mat-vec units (a value-iteration sweep costs ≥ 1 mat-vec; any certificate needs ≥ 1).

Usage::

    python benchmarks/bench_solvers.py                 # everything (~10 min on 2 shared cores)
    python benchmarks/bench_solvers.py --quick         # S = 1e4 rows only
    python benchmarks/bench_solvers.py --out benchmarks/results/solvers.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # both contestants single-threaded BLAS (set before numpy loads)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import platform
import resource
import sys
import time
import tracemalloc
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
EPS = 1e-6


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def slippery_grid(n: int, gamma: float):
    from rlref.envs import gridworld

    rows = ["." * n for _ in range(n)]
    rows[-1] = "." * (n - 1) + "G"
    return gridworld(rows, slip=0.2, gamma=gamma, step_reward=-0.01, sparse=True, name=f"grid{n}")


def instances(quick: bool) -> list[tuple[str, Any, dict[str, Any]]]:
    from rlref.envs import garnet, riverswim

    out = []
    full = {"rlref": ("auto", "vi", "mpi", "pi"), "quantecon": ("vi", "mpi")}
    small = {"rlref": ("auto", "vi", "mpi", "pi"), "quantecon": ("vi", "mpi"), "pymdptoolbox": True}
    one = {"rlref": ("auto",), "quantecon": ("mpi",)}
    for g in (0.9, 0.99, 0.999):
        plan = small if g == 0.9 else {**small, "pymdptoolbox": False}
        out.append((f"garnet S=1e4 g={g}", lambda g=g: garnet(10_000, 10, 5, gamma=g, seed=0, sparse=True), plan))
    out.append(("grid 100x100 g=0.99", lambda: slippery_grid(100, 0.99), {**small, "pymdptoolbox": False}))
    out.append(("riverswim n=500 g=0.99", lambda: riverswim(500, gamma=0.99), {**small, "pymdptoolbox": False}))
    out.append(("riverswim n=500 g=0.999", lambda: riverswim(500, gamma=0.999), {**small, "pymdptoolbox": False}))
    if quick:
        return out
    for g in (0.9, 0.99, 0.999):
        out.append((f"garnet S=1e5 g={g}", lambda g=g: garnet(100_000, 10, 5, gamma=g, seed=0, sparse=True), full))
    out.append(("grid 316x316 g=0.99", lambda: slippery_grid(316, 0.99), one))
    out.append(("garnet S=1e6 g=0.99", lambda: garnet(1_000_000, 10, 5, gamma=0.99, seed=0, sparse=True), one))
    return out


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


REPEATS = 3


def _matvec_nnz(fn) -> int:
    """nnz processed by scipy CSR mat-vecs during one run of fn (the kernel is wrapped for that run only)."""
    import scipy.sparse._sparsetools as kernels

    orig, total = kernels.csr_matvec, [0]

    def counting(n_row, n_col, indptr, indices, data, x, y):
        total[0] += len(data)
        return orig(n_row, n_col, indptr, indices, data, x, y)

    kernels.csr_matvec = counting
    try:
        fn()
    finally:
        kernels.csr_matvec = orig
    return total[0]


def run_instance(label: str, build, plan: dict[str, Any], big_repeats: bool = False) -> dict[str, Any]:
    import rlref.solve as rs
    from rlref.interop.quantecon import to_discrete_dp

    t_build, mdp = _timed(build)
    S, A, gamma = mdp.num_states, mdp.num_actions, mdp.gamma
    P = mdp.transition_matrix()
    nnz = int(P.nnz) if hasattr(P, "nnz") else int(np.count_nonzero(P))
    v = np.ones(S)
    t_mv = min(_timed(lambda: P @ v)[0] for _ in range(15))
    big = S >= 500_000
    t_ref, ref = _timed(lambda: rs.optimal(mdp, 1e-9, method="mpi", m=50, strict=False))
    v_star, unc = ref.values, ref.value_error_bound
    rows: list[dict[str, Any]] = []

    def record(lib, method, secs, values, iters, eps, certificate=None, note="", fn=None):
        err = float(np.abs(np.asarray(values, dtype=float) - v_star).max())
        nnz_done = _matvec_nnz(fn) if (fn is not None and hasattr(P, "nnz") and not big) else None
        needed = None if not nnz_done else nnz_done / nnz
        floor = None if needed is None else needed * t_mv
        rows.append({"library": lib, "method": method, "seconds": secs, "matvecs": secs / t_mv, "iterations": iters,
                     "certificate": certificate, "true_error": err, "off": bool(err > eps + unc), "note": note,
                     "matvecs_needed": needed, "matvec_floor_s": floor, "floor_ratio": None if not floor else secs / floor})
        fl = "" if floor is None else f" floor {floor:.3f}s (x{secs / floor:.1f}, {needed:.1f} P v)"
        print(f"  {lib:12s} {method:5s} {secs:8.3f}s  it={iters!s:>6}  err={err:.2e}  cert={certificate}{fl}  "
              f"{'OFF' if err > eps + unc else ''} {note}", flush=True)

    print(f"{label}: S={S} A={A} nnz={nnz} build {t_build:.1f}s matvec {t_mv * 1e3:.2f} ms; V* uncertainty {unc:.1e}",
          flush=True)
    peak = None
    # First pass: every contestant once (outputs kept); then REPEATS - 1 round-robin passes over the
    # fast ones (< 2 s), so that a load spike on the shared machine hits all contestants alike.
    entries = []  # [lib, method, fn, secs, res]
    for method in plan.get("rlref", ()):
        fn = partial(rs.optimal, mdp, EPS, method=method, strict=False, max_iter=3000)
        if big:
            tracemalloc.start()
        secs, res = _timed(fn)
        if big:
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        entries.append(["rlref", method, fn, secs, res])
    qe_methods = plan.get("quantecon", ())
    if qe_methods:
        ddp = to_discrete_dp(mdp)
        names = {"vi": "value_iteration", "mpi": "modified_policy_iteration", "pi": "policy_iteration"}

        def qe_run(m, kw):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return ddp.solve(names[m], **kw)

        for method in qe_methods:
            kw = {} if method == "pi" else {"epsilon": EPS}
            fn = partial(qe_run, method, kw)
            secs, res = _timed(fn)
            entries.append(["quantecon", method, fn, secs, res])
            if method == "mpi" and res.num_iter >= 250:
                fn = partial(qe_run, "mpi", {"epsilon": EPS, "max_iter": 100_000})
                secs, res = _timed(fn)
                entries.append(["quantecon", "mpi*", fn, secs, res])
    runs: dict[tuple[str, str], list[float]] = {(e[0], e[1]): [e[3]] for e in entries}
    for _ in range(REPEATS - 1):
        for e in entries:
            if e[3] < 2.0 or big_repeats:
                t = _timed(e[2])[0]
                runs[(e[0], e[1])].append(t)
                e[3] = min(e[3], t)
    for lib, method, fn, secs, res in entries:
        if lib == "rlref":
            record("rlref", method, secs, res.values, res.iterations, EPS, float(res.suboptimality_bound),
                   f"ran {res.method}" + (f"; {res.reason}" if method == "auto" else ""), fn=fn)
        else:
            note = "max_iter=100000" if method == "mpi*" else ("hit max_iter=250" if method != "pi" and res.num_iter >= 250 else "")
            record("quantecon", method, secs, res.v, int(res.num_iter), EPS, None, note, fn=fn)
    if plan.get("pymdptoolbox"):
        from mdptoolbox.mdp import ValueIteration

        from rlref.interop.mdptoolbox import to_mdptoolbox

        transitions, reward, discount = to_mdptoolbox(mdp)
        vi = ValueIteration(list(transitions), reward, discount, epsilon=EPS)
        vi.verbose = False
        secs, _ = _timed(vi.run)
        record("pymdptoolbox", "vi", secs, vi.V, int(vi.iter), EPS, None, "span stopping, values not certified")
    by = {(r["library"], r["method"]): r for r in rows}
    qe = by.get(("quantecon", "mpi*"), by.get(("quantecon", "mpi")))
    auto = by.get(("rlref", "auto"))
    ratio = None if (qe is None or auto is None) else auto["seconds"] / qe["seconds"]
    paired = None
    if ratio is not None:
        # the same pass's auto and qe MPI runs lie seconds apart, so their ratio sees one load level
        a, b = runs[("rlref", "auto")], runs[("quantecon", qe["method"])]
        n = min(len(a), len(b))
        paired = [x / y for x, y in zip(a[:n], b[:n], strict=True)]
        print(f"  auto / quantecon {qe['method']}: {ratio:.2f} (ratio of minima); per-pass ratios "
              f"{' '.join(f'{x:.2f}' for x in paired)}, median {float(np.median(paired)):.2f}", flush=True)
    return {"instance": label, "auto_over_qe_mpi": ratio, "auto_over_qe_mpi_per_pass": paired,
            "auto_over_qe_mpi_median": None if not paired else float(np.median(paired)),
            "S": S, "A": A, "gamma": gamma, "nnz": nnz, "build_s": t_build, "matvec_s": t_mv,
            "vstar_s": t_ref, "vstar_uncertainty": unc, "rlref_traced_peak_mib": peak, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="S = 1e4 instances only")
    ap.add_argument("--pymdptoolbox", action="store_true", help="also run pymdptoolbox VI (Garnet S = 1e4, γ = 0.9; slow constructor)")
    ap.add_argument("--out", default=str(HERE / "results" / "solvers.json"))
    ap.add_argument("--only", default=None, help="run only the instances whose label contains this string")
    ap.add_argument("--repeats", type=int, default=3, help="runs per contestant when one run takes < 2 s (min kept)")
    ap.add_argument("--repeat-slow", action="store_true",
                    help="repeat the contestants that take >= 2 s too (e.g. --only 'S=1e6' --repeat-slow --repeats 3)")
    args = ap.parse_args(argv)
    global REPEATS
    REPEATS = max(1, args.repeats)
    import quantecon

    plans = [p for p in instances(args.quick) if args.only is None or args.only in p[0]]
    if not args.pymdptoolbox:
        plans = [(label, build, {**plan, "pymdptoolbox": False}) for label, build, plan in plans]
    load0 = list(os.getloadavg())
    results = [run_instance(label, build, plan, args.repeat_slow) for label, build, plan in plans]
    meta = {"python": sys.version.split()[0], "platform": platform.platform(), "numpy": np.__version__,
            "load_average_start": load0, "load_average_end": list(os.getloadavg()),
            "quantecon": quantecon.__version__, "epsilon": EPS, "peak_rss_mib": _rss_mib()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print("\n| instance | contestant | time (s) | iters | true error | certificate | off by > ε | P v needed | time / floor |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for row in r["rows"]:
            cert = "—" if row["certificate"] is None else f"{row['certificate']:.1e}"
            need = "—" if row["matvecs_needed"] is None else f"{row['matvecs_needed']:.1f}"
            fr = "—" if row["floor_ratio"] is None else f"{row['floor_ratio']:.1f}"
            print(f"| {r['instance']} | {row['library']} {row['method']} | {row['seconds']:.3f} | "
                  f"{row['iterations']} | {row['true_error']:.1e} | {cert} | {'**yes**' if row['off'] else 'no'} | {need} | {fr} |")
    print("\n| instance | auto / quantecon MPI (minima) | per-pass median | per-pass max |\n|---|---|---|---|")
    for r in results:
        if r["auto_over_qe_mpi"] is not None:
            pp = r["auto_over_qe_mpi_per_pass"]
            print(f"| {r['instance']} | {r['auto_over_qe_mpi']:.2f} | {r['auto_over_qe_mpi_median']:.2f} | {max(pp):.2f} |")
    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"\npeak RSS {meta['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
