"""The blocking SQL adapter: SQLite and Postgres, every statement through SQLAlchemy.

It runs the operations of :mod:`runstore.sql` (statements planned once, for both
adapters) on blocking SQLAlchemy connections, as the plans' modes say
(:mod:`runstore.plans`), so engine events (``echo``, tracing, ``before_cursor_execute``
listeners) see every statement and every column type's processors apply. The single
exception is the row stream of a Postgres batch, which uses ``COPY``
(:mod:`runstore.sql.copy`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar
from typing import cast

from sqlalchemy.engine import URL
from sqlalchemy.engine import Connection
from sqlalchemy.engine import CursorResult
from sqlalchemy.engine import Engine

from runstore import calls
from runstore.base import RunsStorage
from runstore.clock import Clock
from runstore.engine import begin_statement
from runstore.engine import create_storage_engine
from runstore.errors import StorageError
from runstore.migrations import check_schema
from runstore.migrations import upgrade_to_head
from runstore.plans import AnyQuery
from runstore.plans import Begin
from runstore.plans import CopyRows
from runstore.plans import Done
from runstore.plans import Emit
from runstore.plans import Plan
from runstore.plans import Query
from runstore.plans import Walk
from runstore.plans import commits
from runstore.plans import proceed
from runstore.plans import writes
from runstore.sql.adapter import SqlAdapter
from runstore.sql.copy import copy_plan
from runstore.sql.copy import lost_in_copy
from runstore.sql.dispatch import plan_of
from runstore.sql.dispatch import walk_of
from runstore.sql.errors import translated_errors
from runstore.sql.replicas import Pause
from runstore.sql.running import Outcome
from runstore.sql.running import Transaction
from runstore.sql.running import conduct
from runstore.sql.runs import vacuum

if TYPE_CHECKING:
    import psycopg

__all__ = ["SqlRunsStorage"]

_T = TypeVar("_T")


class SqlRunsStorage(SqlAdapter[Engine], RunsStorage):
    """Runs and results in SQLite or Postgres.

    Args:
        url_or_engine: a database URL -- ``sqlite:///path.db``, ``sqlite://`` for memory,
            ``postgresql+psycopg://user@host/db`` (``postgresql://`` and ``postgres://``
            mean psycopg 3 too) -- for which runstore makes and owns an engine with the
            settings in :mod:`runstore.engine`; or an existing
            :class:`~sqlalchemy.engine.Engine` on one of those drivers, used as it is and
            never disposed.
        sqlite_pragmas: changes to runstore's SQLite pragmas (``None`` drops one).
        clock: where ``created_at``/``updated_at`` come from (see
            :class:`~runstore.base.RunsStorage`).
        schema: Postgres only: the schema that holds runstore's tables, indexes and
            version table (created by :meth:`init` if missing). Every session of the
            engine searches that schema alone, so storages in different schemas of one
            database are fully apart, and the tables an application keeps elsewhere are
            never seen. Needs a URL (for an engine of your own, set ``search_path`` in its
            connect options instead); the same schema goes to Alembic as
            ``-x schema=...``.
        engine_options: keyword arguments for :func:`sqlalchemy.create_engine` (and
            ``ping_after_idle`` for Postgres; see :mod:`runstore.engine`).

    Call :meth:`init` once to create or upgrade the schema (idempotent; safe to call from
    several processes at once). Using a database whose schema is not at this version's
    head raises :class:`~runstore.errors.SchemaOutOfDateError`.

    Raises:
        InvalidInputError: the URL is malformed or not supported, its driver is not
            installed, engine settings or a schema were given with an engine, or
            ``schema`` is not a valid name or was given for SQLite.
    """

    def __init__(
        self,
        url_or_engine: str | URL | Engine,
        *,
        sqlite_pragmas: Mapping[str, str | None] | None = None,
        clock: Clock | None = None,
        schema: str | None = None,
        read_replicas: Sequence[str | URL | Engine] = (),
        max_replica_lag: float = 5.0,
        replica_wait: float = 0.25,
        **engine_options: Any,
    ) -> None:
        super().__init__(
            url_or_engine,
            create=create_storage_engine,
            sqlite_pragmas=sqlite_pragmas,
            clock=clock,
            schema=schema,
            read_replicas=read_replicas,
            max_replica_lag=max_replica_lag,
            replica_wait=replica_wait,
            engine_options=engine_options,
        )
        self._serial = threading.RLock() if self._one_connection else None
        self._write_lock = threading.Lock() if self._writes_queue else None

    # -- lifecycle ---------------------------------------------------------------------

    def init(self) -> None:
        self._check_open()
        with (
            self._serial or nullcontext(),
            translated_errors(),
            self._connections.connect() as connection,
        ):
            upgrade_to_head(connection, self._schema)

    def vacuum(self) -> None:
        """Give the space that deleted runs and results left back.

        SQLite keeps the pages of deleted rows in the file and reuses them for new rows;
        ``VACUUM`` rebuilds the file without them, and a checkpoint of the write-ahead log
        then shrinks the file at once. It needs free disk space of about the database's
        size, and holds the whole database while it runs (other writers and readers
        wait). Postgres reclaims space by itself (autovacuum); this
        runs ``VACUUM (ANALYZE)`` on runstore's tables now, to make the space reusable
        and the planner's statistics fresh after a large prune.
        """
        self._run(vacuum(self._database))

    def close(self) -> None:
        if not self._closed:
            for engine, owned in [(self._engine, self._owns_engine), *self._replica_engines]:
                if owned:
                    engine.dispose()
        self._closed = True

    def _check_schema(self) -> None:
        """At first use: the schema is at head and has every column this version needs."""
        with translated_errors(), self._connections.connect() as connection:
            check_schema(connection, repr(self))
        self._schema_checked = True

    # -- the contract's hooks ----------------------------------------------------------

    def _perform(self, call: calls.Call[_T]) -> _T:
        return self._run(plan_of(call, self._database))

    def _stream(self, call: calls.Stream[_T]) -> Iterator[_T]:
        walk = walk_of(call, self._database)
        self._check_open()
        return self._walk(walk)

    # -- running plans -----------------------------------------------------------------

    def _run(self, plan: Plan[_T]) -> _T:
        """Run an operation's plan: its transactions where and as often as
        :func:`~runstore.sql.running.conduct` decides.

        Written without context managers: it wraps every call, and theirs is a
        measurable part of a single-row call's cost.
        """
        self._check_open()
        step = proceed(plan.steps, None)  # the operation's own checks run before any I/O
        if isinstance(step, Done):
            return step.value
        serial = self._serial
        if serial is not None:
            serial.acquire()
        try:
            if not self._schema_checked:
                self._check_schema()
            conductor = conduct(plan, step, self._replicas)
            request = next(conductor)
            while True:
                if isinstance(request, Pause):
                    time.sleep(request.seconds)
                    request = conductor.send(None)
                    continue
                lock = self._write_lock if writes(request.mode) else None
                if lock is not None:
                    lock.acquire()
                try:
                    outcome = self._transaction(request)
                except StorageError:
                    raise
                except Exception as exc:  # connecting, beginning, committing
                    request = conductor.throw(self._translated(exc, None))
                    continue
                finally:
                    if lock is not None:
                        lock.release()
                request = conductor.send(outcome)
        except StopIteration as done:
            value: _T = done.value
            return value
        finally:
            if serial is not None:
                serial.release()

    def _transaction(self, request: Transaction) -> Outcome:
        """Run steps from ``request.step`` in one transaction (or, for reads, on one
        connection) until the operation returns or begins anew -- then commit -- or a step
        fails: the transaction is rolled back and the error returned, for the operation to
        handle."""
        server = self._connections if request.server is None else request.server
        connection = server.connect()
        try:
            mode, steps, step = request.mode, request.steps, request.step
            begin = begin_statement(self._database.dialect, mode)
            if begin is not None:
                connection.exec_driver_sql(begin)
            outcome: Outcome
            while True:
                if isinstance(step, Begin):
                    outcome = step
                    break
                try:
                    reply = self._execute(connection, step)
                except Exception as exc:
                    outcome = self._translated(exc, step)
                    break
                following = proceed(steps, reply)
                if isinstance(following, Done):
                    outcome = following
                    break
                step = following
            if commits(mode, outcome):
                connection.commit()
            return outcome
        finally:
            connection.close()  # rolls back whatever was not committed

    def _execute(
        self, connection: Connection, step: AnyQuery | CopyRows
    ) -> CursorResult[Any] | None:
        if isinstance(step, Query):
            return connection.execute(step.statement, step.values)
        self._copy_rows(connection, step)
        return None

    def _copy_rows(self, connection: Connection, step: CopyRows) -> None:
        """Stream rows with Postgres' COPY on this transaction's driver connection."""
        plan = copy_plan(step.table, connection.dialect, self._schema)
        driver = cast("psycopg.Connection[Any]", connection.connection.driver_connection)
        try:
            with driver.cursor() as cursor, cursor.copy(plan.sql) as copy:
                copy.set_types(plan.types)
                for row in plan.tuples(step.rows):
                    copy.write_row(row)
        except self._driver_error as exc:
            if lost_in_copy(exc, connection.dialect, driver):
                connection.invalidate(exc)
                self._engine.dispose()
            raise

    def _walk(self, walk: Walk[_T]) -> Iterator[_T]:
        """A streaming call: each plan it yields run on its own, its items handed on."""
        try:
            request = next(walk)
            while True:
                if isinstance(request, Emit):
                    yield from request.items
                    request = next(walk)
                else:
                    request = walk.send(self._run(request))
        except StopIteration:
            return
