"""Read replicas, on a real primary and its streaming hot standby: reads go to the
replica, writes and ``init()`` never do; a storage reads its own writes; a replica behind
``max_replica_lag``, stopped, or whose query recovery cancelled is passed over for the
primary, with no error, and used again later."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg.errors
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

import runstore.sql.replicas
from runstore import AsyncSqlRunsStorage
from runstore import InvalidInputError
from runstore import RunsStorage
from runstore import SqlRunsStorage
from runstore.testing import RunsStorageContract
from runstore.testing import StorageFactory
from runstore.testing.bridge import BlockingRunsStorage
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.servers import Cluster
from test_cli import invoke

_WRITE = re.compile(
    r"^\s*(INSERT|UPDATE|DELETE|MERGE|CREATE|ALTER|DROP|TRUNCATE|COPY|VACUUM|LOCK|GRANT)\b"
    r"|\bFOR\s+(UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b"
    r"|\bpg_advisory",
    re.IGNORECASE,
)
_OURS = re.compile(r"\bmastra_dataset_run", re.IGNORECASE)


class Watched:
    """An engine, and the statements it ran."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.statements: list[str] = []
        self.inject: Callable[[str], None] | None = None
        sync = getattr(engine, "sync_engine", engine)
        sa.event.listen(sync, "before_cursor_execute", self._before)

    def _before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement)
        if self.inject is not None:
            self.inject(statement)

    def reads(self) -> list[str]:
        """The statements that read runstore's tables."""
        return [statement for statement in self.statements if _OURS.search(statement)]

    def writes(self) -> list[str]:
        return [statement for statement in self.statements if _WRITE.search(statement)]

    def clear(self) -> None:
        self.statements.clear()


@pytest.fixture
def replica(cluster: Cluster) -> Iterator[Watched]:
    """An engine on the cluster's replica, given to storages as their read replica; no
    statement that writes ever reaches it."""
    watched = Watched(sa.create_engine(cluster.replica_url))
    yield watched
    watched.engine.dispose()
    assert watched.writes() == [], "statements that write, sent to the replica"


def reader(cluster: Cluster, replica: Watched, schema: str, **options: Any) -> SqlRunsStorage:
    return SqlRunsStorage(
        cluster.primary_url, schema=schema, read_replicas=[replica.engine], **options
    )


class TestThroughReplica(RunsStorageContract):
    """The whole contract on a storage that reads from a replica."""

    @pytest.fixture
    def storage_factory(self, cluster: Cluster, replica: Watched) -> StorageFactory:
        def make(**options: Any) -> RunsStorage:
            storage = reader(cluster, replica, "contract", replica_wait=5.0, **options)
            storage.init()
            storage.dangerously_clear_all()
            return storage

        return make


@pytest.mark.full_matrix
class TestAsyncThroughReplica(RunsStorageContract):
    @pytest.fixture
    def storage_factory(self, cluster: Cluster) -> StorageFactory:
        def make(**options: Any) -> RunsStorage:
            storage = AsyncSqlRunsStorage(
                cluster.primary_url,
                schema="async_contract",
                read_replicas=[cluster.replica_url],
                replica_wait=5.0,
                **options,
            )
            blocking = BlockingRunsStorage(storage)
            blocking.init()
            blocking.dangerously_clear_all()
            return blocking

        return make


def every_read(storage: SqlRunsStorage, run_id: str, other_id: str, directory: Path) -> None:
    """Each read call once."""
    result = storage.list_results({"run_id": run_id}).results[0]
    storage.get_run_by_id(run_id)
    storage.get_result_by_id(result.id)
    storage.list_runs()
    list(storage.iter_runs(batch_size=1))
    list(storage.iter_results(run_id, batch_size=2))
    list(storage.iter_result_batches(run_id, batch_size=2))
    storage.list_scores(run_id)
    list(storage.iter_scores(run_id, batch_size=2))
    storage.summarize_run(run_id)  # keeps nothing: it may run on a replica
    storage.trend_runs("dataset-1")
    storage.histogram_run(run_id)
    storage.compare_runs(other_id, run_id)
    list(storage.iter_item_comparisons(other_id, run_id, batch_size=2))
    storage.export_results(run_id, directory / "export.jsonl")


