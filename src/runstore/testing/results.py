"""The contract for results: recording one or a batch -- counted, repeated, written again
over what is stored -- their JSON values read back exactly, and reading, finding, paging,
iterating and deleting them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

import pytest
from pydantic import ValidationError

from runstore import AddScoreInput
from runstore import DuplicateError
from runstore import InvalidInputError
from runstore import ListRunResultsInput
from runstore import ListRunsInput
from runstore import RunNotFoundError
from runstore import RunResult
from runstore import RunsStorage
from runstore import RunStatus
from runstore import ScoreFilter
from runstore import StoragePagination
from runstore import UpdateRunInput
from runstore.testing.inputs import T0
from runstore.testing.inputs import FrozenClock
from runstore.testing.inputs import counters
from runstore.testing.inputs import ids
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.inputs import scored_run

__all__ = ["ResultsContract"]


JSON_VALUES = [
    pytest.param("plain text", id="string"),
    pytest.param('{"looks": "like json"}', id="string-of-json-object"),
    pytest.param("[1, 2]", id="string-of-json-array"),
    pytest.param("null", id="string-null"),
    pytest.param("0", id="string-zero"),
    pytest.param("", id="empty-string"),
    pytest.param(0, id="zero"),
    pytest.param(0.0, id="float-zero"),
    pytest.param(False, id="false"),
    pytest.param(True, id="true"),
    pytest.param([], id="empty-list"),
    pytest.param({}, id="empty-object"),
    pytest.param([0, False, "", None, [], {}], id="falsy-list"),
    pytest.param({"a": {"b": [1, {"c": None}]}, "": 0}, id="nested"),
    pytest.param("ünïcødé ✓ 😀 \u2028 \\u0000 \"'", id="unicode-and-escapes"),
    pytest.param(2**63 + 1, id="beyond-int64"),
    pytest.param(2**64 - 1, id="largest-uint64"),
    pytest.param(2**64, id="beyond-uint64"),
    pytest.param(-(2**63) - 1, id="below-int64"),
    pytest.param({"deep": [1, {"n": 10**25}], "f": 2.5}, id="nested-huge-int"),
    pytest.param([1e19, 10**19, -1e300], id="large-floats-beside-an-int"),
    pytest.param(-(10**40), id="huge-negative-int"),
    pytest.param(1e20, id="integral-float-in-exponent-form"),
    pytest.param(1.5e-7, id="tiny-float"),
    pytest.param(0.1, id="inexact-float"),
    pytest.param(1.7976931348623157e308, id="max-float"),
    pytest.param(5e-324, id="min-subnormal-float"),
]


def _same_json(a: object, b: object) -> bool:
    """Equal, and of the same types all the way down (1.0 is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same_json, a, b))
    return a == b


def total_results(storage: RunsStorage, run_id: str) -> int:
    return storage.list_results(ListRunResultsInput(run_id=run_id)).pagination.total


def stored_counters(storage: RunsStorage, run_id: str) -> tuple[int, int, int]:
    """The counters as the stored rows say, counted here."""
    results = list(storage.iter_results(run_id))
    failed = sum(result.error is not None for result in results)
    return len(results), len(results) - failed, failed


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


