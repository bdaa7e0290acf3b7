"""Exports beyond the contract: the SQL adapter's columnar path, every adapter's same file,
and life without pyarrow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from runstore import InMemoryRunsStorage
from runstore import RunsStorage
from runstore import SqlRunsStorage
from runstore.export import RESULT_FIELDS
from runstore.sql import results
from runstore.testing.exports import read_csv
from runstore.testing.inputs import T0
from runstore.testing.inputs import FrozenClock
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input


def test_the_sql_path_builds_no_models_and_every_read_is_seen(
    storage: SqlRunsStorage,
    statements_seen: Callable[[sa.Engine], AbstractContextManager[list[str]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = storage.create_run(run_input())
    storage.add_results([result_input(run, n, scores={"s": n / 3}) for n in range(25)])
    expected = [result.id for result in storage.iter_results(run.id)]

    def refuse(*_: object) -> None:
        raise AssertionError("a model was built for an exported row")

    monkeypatch.setattr(results, "results_from", refuse)
    with statements_seen(storage.engine) as seen:
        batches = list(storage.iter_result_batches(run.id, batch_size=10))
    assert [i for batch in batches for i in batch.column("id").to_pylist()] == expected
    # One statement per batch, each through the engine -- on SQLite in a snapshot with a
    # second one that reads the batch's scores exactly (see runstore.types.score_map).
    per_batch = 3 if storage.engine.dialect.name == "sqlite" else 1
    reads = [sql for sql in seen if "FROM mastra_dataset_run_results" in sql]
    assert len(reads) == 3
    assert len(seen) == 3 * per_batch
    with statements_seen(storage.engine) as seen:
        written = storage.export_results(run.id, tmp_path / "out.jsonl", batch_size=25)
    assert written == 25
    # A full batch, then the empty one that ends it (no rows: no scores to read).
    assert len(seen) == (5 if per_batch == 3 else 2)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == expected


def test_an_unknown_run_costs_one_more_statement_only_when_empty(
    storage: SqlRunsStorage,
    statements_seen: Callable[[sa.Engine], AbstractContextManager[list[str]]],
) -> None:
    run = storage.create_run(run_input())
    with statements_seen(storage.engine) as seen:
        assert list(storage.iter_result_batches(run.id)) == []
    begin = 1 if storage.engine.dialect.name == "sqlite" else 0  # a snapshot (see above)
    assert len(seen) == 2 + begin  # no rows: is there a run at all?


def _same_run(storage: RunsStorage) -> None:
    """One run, its ids and instants fixed (with a frozen clock), so that every adapter
    stores exactly the same results: JSON of each shape, scores, and tokens, costs, trace
    ids and metadata, present or None."""
    run = storage.create_run(run_input(id="run"))
    usage: list[dict[str, Any]] = [
        {
            "input_tokens": 1200,
            "output_tokens": 350,
            "cost": 0.1,
            "trace_id": "trace-0",
            "metadata": {"model": "modèle ✓ 日本語", "params": {"stop": ["\n", '"', ","]}},
        },
        {},
        {"input_tokens": 0, "output_tokens": 0, "cost": 0.0, "metadata": {}},
        {"cost": 1e-12, "trace_id": 'a "quoted", comma', "metadata": {"big": 10**30, "f": 1e16}},
        {"output_tokens": 7, "cost": 0.1 + 0.2, "metadata": {"none": None, "z": 1, "a": 2.0}},
    ]
    storage.add_results(
        [
            result_input(
                run,
                n,
                id=f"result-{n}",
                input={"q": f"question {n}", "deep": [1, 2.5, {"x": None}]},
                output=None if n == 1 else {"answer": n, "words": ["é", ""]},
                scores={"accuracy": n / 3, "fluency": 0.1} if n % 2 else {},
                **fields,
            )
            for n, fields in enumerate(usage)
        ]
    )


_JSON_TEXT = ("input", "output", "expected_output", "metadata")


def _json_as_values(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its JSON text fields parsed (Postgres writes ``jsonb``'s own text)."""
    return {
        field: json.loads(value) if field in _JSON_TEXT and value is not None else value
        for field, value in row.items()
    }


