"""The databases both sides use: runstore's storage and one raw connection on each."""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import ExitStack
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import TypeVar

import psycopg
import sqlalchemy as sa

from bench import data
from bench import iterate
from bench.harness import Prepare
from bench.harness import Statement
from bench.harness import capture
from bench.harness import compare
from bench.report import Measurement
from runstore import CreateRunInput
from runstore import SqlRunsStorage
from runstore.engine import DEFAULT_SQLITE_PRAGMAS
from runstore.tables import results_table
from runstore.tables import runs_table
from runstore.tables import scores_table

_T = TypeVar("_T")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Settings:
    """How much work each case does."""

    quick: bool
    single_samples: int = 1000
    batch_rows: int = 10_000
    batch_samples: int = 7
    page_samples: int = 200
    deep_samples: int = 30
    list_rows: int = 100_000
    iteration_rows: int = 1_000_000
    iteration_repeats: int = 3
    warmup: int = 50
    answer_samples: int = 5
    """summarize_run and compare_runs calls per side."""
    small_rows: int = 1000
    """The small run whose first page the large run's is held against."""
    summary_rows: int = 1_000_000
    """The run summarized: the iteration run (full mode) or the list run (quick mode)."""
    prune_runs: int = 1000
    prune_results: int = 1000
    """Results per pruned run."""
    trend_runs: int = 100
    """The finished runs of the dataset whose trend is read."""
    trend_results: int = 10_000
    """Results per run of that trend."""

    @classmethod
    def of(cls, *, quick: bool) -> Settings:
        if not quick:
            return cls(False)
        return cls(
            True, 200, 2000, 3, 50, 10, 10_000, 100_000, 1, 20, 3, 1000, 10_000, 100, 100, 20, 1000
        )


