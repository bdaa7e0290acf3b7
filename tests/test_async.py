"""The asyncio adapter in an event loop: cancellation, timeouts, many tasks at once.

(The whole contract runs against it in ``test_contract.py``, through a blocking bridge.)
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy import event

from runstore import AsyncInMemoryRunsStorage
from runstore import AsyncRunsStorage
from runstore import AsyncSqlRunsStorage
from runstore import InMemoryRunsStorage
from runstore import InvalidInputError
from runstore import ListRunResultsInput
from runstore import Run
from runstore import RunsStorage
from runstore import SqlRunsStorage
from runstore import StorageClosedError
from runstore.sql import results
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

TASKS, RESULTS_PER_TASK = 200, 50
DEFAULT_POOL_SIZE = 10


@pytest.fixture
def url(empty_url: str) -> str:
    return empty_url


async def stored(storage: AsyncRunsStorage, run_id: str) -> int:
    return (await storage.list_results(ListRunResultsInput(run_id=run_id))).pagination.total


class Lent:
    """How many of the engine's connections are out of its pool (whatever the pool): the
    pool's slots lent since this began watching and not handed back. By slot, not by a
    counter: a cancelled call's connection may be handed back by its shielded clean-up
    after the call raised, and a slot lent before this began may come back to it."""

    def __init__(self, storage: AsyncSqlRunsStorage) -> None:
        self.slots: set[int] = set()
        event.listen(storage.engine.sync_engine, "checkout", self._checkout)
        event.listen(storage.engine.sync_engine, "checkin", self._checkin)

    def _checkout(self, _connection: object, record: object, *_: object) -> None:
        self.slots.add(id(record))

    def _checkin(self, _connection: object, record: object, *_: object) -> None:
        self.slots.discard(id(record))

    async def now(self) -> int:
        for _ in range(20):  # let the cancelled call's shielded clean-up finish
            if not self.slots:
                break
            await asyncio.sleep(0.05)
        return len(self.slots)


class Opened:
    """How many connections an engine has opened."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "connect", self._connect)

    def _connect(self, *_: object) -> None:
        self.count += 1


def test_a_cancelled_batch_writes_nothing_and_the_storage_goes_on(url: str) -> None:
    async def main() -> None:
        async with AsyncSqlRunsStorage(url) as storage:
            run = await storage.create_run(run_input())
            lent = Lent(storage)
            batch = [result_input(run, n) for n in range(30_000)]
            task = asyncio.create_task(storage.add_results(batch, update_counts=True))
            await asyncio.sleep(0.3)  # the batch is being written
            assert not task.done(), "the batch finished before it could be cancelled"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await stored(storage, run.id) == 0
            assert (await storage.get_run_by_id(run.id)).succeeded_count == 0  # type: ignore[union-attr]
            assert await lent.now() == 0
            # The storage is as good as new: the same batch goes in whole.
            written = await storage.add_results(batch[:100], update_counts=True)
            assert len(written) == 100
            assert await stored(storage, run.id) == 100

    asyncio.run(main())


def test_a_timeout_around_a_call_writes_nothing(url: str) -> None:
    async def main() -> None:
        async with AsyncSqlRunsStorage(url) as storage:
            run = await storage.create_run(run_input())
            lent = Lent(storage)
            batch = [result_input(run, n) for n in range(30_000)]
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await storage.add_results(batch)
            assert await stored(storage, run.id) == 0
            assert await lent.now() == 0
            await storage.add_result(result_input(run, 0))
            assert await stored(storage, run.id) == 1

    asyncio.run(main())


def test_many_tasks_at_once_lose_nothing_within_the_default_pool(url: str) -> None:
    # The default pool's size; its wait for a connection lengthened, as 200 tasks queue on
    # ten connections and a busy machine may keep one waiting past the default 30 s.
    waiting = {"pool_timeout": 600} if url.startswith("postgresql") else {}

    async def main() -> None:
        async with AsyncSqlRunsStorage(url, **waiting) as storage:
            run = await storage.create_run(run_input(total_items=TASKS * RESULTS_PER_TASK))
            opened = Opened(storage.engine.sync_engine)

            async def task(number: int) -> None:
                for n in range(RESULTS_PER_TASK):
                    error = "failed" if (number + n) % 7 == 0 else None
                    item = f"{number}-{n}"
                    await storage.add_result(
                        result_input(run, item, error=error), update_counts=True
                    )

            await asyncio.gather(*(task(number) for number in range(TASKS)))
            counted = await storage.get_run_by_id(run.id)
            assert counted is not None
            failed = sum(
                (number + n) % 7 == 0 for number in range(TASKS) for n in range(RESULTS_PER_TASK)
            )
            assert (counted.result_count, counted.succeeded_count, counted.failed_count) == (
                TASKS * RESULTS_PER_TASK,
                TASKS * RESULTS_PER_TASK - failed,
                failed,
            )
            items = {result.item_id async for result in storage.iter_results(run.id)}
            assert len(items) == TASKS * RESULTS_PER_TASK
            # The pool's connections stayed open: none was opened for a single call.
            assert opened.count <= DEFAULT_POOL_SIZE

    asyncio.run(main())


