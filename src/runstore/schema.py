"""The column-schema registry: the single description of runstore's tables.

Column names are camelCase, as the framework's own (TypeScript) store names them, and
used as they are in the database. The ORM tables
(:mod:`runstore.tables`) are generated from these mappings; nothing else lists the columns.

The names users import from here are listed once, in the package's ``__all__``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

ColumnType = Literal["text", "timestamp", "jsonb", "integer", "float"]


@dataclass(frozen=True, slots=True)
class ColumnReference:
    """A foreign key: ``table.column``, with what happens to this row when that one goes."""

    table: str
    column: str
    on_delete: Literal["CASCADE", "RESTRICT", "SET NULL"] = "CASCADE"
    name: str | None = None
    """The constraint's name, where the naming convention's would pass Postgres' 63
    characters."""


@dataclass(frozen=True, slots=True)
class StorageColumn:
    """One column of a registered table."""

    type: ColumnType
    nullable: bool = False
    primary_key: bool = False
    references: ColumnReference | None = None
    server_default: str | None = None
    """The value the database gives rows that do not set the column (SQL text)."""


TABLE_DATASET_RUNS = "mastra_dataset_runs"
TABLE_DATASET_RUN_RESULTS = "mastra_dataset_run_results"
TABLE_DATASET_RUN_SCORES = "mastra_dataset_run_scores"
TABLE_DATASET_RUN_TAGS = "mastra_dataset_run_tags"
TABLE_DATASET_RUN_SUMMARIES = "mastra_dataset_run_summaries"

DATASET_RUNS_SCHEMA: Mapping[str, StorageColumn] = MappingProxyType(
    {
        "id": StorageColumn("text", primary_key=True),
        "datasetId": StorageColumn("text"),
        "datasetVersion": StorageColumn("timestamp"),
        "targetType": StorageColumn("text"),
        "targetId": StorageColumn("text"),
        "status": StorageColumn("text"),
        "totalItems": StorageColumn("integer"),
        "succeededCount": StorageColumn("integer"),
        "failedCount": StorageColumn("integer"),
        "startedAt": StorageColumn("timestamp", nullable=True),
        "completedAt": StorageColumn("timestamp", nullable=True),
        "createdAt": StorageColumn("timestamp"),
        "updatedAt": StorageColumn("timestamp"),
        "resultCount": StorageColumn("integer", server_default="0"),
        "name": StorageColumn("text", nullable=True),
        "description": StorageColumn("text", nullable=True),
        "tags": StorageColumn("jsonb", server_default="[]"),
        "metadata": StorageColumn("jsonb", server_default="{}"),
        "summaryKey": StorageColumn("text", nullable=True),
    }
)
"""``summaryKey`` is no attribute of a run: it is the key of the run's kept summary while
that is current (see ``mastra_dataset_run_summaries``), and NULL once any write changes
what a summary covers -- every such write clears it in the statement that writes the run's
row, or after its own writes."""

DATASET_RUN_RESULTS_SCHEMA: Mapping[str, StorageColumn] = MappingProxyType(
    {
        "id": StorageColumn("text", primary_key=True),
        "runId": StorageColumn("text", references=ColumnReference(TABLE_DATASET_RUNS, "id")),
        "itemId": StorageColumn("text"),
        "itemVersion": StorageColumn("timestamp"),
        "input": StorageColumn("jsonb"),
        "output": StorageColumn("jsonb", nullable=True),
        "expectedOutput": StorageColumn("jsonb", nullable=True),
        "latency": StorageColumn("float"),
        "error": StorageColumn("text", nullable=True),
        "startedAt": StorageColumn("timestamp"),
        "completedAt": StorageColumn("timestamp"),
        "retryCount": StorageColumn("integer"),
        "createdAt": StorageColumn("timestamp"),
        "repetition": StorageColumn("integer", server_default="0"),
        "inputTokens": StorageColumn("integer", nullable=True),
        "outputTokens": StorageColumn("integer", nullable=True),
        "cost": StorageColumn("float", nullable=True),
        "traceId": StorageColumn("text", nullable=True),
        "metadata": StorageColumn("jsonb", nullable=True),
    }
)

DATASET_RUN_SCORES_SCHEMA: Mapping[str, StorageColumn] = MappingProxyType(
    {
        "id": StorageColumn("text", primary_key=True),
        "runId": StorageColumn("text", references=ColumnReference(TABLE_DATASET_RUNS, "id")),
        "resultId": StorageColumn(
            "text",
            references=ColumnReference(
                TABLE_DATASET_RUN_RESULTS, "id", name="fk_mastra_dataset_run_scores_resultId"
            ),
        ),
        "name": StorageColumn("text"),
        "value": StorageColumn("float"),
        "label": StorageColumn("text", nullable=True),
        "explanation": StorageColumn("text", nullable=True),
        "metadata": StorageColumn("jsonb", nullable=True),
        "createdAt": StorageColumn("timestamp"),
    }
)

DATASET_RUN_TAGS_SCHEMA: Mapping[str, StorageColumn] = MappingProxyType(
    {
        "runId": StorageColumn(
            "text", primary_key=True, references=ColumnReference(TABLE_DATASET_RUNS, "id")
        ),
        "tag": StorageColumn("text", primary_key=True),
        "createdAt": StorageColumn("timestamp"),
    }
)
"""One row per tag of a run, with the run's ``createdAt``: what a tag filter walks, in
the runs' list order. (The run's own row holds its tags too, to read them with it.)"""

DATASET_RUN_SUMMARIES_SCHEMA: Mapping[str, StorageColumn] = MappingProxyType(
    {
        "runId": StorageColumn(
            "text", primary_key=True, references=ColumnReference(TABLE_DATASET_RUNS, "id")
        ),
        "key": StorageColumn("text"),
        "summary": StorageColumn("text"),
        "keptAt": StorageColumn("timestamp"),
    }
)
"""A finished run's kept summary: its JSON text (exactly what ``summarize_run`` computed),
current while ``key`` equals the run's ``summaryKey``. Derived: dropping it loses nothing
that cannot be computed again."""

TABLE_SCHEMAS: Mapping[str, Mapping[str, StorageColumn]] = MappingProxyType(
    {
        TABLE_DATASET_RUNS: DATASET_RUNS_SCHEMA,
        TABLE_DATASET_RUN_RESULTS: DATASET_RUN_RESULTS_SCHEMA,
        TABLE_DATASET_RUN_SCORES: DATASET_RUN_SCORES_SCHEMA,
        TABLE_DATASET_RUN_TAGS: DATASET_RUN_TAGS_SCHEMA,
        TABLE_DATASET_RUN_SUMMARIES: DATASET_RUN_SUMMARIES_SCHEMA,
    }
)

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def attribute_name(column_name: str) -> str:
    """The snake_case attribute for a camelCase column: ``datasetId`` -> ``dataset_id``."""
    return _CAMEL_BOUNDARY.sub("_", column_name).lower()
