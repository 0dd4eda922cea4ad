"""Figures: one function per panel, and a saver that writes reproducible files.

PNG and PDF go to ``figures/<stem>.png|pdf`` under ``reproduce`` and to
``build/figures/`` otherwise (:func:`chaosrnn_utils.paths.figures_out`); the PDF carries no
creation date, so reruns give the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from . import paths
from .lyapunov import RosensteinResult

Array = np.ndarray


def use_style() -> None:
    """The companion's plot style (seaborn whitegrid, compact fonts)."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    mpl.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight"})


def save_figure(fig: plt.Figure, stem: str, directory: Path | None = None) -> Path:
    """Save ``fig`` as ``<stem>.png`` and ``<stem>.pdf`` in ``directory``, by default
    :func:`paths.figures_out` (``figures/`` under ``reproduce``, else ``build/figures/``);
    returns the PNG."""
    directory = paths.figures_out() if directory is None else Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / f"{stem}.png"
    fig.savefig(png, metadata={"Software": None})
    fig.savefig(directory / f"{stem}.pdf", metadata={"CreationDate": None, "Producer": None})
    return png


def plot_attractor(ax: plt.Axes, x: Array, *, title: str = "", max_points: int = 20_000,
                   labels: Sequence[str] | None = None, color: str = "C0") -> plt.Axes:
    """Trajectory ``x`` (n, d): a 3-D line when ``ax`` is 3-D and d ≥ 3, else the first two
    coordinates (a 1-D series is drawn against its lag-1 copy)."""
    x = np.asarray(x)
    x = x[:, None] if x.ndim == 1 else x
    x = x[:max_points]
    if x.shape[1] == 1:
        x = np.column_stack([x[:-1, 0], x[1:, 0]])
        labels = labels or ("$x_t$", "$x_{t+1}$")
    labels = labels or [f"$x_{i + 1}$" for i in range(x.shape[1])]
    style = dict(lw=0.3, color=color) if x.shape[0] > 2_000 else dict(lw=0.6, color=color)
    if getattr(ax, "name", "") == "3d" and x.shape[1] >= 3:
        ax.plot(x[:, 0], x[:, 1], x[:, 2], **style)
        ax.set_zlabel(labels[2])
    else:
        ax.plot(x[:, 0], x[:, 1], **style)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title)
    return ax


def plot_reconstructions(x: Array, runs: Mapping[int, Array], scores: Mapping[int, Any], *,
                         title: str = "") -> plt.Figure:
    """Fig. 3: the data ``x`` (T, 3) in 3-D beside one free run per learning interval
    (``runs``: τ → (T, 3)), each titled with its ``scores`` (τ → a dict with ``D_stsp``,
    ``lambda_max`` and ``frac_in_box``) and drawn in the data's box, so that sizes compare."""
    fig = plt.figure(figsize=(4 * (len(runs) + 1), 4.2))
    ax = fig.add_subplot(1, len(runs) + 1, 1, projection="3d")
    plot_attractor(ax, x, title="Lorenz-63 (test data)", color="k")
    lo, hi = np.min(x, axis=0), np.max(x, axis=0)
    for k, (tau, run) in enumerate(runs.items()):
        ax = fig.add_subplot(1, len(runs) + 1, k + 2, projection="3d")
        s = scores[tau]
        plot_attractor(ax, run, color=f"C{k}",
                       title=f"LSTM, τ = {tau}: $D_{{stsp}}$ = {s['D_stsp']:.2f}\n"
                             f"$\\lambda_{{max}}$ = {s['lambda_max']:+.4f}, "
                             f"counted {s['frac_in_box']:.0%}")
        ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), zlim=(lo[2], hi[2]))
    fig.suptitle(title, fontsize="small", y=1.04)
    fig.tight_layout()
    return fig


def plot_map_attractor(ax: plt.Axes, x: Array, *, title: str = "",
                       labels: Sequence[str] = ("$x_t$", "$x_{t+1}$")) -> plt.Axes:
    """Points of a map's orbit: (x_t, x_{t+1}) for 1-D maps, (x, y) otherwise."""
    x = np.asarray(x)
    x = x[:, None] if x.ndim == 1 else x
    pts = np.column_stack([x[:-1, 0], x[1:, 0]]) if x.shape[1] == 1 else x[:, :2]
    ax.scatter(pts[:, 0], pts[:, 1], s=0.2, color="C0", rasterized=True)
    ax.set_xlabel(labels[0] if x.shape[1] == 1 else "$x$")
    ax.set_ylabel(labels[1] if x.shape[1] == 1 else "$y$")
    ax.set_title(title)
    return ax


