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

On PostgreSQL these statements (and the INSERTs and raw SQL of the same path, through
`insert`, `execute` and `raw_rows`) are also kept as server-side plans, prepared once per
connection: see "plans kept by PostgreSQL" below.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
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

        def run(sent: str) -> list:
            compiler.as_sql = lambda *args, **kwargs: (sent, params)
            return [row for chunk in compiler.execute_sql() for row in chunk]

        rows = run_planned(connection, self.sql, len(params), run)
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


def insert_rows(model: type[Model], rows: list[Model], *, ignore_conflicts: bool = False) -> None:
    """`model.objects.bulk_create(rows, ignore_conflicts=...)`; a single row (a phase of one
    split, a team of one) by `insert`, its SQL compiled once and kept as a plan."""
    if len(rows) == 1:
        insert(rows[0], ignore_conflicts=ignore_conflicts)
    else:
        model.objects.bulk_create(rows, ignore_conflicts=ignore_conflicts)


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
# A statement's name is a hash of its SQL, in every process: one name is one statement
# wherever it is prepared. A plan the server lost (26000: DEALLOCATE, a pooler's reset) or
# that a migration made stale (0A000) is prepared again; outside a transaction the
# statement that found out is sent again, inside one it fails with the server's error.
#
# Off with DB_SERVER_PREPARED=false: a pooler in transaction mode (PgBouncer) hands a
# client another server connection per transaction, where the plan does not exist.

_TEXTS: dict[str, str] = {}  # name -> the SQL it was prepared from (statement_text)
_LOST_PLAN = ("26000", "0A000")  # no such prepared statement; its result type changed


def server_sql(connection, sql: str, count: int) -> str:
    """What to send for `sql` (Django's `%s` placeholders, `count` of them) on this
    connection: `EXECUTE name(%s, ...)` of the plan PostgreSQL keeps for it, prepared on
    first use; `sql` itself on another database, when turned off, or when PostgreSQL could
    not prepare it (a value whose type it cannot infer)."""
    if connection.vendor != "postgresql" or not settings.DB_SERVER_PREPARED:
        return sql
    connection.ensure_connection()
    plans = _plans(connection)
    execute = plans.get(sql, "")
    if execute == "":
        execute, keep = _prepare(connection, sql, count)
        if keep:
            plans[sql] = execute
    return execute or sql


def run_planned(connection, sql: str, count: int, run: Callable[[str], Any]) -> Any:
    """`run(what to send for sql)`; when the connection's plan for it was lost or went
    stale, prepared anew and, outside a transaction (nothing else was undone), run again."""
    try:
        return run(server_sql(connection, sql, count))
    except DatabaseError as exc:
        if not _lost_plan(exc):
            raise
        connection._evalserver_plans = None
        if not connection.get_autocommit():
            raise
        return run(server_sql(connection, sql, count))


def execute(connection, cursor, sql: str, params: list) -> None:
    """`cursor.execute(sql, params)` through the connection's plan for `sql`."""
    run_planned(connection, sql, len(params), lambda sent: cursor.execute(sent, params))


def raw_rows(model: type[Model], sql: str, params: list) -> list:
    """`list(model.objects.raw(sql, params))` through the connection's plan for `sql`. How
    the statement's columns map onto the model (RawQuerySet works it out anew for every
    query: a fifth of the fan-out's claim) is kept per statement."""
    db = router.db_for_read(model)
    connection = connections[db]
    params = [connection.ops.adapt_unknown_value(value) for value in params]  # as raw()

    def run(sent: str) -> tuple:
        with connection.cursor() as cursor:
            cursor.execute(sent, params)
            return tuple(column[0] for column in cursor.description), cursor.fetchall()

    columns, rows = run_planned(connection, sql, len(params), run)
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


def _lost_plan(error: BaseException) -> bool:
    """Whether a statement failed because PostgreSQL no longer has the plan it names
    (deallocated) or cannot use it any more (a migration changed its result's columns)."""
    return _pgcode(error) in _LOST_PLAN


def _pgcode(error: BaseException) -> str:
    return getattr(error, "pgcode", None) or getattr(error.__cause__, "pgcode", None) or ""


def statement_text(sql: str) -> str:
    """The SQL an `EXECUTE name(...)` runs (its placeholders as `$n`); other SQL as it is:
    for tests and logs that read statements."""
    name = sql[len("EXECUTE ") :].split("(", 1)[0] if sql.startswith("EXECUTE es_") else ""
    return _TEXTS.get(name, sql)


def _plans(connection) -> dict[str, str | None]:
    """This connection's prepared statements, by SQL; new when the connection is."""
    raw = connection.connection
    state = getattr(connection, "_evalserver_plans", None)
    if state is None or state[0] is not raw:
        state = connection._evalserver_plans = (raw, {})
    return state[1]


def _prepare(connection, sql: str, count: int) -> tuple[str | None, bool]:
    """(`EXECUTE name(...)`, or None for the text; whether that holds for this connection:
    not after a refusal that was not about the statement itself, a timeout say)."""
    numbered, found = _numbered(sql)
    if found != count:
        return None, True
    name = "es_" + hashlib.blake2b(numbered.encode(), digest_size=10).hexdigest()
    # On the driver's own cursor: a step of the connection's, not a statement of the
    # caller's (no execute wrapper counts it, no debug log lists it). Inside a transaction
    # a savepoint keeps a refusal from aborting it.
    in_transaction = not connection.get_autocommit()
    error = connection.Database.Error
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        try:
            if in_transaction:
                cursor.execute("SAVEPOINT evalserver_prepare")
            try:
                cursor.execute(f"PREPARE {name} AS {numbered}")
            except error as exc:
                if _pgcode(exc) != "42P05":
                    raise
                # There already (stale after a migration, or a pooler's server connection
                # another client prepared it on): the same name is the same SQL, made anew.
                if in_transaction:
                    cursor.execute("ROLLBACK TO SAVEPOINT evalserver_prepare")
                cursor.execute(f"DEALLOCATE {name}")
                cursor.execute(f"PREPARE {name} AS {numbered}")
        except error as exc:
            if in_transaction:
                with contextlib.suppress(error):  # the transaction had failed before
                    cursor.execute("ROLLBACK TO SAVEPOINT evalserver_prepare")
                    cursor.execute("RELEASE SAVEPOINT evalserver_prepare")
            # Class 42 (syntax, a type it cannot infer): the statement's own, for good.
            return None, _pgcode(exc).startswith("42")
        if in_transaction:
            cursor.execute("RELEASE SAVEPOINT evalserver_prepare")
    _TEXTS[name] = numbered
    return (f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"), True


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
