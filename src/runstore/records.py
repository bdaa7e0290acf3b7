"""What a call stores: the run or results made from validated inputs, and their counts.

Every adapter builds its records here, so ids, timestamps and counters come out the same
from SQLite, Postgres and memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from pydantic import TypeAdapter

from runstore.clock import new_id
from runstore.errors import DuplicateError, InvalidInputError
from runstore.limits import MAX_COUNT
from runstore.models import (
    AddRunResultInput,
    AddScoreInput,
    CreateRunInput,
    Run,
    RunResult,
    RunStatus,
    Score,
)

__all__ = [
    "CREATION_FIELDS",
    "count_deltas",
    "counter_overflow",
    "creation_differences",
    "existing_run",
    "first_position",
    "new_run",
    "recorded_results",
    "recorded_scores",
    "scores_of_results",
]

_SCORES = TypeAdapter(list[Score])

_RESULTS = TypeAdapter(list[RunResult])


def new_run(input: CreateRunInput, now: datetime) -> Run:
    """The run that creating ``input`` at ``now`` stores (id generated if absent)."""
    return Run(
        id=input.id or new_id(),
        dataset_id=input.dataset_id,
        dataset_version=input.dataset_version,
        target_type=input.target_type,
        target_id=input.target_id,
        status=RunStatus.PENDING,
        total_items=input.total_items,
        succeeded_count=0,
        failed_count=0,
        started_at=None,
        completed_at=None,
        created_at=now,
        updated_at=now,
        result_count=0,
        name=input.name,
        description=input.description,
        tags=input.tags,
        metadata=input.metadata,
    )


CREATION_FIELDS = ("dataset_id", "dataset_version", "target_type", "target_id", "total_items")
"""The fields a run is created with (besides its id) that identify it. Its name,
description, tags and metadata are not among them: they may have been edited since."""


def creation_differences(input: CreateRunInput, run: Run) -> list[str]:
    """The creation fields in which a stored run differs from ``input``."""
    return [name for name in CREATION_FIELDS if getattr(input, name) != getattr(run, name)]


def existing_run(input: CreateRunInput, run: Run) -> Run:
    """``run``, stored with ``input.id``, if it was created from the same fields."""
    differences = creation_differences(input, run)
    if differences:
        described = "; ".join(
            f"{name} is {getattr(run, name)!r:.80}, not {getattr(input, name)!r:.80}"
            for name in differences
        )
        raise DuplicateError(f"run {run.id!r} already exists with other fields: {described}")
    return run


def recorded_results(inputs: Sequence[AddRunResultInput], now: datetime) -> list[RunResult]:
    """The results that recording ``inputs`` at ``now`` stores (ids generated if absent).

    A result is its input's fields plus ``created_at``; its JSON values are the copies
    made when the input was validated, and its ``scores`` the input's (``{}`` for none).
    """
    return _RESULTS.validate_python(  # vars(): the input's field values, without a copy each
        [
            {
                **vars(input),
                "id": input.id or new_id(),
                "scores": input.scores or {},
                "created_at": now,
            }
            for input in inputs
        ]
    )


def scores_of_results(results: Sequence[RunResult]) -> list[Score]:
    """The scores recorded with results (their ``scores``), one row each."""
    return _SCORES.validate_python(
        [
            {
                "id": new_id(),
                "run_id": result.run_id,
                "result_id": result.id,
                "name": name,
                "value": value,
                "label": None,
                "explanation": None,
                "metadata": None,
                "created_at": result.created_at,
            }
            for result in results
            for name, value in result.scores.items()
        ]
    )


def recorded_scores(
    inputs: Sequence[AddScoreInput], run_of_result: dict[str, str], now: datetime
) -> list[Score]:
    """The scores that recording ``inputs`` at ``now`` stores: each with its result's run
    (``run_of_result`` has every result) and an id (generated if absent)."""
    return _SCORES.validate_python(
        [
            {
                **vars(input),
                "id": input.id or new_id(),
                "run_id": run_of_result[input.result_id],
                "created_at": now,
            }
            for input in inputs
        ]
    )


def count_deltas(results: Iterable[RunResult]) -> dict[str, tuple[int, int]]:
    """How many succeeded and failed results each run gains, by run id, sorted by id.

    A result counts as failed when its ``error`` is not None. Sorted, so that writers
    touching several runs lock them in one order and cannot deadlock.
    """
    deltas: dict[str, list[int]] = {}
    for result in results:
        counts = deltas.setdefault(result.run_id, [0, 0])
        counts[result.error is not None] += 1
    return {run_id: (deltas[run_id][0], deltas[run_id][1]) for run_id in sorted(deltas)}


def first_position(results: Sequence[RunResult], run_id: str) -> int:
    """Where the first result of ``run_id`` sits in a batch."""
    return next(position for position, result in enumerate(results) if result.run_id == run_id)


def counter_overflow(run_id: str, position: int | None) -> InvalidInputError:
    """The error for counts that would take a run's counter past the limit."""
    where = "" if position is None else f"inputs[{position}]: "
    return InvalidInputError(
        f"{where}run {run_id!r}: a counter would pass {MAX_COUNT:,}; nothing was written"
    )
