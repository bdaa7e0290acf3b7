"""The engines runstore makes for itself, the settings they get, and how URLs are shown.

Only engines built here are configured; an Engine a caller passes in is used as it is.

Every connection runstore uses is in autocommit: a single statement is a transaction of
its own, and runstore begins the transactions of several statements itself, with a
statement engine events see (:func:`begin_statement`).

Both databases (but SQLite in memory): a pool of 10 connections without overflow, so a
connection opened stays open and callers beyond ten wait up to 30 s for one.
SQLite (file): WAL journal, ``synchronous=NORMAL``, a 30 s busy timeout, foreign keys on,
and ``BEGIN IMMEDIATE`` for a write of several statements, so concurrent writers queue on
the busy timeout instead of failing.
SQLite in memory (``sqlite://``): one connection shared by every thread (the database
lives in it), used by one thread at a time.
Postgres (``postgresql+psycopg://``; ``postgresql://`` and ``postgres://`` are read as
psycopg 3): pre-ping of connections that sat idle in the pool for 5 s or more
(``ping_after_idle=seconds``; ``None`` turns it off, ``pool_pre_ping=True`` pings at every
checkout instead), connections recycled hourly, and no statement prepared on the server
by psycopg (``prepare_threshold=None``: a transaction-pooling pooler such as PgBouncer
hands each transaction to another server connection, where a prepared statement is
missing or taken; ``prepared_statements=True`` keeps psycopg's preparing, where no pooler
stands between). No session state at all -- no startup ``options``, no ``SET``, no
session advisory lock -- so any pooler works with the URL alone: instants are UTC
whatever the session's time zone (:class:`runstore.types.UTCDateTime`), and with
``schema="name"`` (Postgres only) every statement names that schema
(:func:`schema_translation`), so runstore's tables, indexes and version table live there
and nothing outside it is seen.

Pass ``sqlite_pragmas`` to change or drop (value ``None``) a pragma, and any
``create_engine`` keyword but ``isolation_level`` to override the rest.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.engine import Engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.pool import StaticPool

from runstore.errors import InvalidInputError
from runstore.plans import Mode

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "DEFAULT_SQLITE_PRAGMAS",
    "PING_AFTER_IDLE_SECONDS",
    "SUPPORTED_URLS",
    "autocommit_engine",
    "begin_statement",
    "create_async_storage_engine",
    "create_storage_engine",
    "is_memory_sqlite",
    "normalize_url",
    "redacted_url",
    "refuse_engine_settings",
    "schema_name",
    "schema_translation",
]

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

SUPPORTED_URLS = (
    "sqlite:///path/to/file.db",
    "sqlite://  (in memory)",
    "postgresql+psycopg://user:password@host:port/database",
)
_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "sqlite+aiosqlite": "sqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}
_SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "secret", "token", "sslpassword")


def _supported() -> str:
    return "runstore supports SQLite and Postgres, with these URLs: " + ", ".join(SUPPORTED_URLS)


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and check it names a backend and driver runstore supports.

    Raises:
        InvalidInputError: the URL is malformed, names another database or driver, or
            needs a driver that is not installed (the message names the extra to install).
    """
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"not a database URL: {_supported()}") from exc
    drivername = _DRIVERS.get(parsed.drivername)
    if drivername is None and parsed.drivername.startswith(("postgresql+", "postgres+")):
        raise InvalidInputError(
            f"runstore talks to Postgres through psycopg 3: use a postgresql+psycopg:// "
            f"URL, not {parsed.drivername}:// ({_supported()})"
        )
    if drivername is None:
        raise InvalidInputError(f"{parsed.drivername}:// is not supported: {_supported()}")
    if drivername == "postgresql+psycopg":
        try:
            import psycopg  # noqa: F401 - to say what is missing, before SQLAlchemy does
        except ImportError as exc:
            message = 'Postgres needs psycopg 3: pip install "runstore[postgres]"'
            raise InvalidInputError(message) from exc
    return parsed.set(drivername=drivername)


def redacted_url(url: str | URL) -> str:
    """``url`` as runstore shows it in messages: every password and secret masked."""
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        return "<not a URL>"
    secrets = {key: "***" for key in _secret_query(parsed)}
    return parsed.update_query_dict(secrets).render_as_string(hide_password=True)


