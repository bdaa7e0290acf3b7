"""Indexes for listing runs by status, target type and target id.

Revision ID: 0002_run_filter_indexes
Revises: 0001_initial
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002_run_filter_indexes"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNS = "mastra_dataset_runs"
INDEXES = {
    "ix_mastra_dataset_runs_status_createdAt_id": ["status", "createdAt", "id"],
    "ix_mastra_dataset_runs_targetType_createdAt_id": ["targetType", "createdAt", "id"],
    "ix_mastra_dataset_runs_targetId_createdAt_id": ["targetId", "createdAt", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, RUNS, columns)


def downgrade() -> None:
    for name in reversed(INDEXES):
        op.drop_index(name, table_name=RUNS)
