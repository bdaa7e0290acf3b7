"""The statements the SQL adapter sends, as tools see them: engine events see every
statement of every public call, errors reach ``handle_error`` listeners, ``echo=True``
logs the hot calls, and on Postgres a list of any length is one statement text."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
import sqlalchemy as sa

from runstore import DuplicateError
from runstore import ListRunResultsInput
from runstore import ListRunsInput
from runstore import SqlRunsStorage
from runstore import UpdateRunInput
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input


def every_call(storage: SqlRunsStorage) -> list[tuple[str, Callable[[], object]]]:
    run = storage.create_run(run_input(id="seen"))
    storage.add_results([result_input(run, n) for n in range(3)])
    return [
        ("init", storage.init),
        ("create_run", lambda: storage.create_run(run_input())),
        ("update_run", lambda: storage.update_run(UpdateRunInput(id="seen", status="running"))),
        ("get_run_by_id", lambda: storage.get_run_by_id("seen")),
        ("list_runs", lambda: storage.list_runs(ListRunsInput())),
        ("iter_runs", lambda: list(storage.iter_runs())),
        ("add_result", lambda: storage.add_result(result_input(run, 10))),
        (
            "add_result counted",
            lambda: storage.add_result(result_input(run, 11), update_counts=True),
        ),
        ("add_results", lambda: storage.add_results([result_input(run, 12)])),
        ("get_result_by_id", lambda: storage.get_result_by_id("x")),
        ("list_results", lambda: storage.list_results(ListRunResultsInput(run_id="seen"))),
        ("iter_results", lambda: list(storage.iter_results("seen"))),
        ("delete_results_by_run_id", lambda: storage.delete_results_by_run_id("seen")),
        ("delete_run", lambda: storage.delete_run("seen")),
        ("dangerously_clear_all", storage.dangerously_clear_all),
    ]


def test_engine_events_see_every_statement_of_every_call(
    storage: SqlRunsStorage,
    statements_seen: Callable[[sa.Engine], AbstractContextManager[list[str]]],
) -> None:
    """Each public method's statements reach ``before_cursor_execute`` (so ``echo``,
    tracing and query loggers see them). The one stream they cannot see is the rows of a
    Postgres batch, sent with COPY; the batch's other statements are seen."""
    for name, call in every_call(storage):
        with statements_seen(storage.engine) as seen:
            call()
        assert seen, f"{name}: no statement seen"
        assert any("mastra_dataset_run" in sql or "runstore_alembic" in sql for sql in seen), (
            name,
            seen,
        )


def test_errors_reach_handle_error_listeners(storage: SqlRunsStorage) -> None:
    seen: list[BaseException] = []
    listener = lambda context: seen.append(context.original_exception)  # noqa: E731
    sa.event.listen(storage.engine, "handle_error", listener)
    run = storage.create_run(run_input(id="twice"))
    with pytest.raises(DuplicateError):
        storage.create_run(run_input(id="twice"))
    storage.add_result(result_input(run, id="r"))
    with pytest.raises(DuplicateError):
        storage.add_result(result_input(run, 1, id="r"))
    sa.event.remove(storage.engine, "handle_error", listener)
    assert len(seen) == 2


def test_echo_logs_the_hot_calls(empty_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with SqlRunsStorage(empty_url, echo=True) as storage:
        run = storage.create_run(run_input())
        caplog.clear()
        with caplog.at_level("INFO", logger="sqlalchemy.engine"):
            storage.add_result(result_input(run))
            storage.get_run_by_id(run.id)
    logged = caplog.text
    assert "INSERT INTO mastra_dataset_run_results" in logged
    assert "FROM mastra_dataset_runs" in logged


def test_lists_of_any_length_are_one_statement_text_on_postgres(
    storage: SqlRunsStorage,
    statements_seen: Callable[[sa.Engine], AbstractContextManager[list[str]]],
) -> None:
    """Replacing a batch looks its places up and deletes the old rows by lists of up to a
    thousand values. On Postgres each list is one array parameter, so the statement's text
    (and the server's plan) is the same for every length; on SQLite an expanding IN."""
    run = storage.create_run(run_input())
    stored = storage.add_results([result_input(run, n, scores={"s": 0.5}) for n in range(30)])
    texts: list[set[str]] = []
    for size in (1, 7, 30):
        replacing = [result_input(run, n, error="again") for n in range(size)]
        with statements_seen(storage.engine) as seen:
            written = storage.add_results(replacing, on_conflict="replace")
        assert [r.id for r in written] == [r.id for r in stored[:size]]
        texts.append({sql for sql in seen if "IN (" in sql or "ANY (" in sql})
    if storage.engine.dialect.name == "postgresql":
        assert texts[0] == texts[1] == texts[2]
        assert all("ANY (" in sql and "IN (" not in sql for sql in texts[0])
    else:
        assert texts[0] != texts[2]  # one parameter per value
    assert storage.list_scores(run.id) == []  # the replaced rows' scores went with them
    assert {result.error for result in storage.iter_results(run.id)} == {"again"}
