"""The sweep's spec: :class:`SweepSpec` (data set, settings, architectures, member grid),
its members and jobs (:func:`sweep_jobs`, :func:`eval_epochs`) and its data
(:func:`load_sweep_data`)."""

from __future__ import annotations

import difflib
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import data as data_mod
from .. import metrics, paths, training
from ..forcing import MemberConfig
from ..models import MODELS
from ..training import TrainSettings
from ..validate import check_positive_int

MEMBER_FIELDS = tuple(f.name for f in fields(MemberConfig))


SETTINGS_FIELDS = tuple(f.name for f in fields(TrainSettings) if f.name != "model")


#: key of ``spec.json`` holding the recorded inputs (ignored when a spec is read)
INPUTS_KEY = "inputs"


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
