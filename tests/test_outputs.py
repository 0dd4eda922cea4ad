"""The tests leave the working tree as they found it: the notebooks write their figures and
tables under ``build/`` unless ``reproduce`` publishes them, and ``tasks.py test`` compares
the git working tree before and after the suite (its snapshot against git itself)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from chaosrnn_utils import cli, comparison, paths, pipeline, plotting, runner

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _tasks():
    spec = importlib.util.spec_from_file_location("tasks", paths.ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _git(repo, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=repo, env=env,
                   check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    """A git checkout with two committed files, one ignored folder and nothing else."""
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("build/\n")
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "f.png").write_bytes(b"png")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "start")
    return tmp_path


@needs_git
def test_tree_check_lists_every_path_the_tests_changed(repo, capsys):
    tasks = _tasks()
    (repo / "a.txt").write_text("edited before the tests\n")  # a developer's own edit
    before = tasks.tree_state(repo)
    assert set(before) == {"a.txt"}
    (repo / "build").mkdir()
    (repo / "build" / "f.png").write_bytes(b"ignored")  # under build/: fine
    assert tasks.check_tree_unchanged(before, repo) == 0
    assert capsys.readouterr().err == ""
    (repo / "a.txt").write_text("edited again by the tests\n")  # same status, new content
    (repo / "figures" / "f.png").write_bytes(b"overwritten")
    (repo / "figures" / "new.pdf").write_bytes(b"new")
    after = tasks.tree_state(repo)
    assert tasks.changed_paths(before, after) == ["a.txt", "figures/f.png", "figures/new.pdf"]
    assert tasks.check_tree_unchanged(before, repo) == 1
    err = capsys.readouterr().err
    assert err.startswith("tasks.py test: error: the tests changed 3 path(s)")
    assert all(f"  {p}\n" in err for p in ("a.txt", "figures/f.png", "figures/new.pdf"))
    (repo / "figures" / "f.png").unlink()  # a deletion is a change too
    assert "figures/f.png" in tasks.changed_paths(before, tasks.tree_state(repo))


def test_tree_check_outside_a_git_checkout_passes(tmp_path):
    tasks = _tasks()
    if shutil.which("git") is not None:
        assert tasks.tree_state(tmp_path) is None
    assert tasks.check_tree_unchanged(None, tmp_path) == 0


def test_notebook_outputs_go_to_build_unless_publishing(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "FIGURES_DIR", tmp_path / "figures")
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "data" / "results")
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    monkeypatch.delenv(paths.PUBLISH_ENV, raising=False)
    fig = plt.figure()
    try:
        assert plotting.save_figure(fig, "x") == tmp_path / "build" / "figures" / "x.png"
        assert paths.results_out() == tmp_path / "build" / "results"
        with paths.publishing_outputs():
            assert os.environ[paths.PUBLISH_ENV] == "1" and paths.publishing()
            assert plotting.save_figure(fig, "x") == tmp_path / "figures" / "x.png"
            assert paths.results_out() == tmp_path / "data" / "results"
    finally:
        plt.close(fig)
    assert paths.PUBLISH_ENV not in os.environ  # restored
    assert sorted(p.name for p in (tmp_path / "build" / "figures").iterdir()) == ["x.pdf",
                                                                                  "x.png"]
    monkeypatch.setenv(paths.PUBLISH_ENV, "0")
    assert not paths.publishing()


def test_reproduce_publishes_and_nothing_else_does(tmp_path, monkeypatch):
    """The notebook kernels of ``reproduce`` see $CHAOSRNN_PUBLISH (they inherit the runner's
    environment); ``refresh`` and the caller after the run do not."""
    seen = []
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    monkeypatch.setattr(comparison, "SUMMARY_DIR", tmp_path / "build" / "summary")
    monkeypatch.delenv(paths.PUBLISH_ENV, raising=False)

    def fake_execute(notebook, output, parameters=None):
        seen.append((notebook.stem, os.environ.get(paths.PUBLISH_ENV)))

    monkeypatch.setattr(runner, "_execute", fake_execute)
    assert pipeline.main(["reproduce", "--only", "02", "--seed", "1"]) == 0
    assert seen == [("02_theorem_fixed_points_and_cycles", "1")]
    assert paths.PUBLISH_ENV not in os.environ
    monkeypatch.setattr(cli, "refresh_notebook",
                        lambda nb: seen.append((nb.stem, os.environ.get(paths.PUBLISH_ENV))))
    assert pipeline.main(["refresh", "--only", "02"]) == 0
    assert seen[-1] == ("02_theorem_fixed_points_and_cycles", None)


def test_test_command_runs_the_suite_without_publishing():
    tasks = _tasks()
    assert tasks.PUBLISH_ENV == paths.PUBLISH_ENV
