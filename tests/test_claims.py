"""The paper's claims checked on result tables (claims.py), on tables built by hand whose
answer is known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from builders import sweep_rows as _sweep  # noqa: E402

from chaosrnn_utils import claims, paths
from chaosrnn_utils import experiments as ex
from chaosrnn_utils.data import PAPER_DATASETS, find_empirical

THRESHOLD = 6.0
#: the failed range under each protocol in these tests (the real ones need a minute of free
#: runs per data set and protocol)
THRESHOLDS = {"heldout": THRESHOLD, "paper": 2.0}


def _fixed_thresholds(dataset, profile="quick", *, protocol="heldout"):
    return {"D_stsp": THRESHOLDS[protocol], "D_stsp_authors": THRESHOLDS[protocol]}


@pytest.fixture(autouse=True)
def _thresholds(monkeypatch):
    monkeypatch.setattr(ex, "failure_thresholds", _fixed_thresholds)




def test_tau_effect_holds_and_says_which_condition_fails():
    # Lorenz: τ_pred 46.2, so the best τ must lie in [11.55, 92.4]
    good = _sweep({5: [15, 14, 16], 30: [0.3, 14, 0.2], 100: [3, 4, 5], 200: [17, 16, 18],
                   "clip": [16, 17, 15]})
    e = claims.tau_effect(good, "lorenz", "lstm")
    assert e["holds"] and e["why"] == "" and e["best_tau"] == 30
    # the same runs on a data set that fails the sanity rule (committed references; needs
    # the authors' temperature file)
    if find_empirical(PAPER_DATASETS["temperature"]["empirical"]) is not None:
        e = claims.tau_effect(good.assign(dataset="temperature"), "temperature", "lstm")
        assert not e["holds"] and e["why"].startswith("temperature is not scorable")
    assert e["best_D_stsp"] == pytest.approx(0.3)  # the median: the stalled seed does not count
    assert e["worst_ratio"] == pytest.approx(15 / 0.3)
    # τ = 5 only 5× worse
    e = claims.tau_effect(_sweep({5: [1.5] * 3, 30: [0.3] * 3, 200: [17] * 3, "clip": [16] * 3}),
                          "lorenz", "lstm")
    assert not e["holds"] and e["why"].startswith("τ = 5: 1.5 less than 10×")
    # the best τ too far from τ_pred
    e = claims.tau_effect(_sweep({5: [15] * 3, 30: [3] * 3, 200: [0.2] * 3, "clip": [16] * 3}),
                          "lorenz", "lstm")
    assert not e["holds"] and "outside [11.6, 92.4]" in e["why"]
    # best cell in the failed range
    e = claims.tau_effect(_sweep({5: [90] * 3, 30: [7] * 3, 200: [80] * 3, "clip": [99] * 3}),
                          "lorenz", "lstm")
    assert not e["holds"] and "failed range" in e["why"]
    # good runs on a fixed point (λ_max < 0) are not the effect
    e = claims.tau_effect(_sweep({5: [15] * 3, 30: [0.3] * 3, 200: [17] * 3, "clip": [16] * 3},
                                 lam=-0.05), "lorenz", "lstm")
    assert not e["holds"] and "λ_max" in e["why"]
    # a baseline without any scored run counts as failed (+inf), not as missing
    diverged = _sweep({5: [15] * 3, 30: [0.3] * 3, 200: [17] * 3, "clip": [16] * 3})
    diverged.loc[diverged["mode"] == "bptt", "diverged"] = True
    e = claims.tau_effect(diverged, "lorenz", "lstm")
    assert e["holds"] and e["D_stsp at clipped BPTT"] == np.inf
    rows = claims.effect_rows(pd.DataFrame([e]).set_index("architecture"), "medium")
    assert rows[0]["match"] is True and "clipped BPTT all failed" in rows[0]["note"]


def test_tau_effect_under_the_papers_protocol_uses_its_columns_and_failed_range(monkeypatch,
                                                                               tmp_path):
    """The same runs scored under two protocols (``D_stsp_paper`` beside ``D_stsp``): the
    effect and the comparison rows of each come from its own columns and failed range, and
    say which protocol they are; both sets of rows reach the README's table side by side."""
    from chaosrnn_utils import comparison

    held = _sweep({5: [15] * 3, 30: [3.0, 2.5, 3.5], 200: [17] * 3, "clip": [16] * 3})
    whole = _sweep({5: [15] * 3, 30: [0.3, 0.25, 0.35], 200: [17] * 3, "clip": [16] * 3})
    t = held.assign(**{f"{k}_paper": whole[k] for k in ("D_stsp", "D_H", "frac_in_box")})
    view = ex.protocol_view(t, "paper")
    assert view["D_stsp"].tolist() == whole["D_stsp"].tolist()
    e_held = claims.tau_effect(t, "lorenz", "lstm")
    e_whole = claims.tau_effect(view, "lorenz", "lstm", protocol="paper")
    # held-out: the best median 3.0 is below 6 but 15/3 = 5 < 10×; whole series: 0.3 is
    # below 2 and 50× better
    assert not e_held["holds"] and e_held["why"].startswith("τ = 5: 15 less than 10×")
    assert e_whole["holds"] and e_whole["failed_above"] == THRESHOLDS["paper"]
    assert e_whole["best_D_stsp"] == pytest.approx(0.3)
    rows = {p: claims.effect_rows(pd.DataFrame([e]).set_index("architecture"), "medium")
            for p, e in (("heldout", e_held), ("paper", e_whole))}
    assert [r["protocol"] for r in rows["heldout"] + rows["paper"]] == ["heldout", "paper"]
    best = claims.best_tau_table(view, "lorenz")
    sweep_rows = claims.tau_sweep_rows(best, "lorenz", "medium", "",
                                       {"paper": 46.2, "data": 62.7}, protocol="paper")
    assert {r["protocol"] for r in sweep_rows} == {"paper"}
    assert all(r["failed_above"] == THRESHOLDS["paper"] for r in sweep_rows
               if "failed_above" in r)
    held_row, whole_row = rows["heldout"][0], rows["paper"][0]
    assert held_row["quantity"] == whole_row["quantity"]
    assert (held_row["reproduced"], whole_row["reproduced"]) == ("no", "holds")
    # a data set that fails the sanity rule under a protocol: its rows are "not scorable",
    # neither matches nor failures
    from chaosrnn_utils import pipeline
    monkeypatch.setattr(ex, "scorable", lambda dataset, protocol="heldout", profile="quick":
                        protocol != "paper")
    e_not = claims.tau_effect(view, "lorenz", "lstm", protocol="paper")
    assert not e_not["holds"] and e_not["why"].startswith("lorenz is not scorable under this "
                                                          "protocol (whole-series;")
    (row,) = claims.effect_rows(pd.DataFrame([e_not]).set_index("architecture"), "medium")
    assert row["reproduced"] == "not scorable" and pipeline._match(row) == "not scorable"
    assert claims.effect_table(pd.DataFrame([e_not]).set_index("architecture"))[
        "effect"].tolist() == ["not scorable"]
    scored_rows = [r for r in claims.tau_sweep_rows(best, "lorenz", "medium", "",
                                                    {"paper": 46.2, "data": 62.7},
                                                    protocol="paper") if "failed_above" in r]
    assert scored_rows and {pipeline._match(r) for r in scored_rows} == {"not scorable"}
    assert claims.effect_rows(pd.DataFrame([e_held]).set_index("architecture"),
                              "medium")[0]["reproduced"] == "no"  # held-out: scorable here
    # the same quantity under two protocols: two lines of the README's table, not one
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path)
    (tmp_path / "comparison_medium.json").write_text(json.dumps(
        [dict(r, notebook="06", convention="ours") for r in (held_row, whole_row)]))
    lines = [ln for ln in comparison.readme_table().splitlines()
             if held_row["quantity"] in ln]
    assert len(lines) == 2 and lines[0].endswith("| heldout |") \
        and lines[1].endswith("| paper |"), lines


