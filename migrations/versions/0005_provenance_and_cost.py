"""Provenance and cost: runs' names, descriptions, tags and metadata; results' tokens,
cost, trace id and metadata.

* ``mastra_dataset_runs``: ``name`` and ``description`` (NULL for every run before),
  ``tags`` (a JSON list, ``[]`` before) and ``metadata`` (a JSON object, ``{}`` before);
  an index on (name, createdAt, id), and on Postgres a GIN index of the metadata
  (``jsonb_path_ops``: what ``@>`` filters use).
* ``mastra_dataset_run_tags``: a row per tag of a run, with the run's ``createdAt``,
  indexed by (tag, createdAt, runId): what a tag filter walks. Empty on upgrade (no run
  had tags).
* ``mastra_dataset_run_results``: ``inputTokens``, ``outputTokens``, ``cost``,
  ``traceId`` and ``metadata``, NULL for every result before.

Every column is added in place, nullable or with a constant default: neither database
rewrites a table for it (Postgres records the default in its catalog; SQLite's ``ALTER
TABLE ADD COLUMN`` changes the schema only), so upgrading a database of millions of
results takes as long as on an empty one.

Downgrading drops what this revision added, so it refuses while any run has a name,
description, tags or metadata, or any result has tokens, a cost, a trace id or metadata
-- naming what would be lost.

Revision ID: 0005_provenance_and_cost
Revises: 0004_repetitions
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from runstore.types import JsonColumn, UTCDateTime

revision: str = "0005_provenance_and_cost"
down_revision: str | None = "0004_repetitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNS = "mastra_dataset_runs"
RESULTS = "mastra_dataset_run_results"
TAGS = "mastra_dataset_run_tags"
BY_NAME = f"ix_{RUNS}_name_createdAt_id"
BY_METADATA = f"ix_{RUNS}_metadata"
BY_TAG = f"ix_{TAGS}_tag_createdAt_runId"

RESULT_COLUMNS = ("inputTokens", "outputTokens", "cost", "traceId", "metadata")


def upgrade() -> None:
    op.add_column(RUNS, sa.Column("name", sa.Text(), nullable=True))
    op.add_column(RUNS, sa.Column("description", sa.Text(), nullable=True))
    op.add_column(
        RUNS,
        sa.Column("tags", JsonColumn(none_as_null=False), nullable=False, server_default="[]"),
    )
    op.add_column(
        RUNS,
        sa.Column("metadata", JsonColumn(none_as_null=False), nullable=False, server_default="{}"),
    )
    op.create_index(BY_NAME, RUNS, ["name", "createdAt", "id"])
    if op.get_context().dialect.name == "postgresql":
        op.create_index(
            BY_METADATA,
            RUNS,
            ["metadata"],
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
        )

    op.create_table(
        TAGS,
        sa.Column("runId", sa.Text(), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("createdAt", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("runId", "tag", name=f"pk_{TAGS}"),
        sa.ForeignKeyConstraint(
            ["runId"], [f"{RUNS}.id"], name=f"fk_{TAGS}_runId_{RUNS}", ondelete="CASCADE"
        ),
    )
    op.create_index(BY_TAG, TAGS, ["tag", "createdAt", "runId"])

    op.add_column(RESULTS, sa.Column("inputTokens", sa.Integer(), nullable=True))
    op.add_column(RESULTS, sa.Column("outputTokens", sa.Integer(), nullable=True))
    op.add_column(RESULTS, sa.Column("cost", sa.Double(), nullable=True))
    op.add_column(RESULTS, sa.Column("traceId", sa.Text(), nullable=True))
    op.add_column(RESULTS, sa.Column("metadata", JsonColumn(none_as_null=True), nullable=True))


def downgrade() -> None:
    if not context.is_offline_mode():
        _refuse_to_lose_provenance()
    for column in reversed(RESULT_COLUMNS):
        op.drop_column(RESULTS, column)
    op.drop_index(BY_TAG, table_name=TAGS)
    op.drop_table(TAGS)
    if op.get_context().dialect.name == "postgresql":
        op.drop_index(BY_METADATA, table_name=RUNS)
    op.drop_index(BY_NAME, table_name=RUNS)
    for column in ("metadata", "tags", "description", "name"):
        op.drop_column(RUNS, column)


def _refuse_to_lose_provenance() -> None:
    """Count what the downgrade would drop, and refuse, naming it, if any is stored."""
    runs = sa.table(
        RUNS, sa.column("name"), sa.column("description"), sa.column("tags"), sa.column("metadata")
    )
    results = sa.table(RESULTS, *(sa.column(name) for name in RESULT_COLUMNS))
    text = sa.Text()
    stored = {
        "runs with a name": (runs, runs.c.name.is_not(None)),
        "runs with a description": (runs, runs.c.description.is_not(None)),
        "runs with tags": (runs, sa.cast(runs.c.tags, text) != "[]"),
        "runs with metadata": (runs, sa.cast(runs.c.metadata, text) != "{}"),
        **{
            f"results with {label}": (results, results.c[column].is_not(None))
            for column, label in (
                ("inputTokens", "input tokens"),
                ("outputTokens", "output tokens"),
                ("cost", "a cost"),
                ("traceId", "a trace id"),
                ("metadata", "metadata"),
            )
        },
    }
    bind = op.get_bind()
    found = []
    for what, (table, condition) in stored.items():
        count = bind.execute(sa.select(sa.func.count()).select_from(table).where(condition))
        number = count.scalar_one()
        if number:
            found.append(f"{number} {what}")
    if found:
        raise RuntimeError(
            f"downgrading below 0005_provenance_and_cost would lose what only this schema "
            f"holds: {', '.join(found)}; clear them first if that is what you want"
        )
