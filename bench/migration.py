"""How long upgrading a large database to ``0005_provenance_and_cost`` takes, and whether
it rewrites the results table.

Usage (from the repository root)::

    python -m bench.migration [--results 1000000] [--only sqlite|postgres]
        [--postgres-url URL]

For each database it builds, at revision ``0004_repetitions`` (runstore's own migrations),
one run holding ``--results`` results -- inserted by one ``INSERT ... SELECT`` over
``generate_series`` (Postgres) or a recursive CTE (SQLite), built with SQLAlchemy on the
tables as they are at 0004 -- then times ``upgrade 0005_provenance_and_cost`` in the
transaction runstore migrates in, and prints a markdown table: the seconds, the results
table's size before and after, and whether its storage was kept (Postgres: the table's
``relfilenode``; SQLite: its root page). The revision adds every column in place, so the
time should not grow with the number of results. Postgres comes from ``--postgres-url``
(a fresh database is made there and dropped after); SQLite is a file in a temporary
directory.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.dialects import postgresql

from bench.backends import fresh_database
from bench.backends import log
from runstore.engine import create_storage_engine
from runstore.migrations import alembic_config
from runstore.migrations import current_revision
from runstore.migrations import migration_transaction
from runstore.types import UTCDateTime

BEFORE = "0004_repetitions"
AFTER = "0005_provenance_and_cost"
RUNS = "mastra_dataset_runs"
RESULTS = "mastra_dataset_run_results"
RUN_ID = "run-0"
T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

DEFAULT_POSTGRES_URL = os.environ.get(
    "RUNSTORE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True, slots=True)
class Storage:
    """Where the results table's rows are, and how much room they take."""

    bytes: int
    place: int
    """Postgres: the table's ``relfilenode``; SQLite: its root page."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    database: str
    results: int
    seconds: float
    before: Storage
    after: Storage


def _migrate(engine: sa.Engine, revision: str) -> float:
    """Upgrade to ``revision`` in runstore's migration transaction; the seconds it took."""
    started = time.perf_counter()
    with migration_transaction(engine) as connection:
        command.upgrade(alembic_config(connection), revision)
    return time.perf_counter() - started


