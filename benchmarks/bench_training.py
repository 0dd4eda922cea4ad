"""Training-throughput benchmark of the ensemble engine (``chaosrnn_utils.training``).

Prints, for latent 30, batch 32, sequence length 200 and sparse forcing:

1. throughput in sample-steps per second (one latent step of one sequence of one model,
   forward and backward) of (a) one PLRNN trained alone by a plain per-time-step loop written
   here ("authors-style" baseline) and (b) 50-member ensembles (10 τ × 5 seeds) through the
   engine, and the ratio b/a;
   Both engines are timed: ``autograd`` (the reference path) and ``fused`` (hand-written
   backpropagation through time, the default);
2. the float32 matrix-multiply peak of this machine and the fraction of it reached by (b);
3. the projected wall time of a ``paper``-profile τ sweep (3 architectures × 10 τ × 5 seeds ×
   epochs × batches) against the 3-hour target;
4. the peak resident memory of the 50-member runs (target < 4 GiB).

This is a measuring script, not a test: it asserts nothing. Run it from the repository root::

    .venv/bin/python benchmarks/bench_training.py [--quick] [--device cpu|cuda] [--threads N]

See benchmarks/README.md for what every number means.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from chaosrnn_utils.training import (  # noqa: E402
    ENGINES,
    SETTINGS,
    MemberConfig,
    TrainSettings,
    all_windows,
    batch_windows,
    member_mse,
    new_state,
    schedule_masks,
    train,
    training_predictions,
)

TAUS = (5, 10, 20, 30, 40, 50, 60, 80, 100, 200)
SEEDS = tuple(range(5))
LATENT, BATCH, SEQ_LEN = 30, 32, 200
BASELINE_TAU = 30
ARCHITECTURES = ("plrnn", "lstm", "rnn")  # the sweep's three architectures
TARGET_HOURS, TARGET_CORES, TARGET_RSS_GIB = 3.0, 2, 4.0
GIB = 1024**3


# ----------------------------------------------------------------------------- helpers


def lorenz63(n: int = 10_000) -> np.ndarray:
    """The paper's standardised Lorenz-63 series from the package (scipy, cached), (n, 3).

    Only the window shapes matter for timing; a real chaotic series keeps the losses sane."""
    from chaosrnn_utils.data import paper_dataset

    return paper_dataset("lorenz", n)


def max_rss_bytes() -> int:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, B on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if platform.system() == "Darwin" else r * 1024


def make_sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def time_calls(fn: Callable[[], object], sync: Callable[[], None], *, warmup: int, reps: int,
               min_reps: int, budget_s: float) -> dict[str, float]:
    """Steady-state time of ``fn``: ``warmup`` untimed calls, then up to ``reps`` timed ones
    (stopping after ``budget_s`` seconds once ``min_reps`` are done). Returns the median and
    min wall time per call, and per call the process CPU time (user + system, all threads) and
    minor page faults."""
    for _ in range(warmup):
        fn()
    sync()
    times: list[float] = []
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    while len(times) < reps:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
        if len(times) >= min_reps and time.perf_counter() - start > budget_s:
            break
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    n = len(times)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return dict(median=statistics.median(times), min=min(times), n=n, cpu=cpu / n,
                sys=(r1.ru_stime - r0.ru_stime) / n, faults=(r1.ru_minflt - r0.ru_minflt) / n)


# ----------------------------------------------------------------------------- (a) baseline


class AuthorsPLRNN(nn.Module):
    """One PLRNN written the plain way: z ← A⊙z + W_offdiag relu(z) + h, one step at a time;
    every τ steps z ← B⁺x with B⁺ = pinv(B); x̂ = B z. Init as ``chaosrnn_utils.models.PLRNN``
    (A ~ U(0.5, 0.9), W, h, B ~ U(±1/√M), diag W = 0)."""

    def __init__(self, latent_dim: int, obs_dim: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        M, r = latent_dim, latent_dim**-0.5

        def u(shape: tuple[int, ...], lo: float, hi: float) -> nn.Parameter:
            return nn.Parameter(lo + (hi - lo) * torch.rand(shape, generator=g))

        self.A = u((M,), 0.5, 0.9)
        self.W = u((M, M), -r, r)
        self.h = u((M,), -r, r)
        self.B = u((obs_dim, M), -r, r)
        self.register_buffer("offdiag", 1.0 - torch.eye(M))

    def forward(self, x: Tensor, tau: int) -> Tensor:
        """x: (batch, T + 1, N) windows → predictions of x_1..x_T, (batch, T, N)."""
        B_pinv = torch.linalg.pinv(self.B)  # (M, N), differentiable
        W = self.W * self.offdiag
        z = x[:, 0] @ B_pinv.T
        out = []
        for t in range(x.shape[1] - 1):
            if t > 0 and t % tau == 0:
                z = x[:, t] @ B_pinv.T
            z = self.A * z + torch.relu(z) @ W.T + self.h
            out.append(z)
        return torch.stack(out, dim=1) @ self.B.T


def baseline_update_fn(data: Tensor, device: torch.device) -> Callable[[], None]:
    model = AuthorsPLRNN(LATENT, data.shape[1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    offsets = torch.arange(SEQ_LEN + 1)

    def update() -> None:
        starts = torch.randint(0, data.shape[0] - SEQ_LEN, (BATCH,), generator=g)
        x = data[(starts[:, None] + offsets).to(device)]  # (batch, T + 1, N)
        loss = nn.functional.mse_loss(model(x, BASELINE_TAU), x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()

    return update


# ----------------------------------------------------------------------------- (b) engine


def sweep_members() -> list[MemberConfig]:
    return [MemberConfig(seed=s, mode="sparse", tau=t) for t in TAUS for s in SEEDS]


def bench_settings(arch: str, seq_len: int = SEQ_LEN) -> TrainSettings:
    return replace(SETTINGS["paper"], model=arch, latent_dim=LATENT, batch_size=BATCH,
                   seq_len=seq_len)


Predict = Callable[[nn.Module, Tensor, dict], tuple[Tensor, Tensor]]


def engine_update_fn(arch: str, engine: str, data: Tensor, device: torch.device,
                     phases: dict[str, list[float]], sync: Callable[[], None], *,
                     members: list[MemberConfig] | None = None,
                     seq_len: int = SEQ_LEN, predict: Predict | None = None
                     ) -> Callable[[], None]:
    """One ensemble update the way ``train`` does it (batch draw, masks, rollout, loss,
    backward, Adam) through ``engine``, without its per-member clipping and divergence
    bookkeeping; appends the forward / backward / optimiser times to ``phases``. Members:
    the benchmark's 50 (10 τ × 5 seeds) unless given. ``predict(model, x, masks)``, if
    given, replaces ``training_predictions`` (another revision's engine, see
    :func:`fused_at`)."""
    members = sweep_members() if members is None else members
    settings = bench_settings(arch, seq_len)
    state = new_state(members, settings, data.shape[1], device=device)
    model, opt = state.model, state.optimizer
    T, nb = settings.seq_len, settings.batch_size
    windows = all_windows(data.to(device), T)

    def update() -> None:
        t0 = time.perf_counter()
        starts = torch.stack([torch.randint(0, data.shape[0] - T, (nb,), generator=g)
                              for g in state.generators])
        masks = schedule_masks(members, T, 0, settings.epochs, state.generators)
        x = batch_windows(windows, starts.to(device))  # (E, B, T + 1, N), as train() draws
        pred, target = (training_predictions(model, x, masks, engine) if predict is None
                        else predict(model, x, masks))
        loss = member_mse(pred, target)  # as train() computes it
        sync()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss.sum().backward()
        sync()
        t2 = time.perf_counter()
        opt.step()
        sync()
        t3 = time.perf_counter()
        phases["fwd"].append(t1 - t0)
        phases["bwd"].append(t2 - t1)
        phases["opt"].append(t3 - t2)

    return update


def _timed_half(arch: str, k: int, n: int, barrier, reps: int) -> float:
    """In a worker process: median s/update of the fused engine on members k::n of the
    benchmark's 50, one thread, started together with the other workers."""
    torch.set_num_threads(1)
    data = torch.as_tensor(lorenz63(), dtype=torch.float32)
    phases: dict[str, list[float]] = {"fwd": [], "bwd": [], "opt": []}
    fn = engine_update_fn(arch, "fused", data, torch.device("cpu"), phases, lambda: None,
                          members=sweep_members()[k::n])
    fn()
    barrier.wait()
    return time_calls(fn, lambda: None, warmup=1, reps=reps, min_reps=reps,
                      budget_s=0.0)["median"]


