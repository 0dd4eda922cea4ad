"""The pipeline's public names in one place (what tests, notebooks and ``tasks.py`` import as
``pipeline.X``): the command line (:mod:`.cli`), the papermill runner (:mod:`.runner`), the plan
of ``reproduce`` (:mod:`.plan`) and its pool (:mod:`.pool`), the summary and comparison tables
(:mod:`.comparison`, verdicts: :mod:`.verdict`), the one-line errors (:mod:`.errors`).

``python -m chaosrnn_utils reproduce --profile quick`` executes every notebook in
``notebooks/`` with papermill into ``build/notebooks/`` (git-ignored); each notebook records
its key numbers with :func:`~chaosrnn_utils.notebook.record_summary`, and the runner prints
them as one table (quantity, paper value, reproduced value) and writes the comparison with
the paper. With ``--lanes 2`` (``tasks.py reproduce``) the notebooks and the sweep jobs
they wait for are the parts of one pool of two processes, started longest critical path
first (:func:`simulate`), after a plan with each part's estimate (:func:`plan_text`,
calibrated on this machine's epoch time) and with one progress line per part. The quick
main job trains what tests the claims its notebooks assert and redraws every other
training notebook from the best committed profile (:func:`plan_reproduce`).
``sweep``, ``train``, ``gpu-run`` and ``gpu-unpack`` hand over to
:mod:`.sweeps`, :mod:`.experiments` and :mod:`.device_runner`. What the notebooks
themselves call is in :mod:`.notebook`.

A test that replaces a function monkeypatches the module whose code calls it (e.g.
``cli.run_notebook``, ``runner._execute``, ``comparison.SUMMARY_DIR``): a name set here
reaches no caller.
"""

from __future__ import annotations

from .cli import (  # noqa: F401  (re-exported: pipeline.X keeps working)
    _BITWISE_HELP,
    _build_parser,
    _given_parameters,
    _parse_value,
    _Parser,
    main,
    train_main,
)
from .comparison import (  # noqa: F401  (re-exported: pipeline.X keeps working)
    BUDGETS,
    README_END,
    README_START,
    comparison_markdown,
    comparison_rows,
    readme_table,
    summary_dir,
    summary_table,
    write_comparison,
)
from .errors import USER_ERRORS, check_data_dir, error_line  # noqa: F401  (re-exported)
from .plan import (  # noqa: F401  (re-exported: pipeline.X keeps working)
    BUDGET_NOTEBOOKS,
    COMMITTED_INPUTS,
    EXPANSIONS,
    MAIN_JOB,
    NOTEBOOK_S,
    QUICK_TRAINED,
    REDRAW_PROFILES,
    Part,
    Run,
    _alone,
    _minutes,
    _missing_committed,
    _next_ready,
    _quick_main_job,
    _redraw,
    _retrain_hint,
    _trained_specs,
    best_committed,
    build_parts,
    committed_inputs,
    plan_reproduce,
    plan_text,
    priorities,
    redraw_line,
    simulate,
    training_estimate,
)
from .pool import (  # noqa: F401  (re-exported: pipeline.X keeps working)
    _pool_job,
    _pool_notebook,
    run_pool,
)
from .runner import (  # noqa: F401  (re-exported: pipeline.X keeps working)
    _DECLARED,
    _TYPES,
    _execute,
    _expected_type,
    check_parameters,
    notebook_parameters,
    notebooks,
    refresh_notebook,
    run_notebook,
    select_notebooks,
    staged_summary,
)
from .verdict import MATCH_RULES, _cells, _fmt, _match, _note, _protocol  # noqa: F401  (re-exported)

if __name__ == "__main__":
    import sys

    sys.exit(main())
