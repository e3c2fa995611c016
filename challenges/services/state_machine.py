"""The one way a status column changes: a conditional update along a table of allowed
transitions, which must change exactly the rows it names.

A worker, the sweeper, a cancel or a re-run may have got there first; then the update
matches no row and the caller must do nothing more. Submissions
(challenges.services.submissions.transitions) and round submissions
(challenges.tournaments) each keep their table; both move through here.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import FieldDoesNotExist
from django.db import connections, router, transaction
from django.db.models import F, Model, Q, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.sql import UpdateQuery

from challenges.prepared import execute, same_parameters

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
    statuses = allowed_from(table, step, to, from_statuses)

    def rows():
        selected = model.objects.filter(pk=pk, status__in=statuses)
        return selected if extra is None else selected.filter(extra)

    return _update(rows, model, pk, statuses, extra, {"status": to, **fields}) == 1


# ---------------------------------------------------------------- compiled once
# Each submission moves through four or five transitions, each an UPDATE of the same
# shape with new values; building and compiling it was a good part of a worker's CPU per
# submission. The SQL Django compiles for one shape (the fields written and which of them
# are NULL, the starting statuses, the lookups of `extra`) is kept, and later updates of
# that shape send it with their own values, prepared by the fields as Django prepares
# them. The first update of a shape checks that: its values, prepared here, must equal
# the parameters Django compiled, or the shape is never taken this way.

_COMPILED: dict[tuple, str | None] = {}
_PLAIN_LOOKUPS = ("exact", "lt", "lte", "gt", "gte")


def _update(rows, model, pk, statuses, extra, values: dict) -> int:
    """`rows().update(**values)`, with the SQL of its shape compiled once."""
    db = router.db_for_write(model)
    connection = connections[db]
    if not statuses:
        return rows().update(**values)  # no status to start from: the ORM's answer, 0
    try:
        key, params = _shape(connection, model, pk, statuses, extra, values)
    except (_NotPlain, FieldDoesNotExist, TypeError, ValueError):
        # Whatever this does not know how to prepare is the ORM's to prepare (or refuse).
        return rows().update(**values)
    sql = _COMPILED.get(key, "")
    if sql == "":
        query = rows().query.chain(UpdateQuery)
        query.add_update_values(values)
        sql, compiled = query.get_compiler(db).as_sql()
        same = same_parameters(compiled, params)
        _COMPILED[key] = sql if same else None
        params = compiled
    elif sql is None:
        return rows().update(**values)
    with transaction.mark_for_rollback_on_error(using=db), connection.cursor() as cursor:
        execute(connection, cursor, sql, params)
        return cursor.rowcount


class _NotPlain(Exception):
    """An expression, a model instance, a NULL test or a lookup this does not know."""


def _shape(connection, model, pk, statuses, extra, values: dict) -> tuple[tuple, list]:
    meta = model._meta
    shape: list = [connection.alias, meta.label, tuple(statuses)]
    params: list = []
    for name, value in values.items():
        counted = _counter(value)
        if counted is not None:
            # F(column) + a constant (a counter: enqueue_count at every enqueue): its
            # SQL is the shape's, its constant a parameter.
            shape.append((name, counted[0], "+"))
            params.append(counted[1])
            continue
        if hasattr(value, "resolve_expression") or hasattr(value, "prepare_database_save"):
            raise _NotPlain
        prepared = meta.get_field(name).get_db_prep_save(value, connection=connection)
        if hasattr(prepared, "as_sql"):
            raise _NotPlain
        shape.append((name, prepared is None, type(value)))
        if prepared is not None:
            params.append(prepared)
    params.append(meta.pk.get_db_prep_value(pk, connection, prepared=False))
    params.extend(statuses)
    if extra is not None:
        if extra.negated or extra.connector != Q.AND:
            raise _NotPlain
        for child in extra.children:
            if not isinstance(child, tuple):
                raise _NotPlain
            lookup, value = child
            name, _, kind = lookup.partition("__")
            if kind not in ("", *_PLAIN_LOOKUPS) or value is None:
                raise _NotPlain
            if hasattr(value, "resolve_expression"):
                raise _NotPlain
            # The value's type too: Django prepares a float for an integer lookup otherwise
            # than an int, so each type's first update is checked on its own.
            shape.append((lookup, type(value)))
            params.append(meta.get_field(name).get_db_prep_value(value, connection, prepared=False))
    return tuple(shape), params


def _counter(value) -> tuple[str, int] | None:
    """(column, n) for `F(column) + n`, n an int; else None."""
    if not isinstance(value, CombinedExpression) or value.connector != CombinedExpression.ADD:
        return None
    lhs, rhs = value.lhs, value.rhs
    if type(lhs) is not F or type(rhs) is not Value or type(rhs.value) is not int:
        return None
    return lhs.name, rhs.value


def transition_many(
    model: type[Model], table: Table, *, pks: Iterable[int], step: str, to: str, **fields
) -> int:
    """Move several rows along `table` in one update (a round's submissions when its
    targets arrive); returns how many moved. Rows that left the starting statuses
    meanwhile are not touched."""
    rows = model.objects.filter(pk__in=list(pks), status__in=allowed_from(table, step, to))
    return rows.update(status=to, **fields)
