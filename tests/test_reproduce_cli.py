"""Tests of the packaging and the command line of ``rlref reproduce`` (issue #9 packaging, issue #11
items 12, 13, 14, 22, 24, 26, 27): the entry-point registry, ``--list`` without imports,
``python -m rlref``, ``-j N``, ``--seeds``, the code-keyed cache, crash records, output checks,
file modes and interrupts. Each test names the behaviour it pins down.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from rlref import reproduce
from rlref.reproduce import Context, main, parse_seeds, register

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fixture_module() -> Iterator[object]:
    """Import tests/repro_fixture_module.py (registers three tiny reproductions); unregister after."""
    sys.modules.pop("repro_fixture_module", None)
    import repro_fixture_module as mod

    yield mod
    for name in (mod.OK, mod.FAIL, mod.SEEDFAIL, mod.SLOW):
        reproduce._REGISTRY.pop(name, None)
    sys.modules.pop("repro_fixture_module", None)


@pytest.fixture
def scratch() -> Iterator[dict]:
    """Register reproductions defined inside a test; remove them after."""
    made: dict = {}
    yield made
    for name in made:
        reproduce._REGISTRY.pop(name, None)


def _run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "MPLBACKEND": "Agg", **(env or {})})


# ----------------------------------------------------------------------------- entry points
def test_every_experiment_module_is_declared_in_the_entry_point_group_and_installed() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][reproduce.ENTRY_POINT_GROUP]
    modules_with_register = {p.stem for p in (ROOT / "rlref" / "experiments").glob("*.py") if "@register(" in p.read_text()}
    declared_modules = {v.split(":")[0].rsplit(".", 1)[-1] for v in declared.values()}
    assert modules_with_register <= declared_modules, f"add to pyproject: {sorted(modules_with_register - declared_modules)}"
    installed = {ep.name: ep.value for ep in metadata.entry_points(group=reproduce.ENTRY_POINT_GROUP)}
    missing = {k: v for k, v in declared.items() if installed.get(k) != v}
    assert not missing, f"entry points not installed (run `pip install -e . --no-deps`): {missing}"
    for name in declared:
        assert name in reproduce.names()


def test_third_party_entry_point_loads_its_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An entry point to a module never imported before: ``get`` imports it and finds the decorated function."""
    pkg = tmp_path / "thirdparty_repro_pkg.py"
    pkg.write_text(
        "from rlref.reproduce import register\n"
        "@register('thirdparty-demo', paper='Someone (2030)', description='third-party figure')\n"
        "def run(ctx):\n"
        "    ctx.claim('2 > 1', expected='> 1', measured=2.0, holds=2.0 > 1)\n"
        "    return ctx.report('Someone (2030)')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    real = metadata.entry_points
    fake = metadata.EntryPoint(name="thirdparty-demo", value="thirdparty_repro_pkg:run", group=reproduce.ENTRY_POINT_GROUP)
    monkeypatch.setattr(reproduce.metadata, "entry_points",
                        lambda **kw: [*real(**kw), fake] if kw.get("group") == reproduce.ENTRY_POINT_GROUP else real(**kw))
    try:
        assert "thirdparty-demo" in reproduce.names() and "thirdparty_repro_pkg" not in sys.modules
        assert main(["reproduce", "thirdparty-demo", "--out", str(tmp_path / "out"), "-q"]) == 0
        payload = json.loads((tmp_path / "out" / "thirdparty-demo.json").read_text())
        assert payload["paper"] == "Someone (2030)" and payload["all_hold"] is True
    finally:
        reproduce._REGISTRY.pop("thirdparty-demo", None)
        sys.modules.pop("thirdparty_repro_pkg", None)


def test_an_entry_point_to_an_undecorated_function_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.entry_points
    fake = metadata.EntryPoint(name="not-registered", value="json:dumps", group=reproduce.ENTRY_POINT_GROUP)
    monkeypatch.setattr(reproduce.metadata, "entry_points",
                        lambda **kw: [*real(**kw), fake] if kw.get("group") == reproduce.ENTRY_POINT_GROUP else real(**kw))
    with pytest.raises(ValueError, match=r"entry point 'not-registered' = 'json:dumps' does not point to a function decorated"):
        reproduce.get("not-registered")


def test_list_imports_no_reproduction_module_nor_heavy_dependency() -> None:
    code = ("import sys; from rlref.reproduce import main; main(['reproduce', '--list']); "
            "heavy = ('torch', 'cvxpy', 'matplotlib', 'scipy', 'rlref.mdp'); "
            "print('IMPORTED', sorted(m for m in sys.modules if m.startswith('rlref.experiments.') or m in heavy))")
    res = _run_cli("-c", code)
    assert res.returncode == 0, res.stderr
    assert "sutton-barto-gridworld" in res.stdout
    assert "IMPORTED []" in res.stdout


def test_python_dash_m_rlref_runs_the_cli() -> None:
    res = _run_cli("-m", "rlref", "reproduce", "--list")
    assert res.returncode == 0, res.stderr
    assert "solver-certificates" in res.stdout.split()


def test_list_long_prints_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--list", "--long", ]) == 0
    out = capsys.readouterr().out
    assert re.search(r"sutton-barto-gridworld\s+Sutton & Barto", out)


def test_dir_of_rlref_lists_the_lazy_submodules_and_not_its_imports() -> None:
    import rlref

    names = dir(rlref)
    for sub in ("solve", "theory", "algorithms", "llm", "reproduce", "experiments", "envs", "testing"):
        assert sub in names
    for leaked in ("importlib", "ModuleType", "annotations", "_importlib"):
        assert leaked not in names
    assert rlref.theory.__name__ == "rlref.theory"


def test_no_global_experiments_package_is_installed() -> None:
    res = _run_cli("-c", "import importlib.util, sys; sys.path = [p for p in sys.path if p not in ('', '.')]; "
                         "print(importlib.util.find_spec('experiments'))")
    assert res.stdout.strip() == "None", res.stdout + res.stderr


# ----------------------------------------------------------------------------- -j N
def test_parallel_jobs_give_whole_blocks_the_claims_table_and_exit_code(tmp_path: Path, fixture_module: object,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["reproduce", "fixture-ok", "fixture-fail", "-j", "2", "--out", str(tmp_path), "-q"])
    assert rc == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name, n_hold in (("fixture-ok", 1), ("fixture-fail", 0)):
        i = lines.index(f"== {name} (quick, seed 0)")
        assert lines[i + 1].startswith(f"   1 claims, {n_hold} hold"), lines[i: i + 2]  # its block is not interleaved
    assert "1/2 claims hold; failing: fixture-fail" in out
    assert json.loads((tmp_path / "fixture-ok.json").read_text())["all_hold"] is True
    assert json.loads((tmp_path / "fixture-fail.json").read_text())["all_hold"] is False


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "sutton-barto-gridworld", "-j", "0", "--out", str(tmp_path)])
    assert exc.value.code == 2


