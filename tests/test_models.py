"""The models and the registry, without a database."""

from __future__ import annotations

import inspect
import pydoc
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from pydantic import ValidationError

import runstore
from runstore import DATASET_RUN_RESULTS_SCHEMA
from runstore import DATASET_RUN_SCORES_SCHEMA
from runstore import DATASET_RUN_SUMMARIES_SCHEMA
from runstore import DATASET_RUN_TAGS_SCHEMA
from runstore import DATASET_RUNS_SCHEMA
from runstore import TABLE_DATASET_RUN_RESULTS
from runstore import TABLE_DATASET_RUN_SCORES
from runstore import TABLE_DATASET_RUN_SUMMARIES
from runstore import TABLE_DATASET_RUN_TAGS
from runstore import TABLE_DATASET_RUNS
from runstore import TABLE_SCHEMAS
from runstore import AddRunResultInput
from runstore import CreateRunInput
from runstore import ListRunResultsInput
from runstore import ListRunsInput
from runstore import Run
from runstore import RunStatus
from runstore import StoragePagination
from runstore import TargetType
from runstore import UpdateRunInput
from runstore.tables import metadata
from runstore.testing.inputs import T0
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

NAIVE = datetime(2026, 1, 1, 12, 0, 0)  # noqa: DTZ001 - the point of these tests


def test_inputs_accept_camel_case_and_snake_case() -> None:
    camel = CreateRunInput.model_validate(
        {
            "datasetId": "d",
            "datasetVersion": "2026-01-01T00:00:00+02:00",
            "targetType": "scorer",
            "targetId": "t",
            "totalItems": 3,
        }
    )
    snake = CreateRunInput(
        dataset_id="d",
        dataset_version=datetime(2025, 12, 31, 22, tzinfo=UTC),
        target_type=TargetType.SCORER,
        target_id="t",
        total_items=3,
    )
    assert camel == snake
    assert camel.dataset_version.tzinfo is UTC


def test_models_dump_the_plans_camel_case_json() -> None:
    run = Run(
        id="r",
        dataset_id="d",
        dataset_version=T0,
        target_type="processor",
        target_id="p",
        status="failed",
        total_items=2,
        succeeded_count=1,
        failed_count=1,
        started_at=T0,
        completed_at=None,
        created_at=T0,
        updated_at=T0,
    )
    assert run.model_dump(by_alias=True, mode="json") == {
        "id": "r",
        "datasetId": "d",
        "datasetVersion": "2026-01-02T03:04:05.678901Z",
        "targetType": "processor",
        "targetId": "p",
        "status": "failed",
        "totalItems": 2,
        "succeededCount": 1,
        "failedCount": 1,
        "startedAt": "2026-01-02T03:04:05.678901Z",
        "completedAt": None,
        "createdAt": "2026-01-02T03:04:05.678901Z",
        "updatedAt": "2026-01-02T03:04:05.678901Z",
        "resultCount": 0,
        "name": None,
        "description": None,
        "tags": [],
        "metadata": {},
    }
    dumped = StoragePagination(page=0, per_page=False).model_dump(by_alias=True)
    assert dumped == {"page": 0, "perPage": False}


def test_result_input_dumps_camel_case() -> None:
    dumped = result_input("r").model_dump(by_alias=True, mode="json")
    assert {"runId", "itemId", "itemVersion", "expectedOutput", "retryCount"} <= dumped.keys()


_RUN_JSON = {
    "id": "r",
    "datasetId": "d",
    "datasetVersion": T0,
    "targetType": "agent",
    "targetId": "t",
    "status": "pending",
    "totalItems": 0,
    "succeededCount": 0,
    "failedCount": 0,
    "startedAt": None,
    "completedAt": None,
    "createdAt": T0,
    "updatedAt": T0,
}


def test_returned_models_are_frozen() -> None:
    run = Run.model_validate(_RUN_JSON)
    with pytest.raises(ValidationError):
        run.status = RunStatus.RUNNING  # type: ignore[misc]


