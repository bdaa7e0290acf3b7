"""The pydantic models of runstore's API: runs, results, their inputs and list outputs.

Attributes are snake_case; inputs also accept the camelCase names of the
framework's own store, and ``model_dump(by_alias=True, mode="json")`` gives its camelCase
JSON. Models the
storage returns are frozen snapshots: reading again gives fresh objects, and changing the
JSON inside one cannot change what is stored.

The models users import are listed once, in the package's ``__all__``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Annotated
from typing import Any
from typing import Literal
from typing import Self
from typing import TypeVar

from pydantic import AfterValidator
from pydantic import AliasChoices
from pydantic import AliasGenerator
from pydantic import AwareDatetime
from pydantic import BaseModel
from pydantic import BeforeValidator
from pydantic import ConfigDict
from pydantic import Field
from pydantic import Strict
from pydantic import TypeAdapter
from pydantic import field_validator
from pydantic import model_validator
from pydantic.alias_generators import to_camel

from runstore.jsonvalues import JsonValue
from runstore.jsonvalues import check_text
from runstore.jsonvalues import dumps_json
from runstore.jsonvalues import normalize_json
from runstore.limits import MAX_COUNT
from runstore.limits import MAX_ID_LENGTH
from runstore.limits import MAX_NAME_LENGTH
from runstore.limits import MAX_PAGE_SIZE
from runstore.limits import MAX_TAG_LENGTH
from runstore.limits import MAX_TAGS

Text = Annotated[str, Strict(), AfterValidator(check_text)]
"""A string every backend stores losslessly (no NUL, valid UTF-8)."""

Identifier = Annotated[Text, Field(min_length=1, max_length=MAX_ID_LENGTH)]
"""An id: a non-empty string of at most :data:`~runstore.limits.MAX_ID_LENGTH` characters."""


def _in_utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} lies outside the years 1-9999 in UTC") from None


UtcInstant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""An aware datetime (naive ones are refused), converted to UTC."""

Count = Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)]
Milliseconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def _no_negative_zero(value: float) -> float:
    return value if value != 0.0 else 0.0  # -0.0 reads back as 0.0 from SQLite


ScoreValue = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_no_negative_zero)]
"""A score: any finite float."""
PageSize = Annotated[int, Strict(), Field(ge=1, le=MAX_PAGE_SIZE)]

Cost = Annotated[float, Field(ge=0, allow_inf_nan=False), AfterValidator(_no_negative_zero)]
"""A cost: a finite float, not negative, in the caller's one currency."""

