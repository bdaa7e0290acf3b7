"""Where runstore reads the time and makes ids."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["Clock", "moved_forward", "new_id", "utc_now"]

_lock = threading.Lock()
_last = datetime.min.replace(tzinfo=UTC)
_TICK = timedelta(microseconds=1)


def utc_now() -> datetime:
    """The current instant in UTC, strictly later than any earlier call in this process.

    Two calls within one microsecond (or across a backwards clock step) still give
    increasing values, so ``updated_at`` always moves forward.
    """
    global _last
    with _lock:
        now = datetime.now(UTC)
        _last = now if now > _last else _last + _TICK
        return _last


Clock = Callable[[], datetime]
"""Gives the current instant, timezone-aware."""


def moved_forward(now: datetime, previous: datetime) -> datetime:
    """``now``, or just after ``previous`` if ``now`` has not passed it.

    Keeps ``updated_at`` moving forward even when another process's clock runs behind.
    """
    return max(now, previous + _TICK)


def new_id() -> str:
    """A fresh random id (uuid4, as a string)."""
    return str(uuid.uuid4())
