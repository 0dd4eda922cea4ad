#!/usr/bin/env bash
# One budgeted GPU session of the paper profile (a GPU held for a fixed time, e.g. a batch
# job's time limit), from the repository root. Outputs go to $OUT (build/gpu_window unless set).
#
#   bash benchmarks/gpu_window.sh window [BUDGET_S] # the whole window in one command:
#       self-check (no training on a failure), benchmark, training, packing (default 780 s)
#   bash benchmarks/gpu_window.sh check            # ≤ 3 min: self-check, then the benchmark
#   bash benchmarks/gpu_window.sh run [BUDGET_S]   # self-check, then the runner (420 s)
#
# With a session of fixed length: run the first under a 200 s limit, the second with
# BUDGET_S = what is left minus about 2 minutes and a limit of BUDGET_S + 100 s (the
# runner stops training 60 s before BUDGET_S, a SIGTERM at
# BUDGET_S + 40 makes it pack what it has, SIGKILL 30 s later), e.g. `run 360`, timeout 460;
# then release the GPU.
#
# Then, on the CPU machine, with the files that came back in FILES:
#   .venv/bin/python -m chaosrnn_utils gpu-unpack --from FILES/run \
#       --state data/results/paper/state --results data/results/paper
# and commit data/results/paper (state archives, progress.csv, finished tables) and bench.txt.
set -uo pipefail
OUT=${OUT:-build/gpu_window}
PY=${PY:-python}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
case "${1:-}" in
  check)
    { nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
      $PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
    } > "$OUT/env.txt" 2>&1
    timeout 50 $PY -m chaosrnn_utils gpu-run --check-only --device cuda \
      --state data/results/paper/state --out "$OUT" --budget-s 50 > "$OUT/self_check.txt" 2>&1
    echo "self-check exit $?" >> "$OUT/self_check.txt"
    timeout 70 $PY benchmarks/bench_paper_sweeps.py --device cuda --engines triton static \
      --reps 3 --skip-projection > "$OUT/bench.txt" 2>&1
    echo "bench grid exit $?" >> "$OUT/bench.txt"
    timeout 50 $PY benchmarks/bench_paper_sweeps.py --device cuda --reps 2 --skip-grid \
      > "$OUT/bench_projection.txt" 2>&1
    echo "bench projection exit $?" >> "$OUT/bench_projection.txt"
    tail -n 40 "$OUT/self_check.txt" "$OUT/bench.txt" "$OUT/bench_projection.txt"
    ;;
  run)
    BUDGET=${2:-420}
    # the runner stops training 60 s before the budget (evaluation, packing); the timeout's
    # SIGTERM is the backstop (the runner packs what it has), SIGKILL 30 s later
    timeout -k 30 $((BUDGET + 40)) $PY -m chaosrnn_utils gpu-run --budget-s "$BUDGET" \
      --state data/results/paper/state --out "$OUT/run"
    echo "gpu-run exit $? (1: the self-check failed and nothing was trained)"
    ;;
  window)
    BUDGET=${2:-780}
    # everything under $OUT/run (at most 8 files); SIGTERM at BUDGET + 40 packs what it has
    timeout -k 30 $((BUDGET + 40)) $PY -m chaosrnn_utils gpu-window --budget-s "$BUDGET" \
      --state data/results/paper/state --out "$OUT/run"
    echo "gpu-window exit $? (1: the self-check failed and nothing was trained)"
    ;;
  *)
    echo "usage: $0 window [BUDGET_S] | check | run [BUDGET_S]" >&2; exit 2 ;;
esac
