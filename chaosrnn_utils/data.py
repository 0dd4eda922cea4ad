"""Data: standardised trajectories of the benchmark systems, the paper's data sets, delay
embedding, train/test split, an on-disk cache, and the loader for the authors' files.

Generated arrays are cached in ``data/cache/`` under a hash of every argument that shapes
them, written atomically; the authors' files are never copied into the project.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import paths
from .systems import get_system, integrate

Array = np.ndarray
CACHE_VERSION = 1  # bump when the generator changes what it writes
SOURCE_URL = "https://github.com/DurstewitzLab/ChaosRNN/tree/main/datasets"


# ----------------------------------------------------------------------------- basics


def check_series(x: Array, *, name: str = "series") -> Array:
    """Return ``x`` as float64 of shape (n, d), raising a clear error on bad input."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n, d) with n >= 2, got {x.shape}")
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise ValueError(f"{name} has {bad} NaN or inf entries")
    return x


def standardize(x: Array, mode: str = "global") -> Array:
    """z-score: ``"global"`` subtracts one mean and divides by one std over the whole array
    (the authors' convention: per-dimension means are then not 0), ``"per_dim"`` per column,
    ``"none"`` returns ``x``."""
    x = check_series(x)
    if mode == "global":
        return (x - x.mean()) / x.std()
    if mode == "per_dim":
        return (x - x.mean(0)) / x.std(0)
    if mode == "none":
        return x
    raise ValueError(f"unknown standardisation {mode!r}: use 'global', 'per_dim' or 'none'")


def delay_embed(x: Array, dim: int, lag: int) -> Array:
    """Delay vectors (x_t, x_{t+lag}, …, x_{t+(dim−1)lag}) of a scalar series, shape
    (n − (dim−1)·lag, dim); for a multivariate series (n, c) the lagged copies are
    concatenated, (n − (dim−1)·lag, dim·c)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"series must be (n,) or (n, c), got shape {x.shape}")
    if dim < 1 or lag < 1:
        raise ValueError(f"dim and lag must be >= 1, got dim={dim}, lag={lag}")
    n = x.shape[0] - (dim - 1) * lag
    if n < 2:
        raise ValueError(f"series of length {x.shape[0]} too short for dim={dim}, lag={lag}")
    return np.concatenate([x[i * lag : i * lag + n] for i in range(dim)], axis=1)


def train_test_split(x: Array, test_fraction: float = 0.2) -> tuple[Array, Array]:
    """Contiguous split: the first (1 − f)·n steps for training, the rest for testing."""
    x = check_series(x)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    cut = int(round(x.shape[0] * (1.0 - test_fraction)))
    if cut < 1 or cut >= x.shape[0]:
        raise ValueError(f"series of length {x.shape[0]} too short to split at {test_fraction}")
    return x[:cut], x[cut:]


# ----------------------------------------------------------------------------- cache


def _cache_path(kind: str, key: dict) -> Path:
    blob = json.dumps({"v": CACHE_VERSION, **key}, sort_keys=True, default=str)
    return paths.CACHE_DIR / f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.npy"


def _read_cache(path: Path, n_steps: int) -> Array | None:
    """The cached array at ``path``, or None (saying so in one line on stderr) when the file is
    unreadable or not an (n_steps, d) finite float64 array: the caller regenerates it."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        detail = "".join(str(err).strip().splitlines()[:1])
        problem = f"is unreadable ({type(err).__name__}: {detail})"
    else:
        if x.dtype == np.float64 and x.ndim == 2 and x.shape[0] == n_steps \
                and np.isfinite(x).all():
            return x
        problem = f"holds a {x.dtype} array of shape {x.shape}, not ({n_steps}, d) finite float64"
    print(f"data cache {path} {problem}; regenerating it", file=sys.stderr, flush=True)
    return None


# ----------------------------------------------------------------------------- generation


