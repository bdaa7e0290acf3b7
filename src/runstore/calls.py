"""Each public call of the SQL adapters: its arguments checked, then turned into plans.

One place for both SQL adapters -- :class:`~runstore.sql.SqlRunsStorage` (blocking) and
:class:`~runstore.aio.AsyncSqlRunsStorage` (asyncio): a call's arguments are validated
here, before any I/O, and become a :class:`~runstore.operations.Plan` that the adapter
runs on its kind of connection. A call that streams (``iter_*``) becomes a *walk*: a
generator that yields plans, is sent each one's result, and yields :class:`Emit` with the
items to hand to the caller, one batch at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from runstore import operations
from runstore.arguments import (
    batch_argument,
    choice_argument,
    comparison_argument,
    flag_argument,
    id_argument,
    instant_argument,
    model_argument,
    scores_argument,
    size_argument,
)
from runstore.clock import Clock
from runstore.cursors import Position
from runstore.export import RESULT_FIELDS, StoredRow
from runstore.figures import compared, pair_items
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
    ResultFilters,
    ResultOrder,
    Run,
    RunComparison,
    RunFilters,
    RunResult,
    RunStatus,
    RunSummary,
    Score,
    ScoreFilter,
    UpdateRunInput,
)
from runstore.operations import Plan, Steps
from runstore.records import new_run, recorded_results

__all__ = ["Calls", "Emit", "Walk"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Emit(Generic[_T]):
    """Items a walk hands to the caller."""

    items: list[_T]


Walk = Generator["Plan[Any] | Emit[_T]", Any, None]
"""A streaming call: yields plans (and is sent their results) and items to emit."""


class Calls:
    """The calls of one SQL storage: its dialect and clock, and whether it may ``COPY``."""

    def __init__(self, dialect: str, clock: Clock, *, copy: bool) -> None:
        self.dialect = dialect
        self.clock = clock
        self.copy = copy

    # -- runs --------------------------------------------------------------------------

    def create_run(
        self, input: CreateRunInput | Mapping[str, Any], if_exists: ExistingRun | str
    ) -> Plan[Run]:
        input = model_argument(CreateRunInput, input)
        if_exists = choice_argument(ExistingRun, if_exists, "if_exists")
        run = new_run(input, self.clock())
        return operations.create_run(run, if_exists=if_exists, input=input)

    def update_run(self, input: UpdateRunInput | Mapping[str, Any]) -> Plan[Run]:
        input = model_argument(UpdateRunInput, input)
        return operations.update_run(input, self.clock)

    def get_run_by_id(self, id: str) -> Plan[Run | None]:
        return operations.get_run(id_argument(id, "id"))

    def list_runs(self, input: ListRunsInput | Mapping[str, Any] | None) -> Plan[ListRunsOutput]:
        input = model_argument(ListRunsInput, {} if input is None else input)
        return operations.list_runs(input)

    def iter_runs(self, batch_size: int, filters: Mapping[str, Any]) -> Walk[Run]:
        listing = RunFilters.model_validate(filters)
        size = size_argument(batch_size, "batch_size")
        return _follow(
            lambda after: operations.runs_batch(listing, after, size),
            operations.run_position,
            size,
        )

    def delete_run(self, id: str) -> Plan[None]:
        return operations.delete_run(id_argument(id, "id"))

    def recount_run(self, run_id: str) -> Plan[Run]:
        return operations.recount_run(id_argument(run_id, "run_id"), self.clock())

    def prune_runs(
        self,
        older_than: datetime,
        status: RunStatus | str | None,
        dataset_id: str | None,
        batch_size: int,
    ) -> Plan[int]:
        older_than = instant_argument(older_than, "older_than")
        status = None if status is None else choice_argument(RunStatus, status, "status")
        dataset_id = None if dataset_id is None else id_argument(dataset_id, "dataset_id")
        size = size_argument(batch_size, "batch_size")
        return operations.prune_runs(older_than, status, dataset_id, size)

    def vacuum(self) -> Plan[None]:
        return operations.vacuum(self.dialect)

    # -- results -----------------------------------------------------------------------

    def add_result(
        self,
        input: AddRunResultInput | Mapping[str, Any],
        update_counts: bool,
        on_conflict: OnConflict | str,
    ) -> Plan[RunResult]:
        """One result: a plan of its own by default; with ``on_conflict``, a batch of one."""
        input = model_argument(AddRunResultInput, input)
        update_counts = flag_argument(update_counts, "update_counts")
        on_conflict = choice_argument(OnConflict, on_conflict, "on_conflict")
        now = self.clock()
        (result,) = recorded_results([input], now)
        if on_conflict is OnConflict.ERROR:
            return operations.add_result(result, update_counts=update_counts, dialect=self.dialect)
        batch = operations.add_results(
            [result],
            update_counts=update_counts,
            now=now,
            copy=False,
            dialect=self.dialect,
            on_conflict=on_conflict,
            batch=False,
        )
        return Plan(batch.mode, _only(batch.steps))

    def add_results(
        self,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        update_counts: bool,
        on_conflict: OnConflict | str,
    ) -> Plan[list[RunResult]] | None:
        """None for an empty batch: nothing to run."""
        update_counts = flag_argument(update_counts, "update_counts")
        on_conflict = choice_argument(OnConflict, on_conflict, "on_conflict")
        batch = batch_argument(inputs)
        if not batch:
            return None
        now = self.clock()
        return operations.add_results(
            recorded_results(batch, now),
            update_counts=update_counts,
            now=now,
            copy=self.copy,
            dialect=self.dialect,
            on_conflict=on_conflict,
        )

    def get_result_by_id(self, id: str) -> Plan[RunResult | None]:
        return operations.get_result(id_argument(id, "id"), self.dialect)

    def list_results(
        self, input: ListRunResultsInput | Mapping[str, Any]
    ) -> Plan[ListRunResultsOutput]:
        input = model_argument(ListRunResultsInput, input)
        return operations.list_results(input, self.dialect)

    def iter_results(
        self,
        run_id: str,
        batch_size: int,
        has_error: bool | None,
        item_id: str | None,
        score: ScoreFilter | Mapping[str, Any] | None,
        order: ResultOrder | str,
    ) -> Walk[RunResult]:
        run_id = id_argument(run_id, "run_id")
        size = size_argument(batch_size, "batch_size")
        filters = ResultFilters.model_validate(
            {"has_error": has_error, "item_id": item_id, "score": score, "order": order}
        )
        return _follow(
            lambda after: operations.results_batch(run_id, filters, after, size, self.dialect),
            operations.result_position(filters.order),
            size,
        )

    def stored_rows(self, run_id: str, size: int) -> Walk[Sequence[StoredRow]]:
        """Exports' columnar path: batches of stored rows (each batch one item)."""
        return _stored_rows(run_id, size, self.dialect)

    def delete_results_by_run_id(self, run_id: str) -> Plan[None]:
        return operations.delete_results_of_run(id_argument(run_id, "run_id"))

    def dangerously_clear_all(self) -> Plan[None]:
        return operations.clear_all()

    # -- scores ------------------------------------------------------------------------

    def add_scores(
        self, inputs: Iterable[AddScoreInput | Mapping[str, Any]], replace: bool
    ) -> Plan[list[Score]] | None:
        """None for an empty batch: nothing to run."""
        replace = flag_argument(replace, "replace")
        batch = scores_argument(inputs)
        if not batch:
            return None
        return operations.add_scores(batch, replace=replace, now=self.clock(), dialect=self.dialect)

    def list_scores(
        self, run_id: str, result_id: str | None, name: str | None
    ) -> Plan[list[Score]]:
        run_id, result_id, name = _score_arguments(run_id, result_id, name)
        return operations.list_scores(run_id, result_id, name)

    def iter_scores(
        self, run_id: str, result_id: str | None, name: str | None, batch_size: int
    ) -> Walk[Score]:
        run_id, result_id, name = _score_arguments(run_id, result_id, name)
        size = size_argument(batch_size, "batch_size")
        return _scores_after(run_id, result_id, name, size)

    # -- answers -----------------------------------------------------------------------

    def summarize_run(self, run_id: str) -> Plan[RunSummary]:
        run_id = id_argument(run_id, "run_id")
        return operations.summarize_run(run_id, dialect=self.dialect)

    def compare_runs(self, baseline_run_id: str, candidate_run_id: str) -> Plan[RunComparison]:
        baseline = id_argument(baseline_run_id, "baseline_run_id")
        candidate = id_argument(candidate_run_id, "candidate_run_id")
        return operations.compare_runs(baseline, candidate)

    def iter_item_comparisons(
        self,
        baseline_run_id: str,
        candidate_run_id: str,
        only: ComparisonKind | str | None,
        score: str | None,
        batch_size: int,
    ) -> Walk[ItemComparison]:
        baseline = id_argument(baseline_run_id, "baseline_run_id")
        candidate = id_argument(candidate_run_id, "candidate_run_id")
        wanted = comparison_argument(only)
        score = None if score is None else id_argument(score, "score")
        size = size_argument(batch_size, "batch_size")
        return _item_comparisons(baseline, candidate, wanted, score, size, self.dialect)


