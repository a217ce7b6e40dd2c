"""The reproduction registry, the claims JSON and the ``rlref reproduce`` command line.

A reproduction is a function ``run(ctx: Context) -> Report`` registered under a name with
:func:`register`. It re-derives a paper's figure or table on the CPU; ``rlref reproduce NAME``
writes ``NAME.png`` and ``NAME.json`` (the paper and a list of claims, each
``{"claim", "expected", "measured", "tolerance", "holds"}``) into the output folder.

Long runs are split into units of work with :meth:`Context.unit`: each finished unit is written
atomically to ``OUT/.cache/NAME/<scale>-seed<seed>/<key>.json`` and reused on the next run, so an
interrupted reproduction resumes where it stopped (``--fresh`` ignores the cache).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import pkgutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = ["Claim", "Report", "Context", "Reproduction", "register", "registry", "run", "main", "atomic_write"]

T = TypeVar("T")


# ----------------------------------------------------------------------------- claims
def _jsonable(x: Any) -> Any:
    """Convert numpy scalars/arrays (and nested containers) to plain JSON values.

    Non-finite floats become the strings "inf", "-inf", "nan" so the JSON stays standard.
    """
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f
    return x


@dataclass(frozen=True)
class Claim:
    """One checked statement of a paper: ``holds`` is computed, never typed in."""

    claim: str
    expected: Any
    measured: Any
    tolerance: Any
    holds: bool

    def to_json(self) -> dict[str, Any]:
        return _jsonable(
            {"claim": self.claim, "expected": self.expected, "measured": self.measured, "tolerance": self.tolerance, "holds": bool(self.holds)}
        )


@dataclass
class Report:
    """What a reproduction returns: the paper, its claims, a matplotlib figure, extra data."""

    paper: str
    claims: list[Claim]
    figure: Any = None
    data: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    @property
    def all_hold(self) -> bool:
        return all(c.holds for c in self.claims)


# ----------------------------------------------------------------------------- files
def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------- context
class Context:
    """Everything a reproduction needs: scale, seed, RNG, output folder, resumable units, claims."""

    def __init__(self, name: str, quick: bool = True, seed: int = 0, out: str | os.PathLike[str] = "paper_figures",
                 fresh: bool = False, verbose: bool = True) -> None:
        self.name = name
        self.quick = quick
        self.seed = int(seed)
        self.out = Path(out)
        self.fresh = fresh
        self.verbose = verbose
        self.rng = np.random.default_rng(self.seed)
        self.claims: list[Claim] = []
        self.cache_dir = self.out / ".cache" / name / f"{'quick' if quick else 'full'}-seed{self.seed}"

    def scale(self, quick: T, full: T) -> T:
        """Pick the quick-scale or full-scale value of a parameter."""
        return quick if self.quick else full

    def child_rng(self, *key: int) -> np.random.Generator:
        """A generator determined by the seed and ``key`` (independent of call order)."""
        return np.random.default_rng([self.seed, *[int(k) for k in key]])

    # -- resumable units of work --------------------------------------------------------
    def unit(self, key: str, compute: Callable[[], Any]) -> Any:
        """Return the cached JSON result of unit ``key`` or compute, store atomically and return it.

        ``compute`` must return JSON-serialisable data (numpy is converted). Units make long runs
        resumable: a run killed half-way recomputes only the units it had not finished.
        """
        path = self.cache_dir / f"{key}.json"
        if path.exists() and not self.fresh:
            return json.loads(path.read_text())
        value = _jsonable(compute())
        atomic_write(path, json.dumps(value))
        return json.loads(json.dumps(value))

    def progress(self, items: Iterable[T], desc: str = "", total: int | None = None) -> Iterator[T]:
        """Yield ``items`` while printing a one-line progress bar to stderr."""
        items = list(items) if total is None and not hasattr(items, "__len__") else items
        n = total if total is not None else len(items)  # type: ignore[arg-type]
        start = time.perf_counter()
        for i, item in enumerate(items, 1):
            yield item
            if self.verbose:
                width = 24
                done = int(width * i / max(n, 1))
                elapsed = time.perf_counter() - start
                eta = elapsed / i * (n - i)
                sys.stderr.write(f"\r  {self.name} {desc} [{'#' * done}{'.' * (width - done)}] {i}/{n} {elapsed:5.1f}s eta {eta:5.1f}s")
                sys.stderr.flush()
        if self.verbose and n:
            sys.stderr.write("\n")

    # -- claims -------------------------------------------------------------------------
    def claim(self, claim: str, *, expected: Any, measured: Any, tolerance: Any = None, holds: bool | None = None) -> Claim:
        """Record a claim. Without ``holds``: numeric |measured − expected| <= tolerance.

        ``holds`` may be given for claims that are not a closeness check (e.g. an inequality);
        it must then be computed from ``measured``, never typed in.
        """
        if holds is None:
            if tolerance is None:
                raise ValueError(f"claim {claim!r}: give a tolerance or an explicit computed holds")
            m = np.asarray(measured, dtype=float)
            e = np.asarray(expected, dtype=float)
            holds = bool(np.all(np.abs(m - e) <= tolerance))
        c = Claim(claim, expected, measured, tolerance, bool(holds))
        self.claims.append(c)
        return c

    def report(self, paper: str, figure: Any = None, data: dict[str, Any] | None = None, notes: str = "") -> Report:
        """Bundle the recorded claims with the paper, figure and data."""
        return Report(paper=paper, claims=list(self.claims), figure=figure, data=data or {}, notes=notes)


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Reproduction:
    name: str
    paper: str
    description: str
    func: Callable[[Context], Report]


_REGISTRY: dict[str, Reproduction] = {}
_DISCOVERED = False


def register(name: str, *, paper: str, description: str) -> Callable[[Callable[[Context], Report]], Callable[[Context], Report]]:
    """Decorator registering ``func(ctx) -> Report`` as the reproduction ``name``."""

    def deco(func: Callable[[Context], Report]) -> Callable[[Context], Report]:
        if name in _REGISTRY and _REGISTRY[name].func.__module__ != func.__module__:
            raise ValueError(f"reproduction {name!r} is registered twice ({_REGISTRY[name].func.__module__}, {func.__module__})")
        _REGISTRY[name] = Reproduction(name, paper, description, func)
        return func

    return deco


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    from rlref import experiments

    for mod in pkgutil.iter_modules(experiments.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"rlref.experiments.{mod.name}")
    _DISCOVERED = True


def registry() -> dict[str, Reproduction]:
    """All registered reproductions, by name (imports the ``rlref.experiments`` package)."""
    _discover()
    return dict(sorted(_REGISTRY.items()))


def run(name: str, *, quick: bool = True, seed: int = 0, out: str | os.PathLike[str] = "paper_figures",
        fresh: bool = False, verbose: bool = True) -> Report:
    """Run one reproduction and write ``OUT/NAME.png`` and ``OUT/NAME.json`` atomically."""
    reg = registry()
    if name not in reg:
        raise ValueError(f"unknown reproduction {name!r}; known: {', '.join(reg)}")
    rep = reg[name]
    ctx = Context(name, quick=quick, seed=seed, out=out, fresh=fresh, verbose=verbose)
    t0 = time.perf_counter()
    report = rep.func(ctx)
    seconds = time.perf_counter() - t0
    out = Path(out)
    payload = {
        "name": name,
        "paper": report.paper,
        "description": rep.description,
        "scale": "quick" if quick else "full",
        "seed": seed,
        "seconds": round(seconds, 2),
        "all_hold": report.all_hold,
        "claims": [c.to_json() for c in report.claims],
        "data": _jsonable(report.data),
        "notes": report.notes,
    }
    if report.figure is not None:
        import io

        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        report.figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(report.figure)
        atomic_write(out / f"{name}.png", buf.getvalue())
    atomic_write(out / f"{name}.json", json.dumps(payload, indent=2) + "\n")
    return report


def _print_table(rows: list[tuple[str, Claim]]) -> None:
    width = min(max((len(c.claim) for _, c in rows), default=10), 90)
    for name, c in rows:
        text = c.claim if len(c.claim) <= width else c.claim[: width - 1] + "…"
        print(f"  {'PASS' if c.holds else 'FAIL'}  {name:<28} {text:<{width}}  measured={_short(c.measured)}")


def _short(x: Any) -> str:
    s = json.dumps(_jsonable(x))
    return s if len(s) <= 40 else s[:39] + "…"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlref`` (sub-command ``reproduce``)."""
    parser = argparse.ArgumentParser(prog="rlref", description="rlref: regularized RL, exactly.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("reproduce", help="re-derive a paper's figure/table and check its claims")
    p.add_argument("name", nargs="*", help="reproduction name(s); all when omitted")
    p.add_argument("--list", action="store_true", help="list the reproductions and exit")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--quick", dest="quick", action="store_true", default=True, help="CPU-minutes scale (default)")
    scale.add_argument("--full", dest="quick", action="store_false", help="publication scale")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="paper_figures", help="output folder (default: paper_figures)")
    p.add_argument("--fresh", action="store_true", help="ignore cached units of work from earlier runs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    reg = registry()
    if args.list:
        for name, rep in reg.items():
            print(f"{name:<28} {rep.description}  [{rep.paper}]")
        return 0
    names = args.name or list(reg)
    unknown = [n for n in names if n not in reg]
    if unknown:
        parser.error(f"unknown reproduction(s): {', '.join(unknown)}; see `rlref reproduce --list`")
    rows: list[tuple[str, Claim]] = []
    failed: list[str] = []
    for name in names:
        print(f"== {name} ({'quick' if args.quick else 'full'}, seed {args.seed})", flush=True)
        t0 = time.perf_counter()
        try:
            report = run(name, quick=args.quick, seed=args.seed, out=args.out, fresh=args.fresh, verbose=not args.quiet)
        except Exception as exc:  # report and keep going, exit non-zero at the end
            print(f"  ERROR in {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        n_hold = sum(c.holds for c in report.claims)
        print(f"   {len(report.claims)} claims, {n_hold} hold, {time.perf_counter() - t0:.1f}s -> {args.out}/{name}.json")
        rows += [(name, c) for c in report.claims]
        if not report.all_hold:
            failed.append(name)
    print()
    _print_table(rows)
    n_ok = sum(c.holds for _, c in rows)
    print(f"\n{n_ok}/{len(rows)} claims hold" + (f"; failing: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def cli() -> None:  # console-script entry point
    sys.exit(main())
