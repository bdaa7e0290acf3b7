"""What only the SQL adapter has: schema checks, engines, stored formats, wrapped errors."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from runstore import (
    DatabaseError,
    InvalidInputError,
    ListRunResultsInput,
    RunNotFoundError,
    SchemaOutOfDateError,
    SqlRunsStorage,
    StorageError,
)
from runstore.migrations import VERSION_TABLE, head_revision
from runstore.testing.inputs import result_input, run_input


def test_a_database_without_the_schema_says_what_to_run(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        pass  # entering calls init(); the schema is now there
    with SqlRunsStorage(empty_url) as storage:
        storage.create_run(run_input())

    bare = SqlRunsStorage(sa.create_engine(empty_url))
    with bare.engine.begin() as connection:
        connection.execute(sa.text(f"DELETE FROM {VERSION_TABLE}"))
    with pytest.raises(SchemaOutOfDateError, match=r"has no runstore schema.*init\(\)") as caught:
        bare.create_run(run_input())
    assert "runstore db upgrade --url" in str(caught.value)
    bare.close()


def test_a_schema_behind_head_is_refused_until_init(empty_url: str) -> None:
    storage = SqlRunsStorage(empty_url)
    with pytest.raises(SchemaOutOfDateError, match="has no runstore schema"):
        storage.get_run_by_id("x")
    storage.init()
    assert storage.get_run_by_id("x") is None
    storage.close()


def test_a_schema_from_a_newer_runstore_is_refused(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage, storage.engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'from_the_future'"))
    storage = SqlRunsStorage(empty_url)
    with pytest.raises(SchemaOutOfDateError, match="newer runstore"):
        storage.list_results(ListRunResultsInput(run_id="r"))
    with pytest.raises(SchemaOutOfDateError, match="newer runstore"):
        storage.init()
    storage.close()


def test_init_is_idempotent(empty_url: str) -> None:
    storage = SqlRunsStorage(empty_url)
    storage.init()
    run = storage.create_run(run_input())
    storage.init()
    storage.init()
    assert storage.get_run_by_id(run.id) == run
    with storage.engine.connect() as connection:
        versions = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))
        assert versions.scalars().all() == [head_revision()]
    storage.close()


def _init_and_write(url: str, worker: int) -> str:
    storage = SqlRunsStorage(url)
    storage.init()
    run = storage.create_run(run_input(id=f"run-of-worker-{worker}"))
    storage.close()
    return run.id


def test_init_from_several_processes_at_once(empty_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        ids = pool.starmap(_init_and_write, [(empty_url, worker) for worker in range(4)])
    with SqlRunsStorage(empty_url) as storage:
        assert all(storage.get_run_by_id(run_id) is not None for run_id in ids)


def test_sqlite_timestamps_are_fixed_width_utc_text_that_sorts(sqlite_url: str) -> None:
    with SqlRunsStorage(sqlite_url) as storage:
        run = storage.create_run(run_input())
        moments = [
            datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2000, 1, 1, tzinfo=UTC),
            datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            datetime(33, 1, 1, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ]
        for n, moment in enumerate(moments):
            storage.add_result(result_input(run, n, started_at=moment))
        with storage.engine.connect() as connection:
            stored = connection.execute(
                sa.text('SELECT "startedAt" FROM mastra_dataset_run_results ORDER BY "startedAt"')
            ).scalars()
            assert list(stored) == [
                "0033-01-01T00:00:00.000000Z",
                "1999-12-31T23:59:59.999999Z",
                "2000-01-01T00:00:00.000000Z",
                "2000-01-01T00:00:00.000001Z",
                "9999-12-31T23:59:59.999999Z",
            ]
        listed = storage.list_results(ListRunResultsInput(run_id=run.id)).results
        assert [result.started_at for result in listed] == sorted(moments)


def test_postgres_column_types(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        types = dict(
            connection.execute(
                sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = 'mastra_dataset_run_results'"
                )
            ).all()
        )
    engine.dispose()
    assert types["input"] == types["output"] == types["expectedOutput"] == "jsonb"
    assert types["startedAt"] == "timestamp with time zone"
    assert types["latency"] == "double precision"


def test_postgres_keeps_the_instant_whatever_the_session_time_zone(postgres_url: str) -> None:
    moment = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    engine = sa.create_engine(
        postgres_url, connect_args={"options": "-c TimeZone=America/New_York"}
    )
    with SqlRunsStorage(engine) as storage:
        run = storage.create_run(run_input(dataset_version=moment))
        stored = storage.get_run_by_id(run.id)
    assert stored is not None
    assert stored.dataset_version == moment
    assert stored.dataset_version.utcoffset() == timedelta(0)
    engine.dispose()


def test_json_null_and_sql_null(postgres_url: str) -> None:
    with SqlRunsStorage(postgres_url) as storage:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run, input=None, output=None))
        with storage.engine.connect() as connection:
            row = connection.execute(
                sa.text(
                    "SELECT input IS NULL, jsonb_typeof(input), output IS NULL "
                    "FROM mastra_dataset_run_results WHERE id = :id"
                ),
                {"id": result.id},
            ).one()
    assert tuple(row) == (False, "null", True)


def test_a_passed_engine_is_used_as_is_and_not_disposed(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    with SqlRunsStorage(engine) as storage:
        storage.create_run(run_input(id="via-engine"))
    with engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM mastra_dataset_runs"))
        assert count.scalar_one() == 1
    engine.dispose()


def test_settings_for_a_passed_engine_are_refused(sqlite_url: str) -> None:
    with pytest.raises(InvalidInputError):
        SqlRunsStorage(sa.create_engine(sqlite_url), pool_size=3)


def test_unsupported_urls_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="SQLite and Postgres"):
        SqlRunsStorage("mysql+pymysql://root@127.0.0.1/test")
    with pytest.raises(InvalidInputError, match="psycopg 3"):
        SqlRunsStorage("postgresql+psycopg2://postgres@127.0.0.1/test")


def test_plain_postgresql_urls_mean_psycopg(postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with SqlRunsStorage(plain) as storage:
        assert storage.engine.dialect.driver == "psycopg"
        storage.get_run_by_id("x")


def test_sqlite_pragmas_are_set_on_runstore_engines_only(sqlite_url: str) -> None:
    with SqlRunsStorage(sqlite_url) as storage, storage.engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() == 30000
        assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
    other = sa.create_engine(sqlite_url)
    with other.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
    other.dispose()
    with (
        SqlRunsStorage(
            sqlite_url, sqlite_pragmas={"busy_timeout": "5", "synchronous": None}
        ) as storage,
        storage.engine.connect() as connection,
    ):
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # default FULL


def test_database_failures_are_wrapped_with_the_cause_chained(empty_url: str) -> None:
    storage = SqlRunsStorage(empty_url)
    storage.init()
    storage.get_result_by_id("x")  # the schema is checked once, at first use
    with storage.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE mastra_dataset_run_scores"))
        connection.execute(sa.text("DROP TABLE mastra_dataset_run_results"))
    driver_error = storage.engine.dialect.loaded_dbapi.Error
    for call in (
        lambda: storage.get_result_by_id("x"),
        lambda: storage.list_results(ListRunResultsInput(run_id="r")),
        lambda: storage.delete_results_by_run_id("r"),
    ):
        with pytest.raises(DatabaseError) as caught:
            call()
        assert isinstance(caught.value.__cause__, sa.exc.DBAPIError)
        assert isinstance(caught.value.__cause__.orig, driver_error)
        assert "mastra_dataset_run_" in str(caught.value)
    storage.close()


def test_a_table_dropped_behind_runstores_back_is_named_at_first_use(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage, storage.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE mastra_dataset_run_scores"))
        connection.execute(sa.text("DROP TABLE mastra_dataset_run_results"))
    storage = SqlRunsStorage(empty_url)
    with pytest.raises(SchemaOutOfDateError, match="mastra_dataset_run_results is missing"):
        storage.get_run_by_id("x")
    storage.close()


def test_an_unreachable_server_is_a_storage_error() -> None:
    storage = SqlRunsStorage("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    with pytest.raises(DatabaseError) as caught:
        storage.init()
    assert isinstance(caught.value, StorageError)
    assert caught.value.__cause__ is not None


def test_memory_sqlite_is_one_database_shared_by_threads() -> None:
    import threading

    with SqlRunsStorage("sqlite://") as storage:
        run = storage.create_run(run_input())
        errors: list[BaseException] = []

        def record(worker: int) -> None:
            try:
                for n in range(25):
                    storage.add_result(result_input(run, f"{worker}-{n}"))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=record, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        total = storage.list_results(ListRunResultsInput(run_id=run.id)).pagination.total
        assert total == 100


def test_storage_repr_hides_the_password() -> None:
    storage = SqlRunsStorage("postgresql+psycopg://user:secret@127.0.0.1:1/db")
    assert "secret" not in repr(storage)
    storage.close()


@pytest.mark.parametrize("options", [{"ping_after_idle": 0.0}, {"pool_pre_ping": True}])
def test_a_connection_the_server_dropped_is_replaced(
    postgres_url: str, options: dict[str, object]
) -> None:
    with SqlRunsStorage(postgres_url, pool_size=1, max_overflow=0, **options) as storage:
        run = storage.create_run(run_input())
        with storage.engine.connect() as connection:
            backend_pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        killer = sa.create_engine(postgres_url)
        with killer.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid})
        killer.dispose()
        assert storage.get_run_by_id(run.id) == run


@pytest.mark.parametrize(("idle_seconds", "pinged"), [(3600.0, False), (0.0, True)])
def test_only_idle_connections_are_pinged(
    postgres_url: str, tmp_path: Path, idle_seconds: float, pinged: bool
) -> None:
    import psycopg

    trace = tmp_path / "wire.log"
    with SqlRunsStorage(
        postgres_url, pool_size=1, max_overflow=0, ping_after_idle=idle_seconds
    ) as storage:
        storage.get_run_by_id("warm-up")
        with storage.engine.connect() as connection:
            wire = connection.connection.driver_connection.pgconn  # type: ignore[union-attr]
        with trace.open("w") as log:
            wire.trace(log.fileno())
            wire.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            storage.get_run_by_id("x")
            wire.untrace()
    sent = trace.read_text()
    assert "mastra_dataset_runs" in sent
    assert ('Query\t "SELECT 1"' in sent) is pinged


def test_an_autocommit_engine_still_gets_transactions(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with SqlRunsStorage(engine) as storage:
        run = storage.create_run(run_input())
        with pytest.raises(RunNotFoundError):
            storage.add_results([result_input(run, 0), result_input("ghost", 1)])
        assert storage.list_results(ListRunResultsInput(run_id=run.id)).pagination.total == 0
        storage.add_result(result_input(run, 0), update_counts=True)
        counted = storage.get_run_by_id(run.id)
        assert counted is not None
        assert counted.succeeded_count == 1
    engine.dispose()


def test_vacuum_gives_a_pruned_sqlite_files_space_back(sqlite_url: str) -> None:
    path = Path(sa.make_url(sqlite_url).database or "")
    with SqlRunsStorage(sqlite_url) as storage:
        for _ in range(5):
            run = storage.create_run(run_input())
            storage.add_results(
                [result_input(run, n, input={"text": "x" * 1000}) for n in range(300)]
            )
        keep = storage.create_run(run_input())
        storage.add_result(result_input(keep, 0))
        assert storage.prune_runs(older_than=keep.created_at) == 5
        storage.vacuum()
        size = path.stat().st_size
        assert size < 200_000  # the 1.5 MB the pruned rows took are gone from the file
        assert storage.recount_run(keep.id).result_count == 1
        assert [r.item_id for r in storage.iter_results(keep.id)] == ["item-0"]


def test_vacuum_runs_on_postgres_and_keeps_every_row(postgres_url: str) -> None:
    storage = SqlRunsStorage(postgres_url)
    try:
        storage.init()
        storage.dangerously_clear_all()
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, n) for n in range(10)])
        storage.vacuum()
        assert len(list(storage.iter_results(run.id))) == 10
    finally:
        storage.close()


def test_a_prune_transaction_holds_at_most_ten_thousand_results(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        runs = [storage.create_run(run_input()) for _ in range(5)]
        for run in runs:
            storage.add_results([result_input(run, n) for n in range(4000)])
        keep = storage.create_run(run_input())
        deletes: list[str] = []

        def seen(*arguments: object) -> None:
            if str(arguments[2]).startswith("DELETE FROM mastra_dataset_runs "):
                deletes.append(str(arguments[2]))

        sa.event.listen(storage.engine, "before_cursor_execute", seen)
        assert storage.prune_runs(older_than=keep.created_at, batch_size=100) == 5
        sa.event.remove(storage.engine, "before_cursor_execute", seen)
        assert len(deletes) == 3  # 2 runs (8,000 results), 2 runs, 1 run
        assert [run.id for run in storage.iter_runs()] == [keep.id]
