"""The SQL adapter: SQLite and Postgres, every statement through SQLAlchemy Core.

The storage calls are defined once, as operations (:mod:`runstore.operations`) that yield
statements (:mod:`runstore.statements`); this adapter runs them on SQLAlchemy connections,
so engine events (``echo``, tracing, ``before_cursor_execute`` listeners) see every
statement and every column type's processors apply. The single exception is the row
stream of a Postgres batch, which uses ``COPY`` (:mod:`runstore.pgcopy`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy.engine import URL, Connection, CursorResult, Engine

from runstore.base import RunsStorage
from runstore.calls import Calls, Emit, Walk
from runstore.clock import Clock
from runstore.engine import (
    autocommit_engine,
    begin_snapshot,
    begin_write,
    create_storage_engine,
    is_memory_sqlite,
    normalize_url,
    redacted_url,
)
from runstore.errors import InvalidInputError, StorageClosedError, StorageError
from runstore.export import StoredRow
from runstore.migrations import check_tables, require_head, upgrade_to_head
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
from runstore.operations import Begin, Done, Mode, Plan, Step
from runstore.pgcopy import copy_plan
from runstore.sql_errors import connection_lost, step_error, translated_errors
from runstore.statements import CopyRows, Query

if TYPE_CHECKING:
    import psycopg

__all__ = ["SqlRunsStorage"]

_T = TypeVar("_T")


class SqlRunsStorage(RunsStorage):
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
        **engine_options: Any,
    ) -> None:
        super().__init__(clock=clock)
        if isinstance(url_or_engine, Engine):
            if sqlite_pragmas is not None or engine_options:
                raise InvalidInputError("engine settings apply only to an engine built from a URL")
            if schema is not None:
                raise InvalidInputError(
                    "schema= applies only to an engine runstore builds from a URL; for an "
                    "engine of your own, set the schema as the search_path in its connect "
                    "options (connect_args={'options': '-c search_path=...'})"
                )
            normalize_url(url_or_engine.url)
            engine = url_or_engine
            self._owns_engine = False
        else:
            engine = create_storage_engine(
                url_or_engine, sqlite_pragmas=sqlite_pragmas, schema=schema, **engine_options
            )
            self._owns_engine = True
        self._engine = engine
        self._shown_url = redacted_url(engine.url)
        self._schema = schema
        dialect = engine.dialect
        self._dialect = dialect.name
        self._copy = dialect.name == "postgresql"
        # A single statement is a transaction of its own (on Postgres, autocommit saves the
        # BEGIN and COMMIT round trips); several begin with a statement of their own.
        self._connections = autocommit_engine(engine, made_by_runstore=self._owns_engine)
        # An in-memory SQLite database is one connection: let one thread use it at a time.
        self._serial = threading.RLock() if is_memory_sqlite(engine.url) else None
        self._driver_error: type[Exception] = dialect.loaded_dbapi.Error
        self._calls = Calls(dialect.name, self._now, copy=self._copy)
        self._schema_checked = False
        self._closed = False

    @property
    def engine(self) -> Engine:
        """The engine in use (for inspection and engine events)."""
        return self._engine

    def __repr__(self) -> str:
        schema = f", schema={self._schema!r}" if self._schema is not None else ""
        return f"SqlRunsStorage({self._shown_url!r}{schema})"

    # -- lifecycle ---------------------------------------------------------------------

    def init(self) -> None:
        self._check_open()
        with self._serial or nullcontext(), translated_errors():
            upgrade_to_head(self._connections, self._schema)

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
        self._run(self._calls.vacuum())

    def close(self) -> None:
        if not self._closed and self._owns_engine:
            self._engine.dispose()
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageClosedError(f"{self!r} was closed")

    def _check_schema(self) -> None:
        """At first use: the schema is at head and has every column this version needs."""
        with translated_errors(), self._connections.connect() as connection:
            require_head(connection, repr(self))
            check_tables(connection, repr(self))
        self._schema_checked = True

    # -- running operations ------------------------------------------------------------

    def _run(self, plan: Plan[_T]) -> _T:
        """Run an operation's statements as its mode says; see :mod:`runstore.operations`.

        Written without context managers: it wraps every call, and theirs is a
        measurable part of a single-row call's cost.
        """
        self._check_open()
        steps = plan.steps
        try:
            step = next(steps)  # the operation's own checks run before any I/O
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        serial = self._serial
        if serial is not None:
            serial.acquire()
        try:
            if not self._schema_checked:
                self._check_schema()
            mode, retried = plan.mode, False
            while True:
                try:
                    outcome = self._transaction(mode, steps, step)
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
        finally:
            if serial is not None:
                serial.release()

    def _transaction(self, mode: Mode, steps: Any, step: Step) -> Done | Begin | StorageError:
        """Run steps from ``step`` in one transaction (or, for reads, on one connection)
        until the operation returns or begins anew -- then commit -- or a step fails: the
        transaction is rolled back and the error returned, for the operation to handle."""
        connection = self._connections.connect()
        try:
            if mode is Mode.WRITE:
                begin_write(connection)
            elif mode is Mode.SNAPSHOT:
                begin_snapshot(connection)
            while not isinstance(step, Begin):
                try:
                    result = self._execute(connection, step)
                except Exception as exc:
                    return self._translated(exc, step)
                try:
                    step = steps.send(result)
                except StopIteration as done:
                    if mode is Mode.WRITE:  # a single statement committed itself
                        connection.commit()
                    return Done(done.value)
            if mode is Mode.WRITE:
                connection.commit()
            return step
        finally:
            connection.close()  # rolls back whatever was not committed

    def _execute(self, connection: Connection, step: Query | CopyRows) -> CursorResult[Any] | None:
        if isinstance(step, Query):
            return connection.execute(step.statement, step.values)
        self._copy_rows(connection, step)
        return None

    def _copy_rows(self, connection: Connection, step: CopyRows) -> None:
        """Stream rows with Postgres' COPY on this transaction's driver connection."""
        plan = copy_plan(step.table, connection.dialect)
        copy_connection = cast("psycopg.Connection[Any]", connection.connection.driver_connection)
        try:
            with copy_connection.cursor() as cursor, cursor.copy(plan.sql) as copy:
                copy.set_types(plan.types)
                for row in plan.tuples(step.rows):
                    copy.write_row(row)
        except self._driver_error as exc:
            if connection.dialect.is_disconnect(exc, copy_connection, None):  # type: ignore[arg-type]
                # What SQLAlchemy does when a statement meets a dead connection: drop it,
                # and the pool's other connections with it.
                connection.invalidate(exc)
                self._engine.pool.dispose()
            raise

    def _translated(self, exc: Exception, step: Step | None) -> StorageError:
        return step_error(exc, step, self._driver_error)

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

    # -- runs --------------------------------------------------------------------------

    def create_run(
        self,
        input: CreateRunInput | Mapping[str, Any],
        *,
        if_exists: ExistingRun | str = ExistingRun.ERROR,
    ) -> Run:
        return self._run(self._calls.create_run(input, if_exists))

    def update_run(self, input: UpdateRunInput | Mapping[str, Any]) -> Run:
        return self._run(self._calls.update_run(input))

    def get_run_by_id(self, id: str) -> Run | None:
        return self._run(self._calls.get_run_by_id(id))

    def list_runs(self, input: ListRunsInput | Mapping[str, Any] | None = None) -> ListRunsOutput:
        return self._run(self._calls.list_runs(input))

    def iter_runs(self, *, batch_size: int = 1000, **filters: Any) -> Iterator[Run]:
        walk = self._calls.iter_runs(batch_size, filters)
        self._check_open()
        return self._walk(walk)

    def delete_run(self, id: str) -> None:
        self._run(self._calls.delete_run(id))

    def recount_run(self, run_id: str) -> Run:
        return self._run(self._calls.recount_run(run_id))

    def prune_runs(
        self,
        *,
        older_than: datetime,
        status: RunStatus | str | None = None,
        dataset_id: str | None = None,
        batch_size: int = 100,
    ) -> int:
        return self._run(self._calls.prune_runs(older_than, status, dataset_id, batch_size))

    # -- results -----------------------------------------------------------------------

    def add_result(
        self,
        input: AddRunResultInput | Mapping[str, Any],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> RunResult:
        return self._run(self._calls.add_result(input, update_counts, on_conflict))

    def add_results(
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
        return self._run(plan)

    def get_result_by_id(self, id: str) -> RunResult | None:
        return self._run(self._calls.get_result_by_id(id))

    def list_results(self, input: ListRunResultsInput | Mapping[str, Any]) -> ListRunResultsOutput:
        return self._run(self._calls.list_results(input))

    def iter_results(
        self,
        run_id: str,
        *,
        batch_size: int = 1000,
        has_error: bool | None = None,
        item_id: str | None = None,
        score: ScoreFilter | Mapping[str, Any] | None = None,
        order: ResultOrder | str = ResultOrder.EXECUTION,
    ) -> Iterator[RunResult]:
        walk = self._calls.iter_results(run_id, batch_size, has_error, item_id, score, order)
        self._check_open()
        return self._walk(walk)

    def _stored_rows(self, run_id: str, size: int) -> Iterator[Sequence[StoredRow]]:
        """The columnar path of exports: the stored values, selected as they are (see
        :func:`runstore.statements.result_rows_batch`), a keyset batch at a time."""
        self._check_open()
        return self._walk(self._calls.stored_rows(run_id, size))

    def delete_results_by_run_id(self, run_id: str) -> None:
        self._run(self._calls.delete_results_by_run_id(run_id))

    def dangerously_clear_all(self) -> None:
        self._run(self._calls.dangerously_clear_all())

    # -- scores ------------------------------------------------------------------------

    def add_scores(
        self, inputs: Iterable[AddScoreInput | Mapping[str, Any]], *, replace: bool = False
    ) -> list[Score]:
        plan = self._calls.add_scores(inputs, replace)
        if plan is None:
            self._check_open()
            return []
        return self._run(plan)

    def list_scores(
        self, run_id: str, *, result_id: str | None = None, name: str | None = None
    ) -> list[Score]:
        return self._run(self._calls.list_scores(run_id, result_id, name))

    def iter_scores(
        self,
        run_id: str,
        *,
        result_id: str | None = None,
        name: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Score]:
        walk = self._calls.iter_scores(run_id, result_id, name, batch_size)
        self._check_open()
        return self._walk(walk)

    # -- answers -----------------------------------------------------------------------

    def summarize_run(self, run_id: str) -> RunSummary:
        return self._run(self._calls.summarize_run(run_id))

    def compare_runs(self, baseline_run_id: str, candidate_run_id: str) -> RunComparison:
        return self._run(self._calls.compare_runs(baseline_run_id, candidate_run_id))

    def iter_item_comparisons(
        self,
        baseline_run_id: str,
        candidate_run_id: str,
        *,
        only: ComparisonKind | str | None = None,
        score: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[ItemComparison]:
        walk = self._calls.iter_item_comparisons(
            baseline_run_id, candidate_run_id, only, score, batch_size
        )
        self._check_open()
        return self._walk(walk)
