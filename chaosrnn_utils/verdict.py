"""The verdict of one summary row, paper against ours (ground floor: imports nothing of the
package): :func:`_match` by the rules :data:`MATCH_RULES`, the row's note (:func:`_note`),
its protocol (:func:`_protocol`) and the cell formats (:func:`_fmt`, :func:`_cells`). Used by
the notebooks' Checks tables (:mod:`.notebook`) and the comparison tables (:mod:`.pipeline`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


#: the comparison's rules, printed under the table (:func:`comparison_markdown`) and applied
#: by :func:`_match`
MATCH_RULES = (
    "match: **yes** when ours is within 25 % of the paper's number (|ours − paper| ≤ "
    "0.25·|paper|, no other slack) or meets the row's own stated rule (in its note); a sign "
    "claim (< 0, > 0) is checked; **asserted**: a qualitative claim its notebook asserts. "
    "Scores (lower is better) carry a failed range, at or above the row's threshold "
    "(`experiments.failure_threshold`): a row where one side failed and the other did not is "
    "**no**, whatever the relative difference; where both failed it is **both failed**. A "
    "best-τ row can match only when our best cell is a success (most runs scored, score "
    "below the threshold). convention: the metric convention of the numbers (authors: the "
    "paper's evaluation code; ours: box at the data mean, plain spectra). protocol: what our "
    "number is scored against (heldout: the free run from the test split's first point "
    "against the last 20 % of the series, unseen in training; paper: against the whole "
    "series, as the paper's numbers are; docs/paper-notes.md § Protocols). A row of a data set "
    "that fails the sanity rule under the row's protocol (its own other stretch, scored as a "
    "perfect model, lies in the failed range) is **not scorable**: neither a match nor a "
    "failure."
)


def _number(v: Any) -> float | None:
    """A number from a summary value: itself, the lower end of a range text such as
    ``"10–12"``, else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        head = v.replace("−", "-").split("–")[0].split("±")[0].strip()
        try:
            return float(head)
        except ValueError:
            return None
    return None


def _failed(value: Any, threshold: float) -> bool | None:
    """Whether a score lies in the failed range (≥ threshold, or not a finite number: NaN is
    a failure); None when the value is a claim without a number."""
    x = _number(value)
    if x is None:
        return None
    return not (math.isfinite(x) and x < threshold)


def _match(row: dict[str, Any]) -> str:
    """yes / no / both failed / asserted / – for one summary row (rules: :data:`MATCH_RULES`).

    Optional keys: ``failed_above`` (the failed-range threshold of our score, in the row's
    convention), ``paper_failed_above`` (the same for the paper's value, default
    ``failed_above``), ``score`` (our score behind a row whose ``reproduced`` is not itself a
    score, e.g. the D_stsp of our best-τ cell; NaN when no cell was mostly scored), ``match``
    (the notebook's own stated rule, used only where neither side failed), ``scorable``
    (False: the data set fails the sanity rule under the row's protocol)."""
    paper, ours = row["paper"], row["reproduced"]
    if paper is None or paper == "not in paper":
        return "–"
    if row.get("scorable") is False:
        return "not scorable"
    threshold = row.get("failed_above")
    if threshold is not None:
        ours_score = row["score"] if "score" in row else ours
        ours_failed = _failed(ours_score, float(threshold))
        if "score" in row:  # a best-τ row: only our side has a score
            if ours_failed is not False:
                return "no"
        else:
            paper_failed = _failed(paper, float(row.get("paper_failed_above", threshold)))
            if paper_failed is not None and ours_failed is not None:
                if paper_failed and ours_failed:
                    return "both failed"
                if paper_failed != ours_failed:
                    return "no"
    if "match" in row and row["match"] is not None:
        return "yes" if row["match"] else "no"
    if isinstance(paper, int | float) and isinstance(ours, int | float):
        return "yes" if abs(ours - paper) <= 0.25 * abs(paper) else "no"
    if paper in ("< 0", "> 0") and isinstance(ours, int | float):
        return "yes" if (ours < 0) == (paper == "< 0") else "no"
    return "asserted"


def _protocol(row: dict[str, Any]) -> str:
    """The evaluation protocol of a summary row's number: its own ``protocol`` key, else
    ``heldout`` for a score (a row with a metric convention: the sweeps scored every
    committed table under the held-out protocol), "–" for anything else."""
    if row.get("protocol"):
        return str(row["protocol"])
    return "heldout" if row.get("convention", "–") not in ("–", None) else "–"


def _cells(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _note(row: dict[str, Any]) -> str:
    """The row's note, with its failed-range threshold when it has one and where its numbers
    come from (``source``, :func:`~chaosrnn_utils.experiments.provenance`)."""
    note = str(row.get("note", ""))
    if row.get("failed_above") is not None:
        extra = f"failed range ≥ {float(row['failed_above']):.3g}"
        if row.get("paper_failed_above") is not None:
            extra += f" (paper's convention: ≥ {float(row['paper_failed_above']):.3g})"
        note = f"{note}; {extra}" if note else extra
    if row.get("source"):
        note = f"{note}; numbers: {row['source']}" if note else f"numbers: {row['source']}"
    return note