RunName = Annotated[Text, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
"""A run's name: 1 to :data:`~runstore.limits.MAX_NAME_LENGTH` characters."""

Tag = Annotated[Text, Field(min_length=1, max_length=MAX_TAG_LENGTH)]
"""A tag of a run: 1 to :data:`~runstore.limits.MAX_TAG_LENGTH` characters."""


def _tag_set(tags: Sequence[str]) -> tuple[str, ...]:
    """Tags as a set: duplicates dropped, sorted; at most :data:`MAX_TAGS` of them."""
    kept = tuple(sorted(set(tags)))
    if len(kept) > MAX_TAGS:
        raise ValueError(f"a run has at most {MAX_TAGS} tags, not {len(kept)}")
    return kept


def _set_as_list(value: object) -> object:
    return sorted(value, key=str) if isinstance(value, set | frozenset) else value


Tags = Annotated[Sequence[Tag], BeforeValidator(_set_as_list), AfterValidator(_tag_set)]
"""A run's tags, given as a list, tuple or set (never a string): kept as a sorted set, a
tuple."""


def _json_object(value: object, info: Any) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise ValueError(f"{info.field_name} must be a JSON object (a dict), not {value!r:.80}")
    copied: dict[str, JsonValue] = normalize_json(value, info.field_name)
    return copied


JsonObject = Annotated[dict[str, JsonValue], BeforeValidator(_json_object)]
"""A JSON object (a dict with string keys), validated and copied by
:func:`~runstore.jsonvalues.normalize_json`; anything else is refused."""


def _metadata_scalar(value: object) -> object:
    if isinstance(value, dict | list | tuple):
        kind = "an object" if isinstance(value, dict) else "a list"
        raise ValueError(
            f"a metadata filter's value must be a JSON scalar (a string, number, bool or "
            f"null), not {kind}"
        )
    return value


MetadataFilterValue = Annotated[
    Annotated[bool, Strict()]
    | Annotated[int, Strict()]
    | Annotated[float, Strict(), Field(allow_inf_nan=False)]
    | Text
    | None,
    BeforeValidator(_metadata_scalar),
]
"""What a metadata filter matches a key's value against: a JSON scalar. Numbers match
by value (``1`` matches ``1.0``); ``True`` matches ``true`` only, never ``1``."""


class TargetType(enum.StrEnum):
    """What a run executes each dataset item against."""

    AGENT = "agent"
    WORKFLOW = "workflow"
    SCORER = "scorer"
    PROCESSOR = "processor"


class RunStatus(enum.StrEnum):
    """Where a run is in its lifecycle."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


FINISHED: frozenset[RunStatus] = frozenset({RunStatus.COMPLETED, RunStatus.FAILED})
"""The statuses of a finished run: its summary is kept, and a trend takes it by default."""


def _either_name(name: str) -> AliasChoices:
    return AliasChoices(name, to_camel(name))


class _Model(BaseModel):
    # Fields are read by their snake_case name or the camelCase one, and written
    # camelCase with by_alias=True; the signature (help(), inspect) shows snake_case.
    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=_either_name, serialization_alias=to_camel),
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
    )


class _Snapshot(_Model):
    # What runstore returns: immutable, and read from JSON by what it knows -- a key it
    # does not know (a later release's field, in an export) is ignored, not refused.
    model_config = ConfigDict(frozen=True, extra="ignore")


_Snapshots = TypeVar("_Snapshots", bound=_Snapshot)


def snapshots_of(
    adapter: TypeAdapter[list[_Snapshots]], fields: list[dict[str, Any]]
) -> list[_Snapshots]:
    """The models of fields that runstore gathered itself, keyed by attribute name: read
    by name alone, no field's camelCase alias looked up too (a tenth of the validation)."""
    return adapter.validate_python(fields, by_alias=False, by_name=True)


class Run(_Snapshot):
    """One execution of a dataset against a target, and its progress."""

    id: str
    dataset_id: str
    dataset_version: AwareDatetime
    target_type: TargetType
    target_id: str
    status: RunStatus
    total_items: int
    succeeded_count: int
    failed_count: int
    started_at: AwareDatetime | None
    completed_at: AwareDatetime | None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    result_count: int = 0
    """How many results the run has: kept by the storage with every write of results."""
    name: str | None = None
    """A name for people to find the run by (not unique)."""
    description: str | None = None
    tags: tuple[str, ...] = ()
    """The run's tags, sorted, each once."""
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    """What produced the run (model, prompt version, commit, branch...): a JSON object."""


class RunResult(_Snapshot):
    """The outcome of one dataset item within a run."""

    id: str
    run_id: str
    item_id: str
    item_version: AwareDatetime
    input: JsonValue
    output: JsonValue | None
    expected_output: JsonValue | None
    latency: float
    """Milliseconds."""
    error: str | None
    started_at: AwareDatetime
    completed_at: AwareDatetime
    retry_count: int
    repetition: int = 0
    """Which deliberate sample of the item this is (0 for the first)."""
    scores: dict[str, float] = Field(default_factory=dict)
    """Each score's value by name (see :class:`Score` for the whole score)."""
    created_at: AwareDatetime
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    """What producing the result cost, in the caller's one currency."""
    trace_id: str | None = None
    """The id of the trace that recorded the call, in the caller's tracing system."""
    metadata: dict[str, JsonValue] | None = None


class Score(_Snapshot):
    """A named score of one result: a scorer's verdict on it."""

    id: str
    run_id: str
    result_id: str
    name: str
    value: float
    label: str | None
    explanation: str | None
    metadata: JsonValue | None
    created_at: AwareDatetime


class CreateRunInput(_Model):
    """A new run. Without ``id`` a uuid4 string is generated."""

    id: Identifier | None = None
    dataset_id: Identifier
    dataset_version: UtcInstant
    target_type: TargetType
    target_id: Identifier
    total_items: Count
    name: RunName | None = None
    """At most :data:`~runstore.limits.MAX_NAME_LENGTH` characters."""
    description: Text | None = None
    tags: Tags = ()
    """Each 1 to :data:`~runstore.limits.MAX_TAG_LENGTH` characters, at most
    :data:`~runstore.limits.MAX_TAGS`; stored as a set (sorted, each once)."""
    metadata: JsonObject = Field(default_factory=dict)
    """A JSON object: what produced the run (model, prompt version, commit...)."""


class UpdateRunInput(_Model):
    """Fields of a run to change; the fields not given stay as they are.

    ``tags`` replaces the run's tags (``[]`` clears them) and ``metadata`` its metadata
    (``{}`` clears it); ``name`` and ``description`` set to None clear them.
    """

    id: Identifier
    status: RunStatus | None = None
    succeeded_count: Count | None = None
    failed_count: Count | None = None
    started_at: UtcInstant | None = None
    completed_at: UtcInstant | None = None
    name: RunName | None = None
    description: Text | None = None
    tags: Tags | None = None
    metadata: JsonObject | None = None

    @model_validator(mode="after")
    def _no_explicit_none(self) -> Self:
        cleared = sorted(
            name
            for name in self.model_fields_set
            if getattr(self, name) is None and name not in _CLEARABLE
        )
        if cleared:
            raise ValueError(
                f"{', '.join(cleared)} set to None: leave a field out to keep its value"
            )
        return self

    def changes(self) -> dict[str, Any]:
        """The fields to change, by attribute name."""
        return {name: getattr(self, name) for name in self.model_fields_set if name != "id"}


_CLEARABLE = frozenset({"name", "description"})
"""The fields of :class:`UpdateRunInput` that None clears (rather than refused)."""


class AddRunResultInput(_Model):
    """A result to record. Without ``id`` a uuid4 string is generated.

    The JSON fields are validated by the rules of :mod:`runstore.jsonvalues` and kept as
    a copy, detached from the caller's objects.
    """

    id: Identifier | None = None
    run_id: Identifier
    item_id: Identifier
    item_version: UtcInstant
    input: JsonValue
    output: JsonValue | None = None
    expected_output: JsonValue | None = None
    latency: Milliseconds
    error: Text | None = None
    started_at: UtcInstant
    completed_at: UtcInstant
    retry_count: Count = 0
    repetition: Count = 0
    """The n-th deliberate sample of the item in the run (0 for the first): a run may hold
    one result per (item, repetition)."""
    scores: dict[Identifier, ScoreValue] | None = None
    """Scores to record with the result, in the same transaction: value by name."""
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    cost: Cost | None = None
    """What producing the result cost: finite, not negative, in the caller's one currency."""
    trace_id: Identifier | None = None
    """The id of the trace that recorded the call, in the caller's tracing system."""
    metadata: JsonObject | None = None

    @field_validator("input", "output", "expected_output")
    @classmethod
    def _json_value(cls, value: object, info: Any) -> JsonValue:
        return normalize_json(value, info.field_name)


class AddScoreInput(_Model):
    """A score of a result. Without ``id`` a uuid4 string is generated."""

    id: Identifier | None = None
    result_id: Identifier
    name: Identifier
    value: ScoreValue
    label: Text | None = None
    explanation: Text | None = None
    metadata: JsonValue | None = None

    @field_validator("metadata")
    @classmethod
    def _json_value(cls, value: object) -> JsonValue:
        return normalize_json(value, "metadata")


def _only_false_means_all(value: object) -> object:
    # Literal[False] alone would also take 0, which equals False.
    if value is not False and type(value) is not bool and value == 0:
        raise ValueError("per_page must be at least 1, or False for all rows")
    return value


class StoragePagination(_Model):
    """Which page to read: ``per_page=False`` reads every row (then ``page`` must be 0)."""

    page: Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)] = 0
    per_page: Annotated[PageSize | Literal[False], BeforeValidator(_only_false_means_all)] = 100

    @model_validator(mode="after")
    def _all_rows_is_one_page(self) -> Self:
        if self.per_page is False and self.page != 0:
            raise ValueError("page must be 0 when per_page is False (all rows)")
        return self

    @property
    def offset(self) -> int:
        return 0 if self.per_page is False else self.page * self.per_page


