"""How the SQL adapter stores values and reads them back: SQLite timestamps as fixed-width
UTC text that sorts, Postgres column types, the instant kept whatever the session's time
zone, JSON ``null`` apart from SQL NULL, None as SQL NULL on every write path, every column
back as its Python type, and JSON stored deeper than the depth limit still readable."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from runstore import ListRunResultsInput
from runstore import SqlRunsStorage
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.refusals import nested

# -- timestamps ------------------------------------------------------------------------


def test_sqlite_timestamps_are_fixed_width_utc_text_that_sorts(sqlite_url: str) -> None:
    with SqlRunsStorage(sqlite_url) as storage:
        run = storage.create_run(run_input())
        moments = [
            datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2000, 1, 1, tzinfo=UTC),
            datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            datetime(33, 1, 1, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ]
        for n, moment in enumerate(moments):
            storage.add_result(result_input(run, n, started_at=moment))
        with storage.engine.connect() as connection:
            stored = connection.execute(
                sa.text('SELECT "startedAt" FROM mastra_dataset_run_results ORDER BY "startedAt"')
            ).scalars()
            assert list(stored) == [
                "0033-01-01T00:00:00.000000Z",
                "1999-12-31T23:59:59.999999Z",
                "2000-01-01T00:00:00.000000Z",
                "2000-01-01T00:00:00.000001Z",
                "9999-12-31T23:59:59.999999Z",
            ]
        listed = storage.list_results(ListRunResultsInput(run_id=run.id)).results
        assert [result.started_at for result in listed] == sorted(moments)


def test_postgres_column_types(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        types: dict[str, str] = dict(
            connection.execute(
                sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = 'mastra_dataset_run_results'"
                )
            ).all()
        )
    engine.dispose()
    assert types["input"] == types["output"] == types["expectedOutput"] == "jsonb"
    assert types["startedAt"] == "timestamp with time zone"
    assert types["latency"] == "double precision"


def test_postgres_keeps_the_instant_whatever_the_session_time_zone(postgres_url: str) -> None:
    moment = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    engine = sa.create_engine(
        postgres_url, connect_args={"options": "-c TimeZone=America/New_York"}
    )
    with SqlRunsStorage(engine) as storage:
        run = storage.create_run(run_input(dataset_version=moment))
        stored = storage.get_run_by_id(run.id)
    assert stored is not None
    assert stored.dataset_version == moment
    assert stored.dataset_version.utcoffset() == timedelta(0)
    engine.dispose()


# -- nulls -----------------------------------------------------------------------------


def test_json_null_and_sql_null(postgres_url: str) -> None:
    with SqlRunsStorage(postgres_url) as storage:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run, input=None, output=None))
        with storage.engine.connect() as connection:
            row = connection.execute(
                sa.text(
                    "SELECT input IS NULL, jsonb_typeof(input), output IS NULL "
                    "FROM mastra_dataset_run_results WHERE id = :id"
                ),
                {"id": result.id},
            ).one()
    assert tuple(row) == (False, "null", True)


def null_columns(storage: SqlRunsStorage, result_id: str) -> tuple[bool, bool, bool]:
    """Whether input, output and expectedOutput are SQL NULL in the stored row."""
    with storage.engine.connect() as connection:
        row = connection.execute(
            sa.text(
                'SELECT input IS NULL, output IS NULL, "expectedOutput" IS NULL '
                "FROM mastra_dataset_run_results WHERE id = :id"
            ),
            {"id": result_id},
        ).one()
    return (bool(row[0]), bool(row[1]), bool(row[2]))


WRITE_PATHS = ["add_result", "models", "mappings", "mixed", "counted-mixed"]


@pytest.mark.parametrize("path", WRITE_PATHS)
def test_none_is_sql_null_on_every_write_path(storage: SqlRunsStorage, path: str) -> None:
    """``output``/``expected_output`` None is SQL NULL (``IS NULL`` finds it); ``input``
    None, in a NOT NULL column, is the JSON ``null``; other values are not NULL."""
    run = storage.create_run(run_input())
    empty = result_input(run, 0, input=None, output=None, expected_output=None)
    full = result_input(run, 1, input=0, output=False, expected_output="")
    if path == "add_result":
        written = [storage.add_result(empty), storage.add_result(full)]
    else:
        items: list[Any] = [empty, full]
        if path in ("mappings", "mixed", "counted-mixed"):
            items[0] = empty.model_dump()
        if path == "mappings":
            items[1] = full.model_dump(by_alias=True)
        written = storage.add_results(items, update_counts=path == "counted-mixed")
    assert null_columns(storage, written[0].id) == (False, True, True)
    assert null_columns(storage, written[1].id) == (False, False, False)
    with storage.engine.connect() as connection:
        nulls = connection.execute(
            sa.text("SELECT count(*) FROM mastra_dataset_run_results WHERE output IS NULL")
        ).scalar_one()
    assert nulls == 1
    read = storage.get_result_by_id(written[0].id)
    assert read is not None
    assert (read.input, read.output, read.expected_output) == (None, None, None)


# -- reading back ----------------------------------------------------------------------


def test_every_column_comes_back_as_its_python_type(storage: SqlRunsStorage) -> None:
    run = storage.create_run(run_input(total_items=3))
    result = storage.add_result(result_input(run, latency=12, retry_count=2))
    read = storage.get_result_by_id(result.id)
    assert read is not None
    assert type(read.latency) is float
    assert type(read.retry_count) is int
    stored_run = storage.get_run_by_id(run.id)
    assert stored_run is not None
    assert type(stored_run.total_items) is int


@pytest.mark.parametrize("depth", [950, 5000])
def test_json_stored_deeper_than_the_limit_still_reads_back(empty_url: str, depth: int) -> None:
    """Rows written before the depth limit existed (0.1 took ~950 levels) stay readable."""
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run))
        deep = "[" * depth + "1" + "]" * depth
        cast = "CAST(:deep AS JSONB)" if storage.engine.dialect.name == "postgresql" else ":deep"
        with storage.engine.begin() as connection:
            connection.execute(
                sa.text(f"UPDATE mastra_dataset_run_results SET output = {cast} WHERE id = :id"),
                {"deep": deep, "id": result.id},
            )
        expected = nested(depth)
        single = storage.get_result_by_id(result.id)
        assert single is not None
        listed = storage.list_results(ListRunResultsInput(run_id=run.id)).results
        streamed = list(storage.iter_results(run.id))
        for read in (single.output, listed[0].output, streamed[0].output):
            for _ in range(depth):
                assert isinstance(read, list)
                assert len(read) == 1
                read = read[0]
            assert read == 1
        assert expected is not None
