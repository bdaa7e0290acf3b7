"""Results: recording them (one, a batch, or over what is stored), reading one, deleting
a run's.

Statements first; the operations below them. A batch is one transaction: its runs are
counted (and so locked, and proven to exist) first, then its rows inserted -- on Postgres
streamed with ``COPY`` (:mod:`runstore.sql.copy`). Writing over stored results
(``on_conflict="replace"`` or ``"skip"``) locks the runs before reading what is stored.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from runstore import calls
from runstore.errors import DuplicateError
from runstore.errors import RunNotFoundError
from runstore.errors import batch_duplicate
from runstore.errors import counter_overflow
from runstore.errors import item_taken
from runstore.errors import result_exists
from runstore.errors import result_or_item_exists
from runstore.models import OnConflict
from runstore.models import RunResult
from runstore.plans import AnyQuery
from runstore.plans import CopyRows
from runstore.plans import Mode
from runstore.plans import Plan
from runstore.plans import Query
from runstore.plans import Steps
from runstore.plans import copy
from runstore.plans import each
from runstore.plans import execute
from runstore.plans import first
from runstore.plans import operation
from runstore.plans import reading
from runstore.plans import rowcount
from runstore.plans import rows
from runstore.plans import scalars
from runstore.sql.compiler import one_of
from runstore.sql.compiler import scores_of
from runstore.sql.database import Database
from runstore.sql.database import Plans
from runstore.sql.rows import RESULT_ATTRIBUTES
from runstore.sql.rows import result_row
from runstore.sql.rows import results_from
from runstore.sql.rows import score_rows
from runstore.sql.runs import bump_counts
from runstore.sql.runs import bump_statement
from runstore.sql.runs import bump_values
from runstore.sql.runs import claim_runs
from runstore.sql.runs import delete_results_by_run_id_queries
from runstore.sql.runs import run_sizes
from runstore.sql.runs import select_run
from runstore.sql.scores import copy_scores
from runstore.sql.scores import delete_scores_of_results
from runstore.sql.scores import insert_scores
from runstore.sql.scores import scores_of_results_rows
from runstore.stored import CountChange
from runstore.stored import first_position
from runstore.stored import missing_run
from runstore.stored import overwrite
from runstore.stored import recorded_results
from runstore.stored import score_fields
from runstore.tables import result_columns
from runstore.tables import results_table
from runstore.tables import runs_table

__all__ = ["BATCH_CHUNK", "PLANS", "scored_results", "with_scores"]

BATCH_CHUNK = 1000
"""Rows per statement execution (or lookup) when a batch is written or checked."""

_results = result_columns

# -- statements --------------------------------------------------------------------------

_INSERT_RESULTS = sa.insert(results_table)


def _duplicate_result(result: RunResult) -> str:
    return str(result_or_item_exists(result.id, result.run_id, result.item_id))


_DUPLICATE_IN_BATCH = str(batch_duplicate("result"))


def insert_result(result: RunResult) -> AnyQuery:
    """Record one result (its run is known to exist)."""
    return Query(
        _INSERT_RESULTS,
        result_row(result),
        duplicate=_duplicate_result(result),
        missing_run=result.run_id,
    )


def _result_bind(column: sa.Column[Any]) -> str:
    # Not the column's own key: an UPDATE (the CTE's) would take a parameter named like
    # one of its table's columns (id, startedAt, ...) as a value to SET.
    return f"result_{column.key}"


@functools.cache
def _insert_counting(counted: bool) -> sa.Insert:
    counting = bump_statement(counted).returning(runs_table.c.id).cte("counting")
    row = [
        sa.bindparam(_result_bind(column), type_=column.type) for column in results_table.columns
    ]
    return (
        sa.insert(results_table)
        .from_select(
            list(results_table.columns),
            sa.select(*row).select_from(counting),
        )
        .add_cte(counting)
        .execution_options(preserve_rowcount=True)
    )


def insert_result_counting(result: RunResult, counts: tuple[int, int] | None) -> AnyQuery:
    """Postgres: record one result and count it on its run, in one statement (a
    data-modifying ``WITH``). Nothing is written, and the row count is 0, if the run is
    missing or a count would pass the limit (see :func:`runstore.sql.runs.bump_counts`)."""
    stored = result_row(result)
    row = {_result_bind(column): stored[column.key] for column in results_table.columns}
    values = row | bump_values(result.run_id, 1, counts, result.created_at)
    return Query(
        _insert_counting(counts is not None),
        values,
        duplicate=_duplicate_result(result),
        missing_run=result.run_id,
    )


def insert_results(results: Sequence[RunResult]) -> AnyQuery:
    """Record results whose runs are known to exist, one statement execution per row."""
    return Query(
        _INSERT_RESULTS,
        [result_row(result) for result in results],
        duplicate=_DUPLICATE_IN_BATCH,
    )


def copy_results(results: Sequence[RunResult]) -> CopyRows:
    """:func:`insert_results` as a ``COPY`` stream (Postgres only)."""
    rows = [result_row(result) for result in results]
    return CopyRows(results_table, rows, duplicate=_DUPLICATE_IN_BATCH)


_SELECT_RESULT = sa.select(results_table, scores_of(_results.id)).where(
    _results.id == sa.bindparam("result_id")
)


def select_result(result_id: str) -> AnyQuery:
    """The result's row (columns in :data:`~runstore.sql.rows.RESULT_ATTRIBUTES` order)."""
    return Query(_SELECT_RESULT, {"result_id": result_id})


