"""The HTML book (``python3 tasks.py book``): built once into a temporary folder with the same
Sphinx call as ``tasks.py``, then read back. Each notebook must have its page, linked from the
landing page; every image output stored in the notebook must be on that page, byte for byte,
as a file of the build; every LaTeX expression of its markdown must be in MathJax's delimiters
(``\\(…\\)`` inline, ``\\[…\\]`` display), i.e. rendered as math and not left as ``$…$`` text.
No page loads anything from the network (MathJax is bundled), shows a machine path or a
warning; each profile with committed results has a results page with every committed figure
of notebooks 06-09, and the comparison has a page of its own.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from builders import load_tasks  # noqa: E402

pytest.importorskip("sphinx", reason="the book's tools are not installed (pip install -e .[book])")
pytest.importorskip("myst_nb", reason="the book's tools are not installed (pip install -e .[book])")
pytest.importorskip("sphinx_book_theme",
                    reason="the book's tools are not installed (pip install -e .[book])")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)  # code spans and fences hold no math
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$])\$([^$]+?)\$")
_IMG = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]+)\"")
_LINK = re.compile(r"\b(?:href|src)=\"([^\"#?]+)[^\"]*\"")




@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book") / "book"
    cmd = load_tasks().book_command(out, python=sys.executable)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _flat(text: str) -> str:
    return " ".join(text.split())


def _math(markdown: str) -> tuple[list[str], list[str]]:
    """(inline, display) LaTeX of one markdown cell, as written between ``$`` / ``$$``."""
    text = _CODE.sub("", markdown)
    display = _DISPLAY.findall(text)
    return _INLINE.findall(_DISPLAY.sub("", text)), display


def _page(book: Path, nb: Path) -> Path:
    return book / "notebooks" / f"{nb.stem}.html"


def _dead_links(page: Path) -> list[str]:
    """Relative links and sources of a page whose file is not in the build."""
    return [url for url in _LINK.findall(page.read_text(encoding="utf-8"))
            if not re.match(r"[a-z]+:", url) and not (page.parent / html.unescape(url)).exists()]


def test_landing_page_is_the_readme_with_every_notebook(book):
    assert NOTEBOOKS, "no notebooks found"
    redirect = (book / "index.html").read_text(encoding="utf-8")
    assert 'url=docs/index.html"' in redirect
    landing = (book / "docs" / "index.html").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    prose = re.sub(r"```.*?```", "", readme, flags=re.S)
    headings = [line.lstrip("#").strip() for line in prose.splitlines()
                if re.match(r"#{1,3} ", line)]
    assert headings
    text = _flat(html.unescape(re.sub(r"<[^>]+>", " ", landing)))
    for heading in headings:
        assert _flat(heading) in text, f"README heading {heading!r} missing from the landing page"
    assert "python3 tasks.py reproduce" in text and "python3 tasks.py test" in text
    assert landing.count("<table") == prose.count("\n|---"), "a README table is not rendered"
    for nb in NOTEBOOKS:
        assert f'href="../notebooks/{nb.stem}.html"' in landing, f"{nb.stem} not in the contents"
    assert not _dead_links(book / "docs" / "index.html")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_page_has_its_figures_and_math(book, nb):
    page_path = _page(book, nb)
    assert page_path.is_file(), f"no page for {nb.name}"
    page = page_path.read_text(encoding="utf-8")
    notebook = nbformat.read(nb, as_version=4)
    assert not _dead_links(page_path), "links to files missing from the build"
    assert f'href="../_sources/notebooks/{nb.name}"' in page, "no download of the notebook"

    # figures: the stored PNG outputs, and the files behind the page's images, as digests
    stored = [hashlib.sha256(base64.b64decode(out["data"]["image/png"])).hexdigest()
              for cell in notebook.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
    shown = []
    for src in _IMG.findall(page):
        if "_images/" in src:
            file = (page_path.parent / html.unescape(src)).resolve()
            assert file.is_file(), f"{nb.stem}: image {src} is not in the build"
            shown.append(hashlib.sha256(file.read_bytes()).hexdigest())
    assert sorted(shown) == sorted(stored), (
        f"{nb.stem}: {len(stored)} image outputs stored, {len(shown)} shown, or different bytes")

    # math: every $…$ and $$…$$ of the markdown in MathJax's delimiters, MathJax loaded
    text = _flat(html.unescape(page))
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        inline, display = _math(cell.source)
        for tex in inline:
            assert _flat(rf"\({tex}\)") in text, f"{nb.stem}: inline math ${tex}$ not rendered"
        for tex in display:
            assert _flat(rf"\[{tex}\]") in text, f"{nb.stem}: display math $${tex}$$ not rendered"
    assert re.search(r"<script[^>]+src=\"\.\./_static/mathjax/[^\"]*\"", page), \
        "the bundled MathJax is not loaded"


def test_math_extraction():
    cell = ("Rate $\\lambda_{max}$ and `$not math$`, costs \\$5; across a line $a +\n b$:\n"
            "$$\\tau = \\frac{\\ln 2}{\\lambda}$$\n```python\nx = '$y$'\n```")
    assert _math(cell) == (["\\lambda_{max}", "a +\n b"], ["\\tau = \\frac{\\ln 2}{\\lambda}"])


def test_paper_notes_page(book):
    notes = ROOT / "docs" / "paper-notes.md"
    if not notes.is_file():
        pytest.skip("docs/paper-notes.md is not in this tree")
    assert (book / "docs" / "paper-notes.html").is_file()
    landing = (book / "docs" / "index.html").read_text(encoding="utf-8")
    assert 'href="paper-notes.html"' in landing


_REMOTE = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]+\"",
                     re.I)


def test_no_page_loads_anything_from_the_network(book):
    """Offline: no script, stylesheet or image of any page comes from a server; MathJax is
    the bundled copy (sphinx-mathjax-offline), present in the build."""
    pages = sorted(book.rglob("*.html"))
    assert pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not _REMOTE.findall(text), f"{page.relative_to(book)}: {_REMOTE.findall(text)}"
    mathjax = book / "_static" / "mathjax" / "tex-chtml.js"
    assert mathjax.is_file() and mathjax.stat().st_size > 100_000


def test_no_page_shows_a_machine_path_or_a_warning(book):
    pages = sorted((book / "notebooks").glob("*.html")) + sorted((book / "docs").glob("*.html"))
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))
        for bad in ("/home/", "/root/", "/work/", "site-packages", "TqdmWarning",
                    "IPKernelApp"):
            assert bad not in text, f"{page.name}: {bad!r}"


def _committed_profiles() -> list[str]:
    return [p for p in ("quick", "medium", "paper")
            if (ROOT / "data" / "results" / f"comparison_{p}.json").is_file()]


@pytest.mark.parametrize("profile", _committed_profiles())
def test_results_page_of_each_committed_profile_shows_its_figures(book, profile):
    page_path = book / "docs" / f"results-{profile}.html"
    assert page_path.is_file(), f"no results page for {profile}"
    page = page_path.read_text(encoding="utf-8")
    assert not _dead_links(page_path)
    shown = {hashlib.sha256((page_path.parent / html.unescape(src)).read_bytes()).hexdigest()
             for src in _IMG.findall(page) if "_images/" in src}
    committed = sorted((ROOT / "figures").glob(f"0[6-9]_*_{profile}.png"))
    if profile == "quick":  # the quick figures carry no suffix
        committed += [f for f in sorted((ROOT / "figures").glob("0[6-9]_*.png"))
                      if not f.stem.endswith(("_medium", "_paper"))]
    assert committed
    for fig in committed:
        assert hashlib.sha256(fig.read_bytes()).hexdigest() in shown, f"{fig.name} not shown"
    text = _flat(html.unescape(re.sub(r"<[^>]+>", " ", page)))
    assert "τ effect hold?" in text
    for word in (" None ", " False ", " inf "):
        assert word not in text, word
    landing = (book / "docs" / "index.html").read_text(encoding="utf-8")
    assert f'href="results-{profile}.html"' in landing


def test_comparison_page_has_every_committed_table(book):
    page = (book / "docs" / "comparison.html").read_text(encoding="utf-8")
    text = _flat(html.unescape(re.sub(r"<[^>]+>", " ", page)))
    for profile in _committed_profiles():
        assert f"Profile {profile}" in text
    assert page.count("<table") >= len(_committed_profiles())


@pytest.mark.parametrize("stem", ["06_tau_sweep", "09_ablations"])
def test_checks_tables_speak_in_words(book, stem):
    """The stored Checks tables of notebooks 06 and 09 (their last output): verdicts are
    words, never Python's None/False or an infinite number."""
    notebook = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    last = [o for o in notebook.cells[-1].get("outputs", []) if "text/html" in o.get("data", {})]
    assert last, f"{stem}: the Checks cell shows no table"
    cells = re.findall(r"<td>(.*?)</td>", "".join(last[-1]["data"]["text/html"]), re.S)
    assert cells
    for bad in ("None", "False", "True", "inf", "NaN"):
        assert bad not in [c.strip() for c in cells], f"{stem}: a cell reads {bad}"


def test_results_page_says_not_scorable_where_the_sanity_rule_fails(book):
    """The medium page's τ-effect table reads "not scorable" for a data set whose own other
    stretch lies in the failed range under the row's protocol (``experiments.scorable``),
    "no"/"yes" elsewhere; every data set has its held-out row."""
    from chaosrnn_utils import experiments as ex

    page = (book / "docs" / "results-medium.html").read_text(encoding="utf-8")
    table = page.split("τ effect hold?", 1)[1].split("</table>", 1)[0]
    cell = r"<td><p>([^<]+)</p></td>\s*"
    rows = {(m[0], m[1]): m[2:] for m in re.findall(r"<td><p>(\w+)</p></td>\s*" + cell * 4,
                                                    table)}
    assert {d for d, p in rows if p == "heldout"} == set(ex.PAPER_TAUS)
    for (dataset, protocol), cells in rows.items():
        if ex.scorable(dataset, protocol, "medium"):
            assert set(cells) <= {"yes", "no"}, (dataset, protocol, cells)
        else:
            assert set(cells) == {"not scorable"}, (dataset, protocol, cells)
