"""One run of 10,000,000 results on Postgres, through its life: written, paged, finished
(its summary kept), summarized, viewed, trended and pruned.

Usage (from the repository root; not part of CI)::

    python -m bench.run --huge [--output docs/benchmarks-huge.md] [--postgres-url URL]

A fresh ``runstore_bench_huge_*`` database on the server of ``--postgres-url`` (dropped at
the end) gets a few small finished runs of a dataset, then the huge run of the same
dataset, whose results -- each with one score -- are written by ``add_results`` in batches
of 10,000 with ``update_counts=True``, as an evaluation pipeline writes them, so its
counters are exactly right. Each step is timed once; a read, the median of a few calls.
It prints the steps and writes them, with what limits each, to ``--output``.

It took 63 minutes on the machine of ``docs/benchmarks-huge.md`` (two cores, shared with
other work), 55 of them writing the results, and needs about 20 GB free on the database
server's disk: 16.7 GB of tables and indexes at the largest, the write-ahead log (1-2.5 GB
there) and the sorts' temporary files.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from bench import data
from bench.backends import conninfo
from bench.backends import fresh_database
from bench.backends import log
from runstore import CreateRunInput
from runstore import ListRunResultsInput
from runstore import SqlRunsStorage
from runstore import UpdateRunInput
from runstore.tables import results_table
from runstore.tables import scores_table

RESULTS = 10_000_000
BATCH = 10_000
DATASET = "huge"
SMALL_RUNS = 4
SMALL_RESULTS = 1000
READS = 20
"""Calls of each cheap read; the step's time is their median."""
VIEWS = 3
"""First views of the run page, each by a fresh application."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the run's life: its time, a rate where one says more, what limits it."""

    name: str
    seconds: float
    rate: str
    limit: str


def _scored(run_id: str, index: int) -> dict[str, Any]:
    """The ``index``-th result of the run, with its one score."""
    fields = data.result_fields(run_id, index)
    return fields | {"scores": {"accuracy": int(fields["latency"]) % 101 / 100}}


def _write(storage: SqlRunsStorage, run_id: str, count: int) -> float:
    """``count`` results in batches of :data:`BATCH` (each built untimed); the seconds
    ``add_results`` took."""
    spent = 0.0
    for start in range(0, count, BATCH):
        batch = [_scored(run_id, n) for n in range(start, min(start + BATCH, count))]
        started = time.perf_counter()
        storage.add_results(batch, update_counts=True)
        spent += time.perf_counter() - started
        if (start + BATCH) % 1_000_000 == 0:
            log(f"  {start + BATCH:,} results written, {spent:.0f} s in add_results")
    return spent


