"""The tutorials execute: each docs/tutorials/*.py (jupytext percent format) runs as a script in a
fresh directory with a non-interactive backend, writes the figure its page shows, and its page
(docs/tutorials/<name>.md) is the current rendering of its source.

The claims of each tutorial are the ``assert`` statements inside it (certificates against an
LP and exact evaluation, the tilt against its definition and random policies, best-of-n against
Monte Carlo and the log n − (n−1)/n bound, a planner bug caught by hypothesis, a minimax winner
against a second LP, DPO reaching π_ref e^{r/β}/Z on a token tree); a failing one fails here.
"""

from __future__ import annotations

import importlib
import re
import runpy
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
sys.path.insert(0, str(HERE))
_render = importlib.import_module("_render")
sys.path.remove(str(HERE))

TUTORIALS = _render.sources()
NEEDS = {"llm_tokentree": ["torch"]}


def test_the_five_tutorials_exist():
    assert {p.stem for p in TUTORIALS} >= {"frozenlake_planning", "kl_best_of_n", "property_testing", "preference_nash", "llm_tokentree"}


@pytest.mark.parametrize("src", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs_and_writes_its_figure(src, tmp_path, monkeypatch):
    for module in NEEDS.get(src.stem, []):
        pytest.importorskip(module)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        runpy.run_path(str(src), run_name="__main__")
    finally:
        plt.close("all")
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", src.read_text())
    assert figures, f"{src.name} shows no figure"
    for fig in figures:
        assert (tmp_path / fig).is_file(), f"{src.name} did not write {fig}"
        assert (HERE / fig).is_file(), f"{fig} is not committed next to {src.name}"


@pytest.mark.parametrize("src", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_page_is_its_rendered_source(src):
    page = src.with_suffix(".md")
    assert page.is_file(), f"run python docs/tutorials/_render.py to create {page.name}"
    assert page.read_text() == _render.render(src.read_text(), src.name), f"{page.name} is stale: run python docs/tutorials/_render.py"


def test_render_turns_cells_into_markdown_and_code():
    text = "# %% [markdown]\n# # Title\n#\n# prose\n\n# %%\nx = 1\n\n# %% [markdown]\n# ![f](f.png)\n"
    assert _render.render(text, "t.py") == "# Title\n\nprose\n\n```python\nx = 1\n```\n\n![f](f.png)\n\n" \
        "*Source: [`t.py`](t.py) (jupytext percent format; run it with `python t.py`).*\n"


def test_sources_are_valid_jupytext_percent_notebooks():
    jupytext = pytest.importorskip("jupytext")
    for src in TUTORIALS:
        nb = jupytext.reads(src.read_text(), fmt="py:percent")
        kinds = {c.cell_type for c in nb.cells}
        assert kinds == {"markdown", "code"}, (src.name, kinds)

