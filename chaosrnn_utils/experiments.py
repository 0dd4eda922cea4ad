"""The paper's experiments as sweep specs, and their committed results.

Per data set the τ sweep of Fig. 2 (RNN, PLRNN, LSTM; sparse forcing over the paper's τ grid,
and BPTT with gradient clipping at c = 1 as the baseline) and the Lorenz ablations of Fig. 5,
each at three profiles: ``paper`` (the authors' settings, docs/paper-notes.md § Training),
``medium`` (the paper's grids and settings at a tenth of its training, sequence length 200:
hours on two CPU cores) and ``quick`` (minutes on two CPU cores, chosen so that the Lorenz
LSTM still shows the effect). ``medium`` and ``paper`` also evaluate every member part-way
through training (:data:`EVAL_EPOCHS`, learning curves).

Results travel in two places: a sweep trains into ``build/sweeps/<profile>/<name>/``
(checkpoints, resumable, git-ignored) and its table is copied to
``data/results/<profile>/<name>.csv``, the committed copy that figures and the comparison
table are drawn from (``source="committed"`` reads it without training).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import metrics, paper, paths, training
from .data import EMPIRICAL, PAPER_DATASETS, find_empirical
from .fetch import MACKEY_GLASS_FILE, fetch_or_none
from .forcing import MemberConfig
from .metrics import PROTOCOL_GMM_LAYOUT, PROTOCOLS, generate_free_run
from .models import MODELS, make_model
from .sweeps import (
    SweepSpec,
    evaluate_protocols,
    load_job_models,
    load_sweep_data,
    run_sweep,
    sweep_jobs,
)

ARCHITECTURES = ["rnn", "plrnn", "lstm"]
SOURCES = ("train", "committed")

#: the paper's τ grids (``paper.json``, Fig. 2's τ axes)
PAPER_TAUS = {name: list(paper.dataset(name)["taus"]) for name in paper.datasets()}
#: quick grids: Lorenz the smallest grid that tests notebook 06's assert (τ = 5, τ near
#: τ_pred = 46, the largest τ; ``claims.tau_effect`` compares the best τ with τ = 5, τ_max and
#: clipped BPTT), the others coarse (trained by the main job only with ``--train-all``)
QUICK_TAUS = {name: [5, 30, 100, 200] for name in PAPER_TAUS} | {"lorenz": [5, 30, 200]}
#: quick architectures: Lorenz only the one whose claim notebook 06 asserts at quick
#: (``claims.EFFECT_EXPECTED``); the main job redraws the others from the committed medium
#: results
QUICK_ARCHITECTURES = {name: ["rnn", "plrnn", "lstm"] for name in PAPER_TAUS} | {
    "lorenz": ["lstm"]}
QUICK_SEEDS = {name: [0, 1] for name in PAPER_TAUS} | {"lorenz": [0, 1, 2]}
QUICK_EPOCHS = {name: 100 for name in PAPER_TAUS} | {"lorenz": 300}
PAPER_SEEDS = [0, 1, 2, 3, 4]
PROFILES = ("quick", "medium", "paper")
#: the medium profile: a tenth of the paper's 3 000 epochs, 3 seeds, sequence length 200
MEDIUM_SEEDS, MEDIUM_EPOCHS, MEDIUM_SEQ_LEN = [0, 1, 2], 300, 200
#: epochs before the last at which each member is evaluated too (learning curves)
EVAL_EPOCHS = {"quick": [], "medium": [30, 100], "paper": [300, 1000]}
#: the paper's best D_stsp per data set and architecture, (τ, value) (``paper.json``, Fig. 2)
PAPER_BEST = {name: {a: (int(v["tau"]), float(v["D_stsp"]))
                     for a, v in paper.dataset(name)["best"].items()}
              for name in paper.datasets()}
#: Rosenstein's estimator per data set: (lag J in samples, fit window in steps, horizon),
#: embedding dimensions m = 4, 5, 6 throughout (notebooks 01 and 08)
ROSENSTEIN = {
    "lorenz": (13, (20, 80), 200),
    "lorenz2d": (9, (20, 80), 200),
    "roessler": (6, (20, 150), 300),
    "duffing": (17, (10, 50), 200),
    "mackey_glass": (2, (10, 50), 200),
    "temperature": (43, (10, 50), 200),
    "eeg": (57, (10, 50), 200),
}
#: the paper's clipping baseline (BPTT, c = 1) where Fig. 2 gives it (``paper.json``); a
#: range is text, "10–12"
PAPER_CLIP = {name: {a: v if isinstance(v, float | int) else paper.text_range(v)
                     for a, v in paper.dataset(name)["clip_D_stsp"].items()}
              for name in paper.datasets() if "clip_D_stsp" in paper.dataset(name)}
CLIP = 1.0  # the paper's clipping baseline: BPTT, gradient norm clipped at c = 1


def results_dir(profile: str) -> Path:
    """``data/results/<profile>/``: the committed result tables of one profile."""
    return paths.RESULTS_DIR / profile


def _check(dataset: str, profile: str) -> None:
    if dataset not in PAPER_TAUS:
        raise ValueError(f"unknown data set {dataset!r}; known: {', '.join(PAPER_TAUS)}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")


#: the evaluation protocols of each profile's sweeps (``metrics.PROTOCOLS``): medium and paper
#: score every member under both (a medium sweep whose committed parts were scored under the
#: held-out one only is trained again by ``train``); quick, which asserts the τ effect on
#: Lorenz-63 only, keeps the held-out one (``protocols=`` of :func:`tau_sweep_spec` adds it)
PROFILE_PROTOCOLS = {"quick": ["heldout"], "medium": ["heldout", "paper"],
                     "paper": ["heldout", "paper"]}


def tau_sweep_spec(dataset: str, profile: str = "quick", *,
                   protocols: list[str] | None = None) -> SweepSpec:
    """Fig. 2's sweep for one data set: τ grid × seeds with sparse forcing, plus BPTT with
    norm clipping (c = 1) per seed, for RNN, PLRNN and LSTM (latent 30, batch 32, Adam 1e-3).

    paper: the paper's grid, 5 seeds, 3 000 epochs, sequence length max(200, largest τ).
    medium: the paper's grid up to τ = 200 (τ = 500 and 1 000 do not fit in a sequence of
    200: forced once, they train as τ = 200 does), 3 seeds, 300 epochs, sequence length 200.
    quick: :data:`QUICK_TAUS`, :data:`QUICK_SEEDS`, :data:`QUICK_EPOCHS`, sequence length 200.
    The paper and medium profiles also evaluate at :data:`EVAL_EPOCHS`. The paper profile
    initialises the PLRNN as the authors do (``init="authors"``: diagonal A ~ U(±1/√M)).
    The Lorenz sweep at every profile and every sweep of the paper profile are split in two jobs per
    architecture (for two workers); the others are not, as the update time of a small
    ensemble is mostly per-operation overhead that splitting would double.
    ``protocols``: the evaluation protocols (default :data:`PROFILE_PROTOCOLS`).
    """
    _check(dataset, profile)
    if profile == "paper":
        taus, seeds, epochs = PAPER_TAUS[dataset], PAPER_SEEDS, 3000
    elif profile == "medium":
        taus = [t for t in PAPER_TAUS[dataset] if t <= MEDIUM_SEQ_LEN]
        seeds, epochs = MEDIUM_SEEDS, MEDIUM_EPOCHS
    else:
        taus, seeds, epochs = QUICK_TAUS[dataset], QUICK_SEEDS[dataset], QUICK_EPOCHS[dataset]
    seq_len = max(200, max(taus))
    clip = [dict(mode="bptt", clip_norm=CLIP, seed=s) for s in seeds]
    settings: dict[str, Any] = {"profile": "paper", "epochs": epochs, "seq_len": seq_len}
    if profile == "paper":  # the paper's PLRNN initialisation (models.INITS); RNN, LSTM: one
        settings["model_kwargs"] = {"init": "authors"}
    return SweepSpec(name=f"tau_sweep_{dataset}", dataset=dataset,
                     architectures=list(QUICK_ARCHITECTURES[dataset] if profile == "quick"
                                        else ARCHITECTURES),
                     grid={"tau": list(taus), "seed": list(seeds)}, members=clip,
                     settings=settings,
                     split=2 if profile == "paper" or dataset == "lorenz" else 1,
                     checkpoint_every=25, eval_epochs=list(EVAL_EPOCHS[profile]),
                     protocols=list(protocols or PROFILE_PROTOCOLS[profile]))


def ablation_spec(profile: str = "quick", tau: int = 30) -> SweepSpec:
    """Fig. 5's ablations on Lorenz-63 with the LSTM: clipping by norm and by value
    (c ∈ {1, 10, 100, 1000}), truncated BPTT and windowing (lengths 10–200), random τ around
    ``tau`` (spreads), τ annealed from 1 to 46, generalised teacher forcing (α), and sparse
    forcing at ``tau`` as the reference (at least 3 seeds). paper: sequence length 1 000,
    5 seeds, 3 000 epochs; medium: the paper's conditions, sequence length 200, 3 seeds,
    300 epochs; quick: sequence length 200, 3 seeds (so that no row rests on one run),
    300 epochs, the key condition of each ablation only (clipping c = 1 by norm and by value,
    TBPTT k = 10, window 50, random τ ± 10, annealing; no generalised teacher forcing: the
    paper has no number for it). Random τ keeps the spreads below ``tau``."""
    _check("lorenz", profile)
    paper, full = profile == "paper", profile in ("paper", "medium")
    seeds = PAPER_SEEDS if paper else [0, 1, 2]
    lengths = [10, 30, 50, 100, 200] if full else [10]
    windows = lengths if full else [50]
    spreads = [10, 25, 50] if full else [10]
    alphas = [0.05, 0.1, 0.2, 0.5] if full else []
    clips = [1, 10, 100, 1000] if full else [1]
    configs: list[dict[str, Any]] = []
    configs += [dict(mode="bptt", clip_norm=float(c)) for c in clips]
    configs += [dict(mode="bptt", clip_value=float(c)) for c in clips]
    configs += [dict(mode="tbptt", truncation=k) for k in lengths]
    configs += [dict(mode="window", window=k) for k in windows]
    configs += [dict(mode="sparse", tau=tau, tau_spread=d) for d in spreads if d < tau]
    configs += [dict(mode="sparse", tau=46, tau_start=1)]
    configs += [dict(mode="gtf", alpha=a) for a in alphas]
    # the reference (sparse forcing at ``tau``) with three seeds at least, so that one failed
    # run does not decide the comparison
    reference = [dict(mode="sparse", tau=tau, seed=s) for s in sorted(set(seeds) | {0, 1, 2})]
    members = reference + [dict(c, seed=s) for c in configs for s in seeds]
    return SweepSpec(name="ablations_lorenz", dataset="lorenz", architectures=["lstm"],
                     members=members,
                     settings={"profile": "paper", "epochs": 3000 if paper else 300,
                               "seq_len": 1000 if paper else 200},
                     split=2, checkpoint_every=25, eval_epochs=list(EVAL_EPOCHS[profile]),
                     protocols=list(PROFILE_PROTOCOLS[profile]))


def dataset_available(dataset: str) -> bool:
    """Whether a data set can be made here (simulated ones always; the empirical ones when
    the authors' file is found, see :func:`~chaosrnn_utils.data.find_empirical`, or can be
    downloaded: one line on stderr when not). The main job's way to fetch what it needs."""
    entry = PAPER_DATASETS[dataset]
    if dataset == "mackey_glass":  # the authors' file where it can be had, else ours
        fetch_or_none(MACKEY_GLASS_FILE,
                      instead="using our own generated Mackey-Glass series (data/README.md)")
    if "empirical" not in entry or find_empirical(entry["empirical"]) is not None:
        return True
    return fetch_or_none(EMPIRICAL[entry["empirical"]].filename) is not None


