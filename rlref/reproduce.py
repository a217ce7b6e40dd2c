"""The reproduction registry, the claims JSON and the ``rlref reproduce`` command line.

A reproduction is a function ``run(ctx: Context) -> Report`` decorated with :func:`register`
and declared in the entry-point group ``rlref.reproductions`` of its distribution (rlref's own
are in ``pyproject.toml``; a third-party package declares its own the same way)::

    [project.entry-points."rlref.reproductions"]
    my-figure = "mypkg.repro:run"

``rlref reproduce NAME`` writes ``NAME.png`` and ``NAME.json`` (the paper and a list of claims,
each ``{"claim", "expected", "measured", "tolerance", "holds"}``) into the output folder. The
names come from the entry points without importing anything (``--list`` is instant); a
reproduction's module is imported only when it is described or run.

Long runs are split into units of work with :meth:`Context.unit`: each finished unit is written
atomically to ``OUT/.cache/NAME/<scale>-seed<seed>/<key>.json`` together with the fingerprint of
what produced it (a SHA-256 of the reproduction's module source, of the library's source, the
rlref version, the seed and the scale). A rerun reuses a unit only when its fingerprint matches,
so an interrupted reproduction resumes where it stopped and a changed library recomputes
(``--fresh`` ignores the cache). Cache hits are recorded in ``NAME.json`` under ``"cache"``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import importlib
import importlib.util
import io
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "ENTRY_POINT_GROUP",
    "Claim",
    "Report",
    "Context",
    "Reproduction",
    "Outcome",
    "register",
    "names",
    "get",
    "registry",
    "run",
    "main",
    "atomic_write",
    "check_output_folder",
    "parse_seeds",
]

T = TypeVar("T")

ENTRY_POINT_GROUP = "rlref.reproductions"


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


@dataclass(frozen=True)
class Report:
    """What a reproduction returns: the paper, its claims, a matplotlib figure, extra data."""

    paper: str
    claims: list[Claim]
    figure: Any = None
    data: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    @property
    def all_hold(self) -> bool:
        """Every claim holds, and there is at least one (a reproduction without claims checks nothing)."""
        return bool(self.claims) and all(c.holds for c in self.claims)


def _is_empty(x: Any) -> bool:
    """True for an empty list/tuple/array/dict (a measurement of nothing)."""
    if isinstance(x, (list, tuple, dict, set)):
        return len(x) == 0
    if isinstance(x, np.ndarray):
        return x.size == 0
    return False


# ----------------------------------------------------------------------------- files
def _file_mode() -> int:
    """0o666 filtered by the process umask (what ``open(path, "w")`` would create)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then ``os.replace``).

    The file gets the permissions the umask allows (``mkstemp``'s private 0600 is undone).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_output_folder(out: str | os.PathLike[str]) -> Path:
    """Create ``out`` if needed and check that files can be written there, before any computation.

    Raises ValueError naming ``out`` when it is a file, lies below a file, or is not writable.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} is a file, not a folder; give a folder for the figures and JSON")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".rlref-write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"out={str(out)!r} is not a writable folder: {exc.strerror or exc}") from exc
    return out


# ----------------------------------------------------------------------------- code fingerprint
@functools.lru_cache(maxsize=1)
def _library_sha256() -> str:
    """SHA-256 over the library's Python sources (path and bytes), reproductions excluded."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith("experiments/"):
            continue
        h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _module_sha256(module: str) -> str:
    """SHA-256 of a module's source file ("" when it has none, e.g. defined interactively)."""
    mod = sys.modules.get(module)
    origin = getattr(mod, "__file__", None)
    if origin is None:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None)
    if not origin or not os.path.exists(origin):
        return ""
    return hashlib.sha256(Path(origin).read_bytes()).hexdigest()


def _version() -> str:
    from rlref import __version__

    return __version__


