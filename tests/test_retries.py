"""Transient conflicts are run again: a serialization failure (``40001``) or a deadlock
(``40P01``) rolled its transaction back whole, so runstore runs the call again -- the
caller sees one success, every row written once, counters exact. Other errors are never
run again; after the last attempt the error names the SQLSTATE and the attempts.

The conflicts are the driver's own exceptions, raised by an engine event just before a
chosen statement runs, on a real Postgres and in a real transaction that other statements
of the call already wrote in.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg.errors
import pytest
import sqlalchemy as sa

from runstore import AsyncSqlRunsStorage
from runstore import DatabaseError
from runstore import SqlRunsStorage
from runstore.plans import ATTEMPTS
from runstore.testing.inputs import T0
from runstore.testing.inputs import FrozenClock
from runstore.testing.inputs import counters
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

SERIALIZATION = psycopg.errors.SerializationFailure
DEADLOCK = psycopg.errors.DeadlockDetected


class Conflicts:
    """Raises ``error`` in place of the next ``times`` statements that match ``pattern``,
    after letting ``skip`` of them run."""

    def __init__(self, engine: Any) -> None:
        self.engine = getattr(engine, "sync_engine", engine)
        self.pattern: re.Pattern[str] | None = None
        self.error: type[Exception] = SERIALIZATION
        self.left = 0
        self.skip = 0
        self.raised = 0
        self.seen: list[str] = []
        sa.event.listen(self.engine, "before_cursor_execute", self._before)

    def inject(
        self,
        pattern: str,
        error: type[Exception] = SERIALIZATION,
        times: int = 1,
        skip: int = 0,
    ) -> None:
        self.pattern = re.compile(pattern, re.IGNORECASE | re.DOTALL)
        self.error, self.left, self.raised, self.seen = error, times, 0, []
        self.skip = skip

    def _before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if self.pattern is None or not self.pattern.search(statement):
            return
        self.seen.append(statement)
        if len(self.seen) > self.skip and self.left > 0:
            self.left -= 1
            self.raised += 1
            raise self.error(f"injected: {self.error.__name__}")


@pytest.fixture
def storage(new_postgres_url: Callable[[], str]) -> Iterator[SqlRunsStorage]:
    with SqlRunsStorage(new_postgres_url()) as made:
        made.init()
        yield made


@pytest.fixture
def conflicts(storage: SqlRunsStorage) -> Conflicts:
    return Conflicts(storage.engine)


RESULTS_INSERT = r"^\s*(INSERT INTO|WITH counting AS \s*\(UPDATE) \S*mastra_dataset_run"
ONE_RESULT = r"^\s*WITH counting AS \s*\(UPDATE \S*mastra_dataset_runs\b"
"""A result and its run's counters, in one statement."""
RUNS_UPDATE = r"^\s*UPDATE \S*mastra_dataset_runs\b"
SCORES_INSERT = r"^\s*INSERT INTO \S*mastra_dataset_run_scores\b"


@pytest.mark.parametrize("error", [SERIALIZATION, DEADLOCK])
def test_a_batch_that_meets_a_conflict_after_writing_is_written_once(
    storage: SqlRunsStorage, conflicts: Conflicts, error: type[Exception]
) -> None:
    run = storage.create_run(run_input(total_items=300))
    conflicts.inject(RUNS_UPDATE, error, times=2)  # the rows are in when the counters move
    written = storage.add_results(
        [result_input(run, n, error="boom" if n % 3 == 0 else None) for n in range(300)],
        update_counts=True,
    )
    assert conflicts.raised == 2
    assert len(conflicts.seen) == 3
    assert len(written) == 300
    assert sum(1 for _ in storage.iter_results(run.id)) == 300
    assert counters(storage.get_run_by_id(run.id)) == (300, 200, 100)


def stored(storage: SqlRunsStorage, run_id: str) -> tuple[int, tuple[int, int, int], str]:
    """What a run holds: its results, its counters, its status."""
    run = storage.get_run_by_id(run_id)
    assert run is not None
    return len(storage.list_results({"run_id": run_id}).results), counters(run), run.status


