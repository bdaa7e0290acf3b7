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
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from runstore import statements
from runstore.clock import Clock, moved_forward
from runstore.cursors import CursorKind, Position, decode_cursor, encode_cursor
from runstore.errors import DuplicateError, ResultNotFoundError, RunNotFoundError
from runstore.export import RESULT_FIELDS
from runstore.figures import PERCENTILES, Sided, interpolate, rank
from runstore.models import (
    AddScoreInput,
    CreateRunInput,
    ExistingRun,
    LatencySummary,
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
    ScoreComparison,
    ScoreSummary,
    UpdateRunInput,
)
from runstore.pages import Page, fetch_limit, make_page
from runstore.records import (
    count_deltas,
    counter_overflow,
    existing_run,
    first_position,
    recorded_scores,
    scores_of_results,
)
from runstore.statements import (
    RESULT_ATTRIBUTES,
    RUN_ATTRIBUTES,
    SCORE_ATTRIBUTES,
    CopyRows,
    Query,
)

__all__ = [
    "Begin",
    "Done",
    "Mode",
    "Plan",
    "Step",
    "add_result",
    "add_results",
    "add_scores",
    "clear_all",
    "compare_runs",
    "delete_results_of_run",
    "delete_run",
    "get_result",
    "get_run",
    "items_batch",
    "list_results",
    "list_runs",
    "list_scores",
    "prune_runs",
    "recount_run",
    "result_position",
    "result_rows_batch",
    "results_batch",
    "run_position",
    "runs_batch",
    "scores_batch",
    "summarize_run",
    "update_run",
    "vacuum",
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
    SNAPSHOT = "snapshot"
    """Several reads that must see one snapshot: a read-only transaction (REPEATABLE READ
    on Postgres, a read transaction on SQLite)."""
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


@dataclass(frozen=True, slots=True)
class Done:
    """What a runner's transaction gives back when the operation returned ``value``."""

    value: Any


Step = Query | CopyRows | Begin
Steps = Generator[Step, Any, _T]


@dataclass(frozen=True, slots=True)
class Plan(Generic[_T]):
    """An operation ready to run, and how."""

    mode: Mode
    steps: Steps[_T]


_RUNS = TypeAdapter(list[Run])
_RESULTS = TypeAdapter(list[RunResult])
_SCORES = TypeAdapter(list[Score])


def _read(adapter: TypeAdapter[list[Any]], names: Sequence[str], rows: Iterable[Any]) -> Any:
    return adapter.validate_python([dict(zip(names, row, strict=False)) for row in rows])


def runs_from(rows: Iterable[Sequence[Any]]) -> list[Run]:
    """Runs from rows that begin with the runs table's columns."""
    return _read(_RUNS, RUN_ATTRIBUTES, rows)  # type: ignore[no-any-return]


def results_from(rows: Iterable[Sequence[Any]]) -> list[RunResult]:
    """Results from rows that begin with the results table's columns and the scores."""
    return _read(_RESULTS, RESULT_ATTRIBUTES, rows)  # type: ignore[no-any-return]


def scores_from(rows: Iterable[Sequence[Any]]) -> list[Score]:
    """Scores from rows of the scores table."""
    return _read(_SCORES, SCORE_ATTRIBUTES, rows)  # type: ignore[no-any-return]


_RESULT_ID = RESULT_ATTRIBUTES.index("id")
_RESULT_SCORES = RESULT_ATTRIBUTES.index("scores")
_STORED_ID = RESULT_FIELDS.index("id")
_STORED_SCORES = RESULT_FIELDS.index("scores")


def _scores_apart(dialect: str) -> bool:
    """Whether reads of results take their scores from a statement of their own, after
    the results' (SQLite, which has no exact text for a REAL: see
    :class:`runstore.types.score_map`)."""
    return dialect == "sqlite"


def _results_read(dialect: str) -> Mode:
    """The mode of a read of results: on SQLite, where the scores follow in a statement
    of their own, a snapshot, so that both statements see the same rows."""
    return Mode.SNAPSHOT if _scores_apart(dialect) else Mode.READ


def _with_scores(
    rows: Sequence[Sequence[Any]], dialect: str, *, id_at: int, scores_at: int, empty: Any
) -> Steps[Sequence[Sequence[Any]]]:
    """Rows of results with their scores (a name-to-value dict, ``empty`` for none) at
    ``scores_at``: as read, where the statement aggregated them; else read now, as stored."""
    if not _scores_apart(dialect) or not rows:
        return rows
    ids = [row[id_at] for row in rows]
    scores: dict[str, dict[str, float]] = {}
    for start in range(0, len(ids), BATCH_CHUNK):
        query = statements.scores_of_results(ids[start : start + BATCH_CHUNK])
        for result_id, name, value in (yield query):
            scores.setdefault(result_id, {})[name] = value
    completed = []
    for row in rows:
        row = list(row)
        row[scores_at] = scores.get(row[id_at], empty)
        completed.append(row)
    return completed


def _scored_results(rows: Sequence[Sequence[Any]], dialect: str) -> Steps[list[RunResult]]:
    """Results from rows of results, with their scores (see :func:`_with_scores`)."""
    rows = yield from _with_scores(
        rows, dialect, id_at=_RESULT_ID, scores_at=_RESULT_SCORES, empty={}
    )
    return results_from(rows)


def _each(queries: Iterable[Query]) -> Steps[None]:
    # Not `yield from`: the runner sends each statement's result, which a list's iterator
    # cannot take.
    for query in queries:  # noqa: UP028
        yield query


# -- runs ------------------------------------------------------------------------------


def create_run(run: Run, *, if_exists: ExistingRun, input: CreateRunInput) -> Plan[Run]:
    return Plan(Mode.WRITE_ONE, _create_run(run, if_exists, input))


def _create_run(run: Run, if_exists: ExistingRun, input: CreateRunInput) -> Steps[Run]:
    while True:
        try:
            yield statements.insert_run(run)
            return run
        except DuplicateError:
            if if_exists is ExistingRun.ERROR:
                raise
        row = (yield statements.select_run(run.id)).first()
        if row is not None:  # else deleted since: create it after all
            return existing_run(input, runs_from([row])[0])


def recount_run(run_id: str, now: datetime) -> Plan[Run]:
    return Plan(Mode.WRITE_ONE, _recount_run(run_id, now))


def _recount_run(run_id: str, now: datetime) -> Steps[Run]:
    row = (yield statements.recount_run(run_id, now)).first()
    if row is None:
        raise RunNotFoundError(run_id)
    return runs_from([row])[0]


PRUNE_RESULTS = 10_000
"""At most this many results deleted in one transaction of :func:`prune_runs` -- unless one
run has more, which then goes alone: a run goes whole or not at all."""


def prune_runs(
    older_than: datetime, status: RunStatus | None, dataset_id: str | None, size: int
) -> Plan[int]:
    """Delete runs oldest first, in transactions of up to ``size`` runs and
    :data:`PRUNE_RESULTS` results: each batch's runs are locked first, so that no result
    can be added to them while they go."""
    return Plan(Mode.WRITE, _prune_runs(older_than, status, dataset_id, size))


def _prune_runs(
    older_than: datetime, status: RunStatus | None, dataset_id: str | None, size: int
) -> Steps[int]:
    pruned = 0
    while True:
        query = statements.prunable_runs(
            older_than, None if status is None else status.value, dataset_id, size
        )
        found = (yield query).all()
        run_ids: list[str] = []
        results = 0
        for run_id, result_count in found:
            if run_ids and results + result_count > PRUNE_RESULTS:
                break
            run_ids.append(run_id)
            results += result_count
        if run_ids:
            yield from _each(statements.delete_runs(run_ids))
            pruned += len(run_ids)
        if len(found) < size and len(run_ids) == len(found):
            return pruned
        yield Begin(Mode.WRITE)  # commits this batch


def vacuum(dialect: str) -> Plan[None]:
    """Outside any transaction: VACUUM may not run in one."""
    return Plan(Mode.WRITE_ONE, _each(statements.vacuum(dialect)))


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
        _runs_read,
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
    read: Callable[[Sequence[Sequence[Any]]], Steps[list[_Row]]],
    position: Callable[[_Row], Position],
) -> Steps[Page[_Row]]:
    """One page of a list: by cursor or by number, with its total and the next cursor.

    ``query`` reads the page's rows, each ending with the total; ``count`` counts alone,
    for a page with no rows; ``read`` makes the models (it may read more).
    """
    after = None if request.cursor is None else decode_cursor(request.cursor, kind, scope)
    limit = fetch_limit(request.pagination)
    offset = request.pagination.offset if after is None else 0
    rows = (yield query(after, limit, offset)).all()
    total = rows[0][-1] if rows else (yield count).scalar_one()
    return make_page(
        (yield from read(rows)),
        total,
        request.pagination,
        lambda row: encode_cursor(kind, scope, position(row)),
    )