@pytest.mark.parametrize("format", ["jsonl", "csv", "parquet"])
def test_every_adapter_exports_the_same_file(empty_url: str, tmp_path: Path, format: str) -> None:
    """Memory and SQLite export the same bytes for the same results; Postgres too, but
    for the JSON text, which is ``jsonb``'s (``{"a": 1}``) and holds the same values."""
    if format == "parquet":
        pytest.importorskip("pyarrow")
    exported: dict[str, Path] = {}
    for name, storage in (
        ("memory", InMemoryRunsStorage(clock=FrozenClock(T0))),
        ("sql", SqlRunsStorage(empty_url, clock=FrozenClock(T0))),
    ):
        with storage:
            storage.init()
            _same_run(storage)
            exported[name] = tmp_path / f"{name}.{format}"
            assert storage.export_results("run", exported[name], format=format, batch_size=2) == 5
    memory, sql = (exported[name].read_bytes() for name in ("memory", "sql"))
    if empty_url.startswith("sqlite"):
        assert sql == memory
        return
    if format == "jsonl":  # JSON values already
        lines = [[json.loads(line) for line in data.splitlines()] for data in (memory, sql)]
    elif format == "csv":
        header, *first = read_csv(memory.decode())
        second = read_csv(sql.decode())
        assert second[0] == header == list(RESULT_FIELDS)
        lines = [
            [_json_as_values(dict(zip(RESULT_FIELDS, row, strict=True))) for row in rows]
            for rows in (first, second[1:])
        ]
    else:
        import pyarrow.parquet as pq

        tables = [pq.read_table(exported[name]) for name in ("memory", "sql")]
        assert tables[0].schema == tables[1].schema
        lines = [[_json_as_values(row) for row in table.to_pylist()] for table in tables]
    assert len(lines[0]) == len(lines[1]) == 5
    for expected, row in zip(*lines, strict=True):
        assert list(row) == list(expected)
        exact = [json.dumps(values, sort_keys=True, default=str) for values in (expected, row)]
        assert exact[0] == exact[1]  # 1 and 1.0 apart, every float exactly
    assert memory != sql  # the JSON text differs, as documented


_WITHOUT_PYARROW = textwrap.dedent(
    """
    import importlib.abc, json, os, sys

    class NoPyarrow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "pyarrow" or name.startswith("pyarrow."):
                raise ImportError(f"No module named {name!r} (blocked)")
            return None

    sys.meta_path.insert(0, NoPyarrow())
    for name in [n for n in sys.modules if n == "pyarrow" or n.startswith("pyarrow.")]:
        del sys.modules[name]

    from runstore import InMemoryRunsStorage, InvalidInputError, SqlRunsStorage
    from runstore.testing.inputs import result_input, run_input

    directory = sys.argv[1]
    report = {}
    for name, storage in [
        ("memory", InMemoryRunsStorage()),
        ("sqlite", SqlRunsStorage("sqlite:///" + os.path.join(directory, "runs.db"))),
    ]:
        storage.init()
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, n, scores={"s": 0.5}) for n in range(5)])
        outcome = {}
        for format in ("jsonl", "csv"):
            path = os.path.join(directory, f"{name}.{format}")
            outcome[format] = storage.export_results(run.id, path, format=format, batch_size=2)
        for call, attempt in [
            ("batches", lambda: storage.iter_result_batches(run.id)),
            (
                "parquet",
                lambda: storage.export_results(
                    run.id, os.path.join(directory, f"{name}.parquet"), format="parquet"
                ),
            ),
        ]:
            try:
                attempt()
            except InvalidInputError as exc:
                outcome[call] = str(exc)
        report[name] = outcome
        storage.close()
    report["pyarrow imported"] = any(n.startswith("pyarrow") for n in sys.modules)
    report["files"] = sorted(n for n in os.listdir(directory) if not n.startswith("runs.db"))
    print(json.dumps(report))
    """
)


@pytest.mark.heavy
def test_jsonl_and_csv_need_no_pyarrow(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PYARROW, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    missing = 'pyarrow is not installed: pip install "runstore[parquet]"'
    for name in ("memory", "sqlite"):
        assert report[name] == {"jsonl": 5, "csv": 5, "batches": missing, "parquet": missing}
    assert report["pyarrow imported"] is False
    assert report["files"] == ["memory.csv", "memory.jsonl", "sqlite.csv", "sqlite.jsonl"]
