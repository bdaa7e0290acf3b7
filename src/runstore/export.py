"""Exporting a run's results: Arrow record batches, and JSONL, CSV and Parquet files.

Every adapter hands this module a run's results as **stored rows** -- one tuple per
result, in :data:`RESULT_FIELDS` order, each value in the form it is stored in:

* ids and ``error`` as text (``error`` None when there is none);
* instants as fixed-width ISO-8601 text in UTC, ``2026-11-24T05:33:56.123456Z``;
* ``input`` as JSON text (``"null"`` for None); ``output`` and ``expected_output`` as
  JSON text, or None when there is none;
* ``latency`` as a float, ``retry_count`` and ``repetition`` as ints;
* ``scores`` as a JSON object of name to value (a number, or the number's text), or None
  for no scores;
* ``input_tokens`` and ``output_tokens`` as ints, ``cost`` as a float, ``trace_id`` as
  text, and ``metadata`` as JSON text -- each None when the result has none.

The SQL adapter selects exactly these from the database (no model per row); others build
them from their models (:func:`rows_of_results`). From stored rows this module builds the
Arrow batches (:func:`record_batch`, schema :func:`result_schema`) and writes the files
(:func:`write_export`), so every adapter exports the same bytes for the same results --
but for the JSON text, which is copied as stored, never parsed: Postgres' ``jsonb`` writes
the same values its own way (``{"a": 1}``, keys in its order), elsewhere it is compact.

pyarrow is optional (``pip install "runstore[parquet]"``): JSONL and CSV never import it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import IO
from typing import TYPE_CHECKING
from typing import Any

import orjson

from runstore.errors import InvalidInputError
from runstore.jsonvalues import dumps_json
from runstore.models import RunResult

if TYPE_CHECKING:
    import pyarrow

__all__ = [
    "EXPORT_FORMATS",
    "RESULT_FIELDS",
    "ExportFile",
    "StoredRow",
    "export_arguments",
    "record_batch",
    "require_pyarrow",
    "result_schema",
    "rows_of_results",
    "write_export",
]

EXPORT_FORMATS = ("jsonl", "csv", "parquet")
"""The formats :meth:`~runstore.base.RunsStorage.export_results` writes."""

RESULT_FIELDS = (
    "id",
    "run_id",
    "item_id",
    "item_version",
    "input",
    "output",
    "expected_output",
    "latency",
    "error",
    "started_at",
    "completed_at",
    "retry_count",
    "repetition",
    "scores",
    "created_at",
    "input_tokens",
    "output_tokens",
    "cost",
    "trace_id",
    "metadata",
)
"""The fields of an exported result, in order: :class:`~runstore.models.RunResult`'s."""

StoredRow = Sequence[Any]
"""A result as stored (see the module docstring), values in :data:`RESULT_FIELDS` order."""

_INSTANTS = frozenset({"item_version", "started_at", "completed_at", "created_at"})
_INSTANT_COLUMNS = tuple(n for n, f in enumerate(RESULT_FIELDS) if f in _INSTANTS)
_SCORES_COLUMN = RESULT_FIELDS.index("scores")

PYARROW_MISSING = 'pyarrow is not installed: pip install "runstore[parquet]"'


# -- stored rows -----------------------------------------------------------------------


def _instant_text(moment: Any) -> str:
    return str(moment.isoformat(timespec="microseconds")[:-6] + "Z")  # in UTC already


def rows_of_results(results: Iterable[RunResult]) -> list[StoredRow]:
    """Stored rows of results read as models (for adapters without a columnar path)."""
    return [
        (
            result.id,
            result.run_id,
            result.item_id,
            _instant_text(result.item_version),
            dumps_json(result.input),
            None if result.output is None else dumps_json(result.output),
            None if result.expected_output is None else dumps_json(result.expected_output),
            result.latency,
            result.error,
            _instant_text(result.started_at),
            _instant_text(result.completed_at),
            result.retry_count,
            result.repetition,
            dict(result.scores) if result.scores else None,
            _instant_text(result.created_at),
            result.input_tokens,
            result.output_tokens,
            result.cost,
            result.trace_id,
            None if result.metadata is None else dumps_json(result.metadata),
        )
        for result in results
    ]


def _scores(stored: Any) -> dict[str, float]:
    """A stored row's scores as name to value, by name."""
    if stored is None:
        return {}
    if isinstance(stored, str):
        stored = orjson.loads(stored)
    return {name: float(stored[name]) for name in sorted(stored)}


