"""The asyncio contract: :class:`~runstore.base.RunsStorage`, every call awaited.

The same calls, arguments, results and errors as the blocking contract -- each method's
documentation is the blocking one's -- with ``async def`` methods, async iterators for
the ``iter_*`` calls, and ``async with`` for :meth:`init` and :meth:`close`.
:mod:`runstore.testing` proves it with the one contract suite (see
:class:`runstore.testing.bridge.BlockingRunsStorage`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import inspect
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from runstore.arguments import id_argument, size_argument
from runstore.base import RunsStorage
from runstore.errors import RunNotFoundError
from runstore.export import (
    ExportFile,
    StoredRow,
    export_arguments,
    record_batch,
    require_pyarrow,
    result_schema,
    rows_of_results,
)
from runstore.models import (
    AddRunResultInput,
    AddScoreInput,
    ComparisonKind,
    CreateRunInput,
    ExistingRun,
    ItemComparison,
    ListRunResultsInput,
    ListRunResultsOutput,
    ListRunsInput,
    ListRunsOutput,
    OnConflict,
    ResultOrder,
    Run,
    RunComparison,
    RunResult,
    RunStatus,
    RunSummary,
    Score,
    ScoreFilter,
    TargetType,
    UpdateRunInput,
)

if TYPE_CHECKING:
    import pyarrow

__all__ = ["AsyncRunsStorage"]

_T = TypeVar("_T")


class AsyncRunsStorage(abc.ABC):
    """Persists dataset runs and their per-item results, for asyncio programs.

    Keeps :class:`~runstore.base.RunsStorage`'s contract. Cancelling a call (or its
    ``asyncio.timeout``) ends its transaction unwritten and returns its connection; the
    storage stays usable.
    """

    async def init(self) -> None:  # noqa: B027 - optional hook
        """Prepare the backing store (for SQL: migrate the schema to head). Idempotent."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Using the storage afterwards raises ``StorageClosedError``."""

    async def __aenter__(self) -> Self:
        await self.init()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- runs --------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_run(
        self,
        input: CreateRunInput | Mapping[str, Any],
        *,
        if_exists: ExistingRun | str = ExistingRun.ERROR,
    ) -> Run: ...

    @abc.abstractmethod
    async def update_run(self, input: UpdateRunInput | Mapping[str, Any]) -> Run: ...

    @abc.abstractmethod
    async def get_run_by_id(self, id: str) -> Run | None: ...

    @abc.abstractmethod
    async def list_runs(
        self, input: ListRunsInput | Mapping[str, Any] | None = None
    ) -> ListRunsOutput: ...

    @abc.abstractmethod
    def iter_runs(
        self,
        *,
        dataset_id: str | None = None,
        status: RunStatus | str | None = None,
        target_type: TargetType | str | None = None,
        target_id: str | None = None,
        batch_size: int = 1000,
    ) -> AsyncIterator[Run]: ...

    @abc.abstractmethod
    async def delete_run(self, id: str) -> None: ...

    @abc.abstractmethod
    async def recount_run(self, run_id: str) -> Run: ...

    @abc.abstractmethod
    async def prune_runs(
        self,
        *,
        older_than: datetime,
        status: RunStatus | str | None = None,
        dataset_id: str | None = None,
        batch_size: int = 100,
    ) -> int: ...

    # -- results -----------------------------------------------------------------------

    @abc.abstractmethod
    async def add_result(
        self,
        input: AddRunResultInput | Mapping[str, Any],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> RunResult: ...

    @abc.abstractmethod
    async def add_results(
        self,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> list[RunResult]: ...

    @abc.abstractmethod
    async def get_result_by_id(self, id: str) -> RunResult | None: ...

    @abc.abstractmethod
    async def list_results(
        self, input: ListRunResultsInput | Mapping[str, Any]
    ) -> ListRunResultsOutput: ...

    @abc.abstractmethod
    def iter_results(
        self,
        run_id: str,
        *,
        batch_size: int = 1000,
        has_error: bool | None = None,
        item_id: str | None = None,
        score: ScoreFilter | Mapping[str, Any] | None = None,
        order: ResultOrder | str = ResultOrder.EXECUTION,
    ) -> AsyncIterator[RunResult]: ...

    def iter_result_batches(
        self, run_id: str, *, batch_size: int = 2_000
    ) -> AsyncIterator[pyarrow.RecordBatch]:
        require_pyarrow()
        rows = self._stored_rows(
            id_argument(run_id, "run_id"), size_argument(batch_size, "batch_size")
        )
        return _record_batches(rows, result_schema())

    async def export_results(
        self,
        run_id: str,
        destination: str | os.PathLike[str],
        *,
        format: str = "jsonl",
        batch_size: int = 2_000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """As :meth:`runstore.base.RunsStorage.export_results`; the file is written from a
        worker thread, a batch at a time, so the event loop is not held up by encoding and
        disk writes, and ``progress`` is called on the event loop. A cancelled export
        (``asyncio.timeout``) leaves no file and an existing ``destination`` untouched.
        """
        path, format, progress = export_arguments(destination, format, progress)
        rows = self._stored_rows(
            id_argument(run_id, "run_id"), size_argument(batch_size, "batch_size")
        )
        try:
            batch = await anext(rows, None)  # a missing run raises before a file exists
            export = ExportFile(path, format)
            try:
                while batch is not None:
                    await _off_the_loop(export.write, batch)
                    if progress is not None:
                        progress(export.written)
                    batch = await anext(rows, None)
                await _off_the_loop(export.finish)
            except BaseException:
                export.abort()
                raise
        finally:
            await _close(rows)
        return export.written

    async def _stored_rows(self, run_id: str, size: int) -> AsyncIterator[Sequence[StoredRow]]:
        """As :meth:`runstore.base.RunsStorage._stored_rows`, asynchronously: built from
        :meth:`iter_results` here; an adapter may read the stored values directly."""
        results = self.iter_results(run_id, batch_size=size)
        batch: list[RunResult] = []
        found = False
        async for result in results:
            batch.append(result)
            if len(batch) == size:
                found = True
                yield rows_of_results(batch)
                batch = []
        if batch:
            yield rows_of_results(batch)
        elif not found and await self.get_run_by_id(run_id) is None:
            raise RunNotFoundError(run_id)

    @abc.abstractmethod
    async def delete_results_by_run_id(self, run_id: str) -> None: ...

    # -- scores ------------------------------------------------------------------------

    @abc.abstractmethod
    async def add_scores(
        self, inputs: Iterable[AddScoreInput | Mapping[str, Any]], *, replace: bool = False
    ) -> list[Score]: ...

    @abc.abstractmethod
    async def list_scores(
        self, run_id: str, *, result_id: str | None = None, name: str | None = None
    ) -> list[Score]: ...

    @abc.abstractmethod
    def iter_scores(
        self,
        run_id: str,
        *,
        result_id: str | None = None,
        name: str | None = None,
        batch_size: int = 1000,
    ) -> AsyncIterator[Score]: ...

    # -- answers -----------------------------------------------------------------------

    @abc.abstractmethod
    async def summarize_run(self, run_id: str) -> RunSummary: ...

    @abc.abstractmethod
    async def compare_runs(self, baseline_run_id: str, candidate_run_id: str) -> RunComparison: ...

    @abc.abstractmethod
    def iter_item_comparisons(
        self,
        baseline_run_id: str,
        candidate_run_id: str,
        *,
        only: ComparisonKind | str | None = None,
        score: str | None = None,
        batch_size: int = 1000,
    ) -> AsyncIterator[ItemComparison]: ...

    # -- testing -----------------------------------------------------------------------

    @abc.abstractmethod
    async def dangerously_clear_all(self) -> None: ...


async def _record_batches(
    rows: AsyncIterator[Sequence[StoredRow]], schema: pyarrow.Schema
) -> AsyncIterator[pyarrow.RecordBatch]:
    try:
        async for batch in rows:
            yield record_batch(batch, schema)
    finally:
        await _close(rows)


async def _close(items: AsyncIterator[Any]) -> None:
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()


async def _off_the_loop(function: Callable[..., _T], *arguments: Any) -> _T:
    """``function(*arguments)`` in a worker thread. A cancellation waits for it to return
    before going on, so nothing runs on behind the caller's back (an export's file is
    then removed whole)."""
    future = asyncio.get_running_loop().run_in_executor(None, function, *arguments)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([future])
        raise


def _share_documentation() -> None:
    """Each call documented once: the blocking contract's text."""
    for name, member in vars(AsyncRunsStorage).items():
        blocking = getattr(RunsStorage, name, None)
        if inspect.isfunction(member) and member.__doc__ is None and blocking is not None:
            member.__doc__ = blocking.__doc__


_share_documentation()
