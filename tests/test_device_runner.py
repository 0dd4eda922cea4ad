"""The budgeted device runner on the CPU: windows cut by the budget, each resumed from the
state the previous one brought back (through the command line), give the same table as
one window with budget to spare."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from chaosrnn_utils import device_runner, paths, pipeline, sweeps, training

SPEC = dict(name="tiny_gpu", dataset="lorenz", n_data=2000,
            settings=dict(latent_dim=4, seq_len=20, batch_size=2, batches_per_epoch=2,
                          epochs=6, lr=1e-2, dtype="float64"),
            architectures=["plrnn", "lstm"], grid={"tau": [5], "seed": [0, 1]},
            n_generate=500, checkpoint_every=1)


class StepClock:
    """Advances one second per reading: the budget cuts after a number of epochs fixed by
    the code path, whatever the machine's speed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path_factory.getbasetemp() / "cache")


def window(spec_file, state, out, budget) -> int:
    return pipeline.main(["gpu-run", "--spec", str(spec_file), "--state", str(state),
                          "--out", str(out), "--budget-s", str(budget), "--device", "cpu",
                          "--no-self-check"])


def unpack(out, state, results) -> int:
    return pipeline.main(["gpu-unpack", "--from", str(out), "--state", str(state),
                          "--results", str(results)])


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    """The spec file and the table of one window with budget to spare."""
    tmp = tmp_path_factory.mktemp("one")
    spec_file = tmp / "spec.json"
    spec_file.write_text(json.dumps(SPEC))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paths, "CACHE_DIR", tmp_path_factory.getbasetemp() / "cache")
        assert window(spec_file, tmp / "s1", tmp / "o1", 1e6) == 0
        assert unpack(tmp / "o1", tmp / "s1", tmp / "r1") == 0
    return spec_file, pd.read_csv(tmp / "r1" / "tiny_gpu.csv")


DROP = ["wall_time", "git_commit", "device_seconds"]


def test_budgeted_windows_give_the_table_of_one_run(one_run, tmp_path, monkeypatch, capsys):
    spec_file, one = one_run
    monkeypatch.setattr(training, "clock", StepClock())
    statuses = []
    for k in range(20):
        out = tmp_path / f"w{k}"
        budget = device_runner.PACK_MARGIN_S + 12  # 12 clock readings of training
        statuses.append(window(spec_file, tmp_path / "s2", out, budget))
        files = sorted(p.name for p in out.iterdir())
        assert files == ["log.txt", "progress.csv", "tiny_gpu.tar.gz"], files
        unpack(out, tmp_path / "s2", tmp_path / "r2")
        if statuses[-1] == 0:
            break
    assert len(statuses) >= 2 and statuses[:-1] == [3] * (len(statuses) - 1), statuses
    chunked = pd.read_csv(tmp_path / "r2" / "tiny_gpu.csv")
    ledger = pd.read_csv(tmp_path / "s2" / "progress.csv")
    assert len(ledger) == len(statuses) and ledger["complete"].tolist()[-1]
    assert chunked["device_seconds"].eq(ledger["device_seconds"].sum()).all()
    pd.testing.assert_frame_equal(one.drop(columns=DROP), chunked.drop(columns=DROP),
                                  check_exact=True)
    assert {"device", "torch", "triton"} <= set(chunked.columns)
    # a window on a finished state trains nothing
    assert window(spec_file, tmp_path / "s2", tmp_path / "again", 1e6) == 0
    assert pd.read_csv(tmp_path / "again" / "progress.csv").empty


