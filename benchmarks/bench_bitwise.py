"""Cost of the bitwise mode (``chaosrnn … --bitwise``, :mod:`chaosrnn_utils.bitwise`).

Runs a slice of the main job — the ``quick`` Lorenz τ sweep of notebook 06 (the longest part
of ``python3 tasks.py reproduce``: three architectures, every τ and seed, shortened to
``--epochs`` epochs, then the full evaluation) — as a fresh ``chaosrnn sweep`` process, once with
the machine's native kernels and once in bitwise mode, alternating ``--repeat`` times, and
prints the wall and CPU seconds of each and the ratio bitwise / native. It also says whether
the two modes gave the same results (they should not on an AVX2/AVX-512 CPU).

    .venv/bin/python benchmarks/bench_bitwise.py [--epochs 10] [--repeat 2]

A measuring script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chaosrnn_utils import bitwise, experiments  # noqa: E402


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(spec_file: Path, out: Path, bits: bool, cache: Path) -> tuple[float, float, str]:
    """(wall s, CPU s, results.csv text without wall times) of one sweep process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CHAOSRNN_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "chaosrnn_utils", "sweep", str(spec_file), "--out", str(out),
           "--device", "cpu", *(["--bitwise"] if bits else [])]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=ROOT)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    import pandas as pd

    df = pd.read_csv(out / "results.csv").drop(columns=["wall_time"])
    return wall, cpu, df.select_dtypes("number").to_csv()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    spec = experiments.tau_sweep_spec("lorenz", "quick")
    d = spec.to_dict()
    d["settings"]["epochs"] = args.epochs
    members = len(spec.member_configs()) * len(spec.architectures)
    print(f"slice: quick Lorenz τ sweep, {members} members, {args.epochs} epochs each, then "
          f"the evaluation; load average at start {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")
    print("bitwise settings: " + " ".join(f"{k}={v}" for k, v in
                                          bitwise.bitwise_env({}).items()))
    times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    tables: dict[bool, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(d))
        for k in range(args.repeat):
            for bits in (False, True):
                out = Path(tmp) / f"out-{int(bits)}-{k}"
                wall, cpu, table = run(spec_file, out, bits, Path(tmp) / f"cache-{int(bits)}")
                times[bits].append((wall, cpu))
                tables[bits] = table
                print(f"  {'bitwise' if bits else 'native '} run {k + 1}: wall {wall:7.1f} s, "
                      f"CPU {cpu:7.1f} s", flush=True)
    med = {b: statistics.median(w for w, _ in times[b]) for b in times}
    cpu = {b: statistics.median(c for _, c in times[b]) for b in times}
    print(f"median wall: native {med[False]:.1f} s, bitwise {med[True]:.1f} s, "
          f"ratio {med[True] / med[False]:.2f}")
    print(f"median CPU:  native {cpu[False]:.1f} s, bitwise {cpu[True]:.1f} s, "
          f"ratio {cpu[True] / cpu[False]:.2f}")
    print("same results in both modes: " + ("yes" if tables[False] == tables[True] else "no"))
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
