"""The in-process adapters, for tests and quick scripts: nothing is persisted.

:class:`InMemoryRunsStorage` keeps runs, results and scores in dictionaries behind one
lock, and carries out each call of :mod:`runstore.calls` with one method of its own (its
table of calls, :data:`_CALLS`), to the contract's letter -- the same stored records
(:mod:`runstore.stored`), pages (:mod:`runstore.pages`), cursors and figures as the SQL
adapters. :class:`AsyncInMemoryRunsStorage` is the same for asyncio programs: no call
waits on I/O, so each holds the event loop only for as long as the blocking one takes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import TypeVar
from typing import cast

from runstore import calls
from runstore.async_base import AsyncRunsStorage
from runstore.base import RunsStorage
from runstore.clock import Clock
from runstore.clock import moved_forward
from runstore.clock import utc_now
from runstore.cursors import CursorKind
from runstore.cursors import Position
from runstore.cursors import decode_cursor
from runstore.cursors import encode_cursor
from runstore.errors import RunNotFoundError
from runstore.errors import counter_overflow
from runstore.errors import item_taken
from runstore.errors import result_exists
from runstore.errors import run_exists
from runstore.errors import score_exists
from runstore.errors import score_taken
from runstore.errors import storage_closed
from runstore.export import StoredRow
from runstore.export import rows_of_results
from runstore.figures import PERCENTILES
from runstore.figures import bin_of
from runstore.figures import compared
from runstore.figures import histogram
from runstore.figures import item_failed
from runstore.figures import item_scores
from runstore.figures import mean
from runstore.figures import paired_delta
from runstore.figures import paired_sums
from runstore.figures import percentile
from runstore.figures import total
from runstore.figures import usage_summary
from runstore.jsonvalues import dumps_json
from runstore.jsonvalues import loads_json
from runstore.models import FINISHED
from runstore.models import AddRunResultInput
from runstore.models import ExistingRun
from runstore.models import Histogram
from runstore.models import ItemComparison
from runstore.models import LatencySummary
from runstore.models import ListRunResultsInput
from runstore.models import ListRunResultsOutput
from runstore.models import ListRunsInput
from runstore.models import ListRunsOutput
from runstore.models import OnConflict
from runstore.models import PairedDelta
from runstore.models import ResultFilters
from runstore.models import ResultOrder
from runstore.models import Run
from runstore.models import RunComparison
from runstore.models import RunHistograms
from runstore.models import RunResult
from runstore.models import RunStatus
from runstore.models import RunSummary
from runstore.models import RunTrend
from runstore.models import Score
from runstore.models import ScoreComparison
from runstore.models import ScoreSummary
from runstore.models import StoragePagination
from runstore.models import TrendPoint
from runstore.pages import Page
from runstore.pages import fetch_limit
from runstore.pages import make_page
from runstore.stored import counted_run
from runstore.stored import existing_run
from runstore.stored import first_position
from runstore.stored import missing_result
from runstore.stored import missing_run
from runstore.stored import new_run
from runstore.stored import overwrite
from runstore.stored import recorded_results
from runstore.stored import recorded_scores
from runstore.stored import scores_of_results

__all__ = ["AsyncInMemoryRunsStorage", "InMemoryRunsStorage"]

_T = TypeVar("_T")
_Row = TypeVar("_Row")
_JSON_FIELDS = ("input", "output", "expected_output", "metadata")


@dataclass(frozen=True, slots=True)
class _Stored:
    """A model with its JSON kept as text, so no caller can reach the stored objects."""

    model: Any
    json_texts: tuple[str | None, ...]

    @classmethod
    def of(cls, model: Any, fields: Sequence[str]) -> _Stored:
        values = (getattr(model, name) for name in fields)
        return cls(model, tuple(None if value is None else dumps_json(value) for value in values))

    def read(self, fields: Sequence[str], **changes: Any) -> Any:
        values = (None if text is None else loads_json(text) for text in self.json_texts)
        return self.model.model_copy(update=dict(zip(fields, values, strict=True)) | changes)


def _detached(run: Run) -> Run:
    """A run to hand out: its metadata a copy, so no caller can reach the stored one."""
    if not run.metadata:
        return run
    return run.model_copy(update={"metadata": loads_json(dumps_json(run.metadata))})


def _run_key(run: Run) -> tuple[datetime, str]:
    return (run.created_at, run.id)


def _score_key(score: Score) -> tuple[str, float, str]:
    return (score.name, score.value, score.id)


class InMemoryRunsStorage(RunsStorage):
    """The full contract, held in dictionaries behind one lock."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or utc_now
        self._lock = threading.RLock()
        self._closed = False
        self._runs: dict[str, Run] = {}
        self._results: dict[str, _Stored] = {}
        self._result_ids_by_run: dict[str, dict[tuple[str, int], str]] = {}
        # run id -> (item id, repetition) -> result id
        self._scores: dict[str, _Stored] = {}
        self._score_ids: dict[str, dict[str, str]] = {}  # result id -> name -> score id
        # Kept summaries of finished runs, and each run's writes: a summary computed
        # outside the lock is kept only if no write came meanwhile.
        self._kept: dict[str, RunSummary] = {}
        self._writes: dict[str, int] = {}

    def __repr__(self) -> str:
        return "InMemoryRunsStorage()"

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise storage_closed("this InMemoryRunsStorage")

    def _now(self) -> datetime:
        return self._clock()

    def _wrote(self, run_ids: Iterable[str]) -> None:
        """Under the lock: what these runs' summaries cover changed."""
        for run_id in run_ids:
            self._writes[run_id] = self._writes.get(run_id, 0) + 1
            self._kept.pop(run_id, None)

    # -- the contract's hooks ----------------------------------------------------------

    def _perform(self, call: calls.Call[_T]) -> _T:
        return cast("_T", _CALLS[type(call)](self, call))

    def _stream(self, call: calls.Stream[_T]) -> Iterator[_T]:
        self._check_open()
        return cast("Iterator[_T]", _STREAMS[type(call)](self, call))

    # -- runs --------------------------------------------------------------------------

    def _create_run(self, call: calls.CreateRun) -> Run:
        with self._lock:
            self._check_open()
            run = new_run(call.input, self._now())
            stored = self._runs.get(run.id)
            if stored is not None:
                if call.if_exists is ExistingRun.RETURN:
                    return _detached(existing_run(call.input, stored))
                raise run_exists(run.id)
            self._runs[run.id] = _detached(run)
            self._result_ids_by_run[run.id] = {}
            return run

    def _update_run(self, call: calls.UpdateRun) -> Run:
        input = call.input
        with self._lock:
            self._check_open()
            current = self._runs.get(input.id)
            if current is None:
                raise RunNotFoundError(input.id)
            updated_at = moved_forward(self._now(), current.updated_at)
            run = current.model_copy(update={**input.changes(), "updated_at": updated_at})
            self._runs[input.id] = _detached(run)
            if run.status not in FINISHED:
                self._wrote([run.id])
        if "status" in input.changes() and run.status in FINISHED and run.id not in self._kept:
            self._keep(run.id)  # the call that finishes a run keeps its summary
        return run

    def _get_run_by_id(self, call: calls.GetRunById) -> Run | None:
        with self._lock:
            self._check_open()
            run = self._runs.get(call.id)
        return None if run is None else _detached(run)

    def _list_runs(self, call: calls.ListRuns) -> ListRunsOutput:
        return self._runs_page(call.input)

    def _runs_page(self, input: ListRunsInput) -> ListRunsOutput:
        with self._lock:
            self._check_open()
            matching = [run for run in self._runs.values() if input.matches(run)]
        matching.sort(key=_run_key, reverse=True)
        page = _page(
            matching, input.pagination, input.cursor, "runs", input.scope(), _run_key, True
        )
        return ListRunsOutput(
            runs=tuple(_detached(run) for run in page.rows),
            pagination=page.pagination,
            next_cursor=page.next_cursor,
        )

    def _find_baseline(self, call: calls.FindBaseline) -> Run | None:
        candidate = self._require_run(call.candidate_run_id)
        filters = call.filters.model_copy(
            update={"dataset_id": candidate.dataset_id, "status": RunStatus.COMPLETED}
        )
        with self._lock:
            self._check_open()
            before = [
                run
                for run in self._runs.values()
                if _run_key(run) < _run_key(candidate) and filters.matches(run)
            ]
        return _detached(max(before, key=_run_key)) if before else None

    def _iter_runs(self, call: calls.IterRuns) -> Iterator[Run]:
        listing = ListRunsInput(
            **call.filters.given(), pagination=StoragePagination(per_page=call.batch_size)
        )
        return (run for output in _follow_cursors(self._runs_page, listing) for run in output.runs)

    def _delete_run(self, call: calls.DeleteRun) -> None:
        id = call.id
        with self._lock:
            self._check_open()
            self._delete_results(id)
            self._runs.pop(id, None)
            self._result_ids_by_run.pop(id, None)
            self._wrote([id])

    def _recount_run(self, call: calls.RecountRun) -> Run:
        run_id = call.run_id
        with self._lock:
            self._check_open()
            run = self._runs.get(run_id)
            if run is None:
                raise RunNotFoundError(run_id)
            results = [self._results[i].model for i in self._result_ids_by_run[run_id].values()]
            failed = sum(result.error is not None for result in results)
            run = run.model_copy(
                update={
                    "result_count": len(results),
                    "succeeded_count": len(results) - failed,
                    "failed_count": failed,
                    "updated_at": max(run.updated_at, self._now()),
                }
            )
            self._runs[run_id] = run
            self._wrote([run_id])
            return _detached(run)

    def _prune_runs(self, call: calls.PruneRuns) -> int:
        older_than, status, dataset_id = call.older_than, call.status, call.dataset_id
        tags = set(call.tags)
        with self._lock:
            self._check_open()
            pruned = [
                run.id
                for run in self._runs.values()
                if run.created_at < older_than
                and (status is None or run.status is status)
                and (dataset_id is None or run.dataset_id == dataset_id)
                and tags <= set(run.tags)
            ]
            for run_id in pruned:
                self._delete_results(run_id)
                del self._runs[run_id]
                del self._result_ids_by_run[run_id]
            self._wrote(pruned)
            return len(pruned)

    # -- results -----------------------------------------------------------------------

    def _add_result(self, call: calls.AddResult) -> RunResult:
        return self._record([call.input], call.update_counts, call.on_conflict, batch=False)[0]

    def _add_results(self, call: calls.AddResults) -> list[RunResult]:
        return self._record(call.inputs, call.update_counts, call.on_conflict, batch=True)

    def _record(
        self,
        inputs: Sequence[AddRunResultInput],
        update_counts: bool,
        on_conflict: OnConflict,
        *,
        batch: bool,
    ) -> list[RunResult]:
        with self._lock:
            self._check_open()
            now = self._now()
            results = recorded_results(inputs, now)
            missing = missing_run(results, self._result_ids_by_run, batch=batch)
            if missing is not None:
                raise missing
            taken: dict[int, tuple[str, bool]] = {}  # by position: the stored result's place
            for position, result in enumerate(results):
                at = position if batch else None
                key = (result.item_id, result.repetition)
                stored_id = self._result_ids_by_run[result.run_id].get(key)
                if stored_id is not None:
                    if on_conflict is OnConflict.ERROR:
                        raise item_taken(result.run_id, *key, position=at)
                    taken[position] = (stored_id, self._results[stored_id].model.error is not None)
                elif result.id in self._results:
                    raise result_exists(result.id, position=at)
            write = overwrite(results, taken, on_conflict, update_counts)
            counted: dict[str, Run] = {}
            for run_id, change in write.counts.items():
                run = counted_run(self._runs[run_id], change, now)
                if run is None:
                    raise counter_overflow(run_id, first_position(results, run_id, batch=batch))
                counted[run_id] = run
            for stored_id in write.replaced:
                for score_id in self._score_ids.pop(stored_id, {}).values():
                    del self._scores[score_id]
            for result in write.written:
                self._results[result.id] = _Stored.of(result, _JSON_FIELDS)
                key = (result.item_id, result.repetition)
                self._result_ids_by_run[result.run_id][key] = result.id
            self._store_scores(scores_of_results(write.written))
            self._runs.update(counted)
            self._wrote({result.run_id for result in results})
            return [
                self._result(taken[position][0] if position in taken else result.id)
                for position, result in enumerate(results)
            ]

    def _result(self, result_id: str) -> RunResult:
        scores = {
            self._scores[score_id].model.name: self._scores[score_id].model.value
            for score_id in self._score_ids.get(result_id, {}).values()
        }
        result: RunResult = self._results[result_id].read(_JSON_FIELDS, scores=scores)
        return result

    def _get_result_by_id(self, call: calls.GetResultById) -> RunResult | None:
        id = call.id
        with self._lock:
            self._check_open()
            return self._result(id) if id in self._results else None

    def _matching(self, run_id: str, filters: ResultFilters) -> list[RunResult]:
        with self._lock:
            self._check_open()
            ids = self._result_ids_by_run.get(run_id, {}).values()
            results = [self._result(result_id) for result_id in ids]
        score = filters.score
        matching = [
            result
            for result in results
            if (filters.has_error is None or (result.error is not None) is filters.has_error)
            and (filters.item_id is None or result.item_id == filters.item_id)
            and (
                score is None
                or (
                    score.name in result.scores
                    and (score.min is None or result.scores[score.name] >= score.min)
                    and (score.max is None or result.scores[score.name] <= score.max)
                )
            )
        ]
        matching.sort(key=_result_key(filters.order), reverse=filters.order is ResultOrder.SLOWEST)
        return matching

    def _list_results(self, call: calls.ListResults) -> ListRunResultsOutput:
        return self._results_page(call.input)

    def _results_page(self, input: ListRunResultsInput) -> ListRunResultsOutput:
        page = _page(
            self._matching(input.run_id, input),
            input.pagination,
            input.cursor,
            "results",
            (input.run_id, *input.scope()),
            _result_key(input.order),
            input.order is ResultOrder.SLOWEST,
        )
        return ListRunResultsOutput(
            results=tuple(page.rows), pagination=page.pagination, next_cursor=page.next_cursor
        )

    def _iter_results(self, call: calls.IterResults) -> Iterator[RunResult]:
        return (result for page in self._result_pages(call) for result in page)

    def _result_pages(self, call: calls.IterResults) -> Iterator[tuple[RunResult, ...]]:
        listing = ListRunResultsInput(
            run_id=call.run_id,
            pagination=StoragePagination(per_page=call.batch_size),
            **call.filters.model_dump(),
        )
        return (output.results for output in _follow_cursors(self._results_page, listing))

    def _iter_result_rows(self, call: calls.IterResultRows) -> Iterator[list[StoredRow]]:
        """A run's results as stored rows (:mod:`runstore.export`), made of the models."""
        every = calls.IterResults(call.run_id, ResultFilters(), call.batch_size)
        found = False
        for page in self._result_pages(every):
            if page:
                found = True
                yield rows_of_results(page)
        if not found:
            self._require_run(call.run_id)

    def _delete_results_by_run_id(self, call: calls.DeleteResultsByRunId) -> None:
        run_id = call.run_id
        with self._lock:
            self._check_open()
            self._delete_results(run_id)
            run = self._runs.get(run_id)
            if run is not None:
                self._runs[run_id] = run.model_copy(update={"result_count": 0})
            self._wrote([run_id])

    def _dangerously_clear_all(self, call: calls.DangerouslyClearAll) -> None:
        with self._lock:
            self._check_open()
            self._runs.clear()
            self._results.clear()
            self._result_ids_by_run.clear()
            self._scores.clear()
            self._score_ids.clear()
            self._kept.clear()
            self._writes.clear()

    def _delete_results(self, run_id: str) -> None:
        by_item = self._result_ids_by_run.get(run_id)
        if by_item is None:
            return
        for result_id in by_item.values():
            del self._results[result_id]
            for score_id in self._score_ids.pop(result_id, {}).values():
                del self._scores[score_id]
        by_item.clear()

    # -- scores ------------------------------------------------------------------------

    def _store_scores(self, scores: Iterable[Score]) -> None:
        for score in scores:
            self._scores[score.id] = _Stored.of(score, ("metadata",))
            self._score_ids.setdefault(score.result_id, {})[score.name] = score.id

    def _score(self, score_id: str) -> Score:
        score: Score = self._scores[score_id].read(("metadata",))
        return score

    def _add_scores(self, call: calls.AddScores) -> list[Score]:
        batch, replace = call.inputs, call.replace
        with self._lock:
            self._check_open()
            run_of_result = {
                input.result_id: self._results[input.result_id].model.run_id
                for input in batch
                if input.result_id in self._results
            }
            missing = missing_result(batch, run_of_result)
            if missing is not None:
                raise missing
            scores = recorded_scores(batch, run_of_result, self._now())
            for position, score in enumerate(scores):
                taken = self._score_ids.get(score.result_id, {}).get(score.name)
                if taken is not None and not replace:
                    raise score_taken(score.result_id, score.name, position=position)
                if score.id in self._scores and score.id != taken:
                    raise score_exists(score.id, position=position)
            stored_scores = []
            for score in scores:
                taken = self._score_ids.get(score.result_id, {}).get(score.name)
                kept = score if taken is None else score.model_copy(update={"id": taken})
                self._store_scores([kept])
                stored_scores.append(self._score(kept.id))
            self._wrote(set(run_of_result.values()))
            return stored_scores

    def _run_scores(self, run_id: str, result_id: str | None, name: str | None) -> list[Score]:
        with self._lock:
            self._check_open()
            result_ids = list(self._result_ids_by_run.get(run_id, {}).values())
            if result_id is not None:
                result_ids = [result_id] if result_id in result_ids else []
            scores = [
                self._score(score_id)
                for each in result_ids
                for score_id in self._score_ids.get(each, {}).values()
            ]
        return sorted(
            (score for score in scores if name is None or score.name == name), key=_score_key
        )

    def _list_scores(self, call: calls.ListScores) -> list[Score]:
        return self._run_scores(call.run_id, call.result_id, call.name)

    def _iter_scores(self, call: calls.IterScores) -> Iterator[Score]:
        yield from self._run_scores(call.run_id, call.result_id, call.name)

    # -- answers -----------------------------------------------------------------------

    def _require_run(self, run_id: str) -> Run:
        with self._lock:
            self._check_open()
            run = self._runs.get(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    def _summarize_run(self, call: calls.SummarizeRun) -> RunSummary:
        with self._lock:
            self._check_open()
            kept = self._kept.get(call.run_id)
        if kept is not None:
            return kept
        if call.keep:
            summary = self._keep(call.run_id)
            if summary is not None:
                return summary
        return self._summary(call.run_id)

    def _keep(self, run_id: str) -> RunSummary | None:
        """Summarise a finished run and keep the summary, unless a write came meanwhile;
        None if the run is not finished."""
        with self._lock:
            writes = self._writes.get(run_id, 0)
            run = self._require_run(run_id)
        if run.status not in FINISHED:
            return None
        summary = self._summary(run_id)
        with self._lock:
            if self._writes.get(run_id, 0) == writes and run_id in self._runs:
                self._kept[run_id] = summary
        return summary

    def _keep_summaries(self, call: calls.KeepSummaries) -> int:
        with self._lock:
            self._check_open()
            waiting = sorted(
                (
                    run
                    for run in self._runs.values()
                    if run.status in FINISHED
                    and run.id not in self._kept
                    and (call.dataset_id is None or run.dataset_id == call.dataset_id)
                ),
                key=_run_key,
            )
        kept = 0
        for run in waiting:
            try:
                self._keep(run.id)
            except RunNotFoundError:
                continue  # deleted meanwhile
            with self._lock:
                kept += run.id in self._kept
        return kept

    def _trend_runs(self, call: calls.TrendRuns) -> RunTrend:
        filters = call.filters
        with self._lock:
            self._check_open()
            matching = [
                run
                for run in self._runs.values()
                if filters.matches(run) and (filters.status is not None or run.status in FINISHED)
            ]
        newest = sorted(matching, key=_run_key, reverse=True)[: call.last]
        points = []
        for run in reversed(newest):
            try:
                summary = self._summarize_run(calls.SummarizeRun(run.id, call.keep))
            except RunNotFoundError:
                continue  # deleted meanwhile
            points.append(TrendPoint.of(run, summary))
        assert filters.dataset_id is not None
        return RunTrend(dataset_id=filters.dataset_id, points=tuple(points))

    def _summary(self, run_id: str) -> RunSummary:
        self._require_run(run_id)
        results = self._matching(run_id, ResultFilters())
        latencies = sorted(result.latency for result in results)
        failed = sum(result.error is not None for result in results)
        values: dict[str, list[float]] = {}
        for score in self._run_scores(run_id, None, None):
            values.setdefault(score.name, []).append(score.value)
        costs = [result.cost for result in results if result.cost is not None]
        usage = usage_summary(
            sum(result.input_tokens or 0 for result in results),
            sum(result.output_tokens or 0 for result in results),
            len(costs),
            total(costs) if costs else None,
        )
        return RunSummary(
            run_id=run_id,
            results=len(results),
            succeeded=len(results) - failed,
            failed=failed,
            error_rate=failed / len(results) if results else None,
            latency=LatencySummary(
                mean=mean(latencies) if latencies else None,
                min=latencies[0] if latencies else None,
                max=latencies[-1] if latencies else None,
                **{f"p{round(p * 100)}": percentile(latencies, p) for p in PERCENTILES},
            ),
            scores={
                name: ScoreSummary(
                    count=len(scored),
                    mean=mean(scored),
                    min=min(scored),
                    max=max(scored),
                    p50=percentile(sorted(scored), 0.5),
                )
                for name, scored in values.items()
            },
            usage=usage,
        )

    def _histogram_run(self, call: calls.HistogramRun) -> RunHistograms:
        run_id, bins = call.run_id, call.bins
        self._require_run(run_id)
        results = self._matching(run_id, ResultFilters())
        latencies = [result.latency for result in results]
        costs = [result.cost for result in results if result.cost is not None]
        values: dict[str, list[float]] = {}
        for score in self._run_scores(run_id, None, None):
            values.setdefault(score.name, []).append(score.value)
        return RunHistograms(
            run_id=run_id,
            bins=bins,
            latency=_histogram(latencies, bins) if latencies else None,
            scores={name: _histogram(scored, bins) for name, scored in values.items()},
            cost=_histogram(costs, bins) if costs else None,
        )

    def _by_item(self, run_id: str) -> dict[str, tuple[RunResult, ...]]:
        """A run's results by item, each item's in repetition order."""
        by_item: dict[str, list[RunResult]] = {}
        for result in self._matching(run_id, ResultFilters()):
            by_item.setdefault(result.item_id, []).append(result)
        return {
            item: tuple(sorted(results, key=lambda result: result.repetition))
            for item, results in by_item.items()
        }

    def _compare_runs(self, call: calls.CompareRuns) -> RunComparison:
        baseline_run_id, candidate_run_id = call.baseline_run_id, call.candidate_run_id
        confidence = call.confidence
        self._require_run(baseline_run_id)
        self._require_run(candidate_run_id)
        baseline, candidate = self._by_item(baseline_run_id), self._by_item(candidate_run_id)
        paired = [(baseline[item], candidate[item]) for item in baseline if item in candidate]
        by_score: dict[str, list[tuple[float, float]]] = {}
        for before, after in paired:
            after_scores = item_scores(after)
            for name, value in item_scores(before).items():
                if name in after_scores:
                    by_score.setdefault(name, []).append((value, after_scores[name]))
        latency = _paired(_deltas(paired, _mean_latency), confidence)
        cost = _paired(_deltas(paired, _item_cost), confidence)
        tokens = _deltas(paired, _item_tokens)
        return RunComparison(
            baseline_run_id=baseline_run_id,
            candidate_run_id=candidate_run_id,
            items_in_both=len(paired),
            only_in_baseline=len(baseline) - len(paired),
            only_in_candidate=len(candidate) - len(paired),
            errors_fixed=sum(item_failed(b) and not item_failed(c) for b, c in paired),
            errors_introduced=sum(not item_failed(b) and item_failed(c) for b, c in paired),
            latency_mean_delta=None if latency is None else latency.mean_delta,
            scores={name: _score_comparison(pairs, confidence) for name, pairs in by_score.items()},
            cost_mean_delta=None if cost is None else cost.mean_delta,
            tokens_mean_delta=mean(tokens) if tokens else None,
            latency=latency,
            cost=cost,
        )

    def _iter_item_comparisons(self, call: calls.IterItemComparisons) -> Iterator[ItemComparison]:
        self._require_run(call.baseline_run_id)
        self._require_run(call.candidate_run_id)
        baseline = self._by_item(call.baseline_run_id)
        candidate = self._by_item(call.candidate_run_id)
        pairs = (
            (item, baseline.get(item, ()), candidate.get(item, ()))
            for item in sorted(baseline.keys() | candidate.keys())
            if call.after_item is None or item > call.after_item
        )
        yield from compared(pairs, call.only, call.score)


def _mean_latency(results: Sequence[RunResult]) -> float:
    return mean([result.latency for result in results])


def _item_cost(results: Sequence[RunResult]) -> float | None:
    """An item's cost: the mean over its repetitions that have one (None: none has)."""
    costs = [result.cost for result in results if result.cost is not None]
    return mean(costs) if costs else None


def _item_tokens(results: Sequence[RunResult]) -> float | None:
    """An item's tokens: the mean over its repetitions that have any of input plus output
    tokens (one it lacks counts 0; None: no repetition has either)."""
    tokens = [
        float((result.input_tokens or 0) + (result.output_tokens or 0))
        for result in results
        if result.input_tokens is not None or result.output_tokens is not None
    ]
    return mean(tokens) if tokens else None


def _deltas(
    paired: Sequence[tuple[Sequence[RunResult], Sequence[RunResult]]],
    figure: Callable[[Sequence[RunResult]], float | None],
) -> list[float]:
    """Candidate minus baseline ``figure`` for each paired item that has it in both."""
    deltas = []
    for before, after in paired:
        baseline, candidate = figure(before), figure(after)
        if baseline is not None and candidate is not None:
            deltas.append(candidate - baseline)
    return deltas


def _paired(deltas: Sequence[float], confidence: float) -> PairedDelta | None:
    """The paired comparison of ``deltas`` (None: no item pairs)."""
    return paired_delta(*paired_sums(deltas), confidence) if deltas else None


def _histogram(values: Sequence[float], bins: int) -> Histogram:
    low, high = min(values), max(values)
    return histogram(low, high, Counter(bin_of(value, low, high, bins) for value in values), bins)


def _score_comparison(pairs: Sequence[tuple[float, float]], confidence: float) -> ScoreComparison:
    improved = sum(after > before for before, after in pairs)
    regressed = sum(after < before for before, after in pairs)
    # half the differences: two scores' own may pass the largest double
    halves = [after * 0.5 - before * 0.5 for before, after in pairs]
    delta = paired_delta(*paired_sums(halves), confidence, unit=2.0)
    return ScoreComparison(
        **dict(delta),
        baseline_mean=mean([before for before, _ in pairs]),
        candidate_mean=mean([after for _, after in pairs]),
        improved=improved,
        regressed=regressed,
        unchanged=len(pairs) - improved - regressed,
    )


def _result_key(order: ResultOrder) -> Callable[[RunResult], tuple[Any, str]]:
    if order is ResultOrder.SLOWEST:
        return lambda result: (result.latency, result.id)
    return lambda result: (result.started_at, result.id)


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
    key: Callable[[_Row], tuple[Any, str]],
    descending: bool,
) -> Page[_Row]:
    """One page of ``rows`` (sorted in list order), and the cursor to the next page."""
    total = len(rows)
    if cursor is not None:
        after = decode_cursor(cursor, kind, scope)
        mark = (after.key, after.id)
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


