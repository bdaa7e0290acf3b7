"""Every SQL storage call as a sequence of statements, with no I/O of its own.

An operation is a generator: it yields steps (a :class:`~runstore.statements.Query`, or
:class:`~runstore.statements.CopyRows`), receives each statement's result, and returns what
the call returns -- models built from the rows inside the transaction that read them. It
never touches a connection, so the same operation runs on a blocking SQLAlchemy
connection (:class:`~runstore.sql.SqlRunsStorage`) and could run on an asyncio one.

A :class:`Plan` pairs an operation with its :class:`Mode`, which says how its statements
must run. When a step fails, the runner translates the error
(:mod:`runstore.sql_errors`), ends the transaction, and throws the error into the
operation at that step: the operation may handle it -- its next step then starts a new
transaction -- or let it propagate to the caller.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from runstore import statements
from runstore.clock import Clock, moved_forward
from runstore.cursors import CursorKind, Position, decode_cursor, encode_cursor
from runstore.errors import DuplicateError, RunNotFoundError
from runstore.models import (
    ListRunResultsInput,
    ListRunResultsOutput,
    ListRunsInput,
    ListRunsOutput,
    Run,
    RunFilters,
    RunResult,
    UpdateRunInput,
)
from runstore.pages import Page, fetch_limit, make_page
from runstore.records import count_deltas, counter_overflow, first_position
from runstore.statements import RESULT_ATTRIBUTES, RUN_ATTRIBUTES, CopyRows, Query

__all__ = [
    "Begin",
    "Mode",
    "Plan",
    "Step",
    "add_result",
    "add_results",
    "clear_all",
    "delete_results_of_run",
    "delete_run",
    "get_result",
    "get_run",
    "list_results",
    "list_runs",
    "result_position",
    "results_batch",
    "run_position",
    "runs_batch",
    "update_run",
]

_T = TypeVar("_T")
_Row = TypeVar("_Row")

BATCH_CHUNK = 1000
"""Rows per statement execution (or lookup) when a batch is written or checked."""


class Mode(enum.Enum):
    """How an operation's statements run."""

    READ = "read"
    """Each statement on its own, outside a transaction (a single statement is consistent
    by itself). Reads only; a lost connection is retried once on a fresh one."""
    WRITE_ONE = "write one"
    """One statement that writes: a transaction of its own (connections are in
    autocommit)."""
    WRITE = "write"
    """Several statements in one write transaction (see
    :func:`~runstore.engine.write_transaction`)."""


@dataclass(frozen=True, slots=True)
class Begin:
    """A step that ends the operation's transaction (committing what it wrote) and runs the
    steps after it in a new one, of this mode."""

    mode: Mode


Step = Query | CopyRows | Begin
Steps = Generator[Step, Any, _T]


@dataclass(frozen=True, slots=True)
class Plan(Generic[_T]):
    """An operation ready to run, and how."""

    mode: Mode
    steps: Steps[_T]


_RUNS = TypeAdapter(list[Run])
_RESULTS = TypeAdapter(list[RunResult])


def runs_from(rows: Sequence[Sequence[Any]]) -> list[Run]:
    """Runs from rows that begin with the runs table's columns."""
    return _RUNS.validate_python([dict(zip(RUN_ATTRIBUTES, row, strict=False)) for row in rows])


def results_from(rows: Sequence[Sequence[Any]]) -> list[RunResult]:
    """Results from rows that begin with the results table's columns."""
    return _RESULTS.validate_python(
        [dict(zip(RESULT_ATTRIBUTES, row, strict=False)) for row in rows]
    )


# -- runs ------------------------------------------------------------------------------


def create_run(run: Run) -> Plan[Run]:
    return Plan(Mode.WRITE_ONE, _create_run(run))


def _create_run(run: Run) -> Steps[Run]:
    yield statements.insert_run(run)
    return run


def update_run(input: UpdateRunInput, clock: Clock) -> Plan[Run]:
    return Plan(Mode.WRITE_ONE, _update_run(input, clock))


