"""The figures of the training notebooks show what happened: the failure counts they print are
``claims``' (not scored, or scored in the failed range), the failed range is drawn on every
score axis, the y range of a score does not depend on the data set, and the ablations come in
the numeric order of their conditions."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from builders import sweep_rows as _sweep  # noqa: E402

from chaosrnn_utils import claims, plotting
from chaosrnn_utils import experiments as ex

THRESHOLD = 6.0




@pytest.fixture
def sweep() -> pd.DataFrame:
    # τ = 5: all three in the failed range (scored); τ = 30: one diverged, one in the failed
    # range, one success; τ = 200: every run a success; clipping: two failed
    return _sweep({5: [15.0, 14.0, 16.0], 30: [0.3, 9.0, 0.2], 200: [1.0, 2.0, 3.0],
                   "clip": [16.0, 7.0, 0.5]}, diverged=((30, 2),))


def _labels(ax: plt.Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_failure_counts_are_claims_definition(sweep):
    agg = claims.with_failures(ex.aggregate(sweep), sweep, THRESHOLD)
    # by hand: not scored (diverged) or scored at or above the threshold
    expected = {"τ=5": 3, "τ=30": 2, "τ=200": 0, "BPTT clip 1": 2}
    got = dict(zip(agg["condition"], agg["n_failed"], strict=True))
    assert {k: got[k] for k in got if k.startswith("τ")} == \
        {k: v for k, v in expected.items() if k.startswith("τ")}
    assert sum(got.values()) == sum(expected.values())
    # the same count as claims.failed run by run, and as claims.learning_curves per band
    assert int(claims.failed(sweep, THRESHOLD).sum()) == sum(expected.values())
    lc = claims.learning_curves(sweep.assign(eval_epoch=300), "lorenz", failed_above=THRESHOLD)
    assert int(lc.loc[lc["band"] == "clipped BPTT", "n_failed"].iloc[0]) == 2


def test_tau_panel_prints_those_counts_and_draws_the_failed_range(sweep):
    agg = claims.with_failures(ex.aggregate(sweep), sweep, THRESHOLD)
    fig, ax = plt.subplots()
    plotting.plot_tau_sweep(ax, {"lstm": ex.tau_curve(agg, "lstm")}, "D_stsp",
                            clip=ex.clip_levels(agg), tau_pred={"paper": 46.0},
                            failed_above=THRESHOLD, legend=True)
    labels = _labels(ax)
    assert "3/3" in labels and "2/3" in labels  # τ = 5 and τ = 30, as counted above
    assert not any(t.startswith("0/") for t in labels)
    lines = [line for line in ax.get_lines() if line.get_gid() == "failed-range"]
    assert len(lines) == 1 and lines[0].get_ydata()[0] == pytest.approx(THRESHOLD)
    assert ax.get_yscale() == "log" and "time steps" in ax.get_xlabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("clipped BPTT" in t for t in legend) and any("hollow" in t for t in legend)
    assert any("failed range" in t for t in legend)
    plt.close(fig)


def test_score_axis_has_the_same_range_on_every_data_set(sweep):
    """Runs that all failed near one value must not be zoomed into: the limits are the
    metric's, widened only for values outside them."""
    flat = _sweep({5: [18.30, 18.31, 18.33], 30: [18.29, 18.32, 18.30]})
    ranges = []
    for table in (sweep, flat):
        agg = claims.with_failures(ex.aggregate(table), table, THRESHOLD)
        fig, ax = plt.subplots()
        plotting.plot_tau_sweep(ax, {"lstm": ex.tau_curve(agg, "lstm")}, "D_stsp",
                                failed_above=THRESHOLD)
        ranges.append(ax.get_ylim())
        plt.close(fig)
    assert ranges[0] == ranges[1] == plotting.SCORE_LIMITS["D_stsp"]
    assert plotting.score_limits("D_stsp", [200.0])[1] == pytest.approx(300.0)