_TAKEN_IDS = sa.select(_results.id).where(one_of(_results.id, "ids"))
# Lists of item ids and of repetitions, not of (item, repetition) pairs: Postgres finds
# those in the unique (run, item, repetition) index, where it would check a list of pairs
# against every row of the run. The rows may hold pairs not asked for (an item asked for
# repetition 0 alone, when another item's repetition 1 is asked for too); callers keep
# the pairs they asked for.
_ITEM_KEYS = (
    _results.run_id == sa.bindparam("run_id"),
    one_of(_results.item_id, "items"),
    one_of(_results.repetition, "repetitions"),
)
_TAKEN_ITEMS = sa.select(
    _results.item_id, _results.repetition, _results.id, _results.error.is_not(None)
).where(*_ITEM_KEYS)


def taken_result_ids(ids: Sequence[str]) -> Query[str]:
    """Which of these result ids are stored."""
    return reading(_TAKEN_IDS, {"ids": list(ids)})


def taken_items(run_id: str, keys: Sequence[tuple[str, int]]) -> Query[str, int, str, bool]:
    """Which of these (item, repetition) pairs already have a result in the run: each
    with its result's id and whether it failed (and maybe other pairs of these items and
    repetitions: see ``_ITEM_KEYS``)."""
    return reading(_TAKEN_ITEMS, _item_keys(run_id, keys))


def _item_keys(run_id: str, keys: Sequence[tuple[str, int]]) -> dict[str, Any]:
    items = list(dict.fromkeys(item for item, _ in keys))
    repetitions = list(dict.fromkeys(repetition for _, repetition in keys))
    return {"run_id": run_id, "items": items, "repetitions": repetitions}


_STORED_ITEMS = sa.select(results_table, scores_of(_results.id)).where(*_ITEM_KEYS)


def stored_items(run_id: str, keys: Sequence[tuple[str, int]]) -> AnyQuery:
    """The stored results of these (item, repetition) pairs of a run, with their scores
    (columns as :data:`~runstore.sql.rows.RESULT_ATTRIBUTES`), and maybe of other pairs
    (see ``_ITEM_KEYS``)."""
    return Query(_STORED_ITEMS, _item_keys(run_id, keys))


_DELETE_RESULTS = sa.delete(results_table).where(one_of(_results.id, "result_ids"))


