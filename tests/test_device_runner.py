"""The budgeted device runner on the CPU: windows cut by the budget, each resumed from the
state the previous one brought back (through the command line), give the same table as
one window with budget to spare."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

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