@pytest.mark.parametrize(
    ("pattern", "write", "expected"),
    [
        (
            ONE_RESULT,
            lambda storage, run: storage.add_result(result_input(run, 0)),
            (1, (1, 0, 0), "pending"),  # the result count moves always
        ),
        (
            ONE_RESULT,
            lambda storage, run: storage.add_result(result_input(run, 0), update_counts=True),
            (1, (1, 1, 0), "pending"),
        ),
        (
            RUNS_UPDATE,
            lambda storage, run: storage.add_results(
                [result_input(run, n) for n in range(3)], on_conflict="replace", update_counts=True
            ),
            (3, (3, 3, 0), "pending"),
        ),
        (
            RUNS_UPDATE,
            lambda storage, run: storage.update_run({"id": run.id, "status": "running"}),
            (0, (0, 0, 0), "running"),
        ),
    ],
    ids=["add_result", "add_result counted", "replace", "update_run"],
)
def test_each_write_is_run_again_after_a_conflict(
    storage: SqlRunsStorage,
    conflicts: Conflicts,
    pattern: str,
    write: Callable[[SqlRunsStorage, Any], Any],
    expected: tuple[int, tuple[int, int, int], str],
) -> None:
    run = storage.create_run(run_input())
    conflicts.inject(pattern, DEADLOCK)
    write(storage, run)
    assert conflicts.raised == 1
    assert len(conflicts.seen) == 2
    assert stored(storage, run.id) == expected


def test_a_run_created_in_a_conflict_is_created_once(
    storage: SqlRunsStorage, conflicts: Conflicts
) -> None:
    conflicts.inject(r"^\s*INSERT INTO \S*mastra_dataset_runs\b")
    run = storage.create_run(run_input())
    assert conflicts.raised == 1
    assert [listed.id for listed in storage.list_runs().runs] == [run.id]


def test_scores_added_in_a_conflicted_transaction_are_added_once(
    storage: SqlRunsStorage, conflicts: Conflicts
) -> None:
    run = storage.create_run(run_input())
    result = storage.add_result(result_input(run, 0))
    conflicts.inject(SCORES_INSERT)
    storage.add_scores([{"result_id": result.id, "name": "accuracy", "value": 0.3}])
    assert [(score.name, score.value) for score in storage.list_scores(run.id)] == [
        ("accuracy", 0.3)
    ]


def test_reads_are_run_again_and_a_stream_retries_only_its_batch(
    storage: SqlRunsStorage, conflicts: Conflicts
) -> None:
    run = storage.create_run(run_input(total_items=50))
    storage.add_results([result_input(run, n) for n in range(50)])
    select = r"^\s*SELECT .*FROM \S*mastra_dataset_run_results\b"
    conflicts.inject(select)
    first = storage.list_results({"run_id": run.id}).results[0]
    assert conflicts.raised == 1
    assert len(conflicts.seen) == 2
    conflicts.inject(select)
    assert storage.get_result_by_id(first.id) == first
    assert conflicts.raised == 1
    undisturbed = [result.item_id for result in storage.iter_results(run.id, batch_size=10)]
    conflicts.inject(select, times=0)
    streamed: list[str] = []
    for result in storage.iter_results(run.id, batch_size=10):
        if len(streamed) == 25:  # inside the third batch: the fourth meets a conflict
            conflicts.inject(select)
        streamed.append(result.item_id)
    assert conflicts.raised == 1
    assert streamed == undisturbed  # nothing twice, nothing missed, in order
    assert len(set(streamed)) == 50


