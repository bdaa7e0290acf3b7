"""Migrations on both databases: up, down, up again; no drift; a fresh database to storage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from runstore import TABLE_SCHEMAS, ListRunResultsInput, SchemaOutOfDateError, SqlRunsStorage
from runstore.engine import create_storage_engine
from runstore.migrations import VERSION_TABLE, alembic_config, head_revision, migration_transaction
from runstore.tables import metadata
from runstore.testing.inputs import T0, result_input, run_input
from runstore.types import UTCDateTime

REPO = Path(__file__).resolve().parent.parent
ALEMBIC = [sys.executable, "-m", "alembic"]


def alembic_cli(url: str, *arguments: str) -> str:
    """Run the ``alembic`` command from the top of the repository, as a user would."""
    environment = {
        key: value for key, value in os.environ.items() if key != "RUNSTORE_DATABASE_URL"
    }
    completed = subprocess.run(
        [*ALEMBIC, "-x", f"url={url}", *arguments],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout + completed.stderr


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.slow  # the alembic command, run a process per step (CI's migration check does too)
def test_upgrade_downgrade_upgrade_with_the_alembic_command(empty_url: str) -> None:
    ours = set(TABLE_SCHEMAS)

    alembic_cli(empty_url, "upgrade", "head")
    assert ours | {VERSION_TABLE} <= table_names(empty_url)
    assert head_revision() in alembic_cli(empty_url, "current")
    alembic_cli(empty_url, "check")

    alembic_cli(empty_url, "downgrade", "base")
    assert not ours & table_names(empty_url)

    alembic_cli(empty_url, "upgrade", "head")
    alembic_cli(empty_url, "check")
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        storage.add_result(result_input(run))


def test_the_url_can_come_from_the_environment(sqlite_url: str) -> None:
    environment = {**os.environ, "RUNSTORE_DATABASE_URL": sqlite_url}
    subprocess.run([*ALEMBIC, "upgrade", "head"], cwd=REPO, env=environment, check=True)
    assert set(TABLE_SCHEMAS) <= table_names(sqlite_url)


def test_migrations_match_the_generated_tables(empty_url: str) -> None:
    """``alembic check``, in process: autogenerate finds nothing between head and models."""
    engine = create_storage_engine(empty_url)
    try:
        with SqlRunsStorage(engine) as storage:
            storage.init()
        with engine.begin() as connection:
            command.check(alembic_config(connection))

            # and it would notice: drop an index behind the migrations' back
            connection.execute(sa.text('DROP INDEX "ix_mastra_dataset_runs_createdAt_id"'))
            with pytest.raises(Exception, match="New upgrade operations detected"):
                command.check(alembic_config(connection))
    finally:
        engine.dispose()


def test_the_indexes_every_query_needs_exist(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        inspector = sa.inspect(storage.engine)
        run_indexes = {
            index["name"]: index["column_names"]
            for index in inspector.get_indexes("mastra_dataset_runs")
        }
        result_indexes = {
            index["name"]: index["column_names"]
            for index in inspector.get_indexes("mastra_dataset_run_results")
        }
        uniques = inspector.get_unique_constraints("mastra_dataset_run_results")
        foreign_keys = inspector.get_foreign_keys("mastra_dataset_run_results")
    assert run_indexes["ix_mastra_dataset_runs_datasetId_createdAt_id"] == [
        "datasetId",
        "createdAt",
        "id",
    ]
    assert result_indexes["ix_mastra_dataset_run_results_runId_startedAt_id"] == [
        "runId",
        "startedAt",
        "id",
    ]
    assert [unique["column_names"] for unique in uniques] == [["runId", "itemId", "repetition"]]
    assert foreign_keys[0]["referred_table"] == "mastra_dataset_runs"
    assert foreign_keys[0]["options"].get("ondelete") == "CASCADE"


def test_foreign_key_cascades_in_the_database(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        storage.add_result(result_input(run))
        with storage.engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM mastra_dataset_runs"))
        assert storage.list_results(ListRunResultsInput(run_id=run.id)).pagination.total == 0


def test_runstore_lives_beside_an_applications_own_alembic_history(empty_url: str) -> None:
    engine = sa.create_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('app_rev_42')"))
        connection.execute(sa.text("CREATE TABLE app_things (id INTEGER PRIMARY KEY)"))
    engine.dispose()

    with SqlRunsStorage(empty_url) as storage:
        storage.create_run(run_input())
        with storage.engine.begin() as connection:
            # autogenerate ignores the application's tables: no drift reported, none dropped
            command.check(alembic_config(connection))
    alembic_cli(empty_url, "downgrade", "base")

    engine = sa.create_engine(empty_url)
    with engine.connect() as connection:
        app_version = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        assert app_version.scalar_one() == "app_rev_42"
    engine.dispose()
    assert "app_things" in table_names(empty_url)


def test_a_fresh_database_goes_straight_to_working_storage(empty_url: str) -> None:
    storage = SqlRunsStorage(empty_url)
    storage.init()
    run = storage.create_run(run_input())
    result = storage.add_result(result_input(run))
    assert storage.get_result_by_id(result.id) == result
    storage.close()


def test_migrations_render_offline_sql(sqlite_url: str) -> None:
    output = alembic_cli(sqlite_url, "upgrade", "head", "--sql")
    assert "CREATE TABLE mastra_dataset_runs" in output
    assert VERSION_TABLE in output


def test_metadata_covers_only_runstores_tables() -> None:
    assert set(metadata.tables) == set(TABLE_SCHEMAS)


def test_a_schema_behind_head_is_refused_then_upgraded_without_losing_rows(
    empty_url: str,
) -> None:
    alembic_cli(empty_url, "upgrade", "0001_initial")
    engine = create_storage_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                'INSERT INTO mastra_dataset_runs (id, "datasetId", "datasetVersion", '
                '"targetType", "targetId", status, "totalItems", "succeededCount", '
                '"failedCount", "createdAt", "updatedAt") VALUES (:id, :d, :t, :tt, :ti, '
                ":s, 1, 0, 0, :t, :t)"
            ).bindparams(sa.bindparam("t", type_=UTCDateTime())),
            {"id": "old-run", "d": "d", "t": T0, "tt": "agent", "ti": "a", "s": "pending"},
        )
    engine.dispose()

    storage = SqlRunsStorage(empty_url)
    with pytest.raises(SchemaOutOfDateError, match="is at revision '0001_initial'") as caught:
        storage.get_run_by_id("old-run")
    assert head_revision() in str(caught.value)
    storage.init()
    old = storage.get_run_by_id("old-run")
    assert old is not None
    assert old.dataset_version == T0
    storage.close()


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = create_storage_engine(url)
    try:
        with migration_transaction(engine) as connection:
            (command.downgrade if down else command.upgrade)(alembic_config(connection), revision)
    finally:
        engine.dispose()


def test_scores_are_not_dropped_by_a_downgrade_while_any_is_stored(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        storage.add_result(result_input(run, 0, scores={"accuracy": 1.0}))
        storage.add_result(result_input(run, 1))
    with pytest.raises(RuntimeError, match="would delete the 1 stored scores"):
        _migrate(empty_url, "0002_run_filter_indexes", down=True)
    with SqlRunsStorage(empty_url) as storage:  # the refused downgrade changed nothing
        assert storage.list_scores(run.id)[0].value == 1.0
        with storage.engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM mastra_dataset_run_scores"))
    _migrate(empty_url, "0002_run_filter_indexes", down=True)
    _migrate(empty_url, "head")
    with SqlRunsStorage(empty_url) as storage:
        counted = storage.get_run_by_id(run.id)
        assert counted is not None
        assert counted.result_count == 2  # filled from the rows on the way up
        assert len(list(storage.iter_results(run.id))) == 2


def test_copying_the_results_table_keeps_their_scores(empty_url: str) -> None:
    """0004 copies the results table on SQLite; the scores that refer to its rows stay
    (with foreign keys on, dropping the original would have cascaded to them)."""
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        storage.add_result(result_input(run, 0, scores={"accuracy": 0.5}))
    _migrate(empty_url, "0003_scores_and_answers", down=True)
    _migrate(empty_url, "head")
    with SqlRunsStorage(empty_url) as storage:
        assert [score.value for score in storage.list_scores(run.id)] == [0.5]
        (result,) = storage.iter_results(run.id)
        assert (result.repetition, result.scores) == (0, {"accuracy": 0.5})


def test_repetitions_are_not_merged_by_a_downgrade(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, 0), result_input(run, 0, repetition=1)])
    with pytest.raises(RuntimeError, match="would lose the 1 results with a repetition"):
        _migrate(empty_url, "0003_scores_and_answers", down=True)
    with SqlRunsStorage(empty_url) as storage:
        assert len(list(storage.iter_results(run.id))) == 2