def test_learning_curves_by_band_count_failures():
    epochs = []
    for epoch, scale in ((30, 10.0), (300, 1.0)):
        t = _sweep({5: [15, 16, 14], 30: [0.3 * scale, 0.4 * scale, 50], 200: [17, 18, 16],
                    "clip": [16, 16, 16]})
        epochs.append(t.assign(eval_epoch=epoch))
    lc = claims.learning_curves(pd.concat(epochs, ignore_index=True), "lorenz")
    near = lc[(lc["band"] == claims.BANDS[1]) & (lc["eval_epoch"] == 300)].iloc[0]
    assert near["D_stsp"] == pytest.approx(0.4) and near["taus"] == [30]
    assert near["n"] == 3 and near["n_failed"] == 1  # 50 ≥ threshold 6
    early = lc[(lc["band"] == claims.BANDS[1]) & (lc["eval_epoch"] == 30)].iloc[0]
    assert early["D_stsp"] == pytest.approx(4.0) and early["n_failed"] == 1
    assert list(lc["band"].unique()) == list(claims.BANDS)  # in band order
    best = lc[(lc["band"] == claims.BANDS[4]) & (lc["eval_epoch"] == 300)].iloc[0]
    assert best["taus"] == [30] and best["D_stsp"] == pytest.approx(0.4)
    assert [claims.tau_band(t, 46.2) for t in (5, 23.1, 92.4, 100)] == \
        [claims.BANDS[0], claims.BANDS[1], claims.BANDS[1], claims.BANDS[2]]


