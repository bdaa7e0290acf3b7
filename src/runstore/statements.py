"""runstore's SQL: every statement it sends, each with the values a call binds to it.

Each function returns a :class:`Query` -- a statement together with its bind values, and
what a constraint violation would mean for it -- so no two places have to agree on
parameter names. Statements are built once: at import, or once per shape (which filters,
keyset or not, which columns an update sets), so SQLAlchemy's compiled cache serves every
call after the first. Nothing here executes: :mod:`runstore.operations` strings queries
into storage calls, and the adapters run them on SQLAlchemy connections.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from runstore.cursors import Position
from runstore.limits import MAX_COUNT
from runstore.models import Run, RunFilters, RunResult
from runstore.schema import attribute_name
from runstore.tables import results_table, runs_table

__all__ = [
    "RESULT_ATTRIBUTES",
    "RUN_ATTRIBUTES",
    "CopyRows",
    "Query",
    "bump_counts",
    "clear_results",
    "clear_runs",
    "copy_results",
    "count_results",
    "count_runs",
    "delete_results_of_run",
    "delete_run",
    "insert_result",
    "insert_results",
    "insert_run",
    "lock_run",
    "lock_runs",
    "results_batch",
    "results_page",
    "runs_batch",
    "runs_page",
    "select_result",
    "select_run",
    "taken_items",
    "taken_result_ids",
    "update_run",
]

_runs = runs_table.c
_results = results_table.c

RUN_ATTRIBUTES: tuple[str, ...] = tuple(attribute_name(c.name) for c in runs_table.columns)
"""The attribute each column of a runs row fills, in the order statements select them."""
RESULT_ATTRIBUTES: tuple[str, ...] = tuple(attribute_name(c.name) for c in results_table.columns)
"""The same for a results row."""

_RUN_KEYS = tuple(zip((c.key for c in runs_table.columns), RUN_ATTRIBUTES, strict=True))
_RESULT_KEYS = tuple(zip((c.key for c in results_table.columns), RESULT_ATTRIBUTES, strict=True))
_RUN_COLUMN_OF = {attribute: runs_table.columns[key] for key, attribute in _RUN_KEYS}


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


def _values(record: Run | RunResult, keys: Iterable[tuple[str, str]]) -> dict[str, Any]:
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


# Counters grow by arithmetic in the database, never read-modify-write, so concurrent
# writers cannot lose a count; updatedAt only ever moves forward. A counter that would
# pass MAX_COUNT leaves the row alone (no row matches), on every backend alike.
_BUMP_COUNTS = (
    sa.update(runs_table)
    .where(
        _runs.id == sa.bindparam("run_id"),
        _runs.succeededCount <= sa.bindparam("succeeded_below", type_=sa.Integer()),
        _runs.failedCount <= sa.bindparam("failed_below", type_=sa.Integer()),
    )
    .values(
        succeededCount=_runs.succeededCount + sa.bindparam("succeeded", type_=sa.Integer()),
        failedCount=_runs.failedCount + sa.bindparam("failed", type_=sa.Integer()),
        updatedAt=sa.case(
            (
                _runs.updatedAt < sa.bindparam("now", type_=_runs.updatedAt.type),
                sa.bindparam("now", type_=_runs.updatedAt.type),
            ),
            else_=_runs.updatedAt,
        ),
    )
)


def bump_counts(run_id: str, succeeded: int, failed: int, now: datetime) -> Query:
    """Add to a run's counters; no row changes if the run is missing or a counter would
    pass :data:`~runstore.limits.MAX_COUNT`."""
    values = {
        "run_id": run_id,
        "succeeded": succeeded,
        "failed": failed,
        "succeeded_below": MAX_COUNT - succeeded,
        "failed_below": MAX_COUNT - failed,
        "now": now,
    }
    return Query(_BUMP_COUNTS, values)


_LOCK_RUNS = (
    sa.select(_runs.id)
    .where(_runs.id.in_(sa.bindparam("run_ids", expanding=True)))
    .order_by(_runs.id)
    .with_for_update(read=True, key_share=True)
)


def lock_runs(run_ids: Iterable[str]) -> Query:
    """The ids of those runs that exist, each kept from deletion until the transaction
    ends (Postgres ``FOR KEY SHARE``, taken in id order so writers cannot deadlock)."""
    return Query(_LOCK_RUNS, {"run_ids": sorted(run_ids)})


_DELETE_RUN = sa.delete(runs_table).where(_runs.id == sa.bindparam("run_id"))
_DELETE_RESULTS_OF_RUN = sa.delete(results_table).where(_results.runId == sa.bindparam("run_id"))
_CLEAR_RUNS = sa.delete(runs_table)
_CLEAR_RESULTS = sa.delete(results_table)


def delete_run(run_id: str) -> Query:
    return Query(_DELETE_RUN, {"run_id": run_id})


def delete_results_of_run(run_id: str) -> Query:
    return Query(_DELETE_RESULTS_OF_RUN, {"run_id": run_id})


def clear_runs() -> Query:
    return Query(_CLEAR_RUNS)


def clear_results() -> Query:
    return Query(_CLEAR_RESULTS)


# -- results ---------------------------------------------------------------------------

# One statement records a result only if its run exists, so a missing run writes nothing
# (the row count says so) and costs no extra round trip. The foreign key still guards
# against a concurrent delete.
_INSERT_RESULT_IF_RUN = (
    sa.insert(results_table)
    .from_select(
        [column.name for column in results_table.columns],
        sa.select(
            *[sa.bindparam(column.key, type_=column.type) for column in results_table.columns]
        ).where(sa.exists().where(_runs.id == sa.bindparam("runId"))),
    )
    .execution_options(preserve_rowcount=True)
)
_INSERT_RESULTS = sa.insert(results_table)


def _duplicate_result(result: RunResult) -> str:
    return (
        f"result {result.id!r} or a result of run {result.run_id!r} "
        f"for item {result.item_id!r} already exists"
    )


def insert_result(result: RunResult) -> Query:
    """Record one result if its run exists (the row count is 0 if it does not)."""
    return Query(
        _INSERT_RESULT_IF_RUN,
        _values(result, _RESULT_KEYS),
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
    return CopyRows(results_table, [_values(result, _RESULT_KEYS) for result in results])


_SELECT_RESULT = sa.select(results_table).where(_results.id == sa.bindparam("result_id"))


def select_result(result_id: str) -> Query:
    """The result's row (columns in :data:`RESULT_ATTRIBUTES` order)."""
    return Query(_SELECT_RESULT, {"result_id": result_id})


