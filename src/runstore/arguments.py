"""What the storage calls accept: one rule for every adapter, checked before any work.

* A call that takes an input model also takes a mapping of its fields (snake_case or the
  camelCase one) and validates it like the model; anything else is refused with
  pydantic's ``ValidationError``.
* Ids are strings within the limits of :mod:`runstore.limits` (see ``Identifier`` in
  :mod:`runstore.models`); ``None``, other types and strings no backend can store are an
  :class:`~runstore.errors.InvalidInputError` -- never a wider query.
* Sizes are ints from 1 to :data:`~runstore.limits.MAX_PAGE_SIZE`, numbers of bins ints
  from 1 to :data:`~runstore.limits.MAX_BINS`; flags are bools.
* A batch is an iterable of models or mappings, validated all at once; a bad item is named
  by its position.

Every refusal is a ``ValueError``: pydantic's ``ValidationError`` or ``InvalidInputError``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from typing import TypeVar

from pydantic import BaseModel
from pydantic import TypeAdapter
from pydantic import ValidationError

from runstore.errors import InvalidInputError
from runstore.limits import MAX_BINS
from runstore.limits import MAX_ID_LENGTH
from runstore.limits import MAX_PAGE_SIZE
from runstore.limits import MAX_TREND_RUNS
from runstore.models import AddRunResultInput
from runstore.models import AddScoreInput
from runstore.models import ComparisonKind
from runstore.models import GateRules
from runstore.models import Identifier
from runstore.models import Tags
from runstore.models import UtcInstant

__all__ = [
    "batch_argument",
    "bins_argument",
    "choice_argument",
    "comparison_argument",
    "confidence_argument",
    "flag_argument",
    "gate_arguments",
    "id_argument",
    "instant_argument",
    "model_argument",
    "scores_argument",
    "size_argument",
    "tags_argument",
    "trend_size_argument",
]

_Model = TypeVar("_Model", bound=BaseModel)

_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)
_BATCH = TypeAdapter(list[AddRunResultInput])
_SCORE_BATCH = TypeAdapter(list[AddScoreInput])


def model_argument(model: type[_Model], value: object) -> _Model:
    """``value`` as ``model``: the model itself, or a mapping of its fields, validated."""
    if isinstance(value, model):
        return value
    return model.model_validate(value)


def id_argument(value: object, name: str) -> str:
    """``value`` if it is an id runstore could have stored, else an ``InvalidInputError``."""
    if isinstance(value, str) and _plain_id(value):  # the common case, without pydantic
        return value
    try:
        return _IDENTIFIER.validate_python(value)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise InvalidInputError(f"{name} must be an id ({reason}), not {value!r:.80}") from None


def _plain_id(text: str) -> bool:
    return (
        type(text) is str
        and 0 < len(text) <= MAX_ID_LENGTH
        and text.isascii()
        and ("\x00" not in text)
    )


_TAGS: TypeAdapter[Sequence[str]] = TypeAdapter(Tags)


def tags_argument(value: object) -> tuple[str, ...]:
    """``value`` as a set of tags (None: none), sorted: a list or other iterable of tags,
    never a string."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise InvalidInputError(f"tags must be a list of tags, not the string {value!r:.80}")
    try:
        return tuple(_TAGS.validate_python(value))
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise InvalidInputError(f"tags: {reason}, not {value!r:.80}") from None


_INSTANT: TypeAdapter[datetime] = TypeAdapter(UtcInstant)


