"""The one way a status column changes: a conditional update along a table of allowed
transitions, which must change exactly the rows it names.

A worker, the sweeper, a cancel or a re-run may have got there first; then the update
matches no row and the caller must do nothing more. Submissions
(challenges.services.submissions.transitions) and round submissions
(challenges.tournaments) each keep their table; both move through here.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Model, Q

Table = dict[tuple[str, str], tuple[str, ...]]


def allowed_from(table: Table, step: str, to: str, narrowed: Iterable[str] | None = None):
    """The statuses `step` may move a row to `to` from; `narrowed`, when given, must be a
    subset (a caller that knows which state its own attempt is in)."""
    allowed = table[(step, to)]
    if narrowed is None:
        return allowed
    narrowed = tuple(narrowed)
    if not set(narrowed) <= set(allowed):
        raise ValueError(
            f"{step} -> {to} is not allowed from {sorted(set(narrowed) - set(allowed))}"
        )
    return narrowed


def transition(
    model: type[Model],
    table: Table,
    *,
    pk: int,
    step: str,
    to: str,
    from_statuses: Iterable[str] | None = None,
    extra: Q | None = None,
    **fields,
) -> bool:
    """Move row `pk` of `model` along `table`; True when this caller moved it."""
    rows = model.objects.filter(pk=pk, status__in=allowed_from(table, step, to, from_statuses))
    if extra is not None:
        rows = rows.filter(extra)
    return rows.update(status=to, **fields) == 1


def transition_many(
    model: type[Model], table: Table, *, pks: Iterable[int], step: str, to: str, **fields
) -> int:
    """Move several rows along `table` in one update (a round's submissions when its
    targets arrive); returns how many moved. Rows that left the starting statuses
    meanwhile are not touched."""
    rows = model.objects.filter(pk__in=list(pks), status__in=allowed_from(table, step, to))
    return rows.update(status=to, **fields)
