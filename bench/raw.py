"""The raw side: sqlite3 and psycopg 3 doing what runstore does, with nothing on top.

Same statements (:mod:`bench.sqltext`), same connection settings (runstore's SQLite pragmas,
``BEGIN IMMEDIATE`` for writes and ``BEGIN`` for reads; Postgres sessions in UTC), same value
encoding (:mod:`bench.data`), same transaction boundaries (one commit per call, the count
and the page of a listing in one transaction, ``REPEATABLE READ`` on Postgres). What it
returns is whatever the driver gives: tuples, not models.
"""

from __future__ import annotations

import abc
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bench.data import RESULT_COLUMNS, ResultFields, new_id, sqlite_json, sqlite_timestamp
from bench.sqltext import quote, statements
from runstore.engine import DEFAULT_SQLITE_PRAGMAS
from runstore.jsonvalues import JsonValue, dumps_json
from runstore.schema import TABLE_DATASET_RUN_RESULTS

__all__ = [
    "BATCH_CHUNK",
    "ONE_MICROSECOND",
    "RawPostgres",
    "RawSqlite",
    "RawStore",
    "postgres_conninfo",
    "sqlite_connect",
]

ONE_MICROSECOND = timedelta(microseconds=1)
BATCH_CHUNK = 1000
"""Rows per executemany in ``add_results``, as runstore chunks a batch."""
Key = tuple[Any, str]
"""A keyset position: (``startedAt`` as the driver returns it, ``id``)."""


class RawStore(abc.ABC):
    """One connection to the database, used the way runstore uses its connections."""

    @abc.abstractmethod
    def add_result(self, fields: ResultFields) -> str:
        """Record one result in its own transaction; the new id."""

    @abc.abstractmethod
    def add_results(self, batch: Sequence[ResultFields]) -> int:
        """Record results of one run in one transaction; the number written."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> tuple[Any, ...] | None: ...

    @abc.abstractmethod
    def update_run(self, run_id: str, status: str, failed_count: int) -> tuple[Any, ...]: ...

    @abc.abstractmethod
    def list_page(self, run_id: str, offset: int, limit: int) -> tuple[int, list[tuple[Any, ...]]]:
        """Count and one page by offset, in one snapshot."""

    @abc.abstractmethod
    def list_after(
        self, run_id: str, key: Key, limit: int, *, count: bool
    ) -> tuple[int | None, list[tuple[Any, ...]]]:
        """One page after ``key`` (keyset), with the count if ``count``, in one snapshot."""

    @abc.abstractmethod
    def key_at(self, run_id: str, offset: int) -> Key:
        """The keyset position of the row at ``offset`` (not measured)."""

    @abc.abstractmethod
    def seed(self, rows: Iterable[tuple[str, ResultFields]]) -> int:
        """Bulk-load results as fast as the driver allows (not measured)."""

    @abc.abstractmethod
    def close(self) -> None: ...


def sqlite_connect(path: str) -> sqlite3.Connection:
    """A sqlite3 connection set up as runstore sets up its own."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for name, value in DEFAULT_SQLITE_PRAGMAS.items():
        connection.execute(f"PRAGMA {name}={value}")
    return connection


def _sqlite_params(result_id: str, fields: ResultFields, created_at: datetime) -> tuple[Any, ...]:
    return (
        result_id,
        fields["run_id"],
        fields["item_id"],
        sqlite_timestamp(fields["item_version"]),
        sqlite_json(fields["input"], nullable=False),
        sqlite_json(fields["output"], nullable=True),
        sqlite_json(fields["expected_output"], nullable=True),
        fields["latency"],
        fields["error"],
        sqlite_timestamp(fields["started_at"]),
        sqlite_timestamp(fields["completed_at"]),
        fields["retry_count"],
        sqlite_timestamp(created_at),
    )