def _runs_read(rows: Sequence[Sequence[Any]]) -> Steps[list[Run]]:
    """:func:`runs_from` as a step of a read (which reads nothing more)."""
    yield from ()
    return runs_from(rows)


def runs_batch(filters: RunFilters, after: Position | None, size: int) -> Plan[list[Run]]:
    return Plan(Mode.READ, _runs_batch(filters, after, size))


def _runs_batch(filters: RunFilters, after: Position | None, size: int) -> Steps[list[Run]]:
    return runs_from((yield statements.runs_batch(filters, after, size)).all())


def delete_run(run_id: str) -> Plan[None]:
    return Plan(Mode.WRITE, _each(statements.delete_run(run_id)))


# -- results ---------------------------------------------------------------------------


def add_result(result: RunResult, *, update_counts: bool, dialect: str) -> Plan[RunResult]:
    """Record a result and count it on its run. On Postgres one statement does both (with
    the result's scores, a second follows); on SQLite, a write transaction."""
    if dialect == "postgresql":
        mode = Mode.WRITE if result.scores else Mode.WRITE_ONE
        return Plan(mode, _add_result_counting(result, update_counts))
    return Plan(Mode.WRITE, _add_result(result, update_counts))


def _add_result_counting(result: RunResult, update_counts: bool) -> Steps[RunResult]:
    counts = count_deltas([result])[result.run_id] if update_counts else None
    if (yield statements.insert_result_counting(result, counts)).rowcount == 0:
        if (yield statements.select_run(result.run_id)).first() is None:
            raise RunNotFoundError(result.run_id)
        raise counter_overflow(result.run_id, None)
    if result.scores:
        yield statements.insert_scores(scores_of_results([result]))
    return result


