"""Scores per result, a result count on each run, and indexes for latency and failures.

* ``mastra_dataset_run_scores``: one row per (result, score name), deleted with its run or
  result.
* ``mastra_dataset_runs."resultCount"``: the number of results of each run, kept in the
  transaction of every write of results, so a page's total is read, not counted. Filled
  from the rows on upgrade.
* Indexes on results: by latency (slowest first, latency statistics) and, for failed
  results only, by start time and by latency.

Downgrading drops the scores, so it refuses while any is stored.

Revision ID: 0003_scores_and_answers
Revises: 0002_run_filter_indexes
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from runstore.types import JsonColumn, UTCDateTime

revision: str = "0003_scores_and_answers"
down_revision: str | None = "0002_run_filter_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNS = "mastra_dataset_runs"
RESULTS = "mastra_dataset_run_results"
SCORES = "mastra_dataset_run_scores"
FAILED = sa.text("error IS NOT NULL")


def upgrade() -> None:
    # Added in place (both databases can; no table copy), then filled from the rows.
    op.add_column(RUNS, sa.Column("resultCount", sa.Integer(), nullable=False, server_default="0"))
    # Built from table constructs, not text, so a schema translation applies to it too.
    runs = sa.table(RUNS, sa.column("id"), sa.column("resultCount"))
    results = sa.table(RESULTS, sa.column("runId"))
    counted = sa.select(sa.func.count()).where(results.c.runId == runs.c.id).scalar_subquery()
    op.execute(runs.update().values(resultCount=counted))

    op.create_index(f"ix_{RESULTS}_runId_latency_id", RESULTS, ["runId", "latency", "id"])
    for order in ("startedAt", "latency"):
        op.create_index(
            f"ix_{RESULTS}_failed_runId_{order}_id",
            RESULTS,
            ["runId", order, "id"],
            sqlite_where=FAILED,
            postgresql_where=FAILED,
        )

    op.create_table(
        SCORES,
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("runId", sa.Text(), nullable=False),
        sa.Column("resultId", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("metadata", JsonColumn(none_as_null=True), nullable=True),
        sa.Column("createdAt", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{SCORES}"),
        sa.UniqueConstraint("resultId", "name", name=f"uq_{SCORES}_resultId_name"),
        sa.ForeignKeyConstraint(
            ["runId"], [f"{RUNS}.id"], name=f"fk_{SCORES}_runId_{RUNS}", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["resultId"],
            [f"{RESULTS}.id"],
            name=f"fk_{SCORES}_resultId",
            ondelete="CASCADE",
        ),
    )
    op.create_index(f"ix_{SCORES}_runId_name_value_id", SCORES, ["runId", "name", "value", "id"])


def downgrade() -> None:
    if not context.is_offline_mode():
        _refuse_to_drop_scores()
    op.drop_index(f"ix_{SCORES}_runId_name_value_id", table_name=SCORES)
    op.drop_table(SCORES)
    for order in ("latency", "startedAt"):
        op.drop_index(f"ix_{RESULTS}_failed_runId_{order}_id", table_name=RESULTS)
    op.drop_index(f"ix_{RESULTS}_runId_latency_id", table_name=RESULTS)
    op.drop_column(RUNS, "resultCount")


def _refuse_to_drop_scores() -> None:
    stored = sa.select(sa.func.count()).select_from(sa.table(SCORES))
    scores = op.get_bind().execute(stored).scalar_one()
    if scores:
        raise RuntimeError(
            f"downgrading below 0003_scores_and_answers would delete the {scores} stored "
            f"scores; delete them first (DELETE FROM {SCORES}) if that is what you want"
        )