_CALLS: dict[type[calls.Call[Any]], Callable[[InMemoryRunsStorage, Any], Any]] = {
    calls.CreateRun: InMemoryRunsStorage._create_run,
    calls.UpdateRun: InMemoryRunsStorage._update_run,
    calls.GetRunById: InMemoryRunsStorage._get_run_by_id,
    calls.ListRuns: InMemoryRunsStorage._list_runs,
    calls.FindBaseline: InMemoryRunsStorage._find_baseline,
    calls.DeleteRun: InMemoryRunsStorage._delete_run,
    calls.RecountRun: InMemoryRunsStorage._recount_run,
    calls.PruneRuns: InMemoryRunsStorage._prune_runs,
    calls.AddResult: InMemoryRunsStorage._add_result,
    calls.AddResults: InMemoryRunsStorage._add_results,
    calls.GetResultById: InMemoryRunsStorage._get_result_by_id,
    calls.ListResults: InMemoryRunsStorage._list_results,
    calls.DeleteResultsByRunId: InMemoryRunsStorage._delete_results_by_run_id,
    calls.AddScores: InMemoryRunsStorage._add_scores,
    calls.ListScores: InMemoryRunsStorage._list_scores,
    calls.SummarizeRun: InMemoryRunsStorage._summarize_run,
    calls.KeepSummaries: InMemoryRunsStorage._keep_summaries,
    calls.TrendRuns: InMemoryRunsStorage._trend_runs,
    calls.HistogramRun: InMemoryRunsStorage._histogram_run,
    calls.CompareRuns: InMemoryRunsStorage._compare_runs,
    calls.DangerouslyClearAll: InMemoryRunsStorage._dangerously_clear_all,
}
"""The in-memory adapters' table of calls: the method that carries out each."""

