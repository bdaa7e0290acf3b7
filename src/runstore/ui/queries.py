"""The viewer's query strings read into the storage's own inputs.

Every filter a page shows lives in its query string, so a link reproduces the view.
A value that cannot be read is a :class:`BadQueryError` (the page answers 400 with its
message); what the storage itself refuses (a malformed cursor, ``min`` above ``max``, a
tag too long) arrives as its :class:`~runstore.errors.InvalidInputError` or pydantic's
``ValidationError`` and is answered the same way.

The runs list takes two filters more than once: ``tag=TAG`` (runs carrying every tag
given) and ``meta=KEY=VALUE`` (runs whose metadata has every key given with an equal
value). A ``meta`` key ends at its first ``=``; its value is read as JSON when it parses
(``meta=temperature=0.2``, ``meta=cached=true``, ``meta=commit=null``) and as text
otherwise (``meta=model=gpt-4o``), so a text that reads as JSON is given quoted
(``meta=build="1234"``). :func:`meta_param` writes a key and a value that way. The trend
page takes ``tag`` and ``meta`` the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Protocol
from typing import TypeVar

from runstore.limits import MAX_TREND_RUNS
from runstore.models import ComparisonKind
from runstore.models import ListRunResultsInput
from runstore.models import ListRunsInput
from runstore.models import ResultOrder
from runstore.models import RunStatus
from runstore.models import ScoreFilter
from runstore.models import StoragePagination
from runstore.pairs import pair_text
from runstore.pairs import read_pair

__all__ = [
    "CONFIDENCE",
    "RESULTS_PER_PAGE",
    "RUNS_PER_PAGE",
    "TREND_RUNS",
    "BadQueryError",
    "CompareQuery",
    "MetaValue",
    "QueryString",
    "RunsQuery",
    "TrendQuery",
    "compare_query",
    "meta_param",
    "meta_value",
    "results_query",
    "runs_query",
    "trend_query",
]

RUNS_PER_PAGE = 25
RESULTS_PER_PAGE = 50
COMPARED_PER_PAGE = 50
TREND_RUNS = 20
"""Runs a trend page draws when its query does not say (``last``)."""

_T = TypeVar("_T")

_STATUSES = {status.value: status for status in RunStatus}
_ORDERS = {order.value: order for order in ResultOrder}
_KINDS = {kind.value: kind for kind in ComparisonKind}


class BadQueryError(ValueError):
    """A query parameter the viewer cannot read."""


class QueryString(Protocol):
    """A request's query string: a name's last value, or every value it was given."""

    def get(self, key: str, /) -> str | None: ...

    def getlist(self, key: str) -> list[str]: ...


def _text(query: QueryString, name: str) -> str | None:
    value = query.get(name)
    return value if value else None  # an empty form field is no filter


def _texts(query: QueryString, name: str) -> tuple[str, ...]:
    """Every non-empty value of a repeatable parameter, each once, in the order given."""
    return tuple(dict.fromkeys(value for value in query.getlist(name) if value))


def _choice(query: QueryString, name: str, choices: Mapping[str, _T]) -> _T | None:
    value = _text(query, name)
    if value is None:
        return None
    if value not in choices:
        raise BadQueryError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return choices[value]


def _flag(query: QueryString, name: str) -> bool | None:
    value = _text(query, name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise BadQueryError(f"{name} must be true or false, not {value!r}")
    return value == "true"


def _number(query: QueryString, name: str) -> float | None:
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


MetaValue = str | int | float | bool | None
"""What a ``meta`` filter compares a key's value with: a JSON scalar."""


def meta_value(text: str) -> MetaValue:
    """A ``meta`` filter's value: ``text`` read as JSON when it parses, else ``text``
    (:func:`runstore.pairs.read_pair`'s rule).

    Raises:
        BadQueryError: JSON that is an object or a list, or a number too large to hold.
    """
    return _meta(f"value={text}")[1]


def _meta(given: str) -> tuple[str, MetaValue]:
    try:
        key, value = read_pair(given, scalar=True)
    except ValueError as exc:
        raise BadQueryError(f"meta must be KEY=VALUE with a JSON scalar or text: {exc}") from None
    scalar: MetaValue = value
    return key, scalar


