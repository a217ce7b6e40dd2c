"""The built-in reproductions declared in pyproject.toml and the modules in rlref/experiments agree.

pyproject.toml is edited by hand, one entry-point line per reproduction; a duplicated key makes it
invalid TOML (pip refuses to install), a line without a module breaks ``rlref reproduce``, and a
module without a line is silently never run. These tests catch all three before CI does.
"""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _entry_points() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())  # raises on a duplicated key
    return data["project"]["entry-points"]["rlref.reproductions"]


def test_every_entry_point_names_an_existing_experiment_module_and_function() -> None:
    for name, target in _entry_points().items():
        module, _, func = target.partition(":")
        assert module.startswith("rlref.experiments."), (name, target)
        path = ROOT / (module.replace(".", "/") + ".py")
        assert path.exists(), f"entry point {name!r} points at {module}, which has no file {path}"
        assert f"def {func}(" in path.read_text(), f"entry point {name!r}: {module} defines no {func}()"


def test_every_experiment_module_is_registered() -> None:
    registered = {t.partition(":")[0].rsplit(".", 1)[1] for t in _entry_points().values()}
    modules = {p.stem for p in (ROOT / "rlref" / "experiments").glob("*.py") if not p.stem.startswith("_")}
    assert modules - registered == set(), f"experiment modules with no entry point: {sorted(modules - registered)}"
