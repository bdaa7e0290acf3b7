"""What the storage calls accept: one rule for every adapter, checked before any work.

* A call that takes an input model also takes a mapping of its fields (snake_case or the
  plan's camelCase) and validates it like the model; anything else is refused with
  pydantic's ``ValidationError``.
* Ids are strings within the limits of :mod:`runstore.limits` (see ``Identifier`` in
  :mod:`runstore.models`); ``None``, other types and strings no backend can store are an
  :class:`~runstore.errors.InvalidInputError` -- never a wider query.
* Sizes are ints from 1 to :data:`~runstore.limits.MAX_PAGE_SIZE`; flags are bools.
* A batch is an iterable of models or mappings, validated all at once; a bad item is named
  by its position.

Every refusal is a ``ValueError``: pydantic's ``ValidationError`` or ``InvalidInputError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from runstore.errors import InvalidInputError
from runstore.limits import MAX_ID_LENGTH, MAX_PAGE_SIZE
from runstore.models import AddRunResultInput, Identifier

__all__ = ["batch_argument", "flag_argument", "id_argument", "model_argument", "size_argument"]

_Model = TypeVar("_Model", bound=BaseModel)

_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)
_BATCH = TypeAdapter(list[AddRunResultInput])


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


def size_argument(value: object, name: str) -> int:
    """``value`` if it is an int from 1 to :data:`MAX_PAGE_SIZE`."""
    if type(value) is not int or not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidInputError(
            f"{name} must be an int from 1 to {MAX_PAGE_SIZE:,}, not {value!r:.80}"
        )
    return value


def flag_argument(value: object, name: str) -> bool:
    """``value`` if it is a bool."""
    if type(value) is not bool:
        raise InvalidInputError(f"{name} must be True or False, not {value!r:.80}")
    return value


def batch_argument(inputs: object) -> list[AddRunResultInput]:
    """Validate the items of a batch for ``add_results``, naming a bad item's position.

    Refuses items that repeat the id or the (run, item) pair of an earlier item.
    """
    if isinstance(inputs, str | bytes | Mapping) or not isinstance(inputs, Iterable):
        raise InvalidInputError(
            f"inputs must be an iterable of AddRunResultInput or mappings, "
            f"not {type(inputs).__name__}"
        )
    items: list[Any] = list(inputs)
    try:
        batch = _BATCH.validate_python(items)
    except ValidationError as exc:
        position = exc.errors()[0]["loc"][0]
        try:
            model_argument(AddRunResultInput, items[int(position)])
        except ValidationError as item_error:  # the message of that item alone
            raise InvalidInputError(f"inputs[{position}]: {item_error}") from item_error
        raise InvalidInputError(f"inputs[{position}]: {exc}") from exc
    ids: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    for position, item in enumerate(batch):
        if item.id is not None:
            earlier = ids.setdefault(item.id, position)
            if earlier != position:
                raise InvalidInputError(
                    f"inputs[{position}]: id {item.id!r} repeats inputs[{earlier}]"
                )
        earlier = pairs.setdefault((item.run_id, item.item_id), position)
        if earlier != position:
            raise InvalidInputError(
                f"inputs[{position}]: item {item.item_id!r} of run {item.run_id!r} "
                f"repeats inputs[{earlier}]"
            )
    return batch
