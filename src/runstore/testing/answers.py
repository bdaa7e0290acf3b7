"""The contract for scores, run summaries, run comparisons and finding results.

Expected figures are computed here, independently of runstore (``statistics`` and the
textbook definition of a continuous percentile), and must match to 1e-9 relative.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest

from runstore import (
    AddScoreInput,
    DuplicateError,
    InvalidInputError,
    ListRunResultsInput,
    ResultNotFoundError,
    RunNotFoundError,
    RunResult,
    RunsStorage,
    ScoreFilter,
    StoragePagination,
)
from runstore.testing.inputs import result_input, run_input

__all__ = ["AnswersContract", "continuous_percentile"]

LATENCIES = [float(value) for value in (120, 7.5, 980, 45, 45, 310, 2.25, 66, 1500, 88, 45, 12)]
"""A run's latencies: ties, a long tail, an even count."""


def continuous_percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def close(actual: float | None, expected: float | None) -> bool:
    if actual is None or expected is None:
        return actual is expected
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)


def scored_run(storage: RunsStorage, run_id: str = "scored") -> list[RunResult]:
    """A run of 12 results with varied latencies, three failures and two scores, one of
    which some results lack."""
    storage.create_run(run_input(id=run_id))
    return storage.add_results(
        [
            result_input(
                run_id,
                n,
                latency=latency,
                error="boom" if n % 4 == 3 else None,
                scores={"accuracy": (n % 5) / 4, **({"fluency": 10.0 - n} if n % 3 else {})},
            )
            for n, latency in enumerate(LATENCIES)
        ]
    )


def ids(results: Iterable[RunResult]) -> list[str]:
    return [result.id for result in results]


def walk(storage: RunsStorage, per_page: int, **listing: Any) -> list[RunResult]:
    """Every page of a results list, following cursors."""
    request = ListRunResultsInput(pagination=StoragePagination(per_page=per_page), **listing)
    seen: list[RunResult] = []
    while True:
        output = storage.list_results(request)
        seen.extend(output.results)
        if output.next_cursor is None:
            return seen
        request = request.model_copy(update={"cursor": output.next_cursor})


