"""Budgeted device runs: the paper profile trained in short GPU windows from a committed state.

One window, ``python -m chaosrnn_utils gpu-run --budget-s 480 --state S --out O``:

1. a self-check (CUDA only, about a minute): the Triton engine against the fused one in
   float32 and float64, the graph-captured update against the eager one, the GPU against
   the CPU on a short run; on a failure it writes its report to ``O/log.txt`` and stops
   (exit status 1) before any training;
2. each sweep in turn (the Lorenz τ sweep first, then the longest): its folder is unpacked
   from ``S/<name>.tar.gz`` (a fresh one when there is none), trained with
   :func:`~chaosrnn_utils.sweeps.run_sweep` (``static=True``: one CUDA graph per update)
   until the budget is spent (checkpoints at the deadline), then packed to
   ``O/<name>.tar.gz``; ``O/progress.csv`` gets one row per sweep touched (complete,
   pending jobs, device-seconds of this window, device name, torch and Triton versions,
   commit). At most :data:`MAX_FILES` files of at most :data:`MAX_BYTES` each.

Then, on the CPU, ``gpu-unpack --from O --state S --results R`` copies the archives into
``S``, appends the progress rows to ``S/progress.csv`` and writes each finished sweep's
table to ``R/<name>.csv`` (with device, versions and device-seconds columns), so that the
next window continues from the committed state.
"""

from __future__ import annotations

import dataclasses
import io
import platform
import shutil
import signal
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import forcing, fused, paths, sweeps, training, triton_engine
from .sweeps import SweepSpec

MAX_FILES = 8
MAX_BYTES = 16 * 2**20
#: seconds kept back from the budget for the evaluation of a sweep finished at the deadline
#: and for packing the archives
PACK_MARGIN_S = 60.0


class Stopped(Exception):
    """SIGTERM arrived (the window's backstop timeout): pack what there is and stop."""


def _stop(signum: int, frame: Any) -> None:
    raise Stopped(f"signal {signum}")


def profile_specs(profile: str = "paper") -> list[SweepSpec]:
    """The sweeps of ``profile`` in the order a window trains them: the Lorenz τ sweep (the
    paper's headline), then by estimated cost (members × steps × epochs × architecture
    weight), the longest first; each as one job per architecture (``split=1``)."""
    from . import experiments as ex

    specs = [ex.tau_sweep_spec(d, profile) for d in ex.PAPER_TAUS if ex.dataset_available(d)]
    specs.append(ex.ablation_spec(profile))
    # one job per architecture: on a GPU the update time barely grows with the members
    specs = [dataclasses.replace(s, split=1) for s in specs]

    def cost(spec: SweepSpec) -> float:
        n = len(spec.member_configs())
        return sum(n * spec.train_settings(a).seq_len * spec.train_settings(a).epochs
                   * sweeps.JOB_COST.get(a, 1.0) for a in spec.architectures)

    head = ex.tau_sweep_spec("lorenz", profile).name
    return [s for s in specs if s.name == head] + sorted(
        (s for s in specs if s.name != head), key=cost, reverse=True)


def environment(device: str) -> dict[str, str]:
    """Device name, torch and Triton versions and commit, for the progress table."""
    dev = torch.device(device)
    name = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
            else platform.processor() or platform.machine())
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = "none"
    return dict(device=name, torch=torch.__version__, triton=triton_version,
                commit=sweeps.git_commit())


