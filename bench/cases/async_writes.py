"""The asyncio adapter: one add_result at a time, and 16 concurrent writers.

* **Single add_result, async vs blocking**: the asyncio adapter awaiting one
  ``add_result`` after another against the blocking adapter's ``add_result`` on the same
  database (the "raw" column is the blocking adapter here).
* **16 concurrent writers** (each result its own transaction): the asyncio adapter with
  16 tasks against the blocking adapter with 16 threads, and, on Postgres, against raw
  psycopg ``AsyncConnection`` s (16 tasks, a connection each) running runstore's INSERT.
  Each row is the time per result of the whole fan-out (wall time / results).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC
from datetime import datetime
from itertools import count
from typing import Any

import psycopg

from bench.backends import Backend
from bench.data import encode
from bench.data import new_id
from bench.data import result_fields
from bench.report import Measurement
from bench.report import Target
from runstore import AddRunResultInput
from runstore import AsyncSqlRunsStorage

SINGLE = "add_result, asyncio adapter (raw column: the blocking adapter)"
WRITERS = 16
FAN_OUT = f"{WRITERS} concurrent writers, asyncio adapter"
ROUNDS = 3


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def measure(b: Backend) -> None:
    asyncio.run(_measure(b))


async def _measure(b: Backend) -> None:
    numbers = count()
    async with AsyncSqlRunsStorage(b.url) as storage:
        ours, theirs = b.new_run(), b.new_run()
        samples = b.settings.single_samples

        async def one_by_one() -> tuple[float, float]:
            """Alternately, so that both sides see the same moments of a busy machine."""
            times: tuple[list[float], list[float]] = ([], [])
            for _ in range(samples):
                fields = AddRunResultInput(**result_fields(ours, next(numbers)))
                started = time.perf_counter()
                await storage.add_result(fields)
                times[0].append(time.perf_counter() - started)
                fields = AddRunResultInput(**result_fields(theirs, next(numbers)))
                started = time.perf_counter()
                b.storage.add_result(fields)
                times[1].append(time.perf_counter() - started)
            first, second = (sorted(side)[len(side) // 2] for side in times)
            return first, second

        for _ in range(b.settings.warmup):  # both sides warm
            await storage.add_result(AddRunResultInput(**result_fields(ours, next(numbers))))
            b.storage.add_result(AddRunResultInput(**result_fields(theirs, next(numbers))))
        first, second = await one_by_one()
        b.add(
            Measurement(
                SINGLE,
                b.label,
                "us",
                first,
                second,
                Target("ratio", 1.3 if b.postgres else 2.0),
                details="the two sides' calls alternate",
            )
        )

        per_writer = max(b.settings.single_samples // 4, 25)
        total = WRITERS * per_writer

        async def fan_out() -> float:
            run = b.new_run()

            async def writer() -> None:
                for _ in range(per_writer):
                    fields = result_fields(run, next(numbers))
                    await storage.add_result(AddRunResultInput(**fields), update_counts=True)

            started = time.perf_counter()
            await asyncio.gather(*(writer() for _ in range(WRITERS)))
            return (time.perf_counter() - started) / total

        def threads() -> float:
            run = b.new_run()

            def writer() -> None:
                for _ in range(per_writer):
                    fields = result_fields(run, next(numbers))
                    b.storage.add_result(AddRunResultInput(**fields), update_counts=True)

            workers = [threading.Thread(target=writer) for _ in range(WRITERS)]
            started = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            return (time.perf_counter() - started) / total

        # Rounds alternate the sides, each side's median round counts: one fan-out is
        # short, and the database's commits dominate its time.
        rounds: tuple[list[float], list[float], list[float]] = ([], [], [])
        for _ in range(ROUNDS):
            rounds[0].append(await fan_out())
            rounds[1].append(threads())
            if b.postgres:
                rounds[2].append(await _raw_fan_out(b, storage, per_writer, numbers))
        ours_fan, theirs_fan = _median(rounds[0]), _median(rounds[1])
        total_text = f"{total:,} results, median of {ROUNDS} alternating rounds"
        b.add(
            Measurement(
                f"{FAN_OUT} (raw column: blocking adapter, {WRITERS} threads)",
                b.label,
                "us",
                ours_fan,
                theirs_fan,
                Target("ratio", 1.0),
                details=f"time per result over {total_text}, each its own transaction",
            )
        )
        if b.postgres:
            b.add(
                Measurement(
                    f"{FAN_OUT} (raw column: psycopg AsyncConnection, {WRITERS} tasks)",
                    b.label,
                    "us",
                    ours_fan,
                    _median(rounds[2]),
                    Target("ratio", 1.25),  # the async adapter at 0.8x raw results/s or more
                    details=f"time per result over {total_text}",
                )
            )


async def _raw_fan_out(
    b: Backend, storage: AsyncSqlRunsStorage, per_writer: int, numbers: Any
) -> float:
    """16 tasks on 16 psycopg async connections, each result the statements runstore sends
    for a counted add_result (on Postgres one statement, the insert and the counter update
    together), with the parameters it sent but a new row's values."""
    run = b.new_run()
    sent: list[tuple[str, Any]] = []
    catch = _Catch(sent)
    await storage.add_result(AddRunResultInput(**result_fields(run, next(numbers))))
    catch.start(storage)
    await storage.add_result(
        AddRunResultInput(**result_fields(run, next(numbers))), update_counts=True
    )
    catch.stop(storage)

    async def writer(connection: psycopg.AsyncConnection[Any]) -> None:
        for _ in range(per_writer):
            fields = result_fields(run, next(numbers))
            now = datetime.now(UTC)
            values = encode(b.dialect, fields | {"id": new_id(), "created_at": now})
            # The statement names a result's values after their columns, prefixed or not.
            fresh = values | {f"result_{name}": value for name, value in values.items()}
            fresh["now"] = now
            async with connection.transaction() if len(sent) > 1 else _alone():
                for sql, params in sent:
                    await connection.execute(sql, {k: fresh.get(k, v) for k, v in params.items()})

    connections = [
        await psycopg.AsyncConnection.connect(
            b.raw_target, autocommit=True, options="-c TimeZone=UTC"
        )
        for _ in range(WRITERS)
    ]
    try:
        started = time.perf_counter()
        await asyncio.gather(*(writer(connection) for connection in connections))
        return (time.perf_counter() - started) / (WRITERS * per_writer)
    finally:
        for connection in connections:
            await connection.close()


@contextlib.asynccontextmanager
async def _alone() -> AsyncIterator[None]:
    yield  # a single statement is a transaction of its own (autocommit)


class _Catch:
    """The statements (SQL and parameters) a storage sends, while started."""

    def __init__(self, sent: list[tuple[str, Any]]) -> None:
        self.sent = sent

    def _listen(self, *arguments: Any) -> None:
        self.sent.append((arguments[2], arguments[3]))

    def start(self, storage: AsyncSqlRunsStorage) -> None:
        from sqlalchemy import event

        event.listen(storage.engine.sync_engine, "before_cursor_execute", self._listen)

    def stop(self, storage: AsyncSqlRunsStorage) -> None:
        from sqlalchemy import event

        event.remove(storage.engine.sync_engine, "before_cursor_execute", self._listen)
