"""prune_runs of many runs with their results: runs deleted per second, and the longest
single transaction.

Each side gets runs of its own dataset, made by runstore's ``create_run``; their results
are copied from a template run (loaded by the raw driver) by one ``INSERT ... SELECT`` in
the database, with fresh ids (not timed). runstore prunes its runs with one call,
``prune_runs(older_than=now, dataset_id=...)`` at the default ``batch_size``, on a storage
of its own whose engine has ``begin`` and pool ``checkin`` listeners: a transaction lasts
from SQLAlchemy's ``begin`` event (just before runstore's ``BEGIN``) until the connection
is back in the pool, after the ``COMMIT``. The raw side runs runstore's statements in the
same batches -- ``BEGIN``, the next run ids and result counts (oldest first, locked on
Postgres), of which a batch takes runs while their results stay within 10,000 (a run goes
whole), the deletes of their scores, results, tags, kept summaries and runs, ``COMMIT`` --
timing each transaction the same way. One call per side: pruning deletes what it measures.
"""

from __future__ import annotations

import re
import time
from datetime import UTC
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bench.backends import Backend
from bench.backends import log
from bench.data import RESULT_COLUMNS
from bench.data import run_fields
from bench.data import timestamp
from bench.harness import check_params
from bench.report import Measurement
from bench.report import Target
from runstore import CreateRunInput
from runstore import SqlRunsStorage
from runstore.sql.runs import PRUNE_RESULTS
from runstore.tables import results_table
from runstore.tables import runs_table

BATCH = 100
"""prune_runs' default batch_size."""
SELECT = ("older_than", "dataset_id", "size")


def make_runs(b: Backend, dataset: str, count: int, template: str, per_run: int) -> None:
    """``count`` runs of ``dataset``, made by ``create_run``, each holding a copy of the
    ``per_run`` results of ``template`` (fresh ids), copied in the database (not timed)."""
    for _ in range(count):
        b.storage.create_run(CreateRunInput(**run_fields(per_run) | {"dataset_id": dataset}))
    columns = ", ".join(f'"{name}"' for name in RESULT_COLUMNS)
    copied = ", ".join(
        b.new_id_sql() if name == "id" else "runs.id" if name == "runId" else f't."{name}"'
        for name in RESULT_COLUMNS
    )

    def param(name: str) -> str:
        return f"%({name})s" if b.postgres else f":{name}"

    with b.transaction():
        b.raw.execute(
            f"INSERT INTO {results_table.name} ({columns}) SELECT {copied} "
            f"FROM {runs_table.name} AS runs JOIN {results_table.name} AS t "
            f'ON t."runId" = {param("template")} WHERE runs."datasetId" = {param("dataset")}',
            {"template": template, "dataset": dataset},
        )
        b.raw.execute(
            f'UPDATE {runs_table.name} SET "resultCount" = {per_run} '
            f'WHERE "datasetId" = {param("dataset")}',
            {"dataset": dataset},
        )


def _in_list(sql: str, size: int) -> str:
    """A caught SQLite statement's expanded ``IN (...)`` list, for ``size`` values."""
    marks = ", ".join(["?"] * size)
    return re.sub(r"IN \(.*\)", f"IN ({marks})", " ".join(sql.split()))


