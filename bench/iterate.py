"""Child process: iterate every result of one run, then report time and peak memory.

Run as ``python -m bench.iterate '<json spec>'``, one process per measurement, so that the
peak resident set size (``ru_maxrss``) is that iteration's alone. Prints one JSON object:
rows read, seconds, and the peak RSS before and after iterating, in bytes. The raw side
imports only its driver and :mod:`json`, and runs runstore's batch statements: the first
batch, then keyset batches after the last row read, parsing the JSON columns (on SQLite
each batch's scores read after it, as runstore reads them: :func:`read_batch`).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any
from typing import TypedDict


class Spec(TypedDict):
    side: str  # "runstore" or "raw"
    dialect: str  # "sqlite" or "postgresql"
    target: str  # runstore: the URL; raw: the SQLite file or a libpq conninfo
    run_id: str
    batch_size: int
    sql: list[str]  # raw: the first batch's statement, then the keyset batches'
    json_columns: list[int]
    started_column: int
    pragmas: list[str]  # raw SQLite: runstore's pragmas


def batch_params(dialect: str, run_id: str, after: tuple[Any, str] | None, size: int) -> Any:
    """The parameters of runstore's batch statements, in the driver's paramstyle."""
    if dialect == "sqlite":
        return (run_id, size, 0) if after is None else (run_id, *after, size, 0)
    values = {"filter_run_id": run_id, "limit": size, "offset": 0}
    return values if after is None else values | {"after_key": after[0], "after_id": after[1]}


CHUNK = 1000
"""Results whose scores one statement reads (runstore's chunk of a list it binds)."""


def scores_sql(count: int) -> str:
    """SQLite: the statement runstore reads the scores of ``count`` results with, after
    the results (see ``runstore.sql.compiler.scores_of``), in its text."""
    table = "mastra_dataset_run_scores"
    marks = ", ".join("?" * count)
    return (
        f'SELECT {table}."resultId", {table}.name, {table}.value \nFROM {table} \n'
        f'WHERE {table}."resultId" IN ({marks})'
    )


def read_batch(dialect: str, connection: Any, sql: str, args: Any) -> Any:
    """The raw side of a read of results, as runstore reads them: one statement on
    Postgres (the scores aggregated in it); on SQLite, in one read transaction, the rows,
    then their scores by a second statement (SQLite has no exact text for a REAL). The
    rows; the scores are read, not kept."""
    if dialect != "sqlite":
        return connection.execute(sql, args).fetchall()
    connection.execute("BEGIN")
    try:
        rows = connection.execute(sql, args).fetchall()
        ids = [row[0] for row in rows]
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            connection.execute(scores_sql(len(chunk)), chunk).fetchall()
    finally:
        connection.execute("ROLLBACK")
    return rows


def _raw(spec: Spec, connection: Any) -> int:
    rows, after, size = 0, None, spec["batch_size"]
    while True:
        params = batch_params(spec["dialect"], spec["run_id"], after, size)
        batch = read_batch(spec["dialect"], connection, spec["sql"][after is not None], params)
        for row in batch:
            values = list(row)
            for number in spec["json_columns"]:
                if values[number] is not None:
                    values[number] = json.loads(values[number])
        rows += len(batch)
        if len(batch) < size:
            return rows
        after = (batch[-1][spec["started_column"]], batch[-1][0])


def main(spec: Spec) -> dict[str, float]:
    connection: Any
    if spec["side"] == "runstore":
        from runstore import SqlRunsStorage

        connection = SqlRunsStorage(spec["target"])
        connection.get_run_by_id(spec["run_id"])  # connect and check the schema first
    elif spec["dialect"] == "sqlite":
        import sqlite3

        connection = sqlite3.connect(spec["target"], isolation_level=None)
        for pragma in spec["pragmas"]:
            connection.execute(pragma)
    else:
        import psycopg

        connection = psycopg.connect(spec["target"], autocommit=True, options="-c TimeZone=UTC")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    started = time.perf_counter()
    if spec["side"] == "runstore":
        rows = sum(
            1 for _ in connection.iter_results(spec["run_id"], batch_size=spec["batch_size"])
        )
    else:
        rows = _raw(spec, connection)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    connection.close()
    return {"rows": rows, "seconds": seconds, "baseline_rss": baseline, "peak_rss": peak}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
