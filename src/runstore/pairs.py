"""A metadata pair as a person types it: ``KEY=VALUE``.

The one rule for the command line's ``--meta`` and the viewer's ``meta=``: the key ends at
the first ``=``; the value is read as JSON when it parses as JSON (``1``, ``2.5``,
``true``, ``null``, ``"7"``, ``[1, 2]``) and taken as the text it is otherwise
(``gpt-4o``), so a text that would read as JSON is given quoted (``build="1234"``).
:func:`pair_text` writes a pair so that :func:`read_pair` reads it back the same.
"""

from __future__ import annotations

import json
import math
import re

from runstore.jsonvalues import JsonValue
from runstore.jsonvalues import normalize_json

__all__ = ["pair_text", "read_pair"]


class _NotJsonError(ValueError):
    """``NaN`` or ``Infinity``: Python's :mod:`json` reads them; JSON has no such words."""


def _not_json(word: str) -> object:
    raise _NotJsonError(word)


def _json(text: str) -> tuple[bool, JsonValue]:
    """Whether ``text`` is one JSON value, and the value (checked as the storage checks
    JSON: a number past the largest double or of too many digits is refused)."""
    try:
        value = json.loads(text, parse_constant=_not_json)
    except (json.JSONDecodeError, _NotJsonError):
        return False, None
    except ValueError:  # JSON, but an integer of more digits than Python reads
        raise ValueError("an integer of too many digits to store") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("a number too large to hold in a double")
    return True, normalize_json(value, "the value")


def read_pair(text: str, *, scalar: bool = False) -> tuple[str, JsonValue]:
    """``KEY=VALUE`` as a key and its value (see the module docstring).

    Args:
        scalar: the value is a filter's, which compares a JSON scalar: an object or a
            list is refused.

    Raises:
        ValueError: no ``=``, or no key before it; a value JSON or the storage cannot hold
            (``1e999``); with ``scalar``, an object or a list. The message says which,
            naming the text.
    """
    key, equals, value_text = text.partition("=")
    if not equals:
        raise ValueError(f"{text!r:.80} is not KEY=VALUE: it has no '='")
    if not key:
        raise ValueError(f"{text!r:.80} has no key before the '='")
    try:
        parsed, value = _json(value_text)
    except ValueError as exc:
        raise ValueError(f"{text!r:.80}: {str(exc).splitlines()[0]}") from None
    if not parsed:
        return key, value_text
    if scalar and isinstance(value, dict | list):
        kind = "an object" if isinstance(value, dict) else "a list"
        raise ValueError(
            f"{text!r:.80}: a filter compares a JSON scalar (a string, number, true, false "
            f"or null), not {kind}; to match this text, give it as a JSON string "
            f"({key}={json.dumps(value_text, ensure_ascii=False)})"
        )
    return key, value


_BARE = re.compile(r"\S(?:[^\x00-\x1f\x7f]*\S)?")
"""Text written as it is after ``KEY=``: no control characters, no space at either end."""


def pair_text(key: str, value: JsonValue) -> str | None:
    """``KEY=VALUE`` as :func:`read_pair` reads it back: a string bare when it would read
    back as itself, anything else as JSON. None when no text can: an empty key, or one
    holding ``=``."""
    if not key or "=" in key:
        return None
    if isinstance(value, str) and _BARE.fullmatch(value):
        try:
            bare = not _json(value)[0]
        except ValueError:
            bare = False
        if bare:
            return f"{key}={value}"
    return f"{key}={json.dumps(value, ensure_ascii=False)}"
