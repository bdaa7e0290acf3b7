"""A Postgres schema of runstore's own: tables, indexes and version table in it, apart from
every other schema of the database; refused clearly where it cannot apply."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from runstore import TABLE_SCHEMAS
from runstore import InvalidInputError
from runstore import ListRunResultsInput
from runstore import SchemaOutOfDateError
from runstore import SqlRunsStorage
from runstore.migrations import VERSION_TABLE
from runstore.migrations import head_revision
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

REPO = Path(__file__).resolve().parent.parent


def tables_by_schema(url: str) -> dict[str, set[str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT schemaname, tablename FROM pg_tables "
                    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                )
            ).all()
    finally:
        engine.dispose()
    found: dict[str, set[str]] = {}
    for schema, table in rows:
        found.setdefault(schema, set()).add(table)
    return found


def index_schemas(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return set(
                connection.execute(
                    sa.text(
                        "SELECT DISTINCT schemaname FROM pg_indexes WHERE indexname LIKE 'ix_%'"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()


def test_two_schemas_of_one_database_are_fully_apart(new_postgres_url: Callable[[], str]) -> None:
    url = new_postgres_url()
    evals, other = SqlRunsStorage(url, schema="evals"), SqlRunsStorage(url, schema="other_team")
    try:
        evals.init()
        other.init()
        ours = set(TABLE_SCHEMAS) | {VERSION_TABLE}
        found = tables_by_schema(url)
        assert found["evals"] == ours
        assert found["other_team"] == ours
        assert "public" not in found  # nothing landed outside the two schemas
        assert index_schemas(url) == {"evals", "other_team"}

        run = evals.create_run(run_input(id="same-id"))
        evals.add_results([result_input(run, n) for n in range(3)], update_counts=True)
        # The same id is free in the other schema: nothing of one is seen from the other.
        assert other.get_run_by_id("same-id") is None
        assert other.list_runs().pagination.total == 0
        twin = other.create_run(run_input(id="same-id", total_items=9))
        assert twin.total_items == 9
        assert evals.get_run_by_id("same-id").total_items == run.total_items  # type: ignore[union-attr]
        assert evals.list_results(ListRunResultsInput(run_id="same-id")).pagination.total == 3
        assert other.list_results(ListRunResultsInput(run_id="same-id")).pagination.total == 0
        assert other.prune_runs(older_than=twin.created_at.replace(year=3000)) == 1
        assert evals.get_run_by_id("same-id") is not None
    finally:
        evals.close()
        other.close()


def test_a_schema_keeps_its_own_revision(new_postgres_url: Callable[[], str]) -> None:
    url = new_postgres_url()
    public = SqlRunsStorage(url)
    evals = SqlRunsStorage(url, schema="evals")
    try:
        public.init()
        # The public schema at head says nothing about the evals schema, which is empty.
        with pytest.raises(SchemaOutOfDateError, match="has no runstore schema"):
            evals.get_run_by_id("x")
        evals.init()
        assert evals.get_run_by_id("x") is None
        assert repr(evals).endswith("schema='evals')")
    finally:
        public.close()
        evals.close()


def alembic(url: str, schema: str, *arguments: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", "-x", f"schema={schema}", *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout + completed.stderr


def test_alembic_takes_the_schema(new_postgres_url: Callable[[], str]) -> None:
    url = new_postgres_url()
    alembic(url, "evals", "upgrade", "head")
    assert tables_by_schema(url) == {"evals": set(TABLE_SCHEMAS) | {VERSION_TABLE}}
    assert head_revision() in alembic(url, "evals", "current")
    alembic(url, "evals", "check")

    storage = SqlRunsStorage(url, schema="evals")
    try:
        run = storage.create_run(run_input())  # no init(): the command made the schema
        storage.add_result(result_input(run, 0))
    finally:
        storage.close()
    alembic(url, "evals", "downgrade", "0003")
    alembic(url, "evals", "upgrade", "head")
    storage = SqlRunsStorage(url, schema="evals")
    try:
        assert storage.list_results(ListRunResultsInput(run_id=run.id)).pagination.total == 1
    finally:
        storage.close()
    alembic(url, "evals", "downgrade", "base")
    assert tables_by_schema(url)["evals"] == {VERSION_TABLE}  # Alembic keeps its table


def test_offline_sql_for_a_schema_sets_the_search_path() -> None:
    sql = alembic("postgresql+psycopg://nobody@nowhere/none", "evals", "upgrade", "head", "--sql")
    assert "CREATE SCHEMA IF NOT EXISTS evals" in sql
    assert sql.index("SET LOCAL search_path TO evals") < sql.index("CREATE TABLE")


def test_the_callers_connect_options_are_kept_and_no_session_state_added(
    new_postgres_url: Callable[[], str],
) -> None:
    """runstore sets nothing in a session -- a transaction pooler would hand it to another
    client: the caller's own connect options stay, the server's defaults the rest."""
    url = new_postgres_url()
    storage = SqlRunsStorage(
        url, schema="evals", connect_args={"options": "-c application_name=nightly-evals"}
    )
    plain = sa.create_engine(url)
    names = ("search_path", "application_name", "TimeZone")
    try:
        storage.init()
        with storage.engine.connect() as connection:
            shown = {name: connection.exec_driver_sql(f"SHOW {name}").scalar() for name in names}
        with plain.connect() as connection:
            default = {name: connection.exec_driver_sql(f"SHOW {name}").scalar() for name in names}
        assert shown == {**default, "application_name": "nightly-evals"}
        assert tables_by_schema(url)["evals"] == set(TABLE_SCHEMAS) | {VERSION_TABLE}
    finally:
        storage.close()
        plain.dispose()


@pytest.mark.parametrize(
    "schema", ["", "Evals", "1evals", "evals; DROP TABLE x", "pg_evals", "e" * 64, "a-b"]
)
def test_a_schema_name_runstore_cannot_use_plainly_is_refused(
    schema: str, postgres_url: str
) -> None:
    with pytest.raises(InvalidInputError, match="not a schema name"):
        SqlRunsStorage(postgres_url, schema=schema)


def test_sqlite_has_no_schemas(sqlite_url: str) -> None:
    with pytest.raises(InvalidInputError, match="Postgres setting"):
        SqlRunsStorage(sqlite_url, schema="evals")
    with pytest.raises(InvalidInputError, match="Postgres setting"):
        SqlRunsStorage("sqlite://", schema="evals")


def test_a_schema_with_an_engine_of_ones_own_is_named_in_every_statement(
    new_postgres_url: Callable[[], str],
) -> None:
    """schema= is no engine setting: runstore's statements name it, on the caller's engine
    too, which is left as it was (and not disposed)."""
    url = new_postgres_url()
    engine = sa.create_engine(url)
    try:
        with SqlRunsStorage(engine, schema="evals") as storage:
            run = storage.create_run(run_input())
            assert storage.get_run_by_id(run.id) == run
        assert tables_by_schema(url) == {"evals": set(TABLE_SCHEMAS) | {VERSION_TABLE}}
        with engine.connect() as connection:  # the caller's engine still searches public
            assert connection.exec_driver_sql("SELECT current_schema()").scalar() == "public"
    finally:
        engine.dispose()
