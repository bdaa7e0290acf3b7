"""JSON values: what runstore accepts, how it writes them, how it reads them back.

One set of rules for every backend, so a value reads back the same from SQLite, Postgres
and memory:

* Accepted: ``dict`` with ``str`` keys, ``list``/``tuple`` (read back as ``list``), ``str``,
  ``int``, finite ``float``, ``bool`` and ``None`` -- exactly these types, nested freely.
* Refused with a ``ValueError`` naming the field and the position inside it: NaN and
  infinities, other objects (including subclasses such as enums), non-string keys, strings
  holding NUL (``\\x00``, which Postgres cannot store) or unpaired surrogates (not UTF-8),
  integers over 4,000 digits, and nesting deeper than Python can recurse.
* Negative zero is stored as ``0.0``: Postgres' ``numeric`` has no negative zero, and the
  value must read back the same everywhere.
* Written as compact UTF-8 JSON. A float with an integral value that Python would write in
  exponent form (``1e+16``) is written with a fraction (``10000000000000000.0``) so that
  Postgres' ``jsonb``, which stores numbers as ``numeric``, gives a float back, not an int.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeAlias, cast

__all__ = ["JsonValue", "check_text", "dumps_json", "loads_json", "normalize_json"]

JsonValue: TypeAlias = Any
"""Any JSON value: dict, list, str, int, float, bool or None."""

_MAX_INT_BITS = 13_300  # about 4,000 decimal digits; Python refuses to print far larger ints


class _JsonPathError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


def check_text(text: str) -> str:
    """Refuse strings no backend can store: NUL characters and unpaired surrogates."""
    if "\x00" in text:
        raise ValueError("contains a NUL character (\\x00), which Postgres cannot store")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains an unpaired surrogate and is not valid UTF-8") from None
    return text


def normalize_json(value: object, field: str) -> JsonValue:
    """Return a validated deep copy of ``value``, detached from the caller's objects.

    Raises:
        ValueError: ``value`` is not a JSON value runstore can store; the message names
            ``field`` and the position of the offending part.
    """
    try:
        return _copy(value)
    except _JsonPathError as exc:
        where = field + "".join(reversed(exc.path))
        raise ValueError(f"{where}: {exc.message}") from None
    except RecursionError:
        raise ValueError(f"{field}: JSON value is nested too deeply") from None


def _copy(value: object) -> JsonValue:
    # Exact types only: a subclass (an enum, say) would not read back as itself.
    kind = type(value)
    if kind is str:
        text = cast(str, value)
        if "\x00" in text or not text.isascii():  # the common ASCII case needs no call
            _check_json_text(text)
        return value
    if value is None or kind is bool:
        return value
    if kind is int:
        if cast(int, value).bit_length() > _MAX_INT_BITS:
            raise _JsonPathError("integer has more than 4,000 digits")
        return value
    if kind is float:
        number = cast(float, value)
        if not math.isfinite(number):
            raise _JsonPathError(f"{number!r} is not representable in JSON")
        return number if number != 0.0 else 0.0  # Postgres' numeric has no negative zero
    if kind is dict:
        copied: dict[str, JsonValue] = {}
        for key, item in cast(dict[object, object], value).items():
            if type(key) is not str:
                raise _JsonPathError(f"object key {key!r} is not a str")
            if "\x00" in key or not key.isascii():
                _check_json_text(key)
            try:
                copied[key] = _copy(item)
            except _JsonPathError as exc:
                exc.path.append(f"[{key!r}]")
                raise
        return copied
    if kind is list or kind is tuple:
        items: list[JsonValue] = []
        for index, item in enumerate(cast(list[object], value)):
            try:
                items.append(_copy(item))
            except _JsonPathError as exc:
                exc.path.append(f"[{index}]")
                raise
        return items
    raise _JsonPathError(f"{kind.__name__} object is not a JSON value")


def _check_json_text(text: str) -> None:
    try:
        check_text(text)
    except ValueError as exc:
        raise _JsonPathError(f"string {exc}") from None


_EXPONENT_HINT = re.compile(r"\de[+-]\d")
_STRING_OR_EXPONENT_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?e[+-]\d+')


def _keep_float_integral(match: re.Match[str]) -> str:
    token = match.group()
    if token.startswith('"'):
        return token
    number = float(token)
    return f"{int(number)}.0" if number.is_integer() else token


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps_json(value: JsonValue) -> str:
    """Serialize a value that :func:`normalize_json` accepted."""
    text = _ENCODER.encode(value)
    if _EXPONENT_HINT.search(text) is None:
        return text
    return _STRING_OR_EXPONENT_NUMBER.sub(_keep_float_integral, text)


def loads_json(text: str) -> JsonValue:
    """Parse JSON text written by :func:`dumps_json`."""
    return json.loads(text)
