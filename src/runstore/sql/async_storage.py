"""The asyncio SQL adapter: the blocking adapter's operations on asyncio connections.

It runs the same plans (:mod:`runstore.sql`) with the same decisions
(:func:`runstore.sql.running.conduct`) as :class:`~runstore.sql.SqlRunsStorage`, awaiting
SQLAlchemy's asyncio connections: psycopg 3's async connections for Postgres, aiosqlite
for SQLite. A call cancelled mid-way writes nothing and hands its connection back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar
from typing import cast

from sqlalchemy.engine import URL

from runstore import calls
from runstore.async_base import AsyncRunsStorage
from runstore.clock import Clock
from runstore.engine import begin_statement
from runstore.engine import create_async_storage_engine
from runstore.errors import StorageError
from runstore.migrations import check_schema
from runstore.migrations import upgrade_to_head
from runstore.plans import Begin
from runstore.plans import CopyRows
from runstore.plans import Done
from runstore.plans import Emit
from runstore.plans import Mode
from runstore.plans import Plan
from runstore.plans import Query
from runstore.plans import Step
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
    from sqlalchemy.ext.asyncio import AsyncConnection
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["AsyncSqlRunsStorage"]

_T = TypeVar("_T")


class AsyncSqlRunsStorage(SqlAdapter["AsyncEngine"], AsyncRunsStorage):
    """Runs and results in SQLite or Postgres, for asyncio programs.

    Args:
        url_or_engine: a database URL, as for :class:`~runstore.sql.SqlRunsStorage`
            (``sqlite:///`` and ``sqlite+aiosqlite:///`` both mean aiosqlite;
            ``postgresql+psycopg://`` means psycopg 3's async connections), for which
            runstore makes and owns an engine with the blocking adapter's settings; or
            an :class:`~sqlalchemy.ext.asyncio.AsyncEngine` of your own, used as it is.
        sqlite_pragmas, clock, schema, engine_options: as for
            :class:`~runstore.sql.SqlRunsStorage`.

    ``async with AsyncSqlRunsStorage(url) as storage:`` calls :meth:`init` and, at the
    end, :meth:`close`.

    Raises:
        InvalidInputError: as :class:`~runstore.sql.SqlRunsStorage`, or the ``async``
            extra is not installed.
    """

    def __init__(
        self,
        url_or_engine: str | URL | AsyncEngine,
        *,
        sqlite_pragmas: Mapping[str, str | None] | None = None,
        clock: Clock | None = None,
        schema: str | None = None,
        read_replicas: Sequence[str | URL | AsyncEngine] = (),
        max_replica_lag: float = 5.0,
        replica_wait: float = 0.25,
        **engine_options: Any,
    ) -> None:
        super().__init__(
            url_or_engine,
            create=create_async_storage_engine,
            sqlite_pragmas=sqlite_pragmas,
            clock=clock,
            schema=schema,
            read_replicas=read_replicas,
            max_replica_lag=max_replica_lag,
            replica_wait=replica_wait,
            engine_options=engine_options,
        )
        self._serial = asyncio.Lock() if self._one_connection else None
        self._write_lock = asyncio.Lock() if self._writes_queue else None

    # -- lifecycle ---------------------------------------------------------------------

    async def init(self) -> None:
        self._check_open()
        async with self._serial or nullcontext():
            with translated_errors():
                async with self._connections.connect() as connection:
                    await connection.run_sync(upgrade_to_head, self._schema)

    async def vacuum(self) -> None:
        """As :meth:`runstore.sql.SqlRunsStorage.vacuum`."""
        await self._run(vacuum(self._database))

    async def close(self) -> None:
        if not self._closed:
            for engine, owned in [(self._engine, self._owns_engine), *self._replica_engines]:
                if owned:
                    await engine.dispose()
        self._closed = True

    async def _check_schema(self) -> None:
        where = repr(self)
        with translated_errors():
            async with self._connections.connect() as connection:
                await connection.run_sync(check_schema, where)
        self._schema_checked = True

    # -- the contract's hooks ----------------------------------------------------------

    async def _perform(self, call: calls.Call[_T]) -> _T:
        return await self._run(plan_of(call, self._database))

    def _stream(self, call: calls.Stream[_T]) -> AsyncIterator[_T]:
        walk = walk_of(call, self._database)
        self._check_open()
        return self._walk(walk)

    # -- running plans -----------------------------------------------------------------

    async def _run(self, plan: Plan[_T]) -> _T:
        """Run an operation's plan as the blocking adapter does."""
        self._check_open()
        step = proceed(plan.steps, None)  # the operation's own checks run before any I/O
        if isinstance(step, Done):
            return step.value
        if self._serial is None:
            return await self._conduct(plan, step)
        async with self._serial:
            return await self._conduct(plan, step)

    async def _conduct(self, plan: Plan[_T], step: Step) -> _T:
        if not self._schema_checked:
            await self._check_schema()
        conductor = conduct(plan, step, self._replicas)
        try:
            request = next(conductor)
            while True:
                if isinstance(request, Pause):
                    await asyncio.sleep(request.seconds)
                    request = conductor.send(None)
                    continue
                lock = self._write_lock if writes(request.mode) else None
                try:
                    if lock is None:
                        outcome = await self._transaction(request)
                    else:
                        async with lock:
                            outcome = await self._transaction(request)
                except StorageError:
                    raise
                except Exception as exc:  # connecting, beginning, committing
                    request = conductor.throw(self._translated(exc, None))
                    continue
                request = conductor.send(outcome)
        except StopIteration as done:
            value: _T = done.value
            return value

    async def _transaction(self, request: Transaction) -> Outcome:
        server = self._connections if request.server is None else request.server
        connection = await server.connect()
        mode, steps, step = request.mode, request.steps, request.step
        try:
            begin = begin_statement(self._database.dialect, mode)
            if begin is not None:
                await connection.exec_driver_sql(begin)
            outcome: Outcome
            while True:
                if isinstance(step, Begin):
                    outcome = step
                    break
                try:
                    if isinstance(step, Query):
                        reply = await connection.execute(step.statement, step.values)
                    else:
                        await self._copy_rows(connection, step)
                        reply = None
                except Exception as exc:
                    outcome = self._translated(exc, step)
                    break
                following = proceed(steps, reply)
                if isinstance(following, Done):
                    outcome = following
                    break
                step = following
            committing = commits(mode, outcome)
            if committing:
                await connection.commit()
        except BaseException:
            await _close_shielded(connection)
            raise
        if committing or mode is Mode.READ or mode is Mode.WRITE_ONE:
            await connection.close()  # nothing to roll back: closing does not wait
        else:
            await _close_shielded(connection)
        return outcome

    async def _copy_rows(self, connection: AsyncConnection, step: CopyRows) -> None:
        """Stream rows with Postgres' COPY on this transaction's driver connection."""
        plan = copy_plan(step.table, connection.dialect, self._schema)
        raw = await connection.get_raw_connection()
        driver = cast("psycopg.AsyncConnection[Any]", raw.driver_connection)
        try:
            async with driver.cursor() as cursor, cursor.copy(plan.sql) as copy:
                copy.set_types(plan.types)
                for row in plan.tuples(step.rows):
                    await copy.write_row(row)
        except self._driver_error as exc:
            if lost_in_copy(exc, connection.dialect, driver):
                await connection.invalidate(exc)
                await self._engine.dispose()
            raise

    async def _walk(self, walk: Walk[_T]) -> AsyncIterator[_T]:
        """A streaming call: each plan it yields run on its own, its items handed on."""
        try:
            request = next(walk)
            while True:
                if isinstance(request, Emit):
                    for item in request.items:
                        yield item
                    request = next(walk)
                else:
                    request = walk.send(await self._run(request))
        except StopIteration:
            return


async def _close_shielded(connection: AsyncConnection) -> None:
    """Close ``connection``, rolling back what it has not committed. Shielded: a call
    cancelled now still hands its connection back, clean, before the cancellation goes
    on. (A shield costs the event loop three turns, so a connection with nothing to roll
    back is closed without one.)"""
    await asyncio.shield(connection.close())
