"""A storage meeting its database's schema, at first use and in ``init()``: a database
without the schema, a schema behind head or from a newer runstore, ``init()`` run again
or from several processes at once, and a schema changed by hand -- a column renamed, a
table dropped, tables with no record of their version -- each named, never misread."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from runstore import DatabaseError
from runstore import ListRunResultsInput
from runstore import SchemaOutOfDateError
from runstore import SqlRunsStorage
from runstore import UpdateRunInput
from runstore.migrations import VERSION_TABLE
from runstore.migrations import head_revision
from runstore.testing.inputs import run_input

# -- the schema's version --------------------------------------------------------------


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


# -- init() ----------------------------------------------------------------------------


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


@pytest.mark.heavy
def test_init_from_several_processes_at_once(empty_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        ids = pool.starmap(_init_and_write, [(empty_url, worker) for worker in range(4)])
    with SqlRunsStorage(empty_url) as storage:
        assert all(storage.get_run_by_id(run_id) is not None for run_id in ids)


# -- a schema changed by hand ----------------------------------------------------------


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


def test_a_table_dropped_behind_runstores_back_is_named_at_first_use(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage, storage.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE mastra_dataset_run_scores"))
        connection.execute(sa.text("DROP TABLE mastra_dataset_run_results"))
    storage = SqlRunsStorage(empty_url)
    with pytest.raises(SchemaOutOfDateError, match="mastra_dataset_run_results is missing"):
        storage.get_run_by_id("x")
    storage.close()


def test_tables_without_a_version_record_say_how_to_recover(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage, storage.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE runstore_alembic_version"))
    storage = SqlRunsStorage(empty_url)
    with pytest.raises(SchemaOutOfDateError, match=r"(?s)no record of their schema.*stamp head"):
        storage.init()
    storage.close()


def test_tables_in_another_schema_are_not_taken_for_runstores(postgres_url: str) -> None:
    """The session's database has runstore's tables in ``public``; a storage asked for a
    schema of its own finds none there, and says so, whatever the ``search_path``."""
    storage = SqlRunsStorage(postgres_url, schema="nowhere_yet")
    try:
        with pytest.raises(SchemaOutOfDateError, match=r"nowhere_yet.*has no runstore schema"):
            storage.list_runs()
    finally:
        storage.close()


def test_a_whole_upgrade_holds_the_transaction_scoped_migration_lock(
    new_postgres_url: Callable[[], str],
) -> None:
    """init() takes pg_advisory_xact_lock first and commits once, after the last migration:
    the lock (which a transaction's end releases, so no session keeps it) covers it all."""
    storage = SqlRunsStorage(new_postgres_url())
    seen: list[str] = []
    sa.event.listen(
        storage.engine, "before_cursor_execute", lambda c, k, statement, *_: seen.append(statement)
    )
    sa.event.listen(storage.engine, "commit", lambda connection: seen.append("COMMIT"))
    try:
        storage.init()
    finally:
        storage.close()
    begin = seen.index("BEGIN ISOLATION LEVEL READ COMMITTED")
    assert "pg_advisory_xact_lock" in seen[begin + 1]
    assert "pg_advisory_lock(" not in " ".join(seen)
    assert seen.count("COMMIT") == 1
    migrated = [s for s in seen if s.lstrip().upper().startswith(("CREATE", "ALTER", "INSERT"))]
    assert migrated
    assert seen.index(migrated[-1]) < seen.index("COMMIT")
    assert all(begin < seen.index(statement) for statement in migrated)
