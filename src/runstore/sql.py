"""The SQL adapter: SQLite and Postgres through SQLAlchemy Core on the generated tables."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from runstore.base import RunsStorage, new_run, page_result, recorded_result
from runstore.clock import Clock
from runstore.engine import WRITE_OPTION, create_storage_engine, is_memory_sqlite, normalize_url
from runstore.errors import InvalidInputError, RunNotFoundError, StorageClosedError
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
)
from runstore.schema import attribute_name
from runstore.sql_errors import translated_errors
from runstore.tables import results_table, runs_table

__all__ = ["SqlRunsStorage"]

_RUN_ATTRIBUTES = tuple(attribute_name(column.name) for column in runs_table.columns)
_RESULT_ATTRIBUTES = tuple(attribute_name(column.name) for column in results_table.columns)
_RUN_COLUMNS = {attribute_name(column.name): column.name for column in runs_table.columns}
_RESULT_COLUMNS = {attribute_name(column.name): column.name for column in results_table.columns}

_runs = runs_table.c
_results = results_table.c

_SELECT_RUN = sa.select(runs_table).where(_runs.id == sa.bindparam("id"))
_SELECT_RESULT = sa.select(results_table).where(_results.id == sa.bindparam("id"))
_LOCK_RUN = sa.select(_runs.updatedAt).where(_runs.id == sa.bindparam("id"))
_INSERT_RUN = sa.insert(runs_table)

# One statement records a result only if its run exists, so a missing run writes nothing
# and costs no extra round trip. The foreign key still guards against a concurrent delete.
_INSERT_RESULT = (
    sa.insert(results_table)
    .from_select(
        [column.name for column in results_table.columns],
        sa.select(
            *[
                sa.bindparam(f"v_{column.name}", type_=column.type)
                for column in results_table.columns
            ]
        ).where(sa.exists().where(_runs.id == sa.bindparam("v_runId"))),
    )
    .execution_options(preserve_rowcount=True)
)


def _run_from_row(row: Sequence[Any]) -> Run:
    fields = dict(zip(_RUN_ATTRIBUTES, row, strict=True))
    fields["status"] = RunStatus(fields["status"])
    fields["target_type"] = TargetType(fields["target_type"])
    return Run.model_construct(**fields)


def _result_from_row(row: Sequence[Any]) -> RunResult:
    return RunResult.model_construct(**dict(zip(_RESULT_ATTRIBUTES, row, strict=True)))


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
        self._schema_checked = False
        self._closed = False

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
    def _transaction(
        self, *, write: bool, duplicate: str = "the row already exists", run_id: str | None = None
    ) -> Iterator[Connection]:
        """One transaction, with runstore's errors; writes take SQLite's write lock at once."""
        self._check_open()
        with self._serialized(), translated_errors(duplicate=duplicate, run_id=run_id):
            if not self._schema_checked:
                with self._engine.connect() as connection:
                    require_head(connection, repr(self))
                self._schema_checked = True
            engine = self._write_engine if write else self._engine
            with engine.begin() as connection:
                yield connection

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A read transaction whose statements all see one snapshot (count and page agree)."""
        with self._transaction(write=False) as connection:
            if self._postgres:
                connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield connection

    # -- runs --------------------------------------------------------------------------

    def create_run(self, input: CreateRunInput) -> Run:
        run = new_run(input, self._now())
        values = {column: getattr(run, name) for name, column in _RUN_COLUMNS.items()}
        with self._transaction(write=True, duplicate=f"run {run.id!r} already exists") as conn:
            conn.execute(_INSERT_RUN, values)
        return run

    def update_run(self, input: UpdateRunInput) -> Run:
        with self._transaction(write=True) as connection:
            lock = _LOCK_RUN.with_for_update() if self._postgres else _LOCK_RUN
            previous = connection.execute(lock, {"id": input.id}).scalar_one_or_none()
            if previous is None:
                raise RunNotFoundError(input.id)
            values = {_RUN_COLUMNS[name]: value for name, value in input.changes().items()}
            values["updatedAt"] = self._now_after(previous)
            row = connection.execute(
                sa.update(runs_table)
                .where(_runs.id == input.id)
                .values(values)
                .returning(*runs_table.columns)
            ).one()
            return _run_from_row(row)

    def get_run_by_id(self, id: str) -> Run | None:
        with self._transaction(write=False) as connection:
            row = connection.execute(_SELECT_RUN, {"id": id}).one_or_none()
            return None if row is None else _run_from_row(row)

    def list_runs(self, input: ListRunsInput) -> ListRunsOutput:
        conditions = [] if input.dataset_id is None else [_runs.datasetId == input.dataset_id]
        with self._snapshot() as connection:
            total, rows = _page(
                connection,
                runs_table,
                conditions,
                [_runs.createdAt.desc(), _runs.id.desc()],
                input.pagination,
            )
            runs = tuple(_run_from_row(row) for row in rows)
        return ListRunsOutput(runs=runs, pagination=page_result(input.pagination, total, len(runs)))

    def delete_run(self, id: str) -> None:
        with self._transaction(write=True) as connection:
            connection.execute(sa.delete(results_table).where(_results.runId == id))
            connection.execute(sa.delete(runs_table).where(_runs.id == id))

    # -- results -----------------------------------------------------------------------

    def add_result(self, input: AddRunResultInput) -> RunResult:
        result = recorded_result(input, self._now())
        values = {f"v_{column}": getattr(result, name) for name, column in _RESULT_COLUMNS.items()}
        duplicate = (
            f"result {result.id!r} or a result of run {result.run_id!r} "
            f"for item {result.item_id!r} already exists"
        )
        with self._transaction(write=True, duplicate=duplicate, run_id=input.run_id) as conn:
            if conn.execute(_INSERT_RESULT, values).rowcount == 0:
                raise RunNotFoundError(input.run_id)
        return result

    def get_result_by_id(self, id: str) -> RunResult | None:
        with self._transaction(write=False) as connection:
            row = connection.execute(_SELECT_RESULT, {"id": id}).one_or_none()
            return None if row is None else _result_from_row(row)

    def list_results(self, input: ListRunResultsInput) -> ListRunResultsOutput:
        with self._snapshot() as connection:
            total, rows = _page(
                connection,
                results_table,
                [_results.runId == input.run_id],
                [_results.startedAt.asc(), _results.id.asc()],
                input.pagination,
            )
            results = tuple(_result_from_row(row) for row in rows)
        return ListRunResultsOutput(
            results=results, pagination=page_result(input.pagination, total, len(results))
        )

    def delete_results_by_run_id(self, run_id: str) -> None:
        with self._transaction(write=True) as connection:
            connection.execute(sa.delete(results_table).where(_results.runId == run_id))

    def dangerously_clear_all(self) -> None:
        with self._transaction(write=True) as connection:
            connection.execute(sa.delete(results_table))
            connection.execute(sa.delete(runs_table))


def _page(
    connection: Connection,
    table: sa.Table,
    conditions: list[sa.ColumnElement[bool]],
    order: list[sa.UnaryExpression[Any]],
    pagination: StoragePagination,
) -> tuple[int, Sequence[sa.Row[Any]]]:
    """The total count of matching rows, and the rows of one page in a total order."""
    total = connection.execute(
        sa.select(sa.func.count()).select_from(table).where(*conditions)
    ).scalar_one()
    query = sa.select(table).where(*conditions).order_by(*order)
    if pagination.per_page is not False:
        if pagination.offset >= total:
            return total, []
        query = query.limit(pagination.per_page).offset(pagination.offset)
    return total, connection.execute(query).all()