def test_attractor_seeds_prefer_scored_runs():
    t = _sweep({5: [3.0, 1.0, 2.0], 30: [0.5, 0.1, 0.2]})
    t.loc[(t["tau"] == 30) & (t["seed"] == 1), "frac_in_box"] = 0.2  # left the box
    assert claims.attractor_seeds(t, [5, 30]) == {5: 1, 30: 2}


def test_ablation_reference_is_the_median_of_plain_sparse_forcing():
    t = _sweep({30: [0.3, 0.2, 9.0]})
    spread = _sweep({30: [0.01, 0.01, 0.01]}).assign(tau_spread=10)
    assert claims.ablation_reference(pd.concat([t, spread]), 30) == (pytest.approx(0.3), 3)


def test_learning_curve_panel_draws_every_band_and_names_the_best_tau():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from chaosrnn_utils import plotting

    epochs = [_sweep({5: [15, 16, 14], 30: [0.3, 0.4, 50], 200: [17, 18, 16],
                      "clip": [16, 16, 16]}).assign(eval_epoch=e) for e in (30, 300)]
    lc = claims.learning_curves(pd.concat(epochs, ignore_index=True), "lorenz")
    fig, ax = plt.subplots()
    plotting.plot_learning_curves(ax, lc[lc["architecture"] == "lstm"], failed_above=THRESHOLD,
                                  title="lorenz, lstm")
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:5] == ["τ below τ_pred/2 (5)", "τ near τ_pred (30)", "τ above 2τ_pred (200)",
                          "clipped BPTT", "best τ at the end (30)"]
    assert ax.get_title() == "lorenz, lstm: best τ 30"
    plt.close(fig)


def test_rows_when_no_tau_was_mostly_scored_say_so(monkeypatch):
    from chaosrnn_utils import pipeline
    failed = _sweep({5: [15] * 3, 30: [14] * 3, 200: [17] * 3, "clip": [16] * 3})
    failed["diverged"] = True  # nothing scored anywhere
    best = claims.best_tau_table(failed, "lorenz")
    assert (best["best_tau"] == -1).all()
    rows = claims.tau_sweep_rows(best, "lorenz", "medium", "", {"paper": 46.2, "data": 62.7})
    tau_row = next(r for r in rows if r["quantity"] == "lorenz lstm: best τ (D_stsp)")
    assert tau_row["reproduced"] == claims.NONE_SCORED and tau_row["match"] is False
    assert pipeline._match(tau_row) == "no"
    dh_row = next(r for r in rows if r["quantity"] == "lorenz lstm: best D_H")
    assert dh_row["note"] == claims.NONE_SCORED
    e = claims.tau_effect(failed, "lorenz", "lstm")
    note = claims.effect_rows(pd.DataFrame([e]).set_index("architecture"), "medium")[0]["note"]
    assert note.startswith(f"best τ: {claims.NONE_SCORED}") and "-1" not in note
