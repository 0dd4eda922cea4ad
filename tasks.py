#!/usr/bin/env python3
"""The README's two commands, needing nothing but Python 3.11:

    python3 tasks.py reproduce   # set up .venv, run the notebooks (quick), print the summary
    python3 tasks.py test        # set up .venv, run the unit tests, validate the notebooks

``reproduce`` passes further arguments on, e.g. ``--profile paper`` or ``--only 01``;
``python3 tasks.py sweep ...`` runs a training sweep (see ``python -m chaosrnn_utils sweep -h``)
with the same environment (one BLAS thread, glibc heap kept between updates).
The virtual environment lives in ``.venv/`` and is reinstalled when ``pyproject.toml`` changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".chaosrnn-installed"


def setup() -> None:
    """Create .venv and install the package with its pinned dependencies (once per change)."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing chaosrnn-utils and its pinned dependencies", flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-e", str(ROOT)], check=True)
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("reproduce", "test", "setup", "sweep"):
        print(__doc__)
        return 2
    setup()
    env = dict(os.environ)
    # one BLAS/OpenMP thread: results are identical from run to run and machine to machine
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    # keep freed memory in glibc's heap instead of trimming it after every backward pass:
    # training updates fault in fresh pages otherwise (measured: −20 % time per update)
    for var, value in (("MALLOC_TRIM_THRESHOLD_", "4000000000"),
                       ("MALLOC_TOP_PAD_", "1000000000"),
                       ("MALLOC_MMAP_THRESHOLD_", "33554432")):
        env.setdefault(var, value)
    if argv[0] == "setup":
        return 0
    if argv[0] in ("reproduce", "sweep"):
        cmd = [str(PY), "-m", "chaosrnn_utils", *argv]
    else:
        cmd = [str(PY), "-m", "pytest", *argv[1:]]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
