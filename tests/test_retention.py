"""Retention on both SQL backends: ``vacuum()`` gives a pruned SQLite file's space back and
runs on Postgres keeping every row, and ``prune_runs()`` deletes in transactions holding at
most ten thousand results each."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from runstore import SqlRunsStorage
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input


def test_vacuum_gives_a_pruned_sqlite_files_space_back(sqlite_url: str) -> None:
    path = Path(sa.make_url(sqlite_url).database or "")
    with SqlRunsStorage(sqlite_url) as storage:
        for _ in range(5):
            run = storage.create_run(run_input())
            storage.add_results(
                [result_input(run, n, input={"text": "x" * 1000}) for n in range(300)]
            )
        keep = storage.create_run(run_input())
        storage.add_result(result_input(keep, 0))
        assert storage.prune_runs(older_than=keep.created_at) == 5
        storage.vacuum()
        size = path.stat().st_size
        assert size < 200_000  # the 1.5 MB the pruned rows took are gone from the file
        assert storage.recount_run(keep.id).result_count == 1
        assert [r.item_id for r in storage.iter_results(keep.id)] == ["item-0"]


def test_vacuum_runs_on_postgres_and_keeps_every_row(postgres_url: str) -> None:
    storage = SqlRunsStorage(postgres_url)
    try:
        storage.init()
        storage.dangerously_clear_all()
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, n) for n in range(10)])
        storage.vacuum()
        assert len(list(storage.iter_results(run.id))) == 10
    finally:
        storage.close()


@pytest.mark.heavy
def test_a_prune_transaction_holds_at_most_ten_thousand_results(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        runs = [storage.create_run(run_input()) for _ in range(5)]
        for run in runs:
            storage.add_results([result_input(run, n) for n in range(4000)])
        keep = storage.create_run(run_input())
        deletes: list[str] = []

        def seen(*arguments: object) -> None:
            if str(arguments[2]).startswith("DELETE FROM mastra_dataset_runs "):
                deletes.append(str(arguments[2]))

        sa.event.listen(storage.engine, "before_cursor_execute", seen)
        assert storage.prune_runs(older_than=keep.created_at, batch_size=100) == 5
        sa.event.remove(storage.engine, "before_cursor_execute", seen)
        assert len(deletes) == 3  # 2 runs (8,000 results), 2 runs, 1 run
        assert [run.id for run in storage.iter_runs()] == [keep.id]
