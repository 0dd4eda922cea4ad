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
import math
import platform
import shutil
import signal
import tarfile
import tempfile
import time
import traceback
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


#: the self-check's tolerance for two float64 training paths (relative parameter difference
#: after :data:`CHECK_UPDATES` updates): float32's unit roundoff, see :func:`self_check`
PATH_TOL = 2.0**-24
CHECK_UPDATES = 6


def path_rounding_bound(latent: int = 30, seq_len: int = 50, batch: int = 8,
                        updates: int = CHECK_UPDATES) -> float:
    """The largest relative parameter difference that rounding alone leaves between two
    float64 paths of the same arithmetic (summed in other orders): each gradient is a sum over
    batch × steps of products through (latent + 3)·steps rounded operations, so within
    (latent + 3)·steps·batch·ε₆₄ of the exact one (no cancellation assumed); Adam's step
    m̂/(√v̂ + ε) passes a relative gradient error at most once to its update, and the errors of
    the updates add up: updates · (latent + 3) · steps · batch · ε₆₄."""
    return updates * (latent + 3) * seq_len * batch * float(torch.finfo(torch.float64).eps)


def self_check(device: str, report: list[str] | None = None) -> list[str]:
    """Failures (empty when all pass) of: Triton against fused on ``device`` (float32 ≤ 1e-5,
    float64 ≤ 1e-12 relative, predictions and every gradient) when Triton runs there; the
    static (graph-captured on CUDA) update against the eager one, and ``device`` against the
    CPU, on a short float64 run of every architecture (:data:`CHECK_UPDATES` updates, one
    :class:`~chaosrnn_utils.training.Adam` on every path).

    The tolerance of the float64 runs, :data:`PATH_TOL` = 2⁻²⁴ (float32's unit roundoff,
    6.0e-8 relative), lies between what rounding allows and what a defect leaves: two paths
    of the same float64 arithmetic differ by at most :func:`path_rounding_bound` ≈ 1.8e-11
    (latent 30, 50 steps, batch 8, 6 updates), while any quantity that passes through float32
    carries at least float32's rounding, 2⁻²⁴ relative, into the parameters (the float32
    step count of a capturable Adam left 2.8–3.0e-7 on an H200). ``report`` gets one line
    per comparison with its measured difference, passed or not."""
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
                if report is not None:
                    report.append(f"triton vs fused {arch} {dtype}: {max(errs):.3g} (tol {tol})")
                if max(errs) > tol:
                    fails.append(f"triton vs fused {arch} {dtype}: {max(errs):.3g} > {tol}")
    t = np.arange(3000) * 0.05
    data = np.column_stack([np.sin(t), np.cos(1.3 * t), np.sin(0.4 * t)])
    s = training.TrainSettings(latent_dim=30, seq_len=50, batch_size=8, batches_per_epoch=3,
                               epochs=CHECK_UPDATES // 3, dtype="float64")
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
            if report is not None:
                report.append(f"{other} vs eager on {device}, {arch}: {err:.3g} "
                              f"(tol {PATH_TOL:.3g})")
            if not err <= PATH_TOL:
                fails.append(f"{other} vs eager on {device}, {arch}: {err:.3g} > "
                             f"{PATH_TOL:.3g}")
    return fails


def gpu_run(specs: Sequence[SweepSpec], state_dir: str | Path, out_dir: str | Path, *,
            budget_s: float, device: str | None = None, check: bool = True,
            eval_device: str | None = "cpu", margin_s: float = PACK_MARGIN_S,
            max_archives: int = MAX_FILES - 2) -> int:
    """One budgeted window (module docstring); returns the exit status: 0 when every sweep
    is complete, 3 when some are left for another window, 1 when the self-check failed.
    ``eval_device``: where finished ensembles are evaluated (default the CPU, the tested
    path; None: the training device). ``margin_s``: seconds kept back for evaluation and
    packing; ``max_archives``: sweeps touched at most (one archive each)."""
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
                 say, margin_s, max_archives)
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
             rows: list[dict[str, Any]], say: Any, margin_s: float = PACK_MARGIN_S,
             max_archives: int = MAX_FILES - 2) -> None:
    """The training part of :func:`gpu_run`: one progress row per sweep touched."""
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            left = budget_s - (training.clock() - start) - margin_s
            archive = state_dir / f"{spec.name}.tar.gz"
            folder = Path(tmp) / spec.name
            if archive.exists():
                unpack(archive, folder)
            if (folder / "results.csv").exists():
                continue  # finished in an earlier window
            if left <= 0 or len(rows) >= max_archives:
                continue
            t0 = training.clock()
            stopped = None
            try:
                df = sweeps.run_sweep(spec, folder, device=device, time_limit=left,
                                      progress=False, static=True, eval_device=eval_device)
                complete, pending = bool(df.attrs["complete"]), " ".join(df.attrs["pending"])
            except Stopped as err:  # the last checkpoints on disk are whole (atomic)
                stopped, complete, pending = err, False, f"interrupted ({err})"
            except Exception as err:  # noqa: BLE001 - packed and logged, not lost
                complete, pending = False, f"failed ({training.brief(err)})"
                say(f"{spec.name}: {''.join(traceback.format_exc(limit=-3)).rstrip()}")
                if "CUDA" in str(err):  # the device is unusable: pack and stop
                    stopped = err
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
    """The ``gpu-run``, ``gpu-window`` and ``gpu-unpack`` commands (see :mod:`.pipeline`)."""
    if args.command == "gpu-unpack":
        done = gpu_unpack(args.from_dir, args.state, args.results)
        print(f"finished sweeps written: {', '.join(done) or 'none'}")
        return 0
    if args.command == "gpu-window":
        specs = ([SweepSpec.from_json(p) for p in args.spec] if args.spec
                 else profile_specs(args.profile))
        return gpu_window(specs, args.state, args.out, budget_s=args.budget_s,
                          device=args.device, eval_device=None if args.eval_device == "same"
                          else args.eval_device)
    if args.check_only:
        fails = self_check(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        print("\n".join(["self-check " + ("FAILED" if fails else "passed"), *fails]))
        return 1 if fails else 0
    specs = ([SweepSpec.from_json(p) for p in args.spec] if args.spec
             else profile_specs(args.profile))
    return gpu_run(specs, args.state, args.out, budget_s=args.budget_s, device=args.device,
                   check=not args.no_self_check,
                   eval_device=None if args.eval_device == "same" else args.eval_device)


# ----------------------------------------------------------------------------- benchmark


def _static_runner(arch: str, n_members: int, seq_len: int, *, device: str, batch: int,
                   latent: int, dtype: str) -> tuple[Any, torch.Tensor, dict]:
    """(runner, windows, masks) of one ensemble's static update (built, captured on CUDA,
    its first update run): ``n_members`` with sparse forcing, τ spread over 5 … seq_len."""
    from functools import partial

    dev = torch.device(device)
    taus = np.linspace(5, seq_len, num=max(n_members, 1)).round().astype(int)
    members = [forcing.MemberConfig(seed=k, tau=int(t)) for k, t in enumerate(taus)]
    settings = training.TrainSettings(model=arch, latent_dim=latent, seq_len=seq_len,
                                      batch_size=batch, batches_per_epoch=1, epochs=1,
                                      dtype=dtype)
    state = training.new_state(members, settings, 3, device=dev)
    tdtype = state.model.dtype
    x = torch.randn(n_members, batch, seq_len + 1, 3, dtype=tdtype,
                    generator=torch.Generator().manual_seed(0)).to(dev)
    masks = forcing.schedule_masks(members, seq_len, 0, 1, training.member_generators(members))
    update = partial(training._update, state, list(state.model.parameters()),
                     *training._clip_thresholds(members, tdtype, dev),
                     torch.zeros((), dtype=torch.long, device=dev),
                     torch.zeros(n_members, dtype=tdtype, device=dev))
    runner = training._StaticRunner(update, state.model, x, masks)  # first update, capture
    runner(x, masks)  # one replay before timing
    return runner, x, masks


def _timed_rounds(runners: Sequence[tuple[Any, torch.Tensor, dict]], device: str,
                  reps: int) -> float:
    """Seconds per round (one update of every runner; on CUDA each on its own stream, so
    that they may overlap): ``reps`` rounds between two CUDA events on a GPU, with
    ``perf_counter`` after a synchronisation elsewhere."""
    dev = torch.device(device)
    if dev.type != "cuda":
        t0 = time.perf_counter()
        for _ in range(reps):
            for runner, x, masks in runners:
                runner(x, masks)
        return max((time.perf_counter() - t0) / reps, 1e-9)
    main = torch.cuda.current_stream(dev)
    streams = [main] if len(runners) == 1 else [torch.cuda.Stream(dev) for _ in runners]
    torch.cuda.synchronize(dev)
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record(main)
    for stream in streams:
        stream.wait_stream(main)
    for _ in range(reps):
        for (runner, x, masks), stream in zip(runners, streams, strict=True):
            with torch.cuda.stream(stream):
                runner(x, masks)
    for stream in streams:
        main.wait_stream(stream)
    end.record(main)
    end.synchronize()
    return max(begin.elapsed_time(end) / 1000.0 / reps, 1e-9)


def update_seconds(arch: str, n_members: int, seq_len: int, *, device: str,
                   batch: int = 32, latent: int = 30, dtype: str = "float32",
                   reps: int = 3) -> float:
    """Seconds per update of the path a window trains with (``train(static=True)``: fixed
    buffers, one CUDA graph replayed per update on a GPU) for an ensemble of ``n_members``
    (sparse forcing, τ spread over 5 … ``seq_len``), ``reps`` updates timed after the first
    (build, capture, compilation): between two CUDA events on a GPU, with ``perf_counter``
    after a synchronisation elsewhere. Never a difference of two totals; always > 0."""
    runner = _static_runner(arch, n_members, seq_len, device=device, batch=batch,
                            latent=latent, dtype=dtype)
    return _timed_rounds([runner], device, reps)


def concurrent_seconds(archs: Sequence[str], n_members: int, seq_len: int, *, device: str,
                       batch: int = 32, latent: int = 30, dtype: str = "float32",
                       reps: int = 3) -> tuple[float, float]:
    """(seconds per round with the jobs of ``archs`` side by side — one update of each,
    each on its own CUDA stream —, the sum of their seconds per update one at a time),
    each ensemble as in :func:`update_seconds`. A ratio under 1 is what training the jobs
    concurrently would gain."""
    runners = [_static_runner(a, n_members, seq_len, device=device, batch=batch,
                              latent=latent, dtype=dtype) for a in archs]
    alone = sum(_timed_rounds([r], device, reps) for r in runners)
    return _timed_rounds(runners, device, reps), alone


def pending_updates(spec: SweepSpec, state_dir: str | Path) -> dict[str, int]:
    """Updates left per architecture of ``spec`` (one job each, ``split=1``): (epochs − the
    epoch of its checkpoint in ``state_dir/<name>.tar.gz``) × batches per epoch; 0 for a
    finished sweep, the whole run without a checkpoint."""
    archive = Path(state_dir) / f"{spec.name}.tar.gz"
    done: dict[str, int] = {}
    if archive.exists():
        with tarfile.open(archive, "r:gz") as tar:
            names = tar.getnames()
            if "results.csv" in names:
                return {a: 0 for a in spec.architectures}
            for arch in spec.architectures:
                if f"checkpoints/{arch}.pt" in names:
                    blob = torch.load(io.BytesIO(tar.extractfile(f"checkpoints/{arch}.pt")
                                                 .read()), map_location="cpu",
                                      weights_only=False)
                    done[arch] = int(blob["epoch"])
    out = {}
    for arch in spec.architectures:
        s = spec.train_settings(arch)
        out[arch] = (s.epochs - done.get(arch, 0)) * s.batches_per_epoch
    return out


def benchmark(specs: Sequence[SweepSpec], state_dir: str | Path, *, device: str,
              budget_s: float, reps: int = 3, timer: Any = None,
              together: Any = None) -> pd.DataFrame:
    """One row per sweep × architecture with updates pending: the seconds per update
    measured at the sweep's own size (members, sequence length, batch, latent; by
    :func:`update_seconds`, each size once) and the projection ``projected_s`` = seconds
    per update × pending updates. Stops measuring sizes once 3/4 of ``budget_s`` is spent,
    the rest is for the concurrent row below (rows not
    measured keep NaN: no zero rows, no projection from another size). A size whose timing
    raises keeps NaN and the error in ``note`` (the window goes on to train).

    Then, if the budget allows, one more row for the first sweep with two or more jobs
    pending: ``arch`` = the jobs joined by ``+``, ``s_per_update`` = seconds per round with
    the jobs side by side (:func:`concurrent_seconds`: one update of each per round),
    ``projected_s`` NaN, and the sum of their seconds one at a time in ``note``."""
    timer = timer or update_seconds
    together = together or concurrent_seconds
    start = time.perf_counter()
    cache: dict[tuple, float] = {}
    notes: dict[tuple, str] = {}
    rows = []
    for spec in specs:
        n = len(spec.member_configs())
        for arch, todo in pending_updates(spec, state_dir).items():
            if todo == 0:
                continue
            s = spec.train_settings(arch)
            key = (arch, n, s.seq_len, s.batch_size, s.latent_dim, s.dtype)
            if key not in cache and time.perf_counter() - start < 0.75 * budget_s:
                try:
                    cache[key] = timer(arch, n, s.seq_len, device=device,
                                       batch=s.batch_size, latent=s.latent_dim,
                                       dtype=s.dtype, reps=reps)
                except Exception as err:  # noqa: BLE001 - recorded, the window goes on
                    cache[key], notes[key] = math.nan, training.brief(err)
            sec = cache.get(key, math.nan)
            rows.append(dict(sweep=spec.name, arch=arch, members=n, seq_len=s.seq_len,
                             batch=s.batch_size, s_per_update=sec, pending_updates=todo,
                             projected_s=sec * todo, note=notes.get(key, "")))
    multi = [r for r in rows if r["pending_updates"] > 0]
    for spec in specs:
        archs = [r["arch"] for r in multi if r["sweep"] == spec.name]
        if len(archs) < 2 or time.perf_counter() - start >= budget_s:
            continue
        first = next(r for r in multi if r["sweep"] == spec.name)
        s = spec.train_settings(archs[0])
        try:
            both, alone = together(archs, first["members"], first["seq_len"], device=device,
                                   batch=s.batch_size, latent=s.latent_dim, dtype=s.dtype,
                                   reps=reps)
            note = (f"{len(archs)} jobs side by side, one update of each per round; one at a "
                    f"time {alone:.4g} s (ratio {both / alone:.3f})")
        except Exception as err:  # noqa: BLE001 - recorded, the window goes on
            both, note = math.nan, training.brief(err)
        rows.append(dict(sweep=spec.name, arch="+".join(archs), members=first["members"],
                         seq_len=first["seq_len"], batch=s.batch_size, s_per_update=both,
                         pending_updates=0, projected_s=math.nan, note=note))
        break
    return pd.DataFrame(rows, columns=["sweep", "arch", "members", "seq_len", "batch",
                                       "s_per_update", "pending_updates", "projected_s",
                                       "note"])


# ----------------------------------------------------------------------------- one window

#: the window's parts: self-check and benchmark at most this long each (seconds)
CHECK_S, BENCH_S = 60.0, 60.0


def gpu_window(specs: Sequence[SweepSpec], state_dir: str | Path, out_dir: str | Path, *,
               budget_s: float, device: str | None = None, bench_s: float = BENCH_S,
               margin_s: float = PACK_MARGIN_S, eval_device: str | None = "cpu",
               check: Any = None) -> int:
    """One whole window in ``budget_s`` seconds, everything under ``out_dir``:

    1. ``self_check.txt``: the self-check (every comparison's measured difference); on a
       failure the diagnosis is all there is (exit status 1, no training);
    2. ``bench.csv``: seconds per update at each pending sweep's own size and the projected
       seconds of what is pending (:func:`benchmark`, at most ``bench_s``);
    3. training until ``budget_s`` − ``margin_s`` from the start (:func:`gpu_run`: the
       archives, ``log.txt``, ``progress.csv``).

    At most :data:`MAX_FILES` files, each at most :data:`MAX_BYTES`. ``check``: the
    self-check (default :func:`self_check`; skipped on the CPU). Exit status as
    :func:`gpu_run`."""
    start = time.perf_counter()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment(device)
    head = (f"gpu-window on {env['device']} (torch {env['torch']}, triton {env['triton']}, "
            f"commit {env['commit'][:12]}), budget {budget_s:.0f} s")
    print(head, flush=True)
    report: list[str] = []
    fails: list[str] = []
    if check is not None or device != "cpu":
        try:
            fails = (check or self_check)(device, report)
        except Exception as err:  # noqa: BLE001 - a self-check that cannot run fails
            fails = [f"the self-check raised {training.brief(err)}",
                     *traceback.format_exc(limit=-3).rstrip().splitlines()]
    took = time.perf_counter() - start
    verdict = "FAILED" if fails else "passed"
    lines = [head, f"self-check {verdict} in {took:.1f} s (float64 paths: tolerance "
             f"{PATH_TOL:.3g}, rounding bound {path_rounding_bound():.3g})", *report]
    if fails:
        lines += ["failures (no training in this window):", *fails]
    (out_dir / "self_check.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[1:]), flush=True)
    if fails:
        return 1
    t0 = time.perf_counter()
    bench = benchmark(specs, state_dir, device=device, budget_s=bench_s)
    bench.to_csv(out_dir / "bench.csv", index=False)
    total = float(np.nansum(bench["projected_s"]))
    print(f"benchmark in {time.perf_counter() - t0:.1f} s: {bench['s_per_update'].notna().sum()}"
          f" of {len(bench)} sizes measured; pending training {total / 60:.1f} "
          f"device-minutes (measured sizes only)", flush=True)
    left = budget_s - (time.perf_counter() - start)
    return gpu_run(specs, state_dir, out_dir, budget_s=left, device=device, check=False,
                   eval_device=eval_device, margin_s=margin_s, max_archives=MAX_FILES - 4)
