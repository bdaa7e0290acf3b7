"""The table of storage calls: each call's arguments, checked once, before any work.

The contracts (:class:`~runstore.base.RunsStorage`, :class:`~runstore.async_base.AsyncRunsStorage`)
turn every public call into one of these call records -- that is where arguments are checked,
once, for every adapter (the rules: :mod:`runstore.arguments`) -- and hand it to their
adapter's one hook: ``_perform`` for a :class:`Call`, ``_stream`` for a :class:`Stream`
(the ``iter_*`` calls). Each adapter then looks the call record's class up in its own table of
what it does: the SQL adapters in :mod:`runstore.sql.dispatch`, the in-memory one in
:mod:`runstore.memory`. A test holds every adapter's table against this one.

A call record's ``checked()`` takes its arguments by name only, each annotated with the public
method's type, so that a type checker catches an argument passed in another's place; the
values are checked all the same, for callers without one.

Adding a call: its call record here, its method on both contracts, and an implementation in
each adapter's table. Adding a parameter: its field and check here, the contracts'
signatures, and the implementations that use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import Generic
from typing import TypeVar

from runstore.arguments import batch_argument
from runstore.arguments import bins_argument
from runstore.arguments import choice_argument
from runstore.arguments import comparison_argument
from runstore.arguments import confidence_argument
from runstore.arguments import flag_argument
from runstore.arguments import id_argument
from runstore.arguments import instant_argument
from runstore.arguments import model_argument
from runstore.arguments import scores_argument
from runstore.arguments import size_argument
from runstore.arguments import tags_argument
from runstore.arguments import trend_size_argument
from runstore.export import StoredRow
from runstore.models import AddRunResultInput
from runstore.models import AddScoreInput
from runstore.models import ComparisonKind
from runstore.models import CreateRunInput
from runstore.models import ExistingRun
from runstore.models import ItemComparison
from runstore.models import ListRunResultsInput
from runstore.models import ListRunResultsOutput
from runstore.models import ListRunsInput
from runstore.models import ListRunsOutput
from runstore.models import OnConflict
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
from runstore.models import ScoreFilter
from runstore.models import UpdateRunInput

__all__ = [
    "EVERY_CALL",
    "AddResult",
    "AddResults",
    "AddScores",
    "Call",
    "CompareRuns",
    "CreateRun",
    "DangerouslyClearAll",
    "DeleteResultsByRunId",
    "DeleteRun",
    "FindBaseline",
    "GetResultById",
    "GetRunById",
    "HistogramRun",
    "IterItemComparisons",
    "IterResultRows",
    "IterResults",
    "IterRuns",
    "IterScores",
    "KeepSummaries",
    "ListResults",
    "ListRuns",
    "ListScores",
    "PruneRuns",
    "RecountRun",
    "Stream",
    "SummarizeRun",
    "TrendRuns",
    "UpdateRun",
]

_T = TypeVar("_T", covariant=True)


class Call(Generic[_T]):
    """A call, its arguments checked, that returns a ``_T``."""

    __slots__ = ()


class Stream(Generic[_T]):
    """A call, its arguments checked, that yields ``_T`` items (an ``iter_*`` call)."""

    __slots__ = ()


def _optional_id(value: object, name: str) -> str | None:
    return None if value is None else id_argument(value, name)


# -- runs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateRun(Call[Run]):
    input: CreateRunInput
    if_exists: ExistingRun

    @classmethod
    def checked(
        cls, *, input: CreateRunInput | Mapping[str, Any], if_exists: ExistingRun | str
    ) -> CreateRun:
        return cls(
            model_argument(CreateRunInput, input),
            choice_argument(ExistingRun, if_exists, "if_exists"),
        )


@dataclass(frozen=True, slots=True)
class UpdateRun(Call[Run]):
    input: UpdateRunInput

    @classmethod
    def checked(cls, *, input: UpdateRunInput | Mapping[str, Any]) -> UpdateRun:
        return cls(model_argument(UpdateRunInput, input))


@dataclass(frozen=True, slots=True)
class GetRunById(Call[Run | None]):
    id: str

    @classmethod
    def checked(cls, *, id: str) -> GetRunById:
        return cls(id_argument(id, "id"))


@dataclass(frozen=True, slots=True)
class ListRuns(Call[ListRunsOutput]):
    input: ListRunsInput

    @classmethod
    def checked(cls, *, input: ListRunsInput | Mapping[str, Any] | None) -> ListRuns:
        return cls(model_argument(ListRunsInput, {} if input is None else input))


@dataclass(frozen=True, slots=True)
class IterRuns(Stream[Run]):
    filters: RunFilters
    batch_size: int

    @classmethod
    def checked(cls, *, filters: Mapping[str, Any], batch_size: int) -> IterRuns:
        return cls(RunFilters.model_validate(filters), size_argument(batch_size, "batch_size"))


@dataclass(frozen=True, slots=True)
class FindBaseline(Call[Run | None]):
    candidate_run_id: str
    filters: RunFilters
    """The tags, metadata and target the baseline must have (never a dataset or status:
    the candidate's dataset, completed)."""

    @classmethod
    def checked(
        cls,
        *,
        candidate_run_id: str,
        tags: Iterable[str] | None,
        metadata: Mapping[str, object] | None,
        target_id: str | None,
    ) -> FindBaseline:
        given = {"tags": tags, "metadata": metadata, "target_id": target_id}
        return cls(
            id_argument(candidate_run_id, "candidate_run_id"),
            RunFilters.model_validate(
                {name: value for name, value in given.items() if value is not None}
            ),
        )


@dataclass(frozen=True, slots=True)
class DeleteRun(Call[None]):
    id: str

    @classmethod
    def checked(cls, *, id: str) -> DeleteRun:
        return cls(id_argument(id, "id"))


@dataclass(frozen=True, slots=True)
class RecountRun(Call[Run]):
    run_id: str

    @classmethod
    def checked(cls, *, run_id: str) -> RecountRun:
        return cls(id_argument(run_id, "run_id"))


@dataclass(frozen=True, slots=True)
class PruneRuns(Call[int]):
    older_than: datetime
    status: RunStatus | None
    dataset_id: str | None
    batch_size: int
    tags: tuple[str, ...] = ()

    @classmethod
    def checked(
        cls,
        *,
        older_than: datetime,
        status: RunStatus | str | None,
        dataset_id: str | None,
        batch_size: int,
        tags: Iterable[str] | None = None,
    ) -> PruneRuns:
        return cls(
            instant_argument(older_than, "older_than"),
            None if status is None else choice_argument(RunStatus, status, "status"),
            _optional_id(dataset_id, "dataset_id"),
            size_argument(batch_size, "batch_size"),
            tags_argument(tags),
        )


# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddResult(Call[RunResult]):
    input: AddRunResultInput
    update_counts: bool
    on_conflict: OnConflict

    @classmethod
    def checked(
        cls,
        *,
        input: AddRunResultInput | Mapping[str, Any],
        update_counts: bool,
        on_conflict: OnConflict | str,
    ) -> AddResult:
        return cls(
            model_argument(AddRunResultInput, input),
            flag_argument(update_counts, "update_counts"),
            choice_argument(OnConflict, on_conflict, "on_conflict"),
        )


@dataclass(frozen=True, slots=True)
class AddResults(Call[list[RunResult]]):
    inputs: list[AddRunResultInput]
    update_counts: bool
    on_conflict: OnConflict

    @classmethod
    def checked(
        cls,
        *,
        inputs: Iterable[AddRunResultInput | Mapping[str, Any]],
        update_counts: bool,
        on_conflict: OnConflict | str,
    ) -> AddResults:
        counts = flag_argument(update_counts, "update_counts")
        conflict = choice_argument(OnConflict, on_conflict, "on_conflict")
        return cls(batch_argument(inputs), counts, conflict)


@dataclass(frozen=True, slots=True)
class GetResultById(Call[RunResult | None]):
    id: str

    @classmethod
    def checked(cls, *, id: str) -> GetResultById:
        return cls(id_argument(id, "id"))


@dataclass(frozen=True, slots=True)
class ListResults(Call[ListRunResultsOutput]):
    input: ListRunResultsInput

    @classmethod
    def checked(cls, *, input: ListRunResultsInput | Mapping[str, Any]) -> ListResults:
        return cls(model_argument(ListRunResultsInput, input))


@dataclass(frozen=True, slots=True)
class IterResults(Stream[RunResult]):
    run_id: str
    filters: ResultFilters
    batch_size: int

    @classmethod
    def checked(
        cls,
        *,
        run_id: str,
        batch_size: int,
        has_error: bool | None,
        item_id: str | None,
        score: ScoreFilter | Mapping[str, Any] | None,
        order: ResultOrder | str,
    ) -> IterResults:
        checked_id = id_argument(run_id, "run_id")
        size = size_argument(batch_size, "batch_size")
        filters = {"has_error": has_error, "item_id": item_id, "score": score, "order": order}
        return cls(checked_id, ResultFilters.model_validate(filters), size)


@dataclass(frozen=True, slots=True)
class IterResultRows(Stream[list[StoredRow]]):
    """A run's results as stored rows (:mod:`runstore.export`), a batch an item: what
    ``iter_result_batches`` and ``export_results`` read."""

    run_id: str
    batch_size: int

    @classmethod
    def checked(cls, *, run_id: str, batch_size: int) -> IterResultRows:
        return cls(id_argument(run_id, "run_id"), size_argument(batch_size, "batch_size"))


@dataclass(frozen=True, slots=True)
class DeleteResultsByRunId(Call[None]):
    run_id: str

    @classmethod
    def checked(cls, *, run_id: str) -> DeleteResultsByRunId:
        return cls(id_argument(run_id, "run_id"))


# -- scores ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddScores(Call[list[Score]]):
    inputs: list[AddScoreInput]
    replace: bool

    @classmethod
    def checked(
        cls, *, inputs: Iterable[AddScoreInput | Mapping[str, Any]], replace: bool
    ) -> AddScores:
        replacing = flag_argument(replace, "replace")
        return cls(scores_argument(inputs), replacing)


@dataclass(frozen=True, slots=True)
class ListScores(Call[list[Score]]):
    run_id: str
    result_id: str | None
    name: str | None

    @classmethod
    def checked(cls, *, run_id: str, result_id: str | None, name: str | None) -> ListScores:
        return cls(
            id_argument(run_id, "run_id"),
            _optional_id(result_id, "result_id"),
            _optional_id(name, "name"),
        )


@dataclass(frozen=True, slots=True)
class IterScores(Stream[Score]):
    run_id: str
    result_id: str | None
    name: str | None
    batch_size: int

    @classmethod
    def checked(
        cls, *, run_id: str, result_id: str | None, name: str | None, batch_size: int
    ) -> IterScores:
        listing = ListScores.checked(run_id=run_id, result_id=result_id, name=name)
        size = size_argument(batch_size, "batch_size")
        return cls(listing.run_id, listing.result_id, listing.name, size)


# -- answers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SummarizeRun(Call[RunSummary]):
    run_id: str
    keep: bool = True
    """Whether a finished run's summary, computed, is kept (never where reads go to a
    replica)."""

    @classmethod
    def checked(cls, *, run_id: str, keep: bool = True) -> SummarizeRun:
        return cls(id_argument(run_id, "run_id"), flag_argument(keep, "keep"))


@dataclass(frozen=True, slots=True)
class KeepSummaries(Call[int]):
    """Keep the summary of every finished run (of one dataset) that has none kept."""

    dataset_id: str | None

    @classmethod
    def checked(cls, *, dataset_id: str | None) -> KeepSummaries:
        return cls(_optional_id(dataset_id, "dataset_id"))


@dataclass(frozen=True, slots=True)
class TrendRuns(Call[RunTrend]):
    filters: RunFilters
    """The dataset (always), and the target, tags, metadata and status given; a status
    of None takes the finished runs (completed or failed)."""
    last: int
    keep: bool = True

    @classmethod
    def checked(
        cls,
        *,
        dataset_id: str,
        target_id: str | None,
        tags: Iterable[str] | None,
        metadata: Mapping[str, object] | None,
        status: RunStatus | str | None,
        last: int,
        keep: bool = True,
    ) -> TrendRuns:
        given = {
            "dataset_id": id_argument(dataset_id, "dataset_id"),
            "target_id": _optional_id(target_id, "target_id"),
            "tags": None if tags is None else tags_argument(tags),
            "metadata": metadata,
            "status": None if status is None else choice_argument(RunStatus, status, "status"),
        }
        filters = RunFilters.model_validate(
            {name: value for name, value in given.items() if value is not None}
        )
        return cls(filters, trend_size_argument(last), flag_argument(keep, "keep"))


@dataclass(frozen=True, slots=True)
class HistogramRun(Call[RunHistograms]):
    run_id: str
    bins: int

    @classmethod
    def checked(cls, *, run_id: str, bins: int) -> HistogramRun:
        return cls(id_argument(run_id, "run_id"), bins_argument(bins))


@dataclass(frozen=True, slots=True)
class CompareRuns(Call[RunComparison]):
    baseline_run_id: str
    candidate_run_id: str
    confidence: float = 0.95

    @classmethod
    def checked(
        cls, *, baseline_run_id: str, candidate_run_id: str, confidence: float = 0.95
    ) -> CompareRuns:
        return cls(
            id_argument(baseline_run_id, "baseline_run_id"),
            id_argument(candidate_run_id, "candidate_run_id"),
            confidence_argument(confidence),
        )


@dataclass(frozen=True, slots=True)
class IterItemComparisons(Stream[ItemComparison]):
    baseline_run_id: str
    candidate_run_id: str
    only: ComparisonKind | None
    score: str | None
    batch_size: int
    after_item: str | None = None

    @classmethod
    def checked(
        cls,
        *,
        baseline_run_id: str,
        candidate_run_id: str,
        only: ComparisonKind | str | None,
        score: str | None,
        batch_size: int,
        after_item: str | None = None,
    ) -> IterItemComparisons:
        runs = CompareRuns.checked(
            baseline_run_id=baseline_run_id, candidate_run_id=candidate_run_id
        )
        return cls(
            runs.baseline_run_id,
            runs.candidate_run_id,
            comparison_argument(only),
            _optional_id(score, "score"),
            size_argument(batch_size, "batch_size"),
            _optional_id(after_item, "after_item"),
        )


# -- testing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DangerouslyClearAll(Call[None]):
    pass


EVERY_CALL: tuple[type[Call[Any] | Stream[Any]], ...] = (
    CreateRun,
    UpdateRun,
    GetRunById,
    ListRuns,
    IterRuns,
    FindBaseline,
    DeleteRun,
    RecountRun,
    PruneRuns,
    AddResult,
    AddResults,
    GetResultById,
    ListResults,
    IterResults,
    IterResultRows,
    DeleteResultsByRunId,
    AddScores,
    ListScores,
    IterScores,
    SummarizeRun,
    KeepSummaries,
    HistogramRun,
    CompareRuns,
    IterItemComparisons,
    TrendRuns,
    DangerouslyClearAll,
)
"""Every call of the table, in the contracts' order (for the tests that hold each
adapter's table against this one)."""
