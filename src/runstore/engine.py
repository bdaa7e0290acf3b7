"""The engines runstore makes for itself, and the settings they get.

Only engines built here are configured; an Engine a caller passes in is used as it is.

SQLite (file): WAL journal, ``synchronous=NORMAL``, a 30 s busy timeout, foreign keys on,
and transactions begun by runstore itself -- ``BEGIN IMMEDIATE`` for writes, so concurrent
writers queue on the busy timeout instead of failing, and plain ``BEGIN`` for reads.
SQLite in memory (``sqlite://``): one connection shared by every thread (the database
lives in it), used by one thread at a time.
Postgres (``postgresql+psycopg://``; ``postgresql://`` is read as psycopg 3): pre-ping
of connections that sat idle in the pool for 5 s or more (``ping_after_idle=seconds``;
``None`` turns it off, ``pool_pre_ping=True`` pings at every checkout instead), a pool of
5 plus 10 overflow, connections recycled hourly, sessions in UTC.

Pass ``sqlite_pragmas`` to change or drop (value ``None``) a pragma, and any
``create_engine`` keyword to override the rest.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from runstore.errors import InvalidInputError

__all__ = [
    "DEFAULT_SQLITE_PRAGMAS",
    "PING_AFTER_IDLE_SECONDS",
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

PING_AFTER_IDLE_SECONDS = 5.0
"""Postgres connections idle in the pool for longer are pinged before reuse."""
_LAST_USED = "runstore_last_used"


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


def _ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    """Pre-ping a pooled connection at checkout only if it sat idle ``idle_seconds``.

    A connection that was in use moments ago is alive; pinging it anyway would cost a
    round trip on every call. One that sat idle may have been closed by the server or a
    proxy: it is pinged, and replaced if dead. (Failures mid-use are caught too: SQLAlchemy
    discards connections that raise a disconnect error.)
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_: object, record: ConnectionPoolEntry) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _: object) -> None:
        last_used = record.info.get(_LAST_USED)
        if last_used is None or time.monotonic() - last_used < idle_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"idle connection is gone: {exc}") from exc


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
            "pool_size": 5,
            "max_overflow": 10,
            "pool_recycle": 3600,
            "connect_args": {"options": "-c TimeZone=UTC"},
        }
        ping_after_idle = engine_options.pop("ping_after_idle", PING_AFTER_IDLE_SECONDS)
        options.update(engine_options)
        engine = sa.create_engine(parsed, **options)
        if ping_after_idle is not None and not options.get("pool_pre_ping"):
            _ping_idle_connections(engine, ping_after_idle)
        return engine

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
        # Straight to the driver: this runs once per transaction, on the hot path.
        driver: sqlite3.Connection = connection.connection.driver_connection  # type: ignore[assignment]
        driver.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