def test_async_iterators_stream_every_row(url: str) -> None:
    async def main() -> None:
        async with AsyncSqlRunsStorage(url) as storage:
            run = await storage.create_run(run_input())
            await storage.add_results([result_input(run, n) for n in range(25)])
            seen = [r.item_id async for r in storage.iter_results(run.id, batch_size=4)]
            assert seen == [f"item-{n}" for n in range(25)]
            assert [r.id async for r in storage.iter_runs(batch_size=1)] == [run.id]

    asyncio.run(main())


def test_a_closed_async_storage_refuses_use(url: str) -> None:
    async def main() -> None:
        storage = AsyncSqlRunsStorage(url)
        await storage.init()
        await storage.close()
        with pytest.raises(StorageClosedError):
            await storage.get_run_by_id("x")

    asyncio.run(main())


def test_the_async_memory_adapter_keeps_the_same_contract() -> None:
    async def main() -> None:
        async with AsyncInMemoryRunsStorage() as storage:
            run = await storage.create_run(run_input())
            await storage.add_result(result_input(run, 0), update_counts=True)
            assert (await storage.recount_run(run.id)).succeeded_count == 1
            assert [r.item_id async for r in storage.iter_results(run.id)] == ["item-0"]

    asyncio.run(main())


def test_async_documentation_is_the_blocking_one() -> None:
    assert AsyncRunsStorage.add_results.__doc__ == RunsStorage.add_results.__doc__
    assert AsyncRunsStorage.iter_results.__doc__ == RunsStorage.iter_results.__doc__
    assert AsyncRunsStorage.iter_result_batches.__doc__ == RunsStorage.iter_result_batches.__doc__


@pytest.mark.parametrize(
    ("blocking", "asynchronous"),
    [
        (RunsStorage, AsyncRunsStorage),
        (SqlRunsStorage, AsyncSqlRunsStorage),
        (InMemoryRunsStorage, AsyncInMemoryRunsStorage),
    ],
)
def test_every_blocking_call_has_its_async_twin(blocking: type, asynchronous: type) -> None:
    def public(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_")}

    assert public(blocking) <= public(asynchronous)


def test_an_unsupported_url_is_refused_as_in_the_blocking_adapter() -> None:
    with pytest.raises(InvalidInputError, match="not supported"):
        AsyncSqlRunsStorage("mysql://nowhere/db")


def test_both_adapters_take_either_sqlite_url(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path}/a.db", f"sqlite+aiosqlite:///{tmp_path}/b.db"):
        with SqlRunsStorage(url) as blocking:
            run = blocking.create_run(run_input())

        async def read(url: str, run_id: str) -> Run | None:
            async with AsyncSqlRunsStorage(url) as storage:
                return await storage.get_run_by_id(run_id)

        assert asyncio.run(read(url, run.id)) == run


def test_the_default_pool_keeps_its_connections_under_more_threads_than_it_holds(
    url: str,
) -> None:
    """The blocking adapter's pool is the asyncio adapter's: 32 threads share ten
    connections, which stay open, and every row and count is kept."""
    threads, per_thread = 32, 20
    with SqlRunsStorage(url) as storage:
        run = storage.create_run(run_input(total_items=threads * per_thread))
        opened = Opened(storage.engine)

        def write(number: int) -> None:
            for n in range(per_thread):
                storage.add_result(result_input(run, f"{number}-{n}"), update_counts=True)

        workers = [threading.Thread(target=write, args=(number,)) for number in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        counted = storage.get_run_by_id(run.id)
        assert counted is not None
        assert counted.succeeded_count == counted.result_count == threads * per_thread
        assert opened.count <= DEFAULT_POOL_SIZE


def test_a_cancelled_export_leaves_no_file_and_the_old_one_intact(url: str, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    destination = exports / "results.jsonl"
    destination.write_text("the previous export\n")

    async def main() -> None:
        async with AsyncSqlRunsStorage(url) as storage:
            run = await storage.create_run(run_input())
            await storage.add_results([result_input(run, n) for n in range(3_000)])
            written: list[int] = []

            def cancel_after_the_first_batch(count: int) -> None:
                written.append(count)
                if len(written) == 1:
                    export.cancel()

            export = asyncio.create_task(
                storage.export_results(
                    run.id, destination, batch_size=500, progress=cancel_after_the_first_batch
                )
            )
            with pytest.raises(asyncio.CancelledError):
                await export
            assert written == [500]
            # Under a timeout too, and the storage goes on exporting.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0):
                    await storage.export_results(run.id, destination, format="csv")
            assert await storage.export_results(run.id, exports / "whole.jsonl") == 3_000

    asyncio.run(main())
    assert destination.read_text() == "the previous export\n"
    assert sorted(path.name for path in exports.iterdir()) == ["results.jsonl", "whole.jsonl"]
    assert len((exports / "whole.jsonl").read_text().splitlines()) == 3_000


def test_the_async_export_reads_stored_values_not_models(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("a model was built for an exported row")

    async def main() -> None:
        async with AsyncSqlRunsStorage(url) as storage:
            run = await storage.create_run(run_input())
            await storage.add_results(
                [result_input(run, n, scores={"s": n / 3}) for n in range(25)]
            )
            expected = [result.id async for result in storage.iter_results(run.id)]
            monkeypatch.setattr(results, "results_from", refuse)
            batches = [b async for b in storage.iter_result_batches(run.id, batch_size=10)]
            assert [i for b in batches for i in b.column("id").to_pylist()] == expected
            assert (
                await storage.export_results(run.id, tmp_path / "out.parquet", format="parquet")
                == 25
            )

    asyncio.run(main())