def delete_results(result_ids: Sequence[str]) -> AnyQuery:
    """Delete results by id (their scores first:
    :func:`~runstore.sql.scores.delete_scores_of_results`)."""
    return Query(_DELETE_RESULTS, {"result_ids": list(result_ids)})


# -- reading results ---------------------------------------------------------------------

_RESULT_ID = RESULT_ATTRIBUTES.index("id")
_RESULT_SCORES = RESULT_ATTRIBUTES.index("scores")


def results_read(database: Database) -> Mode:
    """The mode of a read of results: on SQLite, where the scores follow in a statement
    of their own, a snapshot, so that both statements see the same rows."""
    return Mode.SNAPSHOT if database.scores_apart else Mode.READ


def with_scores(
    fetched: Sequence[Sequence[Any]], database: Database, *, id_at: int, scores_at: int, empty: Any
) -> Steps[Sequence[Sequence[Any]]]:
    """Rows of results with their scores (a name-to-value dict, ``empty`` for none) at
    ``scores_at``: as read, where the statement aggregated them; else read now, as stored
    (see :func:`runstore.sql.compiler.scores_of`)."""
    if not database.scores_apart or not fetched:
        return fetched
    ids = [row[id_at] for row in fetched]
    scores: dict[str, dict[str, float]] = {}
    for start in range(0, len(ids), BATCH_CHUNK):
        query = scores_of_results_rows(ids[start : start + BATCH_CHUNK])
        for result_id, name, value in (yield from rows(query)):
            scores.setdefault(result_id, {})[name] = value
    completed = []
    for row in fetched:
        values = list(row)
        values[scores_at] = scores.get(values[id_at], empty)
        completed.append(values)
    return completed


def scored_results(fetched: Sequence[Sequence[Any]], database: Database) -> Steps[list[RunResult]]:
    """Results from rows of results, with their scores (see :func:`with_scores`)."""
    scored = yield from with_scores(
        fetched, database, id_at=_RESULT_ID, scores_at=_RESULT_SCORES, empty={}
    )
    return results_from(scored)


# -- operations --------------------------------------------------------------------------


def _add_result(call: calls.AddResult, database: Database) -> Plan[RunResult]:
    """Record a result and count it on its run. On Postgres one statement does both (with
    the result's scores, a second follows); on SQLite, a write transaction. With
    ``on_conflict`` "replace" or "skip", a batch of one (see :func:`_write_over`)."""
    now = database.now()
    (result,) = recorded_results([call.input], now)
    again = lambda: _add_result(call, database)  # noqa: E731 - the same call, afresh
    if call.on_conflict is not OnConflict.ERROR:
        steps = _write_over(
            [result],
            call.update_counts,
            now,
            call.on_conflict,
            database,
            use_copy=False,
            batch=False,
        )
        return Plan(Mode.WRITE, _only(steps), again)
    if database.postgres:
        mode = Mode.WRITE if result.scores else Mode.WRITE_ONE
        return Plan(mode, _insert_one_counting(result, call.update_counts), again)
    return Plan(Mode.WRITE, _insert_one(result, call.update_counts), again)


def _only(steps: Steps[list[RunResult]]) -> Steps[RunResult]:
    (written,) = yield from steps
    return written


def _insert_one_counting(result: RunResult, update_counts: bool) -> Steps[RunResult]:
    counts = _counted([result], update_counts)[result.run_id].counters
    if (yield from rowcount(insert_result_counting(result, counts))) == 0:
        if (yield from first(select_run(result.run_id))) is None:
            raise RunNotFoundError(result.run_id)
        raise counter_overflow(result.run_id, None)
    if result.scores:
        yield from execute(insert_scores(score_rows(score_fields([result]))))
    return result


def _insert_one(result: RunResult, update_counts: bool) -> Steps[RunResult]:
    yield from _count([result], update_counts, result.created_at, batch=False)
    yield from execute(insert_result(result))
    if result.scores:
        yield from execute(insert_scores(score_rows(score_fields([result]))))
    return result