def pack(folder: Path, archive: Path) -> int:
    """Write ``folder`` (without its lock and temporary files) as a gzipped tar, atomically;
    its size in bytes (ValueError over :data:`MAX_BYTES`)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted(folder.rglob("*")):
            if f.is_file() and not f.name.startswith("."):  # lock, temporaries
                tar.add(f, arcname=str(f.relative_to(folder)))
    size = buf.getbuffer().nbytes
    if size > MAX_BYTES:
        raise ValueError(f"{archive.name}: {size} bytes, over the {MAX_BYTES} allowed")
    with paths.atomic_open(archive) as fh:
        fh.write(buf.getvalue())
    return size


def unpack(archive: Path, folder: Path) -> None:
    """Extract an archive written by :func:`pack` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(folder, filter="data")


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def self_check(device: str) -> list[str]:
    """Failures (empty when all pass) of: Triton against fused on ``device`` (float32 ≤ 1e-5,
    float64 ≤ 1e-12 relative, predictions and every gradient) when Triton runs there; the
    static (graph-captured on CUDA) update against the eager one, and ``device`` against the
    CPU, on a short float64 run of every architecture (≤ 1e-8, the tolerance of
    benchmarks/check_device.py)."""
    members = [forcing.MemberConfig(seed=0, tau=5, tau_spread=2),
               forcing.MemberConfig(seed=1, mode="teacher"),
               forcing.MemberConfig(seed=2, mode="tbptt", truncation=7),
               forcing.MemberConfig(seed=3, mode="window", window=9),
               forcing.MemberConfig(seed=4, mode="gtf", alpha=0.2)]
    fails = []
    from .models import make_model

    if triton_engine.available(device):
        masks = forcing.schedule_masks(members, 40, 0, 1, training.member_generators(members))
        for arch in ("plrnn", "rnn", "lstm"):
            for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
                model = make_model(arch, 30, 3, n_models=len(members), dtype=dtype,
                                   seeds=list(range(len(members))), device=device)
                x = torch.randn(len(members), 8, 41, 3, dtype=dtype, device=device,
                                generator=torch.Generator(device).manual_seed(0))
                got = []
                for f in (fused.fused_predictions, triton_engine.triton_predictions):
                    model.zero_grad(set_to_none=True)
                    pred = f(model, x, masks)
                    pred.square().mean().backward()
                    got.append([pred.detach()] + [p.grad for p in model.parameters()])
                errs = [_relative(a, b) for a, b in zip(got[1], got[0], strict=True)]
                if max(errs) > tol:
                    fails.append(f"triton vs fused {arch} {dtype}: {max(errs):.3g} > {tol}")
    t = np.arange(3000) * 0.05
    data = np.column_stack([np.sin(t), np.cos(1.3 * t), np.sin(0.4 * t)])
    s = training.TrainSettings(latent_dim=30, seq_len=50, batch_size=8, batches_per_epoch=3,
                               epochs=2, dtype="float64")
    for arch in ("plrnn", "rnn", "lstm"):
        sa = dataclasses.replace(s, model=arch)
        runs = {name: training.train(data, members, sa, device=dev, progress=False,
                                     static=static)
                for name, dev, static in (("eager", device, False), ("static", device, True),
                                          ("cpu", "cpu", False))}
        for other in ("static", "cpu"):
            err = max(_relative(p, q) for p, q in zip(runs[other].model.parameters(),
                                                      runs["eager"].model.parameters(),
                                                      strict=True))
            if not err <= 1e-8:
                fails.append(f"{other} vs eager on {device}, {arch}: {err:.3g} > 1e-8")
    return fails


