"""CPU against CUDA (and fused against autograd, and the static / CUDA-graph update against the
default one): the same short training runs must end with the same parameters and losses. For
the GPU machine; without CUDA it compares the CPU variants only and says so.

Each architecture (PLRNN, tanh RNN, LSTM) trains one ensemble that mixes every mode (sparse,
random τ, teacher forcing, clipped BPTT, truncated BPTT, windowing, generalised teacher
forcing) for a few epochs in float64; printed: the largest relative difference of any
parameter and of the loss history between the runs. Exit status 1 when one exceeds 1e-8.

    .venv/bin/python benchmarks/check_device.py
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaosrnn_utils.data import paper_dataset  # noqa: E402
from chaosrnn_utils.training import MemberConfig, TrainSettings, train  # noqa: E402

MEMBERS = [MemberConfig(seed=0, tau=10), MemberConfig(seed=1, tau=20, tau_spread=5),
           MemberConfig(seed=2, mode="teacher"), MemberConfig(seed=3, mode="bptt",
                                                               clip_norm=1.0),
           MemberConfig(seed=4, mode="tbptt", truncation=15),
           MemberConfig(seed=5, mode="window", window=25),
           MemberConfig(seed=6, mode="gtf", alpha=0.2)]
SETTINGS = TrainSettings(latent_dim=30, seq_len=100, batch_size=16, batches_per_epoch=5,
                         epochs=4, dtype="float64")
TOL = 1e-8


def run(arch: str, device: str, engine: str):
    """engine: "fused", "autograd" or "static" (fused, train(static=True): a CUDA graph on
    a GPU)."""
    s = dataclasses.replace(SETTINGS, model=arch,
                            engine="fused" if engine == "static" else engine)
    state = train(paper_dataset("lorenz", 20_000), MEMBERS, s, device=device, progress=False,
                  static=engine == "static")
    params = {k: v.detach().cpu() for k, v in state.model.named_parameters()}
    return params, np.array(state.history)


def rel(a, b) -> float:
    return float((a - b).norm() / max(float(b.norm()), 1e-300))


def main() -> int:
    pairs = [("cpu", "fused", "cpu", "autograd"), ("cpu", "static", "cpu", "fused")]
    if torch.cuda.is_available():
        print(f"CUDA device: {torch.cuda.get_device_name()}")
        pairs += [("cuda", "fused", "cpu", "fused"), ("cuda", "autograd", "cpu", "autograd"),
                  ("cuda", "fused", "cuda", "autograd"), ("cuda", "static", "cuda", "fused"),
                  ("cuda", "static", "cpu", "fused")]
    else:
        print("no CUDA here: only the two engines on the CPU are compared")
    worst = 0.0
    for arch in ("plrnn", "rnn", "lstm"):
        runs = {}
        for dev, eng, *_ in pairs:
            runs.setdefault((dev, eng), run(arch, dev, eng))
        for d1, e1, d2, e2 in pairs:
            runs.setdefault((d2, e2), run(arch, d2, e2))
            (p1, h1), (p2, h2) = runs[(d1, e1)], runs[(d2, e2)]
            dp = max(rel(p1[k], p2[k]) for k in p1)
            dh = float(np.nanmax(np.abs(h1 - h2) / np.abs(h2)))
            worst = max(worst, dp, dh)
            print(f"{arch:<6} {d1}/{e1:<8} vs {d2}/{e2:<8}: parameters {dp:.2e}, "
                  f"losses {dh:.2e}")
    ok = worst <= TOL
    print(f"largest relative difference {worst:.2e}: {'ok' if ok else 'FAILED'} (tol {TOL})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
