"""The runner: the command line, papermill, and the summary and comparison tables.

``python -m chaosrnn_utils reproduce --profile quick`` executes every notebook in
``notebooks/`` with papermill into ``build/notebooks/`` (git-ignored); each notebook records
its key numbers with :func:`~chaosrnn_utils.notebook.record_summary`, and the runner prints
them as one table (quantity, paper value, reproduced value) and writes the comparison with
the paper. With ``--lanes 2`` (``tasks.py reproduce``) the notebooks and the sweep jobs
they wait for are the parts of one pool of two processes, started longest critical path
first (:func:`simulate`), after a plan with each part's estimate (:func:`plan_text`,
calibrated on this machine's epoch time) and with one progress line per part. The quick
main job trains what tests the claims its notebooks assert and redraws every other
training notebook from the best committed profile (:func:`plan_reproduce`).
``sweep``, ``train``, ``gpu-run`` and ``gpu-unpack`` hand over to
:mod:`.sweeps`, :mod:`.experiments` and :mod:`.device_runner`. What the notebooks
themselves call is in :mod:`.notebook`.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from . import paths
from .errors import USER_ERRORS, check_data_dir, error_line
from .notebook import PROFILES, SUMMARY_DIR, SUMMARY_ENV
from .validate import positive_int_arg, seconds_arg
from .verdict import MATCH_RULES, _cells, _fmt, _match, _note, _protocol

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
    (None: the notebook's), for a run that cannot happen here why it is skipped, and a note
    printed with the plan (a redraw: what it redraws and how to retrain instead)."""

    notebook: Path
    parameters: dict[str, Any]
    name: str | None = None
    skip: str | None = None
    note: str | None = None


#: what the quick main job trains (notebook, the parameter that selects the run or None):
#: the runs that test the claims its notebooks assert (Lorenz-63's τ effect with the LSTM,
#: the ablations' margins) and notebook 07, which reuses the Lorenz sweep; every other
#: training notebook's run redraws the best committed profile (:func:`best_committed`)
QUICK_TRAINED = {"06_tau_sweep": ("dataset", "lorenz"), "07_lorenz_attractors": None,
                 "09_ablations": None}
#: the profiles a redraw is taken from, best first
REDRAW_PROFILES = ("paper", "medium")


def committed_inputs(stem: str, parameters: dict[str, Any], profile: str) -> list[str]:
    """The tables of :data:`COMMITTED_INPUTS` that ``stem`` with ``parameters`` lacks under
    ``data/results/<profile>/`` (empty: it can redraw them)."""
    folder = paths.RESULTS_DIR / profile
    names = [n.format(**parameters) for n in COMMITTED_INPUTS.get(stem, ())]
    return [n for n in names if not (folder / n).exists()]


def best_committed(stem: str, parameters: dict[str, Any]) -> str | None:
    """The first profile of :data:`REDRAW_PROFILES` whose committed tables ``stem`` can
    redraw with ``parameters``, None when there is none."""
    return next((p for p in REDRAW_PROFILES
                 if not committed_inputs(stem, parameters, p)), None)


def training_estimate(run: Run, profile: str, lanes: int = 2) -> float:
    """Seconds the sweeps of ``run`` would take to train at ``profile`` on ``lanes`` cores of
    the committed machine (:func:`~.sweeps.job_estimate` of every job, ÷ ``lanes``)."""
    from . import sweeps

    trained = run._replace(parameters={**run.parameters, "profile": profile,
                                       "source": "train"})
    return sum(sweeps.job_estimate(spec, arch, len(index))
               for spec in _trained_specs(trained)
               for _, arch, index in sweeps.sweep_jobs(spec)) / lanes


