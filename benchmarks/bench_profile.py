"""Wall time of a whole training profile, per data set, from the log that ``train`` keeps.

    .venv/bin/python benchmarks/bench_profile.py               # the medium profile
    .venv/bin/python benchmarks/bench_profile.py --profile quick

``python3 tasks.py train --profile <p>`` appends one row per call and sweep to
``data/results/<p>/parts/train_log.csv`` (start, wall seconds, workers, cores, CPU model,
whether the sweep was complete after that call). A profile run in time-limited chunks has
several rows per sweep; their sum is the sweep's wall time. Beside it, from the committed
tables: the training seconds of each job (the ``wall_time`` column, which a resumed job
carries over from its checkpoint) and the members trained. A measuring script: it checks
nothing and exits 0 (1 when there is no log).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from chaosrnn_utils import experiments as ex


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="medium", choices=ex.PROFILES)
    args = parser.parse_args(argv)
    path = ex.train_log(args.profile)
    if not path.exists():
        print(f"no {path}: run `python3 tasks.py train --profile {args.profile}` first")
        return 1
    log = pd.read_csv(path)
    print(f"profile {args.profile}: {len(log)} chunk(s) logged in {path}")
    print("machines: " + "; ".join(f"{cpu} ({cpus} cores, {w} workers)" for (cpu, cpus, w), _
                                   in log.groupby(["cpu", "cpus", "workers"])))
    rows = []
    for name, g in log.groupby("sweep", sort=False):
        table = ex.results_dir(args.profile) / f"{name}.csv"
        members = train_s = float("nan")
        if table.exists():
            t = pd.read_csv(table)
            members = len(t)
            # one wall_time per job (all of its rows carry it); jobs ran side by side
            train_s = float(t.drop_duplicates(["architecture", "wall_time"])["wall_time"].sum())
        rows.append(dict(sweep=name, dataset=g["dataset"].iloc[0], chunks=len(g),
                         wall_min=g["wall_s"].sum() / 60, complete=bool(g["complete"].iloc[-1]),
                         members=members, job_train_min=train_s / 60))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    done = table[table["complete"]]
    print(f"\ncomplete sweeps: {len(done)} of {len(ex.profile_specs(args.profile))}; wall time "
          f"of those {done['wall_min'].sum():.1f} min, of all logged "
          f"{table['wall_min'].sum():.1f} min ({table['wall_min'].sum() / 60:.2f} h)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
