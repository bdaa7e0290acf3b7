"""Property-based round trips of JSON values, aware datetimes and scores."""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable
from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from fractions import Fraction
from pathlib import Path

from hypothesis import HealthCheck
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from runstore import RunResult
from runstore import RunsStorage
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

_counter = itertools.count()


storable_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | storable_text,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(storable_text, children, max_size=5)
    ),
    max_leaves=20,
)


exact_floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [
        0.1 + 0.2,
        0.3,
        0.6,
        0.7,
        1 / 3,
        5e-324,  # the smallest subnormal
        2.2250738585072014e-308,  # the smallest normal
        2.225073858507201e-308,  # the largest subnormal
        1.7976931348623157e308,  # the largest finite double
        -1.7976931348623157e308,
        9007199254740993.0,  # 2**53 + 1, rounded
        123456789.12345679,
    ]
)
"""Every finite double, and the values that decimal text is most likely to change."""


def same_float(stored: float, given: float) -> bool:
    """``stored`` is ``given`` bit for bit -- but that negative zero is stored as zero."""
    expected = 0.0 if given == 0.0 else given
    return type(stored) is float and stored.hex() == expected.hex()


offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - bounds for hypothesis, made aware below
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=offsets,
)


PROPERTY_EXAMPLES = int(os.environ.get("RUNSTORE_PROPERTY_EXAMPLES", "40"))
"""Examples of each round trip (``RUNSTORE_PROPERTY_EXAMPLES``; more by hand)."""

DERANDOMIZED = os.environ.get("CI", "").lower() in ("1", "true", "yes")
"""Under ``CI``, every property test tries the same examples on every run (as Hypothesis's
own ``ci`` profile does in its later versions), so that a build fails for a change, never
for a draw; by hand, new examples each run find what the fixed ones do not."""

PROPERTY_SETTINGS = settings(
    max_examples=PROPERTY_EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZED,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.differing_executors,  # one contract, run by each adapter's class
    ],
)


