"""An in-process adapter for tests and quick scripts. Nothing is persisted."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from runstore.arguments import (
    batch_argument,
    flag_argument,
    id_argument,
    model_argument,
    size_argument,
)
from runstore.base import RunsStorage
from runstore.clock import Clock
from runstore.cursors import CursorKind, Position, decode_cursor, encode_cursor
from runstore.errors import DuplicateError, RunNotFoundError, StorageClosedError
from runstore.jsonvalues import dumps_json, loads_json
from runstore.limits import MAX_COUNT
from runstore.models import (
    AddRunResultInput,
    CreateRunInput,
    ListRunResultsInput,
    ListRunResultsOutput,
    ListRunsInput,
    ListRunsOutput,
    Run,
    RunFilters,
    RunResult,
    StoragePagination,
    UpdateRunInput,
)
from runstore.pages import Page, fetch_limit, make_page
from runstore.records import (
    count_deltas,
    counter_overflow,
    first_position,
    new_run,
    recorded_results,
)

__all__ = ["InMemoryRunsStorage"]

_Row = TypeVar("_Row")
_JSON_FIELDS = ("input", "output", "expected_output")


@dataclass(frozen=True, slots=True)
class _StoredResult:
    """A result with its JSON kept as text, so no caller can reach the stored objects."""

    result: RunResult
    json_texts: tuple[str | None, ...]

    @classmethod
    def of(cls, result: RunResult) -> _StoredResult:
        values = (getattr(result, name) for name in _JSON_FIELDS)
        return cls(result, tuple(None if value is None else dumps_json(value) for value in values))

    def read(self) -> RunResult:
        values = (None if text is None else loads_json(text) for text in self.json_texts)
        return self.result.model_copy(update=dict(zip(_JSON_FIELDS, values, strict=True)))


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

    def __repr__(self) -> str:
        return "InMemoryRunsStorage()"

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageClosedError("this InMemoryRunsStorage was closed")

    # -- runs --------------------------------------------------------------------------

    def create_run(self, input: CreateRunInput | Mapping[str, Any]) -> Run:
        input = model_argument(CreateRunInput, input)
        with self._lock:
            self._check_open()
            run = new_run(input, self._now())
            if run.id in self._runs:
                raise DuplicateError(f"run {run.id!r} already exists")
            self._runs[run.id] = run
            self._result_ids_by_run[run.id] = {}
            return run

    def update_run(self, input: UpdateRunInput | Mapping[str, Any]) -> Run:
        input = model_argument(UpdateRunInput, input)
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
        id = id_argument(id, "id")
        with self._lock:
            self._check_open()
            return self._runs.get(id)

    def list_runs(self, input: ListRunsInput | Mapping[str, Any] | None = None) -> ListRunsOutput:
        input = model_argument(ListRunsInput, {} if input is None else input)
        wanted = input.given()
        with self._lock:
            self._check_open()
            matching = [
                run
                for run in self._runs.values()
                if all(getattr(run, name) == value for name, value in wanted.items())
            ]
        matching.sort(key=_run_key, reverse=True)
        page = _page(matching, input.pagination, input.cursor, "runs", input.scope(), _run_key)
        return ListRunsOutput(
            runs=tuple(page.rows), pagination=page.pagination, next_cursor=page.next_cursor
        )

    def iter_runs(self, *, batch_size: int = 1000, **filters: Any) -> Iterator[Run]:
        listing = ListRunsInput(
            **RunFilters.model_validate(filters).given(),
            pagination=StoragePagination(per_page=size_argument(batch_size, "batch_size")),
        )
        return (run for output in _follow_cursors(self.list_runs, listing) for run in output.runs)

    def delete_run(self, id: str) -> None:
        id = id_argument(id, "id")
        with self._lock:
            self._check_open()
            self._delete_results(id)
            self._runs.pop(id, None)
            self._result_ids_by_run.pop(id, None)

    # -- results -----------------------------------------------------------------------

    def add_result(
        self, input: AddRunResultInput | Mapping[str, Any], *, update_counts: bool = False
    ) -> RunResult:
        input = model_argument(AddRunResultInput, input)
        return self._record([input], flag_argument(update_counts, "update_counts"), batch=False)[0]

    def add_results(
        self,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        *,
        update_counts: bool = False,
    ) -> list[RunResult]:
        update_counts = flag_argument(update_counts, "update_counts")
        return self._record(batch_argument(inputs), update_counts, batch=True)

    def _record(
        self, inputs: Sequence[AddRunResultInput], update_counts: bool, *, batch: bool
    ) -> list[RunResult]:
        with self._lock:
            self._check_open()
            now = self._now()
            results = recorded_results(inputs, now)
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
            counted: dict[str, Run] = {}
            if update_counts:
                for run_id, (succeeded, failed) in count_deltas(results).items():
                    run = self._runs[run_id]
                    if max(run.succeeded_count + succeeded, run.failed_count + failed) > MAX_COUNT:
                        at_run = first_position(results, run_id) if batch else None
                        raise counter_overflow(run_id, at_run)
                    counted[run_id] = _counted(run, succeeded, failed, now)
            stored = [_StoredResult.of(result) for result in results]
            for entry in stored:
                self._results[entry.result.id] = entry
                self._result_ids_by_run[entry.result.run_id][entry.result.item_id] = entry.result.id
            self._runs.update(counted)
            return [entry.read() for entry in stored]

    def get_result_by_id(self, id: str) -> RunResult | None:
        id = id_argument(id, "id")
        with self._lock:
            self._check_open()
            stored = self._results.get(id)
        return None if stored is None else stored.read()

    def list_results(self, input: ListRunResultsInput | Mapping[str, Any]) -> ListRunResultsOutput:
        input = model_argument(ListRunResultsInput, input)
        with self._lock:
            self._check_open()
            ids = self._result_ids_by_run.get(input.run_id, {}).values()
            matching = [self._results[result_id] for result_id in ids]
        matching.sort(key=_result_key)
        page = _page(
            matching, input.pagination, input.cursor, "results", (input.run_id,), _result_key
        )
        return ListRunResultsOutput(
            results=tuple(stored.read() for stored in page.rows),
            pagination=page.pagination,
            next_cursor=page.next_cursor,
        )

    def iter_results(self, run_id: str, *, batch_size: int = 1000) -> Iterator[RunResult]:
        listing = ListRunResultsInput(
            run_id=id_argument(run_id, "run_id"),
            pagination=StoragePagination(per_page=size_argument(batch_size, "batch_size")),
        )
        outputs = _follow_cursors(self.list_results, listing)
        return (result for output in outputs for result in output.results)

    def delete_results_by_run_id(self, run_id: str) -> None:
        run_id = id_argument(run_id, "run_id")
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


def _counted(run: Run, succeeded: int, failed: int, now: datetime) -> Run:
    """``run`` with its counters grown, as the SQL adapter grows them."""
    return run.model_copy(
        update={
            "succeeded_count": run.succeeded_count + succeeded,
            "failed_count": run.failed_count + failed,
            "updated_at": max(run.updated_at, now),
        }
    )


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
) -> Page[_Row]:
    """One page of ``rows`` (sorted in list order), and the cursor to the next page."""
    total = len(rows)
    if cursor is not None:
        after = decode_cursor(cursor, kind, scope)
        mark = (after.moment, after.id)
        descending = kind == "runs"
        rows = [row for row in rows if (key(row) < mark if descending else key(row) > mark)]
    else:
        rows = rows[pagination.offset :]
    limit = fetch_limit(pagination)
    return make_page(
        rows if limit is None else rows[:limit],
        total,
        pagination,
        lambda row: encode_cursor(kind, scope, Position(*key(row))),
    )
