"""EvalAI's ranking rules as pure functions (no ORM): which direction a label sorts,
which of a team's results is its entry, how rows are ordered and displayed.

- The label is the schema's `default_order_by` unless the reader picks another.
- Direction: `is_leaderboard_order_descending` of the phase split, overridden per label
  by `metadata[label].sort_ascending` of the schema.
- A missing (or non-numeric) score never ranks above a real one, whatever the direction.
- Ties go to the earlier submission (then the lower id, so the order is total).
- `leaderboard_decimal_precision` rounds for display only; ranking uses the raw value.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# A label the result did not report: an empty cell, as EvalAI leaves it.
MISSING = ""


class UnknownLabel(ValueError):
    """The reader asked to order by a label the leaderboard does not have."""

    def __init__(self, label: str, labels: Sequence[str]):
        self.label = label
        self.labels = list(labels)
        super().__init__(
            f"{label!r} is not a label of this leaderboard; order by one of: "
            + ", ".join(self.labels)
            + "."
        )


def labels_of(schema: dict[str, Any]) -> list[str]:
    return [str(label) for label in (schema or {}).get("labels") or []]


def default_label(schema: dict[str, Any]) -> str:
    labels = labels_of(schema)
    label = (schema or {}).get("default_order_by")
    if label in labels:
        return label
    return labels[0] if labels else ""


def resolve_label(schema: dict[str, Any], requested: str | None) -> str:
    if not requested:
        return default_label(schema)
    labels = labels_of(schema)
    if requested not in labels:
        raise UnknownLabel(requested, labels)
    return requested


def is_descending(schema: dict[str, Any], label: str, split_descending: bool) -> bool:
    meta = ((schema or {}).get("metadata") or {}).get(label)
    if isinstance(meta, dict) and "sort_ascending" in meta:
        value = meta["sort_ascending"]
        if isinstance(value, str):
            value = value.strip().lower() in {"true", "yes", "1"}
        return not bool(value)
    return bool(split_descending)


def score_value(scores: dict[str, Any] | None, label: str) -> float | None:
    """The number a result has for `label`, or None (missing, non-numeric, NaN)."""
    value = (scores or {}).get(label)
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


@dataclass(frozen=True)
class Candidate:
    """One result a team could show: its submission and the scores on the split."""

    submission_id: int
    submitted_at: dt.datetime
    scores: dict[str, Any]


def rank_key(value: float | None, submitted_at: dt.datetime, submission_id: int, descending: bool):
    """Sort key: real scores first (best first), then earlier submissions, then lower ids."""
    if value is None:
        return (1, 0.0, submitted_at, submission_id)
    return (0, -value if descending else value, submitted_at, submission_id)


def pick_entry(
    candidates: Iterable[Candidate], *, label: str, descending: bool, latest: bool
) -> Candidate | None:
    """A team's entry: its best result by `label`, or its latest with
    `show_leaderboard_by_latest_submission`."""
    candidates = list(candidates)
    if not candidates:
        return None
    if latest:
        return max(candidates, key=lambda c: (c.submitted_at, c.submission_id))
    return min(
        candidates,
        key=lambda c: rank_key(
            score_value(c.scores, label), c.submitted_at, c.submission_id, descending
        ),
    )


def display(value: Any, precision: int) -> str:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or (isinstance(number, float) and math.isnan(number)):
        return MISSING
    return f"{number:.{precision}f}"


def ordered_scores(scores: dict[str, Any] | None, labels: Sequence[str]) -> list[float | None]:
    return [score_value(scores, label) for label in labels]


# is_public (EvalAI's "Lock Submission Visibility"): see challenges.services.submission_choices.


def visibility_is_locked(phase) -> bool:
    """Every submission of the phase is public and stays so."""
    return (
        phase.is_submission_public
        and phase.leaderboard_public
        and not phase.is_restricted_to_select_one_submission
    )


def initial_is_public(phase, requested: bool | None) -> bool:
    """is_public of a new submission: the phase's default unless the participant chose."""
    if visibility_is_locked(phase):
        return True
    if phase.is_restricted_to_select_one_submission:
        # The team picks its one public submission itself; a new one does not replace it.
        return bool(requested)
    return phase.is_submission_public if requested is None else bool(requested)
