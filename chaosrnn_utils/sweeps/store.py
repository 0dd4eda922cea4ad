"""What a sweep keeps in its folder: its inputs and their hashes (``spec.json``,
:func:`sweep_inputs`), the locks, the checksummed parts (``parts/<job>.csv``) and the results
table assembled from them (:func:`_table`)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import metrics, paths, training
from .spec import (
    INPUTS_KEY,
    SweepSpec,
    _atomic_csv,
    _atomic_write_text,
    _dataset_kind,
    eval_epochs,
    sweep_jobs,
)

#: last column of a part: SHA-256 of the header and the row as written
ROW_CHECK = "row_sha256"


def git_commit() -> str:
    """The project's ``git rev-parse HEAD``, or ``"unknown"``."""
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.ROOT, capture_output=True,
                           text=True, timeout=10, check=True)
        return r.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


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
    from .. import __version__

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
def _locked(out_dir: Path, name: str = ".lock", wait_s: float = 0.0) -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on ``out_dir/<name>`` (which records pid and
    host) for the block: a second run on the folder fails with a one-line ValueError naming
    the holder, at once or, with ``wait_s``, if the lock is still held after that many seconds
    (tried every 0.2 s). Without ``fcntl`` (not POSIX) or file-system locks: no lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = out_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    end = time.monotonic() + wait_s
    try:
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= end:
                        raise
                    time.sleep(0.2)
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
            return (f"made for other inputs: {name} {_short(other[0], 30)} in the rows, "
                    f"{_short(want, 30)} here")
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


def _note(line: str) -> None:
    """A repair or a warning: one line on stderr, whatever ``progress``."""
    print(line, file=sys.stderr, flush=True)


def _finished_parts(spec: SweepSpec, out_dir: Path, inputs: dict[str, str],
                    jobs: list[tuple[str, str, range]]) -> set[str]:
    """The jobs whose part is finished; a damaged or out-of-date part (another spec, inputs
    or version) is moved aside, saying so."""
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
        state = ("is out of date" if problem.startswith(("made for", "no "))
                 else "is damaged")
        _note(f"[{spec.name}] {job}: {part} {state} ({problem}); kept as {bad.name}, "
              f"redoing the job {how}")
    return finished


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