# ----------------------------------------------------------------------------- item 12: cache keyed on the code
def test_cache_unit_is_recomputed_when_the_reproduction_module_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "changing_repro.py"
    body = ("from rlref.reproduce import register\n"
            "VALUE = {v}\n"
            "@register('changing-repro', paper='p', description='d')\n"
            "def run(ctx):\n"
            "    got = ctx.unit('u', lambda: VALUE)\n"
            "    ctx.claim('the unit is what this code computes', expected=VALUE, measured=got, tolerance=0)\n"
            "    return ctx.report('p')\n")
    src.write_text(body.format(v=1))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    try:
        import changing_repro  # noqa: F401

        assert main(["reproduce", "changing-repro", "--out", str(out), "-q"]) == 0
        # the "library" changes: edit the module (a new run in a new process would import the new code)
        reproduce._REGISTRY.pop("changing-repro")
        sys.modules.pop("changing_repro")
        src.write_text(body.format(v=2))
        import changing_repro  # noqa: F401,F811

        assert main(["reproduce", "changing-repro", "--out", str(out), "-q"]) == 0  # without --fresh
        cache = json.loads((out / "changing-repro.json").read_text())["cache"]
        assert cache["hits"] == 0 and cache["stale_keys"] == ["u"]
    finally:
        reproduce._REGISTRY.pop("changing-repro", None)
        sys.modules.pop("changing_repro", None)