def _add_result(result: RunResult, update_counts: bool) -> Steps[RunResult]:
    yield from _count([result], update_counts, result.created_at, batch=False)
    yield statements.insert_result(result)
    if result.scores:
        yield statements.insert_scores(scores_of_results([result]))
    return result


def _count(
    results: Sequence[RunResult], update_counts: bool, now: datetime, *, batch: bool
) -> Steps[None]:
    """Count each run's new results (and with ``update_counts``, its succeeded and failed
    ones); locks the runs, in id order, and proves they exist."""
    sizes: dict[str, int] = {}
    for result in results:
        sizes[result.run_id] = sizes.get(result.run_id, 0) + 1
    yield from _bump_runs(results, sizes, count_deltas(results), update_counts, now, batch)


def _bump_runs(
    results: Sequence[RunResult],
    sizes: dict[str, int],
    deltas: dict[str, tuple[int, int]],
    update_counts: bool,
    now: datetime,
    batch: bool,
) -> Steps[None]:
    """Add ``sizes`` to the runs' result counts and, with ``update_counts``, ``deltas``
    (succeeded, failed) to their counters, in run id order."""
    for run_id in sorted(sizes.keys() | deltas.keys()):
        counts = deltas.get(run_id, (0, 0)) if update_counts else None
        size = sizes.get(run_id, 0)
        if (yield statements.bump_counts(run_id, size, counts, now)).rowcount:
            continue
        position = first_position(results, run_id) if batch else None
        if (yield statements.select_run(run_id)).first() is None:
            raise RunNotFoundError(run_id, position=position)
        raise counter_overflow(run_id, position)


