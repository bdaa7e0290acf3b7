"""An in-process adapter for tests and quick scripts. Nothing is persisted."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from runstore.base import (
    RunsStorage,
    check_batch_size,
    collector_paused,
    count_deltas,
    fetch_limit,
    new_run,
    page_result,
    recorded_result,
    runs_scope,
    split_page,
    validated_batch,
)
from runstore.clock import Clock, new_id
from runstore.cursors import CursorKind, Position, decode_cursor, encode_cursor
from runstore.errors import DuplicateError, RunNotFoundError, StorageClosedError
from runstore.jsonvalues import dumps_json, loads_json
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
    TargetType,
    UpdateRunInput,
)

__all__ = ["InMemoryRunsStorage"]

_Row = TypeVar("_Row")


@dataclass(frozen=True, slots=True)
class _StoredResult:
    """A result with its JSON kept as text, so no caller can reach the stored objects."""

    result: RunResult
    input: str
    output: str | None
    expected_output: str | None

    @classmethod
    def of(cls, result: RunResult) -> _StoredResult:
        return cls(
            result=result,
            input=dumps_json(result.input),
            output=None if result.output is None else dumps_json(result.output),
            expected_output=(
                None if result.expected_output is None else dumps_json(result.expected_output)
            ),
        )

    def read(self) -> RunResult:
        return self.result.model_copy(
            update={
                "input": loads_json(self.input),
                "output": None if self.output is None else loads_json(self.output),
                "expected_output": (
                    None if self.expected_output is None else loads_json(self.expected_output)
                ),
            }
        )


def _run_key(run: Run) -> tuple[datetime, str]:
    return (run.created_at, run.id)


def _result_key(stored: _StoredResult) -> tuple[datetime, str]:
    return (stored.result.started_at, stored.result.id)


class InMemoryRunsStorage(RunsStorage):
    """The full contract, held in dictionaries behind one lock."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._lock = threading.RLock()
        self._closed = False
        self._runs: dict[str, Run] = {}
        self._results: dict[str, _StoredResult] = {}
        self._result_ids_by_run: dict[str, dict[str, str]] = {}  # run id -> item id -> id

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageClosedError("this InMemoryRunsStorage was closed")

    # -- runs --------------------------------------------------------------------------

    def create_run(self, input: CreateRunInput) -> Run:
        with self._lock:
            self._check_open()
            run_id = input.id or new_id()
            if run_id in self._runs:
                raise DuplicateError(f"run {run_id!r} already exists")
            run = new_run(input.model_copy(update={"id": run_id}), self._now())
            self._runs[run_id] = run
            self._result_ids_by_run[run_id] = {}
            return run

    def update_run(self, input: UpdateRunInput) -> Run:
        with self._lock:
            self._check_open()
            current = self._runs.get(input.id)
            if current is None:
                raise RunNotFoundError(input.id)
            updated_at = self._now_after(current.updated_at)
            run = current.model_copy(update={**input.changes(), "updated_at": updated_at})
            self._runs[input.id] = run
            return run

    def get_run_by_id(self, id: str) -> Run | None:
        with self._lock:
            self._check_open()
            return self._runs.get(id)

    def _matching_runs(self, input: ListRunsInput) -> list[Run]:
        wanted = {
            name: value
            for name in ("dataset_id", "status", "target_type", "target_id")
            if (value := getattr(input, name)) is not None
        }
        with self._lock:
            self._check_open()
            return [
                run
                for run in self._runs.values()
                if all(getattr(run, name) == value for name, value in wanted.items())
            ]

    def list_runs(self, input: ListRunsInput) -> ListRunsOutput:
        matching = self._matching_runs(input)
        matching.sort(key=_run_key, reverse=True)
        scope = runs_scope(input)
        page, has_more, next_cursor = _page(
            matching, input.pagination, input.cursor, "runs", scope, _run_key, descending=True
        )
        return ListRunsOutput(
            runs=tuple(page),
            pagination=page_result(input.pagination, len(matching), has_more),
            next_cursor=next_cursor,
        )

    def iter_runs(
        self,
        *,
        dataset_id: str | None = None,
        status: RunStatus | str | None = None,
        target_type: TargetType | str | None = None,
        target_id: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Run]:
        check_batch_size(batch_size)
        listing = ListRunsInput(
            dataset_id=dataset_id,
            status=status,
            target_type=target_type,
            target_id=target_id,
            pagination=StoragePagination(per_page=batch_size),
        )
        for output in _follow_cursors(self.list_runs, listing):
            yield from output.runs

    def delete_run(self, id: str) -> None:
        with self._lock:
            self._check_open()
            self._delete_results(id)
            self._runs.pop(id, None)
            self._result_ids_by_run.pop(id, None)

    # -- results -----------------------------------------------------------------------

    def add_result(self, input: AddRunResultInput, *, update_counts: bool = False) -> RunResult:
        return self._record([input], update_counts=update_counts, batch=False)[0]

    def add_results(
        self,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        *,
        update_counts: bool = False,
    ) -> list[RunResult]:
        with collector_paused():
            return self._record(validated_batch(inputs), update_counts=update_counts, batch=True)

    def _record(
        self, inputs: Sequence[AddRunResultInput], *, update_counts: bool, batch: bool
    ) -> list[RunResult]:
        with self._lock:
            self._check_open()
            now = self._now()
            results = [recorded_result(input, now) for input in inputs]
            for position, result in enumerate(results):
                at = position if batch else None
                by_item = self._result_ids_by_run.get(result.run_id)
                if by_item is None:
                    raise RunNotFoundError(result.run_id, position=at)
                if result.id in self._results:
                    raise DuplicateError(f"result {result.id!r} already exists", position=at)
                if result.item_id in by_item:
                    raise DuplicateError(
                        f"run {result.run_id!r} already has a result for item {result.item_id!r}",
                        position=at,
                    )
            stored = [_StoredResult.of(result) for result in results]
            for entry in stored:
                self._results[entry.result.id] = entry
                self._result_ids_by_run[entry.result.run_id][entry.result.item_id] = entry.result.id
            if update_counts:
                for run_id, (succeeded, failed) in count_deltas(results).items():
                    run = self._runs[run_id]
                    self._runs[run_id] = run.model_copy(
                        update={
                            "succeeded_count": run.succeeded_count + succeeded,
                            "failed_count": run.failed_count + failed,
                            "updated_at": max(run.updated_at, now),
                        }
                    )
            return [entry.read() for entry in stored]

    def get_result_by_id(self, id: str) -> RunResult | None:
        with self._lock:
            self._check_open()
            stored = self._results.get(id)
        return None if stored is None else stored.read()

    def list_results(self, input: ListRunResultsInput) -> ListRunResultsOutput:
        with self._lock:
            self._check_open()
            ids = self._result_ids_by_run.get(input.run_id, {}).values()
            matching = [self._results[result_id] for result_id in ids]
        matching.sort(key=_result_key)
        page, has_more, next_cursor = _page(
            matching, input.pagination, input.cursor, "results", (input.run_id,), _result_key
        )
        return ListRunResultsOutput(
            results=tuple(stored.read() for stored in page),
            pagination=page_result(input.pagination, len(matching), has_more),
            next_cursor=next_cursor,
        )

    def iter_results(self, run_id: str, *, batch_size: int = 1000) -> Iterator[RunResult]:
        check_batch_size(batch_size)
        listing = ListRunResultsInput(
            run_id=run_id, pagination=StoragePagination(per_page=batch_size)
        )
        for output in _follow_cursors(self.list_results, listing):
            yield from output.results

    def delete_results_by_run_id(self, run_id: str) -> None:
        with self._lock:
            self._check_open()
            self._delete_results(run_id)

    def dangerously_clear_all(self) -> None:
        with self._lock:
            self._check_open()
            self._runs.clear()
            self._results.clear()
            self._result_ids_by_run.clear()

    def _delete_results(self, run_id: str) -> None:
        by_item = self._result_ids_by_run.get(run_id)
        if by_item is None:
            return
        for result_id in by_item.values():
            del self._results[result_id]
        by_item.clear()


