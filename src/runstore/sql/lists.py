"""Lists of runs and results: pages (by number or by cursor) and the batches that
``iter_*`` calls walk through.

A list is a table in a total order -- a key (a timestamp, a latency), then the id -- and
a :class:`_Shape`: which filters, a keyset or not, a limit or not, how the total comes.
Statements are built once per listing and shape (never per value), so SQLAlchemy's
compiled cache serves every call after the first; every shape is served by an index, in
index order (tests/test_query_plans.py proves it on both databases). Statements first;
the pages and walks below them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import TypeVar

import sqlalchemy as sa

from runstore import calls
from runstore.cursors import CursorKind
from runstore.cursors import Position
from runstore.cursors import decode_cursor
from runstore.cursors import encode_cursor
from runstore.errors import RunNotFoundError
from runstore.export import RESULT_FIELDS
from runstore.export import StoredRow
from runstore.models import ListRunResultsInput
from runstore.models import ListRunResultsOutput
from runstore.models import ListRunsInput
from runstore.models import ListRunsOutput
from runstore.models import ResultFilters
from runstore.models import ResultOrder
from runstore.models import Run
from runstore.models import RunFilters
from runstore.models import RunResult
from runstore.models import RunStatus
from runstore.pages import Page
from runstore.pages import fetch_limit
from runstore.pages import make_page
from runstore.plans import AnyQuery
from runstore.plans import Emit
from runstore.plans import Mode
from runstore.plans import Query
from runstore.plans import Steps
from runstore.plans import Walk
from runstore.plans import first
from runstore.plans import one
from runstore.plans import operation
from runstore.plans import reading
from runstore.plans import rows
from runstore.plans import run
from runstore.sql.compiler import metadata_kind
from runstore.sql.compiler import metadata_matches
from runstore.sql.compiler import metadata_values
from runstore.sql.compiler import scores_of
from runstore.sql.compiler import utc_text
from runstore.sql.database import Database
from runstore.sql.database import Plans
from runstore.sql.database import Walks
from runstore.sql.results import results_read
from runstore.sql.results import scored_results
from runstore.sql.results import with_scores
from runstore.sql.rows import RESULT_COLUMNS
from runstore.sql.rows import RUN_COLUMNS
from runstore.sql.rows import row_columns
from runstore.sql.rows import runs_from
from runstore.sql.runs import require_runs
from runstore.sql.runs import select_run
from runstore.sql.runs import tag_values
from runstore.sql.runs import tagged
from runstore.tables import result_columns
from runstore.tables import results_table
from runstore.tables import run_columns
from runstore.tables import runs_table
from runstore.tables import score_columns
from runstore.tables import tags_table
from runstore.types import JsonColumn
from runstore.types import UTCDateTime

__all__ = [
    "PLANS",
    "WALKS",
    "count_results",
    "count_runs",
    "result_rows_batch",
    "results_batch",
    "results_page",
    "runs_batch",
    "runs_page",
]

_Row = TypeVar("_Row")

_runs = run_columns
_results = result_columns
_scores = score_columns

# -- statements --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Listing:
    """A list's table and total order: a key column (a timestamp, a latency), then the id.

    With a ``walked`` table, the list walks that table's index instead -- its key and id
    columns hold the listed rows' (the tags of runs: a tag's runs, newest first) -- and
    reads the listed rows joined to it.
    """

    table: sa.Table
    order: str
    """The key column's key."""
    descending: bool
    walked: sa.Table | None = None
    walked_id: str = "id"
    """The column of ``walked`` that holds the listed row's id."""

    @property
    def key(self) -> sa.Column[Any]:
        return (self.walked if self.walked is not None else self.table).columns[self.order]

    @property
    def id(self) -> sa.Column[Any]:
        if self.walked is not None:
            return self.walked.columns[self.walked_id]
        return self.table.columns["id"]

    @property
    def source(self) -> sa.FromClause:
        if self.walked is None:
            return self.table
        return self.walked.join(self.table, self.table.columns["id"] == self.id)