class StoragePaginationResult(_Snapshot):
    """Where a page sits: ``total`` rows match, ``has_more`` if any lie past this page."""

    total: int
    page: int
    per_page: int | Literal[False]
    has_more: bool


class _PageRequest(_Model):
    """Which page of a list: by number, or after a cursor from the previous page."""

    pagination: StoragePagination = Field(default_factory=StoragePagination)
    cursor: Annotated[str, Strict()] | None = None

    @model_validator(mode="after")
    def _cursor_replaces_page(self) -> Self:
        if self.cursor is not None and self.pagination.page != 0:
            raise ValueError("give either a cursor or a page number, not both (page must be 0)")
        return self


class RunFilters(_Model):
    """Which runs: every filter given must match; ``None`` matches any value.

    The one definition of the run filters: :class:`ListRunsInput` carries them, and
    ``iter_runs`` takes them by name.
    """

    dataset_id: Identifier | None = None
    status: RunStatus | None = None
    target_type: TargetType | None = None
    target_id: Identifier | None = None
    name: RunName | None = None
    """The run's name, exactly."""
    tags: Tags | None = None
    """Runs carrying every one of these tags."""
    metadata: dict[Text, MetadataFilterValue] | None = None
    """Runs whose metadata has every one of these top-level keys with a value equal to
    the one given: a JSON scalar (see :data:`MetadataFilterValue`)."""

    def given(self) -> dict[str, Any]:
        """The filters that restrict the list, by attribute name (empty tags and metadata
        restrict nothing)."""
        values = {name: getattr(self, name) for name in RunFilters.model_fields}
        return {name: value for name, value in values.items() if value not in (None, (), {})}

    def equal(self) -> dict[str, str]:
        """The filters that a run's column must equal, by attribute name."""
        given = self.given()
        return {name: given[name] for name in _EQUAL_FILTERS if name in given}

    def matches(self, run: Run) -> bool:
        """Whether ``run`` passes every filter (the filters' one definition in Python)."""
        given = self.given()
        if any(getattr(run, name) != given[name] for name in _EQUAL_FILTERS if name in given):
            return False
        if not set(given.get("tags", ())) <= set(run.tags):
            return False
        metadata: dict[str, Any] = given.get("metadata", {})
        return all(
            key in run.metadata and metadata_equal(run.metadata[key], value)
            for key, value in metadata.items()
        )

    def scope(self) -> tuple[str | None, ...]:
        """Every filter's value (None where not given), in one fixed order, as text."""
        given = self.given()
        scope: list[str | None] = [given.get(name) for name in _EQUAL_FILTERS]
        if "tags" in given:
            scope.append("\x1f".join(given["tags"]))
        if "metadata" in given:
            scope.append(dumps_json(dict(sorted(given["metadata"].items()))))
        return tuple(scope)


