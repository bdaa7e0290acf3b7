"""Create the runs and run-results tables.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from runstore.types import JsonColumn, UTCDateTime

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNS = "mastra_dataset_runs"
RESULTS = "mastra_dataset_run_results"


def upgrade() -> None:
    op.create_table(
        RUNS,
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("datasetId", sa.Text(), nullable=False),
        sa.Column("datasetVersion", UTCDateTime(), nullable=False),
        sa.Column("targetType", sa.Text(), nullable=False),
        sa.Column("targetId", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("totalItems", sa.Integer(), nullable=False),
        sa.Column("succeededCount", sa.Integer(), nullable=False),
        sa.Column("failedCount", sa.Integer(), nullable=False),
        sa.Column("startedAt", UTCDateTime(), nullable=True),
        sa.Column("completedAt", UTCDateTime(), nullable=True),
        sa.Column("createdAt", UTCDateTime(), nullable=False),
        sa.Column("updatedAt", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mastra_dataset_runs"),
    )
    op.create_index("ix_mastra_dataset_runs_createdAt_id", RUNS, ["createdAt", "id"])
    op.create_index(
        "ix_mastra_dataset_runs_datasetId_createdAt_id", RUNS, ["datasetId", "createdAt", "id"]
    )

    op.create_table(
        RESULTS,
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("runId", sa.Text(), nullable=False),
        sa.Column("itemId", sa.Text(), nullable=False),
        sa.Column("itemVersion", UTCDateTime(), nullable=False),
        sa.Column("input", JsonColumn(none_as_null=False), nullable=False),
        sa.Column("output", JsonColumn(none_as_null=True), nullable=True),
        sa.Column("expectedOutput", JsonColumn(none_as_null=True), nullable=True),
        sa.Column("latency", sa.Double(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("startedAt", UTCDateTime(), nullable=False),
        sa.Column("completedAt", UTCDateTime(), nullable=False),
        sa.Column("retryCount", sa.Integer(), nullable=False),
        sa.Column("createdAt", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mastra_dataset_run_results"),
        sa.UniqueConstraint("runId", "itemId", name="uq_mastra_dataset_run_results_runId_itemId"),
        sa.ForeignKeyConstraint(
            ["runId"],
            [f"{RUNS}.id"],
            name="fk_mastra_dataset_run_results_runId_mastra_dataset_runs",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_mastra_dataset_run_results_runId_startedAt_id",
        RESULTS,
        ["runId", "startedAt", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_mastra_dataset_run_results_runId_startedAt_id", table_name=RESULTS)
    op.drop_table(RESULTS)
    op.drop_index("ix_mastra_dataset_runs_datasetId_createdAt_id", table_name=RUNS)
    op.drop_index("ix_mastra_dataset_runs_createdAt_id", table_name=RUNS)
    op.drop_table(RUNS)
