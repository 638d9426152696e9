"""How the ticket store runs a statement: :class:`Runner`, the only place that does.

A statement is a SQLAlchemy Core construct (:mod:`bot.tickets.statements`). SQLAlchemy
compiles it once per dialect, and the compiled form gives everything an execution needs: the
SQL, the order of its parameters, each parameter's bind processor (JSON, aware UTC times…)
and each result column's result processor. :meth:`Runner.execute` then sends it on the
connection's driver cursor. That is the work ``Connection.execute`` repeats on every call,
done once: on the store's hot paths SQLAlchemy's per-execution bookkeeping cost about half
as much again as the statements themselves, and under SQLite's one-writer lock that is
throughput lost (bench/bench_tickets.py).

Driver errors are raised as SQLAlchemy's (``sa.exc.IntegrityError``…), as ``execute`` would.

Statements must live as long as the runner (module constants, or built once per shape through
``functools.cache``): they are remembered by identity.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

__all__ = ["Result", "Runner"]


@dataclass(frozen=True)
class Result:
    """What a statement returned: the driver's row count, and its rows (RETURNING included)
    with attribute access by column name, values converted as SQLAlchemy would."""

    rowcount: int
    rows: list[Any]

    def first(self) -> Any | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any | None:
        return self.rows[0][0] if self.rows else None


class _Compiled:
    """One statement compiled for one dialect (and, for an INSERT without explicit values,
    one set of parameter names)."""

    def __init__(self, statement: sa.Executable, dialect: sa.Dialect,
                 column_keys: list[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if getattr(compiled, "escaped_bind_names", None) or compiled.literal_execute_params \
                or compiled.post_compile_params:  # pragma: no cover - not our statements
            raise ValueError(f"cannot run {compiled.string!r} on the cursor")
        self.sql = compiled.string
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        self.fixed: dict[str, Any] = {}  # literal values in the statement ('resolved', 0…)
        self.bind: dict[str, Callable[[Any], Any]] = {}
        for bind, name in compiled.bind_names.items():
            if bind.value is not None or not bind.required:
                self.fixed[name] = bind.effective_value
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.bind[name] = processor
        # (name, type) per result column: SELECT columns or RETURNING.
        self.columns = [(entry[0], entry[3]) for entry in compiled._result_columns]  # noqa: SLF001 - no public accessor
        self.row: type | None = (
            collections.namedtuple("Row", [name for name, _ in self.columns], rename=True)
            if self.columns else None
        )
        self._dialect = dialect
        self._results: list[tuple[int, Callable[[Any], Any]]] | None = None

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = {**self.fixed, **params}
        for name, processor in self.bind.items():
            values[name] = processor(values.get(name))
        if self.order is None:
            return values
        return tuple(values[name] for name in self.order)

    def rows(self, cursor: Any, fetched: list[Any]) -> list[Any]:
        if self.row is None or not fetched:
            return fetched
        if self._results is None:  # the driver's type codes are known once it has run
            results = []
            for i, ((_, type_), described) in enumerate(
                    zip(self.columns, cursor.description, strict=True)):
                processor = type_.dialect_impl(self._dialect).result_processor(
                    self._dialect, described[1])
                if processor is not None:
                    results.append((i, processor))
            self._results = results
        make = self.row._make  # type: ignore[attr-defined]
        if not self._results:
            return [make(row) for row in fetched]
        out = []
        for row in fetched:
            values = list(row)
            for i, processor in self._results:
                values[i] = processor(values[i])
            out.append(make(values))
        return out


class Runner:
    """Runs the store's statements on a connection's driver cursor (see the module)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._dialect = engine.dialect
        self._error = engine.dialect.loaded_dbapi.Error
        self._compiled: dict[tuple[int, tuple[str, ...] | None], _Compiled] = {}
        self._statements: list[sa.Executable] = []  # kept alive: compiled by identity
        self._lock = threading.Lock()

    def execute(self, conn: sa.Connection | sa.PoolProxiedConnection,
                statement: sa.Executable, params: Mapping[str, Any] | None = None) -> Result:
        """Run ``statement`` with ``params`` on ``conn``: an SQLAlchemy connection (in its
        transaction) or a pooled driver connection (in autocommit)."""
        params = params or {}
        compiled = self._compile(statement, params)
        pooled = conn.connection if isinstance(conn, sa.Connection) else conn
        cursor = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
        args = compiled.args(params)
        try:
            cursor.execute(compiled.sql, args)
            fetched = cursor.fetchall() if cursor.description else []
            return Result(cursor.rowcount, compiled.rows(cursor, fetched))
        except self._error as exc:
            raise sa.exc.DBAPIError.instance(compiled.sql, args, exc, self._error) from exc
        finally:
            cursor.close()

    def _compile(self, statement: sa.Executable, params: Mapping[str, Any]) -> _Compiled:
        # An INSERT without explicit values takes its columns from the parameters' names.
        keys = tuple(params) if isinstance(statement, sa.Insert) and \
            not statement._values and statement.select is None else None  # noqa: SLF001
        found = self._compiled.get((id(statement), keys))
        if found is None:
            with self._lock:
                found = _Compiled(statement, self._dialect, list(keys) if keys else None)
                self._statements.append(statement)
                self._compiled[id(statement), keys] = found
        return found
