"""Profiles, the summary table, the papermill parameter check and the jupytext pairs."""

from __future__ import annotations

import json

import jupytext
import papermill
import pytest

from chaosrnn_utils import pipeline
from chaosrnn_utils.pipeline import check_parameters, notebooks, select_profile

NOTEBOOKS = notebooks()


def test_select_profile():
    assert select_profile("paper", quick={"n": 1}, paper={"n": 9}) == {"n": 9}
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        select_profile("fast", quick={}, paper={})
    with pytest.raises(ValueError, match="exactly the profiles"):
        select_profile("quick", quick={})


def test_summary_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "SUMMARY_DIR", tmp_path)
    pipeline.record_summary("01_x", [dict(quantity="λ", paper=0.015, reproduced=0.0111)])
    assert json.loads((tmp_path / "01_x.json").read_text())[0]["reproduced"] == 0.0111
    table = pipeline.summary_table(tmp_path)
    assert "0.0111" in table and "0.015" in table
    with pytest.raises(ValueError, match="lacks"):
        pipeline.record_summary("01_x", [dict(quantity="λ")])


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_profile_and_seed_parameters(nb):
    params = papermill.inspect_notebook(str(nb))
    assert {"profile", "seed"} <= set(params)
    assert params["profile"]["default"].strip("'\"") == "quick"


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
    with pytest.raises(ValueError, match="unknown parameter"):
        pipeline.main(["reproduce", "--only", nb.name[:2], "-p", "profle", '"paper"'])


def test_code_and_notebook_sources_pass_ruff():
    """Lint the package, tests and the notebooks' .py sources like code."""
    import subprocess
    import sys

    from chaosrnn_utils import paths

    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise",
                          "chaosrnn_utils", "tests", "notebooks", "tasks.py"],
                         cwd=paths.ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
