"""Querysets whose SQL is compiled once per thread and database, then run with new values.

Django builds and compiles a queryset's SQL every time it runs. For the few statements
every upload runs (the token, the phase with its challenge, the team's participation, the
quota counts) that costs several times what PostgreSQL spends running them: a profile of
the upload request (bench/profile_upload.py) found most of its CPU there. A `Prepared`
builds its queryset once with stand-in values, keeps the SQL and which parameter each
value fills, and afterwards only executes it and turns the rows into what the queryset
would have given (models through the same compiler's converters and related populators,
or rows), so the rule stays written once, in the ORM.

Only for plain lookups: each declared value must reach the SQL as one parameter unchanged
(`exact`, `gte`, a `Value`): a value Django rewrites (`contains` adds % around it) is found
nowhere and the first call raises. Statements go through the connection's cursor, so they
are counted and logged as any other.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet

# Stand-ins that no real value equals, per kind of value.
_STAND_IN_INT = -7_319_482_057_000
_STAND_IN_TIME = dt.datetime(1901, 2, 3, 4, 5, 6, tzinfo=dt.UTC)


def _stand_in(kind: type, index: int) -> Any:
    if kind is int:
        return _STAND_IN_INT - index
    if kind is str:
        return f"\x00prepared-stand-in-{index}"
    if kind is dt.datetime:
        return _STAND_IN_TIME + dt.timedelta(microseconds=index + 1)
    raise TypeError(f"Prepared values are int, str or datetime, not {kind!r}")


class _Compiled:
    def __init__(
        self, queryset: QuerySet, kinds: dict[str, type], stand_ins: dict[str, Any], alias: str
    ) -> None:
        connection = connections[alias]
        self.connection = connection
        self.adapters: dict[str, Callable[[Any], Any]] = {}
        for name, kind in kinds.items():
            if kind is dt.datetime:
                self.adapters[name] = connection.ops.adapt_datetimefield_value
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        adapted = {
            name: self.adapters[name](value) if name in self.adapters else value
            for name, value in stand_ins.items()
        }
        self.sql = sql
        # Per parameter: the name of the value it takes, or None and the constant.
        self.slots: list[tuple[str | None, Any]] = []
        for param in params:
            name = next(
                (n for n, v in adapted.items() if type(param) is type(v) and param == v), None
            )
            self.slots.append((name, param))
        missing = set(kinds) - {name for name, _ in self.slots}
        if missing:
            raise ValueError(f"Prepared: {sorted(missing)} reach the SQL changed or not at all")
        self.compiler = compiler
        fields = [s[0] for s in compiler.select[0 : compiler.col_count]]
        self.converters = compiler.get_converters(fields)
        self.trim = compiler.col_count if compiler.has_extra_select else None
        self.model_rows = queryset._iterable_class.__name__ == "ModelIterable"
        if self.model_rows:
            from django.db.models.query import get_related_populators

            info, select = compiler.klass_info, compiler.select
            self.model = info["model"]
            start, end = info["select_fields"][0], info["select_fields"][-1] + 1
            self.span = (start, end)
            self.init_list = [f[0].target.attname for f in select[start:end]]
            self.populators = get_related_populators(info, select, alias)
            self.annotations = dict(compiler.annotation_col_map or {})
            self.alias = alias

    def params(self, values: dict[str, Any]) -> list[Any]:
        out = []
        for name, constant in self.slots:
            if name is None:
                out.append(constant)
            else:
                value = values[name]
                adapter = self.adapters.get(name)
                out.append(adapter(value) if adapter else value)
        return out

    def rows(self, values: dict[str, Any]) -> list[Any]:
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql, self.params(values))
            rows = cursor.fetchall()
        if self.trim is not None:
            rows = [r[: self.trim] for r in rows]
        if self.converters:
            rows = list(self.compiler.apply_converters(rows, self.converters))
        return rows

    def objects(self, values: dict[str, Any]) -> list[Model]:
        start, end = self.span
        found = []
        for row in self.rows(values):
            obj = self.model.from_db(self.alias, self.init_list, row[start:end])
            for populator in self.populators:
                populator.populate(row, obj)
            for name, position in self.annotations.items():
                setattr(obj, name, row[position])
            found.append(obj)
        return found


class Prepared:
    """`build(**stand_ins)` -> the queryset; `kinds`: each value's type (int, str,
    datetime). `objects(**values)`: the models (for a model queryset); `rows(**values)`:
    the rows (values_list)."""

    def __init__(self, build: Callable[..., QuerySet], **kinds: type) -> None:
        self.build = build
        self.kinds = kinds
        # Per thread: a compiler belongs to its thread's connection.
        self._local = threading.local()

    def _compiled(self, alias: str) -> _Compiled:
        cache = self._local.__dict__.setdefault("by_alias", {})
        compiled = cache.get(alias)
        if compiled is None or compiled.connection is not connections[alias]:
            stand_ins = {n: _stand_in(k, i) for i, (n, k) in enumerate(self.kinds.items())}
            queryset = self.build(**stand_ins)
            compiled = cache[alias] = _Compiled(queryset, self.kinds, stand_ins, alias)
        return compiled

    def objects(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[Model]:
        return self._compiled(using).objects(values)

    def rows(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[Any]:
        return self._compiled(using).rows(values)
