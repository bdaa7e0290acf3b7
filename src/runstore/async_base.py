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
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from runstore import calls
from runstore.arguments import gate_arguments
from runstore.base import RunsStorage
from runstore.export import (
    ExportFile,
    StoredRow,
    export_arguments,
    record_batch,
    require_pyarrow,
    result_schema,
)
from runstore.gate import judge, needs_regressed_items, needs_summaries
from runstore.models import (
    AddRunResultInput,
    AddScoreInput,
    ComparisonKind,
    CreateRunInput,
    ExistingRun,
    GateRules,
    GateVerdict,
    ItemComparison,
    ListRunResultsInput,
    ListRunResultsOutput,
    ListRunsInput,
    ListRunsOutput,
    OnConflict,
    ResultOrder,
    Run,
    RunComparison,
    RunHistograms,
    RunResult,
    RunStatus,
    RunSummary,
    RunTrend,
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
    storage stays usable. Each public method checks its arguments (:mod:`runstore.calls`)
    and awaits the adapter's one hook, :meth:`_perform` (or iterates :meth:`_stream`).
    """

    @abc.abstractmethod
    async def _perform(self, call: calls.Call[_T]) -> _T:
        """Carry out a call whose arguments are checked; what the public method returns."""

    @abc.abstractmethod
    def _stream(self, call: calls.Stream[_T]) -> AsyncIterator[_T]:
        """The items of an ``iter_*`` call whose arguments are checked, read lazily (a
        closed storage is refused at once)."""

    # -- lifecycle ---------------------------------------------------------------------

    async def init(self) -> None:  # noqa: B027 - optional hook
        """Prepare the backing store (for SQL: migrate the schema to head). Idempotent."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Using the storage afterwards raises ``StorageClosedError``."""

    async def dangerously_clear_all(self) -> None:
        await self._perform(calls.DangerouslyClearAll())

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

    async def create_run(
        self,
        input: CreateRunInput | Mapping[str, Any],
        *,
        if_exists: ExistingRun | str = ExistingRun.ERROR,
    ) -> Run:
        return await self._perform(calls.CreateRun.checked(input, if_exists))

    async def update_run(self, input: UpdateRunInput | Mapping[str, Any]) -> Run:
        return await self._perform(calls.UpdateRun.checked(input))

    async def get_run_by_id(self, id: str) -> Run | None:
        return await self._perform(calls.GetRunById.checked(id))

    async def list_runs(
        self, input: ListRunsInput | Mapping[str, Any] | None = None
    ) -> ListRunsOutput:
        return await self._perform(calls.ListRuns.checked(input))

    def iter_runs(
        self,
        *,
        dataset_id: str | None = None,
        status: RunStatus | str | None = None,
        target_type: TargetType | str | None = None,
        target_id: str | None = None,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, object] | None = None,
        batch_size: int = 1000,
        **unknown: object,
    ) -> AsyncIterator[Run]:
        filters = {
            "dataset_id": dataset_id,
            "status": status,
            "target_type": target_type,
            "target_id": target_id,
            "name": name,
            "tags": tags,
            "metadata": metadata,
            **unknown,
        }
        return self._stream(calls.IterRuns.checked(filters, batch_size))

    async def delete_run(self, id: str) -> None:
        await self._perform(calls.DeleteRun.checked(id))

    async def recount_run(self, run_id: str) -> Run:
        return await self._perform(calls.RecountRun.checked(run_id))

    async def prune_runs(
        self,
        *,
        older_than: datetime,
        status: RunStatus | str | None = None,
        dataset_id: str | None = None,
        tags: Iterable[str] | None = None,
        batch_size: int = 100,
    ) -> int:
        call = calls.PruneRuns.checked(older_than, status, dataset_id, batch_size, tags)
        return await self._perform(call)

    # -- results -----------------------------------------------------------------------

    async def add_result(
        self,
        input: AddRunResultInput | Mapping[str, Any],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> RunResult:
        call = calls.AddResult.checked(input, update_counts, on_conflict)
        return await self._perform(call)

    async def add_results(
        self,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> list[RunResult]:
        call = calls.AddResults.checked(inputs, update_counts, on_conflict)
        return await self._perform(call)

    async def get_result_by_id(self, id: str) -> RunResult | None:
        return await self._perform(calls.GetResultById.checked(id))

    async def list_results(
        self, input: ListRunResultsInput | Mapping[str, Any]
    ) -> ListRunResultsOutput:
        return await self._perform(calls.ListResults.checked(input))

    def iter_results(
        self,
        run_id: str,
        *,
        batch_size: int = 1000,
        has_error: bool | None = None,
        item_id: str | None = None,
        score: ScoreFilter | Mapping[str, Any] | None = None,
        order: ResultOrder | str = ResultOrder.EXECUTION,
    ) -> AsyncIterator[RunResult]:
        call = calls.IterResults.checked(
            run_id, batch_size, has_error=has_error, item_id=item_id, score=score, order=order
        )
        return self._stream(call)

    async def delete_results_by_run_id(self, run_id: str) -> None:
        await self._perform(calls.DeleteResultsByRunId.checked(run_id))

    # -- exports -----------------------------------------------------------------------

    def iter_result_batches(
        self, run_id: str, *, batch_size: int = 2_000
    ) -> AsyncIterator[pyarrow.RecordBatch]:
        require_pyarrow()
        rows = self._stream(calls.IterResultRows.checked(run_id, batch_size))
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
        rows = self._stream(calls.IterResultRows.checked(run_id, batch_size))
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

    # -- scores ------------------------------------------------------------------------

    async def add_scores(
        self, inputs: Iterable[AddScoreInput | Mapping[str, Any]], *, replace: bool = False
    ) -> list[Score]:
        return await self._perform(calls.AddScores.checked(inputs, replace))

    async def list_scores(
        self, run_id: str, *, result_id: str | None = None, name: str | None = None
    ) -> list[Score]:
        return await self._perform(calls.ListScores.checked(run_id, result_id, name))

    def iter_scores(
        self,
        run_id: str,
        *,
        result_id: str | None = None,
        name: str | None = None,
        batch_size: int = 1000,
    ) -> AsyncIterator[Score]:
        return self._stream(calls.IterScores.checked(run_id, result_id, name, batch_size))

    # -- answers -----------------------------------------------------------------------

    async def summarize_run(self, run_id: str, *, keep: bool = True) -> RunSummary:
        return await self._perform(calls.SummarizeRun.checked(run_id, keep=keep))

    async def keep_summaries(self, *, dataset_id: str | None = None) -> int:
        return await self._perform(calls.KeepSummaries.checked(dataset_id=dataset_id))

    async def histogram_run(self, run_id: str, *, bins: int = 20) -> RunHistograms:
        return await self._perform(calls.HistogramRun.checked(run_id, bins))

    async def compare_runs(
        self, baseline_run_id: str, candidate_run_id: str, *, confidence: float = 0.95
    ) -> RunComparison:
        call = calls.CompareRuns.checked(baseline_run_id, candidate_run_id, confidence)
        return await self._perform(call)

    def iter_item_comparisons(
        self,
        baseline_run_id: str,
        candidate_run_id: str,
        *,
        only: ComparisonKind | str | None = None,
        score: str | None = None,
        batch_size: int = 1000,
        after_item: str | None = None,
    ) -> AsyncIterator[ItemComparison]:
        call = calls.IterItemComparisons.checked(
            baseline_run_id, candidate_run_id, only, score, batch_size, after_item
        )
        return self._stream(call)

    async def gate_runs(
        self,
        baseline_run_id: str,
        candidate_run_id: str,
        rules: GateRules | Mapping[str, Any],
    ) -> GateVerdict:
        baseline, candidate, checked = gate_arguments(baseline_run_id, candidate_run_id, rules)
        comparison = await self.compare_runs(baseline, candidate, confidence=checked.confidence)
        summaries = None
        if needs_summaries(checked):
            summaries = (
                await self.summarize_run(baseline, keep=False),
                await self.summarize_run(candidate, keep=False),
            )
        regressed = None
        if needs_regressed_items(checked):
            items = self.iter_item_comparisons(baseline, candidate, only="regressed")
            regressed = 0
            async for _ in items:
                regressed += 1
        return judge(checked, comparison, summaries, regressed)

    async def find_baseline(
        self,
        candidate_run_id: str,
        *,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, object] | None = None,
        target_id: str | None = None,
    ) -> Run | None:
        call = calls.FindBaseline.checked(candidate_run_id, tags, metadata, target_id)
        return await self._perform(call)

    async def trend_runs(
        self,
        dataset_id: str,
        *,
        target_id: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, object] | None = None,
        status: RunStatus | str | None = None,
        last: int = 20,
        keep: bool = True,
    ) -> RunTrend:
        call = calls.TrendRuns.checked(
            dataset_id,
            target_id=target_id,
            tags=tags,
            metadata=metadata,
            status=status,
            last=last,
            keep=keep,
        )
        return await self._perform(call)


async def _record_batches(
    rows: AsyncIterator[list[StoredRow]], schema: pyarrow.Schema
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
