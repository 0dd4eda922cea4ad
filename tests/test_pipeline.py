"""Profiles, the summary table, the papermill parameter check and the jupytext pairs."""

from __future__ import annotations

import ast
import json
import os
import re

import jupytext
import numpy as np
import pandas as pd
import papermill
import pytest

from chaosrnn_utils import cli as command_line
from chaosrnn_utils import comparison, notebook, paths, pipeline
from chaosrnn_utils.notebook import select_profile
from chaosrnn_utils.pipeline import check_parameters, notebooks

NOTEBOOKS = notebooks()


def test_select_profile():
    assert select_profile("paper", quick={"n": 1}, paper={"n": 9}) == {"n": 9}
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        select_profile("fast", quick={}, paper={})
    with pytest.raises(TypeError, match="paper"):
        select_profile("quick", quick={})
    # medium: its own settings where given, else quick's (budget-independent notebooks)
    assert select_profile("medium", quick={"n": 1}, paper={"n": 9}) == {"n": 1}
    assert select_profile("medium", quick={"n": 1}, paper={"n": 9}, medium={"n": 3}) == {"n": 3}


def test_summary_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv(notebook.SUMMARY_ENV, str(tmp_path))
    notebook.record_summary("01_x", [dict(quantity="λ", paper=0.015, reproduced=0.0111)])
    assert json.loads((tmp_path / "01_x.json").read_text())[0]["reproduced"] == 0.0111
    table = pipeline.summary_table(tmp_path)
    assert "0.0111" in table and "0.015" in table
    with pytest.raises(ValueError, match="lacks"):
        notebook.record_summary("01_x", [dict(quantity="λ")])


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_profile_and_seed_parameters(nb):
    """Every notebook takes ``profile`` (default quick); ``seed`` exactly where the notebook
    uses one outside its parameters cell (no unused seed parameters)."""
    params = papermill.inspect_notebook(str(nb))
    assert "profile" in params
    assert params["profile"]["default"].strip("'\"") == "quick"
    cells = jupytext.read(nb.with_suffix(".py")).cells
    body = "\n".join(c.source for c in cells if c.cell_type == "code"
                     and "parameters" not in c.metadata.get("tags", []))
    names = {n.id for n in ast.walk(ast.parse(body)) if isinstance(n, ast.Name)}
    assert ("seed" in params) == ("seed" in names), nb.stem


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_jupytext_pair_in_sync(nb):
    """The .py source and the .ipynb hold the same cells (types and sources)."""
    py = nb.with_suffix(".py")
    assert py.exists(), f"{py.name} missing: every notebook is a jupytext pair"
    a, b = jupytext.read(nb), jupytext.read(py)
    cells = lambda n: [(c.cell_type, c.source.strip()) for c in n.cells]  # noqa: E731
    assert cells(a) == cells(b), f"{nb.name} and {py.name} differ: run jupytext --sync"


def test_misspelt_parameter_and_unknown_profile_fail_before_running():
    nb = NOTEBOOKS[0]
    with pytest.raises(ValueError, match="did you mean 'seed'"):
        check_parameters(nb, {"sed": 1})
    with pytest.raises(ValueError, match="unknown profile"):
        check_parameters(nb, {"profile": "fast"})


def test_parameter_types_are_checked_against_the_parameters_cell():
    """The type of each parameter's default (or its annotation) is the type a value must
    have: an int for an int (not a bool, not a float), a number for a float, text for text."""
    nb01, nb06 = NOTEBOOKS[0], next(nb for nb in NOTEBOOKS if nb.stem == "06_tau_sweep")
    check_parameters(nb01, {"seed": 3, "profile": "paper"})
    check_parameters(nb06, {"workers": 1, "source": "committed", "dataset": "eeg"})
    for params, message in [({"seed": "abc"}, "'seed' must be int .*got 'abc' .str."),
                            ({"seed": True}, "'seed' must be int"),
                            ({"seed": 1.5}, "'seed' must be int"),
                            ({"profile": 1}, "'profile' must be str")]:
        with pytest.raises(ValueError, match=f"^{nb01.name}: parameter {message}"):
            check_parameters(nb01, params)
    with pytest.raises(ValueError, match="'workers' must be int .default 2., got 1.5"):
        check_parameters(nb06, {"workers": 1.5})
    expected = pipeline._expected_type
    assert expected({"inferred_type_name": "None", "default": "1e-3"})[1] == (int, float)
    assert expected({"inferred_type_name": "int", "default": "n_max // 2"})[1] == (int,)
    assert expected({"inferred_type_name": "None", "default": "np.pi"}) is None
    assert expected({"inferred_type_name": "None", "default": "None"}) is None


