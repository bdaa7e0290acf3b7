"""Many writers at once: every result lands and every count is exact -- also when they
write the same items again, and while old runs are pruned."""

from __future__ import annotations

import multiprocessing
import random
import time
from datetime import timedelta

import pytest

from parallel import in_processes
from parallel import in_threads
from runstore import SqlRunsStorage
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

WRITERS = 8
RESULTS_PER_WRITER = 500


def failed_item(writer: int, n: int) -> bool:
    return (writer + n) % 5 == 0


def write_results(url: str, run_id: str, writer: int) -> None:
    """One writer: its own storage, one counted result per transaction."""
    with SqlRunsStorage(url) as storage:
        for n in range(RESULTS_PER_WRITER):
            error = "failed" if failed_item(writer, n) else None
            storage.add_result(
                result_input(run_id, f"{writer}-{n}", error=error), update_counts=True
            )


@pytest.fixture
def url(empty_url: str) -> str:
    return empty_url


def check_everything_landed(url: str, run_id: str) -> None:
    expected_failed = sum(
        failed_item(writer, n) for writer in range(WRITERS) for n in range(RESULTS_PER_WRITER)
    )
    total = WRITERS * RESULTS_PER_WRITER
    with SqlRunsStorage(url) as storage:
        run = storage.get_run_by_id(run_id)
        assert run is not None
        assert run.failed_count == expected_failed
        assert run.succeeded_count == total - expected_failed
        item_ids = {result.item_id for result in storage.iter_results(run_id)}
    assert item_ids == {
        f"item-{writer}-{n}" for writer in range(WRITERS) for n in range(RESULTS_PER_WRITER)
    }


def test_concurrent_threads_lose_nothing(url: str) -> None:
    with SqlRunsStorage(url) as storage:
        run = storage.create_run(run_input(total_items=WRITERS * RESULTS_PER_WRITER))
    in_threads(write_results, [(url, run.id, number) for number in range(WRITERS)])
    check_everything_landed(url, run.id)


def test_concurrent_processes_lose_nothing(url: str) -> None:
    with SqlRunsStorage(url) as storage:
        run = storage.create_run(run_input(total_items=WRITERS * RESULTS_PER_WRITER))
    in_processes(write_results, [(url, run.id, number) for number in range(WRITERS)])
    check_everything_landed(url, run.id)


# -- retries: every writer writes the same items, replacing what it finds ------------------

ITEMS = 500


def retry_outcome(writer: int, n: int) -> str | None:
    """Writer ``writer``'s outcome for item ``n``: random, but known to the check."""
    return "failed" if random.Random(writer * 100_003 + n).random() < 0.3 else None


