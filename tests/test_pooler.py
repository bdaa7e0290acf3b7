"""runstore through a stock PgBouncer in transaction mode: every call, many writers, two
schemas, concurrent migrations, a failed COPY -- and no statement that leaves state in a
session, since the pooler hands each transaction to whichever server connection is free."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from parallel import in_processes
from parallel import in_threads
from runstore import AsyncSqlRunsStorage
from runstore import RunsStorage
from runstore import SqlRunsStorage
from runstore.errors import DuplicateError
from runstore.migrations import VERSION_TABLE
from runstore.schema import TABLE_DATASET_RUNS
from runstore.testing import RunsStorageContract
from runstore.testing import StorageFactory
from runstore.testing.bridge import BlockingRunsStorage
from runstore.testing.inputs import T0
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.servers import Pooler

PREPARE_THRESHOLD = 5
"""psycopg prepares a statement on a connection after this many executions of it."""

_SESSION_STATE = re.compile(
    r"""^\s*(
        SET\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)   # SET LOCAL ends with the transaction
        | RESET\b | DISCARD\b | LISTEN\b | UNLISTEN\b | PREPARE\b | DEALLOCATE\b
        | DECLARE\b.*\bWITH\s+HOLD\b
        | CREATE\s+(TEMP|TEMPORARY)\b
    )
    | \bpg_advisory_lock(_shared)?\s*\(        # session-level locks outlive the transaction
    | \bset_config\s*\([^)]*,\s*false\s*\)""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)


def sets_session_state(statement: str) -> bool:
    """Whether a statement leaves state in the session, for the next transaction to find."""
    return _SESSION_STATE.search(statement) is not None


def test_the_session_state_check_knows_session_state() -> None:
    for statement in (
        "SET search_path TO tenant",
        "set TIME ZONE 'UTC'",
        "SELECT pg_advisory_lock(1)",
        "SELECT set_config('search_path', 'x', false)",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "LISTEN runs",
        "PREPARE q AS SELECT 1",
    ):
        assert sets_session_state(statement), statement
    for statement in (
        "SET LOCAL search_path TO tenant",
        "SELECT pg_advisory_xact_lock(1)",
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "UPDATE runs SET status = 'completed'",
        "SELECT set_config('x', 'y', true)",
    ):
        assert not sets_session_state(statement), statement


