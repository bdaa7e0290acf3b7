"""An in-process adapter for tests and quick scripts. Nothing is persisted."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TypeVar

from runstore.base import RunsStorage, new_run, page_result, recorded_result
from runstore.clock import Clock, new_id
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
    StoragePagination,
    UpdateRunInput,
)

__all__ = ["InMemoryRunsStorage"]


@dataclass(frozen=True, slots=True)
class _StoredResult:
    """A result with its JSON kept as text, so no caller can reach the stored objects."""

    result: RunResult
    input: str
    output: str | None
    expected_output: str | None

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

    def list_runs(self, input: ListRunsInput) -> ListRunsOutput:
        with self._lock:
            self._check_open()
            matching = [
                run
                for run in self._runs.values()
                if input.dataset_id is None or run.dataset_id == input.dataset_id
            ]
        matching.sort(key=lambda run: (run.created_at, run.id), reverse=True)
        page = _slice(matching, input.pagination)
        return ListRunsOutput(
            runs=tuple(page), pagination=page_result(input.pagination, len(matching), len(page))
        )

    def delete_run(self, id: str) -> None:
        with self._lock:
            self._check_open()
            self._delete_results(id)
            self._runs.pop(id, None)
            self._result_ids_by_run.pop(id, None)

    # -- results -----------------------------------------------------------------------

    def add_result(self, input: AddRunResultInput) -> RunResult:
        with self._lock:
            self._check_open()
            by_item = self._result_ids_by_run.get(input.run_id)
            if by_item is None:
                raise RunNotFoundError(input.run_id)
            result_id = input.id or new_id()
            if result_id in self._results:
                raise DuplicateError(f"result {result_id!r} already exists")
            if input.item_id in by_item:
                raise DuplicateError(
                    f"run {input.run_id!r} already has a result for item {input.item_id!r}"
                )
            stored = _StoredResult(
                result=recorded_result(input.model_copy(update={"id": result_id}), self._now()),
                input=dumps_json(input.input),
                output=None if input.output is None else dumps_json(input.output),
                expected_output=(
                    None if input.expected_output is None else dumps_json(input.expected_output)
                ),
            )
            self._results[result_id] = stored
            by_item[input.item_id] = result_id
            return stored.read()

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
        matching.sort(key=lambda stored: (stored.result.started_at, stored.result.id))
        page = _slice(matching, input.pagination)
        return ListRunResultsOutput(
            results=tuple(stored.read() for stored in page),
            pagination=page_result(input.pagination, len(matching), len(page)),
        )

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


_Row = TypeVar("_Row")


def _slice(rows: list[_Row], pagination: StoragePagination) -> list[_Row]:
    if pagination.per_page is False:
        return rows
    return rows[pagination.offset : pagination.offset + pagination.per_page]
