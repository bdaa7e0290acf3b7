"""URLs and the engines runstore builds or is given: which URLs it refuses and how it reads
the ones it takes, a missing Postgres driver, an engine passed in (used as is, never
disposed, given no settings), SQLite's pragmas and in-memory database, transactions on an
autocommit engine, no password in any message, repr or string, and the pool's pinging of
idle connections."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from parallel import in_threads
from runstore import AsyncSqlRunsStorage
from runstore import DatabaseError
from runstore import InvalidInputError
from runstore import ListRunResultsInput
from runstore import RunNotFoundError
from runstore import SqlRunsStorage
from runstore import StorageClosedError
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

# -- URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "not a url at all",
        "",
        "sqlite+pysqlcipher:///x.db",
        "mysql+pymysql://root@127.0.0.1/test",
        "postgresql+asyncpg://postgres@127.0.0.1/test",
        123,
        None,
    ],
)
def test_urls_runstore_cannot_use_are_invalid_input(url: object) -> None:
    with pytest.raises(InvalidInputError, match="sqlite:///") as caught:
        SqlRunsStorage(url)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)


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


def test_postgres_urls_as_hosting_providers_give_them(postgres_url: str) -> None:
    short = postgres_url.replace("postgresql+psycopg://", "postgres://")
    with SqlRunsStorage(short) as storage:
        assert storage.engine.dialect.driver == "psycopg"
        assert storage.get_run_by_id("x") is None


@pytest.mark.heavy
def test_a_missing_postgres_driver_names_the_extra_to_install() -> None:
    script = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from runstore import SqlRunsStorage, InvalidInputError\n"
        "try:\n"
        "    SqlRunsStorage('postgresql://u@h/d')\n"
        "except InvalidInputError as exc:\n"
        "    print(exc)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert 'pip install "runstore[postgres]"' in completed.stdout


# -- engines ---------------------------------------------------------------------------


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


def test_memory_sqlite_is_one_database_shared_by_threads() -> None:
    with SqlRunsStorage("sqlite://") as storage:
        run = storage.create_run(run_input())

        def record(worker: int) -> None:
            for n in range(25):
                storage.add_result(result_input(run, f"{worker}-{n}"))

        in_threads(record, [(w,) for w in range(4)])
        total = storage.list_results(ListRunResultsInput(run_id=run.id)).pagination.total
        assert total == 100


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


# -- passwords -------------------------------------------------------------------------


def test_storage_repr_hides_the_password() -> None:
    storage = SqlRunsStorage("postgresql+psycopg://user:secret@127.0.0.1:1/db")
    assert "secret" not in repr(storage)
    storage.close()


def test_no_message_or_repr_shows_a_password() -> None:
    url = "postgresql+psycopg://user:pw1@127.0.0.1:1/db?password=s3cret&sslpassword=k3y&a=b"
    storage = SqlRunsStorage(url, pool_pre_ping=False)
    shown = [repr(storage), str(storage)]
    with pytest.raises(DatabaseError) as unreachable:
        storage.get_run_by_id("x")
    shown.append(str(unreachable.value))
    storage.close()
    with pytest.raises(StorageClosedError) as closed:
        storage.get_run_by_id("x")
    shown.append(str(closed.value))
    for text in shown:
        for secret in ("pw1", "s3cret", "k3y"):
            assert secret not in text, text
    assert "a=b" in repr(storage)


@pytest.mark.postgres
@pytest.mark.parametrize("adapter", ["blocking", "asyncio"])
def test_nothing_runstore_builds_shows_a_query_string_password(
    postgres_url: str, adapter: str
) -> None:
    """SQLAlchemy masks a URL's password field, not its query: runstore moves a query's
    password into the field, and other secrets out of the URL, to the driver."""
    url = f"{postgres_url}?password=s3cret&sslpassword=k3y&application_name=masked-test"
    if adapter == "blocking":
        storage: SqlRunsStorage | AsyncSqlRunsStorage = SqlRunsStorage(url)
        engine = storage.engine
        shown = [repr(engine), str(engine)]
    else:
        storage = AsyncSqlRunsStorage(url)
        engine = storage.engine.sync_engine
        shown = [repr(storage.engine), repr(engine)]
    shown += [repr(storage), str(storage), str(engine.url), repr(engine.url)]
    shown += [engine.url.render_as_string(), repr(engine.pool), str(engine.url.query)]
    for text in shown:
        assert "s3cret" not in text, text
        assert "k3y" not in text, text
    assert engine.url.password == "s3cret"  # where the driver takes it from
    assert engine.url.query == {"application_name": "masked-test"}
    if isinstance(storage, SqlRunsStorage):
        with storage.engine.connect() as connection:  # the rest of the query reaches the server
            name = connection.exec_driver_sql(_APPLICATION_NAME).scalar_one()
        assert storage.get_run_by_id("x") is None
        storage.close()
    else:
        name = asyncio.run(_use_and_close(storage))
    assert name == "masked-test"


_APPLICATION_NAME = "SELECT current_setting('application_name')"


async def _use_and_close(storage: AsyncSqlRunsStorage) -> str:
    async with storage.engine.connect() as connection:
        name = (await connection.exec_driver_sql(_APPLICATION_NAME)).scalar_one()
    assert await storage.get_run_by_id("x") is None
    await storage.close()
    return str(name)


# -- the pool --------------------------------------------------------------------------


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
