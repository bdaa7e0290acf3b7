"""runstore's SQL: every statement it sends, each with the values a call binds to it.

Each function returns a :class:`Query` -- a statement together with its bind values, and
what a constraint violation would mean for it -- so no two places have to agree on
parameter names. Statements are built once: at import, or once per shape (which filters,
keyset or not, which columns an update sets), so SQLAlchemy's compiled cache serves every
call after the first. The few whose SQL differs between SQLite and Postgres take the
dialect's name. Nothing here executes: :mod:`runstore.operations` strings queries into
storage calls, and the adapters run them on SQLAlchemy connections.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from runstore.cursors import Position
from runstore.export import RESULT_FIELDS
from runstore.limits import MAX_COUNT
from runstore.models import ResultFilters, ResultOrder, Run, RunFilters, RunResult, Score
from runstore.schema import attribute_name
from runstore.tables import results_table, runs_table, scores_table
from runstore.types import JsonColumn, ScoreMapColumn, UTCDateTime, score_map, utc_text

__all__ = [
    "RESULT_ATTRIBUTES",
    "RUN_ATTRIBUTES",
    "SCORE_ATTRIBUTES",
    "CopyRows",
    "Query",
    "Vacuum",
    "bump_counts",
    "claim_runs",
    "clear_all",
    "comparison_pairs",
    "comparison_scores",
    "copy_results",
    "copy_scores",
    "count_results",
    "count_runs",
    "delete_results",
    "delete_results_of_run",
    "delete_run",
    "delete_runs",
    "delete_scores_of_results",
    "insert_result",
    "insert_result_counting",
    "insert_results",
    "insert_run",
    "insert_scores",
    "items_after",
    "latency_aggregates",
    "latency_at",
    "lock_run",
    "prunable_runs",
    "recount_run",
    "result_rows_batch",
    "results_batch",
    "results_of",
    "results_page",
    "run_sizes",
    "runs_batch",
    "runs_page",
    "score_aggregates",
    "score_value_at",
    "scores_batch",
    "scores_of_results",
    "select_result",
    "select_run",
    "select_scores",
    "stored_items",
    "summary",
    "taken_items",
    "taken_result_ids",
    "taken_scores",
    "update_run",
    "upsert_scores",
    "vacuum",
]

_runs = runs_table.c
_results = results_table.c
_scores = scores_table.c


def _attributes(table: sa.Table) -> tuple[str, ...]:
    return tuple(attribute_name(column.name) for column in table.columns)


RUN_ATTRIBUTES = _attributes(runs_table)
"""The attribute each column of a runs row fills, in the order statements select them."""
RESULT_ATTRIBUTES = (*_attributes(results_table), "scores")
"""The same for a results row: the table's columns, then the result's scores."""
SCORE_ATTRIBUTES = _attributes(scores_table)
"""The same for a scores row."""


def _keys(table: sa.Table) -> tuple[tuple[str, str], ...]:
    return tuple(zip((c.key for c in table.columns), _attributes(table), strict=True))


_RUN_KEYS = _keys(runs_table)
_RESULT_KEYS = _keys(results_table)
_SCORE_KEYS = _keys(scores_table)
_RUN_COLUMN_OF = {attribute: runs_table.columns[key] for key, attribute in _RUN_KEYS}
_ATTRIBUTE_OF = dict(_RESULT_KEYS)


class _OneOf(FunctionElement[Any]):
    """``column IN (...)`` with a list given at execution: see :func:`one_of`."""

    inherit_cache = True
    name = "one_of"
    type = sa.types.NullType()  # not Boolean: SQLite would compare the test with 1


def one_of(column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[Any]:
    """``column`` is one of the list bound as ``name`` when the statement runs.

    On Postgres one array parameter (``column = ANY(:name)``): the statement's text and
    plan are the same for every length, where an expanded ``IN`` -- one parameter per
    value -- is rendered, parsed and planned anew for each length, a real cost for the
    lists of a thousand ids that batch writes look up and delete. Elsewhere an expanding
    ``IN``.
    """
    return _OneOf(column, sa.bindparam(name, expanding=True))


@compiles(_OneOf)
def _one_of(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = element.clauses.clauses
    return compiler.process(column.in_(sa.bindparam(values.key, expanding=True)), **kw)


@compiles(_OneOf, "postgresql")
def _one_of_array(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = element.clauses.clauses
    array = sa.bindparam(values.key, type_=postgresql.ARRAY(column.type))
    return compiler.process(column == sa.any_(array), **kw)


_SCALE = 2.0**64
_TINY = 2.0**-900
_LARGEST_SCALED = sys.float_info.max / _SCALE
_SMALLEST = 5e-324  # the smallest subnormal double


def mean(value: sa.ColumnElement[float]) -> sa.ColumnElement[float]:
    """``avg(value)`` for any finite doubles, never an overflow error: NULL for no rows.

    Postgres' ``avg`` sums the values and their squares, and fails with "value out of
    range" past about ``1e154`` (squares) or ``1e308`` (sums), where the mean itself is
    a finite double; its arithmetic also fails where a result rounds to zero. Here the
    values are summed scaled down by 2**64 -- exact, as any scaling by a power of two is
    among normal doubles, so the mean is the one a plain sum gives wherever that does not
    overflow -- and those too small to scale (below 2**-900) are summed apart, unscaled;
    a mean of theirs that rounds to zero is zero. :func:`runstore.figures.mean` is the
    same in Python.
    """
    count = sa.func.nullif(sa.func.count(value), 0)
    large = sa.func.abs(value) >= _float(_TINY)
    scaled = sa.func.coalesce(sa.func.sum(value * _float(1 / _SCALE)).filter(large), 0.0) / count
    scaled = sa.case(  # rounding may take a mean near the largest double a step past it
        (scaled > _float(_LARGEST_SCALED), _float(_LARGEST_SCALED)),
        (scaled < _float(-_LARGEST_SCALED), _float(-_LARGEST_SCALED)),
        else_=scaled,
    )
    small_sum = sa.func.coalesce(sa.func.sum(value).filter(sa.not_(large)), 0.0)
    small = sa.case(
        (sa.func.abs(small_sum) * 2 <= count * _float(_SMALLEST), 0.0),
        else_=small_sum / count,
    )
    return scaled * _float(_SCALE) + small


def _float(value: float) -> sa.ColumnElement[float]:
    return sa.literal(value, sa.Double())


@dataclass(frozen=True, slots=True)
class Query:
    """One statement, the values it binds, and what a constraint violation means for it.

    ``values`` is one mapping, or a list of them to run the statement once per mapping.
    """

    statement: sa.Executable
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    duplicate: str | None = None
    """What a unique-constraint violation means (for the ``DuplicateError``)."""
    missing_run: str | None = None
    """The run a foreign-key violation means is missing (a ``RunNotFoundError``)."""


@dataclass(frozen=True, slots=True)
class CopyRows:
    """Rows for Postgres' ``COPY ... FROM STDIN``, as values by column key.

    The one stream runstore hands to the driver itself: SQLAlchemy has no COPY, and it
    records a large batch several times faster than any INSERT (see
    :mod:`runstore.pgcopy`). Values go through the columns' own bind processors.
    """

    table: sa.Table
    rows: Sequence[Mapping[str, Any]]
    duplicate: str | None = None


def _values(record: Any, keys: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {key: getattr(record, attribute) for key, attribute in keys}


def _returned(table: sa.Table) -> list[sa.ColumnElement[Any]]:
    """Every column, qualified by its table, for RETURNING.

    SQLAlchemy writes SQLite's RETURNING columns unqualified, and SQLite reads an
    unqualified double-quoted name that matches no column as a string literal; qualified,
    a missing column is an error instead of a wrong value.
    """
    return [
        sa.literal_column(f'{table.name}."{column.name}"', type_=column.type)
        for column in table.columns
    ]


class _ScoresOf(FunctionElement[dict[str, float]]):
    """A result's scores as a column: see :func:`_scores_of`."""

    inherit_cache = True
    name = "scores_of"
    type = ScoreMapColumn()


