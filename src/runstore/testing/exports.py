"""The contract for exports: Arrow record batches and JSONL, CSV and Parquet files.

What is exported is compared with what :meth:`~runstore.base.RunsStorage.iter_results`
reads, value by value and type by type. The Arrow and Parquet tests need pyarrow
(``pip install "runstore[parquet]"``) and are skipped without it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from runstore import InvalidInputError
from runstore import RunNotFoundError
from runstore import RunResult
from runstore import RunsStorage
from runstore.export import RESULT_FIELDS
from runstore.limits import MAX_COUNT
from runstore.limits import MAX_ID_LENGTH
from runstore.testing.inputs import T0
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

__all__ = ["ExportsContract", "read_csv"]

_JSON_FIELDS = ("input", "output", "expected_output")
_INSTANT_FIELDS = ("item_version", "started_at", "completed_at", "created_at")
_TOKEN_FIELDS = ("input_tokens", "output_tokens")

# Per result of the varied run: input tokens, output tokens, cost, trace id, metadata.
_USAGE: list[tuple[int | None, int | None, float | None, str | None, dict[str, Any] | None]] = [
    (
        1200,
        350,
        0.1,
        "trace-0",
        {
            "model": "modèle ✓ 日本語 🎉",
            "params": {"temperature": 0.2, "stop": ["\n", '"', ","]},
            "deep": {"a": [1, 2.5, {"b": [[None]]}]},
        },
    ),
    (None, None, None, None, None),
    (0, 0, 0.0, 'trace "quoted", with a comma\nand a new line', {}),
    (MAX_COUNT, 1, 1e-12, "é", {"big": 10**30, "float": 1e16, "falsy": [0, False, "", [], {}]}),
    (7, None, 5e-324, None, {"looks": '{"like": "json"}', "null": "null", "none": None}),
    (None, 42, 1.7976931348623157e308, "t" * MAX_ID_LENGTH, None),
    (3, 4, 123456789.125, "trace-6", {"z": 1, "a": 2.0}),
]


def _exact(value: Any) -> str:
    """Text that tells every JSON value apart: ``1`` from ``1.0`` and ``True``, ``None``
    from ``"null"``; key order aside."""
    return json.dumps(value, sort_keys=True)


def _varied_results(storage: RunsStorage) -> tuple[str, list[RunResult]]:
    """A run whose results cover what an export must keep: unicode, nesting, None and JSON
    null, falsy values, big integers, floats, empty and multi-line errors, scores,
    repetitions, results that start at the same instant, and tokens, costs (0.1, 1e-12,
    the smallest and largest floats), trace ids and metadata, each present or None."""
    run = storage.create_run(run_input())
    payloads: list[tuple[Any, Any, Any]] = [
        (
            {"q": 'naïve café ✓ 日本語 🎉 "quoted", comma\nnew line', "deep": {"a": [1, 2.5, {}]}},
            {"answer": "oui", "list": [[], {}, None]},
            None,
        ),
        (None, None, None),  # input JSON null; output and expected output none
        ({"big": 10**30, "negative": -(10**25), "float": 1e16}, 10**20, [0, False, "", [], {}]),
        ('{"looks": "like json"}', "0", 0),
        ([1, "two", 3.0, True], True, False),
        ("", 0.1, 123456789.125),
        ({"x": None}, {"y": [None]}, "null"),
    ]
    inputs = []
    for n, (given, output, expected) in enumerate(payloads):
        input_tokens, output_tokens, cost, trace_id, metadata = _USAGE[n]
        inputs.append(
            result_input(
                run,
                n,
                input=given,
                output=output,
                expected_output=expected,
                latency=[0.1, 1e-7, 12.5, 0.0, 99999.875, 3.0, 1e300][n],
                error=[None, "", 'boom\nsecond line, with "quotes"', None, "é", None, None][n],
                retry_count=n % 3,
                scores={"accuracy": n / 7, "fluency": -2.5} if n % 2 else {},
                started_at=T0 + timedelta(seconds=min(n, 3)),  # items 3 to 6 tie
                item_version=datetime(1, 1, 1, tzinfo=UTC) if n == 4 else T0,
                completed_at=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost=cost,
                trace_id=trace_id,
                metadata=metadata,
            )
        )
    inputs.append(
        result_input(run, 2, repetition=1, scores={"accuracy": 1.0}, cost=0.1 + 0.2, metadata={})
    )
    inputs.append(result_input(run, 2, repetition=2, started_at=T0.replace(microsecond=0)))
    storage.add_results(inputs)
    return run.id, list(storage.iter_results(run.id))


def _many_results(storage: RunsStorage, count: int) -> tuple[str, list[RunResult]]:
    run = storage.create_run(run_input())
    storage.add_results(
        [result_input(run, n, scores={"s": float(n)} if n % 2 else {}) for n in range(count)]
    )
    return run.id, list(storage.iter_results(run.id))


def read_csv(text: str) -> list[list[str | None]]:
    """Rows of an exported CSV file (RFC 4180): an unquoted empty field is None, a quoted
    one the empty text -- which :mod:`csv` on Python 3.11 cannot tell apart."""
    rows: list[list[str | None]] = []
    row: list[str | None] = []
    position, end = 0, len(text)
    while position < end:
        if text[position] == '"':
            value, position = [], position + 1
            while True:
                quote = text.index('"', position)
                value.append(text[position:quote])
                if text.startswith('""', quote):
                    value.append('"')
                    position = quote + 2
                else:
                    position = quote + 1
                    break
            row.append("".join(value))
        else:
            stop = min(
                (i for i in (text.find(",", position), text.find("\r\n", position)) if i >= 0),
                default=end,
            )
            field = text[position:stop]
            row.append(field if field else None)
            position = stop
        if text.startswith(",", position):
            position += 1
            if position == end or text.startswith("\r\n", position):
                row.append(None)
        if text.startswith("\r\n", position) or position >= end:
            rows.append(row)
            row = []
            position += 2
    return rows


class ExportsContract:
    """iter_result_batches and export_results."""

    @pytest.fixture
    def directory(self, tmp_path: Path) -> Path:
        """An empty directory for the files (``tmp_path`` may hold a database)."""
        path = tmp_path / "exports"
        path.mkdir()
        return path

    # -- Arrow batches ---------------------------------------------------------------

    def test_batches_hold_every_result_exactly(self, storage: RunsStorage) -> None:
        pytest.importorskip("pyarrow")
        from runstore.export import result_schema

        run_id, results = _varied_results(storage)
        batches = list(storage.iter_result_batches(run_id, batch_size=4))
        assert [batch.num_rows for batch in batches] == [4, 4, 1]
        assert all(batch.schema == result_schema() for batch in batches)
        rows = [row for batch in batches for row in batch.to_pylist()]
        assert [row["id"] for row in rows] == [result.id for result in results]
        for row, result in zip(rows, results, strict=True):
            stored = result.model_dump()
            assert list(row) == list(RESULT_FIELDS)
            for field in ("id", "run_id", "item_id", "error", "retry_count", "repetition"):
                assert row[field] == stored[field], field
                assert type(row[field]) is type(stored[field]), field
            for field in (*_TOKEN_FIELDS, "cost", "trace_id"):
                assert row[field] == stored[field], field  # a float exactly
                assert type(row[field]) is type(stored[field]), field
            assert row["latency"] == result.latency
            assert (row["metadata"] is None) is (result.metadata is None)
            metadata = None if row["metadata"] is None else json.loads(row["metadata"])
            assert _exact(metadata) == _exact(result.metadata)
            for field in _INSTANT_FIELDS:
                assert row[field] == stored[field], field
                assert row[field].utcoffset() == timedelta(0)
            assert row["input"] is not None  # None is the JSON text null
            for field in _JSON_FIELDS:
                text = row[field]
                value = None if text is None else json.loads(text)
                assert _exact(value) == _exact(stored[field]), field
            for field in ("output", "expected_output"):
                assert (row[field] is None) is (stored[field] is None)
            names = [name for name, _ in row["scores"]]
            assert names == sorted(names)
            assert dict(row["scores"]) == result.scores

    def test_batches_follow_ties_across_boundaries(self, storage: RunsStorage) -> None:
        pytest.importorskip("pyarrow")
        run = storage.create_run(run_input())
        storage.add_results([result_input(run, f"tie-{n}", started_at=T0) for n in range(9)])
        expected = [result.id for result in storage.iter_results(run.id)]
        for size in (1, 2, 3, 8, 9, 10):
            batches = list(storage.iter_result_batches(run.id, batch_size=size))
            assert [len(batch) for batch in batches] == [
                min(size, 9 - start) for start in range(0, 9, size)
            ]
            assert [i for batch in batches for i in batch.column("id").to_pylist()] == expected

    def test_batches_of_an_empty_or_unknown_run(self, storage: RunsStorage) -> None:
        pytest.importorskip("pyarrow")
        run = storage.create_run(run_input())
        assert list(storage.iter_result_batches(run.id)) == []
        batches = storage.iter_result_batches("no-such-run")  # checked when iteration starts
        with pytest.raises(RunNotFoundError):
            next(batches)
        with pytest.raises(InvalidInputError):
            storage.iter_result_batches(run.id, batch_size=0)

    # -- files -----------------------------------------------------------------------

    def test_jsonl_is_model_dump_line_by_line(self, storage: RunsStorage, directory: Path) -> None:
        run_id, results = _varied_results(storage)
        seen: list[int] = []
        written = storage.export_results(
            run_id, directory / "out.jsonl", batch_size=3, progress=seen.append
        )
        assert written == len(results) == 9
        assert seen == [3, 6, 9]
        lines = (directory / "out.jsonl").read_text(encoding="utf-8").split("\n")
        assert lines[-1] == ""  # every line ends with a newline
        assert len(lines) == len(results) + 1
        for line, result in zip(lines, results, strict=False):
            exported = json.loads(line)
            assert list(exported) == list(RESULT_FIELDS)
            assert _exact(exported) == _exact(result.model_dump(mode="json"))
            assert exported["cost"] == result.cost  # a float exactly, None as null
        assert os.listdir(directory) == ["out.jsonl"]

    def test_csv_holds_every_field_as_text(self, storage: RunsStorage, directory: Path) -> None:
        run_id, results = _varied_results(storage)
        assert storage.export_results(run_id, str(directory / "out.csv"), format="csv") == 9
        text = (directory / "out.csv").read_bytes().decode("utf-8")
        header, *rows = read_csv(text)
        assert header == list(RESULT_FIELDS)
        assert len(rows) == len(results)
        for fields, result in zip(rows, results, strict=True):
            row = dict(zip(RESULT_FIELDS, fields, strict=True))
            dumped = result.model_dump(mode="json")
            for field in ("id", "run_id", "item_id", "error", *_INSTANT_FIELDS):
                assert row[field] == dumped[field], field
            for field in ("retry_count", "repetition"):
                assert int(row[field] or "x") == dumped[field]
            assert float(row["latency"] or "x") == result.latency
            for field in (*_JSON_FIELDS, "metadata"):
                text_value = row[field]
                value = None if text_value is None else json.loads(text_value)
                assert _exact(value) == _exact(dumped[field]), field
            assert json.loads(row["scores"] or "x") == result.scores
            for field in _TOKEN_FIELDS:  # an empty field for None
                assert row[field] == (None if dumped[field] is None else str(dumped[field]))
            assert row["cost"] == (None if result.cost is None else repr(result.cost))
            assert row["trace_id"] == result.trace_id  # "" would be a quoted empty text

    def test_parquet_holds_the_batches(self, storage: RunsStorage, directory: Path) -> None:
        pq = pytest.importorskip("pyarrow.parquet")
        from runstore.export import result_schema

        run_id, results = _varied_results(storage)
        path = directory / "out.parquet"
        assert storage.export_results(run_id, path, format="parquet", batch_size=4) == 9
        table = pq.read_table(path)
        assert table.schema == result_schema()
        batches = list(storage.iter_result_batches(run_id))
        assert table.to_pylist() == [row for batch in batches for row in batch.to_pylist()]
        assert table.column("id").to_pylist() == [result.id for result in results]
        # Tokens as integers, the cost as a double, the trace id and the metadata (JSON)
        # as text -- each column nullable, None a null.
        columns = pq.ParquetFile(path).schema
        kinds = {
            columns.column(n).name: (
                columns.column(n).physical_type,
                columns.column(n).logical_type.type,
            )
            for n in range(len(columns))
        }
        assert kinds["input_tokens"] == kinds["output_tokens"] == ("INT64", "NONE")
        assert kinds["cost"] == ("DOUBLE", "NONE")
        assert kinds["trace_id"] == kinds["metadata"] == ("BYTE_ARRAY", "STRING")
        for field in (*_TOKEN_FIELDS, "cost", "trace_id"):
            assert table.column(field).to_pylist() == [getattr(r, field) for r in results]
        texts = table.column("metadata").to_pylist()
        assert [None if text is None else _exact(json.loads(text)) for text in texts] == [
            None if result.metadata is None else _exact(result.metadata) for result in results
        ]

    @pytest.mark.parametrize("format", ["jsonl", "csv", "parquet"])
    def test_large_exports_cross_batches(
        self, storage: RunsStorage, directory: Path, format: str
    ) -> None:
        if format == "parquet":
            pytest.importorskip("pyarrow")
        run_id, results = _many_results(storage, 250)
        seen: list[int] = []
        path = directory / f"out.{format}"
        written = storage.export_results(
            run_id, path, format=format, batch_size=100, progress=seen.append
        )
        assert written == 250
        assert seen == [100, 200, 250]
        assert _exported_ids(path, format) == [result.id for result in results]

    @pytest.mark.parametrize("format", ["jsonl", "csv", "parquet"])
    def test_an_empty_run_exports_an_empty_file(
        self, storage: RunsStorage, directory: Path, format: str
    ) -> None:
        if format == "parquet":
            pytest.importorskip("pyarrow")
        run = storage.create_run(run_input())
        seen: list[int] = []
        path = directory / f"out.{format}"
        assert storage.export_results(run.id, path, format=format, progress=seen.append) == 0
        assert seen == []
        assert _exported_ids(path, format) == []
        if format == "jsonl":
            assert path.read_bytes() == b""
        if format == "csv":
            assert path.read_bytes() == (",".join(RESULT_FIELDS) + "\r\n").encode()

    def test_an_unknown_run_creates_no_file(self, storage: RunsStorage, directory: Path) -> None:
        for format in ("jsonl", "csv"):
            with pytest.raises(RunNotFoundError):
                storage.export_results("no-such-run", directory / "out", format=format)
        assert os.listdir(directory) == []

    def test_bad_arguments_are_refused_before_anything_is_written(
        self, storage: RunsStorage, directory: Path
    ) -> None:
        run_id, _ = _many_results(storage, 3)
        path = directory / "out.xml"
        path.write_text("kept")
        refusals: list[tuple[dict[str, Any], str]] = [
            ({"format": "xml"}, "format"),
            ({"format": "JSONL"}, "format"),
            ({"format": None}, "format"),
            ({"batch_size": 0}, "batch_size"),
            ({"progress": "not callable"}, "progress"),
        ]
        for arguments, named in refusals:
            with pytest.raises(InvalidInputError, match=named):
                storage.export_results(run_id, path, **arguments)
        with pytest.raises(InvalidInputError, match="destination"):
            storage.export_results(run_id, 42)  # type: ignore[arg-type]
        assert os.listdir(directory) == ["out.xml"]
        assert path.read_text() == "kept"

    @pytest.mark.parametrize("format", ["jsonl", "csv", "parquet"])
    def test_a_failure_midway_leaves_no_file_and_the_old_one_intact(
        self, storage: RunsStorage, directory: Path, format: str
    ) -> None:
        if format == "parquet":
            pytest.importorskip("pyarrow")
        run_id, _ = _many_results(storage, 25)

        class StopExportError(Exception):
            pass

        def failing_after(batches: int) -> Callable[[int], None]:
            calls: list[int] = []

            def progress(written: int) -> None:
                calls.append(written)
                if len(calls) == batches:
                    raise StopExportError(written)

            return progress

        fresh = directory / f"fresh.{format}"
        with pytest.raises(StopExportError):
            storage.export_results(
                run_id, fresh, format=format, batch_size=10, progress=failing_after(2)
            )
        assert os.listdir(directory) == []
        kept = directory / f"kept.{format}"
        kept.write_bytes(b"the previous export")
        for batches in (1, 3):  # the last batch: everything written, then the failure
            with pytest.raises(StopExportError):
                storage.export_results(
                    run_id, kept, format=format, batch_size=10, progress=failing_after(batches)
                )
        assert os.listdir(directory) == [kept.name]
        assert kept.read_bytes() == b"the previous export"
        assert storage.export_results(run_id, kept, format=format) == 25  # replaced whole
        assert os.listdir(directory) == [kept.name]
        assert len(_exported_ids(kept, format)) == 25


def _exported_ids(path: Path, format: str) -> list[str]:
    if format == "jsonl":
        return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]
    if format == "csv":
        header, *rows = read_csv(path.read_bytes().decode("utf-8"))  # keeping its \r\n
        return [str(row[header.index("id")]) for row in rows]
    import pyarrow.parquet as pq

    ids: list[str] = pq.read_table(path).column("id").to_pylist()
    return ids
