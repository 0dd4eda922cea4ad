"""Sweeps: a grid of member configurations, trained as one ensemble per architecture, with a
tidy results table that survives interruption.

A :class:`SweepSpec` names a data set, training settings, architectures and a grid of
:class:`~chaosrnn_utils.training.MemberConfig` values. :func:`run_sweep` trains the whole grid
as ensembles: per architecture the members are cut into ``spec.split`` sub-ensembles ("jobs";
one job per architecture by default), each trained and evaluated with
:func:`~chaosrnn_utils.metrics.evaluate`, one after another or by ``workers`` single-thread
processes at once. A member's numbers do not depend on the ensemble it is trained in. Layout of
``out_dir``::

    spec.json                 the sweep (a rerun with a different spec is refused)
    checkpoints/<job>.pt      training state, resumed by a rerun
    parts/<job>.csv           one row per member, written atomically once <job> is evaluated
    results.csv               all parts, once every job is done

with ``<job>`` = ``<arch>`` (split 1) or ``<arch>-<k>`` (k = 0 … split − 1). A rerun skips
finished jobs and resumes checkpointed ones, so a killed or time-limited sweep is continued by
running it again.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import json
import multiprocessing
import subprocess
import sys
import time
import types
import typing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from . import data as data_mod
from . import metrics, paths, training
from .models import MODELS
from .training import MemberConfig, TrainSettings

__all__ = ["SweepSpec", "load_sweep_data", "run_sweep", "spec_from_args", "sweep_jobs",
           "sweep_main"]

MEMBER_FIELDS = tuple(f.name for f in fields(MemberConfig))
SETTINGS_FIELDS = tuple(f.name for f in fields(TrainSettings) if f.name != "model")
#: exit status of the command line when the time limit stopped the sweep before the end
EXIT_INCOMPLETE = 3


def _unknown(kind: str, names: Sequence[str], known: Sequence[str]) -> None:
    """Raise a ValueError naming the first of ``names`` not in ``known`` (with a hint)."""
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown {kind} {name!r}{hint} (known: {', '.join(known)})")


def _positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


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
    worker processes can run side by side).
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

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists, not tuples)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepSpec:
        """Build from a dict; unknown keys raise ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"a sweep spec must be a JSON object, got {type(d).__name__}")
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
        _positive_int(self.n_data, "n_data")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        _positive_int(self.n_generate, "n_generate")
        if self.n_generate < 100:
            raise ValueError(f"n_generate must be at least 100 (D_H uses 50 chunks), "
                             f"got {self.n_generate}")
        _positive_int(self.checkpoint_every, "checkpoint_every")
        _positive_int(self.split, "split")
        members = self.member_configs()
        if self.split > len(members):
            raise ValueError(f"split {self.split} exceeds the {len(members)} members")
        for arch in self.architectures:
            s = self.train_settings(arch).validate(sys.maxsize)
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
        x = np.load(spec.dataset, allow_pickle=False)
    x = data_mod.check_series(x, name=spec.dataset)[: spec.n_data]
    return data_mod.train_test_split(x, spec.test_fraction)


def _atomic_write_text(path: Path, text: str) -> None:
    with paths.atomic_open(path, "w") as fh:
        fh.write(text)


