"""The raw side's SQL: the statements runstore emits, written out by hand.

Each statement has the shape runstore's SQLAlchemy Core emits for the same operation (see
``src/runstore/sql.py``; ``create_engine(..., echo=True)`` prints them), including the
bind casts SQLAlchemy's psycopg dialect adds on Postgres. Column names come from runstore's
column registry, so both sides always agree on the table layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from runstore.schema import (
    DATASET_RUN_RESULTS_SCHEMA,
    DATASET_RUNS_SCHEMA,
    TABLE_DATASET_RUN_RESULTS,
    TABLE_DATASET_RUNS,
    ColumnType,
)

__all__ = ["Dialect", "Statements", "quote", "statements"]

Dialect = Literal["sqlite", "postgresql"]

_POSTGRES_CASTS: dict[ColumnType, str] = {
    "text": "::VARCHAR",
    "uuid": "::UUID",
    "timestamp": "::TIMESTAMP WITH TIME ZONE",
    "jsonb": "::JSONB",
    "integer": "::INTEGER",
    "bigint": "::BIGINT",
    "float": "",
    "boolean": "",
}


def quote(name: str) -> str:
    """A column name as SQLAlchemy writes it: quoted only when it has capitals."""
    return name if name.islower() else f'"{name}"'


@dataclass(frozen=True, slots=True)
class Statements:
    """Every statement the raw side runs, for one dialect."""

    insert_result: str
    """One result, only if its run exists (runstore's ``INSERT ... SELECT ... WHERE EXISTS``)."""
    insert_result_plain: str
    """A plain ``INSERT ... VALUES``, for ``executemany`` (``add_results``, seeding SQLite)."""
    select_run: str
    lock_run: str
    update_run: str
    require_runs: str
    """``add_results``: the batch's runs exist (and are locked against deletion on Postgres)."""
    count_results: str
    first_page_results: str
    offset_page_results: str
    keyset_page_results: str
    iterate_results: str
    key_at_offset: str


def statements(dialect: Dialect) -> Statements:
    """The statements for ``dialect`` (``?`` placeholders on SQLite, ``%s`` on Postgres)."""
    postgres = dialect == "postgresql"

    def param(column_type: ColumnType | None = None) -> str:
        if not postgres:
            return "?"
        return "%s" + ("" if column_type is None else _POSTGRES_CASTS[column_type])

    runs, results = TABLE_DATASET_RUNS, TABLE_DATASET_RUN_RESULTS
    result_columns = ", ".join(quote(name) for name in DATASET_RUN_RESULTS_SCHEMA)
    run_columns = ", ".join(quote(name) for name in DATASET_RUNS_SCHEMA)
    selected = ", ".join(
        f"{param(column.type)} AS anon_{number}"
        for number, column in enumerate(DATASET_RUN_RESULTS_SCHEMA.values(), start=1)
    )
    text, timestamp, integer = param("text"), param("timestamp"), param("integer")
    order = '"startedAt" ASC, id ASC'
    # SQLAlchemy's SQLite dialect always writes an OFFSET after a LIMIT (0 when none is
    # wanted); on Postgres the OFFSET appears only when runstore sets one.
    limit = f" LIMIT {integer} OFFSET {integer}" if not postgres else f" LIMIT {integer}"
    limit_offset = f" LIMIT {integer} OFFSET {integer}"
    page = f'SELECT {result_columns} FROM {results} WHERE {results}."runId" = {text}'
    return Statements(
        insert_result=(
            f"INSERT INTO {results} ({result_columns}) SELECT {selected} "
            f"WHERE EXISTS (SELECT * FROM {runs} WHERE {runs}.id = {text})"
        ),
        insert_result_plain=(
            f"INSERT INTO {results} ({result_columns}) VALUES "
            f"({', '.join(param(column.type) for column in DATASET_RUN_RESULTS_SCHEMA.values())})"
        ),
        select_run=f"SELECT {run_columns} FROM {runs} WHERE {runs}.id = {text}",
        lock_run=(
            f'SELECT {runs}."updatedAt" FROM {runs} WHERE {runs}.id = {text}'
            + (" FOR UPDATE" if postgres else "")
        ),
        update_run=(
            f'UPDATE {runs} SET status={text}, "failedCount"={integer}, "updatedAt"={timestamp} '
            f"WHERE {runs}.id = {text} RETURNING {run_columns}"
        ),
        require_runs=(
            f"SELECT {runs}.id FROM {runs} WHERE {runs}.id IN ({text})"
            + (" FOR NO KEY UPDATE" if postgres else "")
        ),
        count_results=f'SELECT count(*) AS count_1 FROM {results} WHERE {results}."runId" = {text}',
        first_page_results=f"{page} ORDER BY {order}{limit}",
        offset_page_results=f"{page} ORDER BY {order}{limit_offset}",
        keyset_page_results=(
            f'{page} AND ("startedAt", id) > ({timestamp}, {text}) ORDER BY {order}{limit}'
        ),
        iterate_results=(
            f'SELECT {result_columns} FROM {results} WHERE {results}."runId" = {text} '
            f"ORDER BY {order}"
        ),
        key_at_offset=(
            f'SELECT "startedAt", id FROM {results} WHERE {results}."runId" = {text} '
            f"ORDER BY {order} LIMIT 1 OFFSET {integer}"
        ),
    )