def add_results(
    results: Sequence[RunResult],
    *,
    update_counts: bool,
    now: datetime,
    copy: bool,
    dialect: str,
    on_conflict: OnConflict = OnConflict.ERROR,
    batch: bool = True,
) -> Plan[list[RunResult]]:
    """Record a batch in one transaction; ``copy`` streams the rows with Postgres' COPY.

    With ``on_conflict`` "replace" or "skip", the runs are locked first, so that writers of
    the same run take turns: what is stored is read, and the counters move by exactly what
    changed (see :func:`_write_over`).
    """
    if on_conflict is OnConflict.ERROR:
        return Plan(Mode.WRITE, _add_results(results, update_counts, now, copy))
    steps = _write_over(results, update_counts, now, copy, on_conflict, batch, dialect)
    return Plan(Mode.WRITE, steps)


def _add_results(
    results: Sequence[RunResult], update_counts: bool, now: datetime, copy: bool
) -> Steps[list[RunResult]]:
    missing = None
    try:
        yield from _count(results, update_counts, now, batch=True)
    except RunNotFoundError as exc:
        missing = exc
    if missing is not None:  # the first missing run by position, not by id
        run_ids = {result.run_id for result in results}
        present = {row[0] for row in (yield statements.run_sizes(run_ids)).all()}
        position = min(first_position(results, r) for r in run_ids - present)
        raise RunNotFoundError(results[position].run_id, position=position)
    yield from _insert(results, copy)
    return list(results)


def _insert(results: Sequence[RunResult], copy: bool) -> Steps[None]:
    """Insert results and the scores they carry (their runs are known to exist)."""
    try:
        scores = scores_of_results(results)
        if copy:
            yield statements.copy_results(results)
            if scores:
                yield statements.copy_scores(scores)
        else:
            for start in range(0, len(results), BATCH_CHUNK):
                yield statements.insert_results(results[start : start + BATCH_CHUNK])
            for start in range(0, len(scores), BATCH_CHUNK):
                yield statements.insert_scores(scores[start : start + BATCH_CHUNK])
    except DuplicateError as exc:
        raise (yield from _locate_duplicate(results)) or exc from exc


_Key = tuple[str, str, int]
"""A result's place: (run, item, repetition)."""


def _key(result: RunResult) -> _Key:
    return (result.run_id, result.item_id, result.repetition)


def _write_over(
    results: Sequence[RunResult],
    update_counts: bool,
    now: datetime,
    copy: bool,
    on_conflict: OnConflict,
    batch: bool,
    dialect: str,
) -> Steps[list[RunResult]]:
    """Write results whose places may be taken, replacing or keeping what is stored.

    The runs are locked (in id order) before anything is read, so concurrent writers of
    one run take turns and each sees what the last one wrote. A writer that does not lock
    (``on_conflict="error"``) may still insert a place between the read and the write:
    the unique constraint refuses it, and the whole write is done once more.
    """
    try:
        return (
            yield from _write_over_once(
                results, update_counts, now, copy, on_conflict, batch, dialect
            )
        )
    except DuplicateError:
        pass  # the transaction was rolled back; the next step begins a new one
    return (
        yield from _write_over_once(results, update_counts, now, copy, on_conflict, batch, dialect)
    )