def _scores_of(result_id: sa.ColumnElement[Any]) -> sa.ColumnElement[dict[str, float]]:
    """The scores of the result with ``result_id``: on Postgres aggregated in the
    statement (see ``score_map``); on SQLite NULL -- which reads as no scores -- and read
    exactly by :func:`scores_of_results`, which its read operations run next."""
    return _ScoresOf(result_id)


@compiles(_ScoresOf)
def _scores_of_elsewhere(element: _ScoresOf, compiler: SQLCompiler, **kw: Any) -> str:
    return "NULL"


@compiles(_ScoresOf, "postgresql")
def _scores_of_postgres(element: _ScoresOf, compiler: SQLCompiler, **kw: Any) -> str:
    (result_id,) = element.clauses.clauses
    scores = sa.select(score_map(_scores.name, _scores.value)).where(_scores.resultId == result_id)
    return compiler.process(scores.scalar_subquery(), **kw)


# -- runs ------------------------------------------------------------------------------

_INSERT_RUN = sa.insert(runs_table)


def insert_run(run: Run) -> Query:
    return Query(_INSERT_RUN, _values(run, _RUN_KEYS), duplicate=f"run {run.id!r} already exists")


_SELECT_RUN = sa.select(runs_table).where(_runs.id == sa.bindparam("run_id"))


def select_run(run_id: str) -> Query:
    """The run's row (columns in :data:`RUN_ATTRIBUTES` order)."""
    return Query(_SELECT_RUN, {"run_id": run_id})


_LOCK_RUN = sa.select(_runs.updatedAt).where(_runs.id == sa.bindparam("run_id")).with_for_update()


def lock_run(run_id: str) -> Query:
    """The run's ``updatedAt``, its row locked until the transaction ends (Postgres; a
    SQLite write transaction holds the whole database)."""
    return Query(_LOCK_RUN, {"run_id": run_id})


_CLAIM_RUNS = (
    sa.select(_runs.id).where(one_of(_runs.id, "run_ids")).order_by(_runs.id).with_for_update()
)


def claim_runs(run_ids: Iterable[str]) -> Query:
    """The ids of those runs that exist, their rows locked until the transaction ends, in
    id order (Postgres; a SQLite write transaction holds the whole database)."""
    return Query(_CLAIM_RUNS, {"run_ids": sorted(set(run_ids))})


@functools.cache
def _update_run(columns: frozenset[str], if_earlier: bool) -> sa.Update:
    conditions = [_runs.id == sa.bindparam("run_id")]
    if if_earlier:
        conditions.append(_runs.updatedAt < sa.bindparam("new_updatedAt"))
    return (
        sa.update(runs_table)
        .where(*conditions)
        .values({column: sa.bindparam(f"new_{column}") for column in sorted(columns)})
        .returning(*_returned(runs_table))
    )


def update_run(
    run_id: str, changes: Mapping[str, Any], updated_at: datetime, *, if_earlier: bool = False
) -> Query:
    """Set the given run attributes and ``updated_at``; returns the row as stored.

    ``if_earlier``: only if the stored ``updated_at`` is earlier (no row otherwise).
    """
    values = {**changes, "updated_at": updated_at}
    columns = {_RUN_COLUMN_OF[name].key: value for name, value in values.items()}
    statement = _update_run(frozenset(columns), if_earlier)
    return Query(statement, {"run_id": run_id, **{f"new_{c}": v for c, v in columns.items()}})


