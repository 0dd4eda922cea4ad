"""Jobs run on SLURM: one job array through submitit (:class:`SlurmOptions`); a
preempted or timed-out job is requeued and resumes from its checkpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..validate import check_positive_int
from .local import REQUEUE_LOCK_WAIT_S, run_job
from .spec import SweepSpec, _atomic_write_text, sweep_jobs
from .store import _finished_parts, _note, _table


@dataclass
class SlurmOptions:
    """How :func:`run_sweep` submits a sweep's jobs to SLURM (submitit's ``AutoExecutor``):
    ``partition`` (None: the cluster's default), ``time_min`` per job (a job that reaches it
    is requeued and resumes from its checkpoint, up to ``max_requeue`` times), at most
    ``array_parallelism`` jobs running at once, ``gpus_per_job`` (0: CPU), ``cpus_per_job``
    (torch threads of the job), ``poll_s`` between the parent's looks at the queue and
    ``extra``: further submitit parameters (e.g. ``{"slurm_account": "lab"}``)."""

    partition: str | None = None
    time_min: int = 60
    array_parallelism: int = 64
    gpus_per_job: int = 0
    cpus_per_job: int = 1
    max_requeue: int = 3
    poll_s: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> SlurmOptions:
        """Raise a one-line ValueError for a bad option."""
        for name in ("time_min", "array_parallelism", "cpus_per_job"):
            check_positive_int(getattr(self, name), f"slurm {name}")
        for name in ("gpus_per_job", "max_requeue"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"slurm {name} must be an integer >= 0, got {value!r}")
        if not self.poll_s > 0:
            raise ValueError(f"slurm poll_s must be > 0, got {self.poll_s!r}")
        return self


_SlurmTask: type | None = None


def _slurm_task_class() -> type:
    """The callable a SLURM job runs: :func:`run_job` on its job, as a submitit
    ``Checkpointable`` (on preemption or timeout it is requeued with the same arguments and
    resumes from the job's checkpoint). Built on first use: submitit is imported only here."""
    global _SlurmTask
    if _SlurmTask is None:
        import submitit

        class SlurmTask(submitit.helpers.Checkpointable):
            def __call__(self, spec_dict: dict[str, Any], out_dir: str, job: str,
                         device: str | None, threads: int, static: bool = False,
                         eval_device: str | None = None) -> bool:
                torch.set_num_threads(threads)
                return run_job(SweepSpec.from_dict(spec_dict), out_dir, job, device=device,
                               progress=False, static=static, eval_device=eval_device,
                               lock_wait_s=REQUEUE_LOCK_WAIT_S)

        _SlurmTask = SlurmTask
    return _SlurmTask


def _queued(ids: Sequence[str]) -> set[str]:
    """Which of the SLURM job ids ``ids`` (``<array>_<task>``) are still queued or running."""
    if not ids:
        return set()
    r = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"squeue failed: {r.stderr.strip()[:200]}")
    return set(r.stdout.split()) & set(ids)


def _run_slurm(spec: SweepSpec, out_dir: Path, inputs: dict[str, str],
               device: torch.device | str | None, opts: SlurmOptions, progress: bool,
               static: bool = False, eval_device: str | None = None) -> pd.DataFrame:
    """:func:`run_sweep` on SLURM, once the folder is locked and claimed."""
    say = print if progress else (lambda *a, **k: None)
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise ValueError("the slurm executor needs SLURM's sbatch and squeue on PATH; "
                         "use --executor local")
    import submitit

    jobs = sweep_jobs(spec)
    finished = _finished_parts(spec, out_dir, inputs, jobs)
    todo = [j for j in jobs if j[0] not in finished]
    record_path = out_dir / "slurm" / "submitted.json"
    try:
        submitted = json.loads(record_path.read_text()) if record_path.exists() else {}
    except (OSError, ValueError):
        submitted = {}
    still = _queued([submitted[j[0]] for j in todo if j[0] in submitted])
    waiting: dict[str, tuple[str, Any]] = {
        j[0]: (submitted[j[0]], None) for j in todo if submitted.get(j[0]) in still}
    for name in sorted(finished):
        say(f"[{spec.name}] {name}: done", flush=True)
    for name, (jid, _) in waiting.items():
        say(f"[{spec.name}] {name}: already on SLURM as job {jid}; waiting for it", flush=True)
    new = [j for j in todo if j[0] not in waiting]
    if new:
        ex = submitit.AutoExecutor(folder=out_dir / "slurm" / "%j", cluster="slurm",
                                   slurm_max_num_timeout=opts.max_requeue)
        params: dict[str, Any] = dict(
            name=f"chaosrnn-{spec.name}", timeout_min=opts.time_min,
            slurm_array_parallelism=opts.array_parallelism, cpus_per_task=opts.cpus_per_job,
            **opts.extra)
        if opts.partition is not None:
            params["slurm_partition"] = opts.partition
        if opts.gpus_per_job:
            params["gpus_per_node"] = opts.gpus_per_job
        ex.update_parameters(**params)
        dev = None if device is None else str(device)
        task = _slurm_task_class()()
        n = len(new)
        subs = ex.map_array(task, [spec.to_dict()] * n, [str(out_dir)] * n,
                            [j[0] for j in new], [dev] * n, [opts.cpus_per_job] * n,
                            [static] * n, [eval_device] * n)
        for (name, _, _), sub in zip(new, subs, strict=True):
            waiting[name] = (sub.job_id, sub)
            submitted[name] = sub.job_id
        _atomic_write_text(record_path, json.dumps(submitted, indent=1) + "\n")
        say(f"[{spec.name}] submitted {n} jobs to SLURM as array "
            f"{subs[0].job_id.split('_')[0]} (logs: {out_dir / 'slurm'})", flush=True)
    while waiting:
        time.sleep(opts.poll_s)
        queued = _queued([jid for jid, _ in waiting.values()])
        for name, (jid, sub) in list(waiting.items()):
            if jid in queued:
                continue
            del waiting[name]
            if sub is None or not sub.paths.result_pickle.exists():
                say(f"[{spec.name}] {name}: SLURM job {jid} left the queue", flush=True)
                continue
            try:
                sub.result()
                say(f"[{spec.name}] {name}: SLURM job {jid} done", flush=True)
            except Exception as err:  # noqa: BLE001 - the job's error, as submitit gives it
                last = [ln for ln in str(err).strip().splitlines() if ln.strip()][-1:]
                _note(f"[{spec.name}] {name}: SLURM job {jid} failed ({''.join(last)[:200]}); "
                      f"log {sub.paths.stderr}")
    return _table(spec, out_dir, inputs, say)
