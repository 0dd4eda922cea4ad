"""Update latency across ensemble sizes and sequence lengths, and the projected wall time of
every paper-profile sweep, on whatever device this runs on (CPU or GPU).

1. For each architecture (PLRNN, tanh RNN, LSTM) and path (``autograd``: the recorded
   per-step rollout; ``fused``: hand-written backpropagation through time, step by step;
   ``triton`` (CUDA with Triton): the same with the time loop as one Triton kernel per
   direction; ``static``: ``train(static=True)``, the update on fixed buffers (through
   Triton where it runs), replayed as one CUDA graph on a GPU, timed by
   ``device_runner.update_seconds``: k replays between two CUDA events, or with
   ``perf_counter`` after a synchronisation on the CPU), the latency of one
   ensemble update (batch 32, latent 30, sparse forcing with τ spread over the members) and
   its sample-steps/s, for members × sequence lengths (CUDA: {1, 150, 1 050} × {200, 1 000};
   CPU: {1, 50, 150} × {200}; ``--members``/``--seqs`` override); the authors-style single
   PLRNN loop of ``bench_training.py`` as the reference row.
2. Every τ sweep of the paper (``experiments.tau_sweep_spec(dataset, "paper")``: the paper's
   τ grid and clipping baseline × 5 seeds, sequence length max(200, largest τ)) and the Lorenz
   ablations: the fused update latency at the sweep's own ensemble size and sequence length,
   × 30 000 updates, per architecture; totals for one process and for ``--workers`` processes
   (CUDA: with the static update, the path a ``gpu-run`` window trains with, also in
   device-minutes and 10-minute windows).

A measuring script: it asserts nothing. Run from the repository root::

    .venv/bin/python benchmarks/bench_paper_sweeps.py [--device cuda] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import (  # noqa: E402
    BATCH,
    baseline_update_fn,
    engine_update_fn,
    fmt_rate,
    lorenz63,
    make_sync,
    time_calls,
)

from chaosrnn_utils import device_runner, triton_engine  # noqa: E402
from chaosrnn_utils import experiments as ex  # noqa: E402
from chaosrnn_utils.training import ENGINES, MemberConfig  # noqa: E402

ARCHS = ("plrnn", "rnn", "lstm")
UPDATES = 3000 * 10  # the paper's epochs × batches per epoch


def members_of(n: int, seq_len: int) -> list[MemberConfig]:
    """n members with τ spread over 5 … seq_len (so forcing steps differ per member)."""
    taus = torch.linspace(5, seq_len, steps=max(n, 1)).round().int().tolist()
    return [MemberConfig(seed=k, tau=int(t)) for k, t in enumerate(taus[:n])]


def latency(arch: str, engine: str, members: list[MemberConfig], seq_len: int, data,
            device: torch.device, reps: int) -> float:
    """Seconds per update; ``fused`` runs with the Triton engine switched off
    (``CHAOSRNN_TRITON=0``), ``triton`` is the fused engine with it on."""
    os.environ["CHAOSRNN_TRITON"] = "0" if engine == "fused" else "1"
    engine = "fused" if engine == "triton" else engine
    if engine == "static":
        from bench_training import bench_settings

        s = bench_settings(arch, seq_len)
        return device_runner.update_seconds(arch, len(members), seq_len, device=str(device),
                                            batch=s.batch_size, latent=s.latent_dim,
                                            dtype=s.dtype, reps=reps)
    phases: dict[str, list[float]] = {"fwd": [], "bwd": [], "opt": []}
    fn = engine_update_fn(arch, engine, data, device, phases, make_sync(device),
                          members=members, seq_len=seq_len)
    return time_calls(fn, make_sync(device), warmup=1, reps=reps, min_reps=reps,
                      budget_s=0.0)["median"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--members", type=int, nargs="+")
    p.add_argument("--seqs", type=int, nargs="+")
    p.add_argument("--reps", type=int, default=3, help="timed updates per case")
    p.add_argument("--workers", type=int, default=2, help="processes for the projection")
    p.add_argument("--engines", nargs="+", help="paths of the grid (default: all that run "
                   "here: autograd fused [triton] static)")
    p.add_argument("--skip-grid", action="store_true")
    p.add_argument("--skip-projection", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    members = args.members or ([1, 150, 1050] if cuda else [1, 50, 150])
    seqs = args.seqs or ([200, 1000] if cuda else [200])
    name = torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu"
    print(f"torch {torch.__version__}, device {device} ({name}), threads "
          f"{torch.get_num_threads()}")
    data = torch.as_tensor(lorenz63(), dtype=torch.float32, device=device)

    if not args.skip_grid:
        print("\n1. Update latency (s) and sample-steps/s (members × batch × seq / s)")
        base = time_calls(baseline_update_fn(data, device), make_sync(device), warmup=2,
                          reps=10, min_reps=10, budget_s=0.0)["median"]
        print(f"   authors-style loop, 1 PLRNN, seq 200: {base:.4f} s, "
              f"{fmt_rate(BATCH * 200 / base)}")
        print(f"   {'arch':<6}{'engine':<10}{'members':>8}{'seq':>6}{'s/update':>11}"
              f"{'samp-steps/s':>14}")
        for arch in ARCHS:
            for engine in args.engines or (*ENGINES, *(
                    ("triton",) if triton_engine.available(device) else ()), "static"):
                for n in members:
                    for T in seqs:
                        t = latency(arch, engine, members_of(n, T), T, data, device,
                                    args.reps)
                        print(f"   {arch:<6}{engine:<10}{n:>8}{T:>6}{t:>11.4f}"
                              f"{fmt_rate(n * BATCH * T / t):>14}", flush=True)

    if args.skip_projection:
        return 0
    path = "static" if cuda else "fused"
    print(f"\n2. Projected paper-profile sweeps ({path} path, each sweep's epochs × batches "
          "per epoch, at its own ensemble size and sequence length)")
    specs = [ex.tau_sweep_spec(d, "paper") for d in ex.PAPER_TAUS] + [ex.ablation_spec("paper")]
    total = 0.0
    for spec in specs:
        n = len(spec.member_configs())
        hours = {}
        for arch in spec.architectures:
            st = spec.train_settings(arch)  # the sweep's own size and number of updates
            t = latency(arch, path, spec.member_configs(), st.seq_len, data, device, args.reps)
            hours[arch] = t * st.epochs * st.batches_per_epoch / 3600
        h = sum(hours.values())
        total += h
        print(f"   {spec.name:<26} {n:>3} members × {len(spec.architectures)} arch, seq "
              f"{spec.train_settings(spec.architectures[0]).seq_len:>4}: "
              + ", ".join(f"{a} {v:.2f} h" for a, v in hours.items())
              + f"  → {h:.2f} h", flush=True)
    print(f"   all sweeps, one process: {total:.1f} h; with {args.workers} workers "
          f"(even split): {total / args.workers:.1f} h")
    if cuda:
        print(f"   one GPU: {total * 60:.0f} device-minutes of training ≈ "
              f"{total * 6:.1f} windows of 10 minutes (evaluation not included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