def _at_least_zero(count: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    # A replaced result moves a count from one counter to the other; one that was never
    # counted (written without update_counts) must not take a counter below zero.
    return sa.case((count < 0, 0), else_=count)


@functools.cache
def _bump(counted: bool) -> sa.Update:
    """Counters grow by arithmetic in the database, never read-modify-write, so concurrent
    writers cannot lose a count; a count that would pass MAX_COUNT leaves the row alone
    (no row matches), on every backend alike. Counting moves ``updatedAt`` forward."""
    integer = sa.Integer()
    conditions = [
        _runs.id == sa.bindparam("run_id"),
        _runs.resultCount <= sa.bindparam("results_below", type_=integer),
    ]
    values: dict[str, Any] = {
        "resultCount": _runs.resultCount + sa.bindparam("results", type_=integer)
    }
    if counted:
        conditions += [
            _runs.succeededCount <= sa.bindparam("succeeded_below", type_=integer),
            _runs.failedCount <= sa.bindparam("failed_below", type_=integer),
        ]
        now = sa.bindparam("now", type_=_runs.updatedAt.type)
        values |= {
            "succeededCount": _at_least_zero(
                _runs.succeededCount + sa.bindparam("succeeded", type_=integer)
            ),
            "failedCount": _at_least_zero(
                _runs.failedCount + sa.bindparam("failed", type_=integer)
            ),
            "updatedAt": sa.case((_runs.updatedAt < now, now), else_=_runs.updatedAt),
        }
    return (
        sa.update(runs_table)
        .where(*conditions)
        .values(values)
        .execution_options(preserve_rowcount=True)
    )


def _bump_values(
    run_id: str, results: int, counts: tuple[int, int] | None, now: datetime
) -> dict[str, Any]:
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


def bump_counts(run_id: str, results: int, counts: tuple[int, int] | None, now: datetime) -> Query:
    """Add ``results`` to a run's result count and, given ``counts``, (succeeded, failed)
    to its counters; no row changes if the run is missing or a count would pass
    :data:`~runstore.limits.MAX_COUNT`. Also locks the run until the transaction ends."""
    return Query(_bump(counts is not None), _bump_values(run_id, results, counts, now))


_DELETE_RUN = sa.delete(runs_table).where(_runs.id == sa.bindparam("run_id"))
_DELETE_RESULTS_OF_RUN = sa.delete(results_table).where(_results.runId == sa.bindparam("run_id"))
_DELETE_SCORES_OF_RUN = sa.delete(scores_table).where(_scores.runId == sa.bindparam("run_id"))
_RESET_RESULT_COUNT = (
    sa.update(runs_table).where(_runs.id == sa.bindparam("run_id")).values(resultCount=0)
)


def delete_run(run_id: str) -> list[Query]:
    """Delete a run with its results and scores (in this order: the children first)."""
    values = {"run_id": run_id}
    return [
        Query(_DELETE_SCORES_OF_RUN, values),
        Query(_DELETE_RESULTS_OF_RUN, values),
        Query(_DELETE_RUN, values),
    ]


def delete_results_of_run(run_id: str) -> list[Query]:
    """Delete a run's results and scores, and set its result count to 0."""
    values = {"run_id": run_id}
    return [
        Query(_DELETE_SCORES_OF_RUN, values),
        Query(_DELETE_RESULTS_OF_RUN, values),
        Query(_RESET_RESULT_COUNT, values),
    ]


def clear_all() -> list[Query]:
    return [Query(sa.delete(table)) for table in (scores_table, results_table, runs_table)]


class Vacuum(sa.Executable, sa.ClauseElement):
    """``VACUUM``: of a table on Postgres (with ``ANALYZE``), of the whole file on
    SQLite."""

    inherit_cache = False

    def __init__(self, table: sa.Table) -> None:
        self.table = table


@compiles(Vacuum)
def _vacuum(element: Vacuum, compiler: SQLCompiler, **kw: Any) -> str:
    if compiler.dialect.name == "sqlite":
        return "VACUUM"
    return f"VACUUM (ANALYZE) {compiler.preparer.format_table(element.table)}"


_CHECKPOINT = sa.text("PRAGMA wal_checkpoint(TRUNCATE)")


def vacuum(dialect: str) -> list[Query]:
    """Give the space of deleted rows back: SQLite rebuilds the database file, and moves
    the rebuilt pages from the write-ahead log into it, so the file shrinks now; Postgres
    vacuums (and analyzes) runstore's tables. Neither may run inside a transaction."""
    if dialect == "sqlite":
        return [Query(Vacuum(runs_table)), Query(_CHECKPOINT)]
    return [Query(Vacuum(table)) for table in (runs_table, results_table, scores_table)]


def _counted_results(*conditions: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.count())
        .select_from(results_table)
        .where(_results.runId == _runs.id, *conditions)
        .scalar_subquery()
    )


_RECOUNT_RUN = (
    sa.update(runs_table)
    .where(_runs.id == sa.bindparam("run_id"))
    .values(
        resultCount=_counted_results(),
        succeededCount=_counted_results(_results.error.is_(None)),
        failedCount=_counted_results(_results.error.is_not(None)),
        updatedAt=sa.case(
            (
                _runs.updatedAt < sa.bindparam("now", type_=_runs.updatedAt.type),
                sa.bindparam("now", type_=_runs.updatedAt.type),
            ),
            else_=_runs.updatedAt,
        ),
    )
    .returning(*_returned(runs_table))
)


def recount_run(run_id: str, now: datetime) -> Query:
    """Set a run's counts from its stored results, in one statement; returns the run."""
    return Query(_RECOUNT_RUN, {"run_id": run_id, "now": now})


@functools.cache
def _prunable(by_status: bool, by_dataset: bool) -> sa.Select[Any]:
    conditions = [_runs.createdAt < sa.bindparam("older_than", type_=_runs.createdAt.type)]
    if by_status:
        conditions.append(_runs.status == sa.bindparam("status"))
    if by_dataset:
        conditions.append(_runs.datasetId == sa.bindparam("dataset_id"))
    return (
        sa.select(_runs.id, _runs.resultCount)
        .where(*conditions)
        .order_by(_runs.createdAt, _runs.id)
        .limit(sa.bindparam("size", type_=sa.Integer()))
        .with_for_update()
    )


