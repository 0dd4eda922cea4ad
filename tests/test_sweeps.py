"""Sweeps: the results table, exact continuation after SIGKILL and after a time limit, spec
validation before training, and the command line."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from chaosrnn_utils import data, paths, pipeline, sweeps, training
from chaosrnn_utils.sweeps import SweepSpec, run_sweep

EPOCHS = 20
SPEC = dict(
    name="tiny",
    dataset="lorenz",
    n_data=3000,
    settings=dict(latent_dim=6, seq_len=30, batch_size=4, batches_per_epoch=2, epochs=EPOCHS,
                  lr=1e-2, dtype="float64"),
    architectures=["plrnn", "lstm"],
    grid={"tau": [5, 10], "seed": [0, 1]},
    n_generate=2000,
    checkpoint_every=1,
)
METRICS = ["D_stsp", "D_H", "PE1", "PE5", "PE25"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """Generated data goes to a temporary cache, not into the repository."""
    d = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paths, "CACHE_DIR", d)
        yield d


@pytest.fixture(autouse=True)
def _cache(cache_dir, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", cache_dir)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir):
    """The tiny sweep run without interruption: (out_dir, results.csv as read back)."""
    out = tmp_path_factory.mktemp("reference")
    df = run_sweep(SweepSpec(**SPEC), out, device="cpu", progress=False)
    assert df.attrs["complete"]
    return out, df


def same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal up to wall_time, and git_commit (others commit to this repository concurrently, so
    HEAD may move between two runs; the column is checked in the first test)."""
    drop = ["wall_time", "git_commit"]
    pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop), check_exact=True)