def test_reads_go_to_the_replica_and_writes_never(
    cluster: Cluster, replica: Watched, tmp_path: Path
) -> None:
    with reader(cluster, replica, "routed") as storage:
        primary = Watched(storage.engine)
        storage.init()
        storage.dangerously_clear_all()
        runs = [storage.create_run(run_input()) for _ in range(2)]
        written = [
            storage.add_results(
                [result_input(run, n, scores={"accuracy": n / 4}) for n in range(5)]
            )
            for run in runs
        ]
        for run in runs:  # finished, their summaries kept...
            storage.update_run({"id": run.id, "status": "completed"})
        storage.add_scores([{"result_id": written[1][0].id, "name": "late", "value": 1.0}])
        # ... and the second's stale: summarising it on a replica computes it, keeps nothing
        assert replica.reads() == []  # init and writes: the primary's alone
        cluster.wait_for_replica()
        storage.get_run_by_id(runs[0].id)  # asks the primary how far its writes went
        primary.clear()
        replica.clear()
        every_read(storage, runs[1].id, runs[0].id, tmp_path)
        assert primary.statements == []
        assert len(replica.reads()) >= 13
        storage.update_run({"id": runs[0].id, "status": "running"})
        assert primary.writes()


def test_a_storage_reads_its_own_writes_from_a_delayed_replica(
    cluster: Cluster, replica: Watched, delayed: Callable[[float], None]
) -> None:
    with (
        reader(cluster, replica, "delayed", replica_wait=0.2, max_replica_lag=600) as hasty,
        reader(cluster, replica, "delayed", replica_wait=30, max_replica_lag=600) as patient,
        reader(cluster, replica, "delayed", max_replica_lag=600) as bystander,
    ):
        hasty.init()
        for storage in (hasty, patient, bystander):
            storage.list_runs()  # schema checked, replica known
        delayed(2.0)
        primary = Watched(hasty.engine)
        run = hasty.create_run(run_input())
        replica.clear()
        assert hasty.get_run_by_id(run.id) == run  # the replica had not replayed it: the primary
        assert primary.reads()
        assert replica.reads() == []
        assert bystander.get_run_by_id(run.id) is None  # it wrote nothing: the replica, behind
        assert replica.reads()

        replica.clear()
        started = time.monotonic()
        run = patient.create_run(run_input())
        assert patient.get_run_by_id(run.id) == run  # waited for the replica to replay it
        assert time.monotonic() - started >= 1.0
        assert replica.reads()


def test_a_replica_behind_max_replica_lag_is_skipped_then_used_again(
    cluster: Cluster,
    replica: Watched,
    delayed: Callable[[float], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runstore.sql.replicas, "RECHECK", 0.0)
    with (
        reader(cluster, replica, "lagging") as writer,
        reader(cluster, replica, "lagging", max_replica_lag=0.5) as storage,
    ):
        writer.init()
        storage.list_runs()
        delayed(3.0)
        time.sleep(1.0)  # the last transaction the replica replayed is a second old
        run = writer.create_run(run_input())
        replica.clear()
        assert storage.get_run_by_id(run.id) == run  # the primary answered: no error
        assert replica.reads() == []
        # It replays at once from now on, and its last replayed commit is a fresh one, so
        # that no record arriving after the wait can show it lagging (the cluster runs no
        # autovacuum: the tests' commits are the only ones): it is used again.
        delayed(0.0)
        writer.create_run(run_input())
        cluster.wait_for_replica()
        assert storage.get_run_by_id(run.id) == run
        assert replica.reads()


def test_a_stopped_replica_is_skipped_then_used_again(
    cluster: Cluster, replica: Watched, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runstore.sql.replicas, "DOWN_FOR", 1.0)
    with reader(cluster, replica, "stopping") as storage:
        storage.init()
        run = storage.create_run(run_input())
        cluster.wait_for_replica()
        storage.list_runs()
        primary = Watched(storage.engine)
        cluster.replica.stop()
        try:
            replica.clear()
            for _ in range(3):
                assert storage.get_run_by_id(run.id) == run  # the primary answers
            assert len(primary.reads()) == 3
            assert len(replica.reads()) <= 1  # tried on a pooled connection once, then left
        finally:
            cluster.replica.start()
        cluster.wait_for_replica()
        deadline = time.monotonic() + 20
        while not replica.reads() and time.monotonic() < deadline:
            assert storage.get_run_by_id(run.id) == run
            time.sleep(0.1)
        assert replica.reads()


def test_a_read_recovery_cancelled_on_the_replica_runs_on_the_primary(
    cluster: Cluster, replica: Watched
) -> None:
    """What a hot standby raises when replaying the log needs what a query reads."""
    with reader(cluster, replica, "cancelled") as storage:
        storage.init()
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, n) for n in range(25)])
        cluster.wait_for_replica()
        storage.list_runs()
        primary = Watched(storage.engine)
        cancelled: list[str] = []

        def cancel(statement: str) -> None:
            if _OURS.search(statement) and len(cancelled) < 1:
                cancelled.append(statement)
                raise psycopg.errors.SerializationFailure(
                    "canceling statement due to conflict with recovery"
                )

        replica.inject = cancel
        fetched = storage.get_run_by_id(run.id)
        assert fetched is not None
        assert fetched.result_count == 25
        assert len(cancelled) == 1
        assert primary.reads()

        cancelled.clear()
        primary.clear()
        streamed = [result.item_id for result in storage.iter_results(run.id, batch_size=10)]
        assert len(cancelled) == 1
        assert len(streamed) == len(set(streamed)) == 25  # the cancelled batch read once


