"""Every list query is served by an index, in index order (no sort), on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from helpers import T0, result_input, run_input
from runstore import ListRunsInput, SqlRunsStorage
from runstore.cursors import Position, encode_cursor
from runstore.sql import _Listing


def explain(connection: sa.Connection, query: sa.Select[Any]) -> str:
    """The database's plan for ``query``, with its parameters bound as runstore binds them."""
    compiled = query.compile(dialect=connection.dialect)
    params = compiled.construct_params()
    processors = compiled._bind_processors
    values = {name: processors[name](value) if name in processors else value
              for name, value in params.items()}  # fmt: skip
    sql = str(compiled)
    if connection.dialect.name == "sqlite":
        assert compiled.positiontup is not None
        rows = connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + sql, tuple(values[name] for name in compiled.positiontup)
        ).all()
        return "\n".join(str(row[-1]) for row in rows)
    # With few rows a scan and a sort can be cheaper; ask whether an index can serve the
    # query in order, which is what keeps large tables fast.
    connection.exec_driver_sql("SET enable_seqscan = off")
    connection.exec_driver_sql("SET enable_bitmapscan = off")
    return "\n".join(row[0] for row in connection.exec_driver_sql("EXPLAIN " + sql, values))


@pytest.fixture(scope="module", params=["sqlite_file", "postgres"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SqlRunsStorage]:
    if request.param == "sqlite_file":
        url = f"sqlite:///{tmp_path_factory.mktemp('plans') / 'runs.db'}"
    else:
        url = request.getfixturevalue("postgres_server").new_database()
    storage = SqlRunsStorage(url)
    storage.init()
    runs = [
        storage.create_run(
            run_input(
                dataset_id=f"dataset-{n % 40}",
                target_type=("agent", "workflow", "scorer", "processor")[n % 4],
                target_id=f"target-{n % 50}",
            )
        )
        for n in range(2000)
    ]
    storage.add_results(
        [result_input(runs[n % 20], n, started_at=T0 + timedelta(seconds=n)) for n in range(4000)]
    )
    with storage.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    yield storage
    storage.close()


RUN_LISTINGS = {
    "ix_mastra_dataset_runs_createdAt_id": ListRunsInput(),
    "ix_mastra_dataset_runs_datasetId_createdAt_id": ListRunsInput(dataset_id="dataset-3"),
    "ix_mastra_dataset_runs_status_createdAt_id": ListRunsInput(status="running"),
    "ix_mastra_dataset_runs_targetType_createdAt_id": ListRunsInput(target_type="workflow"),
    "ix_mastra_dataset_runs_targetId_createdAt_id": ListRunsInput(target_id="target-7"),
}


@pytest.mark.parametrize("index", sorted(RUN_LISTINGS))
def test_list_runs_uses_its_index(seeded: SqlRunsStorage, index: str) -> None:
    listing = _Listing.of_runs(RUN_LISTINGS[index])
    with seeded.engine.connect() as connection:
        plan = explain(connection, listing.query(None).limit(101))
        after = Position(T0 + timedelta(days=400), "z")
        deep = explain(connection, listing.query(after).limit(101))
    for text in (plan, deep):
        assert index in text, text
        assert "Sort" not in text, text
        assert "TEMP B-TREE" not in text, text


def test_list_results_uses_the_run_order_index(seeded: SqlRunsStorage) -> None:
    run_id = "any-run"
    listing = _Listing.of_results(
        run_id, encode_cursor("results", (run_id,), Position(T0 + timedelta(seconds=3000), "m"))
    )
    with seeded.engine.connect() as connection:
        for after in (None, listing.after):
            plan = explain(connection, listing.query(after).limit(101))
            assert "ix_mastra_dataset_run_results_runId_startedAt_id" in plan, plan
            assert "Sort" not in plan, plan
            assert "TEMP B-TREE" not in plan, plan
