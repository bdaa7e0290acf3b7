"""The asyncio contract: :class:`~runstore.base.RunsStorage`, every call awaited.

The same calls, arguments, results and errors as the blocking contract -- each method's
documentation is the blocking one's -- with ``async def`` methods, async iterators for
the ``iter_*`` calls, and ``async with`` for :meth:`init` and :meth:`close`.
:mod:`runstore.testing` proves it with the one contract suite (see
:class:`runstore.testing.bridge.BlockingRunsStorage`).
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self

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
    TargetType,
    UpdateRunInput,
)

__all__ = ["AsyncRunsStorage"]


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


def _share_documentation() -> None:
    """Each call documented once: the blocking contract's text."""
    for name, member in vars(AsyncRunsStorage).items():
        blocking = getattr(RunsStorage, name, None)
        if inspect.isfunction(member) and member.__doc__ is None and blocking is not None:
            member.__doc__ = blocking.__doc__


_share_documentation()
