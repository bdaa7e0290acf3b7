"""export_results over a large run, in each format, against the raw driver fetching the
same rows and pyarrow writing them to Parquet: wall time, rows per second and peak RSS,
each in a fresh child process (as :mod:`bench.cases.iterate` measures iteration).

Runs alone too: ``python -m bench.cases.export [--quick] [--only sqlite|postgres]``.
The raw side runs runstore's own export statements (caught from a probe), with the same
keyset parameters, and builds the same Arrow schema from the rows it fetched.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import TypedDict

from bench import data
from bench import iterate
from bench.backends import Backend
from bench.backends import Settings
from bench.backends import log
from bench.backends import open_backend
from bench.harness import check_params
from bench.report import Measurement
from bench.report import Target
from bench.report import render_table
from runstore import AsyncSqlRunsStorage
from runstore import SqlRunsStorage
from runstore.engine import DEFAULT_SQLITE_PRAGMAS
from runstore.export import RESULT_FIELDS

BATCH: int = inspect.signature(SqlRunsStorage.export_results).parameters["batch_size"].default
"""The batch size users get: ``export_results``' default, on both sides."""
SIDES = ("raw", "parquet", "jsonl", "csv", "parquet-async")
"""The raw side, then runstore's formats (``-async``: through the asyncio adapter)."""


class Spec(TypedDict):
    side: str  # "raw" (driver + pyarrow to Parquet), or runstore's format
    dialect: str
    target: str  # runstore: the URL; raw: the SQLite file or a libpq conninfo
    run_id: str
    batch_size: int
    sql: list[str]  # raw: the first batch's statement, then the keyset batches'
    pragmas: list[str]
    path: str


def rows_of(settings: Settings) -> int:
    return 20_000 if settings.quick else 1_000_000


def seed(b: Backend, rows: int) -> str:
    """A run of ``rows`` typical results with two scores each, recorded by runstore in
    batches of 10,000 (not timed)."""
    run_id, started = b.new_run(rows), time.perf_counter()
    for start in range(0, rows, 10_000):
        b.storage.add_results(
            [
                {
                    **data.result_fields(run_id, n),
                    "scores": {"accuracy": (n % 11) / 10, "fluency": 1.0 - (n % 7) / 9},
                }
                for n in range(start, min(start + 10_000, rows))
            ]
        )
    log(f"  seeded {rows:,} results with scores in {time.perf_counter() - started:.1f} s")
    return run_id


def batch_params(dialect: str, run_id: str, after: tuple[Any, str] | None, size: int) -> Any:
    """The parameters of runstore's export statements, in the driver's paramstyle."""
    if dialect == "sqlite":
        return (run_id, size, 0) if after is None else (run_id, *after, size, 0)
    values = {"run_id": run_id, "limit": size}
    return values if after is None else values | {"after_key": after[0], "after_id": after[1]}


def _after(dialect: str, row: Any) -> tuple[Any, str]:
    started = row[RESULT_FIELDS.index("started_at")]
    return (started if dialect == "sqlite" else datetime.fromisoformat(started), row[0])


# -- the child process -------------------------------------------------------------------


