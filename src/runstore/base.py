"""The abstract storage: the contract every runstore adapter keeps."""

from __future__ import annotations

import abc
from datetime import datetime
from types import TracebackType
from typing import Self

from runstore.clock import Clock, moved_forward, new_id, utc_now
from runstore.models import (
    AddRunResultInput,
    CreateRunInput,
    ListRunResultsInput,
    ListRunResultsOutput,
    ListRunsInput,
    ListRunsOutput,
    Run,
    RunResult,
    RunStatus,
    StoragePagination,
    StoragePaginationResult,
    UpdateRunInput,
)

__all__ = ["RunsStorage", "new_run", "page_result", "recorded_result"]


class RunsStorage(abc.ABC):
    """Persists dataset runs and their per-item results.

    Every adapter keeps this contract, and one test suite proves it for all of them.

    * Methods take and return pydantic models (or ids); no database object crosses the API.
      Returned models are frozen snapshots.
    * Each method is one transaction: it happens entirely or not at all.
    * Adapters are safe to share between threads. The SQL adapter is also safe to share
      a database between processes.
    * Invalid input raises a ``ValueError`` (pydantic's ``ValidationError`` for models,
      :class:`~runstore.errors.InvalidInputError` otherwise) before anything is written.
    * Every other failure is a :class:`~runstore.errors.StorageError`; a database error is
      wrapped in :class:`~runstore.errors.DatabaseError` with the driver's error chained.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        """Args:
        clock: where ``created_at``/``updated_at`` come from; the system clock in UTC
            unless given (give one to make times deterministic in tests).
        """
        self._clock: Clock = clock or utc_now

    def _now(self) -> datetime:
        return self._clock()

    def _now_after(self, previous: datetime) -> datetime:
        return moved_forward(self._clock(), previous)

    # -- lifecycle ---------------------------------------------------------------------

    def init(self) -> None:  # noqa: B027 - optional hook, a no-op where nothing is needed
        """Prepare the backing store (for SQL: migrate the schema to head). Idempotent."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Using the storage afterwards raises ``StorageClosedError``."""

    def __enter__(self) -> Self:
        self.init()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- runs --------------------------------------------------------------------------

    @abc.abstractmethod
    def create_run(self, input: CreateRunInput) -> Run:
        """Create a run: status ``pending``, counts 0, not started or completed.

        ``created_at`` and ``updated_at`` are both now (UTC). Without ``input.id`` a uuid4
        string is generated.

        Raises:
            DuplicateError: a run with ``input.id`` exists; it is left unchanged.
        """

    @abc.abstractmethod
    def update_run(self, input: UpdateRunInput) -> Run:
        """Change the fields given in ``input``; ``updated_at`` moves forward.

        Returns:
            The run as stored after the change.

        Raises:
            RunNotFoundError: no run has ``input.id``.
        """

    @abc.abstractmethod
    def get_run_by_id(self, id: str) -> Run | None:
        """The run with ``id``, or None."""

    @abc.abstractmethod
    def list_runs(self, input: ListRunsInput) -> ListRunsOutput:
        """Runs newest first (``created_at`` descending, then ``id`` descending).

        Optionally only the runs of ``input.dataset_id``. ``pagination.total`` counts every
        matching run; ``has_more`` tells whether rows lie past this page. The order is
        total, so no run is repeated or skipped across pages when timestamps tie. A page
        past the end is empty.
        """

    @abc.abstractmethod
    def delete_run(self, id: str) -> None:
        """Delete a run and all its results in one transaction; an unknown id is a no-op."""

    # -- results -----------------------------------------------------------------------

    @abc.abstractmethod
    def add_result(self, input: AddRunResultInput) -> RunResult:
        """Record one item's result. Without ``input.id`` a uuid4 string is generated.

        JSON fields read back exactly as given (see :mod:`runstore.jsonvalues`);
        ``created_at`` is now (UTC).

        Raises:
            RunNotFoundError: the run does not exist; nothing is written.
            DuplicateError: the run already has a result for ``input.item_id``, or a
                result with ``input.id`` exists; nothing is written.
        """

    @abc.abstractmethod
    def get_result_by_id(self, id: str) -> RunResult | None:
        """The result with ``id``, or None."""

    @abc.abstractmethod
    def list_results(self, input: ListRunResultsInput) -> ListRunResultsOutput:
        """One run's results in execution order (``started_at``, then ``id``, ascending).

        Paginated exactly like :meth:`list_runs`. An unknown run has no results.
        """

    @abc.abstractmethod
    def delete_results_by_run_id(self, run_id: str) -> None:
        """Delete every result of a run, keeping the run. An unknown run is a no-op."""

    @abc.abstractmethod
    def dangerously_clear_all(self) -> None:
        """Delete every run and result. The schema stays."""


def page_result(
    pagination: StoragePagination, total: int, returned: int
) -> StoragePaginationResult:
    """The pagination part of a list output, for a page that returned ``returned`` rows."""
    return StoragePaginationResult(
        total=total,
        page=pagination.page,
        per_page=pagination.per_page,
        has_more=pagination.offset + returned < total,
    )


_RESULT_INPUT_FIELDS = tuple(name for name in AddRunResultInput.model_fields if name != "id")


def recorded_result(input: AddRunResultInput, created_at: datetime) -> RunResult:
    """The result that recording ``input`` at ``created_at`` stores (id generated if absent)."""
    return RunResult.model_construct(
        **{name: getattr(input, name) for name in _RESULT_INPUT_FIELDS},
        id=input.id or new_id(),
        created_at=created_at,
    )


def new_run(input: CreateRunInput, now: datetime) -> Run:
    """The run that creating ``input`` at ``now`` stores (id generated if absent)."""
    return Run.model_construct(
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
    )
