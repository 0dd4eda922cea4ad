"""Small builders shared by the tests: a τ sweep's result rows with known scores, and the
project's ``tasks.py`` loaded as a module."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def sweep_rows(scores: dict[object, list[float]], architecture: str = "lstm", *,
               lam: float = 0.01, diverged: tuple[tuple[object, int], ...] = ()
               ) -> pd.DataFrame:
    """Rows of a τ sweep: τ (or "clip", clipped BPTT) → D_stsp of each seed, every run with
    λ_max ``lam`` and all its points in the box; ``diverged``: (τ, seed) pairs whose training
    diverged (not scored)."""
    rows = []
    for key, values in scores.items():
        for seed, v in enumerate(values):
            rows.append(dict(architecture=architecture, mode="bptt" if key == "clip" else
                             "sparse", tau=np.nan if key == "clip" else key, tau_spread=0,
                             tau_start=np.nan, clip_norm=1.0 if key == "clip" else np.nan,
                             clip_value=np.nan, truncation=np.nan, window=np.nan, alpha=0.0,
                             seed=seed, D_stsp=v, D_H=0.1, lambda_max=lam,
                             diverged=(key, seed) in diverged, frac_in_box=1.0))
    return pd.DataFrame(rows)


def load_tasks() -> ModuleType:
    """``tasks.py`` (the README's commands) as a module."""
    spec = importlib.util.spec_from_file_location("tasks", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
