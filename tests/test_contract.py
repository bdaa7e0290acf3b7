"""runstore's own adapters run the whole contract suite of :mod:`runstore.testing`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runstore import AsyncInMemoryRunsStorage
from runstore import AsyncSqlRunsStorage
from runstore import InMemoryRunsStorage
from runstore import RunsStorage
from runstore import SqlRunsStorage
from runstore.testing import RunsStorageContract
from runstore.testing import StorageFactory
from runstore.testing.bridge import BlockingRunsStorage


def sql_factory(url: str) -> StorageFactory:
    """Storages on one database, migrated, each emptied when made."""

    def make(**options: object) -> RunsStorage:
        storage = SqlRunsStorage(url, **options)  # type: ignore[arg-type]
        storage.init()
        storage.dangerously_clear_all()
        return storage

    return make


def async_sql_factory(url: str) -> StorageFactory:
    """The asyncio adapter behind the blocking API, on one database, emptied when made."""

    def make(**options: object) -> RunsStorage:
        storage = BlockingRunsStorage(AsyncSqlRunsStorage(url, **options))  # type: ignore[arg-type]
        storage.init()
        storage.dangerously_clear_all()
        return storage

    return make


class TestInMemory(RunsStorageContract):
    @pytest.fixture
    def storage_factory(self) -> StorageFactory:
        return lambda **options: InMemoryRunsStorage(**options)  # type: ignore[arg-type]


class TestSqliteFile(RunsStorageContract):
    @pytest.fixture
    def storage_factory(self, migrated_sqlite_url: str) -> StorageFactory:
        return sql_factory(migrated_sqlite_url)


@pytest.mark.full_matrix  # the SQLite file's operations, on one in-memory connection
class TestSqliteMemory(RunsStorageContract):
    @pytest.fixture
    def storage_factory(self) -> StorageFactory:
        return sql_factory("sqlite://")


@pytest.mark.postgres
class TestPostgres(RunsStorageContract):
    @pytest.fixture
    def storage_factory(self, postgres_url: str) -> StorageFactory:
        return sql_factory(postgres_url)


@pytest.mark.full_matrix  # the in-memory adapter's calls, awaited: memory and the bridge cover it
class TestAsyncInMemory(RunsStorageContract):
    @pytest.fixture
    def storage_factory(self) -> StorageFactory:
        return lambda **options: BlockingRunsStorage(AsyncInMemoryRunsStorage(**options))  # type: ignore[arg-type]


class TestAsyncSqliteFile(RunsStorageContract):
    @pytest.fixture
    def storage_factory(self, migrated_sqlite_url: str) -> StorageFactory:
        return async_sql_factory(migrated_sqlite_url)


@pytest.mark.full_matrix  # the async SQLite file's path, on one in-memory connection
class TestAsyncSqliteMemory(RunsStorageContract):
    @pytest.fixture
    def storage_factory(self) -> StorageFactory:
        return async_sql_factory("sqlite://")


@pytest.mark.postgres
class TestAsyncPostgres(RunsStorageContract):
    @pytest.fixture
    def storage_factory(self, postgres_url: str) -> StorageFactory:
        return async_sql_factory(postgres_url)


def test_every_adapter_class_runs_every_contract_test() -> None:
    tests: Callable[[type], set[str]] = lambda cls: {n for n in dir(cls) if n.startswith("test_")}  # noqa: E731
    expected = tests(RunsStorageContract)
    assert len(expected) > 80
    adapters = (TestInMemory, TestSqliteFile, TestSqliteMemory, TestPostgres)
    adapters += (TestAsyncInMemory, TestAsyncSqliteFile, TestAsyncSqliteMemory, TestAsyncPostgres)
    for adapter in adapters:
        assert tests(adapter) == expected