def sweep_table(spec: SweepSpec, profile: str, source: str = "train", *, workers: int = 2,
                progress: bool = True) -> pd.DataFrame:
    """The results table of ``spec``: ``train`` runs (or resumes, or finds finished) the sweep
    in ``build/sweeps/<profile>/<name>`` and copies its table to the committed
    ``data/results/<profile>/<name>.csv`` (a call that trained for a minute or more is logged
    in :func:`train_log`); ``committed`` reads that copy only."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}")
    committed = results_dir(profile) / f"{spec.name}.csv"
    if source == "committed":
        if not committed.exists():
            raise FileNotFoundError(f"no committed results {committed}; run with "
                                    "source='train' first")
        return pd.read_csv(committed)
    out = sweep_dir(spec, profile)
    t0 = time.time()
    df = run_sweep(spec, out, workers=workers, progress=progress)
    if time.time() - t0 >= 60:  # it trained here: the machine, for provenance
        log_training(profile, spec.name, spec.dataset, t0, workers,
                     bool(df.attrs["complete"]))
    if not df.attrs["complete"]:
        raise RuntimeError(f"sweep {spec.name} incomplete: {df.attrs['pending']}")
    _publish(spec, profile)
    return pd.read_csv(committed)


def curve_table(spec: SweepSpec, profile: str) -> pd.DataFrame | None:
    """The committed learning-curve table of ``spec`` (:func:`curves_path`; written when
    :func:`sweep_table` or :func:`train_profile` finished the sweep), None where the profile
    evaluates at the last epoch only (quick) or none is committed."""
    path = curves_path(spec.name, profile)
    return pd.read_csv(path) if path.exists() else None


def budget_note(spec: SweepSpec, profile: str) -> str:
    """What ``profile`` cut from the paper's budget, for the comparison's notes ("" at the
    paper's)."""
    if profile == "paper":
        return ""
    s = spec.train_settings(spec.architectures[0])
    seeds = sorted({m.seed for m in spec.member_configs()})
    return (f"{profile} profile: {s.epochs} epochs (paper 3 000), {len(seeds)} seeds, "
            f"sequence length {s.seq_len}")


def sweep_dir(spec: SweepSpec, profile: str) -> Path:
    """``build/sweeps/<profile>/<name>``: where a profile's sweep trains (git-ignored)."""
    return paths.BUILD_DIR / "sweeps" / profile / spec.name


def curves_path(name: str, profile: str) -> Path:
    """The committed learning-curve table of sweep ``name`` (one row per member and
    evaluation epoch): ``data/results/<profile>/<name>_curves.csv``."""
    return results_dir(profile) / f"{name}_curves.csv"


def parts_dir(name: str, profile: str) -> Path:
    """``data/results/<profile>/parts/<name>/``: the finished parts of a sweep that
    :func:`train_profile` commits as it goes, so that a run longer than a session
    continues elsewhere (parts of other inputs are redone, see :mod:`.sweeps`)."""
    return results_dir(profile) / "parts" / name


def _publish(spec: SweepSpec, profile: str) -> None:
    """Copy a finished sweep's tables to the committed ones (results and curves)."""
    out = sweep_dir(spec, profile)
    results_dir(profile).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "results.csv", results_dir(profile) / f"{spec.name}.csv")
    if (out / "curves.csv").exists():
        shutil.copyfile(out / "curves.csv", curves_path(spec.name, profile))