_RUN_LIST = _Listing(runs_table, "created_at", descending=True)
_TAGGED_RUN_LIST = _Listing(
    runs_table, "created_at", descending=True, walked=tags_table, walked_id="run_id"
)
"""Runs with a tag, newest first: the tags' (tag, createdAt, runId) index walked."""
_RESULT_LISTS = {
    ResultOrder.EXECUTION: _Listing(results_table, "started_at", False),
    ResultOrder.SLOWEST: _Listing(results_table, "latency", True),
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
    tags: int = 0
    """Runs: how many tags they must carry (the first is the walked table's, when the
    listing walks the tags)."""
    metadata: tuple[str, ...] = ()
    """Runs: the kind of each metadata pair they must have (see
    :func:`~runstore.sql.compiler.metadata_matches`)."""


def _filter_name(column: str) -> str:
    return f"filter_{column}"


def _conditions(listing: _Listing, shape: _Shape) -> list[sa.ColumnElement[bool]]:
    table = listing.table
    conditions = [
        table.columns[column]
        == sa.bindparam(_filter_name(column), type_=table.columns[column].type)
        for column in shape.equal
    ]
    if shape.tags:
        walked = listing.walked
        if walked is not None:  # the first tag is the walked index's
            conditions.append(walked.columns["tag"] == sa.bindparam("tag_0"))
        conditions += tagged(shape.tags)[walked is not None :]
    if shape.metadata:
        conditions.append(metadata_matches(_runs.metadata_, shape.metadata))
    if shape.failed is not None:
        error = table.columns["error"]
        conditions.append(error.is_not(None) if shape.failed else error.is_(None))
    if shape.score is not None:
        at_least, at_most = shape.score
        scored = [_scores.result_id == table.columns["id"], _scores.name == sa.bindparam("score")]
        if at_least:
            scored.append(_scores.value >= sa.bindparam("score_min", type_=_scores.value.type))
        if at_most:
            scored.append(_scores.value <= sa.bindparam("score_max", type_=_scores.value.type))
        conditions.append(sa.exists().where(*scored))
    return conditions


@functools.cache
def _list_statement(listing: _Listing, shape: _Shape) -> sa.Select[Any]:
    """The rows of a list in order; bind names as :func:`_list_query` fills them.

    A page after an offset (``skipping``) is chosen in a subquery that reads only the
    order's columns -- the list's index walked past the skipped rows, never the rows
    themselves, nor a sort of them (which Postgres, its plan made for a known offset,
    spilled to disk) -- and the page's rows are then read by id: work done for every
    column read (JSON selected as text, a result's scores) is done for the page's rows
    only. The outer query sorts just those.
    """
    table = listing.table
    conditions = _conditions(listing, shape)
    if shape.total == "count":
        total: Any = sa.select(sa.func.count()).select_from(listing.source).where(*conditions)
        total = total.correlate(None).scalar_subquery()
    elif shape.total == "run":
        run_id = sa.bindparam(_filter_name("run_id"), type_=_runs.id.type)
        total = sa.select(_runs.result_count).where(_runs.id == run_id).scalar_subquery()
        total = sa.func.coalesce(total, 0)
    if shape.keyset:
        key = sa.tuple_(listing.key, listing.id)
        mark = sa.tuple_(
            sa.bindparam("after_key", type_=listing.key.type),
            sa.bindparam("after_id", type_=listing.id.type),
        )
        conditions.append(key < mark if listing.descending else key > mark)
    scored = table is results_table
    page = sa.select(*row_columns(table)).select_from(listing.source).where(*conditions)
    page = page.order_by(*_ordering(listing))
    if shape.limited:
        page = page.limit(sa.bindparam("limit", type_=sa.Integer())).offset(
            sa.bindparam("offset", type_=sa.BigInteger())
        )
    if not shape.skipping:
        extra = [scores_of(_results.id)] if scored else []
        if shape.total is not None:
            extra.append(total.label("total"))
        return page.add_columns(*extra)
    # The skipped rows are walked for their place alone: the subquery reads the order's
    # columns (which the list's index holds, so it is walked, not sorted), and only the
    # page's rows are read whole, by id.
    page = sa.select(listing.key, listing.id).select_from(listing.source).where(*conditions)
    page = page.order_by(*_ordering(listing))
    page = page.limit(sa.bindparam("limit", type_=sa.Integer())).offset(
        sa.bindparam("offset", type_=sa.BigInteger())
    )
    if shape.total is not None:
        page = page.add_columns(total.label("total"))
    chosen = page.subquery("page")
    columns: list[Any] = row_columns(table)
    if scored:
        columns.append(scores_of(table.c.id))
    if shape.total is not None:
        columns.append(chosen.columns["total"])
    joined = chosen.join(table, table.c.id == chosen.columns[listing.id.key])
    return sa.select(*columns).select_from(joined).order_by(*_ordering(listing, chosen))


def _ordering(listing: _Listing, rows: sa.Subquery | None = None) -> list[sa.ColumnElement[Any]]:
    """The list's total order, on its own columns or on a subquery of them."""
    order: list[Any] = [listing.key, listing.id]
    if rows is not None:
        order = [rows.columns[column.key] for column in order]
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
    runs: RunFilters | None = None,
) -> AnyQuery:
    values = {_filter_name(column): value for column, value in equal.items()}
    shape = _Shape(
        equal=tuple(equal),
        keyset=after is not None,
        limited=limit is not None,
        skipping=limit is not None and offset > 0,
        total=total,
    )
    shape = _with_filters(shape, values, filters, runs)
    if after is not None:
        values["after_key"] = after.key
        values["after_id"] = after.id
    if limit is not None:
        values["limit"] = limit
        values["offset"] = offset
    return Query(_list_statement(listing, shape), values)


