"""Lyapunov spectra by QR re-orthonormalisation, Rosenstein's λ_max from data, τ_pred.

The spectrum of an orbit is λ_i = lim_{T→∞} (1/T) log σ_i(J_T ··· J_1). Raw products
over- or underflow, so :func:`qr_spectrum` carries an orthonormal frame instead:
Q_k R_k = J_k Q_{k−1} and λ_i ≈ (1/(K Δt)) Σ_k log |R_k[i, i]|. The same routine serves maps
(J = ∂f/∂x), flows (J = the flow map's Jacobian over one renormalisation interval, from the
variational equation Φ̇ = Df(x) Φ) and, later, RNNs.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from scipy.spatial import cKDTree

from .data import check_series, delay_embed
from .systems import FAMILIES, RTOL, System, integrate

Array = np.ndarray
LN2 = float(np.log(2.0))


def qr_spectrum(
    jacobians: Iterable[Array],
    *,
    dt: float = 1.0,
    n_exponents: int | None = None,
    discard: int = 0,
    return_history: bool = False,
) -> Array | tuple[Array, Array]:
    """Lyapunov exponents from a sequence of Jacobians J_1, J_2, … (each (d, d), or batched
    (..., d, d) for many independent orbits) by QR re-orthonormalisation.

    ``dt`` is the time one Jacobian spans (exponents are returned per time unit, i.e. per
    step for dt = 1); the first ``discard`` factors only align the frame. With
    ``return_history`` also returns the running estimate after each factor, shape (K, ..., k).
    """
    if dt <= 0:
        raise ValueError(f"dt must be positive, got {dt}")
    Q = None
    total = None
    history = []
    n = 0
    for k, J in enumerate(jacobians):
        J = np.asarray(J, dtype=np.float64)
        if J.ndim < 2 or J.shape[-1] != J.shape[-2]:
            raise ValueError(f"Jacobians must be square (..., d, d), got shape {J.shape}")
        if not np.all(np.isfinite(J)):
            raise ValueError(f"Jacobian {k} has NaN or inf entries")
        if Q is None:
            d = J.shape[-1]
            m = d if n_exponents is None else int(n_exponents)
            if not 1 <= m <= d:
                raise ValueError(f"n_exponents must be in 1..{d}, got {n_exponents}")
            Q = np.broadcast_to(np.eye(d)[:, :m], J.shape[:-2] + (d, m)).copy()
            total = np.zeros(J.shape[:-2] + (m,))
        Q, R = np.linalg.qr(J @ Q)
        diag = np.diagonal(R, axis1=-2, axis2=-1)
        # fix signs so that Q is continuous from step to step (diag R > 0)
        Q = Q * np.sign(np.where(diag == 0, 1.0, diag))[..., None, :]
        if k >= discard:
            with np.errstate(divide="ignore"):
                total = total + np.log(np.abs(diag))
            n += 1
            if return_history:
                history.append(total / (n * dt))
    if n == 0:
        raise ValueError("need more Jacobians than `discard`")
    spectrum = total / (n * dt)
    return (spectrum, np.stack(history)) if return_history else spectrum


def map_jacobians(system: System, x0: Array, n_steps: int) -> Iterator[Array]:
    """Jacobians ∂f/∂x(x_t) along the orbit of a map from x0 (t = 0..n_steps−1)."""
    x = np.asarray(x0, dtype=float)
    for _ in range(n_steps):
        yield system.jac(x)
        x = system.rhs(x)


def flow_jacobians(
    system: System, x0: Array, n_intervals: int, *, interval: float, rtol: float = RTOL
) -> Iterator[Array]:
    """Jacobians Φ = ∂x(t+Δ)/∂x(t) of the flow over consecutive intervals Δ = ``interval``,
    from the variational equation Φ̇ = Df(x(t)) Φ, Φ(t) = I, integrated with the orbit
    (DOP853)."""
    if system.kind != "flow":
        raise ValueError(f"{system.name} is not a flow")
    f, jac = FAMILIES[system.family]
    p, d = system.params, system.dim

    def augmented(_t: float, s: Array) -> Array:
        x, phi = s[:d], s[d:].reshape(d, d)
        return np.concatenate([f(x, p), (jac(x, p) @ phi).ravel()])

    x = np.asarray(x0, dtype=float)
    eye = np.eye(d).ravel()
    for _ in range(n_intervals):
        sol = solve_ivp(augmented, (0.0, interval), np.concatenate([x, eye]),
                        method="DOP853", rtol=rtol, atol=rtol)
        if not sol.success:
            raise RuntimeError(f"variational integration failed: {sol.message}")
        x = sol.y[:d, -1]
        yield sol.y[d:, -1].reshape(d, d)


def spectrum_standard_error(history: Array, *, n_blocks: int = 10) -> Array:
    """Standard error of a QR spectrum from its running estimates (``return_history``), by
    batch means.

    The running mean m_k after k factors gives back the local exponents
    ℓ_k = k·m_k − (k−1)·m_{k−1}; their means over ``n_blocks`` consecutive blocks scatter as
    independent samples when a block is much longer than the orbit's correlation time, so
    SE = std(block means) / √n_blocks (same units as the spectrum; one value per exponent and
    orbit, shape history.shape[1:]). A finite-time estimate moves by about this much from one
    machine to another: a chaotic orbit amplifies the last bits of the floating-point kernels
    into another sample of the same attractor.
    """
    history = np.asarray(history, dtype=np.float64)
    if history.ndim < 1 or history.shape[0] < 2 * n_blocks or n_blocks < 2:
        raise ValueError(f"need n_blocks >= 2 and at least 2·n_blocks running estimates, "
                         f"got n_blocks={n_blocks} and shape {history.shape}")
    k = np.arange(1, history.shape[0] + 1).reshape((-1,) + (1,) * (history.ndim - 1))
    local = history * k
    local[1:] -= history[:-1] * (k[1:] - 1)
    means = np.stack([b.mean(axis=0) for b in np.array_split(local, n_blocks)])
    return means.std(axis=0, ddof=1) / np.sqrt(n_blocks)


def lyapunov_spectrum(
    system: System,
    *,
    t_total: float,
    interval: float | None = None,
    t_align: float = 0.0,
    x0: Array | None = None,
    return_history: bool = False,
) -> Array | tuple[Array, Array]:
    """Full Lyapunov spectrum (per time unit, descending) of a flow or map from the table.

    Starts on the attractor (after the table's transient), aligns the frame for ``t_align``
    time units (iterations for maps), then averages over ``t_total``. ``interval`` is the
    renormalisation interval of a flow (default: the data set's dt × 10). With
    ``return_history`` also the running estimates, one row per interval (columns in the
    order of the returned spectrum).
    """
    if t_total <= 0:
        raise ValueError(f"t_total must be positive, got {t_total}")
    start = integrate(system, 1, x0=x0)[0]
    if system.kind == "map":
        interval = 1.0
        n_align, n = int(t_align), int(t_total)
        jacs = map_jacobians(system, start, n_align + n)
    elif system.kind == "flow":
        interval = 10 * system.dt if interval is None else float(interval)
        n_align, n = int(round(t_align / interval)), max(1, int(round(t_total / interval)))
        jacs = flow_jacobians(system, start, n_align + n, interval=interval)
    else:
        raise ValueError(f"{system.name}: spectrum needs a flow or a map, not {system.kind}")
    spectrum, history = qr_spectrum(jacs, dt=interval, discard=n_align, return_history=True)
    # sorted: an invariant subspace of the initial frame (Duffing's δφ = 0) can hold the
    # columns in another order
    order = np.argsort(spectrum)[::-1]
    return (spectrum[order], history[:, order]) if return_history else spectrum[order]


def predictability_time(lambda_max: float) -> float:
    """τ_pred = ln 2 / λ_max (in the time unit of λ_max: steps if λ is per step)."""
    if not np.isfinite(lambda_max) or lambda_max <= 0:
        raise ValueError(f"τ_pred needs λ_max > 0, got {lambda_max}")
    return LN2 / lambda_max


# ----------------------------------------------------------------------------- Rosenstein


def mean_period(x: Array) -> float:
    """Mean period (in steps) from the power-weighted mean frequency of the series, the
    Theiler window Rosenstein et al. recommend."""
    x = np.asarray(x, dtype=float)
    x = x[:, None] if x.ndim == 1 else x
    p = (np.abs(np.fft.rfft(x - x.mean(0), axis=0)) ** 2).sum(1)
    f = np.fft.rfftfreq(x.shape[0])
    return float(1.0 / (np.sum(f[1:] * p[1:]) / np.sum(p[1:])))


@dataclass(frozen=True)
class RosensteinResult:
    """Mean log divergence ⟨ln d_j(i)⟩ for i = 0..len−1 (steps), its fitted slope λ_max and
    the slope's standard error (batch means over reference points j)."""

    divergence: Array
    fit_range: tuple[int, int]
    slope: float
    intercept: float
    dim: int
    lag: int
    theiler: int
    slope_se: float = float("nan")

    @property
    def tau_pred(self) -> float:
        """ln 2 / λ_max in steps."""
        return predictability_time(self.slope)


def rosenstein(
    x: Array,
    *,
    dim: int = 1,
    lag: int = 1,
    horizon: int = 100,
    fit_range: tuple[int, int] = (0, 50),
    theiler: int | None = None,
) -> RosensteinResult:
    """Largest Lyapunov exponent per step from a time series (Rosenstein, Collins & De Luca
    1993).

    Each delay vector x_j gets its nearest neighbour x_ĵ with |j − ĵ| > ``theiler`` (default:
    the mean period); d_j(i) = ||x_{j+i} − x_{ĵ+i}||. The slope of ⟨ln d_j(i)⟩_j over
    i ∈ ``fit_range`` (least squares) estimates λ_max. ``dim = 1`` uses the (possibly
    multivariate) series as it is. ``slope_se``: the same fit on the mean over each of
    N_BLOCKS = 10 consecutive blocks of reference points j, std over blocks / √10 (blocks
    much longer than the correlation time act as independent samples): how far another
    sample of the attractor (another machine's orbit) moves the slope.
    """
    x = check_series(x)  # (n, c); a scalar series becomes (n, 1)
    pts = delay_embed(x, dim, lag)
    if theiler is None:
        theiler = int(np.ceil(mean_period(x)))
    lo, hi = fit_range
    if not 0 <= lo < hi < horizon:
        raise ValueError(f"need 0 <= fit start < fit end < horizon, got {fit_range}, {horizon}")
    n = pts.shape[0] - horizon
    if n < 2 * theiler + 10:
        raise ValueError(
            f"series too short: {pts.shape[0]} delay vectors for horizon {horizon} "
            f"and Theiler window {theiler}"
        )
    base = pts[:n]
    tree = cKDTree(base)
    k = min(n, 2 * theiler + 2)  # at most 2w+1 points lie inside the window
    dist, idx = tree.query(base, k=k)
    own = np.arange(n)[:, None]
    valid = (np.abs(idx - own) > theiler) & (dist > 0) & np.isfinite(dist)
    has = valid.any(1)
    first = np.argmax(valid, axis=1)
    j = np.arange(n)[has]
    nn = idx[has, first[has]]
    steps = np.arange(horizon)
    d = np.linalg.norm(pts[j[:, None] + steps] - pts[nn[:, None] + steps], axis=-1)
    with np.errstate(divide="ignore"):
        logd = np.log(d)
    logd[~np.isfinite(logd)] = np.nan
    curve = np.nanmean(logd, axis=0)
    fit = steps[lo : hi + 1]
    slope, intercept = np.polyfit(fit, curve[lo : hi + 1], 1)
    with warnings.catch_warnings():  # a block whose pairs all coincide gives a NaN slope
        warnings.simplefilter("ignore", RuntimeWarning)
        blocks = [np.polyfit(fit, np.nanmean(b[:, lo : hi + 1], axis=0), 1)[0]
                  for b in np.array_split(logd, 10)]
    se = float(np.std(blocks, ddof=1) / np.sqrt(len(blocks)))
    return RosensteinResult(curve, (lo, hi), float(slope), float(intercept), dim, lag,
                            int(theiler), se)


def rosenstein_dims(
    x: Array, dims: Sequence[int] = (4, 5, 6), *, lag: int = 1, **kwargs
) -> list[RosensteinResult]:
    """:func:`rosenstein` for several embedding dimensions (the paper's m = 4, 5, 6)."""
    return [rosenstein(x, dim=m, lag=lag, **kwargs) for m in dims]
