"""Queries the ORM builds and compiles once per process and connection, then runs with new
values: for the statements every submission sends (the worker's reads, the fan-out's).

A profile of the worker found more of its CPU in Django building and compiling SQL
(filters resolved, columns quoted, joins set up) than in PostgreSQL running it, for the
same dozen statements each submission, the same text every time but for a few values.
`Prepared` builds the queryset once with stand-in values, keeps the compiled SQL and the
compiler (which knows the columns, their converters and the related objects to fill in),
and puts each call's values where the stand-ins were.

Only for queries whose SQL never depends on the values (no `__in` of a varying list);
the stand-ins must each reach the parameters (checked when compiling).
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import re
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import DatabaseError, connections, router, transaction
from django.db.models import Model, QuerySet, signals
from django.db.models.constants import OnConflict
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesListIterable,
    get_related_populators,
)
from django.db.models.sql import InsertQuery, Query
from django.db.transaction import TransactionManagementError

# Stand-ins, per type, that no real value equals and that a field's preparation would
# change if it changes values (the str's capitals for a case-insensitive lookup, its % _ \
# for a LIKE's escaping): a stand-in that does not reach the parameters unchanged is
# refused when compiling, so such a query is never replayed.
_STAND_INS: dict[type, Callable[[int], Any]] = {
    int: lambda i: -(2**30) - 7919 * (i + 1),  # within a 32-bit column's range
    str: lambda i: f"\u27e8Prepared %_\\ {i}\u27e9",
    # Reaches the parameters as the database's adaptation of it (SQLite's is text): _adapt.
    dt.datetime: lambda i: dt.datetime(1901, 2, 3, 4, 5, 6, i + 1, tzinfo=dt.UTC),
}


def _adapt(connection, value: Any) -> Any:
    """A value as the ORM hands it to the database (a datetime: the backend's adaptation)."""
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


class _Compiled:
    def __init__(self, queryset: QuerySet, stand_ins: tuple) -> None:
        self.db = queryset.db
        self.iterable = queryset._iterable_class
        self.compiler = queryset.query.get_compiler(using=self.db)
        self.sql, params = self.compiler.as_sql()
        stand_ins = tuple(_adapt(self.compiler.connection, s) for s in stand_ins)
        # Each parameter: the index of the call's value it takes, or its constant value.
        self.slots: list[tuple[bool, Any]] = []
        found = set()
        for value in params:
            hit = next(
                (i for i, s in enumerate(stand_ins) if type(value) is type(s) and value == s),
                None,
            )
            if hit is None:
                self.slots.append((False, value))
            else:
                found.add(hit)
                self.slots.append((True, hit))
        if len(found) != len(stand_ins):
            raise ValueError(f"prepared query: values {set(range(len(stand_ins))) - found} unused")
        # What each call would work out again: the columns' converters, the related
        # objects' populators (they keep no state between rows).
        compiler = self.compiler
        self.converters = compiler.get_converters(
            [s[0] for s in compiler.select[: compiler.col_count]]
        )
        if self.iterable is ModelIterable:
            select, klass_info = self.compiler.select, self.compiler.klass_info
            self.populators = get_related_populators(klass_info, select, self.db)
            fields = klass_info["select_fields"]
            self.model_slice = slice(fields[0], fields[-1] + 1)
            self.init_list = [f[0].target.attname for f in select[self.model_slice]]
            self.model = klass_info["model"]
            self.annotations = list((self.compiler.annotation_col_map or {}).items())
        elif self.iterable not in (ValuesListIterable, FlatValuesListIterable):
            raise ValueError(f"prepared query: {self.iterable.__name__} is not supported")

    def rows(self, values: tuple) -> list:
        connection = self.compiler.connection
        if self.compiler.query.select_for_update and connection.get_autocommit():
            # What the ORM checks when it compiles: a lock outside a transaction is none.
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = [_adapt(connection, values[v]) if is_value else v for is_value, v in self.slots]
        compiler = copy.copy(self.compiler)  # the shared one stays as compiled
        sql = server_sql(connection, self.sql, len(params))
        compiler.as_sql = lambda *args, **kwargs: (sql, params)
        try:
            rows = [row for chunk in compiler.execute_sql() for row in chunk]
        except DatabaseError as exc:
            forget_plans_on(connection, exc)
            raise
        if self.converters:
            rows = list(compiler.apply_converters(rows, self.converters))
        if self.iterable is FlatValuesListIterable:
            return [row[0] for row in rows]
        if self.iterable is ValuesListIterable:
            return [tuple(row) for row in rows]
        objects = []
        for row in rows:
            obj = self.model.from_db(self.db, self.init_list, row[self.model_slice])
            for populator in self.populators:
                populator.populate(row, obj)
            for name, position in self.annotations:
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects


class Prepared:
    """`build(*values)` -> a queryset (model rows or values_list), compiled on first use
    per database connection; `prepared(*values)` -> its rows as a list."""

    def __init__(self, build: Callable[..., QuerySet], *types: type) -> None:
        self._build = build
        self._types = types
        self._stand_ins = tuple(_STAND_INS[t](i) for i, t in enumerate(types))
        self._local = threading.local()  # a connection belongs to one thread

    def __call__(self, *values: Any) -> list:
        if len(values) != len(self._stand_ins):
            raise TypeError(f"prepared query takes {len(self._stand_ins)} values")
        for value, declared in zip(values, self._types, strict=True):
            # Exactly the declared type: None would need IS NULL, a bool is no integer to
            # PostgreSQL, a str id is the ORM's to convert (the caller takes that path).
            if type(value) is not declared:
                raise TypeError(
                    f"prepared query: {type(value).__name__} given where {declared.__name__} is declared"
                )
        compiled = getattr(self._local, "compiled", None)
        if compiled is None or compiled.compiler.connection is not connections[compiled.db]:
            compiled = _Compiled(self._build(*self._stand_ins), self._stand_ins)
            self._local.compiled = compiled
        return compiled.rows(values)


# ---------------------------------------------------------------- one INSERT per shape
# `Model.objects.create()` builds an InsertQuery and compiles it (every column quoted,
# every placeholder worked out) for each row; the upload's INSERT was a tenth of its CPU.
# The SQL depends only on the model, the database and whether the id is given, so it is
# kept per shape; each row's values are prepared by the fields as Django prepares them.
# The first row of a shape checks that: its values, prepared here, must equal the
# parameters Django compiled, or the shape is never taken this way.

_INSERTS: dict[tuple, str | None] = {}


def insert(obj: Model, *, ignore_conflicts: bool = False) -> None:
    """`obj.save(force_insert=True)` for a new row: its defaults and `auto_now_add` filled
    in, its id set from the database. Models with parents, save signals' receivers, or
    ids not returned as one integer column are saved by the ORM as they were.

    `ignore_conflicts`: `bulk_create([obj], ignore_conflicts=True)` instead (ON CONFLICT DO
    NOTHING, no signals): a row a constraint refuses is skipped; the id is not read back."""
    model = type(obj)
    meta = model._meta
    db = router.db_for_write(model, instance=obj)
    connection = connections[db]

    def by_the_orm() -> None:
        if ignore_conflicts:
            model._base_manager.using(db).bulk_create([obj], ignore_conflicts=True)
        else:
            obj.save(force_insert=True, using=db)

    if (
        meta.parents
        or connection.vendor not in ("postgresql", "sqlite")
        or not ignore_conflicts
        and (
            signals.pre_save.has_listeners(model)
            or signals.post_save.has_listeners(model)
            or meta.db_returning_fields != [meta.pk]
            or meta.auto_field is not meta.pk
            or not connection.features.can_return_columns_from_insert
        )
    ):
        by_the_orm()
        return
    obj._prepare_related_fields_for_save(operation_name="save")
    pk_given = obj.pk is not None
    fields = [f for f in meta.local_concrete_fields if pk_given or f is not meta.auto_field]
    params = []
    for field in fields:
        value = field.pre_save(obj, add=True)
        if hasattr(value, "resolve_expression"):
            by_the_orm()
            return
        params.append(field.get_db_prep_save(value, connection=connection))
    key = (db, meta.label, pk_given, ignore_conflicts)
    sql = _INSERTS.get(key, "")
    if sql == "":
        query = InsertQuery(model, on_conflict=OnConflict.IGNORE if ignore_conflicts else None)
        query.insert_values(fields, [obj])
        compiler = query.get_compiler(using=db)
        if not ignore_conflicts:
            compiler.returning_fields = meta.db_returning_fields
        [(sql, compiled)] = compiler.as_sql()
        sql = _INSERTS[key] = sql if same_parameters(compiled, params) else None
    if sql is None:
        by_the_orm()
        return
    with transaction.mark_for_rollback_on_error(using=db), connection.cursor() as cursor:
        execute(connection, cursor, sql, params)
        if not ignore_conflicts:
            returned = connection.ops.fetch_returned_insert_columns(cursor, ())
            setattr(obj, meta.pk.attname, meta.pk.to_python(returned[0]))
    obj._state.adding = False
    obj._state.db = db


def same_parameters(compiled: list, ours: list) -> bool:
    """Whether the values prepared here are the parameters Django compiled, one for one:
    the check on a shape's first use before its SQL is replayed with other values."""
    return len(compiled) == len(ours) and all(map(_same, compiled, ours))


def _same(compiled, ours) -> bool:
    if compiled == ours:
        return True
    # psycopg2's Json adapters compare by identity; what they adapt is what matters.
    return (
        type(compiled) is type(ours)
        and hasattr(ours, "adapted")
        and (compiled.adapted == ours.adapted)
    )


# ---------------------------------------------------------------- plans kept by PostgreSQL
# psycopg2 sends each statement as text with its values written in, so PostgreSQL parses
# and plans the same dozen statements again for every submission: for the worker's claim
# (a three-table join of ~80 columns) or the fan-out's read of a team (three subqueries),
# planning was about two thirds of the backend's CPU per statement. The statements above
# (and the few written out by hand on the same path) are prepared once per connection
# (`PREPARE`) and then sent as `EXECUTE name(values)`: the same SQL and values, without
# the parse and, once PostgreSQL settles on a generic plan, without the planning.
#
# Off with DB_SERVER_PREPARED=false: a pooler in transaction mode (PgBouncer) hands a
# client another server connection per transaction, where the plan does not exist.

_NAMES = itertools.count(1)
_TEXTS: dict[str, str] = {}  # name -> the SQL it was prepared from (statement_text)
_LOST_PLAN = ("26000", "0A000")  # no such prepared statement; its result type changed


def server_sql(connection, sql: str, count: int) -> str:
    """What to send for `sql` (Django's `%s` placeholders, `count` of them) on this
    connection: `EXECUTE name(%s, ...)` of the plan PostgreSQL keeps for it, prepared on
    first use; `sql` itself on another database, when turned off, or when PostgreSQL could
    not prepare it (a value whose type it cannot infer)."""
    if connection.vendor != "postgresql" or not getattr(settings, "DB_SERVER_PREPARED", True):
        return sql
    connection.ensure_connection()
    plans = _plans(connection)
    execute = plans.get(sql, "")
    if execute == "":
        execute = plans[sql] = _prepare(connection, sql, count)
    return execute or sql


def execute(connection, cursor, sql: str, params: list) -> None:
    """`cursor.execute(sql, params)` through the connection's plan for `sql`."""
    try:
        cursor.execute(server_sql(connection, sql, len(params)), params)
    except DatabaseError as exc:
        forget_plans_on(connection, exc)
        raise


def raw_rows(model: type[Model], sql: str, params: list) -> list:
    """`list(model.objects.raw(sql, params))` through the connection's plan for `sql`. How
    the statement's columns map onto the model (RawQuerySet works it out anew for every
    query: a fifth of the fan-out's claim) is kept per statement."""
    db = router.db_for_read(model)
    connection = connections[db]
    try:
        with connection.cursor() as cursor:
            cursor.execute(server_sql(connection, sql, len(params)), params)
            columns = tuple(column[0] for column in cursor.description)
            rows = cursor.fetchall()
    except DatabaseError as exc:
        forget_plans_on(connection, exc)
        raise
    key = (db, model, sql, columns)
    shape = _RAW_SHAPES.get(key) or _RAW_SHAPES.setdefault(key, _RawShape(model, db, columns))
    return shape.instances(rows)


class _RawShape:
    """RawModelIterable's work on a statement's columns, done once: which are the model's
    fields (their positions and converters), which are extra attributes."""

    def __init__(self, model: type[Model], db: str, columns: tuple[str, ...]) -> None:
        connection = connections[db]
        name_of = connection.introspection.identifier_converter
        by_column = {name_of(f.column): f for f in model._meta.concrete_fields}
        fields = [f for f in model._meta.concrete_fields if name_of(f.column) in columns]
        self.names = [f.attname for f in fields]
        if model._meta.pk.attname not in self.names:
            raise FieldDoesNotExist("Raw query must include the primary key")
        self.positions = [columns.index(name_of(f.column)) for f in fields]
        self.extra = [(c, i) for i, c in enumerate(columns) if c not in by_column]
        self.compiler = connection.ops.compiler("SQLCompiler")(Query(model), connection, db)
        self.converters = self.compiler.get_converters(
            [
                f.get_col(f.model._meta.db_table) if (f := by_column.get(c)) else None
                for c in columns
            ]
        )
        self.model, self.db = model, db

    def instances(self, rows: list) -> list:
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        found = []
        for values in rows:
            obj = self.model.from_db(self.db, self.names, [values[p] for p in self.positions])
            for column, position in self.extra:
                setattr(obj, column, values[position])
            found.append(obj)
        return found


_RAW_SHAPES: dict[tuple, _RawShape] = {}


def forget_plans_on(connection, error: BaseException) -> None:
    """After a statement failed: when PostgreSQL no longer has a plan this connection
    relies on (deallocated, or made stale by a migration), prepare everything anew."""
    if getattr(getattr(error, "__cause__", None), "pgcode", None) in _LOST_PLAN or (
        getattr(error, "pgcode", None) in _LOST_PLAN
    ):
        connection._evalserver_plans = None


def statement_text(sql: str) -> str:
    """The SQL an `EXECUTE name(...)` runs (its placeholders as `$n`); other SQL as it is:
    for tests and logs that read statements."""
    name = sql[len("EXECUTE ") :].split("(", 1)[0] if sql.startswith("EXECUTE es") else ""
    return _TEXTS.get(name, sql)


def _plans(connection) -> dict[str, str | None]:
    """This connection's prepared statements, by SQL; new when the connection is."""
    raw = connection.connection
    state = getattr(connection, "_evalserver_plans", None)
    if state is None or state[0] is not raw:
        state = connection._evalserver_plans = (raw, {})
    return state[1]


def _prepare(connection, sql: str, count: int) -> str | None:
    numbered, found = _numbered(sql)
    if found != count:
        return None
    name = f"es{next(_NAMES)}"
    # On the driver's own cursor: a step of the connection's, not a statement of the
    # caller's (no execute wrapper counts it, no debug log lists it). Inside a transaction
    # a savepoint keeps a refusal from aborting it.
    in_transaction = not connection.get_autocommit()
    with connection.connection.cursor() as cursor:
        try:
            if in_transaction:
                cursor.execute("SAVEPOINT evalserver_prepare")
            cursor.execute(f"PREPARE {name} AS {numbered}")
        except connection.Database.Error:
            if in_transaction:
                try:
                    cursor.execute("ROLLBACK TO SAVEPOINT evalserver_prepare")
                    cursor.execute("RELEASE SAVEPOINT evalserver_prepare")
                except connection.Database.Error:
                    pass  # the transaction had failed before: its own statement says so
            return None
        if in_transaction:
            cursor.execute("RELEASE SAVEPOINT evalserver_prepare")
    _TEXTS[name] = numbered
    return f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"


def _numbered(sql: str) -> tuple[str, int]:
    """Django's `%s` placeholders as PostgreSQL's `$1, $2, ...` and `%%` as `%`; the count.
    Any other `%` sequence is not Django's and leaves the statement unprepared."""
    count = 0

    def one(match: re.Match) -> str:
        nonlocal count
        if match.group() == "%%":
            return "%"
        if match.group() != "%s":
            raise ValueError(match.group())
        count += 1
        return f"${count}"

    try:
        return re.sub(r"%.", one, sql, flags=re.DOTALL), count
    except ValueError:
        return sql, -1
