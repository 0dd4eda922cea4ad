"""Data generation, embedding, cache and the authors' files; the project's generated paper
data sets against the authors' files."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch
from scipy.stats import wasserstein_distance

from chaosrnn_utils import data, paths
from chaosrnn_utils.data import (
    EMPIRICAL,
    PAPER_DATASETS,
    check_series,
    delay_embed,
    generate,
    load_empirical,
    paper_dataset,
    standardize,
    train_test_split,
)
from chaosrnn_utils.systems import get_system


def test_standardize_modes():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 3)) + [0, 5, -5]
    g = standardize(x, "global")
    assert g.mean() == pytest.approx(0, abs=1e-12) and g.std() == pytest.approx(1)
    assert abs(g.mean(0)[1] - g.mean(0)[2]) > 1  # per-dimension means are not 0
    p = standardize(x, "per_dim")
    np.testing.assert_allclose(p.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(p.std(0), 1)
    with pytest.raises(ValueError, match="unknown standardisation"):
        standardize(x, "minmax")


def test_delay_embedding_closed_form():
    x = np.arange(10.0)
    e = delay_embed(x, 3, 2)
    np.testing.assert_array_equal(e[0], [0, 2, 4])
    np.testing.assert_array_equal(e[-1], [5, 7, 9])
    assert e.shape == (6, 3)
    assert delay_embed(np.ones((10, 2)), 2, 3).shape == (7, 4)
    with pytest.raises(ValueError, match="too short"):
        delay_embed(x, 6, 3)


def test_train_test_split_is_contiguous():
    x = np.arange(100.0)[:, None]
    train, test = train_test_split(x, 0.25)
    assert train.shape == (75, 1) and test.shape == (25, 1) and test[0, 0] == 75
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(x, 1.5)


def test_check_series_rejects_nan_and_bad_shapes():
    with pytest.raises(ValueError, match="NaN or inf"):
        check_series(np.array([[1.0], [np.inf]]))
    with pytest.raises(ValueError, match="shape"):
        check_series(np.zeros((2, 2, 2)))


def test_generate_is_deterministic_cached_and_seeded(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path)
    a = generate("lorenz_standard", 500)
    assert len(list(tmp_path.glob("lorenz_standard-*.npy"))) == 1
    b = generate("lorenz_standard", 500)  # from the cache
    c = generate("lorenz_standard", 500, cache=False)  # recomputed
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c)
    assert not np.allclose(a, generate("lorenz_standard", 500, seed=1))
    noisy = generate("lorenz_standard", 500, noise=0.1)
    resid = standardize(noisy, "none") - a
    assert 0.03 < resid.std() < 0.2
    assert generate("lorenz_standard", 500, observed=(1, 2)).shape == (500, 2)
    with pytest.raises(ValueError, match="noise"):
        generate("lorenz_standard", 10, noise=-1)


def test_mackey_glass_dataset_is_embedded():
    x = paper_dataset("mackey_glass", 2000)
    assert x.shape == (2000, 6)
    lag = data.MACKEY_GLASS_EMBEDDING["lag"]
    np.testing.assert_array_equal(x[lag:, 0], x[:-lag, 1])
    with pytest.raises(KeyError, match="unknown data set"):
        paper_dataset("lorenz63")


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_empirical("eeg", tmp_path)
    msg = str(err.value)
    assert EMPIRICAL["eeg"].sha256 in msg and "github.com/DurstewitzLab/ChaosRNN" in msg


def test_wrong_checksum_and_shape_are_refused(tmp_path):
    f = tmp_path / EMPIRICAL["temperature"].filename
    np.save(f, np.zeros((10, 5)))
    with pytest.raises(ValueError, match="SHA-256"):
        load_empirical("temperature", tmp_path)
    with pytest.raises(ValueError, match="expected \\(5900, 5\\)"):
        load_empirical("temperature", f, verify=False)
    with pytest.raises(KeyError, match="unknown empirical"):
        load_empirical("ecg")


@pytest.mark.parametrize("name", ["eeg", "temperature"])
def test_authors_empirical_files_load(name, authors_file):
    authors_file(name)
    x = load_empirical(name)
    assert x.shape == EMPIRICAL[name].shape
    assert abs(x.mean()) < 0.05 and abs(x.std() - 1) < 0.1  # standardised


NPERSEG = 1024  # Welch segments: frequency resolution 1/1024 per step


def _spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f, p = welch(x, nperseg=NPERSEG)
    return f, p / p.sum()


def _peak_frequency(x: np.ndarray, f_min: float = 0.01) -> float:
    f, p = _spectrum(x)
    keep = f > f_min  # above Lorenz's broad lobe-switching band
    return float(f[keep][np.argmax(p[keep])])


N_BLOCKS = 10  # the jackknife's blocks: tenths of a series


def _jackknife(x: np.ndarray, mode: str) -> list[np.ndarray]:
    """The N_BLOCKS delete-one-block subsamples of ``x`` (n, d), each standardised again by
    ``mode`` (the system table's convention): the standardisation is part of the statistic.
    ``x`` is already standardised, and a z-score is invariant under the affine map that did
    it, so this equals standardising the subsample of the raw orbit."""
    blocks = np.array_split(np.arange(len(x)), N_BLOCKS)
    return [standardize(np.delete(x, b, axis=0), mode) for b in blocks]


def _standard_error(stat, subsamples: list[np.ndarray], d: int) -> float:
    """Standard error of ``stat`` of column ``d`` by the delete-one-block jackknife,
    SE² = (K−1)/K Σ_k (T_(k) − T̄)² over the K = N_BLOCKS subsamples (blocks much longer than
    the correlation time act as independent samples; K − 1 = 9 degrees of freedom). Batch
    means of the standardised columns would miss the error of the normaliser, one mean and
    std over the whole series: for Lorenz's std that is 3× too small (measured over 7 orbits:
    batch means 0.0005, spread over the orbits 0.0018, this jackknife 0.0026)."""
    values = np.array([stat(y[:, d]) for y in subsamples])
    return float(np.sqrt((N_BLOCKS - 1) / N_BLOCKS * np.sum((values - values.mean()) ** 2)))


def _block_w1(x: np.ndarray) -> float:
    """Mean Wasserstein-1 distance between a tenth of ``x`` and all of it: how far a sample
    of a tenth of the length strays from the series' own distribution."""
    return float(np.mean([wasserstein_distance(b, x) for b in np.array_split(x, N_BLOCKS)]))


