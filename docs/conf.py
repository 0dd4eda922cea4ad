"""Sphinx configuration of the book: ``python3 tasks.py book`` builds it into ``build/book/``.

The source directory is the repository root (``sphinx-build -c docs . build/book``), so that
the README, the notebooks and ``docs/*.md`` are read where they live, never copied. The
notebooks are rendered from their stored outputs and are not executed.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

project = "chaosrnn"
author = "chaosrnn contributors"

extensions = ["myst_nb"]
root_doc = "docs/index"
# only these files are pages (the README enters through docs/index.md's include); everything
# else under the root (.venv, build, data) is skipped
include_patterns = ["docs/*.md", "notebooks/*.ipynb"]
exclude_patterns = [".venv", "build", "data", "figures", "tests", "benchmarks",
                    "**/.ipynb_checkpoints"]

nb_execution_mode = "off"  # the committed outputs are the ones shown
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]

html_theme = "sphinx_book_theme"
html_title = "chaosrnn: learning chaotic dynamics with RNNs"
html_theme_options = {"show_toc_level": 2}
html_last_updated_fmt = None
html_extra_path = ["_root"]  # build/book/index.html: a redirect to the landing page


def _notes_toctree(app, docname: str, source: list[str]) -> None:
    """Append a 'Notes' toctree of the other ``docs/*.md`` pages (the paper notes) to the
    landing page, listing only the pages that exist in this tree."""
    if docname != root_doc:
        return
    notes = sorted(p.stem for p in (ROOT / "docs").glob("*.md") if p.name != "index.md")
    if notes:
        entries = "\n".join(notes)
        source[0] += f"\n```{{toctree}}\n:caption: Notes\n:maxdepth: 1\n\n{entries}\n```\n"


def setup(app):
    app.connect("source-read", _notes_toctree)
    return {"parallel_read_safe": True}
