"""Evaluation measures against independent references: closed-form KL divergences of
Gaussians, np.histogramdd, the normal CDF, a loop-based power spectrum, exact linear maps
iterated in numpy, direct model rollouts, and the values the paper authors' own evaluation
code returns on fixed arrays (../shared/golden, or $CHAOSRNN_GOLDEN_DIR)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.stats import norm

from chaosrnn_utils import paths
from chaosrnn_utils.jacobians import orbit_jacobians, rnn_lyapunov_spectrum
from chaosrnn_utils.metrics import (
    evaluate,
    generate_free_run,
    power_spectrum_distance,
    prediction_error,
    state_space_divergence_binned,
    state_space_divergence_gmm,
    state_space_histogram,
)
from chaosrnn_utils.models import PLRNN
from chaosrnn_utils.systems import get_system, integrate

F64 = torch.float64


@pytest.fixture(scope="module")
def gauss3() -> np.ndarray:
    """Correlated 3-D Gaussian sample with nonzero mean."""
    rng = np.random.default_rng(1)
    L = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-0.3, 0.2, 0.5]])
    return rng.standard_normal((50_000, 3)) @ L.T + np.array([1.0, -2.0, 0.5])


@pytest.fixture(scope="module")
def henon() -> np.ndarray:
    return integrate(get_system("henon"), 20_000)


def kl_gauss_1d(m0: float, s0: float, m1: float, s1: float) -> float:
    """KL(N(m0, s0²) ‖ N(m1, s1²))."""
    return np.log(s1 / s0) + (s0**2 + (m0 - m1) ** 2) / (2 * s1**2) - 0.5


# ----------------------------------------------------------------------------- binned D_stsp


@pytest.mark.parametrize("name", ["gauss3", "henon"])
def test_binned_identical_is_zero(name, request):
    x = request.getfixturevalue(name)
    for kw in ({}, {"centre": "zero"}, {"drop_first_bin": True}, {"n_bins": 30}):
        d, frac = state_space_divergence_binned(x, x.copy(), **kw)
        assert d == 0.0
        assert 0.2 < frac <= 1.0


@pytest.mark.parametrize("name", ["gauss3", "henon"])
def test_binned_grows_with_shift_and_scale(name, request):
    x = request.getfixturevalue(name)
    mu, sd = x.mean(0), x.std(0)
    shifted = [state_space_divergence_binned(x, x + k * sd)[0] for k in (0.1, 0.3, 0.6)]
    scaled = [state_space_divergence_binned(x, mu + k * (x - mu))[0] for k in (1.2, 1.5, 2.0)]
    for ds in (shifted, scaled):
        assert 0 < ds[0] < ds[1] < ds[2]


def test_binned_matches_gaussian_kl_1d():
    rng = np.random.default_rng(2)
    n = 1_000_000
    m1, s1 = 0.5, 1.2
    x = rng.standard_normal((n, 1))
    y = m1 + s1 * rng.standard_normal((n, 1))
    exact = kl_gauss_1d(0.0, 1.0, m1, s1)
    err = {
        nb: abs(state_space_divergence_binned(x, y, n_bins=nb, box_std=5.0)[0] - exact) / exact
        for nb in (10, 200)
    }
    assert err[200] < 0.05
    assert err[200] < err[10]


def test_binned_matches_gaussian_kl_2d():
    rng = np.random.default_rng(3)
    n = 1_000_000
    m, s = np.array([0.4, -0.3]), np.array([1.2, 0.9])
    x = rng.standard_normal((n, 2))
    y = m + s * rng.standard_normal((n, 2))
    exact = sum(kl_gauss_1d(0.0, 1.0, m[i], s[i]) for i in range(2))
    # 30² cells: finer grids leave many sparsely populated tail cells at 10⁶ samples, whose
    # plug-in log-ratios bias the estimate upwards (≈ +6 % at 60 bins)
    err = {
        nb: abs(state_space_divergence_binned(x, y, n_bins=nb, box_std=5.0)[0] - exact) / exact
        for nb in (8, 30)
    }
    assert err[30] < 0.05
    assert err[30] < err[8]


@pytest.mark.parametrize("drop", [False, True])
def test_histogram_matches_histogramdd(drop):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((20_000, 3)) * [1.0, 2.0, 0.5]
    lo, hi = np.array([-2.0, -3.0, -1.0]), np.array([2.0, 4.0, 1.0])
    nb, alpha = 7, 0.3
    p, n_counted = state_space_histogram(x, lo, hi, n_bins=nb, alpha=alpha, drop_first_bin=drop)
    edges = [np.linspace(lo[i], hi[i], nb + 1) for i in range(3)]
    ref, _ = np.histogramdd(x, bins=edges)
    if drop:
        ref = ref[1:, 1:, 1:]
    assert p.shape == ((nb - 1,) * 3 if drop else (nb,) * 3)
    assert n_counted == ref.sum()
    np.testing.assert_allclose(p, (ref + alpha) / (ref.sum() + alpha * ref.size), rtol=1e-12)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_drop_first_bin_only_first_bin_differs():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20_000, 1))
    lo = x.mean() - 2.0 * x.std()
    width = 4.0 * x.std() / 10
    y = x.copy()
    first = (y[:, 0] >= lo) & (y[:, 0] < lo + width)
    assert first.sum() > 50
    y[first] = lo - 1.0  # move the first bin's points out of the box
    d_keep, f_keep = state_space_divergence_binned(x, y)
    d_drop, f_drop = state_space_divergence_binned(x, y, drop_first_bin=True)
    assert d_keep > 0.0
    assert d_drop == 0.0
    inside = np.abs(x[:, 0] - x.mean()) <= 2.0 * x.std()
    assert f_keep == pytest.approx((inside.sum() - first.sum()) / len(y), abs=1e-12)
    assert f_drop == pytest.approx(f_keep, abs=1e-12)


def test_drop_first_bin_cell_count_in_smoothing():
    """True data in one kept cell, generated data in another: KL depends on K cells."""
    n, alpha = 1000, 1e-3
    # two clusters: the box (mean ± 2 std = [-2, 2] for clusters at ±1) has 4 bins of width
    # 1; the clusters sit in bins 0 and 3 (true) and bins 0 and 2 (generated)
    x = np.repeat([[-1.5], [1.5]], n, axis=0)
    y = np.repeat([[-1.5], [0.5]], n, axis=0)
    assert x.std() == 1.5
    d, _ = state_space_divergence_binned(
        x, y, n_bins=4, box_std=4 / 3, alpha=alpha, drop_first_bin=True
    )
    # kept cells: bins 1, 2, 3 (K = 3), each series has n points there (in bins 3 and 2)
    K, Z = 3, n + 3 * alpha
    p = np.array([alpha, alpha, n + alpha]) / Z
    q = np.array([alpha, n + alpha, alpha]) / Z
    assert d == pytest.approx(np.sum(p * np.log(p / q)), rel=1e-12)
    assert p.size == K


def test_centre_zero_vs_mean_and_fraction():
    rng = np.random.default_rng(6)
    x = 3.0 + rng.standard_normal((200_000, 1))
    y = 0.5 + rng.standard_normal((200_000, 1))
    m, s = x.mean(), x.std()
    tol = 4 * np.sqrt(0.25 / len(y))
    d_zero, f_zero = state_space_divergence_binned(x, y, centre="zero", box_std=2.0)
    d_mean, f_mean = state_space_divergence_binned(x, y, centre="mean", box_std=2.0)
    assert f_zero == pytest.approx(norm.cdf(2 * s - 0.5) - norm.cdf(-2 * s - 0.5), abs=tol)
    assert f_mean == pytest.approx(norm.cdf(m + 2 * s - 0.5) - norm.cdf(m - 2 * s - 0.5), abs=tol)
    assert f_zero > 0.8 > 0.4 > f_mean
    assert d_zero != pytest.approx(d_mean, rel=0.1)


def test_binned_bad_inputs(gauss3):
    y = gauss3.copy()
    y[10, 1] = np.nan
    assert np.isnan(state_space_divergence_binned(gauss3, y)[0])
    assert state_space_divergence_binned(gauss3, y)[1] == 0.0
    y = gauss3.copy()
    y[10, 1] = np.inf
    assert np.isnan(state_space_divergence_binned(gauss3, y)[0])
    far = gauss3 + 1e6
    d, frac = state_space_divergence_binned(gauss3, far)
    assert np.isnan(d) and frac == 0.0
    bad = gauss3.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        state_space_divergence_binned(bad, gauss3)
    with pytest.raises(ValueError, match="d <= 5"):
        x6 = np.random.default_rng(0).standard_normal((100, 6))
        state_space_divergence_binned(x6, x6)
    with pytest.raises(ValueError, match="centre"):
        state_space_divergence_binned(gauss3, gauss3, centre="median")
    with pytest.raises(ValueError, match="shape"):
        state_space_divergence_binned(gauss3, gauss3[:, :2])


# ----------------------------------------------------------------------------- GMM D_stsp


def test_gmm_identical_zero_and_shift():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3000, 8))
    assert abs(state_space_divergence_gmm(x, x.copy())) < 1e-9
    # the mixture of a series with every point doubled is the same mixture (T differs)
    assert abs(state_space_divergence_gmm(np.repeat(x, 2, axis=0), x, n_points=6000)) < 1e-9
    ds = [state_space_divergence_gmm(x, x + k, n_points=1000) for k in (0.1, 0.3, 0.6)]
    assert 0 < ds[0] < ds[1] < ds[2]
    # deterministic for a seed, different for another one
    a = state_space_divergence_gmm(x, x + 0.3, n_points=1000)
    assert a == ds[1]
    assert a != state_space_divergence_gmm(x, x + 0.3, n_points=1000, seed=1)


def test_gmm_single_point_closed_form():
    a = np.array([[0.0, 1.0, -0.5]])
    b = np.array([[0.3, 0.6, 0.0]])
    sigma2, n = 0.1, 200_000
    # single-point mixtures: KL(N(b, σ²I) ‖ N(a, σ²I)) = ‖a − b‖² / (2σ²); per-sample std
    # of the estimator is ‖a − b‖ / σ
    exact = np.sum((a - b) ** 2) / (2 * sigma2)
    se = np.sqrt(np.sum((a - b) ** 2) / sigma2 / n)
    d = state_space_divergence_gmm(
        np.repeat(a, 2, 0), np.repeat(b, 2, 0), n_points=1, sigma2=sigma2, n_samples=n
    )
    assert d == pytest.approx(exact, abs=4 * se)


def test_gmm_nan():
    x = np.random.default_rng(8).standard_normal((500, 6))
    y = x.copy()
    y[4, 4] = np.nan
    assert np.isnan(state_space_divergence_gmm(x, y))
    with pytest.raises(ValueError):
        state_space_divergence_gmm(y, x)


# ----------------------------------------------------------------------------- D_H


def reference_dh(x, y, n_chunks, sigma, n_freqs):
    """Loop-based D_H with the Bhattacharyya form H = sqrt(1 − Σ sqrt(pq))."""
    L = len(x) // n_chunks
    hs = []
    for j in range(x.shape[1]):
        specs = []
        for s in (x[:, j], y[:, j]):
            acc = 0.0
            for c in range(n_chunks):
                u = s[c * L : (c + 1) * L]
                u = (u - u.mean()) / u.std()
                acc = acc + np.abs(np.fft.fft(u)[: L // 2 + 1] / np.sqrt(L)) ** 2
            sp = gaussian_filter1d(acc / n_chunks, sigma)[:n_freqs]
            specs.append(sp / sp.sum())
        hs.append(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(specs[0] * specs[1])))))
    return np.mean(hs)


def test_dh_matches_reference():
    rng = np.random.default_rng(9)
    t = np.arange(10_037)
    x = np.stack([np.sin(2 * np.pi * t / 13), np.cos(2 * np.pi * t / 31)], 1)
    x = x + 0.5 * rng.standard_normal(x.shape)
    y = np.cumsum(rng.standard_normal(x.shape), axis=0) * 0.1 + x
    for kw in (
        {"n_chunks": 50, "smoothing_sigma": 2.0, "n_freqs": 500},
        {"n_chunks": 20, "smoothing_sigma": 1.0, "n_freqs": 60},
    ):
        d = power_spectrum_distance(x, y, **kw)
        ref = reference_dh(x, y, kw["n_chunks"], kw["smoothing_sigma"], kw["n_freqs"])
        assert 0.01 < d < 1
        assert d == pytest.approx(ref, rel=1e-6)


def test_dh_sinusoids():
    rng = np.random.default_rng(10)
    t = np.arange(50_000)[:, None]
    s20, s7 = np.sin(2 * np.pi * t / 20), np.sin(2 * np.pi * t / 7)
    assert power_spectrum_distance(s20, s20.copy()) < 1e-9
    assert power_spectrum_distance(s20, s7) > 0.9
    noisy = s20 + 0.3 * rng.standard_normal(s20.shape)
    d = power_spectrum_distance(s20, noisy)
    assert 0.0 < d < 0.3
    assert power_spectrum_distance(s20, s20 + 0.6 * rng.standard_normal(s20.shape)) > d


def test_dh_nan_and_constant():
    t = np.arange(5000)[:, None]
    x = np.sin(2 * np.pi * t / 20)
    y = x.copy()
    y[100] = np.nan
    assert np.isnan(power_spectrum_distance(x, y))
    assert power_spectrum_distance(x, np.zeros_like(x)) == 1.0
    with pytest.raises(ValueError):
        power_spectrum_distance(y, x)


# ----------------------------------------------------------------------------- authors' conventions


def test_binned_authors_matches_histogramdd(gauss3):
    """convention="authors": box 0 ± 2σ (ddof = 1), first bin dropped, smoothing normaliser
    n + α n_bins^d, against np.histogramdd."""
    y = 0.8 * gauss3[::-1] + 0.3
    alpha, nb = 1e-3, 8
    sd = gauss3.std(0, ddof=1)
    edges = [np.linspace(-2 * sd[i], 2 * sd[i], nb + 1) for i in range(3)]
    p, q = (np.histogramdd(z, bins=edges)[0][1:, 1:, 1:] for z in (gauss3, y))
    p, q = ((c + alpha) / (c.sum() + alpha * nb**3) for c in (p, q))
    d, frac = state_space_divergence_binned(gauss3, y, n_bins=nb, alpha=alpha,
                                            convention="authors")
    assert d == pytest.approx(np.sum(p * np.log(p / q)), rel=1e-12)
    n_gen = np.histogramdd(y, bins=edges)[0][1:, 1:, 1:].sum()
    assert frac == n_gen / len(y)
    explicit = state_space_divergence_binned(gauss3, y, n_bins=nb, alpha=alpha,
                                             centre="zero", drop_first_bin=True,
                                             convention="authors")
    assert explicit == (d, frac)
    assert state_space_divergence_binned(gauss3, gauss3, convention="authors")[0] == 0.0


def test_conventions_contradictions_raise(gauss3):
    with pytest.raises(ValueError, match="centre='mean' contradicts"):
        state_space_divergence_binned(gauss3, gauss3, centre="mean", convention="authors")
    with pytest.raises(ValueError, match="drop_first_bin=False contradicts"):
        state_space_divergence_binned(gauss3, gauss3, drop_first_bin=False,
                                      convention="authors")
    for f in (state_space_divergence_binned, power_spectrum_distance):
        with pytest.raises(ValueError, match="convention must be"):
            f(gauss3, gauss3, convention="paper")


def reference_dh_authors(x, y, n_chunks, sigma, n_freqs):
    """Loop-based D_H in the authors' conventions: spectra normalised to unit trapezoid area
    over all bins, smoothed by np.convolve with an explicit Gaussian kernel over ±5σ bins
    (zeros beyond the ends), cut to n_freqs, BC by the trapezoid rule, H = sqrt(1 − BC)."""
    L = len(x) // n_chunks
    r = int(5 * sigma + 0.5)
    kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    hs = []
    for j in range(x.shape[1]):
        specs = []
        for s in (x[:, j], y[:, j]):
            acc = 0.0
            for c in range(n_chunks):
                u = s[c * L : (c + 1) * L]
                u = (u - u.mean()) / u.std()
                acc = acc + np.abs(np.fft.fft(u)[: L // 2 + 1] / np.sqrt(L)) ** 2
            sp = acc / n_chunks
            sp = sp / np.trapezoid(sp)
            specs.append(np.convolve(sp, kernel)[r : r + len(sp)][:n_freqs])
        hs.append(np.sqrt(max(0.0, 1.0 - np.trapezoid(np.sqrt(specs[0] * specs[1])))))
    return np.mean(hs)


def test_dh_authors_matches_reference():
    rng = np.random.default_rng(15)
    t = np.arange(10_037)
    x = np.stack([np.sin(2 * np.pi * t / 13), np.cos(2 * np.pi * t / 31)], 1)
    x = x + 0.5 * rng.standard_normal(x.shape)
    y = np.cumsum(rng.standard_normal(x.shape), axis=0) * 0.1 + x
    for kw in (
        {"n_chunks": 50, "smoothing_sigma": 2.0, "n_freqs": 500},
        {"n_chunks": 10, "smoothing_sigma": 2.0, "n_freqs": 500},
        {"n_chunks": 20, "smoothing_sigma": 1.0, "n_freqs": 60},
    ):
        d = power_spectrum_distance(x, y, convention="authors", **kw)
        ref = reference_dh_authors(x, y, kw["n_chunks"], kw["smoothing_sigma"], kw["n_freqs"])
        assert 0.01 < d < 1
        assert d == pytest.approx(ref, rel=1e-10)


def test_dh_authors_floor_for_identical_spectra(henon):
    """A shifted or scaled copy has exactly the spectra of the original (every chunk is
    standardised): our D_H is 0 up to rounding, the authors' is a floor above 0, the mass
    lost to the trapezoid end weights, the zero padding and the cut."""
    for y in (henon.copy(), henon + 5.0, 0.3 * henon):
        assert power_spectrum_distance(henon, y) < 1e-12
        floor = power_spectrum_distance(henon, y, convention="authors")
        assert floor > 0.05
        assert floor == pytest.approx(
            power_spectrum_distance(henon, henon, convention="authors"), rel=1e-12
        )


def _golden_dir() -> Path:
    env = os.environ.get("CHAOSRNN_GOLDEN_DIR")
    return Path(env) if env else paths.ROOT.parent / "shared" / "golden"


GOLDEN_DIR = _golden_dir()
GOLDEN_FILES = ("authors_metrics.json", "metric_cases.npz")
GOLDEN_ABSENT = (f"golden metric values not found in {GOLDEN_DIR} (set CHAOSRNN_GOLDEN_DIR to "
                 "the folder holding authors_metrics.json and metric_cases.npz)")
if all((GOLDEN_DIR / f).is_file() for f in GOLDEN_FILES):
    GOLDEN = json.loads((GOLDEN_DIR / "authors_metrics.json").read_text())
    GOLDEN_CASES = list(GOLDEN)
else:
    GOLDEN = {}
    GOLDEN_CASES = [pytest.param("absent", marks=pytest.mark.skip(reason=GOLDEN_ABSENT))]


@pytest.fixture(scope="module")
def golden_arrays() -> dict[str, np.ndarray]:
    with np.load(GOLDEN_DIR / "metric_cases.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.mark.skipif(not GOLDEN, reason=GOLDEN_ABSENT)
def test_golden_cases_complete(golden_arrays):
    """Every generated series has golden values and vice versa."""
    assert set(golden_arrays) - {"true"} == set(GOLDEN)
    assert golden_arrays["true"].shape == (10_000, 3)


@pytest.mark.parametrize("n_bins", [30, 10])
@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_golden_dstsp_authors(case, n_bins, golden_arrays):
    """The authors' D_stsp (their code, float32 tensors) against ours with
    convention="authors", to float32 rounding.

    Both series are rounded to float32 first, as the authors' tensors were, so the box and the
    counts see the same numbers. Our arithmetic is float64 and theirs float32; the tolerance
    bounds the float32 rounding of their KL Σ_k t_k, t_k = p_k log(p_k / q_k), over the K
    kept cells (to first order, u = 2⁻²⁴, λ_k = |log p_k| + |log q_k|): p_k and q_k carry
    ≤ 4u relative error (sum, normaliser, division), so the log, as log(p/q) or as
    log p − log q, is off by ≤ u (9 + 2λ_k), and t_k = p_k · log by ≤ p_k u (9 + 7λ_k);
    a pairwise (tree) sum adds ⌈log₂ K⌉ u Σ|t_k|, and storing the result u |D|:
    tol = u (9 + 7 Σ_k p_k λ_k + ⌈log₂ K⌉ Σ_k |t_k| + |D|).
    It is below the effect of the authors' smoothing normaliser (n + α n_bins^d rather than
    n + α K, a relative 3e-6 at 30 bins) where the KL is large."""
    x = golden_arrays["true"].astype(np.float32)
    y = golden_arrays[case].astype(np.float32)
    expected = GOLDEN[case][f"dstsp_bins{n_bins}"]
    d, frac = state_space_divergence_binned(x, y, n_bins=n_bins, convention="authors")
    sd = x.astype(np.float64).std(0, ddof=1)
    p, _ = state_space_histogram(x, -2 * sd, 2 * sd, n_bins=n_bins, drop_first_bin=True)
    q, _ = state_space_histogram(y, -2 * sd, 2 * sd, n_bins=n_bins, drop_first_bin=True)
    lp, lq = np.abs(np.log(p)), np.abs(np.log(q))
    u = 2.0**-24
    tol = u * (9 + 7 * np.sum(p * (lp + lq)) + math.ceil(math.log2(p.size))
               * np.sum(np.abs(p * np.log(p / q))) + abs(expected))
    assert abs(d - expected) <= tol
    assert 0 < frac <= 1


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_golden_dh_authors(case, golden_arrays):
    """The authors' D_H (σ = 2, first 500 bins, both series as 10 segments of 1 000 steps)
    against ours with convention="authors" and n_chunks=10. Both sides compute in float64,
    so they agree to rounding (measured ≤ 2e-13 relative); 1e-9 leaves room for other FFT
    and summation orders."""
    x, y = golden_arrays["true"], golden_arrays[case]
    expected = GOLDEN[case]["dh_sigma2_cut500_seg1000"]
    d = power_spectrum_distance(x, y, n_chunks=10, smoothing_sigma=2.0, n_freqs=500,
                                convention="authors")
    assert d == pytest.approx(expected, rel=1e-9)


# ----------------------------------------------------------------------------- model runs


def linear_data(a: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    x = np.empty((n, a.size))
    x[0] = np.random.default_rng(seed).uniform(1.0, 2.0, a.size)
    for t in range(n - 1):
        x[t + 1] = a * x[t]
    return x


def linear_plrnn(A_rows: np.ndarray) -> PLRNN:
    E, M = A_rows.shape
    return PLRNN.from_parameters(
        A=A_rows, W=np.zeros((E, M, M)), h=np.zeros((E, M)), B=np.tile(np.eye(M), (E, 1, 1))
    )


def test_prediction_error_exact_and_wrong_model():
    a = np.array([0.99, -0.97, 1.01])
    delta = 0.01
    x = linear_data(a, 80)
    model = linear_plrnn(np.stack([a, a + delta]))
    n_steps = 25
    pe = prediction_error(model, x, n_steps=n_steps)
    assert pe.shape == (2, n_steps)
    assert np.all(pe[0] < 1e-20)
    # reference for the wrong member: x̂_{t+n} = (a + δ)^n x_t, from all t < T − n_steps
    starts = np.arange(len(x) - n_steps)
    ref = np.empty(n_steps)
    pred = x[starts].copy()
    for n in range(1, n_steps + 1):
        pred = pred * (a + delta)
        ref[n - 1] = np.mean((x[starts + n] - pred) ** 2)
    np.testing.assert_allclose(pe[1], ref, rtol=1e-10)
    assert np.all(np.diff(pe[1]) > 0)
    # batching and subsampling
    np.testing.assert_allclose(
        prediction_error(model, x, n_steps=n_steps, batch_size=7), pe, rtol=1e-13, atol=1e-30
    )
    np.testing.assert_array_equal(
        prediction_error(model, x, n_steps=n_steps, max_points=10_000), pe
    )
    sub = prediction_error(model, x, n_steps=n_steps, max_points=10)
    assert sub.shape == pe.shape and np.all(sub[0] < 1e-20) and not np.allclose(sub[1], pe[1])
    with pytest.raises(ValueError, match="too short"):
        prediction_error(model, x[:20], n_steps=n_steps)


def random_plrnn(dtype=F64) -> PLRNN:
    model = PLRNN(5, 3, n_models=2, seeds=[3, 4], dtype=dtype)
    with torch.no_grad():
        model.A.copy_(torch.full_like(model.A, 0.9))
    return model


@pytest.mark.parametrize("n_transient", [0, 5])
def test_generate_free_run_matches_rollout(n_transient):
    model = random_plrnn()
    x = np.random.default_rng(11).standard_normal((4, 3))
    n = 53
    with torch.no_grad():
        s0 = model.inferred_state(torch.as_tensor(x[:1]))
        ref = model.observe(model.rollout(s0, n + n_transient))[:, 0, n_transient:].numpy()
    for chunk in (7, 10, 53, 10_000):
        out = generate_free_run(model, x, n, n_transient=n_transient, chunk_size=chunk)
        assert out.shape == (2, n, 3) and out.dtype == np.float64
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-14)


def test_generate_free_run_float32():
    """A float32 model's free run against the same model in float64: each step's rounding
    error (at most (M + 3)·ε₃₂ of the state's size: an M-term dot product, bias, ReLU, the
    observation) is carried forward by the Jacobian products, so at step t the error is at
    most (M + 3)·ε·Σ_{k≤t} ∏_{k<j≤t} ||J_j|| times the state scale. Element-wise equality
    with the float32 rollout would test the last bits of one machine's kernels."""
    model = random_plrnn(torch.float32)
    x = np.random.default_rng(12).standard_normal((4, 3))
    n = 30
    out = generate_free_run(model, x, n, chunk_size=4)
    model.to(torch.float64)
    ref = generate_free_run(model, x.astype(np.float32).astype(np.float64), n)
    with torch.no_grad():
        s0 = model.inferred_state(torch.as_tensor(x[:1]))
        _, jac = orbit_jacobians(model, s0, n)
    log_norms = torch.linalg.matrix_norm(jac[:, 0], ord=2).log().cumsum(dim=1)  # (E, n)
    # growth[e, t] = Σ_{k ≤ t} exp(L_t − L_k): every earlier error carried to step t
    growth = torch.exp(log_norms[:, :, None] - log_norms[:, None, :]).tril().sum(dim=2)
    bound = (model.latent_dim + 3) * torch.finfo(torch.float32).eps * growth.numpy()
    scale = np.abs(ref).max(axis=(1, 2), keepdims=True)
    assert out.dtype == np.float64 and out.shape == ref.shape
    assert np.all(np.abs(out - ref) <= bound[:, :, None] * scale)
    assert np.any(out != ref)  # it did run in float32


