"""Inputs for tests of a storage: a run and its results with every field filled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runstore import AddRunResultInput, CreateRunInput, Run, TargetType

__all__ = ["T0", "FrozenClock", "result_input", "run_input"]


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