_TAKEN_IDS = sa.select(_results.id).where(_results.id.in_(sa.bindparam("ids", expanding=True)))
_TAKEN_ITEMS = sa.select(_results.itemId).where(
    _results.runId == sa.bindparam("run_id"),
    _results.itemId.in_(sa.bindparam("item_ids", expanding=True)),
)


def taken_result_ids(ids: Sequence[str]) -> Query:
    """Which of these result ids are stored."""
    return Query(_TAKEN_IDS, {"ids": list(ids)})


def taken_items(run_id: str, item_ids: Sequence[str]) -> Query:
    """Which of these items already have a result in the run."""
    return Query(_TAKEN_ITEMS, {"run_id": run_id, "item_ids": list(item_ids)})


# -- lists -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Listing:
    """A list's table and total order: a timestamp, then the id."""

    table: sa.Table
    moment: sa.Column[Any]
    id: sa.Column[Any]
    descending: bool


_RUNS = _Listing(runs_table, _runs.createdAt, _runs.id, descending=True)
_RESULTS = _Listing(results_table, _results.startedAt, _results.id, descending=False)


def _filter_name(column: str) -> str:
    return f"filter_{column}"


@functools.cache
def _list_statement(
    listing: _Listing,
    filters: tuple[str, ...],
    keyset: bool,
    limited: bool,
    skipping: bool,
    counted: bool,
) -> sa.Select[Any]:
    """The rows of a list in order; bind names as :func:`_list_query` fills them.

    A page after an offset (``skipping``) is chosen in a subquery and its columns read
    from there, so that work done for every column read (JSON selected as text) is done
    for the page's rows only, not for every row the offset skips; the outer query then
    sorts just the page's rows.
    """
    table = listing.table
    conditions = _conditions(table, filters)
    total = sa.select(sa.func.count()).select_from(table).where(*conditions)
    if keyset:
        key = sa.tuple_(listing.moment, listing.id)
        mark = sa.tuple_(
            sa.bindparam("after_moment", type_=listing.moment.type),
            sa.bindparam("after_id", type_=listing.id.type),
        )
        conditions.append(key < mark if listing.descending else key > mark)
    page = sa.select(table).where(*conditions).order_by(*_ordering(listing, table))
    if limited:
        page = page.limit(sa.bindparam("limit", type_=sa.Integer())).offset(
            sa.bindparam("offset", type_=sa.BigInteger())
        )
    if counted:  # the total, counted in the same statement (one snapshot, one round trip)
        page = page.add_columns(total.correlate(None).scalar_subquery().label("total"))
    if not skipping:
        return page
    rows = page.subquery("page")
    return sa.select(*rows.columns).order_by(*_ordering(listing, rows))


