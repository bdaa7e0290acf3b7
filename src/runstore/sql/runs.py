"""Runs: creating, updating, counting, reading one, deleting and pruning them.

Statements first, each function returning its :class:`~runstore.plans.Query` (a statement
built once, with the values a call binds to it); the operations below them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from runstore import calls
from runstore.clock import moved_forward
from runstore.errors import DatabaseError
from runstore.errors import DuplicateError
from runstore.errors import RunNotFoundError
from runstore.errors import run_exists
from runstore.limits import MAX_COUNT
from runstore.models import FINISHED
from runstore.models import ExistingRun
from runstore.models import Run
from runstore.plans import AnyQuery
from runstore.plans import Mode
from runstore.plans import Plan
from runstore.plans import Query
from runstore.plans import Steps
from runstore.plans import begin
from runstore.plans import each
from runstore.plans import execute
from runstore.plans import first
from runstore.plans import one
from runstore.plans import operation
from runstore.plans import reading
from runstore.plans import retry
from runstore.plans import rows
from runstore.sql.compiler import Vacuum
from runstore.sql.compiler import one_of
from runstore.sql.compiler import returned
from runstore.sql.database import Database
from runstore.sql.database import Plans
from runstore.sql.rows import RUN_COLUMNS
from runstore.sql.rows import row_columns
from runstore.sql.rows import run_row
from runstore.sql.rows import runs_from
from runstore.stored import existing_run
from runstore.stored import new_run
from runstore.tables import result_columns
from runstore.tables import results_table
from runstore.tables import run_columns
from runstore.tables import runs_table
from runstore.tables import score_columns
from runstore.tables import scores_table
from runstore.tables import summaries_table
from runstore.tables import summary_columns
from runstore.tables import tag_columns
from runstore.tables import tags_table

__all__ = [
    "PLANS",
    "bump_counts",
    "claim_runs",
    "lock_run",
    "require_runs",
    "run_sizes",
    "select_run",
    "tag_values",
    "tagged",
    "vacuum",
]

_runs = run_columns
_results = result_columns
_scores = score_columns
_tags = tag_columns
_summaries = summary_columns

# -- statements --------------------------------------------------------------------------

_INSERT_RUN = sa.insert(runs_table)


def insert_run(run: Run) -> AnyQuery:
    return Query(_INSERT_RUN, run_row(run), duplicate=str(run_exists(run.id)))


_INSERT_TAGS = sa.insert(tags_table)
_DELETE_TAGS_OF_RUN = sa.delete(tags_table).where(_tags.run_id == sa.bindparam("run_id"))
_DELETE_SUMMARY_OF_RUN = sa.delete(summaries_table).where(
    _summaries.run_id == sa.bindparam("run_id")
)


def insert_tags(run_id: str, tags: Sequence[str], created_at: datetime) -> list[AnyQuery]:
    """Index a new run's tags (none: no statement): a row per tag, with the run's
    ``created_at`` -- the order a tag filter lists runs in."""
    if not tags:
        return []
    rows = [{"run_id": run_id, "tag": tag, "created_at": created_at} for tag in tags]
    return [Query(_INSERT_TAGS, rows)]


def replace_tags(run_id: str, tags: Sequence[str], created_at: datetime) -> list[AnyQuery]:
    """Index a run's tags anew: the old rows deleted, the new ones inserted."""
    return [Query(_DELETE_TAGS_OF_RUN, {"run_id": run_id}), *insert_tags(run_id, tags, created_at)]


_RETURNED_RUN = returned(row_columns(runs_table))
"""A run's row, for RETURNING."""

_SELECT_RUN = sa.select(*row_columns(runs_table)).where(_runs.id == sa.bindparam("run_id"))


def select_run(run_id: str) -> AnyQuery:
    """The run's row (its columns in table order)."""
    return Query(_SELECT_RUN, {"run_id": run_id})


_LOCK_RUN = sa.select(_runs.updated_at).where(_runs.id == sa.bindparam("run_id")).with_for_update()


def lock_run(run_id: str) -> Query[datetime]:
    """The run's ``updated_at``, its row locked until the transaction ends (Postgres; a
    SQLite write transaction holds the whole database)."""
    return reading(_LOCK_RUN, {"run_id": run_id})


_CLAIM_RUNS = (
    sa.select(_runs.id).where(one_of(_runs.id, "run_ids")).order_by(_runs.id).with_for_update()
)