def conninfo(url: str) -> str:
    """A libpq connection string for a ``postgresql+psycopg://`` URL."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database(admin_url: str, prefix: str = "runstore_bench") -> Iterator[str]:
    """A new Postgres database on the server of ``admin_url`` (its URL), dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(conninfo(admin_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo(admin_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(slots=True)
class Backend:
    """One database: the storage that is timed, a probe, the raw connection, the results."""

    label: str
    dialect: str
    url: str
    raw_target: str
    """What a raw child process connects to: the SQLite file, or a libpq conninfo."""
    storage: SqlRunsStorage
    probe: SqlRunsStorage
    """A second storage on the same database, whose statements are caught. SQLAlchemy keeps
    an engine on its slower path for events once a listener was added, even after it is
    removed, so the engine that is timed never gets one."""
    raw: Any
    """sqlite3 (autocommit, runstore's pragmas) or psycopg (autocommit, session in UTC)."""
    settings: Settings
    show_sql: bool
    measurements: list[Measurement] = field(default_factory=list)
    insert_sql: str = ""
    """The INSERT SQLAlchemy compiles from runstore's results table for this driver."""

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    def bind(self, names: Sequence[str], values: dict[str, Any]) -> Any:
        return data.bind(self.dialect, names, values)

    def reads(self, statements: Sequence[Statement]) -> Statement:
        """The statement of a read of results that runstore sent, checked to be all it
        sent but, on SQLite, the read transaction and the scores' statement that the raw
        side sends too (:func:`bench.data.read_results`)."""
        selects = [s for s in statements if s.sql.lstrip().upper().startswith("SELECT")]
        if self.postgres:
            assert len(statements) == len(selects) == 1, statements
            return selects[0]
        assert [s.sql for s in statements if s not in selects] == ["BEGIN"], statements[:1]
        for scores in selects[1:]:  # in chunks of iterate.CHUNK results
            assert scores.sql == iterate.scores_sql(len(scores.params)), scores.sql[:200]
        return selects[0]

    def batch_reads(self, statements: Sequence[Statement], count: int) -> list[Statement]:
        """The statements of ``count`` reads of results (each as :meth:`reads` checks)."""
        begins = [n for n, s in enumerate(statements) if s.sql == "BEGIN"]
        if self.postgres:
            assert not begins, statements
            groups = [[s] for s in statements]
        else:
            ends = [*begins[1:], len(statements)]
            groups = [list(statements[b:e]) for b, e in zip(begins, ends, strict=True)]
        assert len(groups) == count, statements
        return [self.reads(group) for group in groups]

    def read(self, sql: str, args: Any) -> Any:
        """Raw: a read of results as runstore reads it (:func:`bench.data.read_results`)."""
        return data.read_results(self.dialect, self.raw, sql, args)

    def new_run(self, total_items: int = 0) -> str:
        return self.storage.create_run(CreateRunInput(**data.run_fields(total_items))).id

    def caught(
        self, title: str, call: Callable[[SqlRunsStorage], _T]
    ) -> tuple[_T, list[Statement]]:
        """``call`` on the probe, and the statements it sent (printed with ``--show-sql``)."""
        with capture(self.probe.engine) as statements:
            result = call(self.probe)
        if self.show_sql:
            print(f"\n--- {self.label}: {title}", file=sys.stderr)
            print(*(f"runstore: {s}" for s in statements), sep="\n", file=sys.stderr)
        return result, statements

    def show_raw(self, *sql: str) -> None:
        if self.show_sql:
            print(*(f"raw:      {' '.join(s.split())}" for s in sql), sep="\n", file=sys.stderr)

    @property
    def begin_write(self) -> str:
        """The statement runstore begins a write transaction with."""
        return "BEGIN ISOLATION LEVEL READ COMMITTED" if self.postgres else "BEGIN IMMEDIATE"

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A raw write transaction, begun as runstore begins one, on the autocommit
        connection."""
        self.raw.execute(self.begin_write)
        try:
            yield
        except BaseException:
            self.raw.rollback()
            raise
        self.raw.commit()

    def measure(
        self, operation: str, runstore: Prepare, raw: Prepare, *, per: int = 1, **row: Any
    ) -> None:
        """Compare both sides (:func:`~bench.harness.compare`; ``samples``, ``warmup`` and
        ``rounds`` in ``row`` if given) and record the row (``unit``, ``target``, ``details``)."""
        timing = {"samples": self.settings.single_samples, "warmup": self.settings.warmup}
        timing |= {key: row.pop(key) for key in ("samples", "warmup", "rounds") if key in row}
        ours, theirs = compare(runstore, raw, **timing)
        self.add(
            Measurement(
                operation, self.label, row.pop("unit", "us"), ours / per, theirs / per, **row
            )
        )

    def add(self, row: Measurement) -> None:
        self.measurements.append(row)
        log(f"  {row.operation}: {row.cells()}")

    def seed(self, rows: int, *, shift: int = 0, analyze: bool = True) -> str:
        """A run of ``rows`` results, loaded by the raw driver (not timed); ``shift``
        varies latencies and errors (see :func:`bench.data.result_fields`). ``analyze``:
        then refresh the planner's statistics (Postgres) or checkpoint (SQLite)."""
        run_id, started, now = self.new_run(rows), time.perf_counter(), datetime.now(UTC)
        encoded = (
            tuple(
                data.encode(
                    self.dialect, {"id": data.new_id(), "created_at": now} | fields
                ).values()
            )
            for fields in (data.result_fields(run_id, n, shift) for n in range(rows))
        )
        if self.postgres:
            names = ", ".join(f'"{name}"' for name in data.RESULT_COLUMNS)
            sql = f"COPY {results_table.name} ({names}) FROM STDIN"
            with self.raw.cursor() as cursor, cursor.copy(sql) as copy:
                for row in encoded:
                    copy.write_row(row)
        else:
            with self.transaction():
                self.raw.executemany(self.insert_sql, encoded)
        if analyze:
            self.analyze()
        self.storage.recount_run(run_id)  # the run's counts, as a run written in bulk sets them
        log(f"  seeded {rows:,} results in {time.perf_counter() - started:.1f} s")
        return run_id

    def new_id_sql(self) -> str:
        """SQL for a fresh random text id, for rows made by the database itself."""
        return "gen_random_uuid()::text" if self.postgres else "lower(hex(randomblob(16)))"

    def seed_scores(self, run_id: str | None = None, *, dataset_id: str | None = None) -> None:
        """Two scores for each result of a run -- or of every run of a dataset -- made in
        the database by ``INSERT ... SELECT`` (not timed): see :data:`bench.data.SCORES`."""
        assert (run_id is None) != (dataset_id is None), "a run or a dataset"
        started = time.perf_counter()
        names = ", ".join(f'"{name}"' for name in data.SCORE_COLUMNS)
        param = "%(key)s" if self.postgres else ":key"
        if dataset_id is None:
            where, key = f'"runId" = {param}', run_id
        else:
            where = f'"runId" IN (SELECT id FROM {runs_table.name} WHERE "datasetId" = {param})'
            key = dataset_id
        with self.transaction():
            for name, value in data.SCORES.items():
                value = value.replace("%", "%%") if self.postgres else value
                self.raw.execute(
                    f"INSERT INTO {scores_table.name} ({names}) SELECT {self.new_id_sql()}, "
                    f'"runId", id, \'{name}\', {value}, NULL, NULL, NULL, "createdAt" '
                    f"FROM {results_table.name} WHERE {where}",
                    {"key": key},
                )
        self.analyze()
        log(f"  seeded 2 scores a result in {time.perf_counter() - started:.1f} s")

    def analyze(self) -> None:
        """Fresh planner statistics (Postgres), or a checkpointed WAL (SQLite)."""
        if self.postgres:
            self.raw.execute("VACUUM ANALYZE")
        else:
            self.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@contextmanager
def open_backend(
    name: str, settings: Settings, postgres_url: str, show_sql: bool
) -> Iterator[Backend]:
    """SQLite in a temporary directory, or a fresh ``runstore_bench_*`` Postgres database;
    the schema created by runstore itself."""
    with ExitStack() as stack:
        if name == "sqlite":
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="runstore_bench_"))
            url, target = f"sqlite:///{directory}/bench.db", f"{directory}/bench.db"
            raw: Any = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            for pragma, value in DEFAULT_SQLITE_PRAGMAS.items():
                raw.execute(f"PRAGMA {pragma}={value}")
        else:
            url = stack.enter_context(fresh_database(postgres_url))
            target = conninfo(url)
            raw = psycopg.connect(target, autocommit=True, options="-c TimeZone=UTC")
        stack.callback(raw.close)
        storage, probe = SqlRunsStorage(url), SqlRunsStorage(url)
        stack.callback(storage.close)
        stack.callback(probe.close)
        storage.init()
        probe.get_run_by_id("none")  # its schema check, before any statement is caught
        label, dialect = ("SQLite", "sqlite") if name == "sqlite" else ("Postgres", "postgresql")
        backend = Backend(label, dialect, url, target, storage, probe, raw, settings, show_sql)
        backend.insert_sql = str(sa.insert(results_table).compile(dialect=storage.engine.dialect))
        yield backend
