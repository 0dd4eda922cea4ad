"""The paper's evaluation measures: state-space divergence D_stsp, power-spectrum distance D_H
and the n-step prediction error PE(n), plus the free run they are computed on.

Statistics are numpy (float64); torch is only used to run the models (without gradients).
Shapes: series are (T, N) arrays (time × dimension); a model ensemble of E members yields
generated series (E, T, N) and prediction errors (E, n_steps).

Diverged models must remain scorable: a generated series with NaN/inf gives ``nan`` for
D_stsp and D_H instead of raising; bad *true* data raises ``ValueError``.

The binned D_stsp and D_H take ``convention="ours"`` (default) or ``"authors"``: the latter
reproduces the paper's evaluation code, quirks included (docs/paper-notes.md § Metrics;
checked against the values of their code in ../shared/golden), so that numbers compare with
the paper's.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.special import logsumexp

from .data import check_series
from .jacobians import rnn_lyapunov_spectrum
from .models import EnsembleRNN
from .validate import check_positive_int

__all__ = [
    "GMM_LAYOUTS",
    "MAX_BINNED_DIM",
    "PROTOCOLS",
    "evaluate",
    "generate_free_run",
    "power_spectrum_distance",
    "prediction_error",
    "protocol_target",
    "sanity_proxy",
    "score_run",
    "state_space_divergence_binned",
    "state_space_divergence_gmm",
    "state_space_histogram",
]

Array = np.ndarray
#: "ours": the project's metric definitions; "authors": those of the paper's evaluation code
Convention = Literal["ours", "authors"]
#: largest dimension for the binned D_stsp (n_bins**d cells); above it use the GMM variant
MAX_BINNED_DIM = 5
#: how the GMM D_stsp picks its points: "strided" (ours: evenly over both whole series) or
#: "authors" (the paper's klz: the first n_points rows of each, zero-likelihood samples dropped)
GmmLayout = Literal["strided", "authors"]
GMM_LAYOUTS = ("strided", "authors")
#: the evaluation protocols (docs/paper-notes.md § Protocols): "heldout" trains on the first
#: 80 % of a series and scores the free run from B⁺x of the test split's first row against the
#: last 20 % (ours, the stricter check); "paper" scores against the whole series, the free run
#: from B⁺x_1 of the whole series, the GMM D_stsp in the authors' layout (as the paper does)
Protocol = Literal["heldout", "paper"]
PROTOCOLS = ("heldout", "paper")
#: the GMM layout each protocol scores with
PROTOCOL_GMM_LAYOUT: dict[str, str] = {"heldout": "strided", "paper": "authors"}


# ----------------------------------------------------------------------------- helpers


def _gen_series(x_gen: Any, n_dims: int) -> Array | None:
    """x_gen as float64 (n, n_dims); ``None`` when it holds NaN/inf (diverged model)."""
    x = np.asarray(x_gen, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != n_dims:
        raise ValueError(f"x_gen must have shape (n, {n_dims}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        return None
    return x


# ----------------------------------------------------------------------------- D_stsp, binned


def state_space_histogram(
    x: Array,
    lo: Array,
    hi: Array,
    *,
    n_bins: int = 10,
    alpha: float = 1e-5,
    drop_first_bin: bool = False,
) -> tuple[Array, int]:
    """Laplace-smoothed d-dimensional histogram of ``x`` (n, d) on the box [lo, hi] (d,).

    Each axis is cut into ``n_bins`` equal bins (half-open, the last one closed, like
    ``np.histogramdd``); points outside the box are discarded. With ``drop_first_bin`` every
    cell with index 0 along any axis is discarded too, leaving K = (n_bins − 1)^d cells
    (K = n_bins^d otherwise). Returns p = (counts + α) / (n_counted + α K), an array of shape
    (n_bins | n_bins − 1,)·d summing to 1, and n_counted (points in the kept cells).
    """
    x = np.asarray(x, dtype=np.float64)
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    d = x.shape[1]
    if not np.all(hi > lo):
        raise ValueError(f"box must have hi > lo in every dimension, got lo={lo}, hi={hi}")
    first = 1 if drop_first_bin else 0
    rel = (x - lo) / (hi - lo) * n_bins  # bin coordinate: bin k holds k <= rel < k + 1
    keep = np.all((rel >= first) & (rel <= n_bins), axis=1)
    # the right edge (rel == n_bins) belongs to the last bin
    idx = np.minimum(np.floor(rel[keep]).astype(np.int64), n_bins - 1) - first
    n_kept_bins = n_bins - first
    flat = np.ravel_multi_index(tuple(idx.T), (n_kept_bins,) * d)
    counts = np.bincount(flat, minlength=n_kept_bins**d).astype(np.float64)
    n_counted = int(keep.sum())
    p = (counts + alpha) / (n_counted + alpha * counts.size)
    return p.reshape((n_kept_bins,) * d), n_counted


def _check_convention(convention: Any) -> None:
    if convention not in ("ours", "authors"):
        raise ValueError(f"convention must be 'ours' or 'authors', got {convention!r}")


def state_space_divergence_binned(
    x_true: Array,
    x_gen: Array,
    *,
    n_bins: int = 10,
    box_std: float = 2.0,
    alpha: float = 1e-5,
    centre: Literal["mean", "zero"] | None = None,
    drop_first_bin: bool | None = None,
    convention: Convention = "ours",
) -> tuple[float, float]:
    """D_stsp = KL(p_true ‖ p_gen) = Σ_k p_true,k log(p_true,k / p_gen,k) of binned densities.

    x_true (n, d), x_gen (m, d), d ≤ 5. The box is c ± box_std·σ per dimension, σ the std of
    x_true and c its mean (``centre="mean"``) or 0 (``centre="zero"``), cut into ``n_bins``
    bins per axis; see :func:`state_space_histogram` for the smoothing
    p_k = (counts_k + α) / (n_counted + α K) over the K kept cells and for
    ``drop_first_bin``.

    ``convention="ours"`` (default): c = mean, all bins kept, σ with ddof = 0, Σ_k p_k = 1;
    ``centre`` and ``drop_first_bin`` may be set freely. ``convention="authors"`` reproduces
    the paper's evaluation code: c = 0, first bin of every axis dropped, σ with ddof = 1, and
    the smoothing normaliser counts all n_bins^d cells, p_k = (counts_k + α) / (n_counted +
    α n_bins^d) on the (n_bins − 1)^d kept cells (so Σ p slightly < 1; a relative change of
    ≈ α(n_bins^d − (n_bins − 1)^d) / n_counted, 3e-6 at 30 bins). With it, ``centre`` other
    than "zero" or ``drop_first_bin=False`` raises ValueError.

    Returns (D_stsp, fraction of generated points counted in the histogram, i.e. inside the
    box and outside any dropped first bin). Non-finite x_gen, or no generated point counted,
    gives (nan, 0.0).
    """
    _check_convention(convention)
    authors = convention == "authors"
    if authors and centre not in (None, "zero"):
        raise ValueError(f"convention='authors' centres the box at 0: centre={centre!r} "
                         "contradicts it (leave centre unset)")
    if authors and drop_first_bin is False:
        raise ValueError("convention='authors' drops the first bin: drop_first_bin=False "
                         "contradicts it (leave drop_first_bin unset)")
    if centre is None:
        centre = "zero" if authors else "mean"
    drop_first_bin = authors if drop_first_bin is None else bool(drop_first_bin)
    x_true = check_series(x_true, name="x_true")
    d = x_true.shape[1]
    if d > MAX_BINNED_DIM:
        raise ValueError(
            f"binned D_stsp needs d <= {MAX_BINNED_DIM} (n_bins**d cells), got d = {d}; "
            "use state_space_divergence_gmm for high-dimensional data"
        )
    n_bins = check_positive_int(n_bins, "n_bins")
    if drop_first_bin and n_bins < 2:
        raise ValueError("drop_first_bin needs n_bins >= 2")
    if not box_std > 0:
        raise ValueError(f"box_std must be positive, got {box_std}")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    if centre == "mean":
        c = x_true.mean(axis=0)
    elif centre == "zero":
        c = np.zeros(d)
    else:
        raise ValueError(f"centre must be 'mean' or 'zero', got {centre!r}")
    sd = x_true.std(axis=0, ddof=1 if authors else 0)
    if np.any(sd == 0):
        raise ValueError("x_true has a constant dimension (zero std): the box is empty")
    lo, hi = c - box_std * sd, c + box_std * sd
    x_gen = _gen_series(x_gen, d)
    if x_gen is None:
        return float("nan"), 0.0
    opts = {"n_bins": n_bins, "alpha": alpha, "drop_first_bin": drop_first_bin}
    p, n_true = state_space_histogram(x_true, lo, hi, **opts)
    if n_true == 0:
        raise ValueError("no point of x_true falls inside the box (check centre / box_std)")
    q, n_gen = state_space_histogram(x_gen, lo, hi, **opts)
    if n_gen == 0:
        return float("nan"), 0.0
    if authors:  # renormalise from n + α K_kept to n + α n_bins^d
        k_all = float(n_bins) ** d
        p = p * ((n_true + alpha * p.size) / (n_true + alpha * k_all))
        q = q * ((n_gen + alpha * q.size) / (n_gen + alpha * k_all))
    kl = float(np.sum(p * (np.log(p) - np.log(q))))
    return kl, n_gen / x_gen.shape[0]


# ----------------------------------------------------------------------------- D_stsp, GMM


def _strided(x: Array, n_points: int) -> Array:
    """min(n, n_points) points of x (n, d), evenly strided over the whole series."""
    n = x.shape[0]
    if n <= n_points:
        return x
    return x[np.round(np.linspace(0, n - 1, n_points)).astype(np.int64)]


def _log_mixture(s: Array, centres: Array, sigma2: float,
                 chunk: int = 2**22) -> tuple[Array, Array]:
    """log p(s) up to the constant −(d/2) log(2πσ²) for p = (1/T) Σ_i N(centres_i, σ² I),
    and the largest exponent max_i −‖s − c_i‖²/(2σ²) (for the float32 underflow test).

    s (n, d), centres (T, d) → two (n,) arrays; squared distances via ‖s‖² + ‖c‖² − 2 s·c,
    in chunks of at most ``chunk`` (sample, centre) pairs."""
    c2 = np.sum(centres**2, axis=1)
    rows = max(1, chunk // centres.shape[0])
    out, top = np.empty(s.shape[0]), np.empty(s.shape[0])
    for i in range(0, s.shape[0], rows):
        si = s[i : i + rows]
        d2 = np.sum(si**2, axis=1)[:, None] + c2[None] - 2.0 * si @ centres.T
        expo = -np.maximum(d2, 0.0) / (2.0 * sigma2)
        out[i : i + rows] = logsumexp(expo, axis=1)
        top[i : i + rows] = expo.max(axis=1)
    return out - np.log(centres.shape[0]), top


#: log of the smallest positive float32 (2^-149): a density below it is 0 in float32
_LOG_FLOAT32_TINY = -149.0 * np.log(2.0)


def _check_layout(layout: Any) -> None:
    if layout not in GMM_LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(GMM_LAYOUTS)}, got {layout!r}")


def state_space_divergence_gmm(
    x_true: Array,
    x_gen: Array,
    *,
    n_points: int = 5000,
    sigma2: float = 0.1,
    n_samples: int = 1000,
    seed: int = 0,
    layout: GmmLayout = "strided",
    return_dropped: bool = False,
) -> float | tuple[float, float]:
    """D_stsp for high-dimensional data: KL(p_gen ‖ p_true) of Gaussian mixtures.

    p = (1/T) Σ_t N(x_t, σ² I) over T = min(n, n_points) points of each series. Monte Carlo
    with ``n_samples`` draws s ~ p_gen (``np.random.default_rng(seed)``):
    D ≈ mean_s [log p_gen(s) − log p_true(s)], log-densities by logsumexp in float64.

    ``layout="strided"`` (ours): the points are taken evenly strided over the whole series
    (``np.linspace`` indices, first and last included), every sample counts.
    ``layout="authors"`` (the paper's ``klz``): the *first* T rows of each series, and a
    sample at which p_true underflows float32 (every term (2πσ²)^(−d/2) e^(−‖s−x_t‖²/2σ²)
    below the smallest float32, 2^−149: their float32 evaluation gives it likelihood 0) is
    dropped as their code drops its "outliers"; nan when every sample is dropped.

    Non-finite x_gen gives nan. ``return_dropped``: return (D, fraction of samples dropped).
    """
    x_true = check_series(x_true, name="x_true")
    n_points = check_positive_int(n_points, "n_points")
    n_samples = check_positive_int(n_samples, "n_samples")
    _check_layout(layout)
    if not sigma2 > 0:
        raise ValueError(f"sigma2 must be positive, got {sigma2}")
    x_gen = _gen_series(x_gen, x_true.shape[1])
    if x_gen is None:
        return (float("nan"), float("nan")) if return_dropped else float("nan")
    if layout == "authors":
        mu_true, mu_gen = x_true[:n_points], x_gen[:n_points]
    else:
        mu_true, mu_gen = _strided(x_true, n_points), _strided(x_gen, n_points)
    d = x_true.shape[1]
    rng = np.random.default_rng(seed)
    comp = rng.integers(0, mu_gen.shape[0], size=n_samples)
    s = mu_gen[comp] + np.sqrt(sigma2) * rng.standard_normal((n_samples, d))
    log_gen, _ = _log_mixture(s, mu_gen, sigma2)
    log_true, top = _log_mixture(s, mu_true, sigma2)
    keep = np.ones(n_samples, dtype=bool)
    if layout == "authors":
        keep = top - 0.5 * d * np.log(2.0 * np.pi * sigma2) >= _LOG_FLOAT32_TINY
    value = float(np.mean((log_gen - log_true)[keep])) if keep.any() else float("nan")
    return (value, 1.0 - keep.mean()) if return_dropped else value


# ----------------------------------------------------------------------------- D_H


def _spectra(
    x: Array, n_chunks: int, smoothing_sigma: float, n_freqs: int, authors: bool = False
) -> Array:
    """Chunk-averaged, smoothed, truncated power spectra of x (n, d) → (d, F).

    Ours: unnormalised, smoothed in "reflect" mode (scipy's default, truncated at 4σ).
    Authors': normalised to unit trapezoid area over all L//2 + 1 bins, then smoothed with a
    zero-padded convolution (kernel truncated at 5σ, i.e. ±10 bins for σ = 2).
    A chunk dimension with zero variance contributes a zero spectrum."""
    L = x.shape[0] // n_chunks
    chunks = x[: n_chunks * L].reshape(n_chunks, L, x.shape[1])
    centred = chunks - chunks.mean(axis=1, keepdims=True)
    sd = centred.std(axis=1, keepdims=True)
    z = np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)
    power = np.abs(np.fft.rfft(z, axis=1, norm="ortho")) ** 2  # (n_chunks, F_all, d)
    spec = power.mean(axis=0).T  # (d, F_all)
    if authors:
        area = np.trapezoid(spec, axis=1)[:, None]
        spec = np.divide(spec, area, out=np.zeros_like(spec), where=area > 0)
        if smoothing_sigma > 0:
            spec = gaussian_filter1d(spec, smoothing_sigma, axis=1, mode="constant", cval=0.0,
                                     truncate=5.0)
    elif smoothing_sigma > 0:
        spec = gaussian_filter1d(spec, smoothing_sigma, axis=1)
    return spec[:, :n_freqs]


def power_spectrum_distance(
    x_true: Array,
    x_gen: Array,
    *,
    n_chunks: int = 50,
    smoothing_sigma: float = 2.0,
    n_freqs: int = 500,
    convention: Convention = "ours",
) -> float:
    """D_H: Hellinger distance of normalised power spectra, averaged over dimensions.

    Both series are first cut to the shorter length (so the frequency grids agree), then
    into ``n_chunks`` chunks of L = n // n_chunks steps, the last n mod n_chunks steps
    dropped (the authors' code reshapes the series into the chunks and raises where n is not
    a multiple of n_chunks, e.g. the 9 259 rows of the EEG file in 50 chunks); e.g. 10 000 steps
    with ``n_chunks=10`` are 10 segments of 1 000 steps, the (10, 1000, d) layout of the
    authors' batched input. Per chunk and dimension: standardise, |rfft|² (norm="ortho");
    average over chunks → S_f, f = 0…L//2. Then, per convention:

    - ``"ours"`` (default): smooth S with a Gaussian of σ = ``smoothing_sigma`` bins
      (``gaussian_filter1d``, mode "reflect"), keep the first ``n_freqs`` bins, normalise to
      p, q with Σ = 1; H = sqrt(1 − Σ_f sqrt(p_f q_f)), computed as
      sqrt(½ Σ_f (√p_f − √q_f)²) (identical for normalised p, q, and exactly 0 for p = q).
    - ``"authors"`` (the paper's evaluation code): normalise S over *all* its bins to unit
      trapezoid area (end bins weighted ½), smooth with a zero-padded Gaussian convolution
      (kernel ±5σ), keep the first ``n_freqs`` bins without renormalising, and
      H = sqrt(max(0, 1 − BC)) with BC the trapezoid rule Σ'_f sqrt(p_f q_f) (end bins
      weighted ½, like ``np.trapezoid``). The mass cut off, leaked by the padding and halved
      at the ends makes BC < 1 for p = q: H has a floor above 0 for identical spectra (e.g.
      a shifted or scaled copy), about 0.026 for 10 chunks of a Rössler series.

    A dimension whose generated (or true) spectrum is all zero (constant series) has H = 1.
    Non-finite x_gen gives nan.
    """
    _check_convention(convention)
    x_true = check_series(x_true, name="x_true")
    n_chunks = check_positive_int(n_chunks, "n_chunks")
    n_freqs = check_positive_int(n_freqs, "n_freqs")
    if smoothing_sigma < 0:
        raise ValueError(f"smoothing_sigma must be non-negative, got {smoothing_sigma}")
    x_gen = _gen_series(x_gen, x_true.shape[1])
    if x_gen is None:
        return float("nan")
    n = min(x_true.shape[0], x_gen.shape[0])
    if n // n_chunks < 2:
        raise ValueError(f"series of length {n} too short for n_chunks = {n_chunks}")
    authors = convention == "authors"
    p = _spectra(x_true[:n], n_chunks, smoothing_sigma, n_freqs, authors)
    q = _spectra(x_gen[:n], n_chunks, smoothing_sigma, n_freqs, authors)
    sp, sq = p.sum(axis=1), q.sum(axis=1)
    ok = (sp > 0) & (sq > 0)
    h = np.ones(p.shape[0])
    if authors:
        bc = np.trapezoid(np.sqrt(p[ok] * q[ok]), axis=1)
        h[ok] = np.sqrt(np.clip(1.0 - bc, 0.0, 1.0))
    else:
        rp = np.sqrt(p[ok] / sp[ok, None])
        rq = np.sqrt(q[ok] / sq[ok, None])
        h[ok] = np.sqrt(np.clip(0.5 * np.sum((rp - rq) ** 2, axis=1), 0.0, 1.0))
    return float(h.mean())


# ----------------------------------------------------------------------------- model runs


def _model_series(model: EnsembleRNN, x: Array) -> Array:
    x = check_series(x, name="x")
    if x.shape[1] != model.obs_dim:
        raise ValueError(f"x must have {model.obs_dim} columns (obs_dim), got {x.shape}")
    return x


def prediction_error(
    model: EnsembleRNN,
    x: Array,
    *,
    n_steps: int = 25,
    max_points: int | None = None,
    batch_size: int = 4096,
) -> Array:
    """n-step prediction error PE(n), n = 1..n_steps, of every member: (E, n_steps).

    From each start t with t + n_steps < T (x is (T, N); optionally ``max_points`` starts
    evenly spaced over them), z_t = B⁺ x_t (``inferred_state``), z_{t+n} = F^n(z_t) freely,
    PE(n) = mean over t and dimensions of (x_{t+n} − B z_{t+n})². Starts are batched
    (``batch_size`` at a time) without gradients; errors are accumulated in float64.
    """
    x = _model_series(model, x)
    n_steps = check_positive_int(n_steps, "n_steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    n_start = x.shape[0] - n_steps
    if n_start < 1:
        raise ValueError(f"series of length {x.shape[0]} too short for n_steps = {n_steps}")
    starts = np.arange(n_start)
    if max_points is not None:
        max_points = check_positive_int(max_points, "max_points")
        if max_points < n_start:
            starts = np.unique(np.round(np.linspace(0, n_start - 1, max_points)).astype(int))
    offsets = np.arange(1, n_steps + 1)
    total = np.zeros((model.n_models, n_steps))
    with torch.no_grad():
        for i in range(0, starts.size, batch_size):
            st = starts[i : i + batch_size]
            s0 = model.inferred_state(torch.as_tensor(x[st]))
            pred = model.observe(model.rollout(s0, n_steps))  # (E, b, n_steps, N)
            pred = pred.detach().cpu().numpy().astype(np.float64)
            target = x[st[:, None] + offsets]  # (b, n_steps, N)
            total += np.sum((pred - target[None]) ** 2, axis=(1, 3))
    return total / (starts.size * x.shape[1])


def generate_free_run(
    model: EnsembleRNN,
    x: Array,
    n_steps: int,
    *,
    n_transient: int = 0,
    chunk_size: int = 10_000,
) -> Array:
    """Free-running observations of every member, (E, n_steps, N) float64.

    z_1 = B⁺ x_1 from the first row of x (T, N); the run is x̂_k = B F^k(z_1) for
    k = n_transient + 1, …, n_transient + n_steps (the first ``n_transient`` steps are
    dropped; the start x_1 itself is not included, as in ``model.rollout``). Rolled out in
    chunks of ``chunk_size`` steps, each continuing from the last state, without gradients.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != model.obs_dim:
        raise ValueError(f"x must have shape (T, {model.obs_dim}), got {x.shape}")
    if not np.all(np.isfinite(x[0])):
        raise ValueError("the first data point x_1 has NaN or inf entries")
    n_steps = check_positive_int(n_steps, "n_steps")
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    if isinstance(n_transient, bool) or int(n_transient) != n_transient or n_transient < 0:
        raise ValueError(f"n_transient must be a non-negative integer, got {n_transient!r}")
    n_transient = int(n_transient)
    out = np.empty((model.n_models, n_steps, model.obs_dim))
    with torch.no_grad():
        s = model.inferred_state(torch.as_tensor(x[:1]))  # (E, 1, S)
        done = -n_transient  # index in `out` of the next step
        while done < n_steps:
            k = min(chunk_size, n_steps - done)
            states = model.rollout(s, k)  # (E, 1, k, S)
            s = states[:, :, -1]
            lo = max(done, 0)
            if done + k > 0:
                obs = model.observe(states[:, :, lo - done :])[:, 0]
                out[:, lo : done + k] = obs.detach().cpu().numpy()
            done += k
    return out


def _authors_binned(x_true: Array, x_gen: Array, **kw: Any) -> tuple[float, float]:
    """The binned D_stsp in the authors' convention, or (nan, nan) where their box (centred
    at 0) holds no true point: data far from 0 can be scored in our convention only."""
    try:
        return state_space_divergence_binned(x_true, x_gen, convention="authors", **kw)
    except ValueError:
        return float("nan"), float("nan")


def score_run(
    x_test: Array,
    x_gen: Array,
    *,
    n_bins: int = 10,
    box_std: float = 2.0,
    centre: Literal["mean", "zero"] | None = None,
    n_chunks: int = 50,
    smoothing_sigma: float = 2.0,
    n_freqs: int = 500,
    convention: Convention = "ours",
    gmm_layout: GmmLayout = "strided",
) -> dict[str, Any]:
    """The geometric and spectral scores of one generated series ``x_gen`` against x_test
    (T, N): D_stsp (binned for N ≤ MAX_BINNED_DIM, with the fraction of generated points it
    counted; GMM otherwise, in ``gmm_layout``, fraction NaN) and D_H in ``convention``, and
    the same in the authors' convention (``*_authors``; NaN where their box, centred at 0,
    holds no true point; the GMM D_stsp has one convention, its layout is ``gmm_layout``).
    Keys: D_stsp, D_stsp_method, frac_in_box, D_H, D_stsp_authors, frac_in_box_authors,
    D_H_authors."""
    authors, binned = convention == "authors", x_test.shape[1] <= MAX_BINNED_DIM
    if binned:
        d_stsp, frac = state_space_divergence_binned(
            x_test, x_gen, n_bins=n_bins, box_std=box_std, centre=centre, convention=convention)
        d_stsp_a, frac_a = (d_stsp, frac) if authors else _authors_binned(
            x_test, x_gen, n_bins=n_bins, box_std=box_std)
    else:
        d_stsp = state_space_divergence_gmm(x_test, x_gen, layout=gmm_layout)
        frac = float("nan")
        d_stsp_a, frac_a = d_stsp, frac
    spectra = dict(n_chunks=n_chunks, smoothing_sigma=smoothing_sigma, n_freqs=n_freqs)
    d_h = power_spectrum_distance(x_test, x_gen, convention=convention, **spectra)
    d_h_a = d_h if authors else power_spectrum_distance(x_test, x_gen, convention="authors",
                                                        **spectra)
    return {"D_stsp": d_stsp, "D_stsp_method": "binned" if binned else "gmm",
            "frac_in_box": frac, "D_H": d_h,
            "D_stsp_authors": d_stsp_a, "frac_in_box_authors": frac_a, "D_H_authors": d_h_a}


def _check_protocol(protocol: Any) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


def protocol_target(x_train: Array, x_test: Array, protocol: Protocol = "heldout") -> Array:
    """The series a protocol scores a model against, its free run starting from B⁺ of its
    first row: ``heldout`` → x_test (the last 20 % of the series, unseen in training);
    ``paper`` → the whole series, x_train followed by x_test (as the paper's evaluation)."""
    _check_protocol(protocol)
    if protocol == "heldout":
        return check_series(x_test, name="x_test")
    return np.concatenate([check_series(x_train, name="x_train"),
                           check_series(x_test, name="x_test")])


def sanity_proxy(x_train: Array, x_test: Array, protocol: Protocol = "heldout") -> Array:
    """The data standing in for a perfect model's free run in the sanity rule: a stretch of
    the series other than the one the protocol's target reads first. ``heldout`` → x_train
    (the training part, scored against x_test); ``paper`` → the second half of the whole
    series (scored against the whole series: the training part *is* the target there and
    would score 0 trivially; the authors' GMM layout then compares the series' first 5 000
    rows with 5 000 rows from its middle on)."""
    _check_protocol(protocol)
    if protocol == "heldout":
        return check_series(x_train, name="x_train")
    x = protocol_target(x_train, x_test, "paper")
    return x[x.shape[0] // 2:]


#: the keys of every row :func:`evaluate` returns (a sweep's part without one of them is an
#: older version's and is evaluated again)
EVALUATE_KEYS = ("member", "D_stsp", "D_stsp_method", "frac_in_box", "D_H", "PE1", "PE5",
                 "PE25", "lambda_max", "D_stsp_authors", "frac_in_box_authors", "D_H_authors")


def evaluate(
    model: EnsembleRNN,
    x_test: Array,
    *,
    n_generate: int = 100_000,
    n_transient: int = 0,
    n_bins: int = 10,
    box_std: float = 2.0,
    centre: Literal["mean", "zero"] | None = None,
    n_chunks: int = 50,
    smoothing_sigma: float = 2.0,
    n_freqs: int = 500,
    max_points: int | None = None,
    lyap_steps: int = 5000,
    convention: Convention = "ours",
    gmm_layout: GmmLayout = "strided",
) -> list[dict[str, Any]]:
    """Per-member scores on test data x_test (T, N).

    A free run of ``n_generate`` steps from x_test[0] (:func:`generate_free_run`) gives
    D_stsp (binned for N ≤ 5, with the counted fraction; GMM otherwise, fraction nan) and
    D_H; PE(1), PE(5), PE(25) come from :func:`prediction_error` on x_test; ``lambda_max``
    is the largest Lyapunov exponent (per step) of the model's own orbit from B⁺x_test[0]
    (QR over ``lyap_steps`` steps after 1 000 transient ones; 0 skips it): > 0 on a chaotic
    attractor, ≈ 0 on a cycle or torus, < 0 on a fixed point. ``convention`` ("ours" or
    "authors") is passed to the binned D_stsp and to D_H (``centre`` unset: its default).
    The same free run is also scored in the authors' convention whatever ``convention`` is
    (``D_stsp_authors``, ``frac_in_box_authors``, ``D_H_authors``; the GMM D_stsp has one
    convention, its fraction is NaN), so that results compare with the paper's numbers.
    ``gmm_layout``: the GMM D_stsp's layout (:func:`state_space_divergence_gmm`); a protocol
    (:data:`PROTOCOLS`) sets x_test and it (:func:`protocol_target`,
    :data:`PROTOCOL_GMM_LAYOUT`).
    Keys: member, D_stsp, D_stsp_method, frac_in_box, D_H, PE1, PE5, PE25, lambda_max,
    D_stsp_authors, frac_in_box_authors, D_H_authors.
    """
    x_test = _model_series(model, x_test)
    runs = generate_free_run(model, x_test, n_generate, n_transient=n_transient)
    pe = prediction_error(model, x_test, n_steps=25, max_points=max_points)
    lam = np.full(model.n_models, np.nan)
    if lyap_steps > 0:
        with torch.no_grad():
            s0 = model.inferred_state(torch.as_tensor(x_test[:1], dtype=model.dtype))

            def lam_max(m: EnsembleRNN, s: torch.Tensor) -> np.ndarray:
                spec = rnn_lyapunov_spectrum(m, s, lyap_steps, n_transient=1000,
                                             n_exponents=1)
                return np.asarray(spec)[:, 0, 0]

            try:
                lam = lam_max(model, s0)
            except ValueError:  # an orbit left the floats (diverged member): one by one
                for e in range(model.n_models):
                    try:
                        lam[e] = lam_max(model.member(e), s0[e : e + 1])[0]
                    except ValueError:
                        pass
    options = dict(n_bins=n_bins, box_std=box_std, centre=centre, n_chunks=n_chunks,
                   smoothing_sigma=smoothing_sigma, n_freqs=n_freqs, convention=convention,
                   gmm_layout=gmm_layout)
    results = []
    for e in range(model.n_models):
        scores = score_run(x_test, runs[e], **options)
        row = {"member": e, **scores, "PE1": float(pe[e, 0]), "PE5": float(pe[e, 4]),
               "PE25": float(pe[e, 24]), "lambda_max": float(lam[e])}
        results.append({k: row[k] for k in EVALUATE_KEYS})
    return results
