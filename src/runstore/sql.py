"""The SQL adapter: SQLite and Postgres through SQLAlchemy Core on the generated tables."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from runstore.base import (
    RunsStorage,
    check_batch_size,
    collector_paused,
    count_deltas,
    fetch_limit,
    new_run,
    page_result,
    recorded_result,
    runs_scope,
    split_page,
    validated_batch,
)
from runstore.clock import Clock
from runstore.cursors import CursorKind, Position, decode_cursor, encode_cursor
from runstore.driver import DriverStatement, driver_transaction
from runstore.engine import WRITE_OPTION, create_storage_engine, is_memory_sqlite, normalize_url
from runstore.errors import DuplicateError, InvalidInputError, RunNotFoundError, StorageClosedError
from runstore.jsonvalues import EncodedJson, JsonValue
from runstore.migrations import require_head, upgrade_to_head
from runstore.models import (
    AddRunResultInput,
    CreateRunInput,
    ListRunResultsInput,
    ListRunResultsOutput,
    ListRunsInput,
    ListRunsOutput,
    Run,
    RunResult,
    RunStatus,
    StoragePagination,
    TargetType,
    UpdateRunInput,
    trusted_snapshot,
)
from runstore.schema import attribute_name
from runstore.sql_errors import translated_errors
from runstore.tables import results_table, runs_table
from runstore.types import UTCDateTime

__all__ = ["SqlRunsStorage"]

_RUN_COLUMNS = {attribute_name(column.name): column.name for column in runs_table.columns}

_runs = runs_table.c
_results = results_table.c

_SELECT_RUN = sa.select(runs_table).where(_runs.id == sa.bindparam("id"))
_SELECT_RESULT = sa.select(results_table).where(_results.id == sa.bindparam("id"))
_LOCK_RUN = sa.select(_runs.updatedAt).where(_runs.id == sa.bindparam("id"))
_INSERT_RUN = sa.insert(runs_table)
_INSERT_RESULTS = sa.insert(results_table)

# Progress counters grow by arithmetic in the database, never read-modify-write, so
# concurrent writers cannot lose a count; updatedAt only ever moves forward.
_BUMP_COUNTS = (
    sa.update(runs_table)
    .where(_runs.id == sa.bindparam("b_id"))
    .values(
        succeededCount=_runs.succeededCount + sa.bindparam("b_succeeded", type_=sa.Integer()),
        failedCount=_runs.failedCount + sa.bindparam("b_failed", type_=sa.Integer()),
        updatedAt=sa.case(
            (
                _runs.updatedAt < sa.bindparam("b_now", type_=UTCDateTime()),
                sa.bindparam("b_now", type_=UTCDateTime()),
            ),
            else_=_runs.updatedAt,
        ),
    )
)

# Rows per executemany call when recording a batch: bounds what the driver buffers.
_BATCH_CHUNK = 1000

# One statement records a result only if its run exists, so a missing run writes nothing
# and costs no extra round trip. The foreign key still guards against a concurrent delete.
_INSERT_RESULT = sa.insert(results_table).from_select(
    [column.name for column in results_table.columns],
    sa.select(
        *[sa.bindparam(f"v_{column.name}", type_=column.type) for column in results_table.columns]
    ).where(sa.exists().where(_runs.id == sa.bindparam("v_runId"))),
)


def _run_from_fields(fields: dict[str, Any]) -> Run:
    fields["status"] = RunStatus(fields["status"])
    fields["target_type"] = TargetType(fields["target_type"])
    return trusted_snapshot(Run, fields)


class SqlRunsStorage(RunsStorage):
    """Runs and results in SQLite or Postgres.

    Args:
        url_or_engine: a database URL (``sqlite:///path.db``, ``sqlite://`` for memory,
            ``postgresql+psycopg://user@host/db``) -- runstore then makes and owns the
            engine, with the settings in :mod:`runstore.engine` -- or an existing
            :class:`~sqlalchemy.engine.Engine`, used as it is and never disposed.
        sqlite_pragmas: changes to runstore's SQLite pragmas (``None`` drops one).
        clock: see :class:`~runstore.base.RunsStorage`.
        engine_options: keyword arguments for :func:`sqlalchemy.create_engine`.

    Call :meth:`init` once to create or upgrade the schema (idempotent; safe to call from
    several processes at once). Using a database whose schema is not at this version's
    head raises :class:`~runstore.errors.SchemaOutOfDateError`.
    """

    def __init__(
        self,
        url_or_engine: str | URL | Engine,
        *,
        sqlite_pragmas: Mapping[str, str | None] | None = None,
        clock: Clock | None = None,
        **engine_options: Any,
    ) -> None:
        super().__init__(clock=clock)
        if isinstance(url_or_engine, Engine):
            if sqlite_pragmas is not None or engine_options:
                raise InvalidInputError("engine settings apply only to an engine built from a URL")
            normalize_url(url_or_engine.url)
            self._engine = url_or_engine
            self._owns_engine = False
        else:
            self._engine = create_storage_engine(
                url_or_engine, sqlite_pragmas=sqlite_pragmas, **engine_options
            )
            self._owns_engine = True
        self._write_engine = self._engine.execution_options(**{WRITE_OPTION: True})
        self._postgres = self._engine.dialect.name == "postgresql"
        # An in-memory SQLite database is one connection: let one thread use it at a time.
        self._serial = threading.RLock() if is_memory_sqlite(self._engine.url) else None
        self._driver_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        self._schema_checked = False
        self._closed = False

    @functools.cached_property
    def _statements(self) -> _Statements:
        return _Statements(self._engine.dialect)

    @property
    def engine(self) -> Engine:
        """The engine in use (for inspection; runstore's statements go through methods)."""
        return self._engine

    def __repr__(self) -> str:
        return f"SqlRunsStorage({self._engine.url.render_as_string(hide_password=True)!r})"

    # -- lifecycle ---------------------------------------------------------------------

    def init(self) -> None:
        self._check_open()
        with self._serialized(), translated_errors():
            upgrade_to_head(self._engine)
        self._schema_checked = True

    def close(self) -> None:
        if not self._closed and self._owns_engine:
            self._engine.dispose()
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageClosedError(f"{self!r} was closed")

    def _serialized(self) -> threading.RLock | nullcontext[None]:
        return self._serial if self._serial is not None else nullcontext()

    @contextmanager
    def _guarded(self, *, duplicate: str, run_id: str | None) -> Iterator[None]:
        """Open storage, one thread at a time where needed, runstore's errors, a checked schema."""
        self._check_open()
        with (
            self._serialized(),
            translated_errors(driver_error=self._driver_error, duplicate=duplicate, run_id=run_id),
        ):
            if not self._schema_checked:
                with self._engine.connect() as connection:
                    require_head(connection, repr(self))
                self._schema_checked = True
            yield

    @contextmanager
    def _transaction(
        self, *, write: bool, duplicate: str = "the row already exists", run_id: str | None = None
    ) -> Iterator[Connection]:
        """One transaction on a SQLAlchemy connection; writes take SQLite's write lock at once."""
        with self._guarded(duplicate=duplicate, run_id=run_id):
            engine = self._write_engine if write else self._engine
            with engine.begin() as connection:
                yield connection

    @contextmanager
    def _driver(
        self,
        *,
        write: bool,
        isolation: str | None = None,
        duplicate: str = "the row already exists",
        run_id: str | None = None,
    ) -> Iterator[Any]:
        """One transaction on the pool's DBAPI connection, for :mod:`runstore.driver`."""
        with (
            self._guarded(duplicate=duplicate, run_id=run_id),
            driver_transaction(self._engine, write=write, isolation=isolation) as cursor,
        ):
            yield cursor

    # -- runs --------------------------------------------------------------------------

    def create_run(self, input: CreateRunInput) -> Run:
        run = new_run(input, self._now())
        with self._driver(write=True, duplicate=f"run {run.id!r} already exists") as cursor:
            self._statements.insert_run.execute(cursor, run.__dict__, by_attribute=True)
        return run

    def update_run(self, input: UpdateRunInput) -> Run:
        statements = self._statements
        changes = input.changes()
        with self._driver(write=True) as cursor:
            row = statements.lock_run.execute(cursor, {"id": input.id}).fetchone()
            if row is None:
                raise RunNotFoundError(input.id)
            values = {f"set_{_RUN_COLUMNS[name]}": value for name, value in changes.items()}
            values["set_updatedAt"] = self._now_after(statements.lock_run.read(row)["updated_at"])
            values["u_id"] = input.id
            update = statements.update_run(frozenset(changes))
            updated = update.execute(cursor, values).fetchone()
            return _run_from_fields(update.read(updated))

    def get_run_by_id(self, id: str) -> Run | None:
        select = self._statements.select_run
        with self._driver(write=False) as cursor:
            row = select.execute(cursor, {"id": id}).fetchone()
        return None if row is None else _run_from_fields(select.read(row))

    def list_runs(self, input: ListRunsInput) -> ListRunsOutput:
        total, rows, has_more, next_cursor = self._page(_Listing.of_runs(input), input.pagination)
        return ListRunsOutput(
            runs=tuple(map(_run_from_fields, rows)),
            pagination=page_result(input.pagination, total, has_more),
            next_cursor=next_cursor,
        )

    def iter_runs(
        self,
        *,
        dataset_id: str | None = None,
        status: RunStatus | str | None = None,
        target_type: TargetType | str | None = None,
        target_id: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Run]:
        check_batch_size(batch_size)
        listing = _Listing.of_runs(
            ListRunsInput(
                dataset_id=dataset_id, status=status, target_type=target_type, target_id=target_id
            )
        )
        for rows in self._batches(listing, batch_size):
            yield from map(_run_from_fields, rows)

    def delete_run(self, id: str) -> None:
        with self._transaction(write=True) as connection:
            connection.execute(sa.delete(results_table).where(_results.runId == id))
            connection.execute(sa.delete(runs_table).where(_runs.id == id))

    # -- results -----------------------------------------------------------------------

    def add_result(self, input: AddRunResultInput, *, update_counts: bool = False) -> RunResult:
        result = recorded_result(input, self._now())
        statements = self._statements
        duplicate = (
            f"result {result.id!r} or a result of run {result.run_id!r} "
            f"for item {result.item_id!r} already exists"
        )
        fields = result.__dict__
        with self._driver(write=True, duplicate=duplicate, run_id=input.run_id) as cursor:
            if update_counts:
                self._bump_counts(cursor, [result], result.created_at)
                statements.insert_result.execute(cursor, fields, by_attribute=True)
            else:
                insert = statements.insert_result_if_run
                if insert.execute(cursor, fields, by_attribute=True).rowcount == 0:
                    raise RunNotFoundError(input.run_id)
        return result

    def add_results(
        self,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        *,
        update_counts: bool = False,
    ) -> list[RunResult]:
        with collector_paused():
            return self._add_results(inputs, update_counts=update_counts)

    def _add_results(
        self, inputs: Iterable[AddRunResultInput | Mapping[str, Any]], *, update_counts: bool
    ) -> list[RunResult]:
        json_texts: dict[int, tuple[JsonValue, EncodedJson]] = {}
        batch = validated_batch(inputs, json_texts)
        if not batch:
            return []
        now = self._now()
        results = [recorded_result(input, now) for input in batch]
        insert = self._statements.insert_result
        try:
            with self._driver(write=True) as cursor:
                if update_counts:
                    self._bump_counts(cursor, results, now)
                else:
                    self._require_runs(cursor, results)
                for start in range(0, len(results), _BATCH_CHUNK):
                    chunk = results[start : start + _BATCH_CHUNK]
                    rows = [_with_json_texts(result, json_texts) for result in chunk]
                    insert.execute_many(cursor, rows, by_attribute=True)
        except DuplicateError as exc:
            raise self._locate_duplicate(results) or exc from exc
        return results

    def _bump_counts(self, cursor: Any, results: Sequence[RunResult], now: datetime) -> None:
        """Add each run's new results to its counters; locks the runs, proves they exist."""
        bump = self._statements.bump_counts
        for run_id, (succeeded, failed) in count_deltas(results).items():
            values = {"b_id": run_id, "b_succeeded": succeeded, "b_failed": failed, "b_now": now}
            if bump.execute(cursor, values).rowcount == 0:
                raise RunNotFoundError(run_id, position=_first_position(results, run_id))

    def _require_runs(self, cursor: Any, results: Sequence[RunResult]) -> None:
        """Check that every result's run exists, and keep it from being deleted meanwhile."""
        check = self._statements.check_run
        for run_id in sorted({result.run_id for result in results}):
            if check.execute(cursor, {"id": run_id}).fetchone() is None:
                raise RunNotFoundError(run_id, position=_first_position(results, run_id))

    def _locate_duplicate(self, results: Sequence[RunResult]) -> DuplicateError | None:
        """After a batch hit a unique constraint: which item, and why."""
        ids = [result.id for result in results]
        taken_ids: set[str] = set()
        taken_pairs: set[tuple[str, str]] = set()
        with self._transaction(write=False) as connection:
            for start in range(0, len(ids), _BATCH_CHUNK):
                chunk = ids[start : start + _BATCH_CHUNK]
                taken_ids.update(
                    connection.execute(
                        sa.select(_results.id).where(_results.id.in_(chunk))
                    ).scalars()
                )
            for run_id in {result.run_id for result in results}:
                items = [result.item_id for result in results if result.run_id == run_id]
                for start in range(0, len(items), _BATCH_CHUNK):
                    query = sa.select(_results.runId, _results.itemId).where(
                        _results.runId == run_id,
                        _results.itemId.in_(items[start : start + _BATCH_CHUNK]),
                    )
                    taken_pairs.update(
                        (row_run, row_item) for row_run, row_item in connection.execute(query)
                    )
        for position, result in enumerate(results):
            if result.id in taken_ids:
                return DuplicateError(f"result {result.id!r} already exists", position=position)
            if (result.run_id, result.item_id) in taken_pairs:
                return DuplicateError(
                    f"run {result.run_id!r} already has a result for item {result.item_id!r}",
                    position=position,
                )
        return None

    def get_result_by_id(self, id: str) -> RunResult | None:
        select = self._statements.select_result
        with self._driver(write=False) as cursor:
            row = select.execute(cursor, {"id": id}).fetchone()
        return None if row is None else trusted_snapshot(RunResult, select.read(row))

    def list_results(self, input: ListRunResultsInput) -> ListRunResultsOutput:
        listing = _Listing.of_results(input.run_id, input.cursor)
        total, rows, has_more, next_cursor = self._page(listing, input.pagination)
        return ListRunResultsOutput(
            results=tuple(trusted_snapshot(RunResult, fields) for fields in rows),
            pagination=page_result(input.pagination, total, has_more),
            next_cursor=next_cursor,
        )

    def iter_results(self, run_id: str, *, batch_size: int = 1000) -> Iterator[RunResult]:
        check_batch_size(batch_size)
        for rows in self._batches(_Listing.of_results(run_id, None), batch_size):
            for fields in rows:
                yield trusted_snapshot(RunResult, fields)

    def _page(
        self, listing: _Listing, pagination: StoragePagination
    ) -> tuple[int, Sequence[dict[str, Any]], bool, str | None]:
        """The total, one page of rows (as fields), whether more follow, the next cursor.

        Count and page are read in one snapshot (REPEATABLE READ on Postgres; a SQLite
        read transaction is one already), so they agree.
        """
        statements = self._statements
        limit = fetch_limit(pagination)
        offset = pagination.offset if listing.after is None else 0
        with self._driver(write=False, isolation="REPEATABLE READ") as cursor:
            count = statements.listing(listing, count=True)
            (total,) = count.execute(cursor, listing.values(None)).fetchone()
            if limit is not None and offset >= total:
                return total, [], False, None
            keyset = listing.after is not None
            select = statements.listing(listing, keyset=keyset, limit=limit is not None)
            values = listing.values(listing.after, limit, offset)
            rows = [select.read(row) for row in select.execute(cursor, values).fetchall()]
        page, has_more = split_page(rows, pagination)
        next_cursor = None
        if has_more:
            next_cursor = encode_cursor(listing.kind, listing.scope, listing.position_of(page[-1]))
        return total, page, has_more, next_cursor

    def _batches(self, listing: _Listing, batch_size: int) -> Iterator[list[dict[str, Any]]]:
        """Keyset batches, each read in a transaction of its own (none open while yielding)."""
        first = self._statements.listing(listing, limit=True)
        following = self._statements.listing(listing, keyset=True, limit=True)
        after: Position | None = None
        while True:
            select = first if after is None else following
            with self._driver(write=False) as cursor:
                raw_rows = select.execute(cursor, listing.values(after, batch_size)).fetchall()
                rows = [select.read(row) for row in raw_rows]
            if rows:
                yield rows
            if len(rows) < batch_size:
                return
            after = listing.position_of(rows[-1])

    def delete_results_by_run_id(self, run_id: str) -> None:
        with self._transaction(write=True) as connection:
            connection.execute(sa.delete(results_table).where(_results.runId == run_id))

    def dangerously_clear_all(self) -> None:
        with self._transaction(write=True) as connection:
            connection.execute(sa.delete(results_table))
            connection.execute(sa.delete(runs_table))


_JSON_ATTRIBUTES = ("input", "output", "expected_output")


def _with_json_texts(
    result: RunResult, json_texts: Mapping[int, tuple[JsonValue, EncodedJson]]
) -> dict[str, Any]:
    """A result's fields, its JSON values replaced by the text validation already wrote."""
    fields = dict(result.__dict__)
    for name in _JSON_ATTRIBUTES:
        value = fields[name]
        known = json_texts.get(id(value))
        if known is not None and known[0] is value:
            fields[name] = known[1]
    return fields


def _first_position(results: Sequence[RunResult], run_id: str) -> int:
    return next(position for position, result in enumerate(results) if result.run_id == run_id)


class _Statements:
    """The hot-path statements, compiled once for a dialect (see :mod:`runstore.driver`)."""

    def __init__(self, dialect: sa.Dialect) -> None:
        postgres = dialect.name == "postgresql"
        runs, results = list(runs_table.columns), list(results_table.columns)
        check = sa.select(_runs.id).where(_runs.id == sa.bindparam("id"))
        lock = _LOCK_RUN
        if postgres:  # SQLite's BEGIN IMMEDIATE already holds the write lock
            check = check.with_for_update(key_share=True)
            lock = lock.with_for_update()
        self._dialect = dialect
        self.insert_run = DriverStatement(_INSERT_RUN, dialect)
        self.select_run = DriverStatement(_SELECT_RUN, dialect, runs)
        self.lock_run = DriverStatement(lock, dialect, [_runs.updatedAt])
        self.check_run = DriverStatement(check, dialect)
        self.bump_counts = DriverStatement(_BUMP_COUNTS, dialect)
        self.insert_result = DriverStatement(_INSERT_RESULTS, dialect)
        self.insert_result_if_run = DriverStatement(_INSERT_RESULT, dialect)
        self.select_result = DriverStatement(_SELECT_RESULT, dialect, results)
        self._updates: dict[frozenset[str], DriverStatement] = {}
        self._listings: dict[tuple[Any, ...], DriverStatement] = {}

    def listing(
        self,
        listing: _Listing,
        *,
        count: bool = False,
        keyset: bool = False,
        limit: bool = False,
    ) -> DriverStatement:
        """The count, or the page query, of lists shaped like ``listing``."""
        key = (listing.shape, count, keyset, limit)
        statement = self._listings.get(key)
        if statement is None:
            if count:
                statement = DriverStatement(listing.count_query(), self._dialect)
            else:
                any_position = Position(datetime.now(UTC), "") if keyset else None
                query = listing.query(any_position, limit=limit)
                statement = DriverStatement(query, self._dialect, list(listing.table.columns))
            self._listings[key] = statement
        return statement

    def update_run(self, fields: frozenset[str]) -> DriverStatement:
        """``UPDATE`` of the given run attributes (and ``updatedAt``), returning the row."""
        statement = self._updates.get(fields)
        if statement is None:
            columns = sorted({_RUN_COLUMNS[name] for name in fields} | {"updatedAt"})
            update = (
                sa.update(runs_table)
                .where(_runs.id == sa.bindparam("u_id"))
                .values({column: sa.bindparam(f"set_{column}") for column in columns})
                .returning(*runs_table.columns)
            )
            statement = DriverStatement(update, self._dialect, list(runs_table.columns))
            self._updates[fields] = statement
        return statement


class _Listing:
    """One list: its table, filters, total order and cursor scope.

    Its statements take every value as a named bind parameter, so one compiled statement
    serves every list of the same shape (see :meth:`_Statements.listing`).
    """

    def __init__(
        self,
        kind: CursorKind,
        scope: Sequence[str | None],
        table: sa.Table,
        filters: list[tuple[sa.Column[Any], Any]],
        order: tuple[sa.Column[Any], sa.Column[Any]],
        *,
        descending: bool,
        cursor: str | None,
    ) -> None:
        self.kind = kind
        self.scope = scope
        self.table = table
        self.filters = [(column, value) for column, value in filters if value is not None]
        self.order = order
        self.descending = descending
        self.after = None if cursor is None else decode_cursor(cursor, kind, scope)

    @classmethod
    def of_runs(cls, input: ListRunsInput) -> _Listing:
        return cls(
            "runs",
            runs_scope(input),
            runs_table,
            [
                (_runs.datasetId, input.dataset_id),
                (_runs.status, input.status),
                (_runs.targetType, input.target_type),
                (_runs.targetId, input.target_id),
            ],
            (_runs.createdAt, _runs.id),
            descending=True,
            cursor=input.cursor,
        )

    @classmethod
    def of_results(cls, run_id: str, cursor: str | None) -> _Listing:
        return cls(
            "results",
            (run_id,),
            results_table,
            [(_results.runId, run_id)],
            (_results.startedAt, _results.id),
            descending=False,
            cursor=cursor,
        )

    @property
    def shape(self) -> tuple[Any, ...]:
        """What the statements depend on (not the values): which list, which filters."""
        return (self.kind, tuple(column.name for column, _ in self.filters))

    def _conditions(self) -> list[sa.ColumnElement[bool]]:
        return [
            column == sa.bindparam(f"f_{column.name}", value, type_=column.type)
            for column, value in self.filters
        ]

    def count_query(self) -> sa.Select[Any]:
        return sa.select(sa.func.count()).select_from(self.table).where(*self._conditions())

    def query(self, after: Position | None, *, limit: bool = False) -> sa.Select[Any]:
        """Matching rows in order, after ``after`` when given (a keyset condition)."""
        conditions = self._conditions()
        moment, row_id = self.order
        if after is not None:
            key = sa.tuple_(moment, row_id)
            mark = sa.tuple_(
                sa.bindparam("after_moment", after.moment, type_=moment.type),
                sa.bindparam("after_id", after.id, type_=row_id.type),
            )
            conditions.append(key < mark if self.descending else key > mark)
        ordering = [column.desc() if self.descending else column.asc() for column in self.order]
        query = sa.select(self.table).where(*conditions).order_by(*ordering)
        if limit:  # an offset always comes with it: 0 unless paging by number
            query = query.limit(sa.bindparam("page_limit", type_=sa.Integer()))
            query = query.offset(sa.bindparam("page_offset", type_=sa.Integer()))
        return query

    def values(
        self, after: Position | None, limit: int | None = None, offset: int | None = None
    ) -> dict[str, Any]:
        """The bind values of :meth:`query` (and :meth:`count_query`)."""
        values: dict[str, Any] = {f"f_{column.name}": value for column, value in self.filters}
        if after is not None:
            values["after_moment"] = after.moment
            values["after_id"] = after.id
        values["page_limit"] = limit
        values["page_offset"] = offset or 0
        return values

    def position_of(self, fields: Mapping[str, Any]) -> Position:
        moment, row_id = self.order
        return Position(fields[attribute_name(moment.name)], fields[attribute_name(row_id.name)])