def _only(steps: Steps[list[_T]]) -> Steps[_T]:
    (written,) = yield from steps
    return written


def _follow(
    batch: Callable[[Position | None], Plan[list[_T]]],
    position: Callable[[_T], Position],
    size: int,
) -> Walk[_T]:
    """Keyset batches of ``size`` until one comes back short, each read on its own."""
    after: Position | None = None
    while True:
        rows: list[_T] = yield batch(after)
        yield Emit(rows)
        if len(rows) < size:
            return
        after = position(rows[-1])


def _stored_rows(run_id: str, size: int, dialect: str) -> Walk[Sequence[StoredRow]]:
    after: Position | None = None
    while True:
        rows: Sequence[StoredRow] = yield operations.result_rows_batch(run_id, after, size, dialect)
        if rows:
            yield Emit([rows])
        if len(rows) < size:
            return
        last = rows[-1]
        after = Position(datetime.fromisoformat(last[_STARTED_AT]), last[_ID])


_STARTED_AT = RESULT_FIELDS.index("started_at")
_ID = RESULT_FIELDS.index("id")


def _scores_after(run_id: str, result_id: str | None, name: str | None, size: int) -> Walk[Score]:
    after: Score | None = None
    while True:
        scores: list[Score] = yield operations.scores_batch(run_id, result_id, name, after, size)
        yield Emit(scores)
        if len(scores) < size:
            return
        after = scores[-1]


def _item_comparisons(
    baseline: str,
    candidate: str,
    only: ComparisonKind | None,
    score: str | None,
    size: int,
    dialect: str,
) -> Walk[ItemComparison]:
    after, reading = "", max(size, 2)
    while True:
        results = yield operations.items_batch(baseline, candidate, after, reading, dialect)
        pairs, following = pair_items(results, reading, after)
        if not pairs and following == after:  # one item filled the batch
            reading *= 2
            continue
        yield Emit(list(compared(pairs, only, score)))
        if following is None:
            return
        after, reading = following, max(size, 2)


def _score_arguments(
    run_id: object, result_id: object, name: object
) -> tuple[str, str | None, str | None]:
    return (
        id_argument(run_id, "run_id"),
        None if result_id is None else id_argument(result_id, "result_id"),
        None if name is None else id_argument(name, "name"),
    )
