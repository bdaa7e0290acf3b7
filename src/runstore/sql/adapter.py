"""What the blocking and the asyncio SQL adapters share: their engine, their read replicas
and how they are shown, the database their operations see, and how a failed step's error
is translated. (How a plan runs is decided for both in :mod:`runstore.sql.running`.)"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Generic
from typing import TypeVar

from sqlalchemy.engine import URL

from runstore.clock import Clock
from runstore.clock import utc_now
from runstore.engine import autocommit_engine
from runstore.engine import is_memory_sqlite
from runstore.engine import normalize_url
from runstore.engine import redacted_url
from runstore.engine import refuse_engine_settings
from runstore.engine import schema_name
from runstore.engine import schema_translation
from runstore.errors import InvalidInputError
from runstore.errors import StorageError
from runstore.errors import storage_closed
from runstore.plans import Step
from runstore.sql.database import Database
from runstore.sql.errors import step_error
from runstore.sql.replicas import Replica
from runstore.sql.replicas import Replicas

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
        read_replicas: Sequence[str | URL | _Engine],
        max_replica_lag: float,
        replica_wait: float,
        engine_options: Mapping[str, Any],
    ) -> None:
        def connect(
            target: str | URL | _Engine, *, replica: bool = False
        ) -> tuple[_Engine, _Engine, bool]:
            """The engine for ``target``, its connections as runstore uses them, and
            whether runstore made (and so disposes of) it. Engine settings apply to the
            engines runstore makes: they are refused with the storage's own engine, not
            with a replica's."""
            if isinstance(target, str | URL) or not hasattr(target, "dialect"):
                made = create(  # anything but an engine is refused here, as not a URL
                    target, sqlite_pragmas=sqlite_pragmas, schema=schema, **engine_options
                )
                owned = True
            else:
                if not replica:
                    refuse_engine_settings(sqlite_pragmas, engine_options)
                made, owned = target, False
            # A single statement is a transaction of its own (on Postgres, autocommit saves
            # the BEGIN and COMMIT round trips); several begin with a statement of their
            # own. Every statement names the schema (an engine runstore made does so by
            # itself).
            connections: Any = autocommit_engine(made, made_by_runstore=owned)
            if not owned and schema is not None:
                connections = connections.execution_options(**schema_translation(schema))
            return made, connections, owned

        engine, self._connections, self._owns_engine = connect(url_or_engine)
        given: Any = engine
        url: URL = given.url
        normalize_url(url)
        if schema is not None:
            schema_name(schema, url)
        self._engine = engine
        self._schema = schema
        self._shown_url = redacted_url(url)
        self._replicas, self._replica_engines = self._connect_replicas(
            connect, read_replicas, given.dialect.name, max_replica_lag, replica_wait
        )
        dialect = given.dialect
        self._database = Database(dialect.name, clock or utc_now, self._replicas is not None)
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

    @staticmethod
    def _connect_replicas(
        connect: Callable[..., tuple[_Engine, _Engine, bool]],
        targets: Sequence[str | URL | _Engine],
        dialect: str,
        max_lag: float,
        wait: float,
    ) -> tuple[Replicas | None, list[tuple[_Engine, bool]]]:
        """The read replicas, and their engines with whether runstore owns each."""
        if isinstance(targets, str | URL) or not isinstance(targets, Sequence):
            raise InvalidInputError("read_replicas must be a list of URLs or engines")
        if not targets:
            return None, []
        if dialect != "postgresql":
            raise InvalidInputError("read replicas are for Postgres only")
        for name, value in (("max_replica_lag", max_lag), ("replica_wait", wait)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise InvalidInputError(f"{name} must be a number of seconds >= 0, not {value!r}")
        replicas: list[Replica] = []
        engines: list[tuple[_Engine, bool]] = []
        try:
            for target in targets:
                engine, connections, owned = connect(target, replica=True)
                engines.append((engine, owned))
                given: Any = engine
                if given.dialect.name != "postgresql":
                    raise InvalidInputError(
                        f"a read replica must be Postgres, not {redacted_url(given.url)}"
                    )
                replicas.append(Replica(connections, redacted_url(given.url)))
        except BaseException:
            for engine, owned in engines:  # nothing made here outlives a refusal
                if owned:
                    _dispose(engine)
            raise
        return Replicas(replicas, float(max_lag), float(wait)), engines

    @property
    def engine(self) -> _Engine:
        """The engine in use (for inspection and engine events)."""
        return self._engine

    def __repr__(self) -> str:
        schema = f", schema={self._schema!r}" if self._schema is not None else ""
        replicas = ""
        if self._replicas is not None:
            shown = [replica.shown for replica in self._replicas.replicas]
            replicas = f", read_replicas={shown!r}"
        return f"{type(self).__name__}({self._shown_url!r}{schema}{replicas})"

    def _check_open(self) -> None:
        if self._closed:
            raise storage_closed(repr(self))

    def _translated(self, exc: Exception, step: Step | None) -> StorageError:
        return step_error(exc, step, self._driver_error)


def _dispose(engine: Any) -> None:
    """Close the pool of an engine of either kind that no storage came to use: an
    ``AsyncEngine``'s pool holds no connection yet, so its blocking engine's ``dispose``
    releases it."""
    getattr(engine, "sync_engine", engine).dispose()
