"""runstore in one file: record a run of a small dataset in SQLite, then page through it.

python examples/quickstart.py [DATABASE_URL]     # default: sqlite:///quickstart.db
"""

from __future__ import annotations

import random
import sys
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from runstore import AddRunResultInput
from runstore import CreateRunInput
from runstore import ListRunResultsInput
from runstore import RunStatus
from runstore import SqlRunsStorage
from runstore import StoragePagination
from runstore import TargetType
from runstore import UpdateRunInput

url = sys.argv[1] if len(sys.argv) > 1 else "sqlite:///quickstart.db"
dataset = [{"question": f"What is {n} + {n}?", "answer": 2 * n} for n in range(12)]

with SqlRunsStorage(url) as storage:  # entering runs init(): migrates the schema to head
    run = storage.create_run(
        CreateRunInput(
            dataset_id="arithmetic",
            dataset_version=datetime(2026, 11, 1, tzinfo=UTC),
            target_type=TargetType.AGENT,
            target_id="adder-v1",
            total_items=len(dataset),
        )
    )
    started = datetime.now(UTC)
    storage.update_run(UpdateRunInput(id=run.id, status=RunStatus.RUNNING, started_at=started))

    succeeded = failed = 0
    for n, item in enumerate(dataset):
        begin = started + timedelta(milliseconds=40 * n)
        answer = item["answer"] if random.random() > 0.2 else None
        error = None if answer is not None else "agent gave no answer"
        storage.add_result(
            AddRunResultInput(
                run_id=run.id,
                item_id=f"item-{n}",
                item_version=datetime(2026, 11, 1, tzinfo=UTC),
                input={"question": item["question"]},
                output=answer,
                expected_output=item["answer"],
                latency=35.0,
                error=error,
                started_at=begin,
                completed_at=begin + timedelta(milliseconds=35),
            )
        )
        succeeded, failed = succeeded + (error is None), failed + (error is not None)

    run = storage.update_run(
        UpdateRunInput(
            id=run.id,
            status=RunStatus.COMPLETED,
            succeeded_count=succeeded,
            failed_count=failed,
            completed_at=datetime.now(UTC),
        )
    )
    print(f"run {run.id}: {run.status}, {run.succeeded_count} ok, {run.failed_count} failed")

    page = 0
    while True:
        listing = storage.list_results(
            ListRunResultsInput(run_id=run.id, pagination=StoragePagination(page=page, per_page=5))
        )
        print(f"-- page {page} of results ({listing.pagination.total} in all)")
        for result in listing.results:
            verdict = result.error or ("ok" if result.output == result.expected_output else "wrong")
            question = result.input["question"]
            print(f"   {result.item_id:8} {question:18} -> {result.output!s:5} {verdict}")
        if not listing.pagination.has_more:
            break
        page += 1
