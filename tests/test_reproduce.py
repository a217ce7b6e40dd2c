"""Tests of the reproduction contract (``rlref.reproduce``): registry, CLI, claims JSON, atomic
writes, resumable units, and that the shipped reproductions' quick runs hold all their claims.

The contract is stated in DESIGN.md ("The reproduction contract") and docs/reproductions.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rlref import reproduce
from rlref.reproduce import Context, atomic_write, main, register, registry

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLAIM_KEYS = {"claim", "expected", "measured", "tolerance", "holds"}
TOP_KEYS = {"name", "paper", "description", "scale", "seed", "seconds", "all_hold", "claims", "data", "notes"}
SHIPPED = ("sutton-barto-gridworld", "solver-certificates")


# ----------------------------------------------------------------------------- helpers
@pytest.fixture
def throwaway() -> Iterator[dict[str, str]]:
    """Register two tiny reproductions (one whose claims hold, one with a failing claim); remove them after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"ok": "test-throwaway-ok", "fail": "test-throwaway-fail", "crash": "test-throwaway-crash"}

    @register(names["ok"], paper="nobody (2024)", description="a reproduction whose claims hold")
    def _ok(ctx: Context) -> reproduce.Report:
        x = np.arange(4.0)
        ctx.claim("sum of 0..3 is 6", expected=6.0, measured=float(x.sum()), tolerance=1e-12)
        ctx.claim("an infinite gap is reported as a string", expected=0.0, measured=float("inf"), tolerance=None,
                  holds=bool(np.isinf(np.inf)))
        fig, ax = plt.subplots()
        ax.plot(x, x**2)
        return ctx.report("nobody (2024)", figure=fig, data={"x": x, "n": np.int64(4)})

    @register(names["fail"], paper="nobody (2024)", description="a reproduction with a failing claim")
    def _fail(ctx: Context) -> reproduce.Report:
        measured = 1.0 + 1.0  # computed, not typed in
        ctx.claim("1 + 1 equals 3", expected=3.0, measured=measured, tolerance=0.1)
        return ctx.report("nobody (2024)")

    @register(names["crash"], paper="nobody (2024)", description="a reproduction that raises")
    def _crash(ctx: Context) -> reproduce.Report:
        raise RuntimeError("boom")

    yield names
    for name in names.values():
        reproduce._REGISTRY.pop(name, None)


def _read_json(path: Path) -> dict:
    payload = json.loads(path.read_text())
    assert TOP_KEYS <= set(payload), f"missing keys: {TOP_KEYS - set(payload)}"
    for c in payload["claims"]:
        assert set(c) == CLAIM_KEYS
        assert isinstance(c["holds"], bool)
    return payload


# ----------------------------------------------------------------------------- registry and CLI
def test_registry_lists_both_shipped_reproductions() -> None:
    reg = registry()
    for name in SHIPPED:
        assert name in reg
        assert reg[name].paper and reg[name].description


def test_cli_list_prints_every_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert name in out


