"""The contract for the decisions comparisons support: every comparison's paired
statistics (standard error, interval, p-value), held against SciPy's
``scipy.stats.ttest_rel`` and ``scipy.stats.t.interval`` on the same items; the gate;
and finding a baseline.

SciPy is the independent reference (``pip install scipy``; runstore itself never imports
it): figures must agree to a relative 1e-9 (absolute 1e-12 near zero), also for large
values with small differences, heavy tails, repetitions averaged, items one run lacks,
and the zero-spread and one-pair edge cases.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from pydantic import ValidationError

from runstore import InvalidInputError
from runstore import PairedDelta
from runstore import RunNotFoundError
from runstore import RunsStorage
from runstore.testing.inputs import T0
from runstore.testing.inputs import FrozenClock
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.properties import DERANDOMIZED

__all__ = ["StatisticsContract", "expected_paired"]

SCIPY = "1.17"
"""The SciPy these figures are held against: older releases' t quantiles (cephes') are
off by up to 4e-9 relative, past the 1e-9 checked."""


def close(actual: float | None, expected: float | None) -> bool:
    if actual is None or expected is None:
        return actual is expected
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)


def expected_paired(
    baseline: Sequence[float], candidate: Sequence[float], confidence: float
) -> dict[str, float | None]:
    """What SciPy says of paired values: the mean difference, its standard error, the
    ``confidence`` interval and the two-sided p-value."""
    import numpy as np
    from scipy import stats

    before, after = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    deltas = after - before
    n = len(deltas)
    figures: dict[str, float | None] = {"mean_delta": float(np.mean(deltas))}
    if n < 2:
        return figures | {"std_error": None, "ci_low": None, "ci_high": None, "p_value": None}
    error = float(stats.sem(deltas))
    low, high = stats.t.interval(confidence, n - 1, loc=np.mean(deltas), scale=error)
    return figures | {
        "std_error": error,
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": float(stats.ttest_rel(after, before).pvalue),
    }


def assert_agrees(delta: PairedDelta | None, expected: dict[str, float | None], n: int) -> None:
    assert delta is not None
    assert delta.paired == n
    for name, value in expected.items():
        assert close(getattr(delta, name), value), (name, getattr(delta, name), value)


def paired_runs(
    storage: RunsStorage,
    baseline: Sequence[float],
    candidate: Sequence[float],
    **fields: Any,
) -> tuple[str, str]:
    """Two runs with one result per item, the values as the score ``s``, the latency
    (shifted to be positive) and the cost (the same, where positive values allow)."""
    shift = -min(0.0, *baseline, *candidate)
    runs = []
    for values in (baseline, candidate):
        run = storage.create_run(run_input(**fields))
        storage.add_results(
            [
                result_input(run, n, scores={"s": value}, latency=value + shift, cost=value + shift)
                for n, value in enumerate(values)
            ]
        )
        runs.append(run.id)
    return runs[0], runs[1]


class StatisticsContract:
    """compare_runs' statistics against SciPy, gate_runs and find_baseline."""

    @pytest.mark.parametrize("confidence", [0.95, 0.5, 0.999])
    def test_each_score_latency_and_cost_agree_with_scipy(
        self, storage: RunsStorage, confidence: float
    ) -> None:
        pytest.importorskip("scipy", minversion=SCIPY)
        draw = random.Random(7)
        baseline = [draw.random() for _ in range(37)]
        candidate = [value + draw.gauss(0.02, 0.1) for value in baseline]
        before, after = paired_runs(storage, baseline, candidate)
        comparison = storage.compare_runs(before, after, confidence=confidence)
        expected = expected_paired(baseline, candidate, confidence)
        assert_agrees(comparison.scores["s"], expected, 37)
        assert comparison.scores["s"].confidence == confidence
        shift = -min(0.0, *baseline, *candidate)
        shifted = expected_paired(
            [v + shift for v in baseline], [v + shift for v in candidate], confidence
        )
        assert_agrees(comparison.latency, shifted, 37)
        assert_agrees(comparison.cost, shifted, 37)

    def test_large_values_with_small_differences_lose_nothing(self, storage: RunsStorage) -> None:
        """Scores near 1,000,000 differing by a thousandth: a sum of squares less the
        squared mean would cancel every digit."""
        pytest.importorskip("scipy", minversion=SCIPY)
        draw = random.Random(11)
        baseline = [1_000_000.0 + draw.random() for _ in range(50)]
        candidate = [value + 1e-3 + draw.gauss(0, 1e-3) for value in baseline]
        before, after = paired_runs(storage, baseline, candidate)
        comparison = storage.compare_runs(before, after)
        assert_agrees(comparison.scores["s"], expected_paired(baseline, candidate, 0.95), 50)
        assert_agrees(comparison.latency, expected_paired(baseline, candidate, 0.95), 50)

    def test_repetitions_are_averaged_and_unpaired_items_left_out(
        self, storage: RunsStorage
    ) -> None:
        pytest.importorskip("scipy", minversion=SCIPY)
        draw = random.Random(3)
        before, after = storage.create_run(run_input()), storage.create_run(run_input())
        item_means: dict[str, list[float]] = {"before": [], "after": []}
        results = []
        for item in range(25):
            for side, run, count in (("before", before, 1 + item % 3), ("after", after, 2)):
                values = [draw.random() for _ in range(count)]
                results += [
                    result_input(run, item, repetition=r, scores={"s": v})
                    for r, v in enumerate(values)
                ]
                item_means[side].append(math.fsum(values) / count)
        # items in one run only, and a score one side lacks for an item
        results += [result_input(before, 100, scores={"s": 0.0}), result_input(after, 101)]
        results += [result_input(after, 102, scores={"other": 1.0})]
        results += [result_input(before, 102, scores={"s": 5.0})]
        storage.add_results(results)
        comparison = storage.compare_runs(before.id, after.id)
        expected = expected_paired(item_means["before"], item_means["after"], 0.95)
        assert_agrees(comparison.scores["s"], expected, 25)

    def test_heavy_tails_and_outliers(self, storage: RunsStorage) -> None:
        pytest.importorskip("scipy", minversion=SCIPY)
        draw = random.Random(5)
        baseline = [draw.paretovariate(1.2) for _ in range(40)]
        candidate = [value * draw.lognormvariate(0, 1) for value in baseline]
        before, after = paired_runs(storage, baseline, candidate)
        comparison = storage.compare_runs(before, after, confidence=0.99)
        assert_agrees(comparison.scores["s"], expected_paired(baseline, candidate, 0.99), 40)

    def test_one_pair_has_no_interval_and_two_have_one(self, storage: RunsStorage) -> None:
        pytest.importorskip("scipy", minversion=SCIPY)
        before, after = paired_runs(storage, [0.5], [0.75])
        single = storage.compare_runs(before, after).scores["s"]
        assert (single.paired, single.mean_delta) == (1, 0.25)
        assert (single.std_error, single.ci_low, single.ci_high, single.p_value) == (None,) * 4
        assert not single.significant
        before, after = paired_runs(storage, [0.5, 0.25], [0.75, 1.0])
        assert_agrees(
            storage.compare_runs(before, after).scores["s"],
            expected_paired([0.5, 0.25], [0.75, 1.0], 0.95),
            2,
        )

    @pytest.mark.parametrize(
        ("delta", "p_value"), [(0.0, 1.0), (0.5, 0.0), (-0.25, 0.0), (1e6, 0.0)]
    )
    def test_equal_differences_have_no_spread(
        self, storage: RunsStorage, delta: float, p_value: float
    ) -> None:
        baseline = [0.25 * n for n in range(9)]  # each plus delta, exactly: equal differences
        before, after = paired_runs(storage, baseline, [v + delta for v in baseline])
        comparison = storage.compare_runs(before, after)
        for figures in (comparison.scores["s"], comparison.latency):
            assert figures is not None
            assert figures.mean_delta == delta
            assert figures.std_error == 0.0
            assert figures.ci_low == figures.ci_high == delta
            assert figures.p_value == p_value
            assert figures.significant is (delta != 0)

    def test_extreme_scores_never_overflow(self, storage: RunsStorage) -> None:
        before, after = storage.create_run(run_input()), storage.create_run(run_input())
        big = 1.7e308
        storage.add_results(
            [
                result_input(before, 0, scores={"s": -big}),
                result_input(after, 0, scores={"s": big}),
                result_input(before, 1, scores={"s": big}),
                result_input(after, 1, scores={"s": -big}),
                result_input(before, 2, scores={"s": 5e-324}),
                result_input(after, 2, scores={"s": 0.0}),
            ]
        )
        score = storage.compare_runs(before.id, after.id).scores["s"]
        assert score.paired == 3
        assert score.mean_delta == pytest.approx(0.0, abs=1e-300)
        assert score.p_value is not None
        assert 0.0 <= score.p_value <= 1.0

    def test_a_confidence_outside_zero_and_one_is_refused(self, storage: RunsStorage) -> None:
        before, after = paired_runs(storage, [0.1, 0.2], [0.3, 0.1])
        for confidence in (0, 1, 0.0, 1.0, -0.5, 1.5, math.nan, math.inf, "0.9", True, None):
            with pytest.raises(InvalidInputError, match="confidence"):
                storage.compare_runs(before, after, confidence=confidence)  # type: ignore[arg-type]

    @settings(
        max_examples=25,
        deadline=None,
        derandomize=DERANDOMIZED,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(data=st.data())
    def test_random_paired_data_with_repetitions_and_missing_items(
        self, storage: RunsStorage, data: st.DataObject
    ) -> None:
        pytest.importorskip("scipy", minversion=SCIPY)
        storage.dangerously_clear_all()
        before, after = storage.create_run(run_input()), storage.create_run(run_input())
        values = st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, 1.0, 0.5])
        items = data.draw(st.integers(0, 30), label="items")
        means: dict[str, list[float]] = {"before": [], "after": []}
        results = []
        for item in range(items):
            sides = data.draw(st.sampled_from(["both", "both", "both", "before", "after"]))
            for side, run in (("before", before), ("after", after)):
                if sides not in ("both", side):
                    continue
                reps = data.draw(st.lists(values, min_size=1, max_size=3), label="repetitions")
                results += [
                    result_input(run, item, repetition=r, scores={"s": v})
                    for r, v in enumerate(reps)
                ]
                if sides == "both":
                    means[side].append(math.fsum(reps) / len(reps))
        storage.add_results(results)
        comparison = storage.compare_runs(before.id, after.id)
        paired = len(means["before"])
        if not paired:
            assert "s" not in comparison.scores
            return
        score = comparison.scores["s"]
        deltas = [b - a for a, b in zip(means["before"], means["after"], strict=True)]
        if paired < 2:
            assert (score.std_error, score.ci_low, score.ci_high, score.p_value) == (None,) * 4
            return
        if max(deltas) == min(deltas):  # no spread: the contract's rule, not SciPy's
            assert score.std_error == 0.0
            return
        expected = expected_paired(means["before"], means["after"], 0.95)
        # An item's mean over its repetitions may differ in its last bit from fsum's;
        # where the differences are tiny against the values, compare with that slack.
        scale = max(abs(v) for v in means["before"] + means["after"]) or 1.0
        slack = 1e-12 * scale
        assert score.paired == paired
        assert math.isclose(
            score.mean_delta, expected["mean_delta"] or 0.0, rel_tol=1e-9, abs_tol=slack
        )
        spread = max(abs(d - statistics_mean(deltas)) for d in deltas)
        # SciPy squares the deviations: below about 1e-154 their squares leave the normal
        # doubles (down to zero), and its spread is then no reference.
        if spread > 1e-6 * scale and spread > 1e-150:
            for name in ("std_error", "ci_low", "ci_high", "p_value"):
                actual, wanted = getattr(score, name), expected[name]
                assert actual is not None
                assert wanted is not None
                tolerance = 1e-12 if name == "p_value" else slack
                assert math.isclose(actual, wanted, rel_tol=1e-7, abs_tol=tolerance), name

    # -- the gate ----------------------------------------------------------------------

    def test_a_gate_passes_and_fails_rule_by_rule(self, storage: RunsStorage) -> None:
        draw = random.Random(1)
        baseline = [0.5 + draw.random() / 4 for _ in range(40)]
        candidate = [value - 0.05 + draw.gauss(0, 0.01) for value in baseline]
        before, after = paired_runs(storage, baseline, candidate)
        verdict = storage.gate_runs(
            before,
            after,
            {
                "min_score_delta": {"s": -0.01, "absent": 0.0},
                "max_errors_introduced": 0,
                "max_error_rate": 0.0,
                "max_latency_p95_ratio": 2.0,
                "max_cost_ratio": 0.5,
                "min_items_in_both": 41,
            },
        )
        assert not verdict.passed
        names = [check.name for check in verdict.checks]
        assert names == [
            "min_score_delta.s",
            "min_score_delta.absent",
            "max_errors_introduced",
            "max_error_rate",
            "max_latency_p95_ratio",
            "max_cost_ratio",
            "min_items_in_both",
        ]
        passed = {check.name: check.passed for check in verdict.checks}
        assert passed == {
            "min_score_delta.s": False,  # 0.05 worse, well beyond noise
            "min_score_delta.absent": False,  # no such score: a failed check, not a crash
            "max_errors_introduced": True,
            "max_error_rate": True,
            "max_latency_p95_ratio": True,
            "max_cost_ratio": False,  # the same cost: ratio about 1
            "min_items_in_both": False,
        }
        score = verdict.checks[0]
        assert score.observed == verdict.comparison.scores["s"].mean_delta
        assert score.limit == -0.01
        assert score.message.startswith("s: mean delta -0.05")
        assert "95% CI" in score.message
        assert "is below -0.01" in score.message
        assert "absent" in verdict.checks[1].message
        assert verdict.comparison.scores["s"].paired == 40

    def test_noise_fails_a_gate_only_without_significance(self, storage: RunsStorage) -> None:
        draw = random.Random(2)
        baseline = [draw.random() for _ in range(30)]
        candidate = [value - 0.02 + draw.gauss(0, 0.3) for value in baseline]
        before, after = paired_runs(storage, baseline, candidate)
        score = storage.compare_runs(before, after).scores["s"]
        limit = score.mean_delta + 0.01  # the mean lies below the limit, the interval does not
        assert score.ci_high is not None
        assert score.ci_high > limit
        rules: dict[str, Any] = {"min_score_delta": {"s": limit}}
        assert storage.gate_runs(before, after, rules).passed
        strict = storage.gate_runs(before, after, {**rules, "significance": False})
        assert not strict.passed
        assert "is below" in strict.checks[0].message

    def test_a_gate_counts_regressed_items_and_costs(self, storage: RunsStorage) -> None:
        before, after = storage.create_run(run_input()), storage.create_run(run_input())
        storage.add_results(
            [result_input(before, n, scores={"s": 0.5}, cost=0.01) for n in range(6)]
            + [result_input(after, n, scores={"s": 0.5 - (n < 2) * 0.1}) for n in range(6)]
        )
        verdict = storage.gate_runs(
            before.id, after.id, {"max_regressed_items": 1, "max_cost_ratio": 2.0}
        )
        regressed, cost = verdict.checks
        assert (regressed.observed, regressed.passed) == (2, False)
        assert (cost.observed, cost.passed) == (None, False)
        assert "candidate" in cost.message

    def test_a_gate_refuses_bad_rules_and_writes_nothing(self, storage: RunsStorage) -> None:
        before, after = paired_runs(storage, [0.1, 0.2], [0.3, 0.1])
        runs_before = [run.model_dump() for run in storage.iter_runs()]
        bad: list[dict[str, Any]] = [
            {"max_regressed_items": -1},
            {"max_errors_introduced": -1},
            {"max_error_rate": 1.5},
            {"max_error_rate": -0.1},
            {"max_latency_p95_ratio": 0},
            {"max_cost_ratio": -1},
            {"min_items_in_both": -3},
            {"confidence": 0},
            {"confidence": 1},
            {"confidence": math.nan},
            {"min_score_delta": {"s": math.nan}},
            {"unknown_rule": 1},
        ]
        for rules in bad:
            with pytest.raises(ValidationError):
                storage.gate_runs(before, after, rules)
        with pytest.raises(InvalidInputError, match="itself"):
            storage.gate_runs(before, before, {"min_items_in_both": 1})
        with pytest.raises(RunNotFoundError):
            storage.gate_runs(before, "missing", {"min_items_in_both": 1})
        assert [run.model_dump() for run in storage.iter_runs()] == runs_before

    # -- finding the baseline ----------------------------------------------------------

    def test_the_baseline_is_the_newest_completed_run_before_the_candidate(
        self, make_storage: Callable[..., RunsStorage]
    ) -> None:
        clock = FrozenClock(T0)
        storage = make_storage(clock=clock)

        def made(status: str = "completed", **fields: Any) -> str:
            clock.now += timedelta(seconds=1)
            run = storage.create_run(run_input(**fields))
            storage.update_run({"id": run.id, "status": status})
            return run.id

        old_main = made(tags=["main"], metadata={"branch": "main"})
        main = made(tags=["main"], metadata={"branch": "main", "model": "a"})
        made(status="failed", tags=["main"])
        other_dataset = made(tags=["main"], dataset_id="other")
        pr = made(tags=["pr-7"])
        candidate = made(status="running", tags=["pr-7"])
        later = made(tags=["main"])
        assert storage.find_baseline(candidate) is not None
        assert storage.find_baseline(candidate).id == pr  # type: ignore[union-attr]
        assert storage.find_baseline(candidate, tags=["main"]).id == main  # type: ignore[union-attr]
        found = storage.find_baseline(candidate, metadata={"branch": "main", "model": "a"})
        assert found is not None
        assert found.id == main
        assert storage.find_baseline(main, tags=["main"]).id == old_main  # type: ignore[union-attr]
        assert storage.find_baseline(old_main) is None
        assert storage.find_baseline(candidate, tags=["nope"]) is None
        assert storage.find_baseline(candidate, target_id="other-agent") is None
        assert later not in {storage.find_baseline(candidate).id}  # type: ignore[union-attr]
        assert storage.find_baseline(other_dataset) is None
        with pytest.raises(RunNotFoundError):
            storage.find_baseline("missing")
        with pytest.raises(ValueError):  # noqa: PT011 - pydantic's or runstore's
            storage.find_baseline(candidate, metadata={"k": {"object": 1}})

    def test_a_baseline_created_in_the_same_instant_is_found_in_list_order(
        self, make_storage: Callable[..., RunsStorage]
    ) -> None:
        storage = make_storage(clock=FrozenClock(T0))
        ids = []
        for n in range(3):
            run = storage.create_run(run_input(id=f"run-{n}"))
            storage.update_run({"id": run.id, "status": "completed"})
            ids.append(run.id)
        listed = [run.id for run in storage.list_runs({"pagination": {"per_page": False}}).runs]
        for newer, older in itertools.pairwise(listed):
            found = storage.find_baseline(newer)
            assert found is not None
            assert found.id == older
        assert storage.find_baseline(listed[-1]) is None


def statistics_mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)
