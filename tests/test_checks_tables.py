"""The Checks tables of notebooks 06 and 09 speak in words: the verdicts are the comparison's
(``yes``, ``no``, ``both failed``), never Python's ``None``/``False`` or an infinite number."""

from __future__ import annotations

import math

import pandas as pd

from chaosrnn_utils import claims, notebook


def _words(table: pd.DataFrame) -> set[str]:
    return {str(v) for v in table.to_numpy().ravel()} | {str(v) for v in table.index}


def test_checks_table_gives_the_comparisons_verdicts():
    rows = [dict(quantity="clipping", paper="7–13", reproduced="15.8–17.0", match=None,
                 failed_above=5.9, paper_failed_above=6.4),  # both in the failed range
            dict(quantity="annealed", paper="0.077 ± 0.063", reproduced="1.80–1.80",
                 match=False),
            dict(quantity="random", paper="Δτ=10: 0.021", reproduced="0.05", match=True),
            dict(quantity="generalised TF", paper="not in paper", reproduced=math.inf,
                 match=None)]
    table = notebook.checks_table(rows)
    assert list(table["match"]) == ["both failed", "no", "yes", "–"]
    assert table.loc[3, "ours"] == "all failed"
    assert "failed range ≥ 5.9" in table.loc[0, "note"]
    assert not {"None", "False", "True", "inf", "nan"} & _words(table)


def test_effect_table_in_words():
    inf = math.inf
    effect = pd.DataFrame([
        dict(architecture="lstm", dataset="lorenz", best_tau=30, best_D_stsp=0.3,
             **{"D_stsp at τ = 5": 15.0, "D_stsp at τ = 200": 17.0, "D_stsp at clipped BPTT":
                16.0}, worst_ratio=50.0, holds=True, why=""),
        dict(architecture="plrnn", dataset="lorenz", best_tau=30, best_D_stsp=6.3,
             **{"D_stsp at τ = 5": inf, "D_stsp at τ = 200": 16.7, "D_stsp at clipped BPTT":
                16.7}, worst_ratio=2.65, holds=False, why="best D_stsp 6.3 in the failed range"),
        dict(architecture="rnn", dataset="lorenz", best_tau=-1, best_D_stsp=math.nan,
             **{"D_stsp at τ = 5": inf, "D_stsp at τ = 200": inf, "D_stsp at clipped BPTT":
                inf}, worst_ratio=math.nan, holds=False, why="no τ had most of its runs scored"),
    ]).set_index("architecture")
    table = claims.effect_table(effect)
    assert list(table["effect"]) == ["yes", "no", "no"]
    assert table.loc["plrnn", "at τ = 5"] == "all failed"
    assert table.loc["lstm", "margin"] == "50×" and table.loc["lstm", "why not"] == "–"
    assert table.loc["rnn", "best τ"] == claims.NONE_SCORED
    assert not {"None", "False", "True", "inf", "nan", "-1"} & _words(table)