_Input = TypeVar("_Input", ListRunsInput, ListRunResultsInput)
_Output = TypeVar("_Output", ListRunsOutput, ListRunResultsOutput)


def _follow_cursors(list_page: Callable[[_Input], _Output], listing: _Input) -> Iterator[_Output]:
    """Every page of a list, each continuing from the previous page's cursor."""
    while True:
        output = list_page(listing)
        yield output
        if output.next_cursor is None:
            return
        listing = listing.model_copy(update={"cursor": output.next_cursor})


def _page(
    rows: list[_Row],
    pagination: StoragePagination,
    cursor: str | None,
    kind: CursorKind,
    scope: Sequence[str | None],
    key: Callable[[_Row], tuple[datetime, str]],
    *,
    descending: bool = False,
) -> tuple[Sequence[_Row], bool, str | None]:
    """One page of sorted ``rows``, whether more follow, and the cursor to the next page."""
    if cursor is not None:
        after = decode_cursor(cursor, kind, scope)
        mark = (after.moment, after.id)
        rows = [row for row in rows if (key(row) < mark if descending else key(row) > mark)]
    else:
        rows = rows[pagination.offset :]
    limit = fetch_limit(pagination)
    page, has_more = split_page(rows if limit is None else rows[:limit], pagination)
    next_cursor = None
    if has_more:
        moment, row_id = key(page[-1])
        next_cursor = encode_cursor(kind, scope, Position(moment, row_id))
    return page, has_more, next_cursor
