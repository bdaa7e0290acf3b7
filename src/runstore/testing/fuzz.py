"""The whole public API, called with arbitrary values (hypothesis).

Each example runs a sequence of calls -- each method, with valid inputs, inputs with one
field replaced by an arbitrary value, and arbitrary values instead of inputs: wrong types,
extreme numbers, unicode edge cases, NaN, deeply nested JSON, forged cursors -- and checks
after every call that:

* it succeeded, or raised a ``ValueError`` or a ``StorageError`` other than a
  ``DatabaseError`` (which here would mean a value got past validation that a database
  then refused);
* a call that failed left every run and result as they were;
* what a call wrote reads back as the call returned it, a prune removed as many runs as
  it says, and reads change nothing.

``RUNSTORE_FUZZ_EXAMPLES`` sets the number of examples (25 by default; try 2000 by hand).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from runstore import DatabaseError
from runstore import Run
from runstore import RunResult
from runstore import RunsStorage
from runstore import StorageError
from runstore.limits import MAX_BINS
from runstore.limits import MAX_COUNT
from runstore.limits import MAX_ID_LENGTH
from runstore.limits import MAX_JSON_DEPTH
from runstore.limits import MAX_PAGE_SIZE
from runstore.testing.inputs import T0
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.properties import DERANDOMIZED
from runstore.testing.refusals import everything
from runstore.testing.refusals import forged_cursor
from runstore.testing.refusals import nested

FUZZ_EXAMPLES = int(os.environ.get("RUNSTORE_FUZZ_EXAMPLES", "25"))
CALLS_PER_EXAMPLE = 12

_edge_numbers = st.sampled_from(
    [0, -1, 1, MAX_COUNT, MAX_COUNT + 1, 2**63, 2**100, MAX_PAGE_SIZE + 1, 10**4000, 10**4001]
)
_edge_text = st.sampled_from(
    ["", "\x00", "a\x00b", "\ud800", "😀", "e\u0301", "\u2028", "x" * (MAX_ID_LENGTH + 1)]
)
_any_text = st.text(st.characters(exclude_categories=()), max_size=12)
_moments = st.datetimes(
    min_value=datetime(1, 1, 1),  # noqa: DTZ001 - hypothesis bounds; zones added below
    max_value=datetime(9999, 12, 31),  # noqa: DTZ001
    timezones=st.one_of(
        st.none(),
        st.builds(timezone, st.timedeltas(timedelta(minutes=-1439), timedelta(minutes=1439))),
    ),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    _edge_numbers,
    st.floats(),
    _any_text,
    _edge_text,
    st.binary(max_size=6),
    _moments,
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children)
        | st.dictionaries(_any_text | st.integers(), children, max_size=3)
    ),
    max_leaves=8,
)
anything = st.one_of(
    _values,
    st.integers(MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH + 2).map(nested),
    st.sampled_from(
        [
            forged_cursor("[" * 5000),
            forged_cursor([2, "runs", "0", "0001-01-01T00:00:00+14:00", "x", "0"]),
            "A" * 5000,
        ]
    ),
)
"""Any value at all, as a hostile caller might pass it."""


def _mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any] = anything) -> Any:
    """``usual`` three times in four, else ``other``."""
    return st.one_of(usual, usual, usual, other)


_tags = st.sampled_from(["main", "nightly", "x" * 64, "ünï ✓"]) | _any_text | _edge_text
_metadata_values = st.none() | st.booleans() | st.integers() | st.floats() | _any_text
_provenance = st.fixed_dictionaries(
    {},
    optional={
        "name": st.none() | _any_text | _edge_text,
        "description": st.none() | _any_text,
        "tags": _mostly(st.lists(_tags, max_size=3)),
        "metadata": _mostly(st.dictionaries(_any_text, _values, max_size=3)),
    },
)
"""A run's name, description, tags and metadata: some given, valid or not."""
_run_filters = st.fixed_dictionaries(
    {},
    optional={
        "name": _any_text,
        "tags": _mostly(st.lists(_tags, max_size=2)),
        "metadata": _mostly(st.dictionaries(_any_text, _metadata_values, max_size=2)),
    },
)
_usage = st.fixed_dictionaries(
    {},
    optional={
        "input_tokens": st.none() | st.integers(0, 10**6) | _edge_numbers,
        "output_tokens": st.none() | st.integers(0, 10**6),
        "cost": st.none() | st.floats(min_value=0) | st.floats(),
        "trace_id": st.none() | _any_text,
        "metadata": st.none() | st.dictionaries(_any_text, _values, max_size=2) | _values,
    },
)
"""A result's tokens, cost, trace id and metadata: some given, valid or not."""


