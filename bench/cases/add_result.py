"""add_result: one row in its own transaction, into a run of each side's own.

The row is counted on its run in the same transaction. On Postgres runstore sends one
statement in autocommit -- ``WITH counting AS (UPDATE runs ... RETURNING id) INSERT ...
SELECT ... FROM counting`` -- and the raw side runs it, checking the row count as runstore
does. On SQLite runstore begins a write transaction, adds 1 to the run's result count
(``UPDATE ... WHERE id = ?``, which proves the run exists, and clears the key of its kept
summary) and inserts the row; the raw side
runs the same three statements and commits. Rows are encoded before timing.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from itertools import count
from typing import Any

from bench.backends import Backend
from bench.data import RESULT_KEYS
from bench.data import check_read_back
from bench.data import encode
from bench.data import new_id
from bench.data import result_fields
from bench.harness import Call
from bench.harness import check_params
from bench.report import Target
from runstore import AddRunResultInput
from runstore.limits import MAX_COUNT

OPERATION = "add_result (one row, own transaction)"
BUMP = ("results", "summary_key", "run_id", "results_below")
"""The run's result count grows by ``results`` if it stays at most MAX_COUNT, and its kept
summary's key is cleared (``summary_key`` None)."""
COUNTING = (*(f"result_{name}" for name in RESULT_KEYS), "results", "param_1", *BUMP[2:])
"""Postgres: the row's columns, then the count's parameters, by name (SQLAlchemy names the
cleared key ``param_1`` in the data-modifying ``WITH``)."""


def measure(b: Backend) -> None:
    storage, numbers = b.storage, count()
    ours, theirs = b.new_run(), b.new_run()
    fields = result_fields(ours, next(numbers))
    stored, caught = b.caught("add_result", lambda s: s.add_result(AddRunResultInput(**fields)))

    def params(run_id: str, row: dict[str, Any]) -> tuple[Any, Any]:
        """The count's and the row's parameters (Postgres: one statement's)."""
        bump = {"results": 1, "run_id": run_id, "results_below": MAX_COUNT - 1}
        bump |= {"summary_key": None, "param_1": None}
        if b.postgres:
            return None, b.bind(COUNTING, {f"result_{k}": v for k, v in row.items()} | bump)
        return b.bind(BUMP, bump), b.bind(RESULT_KEYS, row)

    bump_params, row_params = params(ours, encode(b.dialect, stored.model_dump()))
    if b.postgres:
        (insert,) = caught
        bump = insert
    else:
        begin, bump, insert = caught
        assert begin.sql == b.begin_write, begin
        check_params(bump, bump_params)
        b.show_raw(b.begin_write, bump.sql)
    check_params(insert, row_params)
    b.show_raw(insert.sql)

    def runstore_side() -> Call:
        fields = result_fields(ours, next(numbers))
        return lambda: storage.add_result(AddRunResultInput(**fields))

    def raw_side(result_id: str = "") -> Call:
        fields = result_fields(theirs, next(numbers))
        now = datetime.now(UTC)
        row = encode(b.dialect, fields | {"id": result_id or new_id(), "created_at": now})
        counting, values = params(theirs, row)

        def call() -> None:
            if b.postgres:
                if b.raw.execute(insert.sql, values).rowcount != 1:
                    raise LookupError(theirs)
                return
            with b.transaction():
                if b.raw.execute(bump.sql, counting).rowcount != 1:
                    raise LookupError(theirs)
                b.raw.execute(insert.sql, values)

        return call

    raw_side(result_id := new_id())()
    check_read_back(storage.get_result_by_id(result_id), result_fields(theirs, 1))
    b.measure(OPERATION, runstore_side, raw_side, target=Target("ratio", 1.3 if b.postgres else 4))
