"""Where runstore reads the time and makes ids."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

__all__ = ["new_id", "utc_now", "utc_now_after"]

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


def utc_now_after(previous: datetime) -> datetime:
    """The current instant, or just after ``previous`` if the clock has not passed it.

    Guards ``updated_at`` against clocks of other processes or machines that run behind.
    """
    return max(utc_now(), previous + _TICK)


def new_id() -> str:
    """A fresh random id (uuid4, as a string)."""
    return str(uuid.uuid4())
