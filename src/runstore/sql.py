"""The SQL adapter: SQLite and Postgres, every statement through SQLAlchemy Core.

The storage calls are defined once, as operations (:mod:`runstore.operations`) that yield
statements (:mod:`runstore.statements`); this adapter runs them on SQLAlchemy connections,
so engine events (``echo``, tracing, ``before_cursor_execute`` listeners) see every
statement and every column type's processors apply. The single exception is the row
stream of a Postgres batch, which uses ``COPY`` (:mod:`runstore.pgcopy`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy.engine import URL, Connection, CursorResult, Engine

from runstore import operations
from runstore.arguments import (
    batch_argument,
    choice_argument,
    comparison_argument,
    flag_argument,
    id_argument,
    instant_argument,
    model_argument,
    scores_argument,
    size_argument,
)
from runstore.base import RunsStorage
from runstore.clock import Clock
from runstore.cursors import Position
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
from runstore.export import RESULT_FIELDS, StoredRow
from runstore.figures import compared, pair_items
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
    ResultFilters,
    ResultOrder,
    Run,
    RunComparison,
    RunFilters,
    RunResult,
    RunStatus,
    RunSummary,
    Score,
    ScoreFilter,
    UpdateRunInput,
)
from runstore.operations import Begin, Mode, Plan, Step
from runstore.pgcopy import copy_plan
from runstore.records import new_run, recorded_results
from runstore.sql_errors import storage_error, translated_errors
from runstore.statements import CopyRows, Query

if TYPE_CHECKING:
    import psycopg

__all__ = ["SqlRunsStorage"]

_T = TypeVar("_T")


class _StepFailedError(Exception):
    """A statement failed: carries the runstore error out of the transaction."""

    def __init__(self, error: StorageError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class _Done:
    value: Any


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
        self._run(operations.vacuum(self._dialect))

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
                    if isinstance(outcome, _Done):
                        return outcome.value  # type: ignore[no-any-return]
                    if isinstance(outcome, Begin):  # the next steps, in a new transaction
                        mode, retried = outcome.mode, False
                        step = steps.send(None)
                    elif mode is Mode.READ and _lost(outcome) and not retried:
                        retried = True  # the pool was reset: once more, on a fresh connection
                    else:
                        step = steps.throw(outcome)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
        finally:
            if serial is not None:
                serial.release()

    def _transaction(self, mode: Mode, steps: Any, step: Step) -> _Done | Begin | StorageError:
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
                    return _Done(done.value)
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
        duplicate = step.duplicate if isinstance(step, Query) else None
        missing_run = step.missing_run if isinstance(step, Query) else None
        error = storage_error(
            exc, driver_error=self._driver_error, duplicate=duplicate, missing_run=missing_run
        )
        if error is None:
            raise exc
        if error is not exc:
            error.__cause__ = exc
        return error

    def _follow(
        self,
        batch: Callable[[Position | None], Plan[list[_T]]],
        position: Callable[[_T], Position],
        size: int,
    ) -> Iterator[_T]:
        """Keyset batches of ``size`` until one comes back short, each read on its own."""
        after: Position | None = None
        while True:
            rows = self._run(batch(after))
            yield from rows
            if len(rows) < size:
                return
            after = position(rows[-1])

    # -- runs --------------------------------------------------------------------------

    def create_run(
        self,
        input: CreateRunInput | Mapping[str, Any],
        *,
        if_exists: ExistingRun | str = ExistingRun.ERROR,
    ) -> Run:
        input = model_argument(CreateRunInput, input)
        if_exists = choice_argument(ExistingRun, if_exists, "if_exists")
        run = new_run(input, self._now())
        return self._run(operations.create_run(run, if_exists=if_exists, input=input))

    def update_run(self, input: UpdateRunInput | Mapping[str, Any]) -> Run:
        input = model_argument(UpdateRunInput, input)
        return self._run(operations.update_run(input, self._clock))

    def get_run_by_id(self, id: str) -> Run | None:
        return self._run(operations.get_run(id_argument(id, "id")))

    def list_runs(self, input: ListRunsInput | Mapping[str, Any] | None = None) -> ListRunsOutput:
        input = model_argument(ListRunsInput, {} if input is None else input)
        return self._run(operations.list_runs(input))

    def iter_runs(self, *, batch_size: int = 1000, **filters: Any) -> Iterator[Run]:
        listing = RunFilters.model_validate(filters)
        size = size_argument(batch_size, "batch_size")
        self._check_open()
        return self._follow(
            lambda after: operations.runs_batch(listing, after, size),
            operations.run_position,
            size,
        )

    def delete_run(self, id: str) -> None:
        self._run(operations.delete_run(id_argument(id, "id")))

    def recount_run(self, run_id: str) -> Run:
        return self._run(operations.recount_run(id_argument(run_id, "run_id"), self._now()))

    def prune_runs(
        self,
        *,
        older_than: datetime,
        status: RunStatus | str | None = None,
        dataset_id: str | None = None,
        batch_size: int = 100,
    ) -> int:
        older_than = instant_argument(older_than, "older_than")
        status = None if status is None else choice_argument(RunStatus, status, "status")
        dataset_id = None if dataset_id is None else id_argument(dataset_id, "dataset_id")
        size = size_argument(batch_size, "batch_size")
        return self._run(operations.prune_runs(older_than, status, dataset_id, size))

    # -- results -----------------------------------------------------------------------

    def add_result(
        self,
        input: AddRunResultInput | Mapping[str, Any],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> RunResult:
        input = model_argument(AddRunResultInput, input)
        update_counts = flag_argument(update_counts, "update_counts")
        on_conflict = choice_argument(OnConflict, on_conflict, "on_conflict")
        now = self._now()
        (result,) = recorded_results([input], now)
        if on_conflict is OnConflict.ERROR:
            plan = operations.add_result(result, update_counts=update_counts, dialect=self._dialect)
            return self._run(plan)
        (stored,) = self._run(
            operations.add_results(
                [result],
                update_counts=update_counts,
                now=now,
                copy=False,
                on_conflict=on_conflict,
                batch=False,
            )
        )
        return stored

    def add_results(
        self,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> list[RunResult]:
        update_counts = flag_argument(update_counts, "update_counts")
        on_conflict = choice_argument(OnConflict, on_conflict, "on_conflict")
        batch = batch_argument(inputs)
        if not batch:
            self._check_open()
            return []
        now = self._now()
        plan = operations.add_results(
            recorded_results(batch, now),
            update_counts=update_counts,
            now=now,
            copy=self._copy,
            on_conflict=on_conflict,
        )
        return self._run(plan)

    def get_result_by_id(self, id: str) -> RunResult | None:
        return self._run(operations.get_result(id_argument(id, "id")))

    def list_results(self, input: ListRunResultsInput | Mapping[str, Any]) -> ListRunResultsOutput:
        input = model_argument(ListRunResultsInput, input)
        return self._run(operations.list_results(input))

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
        run_id = id_argument(run_id, "run_id")
        size = size_argument(batch_size, "batch_size")
        filters = ResultFilters.model_validate(
            {"has_error": has_error, "item_id": item_id, "score": score, "order": order}
        )
        self._check_open()
        return self._follow(
            lambda after: operations.results_batch(run_id, filters, after, size),
            operations.result_position(filters.order),
            size,
        )

    def _stored_rows(self, run_id: str, size: int) -> Iterator[Sequence[StoredRow]]:
        """The columnar path of exports: the stored values, selected as they are (see
        :func:`runstore.statements.result_rows_batch`), a keyset batch at a time."""
        self._check_open()
        after: Position | None = None
        while True:
            rows = self._run(operations.result_rows_batch(run_id, after, size))
            if rows:
                yield rows
            if len(rows) < size:
                return
            last = rows[-1]
            after = Position(datetime.fromisoformat(last[_STARTED_AT]), last[_ID])

    def delete_results_by_run_id(self, run_id: str) -> None:
        self._run(operations.delete_results_of_run(id_argument(run_id, "run_id")))

    def dangerously_clear_all(self) -> None:
        self._run(operations.clear_all())

    # -- scores ------------------------------------------------------------------------

    def add_scores(
        self, inputs: Iterable[AddScoreInput | Mapping[str, Any]], *, replace: bool = False
    ) -> list[Score]:
        replace = flag_argument(replace, "replace")
        batch = scores_argument(inputs)
        if not batch:
            self._check_open()
            return []
        plan = operations.add_scores(batch, replace=replace, now=self._now(), dialect=self._dialect)
        return self._run(plan)

    def list_scores(
        self, run_id: str, *, result_id: str | None = None, name: str | None = None
    ) -> list[Score]:
        run_id, result_id, name = _score_arguments(run_id, result_id, name)
        return self._run(operations.list_scores(run_id, result_id, name))

    def iter_scores(
        self,
        run_id: str,
        *,
        result_id: str | None = None,
        name: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Score]:
        run_id, result_id, name = _score_arguments(run_id, result_id, name)
        size = size_argument(batch_size, "batch_size")
        self._check_open()
        return self._scores_after(run_id, result_id, name, size)

    def _scores_after(
        self, run_id: str, result_id: str | None, name: str | None, size: int
    ) -> Iterator[Score]:
        after: Score | None = None
        while True:
            scores = self._run(operations.scores_batch(run_id, result_id, name, after, size))
            yield from scores
            if len(scores) < size:
                return
            after = scores[-1]

    # -- answers -----------------------------------------------------------------------

    def summarize_run(self, run_id: str) -> RunSummary:
        run_id = id_argument(run_id, "run_id")
        return self._run(operations.summarize_run(run_id, dialect=self._dialect))

    def compare_runs(self, baseline_run_id: str, candidate_run_id: str) -> RunComparison:
        baseline = id_argument(baseline_run_id, "baseline_run_id")
        candidate = id_argument(candidate_run_id, "candidate_run_id")
        return self._run(operations.compare_runs(baseline, candidate))

    def iter_item_comparisons(
        self,
        baseline_run_id: str,
        candidate_run_id: str,
        *,
        only: ComparisonKind | str | None = None,
        score: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[ItemComparison]:
        baseline = id_argument(baseline_run_id, "baseline_run_id")
        candidate = id_argument(candidate_run_id, "candidate_run_id")
        wanted = comparison_argument(only)
        score = None if score is None else id_argument(score, "score")
        size = size_argument(batch_size, "batch_size")
        self._check_open()
        return self._item_comparisons(baseline, candidate, wanted, score, size)

    def _item_comparisons(
        self,
        baseline: str,
        candidate: str,
        only: ComparisonKind | None,
        score: str | None,
        size: int,
    ) -> Iterator[ItemComparison]:
        after, reading = "", max(size, 2)
        while True:
            results = self._run(operations.items_batch(baseline, candidate, after, reading))
            pairs, following = pair_items(results, reading, after)
            if not pairs and following == after:  # one item filled the batch
                reading *= 2
                continue
            yield from compared(pairs, only, score)
            if following is None:
                return
            after, reading = following, max(size, 2)


_STARTED_AT = RESULT_FIELDS.index("started_at")
_ID = RESULT_FIELDS.index("id")


def _lost(error: StorageError) -> bool:
    return bool(getattr(error, "connection_lost", False))


def _score_arguments(
    run_id: object, result_id: object, name: object
) -> tuple[str, str | None, str | None]:
    return (
        id_argument(run_id, "run_id"),
        None if result_id is None else id_argument(result_id, "result_id"),
        None if name is None else id_argument(name, "name"),
    )
