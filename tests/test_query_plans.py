"""Every list query is served by an index, in index order (no sort), on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from runstore import ListRunsInput, ResultFilters, RunFilters, SqlRunsStorage, statements
from runstore.cursors import Position
from runstore.testing.inputs import T0, result_input, run_input


class Explain(sa.Executable, sa.ClauseElement):
    """``EXPLAIN`` of a statement, its values bound by SQLAlchemy as for the statement."""

    inherit_cache = False

    def __init__(self, statement: sa.ClauseElement) -> None:
        self.statement = statement


@compiles(Explain)
def _explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    prefix = "EXPLAIN QUERY PLAN " if compiler.dialect.name == "sqlite" else "EXPLAIN "
    return prefix + compiler.process(element.statement, **kw)


def explain(connection: sa.Connection, query: statements.Query) -> str:
    """The database's plan for a runstore query, with its values bound."""
    if connection.dialect.name == "postgresql":
        # With few rows a scan and a sort can be cheaper; ask whether an index can serve
        # the query in order, which is what keeps large tables fast.
        connection.exec_driver_sql("SET enable_seqscan = off")
        connection.exec_driver_sql("SET enable_bitmapscan = off")
    rows = connection.execute(Explain(query.statement), query.values).all()  # type: ignore[arg-type]
    return "\n".join(str(row[-1]) for row in rows)


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


RUN_FILTERS = {
    "ix_mastra_dataset_runs_createdAt_id": RunFilters(),
    "ix_mastra_dataset_runs_datasetId_createdAt_id": RunFilters(dataset_id="dataset-3"),
    "ix_mastra_dataset_runs_status_createdAt_id": RunFilters(status="running"),
    "ix_mastra_dataset_runs_targetType_createdAt_id": RunFilters(target_type="workflow"),
    "ix_mastra_dataset_runs_targetId_createdAt_id": RunFilters(target_id="target-7"),
}


def assert_served_in_order(plan: str, index: str) -> None:
    assert index in plan, plan
    assert "Sort" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("index", sorted(RUN_FILTERS))
def test_list_runs_uses_its_index(seeded: SqlRunsStorage, index: str) -> None:
    filters = RUN_FILTERS[index]
    after = Position(T0 + timedelta(days=400), "z")
    with seeded.engine.connect() as connection:
        for query in (
            statements.runs_page(filters, None, 101, 0),
            statements.runs_page(filters, after, 101, 0),
            statements.runs_batch(filters, after, 1000),
        ):
            assert_served_in_order(explain(connection, query), index)


def test_list_results_uses_the_run_order_index(seeded: SqlRunsStorage) -> None:
    after = Position(T0 + timedelta(seconds=3000), "m")
    with seeded.engine.connect() as connection:
        for query in (
            statements.results_page("any-run", ResultFilters(), None, 101, 0),
            statements.results_page("any-run", ResultFilters(), after, 101, 0),
            statements.results_batch("any-run", ResultFilters(), after, 1000),
        ):
            plan = explain(connection, query)
            assert_served_in_order(plan, "ix_mastra_dataset_run_results_runId_startedAt_id")


def test_the_list_input_is_its_filters() -> None:
    listing = ListRunsInput(dataset_id="d", status="running")
    assert listing.given() == RunFilters(dataset_id="d", status="running").given()
