#!/usr/bin/env python3
"""The README's two commands, needing nothing but Python 3.11:

    python3 tasks.py reproduce   # set up .venv, run the notebooks (quick), print the summary
    python3 tasks.py test        # set up .venv, run the unit tests, validate the notebooks,
                                 # then the float-sensitive ones again under another ISA

``test`` with arguments passes them to pytest and runs one pass only (e.g. one file); either
way it fails, listing the paths, when the tests changed the git working tree (the notebooks
write their figures and tables under ``build/`` except under ``reproduce``);
``reproduce`` runs the notebooks and the sweep jobs as one pool of two processes
(``--lanes 2``, unless given; longest chain first, after printing its plan with an estimate
per part) and passes further arguments on, e.g. ``--profile paper``, ``--train-all``,
``--only 01`` or ``--bitwise`` (the same last bits on any x86-64 CPU, see
``chaosrnn_utils/bitwise.py``);
``python3 tasks.py fetch-data`` downloads and verifies the authors' data files (data/README.md);
``python3 tasks.py sweep ...`` runs a training sweep (see ``python -m chaosrnn_utils sweep -h``)
with the same environment (one BLAS thread, glibc heap kept between updates);
``python3 tasks.py train --profile medium [--time-limit SECONDS]`` trains every sweep of a
profile in resumable chunks whose finished parts are committed under ``data/results/``, and
``python3 tasks.py reproduce --profile medium --committed`` then redraws its figures.
``python3 tasks.py book`` builds the notebooks, with their stored outputs and without running
them, into an HTML book in ``build/book/`` (open ``build/book/index.html``).
The virtual environment lives in ``.venv/`` and is reinstalled when ``pyproject.toml`` changes;
``test`` installs the ``test`` extra (pytest, nbval, ruff, ...) as well, and, as root with apt,
SLURM for the real-SLURM test.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
#: set by ``reproduce`` (chaosrnn_utils/paths.py): the notebooks then write the committed
#: figures/ and data/results/; ``test`` makes sure it is unset
PUBLISH_ENV = "CHAOSRNN_PUBLISH"
VENV = ROOT / ".venv"
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".chaosrnn-installed"


def setup(extra: str = "") -> None:
    """Create .venv and install the package with its pinned dependencies (once per change),
    with the optional dependencies ``extra`` of pyproject.toml when given (``test``, ``book``);
    each extra has its own stamp, so a stamp says which extras are installed."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = STAMP.with_name(f"{STAMP.name}-{extra}") if extra else STAMP
    if PY.exists() and stamp.exists() and stamp.read_text() == wanted:
        return
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print(f"installing chaosrnn-utils{f'[{extra}]' if extra else ''} and its pinned dependencies",
          flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-e", f"{ROOT}[{extra}]" if extra else str(ROOT)], check=True)
    stamp.write_text(wanted)


def book_command(out: Path, python: str | None = None) -> list[str]:
    """The Sphinx call that builds the book into ``out``: the repository root is the source
    (README, ``notebooks/*.ipynb`` with their stored outputs, never executed, ``docs/*.md``),
    ``docs/conf.py`` the configuration; a fresh environment each time (``-E``)."""
    return [python or str(PY), "-m", "sphinx", "-b", "html", "-E", "-q", "-c", str(ROOT / "docs"),
            str(ROOT), str(out)]


def install_slurm() -> None:
    """Install Debian's ``slurm-wlm`` and ``munge`` for the real-SLURM test when they are
    missing and this is root on a machine with apt; otherwise say in one line why not (the
    test then skips)."""
    if shutil.which("slurmctld") and shutil.which("munged"):
        return
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        print("SLURM is not installed (needs root and apt-get: apt-get install slurm-wlm "
              "munge); the SLURM test will skip", flush=True)
        return
    print("installing slurm-wlm and munge for the SLURM test (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "slurm-wlm", "munge"]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            print("apt-get could not install slurm-wlm and munge; the SLURM test will skip",
                  flush=True)


# The second pass of ``test``: the tests and notebooks whose numbers depend on the last bits of
# the floating-point kernels, run again with ATen's portable (non-vectorised) kernels and
# MKL's conditional-numerical-reproducibility path instead of the machine's native SIMD
# code (AVX2, AVX-512, ...), and on x86 OpenBLAS (numpy's and scipy's BLAS/LAPACK) with its
# SSE-only Nehalem kernels. The last bits then differ as they do on another CPU, and chaos
# amplifies them: a tolerance taken from one machine's output fails here, as it would on a
# user's machine.
OTHER_ISA = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE",
             "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
             **({"OPENBLAS_CORETYPE": "Nehalem"}
                if platform.machine().lower() in ("x86_64", "amd64") else {})}
