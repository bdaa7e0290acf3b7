"""Migrations on both databases: up, down, up again; no drift; a fresh database to storage."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from runstore import TABLE_SCHEMAS
from runstore import ListRunResultsInput
from runstore import Run
from runstore import RunResult
from runstore import SchemaOutOfDateError
from runstore import SqlRunsStorage
from runstore import UpdateRunInput
from runstore.engine import create_storage_engine
from runstore.migrations import VERSION_TABLE
from runstore.migrations import alembic_config
from runstore.migrations import current_revision
from runstore.migrations import head_revision
from runstore.migrations import migration_transaction
from runstore.tables import metadata
from runstore.testing.inputs import T0
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
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


# -- 0005_provenance_and_cost ------------------------------------------------------------

BEFORE_PROVENANCE = "0004_repetitions"

# What 0005 holds that a downgrade would lose: kind, the run or result's id, its fields --
# falsy values included, since a stored 0 or {} is lost as surely as any other -- and,
# for runs, the update that clears them (a result is cleared by writing it over).
RUN_PROVENANCE: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("runs with a name", "named", {"name": "nightly"}, {"name": None}),
    ("runs with a description", "described", {"description": "prompt v2"}, {"description": None}),
    ("runs with tags", "tagged", {"tags": ["baseline", "gpu"]}, {"tags": []}),
    ("runs with metadata", "annotated", {"metadata": {"model": "m"}}, {"metadata": {}}),
]
RESULT_PROVENANCE: list[tuple[str, str, dict[str, Any]]] = [
    ("results with input tokens", "read", {"input_tokens": 0}),
    ("results with output tokens", "written", {"output_tokens": 120}),
    ("results with a cost", "free", {"cost": 0.0}),
    ("results with a cost", "priced", {"cost": 0.1}),
    ("results with a trace id", "traced", {"trace_id": "trace-1"}),
    ("results with metadata", "annotated", {"metadata": {}}),
]


def _revision(url: str) -> str | None:
    engine = create_storage_engine(url)
    try:
        with engine.connect() as connection:
            return current_revision(connection)
    finally:
        engine.dispose()


def _stored(url: str) -> tuple[list[Run], list[RunResult]]:
    with SqlRunsStorage(url) as storage:
        runs = list(storage.iter_runs())
        return runs, [result for run in runs for result in storage.iter_results(run.id)]


def _refused_downgrade(url: str) -> str:
    """Try to downgrade below 0005: the refusal's message, the database left at head."""
    with pytest.raises(RuntimeError, match="would lose what only this schema holds") as refused:
        _migrate(url, BEFORE_PROVENANCE, down=True)
    assert _revision(url) == head_revision()
    return str(refused.value)


def _clear_run(storage: SqlRunsStorage, run_id: str, cleared: dict[str, Any]) -> None:
    storage.update_run(UpdateRunInput(id=run_id, **cleared))


def _clear_result(storage: SqlRunsStorage, item: str) -> None:
    storage.add_results([result_input("plain", item)], on_conflict="replace")


