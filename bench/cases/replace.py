"""add_results with ``on_conflict="replace"``: 10,000 rows whose (item, repetition) are all
already stored in their run, per row.

Each sample writes the same items of one run again, with other latencies and errors, so
every row replaces a stored one. runstore locks the run, reads which places are taken,
deletes the stored rows' scores and rows, and writes the batch (``COPY`` on Postgres), then
moves the run's ``updatedAt``; the replaced results keep their ids. The target holds it
against runstore's own ``add_results`` of 10,000 new rows, measured above in the same
run. The raw side is what a driver user would write for the rows alone: in one
transaction, ``executemany`` of ``INSERT ... ON CONFLICT ("runId", "itemId", repetition)
DO UPDATE SET`` every other column, in chunks of 1,000, rows encoded before timing.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from itertools import count
from typing import Any

from bench.backends import Backend
from bench.cases import add_results
from bench.data import RESULT_COLUMNS
from bench.data import RESULT_KEYS
from bench.data import encode
from bench.data import new_id
from bench.data import result_fields
from bench.harness import Call
from bench.report import Target

CHUNK = 1000
KEY = ("runId", "itemId", "repetition")


def label(size: int) -> str:
    return f'add_results, {size:,} rows all replaced (on_conflict="replace", per row)'


def measure(b: Backend) -> None:
    storage, size, shifts = b.storage, b.settings.batch_rows, count(1)

    def batch(run_id: str, shift: int) -> list[dict[str, Any]]:
        return [result_fields(run_id, number, shift) for number in range(size)]

    ours, theirs = b.new_run(size), b.new_run(size)
    stored = storage.add_results(batch(ours, 0))
    storage.add_results(batch(theirs, 0))
    changed = {column: f'"{column}" = excluded."{column}"' for column in RESULT_COLUMNS}
    for column in ("id", *KEY):
        del changed[column]
    upsert = (
        f"{b.insert_sql} ON CONFLICT ({', '.join(f'{c}' for c in map(_quoted, KEY))}) "
        f"DO UPDATE SET {', '.join(changed.values())}"
    )
    b.show_raw(upsert)

    replaced = storage.add_results(batch(ours, next(shifts)), on_conflict="replace")
    assert [r.id for r in replaced] == [r.id for r in stored]
    run = storage.get_run_by_id(ours)
    assert run is not None
    assert run.result_count == size, run

    def runstore_side() -> Call:
        rows = batch(ours, next(shifts))
        return lambda: storage.add_results(rows, on_conflict="replace")

    def raw_side() -> Call:
        now = datetime.now(UTC)
        rows = [
            b.bind(RESULT_KEYS, encode(b.dialect, f | {"id": new_id(), "created_at": now}))
            for f in batch(theirs, next(shifts))
        ]

        def call() -> None:
            with b.transaction():
                cursor = b.raw.cursor()
                for start in range(0, size, CHUNK):
                    cursor.executemany(upsert, rows[start : start + CHUNK])

        return call

    raw_side()()
    counted = b.raw.execute(
        f"SELECT count(*) FROM {_quoted('mastra_dataset_run_results')} WHERE "
        f'"runId" = {"%(run)s" if b.postgres else ":run"}',
        {"run": theirs},
    ).fetchone()
    assert counted[0] == size, counted
    plain = [
        r.runstore
        for r in b.measurements
        if r.operation == add_results.label(size) and r.backend == b.label
    ]
    details = "the raw side: a hand-written upsert of the rows"
    if plain:
        details += f"; runstore's add_results of {size:,} new rows: {plain[0] * 1e6:.1f} µs a row"
    b.measure(
        label(size),
        runstore_side,
        raw_side,
        samples=b.settings.batch_samples,
        warmup=0,  # each side has written once already, above
        rounds=2,
        per=size,
        target=Target(
            "relative",
            2,
            add_results.label(size),
            f"runstore's add_results of {size:,} new rows",
        )
        if b.postgres
        else None,
        details=details,
    )


def _quoted(name: str) -> str:
    return f'"{name}"'