def claim_runs(run_ids: Iterable[str]) -> Query[str]:
    """The ids of those runs that exist, their rows locked until the transaction ends, in
    id order (Postgres; a SQLite write transaction holds the whole database)."""
    return reading(_CLAIM_RUNS, {"run_ids": sorted(set(run_ids))})


_RUN_SIZES = sa.select(_runs.id, _runs.result_count).where(one_of(_runs.id, "ids"))


def run_sizes(run_ids: Iterable[str]) -> Query[str, int]:
    """(id, result count) of those runs that exist."""
    return reading(_RUN_SIZES, {"ids": sorted(set(run_ids))})


@functools.cache
def _update_statement(columns: frozenset[str], if_earlier: bool, forget: bool) -> sa.Update:
    conditions = [_runs.id == sa.bindparam("run_id")]
    if if_earlier:
        conditions.append(_runs.updated_at < sa.bindparam("new_updated_at"))
    values: dict[str, Any] = {column: sa.bindparam(f"new_{column}") for column in sorted(columns)}
    if forget:
        values[_runs.summary_key.key] = None
    return sa.update(runs_table).where(*conditions).values(values).returning(*_RETURNED_RUN)


def update_run_query(
    run_id: str, changes: Mapping[str, Any], updated_at: datetime, *, if_earlier: bool = False
) -> AnyQuery:
    """Set the given run attributes and ``updated_at``; returns the row as stored.

    ``if_earlier``: only if the stored ``updated_at`` is earlier (no row otherwise). A run
    set to a status that is not finished forgets its kept summary.
    """
    values = {**changes, "updated_at": updated_at}
    columns = {RUN_COLUMNS[name].key: value for name, value in values.items()}
    forget = "status" in changes and changes["status"] not in FINISHED
    statement = _update_statement(frozenset(columns), if_earlier, forget)
    return Query(statement, {"run_id": run_id, **{f"new_{c}": v for c, v in columns.items()}})


_FORGET_SUMMARIES = (
    sa.update(runs_table)
    .where(one_of(_runs.id, "run_ids"), _runs.summary_key.is_not(None))
    .values(summary_key=None)
)


def forget_summaries(run_ids: Iterable[str]) -> AnyQuery:
    """Clear the runs' ``summaryKey``: their kept summaries are stale. For writes that
    change what a summary covers without writing the run's row (scores); run it after
    them, in their transaction. It writes (and locks) only a run that has a current
    summary, so the writers of a run do not take turns on its row for it."""
    return Query(_FORGET_SUMMARIES, {"run_ids": sorted(set(run_ids))})