class AnswersContract:
    """Scores, summaries, comparisons, filters and orders."""

    # -- scores ----------------------------------------------------------------------

    def test_scores_are_stored_whole_and_read_with_every_result(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run, 0))
        assert result.scores == {}
        (score,) = storage.add_scores(
            [
                AddScoreInput(
                    result_id=result.id,
                    name="faithfulness",
                    value=0.875,
                    label="good",
                    explanation="cites the policy",
                    metadata={"judge": "gpt", "votes": [1, 0, 1]},
                )
            ]
        )
        assert (score.run_id, score.result_id, score.name, score.value) == (
            run.id,
            result.id,
            "faithfulness",
            0.875,
        )
        assert score.metadata == {"judge": "gpt", "votes": [1, 0, 1]}
        assert storage.list_scores(run.id) == [score]
        assert list(storage.iter_scores(run.id)) == [score]
        read = storage.get_result_by_id(result.id)
        assert read is not None
        assert read.scores == {"faithfulness": 0.875}
        assert storage.list_results(ListRunResultsInput(run_id=run.id)).results == (read,)
        assert list(storage.iter_results(run.id)) == [read]

    def test_scores_recorded_with_results_in_the_same_call(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        single = storage.add_result(result_input(run, 0, scores={"a": 1.0, "b": -2.5}))
        batch = storage.add_results(
            [result_input(run, n, scores={"a": n / 3}) for n in range(1, 4)]
        )
        assert single.scores == {"a": 1.0, "b": -2.5}
        for result in (single, *batch):
            assert storage.get_result_by_id(result.id) == result
        stored = storage.list_scores(run.id, name="a")
        assert [score.value for score in stored] == sorted([1.0, 1 / 3, 2 / 3, 1.0])
        assert all(score.label is None and score.metadata is None for score in stored)
        assert len(storage.list_scores(run.id, result_id=single.id)) == 2

    def test_a_duplicate_score_is_refused_unless_replaced(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        first, second = storage.add_results([result_input(run, 0), result_input(run, 1)])
        (original,) = storage.add_scores([{"result_id": first.id, "name": "s", "value": 0.5}])
        with pytest.raises(DuplicateError) as caught:
            storage.add_scores(
                [
                    {"result_id": second.id, "name": "s", "value": 1.0},
                    {"result_id": first.id, "name": "s", "value": 0.9},
                ]
            )
        assert caught.value.position == 1
        assert storage.list_scores(run.id) == [original]
        replaced = storage.add_scores(
            [
                {"result_id": first.id, "name": "s", "value": 0.9, "label": "rerun"},
                {"result_id": second.id, "name": "s", "value": 1.0},
            ],
            replace=True,
        )
        assert [score.value for score in replaced] == [0.9, 1.0]
        assert replaced[0].id == original.id
        assert replaced[0].label == "rerun"
        assert sorted(storage.list_scores(run.id), key=lambda s: s.value) == replaced

    def test_bad_score_batches_are_named_and_write_nothing(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run))
        good = {"result_id": result.id, "name": "ok", "value": 1.0}
        with pytest.raises(ResultNotFoundError) as missing:
            storage.add_scores([good, {"result_id": "ghost", "name": "x", "value": 1.0}])
        assert missing.value.position == 1
        assert isinstance(missing.value, LookupError)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"result_id": result.id, "name": "nan", "value": float("nan")}, "value"),
            ({"result_id": result.id, "name": "", "value": 1.0}, "name"),
            ({"result_id": result.id, "name": "x", "value": "high"}, "value"),
            ({"result_id": result.id, "name": "m", "value": 1.0, "metadata": {1: 2}}, "key"),
        ]
        for bad, message in cases:
            with pytest.raises(InvalidInputError, match=rf"(?s)inputs\[1\].*{message}"):
                storage.add_scores([good, bad])
        with pytest.raises(InvalidInputError, match=r"inputs\[1\].*repeats inputs\[0\]"):
            storage.add_scores([good, good])
        assert storage.list_scores(run.id) == []
        assert storage.add_scores([]) == []

    def test_scores_go_with_their_results(self, storage: RunsStorage) -> None:
        run, other = storage.create_run(run_input()), storage.create_run(run_input())
        storage.add_result(result_input(run, 0, scores={"s": 1.0}))
        kept = storage.add_result(result_input(other, 0, scores={"s": 2.0}))
        storage.delete_results_by_run_id(run.id)
        assert storage.list_scores(run.id) == []
        emptied = storage.get_run_by_id(run.id)
        assert emptied is not None
        assert emptied.result_count == 0
        storage.add_result(result_input(run, 0, scores={"s": 3.0}))
        storage.delete_run(run.id)
        assert storage.list_scores(run.id) == []
        assert [score.value for score in storage.list_scores(other.id)] == [2.0]
        assert storage.get_result_by_id(kept.id) == kept

    def test_iter_scores_reads_in_batches_in_order(self, storage: RunsStorage) -> None:
        results = scored_run(storage)
        every = storage.list_scores("scored")
        assert len(every) == sum(len(result.scores) for result in results)
        assert every == sorted(every, key=lambda score: (score.name, score.value, score.id))
        for batch_size in (1, 3, 1000):
            assert list(storage.iter_scores("scored", batch_size=batch_size)) == every
        fluency = list(storage.iter_scores("scored", name="fluency", batch_size=2))
        assert fluency == [score for score in every if score.name == "fluency"]

    # -- the result count ------------------------------------------------------------

    def test_a_run_counts_its_results(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        assert run.result_count == 0
        storage.add_result(result_input(run, 0))
        storage.add_results([result_input(run, n) for n in range(1, 5)], update_counts=True)
        counted = storage.get_run_by_id(run.id)
        assert counted is not None
        assert counted.result_count == 5
        assert counted.succeeded_count == 4
        output = storage.list_results(ListRunResultsInput(run_id=run.id))
        assert output.pagination.total == 5

    # -- summaries -------------------------------------------------------------------

    def test_a_summary_matches_figures_computed_independently(self, storage: RunsStorage) -> None:
        results = scored_run(storage)
        summary = storage.summarize_run("scored")
        failed = sum(result.error is not None for result in results)
        assert (summary.run_id, summary.results, summary.failed) == ("scored", 12, failed)
        assert summary.succeeded == 12 - failed
        assert close(summary.error_rate, failed / 12)
        latency = summary.latency
        assert close(latency.mean, statistics.fmean(LATENCIES))
        assert (latency.min, latency.max) == (min(LATENCIES), max(LATENCIES))
        for fraction, value in [
            (0.5, latency.p50),
            (0.9, latency.p90),
            (0.95, latency.p95),
            (0.99, latency.p99),
        ]:
            assert close(value, continuous_percentile(LATENCIES, fraction)), fraction
        assert set(summary.scores) == {"accuracy", "fluency"}
        for name, figures in summary.scores.items():
            values = [result.scores[name] for result in results if name in result.scores]
            assert figures.count == len(values)
            assert close(figures.mean, statistics.fmean(values))
            assert (figures.min, figures.max) == (min(values), max(values))
            assert close(figures.p50, continuous_percentile(values, 0.5))

    @pytest.mark.parametrize("count", [1, 2, 3, 101])
    def test_percentiles_of_small_and_odd_runs(self, storage: RunsStorage, count: int) -> None:
        run = storage.create_run(run_input())
        latencies = [((n * 7919) % 1013) / 7 for n in range(count)]
        storage.add_results(
            [result_input(run, n, latency=value) for n, value in enumerate(latencies)]
        )
        latency = storage.summarize_run(run.id).latency
        for fraction, value in [(0.5, latency.p50), (0.9, latency.p90), (0.99, latency.p99)]:
            assert close(value, continuous_percentile(latencies, fraction)), (count, fraction)

    def test_an_empty_run_has_nothing_to_measure(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        summary = storage.summarize_run(run.id)
        assert (summary.results, summary.failed, summary.error_rate) == (0, 0, None)
        assert summary.latency.model_dump() == dict.fromkeys(
            ("mean", "min", "max", "p50", "p90", "p95", "p99")
        )
        assert summary.scores == {}

    def test_a_summary_of_a_missing_run_is_refused(self, storage: RunsStorage) -> None:
        with pytest.raises(RunNotFoundError):
            storage.summarize_run("no-such-run")

    # -- comparisons -----------------------------------------------------------------

    def _pair_of_runs(self, storage: RunsStorage) -> tuple[list[RunResult], list[RunResult]]:
        """Items 0-7 in the baseline, 2-9 in the candidate, with changed errors and scores."""
        storage.create_run(run_input(id="base"))
        storage.create_run(run_input(id="cand"))
        baseline = storage.add_results(
            [
                result_input(
                    "base",
                    n,
                    latency=100.0 + n,
                    error="boom" if n in (2, 3) else None,
                    scores={"accuracy": n / 10, **({"tone": 1.0} if n % 2 else {})},
                )
                for n in range(8)
            ]
        )
        candidate = storage.add_results(
            [
                result_input(
                    "cand",
                    n,
                    latency=90.0 + 2 * n,
                    error="boom" if n in (3, 4) else None,
                    scores={"accuracy": n / 10 + (0.1 if n % 3 == 0 else -0.05 if n == 5 else 0)},
                )
                for n in range(2, 10)
            ]
        )
        return baseline, candidate

    def test_a_comparison_matches_figures_computed_independently(
        self, storage: RunsStorage
    ) -> None:
        baseline, candidate = self._pair_of_runs(storage)
        comparison = storage.compare_runs("base", "cand")
        before = {result.item_id: result for result in baseline}
        after = {result.item_id: result for result in candidate}
        both = sorted(before.keys() & after.keys())
        assert comparison.items_in_both == len(both) == 6
        assert (comparison.only_in_baseline, comparison.only_in_candidate) == (2, 2)
        assert comparison.errors_fixed == sum(
            before[i].error is not None and after[i].error is None for i in both
        )
        assert comparison.errors_introduced == sum(
            before[i].error is None and after[i].error is not None for i in both
        )
        assert close(
            comparison.latency_mean_delta,
            statistics.fmean(after[i].latency - before[i].latency for i in both),
        )
        assert set(comparison.scores) == {"accuracy"}  # tone is in the baseline only
        accuracy = comparison.scores["accuracy"]
        pairs = [(before[i].scores["accuracy"], after[i].scores["accuracy"]) for i in both]
        assert accuracy.paired == len(pairs)
        assert close(accuracy.baseline_mean, statistics.fmean(b for b, _ in pairs))
        assert close(accuracy.candidate_mean, statistics.fmean(c for _, c in pairs))
        assert close(accuracy.mean_delta, statistics.fmean(c - b for b, c in pairs))
        assert accuracy.improved == sum(c > b for b, c in pairs)
        assert accuracy.regressed == sum(c < b for b, c in pairs)
        assert accuracy.unchanged == sum(c == b for b, c in pairs)

    def test_comparing_with_a_missing_run_is_refused(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        with pytest.raises(RunNotFoundError):
            storage.compare_runs(run.id, "ghost")
        with pytest.raises(RunNotFoundError):
            storage.compare_runs("ghost", run.id)
        with pytest.raises(RunNotFoundError):
            list(storage.iter_item_comparisons(run.id, "ghost"))

    @pytest.mark.parametrize("batch_size", [1, 2, 3, 1000])
    def test_item_comparisons_stream_every_item_in_order(
        self, storage: RunsStorage, batch_size: int
    ) -> None:
        baseline, candidate = self._pair_of_runs(storage)
        items = list(storage.iter_item_comparisons("base", "cand", batch_size=batch_size))
        assert [item.item_id for item in items] == [f"item-{n}" for n in range(10)]
        by_item = {item.item_id: item for item in items}
        assert by_item["item-0"].candidate is None
        assert by_item["item-0"].baseline == baseline[0]
        assert by_item["item-9"].baseline is None
        assert by_item["item-9"].candidate == candidate[-1]
        assert by_item["item-3"].score_deltas == pytest.approx({"accuracy": 0.1})
        assert by_item["item-0"].score_deltas == {}

    @pytest.mark.parametrize("batch_size", [1, 1000])
    def test_item_comparisons_keep_what_was_asked(
        self, storage: RunsStorage, batch_size: int
    ) -> None:
        self._pair_of_runs(storage)

        def items(**options: Any) -> list[str]:
            return [
                item.item_id
                for item in storage.iter_item_comparisons(
                    "base", "cand", batch_size=batch_size, **options
                )
            ]

        # item-2: error fixed; item-3: +0.1; item-4: error introduced; item-5: -0.05;
        # item-6: +0.1; items 0, 1, 8, 9 are in one run only; item-7 unchanged.
        assert items(only="improved") == ["item-2", "item-3", "item-6"]
        assert items(only="regressed") == ["item-4", "item-5"]
        assert items(only="changed") == [f"item-{n}" for n in (0, 1, 2, 3, 4, 5, 6, 8, 9)]
        assert items(only="improved", score="accuracy") == ["item-3", "item-6"]
        assert items(only="regressed", score="accuracy") == ["item-5"]
        assert items(only="changed", score="accuracy") == ["item-3", "item-5", "item-6"]
        with pytest.raises(InvalidInputError, match="only"):
            storage.iter_item_comparisons("base", "cand", only="better")

    # -- finding results -------------------------------------------------------------

    @pytest.mark.parametrize(
        ("listing", "keep"),
        [
            ({}, lambda r: True),
            ({"has_error": True}, lambda r: r.error is not None),
            ({"has_error": False}, lambda r: r.error is None),
            ({"item_id": "item-5"}, lambda r: r.item_id == "item-5"),
            (
                {"score": {"name": "fluency", "min": 2.0}},
                lambda r: r.scores.get("fluency", -1) >= 2,
            ),
            (
                {"score": ScoreFilter(name="accuracy", min=0.25, max=0.5)},
                lambda r: 0.25 <= r.scores["accuracy"] <= 0.5,
            ),
            ({"has_error": False, "score": {"name": "fluency", "max": 5}}, None),
        ],
        ids=["all", "failed", "succeeded", "item", "score-min", "score-range", "combined"],
    )
    @pytest.mark.parametrize("order", ["execution", "slowest"])
    def test_results_can_be_found_and_paged_under_every_filter_and_order(
        self,
        storage: RunsStorage,
        listing: dict[str, Any],
        keep: Callable[[RunResult], bool] | None,
        order: str,
    ) -> None:
        results = scored_run(storage)
        if keep is None:
            keep = lambda r: r.error is None and r.scores.get("fluency", 99) <= 5  # noqa: E731
        expected = [result for result in results if keep(result)]
        if order == "slowest":
            expected.sort(key=lambda r: (r.latency, r.id), reverse=True)
        else:
            expected.sort(key=lambda r: (r.started_at, r.id))
        request = {"run_id": "scored", "order": order, **listing}
        everything = storage.list_results({**request, "pagination": {"per_page": False}})
        assert ids(everything.results) == ids(expected)
        assert everything.pagination.total == len(expected)
        for per_page in (1, 2, 5):
            assert ids(walk(storage, per_page, **request)) == ids(expected), per_page
        page = storage.list_results({**request, "pagination": {"page": 1, "per_page": 2}})
        assert ids(page.results) == ids(expected[2:4])
        assert page.pagination.total == len(expected)
        filters = {key: value for key, value in request.items() if key != "run_id"}
        assert ids(storage.iter_results("scored", batch_size=2, **filters)) == ids(expected)

    def test_slowest_first_breaks_ties_by_id(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        storage.add_results(
            [result_input(run, n, id=f"r{n}", latency=5.0) for n in range(4)]
            + [result_input(run, 9, id="slow", latency=9.5)]
        )
        listed = storage.list_results({"run_id": run.id, "order": "slowest"}).results
        assert ids(listed) == ["slow", "r3", "r2", "r1", "r0"]

    def test_a_cursor_belongs_to_its_filters_and_order(self, storage: RunsStorage) -> None:
        scored_run(storage)
        first = storage.list_results(
            {"run_id": "scored", "has_error": False, "pagination": {"per_page": 2}}
        )
        assert first.next_cursor is not None
        for other in (
            {"has_error": True},
            {"order": "slowest", "has_error": False},
            {},
            {"has_error": False, "item_id": "item-1"},
        ):
            with pytest.raises(InvalidInputError, match="another list"):
                storage.list_results({"run_id": "scored", "cursor": first.next_cursor, **other})

    @pytest.mark.parametrize(
        "bad",
        [
            {"has_error": "yes"},
            {"order": "fastest"},
            {"score": {"name": "s", "min": 2, "max": 1}},
            {"score": {"name": "s", "min": float("inf")}},
            {"score": {"min": 1}},
            {"item_id": ""},
        ],
        ids=repr,
    )
    def test_bad_filters_are_refused(self, storage: RunsStorage, bad: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="validation error"):
            storage.list_results({"run_id": "r", **bad})
        with pytest.raises(ValueError, match="validation error"):
            storage.iter_results("r", **bad)
