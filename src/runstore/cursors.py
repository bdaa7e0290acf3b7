"""Opaque keyset cursors: where the next page of a list starts.

A cursor holds the sort key of the last row of a page -- (``created_at``, ``id``) for runs,
(``started_at``, ``id``) for results -- and the list it belongs to (kind and filters), so a
cursor from another list is refused instead of silently reading the wrong rows. It is
URL-safe base64 of a small JSON document; its content is not part of the API.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from runstore.errors import InvalidInputError

__all__ = ["CursorKind", "Position", "decode_cursor", "encode_cursor"]

CursorKind = Literal["runs", "results"]
_VERSION = 1


@dataclass(frozen=True, slots=True)
class Position:
    """The sort key of a row: its timestamp and id."""

    moment: datetime
    id: str


def _scope_digest(kind: CursorKind, scope: Sequence[str | None]) -> str:
    text = json.dumps([kind, *scope], separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def encode_cursor(kind: CursorKind, scope: Sequence[str | None], position: Position) -> str:
    """A cursor for the page after ``position`` of the list ``kind`` filtered by ``scope``."""
    document = {
        "v": _VERSION,
        "k": kind,
        "s": _scope_digest(kind, scope),
        "t": position.moment.isoformat(),
        "i": position.id,
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(token: str, kind: CursorKind, scope: Sequence[str | None]) -> Position:
    """The position a cursor points after.

    Raises:
        InvalidInputError: the cursor is malformed, or belongs to another list.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = json.loads(raw.decode())
        version, cursor_kind, digest = document["v"], document["k"], document["s"]
        moment = datetime.fromisoformat(document["t"])
        row_id = document["i"]
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"malformed cursor {token[:40]!r}") from exc
    if version != _VERSION or not isinstance(row_id, str) or moment.tzinfo is None:
        raise InvalidInputError(f"malformed cursor {token[:40]!r}")
    if cursor_kind != kind or digest != _scope_digest(kind, scope):
        raise InvalidInputError(
            f"this cursor belongs to another list (of {cursor_kind}, or other filters): "
            f"pass it only to the list it came from"
        )
    return Position(moment, row_id)