def generate(
    system: str,
    n_steps: int,
    *,
    dt: float | None = None,
    transient: float | None = None,
    noise: float = 0.0,
    seed: int = 0,
    standardize_mode: str | None = None,
    observed: tuple[int, ...] | None = None,
    cache: bool = True,
    **params: float,
) -> Array:
    """A trajectory of a table system, shape (n_steps, d_obs).

    The initial condition is the table's plus 1e-3·N(0, 1) noise drawn from ``seed`` (so
    seeds give different orbits on the same attractor); after ``transient`` time units,
    ``n_steps`` samples spaced ``dt`` are observed (Duffing: (x, ẋ, cos φ)), Gaussian
    observation noise of std ``noise`` × (std of the clean series) is added, then the
    series is standardised (default: the table's convention) and ``observed`` columns kept.
    """
    if noise < 0 or not np.isfinite(noise):
        raise ValueError(f"noise must be a non-negative number, got {noise}")
    sys_ = get_system(system, **params)
    mode = sys_.standardize if standardize_mode is None else standardize_mode
    key = dict(system=system, n_steps=int(n_steps), dt=dt, transient=transient, noise=noise,
               seed=int(seed), mode=mode, observed=observed, params=sys_.params)
    path = _cache_path(system, key)
    if cache and path.exists() and (x := _read_cache(path, n_steps)) is not None:
        return x
    rng = np.random.default_rng(seed)
    x0 = sys_.initial_state() + 1e-3 * rng.standard_normal(sys_.dim)
    x = sys_.observe(integrate(sys_, n_steps, dt=dt, transient=transient, x0=x0))
    if noise > 0:
        x = x + noise * x.std() * rng.standard_normal(x.shape)
    x = standardize(x, mode)
    if observed is not None:
        x = x[:, list(observed)]
    if cache:
        with paths.atomic_open(path) as fh:
            np.save(fh, x)
    return x


# The paper's data sets, as its authors' files are (docs/paper-notes.md § Data sets).
# Mackey-Glass is our own choice, stated in systems.json: sampled every 2 time units,
# embedded in 6-D, lag 4.
MACKEY_GLASS_EMBEDDING = dict(dim=6, lag=4)
PAPER_DATASETS = {
    "lorenz": dict(system="lorenz_paper"),
    "lorenz2d": dict(system="lorenz_paper", observed=(1, 2)),
    "roessler": dict(system="roessler_paper"),
    "duffing": dict(system="duffing_paper"),
    "mackey_glass": dict(system="mackey_glass"),
    "eeg": dict(empirical="eeg"),
    "temperature": dict(empirical="temperature"),
}


def mackey_glass_source() -> str:
    """What ``paper_dataset("mackey_glass")`` gives here: the authors' file where it is found
    locally (checked by its git blob id, see :mod:`chaosrnn_utils.fetch`), otherwise our own
    generated series (the label every use of it carries)."""
    from .fetch import MACKEY_GLASS_FILE, locate

    if locate(MACKEY_GLASS_FILE) is not None:
        return f"authors' file {MACKEY_GLASS_FILE}"
    return ("ours: generated Mackey-Glass (delay 17), sampled every 2 time units, "
            "delay-embedded in 6-D with lag 4 (the authors' file is not here)")


def _authors_mackey_glass(n_steps: int) -> Array | None:
    """The authors' Mackey–Glass file (first ``n_steps`` rows; a scalar series is embedded as
    ours is), or None where it is not found locally."""
    from .fetch import MACKEY_GLASS_FILE, locate

    found = locate(MACKEY_GLASS_FILE)
    if found is None:
        return None
    x = np.load(found, allow_pickle=False)
    if x.ndim == 1 or (x.ndim == 2 and x.shape[1] == 1):
        x = delay_embed(np.ravel(x), **MACKEY_GLASS_EMBEDDING)
    if x.ndim != 2 or x.shape[0] < 100:
        raise ValueError(f"{found} has shape {x.shape}; expected a series (n, d), n >= 100")
    return check_series(x[:n_steps], name=str(found))


def paper_dataset(name: str, n_steps: int = 100_000, *, seed: int = 0) -> Array:
    """One of the paper's data sets by its short name (``PAPER_DATASETS``): simulated sets are
    generated (``n_steps`` samples), empirical ones loaded with :func:`load_empirical`.
    Mackey–Glass: the authors' file where found locally, else ours (:func:`mackey_glass_source`)."""
    if name not in PAPER_DATASETS:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(PAPER_DATASETS)}")
    entry = PAPER_DATASETS[name]
    if "empirical" in entry:
        return load_empirical(entry["empirical"])
    if name == "mackey_glass":
        if (authors := _authors_mackey_glass(n_steps)) is not None:
            return authors
        extra = (MACKEY_GLASS_EMBEDDING["dim"] - 1) * MACKEY_GLASS_EMBEDDING["lag"]
        x = generate("mackey_glass", n_steps + extra, seed=seed)
        return delay_embed(x[:, 0], **MACKEY_GLASS_EMBEDDING)
    return generate(entry["system"], n_steps, seed=seed, observed=entry.get("observed"))


# ----------------------------------------------------------------------------- empirical


@dataclass(frozen=True)
class EmpiricalFile:
    """An authors' data file: its name, shape and SHA-256."""

    filename: str
    shape: tuple[int, int]
    sha256: str
    description: str


