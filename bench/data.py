"""The rows every benchmark writes and reads, and how the raw side encodes them.

Both sides get the same field values from :func:`result_fields`. runstore receives them as
an ``AddRunResultInput``; the raw drivers receive them encoded exactly as runstore's column
types encode them (:mod:`runstore.types`): JSON text from :func:`runstore.jsonvalues.dumps_json`,
and on SQLite timestamps as fixed-width UTC text.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from runstore.jsonvalues import JsonValue, dumps_json
from runstore.schema import DATASET_RUN_RESULTS_SCHEMA, DATASET_RUNS_SCHEMA

__all__ = [
    "BASE_TIME",
    "DATASET_VERSION",
    "RESULT_COLUMNS",
    "RUN_COLUMNS",
    "ResultFields",
    "new_id",
    "result_fields",
    "result_rows",
    "sqlite_json",
    "sqlite_timestamp",
]

RESULT_COLUMNS: tuple[str, ...] = tuple(DATASET_RUN_RESULTS_SCHEMA)
"""The results table's columns, in table order (runstore's INSERT uses this order)."""
RUN_COLUMNS: tuple[str, ...] = tuple(DATASET_RUNS_SCHEMA)

BASE_TIME = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
DATASET_VERSION = datetime(2026, 11, 1, tzinfo=UTC)

ResultFields = dict[str, Any]
"""The fields of one result, by attribute name, as a caller would hand them to runstore."""


def new_id() -> str:
    """An id like runstore's own (a uuid4 string)."""
    return str(uuid.uuid4())


def result_fields(run_id: str, index: int) -> ResultFields:
    """The ``index``-th result of a run: a typical evaluation row of about 400 bytes.

    Results come in pairs that share ``started_at`` (ties happen with parallel workers),
    so the ``(startedAt, id)`` order is exercised. One in 50 is an error without output.
    """
    started = BASE_TIME + timedelta(milliseconds=10 * (index // 2))
    failed = index % 50 == 49
    return {
        "run_id": run_id,
        "item_id": f"item-{index:07d}",
        "item_version": DATASET_VERSION,
        "input": {
            "question": f"Question {index}: can order #{100000 + index} be refunded?",
            "context": ["refund-policy", "shipping-faq", f"order-{index % 997}"],
            "locale": "en-GB",
            "turn": index % 7,
        },
        "output": None if failed else f"Yes: order #{100000 + index} is within 30 days.",
        "expected_output": {"answer": "yes", "cites": ["refund-policy"], "score": 0.75},
        "latency": 250.0 + (index * 37) % 1900 + 0.125,
        "error": "TimeoutError: target did not answer within 30 s" if failed else None,
        "started_at": started,
        "completed_at": started + timedelta(milliseconds=250 + (index * 37) % 1900),
        "retry_count": 1 if failed else 0,
    }


def sqlite_timestamp(moment: datetime) -> str:
    """runstore's SQLite timestamp text: ``2026-11-24T05:33:56.123456Z`` (UTC, fixed width)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def sqlite_json(value: JsonValue, *, nullable: bool) -> str | None:
    """runstore's SQLite JSON text; ``None`` in a nullable column is SQL NULL."""
    if value is None and nullable:
        return None
    return dumps_json(value)


def result_rows(
    run_id: str, count: int, created_at: datetime, *, start: int = 0
) -> Iterator[tuple[str, ResultFields]]:
    """``count`` results of ``run_id`` with fresh ids, for seeding (``created_at`` is fixed)."""
    for index in range(start, start + count):
        fields = result_fields(run_id, index)
        fields["created_at"] = created_at
        yield new_id(), fields