class FuzzContract:
    """Arbitrary calls of the whole API: only success or a clean refusal, nothing lost."""

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZED,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,  # one contract, run by each adapter's class
        ],
    )
    @given(data=st.data())
    def test_arbitrary_calls_succeed_or_are_refused_cleanly(
        self, storage: RunsStorage, data: st.DataObject
    ) -> None:
        storage.dangerously_clear_all()
        runs: list[str] = [storage.create_run(run_input(id="seed")).id]
        storage.add_results(
            [result_input("seed", n, id="seed-result" if n else None) for n in range(2)]
        )
        for _ in range(CALLS_PER_EXAMPLE):
            name, call = _call(data, runs)
            before = everything(storage)
            try:
                returned = call(storage)
            except DatabaseError:
                raise  # a value got past validation that the database then refused
            except (ValueError, StorageError) as exc:
                event(f"{name}: {type(exc).__name__}")
                assert everything(storage) == before, f"{name} failed but changed the store"
                continue
            event(f"{name}: ok")
            _check_reads_back(storage, name, returned, before, runs)


def _check_reads_back(
    storage: RunsStorage, name: str, returned: Any, before: Any, runs: list[str]
) -> None:
    if name == "add_scores":
        for score in returned:
            stored = storage.list_scores(score.run_id, result_id=score.result_id, name=score.name)
            assert stored == [score], name
    elif isinstance(returned, list) and returned and isinstance(returned[0], RunResult):
        for result in returned:
            assert storage.get_result_by_id(result.id) == result, name
    elif isinstance(returned, RunResult):
        assert storage.get_result_by_id(returned.id) == returned, name
    elif isinstance(returned, Run):
        assert storage.get_run_by_id(returned.id) == returned, name
        if returned.id not in runs:
            runs.append(returned.id)
    elif name == "prune_runs":
        left = {run.id for run in everything(storage)[0]}
        gone = [run for run in before[0] if run.id not in left]
        assert returned == len(gone), name
        assert len(left) == len(before[0]) - returned, name
    elif not name.startswith("delete"):
        assert everything(storage) == before, f"{name} only reads, but changed the store"


def _field_or_anything(data: st.DataObject, fields: dict[str, Any]) -> object:
    """Valid fields; or one replaced, or one added, by an arbitrary value; or no mapping."""
    how = data.draw(st.sampled_from(["valid"] * 3 + ["replace", "add", "anything"]), label="how")
    if how == "valid":
        return fields
    if how == "replace":
        key = data.draw(st.sampled_from(sorted(fields)), label="field")
        return {**fields, key: data.draw(anything, label="value")}
    if how == "add":
        return {**fields, data.draw(_any_text, label="key"): data.draw(anything, label="value")}
    return data.draw(anything, label="input")


Call = Callable[[RunsStorage], object]
METHODS = [
    "add_scores",
    "compare_runs",
    "iter_item_comparisons",
    "list_scores",
    "summarize_run",
    "keep_summaries",
    "trend_runs",
    "histogram_run",
    "create_run",
    "update_run",
    "get_run_by_id",
    "list_runs",
    "iter_runs",
    "delete_run",
    "add_result",
    "add_results",
    "get_result_by_id",
    "list_results",
    "iter_results",
    "delete_results_by_run_id",
    "recount_run",
    "prune_runs",
]


