"""The contract for kept summaries and trends: a finished run's summary is kept and read
back exactly, never stale after any write; ``keep=False`` writes nothing; trends take the
newest matching runs, oldest first, each point its summary's figures.

What a kept summary must equal is computed independently of keeping: every write goes to
the run and to its *twin* -- a run of another dataset given the very same results and
scores, and never finished, so its summary is always computed afresh. After any sequence
of writes, finishes and summaries, the run's summary (kept or not) must equal its twin's,
field for field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from runstore import InvalidInputError
from runstore import Run
from runstore import RunNotFoundError
from runstore import RunsStorage
from runstore import RunStatus
from runstore import RunSummary
from runstore import TrendPoint
from runstore.limits import MAX_TREND_RUNS
from runstore.testing.inputs import T0
from runstore.testing.inputs import FrozenClock
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.properties import PROPERTY_SETTINGS

__all__ = ["TrendsContract"]

REFUSED = (ValidationError, InvalidInputError)


def _as(summary: RunSummary, run_id: str) -> RunSummary:
    return summary.model_copy(update={"run_id": run_id})


class _Twins:
    """A run and its twin, written to alike (see the module's description)."""

    def __init__(self, storage: RunsStorage, dataset: str) -> None:
        self.storage = storage
        self.run = storage.create_run(run_input(dataset_id=dataset, total_items=8))
        self.twin = storage.create_run(run_input(dataset_id=f"{dataset}-twin", total_items=8))
        self.results: dict[str, dict[str, str]] = {self.run.id: {}, self.twin.id: {}}

    def both(self) -> tuple[str, str]:
        return self.run.id, self.twin.id

    def add(
        self,
        item: int,
        *,
        latency: float,
        failed: bool,
        cost: float | None,
        scores: dict[str, float],
        update_counts: bool,
        replace: bool,
    ) -> None:
        for run_id in self.both():
            written = self.storage.add_result(
                result_input(
                    run_id,
                    item,
                    latency=latency,
                    error="boom" if failed else None,
                    cost=cost,
                    input_tokens=item * 10,
                    output_tokens=item,
                    scores=scores,
                ),
                update_counts=update_counts,
                on_conflict="replace" if replace else "error",
            )
            self.results[run_id][written.item_id] = written.id

    def score(self, name: str, value: float, *, replace: bool) -> None:
        """Score the middle result of each run (``replace``: over a stored score)."""
        for run_id in self.both():
            results = sorted(self.results[run_id].items())
            if results:
                _, result_id = results[len(results) // 2]
                score = {"result_id": result_id, "name": name, "value": value}
                self.storage.add_scores([score], replace=replace)

    def delete_results(self) -> None:
        for run_id in self.both():
            self.storage.delete_results_by_run_id(run_id)
            self.results[run_id].clear()

    def check(self, *, keep: bool) -> RunSummary:
        """The run's summary equals its twin's (computed afresh), field for field."""
        summary = self.storage.summarize_run(self.run.id, keep=keep)
        fresh = self.storage.summarize_run(self.twin.id)
        assert summary == _as(fresh, self.run.id)
        return summary


_ACTIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.integers(0, 5),  # item
            st.sampled_from([0.0, 2.5, 7.25, 1e-3, 1e6]),  # latency
            st.booleans(),  # failed
            st.sampled_from([None, 0.1, 0.003, 2.0]),  # cost
            st.dictionaries(st.sampled_from(["accuracy", "f1"]), st.floats(-10, 10), max_size=2),
            st.booleans(),  # update_counts
        ),
        st.tuples(st.just("score"), st.sampled_from(["accuracy", "judge"]), st.floats(-1, 1)),
        st.tuples(st.just("finish"), st.sampled_from(["completed", "failed"])),
        st.tuples(st.just("reopen")),
        st.tuples(st.just("summarize"), st.booleans()),
        st.tuples(st.just("keep")),
        st.tuples(st.just("recount")),
        st.tuples(st.just("delete")),
    ),
    min_size=1,
    max_size=14,
)


