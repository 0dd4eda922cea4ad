"""What the notebooks call around their science: the profile's settings and the notebook's
setup, the summary rows each notebook records for the comparison table, and the marking of
machine-dependent printed digits. The runner that executes the notebooks (papermill, the
command line) is :mod:`.pipeline`.

Profiles: ``quick`` (minutes on two CPU cores; what CI runs), ``medium`` (the paper's grids
at a tenth of its training: hours on two CPU cores; only the training notebooks 06, 07 and
09 have medium settings, the others run their quick ones) and ``paper`` (the paper's
settings).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import paths

PROFILES = ("quick", "medium", "paper")
SUMMARY_DIR = paths.BUILD_DIR / "summary"
#: when set, :func:`record_summary` writes there instead of :data:`SUMMARY_DIR` (the runner
#: points each notebook's kernel at a staging folder, see ``pipeline.staged_summary``)
SUMMARY_ENV = "CHAOSRNN_SUMMARY_DIR"


def select_profile(profile: str, *, quick: dict[str, Any], paper: dict[str, Any],
                   medium: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings of ``profile``: ``quick``, ``paper``, or ``medium`` (``quick``'s settings
    where a notebook gives none: its result does not depend on the training budget).

    >>> select_profile("quick", quick={"n": 1}, paper={"n": 10})
    {'n': 1}
    >>> select_profile("medium", quick={"n": 1}, paper={"n": 10})
    {'n': 1}
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    chosen = {"quick": quick, "paper": paper, "medium": quick if medium is None else medium}
    return dict(chosen[profile])


def setup(profile: str, *, seed: int | None = None, torch_deterministic: bool = False,
          quick: dict[str, Any] | None = None, paper: dict[str, Any] | None = None,
          medium: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    """A notebook's first cell after its parameters: the plotting style, pandas' and numpy's
    printing, with ``torch_deterministic`` one torch thread and deterministic kernels (the
    theorem notebooks), and the profile's settings (:func:`select_profile`; an unknown
    profile fails here). Returns (settings, a ``torch.Generator`` seeded with ``seed``, or
    None without one)."""
    import numpy as np
    import pandas as pd
    import torch

    from . import plotting

    settings = select_profile(profile, quick=quick or {}, paper=paper or {}, medium=medium)
    plotting.use_style()
    np.set_printoptions(precision=4, suppress=True)
    pd.set_option("display.precision", 4)
    pd.set_option("display.width", 140)
    if torch_deterministic:
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    return settings, gen


def plain(v: Any) -> Any:
    """A numpy scalar as the Python number it holds (JSON-ready); anything else as it is."""
    if hasattr(v, "item"):
        v = v.item()
    return v


def record_summary(notebook: str, rows: Sequence[dict[str, Any]],
                   source: str | None = None) -> Path:
    """Write a notebook's key numbers for the summary table, atomically, to
    ``build/summary/<profile>/<notebook>.json`` (the first row's ``profile``, default quick;
    ``$CHAOSRNN_SUMMARY_DIR`` when set). Each row:
    ``quantity``, ``paper``, ``reproduced`` and optionally ``note``, ``profile``,
    ``convention`` ("authors" or "ours": the metric convention of its numbers), ``match``,
    ``failed_above``, ``paper_failed_above``, ``score`` (see ``pipeline.MATCH_RULES``) and
    ``source`` (where the numbers come from, ``experiments.provenance``: given as ``source``
    it goes to every row that has none)."""
    if source is not None:
        rows = [{"source": source, **r} for r in rows]
    for row in rows:
        missing = {"quantity", "paper", "reproduced"} - set(row)
        if missing:
            raise ValueError(f"summary row {row} lacks {sorted(missing)}")
    profile = rows[0].get("profile", "quick") if rows else "quick"
    folder = os.environ.get(SUMMARY_ENV) or SUMMARY_DIR / str(profile)
    target = Path(folder) / f"{notebook}.json"
    with paths.atomic_open(target, "w") as fh:
        json.dump([{k: plain(v) for k, v in r.items()} for r in rows], fh, indent=1)
    return target


#: marks a printed number that depends on the last bits of the floating-point kernels (a
#: finite-time estimate on a chaotic orbit): another CPU gives other last digits, and the
#: notebooks' nbval sanitizer (tests/nbval_sanitize.cfg) masks what follows the mark
APPROX = "\u2248"


def approx_columns(table: Any, columns: Sequence[str], digits: int) -> Any:
    """A copy of the DataFrame ``table`` for printing, with ``columns`` as text
    ``≈<value rounded to digits decimals>`` (NaN stays ``NaN``): the values that differ from
    machine to machine in the last printed digits. The numbers themselves are checked by
    asserts with tolerances that hold on any machine."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"no column(s) {missing} in the table")
    out = table.copy()
    for c in columns:
        out[c] = [f"{APPROX}{v:.{digits}f}" if v == v else "NaN" for v in table[c]]
    return out


def checks_table(rows: Sequence[dict[str, Any]]) -> Any:
    """The summary rows of a notebook (:func:`record_summary`) as its Checks table: quantity,
    the paper's value, ours, the verdict in words (``yes``, ``no``, ``both failed``,
    ``asserted``, ``–``: ``pipeline``'s match rules) and the note with its failed range;
    numbers with 4 significant digits, never ``None``/``False``/``inf``."""
    import pandas as pd

    from .verdict import _fmt, _match, _note

    def cell(v: Any) -> str:
        v = plain(v)
        if isinstance(v, float) and not math.isfinite(v):
            return "all failed" if v > 0 else "–"
        return _fmt(v)

    return pd.DataFrame([dict(quantity=r["quantity"], paper=cell(r["paper"]),
                              ours=cell(r["reproduced"]), match=_match(r), note=_note(r))
                         for r in rows])
