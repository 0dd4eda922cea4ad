"""Figures: one function per panel, and a saver that writes reproducible files.

PNG and PDF go to ``figures/<stem>.png|pdf`` under ``reproduce`` and to
``build/figures/`` otherwise (:func:`chaosrnn_utils.paths.figures_out`); the PDF carries no
creation date, so reruns give the same bytes.
"""

from __future__ import annotations

import re
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


def drawn(values: Any, digits: int = 6) -> Array:
    """``values`` rounded to ``digits`` significant digits, far finer than a figure shows: a
    curve computed at redraw time (whose last bits differ from one CPU's instruction set to
    another) then gives the same pixels on every machine."""
    v = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(v))))
        return np.where(np.isfinite(v) & (v != 0), np.round(v * scale) / scale, v)


def plot_rosenstein(ax: plt.Axes, results: Sequence[RosensteinResult], *, title: str = "",
                    dt_label: str = "steps") -> plt.Axes:
    """Mean log divergence ⟨ln d(i)⟩ against i for each embedding dimension, with the fitted
    line over its fit range and λ_max in the legend (the paper's empirical-data figure); the
    curves as :func:`drawn`, so the figure's pixels do not depend on the CPU."""
    palette = sns.color_palette("viridis", len(results))
    for r, c in zip(results, palette, strict=True):
        i = np.arange(r.divergence.size)
        ax.plot(i, drawn(r.divergence), color=c, lw=1.2,
                label=f"m = {r.dim}: λ = {r.slope:.4f}")
        lo, hi = r.fit_range
        ax.plot(i[lo : hi + 1], drawn(r.intercept + r.slope * i[lo : hi + 1]), "--", color="k",
                lw=0.8)
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
    ax.set_xlabel(r"$\lambda_{\max}$ (QR)")
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


#: the y range of each score on its (log) axis, the same for every data set and profile, widened
#: only to show a value or a threshold outside it: a panel never zooms into the spread of
#: runs that all failed
SCORE_LIMITS = {"D_stsp": (1e-2, 50.0), "D_H": (1e-2, 1.0)}
#: colour of the failed-range line and its shading
FAILED_COLOR = "0.45"


