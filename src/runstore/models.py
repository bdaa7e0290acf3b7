"""The pydantic models of runstore's API: runs, results, their inputs and list outputs.

Attributes are snake_case; inputs also accept the plan's camelCase names, and
``model_dump(by_alias=True, mode="json")`` gives the plan's camelCase JSON. Models the
storage returns are frozen snapshots: reading again gives fresh objects, and changing the
JSON inside one cannot change what is stored.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from runstore.jsonvalues import JsonValue, check_text, normalize_json
from runstore.limits import MAX_COUNT, MAX_ID_LENGTH, MAX_PAGE_SIZE

__all__ = [
    "AddRunResultInput",
    "CreateRunInput",
    "ListRunResultsInput",
    "ListRunResultsOutput",
    "ListRunsInput",
    "ListRunsOutput",
    "Run",
    "RunFilters",
    "RunResult",
    "RunStatus",
    "StoragePagination",
    "StoragePaginationResult",
    "TargetType",
    "UpdateRunInput",
]

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
PageSize = Annotated[int, Strict(), Field(ge=1, le=MAX_PAGE_SIZE)]


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


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
    )


class _Snapshot(_Model):
    model_config = ConfigDict(frozen=True)


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
    created_at: AwareDatetime


class CreateRunInput(_Model):
    """A new run. Without ``id`` a uuid4 string is generated."""

    id: Identifier | None = None
    dataset_id: Identifier
    dataset_version: UtcInstant
    target_type: TargetType
    target_id: Identifier
    total_items: Count


class UpdateRunInput(_Model):
    """Fields of a run to change; the fields not given stay as they are."""

    id: Identifier
    status: RunStatus | None = None
    succeeded_count: Count | None = None
    failed_count: Count | None = None
    started_at: UtcInstant | None = None
    completed_at: UtcInstant | None = None

    @model_validator(mode="after")
    def _no_explicit_none(self) -> Self:
        cleared = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if cleared:
            raise ValueError(
                f"{', '.join(cleared)} set to None: leave a field out to keep its value"
            )
        return self

    def changes(self) -> dict[str, Any]:
        """The fields to change, by attribute name."""
        return {name: getattr(self, name) for name in self.model_fields_set if name != "id"}


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

    @field_validator("input", "output", "expected_output")
    @classmethod
    def _json_value(cls, value: object, info: Any) -> JsonValue:
        return normalize_json(value, info.field_name)


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

    def given(self) -> dict[str, str]:
        """The filters that restrict the list, by attribute name."""
        values = {name: getattr(self, name) for name in RunFilters.model_fields}
        return {name: value for name, value in values.items() if value is not None}

    def scope(self) -> tuple[str | None, ...]:
        """Every filter's value (None where not given), in one fixed order."""
        return tuple(getattr(self, name) for name in RunFilters.model_fields)


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


class ListRunResultsInput(_PageRequest):
    """One run's results in execution order; ``cursor`` works as in :class:`ListRunsInput`."""

    run_id: Identifier


class ListRunResultsOutput(_Snapshot):
    results: tuple[RunResult, ...]
    pagination: StoragePaginationResult
    next_cursor: str | None = None
    """Give it as ``cursor`` to read the next page; None on the last page."""
