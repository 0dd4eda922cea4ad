"""The runner: the command line, papermill, and the summary and comparison tables.

``python -m chaosrnn_utils reproduce --profile quick`` executes every notebook in
``notebooks/`` with papermill into ``build/notebooks/`` (git-ignored); each notebook records
its key numbers with :func:`~chaosrnn_utils.notebook.record_summary`, and the runner prints
them as one table (quantity, paper value, reproduced value) and writes the comparison with
the paper. ``sweep``, ``train``, ``gpu-run`` and ``gpu-unpack`` hand over to
:mod:`.sweeps`, :mod:`.experiments` and :mod:`.device_runner`. What the notebooks
themselves call is in :mod:`.notebook`.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from . import paths
from .notebook import PROFILES, SUMMARY_DIR, SUMMARY_ENV

#: notebooks the main job runs once per value of one parameter (the committed copy holds the
#: first value's run); executed copies are named ``<stem>_<value>.ipynb``
EXPANSIONS = {"06_tau_sweep": ("dataset", ("lorenz", "lorenz2d", "roessler", "duffing",
                                           "mackey_glass", "temperature", "eeg"))}

#: what the main job gives the notebooks that train, unless ``-p`` says otherwise: their own
#: default is to redraw the committed results (what nbval checks); ``reproduce`` trains
MAIN_JOB = {"06_tau_sweep": {"source": "train"}, "07_lorenz_attractors": {"source": "train"},
            "09_ablations": {"source": "train"}}
#: the notebooks whose results depend on the training budget: the only ones with ``medium``
#: settings (the others' quick run stands for them)
BUDGET_NOTEBOOKS = (*MAIN_JOB, "08_empirical_data")
#: what each training notebook redraws with ``source = "committed"`` (under
#: ``data/results/<profile>/``); a run without them is skipped, saying so
COMMITTED_INPUTS = {"06_tau_sweep": ("tau_sweep_{dataset}.csv",),
                    "07_lorenz_attractors": ("tau_sweep_lorenz.csv",
                                             "lorenz_lstm_attractors.pt"),
                    "08_empirical_data": ("tau_sweep_temperature.csv", "tau_sweep_eeg.csv"),
                    "09_ablations": ("ablations_lorenz.csv",)}


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


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


#: the comparison's rules, printed under the table (:func:`comparison_markdown`) and applied
#: by :func:`_match`
MATCH_RULES = (
    "match: **yes** when ours is within 25 % of the paper's number (|ours − paper| ≤ "
    "0.25·|paper|, no other slack) or meets the row's own stated rule (in its note); a sign "
    "claim (< 0, > 0) is checked; **asserted**: a qualitative claim its notebook asserts. "
    "Scores (lower is better) carry a failed range, at or above the row's threshold "
    "(`experiments.failure_threshold`): a row where one side failed and the other did not is "
    "**no**, whatever the relative difference; where both failed it is **both failed**. A "
    "best-τ row can match only when our best cell is a success (most runs scored, score "
    "below the threshold). convention: the metric convention of the numbers (authors: the "
    "paper's evaluation code; ours: box at the data mean, plain spectra)."
)


def _number(v: Any) -> float | None:
    """A number from a summary value: itself, the lower end of a range text such as
    ``"10–12"``, else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        head = v.replace("−", "-").split("–")[0].split("±")[0].strip()
        try:
            return float(head)
        except ValueError:
            return None
    return None


def _failed(value: Any, threshold: float) -> bool | None:
    """Whether a score lies in the failed range (≥ threshold, or not a finite number: NaN is
    a failure); None when the value is a claim without a number."""
    x = _number(value)
    if x is None:
        return None
    return not (math.isfinite(x) and x < threshold)