_EQUAL_FILTERS = ("dataset_id", "status", "target_type", "target_id", "name")


def metadata_equal(stored: object, wanted: object) -> bool:
    """Whether a run's metadata value matches a filter's: JSON scalars equal as JSON
    compares them -- numbers by value (``1`` equals ``1.0``), never a bool and a number."""
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return stored is wanted
    if isinstance(wanted, int | float) and isinstance(stored, int | float):
        return stored == wanted
    if wanted is None:
        return stored is None
    return isinstance(stored, str) and stored == wanted


class ListRunsInput(RunFilters, _PageRequest):
    """Runs newest first, optionally filtered (see :class:`RunFilters`).

    ``cursor`` (from a previous output's ``next_cursor``) continues after that page, at a
    cost that does not grow with depth; ``pagination.page`` must then be 0.
    """


class ListRunsOutput(_Snapshot):
    runs: tuple[Run, ...]
    pagination: StoragePaginationResult
    next_cursor: str | None = None
    """Give it as ``cursor`` to read the next page; None on the last page."""


class OnConflict(enum.StrEnum):
    """What writing a result does when its run already holds one for the same
    (item, repetition)."""

    ERROR = "error"
    """Refuse it: a ``DuplicateError``, nothing written."""
    REPLACE = "replace"
    """Overwrite the stored result (it keeps its id) and its scores."""
    SKIP = "skip"
    """Keep the stored result."""