class TrendsContract:
    """Kept summaries (``summarize_run``, ``keep_summaries``) and ``trend_runs``."""

    # -- kept summaries ----------------------------------------------------------------

    def _finish(self, storage: RunsStorage, run: Run | str, status: str = "completed") -> Run:
        run_id = run if isinstance(run, str) else run.id
        return storage.update_run({"id": run_id, "status": status})

    def test_finishing_a_run_keeps_its_summary_exactly(self, storage: RunsStorage) -> None:
        twins = _Twins(storage, "kept-exactly")
        for item, latency in enumerate([120.0, 7.5, 980.0, 45.0, 45.0, 2.25]):
            twins.add(
                item,
                latency=latency,
                failed=item == 3,
                cost=0.1 * item or None,
                scores={"accuracy": item / 7, "f1": 1 / (item + 1)},
                update_counts=True,
                replace=False,
            )
        computed = storage.summarize_run(twins.run.id)  # running: computed, not kept
        self._finish(storage, twins.run)
        assert storage.keep_summaries(dataset_id="kept-exactly") == 0  # finishing kept it
        assert twins.check(keep=True) == computed
        assert twins.check(keep=False) == computed

    @pytest.mark.parametrize(
        "write",
        [
            "add_result",
            "add_result_uncounted",
            "add_results",
            "replace_result",
            "replace_result_uncounted",
            "add_score",
            "overwrite_score",
            "delete_results",
            "recount",
            "reopen",
        ],
    )
    def test_every_write_makes_a_kept_summary_computed_afresh(
        self, storage: RunsStorage, write: str
    ) -> None:
        dataset = f"stale-{write}"
        twins = _Twins(storage, dataset)
        for item in range(4):
            twins.add(
                item,
                latency=10.0 + item,
                failed=False,
                cost=0.25,
                scores={"accuracy": 0.5},
                update_counts=True,
                replace=False,
            )
        self._finish(storage, twins.run)
        before = twins.check(keep=True)
        assert storage.keep_summaries(dataset_id=dataset) == 0
        if write == "add_result":
            twins.add(
                7,
                latency=99.0,
                failed=True,
                cost=None,
                scores={},
                update_counts=True,
                replace=False,
            )
        elif write == "add_result_uncounted":
            twins.add(
                7,
                latency=99.0,
                failed=True,
                cost=None,
                scores={},
                update_counts=False,
                replace=False,
            )
        elif write == "add_results":
            for run_id in twins.both():
                storage.add_results(
                    [result_input(run_id, item, latency=1.0 * item) for item in (8, 9)],
                    update_counts=False,
                )
        elif write in ("replace_result", "replace_result_uncounted"):
            twins.add(
                1,
                latency=500.0,
                failed=True,
                cost=3.0,
                scores={"f1": 0.25},
                update_counts=write == "replace_result",
                replace=True,
            )
        elif write == "add_score":
            twins.score("judge", 0.75, replace=False)
        elif write == "overwrite_score":
            twins.score("accuracy", -0.5, replace=True)
        elif write == "delete_results":
            twins.delete_results()
        elif write == "recount":
            # counters moved without results: update_counts=False, then a recount
            twins.add(
                6,
                latency=1.0,
                failed=True,
                cost=None,
                scores={},
                update_counts=False,
                replace=False,
            )
            storage.keep_summaries(dataset_id=dataset)
            storage.recount_run(twins.run.id)
            storage.recount_run(twins.twin.id)
        elif write == "reopen":
            self._finish(storage, twins.run, "running")
        if write != "reopen":
            assert storage.keep_summaries(dataset_id=dataset) == 1  # stale: kept anew
        after = twins.check(keep=True)
        assert (after == before) == (write == "reopen")
        if write == "reopen":
            assert storage.keep_summaries(dataset_id=dataset) == 0  # running: none kept
            self._finish(storage, twins.run)
            assert storage.keep_summaries(dataset_id=dataset) == 0  # finishing kept it
            assert twins.check(keep=True) == before

    def test_a_read_with_keep_false_writes_nothing(self, storage: RunsStorage) -> None:
        twins = _Twins(storage, "read-only")
        twins.add(
            0,
            latency=1.0,
            failed=False,
            cost=None,
            scores={"accuracy": 1.0},
            update_counts=True,
            replace=False,
        )
        self._finish(storage, twins.run)
        twins.score("judge", 0.5, replace=False)  # the kept summary is stale now
        for _ in range(2):
            twins.check(keep=False)
            storage.trend_runs("read-only", keep=False)
        assert storage.keep_summaries(dataset_id="read-only") == 1  # still to keep
        assert storage.keep_summaries(dataset_id="read-only") == 0
        twins.check(keep=False)

    def test_a_summary_of_a_run_not_finished_is_not_kept(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input(dataset_id="unfinished"))
        storage.add_result(result_input(run, 0))
        for status in ("pending", "running"):
            self._finish(storage, run, status)
            storage.summarize_run(run.id)
            assert storage.keep_summaries(dataset_id="unfinished") == 0

    def test_keep_summaries_keeps_finished_runs_of_a_dataset(self, storage: RunsStorage) -> None:
        runs = {}
        for dataset in ("keep-a", "keep-b"):
            for status in ("completed", "failed", "running"):
                run = storage.create_run(run_input(dataset_id=dataset))
                storage.add_result(result_input(run, 0, latency=3.0))
                self._finish(storage, run, status)
                storage.add_scores(
                    [
                        {
                            "result_id": storage.list_results({"run_id": run.id}).results[0].id,
                            "name": "s",
                            "value": 1.0,
                        }
                    ]
                )
                runs[(dataset, status)] = run
        assert storage.keep_summaries(dataset_id="keep-a") == 2
        assert storage.keep_summaries(dataset_id="keep-a") == 0
        assert storage.keep_summaries() == 2  # keep-b's
        assert storage.keep_summaries() == 0
        for run in runs.values():
            assert storage.summarize_run(run.id).scores["s"].count == 1
        with pytest.raises(InvalidInputError):
            storage.keep_summaries(dataset_id="")

    def test_summarize_a_missing_run_is_refused_with_or_without_keeping(
        self, storage: RunsStorage
    ) -> None:
        for keep in (True, False):
            with pytest.raises(RunNotFoundError):
                storage.summarize_run("no-such-run", keep=keep)
        with pytest.raises(InvalidInputError):
            storage.summarize_run("x", keep="yes")  # type: ignore[arg-type]

    def test_a_deleted_run_takes_its_kept_summary(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input(dataset_id="deleted", id="deleted-run"))
        storage.add_result(result_input(run, 0))
        self._finish(storage, run)
        storage.delete_run(run.id)
        again = storage.create_run(run_input(dataset_id="deleted", id="deleted-run"))
        self._finish(storage, again)
        assert storage.summarize_run(again.id).results == 0

    @PROPERTY_SETTINGS
    @given(actions=_ACTIONS)
    def test_kept_summaries_equal_computed_ones_after_any_writes(
        self, make_storage: Callable[..., RunsStorage], actions: list[tuple[Any, ...]]
    ) -> None:
        """Writes of every kind, finishes, reopenings and summaries interleaved: every
        summary of the run equals its twin's, computed afresh."""
        # a storage per example, closed with it: examples must not pile up connections
        with make_storage() as storage:
            twins = _Twins(storage, "interleaved")
            for action in actions:
                kind = action[0]
                if kind == "add":
                    _, item, latency, failed, cost, scores, counted = action
                    twins.add(
                        item,
                        latency=latency,
                        failed=failed,
                        cost=cost,
                        scores=scores,
                        update_counts=counted,
                        replace=True,
                    )
                elif kind == "score":
                    twins.score(action[1], action[2], replace=True)
                elif kind == "finish":
                    self._finish(storage, twins.run, action[1])
                elif kind == "reopen":
                    self._finish(storage, twins.run, "running")
                elif kind == "summarize":
                    twins.check(keep=action[1])
                elif kind == "keep":
                    storage.keep_summaries(dataset_id="interleaved")
                elif kind == "recount":
                    storage.recount_run(twins.run.id)
                elif kind == "delete":
                    twins.delete_results()
            twins.check(keep=True)
            twins.check(keep=False)

    # -- trends ------------------------------------------------------------------------

    def _trend_runs(self, storage: RunsStorage, clock: FrozenClock) -> dict[str, Run]:
        """Runs of dataset ``trend``, a second apart: names r0..r6, varied targets, tags,
        metadata and statuses; each with results whose figures grow with its index."""
        runs: dict[str, Run] = {}
        plan = [
            ("completed", "agent-1", ["main"], {"model": "a"}),
            ("failed", "agent-1", ["main"], {"model": "b"}),
            ("running", "agent-1", ["main"], {"model": "a"}),
            ("completed", "agent-2", ["main", "nightly"], {"model": "a"}),
            ("completed", "agent-1", [], {"model": "a"}),
            ("pending", "agent-1", ["main"], {"model": "a"}),
            ("completed", "agent-1", ["main"], {"model": "a", "temperature": 1}),
        ]
        for index, (status, target, tags, metadata) in enumerate(plan):
            clock.now = T0 + timedelta(seconds=index)
            run = storage.create_run(
                run_input(
                    dataset_id="trend",
                    name=f"r{index}",
                    target_id=target,
                    tags=tags,
                    metadata=metadata,
                )
            )
            storage.add_results(
                [
                    result_input(
                        run,
                        item,
                        latency=10.0 * (index + 1) + item,
                        error="x" if item < index % 3 else None,
                        cost=0.5 * index if item else None,
                        scores={"accuracy": index / 10 + item / 100},
                    )
                    for item in range(4)
                ]
            )
            runs[f"r{index}"] = self._finish(storage, run, status)
        return runs

    def _names(self, points: tuple[TrendPoint, ...]) -> list[str | None]:
        return [point.name for point in points]

    def test_a_trend_takes_the_newest_finished_runs_oldest_first(
        self, make_storage: Callable[..., RunsStorage]
    ) -> None:
        clock = FrozenClock(T0)
        storage = make_storage(clock=clock)
        runs = self._trend_runs(storage, clock)
        trend = storage.trend_runs("trend")
        assert trend.dataset_id == "trend"
        assert self._names(trend.points) == ["r0", "r1", "r3", "r4", "r6"]
        assert self._names(storage.trend_runs("trend", last=2).points) == ["r4", "r6"]
        assert self._names(storage.trend_runs("trend", last=1).points) == ["r6"]
        for point in trend.points:
            run = runs[point.name or ""]
            summary = storage.summarize_run(run.id)
            assert point == TrendPoint.of(run, summary)
            assert point.run_id == run.id
            assert point.created_at == run.created_at
            assert point.status == run.status
            assert point.results == summary.results == 4
            assert point.error_rate == summary.error_rate
            assert point.latency_p50 == summary.latency.p50
            assert point.latency_p95 == summary.latency.p95
            assert point.cost == summary.usage.cost
            assert point.cost_per_result == summary.usage.cost_per_result
            assert point.scores == {"accuracy": summary.scores["accuracy"].mean}
        assert storage.trend_runs("no-such-dataset").points == ()

    def test_a_trend_filters_by_target_tags_metadata_and_status(
        self, make_storage: Callable[..., RunsStorage]
    ) -> None:
        clock = FrozenClock(T0)
        storage = make_storage(clock=clock)
        self._trend_runs(storage, clock)
        trend = storage.trend_runs
        assert self._names(trend("trend", target_id="agent-2").points) == ["r3"]
        assert self._names(trend("trend", tags=["main"]).points) == ["r0", "r1", "r3", "r6"]
        assert self._names(trend("trend", tags=["main", "nightly"]).points) == ["r3"]
        assert self._names(trend("trend", metadata={"model": "a"}).points) == [
            "r0",
            "r3",
            "r4",
            "r6",
        ]
        assert self._names(trend("trend", metadata={"temperature": 1.0}).points) == ["r6"]
        assert self._names(trend("trend", status="failed").points) == ["r1"]
        assert self._names(trend("trend", status=RunStatus.RUNNING).points) == ["r2"]
        assert self._names(trend("trend", status="pending", tags=["main"]).points) == ["r5"]
        assert self._names(trend("trend", tags=["main"], last=2).points) == ["r3", "r6"]

    def test_a_trend_summarises_runs_without_a_kept_summary(
        self, make_storage: Callable[..., RunsStorage]
    ) -> None:
        clock = FrozenClock(T0)
        storage = make_storage(clock=clock)
        runs = self._trend_runs(storage, clock)
        first = storage.list_results({"run_id": runs["r3"].id}).results[0]
        storage.add_scores([{"result_id": first.id, "name": "judge", "value": 0.5}])
        assert storage.keep_summaries(dataset_id="trend") == 1
        storage.add_scores([{"result_id": first.id, "name": "judge", "value": 0.25}], replace=True)
        read_only = storage.trend_runs("trend", keep=False)
        assert read_only.points[2].scores["judge"] == 0.25
        assert storage.keep_summaries(dataset_id="trend") == 1  # the trend kept nothing
        storage.add_scores([{"result_id": first.id, "name": "judge", "value": 1.0}], replace=True)
        kept = storage.trend_runs("trend")
        assert kept.points[2].scores["judge"] == 1.0
        assert storage.trend_runs("trend") == kept
        # running runs are not kept, whoever summarises them
        storage.trend_runs("trend", status="running")

    @pytest.mark.parametrize("last", [0, MAX_TREND_RUNS + 1, -1, 2.0, "5", True, None])
    def test_a_trend_refuses_a_bad_size(self, storage: RunsStorage, last: object) -> None:
        with pytest.raises(InvalidInputError):
            storage.trend_runs("trend", last=last)  # type: ignore[arg-type]

    def test_a_trend_refuses_bad_filters(self, storage: RunsStorage) -> None:
        calls: list[Callable[[], object]] = [
            lambda: storage.trend_runs(""),
            lambda: storage.trend_runs("d", target_id=""),
            lambda: storage.trend_runs("d", status="done"),
            lambda: storage.trend_runs("d", tags="main"),
            lambda: storage.trend_runs("d", metadata={"k": [1]}),
            lambda: storage.trend_runs("d", keep=1),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(REFUSED):
                call()
        assert storage.trend_runs("d", last=MAX_TREND_RUNS).points == ()
