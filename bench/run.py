"""runstore against the raw drivers, on a SQLite file and on Postgres.

Usage (from the repository root)::

    python -m bench.run [--quick] [--only sqlite|postgres] [--output docs/benchmarks.md]

Prints a markdown table of medians and ratios, and writes it with the method, the machine
and the targets to ``--output``. See ``docs/benchmarks.md`` for what is measured and how.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any, Literal

import psycopg
import sqlalchemy as sa

from bench.data import BASE_TIME, DATASET_VERSION, result_fields, result_rows
from bench.harness import Paired, Prepare, compare, fixed
from bench.iterate import IterationReport, IterationSpec
from bench.machine import describe_machine
from bench.raw import RawPostgres, RawSqlite, RawStore, postgres_conninfo
from bench.report import Measurement, Target, render_document, render_table
from bench.sqltext import Dialect, statements
from runstore import (
    AddRunResultInput,
    CreateRunInput,
    ListRunResultsInput,
    ListRunResultsOutput,
    RunResult,
    SqlRunsStorage,
    StoragePagination,
    UpdateRunInput,
)
from runstore.engine import DEFAULT_SQLITE_PRAGMAS

__all__ = ["main"]

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_URL = os.environ.get(
    "RUNSTORE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PER_PAGE = 100
DEPTH = 0.9

FIRST_PAGE = f"list_results first page ({PER_PAGE} rows)"
OFFSET_PAGE = "list_results page at 90% depth (offset)"
CURSOR_PAGE = "list_results page at 90% depth (cursor)"
CURSOR_TARGET = Target("relative", 1.2, FIRST_PAGE, "runstore's first page")


# -- what the installed runstore offers -------------------------------------------------


def _has_method(name: str) -> bool:
    return callable(getattr(SqlRunsStorage, name, None))


HAS_ADD_RESULTS = _has_method("add_results")
HAS_ITER_RESULTS = _has_method("iter_results")
HAS_CURSORS = "cursor" in ListRunResultsInput.model_fields and (
    "next_cursor" in ListRunResultsOutput.model_fields
)
NOT_AVAILABLE = "n/a: not in this runstore yet"


def _fetched_per_page() -> int:
    """How many rows runstore reads for a page: one more than shown, to know if more follow."""
    try:
        from runstore.base import fetch_limit  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return PER_PAGE
    limit: int | None = fetch_limit(StoragePagination(per_page=PER_PAGE))
    return PER_PAGE if limit is None else limit


FETCHED_PER_PAGE = _fetched_per_page()


# -- settings ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """How much work each benchmark does."""

    quick: bool
    single_samples: int
    batch_rows: int
    batch_samples: int
    lookup_samples: int
    page_samples: int
    deep_samples: int
    list_rows: int
    iteration_rows: int
    iteration_repeats: int
    warmup: int

    @classmethod
    def of(cls, *, quick: bool) -> Settings:
        if quick:
            return cls(True, 200, 10_000, 3, 200, 50, 10, 10_000, 100_000, 1, 20)
        return cls(False, 1000, 10_000, 7, 1000, 200, 30, 100_000, 1_000_000, 3, 50)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- one backend ----------------------------------------------------------------------------


@dataclass(slots=True)
class Backend:
    """A database both sides use: runstore through ``url``, the raw driver through ``raw``."""

    label: str
    dialect: Dialect
    url: str
    raw: RawStore
    raw_target: str
    """What the iteration child's raw driver connects to: a file path or a conninfo."""
    tidy: Callable[[], None]
    """Run after seeding (not measured): checkpoint the WAL, or VACUUM ANALYZE."""


@contextlib.contextmanager
def sqlite_backend() -> Iterator[Backend]:
    with tempfile.TemporaryDirectory(prefix="runstore_bench_") as directory:
        path = str(Path(directory) / "bench.db")
        SqlRunsStorage(f"sqlite:///{path}").init()
        raw = RawSqlite(path)

        def tidy() -> None:
            raw.checkpoint()

        try:
            yield Backend("SQLite", "sqlite", f"sqlite:///{path}", raw, path, tidy)
        finally:
            raw.close()