def test_code_and_notebook_sources_pass_ruff():
    """Lint the package, tests and the notebooks' .py sources like code."""
    import subprocess
    import sys

    from chaosrnn_utils import paths

    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise",
                          "chaosrnn_utils", "tests", "notebooks", "tasks.py"],
                         cwd=paths.ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_main_job_runs_the_tau_sweep_per_available_data_set(monkeypatch, tmp_path):
    """Notebook 06 is run once per data set, named after it; a data set whose file is missing
    is skipped with a message, not a failure."""
    from chaosrnn_utils import experiments, sweeps

    calls = []
    monkeypatch.setattr(command_line, "run_notebook",
                        lambda nb, params, out, name=None: calls.append((nb.stem, params, name)))
    monkeypatch.setattr(comparison, "SUMMARY_DIR", tmp_path)
    monkeypatch.setattr(sweeps, "calibrate", lambda: 1.0)
    monkeypatch.setattr(experiments, "dataset_available", lambda name: name != "eeg")
    assert pipeline.main(["reproduce", "--only", "06", "--train-all"]) == 0
    key, values = pipeline.EXPANSIONS["06_tau_sweep"]
    assert [c[2] for c in calls] == [f"06_tau_sweep_{v}.ipynb" for v in values if v != "eeg"]
    assert all(c[1][key] in values and c[1]["profile"] == "quick" for c in calls)
    # the notebook redraws committed results by default; told to train, it trains
    assert pipeline.notebook_parameters(pipeline.select_notebooks(["06"])[0])["source"][
        "default"] == "\"committed\""
    assert all(c[1]["source"] == "train" for c in calls)
    calls.clear()  # run alone without --train-all: the committed quick tables are redrawn
    assert pipeline.main(["reproduce", "--only", "06"]) == 0
    assert len(calls) == len(values) - 1 and all("source" not in c[1] for c in calls)
    calls.clear()
    assert pipeline.main(["reproduce", "--only", "06", "09", "-p", "source", "committed"]) == 0
    assert calls and all(c[1]["source"] == "committed" for c in calls)


@pytest.mark.parametrize("row, expected", [
    # the printed 25 % rule is the rule applied: 28 % off is no (no hidden absolute slack)
    (dict(paper=0.016, reproduced=0.0115), "no"),
    (dict(paper=0.016, reproduced=0.0121), "yes"),
    (dict(paper=0.0, reproduced=1e-9), "no"),
    # a success in the paper against a failure here: no, however close the numbers
    (dict(paper=6.77, reproduced=7.2, failed_above=7.0), "no"),
    (dict(paper=6.77, reproduced=7.2, failed_above=7.0, match=True), "no"),
    (dict(paper=0.196, reproduced=float("nan"), failed_above=7.0), "no"),
    # both in the failed range: both failed, never yes
    (dict(paper=7.48, reproduced=16.47, failed_above=7.0), "both failed"),
    (dict(paper="10–12", reproduced=16.6, failed_above=7.0, match=True), "both failed"),
    # the paper failed, ours did not: no
    (dict(paper=15.4, reproduced=0.5, failed_above=7.0), "no"),
    # both successes: the notebook's own rule, else 25 %
    (dict(paper=0.062, reproduced=0.15, failed_above=7.0, match=True), "yes"),
    (dict(paper=0.062, reproduced=0.15, failed_above=7.0), "no"),
    # the paper's value judged against its own (authors') threshold
    (dict(paper=7.48, reproduced=6.0, failed_above=6.5, paper_failed_above=8.0), "yes"),
    # best-τ rows: only when our best cell is a success
    (dict(paper=30, reproduced=30, score=9.69, failed_above=7.0, match=True), "no"),
    (dict(paper=30, reproduced=30, score=float("nan"), failed_above=7.0, match=True), "no"),
    (dict(paper=30, reproduced=50, score=0.4, failed_above=7.0, match=True), "yes"),
])
def test_match_rules(row, expected):
    assert pipeline._match(dict(quantity="q", **row)) == expected