def _match(row: dict[str, Any]) -> str:
    """yes / no / both failed / asserted / – for one summary row (rules: :data:`MATCH_RULES`).

    Optional keys: ``failed_above`` (the failed-range threshold of our score, in the row's
    convention), ``paper_failed_above`` (the same for the paper's value, default
    ``failed_above``), ``score`` (our score behind a row whose ``reproduced`` is not itself a
    score, e.g. the D_stsp of our best-τ cell; NaN when no cell was mostly scored), ``match``
    (the notebook's own stated rule, used only where neither side failed)."""
    paper, ours = row["paper"], row["reproduced"]
    if paper is None or paper == "not in paper":
        return "–"
    threshold = row.get("failed_above")
    if threshold is not None:
        ours_score = row["score"] if "score" in row else ours
        ours_failed = _failed(ours_score, float(threshold))
        if "score" in row:  # a best-τ row: only our side has a score
            if ours_failed is not False:
                return "no"
        else:
            paper_failed = _failed(paper, float(row.get("paper_failed_above", threshold)))
            if paper_failed is not None and ours_failed is not None:
                if paper_failed and ours_failed:
                    return "both failed"
                if paper_failed != ours_failed:
                    return "no"
    if "match" in row and row["match"] is not None:
        return "yes" if row["match"] else "no"
    if isinstance(paper, int | float) and isinstance(ours, int | float):
        return "yes" if abs(ours - paper) <= 0.25 * abs(paper) else "no"
    if paper in ("< 0", "> 0") and isinstance(ours, int | float):
        return "yes" if (ours < 0) == (paper == "< 0") else "no"
    return "asserted"


