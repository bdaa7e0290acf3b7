"""Property-based round trips of JSON values and aware datetimes."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runstore import RunsStorage
from runstore.testing.inputs import result_input, run_input

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


offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - bounds for hypothesis, made aware below
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=offsets,
)


PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
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
