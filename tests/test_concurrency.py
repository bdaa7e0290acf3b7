"""Many writers at once: every result lands and every count is exact."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from runstore import SqlRunsStorage
from runstore.testing.inputs import result_input, run_input

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
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            write_results(url, run.id, number)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check_everything_landed(url, run.id)


def test_concurrent_processes_lose_nothing(url: str) -> None:
    with SqlRunsStorage(url) as storage:
        run = storage.create_run(run_input(total_items=WRITERS * RESULTS_PER_WRITER))
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=write_results, args=(url, run.id, number))
        for number in range(WRITERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [process.exitcode for process in processes] == [0] * WRITERS
    check_everything_landed(url, run.id)