def comparison_rows(profile: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """The summary rows recorded at ``profile`` (in ``folder``, default :func:`summary_dir`),
    each with ``notebook``, ``match`` (:func:`_match`) and ``note`` (:func:`_note`) filled
    in: what the comparison tables show."""
    folder = summary_dir(profile) if folder is None else folder
    out = []
    for f in sorted(folder.glob("*.json")):
        for r in json.loads(f.read_text()):
            out.append(dict(notebook=f.stem[:2], quantity=r["quantity"], paper=r["paper"],
                            reproduced=r["reproduced"], convention=r.get("convention", "–"),
                            profile=r.get("profile", profile), match=_match(r), note=_note(r)))
    return out


def _cells(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def comparison_markdown(profile: str, folder: Path | None = None) -> str:
    """The paper-vs-ours table (markdown) of the summary rows recorded by a run of the
    notebooks (:func:`comparison_rows`): quantity, the paper's value or claim, ours, the
    metric convention (– where none applies), the profile, match, note; then the rules,
    :data:`MATCH_RULES`."""
    lines = ["| notebook | quantity | paper | ours | convention | profile | match | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in comparison_rows(profile, folder):
        lines.append(_cells([r["notebook"], r["quantity"], _fmt(r["paper"]),
                             _fmt(r["reproduced"]), r["convention"], r["profile"], r["match"],
                             r["note"]]))
    return "\n".join(lines) + "\n\n" + MATCH_RULES + "\n"


def _note(row: dict[str, Any]) -> str:
    """The row's note, with its failed-range threshold when it has one."""
    note = str(row.get("note", ""))
    if row.get("failed_above") is not None:
        extra = f"failed range ≥ {float(row['failed_above']):.3g}"
        if row.get("paper_failed_above") is not None:
            extra += f" (paper's convention: ≥ {float(row['paper_failed_above']):.3g})"
        note = f"{note}; {extra}" if note else extra
    return note


README_START, README_END = "<!-- comparison:start -->", "<!-- comparison:end -->"


#: what each profile spends, for the README's column headers
BUDGETS = {"quick": "100 epochs (Lorenz and ablations: 300), 2–3 seeds, coarse τ grids",
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
    keys: dict[tuple[str, str], dict[str, Any]] = {}
    for p, rows in tables.items():
        for r in rows:
            keys.setdefault((r["notebook"], r["quantity"]), {"paper": r["paper"],
                                                             "convention": r["convention"]})
            keys[(r["notebook"], r["quantity"])][p] = r
    head = "".join(f"- `{p}`: {BUDGETS[p]}; every note in "
                   f"[`data/results/comparison_{p}.md`](data/results/comparison_{p}.md)\n"
                   for p in tables)
    lines = [_cells(["notebook", "quantity", "paper", *tables, "convention"]),
             "|" + "---|" * (4 + len(tables))]
    for (nb, quantity), entry in keys.items():
        cols = [f"{_fmt(entry[p]['reproduced'])} · {entry[p]['match']}" if p in entry else "–"
                for p in tables]
        lines.append(_cells([nb, quantity, _fmt(entry["paper"]), *cols, entry["convention"]]))
    return (f"_Generated by `python3 tasks.py reproduce` (per profile)._\n\n{head}\n"
            + "\n".join(lines) + "\n\n" + MATCH_RULES + "\n")


def notebooks(pattern: str = "[0-9][0-9]_*.ipynb") -> list[Path]:
    """The pipeline's notebooks, in order."""
    return sorted(paths.NOTEBOOKS_DIR.glob(pattern))


def select_notebooks(prefixes: Sequence[str] | None) -> list[Path]:
    """The notebooks whose names start with one of ``prefixes`` (all of them for None); a
    prefix that matches no notebook raises ValueError."""
    every = notebooks()
    if prefixes is None:
        return every
    if not prefixes:
        raise ValueError("--only needs at least one notebook prefix, e.g. --only 01 03")
    for prefix in prefixes:
        if not any(nb.name.startswith(prefix) for nb in every):
            raise ValueError(f"--only {prefix}: no notebook starts with {prefix!r} "
                             f"(notebooks: {', '.join(nb.stem for nb in every)})")
    return [nb for nb in every if any(nb.name.startswith(p) for p in prefixes)]


# -------------------------------------------------------------------- notebook parameters

_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,),
                                       "bool": (bool,), "list": (list,), "dict": (dict,)}
_DECLARED: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}


def notebook_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    """The parameters cell of ``notebook`` as :func:`papermill.inspect_notebook` reads it
    (name → ``default``, ``inferred_type_name``, ``help``); cached per file version."""
    import papermill

    key = (str(notebook), notebook.stat().st_mtime_ns)
    if key not in _DECLARED:
        _DECLARED[key] = papermill.inspect_notebook(str(notebook))
    return _DECLARED[key]


def _expected_type(info: dict[str, Any]) -> tuple[str, tuple[type, ...]] | None:
    """(name, accepted types) of a parameter: its annotation when papermill infers a simple
    one, else the type of its literal default; None when there is nothing to check."""
    name = str(info.get("inferred_type_name"))
    if name in _TYPES:
        return name, _TYPES[name]
    try:
        default = ast.literal_eval(str(info.get("default")))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None  # an expression: no literal type
    name = type(default).__name__
    return (name, _TYPES[name]) if name in _TYPES else None


def check_parameters(notebook: Path, parameters: dict[str, Any]) -> None:
    """Raise ValueError when a parameter is not in the notebook's ``parameters`` cell, its
    value is not of the type of the cell's default (an int for an int, a number for a float,
    text for text), or the profile is unknown (papermill itself only warns, and the kernel
    fails later, if at all)."""
    known = notebook_parameters(notebook)
    if not known:
        raise ValueError(f"{notebook.name} has no cell tagged 'parameters'")
    for name, value in parameters.items():
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{notebook.name}: unknown parameter {name!r}{hint} "
                f"(parameters: {', '.join(known)})"
            )
        expected = _expected_type(known[name])
        if expected is None:
            continue
        type_name, types = expected
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ValueError(
                f"{notebook.name}: parameter {name!r} must be {type_name} (default "
                f"{known[name]['default']}), got {value!r} ({type(value).__name__})"
            )
    if parameters.get("profile", "quick") not in PROFILES:
        raise ValueError(f"unknown profile {parameters['profile']!r}: use one of {PROFILES}")


class Run(NamedTuple):
    """One notebook execution of ``reproduce``: its parameters, the executed copy's name
    (None: the notebook's) and, for a run that cannot happen here, why it is skipped."""

    notebook: Path
    parameters: dict[str, Any]
    name: str | None = None
    skip: str | None = None


