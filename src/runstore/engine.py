"""The engines runstore makes for itself, and the settings they get.

Only engines built here are configured; an Engine a caller passes in is used as it is.

SQLite (file): WAL journal, ``synchronous=NORMAL``, a 30 s busy timeout, foreign keys on,
and transactions begun by runstore itself -- ``BEGIN IMMEDIATE`` for writes, so concurrent
writers queue on the busy timeout instead of failing, and plain ``BEGIN`` for reads.
SQLite in memory (``sqlite://``): one connection shared by every thread (the database
lives in it), used by one thread at a time.
Postgres (``postgresql+psycopg://``; ``postgresql://`` is read as psycopg 3): pre-ping,
a pool of 5 plus 10 overflow, connections recycled hourly, sessions in UTC.

Pass ``sqlite_pragmas`` to change or drop (value ``None``) a pragma, and any
``create_engine`` keyword to override the rest.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from runstore.errors import InvalidInputError

__all__ = [
    "DEFAULT_SQLITE_PRAGMAS",
    "WRITE_OPTION",
    "create_storage_engine",
    "is_memory_sqlite",
    "normalize_url",
]

WRITE_OPTION = "runstore_write"
"""Execution option marking a write transaction (``BEGIN IMMEDIATE`` on SQLite)."""

DEFAULT_SQLITE_PRAGMAS: Mapping[str, str] = {
    "busy_timeout": "30000",
    "foreign_keys": "ON",
    "journal_mode": "WAL",
    "synchronous": "NORMAL",
}
_FILE_ONLY_PRAGMAS = frozenset({"journal_mode"})


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and check it names a backend runstore supports."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_driver_name() != "psycopg":
            raise InvalidInputError(
                f"runstore talks to Postgres through psycopg 3: use a "
                f"postgresql+psycopg:// URL, not {parsed.drivername}://"
            )
    elif backend != "sqlite":
        raise InvalidInputError(f"runstore supports SQLite and Postgres, not {backend}")
    return parsed


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    )


def create_storage_engine(
    url: str | URL,
    *,
    sqlite_pragmas: Mapping[str, str | None] | None = None,
    **engine_options: Any,
) -> Engine:
    """Create an engine with runstore's settings (see the module docstring)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "postgresql":
        options: dict[str, Any] = {
            "pool_pre_ping": True,
            "pool_size": 5,
            "max_overflow": 10,
            "pool_recycle": 3600,
            "connect_args": {"options": "-c TimeZone=UTC"},
        }
        options.update(engine_options)
        return sa.create_engine(parsed, **options)

    memory = is_memory_sqlite(parsed)
    options = {"connect_args": {"check_same_thread": False}}
    if memory:
        options["poolclass"] = StaticPool
    options.update(engine_options)
    engine = sa.create_engine(parsed, **options)

    pragmas = {**DEFAULT_SQLITE_PRAGMAS, **(sqlite_pragmas or {})}
    statements = [
        f"PRAGMA {name}={value}"
        for name, value in pragmas.items()
        if value is not None and not (memory and name in _FILE_ONLY_PRAGMAS)
    ]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _: ConnectionPoolEntry) -> None:
        # Leave transaction control to SQLAlchemy's "begin" event below, so that
        # transactions (DDL included) begin exactly where runstore says.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