def profile_specs(profile: str, *, protocols: list[str] | None = None) -> list[SweepSpec]:
    """Every sweep of ``profile`` in the order :func:`train_profile` runs them: the τ sweeps
    of the data sets available here (Lorenz first, each with ``protocols``, default the
    profile's), then the ablations."""
    return [*(tau_sweep_spec(d, profile, protocols=protocols) for d in PAPER_TAUS
              if dataset_available(d)),
            ablation_spec(profile)]


def train_profile(profile: str, *, time_limit: float | None = None, workers: int = 2,
                  progress: bool = True, only: list[str] | None = None,
                  committed_parts: bool = True,
                  protocols: list[str] | None = None) -> dict[str, bool]:
    """Train every sweep of ``profile`` (:func:`profile_specs`, or the sweeps named in
    ``only``), for at most ``time_limit`` seconds in all, resuming what is there. With
    ``committed_parts`` each sweep starts from the parts committed in :func:`parts_dir` and
    puts its finished parts back there, so that the run is continued by running it again,
    here or on another machine; a finished sweep's tables go to ``data/results/<profile>/``.
    ``protocols``: the τ sweeps' evaluation protocols (default :data:`PROFILE_PROTOCOLS`;
    other protocols than a sweep's committed parts were made with redo them). The parts'
    final parameters (``<job>.models.pt``) are committed beside them.
    Returns sweep name → complete."""
    _check("lorenz", profile)
    specs = (profile_specs(profile) if protocols is None
             else profile_specs(profile, protocols=protocols))
    if only:
        names = [s.name for s in specs]
        for name in only:
            if name not in names:
                raise ValueError(f"unknown sweep {name!r}; {profile}: {', '.join(names)}")
        specs = [s for s in specs if s.name in only]
    deadline = None if time_limit is None else training.clock() + time_limit
    complete = {}
    for spec in specs:
        left = None if deadline is None else deadline - training.clock()
        if left is not None and left <= 0:
            complete[spec.name] = False
            continue
        out, kept = sweep_dir(spec, profile), parts_dir(spec.name, profile)
        if committed_parts and kept.is_dir():
            (out / "parts").mkdir(parents=True, exist_ok=True)
            for part in sorted([*kept.glob("*.csv"), *kept.glob("*.models.pt")]):
                if not (out / "parts" / part.name).exists():
                    shutil.copyfile(part, out / "parts" / part.name)
        t0, done = time.time(), False
        try:
            df = run_sweep(spec, out, workers=workers, progress=progress, time_limit=left)
            done = bool(df.attrs["complete"])
        finally:  # interrupted too: what finished is kept, and how long it took
            if committed_parts:
                kept.mkdir(parents=True, exist_ok=True)
                # finished ones only, with their final parameters
                for part in sorted([*out.glob("parts/*.csv"), *out.glob("parts/*.models.pt")]):
                    shutil.copyfile(part, kept / part.name)
                log_training(profile, spec.name, spec.dataset, t0, workers, done)
        complete[spec.name] = done
        if done:
            _publish(spec, profile)
    return complete


