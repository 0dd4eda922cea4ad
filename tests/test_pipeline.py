"""Profiles, the summary table, the papermill parameter check and the jupytext pairs."""

from __future__ import annotations

import ast
import json
import os
import re

import jupytext
import numpy as np
import papermill
import pytest

from chaosrnn_utils import notebook, paths, pipeline
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
    from chaosrnn_utils import experiments

    calls = []
    monkeypatch.setattr(pipeline, "run_notebook",
                        lambda nb, params, out, name=None: calls.append((nb.stem, params, name)))
    monkeypatch.setattr(pipeline, "SUMMARY_DIR", tmp_path)
    monkeypatch.setattr(experiments, "dataset_available", lambda name: name != "eeg")
    assert pipeline.main(["reproduce", "--only", "06"]) == 0
    key, values = pipeline.EXPANSIONS["06_tau_sweep"]
    assert [c[2] for c in calls] == [f"06_tau_sweep_{v}.ipynb" for v in values if v != "eeg"]
    assert all(c[1][key] in values and c[1]["profile"] == "quick" for c in calls)
    # the notebook redraws committed results by default; the main job trains, unless told
    assert pipeline.notebook_parameters(pipeline.select_notebooks(["06"])[0])["source"][
        "default"] == "\"committed\""
    assert all(c[1]["source"] == "train" for c in calls)
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
    assert "| 06 | a | 0.08 | 0.09 · yes | – |" in text  # one column per profile run
    # a medium run adds its column to the README's table, row by row
    medium = tmp_path / "medium"
    medium.mkdir()
    (medium / "06_x.json").write_text(json.dumps([dict(quantity="b", paper=0.08,
                                                       reproduced=0.07, profile="medium")]))
    pipeline.write_comparison("medium", medium)
    text = readme.read_text()
    assert "| notebook | quantity | paper | quick | medium | convention |" in text
    assert "| 06 | b | 0.08 | 0.2 · no | 0.07 · yes | – |" in text
    assert "| 06 | a | 0.08 | 0.09 · yes | – | – |" in text
    assert "`medium`: 300 epochs" in text


# ---------------------------------------------------------------------------- the runner


@pytest.fixture
def runs(monkeypatch, tmp_path):
    """The notebook runs of ``reproduce`` recorded instead of executed (summary and README in
    tmp_path)."""
    calls = []
    monkeypatch.setattr(pipeline, "run_notebook",
                        lambda nb, params, out, name=None: calls.append((nb.stem, params, name)))
    monkeypatch.setattr(pipeline, "SUMMARY_DIR", tmp_path / "summary")
    monkeypatch.setattr(pipeline, "write_comparison", lambda profile: tmp_path / "cmp.md")
    return calls


def test_a_given_parameter_wins_over_the_expansion(runs, monkeypatch):
    """``-p dataset eeg --only 06`` runs notebook 06 on eeg only (the main job's loop over the
    data sets does not override it); -p workers reaches the notebooks that declare it."""
    from chaosrnn_utils import experiments

    monkeypatch.setattr(experiments, "dataset_available", lambda name: True)
    assert pipeline.main(["reproduce", "--only", "06", "-p", "dataset", "eeg",
                          "-p", "workers", "1"]) == 0
    assert runs == [("06_tau_sweep", {"profile": "quick", "source": "train", "dataset": "eeg",
                                      "workers": 1},
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
    assert pipeline.main(["reproduce", "--profile", "medium", "--only", "05", "07", "09"]) == 0
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
    monkeypatch.setattr(pipeline, "SUMMARY_DIR", tmp_path / "summary")
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

    monkeypatch.setattr(pipeline, "run_notebook", run)
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

    for target, name in [(pipeline, "run_notebook"), (pipeline, "refresh_notebook"),
                         (sweeps, "run_sweep")]:
        monkeypatch.setattr(target, name, fail)
    monkeypatch.setattr(pipeline, "SUMMARY_DIR", tmp_path / "summary")
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


def test_lanes_run_the_notebooks_that_do_not_train_in_a_second_process(runs, monkeypatch,
                                                                         tmp_path):
    """--lanes 2: notebooks 01-05 go to one child ``reproduce`` (its own --only list, the
    seed passed on), the training notebooks run here; a failed child fails the run."""
    from chaosrnn_utils import experiments

    monkeypatch.setattr(experiments, "dataset_available", lambda name: name == "lorenz")
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    started = []

    class Child:
        def __init__(self, command, stdout, **kw):
            started.append(command)
            stdout.write("notebook output\nExecuted notebooks: x\nsummary\n")

        def wait(self):
            return status

    status = 0
    monkeypatch.setattr(pipeline.subprocess, "Popen", Child)
    assert pipeline.main(["reproduce", "--lanes", "2", "--seed", "4"]) == 0
    (command,) = started
    child = command[command.index("--only") + 1:]
    assert child[:5] == [nb.stem for nb in NOTEBOOKS[:5]] and child[-2:] == ["--seed", "4"]
    assert command[command.index("--lanes") + 1] == "1"
    assert [r[0] for r in runs] == ["06_tau_sweep", "07_lorenz_attractors",
                                    "08_empirical_data", "09_ablations"]
    status = 1
    assert pipeline.main(["reproduce", "--lanes", "2"]) == 1