# ----------------------------------------------------------------------------- context
class Context:
    """Everything a reproduction needs: scale, seed, RNG, output folder, resumable units, claims.

    ``module`` names the module that defines the reproduction; its source hash is part of each
    cached unit's fingerprint (with the library's source hash, the version, seed and scale).
    """

    def __init__(self, name: str, quick: bool = True, seed: int = 0, out: str | os.PathLike[str] = "paper_figures",
                 fresh: bool = False, verbose: bool = True, module: str | None = None) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got seed={seed!r}")
        self.name = name
        self.quick = quick
        self.seed = int(seed)
        self.out = Path(out)
        self.fresh = fresh
        self.verbose = verbose
        self.module = module
        self.rng = np.random.default_rng(self.seed)
        self.claims: list[Claim] = []
        self.cache_dir = self.out / ".cache" / name / f"{'quick' if quick else 'full'}-seed{self.seed}"
        self.cache_events: dict[str, list[str]] = {"hit": [], "computed": [], "stale": [], "corrupt": []}
        self._fingerprint: dict[str, Any] | None = None

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What produced this run's units: code hashes, rlref version, seed and scale."""
        if self._fingerprint is None:
            self._fingerprint = {
                "rlref_version": _version(),
                "library_sha256": _library_sha256(),
                "module": self.module,
                "module_sha256": _module_sha256(self.module) if self.module else "",
                "seed": self.seed,
                "scale": "quick" if self.quick else "full",
            }
        return self._fingerprint

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
        resumable: a run killed half-way recomputes only the units it had not finished. A stored
        unit is reused only if its fingerprint (code hashes, version, seed, scale) matches this
        run's; a unit that is empty or not valid JSON is reported (naming the file) and recomputed.
        """
        path = self.cache_dir / f"{key}.json"
        if path.exists() and not self.fresh:
            try:
                stored = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                self.cache_events["corrupt"].append(key)
                sys.stderr.write(f"  {self.name}: cache unit {path} is corrupt ({type(exc).__name__}: {exc}); recomputing it\n")
            else:
                if isinstance(stored, dict) and stored.get("fingerprint") == self.fingerprint and "value" in stored:
                    self.cache_events["hit"].append(key)
                    return stored["value"]
                self.cache_events["stale"].append(key)
        else:
            self.cache_events["computed"].append(key)
        value = _jsonable(compute())
        atomic_write(path, json.dumps({"fingerprint": self.fingerprint, "value": value}))
        return json.loads(json.dumps(value))

    def cache_summary(self) -> dict[str, Any]:
        """The JSON record of cache use: counts, keys reused, keys recomputed as stale/corrupt."""
        ev = self.cache_events
        return {
            "hits": len(ev["hit"]),
            "misses": len(ev["computed"]) + len(ev["stale"]) + len(ev["corrupt"]),
            "hit_keys": list(ev["hit"]),
            "stale_keys": list(ev["stale"]),
            "corrupt_keys": list(ev["corrupt"]),
            "fresh": bool(self.fresh),
            "fingerprint": self.fingerprint,
        }

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
        it must then be computed from ``measured``, never typed in. An empty ``measured`` is a
        ValueError: a check over nothing would pass vacuously.
        """
        if _is_empty(measured):
            raise ValueError(f"claim {claim!r}: measured is empty ({measured!r}); a claim over nothing cannot hold")
        if holds is None:
            if tolerance is None:
                raise ValueError(f"claim {claim!r}: give a tolerance or an explicit computed holds")
            m = np.asarray(measured, dtype=float)
            e = np.asarray(expected, dtype=float)
            holds = bool(np.all(np.abs(m - e) <= tolerance))
        c = Claim(claim=claim, expected=expected, measured=measured, tolerance=tolerance, holds=bool(holds))
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

    @property
    def module(self) -> str:
        return self.func.__module__


_REGISTRY: dict[str, Reproduction] = {}