def _conditions(table: sa.Table, filters: tuple[str, ...]) -> list[sa.ColumnElement[bool]]:
    return [
        table.columns[column]
        == sa.bindparam(_filter_name(column), type_=table.columns[column].type)
        for column in filters
    ]


def _ordering(listing: _Listing, rows: sa.Table | sa.Subquery) -> list[sa.ColumnElement[Any]]:
    """The list's total order, on the table or on a subquery of it."""
    order = [rows.columns[listing.moment.key], rows.columns[listing.id.key]]
    return [column.desc() if listing.descending else column.asc() for column in order]


def _list_query(
    listing: _Listing,
    filters: Mapping[str, Any],
    after: Position | None,
    limit: int | None,
    offset: int,
    *,
    counted: bool,
) -> Query:
    skipping = limit is not None and offset > 0
    statement = _list_statement(
        listing, tuple(filters), after is not None, limit is not None, skipping, counted
    )
    values = {_filter_name(column): value for column, value in filters.items()}
    if after is not None:
        values["after_moment"] = after.moment
        values["after_id"] = after.id
    if limit is not None:
        values["limit"] = limit
        values["offset"] = offset
    return Query(statement, values)


@functools.cache
def _count_statement(listing: _Listing, filters: tuple[str, ...]) -> sa.Select[Any]:
    table = listing.table
    conditions = [
        table.columns[column]
        == sa.bindparam(_filter_name(column), type_=table.columns[column].type)
        for column in filters
    ]
    return sa.select(sa.func.count()).select_from(table).where(*conditions)


def _count_query(listing: _Listing, filters: Mapping[str, Any]) -> Query:
    values = {_filter_name(column): value for column, value in filters.items()}
    return Query(_count_statement(listing, tuple(filters)), values)


def _run_filters(filters: RunFilters) -> dict[str, Any]:
    return {_RUN_COLUMN_OF[name].key: value for name, value in filters.given().items()}


def runs_page(filters: RunFilters, after: Position | None, limit: int | None, offset: int) -> Query:
    """A page of runs, newest first; each row ends with the total of matching runs."""
    return _list_query(_RUNS, _run_filters(filters), after, limit, offset, counted=True)


def count_runs(filters: RunFilters) -> Query:
    return _count_query(_RUNS, _run_filters(filters))


def runs_batch(filters: RunFilters, after: Position | None, size: int) -> Query:
    """The next ``size`` runs after ``after``, without a total."""
    return _list_query(_RUNS, _run_filters(filters), after, size, 0, counted=False)


def results_page(run_id: str, after: Position | None, limit: int | None, offset: int) -> Query:
    """A page of a run's results in execution order; each row ends with the run's total."""
    return _list_query(_RESULTS, {"runId": run_id}, after, limit, offset, counted=True)


def count_results(run_id: str) -> Query:
    return _count_query(_RESULTS, {"runId": run_id})


def results_batch(run_id: str, after: Position | None, size: int) -> Query:
    """The next ``size`` results of a run after ``after``, without a total."""
    return _list_query(_RESULTS, {"runId": run_id}, after, size, 0, counted=False)
