"""Server faults the SQL adapters meet, on both runners (the blocking one, and the asyncio
one driven through :class:`~runstore.testing.bridge.BlockingRunsStorage`): a connection the
server dropped is replaced, a warm pool the server drops fails at most one call and reads
survive it, concurrent writers lose nothing acknowledged and leave no batch half-written,
an unreachable server raises storage errors only, and database failures are wrapped with
their cause chained. (Cancelling an asyncio call: ``tests/test_async.py``.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from typing import cast

import pytest
import sqlalchemy as sa

from runstore import AsyncSqlRunsStorage
from runstore import DatabaseError
from runstore import ListRunResultsInput
from runstore import SqlRunsStorage
from runstore import StorageError
from runstore.testing.bridge import BlockingRunsStorage
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

Storage = SqlRunsStorage | BlockingRunsStorage
Opener = Callable[..., Storage]


def _blocking(url: str, **options: Any) -> Storage:
    return SqlRunsStorage(url, **options)


def _asyncio(url: str, **options: Any) -> Storage:
    return BlockingRunsStorage(AsyncSqlRunsStorage(url, **options))


@pytest.fixture(params=["blocking", "asyncio"])
def open_storage(request: pytest.FixtureRequest) -> Opener:
    """Opens a storage on a URL with the runner of the parameter."""
    return cast("Opener", {"blocking": _blocking, "asyncio": _asyncio}[request.param])


def on_connections(storage: Storage, sql: str, connections: int = 1) -> list[Any]:
    """``sql``'s one value on each of ``connections`` connections held at once, out of the
    storage's own pool, handed back after (so the pool keeps them, just used)."""
    if isinstance(storage, SqlRunsStorage):
        held = [storage.engine.connect() for _ in range(connections)]
        try:
            return [connection.exec_driver_sql(sql).scalar_one() for connection in held]
        finally:
            for connection in held:
                connection.close()
    engine = cast("AsyncSqlRunsStorage", storage.storage).engine

    async def on_held() -> list[Any]:
        held = [await engine.connect() for _ in range(connections)]
        try:
            return [(await connection.exec_driver_sql(sql)).scalar_one() for connection in held]
        finally:
            for connection in held:
                await connection.close()

    return storage.on_loop(on_held())


def warm(storage: Storage, connections: int) -> None:
    """Leave ``connections`` connections in the storage's pool, just used."""
    on_connections(storage, "SELECT 1", connections)


def driver_error(storage: Storage) -> type[Exception]:
    """The base class of the errors of the storage's database driver."""
    if isinstance(storage, SqlRunsStorage):
        dialect = storage.engine.dialect
    else:
        dialect = cast("AsyncSqlRunsStorage", storage.storage).engine.dialect
    return cast("type[Exception]", dialect.loaded_dbapi.Error)


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


@contextmanager
def opened(storage: Storage) -> Iterator[Storage]:
    """``storage``, closed after."""
    try:
        yield storage
    finally:
        storage.close()


@pytest.fixture
def fresh_postgres(new_postgres_url: Callable[[], str]) -> str:
    url = new_postgres_url()
    with SqlRunsStorage(url):
        pass
    return url


# -- dropped connections ---------------------------------------------------------------


@pytest.mark.parametrize("options", [{"ping_after_idle": 0.0}, {"pool_pre_ping": True}])
def test_a_connection_the_server_dropped_is_replaced(
    postgres_url: str, options: dict[str, Any], open_storage: Opener
) -> None:
    storage = open_storage(postgres_url, pool_size=1, max_overflow=0, **options)
    with opened(storage):
        run = storage.create_run(run_input())
        (backend_pid,) = on_connections(storage, "SELECT pg_backend_pid()")
        killer = sa.create_engine(postgres_url)
        with killer.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid})
        killer.dispose()
        assert storage.get_run_by_id(run.id) == run


def test_a_warm_pool_fails_at_most_once_after_the_server_drops_it(
    fresh_postgres: str, open_storage: Opener
) -> None:
    with opened(open_storage(fresh_postgres)) as storage:
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