def test_conditions_in_numeric_order_with_the_reference_and_the_paper():
    labels = ["TBPTT k=10", "TBPTT k=100", "TBPTT k=200", "TBPTT k=30", "TBPTT k=50",
              "clip norm 1", "clip norm 1000", "clip norm 10", "τ=30"]
    table = pd.DataFrame({"condition": labels, "group": [ex.condition_group(c) for c in labels],
                          "n": 3, "n_failed": [3] * 8 + [0]})
    ordered = plotting.order_conditions(table)
    assert list(ordered["condition"]) == [
        "TBPTT k=10", "TBPTT k=30", "TBPTT k=50", "TBPTT k=100", "TBPTT k=200",
        "clip norm 1", "clip norm 10", "clip norm 1000", "τ=30"]
    runs = {c: [15.0, 16.0, 17.0] for c in labels} | {"τ=30": [0.2, 0.3, 0.5]}
    fig, ax = plt.subplots()
    plotting.plot_conditions(ax, ordered, runs, "D_stsp", reference="τ=30",
                             failed_above=THRESHOLD, paper_ranges=claims.ablation_paper_ranges())
    assert [t.get_text() for t in ax.get_xticklabels()] == list(ordered["condition"])
    # the reference's median dashed across the panel, the failed range, the paper's boxes
    assert any(line.get_linestyle() == "--" and line.get_ydata()[0] == pytest.approx(0.3)
               for line in ax.get_lines())
    assert any(line.get_gid() == "failed-range" for line in ax.get_lines())
    assert len(ax.patches) >= 3  # truncated BPTT, clipping (norm), sparse forcing
    assert _labels(ax).count("3/3") == 8
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("authors' convention" in t for t in legend)
    plt.close(fig)


def test_paper_ranges_are_the_papers_numbers():
    r = claims.ablation_paper_ranges()
    assert r["clipping (norm)"] == (7, 13) and r["truncated BPTT"] == (9.8, 12.3)
    assert r["annealed τ"] == pytest.approx((0.077 - 0.063, 0.077 + 0.063))
    assert "random τ" not in r


def test_a_data_set_that_fails_the_sanity_rule_is_marked_not_scorable():
    """Temperature under the held-out protocol: its own training part, scored against its test
    part, lies in the failed range (committed references), so notebook 06 marks the panel
    with the sanity proxy and the threshold of ``experiments.sanity_check``, not a verdict."""
    check = ex.sanity_check(ex.dataset_references("temperature", "medium"), "D_stsp")
    assert not check["passes"] and check["proxy"] > check["threshold"]
    fig, ax = plt.subplots()
    plotting.mark_not_scorable(ax, "held-out", check["proxy"], check["threshold"])
    [text] = ax.texts
    assert "not scorable under the held-out protocol" in text.get_text()
    assert f"{check['proxy']:.3g}" in text.get_text()
    assert f"{check['threshold']:.3g}" in text.get_text()
    plt.close(fig)


def test_drawn_values_keep_six_significant_digits_and_hide_the_last_bits():
    """``plotting.drawn`` rounds to 6 significant digits (a relative 5e-6 at most), so two
    curves that differ only in their last bits (as on two CPUs) draw the same values."""
    rng = np.random.default_rng(0)
    v = rng.standard_normal(1000) * 10.0 ** rng.integers(-5, 5, 1000)
    d = plotting.drawn(v)
    assert np.all(np.abs(d - v) <= 5e-6 * np.abs(v))
    nudged = v * (1 + 4 * np.finfo(float).eps * rng.choice([-1, 1], v.size))
    assert np.mean(plotting.drawn(nudged) == d) > 0.999
    assert np.array_equal(plotting.drawn([0.0, np.inf, -np.inf]), [0.0, np.inf, -np.inf])
    assert np.isnan(plotting.drawn([np.nan])[0])
