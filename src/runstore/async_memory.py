"""The in-memory adapter for asyncio programs and their tests.

Each call is :class:`~runstore.memory.InMemoryRunsStorage`'s, made directly: the data is
in this process's memory, so no call waits on I/O, and each holds the event loop only for
as long as the blocking adapter takes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from runstore.async_base import AsyncRunsStorage
from runstore.clock import Clock
from runstore.memory import InMemoryRunsStorage
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

__all__ = ["AsyncInMemoryRunsStorage"]

_T = TypeVar("_T")


class AsyncInMemoryRunsStorage(AsyncRunsStorage):
    """Runs and results in this process's memory, for asyncio programs; nothing persists."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.storage = InMemoryRunsStorage(clock=clock)

    def __repr__(self) -> str:
        return "AsyncInMemoryRunsStorage()"

    async def close(self) -> None:
        self.storage.close()

    async def create_run(
        self,
        input: CreateRunInput | Mapping[str, Any],
        *,
        if_exists: ExistingRun | str = ExistingRun.ERROR,
    ) -> Run:
        return self.storage.create_run(input, if_exists=if_exists)

    async def update_run(self, input: UpdateRunInput | Mapping[str, Any]) -> Run:
        return self.storage.update_run(input)

    async def get_run_by_id(self, id: str) -> Run | None:
        return self.storage.get_run_by_id(id)

    async def list_runs(
        self, input: ListRunsInput | Mapping[str, Any] | None = None
    ) -> ListRunsOutput:
        return self.storage.list_runs(input)

    def iter_runs(self, *, batch_size: int = 1000, **filters: Any) -> AsyncIterator[Run]:
        return _each(self.storage.iter_runs(batch_size=batch_size, **filters))

    async def delete_run(self, id: str) -> None:
        self.storage.delete_run(id)

    async def recount_run(self, run_id: str) -> Run:
        return self.storage.recount_run(run_id)

    async def prune_runs(
        self,
        *,
        older_than: datetime,
        status: RunStatus | str | None = None,
        dataset_id: str | None = None,
        batch_size: int = 100,
    ) -> int:
        return self.storage.prune_runs(
            older_than=older_than, status=status, dataset_id=dataset_id, batch_size=batch_size
        )

    async def add_result(
        self,
        input: AddRunResultInput | Mapping[str, Any],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> RunResult:
        return self.storage.add_result(input, update_counts=update_counts, on_conflict=on_conflict)

    async def add_results(
        self,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        *,
        update_counts: bool = False,
        on_conflict: OnConflict | str = OnConflict.ERROR,
    ) -> list[RunResult]:
        return self.storage.add_results(
            inputs, update_counts=update_counts, on_conflict=on_conflict
        )

    async def get_result_by_id(self, id: str) -> RunResult | None:
        return self.storage.get_result_by_id(id)

    async def list_results(
        self, input: ListRunResultsInput | Mapping[str, Any]
    ) -> ListRunResultsOutput:
        return self.storage.list_results(input)

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
        return _each(
            self.storage.iter_results(
                run_id,
                batch_size=batch_size,
                has_error=has_error,
                item_id=item_id,
                score=score,
                order=order,
            )
        )

    async def delete_results_by_run_id(self, run_id: str) -> None:
        self.storage.delete_results_by_run_id(run_id)

    async def dangerously_clear_all(self) -> None:
        self.storage.dangerously_clear_all()

    async def add_scores(
        self, inputs: Iterable[AddScoreInput | Mapping[str, Any]], *, replace: bool = False
    ) -> list[Score]:
        return self.storage.add_scores(inputs, replace=replace)

    async def list_scores(
        self, run_id: str, *, result_id: str | None = None, name: str | None = None
    ) -> list[Score]:
        return self.storage.list_scores(run_id, result_id=result_id, name=name)

    def iter_scores(
        self,
        run_id: str,
        *,
        result_id: str | None = None,
        name: str | None = None,
        batch_size: int = 1000,
    ) -> AsyncIterator[Score]:
        return _each(
            self.storage.iter_scores(run_id, result_id=result_id, name=name, batch_size=batch_size)
        )

    async def summarize_run(self, run_id: str) -> RunSummary:
        return self.storage.summarize_run(run_id)

    async def compare_runs(self, baseline_run_id: str, candidate_run_id: str) -> RunComparison:
        return self.storage.compare_runs(baseline_run_id, candidate_run_id)

    def iter_item_comparisons(
        self,
        baseline_run_id: str,
        candidate_run_id: str,
        *,
        only: ComparisonKind | str | None = None,
        score: str | None = None,
        batch_size: int = 1000,
    ) -> AsyncIterator[ItemComparison]:
        return _each(
            self.storage.iter_item_comparisons(
                baseline_run_id, candidate_run_id, only=only, score=score, batch_size=batch_size
            )
        )


async def _each(items: Iterator[_T]) -> AsyncIterator[_T]:
    for item in items:
        yield item