def test_comparison_table_and_readme_block(monkeypatch, tmp_path):
    from chaosrnn_utils import paths

    summary = tmp_path / "summary"
    summary.mkdir()
    rows = [dict(quantity="a", paper=0.08, reproduced=0.09),  # within 25 %: yes
            dict(quantity="b", paper=0.08, reproduced=0.2),  # no
            dict(quantity="c", paper="< 0", reproduced=-0.1),  # sign claim: yes
            dict(quantity="d", paper="bounded", reproduced=1.3),  # asserted
            dict(quantity="e", paper=30, reproduced=200, match=False, profile="paper",
                 note="x | y"),
            dict(quantity="f", paper="not in paper", reproduced=0.1),
            dict(quantity="g", paper=7.48, reproduced=16.5, failed_above=6.0,
                 paper_failed_above=6.3, convention="ours (paper: authors')", note="n")]
    (summary / "06_x.json").write_text(json.dumps(rows))
    table = pipeline.comparison_markdown("quick", summary).splitlines()
    assert [line.split(" | ")[7] for line in table[2:8]] == ["yes", "no", "yes", "asserted",
                                                             "no", "–"]
    assert "| 06 | e | 30 | 200 | – | – | paper | no | x \\| y |" in table
    assert ("| 06 | g | 7.48 | 16.5 | ours (paper: authors') | heldout | quick | both failed "
            "| n; failed range ≥ 6 (paper's convention: ≥ 6.3) |") in table
    assert table[-1] == pipeline.MATCH_RULES
    readme = tmp_path / "README.md"
    readme.write_text(f"top\n{pipeline.README_START}\nold\n{pipeline.README_END}\nbottom\n")
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    out = pipeline.write_comparison("quick", summary)
    assert out.read_text() == "\n".join(table) + "\n"
    text = readme.read_text()
    assert "\nold\n" not in text and text.startswith("top\n") and text.endswith("bottom\n")
    assert "| 06 | a | 0.08 | 0.09 · yes | – | – |" in text  # one column per profile run
    # a medium run adds its column to the README's table, row by row
    medium = tmp_path / "medium"
    medium.mkdir()
    (medium / "06_x.json").write_text(json.dumps([dict(quantity="b", paper=0.08,
                                                       reproduced=0.07, profile="medium")]))
    pipeline.write_comparison("medium", medium)
    text = readme.read_text()
    assert "| notebook | quantity | paper | quick | medium | convention | protocol |" in text
    assert "| 06 | b | 0.08 | 0.2 · no | 0.07 · yes | – | – |" in text
    assert "| 06 | a | 0.08 | 0.09 · yes | – | – | – |" in text
    assert "`medium`: 300 epochs" in text


# ---------------------------------------------------------------------------- the runner


@pytest.fixture
def runs(monkeypatch, tmp_path):
    """The notebook runs of ``reproduce`` recorded instead of executed (summary and README in
    tmp_path)."""
    calls = []
    monkeypatch.setattr(command_line, "run_notebook",
                        lambda nb, params, out, name=None: calls.append((nb.stem, params, name)))
    monkeypatch.setattr(comparison, "SUMMARY_DIR", tmp_path / "summary")
    monkeypatch.setattr(command_line, "write_comparison", lambda profile: tmp_path / "cmp.md")
    from chaosrnn_utils import sweeps

    monkeypatch.setattr(sweeps, "calibrate", lambda: 1.0)
    return calls


def test_a_given_parameter_wins_over_the_expansion(runs, monkeypatch):
    """``-p dataset eeg --only 06`` runs notebook 06 on eeg only (the main job's loop over the
    data sets does not override it); -p workers reaches the notebooks that declare it."""
    from chaosrnn_utils import experiments

    monkeypatch.setattr(experiments, "dataset_available", lambda name: True)
    assert pipeline.main(["reproduce", "--only", "06", "-p", "dataset", "eeg",
                          "-p", "workers", "1"]) == 0
    assert runs == [("06_tau_sweep", {"profile": "quick", "dataset": "eeg", "workers": 1},
                     "06_tau_sweep_eeg.ipynb")]  # alone: redraws the committed quick table
    runs.clear()
    assert pipeline.main(["reproduce", "--only", "06", "-p", "dataset", "eeg", "-p",
                          "source", "train"]) == 0
    assert runs == [("06_tau_sweep", {"profile": "quick", "source": "train", "dataset": "eeg"},
                     "06_tau_sweep_eeg.ipynb")]


def test_seed_goes_only_to_the_notebooks_that_declare_it(runs, monkeypatch, tmp_path):
    import nbformat

    for stem, source in [("01_a", "profile = 'quick'\nseed = 0"), ("02_b", "profile = 'quick'")]:
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["parameters"]})
        nb = nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, tmp_path / f"{stem}.ipynb")
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", tmp_path)
    assert pipeline.main(["reproduce", "--seed", "3", "--profile", "paper"]) == 0
    assert runs == [("01_a", {"profile": "paper", "seed": 3}, None),
                    ("02_b", {"profile": "paper"}, None)]


