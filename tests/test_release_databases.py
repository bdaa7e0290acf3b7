"""Databases written by earlier releases upgrade to head, and back, keeping every row.

Each release leaves a small real database in ``tests/fixtures`` (written by
``write_release_database.py`` with that release installed). On SQLite a copy of the file
is upgraded; on Postgres the same rows are loaded into a database at the release's
revision first. Every value must read back the same after each step.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from runstore import Run, RunResult, SqlRunsStorage
from runstore.engine import create_storage_engine
from runstore.migrations import (
    alembic_config,
    current_revision,
    head_revision,
    migration_transaction,
)

FIXTURES = Path(__file__).parent / "fixtures"
RELEASES = {"runstore-0.1.0.db": "0002_run_filter_indexes"}
TABLES = ("mastra_dataset_runs", "mastra_dataset_run_results")


def everything(url: str) -> tuple[list[Run], list[RunResult]]:
    """Every run and result, read by this version of runstore."""
    with SqlRunsStorage(url) as storage:
        runs = list(storage.iter_runs(batch_size=7))
        results = [result for run in runs for result in storage.iter_results(run.id)]
    return runs, results


def raw_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """The release's columns of every row, as the database holds them."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: [
                    dict(row._mapping)
                    for row in connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))
                ]
                for table in TABLES
            }
    finally:
        engine.dispose()


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = create_storage_engine(url)
    try:
        with migration_transaction(engine) as connection:
            config = alembic_config(connection)
            (command.downgrade if down else command.upgrade)(config, revision)
        with engine.connect() as connection:
            assert current_revision(connection) == revision
    finally:
        engine.dispose()


def load_into_postgres(source: str, target: str, revision: str) -> None:
    """Copy the release database's rows into an empty Postgres at the same revision."""
    migrate(target, revision)
    rows = raw_rows(source)
    engine = sa.create_engine(target)
    try:
        with engine.begin() as connection:
            metadata = sa.MetaData()
            for name in TABLES:
                table = sa.Table(name, metadata, autoload_with=connection)
                values = {
                    column.name: sa.cast(sa.bindparam(column.name), column.type)
                    for column in table.columns
                }
                connection.execute(sa.insert(table).values(values), rows[name])
    finally:
        engine.dispose()


@pytest.mark.parametrize(("fixture", "revision"), sorted(RELEASES.items()))
def test_a_release_database_upgrades_and_downgrades_keeping_every_row(
    tmp_path: Path, new_postgres_url: Any, fixture: str, revision: str
) -> None:
    copy = tmp_path / fixture
    shutil.copyfile(FIXTURES / fixture, copy)
    sqlite_url = f"sqlite:///{copy}"
    release_rows = raw_rows(sqlite_url)
    assert len(release_rows["mastra_dataset_runs"]) == 40
    assert len(release_rows["mastra_dataset_run_results"]) == 400

    postgres_url = new_postgres_url()
    load_into_postgres(sqlite_url, postgres_url, revision)

    expected: tuple[list[Run], list[RunResult]] | None = None
    for url in (sqlite_url, postgres_url):
        for step in range(2):  # up to head, back to the release, and up again
            migrate(url, head_revision())
            read = everything(url)
            expected = expected or read
            assert read == expected, f"{url}: values changed on upgrade {step}"
            migrate(url, revision, down=True)
        migrate(url, head_revision())
    upgraded = raw_rows(sqlite_url)
    for table, rows in release_rows.items():  # the release's columns, byte for byte
        assert [{key: row[key] for key in rows[0]} for row in upgraded[table]] == rows
    assert expected is not None
    runs, results = expected
    assert len(runs) == 40
    assert len(results) == 400
    assert sum(result.output is None for result in results) > 0
    assert any(result.input == 2**70 for result in results)