def prunable_runs(
    older_than: datetime, status: str | None, dataset_id: str | None, size: int
) -> Query:
    """The ids and result counts of up to ``size`` runs created before ``older_than`` (with
    that status, of that dataset), oldest first, locked until the transaction ends."""
    values = {"older_than": older_than, "status": status, "dataset_id": dataset_id, "size": size}
    statement = _prunable(status is not None, dataset_id is not None)
    return Query(statement, {key: value for key, value in values.items() if value is not None})


_DELETE_RUNS = sa.delete(runs_table).where(one_of(_runs.id, "run_ids"))
_DELETE_RESULTS_OF_RUNS = sa.delete(results_table).where(one_of(_results.runId, "run_ids"))
_DELETE_SCORES_OF_RUNS = sa.delete(scores_table).where(one_of(_scores.runId, "run_ids"))


def delete_runs(run_ids: Sequence[str]) -> list[Query]:
    """Delete runs with their results and scores (the children first)."""
    values = {"run_ids": list(run_ids)}
    return [
        Query(_DELETE_SCORES_OF_RUNS, values),
        Query(_DELETE_RESULTS_OF_RUNS, values),
        Query(_DELETE_RUNS, values),
    ]


# -- results ---------------------------------------------------------------------------

_INSERT_RESULTS = sa.insert(results_table)


def _duplicate_result(result: RunResult) -> str:
    return (
        f"result {result.id!r} or a result of run {result.run_id!r} "
        f"for item {result.item_id!r} already exists"
    )


def insert_result(result: RunResult) -> Query:
    """Record one result (its run is known to exist)."""
    return Query(
        _INSERT_RESULTS,
        _values(result, _RESULT_KEYS),
        duplicate=_duplicate_result(result),
        missing_run=result.run_id,
    )


def _result_bind(column: sa.Column[Any]) -> str:
    # Not the column's own key: an UPDATE (the CTE's) would take a parameter named like
    # one of its table's columns (id, startedAt, ...) as a value to SET.
    return f"result_{column.key}"


@functools.cache
def _insert_counting(counted: bool) -> sa.Insert:
    counting = _bump(counted).returning(_runs.id).cte("counting")
    row = [
        sa.bindparam(_result_bind(column), type_=column.type) for column in results_table.columns
    ]
    return (
        sa.insert(results_table)
        .from_select(
            [column.name for column in results_table.columns],
            sa.select(*row).select_from(counting),
        )
        .add_cte(counting)
        .execution_options(preserve_rowcount=True)
    )


def insert_result_counting(result: RunResult, counts: tuple[int, int] | None) -> Query:
    """Postgres: record one result and count it on its run, in one statement (a
    data-modifying ``WITH``). Nothing is written, and the row count is 0, if the run is
    missing or a count would pass the limit (see :func:`bump_counts`)."""
    row = {
        _result_bind(column): getattr(result, attribute)
        for column, (_, attribute) in zip(results_table.columns, _RESULT_KEYS, strict=True)
    }
    values = row | _bump_values(result.run_id, 1, counts, result.created_at)
    return Query(
        _insert_counting(counts is not None),
        values,
        duplicate=_duplicate_result(result),
        missing_run=result.run_id,
    )


def insert_results(results: Sequence[RunResult]) -> Query:
    """Record results whose runs are known to exist, one statement execution per row."""
    return Query(
        _INSERT_RESULTS,
        [_values(result, _RESULT_KEYS) for result in results],
        duplicate="a result of this batch already exists",
    )


def copy_results(results: Sequence[RunResult]) -> CopyRows:
    """:func:`insert_results` as a ``COPY`` stream (Postgres only)."""
    rows = [_values(result, _RESULT_KEYS) for result in results]
    return CopyRows(results_table, rows, duplicate="a result of this batch already exists")


_SELECT_RESULT = sa.select(results_table, _scores_of(_results.id)).where(
    _results.id == sa.bindparam("result_id")
)


def select_result(result_id: str) -> Query:
    """The result's row (columns in :data:`RESULT_ATTRIBUTES` order)."""
    return Query(_SELECT_RESULT, {"result_id": result_id})


_TAKEN_IDS = sa.select(_results.id).where(one_of(_results.id, "ids"))
# Lists of item ids and of repetitions, not of (item, repetition) pairs: Postgres finds
# those in the unique (run, item, repetition) index, where it would check a list of pairs
# against every row of the run. The rows may hold pairs not asked for (an item asked for
# repetition 0 alone, when another item's repetition 1 is asked for too); callers keep
# the pairs they asked for.
_ITEM_KEYS = (
    _results.runId == sa.bindparam("run_id"),
    one_of(_results.itemId, "items"),
    one_of(_results.repetition, "repetitions"),
)
_TAKEN_ITEMS = sa.select(
    _results.itemId, _results.repetition, _results.id, _results.error.is_not(None)
).where(*_ITEM_KEYS)


def taken_result_ids(ids: Sequence[str]) -> Query:
    """Which of these result ids are stored."""
    return Query(_TAKEN_IDS, {"ids": list(ids)})


def taken_items(run_id: str, keys: Sequence[tuple[str, int]]) -> Query:
    """Which of these (item, repetition) pairs already have a result in the run: each
    with its result's id and whether it failed (and maybe other pairs of these items and
    repetitions: see ``_ITEM_KEYS``)."""
    return Query(_TAKEN_ITEMS, _item_keys(run_id, keys))


def _item_keys(run_id: str, keys: Sequence[tuple[str, int]]) -> dict[str, Any]:
    items = list(dict.fromkeys(item for item, _ in keys))
    repetitions = list(dict.fromkeys(repetition for _, repetition in keys))
    return {"run_id": run_id, "items": items, "repetitions": repetitions}


_STORED_ITEMS = sa.select(results_table, _scores_of(_results.id)).where(*_ITEM_KEYS)