def test_replicas_are_refused_where_they_cannot_be_used(cluster: Cluster, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="a list"):
        SqlRunsStorage(cluster.primary_url, read_replicas=cluster.replica_url)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="Postgres"):
        SqlRunsStorage(f"sqlite:///{tmp_path / 'runs.db'}", read_replicas=[cluster.replica_url])
    with pytest.raises(InvalidInputError, match="Postgres"):
        SqlRunsStorage(cluster.primary_url, read_replicas=[f"sqlite:///{tmp_path / 'r.db'}"])
    for bad in (-1, float("nan"), "5", True):
        with pytest.raises(InvalidInputError, match="max_replica_lag"):
            SqlRunsStorage(
                cluster.primary_url, read_replicas=[cluster.replica_url], max_replica_lag=bad
            )


def test_replica_credentials_are_masked(cluster: Cluster) -> None:
    url = sa.make_url(cluster.replica_url).set(password="s3cret-replica")
    with SqlRunsStorage(
        cluster.primary_url, read_replicas=[url.render_as_string(hide_password=False)]
    ) as storage:
        assert "s3cret-replica" not in repr(storage)
        assert "read_replicas=" in repr(storage)


@pytest.fixture
def delayed(cluster: Cluster) -> Iterator[Callable[[float], None]]:
    """Make the replica replay each commit only so many seconds after it (and undo it)."""

    def delay(seconds: float) -> None:
        cluster.replica.configure(recovery_min_apply_delay=f"'{int(seconds * 1000)}ms'")
        _until_setting(cluster, f"{int(seconds * 1000)}ms")

    yield delay
    cluster.replica.configure(recovery_min_apply_delay="0")
    _until_setting(cluster, "0")
    cluster.wait_for_replica()


def _until_setting(cluster: Cluster, value: str) -> None:
    engine = sa.create_engine(cluster.replica_url, poolclass=sa.NullPool)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                shown = connection.scalar(
                    sa.text(
                        "SELECT setting FROM pg_settings WHERE name = 'recovery_min_apply_delay'"
                    )
                )
            if shown == value.removesuffix("ms") or f"{shown}ms" == value:
                return
            time.sleep(0.05)
        raise TimeoutError(f"recovery_min_apply_delay is not {value}")
    finally:
        engine.dispose()


def test_the_asyncio_adapter_reads_from_the_replica(cluster: Cluster) -> None:
    async def main() -> None:
        replica = Watched(create_async_engine(cluster.replica_url))
        async with AsyncSqlRunsStorage(
            cluster.primary_url, schema="async_routed", read_replicas=[replica.engine]
        ) as storage:
            primary = Watched(storage.engine)
            await storage.init()
            run = await storage.create_run(run_input())
            await storage.add_results([result_input(run, n) for n in range(5)])
            assert replica.reads() == []
            assert (await storage.get_run_by_id(run.id)) is not None  # its own writes
            primary.clear()
            assert len([result async for result in storage.iter_results(run.id)]) == 5
            assert (await storage.summarize_run(run.id)).results == 5
            assert primary.statements == []
            assert replica.reads()
            await storage.update_run({"id": run.id, "status": "running"})
            assert replica.writes() == []
        await replica.engine.dispose()

    asyncio.run(main())


def test_the_command_line_reads_from_the_replicas_it_is_given(
    cluster: Cluster, replica: Watched, delayed: Callable[[float], None]
) -> None:
    with reader(cluster, replica, "command") as storage:
        storage.init()
        storage.create_run(run_input())
        cluster.wait_for_replica()  # it replayed a commit just now: it is not behind
        delayed(60.0)
        run = storage.create_run(run_input())  # not on the replica for a minute
        database = ["--url", cluster.primary_url, "--schema", "command"]
        on_replica = ["--read-replica", cluster.replica_url]
        assert invoke("runs", "show", run.id, *database).exit_code == 0
        shown = invoke("runs", "show", run.id, *database, *on_replica)
        assert shown.exit_code == 1
        assert "does not exist" in shown.stderr
        listed = invoke("runs", "list", "--json", *database, *on_replica)
        assert run.id not in listed.stdout
        assert run.id in invoke("runs", "list", "--json", *database).stdout