def _call(data: st.DataObject, runs: list[str]) -> tuple[str, Call]:
    """One call of a method, with arguments valid, half valid, or anything at all."""
    name = data.draw(st.sampled_from(METHODS), label="method")
    run_id = data.draw(_mostly(st.sampled_from(runs), _any_text), label="run")
    some_id = data.draw(_mostly(st.sampled_from(runs)), label="id")
    item = data.draw(st.integers(0, 50), label="item")
    template = {**result_input("seed", item).model_dump(), "run_id": run_id}
    template["scores"] = data.draw(st.none() | st.just({"accuracy": 0.5}), label="scores")
    template["repetition"] = data.draw(st.sampled_from([0, 0, 1]), label="repetition")
    template |= data.draw(_usage, label="usage")
    if name == "create_run":
        new_id = data.draw(_any_text | st.none() | st.sampled_from(runs), label="new id")
        provenance = data.draw(_provenance, label="provenance")
        created = {**run_input().model_dump(), "id": new_id, **provenance}
        argument = _field_or_anything(data, created)
        if_exists = data.draw(_mostly(st.sampled_from(["error", "return"])), label="if_exists")
        return name, lambda storage: storage.create_run(argument, if_exists=if_exists)
    if name == "prune_runs":
        older_than = data.draw(_mostly(st.sampled_from([T0, datetime.now(UTC)])), label="older")
        status = data.draw(st.sampled_from([None, "pending", "completed"]) | anything)
        batch = data.draw(_mostly(st.integers(1, 3)), label="prune batch")
        tags = data.draw(st.none() | _mostly(st.lists(_tags, max_size=2)), label="prune tags")
        return name, lambda storage: storage.prune_runs(
            older_than=older_than, status=status, batch_size=batch, tags=tags
        )
    if name == "update_run":
        status = data.draw(st.sampled_from(["running", "completed", "failed"]), label="status")
        changes = {"id": run_id, "status": status, "failed_count": 1, "completed_at": T0}
        changes |= data.draw(_provenance, label="provenance")
        argument = _field_or_anything(data, changes)
        return name, lambda storage: storage.update_run(argument)
    counts = data.draw(_mostly(st.booleans()), label="update_counts")
    conflict = data.draw(_mostly(st.sampled_from(["error", "replace", "skip"])), label="conflict")
    if name == "add_result":
        argument = _field_or_anything(data, template)
        return name, lambda storage: storage.add_result(
            argument, update_counts=counts, on_conflict=conflict
        )
    if name == "add_results":
        size = data.draw(st.integers(0, 3), label="batch")
        batch = [_field_or_anything(data, {**template, "item_id": f"b{n}"}) for n in range(size)]
        inputs = batch if data.draw(st.booleans(), label="a list") else data.draw(anything)
        return name, lambda storage: storage.add_results(
            inputs, update_counts=counts, on_conflict=conflict
        )
    size = data.draw(_mostly(st.integers(1, 3)), label="batch_size")
    if name == "add_scores":
        result_id = data.draw(_mostly(st.sampled_from(["seed-result", "nope"])), label="result")
        score = {"result_id": result_id, "name": "accuracy", "value": 0.25, "label": "ok"}
        scores = [_field_or_anything(data, score) for _ in range(data.draw(st.integers(0, 2)))]
        replace = data.draw(_mostly(st.booleans()), label="replace")
        return name, lambda storage: storage.add_scores(scores, replace=replace)
    if name in ("compare_runs", "iter_item_comparisons"):
        other = data.draw(_mostly(st.sampled_from(runs)), label="other")
        if name == "compare_runs":
            return name, lambda storage: storage.compare_runs(some_id, other)
        kind = data.draw(st.sampled_from([None, "changed", "improved"]) | anything)
        score_name = data.draw(st.sampled_from([None, "accuracy"]) | anything)
        return name, lambda storage: list(
            storage.iter_item_comparisons(some_id, other, only=kind, score=score_name)
        )
    if name == "summarize_run":
        keep = data.draw(_mostly(st.booleans()), label="keep")
        return name, lambda storage: storage.summarize_run(some_id, keep=keep)
    if name == "keep_summaries":
        dataset = data.draw(st.none() | _mostly(st.just("dataset-1")), label="dataset")
        return name, lambda storage: storage.keep_summaries(dataset_id=dataset)
    if name == "trend_runs":
        dataset = data.draw(_mostly(st.just("dataset-1")), label="dataset")
        last = data.draw(_mostly(st.integers(1, 3)), label="last")
        status = data.draw(st.sampled_from([None, "completed", "running"]) | anything)
        keep = data.draw(_mostly(st.booleans()), label="keep")
        return name, lambda storage: storage.trend_runs(
            dataset, last=last, status=status, keep=keep
        )
    if name == "histogram_run":
        bins = data.draw(_mostly(st.integers(1, MAX_BINS)), label="bins")
        return name, lambda storage: storage.histogram_run(some_id, bins=bins)
    if name == "list_scores":
        return name, lambda storage: storage.list_scores(some_id, name="accuracy")
    if name in ("list_runs", "list_results"):
        fields: dict[str, Any] = {
            "pagination": {"page": 0, "per_page": size},
            "cursor": data.draw(_mostly(st.none()), label="cursor"),
        }
        if name == "list_runs":
            fields["dataset_id"] = "dataset-1"
            fields |= data.draw(_run_filters, label="run filters")
        else:
            fields |= {
                "run_id": run_id,
                "has_error": data.draw(st.none() | st.booleans(), label="has_error"),
                "order": data.draw(st.sampled_from(["execution", "slowest"]), label="order"),
                "score": data.draw(
                    st.none() | st.just({"name": "accuracy", "min": 0.1}), label="score"
                ),
            }
        argument = _field_or_anything(data, fields)
        return name, lambda storage: getattr(storage, name)(argument)
    if name == "iter_runs":
        filter_names = ["dataset_id", "status", "target_type", "target_id", "name"]
        keys = st.sampled_from([*filter_names, "tags", "metadata", "other"])
        filters = data.draw(st.dictionaries(keys, anything, max_size=2), label="filters")
        return name, lambda storage: list(storage.iter_runs(batch_size=size, **filters))
    if name == "iter_results":
        return name, lambda storage: list(storage.iter_results(some_id, batch_size=size))
    return name, lambda storage: getattr(storage, name)(some_id)
