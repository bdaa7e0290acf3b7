"""Child process: one run summary, then report its time and peak memory.

Run as ``python -m bench.answer '<json spec>'``, one process per measurement, so that the
peak resident set size (``ru_maxrss``) is that call's alone. The process connects first
(runstore: a ``get_run_by_id`` of the run, which checks the schema; raw: the connection),
takes ``ru_maxrss`` as its baseline, makes the one call, and takes it again. Prints one
JSON object: seconds, and the peak RSS before and after the call, in bytes. The raw side
imports only its driver and :mod:`json`.
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
    sql: str  # raw: the hand-written summary query, with a "run" parameter
    pragmas: list[str]  # raw SQLite: runstore's pragmas


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
        connection.summarize_run(spec["run_id"])
    else:
        row = connection.execute(spec["sql"], {"run": spec["run_id"]}).fetchone()
        if isinstance(row[-1], str):  # SQLite: the scores as JSON text
            json.loads(row[-1])
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    connection.close()
    return {"seconds": seconds, "baseline_rss": baseline, "peak_rss": peak}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