def test_evaluate_matches_components():
    model = random_plrnn()
    rng = np.random.default_rng(14)
    t = np.arange(3000)[:, None]
    x = np.sin(2 * np.pi * t / [17, 23, 40]) + 0.1 * rng.standard_normal((3000, 3))
    res = evaluate(model, x, n_generate=2000, n_transient=10, n_chunks=10, n_freqs=100)
    assert len(res) == 2
    keys = {"member", "D_stsp", "D_stsp_method", "frac_in_box", "D_H", "PE1", "PE5", "PE25",
            "lambda_max", "D_stsp_authors", "frac_in_box_authors", "D_H_authors"}
    runs = generate_free_run(model, x, 2000, n_transient=10)
    pe = prediction_error(model, x, n_steps=25)
    for e, r in enumerate(res):
        assert set(r) == keys and r["member"] == e and r["D_stsp_method"] == "binned"
        d, f = state_space_divergence_binned(x, runs[e])
        np.testing.assert_equal([r["D_stsp"], r["frac_in_box"]], [d, f])
        dh = power_spectrum_distance(x, runs[e], n_chunks=10, n_freqs=100)
        np.testing.assert_equal(r["D_H"], dh)
        # the same free run in the authors' convention, beside
        d, f = state_space_divergence_binned(x, runs[e], convention="authors")
        np.testing.assert_equal([r["D_stsp_authors"], r["frac_in_box_authors"]], [d, f])
        dh = power_spectrum_distance(x, runs[e], n_chunks=10, n_freqs=100, convention="authors")
        np.testing.assert_equal(r["D_H_authors"], dh)
        np.testing.assert_equal([r["PE1"], r["PE5"], r["PE25"]], pe[e, [0, 4, 24]])
        assert np.isfinite(r["PE25"]) and r["PE25"] > 0
    with torch.no_grad():
        model.W[1] = float("nan")  # a diverged member: NaN scores, the other is unaffected
    res2 = evaluate(model, x, n_generate=2000, n_transient=10, n_chunks=10, n_freqs=100)
    assert np.isnan(res2[1]["lambda_max"]) and res2[0]["lambda_max"] == res[0]["lambda_max"]


