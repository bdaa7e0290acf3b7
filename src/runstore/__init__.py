"""runstore: persistence for the dataset runs of AI-evaluation pipelines."""

from __future__ import annotations

from runstore.async_base import AsyncRunsStorage
from runstore.base import RunsStorage
from runstore.errors import DatabaseError
from runstore.errors import DuplicateError
from runstore.errors import InvalidInputError
from runstore.errors import ResultNotFoundError
from runstore.errors import RunNotFoundError
from runstore.errors import SchemaOutOfDateError
from runstore.errors import StorageClosedError
from runstore.errors import StorageError
from runstore.memory import AsyncInMemoryRunsStorage
from runstore.memory import InMemoryRunsStorage
from runstore.models import AddRunResultInput
from runstore.models import AddScoreInput
from runstore.models import ComparisonKind
from runstore.models import CreateRunInput
from runstore.models import ExistingRun
from runstore.models import GateCheck
from runstore.models import GateRules
from runstore.models import GateVerdict
from runstore.models import Histogram
from runstore.models import ItemComparison
from runstore.models import LatencySummary
from runstore.models import ListRunResultsInput
from runstore.models import ListRunResultsOutput
from runstore.models import ListRunsInput
from runstore.models import ListRunsOutput
from runstore.models import OnConflict
from runstore.models import PairedDelta
from runstore.models import ResultFilters
from runstore.models import ResultOrder
from runstore.models import Run
from runstore.models import RunComparison
from runstore.models import RunFilters
from runstore.models import RunHistograms
from runstore.models import RunResult
from runstore.models import RunStatus
from runstore.models import RunSummary
from runstore.models import RunTrend
from runstore.models import Score
from runstore.models import ScoreComparison
from runstore.models import ScoreFilter
from runstore.models import ScoreSummary
from runstore.models import StoragePagination
from runstore.models import StoragePaginationResult
from runstore.models import TargetType
from runstore.models import TrendPoint
from runstore.models import UpdateRunInput
from runstore.models import UsageSummary
from runstore.schema import DATASET_RUN_RESULTS_SCHEMA
from runstore.schema import DATASET_RUN_SCORES_SCHEMA
from runstore.schema import DATASET_RUN_SUMMARIES_SCHEMA
from runstore.schema import DATASET_RUN_TAGS_SCHEMA
from runstore.schema import DATASET_RUNS_SCHEMA
from runstore.schema import TABLE_DATASET_RUN_RESULTS
from runstore.schema import TABLE_DATASET_RUN_SCORES
from runstore.schema import TABLE_DATASET_RUN_SUMMARIES
from runstore.schema import TABLE_DATASET_RUN_TAGS
from runstore.schema import TABLE_DATASET_RUNS
from runstore.schema import TABLE_SCHEMAS
from runstore.schema import ColumnReference
from runstore.schema import StorageColumn
from runstore.sql import AsyncSqlRunsStorage
from runstore.sql import SqlRunsStorage

__version__ = "0.4.0"

__all__ = [
    "DATASET_RUNS_SCHEMA",
    "DATASET_RUN_RESULTS_SCHEMA",
    "DATASET_RUN_SCORES_SCHEMA",
    "DATASET_RUN_SUMMARIES_SCHEMA",
    "DATASET_RUN_TAGS_SCHEMA",
    "TABLE_DATASET_RUNS",
    "TABLE_DATASET_RUN_RESULTS",
    "TABLE_DATASET_RUN_SCORES",
    "TABLE_DATASET_RUN_SUMMARIES",
    "TABLE_DATASET_RUN_TAGS",
    "TABLE_SCHEMAS",
    "AddRunResultInput",
    "AddScoreInput",
    "AsyncInMemoryRunsStorage",
    "AsyncRunsStorage",
    "AsyncSqlRunsStorage",
    "ColumnReference",
    "ComparisonKind",
    "CreateRunInput",
    "DatabaseError",
    "DuplicateError",
    "ExistingRun",
    "GateCheck",
    "GateRules",
    "GateVerdict",
    "Histogram",
    "InMemoryRunsStorage",
    "InvalidInputError",
    "ItemComparison",
    "LatencySummary",
    "ListRunResultsInput",
    "ListRunResultsOutput",
    "ListRunsInput",
    "ListRunsOutput",
    "OnConflict",
    "PairedDelta",
    "ResultFilters",
    "ResultNotFoundError",
    "ResultOrder",
    "Run",
    "RunComparison",
    "RunFilters",
    "RunHistograms",
    "RunNotFoundError",
    "RunResult",
    "RunStatus",
    "RunSummary",
    "RunTrend",
    "RunsStorage",
    "SchemaOutOfDateError",
    "Score",
    "ScoreComparison",
    "ScoreFilter",
    "ScoreSummary",
    "SqlRunsStorage",
    "StorageClosedError",
    "StorageColumn",
    "StorageError",
    "StoragePagination",
    "StoragePaginationResult",
    "TargetType",
    "TrendPoint",
    "UpdateRunInput",
    "UsageSummary",
]
