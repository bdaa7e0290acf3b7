"""The contract for what produced a run and what it cost: runs' names, descriptions, tags
and metadata (stored, edited, filtered by), results' tokens, cost, trace id and metadata,
and the answers that count them.

Expected figures are computed here, independently of runstore: sums with ``math.fsum``
(a run's cost must be within a unit in the last place of it), means with ``statistics``.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from runstore import InvalidInputError
from runstore import ListRunsInput
from runstore import Run
from runstore import RunsStorage
from runstore import StoragePagination
from runstore import UpdateRunInput
from runstore.limits import MAX_NAME_LENGTH
from runstore.limits import MAX_TAG_LENGTH
from runstore.limits import MAX_TAGS
from runstore.testing.inputs import T0
from runstore.testing.inputs import FrozenClock
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

__all__ = ["ProvenanceContract"]

REFUSED = (ValidationError, InvalidInputError)
"""What a refusal raises: both are ``ValueError``s."""


def listed(storage: RunsStorage, **filters: object) -> list[str]:
    """The ids of every run the filters match, newest first."""
    listing = ListRunsInput.model_validate(
        {"pagination": StoragePagination(per_page=False), **filters}
    )
    return [run.id for run in storage.list_runs(listing).runs]


def walked(storage: RunsStorage, per_page: int, **filters: object) -> tuple[list[str], int]:
    """The ids of the matching runs read page by page through cursors, and the total
    the first page gave."""
    listing = ListRunsInput.model_validate(
        {"pagination": StoragePagination(per_page=per_page), **filters}
    )
    seen: list[str] = []
    total = None
    while True:
        output = storage.list_runs(listing)
        total = output.pagination.total if total is None else total
        assert output.pagination.total == total
        seen.extend(run.id for run in output.runs)
        if output.next_cursor is None:
            return seen, total
        listing = listing.model_copy(update={"cursor": output.next_cursor})


def within_an_ulp(actual: float | None, expected: float) -> bool:
    return actual is not None and abs(actual - expected) <= math.ulp(expected)


class ProvenanceContract:
    """Names, tags and metadata of runs; tokens, cost and trace ids of results; usage in
    summaries, comparisons and histograms."""

    # -- runs carry who they are -------------------------------------------------------

    def test_a_run_keeps_its_name_description_tags_and_metadata(self, storage: RunsStorage) -> None:
        metadata = {
            "model": "gpt-x",
            "prompt": {"version": 3, "hash": "ab12"},
            "commit": "0123abc",
            "temperature": 0.0,
            "flags": [True, None, 1.5],
        }
        run = storage.create_run(
            run_input(
                name="nightly on main",
                description="ünïcødé ✓ <b>not html</b>",
                tags=["main", "nightly", "main", "a-tag"],
                metadata=metadata,
            )
        )
        assert run.name == "nightly on main"
        assert run.description == "ünïcødé ✓ <b>not html</b>"
        assert run.tags == ("a-tag", "main", "nightly")  # a set: sorted, each once
        assert run.metadata == metadata
        stored = storage.get_run_by_id(run.id)
        assert stored == run
        assert stored is not None
        assert type(stored.tags) is tuple
        dumped = run.model_dump(by_alias=True, mode="json")
        assert dumped["tags"] == ["a-tag", "main", "nightly"]
        assert dumped["metadata"] == metadata
        assert dumped["name"] == "nightly on main"
        assert Run.model_validate(dumped) == run

    def test_a_run_without_them_has_none(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        assert (run.name, run.description, run.tags, run.metadata) == (None, None, (), {})
        assert storage.get_run_by_id(run.id) == run

    def test_the_metadata_read_is_a_copy(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input(metadata={"list": [1]}))
        run.metadata["list"].append(2)
        run.metadata["new"] = True
        stored = storage.get_run_by_id(run.id)
        assert stored is not None
        assert stored.metadata == {"list": [1]}

    def test_edits_replace_what_they_name_and_keep_the_rest(self, storage: RunsStorage) -> None:
        run = storage.create_run(
            run_input(name="a", description="d", tags=["x", "y"], metadata={"k": 1})
        )
        renamed = storage.update_run({"id": run.id, "name": "b"})
        assert (renamed.name, renamed.description, renamed.tags, renamed.metadata) == (
            "b",
            "d",
            ("x", "y"),
            {"k": 1},
        )
        assert renamed.updated_at >= run.updated_at
        retagged = storage.update_run(UpdateRunInput(id=run.id, tags=["z", "x", "z"]))
        assert retagged.tags == ("x", "z")
        assert retagged.metadata == {"k": 1}
        remetadata = storage.update_run({"id": run.id, "metadata": {"other": "v"}})
        assert remetadata.metadata == {"other": "v"}  # replaced, not merged
        cleared = storage.update_run(
            {"id": run.id, "name": None, "description": None, "tags": [], "metadata": {}}
        )
        assert (cleared.name, cleared.description, cleared.tags, cleared.metadata) == (
            None,
            None,
            (),
            {},
        )
        assert storage.get_run_by_id(run.id) == cleared
        assert listed(storage, tags=["x"]) == []

    def test_an_edit_of_the_tags_moves_the_run_between_tag_filters(
        self, storage: RunsStorage
    ) -> None:
        a = storage.create_run(run_input(tags=["old"]))
        b = storage.create_run(run_input(tags=["old", "kept"]))
        storage.update_run({"id": a.id, "tags": ["new", "kept"]})
        assert listed(storage, tags=["old"]) == [b.id]
        assert listed(storage, tags=["new"]) == [a.id]
        assert listed(storage, tags=["kept"]) == [b.id, a.id]
        storage.delete_run(a.id)
        assert listed(storage, tags=["kept"]) == [b.id]

    def test_camel_case_names_are_taken(self, storage: RunsStorage) -> None:
        run = storage.create_run(
            {
                "datasetId": "d",
                "datasetVersion": T0,
                "targetType": "agent",
                "targetId": "t",
                "totalItems": 1,
                "name": "n",
                "tags": ["t"],
                "metadata": {"k": "v"},
            }
        )
        assert (run.name, run.tags, run.metadata) == ("n", ("t",), {"k": "v"})

    # -- finding runs by them ----------------------------------------------------------

    def test_runs_are_found_by_name_tags_and_metadata(self, storage: RunsStorage) -> None:
        main = storage.create_run(
            run_input(name="main", tags=["main", "nightly"], metadata={"model": "m1", "n": 1})
        )
        branch = storage.create_run(
            run_input(name="branch", tags=["branch", "nightly"], metadata={"model": "m2", "n": 2})
        )
        other = storage.create_run(
            run_input(
                name="main", tags=["main"], metadata={"model": "m1", "n": 1.5}, dataset_id="x"
            )
        )
        assert listed(storage, name="main") == [other.id, main.id]
        assert listed(storage, name="mai") == []
        assert listed(storage, tags=["nightly"]) == [branch.id, main.id]
        assert listed(storage, tags=["main", "nightly"]) == [main.id]
        assert listed(storage, tags=["main", "missing"]) == []
        assert listed(storage, metadata={"model": "m1"}) == [other.id, main.id]
        assert listed(storage, metadata={"model": "m1", "n": 1}) == [main.id]
        assert listed(storage, tags=["main"], dataset_id="x") == [other.id]
        assert listed(storage, tags=["main"], metadata={"n": 1.5}, name="main") == [other.id]
        assert listed(storage, tags=[]) == [other.id, branch.id, main.id]
        assert listed(storage, metadata={}) == [other.id, branch.id, main.id]
        output = storage.list_runs({"tags": ["nightly"]})
        assert output.pagination.total == 2

    def test_metadata_filters_compare_json_scalars(self, storage: RunsStorage) -> None:
        values: list[Any] = [1, 1.0, 2.5, True, False, None, "1", "true", 0, "", [1], {"a": 1}]
        runs = {
            n: storage.create_run(run_input(metadata={"v": value}))
            for n, value in enumerate(values)
        }
        missing = storage.create_run(run_input(metadata={"other": 1}))

        def found(value: object) -> set[int]:
            ids = set(listed(storage, metadata={"v": value}))
            assert missing.id not in ids
            return {n for n, run in runs.items() if run.id in ids}

        assert found(1) == {0, 1}  # 1 and 1.0 are one number
        assert found(1.0) == {0, 1}
        assert found(2.5) == {2}
        assert found(True) == {3}  # true is not 1
        assert found(False) == {4}  # nor false 0
        assert found(0) == {8}
        assert found(None) == {5}  # a null value, not a missing key
        assert found("1") == {6}  # a string is not a number
        assert found("true") == {7}
        assert found("") == {9}

    def test_metadata_filters_take_any_key(self, storage: RunsStorage) -> None:
        keys = ["a.b", 'quo"te', "$.x", "sp ace", "ünï", "[0]", ""]
        runs = [storage.create_run(run_input(metadata={key: key})) for key in keys]
        for key, run in zip(keys, runs, strict=True):
            assert listed(storage, metadata={key: key}) == [run.id]

    @pytest.mark.parametrize("per_page", [1, 2, 5, 100])
    def test_filtered_pages_and_cursors_agree_with_the_whole_list(
        self, make_storage: Callable[..., RunsStorage], per_page: int
    ) -> None:
        clock = FrozenClock(T0)
        storage = make_storage(clock=clock)
        for n in range(13):
            if n % 3 == 0:
                clock.now += timedelta(microseconds=1)  # ties in created_at
            storage.create_run(
                run_input(
                    id=f"run-{n:02d}",
                    tags=["all", *(["odd"] if n % 2 else []), *(["third"] if n % 3 == 0 else [])],
                    metadata={"parity": n % 2, "tier": "a" if n < 7 else "b"},
                )
            )
        for filters in (
            {"tags": ["odd"]},
            {"tags": ["all", "third"]},
            {"metadata": {"parity": 1}},
            {"tags": ["all"], "metadata": {"tier": "b"}},
        ):
            everything = listed(storage, **filters)
            assert everything
            assert walked(storage, per_page, **filters) == (everything, len(everything))
            by_number: list[str] = []
            page = 0
            while True:
                output = storage.list_runs(
                    {**filters, "pagination": {"page": page, "per_page": per_page}}
                )
                assert output.pagination.total == len(everything)
                by_number.extend(run.id for run in output.runs)
                if not output.pagination.has_more:
                    break
                page += 1
            assert by_number == everything
            iterated = [run.id for run in storage.iter_runs(batch_size=max(per_page, 1), **filters)]
            assert iterated == everything

    def test_a_cursor_of_one_filter_is_refused_by_another(self, storage: RunsStorage) -> None:
        for _ in range(3):
            storage.create_run(run_input(tags=["a", "b"]))
        first = storage.list_runs({"tags": ["a"], "pagination": {"per_page": 1}})
        assert first.next_cursor is not None
        with pytest.raises(ValueError, match="cursor"):
            storage.list_runs({"tags": ["b"], "cursor": first.next_cursor})

    def test_prune_takes_tags(self, make_storage: Callable[..., RunsStorage]) -> None:
        clock = FrozenClock(T0)
        storage = make_storage(clock=clock)
        kept = storage.create_run(run_input(tags=["keep"]))
        both = storage.create_run(run_input(tags=["keep", "scratch"]))
        scratch = storage.create_run(run_input(tags=["scratch"]))
        storage.add_results([result_input(scratch, n, cost=0.5) for n in range(3)])
        clock.now = T0 + timedelta(days=1)
        later = storage.create_run(run_input(tags=["scratch"]))
        pruned = storage.prune_runs(older_than=T0 + timedelta(hours=1), tags=["scratch"])
        assert pruned == 2
        assert sorted(listed(storage)) == sorted([kept.id, later.id])
        assert listed(storage, tags=["scratch"]) == [later.id]
        assert storage.prune_runs(older_than=T0 + timedelta(days=2), tags=["keep", "x"]) == 0
        assert storage.prune_runs(older_than=T0 + timedelta(days=2), tags=["keep"]) == 1
        assert both.id not in listed(storage)

    # -- results carry what they used --------------------------------------------------

    def test_a_result_keeps_its_tokens_cost_trace_id_and_metadata(
        self, storage: RunsStorage
    ) -> None:
        run = storage.create_run(run_input())
        metadata = {"provider": "p", "cached": True, "steps": [{"tool": "search"}]}
        one = storage.add_result(
            result_input(
                run,
                0,
                input_tokens=1200,
                output_tokens=0,
                cost=0.1,
                trace_id="trace-0af7651916cd43dd8448eb211c80319c",
                metadata=metadata,
            )
        )
        assert (one.input_tokens, one.output_tokens, one.cost) == (1200, 0, 0.1)
        assert one.trace_id == "trace-0af7651916cd43dd8448eb211c80319c"
        assert one.metadata == metadata
        assert storage.get_result_by_id(one.id) == one
        bare = storage.add_result(result_input(run, 1))
        assert (bare.input_tokens, bare.output_tokens, bare.cost, bare.trace_id) == (
            None,
            None,
            None,
            None,
        )
        assert bare.metadata is None
        listed_results = storage.list_results({"run_id": run.id}).results
        assert listed_results == (one, bare)
        assert list(storage.iter_results(run.id)) == [one, bare]
        dumped = one.model_dump(by_alias=True, mode="json")
        assert (dumped["inputTokens"], dumped["outputTokens"], dumped["traceId"]) == (
            1200,
            0,
            "trace-0af7651916cd43dd8448eb211c80319c",
        )
        assert (dumped["cost"], dumped["metadata"]) == (0.1, metadata)

    def test_costs_round_trip_exactly(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        costs = [0.0, 5e-324, 1e-12, 0.1, 0.30000000000000004, 1 / 3, 123456.789, 1.7e308]
        written = storage.add_results([result_input(run, n, cost=c) for n, c in enumerate(costs)])
        read = {result.item_id: result.cost for result in storage.iter_results(run.id)}
        assert [read[f"item-{n}"] for n in range(len(costs))] == costs
        assert [result.cost for result in written] == costs

    def test_batches_replacements_and_repetitions_carry_them(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        first = storage.add_results(
            [
                result_input(run, 0, cost=1.0, input_tokens=1, trace_id="t0", metadata={"a": 1}),
                result_input(run, 0, repetition=1, cost=2.0, output_tokens=7, trace_id="t1"),
            ]
        )
        assert [r.cost for r in first] == [1.0, 2.0]
        replaced = storage.add_result(
            result_input(run, 0, cost=3.0, trace_id="t2", metadata={"b": 2}),
            on_conflict="replace",
        )
        assert replaced.id == first[0].id
        assert (replaced.cost, replaced.input_tokens, replaced.trace_id) == (3.0, None, "t2")
        assert replaced.metadata == {"b": 2}
        skipped = storage.add_results(
            [result_input(run, 0, repetition=1, cost=9.0)], on_conflict="skip"
        )
        assert skipped[0].cost == 2.0
        stored = {(r.item_id, r.repetition): r for r in storage.iter_results(run.id)}
        assert stored[("item-0", 0)] == replaced
        assert stored[("item-0", 1)].output_tokens == 7

    # -- every answer counts them -----------------------------------------------------

    def test_a_summary_adds_up_tokens_and_cost(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        storage.add_results(
            [
                result_input(run, 0, input_tokens=100, output_tokens=20, cost=0.25),
                result_input(run, 1, input_tokens=50, cost=0.5),
                result_input(run, 2, output_tokens=5),
                result_input(run, 3, error="boom", cost=0.0),
            ]
        )
        usage = storage.summarize_run(run.id).usage
        assert (usage.input_tokens, usage.output_tokens, usage.priced) == (150, 25, 3)
        assert usage.cost == 0.75
        assert usage.cost_per_result == 0.25

    def test_a_summary_of_a_run_without_costs_has_none(self, storage: RunsStorage) -> None:
        empty = storage.create_run(run_input())
        usage = storage.summarize_run(empty.id).usage
        assert (usage.input_tokens, usage.output_tokens, usage.priced) == (0, 0, 0)
        assert (usage.cost, usage.cost_per_result) == (None, None)
        unpriced = storage.create_run(run_input())
        storage.add_results([result_input(unpriced, n, input_tokens=n) for n in range(4)])
        usage = storage.summarize_run(unpriced.id).usage
        assert (usage.input_tokens, usage.priced, usage.cost, usage.cost_per_result) == (
            6,
            0,
            None,
            None,
        )

    @pytest.mark.parametrize("seed", [1, 2])
    def test_a_cost_summed_from_many_small_values_is_exact(
        self, storage: RunsStorage, seed: int
    ) -> None:
        draw = random.Random(seed)
        costs = [draw.random() * 10 ** draw.uniform(-7, 0) for _ in range(3000)]
        costs += [0.1] * 500 + [1e-9] * 500  # each adding up badly one by one
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, n, cost=c) for n, c in enumerate(costs)])
        usage = storage.summarize_run(run.id).usage
        expected = math.fsum(costs)
        assert within_an_ulp(usage.cost, expected), (usage.cost, expected)
        assert usage.cost_per_result is not None
        assert math.isclose(usage.cost_per_result, expected / len(costs), rel_tol=1e-15)

    def test_a_cost_near_the_largest_double_is_summed(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        costs = [1e300, 3e300, 5e-300, 0.5]
        storage.add_results([result_input(run, n, cost=c) for n, c in enumerate(costs)])
        usage = storage.summarize_run(run.id).usage
        assert within_an_ulp(usage.cost, math.fsum(costs))

    def test_a_comparison_sets_cost_and_tokens_side_by_side(self, storage: RunsStorage) -> None:
        baseline, candidate = storage.create_run(run_input()), storage.create_run(run_input())
        storage.add_results(
            [
                # item 0: repetitions averaged, one without a cost
                result_input(baseline, 0, repetition=0, cost=1.0, input_tokens=10),
                result_input(baseline, 0, repetition=1, cost=3.0, output_tokens=30),
                result_input(baseline, 0, repetition=2),
                result_input(candidate, 0, cost=4.0, input_tokens=5, output_tokens=5),
                # item 1: a cost in the baseline only; tokens in both
                result_input(baseline, 1, cost=7.0, input_tokens=1),
                result_input(candidate, 1, input_tokens=4),
                # item 2: in the candidate only
                result_input(candidate, 2, cost=100.0, input_tokens=100),
                # item 3: neither has them
                result_input(baseline, 3),
                result_input(candidate, 3),
            ]
        )
        comparison = storage.compare_runs(baseline.id, candidate.id)
        # cost: item 0 only: 4 - mean(1, 3) = 2
        assert comparison.cost_mean_delta == pytest.approx(2.0)
        # tokens: item 0: 10 - mean(10, 30) = -10; item 1: 4 - 1 = 3
        assert comparison.tokens_mean_delta == pytest.approx(statistics.mean([-10.0, 3.0]))
        unpriced = storage.create_run(run_input())
        storage.add_results([result_input(unpriced, n) for n in range(4)])
        neither = storage.compare_runs(unpriced.id, candidate.id)
        assert (neither.cost_mean_delta, neither.tokens_mean_delta) == (None, None)

    def test_a_histogram_of_the_costs(self, storage: RunsStorage) -> None:
        run = storage.create_run(run_input())
        costs = [0.0, 0.1, 0.1, 0.2, 0.4, 1.0]
        storage.add_results([result_input(run, n, cost=c) for n, c in enumerate(costs)])
        storage.add_result(result_input(run, 99))
        histograms = storage.histogram_run(run.id, bins=5)
        assert histograms.cost is not None
        assert (histograms.cost.low, histograms.cost.high) == (0.0, 1.0)
        assert histograms.cost.counts == (3, 1, 1, 0, 1)
        assert histograms.latency is not None
        assert sum(histograms.latency.counts) == 7
        bare = storage.create_run(run_input())
        storage.add_result(result_input(bare, 0))
        assert storage.histogram_run(bare.id).cost is None

    # -- bad input: a clear error, nothing written --------------------------------------

    @pytest.mark.parametrize(
        "fields",
        [
            {"tags": ["x" * (MAX_TAG_LENGTH + 1)]},
            {"tags": [""]},
            {"tags": [f"t{n}" for n in range(MAX_TAGS + 1)]},
            {"tags": "main"},
            {"tags": [1]},
            {"name": "n" * (MAX_NAME_LENGTH + 1)},
            {"metadata": [1, 2]},
            {"metadata": "text"},
            {"metadata": None},
            {"metadata": {"nan": float("nan")}},
            {"metadata": {1: "non-string key"}},
        ],
        ids=lambda fields: repr(fields)[:40],
    )
    def test_a_bad_run_is_refused_and_nothing_written(
        self, storage: RunsStorage, fields: dict[str, Any]
    ) -> None:
        with pytest.raises(REFUSED):
            storage.create_run({**_run_fields(), **fields})
        assert storage.get_run_by_id("refused") is None
        assert listed(storage) == []
        run = storage.create_run(run_input(tags=["kept"], metadata={"k": 1}))
        with pytest.raises(REFUSED):
            storage.update_run({"id": run.id, **fields})
        assert storage.get_run_by_id(run.id) == run
        storage.delete_run(run.id)

    def test_tags_and_names_at_the_limits_are_taken(self, storage: RunsStorage) -> None:
        tags = [f"{n:02d}" + "x" * (MAX_TAG_LENGTH - 2) for n in range(MAX_TAGS)]
        run = storage.create_run(run_input(name="n" * MAX_NAME_LENGTH, tags=tags))
        assert run.tags == tuple(sorted(tags))
        assert storage.get_run_by_id(run.id) == run
        assert listed(storage, tags=tags[:3]) == [run.id]

    @pytest.mark.parametrize(
        "fields",
        [
            {"input_tokens": -1},
            {"output_tokens": -5},
            {"input_tokens": 1.5},
            {"input_tokens": True},
            {"cost": -0.01},
            {"cost": float("inf")},
            {"cost": float("nan")},
            {"cost": "a dollar"},
            {"metadata": [1]},
            {"metadata": "text"},
            {"trace_id": ""},
        ],
        ids=lambda fields: repr(fields)[:40],
    )
    def test_a_bad_result_is_refused_and_nothing_written(
        self, storage: RunsStorage, fields: dict[str, Any]
    ) -> None:
        run = storage.create_run(run_input())
        with pytest.raises(REFUSED):
            storage.add_result({**result_input(run, 0).model_dump(), **fields})
        with pytest.raises(REFUSED):
            storage.add_results(
                [result_input(run, 1), {**result_input(run, 2).model_dump(), **fields}]
            )
        assert storage.list_results({"run_id": run.id}).pagination.total == 0
        stored = storage.get_run_by_id(run.id)
        assert stored is not None
        assert stored.result_count == 0

    @pytest.mark.parametrize(
        "filters",
        [
            {"metadata": {"k": {"a": 1}}},
            {"metadata": {"k": [1]}},
            {"metadata": {"k": float("nan")}},
            {"metadata": "k=v"},
            {"tags": "main"},
            {"tags": ["x" * (MAX_TAG_LENGTH + 1)]},
        ],
        ids=lambda filters: repr(filters)[:40],
    )
    def test_a_bad_filter_is_refused(self, storage: RunsStorage, filters: dict[str, Any]) -> None:
        storage.create_run(run_input(metadata={"k": 1}, tags=["main"]))
        with pytest.raises(REFUSED):
            storage.list_runs(filters)
        with pytest.raises(REFUSED):
            list(storage.iter_runs(**filters))

    def test_prune_refuses_bad_tags_and_deletes_nothing(self, storage: RunsStorage) -> None:
        storage.create_run(run_input(tags=["t"]))
        for tags in ("t", [""], ["x" * (MAX_TAG_LENGTH + 1)], [1]):
            with pytest.raises(REFUSED):
                storage.prune_runs(older_than=T0 + timedelta(days=9999), tags=tags)  # type: ignore[arg-type]
        assert len(listed(storage)) == 1


def _run_fields() -> dict[str, Any]:
    return {**run_input(id="refused").model_dump(exclude={"tags", "metadata"})}