def _update_run(input: UpdateRunInput, clock: Clock) -> Steps[Run]:
    # Usually one statement: the clock is past the stored updated_at, which moves to now.
    changes = input.changes()
    query = statements.update_run(input.id, changes, clock(), if_earlier=True)
    row = (yield query).first()
    if row is not None:
        return runs_from([row])[0]
    # Missing, or the stored time is ahead (another process's clock): lock and look.
    yield Begin(Mode.WRITE)
    locked = (yield statements.lock_run(input.id)).first()
    if locked is None:
        raise RunNotFoundError(input.id)
    updated_at = moved_forward(clock(), locked[0])  # never backwards, whatever the clocks
    row = (yield statements.update_run(input.id, changes, updated_at)).one()
    return runs_from([row])[0]


def get_run(run_id: str) -> Plan[Run | None]:
    return Plan(Mode.READ, _get_run(run_id))


def _get_run(run_id: str) -> Steps[Run | None]:
    row = (yield statements.select_run(run_id)).first()
    return None if row is None else runs_from([row])[0]


def list_runs(input: ListRunsInput) -> Plan[ListRunsOutput]:
    return Plan(Mode.READ, _list_runs(input))


def _list_runs(input: ListRunsInput) -> Steps[ListRunsOutput]:
    page = yield from _page(
        "runs",
        input,
        input.scope(),
        lambda after, limit, offset: statements.runs_page(input, after, limit, offset),
        statements.count_runs(input),
        runs_from,
        run_position,
    )
    return ListRunsOutput(
        runs=tuple(page.rows), pagination=page.pagination, next_cursor=page.next_cursor
    )


def _page(
    kind: CursorKind,
    request: ListRunsInput | ListRunResultsInput,
    scope: tuple[str | None, ...],
    query: Callable[[Position | None, int | None, int], Query],
    count: Query,
    read: Callable[[Sequence[Sequence[Any]]], list[_Row]],
    position: Callable[[_Row], Position],
) -> Steps[Page[_Row]]:
    """One page of a list: by cursor or by number, with its total and the next cursor.

    ``query`` reads the page's rows, each ending with the total; ``count`` counts alone,
    for a page with no rows.
    """
    after = None if request.cursor is None else decode_cursor(request.cursor, kind, scope)
    limit = fetch_limit(request.pagination)
    offset = request.pagination.offset if after is None else 0
    rows = (yield query(after, limit, offset)).all()
    total = rows[0][-1] if rows else (yield count).scalar_one()
    return make_page(
        read(rows),
        total,
        request.pagination,
        lambda row: encode_cursor(kind, scope, position(row)),
    )


def runs_batch(filters: RunFilters, after: Position | None, size: int) -> Plan[list[Run]]:
    return Plan(Mode.READ, _runs_batch(filters, after, size))


def _runs_batch(filters: RunFilters, after: Position | None, size: int) -> Steps[list[Run]]:
    return runs_from((yield statements.runs_batch(filters, after, size)).all())


def delete_run(run_id: str) -> Plan[None]:
    return Plan(Mode.WRITE, _delete_run(run_id))


def _delete_run(run_id: str) -> Steps[None]:
    yield statements.delete_results_of_run(run_id)
    yield statements.delete_run(run_id)


# -- results ---------------------------------------------------------------------------


def add_result(result: RunResult, *, update_counts: bool) -> Plan[RunResult]:
    if update_counts:
        return Plan(Mode.WRITE, _add_counted_result(result))
    return Plan(Mode.WRITE_ONE, _add_result(result))


def _add_result(result: RunResult) -> Steps[RunResult]:
    if (yield statements.insert_result(result)).rowcount == 0:
        raise RunNotFoundError(result.run_id)
    return result


def _add_counted_result(result: RunResult) -> Steps[RunResult]:
    yield from _count([result], result.created_at, batch=False)
    yield statements.insert_result(result)
    return result


def _count(results: Sequence[RunResult], now: datetime, *, batch: bool) -> Steps[None]:
    """Grow each run's counters by its new results; locks the runs, proves they exist."""
    for run_id, (succeeded, failed) in count_deltas(results).items():
        if (yield statements.bump_counts(run_id, succeeded, failed, now)).rowcount:
            continue
        position = first_position(results, run_id) if batch else None
        if (yield statements.select_run(run_id)).first() is None:
            raise RunNotFoundError(run_id, position=position)
        raise counter_overflow(run_id, position)