def _add_results(call: calls.AddResults, database: Database) -> Plan[list[RunResult]]:
    """Record a batch in one transaction; on Postgres the rows stream with COPY.

    With ``on_conflict`` "replace" or "skip", the runs are locked first, so that writers of
    the same run take turns: what is stored is read, and the counters move by exactly what
    changed (see :func:`_write_over`).
    """
    now = database.now()
    results = recorded_results(call.inputs, now)
    again = lambda: _add_results(call, database)  # noqa: E731 - the same call, afresh
    if not results:
        return Plan(Mode.READ, _nothing(), again)
    if call.on_conflict is OnConflict.ERROR:
        steps = _insert_batch(results, call.update_counts, now, use_copy=database.postgres)
    else:
        steps = _write_over(
            results, call.update_counts, now, call.on_conflict, database, use_copy=database.postgres
        )
    return Plan(Mode.WRITE, steps, again)


def _nothing() -> Steps[list[RunResult]]:
    yield from ()
    return []


def _counted(results: Sequence[RunResult], update_counts: bool) -> dict[str, CountChange]:
    """How new ``results`` -- none in a taken place -- move their runs' counts."""
    return overwrite(results, {}, OnConflict.ERROR, update_counts).counts


def _count(
    results: Sequence[RunResult], update_counts: bool, now: datetime, *, batch: bool
) -> Steps[None]:
    """Count each run's new results (and with ``update_counts``, its succeeded and failed
    ones); locks the runs, in id order, and proves they exist."""
    yield from _bump_runs(results, _counted(results, update_counts), now, batch)


def _bump_runs(
    results: Sequence[RunResult], counts: dict[str, CountChange], now: datetime, batch: bool
) -> Steps[None]:
    """Move the runs' counts by ``counts``, in its order (of run ids)."""
    for run_id, change in counts.items():
        if (yield from rowcount(bump_counts(run_id, change.results, change.counters, now))):
            continue
        position = first_position(results, run_id, batch=batch)
        if (yield from first(select_run(run_id))) is None:
            raise RunNotFoundError(run_id, position=position)
        raise counter_overflow(run_id, position)


def _insert_batch(
    results: Sequence[RunResult], update_counts: bool, now: datetime, *, use_copy: bool
) -> Steps[list[RunResult]]:
    missing = None
    try:
        yield from _count(results, update_counts, now, batch=True)
    except RunNotFoundError as exc:
        missing = exc
    if missing is not None:  # the first missing run by position, not by id
        present = set((yield from scalars(run_sizes({result.run_id for result in results}))))
        raise missing_run(results, present, batch=True) or missing
    yield from _insert(results, use_copy=use_copy)
    return list(results)


