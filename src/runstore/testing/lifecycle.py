"""The contract for a run's life in a real pipeline: repetitions, writes that may come
twice, runs created again after a restart, counters repaired, and old runs pruned."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from runstore import (
    AddScoreInput,
    DuplicateError,
    InvalidInputError,
    ListRunResultsInput,
    Run,
    RunNotFoundError,
    RunResult,
    RunsStorage,
    RunStatus,
    UpdateRunInput,
)
from runstore.testing.inputs import T0, FrozenClock, result_input, run_input

__all__ = ["LifecycleContract"]


def counters(run: Run | None) -> tuple[int, int, int]:
    assert run is not None
    return run.result_count, run.succeeded_count, run.failed_count


def stored_counters(storage: RunsStorage, run_id: str) -> tuple[int, int, int]:
    """The counters as the stored rows say, counted here."""
    results = list(storage.iter_results(run_id))
    failed = sum(result.error is not None for result in results)
    return len(results), len(results) - failed, failed


def without_time(result: RunResult) -> dict[str, Any]:
    return result.model_dump(exclude={"created_at"})


class LifecycleContract:
    """Repetitions, on_conflict, if_exists, recount_run and prune_runs."""

    # -- repetitions -----------------------------------------------------------------

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

    # -- on_conflict -----------------------------------------------------------------

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

    # -- if_exists -------------------------------------------------------------------

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

    # -- recount ---------------------------------------------------------------------

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

    # -- prune -----------------------------------------------------------------------

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
