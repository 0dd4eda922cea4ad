"""The paper's numbers in one table (chaosrnn_utils/paper.json): every number checked against
the project's paper summary where it is at hand (../shared/PAPER.md, or $CHAOSRNN_PAPER_MD),
every group with a source per number, and every consumer reading the table."""

import os
import re
from pathlib import Path

import pytest

from chaosrnn_utils import experiments as ex
from chaosrnn_utils import paper, paths, systems

PAPER_MD = Path(os.environ.get("CHAOSRNN_PAPER_MD")
                or paths.ROOT.parent / "shared" / "PAPER.md")
needs_md = pytest.mark.skipif(not PAPER_MD.is_file(),
                              reason=f"the paper summary {PAPER_MD} is not here (set "
                              "CHAOSRNN_PAPER_MD to its path)")
LABELS = {"lorenz": "Lorenz-63 |", "lorenz2d": "Lorenz-63, 2 of 3 observed", "roessler": "Rössler",
          "duffing": "forced Duffing", "mackey_glass": "Mackey–Glass |",
          "temperature": "temperature |", "eeg": "EEG |"}
FIG2 = {"lorenz": "Lorenz, at", "lorenz2d": "Lorenz 2-D", "roessler": "Rössler:",
        "duffing": "Duffing:", "mackey_glass": "Mackey–Glass (GMM", "temperature": "Temperature:",
        "eeg": "EEG (GMM)"}
ARCH = {"rnn": "RNN", "plrnn": "PLRNN", "lstm": "LSTM"}


@pytest.fixture(scope="module")
def md():
    return PAPER_MD.read_text()


def _section(md: str, n: int) -> str:
    return md.split(f"\n## {n}.")[1].split("\n## ")[0]


def test_every_number_has_a_source():
    t = paper.table()
    groups = [t["datasets"][d] for d in paper.datasets()] + [t["theorems"], t["ablations"]]
    for g in groups:
        assert set(g) - {"sources"} == set(g["sources"]), g["sources"]
        assert all(isinstance(s, str) and s for s in g["sources"].values())
    assert paper.datasets() == list(ex.PAPER_TAUS)
    with pytest.raises(KeyError, match="no data set"):
        paper.dataset("lorenz63")


@needs_md
@pytest.mark.parametrize("name", list(LABELS))
def test_lambda_and_tau_pred_against_the_summary(md, name):
    row = next(line for line in _section(md, 4).splitlines()
               if line.startswith(f"| {LABELS[name].rstrip(' |')}"))
    d = paper.dataset(name)
    if name == "lorenz2d":  # the row gives τ_pred only: the λ of the full Lorenz file
        assert row.split("|")[3].strip() == "46.2"
        assert d["tau_pred"] == 46.2
        assert d["lambda_max_per_step"] == paper.dataset("lorenz")["lambda_max_per_step"]
        return
    lam, tau = re.search(r"\|\s*([0-9.]+) → \*\*([0-9.]+)\*\*", row).groups()
    assert d["lambda_max_per_step"] == float(lam) and d["tau_pred"] == float(tau)


@needs_md
def test_tau_grids_against_the_summary(md):
    text = " ".join(_section(md, 6).split())
    names = {"Lorenz": ["lorenz"], "Rössler": ["roessler"],
             "Lorenz-2D, Duffing, temperature": ["lorenz2d", "duffing", "temperature"],
             "Mackey–Glass": ["mackey_glass"], "EEG": ["eeg"]}
    for label, sets in names.items():
        grid = re.search(re.escape(label) + r" \{([0-9, ]+)\}", text).group(1)
        for s in sets:
            assert paper.dataset(s)["taus"] == [int(v) for v in grid.split(",")], s