def rescore(spec: SweepSpec, profile: str,
            protocols: tuple[str, ...] = PROTOCOLS) -> pd.DataFrame:
    """A finished sweep scored again under ``protocols`` from the final parameters its
    committed parts keep (``parts/<job>.models.pt``, :func:`~.sweeps.load_job_models`),
    without retraining: one row per member (architecture, member, configuration, the scores
    of :func:`~.sweeps.evaluate_protocols`). FileNotFoundError for a part made before the
    sweeps kept parameters (retrain it: :func:`train_profile` with ``protocols``)."""
    kept = parts_dir(spec.name, profile)
    x_train, x_test = load_sweep_data(spec)
    scoring = dataclasses.replace(spec, protocols=["heldout", *(p for p in protocols
                                                                if p != "heldout")])
    frames = []
    for job, arch, index in sweep_jobs(spec):
        path = kept / f"{job}.models.pt"
        if not path.exists():
            raise FileNotFoundError(f"{path} missing: {spec.name} {job} was trained before "
                                    "sweeps kept their parameters; retrain it (train_profile "
                                    "with protocols=...)")
        members, model = load_job_models(path)
        scores = evaluate_protocols(scoring, model, x_train, x_test)
        frames.append(pd.DataFrame([{"architecture": arch, "member": index.start + e,
                                     **asdict(m), **{k: v for k, v in sc.items()
                                                     if k != "member"}}
                                    for e, (m, sc) in enumerate(zip(members, scores,
                                                                    strict=True))]))
    return pd.concat(frames, ignore_index=True)


def train_log(profile: str) -> Path:
    """``data/results/<profile>/parts/train_log.csv``: one row per :func:`train_profile` call
    and sweep (start, wall seconds, workers, CPU, whether the sweep was complete after it),
    what the wall time of a profile is measured from (``benchmarks/bench_profile.py``)."""
    return results_dir(profile) / "parts" / "train_log.csv"


def _cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_of(name: str, profile: str) -> str | None:
    """The CPU(s) that trained sweep ``name`` at ``profile``, from :func:`train_log` (the
    calls that trained for more than a second; their CPU models, joined), None when the log
    has no such row."""
    path = train_log(profile)
    if not path.exists():
        return None
    log = pd.read_csv(path)
    log = log[(log["sweep"] == name) & (log["wall_s"] > 1.0)]
    if log.empty:
        return None
    cpus = list(dict.fromkeys(f"{r.cpu} ({int(r.cpus)} cores)" for r in log.itertuples()))
    return " and ".join(cpus)


def provenance(results: pd.DataFrame, profile: str, name: str, source: str) -> str:
    """Where the numbers of a results table come from, for a figure's subtitle and the
    comparison rows' notes: ``"medium profile, commit 2b66301, AMD EPYC (2 cores)"`` (every
    commit the table's rows were trained at; the machine from :func:`machine_of`, this
    machine for a table trained here, ``machine not recorded`` otherwise), then
    ``redrawn from the committed results`` or ``trained here``."""
    commits = list(dict.fromkeys(str(c)[:7] for c in results["git_commit"].dropna()))
    machine = machine_of(name, profile)
    if machine is None:
        machine = (f"{_cpu_name()} ({os.cpu_count()} cores)" if source == "train"
                   else "machine not recorded")
    how = "trained here" if source == "train" else "redrawn from the committed results"
    return (f"{profile} profile, commit{'s' if len(commits) > 1 else ''} "
            f"{', '.join(commits) or 'unknown'}, {machine}; {how}")


def log_training(profile: str, name: str, dataset: str, t0: float, workers: int,
                 done: bool) -> None:
    """Append a row to :func:`train_log`: sweep ``name`` of ``dataset`` trained here from
    ``t0`` (``time.time()``) until now with ``workers`` processes, ``done`` if it finished;
    the CPU's name, for :func:`provenance`."""
    row = pd.DataFrame([dict(sweep=name, dataset=dataset,
                             start=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
                             wall_s=round(time.time() - t0, 1), workers=workers,
                             cpus=os.cpu_count(), cpu=_cpu_name(), complete=done)])
    path = train_log(profile)
    old = pd.read_csv(path) if path.exists() else None
    with paths.atomic_open(path, "w") as fh:
        (row if old is None else pd.concat([old, row], ignore_index=True)).to_csv(
            fh, index=False)


ABLATION_GROUPS = {"clip norm": "clipping (norm)", "clip value": "clipping (value)",
                   "TBPTT": "truncated BPTT", "window": "windowing", "τ=": "sparse forcing",
                   "τ ": "annealed τ", "GTF": "generalised TF", "BPTT": "BPTT", "TF": "TF"}


def condition_group(label: str) -> str:
    """The ablation a :func:`condition` label belongs to (``τ=30±10`` → random τ)."""
    if label.startswith("τ=") and "±" in label:
        return "random τ"
    for prefix, group in ABLATION_GROUPS.items():
        if label.startswith(prefix):
            return group
    return label


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


#: a free run is scored only if at least this fraction of its points lies inside the D_stsp
#: box: a run that settles outside it is scored on a handful of transient points otherwise
MIN_IN_BOX = 0.5
#: what a run can be, in the order the rule checks them (:func:`run_status`); "not scorable"
#: is every run of a data set that fails the sanity rule under a protocol (:func:`scorable`)
RUN_STATUSES = ("diverged", "left the box", "no score", "scored")
NOT_SCORABLE = "not scorable under this protocol"


def protocol_view(df: pd.DataFrame, protocol: str = "heldout") -> pd.DataFrame:
    """A results table as scored under ``protocol``: for ``paper``, the columns
    ``<key>_paper`` (:data:`~.sweeps.PROTOCOL_KEYS`) replace the plain ones (which hold the
    held-out scores); KeyError when the table was not scored under it."""
    _check_protocol(protocol)
    if protocol == "heldout":
        return df
    from .sweeps import PROTOCOL_KEYS

    cols = {f"{k}_{protocol}": k for k in PROTOCOL_KEYS if f"{k}_{protocol}" in df}
    if "D_stsp" not in cols.values():
        raise KeyError(f"the table was not scored under protocol {protocol!r} (no "
                       f"D_stsp_{protocol} column)")
    return df.drop(columns=[v for v in cols.values() if v in df]).rename(columns=cols)