def read(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv")


def test_tiny_sweep_writes_one_row_per_member_and_architecture(reference):
    out, df = reference
    table = read(out)
    assert len(table) == 8
    expected = {"sweep", "dataset", "architecture", "member", "seed", "mode", "tau",
                "final_loss", "diverged", "diverged_epoch", "epochs_done", "wall_time",
                "git_commit", "settings", "D_stsp_method", "frac_in_box", *METRICS,
                "version", "spec_sha256", "data_sha256"}
    assert expected <= set(table.columns), expected - set(table.columns)
    assert list(table["architecture"]) == ["plrnn"] * 4 + ["lstm"] * 4
    assert list(table["tau"]) == [5, 5, 10, 10] * 2 and list(table["seed"]) == [0, 1] * 4
    assert np.isfinite(table[METRICS + ["final_loss"]].to_numpy()).all()
    assert (table["epochs_done"] == EPOCHS).all() and not table["diverged"].any()
    assert json.loads(table["settings"][5])["model"] == "lstm"
    assert table["sweep"].eq("tiny").all()
    assert table["git_commit"].str.fullmatch("[0-9a-f]{40}|unknown").all()
    assert table["git_commit"].nunique() == 1
    same_table(df, table)
    assert sorted(p.name for p in (out / "parts").iterdir()) == [
        "lstm.csv", "lstm.models.pt", "plrnn.csv", "plrnn.models.pt"]  # + final parameters
    assert (out / "checkpoints" / "plrnn.pt").exists() and (out / "spec.json").exists()
    assert SweepSpec.from_json(out / "spec.json") == SweepSpec(**SPEC)
    # a rerun of a finished sweep trains nothing and returns the same table
    again = run_sweep(SweepSpec(**SPEC), out, device="cpu", progress=False)
    assert again.attrs["complete"]
    pd.testing.assert_frame_equal(again, table, check_exact=True)
    # another spec cannot reuse the folder (its checkpoints belong to this one)
    with pytest.raises(ValueError, match="holds another sweep"):
        run_sweep(SweepSpec(**{**SPEC, "name": "other"}), out, progress=False)


def test_diverged_member_is_scored_nan(tmp_path, monkeypatch, capsys):
    real_train, real_load = training.train, training.load_state

    def diverge(state: training.TrainState) -> training.TrainState:
        with torch.no_grad():
            for p in state.model.parameters():
                p[1] = float("nan")
        state.alive[1], state.diverged_epoch[1] = False, 1
        state.history[-1][1] = np.nan
        return state

    monkeypatch.setattr(training, "train", lambda *a, **k: diverge(real_train(*a, **k)))
    # the snapshot of epoch 1 (learning curve) holds the diverged member too
    monkeypatch.setattr(training, "load_state", lambda *a, **k: diverge(real_load(*a, **k)))
    spec = SweepSpec(**{**SPEC, "architectures": ["plrnn"], "grid": {"seed": [0, 1]},
                        "settings": {**SPEC["settings"], "epochs": 2}, "eval_epochs": [1]})
    df = run_sweep(spec, tmp_path, progress=True)
    # one member diverged, counted once although it has a row per evaluation epoch
    assert "2 members, 2 epochs, 1 diverged" in capsys.readouterr().out
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert curves.groupby("eval_epoch")["diverged"].sum().to_dict() == {1: 1, 2: 1}
    assert df.attrs["complete"] and list(df["diverged"]) == [False, True]
    assert df["diverged_epoch"].iloc[1] == 1 and np.isnan(df["diverged_epoch"].iloc[0])
    assert np.isfinite(df.loc[0, METRICS + ["final_loss"]].to_numpy(float)).all()
    assert np.isnan(df.loc[1, METRICS + ["final_loss"]].to_numpy(float)).all()


def test_resume_after_sigkill_gives_the_uninterrupted_table(reference, tmp_path, cache_dir,
                                                            monkeypatch):
    spec_path = SweepSpec(**SPEC).to_json(tmp_path / "spec.json")
    out = tmp_path / "out"
    env = dict(os.environ, CHAOSRNN_CACHE_DIR=str(cache_dir), OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    ckpt = out / "checkpoints" / "plrnn.pt"
    with open(tmp_path / "log.txt", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chaosrnn_utils", "sweep", str(spec_path), "--out", str(out),
             "--device", "cpu"], env=env, cwd=paths.ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert proc.poll() is None, (tmp_path / "log.txt").read_text()
            proc.kill()  # SIGKILL
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -9
    assert not (out / "results.csv").exists()
    epoch = torch.load(ckpt, weights_only=False)["epoch"]
    assert 1 <= epoch < EPOCHS
    loaded = []
    real_load = training.load_checkpoint

    def spy(state, path):
        loaded.append((Path(path).name, real_load(state, path).epoch))
        return state

    monkeypatch.setattr(training, "load_checkpoint", spy)
    df = run_sweep(SweepSpec.from_json(spec_path), out, device="cpu", progress=False)
    assert df.attrs["complete"]
    assert loaded == [("plrnn.pt", epoch)]  # resumed, not retrained from scratch
    same_table(read(out), read(reference[0]))


class StepClock:
    """A clock that advances by one second at every reading: a time limit then stops after a
    number of epochs fixed by the code path, not by the machine's speed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_time_limit_returns_incomplete_then_continues(reference, tmp_path, monkeypatch):
    monkeypatch.setattr(training, "clock", StepClock())
    out = tmp_path / "out"
    calls, epochs = [], []
    while True:
        df = run_sweep(SweepSpec(**SPEC), out, device="cpu", time_limit=3.5, progress=False)
        calls.append(df.attrs["complete"])
        done = [int(torch.load(c, weights_only=False)["epoch"])
                for c in sorted((out / "checkpoints").glob("*.pt"))]
        epochs.append(sum(done))
        if df.attrs["complete"] or len(calls) > 50:
            break
        assert not (out / "results.csv").exists()
    # every call trains, none trains everything: 40 epochs (2 jobs × 20) in several calls
    assert calls[0] is False and calls[-1] is True and len(calls) >= 3
    assert all(b > a for a, b in zip(epochs, epochs[1:], strict=False)) and epochs[-1] == 40
    same_table(read(out), read(reference[0]))
    same_table(df, read(reference[0]))


@pytest.fixture
def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(training, "train", fail)


@pytest.mark.parametrize("change, message", [
    (dict(grid={"tua": [5]}), "unknown MemberConfig field in grid 'tua'; did you mean 'tau'"),
    (dict(members=[{"mode": "bptt", "clipnorm": 1.0}]), "did you mean 'clip_norm'"),
    (dict(grid={"tau": [5, 31]}), r"tau must be an integer in 1\.\.30"),
    (dict(grid={"tau": []}), "non-empty list"),
    (dict(grid={}), "empty grid"),
    (dict(dataset="lorentz"), "unknown dataset 'lorentz'; did you mean 'lorenz'"),
    (dict(dataset="missing.npy"), "does not exist"),
    (dict(architectures=["gru"]), "unknown architecture 'gru'"),
    (dict(settings={"epoch": 3}), "did you mean 'epochs'"),
    (dict(settings={"profile": "fast"}), "unknown settings profile 'fast'"),
    (dict(settings={"model": "lstm"}), "architectures"),
    (dict(grid={"seed": [0, 0]}), "appears twice"),
    (dict(n_generate=10), "n_generate"),
])
def test_bad_spec_raises_before_training(change, message, tmp_path, no_training):
    spec = SweepSpec(**{**SPEC, **change})
    with pytest.raises(ValueError, match=message):
        run_sweep(spec, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_data_dependent_errors_raise_before_training(tmp_path, no_training):
    x = np.random.default_rng(0).standard_normal((200, 3))
    np.save(tmp_path / "x.npy", x)
    spec = SweepSpec(**{**SPEC, "dataset": str(tmp_path / "x.npy"), "n_generate": 100})
    with pytest.raises(ValueError, match="seq_len"):  # 160 training steps < seq_len 300
        run_sweep(replace_settings(spec, seq_len=300), tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="latent_dim 2 < data dimension 3"):
        run_sweep(replace_settings(spec, latent_dim=2), tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="test set of 40 steps"):
        run_sweep(spec, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def replace_settings(spec: SweepSpec, **kw) -> SweepSpec:
    return SweepSpec(**{**spec.to_dict(), "settings": {**spec.settings, **kw}})


def test_spec_json_roundtrip_and_unknown_key(tmp_path):
    spec = SweepSpec(**{**SPEC, "members": [{"mode": "bptt", "clip_norm": 1.0}]})
    assert SweepSpec.from_json(spec.to_json(tmp_path / "s.json")) == spec
    members = spec.member_configs()
    assert len(members) == 5 and members[-1] == training.MemberConfig(mode="bptt",
                                                                       clip_norm=1.0)
    assert spec.train_settings("lstm").model == "lstm"
    assert SweepSpec("a", "lorenz", settings="quick").train_settings("rnn") \
        == dataclasses.replace(training.SETTINGS["quick"], model="rnn")
    (tmp_path / "bad.json").write_text(json.dumps({**SPEC, "n_dta": 5}))
    with pytest.raises(ValueError, match="unknown sweep spec key 'n_dta'"):
        SweepSpec.from_json(tmp_path / "bad.json")


@pytest.mark.parametrize("change, message", [
    (dict(settings={"lr": "1e-3"}), r"settings field 'lr' must be float, got '1e-3' \(str\)"),
    (dict(settings={"profile": "quick", "epochs": 2.5}), "settings field 'epochs' must be int"),
    (dict(grid={"tau": ["5"]}), "grid value of 'tau' must be int or None"),
    (dict(members=[{"alpha": True}]), "members field 'alpha' must be float"),
    (dict(test_fraction="0.2"), "spec key 'test_fraction' must be float"),
])
def test_a_spec_value_of_the_wrong_type_is_named(change, message):
    """A spec read from JSON holds whatever types it was written with."""
    with pytest.raises(ValueError, match=message):
        sweeps.check_spec_types(SweepSpec(**{**SPEC, **change}))
    assert sweeps.check_spec_types(SweepSpec(**SPEC)) == SweepSpec(**SPEC)


def test_command_line_builds_the_spec_from_flags(tmp_path, monkeypatch):
    seen = {}

    def fake_run(spec, out, *, device=None, time_limit=None, workers=1, progress=True):
        seen.update(spec=spec, out=out, time_limit=time_limit, workers=workers)
        df = pd.DataFrame()
        df.attrs.update(complete=False, pending=["lstm"])
        return df

    monkeypatch.setattr(sweeps, "run_sweep", fake_run)
    rc = pipeline.main(["sweep", "--out", str(tmp_path / "a"), "--dataset", "lorenz", "--arch",
                        "lstm", "plrnn", "--tau", "5", "30", "--seeds", "0", "1", "--profile",
                        "quick", "--epochs", "5", "--time-limit", "60", "--split", "2",
                        "--workers", "2", "--n-data", "3000"])
    assert rc == sweeps.EXIT_INCOMPLETE
    spec = seen["spec"]
    assert spec.split == 2 and seen["workers"] == 2 and spec.n_data == 3000
    assert spec.architectures == ["lstm", "plrnn"] and spec.grid == {"tau": [5, 30],
                                                                     "seed": [0, 1]}
    assert spec.train_settings("lstm").epochs == 5 and seen["time_limit"] == 60.0
    spec_file = SweepSpec(**SPEC).to_json(tmp_path / "s.json")
    assert pipeline.main(["sweep", str(spec_file), "--out", str(tmp_path / "b")]) == 3
    assert seen["spec"] == SweepSpec(**SPEC)
    # a spec file and flags together, or a bad spec: an error message, status 2
    assert pipeline.main(["sweep", str(spec_file), "--out", str(tmp_path), "--epochs", "3"]) == 2
    assert pipeline.main(["sweep", "--out", str(tmp_path), "--dataset", "nope"]) == 2


def test_split_sweep_with_two_workers_gives_the_same_table(reference, tmp_path, capfd):
    """Members cut into sub-ensembles, run by two worker processes: the same numbers as one
    ensemble per architecture in one process (a member does not depend on its ensemble); each
    worker shows its jobs' epochs as they train."""
    spec = SweepSpec(**{**SPEC, "split": 2})
    df = run_sweep(spec, tmp_path / "out", device="cpu", workers=2, progress=True)
    assert df.attrs["complete"]
    err = capfd.readouterr().err
    for job in ("lstm-0", "lstm-1", "plrnn-0", "plrnn-1"):
        epochs = spec.train_settings(job.split("-")[0]).epochs
        assert re.search(rf"{spec.name} {job}: .*\d+/{epochs}\b", err), (job, err[-2000:])
    parts = sorted(p.name for p in (tmp_path / "out" / "parts").glob("*.csv"))
    assert parts == ["lstm-0.csv", "lstm-1.csv", "plrnn-0.csv", "plrnn-1.csv"]
    ref = read(reference[0])
    drop = ["wall_time", "git_commit", "spec_sha256"]  # the spec differs (split)
    pd.testing.assert_frame_equal(df.drop(columns=drop), ref.drop(columns=drop), rtol=1e-9)
    with pytest.raises(ValueError, match="split 9 exceeds the 4 members"):
        run_sweep(SweepSpec(**{**SPEC, "split": 9}), tmp_path / "x", progress=False)
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        run_sweep(spec, tmp_path / "out", workers=0, progress=False)


# ---------------------------------------------------------------------------- robustness


def test_resume_refuses_changed_inputs(reference, tmp_path, monkeypatch):
    """A stopped sweep resumed on replaced data, another spec or another package version is
    refused with one line naming what changed; the inputs are in spec.json and every row."""
    import chaosrnn_utils

    lorenz = tmp_path / "x.npy"
    np.save(lorenz, data.paper_dataset("lorenz", 3000))
    spec = SweepSpec(**{**SPEC, "dataset": str(lorenz), "architectures": ["plrnn"],
                        "grid": {"seed": [0]}})
    monkeypatch.setattr(training, "clock", StepClock())
    first = run_sweep(spec, tmp_path / "out", device="cpu", time_limit=1.5, progress=False)
    assert not first.attrs["complete"]  # stopped like a killed run: a checkpoint, no part
    assert (tmp_path / "out" / "checkpoints" / "plrnn.pt").exists()
    claimed = (tmp_path / "out" / "spec.json").read_bytes()

    def refused(spec: SweepSpec, message: str) -> None:
        with pytest.raises(ValueError, match=message) as err:
            run_sweep(spec, tmp_path / "out", device="cpu", progress=False)
        assert "\n" not in str(err.value) and "--out" in str(err.value)
        assert (tmp_path / "out" / "spec.json").read_bytes() == claimed

    x = np.load(lorenz)
    for other in (x[::-1], x + np.eye(1, x.size, 1234).reshape(x.shape) * 1e-12):
        np.save(lorenz, other)  # same path, other data (even one entry changed by 1e-12)
        refused(spec, f"data file '{lorenz}' changed")
    np.save(lorenz, x)
    refused(SweepSpec(**{**spec.to_dict(), "n_generate": 1000}),
            "holds another sweep: spec field 'n_generate' is 2000 there, 1000 now")
    monkeypatch.setattr(chaosrnn_utils, "__version__", "9.9.9")
    refused(spec, "package version 0.1.0 there, 9.9.9 now")
    # the inputs recorded: in spec.json, and in every row
    inputs = json.loads((reference[0] / "spec.json").read_text())["inputs"]
    assert set(inputs) == {"version", "spec_sha256", "data_sha256"}
    table = read(reference[0])
    for key, value in inputs.items():
        assert table[key].astype(str).eq(value).all(), key


def _damage(part: Path, how: str) -> None:
    """Cut a member row, NaN one value of a healthy member, drop a metric column (with valid
    checksums), or write garbage bytes."""
    if how == "garbage":
        part.write_bytes(bytes(range(256)) * 8)
        return
    header, *rows = csv.reader(io.StringIO(part.read_text()))
    if how == "missing row":
        del rows[1]
    elif how == "older evaluation":  # a part written before D_H_authors existed
        k = header.index("D_H_authors")
        header = header[:k] + header[k + 1:-1]
        rows = [r[:k] + r[k + 1:-1] for r in rows]
        header.append(sweeps.ROW_CHECK)
        rows = [[*r, sweeps._row_digest(header[:-1], r)] for r in rows]
    else:
        assert rows[2][header.index("diverged")] == "False"
        rows[2][header.index("D_H")] = "nan"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    part.write_text(buf.getvalue())


@pytest.mark.parametrize("how", ["missing row", "nan value", "older evaluation", "garbage"])
def test_damaged_part_is_kept_aside_and_rebuilt(reference, tmp_path, capsys, how):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    part = out / "parts" / "plrnn.csv"
    _damage(part, how)
    damaged = part.read_bytes()
    df = run_sweep(SweepSpec(**SPEC), out, device="cpu", progress=False)
    assert df.attrs["complete"]
    same_table(read(out), read(reference[0]))
    same_table(df, read(reference[0]))
    assert (out / "parts" / "plrnn.csv.bad-1").read_bytes() == damaged
    lines = capsys.readouterr().err.splitlines()
    state = "is out of date" if how == "older evaluation" else "is damaged"
    assert len(lines) == 1 and f"{part} {state}" in lines[0], lines
    assert "plrnn.csv.bad-1" in lines[0] and "from its checkpoint" in lines[0]


def test_truncated_checkpoint_is_kept_aside_and_the_job_retrained(reference, tmp_path,
                                                                  capsys):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    (out / "parts" / "plrnn.csv").unlink()
    ckpt = out / "checkpoints" / "plrnn.pt"
    cut = ckpt.read_bytes()[: ckpt.stat().st_size // 2]
    ckpt.write_bytes(cut)
    df = run_sweep(SweepSpec(**SPEC), out, device="cpu", progress=False)
    assert df.attrs["complete"]
    same_table(read(out), read(reference[0]))
    assert (out / "checkpoints" / "plrnn.pt.bad-1").read_bytes() == cut
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f"checkpoint {ckpt} is unreadable" in lines[0], lines
    assert "kept as plrnn.pt.bad-1, training the job from scratch" in lines[0]
    # read directly (e.g. by experiments.trained_members): an error naming the file
    (tmp_path / "garbage.pt").write_bytes(b"\x80\x04garbage")
    state = training.new_state(SweepSpec(**SPEC).member_configs(),
                               SweepSpec(**SPEC).train_settings("plrnn"), 3, device="cpu")
    with pytest.raises(ValueError, match=f"checkpoint {tmp_path / 'garbage.pt'} is unreadable"):
        training.load_checkpoint(state, tmp_path / "garbage.pt")


@pytest.mark.parametrize("garbage", [b"\x93NUMPY garbage", None], ids=["garbage", "truncated"])
def test_garbage_cache_file_is_regenerated(tmp_path, monkeypatch, capsys, garbage):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path)
    x = data.generate("lorenz_paper", 400, transient=1.0)
    [path] = tmp_path.glob("lorenz_paper-*.npy")
    path.write_bytes(path.read_bytes()[:200] if garbage is None else garbage)
    np.testing.assert_array_equal(data.generate("lorenz_paper", 400, transient=1.0), x)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"data cache {path} is unreadable"), lines
    assert lines[0].endswith("regenerating it")
    np.testing.assert_array_equal(np.load(path), x)


def _children(pid: int) -> dict[int, str]:
    """Live child processes of ``pid`` (Linux /proc): child pid -> start time."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (stat := _stat(int(d.name))) and stat[1] == pid:
            out[int(d.name)] = stat[2]
    return out


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) of a process, None once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in "ZX" else (fields[0], int(fields[1]), fields[19])


def _start_sweep(tmp_path: Path, cache_dir: Path, spec: SweepSpec, *extra: str
                 ) -> subprocess.Popen:
    """``python -m chaosrnn_utils sweep`` in the background, returned once a checkpoint is
    written (polled, whatever the machine's speed)."""
    spec_path = spec.to_json(tmp_path / "spec.json")
    out = tmp_path / "out"
    env = dict(os.environ, CHAOSRNN_CACHE_DIR=str(cache_dir), OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONPATH=str(paths.ROOT))
    with open(tmp_path / "log.txt", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "chaosrnn_utils", "sweep",
                                 str(spec_path), "--out", str(out), "--device", "cpu", *extra],
                                env=env, cwd=paths.ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while (not list((out / "checkpoints").glob("*.pt")) and proc.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.02)
    if proc.poll() is not None or not list((out / "checkpoints").glob("*.pt")):
        proc.kill()
        proc.wait()
        raise AssertionError((tmp_path / "log.txt").read_text())
    return proc


ENDLESS = dict(SPEC, architectures=["plrnn"], settings={**SPEC["settings"], "epochs": 10**7})


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_die_with_their_parent(tmp_path, cache_dir):
    proc = _start_sweep(tmp_path, cache_dir, SweepSpec(**{**ENDLESS, "split": 2}),
                        "--workers", "2")
    children: dict[int, str] = {}
    try:
        children = _children(proc.pid)  # the two workers (and multiprocessing's tracker)
        assert len(children) >= 2, children
        proc.kill()  # SIGKILL: no clean-up in the parent
        proc.wait()
        deadline = time.monotonic() + 30
        alive = children
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = {p: t for p, t in children.items() if (s := _stat(p)) and s[2] == t}
        assert not alive, f"worker processes {sorted(alive)} outlived their parent"
    finally:
        proc.kill()
        proc.wait()
        for pid, start in children.items():  # never leave an orphan training on
            if (s := _stat(pid)) and s[2] == start:
                os.kill(pid, signal.SIGKILL)


def test_second_sweep_on_a_folder_is_refused(tmp_path, cache_dir, no_training):
    spec = SweepSpec(**{**ENDLESS, "grid": {"seed": [0]}})
    proc = _start_sweep(tmp_path, cache_dir, spec)
    try:
        with pytest.raises(ValueError, match=f"in use by another sweep \\(pid {proc.pid} on "
                           ) as err:
            run_sweep(spec, tmp_path / "out", device="cpu", progress=False)
        assert "\n" not in str(err.value)
    finally:
        proc.kill()
        proc.wait()
    # once the holder is gone, the folder is free again (and the run goes on to train)
    with pytest.raises(AssertionError, match="training started"):
        run_sweep(spec, tmp_path / "out", device="cpu", progress=False)


def test_written_files_follow_the_umask(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    spec = SweepSpec(**{**SPEC, "dataset": str(tmp_path / "x.npy"), "n_data": 600,
                        "architectures": ["plrnn"], "grid": {"seed": [0]},
                        "settings": {**SPEC["settings"], "epochs": 2}, "n_generate": 100})
    old = os.umask(0o022)
    try:
        np.save(tmp_path / "x.npy", data.generate("lorenz_paper", 600, transient=1.0))
        assert run_sweep(spec, tmp_path / "out", device="cpu", progress=False).attrs["complete"]
        written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "x.npy"]
        names = {p.relative_to(tmp_path).as_posix() for p in written}
        assert {p.relative_to(tmp_path).as_posix(): oct(p.stat().st_mode & 0o777)
                for p in written} == dict.fromkeys(names, "0o644")
        assert {"out/spec.json", "out/results.csv", "out/parts/plrnn.csv", "out/.lock",
                "out/checkpoints/plrnn.pt"} <= names and any(n.startswith("cache/") for n in names)
        for mask, mode in ((0o077, 0o600), (0o002, 0o664)):
            os.umask(mask)
            with paths.atomic_open(tmp_path / f"f{mask}") as fh:
                fh.write(b"x")
            assert (tmp_path / f"f{mask}").stat().st_mode & 0o777 == mode
    finally:
        os.umask(old)


def test_static_sweep_gives_the_same_table(reference, tmp_path, monkeypatch):
    """``static=True`` reaches ``train(static=True)`` (the graph path on a GPU) through the
    jobs; on the CPU its numbers are the default path's: the same table."""
    seen, train = [], training.train

    def spy(*args, **kwargs):
        seen.append(kwargs["static"])
        return train(*args, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    df = run_sweep(SweepSpec(**SPEC), tmp_path / "static", device="cpu", progress=False,
                   static=True)
    assert seen == [True, True]
    same_table(reference[1], df)


def test_learning_curve_rows_equal_models_trained_to_those_epochs(reference, tmp_path):
    """eval_epochs: one row per member and evaluation epoch; the rows of epoch k are those of
    the same sweep trained for k epochs only (an independent run, no snapshot involved), and
    the last epoch's rows are the sweep's plain table."""
    spec = SweepSpec(**{**SPEC, "eval_epochs": [5, 12]})
    df = run_sweep(spec, tmp_path / "curves", device="cpu", progress=False)
    same_table(df.drop(columns=["eval_epoch", "spec_sha256"]),
               read(reference[0]).drop(columns="spec_sha256"))
    curves = pd.read_csv(tmp_path / "curves" / "curves.csv")
    n = len(spec.member_configs())
    assert len(curves) == 3 * n * len(spec.architectures)
    assert sorted(set(curves["eval_epoch"])) == [5, 12, EPOCHS]
    for k in (5, 12):
        short = SweepSpec(**{**SPEC, "settings": {**SPEC["settings"], "epochs": k}})
        alone = run_sweep(short, tmp_path / f"e{k}", device="cpu", progress=False)
        at_k = curves[curves["eval_epoch"] == k].drop(columns="eval_epoch")
        keep = [c for c in alone.columns if c not in ("wall_time", "git_commit", "settings",
                                                      "spec_sha256")]
        pd.testing.assert_frame_equal(at_k[keep].reset_index(drop=True), alone[keep],
                                      check_exact=True)
    # a part without one epoch's rows is not finished: kept aside and redone
    part = tmp_path / "curves" / "parts" / "lstm.csv"
    lines = part.read_text().splitlines()
    part.write_text("\n".join(lines[: 1 + n]) + "\n")  # the epoch-5 rows only
    rerun = run_sweep(spec, tmp_path / "curves", device="cpu", progress=False)
    assert (tmp_path / "curves" / "parts" / "lstm.csv.bad-1").exists()
    same_table(rerun, df)


def test_eval_epochs_are_validated_and_absent_from_specs_without_them():
    with pytest.raises(ValueError, match="before the last epoch"):
        SweepSpec(**{**SPEC, "eval_epochs": [EPOCHS]}).validate()
    with pytest.raises(ValueError, match="repeat"):
        SweepSpec(**{**SPEC, "eval_epochs": [3, 3]}).validate()
    # a spec without learning curves serialises (and so hashes) as before the field existed
    d = SweepSpec(**SPEC).to_dict()
    assert "eval_epochs" not in d
    assert SweepSpec.from_dict(d) == SweepSpec(**SPEC)
    assert SweepSpec(**{**SPEC, "eval_epochs": [4]}).to_dict()["eval_epochs"] == [4]


def test_job_estimates_follow_members_epochs_architecture_and_scale():
    """A job's estimate: members × (epochs × the per-epoch cost of its architecture + its
    evaluations), × the machine's scale; the LSTM's epoch costs JOB_COST['lstm'] RNN
    epochs; the longest jobs of a profile are its LSTM jobs."""
    from chaosrnn_utils import experiments as ex
    from chaosrnn_utils import sweeps

    spec = ex.tau_sweep_spec("roessler", "quick")
    lstm, rnn = (sweeps.job_estimate(spec, a, 10) for a in ("lstm", "rnn"))
    u = sweeps.MEMBER_EPOCH_S
    assert lstm == pytest.approx(10 * (100 + sweeps.EVAL_COST["lstm"]) * u)
    assert rnn == pytest.approx(10 * (100 / sweeps.JOB_COST["lstm"] + sweeps.EVAL_COST["rnn"])
                                * u)
    assert sweeps.job_estimate(spec, "lstm", 20, 2.0) == pytest.approx(4 * lstm)
    medium = ex.tau_sweep_spec("roessler", "medium")  # three evaluation epochs
    assert sweeps.job_estimate(medium, "lstm", 10) == pytest.approx(
        10 * (300 + 3 * sweeps.EVAL_COST["lstm"]) * u)
