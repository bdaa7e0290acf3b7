"""Kept summaries: a finished run's summary stored, so that reading it -- alone, or a
trend's worth -- costs a row, never a pass over the run's results. Statements first; the
operations below them.

A kept summary is current while its ``key`` equals the run's ``summaryKey``. Every write
that changes what a summary covers clears ``summaryKey`` (:mod:`runstore.sql.runs`):
results written or deleted, in the statement that counts them on the run's row; a
recount; the run set back to a status that is not finished; scores, after them, in their
transaction (:func:`~runstore.sql.runs.forget_summaries`). Nothing else a writer does is
new: no row of its own, no lock it did not take before.

Keeping a summary (:func:`keep_summary`) takes three transactions, so that no writer
waits on a summary being computed:

1. the run's row is locked (``FOR UPDATE``: Postgres waits for every transaction that
   holds the row -- a writer that counted results, or took it ``FOR KEY SHARE`` before
   writing scores -- and holds off new ones for this transaction's few statements) and
   given a new ``summaryKey``;
2. the summary is computed in a snapshot taken after that (:mod:`runstore.sql.answers`):
   it sees every write that committed before the key was set;
3. it is stored with the key -- and is current only if no write cleared the key since:
   a writer that came after step 1 clears it (on Postgres, an ``UPDATE`` of the run's row
   applies to its latest version, so even a statement that began before step 1 did).

So a kept summary is exactly the computed one, or not current. A read on a replica, and
``keep=False``, never keep: they read a current summary or compute one.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from runstore import calls
from runstore.errors import DatabaseError
from runstore.errors import RunNotFoundError
from runstore.models import FINISHED
from runstore.models import Run
from runstore.models import RunFilters
from runstore.models import RunStatus
from runstore.models import RunSummary
from runstore.models import RunTrend
from runstore.models import TrendPoint
from runstore.plans import Mode
from runstore.plans import Plan
from runstore.plans import Query
from runstore.plans import Steps
from runstore.plans import begin
from runstore.plans import execute
from runstore.plans import first
from runstore.plans import reading
from runstore.plans import rowcount
from runstore.plans import rows
from runstore.sql.answers import computed_summary
from runstore.sql.compiler import one_of
from runstore.sql.database import Database
from runstore.sql.database import Plans
from runstore.sql.lists import runs_batch
from runstore.sql.rows import runs_from
from runstore.sql.runs import update_run_mode
from runstore.sql.runs import update_run_steps
from runstore.tables import run_columns
from runstore.tables import runs_table
from runstore.tables import summaries_table
from runstore.tables import summary_columns

__all__ = ["PLANS", "keep_summary"]

_runs = run_columns
_summaries = summary_columns
_FINISHED = sorted(status.value for status in FINISHED)

# -- statements --------------------------------------------------------------------------

_CURRENT = sa.and_(_runs.id == _summaries.run_id, _runs.summary_key == _summaries.key)

_KEPT_SUMMARIES = (
    sa.select(_summaries.run_id, _summaries.summary)
    .join(runs_table, _CURRENT)
    .where(one_of(_summaries.run_id, "run_ids"), _runs.status.in_(_FINISHED))
)


def kept_summaries(run_ids: Sequence[str]) -> Query[str, str]:
    """(run id, summary JSON) of those runs whose kept summary is current."""
    return reading(_KEPT_SUMMARIES, {"run_ids": list(run_ids)})


_CLAIM = (
    sa.select(
        _runs.status,
        sa.exists().where(_CURRENT).label("current"),
    )
    .where(_runs.id == sa.bindparam("run_id"))
    .with_for_update()
)


def claim(run_id: str) -> Query[str, bool]:
    """The run's status, and whether its kept summary is current; its row locked until
    the transaction ends (Postgres: after every transaction that held it has ended)."""
    return reading(_CLAIM, {"run_id": run_id})


_SET_KEY = (
    sa.update(runs_table)
    .where(_runs.id == sa.bindparam("run_id"))
    .values(summary_key=sa.bindparam("key", type_=_runs.summary_key.type))
)


@functools.cache
def _store(dialect: str) -> sa.Insert:
    kept = sa.select(
        _runs.id,
        sa.bindparam("key", type_=_summaries.key.type),
        sa.bindparam("summary", type_=_summaries.summary.type),
        sa.bindparam("kept_at", type_=_summaries.kept_at.type),
    ).where(
        _runs.id == sa.bindparam("run_id"),
        _runs.summary_key == sa.bindparam("key", type_=_runs.summary_key.type),
    )
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(summaries_table)
    columns = [_summaries.run_id, _summaries.key, _summaries.summary, _summaries.kept_at]
    upsert: sa.Insert = insert.from_select(columns, kept).on_conflict_do_update(
        index_elements=[_summaries.run_id],
        set_={column: insert.excluded[column.key] for column in columns[1:]},
    )
    return upsert.execution_options(preserve_rowcount=True)


def store(run_id: str, key: str, summary: RunSummary, now: datetime, dialect: str) -> Query[()]:
    """Store the run's summary under ``key`` -- only while that is still the run's
    ``summaryKey`` (no row otherwise)."""
    values = {
        "run_id": run_id,
        "key": key,
        "summary": summary.model_dump_json(by_alias=True),
        "kept_at": now,
    }
    return Query(_store(dialect), values)


_UNKEPT = (
    sa.select(_runs.id)
    .select_from(runs_table.outerjoin(summaries_table, _CURRENT))
    .where(_runs.status.in_(_FINISHED), _summaries.run_id.is_(None))
    .order_by(_runs.created_at, _runs.id)
)


@functools.cache
def _unkept(by_dataset: bool) -> sa.Select[str]:
    if not by_dataset:
        return _UNKEPT
    return _UNKEPT.where(_runs.dataset_id == sa.bindparam("dataset_id"))


def unkept_runs(dataset_id: str | None) -> Query[str]:
    """The finished runs (of the dataset) without a current kept summary, oldest first."""
    values = {} if dataset_id is None else {"dataset_id": dataset_id}
    return reading(_unkept(dataset_id is not None), values)


# -- steps -------------------------------------------------------------------------------


def _read(text: str) -> RunSummary:
    return RunSummary.model_validate_json(text)


def keep_summary(run_id: str, database: Database) -> Steps[tuple[RunSummary | None, bool]]:
    """Compute a finished run's summary and keep it, in three transactions (see the
    module's description): the summary (None if the run is not finished, or its summary
    is kept already) and whether it was kept. A failure to keep -- a write cleared the key
    meanwhile, the database refused the write -- leaves the summary unkept, not wrong.

    Raises:
        RunNotFoundError: the run does not exist.
    """
    key = secrets.token_hex(12)
    try:
        yield from begin(Mode.WRITE)
        claimed = yield from first(claim(run_id))
        if claimed is None:
            raise RunNotFoundError(run_id)
        status, current = claimed
        if status not in FINISHED or current:
            return None, False
        yield from execute(Query(_SET_KEY, {"run_id": run_id, "key": key}))
    except DatabaseError:
        # Keeping writes; a role or file that may not, or a write that did not go
        # through, leaves the summary to be computed.
        yield from begin(Mode.SNAPSHOT)
        return (yield from computed_summary(run_id, database)), False
    yield from begin(Mode.SNAPSHOT)
    summary = yield from computed_summary(run_id, database)
    try:
        yield from begin(Mode.WRITE_ONE)
        stored = yield from rowcount(store(run_id, key, summary, database.now(), database.dialect))
    except DatabaseError:
        stored = 0
    return summary, stored == 1


def summary_of(run_id: str, database: Database, *, keep: bool) -> Steps[RunSummary]:
    """The run's summary: the kept one if current, else computed -- and, with ``keep``,
    kept when the run is finished (never where reads may go to a replica)."""
    kept = yield from first(kept_summaries([run_id]))
    if kept is not None:
        return _read(kept[1])
    if keep and not database.replicated:
        summary, _ = yield from keep_summary(run_id, database)
        if summary is not None:
            return summary
        kept = yield from first(kept_summaries([run_id]))  # kept meanwhile
        if kept is not None:
            return _read(kept[1])
    yield from begin(Mode.SNAPSHOT)
    return (yield from computed_summary(run_id, database))


# -- operations --------------------------------------------------------------------------


def _summarize_run(call: calls.SummarizeRun, database: Database) -> Plan[RunSummary]:
    """One row when the run's summary is kept; else computed (:mod:`runstore.sql.answers`)
    and, for a finished run, kept."""
    steps = summary_of(call.run_id, database, keep=call.keep)
    return Plan(Mode.READ, steps, lambda: _summarize_run(call, database))


def _update_run(call: calls.UpdateRun, database: Database) -> Plan[Run]:
    """The update (:mod:`runstore.sql.runs`); a run it finishes has its summary kept after
    it, in transactions of their own."""
    return Plan(
        update_run_mode(call),
        _update_and_keep(call, database),
        lambda: _update_run(call, database),
    )


def _update_and_keep(call: calls.UpdateRun, database: Database) -> Steps[Run]:
    run = yield from update_run_steps(call, database)
    if "status" in call.input.changes() and run.status in FINISHED:
        with contextlib.suppress(RunNotFoundError):  # deleted since: the update stands
            yield from keep_summary(run.id, database)
    return run


def _keep_summaries(call: calls.KeepSummaries, database: Database) -> Plan[int]:
    """A write from its first statement: never sent to a read replica."""
    return Plan(Mode.WRITE, _keep_each(call, database), lambda: _keep_summaries(call, database))


def _keep_each(call: calls.KeepSummaries, database: Database) -> Steps[int]:
    """Each finished run without a current summary, oldest first, kept on its own."""
    waiting = [row[0] for row in (yield from rows(unkept_runs(call.dataset_id)))]
    kept = 0
    for run_id in waiting:
        try:
            _, stored = yield from keep_summary(run_id, database)
        except RunNotFoundError:
            continue  # deleted since
        kept += stored
    return kept


def _trend_runs(call: calls.TrendRuns, database: Database) -> Plan[RunTrend]:
    return Plan(Mode.READ, _trend(call, database), lambda: _trend_runs(call, database))


def _trend(call: calls.TrendRuns, database: Database) -> Steps[RunTrend]:
    """The newest runs that match, by the runs' list (of each finished status, when no
    status is given: two keyset pages, merged), then their kept summaries in one read; a
    run without one is summarised here."""
    filters = call.filters
    found: list[Run] = []
    for status in _statuses(filters):
        asked = filters.model_copy(update={"status": status})
        found += runs_from((yield from rows(runs_batch(asked, None, call.last))))
    newest = sorted(found, key=lambda run: (run.created_at, run.id), reverse=True)[: call.last]
    newest.reverse()
    kept = {
        run_id: _read(text)
        for run_id, text in (yield from rows(kept_summaries([run.id for run in newest])))
    }
    points = []
    for run in newest:
        summary = kept.get(run.id)
        if summary is None:
            try:
                summary = yield from summary_of(run.id, database, keep=call.keep)
            except RunNotFoundError:
                continue  # deleted since it was listed
        points.append(TrendPoint.of(run, summary))
    assert filters.dataset_id is not None  # a trend is of a dataset
    return RunTrend(dataset_id=filters.dataset_id, points=tuple(points))


def _statuses(filters: RunFilters) -> list[RunStatus]:
    return [filters.status] if filters.status is not None else sorted(FINISHED)


PLANS: Plans = {
    calls.UpdateRun: _update_run,
    calls.SummarizeRun: _summarize_run,
    calls.KeepSummaries: _keep_summaries,
    calls.TrendRuns: _trend_runs,
}
"""The operation of each call that keeps or reads kept summaries."""