def plan_reproduce(selected: Sequence[Path], profile: str,
                   given: dict[str, Any] | None = None, committed: bool = False) -> list[Run]:
    """The runs of ``reproduce``, every parameter checked before any kernel starts.

    ``profile`` goes to every notebook, :data:`MAIN_JOB`'s values to theirs (unless
    ``committed``: then they redraw the committed results); at ``medium`` only the notebooks
    of :data:`BUDGET_NOTEBOOKS` run, the others are skipped saying so; each of ``given``
    (the ``-p`` values, ``--seed`` as ``seed``) goes to the selected notebooks whose
    parameters cell declares it, and wins.
    Refused (ValueError): ``profile`` in ``given`` (only ``--profile`` sets it), a name no
    selected notebook declares, a value of the wrong type. A notebook of :data:`EXPANSIONS` is
    run once per value of its parameter, or once with the value given; a data set given but
    not available here raises FileNotFoundError, one left to the loop is skipped.
    """
    given = dict(given or {})
    if "profile" in given:
        raise ValueError("the profile is set with --profile, not with -p profile")
    declared = {nb: notebook_parameters(nb) for nb in selected}
    names = sorted(set().union(*declared.values())) if declared else []
    for name in given:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown parameter {name!r}: no selected notebook declares it"
                             f"{hint} (parameters: {', '.join(names)})")
    runs = []
    for nb in selected:
        main_job = {} if committed else MAIN_JOB.get(nb.stem, {})
        params = {"profile": profile, **main_job,
                  **{k: v for k, v in given.items() if k in declared[nb]}}
        check_parameters(nb, params)
        if profile == "medium" and nb.stem not in BUDGET_NOTEBOOKS:
            runs.append(Run(nb, params, skip="no medium settings: its quick run stands"))
            continue
        if nb.stem not in EXPANSIONS:
            runs.append(Run(nb, params))
            continue
        from .experiments import dataset_available

        key, values = EXPANSIONS[nb.stem]
        if key in params and params[key] not in values:
            close = difflib.get_close_matches(str(params[key]), values, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{nb.name}: unknown {key} {params[key]!r}{hint} "
                             f"(known: {', '.join(values)})")
        for value in [params[key]] if key in params else values:
            skip = None
            if key == "dataset" and not dataset_available(value):
                skip = "the authors' data file is not here, see data/README.md"
                if key in given:
                    raise FileNotFoundError(f"{nb.name}: {key} {value!r}: {skip}")
            runs.append(Run(nb, {**params, key: value}, f"{nb.stem}_{value}.ipynb", skip))
    return [r if r.skip else r._replace(skip=_missing_committed(r)) for r in runs]


def _missing_committed(run: Run) -> str | None:
    """Why a training notebook that redraws committed results cannot run (its tables of
    :data:`COMMITTED_INPUTS` are not committed at its profile), None when it can."""
    source = run.parameters.get("source", "committed")
    if run.notebook.stem not in COMMITTED_INPUTS or source != "committed":
        return None
    folder = paths.RESULTS_DIR / run.parameters["profile"]
    missing = [name.format(**run.parameters) for name in COMMITTED_INPUTS[run.notebook.stem]]
    missing = [m for m in missing if not (folder / m).exists()]
    if not missing:
        return None
    where = folder.relative_to(paths.ROOT) if folder.is_relative_to(paths.ROOT) else folder
    return (f"no committed {', '.join(missing)} in {where} yet "
            f"(python3 tasks.py train --profile {run.parameters['profile']})")


# -------------------------------------------------------------------- execution


def _execute(notebook: Path, output: Path, parameters: dict[str, Any] | None = None) -> None:
    """papermill with kernel ``python3`` in ``notebooks/``. The kernel's stdout and stderr are
    forwarded as they come (the notebooks' messages, the sweeps' per-job lines and training
    bars: which sweep, which architecture, epochs done, time left); papermill's own cell
    counter is off, it would overwrite the forwarded bars."""
    import papermill

    papermill.execute_notebook(
        str(notebook), str(output), parameters=parameters or {}, kernel_name="python3",
        cwd=str(notebook.parent), progress_bar=False, stdout_file=sys.stdout,
        stderr_file=sys.stderr,
    )


def run_notebook(notebook: Path, parameters: dict[str, Any], out_dir: Path,
                 name: str | None = None) -> Path:
    """Execute one notebook with papermill (kernel ``python3``, cwd ``notebooks/``) into
    ``out_dir`` (as ``name``, by default the notebook's); the source is never written."""
    check_parameters(notebook, parameters)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / (name or notebook.name)
    _execute(notebook, output, parameters)
    return output