def _write_over_once(
    results: Sequence[RunResult],
    update_counts: bool,
    now: datetime,
    copy: bool,
    on_conflict: OnConflict,
    batch: bool,
    dialect: str,
) -> Steps[list[RunResult]]:
    run_ids = {result.run_id for result in results}
    present = set((yield statements.claim_runs(run_ids)).scalars())
    if missing := run_ids - present:
        position = min(first_position(results, run_id) for run_id in missing)
        raise RunNotFoundError(results[position].run_id, position=position if batch else None)
    replace = on_conflict is OnConflict.REPLACE
    stored: dict[_Key, Any] = {}  # replace: (id, failed); skip: the stored result
    keys_by_run: dict[str, list[tuple[str, int]]] = {}
    for result in results:
        keys_by_run.setdefault(result.run_id, []).append((result.item_id, result.repetition))
    for run_id, keys in keys_by_run.items():
        for start in range(0, len(keys), BATCH_CHUNK):
            chunk = keys[start : start + BATCH_CHUNK]
            asked = set(chunk)  # the rows may hold other pairs of these items
            if replace:
                rows = (yield statements.taken_items(run_id, chunk)).all()
                stored.update(
                    ((run_id, row[0], row[1]), (row[2], row[3]))
                    for row in rows
                    if (row[0], row[1]) in asked
                )
            else:
                rows = (yield statements.stored_items(run_id, chunk)).all()
                for kept in (yield from _scored_results(rows, dialect)):
                    if (kept.item_id, kept.repetition) in asked:
                        stored[_key(kept)] = kept
    fresh = [result for result in results if _key(result) not in stored]
    written = list(fresh)
    sizes: dict[str, int] = {}
    for result in fresh:
        sizes[result.run_id] = sizes.get(result.run_id, 0) + 1
    deltas = {run_id: list(counts) for run_id, counts in count_deltas(fresh).items()}
    outcome: list[RunResult] = []
    if replace:
        replaced_ids = []
        for result in results:
            place = stored.get(_key(result))
            if place is None:
                outcome.append(result)
                continue
            stored_id, failed_before = place
            replaced_ids.append(stored_id)
            kept_id = result.model_copy(update={"id": stored_id})
            written.append(kept_id)
            outcome.append(kept_id)
            counts = deltas.setdefault(result.run_id, [0, 0])
            counts[failed_before] -= 1
            counts[result.error is not None] += 1
            sizes.setdefault(result.run_id, 0)  # written to: counted, if only to move updated_at
        for start in range(0, len(replaced_ids), BATCH_CHUNK):
            ids = replaced_ids[start : start + BATCH_CHUNK]
            yield statements.delete_scores_of_results(ids)
            yield statements.delete_results(ids)
    else:
        outcome = [stored.get(_key(result), result) for result in results]
    if written:
        yield from _insert(written, copy)
    changed = {run_id: (counts[0], counts[1]) for run_id, counts in deltas.items()}
    yield from _bump_runs(results, sizes, changed, update_counts, now, batch)
    return outcome


def _locate_duplicate(results: Sequence[RunResult]) -> Steps[DuplicateError | None]:
    """After a batch hit a unique constraint: which item, and why."""
    ids = [result.id for result in results]
    taken_ids: set[str] = set()
    for start in range(0, len(ids), BATCH_CHUNK):
        query = statements.taken_result_ids(ids[start : start + BATCH_CHUNK])
        taken_ids.update((yield query).scalars())
    keys_by_run: dict[str, list[tuple[str, int]]] = {}
    for result in results:
        keys_by_run.setdefault(result.run_id, []).append((result.item_id, result.repetition))
    taken_keys: set[tuple[str, str, int]] = set()
    for run_id, keys in keys_by_run.items():
        for start in range(0, len(keys), BATCH_CHUNK):
            query = statements.taken_items(run_id, keys[start : start + BATCH_CHUNK])
            taken_keys.update((run_id, row[0], row[1]) for row in (yield query))
    for position, result in enumerate(results):
        if result.id in taken_ids:
            return DuplicateError(f"result {result.id!r} already exists", position=position)
        if (result.run_id, result.item_id, result.repetition) in taken_keys:
            repetition = f" (repetition {result.repetition})" if result.repetition else ""
            return DuplicateError(
                f"run {result.run_id!r} already has a result for item {result.item_id!r}"
                f"{repetition}",
                position=position,
            )
    return None


