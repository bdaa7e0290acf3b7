"""The contract for scores: recorded with results or later, replaced, read with every
result, listed and iterated."""

from __future__ import annotations

from typing import Any

import pytest

from runstore import AddScoreInput
from runstore import DuplicateError
from runstore import InvalidInputError
from runstore import ListRunResultsInput
from runstore import ResultNotFoundError
from runstore import RunsStorage
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.inputs import scored_run

__all__ = ["ScoresContract"]


class ScoresContract:
    """add_scores, list_scores, iter_scores, and the scores every result carries."""

    def test_scores_are_stored_whole_and_read_with_every_result(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run, 0))
        assert result.scores == {}
        (score,) = storage.add_scores(
            [
                AddScoreInput(
                    result_id=result.id,
                    name="faithfulness",
                    value=0.875,
                    label="good",
                    explanation="cites the policy",
                    metadata={"judge": "gpt", "votes": [1, 0, 1]},
                )
            ]
        )
        assert (score.run_id, score.result_id, score.name, score.value) == (
            run.id,
            result.id,
            "faithfulness",
            0.875,
        )
        assert score.metadata == {"judge": "gpt", "votes": [1, 0, 1]}
        assert storage.list_scores(run.id) == [score]
        assert list(storage.iter_scores(run.id)) == [score]
        read = storage.get_result_by_id(result.id)
        assert read is not None
        assert read.scores == {"faithfulness": 0.875}
        assert storage.list_results(ListRunResultsInput(run_id=run.id)).results == (read,)
        assert list(storage.iter_results(run.id)) == [read]

    def test_scores_recorded_with_results_in_the_same_call(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        single = storage.add_result(result_input(run, 0, scores={"a": 1.0, "b": -2.5}))
        batch = storage.add_results(
            [result_input(run, n, scores={"a": n / 3}) for n in range(1, 4)]
        )
        assert single.scores == {"a": 1.0, "b": -2.5}
        for result in (single, *batch):
            assert storage.get_result_by_id(result.id) == result
        stored = storage.list_scores(run.id, name="a")
        assert [score.value for score in stored] == sorted([1.0, 1 / 3, 2 / 3, 1.0])
        assert all(score.label is None and score.metadata is None for score in stored)
        assert len(storage.list_scores(run.id, result_id=single.id)) == 2

    def test_a_duplicate_score_is_refused_unless_replaced(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        first, second = storage.add_results([result_input(run, 0), result_input(run, 1)])
        (original,) = storage.add_scores([{"result_id": first.id, "name": "s", "value": 0.5}])
        with pytest.raises(DuplicateError) as caught:
            storage.add_scores(
                [
                    {"result_id": second.id, "name": "s", "value": 1.0},
                    {"result_id": first.id, "name": "s", "value": 0.9},
                ]
            )
        assert caught.value.position == 1
        assert storage.list_scores(run.id) == [original]
        replaced = storage.add_scores(
            [
                {"result_id": first.id, "name": "s", "value": 0.9, "label": "rerun"},
                {"result_id": second.id, "name": "s", "value": 1.0},
            ],
            replace=True,
        )
        assert [score.value for score in replaced] == [0.9, 1.0]
        assert replaced[0].id == original.id
        assert replaced[0].label == "rerun"
        assert sorted(storage.list_scores(run.id), key=lambda s: s.value) == replaced

    def test_bad_score_batches_are_named_and_write_nothing(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run))
        good = {"result_id": result.id, "name": "ok", "value": 1.0}
        with pytest.raises(ResultNotFoundError) as missing:
            storage.add_scores([good, {"result_id": "ghost", "name": "x", "value": 1.0}])
        assert missing.value.position == 1
        assert isinstance(missing.value, LookupError)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"result_id": result.id, "name": "nan", "value": float("nan")}, "value"),
            ({"result_id": result.id, "name": "", "value": 1.0}, "name"),
            ({"result_id": result.id, "name": "x", "value": "high"}, "value"),
            ({"result_id": result.id, "name": "m", "value": 1.0, "metadata": {1: 2}}, "key"),
        ]
        for bad, message in cases:
            with pytest.raises(InvalidInputError, match=rf"(?s)inputs\[1\].*{message}"):
                storage.add_scores([good, bad])
        with pytest.raises(InvalidInputError, match=r"inputs\[1\].*repeats inputs\[0\]"):
            storage.add_scores([good, good])
        assert storage.list_scores(run.id) == []
        assert storage.add_scores([]) == []

    def test_scores_go_with_their_results(self, storage: RunsStorage) -> None:
        run, other = storage.create_run(run_input()), storage.create_run(run_input())
        storage.add_result(result_input(run, 0, scores={"s": 1.0}))
        kept = storage.add_result(result_input(other, 0, scores={"s": 2.0}))
        storage.delete_results_by_run_id(run.id)
        assert storage.list_scores(run.id) == []
        emptied = storage.get_run_by_id(run.id)
        assert emptied is not None
        assert emptied.result_count == 0
        storage.add_result(result_input(run, 0, scores={"s": 3.0}))
        storage.delete_run(run.id)
        assert storage.list_scores(run.id) == []
        assert [score.value for score in storage.list_scores(other.id)] == [2.0]
        assert storage.get_result_by_id(kept.id) == kept

    def test_iter_scores_reads_in_batches_in_order(self, storage: RunsStorage) -> None:
        results = scored_run(storage)
        every = storage.list_scores("scored")
        assert len(every) == sum(len(result.scores) for result in results)
        assert every == sorted(every, key=lambda score: (score.name, score.value, score.id))
        for batch_size in (1, 3, 1000):
            assert list(storage.iter_scores("scored", batch_size=batch_size)) == every
        fluency = list(storage.iter_scores("scored", name="fluency", batch_size=2))
        assert fluency == [score for score in every if score.name == "fluency"]
