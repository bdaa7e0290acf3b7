"""Between rows and models: which attribute each column fills, in both directions.

Statements select whole rows in the tables' column order; operations make the models
of them here, inside the transaction that read them, and make the rows of models to
insert.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter

from runstore.models import Run
from runstore.models import RunResult
from runstore.models import Score
from runstore.models import snapshots_of
from runstore.schema import attribute_name
from runstore.tables import results_table
from runstore.tables import runs_table
from runstore.tables import scores_table

__all__ = [
    "RESULT_ATTRIBUTES",
    "RESULT_COLUMNS",
    "RUN_ATTRIBUTES",
    "RUN_COLUMNS",
    "SCORE_ATTRIBUTES",
    "result_row",
    "results_from",
    "row_columns",
    "run_row",
    "runs_from",
    "score_row",
    "score_rows",
    "scores_from",
]


_NOT_ATTRIBUTES = frozenset({"summaryKey"})
"""Columns that hold no attribute of their row's model (the runs' ``summaryKey``): no
statement that reads rows for models selects them."""


def row_columns(table: sa.Table) -> list[sa.Column[Any]]:
    """The columns a statement selects for rows of ``table``'s model, in the table's
    order: every column that holds one of the model's attributes."""
    return [column for column in table.columns if column.name not in _NOT_ATTRIBUTES]


def _attributes(table: sa.Table) -> tuple[str, ...]:
    return tuple(attribute_name(column.name) for column in row_columns(table))


RUN_ATTRIBUTES = _attributes(runs_table)
"""The attribute each column of a runs row fills, in the order statements select them."""
RESULT_ATTRIBUTES = (*_attributes(results_table), "scores")
"""The same for a results row: the table's columns, then the result's scores."""
SCORE_ATTRIBUTES = _attributes(scores_table)
"""The same for a scores row."""

RUN_COLUMNS: dict[str, sa.Column[Any]] = {
    attribute_name(column.name): column for column in row_columns(runs_table)
}
"""The runs table's columns by the attribute of :class:`~runstore.models.Run` they hold."""
RESULT_COLUMNS: dict[str, sa.Column[Any]] = {
    attribute_name(column.name): column for column in results_table.columns
}
"""The results table's columns by the attribute of :class:`~runstore.models.RunResult`
they hold."""

_RUN_MODELS = TypeAdapter(list[Run])
_RESULT_MODELS = TypeAdapter(list[RunResult])
_SCORE_MODELS = TypeAdapter(list[Score])


def _models(adapter: TypeAdapter[list[Any]], names: Sequence[str], rows: Iterable[Any]) -> Any:
    return snapshots_of(adapter, [dict(zip(names, row, strict=False)) for row in rows])


def runs_from(rows: Iterable[Sequence[Any]]) -> list[Run]:
    """Runs from rows that begin with the runs table's columns."""
    runs: list[Run] = _models(_RUN_MODELS, RUN_ATTRIBUTES, rows)
    return runs


def results_from(rows: Iterable[Sequence[Any]]) -> list[RunResult]:
    """Results from rows that begin with the results table's columns and the scores."""
    results: list[RunResult] = _models(_RESULT_MODELS, RESULT_ATTRIBUTES, rows)
    return results


def scores_from(rows: Iterable[Sequence[Any]]) -> list[Score]:
    """Scores from rows of the scores table."""
    scores: list[Score] = _models(_SCORE_MODELS, SCORE_ATTRIBUTES, rows)
    return scores


def _keys(table: sa.Table) -> tuple[tuple[str, str], ...]:
    return tuple(zip((c.key for c in row_columns(table)), _attributes(table), strict=True))


_RUN_KEYS = _keys(runs_table)
_RESULT_KEYS = _keys(results_table)
_SCORE_KEYS = _keys(scores_table)


def run_row(run: Run) -> dict[str, Any]:
    """The values of a run's row, by column key."""
    return {key: getattr(run, attribute) for key, attribute in _RUN_KEYS}


def result_row(result: RunResult) -> dict[str, Any]:
    """The values of a result's row, by column key."""
    return {key: getattr(result, attribute) for key, attribute in _RESULT_KEYS}


def score_row(score: Score) -> dict[str, Any]:
    """The values of a score's row, by column key."""
    return {key: getattr(score, attribute) for key, attribute in _SCORE_KEYS}


def score_rows(fields: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows of scores given by their fields, by attribute name (see
    :func:`runstore.stored.score_fields`): no model made of them."""
    return [{key: score[attribute] for key, attribute in _SCORE_KEYS} for score in fields]