@needs_md
@pytest.mark.parametrize("name", list(FIG2))
def test_best_scores_against_the_summary(md, name):
    item = " ".join(_section(md, 7).split(FIG2[name])[1].split("\n   - ")[0].split())
    for arch, best in paper.dataset(name)["best"].items():
        value = f"{best['D_stsp']:g}"
        assert re.search(rf"{ARCH[arch]} {re.escape(value)}\b", item), (arch, value, item)
        # the τ named after the value (or once for all: "all at τ = 30", "at τ = 30: ...")
        taus = [int(t) for t in re.findall(r"τ = (\d+)", item)]
        assert best["tau"] in taus, (arch, best["tau"], item)
    for arch, v in paper.dataset(name).get("clip_D_stsp", {}).items():
        assert paper.text_range(v) in item, (arch, v, item)


@needs_md
def test_theorem_and_ablation_numbers_against_the_summary(md):
    thm, abl = paper.group("theorems"), paper.group("ablations")
    s2, s7 = " ".join(_section(md, 2).split()), " ".join(_section(md, 7).split())
    assert f"about {thm['cycle_log_norm_slope']:g} per step" in s2.replace("−", "-")
    assert f"1e{thm['cycle_log10_norm_at_T430']} near T ≈ 430" in s2.replace("−", "-")
    assert f"about +{thm['chaos_lambda_max']:g} per step" in s2
    assert f"about 1e{thm['chaos_log10_norm_at_T1000']} at T = 1000" in s2
    for key in ("clipping_D_stsp", "tbptt_D_stsp", "windowing_D_stsp"):
        assert f"{paper.text_range(abl[key])}" in s7, key
    assert f"against {abl['sparse_tau30_D_stsp']:g} for sparse forcing" in s7
    assert f"Δτ = 10 → {abl['random_tau_spread10_D_stsp']:g}" in s7
    assert f"about {abl['random_tau_spread50_D_stsp']:g} (fails)" in s7
    assert "{:g} ± {:g}".format(*abl["annealed_tau_D_stsp"]) in s7
    temp = paper.dataset("temperature")["rosenstein"]
    assert f"m = {', '.join(map(str, temp['dims'][:-1]))}, {temp['dims'][-1]}" in s7
    assert f"steps {temp['fit_steps'][0]}–{temp['fit_steps'][1]}" in s7


def test_consumers_read_the_table():
    for name in paper.datasets():
        d = paper.dataset(name)
        assert ex.PAPER_TAUS[name] == d["taus"]
        assert ex.PAPER_BEST[name] == {a: (v["tau"], v["D_stsp"]) for a, v in d["best"].items()}
        assert ex.PAPER_CLIP.get(name, {}) == {a: v if not isinstance(v, list)
                                               else paper.text_range(v)
                                               for a, v in d.get("clip_D_stsp", {}).items()}
    for sys_name, data_name in (("lorenz_paper", "lorenz"), ("roessler_paper", "roessler"),
                                ("duffing_paper", "duffing"), ("mackey_glass", "mackey_glass")):
        s, d = systems.get_system(sys_name), paper.dataset(data_name)
        assert (s.paper_lyapunov_per_step, s.paper_tau_pred) == (d["lambda_max_per_step"],
                                                                 d["tau_pred"])
    assert systems.get_system("henon").paper_tau_pred is None
    # no copy left behind: the paper's numbers appear in no other package file
    pkg = paths.ROOT / "chaosrnn_utils"
    for f in [*pkg.glob("*.py"), pkg / "systems.json"]:
        text = f.read_text()
        for literal in ("46.2", "0.01765", "0.00843", "0.893", "15.7", "0.0765"):
            assert literal not in text, (f.name, literal)
    # nor in the notebooks' code (their prose may quote the paper)
    for f in sorted((paths.ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        code = "\n".join(line.split("#")[0] for line in f.read_text().splitlines())
        for literal in ("46.2", "0.01765", "0.00843", "0.0765", "0.196", "0.016,", "0.017}",
                        "7.47", "15.4", "0.062"):
            assert literal not in code, (f.name, literal)
