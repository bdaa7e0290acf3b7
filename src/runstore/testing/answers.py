"""The contract for answers: run summaries, run comparisons and item comparisons.

Expected figures are computed here, independently of runstore (``statistics`` and the
textbook definition of a continuous percentile), and must match to 1e-9 relative.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import pytest

from runstore import (
    InvalidInputError,
    RunNotFoundError,
    RunResult,
    RunsStorage,
)
from runstore.testing.inputs import LATENCIES, result_input, run_input, scored_run

__all__ = ["AnswersContract", "continuous_percentile"]


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


class AnswersContract:
    """summarize_run, compare_runs, iter_item_comparisons."""

    def test_a_comparison_takes_the_mean_over_an_items_repetitions(
        self, storage: RunsStorage
    ) -> None:
        baseline, candidate = storage.create_run(run_input()), storage.create_run(run_input())
        storage.add_results(
            [
                result_input(baseline, 0, repetition=0, latency=10.0, scores={"acc": 0.0}),
                result_input(baseline, 0, repetition=1, latency=30.0, scores={"acc": 1.0}),
                result_input(baseline, 1, latency=50.0, scores={"acc": 1.0}),
                result_input(candidate, 0, latency=40.0, scores={"acc": 0.75}),
                result_input(candidate, 1, repetition=0, latency=50.0, scores={"acc": 1.0}),
                result_input(candidate, 1, repetition=1, latency=70.0, error="flaky"),
            ]
        )
        comparison = storage.compare_runs(baseline.id, candidate.id)
        assert comparison.items_in_both == 2  # items, not results
        assert (comparison.errors_fixed, comparison.errors_introduced) == (0, 1)
        # Item 0: 40 - mean(10, 30) = 20; item 1: mean(50, 70) - 50 = 10.
        assert comparison.latency_mean_delta == pytest.approx(statistics.mean([20.0, 10.0]))
        accuracy = comparison.scores["acc"]
        assert accuracy.paired == 2
        assert accuracy.baseline_mean == pytest.approx(statistics.mean([0.5, 1.0]))
        assert accuracy.candidate_mean == pytest.approx(statistics.mean([0.75, 1.0]))
        assert (accuracy.improved, accuracy.regressed, accuracy.unchanged) == (1, 0, 1)
        items = {
            item.item_id: item for item in storage.iter_item_comparisons(baseline.id, candidate.id)
        }
        first = items["item-0"]
        assert [r.repetition for r in first.baseline_repetitions] == [0, 1]
        assert first.baseline == first.baseline_repetitions[0]
        assert [r.repetition for r in first.candidate_repetitions] == [0]
        assert first.score_deltas == pytest.approx({"acc": 0.25})
        assert [r.error for r in items["item-1"].candidate_repetitions] == [None, "flaky"]

    def test_a_run_compared_with_itself_pairs_every_item_with_itself(
        self, storage: RunsStorage
    ) -> None:
        run = storage.create_run(run_input())
        storage.add_results(
            [
                result_input(run, n, repetition=r, scores={"acc": n / 4})
                for n in range(3)
                for r in (0, 1)
            ]
        )
        comparison = storage.compare_runs(run.id, run.id)
        assert (comparison.items_in_both, comparison.only_in_baseline) == (3, 0)
        assert comparison.scores["acc"].unchanged == 3
        assert list(storage.iter_item_comparisons(run.id, run.id, only="changed")) == []

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