def write_retries(url: str, run_id: str, writer: int) -> None:
    """One writer: the run's items in an order of its own, in batches of 25 and (a
    quarter of them) one at a time, each result carrying who wrote it, every write
    replacing whatever is stored."""
    order = list(range(ITEMS))
    random.Random(writer).shuffle(order)
    with SqlRunsStorage(url) as storage:
        position = 0
        while position < ITEMS:
            size = 1 if (position // 25) % 4 == 0 else 25
            inputs = [
                result_input(
                    run_id,
                    n,
                    output={"writer": writer},
                    error=retry_outcome(writer, n),
                    scores={"writer": float(writer)},
                )
                for n in order[position : position + size]
            ]
            if size == 1:
                storage.add_result(inputs[0], update_counts=True, on_conflict="replace")
            else:
                storage.add_results(inputs, update_counts=True, on_conflict="replace")
            position += size


def check_one_row_per_item(url: str, run_id: str) -> None:
    with SqlRunsStorage(url) as storage:
        results = list(storage.iter_results(run_id))
        run = storage.get_run_by_id(run_id)
        scores = storage.list_scores(run_id)
        recounted = storage.recount_run(run_id)
    assert sorted(result.item_id for result in results) == sorted(f"item-{n}" for n in range(ITEMS))
    failed = sum(result.error is not None for result in results)
    assert run is not None
    assert (run.result_count, run.succeeded_count, run.failed_count) == (
        ITEMS,
        ITEMS - failed,
        failed,
    )
    assert (recounted.result_count, recounted.succeeded_count, recounted.failed_count) == (
        run.result_count,
        run.succeeded_count,
        run.failed_count,
    )
    # Each stored result is one write, whole: its error and its score are its writer's.
    for result in results:
        writer = result.output["writer"]  # type: ignore[index,call-overload]
        assert result.error == retry_outcome(writer, int(result.item_id.removeprefix("item-")))
        assert result.scores == {"writer": float(writer)}
    assert len(scores) == ITEMS


def test_concurrent_threads_replacing_the_same_items_keep_one_row_each(url: str) -> None:
    with SqlRunsStorage(url) as storage:
        run = storage.create_run(run_input(total_items=ITEMS))
    in_threads(write_retries, [(url, run.id, number) for number in range(WRITERS)])
    check_one_row_per_item(url, run.id)


def test_concurrent_processes_replacing_the_same_items_keep_one_row_each(url: str) -> None:
    with SqlRunsStorage(url) as storage:
        run = storage.create_run(run_input(total_items=ITEMS))
    in_processes(write_retries, [(url, run.id, number) for number in range(WRITERS)])
    check_one_row_per_item(url, run.id)


# -- retention while others write -------------------------------------------------------

OLD_RUNS = 120
NEW_RUNS_PER_WRITER = 10
RESULTS_PER_RUN = 30


def write_new_runs(url: str, writer: int) -> None:
    """A pipeline at work: new runs, their results in batches and one at a time."""
    with SqlRunsStorage(url) as storage:
        for number in range(NEW_RUNS_PER_WRITER):
            run = storage.create_run(run_input(id=f"new-{writer}-{number}", dataset_id="new"))
            storage.add_results(
                [result_input(run, n) for n in range(RESULTS_PER_RUN - 5)], update_counts=True
            )
            for n in range(RESULTS_PER_RUN - 5, RESULTS_PER_RUN):
                storage.add_result(result_input(run, n, error="e"), update_counts=True)


def test_pruning_while_other_processes_write_loses_nothing_else(url: str) -> None:
    with SqlRunsStorage(url) as storage:
        for number in range(OLD_RUNS):
            run = storage.create_run(run_input(id=f"old-{number}", dataset_id="old"))
            storage.add_results(
                [result_input(run, n, scores={"acc": 1.0}) for n in range(RESULTS_PER_RUN)]
            )
        cutoff = storage.get_run_by_id(f"old-{OLD_RUNS - 1}").created_at  # type: ignore[union-attr]
        cutoff += timedelta(microseconds=1)
        context = multiprocessing.get_context("spawn")
        writers = [context.Process(target=write_new_runs, args=(url, w)) for w in range(4)]
        for process in writers:
            process.start()
        deadline = time.monotonic() + 120
        while storage.get_run_by_id("new-0-0") is None:  # prune while they write
            assert time.monotonic() < deadline, "the writers did not start"
            time.sleep(0.01)
        pruned = storage.prune_runs(older_than=cutoff, batch_size=7)
        for process in writers:
            process.join(timeout=300)
        assert [process.exitcode for process in writers] == [0] * len(writers)
        assert pruned == OLD_RUNS
        runs = list(storage.iter_runs())
        assert sorted(run.id for run in runs) == sorted(
            f"new-{w}-{n}" for w in range(4) for n in range(NEW_RUNS_PER_WRITER)
        )
        for run in runs:
            assert (run.result_count, run.succeeded_count, run.failed_count) == (
                RESULTS_PER_RUN,
                RESULTS_PER_RUN - 5,
                5,
            )
            assert len(list(storage.iter_results(run.id))) == RESULTS_PER_RUN
        assert storage.list_scores("old-0") == []
