"""Bitwise mode (``chaosrnn … --bitwise``): a short sweep and notebook 03's quantities give the
same bits whatever instruction sets ATen, MKL, OpenBLAS, numpy and glibc would otherwise pick;
without the mode the same two settings give different bits (so the test can fail)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from chaosrnn_utils import bitwise, paths

# the settings a CPU without AVX2/FMA/AVX-512 would leave each library with
# (numpy's dispatch targets and glibc's capabilities switched off as the mode does)
OTHER_CPU = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
             "OPENBLAS_CORETYPE": "Nehalem",
             "NPY_DISABLE_CPU_FEATURES": bitwise._NUMPY_DISPATCH,
             "GLIBC_TUNABLES": bitwise._GLIBC_HWCAPS}
SPEC = dict(name="bits", dataset="lorenz", n_data=2500,
            settings=dict(latent_dim=6, seq_len=25, batch_size=4, batches_per_epoch=2, epochs=3),
            architectures=["plrnn", "lstm"], grid={"tau": [5], "seed": [0, 1]},
            n_generate=1500, checkpoint_every=10)
# notebook 03's quantities, small: the chaotic PLRNN's QR spectrum, log‖∏J‖ and the loss
# gradient norms along its orbits
THEOREM3 = """
import hashlib, numpy as np, torch, chaosrnn_utils as cu
torch.set_num_threads(1)
reg = cu.chaotic_plrnn(); model = reg.model()
g = torch.Generator().manual_seed(0)
z = reg.initial_state() + 0.05 * torch.randn(1, 3, reg.latent_dim, dtype=torch.float64,
                                             generator=g)
s0 = cu.orbit(model, z, 1, n_transient=200)[:, :, 0]
spectrum = cu.rnn_lyapunov_spectrum(model, s0, 300)[0]
_, J = cu.orbit_jacobians(model, s0, 200)
targets = torch.randn(1, 3, 200, model.obs_dim, dtype=torch.float64, generator=g)
grad = cu.loss_gradient_norms(model, s0, targets, [10, 50, 200])
print(hashlib.sha256(b"".join(np.ascontiguousarray(np.asarray(a)).tobytes() for a in
      (spectrum, cu.product_log_norms(J), grad))).hexdigest())
"""


def _base() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in OTHER_CPU and k != "MKL_CBWR"}


def _run(env: dict[str, str], tmp: Path, tag: str, bits: bool) -> tuple[str, str]:
    """(hash of the sweep's results without its bookkeeping columns, hash of THEOREM3)."""
    env = {**env, "CHAOSRNN_CACHE_DIR": str(tmp / f"cache-{tag}"), "OMP_NUM_THREADS": "1"}
    spec = tmp / "spec.json"
    spec.write_text(json.dumps(SPEC))
    cmd = [sys.executable, "-m", "chaosrnn_utils", "sweep", str(spec), "--out",
           str(tmp / f"out-{tag}"), "--device", "cpu", *(["--bitwise"] if bits else [])]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=paths.ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert ("bitwise mode:" in done.stdout) == bits
    df = pd.read_csv(tmp / f"out-{tag}" / "results.csv")
    numbers = df.select_dtypes("number").drop(columns=["wall_time"], errors="ignore")
    sweep = hashlib.sha256(numbers.to_csv(float_format="%.17g").encode()).hexdigest()
    run_env = bitwise.bitwise_env(env) if bits else env
    nb = subprocess.run([sys.executable, "-c", THEOREM3], env=run_env, capture_output=True,
                        text=True, check=True).stdout.strip()
    return sweep, nb


def test_bitwise_env_overrides_and_keeps_other_tunables():
    env = bitwise.bitwise_env({"ATEN_CPU_CAPABILITY": "avx512", "PATH": "/bin",
                               "GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.cpu.hwcaps=-SSE2"})
    assert env["ATEN_CPU_CAPABILITY"] == "default" and env["MKL_CBWR"] == "COMPATIBLE"
    assert env["PATH"] == "/bin"
    assert bitwise.is_bitwise(env) and not bitwise.is_bitwise({"PATH": "/bin"})
    if "GLIBC_TUNABLES" in env:  # x86-64
        assert env["GLIBC_TUNABLES"].split(":") == ["glibc.malloc.arena_max=2",
                                                     bitwise._GLIBC_HWCAPS]


@pytest.mark.skipif(not bitwise._x86(), reason="the other-CPU settings are x86-64 settings")
def test_bitwise_mode_gives_the_same_bits_under_another_instruction_set(tmp_path):
    if torch.backends.cpu.get_cpu_capability() in ("DEFAULT", "default"):
        pytest.skip("this CPU runs ATen's portable kernels already: nothing to vary")
    base = _base()
    native, other = _run(base, tmp_path, "native", False), \
        _run({**base, **OTHER_CPU}, tmp_path, "other", False)
    assert native[0] != other[0] and native[1] != other[1], "the settings changed no bit"
    bits_native = _run(base, tmp_path, "bits-native", True)
    bits_other = _run({**base, **OTHER_CPU}, tmp_path, "bits-other", True)
    assert bits_native == bits_other
