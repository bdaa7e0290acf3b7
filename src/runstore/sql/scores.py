"""Scores: recording them (or overwriting a re-run scorer's), and reading a run's.

Statements first; the operations below them. A result's own scores are read with the
result (:func:`runstore.sql.compiler.scores_of`); these are the scores as rows.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from runstore import calls
from runstore.errors import DuplicateError
from runstore.errors import batch_duplicate
from runstore.errors import score_taken
from runstore.models import Score
from runstore.plans import AnyQuery
from runstore.plans import CopyRows
from runstore.plans import Emit
from runstore.plans import Mode
from runstore.plans import Query
from runstore.plans import Steps
from runstore.plans import Walk
from runstore.plans import execute
from runstore.plans import operation
from runstore.plans import reading
from runstore.plans import rows
from runstore.plans import run
from runstore.sql.compiler import one_of
from runstore.sql.compiler import returned
from runstore.sql.database import Database
from runstore.sql.database import Plans
from runstore.sql.database import Walks
from runstore.sql.rows import row_columns
from runstore.sql.rows import score_row
from runstore.sql.rows import scores_from
from runstore.sql.runs import forget_summaries
from runstore.stored import missing_result
from runstore.stored import recorded_scores
from runstore.tables import result_columns
from runstore.tables import run_columns
from runstore.tables import runs_table
from runstore.tables import score_columns
from runstore.tables import scores_table

__all__ = [
    "PLANS",
    "WALKS",
    "copy_scores",
    "delete_scores_of_results",
    "insert_scores",
    "scores_of_results_rows",
]

CHUNK = 1000
"""Scores per statement execution (or lookup) when a batch is written or checked."""

_results = result_columns
_runs = run_columns
_scores = score_columns

# -- statements --------------------------------------------------------------------------

_RESULTS_OF = (
    sa.select(_results.id, _results.run_id)
    .join(runs_table, _runs.id == _results.run_id)
    .where(one_of(_results.id, "ids"))
    .order_by(_results.id)
    .with_for_update(read=True, key_share=True)
)


def results_of(result_ids: Iterable[str]) -> Query[str, str]:
    """(id, run id) of those results that exist, each kept from deletion until the
    transaction ends, and so their runs (Postgres ``FOR KEY SHARE``, in id order): a run's
    summary is kept only after this transaction ends, or seen stale by it (see
    :mod:`runstore.sql.summaries`)."""
    return reading(_RESULTS_OF, {"ids": sorted(result_ids)})


_INSERT_SCORES = sa.insert(scores_table)
_DUPLICATE_IN_BATCH = str(batch_duplicate("score"))


def insert_scores(rows: Sequence[Mapping[str, Any]]) -> AnyQuery:
    """Record scores, given as rows (:func:`~runstore.sql.rows.score_row`,
    :func:`~runstore.sql.rows.score_rows`), one statement execution per row."""
    return Query(_INSERT_SCORES, rows, duplicate=_DUPLICATE_IN_BATCH)


def copy_scores(rows: Sequence[Mapping[str, Any]]) -> CopyRows:
    """:func:`insert_scores` as a ``COPY`` stream (Postgres only)."""
    return CopyRows(scores_table, rows, duplicate=_DUPLICATE_IN_BATCH)


_OVERWRITTEN = ("value", "label", "explanation", "metadata_", "created_at")


@functools.cache
def _upsert_scores(dialect: str) -> sa.Insert:
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(scores_table)
    upsert: sa.Insert = insert.on_conflict_do_update(
        index_elements=[_scores.result_id, _scores.name],
        set_={scores_table.c[key]: insert.excluded[key] for key in _OVERWRITTEN},
    )
    return upsert.returning(*returned(row_columns(scores_table)), sort_by_parameter_order=True)


def upsert_scores(scores: Sequence[Score], dialect: str) -> AnyQuery:
    """Record scores, overwriting the value, label, explanation, metadata and time of a
    stored score of the same (result, name) -- which keeps its id. Returns the rows as
    stored, in the order given."""
    return Query(_upsert_scores(dialect), [score_row(score) for score in scores])


_TAKEN_SCORES = sa.select(_scores.result_id, _scores.name).where(
    one_of(_scores.result_id, "result_ids")
)


def taken_scores(result_ids: Sequence[str]) -> Query[str, str]:
    """(result id, name) of the stored scores of these results."""
    return reading(_TAKEN_SCORES, {"result_ids": list(result_ids)})


_SCORES_OF_RESULTS = sa.select(_scores.result_id, _scores.name, _scores.value).where(
    one_of(_scores.result_id, "result_ids")
)


def scores_of_results_rows(result_ids: Sequence[str]) -> Query[str, str, float]:
    """(result id, name, value) of the scores of these results: SQLite's reads of results
    take their scores from here, each value a REAL as stored (see
    :func:`runstore.sql.compiler.scores_of`)."""
    return reading(_SCORES_OF_RESULTS, {"result_ids": list(result_ids)})


_DELETE_SCORES_OF_RESULTS = sa.delete(scores_table).where(one_of(_scores.result_id, "result_ids"))


def delete_scores_of_results(result_ids: Sequence[str]) -> AnyQuery:
    return Query(_DELETE_SCORES_OF_RESULTS, {"result_ids": list(result_ids)})


_SCORE_ORDER = (_scores.name, _scores.value, _scores.id)


@functools.cache
def _select_scores(by_result: bool, by_name: bool, keyset: bool, limited: bool) -> sa.Select[Any]:
    conditions = [_scores.run_id == sa.bindparam("run_id")]
    if by_result:
        # A result's scores come from the (result, name) index. The run's own condition is
        # written as an expression (``"runId" || ''``), which no index serves: else SQLite
        # picks the run's (name, value, id) index for its order, and reads every score of
        # the run -- millions -- to find a result's few.
        run_id = _scores.run_id.concat(sa.literal_column("''", sa.String()))
        conditions = [
            run_id == sa.bindparam("run_id"),
            _scores.result_id == sa.bindparam("result_id"),
        ]
    if by_name:
        conditions.append(_scores.name == sa.bindparam("name"))
    if keyset:
        mark = [sa.bindparam(f"after_{column.key}", type_=column.type) for column in _SCORE_ORDER]
        conditions.append(sa.tuple_(*_SCORE_ORDER) > sa.tuple_(*mark))
    statement = sa.select(scores_table).where(*conditions).order_by(*_SCORE_ORDER)
    if limited:
        statement = statement.limit(sa.bindparam("limit", type_=sa.Integer()))
    return statement


def select_scores(
    run_id: str,
    result_id: str | None,
    name: str | None,
    after: Score | None = None,
    limit: int | None = None,
) -> AnyQuery:
    """A run's scores (of one result, of one name), by name, value and id; the next
    ``limit`` after ``after``, if given."""
    values: dict[str, Any] = {"run_id": run_id, "result_id": result_id, "name": name}
    if after is not None:
        values |= {f"after_{column.key}": getattr(after, column.key) for column in _SCORE_ORDER}
    if limit is not None:
        values["limit"] = limit
    shape = (result_id is not None, name is not None, after is not None, limit is not None)
    statement = _select_scores(*shape)
    return Query(statement, {key: value for key, value in values.items() if value is not None})


# -- operations --------------------------------------------------------------------------


@operation(Mode.WRITE)
def _add_scores(call: calls.AddScores, database: Database) -> Steps[list[Score]]:
    if not call.inputs:
        return []
    run_of_result: dict[str, str] = {}
    result_ids = sorted({input.result_id for input in call.inputs})
    for start in range(0, len(result_ids), CHUNK):
        found = yield from rows(results_of(result_ids[start : start + CHUNK]))
        run_of_result.update((row[0], row[1]) for row in found)
    missing = missing_result(call.inputs, run_of_result)
    if missing is not None:
        raise missing
    scores = recorded_scores(call.inputs, run_of_result, database.now())
    if call.replace:
        stored: list[Score] = []
        for start in range(0, len(scores), CHUNK):
            query = upsert_scores(scores[start : start + CHUNK], database.dialect)
            stored += scores_from((yield from rows(query)))
    else:
        try:
            for start in range(0, len(scores), CHUNK):
                chunk = scores[start : start + CHUNK]
                yield from execute(insert_scores([score_row(score) for score in chunk]))
        except DuplicateError as exc:
            raise (yield from _locate_duplicate_score(scores)) or exc from exc
        stored = scores
    # After the scores: each insert holds its run's row (a foreign key's share lock), so
    # a summary kept meanwhile either waited for this transaction or is cleared here.
    yield from execute(forget_summaries(run_of_result.values()))
    return stored


def _locate_duplicate_score(scores: Sequence[Score]) -> Steps[DuplicateError | None]:
    result_ids = sorted({score.result_id for score in scores})
    taken: set[tuple[str, str]] = set()
    for start in range(0, len(result_ids), CHUNK):
        found = yield from rows(taken_scores(result_ids[start : start + CHUNK]))
        taken.update((row[0], row[1]) for row in found)
    for position, score in enumerate(scores):
        if (score.result_id, score.name) in taken:
            return score_taken(score.result_id, score.name, position=position)
    return None


@operation(Mode.READ)
def _list_scores(call: calls.ListScores, database: Database) -> Steps[list[Score]]:
    return scores_from((yield from rows(select_scores(call.run_id, call.result_id, call.name))))


@operation(Mode.READ)
def scores_batch(call: calls.IterScores, after: Score | None) -> Steps[list[Score]]:
    """The next ``batch_size`` scores of ``call``'s list, after ``after``."""
    query = select_scores(call.run_id, call.result_id, call.name, after, call.batch_size)
    return scores_from((yield from rows(query)))


def _iter_scores(call: calls.IterScores, database: Database) -> Walk[Score]:
    after: Score | None = None
    while True:
        scores = yield from run(scores_batch(call, after))
        yield Emit(scores)
        if len(scores) < call.batch_size:
            return
        after = scores[-1]


PLANS: Plans = {calls.AddScores: _add_scores, calls.ListScores: _list_scores}
"""The operation of each call on scores."""
WALKS: Walks = {calls.IterScores: _iter_scores}
"""The walk of each ``iter_*`` call on scores."""
