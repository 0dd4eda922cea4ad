"""The pool of ``reproduce --lanes N``: the plan's parts run in ``N`` spawned worker
processes, each part as soon as what it waits for is done (:func:`run_pool`)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .comparison import summary_dir
from .plan import Part, Run, _minutes, _next_ready, priorities
from .runner import run_notebook, staged_summary


def _pool_notebook(run: Run, out_dir: Path, summary: Path, log: Path) -> None:
    """A notebook part, in a pool worker: one torch thread in its kernel, its output to
    ``log``, its summary staged into the folder ``summary`` (:func:`staged_summary`)."""
    from contextlib import redirect_stderr, redirect_stdout

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh, redirect_stdout(fh), redirect_stderr(fh), \
            staged_summary(target=summary):
        run_notebook(run.notebook, run.parameters, out_dir, run.name)


def _pool_job(spec_dict: dict[str, Any], out_dir: str, job: str, arch: str, index: range,
              inputs: dict[str, str]) -> tuple[bool, str]:
    """A sweep-job part, in a pool worker (one torch thread): (finished, message)."""
    from . import sweeps

    _, done, message, notes = sweeps._run_job(spec_dict, out_dir, job, arch, index, None,
                                              None, False, inputs, 1)
    return done, "\n".join([*notes, message])


def _sweep_job_done(spec_dict: dict[str, Any], left: Counter[str], start: dict[str, float],
                    profile: str, lanes: int) -> None:
    """Count a finished job of a sweep; once its last job is done, and when publishing
    (``reproduce``), log the sweep's training (:func:`~.experiments.log_training`), so that
    its figures and rows name the machine that trained it."""
    from . import paths
    from .experiments import log_training

    name = spec_dict["name"]
    left[name] -= 1
    if left[name] == 0 and paths.publishing():
        log_training(profile, name, spec_dict["dataset"], start[name], lanes, True)


def run_pool(parts: Sequence[Part], lanes: int, profile: str, out_dir: Path) -> int:
    """Run ``parts`` in ``lanes`` worker processes, each part as soon as what it waits for is
    done, the longest critical path first (the order of :func:`simulate`); one progress line
    per finished part (its time against its estimate, the time gone and an estimate of the
    time left); a notebook's output in ``<out_dir>/logs/<name>.log``. A failed part fails the
    parts that wait for it; the others go on. Exit status 0, or 1 when a part failed."""
    import multiprocessing
    import resource
    import time
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from . import sweeps

    prio = priorities(parts)
    pending = {p.name: p for p in parts}
    # per sweep: its jobs still to finish and when the first started (for the training log)
    sweep_jobs_left = Counter(p.job[0]["name"] for p in parts if p.job is not None)
    sweep_start: dict[str, float] = {}
    done: set[str] = set()
    failed: list[str] = []
    running: dict[Any, tuple[Part, float]] = {}
    t_start, n = time.time(), len(parts)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=lanes, mp_context=ctx,
                             initializer=sweeps._worker_init, initargs=(os.getpid(),)) as pool:
        while pending or running:
            for name in [q for q, p in pending.items() if set(p.after) & set(failed)]:
                print(f"[{len(done) + len(failed) + 1}/{n}] {name}: not run (a part it "
                      "waits for failed)", flush=True)
                failed.append(name)
                del pending[name]
            while len(running) < lanes and (part := _next_ready(pending, done, prio)):
                del pending[part.name]
                if part.run is not None:
                    fut = pool.submit(_pool_notebook, part.run, out_dir, summary_dir(profile),
                                      out_dir / "logs" / f"{part.name}.log")
                else:
                    fut = pool.submit(_pool_job, *part.job)
                    sweep_start.setdefault(part.job[0]["name"], time.time())
                running[fut] = (part, time.time())
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                part, t0 = running.pop(fut)
                took, k = time.time() - t0, len(done) + len(failed) + 1
                try:
                    result = fut.result()
                except Exception as err:  # noqa: BLE001 (reported, the others go on)
                    failed.append(part.name)
                    where = (f"; log {out_dir / 'logs' / (part.name + '.log')}"
                             if part.run is not None else "")
                    print(f"[{k}/{n}] {part.name}: FAILED after {_minutes(took)} "
                          f"({type(err).__name__}: {' '.join(str(err).split())[:300]}){where}",
                          flush=True)
                    continue
                if part.job is not None and not result[0]:
                    failed.append(part.name)
                    print(f"[{k}/{n}] {result[1]}", flush=True)
                    continue
                done.add(part.name)
                if part.job is not None:
                    _sweep_job_done(part.job[0], sweep_jobs_left, sweep_start, profile, lanes)
                left = sum(p.estimate for p in pending.values()) + sum(
                    max(p.estimate - (time.time() - t), 0.0) for p, t in running.values())
                print(f"[{k}/{n}] {part.name}: done in {_minutes(took)} (estimated "
                      f"{_minutes(part.estimate)}); {_minutes(time.time() - t_start)} gone, "
                      f"about {_minutes(left / lanes)} left", flush=True)
    wall = time.time() - t_start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    print(f"Pool: {_minutes(wall)} wall, {cpu / 60:.1f} CPU-minutes in its processes "
          f"(CPU/wall {cpu / wall:.2f} on {lanes} lanes)", flush=True)
    return 1 if failed else 0
