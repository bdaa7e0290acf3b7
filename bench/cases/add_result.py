"""add_result: one row in its own transaction, into a run of each side's own.

The raw side runs runstore's ``INSERT ... SELECT ... WHERE EXISTS (run)`` in autocommit,
with the row encoded before timing, and checks the row count as runstore does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

from bench.backends import Backend
from bench.data import RESULT_COLUMNS, check_read_back, encode, new_id, result_fields
from bench.harness import Call, check_params
from bench.report import Target
from runstore import AddRunResultInput

OPERATION = "add_result (one row, own transaction)"
NAMES = (*RESULT_COLUMNS, "runId")


def measure(b: Backend) -> None:
    storage, numbers = b.storage, count()
    ours, theirs = b.new_run(), b.new_run()
    fields = result_fields(ours, next(numbers))
    stored, (insert,) = b.caught("add_result", lambda s: s.add_result(AddRunResultInput(**fields)))
    check_params(insert, b.bind(NAMES, encode(b.dialect, stored.model_dump())))
    b.show_raw(insert.sql)

    def runstore_side() -> Call:
        fields = result_fields(ours, next(numbers))
        return lambda: storage.add_result(AddRunResultInput(**fields))

    def raw_side(result_id: str = "") -> Call:
        fields = result_fields(theirs, next(numbers))
        now = datetime.now(UTC)
        params = b.bind(
            NAMES, encode(b.dialect, fields | {"id": result_id or new_id(), "created_at": now})
        )

        def call() -> None:
            if b.raw.execute(insert.sql, params).rowcount != 1:
                raise LookupError(theirs)

        return call

    raw_side(result_id := new_id())()
    check_read_back(storage.get_result_by_id(result_id), result_fields(theirs, 1))
    b.measure(OPERATION, runstore_side, raw_side, target=Target("ratio", 1.3 if b.postgres else 4))
