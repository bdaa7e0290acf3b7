"""update_run (status and failed_count): two statements in one write transaction.

The raw side runs runstore's statements: the locking read of ``updatedAt`` (``FOR UPDATE``
on Postgres; SQLite's ``BEGIN IMMEDIATE`` holds the database), then ``UPDATE ...
RETURNING`` with ``updatedAt`` moved past the value read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from bench.backends import Backend
from bench.data import timestamp
from bench.harness import Call, check_params
from bench.report import Target
from runstore import UpdateRunInput

OPERATION = "update_run (status, failed_count)"
NAMES = ("new_status", "new_failedCount", "new_updatedAt", "run_id")


def measure(b: Backend) -> None:
    storage, numbers = b.storage, count()
    ours, theirs = b.new_run(10), b.new_run(10)
    change = UpdateRunInput(id=ours, status="running", failed_count=1)
    run, caught = b.caught("update_run", lambda s: s.update_run(change))
    *begin, lock, update = caught
    assert [s.sql for s in begin] == ([] if b.postgres else ["BEGIN IMMEDIATE"]), begin
    check_params(lock, b.bind(("run_id",), {"run_id": ours}))
    values = {"new_status": "running", "new_failedCount": 1, "run_id": ours}
    check_params(
        update, b.bind(NAMES, values | {"new_updatedAt": timestamp(b.dialect, run.updated_at)})
    )
    b.show_raw(*(s.sql for s in caught))

    def runstore_side() -> Call:
        failed = next(numbers) % 10
        return lambda: storage.update_run(
            UpdateRunInput(id=ours, status="running", failed_count=failed)
        )

    def raw_side() -> Call:
        failed, lock_params = next(numbers) % 10, b.bind(("run_id",), {"run_id": theirs})

        def call() -> Any:
            with b.transaction():
                (previous,) = b.raw.execute(lock.sql, lock_params).fetchone()
                if isinstance(previous, str):
                    previous = datetime.fromisoformat(previous)
                moment = max(datetime.now(UTC), previous + timedelta(microseconds=1))
                values = {"new_status": "running", "new_failedCount": failed, "run_id": theirs}
                values["new_updatedAt"] = timestamp(b.dialect, moment)
                return b.raw.execute(update.sql, b.bind(NAMES, values)).fetchone()

        return call

    raw_side()()
    stored = storage.get_run_by_id(theirs)
    assert stored is not None
    assert (stored.status, stored.failed_count) == ("running", 0)
    b.measure(OPERATION, runstore_side, raw_side, target=None if b.postgres else Target("ratio", 4))