def test_cache_unit_is_recomputed_when_the_library_source_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    ctx = Context("lib-change", out=tmp_path, verbose=False, module=__name__)
    ctx.unit("k", lambda: calls.append(1) or 1)
    Context("lib-change", out=tmp_path, verbose=False, module=__name__).unit("k", lambda: calls.append(1) or 1)
    assert len(calls) == 1  # same code: reused
    monkeypatch.setattr(reproduce, "_library_sha256", lambda: "0" * 64)
    again = Context("lib-change", out=tmp_path, verbose=False, module=__name__)
    again.unit("k", lambda: calls.append(1) or 1)
    assert len(calls) == 2 and again.cache_events["stale"] == ["k"]


def test_library_hash_covers_the_sources_and_the_fingerprint_names_seed_and_scale(tmp_path: Path) -> None:
    fp = Context("x", quick=False, seed=3, out=tmp_path, module="rlref.experiments.kl_bayes").fingerprint
    assert fp["seed"] == 3 and fp["scale"] == "full" and fp["module"] == "rlref.experiments.kl_bayes"
    import hashlib

    expected = hashlib.sha256((ROOT / "rlref" / "experiments" / "kl_bayes.py").read_bytes()).hexdigest()
    assert fp["module_sha256"] == expected
    assert re.fullmatch(r"[0-9a-f]{64}", fp["library_sha256"])


def test_cache_hits_are_recorded_in_the_json(tmp_path: Path, fixture_module: object) -> None:
    assert main(["reproduce", "fixture-ok", "--out", str(tmp_path), "-q"]) == 0
    first = json.loads((tmp_path / "fixture-ok.json").read_text())["cache"]
    assert first["hits"] == 0 and first["misses"] == 2
    assert main(["reproduce", "fixture-ok", "--out", str(tmp_path), "-q"]) == 0
    second = json.loads((tmp_path / "fixture-ok.json").read_text())["cache"]
    assert second["hits"] == 2 and second["misses"] == 0 and sorted(second["hit_keys"]) == ["a", "b"]
    assert second["fingerprint"]["module"] == "repro_fixture_module"


# ----------------------------------------------------------------------------- item 13: crash after success
def test_a_crashed_rerun_replaces_the_old_json_and_removes_the_old_figure(tmp_path: Path, scratch: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    state = {"crash": False}

    @register("crash-on-rerun", paper="p", description="d")
    def _r(ctx: Context) -> reproduce.Report:
        ctx.claim("first claim", expected=1.0, measured=1.0, tolerance=0)
        if state["crash"]:
            raise RuntimeError("boom on the rerun")
        fig, ax = plt.subplots()
        return ctx.report("p", figure=fig)

    scratch["crash-on-rerun"] = True
    assert main(["reproduce", "crash-on-rerun", "--out", str(tmp_path), "-q"]) == 0
    assert json.loads((tmp_path / "crash-on-rerun.json").read_text())["all_hold"] is True
    assert (tmp_path / "crash-on-rerun.png").exists()
    state["crash"] = True
    assert main(["reproduce", "crash-on-rerun", "--out", str(tmp_path), "-q"]) == 1
    payload = json.loads((tmp_path / "crash-on-rerun.json").read_text())
    assert payload["all_hold"] is False and payload["status"] == "error"
    assert payload["error"] == "RuntimeError: boom on the rerun"
    assert [c["claim"] for c in payload["claims"]] == ["first claim"]
    assert not (tmp_path / "crash-on-rerun.png").exists()


# ----------------------------------------------------------------------------- item 14: seeds, vacuous claims
def test_parse_seeds() -> None:
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("3,1, 1,7-8") == [1, 3, 7, 8]
    for bad in ("", "a", "4-2", "-1", "1,,2"):
        with pytest.raises(ValueError, match="seeds="):
            parse_seeds(bad)


def test_seeds_option_runs_each_seed_into_its_folder_and_names_failing_seeds(tmp_path: Path, fixture_module: object,
                                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "fixture-fails-at-seed-1", "--seeds", "0-2", "--out", str(tmp_path), "-q"]) == 1
    out = capsys.readouterr().out
    assert "fails at seeds [1]" in out and " 2/3 " in out
    for s in range(3):
        payload = json.loads((tmp_path / f"seed-{s}" / "fixture-fails-at-seed-1.json").read_text())
        assert payload["seed"] == s and payload["all_hold"] is (s != 1)
    assert "failing: fixture-fails-at-seed-1 (seed 1)" in out


