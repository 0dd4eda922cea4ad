"""Where things live: the repository root and its data, figure and build folders.

The package is installed editable from the repository, so the root is the folder above the
package. ``CHAOSRNN_DATA_DIR`` points the empirical-data loader at another folder.

Committed outputs: the notebooks write their figures and tables through
:func:`figures_out` and :func:`results_out`, which are ``figures/`` and ``data/results/`` only
while ``$CHAOSRNN_PUBLISH`` is set, as ``reproduce`` sets it (the command that refreshes the
committed outputs); any other run (the tests, nbval, an interactive session) writes them
under ``build/`` (git-ignored) and leaves the working tree as it found it. Committed results
are read from ``RESULTS_DIR`` either way.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
if not (ROOT / "pyproject.toml").exists():  # installed non-editable: work from the cwd
    ROOT = Path.cwd()
DATA_DIR = ROOT / "data"
CACHE_DIR = Path(os.environ.get("CHAOSRNN_CACHE_DIR", DATA_DIR / "cache"))
RESULTS_DIR = DATA_DIR / "results"
FIGURES_DIR = ROOT / "figures"
BUILD_DIR = ROOT / "build"
NOTEBOOKS_DIR = ROOT / "notebooks"
#: set (to anything but "" or "0") by ``reproduce``: the notebooks' figures and tables then
#: replace the committed ones in ``figures/`` and ``data/results/``
PUBLISH_ENV = "CHAOSRNN_PUBLISH"


def publishing() -> bool:
    """True when this process writes committed outputs (``$CHAOSRNN_PUBLISH`` is set)."""
    return os.environ.get(PUBLISH_ENV, "") not in ("", "0")


def figures_out() -> Path:
    """Where a figure goes: ``figures/`` when :func:`publishing`, else ``build/figures/``."""
    return FIGURES_DIR if publishing() else BUILD_DIR / "figures"


@contextmanager
def publishing_outputs() -> Iterator[None]:
    """Within the block, :func:`publishing` is true in this process and in the notebook
    kernels and processes it starts (they inherit ``$CHAOSRNN_PUBLISH``); afterwards the
    variable is as it was."""
    before = os.environ.get(PUBLISH_ENV)
    os.environ[PUBLISH_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PUBLISH_ENV, None)
        else:
            os.environ[PUBLISH_ENV] = before


def results_out() -> Path:
    """Where a notebook's result table goes: ``data/results/`` when :func:`publishing`, else
    ``build/results/`` (readers of committed tables keep reading ``RESULTS_DIR``)."""
    return RESULTS_DIR if publishing() else BUILD_DIR / "results"


def _user_cache() -> Path:
    """pooch's user cache folder for ``chaosrnn`` (``~/.cache/chaosrnn`` on Linux): what
    ``pooch.os_cache`` returns, from platformdirs (pooch's dependency) without importing
    pooch, whose import loads ``tqdm.auto`` and warns in a notebook without ipywidgets;
    without platformdirs (a GPU image) the same folder by the XDG rule."""
    try:
        import platformdirs
    except ImportError:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chaosrnn"
    return Path(platformdirs.user_cache_dir("chaosrnn"))


#: where ``python3 tasks.py fetch-data`` downloads the authors' files (pooch's user cache)
USER_CACHE = Path(os.environ.get("CHAOSRNN_USER_CACHE") or _user_cache())


def empirical_data_dirs() -> list[Path]:
    """Folders searched for the authors' data files, in order: ``$CHAOSRNN_DATA_DIR``,
    ``data/external/``, ``../shared/data/`` beside the repository, and the user cache
    (``USER_CACHE``) that :mod:`chaosrnn_utils.fetch` downloads into."""
    dirs = [DATA_DIR / "external", ROOT.parent / "shared" / "data", USER_CACHE]
    env = os.environ.get("CHAOSRNN_DATA_DIR")
    return ([Path(env)] if env else []) + dirs


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Write ``path`` atomically: yield a temporary file in the same folder and rename it onto
    ``path`` when the block succeeds; on any error the temporary file is removed and ``path``
    keeps its old content. Creates the folder. The file gets the mode of any new file,
    0o666 less the umask (the kernel applies it: no umask is read or changed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) \
        | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
