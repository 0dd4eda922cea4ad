"""The summary and the paper-vs-ours comparison tables: the rows the notebooks recorded
(:func:`summary_dir`), as a text table (:func:`summary_table`), as the comparison with the
paper (:func:`comparison_markdown`, verdicts by :mod:`.verdict`), written to
``data/results/comparison_<profile>.md`` and the README's block (:func:`write_comparison`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import paths
from .notebook import PROFILES, SUMMARY_DIR
from .verdict import MATCH_RULES, _cells, _fmt, _match, _note, _protocol


def summary_dir(profile: str) -> Path:
    """``build/summary/<profile>/``: the rows the last run of each notebook recorded at
    ``profile``."""
    return SUMMARY_DIR / profile


def summary_table(folder: Path | None = None, profile: str = "quick") -> str:
    """All rows recorded in ``folder`` (default: :func:`summary_dir` of ``profile``) as a
    fixed-width text table, notebook by notebook."""
    summary_dir_ = summary_dir(profile) if folder is None else folder
    lines = []
    header = ("notebook", "quantity", "paper", "reproduced", "note")
    rows = []
    for f in sorted(summary_dir_.glob("*.json")):
        for r in json.loads(f.read_text()):
            rows.append((f.stem[:2], r["quantity"], _fmt(r["paper"]), _fmt(r["reproduced"]),
                         r.get("note", "")))
    if not rows:
        return "(no summary recorded)"
    widths = [max(len(str(x[i])) for x in rows + [header]) for i in range(4)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths) + "  {}"
    lines.append(fmt.format(*header))
    lines.append("-" * (sum(widths) + 2 * 4 + 4))
    lines.extend(fmt.format(*r) for r in rows)
    return "\n".join(lines)


def comparison_rows(profile: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """The summary rows recorded at ``profile`` (in ``folder``, default :func:`summary_dir`),
    each with ``notebook``, ``protocol`` (:func:`_protocol`), ``match`` (:func:`_match`) and
    ``note`` (:func:`_note`) filled in: what the comparison tables show."""
    folder = summary_dir(profile) if folder is None else folder
    out = []
    for f in sorted(folder.glob("*.json")):
        for r in json.loads(f.read_text()):
            out.append(dict(notebook=f.stem[:2], quantity=r["quantity"], paper=r["paper"],
                            reproduced=r["reproduced"], convention=r.get("convention", "–"),
                            protocol=_protocol(r), profile=r.get("profile", profile),
                            match=_match(r), note=_note(r)))
    return out


def comparison_markdown(profile: str, folder: Path | None = None) -> str:
    """The paper-vs-ours table (markdown) of the summary rows recorded by a run of the
    notebooks (:func:`comparison_rows`): quantity, the paper's value or claim, ours, the
    metric convention (– where none applies), the evaluation protocol of ours, the profile,
    match, note; then the rules, :data:`MATCH_RULES`."""
    lines = ["| notebook | quantity | paper | ours | convention | protocol | profile | match "
             "| note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in comparison_rows(profile, folder):
        lines.append(_cells([r["notebook"], r["quantity"], _fmt(r["paper"]),
                             _fmt(r["reproduced"]), r["convention"], r["protocol"],
                             r["profile"], r["match"], r["note"]]))
    return "\n".join(lines) + "\n\n" + MATCH_RULES + "\n"


README_START, README_END = "<!-- comparison:start -->", "<!-- comparison:end -->"


#: what each profile spends, for the README's column headers
BUDGETS = {"quick": "trains the Lorenz-63 LSTM (τ = 5, 30, 200 and clipped BPTT) and the "
                    "ablations' key conditions, 300 epochs, 3 seeds; its other rows are "
                    "the committed medium results (their notes say so)",
           "medium": "300 epochs, 3 seeds, the paper's τ grids up to 200, sequence length 200",
           "paper": "3 000 epochs, 5 seeds, the paper's grids and sequence lengths"}


def write_comparison(profile: str, folder: Path | None = None) -> Path:
    """Write ``data/results/comparison_<profile>.md`` (the full table with notes) and
    ``.json`` (its rows), then redraw the README's table between its comparison markers:
    one row per quantity of the quick run, one column per profile with committed rows
    (ours and the match), :func:`readme_table`."""
    target = paths.RESULTS_DIR / f"comparison_{profile}.md"
    with paths.atomic_open(target, "w") as fh:
        fh.write(comparison_markdown(profile, folder))
    with paths.atomic_open(target.with_suffix(".json"), "w") as fh:
        json.dump(comparison_rows(profile, folder), fh, indent=1, ensure_ascii=False)
    readme = paths.ROOT / "README.md"
    text = readme.read_text()
    if README_START in text and README_END in text:
        head, rest = text.split(README_START, 1)
        _, tail = rest.split(README_END, 1)
        block = f"{README_START}\n{readme_table()}{README_END}"
        with paths.atomic_open(readme, "w") as fh:
            fh.write(head + block + tail)
    return target


def readme_table() -> str:
    """The README's comparison: the rows of every committed ``comparison_<profile>.json``
    merged by (notebook, quantity), a column per profile ("ours · match"; – where that
    profile did not run the notebook), each profile's budget and full table named above."""
    tables = {p: json.loads((paths.RESULTS_DIR / f"comparison_{p}.json").read_text())
              for p in PROFILES if (paths.RESULTS_DIR / f"comparison_{p}.json").exists()}
    keys: dict[tuple[str, str, str], dict[str, Any]] = {}
    for p, rows in tables.items():
        for r in rows:
            key = (r["notebook"], r["quantity"], r.get("protocol", "–"))
            keys.setdefault(key, {"paper": r["paper"], "convention": r["convention"]})[p] = r
    head = "".join(f"- `{p}`: {BUDGETS[p]}; every note in "
                   f"[`data/results/comparison_{p}.md`](data/results/comparison_{p}.md)\n"
                   for p in tables)
    lines = [_cells(["notebook", "quantity", "paper", *tables, "convention", "protocol"]),
             "|" + "---|" * (5 + len(tables))]
    for (nb, quantity, protocol), entry in keys.items():
        cols = [f"{_fmt(entry[p]['reproduced'])} · {entry[p]['match']}" if p in entry else "–"
                for p in tables]
        lines.append(_cells([nb, quantity, _fmt(entry["paper"]), *cols, entry["convention"],
                             protocol]))
    return (f"_Generated by `python3 tasks.py reproduce` (per profile)._\n\n{head}\n"
            + "\n".join(lines) + "\n\n" + MATCH_RULES + "\n")
