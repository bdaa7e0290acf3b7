"""runstore's hot paths: statements sent straight to the DBAPI driver on a pooled connection.

A call such as ``add_result`` or ``get_run_by_id`` is one short statement; SQLAlchemy's
per-call machinery (a ``Connection`` object, its events, the compiled-cache lookup,
parameter and row processing in generic code) costs several times what the database
does for it. Here a Core statement is compiled once per dialect, its bind and result
processors are looked up once, and each call runs on the pool's DBAPI connection:

* the SQL is exactly what SQLAlchemy would send (it compiled it);
* values go through the same type processors (:mod:`runstore.types`);
* the pool still hands out and takes back the connection (its checkout events run,
  so idle connections are pinged), and a connection that raised a disconnect error is
  invalidated rather than returned;
* driver errors reach :func:`runstore.sql_errors.translated_errors` like any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.sql.compiler import SQLCompiler

from runstore.schema import attribute_name

__all__ = ["DriverStatement", "driver_transaction"]

_NAMED_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class DriverStatement:
    """A Core statement compiled once, executed with the driver's own cursor.

    Args:
        statement: the statement; its bind parameters are filled by name.
        dialect: the dialect to compile for.
        result_columns: the columns its rows hold, in order (for SELECT or RETURNING);
            rows are read into dicts keyed by their snake_case attribute names.
    """

    def __init__(
        self,
        statement: sa.ClauseElement,
        dialect: Dialect,
        result_columns: Sequence[sa.Column[Any]] = (),
    ) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        if dialect.positional:
            self.sql = str(compiled)
            names = list(compiled.positiontup or ())
        else:
            # Named placeholders (psycopg's %(name)s) become positional ones, so every row
            # is a plain tuple the driver need not look up by name.
            names = _NAMED_PLACEHOLDER.findall(str(compiled))
            self.sql = _NAMED_PLACEHOLDER.sub("%s", str(compiled))
        self._binds = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in names
        ]
        self._names = names
        self._attributes = [attribute_name(name.partition("_")[2] or name) for name in names]
        self._reads = [
            (attribute_name(column.name), _result_processor(column, dialect))
            for column in result_columns
        ]

    def parameters(
        self, values: Mapping[str, Any], *, by_attribute: bool = False
    ) -> tuple[Any, ...]:
        """The driver's parameters for ``values``, processed.

        ``values`` are keyed by bind name, or with ``by_attribute`` by the snake_case
        attribute of the column each bind fills (a model's ``__dict__``, say; a bind named
        ``v_runId`` fills ``run_id``).
        """
        keys = self._attributes if by_attribute else self._names
        processed = [
            values[key] if process is None else process(values[key])
            for key, (_, process) in zip(keys, self._binds, strict=True)
        ]
        return tuple(processed)

    def read(self, row: Sequence[Any]) -> dict[str, Any]:
        """One row as a dict of attribute name to Python value."""
        return {
            name: value if process is None else process(value)
            for (name, process), value in zip(self._reads, row, strict=True)
        }

    def execute(self, cursor: Any, values: Mapping[str, Any], *, by_attribute: bool = False) -> Any:
        """Run once with ``values`` (see :meth:`parameters`); returns the cursor."""
        cursor.execute(self.sql, self.parameters(values, by_attribute=by_attribute))
        return cursor

    def execute_many(
        self, cursor: Any, rows: Sequence[Mapping[str, Any]], *, by_attribute: bool = False
    ) -> None:
        """Run once per row, through the driver's ``executemany``."""
        parameters = self.parameters
        cursor.executemany(
            self.sql, [parameters(values, by_attribute=by_attribute) for values in rows]
        )


def _result_processor(column: sa.Column[Any], dialect: Dialect) -> Any:
    # Both drivers already return int, float and str as such; only runstore's own types
    # (UTC timestamps, JSON) turn what the driver gives into the Python value.
    if isinstance(column.type, sa.TypeDecorator):
        return column.type.dialect_impl(dialect).result_processor(dialect, None)
    return None


@contextmanager
def driver_transaction(
    engine: Engine, *, write: bool, isolation: str | None = None
) -> Iterator[Any]:
    """A transaction on a pooled DBAPI connection; yields a cursor.

    SQLite begins explicitly (``BEGIN IMMEDIATE`` for writes, as runstore's engines do);
    psycopg begins implicitly, or explicitly on a connection in autocommit mode. Commits
    on success, rolls back on any error; a connection whose error means it is dead is
    invalidated, never returned to the pool. ``isolation`` (Postgres only) sets the
    transaction's isolation level, such as ``"REPEATABLE READ"``.
    """
    connection = engine.raw_connection()
    driver = connection.driver_connection
    # Where the driver would not open a transaction by itself, runstore says BEGIN and
    # must then say COMMIT too (psycopg's commit() does nothing in autocommit mode).
    by_statement = engine.dialect.name != "sqlite" and bool(getattr(driver, "autocommit", False))
    cursor = None
    try:
        cursor = connection.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        elif by_statement:
            cursor.execute("BEGIN")
        if isolation is not None and engine.dialect.name == "postgresql":
            cursor.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
        yield cursor
        if by_statement:
            cursor.execute("COMMIT")
        else:
            connection.commit()
    except BaseException as exc:
        driver_error = engine.dialect.loaded_dbapi.Error
        if isinstance(exc, driver_error) and engine.dialect.is_disconnect(exc, driver, cursor):
            connection.invalidate(exc)
        else:
            try:
                if by_statement and cursor is not None:
                    cursor.execute("ROLLBACK")
                else:
                    connection.rollback()
            except driver_error:
                connection.invalidate()
        raise
    finally:
        if cursor is not None:
            cursor.close()
        connection.close()