def _retrain_hint(run: Run, profile: str) -> str:
    """The command that trains a redrawn run instead and what it costs (one line)."""
    stem = run.notebook.stem
    extra = "".join(f" -p {k} {v}" for k, v in run.parameters.items()
                    if k in ("dataset", "tau"))
    cost = training_estimate(run, profile)
    return (f"python3 tasks.py reproduce --profile {profile} --only {stem[:2]}{extra} "
            f"--train-all (about {_minutes(cost)} on 2 cores of the committed machine)")


def _quick_main_job(runs: list[Run]) -> list[Run]:
    """The quick main job's runs (:data:`QUICK_TRAINED` train at quick, the others redraw
    the best committed profile; for Lorenz-63's other architectures its whole committed
    sweep, so that the redraw rewrites that profile's figure with the same content), each
    redraw with its note."""
    out = []
    for run in runs:
        stem, params = run.notebook.stem, run.parameters
        if stem not in COMMITTED_INPUTS or run.skip is not None:
            out.append(run)
            continue
        trained = stem in QUICK_TRAINED and (
            QUICK_TRAINED[stem] is None
            or params.get(QUICK_TRAINED[stem][0]) == QUICK_TRAINED[stem][1])
        best = best_committed(stem, params)
        if trained:
            out.append(run._replace(parameters={**params, "source": "train"}))
            if stem == "06_tau_sweep" and best is not None:  # the architectures not trained
                from .experiments import ARCHITECTURES, tau_sweep_spec

                if set(ARCHITECTURES) - set(tau_sweep_spec(params["dataset"]).architectures):
                    # the whole committed sweep: its figure is the profile's one, never a part
                    out.append(_redraw(run, best))
            continue
        if best is None:  # nothing committed to redraw: train it at quick
            out.append(run._replace(parameters={**params, **MAIN_JOB.get(stem, {})}))
            continue
        out.append(_redraw(run, best))
    return out


def _redraw(run: Run, profile: str, extra: dict[str, Any] | None = None) -> Run:
    """``run`` redrawing the committed tables of ``profile``."""
    params = {**run.parameters, "profile": profile, "source": "committed", **(extra or {})}
    stem = run.notebook.stem
    name = (run.name or run.notebook.name).removesuffix(".ipynb") + f"_{profile}.ipynb"
    return Run(run.notebook, params, name,
               note=f"redraws the committed {profile} results; to train instead: "
                    f"{_retrain_hint(run._replace(parameters=params), profile)}"
               if stem != "08_empirical_data" else
               f"redraws the committed {profile} results (notebook 06's tables)")