_STREAMS: dict[type[calls.Stream[Any]], Callable[[InMemoryRunsStorage, Any], Iterator[Any]]] = {
    calls.IterRuns: InMemoryRunsStorage._iter_runs,
    calls.IterResults: InMemoryRunsStorage._iter_results,
    calls.IterResultRows: InMemoryRunsStorage._iter_result_rows,
    calls.IterScores: InMemoryRunsStorage._iter_scores,
    calls.IterItemComparisons: InMemoryRunsStorage._iter_item_comparisons,
}
"""The same for the ``iter_*`` calls: the method that yields their items."""


class AsyncInMemoryRunsStorage(AsyncRunsStorage):
    """Runs and results in this process's memory, for asyncio programs; nothing persists.

    Each call is :class:`InMemoryRunsStorage`'s, made directly.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.storage = InMemoryRunsStorage(clock=clock)

    def __repr__(self) -> str:
        return "AsyncInMemoryRunsStorage()"

    async def close(self) -> None:
        self.storage.close()

    async def _perform(self, call: calls.Call[_T]) -> _T:
        return self.storage._perform(call)

    def _stream(self, call: calls.Stream[_T]) -> AsyncIterator[_T]:
        return _one_by_one(self.storage._stream(call))


async def _one_by_one(items: Iterator[_T]) -> AsyncIterator[_T]:
    for item in items:
        yield item
