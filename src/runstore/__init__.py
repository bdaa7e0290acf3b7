"""runstore: persistence for the dataset runs of AI-evaluation pipelines."""

from __future__ import annotations

from runstore.base import RunsStorage
from runstore.errors import (
    DatabaseError,
    DuplicateError,
    InvalidInputError,
    RunNotFoundError,
    SchemaOutOfDateError,
    StorageClosedError,
    StorageError,
)
from runstore.memory import InMemoryRunsStorage
from runstore.models import (
    AddRunResultInput,
    CreateRunInput,
    ListRunResultsInput,
    ListRunResultsOutput,
    ListRunsInput,
    ListRunsOutput,
    Run,
    RunFilters,
    RunResult,
    RunStatus,
    StoragePagination,
    StoragePaginationResult,
    TargetType,
    UpdateRunInput,
)
from runstore.schema import (
    DATASET_RUN_RESULTS_SCHEMA,
    DATASET_RUNS_SCHEMA,
    TABLE_DATASET_RUN_RESULTS,
    TABLE_DATASET_RUNS,
    TABLE_SCHEMAS,
    ColumnReference,
    StorageColumn,
)
from runstore.sql import SqlRunsStorage

__version__ = "0.1.0"

__all__ = [
    "DATASET_RUNS_SCHEMA",
    "DATASET_RUN_RESULTS_SCHEMA",
    "TABLE_DATASET_RUNS",
    "TABLE_DATASET_RUN_RESULTS",
    "TABLE_SCHEMAS",
    "AddRunResultInput",
    "ColumnReference",
    "CreateRunInput",
    "DatabaseError",
    "DuplicateError",
    "InMemoryRunsStorage",
    "InvalidInputError",
    "ListRunResultsInput",
    "ListRunResultsOutput",
    "ListRunsInput",
    "ListRunsOutput",
    "Run",
    "RunFilters",
    "RunNotFoundError",
    "RunResult",
    "RunStatus",
    "RunsStorage",
    "SchemaOutOfDateError",
    "SqlRunsStorage",
    "StorageClosedError",
    "StorageColumn",
    "StorageError",
    "StoragePagination",
    "StoragePaginationResult",
    "TargetType",
    "UpdateRunInput",
]
