"""The ``sweep`` command line's arguments: the spec from a file or flags
(:func:`add_arguments`, :func:`spec_from_args`, :func:`check_spec_types`) and the input
checks run before any training (:func:`_check_inputs`)."""

from __future__ import annotations

import argparse
import json
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..forcing import MemberConfig
from ..training import TrainSettings
from ..validate import positive_int_arg, seconds_arg
from .spec import SweepSpec, _check_data_fits, _dataset_kind, load_sweep_data
from .store import _claim_out_dir, sweep_inputs


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