def stored_items(run_id: str, keys: Sequence[tuple[str, int]]) -> Query:
    """The stored results of these (item, repetition) pairs of a run, with their scores
    (columns as :data:`RESULT_ATTRIBUTES`), and maybe of other pairs (see ``_ITEM_KEYS``)."""
    return Query(_STORED_ITEMS, _item_keys(run_id, keys))


_DELETE_RESULTS = sa.delete(results_table).where(one_of(_results.id, "result_ids"))


def delete_results(result_ids: Sequence[str]) -> Query:
    """Delete results by id (their scores first: :func:`delete_scores_of_results`)."""
    return Query(_DELETE_RESULTS, {"result_ids": list(result_ids)})


_DELETE_SCORES_OF_RESULTS = sa.delete(scores_table).where(one_of(_scores.resultId, "result_ids"))


def delete_scores_of_results(result_ids: Sequence[str]) -> Query:
    return Query(_DELETE_SCORES_OF_RESULTS, {"result_ids": list(result_ids)})


def _next_items(run_id: str, side: int) -> sa.Subquery:
    return (
        sa.select(results_table, _scores_of(_results.id), sa.literal(side, sa.Integer()))
        .where(_results.runId == sa.bindparam(run_id), _results.itemId > sa.bindparam("after"))
        .order_by(_results.itemId, _results.repetition)
        .limit(sa.bindparam("size", type_=sa.Integer()))
        .subquery()
    )


_both = sa.union_all(
    _next_items("baseline", 0).select(), _next_items("candidate", 1).select()
).subquery("both")
_side = list(_both.c)[-1]
_ITEMS_AFTER = (
    sa.select(_both)
    .order_by(_both.c.itemId, _side, _both.c.repetition)
    .limit(sa.bindparam("size", type_=sa.Integer()))
)


def items_after(baseline: str, candidate: str, after_item: str, size: int) -> Query:
    """The next ``size`` results of two runs together, in the database's ``item_id``
    order (each run's own read from its (run, item) index), so that an item's results
    are adjacent, the baseline's first, each run's in repetition order; columns as
    :data:`RESULT_ATTRIBUTES`, then 0 for the baseline's and 1 for the candidate's (the
    two may be the same run)."""
    values = {"baseline": baseline, "candidate": candidate, "after": after_item, "size": size}
    return Query(_ITEMS_AFTER, values)


# -- scores ----------------------------------------------------------------------------

_RESULTS_OF = (
    sa.select(_results.id, _results.runId)
    .where(one_of(_results.id, "ids"))
    .order_by(_results.id)
    .with_for_update(read=True, key_share=True)
)


def results_of(result_ids: Iterable[str]) -> Query:
    """(id, run id) of those results that exist, each kept from deletion until the
    transaction ends (Postgres ``FOR KEY SHARE``, in id order)."""
    return Query(_RESULTS_OF, {"ids": sorted(result_ids)})


def _duplicate_score(score: Score) -> str:
    return f"result {score.result_id!r} already has a score {score.name!r}"


_INSERT_SCORES = sa.insert(scores_table)


def insert_scores(scores: Sequence[Score]) -> Query:
    return Query(
        _INSERT_SCORES,
        [_values(score, _SCORE_KEYS) for score in scores],
        duplicate="a score of this batch already exists",
    )


def copy_scores(scores: Sequence[Score]) -> CopyRows:
    """:func:`insert_scores` as a ``COPY`` stream (Postgres only)."""
    rows = [_values(score, _SCORE_KEYS) for score in scores]
    return CopyRows(scores_table, rows, duplicate="a score of this batch already exists")


_OVERWRITTEN = ("value", "label", "explanation", "metadata", "createdAt")


@functools.cache
def _upsert_scores(dialect: str) -> sa.Insert:
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(scores_table)
    upsert: sa.Insert = insert.on_conflict_do_update(
        index_elements=[_scores.resultId, _scores.name],
        set_={name: insert.excluded[name] for name in _OVERWRITTEN},
    )
    return upsert.returning(*_returned(scores_table), sort_by_parameter_order=True)


def upsert_scores(scores: Sequence[Score], dialect: str) -> Query:
    """Record scores, overwriting the value, label, explanation, metadata and time of a
    stored score of the same (result, name) -- which keeps its id. Returns the rows as
    stored, in the order given."""
    return Query(_upsert_scores(dialect), [_values(score, _SCORE_KEYS) for score in scores])


_SCORES_OF_RESULTS = sa.select(_scores.resultId, _scores.name, _scores.value).where(
    one_of(_scores.resultId, "result_ids")
)


def scores_of_results(result_ids: Sequence[str]) -> Query:
    """(result id, name, value) of the scores of these results: SQLite's reads of results
    take their scores from here, each value a REAL as stored (see ``score_map``)."""
    return Query(_SCORES_OF_RESULTS, {"result_ids": list(result_ids)})


_TAKEN_SCORES = sa.select(_scores.resultId, _scores.name).where(
    one_of(_scores.resultId, "result_ids")
)


def taken_scores(result_ids: Sequence[str]) -> Query:
    """(result id, name) of the stored scores of these results."""
    return Query(_TAKEN_SCORES, {"result_ids": list(result_ids)})


_SCORE_ORDER = (_scores.name, _scores.value, _scores.id)


@functools.cache
def _select_scores(by_result: bool, by_name: bool, keyset: bool, limited: bool) -> sa.Select[Any]:
    conditions = [_scores.runId == sa.bindparam("run_id")]
    if by_result:
        conditions.append(_scores.resultId == sa.bindparam("result_id"))
    if by_name:
        conditions.append(_scores.name == sa.bindparam("name"))
    if keyset:
        mark = [sa.bindparam(f"after_{column.key}", type_=column.type) for column in _SCORE_ORDER]
        conditions.append(sa.tuple_(*_SCORE_ORDER) > sa.tuple_(*mark))
    statement = sa.select(scores_table).where(*conditions).order_by(*_SCORE_ORDER)
    if limited:
        statement = statement.limit(sa.bindparam("limit", type_=sa.Integer()))
    return statement