def same_json(a: object, b: object) -> bool:
    """Equal and of the same types all the way down; negative zero is stored as zero."""
    if isinstance(a, float) and a == 0.0:
        return type(b) is float and b == 0.0
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(same_json(a[key], b[key]) for key in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(map(same_json, a, b))
    return a == b


class PropertiesContract:
    """Round trips of arbitrary JSON values and instants."""

    @PROPERTY_SETTINGS
    @given(value=json_values)
    def test_json_values_round_trip(self, storage: RunsStorage, value: object) -> None:
        run = storage.create_run(run_input())
        result = storage.add_result(
            result_input(run, next(_counter), input=value, output=value, expected_output=value)
        )
        stored = storage.get_result_by_id(result.id)
        assert stored is not None
        assert same_json(value, stored.input)
        assert same_json(value, stored.output)
        assert same_json(value, stored.expected_output)
        assert stored == result

    @PROPERTY_SETTINGS
    @given(moment=aware_datetimes)
    def test_aware_datetimes_round_trip_to_the_same_instant(
        self, storage: RunsStorage, moment: datetime
    ) -> None:
        run = storage.create_run(run_input(dataset_version=moment))
        result = storage.add_result(
            result_input(run, next(_counter), item_version=moment, started_at=moment)
        )
        stored_run = storage.get_run_by_id(run.id)
        stored_result = storage.get_result_by_id(result.id)
        assert stored_run is not None
        assert stored_result is not None
        for stored in (
            stored_run.dataset_version,
            stored_result.item_version,
            stored_result.started_at,
        ):
            assert stored == moment
            assert stored.utcoffset() == timedelta(0)

    @settings(PROPERTY_SETTINGS, max_examples=max(1, PROPERTY_EXAMPLES // 2))  # 20 calls each
    @given(values=st.lists(exact_floats, min_size=1, max_size=4))
    def test_scores_come_back_bit_for_bit_on_every_read(
        self, storage: RunsStorage, values: list[float]
    ) -> None:
        """A stored score reads back as the same double through every call that returns it
        (summaries' min and max included: they are stored values, not computed ones)."""
        run = storage.create_run(run_input())
        given = [
            storage.add_result(result_input(run, n, scores={"s": value, "t": -value}))
            for n, value in enumerate(values)
        ]
        expected = {
            result.id: {"s": value, "t": -value}
            for result, value in zip(given, values, strict=True)
        }

        def check_scores(result_id: str, scores: Mapping[str, float]) -> None:
            wanted = expected[result_id]
            assert scores.keys() == wanted.keys()
            for name, value in wanted.items():
                assert same_float(scores[name], value), (name, value, scores)

        def check(results: Iterable[RunResult]) -> None:
            seen = []
            for result in results:
                check_scores(result.id, result.scores)
                seen.append(result.id)
            assert sorted(seen) == sorted(expected)

        check(given)
        for result in given:
            fetched = storage.get_result_by_id(result.id)
            assert fetched is not None
            check_scores(fetched.id, fetched.scores)
        pages = math.ceil(len(values) / 2)
        for order in ("execution", "slowest"):
            check(
                result
                for page in range(pages)
                for result in storage.list_results(
                    {"run_id": run.id, "order": order, "pagination": {"page": page, "per_page": 2}}
                ).results
            )
            walked: list[RunResult] = []
            cursor = None
            while True:
                output = storage.list_results(
                    {
                        "run_id": run.id,
                        "order": order,
                        "cursor": cursor,
                        "pagination": {"per_page": 2},
                    }
                )
                walked += output.results
                if output.next_cursor is None:
                    break
                cursor = output.next_cursor
            check(walked)
            check(storage.iter_results(run.id, batch_size=2, order=order))
        check(
            storage.add_results(
                [result_input(run, n) for n in range(len(values))], on_conflict="skip"
            )
        )
        for item in storage.iter_item_comparisons(run.id, run.id, batch_size=2):
            for side in (item.baseline, item.candidate):
                assert side is not None
                check_scores(side.id, side.scores)
        for scores in (storage.list_scores(run.id), storage.iter_scores(run.id, batch_size=3)):
            read = list(scores)
            assert len(read) == 2 * len(values)
            for score in read:
                assert same_float(score.value, expected[score.result_id][score.name])
        summary = storage.summarize_run(run.id).scores["s"]
        assert summary.min is not None
        assert summary.max is not None
        assert same_float(summary.min, min(values))
        assert same_float(summary.max, max(values))
        with tempfile.TemporaryDirectory() as directory:
            folder = Path(directory)
            storage.export_results(run.id, folder / "out.jsonl", batch_size=2)
            for line in (folder / "out.jsonl").read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                check_scores(row["id"], row["scores"])
            storage.export_results(run.id, folder / "out.csv", format="csv", batch_size=2)
            with open(folder / "out.csv", encoding="utf-8", newline="") as file:
                for row in csv.DictReader(file):
                    check_scores(row["id"], json.loads(row["scores"]))
        try:
            import pyarrow  # noqa: F401 - optional: the Arrow batches need it
        except ImportError:
            return
        for batch in storage.iter_result_batches(run.id, batch_size=2):
            for row in batch.to_pylist():
                check_scores(row["id"], dict(row["scores"]))

    @PROPERTY_SETTINGS
    @given(
        values=st.lists(exact_floats, min_size=1, max_size=6),
        others=st.lists(exact_floats, min_size=1, max_size=6),
    )
    # differences past the largest double: an infinity, and intervals without NaN
    @example(values=[-(2.0**970)], others=[sys.float_info.max])
    @example(values=[-sys.float_info.max, -sys.float_info.max / 2], others=[sys.float_info.max] * 2)
    def test_figures_of_any_finite_values(
        self, storage: RunsStorage, values: list[float], others: list[float]
    ) -> None:
        """Summaries and comparisons take any finite scores and latencies -- the largest
        doubles, subnormals -- without an error: their minimum and maximum are the stored
        values, and their means are within rounding of the exact ones."""
        baseline = storage.create_run(run_input())
        candidate = storage.create_run(run_input())
        for run, scores in ((baseline, values), (candidate, others)):
            storage.add_results(
                [
                    result_input(run, n, latency=abs(value), scores={"s": value})
                    for n, value in enumerate(scores)
                ]
            )
        summary = storage.summarize_run(baseline.id)
        latencies = [abs(value) for value in values]
        assert summary.latency.min is not None
        assert summary.latency.max is not None
        assert same_float(summary.latency.min, min(latencies))
        assert same_float(summary.latency.max, max(latencies))
        assert summary.latency.mean is not None
        assert _near_mean(summary.latency.mean, latencies)
        score = summary.scores["s"]
        assert same_float(score.min, min(values))
        assert same_float(score.max, max(values))
        assert _near_mean(score.mean, values)
        comparison = storage.compare_runs(baseline.id, candidate.id)
        paired = min(len(values), len(others))
        assert comparison.items_in_both == paired
        compared = comparison.scores["s"]
        assert _near_mean(compared.baseline_mean, values[:paired])
        assert _near_mean(compared.candidate_mean, others[:paired])
        before = [Fraction(value) for value in values[:paired]]
        after = [Fraction(value) for value in others[:paired]]
        assert compared.improved == sum(a > b for b, a in zip(before, after, strict=True))
        assert compared.regressed == sum(a < b for b, a in zip(before, after, strict=True))
        # the mean of the items' differences (the paired statistics' centre), which two
        # means' difference would lose to cancellation when scores are large
        differences = [after - before for before, after in zip(before, after, strict=True)]
        assert _near_fraction_mean(compared.mean_delta, differences, values + others)
        if compared.ci_low is not None and compared.ci_high is not None:
            assert compared.ci_low <= compared.mean_delta <= compared.ci_high
        figures = (compared.std_error, compared.ci_low, compared.ci_high, compared.p_value)
        assert not any(figure is not None and math.isnan(figure) for figure in figures)
        assert comparison.latency_mean_delta is not None
        deltas = [abs(a) - abs(b) for b, a in zip(values[:paired], others[:paired], strict=True)]
        assert _near_mean(comparison.latency_mean_delta, deltas)


def _near_fraction_mean(mean: float, exact_values: list[Fraction], sizes: list[float]) -> bool:
    """``mean`` is the mean of ``exact_values`` within what summing ``sizes``-sized floats
    (halved, so that no difference overflows) may lose."""
    exact = sum(exact_values, Fraction(0)) / len(exact_values)
    largest = Fraction(max(abs(value) for value in sizes))
    slack = (len(exact_values) + 2) * largest / 2**51 + Fraction(5e-324) * 2
    if math.isinf(mean):  # past the largest double: an infinity of the exact mean's sign
        return (mean > 0) == (exact > 0) and abs(exact) + slack >= _OVERFLOW
    return abs(Fraction(mean) - exact) <= slack


# the least magnitude that rounds to infinity: the largest double and half its last unit
_OVERFLOW = Fraction(sys.float_info.max) + Fraction(math.ulp(sys.float_info.max)) / 2


def _near_mean(mean: float, values: list[float]) -> bool:
    """``mean`` is the mean of ``values`` within what summing in floats may lose: an
    ulp of each value's size per value (the order of a database's sum is its own)."""
    exact = sum(map(Fraction, values), Fraction(0)) / len(values)
    largest = Fraction(max(abs(value) for value in values))
    slack = (len(values) + 1) * largest / 2**52 + Fraction(5e-324)
    return math.isfinite(mean) and abs(Fraction(mean) - exact) <= slack
