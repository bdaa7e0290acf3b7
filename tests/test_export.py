"""Exports beyond the contract: the SQL adapter's columnar path, and life without pyarrow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import sqlalchemy as sa

from runstore import SqlRunsStorage
from runstore.sql import results
from runstore.testing.inputs import result_input, run_input


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
