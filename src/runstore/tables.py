"""runstore's tables as declarative ORM classes, generated from the column-schema registry.

The registry (:mod:`runstore.schema`) names and types the columns, and each table is
built from it here: its columns named as registered -- camelCase, as the framework's own
store names them, in the database -- and keyed by their snake_case attribute (``datasetId`` is
``RunRow.dataset_id``), with what only the database needs: the indexes behind every query
the storage makes, and a naming convention, so every constraint and index has a name
that migrations can refer to.

Each class maps its table (SQLAlchemy's declarative class with an imperative table) and
types its attributes, so the statements built from them are typed --
``select(RunRow.id, RunRow.result_count)`` reads rows of ``(str, int)`` -- and an
application can read runstore's tables with an ORM session of its own::

    with Session(storage.engine) as session:
        slow = session.scalars(
            select(RunResultRow).where(RunResultRow.run_id == run.id, RunResultRow.latency > 1000)
        ).all()

(Write through the storage: its calls keep each run's counters and a result's scores
right.) A test holds every class's attributes against the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped

from runstore.jsonvalues import JsonValue
from runstore.schema import DATASET_RUN_RESULTS_SCHEMA
from runstore.schema import DATASET_RUN_SCORES_SCHEMA
from runstore.schema import DATASET_RUN_SUMMARIES_SCHEMA
from runstore.schema import DATASET_RUN_TAGS_SCHEMA
from runstore.schema import DATASET_RUNS_SCHEMA
from runstore.schema import TABLE_DATASET_RUN_RESULTS
from runstore.schema import TABLE_DATASET_RUN_SCORES
from runstore.schema import TABLE_DATASET_RUN_SUMMARIES
from runstore.schema import TABLE_DATASET_RUN_TAGS
from runstore.schema import TABLE_DATASET_RUNS
from runstore.schema import StorageColumn
from runstore.schema import attribute_name
from runstore.types import sql_type

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "RunResultRow",
    "RunRow",
    "RunSummaryRow",
    "RunTagRow",
    "ScoreRow",
    "column_key",
    "metadata",
    "result_columns",
    "results_table",
    "run_columns",
    "runs_table",
    "score_columns",
    "scores_table",
    "summaries_table",
    "summary_columns",
    "tag_columns",
    "tags_table",
]

NAMING_CONVENTION: dict[str, str] = {
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Names for the constraints the tables declare without one; every index is named."""

_RESERVED = frozenset({"metadata", "registry"})
"""Attribute names a declarative class keeps for itself; such columns get a trailing _."""