def _at_least_zero(count: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    # A replaced result moves a count from one counter to the other; one that was never
    # counted (written without update_counts) must not take a counter below zero.
    return sa.case((count < 0, 0), else_=count)


@functools.cache
def bump_statement(counted: bool) -> sa.Update:
    """Counters grow by arithmetic in the database, never read-modify-write, so concurrent
    writers cannot lose a count; a count that would pass MAX_COUNT leaves the row alone
    (no row matches), on every backend alike. Counting moves ``updated_at`` forward, and
    clears the run's ``summaryKey`` (its kept summary is stale)."""
    integer = sa.Integer()
    conditions = [
        _runs.id == sa.bindparam("run_id"),
        _runs.result_count <= sa.bindparam("results_below", type_=integer),
    ]
    values: dict[str, Any] = {
        "result_count": _runs.result_count + sa.bindparam("results", type_=integer),
        # what the run's summary covers changes: a kept one is no longer current
        "summary_key": None,
    }
    if counted:
        conditions += [
            _runs.succeeded_count <= sa.bindparam("succeeded_below", type_=integer),
            _runs.failed_count <= sa.bindparam("failed_below", type_=integer),
        ]
        now = sa.bindparam("now", type_=_runs.updated_at.type)
        values |= {
            "succeeded_count": _at_least_zero(
                _runs.succeeded_count + sa.bindparam("succeeded", type_=integer)
            ),
            "failed_count": _at_least_zero(
                _runs.failed_count + sa.bindparam("failed", type_=integer)
            ),
            "updated_at": sa.case((_runs.updated_at < now, now), else_=_runs.updated_at),
        }
    return (
        sa.update(runs_table)
        .where(*conditions)
        .values(values)
        .execution_options(preserve_rowcount=True)
    )


def bump_values(
    run_id: str, results: int, counts: tuple[int, int] | None, now: datetime
) -> dict[str, Any]:
    """The values :func:`bump_statement` binds."""
    values: dict[str, Any] = {
        "run_id": run_id,
        "results": results,
        "results_below": MAX_COUNT - max(results, 0),
    }
    if counts is not None:
        succeeded, failed = counts
        values |= {
            "succeeded": succeeded,
            "failed": failed,
            "succeeded_below": MAX_COUNT - max(succeeded, 0),
            "failed_below": MAX_COUNT - max(failed, 0),
            "now": now,
        }
    return values


def bump_counts(
    run_id: str, results: int, counts: tuple[int, int] | None, now: datetime
) -> AnyQuery:
    """Add ``results`` to a run's result count and, given ``counts``, (succeeded, failed)
    to its counters; no row changes if the run is missing or a count would pass
    :data:`~runstore.limits.MAX_COUNT`. Also locks the run until the transaction ends."""
    return Query(bump_statement(counts is not None), bump_values(run_id, results, counts, now))


_DELETE_RUN = sa.delete(runs_table).where(_runs.id == sa.bindparam("run_id"))
_DELETE_RESULTS_OF_RUN = sa.delete(results_table).where(_results.run_id == sa.bindparam("run_id"))
_DELETE_SCORES_OF_RUN = sa.delete(scores_table).where(_scores.run_id == sa.bindparam("run_id"))
_RESET_RESULT_COUNT = (
    sa.update(runs_table)
    .where(_runs.id == sa.bindparam("run_id"))
    .values(result_count=0, summary_key=None)
)


def delete_run_queries(run_id: str) -> list[AnyQuery]:
    """Delete a run with its results, scores and tags (the children first)."""
    values = {"run_id": run_id}
    return [
        Query(_DELETE_SCORES_OF_RUN, values),
        Query(_DELETE_RESULTS_OF_RUN, values),
        Query(_DELETE_TAGS_OF_RUN, values),
        Query(_DELETE_SUMMARY_OF_RUN, values),
        Query(_DELETE_RUN, values),
    ]


def delete_results_by_run_id_queries(run_id: str) -> list[AnyQuery]:
    """Delete a run's results and scores, and set its result count to 0 (and forget its
    kept summary)."""
    values = {"run_id": run_id}
    return [
        Query(_DELETE_SCORES_OF_RUN, values),
        Query(_DELETE_RESULTS_OF_RUN, values),
        Query(_RESET_RESULT_COUNT, values),
    ]


def _counted_results(*conditions: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.count())
        .select_from(results_table)
        .where(_results.run_id == _runs.id, *conditions)
        .scalar_subquery()
    )


_RECOUNT_RUN = (
    sa.update(runs_table)
    .where(_runs.id == sa.bindparam("run_id"))
    .values(
        result_count=_counted_results(),
        succeeded_count=_counted_results(_results.error.is_(None)),
        failed_count=_counted_results(_results.error.is_not(None)),
        summary_key=None,
        updated_at=sa.case(
            (
                _runs.updated_at < sa.bindparam("now", type_=_runs.updated_at.type),
                sa.bindparam("now", type_=_runs.updated_at.type),
            ),
            else_=_runs.updated_at,
        ),
    )
    .returning(*_RETURNED_RUN)
)


def recount_run_query(run_id: str, now: datetime) -> AnyQuery:
    """Set a run's counts from its stored results, in one statement; returns the run."""
    return Query(_RECOUNT_RUN, {"run_id": run_id, "now": now})


def tagged(tags: int) -> list[sa.ColumnElement[bool]]:
    """Conditions on a run: it carries each of ``tags`` tags (bound as ``tag_0``, ...),
    each looked up in the tags' primary key (run, tag) -- an alias of the tags table, so
    that a statement that walks the tags table itself does not correlate it."""
    conditions: list[sa.ColumnElement[bool]] = []
    for n in range(tags):
        other = tags_table.alias(f"tag_{n}")
        conditions.append(
            sa.exists().where(other.c.run_id == _runs.id, other.c.tag == sa.bindparam(f"tag_{n}"))
        )
    return conditions


def tag_values(tags: Sequence[str], first: int = 0) -> dict[str, str]:
    """The values :func:`tagged` binds, from the ``first``-th tag on."""
    return {f"tag_{n}": tag for n, tag in enumerate(tags) if n >= first}