@contextmanager
def staged_summary(profile: str = "quick") -> Iterator[Path]:
    """A staging folder for the summary of one notebook run: the kernel, which inherits
    ``$CHAOSRNN_SUMMARY_DIR``, records there; when the block succeeds its files replace their
    namesakes in :func:`summary_dir` of ``profile``. A failed run changes nothing: the other
    notebooks' entries and the last good run's stay."""
    target = summary_dir(profile)
    target.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=target, prefix=".run-"))
    before = os.environ.get(SUMMARY_ENV)
    os.environ[SUMMARY_ENV] = str(stage)
    try:
        yield stage
        for f in sorted(stage.glob("*.json")):
            os.replace(f, target / f.name)
    finally:
        if before is None:
            os.environ.pop(SUMMARY_ENV, None)
        else:
            os.environ[SUMMARY_ENV] = before
        shutil.rmtree(stage, ignore_errors=True)


def refresh_notebook(notebook: Path) -> None:
    """Re-execute a paired notebook with its default parameters (the ``quick`` profile) and
    store the outputs in the committed ``.ipynb``, without papermill's metadata, so that
    nbval validates the current code. The ``.py`` source is not touched."""
    import nbformat
    from nbstripout import strip_output

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / notebook.name
        _execute(notebook, out)
        nb = nbformat.read(out, as_version=4)
    nb = strip_output(nb, keep_output=True, keep_count=True, keep_id=True,
                      extra_keys=["metadata.papermill", "cell.metadata.papermill",
                                  "cell.metadata.execution"])
    nbformat.write(nb, notebook)


# -------------------------------------------------------------------- command line

#: what a command's input checks raise for bad input (json.JSONDecodeError is a ValueError;
#: PermissionError, FileNotFoundError, IsADirectoryError, … are OSErrors): caught at the
#: command line while the inputs are checked, before any notebook or training runs, and
#: reported as one line with exit status 2. Anything raised later keeps its traceback.
USER_ERRORS = (ValueError, KeyError, OSError)


def error_line(command: str, err: BaseException) -> str:
    """``chaosrnn <command>: error: <message>`` on one line."""
    if isinstance(err, KeyError) and err.args:
        message = str(err.args[0])
    elif isinstance(err, OSError) and err.strerror and err.filename is not None:
        message = f"{err.filename}: {err.strerror}"
    else:
        message = str(err) or type(err).__name__
    return f"chaosrnn {command}: error: {' '.join(message.split())}"


def check_data_dir() -> None:
    """Refuse a ``$CHAOSRNN_DATA_DIR`` that is not a folder (the loader would fall back to the
    other folders without a word)."""
    env = os.environ.get("CHAOSRNN_DATA_DIR")
    if env and not Path(env).is_dir():
        raise NotADirectoryError(f"CHAOSRNN_DATA_DIR={env} is not a folder: unset it or point "
                                 "it at the folder of the authors' data files (data/README.md)")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, ``chaosrnn <command>: error: …``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _given_parameters(pairs: Sequence[Sequence[str]], seed: int | None) -> dict[str, Any]:
    """The ``-p NAME VALUE`` pairs (JSON values, else text) and ``--seed``; a name given twice
    is refused."""
    given: dict[str, Any] = {}
    for name, text in pairs:
        if name in given:
            raise ValueError(f"-p {name} given twice")
        given[name] = _parse_value(text)
    if seed is not None:
        if "seed" in given:
            raise ValueError("the seed is given twice: use --seed or -p seed, not both")
        given["seed"] = seed
    return given


_BITWISE_HELP = ("the same last bits on any x86-64 CPU (portable kernels, slower; "
                 "see chaosrnn_utils.bitwise)")


