"""Hostile input and server faults the SQL adapter meets: no raw exception, no unreadable
row, no leaked secret, nothing half-written."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from runstore import (
    AsyncSqlRunsStorage,
    DatabaseError,
    InvalidInputError,
    ListRunResultsInput,
    SchemaOutOfDateError,
    SqlRunsStorage,
    StorageClosedError,
    StorageError,
    UpdateRunInput,
)
from runstore.testing.inputs import result_input, run_input
from runstore.testing.refusals import nested

# -- reading what is stored ------------------------------------------------------------


@pytest.mark.parametrize("depth", [950, 5000])
def test_json_stored_deeper_than_the_limit_still_reads_back(empty_url: str, depth: int) -> None:
    """Rows written before the depth limit existed (0.1 took ~950 levels) stay readable."""
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run))
        deep = "[" * depth + "1" + "]" * depth
        cast = "CAST(:deep AS JSONB)" if storage.engine.dialect.name == "postgresql" else ":deep"
        with storage.engine.begin() as connection:
            connection.execute(
                sa.text(f"UPDATE mastra_dataset_run_results SET output = {cast} WHERE id = :id"),
                {"deep": deep, "id": result.id},
            )
        expected = nested(depth)
        single = storage.get_result_by_id(result.id)
        assert single is not None
        listed = storage.list_results(ListRunResultsInput(run_id=run.id)).results
        streamed = list(storage.iter_results(run.id))
        for read in (single.output, listed[0].output, streamed[0].output):
            for _ in range(depth):
                assert isinstance(read, list)
                assert len(read) == 1
                read = read[0]
            assert read == 1
        assert expected is not None


# -- the schema, as found --------------------------------------------------------------


def test_a_column_renamed_by_hand_is_named_at_first_use(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
    engine = sa.create_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text('ALTER TABLE mastra_dataset_runs RENAME COLUMN "failedCount" TO "failed"')
        )
    engine.dispose()
    storage = SqlRunsStorage(empty_url)
    with pytest.raises(
        SchemaOutOfDateError, match="mastra_dataset_runs lacks the columns failedCount"
    ):
        storage.get_run_by_id(run.id)
    storage.close()


def test_a_column_renamed_after_first_use_is_an_error_not_a_wrong_value(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        with storage.engine.begin() as connection:
            connection.execute(
                sa.text('ALTER TABLE mastra_dataset_runs RENAME COLUMN "failedCount" TO "x"')
            )
        with pytest.raises(DatabaseError, match="failedCount"):
            storage.update_run(UpdateRunInput(id=run.id, status="running"))


def test_tables_without_a_version_record_say_how_to_recover(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage, storage.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE runstore_alembic_version"))
    storage = SqlRunsStorage(empty_url)
    with pytest.raises(SchemaOutOfDateError, match=r"(?s)no record of their schema.*stamp head"):
        storage.init()
    storage.close()


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


def test_postgres_urls_as_hosting_providers_give_them(postgres_url: str) -> None:
    short = postgres_url.replace("postgresql+psycopg://", "postgres://")
    with SqlRunsStorage(short) as storage:
        assert storage.engine.dialect.driver == "psycopg"
        assert storage.get_run_by_id("x") is None


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
        with engine.connect() as connection:  # the rest of the query reaches the server
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


# -- server faults ---------------------------------------------------------------------


def drop_connections(url: str) -> int:
    """Terminate every connection to the database of ``url`` but this one, as a server
    restart would; how many there were."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        killed = connection.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    engine.dispose()
    return int(killed)


def warm(storage: SqlRunsStorage, connections: int) -> None:
    """Leave ``connections`` connections in the storage's pool, just used."""
    held = [storage.engine.connect() for _ in range(connections)]
    for connection in held:
        connection.exec_driver_sql("SELECT 1")
        connection.close()


@pytest.fixture
def fresh_postgres(new_postgres_url: Callable[[], str]) -> str:
    url = new_postgres_url()
    with SqlRunsStorage(url):
        pass
    return url


