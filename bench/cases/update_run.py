"""update_run (status and failed_count): one statement in its own transaction.

runstore sends ``UPDATE ... SET ..., "updatedAt" = now WHERE id = ? AND "updatedAt" < now
RETURNING ...`` -- the stored time only moves forward -- and locks and reads first only when
that finds no row (a clock behind the stored time). The raw side runs the same statement
in autocommit, with its values encoded before timing.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from itertools import count
from typing import Any

from bench.backends import Backend
from bench.data import timestamp
from bench.harness import Call
from bench.harness import check_params
from bench.report import Target
from runstore import UpdateRunInput

OPERATION = "update_run (status, failed_count)"
NAMES = (
    "new_status",
    "new_failed_count",
    "new_updated_at",
    "summary_key",
    "run_id",
    "new_updated_at",
)
"""A new status also clears the key of the run's kept summary (``summary_key`` None)."""


def measure(b: Backend) -> None:
    storage, numbers = b.storage, count()
    ours, theirs = b.new_run(10), b.new_run(10)
    change = UpdateRunInput(id=ours, status="running", failed_count=1)
    run, (update,) = b.caught("update_run", lambda s: s.update_run(change))
    values = {"new_status": "running", "new_failed_count": 1, "run_id": ours, "summary_key": None}
    moment = timestamp(b.dialect, run.updated_at)
    check_params(update, b.bind(NAMES, values | {"new_updated_at": moment}))
    b.show_raw(update.sql)

    def runstore_side() -> Call:
        failed = next(numbers) % 10
        return lambda: storage.update_run(
            UpdateRunInput(id=ours, status="running", failed_count=failed)
        )

    def raw_side() -> Call:
        values = {"new_status": "running", "new_failed_count": next(numbers) % 10}
        values |= {"summary_key": None}
        values |= {"run_id": theirs, "new_updated_at": timestamp(b.dialect, datetime.now(UTC))}
        params = b.bind(NAMES, values)

        def call() -> Any:
            row = b.raw.execute(update.sql, params).fetchone()
            if row is None:
                raise LookupError(theirs)
            return row

        return call

    raw_side()()
    stored = storage.get_run_by_id(theirs)
    assert stored is not None
    assert (stored.status, stored.failed_count) == ("running", 0)
    b.measure(OPERATION, runstore_side, raw_side, target=None if b.postgres else Target("ratio", 4))
