"""Packaging and documentation contracts: the README's test command is what CI runs, the README's
code runs as written, the import-layer contracts hold, the layout has no global ``experiments``,
the version has one source, and the metadata (authors, classifiers, URLs, extras) is what a user
of an index would expect.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The extras of the README's table, each named for what it brings (issue 19); the CI command installs all but
# the aliases kept for older commands.
EXTRAS = {"llm": ["torch"], "hf": ["transformers", "tokenizers", "pyyaml"], "peers": ["trl"],
          "interop": ["gymnasium", "pymdptoolbox", "quantecon", "open_spiel"], "docs": ["mkdocs", "mkdocs-material", "mkdocstrings"],
          "testing": ["hypothesis"], "dev": ["pytest", "hypothesis", "ruff", "import-linter"],
          "bench": ["pymdptoolbox", "quantecon"], "quantecon": ["quantecon"]}
ALIASES = {"bench", "quantecon", "testing"}


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement_names(reqs: list[str]) -> set[str]:
    """Distribution names of requirement strings, lower-case, extras kept only on rlref itself
    (``"torch>=2.1"`` -> ``torch``, ``"mkdocstrings[python]"`` -> ``mkdocstrings``, ``"rlref[llm]"`` -> ``rlref[llm]``)."""
    out = set()
    for r in reqs:
        name, extra = re.match(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?", r).groups()
        out.add(name.lower() + (extra or "") if name.lower() == "rlref" else name.lower())
    return out


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


# ---- one version, and the metadata of an index release -----------------------------------------


def _literal_version() -> str:
    """The string literal assigned to ``__version__`` in rlref/__init__.py (exactly one assignment)."""
    tree = ast.parse((ROOT / "rlref" / "__init__.py").read_text())
    found = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
             and any(isinstance(tg, ast.Name) and tg.id == "__version__" for tg in node.targets)
             and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)]
    assert len(found) == 1, f"rlref/__init__.py must assign __version__ one string literal, found {found}"
    return found[0]


def test_version_has_one_source() -> None:
    """pyproject declares the version dynamic and reads rlref.__version__; no other file in rlref/ assigns one;
    CITATION.cff and the installed metadata (when rlref is installed) carry the same string."""
    import rlref

    config = _pyproject()
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "rlref.__version__"}
    version = _literal_version()
    assert rlref.__version__ == version and re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*(\.dev\d+)?", version), version
    others = [p for p in (ROOT / "rlref").rglob("*.py")
              if p != ROOT / "rlref" / "__init__.py" and re.search(r"^__version__\s*=", p.read_text(), re.M)]
    assert not others, f"a second __version__: {others}"
    cff = re.search(r"^version:\s*['\"]?([^'\"\s]+)", (ROOT / "CITATION.cff").read_text(), re.M)
    assert cff is not None and cff.group(1) == version, f"CITATION.cff version {cff and cff.group(1)!r} != {version!r}"
    assert re.search(rf"^## \[{re.escape(version)}\]", (ROOT / "CHANGELOG.md").read_text(), re.M), "CHANGELOG.md has no section for it"
    try:
        installed = importlib.metadata.version("rlref")
    except importlib.metadata.PackageNotFoundError:     # running from a source tree without installing
        return
    assert installed == version, f"installed metadata says {installed}; re-run `pip install -e . --no-deps`"


def test_setuptools_reads_the_version_without_importing_rlref() -> None:
    """The build reads ``rlref.__version__`` by parsing the file (setuptools' static ``attr:`` path):
    neither rlref nor numpy is imported, so building a wheel does not need the dependencies."""
    pytest.importorskip("setuptools")
    code = ("import sys\ntry:\n    from setuptools.config.expand import read_attr\nexcept ImportError:\n    print('SKIP'); sys.exit(0)\n"
            f"v = read_attr('rlref.__version__', root_dir={str(ROOT)!r}); "
            "assert 'rlref' not in sys.modules and 'numpy' not in sys.modules, sorted(m for m in sys.modules if m.startswith(('rlref', 'numpy'))); "
            "print(v)")
    res = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    if res.stdout.strip() == "SKIP":
        pytest.skip("this setuptools has no setuptools.config.expand.read_attr")
    assert res.stdout.strip() == _literal_version()


def test_project_metadata_for_an_index() -> None:
    """Authors, an SPDX licence with its file, classifiers matching requires-python and py.typed, and
    placeholder-free https URLs for the five standard labels."""
    project = _pyproject()["project"]
    assert project["authors"] and all(a.get("name") for a in project["authors"])
    assert project["license"] == "MIT" and (ROOT / "LICENSE").is_file() and "MIT License" in (ROOT / "LICENSE").read_text()
    classifiers = project["classifiers"]
    # setuptools >= 77 refuses a License :: classifier next to an SPDX expression (PEP 639)
    assert not [c for c in classifiers if c.startswith("License ::")]
    lowest = tuple(int(x) for x in re.search(r">=\s*(\d+)\.(\d+)", project["requires-python"]).groups())
    versions = sorted(tuple(int(x) for x in m.groups())
                      for c in classifiers if (m := re.fullmatch(r"Programming Language :: Python :: (\d+)\.(\d+)", c)))
    assert versions and versions[0] == lowest and versions == [(3, v) for v in range(lowest[1], versions[-1][1] + 1)], versions
    for needed in ("Intended Audience :: Science/Research", "Typing :: Typed", "Topic :: Scientific/Engineering :: Artificial Intelligence",
                   "Topic :: Scientific/Engineering :: Mathematics"):
        assert needed in classifiers, needed
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert (ROOT / "rlref" / "py.typed").is_file()
    urls = project["urls"]
    assert set(urls) >= {"Homepage", "Documentation", "Source", "Issues", "Changelog"}, sorted(urls)
    for label, url in urls.items():
        assert re.fullmatch(r"https://[a-z0-9.\-]+\.[a-z]+/\S*", url), (label, url)
        assert not re.search(r"example|todo|xxx|your|<|>|owner", url, re.I), (label, url)


def test_extras_are_named_for_what_they_bring() -> None:
    """Each extra of the README's table exists and brings its packages; an extra that refers to rlref refers to
    an existing extra; the CI command installs every non-alias extra; the README's table lists exactly
    the extras of pyproject.toml."""
    extras = _pyproject()["project"]["optional-dependencies"]
    assert set(extras) == set(EXTRAS), f"extras changed: {sorted(set(extras) ^ set(EXTRAS))}; update the README table and EXTRAS"
    for name, packages in EXTRAS.items():
        have = _requirement_names(extras[name])
        for pkg in packages:
            assert pkg.lower() in have, f"extra {name!r} must bring {pkg}; it has {sorted(have)}"
        for ref in (h for h in have if h.startswith("rlref[")):
            assert set(ref[6:-1].split(",")) <= set(extras), f"extra {name!r} refers to {ref}"
    installed = re.search(r'pip install -e "\.\[([^\]]+)\]"', _ci_command())
    assert installed is not None
    assert set(installed.group(1).split(",")) == set(extras) - ALIASES, installed.group(1)
    readme = (ROOT / "README.md").read_text()
    table = re.search(r"^\| extra \| brings \| for \|\n\|[-|]+\|\n((?:\|.*\n)+)", readme, re.M)
    assert table is not None, "README.md has no extras table (| extra | brings | for |)"
    in_readme = {n for row in table.group(1).splitlines() for n in re.findall(r"`([a-z]+)`", row.split("|")[1])}
    assert in_readme == set(extras), f"README extras table: missing {sorted(set(extras) - in_readme)}, unknown {sorted(in_readme - set(extras))}"