def test_a_window_stopped_by_sigterm_keeps_its_progress(one_run, tmp_path, monkeypatch):
    """SIGTERM (the backstop timeout) in the middle of a sweep: the window still packs the
    folder (its checkpoints are whole) and says so; the next window finishes the sweep with
    the table of one run."""
    spec_file, one = one_run
    monkeypatch.setattr(training, "clock", StepClock())
    real = sweeps.run_sweep

    def killed(*args, **kwargs):
        real(*args, **{**kwargs, "time_limit": 6})
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not stop the window")

    monkeypatch.setattr(sweeps, "run_sweep", killed)
    assert window(spec_file, tmp_path / "s", tmp_path / "w0", 1e6) == 3
    row = pd.read_csv(tmp_path / "w0" / "progress.csv").iloc[0]
    assert not row["complete"] and row["pending"].startswith("interrupted")
    assert (tmp_path / "w0" / "tiny_gpu.tar.gz").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    unpack(tmp_path / "w0", tmp_path / "s", tmp_path / "r")
    monkeypatch.setattr(sweeps, "run_sweep", real)
    assert window(spec_file, tmp_path / "s", tmp_path / "w1", 1e6) == 0
    unpack(tmp_path / "w1", tmp_path / "s", tmp_path / "r")
    table = pd.read_csv(tmp_path / "r" / "tiny_gpu.csv")
    pd.testing.assert_frame_equal(one.drop(columns=DROP), table.drop(columns=DROP),
                                  check_exact=True)


def test_profile_order_puts_the_lorenz_sweep_first():
    specs = device_runner.profile_specs("quick")
    assert specs[0].dataset == "lorenz" and specs[0].name.startswith("tau")
    assert len(specs) >= 2 and specs[1].name != specs[0].name
    assert all(s.split == 1 for s in specs)


def test_the_runner_needs_only_what_the_gpu_image_has(tmp_path):
    """The GPU machine's image has torch, numpy, scipy, pandas, matplotlib, seaborn and tqdm
    but not pooch, submitit, papermill, jupytext or nbformat (the device tool's package list):
    the runner, the paper profile's specs and its data sets load without them, and an
    authors' file that is not here is a clear DataUnavailable, not an ImportError."""
    missing = ["pooch", "submitit", "papermill", "jupytext", "nbformat", "nbval"]
    code = (f"import sys\nfor m in {missing!r}: sys.modules[m] = None\n"
            "from chaosrnn_utils import device_runner, data, fetch, pipeline\n"
            "from chaosrnn_utils import experiments as ex\n"
            "specs = [ex.tau_sweep_spec(d, 'paper') for d in ex.PAPER_TAUS]\n"
            "x = data.paper_dataset('mackey_glass', 3000)\n"
            "assert x.shape[0] == 3000, x.shape\n"
            "try:\n"
            "    fetch.fetch('tde_eegf.npy', dirs=[])\n"
            "except fetch.DataUnavailable as err:\n"
            "    assert 'pooch is not installed' in str(err), err\n"
            "else:\n"
            "    raise AssertionError('no error')\n"
            "assert pipeline.main(['gpu-run', '--help']) == 0\n")
    env = dict(os.environ, PYTHONPATH=str(paths.ROOT), CHAOSRNN_CACHE_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]


LONG = dict(SPEC, name="tiny_window", settings=dict(SPEC["settings"], epochs=100000),
            checkpoint_every=5)


def passing_check(device, report):
    report.append("static vs eager on cpu, plrnn: 0 (tol 6e-08)")
    return []


def test_one_window_keeps_its_deadline_and_file_count(tmp_path):
    """``gpu_window`` on a spec far longer than the budget: self-check, benchmark, training
    stopped by the deadline, packing; at most 8 files of at most 16 MiB, and the whole window
    within its budget (real seconds)."""
    spec = sweeps.SweepSpec.from_dict(LONG)
    budget, margin = 20.0, 4.0
    t0 = training.time.perf_counter()
    status = device_runner.gpu_window([spec], tmp_path / "state", tmp_path / "out",
                                      budget_s=budget, device="cpu", bench_s=5.0,
                                      margin_s=margin, check=passing_check)
    took = training.time.perf_counter() - t0
    assert status == 3  # pending: another window continues
    assert took <= budget, took
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["bench.csv", "log.txt", "progress.csv", "self_check.txt",
                     "tiny_window.tar.gz"], files
    assert len(files) <= device_runner.MAX_FILES
    assert all((tmp_path / "out" / f).stat().st_size <= device_runner.MAX_BYTES for f in files)
    bench = pd.read_csv(tmp_path / "out" / "bench.csv")
    assert (bench["s_per_update"] > 0).all() and len(bench) == 3  # 2 jobs, then both at once
    assert "self-check passed" in (tmp_path / "out" / "self_check.txt").read_text()
    # the state it brought back resumes: some epochs done, fewer updates pending
    pending = device_runner.pending_updates(spec, tmp_path / "out")
    assert min(pending.values()) < 100000 * 2, pending