def _with_filters(
    shape: _Shape,
    values: dict[str, Any],
    filters: ResultFilters | None,
    runs: RunFilters | None,
) -> _Shape:
    """``shape`` with the result filters and the runs' filters given, their bind values
    added to ``values``."""
    if filters is not None:
        shape, extra = _result_filters(shape, filters)
        values |= extra
    if runs is not None:
        shape, extra = _run_filters_beyond(shape, runs)
        values |= extra
    return shape


def _result_filters(shape: _Shape, filters: ResultFilters) -> tuple[_Shape, dict[str, Any]]:
    """The shape and values of a results list's filters beyond the run."""
    values: dict[str, Any] = {}
    equal = shape.equal
    if filters.item_id is not None:
        equal = (*equal, "item_id")
        values[_filter_name("item_id")] = filters.item_id
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
    """The filters a run's column must equal, by column key."""
    return {RUN_COLUMNS[name].key: value for name, value in filters.equal().items()}


def _run_filters_beyond(shape: _Shape, filters: RunFilters) -> tuple[_Shape, dict[str, Any]]:
    """The shape and values of a runs list's filters beyond the columns': tags and
    metadata."""
    if not filters.tags and not filters.metadata:
        return shape, {}
    tags = tuple(filters.tags or ())
    metadata = filters.metadata or {}
    kinds = tuple(metadata_kind(value) for value in metadata.values())
    values: dict[str, Any] = tag_values(tags)
    values |= metadata_values(metadata)
    return dataclasses.replace(shape, tags=len(tags), metadata=kinds), values


def _run_listing(filters: RunFilters) -> _Listing:
    """A tag filter walks the runs of its first tag; any other list, the runs."""
    return _TAGGED_RUN_LIST if filters.tags else _RUN_LIST


def runs_page(
    filters: RunFilters, after: Position | None, limit: int | None, offset: int
) -> AnyQuery:
    """A page of runs, newest first; each row ends with the total of matching runs."""
    listing, equal = _run_listing(filters), _run_filters(filters)
    return _list_query(listing, equal, after, limit, offset, total="count", runs=filters)


def count_runs(filters: RunFilters) -> Query[int]:
    return _count_query(_run_listing(filters), _run_filters(filters), None, filters)


def runs_batch(filters: RunFilters, after: Position | None, size: int) -> AnyQuery:
    """The next ``size`` runs after ``after``, without a total."""
    listing, equal = _run_listing(filters), _run_filters(filters)
    return _list_query(listing, equal, after, size, 0, total=None, runs=filters)


def results_page(
    run_id: str, filters: ResultFilters, after: Position | None, limit: int | None, offset: int
) -> AnyQuery:
    """A page of a run's results; each row ends with the result's scores and the total
    of matching results -- the run's result count when no filter narrows them."""
    listing = _RESULT_LISTS[filters.order]
    equal = {"run_id": run_id}
    return _list_query(listing, equal, after, limit, offset, total="run", filters=filters)


def count_results(run_id: str, filters: ResultFilters) -> Query[int]:
    return _count_query(_RESULT_LISTS[filters.order], {"run_id": run_id}, filters)


def results_batch(
    run_id: str, filters: ResultFilters, after: Position | None, size: int
) -> AnyQuery:
    """The next ``size`` results of a run after ``after``, with their scores, no total."""
    listing = _RESULT_LISTS[filters.order]
    return _list_query(listing, {"run_id": run_id}, after, size, 0, total=None, filters=filters)