def measure(b: Backend) -> None:
    runs, per_run = b.settings.prune_runs, b.settings.prune_results
    started = time.perf_counter()
    template = b.seed(per_run, analyze=False)
    for side in ("runstore", "raw"):
        make_runs(b, f"prune-{side}", runs, template, per_run)
    b.analyze()
    log(f"  made 2 x {runs:,} runs of {per_run:,} results in {time.perf_counter() - started:.1f} s")

    # runstore's statements, caught on two runs of a dataset of their own.
    for _ in range(2):
        b.storage.create_run(CreateRunInput(**run_fields() | {"dataset_id": "prune-probe"}))
    cutoff = datetime.now(UTC)
    pruned, caught = b.caught(
        "prune_runs",
        lambda s: s.prune_runs(older_than=cutoff, dataset_id="prune-probe", batch_size=2),
    )
    assert pruned == 2, pruned
    begin, select, *deletes, again, select_again = caught
    assert begin.sql == again.sql == b.begin_write, caught
    assert select_again.sql == select.sql, caught
    values = {"older_than": timestamp(b.dialect, cutoff), "dataset_id": "prune-probe", "size": 2}
    values["offset"] = 0
    names = SELECT if b.postgres else (*SELECT, "offset")  # SQLite: LIMIT ? OFFSET ?
    check_params(select, b.bind(names, values))
    assert len(deletes) == 5, deletes  # scores, results, tags, kept summaries, runs
    if b.postgres:  # one array parameter
        assert all(len(d.params["run_ids"]) == 2 for d in deletes), deletes
    else:  # an expanded IN
        assert all(len(d.params) == 2 for d in deletes), deletes
    b.show_raw(b.begin_write, select.sql, *(d.sql for d in deletes))

    cutoff = datetime.now(UTC)
    # runstore, on a storage of its own with transaction listeners.
    pruner = SqlRunsStorage(b.url)
    pruner.get_run_by_id("none")  # connect and check the schema first
    ours: list[float] = []
    opened: list[float] = []

    def on_begin(_connection: Any) -> None:
        opened.append(time.perf_counter())

    def on_checkin(_dbapi: Any, _record: Any) -> None:
        if opened:
            ours.append(time.perf_counter() - opened.pop())

    sa.event.listen(pruner.engine, "begin", on_begin)
    sa.event.listen(pruner.engine, "checkin", on_checkin)
    try:
        began = time.perf_counter()
        deleted = pruner.prune_runs(older_than=cutoff, dataset_id="prune-runstore")
        our_time = time.perf_counter() - began
    finally:
        pruner.close()
    assert deleted == runs, deleted

    # The raw side: the same statements in the same batches.
    params = b.bind(
        names,
        values
        | {"older_than": timestamp(b.dialect, cutoff), "dataset_id": "prune-raw", "size": BATCH},
    )
    theirs: list[float] = []
    removed, began = 0, time.perf_counter()
    while True:
        opened_at = time.perf_counter()
        with b.transaction():
            found = b.raw.execute(select.sql, params).fetchall()
            ids: list[str] = []
            results = 0
            for run_id, result_count in found:
                if ids and results + result_count > PRUNE_RESULTS:
                    break
                ids.append(run_id)
                results += result_count
            for delete in deletes if ids else []:
                if b.postgres:
                    b.raw.execute(delete.sql, {"run_ids": ids})
                else:
                    b.raw.execute(_in_list(delete.sql, len(ids)), ids)
        theirs.append(time.perf_counter() - opened_at)
        removed += len(ids)
        if len(found) < BATCH and len(ids) == len(found):
            break
    their_time = time.perf_counter() - began
    assert removed == runs, removed
    left = b.raw.execute(
        f"SELECT count(*) FROM {runs_table.name} WHERE \"datasetId\" LIKE 'prune-%'"
    ).fetchone()
    assert left[0] == 0, left

    transactions = f"runstore {len(ours)} transactions, raw {len(theirs)}"
    b.add(
        Measurement(
            f"prune_runs, {runs:,} runs of {per_run:,} results (per run)",
            b.label,
            "ms",
            our_time / runs,
            their_time / runs,
            None,
            f"runstore {runs / our_time:,.0f} runs/s, raw {runs / their_time:,.0f} runs/s; "
            f"batch_size {BATCH} (the default), {transactions}; one call per side",
        )
    )
    b.add(
        Measurement(
            f"prune_runs, {runs:,} runs of {per_run:,} results: longest transaction",
            b.label,
            "s",
            max(ours),
            max(theirs),
            Target("below", 1) if b.postgres else None,
            f"up to {BATCH} runs and {PRUNE_RESULTS:,} results a batch "
            f"({min(BATCH, max(1, PRUNE_RESULTS // per_run))} runs here); from `begin` to the "
            "connection's return to the pool after `COMMIT`",
        )
    )
