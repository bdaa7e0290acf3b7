"""Repetitions: a result is unique by (run, item, repetition), not (run, item).

* ``mastra_dataset_run_results.repetition``: the n-th deliberate sample of an item in a
  run; 0 for every row written before.
* The unique constraint becomes ("runId", "itemId", repetition). SQLite cannot alter a
  constraint, so the table is copied (Alembic's batch mode), every row with it; the copy
  starts from the table as revision 0003 left it, so no reflection is needed and the
  migration renders offline too.

Downgrading refuses while any result has a repetition above 0: those rows could not be
kept under the old constraint.

Revision ID: 0004_repetitions
Revises: 0003_scores_and_answers
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from runstore.types import JsonColumn, UTCDateTime

revision: str = "0004_repetitions"
down_revision: str | None = "0003_scores_and_answers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNS = "mastra_dataset_runs"
RESULTS = "mastra_dataset_run_results"
BY_ITEM = f"uq_{RESULTS}_runId_itemId"
BY_REPETITION = f"uq_{RESULTS}_runId_itemId_repetition"
FAILED = sa.text("error IS NOT NULL")


def _results(*, repetition: bool) -> sa.Table:
    """The results table as revision 0003 left it, or as this revision leaves it (with
    ``repetition``): what batch mode copies from."""
    unique = ["runId", "itemId", "repetition"] if repetition else ["runId", "itemId"]
    return sa.Table(
        RESULTS,
        sa.MetaData(),
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
        *([sa.Column("repetition", sa.Integer(), nullable=False, server_default="0")] * repetition),
        sa.PrimaryKeyConstraint("id", name=f"pk_{RESULTS}"),
        sa.UniqueConstraint(*unique, name=BY_REPETITION if repetition else BY_ITEM),
        sa.ForeignKeyConstraint(
            ["runId"], [f"{RUNS}.id"], name=f"fk_{RESULTS}_runId_{RUNS}", ondelete="CASCADE"
        ),
        sa.Index(f"ix_{RESULTS}_runId_startedAt_id", "runId", "startedAt", "id"),
        sa.Index(f"ix_{RESULTS}_runId_latency_id", "runId", "latency", "id"),
        *[
            sa.Index(
                f"ix_{RESULTS}_failed_runId_{order}_id",
                "runId",
                order,
                "id",
                sqlite_where=FAILED,
                postgresql_where=FAILED,
            )
            for order in ("startedAt", "latency")
        ],
    )


def upgrade() -> None:
    with op.batch_alter_table(RESULTS, copy_from=_results(repetition=False)) as batch:
        batch.add_column(sa.Column("repetition", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint(BY_ITEM, type_="unique")
        batch.create_unique_constraint(BY_REPETITION, ["runId", "itemId", "repetition"])


def downgrade() -> None:
    if not context.is_offline_mode():
        _refuse_to_merge_repetitions()
    with op.batch_alter_table(RESULTS, copy_from=_results(repetition=True)) as batch:
        batch.drop_constraint(BY_REPETITION, type_="unique")
        batch.create_unique_constraint(BY_ITEM, ["runId", "itemId"])
        batch.drop_column("repetition")


def _refuse_to_merge_repetitions() -> None:
    results = sa.table(RESULTS, sa.column("repetition"))
    repeated = sa.select(sa.func.count()).select_from(results).where(results.c.repetition > 0)
    count = op.get_bind().execute(repeated).scalar_one()
    if count:
        raise RuntimeError(
            f"downgrading below 0004_repetitions would lose the {count} results with a "
            f"repetition above 0 (the older schema holds one result per run and item); "
            f"delete them first if that is what you want"
        )
