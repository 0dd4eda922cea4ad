"""What keeps the test command passing on any CPU: the second instruction set that
``python3 tasks.py test`` runs the float-sensitive tests under really changes the last bits,
and the nbval sanitizer masks exactly the numbers marked as machine-dependent (≈)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from nbval.plugin import get_sanitize_patterns

from chaosrnn_utils import paths
from chaosrnn_utils.notebook import APPROX, approx_columns

SANITIZE = paths.ROOT / "tests" / "nbval_sanitize.cfg"
# the last bits of kernels that differ between instruction sets: batched float32 and
# float64 matmuls (ATen/MKL), a float64 tanh (ATen's vectorised math), QR in numpy (OpenBLAS)
PROBE = """
import hashlib, numpy as np, torch
torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
a, b = torch.randn(50, 32, 30, generator=g), torch.randn(50, 30, 30, generator=g)
m = np.random.default_rng(0).standard_normal((200, 200))
for out in (torch.bmm(a, b), torch.bmm(a.double(), b.double()), torch.tanh(a.double()),
            np.linalg.qr(m)[0]):
    out = out.numpy() if hasattr(out, "numpy") else out
    print(hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest()[:16])
"""


def _tasks():
    spec = importlib.util.spec_from_file_location("tasks", paths.ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _probe(env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout.split()


def test_second_instruction_set_changes_the_last_bits():
    """Unless the machine's own kernels are already the portable ones, every probe differs
    under tasks.OTHER_ISA: the second pass then sees what another CPU would see."""
    if torch.backends.cpu.get_cpu_capability() in ("DEFAULT", "default"):
        pytest.skip("this CPU runs ATen's portable kernels already")
    tasks = _tasks()
    base = {k: v for k, v in os.environ.items() if k not in tasks.OTHER_ISA}
    native, other = _probe(base), _probe({**base, **tasks.OTHER_ISA})
    torch_probes = list(zip(native[:3], other[:3], strict=True))
    assert all(a != b for a, b in torch_probes), torch_probes
    if "OPENBLAS_CORETYPE" in tasks.OTHER_ISA:
        assert native[3] != other[3]
    assert set(tasks.FLOAT_SENSITIVE) >= {f"notebooks/0{k}_{name}.ipynb" for k, name in
                                          ((1, "systems_and_lyapunov"), (3, "theorem_chaos"))}
    assert all((paths.ROOT / f).exists() for f in tasks.FLOAT_SENSITIVE)


def _sanitize(text: str) -> str:
    for regex, replace in get_sanitize_patterns(SANITIZE.read_text(encoding="ascii")):
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize("a, b", [
    ("λ_max ≈ 0.0816 ± 0.0016 (std); τ ≈ 8.5 steps",
     "λ_max ≈ 0.0815 ± 0.0021 (std); τ ≈ 8.6 steps"),
    ("at T = 1000 ≈ 1e35.7 (mean)", "at T = 1000 ≈ 1e36.2 (mean)"),
    ("λ (QR) ≈ [-0.     -0.     -0.6931]; exact [0. 0.]",
     "λ (QR) ≈ [ 0.  0. -0.6931]; exact [0. 0.]"),
    ("from ≈ 6.48e+03 (T = 100) to ≈ 1.07e+72", "from ≈ 5.4e+03 (T = 100) to ≈ 6.44e+42"),
    ("lorenz   ≈0.0112 ≈61.9956\nroessler  ≈0.0087 ≈79.6594",
     "lorenz   ≈0.0111 ≈62.6933\nroessler ≈0.0084 ≈113.5721"),
])
def test_sanitizer_masks_the_marked_numbers(a, b):
    assert a != b and _sanitize(a) == _sanitize(b)


@pytest.mark.parametrize("a, b", [
    ("λ_max = 0.0816 (std)", "λ_max = 0.0815 (std)"),  # unmarked numbers are compared
    ("exact [0. 0.]; ≈ 1.0", "exact [0. 1.]; ≈ 1.0"),
    ("T = 1000 ≈ 1e35.7", "T = 999 ≈ 1e35.7"),
    ("fixed point λ_max: exact -0.1625", "fixed point λ_max: exact -0.1624"),
])
def test_sanitizer_keeps_unmarked_numbers(a, b):
    assert _sanitize(a) != _sanitize(b)


def test_approx_columns_marks_only_the_given_columns():
    t = pd.DataFrame({"paper": [0.015, 0.009], "ours": [0.011183, np.nan]}, index=["a", "b"])
    out = approx_columns(t, ["ours"], 3)
    assert list(out["ours"]) == [f"{APPROX}0.011", "NaN"] and list(out["paper"]) == [0.015, 0.009]
    assert t["ours"].iloc[0] == 0.011183  # the table itself is left alone
    with pytest.raises(KeyError, match="ours2"):
        approx_columns(t, ["ours2"], 3)