def test_medium_runs_the_training_notebooks_only(runs):
    """At medium only the notebooks whose results depend on the training budget run; with
    --committed they redraw the committed results instead of training."""
    assert pipeline.main(["reproduce", "--profile", "medium", "--only", "05", "07", "09",
                          "--train-all"]) == 0
    assert runs == [("07_lorenz_attractors", {"profile": "medium", "source": "train"}, None),
                    ("09_ablations", {"profile": "medium", "source": "train"}, None)]
    runs.clear()
    assert pipeline.main(["reproduce", "--profile", "medium", "--committed", "--only",
                          "07"]) == 0
    assert runs == [("07_lorenz_attractors", {"profile": "medium"}, None)]


def test_committed_redraws_skip_what_is_not_committed(runs, monkeypatch, tmp_path, capsys):
    """--committed at a profile whose tables are only partly committed: the notebooks whose
    tables are there run, the others are skipped naming the missing file."""
    from chaosrnn_utils import experiments

    monkeypatch.setattr(experiments, "dataset_available", lambda name: True)
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    (tmp_path / "results" / "medium").mkdir(parents=True)
    (tmp_path / "results" / "medium" / "tau_sweep_lorenz.csv").write_text("x\n")
    assert pipeline.main(["reproduce", "--profile", "medium", "--committed", "--only", "06",
                          "07"]) == 0
    assert runs == [("06_tau_sweep", {"profile": "medium", "dataset": "lorenz"},
                     "06_tau_sweep_lorenz.ipynb")]
    out = capsys.readouterr().out
    assert "06_tau_sweep.ipynb dataset=eeg: skipped (no committed tau_sweep_eeg.csv" in out
    assert "07_lorenz_attractors.ipynb: skipped (no committed lorenz_lstm_attractors.pt" in out


def test_a_failed_partial_run_keeps_every_summary(monkeypatch, tmp_path):
    """Each notebook records into a staging folder; only a run that succeeds replaces its
    own entries, so a failed ``--only 02`` leaves the last good summary of every notebook."""
    monkeypatch.setattr(comparison, "SUMMARY_DIR", tmp_path / "summary")
    summary = tmp_path / "summary" / "quick"
    summary.mkdir(parents=True)
    old = {f"{nb.stem}.json": json.dumps([dict(quantity=nb.stem, paper=1, reproduced=1)])
           for nb in NOTEBOOKS[:3]}
    for name, text in old.items():
        (summary / name).write_text(text)
    fail = True

    def run(nb, params, out, name=None):  # records like a notebook, then fails or not
        notebook.record_summary(nb.stem, [dict(quantity="new", paper=1, reproduced=2)])
        if fail:
            raise RuntimeError("kernel died")

    monkeypatch.setattr(command_line, "run_notebook", run)
    with pytest.raises(RuntimeError, match="kernel died"):
        pipeline.main(["reproduce", "--only", "02"])
    assert {f.name: f.read_text() for f in summary.iterdir()} == old  # no staging folder left
    fail = False
    assert pipeline.main(["reproduce", "--only", "02"]) == 0
    new = {f.name: f.read_text() for f in summary.iterdir()}
    assert set(new) == set(old) and json.loads(new[NOTEBOOKS[1].stem + ".json"])[0][
        "quantity"] == "new"
    assert all(new[k] == old[k] for k in old if not k.startswith("02"))


def test_the_runner_forwards_the_notebooks_output(monkeypatch, tmp_path):
    """The kernel's stdout and stderr (training bars, one line per finished sweep job) reach
    the terminal as they come; papermill's cell counter, which would overwrite them, is off."""
    import sys

    seen = {}
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **kw: seen.update(kw))
    pipeline.run_notebook(NOTEBOOKS[0], {"profile": "quick"}, tmp_path)
    assert seen["stdout_file"] is sys.stdout and seen["stderr_file"] is sys.stderr
    assert seen["progress_bar"] is False and seen["parameters"] == {"profile": "quick"}