def test_a_prune_that_meets_a_conflict_redoes_only_that_batch(
    new_postgres_url: Callable[[], str],
) -> None:
    with SqlRunsStorage(new_postgres_url(), clock=FrozenClock(T0)) as storage:
        storage.init()
        conflicts = Conflicts(storage.engine)
        for n in range(5):
            run = storage.create_run(run_input(id=f"old-{n}"))
            storage.add_results([result_input(run, item) for item in range(20)])
        # the second batch meets a conflict once the first is committed
        conflicts.inject(r"^\s*DELETE FROM \S*mastra_dataset_runs\b", SERIALIZATION, skip=1)
        pruned = storage.prune_runs(older_than=T0 + timedelta(days=1), batch_size=2)
        assert conflicts.raised == 1
        assert len(conflicts.seen) == 4  # three batches, the second twice
        assert pruned == 5
        assert storage.list_runs().runs == ()


def test_other_errors_are_not_run_again(storage: SqlRunsStorage, conflicts: Conflicts) -> None:
    run = storage.create_run(run_input())
    conflicts.inject(ONE_RESULT, psycopg.errors.QueryCanceled)
    with pytest.raises(DatabaseError) as raised:
        storage.add_result(result_input(run, 0))
    assert len(conflicts.seen) == 1
    assert raised.value.sqlstate == "57014"
    assert not raised.value.transient
    assert raised.value.attempts == 1
    assert storage.list_results({"run_id": run.id}).results == ()


def test_after_the_last_attempt_the_error_names_the_sqlstate_and_the_attempts(
    storage: SqlRunsStorage, conflicts: Conflicts
) -> None:
    run = storage.create_run(run_input())
    conflicts.inject(RUNS_UPDATE, SERIALIZATION, times=ATTEMPTS + 5)
    with pytest.raises(DatabaseError) as raised:
        storage.add_results([result_input(run, n) for n in range(3)], update_counts=True)
    assert len(conflicts.seen) == ATTEMPTS
    assert raised.value.sqlstate == "40001"
    assert raised.value.transient
    assert raised.value.attempts == ATTEMPTS
    assert "40001" in str(raised.value)
    assert f"{ATTEMPTS} attempts" in str(raised.value)
    cause = raised.value.__cause__  # the driver's error (SQLAlchemy >= 2.1 wraps it first)
    assert isinstance(getattr(cause, "orig", cause), SERIALIZATION)
    assert storage.list_results({"run_id": run.id}).results == ()
    assert counters(storage.get_run_by_id(run.id)) == (0, 0, 0)


def test_sqlite_errors_have_no_sqlstate_and_are_not_run_again(tmp_path: Path) -> None:
    with SqlRunsStorage(f"sqlite:///{tmp_path / 'runs.db'}") as storage:
        storage.init()
        conflicts = Conflicts(storage.engine)
        run = storage.create_run(run_input())
        conflicts.inject(RESULTS_INSERT, sqlite3.OperationalError)
        with pytest.raises(DatabaseError) as raised:
            storage.add_result(result_input(run, 0))
        assert len(conflicts.seen) == 1
        assert raised.value.sqlstate is None
        assert raised.value.attempts == 1


def test_the_asyncio_adapter_runs_a_conflicted_call_again(
    new_postgres_url: Callable[[], str],
) -> None:
    async def main() -> None:
        async with AsyncSqlRunsStorage(new_postgres_url()) as storage:
            await storage.init()
            conflicts = Conflicts(storage.engine)
            run = await storage.create_run(run_input(total_items=40))
            conflicts.inject(RUNS_UPDATE, DEADLOCK, times=2)
            await storage.add_results([result_input(run, n) for n in range(40)], update_counts=True)
            assert conflicts.raised == 2
            assert counters(await storage.get_run_by_id(run.id)) == (40, 40, 0)
            conflicts.inject(r"^\s*SELECT .*FROM \S*mastra_dataset_run_results\b")
            items = [result.item_id async for result in storage.iter_results(run.id, batch_size=7)]
            assert conflicts.raised == 1
            assert len(set(items)) == len(items) == 40
            conflicts.inject(RUNS_UPDATE, SERIALIZATION, times=ATTEMPTS)
            with pytest.raises(DatabaseError) as raised:
                await storage.update_run({"id": run.id, "status": "running"})
            assert raised.value.attempts == ATTEMPTS
            assert raised.value.sqlstate == "40001"

    asyncio.run(main())
