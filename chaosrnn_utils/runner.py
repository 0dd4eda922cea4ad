"""The papermill runner: the notebooks (:func:`select_notebooks`), their parameters
checked against their parameters cell (:func:`check_parameters`), one notebook executed into
``build/`` (:func:`run_notebook`) or refreshed in place (:func:`refresh_notebook`), and its
summary rows staged until it succeeds (:func:`staged_summary`)."""

from __future__ import annotations

import ast
import difflib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import paths
from .comparison import summary_dir
from .notebook import PROFILES, SUMMARY_ENV


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
    nbval validates the current code. The ``.py`` source is not touched, and cells keep no
    empty tag list, so the pair stays in sync."""
    import nbformat
    from nbstripout import strip_output

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / notebook.name
        _execute(notebook, out)
        nb = nbformat.read(out, as_version=4)
    nb = strip_output(nb, keep_output=True, keep_count=True, keep_id=True,
                      extra_keys=["metadata.papermill", "cell.metadata.papermill",
                                  "cell.metadata.execution"])
    for cell in nb.cells:  # papermill leaves "tags": [] on every cell: jupytext would pair it
        if cell.metadata.get("tags") == []:  # into the .py as "tags=[]"
            del cell.metadata["tags"]
    nbformat.write(nb, notebook)