def _hellinger2(a: np.ndarray, b: np.ndarray) -> float:
    """Squared Hellinger distance 1 − Σ √(p q) between the normalised Welch spectra."""
    (_, pa), (_, pb) = _spectrum(a), _spectrum(b)
    return max(0.0, 1.0 - float(np.sum(np.sqrt(pa * pb))))


def _quarter_hellinger2(x: np.ndarray) -> float:
    """Mean squared Hellinger distance between consecutive quarters of ``x`` (1st–2nd,
    3rd–4th): what sampling alone gives. A Welch estimate's variance scales as 1/length, so
    two whole series of independent orbits differ by about H²(quarters)/8 each side."""
    q = np.array_split(x, 4)
    return 0.5 * (_hellinger2(q[0], q[1]) + _hellinger2(q[2], q[3]))


#: combined standard errors allowed for a moment or quantile: with 9 + 9 degrees of freedom
#: the difference over its standard error is about t-distributed with ~18, and
#: P(|t₁₈| > 6) = 1.1e-5 per comparison, ≤ 6e-4 for the 54 of a run (union bound)
N_SE = 6


@pytest.mark.parametrize("name", ["lorenz", "roessler", "duffing"])
def test_generated_paper_data_match_authors_files(name, authors_file):
    """Per dimension: mean, std, the 0.1 %, 1 %, 99 % and 99.9 % quantiles, distribution
    (Wasserstein-1), dominant spectral peak and whole spectrum (Hellinger distance) of our
    generated set equal those of the authors' file.

    Both are finite samples of a chaotic orbit, and ours differs from machine to machine (a
    chaotic integration amplifies the last bits of the floating-point kernels into another
    sample of the same attractor), so every tolerance is a sampling error:

    - moments and quantiles within N_SE = 6 combined standard errors, each by the
      delete-one-block jackknife of the standardised series (:func:`_standard_error`): a
      false failure at most once in ~1e5 comparisons (t distribution, 18 degrees of
      freedom). The 0.1 % and 99.9 % quantiles stand for the extremes: a sample's minimum
      and maximum move with rare excursions and have no such error (the maximum of Lorenz's
      x differed by 0.26 std between two CPUs);
    - the distributions within twice the distance of a tenth of either series to the whole;
    - the spectral peak within 1.5 Welch bins (the frequency resolution);
    - the spectra: H² at most the sum of both series' squared distances between consecutive
      quarters, 8× the sampling H² a 1/length Welch variance predicts (:func:`_quarter_hellinger2`;
      measured on 7 Lorenz orbits: H² up to 2.1× that prediction, a quarter of the bound).
    """
    authors_file(name)
    ours, theirs = paper_dataset(name), load_empirical(name)
    assert ours.shape == theirs.shape
    mode = get_system(PAPER_DATASETS[name]["system"]).standardize
    jack_a, jack_b = _jackknife(ours, mode), _jackknife(theirs, mode)
    stats = {"mean": np.mean, "std": np.std,
             **{f"q{q:g}": (lambda v, q=q: np.quantile(v, q / 100)) for q in (0.1, 1, 99, 99.9)}}
    for d in range(ours.shape[1]):
        a, b = ours[:, d], theirs[:, d]
        for label, stat in stats.items():
            se = np.hypot(_standard_error(stat, jack_a, d), _standard_error(stat, jack_b, d))
            tol = N_SE * se + 1e-3 * b.std()  # the floor: a statistic that is flat over blocks
            assert abs(stat(a) - stat(b)) <= tol, (d, label, stat(a), stat(b), tol)
        assert wasserstein_distance(a, b) <= 2 * max(_block_w1(a), _block_w1(b)), d
        assert abs(_peak_frequency(a) - _peak_frequency(b)) <= 1.5 / NPERSEG
        h2, bound = _hellinger2(a, b), _quarter_hellinger2(a) + _quarter_hellinger2(b)
        assert h2 <= bound, (d, h2, bound)


def test_lorenz2d_is_columns_y_z(authors_file):
    authors_file("lorenz2d")
    authors_file("lorenz")
    np.testing.assert_array_equal(load_empirical("lorenz2d"), load_empirical("lorenz")[:, 1:])
    np.testing.assert_array_equal(paper_dataset("lorenz2d", 500),
                                  paper_dataset("lorenz", 500)[:, 1:])
