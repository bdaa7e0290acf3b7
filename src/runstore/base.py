"""The abstract storage: the contract every runstore adapter keeps."""

from __future__ import annotations

import abc
import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from pydantic import TypeAdapter, ValidationError

from runstore.clock import Clock, moved_forward, new_id, utc_now
from runstore.errors import InvalidInputError
from runstore.jsonvalues import EncodedJson, JsonValue
from runstore.models import (
    JSON_TEXTS,
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
    TargetType,
    UpdateRunInput,
    trusted_snapshot,
)

__all__ = [
    "RunsStorage",
    "check_batch_size",
    "collector_paused",
    "count_deltas",
    "fetch_limit",
    "new_run",
    "page_result",
    "recorded_result",
    "runs_scope",
    "split_page",
    "validated_batch",
]

_Row = TypeVar("_Row")


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

        Optionally only the runs matching every filter given (``dataset_id``, ``status``,
        ``target_type``, ``target_id``). ``pagination.total`` counts every matching run;
        ``has_more`` tells whether rows lie past this page. The order is total, so no run
        is repeated or skipped across pages when timestamps tie. A page past the end is
        empty.

        Every output carries ``next_cursor`` (None on the last page): pass it back as
        ``input.cursor`` to read the next page by keyset, at a cost that does not grow
        with depth.

        Raises:
            InvalidInputError: ``input.cursor`` is malformed or came from another list.
        """

    @abc.abstractmethod
    def iter_runs(
        self,
        *,
        dataset_id: str | None = None,
        status: RunStatus | str | None = None,
        target_type: TargetType | str | None = None,
        target_id: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Run]:
        """Every matching run, in :meth:`list_runs` order, read like :meth:`iter_results`."""

    @abc.abstractmethod
    def delete_run(self, id: str) -> None:
        """Delete a run and all its results in one transaction; an unknown id is a no-op."""

    # -- results -----------------------------------------------------------------------

    @abc.abstractmethod
    def add_result(self, input: AddRunResultInput, *, update_counts: bool = False) -> RunResult:
        """Record one item's result. Without ``input.id`` a uuid4 string is generated.

        JSON fields read back exactly as given (see :mod:`runstore.jsonvalues`);
        ``created_at`` is now (UTC).

        Args:
            update_counts: also add 1 to the run's ``failed_count`` (when ``input.error``
                is not None) or ``succeeded_count``, in the same transaction, by arithmetic
                in the database -- concurrent writers never lose a count. ``updated_at``
                then moves to now unless it is already later.

        Raises:
            RunNotFoundError: the run does not exist; nothing is written.
            DuplicateError: the run already has a result for ``input.item_id``, or a
                result with ``input.id`` exists; nothing is written.
        """

    @abc.abstractmethod
    def add_results(
        self,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        *,
        update_counts: bool = False,
    ) -> list[RunResult]:
        """Record many results in one transaction: all of them, or none.

        Items may belong to different runs. Mappings are validated like
        :class:`AddRunResultInput`. ``update_counts`` works as in :meth:`add_result`, once
        per run for the whole batch.

        Returns:
            The recorded results, in the order given.

        Raises:
            InvalidInputError: an item is invalid, or repeats an id or (run, item) pair of
                an earlier item; the message starts with ``inputs[i]``.
            RunNotFoundError: an item's run does not exist (``.position`` says which).
            DuplicateError: an item's id or (run, item) pair is already stored
                (``.position`` says which). Nothing is written in any of these cases.
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
    def iter_results(self, run_id: str, *, batch_size: int = 1000) -> Iterator[RunResult]:
        """Every result of a run, in :meth:`list_results` order, with bounded memory.

        Reads ``batch_size`` rows at a time, each batch in a short transaction of its own
        and continuing after the last row seen, so a long iteration holds no lock or
        snapshot; results recorded meanwhile after the current position are included.
        """

    @abc.abstractmethod
    def delete_results_by_run_id(self, run_id: str) -> None:
        """Delete every result of a run, keeping the run. An unknown run is a no-op."""

    @abc.abstractmethod
    def dangerously_clear_all(self) -> None:
        """Delete every run and result. The schema stays."""