def register(name: str, *, paper: str, description: str) -> Callable[[Callable[[Context], Report]], Callable[[Context], Report]]:
    """Decorator registering ``func(ctx) -> Report`` as the reproduction ``name``.

    Declare the function in the ``rlref.reproductions`` entry-point group as well, so that
    ``rlref reproduce`` finds it without importing every module.
    """

    def deco(func: Callable[[Context], Report]) -> Callable[[Context], Report]:
        if name in _REGISTRY and _REGISTRY[name].func.__module__ != func.__module__:
            raise ValueError(f"reproduction {name!r} is registered twice ({_REGISTRY[name].func.__module__}, {func.__module__})")
        _REGISTRY[name] = Reproduction(name=name, paper=paper, description=description, func=func)
        func.__rlref_reproduction__ = name  # type: ignore[attr-defined]
        return func

    return deco


def _entry_points() -> dict[str, metadata.EntryPoint]:
    """The declared reproductions, by name, read from the installed distributions' metadata."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found and found[ep.name].value != ep.value:
            raise ValueError(f"reproduction {ep.name!r} is declared twice in entry-point group {ENTRY_POINT_GROUP!r}: "
                             f"{found[ep.name].value} and {ep.value}")
        found[ep.name] = ep
    return found


def names() -> list[str]:
    """Every reproduction name (entry points and in-process registrations), importing nothing."""
    return sorted(set(_entry_points()) | set(_REGISTRY))


def get(name: str) -> Reproduction:
    """The reproduction ``name``, importing only its module. Unknown names raise ValueError listing the known ones."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    eps = _entry_points()
    if name not in eps:
        raise ValueError(f"unknown reproduction {name!r}; known: {', '.join(names())} "
                         "(a newly declared entry point needs `pip install -e . --no-deps`)")
    ep = eps[name]
    func = ep.load()
    registered = getattr(func, "__rlref_reproduction__", None)
    if registered != name or name not in _REGISTRY:
        raise ValueError(f"entry point {name!r} = {ep.value!r} does not point to a function decorated with "
                         f"rlref.reproduce.register({name!r}, ...) (found {registered!r})")
    return _REGISTRY[name]


def registry() -> dict[str, Reproduction]:
    """All reproductions, by name (imports every reproduction's module)."""
    return {n: get(n) for n in names()}


# ----------------------------------------------------------------------------- running
def _payload(name: str, rep: Reproduction, ctx: Context, seconds: float, report: Report | None, error: str | None) -> dict[str, Any]:
    claims = report.claims if report is not None else ctx.claims
    return {
        "name": name,
        "paper": report.paper if report is not None else rep.paper,
        "description": rep.description,
        "scale": "quick" if ctx.quick else "full",
        "seed": ctx.seed,
        "seconds": round(seconds, 2),
        "status": "ok" if error is None else "error",
        "error": error,
        "all_hold": bool(report is not None and error is None and report.all_hold),
        "claims": [c.to_json() for c in claims],
        "data": _jsonable(report.data) if report is not None else {},
        "notes": report.notes if report is not None else "",
        "cache": ctx.cache_summary(),
    }


def run(name: str, *, quick: bool = True, seed: int = 0, out: str | os.PathLike[str] = "paper_figures",
        fresh: bool = False, verbose: bool = True) -> Report:
    """Run one reproduction and write ``OUT/NAME.png`` and ``OUT/NAME.json`` atomically.

    ``out`` is checked to be a writable folder before anything is computed. If the reproduction
    raises (or is interrupted), ``NAME.json`` is replaced by a record with ``"status": "error"``,
    ``"all_hold": false``, the error and the claims made before it, the stale ``NAME.png`` is
    removed, and the exception propagates.
    """
    rep = get(name)
    out = check_output_folder(out)
    ctx = Context(name, quick=quick, seed=seed, out=out, fresh=fresh, verbose=verbose, module=rep.module)
    t0 = time.perf_counter()
    try:
        report = rep.func(ctx)
        if not isinstance(report, Report):
            raise TypeError(f"reproduction {name!r} returned {type(report).__name__}, not a rlref.reproduce.Report")
    except BaseException as exc:
        kind = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            (out / f"{name}.png").unlink(missing_ok=True)
            atomic_write(out / f"{name}.json", json.dumps(_payload(name, rep, ctx, time.perf_counter() - t0, None, kind), indent=2) + "\n")
        raise
    seconds = time.perf_counter() - t0
    if report.figure is not None:
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        report.figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(report.figure)
        atomic_write(out / f"{name}.png", buf.getvalue())
    atomic_write(out / f"{name}.json", json.dumps(_payload(name, rep, ctx, seconds, report, None), indent=2) + "\n")
    return report