def plot_rosenstein(ax: plt.Axes, results: Sequence[RosensteinResult], *, title: str = "",
                    dt_label: str = "steps") -> plt.Axes:
    """Mean log divergence ⟨ln d(i)⟩ against i for each embedding dimension, with the fitted
    line over its fit range and λ_max in the legend (the paper's empirical-data figure)."""
    palette = sns.color_palette("viridis", len(results))
    for r, c in zip(results, palette, strict=True):
        i = np.arange(r.divergence.size)
        ax.plot(i, r.divergence, color=c, lw=1.2, label=f"m = {r.dim}: λ = {r.slope:.4f}")
        lo, hi = r.fit_range
        ax.plot(i[lo : hi + 1], r.intercept + r.slope * i[lo : hi + 1], "--", color="k", lw=0.8)
    ax.set_xlabel(f"i ({dt_label})")
    ax.set_ylabel(r"$\langle \ln d_j(i) \rangle$")
    ax.set_title(title)
    ax.legend(fontsize="small", loc="lower right")
    return ax


def plot_convergence(ax: plt.Axes, history: Array, *, dt: float, reference: Sequence[float] | None
                     = None, title: str = "") -> plt.Axes:
    """Running QR estimates of the exponents against time, with reference values dashed."""
    t = dt * np.arange(1, history.shape[0] + 1)
    for i in range(history.shape[1]):
        ax.plot(t, history[:, i], lw=1.0, color=f"C{i}", label=f"$\\lambda_{i + 1}$")
    for i, v in enumerate(reference or []):
        ax.axhline(v, ls="--", lw=0.8, color=f"C{i}")
    ax.set_xscale("log")
    ax.set_xlabel("time")
    ax.set_ylabel("running estimate")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


