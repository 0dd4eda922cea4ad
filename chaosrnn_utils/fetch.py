"""The authors' data files: a pooch registry pinned to one commit of their repository, with
the lookup order local folders → user cache → download, and hash checks.

The files live in ``DurstewitzLab/ChaosRNN`` (folder ``datasets/``, GPLv3 / CC BY, see
data/README.md); none is copied into this project. Lookup order for a file: the folders of
:func:`chaosrnn_utils.paths.empirical_data_dirs` (``$CHAOSRNN_DATA_DIR``, ``data/external/``,
``../shared/data/``, the user cache), then a download from the pinned commit into the user
cache (into ``$CHAOSRNN_DATA_DIR`` when set: pooch's ``env=``). Every file found or fetched is
checked: SHA-256 for six files; the Mackey–Glass file has only its git blob id, the SHA-1 of
``b"blob <size>\\0" + content``.

    python3 tasks.py fetch-data      # fetch and verify all seven files
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths

REPOSITORY = "DurstewitzLab/ChaosRNN"
COMMIT = "0e84b300e03a250cdafbf0128f4644226201572a"
BASE_URL = f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}/datasets/"
ENV = "CHAOSRNN_DATA_DIR"
#: a downloader as pooch calls it: (url, output file, the ``pooch.Pooch``)
Downloader = Callable[[str, str, Any], None]


@dataclass(frozen=True)
class Remote:
    """One file of the authors' ``datasets/`` folder: its path there and its hash,
    ``"sha256:<hex>"`` or ``"gitblob:<hex>"`` (git's blob id)."""

    path: str
    hash: str


REMOTE = {
    "tde_eegf.npy": Remote(
        "EEGf/tde_eegf.npy",
        "sha256:8fd6fb64a1f6720cfcf0b7d5ef5beeb6c26e835978304048f0c77945f0334f13"),
    "tde_temperature_MoreSmoothedNoYearShort.npy": Remote(
        "weather_datasets/tde_temperature_MoreSmoothedNoYearShort.npy",
        "sha256:e24324e14ca79360a07d65074736edec4741d9b02ef084b796df2c3506047cfe"),
    "lorenz_data_chaos.npy": Remote(
        "Lorenz/lorenz_data_chaos.npy",
        "sha256:45abf9717bd60cb230a27166489fc841086d7938d20b2e61de9624915fd3b7fc"),
    "lorenz_2d_chaos.npy": Remote(
        "Lorenz/lorenz_2d_chaos.npy",
        "sha256:581f6656ceb81bc2a69c0d0e3a67c4187cf945b3809392c662d462530f06cb72"),
    "Roessler_chaos_rosenstein.npy": Remote(
        "Roessler_chaos_rosenstein.npy",
        "sha256:4312a95cc05398ac2fbfe6d2279a6307319696f199f1e31d5a0bf654885b43c1"),
    "duffing_data_chaos.npy": Remote(
        "duffing_data_chaos.npy",
        "sha256:4a471c963b43c93ae895913d48107d4b9192051cae61998918564dacc51e655f"),
    "MackeyGlass_data_chaos.npy": Remote(
        "MackeyGlass_data_chaos.npy", "gitblob:cc789a6abe698293d8fcd6ffc0fa154dab230d68"),
}
MACKEY_GLASS_FILE = "MackeyGlass_data_chaos.npy"


class HashMismatch(ValueError):
    """A data file whose content is not the pinned one."""


class DataUnavailable(FileNotFoundError):
    """A data file found nowhere and not downloadable (offline, or the server refused);
    ``reason``: why the download failed, in a few words."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


#: set (to anything but "" or "0") to never download: the files must be found locally
OFFLINE_ENV = "CHAOSRNN_OFFLINE"


def git_blob_id(path: str | Path) -> str:
    """git's blob id of a file: SHA-1 of ``b"blob <size>\\0"`` followed by its bytes."""
    path = Path(path)
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_hash(path: str | Path, kind: str) -> str:
    """``kind`` ("sha256" or "gitblob") digest of a file, as hex."""
    if kind == "gitblob":
        return git_blob_id(path)
    if kind == "sha256":
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    raise ValueError(f"unknown hash kind {kind!r}: use 'sha256' or 'gitblob'")


def verify(path: str | Path, filename: str | None = None) -> Path:
    """Check a file against its pinned hash (``filename``: its registry name, default its own
    name); :class:`HashMismatch` names the file, the expected and the found digest."""
    path = Path(path)
    name = filename or path.name
    if name not in REMOTE:
        raise KeyError(f"unknown data file {name!r}; known: {', '.join(REMOTE)}")
    kind, expected = REMOTE[name].hash.split(":")
    found = file_hash(path, kind)
    if found != expected:
        raise HashMismatch(f"{path}: {kind} {found} found, {expected} expected (the file of "
                           f"{REPOSITORY} at commit {COMMIT[:12]}); delete or replace it")
    return path


def cache_dir() -> Path:
    """Where downloads go: ``$CHAOSRNN_DATA_DIR`` when set, else the user cache."""
    return Path(os.environ.get(ENV) or paths.USER_CACHE)


def registry(path: str | Path | None = None) -> Any:
    """A ``pooch.Pooch`` of the seven files (flat names, URLs into the pinned commit);
    ``path``: its folder (default the user cache, or ``$CHAOSRNN_DATA_DIR``). The Mackey–Glass
    entry has no SHA-256 (pooch skips it); :func:`fetch` checks its git blob id. pooch is
    imported here only (the package imports without it, e.g. on a GPU image); its import
    loads ``tqdm.auto`` for progress bars we do not use, whose warning about a notebook
    without ipywidgets is silenced here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import pooch

    reg = {name: (r.hash if r.hash.startswith("sha256:") else None)
           for name, r in REMOTE.items()}
    return pooch.create(path=Path(path) if path else paths.USER_CACHE,
                        base_url=BASE_URL, registry=reg, env=None if path else ENV,
                        urls={name: BASE_URL + r.path for name, r in REMOTE.items()},
                        retry_if_failed=1)


def locate(filename: str, dirs: Sequence[Path] | None = None) -> Path | None:
    """The first copy of ``filename`` in ``dirs`` (default: ``paths.empirical_data_dirs()``),
    checked against its hash (a mismatch raises), or None; never downloads."""
    if filename not in REMOTE:
        raise KeyError(f"unknown data file {filename!r}; known: {', '.join(REMOTE)}")
    for d in paths.empirical_data_dirs() if dirs is None else dirs:
        p = Path(d) / filename
        if p.is_file():
            return verify(p, filename)
    return None


def how_to_get(filename: str) -> str:
    """One sentence: where the file is published and where to put it."""
    return (f"download {BASE_URL}{REMOTE[filename].path} and put it into data/external/ "
            f"or into the folder named by {ENV} (python3 tasks.py fetch-data does this online)")


def fetch(filename: str, *, dirs: Sequence[Path] | None = None, path: str | Path | None = None,
          downloader: Downloader | None = None) -> Path:
    """The verified local path of an authors' file: found (:func:`locate` over ``dirs``) or
    downloaded into ``path`` (default: :func:`cache_dir`) with ``downloader`` (default pooch's
    HTTP one; none with ``$CHAOSRNN_OFFLINE`` set). :class:`HashMismatch` for a wrong file (a
    wrong download is deleted), :class:`DataUnavailable` when it cannot be had, saying how to
    get it."""
    if (found := locate(filename, dirs)) is not None:
        return found
    try:
        pup = registry(path)
    except ImportError:
        raise DataUnavailable(f"{filename} is not here and pooch is not installed; "
                              f"{how_to_get(filename)}", "pooch is not installed") from None
    if downloader is None and os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        reason = f"{OFFLINE_ENV} is set"
        raise DataUnavailable(f"{filename} is not here and {reason}; {how_to_get(filename)}",
                              reason)
    try:
        got = Path(pup.fetch(filename, downloader=downloader))
    except ValueError as err:  # pooch's hash mismatch: it kept nothing
        raise HashMismatch(f"{filename} downloaded from {pup.get_url(filename)}: {err}") from None
    except Exception as err:  # noqa: BLE001 - network errors come as many types
        reason = f"{type(err).__name__}: {''.join(str(err).strip().splitlines()[:1])[:160]}"
        raise DataUnavailable(f"{filename} is not here and could not be downloaded "
                              f"({reason}); {how_to_get(filename)}", reason) from None
    try:
        return verify(got, filename)
    except HashMismatch:
        got.unlink(missing_ok=True)
        raise


_SAID: set[str] = set()


def fetch_or_none(filename: str, *, instead: str = "going on without it",
                  **kwargs) -> Path | None:
    """:func:`fetch`, or None with one line on stderr (once per file and process) when the
    file cannot be had, ending with ``instead`` (what the caller does without it). A hash
    mismatch raises."""
    try:
        return fetch(filename, **kwargs)
    except DataUnavailable as err:
        if filename not in _SAID:
            _SAID.add(filename)
            print(f"chaosrnn: {err}; {instead}", file=sys.stderr, flush=True)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 tasks.py fetch-data [FILE ...]``: fetch and verify the files (default all);
    status 1 when some could not be had (each said in one line)."""
    names = list(argv) if argv else list(REMOTE)
    missing = 0
    for name in names:
        try:
            print(f"{name}: {fetch(name)}", flush=True)
        except (KeyError, HashMismatch, DataUnavailable) as err:
            missing += 1
            print(f"{name}: {err.args[0] if err.args else err}", file=sys.stderr, flush=True)
    print(f"{len(names) - missing} of {len(names)} files here and verified "
          f"(pinned commit {COMMIT[:12]} of {REPOSITORY})", flush=True)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
