"""The paper's experiments as sweep specs, and their committed results.

Per data set the τ sweep of Fig. 2 (RNN, PLRNN, LSTM; sparse forcing over the paper's τ grid,
and BPTT with gradient clipping at c = 1 as the baseline) and the Lorenz ablations of Fig. 5,
each at two profiles: ``paper`` (the authors' settings, §6 of PAPER.md) and ``quick`` (small
enough for two CPU cores, chosen so that the Lorenz LSTM still shows the effect).

Results travel in two places: a sweep trains into ``build/sweeps/<profile>/<name>/``
(checkpoints, resumable, git-ignored) and its table is copied to
``data/results/<profile>/<name>.csv``, the committed copy that figures and the comparison
table are drawn from (``source="committed"`` reads it without training).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import paths
from .data import PAPER_DATASETS, find_empirical
from .sweeps import SweepSpec, run_sweep

ARCHITECTURES = ["rnn", "plrnn", "lstm"]
SOURCES = ("train", "committed")
METRICS = ("D_stsp", "D_H", "PE1", "PE5", "PE25")

#: the paper's τ grids (PAPER.md §6)
PAPER_TAUS = {
    "lorenz": [5, 30, 50, 60, 70, 100, 200, 500, 1000],
    "roessler": [5, 30, 50, 60, 70, 100, 130, 160, 200, 500, 1000],
    "lorenz2d": [5, 30, 50, 60, 70, 100, 130, 160, 200],
    "duffing": [5, 30, 50, 60, 70, 100, 130, 160, 200],
    "temperature": [5, 30, 50, 60, 70, 100, 130, 160, 200],
    "mackey_glass": [5, 30, 40, 70, 100, 130, 160, 200],
    "eeg": [5, 10, 20, 30, 50, 100, 150, 200],
}
#: quick grids: Lorenz resolves the optimum (the notebook asserts it), the others are coarse
QUICK_TAUS = {name: [5, 30, 100, 200] for name in PAPER_TAUS} | {
    "lorenz": [5, 15, 30, 50, 100, 200]}
QUICK_SEEDS = {name: [0, 1] for name in PAPER_TAUS} | {"lorenz": [0, 1, 2]}
QUICK_EPOCHS = {name: 150 for name in PAPER_TAUS} | {"lorenz": 300}
PAPER_SEEDS = [0, 1, 2, 3, 4]
CLIP = 1.0  # the paper's clipping baseline: BPTT, gradient norm clipped at c = 1


def results_dir(profile: str) -> Path:
    """``data/results/<profile>/``: the committed result tables of one profile."""
    return paths.RESULTS_DIR / profile


def _check(dataset: str, profile: str) -> None:
    if dataset not in PAPER_TAUS:
        raise ValueError(f"unknown data set {dataset!r}; known: {', '.join(PAPER_TAUS)}")
    if profile not in ("quick", "paper"):
        raise ValueError(f"unknown profile {profile!r}: use 'quick' or 'paper'")


def tau_sweep_spec(dataset: str, profile: str = "quick") -> SweepSpec:
    """Fig. 2's sweep for one data set: τ grid × seeds with sparse forcing, plus BPTT with
    norm clipping (c = 1) per seed, for RNN, PLRNN and LSTM (latent 30, batch 32, Adam 1e-3).

    paper: the paper's grid, 5 seeds, 3 000 epochs, sequence length max(200, largest τ).
    quick: :data:`QUICK_TAUS`, :data:`QUICK_SEEDS`, :data:`QUICK_EPOCHS`, sequence length 200.
    """
    _check(dataset, profile)
    if profile == "paper":
        taus, seeds, epochs = PAPER_TAUS[dataset], PAPER_SEEDS, 3000
    else:
        taus, seeds, epochs = QUICK_TAUS[dataset], QUICK_SEEDS[dataset], QUICK_EPOCHS[dataset]
    seq_len = max(200, max(taus))
    clip = [dict(mode="bptt", clip_norm=CLIP, seed=s) for s in seeds]
    return SweepSpec(name=f"tau_sweep_{dataset}", dataset=dataset,
                     architectures=list(ARCHITECTURES),
                     grid={"tau": list(taus), "seed": list(seeds)}, members=clip,
                     settings={"profile": "paper", "epochs": epochs, "seq_len": seq_len},
                     split=2, checkpoint_every=25)


def ablation_spec(profile: str = "quick", tau: int = 30) -> SweepSpec:
    """Fig. 5's ablations on Lorenz-63 with the LSTM: clipping by norm and by value
    (c ∈ {1, 10, 100, 1000}), truncated BPTT and windowing (lengths), random τ around
    ``tau`` (spreads), τ annealed from 1 to 46, generalised teacher forcing (α), and sparse
    forcing at ``tau`` as the reference. paper: sequence length 1 000, 5 seeds, 3 000
    epochs; quick: sequence length 200, 1 seed, 300 epochs, fewer lengths."""
    _check("lorenz", profile)
    paper = profile == "paper"
    seeds = PAPER_SEEDS if paper else [0]
    lengths = [10, 30, 50, 100, 200] if paper else [10, 50, 150]
    spreads = [10, 25, 50] if paper else [10, 25]
    alphas = [0.05, 0.1, 0.2, 0.5] if paper else [0.1, 0.3]
    configs: list[dict[str, Any]] = [dict(mode="sparse", tau=tau)]
    configs += [dict(mode="bptt", clip_norm=float(c)) for c in (1, 10, 100, 1000)]
    configs += [dict(mode="bptt", clip_value=float(c)) for c in (1, 10, 100, 1000)]
    configs += [dict(mode="tbptt", truncation=k) for k in lengths]
    configs += [dict(mode="window", window=k) for k in lengths]
    configs += [dict(mode="sparse", tau=tau, tau_spread=d) for d in spreads if d < tau]
    configs += [dict(mode="sparse", tau=46, tau_start=1)]
    configs += [dict(mode="gtf", alpha=a) for a in alphas]
    members = [dict(c, seed=s) for c in configs for s in seeds]
    return SweepSpec(name="ablations_lorenz", dataset="lorenz", architectures=["lstm"],
                     members=members,
                     settings={"profile": "paper", "epochs": 3000 if paper else 300,
                               "seq_len": 1000 if paper else 200},
                     split=2, checkpoint_every=25)


def dataset_available(dataset: str) -> bool:
    """Whether a data set can be made here (simulated ones always; the empirical ones when
    the authors' file is found, see :func:`~chaosrnn_utils.data.find_empirical`)."""
    spec = PAPER_DATASETS[dataset]
    return "empirical" not in spec or find_empirical(spec["empirical"]) is not None


def obtain(spec: SweepSpec, profile: str, source: str = "train", *, workers: int = 2,
           progress: bool = True) -> pd.DataFrame:
    """The results table of ``spec``: ``train`` runs (or resumes, or finds finished) the sweep
    in ``build/sweeps/<profile>/<name>`` and copies its table to the committed
    ``data/results/<profile>/<name>.csv``; ``committed`` reads that copy only."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}")
    committed = results_dir(profile) / f"{spec.name}.csv"
    if source == "committed":
        if not committed.exists():
            raise FileNotFoundError(f"no committed results {committed}; run with "
                                    "source='train' first")
        return pd.read_csv(committed)
    out = paths.BUILD_DIR / "sweeps" / profile / spec.name
    df = run_sweep(spec, out, workers=workers, progress=progress)
    if not df.attrs["complete"]:
        raise RuntimeError(f"sweep {spec.name} incomplete: {df.attrs['pending']}")
    committed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "results.csv", committed)
    return pd.read_csv(committed)


def condition(df: pd.DataFrame) -> pd.Series:
    """A readable label per row: ``τ=30``, ``τ=30±10``, ``τ 1→46``, ``clip norm 1``,
    ``clip value 10``, ``BPTT``, ``TBPTT k=50``, ``window 50``, ``GTF α=0.1``, ``TF``."""
    def one(r: pd.Series) -> str:
        if r["mode"] == "sparse":
            if pd.notna(r.get("tau_start")):
                return f"τ {int(r['tau_start'])}→{int(r['tau'])}"
            spread = r.get("tau_spread", 0)
            return f"τ={int(r['tau'])}" + (f"±{int(spread)}" if spread else "")
        if r["mode"] == "bptt":
            if pd.notna(r.get("clip_norm")):
                return f"clip norm {r['clip_norm']:g}"
            if pd.notna(r.get("clip_value")):
                return f"clip value {r['clip_value']:g}"
            return "BPTT"
        if r["mode"] == "tbptt":
            return f"TBPTT k={int(r['truncation'])}"
        if r["mode"] == "window":
            return f"window {int(r['window'])}"
        if r["mode"] == "gtf":
            return f"GTF α={r['alpha']:g}"
        return "TF"
    return df.apply(one, axis=1)


def aggregate(df: pd.DataFrame, by: list[str] | None = None,
              metrics: tuple[str, ...] = ("D_stsp", "D_H")) -> pd.DataFrame:
    """Mean, standard error and count per group over runs, ignoring diverged (NaN) runs, as
    the paper aggregates; ``n_diverged`` counts the runs left out."""
    df = df.assign(condition=condition(df))
    by = by or ["architecture", "condition"]
    rows = []
    for key, g in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        for m in metrics:
            v = g[m].to_numpy(dtype=float)
            ok = v[np.isfinite(v)]
            row[m] = ok.mean() if ok.size else np.nan
            row[f"{m}_sem"] = ok.std(ddof=1) / np.sqrt(ok.size) if ok.size > 1 else np.nan
        row["n"] = len(g)
        row["n_diverged"] = int(g["diverged"].sum()) if "diverged" in g else 0
        row["frac_in_box"] = float(g["frac_in_box"].mean()) if "frac_in_box" in g else np.nan
        for col in ("mode", "tau"):
            if col in g:
                row[col] = g[col].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def tau_curve(agg: pd.DataFrame, architecture: str) -> pd.DataFrame:
    """One architecture's sparse-forcing rows of :func:`aggregate` (plain τ only), by τ."""
    sel = agg[(agg["architecture"] == architecture) & (agg["mode"] == "sparse")
              & agg["condition"].str.fullmatch(r"τ=\d+")]
    return sel.sort_values("tau").reset_index(drop=True)


def best_tau(agg: pd.DataFrame, architecture: str, metric: str = "D_stsp") -> tuple[int, float]:
    """(τ, value) of the lowest mean ``metric`` of one architecture's τ curve."""
    curve = tau_curve(agg, architecture).dropna(subset=[metric])
    if curve.empty:
        return -1, float("nan")
    row = curve.loc[curve[metric].idxmin()]
    return int(row["tau"]), float(row[metric])


def tau_pred_table(profile: str = "quick") -> pd.DataFrame:
    """Notebook 01's table of λ_max and τ_pred per data set (``data/results/tau_pred_*.csv``;
    the paper profile's when present)."""
    for p in (profile, "paper", "quick"):
        f = paths.RESULTS_DIR / f"tau_pred_{p}.csv"
        if f.exists():
            return pd.read_csv(f).set_index("dataset")
    raise FileNotFoundError("no tau_pred_<profile>.csv under data/results: run notebook 01")


def data_tau_pred(row: pd.Series) -> float:
    """The data's own τ_pred from notebook 01: QR of the generating system where there is
    one, else Rosenstein's estimate on the series."""
    qr = row.get("qr_tau_pred")
    return float(qr) if pd.notna(qr) else float(row["rosenstein_tau_pred"])
