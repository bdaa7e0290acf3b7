"""What a call stores and how it counts, decided once for every adapter: the pure functions
of :mod:`runstore.stored`, and the errors of :mod:`runstore.errors` both adapters raise."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from runstore import errors
from runstore.limits import MAX_COUNT
from runstore.models import AddRunResultInput
from runstore.models import AddScoreInput
from runstore.models import CreateRunInput
from runstore.models import OnConflict
from runstore.models import Run
from runstore.models import RunResult
from runstore.stored import CountChange
from runstore.stored import counted_run
from runstore.stored import first_position
from runstore.stored import missing_result
from runstore.stored import missing_run
from runstore.stored import new_run
from runstore.stored import overwrite
from runstore.stored import recorded_results

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def result(run_id: str, item_id: str, *, failed: bool = False, repetition: int = 0) -> RunResult:
    (recorded,) = recorded_results(
        [
            AddRunResultInput(
                run_id=run_id,
                item_id=item_id,
                item_version=NOW,
                input={"q": item_id},
                latency=1.0,
                error="boom" if failed else None,
                started_at=NOW,
                completed_at=NOW,
                repetition=repetition,
            )
        ],
        NOW,
    )
    return recorded


# -- overwrite ---------------------------------------------------------------------------


def test_new_results_count_on_their_runs_sorted_by_run_id() -> None:
    batch = [result("b", "1"), result("a", "1", failed=True), result("b", "2", failed=True)]
    write = overwrite(batch, {}, OnConflict.ERROR, update_counts=True)
    assert write.written == batch
    assert write.replaced == []
    assert list(write.counts) == ["a", "b"]
    assert write.counts == {"a": CountChange(1, (0, 1)), "b": CountChange(2, (1, 1))}


def test_without_update_counts_only_the_result_count_moves() -> None:
    write = overwrite([result("a", "1"), result("a", "2")], {}, OnConflict.ERROR, False)
    assert write.counts == {"a": CountChange(2, None)}


def test_replace_writes_under_the_stored_id_and_moves_a_count() -> None:
    fresh, again = result("a", "1"), result("a", "2", failed=True)
    write = overwrite([fresh, again], {1: ("stored", False)}, OnConflict.REPLACE, True)
    assert write.written == [fresh, again.model_copy(update={"id": "stored"})]
    assert write.replaced == ["stored"]
    # one result more; the stored success becomes a failure
    assert write.counts == {"a": CountChange(1, (0, 1))}


def test_a_run_only_replaced_into_is_counted_to_move_its_time() -> None:
    again = result("a", "1")
    write = overwrite([again], {0: ("stored", False)}, OnConflict.REPLACE, True)
    assert write.counts == {"a": CountChange(0, (0, 0))}
    assert overwrite([again], {0: ("stored", True)}, OnConflict.REPLACE, True).counts == {
        "a": CountChange(0, (1, -1))
    }


def test_skip_keeps_the_stored_result_and_counts_nothing_for_it() -> None:
    fresh, again = result("a", "1"), result("b", "1", failed=True)
    write = overwrite([fresh, again], {1: ("stored", False)}, OnConflict.SKIP, True)
    assert write.written == [fresh]
    assert write.replaced == []
    assert write.counts == {"a": CountChange(1, (1, 0))}


# -- counted_run ---------------------------------------------------------------------------


def a_run() -> Run:
    return new_run(
        CreateRunInput(
            dataset_id="d",
            dataset_version=NOW,
            target_type="agent",
            target_id="m",
            total_items=3,
        ),
        NOW,
    )


def test_counted_run_adds_counts_and_moves_updated_at_forward() -> None:
    run = a_run()
    later = NOW + timedelta(seconds=1)
    counted = counted_run(run, CountChange(3, (2, 1)), later)
    assert counted is not None
    assert (counted.result_count, counted.succeeded_count, counted.failed_count) == (3, 2, 1)
    assert counted.updated_at == later
    earlier = counted_run(run, CountChange(1, (1, 0)), NOW - timedelta(days=1))
    assert earlier is not None
    assert earlier.updated_at == NOW


def test_counted_run_without_counters_moves_only_the_result_count() -> None:
    run = a_run()
    counted = counted_run(run, CountChange(2, None), NOW + timedelta(days=1))
    assert counted == run.model_copy(update={"result_count": 2})


def test_counted_run_keeps_counters_at_zero_or_above() -> None:
    run = a_run()
    counted = counted_run(run, CountChange(0, (1, -1)), NOW)
    assert counted is not None
    assert (counted.succeeded_count, counted.failed_count) == (1, 0)


def test_counted_run_refuses_to_pass_the_limit() -> None:
    run = a_run()
    full = run.model_copy(update={"result_count": MAX_COUNT, "succeeded_count": MAX_COUNT})
    assert counted_run(full, CountChange(1, None), NOW) is None
    assert counted_run(full, CountChange(0, (1, 0)), NOW) is None
    assert counted_run(full, CountChange(0, (-1, 1)), NOW) is not None


# -- positions and missing runs and results ----------------------------------------------


def test_first_position_is_named_only_in_a_batch() -> None:
    batch = [result("a", "1"), result("b", "1"), result("b", "2")]
    assert first_position(batch, "b", batch=True) == 1
    assert first_position(batch, "b", batch=False) is None


def test_missing_run_names_the_first_by_position() -> None:
    batch = [result("a", "1"), result("z", "1"), result("b", "1")]
    error = missing_run(batch, {"a"}, batch=True)
    assert isinstance(error, errors.RunNotFoundError)
    assert (error.run_id, error.position) == ("z", 1)
    assert str(error) == "inputs[1]: run 'z' does not exist"
    single = missing_run(batch[1:2], set(), batch=False)
    assert single is not None
    assert single.position is None
    assert missing_run(batch, {"a", "b", "z"}, batch=True) is None


def test_missing_result_names_the_first_by_position() -> None:
    inputs = [
        AddScoreInput(result_id=result_id, name="acc", value=1.0) for result_id in ("r", "x", "y")
    ]
    error = missing_result(inputs, {"r": "run", "y": "run"})
    assert isinstance(error, errors.ResultNotFoundError)
    assert (error.result_id, error.position) == ("x", 1)
    assert missing_result(inputs, {"r": "a", "x": "a", "y": "a"}) is None


# -- the errors both adapters raise ------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (errors.storage_closed("this S"), errors.StorageClosedError, "this S was closed"),
        (errors.run_exists("r"), errors.DuplicateError, "run 'r' already exists"),
        (
            errors.run_exists("r", "total_items is 1, not 2"),
            errors.DuplicateError,
            "run 'r' already exists with other fields: total_items is 1, not 2",
        ),
        (
            errors.result_exists("x", position=2),
            errors.DuplicateError,
            "inputs[2]: result 'x' already exists",
        ),
        (
            errors.item_taken("r", "i", 0),
            errors.DuplicateError,
            "run 'r' already has a result for item 'i'",
        ),
        (
            errors.item_taken("r", "i", 3, position=1),
            errors.DuplicateError,
            "inputs[1]: run 'r' already has a result for item 'i' (repetition 3)",
        ),
        (
            errors.result_or_item_exists("x", "r", "i"),
            errors.DuplicateError,
            "result 'x' or a result of run 'r' for item 'i' already exists",
        ),
        (
            errors.batch_duplicate("score"),
            errors.DuplicateError,
            "a score of this batch already exists",
        ),
        (errors.score_exists("s"), errors.DuplicateError, "score 's' already exists"),
        (
            errors.score_taken("x", "acc", position=0),
            errors.DuplicateError,
            "inputs[0]: result 'x' already has a score 'acc'",
        ),
        (
            errors.counter_overflow("r", None),
            errors.InvalidInputError,
            f"run 'r': a counter would pass {MAX_COUNT:,}; nothing was written",
        ),
    ],
)
def test_error_messages(error: errors.StorageError, kind: type[Exception], message: str) -> None:
    assert isinstance(error, kind)
    assert str(error) == message