def _metadata(given: tuple[str, ...]) -> dict[str, MetaValue]:
    """The ``meta`` filters given, as the metadata a run must have: each key once."""
    metadata: dict[str, MetaValue] = {}
    for pair in given:
        key, value = _meta(pair)
        if key in metadata:
            raise BadQueryError(f"meta gives the key {key!r:.80} twice: one value each")
        metadata[key] = value
    return metadata


def meta_param(key: str, value: object) -> str | None:
    """The ``meta`` parameter that filters by ``key`` equal to ``value``
    (:func:`runstore.pairs.pair_text`). None when no parameter can: a key holding ``=``,
    or a value that is no JSON scalar."""
    if isinstance(value, dict | list):
        return None
    return pair_text(key, value)


_RUN_FIELDS = ("dataset_id", "status", "target_id", "name")
"""The runs list's filters given once each, in the order its links write them."""

Params = dict[str, str | list[str]]
"""Query parameters for a link of the viewer's (``links.to`` in the templates): a list
gives its name once per value."""


class _Filters:
    """The links of a page filtered by parameters given once (``fields``) and by ``tag``
    and ``meta`` (each repeatable): the same filters with a tag or a ``meta`` added or
    dropped."""

    fields: dict[str, str]
    tags: tuple[str, ...]
    meta: tuple[str, ...]

    def params(
        self, *, tags: tuple[str, ...] | None = None, meta: tuple[str, ...] | None = None
    ) -> Params:
        """The filters as query parameters (no cursor: a changed list starts over),
        with other ``tags`` or ``meta`` when given."""
        params: Params = dict(self.fields)
        params["tag"] = list(self.tags if tags is None else tags)
        params["meta"] = list(self.meta if meta is None else meta)
        return params

    @property
    def filtered(self) -> bool:
        return bool(self.fields or self.tags or self.meta)

    def adding_tag(self, tag: str) -> Params:
        """The filters and ``tag`` too."""
        return self.params(tags=tuple(dict.fromkeys((*self.tags, tag))))

    def dropping_tag(self, tag: str) -> Params:
        return self.params(tags=tuple(given for given in self.tags if given != tag))

    def dropping_meta(self, meta: str) -> Params:
        return self.params(meta=tuple(given for given in self.meta if given != meta))


@dataclass(frozen=True)
class RunsQuery(_Filters):
    """``/``: the runs asked for, and the filters as the query string gave them, so that
    the page's links (the next page, a tag added, a filter dropped) keep the others."""

    listing: ListRunsInput
    fields: dict[str, str] = field(default_factory=dict)
    """The filters given once (``dataset_id``, ``status``, ``target_id``, ``name``)."""
    tags: tuple[str, ...] = ()
    """Each ``tag`` given, once, in order."""
    meta: tuple[str, ...] = ()
    """Each ``meta`` given (``KEY=VALUE``), once, in order."""

    def trend(self, dataset_id: str) -> Params:
        """The trend of ``dataset_id`` under the filters a trend takes too: the target,
        the status, the tags and the metadata (not the name: a trend is of many runs)."""
        given = self.params()
        return {
            "dataset_id": dataset_id,
            **{name: value for name, value in given.items() if name not in ("dataset_id", "name")},
        }


def runs_query(query: QueryString) -> RunsQuery:
    """``/``: ``dataset_id``, ``status``, ``target_id``, ``name`` (exactly), ``tag`` and
    ``meta`` (each repeatable), ``cursor``."""
    fields = {name: text for name in _RUN_FIELDS if (text := _text(query, name)) is not None}
    tags, given_meta = _texts(query, "tag"), _texts(query, "meta")
    metadata = _metadata(given_meta)
    listing = ListRunsInput(
        dataset_id=fields.get("dataset_id"),
        status=_choice(query, "status", _STATUSES),
        target_id=fields.get("target_id"),
        name=fields.get("name"),
        tags=list(tags) or None,
        metadata=metadata or None,
        cursor=_text(query, "cursor"),
        pagination=StoragePagination(per_page=RUNS_PER_PAGE),
    )
    return RunsQuery(listing, fields, tags, given_meta)


