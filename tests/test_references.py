"""The failed range's references (experiments.reference_scores / failure_threshold) against
closed forms and hand computations."""

import numpy as np
import pandas as pd
import pytest

from chaosrnn_utils import experiments as ex

ALPHA = 1e-5


@pytest.fixture(scope="module")
def data2d():
    """A correlated 2-D series whose mean sits inside a bin of the authors' box (centred at 0,
    first bin dropped), not on an edge."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4000, 2)) @ np.array([[1.0, 0.4], [0.0, 0.8]])
    return z + np.array([0.33, -0.21])


@pytest.fixture(scope="module")
def refs2d(data2d):
    return ex.reference_scores(data2d, n_generate=2000, latent_dim=8)


def test_references_rows_and_columns(refs2d):
    assert list(refs2d.index) == [*ex.REFERENCES, "data"]
    assert set(ex.REFERENCE_METRICS) <= set(refs2d.columns)


def test_fixed_point_binned_authors_against_closed_form(data2d, refs2d):
    """Authors' convention: box 0 ± 2σ (ddof 1), 10 bins, first bin of each axis dropped,
    smoothing normaliser over all 100 cells. The constant run fills one cell q_0 with all m
    points, so D = Σ p log p − Σ p log q with q_0 = (m + α)/(m + 100α), q_k = α/(m + 100α)."""
    x, m = data2d, 2000
    sd = x.std(axis=0, ddof=1)
    edges = [np.linspace(-2 * s, 2 * s, 11) for s in sd]
    counts = np.histogramdd(x, bins=edges)[0][1:, 1:]
    n = counts.sum()
    p = (counts + ALPHA) / (n + 100 * ALPHA)
    cell = tuple(int(np.searchsorted(e, v, side="right")) - 2 for e, v in zip(edges, x.mean(0),
                                                                            strict=True))
    q = np.full_like(p, ALPHA / (m + 100 * ALPHA))
    q[cell] = (m + ALPHA) / (m + 100 * ALPHA)
    expected = float(np.sum(p * (np.log(p) - np.log(q))))
    got = refs2d.loc["fixed point at the mean", "D_stsp_authors"]
    assert got == pytest.approx(expected, rel=1e-12)
    assert refs2d.loc["fixed point at the mean", "frac_in_box_authors"] == 1.0


def test_fixed_point_spectrum_and_data_against_itself(refs2d):
    # a constant series has no spectrum: Hellinger distance 1 in both conventions
    assert refs2d.loc["fixed point at the mean", "D_H"] == 1.0
    assert refs2d.loc["fixed point at the mean", "D_H_authors"] == 1.0
    # the data against itself: identical histograms (KL exactly 0), identical spectra (our
    # D_H 0 to rounding; the authors' keeps its floor above 0)
    assert refs2d.loc["data", "D_stsp"] == 0.0
    assert refs2d.loc["data", "D_stsp_authors"] == pytest.approx(0.0, abs=1e-12)
    assert refs2d.loc["data", "D_H"] == pytest.approx(0.0, abs=1e-7)
    assert refs2d.loc["data", "D_H_authors"] > 0.0


def test_white_noise_has_the_data_moments_and_scores_above_the_data(data2d, refs2d):
    runs = ex._reference_runs(data2d, 4000, 0, 8)
    noise = runs["white noise"]
    # sample mean and covariance within 5 standard errors of the data's
    se = np.sqrt(np.diag(np.cov(data2d, rowvar=False)) / noise.shape[0])
    assert np.all(np.abs(noise.mean(0) - data2d.mean(0)) < 5 * se)
    c_noise, c_data = np.cov(noise, rowvar=False), np.cov(data2d, rowvar=False)
    assert np.allclose(c_noise, c_data, atol=5 * np.sqrt(2 / noise.shape[0]) * c_data.max())
    # the 2-D Gaussian data: white noise with its moments is the same law, so its binned
    # D_stsp stays small, but it is above the data's own 0; its spectrum (flat) too
    for m in ("D_stsp", "D_stsp_authors"):
        assert refs2d.loc["data", m] < refs2d.loc["white noise", m] < 0.1
    # a constant and white noise are the untrained extremes: above the data's own score
    assert refs2d.loc["white noise", "D_H"] >= refs2d.loc["data", "D_H"]


def test_gmm_metric_for_high_dimensional_data():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.standard_normal((600, 6)), axis=0) * 0.1
    refs = ex.reference_scores(x, n_generate=600, latent_dim=6)
    assert "frac_in_box" not in refs.columns
    np.testing.assert_array_equal(refs["D_stsp"], refs["D_stsp_authors"])
    assert refs.loc["data", "D_stsp"] == pytest.approx(0.0, abs=1e-12)


def test_failure_threshold_rule():
    refs = pd.DataFrame(
        {"D_stsp": [9.0, 4.0, np.nan, 12.0, 0.7, 0.0],
         "frac_in_box": [0.9, 0.01, 0.0, 1.0, 0.9, 0.96],
         "D_H": [0.6, 0.5, 0.7, 1.0, 0.8, 0.0]},
        index=pd.Index([*ex.REFERENCES, "data"], name="reference"))
    # plrnn's 4.0 counted 1 % of its points (< ½ of the data's 96 %): left out; white noise
    # is no degenerate reference; FAILURE_FACTOR × min(9, 12)
    assert ex.FAILURE_FACTOR == 1 / 3
    assert ex.failure_threshold(refs, "D_stsp") == 9.0 / 3
    assert ex.failure_threshold(refs, "D_stsp", factor=1.0) == 9.0
    assert ex.failure_threshold(refs, "D_H") == 0.5 / 3
    # a floor above 0 (the authors' D_H): a third of the way from the floor to the reference
    floored = refs.assign(D_H=[0.6, 0.5, 0.7, 1.0, 0.8, 0.2])
    assert ex.failure_threshold(floored, "D_H") == pytest.approx(0.2 + (0.5 - 0.2) / 3,
                                                                  rel=1e-15)
    assert np.isnan(ex.failure_threshold(refs.assign(D_H=[0.6, 0.5, 0.7, 1.0, 0.8, 0.55]),
                                         "D_H"))
    with pytest.raises(KeyError, match="no metric"):
        ex.failure_threshold(refs, "D_stsp_gmm")
    assert np.isnan(ex.failure_threshold(refs.assign(D_H=np.nan), "D_H"))


def test_reference_scores_refuses_bad_input():
    with pytest.raises(ValueError, match=r"\(T, N\)"):
        ex.reference_scores(np.zeros(500))