def _raw(spec: Spec, connection: Any) -> int:
    """Fetch with the driver, build the columns with pyarrow, write Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    instant = pa.timestamp("us", tz="UTC")
    types: dict[str, Any] = {
        "latency": pa.float64(),
        "retry_count": pa.int64(),
        "repetition": pa.int64(),
        "scores": pa.map_(pa.string(), pa.float64()),
        "input_tokens": pa.int64(),
        "output_tokens": pa.int64(),
        "cost": pa.float64(),
    }
    optional = {"output", "expected_output", "error"}
    optional |= {"input_tokens", "output_tokens", "cost", "trace_id", "metadata"}
    times = {"item_version", "started_at", "completed_at", "created_at"}
    schema = pa.schema(
        [
            pa.field(
                name,
                instant if name in times else types.get(name, pa.string()),
                nullable=name in optional,
            )
            for name in RESULT_FIELDS
        ]
    )
    rows, after, size = 0, None, spec["batch_size"]
    with pq.ParquetWriter(spec["path"], schema) as writer:
        while True:
            params = batch_params(spec["dialect"], spec["run_id"], after, size)
            batch, read_apart = _stored_rows(spec, connection, params, after is not None)
            if batch:
                arrays = []
                for field, values in zip(schema, zip(*batch, strict=True), strict=True):
                    if field.name in times:
                        arrays.append(pa.array(values, pa.string()).cast(instant))
                    elif field.name == "scores":
                        if read_apart is not None:  # SQLite: REAL values, read apart
                            ids = [row[0] for row in batch]
                            scores = [sorted(read_apart.get(i, {}).items()) for i in ids]
                        else:
                            scores = [
                                [] if text is None else sorted(json.loads(text).items())
                                for text in values
                            ]
                            scores = [[(name, float(value)) for name, value in s] for s in scores]
                        arrays.append(pa.array(scores, field.type))
                    else:
                        arrays.append(pa.array(values, field.type))
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            rows += len(batch)
            if len(batch) < size:
                return rows
            after = _after(spec["dialect"], batch[-1])


def _stored_rows(
    spec: Spec, connection: Any, params: Any, keyset: bool
) -> tuple[list[Any], dict[str, dict[str, float]] | None]:
    """A batch of stored rows as runstore reads them: on SQLite, in one read transaction,
    the rows then their scores (REAL values, by result); on Postgres one statement."""
    sql = spec["sql"][keyset]
    if spec["dialect"] != "sqlite":
        return connection.execute(sql, params).fetchall(), None
    connection.execute("BEGIN")
    try:
        batch = connection.execute(sql, params).fetchall()
        scores: dict[str, dict[str, float]] = {}
        ids = [row[0] for row in batch]
        for start in range(0, len(ids), iterate.CHUNK):
            chunk = ids[start : start + iterate.CHUNK]
            read = connection.execute(iterate.scores_sql(len(chunk)), chunk)
            for result_id, name, value in read:
                scores.setdefault(result_id, {})[name] = value
    finally:
        connection.execute("ROLLBACK")
    return batch, scores


def child(spec: Spec) -> dict[str, float]:
    connection: Any
    if spec["side"].endswith("-async"):
        return asyncio.run(_async_child(spec))
    if spec["side"] != "raw":
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
    if spec["side"] in ("raw", "parquet"):
        import pyarrow.parquet  # noqa: F401 - both Parquet sides import it before the clock

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    started = time.perf_counter()
    if spec["side"] == "raw":
        rows = _raw(spec, connection)
    else:
        rows = connection.export_results(
            spec["run_id"], spec["path"], format=spec["side"], batch_size=spec["batch_size"]
        )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    connection.close()
    size = os.path.getsize(spec["path"])
    os.unlink(spec["path"])
    return {
        "rows": rows,
        "seconds": seconds,
        "baseline_rss": baseline,
        "peak_rss": peak,
        "bytes": size,
    }


async def _async_child(spec: Spec) -> dict[str, float]:
    import pyarrow.parquet  # noqa: F401 - as the other Parquet sides, before the clock

    format = spec["side"].removesuffix("-async")
    async with AsyncSqlRunsStorage(spec["target"]) as storage:
        await storage.get_run_by_id(spec["run_id"])  # connect and check the schema first
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        started = time.perf_counter()
        rows = await storage.export_results(
            spec["run_id"], spec["path"], format=format, batch_size=spec["batch_size"]
        )
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    size = os.path.getsize(spec["path"])
    os.unlink(spec["path"])
    return {
        "rows": rows,
        "seconds": seconds,
        "baseline_rss": baseline,
        "peak_rss": peak,
        "bytes": size,
    }


def _in_child(spec: Spec) -> dict[str, float]:
    # A shell in between gives the measured process a clean ru_maxrss (see bench.cases.iterate).
    command = [sys.executable, "-m", "bench.cases.export", "--child", json.dumps(spec)]
    done = subprocess.run(
        ["/bin/sh", "-c", '"$@"; exit $?', "sh", *command],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"export child failed:\n{done.stderr}")
    report: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return report


# -- the case ----------------------------------------------------------------------------


def measure(b: Backend) -> None:
    rows = rows_of(b.settings)
    run_id = seed(b, rows)
    b.analyze()  # as autovacuum would have: without statistics each batch plans a scan

    def two_batches(storage: SqlRunsStorage) -> list[int]:
        batches = storage.iter_result_batches(run_id, batch_size=BATCH)
        return [len(next(batches)), len(next(batches))]

    _, statements = b.caught("export (two batches)", two_batches)
    first, following = b.batch_reads(statements, 2)
    rows_read = list(b.raw.execute(first.sql, first.params).fetchall())
    check_params(first, batch_params(b.dialect, run_id, None, BATCH))
    check_params(
        following, batch_params(b.dialect, run_id, _after(b.dialect, rows_read[-1]), BATCH)
    )
    b.show_raw(first.sql, following.sql)
    with tempfile.TemporaryDirectory(prefix="runstore_export_") as directory:
        spec: Spec = {
            "side": "raw",
            "dialect": b.dialect,
            "target": b.raw_target,
            "run_id": run_id,
            "batch_size": BATCH,
            "sql": [first.sql, following.sql],
            "pragmas": [f"PRAGMA {name}={value}" for name, value in DEFAULT_SQLITE_PRAGMAS.items()],
            "path": os.path.join(directory, "out"),
        }
        specs = {side: Spec(**{**spec, "side": side}) for side in SIDES}
        for side in SIDES[1:]:
            specs[side]["target"] = b.url
        _in_child(specs["raw"])  # warms the page cache (not measured)
        reports: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
        for _ in range(b.settings.iteration_repeats):
            for side in SIDES:
                reports[side].append(_in_child(specs[side]))
                assert reports[side][-1]["rows"] == rows, (side, reports[side][-1])

    def median(side: str, key: str) -> float:
        return statistics.median(report[key] for report in reports[side])

    runs = f"{b.settings.iteration_repeats} run(s) per side, each in a fresh process"
    raw_seconds = median("raw", "seconds")
    for side in SIDES[1:]:
        seconds = median(side, "seconds")
        speeds = f"runstore {rows / seconds:,.0f} rows/s, raw Parquet {rows / raw_seconds:,.0f}"
        size = f"{median(side, 'bytes') / 2**20:.1f} MB file"
        name = side.replace("-async", ", asyncio adapter")
        b.add(
            Measurement(
                f"export_results to {name}, {rows:,} rows: wall time",
                b.label,
                "s",
                seconds,
                raw_seconds,
                Target("ratio", 2.0) if side.startswith("parquet") else None,
                f"raw: driver + pyarrow to Parquet; {speeds}; {size}; {runs}",
            )
        )
        b.add(
            Measurement(
                f"export_results to {name}, {rows:,} rows: peak RSS",
                b.label,
                "MB",
                median(side, "peak_rss"),
                median("raw", "peak_rss"),
                Target("below", 200),
                f"before exporting: runstore {median(side, 'baseline_rss') / 2**20:.0f} MB, "
                f"raw {median('raw', 'baseline_rss') / 2**20:.0f} MB",
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cases.export")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="20,000 rows instead of 1,000,000")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="one backend only")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "RUNSTORE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    arguments = parser.parse_args()
    if arguments.child is not None:
        print(json.dumps(child(json.loads(arguments.child))))
        return 0
    settings = Settings.of(quick=arguments.quick)
    measured: list[Measurement] = []
    for name in [arguments.only] if arguments.only else ["sqlite", "postgres"]:
        with open_backend(name, settings, arguments.postgres_url, show_sql=False) as b:
            log(f"{b.label}: export")
            measure(b)
            measured += b.measurements
    print(render_table(measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
