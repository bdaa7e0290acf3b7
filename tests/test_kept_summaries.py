"""Kept summaries on the SQL adapters, beyond the contract: where they are stored, that
they are never stale while writers and keepers race, that a read only reads, and that
the migration that adds them goes down and up without losing a row."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import sqlalchemy as sa
from alembic import command

from runstore import RunSummary
from runstore import SqlRunsStorage
from runstore.engine import create_storage_engine
from runstore.migrations import alembic_config
from runstore.migrations import migration_transaction
from runstore.tables import runs_table
from runstore.tables import summaries_table
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from test_migrations import _migrate
from test_migrations import _revision
from test_migrations import _stored
from test_migrations import table_names

BEFORE_KEPT = "0005_provenance_and_cost"


def _kept(url: str) -> dict[str, tuple[str | None, str | None]]:
    """Each run's ``summaryKey`` and its stored summary's key (None where none)."""
    engine = create_storage_engine(url)
    try:
        with engine.connect() as connection:
            selected = sa.select(runs_table.c.id, runs_table.c.summary_key)
            keys = dict(connection.execute(selected).all())
            selected = sa.select(summaries_table.c.run_id, summaries_table.c.key)
            stored = dict(connection.execute(selected).all())
    finally:
        engine.dispose()
    return {run_id: (key, stored.get(run_id)) for run_id, key in keys.items()}


def _fresh(storage: SqlRunsStorage, run_id: str) -> RunSummary:
    """The run's summary computed afresh: set running (which forgets a kept one), read,
    and finished again."""
    status = storage.get_run_by_id(run_id)
    assert status is not None
    storage.update_run({"id": run_id, "status": "running"})
    summary = storage.summarize_run(run_id, keep=False)
    storage.update_run({"id": run_id, "status": status.status})
    return summary


def test_finishing_stores_the_summary_and_a_write_clears_its_key(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        results = storage.add_results([result_input(run, n, latency=n) for n in range(5)])
        assert _kept(empty_url) == {run.id: (None, None)}
        storage.update_run({"id": run.id, "status": "completed"})
        key, stored = _kept(empty_url)[run.id]
        assert key is not None
        assert stored == key
        storage.add_scores([{"result_id": results[0].id, "name": "late", "value": 1.0}])
        assert _kept(empty_url)[run.id] == (None, key)  # stale: not current
        assert storage.summarize_run(run.id, keep=False).scores["late"].count == 1
        assert _kept(empty_url)[run.id] == (None, key)  # a read that only reads
        assert "late" in storage.summarize_run(run.id).scores
        key_again, stored_again = _kept(empty_url)[run.id]
        assert key_again is not None
        assert key_again == stored_again != key
        storage.delete_run(run.id)
        assert _kept(empty_url) == {}


def test_kept_summaries_stay_exact_while_writers_and_keepers_race(empty_url: str) -> None:
    """Writers add results (counted or not), replace them and add scores to a finished
    run while others summarise it (keeping) and keep every summary: after each round, the
    run's summary -- kept or not -- equals one computed afresh."""
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input(total_items=1000))
        storage.update_run({"id": run.id, "status": "completed"})
        randomly = random.Random(7)
        errors: list[BaseException] = []

        def writer(seed: int, round_: int) -> None:
            draw = random.Random(seed)
            try:
                for n in range(6):
                    item = f"w{seed}-{draw.randrange(4)}"
                    written = storage.add_result(
                        result_input(run, item, latency=draw.random() * 100),
                        update_counts=draw.random() < 0.5,
                        on_conflict="replace",
                    )
                    storage.add_scores(
                        [{"result_id": written.id, "name": "s", "value": draw.random()}],
                        replace=True,
                    )
                    if n == 3:
                        storage.add_results(
                            [result_input(run, f"b{seed}-{round_}-{k}") for k in range(3)]
                        )
            except BaseException as exc:
                errors.append(exc)

        def keeper() -> None:
            try:
                for _ in range(8):
                    storage.summarize_run(run.id)
                    storage.keep_summaries()
            except BaseException as exc:
                errors.append(exc)

        for round_ in range(4):
            threads = [
                threading.Thread(target=writer, args=(randomly.randrange(10**6), round_))
                for _ in range(3)
            ] + [threading.Thread(target=keeper) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == []
            summary = storage.summarize_run(run.id)
            assert summary == _fresh(storage, run.id)
            storage.keep_summaries()
            assert storage.summarize_run(run.id) == summary


def test_a_read_only_database_summarises_without_keeping(sqlite_url: str) -> None:
    """A finished run's stale summary read through a read-only connection: computed, and
    no error for the write it could not make."""
    with SqlRunsStorage(sqlite_url) as storage:
        run = storage.create_run(run_input())
        (result,) = storage.add_results([result_input(run, 0)])
        storage.update_run({"id": run.id, "status": "completed"})
        storage.add_scores([{"result_id": result.id, "name": "late", "value": 0.5}])
    path = sqlite_url.removeprefix("sqlite:///")
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    with SqlRunsStorage(read_only) as storage:
        assert storage.summarize_run(run.id).scores["late"].mean == 0.5
        assert storage.trend_runs("dataset-1").points[0].scores == {"late": 0.5}
    assert _kept(sqlite_url)[run.id][0] is None


def test_kept_summaries_go_down_and_up_without_loss(empty_url: str) -> None:
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, n, scores={"accuracy": n / 3}) for n in range(3)])
        storage.update_run({"id": run.id, "status": "completed"})
        summary = storage.summarize_run(run.id)
    stored = _stored(empty_url)
    _migrate(empty_url, BEFORE_KEPT, down=True)  # no refusal: nothing is lost
    assert _revision(empty_url) == BEFORE_KEPT
    assert "mastra_dataset_run_summaries" not in table_names(empty_url)
    _migrate(empty_url, "head")
    assert _stored(empty_url) == stored
    assert _kept(empty_url) == {run.id: (None, None)}
    with SqlRunsStorage(empty_url) as storage:
        assert storage.keep_summaries() == 1
        assert storage.summarize_run(run.id) == summary


def test_upgrading_to_kept_summaries_rewrites_no_table(
    empty_url: str,
    statements_seen: Callable[[sa.Engine], object],
) -> None:
    """0006 adds one nullable column to the runs table, in place, and a new table."""
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, n) for n in range(20)])
    _migrate(empty_url, BEFORE_KEPT, down=True)
    engine = create_storage_engine(empty_url)
    try:
        with statements_seen(engine) as seen, migration_transaction(engine) as connection:  # type: ignore[attr-defined]
            command.upgrade(alembic_config(connection), "head")
    finally:
        engine.dispose()
    touching = [sql for sql in seen if "mastra_dataset_runs " in sql + " "]
    assert touching, seen
    runs_statements = [sql for sql in seen if sql.startswith("ALTER TABLE mastra_dataset_runs")]
    assert [sql.split(" ADD COLUMN ")[-1].split()[0] for sql in runs_statements] == ['"summaryKey"']
    assert not [sql for sql in seen if "_alembic_tmp_" in sql or "RENAME" in sql.upper()]