def _scores_query(
    run_id: str,
    result_id: str | None,
    name: str | None,
    after: Score | None,
    limit: int | None,
) -> Query:
    values: dict[str, Any] = {"run_id": run_id, "result_id": result_id, "name": name}
    if after is not None:
        values |= {f"after_{column.key}": getattr(after, column.key) for column in _SCORE_ORDER}
    if limit is not None:
        values["limit"] = limit
    shape = (result_id is not None, name is not None, after is not None, limit is not None)
    statement = _select_scores(*shape)
    return Query(statement, {key: value for key, value in values.items() if value is not None})


def select_scores(run_id: str, result_id: str | None, name: str | None) -> Query:
    """A run's scores (of one result, of one name), by name, value and id."""
    return _scores_query(run_id, result_id, name, None, None)


def scores_batch(
    run_id: str, result_id: str | None, name: str | None, after: Score | None, size: int
) -> Query:
    """The next ``size`` scores of :func:`select_scores`, after ``after``."""
    return _scores_query(run_id, result_id, name, after, size)


# -- lists -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Listing:
    """A list's table and total order: a key (a timestamp, a latency), then the id."""

    table: sa.Table
    key: sa.Column[Any]
    id: sa.Column[Any]
    descending: bool


_RUNS = _Listing(runs_table, _runs.createdAt, _runs.id, descending=True)
_RESULTS = {
    ResultOrder.EXECUTION: _Listing(results_table, _results.startedAt, _results.id, False),
    ResultOrder.SLOWEST: _Listing(results_table, _results.latency, _results.id, True),
}


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a list's statement depends on, besides its listing (never the values)."""

    equal: tuple[str, ...]
    """Columns that must equal a value."""
    failed: bool | None = None
    """Results: only those with an ``error`` (True) or without (False)."""
    score: tuple[bool, bool] | None = None
    """Results: only those with a score of a name, at least (True, _) and at most (_, True)
    a value."""
    keyset: bool = False
    limited: bool = False
    skipping: bool = False
    """Rows are skipped by an offset."""
    total: str | None = None
    """How each row carries the total: "count" (counted), "run" (the run's result count)."""


def _filter_name(column: str) -> str:
    return f"filter_{column}"


def _conditions(table: sa.Table, shape: _Shape) -> list[sa.ColumnElement[bool]]:
    conditions = [
        table.columns[column]
        == sa.bindparam(_filter_name(column), type_=table.columns[column].type)
        for column in shape.equal
    ]
    if shape.failed is not None:
        error = table.columns["error"]
        conditions.append(error.is_not(None) if shape.failed else error.is_(None))
    if shape.score is not None:
        at_least, at_most = shape.score
        scored = [_scores.resultId == table.columns["id"], _scores.name == sa.bindparam("score")]
        if at_least:
            scored.append(_scores.value >= sa.bindparam("score_min", type_=_scores.value.type))
        if at_most:
            scored.append(_scores.value <= sa.bindparam("score_max", type_=_scores.value.type))
        conditions.append(sa.exists().where(*scored))
    return conditions


@functools.cache
def _list_statement(listing: _Listing, shape: _Shape) -> sa.Select[Any]:
    """The rows of a list in order; bind names as :func:`_list_query` fills them.

    A page after an offset (``skipping``) is chosen in a subquery and its columns read
    from there, so that work done for every column read (JSON selected as text, a result's
    scores) is done for the page's rows only, not for every row the offset skips; the
    outer query then sorts just the page's rows.
    """
    table = listing.table
    conditions = _conditions(table, shape)
    if shape.total == "count":
        total: Any = sa.select(sa.func.count()).select_from(table).where(*conditions)
        total = total.correlate(None).scalar_subquery()
    elif shape.total == "run":
        run_id = sa.bindparam(_filter_name("runId"), type_=_runs.id.type)
        total = sa.select(_runs.resultCount).where(_runs.id == run_id).scalar_subquery()
        total = sa.func.coalesce(total, 0)
    if shape.keyset:
        key = sa.tuple_(listing.key, listing.id)
        mark = sa.tuple_(
            sa.bindparam("after_key", type_=listing.key.type),
            sa.bindparam("after_id", type_=listing.id.type),
        )
        conditions.append(key < mark if listing.descending else key > mark)
    scored = table is results_table
    page = sa.select(table).where(*conditions).order_by(*_ordering(listing, table))
    if shape.limited:
        page = page.limit(sa.bindparam("limit", type_=sa.Integer())).offset(
            sa.bindparam("offset", type_=sa.BigInteger())
        )
    if not shape.skipping:
        extra = [_scores_of(_results.id)] if scored else []
        if shape.total is not None:
            extra.append(total.label("total"))
        return page.add_columns(*extra)
    if shape.total is not None:
        page = page.add_columns(total.label("total"))
    rows = page.subquery("page")
    columns: list[Any] = [rows.columns[column.key] for column in table.columns]
    if scored:
        columns.append(_scores_of(rows.columns["id"]))
    if shape.total is not None:
        columns.append(rows.columns["total"])
    return sa.select(*columns).order_by(*_ordering(listing, rows))


def _ordering(listing: _Listing, rows: sa.Table | sa.Subquery) -> list[sa.ColumnElement[Any]]:
    """The list's total order, on the table or on a subquery of it."""
    order = [rows.columns[listing.key.key], rows.columns[listing.id.key]]
    return [column.desc() if listing.descending else column.asc() for column in order]


def _list_query(
    listing: _Listing,
    equal: Mapping[str, Any],
    after: Position | None,
    limit: int | None,
    offset: int,
    *,
    total: str | None,
    filters: ResultFilters | None = None,
) -> Query:
    values = {_filter_name(column): value for column, value in equal.items()}
    shape = _Shape(
        equal=tuple(equal),
        keyset=after is not None,
        limited=limit is not None,
        skipping=limit is not None and offset > 0,
        total=total,
    )
    if filters is not None:
        shape, extra = _result_filters(shape, filters)
        values |= extra
    if after is not None:
        values["after_key"] = after.key
        values["after_id"] = after.id
    if limit is not None:
        values["limit"] = limit
        values["offset"] = offset
    return Query(_list_statement(listing, shape), values)


