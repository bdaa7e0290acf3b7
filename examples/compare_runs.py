"""Did the new prompt beat the old one, and on which items? Two runs, scored and compared.

python examples/compare_runs.py [DATABASE_URL]     # default: sqlite:///compare.db
"""

from __future__ import annotations

import sys
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from runstore import AddRunResultInput
from runstore import CreateRunInput
from runstore import SqlRunsStorage
from runstore import TargetType

url = sys.argv[1] if len(sys.argv) > 1 else "sqlite:///compare.db"
questions = [f"q{n}" for n in range(20)]


def record(storage: SqlRunsStorage, prompt: str, skill: float) -> str:
    """A run of the dataset against one prompt: latency, errors and an accuracy score."""
    run = storage.create_run(
        CreateRunInput(
            dataset_id="support-faq",
            dataset_version=datetime(2026, 11, 1, tzinfo=UTC),
            target_type=TargetType.AGENT,
            target_id=prompt,
            total_items=len(questions),
        )
    )
    start = datetime.now(UTC)
    storage.add_results(
        [
            AddRunResultInput(
                run_id=run.id,
                item_id=question,
                item_version=datetime(2026, 11, 1, tzinfo=UTC),
                input={"question": question},
                output={"answer": f"answer to {question}"},
                latency=100 + (n * 37) % 400 / skill,
                error="timeout" if (n * skill) % 7 < 1 else None,
                started_at=start + timedelta(seconds=n),
                completed_at=start + timedelta(seconds=n + 1),
                scores={"accuracy": min(1.0, ((n * 13) % 10) / 10 * skill)},
            )
            for n, question in enumerate(questions)
        ],
        update_counts=True,
    )
    return run.id


with SqlRunsStorage(url) as storage:
    baseline = record(storage, "prompt-v1", skill=1.0)
    candidate = record(storage, "prompt-v2", skill=1.3)

    summary = storage.summarize_run(candidate)
    print(f"candidate: {summary.results} results, error rate {summary.error_rate:.0%}")
    print(f"latency p50 {summary.latency.p50:.0f} ms, p99 {summary.latency.p99:.0f} ms")
    print(f"accuracy mean {summary.scores['accuracy'].mean:.3f}")

    comparison = storage.compare_runs(baseline, candidate)
    accuracy = comparison.scores["accuracy"]
    print(
        f"{comparison.items_in_both} items in both: accuracy {accuracy.mean_delta:+.3f} "
        f"({accuracy.improved} improved, {accuracy.regressed} regressed), "
        f"errors fixed {comparison.errors_fixed}, introduced {comparison.errors_introduced}"
    )
    for item in storage.iter_item_comparisons(baseline, candidate, only="regressed"):
        print(f"regressed: {item.item_id} {item.score_deltas}")
