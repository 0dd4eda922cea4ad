"""How long a job takes: :func:`job_estimate` from the measured cost of one member-epoch
(:data:`MEMBER_EPOCH_S`, :data:`JOB_COST`, :data:`EVAL_COST`) and this machine's speed
(:func:`calibrate`)."""

from __future__ import annotations

import time

import torch

from .. import training
from .spec import SweepSpec, eval_epochs, load_sweep_data

# Relative cost of one update per architecture (measured, benchmarks/bench_training.py), to
# start the longest jobs first when workers run them side by side.
JOB_COST = {"lstm": 3.0}


#: seconds of one LSTM member-epoch (10 batches of 32 × 200 steps, latent 30, one thread) on
#: the machine the committed times come from (a quiet 2-core AMD EPYC, both cores busy:
#: the quick main job's measured parts, README), the unit of :func:`job_estimate`
MEMBER_EPOCH_S = 0.15


#: the evaluation of one member (100 000-step free run, D_stsp, D_H, λ_max) in LSTM
#: member-epochs, per architecture (measured side by side with the training epochs:
#: LSTM 14, RNN 4.7)
EVAL_COST = {"lstm": 14.0, "rnn": 5.0, "plrnn": 5.0}


def job_estimate(spec: SweepSpec, arch: str, members: int, scale: float = 1.0) -> float:
    """Estimated seconds of one job of ``members`` members of ``arch``: epochs × members ×
    :data:`MEMBER_EPOCH_S` (÷ :data:`JOB_COST` for the cheaper architectures; × the sequence
    length and batches relative to 200 and 10) for every evaluation epoch's model plus its
    evaluation (:data:`EVAL_COST`), × ``scale`` (this machine against the committed one,
    :func:`calibrate`)."""
    s = spec.train_settings(arch)
    per_epoch = (1.0 if arch == "lstm" else 1.0 / JOB_COST["lstm"]) \
        * s.seq_len / 200 * s.batches_per_epoch / 10 * s.batch_size / 32
    n_eval = len(eval_epochs(spec, arch))
    units = members * (s.epochs * per_epoch + n_eval * EVAL_COST.get(arch, 5.0))
    return units * MEMBER_EPOCH_S * scale


def calibrate(members: int = 6) -> float:
    """This machine's speed against the committed one's: the seconds of one LSTM epoch of
    ``members`` members (Lorenz-63, quick settings, one thread; timed after a first,
    warm-up epoch) over ``members`` × :data:`MEMBER_EPOCH_S`. About two epochs' time."""
    import dataclasses

    spec = SweepSpec(name="calibration", dataset="lorenz", architectures=["lstm"],
                     grid={"tau": [30], "seed": list(range(members))},
                     settings={"profile": "paper", "epochs": 1, "seq_len": 200})
    x_train = load_sweep_data(spec)[0]
    settings = dataclasses.replace(spec.train_settings("lstm"), epochs=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        training.train(x_train, spec.member_configs(), settings, device="cpu", progress=False)
        t0 = time.perf_counter()
        training.train(x_train, spec.member_configs(), settings, device="cpu", progress=False)
        took = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    return took / (members * MEMBER_EPOCH_S)