def _build_parser() -> argparse.ArgumentParser:
    from . import sweeps

    parser = _Parser(prog="chaosrnn", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="run the notebooks with papermill, print the summary")
    rep.add_argument("--profile", default="quick", choices=PROFILES)
    rep.add_argument("--seed", type=int, help="seed of the notebooks that declare one "
                     "(default: each notebook's own)")
    rep.add_argument("--only", nargs="+", help="notebook name prefixes, e.g. 01 03")
    rep.add_argument("--bitwise", action="store_true", help=_BITWISE_HELP)
    rep.add_argument("--lanes", type=sweeps.positive_int_arg, default=1,
                     help="with 2 or more, the notebooks that do not train (01-05) run in a "
                     "second process beside the training ones (a whole run only; "
                     "`tasks.py reproduce` uses 2)")
    rep.add_argument("--committed", action="store_true", help="redraw the training notebooks "
                     "from the committed results instead of training (see the train command)")
    rep.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"),
                     help="notebook parameter (JSON value, else text), given to the selected "
                     "notebooks that declare it; checked against their parameters cells")
    summ = sub.add_parser("summary", help="print the summary table of the last run")
    summ.add_argument("--profile", default="quick", choices=PROFILES)
    ref = sub.add_parser("refresh", help="re-execute notebooks (defaults) into their .ipynb")
    ref.add_argument("--only", nargs="+", help="notebook name prefixes, e.g. 01 03")
    swp = sub.add_parser("sweep", help="train and evaluate a grid of configurations "
                         "(resumable; exit status 3 when a time limit left it incomplete)")
    sweeps.add_arguments(swp)
    swp.add_argument("--bitwise", action="store_true", help=_BITWISE_HELP)
    gpu = sub.add_parser("gpu-run", help="one budgeted device window of the paper profile "
                         "(exit status 3: sweeps left for another window; 1: self-check failed)")
    gpu.add_argument("--budget-s", type=sweeps.seconds_arg, required=True,
                     help="seconds for the whole window (self-check and packing included)")
    gpu.add_argument("--state", required=True, help="committed state folder (archives)")
    gpu.add_argument("--out", required=True, help="folder for the files to bring back")
    gpu.add_argument("--profile", default="paper", choices=PROFILES)
    gpu.add_argument("--spec", nargs="+", help="sweep spec JSON files instead of the profile")
    gpu.add_argument("--device", help="torch device (default: cuda if available)")
    gpu.add_argument("--no-self-check", action="store_true")
    gpu.add_argument("--check-only", action="store_true", help="the self-check alone")
    gpu.add_argument("--eval-device", default="cpu",
                     help="where finished sweeps are evaluated: cpu (default) or same")
    unp = sub.add_parser("gpu-unpack", help="bring a gpu-run's files into the committed state")
    unp.add_argument("--from", dest="from_dir", required=True, help="the gpu-run --out folder")
    unp.add_argument("--state", required=True, help="committed state folder")
    unp.add_argument("--results", required=True, help="folder for the finished tables")
    trn = sub.add_parser("train", help="train every sweep of a profile (resumable, in "
                         "time-limited chunks whose finished parts are committed)")
    trn.add_argument("--profile", default="medium", choices=("quick", "medium", "paper"))
    trn.add_argument("--time-limit", type=sweeps.seconds_arg, help="seconds for this call")
    trn.add_argument("--workers", type=sweeps.positive_int_arg, default=2)
    trn.add_argument("--only", nargs="+", help="sweep names, e.g. tau_sweep_lorenz")
    trn.add_argument("--fresh", action="store_true", help="ignore the committed parts "
                     "(train everything here) and leave them as they are")
    trn.add_argument("--bitwise", action="store_true", help=_BITWISE_HELP)
    return parser


def train_main(args: argparse.Namespace) -> int:
    """The ``train`` command: :func:`~chaosrnn_utils.experiments.train_profile`; exit status
    3 when the time limit left sweeps unfinished (run it again to continue)."""
    from . import experiments, sweeps

    try:
        check_data_dir()
        done = experiments.train_profile(args.profile, time_limit=args.time_limit,
                                         workers=args.workers, only=args.only,
                                         committed_parts=not args.fresh)
    except USER_ERRORS as err:
        print(error_line(args.command, err), file=sys.stderr)
        return 2
    for name, complete in done.items():
        print(f"{name}: {'complete' if complete else 'pending (run again to continue)'}")
    return 0 if all(done.values()) else sweeps.EXIT_INCOMPLETE


