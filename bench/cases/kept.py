"""Kept summaries: reading a finished run's summary, keeping it when the run finishes, and
a dataset's trend served by its runs' kept summaries.

A run finished by ``update_run(status="completed")`` has its summary computed and stored
(:mod:`runstore.sql.summaries`); ``summarize_run`` then reads that one row, and
``trend_runs`` reads the runs and their kept summaries in one statement each.

- **summarize_run, kept**: the big scored run, which the viewer's case marked completed.
  The raw side runs runstore's statement (the summary row, joined with the run's current
  ``summaryKey``) and ``json.loads`` the summary.
- **Keeping the summary when a run finishes**: ``update_run(status="completed")`` of that
  run, set running again before each sample (untimed), which makes its kept summary stale.
  The raw side computes the summary with summarize_run's hand-written query
  (:mod:`bench.cases.summarize`): finishing costs what computing the summary costs.
- **trend_runs**: runs of a dataset of their own, their results copied from a template run
  and scored in the database (untimed), each finished by ``update_run``, which keeps its
  summary. The raw side runs runstore's statements -- the runs of each finished status,
  newest first, then their kept summaries by id -- binding the ids it read, and decodes the
  JSON. The same trend is then timed with no summary kept: a score replaced on one result
  of each run makes every kept summary stale, and ``keep=False`` computes them in the call
  without keeping them; its raw side lists the runs and runs the hand-written summary query
  of each.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any

from bench.backends import Backend
from bench.backends import log
from bench.cases import prune
from bench.cases import summarize
from bench.harness import Call
from bench.harness import Statement
from bench.harness import fixed
from bench.report import Target
from runstore import RunSummary
from runstore import RunTrend
from runstore import UpdateRunInput
from runstore.schema import DATASET_RUNS_SCHEMA
from runstore.tables import results_table
from runstore.tables import runs_table

DATASET = "trend"
RUN_JSON = [n for n, column in enumerate(DATASET_RUNS_SCHEMA.values()) if column.type == "jsonb"]
"""Positions of the JSON columns (tags, metadata) in a run's row as runstore reads it."""
CREATED_AT = list(DATASET_RUNS_SCHEMA).index("createdAt")
KEPT_READ = Target("below", 5)
TREND_READ = Target("below", 50)


def _selects(statements: Sequence[Statement]) -> list[Statement]:
    """runstore's statements of a read, checked to be SELECTs only (no transaction)."""
    assert all(s.sql.lstrip().upper().startswith("SELECT") for s in statements), statements
    return list(statements)


def _run_rows(b: Backend, statements: Sequence[Statement]) -> list[list[Any]]:
    """Raw: the runs runstore's list statements read, JSON columns decoded, oldest first."""
    runs = []
    for statement in statements:
        for row in b.raw.execute(statement.sql, statement.params).fetchall():
            values = list(row)
            for number in RUN_JSON:
                if values[number] is not None:
                    values[number] = json.loads(values[number])
            runs.append(values)
    runs.sort(key=lambda run: (run[CREATED_AT], run[0]))
    return runs


def _with_ids(b: Backend, statement: Statement, ids: list[str]) -> Any:
    """The kept summaries' statement's parameters, for the run ids the raw side read."""
    if b.postgres:
        return {**statement.params, "run_ids": ids}
    return (*ids, *statement.params[len(ids) :])


def measure(b: Backend, run_id: str, rows: int) -> None:
    _summarize_kept(b, run_id, rows)
    _finishing(b, run_id, rows)
    _trend(b)


def _summarize_kept(b: Backend, run_id: str, rows: int) -> None:
    storage = b.storage
    summary, statements = b.caught("summarize_run, kept", lambda s: s.summarize_run(run_id))
    (read,) = _selects(statements)
    b.show_raw(read.sql)

    def raw() -> Any:
        row = b.raw.execute(read.sql, read.params).fetchone()
        return json.loads(row[1])

    assert RunSummary.model_validate(raw()) == summary, "the kept summary is runstore's"
    (computed,) = [
        row.runstore
        for row in b.measurements
        if row.operation == summarize.operation(rows) and row.backend == b.label
    ]
    b.measure(
        f"summarize_run, kept, {rows:,} results",
        fixed(lambda: storage.summarize_run(run_id)),
        fixed(raw),
        unit="ms",
        samples=b.settings.page_samples,
        warmup=10,
        target=KEPT_READ,
        details="the run finished (the viewer's case marked it completed), so its summary is "
        "kept; the raw side: runstore's statement (the summary row joined with the run's "
        f"current `summaryKey`) and `json.loads` of it. Computing it took "
        f"{computed * 1e3:,.0f} ms (`{summarize.operation(rows)}`, above)",
    )