def test_a_failed_self_check_trains_nothing(tmp_path):
    def failing(device, report):
        report.append("static vs eager on cuda, rnn: 2.88e-07 (tol 5.96e-08)")
        return ["static vs eager on cuda, rnn: 2.88e-07 > 5.96e-08"]

    spec = sweeps.SweepSpec.from_dict(LONG)
    status = device_runner.gpu_window([spec], tmp_path / "state", tmp_path / "out",
                                      budget_s=100.0, device="cpu", check=failing)
    assert status == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["self_check.txt"]
    text = (tmp_path / "out" / "self_check.txt").read_text()
    assert "self-check FAILED" in text and "no training" in text and "2.88e-07 >" in text

    def raising(device, report):
        raise RuntimeError("CUDA error: no kernel image is available")

    assert device_runner.gpu_window([spec], tmp_path / "s", tmp_path / "o2", budget_s=100.0,
                                    device="cpu", check=raising) == 1
    assert sorted(p.name for p in (tmp_path / "o2").iterdir()) == ["self_check.txt"]
    assert "raised RuntimeError: CUDA error" in (tmp_path / "o2" / "self_check.txt").read_text()


def test_benchmark_projects_from_the_rate_at_each_sweeps_own_size(tmp_path):
    """Pending updates read from the state's checkpoint; the projection is the rate measured
    at that sweep's own size × its pending updates; a size not measured in the budget stays
    NaN (no zero rows); a real timing on a tiny ensemble is positive."""
    spec = sweeps.SweepSpec.from_dict(SPEC)
    folder = tmp_path / "tiny_gpu"
    x_train, _ = sweeps.load_sweep_data(spec)
    (folder / "checkpoints").mkdir(parents=True)
    done = training.train(x_train, spec.member_configs(), spec.train_settings("plrnn"),
                          device="cpu", progress=False, time_limit=1e-9,
                          checkpoint=folder / "checkpoints" / "plrnn.pt")
    assert done.epoch == 1
    device_runner.pack(folder, tmp_path / "tiny_gpu.tar.gz")
    assert device_runner.pending_updates(spec, tmp_path) == {"plrnn": 5 * 2, "lstm": 6 * 2}
    other = sweeps.SweepSpec.from_dict(dict(SPEC, name="other", grid={"tau": [5, 9, 13],
                                                                      "seed": [0]}))
    calls = []

    def timer(arch, n, seq_len, **kw):
        calls.append((arch, n, seq_len))
        return {"plrnn": 0.5, "lstm": 2.0}[arch] * n

    def together(archs, n, seq_len, **kw):
        calls.append((tuple(archs), n, seq_len))
        return 3.0, 5.0

    bench = device_runner.benchmark([spec, other], tmp_path, device="cpu", budget_s=60.0,
                                    timer=timer, together=together)
    assert calls == [("plrnn", 2, 20), ("lstm", 2, 20), ("plrnn", 3, 20), ("lstm", 3, 20),
                     (("plrnn", "lstm"), 2, 20)]
    assert bench["s_per_update"].tolist() == [1.0, 4.0, 1.5, 6.0, 3.0]
    assert bench["projected_s"].tolist()[:4] == [10.0, 48.0, 1.5 * 12, 6.0 * 12]
    assert bench["arch"].iloc[-1] == "plrnn+lstm" and np.isnan(bench["projected_s"].iloc[-1])
    assert "one at a time 5 s (ratio 0.600)" in bench["note"].iloc[-1]
    none = device_runner.benchmark([spec], tmp_path, device="cpu", budget_s=0.0, timer=timer)
    assert none["s_per_update"].isna().all() and none["projected_s"].isna().all()

    def broken(arch, n, seq_len, **kw):
        if arch == "lstm":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return 1.0

    some = device_runner.benchmark([spec], tmp_path, device="cpu", budget_s=60.0,
                                   timer=broken, together=together)
    assert some["s_per_update"].tolist()[0] == 1.0 and np.isnan(some["s_per_update"][1])
    assert some["note"][1].startswith("RuntimeError: CUDA error")
    one, alone = device_runner.concurrent_seconds(["plrnn", "rnn"], 2, 12, device="cpu",
                                                  batch=2, latent=4, reps=2)
    assert 0 < one < 60 and 0 < alone < 60
    sec = device_runner.update_seconds("lstm", 2, 12, device="cpu", batch=2, latent=4,
                                       reps=2)
    assert 0 < sec < 60


