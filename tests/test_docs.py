"""The documentation cannot rot: the API site documents every public name, the site builds
strictly, and every ```python block of README.md and docs/*.md runs as written.

Claims checked:
* every name in a public module's ``__all__`` is an object of the built site's mkdocstrings
  inventory (``site/objects.inv``), either at its public path or at the module defining it
  (skipped without mkdocs);
* every ``docs/*.md`` page is in the mkdocs nav (a page outside the nav is unreachable);
* the narrative pages core, divergences, envs and solve show their API by mkdocstrings directives
  (no hand-written signature blocks), each naming an object that exists;
* each code block runs standalone in a fresh namespace (a block after a ``<!-- no-run -->``
  line is skipped; a block importing torch is skipped without torch).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# The top-level public modules of rlref (rlref.experiments holds reproductions, not API).
PUBLIC = ["mdp", "policy", "divergences", "solve", "envs", "linear", "theory", "algorithms", "preferences", "tokentree",
          "games", "formalisms", "interop", "llm", "testing", "reproduce"]


def public_modules() -> list[str]:
    """rlref.<pkg> for each PUBLIC name and, for packages, each public submodule (one level)."""
    out = []
    for name in PUBLIC:
        mod = f"rlref.{name}"
        out.append(mod)
        spec = importlib.util.find_spec(mod)
        if spec is not None and spec.submodule_search_locations:
            out += [f"{mod}.{m.name}" for m in pkgutil.iter_modules(spec.submodule_search_locations) if not m.name.startswith("_")]
    return out


def read_inventory(path: Path) -> set[str]:
    """Object names of a Sphinx v2 inventory (what mkdocstrings writes): 4 header lines, then zlib."""
    raw = path.read_bytes()
    parts = raw.split(b"\n", 4)
    if not parts[0].startswith(b"# Sphinx inventory version 2"):
        raise ValueError(f"{path} is not a v2 inventory: {parts[0]!r}")
    body = zlib.decompress(parts[4]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines() if line.strip()}


def undocumented(names: set[str], modules: list[str]) -> list[str]:
    """Public names (``module.name`` for name in ``module.__all__``) absent from ``names``."""
    missing = []
    for mod in modules:
        try:
            m = importlib.import_module(mod)
        except ImportError:          # an optional dependency (torch for rlref.llm) is absent
            continue
        for n in getattr(m, "__all__", []):
            try:
                obj = getattr(m, n) if hasattr(m, n) else importlib.import_module(f"{mod}.{n}")   # a lazy submodule
            except ImportError:      # a converter whose optional extra is absent
                continue
            if not (inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj)):
                continue             # a plain constant: griffe cannot see every assignment form (tuple unpacking)
            candidates = {f"{mod}.{n}"}
            if inspect.ismodule(obj):
                candidates.add(obj.__name__)
            elif getattr(obj, "__module__", None) and getattr(obj, "__qualname__", None):
                candidates.add(f"{obj.__module__}.{obj.__qualname__}")
            if not candidates & names:
                missing.append(f"{mod}.{n}")
    return missing


def test_inventory_check_flags_a_missing_name():
    """The coverage check itself can fail: drop one documented name and it is reported."""
    assert undocumented({"rlref.policy." + n for n in importlib.import_module("rlref.policy").__all__}, ["rlref.policy"]) == []
    names = {"rlref.policy." + n for n in importlib.import_module("rlref.policy").__all__[1:]}
    assert undocumented(names, ["rlref.policy"]) == ["rlref.policy." + importlib.import_module("rlref.policy").__all__[0]]


def test_every_docs_page_is_in_the_nav():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for x in node:
                yield from pages(x)
        elif isinstance(node, dict):
            for x in node.values():
                yield from pages(x)

    in_nav = set(pages(config["nav"]))
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.glob("*.md")} | {p.relative_to(DOCS).as_posix() for p in (DOCS / "api").glob("*.md")}
    assert not (on_disk - in_nav), f"pages missing from mkdocs.yml nav: {sorted(on_disk - in_nav)}"
    assert not {p for p in in_nav if not (DOCS / p).is_file()}, "nav names a page that does not exist"


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path_factory.mktemp("site")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)], cwd=ROOT,
                         capture_output=True, text=True, env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    return run, site


def test_site_builds_strictly(built_site):
    run, site = built_site
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    assert (site / "api" / "solve" / "index.html").is_file()
    assert (site / "tutorials" / "frozenlake_planning" / "index.html").is_file()


def test_every_public_name_is_documented(built_site):
    run, site = built_site
    assert run.returncode == 0, run.stderr[-4000:]
    names = read_inventory(site / "objects.inv")
    missing = undocumented(names, public_modules())
    assert not missing, f"{len(missing)} public names are not in the API site: {missing[:40]}"


# ---- every ```python block of README.md and docs/*.md runs -----------------------------------

_BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def code_blocks() -> list[tuple[str, int, str]]:
    """(file, line, code) of each ```python block not preceded by a ``<!-- no-run -->`` line."""
    out = []
    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = path.read_text()
        for m in _BLOCK.finditer(text):
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
            where = path.relative_to(ROOT).as_posix()
            if before == "<!-- no-run -->":
                continue
            out.append((where, text[: m.start()].count("\n") + 1, m.group(1)))
    return out


# The narrative pages whose hand-written signature blocks were replaced by autodoc (issue 19).
AUTODOC_PAGES = ["core.md", "divergences.md", "envs.md", "solve.md"]
_DIRECTIVE = re.compile(r"^::: ([\w.]+)\s*$", re.M)


def resolve(identifier: str) -> object:
    """The object a ``::: a.b.c`` directive names: the longest importable module prefix, then attributes."""
    parts = identifier.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(identifier)


@pytest.mark.parametrize("page", AUTODOC_PAGES)
def test_narrative_page_renders_its_api_by_autodoc(page):
    """Each page shows its API through mkdocstrings directives that name real objects, so a renamed function
    breaks this fast test, not only the slow strict build (its python blocks run in test_code_block_runs)."""
    text = (DOCS / page).read_text()
    names = _DIRECTIVE.findall(text)
    assert names, f"docs/{page} has no ::: directive"
    for name in names:
        assert name.startswith("rlref."), name
        obj = resolve(name)
        assert inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj), (name, obj)


def test_block_extraction_honours_no_run(tmp_path):
    blocks = _BLOCK.findall("x\n```python\na = 1\n```\n<!-- no-run -->\n```python\nb = 2\n```\n")
    assert blocks == ["a = 1\n", "b = 2\n"]      # extraction finds both; code_blocks() drops the marked one
    assert any(f == "README.md" for f, _, _ in code_blocks())


@pytest.mark.parametrize("where,line,code", [pytest.param(*b, id=f"{b[0]}:{b[1]}") for b in code_blocks()])
def test_code_block_runs(where, line, code, tmp_path, monkeypatch):
    if re.search(r"^\s*(import torch|from torch|from rlref\.llm|import rlref\.llm)", code, re.M):
        pytest.importorskip("torch")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    import matplotlib

    matplotlib.use("Agg")
    namespace = {"__name__": "__docs_block__"}
    try:
        exec(compile(code, f"{where}:{line}", "exec"), namespace)
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")


# ---- packaging metadata ----------------------------------------------------------------------


def test_citation_cff_is_valid_cff_1_2():
    """CITATION.cff parses and has CFF 1.2's required keys (cff-version, message, title, authors);
    its version is the package's. Validated against the schema by cffconvert when it is installed."""
    yaml = pytest.importorskip("yaml")
    import rlref

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert cff["message"] and cff["title"] and cff["authors"]
    assert all(isinstance(a, dict) and ("name" in a or "family-names" in a) for a in cff["authors"])
    assert str(cff["version"]) == rlref.__version__
    try:
        from cffconvert import Citation
    except Exception:            # cffconvert absent, or broken by a newer jsonschema
        return
    Citation((ROOT / "CITATION.cff").read_text()).validate()


def test_changelog_follows_keep_a_changelog():
    import rlref

    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert headings[0] == "Unreleased" and rlref.__version__ in headings, headings
    assert set(re.findall(r"^### (\w+)", text, re.M)) <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_py_typed_is_shipped():
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")

    assert (ROOT / "rlref" / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["rlref"]