EMPIRICAL = {
    "eeg": EmpiricalFile("tde_eegf.npy", (9259, 10),
                         "8fd6fb64a1f6720cfcf0b7d5ef5beeb6c26e835978304048f0c77945f0334f13",
                         "EEG, delay-embedded (lag 50)"),
    "temperature": EmpiricalFile(
        "tde_temperature_MoreSmoothedNoYearShort.npy", (5900, 5),
        "e24324e14ca79360a07d65074736edec4741d9b02ef084b796df2c3506047cfe",
        "daily temperature, smoothed, yearly cycle removed, delay-embedded (lag 500)"),
    "lorenz": EmpiricalFile("lorenz_data_chaos.npy", (100000, 3),
                            "45abf9717bd60cb230a27166489fc841086d7938d20b2e61de9624915fd3b7fc",
                            "Lorenz-63 (sigma=10, rho=38, beta=8/3), global z-score"),
    "lorenz2d": EmpiricalFile("lorenz_2d_chaos.npy", (100000, 2),
                              "581f6656ceb81bc2a69c0d0e3a67c4187cf945b3809392c662d462530f06cb72",
                              "columns (y, z) of lorenz_data_chaos.npy"),
    "roessler": EmpiricalFile("Roessler_chaos_rosenstein.npy", (100000, 3),
                              "4312a95cc05398ac2fbfe6d2279a6307319696f199f1e31d5a0bf654885b43c1",
                              "Roessler (a=0.15, b=0.2, c=10), global z-score"),
    "duffing": EmpiricalFile("duffing_data_chaos.npy", (100000, 3),
                             "4a471c963b43c93ae895913d48107d4b9192051cae61998918564dacc51e655f",
                             "forced Duffing (x, x', cos phase), not standardised"),
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """One line on stderr, once per process."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"chaosrnn: warning: {message}", file=sys.stderr, flush=True)


def find_empirical(name: str, path: str | Path | None = None) -> Path | None:
    """Path of an authors' file if it can be found (``path`` may be the file or its folder).
    A ``$CHAOSRNN_DATA_DIR`` that is not a folder, or that lacks the file when another folder
    has it, gets a one-line warning on stderr (once)."""
    if name not in EMPIRICAL:
        raise KeyError(f"unknown empirical data set {name!r}; known: {', '.join(EMPIRICAL)}")
    fname = EMPIRICAL[name].filename
    candidates = [Path(path)] if path is not None else paths.empirical_data_dirs()
    env = os.environ.get("CHAOSRNN_DATA_DIR") if path is None else None
    if env and not Path(env).is_dir():
        _warn_once(f"CHAOSRNN_DATA_DIR={env} is not a folder; looking in the other folders")
    for c in candidates:
        p = c / fname if c.is_dir() else c
        if p.is_file():
            if env and Path(env).is_dir() and c != Path(env):
                _warn_once(f"{fname} is not in CHAOSRNN_DATA_DIR={env}; using {p}")
            return p
    return None


def load_empirical(name: str, path: str | Path | None = None, *, verify: bool = True) -> Array:
    """Load one of the authors' data files (``EMPIRICAL``), checking shape, finiteness and
    (``verify``) SHA-256. Without ``path``, a file found in no local folder is downloaded
    (:func:`chaosrnn_utils.fetch.fetch`). A missing or wrong file raises an error that says
    where to get it."""
    known = EMPIRICAL.get(name)
    if known is None:
        raise KeyError(f"unknown empirical data set {name!r}; known: {', '.join(EMPIRICAL)}")
    found = find_empirical(name, path)
    where = f"{known.filename} (SHA-256 {known.sha256}) from {SOURCE_URL}"
    download = ""
    if found is None and path is None:  # in no local folder: download it
        from .fetch import DataUnavailable, fetch

        try:
            found = fetch(known.filename)
        except DataUnavailable as err:
            download = f" and could not be downloaded ({err.reason})"
    if found is None:
        dirs = [path] if path is not None else paths.empirical_data_dirs()
        searched = [str(d) for d in dirs]
        raise FileNotFoundError(
            f"{name} data not found (looked in: {', '.join(searched)}){download}. Download "
            f"{where} into data/external/ or set CHAOSRNN_DATA_DIR to its folder "
            "(python3 tasks.py fetch-data does this online)."
        )
    if verify and (digest := _sha256(found)) != known.sha256:
        raise ValueError(f"{found} has SHA-256 {digest}; expected {where}")
    x = np.load(found)
    if x.shape != known.shape:
        raise ValueError(f"{found} has shape {x.shape}; expected {known.shape} for {where}")
    return check_series(x, name=str(found))
