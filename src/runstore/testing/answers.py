"""The contract for answers: run summaries, histograms, run comparisons and item
comparisons.

Expected figures are computed here, independently of runstore (``statistics``, the
textbook definition of a continuous percentile, and a histogram's definition), and must
match to 1e-9 relative; a histogram's counts must match exactly.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from runstore import Histogram
from runstore import InvalidInputError
from runstore import RunNotFoundError
from runstore import RunResult
from runstore import RunsStorage
from runstore.limits import MAX_BINS
from runstore.testing.inputs import LATENCIES
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.inputs import scored_run

__all__ = ["AnswersContract", "continuous_percentile", "expected_histogram"]


def continuous_percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def expected_histogram(values: Sequence[float], bins: int) -> tuple[float, float, tuple[int, ...]]:
    """A histogram's low, high and counts by the contract's definition: ``bins`` equal
    bins over the values' halves (halved, no finite values overflow), the greatest value
    in the last bin; one bin when every value is the same."""
    low, high = min(values), max(values)
    if low == high:
        return low, high, (len(values),)
    counts = [0] * bins
    width = high / 2 - low / 2  # 0 for two neighbouring subnormals: no width to divide
    for value in values:
        fraction = (value / 2 - low / 2) / width if width else 0.0
        counts[min(int(fraction * bins), bins - 1)] += 1
    return low, high, tuple(counts)


def shape(histogram: Histogram | None) -> tuple[float, float, tuple[int, ...]] | None:
    """A histogram as (low, high, counts), to compare with :func:`expected_histogram`."""
    return None if histogram is None else (histogram.low, histogram.high, histogram.counts)


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

    @pytest.mark.parametrize("bins", [1, 3, 20, MAX_BINS])
    def test_histograms_count_every_value_in_its_bin(self, storage: RunsStorage, bins: int) -> None:
        results = scored_run(storage)
        histograms = storage.histogram_run("scored", bins=bins)
        assert (histograms.run_id, histograms.bins) == ("scored", bins)
        assert shape(histograms.latency) == expected_histogram(LATENCIES, bins)
        assert set(histograms.scores) == {"accuracy", "fluency"}
        for name, histogram in histograms.scores.items():
            values = [result.scores[name] for result in results if name in result.scores]
            assert shape(histogram) == expected_histogram(values, bins), name
            assert (len(histogram.counts), sum(histogram.counts)) == (bins, len(values))

    def test_a_histogram_has_twenty_bins_unless_asked(self, storage: RunsStorage) -> None:
        scored_run(storage)
        histograms = storage.histogram_run("scored")
        assert histograms.bins == 20
        assert histograms.latency is not None
        assert len(histograms.latency.counts) == 20

    def test_an_empty_run_has_no_histograms(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        histograms = storage.histogram_run(run.id, bins=5)
        assert (histograms.run_id, histograms.bins) == (run.id, 5)
        assert (histograms.latency, histograms.scores) == (None, {})
        storage.add_result(result_input(run, latency=4.0))  # results, but no scores
        histograms = storage.histogram_run(run.id, bins=5)
        assert histograms.latency == Histogram(low=4.0, high=4.0, counts=(1,))
        assert histograms.scores == {}

    def test_equal_values_are_one_bin(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        storage.add_results(
            [
                result_input(run, n, latency=7.5, scores={"same": -0.25, "varied": float(n)})
                for n in range(5)
            ]
        )
        histograms = storage.histogram_run(run.id, bins=4)
        assert histograms.latency == Histogram(low=7.5, high=7.5, counts=(5,))
        assert histograms.scores["same"] == Histogram(low=-0.25, high=-0.25, counts=(5,))
        assert histograms.scores["varied"] == Histogram(low=0.0, high=4.0, counts=(1, 1, 1, 2))

    def test_a_value_on_a_bins_edge_is_in_the_bin_above_and_high_in_the_last(
        self, storage: RunsStorage
    ) -> None:
        run = storage.create_run(run_input())
        latencies = [0.0, 2.5, 5.0, 7.5, 10.0, 10.0]
        scores = [-1.0, -0.5, 0.0, 0.5, 1.0, 1.0]
        storage.add_results(
            [
                result_input(run, n, latency=latency, scores={"s": score})
                for n, (latency, score) in enumerate(zip(latencies, scores, strict=True))
            ]
        )
        four = storage.histogram_run(run.id, bins=4)
        assert four.latency == Histogram(low=0.0, high=10.0, counts=(1, 1, 1, 3))
        assert four.scores == {"s": Histogram(low=-1.0, high=1.0, counts=(1, 1, 1, 3))}
        two = storage.histogram_run(run.id, bins=2)
        assert two.latency == Histogram(low=0.0, high=10.0, counts=(2, 4))
        assert two.scores == {"s": Histogram(low=-1.0, high=1.0, counts=(2, 4))}
        one = storage.histogram_run(run.id, bins=1)
        assert one.latency == Histogram(low=0.0, high=10.0, counts=(6,))
        assert one.scores == {"s": Histogram(low=-1.0, high=1.0, counts=(6,))}

    def test_each_score_has_its_own_range(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        inputs = [
            result_input(
                run,
                n,
                latency=float(n * n),
                scores={
                    "fraction": n / 10,
                    "large": 1000.0 + 100 * n,
                    "negative": -3.0 * n,
                    **({"some": n / 3} if n % 3 else {}),
                },
            )
            for n in range(11)
        ]
        storage.add_results(inputs)
        histograms = storage.histogram_run(run.id, bins=5)
        assert shape(histograms.latency) == expected_histogram([n * n for n in range(11)], 5)
        assert set(histograms.scores) == {"fraction", "large", "negative", "some"}
        for name, histogram in histograms.scores.items():
            values = [i.scores[name] for i in inputs if i.scores and name in i.scores]
            assert shape(histogram) == expected_histogram(values, 5), name
        assert (histograms.scores["large"].low, histograms.scores["large"].high) == (1000, 2000)
        assert (histograms.scores["negative"].low, histograms.scores["negative"].high) == (-30, 0)

    @pytest.mark.parametrize("bins", [1, 2, 7, MAX_BINS])
    def test_histograms_of_extreme_values(self, storage: RunsStorage, bins: int) -> None:
        """The largest doubles (a range past the largest), the smallest subnormals (whose
        halves round to zero), tiny negatives, and values a tiny fraction of the range
        above the least (whose quotient rounds to zero)."""
        largest, smallest = sys.float_info.max, 5e-324
        scores = {
            "wide": [largest, -largest, 1e308, -1e308, 0.0, -1e-300, 1.0],
            "tiny": [-1e-300, -smallest, smallest, 0.0, 1e-310, -2e-323],
            "subnormals": [smallest, 2 * smallest, 4 * smallest, 5 * smallest],
            "neighbours": [4 * smallest, 5 * smallest],  # their halves are equal
            "near low": [0.0, 1e-320, smallest, 1e10, -1e-300],
        }
        latencies = [0.0, smallest, 1e-320, 1e308, largest, 3.0]
        run = storage.create_run(run_input())
        size = max(len(latencies), *(len(values) for values in scores.values()))
        storage.add_results(
            [
                result_input(
                    run,
                    n,
                    latency=latencies[n % len(latencies)],
                    scores={name: values[n] for name, values in scores.items() if n < len(values)},
                )
                for n in range(size)
            ]
        )
        histograms = storage.histogram_run(run.id, bins=bins)
        every_latency = [latencies[n % len(latencies)] for n in range(size)]
        assert shape(histograms.latency) == expected_histogram(every_latency, bins)
        assert set(histograms.scores) == set(scores)
        for name, values in scores.items():
            histogram = histograms.scores[name]
            assert shape(histogram) == expected_histogram(values, bins), name
            assert sum(histogram.counts) == len(values), name

    def test_histograms_of_a_missing_run_are_refused(self, storage: RunsStorage) -> None:
        with pytest.raises(RunNotFoundError):
            storage.histogram_run("no-such-run")
        with pytest.raises(RunNotFoundError):
            storage.histogram_run("no-such-run", bins=3)

    @pytest.mark.parametrize(
        "bad", [0, -1, MAX_BINS + 1, 2**63, True, False, "3", 2.5, 3.0, None, [3]]
    )
    def test_bins_must_be_an_int_in_range(self, storage: RunsStorage, bad: object) -> None:
        run = storage.create_run(run_input())
        with pytest.raises(InvalidInputError, match="bins"):
            storage.histogram_run(run.id, bins=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="bins"):
            storage.histogram_run("no-such-run", bins=bad)  # type: ignore[arg-type]

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

    @pytest.mark.parametrize("batch_size", [1, 2, 1000])
    def test_item_comparisons_continue_after_an_item(
        self, storage: RunsStorage, batch_size: int
    ) -> None:
        self._pair_of_runs(storage)

        def items(after: str | None, **options: Any) -> list[str]:
            stream = storage.iter_item_comparisons(
                "base", "cand", batch_size=batch_size, after_item=after, **options
            )
            return [item.item_id for item in stream]

        every = items(None)
        for index, item in enumerate(every):  # listing in pieces gives every item once
            assert items(item) == every[index + 1 :]
        assert items("item-3", only="improved") == ["item-6"]
        assert items("item-10") == [f"item-{n}" for n in range(2, 10)]  # an id between items
        assert items("item-9") == []
        assert items("zzz") == []
        with pytest.raises(InvalidInputError, match="after_item"):
            storage.iter_item_comparisons("base", "cand", after_item="")