@contextlib.contextmanager
def postgres_backend(admin_url: str) -> Iterator[Backend]:
    name = f"runstore_bench_{uuid.uuid4().hex[:10]}"
    admin = postgres_conninfo(admin_url)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    raw: RawPostgres | None = None
    try:
        storage = SqlRunsStorage(url)
        storage.init()
        storage.close()
        raw = RawPostgres(url)
        conninfo = postgres_conninfo(url)

        def tidy() -> None:
            with psycopg.connect(conninfo, autocommit=True) as maintenance:
                maintenance.execute("VACUUM ANALYZE")

        yield Backend("Postgres", "postgresql", url, raw, conninfo, tidy)
    finally:
        if raw is not None:
            raw.close()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_facts(admin_url: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    with psycopg.connect(postgres_conninfo(admin_url)) as connection:
        for setting in ("server_version", "shared_buffers", "fsync", "synchronous_commit"):
            row = connection.execute(f"SHOW {setting}").fetchone()
            facts[setting] = "?" if row is None else str(row[0])
    return facts


# -- the benchmarks -------------------------------------------------------------------------


class Suite:
    """Every benchmark on one backend; appends rows to ``measurements``."""

    def __init__(self, backend: Backend, settings: Settings, show_sql: bool) -> None:
        self.backend = backend
        self.settings = settings
        self.show_sql = show_sql
        self.storage = SqlRunsStorage(backend.url)
        self.storage.init()
        self.raw = backend.raw
        self.sql = statements(backend.dialect)
        postgres = backend.dialect == "postgresql"
        self.snapshot = ["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"] if postgres else []
        self.measurements: list[Measurement] = []

    def close(self) -> None:
        self.storage.close()

    def new_run(self, total_items: int) -> str:
        return self.storage.create_run(
            CreateRunInput(
                dataset_id="bench",
                dataset_version=DATASET_VERSION,
                target_type="agent",
                target_id="support-bot",
                total_items=total_items,
            )
        ).id

    def add(
        self,
        operation: str,
        paired: Paired | None,
        *,
        unit: Any = "us",
        per: int = 1,
        target: Target | None = None,
        note: str = "",
        details: list[str] | None = None,
    ) -> None:
        measurement = Measurement(
            operation=operation,
            backend=self.backend.label,
            unit=unit,
            runstore=None if paired is None else paired.runstore / per,
            raw=None if paired is None else paired.raw / per,
            target=target,
            note=note if paired is not None or note else NOT_AVAILABLE,
            details=details or [],
        )
        self.measurements.append(measurement)
        cells = [cell.strip() for cell in render_table([measurement]).splitlines()[-1].split("|")]
        log(f"  {operation}: runstore {cells[3]}, raw {cells[4]}, {cells[5]}")

    @contextlib.contextmanager
    def runstore_sql(self, title: str, raw_sql: list[str]) -> Iterator[list[str]]:
        """Collect the statements runstore sends (and print them with ``--show-sql``).

        runstore's hot paths send their statements straight to the driver, past
        SQLAlchemy's events, so they are caught where the driver runs them: sqlite3's
        trace callback on the connections the pool hands out. On Postgres the statements
        are the same ones, compiled for psycopg; only those sent through SQLAlchemy are
        caught there.
        """
        emitted: list[str] = []

        def record(statement: str) -> None:
            emitted.append(" ".join(str(statement).split()))

        def listen(*arguments: Any) -> None:
            record(arguments[2])

        def checkout(dbapi_connection: Any, *_: Any) -> None:
            if isinstance(dbapi_connection, sqlite3.Connection):
                dbapi_connection.set_trace_callback(record)

        def checkin(dbapi_connection: Any, *_: Any) -> None:
            if isinstance(dbapi_connection, sqlite3.Connection):
                dbapi_connection.set_trace_callback(None)

        engine = self.storage.engine
        sa.event.listen(engine, "before_cursor_execute", listen)
        sa.event.listen(engine, "checkout", checkout)
        sa.event.listen(engine, "checkin", checkin)
        try:
            yield emitted
        finally:
            sa.event.remove(engine, "before_cursor_execute", listen)
            sa.event.remove(engine, "checkout", checkout)
            sa.event.remove(engine, "checkin", checkin)
        if self.show_sql:
            print(f"\n--- {self.backend.label}: {title}", file=sys.stderr)
            for statement in emitted:
                print(f"runstore: {statement}", file=sys.stderr)
            for statement in raw_sql:
                print(f"raw:      {statement}", file=sys.stderr)

    # -- seeding --------------------------------------------------------------------------

    def seed(self, rows: int) -> str:
        run_id = self.new_run(rows)
        started = time.perf_counter()
        written = self.raw.seed(result_rows(run_id, rows, BASE_TIME))
        assert written == rows, (written, rows)
        log(f"  seeded {rows:,} results in {time.perf_counter() - started:.1f} s")
        return run_id

    # -- writes ---------------------------------------------------------------------------

    def single_add_result(self) -> None:
        settings = self.settings
        runstore_run, raw_run = self.new_run(0), self.new_run(0)
        runstore_numbers, raw_numbers = count(), count()

        def runstore_call() -> Any:
            fields = result_fields(runstore_run, next(runstore_numbers))
            return lambda: self.storage.add_result(AddRunResultInput(**fields))

        def raw_call() -> Any:
            fields = result_fields(raw_run, next(raw_numbers))
            return lambda: self.raw.add_result(fields)

        first_call = runstore_call()
        with self.runstore_sql("add_result", [self.sql.insert_result]):
            first_call()
        # The raw side's rows must read back through runstore exactly as runstore's own.
        fields = result_fields(raw_run, next(raw_numbers))
        stored = self.storage.get_result_by_id(self.raw.add_result(fields))
        assert stored is not None
        _check_result(stored, raw_run, fields)

        limit = 2.5 if self.backend.dialect == "sqlite" else 1.3
        paired = compare(
            runstore_call,
            raw_call,
            samples=settings.single_samples,
            warmup=settings.warmup,
        )
        self.add(
            "add_result (one row, own transaction)",
            paired,
            target=Target("ratio", limit),
        )

    def batch_add_results(self) -> None:
        settings = self.settings
        operation = f"add_results, {settings.batch_rows:,} rows in one call (per row)"
        target = Target("ratio", 1.5)
        if not HAS_ADD_RESULTS:
            self.add(operation, None, target=target)
            return
        size = settings.batch_rows

        def side(add: Callable[[list[dict[str, Any]]], object]) -> Prepare:
            def prepare() -> Any:
                run_id = self.new_run(size)
                batch = [result_fields(run_id, number) for number in range(size)]
                return lambda: add(batch)

            return prepare

        runstore_side = side(self.storage.add_results)
        raw_side = side(self.raw.add_results)
        first_call = runstore_side()
        with self.runstore_sql(
            "add_results", [self.sql.require_runs, self.sql.insert_result_plain]
        ):
            first_call()
        paired = compare(
            runstore_side, raw_side, samples=settings.batch_samples, warmup=1, rounds=2
        )
        self.add(operation, paired, per=size, target=target)

    def get_run(self, run_id: str) -> None:
        with self.runstore_sql("get_run_by_id", [self.sql.select_run]):
            assert self.storage.get_run_by_id(run_id) is not None
        assert self.raw.get_run(run_id) is not None
        paired = compare(
            fixed(lambda: self.storage.get_run_by_id(run_id)),
            fixed(lambda: self.raw.get_run(run_id)),
            samples=self.settings.lookup_samples,
            warmup=self.settings.warmup,
        )
        self.add("get_run_by_id", paired)

    def update_run(self) -> None:
        runstore_run, raw_run = self.new_run(10), self.new_run(10)
        runstore_numbers, raw_numbers = count(), count()

        def runstore_call() -> Any:
            failed = next(runstore_numbers) % 10
            return lambda: self.storage.update_run(
                UpdateRunInput(id=runstore_run, status="running", failed_count=failed)
            )

        def raw_call() -> Any:
            failed = next(raw_numbers) % 10
            return lambda: self.raw.update_run(raw_run, "running", failed)

        first_call = runstore_call()
        with self.runstore_sql("update_run", [self.sql.lock_run, self.sql.update_run]):
            first_call()
        paired = compare(
            runstore_call,
            raw_call,
            samples=self.settings.lookup_samples,
            warmup=self.settings.warmup,
        )
        self.add("update_run (status, failed_count)", paired)

    # -- reads ----------------------------------------------------------------------------

    def list_pages(self, run_id: str, rows: int) -> None:
        settings = self.settings
        raw, storage = self.raw, self.storage

        def runstore_page(page: int) -> ListRunResultsOutput:
            return storage.list_results(
                ListRunResultsInput(
                    run_id=run_id, pagination=StoragePagination(page=page, per_page=PER_PAGE)
                )
            )

        with self.runstore_sql(
            "list_results, first page",
            [*self.snapshot, self.sql.count_results, self.sql.first_page_results],
        ):
            first = runstore_page(0)
        limit = FETCHED_PER_PAGE
        _check_result(first.results[0], run_id)
        assert [r.id for r in first.results] == [row[0] for row in raw.list_page(run_id, 0, 100)[1]]

        paired = compare(
            fixed(lambda: runstore_page(0)),
            fixed(lambda: raw.list_page(run_id, 0, limit)),
            samples=settings.page_samples,
            warmup=settings.warmup,
        )
        self.add(FIRST_PAGE, paired, unit="ms", target=Target("ratio", 1.5))

        deep_page = int(rows * DEPTH) // PER_PAGE
        offset = deep_page * PER_PAGE
        with self.runstore_sql(
            "list_results, deep page by offset",
            [*self.snapshot, self.sql.count_results, self.sql.offset_page_results],
        ):
            deep = runstore_page(deep_page)
        raw_deep = raw.list_page(run_id, offset, limit)[1]
        assert deep.results[0].id == raw_deep[0][0]
        paired = compare(
            fixed(lambda: runstore_page(deep_page)),
            fixed(lambda: raw.list_page(run_id, offset, limit)),
            samples=settings.deep_samples,
            warmup=2,
            rounds=2,
        )
        self.add(
            OFFSET_PAGE, paired, unit="ms", details=[f"page {deep_page} of {rows // PER_PAGE}"]
        )

        if not HAS_CURSORS:
            self.add(CURSOR_PAGE, None, unit="ms", target=CURSOR_TARGET)
            return
        self.cursor_page(run_id, rows, deep_page, offset, limit)

    def cursor_page(self, run_id: str, rows: int, deep_page: int, offset: int, limit: int) -> None:
        storage, raw = self.storage, self.raw

        def runstore_after(cursor: str | None) -> ListRunResultsOutput:
            return storage.list_results(
                ListRunResultsInput(
                    run_id=run_id, pagination=StoragePagination(per_page=PER_PAGE), cursor=cursor
                )
            )

        # Walk to 90% depth once, page by page, as a client would (not measured).
        started = time.perf_counter()
        cursor: str | None = None
        for _ in range(deep_page):
            cursor = runstore_after(cursor).next_cursor
            assert cursor is not None
        walked = time.perf_counter() - started
        with self.runstore_sql(
            "list_results, deep page by cursor",
            [*self.snapshot, self.sql.count_results, self.sql.keyset_page_results],
        ) as emitted:
            page = runstore_after(cursor)
        # Every runstore page carries pagination.total, so it always counts (the statements
        # caught above show it on SQLite); the raw side does the same.
        counts = True
        assert emitted or self.backend.dialect != "sqlite", "no statement was caught"
        key = raw.key_at(run_id, offset - 1)
        raw_page = raw.list_after(run_id, key, limit, count=counts)[1]
        assert page.results[0].id == raw_page[0][0], "the cursor and the keyset disagree"

        paired = compare(
            fixed(lambda: runstore_after(cursor)),
            fixed(lambda: raw.list_after(run_id, key, limit, count=counts)),
            samples=self.settings.page_samples,
            warmup=self.settings.warmup,
        )
        self.add(
            CURSOR_PAGE,
            paired,
            unit="ms",
            target=CURSOR_TARGET,
            details=[
                f"reached by walking {deep_page} pages with next_cursor "
                f"({walked:.1f} s, not measured); both sides "
                + ("also count the run's results" if counts else "skip the count")
            ],
        )

    # -- iteration ------------------------------------------------------------------------

    def iteration(self, run_id: str, rows: int) -> None:
        settings = self.settings
        label = f"iter_results, {rows:,} rows"
        if not HAS_ITER_RESULTS:
            self.add(f"{label}: wall time", None, unit="s")
            self.add(f"{label}: peak RSS", None, unit="MB", target=Target("below", 150))
            return
        with self.runstore_sql("iter_results (first batches)", [self.sql.iterate_results]):
            first = next(iter(self.storage.iter_results(run_id, batch_size=1000)))
        _check_result(first, run_id)

        def spec(side: str) -> IterationSpec:
            runstore = side == "runstore"
            return {
                "side": side,
                "backend": self.backend.dialect,
                "target": self.backend.url if runstore else self.backend.raw_target,
                "run_id": run_id,
                "batch_size": 1000,
                "sql": self.sql.iterate_results,
                "pragmas": [
                    f"PRAGMA {name}={value}" for name, value in DEFAULT_SQLITE_PRAGMAS.items()
                ],
            }

        reports: dict[str, list[IterationReport]] = {"runstore": [], "raw": []}
        _iterate_in_child(spec("raw"))  # warm the page cache (not measured)
        for _ in range(settings.iteration_repeats):
            for side in ("raw", "runstore"):
                report = _iterate_in_child(spec(side))
                assert report["rows"] == rows, (side, report)
                reports[side].append(report)

        def median(side: str, key: Literal["seconds", "peak_rss", "baseline_rss"]) -> float:
            return statistics.median(float(report[key]) for report in reports[side])

        before = {side: median(side, "baseline_rss") / 2**20 for side in reports}
        baseline = (
            f"peak RSS before iterating (imports, connection): "
            f"runstore {before['runstore']:.0f} MB, raw {before['raw']:.0f} MB"
        )
        samples = f"{settings.iteration_repeats} run(s) per side, each in a fresh process"
        how = (
            "raw: psycopg named (server-side) cursor, fetchmany(1000)"
            if self.backend.dialect == "postgresql"
            else "raw: sqlite3 cursor, fetchmany(1000)"
        )
        self.add(
            f"{label}: wall time",
            Paired(median("runstore", "seconds"), median("raw", "seconds"), len(reports["raw"])),
            unit="s",
            details=[f"{samples}; {how}; runstore: batch_size=1000"],
        )
        self.add(
            f"{label}: peak RSS",
            Paired(median("runstore", "peak_rss"), median("raw", "peak_rss"), len(reports["raw"])),
            unit="MB",
            target=Target("below", 150),
            details=[baseline],
        )


def _check_result(result: RunResult, run_id: str, fields: dict[str, Any] | None = None) -> None:
    """The values runstore read back are the values written (by default: the seed row)."""
    if fields is None:
        fields = result_fields(run_id, int(result.item_id.removeprefix("item-")))
    for name, value in fields.items():
        assert getattr(result, name) == value, (name, getattr(result, name), value)


def _iterate_in_child(spec: IterationSpec) -> IterationReport:
    # Linux keeps the peak RSS of the memory a process had before exec() in its ru_maxrss,
    # and a child spawned from here starts on this process's memory (vfork). A shell in
    # between, which forks the measured process itself, gives it a clean slate.
    command = [sys.executable, "-m", "bench.iterate", json.dumps(spec)]
    finished = subprocess.run(
        ["/bin/sh", "-c", '"$@"; exit $?', "sh", *command],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"iteration child failed:\n{finished.stderr}")
    report: IterationReport = json.loads(finished.stdout.strip().splitlines()[-1])
    return report


def run_suite(backend: Backend, settings: Settings, show_sql: bool) -> list[Measurement]:
    log(f"{backend.label}: seeding")
    suite = Suite(backend, settings, show_sql)
    try:
        list_run = suite.seed(settings.list_rows)
        iteration_run = suite.seed(settings.iteration_rows)
        backend.tidy()
        # Reads first, on freshly vacuumed tables: the writes below add rows (to other runs)
        # that would otherwise change the plans of the reads from one run to the next.
        log(f"{backend.label}: reads")
        suite.get_run(list_run)
        suite.list_pages(list_run, settings.list_rows)
        log(f"{backend.label}: iteration")
        suite.iteration(iteration_run, settings.iteration_rows)
        log(f"{backend.label}: writes")
        suite.single_add_result()
        suite.batch_add_results()
        suite.update_run()
    finally:
        suite.close()
    return suite.measurements


# -- the command ----------------------------------------------------------------------------


METHOD = [
    "Each operation runs through runstore (`SqlRunsStorage`) and through the raw driver "
    "on one connection, against the same database, tables and rows.",
    "",
    "- **Schema**: created by runstore itself (`SqlRunsStorage(url).init()`), so both sides "
    "use the same tables and indexes. SQLite is a file in a temporary directory; Postgres a "
    "fresh `runstore_bench_*` database, dropped afterwards.",
    "- **Same SQL**: the raw side runs the statements runstore emits (`bench/sqltext.py`, "
    "checked against what runstore sends; `python -m bench.run --show-sql --only sqlite` "
    "prints both, caught by sqlite3's trace callback), "
    "including runstore's `INSERT … SELECT … WHERE EXISTS` for one result, the run check "
    "and 1,000-row `executemany` chunks of `add_results`, the `COUNT(*)` before every page, "
    "one extra row per page (to know whether more follow) and Postgres' bind casts.",
    "- **Same settings**: on SQLite runstore's pragmas (WAL, `synchronous=NORMAL`, "
    "`busy_timeout=30000`, `foreign_keys=ON`), `BEGIN IMMEDIATE` for writes and `BEGIN` "
    "for reads; on Postgres sessions in UTC, and `REPEATABLE READ` for a page's count and "
    "rows. runstore uses the engine it builds from the URL, with its default pool "
    "settings; the raw side holds one connection.",
    "- **Same values and transactions**: JSON written by `runstore.jsonvalues.dumps_json` "
    "(as text on SQLite, as `jsonb` via `psycopg.types.json.Jsonb` on Postgres), timestamps "
    "as runstore's fixed-width UTC text on SQLite and `timestamptz` on Postgres; a fresh "
    "uuid4 id and creation time per result; one commit per call. Before timing, rows "
    "written by the raw side are read back through runstore and compared field by field.",
    "- **What differs is what runstore adds**: runstore's side includes building the "
    "pydantic input (`AddRunResultInput`, `UpdateRunInput`, `ListRunResultsInput`; "
    "`add_results` gets plain dicts and validates them), SQLAlchemy, and building the "
    "returned models. The raw side returns the driver's tuples.",
    "- **Timing**: `time.perf_counter` around each call, after warm-up calls; runstore and "
    "raw samples alternate in blocks so drift hits both alike; medians reported. "
    "Preparing a sample (its input rows, a fresh run) is not timed. Seed rows are loaded "
    "with the raw driver (`executemany` on SQLite, `COPY` on Postgres, then "
    "`VACUUM ANALYZE`) and are not timed.",
    "- **Pages** are read from one run of {list_rows:,} results: the first page, the page "
    "at 90% depth by `pagination.page` (`OFFSET`), and the same page by keyset cursor — "
    "runstore gets there by walking `next_cursor` once before timing; the raw side runs "
    'the keyset query `WHERE "runId" = ? AND ("startedAt", id) > (?, ?) ORDER BY '
    '"startedAt", id LIMIT 101`.',
    "- **Iteration** reads every result of a run of {iteration_rows:,} in a child process "
    "per measurement, which reports its wall time and its peak RSS "
    "(`resource.getrusage(RUSAGE_SELF).ru_maxrss`). runstore's side is "
    "`iter_results(run_id, batch_size=1000)`; the raw side a psycopg named (server-side) "
    "cursor, or a sqlite3 cursor, read with `fetchmany(1000)`. The raw child imports only "
    "its driver.",
]


OPERATION_ORDER = (
    "add_result (",
    "add_results",
    "get_run_by_id",
    "update_run",
    FIRST_PAGE,
    OFFSET_PAGE,
    CURSOR_PAGE,
    "wall time",
    "peak RSS",
)


def _table_order(measurement: Measurement) -> tuple[int, int]:
    """The table's order: operations as above, SQLite before Postgres in each."""
    operation = next(
        (number for number, part in enumerate(OPERATION_ORDER) if part in measurement.operation),
        len(OPERATION_ORDER),
    )
    return operation, 0 if measurement.backend == "SQLite" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and samples")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="one backend only")
    parser.add_argument("--output", default="docs/benchmarks.md", help="the markdown to write")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--show-sql", action="store_true", help="print both sides' SQL")
    arguments = parser.parse_args(argv)
    settings = Settings.of(quick=arguments.quick)
    started = time.perf_counter()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    measurements: list[Measurement] = []
    facts: dict[str, str] | None = None
    if arguments.only in (None, "sqlite"):
        with sqlite_backend() as backend:
            measurements += run_suite(backend, settings, arguments.show_sql)
    if arguments.only in (None, "postgres"):
        facts = postgres_facts(arguments.postgres_url)
        with postgres_backend(arguments.postgres_url) as backend:
            measurements += run_suite(backend, settings, arguments.show_sql)

    measurements.sort(key=_table_order)
    elapsed = time.perf_counter() - started
    duration = f"{elapsed / 60:.1f} min" if elapsed >= 90 else f"{elapsed:.0f} s"
    table = render_table(measurements)
    print(table)
    log(f"done in {duration}")

    command = "python -m bench.run" + (" --quick" if settings.quick else "")
    if arguments.only:
        command += f" --only {arguments.only}"
    mode = "quick mode" if settings.quick else "full mode"
    method = [
        line.format(list_rows=settings.list_rows, iteration_rows=settings.iteration_rows)
        for line in METHOD
    ]
    remarks = []
    if not (HAS_ADD_RESULTS and HAS_ITER_RESULTS and HAS_CURSORS):
        remarks.append(
            "Rows marked n/a measure API this version of runstore does not have yet "
            "(`add_results`, cursors, `iter_results`)."
        )
    document = render_document(
        rows=measurements,
        machine=describe_machine(facts),
        date=date,
        command=command,
        mode=mode,
        duration=duration,
        method=method,
        remarks=remarks,
    )
    output = Path(arguments.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document)
    log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