class Base(DeclarativeBase):
    """The declarative base of runstore's tables (and only runstore's)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def column_key(name: str) -> str:
    """The key -- and the ORM attribute -- of a registered column: its snake_case name
    (``datasetId`` -> ``dataset_id``), with a trailing ``_`` where the declarative class
    keeps the name for itself (``metadata_``)."""
    attribute = attribute_name(name)
    return f"{attribute}_" if attribute in _RESERVED else attribute


def _columns(*names: str) -> list[str]:
    """The keys of registered columns, for the indexes and constraints built on them."""
    return [column_key(name) for name in names]


def _table(name: str, schema: Mapping[str, StorageColumn], *extra: Any) -> sa.Table:
    """A table of the registry, with ``extra`` constraints and indexes."""
    columns = []
    for column_name, column in schema.items():
        arguments: list[Any] = [column_name, sql_type(column.type, nullable=column.nullable)]
        if column.references is not None:
            target = f"{column.references.table}.{column.references.column}"
            arguments.append(
                sa.ForeignKey(
                    target, ondelete=column.references.on_delete, name=column.references.name
                )
            )
        columns.append(
            sa.Column(
                *arguments,
                key=column_key(column_name),
                primary_key=column.primary_key,
                nullable=column.nullable,
                server_default=column.server_default,
            )
        )
    return sa.Table(name, Base.metadata, *columns, *extra)


class RunRow(Base):
    """A run, as stored: a row of ``mastra_dataset_runs``."""

    __table__ = _table(
        TABLE_DATASET_RUNS,
        DATASET_RUNS_SCHEMA,
        # list_runs(): newest first, optionally for one dataset.
        sa.Index(f"ix_{TABLE_DATASET_RUNS}_createdAt_id", *_columns("createdAt", "id")),
        sa.Index(
            f"ix_{TABLE_DATASET_RUNS}_datasetId_createdAt_id",
            *_columns("datasetId", "createdAt", "id"),
        ),
        # list_runs(status=...), (target_type=...), (target_id=...), newest first.
        sa.Index(
            f"ix_{TABLE_DATASET_RUNS}_status_createdAt_id", *_columns("status", "createdAt", "id")
        ),
        sa.Index(
            f"ix_{TABLE_DATASET_RUNS}_targetType_createdAt_id",
            *_columns("targetType", "createdAt", "id"),
        ),
        sa.Index(
            f"ix_{TABLE_DATASET_RUNS}_targetId_createdAt_id",
            *_columns("targetId", "createdAt", "id"),
        ),
        # list_runs(name=...), newest first.
        sa.Index(
            f"ix_{TABLE_DATASET_RUNS}_name_createdAt_id", *_columns("name", "createdAt", "id")
        ),
        # list_runs(metadata=...): containment (@>) on Postgres; SQLite has no such index.
        sa.Index(
            f"ix_{TABLE_DATASET_RUNS}_metadata",
            column_key("metadata"),
            postgresql_using="gin",
            postgresql_ops={column_key("metadata"): "jsonb_path_ops"},
            info={"only_on": "postgresql"},  # for migrations' autogenerate
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[str]
    dataset_id: Mapped[str]
    dataset_version: Mapped[datetime]
    target_type: Mapped[str]
    target_id: Mapped[str]
    status: Mapped[str]
    total_items: Mapped[int]
    succeeded_count: Mapped[int]
    failed_count: Mapped[int]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    result_count: Mapped[int]
    name: Mapped[str | None]
    description: Mapped[str | None]
    tags: Mapped[JsonValue]
    metadata_: Mapped[JsonValue]
    summary_key: Mapped[str | None]


class RunResultRow(Base):
    """A result of one item in a run, as stored: a row of ``mastra_dataset_run_results``.
    (Its scores are :class:`ScoreRow` rows.)"""

    __table__ = _table(
        TABLE_DATASET_RUN_RESULTS,
        DATASET_RUN_RESULTS_SCHEMA,
        # One result per (run, item, repetition); also serves lookups of a run's results
        # by item, and pairing two runs' results by item.
        sa.UniqueConstraint(*_columns("runId", "itemId", "repetition")),
        # list_results(): a run's results in execution order.
        sa.Index(
            f"ix_{TABLE_DATASET_RUN_RESULTS}_runId_startedAt_id",
            *_columns("runId", "startedAt", "id"),
        ),
        # Slowest first, and latency statistics: a run's results by latency.
        sa.Index(
            f"ix_{TABLE_DATASET_RUN_RESULTS}_runId_latency_id", *_columns("runId", "latency", "id")
        ),
        # has_error=True, in either order: only the failed results (few) are indexed.
        *[
            sa.Index(
                f"ix_{TABLE_DATASET_RUN_RESULTS}_failed_runId_{order}_id",
                *_columns("runId", order, "id"),
                sqlite_where=sa.text("error IS NOT NULL"),
                postgresql_where=sa.text("error IS NOT NULL"),
            )
            for order in ("startedAt", "latency")
        ],
    )

    id: Mapped[str]
    run_id: Mapped[str]
    item_id: Mapped[str]
    item_version: Mapped[datetime]
    input: Mapped[JsonValue]
    output: Mapped[JsonValue | None]
    expected_output: Mapped[JsonValue | None]
    latency: Mapped[float]
    error: Mapped[str | None]
    started_at: Mapped[datetime]
    completed_at: Mapped[datetime]
    retry_count: Mapped[int]
    created_at: Mapped[datetime]
    repetition: Mapped[int]
    input_tokens: Mapped[int | None]
    output_tokens: Mapped[int | None]
    cost: Mapped[float | None]
    trace_id: Mapped[str | None]
    metadata_: Mapped[JsonValue | None]


class ScoreRow(Base):
    """A score of a result, as stored: a row of ``mastra_dataset_run_scores``."""

    __table__ = _table(
        TABLE_DATASET_RUN_SCORES,
        DATASET_RUN_SCORES_SCHEMA,
        # One score per (result, name); also serves a result's scores.
        sa.UniqueConstraint(*_columns("resultId", "name")),
        # Statistics of one score over a run, filtering results by a score's range, and
        # a run's scores in order (name, value, id).
        sa.Index(
            f"ix_{TABLE_DATASET_RUN_SCORES}_runId_name_value_id",
            *_columns("runId", "name", "value", "id"),
        ),
    )

    id: Mapped[str]
    run_id: Mapped[str]
    result_id: Mapped[str]
    name: Mapped[str]
    value: Mapped[float]
    label: Mapped[str | None]
    explanation: Mapped[str | None]
    metadata_: Mapped[JsonValue | None]
    created_at: Mapped[datetime]


class RunTagRow(Base):
    """A tag of a run, as stored: a row of ``mastra_dataset_run_tags``."""

    __table__ = _table(
        TABLE_DATASET_RUN_TAGS,
        DATASET_RUN_TAGS_SCHEMA,
        # list_runs(tags=[...]): the runs with a tag, newest first -- the runs' list order.
        sa.Index(
            f"ix_{TABLE_DATASET_RUN_TAGS}_tag_createdAt_runId",
            *_columns("tag", "createdAt", "runId"),
        ),
    )

    run_id: Mapped[str]
    tag: Mapped[str]
    created_at: Mapped[datetime]


class RunSummaryRow(Base):
    """A finished run's kept summary: a row of ``mastra_dataset_run_summaries``."""

    __table__ = _table(TABLE_DATASET_RUN_SUMMARIES, DATASET_RUN_SUMMARIES_SCHEMA)

    run_id: Mapped[str]
    key: Mapped[str]
    summary: Mapped[str]
    kept_at: Mapped[datetime]


metadata = Base.metadata
runs_table: sa.Table = RunRow.__table__
results_table: sa.Table = RunResultRow.__table__
scores_table: sa.Table = ScoreRow.__table__
tags_table: sa.Table = RunTagRow.__table__
summaries_table: sa.Table = RunSummaryRow.__table__

if TYPE_CHECKING:
    # What runstore's statements are built of: for the type checker, the classes' typed
    # attributes -- so ``select(run_columns.id, run_columns.result_count)`` reads rows of
    # (str, int) and operations' row access is checked -- and when they run, the tables'
    # own columns, the same expressions without the ORM's compilation on every statement.
    run_columns = RunRow
    result_columns = RunResultRow
    score_columns = ScoreRow
    tag_columns = RunTagRow
    summary_columns = RunSummaryRow
else:
    run_columns = runs_table.c
    result_columns = results_table.c
    score_columns = scores_table.c
    tag_columns = tags_table.c
    summary_columns = summaries_table.c
