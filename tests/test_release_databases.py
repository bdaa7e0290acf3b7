"""Databases written by earlier releases upgrade to head, and back, keeping every row.

Each release leaves a small real database in ``tests/fixtures`` (written by
``write_release_database.py`` with that release installed). On SQLite a copy of the file
is upgraded; on Postgres the same rows are loaded into a database at the release's
revision first. Every value must read back the same after each step, the release's
columns must hold the same values after the round trips, and what later releases added
must read as its default. What a release added must read back as it wrote it: 0.4's
provenance exactly, and its kept summaries as the summaries computed afresh -- the
current ones served, the stale ones never.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from runstore import Run
from runstore import RunResult
from runstore import RunSummary
from runstore import Score
from runstore import SqlRunsStorage
from runstore.engine import create_storage_engine
from runstore.migrations import alembic_config
from runstore.migrations import current_revision
from runstore.migrations import head_revision
from runstore.migrations import migration_transaction
from runstore.models import FINISHED
from runstore.schema import TABLE_SCHEMAS

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = "mastra_dataset_runs"
RESULTS = "mastra_dataset_run_results"
SCORES = "mastra_dataset_run_scores"
TAGS = "mastra_dataset_run_tags"
SUMMARIES = "mastra_dataset_run_summaries"


def _writer() -> ModuleType:
    """``write_release_database.py``: what it gives each run and result is what a
    release's database must read back."""
    spec = importlib.util.spec_from_file_location(
        "write_release_database", FIXTURES / "write_release_database.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WRITER = _writer()


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
    provenance: bool = False
    """Whether its runs and results carry what produced them and what they used (0.4's
    names, tags, costs...). Before, what ``0005_provenance_and_cost`` added reads as its
    default."""
    stale: int = 0
    """How many of its finished runs have a kept summary that a later score made stale
    (every other finished run has a current one), where it keeps summaries."""


RELEASES = {
    "runstore-0.1.0.db": Release("0002_run_filter_indexes", {RUNS: 40, RESULTS: 400}),
    "runstore-0.3.0.db": Release(
        "0004_repetitions", {RUNS: 40, RESULTS: 484, SCORES: 403}, repeated=84
    ),
    "runstore-0.4.0.db": Release(
        "0006_kept_summaries",
        {RUNS: 40, RESULTS: 484, SCORES: 407, TAGS: 57, SUMMARIES: 20},
        repeated=84,
        provenance=True,
        stale=4,
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
    """Every row of ``tables``, every column, as the database holds them, by primary key."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            quote = connection.dialect.identifier_preparer.quote
            read = {}
            for table in tables:
                key = [name for name, column in TABLE_SCHEMAS[table].items() if column.primary_key]
                order = ", ".join(map(quote, key))
                selected = sa.text(f"SELECT * FROM {table} ORDER BY {order}")
                read[table] = [dict(row._mapping) for row in connection.execute(selected)]
            return read
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


def texts(table: str, rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], list[Any]]:
    """The text columns of each of ``rows`` of ``table``, by primary key."""
    schema = TABLE_SCHEMAS[table]
    keys = [name for name, column in schema.items() if column.primary_key]
    columns = [name for name, column in schema.items() if column.type == "text"]
    return {
        tuple(row[key] for key in keys): [row[column] for column in columns if column in row]
        for row in rows
    }


def check_copied(
    rows: dict[str, list[dict[str, Any]]], loaded: dict[str, list[dict[str, Any]]]
) -> None:
    """Every text value -- ids, names, tags, kept summaries and their keys -- is the same
    string in Postgres as in the SQLite file, and so are the runs' tags (JSON)."""
    for table in rows:
        assert texts(table, loaded[table]) == texts(table, rows[table]), table
    if TAGS in rows:
        sqlite_tags = {row["id"]: json.loads(row["tags"]) for row in rows[RUNS]}
        assert {row["id"]: row["tags"] for row in loaded[RUNS]} == sqlite_tags


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


def exactly(value: Any) -> str:
    """A JSON value spelled so that only the same value spells the same: ``1`` is not
    ``1.0`` nor ``True``, a float is written in full, keys sorted."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def check_provenance(stored: Stored) -> None:
    """What produced each run and what each result used read back as written: names,
    descriptions, tags (a sorted set), metadata, tokens, costs bit for bit, trace ids."""
    runs, results, _ = stored
    for run in runs:
        given = WRITER.run_provenance(int(run.id.removeprefix("run-")))
        assert (run.name, run.description) == (given["name"], given["description"]), run.id
        assert run.tags == tuple(sorted(set(given["tags"]))), run.id
        assert exactly(run.metadata) == exactly(given["metadata"]), run.id
    for result in results:
        given = WRITER.result_provenance(
            int(result.run_id.removeprefix("run-")),
            int(result.item_id.removeprefix("item-")),
            result.repetition,
        )
        used = (result.input_tokens, result.output_tokens, result.trace_id)
        assert used == (given["input_tokens"], given["output_tokens"], given["trace_id"])
        cost = None if result.cost is None else result.cost.hex()
        assert cost == (None if given["cost"] is None else given["cost"].hex()), result.id
        assert exactly(result.metadata) == exactly(given["metadata"]), result.id
    # The fixture holds each kind: a name and none, 0 to 3 tags, every cost and none.
    assert {run.name is None for run in runs} == {True, False}
    assert {run.description is None for run in runs} == {True, False}
    assert {len(run.tags) for run in runs} == {0, 1, 2, 3}
    assert {result.cost for result in results} >= {None, 0.0001, 1e-9, 2.5, 0.1 + 0.2}
    assert {result.metadata is None for result in results} == {True, False}


def same_figures(computed: Any, kept: Any) -> bool:
    """Whether two summaries (as dumped) agree: every count and key exactly, every float
    to 12 significant digits -- how far two databases' sums of the same values may part."""
    if isinstance(computed, dict) and isinstance(kept, dict):
        return computed.keys() == kept.keys() and all(
            same_figures(computed[key], kept[key]) for key in computed
        )
    if isinstance(computed, float) and isinstance(kept, float):
        return math.isclose(computed, kept, rel_tol=1e-12)
    return bool(computed == kept)


def check_kept_summaries(url: str, release: Release, *, kept_here: bool) -> None:
    """Each finished run's summary reads as computed afresh: a current kept one is
    served as it was kept, a stale one never; ``keep_summaries`` keeps the stale ones,
    exactly. Reads first, with ``keep=False``, which writes nothing: what is read is the
    release's kept state.

    Args:
        kept_here: the kept summaries were computed by this database (the release's
            SQLite file), so one computed afresh equals them bit for bit. Copied into
            Postgres they are SQLite's, and Postgres sums in its own order: there the
            counts agree exactly and the figures to 12 digits.
    """
    tables = {RUNS: 0, SUMMARIES: 0}
    before = raw_rows(url, tables)
    kept = {row["runId"]: row for row in before[SUMMARIES]}
    run_keys = {row["id"]: row["summaryKey"] for row in before[RUNS]}
    current = {run_id for run_id, row in kept.items() if run_keys[run_id] == row["key"]}
    with SqlRunsStorage(url) as storage:
        finished = {run.id for run in storage.iter_runs() if run.status in FINISHED}
        stale = {run_id for run_id in finished if WRITER.is_stale(int(run_id.removeprefix("run-")))}
        assert len(stale) == release.stale
        assert set(kept) == finished
        assert current == finished - stale
        read = {run_id: storage.summarize_run(run_id, keep=False) for run_id in sorted(finished)}
        assert raw_rows(url, tables) == before  # reading kept nothing
        for run_id, summary in read.items():
            stored = RunSummary.model_validate_json(kept[run_id]["summary"])
            if run_id in stale:  # the late score: in the summary, not in the stale one
                assert WRITER.LATE_SCORE in summary.scores, run_id
                assert WRITER.LATE_SCORE not in stored.scores, run_id
            else:
                assert summary == stored, run_id

        assert storage.keep_summaries() == release.stale
        assert storage.keep_summaries() == 0
        for run_id, summary in read.items():
            assert storage.summarize_run(run_id) == summary, run_id
            storage.update_run({"id": run_id, "status": "running"})  # forgets the kept one
            afresh = storage.summarize_run(run_id, keep=False)
            if kept_here or run_id in stale:
                assert afresh == summary, run_id
            else:
                assert same_figures(afresh.model_dump(), summary.model_dump()), run_id


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
    check_copied(release_rows, loaded_rows)

    expected: Stored | None = None
    for url in (sqlite_url, postgres_url):
        for step in range(2):  # up to head, back to the release, and up again
            migrate(url, head_revision())
            read = everything(url)
            expected = expected or read
            assert read == expected, f"{url}: values changed on upgrade {step}"
            (check_provenance if release.provenance else check_defaults)(read)
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
    if SUMMARIES in release.rows:
        check_kept_summaries(sqlite_url, release, kept_here=True)
        check_kept_summaries(postgres_url, release, kept_here=False)