def get_result(result_id: str, dialect: str) -> Plan[RunResult | None]:
    return Plan(_results_read(dialect), _get_result(result_id, dialect))


def _get_result(result_id: str, dialect: str) -> Steps[RunResult | None]:
    row = (yield statements.select_result(result_id)).first()
    return None if row is None else (yield from _scored_results([row], dialect))[0]


def list_results(input: ListRunResultsInput, dialect: str) -> Plan[ListRunResultsOutput]:
    return Plan(_results_read(dialect), _list_results(input, dialect))


def _list_results(input: ListRunResultsInput, dialect: str) -> Steps[ListRunResultsOutput]:
    page = yield from _page(
        "results",
        input,
        (input.run_id, *input.scope()),
        lambda after, limit, offset: statements.results_page(
            input.run_id, input, after, limit, offset
        ),
        statements.count_results(input.run_id, input),
        lambda rows: _scored_results(rows, dialect),
        result_position(input.order),
    )
    return ListRunResultsOutput(
        results=tuple(page.rows), pagination=page.pagination, next_cursor=page.next_cursor
    )


def results_batch(
    run_id: str, filters: ResultFilters, after: Position | None, size: int, dialect: str
) -> Plan[list[RunResult]]:
    return Plan(_results_read(dialect), _results_batch(run_id, filters, after, size, dialect))


def _results_batch(
    run_id: str, filters: ResultFilters, after: Position | None, size: int, dialect: str
) -> Steps[list[RunResult]]:
    rows = (yield statements.results_batch(run_id, filters, after, size)).all()
    return (yield from _scored_results(rows, dialect))


def result_rows_batch(
    run_id: str, after: Position | None, size: int, dialect: str
) -> Plan[list[Sequence[Any]]]:
    """The next ``size`` results of a run, in execution order, as stored rows (see
    :mod:`runstore.export`); for the first batch, a run with no rows is proven to exist."""
    return Plan(_results_read(dialect), _result_rows_batch(run_id, after, size, dialect))


def _result_rows_batch(
    run_id: str, after: Position | None, size: int, dialect: str
) -> Steps[list[Sequence[Any]]]:
    rows: list[Sequence[Any]] = list((yield statements.result_rows_batch(run_id, after, size)))
    if not rows and after is None:
        yield from _require_runs([run_id])
    scored = yield from _with_scores(
        rows, dialect, id_at=_STORED_ID, scores_at=_STORED_SCORES, empty=None
    )
    return list(scored)


def delete_results_of_run(run_id: str) -> Plan[None]:
    return Plan(Mode.WRITE, _each(statements.delete_results_of_run(run_id)))


def clear_all() -> Plan[None]:
    return Plan(Mode.WRITE, _each(statements.clear_all()))


def run_position(run: Run) -> Position:
    """Where a run sits in its list (for the next keyset batch)."""
    return Position(run.created_at, run.id)


def result_position(order: ResultOrder) -> Callable[[RunResult], Position]:
    """Where a result sits in a list of this order (for the next keyset batch)."""
    if order is ResultOrder.SLOWEST:
        return lambda result: Position(result.latency, result.id)
    return lambda result: Position(result.started_at, result.id)


# -- scores ----------------------------------------------------------------------------


def add_scores(
    inputs: Sequence[AddScoreInput], *, replace: bool, now: datetime, dialect: str
) -> Plan[list[Score]]:
    return Plan(Mode.WRITE, _add_scores(inputs, replace, now, dialect))


