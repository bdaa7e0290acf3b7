"""JSON values: what runstore accepts, how it writes them, how it reads them back.

One set of rules for every backend, so a value reads back the same from SQLite, Postgres
and memory:

* Accepted: ``dict`` with ``str`` keys, ``list``/``tuple`` (read back as ``list``), ``str``,
  ``int``, finite ``float``, ``bool`` and ``None``, nested up to
  :data:`~runstore.limits.MAX_JSON_DEPTH` levels. Subclasses (an ``IntEnum``, a
  ``StrEnum``, an ``OrderedDict``) are stored as the plain JSON value and read back as the
  plain type, as :mod:`json` writes them.
* Refused with a ``ValueError`` naming the field and the position inside it: NaN and
  infinities, other objects, non-string keys, strings holding NUL (``\\x00``, which
  Postgres cannot store) or unpaired surrogates (not UTF-8), integers over
  :data:`~runstore.limits.MAX_INT_DIGITS` digits, and nesting deeper than
  :data:`~runstore.limits.MAX_JSON_DEPTH` levels.
* Negative zero is stored as ``0.0``: Postgres' ``numeric`` has no negative zero, and the
  value must read back the same everywhere.
* Written as compact UTF-8 JSON. A float with an integral value that Python would write in
  exponent form (``1e+16``) is written with a fraction (``10000000000000000.0``) so that
  Postgres' ``jsonb``, which stores numbers as ``numeric``, gives a float back, not an int.
* Read back by :func:`loads_json`, which also reads values nested deeper than Python's
  recursion allows (stored before the depth limit existed), so a stored row can always
  be read.

Values are written and read by orjson, several times faster than :mod:`json`; the few it
cannot handle exactly -- integers beyond 64 bits, nesting past its own limit of 254
levels -- go through :mod:`json`, which writes and reads them the same way.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from typing import TypeAlias
from typing import cast

import orjson

from runstore.limits import MAX_INT_DIGITS
from runstore.limits import MAX_JSON_DEPTH

__all__ = [
    "JsonValue",
    "check_text",
    "dumps_json",
    "loads_json",
    "normalize_json",
]

JsonValue: TypeAlias = Any
"""Any JSON value: dict, list, str, int, float, bool or None."""

_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, check_circular=False, separators=(",", ":")
)
_DECODER = json.JSONDecoder()
_TOO_DEEP = f"JSON value is nested too deeply (more than {MAX_JSON_DEPTH} levels)"


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
    """A validated deep copy of ``value``, detached from the caller's objects.

    Raises:
        ValueError: ``value`` is not a JSON value runstore can store; the message names
            ``field`` and the position of the offending part.
    """
    if _plain_scalar(value):
        return value
    copy = _quick_copy(value)
    if copy is not _NOT_QUICK:
        return copy
    try:
        return _copy(value, 0)
    except _JsonPathError as exc:
        path = list(reversed(exc.path))
        if len(path) > 8:  # deep inside: the start and the end of the way there
            path = [*path[:4], "...", *path[-3:]]
        raise ValueError(f"{field}{''.join(path)}: {exc.message}") from None
    except RecursionError:  # the caller's own stack was nearly full
        raise ValueError(f"{field}: {_TOO_DEEP}") from None


_NOT_QUICK = object()
_INT_BOUND = 10**MAX_INT_DIGITS
_INT64 = 2**63
_NEEDS_NORMALIZING = re.compile(rb"\\u0000|-0\.0")  # NUL, which Postgres refuses; -0.0


def _plain_scalar(value: object) -> bool:
    """None, a bool, a 64-bit int or ASCII text without NUL: stored as it is."""
    kind = type(value)
    if value is None or kind is bool:
        return True
    if kind is int:
        return -_INT64 <= cast(int, value) < _INT64
    return kind is str and cast(str, value).isascii() and "\x00" not in cast(str, value)


def _quick_copy(value: object) -> JsonValue:
    """The common case in C: write the value, read it back, check nothing changed.

    Returns ``_NOT_QUICK`` whenever the walk in :func:`_copy` must decide -- an error, or a
    value that needs normalizing or checking (tuples, negative zero, NUL, NaN, other
    objects orjson would write as strings or lists, deep nesting, big integers) -- so both
    paths accept exactly the same values.
    """
    try:
        text = orjson.dumps(value)  # refuses surrogates, big ints and non-str keys
    except orjson.JSONEncodeError:
        return _NOT_QUICK
    if _NEEDS_NORMALIZING.search(text) is not None or (
        len(text) > 2 * MAX_JSON_DEPTH and text.count(b"[") + text.count(b"{") > MAX_JSON_DEPTH
    ):
        return _NOT_QUICK
    copy = orjson.loads(text)  # at most 64-bit integers, so read back exactly
    try:
        same = copy == value  # NaN (written as null), tuples, dates... differ
    except RecursionError:
        return _NOT_QUICK
    return copy if same else _NOT_QUICK


def _copy(value: object, depth: int) -> JsonValue:
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
        number = cast(int, value)
        if abs(number) >= _INT_BOUND:
            raise _JsonPathError(f"integer has more than {MAX_INT_DIGITS:,} digits")
        return value
    if kind is float:
        real = cast(float, value)
        if not math.isfinite(real):
            raise _JsonPathError(f"{real!r} is not representable in JSON")
        return real if real != 0.0 else 0.0  # Postgres' numeric has no negative zero
    if isinstance(value, dict | list | tuple) and depth >= MAX_JSON_DEPTH:
        raise _JsonPathError(_TOO_DEEP)
    if isinstance(value, dict):
        copied: dict[str, JsonValue] = {}
        for key, item in cast(dict[object, object], value).items():
            if not isinstance(key, str):
                raise _JsonPathError(f"object key {key!r} is not a str")
            key = str.__str__(key)  # a StrEnum key, say, as its plain text
            if "\x00" in key or not key.isascii():
                _check_json_text(key)
            try:
                copied[key] = _copy(item, depth + 1)
            except _JsonPathError as exc:
                exc.path.append(f"[{key!r}]")
                raise
        return copied
    if isinstance(value, list | tuple):
        items: list[JsonValue] = []
        for index, item in enumerate(cast(list[object], value)):
            try:
                items.append(_copy(item, depth + 1))
            except _JsonPathError as exc:
                exc.path.append(f"[{index}]")
                raise
        return items
    if isinstance(value, str | int | float):  # a subclass, an enum say: as json writes it
        try:
            plain = json.loads(_ENCODER.encode(value))
        except ValueError:  # NaN or infinity in a float subclass, or a huge int
            raise _JsonPathError(f"{value!r} is not representable in JSON") from None
        return _copy(plain, depth)
    raise _JsonPathError(f"{kind.__name__} object is not a JSON value")


def _check_json_text(text: str) -> None:
    try:
        check_text(text)
    except ValueError as exc:
        raise _JsonPathError(f"string {exc}") from None


_STRING_OR_EXPONENT_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?e[+-]?\d+')

_EXPONENT_FROM = 1e16
"""orjson writes a float of this size or more in exponent form (``1e16``), which reads
back the same float but not as one written with ``.0``: such integral floats are
rewritten (:func:`_keep_float_integral`)."""

_PAST_64_BITS = 9.2e18
"""orjson reads an integer of 64 bits or less exactly and one past them as a float, at
least this far from zero: a float this large in what it read may have been such an
integer."""


def _has_float(value: JsonValue, beyond: float, *, integral: bool) -> bool:
    """Whether ``value`` holds a float at least ``beyond`` from zero (and integral, if
    ``integral``): one pass over its containers, on an explicit stack."""
    kind = type(value)
    if kind is float:
        return _is_beyond(cast(float, value), beyond, integral)
    if kind is not dict and kind is not list:
        return False
    stack: list[Any] = [value]
    pop, push = stack.pop, stack.append
    while stack:
        container = pop()
        for item in container.values() if type(container) is dict else container:
            kind = type(item)
            if kind is dict or kind is list:
                push(item)
            elif kind is float and _is_beyond(item, beyond, integral):
                return True
    return False


def _is_beyond(number: float, beyond: float, integral: bool) -> bool:
    return not -beyond < number < beyond and (not integral or number.is_integer())


def _keep_float_integral(match: re.Match[str]) -> str:
    token = match.group()
    if token.startswith('"'):
        return token
    number = float(token)
    return f"{int(number)}.0" if number.is_integer() else token


def dumps_json(value: JsonValue) -> str:
    """The stored text of a value that :func:`normalize_json` accepted."""
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, or 255+ levels of nesting
        text = _ENCODER.encode(value)
    if not _has_float(value, _EXPONENT_FROM, integral=True):
        return text
    return _STRING_OR_EXPONENT_NUMBER.sub(_keep_float_integral, text)


def loads_json(text: str) -> JsonValue:
    """Read stored JSON text back, however deeply it nests, every integer exact.

    orjson reads it, then one look over what it read for a float large enough to have been
    an integer past 64 bits; only then is the text read again, by :mod:`json`, which
    keeps every integer (no scan of the text itself, which costs more than reading it).
    An empty object or list, the most common values of a few columns, is made at once.
    """
    if len(text) == 2:
        if text == "{}":
            return {}
        if text == "[]":
            return []
    try:
        value: JsonValue = orjson.loads(text)
    except orjson.JSONDecodeError:  # nested past orjson's limit; json says the rest
        pass
    else:
        if not _has_float(value, _PAST_64_BITS, integral=False):
            return value
    try:
        return _DECODER.decode(text)
    except RecursionError:
        return _loads_without_recursion(text)


_TOKEN = re.compile(
    r'\s*(?:(?P<open>[\[{])|(?P<close>[\]}])|(?P<string>"(?:[^"\\]|\\.)*")'
    r"|(?P<scalar>[^\s,:\[\]{}\"]+)|(?P<punctuation>[,:]))"
)


def _loads_without_recursion(text: str) -> JsonValue:
    """:func:`json.loads` for text nested too deeply for the recursive C decoder.

    Only for valid JSON (what runstore itself wrote): containers are built on an explicit
    stack, and strings and scalars are read by :mod:`json` one token at a time.
    """
    stack: list[tuple[list[Any] | dict[str, Any], list[str]]] = []
    result: JsonValue = None
    position = 0
    while True:
        match = _TOKEN.match(text, position)
        if match is None:
            break
        position = match.end()
        kind = match.lastgroup
        token = match.group(kind or 0)
        if kind == "punctuation":
            continue
        if kind == "open":
            stack.append(([], []) if token == "[" else ({}, []))
            continue
        if kind == "close":
            value: JsonValue = stack.pop()[0]
        else:
            value = json.loads(token)
        if not stack:
            result = value
            continue
        container, pending_key = stack[-1]
        if isinstance(container, list):
            container.append(value)
        elif pending_key:
            container[pending_key.pop()] = value
        else:
            pending_key.append(value)
    return result
