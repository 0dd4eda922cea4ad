"""Bitwise mode: the same last bits on any x86-64 CPU, at some cost in speed.

By default the numerical libraries pick the fastest code for the CPU they run on: ATen's
vectorised kernels (AVX2, AVX-512), MKL's code paths, OpenBLAS's kernels (numpy and scipy),
numpy's own SIMD loops and glibc's FMA variants of ``exp``, ``log``, ``tanh``, … Each rounds
differently in the last bit, and a chaotic system, or a training run of thousands of updates,
amplifies a last-bit difference into a different result. So the same seed gives the same
numbers on the same machine type, and on another CPU the same conclusions within the seed
spread, not the same digits.

:func:`bitwise_env` returns an environment that pins every one of these choices to one
portable path, measured to matter on an AVX2 machine (each setting alone changed results
there; see ``benchmarks/bench_bitwise.py``):

=============================  =========================================================
``ATEN_CPU_CAPABILITY``        ``default``: ATen's portable kernels (torch elementwise ops)
``MKL_CBWR``                   ``COMPATIBLE``: MKL's reproducible path (torch matmul, QR)
``OPENBLAS_CORETYPE``          ``Nehalem`` (x86 only): SSE kernels in numpy/scipy BLAS+LAPACK
``NPY_DISABLE_CPU_FEATURES``   numpy's dispatched SIMD targets off: its baseline loops only
``GLIBC_TUNABLES``             glibc's AVX/AVX2/FMA variants of the math functions off
``ONEDNN_MAX_CPU_ISA``         ``SSE41``: oneDNN's kernels, where torch uses them (a
                               precaution: no op of ours changed with it on AVX2)
=============================  =========================================================

These variables are read when the libraries load, so the mode is set for a new process
(``chaosrnn --bitwise …`` re-executes itself with them; papermill kernels and sweep workers
inherit them). Measured only on x86-64 machines; on other CPUs only the first two apply.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, Sequence

#: numpy's run-time dispatched SIMD targets (numpy 2.4 on x86-64; the baseline is X86_V2)
_NUMPY_DISPATCH = "X86_V3,X86_V4,AVX512_ICL,AVX512_SPR"
#: glibc's hardware capabilities whose math-function variants differ from the SSE2 ones
_GLIBC_HWCAPS = "glibc.cpu.hwcaps=-AVX,-AVX2,-FMA,-FMA4,-AVX512F"


def _x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def bitwise_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) with the bitwise settings on top
    (whatever ``env`` set for them before; other GLIBC tunables are kept)."""
    out = dict(os.environ if env is None else env)
    out["ATEN_CPU_CAPABILITY"] = "default"
    out["MKL_CBWR"] = "COMPATIBLE"
    out["ONEDNN_MAX_CPU_ISA"] = "SSE41"
    if _x86():
        out["OPENBLAS_CORETYPE"] = "Nehalem"
        out["NPY_DISABLE_CPU_FEATURES"] = _NUMPY_DISPATCH
        tunables = [t for t in out.get("GLIBC_TUNABLES", "").split(":")
                    if t and not t.startswith("glibc.cpu.hwcaps=")]
        out["GLIBC_TUNABLES"] = ":".join([*tunables, _GLIBC_HWCAPS])
    return out


def is_bitwise(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``env`` (default: this process's) already holds the bitwise settings."""
    env = os.environ if env is None else env
    want = bitwise_env({})
    got = dict(env)
    if "GLIBC_TUNABLES" in want:
        got["GLIBC_TUNABLES"] = ":".join(t for t in env.get("GLIBC_TUNABLES", "").split(":")
                                         if t.startswith("glibc.cpu.hwcaps="))
    return all(got.get(k) == v for k, v in want.items())


def reexec_bitwise(argv: Sequence[str]) -> None:
    """Replace this process by ``python -m chaosrnn_utils <argv>`` under :func:`bitwise_env`
    (returns only when the settings are already in effect)."""
    if is_bitwise():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "chaosrnn_utils", *argv], bitwise_env())
