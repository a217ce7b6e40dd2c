"""mkdocs hook: publish paper_figures/ (what `rlref reproduce` writes) with the site.

The narrative pages in docs/ link the committed reproduction figures as ``../paper_figures/X.png``
(right when read on GitHub). mkdocs only serves files under ``docs_dir``, so this hook adds every
file of the top-level ``paper_figures/`` to the site as ``paper_figures/X`` and rewrites those links
in the Markdown of each page to the matching relative path. A link to a figure that does not exist
is left as it is, so ``mkdocs build --strict`` still reports it.

"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

_LINK = re.compile(r"\]\(((?:\.\./)+)paper_figures/([^)\s]+)\)")


def _figures_dir(config) -> Path:
    return Path(config["config_file_path"]).resolve().parent / "paper_figures"


def on_files(files, config):
    root = _figures_dir(config)
    if root.is_dir():
        for path in sorted(root.iterdir()):
            if path.is_file():
                files.append(File.generated(config, f"paper_figures/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    root = _figures_dir(config)
    depth = page.file.src_uri.count("/")

    def fix(match: re.Match) -> str:
        ups, name = match.group(1), match.group(2)
        if ups.count("../") != depth + 1 or not (root / name).is_file():
            return match.group(0)
        return "](" + posixpath.join("../" * depth, "paper_figures", name) + ")"

    return _LINK.sub(fix, markdown)

