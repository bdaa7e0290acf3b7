"""The contract for batches, counters, cursors, filters and streaming."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from runstore import (
    DuplicateError,
    InvalidInputError,
    ListRunResultsInput,
    ListRunsInput,
    RunNotFoundError,
    RunsStorage,
    RunStatus,
    StoragePagination,
    TargetType,
    UpdateRunInput,
)
from runstore.testing.inputs import T0, FrozenClock, result_input, run_input


def total_results(storage: RunsStorage, run_id: str) -> int:
    return storage.list_results(ListRunResultsInput(run_id=run_id)).pagination.total


def walk_runs(storage: RunsStorage, per_page: int, **filters: object) -> list[str]:
    seen: list[str] = []
    listing = ListRunsInput.model_validate(
        {"pagination": StoragePagination(per_page=per_page), **filters}
    )
    while True:
        output = storage.list_runs(listing)
        seen.extend(run.id for run in output.runs)
        assert output.pagination.has_more is (output.next_cursor is not None)
        if output.next_cursor is None:
            return seen
        listing = listing.model_copy(update={"cursor": output.next_cursor})


class BatchesAndListsContract:
    """Batches, counters, filters, cursors, streaming."""

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

    def test_list_runs_filters(self, storage: RunsStorage) -> None:
        a = storage.create_run(run_input(target_type="agent", target_id="bot"))
        b = storage.create_run(run_input(target_type="scorer", target_id="judge"))
        c = storage.create_run(run_input(target_type="agent", target_id="judge", dataset_id="x"))
        storage.update_run(UpdateRunInput(id=b.id, status=RunStatus.COMPLETED))

        def ids(**filters: object) -> list[str]:
            return [run.id for run in storage.list_runs(filters).runs]

        assert ids(status="pending") == [c.id, a.id]
        assert ids(status=RunStatus.COMPLETED) == [b.id]
        assert ids(target_type=TargetType.AGENT) == [c.id, a.id]
        assert ids(target_id="judge") == [c.id, b.id]
        assert ids(target_type="agent", target_id="judge") == [c.id]
        assert ids(dataset_id="x", status="pending") == [c.id]
        assert ids(status="failed") == []
        assert storage.list_runs(ListRunsInput(target_id="judge")).pagination.total == 2

    def test_cursor_pages_match_offset_pages_even_when_timestamps_tie(
        self,
        make_storage: Callable[..., RunsStorage],
    ) -> None:
        clock = FrozenClock(T0)
        storage = make_storage(clock=clock)
        for n in range(30):
            if n % 4 == 0:
                clock.now += timedelta(microseconds=1)
            storage.create_run(run_input(id=f"run-{n:02d}", dataset_id="even" if n % 2 else "odd"))
        everything = [
            run.id
            for run in storage.list_runs(
                ListRunsInput(pagination=StoragePagination(per_page=False))
            ).runs
        ]
        assert len(everything) == 30
        for per_page in (1, 4, 7, 30, 31):
            assert walk_runs(storage, per_page) == everything
        odd = [run_id for run_id in everything if int(run_id[-2:]) % 2 == 0]
        assert walk_runs(storage, 4, dataset_id="odd") == odd

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

    @pytest.mark.parametrize("batch_size", [1, 2, 1000])
    def test_iter_runs_yields_every_matching_run_in_list_order(
        self, make_storage: Callable[..., RunsStorage], batch_size: int
    ) -> None:
        storage = make_storage(clock=FrozenClock(T0))
        for n in range(7):
            storage.create_run(run_input(target_type="agent" if n % 3 else "workflow"))
        assert list(storage.iter_runs(batch_size=batch_size)) == list(
            storage.list_runs(ListRunsInput(pagination=StoragePagination(per_page=False))).runs
        )
        workflows = list(storage.iter_runs(target_type="workflow", batch_size=batch_size))
        assert [run.target_type for run in workflows] == [TargetType.WORKFLOW] * 3

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