FLOAT_SENSITIVE = [
    "tests/test_fused.py", "tests/test_metrics.py", "tests/test_jacobians.py",
    "tests/test_lyapunov.py", "tests/test_models.py", "tests/test_training.py",
    "tests/test_systems.py", "tests/test_regimes.py", "tests/test_forcing.py",
    "notebooks/01_systems_and_lyapunov.ipynb", "notebooks/02_theorem_fixed_points_and_cycles.ipynb",
    "notebooks/03_theorem_chaos.ipynb", "notebooks/04_boundary_quasiperiodic.ipynb",
    "notebooks/05_sparse_forcing_bounds_gradients.ipynb",
]


def tree_state(root: Path) -> dict[str, str] | None:
    """The working tree's departures from ``HEAD``: {path: git status code and a hash of the
    file's content} for every modified, added, deleted or untracked (not ignored) file, so
    that a file already modified before and modified again still shows; None outside a git
    checkout (or without git)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"],
                             cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    state = {}
    entries = iter(out.split(b"\0"))
    for entry in entries:
        if not entry:
            continue
        code, path = entry[:2].decode(), os.fsdecode(entry[3:])
        if code[0] in "RC":  # a rename or copy: its source path follows
            next(entries, None)
        f = root / path
        digest = hashlib.sha256(f.read_bytes()).hexdigest()[:16] if f.is_file() else "-"
        state[path] = f"{code} {digest}"
    return state


def changed_paths(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The paths whose status or content differs between two :func:`tree_state` snapshots."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def check_tree_unchanged(before: dict[str, str] | None, root: Path = ROOT) -> int:
    """0 when the working tree is as the snapshot ``before`` found it (or outside a git
    checkout); else 1, after one error line and the changed paths on stderr: the tests must
    write under ``build/`` or a temporary folder, never into the repository."""
    after = tree_state(root)
    changed = [] if before is None or after is None else changed_paths(before, after)
    if not changed:
        return 0
    print(f"tasks.py test: error: the tests changed {len(changed)} path(s) of the working "
          "tree (git status --porcelain); tests must write under build/ or a temporary "
          "folder:\n" + "\n".join(f"  {p}" for p in changed), file=sys.stderr, flush=True)
    return 1


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("reproduce", "test", "setup", "sweep", "train", "book",
                                   "fetch-data"):
        print(__doc__)
        return 2
    setup({"book": "book", "test": "test"}.get(argv[0], ""))
    env = dict(os.environ)
    # one BLAS/OpenMP thread: results are identical from run to run on one machine (another
    # CPU gives the same conclusions within the seed spread, not the same last digits)
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
    if argv[0] == "fetch-data":
        return subprocess.run([str(PY), "-m", "chaosrnn_utils.fetch", *argv[1:]], cwd=ROOT,
                              env=env).returncode
    if argv[0] == "book":
        out = ROOT / "build" / "book"
        code = subprocess.run(book_command(out), cwd=ROOT, env=env).returncode
        if code == 0:
            print(f"book built: open {(out / 'index.html').relative_to(ROOT)} in a browser")
        return code
    if argv[0] == "reproduce" and not any(a.startswith("--lanes") for a in argv):
        # notebooks and sweep jobs share one pool of two processes
        argv = [*argv, "--lanes", "2"]
    if argv[0] in ("reproduce", "sweep", "train"):
        return subprocess.run([str(PY), "-m", "chaosrnn_utils", *argv], cwd=ROOT,
                              env=env).returncode
    install_slurm()
    before = tree_state(ROOT)  # the tests leave the working tree as they found it
    env.pop(PUBLISH_ENV, None)  # the notebooks write build/, not the committed outputs
    pytest = [str(PY), "-m", "pytest"]
    first = subprocess.run([*pytest, *argv[1:]], cwd=ROOT, env=env).returncode
    if len(argv) > 1:
        tree = check_tree_unchanged(before)
        return first or tree
    isa = " ".join(f"{k}={v}" for k, v in OTHER_ISA.items())
    print(f"\nsecond pass under another instruction set ({isa}): the float-sensitive tests "
          "and notebooks 01-05", flush=True)
    second = subprocess.run([*pytest, *FLOAT_SENSITIVE], cwd=ROOT,
                            env={**env, **OTHER_ISA}).returncode
    tree = check_tree_unchanged(before)
    return first or second or tree


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
