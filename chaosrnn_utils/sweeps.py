"""Sweeps: a grid of member configurations, trained as one ensemble per architecture, with a
tidy results table that survives interruption.

A :class:`SweepSpec` names a data set, training settings, architectures and a grid of
:class:`~chaosrnn_utils.training.MemberConfig` values. :func:`run_sweep` trains the whole grid
as one ensemble per architecture (one after another), evaluates it with
:func:`~chaosrnn_utils.metrics.evaluate` and writes into ``out_dir``::

    spec.json                 the sweep (a rerun with a different spec is refused)
    checkpoints/<arch>.pt     training state, resumed by a rerun
    parts/<arch>.csv          one row per member, written atomically once <arch> is evaluated
    results.csv               all parts, once every architecture is done

A rerun skips finished architectures and resumes a checkpointed one, so a killed or
time-limited sweep is continued by running it again.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import data as data_mod
from . import metrics, paths, training
from .models import MODELS
from .training import MemberConfig, TrainSettings

__all__ = ["SweepSpec", "load_sweep_data", "run_sweep", "spec_from_args", "sweep_main"]

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
    dicts appended after the grid.
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
        members = self.member_configs()
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


def _collect(spec: SweepSpec, parts_dir: Path) -> pd.DataFrame:
    """The finished parts, in architecture order (spec order), then member index."""
    frames = [_read_csv(parts_dir / f"{a}.csv") for a in spec.architectures
              if (parts_dir / f"{a}.csv").exists()]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    order = {a: i for i, a in enumerate(spec.architectures)}
    key = df["architecture"].map(order)
    df = df.assign(_order=key).sort_values(["_order", "member"], kind="stable")
    return df.drop(columns="_order").reset_index(drop=True)


def _rows(spec: SweepSpec, arch: str, settings: TrainSettings, members: list[MemberConfig],
          state: training.TrainState, scores: list[dict[str, Any]], commit: str
          ) -> pd.DataFrame:
    """One row per member: identity, configuration, metrics, training outcome, provenance."""
    summary = training.member_summary(state, members)
    settings_json = json.dumps(asdict(settings), sort_keys=True)
    rows = []
    for e, (summ, score) in enumerate(zip(summary, scores, strict=True)):
        row: dict[str, Any] = dict(sweep=spec.name, dataset=spec.dataset, architecture=arch,
                                   member=e)
        row.update({k: summ[k] for k in MEMBER_FIELDS})
        row.update({k: v for k, v in score.items() if k != "member"})
        row.update({k: summ[k] for k in ("final_loss", "diverged", "diverged_epoch",
                                         "epochs_done")})
        row.update(wall_time=state.wall_time, git_commit=commit, settings=settings_json)
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- the runner


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    device: torch.device | str | None = None,
    time_limit: float | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Train and evaluate the sweep into ``out_dir`` (layout: module docstring).

    Everything is validated before any training. Architectures with a part file are
    skipped, one with a checkpoint is resumed. ``time_limit`` (seconds, for this call) is
    checked between epochs and before each architecture; every call makes progress (the first
    unfinished architecture trains at least one epoch) and a finished ensemble is always
    evaluated. Returns the rows done so far (``results.csv`` once complete), sorted by
    architecture (spec order) and member; ``df.attrs["complete"]`` says whether the sweep is
    finished and ``df.attrs["pending"]`` lists the architectures still to do.
    """
    start = time.perf_counter()
    spec.validate()
    out_dir = Path(out_dir)
    members = spec.member_configs()
    x_train, x_test = load_sweep_data(spec)
    obs_dim = x_train.shape[1]
    all_settings = {}
    for arch in spec.architectures:
        s = spec.train_settings(arch).validate(x_train.shape[0])
        if s.latent_dim < obs_dim:
            raise ValueError(f"{arch}: latent_dim {s.latent_dim} < data dimension {obs_dim}")
        all_settings[arch] = s
    if x_test.shape[0] < 100:
        raise ValueError(f"test set of {x_test.shape[0]} steps too short for the evaluation "
                         "(needs >= 100): raise n_data or test_fraction")
    _claim_out_dir(spec, out_dir)
    parts_dir, ckpt_dir = out_dir / "parts", out_dir / "checkpoints"
    commit = git_commit()
    say = print if progress else (lambda *a, **k: None)
    pending: list[str] = []
    worked = False
    for arch in spec.architectures:
        part = parts_dir / f"{arch}.csv"
        if part.exists():
            say(f"[{spec.name}] {arch}: done ({part})", flush=True)
            continue
        remaining = None if time_limit is None else time_limit - (time.perf_counter() - start)
        if remaining is not None and remaining <= 0 and worked:
            pending.append(arch)
            say(f"[{spec.name}] {arch}: not started (time limit); rerun to continue",
                flush=True)
            continue
        settings = all_settings[arch]
        ckpt = ckpt_dir / f"{arch}.pt"
        limit = None if remaining is None else _checkpoint_wall_time(ckpt) + max(remaining, 0)
        state = training.train(x_train, members, settings, device=device, checkpoint=ckpt,
                               checkpoint_every=spec.checkpoint_every, time_limit=limit,
                               progress=progress)
        worked = True
        if state.epoch < settings.epochs:
            pending.append(arch)
            say(f"[{spec.name}] {arch}: stopped at epoch {state.epoch}/{settings.epochs} "
                "(time limit); rerun to continue", flush=True)
            continue
        t0 = time.perf_counter()
        scores = metrics.evaluate(state.model, x_test, n_generate=spec.n_generate)
        df = _rows(spec, arch, settings, members, state, scores, commit)
        _atomic_csv(df, part)
        n_div = int(df["diverged"].sum())
        say(f"[{spec.name}] {arch}: {len(members)} members, {state.epoch} epochs, "
            f"{n_div} diverged, train {state.wall_time:.1f} s, "
            f"eval {time.perf_counter() - t0:.1f} s -> {part}", flush=True)
    result = _collect(spec, parts_dir)
    complete = not pending
    if complete:
        _atomic_csv(result, out_dir / "results.csv")
        say(f"[{spec.name}] complete: {len(result)} rows -> {out_dir / 'results.csv'}",
            flush=True)
    result.attrs["complete"] = complete
    result.attrs["pending"] = pending
    return result


# ---------------------------------------------------------------------------- command line


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """The spec of ``chaosrnn sweep``: the JSON file, or one built from the flags."""
    flags = ("dataset", "arch", "tau", "seeds", "mode", "profile", "epochs", "n_data",
             "n_generate", "checkpoint_every", "name")
    given = [f for f in flags if getattr(args, f, None) is not None]
    if args.spec is not None:
        if given:
            raise ValueError(f"give either a spec file or flags, not both (got "
                             f"{', '.join('--' + g.replace('_', '-') for g in given)})")
        return SweepSpec.from_json(args.spec)
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
    for k in ("n_data", "n_generate", "checkpoint_every"):
        if getattr(args, k) is not None:
            setattr(spec, k, getattr(args, k))
    return spec


def sweep_main(args: argparse.Namespace) -> int:
    """Run ``chaosrnn sweep``; 0 when complete, :data:`EXIT_INCOMPLETE` after a time limit."""
    try:
        spec = spec_from_args(args).validate()
    except (ValueError, OSError) as err:
        print(f"chaosrnn sweep: error: {err}", file=sys.stderr)
        return 2
    df = run_sweep(spec, args.out, device=args.device, time_limit=args.time_limit)
    if not df.attrs["complete"]:
        print(f"incomplete (pending: {', '.join(df.attrs['pending'])}); rerun to continue",
              flush=True)
        return EXIT_INCOMPLETE
    return 0