def _pydantic_instant(text: str) -> str:
    """The instant as ``model_dump(mode="json")`` writes it: no fraction when it is zero."""
    return text[:19] + "Z" if text.endswith(".000000Z") else text


# -- Arrow -----------------------------------------------------------------------------


def require_pyarrow() -> Any:
    """The pyarrow module; :class:`InvalidInputError` naming the extra when it is missing."""
    try:
        import pyarrow
    except ImportError:
        raise InvalidInputError(PYARROW_MISSING) from None
    return pyarrow


def result_schema() -> pyarrow.Schema:
    """The Arrow schema of exported results (and of the Parquet files).

    One column per :class:`~runstore.models.RunResult` field, in its order: ids, ``error``
    and the JSON fields as ``string`` (``input``, ``output``, ``expected_output`` hold
    JSON text; ``output`` and ``expected_output`` are null when None, ``input`` is never
    null -- None is the text ``null``); instants as ``timestamp[us, tz=UTC]``;
    ``latency`` as ``float64``; ``retry_count`` and ``repetition`` as ``int64``;
    ``scores`` as ``map<string, float64>``, keys in name order, empty when there are
    none; ``input_tokens`` and ``output_tokens`` as ``int64``, ``cost`` as ``float64``,
    ``trace_id`` as ``string`` and ``metadata`` as JSON text in a ``string`` column, each
    null when the result has none.
    """
    pa = require_pyarrow()
    instant = pa.timestamp("us", tz="UTC")
    types = {
        "latency": pa.float64(),
        "retry_count": pa.int64(),
        "repetition": pa.int64(),
        "scores": pa.map_(pa.string(), pa.float64()),
        "input_tokens": pa.int64(),
        "output_tokens": pa.int64(),
        "cost": pa.float64(),
    }
    nullable = {
        "output",
        "expected_output",
        "error",
        "input_tokens",
        "output_tokens",
        "cost",
        "trace_id",
        "metadata",
    }
    return pa.schema(
        [
            pa.field(
                name,
                instant if name in _INSTANTS else types.get(name, pa.string()),
                nullable=name in nullable,
            )
            for name in RESULT_FIELDS
        ]
    )


def record_batch(rows: Sequence[StoredRow], schema: pyarrow.Schema | None = None) -> Any:
    """An Arrow record batch of stored rows, built column by column."""
    pa = require_pyarrow()
    schema = schema if schema is not None else result_schema()
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    arrays = []
    for position, field in enumerate(schema):
        values = columns[position]
        if position in _INSTANT_COLUMNS:
            arrays.append(pa.array(values, pa.string()).cast(field.type))
        elif position == _SCORES_COLUMN:
            arrays.append(_scores_array(pa, values, field.type))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _scores_array(pa: Any, values: Sequence[Any], map_type: Any) -> Any:
    offsets = [0]
    names: list[str] = []
    numbers: list[float] = []
    for stored in values:
        scores = _scores(stored)
        names.extend(scores)
        numbers.extend(scores.values())
        offsets.append(len(names))
    return pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.array(names, pa.string()),
        pa.array(numbers, pa.float64()),
        type=map_type,
    )


# -- files -----------------------------------------------------------------------------


def _jsonl(rows: Sequence[StoredRow]) -> bytes:
    """Lines of ``RunResult.model_dump(mode="json")`` objects; the stored JSON text is
    copied in as it is, never parsed."""
    fragment = orjson.Fragment
    lines = []
    for row in rows:
        output, expected, metadata = row[5], row[6], row[19]
        line = {
            "id": row[0],
            "run_id": row[1],
            "item_id": row[2],
            "item_version": _pydantic_instant(row[3]),
            "input": fragment(row[4]),
            "output": None if output is None else fragment(output),
            "expected_output": None if expected is None else fragment(expected),
            "latency": row[7],
            "error": row[8],
            "started_at": _pydantic_instant(row[9]),
            "completed_at": _pydantic_instant(row[10]),
            "retry_count": row[11],
            "repetition": row[12],
            "scores": _scores(row[13]),
            "created_at": _pydantic_instant(row[14]),
            "input_tokens": row[15],
            "output_tokens": row[16],
            "cost": row[17],
            "trace_id": row[18],
            "metadata": None if metadata is None else fragment(metadata),
        }
        lines.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    return b"".join(lines)


def _csv_text(value: str | None) -> str:
    """A text field: always quoted, so that an empty text (``""``) differs from None."""
    return "" if value is None else '"' + value.replace('"', '""') + '"'


