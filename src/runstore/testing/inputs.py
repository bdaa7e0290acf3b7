"""Inputs for tests of a storage -- a run and its results with every field filled, a scored
run -- and small readers of what comes back (counters, ids)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from runstore import AddRunResultInput
from runstore import CreateRunInput
from runstore import Run
from runstore import RunResult
from runstore import RunsStorage
from runstore import TargetType

__all__ = [
    "LATENCIES",
    "T0",
    "FrozenClock",
    "counters",
    "ids",
    "result_input",
    "run_input",
    "scored_run",
]


class FrozenClock:
    """A clock that only moves when told, to make timestamps tie."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
"""An instant with every microsecond digit set, to catch any rounding."""


def run_input(**overrides: object) -> CreateRunInput:
    """A run of ten items of ``dataset-1`` against ``agent-1``; any field can be overridden."""
    fields: dict[str, object] = {
        "dataset_id": "dataset-1",
        "dataset_version": T0,
        "target_type": TargetType.AGENT,
        "target_id": "agent-1",
        "total_items": 10,
    }
    fields.update(overrides)
    return CreateRunInput.model_validate(fields)


def result_input(run: Run | str, item: int | str = 0, **overrides: object) -> AddRunResultInput:
    """Item ``item``'s result in ``run``, started ``item`` seconds after :data:`T0` (when
    ``item`` is an int); any field can be overridden."""
    run_id = run if isinstance(run, str) else run.id
    fields: dict[str, object] = {
        "run_id": run_id,
        "item_id": f"item-{item}",
        "item_version": T0,
        "input": {"question": f"q{item}"},
        "output": {"answer": f"a{item}"},
        "expected_output": {"answer": f"a{item}"},
        "latency": 12.5,
        "error": None,
        "started_at": T0 + timedelta(seconds=int(item) if isinstance(item, int) else 0),
        "completed_at": T0 + timedelta(seconds=1),
        "retry_count": 0,
    }
    fields.update(overrides)
    return AddRunResultInput.model_validate(fields)


# -- runs as tests make them, and read them back ---------------------------------------


LATENCIES = [float(value) for value in (120, 7.5, 980, 45, 45, 310, 2.25, 66, 1500, 88, 45, 12)]
"""A run's latencies: ties, a long tail, an even count."""


def scored_run(storage: RunsStorage, run_id: str = "scored") -> list[RunResult]:
    """A run of 12 results with varied latencies, three failures and two scores, one of
    which some results lack."""
    storage.create_run(run_input(id=run_id))
    return storage.add_results(
        [
            result_input(
                run_id,
                n,
                latency=latency,
                error="boom" if n % 4 == 3 else None,
                scores={"accuracy": (n % 5) / 4, **({"fluency": 10.0 - n} if n % 3 else {})},
            )
            for n, latency in enumerate(LATENCIES)
        ]
    )


def counters(run: Run | None) -> tuple[int, int, int]:
    assert run is not None
    return run.result_count, run.succeeded_count, run.failed_count


def ids(results: Iterable[RunResult]) -> list[str]:
    return [result.id for result in results]