def test_the_window_script_never_skips_the_self_check():
    """benchmarks/gpu_window.sh trains only through commands that run the self-check first
    (gpu-run without ``--no-self-check``, gpu-window)."""
    script = (paths.ROOT / "benchmarks" / "gpu_window.sh").read_text()
    assert "--no-self-check" not in script
    assert "gpu-window --budget-s" in script and "gpu-run --budget-s" in script


def test_a_sweep_that_fails_is_packed_and_logged(tmp_path, monkeypatch):
    """An error inside a sweep (here a CUDA error from its second checkpoint on) loses
    nothing already on disk: the folder is packed, the error logged, and the window stops
    (a CUDA error leaves the device unusable); status 3."""
    spec = sweeps.SweepSpec.from_dict(SPEC)

    def broken(spec, folder, **kw):
        (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
        (folder / "checkpoints" / "plrnn.pt").write_bytes(b"whole")
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(sweeps, "run_sweep", broken)
    other = sweeps.SweepSpec.from_dict(dict(SPEC, name="other"))
    status = device_runner.gpu_run([spec, other], tmp_path / "state", tmp_path / "out",
                                   budget_s=1e6, device="cpu", check=False)
    assert status == 3
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["log.txt", "progress.csv", "tiny_gpu.tar.gz"], files
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "RuntimeError: CUDA error" in log
    progress = pd.read_csv(tmp_path / "out" / "progress.csv")
    assert progress["pending"].tolist() == ["failed (RuntimeError: CUDA error: an illegal "
                                            "memory access was encountered)"]


def test_committed_paper_state_is_claimed_by_todays_paper_spec(tmp_path):
    """The committed GPU state (``data/results/paper/state``) continues only if its
    ``spec.json`` is today's paper spec as the runner resolves it: the same fields and the
    same ``spec_sha256`` (its data hash is the training machine's, checked where it trains).
    A change of the paper spec that would orphan the state fails here, not in a GPU window."""
    import tarfile

    archive = paths.DATA_DIR / "results" / "paper" / "state" / "tau_sweep_lorenz.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    recorded = json.loads((tmp_path / "spec.json").read_text())
    spec = device_runner.profile_specs("paper")[0]
    inputs = recorded.pop(sweeps.INPUTS_KEY)
    assert recorded == spec.to_dict()
    mine = sweeps.sweep_inputs(spec, np.zeros((2, 3)), np.zeros((2, 3)))
    assert inputs["spec_sha256"] == mine["spec_sha256"]
    assert sweeps._claim_out_dir(spec, tmp_path, {**mine, "data_sha256":
                                                  inputs["data_sha256"]}) is None
    members = spec.member_configs()
    state = training.load_state(tmp_path / "checkpoints" / "rnn.pt", members,
                                spec.train_settings("rnn"), 3, device="cpu")
    assert state.epoch == 2223 and bool(state.alive.all())