_TREND_FIELDS = ("dataset_id", "target_id", "status", "last")
"""The trend page's parameters given once, in the order its links write them."""


@dataclass(frozen=True)
class TrendQuery(_Filters):
    """``/trend``: the runs whose figures are drawn -- a dataset's, of a target, carrying
    every tag and metadata pair given, of a status (None: the finished ones), the
    ``last`` newest -- and the parameters as given, for the page's links."""

    dataset_id: str
    target_id: str | None
    status: RunStatus | None
    last: int
    metadata: dict[str, MetaValue]
    fields: dict[str, str] = field(default_factory=dict)
    """The parameters given once (``dataset_id``, ``target_id``, ``status``, ``last``)."""
    tags: tuple[str, ...] = ()
    meta: tuple[str, ...] = ()

    def runs(self) -> Params:
        """The runs list under the same filters (the list has no ``last``)."""
        params = self.params()
        params.pop("last", None)
        return params


def _count(query: QueryString, name: str, default: int, most: int) -> int:
    """A whole number from 1 to ``most``; ``default`` when not given."""
    value = _text(query, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= most:
        raise BadQueryError(f"{name} must be a whole number from 1 to {most}, not {value!r:.80}")
    return number


def trend_query(query: QueryString) -> TrendQuery:
    """``/trend``: ``dataset_id`` (needed), ``target_id``, ``status``, ``tag`` and
    ``meta`` (each repeatable), ``last`` (1 to :data:`~runstore.limits.MAX_TREND_RUNS`;
    :data:`TREND_RUNS` when not given)."""
    fields = {name: text for name in _TREND_FIELDS if (text := _text(query, name)) is not None}
    dataset_id = fields.get("dataset_id")
    if dataset_id is None:
        raise BadQueryError("give a dataset: /trend?dataset_id=DATASET")
    tags, given_meta = _texts(query, "tag"), _texts(query, "meta")
    return TrendQuery(
        dataset_id=dataset_id,
        target_id=fields.get("target_id"),
        status=_choice(query, "status", _STATUSES),
        last=_count(query, "last", TREND_RUNS, MAX_TREND_RUNS),
        metadata=_metadata(given_meta),
        fields=fields,
        tags=tags,
        meta=given_meta,
    )


def results_query(run_id: str, query: QueryString) -> ListRunResultsInput:
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


CONFIDENCE = 0.95
"""The intervals' confidence when the query gives none (``compare_runs``' default)."""


@dataclass(frozen=True)
class CompareQuery:
    """``/compare``: the two runs, which items, judged by which score, after which item,
    and the confidence of the figures' intervals."""

    baseline: str
    candidate: str
    only: ComparisonKind | None
    score: str | None
    after: str | None
    confidence: float = CONFIDENCE

    def params(self, **changed: object) -> Params:
        """The view as query parameters (the default confidence left out), with the
        ``changed`` ones instead: ``after=None`` drops one."""
        params: dict[str, object] = {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "only": None if self.only is None else self.only.value,
            "score": self.score,
            "after": self.after,
            "confidence": None if self.confidence == CONFIDENCE else self.confidence,
        }
        params.update(changed)
        given: Params = {name: str(value) for name, value in params.items() if value is not None}
        return given


def _confidence(query: QueryString) -> float:
    number = _number(query, "confidence")
    if number is None:
        return CONFIDENCE
    if not 0 < number < 1:
        raise BadQueryError(
            f"confidence must be between 0 and 1, both excluded (0.95 for a 95% interval), "
            f"not {query.get('confidence')!r:.80}"
        )
    return number


def compare_query(query: QueryString) -> CompareQuery:
    """``/compare``: ``baseline`` and ``candidate`` (both needed), ``only``, ``score``,
    ``after``, ``confidence`` (strictly between 0 and 1; 0.95 when not given)."""
    baseline, candidate = _text(query, "baseline"), _text(query, "candidate")
    if baseline is None or candidate is None:
        raise BadQueryError("give both runs: /compare?baseline=RUN&candidate=RUN")
    return CompareQuery(
        baseline,
        candidate,
        _choice(query, "only", _KINDS),
        _text(query, "score"),
        _text(query, "after"),
        _confidence(query),
    )
