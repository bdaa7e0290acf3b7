"""What the blocking and the asyncio SQL adapters share: their engine and how it is
shown, the database their operations see, how a failed step's error is translated, and
the decisions of running a plan (:func:`runstore.plans.next_move`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import URL

from runstore.clock import Clock, utc_now
from runstore.engine import (
    autocommit_engine,
    is_memory_sqlite,
    normalize_url,
    redacted_url,
    refuse_engine_settings,
)
from runstore.errors import StorageClosedError, StorageError
from runstore.plans import Step
from runstore.sql.database import Database
from runstore.sql.errors import step_error

__all__ = ["SqlAdapter"]

_Engine = TypeVar("_Engine")


class SqlAdapter(Generic[_Engine]):
    """The state of a SQL adapter, of either kind (an ``Engine`` or an ``AsyncEngine``)."""

    def __init__(
        self,
        url_or_engine: str | URL | _Engine,
        *,
        create: Callable[..., _Engine],
        sqlite_pragmas: Mapping[str, str | None] | None,
        clock: Clock | None,
        schema: str | None,
        engine_options: Mapping[str, Any],
    ) -> None:
        if isinstance(url_or_engine, str | URL) or not hasattr(url_or_engine, "dialect"):
            engine = create(  # anything but an engine is refused here, as not a URL
                url_or_engine, sqlite_pragmas=sqlite_pragmas, schema=schema, **engine_options
            )
            self._owns_engine = True
        else:
            refuse_engine_settings(sqlite_pragmas, schema, engine_options)
            engine = url_or_engine
            self._owns_engine = False
        given: Any = engine
        url: URL = given.url
        normalize_url(url)
        self._engine = engine
        # A single statement is a transaction of its own (on Postgres, autocommit saves the
        # BEGIN and COMMIT round trips); several begin with a statement of their own.
        self._connections = autocommit_engine(engine, made_by_runstore=self._owns_engine)
        self._schema = schema
        self._shown_url = redacted_url(url)
        dialect = given.dialect
        self._database = Database(dialect.name, clock or utc_now)
        self._driver_error: type[Exception] = dialect.loaded_dbapi.Error
        self._one_connection = is_memory_sqlite(url)
        """An in-memory SQLite database is one connection, used by one caller at a time."""
        self._writes_queue = dialect.name == "sqlite" and not self._one_connection
        """A SQLite file has one writer at a time: this storage's writers queue for it in
        order (:func:`runstore.plans.writes`), where SQLite's busy handler would have them
        sleep and poll for its lock -- unfairly, and slower, the more there are. Writers
        in other processes still wait on the busy timeout."""
        self._schema_checked = False
        self._closed = False

    @property
    def engine(self) -> _Engine:
        """The engine in use (for inspection and engine events)."""
        return self._engine

    def __repr__(self) -> str:
        schema = f", schema={self._schema!r}" if self._schema is not None else ""
        return f"{type(self).__name__}({self._shown_url!r}{schema})"

    def _check_open(self) -> None:
        if self._closed:
            raise StorageClosedError(f"{self!r} was closed")

    def _translated(self, exc: Exception, step: Step | None) -> StorageError:
        return step_error(exc, step, self._driver_error)
