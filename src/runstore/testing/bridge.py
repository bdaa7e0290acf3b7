"""An asyncio storage behind the blocking API, so the one contract suite proves both.

:class:`BlockingRunsStorage` runs every call of an
:class:`~runstore.async_base.AsyncRunsStorage` on an event loop of its own, in a thread
of its own, and waits for it; its iterators pull the async iterators one item at a time.
The contract suite then runs unchanged against any async adapter::

    class TestMyAsyncStorage(RunsStorageContract):
        @pytest.fixture
        def storage_factory(self):
            return lambda **options: BlockingRunsStorage(MyAsyncStorage(**options))
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from runstore.async_base import AsyncRunsStorage
from runstore.base import RunsStorage
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
    UpdateRunInput,
)

if TYPE_CHECKING:
    import pyarrow

__all__ = ["BlockingRunsStorage"]

_T = TypeVar("_T")


class BlockingRunsStorage(RunsStorage):
    """The blocking contract, kept by an asyncio storage running on a loop of its own."""

    def __init__(self, storage: AsyncRunsStorage) -> None:
        super().__init__()
        self.storage = storage
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._stopped = False

    def __repr__(self) -> str:
        return f"BlockingRunsStorage({self.storage!r})"

    def _wait(self, call: Coroutine[Any, Any, _T]) -> _T:
        if self._stopped:  # closed: the storage refuses every call, on any loop
            return asyncio.run(call)
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()

    def _pull(self, items: AsyncIterator[_T]) -> Iterator[_T]:
        try:
            while True:
                try:
                    yield self._wait(_next(items))
                except StopAsyncIteration:
                    return
        finally:  # also when the caller stops early
            close = getattr(items, "aclose", None)
            if close is not None and not self._stopped:
                self._wait(close())

    def init(self) -> None:
        self._wait(self.storage.init())

    def close(self) -> None:
        if self._stopped:
            return
        try:
            self._wait(self.storage.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
            self._stopped = True

    def create_run(
        self,
        input: CreateRunInput | Mapping[str, Any],
        *,
        if_exists: ExistingRun | str = ExistingRun.ERROR,
    ) -> Run:
        return self._wait(self.storage.create_run(input, if_exists=if_exists))

    def update_run(self, input: UpdateRunInput | Mapping[str, Any]) -> Run:
        return self._wait(self.storage.update_run(input))

    def get_run_by_id(self, id: str) -> Run | None:
        return self._wait(self.storage.get_run_by_id(id))

    def list_runs(self, input: ListRunsInput | Mapping[str, Any] | None = None) -> ListRunsOutput:
        return self._wait(self.storage.list_runs(input))

    def iter_runs(self, *, batch_size: int = 1000, **filters: Any) -> Iterator[Run]:
        return self._pull(self.storage.iter_runs(batch_size=batch_size, **filters))

    def delete_run(self, id: str) -> None:
        self._wait(self.storage.delete_run(id))

    def recount_run(self, run_id: str) -> Run:
        return self._wait(self.storage.recount_run(run_id))

    def prune_runs(
        self,
        *,
        older_than: datetime,
        status: RunStatus | str | None = None,
        dataset_id: str | None = None,
        batch_size: int = 100,
    ) -> int:
        return self._wait(
            self.storage.prune_runs(
                older_than=older_than, status=status, dataset_id=dataset_id, batch_size=batch_size
            )
        )

    def add_result(
        self,
        input: AddRunResultInput | Mapping[str, Any],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> RunResult:
        return self._wait(
            self.storage.add_result(input, update_counts=update_counts, on_conflict=on_conflict)
        )

    def add_results(
        self,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> list[RunResult]:
        return self._wait(
            self.storage.add_results(inputs, update_counts=update_counts, on_conflict=on_conflict)
        )

    def get_result_by_id(self, id: str) -> RunResult | None:
        return self._wait(self.storage.get_result_by_id(id))

    def list_results(self, input: ListRunResultsInput | Mapping[str, Any]) -> ListRunResultsOutput:
        return self._wait(self.storage.list_results(input))

    def iter_results(
        self,
        run_id: str,
        *,
        batch_size: int = 1000,
        has_error: bool | None = None,
        item_id: str | None = None,
        score: ScoreFilter | Mapping[str, Any] | None = None,
        order: ResultOrder | str = ResultOrder.EXECUTION,
    ) -> Iterator[RunResult]:
        return self._pull(
            self.storage.iter_results(
                run_id,
                batch_size=batch_size,
                has_error=has_error,
                item_id=item_id,
                score=score,
                order=order,
            )
        )

    def iter_result_batches(
        self, run_id: str, *, batch_size: int = 2_000
    ) -> Iterator[pyarrow.RecordBatch]:
        return self._pull(self.storage.iter_result_batches(run_id, batch_size=batch_size))

    def export_results(
        self,
        run_id: str,
        destination: str | os.PathLike[str],
        *,
        format: str = "jsonl",
        batch_size: int = 2_000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        return self._wait(
            self.storage.export_results(
                run_id, destination, format=format, batch_size=batch_size, progress=progress
            )
        )

    def delete_results_by_run_id(self, run_id: str) -> None:
        self._wait(self.storage.delete_results_by_run_id(run_id))

    def add_scores(
        self, inputs: Iterable[AddScoreInput | Mapping[str, Any]], *, replace: bool = False
    ) -> list[Score]:
        return self._wait(self.storage.add_scores(inputs, replace=replace))

    def list_scores(
        self, run_id: str, *, result_id: str | None = None, name: str | None = None
    ) -> list[Score]:
        return self._wait(self.storage.list_scores(run_id, result_id=result_id, name=name))

    def iter_scores(
        self,
        run_id: str,
        *,
        result_id: str | None = None,
        name: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Score]:
        return self._pull(
            self.storage.iter_scores(run_id, result_id=result_id, name=name, batch_size=batch_size)
        )

    def summarize_run(self, run_id: str) -> RunSummary:
        return self._wait(self.storage.summarize_run(run_id))

    def compare_runs(self, baseline_run_id: str, candidate_run_id: str) -> RunComparison:
        return self._wait(self.storage.compare_runs(baseline_run_id, candidate_run_id))

    def iter_item_comparisons(
        self,
        baseline_run_id: str,
        candidate_run_id: str,
        *,
        only: ComparisonKind | str | None = None,
        score: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[ItemComparison]:
        return self._pull(
            self.storage.iter_item_comparisons(
                baseline_run_id, candidate_run_id, only=only, score=score, batch_size=batch_size
            )
        )

    def dangerously_clear_all(self) -> None:
        self._wait(self.storage.dangerously_clear_all())


async def _next(items: AsyncIterator[_T]) -> _T:
    return await anext(items)