@dataclass(frozen=True)
class Outcome:
    """What the command line keeps of one (reproduction, seed) run: claims as plain JSON values."""

    name: str
    seed: int
    claims: list[Claim]
    seconds: float
    error: str | None = None
    log: str = ""


def _outcome(name: str, seed: int, quick: bool, out: str, fresh: bool, verbose: bool) -> Outcome:
    t0 = time.perf_counter()
    try:
        report = run(name, quick=quick, seed=seed, out=out, fresh=fresh, verbose=verbose)
    except Exception as exc:  # reported, the other reproductions still run
        return Outcome(name=name, seed=seed, claims=[], seconds=time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}")
    claims = [Claim(**c.to_json()) for c in report.claims]
    return Outcome(name=name, seed=seed, claims=claims, seconds=time.perf_counter() - t0)


def _worker(name: str, module: str, seed: int, quick: bool, out: str, fresh: bool) -> Outcome:
    """Run one reproduction in a worker process; its output is captured, not interleaved."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            if module and name not in _REGISTRY:
                with contextlib.suppress(ImportError):
                    importlib.import_module(module)
            res = _outcome(name, seed, quick, out, fresh, verbose=False)
    except KeyboardInterrupt:
        return Outcome(name=name, seed=seed, claims=[], seconds=0.0, error="interrupted", log=buf.getvalue())
    return Outcome(name=res.name, seed=res.seed, claims=res.claims, seconds=res.seconds, error=res.error, log=buf.getvalue())


def parse_seeds(text: str) -> list[int]:
    """Parse a seed list such as ``"0-9"``, ``"0,2,5"`` or ``"0-4,7"`` into sorted unique seeds >= 0."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                seeds.update(range(lo, hi + 1))
            else:
                seeds.add(int(part))
        except ValueError:
            raise ValueError(f"seeds={text!r}: {part!r} is not a seed, a range lo-hi or a comma-separated list of them") from None
    if not seeds or min(seeds) < 0:
        raise ValueError(f"seeds={text!r}: seeds must be non-negative integers")
    return sorted(seeds)


