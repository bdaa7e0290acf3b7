"""Portable SQL column types: where timestamps are made UTC and JSON is written and read.

* :class:`UTCDateTime` -- ``timestamptz`` on Postgres; on SQLite fixed-width ISO-8601 text
  in UTC (``2026-11-24T05:33:56.123456Z``), which sorts in time order and keeps every
  microsecond. Naive datetimes are refused; aware ones come back in UTC.
* :class:`ScoreMapColumn` -- a result's scores, as a column of its row (see
  :func:`runstore.sql.compiler.scores_of`).
* :class:`JsonColumn` -- ``jsonb`` on Postgres, text elsewhere, written once by
  :func:`runstore.jsonvalues.dumps_json` and read by :func:`runstore.jsonvalues.loads_json`
  (on Postgres the column is selected as text, so runstore reads every stored value
  itself, however deeply it nests). In a nullable column ``None`` is SQL NULL
  ("no value"); in a NOT NULL column it is the JSON ``null``. Both read back as ``None``.

SQLAlchemy applies both in every statement runstore sends, in both directions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from runstore.jsonvalues import JsonValue
from runstore.jsonvalues import dumps_json
from runstore.jsonvalues import loads_json
from runstore.schema import ColumnType

__all__ = [
    "JsonColumn",
    "ScoreMapColumn",
    "UTCDateTime",
    "sql_type",
]

_SQLITE_TIMESTAMP_WIDTH = len("0001-01-01T00:00:00.000000Z")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """An aware instant, stored exactly (microseconds, UTC) on every backend."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(_SQLITE_TIMESTAMP_WIDTH))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any]:
        # Written out rather than as process_bind_param: it runs for every timestamp of
        # every row written, and most are already in UTC.
        sqlite = dialect.name == "sqlite"

        def process(value: datetime | None) -> Any:
            if value is None:
                return None
            if value.tzinfo is not UTC:
                if value.tzinfo is None or value.utcoffset() is None:
                    moment = value.isoformat()
                    raise ValueError(f"naive datetime {moment} refused: give it a timezone")
                if not sqlite:
                    return value
                try:
                    value = value.astimezone(UTC)
                except OverflowError:
                    moment = value.isoformat()
                    raise ValueError(f"{moment} lies outside the years 1-9999 in UTC") from None
            if not sqlite:
                return value
            return value.isoformat(timespec="microseconds")[:-6] + "Z"

        return process

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None]:
        if dialect.name == "sqlite":  # the fixed-width text, which ends in Z (UTC)
            return _from_text

        def in_utc(value: datetime | None) -> datetime | None:
            if value is None or value.tzinfo is UTC:
                return value
            if value.tzinfo is None:  # a backend without time zones: stored as UTC
                return value.replace(tzinfo=UTC)
            return value.astimezone(UTC)

        return in_utc


def _from_text(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class JsonColumn(sa.TypeDecorator[Any]):
    """Any JSON value; see the module docstring for how ``None`` is stored."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, *, none_as_null: bool) -> None:
        super().__init__()
        self.none_as_null = none_as_null

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB(none_as_null=self.none_as_null))
        return dialect.type_descriptor(sa.Text())

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any]:
        none_as_null = self.none_as_null
        if dialect.name == "postgresql":
            from psycopg.types.json import Jsonb

            def to_jsonb(value: JsonValue) -> Any:
                if value is None and none_as_null:
                    return None
                return Jsonb(dumps_json(value), dumps=_already_serialized)

            return to_jsonb

        def to_text(value: JsonValue) -> str | None:
            if value is None and none_as_null:
                return None
            return dumps_json(value)

        return to_text

    def column_expression(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        # Selected as text (a no-op on SQLite), so that loads_json reads every value.
        return sa.type_coerce(sa.cast(column, sa.Text()), self)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        return _loads_or_none

    def copy(self, **kwargs: Any) -> JsonColumn:
        return JsonColumn(none_as_null=self.none_as_null)


def _already_serialized(text: str) -> str:
    return text


def _loads_or_none(value: str | None) -> JsonValue:
    return None if value is None else loads_json(value)


def sql_type(column_type: ColumnType, *, nullable: bool) -> TypeEngine[Any]:
    """The SQLAlchemy type for a registry column type."""
    if column_type == "timestamp":
        return UTCDateTime()
    if column_type == "jsonb":
        return JsonColumn(none_as_null=nullable)
    simple: dict[ColumnType, TypeEngine[Any]] = {
        "text": sa.Text(),
        "integer": sa.Integer(),
        "float": sa.Double(),
    }
    return simple[column_type]


class ScoreMapColumn(sa.TypeDecorator[dict[str, float]]):
    """A result's scores as read: a JSON object of score name to value, written by
    :class:`~runstore.sql.compiler.score_map`; no scores (SQL NULL) reads as ``{}``."""

    impl = sa.Text
    cache_ok = True

    def column_expression(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.type_coerce(sa.cast(column, sa.Text()), self)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any]:
        return _score_map


def _score_map(value: str | None) -> dict[str, float]:
    if value is None:
        return {}
    return {name: float(text) for name, text in loads_json(value).items()}