def test_evaluate_convention():
    model = random_plrnn()
    rng = np.random.default_rng(16)
    t = np.arange(3000)[:, None]
    x = np.sin(2 * np.pi * t / [17, 23, 40]) + 0.1 * rng.standard_normal((3000, 3))
    kw = {"n_generate": 2000, "n_chunks": 10, "n_freqs": 100, "lyap_steps": 0}
    res = evaluate(model, x, convention="authors", **kw)
    runs = generate_free_run(model, x, 2000)
    for e, r in enumerate(res):
        d, f = state_space_divergence_binned(x, runs[e], convention="authors")
        np.testing.assert_equal([r["D_stsp"], r["frac_in_box"]], [d, f])
        dh = power_spectrum_distance(x, runs[e], n_chunks=10, n_freqs=100, convention="authors")
        np.testing.assert_equal(r["D_H"], dh)
        assert (r["D_stsp_authors"], r["D_H_authors"]) == (r["D_stsp"], r["D_H"])
    with pytest.raises(ValueError, match="contradicts"):
        evaluate(model, x, centre="mean", convention="authors", **kw)


def test_evaluate_gmm_branch():
    model = PLRNN(7, 6, n_models=1, seeds=[5], dtype=F64)
    x = np.random.default_rng(13).standard_normal((400, 6))
    (r,) = evaluate(model, x, n_generate=400, n_chunks=4, n_freqs=50)
    assert r["D_stsp_method"] == "gmm"
    assert np.isnan(r["frac_in_box"]) and np.isfinite(r["D_stsp"]) and np.isfinite(r["D_H"])
    assert r["D_stsp_authors"] == r["D_stsp"] and np.isnan(r["frac_in_box_authors"])


