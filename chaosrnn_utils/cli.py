"""The command line of every command, ``python -m chaosrnn_utils <command>``
(:func:`main`, arguments: :func:`_build_parser`), with one-line errors for bad input
(:mod:`.errors`). ``sweep``, ``train``, ``gpu-*`` hand over to :mod:`.sweeps`,
:mod:`.experiments` and :mod:`.device_runner`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import paths
from .comparison import summary_table, write_comparison
from .errors import USER_ERRORS, check_data_dir, error_line
from .notebook import PROFILES
from .plan import _minutes, _trained_specs, build_parts, plan_reproduce, plan_text, redraw_line
from .pool import run_pool
from .runner import refresh_notebook, run_notebook, select_notebooks, staged_summary
from .validate import positive_int_arg, seconds_arg


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, ``chaosrnn <command>: error: …``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _given_parameters(pairs: Sequence[Sequence[str]], seed: int | None) -> dict[str, Any]:
    """The ``-p NAME VALUE`` pairs (JSON values, else text) and ``--seed``; a name given twice
    is refused."""
    given: dict[str, Any] = {}
    for name, text in pairs:
        if name in given:
            raise ValueError(f"-p {name} given twice")
        given[name] = _parse_value(text)
    if seed is not None:
        if "seed" in given:
            raise ValueError("the seed is given twice: use --seed or -p seed, not both")
        given["seed"] = seed
    return given


_BITWISE_HELP = ("the same last bits on any x86-64 CPU (portable kernels, slower; "
                 "see chaosrnn_utils.bitwise)")


#: the command line's one-line description (``--help``)
DESCRIPTION = "The runner: the command line, papermill, and the summary and comparison tables."


def _build_parser() -> argparse.ArgumentParser:
    from . import sweeps

    parser = _Parser(prog="chaosrnn", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="run the notebooks with papermill, print the summary")
    rep.add_argument("--profile", default="quick", choices=PROFILES)
    rep.add_argument("--seed", type=int, help="seed of the notebooks that declare one "
                     "(default: each notebook's own)")
    rep.add_argument("--only", nargs="+", help="notebook name prefixes, e.g. 01 03")
    rep.add_argument("--bitwise", action="store_true", help=_BITWISE_HELP)
    rep.add_argument("--lanes", type=positive_int_arg, default=1,
                     help="with 2 or more, every notebook and every sweep job is a part of "
                     "one pool of that many processes, the longest critical path first "
                     "(`tasks.py reproduce` uses 2); 1: the notebooks one after another")
    rep.add_argument("--committed", action="store_true", help="redraw the training notebooks "
                     "from the committed results instead of training (see the train command)")
    rep.add_argument("--train-all", action="store_true", help="train every training notebook "
                     "at the profile's budget (the quick main job otherwise trains only what "
                     "tests its asserted claims and redraws the rest from the committed "
                     "medium results; a notebook run alone redraws its profile's committed "
                     "results)")
    rep.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"),
                     help="notebook parameter (JSON value, else text), given to the selected "
                     "notebooks that declare it; checked against their parameters cells")
    summ = sub.add_parser("summary", help="print the summary table of the last run")
    summ.add_argument("--profile", default="quick", choices=PROFILES)
    ref = sub.add_parser("refresh", help="re-execute notebooks (defaults) into their .ipynb")
    ref.add_argument("--only", nargs="+", help="notebook name prefixes, e.g. 01 03")
    swp = sub.add_parser("sweep", help="train and evaluate a grid of configurations "
                         "(resumable; exit status 3 when a time limit left it incomplete)")
    sweeps.add_arguments(swp)
    swp.add_argument("--bitwise", action="store_true", help=_BITWISE_HELP)
    gpu = sub.add_parser("gpu-run", help="one budgeted device window of the paper profile "
                         "(exit status 3: sweeps left for another window; 1: self-check failed)")
    gpu.add_argument("--budget-s", type=seconds_arg, required=True,
                     help="seconds for the whole window (self-check and packing included)")
    gpu.add_argument("--state", required=True, help="committed state folder (archives)")
    gpu.add_argument("--out", required=True, help="folder for the files to bring back")
    gpu.add_argument("--profile", default="paper", choices=PROFILES)
    gpu.add_argument("--spec", nargs="+", help="sweep spec JSON files instead of the profile")
    gpu.add_argument("--device", help="torch device (default: cuda if available)")
    gpu.add_argument("--no-self-check", action="store_true")
    gpu.add_argument("--check-only", action="store_true", help="the self-check alone")
    gpu.add_argument("--eval-device", default="cpu",
                     help="where finished sweeps are evaluated: cpu (default) or same")
    win = sub.add_parser("gpu-window", help="one whole device window in a budget: self-check "
                         "(no training on a failure), benchmark, training, packing (at most 8 "
                         "files under --out; exit status as gpu-run)")
    win.add_argument("--budget-s", type=seconds_arg, required=True,
                     help="seconds for the whole window")
    win.add_argument("--state", default="data/results/paper/state",
                     help="committed state folder (archives)")
    win.add_argument("--out", required=True, help="folder for the files to bring back")
    win.add_argument("--profile", default="paper", choices=PROFILES)
    win.add_argument("--spec", nargs="+", help="sweep spec JSON files instead of the profile")
    win.add_argument("--device", help="torch device (default: cuda if available)")
    win.add_argument("--eval-device", default="cpu",
                     help="where finished sweeps are evaluated: cpu (default) or same")
    unp = sub.add_parser("gpu-unpack", help="bring a gpu-run's files into the committed state")
    unp.add_argument("--from", dest="from_dir", required=True, help="the gpu-run --out folder")
    unp.add_argument("--state", required=True, help="committed state folder")
    unp.add_argument("--results", required=True, help="folder for the finished tables")
    trn = sub.add_parser("train", help="train every sweep of a profile (resumable, in "
                         "time-limited chunks whose finished parts are committed)")
    trn.add_argument("--profile", default="medium", choices=("quick", "medium", "paper"))
    trn.add_argument("--time-limit", type=seconds_arg, help="seconds for this call")
    trn.add_argument("--workers", type=positive_int_arg, default=2)
    trn.add_argument("--only", nargs="+", help="sweep names, e.g. tau_sweep_lorenz")
    trn.add_argument("--fresh", action="store_true", help="ignore the committed parts "
                     "(train everything here) and leave them as they are")
    trn.add_argument("--bitwise", action="store_true", help=_BITWISE_HELP)
    return parser


def train_main(args: argparse.Namespace) -> int:
    """The ``train`` command: :func:`~chaosrnn_utils.experiments.train_profile`; exit status
    3 when the time limit left sweeps unfinished (run it again to continue)."""
    from . import experiments, sweeps

    try:
        check_data_dir()
        done = experiments.train_profile(args.profile, time_limit=args.time_limit,
                                         workers=args.workers, only=args.only,
                                         committed_parts=not args.fresh)
    except USER_ERRORS as err:
        print(error_line(args.command, err), file=sys.stderr)
        return 2
    for name, complete in done.items():
        print(f"{name}: {'complete' if complete else 'pending (run again to continue)'}")
    return 0 if all(done.values()) else sweeps.EXIT_INCOMPLETE


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``chaosrnn`` or ``python -m chaosrnn_utils``). Bad input is
    one line on stderr, ``chaosrnn <command>: error: …``, and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    if getattr(args, "bitwise", False):
        from . import bitwise

        bitwise.reexec_bitwise(argv)  # a new process unless the settings are in effect
        print("bitwise mode: " + " ".join(f"{k}={os.environ[k]}" for k in bitwise.bitwise_env({})),
              flush=True)

    if args.command == "sweep":
        from . import sweeps

        return sweeps.sweep_main(args)

    if args.command == "train":
        return train_main(args)

    if args.command in ("gpu-run", "gpu-window", "gpu-unpack"):
        from . import device_runner

        return device_runner.gpu_main(args)

    if args.command == "summary":
        print(summary_table(profile=args.profile))
        return 0
    try:
        check_data_dir()
        selected = select_notebooks(args.only)
        if args.command == "reproduce":
            given = _given_parameters(args.parameter, args.seed)
            if args.committed and args.train_all:
                raise ValueError("--committed redraws, --train-all trains: give one of them")
            runs = plan_reproduce(selected, args.profile, given, args.committed,
                                  train_all=args.train_all,
                                  whole=not args.only and not args.parameter)
    except USER_ERRORS as err:
        print(error_line(args.command, err), file=sys.stderr)
        return 2
    if args.command == "refresh":
        for nb in selected:
            print(f"== refreshing {nb.name}", flush=True)
            refresh_notebook(nb)
        return 0
    out_dir = paths.BUILD_DIR / "notebooks" / args.profile
    for run in runs:
        extra = "".join(f" {k}={v}" for k, v in run.parameters.items() if k != "profile")
        if run.skip is not None:
            print(f"== {run.notebook.name}{extra}: skipped ({run.skip})", flush=True)
        elif run.note is not None:
            print(f"== {run.notebook.name}{extra}: {run.note}", flush=True)
    from . import sweeps

    trains = any(_trained_specs(r) for r in runs if r.skip is None)
    scale = sweeps.calibrate() if trains else 1.0
    pool = args.lanes > 1
    try:  # claims the sweep folders: one holding another spec is refused in one line
        parts = build_parts(runs, scale, jobs=pool)
    except USER_ERRORS as err:
        print(error_line(args.command, err), file=sys.stderr)
        return 2
    print(plan_text(parts, args.lanes, scale, trains) + "\n", flush=True)
    # reproduce refreshes the committed outputs: its notebooks (and the lanes' processes,
    # which inherit the environment) write figures/ and data/results/; any other run of a
    # notebook writes build/ (paths.figures_out, paths.results_out)
    with paths.publishing_outputs():
        if pool:
            if run_pool(parts, args.lanes, args.profile, out_dir) != 0:
                print(f"chaosrnn reproduce: error: a part failed (logs: {out_dir / 'logs'})",
                      file=sys.stderr)
                return 1
        else:
            import time

            t_start = time.time()
            for k, part in enumerate(parts, 1):
                run = part.run
                extra = "".join(f" {k}={v}" for k, v in run.parameters.items()
                                if k != "profile")
                print(f"== [{k}/{len(parts)}] {run.notebook.name}{extra} (profile "
                      f"{run.parameters['profile']}; estimated {_minutes(part.estimate)})",
                      flush=True)
                t0 = time.time()
                with staged_summary(args.profile):
                    run_notebook(run.notebook, run.parameters, out_dir, run.name)
                print(f"== [{k}/{len(parts)}] {part.name}: done in "
                      f"{_minutes(time.time() - t0)}; {_minutes(time.time() - t_start)} gone",
                      flush=True)
    if not args.only and not args.parameter and (line := redraw_line(runs)) is not None:
        print("\n" + line, flush=True)
    print(f"\nExecuted notebooks: {out_dir}\nFigures: {paths.FIGURES_DIR}\n")
    print(summary_table(profile=args.profile))
    if not args.only and not args.parameter and args.seed is None:
        # a whole run with the defaults: the committed comparison table and the README's copy
        print(f"\nComparison table: {write_comparison(args.profile)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
