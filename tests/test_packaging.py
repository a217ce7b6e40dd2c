"""Packaging and documentation contracts: the README's test command is what CI runs, the README's
code runs as written, the import-layer contracts hold, and the layout has no global ``experiments``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ci_command() -> str:
    lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return lines[-1].strip()


def test_readme_test_command_is_exactly_what_ci_runs() -> None:
    cmd = _ci_command()
    assert cmd.startswith("pip install torch==2.13.0 && pip install -e ")  # a bare machine: Python and pip only
    readme_commands = [ln.strip() for ln in (ROOT / "README.md").read_text().splitlines() if ln.startswith("    pip install")]
    assert cmd in readme_commands, f"README must print the CI command {cmd!r}; it has {readme_commands}"
    assert "lint-imports" in cmd and "pytest" in cmd


def test_dev_extra_provides_every_tool_the_ci_command_calls() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    dev = re.search(r"^dev = \[(.*?)\]", text, re.S | re.M)
    assert dev is not None
    for tool in ("pytest", "pytest-xdist", "pytest-timeout", "ruff", "import-linter"):
        assert f'"{tool}' in dev.group(1), tool


def test_readme_python_blocks_run_as_written() -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "the README has a quick start"
    namespace: dict = {}
    exec(compile("\n".join(blocks), "README.md", "exec"), namespace)  # noqa: S102 - our own README


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed (dev extra)")
def test_import_layer_contracts_hold() -> None:
    res = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:]
    assert "BROKEN" not in res.stdout


def test_no_top_level_experiments_package_in_the_tree() -> None:
    assert not (ROOT / "experiments").exists()
    assert (ROOT / "rlref" / "experiments" / "__init__.py").exists()
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'include = \["rlref\*"\]', text)
