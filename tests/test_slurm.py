"""Sweeps on a real SLURM cluster (one node, started here; skipped where SLURM is not
installed): a tiny sweep through the ``slurm`` executor, one array task interrupted mid-run
(preemption signal: it is requeued and resumes from its checkpoint), and the same table as a
``local`` run. Also the single-job entry point and the local pool's device assignment."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from chaosrnn_utils import paths, pipeline, sweeps
from chaosrnn_utils.sweeps import SlurmOptions, SweepSpec, run_job, run_sweep, worker_devices

sys.path.insert(0, str(Path(__file__).parent))
from slurm_cluster import OneNodeSlurm, why_not  # noqa: E402

SPEC = dict(
    name="tiny-slurm",
    dataset="lorenz",
    n_data=3000,
    settings=dict(latent_dim=6, seq_len=40, batch_size=8, batches_per_epoch=3, epochs=80,
                  lr=1e-2, dtype="float64"),
    architectures=["plrnn"],
    grid={"tau": [5, 10], "seed": [0, 1]},
    n_generate=2000,
    checkpoint_every=5,
    split=2,
)
DROP = ["wall_time", "git_commit"]


def test_each_local_worker_gets_its_own_gpu():
    assert worker_devices(3, None, 4) == ["cuda:0", "cuda:1", "cuda:2"]
    assert worker_devices(3, None, 2) == ["cuda:0", "cuda:1", "cuda:0"]
    assert worker_devices(2, None, 1) == [None, None]  # one GPU (or none): the default
    assert worker_devices(2, None, 0) == [None, None]
    assert worker_devices(2, "cpu", 4) == ["cpu", "cpu"]  # a device given wins


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The generated data in a temporary cache, seen by this process and by SLURM's jobs (they
    inherit the environment), which import this checkout's package."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paths, "CACHE_DIR", cache)
        mp.setenv("CHAOSRNN_CACHE_DIR", str(cache))
        mp.setenv("PYTHONPATH", str(paths.ROOT))
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            mp.setenv(var, "1")
        yield cache


@pytest.fixture(scope="module")
def local(env, tmp_path_factory):
    """The tiny sweep on the local executor: (wall seconds, table)."""
    t0 = time.perf_counter()
    out = tmp_path_factory.mktemp("local")
    df = run_sweep(SweepSpec(**SPEC), out, device="cpu", progress=False)
    assert df.attrs["complete"]
    return time.perf_counter() - t0, df, pd.read_csv(out / "results.csv")


@pytest.fixture(scope="module")
def cluster(env, tmp_path_factory):
    """A one-node SLURM cluster for the module; only its own daemons are stopped."""
    if (reason := why_not()) is not None:
        pytest.skip(reason)
    c = OneNodeSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
    except RuntimeError as err:
        c.stop()
        pytest.fail(f"the one-node SLURM cluster did not start: {err}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(c.conf))
        yield c
    c.stop()


def _wait_for(ok, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ok():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_slurm_sweep_with_a_preempted_task_equals_the_local_run(cluster, local, tmp_path,
                                                                capsys):
    """The command line submits the array and is killed; one task is preempted mid-run and
    requeued; a rerun waits for the queued tasks (submitting nothing again) and gets the local
    run's table."""
    out = tmp_path / "slurm"
    spec_file = SweepSpec(**SPEC).to_json(tmp_path / "spec.json")
    t0 = time.perf_counter()
    parent = subprocess.Popen([sys.executable, "-m", "chaosrnn_utils", "sweep", str(spec_file),
                               "--out", str(out), "--device", "cpu", "--executor", "slurm",
                               "--slurm-time", "10"], cwd=paths.ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    submitted = out / "slurm" / "submitted.json"
    ckpt, part = out / "checkpoints" / "plrnn-1.pt", out / "parts" / "plrnn-1.csv"
    try:
        _wait_for(lambda: submitted.exists() and ckpt.exists() or parent.poll() is not None,
                  120, f"a first checkpoint of plrnn-1 ({cluster.logs()})")
        assert parent.poll() is None, parent.communicate()[0].decode()[-2000:]
    finally:
        parent.kill()  # the parent goes; its array stays queued
        parent.wait()
    assert not part.exists(), "plrnn-1 finished before it could be interrupted"
    ids = json.loads(submitted.read_text())
    job_id = ids["plrnn-1"]
    # what a preemption (or the warning before a time limit) sends: submitit's handler
    # checkpoints the call and requeues the job, which resumes from the training checkpoint
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, env=cluster.env)

    def requeued() -> bool:
        q = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True,
                           text=True, env=cluster.env).stdout.split("\n")
        return f"{job_id} PENDING" in q or part.exists()

    _wait_for(requeued, 60, f"job {job_id} requeued ({cluster.logs()})")
    # SLURM holds a requeued job back for two minutes (its begin time): release it after two
    # seconds, not at once. slurmd revokes a killed job's credential with a timestamp in whole
    # seconds, and refuses to launch a job whose new credential dates from the same second
    # ("Job 1 already killed, do not launch batch job": the job then leaves the queue
    # unfinished). Seen once when the release came 0.5 s after the kill.
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now+2"],
                   env=cluster.env, capture_output=True)
    df = run_sweep(SweepSpec(**SPEC), out, device="cpu", executor="slurm",
                   slurm=SlurmOptions(time_min=10, poll_s=0.5))
    wall = time.perf_counter() - t0
    assert df.attrs["complete"]
    assert json.loads(submitted.read_text()) == ids  # waited for, not submitted again
    assert f"plrnn-1: already on SLURM as job {job_id}" in capsys.readouterr().out
    logs = "\n".join(f.read_text(errors="replace") for f in (out / "slurm").rglob("*_log.*"))
    assert "Caught signal SIGUSR2" in logs and f"Requeued job {job_id}" in logs, logs[-2000:]
    resumed = [ln for ln in logs.splitlines() if "plrnn-1: resuming from" in ln]
    assert resumed and int(resumed[-1].rsplit(" ", 1)[-1]) > 0, logs[-2000:]
    local_wall, ref, ref_csv = local
    pd.testing.assert_frame_equal(df.drop(columns=DROP), ref.drop(columns=DROP),
                                  check_exact=True)
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv").drop(columns=DROP),
                                  ref_csv.drop(columns=DROP), check_exact=True)
    with capsys.disabled():
        print(f"\ntiny sweep: local {local_wall:.1f} s, SLURM {wall:.1f} s (parent killed and "
              "rerun, one task preempted and requeued)")