_CSV_HEADER = (",".join(RESULT_FIELDS) + "\r\n").encode()


def _csv_number(value: float | None) -> str:
    """A number as Python writes it (a float exactly, ``repr``), None an empty field."""
    return "" if value is None else repr(value)


def _csv(rows: Sequence[StoredRow]) -> bytes:
    """RFC 4180 lines; every text quoted, None an empty field, numbers as Python writes
    them, JSON fields and the scores as JSON text."""
    text, number = _csv_text, _csv_number
    lines = []
    for row in rows:
        cost = row[17]
        scores = orjson.dumps(_scores(row[13])).decode()
        fields = (
            text(row[0]),
            text(row[1]),
            text(row[2]),
            text(_pydantic_instant(row[3])),
            text(row[4]),
            text(row[5]),
            text(row[6]),
            repr(float(row[7])),
            text(row[8]),
            text(_pydantic_instant(row[9])),
            text(_pydantic_instant(row[10])),
            str(row[11]),
            str(row[12]),
            text(scores),
            text(_pydantic_instant(row[14])),
            number(row[15]),
            number(row[16]),
            number(None if cost is None else float(cost)),
            text(row[18]),
            text(row[19]),
        )
        lines.append(",".join(fields))
    lines.append("")
    return "\r\n".join(lines).encode()


def export_arguments(
    destination: object, format: object, progress: object
) -> tuple[str, str, Callable[[int], None] | None]:
    """:meth:`~runstore.base.RunsStorage.export_results`' own arguments, checked before
    anything is read or written: the destination's path, the format, the callback."""
    if not isinstance(format, str) or format not in EXPORT_FORMATS:
        raise InvalidInputError(
            f"format must be one of {', '.join(map(repr, EXPORT_FORMATS))}, not {format!r}"
        )
    if format == "parquet":
        require_pyarrow()
    if not isinstance(destination, str | os.PathLike):
        raise InvalidInputError(
            f"destination must be a path (str or os.PathLike), not {type(destination).__name__}"
        )
    if progress is not None and not callable(progress):
        raise InvalidInputError("progress must be a callable or None")
    return os.fspath(destination), format, progress


class ExportFile:
    """An export being written: batches of stored rows go in one at a time, and the file
    appears at ``destination`` complete (:meth:`finish`) or not at all (:meth:`abort`).

    The file is written under a temporary name in the destination's directory and moved
    into place (``os.replace``) once complete and flushed to disk; an existing
    destination stays as it was until then, and after an abort.
    """

    def __init__(self, destination: str, format: str) -> None:
        self.destination, self.format, self.written = destination, format, 0
        directory, name = os.path.split(os.path.abspath(destination))
        self._temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
        descriptor = os.open(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self._file: IO[bytes] = os.fdopen(descriptor, "wb")
        self._parquet: Any = None
        try:
            if format == "parquet":
                import pyarrow.parquet as pq

                self._schema = result_schema()
                self._parquet = pq.ParquetWriter(self._file, self._schema)
            elif format == "csv":
                self._file.write(_CSV_HEADER)
        except BaseException:
            self.abort()
            raise

    def write(self, rows: Sequence[StoredRow]) -> None:
        """Append a batch of stored rows."""
        if self._parquet is not None:
            self._parquet.write_batch(record_batch(rows, self._schema))
        else:
            self._file.write(_csv(rows) if self.format == "csv" else _jsonl(rows))
        self.written += len(rows)

    def finish(self) -> None:
        """Complete the file, flush it to disk and move it into place."""
        if self._parquet is not None:
            self._parquet.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temporary, self.destination)

    def abort(self) -> None:
        """Drop the file written so far; the destination is left as it was."""
        with contextlib.suppress(Exception):
            if self._parquet is not None:
                self._parquet.close()
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temporary)


def write_export(
    batches: Iterator[Sequence[StoredRow]],
    destination: str,
    format: str,
    progress: Callable[[int], None] | None,
) -> int:
    """Write stored rows, a batch at a time, to ``destination`` in ``format`` (an
    :class:`ExportFile`); return how many were written. The first batch is read before
    anything is created, so a missing run touches no file."""
    first = next(batches, None)
    export = ExportFile(destination, format)
    try:
        rows = first
        while rows is not None:
            export.write(rows)
            if progress is not None:
                progress(export.written)
            rows = next(batches, None)
        export.finish()
    except BaseException:
        export.abort()
        raise
    return export.written
