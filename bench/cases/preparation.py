"""What psycopg's automatic server-side preparation is worth on a direct connection.

runstore turns it off by default -- behind a transaction-pooling pooler a statement
prepared in one server session would be looked for in another -- and keeps it with
``prepared_statements=True``. Each row times a call on a storage as runstore ships (in
the runstore column) against the same call on a storage made with
``prepared_statements=True`` (in the raw column, for this case only): the ratio is what
going without preparation costs. Postgres only (SQLite has no such thing).
"""

from __future__ import annotations

from itertools import count

from bench.backends import Backend
from bench.data import result_fields
from bench.harness import Call
from bench.harness import Prepare
from bench.harness import fixed
from runstore import AddRunResultInput
from runstore import ListRunResultsInput
from runstore import SqlRunsStorage
from runstore import UpdateRunInput

DETAILS = (
    "the raw column here is runstore itself with `prepared_statements=True` (psycopg "
    "prepares a statement on its 5th execution on a connection); the ratio is what running "
    "every statement unprepared, as runstore does by default, costs on a direct connection"
)


def measure(b: Backend, list_run: str) -> None:
    if not b.postgres:
        return
    shipped = b.storage
    with SqlRunsStorage(b.url, prepared_statements=True) as prepared:
        run_id = b.new_run()
        page = ListRunResultsInput(run_id=list_run, pagination={"per_page": 100})
        running = UpdateRunInput(id=run_id, status="running")
        numbers = count()

        def adding(storage: SqlRunsStorage) -> Call:
            fields = result_fields(run_id, next(numbers))
            return lambda: storage.add_result(AddRunResultInput(**fields), update_counts=True)

        def calls(storage: SqlRunsStorage) -> dict[str, Prepare]:
            return {
                "get_run_by_id": fixed(lambda: storage.get_run_by_id(run_id)),
                "list_results, first page of 100": fixed(lambda: storage.list_results(page)),
                "update_run": fixed(lambda: storage.update_run(running)),
            }

        ours, theirs = calls(shipped), calls(prepared)
        for name in ours:
            b.measure(
                f"{name}: unprepared (default) ÷ prepared_statements=True",
                ours[name],
                theirs[name],
                details=DETAILS if name == "get_run_by_id" else "",
            )
        b.measure(
            "add_result: unprepared (default) ÷ prepared_statements=True",
            lambda: adding(shipped),
            lambda: adding(prepared),
        )
