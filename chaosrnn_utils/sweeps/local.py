"""Jobs run here: one job (:func:`run_job`), or a pool of single-thread worker
processes, each with its device (:func:`worker_devices`), which die with the sweep's process
(orphan guards: :func:`_worker_init`)."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from .. import fused, training
from ..models import MODELS
from .estimate import JOB_COST
from .evaluate import _evaluate_job, models_path, save_job_models
from .spec import SweepSpec, _check_data_fits, _unknown, load_sweep_data, sweep_jobs
from .store import (
    SweepInUse,
    _checkpoint_wall_time,
    _claim_out_dir,
    _data_sha256,
    _finished_parts,
    _locked,
    _move_aside,
    _note,
    _table,
    _write_part,
    sweep_inputs,
)

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
             eval_device: str | None = None,
             lock_wait_s: float = 0.0) -> tuple[str, bool, str, list[str]]:
    """Train (or resume) and evaluate one job; returns (job, finished, message, notes: lines
    on repairs made). Runs in the calling process or in a worker (``threads``: torch threads
    there). ``deadline``: a ``training.clock()`` reading after which training stops at the end
    of an epoch. ``inputs``: :func:`sweep_inputs`, checked against the data loaded here.
    ``static``: ``train(static=True)`` (one CUDA graph per update on a GPU) where the
    architecture has a fused engine. ``eval_device``: where the finished ensemble is
    evaluated (None: where it trained). Holds the job's lock (``checkpoints/<job>.lock``): a
    job another process is running (a SLURM task, a ``--job`` run) is skipped, saying so,
    if its lock is still held after ``lock_wait_s`` seconds (a requeued job waits for its
    preempted predecessor to exit, and outlasts another run's brief look at the lock)."""
    with ExitStack() as stack:
        try:
            stack.enter_context(_locked(Path(out_dir), f"checkpoints/{job}.lock",
                                        wait_s=lock_wait_s))
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


#: how long a job run by a scheduler (a SLURM task, ``--job``) waits for its lock: a requeued
#: job can start while its preempted predecessor is still exiting (submitit ignores SIGTERM
#: while it checkpoints)
REQUEUE_LOCK_WAIT_S = 300.0


def run_job(spec: SweepSpec, out_dir: str | Path, job: str, *,
            device: torch.device | str | None = None, progress: bool = True,
            static: bool = False, eval_device: str | None = None,
            lock_wait_s: float = 0.0) -> bool:
    """Train (or resume) and evaluate the single job ``job`` (a name of :func:`sweep_jobs`)
    into ``out_dir``, for any scheduler: it holds only that job's lock
    (``checkpoints/<job>.lock``, see :func:`_run_job`; waiting up to ``lock_wait_s`` seconds
    for it), so jobs of one sweep run side by side; the plain sweep command afterwards finds
    their parts. ``static``, ``eval_device``: as in :func:`run_sweep`. Returns whether the
    job is finished."""
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
                                       eval_device=eval_device, lock_wait_s=lock_wait_s)
    for line in notes:
        _note(line)
    print(message, flush=True)
    return done
