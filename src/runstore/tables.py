"""Declarative ORM tables, generated from the column-schema registry.

The registry (:mod:`runstore.schema`) names the columns; this module adds what only the
database needs -- the indexes behind every query the storage makes -- and a naming
convention, so every constraint and index has a stable name that migrations can refer to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, mapped_column

from runstore.schema import (
    DATASET_RUN_RESULTS_SCHEMA,
    DATASET_RUN_SCORES_SCHEMA,
    DATASET_RUNS_SCHEMA,
    TABLE_DATASET_RUN_RESULTS,
    TABLE_DATASET_RUN_SCORES,
    TABLE_DATASET_RUNS,
    StorageColumn,
    attribute_name,
)
from runstore.types import sql_type

__all__ = [
    "Base",
    "RunResultRow",
    "RunRow",
    "ScoreRow",
    "metadata",
    "results_table",
    "runs_table",
    "scores_table",
]

_RESERVED = frozenset({"metadata", "registry"})
"""Attribute names a declarative class keeps for itself; such columns get a trailing _."""

NAMING_CONVENTION: dict[str, str] = {
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Names for the constraints the tables declare without one; every index is named."""


class Base(DeclarativeBase):
    """The declarative base of runstore's tables (and only runstore's)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _mapped_columns(schema: Mapping[str, StorageColumn]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name, column in schema.items():
        arguments: list[Any] = [name, sql_type(column.type, nullable=column.nullable)]
        if column.references is not None:
            target = f"{column.references.table}.{column.references.column}"
            arguments.append(
                sa.ForeignKey(
                    target, ondelete=column.references.on_delete, name=column.references.name
                )
            )
        attribute = attribute_name(name)
        columns[f"{attribute}_" if attribute in _RESERVED else attribute] = mapped_column(
            *arguments,
            primary_key=column.primary_key,
            nullable=column.nullable,
            server_default=column.server_default,
        )
    return columns


def _declare(
    class_name: str,
    table_name: str,
    schema: Mapping[str, StorageColumn],
    table_args: Sequence[Any],
) -> type[Base]:
    namespace = {
        "__tablename__": table_name,
        "__table_args__": tuple(table_args),
        "__doc__": f"A row of ``{table_name}``.",
        **_mapped_columns(schema),
    }
    return type(class_name, (Base,), namespace)


RunRow = _declare(
    "RunRow",
    TABLE_DATASET_RUNS,
    DATASET_RUNS_SCHEMA,
    [
        # list_runs(): newest first, optionally for one dataset.
        sa.Index(f"ix_{TABLE_DATASET_RUNS}_createdAt_id", "createdAt", "id"),
        sa.Index(f"ix_{TABLE_DATASET_RUNS}_datasetId_createdAt_id", "datasetId", "createdAt", "id"),
        # list_runs(status=...), (target_type=...), (target_id=...), newest first.
        sa.Index(f"ix_{TABLE_DATASET_RUNS}_status_createdAt_id", "status", "createdAt", "id"),
        sa.Index(
            f"ix_{TABLE_DATASET_RUNS}_targetType_createdAt_id", "targetType", "createdAt", "id"
        ),
        sa.Index(f"ix_{TABLE_DATASET_RUNS}_targetId_createdAt_id", "targetId", "createdAt", "id"),
    ],
)

RunResultRow = _declare(
    "RunResultRow",
    TABLE_DATASET_RUN_RESULTS,
    DATASET_RUN_RESULTS_SCHEMA,
    [
        # One result per (run, item, repetition); also serves lookups of a run's results
        # by item, and pairing two runs' results by item.
        sa.UniqueConstraint("runId", "itemId", "repetition"),
        # list_results(): a run's results in execution order.
        sa.Index(f"ix_{TABLE_DATASET_RUN_RESULTS}_runId_startedAt_id", "runId", "startedAt", "id"),
        # Slowest first, and latency statistics: a run's results by latency.
        sa.Index(f"ix_{TABLE_DATASET_RUN_RESULTS}_runId_latency_id", "runId", "latency", "id"),
        # has_error=True, in either order: only the failed results (few) are indexed.
        *[
            sa.Index(
                f"ix_{TABLE_DATASET_RUN_RESULTS}_failed_runId_{order}_id",
                "runId",
                order,
                "id",
                sqlite_where=sa.text("error IS NOT NULL"),
                postgresql_where=sa.text("error IS NOT NULL"),
            )
            for order in ("startedAt", "latency")
        ],
    ],
)

ScoreRow = _declare(
    "ScoreRow",
    TABLE_DATASET_RUN_SCORES,
    DATASET_RUN_SCORES_SCHEMA,
    [
        # One score per (result, name); also serves a result's scores.
        sa.UniqueConstraint("resultId", "name"),
        # Statistics of one score over a run, filtering results by a score's range, and
        # a run's scores in order (name, value, id).
        sa.Index(
            f"ix_{TABLE_DATASET_RUN_SCORES}_runId_name_value_id", "runId", "name", "value", "id"
        ),
    ],
)

metadata = Base.metadata
runs_table: sa.Table = RunRow.__table__  # type: ignore[assignment]
results_table: sa.Table = RunResultRow.__table__  # type: ignore[assignment]
scores_table: sa.Table = ScoreRow.__table__  # type: ignore[assignment]