def _numbers(dialect: str, count: int) -> sa.ColumnElement[int]:
    """A column of 1 to ``count``, one row each (select from it)."""
    if dialect == "postgresql":
        series = sa.select(sa.func.generate_series(1, count).label("n")).subquery("numbers")
        return series.c.n
    numbers = sa.select(sa.literal(1, sa.Integer()).label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(sa.select(numbers.c.n + 1).where(numbers.c.n < count))
    return numbers.c.n


def _fill(connection: sa.Connection, count: int) -> None:
    """One run of ``count`` results, written on the tables as revision 0004 left them."""
    tables = sa.MetaData()
    runs = sa.Table(RUNS, tables, autoload_with=connection)
    results = sa.Table(RESULTS, tables, autoload_with=connection)
    dialect = connection.dialect.name
    instant = sa.literal(T0, UTCDateTime())
    connection.execute(
        sa.insert(runs).values(
            id=RUN_ID,
            datasetId="dataset-1",
            datasetVersion=instant,
            targetType="agent",
            targetId="agent-1",
            status="completed",
            totalItems=count,
            succeededCount=count - count // 10,
            failedCount=count // 10,
            startedAt=instant,
            completedAt=instant,
            createdAt=instant,
            updatedAt=instant,
            resultCount=count,
        )
    )
    n = _numbers(dialect, count)
    number = sa.cast(n, sa.Text())

    def json(*parts: Any) -> sa.ColumnElement[Any]:
        text: sa.ColumnElement[str] = sa.literal(parts[0], sa.Text())
        for part in parts[1:]:
            text = text + (part if isinstance(part, sa.ColumnElement) else sa.literal(part))
        return sa.cast(text, postgresql.JSONB()) if dialect == "postgresql" else text

    values: dict[str, sa.ColumnElement[Any]] = {
        "id": sa.literal("result-", sa.Text()) + number,
        "runId": sa.literal(RUN_ID, sa.Text()),
        "itemId": sa.literal("item-", sa.Text()) + number,
        "itemVersion": instant,
        "input": json('{"question": "What is ', number, ' squared?", "context": [1, 2.5]}'),
        "output": json('{"answer": "', number, '"}'),
        "expectedOutput": json('{"answer": "', number, '"}'),
        "latency": sa.cast(n % 1000, sa.Double()) * 1.5,
        "error": sa.case((n % 10 == 0, "timeout"), else_=sa.null()),
        "startedAt": instant,
        "completedAt": instant,
        "retryCount": n % 3,
        "createdAt": instant,
        "repetition": sa.literal(0, sa.Integer()),
    }
    columns = [results.c[name] for name in values]
    connection.execute(sa.insert(results).from_select(columns, sa.select(*values.values())))


def _storage(connection: sa.Connection) -> Storage:
    if connection.dialect.name == "postgresql":
        row = connection.execute(
            sa.text(
                "SELECT pg_table_size(oid), relfilenode FROM pg_class "
                "WHERE oid = CAST(:table AS regclass)"
            ),
            {"table": RESULTS},
        ).one()
    else:
        row = connection.execute(
            sa.text(
                "SELECT (SELECT SUM(pgsize) FROM dbstat WHERE name = :table), rootpage "
                "FROM sqlite_master WHERE type = 'table' AND name = :table"
            ),
            {"table": RESULTS},
        ).one()
    return Storage(int(row[0]), int(row[1]))


def measure(label: str, url: str, count: int) -> Upgrade:
    """Build the database at 0004 with ``count`` results, then time the upgrade to 0005."""
    engine = create_storage_engine(url)
    try:
        _migrate(engine, BEFORE)
        started = time.perf_counter()
        with engine.begin() as connection:
            _fill(connection, count)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql(f"VACUUM (ANALYZE) {RESULTS}")
        log(f"{label}: {count:,} results at {BEFORE} in {time.perf_counter() - started:.1f} s")
        with engine.connect() as connection:
            before = _storage(connection)
        seconds = _migrate(engine, AFTER)
        with engine.connect() as connection:
            assert current_revision(connection) == AFTER
            after = _storage(connection)
            stored = connection.execute(sa.text(f"SELECT COUNT(*) FROM {RESULTS}")).scalar_one()
        assert stored == count, (stored, count)
        return Upgrade(label, count, seconds, before, after)
    finally:
        engine.dispose()


@contextmanager
def _database(name: str, postgres_url: str) -> Iterator[str]:
    if name == "postgres":
        with fresh_database(postgres_url, prefix="runstore_bench_migration") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="runstore-bench-") as directory:
            yield f"sqlite:///{Path(directory) / 'runs.db'}"


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB"


def render(upgrades: list[Upgrade]) -> str:
    lines = [
        f"| database | results | upgrade to {AFTER} | results table before | after | its storage |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for upgrade in upgrades:
        place = "relfilenode" if upgrade.database == "Postgres" else "root page"
        kept = upgrade.before.place == upgrade.after.place
        storage = f"{'kept' if kept else 'REWRITTEN'} ({place} {upgrade.before.place}"
        storage += ")" if kept else f" -> {upgrade.after.place})"
        lines.append(
            f"| {upgrade.database} | {upgrade.results:,} | {upgrade.seconds:.3f} s "
            f"| {_megabytes(upgrade.before.bytes)} | {_megabytes(upgrade.after.bytes)} "
            f"| {storage} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.migration", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--results", type=int, default=1_000_000, help="results in the run")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="one database only")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    arguments = parser.parse_args()
    if arguments.results < 1:
        parser.error("--results must be at least 1")
    upgrades = []
    for name in [arguments.only] if arguments.only else ["sqlite", "postgres"]:
        label = "SQLite" if name == "sqlite" else "Postgres"
        with _database(name, arguments.postgres_url) as url:
            upgrades.append(measure(label, url, arguments.results))
    print(render(upgrades))


if __name__ == "__main__":
    main()