def _stored_form(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """A results column as its stored value, with no type processing (see
    :mod:`runstore.export`): instants as UTC text, JSON as text."""
    if isinstance(column.type, UTCDateTime):
        return utc_text(column)
    if isinstance(column.type, JsonColumn):
        return sa.cast(column, sa.Text())
    return column


@functools.cache
def _result_rows(keyset: bool) -> sa.Select[Any]:
    columns = [
        sa.cast(scores_of(_results.id), sa.Text())
        if field == "scores"
        else _stored_form(RESULT_COLUMNS[field])
        for field in RESULT_FIELDS
    ]
    conditions = [_results.run_id == sa.bindparam("run_id", type_=_results.run_id.type)]
    if keyset:
        mark = sa.tuple_(
            sa.bindparam("after_key", type_=_results.started_at.type),
            sa.bindparam("after_id", type_=_results.id.type),
        )
        conditions.append(sa.tuple_(_results.started_at, _results.id) > mark)
    return (
        sa.select(*columns)
        .where(*conditions)
        .order_by(_results.started_at, _results.id)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


def result_rows_batch(run_id: str, after: Position | None, size: int) -> AnyQuery:
    """The next ``size`` results of a run in execution order after ``after``, as stored
    rows (:data:`runstore.export.RESULT_FIELDS`, values as :mod:`runstore.export` says)."""
    values: dict[str, Any] = {"run_id": run_id, "limit": size}
    if after is not None:
        values["after_key"] = after.key
        values["after_id"] = after.id
    return Query(_result_rows(after is not None), values)


@functools.cache
def _count_statement(listing: _Listing, shape: _Shape) -> sa.Select[Any]:
    conditions = _conditions(listing, shape)
    return sa.select(sa.func.count()).select_from(listing.source).where(*conditions)


def _count_query(
    listing: _Listing,
    equal: Mapping[str, Any],
    filters: ResultFilters | None,
    runs: RunFilters | None = None,
) -> Query[int]:
    values = {_filter_name(column): value for column, value in equal.items()}
    shape = _Shape(equal=tuple(equal))
    shape = _with_filters(shape, values, filters, runs)
    return reading(_count_statement(listing, shape), values)


# -- pages and walks ---------------------------------------------------------------------


def _page(
    kind: CursorKind,
    request: ListRunsInput | ListRunResultsInput,
    scope: tuple[str | None, ...],
    query: Callable[[Position | None, int | None, int], AnyQuery],
    count: Callable[[], AnyQuery],
    read: Callable[[Sequence[Sequence[Any]]], Steps[list[_Row]]],
    position: Callable[[_Row], Position],
) -> Steps[Page[_Row]]:
    """One page of a list: by cursor or by number, with its total and the next cursor.

    ``query`` reads the page's rows, each ending with the total; ``count`` makes the
    statement that counts alone, for a page with no rows; ``read`` makes the models (it
    may read more).
    """
    after = None if request.cursor is None else decode_cursor(request.cursor, kind, scope)
    limit = fetch_limit(request.pagination)
    offset = request.pagination.offset if after is None else 0
    fetched = yield from rows(query(after, limit, offset))
    total = fetched[0][-1] if fetched else (yield from one(count()))[0]
    return make_page(
        (yield from read(fetched)),
        total,
        request.pagination,
        lambda row: encode_cursor(kind, scope, position(row)),
    )


def _read_runs(fetched: Sequence[Sequence[Any]]) -> Steps[list[Run]]:
    """:func:`runs_from` as the step of a page (which reads nothing more)."""
    yield from ()
    return runs_from(fetched)


def run_position(run: Run) -> Position:
    """Where a run sits in its list (for the next keyset batch)."""
    return Position(run.created_at, run.id)


def result_position(order: ResultOrder) -> Callable[[RunResult], Position]:
    """Where a result sits in a list of this order (for the next keyset batch)."""
    if order is ResultOrder.SLOWEST:
        return lambda result: Position(result.latency, result.id)
    return lambda result: Position(result.started_at, result.id)


@operation(Mode.READ)
def _list_runs(call: calls.ListRuns, database: Database) -> Steps[ListRunsOutput]:
    request = call.input
    page = yield from _page(
        "runs",
        request,
        request.scope(),
        lambda after, limit, offset: runs_page(request, after, limit, offset),
        lambda: count_runs(request),
        _read_runs,
        run_position,
    )
    return ListRunsOutput(
        runs=tuple(page.rows), pagination=page.pagination, next_cursor=page.next_cursor
    )


@operation(Mode.SNAPSHOT)
def _find_baseline(call: calls.FindBaseline, database: Database) -> Steps[Run | None]:
    """The candidate, then the first completed run of its dataset after it in the runs'
    list (newest first): one row of the list's keyset page, by its index."""
    row = yield from first(select_run(call.candidate_run_id))
    if row is None:
        raise RunNotFoundError(call.candidate_run_id)
    candidate = runs_from([row])[0]
    filters = call.filters.model_copy(
        update={"dataset_id": candidate.dataset_id, "status": RunStatus.COMPLETED}
    )
    found = runs_from((yield from rows(runs_batch(filters, run_position(candidate), 1))))
    return found[0] if found else None


@operation(Mode.READ)
def _runs_batch(filters: RunFilters, after: Position | None, size: int) -> Steps[list[Run]]:
    return runs_from((yield from rows(runs_batch(filters, after, size))))


def _iter_runs(call: calls.IterRuns, database: Database) -> Walk[Run]:
    after: Position | None = None
    while True:
        found = yield from run(_runs_batch(call.filters, after, call.batch_size))
        yield Emit(found)
        if len(found) < call.batch_size:
            return
        after = run_position(found[-1])


@operation(results_read)
def _list_results(call: calls.ListResults, database: Database) -> Steps[ListRunResultsOutput]:
    request = call.input
    page = yield from _page(
        "results",
        request,
        (request.run_id, *request.scope()),
        lambda after, limit, offset: results_page(request.run_id, request, after, limit, offset),
        lambda: count_results(request.run_id, request),
        lambda fetched: scored_results(fetched, database),
        result_position(request.order),
    )
    return ListRunResultsOutput(
        results=tuple(page.rows), pagination=page.pagination, next_cursor=page.next_cursor
    )


@operation(results_read)
def _results_batch(
    call: calls.IterResults, after: Position | None, database: Database
) -> Steps[list[RunResult]]:
    query = results_batch(call.run_id, call.filters, after, call.batch_size)
    return (yield from scored_results((yield from rows(query)), database))


def _iter_results(call: calls.IterResults, database: Database) -> Walk[RunResult]:
    after: Position | None = None
    position = result_position(call.filters.order)
    while True:
        found = yield from run(_results_batch(call, after, database))
        yield Emit(found)
        if len(found) < call.batch_size:
            return
        after = position(found[-1])


_STORED_ID = RESULT_FIELDS.index("id")
_STORED_STARTED_AT = RESULT_FIELDS.index("started_at")
_STORED_SCORES = RESULT_FIELDS.index("scores")


@operation(results_read)
def _result_rows_batch(
    call: calls.IterResultRows, after: Position | None, database: Database
) -> Steps[list[StoredRow]]:
    """The next batch of a run's results, in execution order, as stored rows (see
    :mod:`runstore.export`); for the first batch, a run with no rows is proven to exist."""
    fetched = yield from rows(result_rows_batch(call.run_id, after, call.batch_size))
    if not fetched and after is None:
        yield from require_runs([call.run_id])
    scored = yield from with_scores(
        fetched, database, id_at=_STORED_ID, scores_at=_STORED_SCORES, empty=None
    )
    return list(scored)


def _iter_result_rows(call: calls.IterResultRows, database: Database) -> Walk[list[StoredRow]]:
    """Exports' columnar path: batches of stored rows (each batch one item)."""
    after: Position | None = None
    while True:
        found = yield from run(_result_rows_batch(call, after, database))
        if found:
            yield Emit([found])
        if len(found) < call.batch_size:
            return
        last = found[-1]
        after = Position(datetime.fromisoformat(last[_STORED_STARTED_AT]), last[_STORED_ID])


PLANS: Plans = {
    calls.ListRuns: _list_runs,
    calls.ListResults: _list_results,
    calls.FindBaseline: _find_baseline,
}
"""The operation of each call that reads a page."""
WALKS: Walks = {
    calls.IterRuns: _iter_runs,
    calls.IterResults: _iter_results,
    calls.IterResultRows: _iter_result_rows,
}
"""The walk of each ``iter_*`` call through a list."""