def add_results(
    results: Sequence[RunResult], *, update_counts: bool, now: datetime, copy: bool
) -> Plan[list[RunResult]]:
    """Record a batch in one transaction; ``copy`` streams the rows with Postgres' COPY."""
    return Plan(Mode.WRITE, _add_results(results, update_counts, now, copy))


def _add_results(
    results: Sequence[RunResult], update_counts: bool, now: datetime, copy: bool
) -> Steps[list[RunResult]]:
    try:
        if update_counts:
            yield from _count(results, now, batch=True)
        else:
            run_ids = {result.run_id for result in results}
            missing = run_ids - set((yield statements.lock_runs(run_ids)).scalars())
            if missing:
                position = min(first_position(results, run_id) for run_id in missing)
                raise RunNotFoundError(results[position].run_id, position=position)
        if copy:
            yield statements.copy_results(results)
        else:
            for start in range(0, len(results), BATCH_CHUNK):
                yield statements.insert_results(results[start : start + BATCH_CHUNK])
    except DuplicateError as exc:
        raise (yield from _locate_duplicate(results)) or exc from exc
    return list(results)


def _locate_duplicate(results: Sequence[RunResult]) -> Steps[DuplicateError | None]:
    """After a batch hit a unique constraint: which item, and why."""
    ids = [result.id for result in results]
    taken_ids: set[str] = set()
    for start in range(0, len(ids), BATCH_CHUNK):
        query = statements.taken_result_ids(ids[start : start + BATCH_CHUNK])
        taken_ids.update((yield query).scalars())
    items_by_run: dict[str, list[str]] = {}
    for result in results:
        items_by_run.setdefault(result.run_id, []).append(result.item_id)
    taken_pairs: set[tuple[str, str]] = set()
    for run_id, items in items_by_run.items():
        for start in range(0, len(items), BATCH_CHUNK):
            query = statements.taken_items(run_id, items[start : start + BATCH_CHUNK])
            taken_pairs.update((run_id, item) for item in (yield query).scalars())
    for position, result in enumerate(results):
        if result.id in taken_ids:
            return DuplicateError(f"result {result.id!r} already exists", position=position)
        if (result.run_id, result.item_id) in taken_pairs:
            return DuplicateError(
                f"run {result.run_id!r} already has a result for item {result.item_id!r}",
                position=position,
            )
    return None


def get_result(result_id: str) -> Plan[RunResult | None]:
    return Plan(Mode.READ, _get_result(result_id))


def _get_result(result_id: str) -> Steps[RunResult | None]:
    row = (yield statements.select_result(result_id)).first()
    return None if row is None else results_from([row])[0]


def list_results(input: ListRunResultsInput) -> Plan[ListRunResultsOutput]:
    return Plan(Mode.READ, _list_results(input))


def _list_results(input: ListRunResultsInput) -> Steps[ListRunResultsOutput]:
    page = yield from _page(
        "results",
        input,
        (input.run_id,),
        lambda after, limit, offset: statements.results_page(input.run_id, after, limit, offset),
        statements.count_results(input.run_id),
        results_from,
        result_position,
    )
    return ListRunResultsOutput(
        results=tuple(page.rows), pagination=page.pagination, next_cursor=page.next_cursor
    )


def results_batch(run_id: str, after: Position | None, size: int) -> Plan[list[RunResult]]:
    return Plan(Mode.READ, _results_batch(run_id, after, size))


def _results_batch(run_id: str, after: Position | None, size: int) -> Steps[list[RunResult]]:
    return results_from((yield statements.results_batch(run_id, after, size)).all())


def delete_results_of_run(run_id: str) -> Plan[None]:
    return Plan(Mode.WRITE_ONE, _delete_results_of_run(run_id))


def _delete_results_of_run(run_id: str) -> Steps[None]:
    yield statements.delete_results_of_run(run_id)


def clear_all() -> Plan[None]:
    return Plan(Mode.WRITE, _clear_all())


def _clear_all() -> Steps[None]:
    yield statements.clear_results()
    yield statements.clear_runs()


def run_position(run: Run) -> Position:
    """Where a run sits in its list (for the next keyset batch)."""
    return Position(run.created_at, run.id)


def result_position(result: RunResult) -> Position:
    """Where a result sits in its list (for the next keyset batch)."""
    return Position(result.started_at, result.id)
