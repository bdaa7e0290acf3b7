"""The rows both sides write, and how the raw side encodes them before timing.

runstore gets the field values as a user gives them. The raw drivers get them encoded as
runstore's column types encode them (:mod:`runstore.types`): JSON text written by
:func:`runstore.jsonvalues.dumps_json` (in psycopg's ``Jsonb`` on Postgres, as runstore binds
it), SQLite timestamps as fixed-width UTC text, ids as uuid4 strings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from bench.iterate import read_batch
from runstore.jsonvalues import dumps_json
from runstore.schema import DATASET_RUN_RESULTS_SCHEMA
from runstore.schema import DATASET_RUN_SCORES_SCHEMA
from runstore.schema import DATASET_RUNS_SCHEMA
from runstore.schema import attribute_name
from runstore.tables import column_key

RESULT_COLUMNS = tuple(DATASET_RUN_RESULTS_SCHEMA)
"""The results table's column names, in order (for SQL text)."""
RESULT_KEYS = tuple(column_key(name) for name in RESULT_COLUMNS)
"""Their keys: the names runstore's statements bind their values by."""
SCORE_COLUMNS = tuple(DATASET_RUN_SCORES_SCHEMA)
SCORES = {
    "accuracy": "(CAST(latency AS INTEGER) % 101) / 100.0",
    "relevance": "(CAST(latency * 7 AS INTEGER) % 1001) / 1000.0",
}
"""The two scores each result of a scored run gets: SQL over the result's columns, values
in [0, 1] that vary with the latency (so a run with other latencies has other scores)."""
RUN_COLUMNS = tuple(name for name in DATASET_RUNS_SCHEMA if name != "summaryKey")
"""The runs table's columns that hold a run's fields (``summaryKey`` is the key of its kept
summary, which no run carries and ``create_run`` does not write)."""
RUN_KEYS = tuple(column_key(name) for name in RUN_COLUMNS)
JSON_COLUMNS = (
    *(n for n, c in enumerate(DATASET_RUN_RESULTS_SCHEMA.values()) if c.type == "jsonb"),
    len(DATASET_RUN_RESULTS_SCHEMA),
)
"""Positions of the JSON columns in a row of results as runstore reads them: the table's
JSON columns, and the result's scores (a JSON object, after the table's columns)."""
BASE_TIME = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def run_fields(total_items: int = 0) -> dict[str, Any]:
    """A run as a caller creates it, with what produced it (a name and metadata; tags,
    one row each in a table of their own, would make creating it a transaction of two
    statements against the raw side's one)."""
    return {
        "dataset_id": "bench",
        "dataset_version": datetime(2026, 11, 1, tzinfo=UTC),
        "target_type": "agent",
        "target_id": "support-bot",
        "total_items": total_items,
        "name": "support-bot on main",
        "metadata": {"model": "model-a", "prompt": 7, "commit": "4f9c2e1"},
    }


def result_fields(run_id: str, index: int, shift: int = 0) -> dict[str, Any]:
    """The ``index``-th result of a run: a typical evaluation row of about 450 bytes, with
    its tokens, cost and trace id (and, one in ten, metadata).

    Results come in pairs that share ``started_at`` (ties happen with parallel workers),
    so the ``(startedAt, id)`` order is exercised. One in 50 is an error without output.
    A run seeded with another ``shift`` has the same items with other latencies and
    errors (a candidate run to compare with a baseline).
    """
    started = BASE_TIME + timedelta(milliseconds=10 * (index // 2))
    varied = index + shift
    failed, took = varied % 50 == 49, 250 + (varied * 37) % 1900
    return {
        "run_id": run_id,
        "item_id": f"item-{index:07d}",
        "item_version": datetime(2026, 11, 1, tzinfo=UTC),
        "input": {
            "question": f"Question {index}: can order #{100000 + index} be refunded?",
            "context": ["refund-policy", "shipping-faq", f"order-{index % 997}"],
            "locale": "en-GB",
            "turn": index % 7,
        },
        "output": None if failed else f"Yes: order #{100000 + index} is within 30 days.",
        "expected_output": {"answer": "yes", "cites": ["refund-policy"], "score": 0.75},
        "latency": took + 0.125,
        "error": "TimeoutError: target did not answer within 30 s" if failed else None,
        "started_at": started,
        "completed_at": started + timedelta(milliseconds=took),
        "retry_count": 1 if failed else 0,
        "repetition": 0,
        "input_tokens": 180 + index % 400,
        "output_tokens": None if failed else 20 + index % 90,
        "cost": None if failed else (180 + index % 400) * 3e-6 + (20 + index % 90) * 1.5e-5,
        "trace_id": f"{index:032x}",
        "metadata": None if index % 10 else {"provider": "p", "cached": index % 20 == 0},
    }


def timestamp(dialect: str, moment: datetime) -> Any:
    """runstore's SQLite text (``2026-11-24T05:33:56.123456Z``); psycopg takes datetimes."""
    if dialect != "sqlite":
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _same(text: str) -> str:
    return text


def encode(dialect: str, values: Mapping[str, Any], *, run: bool = False) -> dict[str, Any]:
    """A results (or runs) row by column key, encoded for the driver, from values by
    attribute."""
    row = {}
    schema = DATASET_RUNS_SCHEMA if run else DATASET_RUN_RESULTS_SCHEMA
    for name in RUN_COLUMNS if run else RESULT_COLUMNS:
        column, value = schema[name], values[attribute_name(name)]
        if value is not None and column.type == "timestamp":
            value = timestamp(dialect, value)
        elif column.type == "jsonb" and not (value is None and column.nullable):
            value = dumps_json(value)
            value = value if dialect == "sqlite" else Jsonb(value, dumps=_same)
        row[column_key(name)] = value
    return row


def bind(dialect: str, names: Sequence[str], values: Mapping[str, Any]) -> Any:
    """Parameters for a caught statement: positional in ``names`` order on SQLite, by name
    on Postgres (``%(name)s``)."""
    if dialect == "sqlite":
        return tuple(values[name] for name in names)
    return {name: values[name] for name in names}


def decoded(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Rows with their JSON columns parsed by ``json.loads``, as a driver user reads them."""
    out = []
    for row in rows:
        values = list(row)
        for number in JSON_COLUMNS:
            if values[number] is not None:
                values[number] = json.loads(values[number])
        out.append(values)
    return out


def check_read_back(model: BaseModel | None, fields: Mapping[str, Any]) -> None:
    """What runstore read back is what was written."""
    assert model is not None
    for name, value in fields.items():
        assert getattr(model, name) == value, (name, getattr(model, name), value)


def read_results(dialect: str, connection: Any, sql: str, args: Any) -> Any:
    """The raw side of a read of results (:func:`bench.iterate.read_batch`)."""
    return read_batch(dialect, connection, sql, args)