def test_a_negative_seed_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "best-of-n", "--seed", "-1", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "--seed must be >= 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="seed must be a non-negative integer; got seed=-1"):
        Context("x", seed=-1, out=tmp_path)


@pytest.mark.parametrize("empty", [[], np.array([]), ()])
def test_claim_over_an_empty_measurement_is_an_error_not_a_pass(tmp_path: Path, empty: object) -> None:
    ctx = Context("x", out=tmp_path, verbose=False)
    with pytest.raises(ValueError, match="measured is empty"):
        ctx.claim("every gap is small", expected=0.0, measured=empty, tolerance=1e-6)
    with pytest.raises(ValueError, match="measured is empty"):
        ctx.claim("every gap is small", expected="all > 0", measured=empty, holds=all(x > 0 for x in []))


def test_a_reproduction_without_claims_does_not_hold(tmp_path: Path, scratch: dict) -> None:
    @register("no-claims", paper="p", description="d")
    def _r(ctx: Context) -> reproduce.Report:
        return ctx.report("p")

    scratch["no-claims"] = True
    assert main(["reproduce", "no-claims", "--out", str(tmp_path), "-q"]) == 1
    assert json.loads((tmp_path / "no-claims.json").read_text())["all_hold"] is False


# ----------------------------------------------------------------------------- item 22: corrupt units
@pytest.mark.parametrize("content", ["", "{not json", '{"value": 1'])
def test_a_corrupt_cache_unit_is_named_and_recomputed(tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = Context("corrupt", out=tmp_path, verbose=False, module=__name__)
    path = ctx.cache_dir / "k.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert ctx.unit("k", lambda: {"v": 5}) == {"v": 5}
    assert str(path) in capsys.readouterr().err
    assert ctx.cache_events["corrupt"] == ["k"]
    assert json.loads(path.read_text())["value"] == {"v": 5}  # repaired on disk
    assert Context("corrupt", out=tmp_path, verbose=False, module=__name__).unit("k", lambda: {"v": 6}) == {"v": 5}


def test_an_old_format_cache_unit_is_stale_not_trusted(tmp_path: Path) -> None:
    ctx = Context("old", out=tmp_path, verbose=False, module=__name__)
    path = ctx.cache_dir / "k.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"v": "from an old version"}))
    assert ctx.unit("k", lambda: {"v": "recomputed"}) == {"v": "recomputed"}
    assert ctx.cache_events["stale"] == ["k"]


# ----------------------------------------------------------------------------- item 24: bad --out, before computing
def _counting(scratch: dict, name: str) -> list[int]:
    calls: list[int] = []

    @register(name, paper="p", description="d")
    def _r(ctx: Context) -> reproduce.Report:
        calls.append(1)
        ctx.claim("c", expected=0.0, measured=0.0, tolerance=0)
        return ctx.report("p")

    scratch[name] = True
    return calls


def test_a_file_given_as_out_is_refused_before_computing(tmp_path: Path, scratch: dict, capsys: pytest.CaptureFixture[str]) -> None:
    calls = _counting(scratch, "count-out-file")
    target = tmp_path / "a-file"
    target.write_text("x")
    assert main(["reproduce", "count-out-file", "--out", str(target), "-q"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and calls == []
    below = target / "sub"
    assert main(["reproduce", "count-out-file", "--out", str(below), "-q"]) == 2
    assert "is not a writable folder" in capsys.readouterr().err and calls == []
    with pytest.raises(ValueError, match="is a file, not a folder"):
        reproduce.run("count-out-file", out=target)
    assert calls == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write to a read-only folder")
def test_a_read_only_out_is_refused_before_computing(tmp_path: Path, scratch: dict, capsys: pytest.CaptureFixture[str]) -> None:
    calls = _counting(scratch, "count-out-ro")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["reproduce", "count-out-ro", "--out", str(ro), "-q"]) == 2
        assert "is not a writable folder" in capsys.readouterr().err and calls == []
    finally:
        ro.chmod(0o700)


# ----------------------------------------------------------------------------- item 26: umask
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_respect_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        reproduce.atomic_write(tmp_path / "f.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == mode


# ----------------------------------------------------------------------------- item 27: interrupts, errors, names
def test_sigint_prints_a_resume_hint_and_no_traceback(tmp_path: Path, scratch: dict, capsys: pytest.CaptureFixture[str]) -> None:
    @register("interrupted", paper="p", description="d")
    def _r(ctx: Context) -> reproduce.Report:
        ctx.unit("done-before", lambda: 1)
        raise KeyboardInterrupt

    scratch["interrupted"] = True
    assert main(["reproduce", "interrupted", "--out", str(tmp_path), "-q"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "rerun the same command to resume" in err and "Traceback" not in err
    assert json.loads((tmp_path / "interrupted.json").read_text())["error"] == "interrupted"
    assert (tmp_path / ".cache" / "interrupted" / "quick-seed0" / "done-before.json").exists()


def test_sigint_in_a_subprocess_exits_130_with_a_hint(tmp_path: Path) -> None:
    """A real SIGINT delivered to ``rlref reproduce`` (not a raised KeyboardInterrupt)."""
    code = ("import os, signal, sys\n"
            "from rlref.reproduce import register, main\n"
            "@register('sigint-demo', paper='p', description='d')\n"
            "def run(ctx):\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "    import time; time.sleep(5)\n"
            f"sys.exit(main(['reproduce', 'sigint-demo', '--out', {str(tmp_path)!r}, '-q']))\n")
    res = _run_cli("-c", code)
    assert res.returncode == 130, res.stderr
    assert "rerun the same command to resume" in res.stderr and "Traceback" not in res.stderr


def test_ctrl_c_during_parallel_jobs_stops_the_workers_and_marks_the_runs(tmp_path: Path) -> None:
    """SIGINT to the whole process group (what a terminal's Ctrl-C does) while -j 2 runs two slow reproductions."""
    import signal
    import time

    tests_dir = str(Path(__file__).resolve().parent)
    code = (f"import sys; sys.path.insert(0, {tests_dir!r}); import repro_fixture_module\n"
            "from rlref.reproduce import main\n"
            f"sys.exit(main(['reproduce', 'fixture-slow', 'fixture-ok', '--seeds', '0-1', '-j', '2', '--out', {str(tmp_path)!r}, '-q']))\n")
    old_json = tmp_path / "seed-0" / "fixture-slow.json"
    old_json.parent.mkdir(parents=True)
    old_json.write_text(json.dumps({"name": "fixture-slow", "all_hold": True}))  # a stale success from an earlier run
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "MPLBACKEND": "Agg"})
    time.sleep(6.0)  # the workers have started (spawn + imports take ~2 s) and run fixture-slow
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("rlref reproduce -j 2 did not stop within 30 s of Ctrl-C") from None
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err and "Traceback" not in err
    payload = json.loads(old_json.read_text())
    assert payload["all_hold"] is False and payload["error"] == "interrupted"


def test_a_raised_reproduction_is_not_summarized_as_all_claims_hold(tmp_path: Path, fixture_module: object, scratch: dict,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    @register("raises-later", paper="p", description="d")
    def _r(ctx: Context) -> reproduce.Report:
        raise ValueError("bad thing")

    scratch["raises-later"] = True
    assert main(["reproduce", "fixture-ok", "raises-later", "--out", str(tmp_path), "-q"]) == 1
    captured = capsys.readouterr()
    summary = captured.out.strip().splitlines()[-1]
    assert summary == "1/1 claims hold; 1 run(s) RAISED and made no claims: raises-later"
    assert "ValueError: bad thing" in captured.err


def test_an_unknown_name_prints_the_known_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "no-such-thing", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown reproduction(s): no-such-thing" in err
    assert "known reproductions:" in err and "sutton-barto-gridworld" in err and "best-of-n" in err
    assert "usage: rlref reproduce" in err


def test_list_long_survives_a_reproduction_that_does_not_import(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real = metadata.entry_points
    fake = metadata.EntryPoint(name="broken-import", value="no_such_module_anywhere:run", group=reproduce.ENTRY_POINT_GROUP)
    monkeypatch.setattr(reproduce.metadata, "entry_points",
                        lambda **kw: [*real(**kw), fake] if kw.get("group") == reproduce.ENTRY_POINT_GROUP else real(**kw))
    assert main(["reproduce", "--list", "--long"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"broken-import\s+\(cannot be loaded: ModuleNotFoundError", out)
    assert "sutton-barto-gridworld" in out
