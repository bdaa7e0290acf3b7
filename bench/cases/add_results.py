"""add_results: 10,000 rows of a fresh run in one call, per row.

runstore gets plain dicts (it validates them). The raw side gets its rows encoded before
timing and, in one transaction, runs runstore's count of the rows on their run (``UPDATE
... SET "resultCount" = "resultCount" + ? WHERE id = ? ...``, which proves the run exists),
then ``executemany`` of the INSERT in chunks of 1,000: the statements runstore sends on
SQLite. On Postgres runstore streams the rows with ``COPY`` instead; the raw side runs the
INSERT SQLAlchemy compiles from runstore's table.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any

from bench.backends import Backend
from bench.data import RESULT_KEYS
from bench.data import encode
from bench.data import new_id
from bench.data import result_fields
from bench.harness import Call
from bench.harness import check_params
from bench.report import Target
from runstore.limits import MAX_COUNT

CHUNK = 1000
BUMP = ("results", "summary_key", "run_id", "results_below")
"""The count of the rows on their run, which also clears the key of its kept summary."""


def label(size: int) -> str:
    return f"add_results, {size:,} rows in one call (per row)"


def measure(b: Backend) -> None:
    storage, size, insert = b.storage, b.settings.batch_rows, b.insert_sql

    def batch(run_id: str) -> list[dict[str, Any]]:
        return [result_fields(run_id, number) for number in range(size)]

    run_id = b.new_run(size)
    stored, caught = b.caught("add_results", lambda s: s.add_results(batch(run_id)))
    begin, check, *inserts = caught
    assert begin.sql == b.begin_write, begin
    if b.postgres:  # the rows go by COPY, which engine events do not see
        assert not inserts, inserts
    else:
        assert {s.sql for s in inserts} == {insert}, inserts
        assert [len(s.params) for s in inserts] == [CHUNK] * (size // CHUNK)
        check_params(inserts[0], b.bind(RESULT_KEYS, encode(b.dialect, stored[0].model_dump())))
    bump = {"results": size, "summary_key": None, "run_id": run_id}
    bump |= {"results_below": MAX_COUNT - size}
    check_params(check, b.bind(BUMP, bump))
    b.show_raw(b.begin_write, check.sql, f"{insert}  [executemany]")

    def runstore_side() -> Call:
        rows = batch(b.new_run(size))
        return lambda: storage.add_results(rows)

    def raw_side() -> Call:
        run_id, now = b.new_run(size), datetime.now(UTC)
        counting = b.bind(BUMP, bump | {"run_id": run_id})
        extra = {"created_at": now}
        rows = [
            b.bind(RESULT_KEYS, encode(b.dialect, f | extra | {"id": new_id()}))
            for f in batch(run_id)
        ]

        def call() -> None:
            with b.transaction():
                if b.raw.execute(check.sql, counting).rowcount != 1:
                    raise LookupError(run_id)
                cursor = b.raw.cursor()
                for start in range(0, size, CHUNK):
                    cursor.executemany(insert, rows[start : start + CHUNK])

        return call

    b.measure(
        label(size),
        runstore_side,
        raw_side,
        samples=b.settings.batch_samples,
        warmup=1,
        rounds=2,
        per=size,
        target=Target("ratio", 1.0 if b.postgres else 2.5),
    )