class ResultsContract:
    """add_result, add_results, get_result_by_id, list_results, iter_results,
    delete_results_by_run_id."""

    def test_add_result_keeps_every_field(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        offset = timezone(timedelta(hours=5, minutes=30))
        before = datetime.now(UTC)
        result = storage.add_result(
            result_input(
                run,
                7,
                id="result-7",
                item_version=datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=offset),
                latency=0.125,
                error="timed out",
                retry_count=3,
            )
        )
        assert result.id == "result-7"
        assert result.created_at >= before
        stored = storage.get_result_by_id("result-7")
        assert stored == result
        assert stored is not None
        assert stored.item_version == datetime(2024, 2, 29, 18, 29, 59, 999999, tzinfo=UTC)
        assert stored.item_version.tzinfo is UTC
        assert (stored.latency, stored.error, stored.retry_count) == (0.125, "timed out", 3)
        assert stored.input == {"question": "q7"}

    def test_add_result_generates_a_uuid4_id(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run))
        assert str(uuid.UUID(result.id, version=4)) == result.id
        assert storage.get_result_by_id(result.id) == result

    def test_add_result_to_a_missing_run_writes_nothing(self, storage: RunsStorage) -> None:
        with pytest.raises(RunNotFoundError):
            storage.add_result(result_input("no-such-run", id="orphan"))
        assert storage.get_result_by_id("orphan") is None
        assert storage.list_results(ListRunResultsInput(run_id="no-such-run")).results == ()

    def test_add_result_refuses_a_second_result_for_an_item(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        first = storage.add_result(result_input(run, 1, output="first"))
        with pytest.raises(DuplicateError):
            storage.add_result(result_input(run, 1, output="second"))
        output = storage.list_results(ListRunResultsInput(run_id=run.id))
        assert output.results == (first,)

    def test_add_result_refuses_an_existing_id(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        first = storage.add_result(result_input(run, 1, id="r"))
        with pytest.raises(DuplicateError):
            storage.add_result(result_input(run, 2, id="r"))
        assert storage.get_result_by_id("r") == first

    def test_the_same_item_may_have_a_result_in_each_run(self, storage: RunsStorage) -> None:
        one, two = storage.create_run(run_input()), storage.create_run(run_input())
        storage.add_result(result_input(one, 1))
        storage.add_result(result_input(two, 1))
        assert storage.list_results(ListRunResultsInput(run_id=two.id)).pagination.total == 1

    @pytest.mark.parametrize("value", JSON_VALUES)
    def test_json_fields_read_back_exactly(self, storage: RunsStorage, value: object) -> None:
        run = storage.create_run(run_input())
        result = storage.add_result(
            result_input(run, input=value, output=value, expected_output=value)
        )
        stored = storage.get_result_by_id(result.id)
        assert stored is not None
        for field in ("input", "output", "expected_output"):
            assert _same_json(getattr(stored, field), value), field
            assert _same_json(getattr(result, field), value), field
        listed = storage.list_results(ListRunResultsInput(run_id=run.id)).results
        assert _same_json(listed[0].input, value)

    def test_subclasses_are_stored_as_plain_json(self, storage: RunsStorage) -> None:
        from collections import OrderedDict
        from enum import IntEnum

        class Level(IntEnum):
            HIGH = 3

        run = storage.create_run(run_input())
        value = OrderedDict(status=RunStatus.PENDING, level=Level.HIGH, nested=[(Level.HIGH,)])
        result = storage.add_result(result_input(run, input=value))
        stored = storage.get_result_by_id(result.id)
        assert stored is not None
        for read in (result.input, stored.input):
            assert _same_json(read, {"status": "pending", "level": 3, "nested": [[3]]})
        with pytest.raises(ValueError, match="key 1"):
            storage.add_result(result_input(run, 1, input=OrderedDict({1: "int key"})))

    def test_tuples_are_stored_as_lists(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run, input=(1, (2, 3))))
        assert result.input == [1, [2, 3]]
        stored = storage.get_result_by_id(result.id)
        assert stored is not None
        assert stored.input == [1, [2, 3]]

    def test_negative_zero_reads_back_as_zero_everywhere(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run, input=-0.0))
        stored = storage.get_result_by_id(result.id)
        assert stored is not None
        assert str(stored.input) == str(result.input) == "0.0"

    def test_none_means_no_value(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        result = storage.add_result(
            result_input(run, input=None, output=None, expected_output=None)
        )
        stored = storage.get_result_by_id(result.id)
        assert stored is not None
        assert (stored.input, stored.output, stored.expected_output) == (None, None, None)

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("input", float("nan"), "nan"),
            ("output", float("inf"), "inf"),
            ("expected_output", {"a": [1, float("-inf")]}, "expected_output['a'][1]"),
            ("input", {1: "int key"}, "key 1"),
            ("output", {"a": {1, 2}}, "set object"),
            ("input", object(), "object object is not a JSON value"),
            ("input", datetime(2026, 1, 1, tzinfo=UTC), "datetime"),
            ("output", "nul \x00 inside", "NUL"),
            ("expected_output", {"nul \x00 key": 1}, "NUL"),
            ("input", "lone \ud800 surrogate", "surrogate"),
            pytest.param("input", 10**5000, "4,000 digits", id="input-huge-int"),
        ],
    )
    def test_values_json_cannot_hold_are_refused_and_nothing_is_written(
        self, storage: RunsStorage, field: str, value: object, message: str
    ) -> None:
        run = storage.create_run(run_input())
        with pytest.raises(ValueError, match=field) as caught:
            storage.add_result({**result_input(run).model_dump(), field: value})
        assert message in str(caught.value)
        assert storage.list_results(ListRunResultsInput(run_id=run.id)).pagination.total == 0

    def test_deeply_nested_json_is_refused_clearly(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        value: object = 1
        for _ in range(100_000):
            value = [value]
        with pytest.raises(ValueError, match="nested too deeply"):
            storage.add_result(result_input(run, input=value))

    @pytest.mark.parametrize(
        "field",
        ["id", "run_id", "item_id", "error"],
    )
    def test_nul_in_text_fields_is_refused(self, storage: RunsStorage, field: str) -> None:
        run = storage.create_run(run_input())
        overrides = {field: f"{run.id}\x00" if field == "run_id" else "bad\x00text"}
        with pytest.raises(ValueError, match="NUL"):
            storage.add_result(result_input(run, **overrides))
        with pytest.raises(ValueError, match="NUL"):
            storage.create_run(run_input(dataset_id="bad\x00"))
        assert storage.list_results(ListRunResultsInput(run_id=run.id)).pagination.total == 0

    def test_results_are_snapshots_detached_from_the_store(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        value = {"list": [1, 2]}
        result = storage.add_result(result_input(run, input=value))
        value["list"].append(3)  # the caller's object changes after the call
        assert result.input == {"list": [1, 2]}

        read = storage.get_result_by_id(result.id)
        assert read is not None
        read.input["list"].append(99)  # a reader mutates what it got
        again = storage.get_result_by_id(result.id)
        assert again is not None
        assert again.input == {"list": [1, 2]}
        with pytest.raises(ValidationError):
            again.latency = 1.0  # type: ignore[misc]

    def test_list_results_in_execution_order_with_ties_broken_by_id(
        self, storage: RunsStorage
    ) -> None:
        run = storage.create_run(run_input())
        other = storage.create_run(run_input())
        storage.add_result(result_input(other, 0))
        late = storage.add_result(result_input(run, "late", id="z", started_at=T0 + timedelta(1)))
        tied = [
            storage.add_result(result_input(run, f"tie-{name}", id=name, started_at=T0))
            for name in ("c", "a", "b")
        ]
        early = storage.add_result(
            result_input(run, "early", id="y", started_at=T0 - timedelta(microseconds=1))
        )

        output = storage.list_results(ListRunResultsInput(run_id=run.id))
        assert [result.id for result in output.results] == ["y", "a", "b", "c", "z"]
        assert output.results[0] == early
        assert output.results[-1] == late
        assert {result.id for result in tied} == {"a", "b", "c"}
        assert output.pagination.total == 5

    def test_list_results_pages_cover_every_result_once(
        self,
        storage: RunsStorage,
    ) -> None:
        run = storage.create_run(run_input())
        ids = sorted(
            storage.add_result(result_input(run, n, started_at=T0 + timedelta(seconds=n % 3))).id
            for n in range(20)
        )
        seen: list[str] = []
        page = 0
        while True:
            output = storage.list_results(
                ListRunResultsInput(
                    run_id=run.id, pagination=StoragePagination(page=page, per_page=6)
                )
            )
            assert output.pagination.total == 20
            seen.extend(result.id for result in output.results)
            if not output.pagination.has_more:
                break
            page += 1
        assert page == 3
        assert sorted(seen) == ids
        assert len(seen) == len(set(seen))

    def test_list_results_of_unknown_run_is_empty(self, storage: RunsStorage) -> None:
        output = storage.list_results(ListRunResultsInput(run_id="no-such-run"))
        assert output.results == ()
        assert output.pagination.total == 0
        assert output.pagination.has_more is False

    def test_get_result_by_id_returns_none_when_absent(self, storage: RunsStorage) -> None:
        assert storage.get_result_by_id("nothing") is None

    def test_delete_results_by_run_id_keeps_the_run(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        other = storage.create_run(run_input())
        for n in range(3):
            storage.add_result(result_input(run, n))
        survivor = storage.add_result(result_input(other, 0))

        storage.delete_results_by_run_id(run.id)
        storage.delete_results_by_run_id("unknown-run")

        assert storage.get_run_by_id(run.id) == run
        assert storage.list_results(ListRunResultsInput(run_id=run.id)).pagination.total == 0
        assert storage.get_result_by_id(survivor.id) == survivor
        storage.add_result(result_input(run, 0))  # the item can be recorded again

    def test_add_results_records_all_in_order(self, storage: RunsStorage) -> None:
        one, two = storage.create_run(run_input()), storage.create_run(run_input())
        inputs = [result_input(one if n % 2 else two, n) for n in range(7)]
        results = storage.add_results(inputs)
        assert [result.item_id for result in results] == [f"item-{n}" for n in range(7)]
        assert len({result.id for result in results}) == 7
        for result in results:
            assert storage.get_result_by_id(result.id) == result
        assert total_results(storage, one.id) == 3
        assert total_results(storage, two.id) == 4

    def test_add_results_of_nothing_is_nothing(self, storage: RunsStorage) -> None:
        assert storage.add_results([]) == []

    def test_add_results_accepts_mappings_in_the_plans_names(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        item = result_input(run).model_dump(by_alias=True, mode="json")
        (result,) = storage.add_results([item])
        assert result.item_version == T0
        assert storage.get_result_by_id(result.id) == result

    def test_a_bad_item_is_named_and_nothing_is_written(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        good = result_input(run, 0).model_dump()
        bad = {**result_input(run, 1).model_dump(), "output": float("nan")}
        with pytest.raises(InvalidInputError, match=r"(?s)inputs\[1\].*output"):
            storage.add_results([good, bad])
        assert total_results(storage, run.id) == 0

    def test_repeats_within_a_batch_are_refused(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        with pytest.raises(InvalidInputError, match=r"inputs\[2\].*repeats inputs\[0\]"):
            storage.add_results([result_input(run, 0), result_input(run, 1), result_input(run, 0)])
        with pytest.raises(InvalidInputError, match=r"inputs\[1\]: id 'x' repeats inputs\[0\]"):
            storage.add_results([result_input(run, 0, id="x"), result_input(run, 1, id="x")])
        assert total_results(storage, run.id) == 0

    def test_a_missing_run_in_a_batch_is_named_and_nothing_is_written(
        self, storage: RunsStorage
    ) -> None:
        run = storage.create_run(run_input())
        inputs = [result_input(run, 0), result_input(run, 1), result_input("ghost", 2)]
        with pytest.raises(RunNotFoundError) as caught:
            storage.add_results(inputs)
        assert caught.value.position == 2
        assert caught.value.run_id == "ghost"
        assert "inputs[2]" in str(caught.value)
        assert total_results(storage, run.id) == 0

    @pytest.mark.parametrize("update_counts", [False, True])
    def test_a_stored_duplicate_deep_in_a_large_batch_writes_nothing(
        self, storage: RunsStorage, update_counts: bool
    ) -> None:
        run = storage.create_run(run_input())
        storage.add_result(result_input(run, 2400))
        inputs = [result_input(run, n) for n in range(2500)]
        with pytest.raises(DuplicateError) as caught:
            storage.add_results(inputs, update_counts=update_counts)
        assert caught.value.position == 2400
        assert "item-2400" in str(caught.value)
        assert total_results(storage, run.id) == 1
        stored = storage.get_run_by_id(run.id)
        assert stored is not None
        assert (stored.succeeded_count, stored.failed_count) == (0, 0)

    def test_a_stored_result_id_in_a_batch_is_named(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        storage.add_result(result_input(run, 0, id="taken"))
        with pytest.raises(DuplicateError) as caught:
            storage.add_results([result_input(run, 1), result_input(run, 2, id="taken")])
        assert caught.value.position == 1
        assert total_results(storage, run.id) == 1

    def test_large_batches_round_trip(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        inputs = [
            result_input(
                run, n, input={"n": n, "text": "é" * (n % 7)}, started_at=T0 + timedelta(n)
            )
            for n in range(3001)
        ]
        results = storage.add_results(inputs)
        listed = storage.list_results(
            ListRunResultsInput(run_id=run.id, pagination=StoragePagination(per_page=False))
        )
        assert listed.results == tuple(results)

    def test_add_result_can_count_progress(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        storage.add_result(result_input(run, 0), update_counts=True)
        storage.add_result(result_input(run, 1, error="boom"), update_counts=True)
        storage.add_result(result_input(run, 2, error=""), update_counts=True)  # "" is an error
        storage.add_result(result_input(run, 3))  # not counted
        stored = storage.get_run_by_id(run.id)
        assert stored is not None
        assert (stored.succeeded_count, stored.failed_count) == (1, 2)
        assert stored.updated_at >= run.updated_at

    def test_add_results_counts_each_run_once(self, storage: RunsStorage) -> None:
        one, two = storage.create_run(run_input()), storage.create_run(run_input())
        inputs = [
            result_input(one, 0),
            result_input(two, 0, error="x"),
            result_input(one, 1, error="y"),
            result_input(one, 2),
            result_input(two, 1),
        ]
        storage.add_results(inputs, update_counts=True)
        first, second = storage.get_run_by_id(one.id), storage.get_run_by_id(two.id)
        assert first is not None
        assert second is not None
        assert (first.succeeded_count, first.failed_count) == (2, 1)
        assert (second.succeeded_count, second.failed_count) == (1, 1)

    def test_counting_for_a_missing_run_writes_nothing(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        with pytest.raises(RunNotFoundError):
            storage.add_result(result_input("ghost"), update_counts=True)
        with pytest.raises(RunNotFoundError) as caught:
            storage.add_results(
                [result_input(run, 0), result_input("ghost", 1)], update_counts=True
            )
        assert caught.value.position == 1
        stored = storage.get_run_by_id(run.id)
        assert stored is not None
        assert (stored.succeeded_count, stored.failed_count) == (0, 0)
        assert total_results(storage, run.id) == 0

    def test_a_counted_duplicate_is_not_counted(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        storage.add_result(result_input(run, 0), update_counts=True)
        with pytest.raises(DuplicateError):
            storage.add_result(result_input(run, 0), update_counts=True)
        stored = storage.get_run_by_id(run.id)
        assert stored is not None
        assert stored.succeeded_count == 1

    def test_counting_never_moves_updated_at_back(
        self,
        make_storage: Callable[..., RunsStorage],
    ) -> None:
        clock = FrozenClock(T0)
        storage = make_storage(clock=clock)
        run = storage.create_run(run_input())
        storage.update_run(UpdateRunInput(id=run.id, status="running"))
        later = storage.get_run_by_id(run.id)
        assert later is not None
        clock.now = T0 - timedelta(hours=1)  # a writer whose clock runs behind
        storage.add_result(result_input(run), update_counts=True)
        counted = storage.get_run_by_id(run.id)
        assert counted is not None
        assert counted.updated_at == later.updated_at
        clock.now = T0 + timedelta(hours=1)
        storage.add_result(result_input(run, 1), update_counts=True)
        counted = storage.get_run_by_id(run.id)
        assert counted is not None
        assert counted.updated_at == T0 + timedelta(hours=1)

    def test_an_offset_page_hands_over_to_cursors(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        results = storage.add_results(
            [result_input(run, n, started_at=T0 + timedelta(seconds=n // 3)) for n in range(10)]
        )
        expected = [result.id for result in sorted(results, key=lambda r: (r.started_at, r.id))]
        first = storage.list_results(
            ListRunResultsInput(run_id=run.id, pagination=StoragePagination(page=1, per_page=3))
        )
        assert [result.id for result in first.results] == expected[3:6]
        assert first.next_cursor is not None
        rest = storage.list_results(
            ListRunResultsInput(
                run_id=run.id,
                pagination=StoragePagination(per_page=False),
                cursor=first.next_cursor,
            )
        )
        assert [result.id for result in rest.results] == expected[6:]
        assert rest.next_cursor is None
        assert rest.pagination.total == 10
        assert rest.pagination.has_more is False

    def test_the_last_page_has_no_cursor(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, n) for n in range(4)])
        output = storage.list_results(
            ListRunResultsInput(run_id=run.id, pagination=StoragePagination(per_page=4))
        )
        assert output.next_cursor is None
        assert output.pagination.has_more is False

    @pytest.mark.parametrize("cursor", ["", "not a cursor", "eyJ2IjoxfQ", "W10", "🙂", "e30"])
    def test_malformed_cursors_are_value_errors(self, storage: RunsStorage, cursor: str) -> None:
        with pytest.raises(InvalidInputError, match="malformed cursor"):
            storage.list_runs(ListRunsInput(cursor=cursor))
        with pytest.raises(ValueError, match="malformed cursor"):
            storage.list_results(ListRunResultsInput(run_id="r", cursor=cursor))

    def test_foreign_cursors_are_refused(self, storage: RunsStorage) -> None:
        one, two = storage.create_run(run_input()), storage.create_run(run_input(dataset_id="d2"))
        storage.add_results([result_input(one, n) for n in range(3)])
        per_one = StoragePagination(per_page=1)
        results_cursor = storage.list_results(
            ListRunResultsInput(run_id=one.id, pagination=per_one)
        ).next_cursor
        runs_cursor = storage.list_runs(ListRunsInput(pagination=per_one)).next_cursor
        assert results_cursor is not None
        assert runs_cursor is not None

        with pytest.raises(InvalidInputError, match="another list"):
            storage.list_results(ListRunResultsInput(run_id=two.id, cursor=results_cursor))
        with pytest.raises(InvalidInputError, match="another list"):
            storage.list_runs(ListRunsInput(cursor=results_cursor))
        with pytest.raises(InvalidInputError, match="another list"):
            storage.list_runs(ListRunsInput(dataset_id="d2", cursor=runs_cursor))
        with pytest.raises(InvalidInputError, match="another list"):
            storage.list_results(ListRunResultsInput(run_id=one.id, cursor=runs_cursor))

    @pytest.mark.parametrize("batch_size", [1, 3, 1000])
    def test_iter_results_yields_every_result_in_list_order(
        self, storage: RunsStorage, batch_size: int
    ) -> None:
        run = storage.create_run(run_input())
        other = storage.create_run(run_input())
        storage.add_results(
            [result_input(run, n, started_at=T0 + timedelta(seconds=n % 4)) for n in range(11)]
        )
        storage.add_results([result_input(other, n) for n in range(2)])
        listed = storage.list_results(
            ListRunResultsInput(run_id=run.id, pagination=StoragePagination(per_page=False))
        ).results
        assert tuple(storage.iter_results(run.id, batch_size=batch_size)) == listed
        assert list(storage.iter_results("no-such-run", batch_size=batch_size)) == []

    @pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
    def test_bad_batch_sizes_are_refused(self, storage: RunsStorage, batch_size: object) -> None:
        with pytest.raises(InvalidInputError, match="batch_size"):
            list(storage.iter_results("r", batch_size=batch_size))  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="batch_size"):
            list(storage.iter_runs(batch_size=batch_size))  # type: ignore[arg-type]

    def test_batches_store_json_exactly_like_single_results(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        values = [
            1e20,
            -0.0,
            0.1,
            2**70,
            "lit\\u0000eral",
            "ünï 😀",
            (1, [2.5e-8]),
            {"": None},
            False,
        ]
        batched = storage.add_results(
            [result_input(run, n, input=value, output=value) for n, value in enumerate(values)]
        )
        singles = [
            storage.add_result(result_input(run, f"single-{n}", input=value, output=value))
            for n, value in enumerate(values)
        ]
        for batch_result, single_result in zip(batched, singles, strict=True):
            stored = storage.get_result_by_id(batch_result.id)
            assert stored is not None
            for read in (batch_result, stored):
                assert repr(read.input) == repr(single_result.input)
                assert repr(read.output) == repr(single_result.input)

    def test_each_repetition_of_an_item_is_a_result_of_its_own(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        written = storage.add_results(
            [
                result_input(run, 0, repetition=r, latency=10.0 * (r + 1), started_at=T0)
                for r in (2, 0, 1)
            ],
            update_counts=True,
        )
        assert [result.repetition for result in written] == [2, 0, 1]
        listed = storage.list_results(ListRunResultsInput(run_id=run.id)).results
        assert sorted(result.repetition for result in listed) == [0, 1, 2]
        # Ties on started_at are broken by id: every read gives the same order.
        assert [result.id for result in listed] == sorted(result.id for result in written)
        assert [r.id for r in storage.iter_results(run.id)] == [r.id for r in listed]
        assert counters(storage.get_run_by_id(run.id)) == (3, 3, 0)
        assert storage.summarize_run(run.id).results == 3

    def test_the_same_item_and_repetition_is_refused_by_default(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        storage.add_result(result_input(run, 0, repetition=1))
        with pytest.raises(DuplicateError, match="repetition"):
            storage.add_result(result_input(run, 0, repetition=1))
        with pytest.raises(DuplicateError) as caught:
            storage.add_results(
                [result_input(run, 5), result_input(run, 0, repetition=1)], update_counts=True
            )
        assert caught.value.position == 1
        assert storage.list_results(ListRunResultsInput(run_id=run.id)).pagination.total == 1
        assert counters(storage.get_run_by_id(run.id)) == (1, 0, 0)

    def test_a_repetition_is_a_count(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        negative = {**result_input(run, 0).model_dump(), "repetition": -1}
        # Refused as every invalid field is (a ValueError naming the field).
        with pytest.raises(ValueError, match="repetition"):
            storage.add_result(negative)
        with pytest.raises(ValueError, match="repetition"):
            storage.add_results([negative])
        with pytest.raises(InvalidInputError, match=r"inputs\[1\]"):
            storage.add_results(
                [result_input(run, 0, repetition=0), result_input(run, 0, repetition=0)]
            )

    def test_replace_overwrites_the_stored_result_and_keeps_its_id(
        self, storage: RunsStorage
    ) -> None:
        run = storage.create_run(run_input())
        first = storage.add_result(
            result_input(run, 0, error="timeout", scores={"acc": 0.0, "stale": 1.0}),
            update_counts=True,
        )
        storage.add_scores([AddScoreInput(result_id=first.id, name="judge", value=0.1)])
        retried = result_input(
            run, 0, output={"answer": "right"}, latency=99.5, retry_count=1, scores={"acc": 1.0}
        )
        replaced = storage.add_result(retried, update_counts=True, on_conflict="replace")
        assert replaced.id == first.id
        assert (replaced.error, replaced.output, replaced.latency, replaced.retry_count) == (
            None,
            {"answer": "right"},
            99.5,
            1,
        )
        assert replaced.scores == {"acc": 1.0}  # its scores too: the old ones are gone
        assert storage.get_result_by_id(first.id) == replaced
        assert [(s.name, s.value) for s in storage.list_scores(run.id)] == [("acc", 1.0)]
        # The failure became a success: one count moved, the result count stayed.
        assert counters(storage.get_run_by_id(run.id)) == (1, 1, 0)
        assert stored_counters(storage, run.id) == (1, 1, 0)

    def test_replace_and_skip_write_what_is_new(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        (stored,) = storage.add_results([result_input(run, 0)], update_counts=True)
        for mode in ("replace", "skip"):
            (fresh,) = storage.add_results(
                [result_input(run, 1, repetition=len(mode))], update_counts=True, on_conflict=mode
            )
            assert storage.get_result_by_id(fresh.id) == fresh
        assert counters(storage.get_run_by_id(run.id)) == (3, 3, 0)
        assert storage.get_result_by_id(stored.id) == stored

    def test_replacing_some_repetitions_leaves_the_others_alone(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        stored = storage.add_results(
            [result_input(run, n, repetition=r, error="old") for n in (0, 1) for r in (0, 1)],
            update_counts=True,
        )
        # Item 0's repetition 0 and item 1's repetition 1: lists of items {0, 1} and of
        # repetitions {0, 1} cover all four stored pairs, and only two are asked for.
        for mode in ("replace", "skip"):
            storage.add_results(
                [result_input(run, 0, repetition=0), result_input(run, 1, repetition=1)],
                update_counts=True,
                on_conflict=mode,
            )
            by_pair = {(r.item_id, r.repetition): r for r in storage.iter_results(run.id)}
            assert len(by_pair) == 4
            assert by_pair[("item-0", 1)] == stored[1]
            assert by_pair[("item-1", 0)] == stored[2]
            assert by_pair[("item-0", 0)].error is None
            assert by_pair[("item-1", 1)].error is None
        assert counters(storage.get_run_by_id(run.id)) == (4, 2, 2)

    def test_skip_keeps_the_stored_result_and_returns_it(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        stored = storage.add_result(result_input(run, 0, scores={"acc": 0.5}), update_counts=True)
        before = storage.get_run_by_id(run.id)
        again = storage.add_result(
            result_input(run, 0, error="late duplicate", scores={"acc": 0.0}),
            update_counts=True,
            on_conflict="skip",
        )
        assert again == stored
        assert storage.get_result_by_id(stored.id) == stored
        assert [(s.name, s.value) for s in storage.list_scores(run.id)] == [("acc", 0.5)]
        after = storage.get_run_by_id(run.id)
        assert counters(after) == counters(before) == (1, 1, 0)

    def test_a_batch_of_retries_keeps_every_counter_exact(self, storage: RunsStorage) -> None:
        runs = [storage.create_run(run_input()), storage.create_run(run_input())]
        first = storage.add_results(
            [
                result_input(run, n, error="boom" if n % 3 == 0 else None)
                for run in runs
                for n in range(6)
            ],
            update_counts=True,
        )
        assert [counters(storage.get_run_by_id(run.id)) for run in runs] == [(6, 4, 2)] * 2
        # A retry of every item of the first run (outcomes flipped), plus new items of both.
        retry = [result_input(runs[0], n, error=None if n % 3 == 0 else "x") for n in range(6)]
        retry += [result_input(run, 6, error="new failure") for run in runs]
        written = storage.add_results(retry, update_counts=True, on_conflict="replace")
        assert [result.id for result in written[:6]] == [result.id for result in first[:6]]
        assert [(r.item_id, r.error) for r in written] == [(r.item_id, r.error) for r in retry]
        for run in runs:
            assert counters(storage.get_run_by_id(run.id)) == stored_counters(storage, run.id)
        assert counters(storage.get_run_by_id(runs[0].id)) == (7, 2, 5)
        assert counters(storage.get_run_by_id(runs[1].id)) == (7, 4, 3)
        # Returned is what is stored.
        for result in written:
            assert storage.get_result_by_id(result.id) == result

    def test_skip_in_a_batch_returns_the_stored_results_in_order(
        self, storage: RunsStorage
    ) -> None:
        run = storage.create_run(run_input())
        stored = storage.add_results([result_input(run, n) for n in (1, 3)])
        written = storage.add_results(
            [result_input(run, n, error="again") for n in range(4)], on_conflict="skip"
        )
        assert [r.item_id for r in written] == [f"item-{n}" for n in range(4)]
        assert written[1] == stored[0]
        assert written[3] == stored[1]
        assert [r.error for r in written] == ["again", None, "again", None]
        assert storage.list_results(ListRunResultsInput(run_id=run.id)).pagination.total == 4

    def test_on_conflict_is_checked_before_anything_is_written(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        with pytest.raises(InvalidInputError, match="on_conflict"):
            storage.add_result(result_input(run, 0), on_conflict="overwrite")
        with pytest.raises(InvalidInputError, match="on_conflict"):
            storage.add_results([result_input(run, 0)], on_conflict="upsert")
        with pytest.raises(RunNotFoundError):
            storage.add_result(result_input("no-such-run", 0), on_conflict="replace")
        with pytest.raises(RunNotFoundError) as caught:
            storage.add_results(
                [result_input(run, 0), result_input("no-such-run", 0)], on_conflict="skip"
            )
        assert caught.value.position == 1
        assert storage.list_results(ListRunResultsInput(run_id=run.id)).pagination.total == 0

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
