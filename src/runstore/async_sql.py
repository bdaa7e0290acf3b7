"""The asyncio SQL adapter: the blocking adapter's calls on SQLAlchemy's asyncio engine.

Postgres through psycopg 3's async connections, SQLite through aiosqlite
(``pip install "runstore[async]"``). The calls are the blocking adapter's -- their
arguments checked and turned into plans by :mod:`runstore.calls`, their statements from
:mod:`runstore.statements` -- run here on :class:`~sqlalchemy.ext.asyncio.AsyncConnection`;
engine events (on ``engine.sync_engine``) see every statement but the rows of a Postgres
batch, which stream with ``COPY`` as in the blocking adapter.

A call cancelled while it runs (``task.cancel()``, ``asyncio.timeout``) ends its
transaction unwritten: the connection is closed -- which rolls back -- even while the
cancellation unwinds, and goes back to the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy.engine import URL, Connection

from runstore.async_base import AsyncRunsStorage
from runstore.calls import Calls, Emit, Walk
from runstore.clock import Clock, utc_now
from runstore.engine import (
    begin_statement,
    create_async_storage_engine,
    is_memory_sqlite,
    normalize_url,
    redacted_url,
)
from runstore.errors import InvalidInputError, StorageClosedError, StorageError
from runstore.export import StoredRow
from runstore.migrations import check_tables, require_head, upgrade_connection_to_head
from runstore.models import (
    AddRunResultInput,
    AddScoreInput,
    ComparisonKind,
    CreateRunInput,
    ExistingRun,
    ItemComparison,
    ListRunResultsInput,
    ListRunResultsOutput,
    ListRunsInput,
    ListRunsOutput,
    OnConflict,
    ResultOrder,
    Run,
    RunComparison,
    RunResult,
    RunStatus,
    RunSummary,
    Score,
    ScoreFilter,
    UpdateRunInput,
)
from runstore.operations import Begin, Done, Mode, Plan, Step, Steps
from runstore.pgcopy import copy_plan
from runstore.sql_errors import connection_lost, step_error, translated_errors
from runstore.statements import CopyRows, Query

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["AsyncSqlRunsStorage"]

_T = TypeVar("_T")


class AsyncSqlRunsStorage(AsyncRunsStorage):
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
        **engine_options: Any,
    ) -> None:
        self._clock: Clock = clock or utc_now
        if isinstance(url_or_engine, str | URL):
            engine = create_async_storage_engine(
                url_or_engine, sqlite_pragmas=sqlite_pragmas, schema=schema, **engine_options
            )
            self._owns_engine = True
        else:
            if sqlite_pragmas is not None or engine_options or schema is not None:
                raise InvalidInputError("engine settings apply only to an engine built from a URL")
            normalize_url(url_or_engine.url)
            engine = url_or_engine.execution_options(isolation_level="AUTOCOMMIT")
            self._owns_engine = False
        self._engine = engine
        self._schema = schema
        self._shown_url = redacted_url(engine.url)
        dialect = engine.dialect
        self._dialect = dialect.name
        self._driver_error: type[Exception] = dialect.loaded_dbapi.Error
        self._calls = Calls(dialect.name, self._clock, copy=dialect.name == "postgresql")
        # An in-memory SQLite database is one connection: one task at a time uses it.
        self._serial = asyncio.Lock() if is_memory_sqlite(engine.url) else None
        self._schema_checked = False
        self._closed = False

    @property
    def engine(self) -> AsyncEngine:
        """The engine in use (its ``sync_engine`` takes engine events)."""
        return self._engine

    def __repr__(self) -> str:
        schema = f", schema={self._schema!r}" if self._schema is not None else ""
        return f"AsyncSqlRunsStorage({self._shown_url!r}{schema})"

    # -- lifecycle ---------------------------------------------------------------------

    async def init(self) -> None:
        self._check_open()
        async with self._one_at_a_time():
            with translated_errors():
                async with self._engine.connect() as connection:
                    await connection.run_sync(upgrade_connection_to_head, self._schema)

    async def vacuum(self) -> None:
        """As :meth:`runstore.sql.SqlRunsStorage.vacuum`."""
        await self._run(self._calls.vacuum())

    async def close(self) -> None:
        if not self._closed and self._owns_engine:
            await self._engine.dispose()
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageClosedError(f"{self!r} was closed")

    def _one_at_a_time(self) -> asyncio.Lock | _NoLock:
        return self._serial if self._serial is not None else _NO_LOCK

    async def _check_schema(self) -> None:
        where = repr(self)

        def check(connection: Connection) -> None:
            require_head(connection, where)
            check_tables(connection, where)

        with translated_errors():
            async with self._engine.connect() as connection:
                await connection.run_sync(check)
        self._schema_checked = True

    # -- running operations ------------------------------------------------------------

    async def _run(self, plan: Plan[_T]) -> _T:
        """Run an operation's statements as its mode says (as the blocking adapter does)."""
        self._check_open()
        steps = plan.steps
        try:
            step = next(steps)  # the operation's own checks run before any I/O
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        if self._serial is None:
            return await self._steps(plan.mode, steps, step)
        async with self._serial:
            return await self._steps(plan.mode, steps, step)

    async def _steps(self, mode: Mode, steps: Steps[_T], step: Step) -> _T:
        if not self._schema_checked:
            await self._check_schema()
        retried = False
        while True:
            try:
                outcome = await self._transaction(mode, steps, step)
            except StorageError:
                raise
            except Exception as exc:  # connecting, beginning, committing
                raise self._translated(exc, None) from exc
            try:
                if isinstance(outcome, Done):
                    return outcome.value  # type: ignore[no-any-return]
                if isinstance(outcome, Begin):  # the next steps, in a new transaction
                    mode, retried = outcome.mode, False
                    step = steps.send(None)
                elif mode is Mode.READ and connection_lost(outcome) and not retried:
                    retried = True  # the pool was reset: once more, on a fresh connection
                else:
                    step = steps.throw(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def _transaction(self, mode: Mode, steps: Any, step: Step) -> Done | Begin | StorageError:
        connection = await self._engine.connect()
        try:
            if mode is Mode.WRITE or mode is Mode.SNAPSHOT:
                await connection.exec_driver_sql(begin_statement(self._dialect, mode.value))
            outcome: Done | Begin | StorageError
            while True:
                if isinstance(step, Begin):
                    outcome = step
                    break
                try:
                    if isinstance(step, Query):
                        result = await connection.execute(step.statement, step.values)
                    else:
                        await self._copy_rows(connection, step)
                        result = None
                except Exception as exc:
                    outcome = self._translated(exc, step)
                    break
                try:
                    step = steps.send(result)
                except StopIteration as done:
                    outcome = Done(done.value)
                    break
            committing = mode is Mode.WRITE and not isinstance(outcome, StorageError)
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
        plan = copy_plan(step.table, connection.dialect)
        raw = await connection.get_raw_connection()
        driver = cast("psycopg.AsyncConnection[Any]", raw.driver_connection)
        async with driver.cursor() as cursor, cursor.copy(plan.sql) as copy:
            copy.set_types(plan.types)
            for row in plan.tuples(step.rows):
                await copy.write_row(row)

    def _translated(self, exc: Exception, step: Step | None) -> StorageError:
        return step_error(exc, step, self._driver_error)

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

    # -- runs --------------------------------------------------------------------------

    async def create_run(
        self,
        input: CreateRunInput | Mapping[str, Any],
        *,
        if_exists: ExistingRun | str = ExistingRun.ERROR,
    ) -> Run:
        return await self._run(self._calls.create_run(input, if_exists))

    async def update_run(self, input: UpdateRunInput | Mapping[str, Any]) -> Run:
        return await self._run(self._calls.update_run(input))

    async def get_run_by_id(self, id: str) -> Run | None:
        return await self._run(self._calls.get_run_by_id(id))

    async def list_runs(
        self, input: ListRunsInput | Mapping[str, Any] | None = None
    ) -> ListRunsOutput:
        return await self._run(self._calls.list_runs(input))

    def iter_runs(self, *, batch_size: int = 1000, **filters: Any) -> AsyncIterator[Run]:
        walk = self._calls.iter_runs(batch_size, filters)
        self._check_open()
        return self._walk(walk)

    async def delete_run(self, id: str) -> None:
        await self._run(self._calls.delete_run(id))

    async def recount_run(self, run_id: str) -> Run:
        return await self._run(self._calls.recount_run(run_id))

    async def prune_runs(
        self,
        *,
        older_than: datetime,
        status: RunStatus | str | None = None,
        dataset_id: str | None = None,
        batch_size: int = 100,
    ) -> int:
        return await self._run(self._calls.prune_runs(older_than, status, dataset_id, batch_size))

    # -- results -----------------------------------------------------------------------

    async def add_result(
        self,
        input: AddRunResultInput | Mapping[str, Any],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> RunResult:
        return await self._run(self._calls.add_result(input, update_counts, on_conflict))

    async def add_results(
        self,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> list[RunResult]:
        plan = self._calls.add_results(inputs, update_counts, on_conflict)
        if plan is None:
            self._check_open()
            return []
        return await self._run(plan)

    async def get_result_by_id(self, id: str) -> RunResult | None:
        return await self._run(self._calls.get_result_by_id(id))

    async def list_results(
        self, input: ListRunResultsInput | Mapping[str, Any]
    ) -> ListRunResultsOutput:
        return await self._run(self._calls.list_results(input))

    def iter_results(
        self,
        run_id: str,
        *,
        batch_size: int = 1000,
        has_error: bool | None = None,
        item_id: str | None = None,
        score: ScoreFilter | Mapping[str, Any] | None = None,
        order: ResultOrder | str = ResultOrder.EXECUTION,
    ) -> AsyncIterator[RunResult]:
        walk = self._calls.iter_results(run_id, batch_size, has_error, item_id, score, order)
        self._check_open()
        return self._walk(walk)

    def _stored_rows(self, run_id: str, size: int) -> AsyncIterator[Sequence[StoredRow]]:
        """The columnar path of :meth:`runstore.sql.SqlRunsStorage._stored_rows`."""
        self._check_open()
        return self._walk(self._calls.stored_rows(run_id, size))

    async def delete_results_by_run_id(self, run_id: str) -> None:
        await self._run(self._calls.delete_results_by_run_id(run_id))

    async def dangerously_clear_all(self) -> None:
        await self._run(self._calls.dangerously_clear_all())

    # -- scores ------------------------------------------------------------------------

    async def add_scores(
        self, inputs: Iterable[AddScoreInput | Mapping[str, Any]], *, replace: bool = False
    ) -> list[Score]:
        plan = self._calls.add_scores(inputs, replace)
        if plan is None:
            self._check_open()
            return []
        return await self._run(plan)

    async def list_scores(
        self, run_id: str, *, result_id: str | None = None, name: str | None = None
    ) -> list[Score]:
        return await self._run(self._calls.list_scores(run_id, result_id, name))

    def iter_scores(
        self,
        run_id: str,
        *,
        result_id: str | None = None,
        name: str | None = None,
        batch_size: int = 1000,
    ) -> AsyncIterator[Score]:
        walk = self._calls.iter_scores(run_id, result_id, name, batch_size)
        self._check_open()
        return self._walk(walk)

    # -- answers -----------------------------------------------------------------------

    async def summarize_run(self, run_id: str) -> RunSummary:
        return await self._run(self._calls.summarize_run(run_id))

    async def compare_runs(self, baseline_run_id: str, candidate_run_id: str) -> RunComparison:
        return await self._run(self._calls.compare_runs(baseline_run_id, candidate_run_id))

    def iter_item_comparisons(
        self,
        baseline_run_id: str,
        candidate_run_id: str,
        *,
        only: ComparisonKind | str | None = None,
        score: str | None = None,
        batch_size: int = 1000,
    ) -> AsyncIterator[ItemComparison]:
        walk = self._calls.iter_item_comparisons(
            baseline_run_id, candidate_run_id, only, score, batch_size
        )
        self._check_open()
        return self._walk(walk)


async def _close_shielded(connection: AsyncConnection) -> None:
    """Close ``connection``, rolling back what it has not committed. Shielded: a call
    cancelled now still hands its connection back, clean, before the cancellation goes
    on. (A shield costs the event loop three turns, so a connection with nothing to roll
    back is closed without one.)"""
    await asyncio.shield(connection.close())


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        return None


_NO_LOCK = _NoLock()