def test_a_data_dir_that_is_not_there_is_said_once(monkeypatch, tmp_path, capsys):
    from chaosrnn_utils import data

    monkeypatch.setattr(data, "_WARNED", set())
    monkeypatch.setenv("CHAOSRNN_DATA_DIR", str(tmp_path / "nonexistent"))
    for _ in range(2):
        data.find_empirical("eeg")
    assert capsys.readouterr().err == (f"chaosrnn: warning: CHAOSRNN_DATA_DIR={tmp_path}/"
                                       "nonexistent is not a folder; looking in the other "
                                       "folders\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / data.EMPIRICAL["eeg"].filename).write_bytes(b"")
    monkeypatch.setenv("CHAOSRNN_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(paths, "empirical_data_dirs",
                        lambda: [tmp_path / "empty", tmp_path / "other"])
    assert data.find_empirical("eeg") == tmp_path / "other" / data.EMPIRICAL["eeg"].filename
    assert capsys.readouterr().err.count("is not in CHAOSRNN_DATA_DIR") == 1


# ---------------------------------------------------------------------------- bad input

SPEC = dict(name="t", dataset="{tmp}/x.npy", n_data=600, n_generate=100,
            settings=dict(latent_dim=6, seq_len=30, batch_size=4, batches_per_epoch=2,
                          epochs=2),
            grid={"seed": [0]})


def _no_data(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "empirical_data_dirs", lambda: [tmp_path / "empty"])


def _unwritable(monkeypatch, tmp_path):
    def refuse(path, mode="wb"):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(paths, "atomic_open", refuse)


def _no_eeg(monkeypatch, tmp_path):
    from chaosrnn_utils import experiments

    monkeypatch.setattr(experiments, "dataset_available", lambda name: name != "eeg")


SWEEP = ["sweep", "--out", "{tmp}/out"]
# (argv, what the error line says, setup): every one is refused before a notebook or training
# starts, with exit status 2 and one line on stderr; {tmp} is the test's folder
BAD_INPUT = {
    "spec-not-json": (["sweep", "{tmp}/bad.json", "--out", "{tmp}/out"],
                      r"spec file \S+bad.json: not valid JSON", None),
    "spec-lr-as-text": (["sweep", "{tmp}/lr.json", "--out", "{tmp}/out"],
                        "settings field 'lr' must be float, got '1e-3'", None),
    "latent-dim-too-small": (["sweep", "{tmp}/latent.json", "--out", "{tmp}/out"],
                             "latent_dim 2 < data dimension 3", None),
    "data-not-npy": (["sweep", "--dataset", "{tmp}/garbage.npy", "--out", "{tmp}/out"],
                     r"dataset file \S+garbage.npy' is unreadable", None),
    "data-with-nan": (["sweep", "--dataset", "{tmp}/nan.npy", "--out", "{tmp}/out"],
                      "nan.npy has 1 NaN", None),
    "data-not-here": (["sweep", "--dataset", "eeg", "--out", "{tmp}/out"],
                      "eeg data not found", _no_data),
    "out-is-a-file": (["sweep", "{tmp}/ok.json", "--out", "{tmp}/afile"], "is a file", None),
    "out-under-a-file": (["sweep", "{tmp}/ok.json", "--out", "{tmp}/afile/out"],
                         "cannot write the output folder .*Not a directory", None),
    "out-read-only": (["sweep", "{tmp}/ok.json", "--out", "{tmp}/out"],
                      "cannot write the output folder .*Permission denied", _unwritable),
    "out-holds-another-sweep": (["sweep", "{tmp}/ok.json", "--out", "{tmp}/claimed"],
                                "holds another sweep", None),
    "workers-0": ([*SWEEP, "--dataset", "lorenz", "--workers", "0"],
                  "--workers: must be a positive integer", None),
    "time-limit-negative": ([*SWEEP, "--dataset", "lorenz", "--time-limit", "-1"],
                            "--time-limit: must be a positive number", None),
    "time-limit-zero": ([*SWEEP, "--dataset", "lorenz", "--time-limit", "0"],
                        "--time-limit: must be a positive number", None),
    "sweep-data-dir-missing": ([*SWEEP, "--dataset", "lorenz"],
                               "CHAOSRNN_DATA_DIR=/nonexistent is not a folder", "env"),
    "p-unknown": (["reproduce", "--only", "01", "-p", "sed", "3"],
                  "unknown parameter 'sed'.*did you mean 'seed'", None),
    "p-wrong-type": (["reproduce", "-p", "seed", "abc"],
                     "01_systems_and_lyapunov.ipynb: parameter 'seed' must be int", None),
    "p-float-for-int": (["reproduce", "--only", "06", "-p", "workers", "1.5"],
                        "06_tau_sweep.ipynb: parameter 'workers' must be int", None),
    "p-profile": (["reproduce", "--profile", "quick", "-p", "profile", "paper"],
                  "--profile", None),
    "p-seed-twice": (["reproduce", "--seed", "1", "-p", "seed", "2"], "seed is given twice",
                     None),
    "p-unknown-dataset": (["reproduce", "--only", "06", "-p", "dataset", "lorentz"],
                          "did you mean 'lorenz'", None),
    "p-dataset-not-here": (["reproduce", "--only", "06", "-p", "dataset", "eeg"],
                           "dataset 'eeg': the authors' data file is not here", _no_eeg),
    "only-unknown": (["reproduce", "--only", "99", "02"],
                     "--only 99: no notebook starts with '99' .notebooks: 01_", None),
    "only-empty": (["reproduce", "--only"], "--only: expected at least one argument", None),
    "refresh-only-unknown": (["refresh", "--only", "99"], "no notebook starts with '99'", None),
    "reproduce-data-dir-missing": (["reproduce", "--only", "01"], "CHAOSRNN_DATA_DIR", "env"),
}


@pytest.fixture
def bad_inputs(tmp_path, monkeypatch):
    """The files of BAD_INPUT; nothing may run (notebooks, training)."""
    from chaosrnn_utils import sweeps

    def fail(*args, **kwargs):
        raise AssertionError("a notebook or a training started")

    for target, name in [(command_line, "run_notebook"), (command_line, "refresh_notebook"),
                         (sweeps, "run_sweep")]:
        monkeypatch.setattr(target, name, fail)
    monkeypatch.setattr(comparison, "SUMMARY_DIR", tmp_path / "summary")
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.delenv("CHAOSRNN_DATA_DIR", raising=False)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.standard_normal((600, 3)))
    nan = rng.standard_normal((600, 3))
    nan[5, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    (tmp_path / "garbage.npy").write_text("not numpy")
    (tmp_path / "afile").write_text("")
    spec = json.loads(json.dumps(SPEC).replace("{tmp}", str(tmp_path)))
    (tmp_path / "ok.json").write_text(json.dumps(spec))
    (tmp_path / "bad.json").write_text(json.dumps(spec)[:-10])
    (tmp_path / "lr.json").write_text(json.dumps({**spec, "settings": {
        **spec["settings"], "lr": "1e-3"}}))
    (tmp_path / "latent.json").write_text(json.dumps({**spec, "settings": {
        **spec["settings"], "latent_dim": 2}}))
    (tmp_path / "claimed").mkdir()
    (tmp_path / "claimed" / "spec.json").write_text(json.dumps({**spec, "name": "other"}))
    return tmp_path


def cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Exit status and stderr lines of the command line called in this process."""
    try:
        rc = pipeline.main(argv)
    except SystemExit as stop:
        rc = stop.code
    return rc, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_one_line_and_exit_status_2(case, bad_inputs, monkeypatch, capsys):
    argv, message, setup = BAD_INPUT[case]
    if setup == "env":
        monkeypatch.setenv("CHAOSRNN_DATA_DIR", "/nonexistent")
    elif setup is not None:
        setup(monkeypatch, bad_inputs)
    rc, err = cli([a.replace("{tmp}", str(bad_inputs)) for a in argv], capsys)
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"chaosrnn {argv[0]}: error: "), err[0]
    assert re.search(message, err[0]), err[0]
    assert not (bad_inputs / "out").exists()


def test_bad_input_in_a_real_process_has_no_traceback(bad_inputs):
    """The same through ``python -m chaosrnn_utils``: one line on stderr, nothing else."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "chaosrnn_utils", "sweep",
                          str(bad_inputs / "latent.json"), "--out", str(bad_inputs / "out")],
                         cwd=paths.ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "CHAOSRNN_CACHE_DIR": str(bad_inputs / "cache")})
    assert out.returncode == 2 and out.stdout == "", out
    assert out.stderr == ("chaosrnn sweep: error: plrnn: latent_dim 2 < data dimension 3\n")


