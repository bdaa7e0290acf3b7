"""Opaque keyset cursors: where the next page of a list starts.

A cursor holds the sort key of the last row of a page -- (``created_at``, ``id``) for runs,
(``started_at``, ``id``) or (``latency``, ``id``) for results -- and the list it belongs to
(kind, filters and order), so a cursor from another list is refused instead of silently
reading the wrong rows. It is
URL-safe base64 of a small JSON document with a checksum; its content is not part of the
API. Anything else given as a cursor -- whatever its bytes -- is an
:class:`~runstore.errors.InvalidInputError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Literal

from runstore.errors import InvalidInputError
from runstore.jsonvalues import check_text
from runstore.limits import MAX_CURSOR_LENGTH
from runstore.limits import MAX_ID_LENGTH

__all__ = ["CursorKind", "Position", "decode_cursor", "encode_cursor"]

CursorKind = Literal["runs", "results"]
_VERSION = 3
_CHECKSUM_KEY = b"runstore cursor"


@dataclass(frozen=True, slots=True)
class Position:
    """The sort key of a row: a timestamp (UTC) or a number, then its id."""

    key: datetime | float
    id: str


def _scope_digest(kind: CursorKind, scope: Sequence[str | None]) -> str:
    text = json.dumps([kind, *scope], separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _checksum(fields: list[object]) -> str:
    text = json.dumps(fields, separators=(",", ":"), ensure_ascii=True)
    return hashlib.blake2b(text.encode(), key=_CHECKSUM_KEY, digest_size=8).hexdigest()


def encode_cursor(kind: CursorKind, scope: Sequence[str | None], position: Position) -> str:
    """A cursor for the page after ``position`` of the list ``kind`` filtered by ``scope``."""
    key = position.key
    fields: list[object] = [
        _VERSION,
        kind,
        _scope_digest(kind, scope),
        key.isoformat() if isinstance(key, datetime) else float(key),
        position.id,
    ]
    document = json.dumps([*fields, _checksum(fields)], separators=(",", ":"), ensure_ascii=True)
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def decode_cursor(token: str, kind: CursorKind, scope: Sequence[str | None]) -> Position:
    """The position a cursor points after.

    Raises:
        InvalidInputError: the cursor was not made by runstore (malformed, altered,
            or from an older version), or it belongs to another list.
    """
    fields = _read_fields(token)
    if fields is None:
        raise InvalidInputError(f"malformed cursor {str(token)[:40]!r}: pass back a next_cursor")
    _, cursor_kind, digest, key, row_id = fields
    if cursor_kind != kind or digest != _scope_digest(kind, scope):
        raise InvalidInputError(
            f"this cursor belongs to another list (of {cursor_kind}, or other filters): "
            f"pass it only to the list it came from"
        )
    return Position(key, row_id)


def _read_fields(token: object) -> tuple[int, str, str, datetime | float, str] | None:
    """The cursor's fields if runstore made it, else None."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_CURSOR_LENGTH:
        return None
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        document = json.loads(raw.decode("ascii"))
    except (binascii.Error, ValueError, RecursionError):  # UnicodeError is a ValueError
        return None
    if not isinstance(document, list) or len(document) != 6:
        return None
    *fields, checksum = document
    if not isinstance(checksum, str) or not hmac.compare_digest(checksum, _checksum(fields)):
        return None
    version, kind, digest, key_value, row_id = fields
    if version != _VERSION or kind not in ("runs", "results") or not isinstance(digest, str):
        return None
    if not isinstance(row_id, str) or not 0 < len(row_id) <= MAX_ID_LENGTH:
        return None
    try:
        check_text(row_id)
    except ValueError:
        return None
    key = _read_key(key_value)
    return None if key is None else (version, kind, digest, key, row_id)


def _read_key(value: object) -> datetime | float | None:
    """A timestamp in UTC, or a finite float."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.utcoffset() == timedelta(0) else None