def plan_reproduce(selected: Sequence[Path], profile: str,
                   given: dict[str, Any] | None = None, committed: bool = False, *,
                   train_all: bool = False, whole: bool = False) -> list[Run]:
    """The runs of ``reproduce``, every parameter checked before any kernel starts.

    ``profile`` goes to every notebook. What the training notebooks (:data:`MAIN_JOB`) do:
    with ``committed`` they redraw the committed results of ``profile``; with ``train_all``
    they train; a ``source`` given wins. Otherwise ``whole`` (the main job: every notebook,
    no ``-p``) at ``quick`` trains what :data:`QUICK_TRAINED` names and redraws the rest from
    the best committed profile (:func:`best_committed`); ``whole`` at another profile
    trains; a notebook run alone (``--only``, ``-p``) redraws the committed results of
    ``profile`` when they are there (its note says how to train instead), else trains.
    At ``medium`` only the notebooks
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
        if "source" in given and "source" in declared[nb]:
            main_job = {}
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
    if not committed and not train_all and "source" not in given:
        if whole and profile == "quick":
            runs = _quick_main_job(runs)
        elif not whole:
            runs = [_alone(r, profile) for r in runs]
    return [r if r.skip else r._replace(skip=_missing_committed(r)) for r in runs]


def _alone(run: Run, profile: str) -> Run:
    """A training notebook run alone: it redraws the committed results of ``profile`` when
    they are there (saying how to train instead), else trains as the main job does."""
    stem = run.notebook.stem
    if (run.skip is not None or stem not in MAIN_JOB
            or committed_inputs(stem, run.parameters, profile)):
        return run
    params = {k: v for k, v in run.parameters.items() if k != "source"}
    return run._replace(parameters=params,
                        note=f"redraws the committed {profile} results; to train instead: "
                             f"{_retrain_hint(run, profile)}")


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
    counter is off, it would overwrite the forwarded bars. The kernel logs errors only: its
    warning that a local kernel talks over TCP without encryption says nothing about the
    notebook (the notebook's own warnings still show)."""
    import papermill

    papermill.execute_notebook(
        str(notebook), str(output), parameters=parameters or {}, kernel_name="python3",
        cwd=str(notebook.parent), progress_bar=False, stdout_file=sys.stdout,
        stderr_file=sys.stderr, extra_arguments=["--IPKernelApp.log_level=ERROR"],
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
def staged_summary(profile: str = "quick", target: Path | None = None) -> Iterator[Path]:
    """A staging folder for the summary of one notebook run: the kernel, which inherits
    ``$CHAOSRNN_SUMMARY_DIR``, records there; when the block succeeds its files replace their
    namesakes in ``target`` (default :func:`summary_dir` of ``profile``). A failed run
    changes nothing: the other notebooks' entries and the last good run's stay."""
    target = summary_dir(profile) if target is None else target
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
    rep.add_argument("--lanes", type=positive_int_arg, default=1,
                     help="with 2 or more, every notebook and every sweep job is a part of "
                     "one pool of that many processes, the longest critical path first "
                     "(`tasks.py reproduce` uses 2); 1: the notebooks one after another")
    rep.add_argument("--committed", action="store_true", help="redraw the training notebooks "
                     "from the committed results instead of training (see the train command)")
    rep.add_argument("--train-all", action="store_true", help="train every training notebook "
                     "at the profile's budget (the quick main job otherwise trains only what "
                     "tests its asserted claims and redraws the rest from the committed "
                     "medium results; a notebook run alone redraws its profile's committed "
                     "results)")
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
    gpu.add_argument("--budget-s", type=seconds_arg, required=True,
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
    win = sub.add_parser("gpu-window", help="one whole device window in a budget: self-check "
                         "(no training on a failure), benchmark, training, packing (at most 8 "
                         "files under --out; exit status as gpu-run)")
    win.add_argument("--budget-s", type=seconds_arg, required=True,
                     help="seconds for the whole window")
    win.add_argument("--state", default="data/results/paper/state",
                     help="committed state folder (archives)")
    win.add_argument("--out", required=True, help="folder for the files to bring back")
    win.add_argument("--profile", default="paper", choices=PROFILES)
    win.add_argument("--spec", nargs="+", help="sweep spec JSON files instead of the profile")
    win.add_argument("--device", help="torch device (default: cuda if available)")
    win.add_argument("--eval-device", default="cpu",
                     help="where finished sweeps are evaluated: cpu (default) or same")
    unp = sub.add_parser("gpu-unpack", help="bring a gpu-run's files into the committed state")
    unp.add_argument("--from", dest="from_dir", required=True, help="the gpu-run --out folder")
    unp.add_argument("--state", required=True, help="committed state folder")
    unp.add_argument("--results", required=True, help="folder for the finished tables")
    trn = sub.add_parser("train", help="train every sweep of a profile (resumable, in "
                         "time-limited chunks whose finished parts are committed)")
    trn.add_argument("--profile", default="medium", choices=("quick", "medium", "paper"))
    trn.add_argument("--time-limit", type=seconds_arg, help="seconds for this call")
    trn.add_argument("--workers", type=positive_int_arg, default=2)
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


# -------------------------------------------------------------------- the plan and the pool

#: seconds each notebook's own work takes on the committed machine (a quiet 2-core AMD
#: EPYC; the training of its sweeps is counted apart, :func:`~.sweeps.job_estimate`):
#: notebooks 01-05 about 4.5 min together (6 min beside the sweep's two workers in the
#: README's measured main job), split as their papermill durations were measured side by
#: side (01 65 %); a redraw of notebook 06 mostly the failure thresholds' reference runs
#: (about a minute per data set the first time)
NOTEBOOK_S = {"01_systems_and_lyapunov": 160.0, "02_theorem_fixed_points_and_cycles": 25.0,
              "03_theorem_chaos": 25.0, "04_boundary_quasiperiodic": 25.0,
              "05_sparse_forcing_bounds_gradients": 35.0, "06_tau_sweep": 75.0,
              "07_lorenz_attractors": 40.0, "08_empirical_data": 40.0, "09_ablations": 30.0}


class Part(NamedTuple):
    """One piece of work of the main job's pool: a notebook run (``run``) or one sweep job
    (``job``: spec as a dict, folder, job name, architecture, member indices, inputs), its
    estimated seconds on this machine and the parts it waits for."""

    name: str
    estimate: float
    after: tuple[str, ...] = ()
    run: Run | None = None
    job: tuple[Any, ...] | None = None


def _trained_specs(run: Run) -> list[Any]:
    """The sweeps a training notebook's run trains (none for a redraw)."""
    from . import experiments as ex

    p, stem = run.parameters, run.notebook.stem
    if p.get("source", "committed") != "train":
        return []
    if stem == "06_tau_sweep":
        return [ex.tau_sweep_spec(p["dataset"], p["profile"])]
    if stem == "07_lorenz_attractors":
        return [ex.tau_sweep_spec("lorenz", p["profile"])]
    if stem == "08_empirical_data":
        return [ex.tau_sweep_spec(d, p["profile"]) for d in ("temperature", "eeg")]
    if stem == "09_ablations":
        return [ex.ablation_spec(p["profile"], tau=p.get("tau", 30))]
    return []


def build_parts(runs: Sequence[Run], scale: float = 1.0, *, jobs: bool = True) -> list[Part]:
    """The parts of ``runs`` (skipped ones left out): with ``jobs`` every unfinished job of
    the sweeps they train is a part of its own (its sweep folder claimed now,
    :func:`~.sweeps.pending_jobs`) that the notebook waits for, and a notebook that trains a
    sweep another notebook trained too waits for that one (they share its folder); without,
    a notebook's estimate includes its sweeps' jobs run by its own two workers. Estimates ×
    ``scale`` (:func:`~.sweeps.calibrate`)."""
    from . import experiments as ex
    from . import sweeps

    parts: list[Part] = []
    owner: dict[str, str] = {}  # sweep folder -> the part of the notebook that trained it
    for run in runs:
        if run.skip is not None:
            continue
        name = (run.name or run.notebook.name).removesuffix(".ipynb")
        after, train_s = [], 0.0
        for spec in _trained_specs(run):
            out = ex.sweep_dir(spec, run.parameters["profile"])
            if str(out) in owner:
                after.append(owner[str(out)])
                continue
            owner[str(out)] = name
            if jobs:
                inputs, todo = sweeps.pending_jobs(spec, out)
            else:
                todo, inputs = [j for j in sweeps.sweep_jobs(spec)
                                if not (out / "parts" / f"{j[0]}.csv").exists()], {}
            for job, arch, index in todo:
                est = sweeps.job_estimate(spec, arch, len(index), scale)
                if jobs:
                    parts.append(Part(f"train {spec.name} {job}", est,
                                      job=(spec.to_dict(), str(out), job, arch, index, inputs)))
                    after.append(parts[-1].name)
                else:
                    train_s += est / 2
        if run.notebook.stem == "08_empirical_data":  # the thresholds notebook 06 caches
            after += [p.name for p in parts if p.run is not None
                      and p.run.notebook.stem == "06_tau_sweep"
                      and p.run.parameters.get("dataset") in ("temperature", "eeg")
                      and p.run.parameters["profile"] == run.parameters["profile"]]
        own = NOTEBOOK_S.get(run.notebook.stem, 60.0) * scale
        parts.append(Part(name, own + train_s, tuple(after), run=run))
    return parts


def priorities(parts: Sequence[Part]) -> dict[str, float]:
    """Each part's bottom level: its estimate plus the longest chain of estimates of the
    parts that wait for it (the critical path from its start to the end)."""
    waiting: dict[str, list[str]] = {p.name: [] for p in parts}
    for p in parts:
        for a in p.after:
            if a not in waiting:
                raise ValueError(f"{p.name} waits for {a}, a part that is not there")
            waiting[a].append(p.name)
    est = {p.name: p.estimate for p in parts}
    level: dict[str, float] = {}

    def bottom(name: str) -> float:
        if name not in level:
            level[name] = est[name] + max((bottom(w) for w in waiting[name]), default=0.0)
        return level[name]

    return {p.name: bottom(p.name) for p in parts}


def _next_ready(pending: dict[str, Part], done: set[str], prio: dict[str, float]
                ) -> Part | None:
    ready = [p for p in pending.values() if set(p.after) <= done]
    return max(ready, key=lambda p: (prio[p.name], p.estimate), default=None)


def simulate(parts: Sequence[Part], lanes: int) -> dict[str, tuple[int, float, float]]:
    """The schedule the pool follows if every part takes its estimate: whenever a lane is
    free it starts the ready part (all it waits for done) with the longest critical path
    (:func:`priorities`; longest first). Returns part name → (lane, start, end) seconds."""
    prio = priorities(parts)
    pending = {p.name: p for p in parts}
    running: list[tuple[float, int, str]] = []
    done: set[str] = set()
    out: dict[str, tuple[int, float, float]] = {}
    now = 0.0
    while pending or running:
        idle = [k for k in range(lanes) if k not in {r[1] for r in running}]
        while idle and (part := _next_ready(pending, done, prio)) is not None:
            lane = idle.pop(0)
            del pending[part.name]
            running.append((now + part.estimate, lane, part.name))
            out[part.name] = (lane, now, now + part.estimate)
        if not running:
            raise ValueError(f"parts wait for parts that are not there: {sorted(pending)}")
        running.sort()
        now, _, name = running.pop(0)
        done.add(name)
        while running and running[0][0] <= now:
            done.add(running.pop(0)[2])
    return out


def _minutes(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def plan_text(parts: Sequence[Part], lanes: int, scale: float, calibrated: bool = True
              ) -> str:
    """The plan the main job prints before it starts: each part with its estimate, in the
    order the pool starts them (:func:`simulate`), the projected wall time and CPU use;
    ``scale``: :func:`~.sweeps.calibrate` (``calibrated`` False: not measured)."""
    sched = simulate(parts, lanes)
    total = sum(p.estimate for p in parts)
    wall = max((e for _, _, e in sched.values()), default=0.0)
    lines = [f"Plan: {len(parts)} part(s) on {lanes} lane(s); " + (
        f"this machine runs an epoch in {scale:.2f}× the committed machine's time"
        if calibrated else "estimates on the committed machine (nothing to train here)")]
    for p in sorted(parts, key=lambda p: sched[p.name][1]):
        lane, t0, _ = sched[p.name]
        lines.append(f"  {p.name:<52} ~{_minutes(p.estimate):>13}  (lane {lane + 1}, from "
                     f"{_minutes(t0)})")
    ratio = total / wall if wall else float("nan")
    lines.append(f"Estimated: {_minutes(wall)} wall, {total / 60:.1f} CPU-minutes "
                 f"(CPU/wall {ratio:.2f})")
    return "\n".join(lines)


def redraw_line(runs: Sequence[Run]) -> str | None:
    """One line naming what the main job redrew from committed results and how to retrain
    it (None when it redrew nothing)."""
    redrawn = [r for r in runs if r.skip is None and r.note and r.note.startswith("redraws")]
    if not redrawn:
        return None
    what = ", ".join(f"{r.notebook.stem[:2]}"
                     + (f" {r.parameters['dataset']}" if "dataset" in r.parameters else "")
                     + (f" ({'/'.join(r.parameters['architectures'])})"
                        if r.parameters.get("architectures") else "")
                     + f" [{r.parameters['profile']}]" for r in redrawn)
    return (f"Redrawn from committed results: {what}. To retrain them: "
            "`python3 tasks.py reproduce --train-all` (every notebook at the quick budget) or "
            "`python3 tasks.py reproduce --profile medium` (the medium budget, hours).")


def _pool_notebook(run: Run, out_dir: Path, summary: Path, log: Path) -> None:
    """A notebook part, in a pool worker: one torch thread in its kernel, its output to
    ``log``, its summary staged into the folder ``summary`` (:func:`staged_summary`)."""
    from contextlib import redirect_stderr, redirect_stdout

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh, redirect_stdout(fh), redirect_stderr(fh), \
            staged_summary(target=summary):
        run_notebook(run.notebook, run.parameters, out_dir, run.name)


def _pool_job(spec_dict: dict[str, Any], out_dir: str, job: str, arch: str, index: range,
              inputs: dict[str, str]) -> tuple[bool, str]:
    """A sweep-job part, in a pool worker (one torch thread): (finished, message)."""
    from . import sweeps

    _, done, message, notes = sweeps._run_job(spec_dict, out_dir, job, arch, index, None,
                                              None, False, inputs, 1)
    return done, "\n".join([*notes, message])


def run_pool(parts: Sequence[Part], lanes: int, profile: str, out_dir: Path) -> int:
    """Run ``parts`` in ``lanes`` worker processes, each part as soon as what it waits for is
    done, the longest critical path first (the order of :func:`simulate`); one progress line
    per finished part (its time against its estimate, the time gone and an estimate of the
    time left); a notebook's output in ``<out_dir>/logs/<name>.log``. A failed part fails the
    parts that wait for it; the others go on. Exit status 0, or 1 when a part failed."""
    import multiprocessing
    import resource
    import time
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from . import sweeps

    prio = priorities(parts)
    pending = {p.name: p for p in parts}
    done: set[str] = set()
    failed: list[str] = []
    running: dict[Any, tuple[Part, float]] = {}
    t_start, n = time.time(), len(parts)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=lanes, mp_context=ctx,
                             initializer=sweeps._worker_init, initargs=(os.getpid(),)) as pool:
        while pending or running:
            for name in [q for q, p in pending.items() if set(p.after) & set(failed)]:
                print(f"[{len(done) + len(failed) + 1}/{n}] {name}: not run (a part it "
                      "waits for failed)", flush=True)
                failed.append(name)
                del pending[name]
            while len(running) < lanes and (part := _next_ready(pending, done, prio)):
                del pending[part.name]
                if part.run is not None:
                    fut = pool.submit(_pool_notebook, part.run, out_dir, summary_dir(profile),
                                      out_dir / "logs" / f"{part.name}.log")
                else:
                    fut = pool.submit(_pool_job, *part.job)
                running[fut] = (part, time.time())
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                part, t0 = running.pop(fut)
                took, k = time.time() - t0, len(done) + len(failed) + 1
                try:
                    result = fut.result()
                except Exception as err:  # noqa: BLE001 (reported, the others go on)
                    failed.append(part.name)
                    where = (f"; log {out_dir / 'logs' / (part.name + '.log')}"
                             if part.run is not None else "")
                    print(f"[{k}/{n}] {part.name}: FAILED after {_minutes(took)} "
                          f"({type(err).__name__}: {' '.join(str(err).split())[:300]}){where}",
                          flush=True)
                    continue
                if part.job is not None and not result[0]:
                    failed.append(part.name)
                    print(f"[{k}/{n}] {result[1]}", flush=True)
                    continue
                done.add(part.name)
                left = sum(p.estimate for p in pending.values()) + sum(
                    max(p.estimate - (time.time() - t), 0.0) for p, t in running.values())
                print(f"[{k}/{n}] {part.name}: done in {_minutes(took)} (estimated "
                      f"{_minutes(part.estimate)}); {_minutes(time.time() - t_start)} gone, "
                      f"about {_minutes(left / lanes)} left", flush=True)
    wall = time.time() - t_start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    print(f"Pool: {_minutes(wall)} wall, {cpu / 60:.1f} CPU-minutes in its processes "
          f"(CPU/wall {cpu / wall:.2f} on {lanes} lanes)", flush=True)
    return 1 if failed else 0


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

    if args.command in ("gpu-run", "gpu-window", "gpu-unpack"):
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
            if args.committed and args.train_all:
                raise ValueError("--committed redraws, --train-all trains: give one of them")
            runs = plan_reproduce(selected, args.profile, given, args.committed,
                                  train_all=args.train_all,
                                  whole=not args.only and not args.parameter)
    except USER_ERRORS as err:
        print(error_line(args.command, err), file=sys.stderr)
        return 2
    if args.command == "refresh":
        for nb in selected:
            print(f"== refreshing {nb.name}", flush=True)
            refresh_notebook(nb)
        return 0
    out_dir = paths.BUILD_DIR / "notebooks" / args.profile
    for run in runs:
        extra = "".join(f" {k}={v}" for k, v in run.parameters.items() if k != "profile")
        if run.skip is not None:
            print(f"== {run.notebook.name}{extra}: skipped ({run.skip})", flush=True)
        elif run.note is not None:
            print(f"== {run.notebook.name}{extra}: {run.note}", flush=True)
    from . import sweeps

    trains = any(_trained_specs(r) for r in runs if r.skip is None)
    scale = sweeps.calibrate() if trains else 1.0
    pool = args.lanes > 1
    try:  # claims the sweep folders: one holding another spec is refused in one line
        parts = build_parts(runs, scale, jobs=pool)
    except USER_ERRORS as err:
        print(error_line(args.command, err), file=sys.stderr)
        return 2
    print(plan_text(parts, args.lanes, scale, trains) + "\n", flush=True)
    # reproduce refreshes the committed outputs: its notebooks (and the lanes' processes,
    # which inherit the environment) write figures/ and data/results/; any other run of a
    # notebook writes build/ (paths.figures_out, paths.results_out)
    with paths.publishing_outputs():
        if pool:
            if run_pool(parts, args.lanes, args.profile, out_dir) != 0:
                print(f"chaosrnn reproduce: error: a part failed (logs: {out_dir / 'logs'})",
                      file=sys.stderr)
                return 1
        else:
            import time

            t_start = time.time()
            for k, part in enumerate(parts, 1):
                run = part.run
                extra = "".join(f" {k}={v}" for k, v in run.parameters.items()
                                if k != "profile")
                print(f"== [{k}/{len(parts)}] {run.notebook.name}{extra} (profile "
                      f"{run.parameters['profile']}; estimated {_minutes(part.estimate)})",
                      flush=True)
                t0 = time.time()
                with staged_summary(args.profile):
                    run_notebook(run.notebook, run.parameters, out_dir, run.name)
                print(f"== [{k}/{len(parts)}] {part.name}: done in "
                      f"{_minutes(time.time() - t0)}; {_minutes(time.time() - t_start)} gone",
                      flush=True)
    if not args.only and not args.parameter and (line := redraw_line(runs)) is not None:
        print("\n" + line, flush=True)
    print(f"\nExecuted notebooks: {out_dir}\nFigures: {paths.FIGURES_DIR}\n")
    print(summary_table(profile=args.profile))
    if not args.only and not args.parameter and args.seed is None:
        # a whole run with the defaults: the committed comparison table and the README's copy
        print(f"\nComparison table: {write_comparison(args.profile)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
