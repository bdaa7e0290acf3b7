"""The SQL machinery every feature shares: constructs that compile differently on SQLite
and Postgres, and expressions of the column types.

* :func:`one_of` -- a list bound at execution: one array parameter on Postgres.
* :func:`mean` -- an average that never overflows.
* :func:`half` / :func:`bucket` -- a value's histogram bin, as
  :func:`runstore.figures.bin_of` figures it.
* :class:`Vacuum` -- ``VACUUM`` of a table, or of the SQLite file.
* :func:`scores_of` / :class:`score_map` -- a result's scores as a column of its row.
* :class:`utc_text` -- an instant as its stored UTC text (for exports).
* :func:`returned` -- a table's columns for ``RETURNING``.
* :func:`metadata_matches` -- a JSON object has given top-level key-value pairs.
* :func:`decimal_sum` / :func:`split_sums` -- sums of doubles without a rounding error
  per row (see :func:`runstore.figures.exact_total`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from runstore.tables import score_columns
from runstore.types import JsonColumn
from runstore.types import ScoreMapColumn

__all__ = [
    "Vacuum",
    "bucket",
    "decimal_sum",
    "half",
    "mean",
    "metadata_kind",
    "metadata_matches",
    "metadata_values",
    "one_of",
    "returned",
    "scaled_square",
    "score_map",
    "scores_of",
    "shifted",
    "split_sums",
    "utc_text",
]


class _OneOf(FunctionElement[Any]):
    """``column IN (...)`` with a list given at execution: see :func:`one_of`."""

    inherit_cache = True
    name = "one_of"
    type = sa.types.NullType()  # not Boolean: SQLite would compare the test with 1


def one_of(column: sa.SQLColumnExpression[Any], name: str) -> sa.ColumnElement[Any]:
    """``column`` is one of the list bound as ``name`` when the statement runs.

    On Postgres one array parameter (``column = ANY(:name)``): the statement's text and
    plan are the same for every length, where an expanded ``IN`` -- one parameter per
    value -- is rendered, parsed and planned anew for each length, a real cost for the
    lists of a thousand ids that batch writes look up and delete. Elsewhere an expanding
    ``IN``.
    """
    return _OneOf(column, sa.bindparam(name, expanding=True))


@compiles(_OneOf)
def _one_of(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = element.clauses.clauses
    return compiler.process(column.in_(sa.bindparam(values.key, expanding=True)), **kw)


@compiles(_OneOf, "postgresql")
def _one_of_array(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = element.clauses.clauses
    array = sa.bindparam(values.key, type_=postgresql.ARRAY(column.type))
    return compiler.process(column == sa.any_(array), **kw)


_SCALE = 2.0**64
_TINY = 2.0**-900
_LARGEST_SCALED = sys.float_info.max / _SCALE
_SMALLEST = 5e-324  # the smallest subnormal double


def mean(value: sa.SQLColumnExpression[float | None]) -> sa.ColumnElement[float]:
    """``avg(value)`` for any finite doubles, never an overflow error: NULL for no rows.

    Postgres' ``avg`` sums the values and their squares, and fails with "value out of
    range" past about ``1e154`` (squares) or ``1e308`` (sums), where the mean itself is
    a finite double; its arithmetic also fails where a result rounds to zero. Here the
    values are summed scaled down by 2**64 -- exact, as any scaling by a power of two is
    among normal doubles, so the mean is the one a plain sum gives wherever that does not
    overflow -- and those too small to scale (below 2**-900) are summed apart, unscaled;
    a mean of theirs that rounds to zero is zero. :func:`runstore.figures.mean` is the
    same in Python.
    """
    # a double, exact (a count is far below 2**53): Postgres takes an integer divisor as
    # numeric, converting it to and from text per group
    count: sa.ColumnElement[float] = sa.cast(sa.func.nullif(sa.func.count(value), 0), sa.Double())
    large = sa.func.abs(value) >= _float(_TINY)
    scaled = sa.func.coalesce(sa.func.sum(value * _float(1 / _SCALE)).filter(large), 0.0) / count
    scaled = sa.case(  # rounding may take a mean near the largest double a step past it
        (scaled > _float(_LARGEST_SCALED), _float(_LARGEST_SCALED)),
        (scaled < _float(-_LARGEST_SCALED), _float(-_LARGEST_SCALED)),
        else_=scaled,
    )
    small_sum = sa.func.coalesce(sa.func.sum(value).filter(sa.not_(large)), 0.0)
    small = sa.case(
        (sa.func.abs(small_sum) * 2 <= count * _float(_SMALLEST), 0.0),
        else_=small_sum / count,
    )
    return scaled * _float(_SCALE) + small


def _float(value: float) -> sa.ColumnElement[float]:
    return sa.literal(value, sa.Double())


class _Floor(FunctionElement[int]):
    """The greatest integer not above a value that is never negative (see :func:`bucket`)."""

    inherit_cache = True
    name = "floor"
    type = sa.Integer()


@compiles(_Floor)
def _floor_by_truncation(element: _Floor, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite has floor() only where it was built with its math functions; CAST truncates,
    # which is the floor of a value that is not negative.
    (value,) = element.clauses.clauses
    return f"CAST({compiler.process(value, **kw)} AS INTEGER)"


@compiles(_Floor, "postgresql")
def _floor_postgres(element: _Floor, compiler: SQLCompiler, **kw: Any) -> str:
    # Postgres' CAST to an integer rounds to the nearest: floor() first.
    (value,) = element.clauses.clauses
    return f"CAST(floor({compiler.process(value, **kw)}) AS INTEGER)"


_NEAR_ZERO = 2.0**-30  # a value this close to the least, in parts of the range: bin 0
_SMALL_SPAN = 2.0**-900  # a range below this is compared scaled up, not down


def half(value: sa.SQLColumnExpression[float]) -> sa.ColumnElement[float]:
    """``value * 0.5`` as IEEE arithmetic has it: zero for the smallest subnormals, whose
    halves round to zero -- which Postgres refuses ("value out of range: underflow")."""
    return sa.case(
        (sa.func.abs(value) <= _float(_SMALLEST), _float(0.0)),
        else_=value * _float(0.5),
    )


def bucket(
    offset: sa.SQLColumnExpression[float],
    span: sa.SQLColumnExpression[float],
    bins: sa.SQLColumnExpression[float],
) -> sa.ColumnElement[int]:
    """A value's histogram bin: ``floor(offset / span * bins)``, where ``offset`` is
    ``half(value) - half(low)`` and ``span`` is ``half(high) - half(low)`` (see
    :func:`half`); 0 where ``span`` is 0 (``low == high``, or neighbouring subnormals).
    Each operation is the double arithmetic of :func:`runstore.figures.bin_of`, so the
    counts are the same -- except that a value at ``high`` is at ``bins`` here: the
    caller puts it in the last bin.

    The floor is ``floor()`` on Postgres (whose ``CAST`` to an integer rounds), and a
    ``CAST`` on SQLite, which has ``floor()`` only when built with its math functions
    (the value is never negative, so truncating is the floor).

    Postgres refuses a quotient that rounds to zero where IEEE arithmetic gives zero, so
    a value within ``2**-30`` of the range above ``low`` -- whose bin is 0 for any number
    of bins up to ``2**30`` -- is found without dividing, by products exact in doubles:
    the range scaled down, or where it is tiny, the value's offset scaled up.
    """
    near_low = sa.case(
        (span >= _float(_SMALL_SPAN), offset < span * _float(_NEAR_ZERO)),
        else_=offset * _float(1 / _NEAR_ZERO) < span,
    )
    return sa.case(
        (sa.or_(span == _float(0.0), near_low), sa.literal(0, sa.Integer())),
        else_=_Floor(offset / span * bins),
    )


_NEGLIGIBLE = 2.0**-500  # a deviation this small against the largest adds nothing
_SMALL_SCALE = 2.0**-400  # a scale below this is compared scaled up, not down


_SHIFTED_LARGEST = 2.0**480
_SHIFTED_SMALLEST = 2.0**-480


def shifted(
    value: sa.SQLColumnExpression[float], shift: sa.SQLColumnExpression[float]
) -> tuple[sa.ColumnElement[float], sa.ColumnElement[bool]]:
    """``half(value) - half(shift)`` -- a deviation from an estimate of the values' mean,
    halved, so it never overflows -- and whether it is *tame*: zero, or between
    ``2**-480`` and ``2**480`` in size, so that its square, and a sum of up to ``2**31``
    such squares, neither overflows nor leaves the normal doubles (which Postgres would
    refuse). One-pass sums over tame deviations only; any other sends the caller to two
    passes."""
    deviation = half(value) - half(shift)
    size = sa.func.abs(deviation)
    tame = sa.or_(
        deviation == _float(0.0),
        sa.and_(size <= _float(_SHIFTED_LARGEST), size >= _float(_SHIFTED_SMALLEST)),
    )
    return deviation, tame


def scaled_square(
    deviation: sa.SQLColumnExpression[float], scale: sa.SQLColumnExpression[float]
) -> sa.ColumnElement[float]:
    """``(deviation / scale) ** 2`` for a ``scale`` at least ``|deviation|`` -- in [0, 1],
    so a sum of them never overflows, whatever the values -- and 0 where it is below
    ``2**-1000`` (far under a double's precision against the largest term, 1).

    Postgres refuses a product or quotient that overflows or rounds to zero ("value out
    of range") where IEEE arithmetic gives infinity or zero; so the negligible deviations
    are found without dividing, by products exact in doubles -- the scale scaled down,
    or where it is tiny, the deviation scaled up -- and the rest are divided.
    """
    size = sa.func.abs(deviation)
    negligible = sa.case(
        (scale >= _float(_SMALL_SCALE), size < scale * _float(_NEGLIGIBLE)),
        else_=size * _float(1 / _NEGLIGIBLE) < scale,
    )
    ratio = deviation / scale
    return sa.case((sa.or_(scale == _float(0.0), negligible), _float(0.0)), else_=ratio * ratio)


class Vacuum(sa.Executable, sa.ClauseElement):
    """``VACUUM``: of a table on Postgres (with ``ANALYZE``), of the whole file on
    SQLite."""

    inherit_cache = False

    def __init__(self, table: sa.Table) -> None:
        self.table = table


@compiles(Vacuum)
def _vacuum(element: Vacuum, compiler: SQLCompiler, **kw: Any) -> str:
    if compiler.dialect.name == "sqlite":
        return "VACUUM"
    return f"VACUUM (ANALYZE) {compiler.preparer.format_table(element.table)}"


class score_map(sa.sql.functions.GenericFunction[dict[str, float]]):  # noqa: N801 - a SQL function
    """``score_map(name, value)`` (Postgres): aggregate scores into a JSON object, each
    value as ``float8``'s text, the shortest that reads back as the exact float
    (``extra_float_digits`` 1, the default since Postgres 12).

    SQLite has no such text: it writes a REAL with at most 17 digits, in JSON, ``printf``
    or ``CAST``, and the last are not always right (``0.3`` became ``0.2999999999999999``).
    Its reads take the scores as REAL values from a statement of their own (see
    :func:`scores_of`).
    """

    type = ScoreMapColumn()
    inherit_cache = True


@compiles(score_map, "postgresql")
def _score_map_postgres(element: score_map, compiler: SQLCompiler, **kw: Any) -> str:
    name, value = element.clauses
    return (
        f"jsonb_object_agg({compiler.process(name, **kw)}, "
        f"CAST({compiler.process(value, **kw)} AS TEXT))"
    )


class _ScoresOf(FunctionElement[dict[str, float]]):
    """A result's scores as a column: see :func:`scores_of`."""

    inherit_cache = True
    name = "scores_of"
    type = ScoreMapColumn()


def scores_of(result_id: sa.SQLColumnExpression[Any]) -> sa.ColumnElement[dict[str, float]]:
    """The scores of the result with ``result_id``, as a column of its row: on Postgres
    aggregated in the statement (:class:`score_map`); on SQLite NULL -- which reads as no
    scores -- and read exactly by a statement of their own, which its reads of results
    run next (:func:`runstore.sql.results.scored_results`)."""
    return _ScoresOf(result_id)


@compiles(_ScoresOf)
def _scores_of_elsewhere(element: _ScoresOf, compiler: SQLCompiler, **kw: Any) -> str:
    return "NULL"


@compiles(_ScoresOf, "postgresql")
def _scores_of_postgres(element: _ScoresOf, compiler: SQLCompiler, **kw: Any) -> str:
    (result_id,) = element.clauses.clauses
    scores = score_columns
    aggregated = sa.select(score_map(scores.name, scores.value)).where(
        scores.result_id == result_id
    )
    return compiler.process(aggregated.scalar_subquery(), **kw)


class utc_text(sa.sql.functions.GenericFunction[str]):  # noqa: N801 - a SQL function
    """``utc_text(instant)``: a :class:`~runstore.types.UTCDateTime` column as fixed-width
    ISO-8601 text in UTC (``2026-11-24T05:33:56.123456Z``) -- on SQLite the stored text
    itself, on Postgres written by ``to_char``. For reads that build columns from the raw
    values (exports)."""

    type = sa.Text()
    inherit_cache = True


@compiles(utc_text, "sqlite")
def _utc_text_sqlite(element: utc_text, compiler: SQLCompiler, **kw: Any) -> str:
    (instant,) = element.clauses
    return str(compiler.process(instant, **kw))


@compiles(utc_text, "postgresql")
def _utc_text_postgres(element: utc_text, compiler: SQLCompiler, **kw: Any) -> str:
    (instant,) = element.clauses
    return (
        f"to_char({compiler.process(instant, **kw)} AT TIME ZONE 'UTC', "
        '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\')'
    )


def returned(columns: Sequence[sa.Column[Any]]) -> list[sa.ColumnElement[Any]]:
    """The columns, each qualified by its table, for RETURNING.

    SQLAlchemy writes SQLite's RETURNING columns unqualified, and SQLite reads an
    unqualified double-quoted name that matches no column as a string literal; qualified,
    a missing column is an error instead of a wrong value.
    """
    return [
        sa.literal_column(f'{column.table.name}."{column.name}"', type_=column.type)
        for column in columns
    ]


# -- metadata filters --------------------------------------------------------------------

_INT64 = 2**63


def metadata_kind(value: object) -> str:
    """What a metadata filter compares a value as: ``string``, ``number``, ``true``,
    ``false`` or ``null`` (a statement is built per kind, never per value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "string" if isinstance(value, str) else "number"


def metadata_values(metadata: dict[str, Any]) -> dict[str, Any]:
    """The values :func:`metadata_matches` binds: the pairs as one JSON object (Postgres)
    and one by one (SQLite, whose integers are 64-bit: a number beyond is compared as the
    double SQLite reads it as)."""
    values: dict[str, Any] = {"metadata": dict(metadata)}
    for n, (key, value) in enumerate(metadata.items()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _INT64:
            value = float(value)
        values |= {f"meta_key_{n}": key, f"meta_value_{n}": value}
    return values


class _MetadataMatches(FunctionElement[bool]):
    """A JSON object column has every given key with an equal value: see
    :func:`metadata_matches`. Its clauses: the column, the pairs' object, then for each
    pair its key, its value and its kind (a literal: part of the statement's cache key)."""

    inherit_cache = True
    name = "metadata_matches"
    type = sa.types.NullType()  # type: ignore[assignment] # not Boolean: SQLite compares it with 1


def metadata_matches(
    column: sa.SQLColumnExpression[Any], kinds: tuple[str, ...]
) -> sa.ColumnElement[bool]:
    """``column``, a JSON object, has every pair bound by :func:`metadata_values`, whose
    values are of ``kinds`` (:func:`metadata_kind`): numbers equal by value (``1`` and
    ``1.0``), a bool never a number.

    On Postgres containment, ``column @> pairs``, which the column's GIN index serves
    (jsonb compares numbers by value). On SQLite, for each pair, its key found among the
    object's (``json_each``) with a value of the same JSON type and equal.
    """
    pairs: list[Any] = [column, sa.bindparam("metadata", type_=JsonColumn(none_as_null=False))]
    for n, kind in enumerate(kinds):
        pairs += [
            sa.bindparam(f"meta_key_{n}", type_=sa.Text()),
            sa.bindparam(f"meta_value_{n}"),
            sa.literal_column(f"'{kind}'"),
        ]
    return _MetadataMatches(*pairs)


@compiles(_MetadataMatches, "postgresql")
def _metadata_contains(element: _MetadataMatches, compiler: SQLCompiler, **kw: Any) -> str:
    column, pairs = element.clauses.clauses[:2]
    return f"({compiler.process(column, **kw)} @> {compiler.process(pairs, **kw)})"


_JSON_TYPES = {
    "string": "= 'text'",
    "number": "IN ('integer', 'real')",
    "true": "= 'true'",
    "false": "= 'false'",
    "null": "= 'null'",
}


@compiles(_MetadataMatches)
def _metadata_each(element: _MetadataMatches, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, *pairs = element.clauses.clauses
    object = compiler.process(column, **kw)
    found = []
    for n in range(0, len(pairs), 3):
        key, value, kind = pairs[n : n + 3]
        kind_name = str(kind.name).strip("'")
        compared = f"metadata_pair.type {_JSON_TYPES[kind_name]}"
        if kind_name in ("string", "number"):
            compared += f" AND metadata_pair.atom = {compiler.process(value, **kw)}"
        found.append(
            f"EXISTS (SELECT 1 FROM json_each({object}) AS metadata_pair "
            f"WHERE metadata_pair.key = {compiler.process(key, **kw)} AND {compared})"
        )
    return "(" + " AND ".join(found) + ")"


# -- sums without rounding errors --------------------------------------------------------


def decimal_sum(value: sa.SQLColumnExpression[float | None]) -> sa.ColumnElement[Any]:
    """Postgres: the sum of doubles as ``numeric`` -- each value as the shortest decimal
    that reads back as it (``float8``'s text), summed exactly -- returned as a Decimal;
    NULL for no values. Within a unit in the last place of the exact sum once rounded to
    a double (a plain ``sum`` of doubles drifts by hundreds on large runs)."""
    return sa.func.sum(sa.cast(sa.cast(value, sa.Text()), sa.Numeric()))


def split_sums(
    value: sa.SQLColumnExpression[float | None],
) -> tuple[sa.ColumnElement[float], sa.ColumnElement[float], sa.ColumnElement[float]]:
    """The sums of each value's three parts -- the value times the factor bound as
    ``split_factor``, split at the scales bound as ``split_1`` and ``split_2`` (powers of
    two: see :func:`runstore.figures.split_scales`): the part a multiple of the first
    scale's unit, the next, and what remains -- the first two sums exact in double
    arithmetic, the third too small for its rounding to matter.
    :func:`runstore.figures.exact_total` adds the three up."""
    first: sa.BindParameter[float] = sa.bindparam("split_1", type_=sa.Double())
    second: sa.BindParameter[float] = sa.bindparam("split_2", type_=sa.Double())
    factor: sa.BindParameter[float] = sa.bindparam("split_factor", type_=sa.Double())
    value = value * factor
    high = (value + first) - first
    rest = value - high
    middle = (rest + second) - second
    return sa.func.sum(high), sa.func.sum(middle), sa.func.sum(rest - middle)