def test_returned_models_read_what_they_know_and_inputs_refuse_the_rest() -> None:
    # A run exported by a later release, with a field this one does not have, reads
    # back; an input with a field runstore does not know is a mistake, and refused.
    later = Run.model_validate({**_RUN_JSON, "laterField": {"any": "value"}})
    assert later == Run.model_validate(_RUN_JSON)
    assert "laterField" not in later.model_dump(by_alias=True)
    with pytest.raises(ValidationError, match="Extra inputs"):
        run_input(unexpected="field")


@pytest.mark.parametrize(
    "make",
    [
        lambda: run_input(dataset_version=NAIVE),
        lambda: UpdateRunInput(id="r", started_at=NAIVE),
        lambda: UpdateRunInput(id="r", completed_at=NAIVE),
        lambda: result_input("r", item_version=NAIVE),
        lambda: result_input("r", started_at=NAIVE),
        lambda: result_input("r", completed_at=NAIVE),
        lambda: CreateRunInput.model_validate(
            {
                "datasetId": "d",
                "datasetVersion": "2026-01-01T00:00:00",
                "targetType": "agent",
                "targetId": "t",
                "totalItems": 1,
            }
        ),
    ],
)
def test_naive_datetimes_are_refused(make: object) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        make()  # type: ignore[operator]


def test_instants_out_of_range_in_utc_are_refused_clearly() -> None:
    edge = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(ValidationError, match="outside the years"):
        run_input(dataset_version=edge)


def test_pagination_defaults() -> None:
    assert StoragePagination() == StoragePagination(page=0, per_page=100)
    assert ListRunsInput().pagination == StoragePagination()
    assert ListRunResultsInput(run_id="r").pagination.per_page == 100
    assert StoragePagination.model_validate({"page": 1, "perPage": 5}).per_page == 5


@pytest.mark.parametrize(
    "fields",
    [
        {"page": -1},
        {"per_page": 0},
        {"per_page": 0.0},
        {"per_page": -5},
        {"per_page": True},
        {"page": True},
        {"page": 1, "per_page": False},
        {"page": "1"},
        {"per_page": 2.5},
        {"per_page": 2**31},
    ],
)
def test_bad_pagination_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        StoragePagination(**fields)  # type: ignore[arg-type]


def test_all_rows_pagination() -> None:
    assert StoragePagination(per_page=False).per_page is False


def test_update_run_refuses_explicit_none() -> None:
    with pytest.raises(ValidationError, match="status set to None"):
        UpdateRunInput(id="r", status=None)
    assert UpdateRunInput(id="r", failed_count=2).changes() == {"failed_count": 2}