def _ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    """Pre-ping a pooled connection at checkout only if it sat idle ``idle_seconds``.

    A connection that was in use moments ago is alive; pinging it anyway would cost a
    round trip on every call. One that sat idle may have been closed by the server or a
    proxy: it is pinged, and replaced if dead. (Failures mid-use are caught too:
    SQLAlchemy invalidates the whole pool when a statement meets a dead connection.)
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_: object, entry: ConnectionPoolEntry) -> None:
        entry.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, entry: ConnectionPoolEntry, _: object) -> None:
        last_used = entry.info.get(_LAST_USED)
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


_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def schema_name(schema: str, url: URL) -> str:
    """``schema`` checked as a Postgres schema for runstore's tables on ``url``.

    Raises:
        InvalidInputError: the database is not Postgres, or the name is not a plain
            lower-case identifier of at most 63 characters (not ``pg_...``, which
            Postgres reserves).
    """
    if url.get_backend_name() != "postgresql":
        raise InvalidInputError(
            f"schema={schema!r} is a Postgres setting; a {url.get_backend_name()} database "
            f"has no schemas to put runstore's tables in (use another database file instead)"
        )
    if (
        not isinstance(schema, str)
        or not _SCHEMA_NAME.fullmatch(schema)
        or schema.startswith("pg_")
    ):
        raise InvalidInputError(
            f"schema={schema!r} is not a schema name runstore accepts: lower-case letters, "
            f"digits and underscores, starting with a letter or underscore, at most 63 "
            f"characters, and not starting with 'pg_'"
        )
    return schema


def _secret_query(url: URL) -> dict[str, Any]:
    """The query parameters of ``url`` that hold secrets (a password, a token...)."""
    return {
        key: value
        for key, value in url.query.items()
        if any(part in key.lower() for part in _SECRET_QUERY_KEYS)
    }


def _secrets_hidden(url: URL, connect_args: Mapping[str, Any]) -> tuple[URL, dict[str, Any]]:
    """A Postgres URL whose query holds secrets (``?password=...``), made into one that
    shows none: SQLAlchemy masks the URL's password field in every repr and str of the
    URL and the engine, but not the query. The password moves into that field (where the
    query's would have won over it); any other secret -- ``sslpassword`` -- goes to the
    driver as a connect argument instead, as the query would have."""
    secrets = _secret_query(url)
    if not secrets:
        return url, dict(connect_args)
    password = secrets.pop("password", None)
    hidden = url.difference_update_query([*secrets, "password"])
    if password is not None:  # given twice (?password=a&password=b), libpq takes the last
        hidden = hidden.set(password=password if isinstance(password, str) else password[-1])
    return hidden, {**secrets, **connect_args}


def schema_translation(schema: str | None) -> dict[str, Any]:
    """The execution options that put runstore's tables in ``schema`` in every statement
    (SQLAlchemy's ``schema_translate_map``: the tables are declared without a schema): no
    session's ``search_path`` is relied on, so a pooler that mixes sessions cannot mix
    tenants. None: the connection's default schema."""
    return {} if schema is None else {"schema_translate_map": {None: schema}}


def refuse_engine_settings(
    sqlite_pragmas: Mapping[str, str | None] | None, engine_options: Mapping[str, Any]
) -> None:
    """An engine a caller passes in is used as it is: the settings runstore gives the
    engines it builds are refused with it (``schema=`` is not an engine setting: every
    statement names it).

    Raises:
        InvalidInputError: settings were given.
    """
    if sqlite_pragmas is not None or engine_options:
        raise InvalidInputError("engine settings apply only to an engine built from a URL")


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    )


def create_storage_engine(
    url: str | URL,
    *,
    sqlite_pragmas: Mapping[str, str | None] | None = None,
    schema: str | None = None,
    **engine_options: Any,
) -> Engine:
    """Create an engine with runstore's settings (see the module docstring).

    Raises:
        InvalidInputError: the URL is not supported, ``isolation_level`` was given, or
            ``schema`` is not a valid schema name or the database is not Postgres.
    """
    return _configured(
        url,
        sqlite_pragmas,
        schema,
        engine_options,
        make=lambda parsed, options: sa.create_engine(parsed, **options),
        sync=lambda engine: engine,
    )


def create_async_storage_engine(
    url: str | URL,
    *,
    sqlite_pragmas: Mapping[str, str | None] | None = None,
    schema: str | None = None,
    **engine_options: Any,
) -> AsyncEngine:
    """:func:`create_storage_engine` for asyncio: the same settings, on psycopg 3's async
    connections for Postgres and on aiosqlite for SQLite.

    Raises:
        InvalidInputError: as :func:`create_storage_engine`, or aiosqlite is missing.
    """
    try:
        from sqlalchemy.ext.asyncio import create_async_engine  # needs greenlet
    except ImportError as exc:
        raise InvalidInputError(f"{_ASYNC_EXTRA}: {exc}") from exc
    return _configured(
        url,
        sqlite_pragmas,
        schema,
        engine_options,
        make=lambda parsed, options: create_async_engine(
            _async_url(parsed), **_async_pool(parsed, options)
        ),
        sync=lambda engine: engine.sync_engine,
    )


def _async_pool(parsed: URL, options: dict[str, Any]) -> dict[str, Any]:
    """A SQLite file gets a pool as Postgres does, whatever SQLAlchemy's default for
    aiosqlite (no pool, in older versions): writers then queue for connections, not by
    the hundred on the file's lock."""
    if parsed.get_backend_name() != "sqlite" or "poolclass" in options:
        return options
    return {**options, "poolclass": AsyncAdaptedQueuePool}


_ASYNC_EXTRA = 'runstore\'s asyncio adapter needs its extra: pip install "runstore[async]"'


def _async_url(parsed: URL) -> URL:
    if parsed.get_backend_name() != "sqlite":
        return parsed  # SQLAlchemy's psycopg dialect has an asyncio variant of its own
    try:
        import aiosqlite  # noqa: F401 - to say what is missing, before SQLAlchemy does
    except ImportError as exc:
        raise InvalidInputError(f"{_ASYNC_EXTRA} (aiosqlite is missing)") from exc
    return parsed.set(drivername="sqlite+aiosqlite")


_E = TypeVar("_E")

_POOL = {"pool_size": 10, "max_overflow": 0}
"""Connections opened stay open, and callers beyond ten wait for one (``pool_timeout``,
30 s). Not overflow connections: one is closed when it comes back, so steady traffic of
more callers than the pool holds would open a connection -- a Postgres backend -- a call."""


def _configured(
    url: str | URL,
    sqlite_pragmas: Mapping[str, str | None] | None,
    schema: str | None,
    engine_options: dict[str, Any],
    *,
    make: Callable[[URL, dict[str, Any]], _E],
    sync: Callable[[_E], Engine],
) -> _E:
    """An engine made by ``make`` from runstore's settings, its events set on the
    ``sync`` engine behind it."""
    parsed = normalize_url(url)
    if schema is not None:
        schema_name(schema, parsed)
    if "isolation_level" in engine_options:
        raise InvalidInputError(
            "isolation_level is not a setting of runstore's engines: runstore begins the "
            "transactions it needs itself"
        )
    if parsed.get_backend_name() == "postgresql":
        parsed, connect_args = _secrets_hidden(parsed, engine_options.get("connect_args", {}))
        options: dict[str, Any] = {
            "isolation_level": "AUTOCOMMIT",
            "pool_reset_on_return": None,  # nothing to reset: runstore ends what it begins
            **_POOL,
            "pool_recycle": 3600,
        }
        ping_after_idle = engine_options.pop("ping_after_idle", PING_AFTER_IDLE_SECONDS)
        if not engine_options.pop("prepared_statements", False):
            connect_args.setdefault("prepare_threshold", None)  # a pooler may stand between
        options.update(engine_options)
        options["connect_args"] = connect_args
        options["execution_options"] = {
            **engine_options.get("execution_options", {}),
            **schema_translation(schema),
        }
        made = make(parsed, options)
        if ping_after_idle is not None and not options.get("pool_pre_ping"):
            _ping_idle_connections(sync(made), ping_after_idle)
        return made

    memory = is_memory_sqlite(parsed)
    options = {
        "isolation_level": "AUTOCOMMIT",
        "pool_reset_on_return": None,
        "connect_args": {"check_same_thread": False},
    }
    if memory:
        options["poolclass"] = StaticPool
    else:
        options.update(_POOL)
    options.update(engine_options)
    made = make(parsed, options)

    pragmas = {**DEFAULT_SQLITE_PRAGMAS, **(sqlite_pragmas or {})}
    statements = [
        f"PRAGMA {name}={value}"
        for name, value in pragmas.items()
        if value is not None and not (memory and name in _FILE_ONLY_PRAGMAS)
    ]

    @event.listens_for(sync(made), "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.close()

    return made


def autocommit_engine(engine: _E, *, made_by_runstore: bool) -> _E:
    """``engine`` (an Engine or an AsyncEngine) with its connections in autocommit, as
    runstore uses them.

    Engines :func:`create_storage_engine` makes already are; any other engine gets the
    ``isolation_level="AUTOCOMMIT"`` execution option, which SQLAlchemy sets on each
    connection it hands out and resets when the connection comes back.
    """
    if made_by_runstore:
        return engine
    given: Any = engine
    autocommit: _E = given.execution_options(isolation_level="AUTOCOMMIT")
    return autocommit


_BEGIN: Mapping[tuple[str, Mode], str] = {
    ("sqlite", Mode.WRITE): "BEGIN IMMEDIATE",
    ("postgresql", Mode.WRITE): "BEGIN ISOLATION LEVEL READ COMMITTED",
    ("sqlite", Mode.SNAPSHOT): "BEGIN",
    ("postgresql", Mode.SNAPSHOT): "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
}


def begin_statement(dialect: str, mode: Mode) -> str | None:
    """The statement that begins a transaction of ``mode`` on an autocommit connection, if
    it takes one.

    :attr:`~Mode.WRITE`, several statements that write: on SQLite ``BEGIN IMMEDIATE``,
    which takes the write lock at once (waiting on the busy timeout), so two writers never
    deadlock upgrading a read lock; on Postgres READ COMMITTED, whatever the server's
    default, as runstore's locking assumes. :attr:`~Mode.SNAPSHOT`, several reads that must
    see one snapshot of the data: REPEATABLE READ on Postgres; on SQLite a read
    transaction, which holds one. The other modes (a statement on its own): None.
    """
    return _BEGIN.get((dialect, mode))