def _result_filters(shape: _Shape, filters: ResultFilters) -> tuple[_Shape, dict[str, Any]]:
    """The shape and values of a results list's filters beyond the run."""
    values: dict[str, Any] = {}
    equal = shape.equal
    if filters.item_id is not None:
        equal = (*equal, "itemId")
        values[_filter_name("itemId")] = filters.item_id
    score = None
    if filters.score is not None:
        score = (filters.score.min is not None, filters.score.max is not None)
        values["score"] = filters.score.name
        values |= {"score_min": filters.score.min, "score_max": filters.score.max}
        values = {key: value for key, value in values.items() if value is not None}
    filtered = filters.has_error is not None or filters.item_id is not None or score is not None
    total = "count" if filtered and shape.total is not None else shape.total
    changed = dataclasses.replace(
        shape, equal=equal, failed=filters.has_error, score=score, total=total
    )
    return changed, values


def _run_filters(filters: RunFilters) -> dict[str, Any]:
    return {_RUN_COLUMN_OF[name].key: value for name, value in filters.given().items()}


def runs_page(filters: RunFilters, after: Position | None, limit: int | None, offset: int) -> Query:
    """A page of runs, newest first; each row ends with the total of matching runs."""
    return _list_query(_RUNS, _run_filters(filters), after, limit, offset, total="count")


def count_runs(filters: RunFilters) -> Query:
    return _count_query(_RUNS, _run_filters(filters), None)


def runs_batch(filters: RunFilters, after: Position | None, size: int) -> Query:
    """The next ``size`` runs after ``after``, without a total."""
    return _list_query(_RUNS, _run_filters(filters), after, size, 0, total=None)


def results_page(
    run_id: str, filters: ResultFilters, after: Position | None, limit: int | None, offset: int
) -> Query:
    """A page of a run's results; each row ends with the result's scores and the total
    of matching results -- the run's result count when no filter narrows them."""
    listing = _RESULTS[filters.order]
    equal = {"runId": run_id}
    return _list_query(listing, equal, after, limit, offset, total="run", filters=filters)


def count_results(run_id: str, filters: ResultFilters) -> Query:
    return _count_query(_RESULTS[filters.order], {"runId": run_id}, filters)


def results_batch(run_id: str, filters: ResultFilters, after: Position | None, size: int) -> Query:
    """The next ``size`` results of a run after ``after``, with their scores, no total."""
    listing = _RESULTS[filters.order]
    return _list_query(listing, {"runId": run_id}, after, size, 0, total=None, filters=filters)


