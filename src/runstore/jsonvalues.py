"""JSON values: what runstore accepts, how it writes them, how it reads them back.

One set of rules for every backend, so a value reads back the same from SQLite, Postgres
and memory:

* Accepted: ``dict`` with ``str`` keys, ``list``/``tuple`` (read back as ``list``), ``str``,
  ``int``, finite ``float``, ``bool`` and ``None``, nested freely. Subclasses (an
  ``IntEnum``, a ``StrEnum``, an ``OrderedDict``) are stored as the plain JSON value and
  read back as the plain type, as :mod:`json` writes them.
* Refused with a ``ValueError`` naming the field and the position inside it: NaN and
  infinities, other objects, non-string keys, strings holding NUL (``\\x00``, which
  Postgres cannot store) or unpaired surrogates (not UTF-8), integers over 4,000 digits,
  and nesting deeper than Python can recurse.
* Negative zero is stored as ``0.0``: Postgres' ``numeric`` has no negative zero, and the
  value must read back the same everywhere.
* Written as compact UTF-8 JSON. A float with an integral value that Python would write in
  exponent form (``1e+16``) is written with a fraction (``10000000000000000.0``) so that
  Postgres' ``jsonb``, which stores numbers as ``numeric``, gives a float back, not an int.
"""

from __future__ import annotations

import json
import json.scanner
import math
import re
from collections.abc import Callable
from typing import Any, TypeAlias, cast

__all__ = [
    "EncodedJson",
    "JsonValue",
    "check_text",
    "dumps_json",
    "loads_json",
    "normalize_json",
    "normalize_json_text",
]

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


class EncodedJson(str):
    """JSON text already written by :func:`dumps_json`; stored as it is."""

    __slots__ = ()


def normalize_json(value: object, field: str) -> JsonValue:
    """Return a validated deep copy of ``value``, detached from the caller's objects.

    Raises:
        ValueError: ``value`` is not a JSON value runstore can store; the message names
            ``field`` and the position of the offending part.
    """
    return normalize_json_text(value, field)[0]


def normalize_json_text(value: object, field: str) -> tuple[JsonValue, EncodedJson | None]:
    """:func:`normalize_json`, and the copy's JSON text when it was written on the way.

    The text is what :func:`dumps_json` would give for the copy, so a caller about to store
    the value need not write it again.
    """
    copy, text = _quick_copy(value)
    if copy is not _NOT_QUICK:
        return copy, text
    return _checked_copy(value, field), None


def _checked_copy(value: object, field: str) -> JsonValue:
    try:
        return _copy(value)
    except _JsonPathError as exc:
        where = field + "".join(reversed(exc.path))
        raise ValueError(f"{where}: {exc.message}") from None
    except RecursionError:
        raise ValueError(f"{field}: JSON value is nested too deeply") from None


_NOT_QUICK = object()
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _not_json(value: object) -> object:
    raise TypeError(f"{type(value).__name__} object is not a JSON value")


def _make_encode() -> Callable[[object], str]:
    """``_ENCODER.encode``, without building a new C encoder on every call as it does."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator on this interpreter
        return _ENCODER.encode
    # No circularity check: a cycle recurses until RecursionError, which callers handle.
    chunks = make(
        None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )

    def encode(value: object) -> str:
        if type(value) is str:  # the C encoder writes only containers and numbers whole
            return json.encoder.encode_basestring(value)
        return "".join(chunks(value, 0))

    return encode


_encode = _make_encode()


def _make_decode() -> Callable[[str], JsonValue]:
    """``json.loads``, straight to the C scanner for the text this module writes (no
    surrounding whitespace); anything else goes the long way, errors included."""
    make = getattr(json.scanner, "c_make_scanner", None)
    if make is None:
        return json.loads
    scan = make(json.JSONDecoder())

    def decode(text: str) -> JsonValue:
        try:
            value, end = scan(text, 0)
        except (StopIteration, ValueError):
            return json.loads(text)
        return value if end == len(text) else json.loads(text)

    return decode


_decode = _make_decode()


def _is_utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _quick_copy(value: object) -> tuple[JsonValue, EncodedJson | None]:
    """The common case in C: write the value, read it back, check nothing changed.

    Returns the copy and its storage text, or ``_NOT_QUICK`` (and no text) whenever the
    walk in :func:`_copy` must decide -- an error, or a value that needs normalizing
    (tuples, negative zero, text to check) -- so both paths accept the same values.
    """
    try:
        text = _encode(value)
    except (TypeError, ValueError, RecursionError):
        return _NOT_QUICK, None
    if "\\u0000" in text or "-0.0" in text or not _is_utf8(text):
        return _NOT_QUICK, None
    copy = _decode(text)
    if copy != value:
        return _NOT_QUICK, None
    return copy, EncodedJson(_keep_floats_floats(text))


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
    if isinstance(value, dict):
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
    if isinstance(value, list | tuple):
        items: list[JsonValue] = []
        for index, item in enumerate(cast(list[object], value)):
            try:
                items.append(_copy(item))
            except _JsonPathError as exc:
                exc.path.append(f"[{index}]")
                raise
        return items
    if isinstance(value, str | int | float):  # a subclass, an enum say: as json writes it
        try:
            plain = json.loads(_ENCODER.encode(value))
        except ValueError:  # NaN or infinity in a float subclass
            raise _JsonPathError(f"{value!r} is not representable in JSON") from None
        return _copy(plain)
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


def _keep_floats_floats(text: str) -> str:
    if _EXPONENT_HINT.search(text) is None:
        return text
    return _STRING_OR_EXPONENT_NUMBER.sub(_keep_float_integral, text)


def dumps_json(value: JsonValue) -> str:
    """Serialize a value that :func:`normalize_json` accepted."""
    if type(value) is EncodedJson:
        return str(value)
    return _keep_floats_floats(_encode(value))


def loads_json(text: str) -> JsonValue:
    """Parse JSON text written by :func:`dumps_json`."""
    return _decode(text)