@functools.cache
def _prunable(by_status: bool, by_dataset: bool, tags: int) -> sa.Select[str, int]:
    conditions = [_runs.created_at < sa.bindparam("older_than", type_=_runs.created_at.type)]
    if by_status:
        conditions.append(_runs.status == sa.bindparam("status"))
    if by_dataset:
        conditions.append(_runs.dataset_id == sa.bindparam("dataset_id"))
    conditions += tagged(tags)
    return (
        sa.select(_runs.id, _runs.result_count)
        .where(*conditions)
        .order_by(_runs.created_at, _runs.id)
        .limit(sa.bindparam("size", type_=sa.Integer()))
        .with_for_update()
    )


def prunable_runs(
    older_than: datetime,
    status: str | None,
    dataset_id: str | None,
    size: int,
    *,
    tags: Sequence[str] = (),
) -> Query[str, int]:
    """The ids and result counts of up to ``size`` runs created before ``older_than`` (with
    that status, of that dataset, carrying those tags), oldest first, locked until the
    transaction ends."""
    values = {"older_than": older_than, "status": status, "dataset_id": dataset_id, "size": size}
    statement = _prunable(status is not None, dataset_id is not None, len(tags))
    given = {key: value for key, value in values.items() if value is not None}
    return reading(statement, given | tag_values(tags))


_DELETE_RUNS = sa.delete(runs_table).where(one_of(_runs.id, "run_ids"))
_DELETE_RESULTS_OF_RUNS = sa.delete(results_table).where(one_of(_results.run_id, "run_ids"))
_DELETE_SCORES_OF_RUNS = sa.delete(scores_table).where(one_of(_scores.run_id, "run_ids"))
_DELETE_TAGS_OF_RUNS = sa.delete(tags_table).where(one_of(_tags.run_id, "run_ids"))
_DELETE_SUMMARIES_OF_RUNS = sa.delete(summaries_table).where(one_of(_summaries.run_id, "run_ids"))


def delete_runs(run_ids: Sequence[str]) -> list[AnyQuery]:
    """Delete runs with their results, scores and tags (the children first)."""
    values = {"run_ids": list(run_ids)}
    return [
        Query(_DELETE_SCORES_OF_RUNS, values),
        Query(_DELETE_RESULTS_OF_RUNS, values),
        Query(_DELETE_TAGS_OF_RUNS, values),
        Query(_DELETE_SUMMARIES_OF_RUNS, values),
        Query(_DELETE_RUNS, values),
    ]


def dangerously_clear_all_queries() -> list[AnyQuery]:
    """Delete every score, result, tag, kept summary and run."""
    tables = (scores_table, results_table, tags_table, summaries_table, runs_table)
    return [Query(sa.delete(table)) for table in tables]


_CHECKPOINT = sa.text("PRAGMA wal_checkpoint(TRUNCATE)")


def vacuum_queries(dialect: str) -> list[AnyQuery]:
    """Give the space of deleted rows back: SQLite rebuilds the database file, and moves
    the rebuilt pages from the write-ahead log into it, so the file shrinks now; Postgres
    vacuums (and analyzes) runstore's tables. Neither may run inside a transaction."""
    if dialect == "sqlite":
        return [Query(Vacuum(runs_table)), Query(_CHECKPOINT)]
    tables = (runs_table, results_table, scores_table, tags_table, summaries_table)
    return [Query(Vacuum(table)) for table in tables]


# -- operations --------------------------------------------------------------------------


def _create_run(call: calls.CreateRun, database: Database) -> Plan[Run]:
    """One statement -- or, for a run with tags, a transaction that indexes them too."""
    mode = Mode.WRITE if call.input.tags else Mode.WRITE_ONE
    return Plan(mode, _create_run_steps(call, database), lambda: _create_run(call, database))


def _create_run_steps(call: calls.CreateRun, database: Database) -> Steps[Run]:
    run = new_run(call.input, database.now())
    while True:
        try:
            yield from execute(insert_run(run))
            yield from each(insert_tags(run.id, run.tags, run.created_at))
            return run
        except DuplicateError:
            if call.if_exists is ExistingRun.ERROR:
                raise
        row = yield from first(select_run(run.id))
        if row is not None:  # else deleted since: create it after all
            return existing_run(call.input, runs_from([row])[0])


