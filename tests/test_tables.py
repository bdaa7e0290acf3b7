"""The ORM classes: generated from the column registry, typed, and usable by an application."""

from __future__ import annotations

import typing
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Session

from runstore import SqlRunsStorage
from runstore.schema import TABLE_SCHEMAS
from runstore.schema import ColumnType
from runstore.tables import RunResultRow
from runstore.tables import RunRow
from runstore.tables import ScoreRow
from runstore.tables import column_key
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

_PYTHON: dict[ColumnType, Any] = {
    "text": str,
    "timestamp": datetime,
    "integer": int,
    "float": float,
    "jsonb": Any,
}


@pytest.mark.parametrize("row_class", [RunRow, RunResultRow, ScoreRow])
def test_every_class_types_every_registered_column(row_class: type[Any]) -> None:
    """The classes' typed attributes are the registry's columns, in order, with their
    Python types and nullability: the registry stays the one description."""
    table: sa.Table = row_class.__table__
    registered = TABLE_SCHEMAS[table.name]
    hints = typing.get_type_hints(row_class)
    attributes = [name for name in row_class.__annotations__ if not name.startswith("__")]
    assert attributes == [column_key(name) for name in registered]
    for name, column in registered.items():
        hint = hints[column_key(name)]
        assert typing.get_origin(hint) is Mapped, name
        (inner,) = typing.get_args(hint)
        expected = _PYTHON[column.type]
        assert inner == (typing.Optional[expected] if column.nullable else expected), name  # noqa: UP045 - Any | None cannot be written
        assert table.columns[column_key(name)].name == name


def test_statements_built_from_the_classes_name_the_registered_columns() -> None:
    statement = sa.select(RunRow.id, RunRow.result_count).where(RunRow.dataset_id == "qa")
    sql = str(statement.compile(compile_kwargs={"literal_binds": True}))
    assert '"resultCount"' in sql
    assert '"datasetId" = ' in sql


def test_an_application_reads_runstore_tables_with_an_orm_session_of_its_own(
    empty_url: str,
) -> None:
    with SqlRunsStorage(empty_url) as storage:
        run = storage.create_run(run_input(id="nightly"))
        storage.add_results(
            [
                result_input(
                    run,
                    n,
                    latency=float(n * 100),
                    output={"answer": n, "big": 10**20},
                    scores={"accuracy": n / 4},
                )
                for n in range(5)
            ]
        )
        with Session(storage.engine) as session:
            slow = session.scalars(
                sa.select(RunResultRow)
                .where(RunResultRow.run_id == run.id, RunResultRow.latency >= 200)
                .order_by(RunResultRow.latency.desc())
            ).all()
            assert [row.item_id for row in slow] == ["item-4", "item-3", "item-2"]
            assert slow[0].output == {"answer": 4, "big": 10**20}  # JSON read exactly
            assert slow[0].started_at.utcoffset() == timedelta(0)  # aware, in UTC
            accurate = session.execute(
                sa.select(RunResultRow.item_id, ScoreRow.value)
                .join(ScoreRow, ScoreRow.result_id == RunResultRow.id)
                .where(ScoreRow.name == "accuracy", ScoreRow.value > 0.5)
                .order_by(ScoreRow.value)
            ).all()
            assert [(item, value) for item, value in accurate] == [
                ("item-3", 0.75),
                ("item-4", 1.0),
            ]
            stored = session.get(RunRow, run.id)
            assert stored is not None
            assert stored.result_count == 5
            assert stored.dataset_id == run.dataset_id