def _add_scores(
    inputs: Sequence[AddScoreInput], replace: bool, now: datetime, dialect: str
) -> Steps[list[Score]]:
    run_of_result: dict[str, str] = {}
    result_ids = sorted({input.result_id for input in inputs})
    for start in range(0, len(result_ids), BATCH_CHUNK):
        found = (yield statements.results_of(result_ids[start : start + BATCH_CHUNK])).all()
        run_of_result.update((row[0], row[1]) for row in found)
    for position, input in enumerate(inputs):
        if input.result_id not in run_of_result:
            raise ResultNotFoundError(input.result_id, position=position)
    scores = recorded_scores(inputs, run_of_result, now)
    if replace:
        stored: list[Score] = []
        for start in range(0, len(scores), BATCH_CHUNK):
            query = statements.upsert_scores(scores[start : start + BATCH_CHUNK], dialect)
            stored += scores_from((yield query).all())
        return stored
    try:
        for start in range(0, len(scores), BATCH_CHUNK):
            yield statements.insert_scores(scores[start : start + BATCH_CHUNK])
    except DuplicateError as exc:
        raise (yield from _locate_duplicate_score(scores)) or exc from exc
    return scores


def _locate_duplicate_score(scores: Sequence[Score]) -> Steps[DuplicateError | None]:
    result_ids = sorted({score.result_id for score in scores})
    taken: set[tuple[str, str]] = set()
    for start in range(0, len(result_ids), BATCH_CHUNK):
        query = statements.taken_scores(result_ids[start : start + BATCH_CHUNK])
        taken.update((row[0], row[1]) for row in (yield query).all())
    for position, score in enumerate(scores):
        if (score.result_id, score.name) in taken:
            return DuplicateError(
                f"result {score.result_id!r} already has a score {score.name!r}",
                position=position,
            )
    return None


def list_scores(run_id: str, result_id: str | None, name: str | None) -> Plan[list[Score]]:
    return Plan(Mode.READ, _list_scores(run_id, result_id, name))


def _list_scores(run_id: str, result_id: str | None, name: str | None) -> Steps[list[Score]]:
    return scores_from((yield statements.select_scores(run_id, result_id, name)).all())


def scores_batch(
    run_id: str, result_id: str | None, name: str | None, after: Score | None, size: int
) -> Plan[list[Score]]:
    return Plan(Mode.READ, _scores_batch(run_id, result_id, name, after, size))


def _scores_batch(
    run_id: str, result_id: str | None, name: str | None, after: Score | None, size: int
) -> Steps[list[Score]]:
    query = statements.scores_batch(run_id, result_id, name, after, size)
    return scores_from((yield query).all())


# -- answers ---------------------------------------------------------------------------


def _require_runs(run_ids: Sequence[str]) -> Steps[dict[str, int]]:
    """Each run's result count; RunNotFoundError for the first that does not exist."""
    sizes = dict((yield statements.run_sizes(run_ids)).all())
    for run_id in run_ids:
        if run_id not in sizes:
            raise RunNotFoundError(run_id)
    return sizes


def summarize_run(run_id: str, *, dialect: str) -> Plan[RunSummary]:
    """Postgres: one statement with ``percentile_cont``. SQLite, which has none: in one
    snapshot, the aggregates, then the two values around each percentile's rank, read
    from an index."""
    if dialect == "postgresql":
        return Plan(Mode.SNAPSHOT, _summarize_in_one_statement(run_id))
    return Plan(Mode.SNAPSHOT, _summarize_by_ranks(run_id))


def _summary(
    run_id: str,
    counts: tuple[int, int],
    latency: Sequence[float | None],
    scores: dict[str, ScoreSummary],
) -> RunSummary:
    results, failed = counts
    mean, minimum, maximum, *percentiles = latency
    return RunSummary(
        run_id=run_id,
        results=results,
        succeeded=results - failed,
        failed=failed,
        error_rate=failed / results if results else None,
        latency=LatencySummary(
            mean=mean,
            min=minimum,
            max=maximum,
            **{
                f"p{round(p * 100)}": value
                for p, value in zip(PERCENTILES, percentiles, strict=True)
            },
        ),
        scores=scores,
    )