def test_a_warm_pool_fails_at_most_once_after_the_server_drops_it(fresh_postgres: str) -> None:
    with SqlRunsStorage(fresh_postgres) as storage:
        run = storage.create_run(run_input())
        warm(storage, 5)
        assert drop_connections(fresh_postgres) >= 5
        failures: list[DatabaseError] = []
        for number in range(8):
            try:
                storage.add_result(result_input(run, number))
            except DatabaseError as exc:
                failures.append(exc)
        assert len(failures) <= 1
        assert all(failure.connection_lost for failure in failures)
        stored = {result.item_id for result in storage.iter_results(run.id)}
        assert len(stored) == 8 - len(failures)


def test_reads_survive_the_server_dropping_a_warm_pool(fresh_postgres: str) -> None:
    with SqlRunsStorage(fresh_postgres) as storage:
        run = storage.create_run(run_input())
        warm(storage, 5)
        assert drop_connections(fresh_postgres) >= 5
        for _ in range(8):  # each read that meets a dead connection is retried once
            assert storage.get_run_by_id(run.id) == run
            assert storage.list_results(ListRunResultsInput(run_id=run.id)).results == ()


def test_writers_lose_nothing_acknowledged_when_the_server_drops_them(
    fresh_postgres: str,
) -> None:
    """Four writers, each with its own warm storage, record counted batches while every
    connection is dropped five times: each fault fails at most one call per storage, only
    with a DatabaseError; every acknowledged batch is stored whole, every other batch is
    whole or absent, and the counters match the rows."""
    writers, batches, size, faults = 4, 30, 20, 5
    with SqlRunsStorage(fresh_postgres) as storage:
        run = storage.create_run(run_input(total_items=writers * batches * size))
    acknowledged: dict[int, list[int]] = {writer: [] for writer in range(writers)}
    failures: dict[int, list[BaseException]] = {writer: [] for writer in range(writers)}
    storages = [SqlRunsStorage(fresh_postgres) for _ in range(writers)]
    for storage in storages:
        warm(storage, 3)

    def write(writer: int) -> None:
        for batch in range(batches):
            items = [
                result_input(run, f"{writer}-{batch}-{n}", error="x" if n % 4 else None)
                for n in range(size)
            ]
            try:
                storages[writer].add_results(items, update_counts=True)
            except BaseException as exc:
                failures[writer].append(exc)
            else:
                acknowledged[writer].append(batch)
            time.sleep(0.01)

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(writers)]
    for thread in threads:
        thread.start()
    for _ in range(faults):
        time.sleep(0.1)
        drop_connections(fresh_postgres)
    for thread in threads:
        thread.join()
    for storage in storages:
        storage.close()

    assert any(failures.values()), "no fault met a writer: the test proved nothing"
    for writer in range(writers):
        assert all(isinstance(exc, DatabaseError) for exc in failures[writer]), failures[writer]
        assert len(failures[writer]) <= faults
    with SqlRunsStorage(fresh_postgres) as storage:
        stored = [result.item_id for result in storage.iter_results(run.id)]
        counted = storage.get_run_by_id(run.id)
    by_batch: dict[tuple[int, int], int] = {}
    for item in stored:
        writer, batch, _ = item.removeprefix("item-").split("-")
        by_batch[(int(writer), int(batch))] = by_batch.get((int(writer), int(batch)), 0) + 1
    assert set(by_batch.values()) <= {size}  # every stored batch is whole
    for writer, done in acknowledged.items():
        assert all((writer, batch) in by_batch for batch in done)
    assert counted is not None
    assert counted.failed_count + counted.succeeded_count == len(stored)
    assert counted.succeeded_count == len(stored) // size * (size // 4)
    assert sum(len(done) for done in acknowledged.values()) >= writers * batches - writers * faults


def test_storage_errors_are_the_only_errors_of_an_unreachable_server() -> None:
    storage = SqlRunsStorage("postgresql+psycopg://nobody@127.0.0.1:1/none")
    for call in (storage.init, lambda: storage.get_run_by_id("x")):
        with pytest.raises(StorageError):
            call()
    storage.close()