class ExistingRun(enum.StrEnum):
    """What creating a run does when a run with its id exists."""

    ERROR = "error"
    """Refuse it: a ``DuplicateError``."""
    RETURN = "return"
    """Return the stored run if it was created with the same fields (else a
    ``DuplicateError`` naming those that differ)."""


class ResultOrder(enum.StrEnum):
    """The order of a run's results in a list."""

    EXECUTION = "execution"
    """``started_at``, then ``id``, ascending."""
    SLOWEST = "slowest"
    """``latency``, then ``id``, descending: the slowest first."""


class ScoreFilter(_Model):
    """Results with a score of this name within ``min`` and ``max`` (inclusive; either
    may be left out)."""

    name: Identifier
    min: Annotated[float, Field(allow_inf_nan=False)] | None = None
    max: Annotated[float, Field(allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class ResultFilters(_Model):
    """Which of a run's results, in which order: every filter given must match."""

    has_error: Annotated[bool, Strict()] | None = None
    """True: only failed results (``error`` not None); False: only the others."""
    item_id: Identifier | None = None
    score: ScoreFilter | None = None
    order: ResultOrder = ResultOrder.EXECUTION

    def scope(self) -> tuple[str | None, ...]:
        """The filters and order, as the strings a cursor is bound to."""
        score = self.score
        return (
            None if self.has_error is None else str(self.has_error),
            self.item_id,
            None if score is None else score.name,
            None if score is None or score.min is None else repr(score.min),
            None if score is None or score.max is None else repr(score.max),
            self.order.value,
        )


class ListRunResultsInput(ResultFilters, _PageRequest):
    """One run's results, in execution order unless ``order`` says otherwise, optionally
    filtered (see :class:`ResultFilters`); ``cursor`` works as in :class:`ListRunsInput`."""

    run_id: Identifier


class ListRunResultsOutput(_Snapshot):
    results: tuple[RunResult, ...]
    pagination: StoragePaginationResult
    next_cursor: str | None = None
    """Give it as ``cursor`` to read the next page; None on the last page."""


class LatencySummary(_Snapshot):
    """A run's latencies in milliseconds; None when it has no results."""

    mean: float | None
    min: float | None
    max: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None


class ScoreSummary(_Snapshot):
    """One score's values over a run."""

    count: int
    mean: float
    min: float
    max: float
    p50: float


class UsageSummary(_Snapshot):
    """What a run's results used: tokens and cost."""

    input_tokens: int
    """The sum over the results (a result without it counts 0)."""
    output_tokens: int
    """The sum over the results (a result without it counts 0)."""
    priced: int
    """How many results have a cost."""
    cost: float | None
    """The sum of the costs of the results that have one (None when none has)."""
    cost_per_result: float | None
    """The mean cost of the results that have one (None when none has)."""


class RunSummary(_Snapshot):
    """What a run's results add up to.

    Percentiles are continuous: linear interpolation between the closest ranks (Postgres'
    ``percentile_cont``, numpy's default).
    """

    run_id: str
    results: int
    succeeded: int
    failed: int
    """Results whose ``error`` is not None."""
    error_rate: float | None
    """``failed / results``; None when there are no results."""
    latency: LatencySummary
    scores: dict[str, ScoreSummary]
    """By score name."""
    usage: UsageSummary
    """Tokens and cost, summed over the results."""


class Histogram(_Snapshot):
    """Equal-width bins over [low, high]: counts[i] values lie in [low + i*w, low + (i+1)*w),
    w = (high-low)/len(counts), the last bin closed at high. When low == high, a single bin.

    A value's bin is ``floor((value/2 - low/2) / (high/2 - low/2) * bins)`` in double
    arithmetic, the last bin also taking ``high`` (halved, so no finite values overflow):
    :func:`runstore.figures.bin_of`, the same on every backend.
    """

    low: float
    """The least value."""
    high: float
    """The greatest value."""
    counts: tuple[int, ...]
    """How many values lie in each bin, lowest first; they add up to the values counted."""


class RunHistograms(_Snapshot):
    """How a run's latencies and each score's values are spread (see :class:`Histogram`)."""

    run_id: str
    bins: int
    """The bins asked for (a histogram whose values are all equal has one)."""
    latency: Histogram | None
    """Of the run's results' latencies, in milliseconds; None when the run has no results."""
    scores: dict[str, Histogram]
    """By score name, over that score's values in the run."""
    cost: Histogram | None = None
    """Of the costs of the results that have one; None when none has."""


class PairedDelta(_Snapshot):
    """A figure's change from a baseline to a candidate over the items both runs have it
    for (an item's repetitions averaged first), and whether it is more than noise: the
    paired t-test of the items' differences.

    With fewer than two pairs ``std_error``, the interval and ``p_value`` are None. When
    every difference is the same (no spread), ``std_error`` is 0, the interval is
    ``[mean_delta, mean_delta]`` and ``p_value`` is 1.0 if ``mean_delta`` is 0, else 0.0.
    """

    paired: int
    """Items with the figure in both runs."""
    mean_delta: float
    """The mean of candidate minus baseline over the paired items."""
    std_error: float | None = None
    """The standard error of ``mean_delta``: the differences' sample standard deviation
    over the square root of ``paired``."""
    ci_low: float | None = None
    """The low end of the two-sided ``confidence`` interval of ``mean_delta`` (Student's t
    with ``paired - 1`` degrees of freedom)."""
    ci_high: float | None = None
    p_value: float | None = None
    """The two-sided paired t-test's p-value of a zero mean difference."""
    confidence: float = 0.95
    """The confidence of the interval."""

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero: the change is more than noise at this
        confidence."""
        return (
            self.ci_low is not None
            and self.ci_high is not None
            and (self.ci_low > 0 or self.ci_high < 0)
        )


class ScoreComparison(PairedDelta):
    """One score over the items both runs have it for; higher is better."""

    baseline_mean: float
    candidate_mean: float
    improved: int
    regressed: int
    unchanged: int


class RunComparison(_Snapshot):
    """A candidate run against a baseline, their results paired by ``item_id``.

    Counts are of items. An item with several repetitions in a run counts once: its
    latency and each score are the means over its repetitions, and it failed if any
    repetition failed.
    """

    baseline_run_id: str
    candidate_run_id: str
    items_in_both: int
    only_in_baseline: int
    only_in_candidate: int
    errors_fixed: int
    """Items with an error in the baseline and none in the candidate."""
    errors_introduced: int
    latency_mean_delta: float | None
    """The mean of candidate minus baseline latency over the paired items (None: none)."""
    scores: dict[str, ScoreComparison]
    """By score name."""
    cost_mean_delta: float | None = None
    """The mean of candidate minus baseline cost over the paired items that have a cost in
    both runs (an item's cost: the mean over its repetitions that have one); None when no
    item has."""
    latency: PairedDelta | None = None
    """The latency's change, with its interval and p-value (None: no item pairs)."""
    cost: PairedDelta | None = None
    """The cost's change over the items priced in both runs (None: none is)."""
    tokens_mean_delta: float | None = None
    """The same for tokens: a result's input plus output tokens (one it lacks counts 0;
    a result with neither has none)."""


class ComparisonKind(enum.StrEnum):
    """Which item comparisons to stream (see ``iter_item_comparisons``)."""

    CHANGED = "changed"
    IMPROVED = "improved"
    REGRESSED = "regressed"


class ItemComparison(_Snapshot):
    """One item's results in two runs; either may be missing.

    An item with several repetitions in a run is compared by their means (see
    :func:`runstore.figures.score_deltas`); ``baseline`` and ``candidate`` are its first
    repetition in each run, and the ``*_repetitions`` hold them all.
    """

    item_id: str
    baseline: RunResult | None
    candidate: RunResult | None
    baseline_repetitions: tuple[RunResult, ...]
    """The item's results in the baseline, in repetition order (empty: not in the run)."""
    candidate_repetitions: tuple[RunResult, ...]
    """The item's results in the candidate, in repetition order (empty: not in the run)."""
    score_deltas: dict[str, float]
    """Candidate minus baseline, for each score both runs have for the item (each the
    mean over the item's repetitions)."""


Ratio = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Rate = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Confidence = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]


class GateRules(_Model):
    """What a candidate run must meet against its baseline to pass a gate (see
    ``gate_runs``): every rule given is a check, in the order of these fields; a rule left
    out is not checked."""

    min_score_delta: dict[Identifier, Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=dict
    )
    """Per score, the least mean delta allowed (``{"accuracy": -0.01}``: at most a hundredth
    worse). A score one run lacks fails its check."""
    significance: Annotated[bool, Strict()] = True
    """On: a score fails only if its whole interval lies below its limit (``ci_high <
    limit``), so noise does not fail a build; off: if its mean delta does."""
    confidence: Confidence = 0.95
    """Of the scores' intervals."""
    max_regressed_items: Count | None = None
    """Items that regressed (gained an error, or any score went down)."""
    max_errors_introduced: Count | None = None
    """Items with an error in the candidate and none in the baseline."""
    max_error_rate: Rate | None = None
    """The candidate's share of failed results."""
    max_latency_p95_ratio: Ratio | None = None
    """Candidate latency p95 over the baseline's."""
    max_cost_ratio: Ratio | None = None
    """Candidate cost per result over the baseline's."""
    min_items_in_both: Count | None = None
    """Items both runs have."""


class GateCheck(_Snapshot):
    """One rule of a gate, judged."""

    name: str
    """The rule: ``min_score_delta.<score>``, ``max_regressed_items``, ..."""
    passed: bool
    observed: float | None
    """What the runs showed (None: nothing to judge, which fails the check)."""
    limit: float | None
    message: str
    """One line for a person reading a CI log."""


class GateVerdict(_Snapshot):
    """Whether a candidate run passed a gate against its baseline, rule by rule."""

    passed: bool
    """Every check passed."""
    checks: tuple[GateCheck, ...]
    """One per rule given, in the order of :class:`GateRules`' fields (the scores in the
    order given)."""
    comparison: RunComparison
    """The comparison the gate judged."""


# -- trends ------------------------------------------------------------------------------


class TrendPoint(_Snapshot):
    """One run of a trend: who it is, and its summary's headline figures."""

    run_id: str
    name: str | None
    created_at: AwareDatetime
    status: RunStatus
    results: int
    error_rate: float | None
    """``failed / results``; None when the run has no results."""
    latency_p50: float | None
    latency_p95: float | None
    cost: float | None
    """The run's total cost (of the results that have one); None when none has."""
    cost_per_result: float | None
    scores: dict[str, float]
    """Each score's mean, by name."""

    @classmethod
    def of(cls, run: Run, summary: RunSummary) -> TrendPoint:
        """The point of ``run``, from its summary."""
        return cls(
            run_id=run.id,
            name=run.name,
            created_at=run.created_at,
            status=run.status,
            results=summary.results,
            error_rate=summary.error_rate,
            latency_p50=summary.latency.p50,
            latency_p95=summary.latency.p95,
            cost=summary.usage.cost,
            cost_per_result=summary.usage.cost_per_result,
            scores={name: score.mean for name, score in sorted(summary.scores.items())},
        )


class RunTrend(_Snapshot):
    """A dataset's runs, oldest first, and how their figures move."""

    dataset_id: str
    points: tuple[TrendPoint, ...]
    """Oldest first: the newest runs that matched, at most as many as asked."""

    def score_names(self) -> list[str]:
        """Every score some point has, sorted."""
        return sorted({name for point in self.points for name in point.scores})
