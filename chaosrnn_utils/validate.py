"""Checks of the inputs every module shares (the package's ground floor: imports nothing of it).

:func:`check_positive_int` is the one check of a count or a size; :func:`positive_int_arg` and
:func:`seconds_arg` are its argparse types for the command line."""

from __future__ import annotations

import argparse
import math
import operator
from typing import Any

__all__ = ["check_positive_int", "positive_int_arg", "seconds_arg"]


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int when it is an integer n ≥ 1 (a Python or numpy integer; not a bool,
    not a float such as 3.0); ValueError naming ``name`` otherwise. The package's one check of
    a count or a size (models, training settings, metrics, sweeps, intervals in forcing)."""
    if not isinstance(value, bool):
        try:
            n = operator.index(value)  # numpy's bool has no __index__
        except TypeError:
            n = 0
        if n >= 1:
            return n
    raise ValueError(f"{name} must be a positive integer, got {value!r}")


def positive_int_arg(text: str) -> int:
    """argparse type: a positive integer (one-line error otherwise)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def seconds_arg(text: str) -> float:
    """argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value