def test_evaluate_lambda_max_of_known_regimes():
    """``lambda_max`` of :func:`evaluate`: the closed form ln 0.85 of the fixed-point PLRNN,
    and on the chaotic PLRNN a 20 000-step QR run from another start. A finite-time estimate
    on a chaotic orbit moves with the machine's last bits, so the tolerance is its sampling
    error: 6 combined standard errors by batch means (10 blocks; the 8 000-step estimate's
    error is the reference's scaled by √(20 000/8 000)); P(|t₉| > 6) = 2e-4."""
    from chaosrnn_utils import regimes
    from chaosrnn_utils.lyapunov import spectrum_standard_error

    for make in (regimes.fixed_point_plrnn, regimes.chaotic_plrnn):
        reg = make()
        model = reg.model()  # B = I: observations are the latent states
        with torch.no_grad():
            x = model.rollout(reg.initial_state(), 3000)[0, 0].numpy()
        lam = evaluate(model, x, n_generate=200, lyap_steps=8000)[0]["lambda_max"]
        if make is regimes.fixed_point_plrnn:
            assert lam == pytest.approx(np.log(0.85), rel=1e-3)  # closed form: ln radius
            continue
        start = reg.initial_state() + 0.05  # another orbit on the same attractor
        ref, hist = rnn_lyapunov_spectrum(model, start, 20_000, n_exponents=1,
                                          return_history=True)
        se_ref = float(spectrum_standard_error(hist)[0, 0, 0])
        se = np.hypot(se_ref, se_ref * np.sqrt(20_000 / 8000))
        assert ref[0, 0, 0] > 6 * se_ref  # chaotic
        assert abs(lam - ref[0, 0, 0]) <= 6 * se, (lam, ref[0, 0, 0], se)