def concurrent_per_update(arch: str, n: int, reps: int) -> float:
    """s/update of the 50-member ensemble split over ``n`` single-thread processes running
    at the same time (what ``run_sweep(workers=n)`` with ``split = n`` does): the slowest
    process's median."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(n, mp_context=ctx) as pool:
        barrier = manager.Barrier(n)
        futures = [pool.submit(_timed_half, arch, k, n, barrier, reps) for k in range(n)]
        return max(f.result() for f in futures)


def train_per_update(arch: str, data: np.ndarray, device: torch.device, k: int,
                     repeats: int) -> float:
    """Steady-state seconds per update of ``train`` itself: the difference of its loop time
    (``state.wall_time``, set-up excluded) for 2k and k updates, divided by k, so the warm-up
    updates cancel; each loop time is the best of ``repeats`` calls."""
    members = sweep_members()
    walls = []
    for n in (k, 2 * k):
        settings = replace(bench_settings(arch), epochs=1, batches_per_epoch=n)
        walls.append(min(train(data, members, settings, device=device, progress=False).wall_time
                         for _ in range(repeats)))
    return max(walls[1] - walls[0], 0.0) / k


def flops_per_sample_step(arch: str, M: int = LATENT, N: int = 3) -> float:
    """Estimated FLOPs of one latent step of one sequence, forward + backward (backward ≈ 2×
    forward). Forward: the recurrent matmul (2M² PLRNN / tanh RNN, 2·4M·M LSTM), element-wise
    terms, x̂ = Bz and z = B⁺x (2NM each)."""
    fwd = {"plrnn": 2 * M * M + 8 * M, "rnn": 2 * M * M + 6 * M,
           "lstm": 8 * M * M + 30 * M}[arch] + 4 * N * M
    return 3.0 * fwd


def matmul_peak(device: torch.device, sync: Callable[[], None], n: int, reps: int) -> float:
    """Best float32 GFLOP/s of an n×n @ n×n torch.mm."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)
    sync()
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def ensemble_bmm_rate(device: torch.device, sync: Callable[[], None], reps: int) -> float:
    """GFLOP/s of the ensemble's recurrent matmul shape alone, (50, 32, 30) @ (50, 30, 30)."""
    E = len(TAUS) * len(SEEDS)
    z = torch.randn(E, BATCH, LATENT, device=device)
    W = torch.randn(E, LATENT, LATENT, device=device)
    for _ in range(10):
        z @ W.mT
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        z @ W.mT
    sync()
    return 2.0 * E * BATCH * LATENT**2 * reps / (time.perf_counter() - t0) / 1e9