class RawSqlite(RawStore):
    """sqlite3 on a database file."""

    def __init__(self, path: str) -> None:
        self._sql = statements("sqlite")
        self._connection = sqlite_connect(path)

    def add_result(self, fields: ResultFields) -> str:
        result_id = new_id()
        params = (*_sqlite_params(result_id, fields, datetime.now(UTC)), fields["run_id"])
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            if connection.execute(self._sql.insert_result, params).rowcount == 0:
                raise LookupError(fields["run_id"])
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        return result_id

    def add_results(self, batch: Sequence[ResultFields]) -> int:
        created_at = datetime.now(UTC)
        (run_id,) = {fields["run_id"] for fields in batch}
        params = [_sqlite_params(new_id(), fields, created_at) for fields in batch]
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            if connection.execute(self._sql.require_runs, (run_id,)).fetchone() is None:
                raise LookupError(run_id)
            for start in range(0, len(params), BATCH_CHUNK):
                connection.executemany(
                    self._sql.insert_result_plain, params[start : start + BATCH_CHUNK]
                )
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        return len(params)

    def get_run(self, run_id: str) -> tuple[Any, ...] | None:
        connection = self._connection
        connection.execute("BEGIN")
        row: tuple[Any, ...] | None = connection.execute(self._sql.select_run, (run_id,)).fetchone()
        connection.commit()
        return row

    def update_run(self, run_id: str, status: str, failed_count: int) -> tuple[Any, ...]:
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            previous = connection.execute(self._sql.lock_run, (run_id,)).fetchone()
            if previous is None:
                raise LookupError(run_id)
            updated_at = max(
                datetime.now(UTC), datetime.fromisoformat(previous[0]) + ONE_MICROSECOND
            )
            row: tuple[Any, ...] = connection.execute(
                self._sql.update_run, (status, failed_count, sqlite_timestamp(updated_at), run_id)
            ).fetchone()
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        return row

    def list_page(self, run_id: str, offset: int, limit: int) -> tuple[int, list[tuple[Any, ...]]]:
        connection = self._connection
        connection.execute("BEGIN")
        total: int = connection.execute(self._sql.count_results, (run_id,)).fetchone()[0]
        rows: list[tuple[Any, ...]] = []
        if offset < total:
            page = self._sql.offset_page_results if offset else self._sql.first_page_results
            rows = connection.execute(page, (run_id, limit, offset)).fetchall()
        connection.commit()
        return total, rows

    def list_after(
        self, run_id: str, key: Key, limit: int, *, count: bool
    ) -> tuple[int | None, list[tuple[Any, ...]]]:
        connection = self._connection
        connection.execute("BEGIN")
        total: int | None = None
        if count:
            total = connection.execute(self._sql.count_results, (run_id,)).fetchone()[0]
        rows: list[tuple[Any, ...]] = connection.execute(
            self._sql.keyset_page_results, (run_id, key[0], key[1], limit, 0)
        ).fetchall()
        connection.commit()
        return total, rows

    def key_at(self, run_id: str, offset: int) -> Key:
        row = self._connection.execute(self._sql.key_at_offset, (run_id, offset)).fetchone()
        return row[0], row[1]

    def seed(self, rows: Iterable[tuple[str, ResultFields]]) -> int:
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        cursor = connection.executemany(
            self._sql.insert_result_plain,
            (_sqlite_params(result_id, fields, fields["created_at"]) for result_id, fields in rows),
        )
        connection.commit()
        return cursor.rowcount

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file (after seeding; not measured)."""
        self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._connection.close()


def postgres_conninfo(url: str) -> str:
    """A libpq connection string for a ``postgresql+psycopg://`` URL."""
    import sqlalchemy as sa

    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _already_serialized(text: str) -> str:
    return text


def _jsonb(value: JsonValue, *, nullable: bool) -> Jsonb | None:
    if value is None and nullable:
        return None
    return Jsonb(dumps_json(value), dumps=_already_serialized)


def _postgres_params(result_id: str, fields: ResultFields, created_at: datetime) -> tuple[Any, ...]:
    return (
        result_id,
        fields["run_id"],
        fields["item_id"],
        fields["item_version"],
        _jsonb(fields["input"], nullable=False),
        _jsonb(fields["output"], nullable=True),
        _jsonb(fields["expected_output"], nullable=True),
        fields["latency"],
        fields["error"],
        fields["started_at"],
        fields["completed_at"],
        fields["retry_count"],
        created_at,
    )