def test_single_job_entry_point(env, local, tmp_path):
    """``--job NAME`` runs one job (as any scheduler would): its part holds the rows of the
    local run, its final parameters are kept beside it; a finished job is not redone; an
    unknown job is one line, status 2."""
    out = tmp_path / "out"
    spec_file = SweepSpec(**SPEC).to_json(tmp_path / "spec.json")
    assert pipeline.main(["sweep", str(spec_file), "--out", str(out), "--job", "plrnn-0",
                          "--device", "cpu"]) == 0
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["plrnn-0.csv",
                                                                  "plrnn-0.models.pt"]
    part = pd.read_csv(out / "parts" / "plrnn-0.csv").drop(columns=["row_sha256", *DROP])
    ref = local[2].drop(columns=DROP)
    pd.testing.assert_frame_equal(part, ref[ref["member"].isin(part["member"])],
                                  check_exact=True)
    assert run_job(SweepSpec(**SPEC), out, "plrnn-0", progress=False)  # done: not redone
    assert pipeline.main(["sweep", str(spec_file), "--out", str(out), "--job", "nope"]) == 2
    assert pipeline.main(["sweep", str(spec_file), "--out", str(out), "--job", "plrnn-1",
                          "--executor", "slurm"]) == 2


def test_a_job_another_process_runs_is_left_alone(env, tmp_path, capsys):
    """While a job's lock is held (by a SLURM task or a ``--job`` run), another run skips that
    job and keeps its temporary files; a temporary file of a free job is removed."""
    out = tmp_path / "out"
    spec = SweepSpec(**SPEC)
    (out / "checkpoints").mkdir(parents=True)
    busy, stale = (out / "checkpoints" / f".plrnn-{k}.pt.0123456789ab.tmp" for k in (1, 0))
    busy.write_bytes(b"x")
    stale.write_bytes(b"x")
    with sweeps._locked(out, "checkpoints/plrnn-1.lock"):
        sweeps._remove_stale_temporaries(out)
        assert busy.exists() and not stale.exists()
        assert not run_job(spec, out, "plrnn-1", progress=False)
    assert "plrnn-1: being run by another process (pid" in capsys.readouterr().out
    assert not (out / "parts" / "plrnn-1.csv").exists()


def test_a_requeued_job_waits_for_its_predecessor_to_let_go(env, local, tmp_path, capsys):
    """A requeued SLURM task can start while its preempted predecessor is still exiting, and
    another run may look at the job's lock for an instant: a job run with ``lock_wait_s``
    waits for the lock and runs (the local run's rows); without it, it skips the job."""
    import threading

    out = tmp_path / "out"
    spec = SweepSpec(**SPEC)
    held, release = threading.Event(), threading.Event()

    def predecessor() -> None:
        with sweeps._locked(out, "checkpoints/plrnn-0.lock"):
            held.set()
            release.wait(60)

    t = threading.Thread(target=predecessor)
    t.start()
    try:
        assert held.wait(60)
        assert not run_job(spec, out, "plrnn-0", progress=False)  # no wait: skipped
        assert "plrnn-0: being run by another process (pid" in capsys.readouterr().out
        threading.Timer(1.0, release.set).start()
        assert run_job(spec, out, "plrnn-0", progress=False, lock_wait_s=60)
    finally:
        release.set()
        t.join()
    part = pd.read_csv(out / "parts" / "plrnn-0.csv").drop(columns=["row_sha256", *DROP])
    ref = local[2].drop(columns=DROP)
    pd.testing.assert_frame_equal(part, ref[ref["member"].isin(part["member"])],
                                  check_exact=True)