def test_a_training_notebook_alone_redraws_its_committed_results(runs, capsys):
    """``reproduce --profile medium --only 06 -p dataset duffing`` does not silently train
    for an hour: the committed medium table is there, so it is redrawn, and one line says
    how to train instead; --train-all (or -p source train) trains."""
    assert pipeline.main(["reproduce", "--profile", "medium", "--only", "06", "-p", "dataset",
                          "duffing"]) == 0
    assert runs == [("06_tau_sweep", {"profile": "medium", "dataset": "duffing"},
                     "06_tau_sweep_duffing.ipynb")]
    out = capsys.readouterr().out
    assert ("redraws the committed medium results; to train instead: python3 tasks.py "
            "reproduce --profile medium --only 06 -p dataset duffing --train-all (about ") in out
    cost = pipeline.training_estimate(pipeline.Run(pipeline.select_notebooks(["06"])[0],
                                                   {"dataset": "duffing"}), "medium")
    assert 20 * 60 < cost < 60 * 60  # the medium Duffing sweep: 23 min measured on 2 cores
    assert f"(about {pipeline._minutes(cost)} on 2 cores of the committed machine)" in out
    runs.clear()
    assert pipeline.main(["reproduce", "--profile", "medium", "--only", "06", "-p", "dataset",
                          "duffing", "--train-all"]) == 0
    assert runs[0][1]["source"] == "train"
    assert pipeline.main(["reproduce", "--only", "06", "--train-all", "--committed"]) == 2