class RawPostgres(RawStore):
    """psycopg 3, one connection, a session in UTC (as runstore's engine sets it)."""

    def __init__(self, url: str) -> None:
        self._sql = statements("postgresql")
        self._connection = psycopg.connect(postgres_conninfo(url), options="-c TimeZone=UTC")

    def add_result(self, fields: ResultFields) -> str:
        result_id = new_id()
        params = (*_postgres_params(result_id, fields, datetime.now(UTC)), fields["run_id"])
        connection = self._connection
        try:
            if connection.execute(self._sql.insert_result, params).rowcount == 0:
                raise LookupError(fields["run_id"])
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        return result_id

    def add_results(self, batch: Sequence[ResultFields]) -> int:
        created_at = datetime.now(UTC)
        (run_id,) = {fields["run_id"] for fields in batch}
        params = [_postgres_params(new_id(), fields, created_at) for fields in batch]
        connection = self._connection
        try:
            if connection.execute(self._sql.require_runs, (run_id,)).fetchone() is None:
                raise LookupError(run_id)
            with connection.cursor() as cursor:
                for start in range(0, len(params), BATCH_CHUNK):
                    cursor.executemany(
                        self._sql.insert_result_plain, params[start : start + BATCH_CHUNK]
                    )
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        return len(params)

    def get_run(self, run_id: str) -> tuple[Any, ...] | None:
        connection = self._connection
        row = connection.execute(self._sql.select_run, (run_id,)).fetchone()
        connection.commit()
        return row

    def update_run(self, run_id: str, status: str, failed_count: int) -> tuple[Any, ...]:
        connection = self._connection
        try:
            previous = connection.execute(self._sql.lock_run, (run_id,)).fetchone()
            if previous is None:
                raise LookupError(run_id)
            updated_at = max(datetime.now(UTC), previous[0] + ONE_MICROSECOND)
            row = connection.execute(
                self._sql.update_run, (status, failed_count, updated_at, run_id)
            ).fetchone()
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        assert row is not None
        return row

    def list_page(self, run_id: str, offset: int, limit: int) -> tuple[int, list[tuple[Any, ...]]]:
        connection = self._connection
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        counted = connection.execute(self._sql.count_results, (run_id,)).fetchone()
        assert counted is not None
        total: int = counted[0]
        rows: list[tuple[Any, ...]] = []
        if offset:
            if offset < total:
                rows = connection.execute(
                    self._sql.offset_page_results, (run_id, limit, offset)
                ).fetchall()
        elif total:
            rows = connection.execute(self._sql.first_page_results, (run_id, limit)).fetchall()
        connection.commit()
        return total, rows

    def list_after(
        self, run_id: str, key: Key, limit: int, *, count: bool
    ) -> tuple[int | None, list[tuple[Any, ...]]]:
        connection = self._connection
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        total: int | None = None
        if count:
            counted = connection.execute(self._sql.count_results, (run_id,)).fetchone()
            assert counted is not None
            total = counted[0]
        rows = connection.execute(
            self._sql.keyset_page_results, (run_id, key[0], key[1], limit)
        ).fetchall()
        connection.commit()
        return total, rows

    def key_at(self, run_id: str, offset: int) -> Key:
        row = self._connection.execute(self._sql.key_at_offset, (run_id, offset)).fetchone()
        self._connection.commit()
        assert row is not None
        return row[0], row[1]

    def seed(self, rows: Iterable[tuple[str, ResultFields]]) -> int:
        columns = ", ".join(quote(name) for name in RESULT_COLUMNS)
        written = 0
        with (
            self._connection.cursor() as cursor,
            cursor.copy(f"COPY {TABLE_DATASET_RUN_RESULTS} ({columns}) FROM STDIN") as copy,
        ):
            for result_id, fields in rows:
                copy.write_row(_postgres_params(result_id, fields, fields["created_at"]))
                written += 1
        self._connection.commit()
        return written

    def close(self) -> None:
        self._connection.close()
