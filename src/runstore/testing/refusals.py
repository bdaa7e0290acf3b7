"""The contract for what a storage refuses: wrong types, values past the limits, forged
cursors. Every refusal is a ``ValueError`` (and, when the storage itself refuses, a
``StorageError``), raised before anything is written -- never a wider query, never a
raw exception."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

import pytest

from runstore import InvalidInputError
from runstore import ListRunResultsInput
from runstore import ListRunsInput
from runstore import Run
from runstore import RunsStorage
from runstore import StoragePagination
from runstore import UpdateRunInput
from runstore.limits import MAX_COUNT
from runstore.limits import MAX_ID_LENGTH
from runstore.limits import MAX_INT_DIGITS
from runstore.limits import MAX_JSON_DEPTH
from runstore.limits import MAX_PAGE_SIZE
from runstore.testing.inputs import T0
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

NOT_IDS: list[Any] = [
    None,
    5,
    2**100,
    1.5,
    True,
    b"run",
    ["run"],
    {"id": "run"},
    "",
    "nul\x00",
    "\ud800",
    "x" * (MAX_ID_LENGTH + 1),
]
"""Values no id can be."""

NOT_MODELS: list[Any] = ["run", 5, 2.5, ["run"], b"run", object()]
"""Values no input model can be made from (a mapping of its fields can)."""


def shown(value: object) -> str:
    """A test id for ``value``: its repr, the same in every process (an object's is not)."""
    return "object()" if type(value) is object else repr(value)


def nested(depth: int) -> object:
    """A JSON value ``depth`` levels deep: lists in lists, with a number at the bottom."""
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def everything(storage: RunsStorage) -> tuple[tuple[Run, ...], dict[str, tuple[Any, ...]]]:
    """Every run and every result in the storage, to compare before and after a refusal."""
    runs = storage.list_runs(ListRunsInput(pagination=StoragePagination(per_page=False))).runs
    return runs, {run.id: tuple(storage.iter_results(run.id)) for run in runs}


def forged_cursor(document: object) -> str:
    """A cursor made by hand: URL-safe base64 of a JSON document."""
    text = json.dumps(document) if not isinstance(document, str) else document
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


FORGED_CURSORS = [
    pytest.param("", id="empty"),
    pytest.param("not a cursor", id="spaces"),
    pytest.param("🙂", id="emoji"),
    pytest.param("A" * 100_000, id="huge"),
    pytest.param(forged_cursor("[" * 100_000 + "]" * 100_000), id="deep-json"),
    pytest.param(forged_cursor({"v": 1}), id="old-shape"),
    pytest.param(forged_cursor([2, "runs", "0", "0001-01-01T00:00:00+14:00", "x", "0"]), id="min"),
    pytest.param(
        forged_cursor([2, "runs", "0", "9999-12-31T23:59:59.999999-14:00", "x", "0"]), id="max"
    ),
    pytest.param(forged_cursor([2, "runs", "0", 2**100, 2**100, None]), id="huge-numbers"),
    pytest.param(forged_cursor([]), id="empty-list"),
]


class RefusalsContract:
    """Wrong types, out-of-range values and forged cursors, refused before any write."""

    # -- ids -------------------------------------------------------------------------

    @pytest.mark.parametrize("bad", NOT_IDS, ids=shown)
    def test_anything_but_an_id_is_refused_where_an_id_is_taken(
        self, storage: RunsStorage, bad: object
    ) -> None:
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, n) for n in range(3)])
        before = everything(storage)
        calls: list[Callable[[], object]] = [
            lambda: storage.get_run_by_id(bad),  # type: ignore[arg-type]
            lambda: storage.get_result_by_id(bad),  # type: ignore[arg-type]
            lambda: storage.delete_run(bad),  # type: ignore[arg-type]
            lambda: storage.delete_results_by_run_id(bad),  # type: ignore[arg-type]
            lambda: storage.iter_results(bad),  # type: ignore[arg-type]  # refused at once
            lambda: storage.list_scores(bad),  # type: ignore[arg-type]
            lambda: storage.iter_scores(bad),  # type: ignore[arg-type]
            lambda: storage.summarize_run(bad),  # type: ignore[arg-type]
            lambda: storage.histogram_run(bad),  # type: ignore[arg-type]
            lambda: storage.compare_runs(bad, run.id),  # type: ignore[arg-type]
            lambda: storage.compare_runs(run.id, bad),  # type: ignore[arg-type]
            lambda: storage.iter_item_comparisons(bad, run.id),  # type: ignore[arg-type]
        ]
        if bad is not None:  # None is no filter there
            calls.append(lambda: storage.iter_item_comparisons(run.id, run.id, score=bad))  # type: ignore[arg-type]
            calls.append(lambda: storage.list_scores(run.id, result_id=bad))  # type: ignore[arg-type]
        for call in calls:
            with pytest.raises(InvalidInputError):
                call()
        with pytest.raises(ValueError, match="run_id"):
            storage.list_results({"run_id": bad})
        with pytest.raises(ValueError, match="run_id"):
            storage.add_result(result_input(run, 9).model_dump() | {"run_id": bad})
        assert everything(storage) == before

    def test_iter_results_of_none_is_refused_not_every_result(self, storage: RunsStorage) -> None:
        for _ in range(2):
            storage.add_result(result_input(storage.create_run(run_input())))
        with pytest.raises(InvalidInputError, match="run_id"):
            storage.iter_results(None)  # type: ignore[arg-type]

    def test_the_longest_ids_and_any_unicode_are_stored(self, storage: RunsStorage) -> None:
        longest = "é" * MAX_ID_LENGTH
        run = storage.create_run(run_input(id=longest, dataset_id=longest, target_id=longest))
        result = storage.add_result(result_input(run, id="😀" * MAX_ID_LENGTH, item_id=longest))
        counted = run.model_copy(update={"result_count": 1})
        assert storage.get_run_by_id(longest) == counted
        assert storage.get_result_by_id("😀" * MAX_ID_LENGTH) == result
        assert storage.list_runs(ListRunsInput(dataset_id=longest)).runs == (counted,)

    @pytest.mark.parametrize("field", ["id", "dataset_id", "target_id"])
    def test_ids_past_the_limit_are_refused(self, storage: RunsStorage, field: str) -> None:
        with pytest.raises(ValueError, match=field):
            storage.create_run(run_input(**{field: "x" * (MAX_ID_LENGTH + 1)}))
        assert everything(storage) == ((), {})

    # -- input models ----------------------------------------------------------------

    def test_every_input_may_be_a_mapping_of_its_fields(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input().model_dump())
        camel = run_input(id="camel").model_dump(by_alias=True)
        assert storage.create_run(camel).id == "camel"
        updated = storage.update_run({"id": run.id, "status": "running"})
        assert updated.status == "running"
        result = storage.add_result(result_input(run).model_dump(by_alias=True))
        assert storage.list_results({"runId": run.id}).results == (result,)
        assert storage.list_runs({"dataset_id": run.dataset_id}).pagination.total == 2
        assert storage.list_runs().pagination.total == 2

    @pytest.mark.parametrize("bad", [None, *NOT_MODELS], ids=shown)
    def test_anything_but_an_input_is_a_value_error(
        self, storage: RunsStorage, bad: object
    ) -> None:
        run = storage.create_run(run_input())
        before = everything(storage)
        calls: list[Callable[[], object]] = [
            lambda: storage.create_run(bad),  # type: ignore[arg-type]
            lambda: storage.update_run(bad),  # type: ignore[arg-type]
            lambda: storage.add_result(bad),  # type: ignore[arg-type]
            lambda: storage.list_results(bad),  # type: ignore[arg-type]
            lambda: storage.add_results([bad]),  # type: ignore[list-item]
            lambda: storage.add_results(bad),  # type: ignore[arg-type]
        ]
        if bad is not None:  # list_runs() with no input lists the first page
            calls.append(lambda: storage.list_runs(bad))  # type: ignore[arg-type]
        for call in calls:
            with pytest.raises(ValueError, match=r"validation error|inputs"):
                call()
        assert storage.get_run_by_id(run.id) == run
        assert everything(storage) == before

    @pytest.mark.parametrize("bad", [None, 5, "results", {"run_id": "r"}, b"x"], ids=shown)
    def test_a_batch_must_be_an_iterable_of_inputs(self, storage: RunsStorage, bad: object) -> None:
        with pytest.raises(InvalidInputError, match="inputs"):
            storage.add_results(bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [None, 1, "yes", [True]], ids=shown)
    def test_flags_must_be_bools(self, storage: RunsStorage, bad: object) -> None:
        run = storage.create_run(run_input())
        with pytest.raises(InvalidInputError, match="update_counts"):
            storage.add_result(result_input(run), update_counts=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="update_counts"):
            storage.add_results([result_input(run)], update_counts=bad)  # type: ignore[arg-type]
        assert everything(storage) == ((run,), {run.id: ()})

    @pytest.mark.parametrize("bad", [0, -1, 2.5, True, None, "10", MAX_PAGE_SIZE + 1, 2**63])
    def test_sizes_must_be_ints_in_range(self, storage: RunsStorage, bad: object) -> None:
        with pytest.raises(InvalidInputError, match="batch_size"):
            storage.iter_results("r", batch_size=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="batch_size"):
            storage.iter_runs(batch_size=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="per_page"):
            storage.list_runs({"pagination": {"per_page": bad}})

    @pytest.mark.parametrize("filters", [{"status": "bogus"}, {"dataset": "x"}, {"target_id": 5}])
    def test_unknown_or_wrong_run_filters_are_refused(
        self, storage: RunsStorage, filters: dict[str, Any]
    ) -> None:
        with pytest.raises(ValueError, match="validation error"):
            storage.iter_runs(**filters)

    # -- limits ----------------------------------------------------------------------

    def test_pages_as_large_and_as_deep_as_allowed_work(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, n) for n in range(3)])
        largest = StoragePagination(per_page=MAX_PAGE_SIZE)
        assert (
            len(
                storage.list_results(ListRunResultsInput(run_id=run.id, pagination=largest)).results
            )
            == 3
        )
        deepest = StoragePagination(page=MAX_COUNT, per_page=MAX_PAGE_SIZE)
        output = storage.list_results(ListRunResultsInput(run_id=run.id, pagination=deepest))
        assert output.results == ()
        assert output.pagination.total == 3
        assert len(list(storage.iter_results(run.id, batch_size=MAX_PAGE_SIZE))) == 3
        with pytest.raises(ValueError, match="per_page"):
            StoragePagination(per_page=2**31 - 1)

    def test_json_nests_up_to_the_limit_and_reads_back(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        deepest = nested(MAX_JSON_DEPTH)
        result = storage.add_result(
            result_input(run, input=deepest, output={"a": nested(MAX_JSON_DEPTH - 1)})
        )
        batch = storage.add_results([result_input(run, 1, expected_output=deepest)])
        assert storage.get_result_by_id(result.id) == result
        listed = storage.list_results(ListRunResultsInput(run_id=run.id)).results
        assert listed == (result, *batch)
        assert tuple(storage.iter_results(run.id)) == listed

    def test_json_nested_past_the_limit_is_refused(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        for too_deep in (nested(MAX_JSON_DEPTH + 1), {"a": nested(MAX_JSON_DEPTH)}):
            with pytest.raises(ValueError, match="nested too deeply"):
                storage.add_result(result_input(run, input=too_deep))
            with pytest.raises(ValueError, match=r"(?s)inputs\[0\].*nested too deeply"):
                storage.add_results([{**result_input(run).model_dump(), "output": too_deep}])
        cycle: list[object] = []
        cycle.append(cycle)
        with pytest.raises(ValueError, match="nested too deeply"):
            storage.add_result(result_input(run, input=cycle))
        assert everything(storage) == ((run,), {run.id: ()})

    def test_integers_up_to_the_digit_limit_and_no_further(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        largest = -(10**MAX_INT_DIGITS - 1)
        result = storage.add_result(result_input(run, input={"n": largest}))
        stored = storage.get_result_by_id(result.id)
        assert stored is not None
        assert stored.input == {"n": largest}
        for too_long in (10**MAX_INT_DIGITS, 10**4100, -(10**5000)):
            with pytest.raises(ValueError, match="digits"):
                storage.add_result(result_input(run, 1, input=too_long))
            with pytest.raises(ValueError, match="digits"):
                storage.add_results([result_input(run, 1, output=[too_long])])
        assert len(everything(storage)[1][run.id]) == 1

    def test_counters_stop_at_the_limit_on_every_backend(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        storage.update_run(UpdateRunInput(id=run.id, succeeded_count=MAX_COUNT - 1))
        storage.add_result(result_input(run, 0), update_counts=True)
        at_limit = storage.get_run_by_id(run.id)
        assert at_limit is not None
        assert at_limit.succeeded_count == MAX_COUNT
        before = everything(storage)
        with pytest.raises(InvalidInputError, match="counter"):
            storage.add_result(result_input(run, 1), update_counts=True)
        with pytest.raises(InvalidInputError, match=r"inputs\[0\].*counter"):
            storage.add_results([result_input(run, 2)], update_counts=True)
        assert everything(storage) == before
        storage.add_result(result_input(run, 3, error="boom"), update_counts=True)  # the other
        with pytest.raises(ValueError, match="failed_count"):
            storage.update_run(UpdateRunInput(id=run.id, failed_count=MAX_COUNT + 1))

    # -- cursors ---------------------------------------------------------------------

    @pytest.mark.parametrize("cursor", FORGED_CURSORS)
    def test_a_cursor_runstore_did_not_make_is_refused(
        self, storage: RunsStorage, cursor: str
    ) -> None:
        storage.create_run(run_input())
        with pytest.raises(InvalidInputError, match="cursor"):
            storage.list_runs(ListRunsInput(cursor=cursor))
        with pytest.raises(InvalidInputError, match="cursor"):
            storage.list_results(ListRunResultsInput(run_id="r", cursor=cursor))

    def test_an_altered_cursor_is_refused(self, storage: RunsStorage) -> None:
        for _ in range(3):
            storage.create_run(run_input())
        cursor = storage.list_runs(ListRunsInput(pagination=StoragePagination(per_page=1)))
        assert cursor.next_cursor is not None
        for position in range(0, len(cursor.next_cursor), 7):
            token = cursor.next_cursor
            replacement = "A" if token[position] != "A" else "B"
            altered = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(InvalidInputError, match="cursor"):
                storage.list_runs(ListRunsInput(cursor=altered))

    @pytest.mark.parametrize("bad", [5, b"cursor", ["c"]], ids=shown)
    def test_a_cursor_must_be_a_string(self, storage: RunsStorage, bad: object) -> None:
        with pytest.raises(ValueError, match="cursor"):
            storage.list_runs({"cursor": bad})

    # -- time ------------------------------------------------------------------------

    def test_naive_times_are_refused(self, storage: RunsStorage) -> None:
        naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
        with pytest.raises(ValueError, match="timezone"):
            storage.create_run(run_input(dataset_version=naive))
        run = storage.create_run(run_input())
        with pytest.raises(ValueError, match="timezone"):
            storage.add_result({**result_input(run).model_dump(), "started_at": naive})
        with pytest.raises(ValueError, match="timezone"):
            storage.update_run({"id": run.id, "completed_at": naive})

    def test_times_outside_the_utc_calendar_are_refused(self, storage: RunsStorage) -> None:
        early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
        late = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14)))
        for moment in (early, late):
            with pytest.raises(ValueError, match="outside"):
                storage.create_run(run_input(dataset_version=moment))
        assert storage.create_run(run_input(dataset_version=T0)).dataset_version == T0
