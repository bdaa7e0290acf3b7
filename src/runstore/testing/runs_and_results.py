"""The contract for runs, single results, JSON values and the storage's lifecycle."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from runstore import (
    DuplicateError,
    ListRunResultsInput,
    ListRunsInput,
    RunNotFoundError,
    RunsStorage,
    RunStatus,
    StorageClosedError,
    StorageError,
    StoragePagination,
    UpdateRunInput,
)
from runstore.testing.inputs import T0, FrozenClock, result_input, run_input

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


class RunsAndResultsContract:
    """Runs, single results, JSON values, lifecycle."""

    def test_create_run_starts_pending_with_zero_counts(self, storage: RunsStorage) -> None:
        before = datetime.now(UTC)
        run = storage.create_run(run_input())
        after = datetime.now(UTC)

        assert str(uuid.UUID(run.id, version=4)) == run.id
        assert run.status is RunStatus.PENDING
        assert (run.succeeded_count, run.failed_count) == (0, 0)
        assert run.started_at is None
        assert run.completed_at is None
        assert run.created_at == run.updated_at
        assert before <= run.created_at <= after
        assert run.created_at.tzinfo is UTC
        assert storage.get_run_by_id(run.id) == run

    def test_create_run_keeps_every_field(self, storage: RunsStorage) -> None:
        version = datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=-7)))
        run = storage.create_run(
            run_input(
                id="run-a",
                dataset_id="ds",
                dataset_version=version,
                target_type="workflow",
                target_id="wf",
                total_items=7,
            )
        )
        stored = storage.get_run_by_id("run-a")
        assert stored == run
        assert stored is not None
        assert (stored.id, stored.dataset_id, stored.target_id, stored.total_items) == (
            "run-a",
            "ds",
            "wf",
            7,
        )
        assert stored.target_type == "workflow"
        assert stored.dataset_version == version
        assert stored.dataset_version.tzinfo is UTC

    def test_create_run_refuses_an_existing_id(self, storage: RunsStorage) -> None:
        first = storage.create_run(run_input(id="same", target_id="first"))
        with pytest.raises(DuplicateError):
            storage.create_run(run_input(id="same", target_id="second"))
        assert storage.get_run_by_id("same") == first

    def test_update_run_changes_only_the_given_fields(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        started = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)

        updated = storage.update_run(
            UpdateRunInput(id=run.id, status=RunStatus.RUNNING, started_at=started)
        )
        assert updated.status is RunStatus.RUNNING
        assert updated.started_at == started
        unchanged = {"status", "started_at", "updated_at"}
        assert updated.model_dump(exclude=unchanged) == run.model_dump(exclude=unchanged)
        assert updated.updated_at > run.updated_at
        assert storage.get_run_by_id(run.id) == updated

        done = storage.update_run(
            UpdateRunInput(
                id=run.id,
                status="completed",
                succeeded_count=9,
                failed_count=1,
                completed_at=started + timedelta(minutes=5),
            )
        )
        assert (done.status, done.succeeded_count, done.failed_count) == (RunStatus.COMPLETED, 9, 1)
        assert done.started_at == started
        assert done.updated_at > updated.updated_at
        assert storage.get_run_by_id(run.id) == done

    def test_updated_at_moves_forward_even_when_the_clock_does_not(
        self,
        make_storage: Callable[..., RunsStorage],
    ) -> None:
        storage = make_storage(clock=FrozenClock(T0))
        run = storage.create_run(run_input())
        first = storage.update_run(UpdateRunInput(id=run.id, status="running"))
        second = storage.update_run(UpdateRunInput(id=run.id, failed_count=1))
        assert run.updated_at < first.updated_at < second.updated_at

    def test_update_run_of_unknown_id_raises_not_found(self, storage: RunsStorage) -> None:
        with pytest.raises(RunNotFoundError) as caught:
            storage.update_run(UpdateRunInput(id="missing", status="running"))
        assert isinstance(caught.value, LookupError)
        assert isinstance(caught.value, StorageError)
        assert storage.get_run_by_id("missing") is None

    def test_get_run_by_id_returns_none_when_absent(self, storage: RunsStorage) -> None:
        assert storage.get_run_by_id("nothing-here") is None

    def test_list_runs_newest_first_with_dataset_filter(self, storage: RunsStorage) -> None:
        a1 = storage.create_run(run_input(dataset_id="a"))
        b1 = storage.create_run(run_input(dataset_id="b"))
        a2 = storage.create_run(run_input(dataset_id="a"))

        everything = storage.list_runs(ListRunsInput())
        assert [run.id for run in everything.runs] == [a2.id, b1.id, a1.id]
        assert everything.pagination.total == 3
        assert everything.pagination.has_more is False

        only_a = storage.list_runs(ListRunsInput(dataset_id="a"))
        assert [run.id for run in only_a.runs] == [a2.id, a1.id]
        assert only_a.pagination.total == 2
        assert storage.list_runs(ListRunsInput(dataset_id="none")).runs == ()

    def test_list_runs_pages_are_exact_when_timestamps_tie(
        self,
        make_storage: Callable[..., RunsStorage],
    ) -> None:
        storage = make_storage(clock=FrozenClock(T0))
        ids = [storage.create_run(run_input(id=f"run-{n:02d}")).id for n in range(23)]

        seen: list[str] = []
        for page in range(4):
            output = storage.list_runs(
                ListRunsInput(pagination=StoragePagination(page=page, per_page=7))
            )
            assert output.pagination.total == 23
            assert output.pagination.page == page
            assert output.pagination.per_page == 7
            assert output.pagination.has_more is (page < 3)
            seen.extend(run.id for run in output.runs)
        assert seen == sorted(ids, reverse=True)

    def test_list_runs_page_past_the_end_is_empty(self, storage: RunsStorage) -> None:
        for _ in range(3):
            storage.create_run(run_input())
        output = storage.list_runs(ListRunsInput(pagination=StoragePagination(page=5, per_page=2)))
        assert output.runs == ()
        assert output.pagination.total == 3
        assert output.pagination.has_more is False

    def test_list_runs_all_rows_when_per_page_is_false(self, storage: RunsStorage) -> None:
        for _ in range(5):
            storage.create_run(run_input())
        output = storage.list_runs(
            ListRunsInput(pagination=StoragePagination(page=0, per_page=False))
        )
        assert len(output.runs) == 5
        assert output.pagination.model_dump() == {
            "total": 5,
            "page": 0,
            "per_page": False,
            "has_more": False,
        }

    def test_list_runs_last_page_has_no_more(self, storage: RunsStorage) -> None:
        for _ in range(4):
            storage.create_run(run_input())
        last = storage.list_runs(ListRunsInput(pagination=StoragePagination(page=1, per_page=2)))
        assert len(last.runs) == 2
        assert last.pagination.has_more is False

    def test_delete_run_removes_the_run_and_its_results_only(self, storage: RunsStorage) -> None:
        doomed = storage.create_run(run_input())
        kept = storage.create_run(run_input())
        doomed_results = [storage.add_result(result_input(doomed, n)) for n in range(3)]
        kept_result = storage.add_result(result_input(kept, 0))

        storage.delete_run(doomed.id)

        assert storage.get_run_by_id(doomed.id) is None
        assert all(storage.get_result_by_id(result.id) is None for result in doomed_results)
        assert storage.list_results(ListRunResultsInput(run_id=doomed.id)).pagination.total == 0
        assert storage.get_run_by_id(kept.id) == kept.model_copy(update={"result_count": 1})
        assert storage.get_result_by_id(kept_result.id) == kept_result

    def test_delete_run_of_unknown_id_is_a_no_op(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        storage.delete_run("not-a-run")
        assert storage.get_run_by_id(run.id) == run

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

    def test_dangerously_clear_all_empties_both_tables_and_keeps_working(
        self,
        storage: RunsStorage,
    ) -> None:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run))
        storage.dangerously_clear_all()
        assert storage.get_run_by_id(run.id) is None
        assert storage.get_result_by_id(result.id) is None
        assert storage.list_runs(ListRunsInput()).pagination.total == 0
        again = storage.create_run(run_input(id=run.id))
        storage.add_result(result_input(again, id=result.id))

    def test_a_closed_storage_refuses_use(self, storage: RunsStorage) -> None:
        storage.close()
        with pytest.raises(StorageClosedError):
            storage.get_run_by_id("x")
        with pytest.raises(StorageClosedError):
            storage.create_run(run_input())

    def test_context_manager_closes(self, make_storage: Callable[..., RunsStorage]) -> None:
        storage = make_storage()
        with storage as entered:
            assert entered is storage
            entered.create_run(run_input())
        with pytest.raises(StorageClosedError):
            storage.list_runs(ListRunsInput())
