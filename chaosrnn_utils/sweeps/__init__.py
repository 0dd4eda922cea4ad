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
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import torch

from ..errors import USER_ERRORS, check_data_dir, error_line
from ..validate import check_positive_int, positive_int_arg, seconds_arg  # noqa: F401  (re-exported)
from .command import (  # noqa: F401  (re-exported: sweeps.X keeps working)
    _accepts,
    _check_inputs,
    _check_types,
    add_arguments,
    check_spec_types,
    spec_from_args,
)
from .estimate import (  # noqa: F401  (re-exported: sweeps.X keeps working)
    EVAL_COST,
    JOB_COST,
    MEMBER_EPOCH_S,
    calibrate,
    job_estimate,
)
from .evaluate import (  # noqa: F401  (re-exported: sweeps.X keeps working)
    PROTOCOL_KEYS,
    _evaluate_job,
    _rows,
    evaluate_protocols,
    load_job_models,
    models_path,
    save_job_models,
)
from .local import (  # noqa: F401  (re-exported: sweeps.X keeps working)
    _PR_SET_PDEATHSIG,
    REQUEUE_LOCK_WAIT_S,
    _run_job,
    _run_jobs,
    _train_job,
    _watch_parent,
    _worker_init,
    run_job,
    worker_devices,
)
from .slurm import (  # noqa: F401  (re-exported: sweeps.X keeps working)
    SlurmOptions,
    _queued,
    _run_slurm,
    _slurm_task_class,
)
from .spec import (  # noqa: F401  (re-exported: sweeps.X keeps working)
    INPUTS_KEY,
    MEMBER_FIELDS,
    SETTINGS_FIELDS,
    SweepSpec,
    _atomic_csv,
    _atomic_write_text,
    _check_data_fits,
    _dataset_kind,
    _unknown,
    eval_epochs,
    load_sweep_data,
    sweep_jobs,
)
from .store import (  # noqa: F401  (re-exported: sweeps.X keeps working)
    ROW_CHECK,
    SweepInUse,
    _checkpoint_wall_time,
    _claim_out_dir,
    _collect,
    _data_sha256,
    _finished_parts,
    _job_busy,
    _locked,
    _move_aside,
    _note,
    _part_problem,
    _remove_stale_temporaries,
    _row_digest,
    _short,
    _table,
    _write_part,
    git_commit,
    sweep_inputs,
)

__all__ = ["SlurmOptions", "SweepSpec", "load_sweep_data", "run_job", "run_sweep",
           "spec_from_args", "sweep_inputs", "sweep_jobs", "sweep_main", "worker_devices"]


#: exit status of the command line when the time limit stopped the sweep before the end
EXIT_INCOMPLETE = 3


def pending_jobs(spec: SweepSpec, out_dir: str | Path) -> tuple[dict[str, str],
                                                                   list[tuple[str, str, range]]]:
    """What :func:`run_sweep` would do first, without training: check the spec and data,
    claim ``out_dir`` (``spec.json``) under its lock, move damaged parts aside; returns
    (:func:`sweep_inputs`, the jobs not yet finished), for a caller that runs the jobs itself
    (:func:`_run_job` in a pool of its own) and then calls :func:`run_sweep` for the table."""
    spec.validate()
    out_dir = Path(out_dir)
    with _claimed(spec, out_dir) as inputs:
        jobs = sweep_jobs(spec)
        finished = _finished_parts(spec, out_dir, inputs, jobs)
    return inputs, [j for j in jobs if j[0] not in finished]


@contextmanager
def _claimed(spec: SweepSpec, out_dir: Path) -> Iterator[dict[str, str]]:
    """Check the spec's data (:func:`load_sweep_data`), then hold ``out_dir``'s lock with its
    ``spec.json`` claimed for ``spec`` (:func:`_claim_out_dir`) and stale temporaries
    removed; yields the sweep's inputs (:func:`sweep_inputs`)."""
    x_train, x_test = load_sweep_data(spec)
    _check_data_fits(spec, x_train, x_test)
    inputs = sweep_inputs(spec, x_train, x_test)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir):
        if (note := _claim_out_dir(spec, out_dir, inputs)) is not None:
            _note(note)
        _remove_stale_temporaries(out_dir)
        yield inputs


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
    with _claimed(spec, out_dir) as inputs:
        if executor == "slurm":
            return _run_slurm(spec, out_dir, inputs, device, slurm, progress, static,
                              eval_device)
        return _run_jobs(spec, out_dir, inputs, device, time_limit, workers, progress, static,
                         eval_device)


EXECUTORS = ("local", "slurm")


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
            return 0 if run_job(spec, args.out, job, device=args.device,
                                lock_wait_s=REQUEUE_LOCK_WAIT_S) else EXIT_INCOMPLETE
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
