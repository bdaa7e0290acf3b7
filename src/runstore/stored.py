"""What a call stores: the run or results made from validated inputs, and their counts.

Every adapter builds its stored records here, so ids, timestamps and counters come out the same
from SQLite, Postgres and memory.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from runstore.clock import new_id
from runstore.errors import ResultNotFoundError
from runstore.errors import RunNotFoundError
from runstore.errors import run_exists
from runstore.limits import MAX_COUNT
from runstore.models import AddRunResultInput
from runstore.models import AddScoreInput
from runstore.models import CreateRunInput
from runstore.models import OnConflict
from runstore.models import Run
from runstore.models import RunResult
from runstore.models import RunStatus
from runstore.models import Score
from runstore.models import snapshots_of

__all__ = [
    "CREATION_FIELDS",
    "CountChange",
    "Overwrite",
    "counted_run",
    "creation_differences",
    "existing_run",
    "first_position",
    "missing_result",
    "missing_run",
    "new_run",
    "overwrite",
    "recorded_results",
    "recorded_scores",
    "score_fields",
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
        raise run_exists(run.id, described)
    return run


def recorded_results(inputs: Sequence[AddRunResultInput], now: datetime) -> list[RunResult]:
    """The results that recording ``inputs`` at ``now`` stores (ids generated if absent).

    A result is its input's fields plus ``created_at``; its JSON values are the copies
    made when the input was validated, and its ``scores`` the input's (``{}`` for none).
    """
    return snapshots_of(_RESULTS, [_result_fields(input, now) for input in inputs])


_NONE_BY_DEFAULT = tuple(
    name
    for name, field in RunResult.model_fields.items()
    if not field.is_required() and field.default is None
)
"""The fields a result leaves None unless given (tokens, cost, trace id, metadata)."""


def _result_fields(input: AddRunResultInput, now: datetime) -> dict[str, Any]:
    # vars(): the input's field values, without a copy each. A field None by default is
    # left out when None: pydantic fills in a default for nothing, but validates a None
    # given (a third of a microsecond a field, a tenth of a batch's validation).
    fields = {
        **vars(input),
        "id": input.id or new_id(),
        "scores": input.scores or {},
        "created_at": now,
    }
    for name in _NONE_BY_DEFAULT:
        if fields[name] is None:
            del fields[name]
    return fields


def score_fields(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """The fields of the scores recorded with results (their ``scores``), one dict a score,
    by attribute name: what :func:`scores_of_results` validates into models, and what the
    SQL adapters insert as they are -- every value in them already validated, with its
    result."""
    return [
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


def scores_of_results(results: Sequence[RunResult]) -> list[Score]:
    """The scores recorded with results (their ``scores``), one model each."""
    return snapshots_of(_SCORES, score_fields(results))


def recorded_scores(
    inputs: Sequence[AddScoreInput], run_of_result: dict[str, str], now: datetime
) -> list[Score]:
    """The scores that recording ``inputs`` at ``now`` stores: each with its result's run
    (``run_of_result`` has every result) and an id (generated if absent)."""
    return snapshots_of(
        _SCORES,
        [
            {
                **vars(input),
                "id": input.id or new_id(),
                "run_id": run_of_result[input.result_id],
                "created_at": now,
            }
            for input in inputs
        ],
    )


def first_position(results: Sequence[RunResult], run_id: str, *, batch: bool) -> int | None:
    """Where the first result of ``run_id`` sits in a batch, the position an error about
    the run names (None: not a batch, but a single result)."""
    if not batch:
        return None
    return next(position for position, result in enumerate(results) if result.run_id == run_id)


def missing_run(
    results: Sequence[RunResult], present: Collection[str], *, batch: bool
) -> RunNotFoundError | None:
    """The error naming the first result, by position, whose run is not among ``present``
    (None: every run is); its position is given for a batch."""
    for position, result in enumerate(results):
        if result.run_id not in present:
            return RunNotFoundError(result.run_id, position=position if batch else None)
    return None


def missing_result(
    inputs: Sequence[AddScoreInput], run_of_result: Mapping[str, str]
) -> ResultNotFoundError | None:
    """The error naming the first score, by position, whose result is not in
    ``run_of_result`` (None: every result is)."""
    for position, input in enumerate(inputs):
        if input.result_id not in run_of_result:
            return ResultNotFoundError(input.result_id, position=position)
    return None


@dataclass(frozen=True, slots=True)
class CountChange:
    """How a write moves one run's counts: ``results`` more results, and -- with
    ``update_counts`` -- ``counters``, the changes of (succeeded, failed); None leaves
    the counters, and ``updated_at``, as they are."""

    results: int
    counters: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class Overwrite:
    """What writing a batch of results over what is stored does (see :func:`overwrite`).

    ``written`` are the results to store, in batch order: with "replace", every result of
    the batch, under the stored result's id where it takes that one's place; else those
    whose place is free. ``replaced`` are the ids of the stored results that go first,
    with their scores. ``counts`` is each run's :class:`CountChange`, by run id, sorted,
    so that writers touching several runs lock them in one order and cannot deadlock: a
    run appears when a result of the batch is written to it, if only to move its
    ``updated_at``.
    """

    written: list[RunResult]
    replaced: list[str]
    counts: dict[str, CountChange]


def overwrite(
    results: Sequence[RunResult],
    taken: Mapping[int, tuple[str, bool]],
    on_conflict: OnConflict,
    update_counts: bool,
) -> Overwrite:
    """Write ``results`` where ``taken`` (by position in the batch) holds the id of the
    stored result in the place of that result -- its (run, item, repetition) -- and
    whether it failed.

    A result in a free place is written, counted on its run (a result more, and one more
    succeeded, or failed: its ``error`` is not None). Where the place is taken, "replace"
    writes the result under the stored id, moving a count from the stored result's
    counter to its own; "skip" keeps the stored one and counts nothing. With "error",
    ``taken`` is empty: the caller has refused a taken place. The counters move only with
    ``update_counts``; applied, none goes below zero (a replaced result may not have been
    counted).
    """
    replace = on_conflict is OnConflict.REPLACE
    written: list[RunResult] = []
    replaced: list[str] = []
    moves: dict[str, list[int]] = {}  # run id -> [results, succeeded, failed]
    for position, result in enumerate(results):
        place = taken.get(position)
        if place is None:
            written.append(result)
            counts = moves.setdefault(result.run_id, [0, 0, 0])
            counts[0] += 1
            counts[1 + (result.error is not None)] += 1
            continue
        if replace:
            stored_id, failed_before = place
            written.append(result.model_copy(update={"id": stored_id}))
            replaced.append(stored_id)
            counts = moves.setdefault(result.run_id, [0, 0, 0])
            counts[1 + failed_before] -= 1
            counts[1 + (result.error is not None)] += 1
    return Overwrite(
        written,
        replaced,
        {
            run_id: CountChange(
                moves[run_id][0], (moves[run_id][1], moves[run_id][2]) if update_counts else None
            )
            for run_id in sorted(moves)
        },
    )


def counted_run(run: Run, change: CountChange, now: datetime) -> Run | None:
    """``run`` with ``change`` applied: counters never below zero, ``updated_at`` moved to
    ``now`` unless later, where the counters move. None when a count would pass
    :data:`~runstore.limits.MAX_COUNT`. (The SQL adapters do the same arithmetic in the
    statement that counts: :func:`runstore.sql.runs.bump_statement`.)"""
    changes: dict[str, int | datetime] = {"result_count": run.result_count + change.results}
    if change.counters is not None:
        succeeded, failed = change.counters
        changes |= {
            "succeeded_count": max(run.succeeded_count + succeeded, 0),
            "failed_count": max(run.failed_count + failed, 0),
            "updated_at": max(run.updated_at, now),
        }
    if any(isinstance(value, int) and value > MAX_COUNT for value in changes.values()):
        return None
    return run.model_copy(update=changes)
