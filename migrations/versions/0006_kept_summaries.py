"""Kept summaries: a finished run's summary, stored so that reading it costs one row.

* ``mastra_dataset_runs``: ``summaryKey`` (NULL for every run before), the key of the
  run's kept summary while that is current; any write that changes what a summary covers
  sets it back to NULL.
* ``mastra_dataset_run_summaries``: a row per run whose summary was kept -- the summary's
  JSON text, its key and when it was kept. Empty on upgrade: ``runstore db
  keep-summaries`` (or ``keep_summaries()``) keeps those of the runs finished before, and
  ``summarize_run`` keeps each as it first computes it.

The column is added in place, nullable: neither database rewrites the runs table for it.

Downgrading drops both. Nothing is lost: kept summaries are derived from the results and
scores, and the release before computes every summary afresh.

Revision ID: 0006_kept_summaries
Revises: 0005_provenance_and_cost
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from runstore.types import UTCDateTime

revision: str = "0006_kept_summaries"
down_revision: str | None = "0005_provenance_and_cost"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNS = "mastra_dataset_runs"
SUMMARIES = "mastra_dataset_run_summaries"


def upgrade() -> None:
    op.add_column(RUNS, sa.Column("summaryKey", sa.Text(), nullable=True))
    op.create_table(
        SUMMARIES,
        sa.Column("runId", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("keptAt", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("runId", name=f"pk_{SUMMARIES}"),
        sa.ForeignKeyConstraint(
            ["runId"], [f"{RUNS}.id"], name=f"fk_{SUMMARIES}_runId_{RUNS}", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    # Kept summaries are derived (recomputed from the results and scores): nothing is lost.
    op.drop_table(SUMMARIES)
    op.drop_column(RUNS, "summaryKey")