class SessionStateWatch:
    """Every statement that sets session state, on every engine it watches."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def watch(self, engine: Any) -> None:
        sync = getattr(engine, "sync_engine", engine)

        def listen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            if sets_session_state(statement):
                self.found.append(statement)

        sa.event.listen(sync, "before_cursor_execute", listen)


@pytest.fixture
def session_state() -> Iterator[SessionStateWatch]:
    watch = SessionStateWatch()
    yield watch
    assert watch.found == [], "statements that set session state"


class TestThroughPooler(RunsStorageContract):
    """The whole contract through the pooler, with no statement that sets session state."""

    @pytest.fixture
    def storage_factory(self, pooler: Pooler, session_state: SessionStateWatch) -> StorageFactory:
        def make(**options: Any) -> RunsStorage:
            storage = SqlRunsStorage(pooler.url, **options)
            session_state.watch(storage.engine)
            storage.init()
            storage.dangerously_clear_all()
            return storage

        return make


@pytest.mark.full_matrix
class TestAsyncThroughPooler(RunsStorageContract):
    @pytest.fixture
    def storage_factory(self, pooler: Pooler, session_state: SessionStateWatch) -> StorageFactory:
        def make(**options: Any) -> RunsStorage:
            storage = AsyncSqlRunsStorage(pooler.url, **options)
            session_state.watch(storage.engine)
            blocking = BlockingRunsStorage(storage)
            blocking.init()
            blocking.dangerously_clear_all()
            return blocking

        return make


def public_calls() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(RunsStorage, inspect.isfunction)
        if not name.startswith("_")
    }


def use_every_call(storage: Any, round: int, directory: Path, used: set[str]) -> None:
    """Each public call of ``storage`` once (``used`` collects their names)."""

    def call(name: str, *args: Any, **kwargs: Any) -> Any:
        used.add(name)
        value = getattr(storage, name)(*args, **kwargs)
        return list(value) if name.startswith("iter_") else value

    call("init")
    base = call("create_run", run_input(total_items=4))
    run = call("create_run", run_input(total_items=4))
    call("update_run", {"id": run.id, "status": "running"})
    call("get_run_by_id", run.id)
    call("list_runs", {"dataset_id": "dataset-1"})
    call("iter_runs", dataset_id="dataset-1", batch_size=2)
    first = call("add_result", result_input(run, 0, scores={"accuracy": 0.5}), update_counts=True)
    call("add_results", [result_input(run, n, scores={"accuracy": 1.0}) for n in (1, 2)])
    call("add_results", [result_input(base, n, scores={"accuracy": 0.5}) for n in (0, 1, 2)])
    call("add_scores", [{"result_id": first.id, "name": "fluency", "value": 3.0}])
    call("get_result_by_id", first.id)
    call("list_results", {"run_id": run.id, "order": "slowest"})
    call("iter_results", run.id, batch_size=2)
    call("list_scores", run.id)
    call("iter_scores", run.id, batch_size=2)
    call("iter_result_batches", run.id, batch_size=2)
    directory.mkdir(exist_ok=True)
    call("export_results", run.id, directory / f"export-{round}.jsonl")
    call("update_run", {"id": run.id, "status": "completed"})  # keeps its summary
    call("summarize_run", run.id)
    call("add_scores", [{"result_id": first.id, "name": "late", "value": 1.0}])
    call("summarize_run", run.id)  # stale: computed and kept again
    call("trend_runs", "dataset-1", last=5)
    call("keep_summaries", dataset_id="dataset-1")
    call("histogram_run", run.id, bins=4)
    call("compare_runs", base.id, run.id)
    call("iter_item_comparisons", base.id, run.id, batch_size=2)
    rules = {"min_score_delta": {"accuracy": -1.0}, "max_error_rate": 1.0, "max_regressed_items": 9}
    call("gate_runs", base.id, run.id, rules)
    call("find_baseline", run.id, tags=["main"])
    call("recount_run", run.id)
    call("delete_results_by_run_id", base.id)
    call("delete_run", base.id)
    call("prune_runs", older_than=T0 - timedelta(days=1))
    if round == 0:
        call("dangerously_clear_all")


def test_every_call_through_the_pooler_more_often_than_psycopg_prepares(
    pooler: Pooler, tmp_path: Path, session_state: SessionStateWatch
) -> None:
    """Four storages at once, each on one client connection, each making every call more
    often than psycopg's prepare threshold: with automatic preparation a statement
    prepared in one server session would be looked for in another."""
    rounds = PREPARE_THRESHOLD + 3
    used: set[str] = set()

    def worker(number: int) -> None:
        with SqlRunsStorage(
            pooler.url, pool_size=1, max_overflow=0, schema=f"calls_{number}"
        ) as storage:
            session_state.watch(storage.engine)
            for round in range(rounds):
                use_every_call(storage, round, tmp_path / str(number), used)

    in_threads(worker, [(number,) for number in range(4)])
    assert used == public_calls() - {"close"}


def write_counted(url: str, run_id: str, writer: int, count: int) -> None:
    with SqlRunsStorage(url, schema="counted", pool_size=2) as storage:
        for n in range(count):
            error = "failed" if n % 3 == 0 else None
            storage.add_result(
                result_input(run_id, f"{writer}-{n}", error=error), update_counts=True
            )


def test_many_processes_write_counted_results_through_the_pooler(pooler: Pooler) -> None:
    writers, each = 8, 60
    with SqlRunsStorage(pooler.url, schema="counted") as storage:
        run = storage.create_run(run_input(total_items=writers * each))
    in_processes(write_counted, [(pooler.url, run.id, writer, each) for writer in range(writers)])
    with SqlRunsStorage(pooler.url, schema="counted") as storage:
        stored = storage.get_run_by_id(run.id)
        assert stored is not None
        failed = writers * len(range(0, each, 3))
        assert (stored.result_count, stored.failed_count, stored.succeeded_count) == (
            writers * each,
            failed,
            writers * each - failed,
        )
        assert len({result.item_id for result in storage.iter_results(run.id)}) == writers * each


def test_two_schemas_through_the_pooler_stay_apart(pooler: Pooler) -> None:
    tenants = {name: SqlRunsStorage(pooler.url, schema=name) for name in ("tenant_a", "tenant_b")}
    try:
        for storage in tenants.values():
            storage.init()
            storage.dangerously_clear_all()
        made: dict[str, set[str]] = {name: set() for name in tenants}
        for round in range(PREPARE_THRESHOLD + 3):  # interleaved, on shared server sessions
            for name, storage in tenants.items():
                run = storage.create_run(run_input(dataset_id=f"{name}-{round}"))
                storage.add_result(result_input(run, 0), update_counts=True)
                made[name].add(run.id)
        for name, storage in tenants.items():
            assert {run.id for run in storage.iter_runs()} == made[name]
            listed = storage.list_runs({"pagination": {"per_page": 100}})
            assert {run.id for run in listed.runs} == made[name]
            other = next(other for other in tenants if other != name)
            assert all(storage.get_run_by_id(run_id) is None for run_id in made[other])
    finally:
        for storage in tenants.values():
            storage.close()
    engine = sa.create_engine(pooler.url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:  # nothing landed in the default schema
            public = sa.inspect(connection).get_table_names(schema="public")
            for name in tenants:
                assert TABLE_DATASET_RUNS in sa.inspect(connection).get_table_names(schema=name)
            assert TABLE_DATASET_RUNS not in public or not connection.scalar(
                sa.text(
                    f"SELECT count(*) FROM public.{TABLE_DATASET_RUNS}"
                    " WHERE \"datasetId\" LIKE 'tenant_%'"
                )
            )
    finally:
        engine.dispose()


def init_schema(url: str, schema: str) -> None:
    with SqlRunsStorage(url, schema=schema, pool_size=1) as storage:
        storage.list_runs()


def test_concurrent_init_through_the_pooler_leaves_no_lock(pooler: Pooler) -> None:
    in_processes(init_schema, [(pooler.url, "migrated")] * 6)
    engine = sa.create_engine(pooler.url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            locks = connection.scalar(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            )
            assert locks == 0
            versions = connection.scalar(sa.text(f"SELECT count(*) FROM migrated.{VERSION_TABLE}"))
            assert versions == 1
    finally:
        engine.dispose()


def test_a_failed_copy_leaves_the_pooler_usable(pooler: Pooler) -> None:
    with SqlRunsStorage(pooler.url, schema="copying", pool_size=1, max_overflow=0) as storage:
        run = storage.create_run(run_input())
        storage.add_result(result_input(run, 7))
        batch = [result_input(run, n) for n in range(200)]  # item 7 is there already
        for _ in range(PREPARE_THRESHOLD + 3):
            with pytest.raises(DuplicateError):
                storage.add_results(batch)
            assert storage.get_run_by_id(run.id) is not None
        written = storage.add_results([result_input(run, n) for n in range(8, 300)])
        assert len(written) == 292
        assert sum(1 for _ in storage.iter_results(run.id)) == 293


def test_no_libpq_options_reach_the_pooler(pooler: Pooler) -> None:
    """A stock PgBouncer refuses unknown startup parameters: it has said nothing of any."""
    with SqlRunsStorage(pooler.url, schema="startup") as storage:
        storage.list_runs()
    assert "unsupported startup parameter" not in pooler.log()