def gpu_run(specs: Sequence[SweepSpec], state_dir: str | Path, out_dir: str | Path, *,
            budget_s: float, device: str | None = None, check: bool = True,
            eval_device: str | None = "cpu") -> int:
    """One budgeted window (module docstring); returns the exit status: 0 when every sweep
    is complete, 3 when some are left for another window, 1 when the self-check failed.
    ``eval_device``: where finished ensembles are evaluated (default the CPU, the tested
    path; None: the training device)."""
    start = training.clock()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    state_dir, out_dir = Path(state_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment(device)
    log = (out_dir / "log.txt").open("a", encoding="utf-8")

    def say(line: str) -> None:
        print(line, file=log, flush=True)
        print(line, flush=True)

    say(f"gpu-run on {env['device']} (torch {env['torch']}, triton {env['triton']}, "
        f"commit {env['commit'][:12]}), budget {budget_s:.0f} s")
    if check and device != "cpu":
        t0 = time.perf_counter()
        fails = self_check(device)
        say(f"self-check {'FAILED' if fails else 'passed'} in {time.perf_counter() - t0:.1f} s")
        for line in fails:
            say(f"  {line}")
        if fails:
            log.close()
            return 1
    rows: list[dict[str, Any]] = []
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        _windows(specs, state_dir, out_dir, start, budget_s, device, eval_device, env, rows,
                 say)
    finally:
        signal.signal(signal.SIGTERM, previous)
        pd.DataFrame(rows, columns=["sweep", "complete", "pending", "device_seconds",
                                    "archive_bytes", *env]).to_csv(out_dir / "progress.csv",
                                                                   index=False)
    done = {r["sweep"] for r in rows if r["complete"]}
    status = 0 if all(s.name in done or _finished(state_dir, s) for s in specs) else 3
    say(f"gpu-run done in {training.clock() - start:.1f} s, status {status}")
    log.close()
    return status


def _finished(state_dir: Path, spec: SweepSpec) -> bool:
    """Whether the state archive of ``spec`` holds its finished table."""
    archive = state_dir / f"{spec.name}.tar.gz"
    if not archive.exists():
        return False
    with tarfile.open(archive, "r:gz") as tar:
        return "results.csv" in tar.getnames()


def _windows(specs: Sequence[SweepSpec], state_dir: Path, out_dir: Path, start: float,
             budget_s: float, device: str, eval_device: str | None, env: dict[str, str],
             rows: list[dict[str, Any]], say: Any) -> None:
    """The training part of :func:`gpu_run`: one progress row per sweep touched."""
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            left = budget_s - (training.clock() - start) - PACK_MARGIN_S
            archive = state_dir / f"{spec.name}.tar.gz"
            folder = Path(tmp) / spec.name
            if archive.exists():
                unpack(archive, folder)
            if (folder / "results.csv").exists():
                continue  # finished in an earlier window
            if left <= 0 or len(rows) >= MAX_FILES - 2:  # log and progress table
                continue
            t0 = training.clock()
            stopped = None
            try:
                df = sweeps.run_sweep(spec, folder, device=device, time_limit=left,
                                      progress=False, static=True, eval_device=eval_device)
                complete, pending = bool(df.attrs["complete"]), " ".join(df.attrs["pending"])
            except Stopped as err:  # the last checkpoints on disk are whole (atomic)
                stopped, complete, pending = err, False, f"interrupted ({err})"
            secs = training.clock() - t0
            size = pack(folder, out_dir / f"{spec.name}.tar.gz")
            rows.append(dict(sweep=spec.name, complete=complete, pending=pending,
                             device_seconds=secs, archive_bytes=size, **env))
            say(f"{spec.name}: {'complete' if complete else 'pending ' + pending}"
                f" after {secs:.1f} s")
            if stopped is not None:
                return


def gpu_unpack(from_dir: str | Path, state_dir: str | Path, results_dir: str | Path
               ) -> list[str]:
    """The CPU step after a window: archives of ``from_dir`` into ``state_dir``, progress
    rows appended to ``state_dir/progress.csv``, each finished sweep's table (with the
    window's device, versions and the sweep's device-seconds over all windows) to
    ``results_dir/<name>.csv``. Returns the names of the finished sweeps written."""
    from_dir, state_dir, results_dir = Path(from_dir), Path(state_dir), Path(results_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    progress = pd.read_csv(from_dir / "progress.csv")
    ledger = state_dir / "progress.csv"
    if ledger.exists():
        progress = pd.concat([pd.read_csv(ledger), progress], ignore_index=True)
    progress.to_csv(ledger, index=False)
    finished = []
    for _, row in progress.drop_duplicates("sweep", keep="last").iterrows():
        src = from_dir / f"{row['sweep']}.tar.gz"
        if src.exists():
            shutil.copyfile(src, state_dir / src.name)
        if not bool(row["complete"]):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            unpack(state_dir / f"{row['sweep']}.tar.gz", Path(tmp))
            df = pd.read_csv(Path(tmp) / "results.csv")
        total = float(progress.loc[progress["sweep"] == row["sweep"], "device_seconds"].sum())
        df = df.assign(device=row["device"], torch=row["torch"], triton=row["triton"],
                       device_seconds=total)
        results_dir.mkdir(parents=True, exist_ok=True)
        df.to_csv(results_dir / f"{row['sweep']}.csv", index=False)
        finished.append(str(row["sweep"]))
    return finished


def gpu_main(args: Any) -> int:
    """The ``gpu-run`` and ``gpu-unpack`` commands (see :mod:`.pipeline`)."""
    if args.command == "gpu-unpack":
        done = gpu_unpack(args.from_dir, args.state, args.results)
        print(f"finished sweeps written: {', '.join(done) or 'none'}")
        return 0
    if args.check_only:
        fails = self_check(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        print("\n".join(["self-check " + ("FAILED" if fails else "passed"), *fails]))
        return 1 if fails else 0
    specs = ([SweepSpec.from_json(p) for p in args.spec] if args.spec
             else profile_specs(args.profile))
    return gpu_run(specs, args.state, args.out, budget_s=args.budget_s, device=args.device,
                   check=not args.no_self_check,
                   eval_device=None if args.eval_device == "same" else args.eval_device)
