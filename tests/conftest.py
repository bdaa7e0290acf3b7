"""Fixtures: real databases only -- SQLite files and throwaway Postgres databases.

The contract suite (``test_contract.py``) runs :mod:`runstore.testing` against every
adapter. Postgres comes from ``RUNSTORE_TEST_POSTGRES_URL`` (default: the local server). When it
cannot be reached the Postgres tests skip with the reason -- except under ``CI=true``,
where they fail. Each test session works in a database of its own, dropped at the end.
Tests of the SQL adapter share a storage on an empty database of each backend
(``storage``) and a way to see the statements it sends (``statements_seen``).

Tests of scale-out infrastructure get a throwaway primary with a streaming replica
(``cluster``) and a PgBouncer in transaction mode in front of it (``pooler``), from
:mod:`runstore.testing.servers`; without PostgreSQL's server programs or PgBouncer they
skip with the reason -- except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import AbstractContextManager
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from runstore import SqlRunsStorage
from runstore.testing.servers import Cluster
from runstore.testing.servers import Pooler
from runstore.testing.servers import missing_programs
from runstore.testing.servers import pgbouncer
from runstore.testing.servers import postgres_cluster

POSTGRES_URL = os.environ.get(
    "RUNSTORE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


_POSTGRES_FIXTURES = frozenset(
    {"postgres_server", "new_postgres_url", "postgres_url", "cluster", "pooler"}
)


_HEAVY_MODULES = frozenset({"test_ui_browser.py", "test_concurrency.py", "test_async.py"})
"""Modules whose tests start a browser, several processes or hundreds of tasks."""
_HEAVY_CLASSES = frozenset({"TestAsyncSqliteFile", "TestSqliteOnePass"})
"""The contract on the asyncio SQLite adapter (the asyncio runner's paths run again on
Postgres, and the SQLite statements' on the blocking adapter), and the statistics'
contract again on SQLite's one-pass comparisons."""


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects by the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``postgres`` every test that needs a Postgres server -- by a fixture that makes
    one, or a parameter that picks it -- so that ``-m "not postgres"`` leaves them all out;
    and ``heavy`` the tests the quick loop leaves out (see :data:`_HEAVY_MODULES`,
    :data:`_HEAVY_CLASSES`, and the tests marked by hand)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        picked = callspec is not None and "postgres" in callspec.params.values()
        if picked or fixtures & _POSTGRES_FIXTURES:
            item.add_marker(pytest.mark.postgres)
        owner = getattr(item, "cls", None)
        if item.path.name in _HEAVY_MODULES or (
            owner is not None and owner.__name__ in _HEAVY_CLASSES
        ):
            item.add_marker(pytest.mark.heavy)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"Postgres is required in CI: {reason}")
    pytest.skip(f"Postgres unavailable ({reason}); set RUNSTORE_TEST_POSTGRES_URL")


class PostgresServer:
    """Makes throwaway databases on the test server."""

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(url)
        self._admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        self._made: list[str] = []

    def check(self) -> None:
        with self._admin.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    def new_database(self) -> str:
        name = f"runstore_test_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self._made.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self._admin.connect() as connection:
            for name in self._made:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer(POSTGRES_URL)
    try:
        server.check()
    except Exception as exc:  # any failure to connect means: no server to test against
        _unavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    yield server
    server.drop_all()


@pytest.fixture
def new_postgres_url(postgres_server: PostgresServer) -> Callable[[], str]:
    """Make an empty Postgres database and return its URL."""
    return postgres_server.new_database


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """A database for this session, migrated to head once."""
    url = postgres_server.new_database()
    with SqlRunsStorage(url) as storage:
        storage.init()
    return url


def _servers_needed(*, pooler: bool) -> None:
    missing = missing_programs(pooler=pooler)
    if missing:
        reason = f"not installed: {', '.join(missing)}"
        if IN_CI:
            pytest.fail(f"PostgreSQL's server programs and PgBouncer are required in CI: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A throwaway Postgres primary and its streaming hot-standby replica."""
    _servers_needed(pooler=False)
    with postgres_cluster() as made:
        yield made


@pytest.fixture(scope="session")
def pooler(cluster: Cluster) -> Iterator[Pooler]:
    """A PgBouncer in transaction mode, stock settings, in front of ``cluster``'s primary."""
    _servers_needed(pooler=True)
    with pgbouncer(cluster.primary_url) as made:
        yield made


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


@pytest.fixture(scope="session")
def _migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("migrated") / "runs.db"
    with SqlRunsStorage(f"sqlite:///{path}"):  # closed: its write-ahead log checkpointed
        pass
    return path


@pytest.fixture
def migrated_sqlite_url(_migrated_sqlite_file: Path, tmp_path: Path) -> str:
    """A SQLite file of its own with runstore's schema at head: a copy of one migrated once
    per session (migrating a file from nothing takes tens of milliseconds)."""
    path = tmp_path / "migrated.db"
    shutil.copyfile(_migrated_sqlite_file, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite_file", "postgres"])
def empty_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database of each SQL backend."""
    if request.param == "sqlite_file":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("new_postgres_url")())


@pytest.fixture
def storage(empty_url: str) -> Iterator[SqlRunsStorage]:
    """A storage, its schema at head, on an empty database of each SQL backend."""
    with SqlRunsStorage(empty_url) as storage:
        yield storage


@contextmanager
def _statements_seen(engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL of every statement sent through the engine meanwhile."""
    seen: list[str] = []

    def listen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)


@pytest.fixture
def statements_seen() -> Callable[[sa.Engine], AbstractContextManager[list[str]]]:
    """``with statements_seen(engine) as seen:`` -- the SQL of every statement sent
    through the engine meanwhile."""
    return _statements_seen