def test_unknown_name_errors_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="unknown reproduction 'no-such-thing'"):
        reproduce.run("no-such-thing", out=tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "no-such-thing", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "unknown reproduction(s): no-such-thing" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_registering_a_name_twice_from_another_module_is_an_error(throwaway: dict[str, str]) -> None:
    def other(ctx: Context) -> reproduce.Report:
        return ctx.report("x")

    other.__module__ = "somewhere.else"
    with pytest.raises(ValueError, match="registered twice"):
        register(throwaway["ok"], paper="x", description="x")(other)


# ----------------------------------------------------------------------------- outputs
def test_run_writes_png_and_json_with_documented_schema(tmp_path: Path, throwaway: dict[str, str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    name = throwaway["ok"]
    assert main(["reproduce", name, "--out", str(tmp_path), "--seed", "3", "-q"]) == 0
    png = tmp_path / f"{name}.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    payload = _read_json(tmp_path / f"{name}.json")
    assert payload["name"] == name
    assert payload["paper"] == "nobody (2024)"
    assert payload["scale"] == "quick" and payload["seed"] == 3
    assert payload["all_hold"] is True
    assert payload["claims"][0] == {"claim": "sum of 0..3 is 6", "expected": 6.0, "measured": 6.0, "tolerance": 1e-12, "holds": True}
    assert payload["claims"][1]["measured"] == "inf"  # non-finite floats stay standard JSON
    assert payload["data"] == {"x": [0.0, 1.0, 2.0, 3.0], "n": 4}
    assert "2/2 claims hold" in capsys.readouterr().out


def test_full_scale_is_recorded(tmp_path: Path, throwaway: dict[str, str]) -> None:
    assert main(["reproduce", throwaway["ok"], "--full", "--out", str(tmp_path), "-q"]) == 0
    assert _read_json(tmp_path / f"{throwaway['ok']}.json")["scale"] == "full"


def test_failing_claim_gives_exit_code_1(tmp_path: Path, throwaway: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    name = throwaway["fail"]
    assert main(["reproduce", throwaway["ok"], name, "--out", str(tmp_path), "-q"]) == 1
    payload = _read_json(tmp_path / f"{name}.json")
    assert payload["all_hold"] is False
    assert payload["claims"] == [{"claim": "1 + 1 equals 3", "expected": 3.0, "measured": 2.0, "tolerance": 0.1, "holds": False}]
    out = capsys.readouterr().out
    assert "FAIL" in out and "failing: " + name in out
    assert not (tmp_path / f"{name}.png").exists()  # no figure was returned


def test_crashing_reproduction_gives_exit_code_1_and_names_the_error(tmp_path: Path, throwaway: dict[str, str],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", throwaway["crash"], "--out", str(tmp_path), "-q"]) == 1
    assert "RuntimeError: boom" in capsys.readouterr().err


def test_claim_needs_a_tolerance_or_a_computed_holds(tmp_path: Path) -> None:
    ctx = Context("x", out=tmp_path, verbose=False)
    with pytest.raises(ValueError, match="give a tolerance"):
        ctx.claim("no tolerance", expected=1.0, measured=1.0)
    c = ctx.claim("elementwise closeness", expected=[1.0, 2.0], measured=np.array([1.0, 2.5]), tolerance=0.1)
    assert c.holds is False


# ----------------------------------------------------------------------------- atomic writes
def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    atomic_write(target, "first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_atomic_write_failure_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write(target, "old")
    with pytest.raises(TypeError):
        atomic_write(target, 12345)  # type: ignore[arg-type]  # write() of an int fails half-way
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


# ----------------------------------------------------------------------------- resumable units
def test_unit_caches_and_resumes_and_fresh_recomputes(tmp_path: Path) -> None:
    calls: list[int] = []

    def compute() -> dict:
        calls.append(1)
        return {"v": np.arange(3.0), "k": np.int64(len(calls))}

    ctx = Context("resume-test", quick=True, seed=7, out=tmp_path, verbose=False)
    first = ctx.unit("size-10", compute)
    assert first == {"v": [0.0, 1.0, 2.0], "k": 1} and len(calls) == 1
    cache = tmp_path / ".cache" / "resume-test" / "quick-seed7" / "size-10.json"
    assert json.loads(cache.read_text())["value"] == first

    # a new run (e.g. after an interruption) reuses the stored unit without recomputing
    again = Context("resume-test", quick=True, seed=7, out=tmp_path, verbose=False).unit("size-10", compute)
    assert again == first and len(calls) == 1
    # another seed or scale is another cache
    Context("resume-test", quick=False, seed=7, out=tmp_path, verbose=False).unit("size-10", compute)
    assert len(calls) == 2
    # --fresh recomputes and overwrites
    fresh = Context("resume-test", quick=True, seed=7, out=tmp_path, fresh=True, verbose=False).unit("size-10", compute)
    assert len(calls) == 3 and fresh["k"] == 3
    assert json.loads(cache.read_text())["value"]["k"] == 3
    assert not [p for p in cache.parent.iterdir() if p.name.endswith(".tmp")]


def test_cli_fresh_flag_recomputes_units(tmp_path: Path) -> None:
    calls: list[int] = []
    name = "test-throwaway-units"

    @register(name, paper="nobody", description="counts its unit computations")
    def _units(ctx: Context) -> reproduce.Report:
        for key in ctx.progress(["a", "b"], desc="units"):
            ctx.unit(key, lambda: calls.append(1) or len(calls))
        ctx.claim("two units", expected=2, measured=2, tolerance=0)
        return ctx.report("nobody")

    try:
        assert main(["reproduce", name, "--out", str(tmp_path), "-q"]) == 0
        assert len(calls) == 2
        assert main(["reproduce", name, "--out", str(tmp_path), "-q"]) == 0
        assert len(calls) == 2  # resumed from the cache
        assert main(["reproduce", name, "--out", str(tmp_path), "-q", "--fresh"]) == 0
        assert len(calls) == 4
    finally:
        reproduce._REGISTRY.pop(name, None)


def test_progress_yields_every_item_and_draws_a_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = Context("bar", out=tmp_path, verbose=True)
    assert list(ctx.progress(iter(range(5)), desc="work")) == [0, 1, 2, 3, 4]
    err = capsys.readouterr().err
    assert "bar work" in err and "5/5" in err
    quiet = Context("bar", out=tmp_path, verbose=False)
    assert list(quiet.progress([1, 2])) == [1, 2]
    assert capsys.readouterr().err == ""


def test_child_rng_depends_on_seed_and_key_only(tmp_path: Path) -> None:
    a = Context("x", seed=1, out=tmp_path).child_rng(3).random(4)
    b = Context("x", seed=1, out=tmp_path).child_rng(3).random(4)
    c = Context("x", seed=2, out=tmp_path).child_rng(3).random(4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# ----------------------------------------------------------------------------- shipped reproductions
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_reproduction_quick_run_holds_all_claims(name: str, tmp_path: Path) -> None:
    assert main(["reproduce", name, "--quick", "--out", str(tmp_path), "-q"]) == 0
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
    payload = _read_json(tmp_path / f"{name}.json")
    assert payload["all_hold"] is True
    assert len(payload["claims"]) >= 3
    assert all(c["holds"] for c in payload["claims"])
    leftovers = [p for p in Path(tmp_path).rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert os.access(tmp_path / f"{name}.json", os.R_OK)