def instant_argument(value: object, name: str) -> datetime:
    """``value`` if it is a timezone-aware datetime, in UTC."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidInputError(f"{name} must be a timezone-aware datetime, not {value!r:.80}")
    return _INSTANT.validate_python(value)


def size_argument(value: object, name: str) -> int:
    """``value`` if it is an int from 1 to :data:`MAX_PAGE_SIZE`."""
    if type(value) is not int or not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidInputError(
            f"{name} must be an int from 1 to {MAX_PAGE_SIZE:,}, not {value!r:.80}"
        )
    return value


def bins_argument(value: object) -> int:
    """``value`` if it is an int from 1 to :data:`MAX_BINS` (a histogram's bins)."""
    if type(value) is not int or not 1 <= value <= MAX_BINS:
        raise InvalidInputError(f"bins must be an int from 1 to {MAX_BINS:,}, not {value!r:.80}")
    return value


_Choice = TypeVar("_Choice", bound=enum.StrEnum)


def trend_size_argument(value: object) -> int:
    """``value`` if it is an int from 1 to :data:`MAX_TREND_RUNS` (a trend's runs)."""
    if type(value) is not int or not 1 <= value <= MAX_TREND_RUNS:
        raise InvalidInputError(
            f"last must be an int from 1 to {MAX_TREND_RUNS:,}, not {value!r:.80}"
        )
    return value


def choice_argument(choices: type[_Choice], value: object, name: str) -> _Choice:
    """``value`` as one of an enum's members (given as the member or its value)."""
    if isinstance(value, choices):
        return value
    if isinstance(value, str) and value in choices.__members__.values():
        return choices(value)
    named = ", ".join(repr(choice.value) for choice in choices)
    raise InvalidInputError(f"{name} must be one of {named}, not {value!r:.80}")


def comparison_argument(value: object) -> ComparisonKind | None:
    """``value`` as the kind of item comparisons to keep (None: every item)."""
    if value is None:
        return None
    try:
        return choice_argument(ComparisonKind, value, "only")
    except InvalidInputError as exc:
        raise InvalidInputError(f"{exc} (or None)") from None


def confidence_argument(value: object) -> float:
    """``value`` if it is a confidence level: a number strictly between 0 and 1."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.0 < value < 1.0  # NaN too
    ):
        raise InvalidInputError(
            f"confidence must be a number between 0 and 1 (exclusive), not {value!r:.80}"
        )
    return float(value)


def gate_arguments(
    baseline_run_id: object, candidate_run_id: object, rules: object
) -> tuple[str, str, GateRules]:
    """The runs a gate compares and its rules (a :class:`GateRules` or a mapping of its
    fields); a run gated against itself is refused."""
    baseline = id_argument(baseline_run_id, "baseline_run_id")
    candidate = id_argument(candidate_run_id, "candidate_run_id")
    if baseline == candidate:
        raise InvalidInputError(
            f"a run cannot be gated against itself: baseline and candidate are both "
            f"{baseline!r:.80}"
        )
    return baseline, candidate, model_argument(GateRules, rules)


def flag_argument(value: object, name: str) -> bool:
    """``value`` if it is a bool."""
    if type(value) is not bool:
        raise InvalidInputError(f"{name} must be True or False, not {value!r:.80}")
    return value


def _batch(adapter: TypeAdapter[list[_Model]], model: type[_Model], inputs: object) -> list[_Model]:
    """Validate the items of a batch in one call, naming a bad item's position."""
    if isinstance(inputs, str | bytes | Mapping) or not isinstance(inputs, Iterable):
        raise InvalidInputError(
            f"inputs must be an iterable of {model.__name__} or mappings, "
            f"not {type(inputs).__name__}"
        )
    items: list[Any] = list(inputs)
    try:
        return adapter.validate_python(items)
    except ValidationError as exc:
        position = exc.errors()[0]["loc"][0]
        try:
            model_argument(model, items[int(position)])
        except ValidationError as item_error:  # the message of that item alone
            raise InvalidInputError(f"inputs[{position}]: {item_error}") from item_error
        raise InvalidInputError(f"inputs[{position}]: {exc}") from exc


def _no_repeats(keys: Iterable[tuple[object, str]]) -> None:
    """Refuse an item whose key repeats an earlier item's (keys: (key, what it is))."""
    seen: dict[object, int] = {}
    for position, (key, described) in enumerate(keys):
        if key is None:
            continue
        earlier = seen.setdefault(key, position)
        if earlier != position:
            raise InvalidInputError(f"inputs[{position}]: {described} repeats inputs[{earlier}]")


def batch_argument(inputs: object) -> list[AddRunResultInput]:
    """Validate the items of a batch for ``add_results``, naming a bad item's position.

    Refuses items that repeat the id or the (run, item, repetition) of an earlier item.
    """
    batch = _batch(_BATCH, AddRunResultInput, inputs)
    _no_repeats((item.id, f"id {item.id!r}") for item in batch)
    _no_repeats(((item.run_id, item.item_id, item.repetition), _described(item)) for item in batch)
    return batch


def _described(item: AddRunResultInput) -> str:
    repetition = f" (repetition {item.repetition})" if item.repetition else ""
    return f"item {item.item_id!r}{repetition} of run {item.run_id!r}"


def scores_argument(inputs: object) -> list[AddScoreInput]:
    """Validate the items of a batch for ``add_scores``, naming a bad item's position.

    Refuses items that repeat the id or the (result, name) pair of an earlier item.
    """
    batch = _batch(_SCORE_BATCH, AddScoreInput, inputs)
    _no_repeats((item.id, f"id {item.id!r}") for item in batch)
    _no_repeats(
        ((item.result_id, item.name), f"score {item.name!r} of result {item.result_id!r}")
        for item in batch
    )
    return batch