def plot_tau_pred(ax: plt.Axes, table: Mapping[str, Mapping[str, float]]) -> plt.Axes:
    """Grouped bars of τ_pred per data set: one bar per source (paper, QR, Rosenstein)."""
    names = list(table)
    sources = sorted({k for row in table.values() for k in row})
    width = 0.8 / max(1, len(sources))
    for j, s in enumerate(sources):
        vals = [table[n].get(s, np.nan) for n in names]
        ax.bar(np.arange(len(names)) + (j - (len(sources) - 1) / 2) * width, vals, width,
               label=s)
    ax.set_xticks(np.arange(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel(r"$\tau_{pred}$ (steps)")
    ax.legend(fontsize="small")
    return ax


def plot_product_norms(ax: plt.Axes, log_norms: Array, *, label: str, color: str = "C0",
                       fit: tuple[float, float, tuple[int, int]] | None = None,
                       loglog: bool = False) -> plt.Axes:
    """||∂z_T/∂z_1||₂ against T (log y) from natural-log norms, with an optional fitted line
    ``fit = (slope, intercept, (T_lo, T_hi))`` of log-norm against T, dashed."""
    T = np.arange(1, log_norms.size + 1)
    ax.plot(T, log_norms / np.log(10), color=color, lw=1.2, label=label)
    if fit is not None:
        slope, intercept, (lo, hi) = fit
        t = np.arange(lo, hi + 1)
        ax.plot(t, (intercept + slope * t) / np.log(10), "--", color="k", lw=0.9,
                label=f"fit: slope {slope:+.4f}/step")
    ax.set_xlabel("T")
    ax.set_ylabel(r"$\log_{10}\,\|\partial z_T / \partial z_1\|_2$")
    if loglog:
        ax.set_xscale("log")
    ax.legend(fontsize="small")
    return ax


def plot_gradient_norms(ax: plt.Axes, lengths: Sequence[int], norms: Array, *, label: str,
                        color: str = "C0", marker: str = "o") -> plt.Axes:
    """||∂L_T/∂θ||₂ against the sequence length T, log-log."""
    ax.loglog(lengths, norms, marker=marker, ms=3, lw=1.0, color=color, label=label)
    ax.set_xlabel("sequence length T")
    ax.set_ylabel(r"$\|\partial L_T / \partial \theta\|_2$")
    ax.legend(fontsize="small")
    return ax


def plot_slope_vs_lambda(ax: plt.Axes, lambdas: Mapping[str, float],
                         slopes: Mapping[str, float]) -> plt.Axes:
    """Fitted growth rate of log||∂z_T/∂z_1|| against λ_max (QR) per regime, identity dashed."""
    names = list(lambdas)
    x = np.array([lambdas[n] for n in names])
    y = np.array([slopes[n] for n in names])
    lim = 1.15 * max(np.abs(x).max(), np.abs(y).max())
    ax.plot([-lim, lim], [-lim, lim], "--", color="0.5", lw=0.8)
    for i, n in enumerate(names):
        ax.scatter(x[i], y[i], color=f"C{i}", zorder=3, label=n)
    ax.set_xlabel(r"$\lambda_{max}$ (QR)")
    ax.set_ylabel("fitted slope of log-norm")
    ax.legend(fontsize="small")
    return ax


ARCH_COLORS = {"rnn": "C0", "plrnn": "C1", "lstm": "C2"}
ARCH_LABELS = {"rnn": "RNN", "plrnn": "PLRNN", "lstm": "LSTM"}


def metric_label(metric: str) -> str:
    """Axis label of a score column, naming its convention: ``D_stsp`` → "$D_{stsp}$ (ours)",
    ``D_H_authors`` → "$D_H$ (authors' convention)" (docs/paper-notes.md, Metrics)."""
    base, authors = (metric[: -len("_authors")], True) if metric.endswith("_authors") else \
        (metric, False)
    name = {"D_stsp": r"$D_{stsp}$", "D_H": r"$D_H$"}.get(base)
    if name is None:
        return metric
    return f"{name} (authors' convention)" if authors else f"{name} (ours)"


def _mark_failures(ax: plt.Axes, x: Any, y: Any, n: Any, n_scored: Any, color: Any) -> None:
    """Beside each point with failed runs, "failed/n"; a hollow marker over a mean of a
    minority of scored runs; for a point without any scored run, its count at the bottom."""
    for xi, yi, ni, si in zip(x, y, n, n_scored, strict=True):
        failed = int(ni) - int(si)
        if failed == 0:
            continue
        label = f"{failed}/{int(ni)}"
        if np.isfinite(yi):
            if 2 * int(si) <= int(ni):
                ax.plot([xi], [yi], marker="o", ms=8, mfc="white", mec=color, zorder=3)
            ax.annotate(label, (xi, yi), xytext=(4, 4), textcoords="offset points",
                        fontsize=7, color=color)
        else:
            ax.annotate(f"{label} failed", (xi, 0.02), xycoords=("data", "axes fraction"),
                        fontsize=7, color=color, ha="center")


def plot_tau_sweep(ax: plt.Axes, curves: Mapping[str, Any], metric: str, *,
                   clip: Mapping[str, float] | None = None,
                   tau_pred: Mapping[str, float] | None = None, logy: bool = False,
                   title: str = "") -> plt.Axes:
    """Fig. 2's panel: ``metric`` (mean ± SEM over scored runs, median ×) against τ per
    architecture, from ``curves`` (architecture → table with ``tau``, ``metric``,
    ``metric_sem`` and, from :func:`~chaosrnn_utils.experiments.aggregate`, ``n`` and
    ``n_scored``); clipping baselines per architecture as dashed horizontal lines; τ_pred
    values (label → τ) as vertical lines. A τ with failed runs gets "failed/n" beside its
    marker, and a mean of a minority of scored runs is drawn hollow; a τ with no scored run
    gets its count at the bottom of the panel. Where the tables have ``metric_median``, the
    median over scored runs is drawn as a cross (with a few seeds one stalled run moves the
    mean, not the median)."""
    medians = False
    for arch, c in curves.items():
        color = ARCH_COLORS.get(arch, None)
        ax.errorbar(c["tau"], c[metric], yerr=c[f"{metric}_sem"], marker="o", ms=4, lw=1.2,
                    capsize=2, color=color, label=ARCH_LABELS.get(arch, arch))
        if f"{metric}_median" in c:
            ax.plot(c["tau"], c[f"{metric}_median"], ls="none", marker="x", ms=6, mew=1.2,
                    color=color)
            medians = True
        if "n_scored" in c:
            _mark_failures(ax, c["tau"], c[metric], c["n"], c["n_scored"], color)
        if clip is not None and np.isfinite(clip.get(arch, np.nan)):
            ax.axhline(clip[arch], ls="--", lw=1.0, color=color)
    for k, (label, tau) in enumerate((tau_pred or {}).items()):
        ax.axvline(tau, color="k", lw=1.0, ls=("-", ":", "-.")[k % 3],
                   label=rf"$\tau_{{pred}}$ {label} ({tau:.0f})")
    if medians:
        ax.plot([], [], ls="none", marker="x", color="0.3", label="median (× per τ)")
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(r"learning interval $\tau$")
    ax.set_ylabel(metric_label(metric))
    ax.set_title(title)
    return ax


def plot_conditions(ax: plt.Axes, table: Any, metric: str, *, reference: float | None = None,
                    reference_label: str = "reference", title: str = "",
                    logy: bool = True) -> plt.Axes:
    """Bar chart of ``metric`` (mean ± SEM over scored runs) per ``condition`` row of an
    aggregated table (failed runs marked as in :func:`plot_tau_sweep`), with an optional
    reference level (e.g. sparse forcing at τ = 30, ``reference_label``) dashed."""
    x = np.arange(len(table))
    ax.bar(x, table[metric], yerr=table[f"{metric}_sem"].fillna(0), color="C2", alpha=0.8,
           capsize=2)
    if "n_scored" in table:
        _mark_failures(ax, x, table[metric], table["n"], table["n_scored"], "C3")
    if reference is not None:
        ax.axhline(reference, ls="--", color="k", lw=1.0, label=reference_label)
        ax.legend(fontsize="small")
    ax.set_xticks(x, table["condition"], rotation=40, ha="right")
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(metric_label(metric))
    ax.set_title(title)
    return ax


#: line styles of the learning-curve bands (claims.BANDS order)
BAND_STYLES = ({"color": "C0", "ls": ":"}, {"color": "C2", "ls": "-"},
               {"color": "C1", "ls": "-."}, {"color": "k", "ls": "--"},
               {"color": "C3", "ls": "-", "lw": 2.2})


def plot_learning_curves(ax: plt.Axes, table: Any, *, failed_above: float | None = None,
                         title: str = "") -> plt.Axes:
    """D_stsp against training epochs for one architecture: per band of
    ``claims.learning_curves`` (its rows for one architecture: ``band``, ``band_index``
    (the style, :data:`BAND_STYLES`), ``eval_epoch``,
    median ``D_stsp``, quartiles ``q25``/``q75``, ``n``, ``n_failed``) the median over scored
    runs with the interquartile range shaded and "failed/n" beside each point with
    failures; the failure threshold as a grey line; the title names the best τ at the end
    where the table has that band. Log axes."""
    for k, (band, g) in enumerate(table.groupby("band", sort=False)):
        taus = list(g["taus"].iloc[0]) if "taus" in g else []
        if band.startswith("best τ") and taus and title:
            title = f"{title}: best τ {taus[0]}"
        g = g.sort_values("eval_epoch")
        style = BAND_STYLES[int(g["band_index"].iloc[0]) if "band_index" in g else k]
        label = band + (f" ({', '.join(map(str, taus))})" if taus else "")
        ax.plot(g["eval_epoch"], g["D_stsp"], marker="o", ms=4, label=label,
                **{"lw": 1.4, **style})
        ax.fill_between(g["eval_epoch"], g["q25"], g["q75"], color=style["color"], alpha=0.12)
        for x, y, f, n in zip(g["eval_epoch"], g["D_stsp"], g["n_failed"], g["n"],
                              strict=True):
            if f and np.isfinite(y):
                ax.annotate(f"{int(f)}/{int(n)}", (x, y), xytext=(3, 3),
                            textcoords="offset points", fontsize=7, color=style["color"])
    if failed_above is not None:
        ax.axhline(failed_above, color="0.6", lw=1.0, label="failed range starts")
    ax.set_xscale("log")
    ax.set_yscale("log")
    epochs = sorted(table["eval_epoch"].unique())
    ax.set_xticks(epochs, [str(e) for e in epochs])
    ax.minorticks_off()
    ax.set_xlabel("training epochs")
    ax.set_ylabel(metric_label("D_stsp"))
    ax.set_title(title)
    return ax