def profile_update(fn: Callable[[], None], device: torch.device, rows: int = 18) -> str:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    fn()
    with profile(activities=acts, record_shapes=True) as prof:
        fn()
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages(group_by_input_shape=True).table(
        sort_by=key, row_limit=rows, max_name_column_width=32, max_shapes_column_width=46)


# ----------------------------------------------------------------------------- engine revisions


def fused_at(rev: str) -> types.ModuleType:
    """The fused engine (``chaosrnn_utils/fused.py``) of git revision ``rev`` of this
    checkout, loaded beside the current one as a module of the package (its relative imports
    resolve to this checkout's modules), for side-by-side timing in one process."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:chaosrnn_utils/fused.py"],
                         capture_output=True, text=True, check=True).stdout
    name = "chaosrnn_utils._fused_at_" + "".join(c if c.isalnum() else "_" for c in rev)
    mod = types.ModuleType(name)
    mod.__package__, mod.__file__ = "chaosrnn_utils", f"{rev}:chaosrnn_utils/fused.py"
    sys.modules[name] = mod
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)
    return mod


def fused_predict(mod: types.ModuleType) -> Predict:
    """``training_predictions`` through the fused engine of module ``mod``."""
    return lambda model, x, masks: (mod.fused_predictions(model, x, masks),
                                    x[:, :, 1:].transpose(1, 2))


def compare_engines(rev: str, archs: list[str], data: Tensor, reps: int,
                    peak: float) -> None:
    """The fused engine of revision ``rev`` against this checkout's, one thread, in one
    process: per architecture one update function each, timed alternately (the order flips
    every round) so that load from other processes hits both alike. Prints the median and
    minimum wall time, and the minimum CPU time of this thread (``time.thread_time``: time
    the thread was not running because other processes held the core does not count)."""
    from chaosrnn_utils import fused

    engines = {f"fused@{rev}": fused_predict(fused_at(rev)), "fused (this checkout)":
               fused_predict(fused)}
    steps = len(TAUS) * len(SEEDS) * BATCH * SEQ_LEN
    cpu = torch.device("cpu")
    print(f"Fused engine at {rev} against this checkout: {reps} alternating rounds per "
          f"architecture, one thread (CPU s: this thread's CPU time; % of the "
          f"{peak:.1f} GFLOP/s mm peak by CPU min)")
    hdr = (f"   {'arch':<7}{'engine':<24}{'wall med':>9}{'wall min':>9}{'cpu min':>9}"
           f"{'samp-steps/s':>14}{'% peak':>8}")
    print(hdr)
    print("   " + "-" * (len(hdr) - 3))
    for arch in archs:
        fns = {k: engine_update_fn(arch, "fused", data, cpu, {"fwd": [], "bwd": [], "opt": []},
                                   lambda: None, predict=pr) for k, pr in engines.items()}
        for fn in fns.values():
            fn()
        wall: dict[str, list[float]] = {k: [] for k in fns}
        cpu_t: dict[str, list[float]] = {k: [] for k in fns}
        for r in range(reps):
            for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
                w0, c0 = time.perf_counter(), time.thread_time()
                fns[k]()
                cpu_t[k].append(time.thread_time() - c0)
                wall[k].append(time.perf_counter() - w0)
        f = flops_per_sample_step(arch)
        for k in fns:
            c = min(cpu_t[k])
            print(f"   {arch:<7}{k:<24}{statistics.median(wall[k]):>9.4f}{min(wall[k]):>9.4f}"
                  f"{c:>9.4f}{fmt_rate(steps / c):>14}{f * steps / c / 1e9 / peak:>8.1%}")
        old, new = list(fns)
        med = statistics.median(wall[old]) / statistics.median(wall[new])
        print(f"   {arch:<7}{'speed-up':<24}{med:>8.2f}×{min(wall[old]) / min(wall[new]):>8.2f}×"
              f"{min(cpu_t[old]) / min(cpu_t[new]):>8.2f}×")


def thread_matmul_peak(n: int = 1024, reps: int = 7) -> float:
    """Best float32 GFLOP/s of an n×n torch.mm by this thread's CPU time (load-robust)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(reps):
        t0 = time.thread_time()
        torch.mm(a, b)
        best = min(best, time.thread_time() - t0)
    return 2.0 * n**3 / best / 1e9


