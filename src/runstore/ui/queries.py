"""The viewer's query strings read into the storage's own inputs.

Every filter a page shows lives in its query string, so a link reproduces the view.
A value that cannot be read is a :class:`BadQueryError` (the page answers 400 with its
message); what the storage itself refuses (a malformed cursor, ``min`` above ``max``)
arrives as its :class:`~runstore.errors.InvalidInputError` and is answered the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from runstore.models import (
    ComparisonKind,
    ListRunResultsInput,
    ListRunsInput,
    ResultOrder,
    RunStatus,
    ScoreFilter,
    StoragePagination,
)

__all__ = [
    "RESULTS_PER_PAGE",
    "RUNS_PER_PAGE",
    "BadQueryError",
    "CompareQuery",
    "compare_query",
    "results_query",
    "runs_query",
]

RUNS_PER_PAGE = 25
RESULTS_PER_PAGE = 50
COMPARED_PER_PAGE = 50

_T = TypeVar("_T")

_STATUSES = {status.value: status for status in RunStatus}
_ORDERS = {order.value: order for order in ResultOrder}
_KINDS = {kind.value: kind for kind in ComparisonKind}


class BadQueryError(ValueError):
    """A query parameter the viewer cannot read."""


def _text(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name)
    return value if value else None  # an empty form field is no filter


def _choice(query: Mapping[str, str], name: str, choices: Mapping[str, _T]) -> _T | None:
    value = _text(query, name)
    if value is None:
        return None
    if value not in choices:
        raise BadQueryError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return choices[value]


def _flag(query: Mapping[str, str], name: str) -> bool | None:
    value = _text(query, name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise BadQueryError(f"{name} must be true or false, not {value!r}")
    return value == "true"


def _number(query: Mapping[str, str], name: str) -> float | None:
    value = _text(query, name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadQueryError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise BadQueryError(f"{name} must be a finite number, not {value!r}")
    return number


def runs_query(query: Mapping[str, str]) -> ListRunsInput:
    """``/``: ``dataset_id``, ``status``, ``target_id``, ``cursor``."""
    return ListRunsInput(
        dataset_id=_text(query, "dataset_id"),
        status=_choice(query, "status", _STATUSES),
        target_id=_text(query, "target_id"),
        cursor=_text(query, "cursor"),
        pagination=StoragePagination(per_page=RUNS_PER_PAGE),
    )


def results_query(run_id: str, query: Mapping[str, str]) -> ListRunResultsInput:
    """``/runs/{id}``: ``has_error``, ``order``, ``item_id``, ``score`` with ``min`` and
    ``max``, ``cursor``."""
    name, low, high = _text(query, "score"), _number(query, "min"), _number(query, "max")
    if name is None and (low is not None or high is not None):
        raise BadQueryError("min and max bound a score: give score=NAME too")
    return ListRunResultsInput(
        run_id=run_id,
        has_error=_flag(query, "has_error"),
        order=_choice(query, "order", _ORDERS) or ResultOrder.EXECUTION,
        item_id=_text(query, "item_id"),
        score=None if name is None else ScoreFilter(name=name, min=low, max=high),
        cursor=_text(query, "cursor"),
        pagination=StoragePagination(per_page=RESULTS_PER_PAGE),
    )


@dataclass(frozen=True)
class CompareQuery:
    """``/compare``: the two runs, which items, judged by which score, after which item."""

    baseline: str
    candidate: str
    only: ComparisonKind | None
    score: str | None
    after: str | None


def compare_query(query: Mapping[str, str]) -> CompareQuery:
    baseline, candidate = _text(query, "baseline"), _text(query, "candidate")
    if baseline is None or candidate is None:
        raise BadQueryError("give both runs: /compare?baseline=RUN&candidate=RUN")
    return CompareQuery(
        baseline,
        candidate,
        _choice(query, "only", _KINDS),
        _text(query, "score"),
        _text(query, "after"),
    )