def _atomic_csv(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` to ``path`` via a temporary file in the same folder and a rename."""
    _atomic_write_text(path, df.to_csv(index=False))


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def git_commit() -> str:
    """The project's ``git rev-parse HEAD``, or ``"unknown"``."""
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.ROOT, capture_output=True,
                           text=True, timeout=10, check=True)
        return r.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _claim_out_dir(spec: SweepSpec, out_dir: Path) -> None:
    """Write ``spec.json``, or check that the one there is this spec."""
    target = out_dir / "spec.json"
    if target.exists():
        old = json.loads(target.read_text())
        if old != spec.to_dict():
            raise ValueError(f"{out_dir} holds another sweep (its spec.json differs from this "
                             "spec); use another output folder or delete it")
    else:
        spec.to_json(target)


def _checkpoint_wall_time(path: Path) -> float:
    """Training wall time already stored in a checkpoint (0 without one)."""
    if not path.exists():
        return 0.0
    return float(torch.load(path, map_location="cpu", weights_only=False)["wall_time"])


def sweep_jobs(spec: SweepSpec) -> list[tuple[str, str, range]]:
    """(job name, architecture, member indices) of every job, in spec order."""
    n = len(spec.member_configs())
    bounds = [round(k * n / spec.split) for k in range(spec.split + 1)]
    return [(arch if spec.split == 1 else f"{arch}-{k}", arch, range(bounds[k], bounds[k + 1]))
            for arch in spec.architectures for k in range(spec.split)]


def _collect(spec: SweepSpec, parts_dir: Path) -> pd.DataFrame:
    """The finished parts, in architecture order (spec order), then member index."""
    frames = [_read_csv(parts_dir / f"{job}.csv") for job, _, _ in sweep_jobs(spec)
              if (parts_dir / f"{job}.csv").exists()]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    order = {a: i for i, a in enumerate(spec.architectures)}
    key = df["architecture"].map(order)
    df = df.assign(_order=key).sort_values(["_order", "member"], kind="stable")
    return df.drop(columns="_order").reset_index(drop=True)


def _rows(spec: SweepSpec, arch: str, settings: TrainSettings, members: list[MemberConfig],
          state: training.TrainState, scores: list[dict[str, Any]], commit: str,
          first: int = 0) -> pd.DataFrame:
    """One row per member: identity, configuration, metrics, training outcome, provenance."""
    summary = training.member_summary(state, members)
    settings_json = json.dumps(asdict(settings), sort_keys=True)
    rows = []
    for e, (summ, score) in enumerate(zip(summary, scores, strict=True)):
        row: dict[str, Any] = dict(sweep=spec.name, dataset=spec.dataset, architecture=arch,
                                   member=first + e)
        row.update({k: summ[k] for k in MEMBER_FIELDS})
        row.update({k: v for k, v in score.items() if k != "member"})
        row.update({k: summ[k] for k in ("final_loss", "diverged", "diverged_epoch",
                                         "epochs_done")})
        row.update(wall_time=state.wall_time, git_commit=commit, settings=settings_json)
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- the runner


# Relative cost of one update per architecture (measured, benchmarks/bench_training.py), to
# start the longest jobs first when workers run them side by side.
_COST = {"lstm": 3.0}


def _run_job(spec_dict: dict[str, Any], out_dir: str, job: str, arch: str, index: range,
             device: str | None, deadline: float | None, progress: bool,
             threads: int | None = None) -> tuple[str, bool, str]:
    """Train (or resume) and evaluate one job; returns (job, finished, message). Runs in the
    calling process or in a worker (``threads``: torch threads there). ``deadline``: a
    ``training.clock()`` reading after which training stops at the end of an epoch."""
    if threads is not None:
        torch.set_num_threads(threads)
    spec = SweepSpec.from_dict(spec_dict)
    out = Path(out_dir)
    part, ckpt = out / "parts" / f"{job}.csv", out / "checkpoints" / f"{job}.pt"
    if part.exists():
        return job, True, f"[{spec.name}] {job}: done ({part})"
    members = spec.member_configs()[index.start: index.stop]
    x_train, x_test = load_sweep_data(spec)
    settings = spec.train_settings(arch)
    limit = None
    if deadline is not None:
        limit = _checkpoint_wall_time(ckpt) + max(deadline - training.clock(), 0.0)
    state = training.train(x_train, members, settings, device=device, checkpoint=ckpt,
                           checkpoint_every=spec.checkpoint_every, time_limit=limit,
                           progress=progress)
    if state.epoch < settings.epochs:
        return job, False, (f"[{spec.name}] {job}: stopped at epoch {state.epoch}/"
                            f"{settings.epochs} (time limit); rerun to continue")
    t0 = time.perf_counter()
    scores = metrics.evaluate(state.model, x_test, n_generate=spec.n_generate)
    df = _rows(spec, arch, settings, members, state, scores, git_commit(), index.start)
    _atomic_csv(df, part)
    return job, True, (f"[{spec.name}] {job}: {len(members)} members, {state.epoch} epochs, "
                       f"{int(df['diverged'].sum())} diverged, train {state.wall_time:.1f} s, "
                       f"eval {time.perf_counter() - t0:.1f} s -> {part}")


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    device: torch.device | str | None = None,
    time_limit: float | None = None,
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Train and evaluate the sweep into ``out_dir`` (layout: module docstring).

    Everything is validated before any training. Jobs with a part file are skipped, one with a
    checkpoint is resumed. ``workers`` > 1 runs that many jobs at once in separate processes
    of one torch thread each (CPU; set ``spec.split`` so that there are enough jobs; the
    processes are spawned, so a script that calls this needs ``if __name__ == "__main__":``).
    ``time_limit`` (seconds, for this call) is checked between epochs and before each job;
    every call makes progress (the first unfinished job trains at least one epoch) and a
    finished ensemble is always evaluated. Returns the rows done so far (``results.csv`` once
    complete), sorted by architecture (spec order) and member; ``df.attrs["complete"]`` says
    whether the sweep is finished and ``df.attrs["pending"]`` lists the jobs still to do.
    """
    spec.validate()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    out_dir = Path(out_dir)
    x_train, x_test = load_sweep_data(spec)
    obs_dim = x_train.shape[1]
    for arch in spec.architectures:
        s = spec.train_settings(arch).validate(x_train.shape[0])
        if s.latent_dim < obs_dim:
            raise ValueError(f"{arch}: latent_dim {s.latent_dim} < data dimension {obs_dim}")
    if x_test.shape[0] < 100:
        raise ValueError(f"test set of {x_test.shape[0]} steps too short for the evaluation "
                         "(needs >= 100): raise n_data or test_fraction")
    _claim_out_dir(spec, out_dir)
    deadline = None if time_limit is None else training.clock() + time_limit
    say = print if progress else (lambda *a, **k: None)
    dev = None if device is None else str(device)
    jobs = sweep_jobs(spec)
    todo = [j for j in jobs if not (out_dir / "parts" / f"{j[0]}.csv").exists()]
    finished = {j[0] for j in jobs} - {j[0] for j in todo}
    for job in sorted(finished):
        say(f"[{spec.name}] {job}: done", flush=True)
    if workers == 1 or len(todo) <= 1:
        for k, (job, arch, index) in enumerate(todo):
            if deadline is not None and training.clock() >= deadline and k > 0:
                say(f"[{spec.name}] {job}: not started (time limit); rerun to continue",
                    flush=True)
                continue
            name, done, message = _run_job(spec.to_dict(), str(out_dir), job, arch, index, dev,
                                           deadline, progress)
            finished |= {name} if done else set()
            say(message, flush=True)
    else:
        todo.sort(key=lambda j: -_COST.get(j[1], 1.0) * len(j[2]))
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
            futures = [pool.submit(_run_job, spec.to_dict(), str(out_dir), job, arch, index, dev,
                                   deadline, False, 1) for job, arch, index in todo]
            with tqdm(total=len(futures), desc=f"{spec.name} jobs", disable=not progress,
                      leave=False) as bar:
                for fut in as_completed(futures):
                    name, done, message = fut.result()
                    finished |= {name} if done else set()
                    bar.update()
                    say(message, flush=True)
    pending = [j[0] for j in jobs if j[0] not in finished]
    result = _collect(spec, out_dir / "parts")
    complete = not pending
    if complete:
        _atomic_csv(result, out_dir / "results.csv")
        say(f"[{spec.name}] complete: {len(result)} rows -> {out_dir / 'results.csv'}",
            flush=True)
    result.attrs["complete"] = complete
    result.attrs["pending"] = pending
    return result


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
    for arch in spec.architectures:
        s = spec.train_settings(arch).validate(x_train.shape[0])
        if s.latent_dim < x_train.shape[1]:
            raise ValueError(f"{arch}: latent_dim {s.latent_dim} < data dimension "
                             f"{x_train.shape[1]}")
    if x_test.shape[0] < 100:
        raise ValueError(f"test set of {x_test.shape[0]} steps too short for the evaluation "
                         "(needs >= 100): raise n_data or test_fraction")
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
        _claim_out_dir(spec, out)
    except OSError as err:
        raise OSError(f"cannot write the output folder {out}: {err.strerror or err}"
                      + (f" ({err.filename})" if err.filename else "")) from err


def sweep_main(args: argparse.Namespace) -> int:
    """Run ``chaosrnn sweep``; 0 when complete, :data:`EXIT_INCOMPLETE` after a time limit,
    2 with one line on stderr for bad input (found before any training; errors during
    training are bugs and keep their traceback)."""
    from .pipeline import USER_ERRORS, check_data_dir, error_line

    try:
        check_data_dir()
        spec = spec_from_args(args).validate()
        _check_inputs(spec, Path(args.out), args.device)
    except USER_ERRORS as err:
        print(error_line("sweep", err), file=sys.stderr)
        return 2
    df = run_sweep(spec, args.out, device=args.device, time_limit=args.time_limit,
                   workers=args.workers)
    if not df.attrs["complete"]:
        print(f"incomplete (pending: {', '.join(df.attrs['pending'])}); rerun to continue",
              flush=True)
        return EXIT_INCOMPLETE
    return 0