def profile_ops(arch: str, data: Tensor, rows: int = 16) -> str:
    """Per-operation profile of one fused-engine ensemble update (torch.profiler, grouped by
    operation and input shapes, by self time), with the forward (batch draw, forcing, rollout,
    loss), backward and Adam phases as their own rows."""
    from torch.profiler import ProfilerActivity, profile, record_function

    fn = engine_update_fn(arch, "fused", data, torch.device("cpu"),
                          {"fwd": [], "bwd": [], "opt": []}, lambda: None)
    fn()
    phases: dict[str, list[float]] = {"fwd": [], "bwd": [], "opt": []}
    fn2 = engine_update_fn(arch, "fused", data, torch.device("cpu"), phases, lambda: None)
    fn2()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof, \
            record_function(f"update {arch}"):
        fn2()
    table = prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=26,
        max_shapes_column_width=56)
    ph = {k: v[-1] for k, v in phases.items()}
    return (f"{arch}: phases of the profiled update (wall s): forward {ph['fwd']:.4f}, "
            f"backward {ph['bwd']:.4f}, Adam {ph['opt']:.4f}\n{table}")


# ----------------------------------------------------------------------------- main


def fmt_rate(x: float) -> str:
    return f"{x / 1e6:.3f} M" if x >= 1e6 else f"{x / 1e3:.1f} k"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short timing loops (< 1 minute)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--profile", action="store_true",
                   help="also print torch.profiler's top ops of one PLRNN ensemble update")
    p.add_argument("--profile-ops", action="store_true",
                   help="only: per-operation profile of one fused update per architecture "
                        "(CPU), then stop")
    p.add_argument("--compare", metavar="REV",
                   help="only: the fused engine of git revision REV against this checkout's, "
                        "interleaved in one process, one thread (CPU), then stop")
    p.add_argument("--reps", type=int, default=15, help="rounds per architecture (--compare)")
    p.add_argument("--archs", default=",".join(ARCHITECTURES),
                   help="architectures for --compare / --profile-ops")
    args = p.parse_args(argv)
    if args.compare or args.profile_ops:
        torch.set_num_threads(1 if args.threads is None else args.threads)
        data = torch.as_tensor(lorenz63(), dtype=torch.float32)
        archs = args.archs.split(",")
        load = os.getloadavg()
        print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
              f"torch threads {torch.get_num_threads()}, load average at start "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        if args.profile_ops:
            for arch in archs:
                print(profile_ops(arch, data))
        if args.compare:
            peak = thread_matmul_peak()
            compare_engines(args.compare, archs, data, args.reps, peak)
        load = os.getloadavg()
        print(f"load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        return 0

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: CUDA is not available, using the CPU")
    device = torch.device("cuda" if args.device == "cuda" and torch.cuda.is_available()
                          else "cpu")
    sync = make_sync(device)
    q = args.quick
    base_cfg = dict(warmup=3, reps=8, min_reps=3, budget_s=3.0) if q else \
        dict(warmup=5, reps=40, min_reps=5, budget_s=10.0)
    ens_cfg = dict(warmup=1, reps=3, min_reps=2, budget_s=4.0) if q else \
        dict(warmup=2, reps=30, min_reps=4, budget_s=25.0)
    train_k, train_repeats = (2, 1) if q else (5, 2)
    E = len(TAUS) * len(SEEDS)
    paper = SETTINGS["paper"]
    updates_per_member_run = paper.epochs * paper.batches_per_epoch
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load0 = os.getloadavg()

    print("chaosrnn training benchmark" + (" (--quick)" if q else ""))
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"  torch {torch.__version__}, device {device} ({dev_name or platform.machine()}), "
          f"torch threads {torch.get_num_threads()}, usable cores {cores}")
    print(f"  latent {LATENT}, batch {BATCH}, seq_len {SEQ_LEN}, sparse forcing; ensemble "
          f"{E} = {len(TAUS)} τ {list(TAUS)} × {len(SEEDS)} seeds; baseline τ = {BASELINE_TAU}")
    print(f"  load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}"
          + ("  <- other processes are busy: timings are unreliable" if load0[0] > 0.5 * cores
             else ""))
    print()

    data_np = lorenz63()
    data = torch.as_tensor(data_np, dtype=torch.float32, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    # (a) authors-style single model
    base = time_calls(baseline_update_fn(data, device), sync, **base_cfg)
    rss_base = max_rss_bytes()

    # (b) engine ensembles
    results: dict[str, dict[str, float]] = {}
    phases_of: dict[str, dict[str, float]] = {}
    rss_after: dict[str, int] = {}
    train_t = math.nan
    prof_table = ""
    for arch in ARCHITECTURES:
        for engine in ENGINES:
            key = f"{arch}/{engine}"
            phases: dict[str, list[float]] = {"fwd": [], "bwd": [], "opt": []}
            fn = engine_update_fn(arch, engine, data, device, phases, sync)
            results[key] = time_calls(fn, sync, **ens_cfg)
            n = results[key]["n"]
            phases_of[key] = {k: statistics.median(v[-n:]) for k, v in phases.items()}
            if key == "plrnn/fused" and args.profile:
                prof_table = profile_update(fn, device)
            del fn
        if arch == "plrnn":
            train_t = train_per_update(arch, data_np, device, train_k, train_repeats)
        results[arch] = results[f"{arch}/fused"]  # the default engine
        rss_after[arch] = max_rss_bytes()
    gpu_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None

    peak = matmul_peak(device, sync, n=8192 if device.type == "cuda" else (1024 if q else 2048),
                       reps=10 if device.type == "cuda" else (3 if q else 5))
    bmm_rate = ensemble_bmm_rate(device, sync, reps=200 if q else 1000)
    load1 = os.getloadavg()

    # ---------------------------------------------------------------- 1. throughput
    steps_a = BATCH * SEQ_LEN
    steps_b = E * BATCH * SEQ_LEN
    rate_a = steps_a / base["median"]
    print("1. Training throughput (sample-steps/s = members × batch × seq_len / s per update)")
    hdr = (f"   {'case':<38}{'members':>8}{'s/update':>10}{'min':>9}{'cpu s':>8}{'sys s':>7}"
           f"{'faults':>8}{'samp-steps/s':>14}{'n':>4}")
    print(hdr)
    print("   " + "-" * (len(hdr) - 3))

    def row(name: str, members: int, r: dict[str, float], steps: int) -> None:
        print(f"   {name:<38}{members:>8}{r['median']:>10.4f}{r['min']:>9.4f}{r['cpu']:>8.3f}"
              f"{r['sys']:>7.3f}{r['faults']:>8.0f}{fmt_rate(steps / r['median']):>14}"
              f"{r['n']:>4}")

    row("(a) authors-style loop, PLRNN", 1, base, steps_a)
    for arch in ARCHITECTURES:
        for engine in ENGINES:
            row(f"(b) {engine} engine, {arch}", E, results[f"{arch}/{engine}"], steps_b)
    rb = results["plrnn"]
    rate_b = steps_b / rb["median"]
    if math.isfinite(train_t) and train_t > 0:
        print(f"   {'(b) PLRNN via train() (k→2k diff.)':<38}{E:>8}{train_t:>10.4f}"
              f"{'':>9}{'':>8}{'':>7}{'':>8}{fmt_rate(steps_b / train_t):>14}{train_k:>4}")
    print("   phases of one ensemble update (median s):")
    for a, v in phases_of.items():
        print(f"     {a:<16} fwd {v['fwd']:.3f}  bwd {v['bwd']:.3f}  adam {v['opt']:.4f}")
    print("   fused vs autograd engine: " + ", ".join(
        f"{a} {results[a + '/autograd']['median'] / results[a + '/fused']['median']:.2f}×"
        for a in ARCHITECTURES))
    print(f"   ratio b/a (PLRNN ensemble, fused engine, vs authors-style loop, throughput): "
          f"{rate_b / rate_a:.2f}×")
    print(f"   i.e. {E} models one after another with (a): {E * base['median']:.2f} s per "
          f"update round, with (b): {rb['median']:.2f} s")
    if math.isfinite(train_t) and train_t > 0:
        print(f"   train() vs bare engine update: {train_t / rb['median']:.2f}× "
              f"(clipping, divergence freezing, parameter copies, batch draw)")
    print()

    # ---------------------------------------------------------------- 2. peak
    print("2. float32 matmul peak and achieved fraction")
    print(f"   torch.mm peak (best of n×n, this process's threads): {peak:8.1f} GFLOP/s")
    print(f"   ensemble-shaped bmm (50,32,30)@(50,30,30) alone:       {bmm_rate:8.1f} GFLOP/s "
          f"({bmm_rate / peak:.1%} of peak)")
    for arch in ARCHITECTURES:
        f = flops_per_sample_step(arch)
        achieved = f * steps_b / results[arch]["median"] / 1e9
        print(f"   {arch:<6} ensemble: ≈{f:6.0f} FLOP/sample-step (fwd+bwd), "
              f"{achieved:7.2f} GFLOP/s = {achieved / peak:6.2%} of peak")
    fa = flops_per_sample_step("plrnn") * rate_a / 1e9
    print(f"   (a) baseline:     {fa:7.2f} GFLOP/s = {fa / peak:6.2%} of peak")
    print()

    # ---------------------------------------------------------------- 3. projection
    print(f"3. Projected paper-profile τ sweep for one data set: {len(ARCHITECTURES)} "
          f"architectures × {len(TAUS)} τ × {len(SEEDS)} seeds, {paper.epochs} epochs × "
          f"{paper.batches_per_epoch} updates = {updates_per_member_run} ensemble updates each")
    hours = {a: results[a]["median"] * updates_per_member_run / 3600 for a in ARCHITECTURES}
    for a in ARCHITECTURES:
        print(f"   {a:<6} {results[a]['median']:.4f} s/update → {hours[a]:7.2f} h")
    total = sum(hours.values())
    verdict = "meets" if total <= TARGET_HOURS else f"misses ({total / TARGET_HOURS:.1f}×)"
    print(f"   one process, architectures one after another (as run_sweep does): {total:.2f} h"
          f"  [target {TARGET_HOURS:.0f} h on {TARGET_CORES} cores: {verdict}]")
    if device.type == "cpu" and torch.get_num_threads() == 1 and cores > 1:
        bins = [0.0] * min(cores, len(ARCHITECTURES))
        for h in sorted(hours.values(), reverse=True):
            bins[bins.index(min(bins))] += h
        print(f"   {len(bins)} single-thread processes in parallel, one per architecture "
              f"(assumes these per-update times hold with every core busy): {max(bins):.2f} h")
        print(f"   {cores} single-thread processes, members split evenly (run_sweep workers="
              f"{cores}), if the per-update times held with every core busy: "
              f"{total / cores:.2f} h")
        measured = {a: concurrent_per_update(a, cores, 3 if q else 8) for a in ARCHITECTURES}
        h_conc = sum(measured.values()) * updates_per_member_run / 3600
        verdict = "meets" if h_conc <= TARGET_HOURS else f"misses ({h_conc / TARGET_HOURS:.1f}×)"
        print(f"   measured so: {cores} processes at once, {E // cores} members each: "
              + ", ".join(f"{a} {t:.4f} s/update" for a, t in measured.items())
              + f" → {h_conc:.2f} h  [target {TARGET_HOURS:.0f} h: {verdict}]")
    floor = sum(flops_per_sample_step(a) for a in ARCHITECTURES) * steps_b \
        * updates_per_member_run / (peak * 1e9) / 3600
    print(f"   compute floor at the measured mm peak (estimated FLOPs, this process's threads): "
          f"{floor:.2f} h")
    if math.isfinite(train_t) and train_t > 0:
        scale = train_t / rb["median"]
        print(f"   with train()'s overhead ratio {scale:.2f}× applied to all three: "
              f"{total * scale:.2f} h")
    base_h = base["median"] * updates_per_member_run * E * len(ARCHITECTURES) / 3600
    print(f"   same sweep as 150 separate authors-style runs (PLRNN cost for every "
          f"architecture): {base_h:.1f} h")
    print()

    # ---------------------------------------------------------------- 4. memory
    print("4. Peak resident memory (ru_maxrss, process-wide, monotone)")
    print(f"   after the baseline:          {rss_base / GIB:6.3f} GiB")
    for a in ARCHITECTURES:
        ok = "ok" if rss_after[a] / GIB < TARGET_RSS_GIB else "OVER"
        print(f"   after the {a:<6} {E}-member run: {rss_after[a] / GIB:6.3f} GiB  "
              f"[target < {TARGET_RSS_GIB:.0f} GiB: {ok}]")
    if gpu_peak is not None:
        print(f"   peak CUDA memory allocated: {gpu_peak / GIB:.3f} GiB")
    print(f"   load average at end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if args.profile:
        print()
        print("Profile of one PLRNN ensemble update (torch.profiler, by self time):")
        print(prof_table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
