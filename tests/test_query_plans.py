"""Every list query is served by an index, in index order (no sort), on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from runstore import ListRunsInput
from runstore import ResultFilters
from runstore import RunFilters
from runstore import Score
from runstore import ScoreFilter
from runstore import SqlRunsStorage
from runstore.cursors import Position
from runstore.plans import Query
from runstore.sql import answers
from runstore.sql import lists
from runstore.sql import runs
from runstore.sql import scores
from runstore.testing.inputs import T0
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input


class Explain(sa.Executable, sa.ClauseElement):
    """``EXPLAIN`` of a statement, its values bound by SQLAlchemy as for the statement."""

    inherit_cache = False

    def __init__(self, statement: sa.ClauseElement) -> None:
        self.statement = statement


@compiles(Explain)
def _explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    prefix = "EXPLAIN QUERY PLAN " if compiler.dialect.name == "sqlite" else "EXPLAIN "
    return prefix + compiler.process(element.statement, **kw)


def explain(connection: sa.Connection, query: Query) -> str:
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
                name=f"n{n % 25}",
                tags=[f"tag-{n % 30}", f"o{n % 7}"],
                metadata={"m": n % 9},
            )
        )
        for n in range(2000)
    ]
    storage.add_results(
        [
            result_input(
                runs[n % 20],
                n,
                started_at=T0 + timedelta(seconds=n),
                latency=float(n % 97),
                # One result in ten failed, in every run alike.
                error="boom" if (n // 20) % 10 == 0 else None,
                scores={"accuracy": (n % 11) / 10},
            )
            for n in range(4000)
        ]
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
    "ix_mastra_dataset_runs_name_createdAt_id": RunFilters(name="n4"),
    # A tag filter walks the tags' index, the first tag's runs newest first.
    "ix_mastra_dataset_run_tags_tag_createdAt_runId": RunFilters(tags=["tag-3"]),
}


@pytest.mark.parametrize(
    "filters",
    [
        RunFilters(tags=["tag-3", "o2"]),
        RunFilters(tags=["tag-3", "o2"], dataset_id="dataset-3", status="pending"),
        RunFilters(tags=["tag-3"], name="n3"),
    ],
    ids=["two tags", "tags and columns", "a tag and a name"],
)
def test_a_tag_filter_with_other_filters_reads_indexes_only(
    seeded: SqlRunsStorage, filters: RunFilters
) -> None:
    """The first tag's runs, or the runs of a column's index, whichever the planner
    finds fewer; each other tag probed by (run, tag) -- no table read whole."""
    after = Position(T0 + timedelta(days=400), "z")
    with seeded.engine.connect() as connection:
        for query in (
            lists.runs_page(filters, None, 101, 0),
            lists.runs_page(filters, None, 101, 50),
            lists.runs_page(filters, after, 101, 0),
            lists.runs_batch(filters, after, 1000),
            lists.count_runs(filters),
        ):
            plan = explain(connection, query)
            assert "Seq Scan" not in plan, plan
            assert not any(line.strip().startswith("SCAN mastra") for line in plan.splitlines())


def test_a_metadata_filter_uses_the_metadata_index_on_postgres(seeded: SqlRunsStorage) -> None:
    filters = RunFilters(metadata={"m": 4})
    if seeded.engine.dialect.name != "postgresql":
        # SQLite has no index of JSON values: the list is walked in its order, each run's
        # metadata read on the way -- never sorted.
        with seeded.engine.connect() as connection:
            plan = explain(connection, lists.runs_page(filters, None, 101, 0))
        assert_served_in_order(plan, "ix_mastra_dataset_runs_createdAt_id")
        return
    with seeded.engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        connection.exec_driver_sql("SET enable_indexscan = off")  # not the createdAt walk
        connection.exec_driver_sql("SET enable_bitmapscan = on")  # how GIN indexes are read
        try:
            for query in (lists.runs_page(filters, None, 101, 0), lists.count_runs(filters)):
                statement: Any = query.statement
                rows = connection.execute(Explain(statement), query.values)  # type: ignore[arg-type]
                plan = "\n".join(str(row[-1]) for row in rows)
                assert "ix_mastra_dataset_runs_metadata" in plan, plan
        finally:  # the connection goes back to the pool
            connection.exec_driver_sql("RESET enable_indexscan")
            connection.exec_driver_sql("SET enable_bitmapscan = off")
        matching = connection.execute(
            lists.runs_page(filters, None, 101, 0).statement,  # type: ignore[arg-type]
            lists.runs_page(filters, None, 101, 0).values,
        ).all()
        assert len(matching) == 101


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
            lists.runs_page(filters, None, 101, 0),
            lists.runs_page(filters, after, 101, 0),
            lists.runs_batch(filters, after, 1000),
        ):
            assert_served_in_order(explain(connection, query), index)


def test_list_results_uses_the_run_order_index(seeded: SqlRunsStorage) -> None:
    after = Position(T0 + timedelta(seconds=3000), "m")
    with seeded.engine.connect() as connection:
        for query in (
            lists.results_page("any-run", ResultFilters(), None, 101, 0),
            lists.results_page("any-run", ResultFilters(), after, 101, 0),
            lists.results_batch("any-run", ResultFilters(), after, 1000),
        ):
            plan = explain(connection, query)
            assert_served_in_order(plan, "ix_mastra_dataset_run_results_runId_startedAt_id")


def test_the_list_input_is_its_filters() -> None:
    listing = ListRunsInput(dataset_id="d", status="running")
    assert listing.given() == RunFilters(dataset_id="d", status="running").given()


RESULT_FILTERS = {
    "execution order": (ResultFilters(), "ix_mastra_dataset_run_results_runId_startedAt_id"),
    "slowest first": (
        ResultFilters(order="slowest"),
        "ix_mastra_dataset_run_results_runId_latency_id",
    ),
    "failed": (
        ResultFilters(has_error=True),
        "ix_mastra_dataset_run_results_failed_runId_startedAt_id",
    ),
    "failed, slowest first": (
        ResultFilters(has_error=True, order="slowest"),
        "ix_mastra_dataset_run_results_failed_runId_latency_id",
    ),
    "succeeded": (
        ResultFilters(has_error=False),
        "ix_mastra_dataset_run_results_runId_startedAt_id",
    ),
}


@pytest.mark.parametrize("name", sorted(RESULT_FILTERS))
def test_every_results_filter_and_order_is_served_by_an_index(
    seeded: SqlRunsStorage, name: str
) -> None:
    filters, index = RESULT_FILTERS[name]
    key = 30.0 if filters.order == "slowest" else T0 + timedelta(seconds=3000)
    after = Position(key, "m")
    with seeded.engine.connect() as connection:
        for query in (
            lists.results_page("any-run", filters, None, 101, 0),
            lists.results_page("any-run", filters, after, 101, 0),
            lists.results_batch("any-run", filters, after, 1000),
        ):
            assert_served_in_order(explain(connection, query), index)


def test_a_score_range_and_an_item_are_found_by_index(seeded: SqlRunsStorage) -> None:
    with seeded.engine.connect() as connection:
        scored = connection.execute(
            sa.text('SELECT "runId" FROM mastra_dataset_run_results WHERE "itemId" = :item'),
            {"item": "item-3"},
        ).scalar_one()
        by_item = explain(
            connection,
            lists.results_page(scored, ResultFilters(item_id="item-3"), None, 101, 0),
        )
        assert (
            "uq_mastra_dataset_run_results_runId_itemId" in by_item
            or "(runId=? AND itemId=?)" in by_item
        ), by_item
        by_score = explain(
            connection,
            lists.results_page(
                scored,
                ResultFilters(score=ScoreFilter(name="accuracy", min=0.5)),
                None,
                101,
                0,
            ),
        )
        # Either the run's scores of that name by value, or each result's score probed by
        # (result, name): an index either way.
        assert any(
            index in by_score
            for index in (
                "ix_mastra_dataset_run_scores_runId_name_value_id",
                "uq_mastra_dataset_run_scores_resultId_name",
                "(resultId=? AND name=?)",
            )
        ), by_score


def test_summaries_and_comparisons_read_indexes_of_one_run(seeded: SqlRunsStorage) -> None:
    with seeded.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            plans = [explain(connection, answers.summary("any-run"))]
        else:
            plans = [
                explain(connection, answers.latency_aggregates("any-run")),
                explain(connection, answers.latency_at("any-run", 5)),
                explain(connection, answers.score_aggregates("any-run")),
                explain(connection, answers.score_value_at("any-run", "accuracy", 3)),
            ]
        plans.append(explain(connection, answers.histogram_bins("any-run", 20)))
        # runs without repetitions are compared ungrouped where the database asks for it
        singles = [False, True] if connection.dialect.name == "sqlite" else [False]
        for single in singles:
            for statement in (
                answers.comparison_pairs,
                answers.comparison_pairs_one_pass,
                answers.comparison_scores,
                answers.comparison_scores_one_pass,
            ):
                plans.append(explain(connection, statement("any-run", "other-run", single=single)))
        plans.append(explain(connection, answers.repeated_runs("any-run", "other-run")))
        plans.append(explain(connection, answers.items_after("any-run", "other", "", 100)))
    for plan in plans:
        assert "mastra_dataset_run_results" not in plan or "Seq Scan" not in plan, plan
        assert "SCAN mastra_dataset_run_results" not in plan.replace("USING", "|"), plan
        assert "SCAN mastra_dataset_run_scores" not in plan.replace("USING", "|"), plan


PRUNE_FILTERS = {
    "ix_mastra_dataset_runs_createdAt_id": (None, None),
    "ix_mastra_dataset_runs_datasetId_createdAt_id": (None, "dataset-3"),
    "ix_mastra_dataset_runs_status_createdAt_id": ("running", None),
}


@pytest.mark.parametrize("index", sorted(PRUNE_FILTERS))
def test_pruning_finds_the_oldest_runs_by_index(seeded: SqlRunsStorage, index: str) -> None:
    status, dataset_id = PRUNE_FILTERS[index]
    query = runs.prunable_runs(T0 + timedelta(days=400), status, dataset_id, 100)
    with seeded.engine.connect() as connection:
        assert_served_in_order(explain(connection, query), index)


def test_pruning_by_tag_reads_indexes_only(seeded: SqlRunsStorage) -> None:
    query = runs.prunable_runs(T0 + timedelta(days=400), None, "dataset-3", 100, tags=["tag-3"])
    with seeded.engine.connect() as connection:
        plan = explain(connection, query)
    assert "Seq Scan" not in plan, plan
    assert not any(line.strip().startswith("SCAN mastra") for line in plan.splitlines()), plan


def test_pruning_deletes_a_batchs_rows_by_index(seeded: SqlRunsStorage) -> None:
    with seeded.engine.connect() as connection:
        for query in runs.delete_runs(["run-a", "run-b"]):
            plan = explain(connection, query)
            assert "Seq Scan" not in plan, plan
            assert not any(line.startswith("SCAN") for line in plan.splitlines()), plan


def test_the_scores_of_a_page_are_found_by_index(seeded: SqlRunsStorage) -> None:
    """SQLite reads the scores of the results it read in a statement of their own."""
    query = scores.scores_of_results_rows([f"result-{n}" for n in range(100)])
    with seeded.engine.connect() as connection:
        plan = explain(connection, query)
    assert "Seq Scan" not in plan, plan
    assert not any(line.startswith("SCAN") for line in plan.splitlines()), plan
    assert "resultId" in plan, plan


def test_a_results_scores_are_found_by_the_result_not_the_whole_run(
    seeded: SqlRunsStorage,
) -> None:
    """``list_scores(run_id, result_id=...)`` reads the (result, name) index -- not the
    run's scores, which a run of a million results has millions of."""
    with seeded.engine.connect() as connection:
        for after in (None, Score.model_construct(name="a", value=0.5, id="x")):
            query = scores.select_scores("run-a", "result-1", None, after, 10 if after else None)
            plan = explain(connection, query)
            assert "ix_mastra_dataset_run_scores_runId_name_value_id" not in plan, plan
            assert "Seq Scan" not in plan, plan
            assert not any(line.startswith("SCAN") for line in plan.splitlines()), plan