def test_provenance_is_not_dropped_by_a_downgrade_while_any_is_stored(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        for _, run_id, fields, _ in RUN_PROVENANCE:
            storage.create_run(run_input(id=run_id, **fields))
        plain = storage.create_run(run_input(id="plain"))
        storage.add_results(
            [result_input(plain, item, **fields) for _, item, fields in RESULT_PROVENANCE]
            + [result_input(plain, "bare")]
        )
    stored = _stored(empty_url)

    message = _refused_downgrade(empty_url)
    kinds = Counter(
        [kind for kind, *_ in RUN_PROVENANCE] + [kind for kind, *_ in RESULT_PROVENANCE]
    )
    assert kinds["results with a cost"] == 2
    for kind, count in kinds.items():
        assert f"{count} {kind}" in message
    assert _stored(empty_url) == stored  # refused: every row, every value as it was

    # Cleared one at a time through the API, each kind stops being named once none is
    # left; after the last, the downgrade goes, and back at head every row is there.
    steps: list[tuple[str, Callable[[SqlRunsStorage], None]]] = [
        (kind, functools.partial(_clear_run, run_id=run_id, cleared=cleared))
        for kind, run_id, _, cleared in RUN_PROVENANCE
    ]
    steps += [
        (kind, functools.partial(_clear_result, item=item)) for kind, item, _ in RESULT_PROVENANCE
    ]
    for step, (kind, clear) in enumerate(steps):
        with SqlRunsStorage(empty_url) as storage:
            clear(storage)
        left = Counter(later for later, _ in steps[step + 1 :])
        if left:
            message = _refused_downgrade(empty_url)
            named = {stored for stored in kinds if f" {stored}" in message}
            assert named == set(left), f"after clearing {kind}: {message}"
            assert all(f"{count} {later}" in message for later, count in left.items())
    cleared = _stored(empty_url)
    _migrate(empty_url, BEFORE_PROVENANCE, down=True)
    assert _revision(empty_url) == BEFORE_PROVENANCE
    _migrate(empty_url, "head")
    assert _stored(empty_url) == cleared
    assert len(cleared[0]) == len(RUN_PROVENANCE) + 1
    assert len(cleared[1]) == len(RESULT_PROVENANCE) + 1


def test_without_provenance_a_downgrade_goes_back_and_up_again(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, 0, scores={"accuracy": 0.5}), result_input(run, 1)])
        storage.add_results([result_input(run, 0, repetition=1)])
    stored = _stored(empty_url)
    for _ in range(2):
        _migrate(empty_url, BEFORE_PROVENANCE, down=True)
        assert _revision(empty_url) == BEFORE_PROVENANCE
        assert "mastra_dataset_run_tags" not in table_names(empty_url)
        _migrate(empty_url, "head")
        assert _stored(empty_url) == stored
    with SqlRunsStorage(empty_url) as storage:  # and what 0005 holds is written again
        storage.update_run(UpdateRunInput(id=run.id, name="again", tags=["t"]))
        storage.add_results([result_input(run, 2, cost=0.25, trace_id="trace")])
        assert [found.id for found in storage.iter_runs(tags=["t"])] == [run.id]
        (priced,) = [result for result in storage.iter_results(run.id) if result.cost]
        assert (priced.cost, priced.trace_id) == (0.25, "trace")


def test_upgrading_to_provenance_rewrites_no_table(
    empty_url: str,
    statements_seen: Callable[[sa.Engine], AbstractContextManager[list[str]]],
) -> None:
    """0005 adds its columns in place, so it takes as long on millions of results as on
    none: on Postgres the runs and results tables keep their files (``relfilenode``); on
    SQLite the upgrade is ``ALTER TABLE ... ADD COLUMN``, each table keeps its root page
    and every row its rowid."""
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, n) for n in range(50)])
    _migrate(empty_url, BEFORE_PROVENANCE, down=True)
    engine = create_storage_engine(empty_url)
    postgres = engine.dialect.name == "postgresql"
    tables = "('mastra_dataset_runs', 'mastra_dataset_run_results')"
    if postgres:
        files = f"SELECT relname, relfilenode FROM pg_class WHERE relname IN {tables}"
        rows = "SELECT ctid, id FROM mastra_dataset_run_results ORDER BY id"
    else:
        files = f"SELECT name, rootpage FROM sqlite_master WHERE name IN {tables}"
        rows = "SELECT rowid, id FROM mastra_dataset_run_results ORDER BY id"
    try:
        with engine.connect() as connection:
            files_before = sorted(connection.exec_driver_sql(files).all())
            rows_before = connection.exec_driver_sql(rows).all()
        with statements_seen(engine) as seen, migration_transaction(engine) as connection:
            command.upgrade(alembic_config(connection), "0005_provenance_and_cost")
        with engine.connect() as connection:
            assert sorted(connection.exec_driver_sql(files).all()) == files_before
            assert connection.exec_driver_sql(rows).all() == rows_before
    finally:
        engine.dispose()
    assert len(files_before) == 2
    assert len(rows_before) == 50
    # The results table is only ever altered -- no copy (batch mode's _alembic_tmp_
    # table), no rename, no rows moved.
    touching = [sql for sql in seen if "mastra_dataset_run_results" in sql]
    added = ['"inputTokens"', '"outputTokens"', "cost", '"traceId"', "metadata"]
    assert [sql.split(" ADD COLUMN ")[-1].split()[0] for sql in touching] == added
    assert all(
        sql.startswith("ALTER TABLE mastra_dataset_run_results ADD COLUMN") for sql in touching
    )
    assert not [sql for sql in seen if "_alembic_tmp_" in sql or "RENAME" in sql.upper()]