def score_limits(metric: str, values: Any = (), threshold: float | None = None
                 ) -> tuple[float, float]:
    """The log-axis y limits of ``metric`` (:data:`SCORE_LIMITS`, by its base name without
    ``_authors``/``_median``), widened by a factor 1.5 to hold the finite positive
    ``values`` and ``threshold``."""
    base = metric.removesuffix("_median").removesuffix("_authors")
    lo, hi = SCORE_LIMITS.get(base, (1e-2, 1e2))
    v = np.asarray([*np.ravel(np.asarray(values, dtype=float)),
                    np.nan if threshold is None else float(threshold)], dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size:
        lo, hi = min(lo, v.min() / 1.5), max(hi, v.max() * 1.5)
    return float(lo), float(hi)


def draw_failed_range(ax: plt.Axes, threshold: float | None) -> bool:
    """The failed range of a score axis: a grey line at ``threshold`` and light shading above
    it (nothing when it is None or NaN). Returns whether it was drawn."""
    if threshold is None or not np.isfinite(threshold):
        return False
    ax.axhline(threshold, color=FAILED_COLOR, lw=1.2, ls=(0, (6, 2, 1, 2)), zorder=1,
               gid="failed-range")
    ax.axhspan(threshold, 1e9, color=FAILED_COLOR, alpha=0.08, lw=0, zorder=0)
    ax.annotate(f"failed ≥ {threshold:.3g}", (0.995, threshold),
                xycoords=("axes fraction", "data"), xytext=(0, 2), textcoords="offset points",
                ha="right", va="bottom", fontsize=7, color=FAILED_COLOR, annotation_clip=True)
    return True


def mark_not_scorable(ax: plt.Axes, protocol: str, proxy: float, threshold: float) -> None:
    """Say across ``ax`` that its data set is not scorable under ``protocol``: the data's own
    other stretch, scored as a perfect model would be, reaches ``proxy`` against a failed range
    from ``threshold`` (``experiments.sanity_check``), so no run here is a success or a failure."""
    ax.text(0.5, 0.5, f"not scorable under the {protocol} protocol:\nthe data's own other "
            f"stretch scores {proxy:.3g}\n(failed range ≥ {threshold:.3g})",
            transform=ax.transAxes, ha="center", va="center", fontsize="small",
            bbox=dict(boxstyle="round", facecolor="white", edgecolor="0.5", alpha=0.9))


def failed_range_handle() -> mpl.lines.Line2D:
    """Legend entry of :func:`draw_failed_range` (each axis labels its own threshold)."""
    return mpl.lines.Line2D([], [], color=FAILED_COLOR, lw=1.2, ls=(0, (6, 2, 1, 2)),
                            label="failed range starts (shaded above)")


def _mark_failures(ax: plt.Axes, x: Any, y: Any, n: Any, n_failed: Any, majority: Any,
                   color: Any, row: int = 0) -> None:
    """Beside each point with failed runs (not scored, or scored in the failed range:
    ``n_failed``), "failed/n"; a hollow marker over a statistic of a minority of scored runs
    (``majority`` False); for a point without any scored value, "failed/n" at the bottom of
    the panel, in line ``row`` (one per architecture, so that they do not overlap). Every
    label stays inside the axes."""
    for xi, yi, ni, fi, mi in zip(x, y, n, n_failed, majority, strict=True):
        failed = int(fi)
        if failed == 0:
            continue
        label = f"{failed}/{int(ni)}"
        if np.isfinite(yi):
            if not mi:
                ax.plot([xi], [yi], marker="o", ms=8, mfc="white", mec=color, zorder=3)
            ax.annotate(label, (xi, yi), xytext=(4, 4), textcoords="offset points",
                        fontsize=7, color=color, annotation_clip=True)
        else:
            ax.annotate(label, (xi, 0.02 + 0.045 * row), xycoords=("data", "axes fraction"),
                        fontsize=7, color=color, ha="center", annotation_clip=True)


def _tau_axis(ax: plt.Axes) -> None:
    """A log τ axis in time steps, ticks at 1-2-5 values as plain numbers."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(mpl.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
    ax.set_xlabel(r"learning interval $\tau$ (time steps)")


def plot_tau_sweep(ax: plt.Axes, curves: Mapping[str, Any], metric: str, *,
                   clip: Mapping[str, float] | None = None,
                   tau_pred: Mapping[str, float] | None = None,
                   failed_above: float | None = None, title: str = "",
                   legend: bool = False) -> plt.Axes:
    """Fig. 2's panel: ``metric`` (mean ± SEM over scored runs, median ×) against τ per
    architecture, from ``curves`` (architecture → table with ``tau``, ``metric``,
    ``metric_sem`` and, from :func:`~chaosrnn_utils.experiments.aggregate`, ``n``,
    ``n_scored``, ``majority_scored`` and, from :func:`~chaosrnn_utils.claims.with_failures`,
    ``n_failed``); clipping baselines per architecture as dashed horizontal lines; τ_pred
    values (label → τ) as vertical lines; the failed range (``failed_above``) as a grey line
    with the region above it shaded. A τ with failed runs (``n_failed``: not scored or
    scored in the failed range; without that column, the runs not scored) gets "failed/n"
    beside its marker; a mean of a minority of scored runs is drawn hollow; a τ with no
    scored run gets its count at the bottom of the panel. Log y with the metric's fixed
    limits (:func:`score_limits`), the same on every data set. ``legend``: put the legend
    (every line and mark explained) to the right of the axes."""
    values = [np.asarray(c[metric], dtype=float) for c in curves.values()]
    for row, (arch, c) in enumerate(curves.items()):
        color = ARCH_COLORS.get(arch, None)
        ax.errorbar(c["tau"], c[metric], yerr=c[f"{metric}_sem"], marker="o", ms=4, lw=1.2,
                    capsize=2, color=color, label=ARCH_LABELS.get(arch, arch))
        if f"{metric}_median" in c:
            ax.plot(c["tau"], c[f"{metric}_median"], ls="none", marker="x", ms=6, mew=1.2,
                    color=color)
            values.append(np.asarray(c[f"{metric}_median"], dtype=float))
        if "n" in c:
            n_failed = c["n_failed"] if "n_failed" in c else c["n"] - c["n_scored"]
            majority = c["majority_scored"] if "majority_scored" in c \
                else 2 * c["n_scored"] > c["n"]
            _mark_failures(ax, c["tau"], c[metric], c["n"], n_failed, majority, color, row)
        if clip is not None and np.isfinite(clip.get(arch, np.nan)):
            ax.axhline(clip[arch], ls="--", lw=1.0, color=color)
            values.append(np.asarray([clip[arch]]))
    for k, (label, tau) in enumerate((tau_pred or {}).items()):
        ax.axvline(tau, color="k", lw=1.0, ls=("-", ":", "-.")[k % 3],
                   label=rf"$\tau_{{pred}}$ {label} ({tau:.0f} steps)")
    drawn = draw_failed_range(ax, failed_above)
    _tau_axis(ax)
    taus = np.concatenate([np.asarray(c["tau"], dtype=float) for c in curves.values()]
                          + [np.asarray(list((tau_pred or {}).values()), dtype=float)])
    if taus.size:
        ax.set_xlim(taus.min() / 1.5, taus.max() * 1.5)
    ax.set_yscale("log")
    ax.set_ylim(*score_limits(metric, np.concatenate(values) if values else (), failed_above))
    ax.set_ylabel(metric_label(metric))
    ax.set_title(title)
    if legend:
        handles, _ = ax.get_legend_handles_labels()
        handles += [mpl.lines.Line2D([], [], ls="none", marker="x", color="0.3",
                                     label="median over scored runs"),
                    mpl.lines.Line2D([], [], ls="--", color="0.3",
                                     label="clipped BPTT (mean, colour of its architecture)"),
                    mpl.lines.Line2D([], [], ls="none", marker="o", ms=7, mfc="white",
                                     mec="0.3", label="hollow: most runs failed"),
                    mpl.lines.Line2D([], [], ls="none",
                                     label="f/n: f of n runs failed (at the bottom: no run "
                                           "scored)")]
        if drawn:
            handles.append(failed_range_handle())
        ax.legend(handles=handles, fontsize="small", loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return ax


def _condition_key(label: str) -> tuple[float, ...]:
    """Sort key of a condition label by the numbers in it (``TBPTT k=10`` < ``k=30`` <
    ``k=100``), then the label."""
    nums = [float(v) for v in re.findall(r"\d+(?:\.\d+)?", label)]
    return (*nums, 0.0) if nums else (np.inf,)


def order_conditions(table: Any, group: str = "group") -> Any:
    """``table``'s rows by ``group`` (first appearance kept) and, within each, in the numeric
    order of the numbers in ``condition`` (:func:`_condition_key`)."""
    groups = list(dict.fromkeys(table[group]))
    rank = {g: i for i, g in enumerate(groups)}
    keys = [(rank[g], _condition_key(str(c)), str(c))
            for g, c in zip(table[group], table["condition"], strict=True)]
    order = sorted(range(len(table)), key=keys.__getitem__)
    return table.iloc[order].reset_index(drop=True)


def plot_conditions(ax: plt.Axes, table: Any, runs: Any, metric: str, *,
                    reference: str | None = None, failed_above: float | None = None,
                    paper_ranges: Mapping[str, tuple[float, float]] | None = None,
                    title: str = "") -> plt.Axes:
    """Fig. 5's panel: per ``condition`` row of ``table`` (in its order; see
    :func:`order_conditions`), the per-seed values of ``metric`` of its scored runs
    (``runs``: condition → values; a failed run that was not scored is not a point) as dots
    and their median as a black bar; "failed/n" above the condition where ``table`` has
    ``n_failed`` > 0. The ``reference`` condition (sparse forcing at the paper's τ) is
    highlighted, its median drawn dashed across the panel; the failed range
    (``failed_above``) as a grey line; ``paper_ranges`` (group → (low, high), the paper's
    values in the authors' convention) as grey boxes over that group's conditions. Log y
    with the metric's fixed limits."""
    x = np.arange(len(table))
    values: list[float] = []
    groups = list(table["group"]) if "group" in table else [None] * len(table)
    for xi, (_, row) in zip(x, table.iterrows(), strict=True):
        v = np.asarray(runs.get(row["condition"], []), dtype=float)
        v = v[np.isfinite(v)]
        is_ref = row["condition"] == reference
        color = "C3" if is_ref else "C2"
        if is_ref:
            ax.axvspan(xi - 0.45, xi + 0.45, color="C3", alpha=0.10, lw=0)
        jitter = np.linspace(-0.15, 0.15, v.size) if v.size > 1 else np.zeros(v.size)
        ax.plot(xi + jitter, v, ls="none", marker="o", ms=4, color=color, alpha=0.85,
                zorder=3)
        if v.size:
            med = float(np.median(v))
            ax.plot([xi - 0.3, xi + 0.3], [med, med], color="k", lw=2.0, zorder=4)
            values += [*v]
            if is_ref:
                ax.axhline(med, ls="--", color="C3", lw=1.0, zorder=1)
        if "n_failed" in row and int(row["n_failed"]):
            ax.annotate(f"{int(row['n_failed'])}/{int(row['n'])}", (xi, 0.97),
                        xycoords=("data", "axes fraction"), ha="center", va="top",
                        fontsize=7, color="C3", annotation_clip=True)
    for g, (lo, hi) in (paper_ranges or {}).items():
        at = [xi for xi, gi in zip(x, groups, strict=True) if gi == g]
        if at:
            ax.add_patch(mpl.patches.Rectangle((min(at) - 0.45, lo), max(at) - min(at) + 0.9,
                                               max(hi - lo, lo * 0.04), color="0.2",
                                               alpha=0.18, lw=0, zorder=1))
            values += [lo, hi]
    drawn = draw_failed_range(ax, failed_above)
    for k in range(1, len(x)):
        if groups[k] != groups[k - 1]:
            ax.axvline(k - 0.5, color="0.8", lw=0.8)
    ax.set_xticks(x, table["condition"], rotation=45, ha="right")
    ax.set_xlim(-0.6, len(x) - 0.4)
    ax.set_yscale("log")
    ax.set_ylim(*score_limits(metric, values, failed_above))
    ax.set_ylabel(metric_label(metric))
    ax.set_title(title)
    handles = [mpl.lines.Line2D([], [], ls="none", marker="o", ms=4, color="C2",
                                label="one seed (scored runs)"),
               mpl.lines.Line2D([], [], color="k", lw=2.0, label="median over scored runs")]
    if reference is not None:
        handles.append(mpl.lines.Line2D([], [], ls="--", color="C3",
                                        label=f"reference: {reference} (median)"))
    if paper_ranges:
        handles.append(mpl.patches.Patch(color="0.2", alpha=0.18,
                                         label="paper's range (authors' convention)"))
    if drawn:
        handles.append(failed_range_handle())
    handles.append(mpl.lines.Line2D([], [], ls="none", label="f/n: f of n runs failed"))
    ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0.0)
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
    failures; the failed range (``failed_above``) as a grey line with the region above it
    shaded; the title names the best τ at the end where the table has that band. Log axes,
    y with :func:`score_limits`."""
    values: list[float] = []
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
        values += [*g["D_stsp"], *g["q25"], *g["q75"]]
        for x, y, f, n in zip(g["eval_epoch"], g["D_stsp"], g["n_failed"], g["n"],
                              strict=True):
            if f and np.isfinite(y):
                ax.annotate(f"{int(f)}/{int(n)}", (x, y), xytext=(3, 3),
                            textcoords="offset points", fontsize=7, color=style["color"],
                            annotation_clip=True)
    if draw_failed_range(ax, failed_above):
        ax.plot([], [], color=FAILED_COLOR, lw=1.2, ls=(0, (6, 2, 1, 2)),
                label="failed range starts (shaded above)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(*score_limits("D_stsp", values, failed_above))
    epochs = sorted(table["eval_epoch"].unique())
    ax.set_xticks(epochs, [str(e) for e in epochs])
    ax.minorticks_off()
    ax.set_xlabel("training epochs")
    ax.set_ylabel(metric_label("D_stsp"))
    ax.set_title(title)
    return ax
