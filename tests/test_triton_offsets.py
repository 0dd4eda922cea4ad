"""64-bit offsets of the Triton kernels, in Triton's interpreter (no GPU, no 16 GB arrays):
a probe kernel runs the kernels' own index code (``_tile`` and ``_step_rows``) at the largest
sizes that run — the benchmark's 1 050 members × 1 000 steps and every ``paper`` sweep — and
stores the largest offset into each (E, T, NB, R) array; it must equal the exact integer
(E·T·NB·R − 1, past 2³¹ − 1 for the LSTM at the benchmark's size). With 32-bit offsets the
product wraps and the probe reads a negative or smaller number (an illegal address on a
GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="triton is not installed (pip install triton==3.6.0)")

ROOT = Path(__file__).resolve().parents[1]
LATENT, BATCH = 30, 32
BENCH_SIZES = [(1050, 1000)]  # benchmarks/bench_paper_sweeps.py: largest members × steps


def sizes() -> list[tuple[str, int, int, int]]:
    """(arch, members, steps, batch) of the benchmark's largest case and of every sweep of
    the ``paper`` profile (as a window trains them: one job per architecture)."""
    from chaosrnn_utils import device_runner

    out = {(a, e, t, BATCH) for e, t in BENCH_SIZES for a in ("plrnn", "rnn", "lstm")}
    for spec in device_runner.profile_specs("paper"):
        for a in spec.architectures:
            s = spec.train_settings(a)
            out.add((a, len(spec.member_configs()), s.seq_len, s.batch_size))
    return sorted(out)


def test_offsets_are_exact_past_2_to_the_31():
    cases = sizes()
    assert all(nb <= 32 for _, _, _, nb in cases)
    assert max(e * t * nb * 4 * LATENT for a, e, t, nb in cases if a == "lstm") > 2**31 - 1
    env = {**os.environ, "TRITON_INTERPRET": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, __file__, json.dumps(cases)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    for (arch, E, T, nb), offsets in zip(cases, got, strict=True):
        R = 4 * LATENT if arch == "lstm" else LATENT
        want = [(((E - 1) * T + T - 1) * nb + b) * R + R - 1 for b in range(nb)]
        assert offsets == want, (arch, E, T, nb)
        assert offsets[-1] == E * T * nb * R - 1


if __name__ == "__main__":  # the child, in the interpreter: kernel names must be globals
    import torch
    import triton
    import triton.language as tl

    from chaosrnn_utils import triton_engine, triton_kernels

    @triton.jit
    def last_offsets(out_ptr, w_ptr, T: tl.constexpr, NB: tl.constexpr, M: tl.constexpr,
                     BLOCK_B: tl.constexpr, MP: tl.constexpr, ARCH: tl.constexpr):
        """Offsets of the last element (column R − 1) of the last step of the last member,
        per batch row, from the kernels' own index code."""
        e, ob, om, bm, mm, m2, wbase = triton_kernels._tile(w_ptr, NB, M, BLOCK_B, MP, ARCH)
        R: tl.constexpr = 4 * M if ARCH == 2 else M
        rows = triton_kernels._step_rows(e, T - 1, ob, T, NB)
        last = tl.num_programs(0) - 1
        tl.store(out_ptr + tl.arange(0, BLOCK_B), rows * R + (R - 1), mask=bm & (e == last))

    got = []
    for arch, E, T, nb in json.loads(sys.argv[1]):
        block_b = min(triton_engine.triton_next_pow2(nb), 32)
        out = torch.full((block_b,), -1, dtype=torch.int64)
        last_offsets[(E, 1)](out, torch.zeros(1), T=T, NB=nb, M=LATENT, BLOCK_B=block_b,
                             MP=triton_engine.triton_next_pow2(LATENT),
                             ARCH=triton_engine.ARCHS[arch])
        got.append(out[:nb].tolist())
    print(json.dumps(got))
