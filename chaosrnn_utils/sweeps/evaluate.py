"""The evaluation hand-off: a trained job's members scored under each protocol
(:func:`evaluate_protocols`, :data:`PROTOCOL_KEYS`) into its rows, and its final parameters
kept beside the part (:func:`save_job_models`, :func:`load_job_models`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import metrics, paths, training
from ..forcing import MemberConfig
from ..models import MODELS
from ..training import TrainSettings
from .spec import MEMBER_FIELDS, SweepSpec, eval_epochs, load_sweep_data
from .store import git_commit


def _rows(spec: SweepSpec, arch: str, settings: TrainSettings, members: list[MemberConfig],
          state: training.TrainState, scores: list[dict[str, Any]], commit: str,
          first: int = 0, inputs: dict[str, str] | None = None,
          eval_epoch: int | None = None) -> pd.DataFrame:
    """One row per member: identity, configuration, metrics, training outcome, provenance
    (commit, ``inputs`` of :func:`sweep_inputs`); ``eval_epoch`` (learning curves) after
    the member index when given."""
    summary = training.member_summary(state, members)
    settings_json = json.dumps(asdict(settings), sort_keys=True)
    rows = []
    for e, (summ, score) in enumerate(zip(summary, scores, strict=True)):
        row: dict[str, Any] = dict(sweep=spec.name, dataset=spec.dataset, architecture=arch,
                                   member=first + e)
        if eval_epoch is not None:
            row["eval_epoch"] = eval_epoch
        row.update({k: summ[k] for k in MEMBER_FIELDS})
        row.update({k: v for k, v in score.items() if k != "member"})
        row.update({k: summ[k] for k in ("final_loss", "diverged", "diverged_epoch",
                                         "epochs_done")})
        row.update(wall_time=state.wall_time, git_commit=commit, **(inputs or {}),
                   settings=settings_json)
        rows.append(row)
    return pd.DataFrame(rows)


#: the keys of :func:`metrics.evaluate` a further protocol adds, as ``<key>_<protocol>``
PROTOCOL_KEYS = ("D_stsp", "frac_in_box", "D_H", "D_stsp_authors", "frac_in_box_authors",
                 "D_H_authors", "PE1", "PE5", "PE25")


def evaluate_protocols(spec: SweepSpec, model: Any, x_train: np.ndarray,
                       x_test: np.ndarray) -> list[dict[str, Any]]:
    """Per member, :func:`metrics.evaluate` under ``heldout`` (plain keys) and under every
    further protocol of ``spec.protocols`` (:data:`PROTOCOL_KEYS` suffixed ``_<protocol>``:
    target :func:`metrics.protocol_target`, its GMM layout, no second Lyapunov exponent)."""
    scores = metrics.evaluate(model, x_test, n_generate=spec.n_generate)
    for protocol in spec.protocols[1:]:
        target = metrics.protocol_target(x_train, x_test, protocol)
        more = metrics.evaluate(model, target, n_generate=spec.n_generate, lyap_steps=0,
                                gmm_layout=metrics.PROTOCOL_GMM_LAYOUT[protocol])
        for row, extra in zip(scores, more, strict=True):
            row.update({f"{k}_{protocol}": extra[k] for k in PROTOCOL_KEYS})
    return scores


def models_path(part: Path) -> Path:
    """``parts/<job>.models.pt`` beside a part ``parts/<job>.csv``."""
    return part.with_suffix(".models.pt")


def save_job_models(state: training.TrainState, members: list[MemberConfig],
                    path: Path) -> Path:
    """Write a job's final parameters (every member, the diverged ones frozen at their last
    finite values) with the member configurations and model sizes, atomically: a few kB per
    member, so that a finished sweep can be scored again without retraining."""
    model = state.model
    blob = dict(model=type(model).__name__, latent_dim=model.latent_dim,
                obs_dim=model.obs_dim, n_models=model.n_models, seeds=list(model.seeds),
                dtype=str(model.dtype).removeprefix("torch."),
                options=model._extra_config(), members=[asdict(m) for m in members],
                alive=[bool(v) for v in state.alive.detach().cpu()],
                state={k: v.detach().cpu() for k, v in model.state_dict().items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with paths.atomic_open(path) as fh:
        torch.save(blob, fh)
    return path


def load_job_models(path: str | Path) -> tuple[list[MemberConfig], Any]:
    """(member configurations, ensemble model on the CPU) written by :func:`save_job_models`."""
    d = torch.load(path, map_location="cpu", weights_only=True)
    names = {cls.__name__: name for name, cls in MODELS.items()}
    model = MODELS[names[d["model"]]](d["latent_dim"], d["obs_dim"], n_models=d["n_models"],
                                      seeds=d["seeds"], dtype=getattr(torch, d["dtype"]),
                                      **d["options"])
    model.load_state_dict(d["state"])
    return [MemberConfig(**m) for m in d["members"]], model


def _evaluate_job(spec: SweepSpec, job: str, arch: str, index: range,
                  state: training.TrainState, ckpt: Path, x_test: np.ndarray,
                  inputs: dict[str, str], device: str | None, *,
                  x_train: np.ndarray | None = None) -> pd.DataFrame:
    """The rows of a trained job: its members evaluated (:func:`evaluate_protocols`) at every
    epoch of :func:`eval_epochs`, the last from ``state``, the others from the snapshots
    kept beside ``ckpt``; on ``device`` (None: where the job trained)."""
    if x_train is None:
        x_train = load_sweep_data(spec)[0]
    settings, commit = spec.train_settings(arch), git_commit()
    members = spec.member_configs()[index.start: index.stop]
    frames = []
    for epoch in eval_epochs(spec, arch):
        at = state
        if epoch != state.epoch:
            snap = training.snapshot_path(ckpt, epoch)
            if not snap.exists():
                raise training.CheckpointError(
                    f"[{spec.name}] {job}: no snapshot {snap} of epoch {epoch} for the "
                    f"learning curve (the job was trained without it); delete {ckpt} to "
                    "train it again")
            at = training.load_state(snap, members, settings, state.model.obs_dim,
                                     device=state.model.device)
        model = at.model if device is None else at.model.to(device)
        scores = evaluate_protocols(spec, model, x_train, x_test)
        frames.append(_rows(spec, arch, settings, members, at, scores, commit, index.start,
                            inputs, eval_epoch=epoch if spec.eval_epochs else None))
    return pd.concat(frames, ignore_index=True)