def update_run_mode(call: calls.UpdateRun) -> Mode:
    """Usually one statement; a transaction where the run's tags change (they are
    indexed anew in it)."""
    return Mode.WRITE if "tags" in call.input.changes() else Mode.WRITE_ONE


def update_run_steps(call: calls.UpdateRun, database: Database) -> Steps[Run]:
    # Usually one statement: the clock is past the stored updated_at, which moves to now.
    changes = call.input.changes()
    query = update_run_query(call.input.id, changes, database.now(), if_earlier=True)
    row = yield from first(query)
    if row is None:
        # Missing, or the stored time is ahead (another process's clock): lock and look.
        yield from begin(Mode.WRITE)
        locked = yield from first(lock_run(call.input.id))
        if locked is None:
            raise RunNotFoundError(call.input.id)
        updated_at = moved_forward(database.now(), locked[0])  # never backwards
        row = yield from one(update_run_query(call.input.id, changes, updated_at))
    run = runs_from([row])[0]
    if "tags" in changes:
        yield from each(replace_tags(run.id, run.tags, run.created_at))
    return run


@operation(Mode.READ)
def _get_run_by_id(call: calls.GetRunById, database: Database) -> Steps[Run | None]:
    row = yield from first(select_run(call.id))
    return None if row is None else runs_from([row])[0]


@operation(Mode.WRITE)
def _delete_run(call: calls.DeleteRun, database: Database) -> Steps[None]:
    yield from each(delete_run_queries(call.id))


@operation(Mode.WRITE_ONE)
def _recount_run(call: calls.RecountRun, database: Database) -> Steps[Run]:
    row = yield from first(recount_run_query(call.run_id, database.now()))
    if row is None:
        raise RunNotFoundError(call.run_id)
    return runs_from([row])[0]


PRUNE_RESULTS = 10_000
"""At most this many results deleted in one transaction of :func:`prune_runs` -- unless one
run has more, which then goes alone: a run goes whole or not at all."""


@operation(Mode.WRITE)
def _prune_runs(call: calls.PruneRuns, database: Database) -> Steps[int]:
    """Delete runs oldest first, in transactions of up to ``batch_size`` runs and
    :data:`PRUNE_RESULTS` results: each batch's runs are locked first, so that no result
    can be added to them while they go."""
    status = None if call.status is None else call.status.value
    pruned = 0
    while True:
        query = prunable_runs(
            call.older_than, status, call.dataset_id, call.batch_size, tags=call.tags
        )
        run_ids: list[str] = []
        try:
            found = yield from rows(query)
            results = 0
            for run_id, result_count in found:
                if run_ids and results + result_count > PRUNE_RESULTS:
                    break
                run_ids.append(run_id)
                results += result_count
            if run_ids:
                yield from each(delete_runs(run_ids))
        except DatabaseError as exc:
            # A batch after the first failed transiently: the batches before it stay
            # deleted, and this one runs again while the call has attempts left (the
            # policy runs the first batch again itself, as the whole call).
            if not exc.transient:
                raise
            yield from retry(Mode.WRITE)  # raises the failure, given up, when none is left
            continue
        pruned += len(run_ids)
        if len(found) < call.batch_size and len(run_ids) == len(found):
            return pruned
        yield from begin(Mode.WRITE)  # commits this batch


@operation(Mode.WRITE)
def _dangerously_clear_all(call: calls.DangerouslyClearAll, database: Database) -> Steps[None]:
    yield from each(dangerously_clear_all_queries())


def vacuum(database: Database) -> Plan[None]:
    """Outside any transaction: VACUUM may not run in one (so each statement is a
    transaction of its own)."""
    return Plan(Mode.WRITE_ONE, each(vacuum_queries(database.dialect)), lambda: vacuum(database))


def require_runs(run_ids: Sequence[str]) -> Steps[dict[str, int]]:
    """Each run's result count; RunNotFoundError for the first that does not exist."""
    sizes = {run_id: count for run_id, count in (yield from rows(run_sizes(run_ids)))}
    for run_id in run_ids:
        if run_id not in sizes:
            raise RunNotFoundError(run_id)
    return sizes


PLANS: Plans = {
    calls.CreateRun: _create_run,
    calls.GetRunById: _get_run_by_id,
    calls.DeleteRun: _delete_run,
    calls.RecountRun: _recount_run,
    calls.PruneRuns: _prune_runs,
    calls.DangerouslyClearAll: _dangerously_clear_all,
}
"""The operation of each call on runs."""