def _once(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _median(call: Callable[[], object], samples: int = READS) -> float:
    call()  # statements compiled, pages in the cache: the later calls are what is timed
    return statistics.median(_once(call) for _ in range(samples))


def _view(storage: SqlRunsStorage, path: str) -> float:
    """A page's first view: a fresh application (made untimed; its templates are compiled
    by the request), one request, the whole body read."""
    from starlette.testclient import TestClient  # the ui extra and httpx

    from runstore.ui import create_app

    client = TestClient(create_app(storage), base_url="http://127.0.0.1")
    started = time.perf_counter()
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    assert response.content
    return time.perf_counter() - started


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


def _sizes(url: str) -> str:
    with psycopg.connect(conninfo(url)) as connection:
        database, results, scores = connection.execute(
            "SELECT pg_database_size(current_database()), pg_total_relation_size(%s), "
            "pg_total_relation_size(%s)",
            (results_table.name, scores_table.name),
        ).fetchone() or (0, 0, 0)
    return (
        f"{_gigabytes(database)} in all: the results {_gigabytes(results)} and the scores "
        f"{_gigabytes(scores)}, each with its indexes"
    )


def _vacuum(url: str) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as connection:
        connection.execute(f"VACUUM (ANALYZE) {results_table.name}, {scores_table.name}")


def measure(url: str) -> tuple[list[Step], str]:
    """The steps, on a database of its own at ``url``; and what the database took."""
    steps: list[Step] = []

    def step(name: str, seconds: float, limit: str, rate: str = "") -> None:
        steps.append(Step(name, seconds, rate, limit))
        log(f"{name}: {seconds:.3f} s {rate}")

    with SqlRunsStorage(url) as storage:
        storage.init()
        for _ in range(SMALL_RUNS):
            small = storage.create_run(
                CreateRunInput(**data.run_fields() | {"dataset_id": DATASET})
            )
            _write(storage, small.id, SMALL_RESULTS)
            storage.update_run(UpdateRunInput(id=small.id, status="completed"))
        fields = data.run_fields(RESULTS) | {"dataset_id": DATASET}
        run_id = storage.create_run(CreateRunInput(**fields)).id
        storage.update_run(UpdateRunInput(id=run_id, status="running"))
        size = f"{RESULTS:,} results"

        seconds = _write(storage, run_id, RESULTS)
        step(
            f"add_results: {size} with a score each, in batches of {BATCH:,}",
            seconds,
            "runstore validating each input and building each returned result (Python), and "
            "the server taking the rows by `COPY` into tables with seven indexes, whose random "
            "uuid keys land on random pages: the rate falls as the tables grow",
            f"{RESULTS / seconds:,.0f} results/s",
        )
        run = storage.get_run_by_id(run_id)
        assert run is not None
        assert run.result_count == RESULTS, run
        assert run.succeeded_count + run.failed_count == RESULTS, run
        database = _sizes(url)
        step(
            "VACUUM (ANALYZE) of the results and scores tables",
            _once(lambda: _vacuum(url)),
            "the server reading the new rows once for the visibility map and the planner's "
            "statistics; autovacuum does the same in the background (not runstore's work)",
        )

        page = ListRunResultsInput(run_id=run_id, pagination={"per_page": 50})
        step(
            "list_results, first page of 50",
            _median(lambda: storage.list_results(page)),
            "an index range read of 51 rows; the total is the count kept on the run's row, "
            "so the run's size does not show",
        )
        step(
            "summarize_run of the running run (computed, nothing kept)",
            _once(lambda: storage.summarize_run(run_id)),
            "the database sorting the latencies and the scores for `percentile_cont` "
            "(on disk, past `work_mem`) and aggregating the rest in the same pass",
        )
        step(
            "update_run(status=completed): finishing it, which keeps its summary",
            _once(lambda: storage.update_run(UpdateRunInput(id=run_id, status="completed"))),
            "computing the summary, as the step above, in a snapshot of its own; the update "
            "and the stored row are milliseconds",
        )
        step(
            "summarize_run, kept",
            _median(lambda: storage.summarize_run(run_id)),
            "one row by primary key, checked current against the run's row, its JSON parsed",
        )
        run_page = f"/runs/{run_id}"
        step(
            "viewer: run page, first view",
            statistics.median(_view(storage, run_page) for _ in range(VIEWS)),
            "the run's row, its kept summary and its first page of results; the template",
        )
        step(
            "viewer: run's charts, first view",
            _view(storage, f"{run_page}/charts"),
            "`histogram_run`: the bounds of each histogram, then its bins counted over "
            "every latency, cost and score value of the run",
        )
        trend = storage.trend_runs(DATASET)
        assert trend.points[-1].results == RESULTS, trend
        assert len(trend.points) == SMALL_RUNS + 1, trend
        step(
            f"trend_runs of its dataset ({SMALL_RUNS} runs of {SMALL_RESULTS:,} and this one)",
            _median(lambda: storage.trend_runs(DATASET)),
            "the dataset's finished runs by index, then their kept summaries by id",
        )
        cutoff = datetime.now(UTC)
        pruned: list[int] = []
        step(
            "prune_runs of the dataset (a cutoff after the run)",
            _once(lambda: pruned.append(storage.prune_runs(older_than=cutoff, dataset_id=DATASET))),
            "deleting the run's results and scores with their index entries, and writing the "
            "WAL of each, in one transaction (a run goes whole)",
        )
        assert pruned == [SMALL_RUNS + 1], pruned
        assert storage.get_run_by_id(run_id) is None
        assert not list(storage.iter_runs(dataset_id=DATASET))
    return steps, database


def _time(seconds: float) -> str:
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.1f} ms"


def render(steps: list[Step], machine: list[tuple[str, str]], database: str, heading: str) -> str:
    """docs/benchmarks-huge.md."""
    lines = [
        f"# A run of {RESULTS:,} results",
        "",
        heading,
        "",
        "Generated by `bench/huge.py` (see its description): one run of "
        f"{RESULTS:,} results, each with one score, on Postgres, in a dataset with "
        f"{SMALL_RUNS} finished runs of {SMALL_RESULTS:,} results. The results are written "
        f"by `add_results` in batches of {BATCH:,} (`update_counts=True`), each batch built "
        "before its call, untimed; each later step is timed once, a cheap read the median "
        f"of {READS} calls after one untimed, the run page's first view the median of "
        f"{VIEWS}, each by a fresh application served by Starlette's `TestClient`, which "
        "compiles its templates in that request (tens of milliseconds). After the writes "
        f"the database held {database}.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in machine),
        "",
        "## Steps",
        "",
        "| step | time | rate | what limits it |",
        "|---|--:|---|---|",
        *(f"| {s.name} | {_time(s.seconds)} | {s.rate} | {s.limit} |" for s in steps),
        "",
    ]
    return "\n".join(lines)


def main(postgres_url: str, output: Path, machine: list[tuple[str, str]]) -> int:
    """Measure, print the page and write it to ``output``."""
    started, date = time.perf_counter(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with fresh_database(postgres_url, prefix="runstore_bench_huge") as url:
        steps, database = measure(url)
    elapsed = time.perf_counter() - started
    heading = (
        f"Measured {date} with `python -m bench.run --huge`; the whole run took {_time(elapsed)}."
    )
    document = render(steps, machine, database, heading)
    print(document)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document)
    log(f"wrote {output}")
    return 0
