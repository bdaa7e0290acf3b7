"""Databases written by earlier releases upgrade to head, and back, keeping every row.

Each release leaves a small real database in ``tests/fixtures`` (written by
``write_release_database.py`` with that release installed). On SQLite a copy of the file
is upgraded; on Postgres the same rows are loaded into a database at the release's
revision first. Every value must read back the same after each step, the release's
columns must hold the same values after the round trips, and what later releases added
must read as its default.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from runstore import Run, RunResult, Score, SqlRunsStorage
from runstore.engine import create_storage_engine
from runstore.migrations import (
    alembic_config,
    current_revision,
    head_revision,
    migration_transaction,
)

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = "mastra_dataset_runs"
RESULTS = "mastra_dataset_run_results"
SCORES = "mastra_dataset_run_scores"


@dataclass(frozen=True)
class Release:
    """What a release's fixture holds."""

    revision: str
    """The schema revision the release left the database at."""
    rows: Mapping[str, int]
    """Its tables, in the order their rows can be inserted (foreign keys), and how many
    rows each holds."""
    repeated: int = 0
    """How many of its results have a repetition above 0."""


RELEASES = {
    "runstore-0.1.0.db": Release("0002_run_filter_indexes", {RUNS: 40, RESULTS: 400}),
    "runstore-0.3.0.db": Release(
        "0004_repetitions", {RUNS: 40, RESULTS: 484, SCORES: 403}, repeated=84
    ),
}

Stored = tuple[list[Run], list[RunResult], list[Score]]


def everything(url: str) -> Stored:
    """Every run, result and score, read by this version of runstore."""
    with SqlRunsStorage(url) as storage:
        runs = list(storage.iter_runs(batch_size=7))
        results = [result for run in runs for result in storage.iter_results(run.id)]
        scores = [score for run in runs for score in storage.list_scores(run.id)]
    return runs, results, scores


def raw_rows(url: str, tables: Mapping[str, int]) -> dict[str, list[dict[str, Any]]]:
    """Every row of ``tables``, every column, as the database holds them."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: [
                    dict(row._mapping)
                    for row in connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))
                ]
                for table in tables
            }
    finally:
        engine.dispose()


def release_columns(
    rows: dict[str, list[dict[str, Any]]], release_rows: dict[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """``rows`` with only the columns the release's tables had."""
    return {
        table: [{key: row[key] for key in release_rows[table][0]} for row in rows[table]]
        for table in release_rows
    }


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


def load_into_postgres(source: str, target: str, release: Release) -> None:
    """Copy the release database's rows into an empty Postgres at the same revision."""
    migrate(target, release.revision)
    rows = raw_rows(source, release.rows)
    engine = sa.create_engine(target)
    try:
        with engine.begin() as connection:
            metadata = sa.MetaData()
            for name in release.rows:
                table = sa.Table(name, metadata, autoload_with=connection)
                values = {
                    column.name: sa.cast(sa.bindparam(column.name), column.type)
                    for column in table.columns
                }
                connection.execute(sa.insert(table).values(values), rows[name])
    finally:
        engine.dispose()


def check_defaults(stored: Stored) -> None:
    """What 0005 added reads as its default on every row written before it."""
    runs, results, _ = stored
    for run in runs:
        assert (run.name, run.description, run.tags, run.metadata) == (None, None, (), {})
    for result in results:
        added = (
            result.input_tokens,
            result.output_tokens,
            result.cost,
            result.trace_id,
            result.metadata,
        )
        assert added == (None, None, None, None, None), result.id


@pytest.mark.parametrize("fixture", sorted(RELEASES))
def test_a_release_database_upgrades_and_downgrades_keeping_every_row(
    tmp_path: Path, new_postgres_url: Any, fixture: str
) -> None:
    release = RELEASES[fixture]
    copy = tmp_path / fixture
    shutil.copyfile(FIXTURES / fixture, copy)
    sqlite_url = f"sqlite:///{copy}"
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as connection:
        assert current_revision(connection) == release.revision
    engine.dispose()
    release_rows = raw_rows(sqlite_url, release.rows)
    assert {table: len(rows) for table, rows in release_rows.items()} == release.rows

    postgres_url = new_postgres_url()
    load_into_postgres(sqlite_url, postgres_url, release)
    loaded_rows = raw_rows(postgres_url, release.rows)

    expected: Stored | None = None
    for url in (sqlite_url, postgres_url):
        for step in range(2):  # up to head, back to the release, and up again
            migrate(url, head_revision())
            read = everything(url)
            expected = expected or read
            assert read == expected, f"{url}: values changed on upgrade {step}"
            check_defaults(read)
            migrate(url, release.revision, down=True)
            assert raw_rows(url, release.rows) == (
                release_rows if url == sqlite_url else loaded_rows
            )
        migrate(url, head_revision())
    # The release's columns, value for value, at head on both databases.
    assert release_columns(raw_rows(sqlite_url, release.rows), release_rows) == release_rows
    assert release_columns(raw_rows(postgres_url, release.rows), loaded_rows) == loaded_rows

    assert expected is not None
    runs, results, scores = expected
    assert len(runs) == release.rows[RUNS]
    assert len(results) == release.rows[RESULTS]
    assert len(scores) == release.rows.get(SCORES, 0)
    assert sum(result.repetition > 0 for result in results) == release.repeated
    assert sum(result.output is None for result in results) > 0
    assert any(result.input == 2**70 for result in results)
    if scores:  # each optional field of a score, present and absent
        for field in ("label", "explanation", "metadata"):
            assert {getattr(score, field) is None for score in scores} == {True, False}, field
        assert sum(map(len, (result.scores for result in results))) == len(scores)