def test_reads_survive_the_server_dropping_a_warm_pool(
    fresh_postgres: str, open_storage: Opener
) -> None:
    with opened(open_storage(fresh_postgres)) as storage:
        run = storage.create_run(run_input())
        warm(storage, 5)
        assert drop_connections(fresh_postgres) >= 5
        for _ in range(8):  # each read that meets a dead connection is retried once
            assert storage.get_run_by_id(run.id) == run
            assert storage.list_results(ListRunResultsInput(run_id=run.id)).results == ()


def test_writers_lose_nothing_acknowledged_when_the_server_drops_them(
    fresh_postgres: str, open_storage: Opener
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
    storages = [open_storage(fresh_postgres) for _ in range(writers)]
    for writer_storage in storages:
        warm(writer_storage, 3)

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
    for writer_storage in storages:
        writer_storage.close()

    assert any(failures.values()), "no fault met a writer: the test proved nothing"
    for writer in range(writers):
        assert all(isinstance(exc, DatabaseError) for exc in failures[writer]), failures[writer]
        assert len(failures[writer]) <= faults
    with SqlRunsStorage(fresh_postgres) as storage:
        stored = [result.item_id for result in storage.iter_results(run.id)]
        counted = storage.get_run_by_id(run.id)
    by_batch: dict[tuple[int, int], int] = {}
    for item in stored:
        writer_id, batch_id, _ = item.removeprefix("item-").split("-")
        by_batch[(int(writer_id), int(batch_id))] = (
            by_batch.get((int(writer_id), int(batch_id)), 0) + 1
        )
    assert set(by_batch.values()) <= {size}  # every stored batch is whole
    for writer, done in acknowledged.items():
        assert all((writer, batch) in by_batch for batch in done)
    assert counted is not None
    assert counted.failed_count + counted.succeeded_count == len(stored)
    assert counted.succeeded_count == len(stored) // size * (size // 4)
    assert sum(len(done) for done in acknowledged.values()) >= writers * batches - writers * faults


# -- an unreachable server, a failing database -----------------------------------------


def test_an_unreachable_server_is_a_storage_error(open_storage: Opener) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    with opened(open_storage(url, pool_pre_ping=False)) as storage:
        with pytest.raises(DatabaseError) as caught:
            storage.init()
        assert isinstance(caught.value, StorageError)
        assert caught.value.__cause__ is not None


def test_storage_errors_are_the_only_errors_of_an_unreachable_server(
    open_storage: Opener,
) -> None:
    with opened(open_storage("postgresql+psycopg://nobody@127.0.0.1:1/none")) as storage:
        calls: tuple[Callable[[], object], ...] = (
            storage.init,
            lambda: storage.get_run_by_id("x"),
        )
        for call in calls:
            with pytest.raises(StorageError):
                call()


def test_database_failures_are_wrapped_with_the_cause_chained(
    empty_url: str, open_storage: Opener
) -> None:
    storage = open_storage(empty_url)
    storage.init()
    storage.get_result_by_id("x")  # the schema is checked once, at first use
    dropper = sa.create_engine(empty_url, poolclass=sa.pool.NullPool)
    with dropper.begin() as connection:
        connection.execute(sa.text("DROP TABLE mastra_dataset_run_scores"))
        connection.execute(sa.text("DROP TABLE mastra_dataset_run_results"))
    dropper.dispose()
    errors_of_the_driver = driver_error(storage)
    for call in (
        lambda: storage.get_result_by_id("x"),
        lambda: storage.list_results(ListRunResultsInput(run_id="r")),
        lambda: storage.delete_results_by_run_id("r"),
    ):
        with pytest.raises(DatabaseError) as caught:
            call()
        assert isinstance(caught.value.__cause__, sa.exc.DBAPIError)
        assert isinstance(caught.value.__cause__.orig, errors_of_the_driver)
        assert "mastra_dataset_run_" in str(caught.value)
    storage.close()