def test_the_quick_main_job_trains_the_asserted_claims_and_redraws_the_rest(monkeypatch):
    """The quick main job: Lorenz-63 (its LSTM), 07 and 09 train at quick; every other data
    set, Lorenz's other architectures (its whole committed sweep, not a part that would
    overwrite that profile's figure) and 08 redraw the best committed profile, each with the
    command that retrains it; a profile not committed is not chosen."""
    from chaosrnn_utils import experiments

    monkeypatch.setattr(experiments, "dataset_available", lambda name: True)
    runs = pipeline.plan_reproduce(NOTEBOOKS, "quick", {}, whole=True)
    by_name = {r.name or r.notebook.name: r for r in runs}
    assert by_name["06_tau_sweep_lorenz.ipynb"].parameters == {
        "profile": "quick", "source": "train", "dataset": "lorenz"}
    assert by_name["06_tau_sweep_lorenz_medium.ipynb"].parameters == {
        "profile": "medium", "source": "committed", "dataset": "lorenz"}
    assert by_name["07_lorenz_attractors.ipynb"].parameters["source"] == "train"
    assert by_name["09_ablations.ipynb"].parameters == {"profile": "quick", "source": "train"}
    assert by_name["08_empirical_data_medium.ipynb"].parameters == {
        "profile": "medium", "source": "committed"}
    duffing = by_name["06_tau_sweep_duffing_medium.ipynb"]
    assert duffing.parameters["profile"] == "medium" and duffing.skip is None
    assert ("reproduce --profile medium --only 06 -p dataset duffing --train-all (about"
            in duffing.note)
    assert pipeline.best_committed("06_tau_sweep", {"dataset": "duffing"}) == "medium"
    assert pipeline.best_committed("06_tau_sweep", {"dataset": "nowhere"}) is None
    line = pipeline.redraw_line(runs)
    assert "06 duffing [medium]" in line and "--train-all" in line and "--profile medium" in line
    # --train-all: every notebook trains at quick, nothing is redrawn
    every = pipeline.plan_reproduce(NOTEBOOKS, "quick", {}, train_all=True, whole=True)
    assert all(r.parameters["profile"] == "quick" for r in every)
    assert pipeline.redraw_line(every) is None


def _part(name, estimate, after=()):
    return pipeline.Part(name, estimate, tuple(after))


def test_the_schedule_starts_the_longest_critical_path_first():
    """List scheduling on two lanes: the part with the longest chain ahead of it starts
    first (a short job whose notebook waits long beats a longer lone part), a part starts
    only after what it waits for, and the ratio of the work to the wall time is read off."""
    parts = [_part("a", 10), _part("b", 6), _part("c", 5), _part("d", 4, ["c"]),
             _part("e", 3), _part("f", 2, ["a", "b"])]
    assert pipeline.priorities(parts) == {"a": 12, "b": 8, "c": 9, "d": 4, "e": 3, "f": 2}
    sched = pipeline.simulate(parts, 2)
    assert sched["a"][1] == 0 and sched["c"][1] == 0  # the two longest critical paths
    assert sched["b"][1] == 5 and sched["d"][1] == 10  # then b (8) before d (4) and e (3)
    assert sched["f"][1] == 14 >= max(sched["a"][2], sched["b"][2])
    assert max(e for _, _, e in sched.values()) == 16  # 30 units of work on 2 lanes
    one = pipeline.simulate(parts, 1)
    assert max(e for _, _, e in one.values()) == 30
    with pytest.raises(ValueError, match="not there"):
        pipeline.simulate([_part("x", 1, ["y"])], 2)
    text = pipeline.plan_text(parts, 2, 1.0)
    assert "Estimated: 16 s wall, 0.5 CPU-minutes (CPU/wall 1.88)" in text