def run_status(df: pd.DataFrame, *, min_in_box: float = MIN_IN_BOX) -> pd.Series:
    """Per row of a results table: ``diverged`` (training diverged: the member is frozen at
    its last finite parameters, so its scores say nothing about training), ``left the box``
    (fewer than ``min_in_box`` of its generated points inside the binned D_stsp's box; the
    GMM D_stsp has no box, its ``frac_in_box`` is NaN and never fails this test),
    ``no score`` (D_stsp NaN or inf, e.g. the free run left the floats) or ``scored``."""
    diverged = df["diverged"].astype(bool) if "diverged" in df else pd.Series(False, df.index)
    frac = (df["frac_in_box"].astype(float) if "frac_in_box" in df
            else pd.Series(np.nan, df.index))
    score = df["D_stsp"].astype(float) if "D_stsp" in df else pd.Series(np.nan, df.index)
    status = np.select([diverged.to_numpy(), (frac < min_in_box).to_numpy(),
                        ~np.isfinite(score.to_numpy())],
                       list(RUN_STATUSES[:3]), default="scored")
    return pd.Series(status, index=df.index, name="status")


def aggregate(df: pd.DataFrame, by: list[str] | None = None,
              metrics: tuple[str, ...] = ("D_stsp", "D_H"), *,
              min_in_box: float = MIN_IN_BOX, protocol: str = "heldout",
              scorable: bool = True) -> pd.DataFrame:
    """Per group (the table as scored under ``protocol``, :func:`protocol_view`): ``n`` runs,
    ``n_scored`` and the failures by kind (``n_diverged``, ``n_left_box``, ``n_no_score``;
    :func:`run_status`), ``majority_scored`` (more than half
    of the runs scored), and the mean, standard error and median (``<metric>_median``) of
    each metric over the scored runs only (NaN where none was scored). The paper averages
    over the runs that did not diverge and does not count them; here a failed run is never
    averaged and always counted. ``scorable=False`` (the data set fails the sanity rule under
    ``protocol``, :func:`scorable`): no run is scored or failed, each counts in
    ``n_not_scorable``, every metric is NaN."""
    df = protocol_view(df, protocol)
    status = run_status(df, min_in_box=min_in_box)
    if not scorable:
        status = pd.Series(NOT_SCORABLE, index=df.index, name="status")
    df = df.assign(condition=condition(df), status=status)
    by = by or ["architecture", "condition"]
    rows = []
    for key, g in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        scored = g[g["status"] == "scored"]
        for m in metrics:
            v = scored[m].to_numpy(dtype=float)
            ok = v[np.isfinite(v)]
            row[m] = ok.mean() if ok.size else np.nan
            row[f"{m}_sem"] = ok.std(ddof=1) / np.sqrt(ok.size) if ok.size > 1 else np.nan
            row[f"{m}_median"] = float(np.median(ok)) if ok.size else np.nan
        row["n"] = len(g)
        row["n_scored"] = len(scored)
        row["n_diverged"] = int((g["status"] == "diverged").sum())
        row["n_left_box"] = int((g["status"] == "left the box").sum())
        row["n_no_score"] = int((g["status"] == "no score").sum())
        row["n_not_scorable"] = int((g["status"] == NOT_SCORABLE).sum())
        row["majority_scored"] = 2 * len(scored) > len(g)
        row["frac_in_box"] = float(g["frac_in_box"].mean()) if "frac_in_box" in g else np.nan
        for col in ("mode", "tau"):
            if col in g:
                row[col] = g[col].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def failure_note(row: pd.Series) -> str:
    """``"2/3 failed (1 diverged, 1 left the box)"`` for an aggregate row, "" when every run
    was scored."""
    if int(row.get("n_not_scorable", 0) or 0):
        return f"{int(row['n'])} runs {NOT_SCORABLE}"
    failed = int(row["n"]) - int(row["n_scored"])
    if failed == 0:
        return ""
    kinds = [(int(row[c]), k) for c, k in (("n_diverged", "diverged"),
                                           ("n_left_box", "left the box"),
                                           ("n_no_score", "no score")) if int(row[c])]
    return f"{failed}/{int(row['n'])} failed ({', '.join(f'{n} {k}' for n, k in kinds)})"


#: the references of :func:`reference_scores`; all but white noise are *degenerate*: they
#: have not learnt the data (a fresh model of each architecture, a fixed point at the data mean)
REFERENCES = ("untrained rnn", "untrained plrnn", "untrained lstm", "fixed point at the mean",
              "white noise")
#: the metrics a failed range is given for: the binned D_stsp in our and the authors'
#: convention (data of at most 5 dimensions) or the GMM D_stsp (above 5; one convention, so
#: both columns hold it), and D_H in both conventions
REFERENCE_METRICS = ("D_stsp", "D_stsp_authors", "D_H", "D_H_authors")
#: the failed range of a metric starts at this fraction of the lowest degenerate reference:
#: with ⅓ the binned D_stsp's threshold is about 6 on the simulated sets (degenerate references
#: 17–19 at 100 000 generated steps), below the 7–17 band in which failed runs score
FAILURE_FACTOR = 1 / 3


def _reference_runs(x: np.ndarray, n_generate: int, seed: int,
                    latent_dim: int) -> dict[str, np.ndarray]:
    """The generated series of every reference: a freshly initialised model of each
    architecture (seed ``seed``, float32 as trained) run freely from B⁺x_1, the constant series
    at the data's mean, and Gaussian white noise with the data's mean and covariance."""
    runs = {}
    for arch in ARCHITECTURES:
        model = make_model(arch, latent_dim, x.shape[1], seeds=[seed])
        runs[f"untrained {arch}"] = generate_free_run(model, x, n_generate)[0]
    mean = x.mean(axis=0)
    runs["fixed point at the mean"] = np.broadcast_to(mean, (n_generate, x.shape[1])).copy()
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    runs["white noise"] = np.random.default_rng(seed).multivariate_normal(mean, cov, n_generate)
    return runs