def _summarize_in_one_statement(run_id: str) -> Steps[RunSummary]:
    yield from _require_runs([run_id])
    rows = (yield statements.summary(run_id)).all()
    latency_row = next(row for row in rows if row[0] is None)
    scores = {
        row[0]: ScoreSummary(count=row[1], mean=row[3], min=row[4], max=row[5], p50=row[6])
        for row in rows
        if row[0] is not None
    }
    count, failed = latency_row[1], latency_row[2]
    return _summary(run_id, (count, failed), latency_row[3:], scores)


def _summarize_by_ranks(run_id: str) -> Steps[RunSummary]:
    yield from _require_runs([run_id])
    count, failed, mean, minimum, maximum = (yield statements.latency_aggregates(run_id)).one()
    percentiles: list[float | None] = []
    for fraction in PERCENTILES:
        if not count:
            percentiles.append(None)
            continue
        lower, weight = rank(count, fraction)
        values = (yield statements.latency_at(run_id, lower)).scalars().all()
        percentiles.append(interpolate(values[0], values[-1], weight))
    scores = {}
    for name, scored, score_mean, score_min, score_max in (
        yield statements.score_aggregates(run_id)
    ).all():
        lower, weight = rank(scored, 0.5)
        values = (yield statements.score_value_at(run_id, name, lower)).scalars().all()
        scores[name] = ScoreSummary(
            count=scored,
            mean=score_mean,
            min=score_min,
            max=score_max,
            p50=interpolate(values[0], values[-1], weight),
        )
    return _summary(run_id, (count, failed), [mean, minimum, maximum, *percentiles], scores)


def compare_runs(baseline: str, candidate: str) -> Plan[RunComparison]:
    return Plan(Mode.SNAPSHOT, _compare_runs(baseline, candidate))


def _compare_runs(baseline: str, candidate: str) -> Steps[RunComparison]:
    yield from _require_runs([baseline, candidate])
    paired, fixed, introduced, latency_delta, baseline_items, candidate_items = (
        yield statements.comparison_pairs(baseline, candidate)
    ).one()
    scores = {
        name: ScoreComparison(
            paired=count,
            baseline_mean=baseline_mean,
            candidate_mean=candidate_mean,
            mean_delta=candidate_mean - baseline_mean,
            improved=improved,
            regressed=regressed,
            unchanged=count - improved - regressed,
        )
        for name, count, baseline_mean, candidate_mean, improved, regressed in (
            yield statements.comparison_scores(baseline, candidate)
        ).all()
    }
    return RunComparison(
        baseline_run_id=baseline,
        candidate_run_id=candidate,
        items_in_both=paired,
        only_in_baseline=baseline_items - paired,
        only_in_candidate=candidate_items - paired,
        errors_fixed=fixed,
        errors_introduced=introduced,
        latency_mean_delta=latency_delta,
        scores=scores,
    )


def items_batch(
    baseline: str, candidate: str, after_item: str, size: int, dialect: str
) -> Plan[list[Sided]]:
    """The next ``size`` results of both runs, in ``item_id`` order, each with its side
    (see :func:`runstore.figures.pair_items`)."""
    return Plan(Mode.SNAPSHOT, _items_batch(baseline, candidate, after_item, size, dialect))


def _items_batch(
    baseline: str, candidate: str, after_item: str, size: int, dialect: str
) -> Steps[list[Sided]]:
    yield from _require_runs([baseline, candidate])
    rows = (yield statements.items_after(baseline, candidate, after_item, size)).all()
    results = yield from _scored_results(rows, dialect)
    return [(row[-1] == 1, result) for row, result in zip(rows, results, strict=True)]