def _stored_form(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """A results column as its stored value, with no type processing (see
    :mod:`runstore.export`): instants as UTC text, JSON as text."""
    if isinstance(column.type, UTCDateTime):
        return utc_text(column)
    if isinstance(column.type, JsonColumn):
        return sa.cast(column, sa.Text())
    return column


_COLUMN_OF_ATTRIBUTE = {attribute: results_table.columns[key] for key, attribute in _RESULT_KEYS}


@functools.cache
def _result_rows(keyset: bool) -> sa.Select[Any]:
    columns = [
        sa.cast(_scores_of(_results.id), sa.Text())
        if field == "scores"
        else _stored_form(_COLUMN_OF_ATTRIBUTE[field])
        for field in RESULT_FIELDS
    ]
    conditions = [_results.runId == sa.bindparam("run_id", type_=_results.runId.type)]
    if keyset:
        mark = sa.tuple_(
            sa.bindparam("after_key", type_=_results.startedAt.type),
            sa.bindparam("after_id", type_=_results.id.type),
        )
        conditions.append(sa.tuple_(_results.startedAt, _results.id) > mark)
    return (
        sa.select(*columns)
        .where(*conditions)
        .order_by(_results.startedAt, _results.id)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


def result_rows_batch(run_id: str, after: Position | None, size: int) -> Query:
    """The next ``size`` results of a run in execution order after ``after``, as stored
    rows (:data:`runstore.export.RESULT_FIELDS`, values as :mod:`runstore.export` says)."""
    values: dict[str, Any] = {"run_id": run_id, "limit": size}
    if after is not None:
        values["after_key"] = after.key
        values["after_id"] = after.id
    return Query(_result_rows(after is not None), values)


@functools.cache
def _count_statement(table: sa.Table, shape: _Shape) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(table).where(*_conditions(table, shape))


def _count_query(
    listing: _Listing, equal: Mapping[str, Any], filters: ResultFilters | None
) -> Query:
    values = {_filter_name(column): value for column, value in equal.items()}
    shape = _Shape(equal=tuple(equal))
    if filters is not None:
        shape, extra = _result_filters(shape, filters)
        values |= extra
    return Query(_count_statement(listing.table, shape), values)


# -- answers ---------------------------------------------------------------------------

_PERCENTILES = (0.5, 0.9, 0.95, 0.99)

_RUN_SIZES = sa.select(_runs.id, _runs.resultCount).where(one_of(_runs.id, "ids"))


def run_sizes(run_ids: Iterable[str]) -> Query:
    """(id, result count) of those runs that exist."""
    return Query(_RUN_SIZES, {"ids": sorted(set(run_ids))})


def _failed() -> Any:
    return sa.func.count().filter(_results.error.is_not(None))


def _summary_postgres() -> sa.CompoundSelect[Any]:
    run_id: sa.BindParameter[str] = sa.bindparam("run_id")
    latency = sa.select(
        sa.null().label("name"),
        sa.func.count(),
        _failed(),
        mean(_results.latency),
        sa.func.min(_results.latency),
        sa.func.max(_results.latency),
        *[sa.func.percentile_cont(p).within_group(_results.latency) for p in _PERCENTILES],
    ).where(_results.runId == run_id)
    scores = (
        sa.select(
            _scores.name,
            sa.func.count(),
            sa.null(),
            mean(_scores.value),
            sa.func.min(_scores.value),
            sa.func.max(_scores.value),
            sa.func.percentile_cont(0.5).within_group(_scores.value),
            *[sa.null()] * 3,
        )
        .where(_scores.runId == run_id)
        .group_by(_scores.name)
    )
    return sa.union_all(latency, scores)


_SUMMARY = _summary_postgres()


def summary(run_id: str) -> Query:
    """Postgres: a run's whole summary in one statement -- a row for the latencies (name
    NULL; count, failed, mean, min, max, p50, p90, p95, p99) and one per score name
    (count, NULL, mean, min, max, p50) -- computed by ``percentile_cont``."""
    return Query(_SUMMARY, {"run_id": run_id})


_LATENCY_AGGREGATES = sa.select(
    sa.func.count(),
    _failed(),
    mean(_results.latency),
    sa.func.min(_results.latency),
    sa.func.max(_results.latency),
).where(_results.runId == sa.bindparam("run_id"))


def latency_aggregates(run_id: str) -> Query:
    """A run's result count, failed count, and mean, min and max latency."""
    return Query(_LATENCY_AGGREGATES, {"run_id": run_id})


_LATENCY_AT = (
    sa.select(_results.latency)
    .where(_results.runId == sa.bindparam("run_id"))
    .order_by(_results.latency)
    .limit(2)
    .offset(sa.bindparam("rank", type_=sa.BigInteger()))
)


def latency_at(run_id: str, rank: int) -> Query:
    """The run's latencies at ranks ``rank`` and ``rank + 1`` in ascending order, read
    from the latency index (for percentiles where the database has no
    ``percentile_cont``)."""
    return Query(_LATENCY_AT, {"run_id": run_id, "rank": rank})


_SCORE_AGGREGATES = (
    sa.select(
        _scores.name,
        sa.func.count(),
        mean(_scores.value),
        sa.func.min(_scores.value),
        sa.func.max(_scores.value),
    )
    .where(_scores.runId == sa.bindparam("run_id"))
    .group_by(_scores.name)
)


def score_aggregates(run_id: str) -> Query:
    """Per score name of a run: count, mean, min and max."""
    return Query(_SCORE_AGGREGATES, {"run_id": run_id})


_SCORE_VALUE_AT = (
    sa.select(_scores.value)
    .where(_scores.runId == sa.bindparam("run_id"), _scores.name == sa.bindparam("name"))
    .order_by(_scores.value)
    .limit(2)
    .offset(sa.bindparam("rank", type_=sa.BigInteger()))
)


def score_value_at(run_id: str, name: str, rank: int) -> Query:
    """A score's values at ranks ``rank`` and ``rank + 1``, from the score index."""
    return Query(_SCORE_VALUE_AT, {"run_id": run_id, "name": name, "rank": rank})


def _items_of(run: str) -> sa.CTE:
    """Per item of a run: mean latency over its repetitions, and whether any failed."""
    failed = sa.case((_results.error.is_not(None), 1), else_=0)
    return (
        sa.select(
            _results.itemId.label("item"),
            mean(_results.latency).label("latency"),
            sa.func.max(failed).label("failed"),
        )
        .where(_results.runId == sa.bindparam(run))
        .group_by(_results.itemId)
        .cte(f"{run}_items")
    )


def _item_scores_of(run: str) -> sa.CTE:
    """Per item and score name of a run: the score's mean over the item's repetitions."""
    return (
        sa.select(
            _results.itemId.label("item"),
            _scores.name.label("name"),
            mean(_scores.value).label("value"),
        )
        .select_from(scores_table.join(results_table, _results.id == _scores.resultId))
        .where(_scores.runId == sa.bindparam(run))
        .group_by(_results.itemId, _scores.name)
        .cte(f"{run}_scores")
    )


_baseline, _candidate = _items_of("baseline"), _items_of("candidate")
_COMPARISON_PAIRS = sa.select(
    sa.func.count(),
    sa.func.count().filter(sa.and_(_baseline.c.failed == 1, _candidate.c.failed == 0)),
    sa.func.count().filter(sa.and_(_baseline.c.failed == 0, _candidate.c.failed == 1)),
    mean(_candidate.c.latency - _baseline.c.latency),  # latencies are >= 0: no overflow
    sa.select(sa.func.count()).select_from(_baseline).scalar_subquery(),
    sa.select(sa.func.count()).select_from(_candidate).scalar_subquery(),
).select_from(_baseline.join(_candidate, _candidate.c.item == _baseline.c.item))


def comparison_pairs(baseline: str, candidate: str) -> Query:
    """Over the items both runs have (each item's repetitions averaged): how many, errors
    fixed and introduced, the mean latency difference (candidate minus baseline); then
    how many items each run has."""
    return Query(_COMPARISON_PAIRS, {"baseline": baseline, "candidate": candidate})


_baseline_score, _candidate_score = _item_scores_of("baseline"), _item_scores_of("candidate")
_before, _after = _baseline_score.c.value, _candidate_score.c.value
_COMPARISON_SCORES = (
    sa.select(
        _baseline_score.c.name,
        sa.func.count(),
        mean(_before),
        mean(_after),
        sa.func.count().filter(_after > _before),
        sa.func.count().filter(_after < _before),
    )
    .select_from(
        _baseline_score.join(
            _candidate_score,
            sa.and_(
                _candidate_score.c.item == _baseline_score.c.item,
                _candidate_score.c.name == _baseline_score.c.name,
            ),
        )
    )
    .group_by(_baseline_score.c.name)
)


def comparison_scores(baseline: str, candidate: str) -> Query:
    """Per score name, over the items both runs have it for (each item's repetitions
    averaged): how many, both means, and how many improved and regressed. (The mean
    difference is the means' difference: two scores' own may pass the largest double.)"""
    return Query(_COMPARISON_SCORES, {"baseline": baseline, "candidate": candidate})
