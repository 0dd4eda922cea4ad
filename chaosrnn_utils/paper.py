"""The paper's numbers: one table, ``paper.json`` (package data), read by every module and
notebook that quotes the paper. Each group has a ``sources`` map naming the figure, table or
section every number comes from; docs/paper-notes.md says what the numbers mean.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def _table() -> dict[str, Any]:
    return json.loads(files("chaosrnn_utils").joinpath("paper.json").read_text())


def table() -> dict[str, Any]:
    """The whole table (a fresh copy: edits do not reach other readers)."""
    return json.loads(json.dumps(_table()))


def dataset(name: str) -> dict[str, Any]:
    """One data set's numbers: ``lambda_max_per_step``, ``tau_pred``, ``taus``, ``best``
    (architecture → ``tau``, ``D_stsp``), ``clip_D_stsp`` where given, ``sources``."""
    sets = _table()["datasets"]
    if name not in sets:
        raise KeyError(f"the paper has no data set {name!r}; known: {', '.join(sets)}")
    return table()["datasets"][name]


def datasets() -> list[str]:
    """The paper's data sets, in the table's order."""
    return list(_table()["datasets"])


def group(name: str) -> dict[str, Any]:
    """A group of numbers outside the data sets: ``theorems`` or ``ablations``."""
    t = _table()
    if name not in t or name == "datasets" or not isinstance(t[name], dict):
        raise KeyError(f"no group {name!r} in paper.json; known: theorems, ablations")
    return table()[name]


def text_range(value: Any) -> str:
    """A number as printed in a comparison: a two-element range ``[10, 12]`` as ``"10–12"``."""
    if isinstance(value, list) and len(value) == 2:
        return f"{value[0]:g}–{value[1]:g}"
    return f"{value:g}" if isinstance(value, int | float) else str(value)