def _finishing(b: Backend, run_id: str, rows: int) -> None:
    storage = b.storage

    def runstore_side() -> Call:
        storage.update_run(UpdateRunInput(id=run_id, status="running"))  # the summary stale
        return lambda: storage.update_run(UpdateRunInput(id=run_id, status="completed"))

    b.measure(
        f"keeping the summary when a run finishes, {rows:,} results",
        runstore_side,
        fixed(lambda: summarize.raw_figures(b, run_id)),
        unit="ms",
        samples=b.settings.answer_samples,
        warmup=1,
        rounds=2,
        details='`update_run(status="completed")` of the run, set running before each '
        "sample (untimed): the update, then the summary computed in a snapshot and stored, "
        "in transactions of their own; the raw side: summarize_run's hand-written query "
        "computing the figures",
    )
    (kept,) = _selects(b.caught("summarize_run, kept", lambda s: s.summarize_run(run_id))[1])
    assert b.raw.execute(kept.sql, kept.params).fetchone() is not None, "finishing kept it"


def _make_trend_runs(b: Backend) -> None:
    """The trend's runs, scored, each finished by ``update_run`` (untimed)."""
    count, per_run = b.settings.trend_runs, b.settings.trend_results
    started = time.perf_counter()
    template = b.seed(per_run, analyze=False)
    prune.make_runs(b, DATASET, count, template, per_run)
    b.seed_scores(dataset_id=DATASET)
    finishing = time.perf_counter()
    for run in list(b.storage.iter_runs(dataset_id=DATASET)):
        b.storage.update_run(UpdateRunInput(id=run.id, status="completed"))
    each = (time.perf_counter() - finishing) / count
    log(f"  made {count} runs of {per_run:,} results in {time.perf_counter() - started:.1f} s;")
    log(f"  finishing one, which keeps its summary: {each * 1e3:.1f} ms")


def _stale(b: Backend) -> None:
    """Every kept summary of the trend's runs made stale: a score of one result of each
    run replaced through runstore (untimed)."""
    param = "%(dataset)s" if b.postgres else ":dataset"
    firsts = b.raw.execute(
        f'SELECT min(id) FROM {results_table.name} WHERE "runId" IN '
        f'(SELECT id FROM {runs_table.name} WHERE "datasetId" = {param}) GROUP BY "runId"',
        {"dataset": DATASET},
    ).fetchall()
    scores = [{"result_id": first, "name": "accuracy", "value": 1.0} for (first,) in firsts]
    b.storage.add_scores(scores, replace=True)


def _trend(b: Backend) -> None:
    storage, count, per_run = b.storage, b.settings.trend_runs, b.settings.trend_results
    _make_trend_runs(b)
    b.analyze()
    trend, statements = b.caught("trend_runs", lambda s: s.trend_runs(DATASET, last=count))
    *lists, summaries = _selects(statements)
    b.show_raw(*(s.sql for s in statements))

    def raw() -> tuple[list[list[Any]], dict[str, Any]]:
        runs = _run_rows(b, lists)[-count:]
        ids = [run[0] for run in runs]
        kept = b.raw.execute(summaries.sql, _with_ids(b, summaries, ids)).fetchall()
        return runs, {found: json.loads(text) for found, text in kept}

    def check(trend: RunTrend) -> None:
        runs, kept = raw()
        assert [point.run_id for point in trend.points] == [run[0] for run in runs], "same runs"
        assert len(trend.points) == count, len(trend.points)
        assert len(kept) == count, len(kept)
        for point in trend.points:
            assert point.results == per_run, point
            assert len(point.scores) == 2, point
            assert RunSummary.model_validate(kept[point.run_id]).results == per_run

    check(trend)
    size = f"{count} finished runs of {per_run:,} results each"
    b.measure(
        f"trend_runs over {size}",
        fixed(lambda: storage.trend_runs(DATASET, last=count)),
        fixed(raw),
        unit="ms",
        samples=b.settings.deep_samples,
        warmup=2,
        rounds=2,
        target=TREND_READ,
        details=f"`trend_runs(dataset, last={count})`, every run's summary kept when it "
        "finished; the raw side: runstore's statements -- the runs of each finished status, "
        "newest first, then their kept summaries by the ids read -- and `json.loads` of the "
        "runs' JSON columns and of the summaries",
    )
    kept_trend = b.measurements[-1].runstore

    _stale(b)
    assert not b.raw.execute(summaries.sql, summaries.params).fetchall(), "no summary current"

    def raw_computed() -> list[tuple[Any, ...]]:
        runs = _run_rows(b, lists)[-count:]
        return [summarize.raw_figures(b, run[0]) for run in runs]

    computed = storage.trend_runs(DATASET, last=count, keep=False)
    assert [point.run_id for point in computed.points] == [point.run_id for point in trend.points]
    assert len(raw_computed()) == count
    b.measure(
        f"trend_runs over {size}, no summary kept",
        fixed(lambda: storage.trend_runs(DATASET, last=count, keep=False)),
        fixed(raw_computed),
        unit="ms",
        samples=b.settings.answer_samples,
        warmup=1,
        rounds=2,
        details="a score replaced on one result of each run made every kept summary stale "
        "(untimed); `keep=False` computes each run's summary in the call and keeps none; the "
        "raw side: the runs' list statements, then summarize_run's hand-written query for "
        "each run",
    )
    computing = b.measurements[-1]
    saved = f"; {computing.runstore / kept_trend:,.0f}x the trend with summaries kept (above)"
    b.measurements[-1] = dataclasses.replace(computing, details=computing.details + saved)
    assert not b.raw.execute(summaries.sql, summaries.params).fetchall(), "keep=False kept none"