def reference_scores(x_test: np.ndarray, *, n_generate: int = 100_000, seed: int = 0,
                     latent_dim: int = 30, gmm_layout: str = "strided",
                     proxy: np.ndarray | None = None) -> pd.DataFrame:
    """Scores of references that no trained model should match, on test data x_test (T, N).

    One row per reference (:data:`REFERENCES`), plus ``data`` (x_test scored against itself,
    ≈ 0 up to the D_H floor of the authors' convention); columns :data:`REFERENCE_METRICS`
    and, for the binned D_stsp (N ≤ 5), the fraction of the generated points each convention
    counts (``frac_in_box``, ``frac_in_box_authors``). D_stsp is the binned KL for N ≤ 5 and
    the GMM KL above. Each reference is scored like a trained model
    (:func:`~.metrics.evaluate`'s defaults) on ``n_generate`` generated steps; the binned
    KL's penalty for unvisited cells, −log(α / n_generate), makes the scores depend on it.
    Closed forms: the fixed point has D_H = 1 (a constant series has no spectrum); inside the
    box its binned D_stsp is Σ_k p_k log p_k − Σ_k p_k log q_k with q the smoothed histogram
    of one full cell (NaN when the mean lies outside the box or in a dropped first bin).
    ``gmm_layout``: the GMM D_stsp's layout (a protocol's, :data:`~.metrics.PROTOCOL_GMM_LAYOUT`).
    ``proxy``: a stretch of the data scored as if it were a generated run, the row
    ``sanity proxy`` of the sanity rule (:func:`sanity_check`; :func:`~.metrics.sanity_proxy`)."""
    x = np.asarray(x_test, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 100:
        raise ValueError(f"x_test must be (T, N) with T >= 100, got shape {x.shape}")
    binned = x.shape[1] <= metrics.MAX_BINNED_DIM
    rows = []
    runs = {**_reference_runs(x, n_generate, seed, latent_dim), "data": x}
    if proxy is not None:
        runs["sanity proxy"] = np.asarray(proxy, dtype=np.float64)
    columns = (("D_stsp", "frac_in_box", "D_stsp_authors", "frac_in_box_authors", "D_H",
                "D_H_authors") if binned else REFERENCE_METRICS)
    for name, run in runs.items():
        # as metrics.evaluate scores a trained model
        scores = metrics.score_run(x, run, gmm_layout=gmm_layout)
        rows.append({"reference": name, **{c: scores[c] for c in columns}})
    return pd.DataFrame(rows).set_index("reference")


#: rows of a reference table that are not degenerate references (never set the threshold)
NOT_DEGENERATE = ("white noise", "data", "sanity proxy")


def failure_threshold(refs: pd.DataFrame, metric: str = "D_stsp", *,
                      factor: float = FAILURE_FACTOR, min_in_box: float = MIN_IN_BOX) -> float:
    """Where the failed range of ``metric`` starts: s_0 + ``factor`` · (s_ref − s_0), with
    s_ref the lowest score of the degenerate references of :func:`reference_scores` (the
    untrained models and the fixed point at the data mean), s_0 the data's score against
    itself (0, except the authors' D_H, whose floor is above 0; 0 when ``refs`` has no
    ``data`` row) and ``factor`` = ⅓ (:data:`FAILURE_FACTOR`). A run scoring at or above it
    has not cut the best learnt-nothing score to a third (of its excess over the floor).

    A binned D_stsp counts only for a reference whose free run keeps at least ``min_in_box``
    of its points in the box, relative to the data's own counted fraction in the same
    convention (a run that leaves the box is a failure by :func:`run_status`, and its score
    on a few transient points is an artefact). White noise with the data's moments is not a
    degenerate reference: a Gaussian cloud fills a coarse 10-bin histogram well (binned
    D_stsp ≈ 1 on Lorenz-63), so it is reported beside, not used. NaN when no degenerate
    reference has a finite score, or when the lowest one is not above the floor (the
    authors' D_H on the temperature series: no failed range can be drawn)."""
    if metric not in refs.columns:
        raise KeyError(f"no metric {metric!r}; known: {', '.join(REFERENCE_METRICS)}")
    degenerate = refs.drop(index=[r for r in NOT_DEGENERATE if r in refs.index])
    v = degenerate[metric].to_numpy(dtype=float)
    frac_col = {"D_stsp": "frac_in_box", "D_stsp_authors": "frac_in_box_authors"}.get(metric)
    if frac_col in refs.columns:
        own = float(refs.loc["data", frac_col]) if "data" in refs.index else 1.0
        v = np.where(degenerate[frac_col].to_numpy(dtype=float) >= min_in_box * own, v, np.nan)
    v = v[np.isfinite(v)]
    floor = float(refs.loc["data", metric]) if "data" in refs.index else 0.0
    if not v.size or not v.min() > floor:
        return float("nan")
    return float(floor + factor * (v.min() - floor))


#: the committed reference tables, one per data set and protocol (the failed ranges' source)
REFERENCE_DIR = paths.RESULTS_DIR / "references"
#: the sanity rule: the data's own stand-in for a perfect run must score below this fraction
#: of the failed range's start ("well inside the success range")
SANITY_MARGIN = 0.5
#: the D_stsp column each protocol's tables rank by: ours under the held-out protocol, the
#: authors' convention under theirs (the GMM D_stsp has one convention: both columns hold it)
PROTOCOL_METRIC = {"heldout": "D_stsp", "paper": "D_stsp_authors"}
#: each protocol in words, for tables and figures
PROTOCOL_WORDS = {"heldout": "held-out", "paper": "whole-series"}


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")


def reference_path(dataset: str, protocol: str = "heldout") -> Path:
    """``data/results/references/<dataset>_<protocol>.csv``: the committed reference table."""
    return REFERENCE_DIR / f"{dataset}_{protocol}.csv"


def _reference_cache(dataset: str, protocol: str) -> Path:
    return paths.BUILD_DIR / "references" / f"{dataset}_{protocol}.csv"


def _reference_inputs(dataset: str, protocol: str
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, SweepSpec]:
    """(target, sanity proxy, whole series, spec) of ``dataset`` under ``protocol``: every
    profile's τ sweep splits and generates alike, so the references do not depend on the
    profile."""
    _check_protocol(protocol)
    spec = tau_sweep_spec(dataset, "quick")
    x_train, x_test = load_sweep_data(spec)
    return (metrics.protocol_target(x_train, x_test, protocol),
            metrics.sanity_proxy(x_train, x_test, protocol),
            metrics.protocol_target(x_train, x_test, "paper"), spec)


#: rows of the series whose moments identify it in :func:`reference_key`
KEY_ROWS = 1000


def reference_key(dataset: str, protocol: str = "heldout") -> str:
    """What a reference table rests on: protocol, free-run length, latent size, the target's
    and the proxy's shapes, and the mean absolute value and mean square of the series' first
    :data:`KEY_ROWS` rows to 6 digits. Only the first rows: a simulated series is chaotic, so
    another CPU's last bits change its later rows, and moments over them, but not the first
    thousand steps (a different system, parameter, start or file changes them)."""
    x, proxy, whole, spec = _reference_inputs(dataset, protocol)
    head = whole[:KEY_ROWS]
    return (f"{protocol}:{spec.n_generate}:{spec.train_settings('lstm').latent_dim}:"
            f"{x.shape}:{proxy.shape}:{float(np.mean(np.abs(head))):.5e}:"
            f"{float(np.mean(head * head)):.5e}")


def compute_references(dataset: str, protocol: str = "heldout") -> pd.DataFrame:
    """:func:`reference_scores` of ``dataset`` under ``protocol`` (target
    :func:`~.metrics.protocol_target`, the protocol's GMM layout, the sanity proxy row),
    with a ``key`` column (:func:`reference_key`). About a minute on one core."""
    x, proxy, _, spec = _reference_inputs(dataset, protocol)
    refs = reference_scores(x, n_generate=spec.n_generate,
                            latent_dim=spec.train_settings("lstm").latent_dim,
                            gmm_layout=PROTOCOL_GMM_LAYOUT[protocol], proxy=proxy)
    return refs.assign(key=reference_key(dataset, protocol))


def write_references(datasets: list[str] | None = None,
                     protocols: tuple[str, ...] = PROTOCOLS) -> list[Path]:
    """Recompute and commit the reference tables (:func:`reference_path`) of ``datasets``
    (default: every data set available here) under ``protocols``. Command:
    ``python -c "from chaosrnn_utils import experiments as e; e.write_references()"``."""
    done = []
    for d in datasets or [d for d in PAPER_TAUS if dataset_available(d)]:
        for protocol in protocols:
            path = reference_path(d, protocol)
            path.parent.mkdir(parents=True, exist_ok=True)
            with paths.atomic_open(path, "w") as fh:
                compute_references(d, protocol).to_csv(fh, float_format="%.6g")
            done.append(path)
    _dataset_references.cache_clear()
    return done


@functools.lru_cache(maxsize=32)
def _dataset_references(dataset: str, protocol: str) -> pd.DataFrame:
    key = reference_key(dataset, protocol)
    for path in (reference_path(dataset, protocol), _reference_cache(dataset, protocol)):
        if path.exists():
            refs = pd.read_csv(path, index_col="reference")
            if "key" in refs and str(refs["key"].iloc[0]) == key:
                return refs.drop(columns="key")
    print(f"no committed references for {dataset} ({protocol}) with key {key}: computing "
          f"them into {_reference_cache(dataset, protocol)} (about a minute); commit them "
          "with experiments.write_references()", file=sys.stderr, flush=True)
    refs = compute_references(dataset, protocol)
    cache = _reference_cache(dataset, protocol)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with paths.atomic_open(cache, "w") as fh:
        refs.to_csv(fh, float_format="%.6g")
    return refs.drop(columns="key")


def dataset_references(dataset: str, profile: str = "quick", *,
                       protocol: str = "heldout") -> pd.DataFrame:
    """:func:`reference_scores` of ``dataset`` under ``protocol`` (``heldout``: the test split
    the sweeps score on; ``paper``: the whole series), from the committed table
    :func:`reference_path` when its key matches (:func:`reference_key`), else computed once
    into ``build/references/`` (about a minute on one core). The same for every
    ``profile`` (kept for the callers: every profile's sweep splits and generates alike)."""
    _check(dataset, profile)
    _check_protocol(protocol)
    return _dataset_references(dataset, protocol).copy()


def failure_thresholds(dataset: str, profile: str = "quick", *,
                       protocol: str = "heldout") -> dict[str, float]:
    """Per metric of :data:`REFERENCE_METRICS`, :func:`failure_threshold` on ``dataset``
    under ``protocol``."""
    refs = dataset_references(dataset, profile, protocol=protocol)
    return {m: failure_threshold(refs, m) for m in REFERENCE_METRICS}


def sanity_check(refs: pd.DataFrame, metric: str = "D_stsp", *,
                 margin: float = SANITY_MARGIN, min_in_box: float = MIN_IN_BOX
                 ) -> dict[str, Any]:
    """The sanity rule on one metric of a reference table with a ``sanity proxy`` row: the
    data's own stand-in for a perfect free run (:func:`~.metrics.sanity_proxy`) must score
    below s_0 + ``margin`` · (threshold − s_0), with the threshold the failed range's start
    (:func:`failure_threshold`) and s_0 the data's score against itself (the floor: 0 except
    for the authors' D_H), i.e. within half the success range above the floor, and, for our
    binned D_stsp, keep at least ``min_in_box`` of its points in the box (the rule
    :func:`run_status` applies to runs). Returns proxy score, threshold, the proxy's
    fraction in the box (NaN for the GMM) and ``passes`` (False where no threshold exists)."""
    if "sanity proxy" not in refs.index:
        raise KeyError("the reference table has no 'sanity proxy' row (compute_references)")
    thr = failure_threshold(refs, metric, min_in_box=min_in_box)
    value = float(refs.loc["sanity proxy", metric])
    floor = float(refs.loc["data", metric]) if "data" in refs.index else 0.0
    frac = np.nan
    if metric == "D_stsp" and "frac_in_box" in refs.columns:
        frac = float(refs.loc["sanity proxy", "frac_in_box"])
    passes = bool(np.isfinite(thr) and np.isfinite(value)
                  and value < floor + margin * (thr - floor)
                  and not (np.isfinite(frac) and frac < min_in_box))
    return {"metric": metric, "proxy": value, "threshold": thr, "frac_in_box": frac,
            "passes": passes}


def protocol_sanity(dataset: str, protocol: str = "heldout", profile: str = "quick"
                    ) -> dict[str, Any]:
    """:func:`sanity_check` of ``dataset`` under ``protocol`` on the protocol's D_stsp
    (:data:`PROTOCOL_METRIC`), from its references (:func:`dataset_references`)."""
    refs = dataset_references(dataset, profile, protocol=protocol)
    return sanity_check(refs, PROTOCOL_METRIC[protocol])


def scorable(dataset: str, protocol: str = "heldout", profile: str = "quick") -> bool:
    """Whether ``dataset``'s runs can be scored under ``protocol``: the sanity rule
    (:func:`protocol_sanity`). Where it fails, the data's own other stretch already lies in
    the failed range: runs are "not scorable under this protocol", never failed runs."""
    return protocol_sanity(dataset, protocol, profile)["passes"]


def sanity_table(datasets: list[str] | None = None,
                 protocols: tuple[str, ...] = PROTOCOLS) -> pd.DataFrame:
    """The sanity rule for every data set and protocol and each metric of
    :data:`REFERENCE_METRICS`: one row per (dataset, protocol, metric)."""
    rows = []
    for d in datasets or [d for d in PAPER_TAUS if dataset_available(d)]:
        for protocol in protocols:
            refs = dataset_references(d, protocol=protocol)
            for m in REFERENCE_METRICS:
                rows.append({"dataset": d, "protocol": protocol,
                             "decides": m == PROTOCOL_METRIC[protocol],
                             **sanity_check(refs, m)})
    return pd.DataFrame(rows)


def tau_curve(agg: pd.DataFrame, architecture: str) -> pd.DataFrame:
    """One architecture's sparse-forcing rows of :func:`aggregate` (plain τ only), by τ."""
    sel = agg[(agg["architecture"] == architecture) & (agg["mode"] == "sparse")
              & agg["condition"].str.fullmatch(r"τ=\d+")]
    return sel.sort_values("tau").reset_index(drop=True)


def clip_levels(agg: pd.DataFrame, metric: str = "D_stsp") -> dict[str, float]:
    """Per architecture, the mean ``metric`` of the BPTT (clipping baseline) rows of
    :func:`aggregate`, over their scored runs (NaN where an architecture has none, or none
    was scored)."""
    return {a: float(agg.loc[(agg["architecture"] == a) & (agg["mode"] == "bptt"), metric]
                     .mean()) for a in ARCHITECTURES}


def best_tau(agg: pd.DataFrame, architecture: str, metric: str = "D_stsp", *,
             statistic: str = "mean") -> tuple[int, float]:
    """(τ, value) of the lowest ``statistic`` ("mean" or "median" over scored runs) of
    ``metric`` on one architecture's τ curve, among the τ whose runs were mostly scored
    (:func:`aggregate`'s ``majority_scored``); (-1, NaN) when there is none."""
    if statistic not in ("mean", "median"):
        raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    metric = metric if statistic == "mean" else f"{metric}_median"
    curve = tau_curve(agg, architecture).dropna(subset=[metric])
    if "majority_scored" in curve:
        curve = curve[curve["majority_scored"].astype(bool)]
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


def trained_members(spec: SweepSpec, profile: str, architecture: str,
                    select: Callable[[MemberConfig], bool]) -> list[tuple[MemberConfig, Any]]:
    """(configuration, single-member model) of every member of a finished sweep that
    ``select`` accepts, read from its checkpoints in ``build/sweeps/<profile>/<name>`` (run
    :func:`sweep_table` with ``source="train"`` first)."""
    out = paths.BUILD_DIR / "sweeps" / profile / spec.name
    members = spec.member_configs()
    obs_dim = load_sweep_data(spec)[0].shape[1]
    chosen = []
    for job, arch, index in sweep_jobs(spec):
        if arch != architecture:
            continue
        ckpt = out / "checkpoints" / f"{job}.pt"
        if not ckpt.exists():
            raise FileNotFoundError(f"{ckpt} missing: train the sweep first")
        sub = members[index.start: index.stop]
        state = training.new_state(sub, spec.train_settings(arch), obs_dim, device="cpu")
        training.load_checkpoint(state, ckpt)
        chosen += [(m, state.model.member(e)) for e, m in enumerate(sub) if select(m)]
    return chosen


def save_models(models: list[tuple[MemberConfig, Any]], path: str | Path) -> Path:
    """Write single-member models (architecture, sizes, parameters, configuration): small
    enough to commit, rebuilt by :func:`load_models` without the sweep's checkpoints."""
    blob = [dict(config=asdict(m), model=type(model).__name__.lower(),
                 latent_dim=model.latent_dim, obs_dim=model.obs_dim,
                 dtype=str(model.dtype).removeprefix("torch."),
                 state={k: v.detach().cpu() for k, v in model.state_dict().items()})
            for m, model in models]
    with paths.atomic_open(path) as fh:
        torch.save(blob, fh)
    return Path(path)


def load_models(path: str | Path) -> list[tuple[MemberConfig, Any]]:
    """The models written by :func:`save_models`."""
    names = {cls.__name__.lower(): name for name, cls in MODELS.items()}
    out = []
    for d in torch.load(path, map_location="cpu", weights_only=True):
        model = make_model(names[d["model"]], d["latent_dim"], d["obs_dim"],
                           dtype=getattr(torch, d["dtype"]))
        model.load_state_dict(d["state"])
        out.append((MemberConfig(**d["config"]), model))
    return out
