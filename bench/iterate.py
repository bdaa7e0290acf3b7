"""Child process: iterate every result of one run, then report time and peak memory.

Run by :mod:`bench.run` as ``python -m bench.iterate '<json spec>'``, one process per
measurement, so that the peak resident set size (``ru_maxrss``) belongs to that iteration
alone. Prints one JSON object: rows seen, seconds spent iterating, and the peak RSS before
and after iterating, in bytes.

The raw side imports only its driver: the parent hands it the SQL text and the pragmas, so
its memory is not inflated by SQLAlchemy, pydantic or runstore.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any, TypedDict

__all__ = ["IterationReport", "IterationSpec", "main"]


class IterationSpec(TypedDict):
    side: str  # "runstore" or "raw"
    backend: str  # "sqlite" or "postgresql"
    target: str  # runstore: database URL; raw sqlite: file path; raw postgres: conninfo
    run_id: str
    batch_size: int
    sql: str  # raw only: the SELECT of every result of the run, in execution order
    pragmas: list[str]  # raw sqlite only


class IterationReport(TypedDict):
    rows: int
    seconds: float
    baseline_rss: int
    peak_rss: int


def _peak_rss() -> int:
    # Linux reports kilobytes (macOS bytes; this benchmark documents Linux numbers).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _runstore(spec: IterationSpec) -> tuple[int, float, int]:
    from runstore import SqlRunsStorage

    storage = SqlRunsStorage(spec["target"])
    try:
        iterate: Any = storage.iter_results  # type: ignore[attr-defined,unused-ignore]
        storage.get_run_by_id(spec["run_id"])  # connect and check the schema before timing
        baseline = _peak_rss()
        rows = 0
        started = time.perf_counter()
        for result in iterate(spec["run_id"], batch_size=spec["batch_size"]):
            rows += 1
            last = result
        seconds = time.perf_counter() - started
        del last
    finally:
        storage.close()
    return rows, seconds, baseline


def _raw_sqlite(spec: IterationSpec) -> tuple[int, float, int]:
    import sqlite3

    connection = sqlite3.connect(spec["target"], isolation_level=None)
    try:
        for pragma in spec["pragmas"]:
            connection.execute(pragma)
        baseline = _peak_rss()
        rows = 0
        started = time.perf_counter()
        connection.execute("BEGIN")
        cursor = connection.execute(spec["sql"], (spec["run_id"],))
        while batch := cursor.fetchmany(spec["batch_size"]):
            rows += len(batch)
        connection.commit()
        seconds = time.perf_counter() - started
    finally:
        connection.close()
    return rows, seconds, baseline


def _raw_postgres(spec: IterationSpec) -> tuple[int, float, int]:
    import psycopg

    with psycopg.connect(spec["target"], options="-c TimeZone=UTC") as connection:
        baseline = _peak_rss()
        rows = 0
        started = time.perf_counter()
        with connection.cursor(name="runstore_bench_iterate") as cursor:
            cursor.itersize = spec["batch_size"]
            cursor.execute(spec["sql"], (spec["run_id"],))
            while batch := cursor.fetchmany(spec["batch_size"]):
                rows += len(batch)
        connection.commit()
        seconds = time.perf_counter() - started
    return rows, seconds, baseline


def main(argv: list[str]) -> int:
    spec: IterationSpec = json.loads(argv[0])
    if spec["side"] == "runstore":
        rows, seconds, baseline = _runstore(spec)
    elif spec["backend"] == "sqlite":
        rows, seconds, baseline = _raw_sqlite(spec)
    else:
        rows, seconds, baseline = _raw_postgres(spec)
    report: IterationReport = {
        "rows": rows,
        "seconds": seconds,
        "baseline_rss": baseline,
        "peak_rss": _peak_rss(),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