def _start_side_lane(runs: list[Run], args: argparse.Namespace, out_dir: Path
                     ) -> tuple[tuple[Any, Path, list[str]] | None, list[Run]]:
    """Start the notebooks that neither train nor read training results (01–05: everything
    outside :data:`BUDGET_NOTEBOOKS`) in a second ``reproduce`` process, beside this one's
    training notebooks, whose sweeps use the other cores' workers; its output goes to
    ``<out_dir>/side-lane.log``. Returns ((process, log, notebooks) or None, the runs left
    here)."""
    mine = [r for r in runs if r.notebook.stem in BUDGET_NOTEBOOKS or r.skip is not None]
    theirs = sorted({r.notebook.stem for r in runs if r not in mine})
    if not theirs or len(mine) == len(runs) or not any(r.skip is None for r in mine):
        return None, runs
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "side-lane.log"
    command = [sys.executable, "-m", "chaosrnn_utils", "reproduce", "--profile", args.profile,
               "--lanes", "1", "--only", *theirs]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    with open(log, "w") as fh:
        proc = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, cwd=paths.ROOT)
    print(f"== {', '.join(theirs)}: in a second process beside the others (log: {log})",
          flush=True)
    return (proc, log, theirs), mine


def _finish_side_lane(proc: Any, log: Path, notebooks: list[str]) -> int:
    """Wait for the side lane of :func:`_start_side_lane`; print its notebooks' output
    (without the summary table it printed); its exit status."""
    code = proc.wait()
    text = log.read_text(errors="replace")
    print(f"== {', '.join(notebooks)} (second process, exit status {code}):", flush=True)
    print(text.split("\nExecuted notebooks:", 1)[0].rstrip() + "\n", flush=True)
    if code != 0:
        print(f"chaosrnn reproduce: error: the second process failed (log: {log})",
              file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``chaosrnn`` or ``python -m chaosrnn_utils``). Bad input is
    one line on stderr, ``chaosrnn <command>: error: …``, and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    if getattr(args, "bitwise", False):
        from . import bitwise

        bitwise.reexec_bitwise(argv)  # a new process unless the settings are in effect
        print("bitwise mode: " + " ".join(f"{k}={os.environ[k]}" for k in bitwise.bitwise_env({})),
              flush=True)

    if args.command == "sweep":
        from . import sweeps

        return sweeps.sweep_main(args)

    if args.command == "train":
        return train_main(args)

    if args.command in ("gpu-run", "gpu-unpack"):
        from . import device_runner

        return device_runner.gpu_main(args)

    if args.command == "summary":
        print(summary_table(profile=args.profile))
        return 0
    try:
        check_data_dir()
        selected = select_notebooks(args.only)
        if args.command == "reproduce":
            given = _given_parameters(args.parameter, args.seed)
            runs = plan_reproduce(selected, args.profile, given, args.committed)
    except USER_ERRORS as err:
        print(error_line(args.command, err), file=sys.stderr)
        return 2
    if args.command == "refresh":
        for nb in selected:
            print(f"== refreshing {nb.name}", flush=True)
            refresh_notebook(nb)
        return 0
    out_dir = paths.BUILD_DIR / "notebooks" / args.profile
    side = None
    # reproduce refreshes the committed outputs: its notebooks write figures/ and
    # data/results/ (any other run of a notebook writes build/, see paths.figures_out)
    with paths.publishing_outputs():
        if args.lanes > 1 and not args.only and not args.parameter:
            side, runs = _start_side_lane(runs, args, out_dir)
        for run in runs:
            extra = "".join(f" {k}={v}" for k, v in run.parameters.items() if k != "profile")
            if run.skip is not None:
                print(f"== {run.notebook.name}{extra}: skipped ({run.skip})", flush=True)
                continue
            print(f"== {run.notebook.name}{extra} (profile {args.profile})", flush=True)
            with staged_summary(args.profile):
                run_notebook(run.notebook, run.parameters, out_dir, run.name)
    if side is not None and _finish_side_lane(*side) != 0:
        return 1
    print(f"\nExecuted notebooks: {out_dir}\nFigures: {paths.FIGURES_DIR}\n")
    print(summary_table(profile=args.profile))
    if not args.only and not args.parameter and args.seed is None:
        # a whole run with the defaults: the committed comparison table and the README's copy
        print(f"\nComparison table: {write_comparison(args.profile)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