def test_the_quick_main_job_keeps_both_lanes_busy(monkeypatch):
    """The pool's parts of the quick main job (sweep jobs apart, notebooks waiting for their
    sweeps, 07 after 06's Lorenz run, 08 after the data sets it reads): scheduled from the
    committed costs, the two lanes are busy ≥ 90 % of the wall time (CPU/wall ≥ 1.8)."""
    from chaosrnn_utils import experiments, sweeps

    monkeypatch.setattr(experiments, "dataset_available", lambda name: True)
    runs = pipeline.plan_reproduce(NOTEBOOKS, "quick", {}, whole=True)
    monkeypatch.setattr(sweeps, "pending_jobs",
                        lambda spec, out: ({}, sweeps.sweep_jobs(spec)))
    parts = {p.name: p for p in pipeline.build_parts(runs, 1.0, jobs=True)}
    jobs = [n for n in parts if n.startswith("train ")]
    assert sorted(jobs) == ["train ablations_lorenz lstm-0", "train ablations_lorenz lstm-1",
                            "train tau_sweep_lorenz lstm-0", "train tau_sweep_lorenz lstm-1"]
    assert set(parts["06_tau_sweep_lorenz"].after) == {"train tau_sweep_lorenz lstm-0",
                                                       "train tau_sweep_lorenz lstm-1"}
    assert parts["07_lorenz_attractors"].after == ("06_tau_sweep_lorenz",)
    assert set(parts["08_empirical_data_medium"].after) == {
        "06_tau_sweep_temperature_medium", "06_tau_sweep_eeg_medium"}
    sched = pipeline.simulate(list(parts.values()), 2)
    wall = max(e for _, _, e in sched.values())
    assert sum(p.estimate for p in parts.values()) / wall >= 1.8
    first = sorted(sched, key=lambda n: sched[n][1])[:2]
    assert all(n.startswith("train ablations_lorenz") for n in first)  # the longest chain


def test_the_pool_runs_sweep_jobs_and_notebooks_in_dependency_order(monkeypatch, tmp_path,
                                                                    capsys):
    """run_pool in two real worker processes: two jobs of a tiny sweep and a notebook that
    waits for them (it finds their parts written) and records a summary; a progress line per
    part; a failing notebook fails the run and the part that waits for it is not run."""
    import nbformat

    from chaosrnn_utils import sweeps
    from chaosrnn_utils.sweeps import SweepSpec

    monkeypatch.setenv("CHAOSRNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(comparison, "SUMMARY_DIR", tmp_path / "summary")
    spec = SweepSpec(name="tiny", dataset="lorenz", n_data=3000, architectures=["rnn"],
                     grid={"tau": [5, 10], "seed": [0]}, n_generate=1000, split=2,
                     settings=dict(latent_dim=6, seq_len=20, batch_size=4, batches_per_epoch=2,
                                   epochs=2, dtype="float64"))
    out = tmp_path / "sweep"
    inputs, todo = sweeps.pending_jobs(spec, out)
    assert [j[0] for j in todo] == ["rnn-0", "rnn-1"] and (out / "spec.json").exists()
    parts = [pipeline.Part(f"train {job}", 1.0, job=(spec.to_dict(), str(out), job, arch,
                                                     index, inputs))
             for job, arch, index in todo]
    code = ("profile = 'quick'\nfail = False", f"""
from pathlib import Path
import chaosrnn_utils as cu
assert not fail, "told to fail"
parts = sorted(p.name for p in Path({str(out / 'parts')!r}).glob('*.csv'))
cu.record_summary('01_x', [dict(quantity='parts', paper=None, reproduced=len(parts))])""")
    cells = [nbformat.v4.new_code_cell(code[0], metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell(code[1])]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, tmp_path / "01_x.ipynb")
    run = pipeline.Run(tmp_path / "01_x.ipynb", {"profile": "quick"})
    parts.append(pipeline.Part("01_x", 1.0, ("train rnn-0", "train rnn-1"), run=run))
    # as reproduce runs it (publishing): the sweep's training is logged, for its provenance
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setenv(paths.PUBLISH_ENV, "1")
    assert pipeline.run_pool(parts, 2, "quick", tmp_path / "out") == 0
    said = capsys.readouterr().out
    assert said.count(": done in ") == 3 and "[3/3] 01_x: done in" in said
    (row,) = json.loads((tmp_path / "summary" / "quick" / "01_x.json").read_text())
    assert row["reproduced"] == 2
    assert sweeps.pending_jobs(spec, out)[1] == []
    from chaosrnn_utils import experiments as ex

    (logged,) = pd.read_csv(ex.train_log("quick")).itertuples()
    assert (logged.sweep, logged.dataset, logged.workers, logged.complete) == (
        "tiny", "lorenz", 2, True)
    assert ex.machine_of("tiny", "quick") == f"{ex._cpu_name()} ({os.cpu_count()} cores)" \
        or logged.wall_s <= 1.0  # machine_of counts calls that trained for over a second
    monkeypatch.delenv(paths.PUBLISH_ENV)
    bad = run._replace(parameters={"profile": "quick", "fail": True})
    assert pipeline.run_pool([pipeline.Part("01_x", 1.0, run=bad),
                              pipeline.Part("after", 1.0, ("01_x",), run=run)], 2, "quick",
                             tmp_path / "out") == 1
    said = capsys.readouterr().out
    assert "01_x: FAILED" in said and "after: not run (a part it waits for failed)" in said