def page_result(
    pagination: StoragePagination, total: int, has_more: bool
) -> StoragePaginationResult:
    """The pagination part of a list output."""
    return trusted_snapshot(
        StoragePaginationResult,
        {
            "total": total,
            "page": pagination.page,
            "per_page": pagination.per_page,
            "has_more": has_more,
        },
    )


def recorded_result(input: AddRunResultInput, created_at: datetime) -> RunResult:
    """The result that recording ``input`` at ``created_at`` stores (id generated if absent)."""
    fields = dict(input.__dict__)  # the input's fields are the result's, less created_at
    if fields["id"] is None:
        fields["id"] = new_id()
    fields["created_at"] = created_at
    return trusted_snapshot(RunResult, fields)


def new_run(input: CreateRunInput, now: datetime) -> Run:
    """The run that creating ``input`` at ``now`` stores (id generated if absent)."""
    return trusted_snapshot(
        Run,
        {
            "id": input.id or new_id(),
            "dataset_id": input.dataset_id,
            "dataset_version": input.dataset_version,
            "target_type": input.target_type,
            "target_id": input.target_id,
            "status": RunStatus.PENDING,
            "total_items": input.total_items,
            "succeeded_count": 0,
            "failed_count": 0,
            "started_at": None,
            "completed_at": None,
            "created_at": now,
            "updated_at": now,
        },
    )


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch is built and written.

    A batch allocates several short-lived containers per row (inputs, JSON copies, the
    returned results, driver parameters), none of which can form a reference cycle; the
    collector would otherwise run hundreds of times during a 10,000-row batch, each run
    walking objects of the whole process, which measured as about 40% of the batch's time.
    It is re-enabled afterwards, even on error, if it was enabled before.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_BATCH = TypeAdapter(list[AddRunResultInput])


def validated_batch(
    inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
    json_texts: dict[int, tuple[JsonValue, EncodedJson]] | None = None,
) -> list[AddRunResultInput]:
    """Validate a batch for :meth:`RunsStorage.add_results`, naming the bad item's position.

    Refuses items that repeat the id or the (run, item) pair of an earlier item. Given
    ``json_texts``, collects the JSON text written while validating (see ``JSON_TEXTS``).
    """
    items = list(inputs)
    context = None if json_texts is None else {JSON_TEXTS: json_texts}
    try:
        batch = _BATCH.validate_python(items, context=context)  # one call for the list
    except ValidationError as exc:
        position = exc.errors()[0]["loc"][0]
        try:
            AddRunResultInput.model_validate(items[int(position)])
        except ValidationError as item_error:  # the message of that item alone
            raise InvalidInputError(f"inputs[{position}]: {item_error}") from item_error
        raise InvalidInputError(f"inputs[{position}]: {exc}") from exc
    ids: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    for position, item in enumerate(batch):
        if item.id is not None:
            earlier = ids.setdefault(item.id, position)
            if earlier != position:
                raise InvalidInputError(
                    f"inputs[{position}]: id {item.id!r} repeats inputs[{earlier}]"
                )
        earlier = pairs.setdefault((item.run_id, item.item_id), position)
        if earlier != position:
            raise InvalidInputError(
                f"inputs[{position}]: item {item.item_id!r} of run {item.run_id!r} "
                f"repeats inputs[{earlier}]"
            )
    return batch


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


def runs_scope(input: ListRunsInput) -> tuple[str | None, ...]:
    """The filters a runs cursor is bound to."""
    return (input.dataset_id, input.status, input.target_type, input.target_id)


def fetch_limit(pagination: StoragePagination) -> int | None:
    """How many rows to read for a page: one more than shown, to know if more follow."""
    return None if pagination.per_page is False else pagination.per_page + 1


def split_page(rows: Sequence[_Row], pagination: StoragePagination) -> tuple[Sequence[_Row], bool]:
    """The rows to show from what :func:`fetch_limit` read, and whether more follow."""
    if pagination.per_page is False:
        return rows, False
    return rows[: pagination.per_page], len(rows) > pagination.per_page


def check_batch_size(batch_size: int) -> None:
    if type(batch_size) is not int or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive int, not {batch_size!r}")
