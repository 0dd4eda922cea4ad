"""Sweeps: a grid of member configurations, trained as one ensemble per architecture, with a
tidy results table that survives interruption.

A :class:`SweepSpec` names a data set, training settings, architectures and a grid of
:class:`~chaosrnn_utils.training.MemberConfig` values. :func:`run_sweep` trains the whole grid
as ensembles: per architecture the members are cut into ``spec.split`` sub-ensembles ("jobs";
one job per architecture by default), each trained and evaluated with
:func:`~chaosrnn_utils.metrics.evaluate`, one after another or by ``workers`` single-thread
processes at once. A member's numbers depend on the ensemble it is trained in only through
rounding (about 1e-8 relative: batched kernels add in another order). Layout of
``out_dir``::

    .lock                     held (flock) by the run in progress: pid and host
    spec.json                 the sweep and its inputs (package version, SHA-256 of the
                              resolved spec and of the training data); a rerun whose spec or
                              inputs differ is refused
    checkpoints/<job>.pt      training state, resumed by a rerun
    checkpoints/<job>.e<k>.pt with ``eval_epochs``: the state after epoch k, kept to be
                              evaluated once the job is trained
    checkpoints/<job>.lock    held (flock) by the process training <job>
    parts/<job>.csv           one row per member, written atomically once <job> is evaluated,
                              each row with a checksum (``row_sha256``)
    parts/<job>.models.pt     the job's final parameters (small: re-scoring needs no
                              retraining, :func:`load_job_models`)
    results.csv               all parts, once every job is done (last epoch's rows)
    curves.csv                with ``eval_epochs``: every row of every part, one per member
                              and evaluation epoch (learning curves)
    slurm/                    with ``executor="slurm"``: submitit's pickles and logs per
                              SLURM job, submitted.json (job -> SLURM job id)
    */*.bad-<n>               a damaged part or unreadable checkpoint, kept aside

with ``<job>`` = ``<arch>`` (split 1) or ``<arch>-<k>`` (k = 0 … split − 1). A rerun skips
finished jobs and resumes checkpointed ones, so a killed or time-limited sweep is continued by
running it again. A part is finished only if it has every member row of its job, each matching
its checksum and this sweep's inputs; otherwise it is moved aside and the job redone (from its
checkpoint). An unreadable checkpoint is moved aside and its job trained from scratch. Each
such repair is said in one line on stderr. Worker processes die with the sweep's process.

Executors: ``local`` (the calling process, or ``workers`` processes; with several GPUs each
worker gets its own) and ``slurm`` (one SLURM job array through submitit; a preempted or
timed-out job is requeued and resumes from its checkpoint). :func:`run_job` runs a single job
for any other scheduler.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import difflib
import hashlib
import io
import itertools
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import typing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from . import data as data_mod
from . import fused, metrics, paths, training
from .errors import USER_ERRORS, check_data_dir, error_line
from .forcing import MemberConfig
from .models import MODELS
from .training import TrainSettings
from .validate import check_positive_int, positive_int_arg, seconds_arg

__all__ = ["SlurmOptions", "SweepSpec", "load_sweep_data", "run_job", "run_sweep",
           "spec_from_args", "sweep_inputs", "sweep_jobs", "sweep_main", "worker_devices"]

MEMBER_FIELDS = tuple(f.name for f in fields(MemberConfig))
SETTINGS_FIELDS = tuple(f.name for f in fields(TrainSettings) if f.name != "model")
#: exit status of the command line when the time limit stopped the sweep before the end
EXIT_INCOMPLETE = 3
#: key of ``spec.json`` holding the recorded inputs (ignored when a spec is read)
INPUTS_KEY = "inputs"
#: last column of a part: SHA-256 of the header and the row as written
ROW_CHECK = "row_sha256"


def _unknown(kind: str, names: Sequence[str], known: Sequence[str]) -> None:
    """Raise a ValueError naming the first of ``names`` not in ``known`` (with a hint)."""
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown {kind} {name!r}{hint} (known: {', '.join(known)})")


@dataclass
class SweepSpec:
    """One sweep: data, shared settings, architectures and the member grid.

    ``dataset``: a :data:`~chaosrnn_utils.data.PAPER_DATASETS` name or a path to a ``.npy``
    (n, N) file (relative to the working directory; at most ``n_data`` rows are used).
    ``settings``: a profile name of :data:`~chaosrnn_utils.training.SETTINGS`, or a dict of
    :class:`TrainSettings` fields with an optional ``"profile"`` key as the base (default:
    the TrainSettings defaults); ``model`` comes from ``architectures``. ``grid``: MemberConfig
    field → list of values (cartesian product, in key order); ``members``: explicit MemberConfig
    dicts appended after the grid. ``split``: sub-ensembles per architecture (jobs that
    worker processes can run side by side). ``eval_epochs``: epochs before the last at which
    every member is evaluated too (from checkpoints kept at those epochs): the rows of a
    part then carry ``eval_epoch``, one per member and evaluation epoch, the last included.
    ``protocols``: the evaluation protocols (:data:`~chaosrnn_utils.metrics.PROTOCOLS`);
    training is always on the first 1 − ``test_fraction`` of the series and ``heldout``
    (always first) scores against the rest; ``paper`` adds the scores against the whole
    series (:func:`~chaosrnn_utils.metrics.protocol_target`) as columns ``<key>_paper``
    (:data:`PROTOCOL_KEYS`). Left out of the spec's hash when only ``heldout``.
    An ``inputs`` key (what :func:`run_sweep` records
    in ``spec.json``) is ignored when a spec is read.
    """

    name: str
    dataset: str
    architectures: list[str] = field(default_factory=lambda: ["plrnn"])
    grid: dict[str, list[Any]] = field(default_factory=dict)
    members: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] | str = field(default_factory=dict)
    n_data: int = 100_000
    test_fraction: float = 0.2
    n_generate: int = 100_000
    checkpoint_every: int = 50
    split: int = 1
    eval_epochs: list[int] = field(default_factory=list)
    protocols: list[str] = field(default_factory=lambda: ["heldout"])

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists, not tuples). ``eval_epochs`` is left out when empty,
        so that a spec without learning curves reads and hashes as before the field existed
        (its ``spec.json`` and the ``spec_sha256`` of its rows stay valid)."""
        d = json.loads(json.dumps(asdict(self)))
        if not d["eval_epochs"]:
            del d["eval_epochs"]
        if d["protocols"] == ["heldout"]:
            del d["protocols"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepSpec:
        """Build from a dict; unknown keys raise ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"a sweep spec must be a JSON object, got {type(d).__name__}")
        d = {k: v for k, v in d.items() if k != INPUTS_KEY}
        known = [f.name for f in fields(cls)]
        _unknown("sweep spec key", list(d), known)
        missing = [k for k in ("name", "dataset") if k not in d]
        if missing:
            raise ValueError(f"sweep spec lacks {', '.join(missing)}")
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | Path) -> SweepSpec:
        """Read a spec written by :meth:`to_json` (or by hand)."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_json(self, path: str | Path) -> Path:
        """Write the spec as indented JSON, atomically."""
        path = Path(path)
        _atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    # ------------------------------------------------------------------ resolution

    def train_settings(self, architecture: str) -> TrainSettings:
        """The resolved :class:`TrainSettings` of one architecture."""
        s = self.settings
        overrides = {"profile": s} if isinstance(s, str) else dict(s)
        if not isinstance(overrides, dict):
            raise ValueError(f"settings must be a profile name or a dict, got {s!r}")
        profile = overrides.pop("profile", None)
        if profile is None:
            base = TrainSettings()
        elif profile in training.SETTINGS:
            base = training.SETTINGS[profile]
        else:
            raise ValueError(f"unknown settings profile {profile!r} "
                             f"(profiles: {', '.join(training.SETTINGS)})")
        if "model" in overrides:
            raise ValueError("settings must not set 'model': list it in 'architectures'")
        _unknown("settings field", list(overrides), SETTINGS_FIELDS)
        return replace(base, model=architecture, **overrides)

    def member_configs(self) -> list[MemberConfig]:
        """The grid's members (cartesian product in key order), then the explicit ones."""
        if not isinstance(self.grid, dict):
            raise ValueError(f"grid must be a dict field -> list of values, got {self.grid!r}")
        _unknown("MemberConfig field in grid", list(self.grid), MEMBER_FIELDS)
        for k, values in self.grid.items():
            if not isinstance(values, list | tuple) or not values:
                raise ValueError(f"grid[{k!r}] must be a non-empty list, got {values!r}")
        out = []
        if self.grid:
            keys = list(self.grid)
            for combo in itertools.product(*(self.grid[k] for k in keys)):
                out.append(MemberConfig(**dict(zip(keys, combo, strict=True))))
        if not isinstance(self.members, list | tuple):
            raise ValueError(f"members must be a list of dicts, got {self.members!r}")
        for m in self.members:
            if not isinstance(m, dict):
                raise ValueError(f"each entry of members must be a dict, got {m!r}")
            _unknown("MemberConfig field in members", list(m), MEMBER_FIELDS)
            out.append(MemberConfig(**m))
        if not out:
            raise ValueError("empty grid: give grid values and/or explicit members")
        for m in out:
            if isinstance(m.seed, bool) or not isinstance(m.seed, int) or m.seed < 0:
                raise ValueError(f"seed must be a non-negative integer, got {m.seed!r}")
        seen: set[MemberConfig] = set()
        for m in out:
            if m in seen:
                raise ValueError(f"member {m} appears twice in the sweep")
            seen.add(m)
        return out

    def validate(self) -> SweepSpec:
        """Raise a clear ValueError for anything wrong that shows without the data."""
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        _dataset_kind(self.dataset)
        if not isinstance(self.architectures, list | tuple) or not self.architectures:
            raise ValueError("architectures must be a non-empty list of model names")
        _unknown("architecture", list(self.architectures), list(MODELS))
        if len(set(self.architectures)) != len(self.architectures):
            raise ValueError(f"architectures repeat: {self.architectures}")
        check_positive_int(self.n_data, "n_data")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        check_positive_int(self.n_generate, "n_generate")
        if self.n_generate < 100:
            raise ValueError(f"n_generate must be at least 100 (D_H uses 50 chunks), "
                             f"got {self.n_generate}")
        check_positive_int(self.checkpoint_every, "checkpoint_every")
        check_positive_int(self.split, "split")
        if (not isinstance(self.protocols, list | tuple) or not self.protocols
                or self.protocols[0] != "heldout"
                or len(set(self.protocols)) != len(self.protocols)):
            raise ValueError(f"protocols must list 'heldout' first, without repeats, got "
                             f"{self.protocols!r}")
        _unknown("protocol", list(self.protocols), list(metrics.PROTOCOLS))
        members = self.member_configs()
        if self.split > len(members):
            raise ValueError(f"split {self.split} exceeds the {len(members)} members")
        for arch in self.architectures:
            s = self.train_settings(arch).validate(sys.maxsize)
            training.check_keep(self.eval_epochs, s.epochs)
            for m in members:
                m.validate(s.seq_len)
        return self


# ---------------------------------------------------------------------------- helpers


def _dataset_kind(dataset: Any) -> str:
    """``"paper"`` or ``"file"``; ValueError for anything else."""
    if not isinstance(dataset, str) or not dataset:
        raise ValueError(f"dataset must be a name or a .npy path, got {dataset!r}")
    if dataset in data_mod.PAPER_DATASETS:
        return "paper"
    if dataset.endswith(".npy"):
        if not Path(dataset).is_file():
            raise ValueError(f"dataset file {dataset!r} does not exist")
        return "file"
    close = difflib.get_close_matches(dataset, list(data_mod.PAPER_DATASETS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown dataset {dataset!r}{hint} (known: "
                     f"{', '.join(data_mod.PAPER_DATASETS)}, or a path to a .npy file)")


def load_sweep_data(spec: SweepSpec) -> tuple[np.ndarray, np.ndarray]:
    """The spec's (train, test) series: contiguous split of at most ``n_data`` steps."""
    if _dataset_kind(spec.dataset) == "paper":
        x = data_mod.paper_dataset(spec.dataset, spec.n_data)
    else:
        try:
            with open(spec.dataset, "rb") as fh:
                if fh.read(6) != b"\x93NUMPY":
                    raise ValueError("not a .npy file")
            x = np.load(spec.dataset, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise ValueError(f"dataset file {spec.dataset!r} is unreadable "
                             f"({training.brief(err)})") from None
    x = data_mod.check_series(x, name=spec.dataset)[: spec.n_data]
    return data_mod.train_test_split(x, spec.test_fraction)


def _atomic_write_text(path: Path, text: str) -> None:
    with paths.atomic_open(path, "w") as fh:
        fh.write(text)


def _atomic_csv(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` to ``path`` via a temporary file in the same folder and a rename."""
    _atomic_write_text(path, df.to_csv(index=False))


def git_commit() -> str:
    """The project's ``git rev-parse HEAD``, or ``"unknown"``."""
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.ROOT, capture_output=True,
                           text=True, timeout=10, check=True)
        return r.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ---------------------------------------------------------------------------- inputs


def _data_sha256(x_train: np.ndarray, x_test: np.ndarray) -> str:
    """SHA-256 of the arrays trained and evaluated on (shapes and float64 bytes)."""
    h = hashlib.sha256()
    for x in (x_train, x_test):
        a = np.ascontiguousarray(x, dtype="<f8")
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def sweep_inputs(spec: SweepSpec, x_train: np.ndarray, x_test: np.ndarray) -> dict[str, str]:
    """What a sweep's results rest on, recorded in ``spec.json`` and in every row: the
    package ``version``, ``spec_sha256`` (the spec with each architecture's resolved
    settings) and ``data_sha256`` (:func:`load_sweep_data`'s arrays)."""
    from . import __version__

    resolved = {"spec": spec.to_dict(),
                "settings": {a: asdict(spec.train_settings(a)) for a in spec.architectures}}
    blob = json.dumps(resolved, sort_keys=True, default=str).encode()
    return dict(version=str(__version__), spec_sha256=hashlib.sha256(blob).hexdigest(),
                data_sha256=_data_sha256(x_train, x_test))


def _short(value: Any, n: int = 60) -> str:
    """``repr(value)``, cut to ``n`` characters."""
    text = repr(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def _claim_out_dir(spec: SweepSpec, out_dir: Path, inputs: dict[str, str]) -> str | None:
    """Write ``spec.json`` (the spec and its inputs), or check that the one there is this
    spec with these inputs: a one-line ValueError naming what differs. Returns a note when an
    older ``spec.json`` without inputs was completed."""
    target = out_dir / "spec.json"
    record = json.dumps({**spec.to_dict(), INPUTS_KEY: inputs}, indent=1) + "\n"
    how = f"use a new --out folder, or delete {out_dir} to start over"
    if not target.exists():
        _atomic_write_text(target, record)
        return None
    try:
        old = json.loads(target.read_text(encoding="utf-8"))
        if not isinstance(old, dict):
            raise ValueError(f"a JSON {type(old).__name__}, not an object")
    except (OSError, ValueError) as err:
        raise ValueError(f"{target} is unreadable ({training.brief(err)}); {how}") from None
    old_inputs = old.pop(INPUTS_KEY, None)
    new = spec.to_dict()
    changed = [f"spec field {k!r} is {_short(old[k]) if k in old else 'unset'} there, "
               f"{_short(new[k]) if k in new else 'unset'} now"
               for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) or
               (k in old) != (k in new)]
    if changed:
        raise ValueError(f"{out_dir} holds another sweep: {'; '.join(changed)}; {how}")
    if not isinstance(old_inputs, dict):
        _atomic_write_text(target, record)
        return (f"[{spec.name}] {target} records no inputs (an older version wrote it): "
                "recorded the current ones; parts without them are redone from checkpoints")
    changed = []
    if old_inputs.get("version") != inputs["version"]:
        changed.append(f"package version {old_inputs.get('version')} there, "
                       f"{inputs['version']} now")
    if old_inputs.get("spec_sha256") != inputs["spec_sha256"]:
        changed.append("the resolved training settings differ (a settings profile changed)")
    if old_inputs.get("data_sha256") != inputs["data_sha256"]:
        what = (f"data file {spec.dataset!r}" if _dataset_kind(spec.dataset) == "file"
                else f"data set {spec.dataset!r}")
        changed.append(f"{what} changed (SHA-256 of the training data "
                       f"{str(old_inputs.get('data_sha256'))[:12]}… there, "
                       f"{inputs['data_sha256'][:12]}… now)")
    if changed:
        raise ValueError(f"{out_dir} was started on other inputs: {'; '.join(changed)}; {how}")
    return None


class SweepInUse(ValueError):
    """Another process holds the sweep folder's lock (a user error: one line, status 2)."""


@contextmanager
def _locked(out_dir: Path, name: str = ".lock") -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on ``out_dir/<name>`` (which records pid and
    host) for the block: a second run on the folder fails at once with a one-line ValueError
    naming the holder. Without ``fcntl`` (not POSIX) or file-system locks: no lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = out_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text(errors="replace").strip() or "a process not yet named"
            raise SweepInUse(f"{out_dir} is in use by another sweep ({holder}; lock "
                             f"{path}): wait for it to end or stop it") from None
        except OSError as err:
            print(f"cannot lock {path} ({training.brief(err)}); going on without a lock",
                  file=sys.stderr, flush=True)
        else:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def _job_busy(out_dir: Path, job: str) -> bool:
    """Whether another process holds the job's lock (a SLURM task or a ``--job`` run)."""
    if not (out_dir / "checkpoints" / f"{job}.lock").exists():
        return False
    try:
        with _locked(out_dir, f"checkpoints/{job}.lock"):
            return False
    except SweepInUse:
        return True


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Temporary files left by a killed run (call only while holding the folder's lock); those
    of a job another process is running (its lock held) are its own and stay."""
    for d in (out_dir, out_dir / "parts", out_dir / "checkpoints"):
        for tmp in [*d.glob(".*.tmp"), *d.glob("tmp*.tmp")]:
            job = tmp.name[1:].split(".", 1)[0] if tmp.name.startswith(".") else None
            if d != out_dir and job and _job_busy(out_dir, job):
                continue
            tmp.unlink(missing_ok=True)


def _move_aside(path: Path) -> Path:
    """Rename ``path`` to the first free ``<name>.bad-<n>`` (n = 1, 2, …) and return that."""
    n = 1
    while (bad := path.with_name(f"{path.name}.bad-{n}")).exists():
        n += 1
    os.replace(path, bad)
    return bad


# ---------------------------------------------------------------------------- parts


def _row_digest(header: Sequence[str], row: Sequence[str]) -> str:
    """SHA-256 of a part's header and one of its rows, as text fields."""
    h = hashlib.sha256("\x1f".join(header).encode())
    h.update(b"\x1e" + "\x1f".join(row).encode())
    return h.hexdigest()


def _write_part(df: pd.DataFrame, path: Path) -> None:
    """``df`` as CSV with a last column ``row_sha256`` (header and row text), atomically."""
    header, *rows = csv.reader(io.StringIO(df.to_csv(index=False)))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*header, ROW_CHECK])
    for row in rows:
        writer.writerow([*row, _row_digest(header, row)])
    _atomic_write_text(path, buf.getvalue())


def _part_problem(spec: SweepSpec, path: Path, arch: str, index: range,
                  inputs: dict[str, str]) -> str | None:
    """Why the part at ``path`` is not the finished job ``arch``/``index`` of this sweep with
    these inputs (None: it is): unreadable, a row edited or cut (checksum), member rows
    missing or extra, rows of another sweep or of other inputs."""
    try:
        header, *rows = csv.reader(io.StringIO(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        return f"unreadable: {training.brief(err)}"
    except ValueError:
        return "empty"
    need = ("sweep", "architecture", "member", ROW_CHECK, *inputs)
    if header[-1:] != [ROW_CHECK] or not set(need) <= set(header):
        return "no checksum or input columns (an older version's part, or damaged)"
    missing = [k for k in metrics.EVALUATE_KEYS if k not in header]
    if missing:
        return f"no {', '.join(missing)} column (an older version's evaluation)"
    for k, row in enumerate(rows):
        if len(row) != len(header) or row[-1] != _row_digest(header[:-1], row[:-1]):
            return f"row {k + 1} does not match its checksum (edited or damaged)"
    col = {name: i for i, name in enumerate(header)}
    epochs = eval_epochs(spec, arch)
    if len(epochs) > 1 and "eval_epoch" not in col:
        return "no eval_epoch column (a part without the learning-curve evaluations)"
    got = [(row[col["eval_epoch"]] if len(epochs) > 1 else "", row[col["member"]])
           for row in rows]
    want = [(str(e) if len(epochs) > 1 else "", str(i)) for e in epochs for i in index]
    if got != want:
        have = ", ".join(f"{m}@{e}" if e else m for e, m in got) or "none"
        return (f"member rows {_short(have, 40)} where {index.start}..{index.stop - 1}"
                + (f" at epochs {', '.join(map(str, epochs))}" if len(epochs) > 1 else "")
                + " are expected")
    for name, want in (("sweep", spec.name), ("architecture", arch), *inputs.items()):
        other = sorted({row[col[name]] for row in rows} - {want})
        if other:
            return f"{name} {_short(other[0], 30)} in the rows, {_short(want, 30)} here"
    return None


def _checkpoint_wall_time(path: Path) -> float:
    """Training wall time already stored in a checkpoint (0 without one)."""
    if not path.exists():
        return 0.0
    value = training.read_checkpoint(path)["wall_time"]
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise training.CheckpointError(f"checkpoint {path} has wall_time {_short(value)}"
                                       ) from err


def eval_epochs(spec: SweepSpec, architecture: str) -> list[int]:
    """The epochs at which ``architecture``'s members are evaluated: ``spec.eval_epochs`` and
    the last."""
    return [*sorted(spec.eval_epochs), spec.train_settings(architecture).epochs]


def sweep_jobs(spec: SweepSpec) -> list[tuple[str, str, range]]:
    """(job name, architecture, member indices) of every job, in spec order."""
    n = len(spec.member_configs())
    bounds = [round(k * n / spec.split) for k in range(spec.split + 1)]
    return [(arch if spec.split == 1 else f"{arch}-{k}", arch, range(bounds[k], bounds[k + 1]))
            for arch in spec.architectures for k in range(spec.split)]


def _collect(spec: SweepSpec, parts_dir: Path, jobs: set[str]) -> pd.DataFrame:
    """The parts of ``jobs``, in architecture order (spec order), then member index."""
    frames = [pd.read_csv(parts_dir / f"{job}.csv").drop(columns=ROW_CHECK)
              for job, _, _ in sweep_jobs(spec) if job in jobs]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    order = {a: i for i, a in enumerate(spec.architectures)}
    key = df["architecture"].map(order)
    by = ["_order", "eval_epoch", "member"] if "eval_epoch" in df else ["_order", "member"]
    df = df.assign(_order=key).sort_values(by, kind="stable")
    return df.drop(columns="_order").reset_index(drop=True)


def _rows(spec: SweepSpec, arch: str, settings: TrainSettings, members: list[MemberConfig],
          state: training.TrainState, scores: list[dict[str, Any]], commit: str,
          first: int = 0, inputs: dict[str, str] | None = None,
          eval_epoch: int | None = None) -> pd.DataFrame:
    """One row per member: identity, configuration, metrics, training outcome, provenance
    (commit, ``inputs`` of :func:`sweep_inputs`); ``eval_epoch`` (learning curves) after
    the member index when given."""
    summary = training.member_summary(state, members)
    settings_json = json.dumps(asdict(settings), sort_keys=True)
    rows = []
    for e, (summ, score) in enumerate(zip(summary, scores, strict=True)):
        row: dict[str, Any] = dict(sweep=spec.name, dataset=spec.dataset, architecture=arch,
                                   member=first + e)
        if eval_epoch is not None:
            row["eval_epoch"] = eval_epoch
        row.update({k: summ[k] for k in MEMBER_FIELDS})
        row.update({k: v for k, v in score.items() if k != "member"})
        row.update({k: summ[k] for k in ("final_loss", "diverged", "diverged_epoch",
                                         "epochs_done")})
        row.update(wall_time=state.wall_time, git_commit=commit, **(inputs or {}),
                   settings=settings_json)
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- the runner


# Relative cost of one update per architecture (measured, benchmarks/bench_training.py), to
# start the longest jobs first when workers run them side by side.
JOB_COST = {"lstm": 3.0}
#: seconds of one LSTM member-epoch (10 batches of 32 × 200 steps, latent 30, one thread) on
#: the machine the committed times come from (a quiet 2-core AMD EPYC, both cores busy:
#: the quick main job's measured parts, README), the unit of :func:`job_estimate`
MEMBER_EPOCH_S = 0.15
#: the evaluation of one member (100 000-step free run, D_stsp, D_H, λ_max) in LSTM
#: member-epochs, per architecture (measured side by side with the training epochs:
#: LSTM 14, RNN 4.7)
EVAL_COST = {"lstm": 14.0, "rnn": 5.0, "plrnn": 5.0}


def job_estimate(spec: SweepSpec, arch: str, members: int, scale: float = 1.0) -> float:
    """Estimated seconds of one job of ``members`` members of ``arch``: epochs × members ×
    :data:`MEMBER_EPOCH_S` (÷ :data:`JOB_COST` for the cheaper architectures; × the sequence
    length and batches relative to 200 and 10) for every evaluation epoch's model plus its
    evaluation (:data:`EVAL_COST`), × ``scale`` (this machine against the committed one,
    :func:`calibrate`)."""
    s = spec.train_settings(arch)
    per_epoch = (1.0 if arch == "lstm" else 1.0 / JOB_COST["lstm"]) \
        * s.seq_len / 200 * s.batches_per_epoch / 10 * s.batch_size / 32
    n_eval = len(eval_epochs(spec, arch))
    units = members * (s.epochs * per_epoch + n_eval * EVAL_COST.get(arch, 5.0))
    return units * MEMBER_EPOCH_S * scale


def calibrate(members: int = 6) -> float:
    """This machine's speed against the committed one's: the seconds of one LSTM epoch of
    ``members`` members (Lorenz-63, quick settings, one thread; timed after a first,
    warm-up epoch) over ``members`` × :data:`MEMBER_EPOCH_S`. About two epochs' time."""
    import dataclasses

    spec = SweepSpec(name="calibration", dataset="lorenz", architectures=["lstm"],
                     grid={"tau": [30], "seed": list(range(members))},
                     settings={"profile": "paper", "epochs": 1, "seq_len": 200})
    x_train = load_sweep_data(spec)[0]
    settings = dataclasses.replace(spec.train_settings("lstm"), epochs=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        training.train(x_train, spec.member_configs(), settings, device="cpu", progress=False)
        t0 = time.perf_counter()
        training.train(x_train, spec.member_configs(), settings, device="cpu", progress=False)
        took = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    return took / (members * MEMBER_EPOCH_S)


def pending_jobs(spec: SweepSpec, out_dir: str | Path) -> tuple[dict[str, str],
                                                                   list[tuple[str, str, range]]]:
    """What :func:`run_sweep` would do first, without training: check the spec and data,
    claim ``out_dir`` (``spec.json``) under its lock, move damaged parts aside; returns
    (:func:`sweep_inputs`, the jobs not yet finished), for a caller that runs the jobs itself
    (:func:`_run_job` in a pool of its own) and then calls :func:`run_sweep` for the table."""
    spec.validate()
    out_dir = Path(out_dir)
    x_train, x_test = load_sweep_data(spec)
    _check_data_fits(spec, x_train, x_test)
    inputs = sweep_inputs(spec, x_train, x_test)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir):
        if (note := _claim_out_dir(spec, out_dir, inputs)) is not None:
            _note(note)
        _remove_stale_temporaries(out_dir)
        jobs = sweep_jobs(spec)
        finished = _finished_parts(spec, out_dir, inputs, jobs)
    return inputs, [j for j in jobs if j[0] not in finished]
#: prctl option: the signal a process gets when its parent dies (Linux, <linux/prctl.h>)
_PR_SET_PDEATHSIG = 1


def worker_devices(workers: int, device: str | None, n_cuda: int) -> list[str | None]:
    """The device of each of ``workers`` local worker processes: ``device`` when given (all
    the same), else with ``n_cuda`` > 1 GPUs worker k gets ``cuda:{k mod n_cuda}`` (its own
    GPU while workers ≤ GPUs), else None (each job's default: ``cuda`` or the CPU)."""
    if device is not None or n_cuda < 2:
        return [device] * workers
    return [f"cuda:{k % n_cuda}" for k in range(workers)]


#: the device a local worker process was given (:func:`worker_devices`), None elsewhere
_WORKER_DEVICE: str | None = None
#: tqdm options of this worker process's epoch bars (set by :func:`_worker_init`)
_BAR: dict[str, Any] = {}


def _worker_init(parent: int, lock: Any = None, slots: Any = None, devices: Any = None) -> None:
    """Initializer of each worker process: die with the parent ``parent`` (the sweep's
    process). Linux: the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``);
    elsewhere, and as a second guard, a daemon thread exits when the parent pid changes.
    ``lock``, ``slots`` (shared with the parent): tqdm's write lock and a counter that gives
    each worker its own line for the epoch bars of the jobs it runs. ``devices``: a queue
    this worker takes its device from (:func:`worker_devices`)."""
    global _WORKER_DEVICE
    if devices is not None:
        _WORKER_DEVICE = devices.get()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL),
                                                     0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="watch-parent",
                     daemon=True).start()
    if lock is not None and slots is not None:
        tqdm.set_lock(lock)
        with slots.get_lock():
            slots.value += 1
            _BAR["position"] = slots.value


def _watch_parent(parent: int, every: float = 1.0) -> None:
    """End this process once its parent is no longer ``parent`` (it died; we were adopted)."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _run_job(spec_dict: dict[str, Any], out_dir: str, job: str, arch: str, index: range,
             device: str | None, deadline: float | None, progress: bool,
             inputs: dict[str, str], threads: int | None = None, static: bool = False,
             eval_device: str | None = None) -> tuple[str, bool, str, list[str]]:
    """Train (or resume) and evaluate one job; returns (job, finished, message, notes: lines
    on repairs made). Runs in the calling process or in a worker (``threads``: torch threads
    there). ``deadline``: a ``training.clock()`` reading after which training stops at the end
    of an epoch. ``inputs``: :func:`sweep_inputs`, checked against the data loaded here.
    ``static``: ``train(static=True)`` (one CUDA graph per update on a GPU) where the
    architecture has a fused engine. ``eval_device``: where the finished ensemble is
    evaluated (None: where it trained). Holds the job's lock (``checkpoints/<job>.lock``): a
    job another process is running (a SLURM task, a ``--job`` run) is skipped, saying so."""
    with ExitStack() as stack:
        try:
            stack.enter_context(_locked(Path(out_dir), f"checkpoints/{job}.lock"))
        except SweepInUse as err:
            holder = str(err).split("(", 1)[-1].split(";", 1)[0]
            return job, False, (f"[{spec_dict.get('name')}] {job}: being run by another "
                                f"process ({holder}); skipped, rerun when it is done"), []
        return _train_job(spec_dict, out_dir, job, arch, index, device, deadline, progress,
                          inputs, threads, static, eval_device)


def _train_job(spec_dict: dict[str, Any], out_dir: str, job: str, arch: str, index: range,
               device: str | None, deadline: float | None, progress: bool,
               inputs: dict[str, str], threads: int | None, static: bool,
               eval_device: str | None) -> tuple[str, bool, str, list[str]]:
    """:func:`_run_job` once the job's lock is held."""
    if threads is not None:
        torch.set_num_threads(threads)
    if device is None:
        device = _WORKER_DEVICE
    spec = SweepSpec.from_dict(spec_dict)
    out = Path(out_dir)
    part, ckpt = out / "parts" / f"{job}.csv", out / "checkpoints" / f"{job}.pt"
    members = spec.member_configs()[index.start: index.stop]
    x_train, x_test = load_sweep_data(spec)
    if _data_sha256(x_train, x_test) != inputs["data_sha256"]:
        raise ValueError(f"[{spec.name}] {job}: the data of {spec.dataset!r} changed while the "
                         "sweep ran; restore it, or use a new --out folder")
    settings = spec.train_settings(arch)
    notes = []

    bar = dict(_BAR, desc=f"{spec.name} {job}") if progress and _BAR else progress

    def fit() -> training.TrainState:
        limit = None
        if deadline is not None:
            limit = _checkpoint_wall_time(ckpt) + max(deadline - training.clock(), 0.0)
        return training.train(x_train, members, settings, device=device, checkpoint=ckpt,
                              checkpoint_every=spec.checkpoint_every, time_limit=limit,
                              progress=bar, static=static and graphable,
                              keep_at=spec.eval_epochs)

    graphable = settings.engine == "fused" and MODELS[settings.model] in fused.FUSED_MODELS

    try:
        state = fit()
    except training.CheckpointError as err:
        if not ckpt.exists():
            raise
        bad = _move_aside(ckpt)
        notes.append(f"[{spec.name}] {job}: {err}; kept as {bad.name}, training the job "
                     "from scratch")
        state = fit()
    if state.epoch < settings.epochs:
        return job, False, (f"[{spec.name}] {job}: stopped at epoch {state.epoch}/"
                            f"{settings.epochs} (time limit); rerun to continue"), notes
    t0 = time.perf_counter()
    df = _evaluate_job(spec, job, arch, index, state, ckpt, x_test, inputs,
                       eval_device or device, x_train=x_train)
    save_job_models(state, members, models_path(part))
    _write_part(df, part)
    return job, True, (f"[{spec.name}] {job}: {len(members)} members, {state.epoch} epochs, "
                       f"{int((~state.alive).sum())} diverged, train {state.wall_time:.1f} s, "
                       f"eval {time.perf_counter() - t0:.1f} s -> {part}"), notes


#: the keys of :func:`metrics.evaluate` a further protocol adds, as ``<key>_<protocol>``
PROTOCOL_KEYS = ("D_stsp", "frac_in_box", "D_H", "D_stsp_authors", "frac_in_box_authors",
                 "D_H_authors", "PE1", "PE5", "PE25")


def evaluate_protocols(spec: SweepSpec, model: Any, x_train: np.ndarray,
                       x_test: np.ndarray) -> list[dict[str, Any]]:
    """Per member, :func:`metrics.evaluate` under ``heldout`` (plain keys) and under every
    further protocol of ``spec.protocols`` (:data:`PROTOCOL_KEYS` suffixed ``_<protocol>``:
    target :func:`metrics.protocol_target`, its GMM layout, no second Lyapunov exponent)."""
    scores = metrics.evaluate(model, x_test, n_generate=spec.n_generate)
    for protocol in spec.protocols[1:]:
        target = metrics.protocol_target(x_train, x_test, protocol)
        more = metrics.evaluate(model, target, n_generate=spec.n_generate, lyap_steps=0,
                                gmm_layout=metrics.PROTOCOL_GMM_LAYOUT[protocol])
        for row, extra in zip(scores, more, strict=True):
            row.update({f"{k}_{protocol}": extra[k] for k in PROTOCOL_KEYS})
    return scores


def models_path(part: Path) -> Path:
    """``parts/<job>.models.pt`` beside a part ``parts/<job>.csv``."""
    return part.with_suffix(".models.pt")


def save_job_models(state: training.TrainState, members: list[MemberConfig],
                    path: Path) -> Path:
    """Write a job's final parameters (every member, the diverged ones frozen at their last
    finite values) with the member configurations and model sizes, atomically: a few kB per
    member, so that a finished sweep can be scored again without retraining."""
    model = state.model
    blob = dict(model=type(model).__name__, latent_dim=model.latent_dim,
                obs_dim=model.obs_dim, n_models=model.n_models, seeds=list(model.seeds),
                dtype=str(model.dtype).removeprefix("torch."),
                options=model._extra_config(), members=[asdict(m) for m in members],
                alive=[bool(v) for v in state.alive.detach().cpu()],
                state={k: v.detach().cpu() for k, v in model.state_dict().items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with paths.atomic_open(path) as fh:
        torch.save(blob, fh)
    return path


def load_job_models(path: str | Path) -> tuple[list[MemberConfig], Any]:
    """(member configurations, ensemble model on the CPU) written by :func:`save_job_models`."""
    d = torch.load(path, map_location="cpu", weights_only=True)
    names = {cls.__name__: name for name, cls in MODELS.items()}
    model = MODELS[names[d["model"]]](d["latent_dim"], d["obs_dim"], n_models=d["n_models"],
                                      seeds=d["seeds"], dtype=getattr(torch, d["dtype"]),
                                      **d["options"])
    model.load_state_dict(d["state"])
    return [MemberConfig(**m) for m in d["members"]], model


def _evaluate_job(spec: SweepSpec, job: str, arch: str, index: range,
                  state: training.TrainState, ckpt: Path, x_test: np.ndarray,
                  inputs: dict[str, str], device: str | None, *,
                  x_train: np.ndarray | None = None) -> pd.DataFrame:
    """The rows of a trained job: its members evaluated (:func:`evaluate_protocols`) at every
    epoch of :func:`eval_epochs`, the last from ``state``, the others from the snapshots
    kept beside ``ckpt``; on ``device`` (None: where the job trained)."""
    if x_train is None:
        x_train = load_sweep_data(spec)[0]
    settings, commit = spec.train_settings(arch), git_commit()
    members = spec.member_configs()[index.start: index.stop]
    frames = []
    for epoch in eval_epochs(spec, arch):
        at = state
        if epoch != state.epoch:
            snap = training.snapshot_path(ckpt, epoch)
            if not snap.exists():
                raise training.CheckpointError(
                    f"[{spec.name}] {job}: no snapshot {snap} of epoch {epoch} for the "
                    f"learning curve (the job was trained without it); delete {ckpt} to "
                    "train it again")
            at = training.load_state(snap, members, settings, state.model.obs_dim,
                                     device=state.model.device)
        model = at.model if device is None else at.model.to(device)
        scores = evaluate_protocols(spec, model, x_train, x_test)
        frames.append(_rows(spec, arch, settings, members, at, scores, commit, index.start,
                            inputs, eval_epoch=epoch if spec.eval_epochs else None))
    return pd.concat(frames, ignore_index=True)


def _note(line: str) -> None:
    """A repair or a warning: one line on stderr, whatever ``progress``."""
    print(line, file=sys.stderr, flush=True)


def _check_data_fits(spec: SweepSpec, x_train: np.ndarray, x_test: np.ndarray) -> None:
    """Each architecture's settings valid for the training series, latent_dim at least the
    data dimension, and a test set long enough for the evaluation (ValueError otherwise)."""
    for arch in spec.architectures:
        s = spec.train_settings(arch).validate(x_train.shape[0])
        if s.latent_dim < x_train.shape[1]:
            raise ValueError(f"{arch}: latent_dim {s.latent_dim} < data dimension "
                             f"{x_train.shape[1]}")
    if x_test.shape[0] < 100:
        raise ValueError(f"test set of {x_test.shape[0]} steps too short for the evaluation "
                         "(needs >= 100): raise n_data or test_fraction")


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    device: torch.device | str | None = None,
    time_limit: float | None = None,
    workers: int = 1,
    progress: bool = True,
    executor: str = "local",
    slurm: SlurmOptions | None = None,
    static: bool = False,
    eval_device: str | None = None,
) -> pd.DataFrame:
    """Train and evaluate the sweep into ``out_dir`` (layout: module docstring).

    Everything is validated before any training. Jobs with a finished part are skipped (a
    damaged part is moved aside and its job redone), one with a checkpoint is resumed (an
    unreadable one is moved aside and the job trained from scratch). The folder is locked for
    the call: a second run on it raises a ValueError naming the holder; so does a folder whose
    ``spec.json`` records another spec, package version or training data. ``workers`` > 1
    runs that many jobs at once in separate processes of one torch thread each (CPU; set
    ``spec.split`` so that there are enough jobs; the processes are spawned, so a script that
    calls this needs ``if __name__ == "__main__":``, and they die with this process).
    ``time_limit`` (seconds, for this call) is checked between epochs and before each job;
    every call makes progress (the first unfinished job trains at least one epoch) and a
    finished ensemble is always evaluated. Returns the rows done so far (``results.csv`` once
    complete), sorted by architecture (spec order) and member; ``df.attrs["complete"]`` says
    whether the sweep is finished and ``df.attrs["pending"]`` lists the jobs still to do.

    ``executor="slurm"`` submits the unfinished jobs as one SLURM job array through submitit
    (``slurm``: :class:`SlurmOptions`) instead, waits for them holding the folder's lock, and
    collects their parts; a job preempted or timed out is requeued and resumes from its
    checkpoint; jobs of an interrupted earlier call still queued are waited for, not
    submitted again (``out_dir/slurm/submitted.json``). ``workers`` and ``time_limit`` are
    the local executor's.

    ``static``: train with ``train(static=True)`` where the architecture allows (GPU: one
    CUDA graph per update; same numbers). ``eval_device``: evaluate finished ensembles there
    (e.g. ``"cpu"`` after GPU training; None: on the training device).
    """
    spec.validate()
    check_positive_int(workers, "workers")
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if executor == "slurm" and time_limit is not None:
        raise ValueError("time_limit is the local executor's; on SLURM give each job's time "
                         "(SlurmOptions.time_min, --slurm-time)")
    if executor == "slurm":
        slurm = (slurm or SlurmOptions()).validate()
    out_dir = Path(out_dir)
    x_train, x_test = load_sweep_data(spec)
    _check_data_fits(spec, x_train, x_test)
    inputs = sweep_inputs(spec, x_train, x_test)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir):
        if (note := _claim_out_dir(spec, out_dir, inputs)) is not None:
            _note(note)
        _remove_stale_temporaries(out_dir)
        if executor == "slurm":
            return _run_slurm(spec, out_dir, inputs, device, slurm, progress, static,
                              eval_device)
        return _run_jobs(spec, out_dir, inputs, device, time_limit, workers, progress, static,
                         eval_device)


def _finished_parts(spec: SweepSpec, out_dir: Path, inputs: dict[str, str],
                    jobs: list[tuple[str, str, range]]) -> set[str]:
    """The jobs whose part is finished; a damaged part is moved aside, saying so."""
    finished = set()
    for job, arch, index in jobs:
        part = out_dir / "parts" / f"{job}.csv"
        if not part.exists():
            continue
        problem = _part_problem(spec, part, arch, index, inputs)
        if problem is None:
            finished.add(job)
            continue
        bad = _move_aside(part)
        how = ("from its checkpoint" if (out_dir / "checkpoints" / f"{job}.pt").exists()
               else "from scratch")
        _note(f"[{spec.name}] {job}: {part} is damaged ({problem}); kept as {bad.name}, "
              f"redoing the job {how}")
    return finished


def _run_jobs(spec: SweepSpec, out_dir: Path, inputs: dict[str, str],
              device: torch.device | str | None, time_limit: float | None, workers: int,
              progress: bool, static: bool = False, eval_device: str | None = None
              ) -> pd.DataFrame:
    """:func:`run_sweep` once the folder is locked and claimed."""
    deadline = None if time_limit is None else training.clock() + time_limit
    say = print if progress else (lambda *a, **k: None)
    dev = None if device is None else str(device)
    jobs = sweep_jobs(spec)
    finished = _finished_parts(spec, out_dir, inputs, jobs)
    todo = [j for j in jobs if j[0] not in finished]
    for job in sorted(finished):
        say(f"[{spec.name}] {job}: done", flush=True)

    def record(name: str, done: bool, message: str, notes: list[str]) -> None:
        for line in notes:
            _note(line)
        if done:
            finished.add(name)
        say(message, flush=True)

    if workers == 1 or len(todo) <= 1:
        for k, (job, arch, index) in enumerate(todo):
            if deadline is not None and training.clock() >= deadline and k > 0:
                say(f"[{spec.name}] {job}: not started (time limit); rerun to continue",
                    flush=True)
                continue
            record(*_run_job(spec.to_dict(), str(out_dir), job, arch, index, dev, deadline,
                             progress, inputs, static=static, eval_device=eval_device))
    else:
        todo.sort(key=lambda j: -JOB_COST.get(j[1], 1.0) * len(j[2]))
        ctx = multiprocessing.get_context("spawn")
        n_proc = min(workers, len(todo))
        devices = ctx.Queue()
        n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
        for d in worker_devices(n_proc, dev, n_cuda):
            devices.put(d)
        # each worker draws its jobs' epoch bars on a line of its own, under the jobs bar
        bars = (ctx.RLock(), ctx.Value("i", 0)) if progress else (None, None)
        if progress:
            tqdm.set_lock(bars[0])
        with ProcessPoolExecutor(max_workers=n_proc, mp_context=ctx, initializer=_worker_init,
                                 initargs=(os.getpid(), *bars, devices)) as pool:
            futures = [pool.submit(_run_job, spec.to_dict(), str(out_dir), job, arch, index, dev,
                                   deadline, progress, inputs, 1, static, eval_device)
                       for job, arch, index in todo]
            try:
                with tqdm(total=len(futures), desc=f"{spec.name} jobs", disable=not progress,
                          leave=False) as bar:
                    for fut in as_completed(futures):
                        record(*fut.result())
                        bar.update()
            except BaseException:
                for fut in futures:  # do not start more jobs; running ones end normally
                    fut.cancel()
                raise
    return _table(spec, out_dir, inputs, say)


def _table(spec: SweepSpec, out_dir: Path, inputs: dict[str, str], say: Any) -> pd.DataFrame:
    """The rows of the finished parts; ``results.csv`` once every job is finished."""
    # parts are checked again before they make the table (one damaged since is redone later)
    jobs = sweep_jobs(spec)
    finished = _finished_parts(spec, out_dir, inputs, jobs)
    pending = [j[0] for j in jobs if j[0] not in finished]
    result = _collect(spec, out_dir / "parts", finished)
    complete = not pending
    if spec.eval_epochs and len(result):
        if complete:
            _atomic_csv(result, out_dir / "curves.csv")
        last = result["architecture"].map({a: eval_epochs(spec, a)[-1]
                                           for a in spec.architectures})
        result = result[result["eval_epoch"] == last].reset_index(drop=True)
    if complete:
        _atomic_csv(result, out_dir / "results.csv")
        say(f"[{spec.name}] complete: {len(result)} rows -> {out_dir / 'results.csv'}",
            flush=True)
    result.attrs["complete"] = complete
    result.attrs["pending"] = pending
    return result


# ---------------------------------------------------------------------------- one job, SLURM


EXECUTORS = ("local", "slurm")


def run_job(spec: SweepSpec, out_dir: str | Path, job: str, *,
            device: torch.device | str | None = None, progress: bool = True,
            static: bool = False, eval_device: str | None = None) -> bool:
    """Train (or resume) and evaluate the single job ``job`` (a name of :func:`sweep_jobs`)
    into ``out_dir``, for any scheduler: it holds only that job's lock
    (``checkpoints/<job>.lock``, see :func:`_run_job`), so jobs of one sweep run side by side;
    the plain sweep command afterwards finds their parts. ``static``, ``eval_device``: as in
    :func:`run_sweep`. Returns whether the job is finished."""
    spec.validate()
    out_dir = Path(out_dir)
    names = {name: (arch, index) for name, arch, index in sweep_jobs(spec)}
    if job not in names:
        _unknown("job", [job], list(names))
    x_train, x_test = load_sweep_data(spec)
    _check_data_fits(spec, x_train, x_test)
    inputs = sweep_inputs(spec, x_train, x_test)
    out_dir.mkdir(parents=True, exist_ok=True)
    if (note := _claim_out_dir(spec, out_dir, inputs)) is not None:
        _note(note)
    arch, index = names[job]
    if job in _finished_parts(spec, out_dir, inputs, [(job, arch, index)]):
        print(f"[{spec.name}] {job}: done", flush=True)
        return True
    ckpt = out_dir / "checkpoints" / f"{job}.pt"
    if ckpt.exists():
        try:
            epoch = training.read_checkpoint(ckpt)["epoch"]
            print(f"[{spec.name}] {job}: resuming from {ckpt} at epoch {epoch}", flush=True)
        except training.CheckpointError:
            pass  # _run_job moves it aside and says so
    dev = None if device is None else str(device)
    _, done, message, notes = _run_job(spec.to_dict(), str(out_dir), job, arch, index, dev,
                                       None, progress, inputs, static=static,
                                       eval_device=eval_device)
    for line in notes:
        _note(line)
    print(message, flush=True)
    return done


@dataclass
class SlurmOptions:
    """How :func:`run_sweep` submits a sweep's jobs to SLURM (submitit's ``AutoExecutor``):
    ``partition`` (None: the cluster's default), ``time_min`` per job (a job that reaches it
    is requeued and resumes from its checkpoint, up to ``max_requeue`` times), at most
    ``array_parallelism`` jobs running at once, ``gpus_per_job`` (0: CPU), ``cpus_per_job``
    (torch threads of the job), ``poll_s`` between the parent's looks at the queue and
    ``extra``: further submitit parameters (e.g. ``{"slurm_account": "lab"}``)."""

    partition: str | None = None
    time_min: int = 60
    array_parallelism: int = 64
    gpus_per_job: int = 0
    cpus_per_job: int = 1
    max_requeue: int = 3
    poll_s: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> SlurmOptions:
        """Raise a one-line ValueError for a bad option."""
        for name in ("time_min", "array_parallelism", "cpus_per_job"):
            check_positive_int(getattr(self, name), f"slurm {name}")
        for name in ("gpus_per_job", "max_requeue"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"slurm {name} must be an integer >= 0, got {value!r}")
        if not self.poll_s > 0:
            raise ValueError(f"slurm poll_s must be > 0, got {self.poll_s!r}")
        return self


_SlurmTask: type | None = None


def _slurm_task_class() -> type:
    """The callable a SLURM job runs: :func:`run_job` on its job, as a submitit
    ``Checkpointable`` (on preemption or timeout it is requeued with the same arguments and
    resumes from the job's checkpoint). Built on first use: submitit is imported only here."""
    global _SlurmTask
    if _SlurmTask is None:
        import submitit

        class SlurmTask(submitit.helpers.Checkpointable):
            def __call__(self, spec_dict: dict[str, Any], out_dir: str, job: str,
                         device: str | None, threads: int, static: bool = False,
                         eval_device: str | None = None) -> bool:
                torch.set_num_threads(threads)
                return run_job(SweepSpec.from_dict(spec_dict), out_dir, job, device=device,
                               progress=False, static=static, eval_device=eval_device)

        _SlurmTask = SlurmTask
    return _SlurmTask


def _queued(ids: Sequence[str]) -> set[str]:
    """Which of the SLURM job ids ``ids`` (``<array>_<task>``) are still queued or running."""
    if not ids:
        return set()
    r = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"squeue failed: {r.stderr.strip()[:200]}")
    return set(r.stdout.split()) & set(ids)


def _run_slurm(spec: SweepSpec, out_dir: Path, inputs: dict[str, str],
               device: torch.device | str | None, opts: SlurmOptions, progress: bool,
               static: bool = False, eval_device: str | None = None) -> pd.DataFrame:
    """:func:`run_sweep` on SLURM, once the folder is locked and claimed."""
    say = print if progress else (lambda *a, **k: None)
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise ValueError("the slurm executor needs SLURM's sbatch and squeue on PATH; "
                         "use --executor local")
    import submitit

    jobs = sweep_jobs(spec)
    finished = _finished_parts(spec, out_dir, inputs, jobs)
    todo = [j for j in jobs if j[0] not in finished]
    record_path = out_dir / "slurm" / "submitted.json"
    try:
        submitted = json.loads(record_path.read_text()) if record_path.exists() else {}
    except (OSError, ValueError):
        submitted = {}
    still = _queued([submitted[j[0]] for j in todo if j[0] in submitted])
    waiting: dict[str, tuple[str, Any]] = {
        j[0]: (submitted[j[0]], None) for j in todo if submitted.get(j[0]) in still}
    for name in sorted(finished):
        say(f"[{spec.name}] {name}: done", flush=True)
    for name, (jid, _) in waiting.items():
        say(f"[{spec.name}] {name}: already on SLURM as job {jid}; waiting for it", flush=True)
    new = [j for j in todo if j[0] not in waiting]
    if new:
        ex = submitit.AutoExecutor(folder=out_dir / "slurm" / "%j", cluster="slurm",
                                   slurm_max_num_timeout=opts.max_requeue)
        params: dict[str, Any] = dict(
            name=f"chaosrnn-{spec.name}", timeout_min=opts.time_min,
            slurm_array_parallelism=opts.array_parallelism, cpus_per_task=opts.cpus_per_job,
            **opts.extra)
        if opts.partition is not None:
            params["slurm_partition"] = opts.partition
        if opts.gpus_per_job:
            params["gpus_per_node"] = opts.gpus_per_job
        ex.update_parameters(**params)
        dev = None if device is None else str(device)
        task = _slurm_task_class()()
        n = len(new)
        subs = ex.map_array(task, [spec.to_dict()] * n, [str(out_dir)] * n,
                            [j[0] for j in new], [dev] * n, [opts.cpus_per_job] * n,
                            [static] * n, [eval_device] * n)
        for (name, _, _), sub in zip(new, subs, strict=True):
            waiting[name] = (sub.job_id, sub)
            submitted[name] = sub.job_id
        _atomic_write_text(record_path, json.dumps(submitted, indent=1) + "\n")
        say(f"[{spec.name}] submitted {n} jobs to SLURM as array "
            f"{subs[0].job_id.split('_')[0]} (logs: {out_dir / 'slurm'})", flush=True)
    while waiting:
        time.sleep(opts.poll_s)
        queued = _queued([jid for jid, _ in waiting.values()])
        for name, (jid, sub) in list(waiting.items()):
            if jid in queued:
                continue
            del waiting[name]
            if sub is None or not sub.paths.result_pickle.exists():
                say(f"[{spec.name}] {name}: SLURM job {jid} left the queue", flush=True)
                continue
            try:
                sub.result()
                say(f"[{spec.name}] {name}: SLURM job {jid} done", flush=True)
            except Exception as err:  # noqa: BLE001 - the job's error, as submitit gives it
                last = [ln for ln in str(err).strip().splitlines() if ln.strip()][-1:]
                _note(f"[{spec.name}] {name}: SLURM job {jid} failed ({''.join(last)[:200]}); "
                      f"log {sub.paths.stderr}")
    return _table(spec, out_dir, inputs, say)


# ---------------------------------------------------------------------------- command line


def _accepts(value: Any, allowed: tuple[Any, ...]) -> bool:
    """Whether ``value`` is of one of the resolved annotation types ``allowed`` (an int is a
    float, a bool is neither an int nor a float)."""
    for t in allowed:
        if t is type(None):
            ok = value is None
        elif t in (int, float):
            number = (int, np.integer) if t is int else (int, float, np.integer, np.floating)
            ok = isinstance(value, number) and not isinstance(value, bool | np.bool_)
        else:
            ok = isinstance(value, t)
        if ok:
            return True
    return False


def _check_types(where: str, values: dict[str, Any], cls: type) -> None:
    """ValueError for a value of ``values`` (field name → value) whose type is not the one
    ``cls`` (a dataclass) declares for it; names that are not fields are left to
    :meth:`SweepSpec.validate`, which names them."""
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        if name not in hints:
            continue
        hint = hints[name]
        union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        allowed = tuple(typing.get_origin(a) or a for a in
                        (typing.get_args(hint) if union else (hint,)))
        if not _accepts(value, allowed):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
            raise ValueError(f"{where} {name!r} must be {names}, got {value!r} "
                             f"({type(value).__name__})")


def check_spec_types(spec: SweepSpec) -> SweepSpec:
    """Raise ValueError for a spec field, a settings field or a member value of the wrong type
    (e.g. ``"lr": "1e-3"``), naming it; a spec read from JSON has whatever types it holds."""
    _check_types("spec key", {f.name: getattr(spec, f.name) for f in fields(spec)}, SweepSpec)
    if isinstance(spec.settings, dict):
        _check_types("settings field", spec.settings, TrainSettings)
    if isinstance(spec.grid, dict):
        for name, values in spec.grid.items():
            for v in values if isinstance(values, list | tuple) else []:
                _check_types("grid value of", {name: v}, MemberConfig)
    for m in spec.members if isinstance(spec.members, list | tuple) else []:
        if isinstance(m, dict):
            _check_types("members field", m, MemberConfig)
    return spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``sweep`` command's flags (:func:`spec_from_args` and :func:`sweep_main` read
    them)."""
    parser.add_argument("spec", nargs="?", help="sweep spec JSON (or build one with the flags)")
    parser.add_argument("--out", required=True, help="output folder (rerun to resume)")
    parser.add_argument("--time-limit", type=seconds_arg, help="seconds for this call")
    parser.add_argument("--device", help="torch device (default: cuda if available)")
    parser.add_argument("--name", help="sweep name (flags only)")
    parser.add_argument("--dataset", help="paper data set name or .npy path")
    parser.add_argument("--arch", nargs="+", help="architectures, e.g. plrnn lstm")
    parser.add_argument("--mode", nargs="+", help="training modes (grid)")
    parser.add_argument("--tau", nargs="+", type=int, help="forcing intervals (grid)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (grid; default 0)")
    parser.add_argument("--profile", help="training settings profile (default quick)")
    parser.add_argument("--epochs", type=positive_int_arg)
    parser.add_argument("--n-data", type=positive_int_arg)
    parser.add_argument("--n-generate", type=positive_int_arg)
    parser.add_argument("--checkpoint-every", type=positive_int_arg)
    parser.add_argument("--split", type=positive_int_arg,
                     help="sub-ensembles per architecture (flags only)")
    parser.add_argument("--workers", type=positive_int_arg, default=1,
                     help="processes running jobs side by side (one torch thread each; "
                     "with several GPUs each its own)")
    parser.add_argument("--executor", choices=("local", "slurm"), default="local",
                     help="local worker processes, or one SLURM job array (submitit)")
    parser.add_argument("--slurm-partition", help="SLURM partition (default: the cluster's)")
    parser.add_argument("--slurm-time", type=positive_int_arg, default=60, metavar="MINUTES",
                     help="time limit of each SLURM job; one that reaches it is requeued and "
                     "resumes from its checkpoint (default 60)")
    parser.add_argument("--slurm-array-parallelism", type=positive_int_arg, default=64,
                     help="SLURM jobs running at once (default 64)")
    parser.add_argument("--slurm-gpus", type=positive_int_arg, help="GPUs per SLURM job")
    parser.add_argument("--job", help="run only this job of the sweep (e.g. lstm-0), for any "
                     "scheduler; the plain command then collects the parts")


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """The spec of ``chaosrnn sweep``: the JSON file, or one built from the flags; a file that
    cannot be read or parsed raises ValueError naming it, a value of the wrong type
    ValueError naming the field."""
    flags = ("dataset", "arch", "tau", "seeds", "mode", "profile", "epochs", "n_data",
             "n_generate", "checkpoint_every", "name", "split")
    given = [f for f in flags if getattr(args, f, None) is not None]
    if args.spec is not None:
        if given:
            raise ValueError(f"give either a spec file or flags, not both (got "
                             f"{', '.join('--' + g.replace('_', '-') for g in given)})")
        try:
            return check_spec_types(SweepSpec.from_json(args.spec))
        except json.JSONDecodeError as err:
            raise ValueError(f"spec file {args.spec}: not valid JSON ({err})") from err
        except UnicodeDecodeError as err:
            raise ValueError(f"spec file {args.spec}: not a JSON text file ({err})") from err
        except OSError as err:
            raise ValueError(f"spec file {args.spec}: {err.strerror or err}") from err
        except ValueError as err:
            raise ValueError(f"spec file {args.spec}: {err}") from err
    if args.dataset is None:
        raise ValueError("give a spec file or at least --dataset")
    grid: dict[str, list[Any]] = {}
    if args.mode:
        grid["mode"] = list(args.mode)
    if args.tau:
        grid["tau"] = list(args.tau)
    grid["seed"] = list(args.seeds or [0])
    settings: dict[str, Any] = {"profile": args.profile or "quick"}
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    spec = SweepSpec(name=args.name or f"{args.dataset}-sweep", dataset=args.dataset,
                     architectures=list(args.arch or ["plrnn"]), grid=grid, settings=settings)
    for k in ("n_data", "n_generate", "checkpoint_every", "split"):
        if getattr(args, k) is not None:
            setattr(spec, k, getattr(args, k))
    return spec


def _check_inputs(spec: SweepSpec, out: Path, device: str | None) -> None:
    """What :func:`run_sweep` checks with the data, the device and the output folder before it
    trains, done here so that ``chaosrnn sweep`` reports bad input as one line (``run_sweep``
    repeats the checks): the data file readable, latent_dim and the test set large enough,
    the folder writable and not another sweep's. Writes ``spec.json`` last."""
    try:
        x_train, x_test = load_sweep_data(spec)
    except (ValueError, EOFError) as err:
        if _dataset_kind(spec.dataset) != "file" or spec.dataset in str(err):
            raise
        raise ValueError(f"cannot read dataset file {spec.dataset!r}: {err}") from err
    _check_data_fits(spec, x_train, x_test)
    if device is not None:
        try:
            dev = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"--device {device}: {err}") from err
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {device}: CUDA is not available here")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output folder {out} is a file")
    try:
        _claim_out_dir(spec, out, sweep_inputs(spec, x_train, x_test))
    except OSError as err:
        raise OSError(f"cannot write the output folder {out}: {err.strerror or err}"
                      + (f" ({err.filename})" if err.filename else "")) from err


def sweep_main(args: argparse.Namespace) -> int:
    """Run ``chaosrnn sweep``; 0 when complete, :data:`EXIT_INCOMPLETE` after a time limit,
    2 with one line on stderr for bad input (found before any training; errors during
    training are bugs and keep their traceback)."""

    job = getattr(args, "job", None)
    executor = getattr(args, "executor", "local")
    slurm = None
    try:
        check_data_dir()
        spec = spec_from_args(args).validate()
        if job is not None:
            if executor != "local" or args.time_limit is not None:
                raise ValueError("--job runs one job here: without --executor slurm or "
                                 "--time-limit (the scheduler gives the time limit)")
            _unknown("job", [job], [name for name, _, _ in sweep_jobs(spec)])
        if executor == "slurm":
            if args.time_limit is not None:
                raise ValueError("--time-limit is the local executor's; give --slurm-time")
            if shutil.which("sbatch") is None:
                raise ValueError("--executor slurm needs SLURM's sbatch on PATH")
            slurm = SlurmOptions(partition=args.slurm_partition, time_min=args.slurm_time,
                                 array_parallelism=args.slurm_array_parallelism,
                                 gpus_per_job=args.slurm_gpus or 0).validate()
        _check_inputs(spec, Path(args.out), args.device)
    except USER_ERRORS as err:
        print(error_line("sweep", err), file=sys.stderr)
        return 2
    try:
        if job is not None:
            return 0 if run_job(spec, args.out, job, device=args.device) else EXIT_INCOMPLETE
        on = {} if executor == "local" else dict(executor=executor, slurm=slurm)
        df = run_sweep(spec, args.out, device=args.device, time_limit=args.time_limit,
                       workers=args.workers, **on)
    except SweepInUse as err:
        print(error_line("sweep", err), file=sys.stderr)
        return 2
    if not df.attrs["complete"]:
        print(f"incomplete (pending: {', '.join(df.attrs['pending'])}); rerun to continue",
              flush=True)
        return EXIT_INCOMPLETE
    return 0