def _seed_arg(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed {text!r} is not an integer") from None
    if seed < 0:
        raise argparse.ArgumentTypeError(f"--seed must be >= 0; got {seed}")
    return seed


def _seeds_arg(text: str) -> list[int]:
    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _print_table(rows: list[tuple[str, Claim]]) -> None:
    width = min(max((len(c.claim) for _, c in rows), default=10), 90)
    for name, c in rows:
        text = c.claim if len(c.claim) <= width else c.claim[: width - 1] + "…"
        print(f"  {'PASS' if c.holds else 'FAIL'}  {name:<28} {text:<{width}}  measured={_short(c.measured)}")


def _print_seed_table(outcomes: list[Outcome], seeds: list[int]) -> None:
    """One row per (reproduction, claim index): at how many seeds it held, and which failed."""
    by_name: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_name.setdefault(o.name, []).append(o)
    for name, outs in by_name.items():
        n_claims = max((len(o.claims) for o in outs), default=0)
        for i in range(n_claims):
            at = [(o.seed, o.claims[i]) for o in outs if i < len(o.claims)]
            ok = sum(c.holds for _, c in at)
            bad = [s for s, c in at if not c.holds]
            text = at[0][1].claim
            text = text if len(text) <= 80 else text[:79] + "…"
            print(f"  {ok:>2}/{len(seeds):<2} {name:<28} {text:<80}" + (f"  fails at seeds {bad}" if bad else ""))


def _short(x: Any) -> str:
    s = json.dumps(_jsonable(x))
    return s if len(s) <= 40 else s[:39] + "…"


def _describe(name: str) -> str:
    try:
        rep = get(name)
    except Exception as exc:  # a module that does not import still gets listed, with the reason
        return f"{name:<28} (cannot be loaded: {type(exc).__name__}: {exc})"
    return f"{name:<28} {rep.description}  [{rep.paper}]"


def _out_for(base: str, seed: int, multi: bool) -> str:
    return str(Path(base) / f"seed-{seed}") if multi else base


def _report_outcome(o: Outcome, out: str, quick: bool) -> None:
    print(f"== {o.name} ({'quick' if quick else 'full'}, seed {o.seed})", flush=True)
    if o.log:
        sys.stderr.write(o.log if o.log.endswith("\n") else o.log + "\n")
    if o.error is not None:
        print(f"  ERROR in {o.name} (seed {o.seed}): {o.error}", file=sys.stderr, flush=True)
        return
    n_hold = sum(c.holds for c in o.claims)
    print(f"   {len(o.claims)} claims, {n_hold} hold, {o.seconds:.1f}s -> {out}/{o.name}.json", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlref`` (sub-command ``reproduce``)."""
    parser = argparse.ArgumentParser(prog="rlref", description="rlref: regularized RL, exactly.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("reproduce", help="re-derive a paper's figure/table and check its claims")
    p.add_argument("name", nargs="*", help="reproduction name(s); all when omitted")
    p.add_argument("--list", action="store_true", help="list the reproduction names and exit (instant)")
    p.add_argument("--long", action="store_true", help="with --list: also print each description and paper (imports them)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--quick", dest="quick", action="store_true", default=True, help="CPU-minutes scale (default)")
    scale.add_argument("--full", dest="quick", action="store_false", help="publication scale")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=_seed_arg, default=0, help="the seed (default 0)")
    seeds.add_argument("--seeds", type=_seeds_arg, default=None, metavar="SPEC",
                       help="several seeds, e.g. 0-9 or 0,3,5; outputs go to OUT/seed-K/ and the table counts seeds")
    p.add_argument("--out", default="paper_figures", help="output folder (default: paper_figures)")
    p.add_argument("--fresh", action="store_true", help="ignore cached units of work from earlier runs")
    p.add_argument("-j", "--jobs", type=int, default=1, help="run reproductions in N processes (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    t = sub.add_parser("train", help="fine-tune a causal LM with rlref.llm objectives (rlref.llm.train; the hf extra)")
    t.add_argument("train_args", nargs=argparse.REMAINDER, help="CONFIG [--out DIR] [--max-steps N] [key=value ...] | --list-configs")
    raw = sys.argv[1:] if argv is None else list(argv)
    if raw[:1] == ["train"]:  # its options are parsed by rlref.llm.train.cli (imported lazily: torch, transformers)
        from rlref.llm.train.cli import main as train_main

        return train_main(raw[1:])
    args = parser.parse_args(argv)

    known = names()
    if args.list:
        for name in known:
            print(_describe(name) if args.long else name)
        return 0
    todo = list(dict.fromkeys(args.name)) or known  # a name given twice runs once (one output file)
    unknown = [n for n in todo if n not in known]
    if unknown:
        p.error(f"unknown reproduction(s): {', '.join(unknown)}\nknown reproductions:\n  " + "\n  ".join(known))
    if args.jobs < 1:
        p.error(f"-j/--jobs must be >= 1; got {args.jobs}")
    seed_list = args.seeds if args.seeds is not None else [args.seed]
    multi = len(seed_list) > 1
    try:
        for seed in seed_list:
            check_output_folder(_out_for(args.out, seed, multi))
    except ValueError as exc:
        print(f"rlref reproduce: error: {exc}", file=sys.stderr)
        return 2
    jobs = [(n, s) for s in seed_list for n in todo]
    outcomes: list[Outcome] = []
    try:
        if args.jobs == 1 or len(jobs) == 1:
            for name, seed in jobs:
                out = _out_for(args.out, seed, multi)
                print(f"== {name} ({'quick' if args.quick else 'full'}, seed {seed})", flush=True)
                o = _outcome(name, seed, args.quick, out, args.fresh, verbose=not args.quiet)
                if o.error is not None:
                    print(f"  ERROR in {name} (seed {seed}): {o.error}", file=sys.stderr, flush=True)
                else:
                    print(f"   {len(o.claims)} claims, {sum(c.holds for c in o.claims)} hold, {o.seconds:.1f}s -> {out}/{name}.json",
                          flush=True)
                outcomes.append(o)
        else:
            outcomes = _run_parallel(jobs, args)
    except KeyboardInterrupt:
        where = f"{args.out}/seed-K/.cache" if multi else f"{args.out}/.cache"
        print(f"\ninterrupted. Finished units of work are cached under {where}; rerun the same command to resume "
              "(--fresh starts over).", file=sys.stderr, flush=True)
        return 130
    return _summarize(outcomes, seed_list, multi)


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C is handled by the parent, which stops the workers itself."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _mark_interrupted(name: str, seed: int, quick: bool, out: str) -> None:
    """Replace ``OUT/NAME.json`` of a run stopped half-way by an "interrupted" record (no stale all_hold)."""
    payload = {"name": name, "scale": "quick" if quick else "full", "seed": seed, "status": "error", "error": "interrupted",
               "all_hold": False, "claims": []}
    with contextlib.suppress(OSError):
        (Path(out) / f"{name}.png").unlink(missing_ok=True)
        atomic_write(Path(out) / f"{name}.json", json.dumps(payload, indent=2) + "\n")


def _run_parallel(jobs: list[tuple[str, int]], args: argparse.Namespace) -> list[Outcome]:
    """Run ``jobs`` in ``args.jobs`` spawned processes; each run's output is printed as one block when it ends.

    On Ctrl-C the parent (workers ignore SIGINT) terminates the workers, marks the runs that were in
    progress as interrupted, and re-raises KeyboardInterrupt for :func:`main` to report.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    modules = {n: (_REGISTRY[n].module if n in _REGISTRY else "") for n, _ in jobs}
    multi = len({s for _, s in jobs}) > 1
    done: dict[tuple[str, int], Outcome] = {}
    pool = ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint)
    futures = {pool.submit(_worker, n, modules[n], s, args.quick, _out_for(args.out, s, multi), args.fresh): (n, s) for n, s in jobs}
    try:
        for fut in as_completed(futures):
            n, s = futures[fut]
            try:
                o = fut.result()
            except Exception as exc:  # a worker that died (e.g. killed for memory)
                o = Outcome(name=n, seed=s, claims=[], seconds=0.0, error=f"worker failed: {type(exc).__name__}: {exc}")
            _report_outcome(o, _out_for(args.out, s, multi), args.quick)
            done[(n, s)] = o
    except KeyboardInterrupt:
        running = [futures[f] for f in futures if f.running() and futures[f] not in done]
        for proc in list(getattr(pool, "_processes", {}).values()):  # stdlib attribute: the worker processes
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        for n, s in running:
            _mark_interrupted(n, s, args.quick, _out_for(args.out, s, multi))
        raise
    pool.shutdown()
    return [done[j] for j in jobs]  # in submission order, so the table does not depend on timing


def _summarize(outcomes: list[Outcome], seeds: list[int], multi: bool) -> int:
    rows = [(o.name, c) for o in outcomes for c in o.claims]
    errored = sorted({f"{o.name}" + (f" (seed {o.seed})" if multi else "") for o in outcomes if o.error is not None})
    failing = sorted({o.name + (f" (seed {o.seed})" if multi else "") for o in outcomes
                      if o.error is None and not (o.claims and all(c.holds for c in o.claims))})
    print()
    if multi:
        _print_seed_table([o for o in outcomes if o.error is None], seeds)
    else:
        _print_table(rows)
    n_ok = sum(c.holds for _, c in rows)
    line = f"\n{n_ok}/{len(rows)} claims hold"
    if multi:
        line += f" over seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} seeds)"
    if errored:
        line += f"; {len(errored)} run(s) RAISED and made no claims: {', '.join(errored)}"
    if failing:
        line += f"; failing: {', '.join(failing)}"
    print(line)
    return 1 if (errored or failing) else 0


def cli() -> None:  # console-script entry point
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    cli()
