"""Sphinx configuration of the book: ``python3 tasks.py book`` builds it into ``build/book/``.

The source directory is the repository root (``sphinx-build -c docs . build/book``), so that
the README, the notebooks and ``docs/*.md`` are read where they live, never copied. The
notebooks are rendered from their stored outputs and are not executed.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "figures"
RESULTS = ROOT / "data" / "results"
#: the profiles whose committed results get a page (docs/results-<profile>.md), in order
PROFILES = ("quick", "medium", "paper")
#: the data sets of the τ sweeps, in the order of the pages
DATASETS = ("lorenz", "lorenz2d", "roessler", "duffing", "mackey_glass", "temperature", "eeg")

project = "chaosrnn"
author = "chaosrnn contributors"

# MathJax 3 from the pinned sphinx-mathjax-offline package, copied into build/book/_static:
# formulas render without a network
extensions = ["myst_nb", "sphinx-mathjax-offline"]
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
html_static_path = ["_static"]
html_css_files = ["book.css"]  # wide text column, tables and code that wrap


def _notes_toctree(app, docname: str, source: list[str]) -> None:
    """Append a 'Notes' toctree of the ``docs/*.md`` pages that docs/index.md does not list
    (the paper notes, the GPU page) to the landing page, listing only the pages that exist
    in this tree."""
    if docname != root_doc:
        return
    listed = set((ROOT / "docs" / "index.md").read_text(encoding="utf-8").split())
    notes = sorted(p.stem for p in (ROOT / "docs").glob("*.md")
                   if p.name != "index.md" and p.stem not in listed)
    if notes:
        entries = "\n".join(notes)
        source[0] += f"\n```{{toctree}}\n:caption: Notes\n:maxdepth: 1\n\n{entries}\n```\n"


def _figure(stem: str, profile: str) -> str | None:
    """The committed figure ``figures/<stem>_<profile>.png`` (quick: also ``<stem>.png``),
    as a path relative to docs/, or None."""
    for name in (f"{stem}_{profile}.png", *((f"{stem}.png",) if profile == "quick" else ())):
        if (FIGURES / name).is_file():
            return f"../figures/{name}"
    return None


def _cell(v: object) -> str:
    text = "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
    return text.replace("|", "\\|")


def _checks(rows: list[dict], strip: str = "") -> str:
    """Rows of a comparison table as a five-column markdown table (quantity, paper, ours,
    the metric convention of the numbers, match) with the notes in a details block below."""
    if not rows:
        return ""
    lines = ["| quantity | paper | ours | convention | protocol | match |",
             "|---|---|---|---|---|---|"]
    notes = []
    for r in rows:
        q = r["quantity"].removeprefix(strip)
        lines.append(f"| {_cell(q)} | {_cell(r['paper'])} | {_cell(r['reproduced'])} | "
                     f"{_cell(r.get('convention', '–'))} | {_cell(r.get('protocol', '–'))} | "
                     f"{_cell(r['match'])} |")
        if r.get("note"):
            notes.append(f"<li><b>{html.escape(q)}</b>: {html.escape(r['note'])}</li>")
    out = "\n".join(lines) + "\n"
    if notes:
        out += ("\n<details><summary>Notes on these rows (conventions, failed ranges)</summary>"
                "<ul>" + "".join(notes) + "</ul></details>\n")
    return out + "\n"


def _effect_table(rows: list[dict]) -> str:
    """Per data set and architecture, whether Fig. 2's τ effect holds (the comparison's
    'τ effect' rows of notebook 06): yes, no, or not scorable (the data set fails the sanity
    rule under the row's protocol, so no run of it can be called a success or a failure)."""
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        if r["notebook"] == "06" and ": τ effect" in r["quantity"]:
            d, arch = r["quantity"].split(":")[0].split()
            cells.setdefault((d, r.get("protocol", "heldout")), {})[arch] = (
                "yes" if r["reproduced"] == "holds"
                else "not scorable" if "not scorable" in r.get("note", "") else "no")
    if not cells:
        return ""
    lines = ["| data set | protocol | RNN | PLRNN | LSTM |", "|---|---|---|---|---|"]
    names = [d for d, _ in cells]
    for d in [*DATASETS, *sorted(set(names) - set(DATASETS))]:
        for protocol in ("heldout", "paper"):
            if (d, protocol) in cells:
                c = cells[d, protocol]
                lines.append(f"| {d} | {protocol} | {c.get('rnn', '–')} | "
                             f"{c.get('plrnn', '–')} | {c.get('lstm', '–')} |")
    return "\n".join(lines) + "\n\n"


def results_page(profile: str) -> str:
    """The body of docs/results-<profile>.md: every committed figure of notebooks 06-09 at
    ``profile`` and its checks from ``data/results/comparison_<profile>.json``."""
    comparison = RESULTS / f"comparison_{profile}.json"
    rows = json.loads(comparison.read_text(encoding="utf-8")) if comparison.is_file() else []
    figures = sorted(FIGURES.glob(f"0[6-9]_*_{profile}.png"))
    if not rows and not figures:
        return (f"No results of the `{profile}` profile are committed yet. Train them with\n\n"
                f"```bash\npython3 tasks.py reproduce --profile {profile}\n```\n\n"
                "(see [Profiles and parameters](usage.md)).\n")
    out = [f"What notebooks 06–09 drew from the committed tables of the `{profile}` profile "
           f"(`data/results/{profile}/`), and their checks against the paper "
           f"(all rows: [comparison](comparison.md)). Redraw them with "
           f"`python3 tasks.py reproduce --profile {profile} --committed`.\n"]
    effect = _effect_table(rows)
    if effect:
        out += ["## Does the paper's τ effect hold?\n",
                "Per data set and architecture: the best τ lies near τ_pred and its median "
                "D_stsp is at least 10× below those at τ = 5, at the largest τ and under "
                "clipped BPTT (`claims.tau_effect`).\n", effect]
    out.append("## 06 · τ sweeps\n")
    for d in DATASETS:
        sweep, curves = _figure(f"06_tau_sweep_{d}", profile), \
            _figure(f"06_learning_curves_{d}", profile)
        whole = _figure(f"06_tau_sweep_whole_{d}", profile)
        mine = [r for r in rows if r["notebook"] == "06" and r["quantity"].startswith(f"{d} ")]
        if not (sweep or curves or mine):
            continue
        out.append(f"### {d}\n")
        out += [f"![τ sweep, {d}, {profile}]({sweep})\n" for _ in [0] if sweep]
        out += [f"![τ sweep under the whole-series protocol, {d}, {profile}]({whole})\n"
                for _ in [0] if whole]
        out += [f"![learning curves, {d}, {profile}]({curves})\n" for _ in [0] if curves]
        out.append(_checks(mine, f"{d} "))
    for nb, stem, title in (("07", "07_lorenz_attractors", "07 · Lorenz-63 attractors"),
                            ("08", "08_empirical_data", "08 · Empirical data"),
                            ("09", "09_ablations", "09 · Ablations")):
        fig = _figure(stem, profile)
        mine = [r for r in rows if r["notebook"] == nb]
        if fig or mine:
            out.append(f"## {title}\n")
            out += [f"![{title}, {profile}]({fig})\n" for _ in [0] if fig]
            out.append(_checks(mine))
    return "\n".join(out)


def comparison_page() -> str:
    """The body of docs/comparison.md: per profile, ``data/results/comparison_<profile>.md``."""
    out = []
    for profile in PROFILES:
        table = RESULTS / f"comparison_{profile}.md"
        if table.is_file():
            out += [f"## Profile {profile}\n", table.read_text(encoding="utf-8"), ""]
    return "\n".join(out) or "No comparison table is committed yet.\n"


def _generated(app, docname: str, source: list[str]) -> None:
    """Fill the generated pages: results-<profile> and comparison (their files hold the
    title and a marker)."""
    marker = "<!-- generated -->"
    if marker not in source[0]:
        return
    name = docname.rsplit("/", 1)[-1]
    if name.startswith("results-"):
        body = results_page(name.removeprefix("results-"))
    elif name == "comparison":
        body = comparison_page()
    else:
        return
    source[0] = source[0].replace(marker, body)


def setup(app):
    app.connect("source-read", _notes_toctree)
    app.connect("source-read", _generated)
    return {"parallel_read_safe": True}