@pytest.mark.parametrize(
    "make",
    [
        lambda: run_input(total_items=-1),
        lambda: run_input(total_items=True),
        lambda: run_input(total_items=2**31),
        lambda: run_input(target_type="robot"),
        lambda: run_input(dataset_id=""),
        lambda: run_input(unexpected="field"),
        lambda: UpdateRunInput(id="r", status="paused"),
        lambda: result_input("r", latency=float("nan")),
        lambda: result_input("r", latency=-1.0),
        lambda: result_input("r", retry_count=-1),
        lambda: AddRunResultInput.model_validate({"runId": "r"}),
    ],
)
def test_invalid_inputs_are_value_errors(make: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError is one
        make()  # type: ignore[operator]


def test_registry_names_the_plans_columns() -> None:
    assert TABLE_DATASET_RUNS == "mastra_dataset_runs"
    assert TABLE_DATASET_RUN_RESULTS == "mastra_dataset_run_results"
    assert TABLE_DATASET_RUN_SCORES == "mastra_dataset_run_scores"
    assert TABLE_DATASET_RUN_TAGS == "mastra_dataset_run_tags"
    assert TABLE_DATASET_RUN_SUMMARIES == "mastra_dataset_run_summaries"
    assert TABLE_SCHEMAS == {
        TABLE_DATASET_RUNS: DATASET_RUNS_SCHEMA,
        TABLE_DATASET_RUN_RESULTS: DATASET_RUN_RESULTS_SCHEMA,
        TABLE_DATASET_RUN_SCORES: DATASET_RUN_SCORES_SCHEMA,
        TABLE_DATASET_RUN_TAGS: DATASET_RUN_TAGS_SCHEMA,
        TABLE_DATASET_RUN_SUMMARIES: DATASET_RUN_SUMMARIES_SCHEMA,
    }
    assert list(DATASET_RUNS_SCHEMA) == [
        "id", "datasetId", "datasetVersion", "targetType", "targetId", "status",
        "totalItems", "succeededCount", "failedCount", "startedAt", "completedAt",
        "createdAt", "updatedAt", "resultCount", "name", "description", "tags", "metadata",
        "summaryKey",
    ]  # fmt: skip
    assert list(DATASET_RUN_TAGS_SCHEMA) == ["runId", "tag", "createdAt"]
    assert list(DATASET_RUN_SUMMARIES_SCHEMA) == ["runId", "key", "summary", "keptAt"]
    assert list(DATASET_RUN_SCORES_SCHEMA) == [
        "id", "runId", "resultId", "name", "value", "label", "explanation", "metadata",
        "createdAt",
    ]  # fmt: skip
    assert list(DATASET_RUN_RESULTS_SCHEMA) == [
        "id", "runId", "itemId", "itemVersion", "input", "output", "expectedOutput",
        "latency", "error", "startedAt", "completedAt", "retryCount", "createdAt",
        "repetition", "inputTokens", "outputTokens", "cost", "traceId", "metadata",
    ]  # fmt: skip
    assert DATASET_RUN_RESULTS_SCHEMA["output"].type == "jsonb"
    assert DATASET_RUN_RESULTS_SCHEMA["output"].nullable
    assert not DATASET_RUN_RESULTS_SCHEMA["input"].nullable


def test_tables_are_generated_from_the_registry() -> None:
    for table in metadata.tables.values():
        schema = TABLE_SCHEMAS[table.name]
        assert [column.name for column in table.columns] == list(schema)
        for column in table.columns:
            spec = schema[column.name]
            assert column.nullable == spec.nullable, column.name
            assert column.primary_key == spec.primary_key, column.name
            assert bool(column.foreign_keys) == (spec.references is not None), column.name
    assert set(metadata.tables) == set(TABLE_SCHEMAS)


def test_every_constraint_and_index_has_a_convention_name() -> None:
    names = set()
    for table in metadata.tables.values():
        for constraint in table.constraints:
            assert constraint.name, constraint
            names.add(str(constraint.name))
        for index in table.indexes:
            names.add(str(index.name))
    assert "pk_mastra_dataset_runs" in names
    assert "uq_mastra_dataset_run_results_runId_itemId_repetition" in names
    assert "fk_mastra_dataset_run_results_runId_mastra_dataset_runs" in names
    assert all(len(name) <= 63 for name in names)  # Postgres' identifier limit


def test_the_public_api_is_importable_from_the_package() -> None:
    for name in runstore.__all__:
        assert getattr(runstore, name) is not None
    assert issubclass(runstore.RunNotFoundError, LookupError)
    assert issubclass(runstore.RunNotFoundError, runstore.StorageError)
    assert issubclass(runstore.DuplicateError, runstore.StorageError)
    assert issubclass(runstore.InvalidInputError, ValueError)
    assert issubclass(ValidationError, ValueError)


def test_a_result_has_every_field_of_its_input_and_a_creation_time() -> None:
    assert set(runstore.RunResult.model_fields) == set(AddRunResultInput.model_fields) | {
        "created_at"
    }


def test_generated_ids_are_canonical_random_uuid4s() -> None:
    import uuid

    from runstore.clock import new_id

    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000
    for made in ids:
        parsed = uuid.UUID(made)
        assert str(parsed) == made
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_a_cursor_and_a_page_number_are_not_both_accepted() -> None:
    with pytest.raises(ValidationError, match="cursor or a page"):
        runstore.ListRunsInput(cursor="abc", pagination=StoragePagination(page=2))


def test_signatures_and_help_show_the_snake_case_names() -> None:
    for model in (CreateRunInput, ListRunResultsInput, StoragePagination):
        parameters = inspect.signature(model).parameters
        assert all(name == name.lower() for name in parameters), (model, list(parameters))
    assert "dataset_id" in inspect.signature(CreateRunInput).parameters
    assert "per_page" in inspect.signature(StoragePagination).parameters
    shown = pydoc.render_doc(CreateRunInput)
    assert "dataset_id" in shown
    assert "datasetId" not in shown
