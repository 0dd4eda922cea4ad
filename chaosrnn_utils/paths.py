"""Where things live: the repository root and its data, figure and build folders.

The package is installed editable from the repository, so the root is the folder above the
package. ``CHAOSRNN_DATA_DIR`` points the empirical-data loader at another folder.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if not (ROOT / "pyproject.toml").exists():  # installed non-editable: work from the cwd
    ROOT = Path.cwd()
DATA_DIR = ROOT / "data"
CACHE_DIR = Path(os.environ.get("CHAOSRNN_CACHE_DIR", DATA_DIR / "cache"))
RESULTS_DIR = DATA_DIR / "results"
FIGURES_DIR = ROOT / "figures"
BUILD_DIR = ROOT / "build"
NOTEBOOKS_DIR = ROOT / "notebooks"


def empirical_data_dirs() -> list[Path]:
    """Folders searched for the authors' data files, in order: ``$CHAOSRNN_DATA_DIR``,
    ``data/external/`` and ``../shared/data/`` beside the repository."""
    dirs = [DATA_DIR / "external", ROOT.parent / "shared" / "data"]
    env = os.environ.get("CHAOSRNN_DATA_DIR")
    return ([Path(env)] if env else []) + dirs
