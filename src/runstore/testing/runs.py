"""The contract for runs: creating (again, after a restart), updating, reading, listing and
paging, iterating, deleting, recounting and pruning them."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

import pytest

from runstore import DuplicateError
from runstore import InvalidInputError
from runstore import ListRunResultsInput
from runstore import ListRunsInput
from runstore import Run
from runstore import RunNotFoundError
from runstore import RunsStorage
from runstore import RunStatus
from runstore import StorageError
from runstore import StoragePagination
from runstore import TargetType
from runstore import UpdateRunInput
from runstore.testing.inputs import T0
from runstore.testing.inputs import FrozenClock
from runstore.testing.inputs import counters
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

__all__ = ["RunsContract"]


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


class RunsContract:
    """create_run, update_run, get_run_by_id, list_runs, iter_runs, delete_run,
    recount_run, prune_runs."""

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

    def test_creating_a_run_again_returns_it_as_stored(self, storage: RunsStorage) -> None:
        created = storage.create_run(run_input(id="nightly-42"))
        storage.update_run(UpdateRunInput(id=created.id, status=RunStatus.RUNNING))
        stored = storage.get_run_by_id(created.id)
        again = storage.create_run(run_input(id="nightly-42"), if_exists="return")
        assert again == stored
        with pytest.raises(DuplicateError):
            storage.create_run(run_input(id="nightly-42"))

    def test_creating_a_run_again_with_other_fields_names_them(self, storage: RunsStorage) -> None:
        created = storage.create_run(run_input(id="nightly-42"))
        with pytest.raises(DuplicateError, match="total_items") as caught:
            storage.create_run(
                run_input(id="nightly-42", total_items=11, target_id="agent-1"),
                if_exists="return",
            )
        assert "target_id" not in str(caught.value)
        with pytest.raises(DuplicateError, match="dataset_version"):
            storage.create_run(
                run_input(id="nightly-42", dataset_version=T0 + timedelta(seconds=1)),
                if_exists="return",
            )
        assert storage.get_run_by_id(created.id) == created
        assert storage.list_runs().pagination.total == 1

    def test_if_exists_without_an_id_creates_a_run(self, storage: RunsStorage) -> None:
        one = storage.create_run(run_input(), if_exists="return")
        two = storage.create_run(run_input(), if_exists="return")
        assert one.id != two.id
        with pytest.raises(InvalidInputError, match="if_exists"):
            storage.create_run(run_input(), if_exists="replace")
        assert storage.list_runs().pagination.total == 2

    def test_recount_sets_the_counters_from_the_stored_results(self, make_storage: Any) -> None:
        clock = FrozenClock(T0)
        storage: RunsStorage = make_storage(clock=clock)
        run = storage.create_run(run_input())
        storage.add_results(
            [result_input(run, n, error="e" if n % 4 == 0 else None) for n in range(10)]
        )
        storage.update_run(UpdateRunInput(id=run.id, succeeded_count=99, failed_count=98))
        clock.now = T0 + timedelta(minutes=5)
        recounted = storage.recount_run(run.id)
        assert counters(recounted) == (10, 7, 3)
        assert recounted.updated_at == clock.now
        assert storage.get_run_by_id(run.id) == recounted
        empty = storage.create_run(run_input())
        assert counters(storage.recount_run(empty.id)) == (0, 0, 0)
        with pytest.raises(RunNotFoundError):
            storage.recount_run("no-such-run")

    def test_prune_removes_old_runs_with_their_results_and_scores(self, make_storage: Any) -> None:
        clock = FrozenClock(T0)
        storage: RunsStorage = make_storage(clock=clock)
        made: list[Run] = []
        for day in range(7):
            clock.now = T0 + timedelta(days=day)
            run = storage.create_run(run_input(dataset_id=f"dataset-{day % 2}"))
            storage.add_results(
                [result_input(run, n, scores={"acc": 1.0}) for n in range(3)], update_counts=True
            )
            made.append(run)
        kept_results = {r.id for run in made[4:] for r in storage.iter_results(run.id)}
        gone_results = {r.id for run in made[:4] for r in storage.iter_results(run.id)}

        removed = storage.prune_runs(older_than=T0 + timedelta(days=4), batch_size=3)
        assert removed == 4
        assert [storage.get_run_by_id(run.id) is None for run in made] == [True] * 4 + [False] * 3
        assert all(storage.get_result_by_id(i) is None for i in gone_results)
        assert all(storage.get_result_by_id(i) is not None for i in kept_results)
        assert all(storage.list_scores(run.id) == [] for run in made[:4])
        assert all(len(storage.list_scores(run.id)) == 3 for run in made[4:])
        assert storage.prune_runs(older_than=T0 + timedelta(days=4)) == 0

    def test_prune_takes_only_the_runs_the_filters_name(self, make_storage: Any) -> None:
        clock = FrozenClock(T0)
        storage: RunsStorage = make_storage(clock=clock)
        runs = []
        for n in range(8):
            clock.now = T0 + timedelta(hours=n)
            run = storage.create_run(run_input(dataset_id=f"dataset-{n % 2}"))
            if n % 4 == 0:
                storage.update_run(UpdateRunInput(id=run.id, status=RunStatus.COMPLETED))
            runs.append(run)
        later = T0 + timedelta(days=1)
        assert storage.prune_runs(older_than=later, status="completed", dataset_id="dataset-1") == 0
        assert storage.prune_runs(older_than=later, status=RunStatus.COMPLETED) == 2
        assert storage.prune_runs(older_than=later, dataset_id="dataset-1", batch_size=1) == 4
        left = Counter(run.dataset_id for run in storage.iter_runs())
        assert left == Counter({"dataset-0": 2})
        # older_than is strict: a run created at that instant stays.
        assert storage.prune_runs(older_than=T0 + timedelta(hours=2)) == 0
        assert storage.prune_runs(older_than=T0 + timedelta(hours=2, microseconds=1)) == 1

    @pytest.mark.parametrize(
        "arguments",
        [
            {"older_than": T0.replace(tzinfo=None)},
            {"older_than": "2026-01-01"},
            {"older_than": T0, "batch_size": 0},
            {"older_than": T0, "status": "finished"},
            {"older_than": T0, "dataset_id": ""},
        ],
    )
    def test_prune_refuses_unclear_arguments(
        self, storage: RunsStorage, arguments: dict[str, Any]
    ) -> None:
        run = storage.create_run(run_input())
        with pytest.raises(InvalidInputError):
            storage.prune_runs(**arguments)
        assert storage.get_run_by_id(run.id) == run
