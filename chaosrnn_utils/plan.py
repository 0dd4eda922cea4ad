"""The plan of ``reproduce``: which notebooks train and which redraw a committed profile
(:func:`plan_reproduce`), the parts they cut into (sweep jobs and notebooks, each with its
estimate: :func:`build_parts`), their order, longest critical path first (:func:`simulate`),
and the plan's text (:func:`plan_text`)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from . import paths
from .runner import check_parameters, notebook_parameters

#: notebooks the main job runs once per value of one parameter (the committed copy holds the
#: first value's run); executed copies are named ``<stem>_<value>.ipynb``
EXPANSIONS = {"06_tau_sweep": ("dataset", ("lorenz", "lorenz2d", "roessler", "duffing",
                                           "mackey_glass", "temperature", "eeg"))}


#: what the main job gives the notebooks that train, unless ``-p`` says otherwise: their own
#: default is to redraw the committed results (what nbval checks); ``reproduce`` trains
MAIN_JOB = {"06_tau_sweep": {"source": "train"}, "07_lorenz_attractors": {"source": "train"},
            "09_ablations": {"source": "train"}}


#: the notebooks whose results depend on the training budget: the only ones with ``medium``
#: settings (the others' quick run stands for them)
BUDGET_NOTEBOOKS = (*MAIN_JOB, "08_empirical_data")


#: what each training notebook redraws with ``source = "committed"`` (under
#: ``data/results/<profile>/``); a run without them is skipped, saying so
COMMITTED_INPUTS = {"06_tau_sweep": ("tau_sweep_{dataset}.csv",),
                    "07_lorenz_attractors": ("tau_sweep_lorenz.csv",
                                             "lorenz_lstm_attractors.pt"),
                    "08_empirical_data": ("tau_sweep_temperature.csv", "tau_sweep_eeg.csv"),
                    "09_ablations": ("ablations_lorenz.csv",)}


class Run(NamedTuple):
    """One notebook execution of ``reproduce``: its parameters, the executed copy's name
    (None: the notebook's), for a run that cannot happen here why it is skipped, and a note
    printed with the plan (a redraw: what it redraws and how to retrain instead)."""

    notebook: Path
    parameters: dict[str, Any]
    name: str | None = None
    skip: str | None = None
    note: str | None = None


#: what the quick main job trains (notebook, the parameter that selects the run or None):
#: the runs that test the claims its notebooks assert (Lorenz-63's τ effect with the LSTM,
#: the ablations' margins) and notebook 07, which reuses the Lorenz sweep; every other
#: training notebook's run redraws the best committed profile (:func:`best_committed`)
QUICK_TRAINED = {"06_tau_sweep": ("dataset", "lorenz"), "07_lorenz_attractors": None,
                 "09_ablations": None}


#: the profiles a redraw is taken from, best first
REDRAW_PROFILES = ("paper", "medium")


def committed_inputs(stem: str, parameters: dict[str, Any], profile: str) -> list[str]:
    """The tables of :data:`COMMITTED_INPUTS` that ``stem`` with ``parameters`` lacks under
    ``data/results/<profile>/`` (empty: it can redraw them)."""
    folder = paths.RESULTS_DIR / profile
    names = [n.format(**parameters) for n in COMMITTED_INPUTS.get(stem, ())]
    return [n for n in names if not (folder / n).exists()]


def best_committed(stem: str, parameters: dict[str, Any]) -> str | None:
    """The first profile of :data:`REDRAW_PROFILES` whose committed tables ``stem`` can
    redraw with ``parameters``, None when there is none."""
    return next((p for p in REDRAW_PROFILES
                 if not committed_inputs(stem, parameters, p)), None)


def training_estimate(run: Run, profile: str, lanes: int = 2) -> float:
    """Seconds the sweeps of ``run`` would take to train at ``profile`` on ``lanes`` cores of
    the committed machine (:func:`~.sweeps.job_estimate` of every job, ÷ ``lanes``)."""
    from . import sweeps

    trained = run._replace(parameters={**run.parameters, "profile": profile,
                                       "source": "train"})
    return sum(sweeps.job_estimate(spec, arch, len(index))
               for spec in _trained_specs(trained)
               for _, arch, index in sweeps.sweep_jobs(spec)) / lanes


def _retrain_hint(run: Run, profile: str) -> str:
    """The command that trains a redrawn run instead and what it costs (one line)."""
    stem = run.notebook.stem
    extra = "".join(f" -p {k} {v}" for k, v in run.parameters.items()
                    if k in ("dataset", "tau"))
    cost = training_estimate(run, profile)
    return (f"python3 tasks.py reproduce --profile {profile} --only {stem[:2]}{extra} "
            f"--train-all (about {_minutes(cost)} on 2 cores of the committed machine)")


def _quick_main_job(runs: list[Run]) -> list[Run]:
    """The quick main job's runs (:data:`QUICK_TRAINED` train at quick, the others redraw
    the best committed profile; for Lorenz-63's other architectures its whole committed
    sweep, so that the redraw rewrites that profile's figure with the same content), each
    redraw with its note."""
    out = []
    for run in runs:
        stem, params = run.notebook.stem, run.parameters
        if stem not in COMMITTED_INPUTS or run.skip is not None:
            out.append(run)
            continue
        trained = stem in QUICK_TRAINED and (
            QUICK_TRAINED[stem] is None
            or params.get(QUICK_TRAINED[stem][0]) == QUICK_TRAINED[stem][1])
        best = best_committed(stem, params)
        if trained:
            out.append(run._replace(parameters={**params, "source": "train"}))
            if stem == "06_tau_sweep" and best is not None:  # the architectures not trained
                from .experiments import ARCHITECTURES, tau_sweep_spec

                if set(ARCHITECTURES) - set(tau_sweep_spec(params["dataset"]).architectures):
                    # the whole committed sweep: its figure is the profile's one, never a part
                    out.append(_redraw(run, best))
            continue
        if best is None:  # nothing committed to redraw: train it at quick
            out.append(run._replace(parameters={**params, **MAIN_JOB.get(stem, {})}))
            continue
        out.append(_redraw(run, best))
    return out


def _redraw(run: Run, profile: str, extra: dict[str, Any] | None = None) -> Run:
    """``run`` redrawing the committed tables of ``profile``."""
    params = {**run.parameters, "profile": profile, "source": "committed", **(extra or {})}
    stem = run.notebook.stem
    name = (run.name or run.notebook.name).removesuffix(".ipynb") + f"_{profile}.ipynb"
    return Run(run.notebook, params, name,
               note=f"redraws the committed {profile} results; to train instead: "
                    f"{_retrain_hint(run._replace(parameters=params), profile)}"
               if stem != "08_empirical_data" else
               f"redraws the committed {profile} results (notebook 06's tables)")


def plan_reproduce(selected: Sequence[Path], profile: str,
                   given: dict[str, Any] | None = None, committed: bool = False, *,
                   train_all: bool = False, whole: bool = False) -> list[Run]:
    """The runs of ``reproduce``, every parameter checked before any kernel starts.

    ``profile`` goes to every notebook. What the training notebooks (:data:`MAIN_JOB`) do:
    with ``committed`` they redraw the committed results of ``profile``; with ``train_all``
    they train; a ``source`` given wins. Otherwise ``whole`` (the main job: every notebook,
    no ``-p``) at ``quick`` trains what :data:`QUICK_TRAINED` names and redraws the rest from
    the best committed profile (:func:`best_committed`); ``whole`` at another profile
    trains; a notebook run alone (``--only``, ``-p``) redraws the committed results of
    ``profile`` when they are there (its note says how to train instead), else trains.
    At ``medium`` only the notebooks
    of :data:`BUDGET_NOTEBOOKS` run, the others are skipped saying so; each of ``given``
    (the ``-p`` values, ``--seed`` as ``seed``) goes to the selected notebooks whose
    parameters cell declares it, and wins.
    Refused (ValueError): ``profile`` in ``given`` (only ``--profile`` sets it), a name no
    selected notebook declares, a value of the wrong type. A notebook of :data:`EXPANSIONS` is
    run once per value of its parameter, or once with the value given; a data set given but
    not available here raises FileNotFoundError, one left to the loop is skipped.
    """
    given = dict(given or {})
    if "profile" in given:
        raise ValueError("the profile is set with --profile, not with -p profile")
    declared = {nb: notebook_parameters(nb) for nb in selected}
    names = sorted(set().union(*declared.values())) if declared else []
    for name in given:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown parameter {name!r}: no selected notebook declares it"
                             f"{hint} (parameters: {', '.join(names)})")
    runs = []
    for nb in selected:
        main_job = {} if committed else MAIN_JOB.get(nb.stem, {})
        if "source" in given and "source" in declared[nb]:
            main_job = {}
        params = {"profile": profile, **main_job,
                  **{k: v for k, v in given.items() if k in declared[nb]}}
        check_parameters(nb, params)
        if profile == "medium" and nb.stem not in BUDGET_NOTEBOOKS:
            runs.append(Run(nb, params, skip="no medium settings: its quick run stands"))
            continue
        if nb.stem not in EXPANSIONS:
            runs.append(Run(nb, params))
            continue
        from .experiments import dataset_available

        key, values = EXPANSIONS[nb.stem]
        if key in params and params[key] not in values:
            close = difflib.get_close_matches(str(params[key]), values, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{nb.name}: unknown {key} {params[key]!r}{hint} "
                             f"(known: {', '.join(values)})")
        for value in [params[key]] if key in params else values:
            skip = None
            if key == "dataset" and not dataset_available(value):
                skip = "the authors' data file is not here, see data/README.md"
                if key in given:
                    raise FileNotFoundError(f"{nb.name}: {key} {value!r}: {skip}")
            runs.append(Run(nb, {**params, key: value}, f"{nb.stem}_{value}.ipynb", skip))
    if not committed and not train_all and "source" not in given:
        if whole and profile == "quick":
            runs = _quick_main_job(runs)
        elif not whole:
            runs = [_alone(r, profile) for r in runs]
    return [r if r.skip else r._replace(skip=_missing_committed(r)) for r in runs]


def _alone(run: Run, profile: str) -> Run:
    """A training notebook run alone: it redraws the committed results of ``profile`` when
    they are there (saying how to train instead), else trains as the main job does."""
    stem = run.notebook.stem
    if (run.skip is not None or stem not in MAIN_JOB
            or committed_inputs(stem, run.parameters, profile)):
        return run
    params = {k: v for k, v in run.parameters.items() if k != "source"}
    return run._replace(parameters=params,
                        note=f"redraws the committed {profile} results; to train instead: "
                             f"{_retrain_hint(run, profile)}")


def _missing_committed(run: Run) -> str | None:
    """Why a training notebook that redraws committed results cannot run (its tables of
    :data:`COMMITTED_INPUTS` are not committed at its profile), None when it can."""
    source = run.parameters.get("source", "committed")
    if run.notebook.stem not in COMMITTED_INPUTS or source != "committed":
        return None
    folder = paths.RESULTS_DIR / run.parameters["profile"]
    missing = [name.format(**run.parameters) for name in COMMITTED_INPUTS[run.notebook.stem]]
    missing = [m for m in missing if not (folder / m).exists()]
    if not missing:
        return None
    where = folder.relative_to(paths.ROOT) if folder.is_relative_to(paths.ROOT) else folder
    return (f"no committed {', '.join(missing)} in {where} yet "
            f"(python3 tasks.py train --profile {run.parameters['profile']})")


#: seconds each notebook's own work takes on the committed machine (a quiet 2-core AMD
#: EPYC; the training of its sweeps is counted apart, :func:`~.sweeps.job_estimate`):
#: notebooks 01-05 about 4.5 min together (6 min beside the sweep's two workers in the
#: README's measured main job), split as their papermill durations were measured side by
#: side (01 65 %); a redraw of notebook 06 mostly the failure thresholds' reference runs
#: (about a minute per data set the first time)
NOTEBOOK_S = {"01_systems_and_lyapunov": 160.0, "02_theorem_fixed_points_and_cycles": 25.0,
              "03_theorem_chaos": 25.0, "04_boundary_quasiperiodic": 25.0,
              "05_sparse_forcing_bounds_gradients": 35.0, "06_tau_sweep": 75.0,
              "07_lorenz_attractors": 40.0, "08_empirical_data": 40.0, "09_ablations": 30.0}


class Part(NamedTuple):
    """One piece of work of the main job's pool: a notebook run (``run``) or one sweep job
    (``job``: spec as a dict, folder, job name, architecture, member indices, inputs), its
    estimated seconds on this machine and the parts it waits for."""

    name: str
    estimate: float
    after: tuple[str, ...] = ()
    run: Run | None = None
    job: tuple[Any, ...] | None = None


def _trained_specs(run: Run) -> list[Any]:
    """The sweeps a training notebook's run trains (none for a redraw)."""
    from . import experiments as ex

    p, stem = run.parameters, run.notebook.stem
    if p.get("source", "committed") != "train":
        return []
    if stem == "06_tau_sweep":
        return [ex.tau_sweep_spec(p["dataset"], p["profile"])]
    if stem == "07_lorenz_attractors":
        return [ex.tau_sweep_spec("lorenz", p["profile"])]
    if stem == "08_empirical_data":
        return [ex.tau_sweep_spec(d, p["profile"]) for d in ("temperature", "eeg")]
    if stem == "09_ablations":
        return [ex.ablation_spec(p["profile"], tau=p.get("tau", 30))]
    return []


def build_parts(runs: Sequence[Run], scale: float = 1.0, *, jobs: bool = True) -> list[Part]:
    """The parts of ``runs`` (skipped ones left out): with ``jobs`` every unfinished job of
    the sweeps they train is a part of its own (its sweep folder claimed now,
    :func:`~.sweeps.pending_jobs`) that the notebook waits for, and a notebook that trains a
    sweep another notebook trained too waits for that one (they share its folder); without,
    a notebook's estimate includes its sweeps' jobs run by its own two workers. Estimates ×
    ``scale`` (:func:`~.sweeps.calibrate`)."""
    from . import experiments as ex
    from . import sweeps

    parts: list[Part] = []
    owner: dict[str, str] = {}  # sweep folder -> the part of the notebook that trained it
    for run in runs:
        if run.skip is not None:
            continue
        name = (run.name or run.notebook.name).removesuffix(".ipynb")
        after, train_s = [], 0.0
        for spec in _trained_specs(run):
            out = ex.sweep_dir(spec, run.parameters["profile"])
            if str(out) in owner:
                after.append(owner[str(out)])
                continue
            owner[str(out)] = name
            if jobs:
                inputs, todo = sweeps.pending_jobs(spec, out)
            else:
                todo, inputs = [j for j in sweeps.sweep_jobs(spec)
                                if not (out / "parts" / f"{j[0]}.csv").exists()], {}
            for job, arch, index in todo:
                est = sweeps.job_estimate(spec, arch, len(index), scale)
                if jobs:
                    parts.append(Part(f"train {spec.name} {job}", est,
                                      job=(spec.to_dict(), str(out), job, arch, index, inputs)))
                    after.append(parts[-1].name)
                else:
                    train_s += est / 2
        if run.notebook.stem == "08_empirical_data":  # the thresholds notebook 06 caches
            after += [p.name for p in parts if p.run is not None
                      and p.run.notebook.stem == "06_tau_sweep"
                      and p.run.parameters.get("dataset") in ("temperature", "eeg")
                      and p.run.parameters["profile"] == run.parameters["profile"]]
        own = NOTEBOOK_S.get(run.notebook.stem, 60.0) * scale
        parts.append(Part(name, own + train_s, tuple(after), run=run))
    return parts


def priorities(parts: Sequence[Part]) -> dict[str, float]:
    """Each part's bottom level: its estimate plus the longest chain of estimates of the
    parts that wait for it (the critical path from its start to the end)."""
    waiting: dict[str, list[str]] = {p.name: [] for p in parts}
    for p in parts:
        for a in p.after:
            if a not in waiting:
                raise ValueError(f"{p.name} waits for {a}, a part that is not there")
            waiting[a].append(p.name)
    est = {p.name: p.estimate for p in parts}
    level: dict[str, float] = {}

    def bottom(name: str) -> float:
        if name not in level:
            level[name] = est[name] + max((bottom(w) for w in waiting[name]), default=0.0)
        return level[name]

    return {p.name: bottom(p.name) for p in parts}


def _next_ready(pending: dict[str, Part], done: set[str], prio: dict[str, float]
                ) -> Part | None:
    ready = [p for p in pending.values() if set(p.after) <= done]
    return max(ready, key=lambda p: (prio[p.name], p.estimate), default=None)


def simulate(parts: Sequence[Part], lanes: int) -> dict[str, tuple[int, float, float]]:
    """The schedule the pool follows if every part takes its estimate: whenever a lane is
    free it starts the ready part (all it waits for done) with the longest critical path
    (:func:`priorities`; longest first). Returns part name → (lane, start, end) seconds."""
    prio = priorities(parts)
    pending = {p.name: p for p in parts}
    running: list[tuple[float, int, str]] = []
    done: set[str] = set()
    out: dict[str, tuple[int, float, float]] = {}
    now = 0.0
    while pending or running:
        idle = [k for k in range(lanes) if k not in {r[1] for r in running}]
        while idle and (part := _next_ready(pending, done, prio)) is not None:
            lane = idle.pop(0)
            del pending[part.name]
            running.append((now + part.estimate, lane, part.name))
            out[part.name] = (lane, now, now + part.estimate)
        if not running:
            raise ValueError(f"parts wait for parts that are not there: {sorted(pending)}")
        running.sort()
        now, _, name = running.pop(0)
        done.add(name)
        while running and running[0][0] <= now:
            done.add(running.pop(0)[2])
    return out


def _minutes(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def plan_text(parts: Sequence[Part], lanes: int, scale: float, calibrated: bool = True
              ) -> str:
    """The plan the main job prints before it starts: each part with its estimate, in the
    order the pool starts them (:func:`simulate`), the projected wall time and CPU use;
    ``scale``: :func:`~.sweeps.calibrate` (``calibrated`` False: not measured)."""
    sched = simulate(parts, lanes)
    total = sum(p.estimate for p in parts)
    wall = max((e for _, _, e in sched.values()), default=0.0)
    lines = [f"Plan: {len(parts)} part(s) on {lanes} lane(s); " + (
        f"this machine runs an epoch in {scale:.2f}× the committed machine's time"
        if calibrated else "estimates on the committed machine (nothing to train here)")]
    for p in sorted(parts, key=lambda p: sched[p.name][1]):
        lane, t0, _ = sched[p.name]
        lines.append(f"  {p.name:<52} ~{_minutes(p.estimate):>13}  (lane {lane + 1}, from "
                     f"{_minutes(t0)})")
    ratio = total / wall if wall else float("nan")
    lines.append(f"Estimated: {_minutes(wall)} wall, {total / 60:.1f} CPU-minutes "
                 f"(CPU/wall {ratio:.2f})")
    return "\n".join(lines)


def redraw_line(runs: Sequence[Run]) -> str | None:
    """One line naming what the main job redrew from committed results and how to retrain
    it (None when it redrew nothing)."""
    redrawn = [r for r in runs if r.skip is None and r.note and r.note.startswith("redraws")]
    if not redrawn:
        return None
    what = ", ".join(f"{r.notebook.stem[:2]}"
                     + (f" {r.parameters['dataset']}" if "dataset" in r.parameters else "")
                     + (f" ({'/'.join(r.parameters['architectures'])})"
                        if r.parameters.get("architectures") else "")
                     + f" [{r.parameters['profile']}]" for r in redrawn)
    return (f"Redrawn from committed results: {what}. To retrain them: "
            "`python3 tasks.py reproduce --train-all` (every notebook at the quick budget) or "
            "`python3 tasks.py reproduce --profile medium` (the medium budget, hours).")