def _insert(results: Sequence[RunResult], *, use_copy: bool) -> Steps[None]:
    """Insert results and the scores they carry (their runs are known to exist)."""
    try:
        scores = score_rows(score_fields(results))
        if use_copy:
            yield from copy(copy_results(results))
            if scores:
                yield from copy(copy_scores(scores))
        else:
            for start in range(0, len(results), BATCH_CHUNK):
                yield from execute(insert_results(results[start : start + BATCH_CHUNK]))
            for start in range(0, len(scores), BATCH_CHUNK):
                yield from execute(insert_scores(scores[start : start + BATCH_CHUNK]))
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
    on_conflict: OnConflict,
    database: Database,
    *,
    use_copy: bool,
    batch: bool = True,
) -> Steps[list[RunResult]]:
    """Write results whose places may be taken, replacing or keeping what is stored.

    The runs are locked (in id order) before anything is read, so concurrent writers of
    one run take turns and each sees what the last one wrote. A writer that does not lock
    (``on_conflict="error"``) may still insert a place between the read and the write:
    the unique constraint refuses it, and the whole write is done once more.
    """

    def once() -> Steps[list[RunResult]]:
        present = set((yield from scalars(claim_runs({result.run_id for result in results}))))
        missing = missing_run(results, present, batch=batch)
        if missing is not None:
            raise missing
        replace = on_conflict is OnConflict.REPLACE
        stored: dict[_Key, Any] = {}  # replace: (id, failed); skip: the stored result
        for run_id, keys in _keys_by_run(results).items():
            for start in range(0, len(keys), BATCH_CHUNK):
                chunk = keys[start : start + BATCH_CHUNK]
                asked = set(chunk)  # the rows may hold other pairs of these items
                if replace:
                    found = yield from rows(taken_items(run_id, chunk))
                    stored.update(
                        ((run_id, row[0], row[1]), (row[2], row[3]))
                        for row in found
                        if (row[0], row[1]) in asked
                    )
                else:
                    found = yield from rows(stored_items(run_id, chunk))
                    for kept in (yield from scored_results(found, database)):
                        if (kept.item_id, kept.repetition) in asked:
                            stored[_key(kept)] = kept
        taken: dict[int, tuple[str, bool]] = {}  # by position: the stored result's place
        for position, result in enumerate(results):
            place = stored.get(_key(result))
            if place is not None:
                taken[position] = place if replace else (place.id, place.error is not None)
        write = overwrite(results, taken, on_conflict, update_counts)
        for start in range(0, len(write.replaced), BATCH_CHUNK):
            ids = write.replaced[start : start + BATCH_CHUNK]
            yield from execute(delete_scores_of_results(ids))
            yield from execute(delete_results(ids))
        if write.written:
            yield from _insert(write.written, use_copy=use_copy)
        yield from _bump_runs(results, write.counts, now, batch)
        return (
            write.written if replace else [stored.get(_key(result), result) for result in results]
        )

    try:
        return (yield from once())
    except DuplicateError:
        pass  # the transaction was rolled back; the next step begins a new one
    return (yield from once())


def _keys_by_run(results: Sequence[RunResult]) -> dict[str, list[tuple[str, int]]]:
    """The (item, repetition) pairs of a batch's results, by run."""
    keys_by_run: dict[str, list[tuple[str, int]]] = {}
    for result in results:
        keys_by_run.setdefault(result.run_id, []).append((result.item_id, result.repetition))
    return keys_by_run


def _locate_duplicate(results: Sequence[RunResult]) -> Steps[DuplicateError | None]:
    """After a batch hit a unique constraint: which item, and why."""
    ids = [result.id for result in results]
    taken_ids: set[str] = set()
    for start in range(0, len(ids), BATCH_CHUNK):
        taken_ids.update((yield from scalars(taken_result_ids(ids[start : start + BATCH_CHUNK]))))
    taken_keys: set[_Key] = set()
    for run_id, keys in _keys_by_run(results).items():
        for start in range(0, len(keys), BATCH_CHUNK):
            found = yield from rows(taken_items(run_id, keys[start : start + BATCH_CHUNK]))
            taken_keys.update((run_id, row[0], row[1]) for row in found)
    for position, result in enumerate(results):
        if result.id in taken_ids:
            return result_exists(result.id, position=position)
        if _key(result) in taken_keys:
            return item_taken(*_key(result), position=position)
    return None


@operation(results_read)
def _get_result_by_id(call: calls.GetResultById, database: Database) -> Steps[RunResult | None]:
    row = yield from first(select_result(call.id))
    return None if row is None else (yield from scored_results([row], database))[0]


@operation(Mode.WRITE)
def _delete_results_by_run_id(call: calls.DeleteResultsByRunId, database: Database) -> Steps[None]:
    yield from each(delete_results_by_run_id_queries(call.run_id))


PLANS: Plans = {
    calls.AddResult: _add_result,
    calls.AddResults: _add_results,
    calls.GetResultById: _get_result_by_id,
    calls.DeleteResultsByRunId: _delete_results_by_run_id,
}
"""The operation of each call on results."""
