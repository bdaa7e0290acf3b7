"""Postgres ``COPY``: the one stream runstore hands to the driver itself.

SQLAlchemy has no COPY, and recording a large batch with it is several times faster than
any INSERT, so ``add_results`` streams its rows with psycopg's ``Cursor.copy`` on the
connection's own driver connection, inside the SQLAlchemy transaction that also locks the
runs. What differs from every other statement: SQLAlchemy's engine events
(``before_cursor_execute`` and the rest) do not see the stream. Everything else holds --
values go through the columns' own bind processors, in binary COPY format with the
columns' Postgres types, and errors reach :mod:`runstore.sql.errors` like any other.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = ["CopyPlan", "copy_plan", "lost_in_copy"]


@dataclass(frozen=True, slots=True, eq=False)
class CopyPlan:
    """How to stream rows of one table: the COPY statement, its types, the processors."""

    sql: str
    types: tuple[str, ...]
    keys: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def tuples(self, rows: Sequence[Mapping[str, Any]]) -> Iterator[tuple[Any, ...]]:
        """Each row's values in column order, through the columns' bind processors."""
        fields = tuple(zip(self.keys, self.processors, strict=True))
        for row in rows:
            yield tuple(
                row[key] if process is None else process(row[key]) for key, process in fields
            )


@functools.cache
def copy_plan(table: sa.Table, dialect: Dialect, schema: str | None = None) -> CopyPlan:
    """How to stream rows of ``table`` -- in ``schema``, if given: COPY's text is written
    here, so it names the schema itself, as every other statement does."""
    preparer = dialect.identifier_preparer
    columns = list(table.columns)
    names = ", ".join(preparer.quote(column.name) for column in columns)
    types = []
    processors = []
    for column in columns:
        types.append(column.type.compile(dialect=dialect).lower())
        processors.append(column.type.dialect_impl(dialect).bind_processor(dialect))
    return CopyPlan(
        sql=f"COPY {_qualified(table, schema, preparer)} ({names}) FROM STDIN (FORMAT BINARY)",
        types=tuple(types),
        keys=tuple(column.key for column in columns),
        processors=tuple(processors),
    )


def _qualified(table: sa.Table, schema: str | None, preparer: Any) -> str:
    name = str(preparer.quote(table.name))
    return name if schema is None else f"{preparer.quote_schema(schema)}.{name}"


def lost_in_copy(exc: Exception, dialect: Dialect, driver_connection: Any) -> bool:
    """Whether a COPY failed because the connection is gone: then the runner does what
    SQLAlchemy does when a statement meets a dead connection -- drops it, and the pool's
    other connections with it (SQLAlchemy sees no error it could handle itself here)."""
    error: Any = exc  # the driver's own error class: the caller caught it as such
    return bool(dialect.is_disconnect(error, driver_connection, None))
