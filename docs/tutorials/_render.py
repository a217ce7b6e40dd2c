"""Render the jupytext percent-format tutorial sources (docs/tutorials/*.py) as Markdown pages.

``# %% [markdown]`` cells become Markdown (the leading ``# `` of each line removed), ``# %%`` cells
become ```python blocks; each page ends with a link to its source. The figures are the PNGs the
scripts write when run from this folder (``python docs/tutorials/_render.py --run`` runs each
script first). tests/test_tutorials.py checks that every committed page equals its rendering.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sources() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_"))


def render(source: str, name: str) -> str:
    cells: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if not lines:
            continue
        if kind == "markdown":
            out.append("\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines))
        else:
            out.append("```python\n" + "\n".join(lines) + "\n```")
    out.append(f"*Source: [`{name}`]({name}) (jupytext percent format; run it with `python {name}`).*")
    return "\n\n".join(out) + "\n"


def main(argv: list[str]) -> None:
    import os

    for src in sources():
        if "--run" in argv:
            cwd = os.getcwd()
            os.chdir(HERE)
            try:
                runpy.run_path(str(src), run_name="__main__")
            finally:
                os.chdir(cwd)
        src.with_suffix(".md").write_text(render(src.read_text(), src.name))


if __name__ == "__main__":
    main(sys.argv[1:])
